//! A user's 2FA device (`/api/v1/users/{username}/device`, SPEC section 9): Setup (or
//! Setup New Device), its confirmation with a code, and Disable.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{ip_text, AdminActor, ApiPath};
use crate::service::admin::AdminError;
use crate::web::json_error::{ApiError, ApiJson, ErrorBody};
use crate::web::signin_api::{parse_method, parse_prompt_mode, DeviceSetup};
use crate::web::{AppState, ClientIp};

/// Setup (or Setup New Device) for a user.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceIn {
    #[schema(value_type = crate::web::signin_api::MethodName)]
    method: String,
    #[schema(value_type = crate::web::signin_api::PromptModeName)]
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
pub(super) async fn setup_device(
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
pub(super) async fn confirm_device(
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
pub(super) async fn disable_device(
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

/// Revoke recovery codes: every code of the user stops working (SPEC 10).
#[utoipa::path(
    delete,
    path = "/api/v1/users/{username}/recovery-codes",
    tag = "users",
    security(("bearer" = [])),
    params(("username" = String, Path, description = "The username")),
    responses(
        (status = 204, description = "Revoked: the user has no recovery code left"),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_users`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user", body = ErrorBody),
    )
)]
pub(super) async fn revoke_recovery_codes(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ip: ClientIp,
    ApiPath(username): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state
        .admin
        .revoke_recovery_codes(&actor, &username, Some(&ip_text(ip)))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
