//! The administration JSON API of SPEC section 9 (`/api/v1/roles`, `/users`, `/settings`,
//! `/ip-rules`, `/templates/...`, `/audit`, `/tokens`) and SPEC 13's `/oidc/clients`.
//!
//! Every handler translates a request into one call of [`Admin`], which checks the
//! caller's permission, validates, stores and audits; errors become answers in the one
//! mapping of [`ApiError`] ([`super::json_error`]). The caller is an [`AdminActor`]: the
//! user of a session token or of an API token, sent as `Authorization: Bearer T`.
//!
//! This file holds the router, the extractors ([`AdminActor`], [`ApiPath`], [`ApiQuery`])
//! and the helpers the resources share; each resource has its file, with its handlers,
//! their `#[utoipa::path]` and the types they send and take:
//!
//! - [`roles`]: security roles (`/api/v1/roles`);
//! - [`users`]: users, their search, unlocking (`/api/v1/users`);
//! - [`devices`]: a user's 2FA device (`/api/v1/users/{username}/device`);
//! - [`temporary_access`]: a user's temporary access code (SPEC 15);
//! - [`settings`]: the system settings of SPEC section 2 (`/api/v1/settings`);
//! - [`ip_rules`]: the Acceptable IP Rules (`/api/v1/ip-rules`);
//! - [`templates`]: the OTP Notification Email and security templates (`/api/v1/templates/...`);
//! - [`audit`]: the audit log (`/api/v1/audit`);
//! - [`tokens`]: API tokens (`/api/v1/tokens`);
//! - [`applications`]: OpenID Connect clients (`/api/v1/oidc/clients`, SPEC 13).
//!
//! [`Admin`]: crate::service::admin::Admin

pub mod applications;
pub mod audit;
pub mod devices;
pub mod ip_rules;
pub mod keys;
pub mod roles;
pub mod settings;
pub mod templates;
pub mod temporary_access;
pub mod tokens;
pub mod users;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRef, FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::json_error::ApiError;
use super::signin_api::bearer;
use super::{AppState, ClientIp};
use crate::service::admin::Actor;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/roles",
            get(roles::list_roles).post(roles::create_role),
        )
        .route(
            "/api/v1/roles/{name}",
            get(roles::get_role).patch(roles::update_role),
        )
        .route(
            "/api/v1/users",
            get(users::list_users).post(users::create_user),
        )
        .route(
            "/api/v1/users/{username}",
            get(users::get_user)
                .patch(users::update_user)
                .delete(users::delete_user),
        )
        .route("/api/v1/users/{username}/unlock", post(users::unlock_user))
        .route(
            "/api/v1/users/{username}/device",
            post(devices::setup_device).delete(devices::disable_device),
        )
        .route(
            "/api/v1/users/{username}/device/confirm",
            post(devices::confirm_device),
        )
        .route("/api/v1/users/{username}/keys", get(keys::list_keys))
        .route(
            "/api/v1/users/{username}/keys/{id}",
            axum::routing::delete(keys::remove_key),
        )
        .route(
            "/api/v1/users/{username}/temporary-access",
            get(temporary_access::show)
                .post(temporary_access::issue)
                .delete(temporary_access::revoke),
        )
        .route(
            "/api/v1/users/{username}/recovery-codes",
            axum::routing::delete(devices::revoke_recovery_codes),
        )
        .route(
            "/api/v1/settings",
            get(settings::get_settings).patch(settings::update_settings),
        )
        .route(
            "/api/v1/ip-rules",
            get(ip_rules::list_ip_rules).post(ip_rules::add_ip_rule),
        )
        .route(
            "/api/v1/ip-rules/{id}",
            axum::routing::delete(ip_rules::remove_ip_rule),
        )
        .route(
            "/api/v1/templates/otp-notification-email",
            get(templates::get_template).put(templates::put_template),
        )
        .route(
            "/api/v1/templates/security/{event}",
            get(templates::get_security_template).put(templates::put_security_template),
        )
        .route("/api/v1/audit", get(audit::audit_log))
        .route("/api/v1/tokens", post(tokens::create_token))
        .route(
            "/api/v1/oidc/clients",
            get(applications::list_clients).post(applications::create_client),
        )
        .route(
            "/api/v1/oidc/clients/{client_id}",
            get(applications::get_client)
                .patch(applications::update_client)
                .delete(applications::delete_client),
        )
        .route(
            "/api/v1/oidc/clients/{client_id}/secret",
            post(applications::new_client_secret),
        )
}

// ----- extractors -----

/// The caller of an administration endpoint: `Authorization: Bearer T` where `T` is a
/// session token or an API token. Without a valid one: `401 unauthenticated`. What the
/// caller may do is decided by [`Admin`], from the actor's role.
///
/// [`Admin`]: crate::service::admin::Admin
pub struct AdminActor(pub Actor);

impl<S> FromRequestParts<S> for AdminActor
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let token = bearer(&parts.headers).ok_or(ApiError::Unauthenticated)?;
        if let Some((user, role)) = state.signin.session_user(token).await? {
            return Ok(Self(Actor::User { user, role }));
        }
        state
            .admin
            .actor_for_api_token(token)
            .await?
            .map(Self)
            .ok_or(ApiError::Unauthenticated)
    }
}

/// `Path<T>` whose rejections are `404 not_found`: a path segment that does not parse
/// (an IP rule id that is not a number) names nothing.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| Self(value))
            .map_err(|_: PathRejection| ApiError::BadBody {
                status: StatusCode::NOT_FOUND,
                code: "not_found",
                message: "there is nothing at this address".to_owned(),
            })
    }
}

/// `Query<T>` whose rejections are our JSON errors (`422 invalid_input`).
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Self(value))
            .map_err(|_: QueryRejection| ApiError::BadBody {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "invalid_input",
                message: "the query string could not be read".to_owned(),
            })
    }
}

/// The client address in the text form the audit log keeps.
pub(super) fn ip_text(ClientIp(ip): ClientIp) -> String {
    ip.to_string()
}

/// A whole number from the query string; the error names the parameter.
pub(super) fn query_number<N: std::str::FromStr>(
    text: Option<&str>,
    field: &'static str,
    message: &'static str,
) -> Result<Option<N>, ApiError> {
    text.map(|text| {
        text.trim()
            .parse()
            .map_err(|_| ApiError::InvalidField { field, message })
    })
    .transpose()
}

/// Distinguishes a field sent as `null` (`Some(None)`) from a missing one (`None`).
pub(super) fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}
