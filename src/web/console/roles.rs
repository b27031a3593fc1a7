//! Security Roles (SPEC sections 3 and 6): the list of roles, New Role and a role's page:
//! its name, Require 2FA, OTP Required, Interface, its permissions and its session limits
//! (SPEC 15).
//!
//! Every page needs Manage Roles, checked by [`Admin`](crate::service::admin::Admin).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::{
    actor, csrf_of, fail, failure, failure_page, field, flag, ip_text, poster, render, segment,
    Choice, Failure, FieldErrors, Nav, SummaryItem,
};
use crate::domain::{Permission, Require2fa, Role, SessionLimits};
use crate::service::admin::{Actor, RolePatch};
use crate::web::html::{see_other, Layout, PageForm};
use crate::web::{AppState, ClientIp};

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
    pub session_idle_minutes: u32,
    pub session_max_hours: u32,
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
    /// SPEC 15, as entered.
    pub session_idle_minutes: String,
    pub session_max_hours: String,
    pub idle_range: (u32, u32),
    pub max_range: (u32, u32),
    pub errors: FieldErrors,
    pub summary: Vec<SummaryItem>,
}

/// The role form's fields and their labels (the error summary's names).
const ROLE_LABELS: &[(&str, &str)] = &[
    ("name", "Name"),
    ("require_2fa", "Require 2FA"),
    ("otp_required", "OTP Required"),
    ("permissions", "Permissions"),
    ("session_idle_minutes", "Session Idle Minutes"),
    ("session_max_hours", "Session Max Hours"),
];

/// The second page before a role is saved with Require 2FA = Force (SPEC section 11): how
/// many of its users have no device; the form's fields again, hidden, with `confirm_force`.
#[derive(Template)]
#[template(path = "admin/role_confirm.html")]
pub struct ForceConfirmView {
    pub layout: Layout,
    pub nav: Nav,
    pub role: String,
    pub action: String,
    pub without_device: u64,
    pub fields: Vec<(String, String)>,
}

pub(super) async fn roles_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
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
                session_idle_minutes: role.session_limits.idle_minutes(),
                session_max_hours: role.session_limits.max_hours(),
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
    /// `None`: not in the form (the current value stays; a new role gets the default).
    session_idle_minutes: Option<String>,
    session_max_hours: Option<String>,
}

/// A form's whole number; text that is not one (empty too) is sent as 0, which the range
/// refuses with the field's message (SPEC 15's ranges start at 1).
fn form_number(text: &str) -> i64 {
    text.trim().parse().unwrap_or(0)
}

/// The submitted value of `name`, if the form has the field.
fn present(fields: &[(String, String)], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.clone())
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
            session_idle_minutes: Some(role.session_limits.idle_minutes().to_string()),
            session_max_hours: Some(role.session_limits.max_hours().to_string()),
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
            session_idle_minutes: present(fields, "session_idle_minutes"),
            session_max_hours: present(fields, "session_max_hours"),
        }
    }

    fn patch(&self) -> RolePatch {
        RolePatch {
            name: Some(self.name.clone()),
            require_2fa: Some(self.require_2fa.clone()),
            otp_required: Some(self.otp_required),
            interface: Some(self.interface),
            permissions: Some(self.permissions.clone()),
            session_idle_minutes: self.session_idle_minutes.as_deref().map(form_number),
            session_max_hours: self.session_max_hours.as_deref().map(form_number),
        }
    }
}

/// The error the service reported, and every other field's (SPEC section 11: every error
/// at once).
fn all_errors(
    state: &AppState,
    actor: &Actor,
    values: &RoleValues,
    field: &'static str,
    message: String,
) -> FieldErrors {
    let mut errors = FieldErrors::one(field, message);
    if let Ok(problems) = state.admin.role_problems(actor, &values.patch()) {
        for (field, message) in problems {
            errors.push(field, super::sentence(&message));
        }
    }
    errors
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
        session_idle_minutes: values
            .session_idle_minutes
            .unwrap_or_else(|| SessionLimits::DEFAULT.idle_minutes().to_string()),
        session_max_hours: values
            .session_max_hours
            .unwrap_or_else(|| SessionLimits::DEFAULT.max_hours().to_string()),
        idle_range: (
            *SessionLimits::IDLE_MINUTES.start(),
            *SessionLimits::IDLE_MINUTES.end(),
        ),
        max_range: (
            *SessionLimits::MAX_HOURS.start(),
            *SessionLimits::MAX_HOURS.end(),
        ),
        summary: errors.summary(ROLE_LABELS),
        errors,
    };
    render(state, status, &view.layout, &view)
}

pub(super) async fn new_role_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
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
        session_idle_minutes: Some(SessionLimits::DEFAULT.idle_minutes().to_string()),
        session_max_hours: Some(SessionLimits::DEFAULT.max_hours().to_string()),
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

pub(super) async fn new_role_submit(
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
            Failure::Field { field, message } => {
                let errors = all_errors(&state, &actor, &values, field, message);
                role_form(
                    &state,
                    &headers,
                    &actor,
                    None,
                    values,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    errors,
                )
            }
            other => failure_page(&state, &headers, other),
        },
    }
}

pub(super) async fn edit_role_page(
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

pub(super) async fn edit_role_submit(
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
    if values.require_2fa == Require2fa::Force.as_str() && !flag(&fields, "confirm_force") {
        let current = match state.admin.get_role(&actor, &name).await {
            Ok(role) => role,
            Err(error) => return fail(&state, &headers, error),
        };
        if current.security.require_2fa() != Require2fa::Force {
            let without_device = match state.admin.role_users_without_device(&actor, &name).await {
                Ok(count) => count,
                Err(error) => return fail(&state, &headers, error),
            };
            let view = ForceConfirmView {
                layout: Layout::new(&state, &headers),
                nav: Nav::new(&actor, "roles"),
                role: current.name.as_str().to_owned(),
                action: format!("/admin/roles/{}", segment(&name)),
                without_device,
                fields: fields
                    .iter()
                    .filter(|(key, _)| key != "csrf" && key != "confirm_force")
                    .cloned()
                    .collect(),
            };
            return render(&state, StatusCode::OK, &view.layout, &view);
        }
    }
    match state
        .admin
        .update_role(&actor, &name, &values.patch(), Some(&ip_text(ip)))
        .await
    {
        Ok(_) => see_other("/admin/roles"),
        Err(error) => match failure(error) {
            Failure::Field { field, message } => {
                let errors = all_errors(&state, &actor, &values, field, message);
                role_form(
                    &state,
                    &headers,
                    &actor,
                    Some(&name),
                    values,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    errors,
                )
            }
            other => failure_page(&state, &headers, other),
        },
    }
}
