//! Temporary access codes on Edit User (SPEC 15): "Issue a temporary access code" with a
//! reason, minutes and uses (the code shown once on its own page), and Revoke.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::users::{edit_user_view, AccessFormValues, TemporaryAccessRow};
use super::{
    fail, failure, failure_page, ip_text, poster, render, segment, Failure, FieldErrors, Nav,
};
use crate::web::html::{see_other, Layout, PageForm};
use crate::web::{AppState, ClientIp};

#[derive(Deserialize)]
pub(super) struct IssueForm {
    csrf: Option<String>,
    #[serde(default)]
    minutes: String,
    #[serde(default)]
    uses: String,
    #[serde(default)]
    reason: String,
}

/// The code just issued, shown this once.
#[derive(Template)]
#[template(path = "admin/temporary_access.html")]
pub struct IssuedView {
    pub layout: Layout,
    pub nav: Nav,
    pub username: String,
    pub display_name: String,
    pub code: String,
    pub access: TemporaryAccessRow,
    pub back: String,
}

/// A whole number of a form field, or the field's error.
fn number(text: &str, field: &'static str, message: &str) -> Result<u32, FieldErrors> {
    text.trim()
        .parse()
        .map_err(|_| FieldErrors::one(field, message.to_owned()))
}

/// `POST /admin/users/{name}/temporary-access`: issues a code (replacing any earlier
/// one) and shows it once; a bad field shows Edit User again with its error and values.
pub(super) async fn issue_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(name): Path<String>,
    PageForm(form): PageForm<IssueForm>,
) -> Response {
    let actor = match poster(&state, &headers, form.csrf.as_deref()).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let terms = number(
        &form.minutes,
        "minutes",
        "Minutes must be a whole number from 1 to 1440 (24 hours).",
    )
    .and_then(|minutes| {
        number(
            &form.uses,
            "uses",
            "Uses must be a whole number from 1 to 10.",
        )
        .map(|uses| (minutes, uses))
    });
    let outcome = match terms {
        Ok((minutes, uses)) => state
            .admin
            .issue_temporary_access(
                &actor,
                &name,
                minutes,
                uses,
                &form.reason,
                Some(&ip_text(ip)),
            )
            .await
            .map_err(|error| match failure(error) {
                Failure::Field { field, message } => Ok(FieldErrors::one(field, message)),
                other => Err(other),
            }),
        Err(errors) => Err(Ok(errors)),
    };
    match outcome {
        Ok(issued) => {
            let user = match state.admin.get_user(&actor, &name).await {
                Ok(user) => user,
                Err(error) => return fail(&state, &headers, error),
            };
            let now = state.admin.context().now();
            let view = IssuedView {
                layout: Layout::new(&state, &headers),
                nav: Nav::new(&actor, "users"),
                username: user.user.username.as_str().to_owned(),
                display_name: user.user.display_name.as_str().to_owned(),
                code: issued.code.reveal(),
                access: TemporaryAccessRow::of(&issued.access, now),
                back: format!("/admin/users/{}", segment(user.user.username.as_str())),
            };
            render(&state, StatusCode::OK, &view.layout, &view)
        }
        Err(Ok(errors)) => {
            let mut view =
                match edit_user_view(&state, &headers, &actor, &name, None, errors, None).await {
                    Ok(view) => view,
                    Err(response) => return response,
                };
            view.access_form = AccessFormValues {
                minutes: form.minutes,
                uses: form.uses,
                reason: form.reason,
            };
            render(
                &state,
                StatusCode::UNPROCESSABLE_ENTITY,
                &view.layout,
                &view,
            )
        }
        Err(Err(other)) => failure_page(&state, &headers, other),
    }
}

/// `POST /admin/users/{name}/temporary-access/revoke`.
pub(super) async fn revoke_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(name): Path<String>,
    PageForm(form): PageForm<super::CsrfForm>,
) -> Response {
    let actor = match poster(&state, &headers, form.csrf.as_deref()).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    match state
        .admin
        .revoke_temporary_access(&actor, &name, Some(&ip_text(ip)))
        .await
    {
        Ok(()) => see_other(&format!("/admin/users/{}?m=access_revoked", segment(&name))),
        Err(error) => fail(&state, &headers, error),
    }
}
