//! The administration console (issue 6; SPEC sections 5, 6 and 7): server-rendered pages
//! under `/admin`, without JavaScript.
//!
//! Every page needs a signed-in session; every handler calls [`Admin`], which checks the
//! permission of SPEC section 6 on the server, so a page never decides who may do what.
//! Every form carries the CSRF token and every POST verifies it before anything else.
//! Failures go through one exhaustive mapping of [`AdminError`], [`failure`]: a field's
//! error is shown next to it, a missing permission is a 403 page.
//!
//! HTML comes only from the askama templates in `templates/admin/`, in the page shell of
//! [`html`](super::html); the one value inserted unescaped is the QR code, an SVG that
//! twostep generates itself. An administrator's HTML email body is only ever shown
//! escaped, as source.
//!
//! This file holds the console's router, its navigation, the one mapping of
//! [`AdminError`], the signed-in administrator ([`actor`], [`poster`]) and the helpers
//! every section shares; each section has its own file:
//!
//! - [`home`]: the console home, what needs attention (SPEC section 11).
//! - [`users`]: Access Control: users, and 2 Step Verification for a user (SPEC section 5).
//! - [`roles`]: Security Roles.
//! - [`settings`]: System Settings (SPEC section 2).
//! - [`ip_rules`]: IP Settings, the in-network rules.
//! - [`email`]: Email Templates, the OTP Notification Email and the security notifications.
//! - [`audit`]: Audit Log (SPEC sections 7 and 11), and the one script, `localtime.js`.
//! - [`applications`]: Applications, the OpenID Connect clients (SPEC 13).
//!
//! [`Admin`]: crate::service::admin::Admin

mod applications;
mod audit;
mod email;
mod home;
mod ip_rules;
mod roles;
mod settings;
mod temporary_access;
mod users;

use askama::Template;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::html::{
    csrf_ok, form_expired, internal_error, page, problem, see_other, with_cookie, Layout,
    CONSOLE_SECTIONS,
};
use super::{cookies, request_id, AppState};
use crate::domain::Permission;
use crate::service::admin::{Actor, AdminError};
use crate::store::Conflict;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(home::admin_home))
        .route("/admin/users", get(users::users_page))
        .route(
            "/admin/users/new",
            get(users::new_user_page).post(users::new_user_submit),
        )
        .route(
            "/admin/users/{name}",
            get(users::edit_user_page).post(users::edit_user_submit),
        )
        .route("/admin/users/{name}/unlock", post(users::unlock_submit))
        .route(
            "/admin/users/{name}/keys/{id}/rename",
            post(users::rename_key_submit),
        )
        .route(
            "/admin/users/{name}/keys/{id}/remove",
            post(users::remove_key_submit),
        )
        .route(
            "/admin/users/{name}/temporary-access",
            post(temporary_access::issue_submit),
        )
        .route(
            "/admin/users/{name}/temporary-access/revoke",
            post(temporary_access::revoke_submit),
        )
        .route(
            "/admin/users/{name}/recovery-codes/revoke",
            post(users::revoke_recovery_codes_submit),
        )
        .route(
            "/admin/users/{name}/2fa/setup",
            get(users::setup_choice_page).post(users::setup_create_submit),
        )
        .route(
            "/admin/users/{name}/2fa/confirm",
            get(users::setup_qr_page).post(users::setup_confirm_submit),
        )
        .route("/admin/users/{name}/2fa/change", get(users::change_page))
        .route(
            "/admin/users/{name}/2fa/disable",
            get(users::disable_page).post(users::disable_submit),
        )
        .route("/admin/roles", get(roles::roles_page))
        .route(
            "/admin/roles/new",
            get(roles::new_role_page).post(roles::new_role_submit),
        )
        .route(
            "/admin/roles/{name}",
            get(roles::edit_role_page).post(roles::edit_role_submit),
        )
        .route(
            "/admin/settings",
            get(settings::settings_page).post(settings::settings_submit),
        )
        .route(
            "/admin/ip",
            get(ip_rules::ip_page).post(ip_rules::ip_submit),
        )
        .route("/admin/ip/{id}/delete", post(ip_rules::ip_delete_submit))
        .route(
            "/admin/email",
            get(email::email_page).post(email::email_submit),
        )
        .route(
            "/admin/email/security/{event}",
            get(email::security_page).post(email::security_submit),
        )
        .route(
            "/admin/applications",
            get(applications::applications_page).post(applications::add_application_submit),
        )
        .route(
            "/admin/applications/{client_id}",
            get(applications::edit_application_page).post(applications::edit_application_submit),
        )
        .route(
            "/admin/applications/{client_id}/delete",
            post(applications::delete_application_submit),
        )
        .route(
            "/admin/applications/{client_id}/secret",
            post(applications::new_secret_submit),
        )
        .route("/admin/audit", get(audit::audit_page))
        .route("/admin/audit/export", get(audit::audit_export))
        .route("/static/localtime.js", get(audit::local_time_script))
}

// ---------------------------------------------------------------------------------------
// Navigation
// ---------------------------------------------------------------------------------------

pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// The navigation bar: only the sections the user's role allows.
pub struct Nav {
    pub items: Vec<NavItem>,
    pub username: String,
    /// The console home ("Needs attention"), for roles with Manage Users.
    pub home: Option<NavItem>,
}

impl Nav {
    fn new(actor: &Actor, current: &str) -> Self {
        Self {
            items: CONSOLE_SECTIONS
                .iter()
                .filter(|(_, _, _, permission)| actor.has(*permission))
                .map(|(key, href, label, _)| NavItem {
                    href,
                    label,
                    current: *key == current,
                })
                .collect(),
            username: actor.name().to_owned(),
            home: actor.has(Permission::ManageUsers).then_some(NavItem {
                href: "/admin",
                label: "Needs attention",
                current: current == "home",
            }),
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

    /// Adds one more error (a form reports every error at once, SPEC section 11).
    pub fn push(&mut self, field: &'static str, message: String) {
        if self.get(field).is_none() {
            self.0.push((field, message));
        }
    }

    /// The items of the error summary at the top of a form, in the order of `labels`
    /// (field name, label), which is the form's order: each links to its field (whose id
    /// is its name) and names it by its label. Errors of fields not in `labels` come
    /// last, without a link.
    pub fn summary(&self, labels: &[(&str, &str)]) -> Vec<SummaryItem> {
        let mut items: Vec<SummaryItem> = labels
            .iter()
            .filter_map(|(name, label)| {
                self.get(name).map(|message| SummaryItem {
                    href: format!("#{name}"),
                    label: (*label).to_owned(),
                    message: message.to_owned(),
                })
            })
            .collect();
        for (name, message) in &self.0 {
            if !labels.iter().any(|(field, _)| field == name) {
                items.push(SummaryItem {
                    href: String::new(),
                    label: String::new(),
                    message: message.clone(),
                });
            }
        }
        items
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
}

/// One item of a form's error summary (`templates/admin/error_summary.html`).
pub struct SummaryItem {
    /// `#field-id`, or empty for an error of the whole form.
    pub href: String,
    /// The field's label as the form shows it.
    pub label: String,
    pub message: String,
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
    let error_text = error.to_string();
    match error {
        AdminError::Forbidden(permission) => Failure::Forbidden(permission),
        AdminError::NotFound(what) => Failure::NotFound(what),
        AdminError::Invalid { field, message } => Failure::Field {
            field,
            message: sentence(&message),
        },
        AdminError::BroadNetwork(_) => Failure::Field {
            field: "network",
            message: sentence(&error_text),
        },
        AdminError::Conflict(conflict) => {
            let (field, message) = match conflict {
                Conflict::UsernameTaken => ("username", "A user with this username already exists"),
                Conflict::RoleNameTaken => ("name", "A role with this name already exists"),
                Conflict::NetworkExists => ("network", "This IP address or range already exists"),
                Conflict::RoleInUse => ("role", "This role is still assigned to users"),
                Conflict::ClientIdTaken => (
                    "client_id",
                    "An application with this client ID already exists",
                ),
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
        Permission::ManageApplications => "manage applications",
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

/// One option of a radio group or a checkbox list.
pub struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    pub checked: bool,
}

/// A form that carries only its CSRF token (a button).
#[derive(Deserialize)]
pub(super) struct CsrfForm {
    csrf: Option<String>,
}

/// `?saved=1`: the form was just saved.
#[derive(Deserialize, Default)]
pub(super) struct SavedQuery {
    saved: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// SPEC section 11: the summary lists every error in the form's order, each linked
    /// to its field by label; an error of no field comes last, unlinked; a field's second
    /// error is not repeated.
    #[test]
    fn the_error_summary_follows_the_form_order_and_links_each_field() {
        let mut errors = FieldErrors::one("password", "Too short".into());
        errors.push("username", "Taken".into());
        errors.push("template", "Broken".into());
        errors.push("username", "Again".into());
        let items = errors.summary(&[("username", "Username"), ("password", "Password")]);
        let seen: Vec<(&str, &str, &str)> = items
            .iter()
            .map(|i| (i.href.as_str(), i.label.as_str(), i.message.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("#username", "Username", "Taken"),
                ("#password", "Password", "Too short"),
                ("", "", "Broken"),
            ]
        );
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(segment("System Administrator"), "System%20Administrator");
        assert_eq!(segment("a/b?c"), "a%2Fb%3Fc");
        assert_eq!(segment("jane.doe"), "jane.doe");
    }
}
