//! Reconnect without gaps: `?since=`, the `sync` frame and `GET /sync` replay exactly what a
//! client missed — messages, receipts, membership, renames, new chats — in cursor order, then
//! `synced`, then live frames; and the chat list frames (`unread`, `chat_created`).

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use crate::helpers::{TestApp, WsClient, publish_command, spawn_app, spawn_app_with, token};

/// Opens a socket as `user_id` with `?since=` (and `&epoch=`) and returns it with its
/// `unread` frame, which comes first.
async fn reconnect(
    app: &TestApp,
    user_id: i64,
    since: u64,
    epoch: Option<&str>,
) -> (WsClient, Value) {
    let mut url = format!("{}&since={since}", app.ws_url(&token(user_id)));
    if let Some(epoch) = epoch {
        url.push_str(&format!("&epoch={epoch}"));
    }
    let (stream, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("WebSocket handshake succeeds");
    let mut client = WsClient { stream };
    let unread = client.expect("unread").await;
    (client, unread)
}

/// The frames up to `synced` (or `resync_required`), and that last frame.
async fn catch_up(client: &mut WsClient) -> (Vec<Value>, Value) {
    let mut frames = Vec::new();
    loop {
        let frame = client.next().await;
        match frame["action"].as_str() {
            Some("synced") | Some("resync_required") => return (frames, frame),
            _ => frames.push(frame),
        }
    }
}

fn cursor(frame: &Value) -> u64 {
    frame["cursor"]
        .as_u64()
        .unwrap_or_else(|| panic!("a change's frame carries a cursor: {frame}"))
}

/// What a client keeps: every frame it got by cursor, and the newest cursor.
#[derive(Default)]
struct Seen {
    by_cursor: HashMap<u64, Value>,
    newest: u64,
}

impl Seen {
    fn take(&mut self, frame: &Value) {
        let c = cursor(frame);
        self.newest = self.newest.max(c);
        self.by_cursor.insert(c, frame.clone());
    }

    /// The frames of a catch-up after `since` beyond the overlap, in order, each once.
    fn missed(&self, since: u64, frames: &[Value]) -> Vec<Value> {
        let mut cursors = Vec::new();
        let mut missed = Vec::new();
        for frame in frames {
            let c = cursor(frame);
            cursors.push(c);
            if c <= since {
                // The overlap: changes committed just before the cursor come again (some the
                // client has; others reached it late, or came before it connected).
                if let Some(had) = self.by_cursor.get(&c) {
                    assert_eq!(had, frame, "a change comes again as it was");
                }
            } else {
                missed.push(frame.clone());
            }
        }
        assert!(
            cursors.windows(2).all(|w| w[0] < w[1]),
            "catch-up in cursor order, each change once: {cursors:?}"
        );
        missed
    }
}

fn actions(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .map(|f| f["action"].as_str().unwrap_or("?").to_owned())
        .collect()
}

#[tokio::test]
async fn a_client_back_from_away_gets_exactly_what_it_missed_then_live_frames() {
    let app = spawn_app().await;
    let group = app.create_chat(1, true, &[2, 3]).await;
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;
    let mut carol = app.connect(3).await;
    let mut seen = Seen::default();

    let mine = bob
        .send_message(json!({"chat_id": group, "content": "bob's", "client_msg_id": "b-1"}))
        .await;
    alice.expect("new_message").await;
    carol.expect("new_message").await;
    alice
        .send_message(json!({"chat_id": group, "content": "one", "client_msg_id": "a-1"}))
        .await;
    let one = bob.expect("new_message").await;
    seen.take(&one);
    carol.expect("new_message").await;
    drop(bob);

    // While bob is away: messages, a receipt of his message, a member, a rename, a new chat.
    alice
        .send_message(json!({"chat_id": group, "content": "two", "client_msg_id": "a-2"}))
        .await;
    carol.expect("new_message").await; // bob's own and alice's, both seen
    carol
        .send(json!({"action": "acknowledge", "message_id": mine["message_id"]}))
        .await;
    publish_command(
        &app,
        &format!("chat.in.{group}.add_members"),
        json!({"type":"add_members","command_id":"add-4","chat_id":group,"user_ids":[4]}),
    )
    .await;
    alice.expect("member_added").await;
    publish_command(
        &app,
        &format!("chat.in.{group}.rename"),
        json!({"command_id":"rename-1","name":"renamed"}),
    )
    .await;
    alice.expect("chat_renamed").await;
    alice.expect("chat_updated").await;
    alice
        .send_message(json!({"receiver_id": 2, "content": "private", "client_msg_id": "a-3"}))
        .await;
    crate::helpers::pipeline_drained(&app).await;

    let (mut bob, unread) = reconnect(&app, 2, seen.newest, None).await;
    let group_unread = unread["chats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["chat_id"] == group)
        .expect("the group is in the summary")
        .clone();
    assert_eq!(group_unread["unread"], 2, "alice's two messages: {unread}");
    let (frames, synced) = catch_up(&mut bob).await;
    let missed = seen.missed(seen.newest, &frames);
    assert_eq!(
        actions(&missed),
        [
            "new_message",
            "status_update",
            "member_added",
            "chat_renamed",
            "chat_updated",
            "chat_created",
            "new_message"
        ],
        "{missed:#?}"
    );
    assert_eq!(missed[0]["content"], "two");
    assert_eq!(missed[1]["message_id"], mine["message_id"]);
    assert_eq!(missed[1]["status"], "read");
    assert_eq!(missed[2]["user_id"], 4);
    assert_eq!(missed[3]["name"], "renamed");
    assert_eq!(missed[4]["name"], "renamed");
    assert_eq!(missed[5]["chat"]["is_group"], false);
    assert_eq!(missed[6]["content"], "private");
    assert_eq!(synced["changes"].as_u64().unwrap(), frames.len() as u64);
    assert!(cursor(&synced) >= cursor(missed.last().unwrap()));
    assert!(synced["epoch"].as_str().is_some_and(|e| !e.is_empty()));

    // Live from here on, after the catch-up's newest.
    alice
        .send_message(json!({"chat_id": group, "content": "live", "client_msg_id": "a-4"}))
        .await;
    let live = bob.expect("new_message").await;
    assert_eq!(live["content"], "live");
    assert!(cursor(&live) > cursor(&synced));
}

#[tokio::test]
async fn a_catch_up_during_a_steady_stream_misses_nothing_and_doubles_nothing() {
    let app = spawn_app_with(&[("RATE_MESSAGES_PER_SEC", "0")]).await;
    let group = app.create_chat(1, true, &[2]).await;
    let mut bob = app.connect(2).await;
    let mut seen = Seen::default();
    let mut alice = app.connect(1).await;
    const TOTAL: usize = 150;
    for i in 0..20 {
        alice
            .send_message(json!({"chat_id": group, "content": format!("m{i}"), "client_msg_id": format!("m{i}")}))
            .await;
    }
    for _ in 0..20 {
        let frame = bob.expect("new_message").await;
        seen.take(&frame);
    }
    drop(bob);

    // Alice keeps writing while bob comes back.
    let writer =
        tokio::spawn(async move {
            for i in 20..TOTAL {
                alice
                .send(json!({"action": "send_message", "chat_id": group, "content": format!("m{i}"),
                              "content_type": "text", "client_msg_id": format!("m{i}")}))
                .await;
                if i % 10 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            alice
        });
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    let since = seen.newest;
    let (mut bob, _) = reconnect(&app, 2, since, None).await;
    let (frames, synced) = catch_up(&mut bob).await;
    assert_eq!(synced["action"], "synced");
    let mut contents: Vec<String> = seen
        .by_cursor
        .values()
        .map(|f| f["content"].as_str().unwrap().to_owned())
        .collect();
    let missed = seen.missed(since, &frames);
    let mut newest = cursor(&synced);
    contents.extend(
        missed
            .iter()
            .map(|f| f["content"].as_str().unwrap().to_owned()),
    );
    let _alice = writer.await.unwrap();
    while contents.len() < TOTAL {
        let frame = bob.expect("new_message").await;
        let c = cursor(&frame);
        assert!(
            c > newest,
            "live frames follow the catch-up in order: {c} after {newest}"
        );
        newest = c;
        contents.push(frame["content"].as_str().unwrap().to_owned());
    }
    let distinct: HashSet<&String> = contents.iter().collect();
    assert_eq!(distinct.len(), TOTAL, "every message once: {contents:?}");
    bob.expect_silence(std::time::Duration::from_millis(300))
        .await;
}

#[tokio::test]
async fn a_removed_member_catches_up_to_the_removal_and_no_further() {
    let app = spawn_app().await;
    let group = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let unread = app.connect(2).await;
    drop(unread);
    let (_, first) = reconnect(&app, 2, 0, None).await; // just to read the cursor
    let since = first["cursor"].as_u64().unwrap();

    alice
        .send_message(json!({"chat_id": group, "content": "before", "client_msg_id": "a-1"}))
        .await;
    publish_command(
        &app,
        &format!("chat.in.{group}.remove_members"),
        json!({"type":"remove_members","command_id":"rm-2","chat_id":group,"user_ids":[2]}),
    )
    .await;
    alice.expect("member_removed").await;
    alice
        .send_message(json!({"chat_id": group, "content": "after", "client_msg_id": "a-2"}))
        .await;
    crate::helpers::pipeline_drained(&app).await;

    let (mut bob, _) = reconnect(&app, 2, since, None).await;
    let (frames, _) = catch_up(&mut bob).await;
    let frames: Vec<Value> = frames.into_iter().filter(|f| cursor(f) > since).collect();
    assert_eq!(
        actions(&frames),
        ["new_message", "member_removed"],
        "{frames:#?}"
    );
    assert_eq!(frames[0]["content"], "before");
    assert_eq!(frames[1]["user_id"], 2);
}

#[tokio::test]
async fn reconnecting_to_another_instance_or_after_a_restart_misses_nothing() {
    let mut app = spawn_app().await;
    let group = app.create_chat(1, true, &[2]).await;
    let other = app.sibling().await;
    let mut bob = app.connect(2).await;
    let mut alice = other.connect(1).await;
    alice
        .send_message(json!({"chat_id": group, "content": "one", "client_msg_id": "a-1"}))
        .await;
    let one = bob.expect("new_message").await;
    let since = cursor(&one);
    drop(bob);
    alice
        .send_message(json!({"chat_id": group, "content": "two", "client_msg_id": "a-2"}))
        .await;
    crate::helpers::pipeline_drained(&app).await;

    // On the other instance.
    let (mut bob, _) = reconnect(&other, 2, since, None).await;
    let (frames, synced) = catch_up(&mut bob).await;
    let contents: Vec<&Value> = frames
        .iter()
        .filter(|f| cursor(f) > since)
        .map(|f| &f["content"])
        .collect();
    assert_eq!(contents, [&json!("two")]);
    let since = cursor(&synced);
    drop(bob);
    drop(alice);

    // Every instance restarted (the database and NATS stay).
    drop(other);
    app.stop().await;
    app.start_again().await;
    let mut alice = app.connect(1).await;
    alice
        .send_message(json!({"chat_id": group, "content": "three", "client_msg_id": "a-3"}))
        .await;
    crate::helpers::pipeline_drained(&app).await;
    let (mut bob, _) = reconnect(&app, 2, since, None).await;
    let (frames, _) = catch_up(&mut bob).await;
    let contents: Vec<&Value> = frames
        .iter()
        .filter(|f| cursor(f) > since)
        .map(|f| &f["content"])
        .collect();
    assert_eq!(contents, [&json!("three")]);
}

#[tokio::test]
async fn a_cursor_that_cannot_be_caught_up_exactly_is_answered_with_resync_required() {
    let app = spawn_app_with(&[("SYNC_MAX", "3")]).await;
    let group = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let (_, unread) = reconnect(&app, 2, 0, None).await;
    let since = unread["cursor"].as_u64().unwrap();
    let epoch = unread["epoch"].as_str().unwrap().to_owned();

    // Ahead of the server, and of another database.
    let (mut bob, _) = reconnect(&app, 2, since + 1000, None).await;
    let (_, end) = catch_up(&mut bob).await;
    assert_eq!(end["action"], "resync_required");
    assert_eq!(end["reason"], "unknown_cursor");
    let (mut bob, _) = reconnect(&app, 2, since, Some("another")).await;
    let (_, end) = catch_up(&mut bob).await;
    assert_eq!(end["reason"], "other_epoch");
    assert_eq!(end["epoch"], epoch.as_str());

    // Too far behind: more than SYNC_MAX changes.
    for i in 0..5 {
        alice
            .send_message(json!({"chat_id": group, "content": format!("m{i}"), "client_msg_id": format!("m{i}")}))
            .await;
    }
    crate::helpers::pipeline_drained(&app).await;
    let (mut bob, _) = reconnect(&app, 2, since, Some(&epoch)).await;
    let (frames, end) = catch_up(&mut bob).await;
    assert!(frames.is_empty(), "nothing partial before it: {frames:?}");
    assert_eq!(end["reason"], "too_far_behind");
    assert!(end["cursor"].as_u64().unwrap() > since);
    // The socket goes on live.
    alice
        .send_message(json!({"chat_id": group, "content": "live", "client_msg_id": "live"}))
        .await;
    assert_eq!(bob.expect("new_message").await["content"], "live");

    // A cursor that is no cursor.
    let url = format!("{}&since=-1", app.ws_url(&token(2)));
    let refused = tokio_tungstenite::connect_async(url).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 422)
        }
        other => panic!("a negative cursor is refused before the upgrade: {other:?}"),
    }
    bob.send(json!({"action": "sync", "since": "yesterday"}))
        .await;
    bob.expect_error("invalid_field").await;
    bob.send(json!({"action": "sync", "since": -5})).await;
    bob.expect_error("invalid_field").await;
}

#[tokio::test]
async fn the_sync_frame_catches_up_an_open_socket() {
    let app = spawn_app().await;
    let group = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let (mut bob, unread) = reconnect(&app, 2, 0, None).await;
    let (_, synced) = catch_up(&mut bob).await;
    let since = synced["cursor"].as_u64().unwrap();
    assert_eq!(since, unread["cursor"].as_u64().unwrap());
    alice
        .send_message(json!({"chat_id": group, "content": "hello", "client_msg_id": "a-1"}))
        .await;
    let live = bob.expect("new_message").await;

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await; // one sync a second
    bob.send(json!({"action": "sync", "since": since})).await;
    let (frames, synced) = catch_up(&mut bob).await;
    let frames: Vec<Value> = frames.into_iter().filter(|f| cursor(f) > since).collect();
    assert_eq!(
        frames,
        std::slice::from_ref(&live),
        "the same frame, with the same cursor"
    );
    assert_eq!(cursor(&synced), cursor(&live));
    // Asked again at once: refused with a wait.
    bob.send(json!({"action": "sync", "since": since})).await;
    let refused = bob.expect_error("rate_limited").await;
    assert!(refused["retry_after_ms"].as_u64().is_some());
}

#[tokio::test]
async fn get_sync_pages_the_same_changes() {
    let app = spawn_app().await;
    let group = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let (_, unread) = reconnect(&app, 2, 0, None).await;
    let since = unread["cursor"].as_u64().unwrap();
    for i in 0..5 {
        alice
            .send_message(json!({"chat_id": group, "content": format!("m{i}"), "client_msg_id": format!("m{i}")}))
            .await;
    }
    crate::helpers::pipeline_drained(&app).await;

    let mut query = format!("since={since}");
    let mut contents = Vec::new();
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages < 20, "paging ends");
        let page = app.get_json(2, &format!("/sync?{query}&limit=2")).await;
        for change in page["changes"].as_array().unwrap() {
            if cursor(change) > since {
                contents.push(change["content"].as_str().unwrap().to_owned());
            }
        }
        if page["more"] == false {
            assert!(page["cursor"].as_u64().unwrap() >= since);
            break;
        }
        query = format!("after={}", page["cursor"]);
    }
    assert_eq!(contents, ["m0", "m1", "m2", "m3", "m4"]);

    let gone = app
        .get(2, &format!("/sync?since={since}&epoch=another"))
        .await;
    assert_eq!(gone.status(), 410);
    let body: Value = gone.json().await.unwrap();
    assert_eq!(body["reason"], "other_epoch");
    assert_eq!(app.get(2, "/sync?since=-1").await.status(), 422);
    assert_eq!(app.get(2, "/sync?since=0&limit=0").await.status(), 422);
    assert_eq!(app.get(2, "/sync?since=x").await.status(), 422);
    assert_eq!(app.get(2, "/sync").await.status(), 422, "since or after");
    assert_eq!(app.get(2, "/sync?since=1&after=1").await.status(), 422);
}

#[tokio::test]
async fn members_online_see_a_new_group_before_its_first_message() {
    let app = spawn_app().await;
    let mut bob = app.connect(2).await;
    let mut dave = app.connect(4).await;
    let group = app.create_chat(1, true, &[2, 3]).await;
    let created = bob.expect("chat_created").await;
    assert_eq!(created["chat"]["chat_id"], group);
    assert_eq!(created["chat"]["name"], "test");
    assert_eq!(created["chat"]["member_ids"], json!([1, 2, 3]));
    assert!(created["cursor"].as_u64().is_some());
    dave.expect_silence(std::time::Duration::from_millis(300))
        .await;
}

#[tokio::test]
async fn a_redelivered_command_keeps_its_cursor_and_journals_once() {
    let app = spawn_app().await;
    let group = app.create_chat(1, true, &[2]).await;
    let mut bob = app.connect(2).await;
    let command = json!({"type":"send_message","sender_id":1,"chat_id":group,"content":"once",
                          "content_type":"text","client_msg_id":"dj-1"});
    // Two copies in CHAT_IN (no Nats-Msg-Id): the second is found stored and re-emitted.
    let js = async_nats::jetstream::new(app.nats().await);
    for _ in 0..2 {
        js.publish(
            format!("chat.in.{group}.message"),
            command.to_string().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    crate::helpers::pipeline_drained(&app).await;
    let first = bob.expect("new_message").await;
    bob.expect_silence(std::time::Duration::from_millis(300))
        .await;

    use sea_orm::{ConnectionTrait, Statement};
    let db = app.database().await;
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT cursor FROM changes WHERE kind = 'message_created'".to_owned(),
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "one journal row for the message");
    let stored: i64 = rows[0].try_get_by_index(0).unwrap();
    assert_eq!(stored as u64, cursor(&first));
}

#[tokio::test]
async fn changes_older_than_the_retention_are_pruned_and_their_cursors_answered_with_resync() {
    let app = spawn_app_with(&[("SYNC_RETENTION", "1s")]).await;
    let group = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let (_, unread) = reconnect(&app, 2, 0, None).await;
    let since = unread["cursor"].as_u64().unwrap();
    alice
        .send_message(json!({"chat_id": group, "content": "old", "client_msg_id": "a-1"}))
        .await;
    crate::helpers::eventually("the journal is pruned", || async {
        let page = app.get(2, &format!("/sync?since={since}")).await;
        match page.status().as_u16() {
            410 => {
                let body: Value = page.json().await.unwrap();
                if body["reason"] == "pruned" {
                    Ok(())
                } else {
                    Err(format!("410 for another reason: {body}"))
                }
            }
            other => Err(format!("answered {other}")),
        }
    })
    .await;
    // A client at the newest cursor is not behind anything pruned.
    let (mut bob, unread) = reconnect(&app, 2, 0, None).await;
    let (_, end) = catch_up(&mut bob).await;
    assert_eq!(
        end["reason"], "pruned",
        "cursor 0 is behind what was pruned"
    );
    let (mut bob, _) = reconnect(&app, 2, unread["cursor"].as_u64().unwrap(), None).await;
    let (_, end) = catch_up(&mut bob).await;
    assert_eq!(end["action"], "synced");
}

#[tokio::test]
async fn garbage_on_the_new_paths_is_refused_and_messages_still_flow() {
    let app = spawn_app_with(&[("PRESENCE", "on")]).await;
    let group = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let mut bob = app.connect(2).await;
    let mut mallory = app.connect(3).await;
    let max = i64::MAX;

    // `?since=` and `&epoch=`: the largest cursor, one past it, a NUL, a long epoch.
    let (mut probe, _) = reconnect(&app, 3, max as u64, None).await;
    let (_, end) = catch_up(&mut probe).await;
    assert_eq!(end["reason"], "unknown_cursor");
    let (mut probe, _) = reconnect(&app, 3, 0, Some("%00")).await;
    assert_eq!(catch_up(&mut probe).await.1["reason"], "other_epoch");
    let (mut probe, _) = reconnect(&app, 3, 0, Some(&"e".repeat(2000))).await;
    assert_eq!(catch_up(&mut probe).await.1["reason"], "other_epoch");
    let url = format!("{}&since=9223372036854775808", app.ws_url(&token(3)));
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 422)
        }
        other => panic!("a cursor past i64 is refused before the upgrade: {other:?}"),
    }

    // `GET /sync`.
    let gone = app.get(3, &format!("/sync?since={max}")).await;
    assert_eq!(gone.status(), 410);
    assert_eq!(app.get(3, "/sync?since=0&epoch=%00").await.status(), 410);
    assert_eq!(
        app.get(3, &format!("/sync?after={max}")).await.status(),
        410
    );
    assert_eq!(
        app.get(3, "/sync?since=0&limit=18446744073709551615")
            .await
            .status(),
        422
    );
    assert_eq!(app.get(3, "/sync?since=1e3").await.status(), 422);

    // Frames: sync, typing and presence with garbage, then the same frame again.
    for _ in 0..2 {
        for frame in [
            json!({"action": "sync", "since": max, "epoch": "\u{0}"}),
            json!({"action": "typing", "chat_id": max}),
            json!({"action": "typing", "chat_id": group, "state": "\u{0}"}),
            json!({"action": "typing", "chat_id": group, "state": "x".repeat(5000)}),
            json!({"action": "presence", "chat_id": max}),
            json!({"action": "presence", "chat_id": group}),
        ] {
            mallory.send(frame.clone()).await;
            let answer = mallory.next().await;
            assert!(
                answer["action"] == "error" || answer["action"] == "resync_required",
                "{frame} is refused: {answer}"
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await; // the sync limit
    }

    // Nothing of it stopped anyone: a message flows (presence frames may come between).
    alice
        .send(
            json!({"action": "send_message", "chat_id": group, "content": "still here",
                      "content_type": "text", "client_msg_id": "a-1"}),
        )
        .await;
    let arrived = loop {
        let frame = bob.next().await;
        if frame["action"] != "presence" {
            break frame;
        }
    };
    assert_eq!(arrived["action"], "new_message");
    assert_eq!(arrived["content"], "still here");
    drop(alice);
}
