//! Authentication: every bad token kind is refused with 401 before the WebSocket upgrade and
//! on REST; integer and numeric-string user ids, in the query or the header, are accepted.

use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Error as WsError;

use crate::helpers::{TestApp, WsClient, access_claims, raw_token, spawn_app, token, token_with};

/// The handshake must fail with an HTTP 401 response (not a completed upgrade).
fn assert_refused(result: Result<WsClient, WsError>, what: &str) {
    match result {
        Ok(_) => panic!("{what}: the WebSocket upgrade was accepted"),
        Err(WsError::Http(response)) => assert_eq!(
            response.status(),
            401,
            "{what}: handshake answered {}",
            response.status()
        ),
        Err(other) => panic!("{what}: expected an HTTP 401 response, got {other:?}"),
    }
}

/// `GET /chats/` must answer 401 with `{"detail": "<non-empty>"}`.
async fn assert_rest_refused(app: &TestApp, token: Option<&str>, what: &str) {
    let response = app.get_with_token(token, "/chats/").await;
    assert_eq!(response.status(), 401, "{what}: REST status");
    let body: Value = response.json().await.expect("a JSON error body");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{what}: REST body {body}"
    );
}

/// A bad token is refused on the WebSocket (query and header) and on REST.
async fn assert_token_refused(bad: &str, what: &str) {
    let app = spawn_app().await;
    assert_refused(
        app.try_connect(Some(bad)).await,
        &format!("{what} (?token=)"),
    );
    assert_refused(
        app.try_connect_bearer(bad).await,
        &format!("{what} (Authorization header)"),
    );
    assert_rest_refused(&app, Some(bad), what).await;
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn no_token_is_refused() {
    let app = spawn_app().await;
    assert_refused(app.try_connect(None).await, "no token");
    assert_rest_refused(&app, None, "no token").await;
}

#[tokio::test]
async fn malformed_token_is_refused() {
    assert_token_refused("not-a-jwt", "malformed token").await;
    assert_token_refused("abc.def.ghi", "three garbage parts").await;
}

#[tokio::test]
async fn expired_token_is_refused() {
    let expired = token_with(json!({
        "token_type": "access",
        "exp": now() - 3600,
        "iat": now() - 7200,
        "jti": "expired",
        "user_id": 1,
    }));
    assert_token_refused(&expired, "expired token").await;
}

#[tokio::test]
async fn token_with_wrong_signature_is_refused() {
    let forged = encode(
        &Header::default(),
        &access_claims(json!(1)),
        &EncodingKey::from_secret(b"not-the-django-secret"),
    )
    .unwrap();
    assert_token_refused(&forged, "wrong signature").await;
}

#[tokio::test]
async fn refresh_token_is_refused() {
    let mut claims = access_claims(json!(1));
    claims["token_type"] = json!("refresh");
    assert_token_refused(&token_with(claims), "refresh token").await;
}

#[tokio::test]
async fn alg_none_token_is_refused() {
    let unsigned = raw_token(
        json!({"alg": "none", "typ": "JWT"}),
        access_claims(json!(1)),
        "",
    );
    assert!(unsigned.ends_with('.'), "empty signature: {unsigned}");
    assert_token_refused(&unsigned, "alg none").await;
}

#[tokio::test]
async fn token_without_user_id_is_refused() {
    let mut claims = access_claims(json!(1));
    claims.as_object_mut().unwrap().remove("user_id");
    assert_token_refused(&token_with(claims), "user_id missing").await;
}

#[tokio::test]
async fn token_with_non_numeric_user_id_is_refused() {
    let claims = access_claims(json!("alice"));
    assert_token_refused(&token_with(claims), "non-numeric user_id").await;
}

/// Proves which user a socket belongs to: it sends to user `to`, who sees the sender id.
async fn assert_socket_is_user(app: &TestApp, socket: &mut WsClient, user_id: i64, to: i64) {
    let mut receiver = app.connect(to).await;
    let ack = socket
        .send_message(json!({"receiver_id": to, "content": "who am I?"}))
        .await;
    let new = receiver.expect("new_message").await;
    assert_eq!(new["message_id"], ack["message_id"]);
    assert_eq!(new["sender_id"], user_id, "sender id is a JSON integer");
    assert_eq!(new["receiver_id"], to);
}

#[tokio::test]
async fn integer_user_id_in_the_query_is_accepted() {
    let app = spawn_app().await;
    let mut socket = app
        .try_connect(Some(&token(5)))
        .await
        .expect("handshake succeeds");
    assert_socket_is_user(&app, &mut socket, 5, 6).await;
    assert_eq!(
        app.get_with_token(Some(&token(5)), "/chats/")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn numeric_string_user_id_is_accepted() {
    let app = spawn_app().await;
    let string_token = token_with(access_claims(json!("5")));
    let mut socket = app
        .try_connect(Some(&string_token))
        .await
        .expect("handshake succeeds");
    assert_socket_is_user(&app, &mut socket, 5, 6).await;

    // REST sees the same user: the chat just created is in user 5's list.
    let response = app.get_with_token(Some(&string_token), "/chats/").await;
    assert_eq!(response.status(), 200);
    let chats: Value = response.json().await.unwrap();
    let chats = chats.as_array().expect("a list of chats");
    assert_eq!(chats.len(), 1, "{chats:?}");
    let mut members = chats[0]["member_ids"].as_array().unwrap().clone();
    members.sort_by_key(|m| m.as_i64());
    assert_eq!(members, vec![json!(5), json!(6)]);
}

#[tokio::test]
async fn token_in_the_authorization_header_is_accepted() {
    let app = spawn_app().await;
    let mut socket = app
        .try_connect_bearer(&token(7))
        .await
        .expect("handshake with Authorization: Bearer succeeds");
    socket.send(json!({"action": "ping"})).await;
    assert_eq!(socket.next().await, json!({"action": "pong"}));
    assert_socket_is_user(&app, &mut socket, 7, 8).await;
}

/// A bad token is refused by `app` on the WebSocket and on REST.
async fn assert_refused_by(app: &TestApp, bad: &str, what: &str) {
    assert_refused(app.try_connect(Some(bad)).await, what);
    assert_rest_refused(app, Some(bad), what).await;
}

#[tokio::test]
async fn token_not_valid_yet_is_refused() {
    let mut claims = access_claims(json!(1));
    claims["nbf"] = json!(now() + 3600);
    assert_token_refused(&token_with(claims), "nbf an hour ahead").await;
}

#[tokio::test]
async fn issuer_and_audience_must_match_when_configured() {
    let app = crate::helpers::spawn_app_with(&[
        ("JWT_ISSUER", "https://django.example"),
        ("JWT_AUDIENCE", "jetchat"),
    ])
    .await;
    let with = |iss: Option<&str>, aud: Option<&str>| {
        let mut claims = access_claims(json!(5));
        if let Some(iss) = iss {
            claims["iss"] = json!(iss);
        }
        if let Some(aud) = aud {
            claims["aud"] = json!(aud);
        }
        token_with(claims)
    };
    let good = with(Some("https://django.example"), Some("jetchat"));
    let mut socket = app
        .try_connect(Some(&good))
        .await
        .expect("a token with the right iss and aud is accepted");
    socket.send(json!({"action": "ping"})).await;
    assert_eq!(socket.next().await, json!({"action": "pong"}));
    assert_eq!(
        app.get_with_token(Some(&good), "/chats/").await.status(),
        200
    );

    for (bad, what) in [
        (
            with(Some("https://evil.example"), Some("jetchat")),
            "another issuer",
        ),
        (
            with(Some("https://django.example"), Some("billing")),
            "another audience",
        ),
        (with(None, Some("jetchat")), "no iss"),
        (with(Some("https://django.example"), None), "no aud"),
    ] {
        assert_refused_by(&app, &bad, what).await;
    }
}

#[tokio::test]
async fn without_jwt_audience_a_token_naming_an_audience_is_refused() {
    let app = spawn_app().await;
    let mut claims = access_claims(json!(1));
    claims["aud"] = json!("jetchat");
    assert_refused_by(&app, &token_with(claims), "aud without JWT_AUDIENCE").await;
    // And iss is not checked when JWT_ISSUER is unset.
    let mut claims = access_claims(json!(1));
    claims["iss"] = json!("https://anyone.example");
    assert_eq!(
        app.get_with_token(Some(&token_with(claims)), "/chats/")
            .await
            .status(),
        200
    );
}
