//! The second-factor check over HTTP ([`crate::service::verify`]), in two dialects:
//!
//! - native JSON: `POST /api/v1/verify` `{username, code, transaction?}` and
//!   `POST /api/v1/verify/challenge` `{username}`, for callers with an API token whose
//!   role holds `verify_otp`; errors are the JSON API's ([`ApiError`]);
//! - privacyIDEA's protocol: `POST /validate/check` and `/validate/radiuscheck`
//!   (form-encoded or JSON `user`, `pass`, `realm` (ignored), `transaction_id`), so that
//!   privacyIDEA's RADIUS, PAM, credential-provider and LDAP-proxy clients work
//!   unchanged. Callers come from a `--validate-client` network or send a `verify_otp`
//!   API token in `PI-Authorization` or `Authorization` (bare or `Bearer`). Answers and
//!   errors have privacyIDEA's shape (`jsonrpc`, `id`, `version`, `result`, `detail`);
//!   `radiuscheck` answers 204 (accept) or 400 (anything else) with an empty body.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRef, FromRequestParts, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::json_error::{ApiError, ApiJson, ErrorBody};
use super::signin_api::bearer;
use super::{request_id, AppState, ClientIp};
use crate::domain::Permission;
use crate::service::admin::AdminError;
use crate::service::signin::SignInError;
use crate::service::verify::{Caller, CallerError, Challenge, Refusal, Verdict, VerifyError};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/verify", post(verify))
        .route("/api/v1/verify/challenge", post(challenge))
        .route("/validate/check", post(validate_check))
        .route("/validate/radiuscheck", post(validate_radiuscheck))
}

/// `"twostep X.Y.Z"`, privacyIDEA's `version` field.
pub fn version() -> String {
    format!("twostep {}", env!("CARGO_PKG_VERSION"))
}

// ----- native -----

/// The native answers' errors: the JSON API's, from the one mapping of [`ApiError`].
fn native_error(error: VerifyError) -> ApiError {
    match error {
        VerifyError::Refused(refusal) => match refusal {
            Refusal::InvalidCredentials => SignInError::InvalidCredentials.into(),
            Refusal::RequestDelay { retry_after } => {
                SignInError::RequestDelay { retry_after }.into()
            }
            Refusal::EmailMissing => SignInError::EmailMissing.into(),
            Refusal::EnrollmentRequired => SignInError::EnrollmentRequired.into(),
            Refusal::DeviceEnrolled => ApiError::BadBody {
                status: StatusCode::CONFLICT,
                code: "device_enrolled",
                message: "this user has an authenticator app: check its code with \
                          POST /api/v1/verify instead"
                    .to_owned(),
            },
            Refusal::PasswordChangeRequired => ApiError::BadBody {
                status: StatusCode::FORBIDDEN,
                code: "password_change_required",
                message: "the password must be changed at the sign-in page first".to_owned(),
            },
            Refusal::DirectoryPassword(message) => SignInError::DirectoryPassword(message).into(),
        },
        VerifyError::DirectoryUnavailable => SignInError::DirectoryUnavailable.into(),
        VerifyError::Internal(source) => SignInError::Internal(source).into(),
    }
}

fn native_caller_error(error: CallerError) -> ApiError {
    match error {
        CallerError::Unauthenticated => ApiError::Unauthenticated,
        CallerError::Forbidden => AdminError::Forbidden(Permission::VerifyOtp).into(),
        CallerError::Internal(source) => SignInError::Internal(source).into(),
    }
}

/// The native caller: `Authorization: Bearer T` with an API token whose role holds
/// `verify_otp` (checked before the body is read). Without one: `401 unauthenticated`;
/// without the permission: `403 forbidden`.
pub struct VerifyCaller(pub Caller);

impl<S> FromRequestParts<S> for VerifyCaller
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ClientIp(ip) = match ClientIp::from_request_parts(parts, state).await {
            Ok(ip) => ip,
            Err(never) => match never {},
        };
        let state = AppState::from_ref(state);
        state
            .verify
            .caller(bearer(&parts.headers), ip, false)
            .await
            .map(Self)
            .map_err(native_caller_error)
    }
}

#[derive(Deserialize, ToSchema)]
pub(super) struct VerifyBody {
    username: String,
    /// The OTP: from the user's authenticator app, or the emailed one of `transaction`.
    code: String,
    /// The `transaction` of `POST /api/v1/verify/challenge`, for an emailed code.
    #[serde(default)]
    transaction: Option<String>,
}

/// The code is right.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// Always `accept`.
    pub result: String,
}

/// Check a user's one-time password (the caller checked the password itself): the code
/// of the user's authenticator app, or with `transaction` the emailed code of a
/// challenge. Every failure is `401 invalid_credentials`, no sooner than Failure Delay,
/// and counts toward Lockout Threshold like a failed sign-in; a success resets the count.
#[utoipa::path(
    post,
    path = "/api/v1/verify",
    tag = "verify",
    security(("bearer" = [])),
    request_body = VerifyBody,
    responses(
        (status = 200, description = "Accepted: `{\"result\":\"accept\"}`", body = Accepted),
        (status = 401, description = "`invalid_credentials` (wrong, used or expired code, unknown or locked user), or `unauthenticated` (no valid API token)", body = ErrorBody),
        (status = 403, description = "`forbidden`: the token's role lacks `verify_otp`", body = ErrorBody),
        (status = 422, description = "`invalid_input`: the body is not this JSON", body = ErrorBody),
    )
)]
pub(super) async fn verify(
    State(state): State<AppState>,
    VerifyCaller(caller): VerifyCaller,
    ApiJson(body): ApiJson<VerifyBody>,
) -> Result<Json<Accepted>, ApiError> {
    state
        .verify
        .check(
            &caller,
            &body.username,
            &body.code,
            body.transaction.as_deref(),
        )
        .await
        .map_err(native_error)?;
    Ok(Json(Accepted {
        result: "accept".to_owned(),
    }))
}

#[derive(Deserialize, ToSchema)]
pub(super) struct ChallengeBody {
    username: String,
}

/// An emailed code is on its way.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChallengeSent {
    /// Send it back with the code to `POST /api/v1/verify`.
    pub transaction: String,
    /// Where the code went, masked (`j***@example.org`).
    pub sent_to: String,
}

/// Email a one-time password to a user without an authenticator app (validity and
/// request delay as at sign-in); then `POST /api/v1/verify` with the `transaction`.
#[utoipa::path(
    post,
    path = "/api/v1/verify/challenge",
    tag = "verify",
    security(("bearer" = [])),
    request_body = ChallengeBody,
    responses(
        (status = 202, description = "Sent", body = ChallengeSent),
        (status = 401, description = "`invalid_credentials` (unknown, locked or inactive user) or `unauthenticated`", body = ErrorBody),
        (status = 403, description = "`email_missing` (no email address on file) or `forbidden` (no `verify_otp`)", body = ErrorBody),
        (status = 409, description = "`device_enrolled`: the user has an authenticator app; check its code instead", body = ErrorBody),
        (status = 429, description = "`otp_request_delay` with `retry_after` (also a `Retry-After` header)", body = ErrorBody),
    )
)]
pub(super) async fn challenge(
    State(state): State<AppState>,
    VerifyCaller(caller): VerifyCaller,
    ApiJson(body): ApiJson<ChallengeBody>,
) -> Result<Response, ApiError> {
    let sent = state
        .verify
        .challenge(&caller, &body.username)
        .await
        .map_err(native_error)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ChallengeSent {
            transaction: sent.transaction.as_str().to_owned(),
            sent_to: sent.masked_to,
        }),
    )
        .into_response())
}

// ----- privacyIDEA's /validate/check -----

/// The parameters twostep reads; others that privacyIDEA clients send (`realm`,
/// `client`, `serial`, ...) are ignored.
#[derive(Deserialize)]
struct CheckParams {
    user: Option<String>,
    pass: Option<String>,
    transaction_id: Option<String>,
}

/// Why a `/validate` request got no verdict, in privacyIDEA's error shape.
#[derive(Debug)]
enum ValidateError {
    Caller(CallerError),
    /// The body is not form-encoded or JSON.
    MediaType,
    /// The body could not be read or parsed.
    Malformed,
    /// The body is larger than any request twostep accepts.
    TooLarge,
    /// A required parameter is missing.
    Missing(&'static str),
    /// The directory could not check the password (SPEC 12).
    DirectoryUnavailable,
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

/// privacyIDEA's error codes (`lib/error.py`).
const ERR_AUTH_HEADER: u32 = 4033;
const ERR_MISSING_RIGHT: u32 = 4306;
const ERR_SERVER: u32 = 903;
const ERR_PARAMETER: u32 = 905;

impl IntoResponse for ValidateError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            Self::Caller(CallerError::Unauthenticated) => (
                StatusCode::UNAUTHORIZED,
                ERR_AUTH_HEADER,
                "Authentication failure: this client is not in a --validate-client network; \
                 send an API token with the permission verify_otp"
                    .to_owned(),
            ),
            Self::Caller(CallerError::Forbidden) => (
                StatusCode::FORBIDDEN,
                ERR_MISSING_RIGHT,
                "Authentication failure: the API token's role lacks the permission verify_otp"
                    .to_owned(),
            ),
            Self::Caller(CallerError::Internal(source)) | Self::Internal(source) => {
                let id = request_id();
                tracing::error!(request_id = %id, error = %source, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ERR_SERVER,
                    format!("internal error (request id {id})"),
                )
            }
            Self::MediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ERR_PARAMETER,
                "send the parameters as application/x-www-form-urlencoded or application/json"
                    .to_owned(),
            ),
            Self::Malformed => (
                StatusCode::BAD_REQUEST,
                ERR_PARAMETER,
                "the parameters could not be read".to_owned(),
            ),
            Self::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                ERR_PARAMETER,
                "the request body is too large".to_owned(),
            ),
            Self::Missing(name) => (
                StatusCode::BAD_REQUEST,
                ERR_PARAMETER,
                format!("ERR905: Missing parameter: '{name}'"),
            ),
            Self::DirectoryUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                ERR_SERVER,
                "directory_unavailable: the directory cannot check passwords right now; \
                 try again in a moment"
                    .to_owned(),
            ),
        };
        let body = json!({
            "jsonrpc": "2.0",
            "id": 1,
            "version": version(),
            "detail": Value::Null,
            "result": {
                "status": false,
                "error": { "code": code, "message": message },
            },
        });
        (status, Json(body)).into_response()
    }
}

/// The token a privacyIDEA client sends: `PI-Authorization` or `Authorization`, bare or
/// as `Bearer T`.
fn validate_token(headers: &HeaderMap) -> Option<&str> {
    ["pi-authorization", "authorization"]
        .iter()
        .filter_map(|name| headers.get(*name)?.to_str().ok())
        .map(|value| value.trim())
        .map(|value| value.strip_prefix("Bearer ").map_or(value, str::trim))
        .find(|value| !value.is_empty())
}

/// Reads the parameters, form-encoded or JSON (by `Content-Type`).
fn parse_params(headers: &HeaderMap, body: &[u8]) -> Result<CheckParams, ValidateError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match content_type.as_str() {
        "application/json" => serde_json::from_slice(body).map_err(|_| ValidateError::Malformed),
        "application/x-www-form-urlencoded" | "" => {
            serde_urlencoded::from_bytes(body).map_err(|_| ValidateError::Malformed)
        }
        _ => Err(ValidateError::MediaType),
    }
}

/// Authorizes the caller, reads the parameters and asks the service.
async fn run_check(
    state: &AppState,
    ip: ClientIp,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Verdict, ValidateError> {
    let caller = state
        .verify
        .caller(validate_token(headers), ip.0, true)
        .await
        .map_err(ValidateError::Caller)?;
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ValidateError::TooLarge,
        _ => ValidateError::Malformed,
    })?;
    let params = parse_params(headers, &body)?;
    let user = params.user.ok_or(ValidateError::Missing("user"))?;
    let pass = params.pass.ok_or(ValidateError::Missing("pass"))?;
    let transaction = params.transaction_id.filter(|t| !t.is_empty());
    state
        .verify
        .validate(&caller, &user, &pass, transaction.as_deref())
        .await
        .map_err(|error| match error {
            VerifyError::Internal(source) => ValidateError::Internal(source),
            VerifyError::DirectoryUnavailable => ValidateError::DirectoryUnavailable,
            // `validate` turns every refusal into a verdict; kept exhaustive all the same.
            VerifyError::Refused(_) => ValidateError::Internal("unexpected refusal".into()),
        })
}

/// The message of a refusal, for the person at the other system.
fn refusal_message(state: &AppState, refusal: Refusal) -> String {
    match refusal {
        Refusal::InvalidCredentials => SignInError::InvalidCredentials.to_string(),
        Refusal::RequestDelay { retry_after } => format!(
            "a code was emailed moments ago; a new one can be requested in {retry_after} seconds"
        ),
        Refusal::EmailMissing => SignInError::EmailMissing.to_string(),
        Refusal::DeviceEnrolled => "enter the code your authenticator app shows".to_owned(),
        Refusal::EnrollmentRequired => format!(
            "2-step verification must be set up first: sign in at {} and follow the steps",
            state.verify.sign_in_page()
        ),
        Refusal::PasswordChangeRequired => format!(
            "the password must be changed first: sign in at {}",
            state.verify.sign_in_page()
        ),
        Refusal::DirectoryPassword(message) => message.to_owned(),
    }
}

/// privacyIDEA's answer to a check.
fn verdict_body(state: &AppState, verdict: &Verdict) -> Value {
    let (value, authentication, detail) = match verdict {
        Verdict::Accept => (true, "ACCEPT", json!({ "message": "matching 1 tokens" })),
        Verdict::Reject(refusal) => (
            false,
            "REJECT",
            json!({ "message": refusal_message(state, *refusal) }),
        ),
        Verdict::Challenge(challenge) => (false, "CHALLENGE", challenge_detail(challenge)),
    };
    json!({
        "jsonrpc": "2.0",
        "id": 1,
        "version": version(),
        "result": { "status": true, "value": value, "authentication": authentication },
        "detail": detail,
    })
}

/// The challenge leg, as privacyIDEA describes an email token's challenge.
fn challenge_detail(challenge: &Challenge) -> Value {
    let transaction = challenge.transaction.as_str();
    let message = format!("Enter the code emailed to {}", challenge.masked_to);
    json!({
        "transaction_id": transaction,
        "transaction_ids": [transaction],
        "message": message,
        "messages": [message],
        "serial": "email",
        "type": "email",
        "client_mode": "interactive",
        "preferred_client_mode": "interactive",
        "multi_challenge": [{
            "transaction_id": transaction,
            "message": message,
            "serial": "email",
            "type": "email",
            "client_mode": "interactive",
        }],
    })
}

/// `POST /validate/check`: privacyIDEA's authentication endpoint.
async fn validate_check(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match run_check(&state, ip, &headers, body).await {
        Ok(verdict) => Json(verdict_body(&state, &verdict)).into_response(),
        Err(error) => error.into_response(),
    }
}

/// `POST /validate/radiuscheck`: 204 for accept, 400 for anything else, empty bodies;
/// errors as `/validate/check`.
async fn validate_radiuscheck(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match run_check(&state, ip, &headers, body).await {
        Ok(Verdict::Accept) => StatusCode::NO_CONTENT.into_response(),
        Ok(Verdict::Reject(_) | Verdict::Challenge(_)) => StatusCode::BAD_REQUEST.into_response(),
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn a_token_is_read_bare_or_bearer_from_either_header() {
        assert_eq!(
            validate_token(&headers(&[("pi-authorization", "abc")])),
            Some("abc")
        );
        assert_eq!(
            validate_token(&headers(&[("authorization", "Bearer  abc ")])),
            Some("abc")
        );
        assert_eq!(
            validate_token(&headers(&[
                ("pi-authorization", " "),
                ("authorization", "xyz")
            ])),
            Some("xyz")
        );
        assert_eq!(validate_token(&HeaderMap::new()), None);
    }

    #[test]
    fn parameters_are_read_form_encoded_or_as_json() {
        let form = parse_params(
            &headers(&[(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )]),
            b"user=jo&realm=r&pass=pw%2B123456&transaction_id=T",
        )
        .unwrap();
        assert_eq!(form.user.as_deref(), Some("jo"));
        assert_eq!(form.pass.as_deref(), Some("pw+123456"));
        assert_eq!(form.transaction_id.as_deref(), Some("T"));
        let json = parse_params(
            &headers(&[("content-type", "application/json")]),
            br#"{"user":"jo","pass":"123456","realm":"","client":"10.0.0.1"}"#,
        )
        .unwrap();
        assert_eq!(json.user.as_deref(), Some("jo"));
        assert_eq!(json.transaction_id, None);
        assert!(matches!(
            parse_params(&headers(&[("content-type", "text/plain")]), b"user=jo"),
            Err(ValidateError::MediaType)
        ));
        assert!(matches!(
            parse_params(
                &headers(&[("content-type", "application/json")]),
                b"{\"user\":"
            ),
            Err(ValidateError::Malformed)
        ));
        assert!(matches!(
            parse_params(
                &headers(&[("content-type", "application/json")]),
                br#"{"user":"jo","pass":123456}"#
            ),
            Err(ValidateError::Malformed)
        ));
    }
}
