//! Search: `GET /search` finds the messages of my chats only, newest first, paged with
//! `before`, with HTML-safe highlighted snippets; deleted messages and chats I was removed
//! from stay out; what users type is never read as search syntax; `reproject` rebuilds the
//! index.

use sea_orm::Database;
use serde_json::{Value, json};

use crate::helpers::{TestApp, WsClient, publish_command, spawn_app};

/// `GET /search` as `user` with these query parameters (URL-encoded here).
pub async fn search(app: &TestApp, user: i64, params: &[(&str, &str)]) -> reqwest::Response {
    app.http
        .get(app.url("/search"))
        .query(params)
        .bearer_auth(crate::helpers::token(user))
        .send()
        .await
        .expect("request sent")
}

/// The hits of a search that must succeed.
async fn hits(app: &TestApp, user: i64, params: &[(&str, &str)]) -> Vec<Value> {
    let response = search(app, user, params).await;
    let status = response.status();
    let body: Value = response.json().await.expect("a JSON answer");
    assert_eq!(status, 200, "search {params:?}: {body}");
    body.as_array().expect("an array of hits").clone()
}

/// The message ids of the hits, in order.
async fn hit_ids(app: &TestApp, user: i64, params: &[(&str, &str)]) -> Vec<i64> {
    hits(app, user, params)
        .await
        .iter()
        .map(|h| h["message_id"].as_i64().expect("message_id"))
        .collect()
}

async fn say(socket: &mut WsClient, chat_id: i64, content: &str) -> i64 {
    socket
        .send_message(json!({"chat_id": chat_id, "content": content}))
        .await["message_id"]
        .as_i64()
        .expect("message id")
}

#[tokio::test]
async fn search_finds_my_chats_messages_newest_first_with_escaped_highlights() {
    let app = spawn_app().await;
    let ours = app.create_chat(1, true, &[2]).await;
    let theirs = app.create_chat(3, true, &[4]).await;
    let mut alice = app.connect(1).await;
    let mut carol = app.connect(3).await;
    let plain = say(&mut alice, ours, "the quick brown Fox jumps").await;
    let html = say(&mut alice, ours, "<script>alert('fox')</script> & more").await;
    say(&mut alice, ours, "nothing to see").await;
    let elsewhere = say(&mut carol, theirs, "a fox in another chat").await;

    let found = hits(&app, 2, &[("q", "FOX")]).await;
    let ids: Vec<i64> = found
        .iter()
        .map(|h| h["message_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [html, plain], "mine only, newest first");
    let hit = &found[0];
    assert_eq!(hit["chat_id"], ours);
    assert_eq!(hit["sender_id"], 1);
    assert_eq!(hit["content"], "<script>alert('fox')</script> & more");
    assert_eq!(
        hit["snippet"],
        "&lt;script&gt;alert(&#x27;<mark>fox</mark>&#x27;)&lt;&#x2F;script&gt; &amp; more",
        "everything but the marks escaped"
    );
    assert_eq!(
        found[1]["snippet"],
        "the quick brown <mark>Fox</mark> jumps"
    );

    // Every word must be there; accents and case do not matter on SQLite, case on both.
    assert_eq!(hit_ids(&app, 1, &[("q", "quick fox")]).await, [plain]);
    assert!(hit_ids(&app, 1, &[("q", "quick cat")]).await.is_empty());
    assert_eq!(hit_ids(&app, 3, &[("q", "fox")]).await, [elsewhere]);
    assert!(
        hit_ids(&app, 9, &[("q", "fox")]).await.is_empty(),
        "in no chat"
    );

    // One chat of mine; someone else's is refused.
    let ours_text = ours.to_string();
    let theirs_text = theirs.to_string();
    assert_eq!(
        hit_ids(&app, 1, &[("q", "fox"), ("chat_id", &ours_text)]).await,
        [html, plain]
    );
    let refused = search(&app, 1, &[("q", "fox"), ("chat_id", &theirs_text)]).await;
    assert_eq!(refused.status(), 403);
}

#[tokio::test]
async fn before_pages_through_every_hit_once() {
    let app = spawn_app().await;
    let chat = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let mut sent = Vec::new();
    for i in 0..7 {
        sent.push(say(&mut alice, chat, &format!("page {i}")).await);
        say(&mut alice, chat, "unrelated").await;
    }
    sent.reverse();

    let mut seen: Vec<i64> = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let cursor = before.map(|b| b.to_string());
        let mut params = vec![("q", "page"), ("limit", "3")];
        if let Some(cursor) = &cursor {
            params.push(("before", cursor));
        }
        let page = hit_ids(&app, 2, &params).await;
        seen.extend(&page);
        if page.len() < 3 {
            break;
        }
        before = page.last().copied();
    }
    assert_eq!(seen, sent, "every hit once, newest first");

    let max = i64::MAX.to_string();
    assert_eq!(
        hit_ids(&app, 2, &[("q", "page"), ("before", &max)]).await,
        sent
    );
    for below_every_id in ["1", "0", "-5", &i64::MIN.to_string()] {
        assert!(
            hit_ids(&app, 2, &[("q", "page"), ("before", below_every_id)])
                .await
                .is_empty()
        );
    }
}

#[tokio::test]
async fn a_removed_member_finds_nothing_of_that_chat_not_even_from_before() {
    let app = spawn_app().await;
    let chat = app.create_chat(1, true, &[2, 3]).await;
    let mut alice = app.connect(1).await;
    let old = say(&mut alice, chat, "secret plans").await;
    assert_eq!(hit_ids(&app, 3, &[("q", "secret")]).await, [old]);

    publish_command(
        &app,
        &format!("chat.in.{chat}.remove_members"),
        json!({"command_id": "remove-3", "user_ids": [3]}),
    )
    .await;
    alice.expect("member_removed").await;
    let new = say(&mut alice, chat, "more secret plans").await;

    assert!(hit_ids(&app, 3, &[("q", "secret")]).await.is_empty());
    assert_eq!(hit_ids(&app, 2, &[("q", "secret")]).await, [new, old]);
    let chat_text = chat.to_string();
    let refused = search(&app, 3, &[("q", "secret"), ("chat_id", &chat_text)]).await;
    assert_eq!(refused.status(), 403);
}

#[tokio::test]
async fn deleted_messages_are_never_found() {
    let app = spawn_app().await;
    let chat = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let kept = say(&mut alice, chat, "lunch at noon").await;
    let spam = say(&mut alice, chat, "lunch spam").await;
    assert_eq!(hit_ids(&app, 2, &[("q", "lunch")]).await, [spam, kept]);

    publish_command(
        &app,
        &format!("chat.in.{chat}.delete_message"),
        json!({"command_id": "del", "message_id": spam}),
    )
    .await;
    alice.expect("message_deleted").await;

    assert_eq!(hit_ids(&app, 2, &[("q", "lunch")]).await, [kept]);
    assert!(hit_ids(&app, 2, &[("q", "spam")]).await.is_empty());
}

#[tokio::test]
async fn search_follows_the_authors_edits_and_deletions() {
    let app = spawn_app().await;
    let chat = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let typo = say(&mut alice, chat, "meeting at teh office").await;
    let gone = say(&mut alice, chat, "meeting notes draft").await;
    assert_eq!(hit_ids(&app, 2, &[("q", "meeting")]).await, [gone, typo]);

    alice
        .send(
            json!({"action": "edit_message", "chat_id": chat, "message_id": typo,
                     "content": "meeting at the office"}),
        )
        .await;
    alice.expect("message_edited").await;
    assert!(
        hit_ids(&app, 2, &[("q", "teh")]).await.is_empty(),
        "the old text"
    );
    assert_eq!(hit_ids(&app, 2, &[("q", "the office")]).await, [typo]);

    alice
        .send(json!({"action": "delete_message", "chat_id": chat, "message_id": gone}))
        .await;
    alice.expect("message_deleted").await;
    assert_eq!(hit_ids(&app, 2, &[("q", "meeting")]).await, [typo]);
    assert!(
        hit_ids(&app, 1, &[("q", "draft")]).await.is_empty(),
        "not even the author"
    );
}

#[tokio::test]
async fn search_syntax_typed_by_users_is_searched_as_text() {
    let app = spawn_app().await;
    let chat = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let apple = say(&mut alice, chat, "apple").await;
    say(&mut alice, chat, "banana").await;
    let near = say(&mut alice, chat, "meet near the (old) station: 5 * 3 - 1").await;

    // FTS5 would read these as operators: here they are words like any other.
    assert!(
        hit_ids(&app, 2, &[("q", "apple OR banana")])
            .await
            .is_empty()
    );
    assert!(
        hit_ids(&app, 2, &[("q", "apple NOT banana")])
            .await
            .is_empty()
    );
    assert_eq!(hit_ids(&app, 2, &[("q", "NEAR")]).await, [near]);
    assert_eq!(hit_ids(&app, 2, &[("q", "app*")]).await, Vec::<i64>::new());
    assert_eq!(hit_ids(&app, 2, &[("q", "\"apple\"")]).await, [apple]);
    assert_eq!(hit_ids(&app, 2, &[("q", "(old) station:")]).await, [near]);
    for garbage in [
        "\"",
        "\"\"\"",
        "*",
        "-",
        ":",
        "(",
        ")",
        "NEAR(a b, 2)",
        "content:apple",
        "-apple",
        "^apple",
        "apple AND",
        "OR",
        "'; DROP TABLE messages; --",
        "\u{1}\u{2}\u{7f}",
        "\u{202e}\u{feff}",
        "日本語のテキスト",
        "💥💥",
    ] {
        let response = search(&app, 2, &[("q", garbage)]).await;
        assert_eq!(response.status(), 200, "{garbage:?}");
    }
    assert_eq!(hit_ids(&app, 2, &[("q", "apple")]).await, [apple]);
}

#[tokio::test]
async fn bad_parameters_answer_422_with_a_detail() {
    let app = spawn_app().await;
    app.create_chat(1, true, &[2]).await;
    let long = "word ".repeat(2_000);
    for (params, says) in [
        (vec![], "q is required"),
        (vec![("q", "")], "q is required"),
        (vec![("q", " \t\n")], "q is required"),
        (vec![("q", "a\0b")], "NUL"),
        (vec![("q", long.as_str())], "too long"),
        (vec![("q", "x"), ("limit", "0")], "limit"),
        (vec![("q", "x"), ("limit", "51")], "limit"),
        (vec![("q", "x"), ("limit", "-1")], "limit"),
        (
            vec![("q", "x"), ("limit", "99999999999999999999999")],
            "limit",
        ),
        (vec![("q", "x"), ("before", "abc")], "before"),
        (
            vec![("q", "x"), ("before", "9223372036854775808")],
            "before",
        ),
        (vec![("q", "x"), ("chat_id", "1.5")], "chat_id"),
    ] {
        let response = search(&app, 1, &params).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 422, "{params:?}: {body}");
        let detail = body["detail"].as_str().expect("a detail");
        assert!(detail.contains(says), "{params:?}: {detail}");
    }
    let anonymous = app.get_with_token(None, "/search?q=x").await;
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn reproject_rebuilds_the_index_so_search_answers_the_same() {
    let app = spawn_app().await;
    let group = app.create_chat(1, true, &[2, 3]).await;
    let mut alice = app.connect(1).await;
    for text in [
        "alpha beta",
        "beta gamma",
        "<b>alpha</b> & co",
        "gamma delta",
    ] {
        say(&mut alice, group, text).await;
    }
    let gone = say(&mut alice, group, "alpha to delete").await;
    let private = alice
        .send_message(json!({"receiver_id": 2, "content": "alpha private"}))
        .await;
    assert!(private["message_id"].is_i64());
    publish_command(
        &app,
        &format!("chat.in.{group}.delete_message"),
        json!({"command_id": "d", "message_id": gone}),
    )
    .await;
    alice.expect("message_deleted").await;
    publish_command(
        &app,
        &format!("chat.in.{group}.remove_members"),
        json!({"command_id": "r", "user_ids": [3]}),
    )
    .await;
    alice.expect("member_removed").await;

    let target = crate::helpers::fresh_database_url(app.dir()).await;
    let bus = app.ops_bus().await;
    jetchat::ops::reproject::run(&bus, &target, None, 2, &Default::default())
        .await
        .expect("reprojected");

    let live = Database::connect(&app.database_url).await.unwrap();
    let rebuilt = Database::connect(&target).await.unwrap();
    let page = jetchat::store::search::Page {
        chat_id: None,
        before: None,
        limit: 50,
    };
    for user in [1, 2, 3] {
        for words in ["alpha", "beta", "gamma delta", "delete", "b"] {
            let query = jetchat::store::search::SearchQuery::parse(words).unwrap();
            let expected = jetchat::store::search::messages(&live, user, &query, page)
                .await
                .unwrap();
            let got = jetchat::store::search::messages(&rebuilt, user, &query, page)
                .await
                .unwrap();
            assert_eq!(got, expected, "user {user}, {words:?}");
        }
    }
    let query = jetchat::store::search::SearchQuery::parse("alpha").unwrap();
    let alpha = jetchat::store::search::messages(&rebuilt, 1, &query, page)
        .await
        .unwrap();
    assert_eq!(alpha.len(), 3, "two in the group, one private: {alpha:?}");
    let removed = jetchat::store::search::messages(&rebuilt, 3, &query, page)
        .await
        .unwrap();
    assert!(removed.is_empty(), "user 3 left the group: {removed:?}");
}

#[tokio::test]
async fn both_postgresql_plans_answer_as_the_chosen_one_does() {
    use jetchat::store::search::{self, Page, PostgresPlan, SearchQuery};
    use sea_orm::{ConnectionTrait, DatabaseBackend};

    let app = spawn_app().await;
    let group = app.create_chat(1, true, &[2, 3]).await;
    let left = app.create_chat(1, true, &[3]).await;
    let theirs = app.create_chat(4, true, &[5]).await;
    let mut alice = app.connect(1).await;
    let mut dave = app.connect(4).await;
    let mut ids = Vec::new();
    for i in 0..24 {
        let chat = if i % 3 == 0 { left } else { group };
        let rare = if i % 5 == 0 { " rare" } else { "" };
        let text = format!("common word{i} <b>tag</b> & co{rare}");
        ids.push(say(&mut alice, chat, &text).await);
    }
    say(&mut dave, theirs, "common rare elsewhere").await;
    publish_command(
        &app,
        &format!("chat.in.{group}.delete_message"),
        json!({"command_id": "d", "message_id": ids[10]}),
    )
    .await;
    alice.expect("message_deleted").await;
    publish_command(
        &app,
        &format!("chat.in.{left}.remove_members"),
        json!({"command_id": "r", "user_ids": [3]}),
    )
    .await;
    alice.expect("member_removed").await;

    let db = Database::connect(&app.database_url).await.unwrap();
    if db.get_database_backend() == DatabaseBackend::Postgres {
        // The statistics the plan is chosen by.
        db.execute_unprepared("ANALYZE").await.unwrap();
    }
    let pages = [
        (None, None, 50),
        (Some(group), None, 50),
        (Some(left), None, 3),
        (None, Some(ids[15]), 4),
        (Some(group), Some(ids[20]), 2),
    ];
    for user in [1, 2, 3, 4] {
        for words in [
            "common",
            "rare",
            "common rare",
            "TAG",
            "b",
            "word7",
            "co",
            "none",
        ] {
            let query = SearchQuery::parse(words).unwrap();
            for (chat_id, before, limit) in pages {
                let page = Page {
                    chat_id,
                    before,
                    limit,
                };
                let chosen = search::messages(&db, user, &query, page).await.unwrap();
                // Walks bounded so that some chats reach the bound: the page is then told
                // from the walk or, when it cannot be, by the index.
                let walks = [1, 2, 3, 8, 1000]
                    .map(|rows_per_chat| PostgresPlan::ChatWalk { rows_per_chat });
                for plan in [PostgresPlan::Index].into_iter().chain(walks) {
                    let planned = search::messages_by(&db, user, &query, page, plan)
                        .await
                        .unwrap();
                    assert_eq!(
                        planned, chosen,
                        "{plan:?}, user {user}, {words:?}, {page:?}"
                    );
                }
                if user == 1 && words == "common" && chat_id.is_none() && before.is_none() {
                    let found: Vec<i64> = chosen.iter().map(|hit| hit.message_id).collect();
                    let expected: Vec<i64> = ids
                        .iter()
                        .rev()
                        .copied()
                        .filter(|id| *id != ids[10])
                        .collect();
                    assert_eq!(
                        found, expected,
                        "every message but the deleted, newest first"
                    );
                }
            }
        }
    }
    let all = Page {
        chat_id: None,
        before: None,
        limit: 50,
    };
    let common = SearchQuery::parse("common").unwrap();
    let found: Vec<i64> = search::messages(&db, 3, &common, all)
        .await
        .unwrap()
        .iter()
        .map(|hit| hit.message_id)
        .collect();
    let expected: Vec<i64> = (0..ids.len())
        .rev()
        .filter(|i| i % 3 != 0 && *i != 10)
        .map(|i| ids[i])
        .collect();
    assert_eq!(
        found, expected,
        "user 3 left `left`: the group's messages only"
    );
}
