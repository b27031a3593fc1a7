//! The JSON sign-in API of SPEC section 9 (`/api/v1/signin...`, `/api/v1/me`).
//!
//! Errors are `{"code": "...", "message": "..."}` with a fitting status, from one
//! exhaustive mapping ([`ApiError`]); a sign-in failure of any kind is
//! `401 {"code":"invalid_credentials"}`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{request_id, retry_after, AppState, ClientIp};
use crate::domain::{OtpMethod, PromptMode};
use crate::service::signin::{OtpKind, SignInError, SignInStatus};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/signin", post(signin))
        .route("/api/v1/signin/otp", post(otp))
        .route("/api/v1/signin/otp/resend", post(resend))
        .route("/api/v1/signin/enroll", post(enroll))
        .route("/api/v1/signin/enroll/confirm", post(enroll_confirm))
        .route("/api/v1/signin/enroll/skip", post(enroll_skip))
        .route("/api/v1/signin/password", post(change_password))
        .route("/api/v1/me", get(me))
        .route("/api/v1/signout", post(signout))
}

/// Every error the JSON API answers with.
#[derive(Debug)]
pub enum ApiError {
    SignIn(SignInError),
    /// The body is not the JSON this endpoint takes.
    BadBody {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// A field has a value outside its set.
    InvalidField {
        field: &'static str,
        message: &'static str,
    },
    /// No valid session or token.
    Unauthenticated,
}

impl From<SignInError> for ApiError {
    fn from(error: SignInError) -> Self {
        Self::SignIn(error)
    }
}

fn body(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "code": code, "message": message.into() })),
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::SignIn(error) => {
                let message = error.to_string();
                match error {
                    SignInError::InvalidCredentials | SignInError::WrongSetupCode => {
                        body(StatusCode::UNAUTHORIZED, "invalid_credentials", SignInError::InvalidCredentials.to_string())
                    }
                    SignInError::TransactionExpired => body(StatusCode::UNAUTHORIZED, "transaction_expired", message),
                    SignInError::RequestDelay { retry_after: seconds } => (
                        StatusCode::TOO_MANY_REQUESTS,
                        [retry_after(seconds)],
                        Json(json!({ "code": "otp_request_delay", "message": message, "retry_after": seconds })),
                    )
                        .into_response(),
                    SignInError::EmailMissing => body(StatusCode::FORBIDDEN, "email_missing", message),
                    SignInError::EnrollmentRequired => body(StatusCode::FORBIDDEN, "enrollment_required", message),
                    SignInError::WrongStep => body(StatusCode::CONFLICT, "wrong_step", message),
                    SignInError::MethodNotAllowed => body(StatusCode::UNPROCESSABLE_ENTITY, "method_not_allowed", message),
                    SignInError::InvalidPassword(_) => body(StatusCode::UNPROCESSABLE_ENTITY, "invalid_password", message),
                    SignInError::Internal(source) => {
                        let id = request_id();
                        tracing::error!(request_id = %id, error = %source, "internal error");
                        (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            Json(json!({ "code": "internal", "message": "internal error", "request_id": id })),
                        )
                            .into_response()
                    }
                }
            }
            Self::BadBody {
                status,
                code,
                message,
            } => body(status, code, message),
            Self::InvalidField { field, message } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "code": "invalid_field", "field": field, "message": message })),
            )
                .into_response(),
            Self::Unauthenticated => {
                body(StatusCode::UNAUTHORIZED, "unauthenticated", "sign in first")
            }
        }
    }
}

/// `Json<T>` whose rejections are our JSON errors, not axum's plain text.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let (status, code, message) = match &rejection {
        JsonRejection::MissingJsonContentType(_) => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json".to_owned(),
        ),
        JsonRejection::JsonSyntaxError(_) => (
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "the body is not valid JSON".to_owned(),
        ),
        JsonRejection::JsonDataError(error) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            // serde's message names the field and the expected type, never a value.
            error.body_text(),
        ),
        JsonRejection::BytesRejection(_) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body is too large or could not be read".to_owned(),
        ),
        _ => (
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the request could not be read".to_owned(),
        ),
    };
    ApiError::BadBody {
        status,
        code,
        message,
    }
}

/// The JSON of a sign-in status (SPEC section 9).
fn status_json(status: SignInStatus) -> Value {
    match status {
        SignInStatus::SignedIn { session, .. } => {
            json!({ "status": "signed_in", "session": session.as_str() })
        }
        SignInStatus::OtpRequired {
            kind,
            transaction,
            email,
        } => {
            let mut value = json!({
                "status": "otp_required",
                "method": match kind { OtpKind::Device(_) => "device", OtpKind::Email => "email" },
                "transaction": transaction.as_str(),
            });
            if let OtpKind::Device(method) = kind {
                value["device_method"] = json!(method.as_str());
            }
            if let Some(notice) = email {
                value["sent_to"] = json!(notice.masked_to);
                if let Some(seconds) = notice.resend_after {
                    value["resend_after"] = json!(seconds);
                }
            }
            value
        }
        SignInStatus::Enroll {
            required,
            methods,
            transaction,
        } => json!({
            "status": "enroll",
            "required": required,
            "methods": methods.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
            "transaction": transaction.as_str(),
        }),
        SignInStatus::ChangePassword { transaction } => json!({
            "status": "password_change_required",
            "transaction": transaction.as_str(),
        }),
    }
}

#[derive(Deserialize)]
struct SignInBody {
    username: String,
    password: String,
}

async fn signin(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<SignInBody>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(status_json(
        state
            .signin
            .password(&body.username, &body.password, ip)
            .await?,
    )))
}

#[derive(Deserialize)]
struct CodeBody {
    transaction: String,
    code: String,
}

async fn otp(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(status_json(
        state.signin.otp(&body.transaction, &body.code).await?,
    )))
}

#[derive(Deserialize)]
struct TransactionBody {
    transaction: String,
}

async fn resend(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TransactionBody>,
) -> Result<Response, ApiError> {
    let notice = state.signin.resend(&body.transaction).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "status": "sent", "sent_to": notice.masked_to })),
    )
        .into_response())
}

#[derive(Deserialize)]
struct EnrollBody {
    transaction: String,
    method: String,
    prompt_mode: String,
}

async fn enroll(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<EnrollBody>,
) -> Result<Json<Value>, ApiError> {
    let method = OtpMethod::parse(&body.method).ok_or(ApiError::InvalidField {
        field: "method",
        message: "method must be \"totp\" or \"hotp\"",
    })?;
    let prompt_mode = PromptMode::parse(&body.prompt_mode).ok_or(ApiError::InvalidField {
        field: "prompt_mode",
        message: "prompt_mode must be \"every_login\" or \"when_appropriate\"",
    })?;
    let setup = state
        .signin
        .enroll(&body.transaction, method, prompt_mode)
        .await?;
    Ok(Json(
        json!({ "otpauth_uri": setup.otpauth_uri, "secret": setup.secret_base32 }),
    ))
}

async fn enroll_confirm(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(status_json(
        state
            .signin
            .enroll_confirm(&body.transaction, &body.code)
            .await?,
    )))
}

async fn enroll_skip(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TransactionBody>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(status_json(
        state.signin.enroll_skip(&body.transaction).await?,
    )))
}

#[derive(Deserialize)]
struct PasswordBody {
    transaction: String,
    new_password: String,
}

async fn change_password(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PasswordBody>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(status_json(
        state
            .signin
            .change_password(&body.transaction, &body.new_password)
            .await?,
    )))
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

async fn me(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let token = bearer(&headers).ok_or(ApiError::Unauthenticated)?;
    let (user, role) = state
        .signin
        .session_user(token)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let enabled = state
        .signin
        .context()
        .store
        .confirmed_device(user.id)
        .await
        .map_err(|error| ApiError::SignIn(error.into()))?
        .is_some();
    Ok(Json(json!({
        "username": user.username.as_str(),
        "display_name": user.display_name.as_str(),
        "role": role.name.as_str(),
        "two_step": if enabled { "enabled" } else { "not_enabled" },
    })))
}

async fn signout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let token = bearer(&headers).ok_or(ApiError::Unauthenticated)?;
    state.signin.sign_out(token).await?;
    Ok(StatusCode::NO_CONTENT)
}
