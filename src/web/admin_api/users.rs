//! Users as administrators see them (`/api/v1/users`, SPEC section 9): search and paging,
//! creation, reading, changes (a password reset among them), deletion and unlocking.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ip_text, present, query_number, AdminActor, ApiPath, ApiQuery};
use crate::domain::UserSource;
use crate::service::admin::{UserInput, UserPatch, UserView};
use crate::web::json_error::{ApiError, ApiJson, ErrorBody};
use crate::web::signin_api::TwoStep;
use crate::web::{AppState, ClientIp};

/// A user as administrators see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    /// The role's name.
    pub role: String,
    /// An inactive user cannot sign in.
    pub active: bool,
    /// "2 Step Verification": a confirmed device.
    pub two_step: TwoStep,
    /// Locked after too many failed sign-ins (`POST .../unlock`).
    pub locked: bool,
    /// Consecutive failed sign-ins since the last success or unlock, counted across lock
    /// expiries; at 100 (the hard limit) the account stays locked until it is unlocked.
    pub consecutive_failures: u32,
    /// The next sign-in asks for a new password.
    pub must_change_password: bool,
    /// Unused recovery codes (SPEC 10); `DELETE .../recovery-codes` revokes them.
    pub recovery_codes_left: u32,
    /// Where the password is checked (SPEC 12): `local` (twostep) or `ldap` (the
    /// directory, which also gives the display name, email and role at each sign-in).
    pub source: SourceName,
    /// A directory user's entry as last read; absent for a local account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory: Option<DirectoryOut>,
}

/// `local` or `ldap`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceName {
    Local,
    Ldap,
}

impl From<UserSource> for SourceName {
    fn from(source: UserSource) -> Self {
        match source {
            UserSource::Local => Self::Local,
            UserSource::Directory => Self::Ldap,
        }
    }
}

/// What twostep last read of a directory user's entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct DirectoryOut {
    /// The entry's DN.
    pub dn: String,
    /// The entry's groups (DNs), as the directory listed them.
    pub groups: Vec<String>,
    /// When the entry was last read, at a sign-in (Unix milliseconds).
    pub synced_at: i64,
}

impl From<UserView> for UserOut {
    fn from(view: UserView) -> Self {
        Self {
            username: view.user.username.as_str().to_owned(),
            display_name: view.user.display_name.as_str().to_owned(),
            email: view.user.email.as_ref().map(|e| e.as_str().to_owned()),
            role: view.role,
            active: view.user.active,
            two_step: TwoStep::from_enabled(view.two_step_enabled),
            locked: view.locked,
            consecutive_failures: view.user.consecutive_failures,
            must_change_password: view.user.must_change_password,
            recovery_codes_left: view.recovery_codes_left,
            source: view.user.source.into(),
            directory: view.directory.map(|link| DirectoryOut {
                dn: link.dn,
                groups: link.groups,
                synced_at: link.synced_at.millis(),
            }),
        }
    }
}

/// A page of users.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserOut>,
    /// How many users match, over all pages.
    pub total: u64,
}

/// Search and paging of `GET /api/v1/users`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserSearch {
    /// Part of a username, display name or email address (case-insensitive).
    q: Option<String>,
    /// Users to skip (default 0).
    #[param(value_type = Option<u32>)]
    offset: Option<String>,
    /// Users per page (default 50, at most 200).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
}

/// A new user. Created active.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserIn {
    username: String,
    #[schema(format = Password, write_only)]
    password: String,
    display_name: String,
    email: Option<String>,
    /// The role's name.
    role: String,
    /// Only `true` is accepted here: a user is created active (deactivate with PATCH).
    active: Option<bool>,
    /// The user must choose a new password at the first sign-in (default true: the
    /// administrator knows this one).
    must_change_password: Option<bool>,
}

/// Changes to a user: the fields sent.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatchIn {
    display_name: Option<String>,
    /// `null` or `""` removes the address.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    email: Option<Option<String>>,
    /// The role's name.
    role: Option<String>,
    /// `false` also ends the user's sessions.
    active: Option<bool>,
    /// Password reset: the user must choose a new password at the next sign-in.
    #[schema(format = Password, write_only)]
    password: Option<String>,
}

impl From<UserPatchIn> for UserPatch {
    fn from(input: UserPatchIn) -> Self {
        Self {
            display_name: input.display_name,
            email: input.email,
            role: input.role,
            active: input.active,
            password: input.password,
        }
    }
}

/// Users, by search and page.
#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "users",
    security(("bearer" = [])),
    params(UserSearch),
    responses(
        (status = 200, description = "A page of users, by username", body = UserList),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_users`", body = ErrorBody),
        (status = 422, description = "`invalid_field` (`offset`, `limit`)", body = ErrorBody),
    )
)]
pub(super) async fn list_users(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ApiQuery(search): ApiQuery<UserSearch>,
) -> Result<Json<UserList>, ApiError> {
    let offset = query_number(
        search.offset.as_deref(),
        "offset",
        "offset must be a whole number",
    )?;
    let limit = query_number(
        search.limit.as_deref(),
        "limit",
        "limit must be a whole number",
    )?;
    let (users, total) = state
        .admin
        .list_users(
            &actor,
            search.q.as_deref(),
            offset.unwrap_or(0),
            limit.unwrap_or(50),
        )
        .await?;
    Ok(Json(UserList {
        users: users.into_iter().map(UserOut::from).collect(),
        total,
    }))
}

/// Create a user.
#[utoipa::path(
    post,
    path = "/api/v1/users",
    tag = "users",
    security(("bearer" = [])),
    request_body = NewUserIn,
    responses(
        (status = 201, description = "Created", body = UserOut),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_users`", body = ErrorBody),
        (status = 409, description = "`username_taken`", body = ErrorBody),
        (status = 422, description = "`invalid_field` (`username`, `password`, `display_name`, `email`, `role`, `active`) or `invalid_input`", body = ErrorBody),
    )
)]
pub(super) async fn create_user(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ip: ClientIp,
    ApiJson(body): ApiJson<NewUserIn>,
) -> Result<(StatusCode, Json<UserOut>), ApiError> {
    if body.active == Some(false) {
        return Err(ApiError::InvalidField {
            field: "active",
            message: "a user is created active; deactivate it with PATCH",
        });
    }
    let input = UserInput {
        username: body.username,
        display_name: body.display_name,
        email: body.email,
        role: body.role,
        password: body.password,
        must_change_password: body.must_change_password.unwrap_or(true),
    };
    let view = state
        .admin
        .create_user(&actor, &input, Some(&ip_text(ip)))
        .await?;
    Ok((StatusCode::CREATED, Json(view.into())))
}

/// One user, by username (case-insensitive).
#[utoipa::path(
    get,
    path = "/api/v1/users/{username}",
    tag = "users",
    security(("bearer" = [])),
    params(("username" = String, Path, description = "The username")),
    responses(
        (status = 200, description = "The user", body = UserOut),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_users`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
pub(super) async fn get_user(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ApiPath(username): ApiPath<String>,
) -> Result<Json<UserOut>, ApiError> {
    Ok(Json(state.admin.get_user(&actor, &username).await?.into()))
}

/// Change a user; `password` resets it (the user changes it at the next sign-in).
#[utoipa::path(
    patch,
    path = "/api/v1/users/{username}",
    tag = "users",
    security(("bearer" = [])),
    params(("username" = String, Path, description = "The username")),
    request_body = UserPatchIn,
    responses(
        (status = 200, description = "The user as saved", body = UserOut),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_users`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 422, description = "`invalid_field` or `invalid_input`", body = ErrorBody),
    )
)]
pub(super) async fn update_user(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ip: ClientIp,
    ApiPath(username): ApiPath<String>,
    ApiJson(body): ApiJson<UserPatchIn>,
) -> Result<Json<UserOut>, ApiError> {
    let view = state
        .admin
        .update_user(&actor, &username, &body.into(), Some(&ip_text(ip)))
        .await?;
    Ok(Json(view.into()))
}

/// Delete a user (not oneself).
#[utoipa::path(
    delete,
    path = "/api/v1/users/{username}",
    tag = "users",
    security(("bearer" = [])),
    params(("username" = String, Path, description = "The username")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_users`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 422, description = "`invalid_field` `username`: one's own account", body = ErrorBody),
    )
)]
pub(super) async fn delete_user(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ip: ClientIp,
    ApiPath(username): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state
        .admin
        .delete_user(&actor, &username, Some(&ip_text(ip)))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Unlock an account locked by failed sign-ins.
#[utoipa::path(
    post,
    path = "/api/v1/users/{username}/unlock",
    tag = "users",
    security(("bearer" = [])),
    params(("username" = String, Path, description = "The username")),
    responses(
        (status = 204, description = "Unlocked"),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_users`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
pub(super) async fn unlock_user(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ip: ClientIp,
    ApiPath(username): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state
        .admin
        .unlock(&actor, &username, Some(&ip_text(ip)))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
