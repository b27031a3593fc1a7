//! The server-rendered pages: sign in, verify code, set up 2-step verification, change
//! password, signed in. Work without JavaScript; every form carries a CSRF token.
//!
//! Each handler translates a form into one call of [`SignIn`] (the same calls as the JSON
//! API) and its outcome into a redirect or a page. A finished step redirects (303) to the
//! page of the next one, so that reloading a page never posts a form again. Failures go
//! through one exhaustive mapping, [`failure`].
//!
//! HTML comes only from the askama templates in `templates/` (auto-escaping on), in the
//! page shell of [`html`](super::html) (layout, rendering, the CSRF check, the error pages,
//! the form extractor); the one value inserted unescaped is the QR code, an SVG that
//! twostep generates itself.
//!
//! [`SignIn`]: crate::service::signin::SignIn

use askama::Template;
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
    any_section, csrf_ok, form_expired, inline_svg, internal_error, key_groups, page, problem,
    see_other, with_cookie, Layout, PageForm,
};
use super::return_to::ReturnUrl;
use super::{cookies, request_id, AppState, ClientIp};
use crate::domain::{OtpMethod, PromptMode};
use crate::password::PasswordError;
use crate::service::devices::SetupInfo;
use crate::service::signin::{OtpKind, SignInError, SignInStatus};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/signin", get(signin_page).post(signin_submit))
        .route("/signin/verify", get(verify_page).post(verify_submit))
        .route("/signin/resend", post(resend_submit))
        .route("/signin/enroll", get(enroll_page).post(enroll_submit))
        .route("/signin/enroll/confirm", get(setup_page).post(setup_submit))
        .route("/signin/enroll/skip", post(skip_submit))
        .route(
            "/signin/change-password",
            get(password_page).post(password_submit),
        )
        .route("/signout", post(signout_submit))
        .route("/static/style.css", get(stylesheet))
}

// ---------------------------------------------------------------------------------------
// Messages and the one mapping of service errors to pages
// ---------------------------------------------------------------------------------------

/// A sentence shown above a form. Every text is ours; values in it are numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Any failed password step (unknown user, wrong password, locked account).
    PasswordNotCorrect,
    /// A wrong or expired code at the code step.
    CodeNotCorrect,
    /// A code at Complete Setup that the new device did not produce.
    SetupCodeNotCorrect,
    /// "Send a new code" refused for this many seconds.
    Wait(i64),
    EmailMissing,
    SetupRequired,
    MethodNotAllowed,
    /// The enroll form came without a valid method or prompt mode.
    ChooseOptions,
    /// A new password refused by the password rules.
    NewPassword(NewPasswordProblem),
    PasswordsDiffer,
    /// `/signin?m=expired`.
    Expired,
    /// `/signin?m=signed_out`.
    SignedOut,
}

/// Why a new password was refused (the rules live in [`crate::password`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewPasswordProblem {
    Empty,
    TooShort { min: usize },
    TooLong,
    ControlCharacter,
}

impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PasswordNotCorrect => f.write_str(
                "The username or password is not correct. Please check them and try again.",
            ),
            Self::CodeNotCorrect => {
                f.write_str("That code is not correct. Please check it and try again.")
            }
            Self::SetupCodeNotCorrect => f.write_str(
                "That code is not correct. Enter the code your app shows now, then press \
                 Complete Setup.",
            ),
            Self::Wait(1) => f.write_str("You can request a new code in 1 second."),
            Self::Wait(seconds) => {
                write!(f, "You can request a new code in {seconds} seconds.")
            }
            Self::EmailMissing => f.write_str(
                "Your account needs a code sent by email, but it has no email address. \
                 Please contact an administrator.",
            ),
            Self::SetupRequired => {
                f.write_str("2-step verification must be set up before you can continue.")
            }
            Self::MethodNotAllowed => {
                f.write_str("That method is not offered. Please choose one of the options.")
            }
            Self::ChooseOptions => f.write_str("Please choose one of the options."),
            Self::NewPassword(problem) => match problem {
                NewPasswordProblem::Empty => f.write_str("Please enter a new password."),
                NewPasswordProblem::TooShort { min } => write!(
                    f,
                    "The new password is too short. Please use at least {min} characters."
                ),
                NewPasswordProblem::TooLong => write!(
                    f,
                    "The new password is too long. Please use at most {} characters.",
                    crate::password::MAX_NEW_PASSWORD_CHARS
                ),
                NewPasswordProblem::ControlCharacter => f.write_str(
                    "The new password contains a tab or a line break. Please leave them out.",
                ),
            },
            Self::PasswordsDiffer => {
                f.write_str("The two passwords are not the same. Please type them again.")
            }
            Self::Expired => f.write_str(
                "Your sign-in has expired. Please enter your username and password again.",
            ),
            Self::SignedOut => f.write_str("You have signed out."),
        }
    }
}

impl Message {
    /// The CSS class: a problem to fix, or information.
    pub fn tone(&self) -> &'static str {
        match self {
            Self::Wait(_) | Self::Expired | Self::SignedOut => "info",
            Self::PasswordNotCorrect
            | Self::CodeNotCorrect
            | Self::SetupCodeNotCorrect
            | Self::EmailMissing
            | Self::SetupRequired
            | Self::MethodNotAllowed
            | Self::ChooseOptions
            | Self::NewPassword(_)
            | Self::PasswordsDiffer => "error",
        }
    }

    /// The ARIA role: errors are announced at once, information politely.
    pub fn role(&self) -> &'static str {
        match self.tone() {
            "error" => "alert",
            _ => "status",
        }
    }
}

/// Which form a failure happened on: "not correct" is worded for what was typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FormKind {
    Password,
    Code,
    Setup,
    Enroll,
    NewPassword,
}

/// What a page does about a failed step.
#[derive(Debug)]
enum Failure {
    /// Show the same form again, with this message and status.
    Again {
        status: StatusCode,
        message: Message,
    },
    /// The sign-in transaction is gone: back to the password, saying so.
    Restart,
    /// The form belongs to another step: go to the page of the current one.
    Resume,
    /// Our fault: the generic error page with this request id (the detail is logged).
    Internal(String),
}

/// The one mapping of [`SignInError`] to what the pages do.
fn failure(error: SignInError, form: FormKind) -> Failure {
    let again = |status, message| Failure::Again { status, message };
    match error {
        SignInError::InvalidCredentials => match form {
            FormKind::Password => again(StatusCode::UNAUTHORIZED, Message::PasswordNotCorrect),
            FormKind::Setup => again(StatusCode::UNAUTHORIZED, Message::SetupCodeNotCorrect),
            FormKind::Code | FormKind::Enroll | FormKind::NewPassword => {
                again(StatusCode::UNAUTHORIZED, Message::CodeNotCorrect)
            }
        },
        SignInError::WrongSetupCode => {
            again(StatusCode::UNAUTHORIZED, Message::SetupCodeNotCorrect)
        }
        SignInError::TransactionExpired => Failure::Restart,
        SignInError::RequestDelay { retry_after } => again(
            StatusCode::TOO_MANY_REQUESTS,
            Message::Wait(retry_after.max(0)),
        ),
        SignInError::EmailMissing => again(StatusCode::FORBIDDEN, Message::EmailMissing),
        SignInError::EnrollmentRequired => again(StatusCode::FORBIDDEN, Message::SetupRequired),
        SignInError::WrongStep => Failure::Resume,
        SignInError::MethodNotAllowed => {
            again(StatusCode::UNPROCESSABLE_ENTITY, Message::MethodNotAllowed)
        }
        SignInError::InvalidPassword(problem) => {
            let problem = match problem {
                PasswordError::Empty => NewPasswordProblem::Empty,
                PasswordError::TooShort { min } => NewPasswordProblem::TooShort { min },
                PasswordError::TooLong => NewPasswordProblem::TooLong,
                PasswordError::ControlCharacter => NewPasswordProblem::ControlCharacter,
                PasswordError::NoConcurrency
                | PasswordError::InvalidParams(_)
                | PasswordError::Hashing(_)
                | PasswordError::TaskFailed => return internal(&problem),
            };
            again(
                StatusCode::UNPROCESSABLE_ENTITY,
                Message::NewPassword(problem),
            )
        }
        SignInError::Internal(source) => internal(&*source),
    }
}

/// Logs `error` under a new request id; the page shows only the id.
fn internal(error: &dyn std::fmt::Display) -> Failure {
    let id = request_id();
    tracing::error!(request_id = %id, error = %error, "internal error on a page");
    Failure::Internal(id)
}

// ---------------------------------------------------------------------------------------
// Views (one per page)
// ---------------------------------------------------------------------------------------

/// One option of a radio group.
pub struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    /// A plain sentence under the label: what choosing it means.
    pub description: &'static str,
    pub checked: bool,
}

fn method_description(method: OtpMethod) -> &'static str {
    match method {
        OtpMethod::Totp => "The code changes every 30 seconds. Recommended.",
        OtpMethod::Hotp => "A new code each time you press the button in your app.",
    }
}

fn prompt_description(mode: PromptMode) -> &'static str {
    match mode {
        PromptMode::EveryLogin => "We ask for a code every time you sign in.",
        PromptMode::WhenAppropriate => {
            "We may skip the code when you sign in from a trusted hospital network."
        }
    }
}

#[derive(Template)]
#[template(path = "signin.html")]
pub struct SignInView {
    pub layout: Layout,
    pub username: String,
    pub message: Option<Message>,
}

/// The emailed-code part of the Verify page.
pub struct EmailView {
    pub masked_to: String,
    /// Nothing was sent for this sign-in (OTP Request Delay): a code can be asked for in
    /// this many seconds.
    pub nothing_sent_wait: Option<i64>,
    /// "Send a new code" just worked.
    pub just_sent: bool,
    /// Delivery failed once and is being retried.
    pub still_sending: bool,
}

#[derive(Template)]
#[template(path = "verify.html")]
pub struct VerifyView {
    pub layout: Layout,
    /// `None`: a code from the authenticator app.
    pub email: Option<EmailView>,
    /// The app makes counter-based codes (a button press shows the next one).
    pub hotp: bool,
    pub message: Option<Message>,
}

#[derive(Template)]
#[template(path = "enroll.html")]
pub struct EnrollView {
    pub layout: Layout,
    pub required: bool,
    /// Shown as a choice only when there is more than one.
    pub methods: Vec<Choice>,
    pub prompt_modes: Vec<Choice>,
    pub message: Option<Message>,
}

#[derive(Template)]
#[template(path = "setup.html")]
pub struct SetupView {
    pub layout: Layout,
    pub hotp: bool,
    /// Our own SVG (inserted unescaped); empty if the QR code could not be made.
    pub qr_svg: String,
    /// The base32 secret in groups of four.
    pub key_groups: Vec<String>,
    pub message: Option<Message>,
}

#[derive(Template)]
#[template(path = "change_password.html")]
pub struct ChangePasswordView {
    pub layout: Layout,
    pub message: Option<Message>,
}

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomeView {
    pub layout: Layout,
    pub display_name: String,
    pub username: String,
    pub role: String,
    pub two_step_enabled: bool,
    /// The user holds a permission of the administration console.
    pub admin: bool,
}

/// After sign-in, the way back to the application that sent the browser (forward-auth).
#[derive(Template)]
#[template(path = "continue.html")]
pub struct ContinueView {
    pub layout: Layout,
    /// An URL that [`ReturnPolicy`](super::return_to::ReturnPolicy) allowed.
    pub url: String,
    pub host: String,
}

// ---------------------------------------------------------------------------------------
// Redirects between the steps
// ---------------------------------------------------------------------------------------

/// Back to the password: the sign-in has expired (or never was).
fn restart(state: &AppState) -> Response {
    with_cookie(
        see_other("/signin?m=expired"),
        cookies::clear(cookies::TRANSACTION, state.secure_cookies),
    )
}

/// The redirect to the page of a sign-in status, with its cookies.
fn next(state: &AppState, status: SignInStatus) -> Response {
    let secure = state.secure_cookies;
    let (location, transaction) = match status {
        SignInStatus::SignedIn { session, .. } => {
            let response = with_cookie(see_other("/"), cookies::session(state, session.as_str()));
            return with_cookie(response, cookies::clear(cookies::TRANSACTION, secure));
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

/// What a failure does when the current form cannot simply be shown again.
async fn settle(state: &AppState, headers: &HeaderMap, token: &str, failure: Failure) -> Response {
    match failure {
        Failure::Resume => match state.signin.status(token).await {
            Ok(status) => next(state, status),
            Err(error) => settle_now(state, headers, failure_of_status(error)),
        },
        other => settle_now(state, headers, other),
    }
}

/// `status` fails only for an expired transaction or our own fault; anything else would be
/// a loop, so it restarts.
fn failure_of_status(error: SignInError) -> Failure {
    match failure(error, FormKind::Code) {
        Failure::Internal(id) => Failure::Internal(id),
        Failure::Again { .. } | Failure::Restart | Failure::Resume => Failure::Restart,
    }
}

fn settle_now(state: &AppState, headers: &HeaderMap, failure: Failure) -> Response {
    match failure {
        Failure::Again { status, message } => problem(
            state,
            headers,
            status,
            "Sign-in could not continue",
            message.to_string(),
            None,
        ),
        Failure::Restart | Failure::Resume => restart(state),
        Failure::Internal(id) => internal_error(state, headers, id),
    }
}

/// The transaction cookie (without one, the page sends back to the password).
fn transaction(headers: &HeaderMap) -> Option<String> {
    cookies::get(headers, cookies::TRANSACTION).filter(|token| !token.is_empty())
}

// ---------------------------------------------------------------------------------------
// Forms
// ---------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct CsrfOnly {
    csrf: Option<String>,
}

#[derive(Deserialize)]
struct SignInForm {
    csrf: Option<String>,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

#[derive(Deserialize)]
struct CodeForm {
    csrf: Option<String>,
    #[serde(default)]
    code: String,
}

#[derive(Deserialize)]
struct EnrollForm {
    csrf: Option<String>,
    method: Option<String>,
    prompt_mode: Option<String>,
}

#[derive(Deserialize)]
struct NewPasswordForm {
    csrf: Option<String>,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
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

/// `GET /`: the signed-in page, or the way to sign in.
async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = cookies::get(&headers, cookies::SESSION).filter(|t| !t.is_empty()) else {
        return see_other("/signin");
    };
    let found = match state.signin.session_user(&token).await {
        Ok(found) => found,
        Err(error) => return settle_now(&state, &headers, failure_of_status(error)),
    };
    let Some((user, role)) = found else {
        return with_cookie(see_other("/signin"), cookies::clear_session(&state));
    };
    // Back to the application that sent the browser to sign in (forward-auth).
    if let Some(url) = return_to_cookie(&state, &headers) {
        let view = ContinueView {
            layout: Layout::new(&state, &headers),
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
        Err(error) => return settle_now(&state, &headers, failure_of_status(error)),
    };
    let view = HomeView {
        layout: Layout::new(&state, &headers),
        display_name: user.display_name.as_str().to_owned(),
        username: user.username.as_str().to_owned(),
        role: role.name.as_str().to_owned(),
        two_step_enabled,
        admin: any_section(&role),
    };
    page(&state, StatusCode::OK, &view.layout, &view)
}

#[derive(Deserialize)]
struct SignInQuery {
    m: Option<String>,
    /// The URL to return to after signing in (forward-auth); used only if allowed.
    rd: Option<String>,
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
                Err(error) => return settle_now(&state, &headers, failure_of_status(error)),
            }
        }
    }
    let view = SignInView {
        layout: Layout::new(&state, &headers),
        username: String::new(),
        message,
    };
    let response = page(&state, StatusCode::OK, &view.layout, &view);
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
        return form_expired(&state, &headers);
    }
    match state
        .signin
        .password(&form.username, &form.password, ip)
        .await
    {
        Ok(status) => next(&state, status),
        Err(error) => match failure(error, FormKind::Password) {
            Failure::Again { status, message } => {
                let view = SignInView {
                    layout: Layout::new(&state, &headers),
                    username: form.username,
                    message: Some(message),
                };
                page(&state, status, &view.layout, &view)
            }
            other => settle_now(&state, &headers, other),
        },
    }
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
        Err(error) => return settle_now(state, headers, failure_of_status(error)),
    };
    let SignInStatus::OtpRequired { kind, email, .. } = status else {
        return next(state, status);
    };
    let email = match (kind, email) {
        (OtpKind::Email, notice) => {
            let still_sending = match state.signin.still_sending(token).await {
                Ok(sending) => sending,
                Err(error) => return settle_now(state, headers, failure_of_status(error)),
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
        (OtpKind::Device(_), _) => None,
    };
    let view = VerifyView {
        layout: Layout::new(state, headers),
        email,
        hotp: kind == OtpKind::Device(OtpMethod::Hotp),
        message,
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
        return form_expired(&state, &headers);
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
        return form_expired(&state, &headers);
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

/// Shows the Create form of the transaction, or redirects to the page of its step.
async fn show_enroll(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    status_code: StatusCode,
    message: Option<Message>,
) -> Response {
    let status = match state.signin.status(token).await {
        Ok(status) => status,
        Err(error) => return settle_now(state, headers, failure_of_status(error)),
    };
    let SignInStatus::Enroll {
        required, methods, ..
    } = status
    else {
        return next(state, status);
    };
    let view = EnrollView {
        layout: Layout::new(state, headers),
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
async fn enroll_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = transaction(&headers) else {
        return restart(&state);
    };
    show_enroll(&state, &headers, &token, StatusCode::OK, None).await
}

/// `POST /signin/enroll`: Create; the QR code page follows.
async fn enroll_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(form): PageForm<EnrollForm>,
) -> Response {
    if !csrf_ok(&state, &headers, form.csrf.as_deref()) {
        return form_expired(&state, &headers);
    }
    let Some(token) = transaction(&headers) else {
        return restart(&state);
    };
    let method = form.method.as_deref().and_then(OtpMethod::parse);
    let mode = form.prompt_mode.as_deref().and_then(PromptMode::parse);
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

/// `POST /signin/enroll/skip`: "Set up later" (refused when set-up is required).
async fn skip_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(form): PageForm<CsrfOnly>,
) -> Response {
    if !csrf_ok(&state, &headers, form.csrf.as_deref()) {
        return form_expired(&state, &headers);
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
async fn show_setup(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    status_code: StatusCode,
    message: Option<Message>,
) -> Response {
    let status = match state.signin.status(token).await {
        Ok(status) => status,
        Err(error) => return settle_now(state, headers, failure_of_status(error)),
    };
    if !matches!(status, SignInStatus::Enroll { .. }) {
        return next(state, status);
    }
    let setup: SetupInfo = match state.signin.pending_setup(token).await {
        Ok(Some(setup)) => setup,
        Ok(None) => return see_other("/signin/enroll"),
        Err(error) => return settle_now(state, headers, failure_of_status(error)),
    };
    let view = SetupView {
        layout: Layout::new(state, headers),
        hotp: setup.method == OtpMethod::Hotp,
        qr_svg: inline_svg(&setup.qr_svg),
        key_groups: key_groups(&setup.secret_base32),
        message,
    };
    page(state, status_code, &view.layout, &view)
}

/// `GET /signin/enroll/confirm`: the QR code, the manual key and the code field.
async fn setup_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = transaction(&headers) else {
        return restart(&state);
    };
    show_setup(&state, &headers, &token, StatusCode::OK, None).await
}

/// `POST /signin/enroll/confirm`: Complete Setup.
async fn setup_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(form): PageForm<CodeForm>,
) -> Response {
    if !csrf_ok(&state, &headers, form.csrf.as_deref()) {
        return form_expired(&state, &headers);
    }
    let Some(token) = transaction(&headers) else {
        return restart(&state);
    };
    match state.signin.enroll_confirm(&token, form.code.trim()).await {
        Ok(status) => next(&state, status),
        Err(error) => match failure(error, FormKind::Setup) {
            Failure::Again { status, message } => {
                show_setup(&state, &headers, &token, status, Some(message)).await
            }
            other => settle(&state, &headers, &token, other).await,
        },
    }
}

/// Shows the new-password form of the transaction, or redirects to the page of its step.
async fn show_password(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    status_code: StatusCode,
    message: Option<Message>,
) -> Response {
    let status = match state.signin.status(token).await {
        Ok(status) => status,
        Err(error) => return settle_now(state, headers, failure_of_status(error)),
    };
    if !matches!(status, SignInStatus::ChangePassword { .. }) {
        return next(state, status);
    }
    let view = ChangePasswordView {
        layout: Layout::new(state, headers),
        message,
    };
    page(state, status_code, &view.layout, &view)
}

/// `GET /signin/change-password`: the forced change of a bootstrap password.
async fn password_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = transaction(&headers) else {
        return restart(&state);
    };
    show_password(&state, &headers, &token, StatusCode::OK, None).await
}

/// `POST /signin/change-password`.
async fn password_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(form): PageForm<NewPasswordForm>,
) -> Response {
    if !csrf_ok(&state, &headers, form.csrf.as_deref()) {
        return form_expired(&state, &headers);
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

/// `POST /signout`: the session ends and its cookie goes.
async fn signout_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(form): PageForm<CsrfOnly>,
) -> Response {
    if !csrf_ok(&state, &headers, form.csrf.as_deref()) {
        return form_expired(&state, &headers);
    }
    if let Some(token) = cookies::get(&headers, cookies::SESSION) {
        if let Err(error) = state.signin.sign_out(&token).await {
            return settle_now(&state, &headers, failure_of_status(error));
        }
    }
    with_cookie(
        see_other("/signin?m=signed_out"),
        cookies::clear_session(&state),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_error_has_a_page_and_hides_internal_detail() {
        let secret = "database password is hunter2";
        let internal = failure(
            SignInError::Internal(secret.to_owned().into()),
            FormKind::Password,
        );
        let Failure::Internal(id) = internal else {
            panic!("internal errors are 5xx pages")
        };
        assert!(!id.contains("hunter2"));
        assert!(matches!(
            failure(SignInError::InvalidCredentials, FormKind::Password),
            Failure::Again {
                status: StatusCode::UNAUTHORIZED,
                message: Message::PasswordNotCorrect
            }
        ));
        assert!(matches!(
            failure(SignInError::InvalidCredentials, FormKind::Code),
            Failure::Again {
                message: Message::CodeNotCorrect,
                ..
            }
        ));
        assert!(matches!(
            failure(SignInError::TransactionExpired, FormKind::Code),
            Failure::Restart
        ));
        assert!(matches!(
            failure(SignInError::WrongStep, FormKind::Code),
            Failure::Resume
        ));
        assert!(matches!(
            failure(
                SignInError::RequestDelay { retry_after: 18 },
                FormKind::Code
            ),
            Failure::Again {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: Message::Wait(18)
            }
        ));
        assert!(matches!(
            failure(
                SignInError::InvalidPassword(PasswordError::TooShort { min: 12 }),
                FormKind::NewPassword
            ),
            Failure::Again {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                ..
            }
        ));
        assert!(matches!(
            failure(
                SignInError::InvalidPassword(PasswordError::NoConcurrency),
                FormKind::NewPassword
            ),
            Failure::Internal(_)
        ));
    }

    #[test]
    fn messages_read_as_sentences() {
        assert_eq!(
            Message::Wait(18).to_string(),
            "You can request a new code in 18 seconds."
        );
        assert_eq!(
            Message::Wait(1).to_string(),
            "You can request a new code in 1 second."
        );
        assert!(Message::EmailMissing
            .to_string()
            .ends_with("contact an administrator."));
        assert_eq!(Message::CodeNotCorrect.tone(), "error");
        assert_eq!(Message::Wait(3).role(), "status");
    }
}
