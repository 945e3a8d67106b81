//! `GET /users`: the directory's profiles of users who share a chat with me.

use axum::{Json, extract::State};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{ApiError, ErrorBody, extract::Query};
use crate::{
    auth::AuthUser,
    domain::{UserId, UserProfile},
    state::AppState,
    store::users,
};

/// Most ids one request may name.
pub const MAX_IDS: usize = 100;

/// Whose profiles.
#[derive(Debug, Deserialize, IntoParams)]
pub struct UsersParams {
    /// Comma-separated user ids (`1,2,3`), 1 to 100 of them, each a positive integer.
    pub ids: Option<String>,
}

/// The ids of `?ids=`: each positive, at most [`MAX_IDS`], repeats counted once.
fn parse_ids(raw: Option<&str>) -> Result<Vec<UserId>, ApiError> {
    let raw = raw.unwrap_or("").trim();
    if raw.is_empty() {
        return Err(ApiError::Invalid("ids is required: ?ids=1,2,3".into()));
    }
    let mut ids = Vec::new();
    for part in raw.split(',') {
        let id = part
            .trim()
            .parse::<UserId>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| {
                let shown: String = part.chars().take(30).collect();
                ApiError::Invalid(format!("ids: {shown:?} is not a positive user id"))
            })?;
        ids.push(id);
    }
    ids.sort_unstable();
    ids.dedup();
    if ids.len() > MAX_IDS {
        return Err(ApiError::Invalid(format!(
            "ids: at most {MAX_IDS} per request"
        )));
    }
    Ok(ids)
}

/// The profiles of the users named who share a chat with me now, and my own, in id order.
/// Anyone else is absent from the answer (no error: a client cannot tell a stranger from a
/// user who does not exist). A user the directory does not know yet is answered with the
/// fallback the server fills: `display_name` `"User <id>"`, no avatar, `updated_at` null.
#[utoipa::path(get, path = "/users", tag = "users",
    params(UsersParams),
    responses(
        (status = 200, description = "The visible users' profiles, by id", body = Vec<UserProfile>),
        (status = 401, body = ErrorBody),
        (status = 422, description = "No ids, an id that is not a positive integer, or over 100",
         body = ErrorBody),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(user_id = user))]
pub async fn list_users(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Query(params): Query<UsersParams>,
) -> Result<Json<Vec<UserProfile>>, ApiError> {
    let ids = parse_ids(params.ids.as_deref())?;
    let visible = users::visible_to(&state.db, user, &ids).await?;
    Ok(Json(users::profiles(&state.db, visible).await?))
}

/// The user routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_users))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_positive_distinct_and_at_most_a_hundred() {
        assert_eq!(parse_ids(Some(" 3, 1,3 ,2")).unwrap(), vec![1, 2, 3]);
        assert!(parse_ids(None).is_err());
        assert!(parse_ids(Some("1,,2")).is_err());
        assert!(parse_ids(Some("0")).is_err());
        assert!(parse_ids(Some("-4")).is_err());
        assert!(parse_ids(Some("99999999999999999999")).is_err());
        let hundred: Vec<String> = (1..=100).map(|i| i.to_string()).collect();
        assert_eq!(parse_ids(Some(&hundred.join(","))).unwrap().len(), 100);
        let more: Vec<String> = (1..=101).map(|i| i.to_string()).collect();
        assert!(parse_ids(Some(&more.join(","))).is_err());
    }
}
