//! What the sign-in pages share: the redirects between the steps (the page of a sign-in
//! status, back to the password, what a failure does) and the forms they read.

use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

use super::failures::{failure, Failure, FormKind};
use crate::service::signin::{SignInError, SignInStatus};
use crate::web::html::{
    form_expired_in, internal_error_in, problem_in, see_other, with_cookie, Layout,
};
use crate::web::{cookies, AppState};

/// Back to the password: the sign-in has expired (or never was).
pub(super) fn restart(state: &AppState) -> Response {
    with_cookie(
        see_other("/signin?m=expired"),
        cookies::clear(cookies::TRANSACTION, state.secure_cookies),
    )
}

/// The redirect to the page of a sign-in status, with its cookies.
pub(super) fn next(state: &AppState, status: SignInStatus) -> Response {
    let secure = state.secure_cookies;
    let (location, transaction) = match status {
        SignInStatus::SignedIn {
            session,
            recovery_codes_left,
            temporary_access,
            ..
        } => {
            // After a recovery code, the signed-in page says how many are left; after a
            // temporary access code, it offers to set up a new device (SPEC 15).
            let location = match (recovery_codes_left, temporary_access) {
                (_, Some(_)) => "/?temporary=used",
                (Some(_), None) => "/?recovery=used",
                (None, None) => "/",
            };
            return signed_in(state, see_other(location), session.as_str());
        }
        SignInStatus::OtpRequired {
            transaction, email, ..
        } => {
            let location = match email.and_then(|notice| notice.resend_after) {
                Some(seconds) => format!("/signin/verify?wait={}", seconds.max(0)),
                None => "/signin/verify".to_owned(),
            };
            (location, transaction)
        }
        SignInStatus::Enroll { transaction, .. } => ("/signin/enroll".to_owned(), transaction),
        SignInStatus::ChangePassword { transaction } => {
            ("/signin/change-password".to_owned(), transaction)
        }
    };
    with_cookie(
        see_other(&location),
        cookies::set(cookies::TRANSACTION, transaction.as_str(), secure, None),
    )
}

/// `response` with the cookies of a finished sign-in: the new session's, and the
/// transaction's cleared.
pub(super) fn signed_in(state: &AppState, response: Response, session: &str) -> Response {
    let response = with_cookie(response, cookies::session(state, session));
    with_cookie(
        response,
        cookies::clear(cookies::TRANSACTION, state.secure_cookies),
    )
}

/// What a failure does when the current form cannot simply be shown again.
pub(super) async fn settle(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    failure: Failure,
) -> Response {
    match failure {
        Failure::Resume => match state.signin.status(token).await {
            Ok(status) => next(state, status),
            Err(error) => settle_now(state, headers, failure_of_status(error)).await,
        },
        other => settle_now(state, headers, other).await,
    }
}

/// `status` fails only for an expired transaction or our own fault; anything else would be
/// a loop, so it restarts.
pub(super) fn failure_of_status(error: SignInError) -> Failure {
    match failure(error, FormKind::Code) {
        Failure::Internal(id) => Failure::Internal(id),
        Failure::Again { .. } | Failure::Restart | Failure::Resume => Failure::Restart,
    }
}

pub(super) async fn settle_now(
    state: &AppState,
    headers: &HeaderMap,
    failure: Failure,
) -> Response {
    match failure {
        Failure::Again { status, message } => problem_in(
            state,
            layout(state, headers).await,
            status,
            "Sign-in could not continue",
            message.to_string(),
            None,
        ),
        Failure::Restart | Failure::Resume => restart(state),
        Failure::Internal(id) => internal_error_in(state, layout(state, headers).await, id),
    }
}

/// The shell of a sign-in page: with the Help Text and the lockout hint (SPEC section
/// 11). Without the settings (the database is away) the page still shows, without them.
pub(super) async fn layout(state: &AppState, headers: &HeaderMap) -> Layout {
    let layout = Layout::new(state, headers);
    match state.signin.page_notes().await {
        Ok(notes) => layout.with_notes(&notes),
        Err(error) => {
            tracing::warn!(%error, "a sign-in page is shown without the help text");
            layout
        }
    }
}

/// 403 for a sign-in form without its token, with the Help Text.
pub(super) async fn expired_form(state: &AppState, headers: &HeaderMap) -> Response {
    form_expired_in(state, layout(state, headers).await)
}

/// The transaction cookie (without one, the page sends back to the password).
pub(super) fn transaction(headers: &HeaderMap) -> Option<String> {
    cookies::get(headers, cookies::TRANSACTION).filter(|token| !token.is_empty())
}

#[derive(Deserialize)]
pub(super) struct CsrfOnly {
    pub(super) csrf: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct SignInForm {
    pub(super) csrf: Option<String>,
    #[serde(default)]
    pub(super) username: String,
    #[serde(default)]
    pub(super) password: String,
}

#[derive(Deserialize)]
pub(super) struct CodeForm {
    pub(super) csrf: Option<String>,
    #[serde(default)]
    pub(super) code: String,
}

#[derive(Deserialize)]
pub(super) struct EnrollForm {
    pub(super) csrf: Option<String>,
    pub(super) method: Option<String>,
    pub(super) prompt_mode: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct NewPasswordForm {
    pub(super) csrf: Option<String>,
    #[serde(default)]
    pub(super) new_password: String,
    #[serde(default)]
    pub(super) confirm_password: String,
}
