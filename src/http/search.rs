//! `GET /search`: full-text search over the messages of my chats, newest first, paged like
//! history.

use std::collections::HashMap;

use axum::{Json, extract::State};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{ApiError, ErrorBody, extract::Query};
use crate::{
    auth::AuthUser,
    domain::ChatId,
    domain::UserId,
    domain::{MessageId, MessageView},
    state::AppState,
    store::{
        message, queries,
        search::{self, SearchQuery},
    },
};

/// Largest page.
pub const MAX_LIMIT: u64 = 50;
/// Page size when none is asked for.
const DEFAULT_LIMIT: u64 = 20;

/// What to look for, where, and which page.
#[derive(Debug, Deserialize, IntoParams)]
pub struct SearchParams {
    /// The words to find (every one of them, whole words, case and accents aside on SQLite,
    /// case aside on PostgreSQL); 1 to 500 characters. Quotes, `*`, `-`, `:`, `NEAR` and
    /// parentheses are searched for as text, never read as operators.
    pub q: Option<String>,
    /// Only in this chat (403 unless I am a member).
    pub chat_id: Option<ChatId>,
    /// Only messages with a smaller id: the `message_id` of the previous page's last hit.
    pub before: Option<MessageId>,
    /// Hits per page, 1 to 50 (default 20).
    pub limit: Option<u64>,
}

/// A message that matched, as history shows it, with the part that matched.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHit {
    #[serde(flatten)]
    pub message: MessageView,
    /// Safe to insert as HTML: the matching part of `content` with the rest escaped and the
    /// matched words in `<mark>`…`</mark>` (`…` where text was left out).
    pub snippet: String,
}

/// Messages of my chats that contain every word of `q`, newest first, with a highlighted
/// snippet. Only the chats I am a member of now: after being removed from a chat I find none
/// of its messages, not even those from before. Deleted messages are never found. The next
/// page is `before=<message_id of the last hit>`; a page shorter than `limit` is the last.
#[utoipa::path(get, path = "/search", tag = "messages",
    params(SearchParams),
    responses(
        (status = 200, description = "Hits, newest first", body = Vec<SearchHit>),
        (status = 401, body = ErrorBody),
        (status = 403, description = "`chat_id` is not one of my chats", body = ErrorBody),
        (status = 422, description = "No words, too long, NUL, or `limit` out of range",
         body = ErrorBody),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(user_id = user))]
pub async fn search_messages(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Query(params): Query<SearchParams>,
) -> Result<Json<Vec<SearchHit>>, ApiError> {
    let query = SearchQuery::parse(params.q.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::Invalid(e.to_string()))?;
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::Invalid(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    if let Some(chat_id) = params.chat_id {
        check_member(&state, chat_id, user).await?;
    }
    let page = search::Page {
        chat_id: params.chat_id,
        before: params.before,
        limit,
    };
    let hits = search::messages(&state.db, user, &query, page).await?;
    Ok(Json(views(&state, hits).await?))
}

async fn check_member(state: &AppState, chat_id: ChatId, user: UserId) -> Result<(), ApiError> {
    match queries::membership(&state.db, chat_id, user).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::Forbidden(format!(
            "you are not a member of chat {chat_id}"
        ))),
    }
}

/// The hits' messages as history shows them (file URLs signed), in the hits' order; a
/// message deleted since the search is left out.
async fn views(state: &AppState, hits: Vec<search::Hit>) -> Result<Vec<SearchHit>, ApiError> {
    let ids: Vec<MessageId> = hits.iter().map(|h| h.message_id).collect();
    let mut messages: HashMap<MessageId, message::Model> = message::Entity::find()
        .filter(message::Column::Id.is_in(crate::store::in_list(ids)))
        .filter(message::Column::DeletedAt.is_null())
        .all(&state.db)
        .await?
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
    let mut chat_ids: Vec<ChatId> = messages.values().map(|m| m.chat_id).collect();
    chat_ids.sort_unstable();
    chat_ids.dedup();
    let private_keys: HashMap<ChatId, Option<String>> = queries::chats(&state.db, &chat_ids)
        .await?
        .into_iter()
        .map(|c| (c.id, c.private_key))
        .collect();
    let now = chrono::Utc::now();
    Ok(hits
        .into_iter()
        .filter_map(|hit| {
            let stored = messages.remove(&hit.message_id)?;
            let private_key = private_keys.get(&stored.chat_id).cloned().flatten();
            let mut message = stored.view(private_key.as_deref());
            state.media.signer.sign_view(&mut message, now);
            Some(SearchHit {
                message,
                snippet: hit.snippet,
            })
        })
        .collect())
}

/// The search route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search_messages))
}
