//! The Acceptable IP Rules (`/api/v1/ip-rules`, SPEC section 9): their list, adding and
//! removing one.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ip_text, AdminActor, ApiPath};
use crate::store::StoredIpRule;
use crate::web::json_error::{ApiError, ApiJson, ErrorBody};
use crate::web::{AppState, ClientIp};

/// An Acceptable IP Rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct IpRuleOut {
    pub id: i64,
    /// An IPv4/IPv6 address or CIDR range.
    pub network: String,
    /// Clients in this network are "in network" (when the bypass is enabled).
    pub bypass_2fa: bool,
    pub note: String,
}

impl From<StoredIpRule> for IpRuleOut {
    fn from(stored: StoredIpRule) -> Self {
        Self {
            id: stored.id,
            network: stored.rule.network.to_string(),
            bypass_2fa: stored.rule.bypass_2fa,
            note: stored.rule.note,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IpRuleList {
    pub ip_rules: Vec<IpRuleOut>,
}

/// A new rule.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IpRuleIn {
    /// An IPv4/IPv6 address or CIDR range, e.g. `10.0.0.0/8`.
    network: String,
    /// Default false.
    #[serde(default)]
    bypass_2fa: bool,
    /// At most 200 characters.
    #[serde(default)]
    note: String,
    /// Default false. A network broader than /16 (IPv4) or /48 (IPv6), `0.0.0.0/0` and
    /// `::/0` included, is refused with `422 broad_network` unless this is true.
    #[serde(default)]
    confirm_broad: bool,
}

/// The IP rules.
#[utoipa::path(
    get,
    path = "/api/v1/ip-rules",
    tag = "ip-rules",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The rules", body = IpRuleList),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_ip_settings`", body = ErrorBody),
    )
)]
pub(super) async fn list_ip_rules(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
) -> Result<Json<IpRuleList>, ApiError> {
    let rules = state.admin.ip_rules(&actor).await?;
    Ok(Json(IpRuleList {
        ip_rules: rules.into_iter().map(IpRuleOut::from).collect(),
    }))
}

/// Add Acceptable IP Rule.
#[utoipa::path(
    post,
    path = "/api/v1/ip-rules",
    tag = "ip-rules",
    security(("bearer" = [])),
    request_body = IpRuleIn,
    responses(
        (status = 201, description = "Added", body = IpRuleOut),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_ip_settings`", body = ErrorBody),
        (status = 409, description = "`network_exists`", body = ErrorBody),
        (status = 422, description = "`invalid_field` (`network`, `note`), `broad_network` (a network broader than /16 or /48 without `confirm_broad: true`) or `invalid_input`", body = ErrorBody),
    )
)]
pub(super) async fn add_ip_rule(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ip: ClientIp,
    ApiJson(body): ApiJson<IpRuleIn>,
) -> Result<(StatusCode, Json<IpRuleOut>), ApiError> {
    let rule = state
        .admin
        .add_ip_rule_confirmed(
            &actor,
            &body.network,
            body.bypass_2fa,
            &body.note,
            body.confirm_broad,
            Some(&ip_text(ip)),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(rule.into())))
}

/// Remove a rule.
#[utoipa::path(
    delete,
    path = "/api/v1/ip-rules/{id}",
    tag = "ip-rules",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The rule's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `manage_ip_settings`", body = ErrorBody),
        (status = 404, description = "`not_found` (also for an id that is not a number)", body = ErrorBody),
    )
)]
pub(super) async fn remove_ip_rule(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ip: ClientIp,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    state
        .admin
        .remove_ip_rule(&actor, id, Some(&ip_text(ip)))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
