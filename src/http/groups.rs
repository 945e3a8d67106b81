//! Groups their members run: add and remove members (yourself: leave), give roles, rename,
//! change settings, delete. Each request is a command with the caller as its actor, applied
//! by the persister like every change; who may do what is the persister's to decide
//! (`domain::roles`), so REST, the socket and NATS answer alike.

use crate::limits::Limit;
use axum::{Json, extract::State, http::StatusCode};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ApiError, ErrorBody,
    extract::{Json as JsonBody, Path},
    messages::apply,
};
use crate::{
    auth::AuthUser,
    bus::messages::{
        AddMembers, Command, DeleteChat, RemoveMembers, SetMemberRole, UpdateChat, VERSION,
    },
    domain::{ChatId, ChatView, ErrorCode, Role, SettingsChange, UserId, rules::Refusal},
    persister::batch::Rules,
    state::AppState,
    store::{queries, roles},
};

/// Users to add to a group.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AddMembersRequest {
    /// Positive user ids; those already members are left as they are.
    pub user_ids: Vec<UserId>,
}

/// A member's new role.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RoleRequest {
    /// `"admin"` or `"member"` (appoint or dismiss an admin), or `"owner"` (hand the group
    /// over: you become an admin).
    #[schema(example = "admin")]
    pub role: String,
}

/// A group's new name, settings, or both.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateChatRequest {
    /// Trimmed, 1 to 255 characters.
    #[serde(default)]
    pub name: Option<String>,
    /// The settings to change; those absent are kept.
    #[serde(default)]
    pub settings: Option<SettingsChange>,
}

/// Publishes `command` (the caller's) and waits until the persister applied it.
async fn run(state: &AppState, user: UserId, command: Command) -> Result<(), ApiError> {
    state.limits.check(Limit::Messages, user)?;
    Rules::default()
        .check(&command)
        .map_err(ApiError::Rejected)?;
    let chat_id = command.chat_id().unwrap_or_default();
    let command_id = command.command_id();
    let kind = command.kind();
    apply(state, chat_id, user, &command_id, kind, |reply_to| {
        with_reply_to(command, reply_to)
    })
    .await
}

/// `command` answering on `reply_to`.
fn with_reply_to(command: Command, reply_to: String) -> Command {
    let reply_to = Some(reply_to);
    match command {
        Command::AddMembers(c) => Command::AddMembers(AddMembers { reply_to, ..c }),
        Command::RemoveMembers(c) => Command::RemoveMembers(RemoveMembers { reply_to, ..c }),
        Command::SetMemberRole(c) => Command::SetMemberRole(SetMemberRole { reply_to, ..c }),
        Command::UpdateChat(c) => Command::UpdateChat(UpdateChat { reply_to, ..c }),
        Command::DeleteChat(c) => Command::DeleteChat(DeleteChat { reply_to, ..c }),
        other => other,
    }
}

/// The group as it is now: members, roles, settings.
async fn group_view(state: &AppState, chat_id: ChatId) -> Result<ChatView, ApiError> {
    let chat = queries::chat(&state.db, chat_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("chat {chat_id} does not exist")))?;
    let member_ids = queries::members(&state.db, [chat_id])
        .await?
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    let group_roles = roles::of_chat(&state.db, chat_id).await?;
    Ok(chat.view(member_ids, &group_roles))
}

fn command_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Adds users to a group: its admins and owner may, and its members when the group's
/// `members_can_add` is on. Answers the group as it is now; the members get `member_added`.
#[utoipa::path(post, path = "/chats/{chat_id}/members", tag = "groups",
    params(("chat_id" = i64, Path, description = "The group")),
    request_body = AddMembersRequest,
    responses(
        (status = 200, description = "Added (or members already)", body = ChatView),
        (status = 401, body = ErrorBody),
        (status = 403, description = "`not_a_member`, or `forbidden`: your role may not add", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "A user id that is not positive, a private chat (`not_a_group`), a group over its limit", body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(user_id = user, chat_id))]
pub async fn add_members(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(chat_id): Path<ChatId>,
    JsonBody(body): JsonBody<AddMembersRequest>,
) -> Result<Json<ChatView>, ApiError> {
    if body.user_ids.is_empty() {
        return Err(ApiError::Rejected(Refusal::new(
            ErrorCode::MissingField,
            "user_ids must not be empty",
        )));
    }
    let command = Command::AddMembers(AddMembers {
        v: VERSION,
        command_id: command_id(),
        chat_id,
        user_ids: body.user_ids,
        actor_id: Some(user),
        reply_to: None,
    });
    run(&state, user, command).await?;
    group_view(&state, chat_id).await.map(Json)
}

/// Removes a member from a group, or, for your own id, leaves it. Admins remove members,
/// the owner removes admins too; nobody removes the owner, who leaves instead: the group
/// then passes to its longest-serving admin, else member (`member_role_changed`).
#[utoipa::path(delete, path = "/chats/{chat_id}/members/{user_id}", tag = "groups",
    params(("chat_id" = i64, Path, description = "The group"),
           ("user_id" = i64, Path, description = "The member to remove; your own id to leave")),
    responses(
        (status = 204, description = "Removed, or left (or was not a member)"),
        (status = 401, body = ErrorBody),
        (status = 403, description = "`not_a_member`, or `forbidden`: your role may not remove them", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "An id that is not positive, or a private chat (`not_a_group`)", body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(user_id = user, chat_id, member_id))]
pub async fn remove_member(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((chat_id, member_id)): Path<(ChatId, UserId)>,
) -> Result<StatusCode, ApiError> {
    let command = Command::RemoveMembers(RemoveMembers {
        v: VERSION,
        command_id: command_id(),
        chat_id,
        user_ids: vec![member_id],
        actor_id: Some(user),
        reply_to: None,
    });
    run(&state, user, command).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Gives a member a role (the owner only): `admin` or `member`, or `owner` to hand the group
/// over (you then become an admin). Answers the group as it is now.
#[utoipa::path(put, path = "/chats/{chat_id}/members/{user_id}/role", tag = "groups",
    params(("chat_id" = i64, Path, description = "The group"),
           ("user_id" = i64, Path, description = "The member")),
    request_body = RoleRequest,
    responses(
        (status = 200, description = "The role is given (or was)", body = ChatView),
        (status = 401, body = ErrorBody),
        (status = 403, description = "`not_a_member` (you or them), or `forbidden`: only the owner gives roles", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "`invalid_role`, `owner_required` (the owner stepping down without a successor), a private chat", body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(user_id = user, chat_id, member_id))]
pub async fn set_member_role(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((chat_id, member_id)): Path<(ChatId, UserId)>,
    JsonBody(body): JsonBody<RoleRequest>,
) -> Result<Json<ChatView>, ApiError> {
    let role = Role::from_request(&body.role).map_err(ApiError::Rejected)?;
    let command = Command::SetMemberRole(SetMemberRole {
        v: VERSION,
        command_id: command_id(),
        chat_id,
        user_id: member_id,
        role,
        actor_id: Some(user),
        reply_to: None,
    });
    run(&state, user, command).await?;
    group_view(&state, chat_id).await.map(Json)
}

/// Renames a group or changes its settings (admins and the owner). Answers the group as it
/// is now; the members get `chat_updated` (and `chat_renamed` for a new name).
#[utoipa::path(patch, path = "/chats/{chat_id}", tag = "groups",
    params(("chat_id" = i64, Path, description = "The group")),
    request_body = UpdateChatRequest,
    responses(
        (status = 200, description = "Updated", body = ChatView),
        (status = 401, body = ErrorBody),
        (status = 403, description = "`not_a_member`, or `forbidden`: it needs the admin role", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "Nothing to change, a bad name (`invalid_name`), a private chat", body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(user_id = user, chat_id))]
pub async fn update_chat(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(chat_id): Path<ChatId>,
    JsonBody(body): JsonBody<UpdateChatRequest>,
) -> Result<Json<ChatView>, ApiError> {
    let command = Command::UpdateChat(UpdateChat {
        v: VERSION,
        command_id: command_id(),
        chat_id,
        name: body.name,
        settings: body.settings,
        actor_id: Some(user),
        reply_to: None,
    });
    run(&state, user, command).await?;
    group_view(&state, chat_id).await.map(Json)
}

/// Deletes a group (its owner only) with its whole history, for everyone: messages,
/// reactions, receipts and the catch-up's record of them are erased, not kept as
/// tombstones. The members get `chat_deleted`; it cannot be undone.
#[utoipa::path(delete, path = "/chats/{chat_id}", tag = "groups",
    params(("chat_id" = i64, Path, description = "The group")),
    responses(
        (status = 204, description = "Deleted (or deleted before)"),
        (status = 401, body = ErrorBody),
        (status = 403, description = "`not_a_member`, or `forbidden`: only the owner deletes a group", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "A private chat (`not_a_group`), an id that is not positive", body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(user_id = user, chat_id))]
pub async fn delete_chat(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(chat_id): Path<ChatId>,
) -> Result<StatusCode, ApiError> {
    let command = Command::DeleteChat(DeleteChat {
        v: VERSION,
        command_id: command_id(),
        chat_id,
        actor_id: Some(user),
        reply_to: None,
    });
    run(&state, user, command).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The group routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(update_chat, delete_chat))
        .routes(routes!(add_members))
        .routes(routes!(remove_member))
        .routes(routes!(set_member_role))
}
