//! `jetchat media migrate`: copies the blobs of `<MEDIA_DIR>/blobs` into the bucket of
//! `MEDIA_STORE`, so an instance that used the local disk can move to object storage.
//! Each blob's content is checked against its name (its SHA-256) before it is copied and
//! read back from the bucket after; a blob already in the bucket is skipped, so a run that
//! was interrupted is simply run again. The local files are left in place.

use std::{io, path::Path};

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::{BucketStorage, Storage, sniff};

/// What a run did, blob by blob.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Copied and verified in the bucket.
    pub copied: u64,
    /// In the bucket already with the same size (an earlier run's).
    pub present: u64,
    /// Files whose content is not their name's hash, or that could not be copied: each with
    /// its reason. They are not in the bucket (or were there before).
    pub failed: Vec<(String, String)>,
}

/// Copies every blob under `blobs` into `bucket`.
pub async fn migrate(blobs: &Path, bucket: &BucketStorage) -> io::Result<MigrationReport> {
    let mut report = MigrationReport::default();
    for (key, path) in local_blobs(blobs).await? {
        let size = tokio::fs::metadata(&path).await?.len();
        if bucket.size(&key).await? == Some(size) {
            report.present += 1;
            continue;
        }
        match copy(&key, &path, bucket).await {
            Ok(()) => {
                tracing::info!(key, size, "blob copied");
                report.copied += 1;
            }
            Err(e) => report.failed.push((key, e.to_string())),
        }
    }
    Ok(report)
}

/// The blobs' keys and files: `<blobs>/<two hex digits>/<key>`; anything else is ignored.
async fn local_blobs(blobs: &Path) -> io::Result<Vec<(String, std::path::PathBuf)>> {
    let mut found = Vec::new();
    let mut shards = match tokio::fs::read_dir(blobs).await {
        Ok(shards) => shards,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    while let Some(shard) = shards.next_entry().await? {
        if !shard.file_type().await?.is_dir() {
            continue;
        }
        let mut files = tokio::fs::read_dir(shard.path()).await?;
        while let Some(file) = files.next_entry().await? {
            let name = file.file_name().to_string_lossy().into_owned();
            if file.file_type().await?.is_file()
                && name.starts_with(&*shard.file_name().to_string_lossy())
            {
                found.push((name, file.path()));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Checks the file against its key, uploads it, and reads the object back to check it too.
async fn copy(key: &str, path: &Path, bucket: &BucketStorage) -> io::Result<()> {
    let (sha256, prefix, size) = hash_file(path).await?;
    if sha256 != key {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the file's SHA-256 is {sha256}, not its name: left out"),
        ));
    }
    let content_type = sniff::sniff(&prefix)
        .map(|detected| detected.mime)
        .unwrap_or("application/octet-stream");
    bucket.put_file(key, path, content_type).await?;
    let mut stored = bucket.open(key, 0..size).await?;
    let mut hasher = Sha256::new();
    let mut read = 0u64;
    while let Some(chunk) = stored.next().await {
        let chunk = chunk?;
        read += chunk.len() as u64;
        hasher.update(&chunk);
    }
    let stored = hex::encode(hasher.finalize());
    if stored != key || read != size {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the bucket holds {read} bytes with SHA-256 {stored} after the copy"),
        ));
    }
    Ok(())
}

/// The file's SHA-256, its first bytes (for the content type) and its size.
async fn hash_file(path: &Path) -> io::Result<(String, Vec<u8>, u64)> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut prefix = Vec::new();
    let mut size = 0u64;
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        if prefix.len() < sniff::SNIFF_LEN {
            let wanted = (sniff::SNIFF_LEN - prefix.len()).min(n);
            prefix.extend_from_slice(&buffer[..wanted]);
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), prefix, size))
}
