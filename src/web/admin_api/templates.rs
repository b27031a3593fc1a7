//! The email templates: the OTP Notification Email (`/api/v1/templates/otp-notification-email`,
//! SPEC section 9) and the security notifications (`/api/v1/templates/security/{event}`,
//! SPEC section 10): reading and replacing them.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ip_text, AdminActor, ApiPath};
use crate::domain::SecurityEvent;
use crate::mail::template::EmailTemplate;
use crate::service::admin::AdminError;
use crate::web::json_error::{ApiError, ApiJson, ErrorBody};
use crate::web::{AppState, ClientIp};

/// An email template. The "OTP Notification Email"'s placeholders: `@user_id`, `@user_otp`
/// (required in each body), `@user_name`, `@otp_valid_minutes`, `@site_name`; a security
/// notification's: `@user_id`, `@user_name`, `@event_time`, `@client_ip`, `@site_name`.
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
pub(super) async fn get_template(
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
pub(super) async fn put_template(
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

/// Parses the `{event}` of a security template's address: unknown is 404 `not_found`.
fn security_event(name: &str) -> Result<SecurityEvent, ApiError> {
    SecurityEvent::parse(name).ok_or_else(|| AdminError::NotFound("email template").into())
}

/// A security notification template in use (module "Security", SPEC section 10).
/// Placeholders: `@user_id`, `@user_name`, `@event_time`, `@client_ip`, `@site_name`.
#[utoipa::path(
    get,
    path = "/api/v1/templates/security/{event}",
    tag = "settings",
    security(("bearer" = [])),
    params(("event" = String, Path, description = "`device_added`, `device_removed`, `recovery_codes_generated`, `recovery_code_used`, `account_locked`, `password_changed` or `password_reset`")),
    responses(
        (status = 200, description = "The template", body = TemplateBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_system_settings`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = ErrorBody),
    )
)]
pub(super) async fn get_security_template(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ApiPath(event): ApiPath<String>,
) -> Result<Json<TemplateBody>, ApiError> {
    let event = security_event(&event)?;
    Ok(Json(
        state.admin.security_template(&actor, event).await?.into(),
    ))
}

/// Replace a security notification template. `@user_otp` (or any code) is refused.
#[utoipa::path(
    put,
    path = "/api/v1/templates/security/{event}",
    tag = "settings",
    security(("bearer" = [])),
    params(("event" = String, Path, description = "`device_added`, `device_removed`, `recovery_codes_generated`, `recovery_code_used`, `account_locked`, `password_changed` or `password_reset`")),
    request_body = TemplateBody,
    responses(
        (status = 200, description = "The template as saved", body = TemplateBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_system_settings`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = ErrorBody),
        (status = 422, description = "`invalid_field` `template`: unknown placeholder, `@user_otp`, too long, ...", body = ErrorBody),
    )
)]
pub(super) async fn put_security_template(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ApiPath(event): ApiPath<String>,
    ip: ClientIp,
    ApiJson(body): ApiJson<TemplateBody>,
) -> Result<Json<TemplateBody>, ApiError> {
    let event = security_event(&event)?;
    state
        .admin
        .save_security_template(&actor, event, &body.into(), Some(&ip_text(ip)))
        .await?;
    Ok(Json(
        state.admin.security_template(&actor, event).await?.into(),
    ))
}
