//! The audit log (`/api/v1/audit`, SPEC section 9): its entries, newest first, filtered by
//! user, event and time; as JSON, or as CSV with `format=csv` (SPEC section 11).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{query_number, AdminActor, ApiQuery};
use crate::clock::Timestamp;
use crate::domain::AuditEntry;
use crate::domain::AuditEvent;
use crate::store::AuditQuery;
use crate::web::csv;
use crate::web::json_error::{ApiError, ErrorBody};
use crate::web::AppState;

/// Filters of `GET /api/v1/audit`; times are Unix milliseconds.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Entries whose actor or subject is this username.
    user: Option<String>,
    /// One event, e.g. `setting_changed`.
    event: Option<String>,
    /// Entries at or after this time, in Unix milliseconds (e.g. `1800000000000`).
    #[param(value_type = Option<i64>)]
    since: Option<String>,
    /// Entries before this time, in Unix milliseconds.
    #[param(value_type = Option<i64>)]
    until: Option<String>,
    /// Entries to skip (default 0).
    #[param(value_type = Option<u32>)]
    offset: Option<String>,
    /// Entries per page (default 50, at most 500).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// `json` (the default) or `csv`: RFC 4180 with a header row, CRLF line ends, and a
    /// `'` before any cell that starts with `=`, `+`, `-`, `@`, a tab or a CR (so that a
    /// spreadsheet runs no formula), sent as the attachment `audit.csv`.
    format: Option<String>,
}

/// What the answer is written as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
}

/// An audit log entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryOut {
    pub id: i64,
    /// When, in Unix milliseconds.
    pub at: i64,
    pub event: String,
    /// Who acted (a username, or `cli`).
    pub actor: Option<String>,
    /// The user concerned.
    pub subject: Option<String>,
    pub client_ip: Option<String>,
    /// Details: values before and after for roles and settings.
    pub detail: String,
}

impl From<AuditEntry> for AuditEntryOut {
    fn from(entry: AuditEntry) -> Self {
        Self {
            id: entry.id,
            at: entry.at.millis(),
            event: entry.event,
            actor: entry.actor,
            subject: entry.subject,
            client_ip: entry.client_ip,
            detail: entry.detail,
        }
    }
}

/// A page of the audit log, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntryOut>,
}

/// The audit log, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    security(("bearer" = [])),
    params(AuditParams),
    responses(
        (status = 200, description = "A page of entries as JSON; with `format=csv` the same entries as CSV (`text/csv; charset=utf-8`, attachment `audit.csv`; columns id, time_utc, event, event_label, actor, subject, client_ip, detail)", content(
            (AuditPage = "application/json"),
            (String = "text/csv"),
        )),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `view_audit_log`", body = ErrorBody),
        (status = 422, description = "`invalid_field` (`event`, `since`, `until`, `offset`, `limit`); `unknown_format`: `format` is neither `json` nor `csv`", body = ErrorBody),
    )
)]
pub(super) async fn audit_log(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> Result<Response, ApiError> {
    let format = match params.format.as_deref().map(str::trim) {
        None | Some("json") => Format::Json,
        Some("csv") => Format::Csv,
        Some(_) => {
            return Err(ApiError::BadBody {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "unknown_format",
                message: "format must be json or csv".to_owned(),
            })
        }
    };
    let event = params
        .event
        .as_deref()
        .map(|name| {
            AuditEvent::parse(name).ok_or(ApiError::InvalidField {
                field: "event",
                message: "unknown event",
            })
        })
        .transpose()?;
    let millis = "a time in Unix milliseconds, e.g. 1800000000000";
    let since: Option<i64> = query_number(params.since.as_deref(), "since", millis)?;
    let until: Option<i64> = query_number(params.until.as_deref(), "until", millis)?;
    let offset = query_number(
        params.offset.as_deref(),
        "offset",
        "offset must be a whole number",
    )?;
    let limit = query_number(
        params.limit.as_deref(),
        "limit",
        "limit must be a whole number",
    )?;
    let query = AuditQuery {
        user: params.user,
        event,
        since: since.map(Timestamp::from_millis),
        until: until.map(Timestamp::from_millis),
        offset: offset.unwrap_or(0),
        limit: limit.unwrap_or(50),
    };
    let entries = state.admin.audit_log(&actor, &query).await?;
    Ok(match format {
        Format::Json => Json(AuditPage {
            entries: entries.into_iter().map(AuditEntryOut::from).collect(),
        })
        .into_response(),
        Format::Csv => csv::audit_export(&entries),
    })
}
