//! The OpenID Connect client registry (`/api/v1/oidc/clients`, SPEC 13): the list,
//! registration (a confidential client's `client_secret` in the 201 answer only), reading,
//! changes and removal, under `manage_applications`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ip_text, AdminActor, ApiPath};
use crate::domain::oidc::{ClientRegistration, RedirectUri};
use crate::service::admin::{ApplicationInput, ApplicationPatch};
use crate::web::json_error::{ApiError, ApiJson, ErrorBody};
use crate::web::{AppState, ClientIp};

/// A registered application.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientOut {
    /// 1 to 64 of `A-Z a-z 0-9 . _ -`.
    pub client_id: String,
    /// Shown to users at sign-in.
    pub name: String,
    /// Matched exactly as registered.
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Holds a client secret; a public client uses PKCE instead.
    pub confidential: bool,
    /// Its users do a second-factor step even where their role needs none.
    pub require_2fa: bool,
    /// A confidential client's secret, in the answer of its creation only (it is stored
    /// hashed and cannot be shown again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

fn texts(uris: &[RedirectUri]) -> Vec<String> {
    uris.iter().map(|uri| uri.as_str().to_owned()).collect()
}

impl From<&ClientRegistration> for ClientOut {
    fn from(client: &ClientRegistration) -> Self {
        Self {
            client_id: client.client_id.as_str().to_owned(),
            name: client.name.clone(),
            redirect_uris: texts(&client.redirect_uris),
            post_logout_redirect_uris: texts(&client.post_logout_redirect_uris),
            confidential: client.confidential,
            require_2fa: client.require_2fa,
            client_secret: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClientList {
    pub clients: Vec<ClientOut>,
}

/// A new application. Redirect URIs: `https://`, `http://` only to localhost, 127.0.0.1
/// or [::1], or a native app's own scheme with a dot (`org.example.app:/cb`); no
/// fragment; 1 to 20.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientIn {
    client_id: String,
    name: String,
    redirect_uris: Vec<String>,
    /// Default: none.
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    /// Default: `true` (a server-side application with a secret).
    confidential: Option<bool>,
    /// Default: `false`.
    #[serde(default)]
    require_2fa: bool,
}

impl From<ClientIn> for ApplicationInput {
    fn from(input: ClientIn) -> Self {
        Self {
            client_id: input.client_id,
            name: input.name,
            redirect_uris: input.redirect_uris,
            post_logout_redirect_uris: input.post_logout_redirect_uris,
            confidential: input.confidential.unwrap_or(true),
            require_2fa: input.require_2fa,
        }
    }
}

/// The changes to an application (every field optional; a list replaces the current
/// one). `confidential` cannot change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientPatch {
    name: Option<String>,
    redirect_uris: Option<Vec<String>>,
    post_logout_redirect_uris: Option<Vec<String>>,
    confidential: Option<bool>,
    require_2fa: Option<bool>,
}

impl From<ClientPatch> for ApplicationPatch {
    fn from(input: ClientPatch) -> Self {
        Self {
            name: input.name,
            redirect_uris: input.redirect_uris,
            post_logout_redirect_uris: input.post_logout_redirect_uris,
            confidential: input.confidential,
            require_2fa: input.require_2fa,
        }
    }
}

/// Every registered application.
#[utoipa::path(
    get,
    path = "/api/v1/oidc/clients",
    tag = "applications",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The applications, by client id", body = ClientList),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_applications`", body = ErrorBody),
    )
)]
pub(super) async fn list_clients(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
) -> Result<Json<ClientList>, ApiError> {
    let clients = state.admin.applications(&actor).await?;
    Ok(Json(ClientList {
        clients: clients.iter().map(ClientOut::from).collect(),
    }))
}

/// Register an application; a confidential one's `client_secret` is in this answer only.
#[utoipa::path(
    post,
    path = "/api/v1/oidc/clients",
    tag = "applications",
    security(("bearer" = [])),
    request_body = ClientIn,
    responses(
        (status = 201, description = "Registered", body = ClientOut),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_applications`", body = ErrorBody),
        (status = 409, description = "`client_id_taken`", body = ErrorBody),
        (status = 422, description = "`invalid_field` (`client_id`, `name`, `redirect_uris`, `post_logout_redirect_uris`) or `invalid_input`", body = ErrorBody),
    )
)]
pub(super) async fn create_client(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ip: ClientIp,
    ApiJson(body): ApiJson<ClientIn>,
) -> Result<(StatusCode, Json<ClientOut>), ApiError> {
    let created = state
        .admin
        .create_application(&actor, &body.into(), Some(&ip_text(ip)))
        .await?;
    let mut out = ClientOut::from(&created.client);
    out.client_secret = created.secret.map(|secret| secret.as_str().to_owned());
    Ok((StatusCode::CREATED, Json(out)))
}

/// One application, by client id (exactly).
#[utoipa::path(
    get,
    path = "/api/v1/oidc/clients/{client_id}",
    tag = "applications",
    security(("bearer" = [])),
    params(("client_id" = String, Path, description = "The application's client id")),
    responses(
        (status = 200, description = "The application", body = ClientOut),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_applications`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
pub(super) async fn get_client(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ApiPath(client_id): ApiPath<String>,
) -> Result<Json<ClientOut>, ApiError> {
    let client = state.admin.application(&actor, &client_id).await?;
    Ok(Json(ClientOut::from(&client)))
}

/// Change an application: the fields sent; the audit log keeps the values before and
/// after.
#[utoipa::path(
    patch,
    path = "/api/v1/oidc/clients/{client_id}",
    tag = "applications",
    security(("bearer" = [])),
    params(("client_id" = String, Path, description = "The application's client id")),
    request_body = ClientPatch,
    responses(
        (status = 200, description = "The application as saved", body = ClientOut),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_applications`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 422, description = "`invalid_field` (`name`, `redirect_uris`, `post_logout_redirect_uris`, `confidential`) or `invalid_input`", body = ErrorBody),
    )
)]
pub(super) async fn update_client(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ip: ClientIp,
    ApiPath(client_id): ApiPath<String>,
    ApiJson(body): ApiJson<ClientPatch>,
) -> Result<Json<ClientOut>, ApiError> {
    let client = state
        .admin
        .update_application(&actor, &client_id, &body.into(), Some(&ip_text(ip)))
        .await?;
    Ok(Json(ClientOut::from(&client)))
}

/// Remove an application.
#[utoipa::path(
    delete,
    path = "/api/v1/oidc/clients/{client_id}",
    tag = "applications",
    security(("bearer" = [])),
    params(("client_id" = String, Path, description = "The application's client id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_applications`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
pub(super) async fn delete_client(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ip: ClientIp,
    ApiPath(client_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state
        .admin
        .delete_application(&actor, &client_id, Some(&ip_text(ip)))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A confidential application's new secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientSecretOut {
    pub client_secret: String,
}

/// Give a confidential application a new client secret: the old one stops working at once.
#[utoipa::path(
    post,
    path = "/api/v1/oidc/clients/{client_id}/secret",
    tag = "applications",
    security(("bearer" = [])),
    params(("client_id" = String, Path, description = "The application's client id")),
    responses(
        (status = 200, description = "The new secret, shown this once", body = ClientSecretOut),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_applications`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 422, description = "`invalid_field` (`confidential`): a public application has no secret", body = ErrorBody),
    )
)]
pub(super) async fn new_client_secret(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ip: ClientIp,
    ApiPath(client_id): ApiPath<String>,
) -> Result<Json<ClientSecretOut>, ApiError> {
    let secret = state
        .admin
        .new_application_secret(&actor, &client_id, Some(&ip_text(ip)))
        .await?;
    Ok(Json(ClientSecretOut {
        client_secret: secret.as_str().to_owned(),
    }))
}
