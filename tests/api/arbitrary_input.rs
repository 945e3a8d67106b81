//! Property: whatever arrives — WebSocket frames, REST bodies and uploads, commands injected
//! on NATS (`register_upload` among them), with
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

use crate::helpers::{TestApp, WsClient, pipeline_drained, spawn_app, stream_messages, token};

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
    /// `POST /upload` by user 1: a multipart body with one part named `field`, or (without
    /// `field`) `bytes` as the whole body.
    Upload {
        field: Option<String>,
        filename: String,
        bytes: Vec<u8>,
    },
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

/// The end of a mute: to come, past, forever, huge, garbage.
fn odd_time() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(json!("2099-01-01T00:00:00Z")),
        Just(json!("2001-01-01T00:00:00Z")),
        Just(json!("9999-12-31T23:59:59Z")),
        Just(json!("+10000-01-01T00:00:00Z")),
        Just(json!("+262143-12-31T23:59:59Z")),
        Just(json!("-0001-01-01T00:00:00Z")),
        Just(json!("2099-01-01T00:00:00\u{0}Z")),
        Just(json!("tomorrow")),
        Just(json!(4_102_444_800i64)),
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
                    "react",
                    "unreact",
                    "mute",
                    "unmute",
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
        ("until", odd_time()),
        ("emoji", odd_emoji()),
        ("reply_to_message_id", odd_id()),
        ("forwarded_from", odd_id()),
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
        prop::option::weighted(
            0.3,
            prop_oneof![3 => (1i64..200).prop_map(|n| json!(n)), 1 => odd_id()],
        ),
        prop::option::weighted(
            0.2,
            prop_oneof![3 => (1i64..200).prop_map(|n| json!(n)), 1 => odd_id()],
        ),
    )
        .prop_map(
            |(chat_id, content, client_msg_id, file_url, reply, forward)| {
                let mut frame = json!({"action": "send_message", "chat_id": chat_id,
                                   "content": content, "client_msg_id": client_msg_id});
                if let Some(url) = file_url {
                    frame["file_url"] = url;
                }
                if let Some(reply) = reply {
                    frame["reply_to_message_id"] = reply;
                }
                if let Some(forward) = forward {
                    frame["forwarded_from"] = forward;
                }
                Input::Frame(frame)
            },
        )
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

/// An emoji, or something that only looks like one: several clusters, control characters,
/// long combining runs.
fn odd_emoji() -> BoxedStrategy<Value> {
    prop_oneof![
        2 => one_of(&["👍", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "a", "👍👍", "", " ", "\u{0}", "👍\n"]),
        1 => "\u{301}{30,40}".prop_map(|s| json!(s)),
        1 => odd_text(),
    ]
    .boxed()
}

/// A `react` or `unreact` frame close to valid: a real or odd message id and emoji.
fn react_frame(known: &[i64]) -> BoxedStrategy<Input> {
    (
        chat_id(known),
        prop_oneof![3 => (1i64..200).prop_map(|n| json!(n)), 1 => odd_id()],
        odd_emoji(),
        any::<bool>(),
        prop_oneof![3 => "[a-c]{1,2}".prop_map(|s| json!(s)), 1 => odd_text()],
    )
        .prop_map(|(chat_id, message_id, emoji, add, command_id)| {
            let action = if add { "react" } else { "unreact" };
            Input::Frame(json!({"action": action, "chat_id": chat_id,
                                "message_id": message_id, "emoji": emoji,
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
            "register",
            "message",
            "receipt",
            "add_members",
            "remove_members",
            "rename",
            "delete_message",
            "edit_message",
            "react",
            "unreact",
            "mute",
            "push_due",
            "nonsense",
        ]),
        any::<u8>(),
    )
        .prop_map(|(chat, kind, pick)| match pick % 9 {
            0 => "chat.in.chats.create".to_owned(),
            1 => "chat.in.direct.message".to_owned(),
            2 => "chat.in.uploads.register".to_owned(),
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
                              "react", "unreact", "mute_chat", "push_due", "delivered_marks",
                              "register_upload", "nope"])),
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
            ("muted_until", odd_time()),
            ("through_message_id", odd_id()),
            ("emoji", odd_emoji()),
            ("reply_to_message_id", odd_id()),
            ("forwarded_from", odd_id()),
            ("owner_id", odd_id()),
            ("sha256", odd_text()),
            ("size", odd_id()),
            ("kind", odd_text()),
            ("filename", odd_text()),
            ("storage_key", odd_text()),
        ])
        .prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..40),
    ];
    (subject, payload)
        .prop_map(|(subject, payload)| Input::Command { subject, payload })
        .boxed()
}

/// A `push_due` or `mute_chat` from NATS close to valid: a known chat, odd ids and times.
fn push_or_mute_command(known: &[i64]) -> BoxedStrategy<Input> {
    let known: Vec<i64> = known.to_vec();
    (
        prop::sample::select(known),
        prop_oneof![3 => (1i64..4).prop_map(|n| json!(n)), 1 => odd_id()],
        prop_oneof![2 => (1i64..200).prop_map(|n| json!(n)), 1 => odd_id()],
        odd_time(),
        any::<bool>(),
    )
        .prop_map(|(chat, user, through, until, push)| {
            let (kind, payload) = if push {
                (
                    "push_due",
                    json!({"type": "push_due", "chat_id": chat, "user_id": user,
                                    "through_message_id": through}),
                )
            } else {
                (
                    "mute",
                    json!({"type": "mute_chat", "command_id": "m", "chat_id": chat,
                                "user_id": user, "muted_until": until}),
                )
            };
            Input::Command {
                subject: format!("chat.in.{chat}.{kind}"),
                payload: payload.to_string().into_bytes(),
            }
        })
        .boxed()
}

/// A `register_upload` from NATS close to valid: every field there, the values odd (a real
/// file id or hash shape, or not; sizes and owners odd; kinds jetchat does not store).
fn register_upload_command() -> BoxedStrategy<Input> {
    let file_id = prop_oneof![
        3 => "[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
            .prop_map(|s| json!(s)),
        1 => odd_text(),
    ];
    let sha256 = prop_oneof![
        3 => "[0-9a-f]{64}".prop_map(|s| json!(s)),
        1 => "[0-9A-F]{64}".prop_map(|s| json!(s)),
        1 => odd_text(),
    ];
    let size = prop_oneof![3 => (1i64..100_000).prop_map(|n| json!(n)), 1 => odd_id()];
    let content_type = prop_oneof![
        3 => one_of(&["audio/ogg", "video/mp4", "image/png"]),
        1 => odd_text(),
    ];
    let kind = prop_oneof![3 => one_of(&["audio", "video", "image"]), 1 => odd_text()];
    (
        prop_oneof![3 => "[a-z0-9-]{1,20}".prop_map(|s| json!(s)), 1 => odd_text()],
        file_id,
        prop_oneof![3 => (1i64..4).prop_map(|n| json!(n)), 1 => odd_id()],
        sha256,
        size,
        content_type,
        kind,
        odd_text(),
        prop_oneof![2 => "[0-9a-f]{2}/[0-9a-f]{64}".prop_map(|s| json!(s)), 1 => odd_text()],
    )
        .prop_map(
            |(command_id, file_id, owner, sha256, size, content_type, kind, filename, key)| {
                Input::Command {
                    subject: "chat.in.uploads.register".to_owned(),
                    payload: json!({"type": "register_upload", "v": 1, "command_id": command_id,
                                    "file_id": file_id, "owner_id": owner, "sha256": sha256,
                                    "size": size, "content_type": content_type, "kind": kind,
                                    "filename": filename, "storage_key": key})
                    .to_string()
                    .into_bytes(),
                }
            },
        )
        .boxed()
}

/// A `POST /upload`: a real small file or bytes that only start like one, nothing, noise; a
/// file name with NUL, path parts, right-to-left marks; the wrong field or no multipart at all.
fn upload() -> BoxedStrategy<Input> {
    let ogg = crate::media::ogg_opus();
    let bytes = prop_oneof![
        3 => Just(ogg.clone()),
        2 => prop::collection::vec(any::<u8>(), 0..64).prop_map(move |tail| {
            let mut bytes = ogg.clone();
            bytes.extend(tail);
            bytes
        }),
        1 => Just(b"OggS".to_vec()),
        1 => Just(Vec::new()),
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ];
    let filename = prop_oneof![
        2 => "[a-z]{1,8}\\.(ogg|opus|mp4|txt)",
        1 => Just("../../etc/passwd".to_owned()),
        1 => Just("a\u{0}b.ogg".to_owned()),
        1 => Just("\u{202e}ggo.exe".to_owned()),
        1 => Just("x".repeat(1_000)),
        1 => "\\PC{0,30}",
    ];
    let field = prop_oneof![
        6 => Just(Some("file".to_owned())),
        1 => Just(Some("files".to_owned())),
        1 => Just(None),
    ];
    (field, filename, bytes)
        .prop_map(|(field, filename, bytes)| Input::Upload {
            field,
            filename,
            bytes,
        })
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

/// A `delivered_marks` from NATS close to valid: marks of known chats with odd ids, odd
/// command ids, the same mark repeated, more marks than a command may carry.
fn delivered_marks_command(known: &[i64]) -> BoxedStrategy<Input> {
    let mark = (
        chat_id(known),
        prop_oneof![3 => (1i64..4).prop_map(|n| json!(n)), 1 => odd_id()],
        prop_oneof![2 => (1i64..200).prop_map(|n| json!(n)), 1 => odd_id()],
    )
        .prop_map(|(chat, user, message)| {
            json!({"chat_id": chat, "user_id": user,
                                                 "message_id": message})
        });
    let marks = prop_oneof![
        4 => prop::collection::vec(mark.clone(), 0..6).prop_map(Value::Array),
        1 => mark.prop_map(|m| Value::Array(vec![m; 1_001])),
        1 => odd_text(),
    ];
    (
        prop_oneof![3 => "[a-z0-9-]{1,20}".prop_map(|s| json!(s)), 1 => odd_text()],
        marks,
    )
        .prop_map(|(command_id, marks)| Input::Command {
            subject: "chat.in.receipts.delivered".to_owned(),
            payload: json!({"type": "delivered_marks", "command_id": command_id, "marks": marks})
                .to_string()
                .into_bytes(),
        })
        .boxed()
}

fn inputs(known: Vec<i64>) -> BoxedStrategy<Vec<Input>> {
    prop::collection::vec(
        prop_oneof![
            2 => frame(&known),
            3 => send_frame(&known),
            2 => edit_frame(&known),
            2 => react_frame(&known),
            2 => command(&known),
            2 => send_command(&known),
            1 => push_or_mute_command(&known),
            1 => delivered_marks_command(&known),
            1 => create_chat(),
            1 => register_upload_command(),
            1 => upload(),
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
        Input::Upload {
            field,
            filename,
            bytes,
        } => {
            let request = app.http.post(app.url("/upload")).bearer_auth(token(1));
            let request = match field {
                Some(field) => {
                    let part = reqwest::multipart::Part::bytes(bytes.clone())
                        .file_name(filename.clone())
                        .mime_str("application/octet-stream")
                        .unwrap();
                    request.multipart(reqwest::multipart::Form::new().part(field.clone(), part))
                }
                None => request.body(bytes.clone()),
            };
            let response = request.send().await.expect("request sent");
            let status = response.status();
            let body: Value = response.json().await.expect("a JSON answer");
            match status.as_u16() {
                200 | 201 => assert!(body["file_id"].is_string(), "{body}"),
                // Refused with a reason: malformed, too large, not a media file, too many.
                400 | 413 | 415 | 422 | 429 => assert!(body["detail"].is_string(), "{body}"),
                _ => panic!("POST /upload {filename:?} answered {status}: {body}"),
            }
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

/// What a user might type into a search box: odd texts, FTS5 and tsquery syntax in pieces,
/// NUL, 10 KB.
fn search_text() -> BoxedStrategy<String> {
    let syntax = vec![
        "NEAR", "NEAR(", "AND", "OR", "NOT", "\"", "\"\"", "*", "-", ":", "(", ")", "^", "+",
        "content:", "rowid:", "{", "}", "'", "\\", "%", "_", "&", "|", "!", "<->", "\u{0}",
        "needle", "x",
    ];
    prop_oneof![
        odd_text().prop_map(|v| v
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string())),
        prop::collection::vec(prop::sample::select(syntax), 0..12).prop_map(|v| v.join(" ")),
        prop::collection::vec(
            prop::sample::select(vec!["needle", "\"", "*", "(", ")", ":"]),
            1..6
        )
        .prop_map(|v| v.concat()),
        Just("q".repeat(10_240)),
        "\\PC{0,30}",
    ]
    .boxed()
}

/// A query parameter's text: numbers odd and not numbers at all.
fn search_number() -> BoxedStrategy<Option<String>> {
    prop::option::of(prop_oneof![
        odd_id().prop_map(|v| v.to_string().trim_matches('"').to_owned()),
        (0u64..60).prop_map(|n| n.to_string()),
        "\\PC{0,8}",
    ])
    .boxed()
}

#[tokio::test]
async fn arbitrary_search_queries_answer_200_or_a_4xx_never_500_and_snippets_stay_safe() {
    let app = spawn_app().await;
    let group = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let stored = alice
        .send_message(json!({"chat_id": group, "content": "a <needle> in \"the\" (hay*stack)"}))
        .await;
    let strategy = (
        search_text(),
        search_number(),
        search_number(),
        search_number(),
    );
    let mut runner = TestRunner::default();

    for case in 0..CASES * 3 {
        let (q, chat_id, before, limit) = strategy.new_tree(&mut runner).expect("a case").current();
        let mut params = vec![("q", q.clone())];
        params.extend(chat_id.map(|v| ("chat_id", v)));
        params.extend(before.map(|v| ("before", v)));
        params.extend(limit.map(|v| ("limit", v)));
        let shown: String = format!("{params:?}").chars().take(300).collect();
        eprintln!("case {case}: {shown}");
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = crate::search::search(&app, 1, &params).await;
        let status = response.status();
        let body: Value = response.json().await.expect("a JSON answer");
        match status.as_u16() {
            200 => {
                for hit in body.as_array().expect("hits") {
                    let snippet = hit["snippet"].as_str().expect("a snippet");
                    let bare = snippet.replace("<mark>", "").replace("</mark>", "");
                    assert!(
                        !bare.contains(['<', '>', '"']),
                        "{shown}: unescaped snippet {snippet:?}"
                    );
                    assert_eq!(hit["message_id"], stored["message_id"]);
                }
            }
            403 | 422 => assert!(body["detail"].is_string(), "{shown}: {body}"),
            _ => panic!("{shown} answered {status}: {body}"),
        }
    }

    let found = crate::search::search(&app, 2, &[("q", "NEEDLE hay")]).await;
    let found: Value = found.json().await.unwrap();
    assert_eq!(found[0]["message_id"], stored["message_id"], "{found}");
    assert_eq!(
        found[0]["snippet"],
        "a &lt;<mark>needle</mark>&gt; in &quot;the&quot; (<mark>hay</mark>*stack)"
    );
}
