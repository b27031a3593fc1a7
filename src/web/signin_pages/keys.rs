//! The sign-in pages' security keys and passkeys (SPEC 14): the key's answer at the
//! device step, a key set up at the enroll step, and "Sign in with a passkey". The
//! browser's part is `/static/webauthn.js`, which fills each form's `credential` field
//! with `PublicKeyCredential.toJSON()` and submits it; without it (or without WebAuthn)
//! these forms stay hidden and the app's code works as before.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

use super::enrollment::show_enroll;
use super::failures::{failure, Failure, FormKind, Message};
use super::steps::{expired_form, next, restart, settle, settle_now, transaction};
use super::{no_query, show_verify};
use crate::web::html::{csrf_ok, PageForm};
use crate::web::{AppState, ClientIp};

#[derive(Deserialize)]
pub(super) struct KeyForm {
    csrf: Option<String>,
    #[serde(default)]
    credential: String,
    /// Registration: the name given to the key.
    #[serde(default)]
    name: String,
    /// Passkey sign-in: the handle of its options.
    #[serde(default)]
    challenge_id: String,
}

/// `POST /signin/webauthn`: the device step answered by a security key.
pub(super) async fn assertion_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(form): PageForm<KeyForm>,
) -> Response {
    if !csrf_ok(&state, &headers, form.csrf.as_deref()) {
        return expired_form(&state, &headers).await;
    }
    let Some(token) = transaction(&headers) else {
        return restart(&state);
    };
    match state.signin.security_key(&token, &form.credential).await {
        Ok(status) => next(&state, status),
        Err(error) => match failure(error, FormKind::Key) {
            Failure::Again { status, message } => {
                show_verify(&state, &headers, &token, status, Some(message), no_query()).await
            }
            other => settle(&state, &headers, &token, other).await,
        },
    }
}

/// `POST /signin/enroll/key`: the new key's answer registers it (Complete Setup).
pub(super) async fn setup_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(form): PageForm<KeyForm>,
) -> Response {
    if !csrf_ok(&state, &headers, form.csrf.as_deref()) {
        return expired_form(&state, &headers).await;
    }
    let Some(token) = transaction(&headers) else {
        return restart(&state);
    };
    let name = Some(form.name.as_str()).filter(|name| !name.trim().is_empty());
    match state
        .signin
        .enroll_key_confirm(&token, &form.credential, name)
        .await
    {
        Ok(status) => super::enrollment::after_setup(&state, &headers, status).await,
        Err(error) => match failure(error, FormKind::Enroll) {
            Failure::Again { status, message } => {
                show_enroll(&state, &headers, &token, status, Some(message)).await
            }
            other => settle(&state, &headers, &token, other).await,
        },
    }
}

/// `POST /signin/passkey`: "Sign in with a passkey".
pub(super) async fn passkey_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PageForm(form): PageForm<KeyForm>,
) -> Response {
    if !csrf_ok(&state, &headers, form.csrf.as_deref()) {
        return expired_form(&state, &headers).await;
    }
    match state
        .signin
        .passkey(&form.challenge_id, &form.credential, ip)
        .await
    {
        Ok(status) => next(&state, status),
        Err(error) => match failure(error, FormKind::Key) {
            Failure::Again { status, .. } => {
                super::signin_form_again(&state, &headers, status, Message::KeyNotAccepted).await
            }
            other => settle_now(&state, &headers, other).await,
        },
    }
}
