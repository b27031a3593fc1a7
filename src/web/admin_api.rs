//! The administration JSON API of SPEC section 9 (`/api/v1/roles`, `/users`, `/settings`,
//! `/ip-rules`, `/templates/...`, `/audit`, `/tokens`).
//!
//! Every handler translates a request into one call of [`Admin`], which checks the
//! caller's permission, validates, stores and audits; errors become answers in the one
//! mapping of [`ApiError`]. The caller is an [`AdminActor`]: the user of a session token
//! or of an API token, sent as `Authorization: Bearer T`.
//!
//! [`Admin`]: crate::service::admin::Admin

use std::collections::BTreeMap;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRef, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::api::{
    bearer, parse_method, parse_prompt_mode, ApiError, ApiJson, DeviceSetup, ErrorBody, TwoStep,
};
use super::{AppState, ClientIp};
use crate::clock::Timestamp;
use crate::domain::{Role, SettingError, SettingKey, SettingKind, Settings};
use crate::mail::template::EmailTemplate;
use crate::service::admin::{Actor, AdminError, RolePatch, UserInput, UserPatch, UserView};
use crate::store::{AuditEntry, AuditEvent, AuditQuery, StoredIpRule};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/roles", get(list_roles).post(create_role))
        .route("/api/v1/roles/{name}", get(get_role).patch(update_role))
        .route("/api/v1/users", get(list_users).post(create_user))
        .route(
            "/api/v1/users/{username}",
            get(get_user).patch(update_user).delete(delete_user),
        )
        .route("/api/v1/users/{username}/unlock", post(unlock_user))
        .route(
            "/api/v1/users/{username}/device",
            post(setup_device).delete(disable_device),
        )
        .route(
            "/api/v1/users/{username}/device/confirm",
            post(confirm_device),
        )
        .route("/api/v1/settings", get(get_settings).patch(update_settings))
        .route("/api/v1/ip-rules", get(list_ip_rules).post(add_ip_rule))
        .route(
            "/api/v1/ip-rules/{id}",
            axum::routing::delete(remove_ip_rule),
        )
        .route(
            "/api/v1/templates/otp-notification-email",
            get(get_template).put(put_template),
        )
        .route("/api/v1/audit", get(audit_log))
        .route("/api/v1/tokens", post(create_token))
}

// ----- extractors -----

/// The caller of an administration endpoint: `Authorization: Bearer T` where `T` is a
/// session token or an API token. Without a valid one: `401 unauthenticated`. What the
/// caller may do is decided by [`Admin`], from the actor's role.
///
/// [`Admin`]: crate::service::admin::Admin
pub struct AdminActor(pub Actor);

impl<S> FromRequestParts<S> for AdminActor
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let token = bearer(&parts.headers).ok_or(ApiError::Unauthenticated)?;
        if let Some((user, role)) = state.signin.session_user(token).await? {
            return Ok(Self(Actor::User { user, role }));
        }
        state
            .admin
            .actor_for_api_token(token)
            .await?
            .map(Self)
            .ok_or(ApiError::Unauthenticated)
    }
}

/// `Path<T>` whose rejections are `404 not_found`: a path segment that does not parse
/// (an IP rule id that is not a number) names nothing.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| Self(value))
            .map_err(|_: PathRejection| ApiError::BadBody {
                status: StatusCode::NOT_FOUND,
                code: "not_found",
                message: "there is nothing at this address".to_owned(),
            })
    }
}

/// `Query<T>` whose rejections are our JSON errors (`422 invalid_input`).
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Self(value))
            .map_err(|_: QueryRejection| ApiError::BadBody {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "invalid_input",
                message: "the query string could not be read".to_owned(),
            })
    }
}

/// The client address in the text form the audit log keeps.
fn ip_text(ClientIp(ip): ClientIp) -> String {
    ip.to_string()
}

/// A whole number from the query string; the error names the parameter.
fn query_number<N: std::str::FromStr>(
    text: Option<&str>,
    field: &'static str,
    message: &'static str,
) -> Result<Option<N>, ApiError> {
    text.map(|text| {
        text.trim()
            .parse()
            .map_err(|_| ApiError::InvalidField { field, message })
    })
    .transpose()
}

/// Distinguishes a field sent as `null` (`Some(None)`) from a missing one (`None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

// ----- documentation-only enums: the value sets of string fields -----

/// Require 2FA (SPEC section 1).
#[derive(ToSchema)]
#[schema(as = Require2fa, rename_all = "snake_case")]
#[allow(dead_code)] // names the accepted values in the OpenAPI document
enum Require2faName {
    No,
    Encourage,
    Force,
}

/// A permission (SPEC section 6).
#[derive(ToSchema)]
#[schema(as = Permission, rename_all = "snake_case")]
#[allow(dead_code)] // names the accepted values in the OpenAPI document
enum PermissionName {
    ManageUsers,
    ManageRoles,
    ManageSystemSettings,
    #[schema(rename = "manage_2fa_bypass")]
    Manage2faBypass,
    ManageIpSettings,
    ViewAuditLog,
    VerifyOtp,
}

// ----- roles -----

/// A security role.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleOut {
    pub name: String,
    #[schema(value_type = Require2faName)]
    pub require_2fa: String,
    /// An emailed OTP at sign-in (for users without a device).
    pub otp_required: bool,
    /// A service account's role: never 2FA, never an OTP.
    pub interface: bool,
    #[schema(value_type = Vec<PermissionName>)]
    pub permissions: Vec<String>,
}

impl From<&Role> for RoleOut {
    fn from(role: &Role) -> Self {
        Self {
            name: role.name.as_str().to_owned(),
            require_2fa: role.security.require_2fa().as_str().to_owned(),
            otp_required: role.security.otp_required(),
            interface: role.security.interface(),
            permissions: role
                .permissions
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleList {
    pub roles: Vec<RoleOut>,
}

/// A new role (`name` required), or the changes to one (every field optional). An
/// interface role cannot require 2FA nor an emailed OTP.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleIn {
    name: Option<String>,
    /// Default for a new role: `no`.
    #[schema(value_type = Option<Require2faName>)]
    require_2fa: Option<String>,
    otp_required: Option<bool>,
    interface: Option<bool>,
    /// The whole set (replaces the current one).
    #[schema(value_type = Option<Vec<PermissionName>>)]
    permissions: Option<Vec<String>>,
}

impl From<RoleIn> for RolePatch {
    fn from(input: RoleIn) -> Self {
        Self {
            name: input.name,
            require_2fa: input.require_2fa,
            otp_required: input.otp_required,
            interface: input.interface,
            permissions: input.permissions,
        }
    }
}

/// Every role.
#[utoipa::path(
    get,
    path = "/api/v1/roles",
    tag = "roles",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The roles", body = RoleList),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_roles`", body = ErrorBody),
    )
)]
async fn list_roles(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
) -> Result<Json<RoleList>, ApiError> {
    let roles = state.admin.list_roles(&actor).await?;
    Ok(Json(RoleList {
        roles: roles.iter().map(RoleOut::from).collect(),
    }))
}

/// Create a role.
#[utoipa::path(
    post,
    path = "/api/v1/roles",
    tag = "roles",
    security(("bearer" = [])),
    request_body = RoleIn,
    responses(
        (status = 201, description = "Created", body = RoleOut),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_roles`", body = ErrorBody),
        (status = 409, description = "`role_name_taken`", body = ErrorBody),
        (status = 422, description = "`invalid_field` (`name`, `require_2fa`, `otp_required`, `permissions`) or `invalid_input`", body = ErrorBody),
    )
)]
async fn create_role(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ip: ClientIp,
    ApiJson(body): ApiJson<RoleIn>,
) -> Result<(StatusCode, Json<RoleOut>), ApiError> {
    let role = state
        .admin
        .create_role(&actor, &body.into(), Some(&ip_text(ip)))
        .await?;
    Ok((StatusCode::CREATED, Json(RoleOut::from(&role))))
}

/// One role, by name (case-insensitive).
#[utoipa::path(
    get,
    path = "/api/v1/roles/{name}",
    tag = "roles",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The role's name")),
    responses(
        (status = 200, description = "The role", body = RoleOut),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_roles`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
async fn get_role(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<RoleOut>, ApiError> {
    let role = state.admin.get_role(&actor, &name).await?;
    Ok(Json(RoleOut::from(&role)))
}

/// Change a role: the fields sent; the audit log keeps the values before and after.
#[utoipa::path(
    patch,
    path = "/api/v1/roles/{name}",
    tag = "roles",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The role's name")),
    request_body = RoleIn,
    responses(
        (status = 200, description = "The role as saved", body = RoleOut),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_roles`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`role_name_taken`", body = ErrorBody),
        (status = 422, description = "`invalid_field` or `invalid_input`", body = ErrorBody),
    )
)]
async fn update_role(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ip: ClientIp,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<RoleIn>,
) -> Result<Json<RoleOut>, ApiError> {
    let role = state
        .admin
        .update_role(&actor, &name, &body.into(), Some(&ip_text(ip)))
        .await?;
    Ok(Json(RoleOut::from(&role)))
}

// ----- users -----

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
async fn list_users(
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
async fn create_user(
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
async fn get_user(
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
async fn update_user(
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
async fn delete_user(
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
async fn unlock_user(
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

// ----- a user's device -----

/// Setup (or Setup New Device) for a user.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceIn {
    #[schema(value_type = super::api::MethodName)]
    method: String,
    #[schema(value_type = super::api::PromptModeName)]
    prompt_mode: String,
}

/// The code the user's app shows.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceCodeIn {
    code: String,
}

/// Setup, or Setup New Device when the user has one: the old device keeps working until
/// the new one is confirmed.
#[utoipa::path(
    post,
    path = "/api/v1/users/{username}/device",
    tag = "users",
    security(("bearer" = [])),
    params(("username" = String, Path, description = "The username")),
    request_body = DeviceIn,
    responses(
        (status = 200, description = "A pending device: the user scans or types it, then confirm", body = DeviceSetup),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_users`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 422, description = "`invalid_field` (`method`, `prompt_mode`): unknown, or not offered by Use 2FA", body = ErrorBody),
    )
)]
async fn setup_device(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ApiPath(username): ApiPath<String>,
    ApiJson(body): ApiJson<DeviceIn>,
) -> Result<Json<DeviceSetup>, ApiError> {
    let method = parse_method(&body.method)?;
    let prompt_mode = parse_prompt_mode(&body.prompt_mode)?;
    let setup = state
        .admin
        .setup_device(&actor, &username, method, prompt_mode)
        .await?;
    Ok(Json(setup.into()))
}

/// Complete Setup with a code from the user's app; the new device replaces the old one.
#[utoipa::path(
    post,
    path = "/api/v1/users/{username}/device/confirm",
    tag = "users",
    security(("bearer" = [])),
    params(("username" = String, Path, description = "The username")),
    request_body = DeviceCodeIn,
    responses(
        (status = 204, description = "Confirmed: 2 Step Verification is enabled"),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_users`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 422, description = "`invalid_field` `code`: wrong code, or no set-up started", body = ErrorBody),
    )
)]
async fn confirm_device(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ip: ClientIp,
    ApiPath(username): ApiPath<String>,
    ApiJson(body): ApiJson<DeviceCodeIn>,
) -> Result<StatusCode, ApiError> {
    state
        .admin
        .confirm_device(&actor, &username, &body.code, Some(&ip_text(ip)))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Change -> Disable: the user's device is removed.
#[utoipa::path(
    delete,
    path = "/api/v1/users/{username}/device",
    tag = "users",
    security(("bearer" = [])),
    params(("username" = String, Path, description = "The username")),
    responses(
        (status = 204, description = "Removed: 2 Step Verification is not enabled"),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_users`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user, or no device", body = ErrorBody),
    )
)]
async fn disable_device(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ip: ClientIp,
    ApiPath(username): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let removed = state
        .admin
        .disable_device(&actor, &username, Some(&ip_text(ip)))
        .await?;
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AdminError::NotFound("device").into())
    }
}

// ----- system settings -----

/// The system settings of SPEC section 2.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsOut {
    /// 1 HOTP, 2 TOTP, 3 the user chooses.
    #[schema(minimum = 1, maximum = 3)]
    pub use_2fa: u8,
    /// Enable Bypass 2FA OTP (changing it needs `manage_2fa_bypass`).
    pub bypass_enabled: bool,
    #[schema(minimum = 1, maximum = 1440)]
    pub otp_csrf_valid_minutes: u32,
    #[schema(minimum = 6, maximum = 20)]
    pub otp_length: u8,
    #[schema(minimum = 0, maximum = 3600)]
    pub otp_request_delay_seconds: u32,
    #[schema(minimum = 30, maximum = 86400)]
    pub otp_valid_seconds: u32,
    #[schema(minimum = 0, maximum = 10000)]
    pub failure_delay_ms: u32,
    /// The From: address of OTP emails.
    #[schema(format = Email)]
    pub autoreply: String,
    #[schema(minimum = 1, maximum = 100)]
    pub lockout_threshold: u32,
    /// 0: until an administrator unlocks.
    #[schema(minimum = 0, maximum = 525600)]
    pub lockout_minutes: u32,
    #[schema(minimum = 0, maximum = 100)]
    pub hotp_window: u32,
    #[schema(minimum = 0, maximum = 2)]
    pub totp_skew_steps: u8,
    /// What `pass` of `/validate/check` holds: `otp` (the OTP only) or `password_otp`
    /// (the password followed by the OTP).
    #[schema(value_type = PassModeName)]
    pub validate_pass_mode: String,
}

/// The values of `validate_pass_mode`.
#[derive(ToSchema)]
#[schema(as = ValidatePassMode, rename_all = "snake_case")]
#[allow(dead_code)] // names the accepted values in the OpenAPI document
enum PassModeName {
    Otp,
    PasswordOtp,
}

impl From<&Settings> for SettingsOut {
    fn from(settings: &Settings) -> Self {
        Self {
            use_2fa: settings.use_2fa().value(),
            bypass_enabled: settings.bypass_enabled(),
            otp_csrf_valid_minutes: settings.otp_csrf_valid_minutes(),
            otp_length: settings.otp_length().get(),
            otp_request_delay_seconds: settings.otp_request_delay_seconds(),
            otp_valid_seconds: settings.otp_valid_seconds(),
            failure_delay_ms: settings.failure_delay_ms(),
            autoreply: settings.autoreply().as_str().to_owned(),
            lockout_threshold: settings.lockout_threshold(),
            lockout_minutes: settings.lockout_minutes(),
            hotp_window: settings.hotp_window(),
            totp_skew_steps: settings.totp_skew_steps(),
            validate_pass_mode: settings.validate_pass_mode().as_str().to_owned(),
        }
    }
}

/// Settings to change: any subset of the settings, with the same types. Unknown names
/// are refused (`unknown_field`); all changes are saved or none.
#[derive(Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
#[schema(as = SettingsPatch)]
#[allow(dead_code)] // describes the JSON object the handler reads key by key
struct SettingsPatchDoc {
    #[schema(minimum = 1, maximum = 3)]
    use_2fa: u8,
    bypass_enabled: bool,
    #[schema(minimum = 1, maximum = 1440)]
    otp_csrf_valid_minutes: u32,
    #[schema(minimum = 6, maximum = 20)]
    otp_length: u8,
    #[schema(minimum = 0, maximum = 3600)]
    otp_request_delay_seconds: u32,
    #[schema(minimum = 30, maximum = 86400)]
    otp_valid_seconds: u32,
    #[schema(minimum = 0, maximum = 10000)]
    failure_delay_ms: u32,
    #[schema(format = Email)]
    autoreply: String,
    #[schema(minimum = 1, maximum = 100)]
    lockout_threshold: u32,
    #[schema(minimum = 0, maximum = 525600)]
    lockout_minutes: u32,
    #[schema(minimum = 0, maximum = 100)]
    hotp_window: u32,
    #[schema(minimum = 0, maximum = 2)]
    totp_skew_steps: u8,
    #[schema(value_type = PassModeName)]
    validate_pass_mode: String,
}

/// A setting's JSON value in the setting's text form: numbers for numbers, `true` or
/// `false` for the flag, a string for the address. Another JSON type is refused with the
/// message the setting gives for a bad value; range and syntax are checked by [`Admin`].
///
/// [`Admin`]: crate::service::admin::Admin
fn setting_text(key: SettingKey, value: &Value) -> Result<String, ApiError> {
    let kind = key.kind();
    let text = match (kind, value) {
        (SettingKind::Number { .. }, Value::Number(number)) => Some(number.to_string()),
        (SettingKind::Flag, Value::Bool(flag)) => Some(flag.to_string()),
        (SettingKind::Email | SettingKind::Choice(_), Value::String(text)) => Some(text.clone()),
        (
            SettingKind::Number { .. }
            | SettingKind::Flag
            | SettingKind::Email
            | SettingKind::Choice(_),
            _,
        ) => None,
    };
    text.ok_or_else(|| {
        let refusal = match kind {
            SettingKind::Number { min, max } => SettingError::OutOfRange { key, min, max },
            SettingKind::Flag => SettingError::NotAFlag { key },
            SettingKind::Email => SettingError::NotAnEmail { key },
            SettingKind::Choice(choices) => SettingError::NotAChoice { key, choices },
        };
        ApiError::Admin(AdminError::Invalid {
            field: key.name(),
            message: refusal.to_string(),
        })
    })
}

/// The system settings (for holders of `manage_system_settings` or `manage_2fa_bypass`).
#[utoipa::path(
    get,
    path = "/api/v1/settings",
    tag = "settings",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The settings", body = SettingsOut),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_system_settings`", body = ErrorBody),
    )
)]
async fn get_settings(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
) -> Result<Json<SettingsOut>, ApiError> {
    let settings = state.admin.settings(&actor).await?;
    Ok(Json(SettingsOut::from(&settings)))
}

/// Change settings: `bypass_enabled` needs `manage_2fa_bypass`, every other one
/// `manage_system_settings`. Each change is audited with its value before and after.
#[utoipa::path(
    patch,
    path = "/api/v1/settings",
    tag = "settings",
    security(("bearer" = [])),
    request_body = SettingsPatchDoc,
    responses(
        (status = 200, description = "The settings as saved", body = SettingsOut),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`, with the `permission` a change needs", body = ErrorBody),
        (status = 422, description = "`invalid_field` (the setting's name: out of range or wrong type), `unknown_field`, or `invalid_input` (not a JSON object)", body = ErrorBody),
    )
)]
async fn update_settings(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ip: ClientIp,
    ApiJson(body): ApiJson<BTreeMap<String, Value>>,
) -> Result<Json<SettingsOut>, ApiError> {
    let mut changes = Vec::with_capacity(body.len());
    for (name, value) in &body {
        let key = SettingKey::parse(name).ok_or_else(|| ApiError::UnknownField(name.clone()))?;
        changes.push((key, setting_text(key, value)?));
    }
    let settings = state
        .admin
        .update_settings(&actor, &changes, Some(&ip_text(ip)))
        .await?;
    Ok(Json(SettingsOut::from(&settings)))
}

// ----- IP rules -----

/// An Acceptable IP Rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct IpRuleOut {
    pub id: i64,
    /// An IPv4/IPv6 address or CIDR range.
    pub network: String,
    /// Clients in this network are "in network" (when the bypass is enabled).
    pub bypass_2fa: bool,
    pub note: String,
}

impl From<StoredIpRule> for IpRuleOut {
    fn from(stored: StoredIpRule) -> Self {
        Self {
            id: stored.id,
            network: stored.rule.network.to_string(),
            bypass_2fa: stored.rule.bypass_2fa,
            note: stored.rule.note,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IpRuleList {
    pub ip_rules: Vec<IpRuleOut>,
}

/// A new rule.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IpRuleIn {
    /// An IPv4/IPv6 address or CIDR range, e.g. `10.0.0.0/8`.
    network: String,
    /// Default false.
    #[serde(default)]
    bypass_2fa: bool,
    /// At most 200 characters.
    #[serde(default)]
    note: String,
}

/// The IP rules.
#[utoipa::path(
    get,
    path = "/api/v1/ip-rules",
    tag = "ip-rules",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The rules", body = IpRuleList),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_ip_settings`", body = ErrorBody),
    )
)]
async fn list_ip_rules(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
) -> Result<Json<IpRuleList>, ApiError> {
    let rules = state.admin.ip_rules(&actor).await?;
    Ok(Json(IpRuleList {
        ip_rules: rules.into_iter().map(IpRuleOut::from).collect(),
    }))
}

/// Add Acceptable IP Rule.
#[utoipa::path(
    post,
    path = "/api/v1/ip-rules",
    tag = "ip-rules",
    security(("bearer" = [])),
    request_body = IpRuleIn,
    responses(
        (status = 201, description = "Added", body = IpRuleOut),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_ip_settings`", body = ErrorBody),
        (status = 409, description = "`network_exists`", body = ErrorBody),
        (status = 422, description = "`invalid_field` (`network`, `note`) or `invalid_input`", body = ErrorBody),
    )
)]
async fn add_ip_rule(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ip: ClientIp,
    ApiJson(body): ApiJson<IpRuleIn>,
) -> Result<(StatusCode, Json<IpRuleOut>), ApiError> {
    let rule = state
        .admin
        .add_ip_rule(
            &actor,
            &body.network,
            body.bypass_2fa,
            &body.note,
            Some(&ip_text(ip)),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(rule.into())))
}

/// Remove a rule.
#[utoipa::path(
    delete,
    path = "/api/v1/ip-rules/{id}",
    tag = "ip-rules",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The rule's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_ip_settings`", body = ErrorBody),
        (status = 404, description = "`not_found` (also for an id that is not a number)", body = ErrorBody),
    )
)]
async fn remove_ip_rule(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ip: ClientIp,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    state
        .admin
        .remove_ip_rule(&actor, id, Some(&ip_text(ip)))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ----- the OTP Notification Email template -----

/// The "OTP Notification Email" template. Placeholders: `@user_id`, `@user_otp`
/// (required in each body), `@user_name`, `@otp_valid_minutes`, `@site_name`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateBody {
    pub subject: String,
    pub text_body: String,
    /// `null` or blank: plain-text emails only.
    pub html_body: Option<String>,
}

impl From<EmailTemplate> for TemplateBody {
    fn from(template: EmailTemplate) -> Self {
        Self {
            subject: template.subject,
            text_body: template.text_body,
            html_body: template.html_body,
        }
    }
}

impl From<TemplateBody> for EmailTemplate {
    fn from(body: TemplateBody) -> Self {
        Self {
            subject: body.subject,
            text_body: body.text_body,
            html_body: body.html_body,
        }
    }
}

/// The OTP email template in use.
#[utoipa::path(
    get,
    path = "/api/v1/templates/otp-notification-email",
    tag = "settings",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The template", body = TemplateBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_system_settings`", body = ErrorBody),
    )
)]
async fn get_template(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
) -> Result<Json<TemplateBody>, ApiError> {
    Ok(Json(state.admin.otp_template(&actor).await?.into()))
}

/// Replace the OTP email template.
#[utoipa::path(
    put,
    path = "/api/v1/templates/otp-notification-email",
    tag = "settings",
    security(("bearer" = [])),
    request_body = TemplateBody,
    responses(
        (status = 200, description = "The template as saved", body = TemplateBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_system_settings`", body = ErrorBody),
        (status = 422, description = "`invalid_field` `template`: unknown placeholder, no `@user_otp`, too long, ...", body = ErrorBody),
    )
)]
async fn put_template(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ip: ClientIp,
    ApiJson(body): ApiJson<TemplateBody>,
) -> Result<Json<TemplateBody>, ApiError> {
    state
        .admin
        .save_otp_template(&actor, &body.into(), Some(&ip_text(ip)))
        .await?;
    Ok(Json(state.admin.otp_template(&actor).await?.into()))
}

// ----- the audit log -----

/// Filters of `GET /api/v1/audit`; times are Unix milliseconds.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Entries whose actor or subject is this username.
    user: Option<String>,
    /// One event, e.g. `setting_changed`.
    event: Option<String>,
    /// Entries at or after this time, in Unix milliseconds (e.g. `1800000000000`).
    #[param(value_type = Option<i64>)]
    since: Option<String>,
    /// Entries before this time, in Unix milliseconds.
    #[param(value_type = Option<i64>)]
    until: Option<String>,
    /// Entries to skip (default 0).
    #[param(value_type = Option<u32>)]
    offset: Option<String>,
    /// Entries per page (default 50, at most 500).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
}

/// An audit log entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryOut {
    pub id: i64,
    /// When, in Unix milliseconds.
    pub at: i64,
    pub event: String,
    /// Who acted (a username, or `cli`).
    pub actor: Option<String>,
    /// The user concerned.
    pub subject: Option<String>,
    pub client_ip: Option<String>,
    /// Details: values before and after for roles and settings.
    pub detail: String,
}

impl From<AuditEntry> for AuditEntryOut {
    fn from(entry: AuditEntry) -> Self {
        Self {
            id: entry.id,
            at: entry.at,
            event: entry.event,
            actor: entry.actor,
            subject: entry.subject,
            client_ip: entry.client_ip,
            detail: entry.detail,
        }
    }
}

/// A page of the audit log, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntryOut>,
}

/// The audit log, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    security(("bearer" = [])),
    params(AuditParams),
    responses(
        (status = 200, description = "A page of entries", body = AuditPage),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `view_audit_log`", body = ErrorBody),
        (status = 422, description = "`invalid_field` (`event`, `since`, `until`, `offset`, `limit`)", body = ErrorBody),
    )
)]
async fn audit_log(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> Result<Json<AuditPage>, ApiError> {
    let event = params
        .event
        .as_deref()
        .map(|name| {
            AuditEvent::parse(name).ok_or(ApiError::InvalidField {
                field: "event",
                message: "unknown event",
            })
        })
        .transpose()?;
    let millis = "a time in Unix milliseconds, e.g. 1800000000000";
    let since: Option<i64> = query_number(params.since.as_deref(), "since", millis)?;
    let until: Option<i64> = query_number(params.until.as_deref(), "until", millis)?;
    let offset = query_number(
        params.offset.as_deref(),
        "offset",
        "offset must be a whole number",
    )?;
    let limit = query_number(
        params.limit.as_deref(),
        "limit",
        "limit must be a whole number",
    )?;
    let query = AuditQuery {
        user: params.user,
        event,
        since: since.map(Timestamp::from_millis),
        until: until.map(Timestamp::from_millis),
        offset: offset.unwrap_or(0),
        limit: limit.unwrap_or(50),
    };
    let entries = state.admin.audit_log(&actor, &query).await?;
    Ok(Json(AuditPage {
        entries: entries.into_iter().map(AuditEntryOut::from).collect(),
    }))
}

// ----- API tokens -----

/// A new API token.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenIn {
    /// What the token is for (1 to 100 characters).
    name: String,
}

/// A new API token: shown this once, stored only as a hash.
#[derive(Serialize, ToSchema)]
pub struct TokenOut {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    pub name: String,
}

/// Create an API token that acts with the caller's own permissions.
#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    tag = "tokens",
    security(("bearer" = [])),
    request_body = TokenIn,
    responses(
        (status = 201, description = "Created; the token is not shown again", body = TokenOut),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 422, description = "`invalid_field` `name`", body = ErrorBody),
    )
)]
async fn create_token(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ip: ClientIp,
    ApiJson(body): ApiJson<TokenIn>,
) -> Result<(StatusCode, Json<TokenOut>), ApiError> {
    let token = state
        .admin
        .create_api_token(&actor, &body.name, Some(&ip_text(ip)))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenOut {
            token: token.as_str().to_owned(),
            name: body.name,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Permission, Require2fa};

    /// The values of an enum schema of the OpenAPI document.
    fn documented(schema_name: &str) -> Vec<String> {
        let doc = serde_json::to_value(<crate::web::openapi::ApiDoc as utoipa::OpenApi>::openapi())
            .unwrap_or_default();
        doc["components"]["schemas"][schema_name]["enum"]
            .as_array()
            .map(|values| {
                values
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn the_documented_permissions_are_the_domain_permissions() {
        let names: Vec<String> = Permission::ALL
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect();
        assert_eq!(documented("Permission"), names);
    }

    #[test]
    fn the_documented_require_2fa_values_are_the_domain_values() {
        let names: Vec<String> = [Require2fa::No, Require2fa::Encourage, Require2fa::Force]
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect();
        assert_eq!(documented("Require2fa"), names);
    }

    #[test]
    fn every_setting_is_in_the_settings_answer_and_the_patch_schema() {
        let answer = serde_json::to_value(SettingsOut::from(&Settings::default())).unwrap();
        let doc = serde_json::to_value(<crate::web::openapi::ApiDoc as utoipa::OpenApi>::openapi())
            .unwrap();
        for key in SettingKey::ALL {
            assert!(answer.get(key.name()).is_some(), "{}", key.name());
            assert!(
                doc["components"]["schemas"]["SettingsPatch"]["properties"]
                    .get(key.name())
                    .is_some(),
                "{}",
                key.name()
            );
        }
    }

    #[test]
    fn each_setting_kind_takes_its_json_type_only() {
        assert_eq!(
            setting_text(SettingKey::OtpLength, &serde_json::json!(8)).unwrap(),
            "8"
        );
        assert_eq!(
            setting_text(SettingKey::BypassEnabled, &serde_json::json!(true)).unwrap(),
            "true"
        );
        assert_eq!(
            setting_text(SettingKey::Autoreply, &serde_json::json!("a@b.org")).unwrap(),
            "a@b.org"
        );
        assert_eq!(
            setting_text(
                SettingKey::ValidatePassMode,
                &serde_json::json!("password_otp")
            )
            .unwrap(),
            "password_otp"
        );
        for (key, wrong) in [
            (SettingKey::OtpLength, serde_json::json!("8")),
            (SettingKey::BypassEnabled, serde_json::json!("true")),
            (SettingKey::BypassEnabled, serde_json::json!(1)),
            (SettingKey::Autoreply, serde_json::json!(null)),
            (SettingKey::LockoutMinutes, serde_json::json!([1])),
            (SettingKey::ValidatePassMode, serde_json::json!(true)),
        ] {
            match setting_text(key, &wrong) {
                Err(ApiError::Admin(AdminError::Invalid { field, .. })) => {
                    assert_eq!(field, key.name())
                }
                other => panic!("{key:?} {wrong}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_role_answer_names_its_permissions_and_security() {
        let role = Role {
            id: crate::domain::RoleId(1),
            name: crate::domain::RoleName::parse("Clerks").unwrap(),
            security: crate::domain::RoleSecurity::new(Require2fa::Force, true, false).unwrap(),
            permissions: [Permission::ViewAuditLog, Permission::ManageUsers]
                .into_iter()
                .collect(),
        };
        let out = RoleOut::from(&role);
        assert_eq!(out.name, "Clerks");
        assert_eq!(out.require_2fa, "force");
        assert!(out.otp_required && !out.interface);
        assert_eq!(out.permissions, ["manage_users", "view_audit_log"]);
    }
}
