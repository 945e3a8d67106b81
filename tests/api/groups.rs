//! Groups their members run: three users run a group over REST and the socket (the owner
//! adds, appoints an admin, the admin removes a member and deletes a message, a member is
//! refused what their role does not allow, the owner leaves and the admin takes over, then
//! deletes the group); the catch-up replays every group change after a reconnect; Django's
//! commands act as the system; every refusal carries its code.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    TestApp, WsClient, next_events, pipeline_drained, publish_command, spawn_app, token,
    without_cursor,
};

const ALICE: i64 = 1;
const BOB: i64 = 2;
const CAROL: i64 = 3;

impl TestApp {
    /// A request with `method` as `user_id`, with a JSON body when given.
    async fn call(
        &self,
        method: reqwest::Method,
        user_id: i64,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .request(method, self.url(path))
            .bearer_auth(token(user_id));
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request sent")
    }

    /// `user_id`'s summary of `chat_id` in `GET /chats/`, if listed.
    async fn summary(&self, user_id: i64, chat_id: i64) -> Option<Value> {
        let chats = self.get_json(user_id, "/chats/").await;
        chats
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["chat_id"] == chat_id)
            .cloned()
    }
}

/// The status, detail and code of a refused request (REST answers carry the socket's codes).
async fn refused(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let field = |name: &str| body[name].as_str().unwrap_or_default().to_owned();
    (status, field("detail"), field("code"))
}

/// Sends a group action named `command_id` and waits for its `command_applied`, passing
/// over the change's own frames (returned).
async fn act(client: &mut WsClient, mut frame: Value, command_id: &str) -> Vec<Value> {
    frame["command_id"] = json!(command_id);
    client.send(frame).await;
    let mut seen = Vec::new();
    loop {
        let frame = client.next().await;
        if frame["action"] == "command_applied" && frame["command_id"] == command_id {
            return seen;
        }
        assert_ne!(frame["action"], "error", "{command_id} refused: {frame}");
        seen.push(frame);
    }
}

#[tokio::test]
async fn three_users_run_a_group() {
    let app = spawn_app().await;
    let group = app.create_chat(ALICE, true, &[]).await;
    let mut alice = app.connect(ALICE).await;
    let mut bob = app.connect(BOB).await;
    let mut carol = app.connect(CAROL).await;

    // The owner adds B and C over REST: the answer is the group as it is now.
    let answer = app
        .call(
            reqwest::Method::POST,
            ALICE,
            &format!("/chats/{group}/members"),
            Some(json!({"user_ids": [BOB, CAROL]})),
        )
        .await;
    assert_eq!(answer.status(), 200);
    let view: Value = answer.json().await.unwrap();
    assert_eq!(view["member_ids"], json!([ALICE, BOB, CAROL]));
    assert_eq!(view["owner_id"], ALICE);
    assert_eq!(view["admin_ids"], json!([]));
    assert_eq!(view["settings"], json!({"members_can_add": false}));
    // Each new member hears of their own join (and of later ones) with the group as it is.
    for (client, joins) in [(&mut alice, 2), (&mut bob, 2), (&mut carol, 1)] {
        for _ in 0..joins {
            let added = client.expect("member_added").await;
            assert_eq!(added["added_by"], ALICE, "{added}");
        }
    }

    // The owner appoints B an admin.
    let answer = app
        .call(
            reqwest::Method::PUT,
            ALICE,
            &format!("/chats/{group}/members/{BOB}/role"),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.json::<Value>().await.unwrap()["admin_ids"],
        json!([BOB])
    );
    for client in [&mut alice, &mut bob, &mut carol] {
        assert_eq!(
            without_cursor(client.expect("member_role_changed").await),
            json!({"action": "member_role_changed", "chat_id": group, "user_id": BOB,
                   "role": "admin", "changed_by": ALICE})
        );
    }
    let summary = app.summary(CAROL, group).await.unwrap();
    assert_eq!(summary["role"], "member");
    assert_eq!(summary["owner_id"], ALICE);
    assert_eq!(summary["admin_ids"], json!([BOB]));
    assert_eq!(app.summary(BOB, group).await.unwrap()["role"], "admin");

    // C, a plain member, is refused every admin action, with the role it needs.
    let (status, detail, code) = refused(
        app.call(
            reqwest::Method::PATCH,
            CAROL,
            &format!("/chats/{group}"),
            Some(json!({"name": "mine now"})),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str(), detail.contains("admin role")),
        (403, "forbidden", true),
        "{detail}"
    );
    carol
        .send(
            json!({"action": "remove_member", "chat_id": group, "user_id": BOB,
                     "command_id": "c-rm-b"}),
        )
        .await;
    let error = carol.expect_error("forbidden").await;
    assert_eq!(error["command_id"], "c-rm-b");
    assert!(
        error["detail"].as_str().unwrap().contains("owner role"),
        "{error}"
    );
    carol
        .send(
            json!({"action": "set_member_role", "chat_id": group, "user_id": CAROL,
                     "role": "admin", "command_id": "c-promote"}),
        )
        .await;
    assert_eq!(
        carol.expect_error("forbidden").await["command_id"],
        "c-promote"
    );
    carol
        .send(
            json!({"action": "add_members", "chat_id": group, "user_ids": [4],
                     "command_id": "c-add"}),
        )
        .await;
    carol.expect_error("forbidden").await;
    carol
        .send(json!({"action": "delete_chat", "chat_id": group, "command_id": "c-del"}))
        .await;
    carol.expect_error("forbidden").await;
    let (status, _, code) = refused(
        app.call(
            reqwest::Method::DELETE,
            CAROL,
            &format!("/chats/{group}"),
            None,
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));

    // The admin renames the group and lets members add others, over the socket.
    let frames = act(
        &mut bob,
        json!({"action": "update_chat", "chat_id": group, "name": "  Team  ",
               "settings": {"members_can_add": true}}),
        "b-update",
    )
    .await;
    assert_eq!(
        frames
            .iter()
            .map(|f| f["action"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["chat_renamed", "chat_updated"]
    );
    assert_eq!(
        without_cursor(carol.expect("chat_renamed").await),
        json!({"action": "chat_renamed", "chat_id": group, "name": "Team"}),
        "clients that know only chat_renamed still hear of a new name"
    );
    assert_eq!(
        without_cursor(carol.expect("chat_updated").await),
        json!({"action": "chat_updated", "chat_id": group, "name": "Team",
               "settings": {"members_can_add": true}, "updated_by": BOB})
    );
    for client in [&mut alice] {
        client.expect("chat_renamed").await;
        client.expect("chat_updated").await;
    }

    // The admin deletes the owner's message: the tombstone says who.
    let message = alice
        .send_message(json!({"chat_id": group, "content": "oops"}))
        .await;
    bob.expect("new_message").await;
    carol.expect("new_message").await;
    let deleted = app
        .call(
            reqwest::Method::DELETE,
            BOB,
            &format!("/chats/{group}/messages/{}", message["message_id"]),
            None,
        )
        .await;
    assert_eq!(deleted.status(), 204);
    for client in [&mut alice, &mut bob, &mut carol] {
        let frame = client.expect("message_deleted").await;
        assert_eq!(frame["message_id"], message["message_id"]);
        assert_eq!(frame["deleted_by"], BOB, "{frame}");
    }
    let tombstone = app
        .history_entry(CAROL, group, &message["message_id"])
        .await;
    assert_eq!(
        (&tombstone["deleted"], &tombstone["deleted_by"]),
        (&json!(true), &json!(BOB)),
        "history's tombstone says who: {tombstone}"
    );
    // A member may not delete another's message.
    let other = bob
        .send_message(json!({"chat_id": group, "content": "mine"}))
        .await;
    alice.expect("new_message").await;
    carol.expect("new_message").await;
    carol
        .send(json!({"action": "delete_message", "chat_id": group,
                     "message_id": other["message_id"], "command_id": "c-del-msg"}))
        .await;
    let error = carol.expect_error("forbidden").await;
    assert!(
        error["detail"].as_str().unwrap().contains("admin role"),
        "{error}"
    );

    // The admin removes C: C hears it, then nothing more of the group.
    let frames = act(
        &mut bob,
        json!({"action": "remove_member", "chat_id": group, "user_id": CAROL}),
        "b-rm-c",
    )
    .await;
    assert_eq!(frames[0]["action"], "member_removed");
    let removed = carol.expect("member_removed").await;
    assert_eq!(
        (&removed["user_id"], &removed["removed_by"]),
        (&json!(CAROL), &json!(BOB))
    );
    alice.expect("member_removed").await;
    alice
        .send_message(json!({"chat_id": group, "content": "without carol"}))
        .await;
    bob.expect("new_message").await;
    carol.expect_silence(Duration::from_millis(300)).await;
    assert!(app.summary(CAROL, group).await.is_none());

    // The owner leaves: the admin takes the group over.
    let left = app
        .call(
            reqwest::Method::DELETE,
            ALICE,
            &format!("/chats/{group}/members/{ALICE}"),
            None,
        )
        .await;
    assert_eq!(left.status(), 204);
    let removed = bob.expect("member_removed").await;
    assert_eq!(
        (&removed["user_id"], &removed["removed_by"]),
        (&json!(ALICE), &json!(ALICE))
    );
    assert_eq!(
        without_cursor(bob.expect("member_role_changed").await),
        json!({"action": "member_role_changed", "chat_id": group, "user_id": BOB,
               "role": "owner"})
    );
    let summary = app.summary(BOB, group).await.unwrap();
    assert_eq!(
        (&summary["role"], &summary["owner_id"]),
        (&json!("owner"), &json!(BOB))
    );
    assert_eq!(summary["admin_ids"], json!([]));

    // The new owner deletes the group: history gone for everyone, search included.
    let found = |body: Value| body.as_array().map_or(0, Vec::len);
    let before = crate::search::search(&app, BOB, &[("q", "carol")]).await;
    assert_eq!(
        found(before.json().await.unwrap()),
        1,
        "\"without carol\" is found"
    );
    let frames = act(
        &mut bob,
        json!({"action": "delete_chat", "chat_id": group}),
        "b-delete",
    )
    .await;
    assert_eq!(
        without_cursor(frames[0].clone()),
        json!({"action": "chat_deleted", "chat_id": group, "deleted_by": BOB})
    );
    assert!(app.summary(BOB, group).await.is_none());
    let history = app.get(BOB, &format!("/chats/{group}/messages")).await;
    assert_eq!(history.status(), 404);
    let after = crate::search::search(&app, BOB, &[("q", "carol")]).await;
    assert_eq!(found(after.json().await.unwrap()), 0);
    // A repeat of the deletion is answered the same (over REST: the socket knows the group
    // is gone); a stranger learns nothing.
    let again = app
        .call(
            reqwest::Method::DELETE,
            BOB,
            &format!("/chats/{group}"),
            None,
        )
        .await;
    assert_eq!(again.status(), 204);
    let stranger = app
        .call(reqwest::Method::DELETE, 9, &format!("/chats/{group}"), None)
        .await;
    assert_eq!(stranger.status(), 404);
}

/// A socket opened with `?since=`: the frames of its catch-up up to `synced`.
async fn caught_up(app: &TestApp, user_id: i64, since: u64) -> Vec<Value> {
    let url = format!("{}&since={since}", app.ws_url(&token(user_id)));
    let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut client = WsClient { stream };
    client.expect("unread").await;
    let mut frames = Vec::new();
    loop {
        let frame = client.next().await;
        match frame["action"].as_str() {
            Some("synced") => return frames,
            Some("resync_required") => panic!("no exact catch-up: {frame}"),
            _ => frames.push(frame),
        }
    }
}

#[tokio::test]
async fn the_catch_up_replays_every_group_change_after_a_reconnect() {
    let app = spawn_app().await;
    let group = app.create_chat(ALICE, true, &[BOB, CAROL]).await;
    let doomed = app.create_chat(ALICE, true, &[CAROL]).await;
    let mut alice = app.connect(ALICE).await;
    let mut carol = app.connect(CAROL).await;
    let doomed_message = alice
        .send_message(json!({"chat_id": doomed, "content": "soon gone"}))
        .await;
    carol.expect("new_message").await;
    drop(carol);
    pipeline_drained(&app).await;
    let since = {
        let url = app.ws_url(&token(CAROL));
        let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut client = WsClient { stream };
        client.expect("unread").await["cursor"].as_u64().unwrap()
    };

    // While C is away: a role, a rename with settings, a new member, a removal, an edit in
    // the group that is then deleted, and its deletion.
    act(
        &mut alice,
        json!({"action": "set_member_role", "chat_id": group, "user_id": BOB, "role": "admin"}),
        "a-admin-b",
    )
    .await;
    act(
        &mut alice,
        json!({"action": "update_chat", "chat_id": group, "name": "renamed",
               "settings": {"members_can_add": true}}),
        "a-update",
    )
    .await;
    act(
        &mut alice,
        json!({"action": "add_members", "chat_id": group, "user_ids": [4]}),
        "a-add-4",
    )
    .await;
    act(
        &mut alice,
        json!({"action": "remove_member", "chat_id": group, "user_id": 4}),
        "a-rm-4",
    )
    .await;
    act(
        &mut alice,
        json!({"action": "edit_message", "chat_id": doomed,
               "message_id": doomed_message["message_id"], "content": "secret"}),
        "a-edit",
    )
    .await;
    act(
        &mut alice,
        json!({"action": "delete_chat", "chat_id": doomed}),
        "a-delete",
    )
    .await;
    pipeline_drained(&app).await;

    let frames: Vec<Value> = caught_up(&app, CAROL, since)
        .await
        .into_iter()
        .filter(|f| f["cursor"].as_u64().unwrap() > since)
        .collect();
    let actions: Vec<&str> = frames
        .iter()
        .map(|f| f["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "member_role_changed",
            "chat_renamed",
            "chat_updated",
            "member_added",
            "member_removed",
            "chat_deleted"
        ],
        "{frames:#?}"
    );
    assert_eq!(frames[0]["role"], "admin");
    assert_eq!(frames[2]["settings"]["members_can_add"], true);
    assert_eq!(frames[5]["chat_id"], doomed);
    assert!(
        !frames.iter().any(|f| f.to_string().contains("secret")),
        "a deleted group's history is not replayed"
    );
    let cursors: Vec<u64> = frames
        .iter()
        .map(|f| f["cursor"].as_u64().unwrap())
        .collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "{cursors:?}");

    // GET /sync pages the same changes.
    let page = app
        .get_json(CAROL, &format!("/sync?since={}", cursors[0] - 1))
        .await;
    assert!(page.to_string().contains("chat_deleted"), "{page}");
}

#[tokio::test]
async fn refusals_carry_their_codes_and_garbage_changes_nothing() {
    let app = spawn_app().await;
    let group = app.create_chat(ALICE, true, &[BOB]).await;
    let private = app.create_chat(ALICE, false, &[BOB]).await;
    let mut alice = app.connect(ALICE).await;
    let mut stranger = app.connect(9).await;

    // Not a member: not_a_member, over the socket and REST alike.
    stranger
        .send(
            json!({"action": "add_members", "chat_id": group, "user_ids": [9],
                     "command_id": "s-add"}),
        )
        .await;
    assert_eq!(
        stranger.expect_error("not_a_member").await["command_id"],
        "s-add"
    );
    let (status, _, code) = refused(
        app.call(
            reqwest::Method::POST,
            9,
            &format!("/chats/{group}/members"),
            Some(json!({"user_ids": [9]})),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (403, "not_a_member"));
    let (status, detail, code) = refused(
        app.call(
            reqwest::Method::PUT,
            ALICE,
            &format!("/chats/{group}/members/7/role"),
            Some(json!({"role": "admin"})),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (403, "not_a_member"),
        "a role for a user who is not a member: {detail}"
    );

    // Unknown roles, the owner stepping down, removing the owner.
    for role in ["root", "Admin", "", "owner\u{0}"] {
        let (status, _, code) = refused(
            app.call(
                reqwest::Method::PUT,
                ALICE,
                &format!("/chats/{group}/members/{BOB}/role"),
                Some(json!({"role": role})),
            )
            .await,
        )
        .await;
        assert_eq!(
            (status, code.as_str()),
            (422, "invalid_role"),
            "role {role:?}"
        );
    }
    alice
        .send(
            json!({"action": "set_member_role", "chat_id": group, "user_id": BOB,
                     "role": "superuser", "command_id": "a-bad-role"}),
        )
        .await;
    assert_eq!(
        alice.expect_error("invalid_role").await["command_id"],
        "a-bad-role"
    );
    alice
        .send(
            json!({"action": "set_member_role", "chat_id": group, "user_id": ALICE,
                     "role": "member", "command_id": "a-step-down"}),
        )
        .await;
    alice.expect_error("owner_required").await;
    let (status, _, code) = refused(
        app.call(
            reqwest::Method::PUT,
            ALICE,
            &format!("/chats/{group}/members/{ALICE}/role"),
            Some(json!({"role": "admin"})),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (422, "owner_required"));
    act(
        &mut alice,
        json!({"action": "set_member_role", "chat_id": group, "user_id": BOB, "role": "admin"}),
        "a-admin-b",
    )
    .await;
    let (status, detail, code) = refused(
        app.call(
            reqwest::Method::DELETE,
            BOB,
            &format!("/chats/{group}/members/{ALICE}"),
            None,
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (403, "forbidden"), "{detail}");
    assert!(detail.contains("owner cannot be removed"), "{detail}");

    // A private chat has no roles to give, no settings, and cannot be deleted.
    for (method, path, body) in [
        (
            reqwest::Method::PUT,
            format!("/chats/{private}/members/{BOB}/role"),
            Some(json!({"role": "admin"})),
        ),
        (
            reqwest::Method::PATCH,
            format!("/chats/{private}"),
            Some(json!({"name": "x"})),
        ),
        (reqwest::Method::DELETE, format!("/chats/{private}"), None),
        (
            reqwest::Method::POST,
            format!("/chats/{private}/members"),
            Some(json!({"user_ids": [3]})),
        ),
    ] {
        let (status, detail, code) =
            refused(app.call(method.clone(), ALICE, &path, body).await).await;
        assert_eq!(
            (status, code.as_str()),
            (422, "not_a_group"),
            "{method} {path}: {detail}"
        );
    }

    // Garbage: ids that are no ids, 0, negative, i64::MAX, NUL, bad bodies.
    let max = i64::MAX;
    for (method, path, body, expected) in [
        (
            reqwest::Method::POST,
            format!("/chats/{group}/members"),
            Some(json!({"user_ids": [0]})),
            422,
        ),
        (
            reqwest::Method::POST,
            format!("/chats/{group}/members"),
            Some(json!({"user_ids": [-5]})),
            422,
        ),
        (
            reqwest::Method::POST,
            format!("/chats/{group}/members"),
            Some(json!({"user_ids": []})),
            422,
        ),
        (
            reqwest::Method::POST,
            format!("/chats/{group}/members"),
            Some(json!({"user_ids": "3"})),
            422,
        ),
        (
            reqwest::Method::POST,
            format!("/chats/{group}/members"),
            Some(json!([3])),
            422,
        ),
        (
            reqwest::Method::POST,
            format!("/chats/{max}/members"),
            Some(json!({"user_ids": [3]})),
            404,
        ),
        (
            reqwest::Method::POST,
            "/chats/0/members".to_owned(),
            Some(json!({"user_ids": [3]})),
            422,
        ),
        (
            reqwest::Method::POST,
            "/chats/x/members".to_owned(),
            Some(json!({"user_ids": [3]})),
            422,
        ),
        (
            reqwest::Method::DELETE,
            format!("/chats/{group}/members/-1"),
            None,
            422,
        ),
        (
            reqwest::Method::DELETE,
            format!("/chats/{group}/members/99999999999999999999"),
            None,
            422,
        ),
        (
            reqwest::Method::PATCH,
            format!("/chats/{group}"),
            Some(json!({})),
            422,
        ),
        (
            reqwest::Method::PATCH,
            format!("/chats/{group}"),
            Some(json!({"name": "a\u{0}b"})),
            422,
        ),
        (
            reqwest::Method::PATCH,
            format!("/chats/{group}"),
            Some(json!({"name": "   "})),
            422,
        ),
        (
            reqwest::Method::PATCH,
            format!("/chats/{group}"),
            Some(json!({"settings": {"members_can_add": "yes"}})),
            422,
        ),
        (
            reqwest::Method::PATCH,
            format!("/chats/{max}"),
            Some(json!({"name": "x"})),
            404,
        ),
        (reqwest::Method::DELETE, format!("/chats/{max}"), None, 404),
        (reqwest::Method::DELETE, "/chats/-3".to_owned(), None, 422),
        (
            reqwest::Method::PUT,
            format!("/chats/{group}/members/{BOB}/role"),
            Some(json!({})),
            422,
        ),
        (
            reqwest::Method::PUT,
            format!("/chats/{group}/members/0/role"),
            Some(json!({"role": "admin"})),
            422,
        ),
    ] {
        let (status, detail, code) =
            refused(app.call(method.clone(), ALICE, &path, body).await).await;
        assert_eq!(status, expected, "{method} {path}: {detail}");
        assert!(!code.is_empty(), "{method} {path}: a code");
    }
    for (frame, code) in [
        (
            json!({"action": "add_members", "chat_id": group}),
            "missing_field",
        ),
        (
            json!({"action": "add_members", "chat_id": group, "user_ids": [0]}),
            "invalid_member",
        ),
        (
            json!({"action": "add_members", "chat_id": group, "user_ids": "x"}),
            "invalid_field",
        ),
        (
            json!({"action": "remove_member", "chat_id": group}),
            "missing_field",
        ),
        (
            json!({"action": "remove_member", "chat_id": -1, "user_id": 2}),
            "invalid_field",
        ),
        (
            json!({"action": "set_member_role", "chat_id": group, "user_id": BOB}),
            "missing_field",
        ),
        (
            json!({"action": "update_chat", "chat_id": group}),
            "missing_field",
        ),
        (
            json!({"action": "update_chat", "chat_id": group, "name": "x\u{0}"}),
            "invalid_name",
        ),
        (json!({"action": "delete_chat"}), "missing_field"),
        (
            json!({"action": "leave_chat", "chat_id": group, "command_id": ""}),
            "invalid_field",
        ),
    ] {
        alice.send(frame.clone()).await;
        alice.expect_error(code).await;
    }
    alice
        .send(json!({"action": "delete_chat", "chat_id": max, "command_id": "a-max"}))
        .await;
    alice.expect_error("not_a_member").await;

    // After all that the group is as it was, and messages still flow.
    let summary = app.summary(ALICE, group).await.unwrap();
    assert_eq!(summary["member_ids"], json!([ALICE, BOB]));
    assert_eq!(
        (&summary["owner_id"], &summary["admin_ids"]),
        (&json!(ALICE), &json!([BOB]))
    );
    alice
        .send_message(json!({"chat_id": group, "content": "still here"}))
        .await;
}

#[tokio::test]
async fn repeats_are_applied_once_and_a_handover_repeated_is_still_applied() {
    let app = spawn_app().await;
    let group = app.create_chat(ALICE, true, &[BOB]).await;
    let mut alice = app.connect(ALICE).await;
    let mut bob = app.connect(BOB).await;

    let first = act(
        &mut alice,
        json!({"action": "set_member_role", "chat_id": group, "user_id": BOB, "role": "admin"}),
        "a-admin-b",
    )
    .await;
    assert_eq!(first.len(), 1, "{first:?}");
    bob.expect("member_role_changed").await;
    let again = act(
        &mut alice,
        json!({"action": "set_member_role", "chat_id": group, "user_id": BOB, "role": "admin"}),
        "a-admin-b",
    )
    .await;
    assert!(again.is_empty(), "nothing changes again: {again:?}");

    // The handover: B owner, A admin. Its repeat (A no longer the owner) is still applied.
    let handover = act(
        &mut alice,
        json!({"action": "set_member_role", "chat_id": group, "user_id": BOB, "role": "owner"}),
        "a-hand-over",
    )
    .await;
    let roles: Vec<(i64, &str)> = handover
        .iter()
        .map(|f| (f["user_id"].as_i64().unwrap(), f["role"].as_str().unwrap()))
        .collect();
    assert_eq!(roles, [(ALICE, "admin"), (BOB, "owner")]);
    let cursor = handover[1]["cursor"].clone();
    let repeat = act(
        &mut alice,
        json!({"action": "set_member_role", "chat_id": group, "user_id": BOB, "role": "owner"}),
        "a-hand-over",
    )
    .await;
    assert_eq!(repeat.len(), 1, "{repeat:?}");
    assert_eq!(
        repeat[0]["cursor"], cursor,
        "the same change, its cursor kept"
    );
    let summary = app.summary(BOB, group).await.unwrap();
    assert_eq!(
        (&summary["owner_id"], &summary["admin_ids"]),
        (&json!(BOB), &json!([ALICE]))
    );

    // Racing removals of each other: whichever the persister takes first wins, the other is
    // refused (A, an admin, may not remove the owner).
    alice
        .send(
            json!({"action": "remove_member", "chat_id": group, "user_id": BOB,
                     "command_id": "race-a"}),
        )
        .await;
    bob.send(
        json!({"action": "remove_member", "chat_id": group, "user_id": ALICE,
                    "command_id": "race-b"}),
    )
    .await;
    let error = loop {
        let frame = alice.next().await;
        if frame["action"] == "error" {
            break frame;
        }
    };
    assert_eq!(error["command_id"], "race-a");
    assert!(
        error["code"] == "forbidden" || error["code"] == "not_a_member",
        "refused as an admin, or as one removed already: {error}"
    );
    pipeline_drained(&app).await;
    let summary = app.summary(BOB, group).await.unwrap();
    assert_eq!(summary["member_ids"], json!([BOB]));
}

#[tokio::test]
async fn django_acts_as_the_system_and_its_old_commands_still_work() {
    let app = spawn_app().await;
    let group = app.create_chat(ALICE, true, &[BOB, CAROL]).await;
    let mut bob = app.connect(BOB).await;
    let client = app.nats().await;
    let mut events = client.subscribe("chat.events.>").await.unwrap();
    client.flush().await.unwrap();

    // No actor: any role, any settings, whatever the members' roles.
    publish_command(
        &app,
        &format!("chat.in.{group}.set_member_role"),
        json!({"command_id": "dj-role", "user_id": CAROL, "role": "admin"}),
    )
    .await;
    assert_eq!(bob.expect("member_role_changed").await["user_id"], CAROL);
    publish_command(
        &app,
        &format!("chat.in.{group}.update_chat"),
        json!({"command_id": "dj-settings", "settings": {"members_can_add": true}}),
    )
    .await;
    let updated = bob.expect("chat_updated").await;
    assert_eq!(updated["settings"]["members_can_add"], true);
    assert!(updated.get("updated_by").is_none(), "{updated}");
    // With members_can_add on, a plain member adds someone.
    let added = app
        .call(
            reqwest::Method::POST,
            BOB,
            &format!("/chats/{group}/members"),
            Some(json!({"user_ids": [5]})),
        )
        .await;
    assert_eq!(added.status(), 200);
    assert_eq!(bob.expect("member_added").await["added_by"], BOB);
    // The old commands as before: rename, add, remove (the owner too: a successor follows).
    publish_command(
        &app,
        &format!("chat.in.{group}.rename"),
        json!({"command_id": "dj-rename", "name": "by django"}),
    )
    .await;
    bob.expect("chat_renamed").await;
    bob.expect("chat_updated").await;
    publish_command(
        &app,
        &format!("chat.in.{group}.remove_members"),
        json!({"command_id": "dj-rm-owner", "user_ids": [ALICE]}),
    )
    .await;
    assert_eq!(bob.expect("member_removed").await["user_id"], ALICE);
    let heir = bob.expect("member_role_changed").await;
    assert_eq!(
        (&heir["user_id"], &heir["role"]),
        (&json!(CAROL), &json!("owner")),
        "the admin"
    );
    // With an actor, Django's command is judged like a member's.
    publish_command(
        &app,
        &format!("chat.in.{group}.delete_chat"),
        json!({"command_id": "dj-del-as-bob", "actor_id": BOB}),
    )
    .await;
    assert_eq!(
        rejected(&mut events).await,
        ("dj-del-as-bob".into(), "forbidden".into())
    );
    // Garbage on NATS is refused with its code, and changes nothing.
    for (command, code) in [
        (
            json!({"command_id": "dj-king", "user_id": BOB, "role": "king"}),
            "invalid_command",
        ),
        (
            json!({"command_id": "dj-zero", "user_id": 0, "role": "admin"}),
            "invalid_member",
        ),
        (
            json!({"command_id": "dj-neg", "user_id": BOB, "role": "admin", "actor_id": -1}),
            "invalid_field",
        ),
        (
            json!({"command_id": "dj-stranger", "user_id": 99, "role": "admin"}),
            "not_a_member",
        ),
        (
            json!({"command_id": "dj-demote", "user_id": CAROL, "role": "member"}),
            "owner_required",
        ),
    ] {
        let id = command["command_id"].as_str().unwrap().to_owned();
        publish_command(&app, &format!("chat.in.{group}.set_member_role"), command).await;
        assert_eq!(rejected(&mut events).await, (id, code.to_owned()));
    }
    publish_command(
        &app,
        &format!("chat.in.{group}.delete_chat"),
        json!({"command_id": "dj-del"}),
    )
    .await;
    let deleted = bob.expect("chat_deleted").await;
    assert!(deleted.get("deleted_by").is_none(), "{deleted}");
}

#[tokio::test]
async fn groups_from_before_roles_get_an_owner() {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::ConnectionTrait;

    let dir = tempfile::tempdir().unwrap();
    let db = sea_orm::Database::connect(crate::helpers::fresh_database_url(dir.path()).await)
        .await
        .unwrap();
    let before_roles = Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261207_000060_add_member_roles")
        .expect("the roles' migration");
    let before_roles = u32::try_from(before_roles).unwrap();
    Migrator::up(&db, Some(before_roles)).await.unwrap();
    // Group 1: its creator (1) is still in it. Group 2: its creator (1) left; 3 joined
    // before 2. Chat 3: private, whose members stay equal.
    for sql in [
        "INSERT INTO chats (id, name, is_group, private_key, create_command_id, created_by, created_at) VALUES \
         (1, 'kept', TRUE, NULL, 'c1', 1, '2026-01-01 00:00:00+00:00'), \
         (2, 'left', TRUE, NULL, 'c2', 1, '2026-01-01 00:00:00+00:00'), \
         (3, NULL, FALSE, '1:2', NULL, 1, '2026-01-01 00:00:00+00:00')",
        "INSERT INTO chat_members (chat_id, user_id, joined_at) VALUES \
         (1, 1, '2026-01-01 00:00:00+00:00'), (1, 2, '2026-01-01 00:00:00+00:00'), \
         (2, 2, '2026-01-03 00:00:00+00:00'), (2, 3, '2026-01-02 00:00:00+00:00'), \
         (3, 1, '2026-01-01 00:00:00+00:00'), (3, 2, '2026-01-01 00:00:00+00:00')",
    ] {
        db.execute_unprepared(sql).await.unwrap();
    }
    Migrator::up(&db, None).await.unwrap();

    let roles = jetchat::store::roles::of_chats(&db, [1, 2, 3])
        .await
        .unwrap();
    assert_eq!(roles[&1].owner_id, Some(1), "the creator");
    assert_eq!(roles[&2].owner_id, Some(3), "the longest-serving member");
    assert!(
        !roles.contains_key(&3),
        "a private chat has no roles: {roles:?}"
    );
    for (chat, user) in [(1, 2), (2, 2), (3, 1), (3, 2)] {
        let role = jetchat::store::roles::role_of(&db, chat, user)
            .await
            .unwrap();
        assert_eq!(
            role,
            Some(jetchat::domain::Role::Member),
            "chat {chat}, user {user}"
        );
    }
    let chat = jetchat::store::queries::chat(&db, 1)
        .await
        .unwrap()
        .unwrap();
    assert!(!chat.members_can_add, "off by default");
}

/// The next `command_rejected` on `events`: its `command_id` and `code`.
async fn rejected(events: &mut async_nats::Subscriber) -> (String, String) {
    loop {
        let (_, event) = next_events(events, 1).await.remove(0);
        if event["type"] == "command_rejected" {
            let field = |name: &str| event[name].as_str().unwrap_or_default().to_owned();
            return (field("command_id"), field("code"));
        }
    }
}
