//! The administration console (issue 6; SPEC sections 5, 6 and 7): server-rendered pages
//! under `/admin`, without JavaScript.
//!
//! Every page needs a signed-in session; every handler calls [`Admin`], which checks the
//! permission of SPEC section 6 on the server, so a page never decides who may do what.
//! Every form carries the CSRF token and every POST verifies it before anything else.
//! Failures go through one exhaustive mapping of [`AdminError`], [`failure`]: a field's
//! error is shown next to it, a missing permission is a 403 page.
//!
//! HTML comes only from the askama templates in `templates/admin/`; the one value inserted
//! unescaped is the QR code, an SVG that twostep generates itself. An administrator's
//! HTML email body is only ever shown escaped, as source.
//!
//! [`Admin`]: crate::service::admin::Admin

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::pages::{
    csrf_ok, form_expired, inline_svg, internal_error, key_groups, page, problem, see_other,
    with_cookie, Layout, PageForm,
};
use super::{cookies, request_id, AppState, ClientIp};
use crate::clock::Timestamp;
use crate::domain::{
    OtpMethod, Permission, PromptMode, Require2fa, Role, SettingKey, SettingKind, Settings,
};
use crate::mail::template::{EmailTemplate, TemplateValues};
use crate::service::admin::{Actor, AdminError, RolePatch, UserInput, UserPatch, UserView};
use crate::service::devices::SetupInfo;
use crate::store::{AuditEvent, AuditQuery, Conflict};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(admin_home))
        .route("/admin/users", get(users_page))
        .route("/admin/users/new", get(new_user_page).post(new_user_submit))
        .route(
            "/admin/users/{name}",
            get(edit_user_page).post(edit_user_submit),
        )
        .route("/admin/users/{name}/unlock", post(unlock_submit))
        .route(
            "/admin/users/{name}/2fa/setup",
            get(setup_choice_page).post(setup_create_submit),
        )
        .route(
            "/admin/users/{name}/2fa/confirm",
            get(setup_qr_page).post(setup_confirm_submit),
        )
        .route("/admin/users/{name}/2fa/change", get(change_page))
        .route(
            "/admin/users/{name}/2fa/disable",
            get(disable_page).post(disable_submit),
        )
        .route("/admin/roles", get(roles_page))
        .route("/admin/roles/new", get(new_role_page).post(new_role_submit))
        .route(
            "/admin/roles/{name}",
            get(edit_role_page).post(edit_role_submit),
        )
        .route("/admin/settings", get(settings_page).post(settings_submit))
        .route("/admin/ip", get(ip_page).post(ip_submit))
        .route("/admin/ip/{id}/delete", post(ip_delete_submit))
        .route("/admin/email", get(email_page).post(email_submit))
        .route("/admin/audit", get(audit_page))
}

// ---------------------------------------------------------------------------------------
// Navigation
// ---------------------------------------------------------------------------------------

/// The console's sections, each with the permission that opens it.
const SECTIONS: [(&str, &str, &str, Permission); 6] = [
    (
        "users",
        "/admin/users",
        "Access Control",
        Permission::ManageUsers,
    ),
    (
        "roles",
        "/admin/roles",
        "Security Roles",
        Permission::ManageRoles,
    ),
    (
        "settings",
        "/admin/settings",
        "System Settings",
        Permission::ManageSystemSettings,
    ),
    (
        "ip",
        "/admin/ip",
        "IP Settings",
        Permission::ManageIpSettings,
    ),
    (
        "email",
        "/admin/email",
        "Email Templates",
        Permission::ManageSystemSettings,
    ),
    (
        "audit",
        "/admin/audit",
        "Audit Log",
        Permission::ViewAuditLog,
    ),
];

/// Whether a role opens any section of the console (the link on the signed-in page).
pub fn any_section(role: &Role) -> bool {
    SECTIONS
        .iter()
        .any(|(_, _, _, permission)| role.has(*permission))
}

pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// The navigation bar: only the sections the user's role allows.
pub struct Nav {
    pub items: Vec<NavItem>,
    pub username: String,
}

impl Nav {
    fn new(actor: &Actor, current: &str) -> Self {
        Self {
            items: SECTIONS
                .iter()
                .filter(|(_, _, _, permission)| actor.has(*permission))
                .map(|(key, href, label, _)| NavItem {
                    href,
                    label,
                    current: *key == current,
                })
                .collect(),
            username: actor.name().to_owned(),
        }
    }
}

/// Errors of a form, by field name.
#[derive(Default)]
pub struct FieldErrors(Vec<(&'static str, String)>);

impl FieldErrors {
    fn one(field: &'static str, message: String) -> Self {
        Self(vec![(field, message)])
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| *name == field)
            .map(|(_, message)| message.as_str())
    }

    pub fn any(&self) -> bool {
        !self.0.is_empty()
    }

    /// Errors of fields the form does not show (shown above the form); `shown` lists the
    /// fields that show their own, separated by commas.
    pub fn other(&self, shown: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(name, _)| !shown.split(',').any(|field| field == *name))
            .map(|(_, message)| message.as_str())
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// The one mapping of AdminError
// ---------------------------------------------------------------------------------------

enum Failure {
    /// 403: "You do not have permission to …"; nothing was done.
    Forbidden(Permission),
    NotFound(&'static str),
    /// A value to correct, shown next to its field.
    Field {
        field: &'static str,
        message: String,
    },
    Internal(String),
}

fn failure(error: AdminError) -> Failure {
    match error {
        AdminError::Forbidden(permission) => Failure::Forbidden(permission),
        AdminError::NotFound(what) => Failure::NotFound(what),
        AdminError::Invalid { field, message } => Failure::Field {
            field,
            message: sentence(&message),
        },
        AdminError::Conflict(conflict) => {
            let (field, message) = match conflict {
                Conflict::UsernameTaken => ("username", "A user with this username already exists"),
                Conflict::RoleNameTaken => ("name", "A role with this name already exists"),
                Conflict::NetworkExists => ("network", "This IP address or range already exists"),
                Conflict::RoleInUse => ("role", "This role is still assigned to users"),
            };
            Failure::Field {
                field,
                message: message.to_owned(),
            }
        }
        AdminError::Internal(source) => {
            let id = request_id();
            tracing::error!(request_id = %id, error = %source, "internal error on an admin page");
            Failure::Internal(id)
        }
    }
}

/// A service message as a sentence: capital first letter.
fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// What a permission lets one do, after "You do not have permission to".
fn permission_phrase(permission: Permission) -> &'static str {
    match permission {
        Permission::ManageUsers => "manage users",
        Permission::ManageRoles => "manage security roles",
        Permission::ManageSystemSettings => "manage system settings",
        Permission::Manage2faBypass => "manage the 2FA bypass",
        Permission::ManageIpSettings => "manage IP settings",
        Permission::ViewAuditLog => "view the audit log",
        Permission::VerifyOtp => "verify one-time passwords",
    }
}

/// The page of a failure that is not shown on its form.
fn failure_page(state: &AppState, headers: &HeaderMap, failure: Failure) -> Response {
    match failure {
        Failure::Forbidden(permission) => problem(
            state,
            headers,
            StatusCode::FORBIDDEN,
            "You do not have permission",
            format!(
                "You do not have permission to {}. Ask an administrator whose role allows it.",
                permission_phrase(permission)
            ),
            None,
        ),
        Failure::NotFound(what) => problem(
            state,
            headers,
            StatusCode::NOT_FOUND,
            "Not found",
            format!("There is no such {what}."),
            None,
        ),
        Failure::Field { message, .. } => problem(
            state,
            headers,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Please check your entry",
            message,
            None,
        ),
        Failure::Internal(id) => internal_error(state, headers, id),
    }
}

fn fail(state: &AppState, headers: &HeaderMap, error: AdminError) -> Response {
    failure_page(state, headers, failure(error))
}

// ---------------------------------------------------------------------------------------
// The signed-in administrator
// ---------------------------------------------------------------------------------------

/// The actor of the session, or the response (303 to `/signin`, or an error page).
async fn actor(state: &AppState, headers: &HeaderMap) -> Result<Actor, Response> {
    let Some(token) = cookies::get(headers, cookies::SESSION).filter(|t| !t.is_empty()) else {
        return Err(see_other("/signin"));
    };
    match state.signin.session_user(&token).await {
        Ok(Some((user, role))) => Ok(Actor::User { user, role }),
        Ok(None) => Err(with_cookie(
            see_other("/signin"),
            cookies::clear_session(state),
        )),
        Err(error) => {
            let id = request_id();
            tracing::error!(request_id = %id, error = %error, "session lookup failed");
            Err(internal_error(state, headers, id))
        }
    }
}

/// The actor of a POST: signed in and with the form's CSRF token.
async fn poster(
    state: &AppState,
    headers: &HeaderMap,
    token: Option<&str>,
) -> Result<Actor, Response> {
    let actor = actor(state, headers).await?;
    if !csrf_ok(state, headers, token) {
        return Err(form_expired(state, headers));
    }
    Ok(actor)
}

fn ip_text(ip: crate::domain::ClientAddress) -> String {
    ip.to_string()
}

fn render<T: Template>(
    state: &AppState,
    status: StatusCode,
    layout: &Layout,
    view: &T,
) -> Response {
    page(state, status, layout, view)
}

/// A page path segment: usernames and role names go into links percent-encoded.
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn flag(fields: &[(String, String)], name: &str) -> bool {
    fields.iter().any(|(key, _)| key == name)
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(key, _)| key == name)
        .map_or("", |(_, value)| value.as_str())
}

fn csrf_of(fields: &[(String, String)]) -> Option<&str> {
    fields
        .iter()
        .find(|(key, _)| key == "csrf")
        .map(|(_, value)| value.as_str())
}

// ---------------------------------------------------------------------------------------
// Views
// ---------------------------------------------------------------------------------------

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
}

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
}

pub struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    pub checked: bool,
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

#[derive(Template)]
#[template(path = "admin/user_change.html")]
pub struct ChangeView {
    pub layout: Layout,
    pub nav: Nav,
    pub user: UserRow,
    pub confirm: bool,
}

#[derive(Template)]
#[template(path = "admin/roles.html")]
pub struct RolesView {
    pub layout: Layout,
    pub nav: Nav,
    pub roles: Vec<RoleRow>,
}

pub struct RoleRow {
    pub name: String,
    pub href: String,
    pub require_2fa: &'static str,
    pub otp_required: bool,
    pub interface: bool,
    pub permissions: String,
}

#[derive(Template)]
#[template(path = "admin/role_edit.html")]
pub struct RoleEditView {
    pub layout: Layout,
    pub nav: Nav,
    /// `None`: a new role.
    pub original: Option<String>,
    pub action: String,
    pub name: String,
    pub require_choices: Vec<Choice>,
    pub otp_required: bool,
    pub interface: bool,
    pub permissions: Vec<Choice>,
    pub errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "admin/settings.html")]
pub struct SettingsView {
    pub layout: Layout,
    pub nav: Nav,
    pub rows: Vec<SettingRow>,
    pub saved: bool,
    pub errors: FieldErrors,
}

pub struct SettingRow {
    pub name: &'static str,
    pub label: &'static str,
    pub help: &'static str,
    /// "number", "flag", "email" or "choice".
    pub kind: &'static str,
    pub min: u32,
    pub max: u32,
    /// For "choice": the words offered.
    pub choices: &'static [&'static str],
    pub value: String,
    pub editable: bool,
    /// Why it is not editable.
    pub note: &'static str,
}

#[derive(Template)]
#[template(path = "admin/ip.html")]
pub struct IpView {
    pub layout: Layout,
    pub nav: Nav,
    pub rules: Vec<IpRow>,
    pub network: String,
    pub bypass: bool,
    pub note: String,
    pub notice: Option<&'static str>,
    pub errors: FieldErrors,
}

pub struct IpRow {
    pub id: i64,
    pub network: String,
    pub bypass: bool,
    pub note: String,
}

#[derive(Template)]
#[template(path = "admin/email.html")]
pub struct EmailView {
    pub layout: Layout,
    pub nav: Nav,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub preview: Option<Preview>,
    pub saved: bool,
    pub errors: FieldErrors,
}

pub struct Preview {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
pub struct AuditView {
    pub layout: Layout,
    pub nav: Nav,
    pub user: String,
    pub event: String,
    pub from: String,
    pub to: String,
    pub events: Vec<Choice>,
    pub entries: Vec<AuditRow>,
    pub page: u32,
    pub prev_href: Option<String>,
    pub next_href: Option<String>,
    pub errors: FieldErrors,
}

pub struct AuditRow {
    pub at: String,
    pub event: String,
    pub actor: String,
    pub subject: String,
    pub client_ip: String,
    pub detail: String,
}

// ---------------------------------------------------------------------------------------
// Handlers: the console's start
// ---------------------------------------------------------------------------------------

/// `GET /admin`: the first section the role allows.
async fn admin_home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let actor = match actor(&state, &headers).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    match SECTIONS.iter().find(|(_, _, _, p)| actor.has(*p)) {
        Some((_, href, _, _)) => see_other(href),
        None => failure_page(
            &state,
            &headers,
            Failure::Forbidden(Permission::ManageUsers),
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Access Control
// ---------------------------------------------------------------------------------------

const USERS_PER_PAGE: u32 = 25;

#[derive(Deserialize, Default)]
struct UsersQuery {
    q: Option<String>,
    page: Option<u32>,
}

async fn users_page(
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
struct NewUserForm {
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

async fn new_user_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
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
    };
    render(&state, StatusCode::OK, &view.layout, &view)
}

async fn new_user_submit(
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
    match state
        .admin
        .create_user(&actor, &input, Some(&ip_text(ip)))
        .await
    {
        Ok(created) => see_other(&format!(
            "/admin/users/{}?m=created",
            segment(created.user.username.as_str())
        )),
        Err(error) => match failure(error) {
            Failure::Field { field, message } => {
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
                    errors: FieldErrors::one(field, message),
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

#[derive(Deserialize, Default)]
struct MessageQuery {
    m: Option<String>,
}

fn user_notice(code: Option<&str>, username: &str) -> Option<String> {
    match code {
        Some("created") => Some(format!("The user {username} was added.")),
        Some("saved") => Some("The changes were saved.".to_owned()),
        Some("unlocked") => Some(format!("{username} is unlocked and can sign in again.")),
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
    let found = match state.admin.get_user(actor, name).await {
        Ok(found) => found,
        Err(error) => return fail(state, headers, error),
    };
    let roles = match state.admin.role_choices(actor).await {
        Ok(roles) => roles,
        Err(error) => return fail(state, headers, error),
    };
    let (display_name, email, role, active) = match submitted {
        Some(form) => (
            form.display_name.clone(),
            form.email.clone(),
            form.role.clone(),
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
        user: UserRow::of(&found),
        display_name,
        email,
        role,
        roles,
        active,
        notice,
        errors,
    };
    render(state, status, &view.layout, &view)
}

async fn edit_user_page(
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
struct EditUserForm {
    csrf: Option<String>,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    active: Option<String>,
    #[serde(default)]
    password: String,
}

async fn edit_user_submit(
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
        display_name: Some(form.display_name.clone()),
        email: Some(Some(form.email.clone())),
        role: Some(form.role.clone()),
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
                show_edit_user(
                    &state,
                    &headers,
                    &actor,
                    &name,
                    None,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    FieldErrors::one(field, message),
                    Some(&form),
                )
                .await
            }
            other => failure_page(&state, &headers, other),
        },
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

async fn unlock_submit(
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
async fn setup_choice_page(
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
struct SetupForm {
    csrf: Option<String>,
    method: Option<String>,
    prompt_mode: Option<String>,
}

/// `POST /admin/users/{name}/2fa/setup`: Create; then the QR code page.
async fn setup_create_submit(
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
async fn setup_qr_page(
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
struct CodeForm {
    csrf: Option<String>,
    #[serde(default)]
    code: String,
}

/// `POST /admin/users/{name}/2fa/confirm`: Complete Setup.
async fn setup_confirm_submit(
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
async fn change_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    show_change(&state, &headers, &name, false).await
}

/// `GET /admin/users/{name}/2fa/disable`: the confirmation step.
async fn disable_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    show_change(&state, &headers, &name, true).await
}

async fn disable_submit(
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

// ---------------------------------------------------------------------------------------
// Security Roles
// ---------------------------------------------------------------------------------------

async fn roles_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let actor = match actor(&state, &headers).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let roles = match state.admin.list_roles(&actor).await {
        Ok(roles) => roles,
        Err(error) => return fail(&state, &headers, error),
    };
    let view = RolesView {
        layout: Layout::new(&state, &headers),
        nav: Nav::new(&actor, "roles"),
        roles: roles
            .iter()
            .map(|role| RoleRow {
                name: role.name.as_str().to_owned(),
                href: format!("/admin/roles/{}", segment(role.name.as_str())),
                require_2fa: role.security.require_2fa().label(),
                otp_required: role.security.otp_required(),
                interface: role.security.interface(),
                permissions: role
                    .permissions
                    .iter()
                    .map(|p| p.label())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
            .collect(),
    };
    render(&state, StatusCode::OK, &view.layout, &view)
}

/// The role form's values (from a role, or as submitted).
struct RoleValues {
    name: String,
    require_2fa: String,
    otp_required: bool,
    interface: bool,
    permissions: Vec<String>,
}

impl RoleValues {
    fn of(role: &Role) -> Self {
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

    fn submitted(fields: &[(String, String)]) -> Self {
        Self {
            name: field(fields, "name").to_owned(),
            require_2fa: field(fields, "require_2fa").to_owned(),
            otp_required: field(fields, "otp_required") == "yes",
            interface: flag(fields, "interface"),
            permissions: fields
                .iter()
                .filter(|(key, _)| key == "permission")
                .map(|(_, value)| value.clone())
                .collect(),
        }
    }

    fn patch(&self) -> RolePatch {
        RolePatch {
            name: Some(self.name.clone()),
            require_2fa: Some(self.require_2fa.clone()),
            otp_required: Some(self.otp_required),
            interface: Some(self.interface),
            permissions: Some(self.permissions.clone()),
        }
    }
}

fn role_form(
    state: &AppState,
    headers: &HeaderMap,
    actor: &Actor,
    original: Option<&str>,
    values: RoleValues,
    status: StatusCode,
    errors: FieldErrors,
) -> Response {
    let view = RoleEditView {
        layout: Layout::new(state, headers),
        nav: Nav::new(actor, "roles"),
        action: match original {
            Some(name) => format!("/admin/roles/{}", segment(name)),
            None => "/admin/roles/new".to_owned(),
        },
        original: original.map(str::to_owned),
        require_choices: [Require2fa::No, Require2fa::Encourage, Require2fa::Force]
            .into_iter()
            .map(|choice| Choice {
                value: choice.as_str(),
                label: choice.label(),
                checked: values.require_2fa == choice.as_str(),
            })
            .collect(),
        permissions: Permission::ALL
            .into_iter()
            .map(|permission| Choice {
                value: permission.as_str(),
                label: permission.label(),
                checked: values.permissions.iter().any(|p| p == permission.as_str()),
            })
            .collect(),
        name: values.name,
        otp_required: values.otp_required,
        interface: values.interface,
        errors,
    };
    render(state, status, &view.layout, &view)
}

async fn new_role_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let actor = match actor(&state, &headers).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    // The list call checks Manage Roles before the empty form is shown.
    if let Err(error) = state.admin.list_roles(&actor).await {
        return fail(&state, &headers, error);
    }
    let values = RoleValues {
        name: String::new(),
        require_2fa: "no".to_owned(),
        otp_required: false,
        interface: false,
        permissions: Vec::new(),
    };
    role_form(
        &state,
        &headers,
        &actor,
        None,
        values,
        StatusCode::OK,
        FieldErrors::default(),
    )
}

async fn new_role_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PageForm(fields): PageForm<Vec<(String, String)>>,
) -> Response {
    let actor = match poster(&state, &headers, csrf_of(&fields)).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let values = RoleValues::submitted(&fields);
    match state
        .admin
        .create_role(&actor, &values.patch(), Some(&ip_text(ip)))
        .await
    {
        Ok(_) => see_other("/admin/roles"),
        Err(error) => match failure(error) {
            Failure::Field { field, message } => role_form(
                &state,
                &headers,
                &actor,
                None,
                values,
                StatusCode::UNPROCESSABLE_ENTITY,
                FieldErrors::one(field, message),
            ),
            other => failure_page(&state, &headers, other),
        },
    }
}

async fn edit_role_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let actor = match actor(&state, &headers).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    match state.admin.get_role(&actor, &name).await {
        Ok(role) => role_form(
            &state,
            &headers,
            &actor,
            Some(&name),
            RoleValues::of(&role),
            StatusCode::OK,
            FieldErrors::default(),
        ),
        Err(error) => fail(&state, &headers, error),
    }
}

async fn edit_role_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(name): Path<String>,
    PageForm(fields): PageForm<Vec<(String, String)>>,
) -> Response {
    let actor = match poster(&state, &headers, csrf_of(&fields)).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let values = RoleValues::submitted(&fields);
    match state
        .admin
        .update_role(&actor, &name, &values.patch(), Some(&ip_text(ip)))
        .await
    {
        Ok(_) => see_other("/admin/roles"),
        Err(error) => match failure(error) {
            Failure::Field { field, message } => role_form(
                &state,
                &headers,
                &actor,
                Some(&name),
                values,
                StatusCode::UNPROCESSABLE_ENTITY,
                FieldErrors::one(field, message),
            ),
            other => failure_page(&state, &headers, other),
        },
    }
}

// ---------------------------------------------------------------------------------------
// System Settings
// ---------------------------------------------------------------------------------------

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
                SettingKind::Email => ("email", 0, 0, &[][..]),
                SettingKind::Choice(choices) => ("choice", 0, 0, choices),
            };
            let (editable, note) = match key {
                SettingKey::BypassEnabled => (
                    actor.has(Permission::Manage2faBypass),
                    "Only a role with the Manage 2FA Bypass permission can change this setting.",
                ),
                _ => (
                    actor.has(Permission::ManageSystemSettings),
                    "Only a role with the Manage System Settings permission can change this \
                     setting.",
                ),
            };
            let value = match submitted {
                Some(fields) if editable => match key.kind() {
                    SettingKind::Flag => flag(fields, key.name()).to_string(),
                    SettingKind::Number { .. } | SettingKind::Email | SettingKind::Choice(_) => {
                        field(fields, key.name()).to_owned()
                    }
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
            }
        })
        .collect()
}

#[derive(Deserialize, Default)]
struct SavedQuery {
    saved: Option<String>,
}

async fn settings_page(
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
    };
    render(&state, StatusCode::OK, &view.layout, &view)
}

async fn settings_submit(
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
    match state
        .admin
        .update_settings(&actor, &changes, Some(&ip_text(ip)))
        .await
    {
        Ok(_) => see_other("/admin/settings?saved=1"),
        Err(error) => match failure(error) {
            Failure::Field { field, message } => {
                let view = SettingsView {
                    layout: Layout::new(&state, &headers),
                    nav: Nav::new(&actor, "settings"),
                    rows: setting_rows(&actor, &current, Some(&fields)),
                    saved: false,
                    errors: FieldErrors::one(field, message),
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

// ---------------------------------------------------------------------------------------
// IP Settings
// ---------------------------------------------------------------------------------------

#[allow(clippy::too_many_arguments)]
async fn show_ip(
    state: &AppState,
    headers: &HeaderMap,
    actor: &Actor,
    status: StatusCode,
    network: String,
    bypass: bool,
    note: String,
    notice: Option<&'static str>,
    errors: FieldErrors,
) -> Response {
    let rules = match state.admin.ip_rules(actor).await {
        Ok(rules) => rules,
        Err(error) => return fail(state, headers, error),
    };
    let view = IpView {
        layout: Layout::new(state, headers),
        nav: Nav::new(actor, "ip"),
        rules: rules
            .into_iter()
            .map(|stored| IpRow {
                id: stored.id,
                network: stored.rule.network.to_string(),
                bypass: stored.rule.bypass_2fa,
                note: stored.rule.note,
            })
            .collect(),
        network,
        bypass,
        note,
        notice,
        errors,
    };
    render(state, status, &view.layout, &view)
}

#[derive(Deserialize, Default)]
struct IpQuery {
    m: Option<String>,
}

async fn ip_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<IpQuery>, QueryRejection>,
) -> Response {
    let actor = match actor(&state, &headers).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let notice = match query.ok().and_then(|Query(q)| q.m).as_deref() {
        Some("added") => Some("The rule was added."),
        Some("removed") => Some("The rule was removed."),
        _ => None,
    };
    show_ip(
        &state,
        &headers,
        &actor,
        StatusCode::OK,
        String::new(),
        false,
        String::new(),
        notice,
        FieldErrors::default(),
    )
    .await
}

#[derive(Deserialize)]
struct IpForm {
    csrf: Option<String>,
    #[serde(default)]
    network: String,
    bypass_2fa: Option<String>,
    #[serde(default)]
    note: String,
}

async fn ip_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PageForm(form): PageForm<IpForm>,
) -> Response {
    let actor = match poster(&state, &headers, form.csrf.as_deref()).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    match state
        .admin
        .add_ip_rule(
            &actor,
            form.network.trim(),
            form.bypass_2fa.is_some(),
            &form.note,
            Some(&ip_text(ip)),
        )
        .await
    {
        Ok(_) => see_other("/admin/ip?m=added"),
        Err(error) => match failure(error) {
            Failure::Field { field, message } => {
                show_ip(
                    &state,
                    &headers,
                    &actor,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    form.network,
                    form.bypass_2fa.is_some(),
                    form.note,
                    None,
                    FieldErrors::one(field, message),
                )
                .await
            }
            other => failure_page(&state, &headers, other),
        },
    }
}

async fn ip_delete_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(id): Path<String>,
    PageForm(form): PageForm<CsrfForm>,
) -> Response {
    let actor = match poster(&state, &headers, form.csrf.as_deref()).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    // A rule id that is not a number names no rule: the not-found page, not a 400.
    let Ok(id) = id.parse::<i64>() else {
        return fail(&state, &headers, AdminError::NotFound("IP rule"));
    };
    match state
        .admin
        .remove_ip_rule(&actor, id, Some(&ip_text(ip)))
        .await
    {
        Ok(()) => see_other("/admin/ip?m=removed"),
        Err(error) => fail(&state, &headers, error),
    }
}

// ---------------------------------------------------------------------------------------
// Email Templates
// ---------------------------------------------------------------------------------------

/// The template filled in with sample values; an unusable template is an error to show.
fn preview(
    template: &EmailTemplate,
    settings: &Settings,
    site_name: &str,
) -> Result<Preview, String> {
    let values = TemplateValues {
        user_id: "jsmith",
        user_otp: "428193",
        user_name: "Jane Smith",
        otp_valid_minutes: TemplateValues::minutes_from_seconds(settings.otp_valid_seconds()),
        site_name,
    };
    template
        .render(&values)
        .map(|rendered| Preview {
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
        })
        .map_err(|error| sentence(&error.to_string()))
}

async fn email_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<SavedQuery>, QueryRejection>,
) -> Response {
    let actor = match actor(&state, &headers).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let template = match state.admin.otp_template(&actor).await {
        Ok(template) => template,
        Err(error) => return fail(&state, &headers, error),
    };
    let settings = match state.admin.settings(&actor).await {
        Ok(settings) => settings,
        Err(error) => return fail(&state, &headers, error),
    };
    let site_name = state.admin.context().config.site_name.clone();
    let (preview, errors) = match preview(&template, &settings, &site_name) {
        Ok(preview) => (Some(preview), FieldErrors::default()),
        Err(message) => (None, FieldErrors::one("template", message)),
    };
    let view = EmailView {
        layout: Layout::new(&state, &headers),
        nav: Nav::new(&actor, "email"),
        subject: template.subject,
        text_body: template.text_body,
        html_body: template.html_body.unwrap_or_default(),
        preview,
        saved: query.ok().and_then(|Query(q)| q.saved).is_some(),
        errors,
    };
    render(&state, StatusCode::OK, &view.layout, &view)
}

#[derive(Deserialize)]
struct EmailForm {
    csrf: Option<String>,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    text_body: String,
    #[serde(default)]
    html_body: String,
    /// "preview" or "save".
    #[serde(default)]
    action: String,
}

async fn email_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PageForm(form): PageForm<EmailForm>,
) -> Response {
    let actor = match poster(&state, &headers, form.csrf.as_deref()).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let template = EmailTemplate {
        subject: form.subject.clone(),
        text_body: form.text_body.replace("\r\n", "\n"),
        html_body: (!form.html_body.trim().is_empty())
            .then(|| form.html_body.replace("\r\n", "\n")),
    };
    let settings = match state.admin.settings(&actor).await {
        Ok(settings) => settings,
        Err(error) => return fail(&state, &headers, error),
    };
    let site_name = state.admin.context().config.site_name.clone();
    let mut errors = FieldErrors::default();
    let mut status = StatusCode::OK;
    if form.action == "save" {
        match state
            .admin
            .save_otp_template(&actor, &template, Some(&ip_text(ip)))
            .await
        {
            Ok(()) => return see_other("/admin/email?saved=1"),
            Err(error) => match failure(error) {
                Failure::Field { field, message } => {
                    errors = FieldErrors::one(field, message);
                    status = StatusCode::UNPROCESSABLE_ENTITY;
                }
                other => return failure_page(&state, &headers, other),
            },
        }
    }
    let shown = match preview(&template, &settings, &site_name) {
        Ok(preview) => Some(preview),
        Err(message) => {
            if !errors.any() {
                errors = FieldErrors::one("template", message);
                status = StatusCode::UNPROCESSABLE_ENTITY;
            }
            None
        }
    };
    let view = EmailView {
        layout: Layout::new(&state, &headers),
        nav: Nav::new(&actor, "email"),
        subject: form.subject,
        text_body: form.text_body,
        html_body: form.html_body,
        preview: shown,
        saved: false,
        errors,
    };
    render(&state, status, &view.layout, &view)
}

// ---------------------------------------------------------------------------------------
// Audit Log
// ---------------------------------------------------------------------------------------

const AUDIT_PER_PAGE: u32 = 50;
const DAY_MILLIS: i64 = 86_400_000;

#[derive(Deserialize, Default)]
struct AuditParams {
    user: Option<String>,
    event: Option<String>,
    from: Option<String>,
    to: Option<String>,
    page: Option<u32>,
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `YYYY-MM-DD` (a date input's value) as the first millisecond of that day, UTC.
fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(year, month, day) * DAY_MILLIS)
}

/// A moment as `YYYY-MM-DD HH:MM:SS UTC`.
fn utc_text(millis: i64) -> String {
    let days = millis.div_euclid(DAY_MILLIS);
    let seconds = millis.rem_euclid(DAY_MILLIS) / 1000;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

fn audit_href(user: &str, event: &str, from: &str, to: &str, page: u32) -> String {
    format!(
        "/admin/audit?user={}&event={}&from={}&to={}&page={page}",
        segment(user),
        segment(event),
        segment(from),
        segment(to)
    )
}

async fn audit_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<AuditParams>, QueryRejection>,
) -> Response {
    let actor = match actor(&state, &headers).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let params = query.map(|Query(q)| q).unwrap_or_default();
    let user = params.user.unwrap_or_default().trim().to_owned();
    let event_text = params.event.unwrap_or_default();
    let from = params.from.unwrap_or_default();
    let to = params.to.unwrap_or_default();
    let page_no = params.page.unwrap_or(1).max(1);
    let mut errors = FieldErrors::default();
    let event = match event_text.as_str() {
        "" => None,
        text => AuditEvent::parse(text),
    };
    let since = match from.trim() {
        "" => None,
        text => match parse_date(text) {
            Some(millis) => Some(Timestamp::from_millis(millis)),
            None => {
                errors
                    .0
                    .push(("from", "Enter a date as YYYY-MM-DD.".to_owned()));
                None
            }
        },
    };
    let until = match to.trim() {
        "" => None,
        // Up to the end of that day.
        text => match parse_date(text) {
            Some(millis) => Some(Timestamp::from_millis(millis + DAY_MILLIS - 1)),
            None => {
                errors
                    .0
                    .push(("to", "Enter a date as YYYY-MM-DD.".to_owned()));
                None
            }
        },
    };
    let query = AuditQuery {
        user: (!user.is_empty()).then(|| user.clone()),
        event,
        since,
        until,
        offset: (page_no - 1).saturating_mul(AUDIT_PER_PAGE),
        // One more than shown: whether there is a next page.
        limit: AUDIT_PER_PAGE + 1,
    };
    let mut entries = match state.admin.audit_log(&actor, &query).await {
        Ok(entries) => entries,
        Err(error) => return fail(&state, &headers, error),
    };
    let has_next = entries.len() > AUDIT_PER_PAGE as usize;
    entries.truncate(AUDIT_PER_PAGE as usize);
    let view = AuditView {
        layout: Layout::new(&state, &headers),
        nav: Nav::new(&actor, "audit"),
        events: AuditEvent::ALL
            .into_iter()
            .map(|choice| Choice {
                value: choice.as_str(),
                label: choice.as_str(),
                checked: event == Some(choice),
            })
            .collect(),
        entries: entries
            .into_iter()
            .map(|entry| AuditRow {
                at: utc_text(entry.at),
                event: entry.event,
                actor: entry.actor.unwrap_or_default(),
                subject: entry.subject.unwrap_or_default(),
                client_ip: entry.client_ip.unwrap_or_default(),
                detail: entry.detail,
            })
            .collect(),
        prev_href: (page_no > 1).then(|| audit_href(&user, &event_text, &from, &to, page_no - 1)),
        next_href: has_next.then(|| audit_href(&user, &event_text, &from, &to, page_no + 1)),
        page: page_no,
        user,
        event: event_text,
        from,
        to,
        errors,
    };
    render(&state, StatusCode::OK, &view.layout, &view)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_convert_both_ways_in_utc() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(utc_text(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_text(1_800_000_000_000), "2027-01-15 08:00:00 UTC");
        let day = parse_date("2027-01-15").unwrap();
        assert_eq!(utc_text(day), "2027-01-15 00:00:00 UTC");
        assert_eq!(parse_date("2027-13-01"), None);
        assert_eq!(parse_date("soon"), None);
    }

    #[test]
    fn every_admin_error_has_a_page_and_conflicts_name_their_field() {
        assert!(matches!(
            failure(AdminError::Forbidden(Permission::ManageIpSettings)),
            Failure::Forbidden(Permission::ManageIpSettings)
        ));
        match failure(AdminError::Conflict(Conflict::NetworkExists)) {
            Failure::Field { field, message } => {
                assert_eq!(field, "network");
                assert_eq!(message, "This IP address or range already exists");
            }
            _ => panic!("a field error"),
        }
        match failure(AdminError::Internal("secret detail".into())) {
            Failure::Internal(id) => assert!(!id.contains("secret")),
            _ => panic!("internal"),
        }
        assert!(matches!(
            failure(AdminError::NotFound("user")),
            Failure::NotFound("user")
        ));
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(segment("System Administrator"), "System%20Administrator");
        assert_eq!(segment("a/b?c"), "a%2Fb%3Fc");
        assert_eq!(segment("jane.doe"), "jane.doe");
    }
}
