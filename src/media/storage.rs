//! Where finished blobs live, behind one small trait: the local disk here, or an
//! S3-compatible bucket ([`super::bucket`]), without the handlers knowing which.

use std::{
    io,
    ops::Range,
    path::{Path, PathBuf},
    time::Duration,
};

use bytes::Bytes;
use futures_util::{StreamExt, stream::BoxStream};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::staging::StagedFile;

/// The bytes of a blob, streamed.
pub type ByteStream = BoxStream<'static, io::Result<Bytes>>;

/// A content-addressed blob store: keys are the content's SHA-256, so a key is written once
/// and never changes.
#[async_trait::async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Stores a finished staged file under `key`, with the content's MIME type where the
    /// backend keeps one. When `key` exists already the bytes are the same and the staged
    /// copy is simply discarded.
    async fn put(&self, key: &str, file: StagedFile, content_type: &str) -> io::Result<()>;

    /// Streams the bytes of `range` (end exclusive) of the blob.
    async fn open(&self, key: &str, range: Range<u64>) -> io::Result<ByteStream>;

    /// True when a blob is stored under `key`.
    async fn exists(&self, key: &str) -> io::Result<bool>;

    /// The blob's size in bytes, `None` when there is none under `key`.
    async fn size(&self, key: &str) -> io::Result<Option<u64>>;

    /// Deletes the blob under `key`; none there is no error.
    async fn delete(&self, key: &str) -> io::Result<()>;

    /// A URL of the store itself that fetches the blob without credentials for `ttl`;
    /// `None` for a backend that has no such URLs (the local disk).
    async fn presigned_url(&self, _key: &str, _ttl: Duration) -> io::Result<Option<url::Url>> {
        Ok(None)
    }
}

/// Blobs as files under `<MEDIA_DIR>/blobs/<first two hex digits>/<key>`. Several instances
/// can only share it through a shared file system.
#[derive(Clone, Debug)]
pub struct LocalStorage {
    root: PathBuf,
}

/// Bytes read from disk per chunk of a response.
const READ_CHUNK: usize = 64 * 1024;

impl LocalStorage {
    /// Uses (and creates) `root`.
    pub async fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        tokio::fs::create_dir_all(&root).await?;
        Ok(LocalStorage { root })
    }

    /// The file of `key`. Keys are produced by the server, but are checked anyway so that no
    /// key can name a path outside the root.
    fn path(&self, key: &str) -> io::Result<PathBuf> {
        valid_key(key)?;
        Ok(self.root.join(&key[..2]).join(key))
    }
}

/// Refuses a key that could name anything but one blob (a path, a parent, an empty name):
/// keys are produced by the server, but are checked anyway.
pub(super) fn valid_key(key: &str) -> io::Result<()> {
    let valid = (2..=128).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a storage key: {key:?}"),
        ));
    }
    Ok(())
}

#[async_trait::async_trait]
impl Storage for LocalStorage {
    async fn put(&self, key: &str, file: StagedFile, _content_type: &str) -> io::Result<()> {
        let path = self.path(key)?;
        if tokio::fs::try_exists(&path).await? {
            return Ok(());
        }
        let dir = path.parent().map(Path::to_owned).unwrap_or_default();
        tokio::fs::create_dir_all(&dir).await?;
        // A rename within MEDIA_DIR (staging is `<MEDIA_DIR>/tmp`): atomic, so a reader sees
        // the whole blob or none. Two uploads of the same bytes racing here write the same file.
        tokio::task::spawn_blocking(move || file.persist(&path))
            .await
            .map_err(io::Error::other)?
    }

    async fn open(&self, key: &str, range: Range<u64>) -> io::Result<ByteStream> {
        let mut file = tokio::fs::File::open(self.path(key)?).await?;
        file.seek(io::SeekFrom::Start(range.start)).await?;
        let length = range.end.saturating_sub(range.start);
        Ok(ReaderStream::with_capacity(file.take(length), READ_CHUNK).boxed())
    }

    async fn exists(&self, key: &str) -> io::Result<bool> {
        tokio::fs::try_exists(self.path(key)?).await
    }

    async fn size(&self, key: &str) -> io::Result<Option<u64>> {
        match tokio::fs::metadata(self.path(key)?).await {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn delete(&self, key: &str) -> io::Result<()> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::staging::Staging;

    async fn staged(staging: &Staging, bytes: &[u8]) -> StagedFile {
        let mut file = staging.create(1024).await.unwrap();
        file.write(bytes).await.unwrap();
        file.finish().await.unwrap()
    }

    async fn read(storage: &LocalStorage, key: &str, range: Range<u64>) -> Vec<u8> {
        let mut stream = storage.open(key, range).await.unwrap();
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn put_then_read_ranges_and_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let staging = Staging::open(dir.path().join("tmp")).await.unwrap();
        let storage = LocalStorage::open(dir.path().join("blobs")).await.unwrap();
        let file = staged(&staging, b"hello world").await;
        let key = file.sha256().to_owned();
        assert!(!storage.exists(&key).await.unwrap());
        assert_eq!(storage.size(&key).await.unwrap(), None);

        storage.put(&key, file, "text/plain").await.unwrap();
        assert!(storage.exists(&key).await.unwrap());
        assert_eq!(storage.size(&key).await.unwrap(), Some(11));
        assert_eq!(read(&storage, &key, 0..11).await, b"hello world");
        assert_eq!(read(&storage, &key, 6..11).await, b"world");
        assert_eq!(read(&storage, &key, 0..1).await, b"h");

        // The same content again: nothing changes, the staged copy is gone.
        storage
            .put(&key, staged(&staging, b"hello world").await, "text/plain")
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        assert_eq!(storage.size(&key).await.unwrap(), Some(11));
    }

    #[tokio::test]
    async fn keys_cannot_name_paths() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::open(dir.path()).await.unwrap();
        for key in ["../etc/passwd", "a/b", "", "x", "..", "a\0b"] {
            assert_eq!(
                storage.exists(key).await.unwrap_err().kind(),
                io::ErrorKind::InvalidInput,
                "{key:?}"
            );
        }
    }
}
