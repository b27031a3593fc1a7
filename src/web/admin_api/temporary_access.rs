//! A user's temporary access code (`/api/v1/users/{username}/temporary-access`, SPEC 15):
//! issue one (shown once), see it (without the code) and revoke it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ip_text, AdminActor, ApiPath};
use crate::domain::TemporaryAccess;
use crate::web::json_error::{ApiError, ApiJson, ErrorBody};
use crate::web::{AppState, ClientIp};

/// What the service desk asks for.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemporaryAccessIn {
    /// How long the code works: 1 to 1440 minutes.
    #[schema(minimum = 1, maximum = 1440)]
    minutes: u32,
    /// How many sign-ins it stands in for: 1 to 10.
    #[schema(minimum = 1, maximum = 10)]
    uses: u32,
    /// Why (for example the service desk ticket): 1 to 200 characters, audited.
    reason: String,
}

/// A user's code as stored, without the code.
#[derive(Serialize, ToSchema)]
pub struct TemporaryAccessOut {
    pub reason: String,
    pub issued_by: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub expires_at: String,
    pub uses: u32,
    pub uses_left: u32,
    /// It still lets its user in (a use left, not expired).
    pub live: bool,
}

impl TemporaryAccessOut {
    fn new(access: TemporaryAccess, live: bool) -> Self {
        Self {
            reason: access.reason,
            issued_by: access.issued_by,
            created_at: access.created_at.iso_utc(),
            expires_at: access.expires_at.iso_utc(),
            uses: access.uses,
            uses_left: access.uses_left,
            live,
        }
    }
}

/// A code just issued: `code` is shown this once (`xxxx-xxxx-xxxx`).
#[derive(Serialize, ToSchema)]
pub struct IssuedOut {
    pub code: String,
    #[serde(flatten)]
    pub access: TemporaryAccessOut,
}

/// Issue a temporary access code for a user who lost the device (SPEC 15). With the
/// password it stands in for the second factor, for `uses` sign-ins within `minutes`. It
/// replaces any earlier code of the user. The user and `security_officer_email` are
/// emailed; the audit log has the reason.
#[utoipa::path(
    post,
    path = "/api/v1/users/{username}/temporary-access",
    tag = "users",
    security(("bearer" = [])),
    params(("username" = String, Path, description = "The username")),
    request_body = TemporaryAccessIn,
    responses(
        (status = 201, description = "Issued; the code is shown this once", body = IssuedOut),
        (status = 400, description = "`unknown_field`, `invalid_input`: not the body described", body = ErrorBody),
        (status = 422, description = "`invalid_field`: minutes, uses or reason out of range; `username`: an interface user", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_users`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
pub(super) async fn issue(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ip: ClientIp,
    ApiPath(username): ApiPath<String>,
    ApiJson(body): ApiJson<TemporaryAccessIn>,
) -> Result<(StatusCode, Json<IssuedOut>), ApiError> {
    let issued = state
        .admin
        .issue_temporary_access(
            &actor,
            &username,
            body.minutes,
            body.uses,
            &body.reason,
            Some(&ip_text(ip)),
        )
        .await?;
    let out = IssuedOut {
        code: issued.code.reveal(),
        access: TemporaryAccessOut::new(issued.access, true),
    };
    Ok((StatusCode::CREATED, Json(out)))
}

/// The user's temporary access code, without the code; `404 not_found` when there is
/// none (never issued, revoked, or expired and purged).
#[utoipa::path(
    get,
    path = "/api/v1/users/{username}/temporary-access",
    tag = "users",
    security(("bearer" = [])),
    params(("username" = String, Path, description = "The username")),
    responses(
        (status = 200, description = "The code's terms and what is left", body = TemporaryAccessOut),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_users`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
pub(super) async fn show(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ApiPath(username): ApiPath<String>,
) -> Result<Json<TemporaryAccessOut>, ApiError> {
    let access = state
        .admin
        .temporary_access(&actor, &username)
        .await?
        .ok_or(crate::service::admin::AdminError::NotFound(
            "temporary access code",
        ))?;
    let live = access.live(state.admin.context().now());
    Ok(Json(TemporaryAccessOut::new(access, live)))
}

/// Revoke the user's temporary access code: it no longer works.
#[utoipa::path(
    delete,
    path = "/api/v1/users/{username}/temporary-access",
    tag = "users",
    security(("bearer" = [])),
    params(("username" = String, Path, description = "The username")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_users`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user, or no code", body = ErrorBody),
    )
)]
pub(super) async fn revoke(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ip: ClientIp,
    ApiPath(username): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state
        .admin
        .revoke_temporary_access(&actor, &username, Some(&ip_text(ip)))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
