//! Chats: create one (through the persister), list mine, read one's history.

use crate::limits::Limit;
use axum::{Json, extract::State, http::StatusCode};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ApiError, ErrorBody,
    extract::{Json as JsonBody, Path, Query},
    messages::{HistoryMessage, HistoryQuery, page},
};
use crate::{
    auth::AuthUser,
    bus::messages::{Command, CreateChat, Outcome, VERSION},
    domain::ChatId,
    domain::UserId,
    domain::{ChatView, MAX_LISTED_PROFILES, MessageView, Role, UserProfile},
    persister::batch::Rules,
    state::AppState,
    store::{queries, roles, users},
};

/// A chat to create. The Python service's form — a bare array of member ids with `?name=` —
/// is accepted too and makes a group.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum CreateChatBody {
    Full(CreateChatRequest),
    /// Legacy: the member ids of a new group.
    Legacy(Vec<UserId>),
}

/// A new chat; the caller is added to it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateChatRequest {
    /// Shown for groups; ignored for private chats.
    pub name: Option<String>,
    /// A group, or a private chat (exactly one other member).
    #[serde(default)]
    pub is_group: bool,
    /// The other members.
    pub member_ids: Vec<UserId>,
}

/// The Python service's `?name=` for the legacy body.
#[derive(Debug, Deserialize, IntoParams)]
pub struct CreateChatQuery {
    /// The group's name (legacy form).
    pub name: Option<String>,
}

/// One of my chats with its newest message and how many I have not read.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ChatSummary {
    #[serde(flatten)]
    pub chat: ChatView,
    pub last_message: Option<MessageView>,
    /// How many messages from others I have not read, counted up to 1,000: 1000 means 1,000 or
    /// more.
    pub unread_count: i64,
    /// How many of those mention me (`mentions`), counted up to 1,000.
    pub unread_mentions: i64,
    /// Whether my mute of the chat covers its mentions too (false when not muted).
    pub mentions_muted: bool,
    /// My role in a group (`owner`, `admin` or `member`: what I may do there); null in a
    /// private chat, whose two members are equal.
    pub role: Option<Role>,
    /// Until when I muted the chat (`PUT /chats/{id}/mute`); null: not muted.
    #[serde(serialize_with = "crate::domain::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub muted_until: Option<chrono::DateTime<chrono::Utc>>,
    /// The members' names and avatars, by id (every member's, mine too), so a chat and its
    /// messages can be drawn without asking `GET /users`; groups of over 100 members list
    /// none (ask `GET /users` for the senders shown).
    /// A member the directory does not know reads `"User <id>"`.
    pub profiles: Vec<UserProfile>,
}

/// Creates a group, or returns the private chat with one user (creating it the first time).
///
/// The command goes through the persister like everything that changes state; the answer
/// comes once it is committed.
#[utoipa::path(post, path = "/chats/", tag = "chats",
    params(CreateChatQuery),
    request_body = CreateChatBody,
    responses(
        (status = 201, description = "Created", body = ChatView),
        (status = 200, description = "The private chat already existed", body = ChatView),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, description = "More than `RATE_CHATS_PER_MIN` chats created in a minute",
         body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(user_id = user))]
pub async fn create_chat(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Query(query): Query<CreateChatQuery>,
    JsonBody(body): JsonBody<CreateChatBody>,
) -> Result<(StatusCode, Json<ChatView>), ApiError> {
    let request = match body {
        CreateChatBody::Full(r) => r,
        CreateChatBody::Legacy(member_ids) => CreateChatRequest {
            name: query.name,
            is_group: true,
            member_ids,
        },
    };
    state.limits.check(Limit::Chats, user)?;
    let command_id = uuid::Uuid::now_v7().to_string();
    let command = CreateChat {
        v: VERSION,
        command_id: command_id.clone(),
        creator_id: user,
        name: request.name,
        is_group: request.is_group,
        member_ids: request.member_ids,
        reply_to: None,
    };
    // The persister checks the same; refused here, the caller hears at once.
    Rules::default()
        .check(&Command::CreateChat(command.clone()))
        .map_err(|refusal| ApiError::Invalid(refusal.detail))?;
    if !command.is_group && command.other_members().len() != 1 {
        return Err(ApiError::Invalid(
            "a private chat has exactly one member besides you".into(),
        ));
    }
    let outcome = state
        .bus
        .command(
            state.bus.subjects.create_chat_command(),
            format!("create:{command_id}"),
            |reply_to| {
                Command::CreateChat(CreateChat {
                    reply_to: Some(reply_to),
                    ..command
                })
            },
            state.config.command_timeout,
        )
        .await?;
    match outcome {
        Outcome::ChatReady { chat, created, .. } => Ok((
            if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            Json(chat),
        )),
        Outcome::Rejected { code, detail, .. } => Err(ApiError::refused(code, detail)),
        Outcome::UploadReady { .. } | Outcome::Applied { .. } | Outcome::Muted { .. } => {
            Err(ApiError::Internal(anyhow::anyhow!(
                "a create_chat command was answered with another outcome"
            )))
        }
    }
}

/// My chats, newest activity first, each with its last message and my unread count.
#[utoipa::path(get, path = "/chats/", tag = "chats",
    responses((status = 200, body = Vec<ChatSummary>), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_chats(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<Vec<ChatSummary>>, ApiError> {
    let db = &state.db;
    let mine: Vec<ChatId> = queries::memberships(db, user)
        .await?
        .into_iter()
        .map(|m| m.chat_id)
        .collect();
    if mine.is_empty() {
        return Ok(Json(Vec::new()));
    }
    let chats = queries::chats(db, &mine).await?;
    let members = queries::members(db, mine.iter().copied()).await?;
    let mut last = queries::last_messages(db, &mine).await?;
    let unread = queries::unread_counts(db, user).await?;
    let unread_mentions = queries::unread_mentions(db, user).await?;
    let mentions_muted = queries::mentions_muted(db, user).await?;
    let mut group_roles = roles::of_chats(db, mine.iter().copied()).await?;
    // One directory read for every member listed (of the chats small enough to list).
    let mut sizes: std::collections::HashMap<ChatId, usize> = std::collections::HashMap::new();
    for m in &members {
        *sizes.entry(m.chat_id).or_default() += 1;
    }
    let listed = |chat_id: ChatId| sizes.get(&chat_id).copied().unwrap_or(0) <= MAX_LISTED_PROFILES;
    let profiles: std::collections::HashMap<UserId, UserProfile> = users::profiles(
        db,
        members
            .iter()
            .filter(|m| listed(m.chat_id))
            .map(|m| m.user_id),
    )
    .await?
    .into_iter()
    .map(|p| (p.user_id, p))
    .collect();
    let mut summaries: Vec<ChatSummary> = chats
        .into_iter()
        .map(|chat| {
            let member_ids: Vec<UserId> = members
                .iter()
                .filter(|m| m.chat_id == chat.id)
                .map(|m| m.user_id)
                .collect();
            let profiles = if listed(chat.id) {
                member_ids
                    .iter()
                    .filter_map(|id| profiles.get(id).cloned())
                    .collect()
            } else {
                Vec::new()
            };
            let group_roles = group_roles.remove(&chat.id).unwrap_or_default();
            let muted_until = members
                .iter()
                .find(|m| m.chat_id == chat.id && m.user_id == user)
                .and_then(|m| m.muted_until)
                .filter(|until| *until > chrono::Utc::now());
            ChatSummary {
                role: chat.is_group.then(|| group_roles.role_of(user)),
                profiles,
                last_message: last.remove(&chat.id).map(|m| {
                    let mut view = m.view(chat.private_key.as_deref());
                    state.media.signer.sign_view(&mut view, chrono::Utc::now());
                    view
                }),
                unread_count: unread.get(&chat.id).copied().unwrap_or(0),
                unread_mentions: unread_mentions.get(&chat.id).copied().unwrap_or(0),
                mentions_muted: mentions_muted.contains(&chat.id) && muted_until.is_some(),
                muted_until,
                chat: chat.view(member_ids, &group_roles),
            }
        })
        .collect();
    summaries.sort_by_key(|s| {
        std::cmp::Reverse(
            s.last_message
                .as_ref()
                .map_or(s.chat.created_at, |m| m.timestamp),
        )
    });
    Ok(Json(summaries))
}

/// A page of a chat's messages, newest first.
#[utoipa::path(get, path = "/chats/{chat_id}/messages", tag = "chats",
    params(("chat_id" = i64, Path, description = "The chat"), HistoryQuery),
    responses(
        (status = 200, body = Vec<HistoryMessage>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn chat_messages(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(chat_id): Path<ChatId>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<Vec<HistoryMessage>>, ApiError> {
    let chat = queries::chat(&state.db, chat_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("chat {chat_id} does not exist")))?;
    page(&state, &chat, user, &query).await.map(Json)
}

/// The chat routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_chat, list_chats))
        .routes(routes!(chat_messages))
}
