//! The system settings of SPEC section 2 (`/api/v1/settings`): reading them, and changing
//! any subset, each JSON value checked against its setting's kind.

use std::borrow::Cow;
use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;
use utoipa::openapi::schema::{
    AdditionalProperties, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use super::{ip_text, AdminActor};
use crate::domain::{SettingError, SettingKey, SettingKind, SettingSpec, Settings, SETTINGS};
use crate::service::admin::AdminError;
use crate::web::json_error::{ApiError, ApiJson, ErrorBody};
use crate::web::{AppState, ClientIp};

/// The system settings of SPEC section 2, as the API answers them: one field per row of
/// the settings table ([`SETTINGS`]), in its order, with the JSON type of its kind
/// (numbers as numbers, the flag as a boolean, the address and the choice as strings).
#[derive(Debug)]
pub struct SettingsOut(Settings);

impl From<&Settings> for SettingsOut {
    fn from(settings: &Settings) -> Self {
        Self(settings.clone())
    }
}

/// A setting's value as JSON, from its text form and kind.
fn setting_json(key: SettingKey, text: String) -> Value {
    match key.kind() {
        SettingKind::Number { .. } => text
            .parse::<u64>()
            .map_or(Value::String(text), |number| Value::Number(number.into())),
        SettingKind::Flag => text
            .parse::<bool>()
            .map_or(Value::String(text), Value::Bool),
        SettingKind::Email { .. } | SettingKind::Choice(_) | SettingKind::Text { .. } => {
            Value::String(text)
        }
    }
}

impl Serialize for SettingsOut {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(SETTINGS.len()))?;
        for spec in &SETTINGS {
            map.serialize_entry(spec.name, &setting_json(spec.key, self.0.get(spec.key)))?;
        }
        map.end()
    }
}

/// One setting's schema: its JSON type, range or choices, format, help and default.
fn setting_schema(spec: &SettingSpec) -> Schema {
    let schema = ObjectBuilder::new()
        .description(Some(spec.help))
        .default(Some(setting_json(spec.key, spec.default.to_owned())));
    let schema = match spec.kind {
        SettingKind::Number { min, max } => schema
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
            .minimum(Some(min))
            .maximum(Some(max)),
        SettingKind::Flag => schema.schema_type(Type::Boolean),
        SettingKind::Email { .. } => schema
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email))),
        SettingKind::Choice(choices) => schema
            .schema_type(Type::String)
            .enum_values(Some(choices.iter().copied())),
        SettingKind::Text { max_chars } => schema
            .schema_type(Type::String)
            .max_length(Some(max_chars as usize)),
    };
    schema.into()
}

/// The object of every setting, built from the settings table: `required` lists them all
/// (the answer), or none and no other property is allowed (a change).
fn settings_schema(description: &str, answer: bool) -> RefOr<Schema> {
    let mut object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(description));
    for spec in &SETTINGS {
        object = object.property(spec.name, setting_schema(spec));
        if answer {
            object = object.required(spec.name);
        }
    }
    if !answer {
        object = object.additional_properties(Some(AdditionalProperties::FreeForm(false)));
    }
    RefOr::T(object.into())
}

impl PartialSchema for SettingsOut {
    fn schema() -> RefOr<Schema> {
        settings_schema("The system settings of SPEC section 2.", true)
    }
}

impl ToSchema for SettingsOut {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("SettingsOut")
    }
}

/// The schema of a change (`PATCH /api/v1/settings`): the handler reads the JSON object key
/// by key (see [`update_settings`]).
struct SettingsPatch;

impl PartialSchema for SettingsPatch {
    fn schema() -> RefOr<Schema> {
        settings_schema(
            "Settings to change: any subset of the settings, with the same types. Unknown \
             names are refused (`unknown_field`); all changes are saved or none.",
            false,
        )
    }
}

impl ToSchema for SettingsPatch {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("SettingsPatch")
    }
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
        (
            SettingKind::Email { .. } | SettingKind::Choice(_) | SettingKind::Text { .. },
            Value::String(text),
        ) => Some(text.clone()),
        (
            SettingKind::Number { .. }
            | SettingKind::Flag
            | SettingKind::Email { .. }
            | SettingKind::Choice(_)
            | SettingKind::Text { .. },
            _,
        ) => None,
    };
    text.ok_or_else(|| {
        let refusal = match kind {
            SettingKind::Number { min, max } => SettingError::OutOfRange { key, min, max },
            SettingKind::Flag => SettingError::NotAFlag { key },
            SettingKind::Email { .. } => SettingError::NotAnEmail { key },
            SettingKind::Choice(choices) => SettingError::NotAChoice { key, choices },
            SettingKind::Text { max_chars } => SettingError::TooLong { key, max_chars },
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
    request_body = SettingsPatch,
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
    fn the_schemas_and_the_answer_follow_the_settings_table() {
        let answer = serde_json::to_value(SettingsOut::from(&Settings::default())).unwrap();
        assert_eq!(answer.as_object().unwrap().len(), SETTINGS.len());
        assert_eq!(answer["use_2fa"], serde_json::json!(2));
        assert_eq!(answer["bypass_enabled"], serde_json::json!(false));
        assert_eq!(answer["otp_length"], serde_json::json!(6));
        assert_eq!(answer["autoreply"], serde_json::json!("no-reply@localhost"));
        assert_eq!(answer["validate_pass_mode"], serde_json::json!("otp"));
        let out = serde_json::to_value(<SettingsOut as PartialSchema>::schema()).unwrap();
        let patch = serde_json::to_value(<SettingsPatch as PartialSchema>::schema()).unwrap();
        assert_eq!(
            out["required"].as_array().unwrap().len(),
            SETTINGS.len(),
            "the answer has every setting"
        );
        assert!(patch.get("required").is_none(), "a change has any subset");
        assert_eq!(patch["additionalProperties"], serde_json::json!(false));
        for spec in &SETTINGS {
            let name = spec.name;
            for schema in [&out, &patch] {
                let property = &schema["properties"][name];
                assert_eq!(property["description"], spec.help, "{name}");
                assert_eq!(property["default"], answer[name], "{name}: default");
                match spec.kind {
                    SettingKind::Number { min, max } => {
                        assert_eq!(property["type"], "integer", "{name}");
                        assert_eq!(property["minimum"], min, "{name}");
                        assert_eq!(property["maximum"], max, "{name}");
                        assert!(answer[name].is_u64(), "{name}: a number");
                    }
                    SettingKind::Flag => {
                        assert_eq!(property["type"], "boolean", "{name}");
                        assert!(answer[name].is_boolean(), "{name}");
                    }
                    SettingKind::Email { .. } => {
                        assert_eq!(property["type"], "string", "{name}");
                        assert_eq!(property["format"], "email", "{name}");
                        assert!(answer[name].is_string(), "{name}");
                    }
                    SettingKind::Choice(choices) => {
                        assert_eq!(property["type"], "string", "{name}");
                        assert_eq!(property["enum"], serde_json::json!(choices), "{name}");
                        assert!(answer[name].is_string(), "{name}");
                    }
                    SettingKind::Text { max_chars } => {
                        assert_eq!(property["type"], "string", "{name}");
                        assert_eq!(property["maxLength"], max_chars, "{name}");
                        assert!(answer[name].is_string(), "{name}");
                    }
                }
            }
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
