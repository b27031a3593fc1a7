//! System Settings (SPEC section 2): every setting with its range, label and help text,
//! changed in one form; all of them come from the settings table
//! ([`SETTINGS`](crate::domain::SETTINGS)). Each setting needs the table's permission
//! (Bypass Enabled Manage 2FA Bypass, every other Manage System Settings, SPEC section 6),
//! checked by
//! [`Admin`](crate::service::admin::Admin); a setting the user may not change is shown
//! disabled, and only those that differ are saved.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::users::TimeText;
use super::{
    actor, csrf_of, fail, failure, failure_page, field, flag, ip_text, poster, render, Failure,
    FieldErrors, Nav, SavedQuery, SummaryItem,
};
use crate::domain::{SettingKey, SettingKind, Settings};
use crate::service::admin::Actor;
use crate::web::html::{see_other, Layout, PageForm};
use crate::web::{AppState, ClientIp};

#[derive(Template)]
#[template(path = "admin/settings.html")]
pub struct SettingsView {
    pub layout: Layout,
    pub nav: Nav,
    pub rows: Vec<SettingRow>,
    pub saved: bool,
    pub errors: FieldErrors,
    pub summary: Vec<SummaryItem>,
    /// The directory connection (SPEC 12), for those who may manage system settings.
    pub directory: DirectoryPanel,
    /// Why security keys are not offered (SPEC 14), for those who may manage system
    /// settings; `None` when they are (or the viewer may not see it).
    pub keys_problem: Option<String>,
}

/// System Settings' "Directory sign-in" section.
pub enum DirectoryPanel {
    /// The viewer may not see it (no Manage System Settings).
    Hidden,
    /// No `--ldap-url`.
    Off,
    On(DirectoryState),
}

/// The directory's address and its last success and last error.
pub struct DirectoryState {
    pub url: String,
    pub user_base: String,
    pub last_success: Option<TimeText>,
    pub last_error: Option<(TimeText, String)>,
}

impl DirectoryPanel {
    fn of(state: &AppState, actor: &Actor) -> Self {
        match state.admin.directory_status(actor) {
            Err(_) => Self::Hidden,
            Ok(None) => Self::Off,
            Ok(Some(status)) => Self::On(DirectoryState {
                url: status.url,
                user_base: status.user_base,
                last_success: status.state.last_success.map(TimeText::of),
                last_error: status
                    .state
                    .last_error
                    .map(|(at, message)| (TimeText::of(at), message)),
            }),
        }
    }
}

/// A number setting whose few values each have a meaning is edited as labelled radio
/// buttons (SPEC section 11: "Use 2FA is edited as three labelled choices, not a number");
/// the stored and API values stay the numbers. Each choice: value, label, explanation.
fn labelled_numbers(key: SettingKey) -> &'static [LabelledNumber] {
    match key {
        SettingKey::Use2fa => &[
            LabelledNumber {
                value: "1",
                label: "Counter-based codes (HOTP) only",
                hint: "A new code each time the user presses the app's button; for users who type slowly or whose phone's clock is unreliable.",
            },
            LabelledNumber {
                value: "2",
                label: "Time-based codes (TOTP) only",
                hint: "A new code every 30 seconds, as most authenticator apps do. Recommended.",
            },
            LabelledNumber {
                value: "3",
                label: "The user chooses",
                hint: "Set-up offers both kinds; the user picks one.",
            },
        ],
        _ => &[],
    }
}

/// The second page before Enable Bypass 2FA OTP is turned on (SPEC section 11): the form's
/// fields again, hidden, with `confirm_bypass`.
#[derive(Template)]
#[template(path = "admin/settings_confirm.html")]
pub struct BypassConfirmView {
    pub layout: Layout,
    pub nav: Nav,
    pub fields: Vec<(String, String)>,
}

pub struct LabelledNumber {
    pub value: &'static str,
    pub label: &'static str,
    pub hint: &'static str,
}

pub struct SettingRow {
    pub name: &'static str,
    pub label: &'static str,
    pub help: &'static str,
    /// "number", "flag", "email", "choice" or "text" (`max` is then its length).
    pub kind: &'static str,
    pub min: u32,
    pub max: u32,
    /// For "choice": the words offered.
    pub choices: &'static [&'static str],
    pub value: String,
    pub editable: bool,
    /// Why it is not editable.
    pub note: String,
    /// For a number with labelled values: the radio buttons (else empty).
    pub options: &'static [LabelledNumber],
}

fn setting_rows(
    actor: &Actor,
    settings: &Settings,
    submitted: Option<&[(String, String)]>,
) -> Vec<SettingRow> {
    SettingKey::ALL
        .into_iter()
        .map(|key| {
            let (kind, min, max, choices) = match key.kind() {
                SettingKind::Number { min, max } => ("number", min, max, &[][..]),
                SettingKind::Flag => ("flag", 0, 1, &[][..]),
                SettingKind::Email { .. } => ("email", 0, 0, &[][..]),
                SettingKind::Choice(choices) => ("choice", 0, 0, choices),
                SettingKind::Text { max_chars } => ("text", 0, max_chars, &[][..]),
            };
            let permission = key.permission();
            let editable = actor.has(permission);
            let note = format!(
                "Only a role with the {} permission can change this setting.",
                permission.label()
            );
            let value = match submitted {
                Some(fields) if editable => match key.kind() {
                    SettingKind::Flag => flag(fields, key.name()).to_string(),
                    SettingKind::Number { .. }
                    | SettingKind::Email { .. }
                    | SettingKind::Choice(_) => field(fields, key.name()).to_owned(),
                    // A textarea sends CRLF line breaks; the setting keeps LF.
                    SettingKind::Text { .. } => field(fields, key.name()).replace("\r\n", "\n"),
                },
                _ => settings.get(key),
            };
            SettingRow {
                name: key.name(),
                label: key.label(),
                help: key.help(),
                kind,
                min,
                max,
                choices,
                value,
                editable,
                note,
                options: labelled_numbers(key),
            }
        })
        .collect()
}

pub(super) async fn settings_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<SavedQuery>, QueryRejection>,
) -> Response {
    let actor = match actor(&state, &headers).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let settings = match state.admin.settings(&actor).await {
        Ok(settings) => settings,
        Err(error) => return fail(&state, &headers, error),
    };
    let view = SettingsView {
        layout: Layout::new(&state, &headers),
        nav: Nav::new(&actor, "settings"),
        rows: setting_rows(&actor, &settings, None),
        saved: query.ok().and_then(|Query(q)| q.saved).is_some(),
        errors: FieldErrors::default(),
        summary: Vec::new(),
        directory: DirectoryPanel::of(&state, &actor),
        keys_problem: state.admin.security_keys_problem(&actor).ok().flatten(),
    };
    render(&state, StatusCode::OK, &view.layout, &view)
}

pub(super) async fn settings_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PageForm(fields): PageForm<Vec<(String, String)>>,
) -> Response {
    let actor = match poster(&state, &headers, csrf_of(&fields)).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let current = match state.admin.settings(&actor).await {
        Ok(settings) => settings,
        Err(error) => return fail(&state, &headers, error),
    };
    // Only the settings this user may change are read from the form (a disabled field is
    // not sent), and only those that differ are changed.
    let changes: Vec<(SettingKey, String)> = setting_rows(&actor, &current, Some(&fields))
        .into_iter()
        .zip(SettingKey::ALL)
        .filter(|(row, key)| row.editable && row.value.trim() != current.get(*key))
        .map(|(row, key)| (key, row.value.trim().to_owned()))
        .collect();
    let turns_bypass_on = changes
        .iter()
        .any(|(key, value)| *key == SettingKey::BypassEnabled && value == "true");
    if turns_bypass_on && !flag(&fields, "confirm_bypass") {
        let view = BypassConfirmView {
            layout: Layout::new(&state, &headers),
            nav: Nav::new(&actor, "settings"),
            fields: fields
                .iter()
                .filter(|(name, _)| name != "csrf" && name != "confirm_bypass")
                .cloned()
                .collect(),
        };
        return render(&state, StatusCode::OK, &view.layout, &view);
    }
    match state
        .admin
        .update_settings(&actor, &changes, Some(&ip_text(ip)))
        .await
    {
        Ok(_) => see_other("/admin/settings?saved=1"),
        Err(error) => match failure(error) {
            Failure::Field { field, message } => {
                // Every setting's error at once: each change is tried alone on the
                // current settings (the same parsing as the service's), after the one
                // the service reported.
                let mut errors = FieldErrors::one(field, message);
                for (key, value) in &changes {
                    let mut probe = current.clone();
                    if let Err(error) = probe.set(*key, value) {
                        errors.push(key.name(), super::sentence(&error.to_string()));
                    }
                }
                let labels: Vec<(&str, &str)> = SettingKey::ALL
                    .iter()
                    .map(|key| (key.name(), key.label()))
                    .collect();
                let view = SettingsView {
                    layout: Layout::new(&state, &headers),
                    nav: Nav::new(&actor, "settings"),
                    rows: setting_rows(&actor, &current, Some(&fields)),
                    saved: false,
                    summary: errors.summary(&labels),
                    errors,
                    directory: DirectoryPanel::of(&state, &actor),
                    keys_problem: state.admin.security_keys_problem(&actor).ok().flatten(),
                };
                render(
                    &state,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &view.layout,
                    &view,
                )
            }
            other => failure_page(&state, &headers, other),
        },
    }
}
