//! Media: real multipart uploads of small generated files, content sniffing, limits and
//! quota, safe names, dedupe, and serving with ranges, entity tags and authorization.

use std::{path::Path, time::Duration};

use reqwest::{
    StatusCode,
    header::{self, HeaderMap},
    multipart::{Form, Part},
};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, Database, EntityTrait, PaginatorTrait};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use jetchat::{
    media::UrlSigner,
    store::{message, upload},
};

use crate::helpers::{SECRET, TestApp, eventually, spawn_app, spawn_app_with, token};

// ---- Small files with real headers -------------------------------------------------------

/// An EBML element with a one-byte size.
fn ebml(id: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = id.to_vec();
    out.push(0x80 | u8::try_from(payload.len()).expect("small element"));
    out.extend_from_slice(payload);
    out
}

/// A WebM as `MediaRecorder` starts one: EBML header, a segment of unknown size, Info, Tracks
/// (one `TrackType` per track: 1 video, 2 audio) and the start of a cluster.
fn webm(track_types: &[u8]) -> Vec<u8> {
    let mut out = ebml(
        &[0x1A, 0x45, 0xDF, 0xA3],
        &[
            ebml(&[0x42, 0x86], &[1]),    // EBMLVersion
            ebml(&[0x42, 0x82], b"webm"), // DocType
            ebml(&[0x42, 0x87], &[4]),    // DocTypeVersion
        ]
        .concat(),
    );
    out.extend_from_slice(&[
        0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    ]);
    out.extend(ebml(
        &[0x15, 0x49, 0xA9, 0x66],
        &ebml(&[0x2A, 0xD7, 0xB1], &[0x0F, 0x42, 0x40]), // TimecodeScale
    ));
    let entries: Vec<u8> = track_types
        .iter()
        .enumerate()
        .flat_map(|(i, kind)| {
            let codec: &[u8] = if *kind == 1 { b"V_VP8" } else { b"A_OPUS" };
            ebml(
                &[0xAE],
                &[
                    ebml(&[0xD7], &[i as u8 + 1]), // TrackNumber
                    ebml(&[0x83], &[*kind]),       // TrackType
                    ebml(&[0x86], codec),          // CodecID
                ]
                .concat(),
            )
        })
        .collect();
    out.extend(ebml(&[0x16, 0x54, 0xAE, 0x6B], &entries));
    out.extend_from_slice(&[
        0x1F, 0x43, 0xB6, 0x75, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    ]);
    out.extend_from_slice(&[0xE7, 0x81, 0x00]); // Timecode 0
    out
}

/// An Ogg page carrying an `OpusHead` packet.
pub fn ogg_opus() -> Vec<u8> {
    let mut out = b"OggS\x00\x02".to_vec();
    out.extend_from_slice(&[0; 8]); // granule position
    out.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // serial, sequence, CRC
    out.extend_from_slice(&[1, 19]); // one segment of 19 bytes
    out.extend_from_slice(b"OpusHead\x01\x01\x38\x01\x80\xBB\x00\x00\x00\x00\x00");
    out
}

/// An ISO base media `ftyp` box with `brand`, then an empty `mdat`.
pub fn ftyp(brand: &[u8; 4]) -> Vec<u8> {
    let mut out = vec![0, 0, 0, 0x18];
    out.extend_from_slice(b"ftyp");
    out.extend_from_slice(brand);
    out.extend_from_slice(&[0, 0, 2, 0]);
    out.extend_from_slice(brand);
    out.extend_from_slice(b"isom");
    out.extend_from_slice(&[0, 0, 0, 8]);
    out.extend_from_slice(b"mdat");
    out
}

fn wav() -> Vec<u8> {
    let mut out = b"RIFF\x28\x00\x00\x00WAVEfmt \x10\x00\x00\x00".to_vec();
    out.extend_from_slice(&[1, 0, 1, 0, 0x40, 0x1F, 0, 0, 0x80, 0x3E, 0, 0, 2, 0, 16, 0]);
    out.extend_from_slice(b"data\x04\x00\x00\x00\x00\x00\x00\x00");
    out
}

/// Every supported kind: (what, bytes, detected MIME type, kind).
fn samples() -> Vec<(&'static str, Vec<u8>, &'static str, &'static str)> {
    vec![
        ("voice.opus", ogg_opus(), "audio/ogg", "audio"),
        (
            "song.mp3",
            b"ID3\x04\x00\x00\x00\x00\x00\x00\xFF\xFB\x90\x64\x00\x00".to_vec(),
            "audio/mpeg",
            "audio",
        ),
        ("memo.m4a", ftyp(b"M4A "), "audio/mp4", "audio"),
        ("memo.aac", b"\xFF\xF1\x50\x80\x02\x1F\xFC".to_vec(), "audio/aac", "audio"),
        ("beep.wav", wav(), "audio/wav", "audio"),
        ("voice.webm", webm(&[2]), "audio/webm", "audio"),
        (
            "track.flac",
            b"fLaC\x80\x00\x00\x22\x10\x00\x10\x00".to_vec(),
            "audio/flac",
            "audio",
        ),
        ("clip.mp4", ftyp(b"isom"), "video/mp4", "video"),
        ("clip.webm", webm(&[1, 2]), "video/webm", "video"),
        ("clip.mov", ftyp(b"qt  "), "video/quicktime", "video"),
        (
            "cover.jpg",
            b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xFF\xD9".to_vec(),
            "image/jpeg",
            "image",
        ),
        (
            "cover.png",
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
                .to_vec(),
            "image/png",
            "image",
        ),
        (
            "cover.webp",
            b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00".to_vec(),
            "image/webp",
            "image",
        ),
        (
            "cover.gif",
            b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;".to_vec(),
            "image/gif",
            "image",
        ),
    ]
}

/// A small MP4 of `size` bytes (a real `ftyp` box, then filler), different per `seed`.
fn mp4_of_size(size: usize, seed: u8) -> Vec<u8> {
    let mut bytes = ftyp(b"isom");
    bytes.resize(size, seed);
    bytes
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

// ---- Requests ----------------------------------------------------------------------------

/// What `POST /upload` answered.
pub struct Uploaded {
    pub status: StatusCode,
    pub body: Value,
}

impl Uploaded {
    pub fn file_id(&self) -> &str {
        self.body["file_id"]
            .as_str()
            .expect("file_id in the answer")
    }

    /// `/media/{file_id}`, unsigned.
    pub fn path(&self) -> String {
        format!("/media/{}", self.file_id())
    }

    pub fn file_url(&self) -> &str {
        self.body["file_url"]
            .as_str()
            .expect("file_url in the answer")
    }
}

/// Uploads `bytes` as `user` in the `file` field (reqwest's multipart).
pub async fn upload_file(app: &TestApp, user: i64, name: &str, bytes: Vec<u8>) -> Uploaded {
    let part = Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str("application/octet-stream")
        .unwrap();
    send_form(app, user, Form::new().part("file", part)).await
}

async fn send_form(app: &TestApp, user: i64, form: Form) -> Uploaded {
    let response = app
        .http
        .post(app.url("/upload"))
        .bearer_auth(token(user))
        .multipart(form)
        .send()
        .await
        .expect("request sent");
    let status = response.status();
    let body = response.json().await.expect("a JSON answer");
    Uploaded { status, body }
}

/// A multipart body written by hand, so part headers carry exactly the bytes a test wants.
fn raw_multipart(disposition: &[u8], content_type: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----jetchat-test-boundary-7MA4YWxkTrZu0gW".to_owned();
    let mut body = format!("--{boundary}\r\n").into_bytes();
    body.extend_from_slice(b"Content-Disposition: ");
    body.extend_from_slice(disposition);
    body.extend_from_slice(format!("\r\nContent-Type: {content_type}\r\n\r\n").as_bytes());
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (boundary, body)
}

async fn upload_raw(app: &TestApp, user: i64, disposition: &[u8], bytes: &[u8]) -> Uploaded {
    let (boundary, body) = raw_multipart(disposition, "application/octet-stream", bytes);
    let response = app
        .http
        .post(app.url("/upload"))
        .bearer_auth(token(user))
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .expect("request sent");
    let status = response.status();
    let body = response.json().await.expect("a JSON answer");
    Uploaded { status, body }
}

/// GET `path` with `user`'s token (or none) and extra headers.
async fn fetch(
    app: &TestApp,
    user: Option<i64>,
    path: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = app.http.get(app.url(path));
    if let Some(user) = user {
        request = request.bearer_auth(token(user));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request sent")
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("{name} in {headers:?}"))
        .to_str()
        .unwrap()
}

/// One raw HTTP/1.1 exchange over TCP: writes `head` and `body`, then reads the answer's
/// status line and headers (the server may answer before the body is complete).
async fn raw_exchange(app: &TestApp, head: &str, body: &[u8]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may refuse and close while this is still being written.
    let _ = stream.write_all(body).await;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
            if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("the server answers before the body is complete");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("an HTTP answer, got {text:?}"));
    (status, text)
}

// ---- The file system ---------------------------------------------------------------------

fn media_dir(app: &TestApp) -> std::path::PathBuf {
    app.dir().join("media")
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn blobs(app: &TestApp) -> Vec<std::path::PathBuf> {
    files_under(&media_dir(app).join("blobs"))
}

/// Waits until no upload is being staged (a refused request's file is deleted when the
/// handler returns, which may be just after the answer).
async fn staging_is_empty(app: &TestApp) {
    let tmp = media_dir(app).join("tmp");
    eventually("the staging directory is empty", || async {
        let left = files_under(&tmp);
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        }
    })
    .await;
}

async fn upload_rows(app: &TestApp) -> Vec<upload::Model> {
    let db = Database::connect(&app.database_url).await.unwrap();
    upload::Entity::find().all(&db).await.unwrap()
}

// ---- Upload ------------------------------------------------------------------------------

#[tokio::test]
async fn every_supported_kind_is_recognised_from_its_bytes_and_served_back() {
    let app = spawn_app().await;
    for (name, bytes, mime, kind) in samples() {
        // The client's name and type say nothing: everything is sent as `upload.bin`.
        let uploaded = upload_file(&app, 1, "upload.bin", bytes.clone()).await;
        assert_eq!(uploaded.status, 201, "{name}: {}", uploaded.body);
        let body = &uploaded.body;
        assert_eq!(body["content_type"], mime, "{name}: {body}");
        assert_eq!(body["kind"], kind, "{name}: {body}");
        assert_eq!(body["size"], bytes.len(), "{name}");
        assert_eq!(body["sha256"], sha256_hex(&bytes), "{name}");
        assert_eq!(body["filename"], "upload.bin");
        assert!(
            uploaded
                .file_url()
                .starts_with(&format!("/media/{}?expires=", uploaded.file_id())),
            "{body}"
        );

        let response = fetch(&app, Some(1), &uploaded.path(), &[]).await;
        assert_eq!(response.status(), 200, "{name}");
        let headers = response.headers().clone();
        assert_eq!(header(&headers, "content-type"), mime);
        assert_eq!(header(&headers, "content-length"), bytes.len().to_string());
        assert_eq!(header(&headers, "accept-ranges"), "bytes");
        assert_eq!(
            header(&headers, "etag"),
            format!("\"{}\"", sha256_hex(&bytes))
        );
        assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
        assert_eq!(response.bytes().await.unwrap(), bytes, "{name}");
    }
}

#[tokio::test]
async fn a_text_file_disguised_as_audio_is_refused_with_415() {
    let app = spawn_app().await;
    let part = Part::bytes(b"just some text, not a song at all\n".repeat(10))
        .file_name("song.mp3")
        .mime_str("audio/mpeg")
        .unwrap();
    let uploaded = send_form(&app, 1, Form::new().part("file", part)).await;
    assert_eq!(uploaded.status, 415, "{}", uploaded.body);
    assert!(
        uploaded.body["detail"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );

    for (name, bytes) in [
        (
            "page.html",
            b"<html><script>alert(1)</script></html>".to_vec(),
        ),
        ("doc.pdf", b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n".to_vec()),
        ("archive.mp4", b"PK\x03\x04\x14\x00\x00\x00".to_vec()),
        ("movie.mkv", {
            let mut mkv = webm(&[1]);
            mkv[12..16].copy_from_slice(b"matr"); // DocType "matr": Matroska, not WebM
            mkv
        }),
    ] {
        let uploaded = upload_file(&app, 1, name, bytes).await;
        assert_eq!(uploaded.status, 415, "{name}: {}", uploaded.body);
    }
    staging_is_empty(&app).await;
    assert!(blobs(&app).is_empty(), "{:?}", blobs(&app));
    assert!(upload_rows(&app).await.is_empty());
}

#[tokio::test]
async fn uploads_without_a_file_field_an_empty_file_or_a_token_are_refused() {
    let app = spawn_app().await;
    let uploaded = send_form(&app, 1, Form::new().text("other", "value")).await;
    assert_eq!(uploaded.status, 422, "{}", uploaded.body);
    let uploaded = upload_file(&app, 1, "empty.ogg", Vec::new()).await;
    assert_eq!(uploaded.status, 422, "{}", uploaded.body);
    let response = app
        .http
        .post(app.url("/upload"))
        .multipart(Form::new().part("file", Part::bytes(ogg_opus())))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = app
        .http
        .post(app.url("/upload"))
        .bearer_auth(token(1))
        .json(&serde_json::json!({"file": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
}

#[tokio::test]
async fn a_large_file_streams_through_and_back() {
    let app = spawn_app().await;
    let bytes = mp4_of_size(8 * 1024 * 1024 + 7, 0x5A);
    let uploaded = upload_file(&app, 1, "big.mp4", bytes.clone()).await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.body);
    assert_eq!(uploaded.body["sha256"], sha256_hex(&bytes));
    let response = fetch(&app, Some(1), &uploaded.path(), &[]).await;
    assert_eq!(response.status(), 200);
    let served = response.bytes().await.unwrap();
    assert_eq!(served.len(), bytes.len());
    assert!(served == bytes, "served bytes differ");
}

#[tokio::test]
async fn oversize_is_refused_early_and_leaves_nothing_behind() {
    let app = spawn_app_with(&[("MAX_UPLOAD_BYTES", "1024")]).await;
    let small = upload_file(&app, 1, "ok.mp4", mp4_of_size(1024, 1)).await;
    assert_eq!(
        small.status, 201,
        "exactly the limit is fine: {}",
        small.body
    );

    let uploaded = upload_file(&app, 1, "big.mp4", mp4_of_size(1025, 2)).await;
    assert_eq!(uploaded.status, 413, "{}", uploaded.body);
    assert!(
        uploaded.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("1024")),
        "{}",
        uploaded.body
    );

    // A Content-Length far beyond the limit is refused before any byte of the body is sent.
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 500000000\r\n\r\n",
        app.address,
        token(1)
    );
    let (status, _) = raw_exchange(&app, &head, b"").await;
    assert_eq!(status, 413);

    // Within the Content-Length allowance (the limit plus multipart overhead), the answer
    // comes as soon as the limit is crossed: 60,000 bytes announced, 4 KiB ever sent.
    let (boundary, body) = raw_multipart(
        b"form-data; name=\"file\"; filename=\"big.mp4\"",
        "video/mp4",
        &mp4_of_size(4096, 3),
    );
    let body = &body[..body.len() - boundary.len() - 8]; // no closing boundary
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 60000\r\n\r\n",
        app.address,
        token(1)
    );
    let (status, answer) = raw_exchange(&app, &head, body).await;
    assert_eq!(status, 413, "{answer}");

    staging_is_empty(&app).await;
    assert_eq!(
        blobs(&app).len(),
        1,
        "only the accepted file: {:?}",
        blobs(&app)
    );
    assert_eq!(upload_rows(&app).await.len(), 1);
}

#[tokio::test]
async fn a_dropped_connection_leaves_no_partial_file() {
    let app = spawn_app().await;
    let (_, body) = raw_multipart(
        b"form-data; name=\"file\"; filename=\"cut.mp4\"",
        "video/mp4",
        &mp4_of_size(256 * 1024, 4),
    );
    {
        let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
        let head = format!(
            "POST /upload HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: multipart/form-data; boundary=----jetchat-test-boundary-7MA4YWxkTrZu0gW\r\n\
             Content-Length: {}\r\n\r\n",
            app.address,
            token(1),
            body.len() * 4
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&body[..body.len() - 64]).await.unwrap();
        // Give the server time to stage what arrived, then hang up mid-body.
        let tmp = media_dir(&app).join("tmp");
        eventually("the upload is being staged", || async {
            if files_under(&tmp).is_empty() {
                Err("no staged file yet".to_owned())
            } else {
                Ok(())
            }
        })
        .await;
    }
    staging_is_empty(&app).await;
    assert!(blobs(&app).is_empty());
    assert!(upload_rows(&app).await.is_empty());
}

#[tokio::test]
async fn hostile_file_names_are_kept_as_harmless_metadata() {
    let app = spawn_app().await;
    let long = format!("{}.ogg", "a".repeat(1000));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"../../etc/passwd".to_vec(), "passwd"),
        (b"..\\..\\windows\\win.ini".to_vec(), "win.ini"),
        (b"/absolute/path/voice.ogg".to_vec(), "voice.ogg"),
        ("evil\u{202E}ggo.exe".as_bytes().to_vec(), "evilggo.exe"),
        ("zero\u{200B}width.ogg".as_bytes().to_vec(), "zerowidth.ogg"),
        ("голос 🎤.ogg".as_bytes().to_vec(), "голос 🎤.ogg"),
        (b"..".to_vec(), "file"),
        (long.clone().into_bytes(), ""),
    ];
    for (i, (raw, expected)) in cases.into_iter().enumerate() {
        let mut disposition = b"form-data; name=\"file\"; filename=\"".to_vec();
        disposition.extend_from_slice(&raw);
        disposition.push(b'"');
        // Distinct content each time, so no upload is a repeat of another.
        let mut bytes = ogg_opus();
        bytes.push(i as u8);
        let uploaded = upload_raw(&app, 1, &disposition, &bytes).await;
        assert_eq!(uploaded.status, 201, "{raw:?}: {}", uploaded.body);
        let name = uploaded.body["filename"].as_str().unwrap();
        if expected.is_empty() {
            assert_eq!(name.len(), 255, "{name}");
            assert!(name.ends_with(".ogg"), "{name}");
        } else {
            assert_eq!(name, expected, "{raw:?}");
        }
        // The name is served only in Content-Disposition, encoded.
        let response = fetch(&app, Some(1), &uploaded.path(), &[]).await;
        assert_eq!(response.status(), 200);
        let disposition = header(response.headers(), "content-disposition");
        assert!(
            disposition.starts_with("inline; filename=\""),
            "{disposition}"
        );
        assert!(disposition.is_ascii(), "{disposition}");
    }

    // A NUL byte cannot be part of a part header at all: refused as malformed.
    let uploaded = upload_raw(
        &app,
        1,
        b"form-data; name=\"file\"; filename=\"a\0b.ogg\"",
        &ogg_opus(),
    )
    .await;
    assert_eq!(uploaded.status, 422, "{}", uploaded.body);

    // On disk: only blobs named by their hash, inside MEDIA_DIR; nothing anywhere else.
    for blob in blobs(&app) {
        let name = blob.file_name().unwrap().to_str().unwrap();
        assert_eq!(name.len(), 64, "{blob:?}");
        assert!(name.bytes().all(|b| b.is_ascii_hexdigit()), "{blob:?}");
    }
    let stray: Vec<_> = files_under(app.dir())
        .into_iter()
        .filter(|p| !p.starts_with(media_dir(&app)) && !p.starts_with(app.dir().join("nats")))
        .filter(|p| p.extension().and_then(|e| e.to_str()) != Some("db"))
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains(".db-"))
        })
        .collect();
    assert!(stray.is_empty(), "files outside MEDIA_DIR: {stray:?}");
}

#[tokio::test]
async fn identical_content_is_stored_once() {
    let app = spawn_app().await;
    let bytes = webm(&[2]);
    let first = upload_file(&app, 1, "a.webm", bytes.clone()).await;
    assert_eq!(first.status, 201);
    // The same user again: the same file, not charged twice.
    let again = upload_file(&app, 1, "b.webm", bytes.clone()).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.file_id(), first.file_id());
    assert_eq!(again.body["filename"], "a.webm");
    // Another user: their own file id (their own access), the same blob.
    let other = upload_file(&app, 2, "c.webm", bytes.clone()).await;
    assert_eq!(other.status, 201);
    assert_ne!(other.file_id(), first.file_id());
    assert_eq!(other.body["sha256"], first.body["sha256"]);

    assert_eq!(blobs(&app).len(), 1, "{:?}", blobs(&app));
    assert_eq!(upload_rows(&app).await.len(), 2);
    let response = fetch(&app, Some(2), &other.path(), &[]).await;
    assert_eq!(response.bytes().await.unwrap(), bytes);
}

#[tokio::test]
async fn the_quota_caps_what_one_user_can_store() {
    let app = spawn_app_with(&[("UPLOAD_QUOTA_BYTES", "5000")]).await;
    let first = upload_file(&app, 1, "1.mp4", mp4_of_size(2000, 1)).await;
    assert_eq!(first.status, 201);
    // A repeat is the same file and costs nothing...
    assert_eq!(
        upload_file(&app, 1, "1.mp4", mp4_of_size(2000, 1))
            .await
            .status,
        200
    );
    // ... so 3000 bytes still fit.
    assert_eq!(
        upload_file(&app, 1, "2.mp4", mp4_of_size(3000, 2))
            .await
            .status,
        201
    );
    let over = upload_file(&app, 1, "3.mp4", mp4_of_size(100, 3)).await;
    assert_eq!(over.status, 413, "{}", over.body);
    assert!(
        over.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("quota")),
        "{}",
        over.body
    );
    // Other users have their own quota.
    assert_eq!(
        upload_file(&app, 2, "3.mp4", mp4_of_size(100, 3))
            .await
            .status,
        201
    );
    staging_is_empty(&app).await;
    assert_eq!(blobs(&app).len(), 3);
}

// ---- Serving -----------------------------------------------------------------------------

#[tokio::test]
async fn ranges_serve_the_requested_bytes() {
    let app = spawn_app().await;
    let bytes: Vec<u8> = ftyp(b"isom")
        .into_iter()
        .chain((0..1000u32).map(|i| (i % 251) as u8))
        .collect();
    let size = bytes.len();
    let uploaded = upload_file(&app, 1, "seek.mp4", bytes.clone()).await;
    let path = uploaded.path();

    let cases: [(&str, std::ops::Range<usize>); 5] = [
        ("bytes=0-99", 0..100),
        ("bytes=-100", size - 100..size),
        ("bytes=100-", 100..size),
        ("bytes=10-10", 10..11),
        ("bytes=500-999999", 500..size),
    ];
    for (range, expected) in cases {
        let response = fetch(&app, Some(1), &path, &[("range", range)]).await;
        assert_eq!(response.status(), 206, "{range}");
        let headers = response.headers().clone();
        assert_eq!(
            header(&headers, "content-range"),
            format!("bytes {}-{}/{size}", expected.start, expected.end - 1),
            "{range}"
        );
        assert_eq!(
            header(&headers, "content-length"),
            expected.len().to_string()
        );
        assert_eq!(header(&headers, "content-type"), "video/mp4");
        assert_eq!(response.bytes().await.unwrap(), bytes[expected], "{range}");
    }

    for range in [
        format!("bytes={size}-"),
        format!("bytes={}-{}", size + 10, size + 20),
        "bytes=50-10".to_owned(),
        "bytes=abc".to_owned(),
        "bytes=-0".to_owned(),
    ] {
        let response = fetch(&app, Some(1), &path, &[("range", &range)]).await;
        assert_eq!(response.status(), 416, "{range}");
        assert_eq!(
            header(response.headers(), "content-range"),
            format!("bytes */{size}")
        );
    }

    // Several ranges, another unit, or an If-Range that no longer matches: the whole file.
    for headers in [
        vec![("range", "bytes=0-1,5-6")],
        vec![("range", "items=0-1")],
        vec![("range", "bytes=0-1"), ("if-range", "\"stale\"")],
    ] {
        let response = fetch(&app, Some(1), &path, &headers).await;
        assert_eq!(response.status(), 200, "{headers:?}");
        assert_eq!(response.bytes().await.unwrap().len(), size);
    }
    let etag = format!("\"{}\"", sha256_hex(&bytes));
    let response = fetch(
        &app,
        Some(1),
        &path,
        &[("range", "bytes=0-1"), ("if-range", &etag)],
    )
    .await;
    assert_eq!(response.status(), 206);
}

#[tokio::test]
async fn the_etag_answers_304_when_it_matches() {
    let app = spawn_app().await;
    let bytes = ogg_opus();
    let uploaded = upload_file(&app, 1, "v.ogg", bytes.clone()).await;
    let path = uploaded.path();
    let etag = format!("\"{}\"", sha256_hex(&bytes));
    for matching in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"x\", {etag}"),
        "*".into(),
    ] {
        let response = fetch(&app, Some(1), &path, &[("if-none-match", &matching)]).await;
        assert_eq!(response.status(), 304, "{matching}");
        assert_eq!(header(response.headers(), "etag"), etag);
        assert!(response.bytes().await.unwrap().is_empty());
    }
    let response = fetch(&app, Some(1), &path, &[("if-none-match", "\"other\"")]).await;
    assert_eq!(response.status(), 200);
    // Not for strangers: no 304 that would confirm the file exists.
    let response = fetch(&app, Some(2), &path, &[("if-none-match", &etag)]).await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn the_uploader_may_fetch_a_stranger_gets_404() {
    let app = spawn_app().await;
    let uploaded = upload_file(&app, 1, "v.ogg", ogg_opus()).await;
    let path = uploaded.path();
    assert_eq!(fetch(&app, Some(1), &path, &[]).await.status(), 200);

    let stranger = fetch(&app, Some(2), &path, &[]).await;
    assert_eq!(stranger.status(), 404);
    let stranger: Value = stranger.json().await.unwrap();
    // Exactly what an id that does not exist answers.
    let missing = fetch(
        &app,
        Some(2),
        &format!("/media/{}", uuid::Uuid::new_v4()),
        &[],
    )
    .await;
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<Value>().await.unwrap(), stranger);
    assert_eq!(
        fetch(&app, Some(1), "/media/not-a-uuid", &[])
            .await
            .status(),
        404
    );
    assert_eq!(
        fetch(&app, Some(1), "/media/..%2F..%2Fetc%2Fpasswd", &[])
            .await
            .status(),
        404
    );

    let anonymous = fetch(&app, None, &path, &[]).await;
    assert_eq!(anonymous.status(), 401);
    let bad_token = app.get_with_token(Some("not.a.jwt"), &path).await;
    assert_eq!(bad_token.status(), 401);
}

#[tokio::test]
async fn members_of_a_chat_where_a_message_carries_the_file_may_fetch_it() {
    let app = spawn_app().await;
    let uploaded = upload_file(&app, 1, "v.ogg", ogg_opus()).await;
    let path = uploaded.path();
    let chat_id = app.create_chat(1, true, &[2]).await;
    assert_eq!(fetch(&app, Some(2), &path, &[]).await.status(), 404);

    // The row the persister writes for a `send_message` carrying this file.
    let db = Database::connect(&app.database_url).await.unwrap();
    let row = message::ActiveModel {
        chat_id: Set(chat_id),
        sender_id: Set(1),
        content: Set(String::new()),
        content_type: Set("audio".into()),
        file_url: Set(Some(format!("/media/{}", uploaded.file_id()))),
        file_id: Set(Some(uploaded.file_id().to_owned())),
        client_msg_id: Set("media-test-1".into()),
        created_at: Set(chrono::Utc::now()),
        stream_seq: Set(0),
        deleted_at: Set(None),
        ..Default::default()
    }
    .insert(&db)
    .await
    .unwrap();
    assert_eq!(message::Entity::find().count(&db).await.unwrap(), 1);

    assert_eq!(
        fetch(&app, Some(2), &path, &[]).await.status(),
        200,
        "member"
    );
    assert_eq!(
        fetch(&app, Some(3), &path, &[]).await.status(),
        404,
        "non-member"
    );

    // Once the message is deleted the file is the uploader's alone again.
    let mut deleted: message::ActiveModel = row.into();
    deleted.deleted_at = Set(Some(chrono::Utc::now()));
    deleted.update(&db).await.unwrap();
    assert_eq!(fetch(&app, Some(2), &path, &[]).await.status(), 404);
    assert_eq!(fetch(&app, Some(1), &path, &[]).await.status(), 200);
}

#[tokio::test]
async fn signed_urls_work_without_a_token_until_they_expire() {
    let app = spawn_app().await;
    let bytes = webm(&[2]);
    let uploaded = upload_file(&app, 1, "v.webm", bytes.clone()).await;
    let file_id = uploaded.file_id().to_owned();

    // Valid: anyone holding it, no token; ranges work as well.
    let response = fetch(&app, None, uploaded.file_url(), &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(response.headers(), "content-type"), "audio/webm");
    assert_eq!(response.bytes().await.unwrap(), bytes);
    let response = fetch(&app, None, uploaded.file_url(), &[("range", "bytes=0-3")]).await;
    assert_eq!(response.status(), 206);
    // A stranger's token does not spoil a valid link.
    assert_eq!(
        fetch(&app, Some(9), uploaded.file_url(), &[])
            .await
            .status(),
        200
    );

    // Tampered: another expiry, another signature, another file, a missing half.
    let (_, query) = uploaded.file_url().split_once('?').unwrap();
    let expires: i64 = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("expires="))
        .unwrap()
        .parse()
        .unwrap();
    let sig = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("sig="))
        .unwrap();
    let mut flipped = sig.to_owned();
    let last = if flipped.ends_with('0') { "1" } else { "0" };
    flipped.replace_range(flipped.len() - 1.., last);
    let other = upload_file(&app, 1, "o.ogg", ogg_opus()).await;
    for url in [
        format!("/media/{file_id}?expires={}&sig={sig}", expires + 3600),
        format!("/media/{file_id}?expires={expires}&sig={flipped}"),
        format!("/media/{}?expires={expires}&sig={sig}", other.file_id()),
        format!("/media/{file_id}?expires={expires}"),
        format!("/media/{file_id}?sig={sig}"),
        format!("/media/{file_id}?expires=soon&sig={sig}"),
    ] {
        assert_eq!(fetch(&app, None, &url, &[]).await.status(), 404, "{url}");
    }

    // Expired: signed with the right key, but in the past.
    let signer = UrlSigner::new(SECRET.as_bytes(), Duration::from_secs(3600));
    let past = chrono::Utc::now().timestamp() - 10;
    let expired = format!(
        "/media/{file_id}?expires={past}&sig={}",
        signer.sign(&file_id, past)
    );
    let response = fetch(&app, None, &expired, &[]).await;
    assert_eq!(response.status(), 403);
    // ... and one made the same way for the future is accepted: the key is the one we think.
    let future = past + 3600;
    let fresh = format!(
        "/media/{file_id}?expires={future}&sig={}",
        signer.sign(&file_id, future)
    );
    assert_eq!(fetch(&app, None, &fresh, &[]).await.status(), 200);
    // The uploader's token still works with an expired link.
    assert_eq!(fetch(&app, Some(1), &expired, &[]).await.status(), 200);
}

#[tokio::test]
async fn the_spec_documents_the_multipart_body_and_binary_answers() {
    let app = spawn_app().await;
    let spec: Value = app.openapi().await;
    let upload = &spec["paths"]["/upload"]["post"];
    let form = &upload["requestBody"]["content"]["multipart/form-data"]["schema"];
    assert_eq!(form["properties"]["file"]["format"], "binary", "{form}");
    assert!(upload["responses"]["201"].is_object());
    assert!(upload["responses"]["413"].is_object());
    assert!(upload["responses"]["415"].is_object());
    let media = &spec["paths"]["/media/{file_id}"]["get"];
    for status in ["200", "206"] {
        let content = media["responses"][status]["content"].as_object().unwrap();
        assert!(content.contains_key("audio/*"), "{status}: {content:?}");
        assert!(content.contains_key("video/*"), "{status}: {content:?}");
    }
    assert!(media["responses"]["416"].is_object());
}

#[tokio::test]
async fn a_voice_note_sent_in_a_chat_plays_for_the_members_from_its_url() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let uploaded = upload_file(&app, 1, "note.ogg", ogg_opus()).await;
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;

    // `content_type` says text: the upload decides (audio); the content may be empty.
    let ack = alice
        .send_message(
            serde_json::json!({"chat_id": chat_id, "content": "", "file_id": uploaded.file_id()}),
        )
        .await;
    let new = bob.expect("new_message").await;
    assert_eq!(new["message_id"], ack["message_id"]);
    assert_eq!(new["content_type"], "audio");
    assert_eq!(new["file_id"], uploaded.file_id());
    let url = new["file_url"].as_str().unwrap();
    assert!(
        url.starts_with(&uploaded.path()) && url.contains("sig="),
        "{url}"
    );
    // A browser's <audio src=...> sends no token: the signed URL is enough, and it seeks.
    let played = fetch(&app, None, url, &[("Range", "bytes=0-3")]).await;
    assert_eq!(played.status(), 206);
    assert_eq!(played.bytes().await.unwrap().as_ref(), &ogg_opus()[..4]);

    // History shows it too, with a fresh signed URL, to any member.
    let history: serde_json::Value = app
        .get(2, &format!("/chats/{chat_id}/messages"))
        .await
        .json()
        .await
        .unwrap();
    let url = history[0]["file_url"].as_str().unwrap();
    assert!(url.contains("sig="));
    assert_eq!(fetch(&app, None, url, &[]).await.status(), 200);

    // The Python service's clients send the `file_url` of their upload: that works as well.
    alice
        .send_message(serde_json::json!({"chat_id": chat_id, "content": "again", "file_url": uploaded.file_url()}))
        .await;
    assert_eq!(
        bob.expect("new_message").await["file_id"],
        uploaded.file_id()
    );
}

#[tokio::test]
async fn nobody_can_send_someone_elses_upload() {
    let app = spawn_app().await;
    let chat_id = app.create_chat(2, true, &[1]).await;
    let uploaded = upload_file(&app, 1, "mine.ogg", ogg_opus()).await;
    let mut mallory = app.connect(2).await;
    mallory
        .send(serde_json::json!({"action": "send_message", "chat_id": chat_id, "file_id": uploaded.file_id(), "client_msg_id": "steal"}))
        .await;
    mallory.expect("message_accepted").await;
    let error = mallory.expect("error").await;
    assert_eq!(error["code"], "not_found");
    assert_eq!(error["client_msg_id"], "steal");
    let history: serde_json::Value = app
        .get(1, &format!("/chats/{chat_id}/messages"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history, serde_json::json!([]));
}

/// Writes a whole upload of a `size`-byte file — headers and every byte of the body — before
/// reading anything, as Python's `requests` and many mobile HTTP stacks do; then reads the
/// answer. Fails the test if the server resets the connection on the way.
async fn upload_writing_everything_first(app: &TestApp, size: usize) -> (u16, Value) {
    let (boundary, body) = raw_multipart(
        b"form-data; name=\"file\"; filename=\"big.mp4\"",
        "video/mp4",
        &mp4_of_size(size, 4),
    );
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        app.address,
        token(1),
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
        .write_all(&body)
        .await
        .expect("the whole body is written (the server reads what it refuses)");
    let mut answer = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let read = async {
        loop {
            let n = stream
                .read(&mut buf)
                .await
                .expect("the answer reads without a reset");
            answer.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&answer);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .expect("a Content-Length");
                if body.len() >= length {
                    break;
                }
            }
            assert!(n > 0, "the connection closed mid-answer: {text}");
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("an answer in time");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).expect("a JSON body"))
}

#[tokio::test]
async fn a_client_that_writes_the_whole_body_before_reading_gets_its_413() {
    // Far more than the socket buffers hold, so the refused body must really be read.
    let size = 24 << 20;
    let app = spawn_app_with(&[("MAX_UPLOAD_BYTES", "1048576")]).await;
    let (status, body) = upload_writing_everything_first(&app, size).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("MAX_UPLOAD_BYTES")),
        "{body}"
    );

    let app = spawn_app_with(&[("UPLOAD_QUOTA_BYTES", "1048576")]).await;
    let (status, body) = upload_writing_everything_first(&app, size).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| d.contains("quota")),
        "{body}"
    );
    // The refused bytes were read and thrown away, not stored.
    staging_is_empty(&app).await;
    assert!(upload_rows(&app).await.is_empty());
}
