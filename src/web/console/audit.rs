//! Audit Log (SPEC sections 7 and 11): what was recorded, in plain language, filtered by
//! user, event and dates (UTC), a page at a time, with a link to the same entries as CSV.
//! Each time is written in UTC inside `<time datetime title>`; `/static/localtime.js`
//! rewrites the text in the browser's time zone (the page works without it). Needs View
//! Audit Log (SPEC section 6), checked by [`Admin`](crate::service::admin::Admin).

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{actor, fail, problem, render, segment, Choice, FieldErrors, Nav};
use crate::clock::Timestamp;
use crate::domain::audit::event_label;
use crate::domain::AuditEvent;
use crate::store::AuditQuery;
use crate::web::csv;
use crate::web::html::Layout;
use crate::web::AppState;

#[derive(Template)]
#[template(path = "admin/audit.html")]
pub struct AuditView {
    pub layout: Layout,
    pub nav: Nav,
    pub user: String,
    pub from: String,
    pub to: String,
    pub events: Vec<Choice>,
    pub entries: Vec<AuditRow>,
    pub page: u32,
    pub prev_href: Option<String>,
    pub next_href: Option<String>,
    /// The CSV export of the same filters.
    pub export_href: String,
    pub errors: FieldErrors,
}

pub struct AuditRow {
    /// ISO 8601 UTC, the `<time datetime>`.
    pub at_iso: String,
    /// `YYYY-MM-DD HH:MM:SS UTC`, the text (until the script) and the title.
    pub at: String,
    /// The plain label, or the stored name if this version does not know it.
    pub event: String,
    pub actor: String,
    pub subject: String,
    pub client_ip: String,
    pub detail: String,
}

const AUDIT_PER_PAGE: u32 = 50;
const DAY_MILLIS: i64 = 86_400_000;

#[derive(Deserialize, Default, Clone)]
pub(super) struct AuditParams {
    user: Option<String>,
    event: Option<String>,
    from: Option<String>,
    to: Option<String>,
    page: Option<u32>,
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD` (a date input's value) as the first millisecond of that day, UTC.
fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(year, month, day) * DAY_MILLIS)
}

/// A moment as `YYYY-MM-DD HH:MM:SS UTC`.
pub(super) fn utc_text(millis: i64) -> String {
    let iso = Timestamp::from_millis(millis).iso_utc();
    format!("{} UTC", iso.trim_end_matches('Z').replacen('T', " ", 1))
}

/// The most entries one export holds (the API's largest page).
const EXPORT_LIMIT: u32 = 500;

/// The page's filters, read and checked once for the page and its export.
struct Filters {
    user: String,
    event_text: String,
    from: String,
    to: String,
    event: Option<AuditEvent>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    errors: FieldErrors,
}

impl Filters {
    fn read(params: &AuditParams) -> Self {
        let user = params.user.clone().unwrap_or_default().trim().to_owned();
        let event_text = params.event.clone().unwrap_or_default();
        let from = params.from.clone().unwrap_or_default();
        let to = params.to.clone().unwrap_or_default();
        let mut errors = FieldErrors::default();
        let event = match event_text.as_str() {
            "" => None,
            text => AuditEvent::parse(text),
        };
        let since = match from.trim() {
            "" => None,
            text => match parse_date(text) {
                Some(millis) => Some(Timestamp::from_millis(millis)),
                None => {
                    errors
                        .0
                        .push(("from", "Enter a date as YYYY-MM-DD.".to_owned()));
                    None
                }
            },
        };
        let until = match to.trim() {
            "" => None,
            // Up to the end of that day.
            text => match parse_date(text) {
                Some(millis) => Some(Timestamp::from_millis(millis + DAY_MILLIS - 1)),
                None => {
                    errors
                        .0
                        .push(("to", "Enter a date as YYYY-MM-DD.".to_owned()));
                    None
                }
            },
        };
        Self {
            user,
            event_text,
            from,
            to,
            event,
            since,
            until,
            errors,
        }
    }

    fn query(&self, offset: u32, limit: u32) -> AuditQuery {
        AuditQuery {
            user: (!self.user.is_empty()).then(|| self.user.clone()),
            event: self.event,
            since: self.since,
            until: self.until,
            offset,
            limit,
        }
    }

    /// `path` with these filters as its query (`/admin/audit` or its export).
    fn href(&self, path: &str) -> String {
        format!(
            "{path}?user={}&event={}&from={}&to={}",
            segment(&self.user),
            segment(&self.event_text),
            segment(&self.from),
            segment(&self.to)
        )
    }

    /// `/admin/audit/export` with these filters.
    fn export_href(&self) -> String {
        self.href("/admin/audit/export")
    }
}

/// `GET /admin/audit/export`: the page's filtered entries (newest first, up to
/// [`EXPORT_LIMIT`]) as `audit.csv`, the same file as `GET /api/v1/audit?format=csv`.
pub(super) async fn audit_export(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<AuditParams>, QueryRejection>,
) -> Response {
    let actor = match actor(&state, &headers).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let params = query.map(|Query(q)| q).unwrap_or_default();
    let filters = Filters::read(&params);
    if let Some((_, message)) = filters.errors.0.first() {
        return problem(
            &state,
            &headers,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Please check your entry",
            message.clone(),
            None,
        );
    }
    match state
        .admin
        .audit_log(&actor, &filters.query(0, EXPORT_LIMIT))
        .await
    {
        Ok(entries) => csv::audit_export(&entries),
        Err(error) => fail(&state, &headers, error),
    }
}

/// `GET /static/localtime.js`: the one script, cacheable for an hour.
pub(super) async fn local_time_script() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        include_str!("../../../static/localtime.js"),
    )
        .into_response()
}

fn audit_href(filters: &Filters, page: u32) -> String {
    format!("{}&page={page}", filters.href("/admin/audit"))
}

pub(super) async fn audit_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<AuditParams>, QueryRejection>,
) -> Response {
    let actor = match actor(&state, &headers).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let params = query.map(|Query(q)| q).unwrap_or_default();
    let page_no = params.page.unwrap_or(1).max(1);
    let filters = Filters::read(&params);
    let query = filters.query(
        (page_no - 1).saturating_mul(AUDIT_PER_PAGE),
        // One more than shown: whether there is a next page.
        AUDIT_PER_PAGE + 1,
    );
    let mut entries = match state.admin.audit_log(&actor, &query).await {
        Ok(entries) => entries,
        Err(error) => return fail(&state, &headers, error),
    };
    let has_next = entries.len() > AUDIT_PER_PAGE as usize;
    entries.truncate(AUDIT_PER_PAGE as usize);
    let view = AuditView {
        layout: Layout::new(&state, &headers),
        nav: Nav::new(&actor, "audit"),
        events: AuditEvent::ALL
            .into_iter()
            .map(|choice| Choice {
                value: choice.as_str(),
                label: choice.label(),
                checked: filters.event == Some(choice),
            })
            .collect(),
        entries: entries
            .into_iter()
            .map(|entry| AuditRow {
                at_iso: entry.at.iso_utc(),
                at: utc_text(entry.at.millis()),
                event: event_label(&entry.event).to_owned(),
                actor: entry.actor.unwrap_or_default(),
                subject: entry.subject.unwrap_or_default(),
                client_ip: entry.client_ip.unwrap_or_default(),
                detail: entry.detail,
            })
            .collect(),
        prev_href: (page_no > 1).then(|| audit_href(&filters, page_no - 1)),
        next_href: has_next.then(|| audit_href(&filters, page_no + 1)),
        page: page_no,
        export_href: filters.export_href(),
        user: filters.user,
        from: filters.from,
        to: filters.to,
        errors: filters.errors,
    };
    render(&state, StatusCode::OK, &view.layout, &view)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_convert_both_ways_in_utc() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(utc_text(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_text(1_800_000_000_000), "2027-01-15 08:00:00 UTC");
        let day = parse_date("2027-01-15").unwrap();
        assert_eq!(utc_text(day), "2027-01-15 00:00:00 UTC");
        assert_eq!(parse_date("2027-13-01"), None);
        assert_eq!(parse_date("soon"), None);
    }

    #[test]
    fn the_export_link_carries_the_page_filters() {
        let filters = Filters::read(&AuditParams {
            user: Some(" jane doe ".to_owned()),
            event: Some("locked".to_owned()),
            from: Some("2027-01-15".to_owned()),
            to: None,
            page: Some(3),
        });
        assert_eq!(
            filters.export_href(),
            "/admin/audit/export?user=jane%20doe&event=locked&from=2027-01-15&to="
        );
        let query = filters.query(0, EXPORT_LIMIT);
        assert_eq!(query.event, Some(AuditEvent::Locked));
        assert_eq!(
            query.since,
            Some(Timestamp::from_millis(parse_date("2027-01-15").unwrap()))
        );
        assert_eq!(query.limit, 500);
    }
}
