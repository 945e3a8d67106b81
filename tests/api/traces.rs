//! Traces: one message followed from the sending socket through `CHAT_IN` and the persister
//! to every instance that delivers it, in one trace exported over OTLP/HTTP to a collector
//! running in the test; and nothing of it when `OTEL_EXPORTER_OTLP_ENDPOINT` is unset.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use axum::{Json, Router, extract::State, routing::post};
use serde_json::{Value, json};

use crate::helpers::{TestApp, connect_at, eventually, spawn_app, stream_messages, token};

/// An OTLP/HTTP collector that keeps every span POSTed to `/v1/traces` (JSON encoding).
struct Collector {
    endpoint: String,
    spans: Arc<Mutex<Vec<Span>>>,
}

/// A span as the collector received it.
#[derive(Clone, Debug)]
struct Span {
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    /// `service.instance.id` of the exporting process.
    instance: String,
    service: String,
}

impl Collector {
    async fn start() -> Collector {
        let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
        let app = Router::new()
            .route("/v1/traces", post(receive))
            .with_state(spans.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Collector { endpoint, spans }
    }

    fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }
}

/// Records the spans of an `ExportTraceServiceRequest`.
async fn receive(
    State(spans): State<Arc<Mutex<Vec<Span>>>>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let attribute = |resource: &Value, key: &str| {
        resource["attributes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["key"] == key)
            .and_then(|a| a["value"]["stringValue"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let mut received = spans.lock().unwrap();
    for resource_spans in body["resourceSpans"].as_array().into_iter().flatten() {
        let resource = &resource_spans["resource"];
        for scope in resource_spans["scopeSpans"]
            .as_array()
            .into_iter()
            .flatten()
        {
            for span in scope["spans"].as_array().into_iter().flatten() {
                let text = |key: &str| span[key].as_str().unwrap_or_default().to_owned();
                received.push(Span {
                    name: text("name"),
                    trace_id: text("traceId"),
                    span_id: text("spanId"),
                    parent_span_id: text("parentSpanId"),
                    instance: attribute(resource, "service.instance.id"),
                    service: attribute(resource, "service.name"),
                });
            }
        }
    }
    Json(json!({}))
}

#[tokio::test]
async fn one_message_is_one_trace_from_the_socket_to_every_delivering_instance() {
    let collector = Collector::start().await;
    // The NATS server and database of an app whose own instance is stopped: the two jetchat
    // processes below are the only instances, and both export.
    let mut nats_and_database = spawn_app().await;
    nats_and_database.stop().await;
    let traced = [("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint.as_str())];
    let mut a = nats_and_database.spawn_process_with(&traced).await;
    let mut b = nats_and_database.spawn_process_with(&traced).await;
    let created: Value = nats_and_database
        .http
        .post(format!("http://{}/chats/", a.address))
        .bearer_auth(token(1))
        .json(&json!({"name": "traced", "is_group": true, "member_ids": [2]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let chat_id = created["chat_id"].as_i64().expect("chat created");
    // Alice's socket on `a` is one of the chat's too: `a` delivers to it (her session keeps
    // her own message to itself: she already has its `message_accepted`).
    let mut alice = connect_at(a.address, 1).await;
    let mut bob = connect_at(b.address, 2).await;

    let ack = alice
        .send_message(json!({"chat_id": chat_id, "content": "followed"}))
        .await;
    assert_eq!(
        bob.expect("new_message").await["message_id"],
        ack["message_id"]
    );

    // The command carried the sending span's context.
    let sent = command_of(&nats_and_database, "followed").await;
    assert!(
        sent.headers.get("traceparent").is_some(),
        "the command carries a traceparent: {:?}",
        sent.headers
    );
    // A REST command is followed the same way: Alice edits it through `b`.
    let edited = nats_and_database
        .http
        .patch(format!(
            "http://{}/chats/{chat_id}/messages/{}",
            b.address, ack["message_id"]
        ))
        .bearer_auth(token(1))
        .json(&json!({"content": "followed, edited"}))
        .send()
        .await
        .unwrap();
    assert_eq!(edited.status(), 200);
    assert_eq!(
        bob.expect("message_edited").await["content"],
        "followed, edited"
    );

    // Django's commands continue Django's trace; a traceparent that is none is ignored and
    // the command applied all the same.
    let django_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let django_span = "00f067aa0ba902b7";
    let huge = "f".repeat(8 * 1024);
    let traceparents = [
        format!("00-{django_trace}-{django_span}-01"),
        "garbage".to_owned(),
        format!("00-{}-{}-01", "0".repeat(32), "0".repeat(16)),
        format!("ff-{django_trace}-{django_span}-01"),
        format!("00-{django_trace}-{django_span}-01-{huge}"),
        huge.clone(),
    ];
    let js = async_nats::jetstream::new(nats_and_database.nats().await);
    for (i, traceparent) in traceparents.iter().enumerate() {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("traceparent", traceparent.as_str());
        headers.insert("Nats-Msg-Id", format!("msg:1:django-{i}").as_str());
        let command = json!({"sender_id": 1, "content": format!("django {i}"), "client_msg_id": format!("django-{i}")});
        js.publish_with_headers(
            format!("chat.in.{chat_id}.message"),
            headers,
            command.to_string().into(),
        )
        .await
        .unwrap()
        .await
        .expect("JetStream stores the command");
        let new = bob.expect("new_message").await;
        assert_eq!(
            new["content"],
            format!("django {i}"),
            "applied whatever its traceparent"
        );
    }

    // The graceful shutdown flushes what the batch processors still hold.
    assert!(a.terminate().await.success());
    assert!(b.terminate().await.success());

    let send = followed(&collector, "send_message").await;
    let edit = followed(&collector, "edit_message").await;
    assert_ne!(send.trace_id, edit.trace_id, "a trace per command");
    let django: Vec<Span> = eventually("the spans of Django's trace", || async {
        let trace: Vec<Span> = collector
            .spans()
            .into_iter()
            .filter(|s| s.trace_id == django_trace)
            .collect();
        match trace.iter().filter(|s| s.name == "deliver").count() {
            2.. => Ok(trace),
            _ => Err(format!("the trace so far: {trace:?}")),
        }
    })
    .await;
    let persists: Vec<&Span> = django.iter().filter(|s| s.name == "persist").collect();
    assert_eq!(persists.len(), 1, "{django:#?}");
    assert_eq!(persists[0].parent_span_id, django_span, "{django:#?}");
    for deliver in django.iter().filter(|s| s.name == "deliver") {
        assert_eq!(deliver.parent_span_id, persists[0].span_id, "{django:#?}");
    }
    assert!(collector.spans().iter().all(|s| s.service == "jetchat"));
}

/// Waits for the trace that starts with a `root` span and checks its shape: the root, one
/// `persist` span its child, and a `deliver` span the persist span's child from each of the
/// two instances, the root's among them. Returns the root.
async fn followed(collector: &Collector, root: &str) -> Span {
    let spans = eventually(&format!("the spans of {root}'s trace"), || async {
        let spans = collector.spans();
        let Some(first) = spans.iter().find(|s| s.name == root) else {
            return Err(format!("no {root} span yet: {spans:?}"));
        };
        let trace: Vec<Span> = spans
            .iter()
            .filter(|s| s.trace_id == first.trace_id)
            .cloned()
            .collect();
        match trace.iter().filter(|s| s.name == "deliver").count() {
            2.. => Ok(trace),
            _ => Err(format!("the trace so far: {trace:?}")),
        }
    })
    .await;
    let named = |name: &str| -> Vec<&Span> { spans.iter().filter(|s| s.name == name).collect() };
    let (roots, persists, delivers) = (named(root), named("persist"), named("deliver"));
    assert_eq!(roots.len(), 1, "one {root} span in the trace: {spans:#?}");
    assert_eq!(
        persists.len(),
        1,
        "one persist span in the trace: {spans:#?}"
    );
    assert_eq!(delivers.len(), 2, "a deliver span per instance: {spans:#?}");
    let (first, persist) = (roots[0], persists[0]);
    assert_eq!(
        first.parent_span_id, "",
        "{root} starts the trace: {spans:#?}"
    );
    assert_eq!(persist.parent_span_id, first.span_id, "{spans:#?}");
    for deliver in &delivers {
        assert_eq!(deliver.parent_span_id, persist.span_id, "{spans:#?}");
    }
    let instances: HashSet<&str> = delivers.iter().map(|s| s.instance.as_str()).collect();
    assert_eq!(
        instances.len(),
        2,
        "delivered on both instances: {spans:#?}"
    );
    assert!(instances.contains(first.instance.as_str()), "{spans:#?}");
    first.clone()
}

#[tokio::test]
async fn a_collector_that_is_away_costs_no_message_and_no_shutdown() {
    let mut nats_and_database = spawn_app().await;
    nats_and_database.stop().await;
    // A port nothing listens on: every export fails (and is logged).
    let closed = crate::helpers::free_address();
    let endpoint = format!("http://{closed}");
    let mut a = nats_and_database
        .spawn_process_with(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "10"),
        ])
        .await;
    let mut alice = connect_at(a.address, 1).await;
    let mut bob = connect_at(a.address, 2).await;
    for i in 0..3 {
        let ack = alice
            .send_message(json!({"receiver_id": 2, "content": format!("untold {i}")}))
            .await;
        assert_eq!(
            bob.expect("new_message").await["message_id"],
            ack["message_id"]
        );
    }
    assert!(
        a.terminate().await.success(),
        "the last flush fails and the process ends"
    );
}

#[tokio::test]
async fn without_an_otlp_endpoint_no_trace_context_is_written() {
    let app = spawn_app().await;
    let mut events = app.nats().await.subscribe("chat.events.>").await.unwrap();
    let mut alice = app.connect(1).await;
    alice
        .send_message(json!({"receiver_id": 2, "content": "untraced"}))
        .await;
    let command = command_of(&app, "untraced").await;
    assert!(
        command.headers.get("traceparent").is_none(),
        "{:?}",
        command.headers
    );
    let created = loop {
        let event = tokio::time::timeout(
            crate::helpers::FRAME_TIMEOUT,
            futures_util::StreamExt::next(&mut events),
        )
        .await
        .expect("an event in time")
        .expect("subscription open");
        if event.subject.ends_with(".message_created") {
            break event;
        }
    };
    let traceparent = created.headers.as_ref().and_then(|h| h.get("traceparent"));
    assert!(traceparent.is_none(), "{:?}", created.headers);
}

/// The `CHAT_IN` command of the message with `content`.
async fn command_of(app: &TestApp, content: &str) -> async_nats::jetstream::message::StreamMessage {
    let needle = format!("\"content\":\"{content}\"");
    stream_messages(app, "CHAT_IN")
        .await
        .into_iter()
        .find(|m| String::from_utf8_lossy(&m.payload).contains(&needle))
        .expect("the message's command is in CHAT_IN")
}
