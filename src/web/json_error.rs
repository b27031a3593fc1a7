//! The JSON error type of every JSON surface (the sign-in API of [`super::signin_api`],
//! the administration API of [`super::admin_api`], [`super::verify`]'s native JSON and
//! [`super::authz`]): [`ApiError`] and its one exhaustive mapping to answers
//! `{"code": "...", "message": "..."}` ([`ErrorBody`]) with a fitting status (SPEC
//! section 9), and [`ApiJson`], the JSON body extractor whose rejections are such errors.
//! A sign-in failure of any kind is `401 {"code":"invalid_credentials"}`; an internal
//! error is a `500` whose detail goes to the log under a request id.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;

use super::{request_id, retry_after};
use crate::service::account::AccountError;
use crate::service::admin::AdminError;
use crate::service::signin::SignInError;
use crate::service::webauthn::KeyError;
use crate::store::Conflict;

/// Every error the JSON API answers with.
#[derive(Debug)]
pub enum ApiError {
    SignIn(SignInError),
    /// An account-page call failed ([`crate::service::account`]).
    Account(AccountError),
    /// An administration call failed ([`crate::service::admin`]).
    Admin(AdminError),
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
    /// A body names a field this endpoint does not know.
    UnknownField(String),
    /// No valid session or token.
    Unauthenticated,
}

impl From<SignInError> for ApiError {
    fn from(error: SignInError) -> Self {
        Self::SignIn(error)
    }
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        Self::Account(error)
    }
}

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> Self {
        Self::Admin(error)
    }
}

/// The body of every error answer. Only `code` and `message` are always present.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable code, e.g. `invalid_credentials`, `unauthenticated`, `forbidden`,
    /// `not_found`, `invalid_field`, `unknown_field`, `invalid_input`, `username_taken`,
    /// `role_name_taken`, `network_exists`, `role_in_use`, `method_not_allowed`, `code_required`,
    /// `no_pending_device`, `no_device`, `internal`.
    pub code: String,
    /// For people; never contains a password, code or secret.
    pub message: String,
    /// `invalid_field`, `unknown_field`: the field concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// `forbidden`: the permission the caller's role lacks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission: Option<String>,
    /// `otp_request_delay`: seconds until a new code may be requested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<i64>,
    /// `internal`: quote it to the operator, who finds the detail in the log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ErrorBody {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            field: None,
            permission: None,
            retry_after: None,
            request_id: None,
        }
    }
}

fn body(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, Json(ErrorBody::new(code, message))).into_response()
}

fn field_error(code: &str, field: String, message: impl Into<String>) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(ErrorBody {
            field: Some(field),
            ..ErrorBody::new(code, message)
        }),
    )
        .into_response()
}

/// A security key that could not be set up (SPEC 14), with its stable code.
pub fn key_error(error: KeyError) -> Response {
    let message = error.to_string();
    let (status, code) = match error {
        KeyError::NotOffered => (StatusCode::CONFLICT, "security_keys_not_offered"),
        KeyError::InterfaceUser => (StatusCode::FORBIDDEN, "interface_user"),
        KeyError::TooMany => (StatusCode::CONFLICT, "too_many_keys"),
        KeyError::AlreadyRegistered => (StatusCode::CONFLICT, "key_registered"),
        KeyError::NoCeremony => (StatusCode::CONFLICT, "no_pending_key"),
        KeyError::UserNotVerified => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "user_verification_required",
        ),
        KeyError::Invalid => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_credential"),
        KeyError::Store(source) => return internal(&source),
    };
    body(status, code, message)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::SignIn(error) => {
                let message = error.to_string();
                match error {
                    SignInError::InvalidCredentials | SignInError::WrongSetupCode => body(
                        StatusCode::UNAUTHORIZED,
                        "invalid_credentials",
                        SignInError::InvalidCredentials.to_string(),
                    ),
                    SignInError::TransactionExpired => {
                        body(StatusCode::UNAUTHORIZED, "transaction_expired", message)
                    }
                    SignInError::RequestDelay {
                        retry_after: seconds,
                    } => (
                        StatusCode::TOO_MANY_REQUESTS,
                        [retry_after(seconds)],
                        Json(ErrorBody {
                            retry_after: Some(seconds),
                            ..ErrorBody::new("otp_request_delay", message)
                        }),
                    )
                        .into_response(),
                    SignInError::EmailMissing => {
                        body(StatusCode::FORBIDDEN, "email_missing", message)
                    }
                    SignInError::EnrollmentRequired => {
                        body(StatusCode::FORBIDDEN, "enrollment_required", message)
                    }
                    SignInError::WrongStep => body(StatusCode::CONFLICT, "wrong_step", message),
                    SignInError::MethodNotAllowed => body(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "method_not_allowed",
                        message,
                    ),
                    SignInError::InvalidPassword(_) => body(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid_password",
                        message,
                    ),
                    SignInError::DirectoryUnavailable => body(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "directory_unavailable",
                        "sign-in is unavailable right now: the directory cannot check \
                         passwords; try again in a few minutes",
                    ),
                    SignInError::DirectoryPassword(_) => {
                        body(StatusCode::FORBIDDEN, "directory_password_change", message)
                    }
                    SignInError::SecurityKey(error) => key_error(error),
                    SignInError::Internal(source) => internal(&source),
                }
            }
            Self::Account(error) => account_error(error),
            Self::Admin(error) => admin_error(error),
            Self::BadBody {
                status,
                code,
                message,
            } => body(status, code, message),
            Self::InvalidField { field, message } => {
                field_error("invalid_field", field.to_owned(), message)
            }
            // Bounded: the name comes from the client.
            Self::UnknownField(field) => field_error(
                "unknown_field",
                field.chars().take(64).collect(),
                "this field is not known here",
            ),
            Self::Unauthenticated => {
                body(StatusCode::UNAUTHORIZED, "unauthenticated", "sign in first")
            }
        }
    }
}

/// The answers to the account service's errors.
fn account_error(error: AccountError) -> Response {
    let message = error.to_string();
    match error {
        AccountError::Unauthenticated => {
            body(StatusCode::UNAUTHORIZED, "unauthenticated", "sign in first")
        }
        AccountError::InvalidCredentials | AccountError::WrongSetupCode => body(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            SignInError::InvalidCredentials.to_string(),
        ),
        AccountError::CodeRequired => field_error("code_required", "code".to_owned(), message),
        AccountError::MethodNotAllowed => body(
            StatusCode::UNPROCESSABLE_ENTITY,
            "method_not_allowed",
            message,
        ),
        AccountError::NoPendingDevice => body(StatusCode::CONFLICT, "no_pending_device", message),
        AccountError::InvalidPassword(_) => body(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_password",
            message,
        ),
        AccountError::NoDevice => body(StatusCode::CONFLICT, "no_device", message),
        AccountError::DirectoryPassword => body(StatusCode::CONFLICT, "directory_user", message),
        AccountError::SecurityKey(error) => key_error(error),
        AccountError::NoSuchKey => body(StatusCode::NOT_FOUND, "not_found", message),
        AccountError::InvalidKeyName(_) => field_error("invalid_field", "name".to_owned(), message),
        AccountError::Internal(source) => internal(&source),
    }
}

/// The answers to the administration service's errors.
fn admin_error(error: AdminError) -> Response {
    let message = error.to_string();
    match error {
        AdminError::Forbidden(permission) => (
            StatusCode::FORBIDDEN,
            Json(ErrorBody {
                permission: Some(permission.as_str().to_owned()),
                ..ErrorBody::new("forbidden", message)
            }),
        )
            .into_response(),
        AdminError::NotFound(_) => body(StatusCode::NOT_FOUND, "not_found", message),
        AdminError::Invalid { field, message } => {
            field_error("invalid_field", field.to_owned(), message)
        }
        AdminError::BroadNetwork(_) => field_error("broad_network", "network".to_owned(), message),
        AdminError::Conflict(conflict) => {
            let code = match conflict {
                Conflict::UsernameTaken => "username_taken",
                Conflict::RoleNameTaken => "role_name_taken",
                Conflict::NetworkExists => "network_exists",
                Conflict::RoleInUse => "role_in_use",
                Conflict::ClientIdTaken => "client_id_taken",
            };
            body(StatusCode::CONFLICT, code, message)
        }
        AdminError::Internal(source) => internal(&source),
    }
}

/// 500: the detail goes to the log under a request id; the client gets only the id.
fn internal(detail: &dyn std::fmt::Display) -> Response {
    let id = request_id();
    tracing::error!(request_id = %id, error = %detail, "internal error");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(ErrorBody {
            request_id: Some(id),
            ..ErrorBody::new("internal", "internal error")
        }),
    )
        .into_response()
}

/// The 500 answer for an error already logged under `id` (a panicked handler).
pub fn internal_answer(id: String) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(ErrorBody {
            request_id: Some(id),
            ..ErrorBody::new("internal", "internal error")
        }),
    )
        .into_response()
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
            // serde's message names the field and the expected type; a value it quotes
            // (`...`) could be a password sent with the wrong type, so it is cut out.
            without_quoted_values(&error.body_text()),
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

/// Replaces every `` `...` `` segment of a serde message with `` `…` ``.
fn without_quoted_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut inside = false;
    for ch in message.chars() {
        if ch == '`' {
            if inside {
                out.push_str("…`");
            } else {
                out.push('`');
            }
            inside = !inside;
        } else if !inside {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::without_quoted_values;

    #[test]
    fn serde_messages_lose_the_values_they_quote() {
        assert_eq!(
            without_quoted_values(
                "password: invalid type: integer `12345`, expected a string at line 1 column 20"
            ),
            "password: invalid type: integer `…`, expected a string at line 1 column 20"
        );
        assert_eq!(
            without_quoted_values("missing field `username`"),
            "missing field `…`"
        );
        assert_eq!(without_quoted_values("no quotes"), "no quotes");
    }
}
