//! Access Control (SPEC sections 5 and 6): the users list and search, Add User, the user's
//! page (edit, reset the password, unlock), and 2 Step Verification for a user: Setup (or
//! Setup New Device), Complete Setup, Change and Disable.
//!
//! Every page needs Manage Users, checked by [`Admin`](crate::service::admin::Admin).

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::{
    actor, fail, failure, failure_page, ip_text, poster, render, segment, Choice, CsrfForm,
    Failure, FieldErrors, Nav, SummaryItem,
};
use crate::domain::{OtpMethod, PromptMode, UserSource};
use crate::service::admin::{Actor, UserInput, UserPatch, UserView};
use crate::service::devices::SetupInfo;
use crate::web::html::{inline_svg, key_groups, see_other, Layout, PageForm};
use crate::web::{AppState, ClientIp};

#[derive(Template)]
#[template(path = "admin/users.html")]
pub struct UsersView {
    pub layout: Layout,
    pub nav: Nav,
    pub q: String,
    pub users: Vec<UserRow>,
    pub total: u64,
    pub page: u32,
    pub pages: u32,
    pub q_param: String,
}

pub struct UserRow {
    pub username: String,
    pub href: String,
    pub display_name: String,
    pub role: String,
    pub two_step_enabled: bool,
    pub active: bool,
    pub locked: bool,
    /// Locked until an administrator unlocks (Lockout Minutes 0 or the hard limit).
    pub locked_until_unlock: bool,
    /// Toward the hard limit ([`crate::domain::HARD_LIMIT`]).
    pub consecutive_failures: u32,
    pub hard_limit: u32,
    /// "Local" or "Directory" (SPEC 12).
    pub source: &'static str,
    /// A directory user's entry as last read: its DN, groups and when (Edit User).
    pub directory: Option<DirectoryRow>,
}

/// What Edit User shows of a directory user's entry.
pub struct DirectoryRow {
    pub dn: String,
    pub groups: Vec<String>,
    pub synced_at: TimeText,
}

impl UserRow {
    fn of(view: &UserView) -> Self {
        Self {
            username: view.user.username.as_str().to_owned(),
            href: format!("/admin/users/{}", segment(view.user.username.as_str())),
            display_name: view.user.display_name.as_str().to_owned(),
            role: view.role.clone(),
            two_step_enabled: view.two_step_enabled,
            active: view.user.active,
            locked: view.locked,
            locked_until_unlock: view.locked_until_unlock,
            consecutive_failures: view.user.consecutive_failures,
            hard_limit: crate::domain::HARD_LIMIT,
            source: match view.user.source {
                UserSource::Local => "Local",
                UserSource::Directory => "Directory",
            },
            directory: view.directory.as_ref().map(|link| DirectoryRow {
                dn: link.dn.clone(),
                groups: link.groups.clone(),
                synced_at: TimeText::of(link.synced_at),
            }),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/user_new.html")]
pub struct NewUserView {
    pub layout: Layout,
    pub nav: Nav,
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub role: String,
    pub roles: Vec<String>,
    pub must_change: bool,
    pub errors: FieldErrors,
    pub summary: Vec<SummaryItem>,
}

/// Add User's fields and their labels, in the form's order (the error summary's order).
const NEW_USER_LABELS: &[(&str, &str)] = &[
    ("username", "Username"),
    ("display_name", "Display name"),
    ("email", "Email"),
    ("role", "Role"),
    ("password", "Password"),
];

/// Edit User's fields and their labels.
pub(super) const EDIT_USER_LABELS: &[(&str, &str)] = &[
    ("display_name", "Display name"),
    ("email", "Email"),
    ("role", "Role"),
    ("password", "Reset password"),
    ("minutes", "Minutes"),
    ("uses", "Uses"),
    ("reason", "Reason"),
];

#[derive(Template)]
#[template(path = "admin/user_edit.html")]
pub struct EditUserView {
    pub layout: Layout,
    pub nav: Nav,
    pub user: UserRow,
    pub display_name: String,
    pub email: String,
    pub role: String,
    pub roles: Vec<String>,
    pub active: bool,
    pub notice: Option<String>,
    pub errors: FieldErrors,
    pub summary: Vec<SummaryItem>,
    /// The confirmed device, if any (SPEC section 11: method, prompt mode, enrolled, last used).
    pub device: Option<DeviceRow>,
    /// While locked: when the lock ends; `None` when it lasts until an administrator unlocks it.
    pub locked_until: Option<TimeText>,
    /// Unused recovery codes (SPEC 10), with "Revoke recovery codes".
    pub recovery_codes_left: u32,
    /// The user's security keys and passkeys (SPEC 14), each with Rename and Remove.
    pub keys: Vec<KeyRow>,
    /// `/admin/audit?user=<name>`: the user's audit entries.
    pub audit_href: String,
    /// The user's temporary access code (SPEC 15), with its time and uses left.
    pub temporary_access: Option<TemporaryAccessRow>,
    /// The values of the form that issues one.
    pub access_form: AccessFormValues,
}

/// A temporary access code on Edit User (never the code itself).
pub struct TemporaryAccessRow {
    pub reason: String,
    pub issued_by: String,
    pub created_at: TimeText,
    pub expires_at: TimeText,
    pub minutes_left: i64,
    pub uses: u32,
    pub uses_left: u32,
    /// It still lets the user in.
    pub live: bool,
}

impl TemporaryAccessRow {
    pub fn of(access: &crate::domain::TemporaryAccess, now: crate::clock::Timestamp) -> Self {
        Self {
            reason: access.reason.clone(),
            issued_by: access.issued_by.clone(),
            created_at: TimeText::of(access.created_at),
            expires_at: TimeText::of(access.expires_at),
            minutes_left: access.minutes_left(now),
            uses: access.uses,
            uses_left: access.uses_left,
            live: access.live(now),
        }
    }
}

/// The "Issue a temporary access code" form's values: the defaults, or what was sent.
pub struct AccessFormValues {
    pub minutes: String,
    pub uses: String,
    pub reason: String,
}

impl Default for AccessFormValues {
    fn default() -> Self {
        Self {
            minutes: "60".to_owned(),
            uses: "1".to_owned(),
            reason: String::new(),
        }
    }
}

/// A security key on Edit User.
pub struct KeyRow {
    pub id: i64,
    pub name: String,
    pub prompt_mode: &'static str,
    pub passkey: bool,
    pub created_at: TimeText,
    pub last_used: Option<TimeText>,
}

/// A moment as the console shows it: UTC text in a `<time datetime=...>` element.
pub struct TimeText {
    /// `2027-01-15T08:00:00Z`
    pub datetime: String,
    /// `2027-01-15 08:00:00 UTC`
    pub text: String,
}

impl TimeText {
    pub(super) fn of(at: crate::clock::Timestamp) -> Self {
        let text = super::audit::utc_text(at.millis());
        Self {
            datetime: text.replacen(' ', "T", 1).replace(" UTC", "Z"),
            text,
        }
    }
}

/// One device on Edit User.
pub struct DeviceRow {
    pub method: &'static str,
    pub prompt_mode: &'static str,
    pub enrolled_at: Option<TimeText>,
    pub last_used: Option<TimeText>,
}

fn method_label(method: OtpMethod) -> &'static str {
    match method {
        OtpMethod::Totp => "Authenticator app, time-based (TOTP)",
        OtpMethod::Hotp => "Authenticator app, counter-based (HOTP)",
    }
}

fn prompt_label(mode: PromptMode) -> &'static str {
    match mode {
        PromptMode::EveryLogin => "Every Login",
        PromptMode::WhenAppropriate => "When Appropriate",
    }
}

#[derive(Template)]
#[template(path = "admin/user_setup.html")]
pub struct SetupChoiceView {
    pub layout: Layout,
    pub nav: Nav,
    pub user: UserRow,
    pub new_device: bool,
    pub methods: Vec<Choice>,
    pub prompt_modes: Vec<Choice>,
    pub errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "admin/user_qr.html")]
pub struct SetupQrView {
    pub layout: Layout,
    pub nav: Nav,
    pub user: UserRow,
    pub hotp: bool,
    pub qr_svg: String,
    pub key_groups: Vec<String>,
    pub errors: FieldErrors,
}

impl SetupChoiceView {
    /// The error summary (SPEC section 11): the choices' errors concern the whole form,
    /// so its items are not links.
    fn summary_items(&self) -> Vec<SummaryItem> {
        self.errors.summary(&[])
    }
}

impl SetupQrView {
    /// The error summary (SPEC section 11).
    fn summary_items(&self) -> Vec<SummaryItem> {
        self.errors.summary(&[("code", "Code")])
    }
}

#[derive(Template)]
#[template(path = "admin/user_change.html")]
pub struct ChangeView {
    pub layout: Layout,
    pub nav: Nav,
    pub user: UserRow,
    pub confirm: bool,
}

const USERS_PER_PAGE: u32 = 25;

#[derive(Deserialize, Default)]
pub(super) struct UsersQuery {
    q: Option<String>,
    page: Option<u32>,
}

pub(super) async fn users_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<UsersQuery>, QueryRejection>,
) -> Response {
    let actor = match actor(&state, &headers).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let q = query.q.unwrap_or_default().trim().to_owned();
    let page_no = query.page.unwrap_or(1).max(1);
    let offset = (page_no - 1).saturating_mul(USERS_PER_PAGE);
    let search = (!q.is_empty()).then_some(q.as_str());
    let (users, total) = match state
        .admin
        .list_users(&actor, search, offset, USERS_PER_PAGE)
        .await
    {
        Ok(found) => found,
        Err(error) => return fail(&state, &headers, error),
    };
    let pages = u32::try_from(total.div_ceil(u64::from(USERS_PER_PAGE)))
        .unwrap_or(u32::MAX)
        .max(1);
    let view = UsersView {
        layout: Layout::new(&state, &headers),
        nav: Nav::new(&actor, "users"),
        q_param: segment(&q),
        q,
        users: users.iter().map(UserRow::of).collect(),
        total,
        page: page_no,
        pages,
    };
    render(&state, StatusCode::OK, &view.layout, &view)
}

#[derive(Deserialize)]
pub(super) struct NewUserForm {
    csrf: Option<String>,
    #[serde(default)]
    username: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
    must_change_password: Option<String>,
}

pub(super) async fn new_user_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let actor = match actor(&state, &headers).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let roles = match state.admin.role_choices(&actor).await {
        Ok(roles) => roles,
        Err(error) => return fail(&state, &headers, error),
    };
    let view = NewUserView {
        layout: Layout::new(&state, &headers),
        nav: Nav::new(&actor, "users"),
        username: String::new(),
        display_name: String::new(),
        email: String::new(),
        role: "Staff".to_owned(),
        roles,
        must_change: true,
        errors: FieldErrors::default(),
        summary: Vec::new(),
    };
    render(&state, StatusCode::OK, &view.layout, &view)
}

pub(super) async fn new_user_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PageForm(form): PageForm<NewUserForm>,
) -> Response {
    let actor = match poster(&state, &headers, form.csrf.as_deref()).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let input = UserInput {
        username: form.username.trim().to_owned(),
        display_name: form.display_name.clone(),
        email: Some(form.email.clone()),
        role: form.role.clone(),
        password: form.password.clone(),
        must_change_password: form.must_change_password.is_some(),
    };
    // Every field is checked first, so that the page lists every error at once.
    let mut errors = FieldErrors::default();
    match state.admin.new_user_problems(&actor, &input).await {
        Ok(problems) => {
            for (field, message) in problems {
                errors.push(field, super::sentence(&message));
            }
        }
        Err(error) => return fail(&state, &headers, error),
    }
    if !errors.any() {
        match state
            .admin
            .create_user(&actor, &input, Some(&ip_text(ip)))
            .await
        {
            Ok(created) => {
                return see_other(&format!(
                    "/admin/users/{}?m=created",
                    segment(created.user.username.as_str())
                ))
            }
            Err(error) => match failure(error) {
                Failure::Field { field, message } => errors.push(field, message),
                other => return failure_page(&state, &headers, other),
            },
        }
    }
    let roles = match state.admin.role_choices(&actor).await {
        Ok(roles) => roles,
        Err(error) => return fail(&state, &headers, error),
    };
    let view = NewUserView {
        layout: Layout::new(&state, &headers),
        nav: Nav::new(&actor, "users"),
        username: form.username,
        display_name: form.display_name,
        email: form.email,
        role: form.role,
        roles,
        must_change: form.must_change_password.is_some(),
        summary: errors.summary(NEW_USER_LABELS),
        errors,
    };
    render(
        &state,
        StatusCode::UNPROCESSABLE_ENTITY,
        &view.layout,
        &view,
    )
}

#[derive(Deserialize, Default)]
pub(super) struct MessageQuery {
    m: Option<String>,
}

fn user_notice(code: Option<&str>, username: &str) -> Option<String> {
    match code {
        Some("created") => Some(format!("The user {username} was added.")),
        Some("saved") => Some("The changes were saved.".to_owned()),
        Some("unlocked") => Some(format!("{username} is unlocked and can sign in again.")),
        Some("key_renamed") => Some("The security key was renamed.".to_owned()),
        Some("key_removed") => Some(format!(
            "The security key was removed; it no longer signs {username} in."
        )),
        Some("access_revoked") => Some(format!(
            "The temporary access code of {username} was revoked; it no longer works."
        )),
        Some("recovery_revoked") => Some(format!(
            "The recovery codes of {username} were revoked; none of them works any more."
        )),
        Some("setup_done") => Some(format!(
            "2 Step Verification was successfully set up for {username}"
        )),
        Some("disabled") => Some(format!(
            "2 Step Verification is now disabled for {username}. They should remove the \
             account from their authenticator app."
        )),
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
async fn show_edit_user(
    state: &AppState,
    headers: &HeaderMap,
    actor: &Actor,
    name: &str,
    notice: Option<String>,
    status: StatusCode,
    errors: FieldErrors,
    submitted: Option<&EditUserForm>,
) -> Response {
    match edit_user_view(state, headers, actor, name, notice, errors, submitted).await {
        Ok(view) => render(state, status, &view.layout, &view),
        Err(response) => response,
    }
}

/// Edit User's page of `name`, or the page of the failure to read it.
pub(super) async fn edit_user_view(
    state: &AppState,
    headers: &HeaderMap,
    actor: &Actor,
    name: &str,
    notice: Option<String>,
    errors: FieldErrors,
    submitted: Option<&EditUserForm>,
) -> Result<EditUserView, Response> {
    let details = match state.admin.user_details(actor, name).await {
        Ok(details) => details,
        Err(error) => return Err(fail(state, headers, error)),
    };
    let found = &details.view;
    let roles = match state.admin.role_choices(actor).await {
        Ok(roles) => roles,
        Err(error) => return Err(fail(state, headers, error)),
    };
    let temporary_access = match state.admin.temporary_access(actor, name).await {
        Ok(access) => {
            access.map(|access| TemporaryAccessRow::of(&access, state.admin.context().now()))
        }
        Err(error) => return Err(fail(state, headers, error)),
    };
    let (display_name, email, role, active) = match submitted {
        Some(form) => (
            form.display_name.clone().unwrap_or_default(),
            form.email.clone().unwrap_or_default(),
            form.role.clone().unwrap_or_default(),
            form.active.is_some(),
        ),
        None => (
            found.user.display_name.as_str().to_owned(),
            found
                .user
                .email
                .as_ref()
                .map(|e| e.as_str().to_owned())
                .unwrap_or_default(),
            found.role.clone(),
            found.user.active,
        ),
    };
    let view = EditUserView {
        layout: Layout::new(state, headers),
        nav: Nav::new(actor, "users"),
        user: UserRow::of(found),
        display_name,
        email,
        role,
        roles,
        active,
        notice,
        summary: errors.summary(EDIT_USER_LABELS),
        errors,
        device: details.device.as_ref().map(|device| DeviceRow {
            method: method_label(device.method),
            prompt_mode: prompt_label(device.prompt_mode),
            enrolled_at: device.enrolled_at.map(TimeText::of),
            last_used: device.last_used.map(TimeText::of),
        }),
        locked_until: details
            .locked_until
            .filter(|until| *until != crate::clock::Timestamp::NEVER)
            .map(TimeText::of),
        recovery_codes_left: details.recovery_codes_left,
        keys: details
            .security_keys
            .iter()
            .map(|key| KeyRow {
                id: key.id.0,
                name: key.name.as_str().to_owned(),
                prompt_mode: prompt_label(key.prompt_mode),
                passkey: key.discoverable,
                created_at: TimeText::of(key.created_at),
                last_used: key.last_used_at.map(TimeText::of),
            })
            .collect(),
        audit_href: format!(
            "/admin/audit?user={}",
            segment(found.user.username.as_str())
        ),
        temporary_access,
        access_form: AccessFormValues::default(),
    };
    Ok(view)
}

pub(super) async fn edit_user_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    query: Result<Query<MessageQuery>, QueryRejection>,
) -> Response {
    let actor = match actor(&state, &headers).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let code = query.ok().and_then(|Query(q)| q.m);
    let notice = user_notice(code.as_deref(), &name);
    show_edit_user(
        &state,
        &headers,
        &actor,
        &name,
        notice,
        StatusCode::OK,
        FieldErrors::default(),
        None,
    )
    .await
}

#[derive(Deserialize)]
pub(super) struct EditUserForm {
    csrf: Option<String>,
    // Absent for a directory user, whose form leaves out what the directory owns.
    display_name: Option<String>,
    email: Option<String>,
    role: Option<String>,
    active: Option<String>,
    #[serde(default)]
    password: String,
}

pub(super) async fn edit_user_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(name): Path<String>,
    PageForm(form): PageForm<EditUserForm>,
) -> Response {
    let actor = match poster(&state, &headers, form.csrf.as_deref()).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let patch = UserPatch {
        display_name: form.display_name.clone(),
        email: form.email.clone().map(Some),
        role: form.role.clone(),
        active: Some(form.active.is_some()),
        password: (!form.password.is_empty()).then(|| form.password.clone()),
    };
    match state
        .admin
        .update_user(&actor, &name, &patch, Some(&ip_text(ip)))
        .await
    {
        Ok(_) => see_other(&format!("/admin/users/{}?m=saved", segment(&name))),
        Err(error) => match failure(error) {
            Failure::Field { field, message } => {
                // Every field's error at once: the service stops at the first.
                let mut errors = FieldErrors::one(field, message);
                match state.admin.user_patch_problems(&actor, &name, &patch).await {
                    Ok(problems) => {
                        for (field, message) in problems {
                            errors.push(field, super::sentence(&message));
                        }
                    }
                    Err(error) => return fail(&state, &headers, error),
                }
                show_edit_user(
                    &state,
                    &headers,
                    &actor,
                    &name,
                    None,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    errors,
                    Some(&form),
                )
                .await
            }
            other => failure_page(&state, &headers, other),
        },
    }
}

pub(super) async fn unlock_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(name): Path<String>,
    PageForm(form): PageForm<CsrfForm>,
) -> Response {
    let actor = match poster(&state, &headers, form.csrf.as_deref()).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    match state.admin.unlock(&actor, &name, Some(&ip_text(ip))).await {
        Ok(()) => see_other(&format!("/admin/users/{}?m=unlocked", segment(&name))),
        Err(error) => fail(&state, &headers, error),
    }
}

/// `POST /admin/users/{name}/recovery-codes/revoke`: Revoke recovery codes.
pub(super) async fn revoke_recovery_codes_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(name): Path<String>,
    PageForm(form): PageForm<CsrfForm>,
) -> Response {
    let actor = match poster(&state, &headers, form.csrf.as_deref()).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    match state
        .admin
        .revoke_recovery_codes(&actor, &name, Some(&ip_text(ip)))
        .await
    {
        Ok(_) => see_other(&format!(
            "/admin/users/{}?m=recovery_revoked",
            segment(&name)
        )),
        Err(error) => fail(&state, &headers, error),
    }
}

// ----- 2 Step Verification: Setup, Complete Setup, Change, Disable -----

async fn show_setup_choice(
    state: &AppState,
    headers: &HeaderMap,
    actor: &Actor,
    name: &str,
    status: StatusCode,
    errors: FieldErrors,
) -> Response {
    let found = match state.admin.get_user(actor, name).await {
        Ok(found) => found,
        Err(error) => return fail(state, headers, error),
    };
    let methods = match state.admin.setup_methods(actor).await {
        Ok(methods) => methods,
        Err(error) => return fail(state, headers, error),
    };
    let view = SetupChoiceView {
        layout: Layout::new(state, headers),
        nav: Nav::new(actor, "users"),
        new_device: found.two_step_enabled,
        user: UserRow::of(&found),
        methods: methods
            .iter()
            .enumerate()
            .map(|(index, method)| Choice {
                value: method.as_str(),
                label: method.label(),
                checked: index == 0,
            })
            .collect(),
        prompt_modes: [PromptMode::WhenAppropriate, PromptMode::EveryLogin]
            .into_iter()
            .enumerate()
            .map(|(index, mode)| Choice {
                value: mode.as_str(),
                label: mode.label(),
                checked: index == 0,
            })
            .collect(),
        errors,
    };
    render(state, status, &view.layout, &view)
}

/// `GET /admin/users/{name}/2fa/setup`: Setup (or Setup New Device): the options.
pub(super) async fn setup_choice_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let actor = match actor(&state, &headers).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    show_setup_choice(
        &state,
        &headers,
        &actor,
        &name,
        StatusCode::OK,
        FieldErrors::default(),
    )
    .await
}

#[derive(Deserialize)]
pub(super) struct SetupForm {
    csrf: Option<String>,
    method: Option<String>,
    prompt_mode: Option<String>,
}

/// `POST /admin/users/{name}/2fa/setup`: Create; then the QR code page.
pub(super) async fn setup_create_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    PageForm(form): PageForm<SetupForm>,
) -> Response {
    let actor = match poster(&state, &headers, form.csrf.as_deref()).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let method = form.method.as_deref().and_then(OtpMethod::parse);
    let mode = form.prompt_mode.as_deref().and_then(PromptMode::parse);
    let (Some(method), Some(mode)) = (method, mode) else {
        return show_setup_choice(
            &state,
            &headers,
            &actor,
            &name,
            StatusCode::UNPROCESSABLE_ENTITY,
            FieldErrors::one(
                "prompt_mode",
                "Please choose one of the options.".to_owned(),
            ),
        )
        .await;
    };
    match state.admin.setup_device(&actor, &name, method, mode).await {
        Ok(_) => see_other(&format!("/admin/users/{}/2fa/confirm", segment(&name))),
        Err(error) => match failure(error) {
            Failure::Field { field, message } => {
                show_setup_choice(
                    &state,
                    &headers,
                    &actor,
                    &name,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    FieldErrors::one(field, message),
                )
                .await
            }
            other => failure_page(&state, &headers, other),
        },
    }
}

async fn show_setup_qr(
    state: &AppState,
    headers: &HeaderMap,
    actor: &Actor,
    name: &str,
    status: StatusCode,
    errors: FieldErrors,
) -> Response {
    let found = match state.admin.get_user(actor, name).await {
        Ok(found) => found,
        Err(error) => return fail(state, headers, error),
    };
    let setup: SetupInfo = match state.admin.pending_setup(actor, name).await {
        Ok(Some(setup)) => setup,
        Ok(None) => return see_other(&format!("/admin/users/{}/2fa/setup", segment(name))),
        Err(error) => return fail(state, headers, error),
    };
    let view = SetupQrView {
        layout: Layout::new(state, headers),
        nav: Nav::new(actor, "users"),
        user: UserRow::of(&found),
        hotp: setup.method == OtpMethod::Hotp,
        qr_svg: inline_svg(&setup.qr_svg),
        key_groups: key_groups(&setup.secret_base32),
        errors,
    };
    render(state, status, &view.layout, &view)
}

/// `GET /admin/users/{name}/2fa/confirm`: the QR code, the manual key and the code field.
pub(super) async fn setup_qr_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let actor = match actor(&state, &headers).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    show_setup_qr(
        &state,
        &headers,
        &actor,
        &name,
        StatusCode::OK,
        FieldErrors::default(),
    )
    .await
}

#[derive(Deserialize)]
pub(super) struct CodeForm {
    csrf: Option<String>,
    #[serde(default)]
    code: String,
}

/// `POST /admin/users/{name}/2fa/confirm`: Complete Setup.
pub(super) async fn setup_confirm_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(name): Path<String>,
    PageForm(form): PageForm<CodeForm>,
) -> Response {
    let actor = match poster(&state, &headers, form.csrf.as_deref()).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    match state
        .admin
        .confirm_device(&actor, &name, &form.code, Some(&ip_text(ip)))
        .await
    {
        Ok(()) => see_other(&format!("/admin/users/{}?m=setup_done", segment(&name))),
        Err(error) => match failure(error) {
            Failure::Field { field, message } => {
                show_setup_qr(
                    &state,
                    &headers,
                    &actor,
                    &name,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    FieldErrors::one(field, message),
                )
                .await
            }
            other => failure_page(&state, &headers, other),
        },
    }
}

async fn show_change(state: &AppState, headers: &HeaderMap, name: &str, confirm: bool) -> Response {
    let actor = match actor(state, headers).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let found = match state.admin.get_user(&actor, name).await {
        Ok(found) => found,
        Err(error) => return fail(state, headers, error),
    };
    if !found.two_step_enabled {
        return see_other(&format!("/admin/users/{}", segment(name)));
    }
    let view = ChangeView {
        layout: Layout::new(state, headers),
        nav: Nav::new(&actor, "users"),
        user: UserRow::of(&found),
        confirm,
    };
    render(state, StatusCode::OK, &view.layout, &view)
}

/// `GET /admin/users/{name}/2fa/change`: Disable or Setup New Device.
pub(super) async fn change_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    show_change(&state, &headers, &name, false).await
}

/// `GET /admin/users/{name}/2fa/disable`: the confirmation step.
pub(super) async fn disable_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    show_change(&state, &headers, &name, true).await
}

pub(super) async fn disable_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(name): Path<String>,
    PageForm(form): PageForm<CsrfForm>,
) -> Response {
    let actor = match poster(&state, &headers, form.csrf.as_deref()).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    match state
        .admin
        .disable_device(&actor, &name, Some(&ip_text(ip)))
        .await
    {
        Ok(_) => see_other(&format!("/admin/users/{}?m=disabled", segment(&name))),
        Err(error) => fail(&state, &headers, error),
    }
}

// ----- security keys (SPEC 14): Rename, Remove -----

#[derive(Deserialize)]
pub(super) struct KeyNameForm {
    csrf: Option<String>,
    #[serde(default)]
    name: String,
}

/// A key's id from the address; one that is not a number names no key (0).
fn key_id(text: &str) -> crate::domain::SecurityKeyId {
    crate::domain::SecurityKeyId(text.parse().unwrap_or(0))
}

/// `POST /admin/users/{name}/keys/{id}/rename`.
pub(super) async fn rename_key_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path((name, id)): Path<(String, String)>,
    PageForm(form): PageForm<KeyNameForm>,
) -> Response {
    let actor = match poster(&state, &headers, form.csrf.as_deref()).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let key = key_id(&id);
    match state
        .admin
        .rename_user_key(&actor, &name, key, &form.name, Some(&ip_text(ip)))
        .await
    {
        Ok(()) => see_other(&format!("/admin/users/{}?m=key_renamed", segment(&name))),
        Err(error) => match failure(error) {
            Failure::Field { field, message } => {
                show_edit_user(
                    &state,
                    &headers,
                    &actor,
                    &name,
                    None,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    FieldErrors::one(field, message),
                    None,
                )
                .await
            }
            other => failure_page(&state, &headers, other),
        },
    }
}

/// `POST /admin/users/{name}/keys/{id}/remove`: a lost or stolen key.
pub(super) async fn remove_key_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path((name, id)): Path<(String, String)>,
    PageForm(form): PageForm<CsrfForm>,
) -> Response {
    let actor = match poster(&state, &headers, form.csrf.as_deref()).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let key = key_id(&id);
    match state
        .admin
        .remove_user_key(&actor, &name, key, Some(&ip_text(ip)))
        .await
    {
        Ok(()) => see_other(&format!("/admin/users/{}?m=key_removed", segment(&name))),
        Err(error) => fail(&state, &headers, error),
    }
}
