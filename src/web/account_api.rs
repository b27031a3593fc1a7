//! The JSON account API of SPEC section 10 (`/api/v1/account...`): the signed-in user's
//! own account. The caller is the session of `Authorization: Bearer` (the token from
//! sign-in) or of the session cookie; without a live one, `401 unauthenticated`. Each
//! handler is one call of [`Account`](crate::service::account::Account); errors go through
//! [`super::json_error`]. Times are Unix milliseconds.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::json_error::{ApiError, ApiJson, ErrorBody};
use super::signin_api::keys::{KeyOptions, SecurityKeyOut};
use super::signin_api::{
    bearer, parse_method, parse_prompt_mode, DeviceSetup, EnrollAnswer, MethodName, PromptModeName,
    TwoStep,
};
use super::{cookies, csrf, AppState};
use crate::domain::RecoveryCode;
use crate::service::account::{self, AccountOverview};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/account", get(get_account))
        .route("/api/v1/account/device", post(begin_device))
        .route("/api/v1/account/device/confirm", post(confirm_device))
        .route(
            "/api/v1/account/recovery-codes",
            post(regenerate_recovery_codes),
        )
        .route("/api/v1/account/password", post(change_password))
        .route(
            "/api/v1/account/keys/{id}",
            axum::routing::patch(rename_key),
        )
        .route("/api/v1/account/keys/{id}/remove", post(remove_key))
        .route("/api/v1/account/sessions", delete(sign_out_other_sessions))
}

/// The session token of the request: the bearer token, else the session cookie. The
/// cookie does not count for a request another origin's page started (`Sec-Fetch-Site`),
/// as for the forms (`csrf`).
fn session_token(headers: &HeaderMap) -> Result<String, ApiError> {
    if let Some(token) = bearer(headers) {
        return Ok(token.to_owned());
    }
    if csrf::from_another_origin(headers) {
        return Err(ApiError::Unauthenticated);
    }
    cookies::get(headers, cookies::SESSION)
        .filter(|token| !token.is_empty())
        .ok_or(ApiError::Unauthenticated)
}

/// A device of the account.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountDevice {
    pub id: i64,
    pub method: MethodName,
    pub prompt_mode: PromptModeName,
    /// When it was set up (Unix milliseconds).
    pub created_at: Option<i64>,
    /// When its last code was accepted (Unix milliseconds).
    pub last_used_at: Option<i64>,
}

/// A live session of the account.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountSession {
    pub id: i64,
    /// Sign-in (Unix milliseconds).
    pub created_at: i64,
    /// Last request (Unix milliseconds).
    pub last_seen_at: i64,
    /// The client address at sign-in.
    pub ip: String,
    /// The session of this request.
    pub current: bool,
}

/// The signed-in user's account.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountOut {
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    /// The role's name.
    pub role: String,
    pub two_step: TwoStep,
    pub devices: Vec<AccountDevice>,
    /// Security keys and passkeys (SPEC 14), oldest first.
    pub security_keys: Vec<SecurityKeyOut>,
    pub recovery_codes_left: u32,
    pub sessions: Vec<AccountSession>,
}

impl From<AccountOverview> for AccountOut {
    fn from(overview: AccountOverview) -> Self {
        Self {
            username: overview.username,
            display_name: overview.display_name,
            email: overview.email,
            role: overview.role,
            two_step: TwoStep::from_enabled(overview.two_step == account::TwoStep::Enabled),
            devices: overview
                .devices
                .into_iter()
                .map(|device| AccountDevice {
                    id: device.id.0,
                    method: device.method.into(),
                    prompt_mode: device.prompt_mode.into(),
                    created_at: device.created_at.map(|at| at.millis()),
                    last_used_at: device.last_used_at.map(|at| at.millis()),
                })
                .collect(),
            security_keys: overview
                .security_keys
                .into_iter()
                .map(SecurityKeyOut::from)
                .collect(),
            recovery_codes_left: overview.recovery_codes_left,
            sessions: overview
                .sessions
                .into_iter()
                .map(|session| AccountSession {
                    id: session.id.0,
                    created_at: session.created_at.millis(),
                    last_seen_at: session.last_seen_at.millis(),
                    ip: session.ip,
                    current: session.current,
                })
                .collect(),
        }
    }
}

/// The signed-in user's account: 2-step verification, recovery codes, sessions.
#[utoipa::path(
    get,
    path = "/api/v1/account",
    tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account", body = AccountOut),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
    )
)]
pub(super) async fn get_account(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<AccountOut>, ApiError> {
    let token = session_token(&headers)?;
    Ok(Json(state.account.overview(&token).await?.into()))
}

#[derive(Deserialize, ToSchema)]
pub(super) struct DeviceBody {
    #[schema(value_type = MethodName)]
    method: String,
    #[schema(value_type = PromptModeName)]
    prompt_mode: String,
    /// A current code of the device set up now; omitted only when there is none.
    #[serde(default)]
    code: Option<String>,
}

/// Set up a device ("Set up now"), or a new one that replaces the old when confirmed
/// ("Replace device"; the old one keeps working until then). Method `webauthn` adds a
/// security key (SPEC 14): the answer is its registration options.
#[utoipa::path(
    post,
    path = "/api/v1/account/device",
    tag = "account",
    security(("bearer" = [])),
    request_body = DeviceBody,
    responses(
        (status = 200, description = "An app: scan or type the secret, then confirm with a code. `webauthn`: `public_key` for `navigator.credentials.create()`, then confirm with the `credential`", body = EnrollAnswer),
        (status = 409, description = "`security_keys_not_offered`, `too_many_keys`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, or `invalid_credentials` (a wrong current code: a counted failure)", body = ErrorBody),
        (status = 422, description = "`code_required` (a device is set up), `invalid_field` (`method`, `prompt_mode`) or `method_not_allowed` (system setting Use 2FA)", body = ErrorBody),
    )
)]
pub(super) async fn begin_device(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<DeviceBody>,
) -> Result<Json<EnrollAnswer>, ApiError> {
    let token = session_token(&headers)?;
    let prompt_mode = parse_prompt_mode(&body.prompt_mode)?;
    if body.method == "webauthn" {
        let public_key = state
            .account
            .begin_key(&token, prompt_mode, body.code.as_deref())
            .await?;
        return Ok(Json(EnrollAnswer::SecurityKey(KeyOptions { public_key })));
    }
    let method = parse_method(&body.method)?;
    let setup = state
        .account
        .begin_device(&token, method, prompt_mode, body.code.as_deref())
        .await?;
    Ok(Json(EnrollAnswer::App(DeviceSetup::from(setup))))
}

#[derive(Deserialize, ToSchema)]
pub(super) struct ConfirmBody {
    /// The code the new device shows.
    #[serde(default)]
    code: Option<String>,
    /// A new security key's answer: the browser's `PublicKeyCredential.toJSON()`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    credential: Option<serde_json::Value>,
    /// The key's name; "Security key N" without one.
    #[serde(default)]
    name: Option<String>,
}

/// What Complete Setup answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Confirmed {
    /// A first set of recovery codes, shown once, when the user had none left; empty when
    /// the user keeps the codes they have.
    pub recovery_codes: Vec<String>,
}

/// Complete the set-up with a code from the new device; it replaces the old one.
#[utoipa::path(
    post,
    path = "/api/v1/account/device/confirm",
    tag = "account",
    security(("bearer" = [])),
    request_body = ConfirmBody,
    responses(
        (status = 200, description = "The new device is the one used at sign-in", body = Confirmed),
        (status = 401, description = "`unauthenticated`, or `invalid_credentials` (the code does not match)", body = ErrorBody),
        (status = 409, description = "`no_pending_device`: no set-up was started", body = ErrorBody),
    )
)]
pub(super) async fn confirm_device(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ConfirmBody>,
) -> Result<Json<Confirmed>, ApiError> {
    let token = session_token(&headers)?;
    let codes = match (&body.credential, &body.code) {
        (Some(credential), _) => {
            state
                .account
                .confirm_key(&token, &credential.to_string(), body.name.as_deref())
                .await?
        }
        (None, Some(code)) => state.account.confirm_device(&token, code).await?,
        (None, None) => {
            return Err(ApiError::InvalidField {
                field: "code",
                message: "send the new device's code, or a security key's credential",
            })
        }
    };
    Ok(Json(Confirmed {
        recovery_codes: codes.iter().map(RecoveryCode::reveal).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
pub(super) struct ProofBody {
    /// A current code of the device, or one of the user's recovery codes (used up by it);
    /// omitted only when there is no device.
    #[serde(default)]
    code: Option<String>,
}

/// A new set of recovery codes.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Shown once; each works once.
    pub codes: Vec<String>,
}

/// Generate a new set of recovery codes (replacing earlier ones).
#[utoipa::path(
    post,
    path = "/api/v1/account/recovery-codes",
    tag = "account",
    security(("bearer" = [])),
    request_body = ProofBody,
    responses(
        (status = 201, description = "The new codes, shown once", body = RecoveryCodes),
        (status = 401, description = "`unauthenticated`, or `invalid_credentials` (a wrong current code: a counted failure)", body = ErrorBody),
        (status = 409, description = "`no_device`: no 2-step device is set up", body = ErrorBody),
        (status = 422, description = "`code_required`", body = ErrorBody),
    )
)]
pub(super) async fn regenerate_recovery_codes(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ProofBody>,
) -> Result<Response, ApiError> {
    let token = session_token(&headers)?;
    let codes = state
        .account
        .regenerate_recovery_codes(&token, body.code.as_deref())
        .await?;
    let codes = codes.iter().map(RecoveryCode::reveal).collect();
    Ok((StatusCode::CREATED, Json(RecoveryCodes { codes })).into_response())
}

#[derive(Deserialize, ToSchema)]
pub(super) struct PasswordBody {
    #[schema(format = Password)]
    current_password: String,
    #[schema(format = Password)]
    new_password: String,
}

/// Change the password (the current one is a counted attempt).
#[utoipa::path(
    post,
    path = "/api/v1/account/password",
    tag = "account",
    security(("bearer" = [])),
    request_body = PasswordBody,
    responses(
        (status = 204, description = "The new password is in use"),
        (status = 401, description = "`unauthenticated`, or `invalid_credentials` (a wrong current password: a counted failure)", body = ErrorBody),
        (status = 422, description = "`invalid_password`: the new one is refused, and why", body = ErrorBody),
    )
)]
pub(super) async fn change_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PasswordBody>,
) -> Result<StatusCode, ApiError> {
    let token = session_token(&headers)?;
    state
        .account
        .change_password(&token, &body.current_password, &body.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// End every other session of the user.
#[utoipa::path(
    delete,
    path = "/api/v1/account/sessions",
    tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Only this session is left"),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
    )
)]
pub(super) async fn sign_out_other_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let token = session_token(&headers)?;
    state.account.sign_out_other_sessions(&token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub(super) struct KeyNameBody {
    /// 1 to 64 characters.
    name: String,
}

/// Name one of the account's security keys.
#[utoipa::path(
    patch,
    path = "/api/v1/account/keys/{id}",
    tag = "account",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The key's id")),
    request_body = KeyNameBody,
    responses(
        (status = 204, description = "Renamed"),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 404, description = "`not_found`: not a key of this account", body = ErrorBody),
        (status = 422, description = "`invalid_field` (`name`)", body = ErrorBody),
    )
)]
pub(super) async fn rename_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    super::admin_api::ApiPath(id): super::admin_api::ApiPath<i64>,
    ApiJson(body): ApiJson<KeyNameBody>,
) -> Result<StatusCode, ApiError> {
    let token = session_token(&headers)?;
    state
        .account
        .rename_key(&token, crate::domain::SecurityKeyId(id), &body.name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove one of the account's security keys, after fresh proof (`code`: a current code
/// of the app, or a recovery code).
#[utoipa::path(
    post,
    path = "/api/v1/account/keys/{id}/remove",
    tag = "account",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The key's id")),
    request_body = ProofBody,
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "`unauthenticated`, or `invalid_credentials` (a wrong code: a counted failure)", body = ErrorBody),
        (status = 404, description = "`not_found`: not a key of this account", body = ErrorBody),
        (status = 422, description = "`code_required`", body = ErrorBody),
    )
)]
pub(super) async fn remove_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    super::admin_api::ApiPath(id): super::admin_api::ApiPath<i64>,
    ApiJson(body): ApiJson<ProofBody>,
) -> Result<StatusCode, ApiError> {
    let token = session_token(&headers)?;
    state
        .account
        .remove_key(
            &token,
            crate::domain::SecurityKeyId(id),
            body.code.as_deref(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
