//! The system settings of SPEC section 2 (`/api/v1/settings`): reading them, and changing
//! any subset, each JSON value checked against its setting's kind.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{ip_text, AdminActor};
use crate::domain::{SettingError, SettingKey, SettingKind, Settings};
use crate::service::admin::AdminError;
use crate::web::json_error::{ApiError, ApiJson, ErrorBody};
use crate::web::{AppState, ClientIp};

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
pub(super) async fn get_settings(
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
pub(super) async fn update_settings(
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
