//! Media in an S3-compatible bucket (`MEDIA_STORE=s3://...`): a real S3 server (s3s-fs, the
//! s3s project's file-system server, installed by scripts/setup.sh) on loopback, uploads
//! streamed into it, served back with ranges, shared by two instances, and a store that goes
//! away and comes back.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use reqwest::{StatusCode, header};
use sea_orm::{Database, EntityTrait};
use sha2::{Digest, Sha256};
use tokio::process::{Child, Command};

use jetchat::store::upload;

use crate::{
    helpers::{
        TestApp, embedded_command, eventually, free_address, spawn_app_with, start_embedded, token,
    },
    media::{Uploaded, ftyp, upload_file},
};

const ACCESS_KEY: &str = "jetchat-test";
const SECRET_KEY: &str = "jetchat-test-secret-key";
const BUCKET: &str = "jetchat-media";
const PREFIX: &str = "test/blobs";

/// An s3s-fs server on a loopback port, its data in a temporary directory; killed on drop.
pub struct S3Server {
    address: SocketAddr,
    root: tempfile::TempDir,
    child: Option<Child>,
}

/// `S3_SERVER_BIN`, else the project's `.tools/bin/s3s-fs` (scripts/setup.sh), else `s3s-fs`
/// on PATH.
fn s3s_fs_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("S3_SERVER_BIN") {
        return bin.into();
    }
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/s3s-fs");
    if tools.exists() {
        return tools;
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("s3s-fs"))
                .find(|bin| bin.exists())
        })
        .expect("s3s-fs not found: run scripts/setup.sh (it installs .tools/bin/s3s-fs)")
}

impl S3Server {
    /// Starts a server with an empty bucket [`BUCKET`].
    pub async fn start() -> S3Server {
        let root = tempfile::tempdir().expect("temporary directory");
        std::fs::create_dir(root.path().join(BUCKET)).expect("bucket directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut server = S3Server {
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            root,
            child: None,
        };
        server.resume().await;
        server
    }

    /// Kills the server (SIGKILL); its data stays.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("s3s-fs killed");
        }
    }

    /// Starts the server again on the same port and data, and waits until it accepts.
    pub async fn resume(&mut self) {
        let child = Command::new(s3s_fs_bin())
            .args(["--host", "127.0.0.1", "--port"])
            .arg(self.address.port().to_string())
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(self.root.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("s3s-fs starts");
        self.child = Some(child);
        let address = self.address;
        eventually("s3s-fs accepts connections", || async move {
            tokio::net::TcpStream::connect(address)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .await;
    }

    /// The settings of an app that keeps its media in this server's bucket.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("MEDIA_STORE", format!("s3://{BUCKET}/{PREFIX}")),
            ("MEDIA_S3_ENDPOINT", format!("http://{}", self.address)),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// The object of a blob, as s3s-fs keeps it on disk.
    pub fn object(&self, sha256: &str) -> PathBuf {
        self.root
            .path()
            .join(BUCKET)
            .join(PREFIX)
            .join(&sha256[..2])
            .join(sha256)
    }
}

/// An app on `server`'s bucket, with `extra` settings.
pub async fn spawn_app_on(server: &S3Server, extra: &[(&str, &str)]) -> TestApp {
    let settings = server.settings();
    let mut all: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(extra);
    spawn_app_with(&all).await
}

/// An MP4 of `size` bytes whose bytes differ along the file, so a wrong range shows.
fn mp4(size: usize, seed: u8) -> Vec<u8> {
    let mut bytes = ftyp(b"isom");
    let header = bytes.len();
    bytes.extend((header..size).map(|i| (i % 251) as u8 ^ seed));
    bytes
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn fetch(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = app.http.get(app.url(path)).bearer_auth(token(1));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request sent")
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                files_under(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

/// Range, 416 and entity tags, as the local storage answers them (tests/api/media.rs).
async fn serves_with_ranges(app: &TestApp, uploaded: &Uploaded, bytes: &[u8]) {
    let size = bytes.len();
    let path = uploaded.path();
    let etag = format!("\"{}\"", sha256_hex(bytes));

    let whole = fetch(app, &path, &[]).await;
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.headers()[header::ETAG], etag.as_str());
    assert_eq!(whole.headers()[header::ACCEPT_RANGES], "bytes");
    assert_eq!(whole.headers()[header::CONTENT_TYPE], "video/mp4");
    assert_eq!(whole.bytes().await.unwrap(), bytes);

    for (range, expected) in [
        ("bytes=0-99".to_owned(), 0..100),
        ("bytes=-100".to_owned(), size - 100..size),
        (format!("bytes={}-", size - 7), size - 7..size),
        ("bytes=10-10".to_owned(), 10..11),
    ] {
        let response = fetch(app, &path, &[("range", &range)]).await;
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            response.headers()[header::CONTENT_RANGE],
            format!("bytes {}-{}/{size}", expected.start, expected.end - 1).as_str(),
            "{range}"
        );
        assert_eq!(
            response.headers()[header::CONTENT_LENGTH],
            expected.len().to_string().as_str()
        );
        assert_eq!(response.headers()[header::ETAG], etag.as_str());
        assert_eq!(response.bytes().await.unwrap(), bytes[expected], "{range}");
    }

    let beyond = format!("bytes={size}-");
    let response = fetch(app, &path, &[("range", &beyond)]).await;
    assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        response.headers()[header::CONTENT_RANGE],
        format!("bytes */{size}").as_str()
    );

    let response = fetch(app, &path, &[("if-none-match", &etag)]).await;
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
}

async fn upload_rows(app: &TestApp) -> Vec<upload::Model> {
    let db = Database::connect(&app.database_url).await.unwrap();
    upload::Entity::find().all(&db).await.unwrap()
}

#[tokio::test]
async fn an_upload_is_stored_in_the_bucket_and_served_with_ranges() {
    let s3 = S3Server::start().await;
    let app = spawn_app_on(&s3, &[]).await;
    // Past one part (8 MiB): a multipart upload.
    for bytes in [mp4(3000, 1), mp4(12 * 1024 * 1024 + 5, 2)] {
        let uploaded = upload_file(&app, 1, "clip.mp4", bytes.clone()).await;
        assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.body);

        let sha256 = sha256_hex(&bytes);
        let object = std::fs::read(s3.object(&sha256)).expect("the object is in the bucket");
        assert!(object == bytes, "the object holds the uploaded bytes");
        serves_with_ranges(&app, &uploaded, &bytes).await;
    }
    // Nothing kept on the local disk: no blobs, an empty staging area.
    let local = files_under(&app.dir().join("media"));
    assert!(local.is_empty(), "{local:?}");
}

#[tokio::test]
async fn two_instances_on_one_bucket_serve_each_others_uploads() {
    let s3 = S3Server::start().await;
    let first = spawn_app_on(&s3, &[]).await;
    // Same database and NATS, its own MEDIA_DIR: they share only the bucket.
    let second = first.sibling().await;
    assert_ne!(
        first.dir().join("media"),
        second.dir().join("media"),
        "two media directories"
    );

    let bytes = mp4(5000, 3);
    let uploaded = upload_file(&first, 1, "shared.mp4", bytes.clone()).await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.body);
    serves_with_ranges(&second, &uploaded, &bytes).await;

    let other = mp4(4000, 4);
    let back = upload_file(&second, 1, "back.mp4", other.clone()).await;
    assert_eq!(back.status, StatusCode::CREATED, "{}", back.body);
    serves_with_ranges(&first, &back, &other).await;
}

#[tokio::test]
async fn a_store_that_goes_away_mid_upload_leaves_nothing_and_comes_back_without_a_restart() {
    let mut s3 = S3Server::start().await;
    let app = spawn_app_on(&s3, &[]).await;
    let kept = mp4(2000, 5);
    let earlier = upload_file(&app, 1, "earlier.mp4", kept.clone()).await;
    assert_eq!(earlier.status, StatusCode::CREATED, "{}", earlier.body);

    // The body streams in two halves; the store dies between them.
    let bytes = mp4(64 * 1024, 6);
    let (boundary, body) = multipart_body(&bytes);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
    let request = app
        .http
        .post(app.url("/upload"))
        .bearer_auth(token(1))
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header(header::CONTENT_LENGTH, body.len())
        .body(reqwest::Body::wrap_stream(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
        .send();
    let response = tokio::spawn(request);
    let half = body.len() / 2;
    tx.send(Ok(body[..half].to_vec())).await.unwrap();
    s3.kill().await;
    tx.send(Ok(body[half..].to_vec())).await.unwrap();
    drop(tx);
    let response = response.await.unwrap().expect("an answer");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        answer["detail"], "the media storage is unavailable; try again later",
        "{answer}"
    );
    // No row, no object, nothing staged.
    let rows = upload_rows(&app).await;
    assert_eq!(rows.len(), 1, "only the earlier upload: {rows:?}");
    assert!(!s3.object(&sha256_hex(&bytes)).exists());
    let tmp = app.dir().join("media/tmp");
    eventually("the staging area is empty", || async {
        let left = files_under(&tmp);
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        }
    })
    .await;
    // Reading while it is away: 503 as well.
    let response = fetch(&app, &earlier.path(), &[]).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);

    // Back on the same address: the same app uploads and serves again.
    s3.resume().await;
    let retried = upload_file(&app, 1, "again.mp4", bytes.clone()).await;
    assert_eq!(retried.status, StatusCode::CREATED, "{}", retried.body);
    serves_with_ranges(&app, &retried, &bytes).await;
    serves_with_ranges(&app, &earlier, &kept).await;
    assert_eq!(upload_rows(&app).await.len(), 2);
}

/// A one-part multipart body with `bytes` as the `file` field.
fn multipart_body(bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----jetchat-bucket-test-3b1f".to_owned();
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
         filename=\"cut.mp4\"\r\nContent-Type: video/mp4\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (boundary, body)
}

#[tokio::test]
async fn presigned_redirects_send_the_client_to_the_store() {
    let s3 = S3Server::start().await;
    let app = spawn_app_on(&s3, &[("MEDIA_REDIRECT", "presigned")]).await;
    let bytes = mp4(6000, 7);
    let uploaded = upload_file(&app, 1, "direct.mp4", bytes.clone()).await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.body);
    let not_following = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // The uploader: a 302 to the object in the store, not to be cached.
    let response = not_following
        .get(app.url(&uploaded.path()))
        .bearer_auth(token(1))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    let location = response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let object = format!(
        "http://{}/{BUCKET}/{PREFIX}/{}/",
        s3.address,
        &sha256_hex(&bytes)[..2]
    );
    assert!(location.starts_with(&object), "{location}");
    assert!(location.contains("X-Amz-Signature="), "{location}");

    // The store serves it, ranges included, with the type detected at upload.
    let store = reqwest::Client::new();
    let ranged = store
        .get(&location)
        .header(header::RANGE, "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(ranged.headers()[header::CONTENT_TYPE], "video/mp4");
    assert_eq!(ranged.bytes().await.unwrap(), bytes[100..200]);
    // The signature covers the object: another (existing) key with it is refused.
    let other = mp4(3000, 8);
    let second = upload_file(&app, 1, "other.mp4", other.clone()).await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    let key = |bytes: &[u8]| {
        let sha256 = sha256_hex(bytes);
        format!("/{}/{sha256}?", &sha256[..2])
    };
    let altered = location.replacen(&key(&bytes), &key(&other), 1);
    assert_ne!(altered, location);
    let refused = store.get(&altered).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{altered}");

    // A browser's <video src=file_url>: no token, the redirect followed to the bytes.
    let played = reqwest::get(app.url(uploaded.file_url())).await.unwrap();
    assert_eq!(played.status(), StatusCode::OK);
    assert_eq!(played.bytes().await.unwrap(), bytes);

    // Authorization comes first: a stranger gets 404, no URL of the store.
    let stranger = not_following
        .get(app.url(&uploaded.path()))
        .bearer_auth(token(2))
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), StatusCode::NOT_FOUND);
    assert!(stranger.headers().get(header::LOCATION).is_none());
}

/// `jetchat media migrate` with `app`'s media directory and `s3`'s bucket.
fn migrate_media(app: &TestApp, s3: &S3Server) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_jetchat"))
        .args(["media", "migrate"])
        .current_dir(app.dir())
        .env_clear()
        .env("JWT_SECRET", crate::helpers::SECRET)
        .env("MEDIA_DIR", app.dir().join("media"))
        .envs(s3.settings())
        .output()
        .expect("jetchat runs")
}

#[tokio::test]
async fn media_migrate_copies_local_blobs_into_the_bucket_verified_and_resumable() {
    let s3 = S3Server::start().await;
    let mut app = spawn_app_with(&[]).await;
    let small = mp4(3000, 9);
    let large = mp4(9 * 1024 * 1024, 10);
    let first = upload_file(&app, 1, "small.mp4", small.clone()).await;
    let second = upload_file(&app, 1, "large.mp4", large.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    // A blob whose bytes are not its name (a disk error, a hand edit): never copied.
    let blobs = app.dir().join("media/blobs");
    let forged = "ab".to_owned() + &"0".repeat(62);
    std::fs::create_dir_all(blobs.join("ab")).unwrap();
    std::fs::write(blobs.join("ab").join(&forged), b"not what the name says").unwrap();

    let run = migrate_media(&app, &s3);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "a bad blob fails the run: {stdout}");
    assert!(
        stdout.contains("copied 2, already in the bucket 0, failed 1"),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!("{forged}: the file's SHA-256 is")),
        "{stderr}"
    );
    assert!(!stderr.contains(SECRET_KEY), "{stderr}");
    assert!(!s3.object(&forged).exists());
    for bytes in [&small, &large] {
        let object = std::fs::read(s3.object(&sha256_hex(bytes))).unwrap();
        assert!(&object == bytes, "the object holds the blob");
    }

    // As if the run had stopped before the large one: run again, only that one is copied.
    std::fs::remove_file(s3.object(&sha256_hex(&large))).unwrap();
    std::fs::remove_file(blobs.join("ab").join(&forged)).unwrap();
    let run = migrate_media(&app, &s3);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("copied 1, already in the bucket 1, failed 0"),
        "{stdout}"
    );

    // The same app on the bucket, its local blobs gone: the files are served from there.
    app.stop().await;
    std::fs::remove_dir_all(&blobs).unwrap();
    let settings = s3.settings();
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    app.start_again_with(&settings).await;
    serves_with_ranges(&app, &first, &small).await;
    serves_with_ranges(&app, &second, &large).await;
}

#[tokio::test]
async fn media_migrate_without_a_bucket_says_what_to_set() {
    let app = spawn_app_with(&[]).await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_jetchat"))
        .args(["media", "migrate"])
        .current_dir(app.dir())
        .env_clear()
        .env("JWT_SECRET", crate::helpers::SECRET)
        .env("MEDIA_DIR", app.dir().join("media"))
        .output()
        .expect("jetchat runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("MEDIA_STORE is local"), "{stderr}");
}

#[tokio::test]
async fn the_stores_secret_key_appears_in_no_log_at_trace_level() {
    let mut s3 = S3Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("jetchat.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let address = free_address();
    let mut command = embedded_command(&dir.path().join("jetchat"), address);
    command
        .envs(s3.settings())
        .env("MEDIA_REDIRECT", "presigned")
        .env("RUST_LOG", "trace")
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    let mut jetchat = start_embedded(command, address, tempfile::tempdir().unwrap()).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let upload = |bytes: Vec<u8>| {
        let part = reqwest::multipart::Part::bytes(bytes).file_name("x.mp4");
        http.post(format!("http://{address}/upload"))
            .bearer_auth(token(1))
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
    };

    // An upload, a presigned redirect, and a failure with the store away.
    let stored = upload(mp4(4000, 11)).await.unwrap();
    assert_eq!(stored.status(), StatusCode::CREATED);
    let file_id = stored.json::<serde_json::Value>().await.unwrap()["file_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let redirect = http
        .get(format!("http://{address}/media/{file_id}"))
        .bearer_auth(token(1))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), StatusCode::FOUND);
    s3.kill().await;
    let refused = upload(mp4(4000, 12)).await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);

    jetchat.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(jetchat.exited().await.success());
    let printed = std::fs::read_to_string(&log_path).unwrap();
    // The failure was logged, with the libraries' own logs on.
    assert!(printed.contains("media storage failed"), "{printed:.2000}");
    assert!(
        printed.contains("hyper"),
        "the HTTP client's trace logs were on"
    );
    if let Some(at) = printed.find(SECRET_KEY) {
        let line = printed[..at].rsplit('\n').next().unwrap_or_default();
        panic!("the secret key printed, in the line starting {line:.300}");
    }
}
