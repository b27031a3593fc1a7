//! The server-rendered pages: sign in, verify code, set up 2-step verification, change
//! password, signed in. Work without JavaScript; every form carries a CSRF token.
//!
//! Each handler translates a form into one call of [`SignIn`] (the same calls as the JSON
//! API) and its outcome into a redirect or a page. A finished step redirects (303) to the
//! page of the next one, so that reloading a page never posts a form again. Failures go
//! through one exhaustive mapping, [`failure`](failures::failure).
//!
//! HTML comes only from the askama templates in `templates/` (auto-escaping on), in the
//! page shell of [`html`](super::html) (layout, rendering, the CSRF check, the error pages,
//! the form extractor); the one value inserted unescaped is the QR code, an SVG that
//! twostep generates itself.
//!
//! [`SignIn`]: crate::service::signin::SignIn

mod enrollment;
mod failures;
mod keys;
mod steps;
mod switch_user;
mod views;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header::{self, HeaderValue};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use data_encoding::BASE64URL_NOPAD;
use serde::Deserialize;

use super::html::{
    any_section, csrf_ok, page, print_script, script_json, see_other, webauthn_script, with_cookie,
    PageForm,
};
use super::return_to::ReturnUrl;
use super::{cookies, AppState, ClientIp};
use crate::domain::OtpMethod;
use crate::service::signin::{OtpKind, SignInStatus};

use enrollment::{
    enroll_page, enroll_submit, password_page, password_submit, setup_page, setup_submit,
    skip_submit,
};
use failures::{failure, Failure, FormKind, Message};
use steps::{
    expired_form, failure_of_status, layout, next, restart, settle, settle_now, transaction,
    CodeForm, CsrfOnly, SignInForm,
};
use views::{ContinueView, EmailView, HomeView, SignInView, TemporaryAccessNotice, VerifyView};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/signin", get(signin_page).post(signin_submit))
        .route("/signin/verify", get(verify_page).post(verify_submit))
        .route("/signin/resend", post(resend_submit))
        .route("/signin/enroll", get(enroll_page).post(enroll_submit))
        .route("/signin/enroll/confirm", get(setup_page).post(setup_submit))
        .route("/signin/enroll/skip", post(skip_submit))
        .route("/signin/enroll/key", post(keys::setup_submit))
        .route("/signin/webauthn", post(keys::assertion_submit))
        .route("/signin/passkey", post(keys::passkey_submit))
        .route(
            "/signin/change-password",
            get(password_page).post(password_submit),
        )
        .route("/signin/cancel", post(cancel_submit))
        .route("/signout", post(signout_submit))
        .route(
            "/switch-user",
            get(switch_user::switch_user_page).post(switch_user::switch_user_submit),
        )
        .route("/static/style.css", get(stylesheet))
        .route("/static/print.js", get(print_script))
        .route("/static/webauthn.js", get(webauthn_script))
}

// ---------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------

/// `GET /static/style.css`: the one stylesheet, cacheable for an hour.
async fn stylesheet() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        include_str!("../../static/style.css"),
    )
        .into_response()
}

#[derive(Deserialize)]
struct HomeQuery {
    /// `used`: this sign-in used a recovery code; the page says how many are left.
    recovery: Option<String>,
    /// `used`: this sign-in used a temporary access code; the page offers a new device.
    temporary: Option<String>,
}

/// `GET /`: the signed-in page, or the way to sign in.
async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<HomeQuery>, QueryRejection>,
) -> Response {
    let (recovery_used, temporary_used) = match &query {
        Ok(Query(q)) => (
            q.recovery.as_deref() == Some("used"),
            q.temporary.as_deref() == Some("used"),
        ),
        Err(_) => (false, false),
    };
    let Some(token) = cookies::get(&headers, cookies::SESSION).filter(|t| !t.is_empty()) else {
        return see_other("/signin");
    };
    let found = match state.signin.session_user(&token).await {
        Ok(found) => found,
        Err(error) => return settle_now(&state, &headers, failure_of_status(error)).await,
    };
    let Some((user, role)) = found else {
        return with_cookie(see_other("/signin"), cookies::clear_session(&state));
    };
    // Back to the application whose authorization request waited (SPEC 13).
    if let Some((application, _)) = waiting_application(&state, &headers).await {
        let view = ContinueView {
            layout: layout(&state, &headers).await,
            url: "/oauth2/authorize/resume".to_owned(),
            host: application,
        };
        return page(&state, StatusCode::OK, &view.layout, &view);
    }
    // Back to the application that sent the browser to sign in (forward-auth).
    if let Some(url) = return_to_cookie(&state, &headers) {
        let view = ContinueView {
            layout: layout(&state, &headers).await,
            url: url.as_str().to_owned(),
            host: url.host().to_owned(),
        };
        return with_cookie(
            page(&state, StatusCode::OK, &view.layout, &view),
            cookies::clear(cookies::RETURN_TO, state.secure_cookies),
        );
    }
    let two_step_enabled = match state.signin.two_step_enabled(&user).await {
        Ok(enabled) => enabled,
        Err(error) => return settle_now(&state, &headers, failure_of_status(error)).await,
    };
    let recovery_codes_left = match recovery_used {
        true => match state.signin.recovery_codes_left(&user).await {
            Ok(left) => Some(left),
            Err(error) => return settle_now(&state, &headers, failure_of_status(error)).await,
        },
        false => None,
    };
    let temporary_access = match temporary_used {
        true => match state.signin.temporary_access(&user).await {
            Ok(access) => Some(TemporaryAccessNotice {
                left: access
                    .map(|a| temporary_access_left(&a))
                    .unwrap_or_default(),
            }),
            Err(error) => return settle_now(&state, &headers, failure_of_status(error)).await,
        },
        false => None,
    };
    let view = HomeView {
        layout: layout(&state, &headers).await,
        recovery_codes_left,
        temporary_access,
        display_name: user.display_name.as_str().to_owned(),
        username: user.username.as_str().to_owned(),
        role: role.name.as_str().to_owned(),
        two_step_enabled,
        admin: any_section(&role),
    };
    page(&state, StatusCode::OK, &view.layout, &view)
}

/// "It works for 2 more sign-ins, until 2027-01-15 10:30 UTC."
fn temporary_access_left(access: &crate::domain::TemporaryAccess) -> String {
    let sign_ins = match access.uses_left {
        1 => "1 more sign-in".to_owned(),
        n => format!("{n} more sign-ins"),
    };
    format!(
        "It works for {sign_ins}, until {}.",
        crate::mail::template::SecurityValues::event_time_text(access.expires_at)
    )
}

#[derive(Deserialize)]
struct SignInQuery {
    m: Option<String>,
    /// The URL to return to after signing in (forward-auth); used only if allowed.
    rd: Option<String>,
    /// Sent by `/oauth2/authorize`: an application's request waits (its cookie).
    authorize: Option<String>,
}

/// The application whose authorization request waits for this browser's sign-in (SPEC
/// 13): its name and whether it requires a second factor. `None` without a (live) one.
async fn waiting_application(state: &AppState, headers: &HeaderMap) -> Option<(String, bool)> {
    let request = cookies::get(headers, cookies::AUTHORIZE)?;
    match state.oidc.waiting_application(&request).await {
        Ok(found) => found,
        Err(error) => {
            tracing::error!(%error, "the waiting authorization request could not be read");
            None
        }
    }
}

/// How long the URL to return to is remembered while signing in.
const RETURN_TO_SECONDS: i64 = 60 * 60;

/// The remembered URL to return to, if it is (still) allowed.
fn return_to_cookie(state: &AppState, headers: &HeaderMap) -> Option<ReturnUrl> {
    let encoded = cookies::get(headers, cookies::RETURN_TO)?;
    let bytes = BASE64URL_NOPAD.decode(encoded.as_bytes()).ok()?;
    let url = String::from_utf8(bytes).ok()?;
    state.forward_auth.returns.check(&url)
}

/// `GET /signin`: the username and password form. With `?rd=URL` (from forward-auth), an
/// allowed URL is remembered and returned to after sign-in (at once if already signed
/// in); any other is ignored, and forgotten.
async fn signin_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<SignInQuery>, QueryRejection>,
) -> Response {
    let query = query.ok().map(|Query(q)| q);
    let message = match query.as_ref().and_then(|q| q.m.as_deref()) {
        Some("expired") => Some(Message::Expired),
        Some("signed_out") => Some(Message::SignedOut),
        Some("cancelled") => Some(Message::Cancelled),
        Some("switched") => Some(Message::Switched),
        _ => None,
    };
    let requested = query.as_ref().and_then(|q| q.rd.as_deref());
    let return_to = requested.and_then(|url| state.forward_auth.returns.check(url));
    if let Some(url) = &return_to {
        let session = cookies::get(&headers, cookies::SESSION).filter(|t| !t.is_empty());
        if let Some(token) = session {
            match state.signin.session_user(&token).await {
                Ok(Some(_)) => return see_other(url.as_str()),
                Ok(None) => {}
                Err(error) => return settle_now(&state, &headers, failure_of_status(error)).await,
            }
        }
    }
    // Only the sign-in `/oauth2/authorize` sent here continues to the application; any
    // other forgets a request left waiting.
    let for_application = query.as_ref().is_some_and(|q| q.authorize.is_some())
        || matches!(message, Some(Message::Expired));
    let application = match for_application {
        true => waiting_application(&state, &headers)
            .await
            .map(|(name, _)| name),
        false => None,
    };
    let view = SignInView {
        layout: layout(&state, &headers).await,
        username: String::new(),
        message,
        application,
        passkeys: passkeys_offered(&state).await,
    };
    let mut response = page(&state, StatusCode::OK, &view.layout, &view);
    if !for_application && cookies::get(&headers, cookies::AUTHORIZE).is_some() {
        response = with_cookie(
            response,
            cookies::clear(cookies::AUTHORIZE, state.secure_cookies),
        );
    }
    match (requested, return_to) {
        (_, Some(url)) => with_cookie(
            response,
            cookies::set(
                cookies::RETURN_TO,
                &BASE64URL_NOPAD.encode(url.as_str().as_bytes()),
                state.secure_cookies,
                Some(RETURN_TO_SECONDS),
            ),
        ),
        (Some(_), None) => {
            tracing::info!("sign-in ignored a return URL that is not allowed (--redirect-domain)");
            with_cookie(
                response,
                cookies::clear(cookies::RETURN_TO, state.secure_cookies),
            )
        }
        (None, None) => response,
    }
}

/// `POST /signin`: the password step.
async fn signin_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PageForm(form): PageForm<SignInForm>,
) -> Response {
    if !csrf_ok(&state, &headers, form.csrf.as_deref()) {
        return expired_form(&state, &headers).await;
    }
    let application = waiting_application(&state, &headers).await;
    let second_factor = application.as_ref().is_some_and(|(_, required)| *required);
    match state
        .signin
        .password_for(&form.username, &form.password, ip, second_factor)
        .await
    {
        Ok(status) => next(&state, status),
        Err(error) => match failure(error, FormKind::Password) {
            Failure::Again { status, message } => {
                let view = SignInView {
                    layout: layout(&state, &headers).await,
                    username: form.username,
                    message: Some(message),
                    application: application.map(|(name, _)| name),
                    passkeys: passkeys_offered(&state).await,
                };
                page(&state, status, &view.layout, &view)
            }
            other => settle_now(&state, &headers, other).await,
        },
    }
}

/// Whether the sign-in page offers "Sign in with a passkey" (SPEC 14); without the
/// settings (the database is away) it does not.
async fn passkeys_offered(state: &AppState) -> bool {
    state.signin.security_keys_offered().await.unwrap_or(false)
}

/// The sign-in page again with `message` (a passkey that did not sign in).
async fn signin_form_again(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    message: Message,
) -> Response {
    let application = waiting_application(state, headers).await;
    let view = SignInView {
        layout: layout(state, headers).await,
        username: String::new(),
        message: Some(message),
        application: application.map(|(name, _)| name),
        passkeys: passkeys_offered(state).await,
    };
    page(state, status, &view.layout, &view)
}

#[derive(Deserialize)]
struct VerifyQuery {
    wait: Option<String>,
    sent: Option<String>,
}

/// Shows the code page of the transaction, or redirects to the page of its step.
async fn show_verify(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    status_code: StatusCode,
    message: Option<Message>,
    query: VerifyQuery,
) -> Response {
    let status = match state.signin.status(token).await {
        Ok(status) => status,
        Err(error) => return settle_now(state, headers, failure_of_status(error)).await,
    };
    let SignInStatus::OtpRequired {
        kind,
        email,
        security_keys,
        ..
    } = status
    else {
        return next(state, status);
    };
    // The user's keys answer this step too: a new challenge for this page.
    let key_options = match security_keys {
        true => match state.signin.key_options(token).await {
            Ok(options) => Some(script_json(&options)),
            Err(error) => return settle_now(state, headers, failure_of_status(error)).await,
        },
        false => None,
    };
    let email = match (kind, email) {
        (OtpKind::Email, notice) => {
            let still_sending = match state.signin.still_sending(token).await {
                Ok(sending) => sending,
                Err(error) => return settle_now(state, headers, failure_of_status(error)).await,
            };
            Some(EmailView {
                masked_to: notice.map(|n| n.masked_to).unwrap_or_default(),
                // A number only, and only as a hint: the service enforces the delay.
                nothing_sent_wait: query
                    .wait
                    .and_then(|w| w.parse::<i64>().ok())
                    .map(|w| w.clamp(0, 3600)),
                just_sent: query.sent.is_some(),
                still_sending,
            })
        }
        (OtpKind::Device(_) | OtpKind::SecurityKey, _) => None,
    };
    // On the emailed step a wrong and an expired code read the same (SPEC section 11).
    let message = match message {
        Some(Message::CodeNotCorrect) if email.is_some() => Some(Message::EmailedCodeNotCorrect),
        other => other,
    };
    let view = VerifyView {
        layout: layout(state, headers).await,
        email,
        hotp: kind == OtpKind::Device(OtpMethod::Hotp),
        message,
        key_options,
        app: matches!(kind, OtpKind::Device(_)),
    };
    page(state, status_code, &view.layout, &view)
}

/// `GET /signin/verify`: "Enter the code".
async fn verify_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<VerifyQuery>, QueryRejection>,
) -> Response {
    let Some(token) = transaction(&headers) else {
        return restart(&state);
    };
    let query = query.map(|Query(q)| q).unwrap_or_else(|_| no_query());
    show_verify(&state, &headers, &token, StatusCode::OK, None, query).await
}

fn no_query() -> VerifyQuery {
    VerifyQuery {
        wait: None,
        sent: None,
    }
}

/// `POST /signin/verify`: the code step (device or emailed).
async fn verify_submit(
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
    match state.signin.otp(&token, form.code.trim()).await {
        Ok(status) => next(&state, status),
        Err(error) => match failure(error, FormKind::Code) {
            Failure::Again { status, message } => {
                show_verify(&state, &headers, &token, status, Some(message), no_query()).await
            }
            other => settle(&state, &headers, &token, other).await,
        },
    }
}

/// `POST /signin/resend`: "Send a new code".
async fn resend_submit(
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
    match state.signin.resend(&token).await {
        Ok(_) => see_other("/signin/verify?sent=1"),
        Err(error) => match failure(error, FormKind::Code) {
            Failure::Again { status, message } => {
                show_verify(&state, &headers, &token, status, Some(message), no_query()).await
            }
            other => settle(&state, &headers, &token, other).await,
        },
    }
}

/// `POST /signin/cancel`: "Cancel and sign out" on every step after the password (SPEC
/// section 11): the sign-in transaction ends, and the session if there is one; back to
/// the sign-in page, saying so.
async fn cancel_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(form): PageForm<CsrfOnly>,
) -> Response {
    if !csrf_ok(&state, &headers, form.csrf.as_deref()) {
        return expired_form(&state, &headers).await;
    }
    if let Some(token) = transaction(&headers) {
        if let Err(error) = state.signin.cancel(&token).await {
            return settle_now(&state, &headers, failure_of_status(error)).await;
        }
    }
    if let Some(token) = cookies::get(&headers, cookies::SESSION).filter(|t| !t.is_empty()) {
        if let Err(error) = state.signin.sign_out(&token).await {
            return settle_now(&state, &headers, failure_of_status(error)).await;
        }
    }
    let response = with_cookie(
        see_other("/signin?m=cancelled"),
        cookies::clear(cookies::TRANSACTION, state.secure_cookies),
    );
    with_cookie(response, cookies::clear_session(&state))
}

/// `POST /signout`: the session ends and its cookie goes.
async fn signout_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(form): PageForm<CsrfOnly>,
) -> Response {
    if !csrf_ok(&state, &headers, form.csrf.as_deref()) {
        return expired_form(&state, &headers).await;
    }
    if let Some(token) = cookies::get(&headers, cookies::SESSION) {
        if let Err(error) = state.signin.sign_out(&token).await {
            return settle_now(&state, &headers, failure_of_status(error)).await;
        }
    }
    with_cookie(
        see_other("/signin?m=signed_out"),
        cookies::clear_session(&state),
    )
}
