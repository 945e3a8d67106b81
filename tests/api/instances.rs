//! Several jetchat instances sharing one NATS and one database work as one service.

use sea_orm::{Database, EntityTrait, QueryOrder};
use serde_json::json;

use jetchat::store::message;

use crate::helpers::spawn_app;

#[tokio::test]
async fn users_on_different_instances_chat_privately_and_in_groups() {
    let a = spawn_app().await;
    let b = a.sibling().await;
    let mut alice = a.connect(1).await;
    let mut bob = b.connect(2).await;

    let ack = alice
        .send_message(json!({"receiver_id": 2, "content": "across instances"}))
        .await;
    let new = bob.expect("new_message").await;
    assert_eq!(new["message_id"], ack["message_id"]);
    bob.send(json!({"action": "acknowledge", "message_id": new["message_id"]}))
        .await;
    assert_eq!(alice.expect("status_update").await["status"], "read");

    let group = b.create_chat(2, true, &[1, 3]).await;
    let mut carol = a.connect(3).await;
    let ack = bob
        .send_message(json!({"chat_id": group, "content": "hello group"}))
        .await;
    assert_eq!(
        alice.expect("new_message").await["message_id"],
        ack["message_id"]
    );
    assert_eq!(
        carol.expect("new_message").await["message_id"],
        ack["message_id"]
    );
}

#[tokio::test]
async fn a_user_with_sockets_on_both_instances_sees_everything_once_per_socket() {
    let a = spawn_app().await;
    let b = a.sibling().await;
    let group = a.create_chat(1, true, &[2]).await;
    let mut bob_on_a = a.connect(2).await;
    let mut bob_on_b = b.connect(2).await;
    let mut alice = a.connect(1).await;
    for i in 0..5 {
        alice
            .send_message(json!({"chat_id": group, "content": format!("m{i}")}))
            .await;
    }
    for socket in [&mut bob_on_a, &mut bob_on_b] {
        for i in 0..5 {
            assert_eq!(
                socket.expect("new_message").await["content"],
                format!("m{i}")
            );
        }
        socket
            .expect_silence(std::time::Duration::from_millis(300))
            .await;
    }
}

#[tokio::test]
async fn persisters_on_both_instances_write_each_message_once_in_stream_order() {
    let a = spawn_app().await;
    let b = a.sibling().await;
    let group = a.create_chat(1, true, &[2, 3, 4]).await;
    let mut senders = vec![
        a.connect(1).await,
        b.connect(2).await,
        a.connect(3).await,
        b.connect(4).await,
    ];
    // Interleaved sends from four users on two instances; each waits for its acceptance.
    for round in 0..25 {
        for (i, socket) in senders.iter_mut().enumerate() {
            let id = format!("u{i}-{round}");
            socket.send(json!({"action":"send_message","chat_id":group,"content":id,"client_msg_id":id})).await;
        }
    }
    for socket in &mut senders {
        let mut acked = 0;
        while acked < 25 {
            let frame = socket.next().await;
            assert_ne!(frame["action"], "error", "{frame}");
            if frame["action"] == "message_ack" {
                acked += 1;
            }
        }
    }
    let db = Database::connect(&a.database_url).await.unwrap();
    let rows = message::Entity::find()
        .order_by_asc(message::Column::Id)
        .all(&db)
        .await
        .unwrap();
    assert_eq!(
        rows.len(),
        100,
        "every accepted message stored exactly once"
    );
    for row in &rows {
        assert_eq!(row.id, row.stream_seq, "ids follow the stream");
    }
    // Each sender's messages are stored in the order it sent them.
    for i in 0..4 {
        let mine: Vec<&str> = rows
            .iter()
            .map(|r| r.content.as_str())
            .filter(|c| c.starts_with(&format!("u{i}-")))
            .collect();
        let expected: Vec<String> = (0..25).map(|round| format!("u{i}-{round}")).collect();
        assert_eq!(mine, expected);
    }
}

/// Two instances' persisters on one database: the second writer to begin waits for the first
/// to commit, then sees its work. On SQLite a transaction that read before the other committed
/// and wrote after used to fail with `database is locked` (retried, but noisy).
#[tokio::test]
async fn a_writer_that_begins_while_another_writes_waits_its_turn_instead_of_failing() {
    use jetchat::store::{self, changes};
    use sea_orm::{ConnectionTrait, Statement};

    let app = spawn_app().await;
    let first = store::connect_writer(&app.database_url).await.unwrap();
    let second = store::connect_writer(&app.database_url).await.unwrap();

    let writing = store::begin_write(&first).await.unwrap();
    let mine = changes::take_cursors(&writing, 1).await.unwrap();

    let (read, has_read) = tokio::sync::oneshot::channel();
    let other = tokio::spawn(async move {
        let txn = store::begin_write(&second).await?;
        // A batch reads before it writes.
        txn.query_one_raw(Statement::from_string(
            txn.get_database_backend(),
            "SELECT COUNT(*) FROM messages",
        ))
        .await?;
        let _ = read.send(());
        let theirs = changes::take_cursors(&txn, 1).await?;
        txn.commit().await?;
        Ok::<u64, sea_orm::DbErr>(theirs)
    });
    // Lets the other read first where it can (a deferred SQLite transaction, PostgreSQL); an
    // immediate SQLite transaction waits in BEGIN, so the first commits without it.
    let _ = tokio::time::timeout(std::time::Duration::from_millis(300), has_read).await;
    writing.commit().await.unwrap();

    let theirs = other
        .await
        .unwrap()
        .expect("the second writer waits for the first instead of failing");
    assert!(
        theirs > mine,
        "it saw the first writer's commit: {theirs} after {mine}"
    );
}
