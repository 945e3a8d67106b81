//! Erasure (`erase_user` on `CHAT_IN`, Django's right-to-erasure): afterwards nothing of the
//! user is left but their messages' tombstones (every table is read), their blobs are gone
//! from the media directory unless another user's upload shares them, another member's
//! catch-up replays the erasure exactly, a group they owned passes on and one they were alone
//! in goes, a repeat changes nothing and is still answered `user_erased`, and the erased
//! user's still-valid token starts nothing. Blobs leave a bucket (`MEDIA_STORE=s3://…`) as they leave
//! the local disk.

use jetchat::store::{
    chat, chat_member, erased_user, message, message_reaction, message_revision, roles, upload,
    user_block, user_profile,
};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::helpers::{TestApp, next_events, pipeline_drained, publish_command, spawn_app};
use crate::media::{ftyp, upload_file};

const ANN: i64 = 1;
const BOB: i64 = 2;
const CID: i64 = 3;

/// Publishes a command as Django would and waits until the persister has applied it.
async fn apply(app: &TestApp, subject: &str, payload: Value) {
    publish_command(app, subject, payload).await;
    pipeline_drained(app).await;
}

/// A text message from `sender` in `chat_id` (or, with `receiver`, to that user); its id.
async fn send(app: &TestApp, sender: i64, target: Value, key: &str, extra: Value) -> i64 {
    let mut command = json!({
        "type": "send_message", "sender_id": sender, "content_type": "text",
        "content": format!("{key} from {sender}, secret"), "client_msg_id": key,
    });
    let object = command.as_object_mut().unwrap();
    object.extend(target.as_object().unwrap().clone());
    object.extend(extra.as_object().unwrap().clone());
    let chat = target["chat_id"].as_i64().unwrap_or(0);
    apply(app, &format!("chat.in.{chat}.message"), command).await;
    let db = app.database().await;
    message::Entity::find()
        .filter(message::Column::SenderId.eq(sender))
        .filter(message::Column::ClientMsgId.eq(key))
        .one(&db)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("message {key} stored"))
        .id
}

/// Django's `erase_user`, answered by `user_erased` (returned).
async fn erase(app: &TestApp, user: i64, command_id: &str) -> Value {
    let client = app.nats().await;
    let mut events = client
        .subscribe("chat.events.none.user_erased")
        .await
        .unwrap();
    client.flush().await.unwrap();
    publish_command(
        app,
        "chat.in.users.erase",
        json!({"type": "erase_user", "command_id": command_id, "user_id": user}),
    )
    .await;
    let (_, event) = next_events(&mut events, 1).await.remove(0);
    assert_eq!(event["type"], "user_erased", "{event}");
    assert_eq!(event["user_id"], user);
    assert_eq!(event["command_id"], command_id);
    pipeline_drained(app).await;
    event
}

/// `GET /sync` as `user` from `after` (0: from the start) to the end: the changes and the
/// last cursor.
async fn sync_from(app: &TestApp, user: i64, after: u64) -> (Vec<Value>, u64) {
    let mut changes = Vec::new();
    let mut query = if after == 0 {
        "since=0".to_owned()
    } else {
        format!("after={after}")
    };
    loop {
        let page = app.get_json(user, &format!("/sync?{query}")).await;
        changes.extend(page["changes"].as_array().unwrap().iter().cloned());
        let cursor = page["cursor"].as_u64().unwrap();
        if page["more"] == false {
            return (changes, cursor);
        }
        query = format!("after={cursor}");
    }
}

/// A change as `(action, chat, message or member)`.
fn change_of(change: &Value) -> (String, i64, i64) {
    let subject = change["message_id"]
        .as_i64()
        .or_else(|| change["user_id"].as_i64())
        .unwrap_or(0);
    (
        change["action"].as_str().unwrap().to_owned(),
        change["chat_id"].as_i64().unwrap(),
        subject,
    )
}

/// Rows in the change journal.
async fn journal_rows(db: &sea_orm::DatabaseConnection) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let count = Statement::from_string(db.get_database_backend(), "SELECT COUNT(*) FROM changes");
    db.query_one_raw(count)
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap()
}

/// The blobs in the media directory, by key.
fn blobs(app: &TestApp) -> Vec<String> {
    let mut out = Vec::new();
    let root = app.dir().join("media").join("blobs");
    for dir in std::fs::read_dir(root).into_iter().flatten().flatten() {
        for file in std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            out.push(file.file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn an_erased_user_leaves_nothing_but_tombstones() {
    let app = spawn_app().await;
    apply(
        &app,
        "chat.in.users.upsert",
        json!({"type": "upsert_user", "command_id": "ann-profile", "user_id": ANN, "display_name": "Ann"}),
    )
    .await;
    // Ann owns a group with Bob and Cid, and one she is alone in; she and Bob share a
    // private chat.
    let group = app.create_chat(ANN, true, &[BOB, CID]).await;
    let alone = app.create_chat(ANN, true, &[]).await;
    let hers = send(&app, ANN, json!({"chat_id": group}), "a1", json!({})).await;
    let bobs_reply = send(
        &app,
        BOB,
        json!({"chat_id": group}),
        "b1",
        json!({"reply_to_message_id": hers}),
    )
    .await;
    let private = send(&app, ANN, json!({"receiver_id": BOB}), "a2", json!({})).await;
    send(&app, ANN, json!({"chat_id": alone}), "a3", json!({})).await;
    // A file of hers alone, and one Bob uploaded too (one blob for both).
    let only_hers = upload_file(&app, ANN, "a.mp4", ftyp(b"isom")).await;
    let mut shared_bytes = ftyp(b"mp42");
    shared_bytes.extend_from_slice(b"shared");
    let shared = upload_file(&app, ANN, "s.mp4", shared_bytes.clone()).await;
    upload_file(&app, BOB, "s.mp4", shared_bytes).await;
    let with_file = send(
        &app,
        ANN,
        json!({"chat_id": group}),
        "a4",
        json!({"file_id": only_hers.file_id()}),
    )
    .await;
    let a5 = send(
        &app,
        ANN,
        json!({"chat_id": group}),
        "a5",
        json!({"file_id": shared.file_id()}),
    )
    .await;
    // She edits hers (a revision, an edit in the journal), reacts to Bob's; Bob to hers.
    apply(
        &app,
        &format!("chat.in.{group}.edit"),
        json!({"type": "edit_message", "command_id": "e1", "chat_id": group,
               "message_id": hers, "editor_id": ANN, "content": "edited secret"}),
    )
    .await;
    for (id, user, message_id) in [("r1", ANN, bobs_reply), ("r2", BOB, hers)] {
        apply(
            &app,
            &format!("chat.in.{group}.react"),
            json!({"type": "react", "command_id": id, "chat_id": group,
                   "message_id": message_id, "user_id": user, "emoji": "👍"}),
        )
        .await;
    }
    // She blocks Cid, Bob blocks her, and Bob blocks Cid (which stays).
    for (id, blocker, blocked) in [("k1", ANN, CID), ("k2", BOB, ANN), ("k3", BOB, CID)] {
        apply(
            &app,
            "chat.in.users.block",
            json!({"type": "set_block", "command_id": id, "user_id": blocker,
                   "blocked_id": blocked, "blocked": true}),
        )
        .await;
    }
    assert_eq!(blobs(&app).len(), 2);
    let (_, bobs_cursor) = sync_from(&app, BOB, 0).await;

    let erased = erase(&app, ANN, "erase-1").await;
    let db = app.database().await;

    // Her messages are tombstones: places, ids, times and keys kept, nothing she wrote.
    let theirs = message::Entity::find()
        .filter(message::Column::SenderId.eq(ANN))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(
        theirs.len(),
        4,
        "the group she was alone in went with its messages"
    );
    for m in &theirs {
        assert!(m.deleted_at.is_some(), "{m:?}");
        assert_eq!(m.content, "");
        assert_eq!(
            (&m.file_url, &m.file_id, &m.reply_quote_text),
            (&None, &None, &None),
            "{m:?}"
        );
    }
    assert_eq!(erased["messages_erased"], 5);
    assert_eq!(erased["chats_deleted"], json!([alone]));
    // Bob's reply keeps its place and its link, not her words.
    let reply = message::Entity::find_by_id(bobs_reply)
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.reply_to_message_id, Some(hers));
    assert_eq!(
        (reply.reply_quote_text, reply.reply_quote_sender_id),
        (None, None)
    );
    // Nothing else of hers, in any table.
    assert_eq!(
        chat_member::Entity::find()
            .filter(chat_member::Column::UserId.eq(ANN))
            .count(&db)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        message_reaction::Entity::find().count(&db).await.unwrap(),
        0,
        "hers went, and Bob's on her message with it"
    );
    assert_eq!(
        message_revision::Entity::find().count(&db).await.unwrap(),
        0
    );
    assert_eq!(
        upload::Entity::find()
            .filter(upload::Column::OwnerId.eq(ANN))
            .count(&db)
            .await
            .unwrap(),
        0
    );
    let blocks: Vec<(i64, i64)> = user_block::Entity::find()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|b| (b.blocker_id, b.blocked_id))
        .collect();
    assert_eq!(
        blocks,
        vec![(BOB, CID)],
        "hers and those of her went, both ways"
    );
    assert!(
        user_profile::Entity::find_by_id(ANN)
            .one(&db)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        erased_user::Entity::find_by_id(ANN)
            .one(&db)
            .await
            .unwrap()
            .is_some(),
        "the tombstone in the directory"
    );
    assert!(
        chat::Entity::find_by_id(alone)
            .one(&db)
            .await
            .unwrap()
            .is_none()
    );
    // The group passed to the longest-serving member.
    let group_roles = roles::of_chat(&db, group).await.unwrap();
    assert_eq!(group_roles.owner_id, Some(BOB));
    // Search forgets her; the journal keeps no text of hers (edits forgotten).
    let found = app.get_json(BOB, "/search?q=secret").await;
    let found: Vec<i64> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["message_id"].as_i64().unwrap())
        .collect();
    assert_eq!(found, [bobs_reply], "only Bob's own words are found");
    let db_text: Vec<String> = {
        use sea_orm::{ConnectionTrait, Statement};
        db.query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT event FROM changes WHERE event IS NOT NULL",
        ))
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect()
    };
    assert!(
        db_text.iter().all(|e| !e.contains("edited secret")),
        "{db_text:?}"
    );

    // Her own blob is gone, the shared one stays.
    assert_eq!(
        blobs(&app),
        [shared.body["sha256"].as_str().unwrap().to_owned()]
    );

    // Bob's catch-up replays exactly what changed for him.
    let (changes, _) = sync_from(&app, BOB, bobs_cursor).await;
    let replayed: Vec<(String, i64, i64)> = changes.iter().map(change_of).collect();
    let private_chat = theirs.iter().find(|m| m.id == private).unwrap().chat_id;
    let expected: Vec<(String, i64, i64)> = [
        ("message_deleted", group, hers),
        ("message_deleted", private_chat, private),
        ("message_deleted", group, with_file),
        ("message_deleted", group, a5),
        ("reaction_removed", group, bobs_reply),
        ("member_removed", group, ANN),
        ("member_role_changed", group, BOB),
        ("member_removed", private_chat, ANN),
    ]
    .into_iter()
    .map(|(a, c, s)| (a.to_owned(), c, s))
    .collect();
    let mut sorted_replayed = replayed.clone();
    sorted_replayed.sort();
    let mut sorted_expected = expected.clone();
    sorted_expected.sort();
    assert_eq!(sorted_replayed, sorted_expected, "{changes:#?}");

    // A repeat finds nothing to do, and says so.
    let journaled = journal_rows(&db).await;
    let again = erase(&app, ANN, "erase-2").await;
    assert_eq!(again["messages_erased"], 0);
    assert_eq!(again["chats_deleted"], json!([]));
    let journaled_again = journal_rows(&db).await;
    assert_eq!(journaled, journaled_again, "a repeat journals nothing");
    assert_eq!(
        sync_from(&app, BOB, bobs_cursor).await.0.len(),
        changes.len()
    );
}

#[tokio::test]
async fn an_unknown_user_is_erased_too_and_the_largest_id_is_no_error() {
    let app = spawn_app().await;
    for user in [42, i64::MAX] {
        let erased = erase(&app, user, &format!("erase-{user}")).await;
        assert_eq!(erased["messages_erased"], 0);
    }
}

#[tokio::test]
async fn an_erased_users_token_starts_nothing() {
    let app = spawn_app().await;
    let group = app.create_chat(BOB, true, &[ANN]).await;
    send(&app, ANN, json!({"receiver_id": BOB}), "before", json!({})).await;
    // Her sockets open at the erasure are closed, told not to come back; Bob's stays.
    let mut open = app.connect(ANN).await;
    let mut bob = app.connect(BOB).await;
    erase(&app, ANN, "erase-1").await;
    assert_eq!(open.close_code().await, 4010);
    bob.send(json!({"action": "ping"})).await;
    // Told of the erasure (her message deleted, her leaving), and still served.
    let mut told = Vec::new();
    loop {
        let frame = bob.next().await;
        if frame["action"] == "pong" {
            break;
        }
        told.push(frame["action"].as_str().unwrap().to_owned());
    }
    assert!(told.contains(&"member_removed".to_owned()), "{told:?}");

    let mut ann = app.connect(ANN).await;
    // Not to Bob, whose private chat with her stays his; not to a new user; not in the group.
    for (key, target) in [
        ("to-bob", json!({"receiver_id": BOB})),
        ("to-cid", json!({"receiver_id": CID})),
        ("to-group", json!({"chat_id": group})),
    ] {
        let mut frame = json!({"action": "send_message", "content_type": "text",
                               "content": "after", "client_msg_id": key});
        frame
            .as_object_mut()
            .unwrap()
            .extend(target.as_object().unwrap().clone());
        ann.send(frame).await;
        // The socket refuses a chat it knows she is no member of; the persister the rest.
        let mut error = ann.next().await;
        if error["action"] == "message_accepted" {
            error = ann.expect("error").await;
        }
        assert_eq!(error["code"], "forbidden", "{key}: {error}");
    }
    let db = app.database().await;
    let after = message::Entity::find()
        .filter(message::Column::SenderId.eq(ANN))
        .filter(message::Column::DeletedAt.is_null())
        .count(&db)
        .await
        .unwrap();
    assert_eq!(after, 0);
    assert_eq!(
        chat_member::Entity::find()
            .filter(chat_member::Column::UserId.eq(ANN))
            .count(&db)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn an_erased_users_blob_leaves_the_bucket_too() {
    let server = crate::bucket::S3Server::start().await;
    let app = crate::bucket::spawn_app_on(&server, &[]).await;
    let uploaded = upload_file(&app, ANN, "a.mp4", ftyp(b"isom")).await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.body);
    let object = server.object(uploaded.body["sha256"].as_str().unwrap());
    assert!(
        object.exists(),
        "stored in the bucket: {}",
        object.display()
    );

    erase(&app, ANN, "erase-1").await;

    assert!(!object.exists(), "deleted from the bucket");
}
