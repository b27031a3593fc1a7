//! A user's security keys and passkeys (`/api/v1/users/{username}/keys`, SPEC 14): list
//! them, and remove a lost or stolen one.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::{ip_text, AdminActor, ApiPath};
use crate::domain::SecurityKeyId;
use crate::web::json_error::{ApiError, ErrorBody};
use crate::web::signin_api::keys::SecurityKeyOut;
use crate::web::{AppState, ClientIp};

/// The user's keys, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/users/{username}/keys",
    tag = "users",
    security(("bearer" = [])),
    params(("username" = String, Path, description = "The username")),
    responses(
        (status = 200, description = "The keys", body = Vec<SecurityKeyOut>),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_users`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
pub(super) async fn list_keys(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ApiPath(username): ApiPath<String>,
) -> Result<Json<Vec<SecurityKeyOut>>, ApiError> {
    let keys = state.admin.user_keys(&actor, &username).await?;
    Ok(Json(keys.into_iter().map(SecurityKeyOut::from).collect()))
}

/// Remove one of the user's keys; the user is notified.
#[utoipa::path(
    delete,
    path = "/api/v1/users/{username}/keys/{id}",
    tag = "users",
    security(("bearer" = [])),
    params(
        ("username" = String, Path, description = "The username"),
        ("id" = i64, Path, description = "The key's id"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_users`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user, or no such key of theirs", body = ErrorBody),
    )
)]
pub(super) async fn remove_key(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ip: ClientIp,
    ApiPath((username, id)): ApiPath<(String, i64)>,
) -> Result<StatusCode, ApiError> {
    state
        .admin
        .remove_user_key(&actor, &username, SecurityKeyId(id), Some(&ip_text(ip)))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
