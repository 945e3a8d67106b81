//! JWT verification for tokens issued by Django (SimpleJWT) and the `AuthUser` extractor.

use std::sync::Arc;

use axum::{
    Json,
    extract::{FromRef, FromRequestParts},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use secrecy::ExposeSecret;
use serde_json::{Map, Value};

use crate::{config::JwtSettings, domain::UserId};

/// Why a token was refused; the text goes back to the client.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// No token in the header or the query.
    #[error("authentication credentials were not provided")]
    Missing,
    /// The token is past its `exp`.
    #[error("token has expired")]
    Expired,
    /// The token's `nbf` is still ahead.
    #[error("token is not valid yet")]
    NotYetValid,
    /// Bad signature, wrong algorithm, not a JWT at all.
    #[error("token is invalid")]
    Invalid,
    /// A refresh or other non-access token.
    #[error("token is not an access token")]
    NotAccess,
    /// The user id claim is absent or not a positive integer.
    #[error("token has no valid user id")]
    NoUserId,
}

/// A verified access token: whose it is and until when it is good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessToken {
    pub user_id: UserId,
    /// The `exp` claim, Unix seconds: a socket opened with the token lives no longer.
    pub exp: i64,
    /// The token carries `"is_staff": true` (Django adds it for its staff, e.g. in SimpleJWT's
    /// `get_token`): moderation reads such as message revisions are allowed.
    pub staff: bool,
    /// The name and avatar the token's claims give (`JWT_NAME_CLAIM`, `JWT_AVATAR_CLAIM`),
    /// when it carries a name.
    pub profile: Option<ClaimedProfile>,
}

/// What an access token says of its user, unchecked: the gateway records it in the user
/// directory when it is valid and differs from the directory's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedProfile {
    pub display_name: String,
    /// Absent, null or empty: no avatar.
    pub avatar_url: Option<String>,
    /// The token's `iat` (Unix seconds): when Django said it.
    pub issued_at: Option<i64>,
}

/// Verifies tokens; built once from the settings.
#[derive(Clone)]
pub struct JwtKeys {
    decoding: DecodingKey,
    validation: Validation,
    user_id_claim: String,
    name_claim: Option<String>,
    avatar_claim: Option<String>,
}

impl JwtKeys {
    /// Builds the verifier; a malformed PEM key is a start-up error.
    pub fn new(settings: &JwtSettings) -> Result<Self, jsonwebtoken::errors::Error> {
        let key = settings.key.expose_secret();
        let decoding = match settings.algorithm {
            Algorithm::RS256 => DecodingKey::from_rsa_pem(key)?,
            Algorithm::ES256 => DecodingKey::from_ec_pem(key)?,
            _ => DecodingKey::from_secret(key),
        };
        // Pinned algorithm (so `alg: none` or an HS/RS confusion is refused), `exp` required,
        // `nbf` honoured when present; `iss` and `aud` required and checked when configured.
        // Without JWT_AUDIENCE a token that names an audience is refused (RFC 7519 4.1.3).
        let mut validation = Validation::new(settings.algorithm);
        let mut required = vec!["exp"];
        validation.validate_nbf = true;
        if let Some(issuer) = &settings.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        if let Some(audience) = &settings.audience {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        validation.leeway = 5;
        Ok(JwtKeys {
            decoding,
            validation,
            user_id_claim: settings.user_id_claim.clone(),
            name_claim: settings.name_claim.clone(),
            avatar_claim: settings.avatar_claim.clone(),
        })
    }

    /// Checks a token and returns the user it was issued to.
    pub fn verify(&self, token: &str) -> Result<UserId, AuthError> {
        self.verify_access(token).map(|t| t.user_id)
    }

    /// Checks a token and returns its user and its expiry.
    pub fn verify_access(&self, token: &str) -> Result<AccessToken, AuthError> {
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &self.decoding, &self.validation)
                .map_err(|e| match e.kind() {
                    ErrorKind::ExpiredSignature => AuthError::Expired,
                    ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                    _ => AuthError::Invalid,
                })?;
        let claims = data.claims;
        // SimpleJWT marks access tokens; a token without the claim is not SimpleJWT's refresh.
        match claims.get("token_type") {
            None => {}
            Some(Value::String(t)) if t == "access" => {}
            Some(_) => return Err(AuthError::NotAccess),
        }
        let user_id = match claims.get(&self.user_id_claim) {
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        let user_id = user_id.filter(|id| *id > 0).ok_or(AuthError::NoUserId)?;
        // `Validation` required `exp` and checked it is a number in the future.
        let exp = claims
            .get("exp")
            .and_then(Value::as_f64)
            .ok_or(AuthError::Invalid)? as i64;
        let staff = claims.get("is_staff") == Some(&Value::Bool(true));
        let profile = self.claimed_profile(&claims);
        Ok(AccessToken {
            user_id,
            exp,
            staff,
            profile,
        })
    }

    /// The name (a string) and avatar (a string, or nothing) the claims carry.
    fn claimed_profile(&self, claims: &Map<String, Value>) -> Option<ClaimedProfile> {
        let name = claims.get(self.name_claim.as_deref()?)?.as_str()?;
        let avatar_url = self
            .avatar_claim
            .as_deref()
            .and_then(|claim| claims.get(claim))
            .and_then(Value::as_str)
            .filter(|url| !url.is_empty())
            .map(str::to_owned);
        Some(ClaimedProfile {
            display_name: name.to_owned(),
            avatar_url,
            issued_at: claims.get("iat").and_then(Value::as_f64).map(|t| t as i64),
        })
    }
}

/// Mints an access token shaped like SimpleJWT's, for development and examples; only for
/// HMAC algorithms (with RS256/ES256 the private key lives with Django).
pub fn dev_token(settings: &JwtSettings, user_id: UserId, minutes: i64) -> anyhow::Result<String> {
    dev_token_with_profile(settings, user_id, minutes, None, None)
}

/// [`dev_token`] with the name and avatar claims (`JWT_NAME_CLAIM`, `JWT_AVATAR_CLAIM`) a
/// Django login serializer adds, for trying the user directory.
pub fn dev_token_with_profile(
    settings: &JwtSettings,
    user_id: UserId,
    minutes: i64,
    name: Option<&str>,
    avatar: Option<&str>,
) -> anyhow::Result<String> {
    use jsonwebtoken::{EncodingKey, Header, encode};
    if !matches!(
        settings.algorithm,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    ) {
        anyhow::bail!(
            "JWT_ALGORITHM is {:?}: tokens come from Django's private key",
            settings.algorithm
        );
    }
    let now = chrono::Utc::now().timestamp();
    let mut claims = Map::new();
    claims.insert("token_type".into(), "access".into());
    claims.insert("exp".into(), (now + minutes * 60).into());
    claims.insert("iat".into(), now.into());
    claims.insert(
        "jti".into(),
        uuid::Uuid::new_v4().simple().to_string().into(),
    );
    claims.insert(settings.user_id_claim.clone(), user_id.into());
    for (claim, value) in [
        (&settings.name_claim, name),
        (&settings.avatar_claim, avatar),
    ] {
        if let (Some(claim), Some(value)) = (claim, value) {
            claims.insert(claim.clone(), value.into());
        }
    }
    let header = Header::new(settings.algorithm);
    Ok(encode(
        &header,
        &claims,
        &EncodingKey::from_secret(settings.key.expose_secret()),
    )?)
}

/// The token from `Authorization: Bearer …`, if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The authenticated caller of a REST handler. Works with any state that yields the keys
/// (`Arc<JwtKeys>: FromRef<S>`), as the axum JWT example does: auth knows nothing of the app.
#[derive(Clone, Copy, Debug)]
pub struct AuthUser(pub UserId);

impl<S> FromRequestParts<S> for AuthUser
where
    Arc<JwtKeys>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthRejection> {
        access_token(parts, state).map(|token| AuthUser(token.user_id))
    }
}

/// A REST caller whose token says they are Django staff (`"is_staff": true`); anyone else is
/// refused with 403.
#[derive(Clone, Copy, Debug)]
pub struct StaffUser(pub UserId);

impl<S> FromRequestParts<S> for StaffUser
where
    Arc<JwtKeys>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthRejection> {
        match access_token(parts, state)? {
            token if token.staff => Ok(StaffUser(token.user_id)),
            _ => Err(AuthRejection::StaffOnly),
        }
    }
}

/// The request's `Authorization: Bearer` token, verified with the state's keys.
fn access_token<S>(parts: &Parts, state: &S) -> Result<AccessToken, AuthRejection>
where
    Arc<JwtKeys>: FromRef<S>,
{
    let token =
        bearer_token(&parts.headers).ok_or(AuthRejection::Unauthorized(AuthError::Missing))?;
    Arc::<JwtKeys>::from_ref(state)
        .verify_access(token)
        .map_err(AuthRejection::Unauthorized)
}

/// Why the extractors refused a request: 401 with `WWW-Authenticate: Bearer`, or 403; the
/// body is `{"detail": "...", "code": "..."}` like every REST error.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthRejection {
    #[error("{0}")]
    Unauthorized(AuthError),
    #[error("staff only")]
    StaffOnly,
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        let code = match self {
            AuthRejection::Unauthorized(_) => crate::domain::ErrorCode::InvalidToken,
            AuthRejection::StaffOnly => crate::domain::ErrorCode::Forbidden,
        };
        let body = Json(serde_json::json!({ "detail": self.to_string(), "code": code }));
        match self {
            AuthRejection::Unauthorized(_) => {
                let mut response = (StatusCode::UNAUTHORIZED, body).into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response
            }
            AuthRejection::StaffOnly => (StatusCode::FORBIDDEN, body).into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    fn keys() -> JwtKeys {
        JwtKeys::new(&JwtSettings {
            algorithm: Algorithm::HS256,
            key: b"secret".to_vec().into(),
            user_id_claim: "user_id".into(),
            name_claim: Some("name".into()),
            avatar_claim: Some("avatar".into()),
            issuer: None,
            audience: None,
        })
        .unwrap()
    }

    fn token(claims: Value) -> String {
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap()
    }

    fn exp() -> i64 {
        chrono::Utc::now().timestamp() + 300
    }

    #[test]
    fn accepts_integer_and_string_user_ids() {
        let k = keys();
        assert_eq!(
            k.verify(&token(
                json!({"token_type":"access","exp":exp(),"user_id":7})
            )),
            Ok(7)
        );
        assert_eq!(
            k.verify(&token(
                json!({"token_type":"access","exp":exp(),"user_id":"8"})
            )),
            Ok(8)
        );
    }

    #[test]
    fn the_expiry_comes_with_the_user() {
        let exp = exp();
        assert_eq!(
            keys().verify_access(&token(json!({"token_type":"access","exp":exp,"user_id":7}))),
            Ok(AccessToken {
                user_id: 7,
                exp,
                staff: false,
                profile: None,
            })
        );
    }

    #[test]
    fn the_name_and_avatar_claims_come_with_the_user() {
        let claims = |extra: Value| {
            let mut c = json!({"token_type":"access","exp":exp(),"user_id":7,"iat":1_700_000_000});
            c.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            keys().verify_access(&token(c)).unwrap().profile
        };
        assert_eq!(
            claims(json!({"name":"Ann","avatar":"https://cdn.example/a.png"})),
            Some(ClaimedProfile {
                display_name: "Ann".into(),
                avatar_url: Some("https://cdn.example/a.png".into()),
                issued_at: Some(1_700_000_000),
            })
        );
        // An empty avatar (Django's empty ImageField) is none; no name, no profile.
        assert_eq!(
            claims(json!({"name":"Ann","avatar":""}))
                .unwrap()
                .avatar_url,
            None
        );
        assert_eq!(claims(json!({"avatar":"https://cdn.example/a.png"})), None);
        assert_eq!(claims(json!({"name":42})), None);
    }

    #[test]
    fn dev_tokens_verify() {
        let settings = JwtSettings {
            algorithm: Algorithm::HS256,
            key: b"secret".to_vec().into(),
            user_id_claim: "user_id".into(),
            name_claim: Some("name".into()),
            avatar_claim: Some("avatar".into()),
            issuer: None,
            audience: None,
        };
        assert_eq!(keys().verify(&dev_token(&settings, 42, 5).unwrap()), Ok(42));
    }

    #[test]
    fn refuses_bad_tokens() {
        let k = keys();
        assert_eq!(
            k.verify(&token(
                json!({"token_type":"refresh","exp":exp(),"user_id":7})
            )),
            Err(AuthError::NotAccess)
        );
        assert_eq!(
            k.verify(&token(
                json!({"token_type":"access","exp":1000,"user_id":7})
            )),
            Err(AuthError::Expired)
        );
        assert_eq!(
            k.verify(&token(json!({"token_type":"access","user_id":7}))),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            k.verify(&token(
                json!({"token_type":"access","exp":exp(),"user_id":"x"})
            )),
            Err(AuthError::NoUserId)
        );
        assert_eq!(k.verify("not.a.jwt"), Err(AuthError::Invalid));
        assert_eq!(
            k.verify(&token(
                json!({"token_type":"access","exp":exp(),"nbf":exp(),"user_id":7})
            )),
            Err(AuthError::NotYetValid)
        );
    }

    #[test]
    fn issuer_and_audience_are_checked_when_configured() {
        let k = JwtKeys::new(&JwtSettings {
            algorithm: Algorithm::HS256,
            key: b"secret".to_vec().into(),
            user_id_claim: "user_id".into(),
            name_claim: Some("name".into()),
            avatar_claim: Some("avatar".into()),
            issuer: Some("https://django.example".into()),
            audience: Some("jetchat".into()),
        })
        .unwrap();
        let claims = |iss: Value, aud: Value| {
            let mut c = json!({"token_type":"access","exp":exp(),"user_id":7});
            for (name, value) in [("iss", iss), ("aud", aud)] {
                if !value.is_null() {
                    c[name] = value;
                }
            }
            token(c)
        };
        assert_eq!(
            k.verify(&claims(json!("https://django.example"), json!("jetchat"))),
            Ok(7)
        );
        assert_eq!(
            k.verify(&claims(
                json!("https://django.example"),
                json!(["other", "jetchat"])
            )),
            Ok(7)
        );
        for (iss, aud) in [
            (json!("https://evil.example"), json!("jetchat")),
            (json!("https://django.example"), json!("other")),
            (Value::Null, json!("jetchat")),
            (json!("https://django.example"), Value::Null),
        ] {
            assert_eq!(
                k.verify(&claims(iss.clone(), aud.clone())),
                Err(AuthError::Invalid),
                "{iss} {aud}"
            );
        }
    }
}
