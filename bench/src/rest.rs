//! The REST calls a run needs before it starts: creating its chats (`POST /chats/`).

use anyhow::{Context as _, bail};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde::Deserialize;
use serde_json::json;

use crate::target::Target;

/// Chat creations in flight at once.
const CREATE_CONCURRENCY: usize = 16;

/// A chat to create: its creator and the other members.
pub struct NewChat {
    pub creator: i64,
    pub others: Vec<i64>,
    /// A group (else a private chat: exactly one other member).
    pub is_group: bool,
}

#[derive(Deserialize)]
struct Created {
    chat_id: i64,
}

/// Creates one group of `members` users (`target.user(0)` creates it) and returns its id.
pub async fn create_group(target: &Target, members: usize, run: &str) -> anyhow::Result<i64> {
    let group = NewChat {
        creator: target.user(0),
        others: (1..members).map(|n| target.user(n)).collect(),
        is_group: true,
    };
    Ok(create_chats(target, vec![group], run).await?[0])
}

/// Creates the chats (through jetchat's persister, as any client would) and returns their
/// ids in the same order.
pub async fn create_chats(
    target: &Target,
    chats: Vec<NewChat>,
    run: &str,
) -> anyhow::Result<Vec<i64>> {
    let http = reqwest::Client::new();
    stream::iter(chats.into_iter().enumerate())
        .map(|(i, chat)| {
            let http = http.clone();
            async move {
                let name = chat.is_group.then(|| format!("load {run} #{i}"));
                create_chat(&http, target, &chat, name).await
            }
        })
        .buffered(CREATE_CONCURRENCY)
        .try_collect()
        .await
}

/// Creates one chat named `name` (groups only) with `POST /chats/` and returns its id.
pub async fn create_chat(
    http: &reqwest::Client,
    target: &Target,
    chat: &NewChat,
    name: Option<String>,
) -> anyhow::Result<i64> {
    let url = target.base.join("/chats/")?;
    let body = json!({
        "name": name,
        "is_group": chat.is_group,
        "member_ids": chat.others,
    });
    let response = http
        .post(url)
        .bearer_auth(target.token(chat.creator))
        .json(&body)
        .send()
        .await
        .context("POST /chats/")?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        bail!("POST /chats/ answered {status}: {text}");
    }
    let created: Created = response.json().await.context("POST /chats/ body")?;
    Ok(created.chat_id)
}
