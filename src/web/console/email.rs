//! Email Templates (SPEC section 4, "Emailed OTP", and section 10, security
//! notifications): the OTP Notification Email at `/admin/email` and the seven templates of
//! module "Security" at `/admin/email/security/{event}`, each with its subject, text and
//! HTML bodies, previewed with sample values and saved. Needs Manage System Settings (SPEC
//! section 6), checked by [`Admin`](crate::service::admin::Admin).
//!
//! The administrator's HTML body is only ever shown escaped, as source.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::{
    actor, fail, failure, failure_page, ip_text, poster, render, sentence, Failure, FieldErrors,
    Nav, SavedQuery, SummaryItem,
};
use crate::domain::{SecurityEvent, Settings};
use crate::mail::template::{EmailTemplate, SecurityValues, TemplateKind, TemplateValues};
use crate::service::admin::{Actor, AdminError};
use crate::web::html::{see_other, Layout, PageForm};
use crate::web::{AppState, ClientIp};

#[derive(Template)]
#[template(path = "admin/email.html")]
pub struct EmailView {
    pub layout: Layout,
    pub nav: Nav,
    /// Every template, with a link to its page.
    pub templates: Vec<TemplateLink>,
    /// The template of this page: its name, address and placeholders.
    pub name: &'static str,
    pub action: String,
    pub placeholders: Vec<&'static str>,
    pub sample_note: &'static str,
    /// When the email is sent, in a sentence.
    pub about: &'static str,
    /// A security notification (no code allowed).
    pub security: bool,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub preview: Option<Preview>,
    pub saved: bool,
    pub errors: FieldErrors,
    pub summary: Vec<SummaryItem>,
}

/// The template form's fields and their labels (an error of the whole template has none).
const EMAIL_LABELS: &[(&str, &str)] = &[
    ("subject", "Subject"),
    ("text_body", "Text body"),
    ("html_body", "HTML body"),
];

/// A template in the page's list.
pub struct TemplateLink {
    pub name: &'static str,
    pub href: String,
    pub current: bool,
}

/// Which template a page edits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Otp,
    Security(SecurityEvent),
}

impl Which {
    fn all() -> impl Iterator<Item = Self> {
        std::iter::once(Self::Otp).chain(SecurityEvent::ALL.into_iter().map(Self::Security))
    }

    fn name(self) -> &'static str {
        match self {
            Self::Otp => crate::mail::template::OTP_TEMPLATE_NAME,
            Self::Security(event) => event.template_name(),
        }
    }

    fn href(self) -> String {
        match self {
            Self::Otp => "/admin/email".to_owned(),
            Self::Security(event) => format!("/admin/email/security/{}", event.as_str()),
        }
    }

    fn placeholders(self) -> Vec<&'static str> {
        match self {
            Self::Otp => TemplateKind::Otp,
            Self::Security(_) => TemplateKind::Security,
        }
        .placeholders()
        .to_vec()
    }

    fn sample_note(self) -> &'static str {
        match self {
            Self::Otp => "With sample values: user jsmith (Jane Smith), code 428193.",
            Self::Security(_) => {
                "With sample values: user jsmith (Jane Smith), now, from 192.0.2.10."
            }
        }
    }

    fn about(self) -> &'static str {
        match self {
            Self::Otp => "Sent with the code when a user signs in with an emailed code.",
            Self::Security(event) => match event {
                SecurityEvent::DeviceAdded => {
                    "Sent to the user when a 2-step verification device is confirmed."
                }
                SecurityEvent::DeviceRemoved => "Sent to the user when their device is removed.",
                SecurityEvent::KeyAdded => {
                    "Sent to the user when a security key or passkey is registered."
                }
                SecurityEvent::KeyRemoved => "Sent to the user when a security key is removed.",
                SecurityEvent::TemporaryAccessIssued => {
                    "Sent to the user when the service desk issues a temporary access code."
                }
                SecurityEvent::RecoveryCodesGenerated => {
                    "Sent to the user when a new set of recovery codes is made."
                }
                SecurityEvent::RecoveryCodeUsed => {
                    "Sent to the user when a recovery code signs them in."
                }
                SecurityEvent::AccountLocked => {
                    "Sent to the user when failed attempts lock their account."
                }
                SecurityEvent::PasswordChanged => {
                    "Sent to the user when they change their password."
                }
                SecurityEvent::PasswordReset => {
                    "Sent to the user when an administrator sets a new password."
                }
            },
        }
    }

    fn links(self) -> Vec<TemplateLink> {
        Self::all()
            .map(|which| TemplateLink {
                name: which.name(),
                href: which.href(),
                current: which == self,
            })
            .collect()
    }

    async fn load(self, state: &AppState, actor: &Actor) -> Result<EmailTemplate, AdminError> {
        match self {
            Self::Otp => state.admin.otp_template(actor).await,
            Self::Security(event) => state.admin.security_template(actor, event).await,
        }
    }

    async fn save(
        self,
        state: &AppState,
        actor: &Actor,
        template: &EmailTemplate,
        ip: Option<&str>,
    ) -> Result<(), AdminError> {
        match self {
            Self::Otp => state.admin.save_otp_template(actor, template, ip).await,
            Self::Security(event) => {
                state
                    .admin
                    .save_security_template(actor, event, template, ip)
                    .await
            }
        }
    }

    /// The event of a `/admin/email/security/{event}` address.
    fn security(name: &str) -> Result<Self, AdminError> {
        SecurityEvent::parse(name)
            .map(Self::Security)
            .ok_or(AdminError::NotFound("email template"))
    }
}

pub struct Preview {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// The template filled in with sample values; an unusable template is an error to show.
fn preview(
    which: Which,
    template: &EmailTemplate,
    settings: &Settings,
    state: &AppState,
) -> Result<Preview, String> {
    let site_name = state.admin.context().site_name();
    let rendered = match which {
        Which::Otp => template.render(&TemplateValues {
            user_id: "jsmith",
            user_otp: "428193",
            user_name: "Jane Smith",
            otp_valid_minutes: TemplateValues::minutes_from_seconds(settings.otp_valid_seconds()),
            site_name,
        }),
        Which::Security(_) => {
            let event_time = SecurityValues::event_time_text(state.admin.context().now());
            template.render_security(&SecurityValues {
                user_id: "jsmith",
                user_name: "Jane Smith",
                event_time: &event_time,
                client_ip: "192.0.2.10",
                site_name,
            })
        }
    };
    rendered
        .map(|rendered| Preview {
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
        })
        .map_err(|error| sentence(&error.to_string()))
}

pub(super) async fn email_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<SavedQuery>, QueryRejection>,
) -> Response {
    show(Which::Otp, state, headers, query).await
}

pub(super) async fn security_page(
    State(state): State<AppState>,
    Path(event): Path<String>,
    headers: HeaderMap,
    query: Result<Query<SavedQuery>, QueryRejection>,
) -> Response {
    match Which::security(&event) {
        Ok(which) => show(which, state, headers, query).await,
        Err(error) => match actor(&state, &headers).await {
            Ok(_) => fail(&state, &headers, error),
            Err(response) => response,
        },
    }
}

async fn show(
    which: Which,
    state: AppState,
    headers: HeaderMap,
    query: Result<Query<SavedQuery>, QueryRejection>,
) -> Response {
    let actor = match actor(&state, &headers).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let template = match which.load(&state, &actor).await {
        Ok(template) => template,
        Err(error) => return fail(&state, &headers, error),
    };
    let settings = match state.admin.settings(&actor).await {
        Ok(settings) => settings,
        Err(error) => return fail(&state, &headers, error),
    };
    let (preview, errors) = match preview(which, &template, &settings, &state) {
        Ok(preview) => (Some(preview), FieldErrors::default()),
        Err(message) => (None, FieldErrors::one("template", message)),
    };
    let view = EmailView {
        layout: Layout::new(&state, &headers),
        nav: Nav::new(&actor, "email"),
        templates: which.links(),
        name: which.name(),
        action: which.href(),
        placeholders: which.placeholders(),
        sample_note: which.sample_note(),
        about: which.about(),
        security: matches!(which, Which::Security(_)),
        subject: template.subject,
        text_body: template.text_body,
        html_body: template.html_body.unwrap_or_default(),
        preview,
        saved: query.ok().and_then(|Query(q)| q.saved).is_some(),
        summary: errors.summary(EMAIL_LABELS),
        errors,
    };
    render(&state, StatusCode::OK, &view.layout, &view)
}

#[derive(Deserialize)]
pub(super) struct EmailForm {
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

pub(super) async fn email_submit(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    form: PageForm<EmailForm>,
) -> Response {
    submit(Which::Otp, state, ip, headers, form).await
}

pub(super) async fn security_submit(
    State(state): State<AppState>,
    Path(event): Path<String>,
    ip: ClientIp,
    headers: HeaderMap,
    form: PageForm<EmailForm>,
) -> Response {
    match Which::security(&event) {
        Ok(which) => submit(which, state, ip, headers, form).await,
        Err(error) => match poster(&state, &headers, form.0.csrf.as_deref()).await {
            Ok(_) => fail(&state, &headers, error),
            Err(response) => response,
        },
    }
}

async fn submit(
    which: Which,
    state: AppState,
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
    let mut errors = FieldErrors::default();
    let mut status = StatusCode::OK;
    if form.action == "save" {
        match which
            .save(&state, &actor, &template, Some(&ip_text(ip)))
            .await
        {
            Ok(()) => return see_other(&format!("{}?saved=1", which.href())),
            Err(error) => match failure(error) {
                Failure::Field { field, message } => {
                    errors = FieldErrors::one(field, message);
                    status = StatusCode::UNPROCESSABLE_ENTITY;
                }
                other => return failure_page(&state, &headers, other),
            },
        }
    }
    let shown = match preview(which, &template, &settings, &state) {
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
        templates: which.links(),
        name: which.name(),
        action: which.href(),
        placeholders: which.placeholders(),
        sample_note: which.sample_note(),
        about: which.about(),
        security: matches!(which, Which::Security(_)),
        subject: form.subject,
        text_body: form.text_body,
        html_body: form.html_body,
        preview: shown,
        saved: false,
        summary: errors.summary(EMAIL_LABELS),
        errors,
    };
    render(&state, status, &view.layout, &view)
}
