//! Blobs in an S3-compatible bucket (`MEDIA_STORE=s3://bucket/prefix`), through the
//! `object_store` crate: a finished upload is streamed from its staged file (in parts, for
//! large files), and served with ranged GETs, so no instance needs the others' disks.

use std::{io, ops::Range, path::Path, sync::Arc, time::Duration};

use futures_util::{StreamExt, TryStreamExt};
use object_store::{
    Attribute, Attributes, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt,
    RetryConfig,
    aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey},
    buffered::BufWriter,
    path::Path as ObjectPath,
    signer::Signer,
};
use tokio::io::AsyncWriteExt;

use super::{
    staging::StagedFile,
    storage::{ByteStream, Storage, valid_key},
};
use crate::config::S3Settings;

/// Bytes buffered before an upload switches to a multipart upload, and the size of each
/// part (S3's smallest part is 5 MiB).
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts of one upload in flight at once: memory per upload stays under a few parts.
const PARTS_IN_FLIGHT: usize = 2;
/// Bytes read from the staged file at a time.
const COPY_BUFFER: usize = 256 * 1024;

/// An S3-compatible bucket, keys under a prefix.
pub struct BucketStorage {
    store: Arc<AmazonS3>,
    bucket: String,
    prefix: String,
}

/// The bucket and prefix only: nothing of the credentials.
impl std::fmt::Debug for BucketStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketStorage")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl BucketStorage {
    /// A client for the bucket of `settings`; the other `AWS_*` variables `object_store`
    /// knows (web identity, container credentials) are read from the environment, and
    /// `settings` take precedence.
    /// Nothing is sent yet: an unreachable store shows at the first upload or download.
    pub fn open(settings: &S3Settings) -> io::Result<BucketStorage> {
        let client = ClientOptions::new()
            .with_allow_http(settings.allow_http)
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(60));
        // A store that is down answers the client within seconds, not after the crate's
        // default of ten retries over three minutes.
        let retry = RetryConfig {
            max_retries: 2,
            retry_timeout: Duration::from_secs(10),
            ..RetryConfig::default()
        };
        let mut builder = aws_environment()
            .with_client_options(client)
            .with_retry(retry)
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_virtual_hosted_style_request(!settings.path_style);
        if let Some(endpoint) = &settings.endpoint {
            let endpoint = endpoint.as_str().trim_end_matches('/');
            builder = builder.with_endpoint(if settings.path_style {
                endpoint.to_owned()
            } else {
                // Virtual-hosted style against a custom endpoint: the bucket is in the host.
                virtual_hosted(endpoint, &settings.bucket)
            });
        }
        if let (Some(id), Some(secret)) = (&settings.access_key_id, &settings.secret_access_key) {
            builder = builder
                .with_access_key_id(id)
                .with_secret_access_key(secret.expose());
        }
        if let Some(token) = &settings.session_token {
            builder = builder.with_token(token.expose());
        }
        let store = builder.build().map_err(io::Error::other)?;
        Ok(BucketStorage {
            store: Arc::new(store),
            bucket: settings.bucket.clone(),
            prefix: settings.prefix.clone(),
        })
    }

    /// The object of `key`: `<prefix>/<first two hex digits>/<key>`, as on the local disk.
    fn path(&self, key: &str) -> io::Result<ObjectPath> {
        valid_key(key)?;
        let relative = format!("{}/{key}", &key[..2]);
        Ok(if self.prefix.is_empty() {
            ObjectPath::from(relative)
        } else {
            ObjectPath::from(format!("{}/{relative}", self.prefix))
        })
    }
}

/// A builder with the `AWS_*` variables `object_store` knows, as its `from_env` reads them
/// but leaving out empty ones (compose passes unset settings as empty strings, which would
/// otherwise be an empty static key).
fn aws_environment() -> AmazonS3Builder {
    std::env::vars()
        .filter(|(name, value)| name.starts_with("AWS_") && !value.trim().is_empty())
        .filter_map(|(name, value)| {
            let key: AmazonS3ConfigKey = name.to_ascii_lowercase().parse().ok()?;
            Some((key, value))
        })
        .fold(AmazonS3Builder::new(), |builder, (key, value)| {
            builder.with_config(key, value)
        })
}

impl BucketStorage {
    /// Streams the file at `path` into the object of `key`, leaving the file where it is.
    pub async fn put_file(&self, key: &str, path: &Path, content_type: &str) -> io::Result<()> {
        let object = self.path(key)?;
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, content_type.to_owned().into());
        // Up to PART_SIZE in one PUT, beyond it a multipart upload; either way the object
        // appears whole or not at all, and an aborted upload's parts are removed.
        let mut writer = BufWriter::with_capacity(
            self.store.clone() as Arc<dyn ObjectStore>,
            object,
            PART_SIZE,
        )
        .with_max_concurrency(PARTS_IN_FLIGHT)
        .with_attributes(attributes);
        let file = tokio::fs::File::open(path).await?;
        let mut reader = tokio::io::BufReader::with_capacity(COPY_BUFFER, file);
        let copied = async {
            tokio::io::copy_buf(&mut reader, &mut writer).await?;
            writer.shutdown().await
        }
        .await;
        if let Err(e) = copied {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(error = %abort, "an unfinished multipart upload was not aborted");
            }
            return Err(e);
        }
        Ok(())
    }
}

/// `https://host` with `bucket.` in front of the host.
fn virtual_hosted(endpoint: &str, bucket: &str) -> String {
    match endpoint.split_once("://") {
        Some((scheme, host)) => format!("{scheme}://{bucket}.{host}"),
        None => format!("{bucket}.{endpoint}"),
    }
}

/// `object_store`'s errors as `io::Error`, not found kept apart.
fn io_error(error: object_store::Error) -> io::Error {
    match error {
        object_store::Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, error),
        other => io::Error::other(other),
    }
}

#[async_trait::async_trait]
impl Storage for BucketStorage {
    async fn put(&self, key: &str, file: StagedFile, content_type: &str) -> io::Result<()> {
        // The staged file is deleted when `file` is dropped, after the copy.
        self.put_file(key, file.path(), content_type).await
    }

    async fn open(&self, key: &str, range: Range<u64>) -> io::Result<ByteStream> {
        let options = GetOptions {
            range: Some(GetRange::Bounded(range)),
            ..GetOptions::default()
        };
        let result = self
            .store
            .get_opts(&self.path(key)?, options)
            .await
            .map_err(io_error)?;
        Ok(result.into_stream().map_err(io_error).boxed())
    }

    async fn exists(&self, key: &str) -> io::Result<bool> {
        Ok(self.size(key).await?.is_some())
    }

    async fn size(&self, key: &str) -> io::Result<Option<u64>> {
        match self.store.head(&self.path(key)?).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(io_error(e)),
        }
    }

    async fn delete(&self, key: &str) -> io::Result<()> {
        match self.store.delete(&self.path(key)?).await {
            Err(e) if !matches!(e, object_store::Error::NotFound { .. }) => Err(io_error(e)),
            _ => Ok(()),
        }
    }

    async fn presigned_url(&self, key: &str, ttl: Duration) -> io::Result<Option<url::Url>> {
        let url = self
            .store
            .signed_url(axum::http::Method::GET, &self.path(key)?, ttl)
            .await
            .map_err(io_error)?;
        Ok(Some(url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(prefix: &str, endpoint: &str, path_style: bool) -> S3Settings {
        S3Settings {
            bucket: "chat-media".into(),
            prefix: prefix.into(),
            endpoint: Some(endpoint.parse().unwrap()),
            region: "us-east-1".into(),
            path_style,
            allow_http: true,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            redirect: None,
        }
    }

    #[test]
    fn keys_become_objects_under_the_prefix() {
        let key = "ab".to_owned() + &"c".repeat(62);
        for (prefix, object) in [
            ("", format!("ab/{key}")),
            ("prod/media", format!("prod/media/ab/{key}")),
        ] {
            let bucket =
                BucketStorage::open(&settings(prefix, "http://127.0.0.1:9", true)).unwrap();
            assert_eq!(bucket.path(&key).unwrap().as_ref(), object);
        }
        let bucket = BucketStorage::open(&settings("", "http://127.0.0.1:9", true)).unwrap();
        for key in ["../etc/passwd", "a/b", "x"] {
            assert!(bucket.path(key).is_err(), "{key}");
        }
    }

    #[tokio::test]
    async fn presigned_urls_follow_the_addressing_style() {
        let key = "ab".to_owned() + &"c".repeat(62);
        let mut with_keys = settings("p", "https://minio.internal:9000", true);
        with_keys.access_key_id = Some("AKID".into());
        with_keys.secret_access_key = Some(crate::config::SecretText::new("s3cret"));
        let path_style = BucketStorage::open(&with_keys).unwrap();
        let url = path_style
            .presigned_url(&key, Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert!(
            url.as_str().starts_with(&format!(
                "https://minio.internal:9000/chat-media/p/ab/{key}?"
            )),
            "{url}"
        );
        with_keys.path_style = false;
        let virtual_hosted = BucketStorage::open(&with_keys).unwrap();
        let url = virtual_hosted
            .presigned_url(&key, Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert!(
            url.as_str().starts_with(&format!(
                "https://chat-media.minio.internal:9000/p/ab/{key}?"
            )),
            "{url}"
        );
        assert!(!url.as_str().contains("s3cret"), "{url}");
        assert!(format!("{virtual_hosted:?}").contains("chat-media"));
    }
}
