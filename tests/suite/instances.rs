//! Several instances on one PostgreSQL (SPEC section 8: all state in the database): a
//! sign-in moves between instances, a code is accepted once across them, and failures
//! count toward one lockout.

use reqwest::StatusCode;
use serde_json::{json, Value};
use twostep::domain::{PromptMode, Require2fa, SettingKey};

use crate::helpers::{spawn_app_with, AppOptions, TestApp, TestDb};

/// Two instances, A and B, on one fresh PostgreSQL schema with one server key.
pub(crate) async fn two_instances() -> Option<(TestDb, TestApp, TestApp)> {
    let db = TestDb::postgres().await?;
    let twostep::store::KeySource::Hex(key) = db.key.clone() else {
        unreachable!("test databases have hex keys")
    };
    let options = AppOptions {
        database: Some(db.url.clone()),
        key: Some(key),
        ..AppOptions::default()
    };
    let a = spawn_app_with(options.clone()).await;
    let b = spawn_app_with(options).await;
    Some((db, a, b))
}

async fn password_step(app: &TestApp, name: &str, password: &str) -> (StatusCode, Value) {
    app.post(
        "/api/v1/signin",
        json!({"username": name, "password": password}),
    )
    .await
}

async fn force_user_with_totp(a: &TestApp) -> twostep::otp::Totp {
    let role = a.role("Clinician", Require2fa::Force, false, false).await;
    let user = a.user("jane", &role, true).await;
    a.enroll_totp(&user, PromptMode::EveryLogin).await
}

#[tokio::test]
async fn a_sign_in_started_on_one_instance_finishes_on_the_other() {
    let Some((db, a, b)) = two_instances().await else {
        return;
    };
    let totp = force_user_with_totp(&a).await;
    let (status, started) = password_step(&a, "jane", &TestApp::password_of("jane")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(started["status"], "otp_required");
    let (status, done) = b
        .post(
            "/api/v1/signin/otp",
            json!({"transaction": started["transaction"], "code": b.totp_now(&totp)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "signed_in");
    // The session made on B works on A.
    let session = done["session"].as_str().unwrap();
    let (status, me) = a.get_json("/api/v1/me", Some(session)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["username"], "jane");
    a.stop().await;
    b.stop().await;
    db.finish().await;
}

#[tokio::test]
async fn one_totp_code_sent_to_both_instances_at_once_is_accepted_once() {
    let Some((db, a, b)) = two_instances().await else {
        return;
    };
    let totp = force_user_with_totp(&a).await;
    for round in 0..5 {
        let (_, on_a) = password_step(&a, "jane", &TestApp::password_of("jane")).await;
        let (_, on_b) = password_step(&b, "jane", &TestApp::password_of("jane")).await;
        let code = a.totp_now(&totp);
        let (first, second) = tokio::join!(
            a.post(
                "/api/v1/signin/otp",
                json!({"transaction": on_a["transaction"], "code": code}),
            ),
            b.post(
                "/api/v1/signin/otp",
                json!({"transaction": on_b["transaction"], "code": code}),
            ),
        );
        let accepted = [&first, &second]
            .iter()
            .filter(|(status, _)| *status == StatusCode::OK)
            .count();
        let refused = [&first, &second]
            .iter()
            .filter(|(status, body)| {
                *status == StatusCode::UNAUTHORIZED && body["code"] == "invalid_credentials"
            })
            .count();
        assert_eq!(
            (accepted, refused),
            (1, 1),
            "round {round}: {first:?} {second:?}"
        );
        // The next round uses the next time step on both instances.
        a.clock.advance_seconds(30);
        b.clock.advance_seconds(30);
    }
    a.stop().await;
    b.stop().await;
    db.finish().await;
}

#[tokio::test]
async fn failures_on_both_instances_count_toward_one_lockout() {
    let Some((db, a, b)) = two_instances().await else {
        return;
    };
    a.settings(&[(SettingKey::LockoutThreshold, "4")]).await;
    let role = a.role("Staff", Require2fa::No, false, false).await;
    let user = a.user("kim", &role, false).await;
    for app in [&a, &b, &a, &b] {
        let (status, _) = password_step(app, "kim", "wrong password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let stored = a.store.user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(stored.failed_count, 4);
    for app in [&a, &b] {
        let (status, body) = password_step(app, "kim", &TestApp::password_of("kim")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "locked on every instance");
        assert_eq!(body["code"], "invalid_credentials");
    }
    a.stop().await;
    b.stop().await;
    db.finish().await;
}
