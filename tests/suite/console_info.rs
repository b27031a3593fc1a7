//! The console's information (SPEC section 11, the last two bullets): the audit log in
//! plain language with times in the browser's zone (UTC as title), its CSV export, and
//! the console home's "needs attention".

use reqwest::StatusCode;
use twostep::domain::{AuditEvent, PromptMode, Require2fa, SettingKey, Username};
use twostep::store::{NewAuditEntry, NewOutboxMessage};

use crate::admin_pages::sign_in_admin;
use crate::helpers::{require_program, spawn_app, spawn_app_on_postgres, NowTs, TestApp};
use crate::pages::{get, submit};

/// Text that a naive CSV writer or a spreadsheet would get wrong.
const TRICKY_DETAIL: &str = "a, \"quoted\" value\r\nnext line";
const FORMULA: &str = "=HYPERLINK(\"http://evil.example/\",\"click\")";

async fn audit(app: &TestApp, event: AuditEvent, subject: &str, detail: &str) {
    app.store
        .audit(
            &NewAuditEntry {
                event,
                actor: Some("admin".to_owned()),
                subject: Some(subject.to_owned()),
                client_ip: Some("10.1.2.3".to_owned()),
                detail: detail.to_owned(),
            },
            app.clock.now_ts(),
        )
        .await
        .unwrap();
}

/// The page's text between `start` and the next `end`.
fn between<'a>(body: &'a str, start: &str, end: &str) -> &'a str {
    let from = body
        .find(start)
        .unwrap_or_else(|| panic!("{start} in:\n{body}"))
        + start.len();
    let len = body[from..].find(end).unwrap();
    &body[from..from + len]
}

/// SPEC section 11: "The audit log shows plain-language events in the browser's time zone
/// (the UTC time as title)". Without JavaScript the page is complete: labels, and each
/// time as `<time datetime title>` in UTC.
#[tokio::test]
async fn the_audit_page_shows_plain_labels_and_utc_times_in_time_elements() {
    let app = spawn_app().await;
    audit(&app, AuditEvent::Locked, "jane", "").await;
    // A name this version does not know is shown as stored.
    app.store
        .audit(
            &NewAuditEntry {
                event: AuditEvent::OtpSent,
                actor: None,
                subject: Some("bob".to_owned()),
                client_ip: None,
                detail: String::new(),
            },
            app.clock.now_ts(),
        )
        .await
        .unwrap();
    sign_in_admin(&app).await;

    let page = get(&app, "/admin/audit").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.assert_contains("<td>Account locked</td>");
    page.assert_contains("<td>Code sent by email</td>");
    assert!(!page.body.contains("<td>locked</td>"), "{}", page.body);
    // 1_800_000_000_000 ms is 2027-01-15 08:00:00 UTC.
    page.assert_contains(
        r#"<time data-local datetime="2027-01-15T08:00:00Z" title="2027-01-15 08:00:00 UTC">2027-01-15 08:00:00 UTC</time>"#,
    );
    page.assert_contains(r#"<script src="/static/localtime.js" defer></script>"#);
    // The filter offers the labels, by stored name.
    page.assert_contains(r#"<option value="locked">Account locked</option>"#);
    page.assert_contains(r#"<option value="signin_failed">Sign-in failed</option>"#);
    let filtered = get(&app, "/admin/audit?event=locked").await;
    filtered.assert_contains(r#"<option value="locked" selected>Account locked</option>"#);
    assert!(!filtered.body.contains("<td>Code sent by email</td>"));

    // The script is served as a file the CSP allows; no inline script.
    let script = app
        .client
        .get(format!("{}/static/localtime.js", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let csp = script.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(script.text().await.unwrap().contains("Intl.DateTimeFormat"));
    app.stop().await;
}

/// Parses CSV with Python's `csv` module (an independent RFC 4180 reader); the rows as
/// JSON.
fn python_csv_rows(csv: &[u8]) -> Option<Vec<Vec<String>>> {
    let python = require_program("python3", "the python3 package")?;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.csv");
    std::fs::write(&file, csv).unwrap();
    let output = std::process::Command::new(python)
        .args([
            "-c",
            "import csv, json, sys\n\
             with open(sys.argv[1], newline='', encoding='utf-8') as f:\n\
             \x20   print(json.dumps(list(csv.reader(f, strict=True))))",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_slice(&output.stdout).unwrap())
}

/// SPEC section 11: the audit log "exports CSV (`GET /api/v1/audit?format=csv`)": RFC 4180
/// (CRLF, header, quoting) read back by Python's `csv` module to the stored values, with
/// a formula guard; same filters and permission as the JSON answer.
#[tokio::test]
async fn the_csv_export_round_trips_through_pythons_csv_module_and_guards_formulas() {
    let app = spawn_app().await;
    audit(&app, AuditEvent::UserChanged, "jane, doe", TRICKY_DETAIL).await;
    audit(&app, AuditEvent::SettingChanged, FORMULA, "-1 @x").await;
    audit(&app, AuditEvent::Locked, "bob", "").await;
    sign_in_admin(&app).await;

    // The page's link carries the filters.
    let page = get(&app, "/admin/audit?user=jane%2C%20doe").await;
    let href = between(&page.body, r#"<a id="export-csv" href=""#, "\"").replace("&#38;", "&");
    assert_eq!(
        href,
        "/admin/audit/export?user=jane%2C%20doe&event=&from=&to="
    );
    let response = app
        .client
        .get(format!("{}{href}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"audit.csv\""
    );
    let body = response.bytes().await.unwrap();
    let text = std::str::from_utf8(&body).unwrap();
    assert!(
        text.starts_with("id,time_utc,event,event_label,actor,subject,client_ip,detail\r\n"),
        "{text}"
    );
    assert!(text.ends_with("\r\n"));
    let Some(rows) = python_csv_rows(&body) else {
        app.stop().await;
        return;
    };
    assert_eq!(rows.len(), 2, "the header and jane's one entry: {rows:?}");
    assert_eq!(
        rows[1][1..],
        [
            "2027-01-15T08:00:00Z",
            "user_changed",
            "User changed",
            "admin",
            "jane, doe",
            "10.1.2.3",
            TRICKY_DETAIL,
        ]
    );

    // The API with a token gives the same file. Everything, newest first: the formula
    // and the leading minus come back with the apostrophe that keeps a spreadsheet from
    // running them.
    let admin = app
        .store
        .user_by_username(&Username::parse("admin").unwrap())
        .await
        .unwrap()
        .unwrap();
    let token = app.api_token(&admin, "export").await;
    let filtered = app
        .client
        .get(format!(
            "{}/api/v1/audit?format=csv&user=jane%2C%20doe",
            app.address
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        filtered.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    assert_eq!(
        filtered.headers()["content-disposition"],
        "attachment; filename=\"audit.csv\""
    );
    assert_eq!(filtered.bytes().await.unwrap(), body);
    let all = app
        .client
        .get(format!("{}/api/v1/audit?format=csv", app.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let rows = python_csv_rows(&all).unwrap();
    let setting = rows
        .iter()
        .find(|row| row[2] == "setting_changed")
        .expect("the setting entry");
    assert_eq!(setting[5], format!("'{FORMULA}"));
    assert_eq!(setting[7], "'-1 @x");
    assert!(rows
        .iter()
        .any(|row| row[2] == "locked" && row[3] == "Account locked"));

    // The JSON answer is unchanged, and an unknown format has a stable code.
    let (status, json) = app
        .get_json("/api/v1/audit?format=json&event=locked", Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["entries"].as_array().unwrap().len(), 1);
    let (status, json) = app
        .get_json("/api/v1/audit?format=xlsx", Some(&token))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json["code"], "unknown_format");
    let (status, json) = app
        .get_json("/api/v1/audit?format=csv&event=nope", Some(&token))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json["code"], "invalid_field");
    // The console's export refuses a bad date with a page, not a file.
    let bad = get(&app, "/admin/audit/export?from=soon").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    bad.assert_contains("Enter a date as YYYY-MM-DD.");
    app.stop().await;
}

/// The OpenAPI document describes the export: the `format` parameter and both answers.
#[tokio::test]
async fn the_openapi_document_describes_the_csv_export() {
    let app = spawn_app().await;
    let (status, doc) = app.get_json("/api/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let get = &doc["paths"]["/api/v1/audit"]["get"];
    let format = get["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|parameter| parameter["name"] == "format")
        .expect("the format parameter");
    assert!(format["description"].as_str().unwrap().contains("csv"));
    let content = &get["responses"]["200"]["content"];
    assert!(content["application/json"].is_object(), "{content}");
    assert!(content["text/csv"].is_object(), "{content}");
    let unprocessable = get["responses"]["422"]["description"].as_str().unwrap();
    assert!(unprocessable.contains("unknown_format"), "{unprocessable}");
    app.stop().await;
}

/// SPEC section 11: the export needs View Audit Log like the JSON answer, on the API and
/// in the console.
#[tokio::test]
async fn the_csv_export_needs_view_audit_log() {
    let app = spawn_app().await;
    let role = app.role("Clerks", Require2fa::No, false, false).await;
    let clerk = app.user("clerk", &role, true).await;
    let token = app.api_token(&clerk, "export").await;
    let response = app
        .client
        .get(format!("{}/api/v1/audit?format=csv", app.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let json: serde_json::Value = response.json().await.unwrap();
    assert_eq!(json["code"], "forbidden");
    let anonymous = reqwest::Client::new()
        .get(format!("{}/api/v1/audit?format=csv", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let page = crate::pages::sign_in(&app, "clerk", &TestApp::password_of("clerk")).await;
    assert_eq!(page.location(), "/");
    let export = get(&app, "/admin/audit/export").await;
    assert_eq!(export.status, StatusCode::FORBIDDEN);
    assert!(!export.body.contains("time_utc"));
    app.stop().await;
}

async fn fail_password(app: &TestApp, username: &str) {
    let (status, _) = app
        .post(
            "/api/v1/signin",
            serde_json::json!({ "username": username, "password": "wrong password" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// SPEC section 11: "The console home shows what needs attention: locked users, users of
/// Force roles without a device, emails not delivered", each linked to where it is fixed,
/// and says all is well when nothing is left.
#[tokio::test]
async fn the_console_home_lists_what_needs_attention_until_it_is_fixed() {
    let app = spawn_app().await;
    needs_attention_until_fixed(&app).await;
    app.stop().await;
}

/// The same on PostgreSQL (the store's reads are written once for both engines).
#[tokio::test]
async fn the_console_home_lists_what_needs_attention_on_postgresql() {
    let Some((db, app)) = spawn_app_on_postgres().await else {
        return;
    };
    needs_attention_until_fixed(&app).await;
    app.stop().await;
    db.finish().await;
}

async fn needs_attention_until_fixed(app: &TestApp) {
    sign_in_admin(app).await;
    let home = get(app, "/admin").await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    home.assert_contains(r#"data-page="admin-home""#);
    home.assert_contains(r#"<a href="/admin" aria-current="page">Needs attention</a>"#);
    home.assert_contains(r#"id="all-well""#);
    home.assert_contains("All is well");

    // A locked account, a Force user without a device, an email not delivered.
    app.settings(&[(SettingKey::LockoutThreshold, "2")]).await;
    let nurses = app.role("Nurses", Require2fa::Force, false, false).await;
    let jane = app.user("jane", &nurses, true).await;
    let doctors = app
        .role("Doctors", Require2fa::Encourage, false, false)
        .await;
    app.user("bob", &doctors, true).await;
    app.user("mallory", &doctors, true).await;
    fail_password(app, "mallory").await;
    fail_password(app, "mallory").await;
    let queued = app.clock.now_ts().plus_seconds(3600);
    let id = app
        .store
        .enqueue(
            &NewOutboxMessage {
                message_id: "<dead@test>".to_owned(),
                from: "twostep@example.org".to_owned(),
                to: "bob@example.org".to_owned(),
                payload: b"Subject: code".to_vec(),
                expires_at: queued.plus_seconds(300),
            },
            // Not due before the clock gets there: the worker leaves it alone.
            queued,
        )
        .await
        .unwrap();
    app.store
        .outbox_dead(id, "550 mailbox unavailable")
        .await
        .unwrap();

    let home = get(app, "/admin").await;
    assert!(!home.body.contains("all-well"), "{}", home.body);
    let locked = between(&home.body, r#"<section id="locked""#, "</section>");
    assert!(locked.contains(r#"<a href="/admin/users/mallory">mallory</a>: locked until <time data-local datetime=""#), "{locked}");
    assert!(!locked.contains("jane"));
    let without = between(&home.body, r#"<section id="without-device""#, "</section>");
    assert!(
        without
            .contains(r#"<a href="/admin/users/jane/2fa/setup">jane</a> (role Nurses): no device"#),
        "{without}"
    );
    // Encourage is not Force; the administrator's role is not Force either.
    assert!(
        !without.contains(">bob<") && !without.contains(">admin<"),
        "{without}"
    );
    let undelivered = between(&home.body, r#"<section id="undelivered""#, "</section>");
    assert!(undelivered.contains("last 7 days"), "{undelivered}");
    assert!(
        undelivered.contains(r#"To bob@example.org (<a href="/admin/users/bob">bob</a>)"#),
        "{undelivered}"
    );
    assert!(undelivered.contains("550 mailbox unavailable"));

    // Fixed: unlocked in the console, jane's device set up, the email a week old.
    let unlocked = submit(
        app,
        "/admin/users/mallory",
        "/admin/users/mallory/unlock",
        &[],
    )
    .await;
    assert_eq!(unlocked.status, StatusCode::SEE_OTHER, "{}", unlocked.body);
    let home = get(app, "/admin").await;
    assert!(!home.body.contains(r#"id="locked""#), "{}", home.body);
    app.enroll_totp(&jane, PromptMode::EveryLogin).await;
    let home = get(app, "/admin").await;
    assert!(
        !home.body.contains(r#"id="without-device""#),
        "{}",
        home.body
    );
    home.assert_contains(r#"id="undelivered""#);
    app.clock.advance_seconds(8 * 86_400);
    // The session has idled out by now: sign in again.
    sign_in_admin(app).await;
    let home = get(app, "/admin").await;
    home.assert_contains(r#"id="all-well""#);
}

/// A role without Manage Users has no "needs attention" list: `/admin` sends it to its
/// first section, and the service refuses the list.
#[tokio::test]
async fn without_manage_users_the_console_home_goes_to_the_first_allowed_section() {
    let app = spawn_app().await;
    let auditor = app
        .store
        .create_role(
            &twostep::domain::RoleName::parse("Auditors").unwrap(),
            twostep::domain::RoleSecurity::new(Require2fa::No, false, false).unwrap(),
            &[twostep::domain::Permission::ViewAuditLog]
                .into_iter()
                .collect(),
            twostep::domain::SessionLimits::DEFAULT,
            app.clock.now_ts(),
        )
        .await
        .unwrap();
    app.user("audrey", &auditor, true).await;
    let page = crate::pages::sign_in(&app, "audrey", &TestApp::password_of("audrey")).await;
    assert_eq!(page.location(), "/");
    let home = get(&app, "/admin").await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.location(), "/admin/audit");
    let audit = get(&app, "/admin/audit").await;
    assert!(!audit.body.contains("Needs attention"), "{}", audit.body);
    app.stop().await;
}
