//! The persister's batch writes against a real database (SQLite, or the `TEST_DATABASE_URL`
//! server): large batches cross the chunk sizes of its multi-row statements, and what one
//! batch defers (watermarks) is written correctly whatever else the batch does.

use jetchat::{
    bus::messages::{Command, Event},
    domain::ReceiptStatus,
    persister::{
        self,
        batch::{Incoming, Rules},
    },
    store::{self, chat_member, message},
};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::helpers::{fresh_database_url, history_field, persister_consumer, publish_command};

/// A migrated database of its own, with its directory.
async fn database() -> (DatabaseConnection, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(dir.path()).await;
    let db = store::connect(&url).await.expect("database connects");
    store::migrate(&db).await.expect("migrations apply");
    (db, dir)
}

/// Commands as they would come off `CHAT_IN`, numbered from `first_seq`.
fn commands(first_seq: u64, payloads: impl IntoIterator<Item = Value>) -> Vec<Incoming> {
    payloads
        .into_iter()
        .zip(first_seq..)
        .map(|(payload, seq)| Incoming {
            seq,
            published: chrono::Utc::now(),
            command: serde_json::from_value::<Command>(payload).expect("a valid command"),
        })
        .collect()
}

/// Applies one batch in one transaction, as the persister does.
async fn apply(db: &DatabaseConnection, batch: &[Incoming]) -> Vec<Event> {
    persister::write(db, batch, &Rules::default())
        .await
        .expect("the batch commits")
        .applied
        .events
}

fn group(command_id: &str, creator: i64, members: impl IntoIterator<Item = i64>) -> Value {
    json!({"type": "create_chat", "command_id": command_id, "creator_id": creator,
           "is_group": true, "member_ids": members.into_iter().collect::<Vec<_>>()})
}

fn send(sender: i64, chat_id: i64, client_msg_id: &str) -> Value {
    json!({"type": "send_message", "sender_id": sender, "chat_id": chat_id,
           "content": format!("from {sender}"), "content_type": "text",
           "client_msg_id": client_msg_id})
}

fn receipt(user: i64, chat_id: i64, message_id: i64, status: &str) -> Value {
    json!({"type": "receipt", "user_id": user, "chat_id": chat_id,
           "message_id": message_id, "status": status})
}

fn created_chat(events: &[Event]) -> i64 {
    events
        .iter()
        .find_map(|e| match e {
            Event::ChatCreated(c) => Some(c.chat.chat_id),
            _ => None,
        })
        .expect("a chat_created event")
}

/// `(sender_id, client_msg_id) → message_id` of the `message_created` events.
fn created_messages(events: &[Event]) -> std::collections::HashMap<(i64, String), i64> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::MessageCreated(m) => Some((
                (m.message.sender_id, m.message.client_msg_id.clone()),
                m.message.message_id,
            )),
            _ => None,
        })
        .collect()
}

async fn marks(db: &DatabaseConnection, chat_id: i64, user_id: i64) -> Option<(i64, i64)> {
    chat_member::Entity::find()
        .filter(chat_member::Column::ChatId.eq(chat_id))
        .filter(chat_member::Column::UserId.eq(user_id))
        .one(db)
        .await
        .unwrap()
        .map(|m| (m.last_delivered_message_id, m.last_read_message_id))
}

#[tokio::test]
async fn retries_in_a_large_batch_are_found_and_stored_once() {
    let (db, _dir) = database().await;
    let members = 2..=301;
    let chat_id = created_chat(&apply(&db, &commands(1, [group("g", 1, members.clone())])).await);

    // 300 senders, one message each: more keys than one duplicate lookup takes.
    let first: Vec<Value> = members
        .clone()
        .map(|s| send(s, chat_id, &format!("m-{s}")))
        .collect();
    let stored = created_messages(&apply(&db, &commands(10, first)).await);
    assert_eq!(stored.len(), 300);

    // The same 300 again (client retries, new stream sequences) and 300 new ones, mixed.
    let again: Vec<Value> = members
        .clone()
        .flat_map(|s| {
            [
                send(s, chat_id, &format!("m-{s}")),
                send(s, chat_id, &format!("n-{s}")),
            ]
        })
        .collect();
    let events = apply(&db, &commands(1000, again)).await;
    let announced = created_messages(&events);
    assert_eq!(
        announced.len(),
        600,
        "every command has its message_created"
    );
    for (key, id) in &stored {
        assert_eq!(
            announced[key], *id,
            "a retry is announced with the stored id"
        );
    }
    let rows = message::Entity::find()
        .filter(message::Column::ChatId.eq(chat_id))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 600, "each client_msg_id stored once");
}

#[tokio::test]
async fn a_batch_of_receipts_raises_each_watermark_once_and_never_lowers_it() {
    let (db, _dir) = database().await;
    // More members than one watermark statement takes.
    let readers: Vec<i64> = (2..=601).collect();
    let chat_id = created_chat(&apply(&db, &commands(1, [group("g", 1, readers.clone())])).await);
    let sent = created_messages(
        &apply(
            &db,
            &commands(10, (0..3).map(|i| send(1, chat_id, &format!("m{i}")))),
        )
        .await,
    );
    let id = |i: usize| sent[&(1, format!("m{i}"))];

    let mut batch = Vec::new();
    for &reader in &readers {
        batch.push(receipt(reader, chat_id, id(0), "delivered"));
        batch.push(receipt(reader, chat_id, id(2), "delivered"));
        batch.push(receipt(reader, chat_id, id(1), "read"));
        // An older mark after a newer one changes nothing.
        batch.push(receipt(reader, chat_id, id(0), "read"));
    }
    let events = apply(&db, &commands(100, batch)).await;

    let receipts: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Receipt(r) => Some((r.user_id, r.status, r.message_id)),
            _ => None,
        })
        .collect();
    assert_eq!(
        receipts.len(),
        600 * 2,
        "one event per member, status and author whose watermark moved: the highest mark"
    );
    for &reader in &readers {
        let of_reader: Vec<_> = receipts.iter().filter(|r| r.0 == reader).collect();
        assert_eq!(
            of_reader,
            [
                &(reader, ReceiptStatus::Delivered, id(2)),
                &(reader, ReceiptStatus::Read, id(1))
            ],
            "member {reader}"
        );
    }
    for &reader in &readers {
        assert_eq!(
            marks(&db, chat_id, reader).await,
            Some((id(2), id(1))),
            "member {reader}"
        );
    }

    // User 3 reads, leaves and comes back within one batch: re-added, its watermarks start at
    // the chat's newest message, as for any new member.
    let leave_and_return = [
        receipt(3, chat_id, id(2), "read"),
        json!({"type": "remove_members", "command_id": "r", "chat_id": chat_id, "user_ids": [3]}),
        json!({"type": "add_members", "command_id": "a", "chat_id": chat_id, "user_ids": [3]}),
    ];
    apply(&db, &commands(4000, leave_and_return)).await;
    assert_eq!(marks(&db, chat_id, 3).await, Some((id(2), id(2))));

    // A later batch with lower marks leaves every watermark where it was.
    let lower: Vec<Value> = readers[1..]
        .iter()
        .map(|&r| receipt(r, chat_id, id(0), "read"))
        .collect();
    let events = apply(&db, &commands(5000, lower)).await;
    assert!(
        !events.iter().any(|e| matches!(e, Event::Receipt(_))),
        "nothing moved, nothing announced"
    );
    assert_eq!(marks(&db, chat_id, 4).await, Some((id(2), id(1))));
}

#[tokio::test]
async fn gathered_delivered_marks_move_each_watermark_and_skip_what_no_longer_applies() {
    let (db, _dir) = database().await;
    let chat_id = created_chat(&apply(&db, &commands(1, [group("g", 1, 2..=5)])).await);
    let other_chat = created_chat(&apply(&db, &commands(2, [group("h", 6, [7])])).await);
    let sent = created_messages(
        &apply(
            &db,
            &commands(
                10,
                [
                    send(1, chat_id, "a"),
                    send(2, chat_id, "b"),
                    send(6, other_chat, "c"),
                ],
            ),
        )
        .await,
    );
    let (a, b, c) = (
        sent[&(1, "a".into())],
        sent[&(2, "b".into())],
        sent[&(6, "c".into())],
    );
    let mark = |chat_id: i64, user_id: i64, message_id: i64| json!({"chat_id": chat_id, "user_id": user_id, "message_id": message_id});
    let gathered = json!({"type": "delivered_marks", "command_id": "dm-1", "marks": [
        mark(chat_id, 3, b),       // applies: member 3 got b (by user 2)
        mark(chat_id, 4, a),       // applies
        mark(chat_id, 2, b),       // own message: skipped
        mark(chat_id, 9, b),       // not a member: skipped
        mark(chat_id, 5, c),       // a message of another chat: skipped
        mark(chat_id, 5, 999_999), // no such message: skipped
        mark(other_chat, 7, c),    // applies, another chat in the same command
    ]});
    let events = apply(&db, &commands(20, [gathered, send(1, chat_id, "after")])).await;

    let mut receipts: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Receipt(r) => Some((r.chat_id, r.user_id, r.message_id, r.sender_id)),
            _ => None,
        })
        .collect();
    receipts.sort_unstable();
    let mut expected = vec![
        (chat_id, 3, b, 2),
        (chat_id, 4, a, 1),
        (other_chat, 7, c, 6),
    ];
    expected.sort_unstable();
    assert_eq!(receipts, expected);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::CommandRejected(_))),
        "a mark that no longer applies is skipped, not refused: {events:?}"
    );
    assert_eq!(created_messages(&events).len(), 1, "the batch went on");
    assert_eq!(marks(&db, chat_id, 3).await, Some((b, 0)));
    assert_eq!(marks(&db, chat_id, 4).await, Some((a, 0)));
    assert_eq!(marks(&db, other_chat, 7).await, Some((c, 0)));

    // More marks than a command may carry, or a malformed one: the command is refused whole.
    let too_many: Vec<Value> = (0..1001).map(|_| mark(chat_id, 3, b)).collect();
    let refused = [
        json!({"type": "delivered_marks", "command_id": "dm-2", "marks": too_many}),
        json!({"type": "delivered_marks", "command_id": "dm-3", "marks": [mark(chat_id, -1, b)]}),
    ];
    let events = apply(&db, &commands(30, refused)).await;
    let codes: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::CommandRejected(r) => Some(r.code.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(codes, ["invalid_field", "invalid_field"]);
}

#[tokio::test]
async fn a_late_retry_of_a_stored_message_is_acked_even_after_its_sender_left() {
    let (db, _dir) = database().await;
    let chat_id = created_chat(&apply(&db, &commands(1, [group("g", 1, [2, 3])])).await);
    let first = created_messages(&apply(&db, &commands(10, [send(2, chat_id, "late")])).await);
    let stored_id = first[&(2, "late".to_owned())];
    let removed = json!({"type": "remove_members", "command_id": "r", "chat_id": chat_id,
                         "user_ids": [2]});
    apply(&db, &commands(11, [removed])).await;

    // The same send again, past JetStream's dedupe window (a new stream sequence), beside a
    // new send of the removed member that must be refused.
    let events = apply(
        &db,
        &commands(500, [send(2, chat_id, "late"), send(2, chat_id, "new")]),
    )
    .await;
    let again = created_messages(&events);
    assert_eq!(
        again.get(&(2, "late".to_owned())),
        Some(&stored_id),
        "{events:?}"
    );
    assert!(!again.contains_key(&(2, "new".to_owned())));
    let refused: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::CommandRejected(r) => Some((r.command_id.as_str(), r.code.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(refused, [("new", "forbidden")]);
    let rows = message::Entity::find()
        .filter(message::Column::SenderId.eq(2))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "stored once, the refused one not at all");
}

#[tokio::test]
async fn a_lingering_persister_writes_a_trickle_of_commands_once_in_order() {
    // Batches of at most 8 that wait up to 50 ms for more: bursts fill batches, pauses end them.
    let app =
        crate::helpers::spawn_app_with(&[("PERSIST_BATCH", "8"), ("PERSIST_LINGER", "50ms")]).await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    let subject = format!("chat.in.{chat_id}.message");
    for i in 0..30 {
        publish_command(&app, &subject, send(1, chat_id, &format!("trickle-{i}"))).await;
        if i % 7 == 6 {
            tokio::time::sleep(std::time::Duration::from_millis(80)).await;
        }
    }
    let ids = history_field(&app, 2, chat_id, 30, "client_msg_id").await;
    let expected: Vec<String> = (0..30).map(|i| format!("trickle-{i}")).collect();
    assert_eq!(ids, expected, "every command once, in stream order");
}

#[tokio::test]
async fn shutting_down_writes_the_batch_a_long_linger_holds() {
    let mut app = crate::helpers::spawn_app().await;
    let chat_id = app.create_chat(1, true, &[2]).await;
    app.stop().await;
    // An hour's linger: only the shutdown can end this batch, and it must be written, not lost.
    app.start_again_with(&[("PERSIST_LINGER", "1h")]).await;
    let subject = format!("chat.in.{chat_id}.message");
    for i in 0..3 {
        publish_command(&app, &subject, send(1, chat_id, &format!("held-{i}"))).await;
    }
    // Stop only once the persister holds all three (delivered to it, not yet acked).
    let js = async_nats::jetstream::new(app.nats().await);
    crate::helpers::eventually("the persister holds the commands", || async {
        let pending = persister_consumer(&js).await?.num_ack_pending;
        if pending == 3 {
            Ok(())
        } else {
            Err(format!("{pending} in hand"))
        }
    })
    .await;
    app.stop().await;
    let db = store::connect(&app.database_url).await.unwrap();
    let stored: Vec<String> = message::Entity::find()
        .filter(message::Column::ChatId.eq(chat_id))
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.client_msg_id)
        .collect();
    assert_eq!(
        stored,
        ["held-0", "held-1", "held-2"],
        "written at shutdown"
    );
}
