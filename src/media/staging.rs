//! Uploads on their way in: a temporary file under `<MEDIA_DIR>/tmp`, hashed and counted
//! while it is written, deleted when dropped unless it was handed to the storage.

use std::{
    io,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use sha2::{Digest, Sha256};
use tempfile::TempPath;
use tokio::io::AsyncWriteExt;

use super::sniff::SNIFF_LEN;

/// Temporary files start with this, so the start-up sweep only touches its own.
const PREFIX: &str = ".upload-";
/// A temporary file this old belongs to a process that died mid-upload.
const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The staging directory.
#[derive(Clone, Debug)]
pub struct Staging {
    dir: PathBuf,
}

/// Why a write was refused.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// More than the file's limit arrived.
    #[error("the file is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// A file being written; dropping it (an error, a dropped connection) deletes it.
pub struct StagingFile {
    file: tokio::fs::File,
    path: TempPath,
    hasher: Sha256,
    size: u64,
    limit: u64,
    prefix: Vec<u8>,
}

/// A complete file, its size and hash known, waiting to be stored; deleted when dropped.
#[derive(Debug)]
pub struct StagedFile {
    path: TempPath,
    size: u64,
    sha256: String,
}

impl Staging {
    /// Uses (and creates) `dir`, and deletes what crashed uploads left there long ago.
    /// Younger files may be another instance's uploads in progress, so they stay.
    pub async fn open(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        tokio::fs::create_dir_all(&dir).await?;
        let mut entries = tokio::fs::read_dir(&dir).await?;
        while let Some(entry) = entries.next_entry().await? {
            if !entry.file_name().to_string_lossy().starts_with(PREFIX) {
                continue;
            }
            let age = entry
                .metadata()
                .await?
                .modified()
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok());
            if age.is_some_and(|age| age > STALE_AFTER) {
                let _ = tokio::fs::remove_file(entry.path()).await;
            }
        }
        Ok(Staging { dir })
    }

    /// The staging directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new empty file that refuses to grow beyond `limit` bytes.
    pub async fn create(&self, limit: u64) -> io::Result<StagingFile> {
        let dir = self.dir.clone();
        let (file, path) = tokio::task::spawn_blocking(move || {
            tempfile::Builder::new()
                .prefix(PREFIX)
                .suffix(".part")
                .tempfile_in(dir)
        })
        .await
        .map_err(io::Error::other)??
        .into_parts();
        Ok(StagingFile {
            file: tokio::fs::File::from_std(file),
            path,
            hasher: Sha256::new(),
            size: 0,
            limit,
            prefix: Vec::new(),
        })
    }
}

impl StagingFile {
    /// Appends `chunk`; refuses (and writes nothing of it) once the total would pass the limit.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), StageError> {
        let size = self.size + chunk.len() as u64;
        if size > self.limit {
            return Err(StageError::TooLarge { limit: self.limit });
        }
        if self.prefix.len() < SNIFF_LEN {
            let wanted = (SNIFF_LEN - self.prefix.len()).min(chunk.len());
            self.prefix.extend_from_slice(&chunk[..wanted]);
        }
        self.hasher.update(chunk);
        self.file.write_all(chunk).await?;
        self.size = size;
        Ok(())
    }

    /// The first bytes (up to [`SNIFF_LEN`]), for content detection.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// True once enough bytes arrived to detect the content type.
    pub fn prefix_complete(&self) -> bool {
        self.prefix.len() >= SNIFF_LEN
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Flushes the bytes to disk and closes the file.
    pub async fn finish(mut self) -> io::Result<StagedFile> {
        self.file.flush().await?;
        self.file.sync_data().await?;
        drop(self.file);
        Ok(StagedFile {
            path: self.path,
            size: self.size,
            sha256: hex::encode(self.hasher.finalize()),
        })
    }
}

impl StagedFile {
    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Lowercase hex SHA-256 of the content.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Where the file is, for a storage backend that copies it elsewhere.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the file to `target` (same file system); blocking, for the local storage.
    pub fn persist(self, target: &Path) -> io::Result<()> {
        self.path.persist(target).map_err(|e| e.error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    #[tokio::test]
    async fn hashes_counts_and_keeps_the_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let staging = Staging::open(dir.path()).await.unwrap();
        let mut file = staging.create(100).await.unwrap();
        file.write(b"hello ").await.unwrap();
        file.write(b"world").await.unwrap();
        assert_eq!(file.prefix(), b"hello world");
        assert!(!file.prefix_complete());
        let done = file.finish().await.unwrap();
        assert_eq!(done.size(), 11);
        assert_eq!(
            done.sha256(),
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(std::fs::read(done.path()).unwrap(), b"hello world");
        drop(done);
        assert_eq!(files(dir.path()), 0, "dropped staged files are deleted");
    }

    #[tokio::test]
    async fn refuses_past_the_limit_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let staging = Staging::open(dir.path()).await.unwrap();
        let mut file = staging.create(10).await.unwrap();
        file.write(b"0123456789").await.unwrap();
        assert!(matches!(
            file.write(b"x").await,
            Err(StageError::TooLarge { limit: 10 })
        ));
        assert_eq!(files(dir.path()), 1);
        drop(file);
        assert_eq!(files(dir.path()), 0);
    }

    #[tokio::test]
    async fn start_up_sweeps_only_old_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join(format!("{PREFIX}old.part"));
        let young = dir.path().join(format!("{PREFIX}young.part"));
        let other = dir.path().join("keep.txt");
        for path in [&old, &young, &other] {
            std::fs::write(path, b"x").unwrap();
        }
        let long_ago = SystemTime::now() - 2 * STALE_AFTER;
        for path in [&old, &other] {
            let file = std::fs::File::options().write(true).open(path).unwrap();
            file.set_modified(long_ago).unwrap();
        }
        Staging::open(dir.path()).await.unwrap();
        assert!(!old.exists());
        assert!(young.exists());
        assert!(other.exists());
    }
}
