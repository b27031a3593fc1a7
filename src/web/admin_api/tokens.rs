//! API tokens (`/api/v1/tokens`, SPEC section 9): creating one that acts with the
//! caller's own permissions.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ip_text, AdminActor};
use crate::web::json_error::{ApiError, ApiJson, ErrorBody};
use crate::web::{AppState, ClientIp};

/// A new API token.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenIn {
    /// What the token is for (1 to 100 characters).
    name: String,
}

/// A new API token: shown this once, stored only as a hash.
#[derive(Serialize, ToSchema)]
pub struct TokenOut {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    pub name: String,
}

/// Create an API token that acts with the caller's own permissions.
#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    tag = "tokens",
    security(("bearer" = [])),
    request_body = TokenIn,
    responses(
        (status = 201, description = "Created; the token is not shown again", body = TokenOut),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 422, description = "`invalid_field` `name`", body = ErrorBody),
    )
)]
pub(super) async fn create_token(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ip: ClientIp,
    ApiJson(body): ApiJson<TokenIn>,
) -> Result<(StatusCode, Json<TokenOut>), ApiError> {
    let token = state
        .admin
        .create_api_token(&actor, &body.name, Some(&ip_text(ip)))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenOut {
            token: token.as_str().to_owned(),
            name: body.name,
        }),
    ))
}
