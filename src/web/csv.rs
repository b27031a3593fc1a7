//! CSV as RFC 4180 writes it (the audit log's export, SPEC section 11): a header row, CRLF
//! line ends, a field with a comma, quote, CR or LF in quotes with its quotes doubled.
//! A cell that a spreadsheet would read as a formula (it starts with `=`, `+`, `-`, `@`,
//! a tab or a CR) gets a leading `'`, so that opening the file runs nothing (OWASP "CSV
//! injection"). [`write`] is pure: text in, text out. [`audit_export`] is the audit log's
//! export, shared by `GET /api/v1/audit?format=csv` and the console's Export CSV link.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::domain::audit::event_label;
use crate::domain::AuditEntry;

/// The audit export's columns: the time in ISO 8601 UTC, the stored event name and its
/// plain label.
const AUDIT_HEADER: [&str; 8] = [
    "id",
    "time_utc",
    "event",
    "event_label",
    "actor",
    "subject",
    "client_ip",
    "detail",
];

/// The entries as the audit export writes them.
pub fn audit_csv(entries: &[AuditEntry]) -> String {
    write(
        &AUDIT_HEADER,
        entries.iter().map(|entry| {
            [
                entry.id.to_string(),
                entry.at.iso_utc(),
                entry.event.clone(),
                event_label(&entry.event).to_owned(),
                entry.actor.clone().unwrap_or_default(),
                entry.subject.clone().unwrap_or_default(),
                entry.client_ip.clone().unwrap_or_default(),
                entry.detail.clone(),
            ]
        }),
    )
}

/// The entries as the attachment `audit.csv` (`text/csv; charset=utf-8`).
pub fn audit_export(entries: &[AuditEntry]) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"audit.csv\""),
            ),
        ],
        audit_csv(entries),
    )
        .into_response()
}

/// The whole document: `header`, then each row, every line ended by CRLF.
pub fn write<R, C>(header: &[&str], rows: R) -> String
where
    R: IntoIterator<Item = C>,
    C: IntoIterator,
    C::Item: AsRef<str>,
{
    let mut out = String::new();
    line(&mut out, header.iter());
    for row in rows {
        line(&mut out, row);
    }
    out
}

fn line<I>(out: &mut String, cells: I)
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    for (index, cell) in cells.into_iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        push_cell(out, cell.as_ref());
    }
    out.push_str("\r\n");
}

/// One field: guarded against formulas, then quoted if RFC 4180 needs it.
fn push_cell(out: &mut String, cell: &str) {
    let guarded = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quoted = cell.contains([',', '"', '\r', '\n']);
    if quoted {
        out.push('"');
    }
    if guarded {
        out.push('\'');
    }
    if quoted {
        out.push_str(&cell.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(cell);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;

    #[test]
    fn the_audit_export_has_the_header_the_utc_time_the_label_and_guarded_cells() {
        let entry = AuditEntry {
            id: 7,
            at: Timestamp::from_millis(1_800_000_000_000),
            event: "setting_changed".to_owned(),
            actor: Some("admin".to_owned()),
            subject: None,
            client_ip: Some("10.0.0.1".to_owned()),
            detail: "=1+1".to_owned(),
        };
        assert_eq!(
            audit_csv(&[entry]),
            "id,time_utc,event,event_label,actor,subject,client_ip,detail\r\n\
             7,2027-01-15T08:00:00Z,setting_changed,System setting changed,admin,,10.0.0.1,'=1+1\r\n"
        );
    }

    fn one(cell: &str) -> String {
        let mut out = String::new();
        push_cell(&mut out, cell);
        out
    }

    #[test]
    fn plain_fields_stay_as_they_are_and_lines_end_with_crlf() {
        let csv = write(&["a", "b"], [vec!["1", "two words"], vec!["", "x"]]);
        assert_eq!(csv, "a,b\r\n1,two words\r\n,x\r\n");
        assert_eq!(write(&["only"], Vec::<Vec<&str>>::new()), "only\r\n");
    }

    #[test]
    fn fields_with_comma_quote_cr_or_lf_are_quoted_with_quotes_doubled() {
        assert_eq!(one("a,b"), "\"a,b\"");
        assert_eq!(one("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(one("line\nnext"), "\"line\nnext\"");
        assert_eq!(one("line\rnext"), "\"line\rnext\"");
        assert_eq!(one("\""), "\"\"\"\"");
    }

    #[test]
    fn cells_that_would_be_formulas_get_a_leading_apostrophe() {
        assert_eq!(one("=1+1"), "'=1+1");
        assert_eq!(one("+1"), "'+1");
        assert_eq!(one("-1"), "'-1");
        assert_eq!(one("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(one("\tx"), "'\tx");
        assert_eq!(one("\rx"), "\"'\rx\"");
        assert_eq!(
            one("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        // Only the first character counts.
        assert_eq!(one("a=b"), "a=b");
        assert_eq!(one("1-2"), "1-2");
    }
}
