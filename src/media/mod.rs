//! Media: uploaded audio, video and images. A file is recognised from its bytes
//! ([`sniff`]), staged while it streams in ([`staging`]), stored once per content in a
//! [`storage`] backend (the local disk or a [`bucket`]), and served to those allowed, also through short-lived signed URLs
//! ([`signing`]). The HTTP side is [`crate::http::media`].

pub mod bucket;
pub mod filename;
pub mod migrate;
pub mod signing;
pub mod sniff;
pub mod staging;
pub mod storage;

use std::{io, sync::Arc, time::Duration};

use jsonwebtoken::Algorithm;
use secrecy::ExposeSecret;

use crate::config::{Config, MediaStore};
pub use bucket::BucketStorage;
pub use signing::{Signature, UrlSigner};
pub use sniff::{Detected, Kind};
pub use staging::{StagedFile, Staging};
pub use storage::{LocalStorage, Storage};

/// What the media handlers share: where files are staged and stored, and the URL signer.
#[derive(Clone)]
pub struct Media {
    pub storage: Arc<dyn Storage>,
    pub staging: Staging,
    pub signer: UrlSigner,
    /// `MEDIA_REDIRECT=presigned`: serve by a redirect to a presigned URL of the store that
    /// lives this long, instead of streaming.
    pub redirect: Option<Duration>,
}

impl Media {
    /// Staging under `<MEDIA_DIR>/tmp`, always local; blobs in `MEDIA_STORE`: by default
    /// `<MEDIA_DIR>/blobs`, on the same file system so that finishing an upload is a rename,
    /// or a bucket.
    pub async fn open(config: &Config) -> io::Result<Media> {
        let (storage, redirect): (Arc<dyn Storage>, _) = match &config.media_store {
            MediaStore::Local => (
                Arc::new(LocalStorage::open(config.media_dir.join("blobs")).await?),
                None,
            ),
            MediaStore::S3(settings) => {
                (Arc::new(BucketStorage::open(settings)?), settings.redirect)
            }
        };
        let staging = Staging::open(config.media_dir.join("tmp")).await?;
        Ok(Media {
            storage,
            staging,
            signer: UrlSigner::new(&signing_secret(config), config.media_url_ttl),
            redirect,
        })
    }
}

/// `MEDIA_URL_SECRET`, else the JWT secret (HS*). With RS256/ES256 the JWT key is public, so
/// without `MEDIA_URL_SECRET` a random key is used: signed URLs then only work on the instance
/// that issued them, until it restarts.
fn signing_secret(config: &Config) -> Vec<u8> {
    if let Some(secret) = &config.media_url_secret {
        return secret.expose_secret().to_vec();
    }
    match config.jwt.algorithm {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            config.jwt.key.expose_secret().to_vec()
        }
        _ => {
            tracing::warn!(
                "MEDIA_URL_SECRET is not set and the JWT key is public: signed media URLs use a \
                 random key and will not verify on other instances or after a restart"
            );
            [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
                .iter()
                .flat_map(|u| u.into_bytes())
                .collect()
        }
    }
}

/// The file id in a media URL (`/media/{id}`, with or without host and query), as
/// `send_message`'s `file_url` may carry one.
pub fn file_id_from_url(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next()?;
    let rest = match path.rsplit_once("/media/") {
        Some((_, rest)) => rest,
        None => path.strip_prefix("media/")?,
    };
    uuid::Uuid::parse_str(rest.trim_end_matches('/'))
        .ok()
        .map(|id| id.hyphenated().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_ids_come_out_of_media_urls() {
        let id = "0b6f1c1e-8d4a-4b7e-9d6a-2f1e0c3b5a79";
        for url in [
            format!("/media/{id}"),
            format!("/media/{id}?expires=1&sig=ab"),
            format!("https://chat.example.com/media/{id}"),
            format!("media/{}", id.to_uppercase()),
        ] {
            assert_eq!(file_id_from_url(&url).as_deref(), Some(id), "{url}");
        }
        for url in ["/media/../etc/passwd", "/files/x", "media/123", ""] {
            assert_eq!(file_id_from_url(url), None, "{url}");
        }
    }
}
