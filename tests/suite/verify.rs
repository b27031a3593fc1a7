//! The second-factor check for other systems through real HTTP (SPEC sections 6 and 9):
//! the native `POST /api/v1/verify` and `/api/v1/verify/challenge`, and privacyIDEA's
//! `/validate/check` and `/validate/radiuscheck` in both pass modes. Each test asserts
//! the answers and what they did: the failure count shared with the web sign-in, emails
//! that arrived, audit entries.

use reqwest::StatusCode;
use serde_json::{json, Value};
use twostep::domain::AuditEvent;
use twostep::domain::{
    Permission, PromptMode, Require2fa, RoleName, RoleSecurity, SettingKey, User,
};
use twostep::store::AuditQuery;

use crate::helpers::{
    require_python_module, spawn_app, spawn_app_with, AppOptions, NowTs, TestApp, TestDb,
};

/// A calling system: a user in an interface role that holds `verify_otp`, and its API
/// token.
pub(crate) async fn verifier_token(app: &TestApp) -> String {
    token_with(app, "vpn-gateway", &[Permission::VerifyOtp]).await
}

/// An API token of a new interface user `name` whose role has `permissions`.
async fn token_with(app: &TestApp, name: &str, permissions: &[Permission]) -> String {
    let role = app
        .store
        .create_role(
            &RoleName::parse(&format!("{name} role")).unwrap(),
            RoleSecurity::new(Require2fa::No, false, true).unwrap(),
            &permissions.iter().copied().collect(),
            twostep::domain::SessionLimits::DEFAULT,
            app.clock.now_ts(),
        )
        .await
        .unwrap();
    let user = app.user(name, &role, false).await;
    app.api_token(&user, name).await
}

/// A user whose role forces 2FA, with a confirmed TOTP device.
pub(crate) async fn device_user(app: &TestApp, name: &str) -> (User, twostep::otp::Totp) {
    let role = app
        .role("Clinicians", Require2fa::Force, false, false)
        .await;
    let user = app.user(name, &role, true).await;
    let totp = app.enroll_totp(&user, PromptMode::EveryLogin).await;
    (user, totp)
}

/// A user without a device whose role asks for an emailed code (SPEC row 6).
async fn email_user(app: &TestApp, name: &str, with_email: bool) -> User {
    let role = app.role("Clerks", Require2fa::No, true, false).await;
    app.user(name, &role, with_email).await
}

/// A 6-digit code that is none of the codes `totp` accepts around now.
fn wrong_code(app: &TestApp, totp: &twostep::otp::Totp) -> String {
    let now = app.clock.now_ts().unix_seconds();
    let taken: Vec<String> = [now - 30, now, now + 30]
        .iter()
        .map(|t| totp.generate_at(*t).as_str().to_owned())
        .collect();
    (0..1_000_000u32)
        .map(|n| format!("{n:06}"))
        .find(|code| !taken.contains(code))
        .unwrap()
}

/// POSTs JSON with an optional bearer token.
async fn post_json(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let headers: Vec<(&str, String)> = token
        .map(|t| vec![("authorization", format!("Bearer {t}"))])
        .unwrap_or_default();
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    app.post_with(path, body, &headers).await
}

/// POSTs a form to `/validate/...` with extra headers; the status and the JSON answer
/// (`Null` for an empty body).
pub(crate) async fn validate(
    app: &TestApp,
    path: &str,
    headers: &[(&str, &str)],
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut request = app.client.post(format!("{}{path}", app.address)).form(form);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, json)
}

/// An app whose loopback clients may call `/validate/*` without a token.
async fn app_with_client_network() -> TestApp {
    spawn_app_with(AppOptions {
        validate_clients: vec!["127.0.0.1/32".parse().unwrap()],
        public_url: Some("https://signin.hospital.example".into()),
        ..AppOptions::default()
    })
    .await
}

fn version() -> String {
    format!("twostep {}", env!("CARGO_PKG_VERSION"))
}

pub(crate) fn assert_accept(status: StatusCode, answer: &Value) {
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["result"],
        json!({ "status": true, "value": true, "authentication": "ACCEPT" }),
        "{answer}"
    );
    assert_eq!(answer["jsonrpc"], "2.0");
    assert_eq!(answer["id"], 1);
    assert_eq!(answer["version"], version());
}

pub(crate) fn assert_reject(status: StatusCode, answer: &Value) {
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["result"],
        json!({ "status": true, "value": false, "authentication": "REJECT" }),
        "{answer}"
    );
    assert!(answer["detail"]["message"].is_string(), "{answer}");
}

fn assert_invalid_credentials(status: StatusCode, answer: &Value) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer["code"], "invalid_credentials", "{answer}");
}

async fn audit(app: &TestApp, event: AuditEvent) -> Vec<twostep::domain::AuditEntry> {
    app.store
        .audit_entries(&AuditQuery {
            event: Some(event),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
}

async fn failed_count(app: &TestApp, user: &User) -> u32 {
    app.store
        .user_by_id(user.id)
        .await
        .unwrap()
        .unwrap()
        .failed_count
}

/// The web sign-in of `user` with the right password: is it refused?
async fn web_sign_in_refused(app: &TestApp, user: &User) -> bool {
    let (status, answer) = app
        .post(
            "/api/v1/signin",
            json!({ "username": user.username.as_str(),
                    "password": TestApp::password_of(user.username.as_str()) }),
        )
        .await;
    if status == StatusCode::UNAUTHORIZED {
        assert_eq!(answer["code"], "invalid_credentials", "{answer}");
        true
    } else {
        assert_eq!(status, StatusCode::OK, "{answer}");
        false
    }
}

// ----- native API -----

#[tokio::test]
async fn native_verify_accepts_a_device_code_once_and_refuses_its_replay() {
    let app = spawn_app().await;
    let token = verifier_token(&app).await;
    let (_, totp) = device_user(&app, "jo").await;
    let code = app.totp_now(&totp);

    let (status, answer) = post_json(
        &app,
        "/api/v1/verify",
        Some(&token),
        json!({ "username": "JO", "code": code }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({ "result": "accept" }));

    let (status, answer) = post_json(
        &app,
        "/api/v1/verify",
        Some(&token),
        json!({ "username": "jo", "code": code }),
    )
    .await;
    assert_invalid_credentials(status, &answer);

    // The next time step works again.
    app.clock.advance_seconds(30);
    let (status, _) = post_json(
        &app,
        "/api/v1/verify",
        Some(&token),
        json!({ "username": "jo", "code": app.totp_now(&totp) }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let accepted = audit(&app, AuditEvent::OtpAccepted).await;
    assert_eq!(accepted.len(), 2);
    assert_eq!(accepted[0].actor.as_deref(), Some("vpn-gateway"));
    assert_eq!(accepted[0].subject.as_deref(), Some("jo"));
    assert_eq!(accepted[0].client_ip.as_deref(), Some("127.0.0.1"));
    let refused = audit(&app, AuditEvent::OtpRefused).await;
    assert_eq!(refused.len(), 1);
    // The engine no longer matches a used step: a replay is a wrong code.
    assert!(
        refused[0].detail.starts_with("OTP check: "),
        "{:?}",
        refused[0]
    );
    for entry in accepted.iter().chain(&refused) {
        assert!(!entry.detail.contains(&code), "no code in the audit log");
    }
    app.stop().await;
}

#[tokio::test]
async fn native_verify_gives_one_answer_to_every_failure() {
    let app = spawn_app().await;
    let token = verifier_token(&app).await;
    let (jo, totp) = device_user(&app, "jo").await;
    let no_device = email_user(&app, "sam", true).await;
    let wrong = wrong_code(&app, &totp);
    for body in [
        json!({ "username": "jo", "code": wrong }),
        json!({ "username": "jo", "code": "12ab56" }),
        json!({ "username": "nobody", "code": app.totp_now(&totp) }),
        json!({ "username": "", "code": app.totp_now(&totp) }),
        // No device and no challenge: nothing a code could match.
        json!({ "username": "sam", "code": "123456" }),
        // Someone else's challenge transaction, or none at all.
        json!({ "username": "jo", "code": "123456", "transaction": "x".repeat(43) }),
    ] {
        let (status, answer) = post_json(&app, "/api/v1/verify", Some(&token), body).await;
        assert_invalid_credentials(status, &answer);
        assert_eq!(
            answer["message"],
            "the username, password or code is not correct"
        );
    }
    assert_eq!(failed_count(&app, &jo).await, 3);
    assert_eq!(failed_count(&app, &no_device).await, 1);
    app.stop().await;
}

#[tokio::test]
async fn a_failure_answers_no_sooner_than_the_failure_delay() {
    let app = spawn_app_with(AppOptions {
        keep_failure_delay: true,
        ..AppOptions::default()
    })
    .await;
    let token = verifier_token(&app).await;
    let (_, totp) = device_user(&app, "jo").await;
    let started = tokio::time::Instant::now();
    let (status, _) = post_json(
        &app,
        "/api/v1/verify",
        Some(&token),
        json!({ "username": "jo", "code": wrong_code(&app, &totp) }),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(started.elapsed() >= std::time::Duration::from_millis(500));
    app.stop().await;
}

/// Failures at the check count on the same counter as the web sign-in: they lock it.
async fn lockout_is_shared_with_the_web_sign_in(options: AppOptions) {
    let app = spawn_app_with(options).await;
    app.settings(&[(SettingKey::LockoutThreshold, "3")]).await;
    let token = verifier_token(&app).await;
    let (jo, totp) = device_user(&app, "jo").await;
    let wrong = wrong_code(&app, &totp);
    let check = |code: String| {
        let token = token.clone();
        let app = &app;
        async move {
            post_json(
                app,
                "/api/v1/verify",
                Some(&token),
                json!({ "username": "jo", "code": code }),
            )
            .await
            .0
        }
    };
    // Two failures, then a success: the count starts again.
    assert_eq!(check(wrong.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(check(wrong.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(failed_count(&app, &jo).await, 2);
    assert_eq!(check(app.totp_now(&totp)).await, StatusCode::OK);
    assert_eq!(failed_count(&app, &jo).await, 0);

    // Three failures lock the account: the web sign-in with the right password is
    // refused, and so is the check with the right code.
    for _ in 0..3 {
        assert_eq!(check(wrong.clone()).await, StatusCode::UNAUTHORIZED);
    }
    assert!(web_sign_in_refused(&app, &jo).await);
    app.clock.advance_seconds(30);
    assert_eq!(check(app.totp_now(&totp)).await, StatusCode::UNAUTHORIZED);
    assert_eq!(audit(&app, AuditEvent::Locked).await.len(), 1);

    // Lockout Minutes later both work again.
    app.clock.advance_seconds(30 * 60);
    assert_eq!(check(app.totp_now(&totp)).await, StatusCode::OK);
    assert!(!web_sign_in_refused(&app, &jo).await);
    app.stop().await;
}

#[tokio::test]
async fn failures_at_verify_lock_the_web_sign_in_too() {
    lockout_is_shared_with_the_web_sign_in(AppOptions::default()).await;
}

#[tokio::test]
async fn failures_at_verify_lock_the_web_sign_in_too_on_postgresql() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    lockout_is_shared_with_the_web_sign_in(AppOptions {
        database: Some(db.url.clone()),
        ..AppOptions::default()
    })
    .await;
    db.finish().await;
}

#[tokio::test]
async fn web_sign_in_failures_lock_the_check_too() {
    let app = spawn_app().await;
    app.settings(&[(SettingKey::LockoutThreshold, "2")]).await;
    let token = verifier_token(&app).await;
    let (_, totp) = device_user(&app, "jo").await;
    for _ in 0..2 {
        let (status, _) = app
            .post(
                "/api/v1/signin",
                json!({ "username": "jo", "password": "wrong password 123" }),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, answer) = post_json(
        &app,
        "/api/v1/verify",
        Some(&token),
        json!({ "username": "jo", "code": app.totp_now(&totp) }),
    )
    .await;
    assert_invalid_credentials(status, &answer);
    app.stop().await;
}

/// 32 checks with one code at once, on PostgreSQL: exactly one is accepted.
#[tokio::test]
async fn racing_checks_of_one_code_on_postgresql_accept_it_once() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let app = spawn_app_with(AppOptions {
        database: Some(db.url.clone()),
        ..AppOptions::default()
    })
    .await;
    app.settings(&[(SettingKey::LockoutThreshold, "100")]).await;
    let token = verifier_token(&app).await;
    let (_, totp) = device_user(&app, "jo").await;
    let code = app.totp_now(&totp);
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let client = app.client.clone();
        let url = format!("{}/api/v1/verify", app.address);
        let token = token.clone();
        let code = code.clone();
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "username": "jo", "code": code }))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        let status = task.await.unwrap();
        assert!(
            status == StatusCode::OK || status == StatusCode::UNAUTHORIZED,
            "{status}"
        );
        accepted += usize::from(status == StatusCode::OK);
    }
    assert_eq!(accepted, 1);
    app.stop().await;
    db.finish().await;
}

#[tokio::test]
async fn an_emailed_challenge_then_its_code_is_accepted_once() {
    let app = spawn_app().await;
    let token = verifier_token(&app).await;
    email_user(&app, "sam", true).await;

    let (status, sent) = post_json(
        &app,
        "/api/v1/verify/challenge",
        Some(&token),
        json!({ "username": "Sam" }),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    assert_eq!(sent["sent_to"], "s***@example.org");
    let transaction = sent["transaction"].as_str().unwrap().to_owned();
    let mails = app.mails().await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("sam@example.org"));
    let code = app.last_emailed_code().await;

    // The challenge's token is no sign-in transaction.
    let (status, answer) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": transaction, "code": code }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer["code"], "transaction_expired");

    // Without the transaction the emailed code is nothing.
    let (status, answer) = post_json(
        &app,
        "/api/v1/verify",
        Some(&token),
        json!({ "username": "sam", "code": code }),
    )
    .await;
    assert_invalid_credentials(status, &answer);

    let body = json!({ "username": "sam", "code": code, "transaction": transaction });
    let (status, answer) = post_json(&app, "/api/v1/verify", Some(&token), body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({ "result": "accept" }));
    let (status, answer) = post_json(&app, "/api/v1/verify", Some(&token), body).await;
    assert_invalid_credentials(status, &answer);

    let sent = audit(&app, AuditEvent::OtpSent).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].client_ip.as_deref(), Some("127.0.0.1"));
    app.stop().await;
}

#[tokio::test]
async fn challenges_keep_the_request_delay_and_expire() {
    let app = spawn_app().await;
    let token = verifier_token(&app).await;
    email_user(&app, "sam", true).await;
    let challenge = || {
        post_json(
            &app,
            "/api/v1/verify/challenge",
            Some(&token),
            json!({ "username": "sam" }),
        )
    };

    let (status, first) = challenge().await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let first_code = app.last_emailed_code().await;
    app.clock.advance_seconds(10);
    let (status, answer) = challenge().await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
    assert_eq!(answer["code"], "otp_request_delay");
    assert_eq!(answer["retry_after"], 20);
    assert_eq!(app.mails().await.len(), 1, "nothing sent within the delay");

    // A new code voids the old one.
    app.clock.advance_seconds(20);
    let (status, second) = challenge().await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let second_code = app.last_emailed_code().await;
    assert_eq!(app.mails().await.len(), 2);
    let (status, _) = post_json(
        &app,
        "/api/v1/verify",
        Some(&token),
        json!({ "username": "sam", "code": first_code, "transaction": first["transaction"] }),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // After OTP Valid Seconds (900) the code is expired: refused and counted.
    app.clock.advance_seconds(901);
    let (status, answer) = post_json(
        &app,
        "/api/v1/verify",
        Some(&token),
        json!({ "username": "sam", "code": second_code, "transaction": second["transaction"] }),
    )
    .await;
    assert_invalid_credentials(status, &answer);
    let refused = audit(&app, AuditEvent::OtpRefused).await;
    assert!(refused[0].detail.contains("expired"), "{:?}", refused[0]);
    app.stop().await;
}

#[tokio::test]
async fn a_challenge_needs_a_user_without_a_device_and_with_an_email_address() {
    let app = spawn_app().await;
    let token = verifier_token(&app).await;
    device_user(&app, "jo").await;
    email_user(&app, "nomail", false).await;
    let (status, answer) = post_json(
        &app,
        "/api/v1/verify/challenge",
        Some(&token),
        json!({ "username": "jo" }),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["code"], "device_enrolled");
    let failed = audit(&app, AuditEvent::SignInFailed).await;
    assert!(
        failed[0].detail.contains("authenticator app"),
        "{:?}",
        failed[0]
    );
    let (status, answer) = post_json(
        &app,
        "/api/v1/verify/challenge",
        Some(&token),
        json!({ "username": "nomail" }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["code"], "email_missing");
    let (status, answer) = post_json(
        &app,
        "/api/v1/verify/challenge",
        Some(&token),
        json!({ "username": "nobody" }),
    )
    .await;
    assert_invalid_credentials(status, &answer);
    assert!(app.mails().await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn native_callers_need_an_api_token_with_verify_otp() {
    // Even from a listed client network: the native API always needs a token.
    let app = app_with_client_network().await;
    let (_, totp) = device_user(&app, "jo").await;
    let auditor = token_with(&app, "siem", &[Permission::ViewAuditLog]).await;
    let body = json!({ "username": "jo", "code": app.totp_now(&totp) });
    for path in ["/api/v1/verify", "/api/v1/verify/challenge"] {
        let (status, answer) = post_json(&app, path, None, body.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
        assert_eq!(answer["code"], "unauthenticated");
        let (status, answer) = post_json(&app, path, Some(&"x".repeat(43)), body.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
        assert_eq!(answer["code"], "unauthenticated");
        let (status, answer) = post_json(&app, path, Some(&auditor), body.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
        assert_eq!(answer["code"], "forbidden");
        assert_eq!(answer["permission"], "verify_otp");
    }
    // Nothing was checked: the code still works.
    let token = verifier_token(&app).await;
    let (status, _) = post_json(&app, "/api/v1/verify", Some(&token), body).await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn malformed_native_bodies_get_json_errors() {
    let app = spawn_app().await;
    let token = verifier_token(&app).await;
    let (status, answer) = post_json(
        &app,
        "/api/v1/verify",
        Some(&token),
        json!({ "username": "jo" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["code"], "invalid_input");
    let response = app
        .client
        .post(format!("{}/api/v1/verify", app.address))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("username=jo")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // A huge code is refused like any wrong code, not a crash.
    let (status, answer) = post_json(
        &app,
        "/api/v1/verify",
        Some(&token),
        json!({ "username": "jo", "code": "1".repeat(30_000) }),
    )
    .await;
    assert_invalid_credentials(status, &answer);
    let response = app
        .client
        .post(format!("{}/api/v1/verify", app.address))
        .bearer_auth(&token)
        .json(&json!({ "username": "jo", "code": "1".repeat(200_000) }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    app.stop().await;
}

// ----- privacyIDEA's /validate/check -----

#[tokio::test]
async fn validate_check_accepts_rejects_and_refuses_a_replay() {
    let app = app_with_client_network().await;
    let (_, totp) = device_user(&app, "jo").await;
    let code = app.totp_now(&totp);
    let (status, answer) = validate(
        &app,
        "/validate/check",
        &[],
        &[("user", "jo"), ("realm", "hospital"), ("pass", &code)],
    )
    .await;
    assert_accept(status, &answer);
    let (status, answer) = validate(
        &app,
        "/validate/check",
        &[],
        &[("user", "jo"), ("pass", &code)],
    )
    .await;
    assert_reject(status, &answer);
    assert_eq!(
        answer["detail"]["message"],
        "the username, password or code is not correct"
    );
    let (status, answer) = validate(
        &app,
        "/validate/check",
        &[],
        &[("user", "jo"), ("pass", &wrong_code(&app, &totp))],
    )
    .await;
    assert_reject(status, &answer);

    // The network caller is audited by its address, without an actor.
    let accepted = audit(&app, AuditEvent::OtpAccepted).await;
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].actor, None);
    assert_eq!(accepted[0].client_ip.as_deref(), Some("127.0.0.1"));
    app.stop().await;
}

#[tokio::test]
async fn radiuscheck_answers_204_or_400_with_empty_bodies() {
    let app = app_with_client_network().await;
    let (_, totp) = device_user(&app, "jo").await;
    let code = app.totp_now(&totp);
    let (status, answer) = validate(
        &app,
        "/validate/radiuscheck",
        &[],
        &[("user", "jo"), ("pass", &code)],
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(answer, Value::Null);
    let (status, answer) = validate(
        &app,
        "/validate/radiuscheck",
        &[],
        &[("user", "jo"), ("pass", &code)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer, Value::Null);
    // An emailed challenge is no accept either.
    email_user(&app, "sam", true).await;
    let (status, answer) = validate(
        &app,
        "/validate/radiuscheck",
        &[],
        &[("user", "sam"), ("pass", "")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer, Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn validate_check_takes_json_bodies_too() {
    let app = app_with_client_network().await;
    let (_, totp) = device_user(&app, "jo").await;
    let (status, answer) = app
        .post(
            "/validate/check",
            json!({ "user": "jo", "pass": app.totp_now(&totp), "realm": "" }),
        )
        .await;
    assert_accept(status, &answer);
    app.stop().await;
}

#[tokio::test]
async fn a_validate_caller_of_unknown_address_behind_a_trusted_proxy_needs_a_token() {
    // The proxy is itself in the client network; the hop it forwards is not an address.
    let app = spawn_app_with(AppOptions {
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        validate_clients: vec!["127.0.0.1/32".parse().unwrap()],
        ..AppOptions::default()
    })
    .await;
    let (_, totp) = device_user(&app, "jo").await;
    let code = app.totp_now(&totp);
    let form = [("user", "jo"), ("pass", code.as_str())];
    let (status, answer) =
        validate(&app, "/validate/check", &[("x-forwarded-for", "a")], &form).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer["result"]["error"]["code"], 4033);

    let token = verifier_token(&app).await;
    let (status, answer) = validate(
        &app,
        "/validate/check",
        &[("x-forwarded-for", "a"), ("pi-authorization", &token)],
        &form,
    )
    .await;
    assert_accept(status, &answer);
    let accepted = audit(&app, AuditEvent::OtpAccepted).await;
    assert_eq!(accepted[0].client_ip.as_deref(), Some("unknown"));
    app.stop().await;
}

#[tokio::test]
async fn a_validate_caller_outside_the_client_networks_needs_a_verify_otp_token() {
    // No --validate-client network at all: off by default.
    let app = spawn_app().await;
    let (_, totp) = device_user(&app, "jo").await;
    let form = |code: String| {
        vec![
            ("user".to_owned(), "jo".to_owned()),
            ("pass".to_owned(), code),
        ]
    };
    let send = |headers: Vec<(&'static str, String)>, form: Vec<(String, String)>| {
        let app = &app;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let form: Vec<(&str, &str)> =
                form.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            validate(app, "/validate/check", &headers, &form).await
        }
    };

    let (status, answer) = send(vec![], form(app.totp_now(&totp))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer["result"]["status"], false);
    assert_eq!(answer["result"]["error"]["code"], 4033);
    assert!(answer["result"]["error"]["message"].is_string());
    assert_eq!(answer["jsonrpc"], "2.0");
    assert_eq!(answer["version"], version());
    let (status, answer) = send(
        vec![("authorization", "Bearer not-a-token".to_owned())],
        form(app.totp_now(&totp)),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    let auditor = token_with(&app, "siem", &[Permission::ViewAuditLog]).await;
    let (status, answer) = send(
        vec![("pi-authorization", auditor)],
        form(app.totp_now(&totp)),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["result"]["error"]["code"], 4306);
    // radiuscheck's errors are check's.
    let (status, answer) = validate(
        &app,
        "/validate/radiuscheck",
        &[],
        &[("user", "jo"), ("pass", "1")],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer["result"]["error"]["code"], 4033);
    assert!(
        audit(&app, AuditEvent::OtpRefused).await.is_empty(),
        "nothing was checked"
    );

    // privacyIDEA clients send the token bare in PI-Authorization, or in Authorization.
    let token = verifier_token(&app).await;
    let (status, answer) = send(
        vec![("pi-authorization", token.clone())],
        form(app.totp_now(&totp)),
    )
    .await;
    assert_accept(status, &answer);
    app.clock.advance_seconds(30);
    let (status, answer) = send(
        vec![("authorization", format!("Bearer {token}"))],
        form(app.totp_now(&totp)),
    )
    .await;
    assert_accept(status, &answer);
    let accepted = audit(&app, AuditEvent::OtpAccepted).await;
    assert_eq!(accepted[0].actor.as_deref(), Some("vpn-gateway"));
    app.stop().await;
}

#[tokio::test]
async fn an_empty_pass_starts_an_emailed_challenge_answered_with_its_transaction_id() {
    let app = app_with_client_network().await;
    email_user(&app, "sam", true).await;
    let (status, answer) = validate(
        &app,
        "/validate/check",
        &[],
        &[("user", "sam"), ("pass", "")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["result"],
        json!({ "status": true, "value": false, "authentication": "CHALLENGE" })
    );
    let detail = &answer["detail"];
    let transaction = detail["transaction_id"].as_str().unwrap().to_owned();
    assert_eq!(detail["transaction_ids"], json!([transaction]));
    assert_eq!(
        detail["message"],
        "Enter the code emailed to s***@example.org"
    );
    assert_eq!(detail["multi_challenge"][0]["transaction_id"], transaction);
    assert_eq!(detail["multi_challenge"][0]["client_mode"], "interactive");
    assert_eq!(detail["multi_challenge"][0]["type"], "email");
    assert_eq!(detail["multi_challenge"][0]["message"], detail["message"]);
    let code = app.last_emailed_code().await;

    let (status, answer) = validate(
        &app,
        "/validate/check",
        &[],
        &[
            ("user", "sam"),
            ("pass", &wrong_emailed(&code)),
            ("transaction_id", &transaction),
        ],
    )
    .await;
    assert_reject(status, &answer);
    let (status, answer) = validate(
        &app,
        "/validate/check",
        &[],
        &[
            ("user", "sam"),
            ("pass", &code),
            ("transaction_id", &transaction),
        ],
    )
    .await;
    assert_accept(status, &answer);
    let (status, answer) = validate(
        &app,
        "/validate/check",
        &[],
        &[
            ("user", "sam"),
            ("pass", &code),
            ("transaction_id", &transaction),
        ],
    )
    .await;
    assert_reject(status, &answer);

    // Within the request delay no new code is sent: a reject that says when.
    let (status, answer) = validate(
        &app,
        "/validate/check",
        &[],
        &[("user", "sam"), ("pass", "")],
    )
    .await;
    assert_reject(status, &answer);
    assert!(
        answer["detail"]["message"]
            .as_str()
            .unwrap()
            .contains("seconds"),
        "{answer}"
    );
    assert_eq!(app.mails().await.len(), 1);
    app.stop().await;
}

fn wrong_emailed(code: &str) -> String {
    code.chars()
        .map(|c| {
            if c == '9' {
                '0'
            } else {
                char::from(c as u8 + 1)
            }
        })
        .collect()
}

#[tokio::test]
async fn validate_failures_lock_the_web_sign_in_too() {
    let app = app_with_client_network().await;
    app.settings(&[(SettingKey::LockoutThreshold, "2")]).await;
    let (jo, totp) = device_user(&app, "jo").await;
    for _ in 0..2 {
        let (status, answer) = validate(
            &app,
            "/validate/check",
            &[],
            &[("user", "jo"), ("pass", &wrong_code(&app, &totp))],
        )
        .await;
        assert_reject(status, &answer);
    }
    assert!(web_sign_in_refused(&app, &jo).await);
    let (status, answer) = validate(
        &app,
        "/validate/check",
        &[],
        &[("user", "jo"), ("pass", &app.totp_now(&totp))],
    )
    .await;
    assert_reject(status, &answer);
    app.stop().await;
}

#[tokio::test]
async fn password_otp_mode_applies_the_whole_sign_in_decision() {
    let app = app_with_client_network().await;
    app.settings(&[(SettingKey::ValidatePassMode, "password_otp")])
        .await;
    let check = |user: &'static str, pass: String| {
        let app = &app;
        async move {
            validate(
                app,
                "/validate/check",
                &[],
                &[("user", user), ("pass", &pass)],
            )
            .await
        }
    };
    let password = TestApp::password_of;

    // DeviceOtp (rows 3, 4): the password, then the device's code as the last 6 digits.
    let (jo, totp) = device_user(&app, "jo").await;
    let (status, answer) = check("jo", format!("{}{}", password("jo"), app.totp_now(&totp))).await;
    assert_accept(status, &answer);
    let (status, answer) = check(
        "jo",
        format!("{}{}", password("jo"), wrong_code(&app, &totp)),
    )
    .await;
    assert_reject(status, &answer);
    app.clock.advance_seconds(30);
    let (status, answer) = check("jo", format!("wrong password{}", app.totp_now(&totp))).await;
    assert_reject(status, &answer);
    let (status, answer) = check("jo", password("jo")).await;
    assert_reject(status, &answer);
    assert_eq!(failed_count(&app, &jo).await, 3);
    let (status, answer) = check("jo", format!("{}{}", password("jo"), app.totp_now(&totp))).await;
    assert_accept(status, &answer);
    assert_eq!(failed_count(&app, &jo).await, 0);

    // Allow (row 5, and an interface user): the password alone.
    let plain = app.role("Porters", Require2fa::No, false, false).await;
    app.user("pat", &plain, true).await;
    let (status, answer) = check("pat", password("pat")).await;
    assert_accept(status, &answer);
    let (status, answer) = check("pat", format!("{}123456", password("pat"))).await;
    assert_reject(status, &answer);
    let interface = app
        .role("Interface User", Require2fa::No, false, true)
        .await;
    app.user("robot", &interface, false).await;
    let (status, answer) = check("robot", password("robot")).await;
    assert_accept(status, &answer);

    // Enroll not required (row 8): accepted without a code.
    let encourage = app
        .role("Nurses", Require2fa::Encourage, false, false)
        .await;
    app.user("nia", &encourage, true).await;
    let (status, answer) = check("nia", password("nia")).await;
    assert_accept(status, &answer);

    // Enroll required (rows 11, 12): rejected, naming the sign-in page; no email sent.
    let force = app.role("Surgeons", Require2fa::Force, false, false).await;
    app.user("sue", &force, true).await;
    let force_email = app
        .role("Anaesthetists", Require2fa::Force, true, false)
        .await;
    app.user("ann", &force_email, true).await;
    for name in ["sue", "ann"] {
        let (status, answer) = check(name, password(name)).await;
        assert_reject(status, &answer);
        let message = answer["detail"]["message"].as_str().unwrap();
        assert!(
            message.contains("https://signin.hospital.example/signin"),
            "{message}"
        );
    }
    assert!(app.mails().await.is_empty());

    // EmailOtp (row 6): a challenge, answered with the emailed code alone.
    email_user(&app, "sam", true).await;
    let (status, answer) = check("sam", password("sam")).await;
    assert_eq!(answer["result"]["authentication"], "CHALLENGE", "{answer}");
    assert_eq!(status, StatusCode::OK);
    let transaction = answer["detail"]["transaction_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = app.last_emailed_code().await;
    let (status, answer) = validate(
        &app,
        "/validate/check",
        &[],
        &[
            ("user", "sam"),
            ("pass", &code),
            ("transaction_id", &transaction),
        ],
    )
    .await;
    assert_accept(status, &answer);
    // A wrong password starts no challenge.
    app.clock.advance_seconds(60);
    let (status, answer) = check("sam", "wrong password".to_owned()).await;
    assert_reject(status, &answer);
    assert_eq!(app.mails().await.len(), 1);

    // A user without an email address: rejected with a message to contact an administrator.
    email_user(&app, "nomail", false).await;
    let (status, answer) = check("nomail", password("nomail")).await;
    assert_reject(status, &answer);
    assert!(answer["detail"]["message"]
        .as_str()
        .unwrap()
        .contains("contact an administrator"));

    // In password_otp mode the code alone is no longer enough.
    app.clock.advance_seconds(30);
    let (status, answer) = check("jo", app.totp_now(&totp)).await;
    assert_reject(status, &answer);
    let succeeded = audit(&app, AuditEvent::SignInSucceeded).await;
    assert!(succeeded
        .iter()
        .any(|e| e.subject.as_deref() == Some("jo") && e.detail.contains("row=4")));
    app.stop().await;
}

#[tokio::test]
async fn otp_mode_is_the_default_and_the_setting_is_audited() {
    let app = spawn_app().await;
    assert_eq!(
        app.store
            .settings()
            .await
            .unwrap()
            .get(SettingKey::ValidatePassMode),
        "otp"
    );
    let session = {
        let (_, answer) = app
            .post(
                "/api/v1/signin",
                json!({ "username": "admin", "password": app.admin_password }),
            )
            .await;
        let (_, answer) = app
            .post(
                "/api/v1/signin/enroll/skip",
                json!({ "transaction": answer["transaction"] }),
            )
            .await;
        answer["session"].as_str().unwrap().to_owned()
    };
    let response = app
        .client
        .patch(format!("{}/api/v1/settings", app.address))
        .bearer_auth(&session)
        .json(&json!({ "validate_pass_mode": "password_otp" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let saved: Value = response.json().await.unwrap();
    assert_eq!(saved["validate_pass_mode"], "password_otp");
    let response = app
        .client
        .patch(format!("{}/api/v1/settings", app.address))
        .bearer_auth(&session)
        .json(&json!({ "validate_pass_mode": "both" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let refused: Value = response.json().await.unwrap();
    assert_eq!(refused["field"], "validate_pass_mode");
    let changed = audit(&app, AuditEvent::SettingChanged).await;
    assert!(changed
        .iter()
        .any(|e| e.detail.contains("validate_pass_mode") && e.detail.contains("password_otp")));
    app.stop().await;
}

#[tokio::test]
async fn malformed_validate_requests_get_privacyidea_errors_never_a_crash() {
    let app = app_with_client_network().await;
    let (status, answer) = validate(&app, "/validate/check", &[], &[("pass", "123456")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["result"]["status"], false);
    assert_eq!(answer["result"]["error"]["code"], 905);
    assert!(answer["result"]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("user"));
    let (status, answer) = validate(&app, "/validate/check", &[], &[("user", "jo")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["result"]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("pass"));

    let send = |content_type: &'static str, body: Vec<u8>| {
        let app = &app;
        async move {
            let response = app
                .client
                .post(format!("{}/validate/check", app.address))
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, answer) = send("text/plain", b"user=jo&pass=1".to_vec()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(answer["result"]["error"]["code"], 905);
    let (status, answer) = send("application/json", b"{\"user\": ".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["result"]["error"]["code"], 905);
    let (status, _) = send("application/json", b"[1,2]".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Huge values are a reject (or 413 past the body limit), never a 500.
    let long = format!("user=jo&pass={}", "1".repeat(50_000));
    let (status, answer) = send("application/x-www-form-urlencoded", long.into_bytes()).await;
    assert_reject(status, &answer);
    let long = format!("user={}&pass=123456", "j".repeat(50_000));
    let (status, answer) = send("application/x-www-form-urlencoded", long.into_bytes()).await;
    assert_reject(status, &answer);
    let (status, _) = send(
        "application/x-www-form-urlencoded",
        format!("user=jo&pass={}", "1".repeat(100_000)).into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = send(
        "application/x-www-form-urlencoded",
        vec![0xff, 0xfe, b'=', 0x80],
    )
    .await;
    assert!(
        status.is_client_error() || status == StatusCode::OK,
        "{status}"
    );
    app.stop().await;
}

// ----- privacyIDEA's documented examples, field for field -----

/// The request and answers of privacyIDEA's documentation of `/validate/check`
/// (privacyidea/privacyidea, `privacyidea/api/validate.py`, the docstring of `check()`:
/// "Example Validation Request", "Example response for a successful authentication",
/// "Example response for this first part of a challenge response authentication"; error
/// answers as `send_error` in `privacyidea/api/lib/utils.py`, codes of
/// `privacyidea/lib/error.py`). Token-specific fields (`serial`, `type`) and the server's
/// `version` differ by nature; every other field of each example is checked here.
#[tokio::test]
async fn answers_match_privacyideas_documented_examples() {
    let app = app_with_client_network().await;
    app.settings(&[(SettingKey::ValidatePassMode, "password_otp")])
        .await;
    // The documented request: `user=user realm=realm1 pass=s3cret123456` (the PIN
    // `s3cret` followed by the OTP). Here the user's password is "user orchard lantern 123".
    let (_, totp) = device_user(&app, "user").await;
    let pass = format!("{}{}", TestApp::password_of("user"), app.totp_now(&totp));
    let (status, answer) = validate(
        &app,
        "/validate/check",
        &[("accept", "application/json")],
        &[("user", "user"), ("realm", "realm1"), ("pass", &pass)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // {"detail": {"message": "matching 1 tokens", "serial": "PISP0000AB00", "type":
    //  "spass"}, "id": 1, "jsonrpc": "2.0", "result": {"status": true, "value": true},
    //  "version": "privacyIDEA unknown"}
    assert_eq!(answer["detail"]["message"], "matching 1 tokens");
    assert_eq!(answer["id"], 1);
    assert_eq!(answer["jsonrpc"], "2.0");
    assert_eq!(answer["result"]["status"], true);
    assert_eq!(answer["result"]["value"], true);
    assert_eq!(answer["result"]["authentication"], "ACCEPT");
    assert!(answer["version"].as_str().unwrap().starts_with("twostep "));

    // {"detail": {"serial": "PIEM0000AB00", "type": "email", "transaction_id":
    //  "12345678901234567890", "multi_challenge": [{"serial": "PIEM0000AB00",
    //  "transaction_id": "12345678901234567890", "message": "Please enter otp from your
    //  email", "client_mode": "interactive"}]}, "id": 2, "jsonrpc": "2.0", "result":
    //  {"status": true, "value": false}, "version": "privacyIDEA unknown"}
    email_user(&app, "mail", true).await;
    let (status, answer) = validate(
        &app,
        "/validate/check",
        &[],
        &[
            ("user", "mail"),
            ("realm", "realm1"),
            ("pass", &TestApp::password_of("mail")),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let detail = &answer["detail"];
    assert_eq!(detail["type"], "email");
    assert!(detail["serial"].is_string());
    let transaction = detail["transaction_id"].as_str().unwrap();
    let challenge = &detail["multi_challenge"][0];
    assert_eq!(challenge["transaction_id"], transaction);
    assert!(challenge["serial"].is_string());
    assert!(challenge["message"]
        .as_str()
        .unwrap()
        .starts_with("Enter the code"));
    assert_eq!(challenge["client_mode"], "interactive");
    assert_eq!(answer["jsonrpc"], "2.0");
    assert_eq!(answer["result"]["status"], true);
    assert_eq!(answer["result"]["value"], false);
    assert_eq!(answer["result"]["authentication"], "CHALLENGE");

    // send_error: {"jsonrpc": "2.0", "detail": null, "result": {"status": false,
    //  "error": {"code": ..., "message": ...}}, "version": ..., "id": 1}
    let outsider = spawn_app().await;
    let (status, answer) = validate(
        &outsider,
        "/validate/check",
        &[],
        &[("user", "user"), ("pass", "s3cret123456")],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer["jsonrpc"], "2.0");
    assert_eq!(answer["detail"], Value::Null);
    assert_eq!(answer["id"], 1);
    assert_eq!(answer["result"]["status"], false);
    assert!(answer["result"]["error"]["code"].is_u64());
    assert!(answer["result"]["error"]["message"].is_string());
    outsider.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn the_openapi_document_describes_the_native_endpoints() {
    let app = spawn_app().await;
    let (status, doc) = app.get_json("/api/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    for path in ["/api/v1/verify", "/api/v1/verify/challenge"] {
        let post = &doc["paths"][path]["post"];
        assert!(post.is_object(), "{path}");
        assert_eq!(post["security"][0]["bearer"], json!([]), "{path}");
    }
    assert!(doc["paths"]["/api/v1/verify"]["post"]["responses"]["401"].is_object());
    assert!(
        doc["components"]["schemas"]["SettingsPatch"]["properties"]["validate_pass_mode"]
            .is_object()
    );
    app.stop().await;
}

// ----- a real privacyIDEA client -----

/// Signs `username` in through django-privacyidea-auth (PyPI), privacyIDEA's
/// authentication backend for Django, pointed at this app's `/validate/check`; what it
/// concluded: `Some(username)` or `None`.
async fn django_backend_sign_in(
    python: &std::path::Path,
    app: &TestApp,
    username: &str,
    password: &str,
) -> Option<String> {
    use tokio::io::AsyncWriteExt;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/privacyidea_django_auth.py"
    );
    let mut child = tokio::process::Command::new(python)
        .arg(script)
        .arg(format!("{}/validate/check", app.address))
        .arg(username)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 starts");
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{password}\n").as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the client finishes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    match stdout.trim() {
        "rejected" => None,
        line => Some(
            line.strip_prefix("accepted ")
                .unwrap_or_else(|| panic!("unexpected output: {line}"))
                .to_owned(),
        ),
    }
}

/// Interoperability with a real privacyIDEA client, unchanged: django-privacyidea-auth
/// posts `user`, `pass`, `realm` form-encoded to `/validate/check` and accepts on
/// `result.status` and `result.value`.
#[tokio::test]
async fn privacyideas_django_backend_signs_in_through_validate_check() {
    let Some(python) = require_python_module(
        "django_privacyidea_auth",
        "python3 -m pip install django-privacyidea-auth",
    ) else {
        return;
    };
    let app = app_with_client_network().await;
    let (jo, totp) = device_user(&app, "jo").await;

    // otp mode: the password field carries the code.
    let code = app.totp_now(&totp);
    assert_eq!(
        django_backend_sign_in(&python, &app, "jo", &code)
            .await
            .as_deref(),
        Some("jo")
    );
    assert_eq!(
        django_backend_sign_in(&python, &app, "jo", &code).await,
        None,
        "replay"
    );

    // password_otp mode: the password followed by the code, as an LDAP or RADIUS client
    // forwards one field.
    app.settings(&[(SettingKey::ValidatePassMode, "password_otp")])
        .await;
    app.clock.advance_seconds(30);
    let password = TestApp::password_of("jo");
    let pass = format!("{password}{}", app.totp_now(&totp));
    assert_eq!(
        django_backend_sign_in(&python, &app, "jo", &pass)
            .await
            .as_deref(),
        Some("jo")
    );
    app.clock.advance_seconds(30);
    let wrong = format!("{password}{}", wrong_code(&app, &totp));
    assert_eq!(
        django_backend_sign_in(&python, &app, "jo", &wrong).await,
        None
    );
    assert_eq!(failed_count(&app, &jo).await, 1);
    assert_eq!(
        django_backend_sign_in(&python, &app, "nobody", &pass).await,
        None
    );
    app.stop().await;
}

/// A challenge whose code was used, and a completed web sign-in, both keep the request
/// delay for the next send of either kind (SPEC section 4): one delay per user.
async fn used_codes_keep_the_request_delay_for_challenges_and_sign_ins(app: &TestApp) {
    let token = verifier_token(app).await;
    email_user(app, "sam", true).await;
    let challenge = || {
        post_json(
            app,
            "/api/v1/verify/challenge",
            Some(&token),
            json!({ "username": "sam" }),
        )
    };
    let (status, sent) = challenge().await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let code = app.last_emailed_code().await;
    let body = json!({ "username": "sam", "code": code, "transaction": sent["transaction"] });
    let (status, answer) = post_json(app, "/api/v1/verify", Some(&token), body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    app.clock.advance_seconds(1);
    let (status, answer) = challenge().await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
    assert_eq!(answer["retry_after"], 29);
    let sign_in = || {
        app.post(
            "/api/v1/signin",
            json!({ "username": "sam", "password": TestApp::password_of("sam") }),
        )
    };
    let (_, answer) = sign_in().await;
    assert_eq!(answer["method"], "email", "{answer}");
    assert_eq!(answer["resend_after"], 29, "{answer}");
    assert_eq!(app.mails().await.len(), 1, "nothing sent within the delay");

    // After the delay: a sign-in sends, and is completed with its code.
    app.clock.advance_seconds(29);
    let (_, answer) = sign_in().await;
    assert!(answer.get("resend_after").is_none(), "{answer}");
    assert_eq!(app.mails().await.len(), 2);
    let code = app.last_emailed_code().await;
    let (_, done) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": answer["transaction"], "code": code }),
        )
        .await;
    assert_eq!(done["status"], "signed_in", "{done}");
    // Its transaction is gone, but a challenge right after still waits.
    app.clock.advance_seconds(1);
    let (status, answer) = challenge().await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
    assert_eq!(answer["retry_after"], 29);
    assert_eq!(app.mails().await.len(), 2);
    app.clock.advance_seconds(29);
    let (status, answer) = challenge().await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(app.mails().await.len(), 3);
}

#[tokio::test]
async fn used_codes_keep_the_request_delay_for_the_next_challenge_or_sign_in() {
    let app = spawn_app().await;
    used_codes_keep_the_request_delay_for_challenges_and_sign_ins(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn used_codes_keep_the_request_delay_for_the_next_challenge_or_sign_in_on_postgresql() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let app = spawn_app_with(AppOptions {
        database: Some(db.url.clone()),
        ..AppOptions::default()
    })
    .await;
    used_codes_keep_the_request_delay_for_challenges_and_sign_ins(&app).await;
    app.stop().await;
    db.finish().await;
}
