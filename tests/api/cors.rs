//! Cross-origin use: CORS preflights and headers for REST, the `Origin` check of the
//! WebSocket upgrade, with real HTTP and WebSocket clients.

use reqwest::{Method, header};
use tokio_tungstenite::tungstenite::{
    Error as WsError, client::IntoClientRequest, http::HeaderValue,
};

use crate::helpers::{TestApp, spawn_app, spawn_app_with, token};

const WEB_APP: &str = "http://localhost:5173";

async fn spawn_with_web_app() -> TestApp {
    spawn_app_with(&[(
        "CORS_ALLOWED_ORIGINS",
        "http://localhost:5173, https://chat.example.com",
    )])
    .await
}

/// A preflight as a browser sends it before `fetch(url, {method, headers: {Authorization}})`.
async fn preflight(app: &TestApp, path: &str, origin: &str, method: &str) -> reqwest::Response {
    app.http
        .request(Method::OPTIONS, app.url(path))
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, method)
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "authorization,content-type",
        )
        .send()
        .await
        .expect("preflight answered")
}

fn header_list(response: &reqwest::Response, name: header::HeaderName) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_ascii_lowercase())
        .unwrap_or_default()
}

/// The handshake's answer for a socket opened with this `Origin` (`None`: no header).
async fn handshake(app: &TestApp, origin: Option<&[u8]>) -> Result<(), (u16, String)> {
    let mut request = app
        .ws_url(&token(1))
        .into_client_request()
        .expect("valid WebSocket URL");
    if let Some(origin) = origin {
        request.headers_mut().insert(
            header::ORIGIN,
            HeaderValue::from_bytes(origin).expect("a header value"),
        );
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => Ok(()),
        Err(WsError::Http(response)) => {
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Err((response.status().as_u16(), body))
        }
        Err(other) => panic!("the handshake failed without an HTTP answer: {other:?}"),
    }
}

#[tokio::test]
async fn a_listed_origin_gets_its_preflight_answered_without_credentials() {
    let app = spawn_with_web_app().await;

    let response = preflight(&app, "/chats/", WEB_APP, "POST").await;

    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        header_list(&response, header::ACCESS_CONTROL_ALLOW_ORIGIN),
        WEB_APP
    );
    let methods = header_list(&response, header::ACCESS_CONTROL_ALLOW_METHODS);
    assert!(
        methods.contains("post") && methods.contains("get"),
        "{methods}"
    );
    let headers = header_list(&response, header::ACCESS_CONTROL_ALLOW_HEADERS);
    assert!(
        headers.contains("authorization") && headers.contains("range"),
        "{headers}"
    );
    assert!(
        response
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS)
            .is_none(),
        "credentials are never allowed"
    );
    assert!(header_list(&response, header::VARY).contains("origin"));
}

#[tokio::test]
async fn responses_to_a_listed_origin_expose_the_media_headers() {
    let app = spawn_with_web_app().await;

    let response = app
        .http
        .get(app.url("/chats/"))
        .header(header::ORIGIN, "https://chat.example.com")
        .bearer_auth(token(1))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(
        header_list(&response, header::ACCESS_CONTROL_ALLOW_ORIGIN),
        "https://chat.example.com"
    );
    let exposed = header_list(&response, header::ACCESS_CONTROL_EXPOSE_HEADERS);
    for name in [
        "content-range",
        "accept-ranges",
        "content-length",
        "etag",
        "retry-after",
    ] {
        assert!(exposed.contains(name), "{name} exposed: {exposed}");
    }
}

#[tokio::test]
async fn other_origins_get_no_cors_headers() {
    let app = spawn_with_web_app().await;

    for origin in [
        "https://evil.test",
        "null",
        "http://localhost:5174",
        "garbage",
    ] {
        let response = preflight(&app, "/chats/", origin, "GET").await;
        assert!(
            response
                .headers()
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .is_none(),
            "{origin}: no Access-Control-Allow-Origin"
        );
    }
}

#[tokio::test]
async fn without_the_setting_no_origin_is_allowed() {
    let app = spawn_app().await;

    let response = preflight(&app, "/chats/", WEB_APP, "GET").await;

    assert_eq!(response.status(), 405, "no CORS layer: OPTIONS is unknown");
    assert!(
        response
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
    let (status, _) = handshake(&app, Some(WEB_APP.as_bytes())).await.unwrap_err();
    assert_eq!(status, 403);
}

#[tokio::test]
async fn sockets_from_listed_origins_and_from_non_browsers_open() {
    let app = spawn_with_web_app().await;

    for origin in [
        &b"http://localhost:5173"[..],
        b"HTTP://LOCALHOST:5173",
        b"http://localhost:5173/",
        b"https://chat.example.com:443",
    ] {
        let shown = String::from_utf8_lossy(origin);
        handshake(&app, Some(origin))
            .await
            .unwrap_or_else(|e| panic!("{shown}: refused with {e:?}"));
    }
    handshake(&app, None)
        .await
        .expect("a client without Origin is not a browser: unaffected");
    let own = format!("http://{}", app.address);
    handshake(&app, Some(own.as_bytes()))
        .await
        .expect("a page jetchat served itself");
}

#[tokio::test]
async fn sockets_from_other_origins_are_refused_with_403_and_a_reason() {
    let app = spawn_with_web_app().await;
    let long = format!("https://{}.test", "a".repeat(4000));

    for origin in [
        &b"https://evil.test"[..],
        b"null",
        b"http://localhost:5173.evil.test",
        b"https://chat.example.com/app",
        b"not an origin",
        b"\xff\xfe",
        long.as_bytes(),
    ] {
        let shown: String = String::from_utf8_lossy(origin).chars().take(40).collect();
        let (status, body) = handshake(&app, Some(origin)).await.unwrap_err();
        assert_eq!(status, 403, "{shown}");
        let body: serde_json::Value = serde_json::from_str(&body).expect("a JSON body");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains("CORS_ALLOWED_ORIGINS"), "{shown}: {detail}");
        assert!(
            detail.len() < 300,
            "{shown}: the origin is not echoed whole"
        );
    }
}
