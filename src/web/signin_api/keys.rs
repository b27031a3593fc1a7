//! SPEC 14's JSON sign-in endpoints for security keys and passkeys: the device step's
//! options and answer, and "Sign in with a passkey". `credential` is the browser's
//! `PublicKeyCredential.toJSON()` (WebAuthn Level 3); every refusal is the generic
//! `401 invalid_credentials`, counted like a wrong code.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::super::json_error::{ApiError, ApiJson, ErrorBody};
use super::super::{AppState, ClientIp};
use super::{PromptModeName, SignInAnswer, TransactionBody};

/// A ceremony's options for the browser (`navigator.credentials.create()` or `.get()`):
/// PublicKeyCredentialCreationOptions or PublicKeyCredentialRequestOptions in their JSON
/// form (`PublicKeyCredential.parseCreationOptionsFromJSON` reads them).
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyOptions {
    #[schema(value_type = Object)]
    pub public_key: serde_json::Value,
}

/// A security key or passkey of a user (the account's, or on Edit User).
#[derive(Debug, Serialize, ToSchema)]
pub struct SecurityKeyOut {
    pub id: i64,
    pub name: String,
    pub prompt_mode: PromptModeName,
    /// A passkey: it signs in without username and password.
    pub passkey: bool,
    /// When it was registered (Unix milliseconds).
    pub created_at: i64,
    /// When it last signed in (Unix milliseconds).
    pub last_used_at: Option<i64>,
}

impl From<crate::domain::SecurityKey> for SecurityKeyOut {
    fn from(key: crate::domain::SecurityKey) -> Self {
        Self {
            id: key.id.0,
            name: key.name.as_str().to_owned(),
            prompt_mode: key.prompt_mode.into(),
            passkey: key.discoverable,
            created_at: key.created_at.millis(),
            last_used_at: key.last_used_at.map(|at| at.millis()),
        }
    }
}

/// A passkey sign-in's options, with the handle to send back.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyOptions {
    /// Send it back with the answer; single use, expires like a sign-in transaction.
    pub challenge_id: String,
    #[schema(value_type = Object)]
    pub public_key: serde_json::Value,
}

#[derive(Deserialize, ToSchema)]
pub(in crate::web) struct AssertionBody {
    transaction: String,
    /// AuthenticationResponseJSON.
    #[schema(value_type = Object)]
    credential: serde_json::Value,
}

#[derive(Deserialize, ToSchema)]
pub(in crate::web) struct PasskeyBody {
    challenge_id: String,
    /// AuthenticationResponseJSON.
    #[schema(value_type = Object)]
    credential: serde_json::Value,
}

/// Nothing: `{}`.
#[derive(Deserialize, ToSchema)]
pub(in crate::web) struct EmptyBody {}

/// The device step's options for the user's security keys (a new challenge, bound to the
/// transaction; an earlier one no longer counts).
#[utoipa::path(
    post,
    path = "/api/v1/signin/webauthn/options",
    tag = "sign-in",
    request_body = TransactionBody,
    responses(
        (status = 200, description = "For `navigator.credentials.get()`", body = KeyOptions),
        (status = 401, description = "`transaction_expired`", body = ErrorBody),
        (status = 409, description = "`wrong_step`, or `security_keys_not_offered` (the user has no key, or keys are off)", body = ErrorBody),
    )
)]
pub(in crate::web) async fn options(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TransactionBody>,
) -> Result<Json<KeyOptions>, ApiError> {
    let public_key = state.signin.key_options(&body.transaction).await?;
    Ok(Json(KeyOptions { public_key }))
}

/// Answer the device step with a security key.
#[utoipa::path(
    post,
    path = "/api/v1/signin/webauthn",
    tag = "sign-in",
    request_body = AssertionBody,
    responses(
        (status = 200, description = "The next step, or the session", body = SignInAnswer),
        (status = 401, description = "`invalid_credentials` (any refusal: replayed, another challenge, another relying party, no user verification, a counter that did not grow, another user's key) or `transaction_expired`", body = ErrorBody),
        (status = 409, description = "`wrong_step`", body = ErrorBody),
    )
)]
pub(in crate::web) async fn assertion(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AssertionBody>,
) -> Result<Json<SignInAnswer>, ApiError> {
    Ok(Json(
        state
            .signin
            .security_key(&body.transaction, &body.credential.to_string())
            .await?
            .into(),
    ))
}

/// "Sign in with a passkey": the options of a discoverable assertion.
#[utoipa::path(
    post,
    path = "/api/v1/signin/passkey/options",
    tag = "sign-in",
    request_body = EmptyBody,
    responses(
        (status = 200, description = "For `navigator.credentials.get()`", body = PasskeyOptions),
        (status = 409, description = "`security_keys_not_offered`", body = ErrorBody),
    )
)]
pub(in crate::web) async fn passkey_options(
    State(state): State<AppState>,
    ApiJson(_empty): ApiJson<EmptyBody>,
) -> Result<Json<PasskeyOptions>, ApiError> {
    let (handle, public_key) = state.signin.passkey_options().await?;
    Ok(Json(PasskeyOptions {
        challenge_id: handle.as_str().to_owned(),
        public_key,
    }))
}

/// Sign in with a passkey: no username, no password, no other step (SPEC 14).
#[utoipa::path(
    post,
    path = "/api/v1/signin/passkey",
    tag = "sign-in",
    request_body = PasskeyBody,
    responses(
        (status = 200, description = "`signed_in`", body = SignInAnswer),
        (status = 401, description = "`invalid_credentials`, whatever failed", body = ErrorBody),
    )
)]
pub(in crate::web) async fn passkey(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<PasskeyBody>,
) -> Result<Json<SignInAnswer>, ApiError> {
    Ok(Json(
        state
            .signin
            .passkey(&body.challenge_id, &body.credential.to_string(), ip)
            .await?
            .into(),
    ))
}
