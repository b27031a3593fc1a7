//! Recovery codes (SPEC section 10): 10 per set, shown once as `xxxxx-xxxxx`, stored as
//! keyed hashes, accepted once where a device code is asked (even under racing requests),
//! a wrong one a counted failure, `recovery_codes_left` in the answer; a first set when
//! enrollment completes at sign-in; administrators see how many are left and revoke them.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::Barrier;
use twostep::domain::{
    AuditEvent, DeviceOtp, PromptMode, RecoveryCode, Require2fa, SettingKey, User, Username,
};
use twostep::service::recovery;
use twostep::store::AuditQuery;

use crate::admin_api::{admin, call};
use crate::admin_pages::sign_in_admin;
use crate::helpers::{spawn_app, spawn_app_on_postgres, TestApp};
use crate::pages::{get, sign_in, submit};

/// A user whose role forces 2FA, with a confirmed TOTP device and a set of recovery codes.
async fn user_with_codes(app: &TestApp, name: &str) -> (User, Vec<RecoveryCode>) {
    let role = app
        .role("Clinicians", Require2fa::Force, false, false)
        .await;
    let user = app.user(name, &role, true).await;
    app.enroll_totp(&user, PromptMode::EveryLogin).await;
    let codes = recovery::generate_set(&app.ctx, &user, "test", None)
        .await
        .unwrap();
    (user, codes)
}

/// The password step over the API: the transaction of the device-code step.
async fn code_step(app: &TestApp, name: &str) -> String {
    code_step_of(app, name, "device").await
}

/// The password step over the API: the transaction of the code step, whose `method` is
/// `device` or `email`.
pub(crate) async fn code_step_of(app: &TestApp, name: &str, method: &str) -> String {
    let (status, body) = app
        .post(
            "/api/v1/signin",
            json!({"username": name, "password": TestApp::password_of(name)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "otp_required", "{body}");
    assert_eq!(body["method"], method, "{body}");
    body["transaction"].as_str().unwrap().to_owned()
}

pub(crate) async fn submit_code(
    app: &TestApp,
    transaction: &str,
    code: &str,
) -> (StatusCode, Value) {
    app.post(
        "/api/v1/signin/otp",
        json!({"transaction": transaction, "code": code}),
    )
    .await
}

/// A sign-in of `name` with `code` at the device-code step.
pub(crate) async fn sign_in_with_code(
    app: &TestApp,
    name: &str,
    code: &str,
) -> (StatusCode, Value) {
    let transaction = code_step(app, name).await;
    submit_code(app, &transaction, code).await
}

#[track_caller]
pub(crate) fn assert_generic_refusal(answer: &(StatusCode, Value)) {
    assert_eq!(answer.0, StatusCode::UNAUTHORIZED, "{}", answer.1);
    assert_eq!(answer.1["code"], "invalid_credentials", "{}", answer.1);
}

pub(crate) async fn user_row(app: &TestApp, name: &str) -> User {
    app.store
        .user_by_username(&Username::parse(name).unwrap())
        .await
        .unwrap()
        .unwrap()
}

pub(crate) async fn entries(
    app: &TestApp,
    name: &str,
    event: AuditEvent,
) -> Vec<twostep::domain::AuditEntry> {
    app.store
        .audit_entries(&AuditQuery {
            user: Some(name.to_owned()),
            event: Some(event),
            limit: 1000,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
}

// ----- 32 racing submissions of one code: exactly one success -----

/// `code` submitted at each of the code steps `transactions` at once (released together
/// by a barrier): every answer.
pub(crate) async fn race_submissions(
    app: &TestApp,
    transactions: Vec<String>,
    code: &str,
) -> Vec<(StatusCode, Value)> {
    let barrier = Arc::new(Barrier::new(transactions.len()));
    let mut racing = Vec::new();
    for transaction in transactions {
        let barrier = barrier.clone();
        let client = app.client.clone();
        let url = format!("{}/api/v1/signin/otp", app.address);
        let code = code.to_owned();
        racing.push(tokio::spawn(async move {
            barrier.wait().await;
            let response = client
                .post(url)
                .json(&json!({"transaction": transaction, "code": code}))
                .send()
                .await
                .unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }));
    }
    let mut answers = Vec::new();
    for task in racing {
        answers.push(task.await.unwrap());
    }
    answers
}

async fn racing_submissions_of_one_code(app: &TestApp) {
    // Lockout Threshold raised so that 31 failures do not lock the account.
    app.settings(&[(SettingKey::LockoutThreshold, "100")]).await;
    let (_user, codes) = user_with_codes(app, "rhea").await;
    let mut transactions = Vec::new();
    for _ in 0..32 {
        transactions.push(code_step(app, "rhea").await);
    }
    let code = codes[0].reveal();
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
    assert_eq!(refused, 31);
    assert_eq!(signed_in[0]["status"], "signed_in");
    assert_eq!(signed_in[0]["recovery_codes_left"], 9);
    assert!(signed_in[0].get("recovery_codes").is_none());
    let user = user_row(app, "rhea").await;
    assert_eq!(app.store.recovery_codes_left(user.id).await.unwrap(), 9);
    assert_eq!(
        entries(app, "rhea", AuditEvent::RecoveryCodeUsed)
            .await
            .len(),
        1
    );
    assert_eq!(entries(app, "rhea", AuditEvent::OtpRefused).await.len(), 31);
}

/// SPEC 10: "accepted once, even under racing requests" (SQLite, group commit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_racing_submissions_of_one_recovery_code_sign_in_once_on_sqlite() {
    let app = spawn_app().await;
    racing_submissions_of_one_code(&app).await;
    app.stop().await;
}

/// SPEC 10: "accepted once, even under racing requests" (PostgreSQL, one statement).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_racing_submissions_of_one_recovery_code_sign_in_once_on_postgresql() {
    let Some((db, app)) = spawn_app_on_postgres().await else {
        return;
    };
    racing_submissions_of_one_code(&app).await;
    app.stop().await;
    db.finish().await;
}

// ----- used, older set, another user's: refused and counted -----

async fn used_older_and_other_users_codes_are_refused(app: &TestApp) {
    let (rhea, first_set) = user_with_codes(app, "rhea").await;
    let (_, sams_codes) = user_with_codes(app, "sam").await;

    // A good code signs in, and the answer says how many are left.
    let (status, body) = sign_in_with_code(app, "rhea", &first_set[0].reveal()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "signed_in");
    assert_eq!(body["recovery_codes_left"], 9);
    assert!(body["session"].as_str().is_some());
    // Typed in upper case, without the hyphen, it still counts as that code.
    let typed = first_set[1].as_str().to_uppercase();
    let (status, body) = sign_in_with_code(app, "rhea", &typed).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["recovery_codes_left"], 8);
    assert_eq!(user_row(app, "rhea").await.failed_count, 0);

    // A used code: refused with the generic answer, and counted.
    assert_generic_refusal(&sign_in_with_code(app, "rhea", &first_set[0].reveal()).await);
    assert_eq!(user_row(app, "rhea").await.failed_count, 1);

    // A code of an older set: refused and counted.
    let second_set = recovery::generate_set(&app.ctx, &rhea, "test", None)
        .await
        .unwrap();
    assert_eq!(app.store.recovery_codes_left(rhea.id).await.unwrap(), 10);
    assert_generic_refusal(&sign_in_with_code(app, "rhea", &first_set[5].reveal()).await);
    assert_eq!(user_row(app, "rhea").await.failed_count, 2);

    // Another user's code: refused and counted; it still works for its owner.
    assert_generic_refusal(&sign_in_with_code(app, "rhea", &sams_codes[0].reveal()).await);
    assert_eq!(user_row(app, "rhea").await.failed_count, 3);
    let refusals = entries(app, "rhea", AuditEvent::OtpRefused).await;
    assert_eq!(refusals.len(), 3);
    assert!(refusals
        .iter()
        .all(|entry| entry.detail == "wrong or used recovery code"));
    let (status, body) = sign_in_with_code(app, "sam", &sams_codes[0].reveal()).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A code of the new set works, and resets the count.
    let (status, body) = sign_in_with_code(app, "rhea", &second_set[9].reveal()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["recovery_codes_left"], 9);
    assert_eq!(user_row(app, "rhea").await.failed_count, 0);
    let used = entries(app, "rhea", AuditEvent::RecoveryCodeUsed).await;
    assert_eq!(used.len(), 3);
    assert_eq!(used[0].detail, "recovery code");

    // A device code still works at the same step, and its answer has no count.
    let totp = match app
        .store
        .confirmed_device(rhea.id)
        .await
        .unwrap()
        .unwrap()
        .otp
    {
        DeviceOtp::Totp { totp, .. } => totp,
        DeviceOtp::Hotp { .. } => unreachable!(),
    };
    let (status, body) = sign_in_with_code(app, "rhea", &app.totp_now(&totp)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("recovery_codes_left").is_none(), "{body}");

    // No audit entry holds a code.
    let all = app
        .store
        .audit_entries(&AuditQuery {
            limit: 10_000,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    for code in first_set.iter().chain(&second_set).chain(&sams_codes) {
        for entry in &all {
            assert!(!entry.detail.contains(code.as_str()));
            assert!(!entry.detail.contains(&code.reveal()));
        }
    }
}

/// SPEC 10: "a wrong one is a failed sign-in" (SQLite).
#[tokio::test]
async fn used_older_set_and_other_users_recovery_codes_are_refused_and_counted_on_sqlite() {
    let app = spawn_app().await;
    used_older_and_other_users_codes_are_refused(&app).await;
    app.stop().await;
}

/// SPEC 10: "a wrong one is a failed sign-in" (PostgreSQL).
#[tokio::test]
async fn used_older_set_and_other_users_recovery_codes_are_refused_and_counted_on_postgresql() {
    let Some((db, app)) = spawn_app_on_postgres().await else {
        return;
    };
    used_older_and_other_users_codes_are_refused(&app).await;
    // SPEC 10: stored as keyed hashes: the rows hold 32-byte hashes, no code.
    assert_eq!(
        db.raw_count("SELECT COUNT(*) FROM recovery_codes WHERE octet_length(code_hash) = 32")
            .await,
        db.raw_count("SELECT COUNT(*) FROM recovery_codes").await
    );
    app.stop().await;
    db.finish().await;
}

/// SPEC 10: "stored as keyed hashes": no file of the SQLite database holds a code, in
/// either form.
#[tokio::test]
async fn the_stored_rows_hold_no_plaintext_code() {
    let app = spawn_app().await;
    let (user, codes) = user_with_codes(&app, "rhea").await;
    let (status, _) = sign_in_with_code(&app, "rhea", &codes[3].reveal()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.store.recovery_codes_left(user.id).await.unwrap(), 9);
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(app.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            stored.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(stored.len() > 4096);
    for code in &codes {
        for form in [code.as_str().to_owned(), code.reveal()] {
            assert!(
                !stored.windows(form.len()).any(|w| w == form.as_bytes()),
                "a code is stored in plain text"
            );
        }
    }
    app.stop().await;
}

// ----- enrollment at sign-in: the first set, once -----

/// SPEC 10: "Enrollment that completes at sign-in shows a first set of codes once" (API).
#[tokio::test]
async fn enrollment_at_sign_in_answers_a_first_set_of_ten_codes_once() {
    let app = spawn_app().await;
    let role = app.role("Nurses", Require2fa::Force, false, false).await;
    let user = app.user("jane", &role, true).await;
    let (_, body) = app
        .post(
            "/api/v1/signin",
            json!({"username": "jane", "password": TestApp::password_of("jane")}),
        )
        .await;
    assert_eq!(body["status"], "enroll", "{body}");
    let transaction = body["transaction"].as_str().unwrap().to_owned();
    let (status, body) = app
        .post(
            "/api/v1/signin/enroll",
            json!({"transaction": transaction, "method": "totp", "prompt_mode": "every_login"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let totp = pending_totp(&app, &user).await;
    let (status, body) = app
        .post(
            "/api/v1/signin/enroll/confirm",
            json!({"transaction": transaction, "code": app.totp_now(&totp)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "signed_in");
    let codes: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    for code in &codes {
        assert_eq!(code.len(), 11);
        assert_eq!(&code[5..6], "-");
        assert!(RecoveryCode::parse(code).is_ok());
    }
    assert_eq!(app.store.recovery_codes_left(user.id).await.unwrap(), 10);
    assert_eq!(
        entries(&app, "jane", AuditEvent::RecoveryCodesGenerated)
            .await
            .len(),
        1
    );
    // A later sign-in shows no codes; one of them works instead of the device code.
    app.clock.advance_seconds(60);
    let (status, body) = sign_in_with_code(&app, "jane", &codes[4]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["recovery_codes_left"], 9);
    assert!(body.get("recovery_codes").is_none());
    app.stop().await;
}

async fn pending_totp(app: &TestApp, user: &User) -> twostep::otp::Totp {
    match app
        .store
        .pending_device(user.id)
        .await
        .unwrap()
        .unwrap()
        .otp
    {
        DeviceOtp::Totp { totp, .. } => totp,
        DeviceOtp::Hotp { .. } => unreachable!(),
    }
}

/// SPEC 10: the first set on the page, with Download as text, Print and Continue; then
/// "Use a recovery code" on the code page signs in and the signed-in page says how many
/// are left.
#[tokio::test]
async fn the_pages_show_the_first_set_once_and_take_a_recovery_code_instead_of_the_device_code() {
    let app = spawn_app().await;
    let role = app.role("Nurses", Require2fa::Force, false, false).await;
    let user = app.user("jane", &role, true).await;
    let answer = sign_in(&app, "jane", &TestApp::password_of("jane")).await;
    assert_eq!(answer.location(), "/signin/enroll");
    let created = submit(
        &app,
        "/signin/enroll",
        "/signin/enroll",
        &[("method", "totp"), ("prompt_mode", "every_login")],
    )
    .await;
    assert_eq!(created.location(), "/signin/enroll/confirm");
    let totp = pending_totp(&app, &user).await;
    let code = app.totp_now(&totp);
    let shown = submit(
        &app,
        "/signin/enroll/confirm",
        "/signin/enroll/confirm",
        &[("code", &code)],
    )
    .await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    shown.assert_contains("<h1>Save your recovery codes</h1>");
    assert!(shown.cookie("twostep_tx").unwrap().contains("Max-Age=0"));
    let codes: Vec<String> = shown
        .body
        .split("<li><code>")
        .skip(1)
        .map(|rest| rest.split('<').next().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10, "{}", shown.body);
    assert!(codes.iter().all(|code| RecoveryCode::parse(code).is_ok()));
    // Download as text: a data: link holding every code; Print: a script file.
    shown.assert_contains(r#"download="recovery-codes.txt" href="data:text/plain;charset=utf-8,"#);
    for code in &codes {
        shown.assert_contains(&format!("%0D%0A{code}"));
    }
    shown.assert_contains(r#"<script src="/static/print.js" defer></script>"#);
    shown.assert_contains(r#"id="print-codes""#);
    shown.assert_contains(r#"<a class="button primary" id="continue" href="/">Continue</a>"#);
    let csp = shown
        .headers
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(csp.contains("script-src 'self'"));
    let script = app
        .client
        .get(format!("{}/static/print.js", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(script.text().await.unwrap().contains("window.print()"));
    // Continue: the session was set with the codes page.
    get(&app, "/")
        .await
        .assert_contains(r#"<dd id="two-step">Enabled</dd>"#);
    assert!(!get(&app, "/").await.body.contains("recovery-codes-left"));
    let post = app
        .client
        .post(format!("{}/signout", app.address))
        .form(&[("csrf", get(&app, "/").await.csrf())])
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::SEE_OTHER);

    // The code page offers "Use a recovery code", a field without one-time-code.
    app.clock.advance_seconds(60);
    let answer = sign_in(&app, "jane", &TestApp::password_of("jane")).await;
    assert_eq!(answer.location(), "/signin/verify");
    let verify = get(&app, "/signin/verify").await;
    verify.assert_contains("<summary>Use a recovery code</summary>");
    let field_start = verify.body.find(r#"id="recovery-code""#).unwrap();
    let field =
        &verify.body[field_start..field_start + verify.body[field_start..].find('>').unwrap()];
    assert!(!field.contains("one-time-code"), "{field}");
    let wrong = submit(
        &app,
        "/signin/verify",
        "/signin/verify",
        &[("code", "zzzzz-zzzzz")],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(user_row(&app, "jane").await.failed_count, 1);
    let done = submit(
        &app,
        "/signin/verify",
        "/signin/verify",
        &[("code", &codes[2])],
    )
    .await;
    assert_eq!(done.location(), "/?recovery=used");
    let home = get(&app, "/?recovery=used").await;
    home.assert_contains("You have 9 recovery codes left.");
    home.assert_contains(r#"<a href="/account">"#);
    assert_eq!(user_row(&app, "jane").await.failed_count, 0);
    app.stop().await;
}

// ----- administration: how many are left, revoke -----

/// SPEC 10: "admins see how many are left on Edit User and can revoke them" (API).
#[tokio::test]
async fn the_api_shows_how_many_are_left_and_revokes_them() {
    let app = spawn_app().await;
    let (user, codes) = user_with_codes(&app, "rhea").await;
    let token = admin(&app).await;
    let (status, body) = call(&app, Method::GET, "/api/v1/users/rhea", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["recovery_codes_left"], 10);

    let (status, body) = call(
        &app,
        Method::DELETE,
        "/api/v1/users/rhea/recovery-codes",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, body) = call(&app, Method::GET, "/api/v1/users/rhea", Some(&token), None).await;
    assert_eq!(body["recovery_codes_left"], 0);
    assert_eq!(app.store.recovery_codes_left(user.id).await.unwrap(), 0);
    assert_generic_refusal(&sign_in_with_code(&app, "rhea", &codes[0].reveal()).await);
    let revoked = entries(&app, "rhea", AuditEvent::RecoveryCodesRevoked).await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].actor.as_deref(), Some("admin"));

    let (status, body) = call(
        &app,
        Method::DELETE,
        "/api/v1/users/ghost/recovery-codes",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = call(
        &app,
        Method::DELETE,
        "/api/v1/users/rhea/recovery-codes",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, openapi) = app.get_json("/api/v1/openapi.json", None).await;
    assert!(openapi["paths"]["/api/v1/users/{username}/recovery-codes"]["delete"].is_object());

    // An administrator who removes the device removes the codes with it.
    recovery::generate_set(&app.ctx, &user, "test", None)
        .await
        .unwrap();
    let (status, _) = call(
        &app,
        Method::DELETE,
        "/api/v1/users/rhea/device",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.store.recovery_codes_left(user.id).await.unwrap(), 0);
    app.stop().await;
}

/// SPEC 10 on Edit User: "Recovery codes left: N" and "Revoke recovery codes".
#[tokio::test]
async fn edit_user_shows_how_many_are_left_and_revokes_them() {
    let app = spawn_app().await;
    let (user, codes) = user_with_codes(&app, "rhea").await;
    let (status, _) = sign_in_with_code(&app, "rhea", &codes[0].reveal()).await;
    assert_eq!(status, StatusCode::OK);
    sign_in_admin(&app).await;
    let page = get(&app, "/admin/users/rhea").await;
    page.assert_contains("<strong>Recovery codes left:</strong> 9");
    page.assert_contains(r#"action="/admin/users/rhea/recovery-codes/revoke""#);
    page.assert_contains(">Revoke recovery codes</button>");
    let revoked = submit(
        &app,
        "/admin/users/rhea",
        "/admin/users/rhea/recovery-codes/revoke",
        &[],
    )
    .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    let after = get(&app, revoked.location()).await;
    after.assert_contains("<strong>Recovery codes left:</strong> 0");
    after.assert_contains("The recovery codes of rhea were revoked");
    assert!(!after.body.contains(">Revoke recovery codes</button>"));
    assert_eq!(app.store.recovery_codes_left(user.id).await.unwrap(), 0);
    assert_generic_refusal(&sign_in_with_code(&app, "rhea", &codes[1].reveal()).await);
    // Without the CSRF token nothing is revoked.
    recovery::generate_set(&app.ctx, &user, "test", None)
        .await
        .unwrap();
    let forged = app
        .client
        .post(format!(
            "{}/admin/users/rhea/recovery-codes/revoke",
            app.address
        ))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_ne!(forged.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.store.recovery_codes_left(user.id).await.unwrap(), 10);
    app.stop().await;
}

/// SPEC 10 from the command line: `twostep user revoke-recovery-codes USERNAME`.
#[tokio::test]
async fn the_command_line_revokes_a_users_recovery_codes() {
    let app = spawn_app().await;
    let (user, codes) = user_with_codes(&app, "rhea").await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_twostep"))
        .args(["user", "revoke-recovery-codes", "rhea", "--data-dir"])
        .arg(app.dir.path())
        .env_clear()
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "revoked the recovery codes of rhea (10 unused)\n"
    );
    assert_eq!(app.store.recovery_codes_left(user.id).await.unwrap(), 0);
    assert_generic_refusal(&sign_in_with_code(&app, "rhea", &codes[0].reveal()).await);
    let revoked = entries(&app, "rhea", AuditEvent::RecoveryCodesRevoked).await;
    assert_eq!(revoked[0].actor.as_deref(), Some("cli"));
    let unknown = tokio::process::Command::new(env!("CARGO_BIN_EXE_twostep"))
        .args(["user", "revoke-recovery-codes", "ghost", "--data-dir"])
        .arg(app.dir.path())
        .env_clear()
        .output()
        .await
        .unwrap();
    assert_eq!(unknown.status.code(), Some(1), "{unknown:?}");
    app.stop().await;
}

// ----- the store, on both engines -----

/// A user of the bootstrapped Staff role, on a store of `db`.
async fn store_user(store: &twostep::store::Store, name: &str) -> User {
    use twostep::domain::DisplayName;
    let role = store.role_by_name("staff").await.unwrap().unwrap();
    store
        .create_user(
            &twostep::store::NewUser {
                username: Username::parse(name).unwrap(),
                display_name: DisplayName::parse(name).unwrap(),
                email: None,
                role_id: role.id,
                password_hash: "$argon2id$fake".into(),
                must_change_password: false,
            },
            crate::helpers::START,
        )
        .await
        .unwrap()
}

/// SPEC 10 in the store: a set replaces the old one, 64 racing consumes of one code
/// succeed once with one audit entry and the reset, another user's hash never matches,
/// revoke and the user's deletion remove the rows.
async fn the_store_consumes_a_code_once_and_replaces_sets(db: &crate::helpers::TestDb) {
    use twostep::store::NewAuditEntry;
    let store = db.open().await;
    assert!(store
        .bootstrap("$argon2id$fake-admin-hash", true, crate::helpers::START)
        .await
        .unwrap());
    let now = crate::helpers::START;
    let rhea = store_user(&store, "rhea").await;
    let sam = store_user(&store, "sam").await;
    let key = store.key();
    let codes = twostep::domain::generate_set(&mut rand::rngs::OsRng);
    let hashes: Vec<[u8; 32]> = codes
        .iter()
        .map(|code| key.recovery_code_hash(rhea.id, code))
        .collect();
    store
        .replace_recovery_codes(rhea.id, &hashes, &generated(), now)
        .await
        .unwrap();
    assert_eq!(store.recovery_codes_left(rhea.id).await.unwrap(), 10);
    // Failures to be reset by the accepted code.
    for _ in 0..3 {
        store
            .reserve_attempt(rhea.id, now, 100, now.plus_seconds(60))
            .await
            .unwrap();
    }
    assert_eq!(
        store
            .user_by_id(rhea.id)
            .await
            .unwrap()
            .unwrap()
            .failed_count,
        3
    );
    let entry = NewAuditEntry {
        event: AuditEvent::RecoveryCodeUsed,
        actor: None,
        subject: Some("rhea".into()),
        client_ip: Some("192.0.2.1".into()),
        detail: "recovery code".into(),
    };
    let mut racing = Vec::new();
    for _ in 0..64 {
        let store = store.clone();
        let entry = entry.clone();
        let hash = hashes[0];
        racing.push(tokio::spawn(async move {
            store
                .consume_recovery_code(rhea.id, hash, &entry, now)
                .await
                .unwrap()
        }));
    }
    let mut accepted = 0;
    for task in racing {
        accepted += usize::from(task.await.unwrap());
    }
    assert_eq!(accepted, 1);
    assert_eq!(store.recovery_codes_left(rhea.id).await.unwrap(), 9);
    assert_eq!(
        store
            .user_by_id(rhea.id)
            .await
            .unwrap()
            .unwrap()
            .failed_count,
        0
    );
    assert_eq!(
        db.raw_count("SELECT COUNT(*) FROM audit_log WHERE event = 'recovery_code_used'")
            .await,
        1
    );
    // Rhea's hash is not Sam's code; Sam's hash of the same code does not match Rhea's.
    assert!(!store
        .consume_recovery_code(sam.id, hashes[1], &entry, now)
        .await
        .unwrap());
    assert!(!store
        .consume_recovery_code(
            sam.id,
            key.recovery_code_hash(sam.id, &codes[1]),
            &entry,
            now
        )
        .await
        .unwrap());
    // A new set: the old codes are gone.
    let new_codes = twostep::domain::generate_set(&mut rand::rngs::OsRng);
    let new_hashes: Vec<[u8; 32]> = new_codes
        .iter()
        .map(|code| key.recovery_code_hash(rhea.id, code))
        .collect();
    store
        .replace_recovery_codes(rhea.id, &new_hashes, &generated(), now)
        .await
        .unwrap();
    assert!(!store
        .consume_recovery_code(rhea.id, hashes[2], &entry, now)
        .await
        .unwrap());
    assert_eq!(store.recovery_codes_left(rhea.id).await.unwrap(), 10);
    assert_eq!(
        db.raw_count("SELECT COUNT(*) FROM recovery_codes").await,
        10
    );
    // Revoke: every row goes, and the count of unused ones is answered.
    assert!(store
        .consume_recovery_code(rhea.id, new_hashes[0], &entry, now)
        .await
        .unwrap());
    assert_eq!(store.revoke_recovery_codes(rhea.id).await.unwrap(), 9);
    assert_eq!(store.recovery_codes_left(rhea.id).await.unwrap(), 0);
    assert!(!store
        .consume_recovery_code(rhea.id, new_hashes[1], &entry, now)
        .await
        .unwrap());
    // The user's deletion takes the codes along.
    store
        .replace_recovery_codes(rhea.id, &new_hashes, &generated(), now)
        .await
        .unwrap();
    store.delete_user(rhea.id).await.unwrap();
    assert_eq!(db.raw_count("SELECT COUNT(*) FROM recovery_codes").await, 0);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_store_consumes_a_recovery_code_once_and_replaces_sets_on_sqlite() {
    let db = crate::helpers::TestDb::sqlite().await;
    the_store_consumes_a_code_once_and_replaces_sets(&db).await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_store_consumes_a_recovery_code_once_and_replaces_sets_on_postgresql() {
    let Some(db) = crate::helpers::TestDb::postgres().await else {
        return;
    };
    the_store_consumes_a_code_once_and_replaces_sets(&db).await;
    db.finish().await;
}

/// SPEC 10 "a new set replaces the old one", under racing replacements: 8 sets made at
/// once for one user leave exactly one set of 10 codes and 8 audit entries (on PostgreSQL, read committed, a
/// second `DELETE` would miss the rows the first inserted without the user's row lock).
async fn racing_replacements_leave_one_set(db: &crate::helpers::TestDb) {
    let store = std::sync::Arc::new(db.open().await);
    assert!(store
        .bootstrap("$argon2id$fake-admin-hash", true, crate::helpers::START)
        .await
        .unwrap());
    let rhea = store_user(&store, "rhea").await;
    let sets: Vec<Vec<[u8; 32]>> = (0..8)
        .map(|_| {
            twostep::domain::generate_set(&mut rand::rngs::OsRng)
                .iter()
                .map(|code| store.key().recovery_code_hash(rhea.id, code))
                .collect()
        })
        .collect();
    let mut racing = Vec::new();
    for hashes in sets {
        let store = store.clone();
        racing.push(tokio::spawn(async move {
            store
                .replace_recovery_codes(rhea.id, &hashes, &generated(), crate::helpers::START)
                .await
        }));
    }
    for replaced in futures_util::future::join_all(racing).await {
        replaced.unwrap().unwrap();
    }
    assert_eq!(store.recovery_codes_left(rhea.id).await.unwrap(), 10);
    assert_eq!(
        db.raw_count("SELECT COUNT(*) FROM recovery_codes").await,
        10
    );
    // Each set was made with its audit entry, in its transaction.
    assert_eq!(
        db.raw_count("SELECT COUNT(*) FROM audit_log WHERE event = 'recovery_codes_generated'")
            .await,
        8
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_replacements_leave_one_set_on_sqlite() {
    let db = crate::helpers::TestDb::sqlite().await;
    racing_replacements_leave_one_set(&db).await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_replacements_leave_one_set_on_postgresql() {
    let Some(db) = crate::helpers::TestDb::postgres().await else {
        return;
    };
    racing_replacements_leave_one_set(&db).await;
    db.finish().await;
}

/// The audit entry of a set made in the store tests.
fn generated() -> twostep::store::NewAuditEntry {
    twostep::store::NewAuditEntry {
        event: AuditEvent::RecoveryCodesGenerated,
        actor: Some("rhea".into()),
        subject: Some("rhea".into()),
        client_ip: None,
        detail: "10 codes".into(),
    }
}
