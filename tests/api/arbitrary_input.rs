//! Property: whatever arrives — WebSocket frames, REST bodies, commands injected on NATS, with
//! odd ids (0, negative, `i64::MAX`), empty and huge strings, NUL and other control
//! characters, fields repeated, missing or of the wrong type — the pipeline keeps flowing, no
//! valid command is dead-lettered as something the database refused, and every message the
//! server accepted is answered and stored once.
//!
//! The inputs come from proptest strategies; a failure prints the case that broke it.

use std::collections::{HashMap, HashSet};

use proptest::{
    prelude::*,
    strategy::{Strategy, ValueTree},
    test_runner::TestRunner,
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Map, Value, json};

use crate::helpers::{TestApp, WsClient, pipeline_drained, spawn_app, stream_messages};

/// Cases per run, inputs per case: about 150 inputs in all.
const CASES: usize = 40;
const MAX_INPUTS: usize = 6;

/// One input through one entry point.
#[derive(Clone, Debug)]
enum Input {
    /// A text frame on user 1's socket.
    Frame(Value),
    /// A command published to `CHAT_IN` on `subject` (the payload may be no JSON at all).
    Command { subject: String, payload: Vec<u8> },
    /// `POST /chats/` by user 1 with this body.
    CreateChat(String),
}

fn odd_id() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(json!(0)),
        Just(json!(-1)),
        Just(json!(1)),
        Just(json!(2)),
        Just(json!(3)),
        Just(json!(i64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(u64::MAX)),
        (1i64..40).prop_map(|n| json!(n)),
        Just(json!("7")),
        Just(json!(1.5)),
        Just(Value::Null),
    ]
    .boxed()
}

fn odd_text() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(json!("")),
        Just(json!("hi")),
        Just(json!("a\u{0}b")),
        Just(json!("\u{0}")),
        Just(json!("\u{1}\u{7}\u{1b}[31m\u{7f}\r\n")),
        Just(json!("é".repeat(70))),
        Just(json!("x".repeat(10_001))),
        Just(json!("\u{202e}rtl\u{feff}")),
        "\\PC{0,30}".prop_map(|s| json!(s)),
        Just(json!(5)),
        Just(json!(["x"])),
        Just(Value::Null),
    ]
    .boxed()
}

fn odd_url() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(json!("javascript:alert(1)")),
        Just(json!("/media/0192f000-0000-7000-8000-000000000000")),
        Just(json!("media/x.ogg")),
        Just(json!("https://cdn.example.com/a.ogg")),
        Just(json!("//evil.example.com/x")),
        odd_text(),
    ]
    .boxed()
}

fn ids() -> BoxedStrategy<Value> {
    prop::collection::vec(odd_id(), 0..5)
        .prop_map(Value::Array)
        .boxed()
}

/// An object with each of `fields` present or not.
fn object(fields: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
    let parts: Vec<BoxedStrategy<Option<(&'static str, Value)>>> = fields
        .into_iter()
        .map(|(name, values)| {
            prop::option::weighted(0.7, values.prop_map(move |v| (name, v))).boxed()
        })
        .collect();
    parts
        .prop_map(|parts| {
            Value::Object(
                parts
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect::<Map<_, _>>(),
            )
        })
        .boxed()
}

fn one_of(values: &[&'static str]) -> BoxedStrategy<Value> {
    let values: Vec<Value> = values.iter().map(|v| json!(v)).collect();
    prop::sample::select(values).boxed()
}

fn chat_id(known: &[i64]) -> BoxedStrategy<Value> {
    let known: Vec<Value> = known.iter().map(|id| json!(id)).collect();
    prop_oneof![prop::sample::select(known), odd_id()].boxed()
}

fn frame(known: &[i64]) -> BoxedStrategy<Input> {
    object(vec![
        (
            "action",
            prop_oneof![
                one_of(&[
                    "send_message",
                    "acknowledge",
                    "read",
                    "delivered",
                    "ping",
                    "edit_message",
                    "delete_message",
                    "dance"
                ]),
                Just(json!(5)),
            ]
            .boxed(),
        ),
        ("chat_id", chat_id(known)),
        ("receiver_id", odd_id()),
        ("content", odd_text()),
        (
            "content_type",
            prop_oneof![one_of(&["text", "audio", "video", "gif"]), odd_text()].boxed(),
        ),
        ("file_url", odd_url()),
        ("file_id", odd_text()),
        ("client_msg_id", odd_text()),
        ("message_id", odd_id()),
        ("command_id", odd_text()),
    ])
    .prop_map(Input::Frame)
    .boxed()
}

/// A send close to valid: every field there, the values odd.
fn send_frame(known: &[i64]) -> BoxedStrategy<Input> {
    (
        chat_id(known),
        odd_text(),
        prop_oneof![3 => "[a-z0-9-]{1,20}".prop_map(|s| json!(s)), 1 => odd_text()],
        prop::option::of(odd_url()),
    )
        .prop_map(|(chat_id, content, client_msg_id, file_url)| {
            let mut frame = json!({"action": "send_message", "chat_id": chat_id,
                                   "content": content, "client_msg_id": client_msg_id});
            if let Some(url) = file_url {
                frame["file_url"] = url;
            }
            Input::Frame(frame)
        })
        .boxed()
}

/// An edit close to valid: a real or odd message id, odd text, a repeated or odd command id.
fn edit_frame(known: &[i64]) -> BoxedStrategy<Input> {
    (
        chat_id(known),
        prop_oneof![3 => (1i64..200).prop_map(|n| json!(n)), 1 => odd_id()],
        odd_text(),
        prop_oneof![3 => "[a-c]{1,2}".prop_map(|s| json!(s)), 1 => odd_text()],
    )
        .prop_map(|(chat_id, message_id, content, command_id)| {
            Input::Frame(json!({"action": "edit_message", "chat_id": chat_id,
                                "message_id": message_id, "content": content,
                                "command_id": command_id}))
        })
        .boxed()
}

/// A message command from Django close to valid.
fn send_command(known: &[i64]) -> BoxedStrategy<Input> {
    let known: Vec<i64> = known.to_vec();
    (
        prop::sample::select(known),
        prop_oneof![3 => (1i64..4).prop_map(|n| json!(n)), 1 => odd_id()],
        odd_text(),
        prop_oneof![3 => "[a-z0-9-]{1,20}".prop_map(|s| json!(s)), 1 => odd_text()],
    )
        .prop_map(|(chat, sender, content, client_msg_id)| Input::Command {
            subject: format!("chat.in.{chat}.message"),
            payload: json!({"type": "send_message", "v": 1, "sender_id": sender,
                            "chat_id": chat, "content": content, "content_type": "text",
                            "client_msg_id": client_msg_id})
            .to_string()
            .into_bytes(),
        })
        .boxed()
}

fn command(known: &[i64]) -> BoxedStrategy<Input> {
    let subject = (
        chat_id(known),
        one_of(&[
            "message",
            "receipt",
            "add_members",
            "remove_members",
            "rename",
            "delete_message",
            "edit_message",
            "nonsense",
        ]),
        any::<u8>(),
    )
        .prop_map(|(chat, kind, pick)| match pick % 8 {
            0 => "chat.in.chats.create".to_owned(),
            1 => "chat.in.direct.message".to_owned(),
            _ => format!(
                "chat.in.{}.{}",
                chat.to_string()
                    .trim_matches('"')
                    .replace(['.', ' ', '*', '>'], "_"),
                kind.as_str().unwrap()
            ),
        });
    let payload = prop_oneof![
        4 => object(vec![
            ("type", one_of(&["send_message", "receipt", "create_chat", "add_members",
                              "remove_members", "rename_chat", "delete_message", "edit_message",
                              "nope"])),
            ("v", prop_oneof![Just(json!(1)), odd_id()].boxed()),
            ("sender_id", odd_id()),
            ("user_id", odd_id()),
            ("creator_id", odd_id()),
            ("editor_id", odd_id()),
            ("deleter_id", odd_id()),
            ("chat_id", chat_id(known)),
            ("receiver_id", odd_id()),
            ("message_id", odd_id()),
            ("content", odd_text()),
            ("content_type", one_of(&["text", "audio", "gif"])),
            ("client_msg_id", odd_text()),
            ("command_id", odd_text()),
            ("name", odd_text()),
            ("is_group", prop_oneof![Just(json!(true)), Just(json!(false)), odd_id()].boxed()),
            ("member_ids", ids()),
            ("user_ids", ids()),
            ("status", one_of(&["read", "delivered", "seen"])),
            ("file_url", odd_url()),
            ("file_id", odd_text()),
        ])
        .prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..40),
    ];
    (subject, payload)
        .prop_map(|(subject, payload)| Input::Command { subject, payload })
        .boxed()
}

fn create_chat() -> BoxedStrategy<Input> {
    prop_oneof![
        4 => object(vec![
            ("name", odd_text()),
            ("is_group", prop_oneof![Just(json!(true)), Just(json!(false)), odd_id()].boxed()),
            ("member_ids", ids()),
        ])
        .prop_map(|v| v.to_string()),
        1 => ids().prop_map(|v| v.to_string()),
        1 => "\\PC{0,20}",
    ]
    .prop_map(Input::CreateChat)
    .boxed()
}

fn inputs(known: Vec<i64>) -> BoxedStrategy<Vec<Input>> {
    prop::collection::vec(
        prop_oneof![
            2 => frame(&known),
            3 => send_frame(&known),
            2 => edit_frame(&known),
            2 => command(&known),
            2 => send_command(&known),
            1 => create_chat(),
        ],
        1..=MAX_INPUTS,
    )
    .boxed()
}

/// What user 1's socket was told about its sends.
#[derive(Default)]
struct Told {
    accepted: HashSet<String>,
    /// `client_msg_id` → message id.
    acked: HashMap<String, i64>,
    refused: HashSet<String>,
}

impl Told {
    fn note(&mut self, frame: &Value) {
        let Some(id) = frame["client_msg_id"].as_str() else {
            return;
        };
        match frame["action"].as_str() {
            Some("message_accepted") => {
                self.accepted.insert(id.to_owned());
            }
            Some("message_ack") => {
                self.acked
                    .insert(id.to_owned(), frame["message_id"].as_i64().expect("an id"));
            }
            Some("error") => {
                self.refused.insert(id.to_owned());
            }
            _ => {}
        }
    }
}

async fn apply(
    app: &TestApp,
    socket: &mut WsClient,
    js: &async_nats::jetstream::Context,
    input: &Input,
) {
    match input {
        Input::Frame(frame) => socket.send(frame.clone()).await,
        Input::Command { subject, payload } => {
            js.publish(subject.clone(), payload.clone().into())
                .await
                .expect("published")
                .await
                .expect("JetStream stores every command subject");
        }
        Input::CreateChat(body) => {
            let status = app.post_raw(1, "/chats/", body).await.status();
            assert!(
                status.is_success() || status == 422 || status == 400 || status == 415,
                "POST /chats/ {body:?} answered {status}"
            );
        }
    }
}

/// Sends a message that must go through, noting every frame seen on the way.
async fn canary(socket: &mut WsClient, chat_id: i64, id: &str, told: &mut Told) {
    socket
        .send(json!({"action":"send_message","chat_id":chat_id,"content":id,"client_msg_id":id}))
        .await;
    loop {
        let frame = socket.next().await;
        told.note(&frame);
        if frame["client_msg_id"] == id {
            assert_ne!(frame["action"], "error", "the canary was refused: {frame}");
            if frame["action"] == "message_ack" {
                return;
            }
        }
    }
}

#[tokio::test]
async fn arbitrary_input_on_every_entry_never_stops_the_pipeline_and_loses_nothing() {
    let app = spawn_app().await;
    let group = app.create_chat(1, true, &[2, 3]).await;
    let private = app.create_chat(1, false, &[2]).await;
    let js = async_nats::jetstream::new(app.nats().await);
    let mut alice = app.connect(1).await;
    let mut told = Told::default();
    let strategy = inputs(vec![group, private]);
    let mut runner = TestRunner::default();

    for case in 0..CASES {
        let inputs = strategy.new_tree(&mut runner).expect("a case").current();
        for input in &inputs {
            // Shown with a failing test's output: the inputs that led to it.
            let shown: String = format!("{input:?}").chars().take(300).collect();
            eprintln!("case {case}: {shown}");
            apply(&app, &mut alice, &js, input).await;
        }
        // A private chat's members never change: its canary must always go through.
        canary(&mut alice, private, &format!("canary-{case}"), &mut told).await;
    }

    // Everything in CHAT_IN finished; every accepted send answered.
    pipeline_drained(&app).await;
    while let Ok(Some(Ok(frame))) = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        futures_util::StreamExt::next(&mut alice.stream),
    )
    .await
    {
        if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
            told.note(&serde_json::from_str(&text).unwrap());
        }
    }
    let unanswered: Vec<&String> = told
        .accepted
        .iter()
        .filter(|id| !told.acked.contains_key(*id) && !told.refused.contains(*id))
        .collect();
    assert!(
        unanswered.is_empty(),
        "accepted and never answered: {unanswered:?}"
    );

    // Every acked message is stored once, under its id.
    let db = app.database().await;
    let stored = jetchat::store::message::Entity::find()
        .filter(jetchat::store::message::Column::SenderId.eq(1))
        .all(&db)
        .await
        .unwrap();
    for (client_msg_id, message_id) in &told.acked {
        let rows: Vec<_> = stored
            .iter()
            .filter(|m| &m.client_msg_id == client_msg_id)
            .collect();
        assert_eq!(rows.len(), 1, "{client_msg_id:?} stored once");
        assert_eq!(
            rows[0].id, *message_id,
            "{client_msg_id:?} under its acked id"
        );
    }
    assert!(told.acked.len() >= CASES, "every canary acked");
    eprintln!(
        "{} sends accepted, {} acked (canaries included), {} refused",
        told.accepted.len(),
        told.acked.len(),
        told.refused.len()
    );

    // Nothing was refused by the database itself: the rules caught every bad field first.
    for letter in stream_messages(&app, "CHAT_DLQ").await {
        let code = letter
            .headers
            .get("Jetchat-Error-Code")
            .map(|v| v.to_string())
            .unwrap_or_default();
        assert_eq!(
            code,
            "invalid_command",
            "a dead letter other than an unreadable payload: {:?} {}",
            letter.subject,
            String::from_utf8_lossy(&letter.payload)
        );
    }
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "{}", health.text().await.unwrap());
}
