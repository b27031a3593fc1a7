//! Temporary access codes (SPEC section 15): issued by Manage Users with a reason, minutes
//! and uses, shown once, kept as a keyed hash; standing in for the second factor (never
//! the password) once per use even under racing requests, on SQLite and PostgreSQL;
//! expired, revoked, replaced or another user's codes refused with the generic answer and
//! counted; audited with the reason; the user and `security_officer_email` emailed
//! through the outbox over SMTP; listed on Edit User with time and uses left; after a
//! sign-in with one, the user is offered to set up a new device.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use twostep::domain::{
    AuditEvent, PromptMode, Require2fa, SecurityEvent, SettingKey, TemporaryAccessCode, User,
};
use twostep::mail::template::EmailTemplate;
use twostep::store::AuditQuery;

use crate::admin_api::{admin, call};
use crate::admin_pages::sign_in_admin;
use crate::helpers::{
    free_port, spawn_app, spawn_app_on_postgres, spawn_app_with, AppOptions, SmtpSink, TestApp,
};
use crate::pages::{get, sign_in, submit};
use crate::recovery_codes::{
    assert_generic_refusal, code_step_of, entries, race_submissions, sign_in_with_code,
    submit_code, user_row,
};

/// A user whose role forces 2FA, with a confirmed TOTP device (the one they lost).
async fn user_with_device(app: &TestApp, name: &str) -> User {
    let role = app
        .role("Clinicians", Require2fa::Force, false, false)
        .await;
    let user = app.user(name, &role, true).await;
    app.enroll_totp(&user, PromptMode::EveryLogin).await;
    user
}

/// The service desk issues a code over the API: the answer (with `code`).
async fn issue(app: &TestApp, token: &str, name: &str, minutes: u32, uses: u32) -> Value {
    let (status, body) = call(
        app,
        Method::POST,
        &format!("/api/v1/users/{name}/temporary-access"),
        Some(token),
        Some(json!({"minutes": minutes, "uses": uses, "reason": "INC-4711 phone lost"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

fn code_of(issued: &Value) -> String {
    issued["code"].as_str().unwrap().to_owned()
}

async fn code_step(app: &TestApp, name: &str, method: &str) -> String {
    code_step_of(app, name, method).await
}

// ----- 20 racing uses of a one-use code: exactly one success -----

async fn racing_uses_of_a_one_use_code(app: &TestApp) {
    // Lockout Threshold raised so that 19 failures do not lock the account.
    app.settings(&[(SettingKey::LockoutThreshold, "100")]).await;
    let rhea = user_with_device(app, "rhea").await;
    let token = admin(app).await;
    let code = code_of(&issue(app, &token, "rhea", 60, 1).await);
    let mut transactions = Vec::new();
    for _ in 0..20 {
        transactions.push(code_step(app, "rhea", "device").await);
    }
    let mut signed_in = Vec::new();
    let mut refused = 0;
    for (status, body) in race_submissions(app, transactions, &code).await {
        match status {
            StatusCode::OK => signed_in.push(body),
            StatusCode::UNAUTHORIZED => {
                assert_eq!(body["code"], "invalid_credentials", "{body}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(signed_in.len(), 1, "{signed_in:?}");
    assert_eq!(refused, 19);
    assert_eq!(signed_in[0]["status"], "signed_in", "{}", signed_in[0]);
    assert_eq!(signed_in[0]["temporary_access"]["uses_left"], 0);
    assert_eq!(
        signed_in[0]["temporary_access"]["set_up_device"],
        "/account"
    );
    let stored = app.store.temporary_access(rhea.id).await.unwrap().unwrap();
    assert_eq!((stored.uses, stored.uses_left), (1, 0));
    assert_eq!(
        entries(app, "rhea", AuditEvent::TemporaryAccessUsed)
            .await
            .len(),
        1
    );
    assert_eq!(entries(app, "rhea", AuditEvent::OtpRefused).await.len(), 19);
    // The session it opened is a signed-in session of rhea.
    let session = signed_in[0]["session"].as_str().unwrap();
    let (status, me) = call(app, Method::GET, "/api/v1/me", Some(session), None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["username"], "rhea");
}

/// SPEC 15: "single use per use count even under races" (SQLite).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_racing_uses_of_a_one_use_code_sign_in_once_on_sqlite() {
    let app = spawn_app().await;
    racing_uses_of_a_one_use_code(&app).await;
    app.stop().await;
}

/// SPEC 15: "single use per use count even under races" (PostgreSQL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_racing_uses_of_a_one_use_code_sign_in_once_on_postgresql() {
    let Some((db, app)) = spawn_app_on_postgres().await else {
        return;
    };
    racing_uses_of_a_one_use_code(&app).await;
    app.stop().await;
    db.finish().await;
}

// ----- expired, revoked, replaced, another user's: refused and counted -----

/// Submits `code` at rhea's device step and checks the refusal: the generic 401, one
/// more counted failure, and the audit entry naming a temporary access code.
async fn refused_and_counted(app: &TestApp, code: &str) {
    let before = user_row(app, "rhea").await.failed_count;
    let refusals = entries(app, "rhea", AuditEvent::OtpRefused).await.len();
    assert_generic_refusal(&sign_in_with_code(app, "rhea", code).await);
    assert_eq!(user_row(app, "rhea").await.failed_count, before + 1);
    let refused = entries(app, "rhea", AuditEvent::OtpRefused).await;
    assert_eq!(refused.len(), refusals + 1);
    assert_eq!(
        refused[0].detail,
        "wrong, used up, expired or revoked temporary access code"
    );
}

/// SPEC 15: an expired, revoked or other user's code is the generic 401 and counted; a
/// new code replaces the old one; a code with uses left works again, then is used up.
#[tokio::test]
async fn expired_revoked_replaced_and_other_users_codes_are_refused_and_counted() {
    let app = spawn_app().await;
    app.settings(&[(SettingKey::LockoutThreshold, "100")]).await;
    let rhea = user_with_device(&app, "rhea").await;
    user_with_device(&app, "sam").await;
    let token = admin(&app).await;

    // Another user's code.
    let sams = code_of(&issue(&app, &token, "sam", 60, 3).await);
    refused_and_counted(&app, &sams).await;

    // A code of two uses works twice, then is used up.
    let first = code_of(&issue(&app, &token, "rhea", 60, 2).await);
    let (status, body) = sign_in_with_code(&app, "rhea", &first).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["temporary_access"]["uses_left"], 1);
    // A success starts the count again.
    assert_eq!(user_row(&app, "rhea").await.failed_count, 0);
    // Typed as read out over the phone: upper case, spaces.
    let spoken = first.to_uppercase().replace('-', " ");
    let (status, body) = sign_in_with_code(&app, "rhea", &spoken).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["temporary_access"]["uses_left"], 0);
    refused_and_counted(&app, &first).await;

    // Replaced: a new code, and the old one no longer works.
    let old = code_of(&issue(&app, &token, "rhea", 60, 5).await);
    let new = code_of(&issue(&app, &token, "rhea", 60, 5).await);
    refused_and_counted(&app, &old).await;

    // Revoked.
    let (status, body) = call(
        &app,
        Method::DELETE,
        "/api/v1/users/rhea/temporary-access",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    refused_and_counted(&app, &new).await;
    assert!(app.store.temporary_access(rhea.id).await.unwrap().is_none());
    let (status, body) = call(
        &app,
        Method::DELETE,
        "/api/v1/users/rhea/temporary-access",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(
        entries(&app, "rhea", AuditEvent::TemporaryAccessRevoked)
            .await
            .len(),
        1
    );

    // Expired: 10 minutes, then 10 minutes later.
    let short = code_of(&issue(&app, &token, "rhea", 10, 5).await);
    app.clock.advance_seconds(9 * 60 + 59);
    let transaction = code_step(&app, "rhea", "device").await;
    app.clock.advance_seconds(1);
    let before = user_row(&app, "rhea").await.failed_count;
    assert_generic_refusal(&submit_code(&app, &transaction, &short).await);
    assert_eq!(user_row(&app, "rhea").await.failed_count, before + 1);
    let (status, shown) = call(
        &app,
        Method::GET,
        "/api/v1/users/rhea/temporary-access",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["live"], false, "{shown}");
    assert_eq!(shown["uses_left"], 5, "{shown}");
    app.stop().await;
}

/// SPEC 15: the code stands in for the second factor, never for the password: as the
/// password it is refused (and not used up); with a wrong password there is no code step.
#[tokio::test]
async fn the_password_is_still_required() {
    let app = spawn_app().await;
    let rhea = user_with_device(&app, "rhea").await;
    let token = admin(&app).await;
    let code = code_of(&issue(&app, &token, "rhea", 60, 1).await);
    for password in [code.clone(), code.replace('-', "")] {
        let (status, body) = app
            .post(
                "/api/v1/signin",
                json!({"username": "rhea", "password": password}),
            )
            .await;
        assert_generic_refusal(&(status, body));
    }
    let (status, body) = app
        .post(
            "/api/v1/signin",
            json!({"username": "rhea", "password": "not rhea's password at all"}),
        )
        .await;
    assert_generic_refusal(&(status, body));
    let stored = app.store.temporary_access(rhea.id).await.unwrap().unwrap();
    assert_eq!(stored.uses_left, 1, "a password step never uses the code");
    // With the password, the code signs in.
    let (status, body) = sign_in_with_code(&app, "rhea", &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.stop().await;
}

/// SPEC 15: it stands in for an emailed code too (a role with OTP Required and no
/// device), and a sign-in that still has to set up a device goes on to set-up.
#[tokio::test]
async fn it_stands_in_for_the_emailed_code() {
    let app = spawn_app().await;
    let role = app.role("Night", Require2fa::No, true, false).await;
    app.user("ona", &role, true).await;
    let token = admin(&app).await;
    let code = code_of(&issue(&app, &token, "ona", 30, 1).await);
    let transaction = code_step(&app, "ona", "email").await;
    let (status, body) = submit_code(&app, &transaction, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "signed_in", "{body}");
    assert_eq!(body["temporary_access"]["uses_left"], 0, "{body}");
}

/// SPEC 15: minutes 1..1440, uses 1..10, a reason; bad input is a 400 naming the field
/// and stores nothing; an interface user is refused; it needs Manage Users; the code is
/// in the 201 answer only, never in the stored record or the audit log.
#[tokio::test]
async fn issuing_validates_its_input_and_shows_the_code_once() {
    let app = spawn_app().await;
    let rhea = user_with_device(&app, "rhea").await;
    let token = admin(&app).await;
    let path = "/api/v1/users/rhea/temporary-access";
    for (body, field) in [
        (json!({"minutes": 0, "uses": 1, "reason": "x"}), "minutes"),
        (
            json!({"minutes": 1441, "uses": 1, "reason": "x"}),
            "minutes",
        ),
        (json!({"minutes": 60, "uses": 0, "reason": "x"}), "uses"),
        (json!({"minutes": 60, "uses": 11, "reason": "x"}), "uses"),
        (json!({"minutes": 60, "uses": 1, "reason": "  "}), "reason"),
        (
            json!({"minutes": 60, "uses": 1, "reason": "r".repeat(201)}),
            "reason",
        ),
    ] {
        let (status, answer) = call(&app, Method::POST, path, Some(&token), Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["code"], "invalid_field", "{answer}");
        assert_eq!(answer["field"], field, "{answer}");
    }
    for body in [
        json!({"minutes": "sixty", "uses": 1, "reason": "x"}),
        json!({"minutes": -5, "uses": 1, "reason": "x"}),
        json!({"minutes": 60, "reason": "x"}),
        json!({"minutes": 60, "uses": 1, "reason": "x", "code": "abcd-efgh-1234"}),
    ] {
        let (status, answer) = call(&app, Method::POST, path, Some(&token), Some(body)).await;
        assert!(status.is_client_error(), "{status}: {answer}");
        assert!(
            ["invalid_input", "unknown_field", "invalid_field"]
                .contains(&answer["code"].as_str().unwrap_or_default()),
            "{answer}"
        );
    }
    assert!(app.store.temporary_access(rhea.id).await.unwrap().is_none());
    let (status, _) = call(&app, Method::GET, path, Some(&token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // An interface user has no second factor to stand in for.
    let interface = app.role("Systems", Require2fa::No, false, true).await;
    app.user("ehr-bridge", &interface, false).await;
    let (status, answer) = call(
        &app,
        Method::POST,
        "/api/v1/users/ehr-bridge/temporary-access",
        Some(&token),
        Some(json!({"minutes": 60, "uses": 1, "reason": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["field"], "username", "{answer}");
    // Unknown user; no Manage Users.
    let (status, _) = call(
        &app,
        Method::POST,
        "/api/v1/users/nobody/temporary-access",
        Some(&token),
        Some(json!({"minutes": 60, "uses": 1, "reason": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let auditor = crate::admin_api::signed_in_with(
        &app,
        "auditor",
        &[twostep::domain::Permission::ViewAuditLog],
    )
    .await;
    let (status, answer) = call(
        &app,
        Method::POST,
        path,
        Some(&auditor),
        Some(json!({"minutes": 60, "uses": 1, "reason": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");

    let issued = issue(&app, &token, "rhea", 90, 3).await;
    let code = code_of(&issued);
    assert!(TemporaryAccessCode::parse(&code).is_ok(), "{code}");
    assert_eq!(code.len(), 14, "{code}");
    assert_eq!(
        (issued["uses"].clone(), issued["uses_left"].clone()),
        (json!(3), json!(3))
    );
    let (status, shown) = call(&app, Method::GET, path, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert!(shown.get("code").is_none(), "{shown}");
    assert_eq!(shown["reason"], "INC-4711 phone lost");
    assert_eq!(shown["issued_by"], "admin");
    assert_eq!(shown["live"], true);
    let audited = entries(&app, "rhea", AuditEvent::TemporaryAccessIssued).await;
    assert_eq!(audited.len(), 1);
    assert_eq!(
        audited[0].detail,
        "minutes=90 uses=3 reason=INC-4711 phone lost"
    );
    assert_eq!(audited[0].actor.as_deref(), Some("admin"));
    let canonical = code.replace('-', "");
    let log = app
        .store
        .audit_entries(&AuditQuery {
            limit: 10_000,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(log
        .iter()
        .all(|entry| !entry.detail.contains(&code) && !entry.detail.contains(&canonical)));
    app.stop().await;
}

/// SPEC 15: "the user and `security_officer_email` are emailed": both messages arrive at
/// a real SMTP server, through the outbox, and neither holds the code.
#[tokio::test]
async fn issuing_emails_the_user_and_the_security_officer() {
    let port = free_port();
    let maildir = tempfile::tempdir().unwrap();
    let Some(sink) = SmtpSink::start(port, maildir.path()).await else {
        return;
    };
    let app = spawn_app_with(AppOptions {
        smtp_port: Some(port),
        ..Default::default()
    })
    .await;
    app.settings(&[
        (SettingKey::Autoreply, "mfa@hospital.example"),
        (SettingKey::SecurityOfficerEmail, "ciso@hospital.example"),
    ])
    .await;
    let staff = app.store.role_by_name("Staff").await.unwrap().unwrap();
    app.user("jane", &staff, true).await;
    let token = admin(&app).await;
    let code = code_of(&issue(&app, &token, "jane", 45, 2).await);
    let messages = sink.wait_for(2, 30).await;
    assert_eq!(messages.len(), 2, "{messages:#?}");
    let unfolded: Vec<String> = messages
        .iter()
        .map(|mail| mail.replace("=\r\n", "").replace("\r\n ", " "))
        .collect();
    let to_user: Vec<&String> = unfolded
        .iter()
        .filter(|m| m.contains("X-RcptTo: jane@example.org"))
        .collect();
    let to_officer: Vec<&String> = unfolded
        .iter()
        .filter(|m| m.contains("X-RcptTo: ciso@hospital.example"))
        .collect();
    assert_eq!((to_user.len(), to_officer.len()), (1, 1), "{unfolded:#?}");
    let subject = EmailTemplate::default_security(SecurityEvent::TemporaryAccessIssued)
        .subject
        .replace("@site_name", app.ctx.site_name());
    assert!(to_user[0].contains(&subject), "{}", to_user[0]);
    let officer = to_officer[0];
    assert!(
        officer.contains("temporary access code issued for jane"),
        "{officer}"
    );
    for fact in ["admin issued", "INC-4711 phone lost", "Sign-ins: 2"] {
        assert!(officer.contains(fact), "{fact}: {officer}");
    }
    let canonical = code.replace('-', "");
    for mail in &unfolded {
        assert!(
            !mail.contains(&code) && !mail.contains(&canonical),
            "{mail}"
        );
        assert!(!mail.contains(&code.to_uppercase()), "{mail}");
    }
    // Without a security officer, only the user hears of it.
    app.settings(&[(SettingKey::SecurityOfficerEmail, "")])
        .await;
    issue(&app, &token, "jane", 45, 2).await;
    let messages = sink.wait_for(3, 30).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let messages = if messages.len() < 3 {
        messages
    } else {
        sink.messages()
    };
    assert_eq!(messages.len(), 3, "one more message, to the user only");
    app.stop().await;
}

// ----- the pages: sign in with it, then set up a new device -----

/// SPEC 15: "after a sign-in with a temporary access code the user is offered to set up a
/// new device": the signed-in page says so, and for 15 minutes My account replaces the
/// lost device and makes new recovery codes without asking for a code.
#[tokio::test]
async fn after_signing_in_with_it_the_user_sets_up_a_new_device_without_a_code() {
    let app = spawn_app().await;
    let rhea = user_with_device(&app, "rhea").await;
    let token = admin(&app).await;
    let code = code_of(&issue(&app, &token, "rhea", 60, 2).await);

    let answer = sign_in(&app, "rhea", &TestApp::password_of("rhea")).await;
    assert_eq!(answer.location(), "/signin/verify");
    let verify = get(&app, "/signin/verify").await;
    verify.assert_contains(r#"<details class="secondary-action" id="use-temporary-access">"#);
    verify.assert_contains(r#"<input id="temporary-access-code" name="code""#);
    let done = submit(&app, "/signin/verify", "/signin/verify", &[("code", &code)]).await;
    assert_eq!(done.location(), "/?temporary=used", "{}", done.body);
    let home = get(&app, "/?temporary=used").await;
    home.assert_contains(r#"id="temporary-access-used""#);
    home.assert_contains("It works for 1 more sign-in, until ");
    home.assert_contains(r#"<a class="button" id="set-up-new-device" href="/account">"#);

    let account = get(&app, "/account").await;
    account.assert_contains(r#"id="temporary-access-setup""#);
    assert!(
        !account.body.contains(r#"id="device-code""#),
        "no code asked: {}",
        account.body
    );
    assert!(!account.body.contains(r#"id="recovery-code""#));
    let setup = submit(
        &app,
        "/account",
        "/account/device",
        &[("method", "totp"), ("prompt_mode", "every_login")],
    )
    .await;
    assert_eq!(setup.status, StatusCode::SEE_OTHER, "{}", setup.body);
    assert_eq!(setup.location(), "/account/device/confirm");
    let pending = app.store.pending_device(rhea.id).await.unwrap();
    assert!(pending.is_some(), "a new device waits for its first code");
    let codes = submit(&app, "/account", "/account/recovery-codes", &[]).await;
    assert!(
        codes.status == StatusCode::OK || codes.status == StatusCode::SEE_OTHER,
        "{}: {}",
        codes.status,
        codes.body
    );
    assert_eq!(app.store.recovery_codes_left(rhea.id).await.unwrap(), 10);

    // 15 minutes after the sign-in, the account page asks for a code again.
    app.clock.advance_seconds(15 * 60);
    let account = get(&app, "/account").await;
    assert_eq!(account.status, StatusCode::OK, "{}", account.body);
    assert!(!account.body.contains(r#"id="temporary-access-setup""#));
    account.assert_contains(r#"id="device-code""#);
    let refused = submit(
        &app,
        "/account",
        "/account/device",
        &[("method", "totp"), ("prompt_mode", "every_login")],
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    refused.assert_contains(r#"id="device-error""#);
    let left = app.store.temporary_access(rhea.id).await.unwrap().unwrap();
    assert_eq!(left.uses_left, 1, "the account page used none of it");
    app.stop().await;
}

/// SPEC 15: on Edit User the service desk issues a code (shown once on its own page),
/// sees its time and uses left, gets the form again with its error for a bad value, and
/// revokes it.
#[tokio::test]
async fn edit_user_issues_lists_and_revokes_a_code() {
    let app = spawn_app().await;
    let rhea = user_with_device(&app, "rhea").await;
    sign_in_admin(&app).await;
    let page = get(&app, "/admin/users/rhea").await;
    page.assert_contains(r#"id="temporary-access-none""#);
    page.assert_contains(r#"<form method="post" action="/admin/users/rhea/temporary-access">"#);

    let refused = submit(
        &app,
        "/admin/users/rhea",
        "/admin/users/rhea/temporary-access",
        &[("minutes", "2000"), ("uses", "1"), ("reason", "INC-1")],
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    refused.assert_contains(r#"id="minutes-error""#);
    refused.assert_contains(r#"value="2000""#);
    refused.assert_contains(r#"value="INC-1""#);
    let refused = submit(
        &app,
        "/admin/users/rhea",
        "/admin/users/rhea/temporary-access",
        &[("minutes", "30"), ("uses", "many"), ("reason", "INC-1")],
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    refused.assert_contains(r#"id="uses-error""#);
    assert!(app.store.temporary_access(rhea.id).await.unwrap().is_none());

    let shown = submit(
        &app,
        "/admin/users/rhea",
        "/admin/users/rhea/temporary-access",
        &[
            ("minutes", "30"),
            ("uses", "2"),
            ("reason", "INC-1 phone in the locker"),
        ],
    )
    .await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    let code = shown
        .body
        .split(r#"<code id="temporary-access-code">"#)
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the code is shown")
        .to_owned();
    assert!(TemporaryAccessCode::parse(&code).is_ok(), "{code}");
    shown.assert_contains("It is shown only this once");

    let page = get(&app, "/admin/users/rhea").await;
    assert!(!page.body.contains(&code), "the code is shown only once");
    page.assert_contains("for 2 more sign-ins of 2, for 30 more minutes");
    page.assert_contains("INC-1 phone in the locker");
    app.clock.advance_seconds(10 * 60);
    let page = get(&app, "/admin/users/rhea").await;
    page.assert_contains("for 20 more minutes");

    let revoked = submit(
        &app,
        "/admin/users/rhea",
        "/admin/users/rhea/temporary-access/revoke",
        &[],
    )
    .await;
    assert_eq!(
        revoked.location(),
        "/admin/users/rhea?m=access_revoked",
        "{}",
        revoked.body
    );
    let page = get(&app, "/admin/users/rhea?m=access_revoked").await;
    page.assert_contains("The temporary access code of rhea was revoked");
    page.assert_contains(r#"id="temporary-access-none""#);
    assert!(app.store.temporary_access(rhea.id).await.unwrap().is_none());
    app.stop().await;
}

/// SPEC 15: revoking a code also signs out the sessions it opened (the code may have
/// reached the wrong person); a session signed in with the device stays, and the audit
/// entry says how many ended.
#[tokio::test]
async fn revoking_a_code_ends_the_sessions_it_opened() {
    let app = spawn_app().await;
    let role = app
        .role("Clinicians", Require2fa::Force, false, false)
        .await;
    let rhea = app.user("rhea", &role, true).await;
    let totp = app.enroll_totp(&rhea, PromptMode::EveryLogin).await;
    let token = admin(&app).await;
    let code = code_of(&issue(&app, &token, "rhea", 60, 2).await);
    let mut with_code = Vec::new();
    for _ in 0..2 {
        let (status, body) = sign_in_with_code(&app, "rhea", &code).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        with_code.push(body["session"].as_str().unwrap().to_owned());
    }
    let (status, body) = sign_in_with_code(&app, "rhea", &app.totp_next(&totp)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let with_device = body["session"].as_str().unwrap().to_owned();

    let (status, _) = call(
        &app,
        Method::DELETE,
        "/api/v1/users/rhea/temporary-access",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for session in &with_code {
        let (status, _) = call(&app, Method::GET, "/api/v1/me", Some(session), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, me) = call(&app, Method::GET, "/api/v1/me", Some(&with_device), None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    let revoked = entries(&app, "rhea", AuditEvent::TemporaryAccessRevoked).await;
    assert_eq!(revoked[0].detail, "sessions ended: 2");
    app.stop().await;
}
