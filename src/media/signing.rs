//! Short-lived signed media URLs, `/media/{file_id}?expires=<unix>&sig=<hex>`: what
//! `<audio>`/`<video>`/`<img>` tags use, since they cannot send an `Authorization` header.
//! The signature is HMAC-SHA256 over the file id and the expiry.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Separates the media key from other uses of the same secret.
const KEY_CONTEXT: &[u8] = b"jetchat/media-url/v1";

/// Issues and checks signed URLs.
#[derive(Clone)]
pub struct UrlSigner {
    mac: HmacSha256,
    ttl: Duration,
}

/// What a signature says about a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signature {
    /// Issued by us for this file, not expired.
    Valid,
    /// Issued by us for this file, past its expiry.
    Expired,
    /// Not ours, altered, or for another file.
    Invalid,
}

impl UrlSigner {
    /// A signer whose key is derived from `secret` (the JWT secret, or `MEDIA_URL_SECRET`);
    /// its URLs stay valid for `ttl`.
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut derive =
            HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
        derive.update(KEY_CONTEXT);
        let key = derive.finalize().into_bytes();
        UrlSigner {
            mac: HmacSha256::new_from_slice(&key).expect("HMAC takes a key of any length"),
            ttl,
        }
    }

    /// How long an issued URL stays valid.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Replaces an upload's stored `file_url` with a signed one, for the eyes of a client.
    pub fn sign_view(&self, view: &mut crate::domain::MessageView, now: DateTime<Utc>) {
        if let Some(file_id) = &view.file_id {
            view.file_url = Some(self.url(file_id, now));
        }
    }

    /// The signed path of `file_id`, valid for the TTL from `now`.
    pub fn url(&self, file_id: &str, now: DateTime<Utc>) -> String {
        let expires = now.timestamp() + i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX / 2);
        format!(
            "/media/{file_id}?expires={expires}&sig={}",
            self.sign(file_id, expires)
        )
    }

    /// The hex signature of `file_id` until `expires` (Unix seconds).
    pub fn sign(&self, file_id: &str, expires: i64) -> String {
        hex::encode(self.message(file_id, expires).finalize().into_bytes())
    }

    /// Checks a signature in constant time.
    pub fn verify(&self, file_id: &str, expires: i64, sig: &str, now: DateTime<Utc>) -> Signature {
        let Ok(sig) = hex::decode(sig) else {
            return Signature::Invalid;
        };
        if self.message(file_id, expires).verify_slice(&sig).is_err() {
            return Signature::Invalid;
        }
        if now.timestamp() > expires {
            Signature::Expired
        } else {
            Signature::Valid
        }
    }

    fn message(&self, file_id: &str, expires: i64) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(file_id.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0b6f1c1e-8d4a-4b7e-9d6a-2f1e0c3b5a79";

    fn signer() -> UrlSigner {
        UrlSigner::new(b"secret", Duration::from_secs(60))
    }

    fn query(url: &str) -> (i64, String) {
        let (_, query) = url.split_once('?').unwrap();
        let (expires, sig) = query.split_once('&').unwrap();
        (
            expires.strip_prefix("expires=").unwrap().parse().unwrap(),
            sig.strip_prefix("sig=").unwrap().to_owned(),
        )
    }

    #[test]
    fn issued_urls_verify_until_they_expire() {
        let now = Utc::now();
        let url = signer().url(ID, now);
        assert!(url.starts_with(&format!("/media/{ID}?expires=")));
        let (expires, sig) = query(&url);
        assert_eq!(expires, now.timestamp() + 60);
        assert_eq!(signer().verify(ID, expires, &sig, now), Signature::Valid);
        let later = now + chrono::Duration::seconds(61);
        assert_eq!(
            signer().verify(ID, expires, &sig, later),
            Signature::Expired
        );
    }

    #[test]
    fn altered_urls_do_not_verify() {
        let now = Utc::now();
        let (expires, sig) = query(&signer().url(ID, now));
        let other = "1b6f1c1e-8d4a-4b7e-9d6a-2f1e0c3b5a79";
        assert_eq!(
            signer().verify(other, expires, &sig, now),
            Signature::Invalid
        );
        assert_eq!(
            signer().verify(ID, expires + 1, &sig, now),
            Signature::Invalid
        );
        assert_eq!(signer().verify(ID, expires, "zz", now), Signature::Invalid);
        assert_eq!(
            signer().verify(ID, expires, &sig[..10], now),
            Signature::Invalid
        );
        let foreign = UrlSigner::new(b"other", Duration::from_secs(60));
        assert_eq!(foreign.verify(ID, expires, &sig, now), Signature::Invalid);
    }
}
