//! One writer per chat: each chat's messages reach every socket in their send order — live and
//! in a catch-up, on any instance, with one partition or several — and a partition's holder
//! that is restarted or killed (`kill -9`) under load hands it over without losing, doubling
//! or reordering a message.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::helpers::{FRAME_TIMEOUT, WsClient, connect_at, spawn_app_with, token};

/// The `new_message` frames of a socket until `count` arrived (other frames passed over).
async fn new_messages(socket: &mut WsClient, count: usize) -> Vec<Value> {
    let mut frames = Vec::with_capacity(count);
    while frames.len() < count {
        let frame = socket.next().await;
        if frame["action"] == "new_message" {
            frames.push(frame);
        }
    }
    frames
}

/// Reads a sender's frames until `count` of its messages are acked; no error on the way.
async fn acks(socket: &mut WsClient, count: usize) {
    let mut acked = 0;
    while acked < count {
        let frame = socket.next().await;
        assert_ne!(frame["action"], "error", "{frame}");
        if frame["action"] == "message_ack" {
            acked += 1;
        }
    }
}

/// Each chat's contents in the order the frames came, checked: every sender's messages in
/// the order it sent them (contents are `<sender>:<n>`), each once.
fn in_send_order(frames: &[Value]) -> HashMap<i64, Vec<String>> {
    let mut chats: HashMap<i64, Vec<String>> = HashMap::new();
    for frame in frames {
        let chat = frame["chat_id"].as_i64().expect("chat_id");
        let content = frame["content"].as_str().expect("content").to_owned();
        chats.entry(chat).or_default().push(content);
    }
    for (chat, contents) in &chats {
        let mut next: HashMap<&str, u64> = HashMap::new();
        for content in contents {
            let (sender, n) = content.rsplit_once(':').expect("<sender>:<n>");
            let n: u64 = n.parse().unwrap();
            let expected = next.entry(sender).or_default();
            assert_eq!(
                n, *expected,
                "chat {chat}: {sender}'s message {n} came where {expected} was due: {contents:?}"
            );
            *expected += 1;
        }
    }
    chats
}

/// A socket that catches up from the start (`?since=0`); its `new_message` frames.
async fn caught_up(app_address: std::net::SocketAddr, user_id: i64) -> Vec<Value> {
    let url = format!(
        "ws://{app_address}/ws/chat?token={}&since=0",
        token(user_id)
    );
    let (stream, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("WebSocket handshake succeeds");
    let mut socket = WsClient { stream };
    let mut frames = Vec::new();
    loop {
        let frame = socket.next().await;
        match frame["action"].as_str() {
            Some("synced") => return frames,
            Some("resync_required") => panic!("a catch-up from 0 fits SYNC_MAX: {frame}"),
            Some("new_message") => frames.push(frame),
            _ => {}
        }
    }
}

/// Three senders spread over the instances each send `ROUNDS` messages into two groups,
/// back to back; two listeners have a socket on every instance.
async fn sends_keep_their_order(instances: usize, partitions: &str) {
    const ROUNDS: usize = 30;
    let first = spawn_app_with(&[("PERSIST_PARTITIONS", partitions)]).await;
    let mut apps = vec![first];
    for _ in 1..instances {
        let sibling = apps[0].sibling().await;
        apps.push(sibling);
    }
    let senders = [1_i64, 2, 3];
    let listeners = [4_i64, 5];
    let groups = [
        apps[0].create_chat(1, true, &[2, 3, 4, 5]).await,
        apps[0].create_chat(2, true, &[1, 3, 4, 5]).await,
    ];
    let mut listening = Vec::new();
    for app in &apps {
        for user in listeners {
            listening.push(app.connect(user).await);
        }
    }
    let mut sending = Vec::new();
    for (i, user) in senders.iter().enumerate() {
        sending.push(apps[i % apps.len()].connect(*user).await);
    }
    for n in 0..ROUNDS {
        for (socket, user) in sending.iter_mut().zip(senders) {
            for group in groups {
                let content = format!("u{user}:{n}");
                let id = format!("{group}-{content}");
                socket
                    .send(json!({"action":"send_message","chat_id":group,"content":content,"client_msg_id":id}))
                    .await;
            }
        }
    }
    for socket in &mut sending {
        acks(socket, ROUNDS * groups.len()).await;
    }
    let total = senders.len() * groups.len() * ROUNDS;
    let mut seen = Vec::new();
    for socket in &mut listening {
        let frames = new_messages(socket, total).await;
        seen.push(in_send_order(&frames));
    }
    // One order per chat, the same on every socket of every instance.
    for other in &seen[1..] {
        assert_eq!(other, &seen[0], "every socket sees each chat in one order");
    }
    // A client that was away gets the same order in its catch-up, from any instance.
    for app in &apps {
        let frames = caught_up(app.address, listeners[0]).await;
        assert_eq!(frames.len(), total);
        assert_eq!(
            in_send_order(&frames),
            seen[0],
            "the catch-up keeps the live order"
        );
    }
}

#[tokio::test]
async fn sends_keep_their_order_on_two_instances_with_one_partition() {
    sends_keep_their_order(2, "1").await;
}

#[tokio::test]
async fn sends_keep_their_order_on_two_instances_with_four_partitions() {
    sends_keep_their_order(2, "4").await;
}

#[tokio::test]
async fn sends_keep_their_order_on_three_instances_with_three_partitions() {
    sends_keep_their_order(3, "3").await;
}

/// A socket that writes to a user by `receiver_id`, back to back, from before their private
/// chat exists: the first send makes the chat, and the socket learns of it mid-stream; its
/// sends stay one way (`chat.in.direct.message`) so they arrive in order, with four
/// partitions too.
#[tokio::test]
async fn private_sends_by_receiver_keep_their_order_once_the_chat_exists() {
    const MESSAGES: usize = 40;
    let app = spawn_app_with(&[("PERSIST_PARTITIONS", "4")]).await;
    let mut bob = app.connect(2).await;
    let mut alice = app.connect(1).await;
    let mut sent = Vec::new();
    let mut received = Vec::new();
    for n in 0..MESSAGES {
        let content = format!("to-user:{n}");
        alice
            .send(json!({"action":"send_message","receiver_id":2,"content":content,"client_msg_id":content}))
            .await;
        sent.push(content);
        if n == MESSAGES / 2 {
            // By now the chat exists; a client may also name it.
            let first = new_messages(&mut bob, 1).await.remove(0);
            let chat = first["chat_id"].clone();
            received.push(first);
            for n in 0..5 {
                let content = format!("to-chat:{n}");
                alice
                    .send(json!({"action":"send_message","chat_id":chat,"content":content,"client_msg_id":content}))
                    .await;
                sent.push(content);
            }
        }
    }
    acks(&mut alice, sent.len()).await;
    received.extend(new_messages(&mut bob, sent.len() - 1).await);
    let contents: Vec<&str> = received
        .iter()
        .map(|f| f["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        contents, sent,
        "one socket's sends to one chat arrive as sent"
    );
    // Which is so because they all took one way: the direct messages' partition.
    let stream = async_nats::jetstream::new(app.nats().await)
        .get_stream("CHAT_IN")
        .await
        .unwrap();
    let direct: usize = {
        use futures_util::StreamExt;
        let mut subjects = stream
            .info_with_subjects("chat.part.*.direct.message")
            .await
            .unwrap();
        let mut count = 0;
        while let Some(subject) = subjects.next().await {
            count += subject.unwrap().1;
        }
        count
    };
    assert_eq!(direct, sent.len(), "every send went by the receiver");
}

/// An instance restarted (it releases what it holds to the other), then the other killed
/// with `kill -9` while it holds the chat's partition and commands stream in: the survivor
/// takes the partition over, and every accepted message is stored once and delivered in send
/// order, live and in the catch-up.
#[tokio::test]
async fn a_killed_holder_hands_its_partitions_over_without_loss_or_reordering() {
    const MESSAGES: usize = 40;
    let settings = [
        ("PERSIST_PARTITIONS", "2"),
        ("PERSIST_HANDOVER", "3s"),
        ("PERSIST_ACK_WAIT", "2s"),
    ];
    let mut a = spawn_app_with(&settings).await;
    let mut b = a.spawn_process().await;
    let group = a.create_chat(1, true, &[2, 3]).await;
    let mut alice = a.connect(1).await;
    alice
        .send_message(json!({"chat_id": group, "content": "warm:0"}))
        .await;
    // A rolling restart of `a`: what it held goes to `b`, which holds the chat's partition
    // once it has written a message of it; `a` comes back on standby.
    drop(alice);
    a.stop().await;
    let mut alice_on_b = connect_at(b.address, 1).await;
    alice_on_b
        .send_message(json!({"chat_id": group, "content": "warm:1"}))
        .await;
    drop(alice_on_b);
    a.start_again().await;
    let mut carol = a.connect(3).await;
    let mut alice = a.connect(1).await;
    let mut bob = a.connect(2).await;

    for n in 0..MESSAGES {
        for (socket, user) in [(&mut alice, 1), (&mut bob, 2)] {
            let content = format!("u{user}:{n}");
            socket
                .send(json!({"action":"send_message","chat_id":group,"content":content,"client_msg_id":content}))
                .await;
        }
        if n == MESSAGES / 4 {
            // Mid-stream: `b` holds the partitions, has commands in hand and unacked.
            b.kill();
        }
    }
    // Accepted by `a`'s gateway, persisted once `a` took the partitions over.
    for socket in [&mut alice, &mut bob] {
        let mut acked = 0;
        while acked < MESSAGES {
            let frame = tokio::time::timeout(FRAME_TIMEOUT * 3, socket.next())
                .await
                .expect("acks come once the partitions moved");
            assert_ne!(frame["action"], "error", "{frame}");
            if frame["action"] == "message_ack" {
                acked += 1;
            }
        }
    }
    let live = new_messages(&mut carol, 2 * MESSAGES).await;
    let live = in_send_order(&live);
    let total = 2 * MESSAGES + 2;
    let stored = crate::helpers::history_field(&a, 3, group, total, "content").await;
    assert_eq!(stored.len(), total, "each message stored once");
    let mut caught_up = caught_up(a.address, 3).await;
    assert_eq!(caught_up.len(), total);
    let warm: Vec<_> = caught_up.drain(..2).map(|f| f["content"].clone()).collect();
    assert_eq!(warm, ["warm:0", "warm:1"]);
    assert_eq!(
        in_send_order(&caught_up),
        live,
        "the catch-up keeps the live order"
    );
    a.stop().await;
}

/// The partition count changes with `jetchat partitions N` while the instances are stopped:
/// refused while a command waits, then the stream, its consumers and the restarted instance
/// follow; messages keep flowing in order, into more partitions and back into fewer.
#[tokio::test]
async fn the_partition_count_changes_with_the_instances_stopped() {
    use jetchat::ops::partitions;

    let mut app = spawn_app_with(&[("PERSIST_PARTITIONS", "1")]).await;
    let bus = app.ops_bus().await;
    let groups = [
        app.create_chat(1, true, &[2]).await,
        app.create_chat(1, true, &[2]).await,
        app.create_chat(1, true, &[2]).await,
    ];
    let mut round = 0;
    let mut send_round = async |app: &crate::helpers::TestApp| {
        let mut alice = app.connect(1).await;
        let mut bob = app.connect(2).await;
        for group in groups {
            alice
                .send_message(json!({"chat_id": group, "content": format!("u1:{round}")}))
                .await;
        }
        let frames = new_messages(&mut bob, groups.len()).await;
        assert!(frames.iter().all(|f| f["content"] == format!("u1:{round}")));
        round += 1;
    };
    send_round(&app).await;
    app.stop().await;

    // A command waiting for the persisters: the partitioning stays.
    crate::helpers::publish_command(
        &app,
        &format!("chat.in.{}.message", groups[0]),
        json!({"v":1,"sender_id":1,"chat_id":groups[0],"content":"waiting","client_msg_id":"waiting"}),
    )
    .await;
    for count in [0, 1025, u16::MAX] {
        let refused = partitions::run(&bus, count).await.unwrap_err().to_string();
        assert!(refused.contains("use 1 to 1024"), "{refused}");
    }
    let refused = partitions::run(&bus, 3).await.unwrap_err().to_string();
    assert!(refused.contains("commands wait"), "{refused}");
    app.start_again().await;
    crate::helpers::pipeline_drained(&app).await;
    app.stop().await;

    let report = partitions::run(&bus, 3).await.expect("changed");
    assert_eq!((report.before, report.after), (1, 3));
    assert_eq!(report.added, ["persister-1", "persister-2"]);
    assert!(report.removed.is_empty());
    assert!(
        partitions::run(&bus, 3).await.is_err(),
        "the same count again is refused"
    );
    // PERSIST_PARTITIONS=1 is the instance's setting; the stream's count wins.
    app.start_again().await;
    send_round(&app).await;
    let consumers = crate::helpers::persister_consumer(&bus.jetstream)
        .await
        .unwrap();
    assert_eq!(consumers.partitions, 3);
    let stored: Vec<String> = {
        let replayed = async_nats::jetstream::new(app.nats().await)
            .get_stream("CHAT_IN")
            .await
            .unwrap()
            .get_last_raw_message_by_subject("chat.part.>")
            .await;
        vec![replayed.map(|m| m.subject.to_string()).unwrap_or_default()]
    };
    assert!(stored[0].starts_with("chat.part."), "{stored:?}");
    app.stop().await;

    let report = partitions::run(&bus, 2).await.expect("changed back");
    assert_eq!((report.before, report.after), (3, 2));
    assert_eq!(report.removed, ["persister-2"]);
    app.start_again().await;
    send_round(&app).await;
    let consumers = crate::helpers::persister_consumer(&bus.jetstream)
        .await
        .unwrap();
    assert_eq!(consumers.partitions, 2);
    // Every message once, in order, in every chat.
    for group in groups {
        let contents = crate::helpers::history_field(&app, 2, group, 3, "content").await;
        let expected: Vec<String> = (0..3).map(|n| format!("u1:{n}")).collect();
        let mut contents = contents;
        contents.retain(|c| c != "waiting");
        assert_eq!(contents, expected, "chat {group}");
    }
    app.stop().await;
}

/// `jetchat_partitions_held` of one instance, from its `/metrics`.
async fn partitions_held(app: &crate::helpers::TestApp) -> u64 {
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("jetchat_partitions_held "))
        .and_then(|value| value.trim().parse().ok())
        .expect("jetchat_partitions_held in /metrics")
}

/// The first instance takes every partition; a second one that joins gets its share once the
/// first steps aside (after a few `PERSIST_HANDOVER`s), while the messages keep their order.
#[tokio::test]
async fn instances_share_the_partitions() {
    let settings = [
        ("PERSIST_PARTITIONS", "4"),
        ("PERSIST_HANDOVER", "2s"),
        ("RATE_MESSAGES_PER_SEC", "0"),
    ];
    let a = spawn_app_with(&settings).await;
    // Groups enough that each partition has some (a hash of the chat id picks it).
    let mut groups = Vec::new();
    for _ in 0..12 {
        groups.push(a.create_chat(1, true, &[2]).await);
    }
    let mut alice = a.connect(1).await;
    let mut bob = a.connect(2).await;
    let mut sent = 0;
    let mut send_round = async |alice: &mut WsClient, bob: &mut WsClient| {
        for &group in &groups {
            alice
                .send_message(json!({"chat_id": group, "content": format!("u1:{sent}")}))
                .await;
        }
        let frames = new_messages(bob, groups.len()).await;
        assert!(frames.iter().all(|f| f["content"] == format!("u1:{sent}")));
        sent += 1;
    };
    send_round(&mut alice, &mut bob).await;
    assert_eq!(
        partitions_held(&a).await,
        4,
        "the only instance holds every partition"
    );

    let b = a.sibling().await;
    let deadline = tokio::time::Instant::now() + crate::helpers::POLL_TIMEOUT;
    loop {
        send_round(&mut alice, &mut bob).await;
        let held = (partitions_held(&a).await, partitions_held(&b).await);
        if held == (2, 2) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the partitions are not shared: {held:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Still every message once and in order in every chat.
    for &group in &groups {
        let contents = crate::helpers::history_field(&a, 2, group, sent, "content").await;
        let expected: Vec<String> = (0..sent).map(|n| format!("u1:{n}")).collect();
        assert_eq!(contents, expected, "chat {group}");
    }
}

/// A socket of `user_id` on `address` that catches up from `since`.
async fn resume(address: std::net::SocketAddr, user_id: i64, since: u64) -> WsClient {
    let url = format!(
        "ws://{address}/ws/chat?token={}&since={since}",
        token(user_id)
    );
    let (stream, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("WebSocket handshake succeeds");
    WsClient { stream }
}

/// What a listener keeps across its sockets: each message once (a catch-up may send again
/// what it had), in the order it came, and the newest cursor.
#[derive(Default)]
struct Listener {
    frames: Vec<Value>,
    ids: std::collections::HashSet<i64>,
    cursor: u64,
}

impl Listener {
    /// Reads `socket` until it has `count` messages or the socket closes.
    async fn read(&mut self, socket: &mut WsClient, count: usize) {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        while self.frames.len() < count {
            let Ok(Some(Ok(Message::Text(text)))) =
                tokio::time::timeout(FRAME_TIMEOUT, socket.stream.next()).await
            else {
                return; // closed by a restart (or nothing more came)
            };
            let frame: Value = serde_json::from_str(&text).unwrap();
            if let Some(cursor) = frame["cursor"].as_u64() {
                self.cursor = self.cursor.max(cursor);
            }
            if frame["action"] == "new_message"
                && self.ids.insert(frame["message_id"].as_i64().unwrap())
            {
                self.frames.push(frame);
            }
        }
    }
}

/// Every instance restarted in turn while two senders, one at a time each, keep sending and a
/// listener follows live, resuming with `?since=` on the other instance whenever its socket
/// closes: the partitions move with each restart, and the listener, a catch-up from the start
/// and history all have each sender's messages once and in order.
#[tokio::test]
async fn a_rolling_restart_of_every_instance_keeps_each_chats_order() {
    const MESSAGES: usize = 45;
    let settings = [
        ("PERSIST_PARTITIONS", "2"),
        ("PERSIST_HANDOVER", "2s"),
        ("RATE_MESSAGES_PER_SEC", "0"),
    ];
    let first = spawn_app_with(&settings).await;
    let second = first.sibling().await;
    let mut apps = [first, second];
    let group = apps[0].create_chat(1, true, &[2, 3]).await;
    let mut senders = [
        (1_i64, 0_usize, apps[0].connect(1).await),
        (2, 1, apps[1].connect(2).await),
    ];
    let mut listener = Listener::default();
    let mut listening = (1_usize, apps[1].connect(3).await);
    for n in 0..MESSAGES {
        let restart = match n {
            n if n == MESSAGES / 3 => Some(0),
            n if n == 2 * MESSAGES / 3 => Some(1),
            _ => None,
        };
        if let Some(i) = restart {
            let other = 1 - i;
            apps[i].stop().await;
            for (user, on, socket) in senders.iter_mut() {
                if *on == i {
                    *socket = apps[other].connect(*user).await;
                    *on = other;
                }
            }
            if listening.0 == i {
                listener.read(&mut listening.1, usize::MAX).await;
                listening = (other, resume(apps[other].address, 3, listener.cursor).await);
            }
            apps[i].start_again().await;
        }
        for (user, _, socket) in senders.iter_mut() {
            let content = format!("u{user}:{n}");
            socket
                .send(json!({"action":"send_message","chat_id":group,"content":content,"client_msg_id":content}))
                .await;
            loop {
                let frame = socket.next().await;
                assert_ne!(frame["action"], "error", "{frame}");
                if frame["action"] == "message_accepted" && frame["client_msg_id"] == content {
                    break;
                }
            }
        }
    }
    listener.read(&mut listening.1, 2 * MESSAGES).await;
    assert_eq!(
        listener.frames.len(),
        2 * MESSAGES,
        "the listener got every message"
    );
    let live = in_send_order(&listener.frames);
    let mut caught_up = caught_up(apps[0].address, 3).await;
    caught_up.dedup_by_key(|f| f["message_id"].clone());
    assert_eq!(caught_up.len(), 2 * MESSAGES);
    assert_eq!(
        in_send_order(&caught_up),
        live,
        "the catch-up has the live order"
    );
    let stored = crate::helpers::history_field(&apps[0], 3, group, 2 * MESSAGES, "content").await;
    assert_eq!(stored.len(), 2 * MESSAGES, "each message stored once");
}
