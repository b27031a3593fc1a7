//! Security roles (`/api/v1/roles`, SPEC section 9): their list, creation, reading and
//! changes, and the value sets of their string fields (Require 2FA, permissions) for the
//! OpenAPI document.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ip_text, AdminActor, ApiPath};
use crate::domain::Role;
use crate::service::admin::RolePatch;
use crate::web::json_error::{ApiError, ApiJson, ErrorBody};
use crate::web::{AppState, ClientIp};

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
    ManageApplications,
}

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
    /// SPEC 15: a session of the role's users ends after this many minutes without a
    /// request.
    #[schema(minimum = 1, maximum = 1440)]
    pub session_idle_minutes: u32,
    /// SPEC 15: and this many hours after the sign-in, whatever happens.
    #[schema(minimum = 1, maximum = 168)]
    pub session_max_hours: u32,
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
            session_idle_minutes: role.session_limits.idle_minutes(),
            session_max_hours: role.session_limits.max_hours(),
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
    /// SPEC 15: 1 to 1440; default for a new role: 30.
    #[schema(minimum = 1, maximum = 1440)]
    session_idle_minutes: Option<i64>,
    /// SPEC 15: 1 to 168; default for a new role: 12.
    #[schema(minimum = 1, maximum = 168)]
    session_max_hours: Option<i64>,
}

impl From<RoleIn> for RolePatch {
    fn from(input: RoleIn) -> Self {
        Self {
            name: input.name,
            require_2fa: input.require_2fa,
            otp_required: input.otp_required,
            interface: input.interface,
            permissions: input.permissions,
            session_idle_minutes: input.session_idle_minutes,
            session_max_hours: input.session_max_hours,
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
pub(super) async fn list_roles(
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
        (status = 422, description = "`invalid_field` (`name`, `require_2fa`, `otp_required`, `permissions`, `session_idle_minutes`, `session_max_hours`) or `invalid_input`", body = ErrorBody),
    )
)]
pub(super) async fn create_role(
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
pub(super) async fn get_role(
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
pub(super) async fn update_role(
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
    fn a_role_answer_names_its_permissions_and_security() {
        let role = Role {
            id: crate::domain::RoleId(1),
            name: crate::domain::RoleName::parse("Clerks").unwrap(),
            security: crate::domain::RoleSecurity::new(Require2fa::Force, true, false).unwrap(),
            permissions: [Permission::ViewAuditLog, Permission::ManageUsers]
                .into_iter()
                .collect(),
            session_limits: crate::domain::SessionLimits::new(10, 2).unwrap(),
        };
        let out = RoleOut::from(&role);
        assert_eq!(out.name, "Clerks");
        assert_eq!(out.require_2fa, "force");
        assert!(out.otp_required && !out.interface);
        assert_eq!(out.permissions, ["manage_users", "view_audit_log"]);
        assert_eq!((out.session_idle_minutes, out.session_max_hours), (10, 2));
    }
}
