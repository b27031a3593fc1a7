//! Applications (SPEC 13): the registered OpenID Connect clients; add (a confidential
//! client's secret shown once, on the page that answers the form), edit and remove
//! (after a confirmation page).
//! Needs Manage Applications, checked by [`Admin`](crate::service::admin::Admin).

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::{
    actor, fail, failure, failure_page, ip_text, poster, render, segment, Failure, FieldErrors,
    Nav, SummaryItem,
};
use crate::domain::oidc::{ClientRegistration, RedirectUri};
use crate::service::admin::{Actor, ApplicationInput, ApplicationPatch};
use crate::web::html::{see_other, Layout, PageForm};
use crate::web::{AppState, ClientIp};

/// The form's fields and their labels (the error summary's names), in the form's order.
const APPLICATION_LABELS: &[(&str, &str)] = &[
    ("client_id", "Client ID"),
    ("name", "Name"),
    ("redirect_uris", "Redirect URIs"),
    ("post_logout_redirect_uris", "Post-logout redirect URIs"),
    ("confidential", "Type"),
];

pub struct ApplicationRow {
    pub client_id: String,
    pub href: String,
    pub name: String,
    pub confidential: bool,
    pub require_2fa: bool,
    pub redirect_uris: Vec<String>,
}

/// The values of the form, from a client or as submitted.
pub struct ApplicationValues {
    pub client_id: String,
    pub name: String,
    /// One URI a line.
    pub redirect_uris: String,
    pub post_logout_redirect_uris: String,
    pub confidential: bool,
    pub require_2fa: bool,
}

impl ApplicationValues {
    fn empty() -> Self {
        Self {
            client_id: String::new(),
            name: String::new(),
            redirect_uris: String::new(),
            post_logout_redirect_uris: String::new(),
            confidential: true,
            require_2fa: false,
        }
    }

    fn of(client: &ClientRegistration) -> Self {
        Self {
            client_id: client.client_id.as_str().to_owned(),
            name: client.name.clone(),
            redirect_uris: lines_of(&client.redirect_uris),
            post_logout_redirect_uris: lines_of(&client.post_logout_redirect_uris),
            confidential: client.confidential,
            require_2fa: client.require_2fa,
        }
    }

    fn submitted(form: &ApplicationForm) -> Self {
        Self {
            client_id: form.client_id.clone(),
            name: form.name.clone(),
            redirect_uris: form.redirect_uris.clone(),
            post_logout_redirect_uris: form.post_logout_redirect_uris.clone(),
            confidential: form.kind.as_deref() != Some("public"),
            require_2fa: form.require_2fa.is_some(),
        }
    }
}

fn lines_of(uris: &[RedirectUri]) -> String {
    uris.iter()
        .map(RedirectUri::as_str)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The non-empty lines of a text area: one URI each.
fn uri_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

#[derive(Template)]
#[template(path = "admin/applications.html")]
pub struct ApplicationsView {
    pub layout: Layout,
    pub nav: Nav,
    pub applications: Vec<ApplicationRow>,
    pub values: ApplicationValues,
    pub notice: Option<&'static str>,
    pub errors: FieldErrors,
    pub summary: Vec<SummaryItem>,
}

#[derive(Template)]
#[template(path = "admin/application_edit.html")]
pub struct ApplicationEditView {
    pub layout: Layout,
    pub nav: Nav,
    pub action: String,
    pub delete_action: String,
    pub secret_action: String,
    pub values: ApplicationValues,
    pub errors: FieldErrors,
    pub summary: Vec<SummaryItem>,
}

/// The answer to Add Application: the registration and, for a confidential client, its
/// secret, which is shown here once.
#[derive(Template)]
#[template(path = "admin/application_created.html")]
pub struct ApplicationCreatedView {
    pub layout: Layout,
    pub nav: Nav,
    pub client_id: String,
    pub name: String,
    pub secret: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct ApplicationForm {
    csrf: Option<String>,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    redirect_uris: String,
    #[serde(default)]
    post_logout_redirect_uris: String,
    /// `confidential` (default) or `public`.
    kind: Option<String>,
    require_2fa: Option<String>,
}

/// An application's removal: without `confirm`, the confirmation page.
#[derive(Deserialize)]
pub(super) struct DeleteForm {
    csrf: Option<String>,
    confirm: Option<String>,
}

/// A new client secret: the confirmation page (`secret: None`), then the secret, shown
/// once.
#[derive(Template)]
#[template(path = "admin/application_secret.html")]
pub struct ApplicationSecretView {
    pub layout: Layout,
    pub nav: Nav,
    pub client_id: String,
    pub name: String,
    pub secret: Option<String>,
    pub action: String,
    pub cancel: String,
}

/// The page before an application is removed (as before an IP rule is).
#[derive(Template)]
#[template(path = "admin/application_delete.html")]
pub struct ApplicationDeleteView {
    pub layout: Layout,
    pub nav: Nav,
    pub client_id: String,
    pub name: String,
    pub action: String,
    pub cancel: String,
}

#[derive(Deserialize, Default)]
pub(super) struct ApplicationsQuery {
    m: Option<String>,
}

async fn show_list(
    state: &AppState,
    headers: &HeaderMap,
    actor: &Actor,
    status: StatusCode,
    values: ApplicationValues,
    notice: Option<&'static str>,
    errors: FieldErrors,
) -> Response {
    let clients = match state.admin.applications(actor).await {
        Ok(clients) => clients,
        Err(error) => return fail(state, headers, error),
    };
    let view = ApplicationsView {
        layout: Layout::new(state, headers),
        nav: Nav::new(actor, "applications"),
        applications: clients
            .iter()
            .map(|client| ApplicationRow {
                client_id: client.client_id.as_str().to_owned(),
                href: format!("/admin/applications/{}", segment(client.client_id.as_str())),
                name: client.name.clone(),
                confidential: client.confidential,
                require_2fa: client.require_2fa,
                redirect_uris: client
                    .redirect_uris
                    .iter()
                    .map(|uri| uri.as_str().to_owned())
                    .collect(),
            })
            .collect(),
        values,
        notice,
        summary: errors.summary(APPLICATION_LABELS),
        errors,
    };
    render(state, status, &view.layout, &view)
}

pub(super) async fn applications_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ApplicationsQuery>, QueryRejection>,
) -> Response {
    let actor = match actor(&state, &headers).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let notice = match query.ok().and_then(|Query(q)| q.m).as_deref() {
        Some("saved") => Some("The application was saved."),
        Some("removed") => Some("The application was removed."),
        _ => None,
    };
    show_list(
        &state,
        &headers,
        &actor,
        StatusCode::OK,
        ApplicationValues::empty(),
        notice,
        FieldErrors::default(),
    )
    .await
}

pub(super) async fn add_application_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PageForm(form): PageForm<ApplicationForm>,
) -> Response {
    let actor = match poster(&state, &headers, form.csrf.as_deref()).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let values = ApplicationValues::submitted(&form);
    let input = ApplicationInput {
        client_id: values.client_id.clone(),
        name: values.name.clone(),
        redirect_uris: uri_lines(&values.redirect_uris),
        post_logout_redirect_uris: uri_lines(&values.post_logout_redirect_uris),
        confidential: values.confidential,
        require_2fa: values.require_2fa,
    };
    match state
        .admin
        .create_application(&actor, &input, Some(&ip_text(ip)))
        .await
    {
        Ok(created) => {
            let view = ApplicationCreatedView {
                layout: Layout::new(&state, &headers),
                nav: Nav::new(&actor, "applications"),
                client_id: created.client.client_id.as_str().to_owned(),
                name: created.client.name.clone(),
                secret: created.secret.map(|secret| secret.as_str().to_owned()),
            };
            render(&state, StatusCode::OK, &view.layout, &view)
        }
        Err(error) => match failure(error) {
            Failure::Field { field, message } => {
                show_list(
                    &state,
                    &headers,
                    &actor,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    values,
                    None,
                    FieldErrors::one(field, message),
                )
                .await
            }
            other => failure_page(&state, &headers, other),
        },
    }
}

fn edit_view(
    state: &AppState,
    headers: &HeaderMap,
    actor: &Actor,
    values: ApplicationValues,
    errors: FieldErrors,
) -> ApplicationEditView {
    let base = format!("/admin/applications/{}", segment(&values.client_id));
    ApplicationEditView {
        layout: Layout::new(state, headers),
        nav: Nav::new(actor, "applications"),
        delete_action: format!("{base}/delete"),
        secret_action: format!("{base}/secret"),
        action: base,
        values,
        summary: errors.summary(APPLICATION_LABELS),
        errors,
    }
}

pub(super) async fn edit_application_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let actor = match actor(&state, &headers).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    match state.admin.application(&actor, &client_id).await {
        Ok(client) => {
            let view = edit_view(
                &state,
                &headers,
                &actor,
                ApplicationValues::of(&client),
                FieldErrors::default(),
            );
            render(&state, StatusCode::OK, &view.layout, &view)
        }
        Err(error) => fail(&state, &headers, error),
    }
}

pub(super) async fn edit_application_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    PageForm(form): PageForm<ApplicationForm>,
) -> Response {
    let actor = match poster(&state, &headers, form.csrf.as_deref()).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let current = match state.admin.application(&actor, &client_id).await {
        Ok(client) => client,
        Err(error) => return fail(&state, &headers, error),
    };
    let values = ApplicationValues {
        client_id: current.client_id.as_str().to_owned(),
        confidential: current.confidential,
        ..ApplicationValues::submitted(&form)
    };
    let patch = ApplicationPatch {
        name: Some(values.name.clone()),
        redirect_uris: Some(uri_lines(&values.redirect_uris)),
        post_logout_redirect_uris: Some(uri_lines(&values.post_logout_redirect_uris)),
        confidential: None,
        require_2fa: Some(values.require_2fa),
    };
    match state
        .admin
        .update_application(&actor, &client_id, &patch, Some(&ip_text(ip)))
        .await
    {
        Ok(_) => see_other("/admin/applications?m=saved"),
        Err(error) => match failure(error) {
            Failure::Field { field, message } => {
                let view = edit_view(
                    &state,
                    &headers,
                    &actor,
                    values,
                    FieldErrors::one(field, message),
                );
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

pub(super) async fn delete_application_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    PageForm(form): PageForm<DeleteForm>,
) -> Response {
    let actor = match poster(&state, &headers, form.csrf.as_deref()).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    if form.confirm.is_none() {
        let client = match state.admin.application(&actor, &client_id).await {
            Ok(client) => client,
            Err(error) => return fail(&state, &headers, error),
        };
        let base = format!("/admin/applications/{}", segment(client.client_id.as_str()));
        let view = ApplicationDeleteView {
            layout: Layout::new(&state, &headers),
            nav: Nav::new(&actor, "applications"),
            client_id: client.client_id.as_str().to_owned(),
            name: client.name,
            action: format!("{base}/delete"),
            cancel: base,
        };
        return render(&state, StatusCode::OK, &view.layout, &view);
    }
    match state
        .admin
        .delete_application(&actor, &client_id, Some(&ip_text(ip)))
        .await
    {
        Ok(()) => see_other("/admin/applications?m=removed"),
        Err(error) => fail(&state, &headers, error),
    }
}

/// `POST /admin/applications/{client_id}/secret`: "New secret", after a confirmation;
/// the new secret is shown once, and the old one stops working.
pub(super) async fn new_secret_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    PageForm(form): PageForm<DeleteForm>,
) -> Response {
    let actor = match poster(&state, &headers, form.csrf.as_deref()).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let client = match state.admin.application(&actor, &client_id).await {
        Ok(client) => client,
        Err(error) => return fail(&state, &headers, error),
    };
    let base = format!("/admin/applications/{}", segment(client.client_id.as_str()));
    let secret = match form.confirm {
        None => None,
        Some(_) => match state
            .admin
            .new_application_secret(&actor, &client_id, Some(&ip_text(ip)))
            .await
        {
            Ok(secret) => Some(secret.as_str().to_owned()),
            Err(error) => return fail(&state, &headers, error),
        },
    };
    let view = ApplicationSecretView {
        layout: Layout::new(&state, &headers),
        nav: Nav::new(&actor, "applications"),
        client_id: client.client_id.as_str().to_owned(),
        name: client.name,
        secret,
        action: format!("{base}/secret"),
        cancel: base,
    };
    render(&state, StatusCode::OK, &view.layout, &view)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SPEC 13: a text area gives one redirect URI a line; blank lines and the spaces
    /// around a URI do not count.
    #[test]
    fn a_text_area_gives_one_uri_a_line() {
        assert_eq!(
            uri_lines(" https://a.example.org/cb \r\n\r\nhttp://127.0.0.1:8400/cb\n"),
            ["https://a.example.org/cb", "http://127.0.0.1:8400/cb"]
        );
        assert!(uri_lines("\n \n").is_empty());
    }
}
