//! Push notifications for members no socket reached (`push_needed`), once per member and
//! message across instances and restarts, and muted chats that get none.

use futures_util::StreamExt;
use sea_orm::{Database, EntityTrait, QueryOrder};
use serde_json::{Value, json};

use jetchat::{ops::reproject, store::chat_member};

use crate::helpers::{TestApp, pipeline_drained, publish_command, spawn_app_with, token};

/// Short enough for a test, long enough that a burst of sends lands inside it.
const AFTER: (&str, &str) = ("PUSH_AFTER", "2s");

/// How long a test waits for an event: `PUSH_AFTER`, a scan round and the persister.
const EVENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// The events Django would consume, as they are published.
struct Events {
    subscriber: async_nats::Subscriber,
}

impl Events {
    /// Every event of `kind` in every chat, from now on.
    async fn watch(app: &TestApp, kind: &str) -> Events {
        let subscriber = app
            .nats()
            .await
            .subscribe(format!("chat.events.*.{kind}"))
            .await
            .expect("subscribed");
        Events { subscriber }
    }

    async fn next(&mut self) -> Value {
        let message = tokio::time::timeout(EVENT_TIMEOUT, self.subscriber.next())
            .await
            .expect("an event in time")
            .expect("the subscription is open");
        serde_json::from_slice(&message.payload).expect("an event is JSON")
    }
}

/// The ids of `acks` (`message_ack` frames).
fn ids(acks: &[Value]) -> Vec<i64> {
    acks.iter()
        .map(|a| a["message_id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn an_offline_member_gets_one_push_for_a_burst_then_one_for_the_next_message() {
    let app = spawn_app_with(&[AFTER]).await;
    let group = app.create_chat(1, true, &[2]).await;
    let mut pushes = Events::watch(&app, "push_needed").await;
    let mut alice = app.connect(1).await;
    let mut burst = Vec::new();
    for i in 0..3 {
        burst.push(
            alice
                .send_message(json!({"chat_id": group, "content": format!("m{i}")}))
                .await,
        );
    }
    let burst = ids(&burst);

    let push = pushes.next().await;
    assert_eq!(push["user_id"], 2, "the offline member, never the author");
    assert_eq!(push["chat_id"], group);
    assert_eq!(push["count"], 3, "coalesced: {push}");
    assert_eq!(push["message_ids"], json!(burst));
    assert_eq!(push["first_message_id"], burst[0]);
    assert_eq!(push["through_message_id"], burst[2]);

    // The next push covers the next message only: nothing is pushed twice.
    let later = alice
        .send_message(json!({"chat_id": group, "content": "later"}))
        .await;
    let push = pushes.next().await;
    assert_eq!(push["user_id"], 2);
    assert_eq!(push["count"], 1, "{push}");
    assert_eq!(push["first_message_id"], later["message_id"]);
    assert_eq!(push["message_ids"], json!([later["message_id"]]));
}

#[tokio::test]
async fn a_member_whose_socket_got_the_message_is_not_pushed() {
    let app = spawn_app_with(&[AFTER, ("AUTO_DELIVERED", "true")]).await;
    let group = app.create_chat(1, true, &[2, 3]).await;
    let mut pushes = Events::watch(&app, "push_needed").await;
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;
    for content in ["one", "two"] {
        let sent = alice
            .send_message(json!({"chat_id": group, "content": content}))
            .await;
        assert_eq!(bob.expect("new_message").await["content"], content);
        assert_eq!(alice.expect("status_update").await["status"], "delivered");
        // Carol, offline, is pushed each message once; a push for Bob would come in the
        // same round, before hers (a round publishes in user order).
        let push = pushes.next().await;
        assert_eq!(push["user_id"], 3, "only the offline member: {push}");
        assert_eq!(push["first_message_id"], sent["message_id"]);
        assert_eq!(push["count"], 1);
    }
}

#[tokio::test]
async fn a_muted_member_gets_no_push_and_is_not_owed_the_muted_period() {
    let app = spawn_app_with(&[AFTER]).await;
    let group = app.create_chat(1, true, &[2, 3]).await;
    let mut pushes = Events::watch(&app, "push_needed").await;

    // Bob mutes over the socket, for ever; each of his sockets is told.
    let mut bob = app.connect(2).await;
    bob.send(json!({"action": "mute", "chat_id": group})).await;
    let muted = bob.expect("chat_muted").await;
    assert_eq!(muted["chat_id"], group);
    assert!(
        muted["muted_until"]
            .as_str()
            .unwrap()
            .starts_with("9999-12-31T23:59:59")
    );
    assert!(muted["cursor"].as_u64().unwrap() > 0, "journaled: {muted}");
    drop(bob);
    let chats = app.get_json(2, "/chats/").await;
    assert!(
        chats[0]["muted_until"]
            .as_str()
            .unwrap()
            .starts_with("9999")
    );
    assert_eq!(
        app.get_json(3, "/chats/").await[0]["muted_until"],
        Value::Null
    );

    let mut alice = app.connect(1).await;
    let during = alice
        .send_message(json!({"chat_id": group, "content": "while bob is muted"}))
        .await;
    let push = pushes.next().await;
    assert_eq!(push["user_id"], 3, "Bob muted the chat: {push}");
    assert_eq!(push["first_message_id"], during["message_id"]);

    // Unmuted over REST: what came while muted is never pushed; what comes next is.
    let unmuted = app
        .http
        .delete(app.url(&format!("/chats/{group}/mute")))
        .bearer_auth(token(2))
        .send()
        .await
        .unwrap();
    assert_eq!(unmuted.status(), 200);
    assert_eq!(
        unmuted.json::<Value>().await.unwrap(),
        json!({"chat_id": group, "muted_until": null, "mentions_muted": false})
    );
    let after = alice
        .send_message(json!({"chat_id": group, "content": "after the unmute"}))
        .await;
    let mut next = [pushes.next().await, pushes.next().await];
    next.sort_by_key(|p| p["user_id"].as_i64());
    for (push, user) in next.iter().zip([2, 3]) {
        assert_eq!(push["user_id"], user);
        assert_eq!(push["count"], 1, "{push}");
        assert_eq!(push["first_message_id"], after["message_id"]);
    }
}

#[tokio::test]
async fn mutes_with_a_past_a_garbage_or_a_huge_time_are_refused_everywhere() {
    let app = spawn_app_with(&[]).await;
    let group = app.create_chat(1, true, &[2]).await;
    let mut bob = app.connect(2).await;
    for until in [
        json!("2001-01-01T00:00:00Z"),
        json!("tomorrow"),
        json!("99999-01-01T00:00:00Z"),
        json!("2030-01-01T00:00:00\u{0}Z"),
        json!(12),
    ] {
        bob.send(json!({"action": "mute", "chat_id": group, "until": until}))
            .await;
        bob.expect_error("invalid_field").await;
    }
    for chat_id in [json!(0), json!(-1), json!(i64::MAX)] {
        bob.send(json!({"action": "unmute", "chat_id": chat_id}))
            .await;
        let error = bob.next().await;
        assert_eq!(error["action"], "error", "{error}");
    }
    // REST answers the same; a stranger and a missing chat are told so.
    let put = |user: i64, chat: i64, body: &'static str| {
        app.http
            .put(app.url(&format!("/chats/{chat}/mute")))
            .bearer_auth(token(user))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert_eq!(
        put(2, group, r#"{"until":"2001-01-01T00:00:00Z"}"#)
            .await
            .unwrap()
            .status(),
        422
    );
    assert_eq!(
        put(2, group, r#"{"until":"+10000-01-01T00:00:00Z"}"#)
            .await
            .unwrap()
            .status(),
        422
    );
    assert_eq!(put(2, group, "[1]").await.unwrap().status(), 422);
    assert_eq!(put(3, group, "").await.unwrap().status(), 403);
    assert_eq!(put(2, i64::MAX, "").await.unwrap().status(), 404);
    let until = (chrono::Utc::now() + chrono::Duration::hours(8)).to_rfc3339();
    let ok = put(
        2,
        group,
        Box::leak(format!(r#"{{"until":"{until}"}}"#).into_boxed_str()),
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), 200);
    let state: Value = ok.json().await.unwrap();
    assert_eq!(state["chat_id"], group);
    assert!(state["muted_until"].is_string());

    // Over NATS: a past time (against the command's own time), a non-member, a time past
    // forever are refused with command_rejected; the socket still works after all of it.
    let mut rejections = Events::watch(&app, "command_rejected").await;
    for (body, code) in [
        (
            json!({"type": "mute_chat", "command_id": "past", "chat_id": group, "user_id": 2,
                "muted_until": "2001-01-01T00:00:00Z"}),
            "invalid_field",
        ),
        (
            json!({"type": "mute_chat", "command_id": "stranger", "chat_id": group, "user_id": 9,
                "muted_until": null}),
            "forbidden",
        ),
        (
            json!({"type": "mute_chat", "command_id": "later", "chat_id": group, "user_id": 2,
                "muted_until": "+10000-01-01T00:00:00Z"}),
            "invalid_field",
        ),
    ] {
        publish_command(&app, &format!("chat.in.{group}.mute"), body).await;
        let rejected = rejections.next().await;
        assert_eq!(rejected["code"], code, "{rejected}");
        assert_eq!(rejected["command"], "mute_chat");
    }
    assert!(
        bob.expect("chat_muted").await["muted_until"].is_string(),
        "the REST mute"
    );
    bob.send(json!({"action": "unmute", "chat_id": group}))
        .await;
    assert_eq!(bob.expect("chat_muted").await["muted_until"], Value::Null);
}

#[tokio::test]
async fn a_push_is_sent_once_across_a_kill_9_and_restarts() {
    // The test's own instance serves the sockets and scans nothing; the processes scan.
    let app = spawn_app_with(&[]).await;
    let group = app.create_chat(1, true, &[2]).await;
    let mut pushes = Events::watch(&app, "push_needed").await;
    let mut alice = app.connect(1).await;

    let mut scanner = app.spawn_process_with(&[AFTER]).await;
    let first = alice
        .send_message(json!({"chat_id": group, "content": "before the crash"}))
        .await;
    scanner.kill(); // within PUSH_AFTER: it had not pushed yet
    let mut scanner = app.spawn_process_with(&[AFTER]).await;
    let push = pushes.next().await;
    assert_eq!(push["first_message_id"], first["message_id"]);
    assert_eq!(push["count"], 1);

    // Killed and started again after the push: the same message is not pushed again.
    scanner.kill();
    let _scanner = app.spawn_process_with(&[AFTER]).await;
    let second = alice
        .send_message(json!({"chat_id": group, "content": "after the restart"}))
        .await;
    let push = pushes.next().await;
    assert_eq!(
        push["first_message_id"], second["message_id"],
        "the first message was pushed once: {push}"
    );
    assert_eq!(push["count"], 1);
}

#[tokio::test]
async fn two_instances_scanning_at_once_push_once() {
    let a = spawn_app_with(&[AFTER]).await;
    let _b = a.sibling().await; // scans too
    let group = a.create_chat(1, true, &[2]).await;
    let mut pushes = Events::watch(&a, "push_needed").await;
    let mut alice = a.connect(1).await;
    let one = alice
        .send_message(json!({"chat_id": group, "content": "one"}))
        .await;
    let two = alice
        .send_message(json!({"chat_id": group, "content": "two"}))
        .await;
    let push = pushes.next().await;
    assert_eq!(push["user_id"], 2);
    assert_eq!(
        push["message_ids"],
        json!([one["message_id"], two["message_id"]])
    );
    let three = alice
        .send_message(json!({"chat_id": group, "content": "three"}))
        .await;
    let push = pushes.next().await;
    assert_eq!(
        push["first_message_id"], three["message_id"],
        "one push per message, whichever instance found it: {push}"
    );
}

#[tokio::test]
async fn push_due_from_nats_with_garbage_is_refused_or_changes_nothing() {
    let app = spawn_app_with(&[]).await; // no scanner: the commands here are the only ones
    let group = app.create_chat(1, true, &[2]).await;
    let other = app.create_chat(3, true, &[4]).await;
    let mut alice = app.connect(1).await;
    let mut carol = app.connect(3).await;
    let mine = alice
        .send_message(json!({"chat_id": group, "content": "hi"}))
        .await["message_id"]
        .clone();
    let theirs = carol
        .send_message(json!({"chat_id": other, "content": "elsewhere"}))
        .await["message_id"]
        .clone();
    let mut pushes = Events::watch(&app, "push_needed").await;
    let mut rejections = Events::watch(&app, "command_rejected").await;
    let push_due = |chat: Value, user: Value, through: Value| {
        json!({"type": "push_due", "chat_id": chat, "user_id": user,
               "through_message_id": through})
    };
    let subject = format!("chat.in.{group}.push_due");
    for (payload, code) in [
        (
            push_due(json!(group), json!(2), json!(i64::MAX)),
            "not_found",
        ),
        (
            push_due(json!(group), json!(2), theirs.clone()),
            "not_found",
        ),
        (
            push_due(json!(i64::MAX), json!(2), mine.clone()),
            "not_found",
        ),
        (push_due(json!(-1), json!(2), mine.clone()), "invalid_field"),
        (
            push_due(json!(group), json!(0), mine.clone()),
            "invalid_field",
        ),
        (
            push_due(json!(group), json!("two"), mine.clone()),
            "invalid_command",
        ),
    ] {
        publish_command(&app, &subject, payload).await;
        assert_eq!(rejections.next().await["code"], code);
    }
    // A non-member (removed between a scan and its command), the author: nothing to push.
    publish_command(
        &app,
        &subject,
        push_due(json!(group), json!(9), mine.clone()),
    )
    .await;
    publish_command(
        &app,
        &subject,
        push_due(json!(group), json!(1), mine.clone()),
    )
    .await;
    // The real one, then its repeat (another instance's, a restart's): one push.
    for _ in 0..2 {
        publish_command(
            &app,
            &subject,
            push_due(json!(group), json!(2), mine.clone()),
        )
        .await;
    }
    let push = pushes.next().await;
    assert_eq!(
        (push["user_id"].clone(), push["count"].clone()),
        (json!(2), json!(1))
    );
    let next = alice
        .send_message(json!({"chat_id": group, "content": "next"}))
        .await["message_id"]
        .clone();
    publish_command(
        &app,
        &subject,
        push_due(json!(group), json!(2), next.clone()),
    )
    .await;
    let push = pushes.next().await;
    assert_eq!(
        push["first_message_id"], next,
        "no second push of the first: {push}"
    );
    pipeline_drained(&app).await;
}

#[tokio::test]
async fn reproject_rebuilds_push_watermarks_and_mutes() {
    let app = spawn_app_with(&[AFTER]).await;
    let group = app.create_chat(1, true, &[2, 3]).await;
    let mut pushes = Events::watch(&app, "push_needed").await;
    let mut bob = app.connect(2).await;
    let until = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    bob.send(json!({"action": "mute", "chat_id": group, "until": until}))
        .await;
    bob.expect("chat_muted").await;
    drop(bob);
    let mut alice = app.connect(1).await;
    alice
        .send_message(json!({"chat_id": group, "content": "for carol's phone"}))
        .await;
    assert_eq!(pushes.next().await["user_id"], 3);
    pipeline_drained(&app).await;

    let target = crate::helpers::fresh_database_url(app.dir()).await;
    reproject::run(&app.ops_bus().await, &target, None, 3, &Default::default())
        .await
        .unwrap();
    let members = |url: String| async move {
        chat_member::Entity::find()
            .order_by_asc(chat_member::Column::ChatId)
            .order_by_asc(chat_member::Column::UserId)
            .all(&Database::connect(&url).await.unwrap())
            .await
            .unwrap()
    };
    let live = members(app.database_url.clone()).await;
    assert!(
        live.iter()
            .any(|m| m.user_id == 3 && m.push_notified_message_id > 0)
    );
    assert!(
        live.iter()
            .any(|m| m.user_id == 2 && m.muted_until.is_some())
    );
    assert_eq!(
        members(target).await,
        live,
        "watermarks and mutes rebuilt from the log"
    );
}
