//! The JSON sign-in API of SPEC section 9 (`/api/v1/signin...`, `/api/v1/me`).
//!
//! Errors are `{"code": "...", "message": "..."}` with a fitting status, from the one
//! exhaustive mapping of [`ApiError`] ([`super::json_error`], shared with every JSON
//! surface); a sign-in failure of any kind is `401 {"code":"invalid_credentials"}`.
//! Answers are typed structs so that the OpenAPI document ([`super::openapi`]) is
//! generated from what is actually sent: each handler carries its `#[utoipa::path]`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::json_error::{ApiError, ApiJson, ErrorBody};
use super::{AppState, ClientIp};
use crate::domain::{OtpMethod, PromptMode};
use crate::service::devices::SetupInfo;
use crate::service::signin::{OtpKind, SignInStatus};

pub mod keys;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/signin", post(signin))
        .route("/api/v1/signin/otp", post(otp))
        .route("/api/v1/signin/otp/resend", post(resend))
        .route("/api/v1/signin/enroll", post(enroll))
        .route("/api/v1/signin/enroll/confirm", post(enroll_confirm))
        .route("/api/v1/signin/enroll/skip", post(enroll_skip))
        .route("/api/v1/signin/password", post(change_password))
        .route("/api/v1/signin/webauthn/options", post(keys::options))
        .route("/api/v1/signin/webauthn", post(keys::assertion))
        .route(
            "/api/v1/signin/passkey/options",
            post(keys::passkey_options),
        )
        .route("/api/v1/signin/passkey", post(keys::passkey))
        .route("/api/v1/me", get(me))
        .route("/api/v1/signout", post(signout))
}

/// A temporary access code that just stood in for the second factor (SPEC 15).
#[derive(Debug, Serialize, ToSchema)]
pub struct TemporaryAccessLeft {
    /// Sign-ins it still stands in for.
    pub uses_left: u32,
    /// When it stops working (RFC 3339, UTC).
    pub expires_at: String,
    /// Where the user sets up a new device (the account page; within 15 minutes of this
    /// sign-in without another code).
    pub set_up_device: String,
}

/// Where a sign-in stands (SPEC section 9), tagged by `status`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SignInAnswer {
    /// Done: `session` is the bearer token of the new session.
    SignedIn {
        session: String,
        /// After a recovery code: how many are left (SPEC 10); absent otherwise.
        #[serde(skip_serializing_if = "Option::is_none")]
        recovery_codes_left: Option<u32>,
        /// When enrollment completed at this sign-in: the first set of recovery codes
        /// (`xxxxx-xxxxx`), shown this once; absent otherwise.
        #[serde(skip_serializing_if = "Option::is_none")]
        recovery_codes: Option<Vec<String>>,
        /// After a temporary access code (SPEC 15): its uses and time left, and where to
        /// set up a new device; absent otherwise.
        #[serde(skip_serializing_if = "Option::is_none")]
        temporary_access: Option<TemporaryAccessLeft>,
    },
    /// Enter a code: from the device, or the one just emailed.
    OtpRequired {
        method: OtpStep,
        /// For `device`: the device's method.
        #[serde(skip_serializing_if = "Option::is_none")]
        device_method: Option<MethodName>,
        transaction: String,
        /// For `email`: where the code went, masked (`j***@example.org`).
        #[serde(skip_serializing_if = "Option::is_none")]
        sent_to: Option<String>,
        /// For `email`: no code was sent yet (OTP Request Delay Seconds); a new one can
        /// be requested in this many seconds.
        #[serde(skip_serializing_if = "Option::is_none")]
        resend_after: Option<i64>,
        /// For `device`: the user's security keys answer this step too
        /// (`POST /api/v1/signin/webauthn/options`); absent when they have none.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        security_key: bool,
    },
    /// Set up a device with one of `methods`; `required: false` allows skipping.
    Enroll {
        required: bool,
        methods: Vec<MethodName>,
        transaction: String,
    },
    /// The password must be changed first (`POST /api/v1/signin/password`).
    PasswordChangeRequired { transaction: String },
}

/// Which code an `otp_required` step asks for.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OtpStep {
    Device,
    Email,
}

/// A device method on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MethodName {
    Totp,
    Hotp,
    /// A security key or passkey (SPEC 14): only in `enroll`'s `methods`.
    Webauthn,
}

impl From<OtpMethod> for MethodName {
    fn from(method: OtpMethod) -> Self {
        match method {
            OtpMethod::Totp => Self::Totp,
            OtpMethod::Hotp => Self::Hotp,
        }
    }
}

/// A device prompt mode on the wire (SPEC section 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PromptModeName {
    /// "Every Login (Maximum Security)".
    EveryLogin,
    /// "When the system deems appropriate (More Security)".
    WhenAppropriate,
}

impl From<PromptMode> for PromptModeName {
    fn from(mode: PromptMode) -> Self {
        match mode {
            PromptMode::EveryLogin => Self::EveryLogin,
            PromptMode::WhenAppropriate => Self::WhenAppropriate,
        }
    }
}

impl From<SignInStatus> for SignInAnswer {
    fn from(status: SignInStatus) -> Self {
        match status {
            SignInStatus::SignedIn {
                session,
                recovery_codes_left,
                recovery_codes,
                temporary_access,
                ..
            } => Self::SignedIn {
                session: session.as_str().to_owned(),
                recovery_codes_left,
                recovery_codes: (!recovery_codes.is_empty())
                    .then(|| recovery_codes.iter().map(|code| code.reveal()).collect()),
                temporary_access: temporary_access.map(|access| TemporaryAccessLeft {
                    uses_left: access.uses_left,
                    expires_at: access.expires_at.iso_utc(),
                    set_up_device: "/account".to_owned(),
                }),
            },
            SignInStatus::OtpRequired {
                kind,
                transaction,
                email,
                security_keys,
            } => {
                let (method, device_method) = match kind {
                    OtpKind::Device(method) => (OtpStep::Device, Some(method.into())),
                    OtpKind::SecurityKey => (OtpStep::Device, None),
                    OtpKind::Email => (OtpStep::Email, None),
                };
                let (sent_to, resend_after) = match email {
                    Some(notice) => (Some(notice.masked_to), notice.resend_after),
                    None => (None, None),
                };
                Self::OtpRequired {
                    method,
                    device_method,
                    transaction: transaction.as_str().to_owned(),
                    sent_to,
                    resend_after,
                    security_key: security_keys,
                }
            }
            SignInStatus::Enroll {
                required,
                methods,
                security_keys,
                transaction,
            } => Self::Enroll {
                required,
                methods: methods
                    .into_iter()
                    .map(MethodName::from)
                    .chain(security_keys.then_some(MethodName::Webauthn))
                    .collect(),
                transaction: transaction.as_str().to_owned(),
            },
            SignInStatus::ChangePassword { transaction } => Self::PasswordChangeRequired {
                transaction: transaction.as_str().to_owned(),
            },
        }
    }
}

/// A device being set up: show `otpauth_uri` as a QR code, or let the user type `secret`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceSetup {
    /// The `otpauth://` key URI.
    pub otpauth_uri: String,
    /// The secret in base32, for typing into an app.
    pub secret: String,
}

impl From<SetupInfo> for DeviceSetup {
    fn from(setup: SetupInfo) -> Self {
        Self {
            otpauth_uri: setup.otpauth_uri,
            secret: setup.secret_base32,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub(super) struct SignInBody {
    username: String,
    #[schema(format = Password)]
    password: String,
}

/// Sign in with username and password; the answer says what comes next.
#[utoipa::path(
    post,
    path = "/api/v1/signin",
    tag = "sign-in",
    request_body = SignInBody,
    responses(
        (status = 200, description = "The next step, or the session", body = SignInAnswer),
        (status = 401, description = "`invalid_credentials`, whatever failed", body = ErrorBody),
        (status = 403, description = "`email_missing`: an emailed OTP is needed but the user has no address", body = ErrorBody),
        (status = 422, description = "`invalid_input`: the body is not this JSON", body = ErrorBody),
    )
)]
pub(super) async fn signin(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<SignInBody>,
) -> Result<Json<SignInAnswer>, ApiError> {
    Ok(Json(
        state
            .signin
            .password(&body.username, &body.password, ip)
            .await?
            .into(),
    ))
}

#[derive(Deserialize, ToSchema)]
pub(super) struct CodeBody {
    transaction: String,
    code: String,
}

/// Enter the code of an `otp_required` step.
#[utoipa::path(
    post,
    path = "/api/v1/signin/otp",
    tag = "sign-in",
    request_body = CodeBody,
    responses(
        (status = 200, description = "The next step, or the session", body = SignInAnswer),
        (status = 401, description = "`invalid_credentials` or `transaction_expired`", body = ErrorBody),
        (status = 409, description = "`wrong_step`: this transaction is not at an OTP step", body = ErrorBody),
    )
)]
pub(super) async fn otp(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<Json<SignInAnswer>, ApiError> {
    Ok(Json(
        state
            .signin
            .otp(&body.transaction, &body.code)
            .await?
            .into(),
    ))
}

#[derive(Deserialize, ToSchema)]
pub(in crate::web) struct TransactionBody {
    transaction: String,
}

/// A new code was emailed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Resent {
    /// Always `sent`.
    pub status: String,
    /// The masked address.
    pub sent_to: String,
}

/// Email a new code (voids the older ones), once OTP Request Delay Seconds have passed.
#[utoipa::path(
    post,
    path = "/api/v1/signin/otp/resend",
    tag = "sign-in",
    request_body = TransactionBody,
    responses(
        (status = 202, description = "Sent", body = Resent),
        (status = 401, description = "`transaction_expired`", body = ErrorBody),
        (status = 429, description = "`otp_request_delay` with `retry_after` (also a `Retry-After` header)", body = ErrorBody),
    )
)]
pub(super) async fn resend(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TransactionBody>,
) -> Result<Response, ApiError> {
    let notice = state.signin.resend(&body.transaction).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Resent {
            status: "sent".to_owned(),
            sent_to: notice.masked_to,
        }),
    )
        .into_response())
}

#[derive(Deserialize, ToSchema)]
pub(super) struct EnrollBody {
    transaction: String,
    #[schema(value_type = MethodName)]
    method: String,
    #[schema(value_type = PromptModeName)]
    prompt_mode: String,
}

/// Parses a device method; the error names the field.
pub(super) fn parse_method(text: &str) -> Result<OtpMethod, ApiError> {
    OtpMethod::parse(text).ok_or(ApiError::InvalidField {
        field: "method",
        message: "method must be \"totp\" or \"hotp\"",
    })
}

/// Parses a prompt mode; the error names the field.
pub(super) fn parse_prompt_mode(text: &str) -> Result<PromptMode, ApiError> {
    PromptMode::parse(text).ok_or(ApiError::InvalidField {
        field: "prompt_mode",
        message: "prompt_mode must be \"every_login\" or \"when_appropriate\"",
    })
}

/// What `enroll` answers: an app's secret, or a security key's registration options.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum EnrollAnswer {
    App(DeviceSetup),
    SecurityKey(keys::KeyOptions),
}

/// Start setting up a device during sign-in (an `enroll` step). Method `webauthn`
/// answers the options for `navigator.credentials.create()`.
#[utoipa::path(
    post,
    path = "/api/v1/signin/enroll",
    tag = "sign-in",
    request_body = EnrollBody,
    responses(
        (status = 200, description = "An app: scan or type the secret, then confirm with a code. `webauthn`: `public_key` (PublicKeyCredentialCreationOptions, WebAuthn Level 3 JSON form), then confirm with the `credential`", body = EnrollAnswer),
        (status = 401, description = "`transaction_expired`", body = ErrorBody),
        (status = 409, description = "`security_keys_not_offered`, `too_many_keys`", body = ErrorBody),
        (status = 422, description = "`invalid_field` (`method`, `prompt_mode`) or `method_not_allowed` (system setting Use 2FA)", body = ErrorBody),
    )
)]
pub(super) async fn enroll(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<EnrollBody>,
) -> Result<Json<EnrollAnswer>, ApiError> {
    let prompt_mode = parse_prompt_mode(&body.prompt_mode)?;
    if body.method == "webauthn" {
        let options = state
            .signin
            .enroll_key(&body.transaction, prompt_mode)
            .await?;
        return Ok(Json(EnrollAnswer::SecurityKey(keys::KeyOptions {
            public_key: options,
        })));
    }
    let method = parse_method(&body.method)?;
    let setup = state
        .signin
        .enroll(&body.transaction, method, prompt_mode)
        .await?;
    Ok(Json(EnrollAnswer::App(setup.into())))
}

#[derive(Deserialize, ToSchema)]
pub(super) struct EnrollConfirmBody {
    transaction: String,
    /// An app's code.
    #[serde(default)]
    code: Option<String>,
    /// A security key's answer: the browser's `PublicKeyCredential.toJSON()`
    /// (RegistrationResponseJSON).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    credential: Option<serde_json::Value>,
    /// A name for the key ("Blue key"); "Security key N" without one.
    #[serde(default)]
    name: Option<String>,
}

/// Complete the set-up: with a code from the app, or with the security key's
/// `credential`.
#[utoipa::path(
    post,
    path = "/api/v1/signin/enroll/confirm",
    tag = "sign-in",
    request_body = EnrollConfirmBody,
    responses(
        (status = 200, description = "The next step, or the session", body = SignInAnswer),
        (status = 401, description = "`invalid_credentials` (wrong code) or `transaction_expired`", body = ErrorBody),
        (status = 409, description = "`no_pending_key`, `key_registered`, `too_many_keys`", body = ErrorBody),
        (status = 422, description = "`user_verification_required` (a key without PIN or fingerprint), `invalid_credential`, or neither `code` nor `credential`", body = ErrorBody),
    )
)]
pub(super) async fn enroll_confirm(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<EnrollConfirmBody>,
) -> Result<Json<SignInAnswer>, ApiError> {
    let status = match (&body.credential, &body.code) {
        (Some(credential), _) => {
            state
                .signin
                .enroll_key_confirm(
                    &body.transaction,
                    &credential.to_string(),
                    body.name.as_deref(),
                )
                .await?
        }
        (None, Some(code)) => state.signin.enroll_confirm(&body.transaction, code).await?,
        (None, None) => {
            return Err(ApiError::InvalidField {
                field: "code",
                message: "send the app's code, or a security key's credential",
            })
        }
    };
    Ok(Json(status.into()))
}

/// "Set up later", when the role encourages (does not force) 2FA.
#[utoipa::path(
    post,
    path = "/api/v1/signin/enroll/skip",
    tag = "sign-in",
    request_body = TransactionBody,
    responses(
        (status = 200, description = "The next step, or the session", body = SignInAnswer),
        (status = 401, description = "`transaction_expired`", body = ErrorBody),
        (status = 403, description = "`enrollment_required`: the role forces 2FA", body = ErrorBody),
    )
)]
pub(super) async fn enroll_skip(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TransactionBody>,
) -> Result<Json<SignInAnswer>, ApiError> {
    Ok(Json(
        state.signin.enroll_skip(&body.transaction).await?.into(),
    ))
}

#[derive(Deserialize, ToSchema)]
pub(super) struct PasswordBody {
    transaction: String,
    #[schema(format = Password)]
    new_password: String,
}

/// Choose a new password (a `password_change_required` step).
#[utoipa::path(
    post,
    path = "/api/v1/signin/password",
    tag = "sign-in",
    request_body = PasswordBody,
    responses(
        (status = 200, description = "The next step, or the session", body = SignInAnswer),
        (status = 401, description = "`transaction_expired`", body = ErrorBody),
        (status = 422, description = "`invalid_password`: too short, too long, control characters", body = ErrorBody),
    )
)]
pub(super) async fn change_password(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PasswordBody>,
) -> Result<Json<SignInAnswer>, ApiError> {
    Ok(Json(
        state
            .signin
            .change_password(&body.transaction, &body.new_password)
            .await?
            .into(),
    ))
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// 2 Step Verification of a user: a confirmed device, or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TwoStep {
    Enabled,
    NotEnabled,
}

impl TwoStep {
    pub fn from_enabled(enabled: bool) -> Self {
        if enabled {
            Self::Enabled
        } else {
            Self::NotEnabled
        }
    }
}

/// The signed-in user.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub username: String,
    pub display_name: String,
    /// The role's name.
    pub role: String,
    pub two_step: TwoStep,
}

/// The user of the session.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "sign-in",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = Me),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
    )
)]
pub(super) async fn me(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Me>, ApiError> {
    let token = bearer(&headers).ok_or(ApiError::Unauthenticated)?;
    let (user, role) = state
        .signin
        .session_user(token)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let enabled = state.signin.two_step_enabled(&user).await?;
    Ok(Json(Me {
        username: user.username.as_str().to_owned(),
        display_name: user.display_name.as_str().to_owned(),
        role: role.name.as_str().to_owned(),
        two_step: TwoStep::from_enabled(enabled),
    }))
}

/// End the session.
#[utoipa::path(
    post,
    path = "/api/v1/signout",
    tag = "sign-in",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
    )
)]
pub(super) async fn signout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let token = bearer(&headers).ok_or(ApiError::Unauthenticated)?;
    state.signin.sign_out(token).await?;
    Ok(StatusCode::NO_CONTENT)
}
