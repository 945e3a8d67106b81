//! Media over HTTP: `POST /upload` streams a file in, `GET /media/{file_id}` streams it out
//! with ranges and entity tags, to its uploader, to the members of chats where a message
//! carries it, and to holders of a signed URL.

use crate::limits::Limit;
use axum::{
    Json,
    body::Body,
    extract::{
        DefaultBodyLimit, FromRequest, Multipart, Request, State,
        multipart::{Field, MultipartError},
    },
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ApiError, ErrorBody,
    extract::{Path, Query},
};
use crate::{
    auth::{AuthError, AuthUser, bearer_token},
    bus::messages::{Command, Outcome, RegisterUpload, VERSION},
    domain::UserId,
    media::{Detected, Kind, Signature, StagedFile, filename, sniff, staging::StageError},
    state::AppState,
    store::{upload, uploads},
};

/// What a multipart body may add to the file's own bytes (boundaries, part headers, a long
/// file name) before the whole request counts as too large.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;

/// The multipart body of `POST /upload`.
#[derive(ToSchema)]
pub struct UploadForm {
    /// The file: audio (Ogg/Opus, MP3, M4A/AAC, WAV, WebM, FLAC), video (MP4, WebM, MOV) or
    /// an image (JPEG, PNG, WebP, GIF). The type is read from the content, not the name.
    #[schema(value_type = String, format = Binary, content_media_type = "application/octet-stream")]
    pub file: Vec<u8>,
}

/// A stored upload.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UploadedFile {
    /// Refers to the file in `send_message` and in `/media/{file_id}`.
    pub file_id: String,
    /// A signed URL that fetches the file without a token (for `<audio>`, `<video>`, `<img>`),
    /// valid for `MEDIA_URL_TTL`.
    pub file_url: String,
    /// The MIME type detected from the content.
    pub content_type: String,
    /// `audio`, `video` or `image`: the message `content_type` to send it with.
    pub kind: Kind,
    /// Bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of the content (also the `ETag`).
    pub sha256: String,
    /// The client's file name, sanitised.
    pub filename: String,
}

/// The signature of a signed media URL.
#[derive(Debug, Deserialize, IntoParams)]
pub struct SignedUrlQuery {
    /// Expiry of a signed URL, Unix seconds.
    pub expires: Option<String>,
    /// HMAC-SHA256 signature of a signed URL, hex.
    pub sig: Option<String>,
}

/// The bytes of a file.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct FileBytes(#[allow(dead_code)] Vec<u8>);

/// Uploads a voice note, a video or an image.
///
/// The body streams to disk as it arrives and is refused with 413 as soon as it passes
/// `MAX_UPLOAD_BYTES` or the uploader's quota (`UPLOAD_QUOTA_BYTES`). The type comes from the
/// content; anything but the supported audio, video and image formats is refused with 415.
/// Uploading the same bytes again answers 200 with the earlier file.
#[utoipa::path(post, path = "/upload", tag = "media",
    request_body(content = inline(UploadForm), content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored", body = UploadedFile),
        (status = 200, description = "The same content was uploaded before by the same user: \
                                      that file", body = UploadedFile),
        (status = 401, body = ErrorBody),
        (status = 413, description = "Larger than `MAX_UPLOAD_BYTES`, or over the quota",
         body = ErrorBody),
        (status = 415, description = "Not a supported audio, video or image format",
         body = ErrorBody),
        (status = 422, description = "No `file` field, an empty file or a malformed body",
         body = ErrorBody),
        (status = 429, description = "More than `RATE_UPLOADS_PER_MIN` uploads in a minute",
         body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The media storage (`MEDIA_STORE`) is unavailable: \
                                      nothing was stored, try again", body = ErrorBody),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(user_id = user))]
pub async fn upload(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    request: Request,
) -> Result<(StatusCode, Json<UploadedFile>), ApiError> {
    // Before the body is read or the database asked.
    state.limits.check(Limit::Uploads, user)?;
    let max = state.config.max_upload_bytes;
    let quota = Quota::of(&state, user).await?;
    if let Some(length) = content_length(request.headers()) {
        if length > max + MULTIPART_OVERHEAD {
            return Err(too_large(max));
        }
        quota.check(length.saturating_sub(MULTIPART_OVERHEAD))?;
    }
    let mut multipart = multipart(request, max + MULTIPART_OVERHEAD, &state).await?;
    // The `file` part; other parts are skipped.
    let field = loop {
        match multipart.next_field().await.map_err(multipart_error)? {
            Some(field) if field.name() == Some("file") => break field,
            Some(_) => continue,
            None => {
                return Err(ApiError::Invalid(
                    "the multipart field `file` is required".into(),
                ));
            }
        }
    };
    let filename = filename::sanitize(field.file_name());
    // Refuse at whichever limit comes first.
    let limit = max.min(quota.left());
    let over_limit = || {
        if limit == max {
            too_large(max)
        } else {
            quota.exceeded(limit + 1)
        }
    };
    let (staged, detected) = receive(&state, field, limit, over_limit).await?;
    state.metrics.media_bytes_in.inc_by(staged.size());

    if let Some(earlier) = uploads::upload_by_hash(&state.db, user, staged.sha256()).await? {
        return Ok((StatusCode::OK, Json(uploaded(&state, earlier))));
    }
    Quota::of(&state, user).await?.check(staged.size())?;
    let row = upload::Model {
        id: uuid::Uuid::new_v4().hyphenated().to_string(),
        owner_id: user,
        sha256: staged.sha256().to_owned(),
        size: i64::try_from(staged.size()).map_err(internal)?,
        content_type: detected.mime.to_owned(),
        kind: detected.kind.as_str().to_owned(),
        filename,
        storage_key: staged.sha256().to_owned(),
        created_at: Utc::now(),
    };
    store(&state, &row.storage_key, staged, &row.content_type).await?;
    // The row is written by the persister, from the log like every change (`reproject`
    // rebuilds it); the blob is in storage already, so a message may refer to it at once.
    let (file_id, created) = register(&state, &row).await?;
    if !created {
        // The same user's identical upload, recorded concurrently: answer with that one.
        let earlier = uploads::upload(&state.db, &file_id)
            .await?
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("upload {file_id} vanished")))?;
        return Ok((StatusCode::OK, Json(uploaded(&state, earlier))));
    }
    tracing::info!(file_id = %row.id, size = row.size, content_type = %row.content_type,
        "file uploaded");
    Ok((StatusCode::CREATED, Json(uploaded(&state, row))))
}

/// Publishes `register_upload` for `row` and waits for the persister's answer: the upload's
/// id and whether it is new.
async fn register(state: &AppState, row: &upload::Model) -> Result<(String, bool), ApiError> {
    let command_id = uuid::Uuid::now_v7().to_string();
    let outcome = state
        .bus
        .command(
            state.bus.subjects.register_upload_command(),
            format!("upload:{}", row.id),
            |reply_to| {
                Command::RegisterUpload(RegisterUpload {
                    v: VERSION,
                    command_id: command_id.clone(),
                    file_id: row.id.clone(),
                    owner_id: row.owner_id,
                    sha256: row.sha256.clone(),
                    size: row.size,
                    content_type: row.content_type.clone(),
                    kind: row.kind.clone(),
                    filename: row.filename.clone(),
                    storage_key: row.storage_key.clone(),
                    reply_to: Some(reply_to),
                })
            },
            state.config.command_timeout,
        )
        .await?;
    match outcome {
        Outcome::UploadReady {
            file_id, created, ..
        } => Ok((file_id, created)),
        Outcome::Rejected { code, detail, .. } => Err(ApiError::refused(code, detail)),
        Outcome::ChatReady { .. } | Outcome::Applied { .. } | Outcome::Muted { .. } => {
            Err(ApiError::Internal(anyhow::anyhow!(
                "a register_upload command was answered with another outcome"
            )))
        }
    }
}

/// Streams the part to a staged file, refusing it as soon as it passes `limit` (with
/// `over_limit()`) or its first bytes are no supported type. On any error the partial file is
/// dropped, which deletes it.
async fn receive(
    state: &AppState,
    mut field: Field<'_>,
    limit: u64,
    over_limit: impl Fn() -> ApiError,
) -> Result<(StagedFile, Detected), ApiError> {
    let mut staging = state.media.staging.create(limit).await.map_err(internal)?;
    let mut detected = None;
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        staging.write(&chunk).await.map_err(|e| match e {
            StageError::TooLarge { .. } => over_limit(),
            StageError::Io(e) => internal(e),
        })?;
        if detected.is_none() && staging.prefix_complete() {
            detected = Some(sniff::sniff(staging.prefix()).ok_or_else(unsupported)?);
        }
    }
    if staging.size() == 0 {
        return Err(ApiError::Invalid("the file is empty".into()));
    }
    let detected = match detected {
        Some(detected) => detected,
        None => sniff::sniff(staging.prefix()).ok_or_else(unsupported)?,
    };
    Ok((staging.finish().await.map_err(internal)?, detected))
}

/// Streams a file: to its uploader and the members of chats where a message carries it
/// (bearer token), or to anyone with a valid signed URL.
///
/// Supports `Range` (one range: `bytes=0-99`, `bytes=-100`, `bytes=100-`), answering 206, and
/// 416 with `Content-Range: bytes */<size>` for an unsatisfiable or malformed one; several
/// ranges get the whole file. `If-None-Match` with the `ETag` answers 304. Anyone else gets
/// 404, whether or not the file exists; a genuine signed URL past its expiry gets 403.
/// With `MEDIA_REDIRECT=presigned`, those allowed get a 302 to the media store instead.
#[utoipa::path(get, path = "/media/{file_id}", tag = "media",
    params(
        ("file_id" = String, Path, description = "The file id from `POST /upload`"),
        SignedUrlQuery,
        ("Range" = Option<String>, Header, description = "One byte range, e.g. `bytes=0-1023`"),
        ("If-None-Match" = Option<String>, Header, description = "A previously received `ETag`"),
    ),
    responses(
        (status = 200, description = "The whole file, with its detected `Content-Type`",
         content(
            (FileBytes = "audio/*"), (FileBytes = "video/*"), (FileBytes = "image/*"),
         ),
         headers(
            ("ETag" = String, description = "The SHA-256 of the content, quoted"),
            ("Accept-Ranges" = String, description = "`bytes`"),
            ("Content-Length" = u64),
         )),
        (status = 206, description = "The requested range",
         content(
            (FileBytes = "audio/*"), (FileBytes = "video/*"), (FileBytes = "image/*"),
         ),
         headers(
            ("Content-Range" = String, description = "`bytes <first>-<last>/<size>`"),
            ("ETag" = String), ("Content-Length" = u64),
         )),
        (status = 302, description = "With `MEDIA_REDIRECT=presigned`: the file is fetched \
                                      from the media store, at a presigned URL valid for \
                                      `MEDIA_REDIRECT_TTL`",
         headers(("Location" = String, description = "The presigned URL of the object"))),
        (status = 304, description = "Not modified (`If-None-Match` matched)"),
        (status = 401, description = "Neither a token nor a signed URL", body = ErrorBody),
        (status = 403, description = "The signed URL has expired", body = ErrorBody),
        (status = 404, description = "No such file, or not yours to see", body = ErrorBody),
        (status = 416, description = "Range not satisfiable",
         headers(("Content-Range" = String, description = "`bytes */<size>`")),
         body = ErrorBody),
        (status = 422, description = "A malformed query (a parameter given twice)", body = ErrorBody),
        (status = 503, description = "The media storage (`MEDIA_STORE`) is unavailable",
         body = ErrorBody),
    ),
    security((), ("bearer" = [])))]
#[tracing::instrument(skip_all, fields(file_id = %file_id))]
pub async fn media_file(
    State(state): State<AppState>,
    Path(file_id): Path<String>,
    Query(query): Query<SignedUrlQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound("file not found".into());
    let file_id = uuid::Uuid::parse_str(&file_id)
        .map_err(|_| not_found())?
        .hyphenated()
        .to_string();
    let signature = match (&query.expires, &query.sig) {
        (None, None) => None,
        (Some(expires), Some(sig)) => Some(match expires.parse::<i64>() {
            Ok(expires) => state
                .media
                .signer
                .verify(&file_id, expires, sig, Utc::now()),
            Err(_) => Signature::Invalid,
        }),
        _ => Some(Signature::Invalid),
    };
    let caller = match bearer_token(&headers) {
        Some(token) if signature != Some(Signature::Valid) => {
            Some(state.keys.verify(token).map_err(ApiError::Unauthorized)?)
        }
        _ => None,
    };
    if signature.is_none() && caller.is_none() {
        return Err(ApiError::Unauthorized(AuthError::Missing));
    }
    let row = uploads::upload(&state.db, &file_id).await?;
    let allowed = match (&row, caller) {
        (None, _) => false,
        (Some(_), _) if signature == Some(Signature::Valid) => true,
        (Some(row), Some(user)) => may_fetch(&state, row, user).await?,
        (Some(_), None) => false,
    };
    let Some(row) = row.filter(|_| allowed) else {
        if signature == Some(Signature::Expired) {
            return Err(ApiError::Forbidden(
                "this link has expired; ask for a fresh one".into(),
            ));
        }
        return Err(not_found());
    };
    serve(&state, &row, &headers).await
}

/// The uploader, or a member of a chat where a live message carries the file.
async fn may_fetch(state: &AppState, row: &upload::Model, user: UserId) -> Result<bool, ApiError> {
    Ok(row.owner_id == user || uploads::shared_with(&state.db, &row.id, user).await?)
}

/// The file, a range of it, 304 or 416, with the headers players and caches need.
async fn serve(
    state: &AppState,
    row: &upload::Model,
    request: &HeaderMap,
) -> Result<Response, ApiError> {
    let size = u64::try_from(row.size).map_err(internal)?;
    let etag = HeaderValue::from_str(&format!("\"{}\"", row.sha256)).map_err(internal)?;
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, etag.clone());
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    if if_none_match(request, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    if let Some(ttl) = state.media.redirect {
        return redirect_to_store(state, row, ttl).await;
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&row.content_type).map_err(internal)?,
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(disposition) = HeaderValue::from_str(&filename::content_disposition(&row.filename)) {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    let (status, range) = match requested_range(request, &etag, size) {
        Ok(Some(range)) => {
            headers.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes {}-{}/{size}", range.start(), range.end()))
                    .map_err(internal)?,
            );
            (StatusCode::PARTIAL_CONTENT, *range.start()..range.end() + 1)
        }
        Ok(None) => (StatusCode::OK, 0..size),
        Err(problem) => {
            let mut response = ApiError::RangeNotSatisfiable(problem).into_response();
            response.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{size}")).map_err(internal)?,
            );
            return Ok(response);
        }
    };
    headers.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(range.end - range.start),
    );
    let stream = state
        .media
        .storage
        .open(&row.storage_key, range)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ApiError::Internal(anyhow::Error::new(e).context(
                format!("blob {} of file {} is missing", row.storage_key, row.id),
            )),
            _ => storage_unavailable(e),
        })?;
    // Counted as the bytes go out: a client that stops reading has not been sent the rest.
    let sent = state.metrics.media_bytes_out.clone();
    let stream = futures_util::StreamExt::inspect(stream, move |chunk| {
        if let Ok(chunk) = chunk {
            sent.inc_by(chunk.len() as u64);
        }
    });
    Ok((status, headers, Body::from_stream(stream)).into_response())
}

/// `MEDIA_REDIRECT=presigned`: a 302 to a presigned URL of the object, which the client
/// fetches (ranges included) from the store itself. The answer is not cached: the URL
/// expires.
async fn redirect_to_store(
    state: &AppState,
    row: &upload::Model,
    ttl: std::time::Duration,
) -> Result<Response, ApiError> {
    let url = state
        .media
        .storage
        .presigned_url(&row.storage_key, ttl)
        .await
        .map_err(storage_unavailable)?
        .ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("MEDIA_REDIRECT needs a store with URLs"))
        })?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(url.as_str()).map_err(internal)?,
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok((StatusCode::FOUND, headers).into_response())
}

/// The single range to send: `None` for the whole file (no `Range`, an `If-Range` that no
/// longer matches, another unit than bytes, or several ranges, which a server may ignore).
fn requested_range(
    request: &HeaderMap,
    etag: &HeaderValue,
    size: u64,
) -> Result<Option<std::ops::RangeInclusive<u64>>, String> {
    use http_range_header::{RangeInvalid, RangeUnsatisfiableError};
    let Some(value) = request.get(header::RANGE) else {
        return Ok(None);
    };
    if request
        .get(header::IF_RANGE)
        .is_some_and(|if_range| if_range != etag)
    {
        return Ok(None);
    }
    let value = value
        .to_str()
        .map_err(|_| "the Range header is not ASCII".to_owned())?;
    let ranges = match http_range_header::parse_range_header(value) {
        Ok(parsed) => parsed.validate(size),
        Err(e) => Err(e),
    };
    match ranges {
        Ok(ranges) if ranges.len() == 1 => Ok(ranges.into_iter().next()),
        Ok(_) => Ok(None),
        Err(RangeUnsatisfiableError::Invalid(RangeInvalid::DoesNotStartWithToken)) => Ok(None),
        Err(e) => Err(format!("range {value:?} cannot be served: {e}")),
    }
}

/// True when `If-None-Match` lists our entity tag (weak or strong) or `*`.
fn if_none_match(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag.to_str().unwrap_or_default();
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == ours)
}

/// A user's quota standing.
#[derive(Clone, Copy)]
struct Quota {
    /// `UPLOAD_QUOTA_BYTES`; 0 means none.
    quota: u64,
    used: u64,
}

impl Quota {
    async fn of(state: &AppState, user: UserId) -> Result<Quota, ApiError> {
        let quota = state.config.upload_quota_bytes;
        let used = if quota == 0 {
            0
        } else {
            uploads::uploaded_bytes(&state.db, user).await?
        };
        Ok(Quota { quota, used })
    }

    /// Bytes still allowed.
    fn left(self) -> u64 {
        if self.quota == 0 {
            u64::MAX
        } else {
            self.quota.saturating_sub(self.used)
        }
    }

    fn check(self, size: u64) -> Result<(), ApiError> {
        if size > self.left() {
            return Err(self.exceeded(size));
        }
        Ok(())
    }

    fn exceeded(self, size: u64) -> ApiError {
        ApiError::PayloadTooLarge(format!(
            "upload quota exceeded: {} of {} bytes used, this file needs at least {size}",
            self.used, self.quota
        ))
    }
}

/// Moves the staged file into storage, unless the same content is there already (then the
/// staged copy is dropped, which deletes it). A storage that fails (a bucket that is down)
/// is 503: nothing was recorded, the client may simply try again.
async fn store(
    state: &AppState,
    key: &str,
    staged: StagedFile,
    content_type: &str,
) -> Result<(), ApiError> {
    let storage = &state.media.storage;
    if storage.exists(key).await.map_err(storage_unavailable)? {
        tracing::debug!(key, "content already stored");
        return Ok(());
    }
    storage
        .put(key, staged, content_type)
        .await
        .map_err(storage_unavailable)
}

/// A storage failure (logged with its cause) as the client's 503.
fn storage_unavailable(error: std::io::Error) -> ApiError {
    tracing::warn!(error = %error, "media storage failed");
    ApiError::Unavailable("the media storage is unavailable; try again later".into())
}

/// The answer for a stored upload, with a fresh signed URL.
fn uploaded(state: &AppState, row: upload::Model) -> UploadedFile {
    UploadedFile {
        file_url: state.media.signer.url(&row.id, Utc::now()),
        kind: Kind::parse(&row.kind).unwrap_or(Kind::Video),
        size: u64::try_from(row.size).unwrap_or_default(),
        file_id: row.id,
        content_type: row.content_type,
        sha256: row.sha256,
        filename: row.filename,
    }
}

/// The request body as multipart, cut off after `limit` bytes.
async fn multipart(request: Request, limit: u64, state: &AppState) -> Result<Multipart, ApiError> {
    let (parts, body) = request.into_parts();
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let body = Body::new(http_body_util::Limited::new(body, limit));
    Multipart::from_request(Request::from_parts(parts, body), state)
        .await
        .map_err(|rejection| ApiError::Invalid(rejection.body_text()))
}

fn multipart_error(error: MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge("the request body is too large".into())
    } else {
        ApiError::Invalid(error.body_text())
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn too_large(max: u64) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "the file is larger than {max} bytes (MAX_UPLOAD_BYTES)"
    ))
}

fn unsupported() -> ApiError {
    ApiError::UnsupportedMediaType(
        "not a supported file: audio (Ogg/Opus, MP3, M4A/AAC, WAV, WebM, FLAC), video (MP4, \
         WebM, MOV) or image (JPEG, PNG, WebP, GIF)"
            .into(),
    )
}

fn internal(error: impl Into<anyhow::Error>) -> ApiError {
    ApiError::Internal(error.into())
}

/// The media routes. `POST /upload` lifts axum's 2 MB body limit: the handler enforces
/// `MAX_UPLOAD_BYTES` itself while streaming; a body it refuses unread is drained so that
/// clients that write it all before reading see the 413 ([`super::linger`]).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload))
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::map_request(
            super::linger::linger_on_refusal,
        ))
        .merge(OpenApiRouter::new().routes(routes!(media_file)))
}
