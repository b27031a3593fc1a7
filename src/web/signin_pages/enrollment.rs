//! The steps after the password that set something up: 2-step verification (method and
//! prompt mode, then the QR code and the first code) and the forced change of a bootstrap
//! password.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::domain::{OtpMethod, PromptMode};
use crate::service::devices::SetupInfo;
use crate::service::signin::SignInStatus;
use crate::web::html::{
    csrf_ok, inline_svg, key_groups, page, script_json, see_other, PageForm, RecoveryCodesView,
};
use crate::web::AppState;

use super::failures::{failure, Failure, FormKind, Message};
use super::steps::{
    expired_form, failure_of_status, layout, next, restart, settle, settle_now, signed_in,
    transaction, CodeForm, CsrfOnly, EnrollForm, NewPasswordForm,
};
use super::views::{
    method_description, prompt_description, ChangePasswordView, Choice, EnrollView, KeySetupView,
    SetupView, KEY_METHOD,
};

/// Shows the Create form of the transaction, or redirects to the page of its step.
pub(super) async fn show_enroll(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    status_code: StatusCode,
    message: Option<Message>,
) -> Response {
    let status = match state.signin.status(token).await {
        Ok(status) => status,
        Err(error) => return settle_now(state, headers, failure_of_status(error)).await,
    };
    let SignInStatus::Enroll {
        required,
        methods,
        security_keys,
        ..
    } = status
    else {
        return next(state, status);
    };
    let view = EnrollView {
        layout: layout(state, headers).await,
        required,
        methods: methods
            .iter()
            .enumerate()
            .map(|(i, method)| Choice {
                value: method.as_str(),
                label: method.label(),
                description: method_description(*method),
                checked: i == 0,
            })
            .chain(security_keys.then_some(KEY_METHOD))
            .collect(),
        prompt_modes: [PromptMode::EveryLogin, PromptMode::WhenAppropriate]
            .into_iter()
            .enumerate()
            .map(|(i, mode)| Choice {
                value: mode.as_str(),
                label: mode.label(),
                description: prompt_description(mode),
                checked: i == 0,
            })
            .collect(),
        message,
    };
    page(state, status_code, &view.layout, &view)
}

/// `GET /signin/enroll`: set up 2-step verification (method, prompt mode, Create).
pub(super) async fn enroll_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = transaction(&headers) else {
        return restart(&state);
    };
    show_enroll(&state, &headers, &token, StatusCode::OK, None).await
}

/// `POST /signin/enroll`: Create; the QR code page follows.
pub(super) async fn enroll_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(form): PageForm<EnrollForm>,
) -> Response {
    if !csrf_ok(&state, &headers, form.csrf.as_deref()) {
        return expired_form(&state, &headers).await;
    }
    let Some(token) = transaction(&headers) else {
        return restart(&state);
    };
    let mode = form.prompt_mode.as_deref().and_then(PromptMode::parse);
    if let (Some("webauthn"), Some(mode)) = (form.method.as_deref(), mode) {
        return show_key_setup(&state, &headers, &token, mode).await;
    }
    let method = form.method.as_deref().and_then(OtpMethod::parse);
    let (Some(method), Some(mode)) = (method, mode) else {
        let message = Some(Message::ChooseOptions);
        return show_enroll(
            &state,
            &headers,
            &token,
            StatusCode::UNPROCESSABLE_ENTITY,
            message,
        )
        .await;
    };
    match state.signin.enroll(&token, method, mode).await {
        Ok(_) => see_other("/signin/enroll/confirm"),
        Err(error) => match failure(error, FormKind::Enroll) {
            Failure::Again { status, message } => {
                show_enroll(&state, &headers, &token, status, Some(message)).await
            }
            other => settle(&state, &headers, &token, other).await,
        },
    }
}

/// The key set-up page at the enroll step: the creation options for the script.
pub(super) async fn show_key_setup(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    prompt_mode: crate::domain::PromptMode,
) -> Response {
    match state.signin.enroll_key(token, prompt_mode).await {
        Ok(options) => {
            let view = KeySetupView {
                layout: layout(state, headers).await,
                action: "/signin/enroll/key",
                back: "/signin/enroll",
                options: script_json(&options),
                message: None,
                signin: true,
            };
            page(state, StatusCode::OK, &view.layout, &view)
        }
        Err(error) => match failure(error, FormKind::Enroll) {
            Failure::Again { status, message } => {
                show_enroll(state, headers, token, status, Some(message)).await
            }
            other => settle(state, headers, token, other).await,
        },
    }
}

/// `POST /signin/enroll/skip`: "Set up later" (refused when set-up is required).
pub(super) async fn skip_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(form): PageForm<CsrfOnly>,
) -> Response {
    if !csrf_ok(&state, &headers, form.csrf.as_deref()) {
        return expired_form(&state, &headers).await;
    }
    let Some(token) = transaction(&headers) else {
        return restart(&state);
    };
    match state.signin.enroll_skip(&token).await {
        Ok(status) => next(&state, status),
        Err(error) => match failure(error, FormKind::Enroll) {
            Failure::Again { status, message } => {
                show_enroll(&state, &headers, &token, status, Some(message)).await
            }
            other => settle(&state, &headers, &token, other).await,
        },
    }
}

/// Shows the QR code page of the pending device, or the way back to Create.
pub(super) async fn show_setup(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    status_code: StatusCode,
    message: Option<Message>,
) -> Response {
    let status = match state.signin.status(token).await {
        Ok(status) => status,
        Err(error) => return settle_now(state, headers, failure_of_status(error)).await,
    };
    if !matches!(status, SignInStatus::Enroll { .. }) {
        return next(state, status);
    }
    let setup: SetupInfo = match state.signin.pending_setup(token).await {
        Ok(Some(setup)) => setup,
        Ok(None) => return see_other("/signin/enroll"),
        Err(error) => return settle_now(state, headers, failure_of_status(error)).await,
    };
    let view = SetupView {
        layout: layout(state, headers).await,
        hotp: setup.method == OtpMethod::Hotp,
        qr_svg: inline_svg(&setup.qr_svg),
        key_groups: key_groups(&setup.secret_base32),
        otpauth_uri: setup.otpauth_uri,
        issuer: setup.issuer,
        account: setup.account,
        message,
    };
    page(state, status_code, &view.layout, &view)
}

/// `GET /signin/enroll/confirm`: the QR code, the manual key and the code field.
pub(super) async fn setup_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = transaction(&headers) else {
        return restart(&state);
    };
    show_setup(&state, &headers, &token, StatusCode::OK, None).await
}

/// `POST /signin/enroll/confirm`: Complete Setup.
pub(super) async fn setup_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(form): PageForm<CodeForm>,
) -> Response {
    if !csrf_ok(&state, &headers, form.csrf.as_deref()) {
        return expired_form(&state, &headers).await;
    }
    let Some(token) = transaction(&headers) else {
        return restart(&state);
    };
    match state.signin.enroll_confirm(&token, form.code.trim()).await {
        Ok(status) => after_setup(&state, &headers, status).await,
        Err(error) => match failure(error, FormKind::Setup) {
            Failure::Again { status, message } => {
                show_setup(&state, &headers, &token, status, Some(message)).await
            }
            other => settle(&state, &headers, &token, other).await,
        },
    }
}

/// After Complete Setup (an app or a key): when enrollment completed the sign-in, the
/// first set of recovery codes, shown once (SPEC 10), then "Continue" to the signed-in
/// page; otherwise the next step.
pub(super) async fn after_setup(
    state: &AppState,
    headers: &HeaderMap,
    status: SignInStatus,
) -> Response {
    match status {
        SignInStatus::SignedIn {
            session,
            recovery_codes,
            ..
        } if !recovery_codes.is_empty() => {
            let view = RecoveryCodesView::new(layout(state, headers).await, &recovery_codes, "/");
            let response = page(state, StatusCode::OK, &view.layout, &view);
            signed_in(state, response, session.as_str())
        }
        status => next(state, status),
    }
}

/// Shows the new-password form of the transaction, or redirects to the page of its step.
pub(super) async fn show_password(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    status_code: StatusCode,
    message: Option<Message>,
) -> Response {
    let status = match state.signin.status(token).await {
        Ok(status) => status,
        Err(error) => return settle_now(state, headers, failure_of_status(error)).await,
    };
    if !matches!(status, SignInStatus::ChangePassword { .. }) {
        return next(state, status);
    }
    let view = ChangePasswordView {
        layout: layout(state, headers).await,
        message,
    };
    page(state, status_code, &view.layout, &view)
}

/// `GET /signin/change-password`: the forced change of a bootstrap password.
pub(super) async fn password_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = transaction(&headers) else {
        return restart(&state);
    };
    show_password(&state, &headers, &token, StatusCode::OK, None).await
}

/// `POST /signin/change-password`.
pub(super) async fn password_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(form): PageForm<NewPasswordForm>,
) -> Response {
    if !csrf_ok(&state, &headers, form.csrf.as_deref()) {
        return expired_form(&state, &headers).await;
    }
    let Some(token) = transaction(&headers) else {
        return restart(&state);
    };
    if form.new_password != form.confirm_password {
        return show_password(
            &state,
            &headers,
            &token,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(Message::PasswordsDiffer),
        )
        .await;
    }
    match state
        .signin
        .change_password(&token, &form.new_password)
        .await
    {
        Ok(status) => next(&state, status),
        Err(error) => match failure(error, FormKind::NewPassword) {
            Failure::Again { status, message } => {
                show_password(&state, &headers, &token, status, Some(message)).await
            }
            other => settle(&state, &headers, &token, other).await,
        },
    }
}
