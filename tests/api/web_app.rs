//! The web app at `/` (embedded `clients/web/dist`) with its cache headers, beside every route
//! it must not shadow; `WEB_APP=off`; and `POST /dev/token`, which exists only with
//! `DEV_LOGIN` and is refused at start-up on a bind other machines reach unless forced.

use serde_json::{Value, json};

use crate::helpers::{
    SECRET, TestApp, embedded_command, free_address, spawn_app, spawn_app_with, start_embedded,
    token,
};

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.http.get(app.url(path)).send().await.unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or_default()
}

/// The asset paths `index.html` names (`/assets/index-<hash>.js` and `.css`).
fn assets_of(index: &str) -> Vec<String> {
    index
        .split(['"', '\''])
        .filter(|s| s.starts_with("/assets/"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_app_is_served_at_the_root_with_cache_headers_and_shadows_nothing() {
    let app = spawn_app().await;

    let index = get(&app, "/").await;
    assert_eq!(index.status(), 200);
    assert!(header(&index, "content-type").starts_with("text/html"));
    assert_eq!(header(&index, "cache-control"), "no-cache");
    assert!(header(&index, "content-security-policy").contains("default-src 'self'"));
    let page = index.text().await.unwrap();
    let assets = assets_of(&page);
    assert!(assets.iter().any(|a| a.ends_with(".js")), "{page}");
    assert!(assets.iter().any(|a| a.ends_with(".css")), "{page}");
    for asset in &assets {
        let response = get(&app, asset).await;
        assert_eq!(response.status(), 200, "{asset}");
        assert_eq!(
            header(&response, "cache-control"),
            "public, max-age=31536000, immutable"
        );
        let expected = match asset.ends_with(".js") {
            true => "text/javascript",
            false => "text/css",
        };
        assert!(
            header(&response, "content-type").starts_with(expected),
            "{asset}"
        );
    }
    let config: Value = get(&app, "/app-config.json").await.json().await.unwrap();
    assert_eq!(
        config,
        json!({"dev_login": false, "user_id_claim": "user_id", "token_origins": []})
    );

    // Everything else is what it was.
    for (path, status) in [
        ("/docs/", 200),
        ("/openapi.json", 200),
        ("/healthz", 200),
        ("/metrics", 200),
        ("/protocol", 200),
        ("/chats/", 401),
        ("/ws/chat", 401),
        ("/assets/nothing-here.js", 404),
        ("/assets/../Cargo.toml", 404),
        ("/assets/%2e%2e/%2e%2e/Cargo.toml", 404),
        ("/assets/%00", 404),
        ("/index.html", 404),
        ("/dev/token", 404),
    ] {
        assert_eq!(get(&app, path).await.status(), status, "{path}");
    }
    let long = format!("/assets/{}.js", "a".repeat(4_000));
    assert_eq!(get(&app, &long).await.status(), 404);
    let chats = app
        .http
        .get(app.url("/chats/"))
        .bearer_auth(token(1))
        .send()
        .await
        .unwrap();
    assert_eq!(chats.status(), 200);
}

#[tokio::test]
async fn web_app_off_leaves_the_front_page_of_before() {
    let app = spawn_app_with(&[("WEB_APP", "off")]).await;
    let home = get(&app, "/").await;
    assert_eq!(home.status(), 200);
    assert!(home.text().await.unwrap().contains("href=\"/docs\""));
    for path in ["/app-config.json", "/assets/index.js"] {
        assert_eq!(get(&app, path).await.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn dev_login_hands_out_tokens_that_work_and_refuses_garbage() {
    let app = spawn_app_with(&[("DEV_LOGIN", "true")]).await;
    let config: Value = get(&app, "/app-config.json").await.json().await.unwrap();
    assert_eq!(config["dev_login"], true);

    let dev_token = |body: String| {
        app.http
            .post(app.url("/dev/token"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let answer: Value = dev_token(json!({"user_id": 7}).to_string())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["user_id"], 7);
    let chats = app
        .http
        .get(app.url("/chats/"))
        .bearer_auth(answer["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(chats.status(), 200);
    let max: Value = dev_token(json!({"user_id": i64::MAX}).to_string())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(max["user_id"], i64::MAX);

    let huge = format!("{{\"user_id\": 1, \"pad\": \"{}\"}}", "x".repeat(3_000_000));
    for body in [
        json!({"user_id": 0}).to_string(),
        json!({"user_id": -1}).to_string(),
        json!({"user_id": i64::MIN}).to_string(),
        json!({"user_id": "7"}).to_string(),
        json!({"user_id": 1.5}).to_string(),
        json!({"user_id": 1, "admin": true}).to_string(),
        "{\"user_id\": 18446744073709551616}".to_owned(),
        "{\"user_id\": 1\u{0}}".to_owned(),
        "{}".to_owned(),
        "null".to_owned(),
        "not json".to_owned(),
        String::new(),
        huge,
    ] {
        let response = dev_token(body.clone()).await.unwrap();
        let status = response.status();
        assert!(
            status == 422 || status == 413 || status == 400,
            "{status} for {body:.40}"
        );
        if status == 422 {
            let error: Value = response.json().await.unwrap();
            assert!(error["detail"].is_string(), "{body:.40}");
        }
    }
    // The same request again gives another token that works as well.
    for _ in 0..3 {
        assert_eq!(
            dev_token(json!({"user_id": 7}).to_string())
                .await
                .unwrap()
                .status(),
            200
        );
    }
}

#[tokio::test]
async fn dev_login_is_refused_at_start_up_on_a_bind_other_machines_reach() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_address().port();
    let output = embedded_command(dir.path(), format!("0.0.0.0:{port}").parse().unwrap())
        .env("DEV_LOGIN", "true")
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("DEV_LOGIN"), "{stderr}");
    assert!(stderr.contains("DEV_LOGIN=force"), "{stderr}");
    assert!(!stderr.contains(SECRET), "{stderr}");

    // Forced, it starts there and hands out tokens.
    let dir = tempfile::tempdir().unwrap();
    let loopback = free_address();
    let mut command = embedded_command(
        dir.path(),
        format!("0.0.0.0:{}", loopback.port()).parse().unwrap(),
    );
    command.env("DEV_LOGIN", "force");
    let process = start_embedded(command, loopback, dir).await;
    let response = reqwest::Client::new()
        .post(format!("http://{}/dev/token", process.address))
        .json(&json!({"user_id": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}
