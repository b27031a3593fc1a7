//! Email Templates (SPEC section 4, "Emailed OTP"): the OTP Notification Email's subject,
//! text and HTML bodies, previewed with sample values and saved. Needs Manage System
//! Settings (SPEC section 6), checked by [`Admin`](crate::service::admin::Admin).
//!
//! The administrator's HTML body is only ever shown escaped, as source.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::{
    actor, fail, failure, failure_page, ip_text, poster, render, sentence, Failure, FieldErrors,
    Nav, SavedQuery, SummaryItem,
};
use crate::domain::Settings;
use crate::mail::template::{EmailTemplate, TemplateValues};
use crate::web::html::{see_other, Layout, PageForm};
use crate::web::{AppState, ClientIp};

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
    pub summary: Vec<SummaryItem>,
}

/// The template form's fields and their labels (an error of the whole template has none).
const EMAIL_LABELS: &[(&str, &str)] = &[
    ("subject", "Subject"),
    ("text_body", "Text body"),
    ("html_body", "HTML body"),
];

pub struct Preview {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

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

pub(super) async fn email_page(
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
    let site_name = state.admin.context().site_name().to_owned();
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
    let site_name = state.admin.context().site_name().to_owned();
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
        summary: errors.summary(EMAIL_LABELS),
        errors,
    };
    render(&state, status, &view.layout, &view)
}
