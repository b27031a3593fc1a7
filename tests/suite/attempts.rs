//! Attempts are counted before they are evaluated (SPEC section 4, **Failures**): however
//! many requests race, on one instance or several, at most Lockout Threshold passwords or
//! codes of one account are checked between two successes or unlocks; every attempt,
//! checked or refused unchecked, is audited; and the hard limit of 100 consecutive
//! failures holds across lockout expiries until an administrator unlocks.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::Barrier;
use twostep::domain::AuditEntry;
use twostep::domain::AuditEvent;
use twostep::domain::{SettingKey, HARD_LIMIT};
use twostep::service::credentials::REFUSED_UNCHECKED;
use twostep::store::AuditQuery;

use crate::admin_api::{admin, call};
use crate::helpers::{spawn_app_on_postgres, spawn_app_with, AppOptions, NowTs, TestApp};

/// Lockout Threshold at its default.
const THRESHOLD: usize = 5;

/// Every audit entry about `username`, oldest first.
async fn audit_of(app: &TestApp, username: &str) -> Vec<AuditEntry> {
    let mut entries = app
        .store
        .audit_entries(&AuditQuery {
            user: Some(username.to_owned()),
            limit: 10_000,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    entries.reverse();
    entries
}

/// What the audit log says of the attempts at `username`'s credentials: codes checked
/// (refused or accepted), passwords checked and refused, and attempts refused unchecked.
#[derive(Debug, PartialEq, Eq)]
struct Attempts {
    codes_checked: usize,
    codes_accepted: usize,
    wrong_passwords: usize,
    unchecked: usize,
}

async fn attempts_of(app: &TestApp, username: &str) -> Attempts {
    let entries = audit_of(app, username).await;
    let count = |keep: &dyn Fn(&AuditEntry) -> bool| entries.iter().filter(|e| keep(e)).count();
    Attempts {
        codes_checked: count(&|e| {
            e.event == AuditEvent::OtpRefused.as_str()
                || e.event == AuditEvent::OtpAccepted.as_str()
        }),
        codes_accepted: count(&|e| e.event == AuditEvent::OtpAccepted.as_str()),
        wrong_passwords: count(&|e| {
            e.event == AuditEvent::SignInFailed.as_str() && e.detail.ends_with("wrong password")
        }),
        unchecked: count(&|e| {
            e.event == AuditEvent::SignInFailed.as_str() && e.detail.ends_with(REFUSED_UNCHECKED)
        }),
    }
}

async fn user_row(app: &TestApp, username: &str) -> twostep::domain::User {
    app.store
        .user_by_username(&twostep::domain::Username::parse(username).unwrap())
        .await
        .unwrap()
        .unwrap()
}

/// A user whose role forces 2FA, with a confirmed TOTP device (Every Login).
async fn device_user(app: &TestApp, name: &str) -> twostep::otp::Totp {
    crate::verify::device_user(app, name).await.1
}

/// Distinct 6-digit codes that none of `totp`'s accepted codes around now equals.
fn wrong_codes(app: &TestApp, totp: &twostep::otp::Totp, count: usize) -> Vec<String> {
    let now = app.clock.now_ts().unix_seconds();
    let taken: Vec<String> = [now - 60, now - 30, now, now + 30, now + 60]
        .iter()
        .map(|t| totp.generate_at(*t).as_str().to_owned())
        .collect();
    (0..1_000_000u32)
        .map(|n| format!("{:06}", n * 7919 % 1_000_000))
        .filter(|code| !taken.contains(code))
        .take(count)
        .collect()
}

/// Sends every request of `requests` at once: each waits at one barrier, so that all are
/// released together, on a multi-threaded runtime.
async fn all_at_once<F, Fut>(count: usize, request: F) -> Vec<(StatusCode, Value)>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = (StatusCode, Value)> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(count));
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let barrier = barrier.clone();
            let send = request(i);
            tokio::spawn(async move {
                barrier.wait().await;
                send.await
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(count);
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

/// A POST of JSON from a client of its own (no cookies shared), with extra headers.
fn post(
    address: &str,
    path: &str,
    body: Value,
    headers: Vec<(&'static str, String)>,
) -> impl std::future::Future<Output = (StatusCode, Value)> + Send + 'static {
    let url = format!("{address}{path}");
    async move {
        let mut request = reqwest::Client::new().post(url).json(&body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// A POST of a form to `/validate/check`.
fn validate(
    address: &str,
    token: &str,
    form: Vec<(&'static str, String)>,
) -> impl std::future::Future<Output = (StatusCode, Value)> + Send + 'static {
    let url = format!("{address}/validate/check");
    let token = token.to_owned();
    async move {
        let response = reqwest::Client::new()
            .post(url)
            .header("authorization", token)
            .form(&form)
            .send()
            .await
            .expect("request sent");
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

fn refused_everywhere(answers: &[(StatusCode, Value)]) {
    for (status, body) in answers {
        assert_eq!(*status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["code"], "invalid_credentials", "{body}");
    }
}

/// Exactly Lockout Threshold of `count` racing attempts were checked, the rest were
/// refused unchecked, and the account is locked.
async fn exactly_the_threshold_was_checked(app: &TestApp, username: &str, count: usize) {
    let seen = attempts_of(app, username).await;
    assert_eq!(
        seen.codes_checked + seen.wrong_passwords,
        THRESHOLD,
        "{seen:?}"
    );
    assert_eq!(seen.unchecked, count - THRESHOLD, "{seen:?}");
    assert_eq!(seen.codes_accepted, 0);
    let user = user_row(app, username).await;
    assert!(user.is_locked(app.clock.now_ts()), "{user:?}");
    assert_eq!(user.failed_count as usize, THRESHOLD);
}

async fn sign_in_password(app: &TestApp, name: &str) -> Value {
    let (status, started) = app
        .post(
            "/api/v1/signin",
            json!({"username": name, "password": TestApp::password_of(name)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    assert_eq!(started["status"], "otp_required", "{started}");
    started["transaction"].clone()
}

/// 200 wrong codes at once through the sign-in API, on one transaction: five checked.
async fn two_hundred_racing_sign_in_codes(app: &TestApp) {
    let totp = device_user(app, "jane").await;
    let transaction = sign_in_password(app, "jane").await;
    let codes = wrong_codes(app, &totp, 200);
    let answers = all_at_once(200, |i| {
        post(
            &app.address,
            "/api/v1/signin/otp",
            json!({"transaction": transaction, "code": codes[i]}),
            vec![],
        )
    })
    .await;
    refused_everywhere(&answers);
    exactly_the_threshold_was_checked(app, "jane", 200).await;
    // The right code afterwards is refused, unchecked.
    let (status, _) = app
        .post(
            "/api/v1/signin/otp",
            json!({"transaction": transaction, "code": app.totp_now(&totp)}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        attempts_of(app, "jane").await.unchecked,
        200 - THRESHOLD + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_racing_wrong_codes_at_sign_in_check_only_the_threshold_on_sqlite() {
    let app = spawn_app_with(AppOptions::default()).await;
    two_hundred_racing_sign_in_codes(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_racing_wrong_codes_at_sign_in_check_only_the_threshold_on_postgresql() {
    let Some((db, app)) = spawn_app_on_postgres().await else {
        return;
    };
    two_hundred_racing_sign_in_codes(&app).await;
    app.stop().await;
    db.finish().await;
}

/// 60 wrong passwords at once: five checked; the right password afterwards is refused.
async fn sixty_racing_wrong_passwords(apps: &[&TestApp]) {
    let app = apps[0];
    device_user(app, "jane").await;
    let addresses: Vec<String> = apps.iter().map(|a| a.address.clone()).collect();
    let answers = all_at_once(60, |i| {
        post(
            &addresses[i % addresses.len()],
            "/api/v1/signin",
            json!({"username": "jane", "password": format!("wrong guess {i}")}),
            vec![],
        )
    })
    .await;
    refused_everywhere(&answers);
    exactly_the_threshold_was_checked(app, "jane", 60).await;
    for other in apps {
        let (status, _) = other
            .post(
                "/api/v1/signin",
                json!({"username": "jane", "password": TestApp::password_of("jane")}),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_racing_wrong_passwords_check_only_the_threshold_on_sqlite() {
    let app = spawn_app_with(AppOptions::default()).await;
    sixty_racing_wrong_passwords(&[&app]).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_racing_wrong_passwords_check_only_the_threshold_on_postgresql() {
    let Some((db, app)) = spawn_app_on_postgres().await else {
        return;
    };
    sixty_racing_wrong_passwords(&[&app]).await;
    app.stop().await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_wrong_passwords_across_two_instances_check_only_the_threshold() {
    let Some((db, a, b)) = crate::instances::two_instances().await else {
        return;
    };
    sixty_racing_wrong_passwords(&[&a, &b]).await;
    a.stop().await;
    b.stop().await;
    db.finish().await;
}

/// 200 wrong codes at once to `/api/v1/verify`, spread over `apps`: five checked; the
/// right code afterwards is refused.
async fn two_hundred_racing_verify_codes(apps: &[&TestApp]) {
    let app = apps[0];
    let totp = device_user(app, "jane").await;
    let token = crate::verify::verifier_token(app).await;
    let codes = wrong_codes(app, &totp, 200);
    let addresses: Vec<String> = apps.iter().map(|a| a.address.clone()).collect();
    let answers = all_at_once(200, |i| {
        post(
            &addresses[i % addresses.len()],
            "/api/v1/verify",
            json!({"username": "jane", "code": codes[i]}),
            vec![("authorization", format!("Bearer {token}"))],
        )
    })
    .await;
    refused_everywhere(&answers);
    exactly_the_threshold_was_checked(app, "jane", 200).await;
    for other in apps {
        let (status, _) = other
            .post_with(
                "/api/v1/verify",
                json!({"username": "jane", "code": app.totp_now(&totp)}),
                &[("authorization", &format!("Bearer {token}"))],
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_racing_wrong_codes_at_verify_check_only_the_threshold_on_sqlite() {
    let app = spawn_app_with(AppOptions::default()).await;
    two_hundred_racing_verify_codes(&[&app]).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_wrong_codes_at_verify_across_two_instances_check_only_the_threshold() {
    let Some((db, a, b)) = crate::instances::two_instances().await else {
        return;
    };
    two_hundred_racing_verify_codes(&[&a, &b]).await;
    a.stop().await;
    b.stop().await;
    db.finish().await;
}

/// The same through privacyIDEA's `/validate/check`.
async fn two_hundred_racing_validate_codes(app: &TestApp) {
    let totp = device_user(app, "jane").await;
    let token = crate::verify::verifier_token(app).await;
    let codes = wrong_codes(app, &totp, 200);
    let answers = all_at_once(200, |i| {
        validate(
            &app.address,
            &token,
            vec![("user", "jane".to_owned()), ("pass", codes[i].clone())],
        )
    })
    .await;
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert_eq!(body["result"]["authentication"], "REJECT", "{body}");
    }
    exactly_the_threshold_was_checked(app, "jane", 200).await;
    let (_, body) = validate(
        &app.address,
        &token,
        vec![("user", "jane".to_owned()), ("pass", app.totp_now(&totp))],
    )
    .await;
    assert_eq!(body["result"]["authentication"], "REJECT", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_racing_wrong_codes_at_validate_check_check_only_the_threshold_on_sqlite() {
    let app = spawn_app_with(AppOptions::default()).await;
    two_hundred_racing_validate_codes(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_racing_wrong_codes_at_validate_check_check_only_the_threshold_on_postgresql() {
    let Some((db, app)) = spawn_app_on_postgres().await else {
        return;
    };
    two_hundred_racing_validate_codes(&app).await;
    app.stop().await;
    db.finish().await;
}

/// The right code hidden at a random place among 49 wrong ones, all sent at once, `runs`
/// times (a new user each run): accepted only when it was among the attempts checked,
/// so about Lockout Threshold / 50 of the runs, never every time.
async fn the_right_code_among_49_wrong_ones(app: &TestApp, runs: usize) {
    use rand::Rng;
    let token = crate::verify::verifier_token(app).await;
    let mut accepted_runs = 0;
    for run in 0..runs {
        let name = format!("nurse{run}");
        let totp = device_user(app, &name).await;
        let mut codes = wrong_codes(app, &totp, 49);
        let at = rand::rngs::OsRng.gen_range(0..50);
        codes.insert(at, app.totp_now(&totp));
        let answers = all_at_once(50, |i| {
            post(
                &app.address,
                "/api/v1/verify",
                json!({"username": name, "code": codes[i]}),
                vec![("authorization", format!("Bearer {token}"))],
            )
        })
        .await;
        let accepted = answers
            .iter()
            .filter(|(status, _)| *status == StatusCode::OK)
            .count();
        let seen = attempts_of(app, &name).await;
        assert_eq!(seen.codes_accepted, accepted, "{seen:?}");
        assert_eq!(seen.codes_checked + seen.unchecked, 50, "{seen:?}");
        match accepted {
            // Refused: exactly Lockout Threshold were checked, and it was not among them.
            0 => assert_eq!(seen.codes_checked, THRESHOLD, "run {run}: {seen:?}"),
            // Accepted: it was among the first Lockout Threshold checked; its success
            // started a new count, which allows Lockout Threshold more.
            1 => {
                accepted_runs += 1;
                assert!(seen.codes_checked <= 2 * THRESHOLD, "run {run}: {seen:?}");
            }
            _ => panic!("run {run}: one code accepted {accepted} times"),
        }
    }
    // Binomial(runs, 5/50): with 40 runs the mean is 4; more than 14 has a probability
    // below 1e-5. Before attempts were counted first, nearly every run accepted it.
    assert!(
        accepted_runs * 50 <= runs * THRESHOLD * 35 / 10,
        "accepted in {accepted_runs} of {runs} runs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_code_among_49_racing_wrong_ones_is_accepted_only_by_chance_on_sqlite() {
    let app = spawn_app_with(AppOptions::default()).await;
    the_right_code_among_49_wrong_ones(&app, 40).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_code_among_49_racing_wrong_ones_is_accepted_only_by_chance_on_postgresql() {
    let Some((db, app)) = spawn_app_on_postgres().await else {
        return;
    };
    the_right_code_among_49_wrong_ones(&app, 40).await;
    app.stop().await;
    db.finish().await;
}

/// 100 consecutive failures over ten lockouts (Lockout Threshold 10, Lockout Minutes 1,
/// each lock left to expire) lock the account until an administrator unlocks it; a
/// success before the hundredth starts the count again.
async fn the_hard_limit_holds_across_lockout_expiries(app: &TestApp) {
    app.settings(&[
        (SettingKey::LockoutThreshold, "10"),
        (SettingKey::LockoutMinutes, "1"),
    ])
    .await;
    let totp = device_user(app, "jane").await;
    let token = crate::verify::verifier_token(app).await;
    let bearer = format!("Bearer {token}");
    let verify = |code: String| {
        let bearer = bearer.clone();
        async move {
            app.post_with(
                "/api/v1/verify",
                json!({"username": "jane", "code": code}),
                &[("authorization", &bearer)],
            )
            .await
            .0
        }
    };
    let fail_ten = || async {
        for code in wrong_codes(app, &totp, 10) {
            assert_eq!(verify(code).await, StatusCode::UNAUTHORIZED);
        }
        assert!(user_row(app, "jane").await.is_locked(app.clock.now_ts()));
        app.clock.advance_seconds(61);
    };

    // 90 failures, then a success: the count starts again.
    for _ in 0..9 {
        fail_ten().await;
    }
    assert_eq!(user_row(app, "jane").await.consecutive_failures, 90);
    assert_eq!(verify(app.totp_now(&totp)).await, StatusCode::OK);
    let jane = user_row(app, "jane").await;
    assert_eq!((jane.failed_count, jane.consecutive_failures), (0, 0));
    app.clock.advance_seconds(30);

    // 100 consecutive failures over ten lockouts: locked for good.
    for _ in 0..10 {
        fail_ten().await;
    }
    let jane = user_row(app, "jane").await;
    assert_eq!(jane.consecutive_failures, HARD_LIMIT);
    assert_eq!(jane.locked_until, Some(twostep::clock::Timestamp::NEVER));
    app.clock.advance_seconds(24 * 60 * 60);
    assert_eq!(verify(app.totp_now(&totp)).await, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .post(
            "/api/v1/signin",
            json!({"username": "jane", "password": TestApp::password_of("jane")}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the web sign-in is locked too"
    );
    let locks: Vec<AuditEntry> = audit_of(app, "jane")
        .await
        .into_iter()
        .filter(|e| e.event == AuditEvent::Locked.as_str())
        .collect();
    assert_eq!(locks.len(), 19, "nine lockouts, then ten");
    assert!(
        locks[18].detail.contains("hard limit"),
        "{:?}",
        locks.last()
    );

    // Edit User shows it, in the API and on the page.
    let admin_token = admin(app).await;
    let (status, shown) = call(
        app,
        Method::GET,
        "/api/v1/users/jane",
        Some(&admin_token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["locked"], true);
    assert_eq!(shown["consecutive_failures"], HARD_LIMIT);
    crate::admin_pages::sign_in_admin(app).await;
    let page = crate::pages::get(app, "/admin/users/jane").await;
    page.assert_contains("until an administrator unlocks it");
    page.assert_contains("100 of 100");

    // An administrator's unlock ends it: the right code works again.
    let (status, _) = call(
        app,
        Method::POST,
        "/api/v1/users/jane/unlock",
        Some(&admin_token),
        None,
    )
    .await;
    assert!(status.is_success(), "{status}");
    assert_eq!(user_row(app, "jane").await.consecutive_failures, 0);
    assert_eq!(verify(app.totp_now(&totp)).await, StatusCode::OK);
}

#[tokio::test]
async fn a_hundred_consecutive_failures_lock_until_an_unlock_on_sqlite() {
    let app = spawn_app_with(AppOptions::default()).await;
    the_hard_limit_holds_across_lockout_expiries(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_hundred_consecutive_failures_lock_until_an_unlock_on_postgresql() {
    let Some((db, app)) = spawn_app_on_postgres().await else {
        return;
    };
    the_hard_limit_holds_across_lockout_expiries(&app).await;
    app.stop().await;
    db.finish().await;
}

#[tokio::test]
async fn a_right_password_alone_neither_counts_nor_resets_the_failures() {
    let app = spawn_app_with(AppOptions::default()).await;
    let totp = device_user(&app, "jane").await;
    // Two wrong codes, then ten sign-ins left at the code step (a nurse called away).
    for code in wrong_codes(&app, &totp, 2) {
        let transaction = sign_in_password(&app, "jane").await;
        let (status, _) = app
            .post(
                "/api/v1/signin/otp",
                json!({"transaction": transaction, "code": code}),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    for _ in 0..10 {
        sign_in_password(&app, "jane").await;
    }
    let jane = user_row(&app, "jane").await;
    assert_eq!((jane.failed_count, jane.consecutive_failures), (2, 2));
    assert!(!jane.is_locked(app.clock.now_ts()));
    // The right code completes the sign-in and starts the count again.
    let transaction = sign_in_password(&app, "jane").await;
    let (status, done) = app
        .post(
            "/api/v1/signin/otp",
            json!({"transaction": transaction, "code": app.totp_now(&totp)}),
        )
        .await;
    assert_eq!(
        (status, &done["status"]),
        (StatusCode::OK, &json!("signed_in"))
    );
    let jane = user_row(&app, "jane").await;
    assert_eq!((jane.failed_count, jane.consecutive_failures), (0, 0));
    app.stop().await;
}
