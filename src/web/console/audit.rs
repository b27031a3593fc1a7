//! Audit Log (SPEC section 7): what was recorded, filtered by user, event and dates (UTC),
//! a page at a time. Needs View Audit Log (SPEC section 6), checked by
//! [`Admin`](crate::service::admin::Admin).

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::{actor, fail, render, segment, Choice, FieldErrors, Nav};
use crate::clock::Timestamp;
use crate::domain::AuditEvent;
use crate::store::AuditQuery;
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
    pub errors: FieldErrors,
}

pub struct AuditRow {
    pub at: String,
    pub event: String,
    pub actor: String,
    pub subject: String,
    pub client_ip: String,
    pub detail: String,
}

const AUDIT_PER_PAGE: u32 = 50;
const DAY_MILLIS: i64 = 86_400_000;

#[derive(Deserialize, Default)]
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

/// The date of a day number since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
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
    let days = millis.div_euclid(DAY_MILLIS);
    let seconds = millis.rem_euclid(DAY_MILLIS) / 1000;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

fn audit_href(user: &str, event: &str, from: &str, to: &str, page: u32) -> String {
    format!(
        "/admin/audit?user={}&event={}&from={}&to={}&page={page}",
        segment(user),
        segment(event),
        segment(from),
        segment(to)
    )
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
    let user = params.user.unwrap_or_default().trim().to_owned();
    let event_text = params.event.unwrap_or_default();
    let from = params.from.unwrap_or_default();
    let to = params.to.unwrap_or_default();
    let page_no = params.page.unwrap_or(1).max(1);
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
    let query = AuditQuery {
        user: (!user.is_empty()).then(|| user.clone()),
        event,
        since,
        until,
        offset: (page_no - 1).saturating_mul(AUDIT_PER_PAGE),
        // One more than shown: whether there is a next page.
        limit: AUDIT_PER_PAGE + 1,
    };
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
                label: choice.as_str(),
                checked: event == Some(choice),
            })
            .collect(),
        entries: entries
            .into_iter()
            .map(|entry| AuditRow {
                at: utc_text(entry.at.millis()),
                event: entry.event,
                actor: entry.actor.unwrap_or_default(),
                subject: entry.subject.unwrap_or_default(),
                client_ip: entry.client_ip.unwrap_or_default(),
                detail: entry.detail,
            })
            .collect(),
        prev_href: (page_no > 1).then(|| audit_href(&user, &event_text, &from, &to, page_no - 1)),
        next_href: has_next.then(|| audit_href(&user, &event_text, &from, &to, page_no + 1)),
        page: page_no,
        user,
        from,
        to,
        errors,
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
}
