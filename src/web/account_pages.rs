//! The account page of a signed-in user (SPEC section 10 "/account"), under the session
//! cookie: 2-step status and device, "Set up now" / "Replace device" (a current code
//! first), the set-up page (QR code, otpauth link, manual key: `device_key.html`, shared
//! with the sign-in enrollment), recovery codes, sessions with "Sign out other sessions",
//! and "Change password". Each form is one call of
//! [`Account`](crate::service::account::Account), carries the CSRF token (checked with
//! [`csrf_ok`]) and reports its errors on the page, keeping what was typed except
//! passwords and codes. Not signed in: a redirect to `/signin`.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::html::{
    csrf_ok, form_expired, inline_svg, internal_error, key_groups, key_setup_message, page,
    see_other, Layout, PageForm, RecoveryCodesView,
};
use super::{cookies, request_id, AppState};
use crate::clock::Timestamp;
use crate::domain::{OtpMethod, PromptMode, RecoveryCode};
use crate::service::account::{AccountError, AccountOverview};
use crate::service::devices::SetupInfo;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/account", get(account_page))
        .route("/account/device", post(device_submit))
        .route(
            "/account/device/confirm",
            get(setup_page).post(setup_submit),
        )
        .route("/account/recovery-codes", post(recovery_submit))
        .route("/account/sessions/end", post(sessions_submit))
        .route("/account/password", post(password_submit))
        .route("/account/key", post(keys::begin_submit))
        .route("/account/key/confirm", post(keys::confirm_submit))
        .route("/account/keys/{id}/rename", post(keys::rename_submit))
        .route("/account/keys/{id}/remove", post(keys::remove_submit))
}

mod keys;

// ---------------------------------------------------------------------------------------
// Views
// ---------------------------------------------------------------------------------------

/// One option of a radio group.
pub struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    pub checked: bool,
}

pub struct DeviceRow {
    pub method: &'static str,
    pub prompt_mode: &'static str,
    pub created_at: String,
    pub last_used_at: String,
}

/// A security key or passkey (SPEC 14) on the account page.
pub struct KeyRow {
    pub id: i64,
    pub name: String,
    pub prompt_mode: &'static str,
    pub passkey: bool,
    pub created_at: String,
    pub last_used_at: String,
}

pub struct SessionRow {
    pub created_at: String,
    pub last_seen_at: String,
    pub ip: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountView {
    pub layout: Layout,
    pub done: Option<&'static str>,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub role: String,
    pub devices: Vec<DeviceRow>,
    /// An app device or a key is set up.
    pub two_step_enabled: bool,
    pub keys: Vec<KeyRow>,
    pub may_add_key: bool,
    /// The 2-step verification forms need fresh proof (an app code or a recovery code):
    /// not without a device or key, nor just after a temporary access code (SPEC 15).
    pub key_proof: bool,
    /// This session signed in with a temporary access code moments ago (SPEC 15).
    pub proof_given: bool,
    pub key_error: Option<String>,
    pub methods: Vec<Choice>,
    pub prompt_modes: Vec<Choice>,
    pub device_error: Option<String>,
    pub recovery_codes_left: u32,
    pub recovery_error: Option<String>,
    pub sessions: Vec<SessionRow>,
    pub password_error: Option<String>,
    /// A directory user's password is changed in the directory (SPEC 12): no form.
    pub directory_user: bool,
}

#[derive(Template)]
#[template(path = "account_setup.html")]
pub struct AccountSetupView {
    pub layout: Layout,
    pub hotp: bool,
    /// Our own SVG (inserted unescaped); empty if the QR code could not be made.
    pub qr_svg: String,
    pub key_groups: Vec<String>,
    pub otpauth_uri: String,
    pub issuer: String,
    pub account: String,
    pub error: Option<String>,
}

fn when(at: Option<Timestamp>) -> String {
    at.map_or_else(|| "never".to_owned(), Timestamp::iso_utc)
}

/// Which form failed, and how (what to show beside it).
enum FormError {
    Device(String),
    Key(String),
    Recovery(String),
    Password(String),
}

/// The form's choices as typed (kept after an error).
#[derive(Default)]
struct Typed {
    method: Option<OtpMethod>,
    prompt_mode: Option<PromptMode>,
}

fn account_view(
    layout: Layout,
    overview: AccountOverview,
    done: Option<&'static str>,
    error: Option<FormError>,
    typed: &Typed,
) -> AccountView {
    let first = overview.methods.first().copied();
    let method = typed.method.or(first);
    let methods = overview
        .methods
        .iter()
        .map(|m| Choice {
            value: m.as_str(),
            label: m.label(),
            checked: Some(*m) == method,
        })
        .collect();
    let mode = typed.prompt_mode.unwrap_or(PromptMode::EveryLogin);
    let prompt_modes = [PromptMode::EveryLogin, PromptMode::WhenAppropriate]
        .into_iter()
        .map(|m| Choice {
            value: m.as_str(),
            label: m.label(),
            checked: m == mode,
        })
        .collect();
    let (mut device_error, mut key_error, mut recovery_error, mut password_error) =
        (None, None, None, None);
    match error {
        Some(FormError::Device(text)) => device_error = Some(text),
        Some(FormError::Key(text)) => key_error = Some(text),
        Some(FormError::Recovery(text)) => recovery_error = Some(text),
        Some(FormError::Password(text)) => password_error = Some(text),
        None => {}
    }
    let two_step_enabled = overview.two_step == crate::service::account::TwoStep::Enabled;
    let key_proof = two_step_enabled && !overview.proof_given;
    AccountView {
        proof_given: overview.proof_given,
        layout,
        done,
        username: overview.username,
        display_name: overview.display_name,
        email: overview.email,
        role: overview.role,
        devices: overview
            .devices
            .iter()
            .map(|d| DeviceRow {
                method: d.method.label(),
                prompt_mode: d.prompt_mode.label(),
                created_at: when(d.created_at),
                last_used_at: when(d.last_used_at),
            })
            .collect(),
        two_step_enabled,
        keys: overview
            .security_keys
            .iter()
            .map(|key| KeyRow {
                id: key.id.0,
                name: key.name.as_str().to_owned(),
                prompt_mode: key.prompt_mode.label(),
                passkey: key.discoverable,
                created_at: key.created_at.iso_utc(),
                last_used_at: when(key.last_used_at),
            })
            .collect(),
        may_add_key: overview.may_add_key,
        key_proof,
        key_error,
        methods,
        prompt_modes,
        device_error,
        recovery_codes_left: overview.recovery_codes_left,
        recovery_error,
        sessions: overview
            .sessions
            .into_iter()
            .map(|s| SessionRow {
                created_at: s.created_at.iso_utc(),
                last_seen_at: s.last_seen_at.iso_utc(),
                ip: s.ip,
                current: s.current,
            })
            .collect(),
        password_error,
        directory_user: overview.source == crate::domain::UserSource::Directory,
    }
}

fn setup_view(layout: Layout, setup: SetupInfo, error: Option<String>) -> AccountSetupView {
    AccountSetupView {
        layout,
        hotp: setup.method == OtpMethod::Hotp,
        qr_svg: inline_svg(&setup.qr_svg),
        key_groups: key_groups(&setup.secret_base32),
        otpauth_uri: setup.otpauth_uri,
        issuer: setup.issuer,
        account: setup.account,
        error,
    }
}

// ---------------------------------------------------------------------------------------
// Failures: the one mapping of `AccountError` on the pages
// ---------------------------------------------------------------------------------------

/// What a failed call becomes: the sign-in page, an error page, or a message on the form.
enum Failure {
    SignIn,
    Internal,
    Message(StatusCode, String),
}

fn failure(error: AccountError) -> Failure {
    match error {
        AccountError::Unauthenticated => Failure::SignIn,
        AccountError::InvalidCredentials => Failure::Message(
            StatusCode::UNAUTHORIZED,
            "That is not correct. Check it and try again.".to_owned(),
        ),
        AccountError::CodeRequired => Failure::Message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter a code from your current authenticator app first.".to_owned(),
        ),
        AccountError::MethodNotAllowed => Failure::Message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "This type of code is not offered; choose another.".to_owned(),
        ),
        AccountError::NoPendingDevice => Failure::Message(
            StatusCode::CONFLICT,
            "The set-up was not started from this browser, was replaced or has expired; start again.".to_owned(),
        ),
        AccountError::WrongSetupCode => Failure::Message(
            StatusCode::UNAUTHORIZED,
            "The code does not match. Enter the code your app shows now.".to_owned(),
        ),
        AccountError::InvalidPassword(reason) => Failure::Message(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("The new password was not accepted: {reason}."),
        ),
        AccountError::DirectoryPassword => Failure::Message(
            StatusCode::CONFLICT,
            "Your password is your directory (Windows) password: change it there.".to_owned(),
        ),
        AccountError::NoDevice => Failure::Message(
            StatusCode::CONFLICT,
            "Set up 2-step verification first: recovery codes stand in for its device.".to_owned(),
        ),
        AccountError::SecurityKey(error) => match key_setup_message(&error) {
            Some(message) => Failure::Message(StatusCode::UNPROCESSABLE_ENTITY, message.to_owned()),
            None => {
                tracing::error!(%error, "account page failed");
                Failure::Internal
            }
        },
        AccountError::NoSuchKey => Failure::Message(
            StatusCode::NOT_FOUND,
            "That security key is not on your account (any more).".to_owned(),
        ),
        AccountError::InvalidKeyName(problem) => Failure::Message(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("The key's name was not accepted: {problem}."),
        ),
        AccountError::Internal(source) => {
            tracing::error!(error = %source, "account page failed");
            Failure::Internal
        }
    }
}

/// A form's POST from a signed-in browser: its CSRF token checked (else the "form
/// expired" page), then its session token (else the sign-in page).
fn poster(
    state: &AppState,
    headers: &HeaderMap,
    csrf: Option<&str>,
) -> Result<String, Box<Response>> {
    if !csrf_ok(state, headers, csrf) {
        return Err(Box::new(form_expired(state, headers)));
    }
    session(headers).ok_or_else(|| Box::new(see_other("/signin")))
}

fn session(headers: &HeaderMap) -> Option<String> {
    cookies::get(headers, cookies::SESSION).filter(|token| !token.is_empty())
}

fn to_signin(state: &AppState) -> Response {
    super::html::with_cookie(see_other("/signin"), cookies::clear_session(state))
}

/// The account page again, with `error` beside its form (or the sign-in page, or an
/// error page).
async fn show_account(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    done: Option<&'static str>,
    error: Option<(StatusCode, FormError)>,
    typed: &Typed,
) -> Response {
    let overview = match state.account.overview(token).await {
        Ok(overview) => overview,
        Err(error) => return settle(state, headers, failure(error)),
    };
    let (status, error) = match error {
        Some((status, error)) => (status, Some(error)),
        None => (StatusCode::OK, None),
    };
    let view = account_view(Layout::new(state, headers), overview, done, error, typed);
    page(state, status, &view.layout, &view)
}

/// A failure that is not shown beside a form.
fn settle(state: &AppState, headers: &HeaderMap, failure: Failure) -> Response {
    match failure {
        Failure::SignIn => to_signin(state),
        Failure::Internal | Failure::Message(..) => internal_error(state, headers, request_id()),
    }
}

// ---------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct AccountQuery {
    m: Option<String>,
}

/// `GET /account`.
async fn account_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<AccountQuery>, QueryRejection>,
) -> Response {
    let Some(token) = session(&headers) else {
        return see_other("/signin");
    };
    let query = query.ok().map(|Query(q)| q);
    let done = match query.as_ref().and_then(|q| q.m.as_deref()) {
        Some("device_added") => Some("Your new device is set up. Use it from now on."),
        Some("password_changed") => Some("Your password has been changed."),
        Some("sessions_ended") => Some("Your other sessions have been signed out."),
        Some("key_added") => Some("Your security key is set up. Use it from now on."),
        Some("key_renamed") => Some("The security key was renamed."),
        Some("key_removed") => Some("The security key was removed."),
        _ => None,
    };
    show_account(&state, &headers, &token, done, None, &Typed::default()).await
}

#[derive(Deserialize)]
struct DeviceForm {
    csrf: Option<String>,
    #[serde(default)]
    method: String,
    #[serde(default)]
    prompt_mode: String,
    code: Option<String>,
}

/// `POST /account/device`: "Set up now" / "Replace device".
async fn device_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(form): PageForm<DeviceForm>,
) -> Response {
    let token = match poster(&state, &headers, form.csrf.as_deref()) {
        Ok(token) => token,
        Err(refused) => return *refused,
    };
    let typed = Typed {
        method: OtpMethod::parse(&form.method),
        prompt_mode: PromptMode::parse(&form.prompt_mode),
    };
    let (Some(method), Some(prompt_mode)) = (typed.method, typed.prompt_mode) else {
        let error = FormError::Device("Choose the type of code and when to ask for it.".into());
        return show_account(
            &state,
            &headers,
            &token,
            None,
            Some((StatusCode::UNPROCESSABLE_ENTITY, error)),
            &typed,
        )
        .await;
    };
    match state
        .account
        .begin_device(&token, method, prompt_mode, form.code.as_deref())
        .await
    {
        Ok(_) => see_other("/account/device/confirm"),
        Err(error) => match failure(error) {
            Failure::Message(status, text) => {
                show_account(
                    &state,
                    &headers,
                    &token,
                    None,
                    Some((status, FormError::Device(text))),
                    &typed,
                )
                .await
            }
            other => settle(&state, &headers, other),
        },
    }
}

/// `GET /account/device/confirm`: the QR code, the manual key and the code field.
async fn setup_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = session(&headers) else {
        return see_other("/signin");
    };
    show_setup(&state, &headers, &token, StatusCode::OK, None).await
}

async fn show_setup(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    match state.account.pending_setup(token).await {
        Ok(Some(setup)) => {
            let view = setup_view(Layout::new(state, headers), setup, error);
            page(state, status, &view.layout, &view)
        }
        Ok(None) => see_other("/account"),
        Err(error) => settle(state, headers, failure(error)),
    }
}

#[derive(Deserialize)]
struct CodeForm {
    csrf: Option<String>,
    code: Option<String>,
}

/// `POST /account/device/confirm`: Complete Setup.
async fn setup_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(form): PageForm<CodeForm>,
) -> Response {
    let token = match poster(&state, &headers, form.csrf.as_deref()) {
        Ok(token) => token,
        Err(refused) => return *refused,
    };
    let code = form.code.unwrap_or_default();
    match state.account.confirm_device(&token, &code).await {
        Ok(codes) if codes.is_empty() => see_other("/account?m=device_added"),
        // The user had no recovery codes left: the first set, shown once.
        Ok(codes) => show_codes(&state, &headers, &codes),
        Err(error) => match failure(error) {
            Failure::Message(status, text) => {
                show_setup(&state, &headers, &token, status, Some(text)).await
            }
            other => settle(&state, &headers, other),
        },
    }
}

/// `POST /account/recovery-codes`: "Generate new codes".
async fn recovery_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(form): PageForm<CodeForm>,
) -> Response {
    let token = match poster(&state, &headers, form.csrf.as_deref()) {
        Ok(token) => token,
        Err(refused) => return *refused,
    };
    match state
        .account
        .regenerate_recovery_codes(&token, form.code.as_deref())
        .await
    {
        Ok(codes) => show_codes(&state, &headers, &codes),
        Err(error) => match failure(error) {
            Failure::Message(status, text) => {
                show_account(
                    &state,
                    &headers,
                    &token,
                    None,
                    Some((status, FormError::Recovery(text))),
                    &Typed::default(),
                )
                .await
            }
            other => settle(&state, &headers, other),
        },
    }
}

/// The "Save your recovery codes" page of the sign-in flow, with a way back to the
/// account page.
fn show_codes(state: &AppState, headers: &HeaderMap, codes: &[RecoveryCode]) -> Response {
    let view = RecoveryCodesView::new(Layout::new(state, headers), codes, "/account");
    page(state, StatusCode::OK, &view.layout, &view)
}

#[derive(Deserialize)]
struct CsrfOnly {
    csrf: Option<String>,
}

/// `POST /account/sessions/end`: "Sign out other sessions".
async fn sessions_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(form): PageForm<CsrfOnly>,
) -> Response {
    let token = match poster(&state, &headers, form.csrf.as_deref()) {
        Ok(token) => token,
        Err(refused) => return *refused,
    };
    match state.account.sign_out_other_sessions(&token).await {
        Ok(_) => see_other("/account?m=sessions_ended"),
        Err(error) => settle(&state, &headers, failure(error)),
    }
}

#[derive(Deserialize)]
struct PasswordForm {
    csrf: Option<String>,
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

/// `POST /account/password`: "Change password".
async fn password_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(form): PageForm<PasswordForm>,
) -> Response {
    let token = match poster(&state, &headers, form.csrf.as_deref()) {
        Ok(token) => token,
        Err(refused) => return *refused,
    };
    let refused = |status, text: &str| (status, FormError::Password(text.to_owned()));
    if form.new_password != form.confirm_password {
        let error = refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The two new passwords are not the same. Type them again.",
        );
        return show_account(
            &state,
            &headers,
            &token,
            None,
            Some(error),
            &Typed::default(),
        )
        .await;
    }
    match state
        .account
        .change_password(&token, &form.current_password, &form.new_password)
        .await
    {
        Ok(()) => see_other("/account?m=password_changed"),
        Err(error) => match failure(error) {
            Failure::Message(status, text) => {
                show_account(
                    &state,
                    &headers,
                    &token,
                    None,
                    Some(refused(status, &text)),
                    &Typed::default(),
                )
                .await
            }
            other => settle(&state, &headers, other),
        },
    }
}
