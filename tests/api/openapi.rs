//! The OpenAPI document: generated from the handlers, checked into `docs/openapi.json`.

use serde_json::Value;

use crate::helpers::{spawn_app, spawn_app_with};

/// `docs/openapi.json` must equal what the service serves; run with `UPDATE_OPENAPI=1` to
/// rewrite it after an intended change to the API.
#[tokio::test]
async fn served_spec_matches_the_committed_snapshot() {
    let app = spawn_app().await;
    let served: Value = app.openapi().await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
    let pretty = serde_json::to_string_pretty(&served).unwrap() + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &pretty).unwrap();
    }
    let committed = std::fs::read_to_string(&path)
        .expect("docs/openapi.json exists (UPDATE_OPENAPI=1 writes it)");
    assert!(
        committed == pretty,
        "docs/openapi.json is out of date: run `UPDATE_OPENAPI=1 cargo nextest run --test api openapi`"
    );
}

/// Every operation documents its responses and every `$ref` points at a defined schema.
#[tokio::test]
async fn spec_is_self_consistent() {
    let app = spawn_app().await;
    let spec: Value = app.openapi().await;
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    let text = spec.to_string();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "dangling $ref to {name}");
    }
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object();
            assert!(
                responses.is_some_and(|r| !r.is_empty()),
                "{method} {path} documents no response"
            );
        }
    }
}

/// A newcomer who opens jetchat in a browser finds the way: `/` (without the web app) points
/// at the docs, `/docs` names the protocol document (served at `/protocol`) and where a token
/// comes from.
#[tokio::test]
async fn the_front_page_and_the_docs_show_the_way() {
    let app = spawn_app_with(&[("WEB_APP", "off")]).await;

    let home = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(home.status(), 200);
    assert!(
        home.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = home.text().await.unwrap();
    for link in [
        "href=\"/docs\"",
        "href=\"/protocol\"",
        "href=\"/healthz\"",
        "jetchat token",
    ] {
        assert!(page.contains(link), "the front page has {link}");
    }

    let protocol = app.http.get(app.url("/protocol")).send().await.unwrap();
    assert_eq!(protocol.status(), 200);
    assert!(
        protocol
            .text()
            .await
            .unwrap()
            .starts_with("# The WebSocket protocol")
    );

    let spec = app.openapi().await;
    assert_eq!(spec["info"]["title"], "jetchat");
    let description = spec["info"]["description"].as_str().unwrap();
    assert!(description.contains("(/protocol)"), "{description}");
    assert!(
        description.contains("jetchat token <user_id>"),
        "{description}"
    );
}

/// Ids past `i64` in a path or a query answer 422, and the document says so for each route
/// (schemathesis, in scripts/test.sh, found these two undocumented).
#[tokio::test]
async fn ids_past_i64_answer_a_documented_422() {
    let app = spawn_app().await;
    let spec = app.openapi().await;
    let past_i64 = "9223372036854775808";
    let cases = [
        (
            "delete",
            "/chats/{chat_id}/mute",
            format!("/chats/{past_i64}/mute"),
        ),
        (
            "put",
            "/chats/{chat_id}/mute",
            format!("/chats/{past_i64}/mute"),
        ),
        ("get", "/ws/chat", format!("/ws/chat?since={past_i64}")),
        (
            "get",
            "/chats/{chat_id}/messages/{message_id}/revisions",
            format!("/chats/1/messages/{past_i64}/revisions"),
        ),
    ];
    for (method, route, path) in cases {
        let documented = &spec["paths"][route][method]["responses"]["422"];
        assert!(documented.is_object(), "{method} {route} documents 422");
        let token = match route.ends_with("/revisions") {
            true => crate::helpers::token_with(serde_json::json!({
                "token_type": "access",
                "exp": chrono::Utc::now().timestamp() + 300,
                "user_id": 1,
                "is_staff": true,
            })),
            false => crate::helpers::token(1),
        };
        let response = app
            .http
            .request(method.to_uppercase().parse().unwrap(), app.url(&path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{method} {path}");
    }
}
