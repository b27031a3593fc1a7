//! The JSON sign-in API through real HTTP (SPEC sections 3, 4 and 9): every row of the
//! decision table, then the rules of the OTP steps.

use reqwest::StatusCode;
use serde_json::{json, Value};
use twostep::domain::{PromptMode, Require2fa, SettingKey, User};
use twostep::otp::Totp;

use crate::helpers::{spawn_app, spawn_app_with, AppOptions, NowTs, TestApp, TestDb};

/// The user of one row: a role with these permissions, a device if asked, and the
/// client (127.0.0.1) in network or not.
async fn row_user(
    app: &TestApp,
    device: Option<PromptMode>,
    require: Require2fa,
    otp_required: bool,
    interface: bool,
    in_network: bool,
) -> (User, Option<Totp>) {
    let role_name = format!("{require:?} otp={otp_required} interface={interface}");
    let role = app.role(&role_name, require, otp_required, interface).await;
    let user = app.user("jane", &role, true).await;
    let totp = match device {
        Some(mode) => Some(app.enroll_totp(&user, mode).await),
        None => None,
    };
    app.settings(&[(SettingKey::BypassEnabled, "true")]).await;
    if in_network {
        let rule = twostep::domain::IpRule {
            network: twostep::domain::IpNetwork::parse("127.0.0.1").unwrap(),
            bypass_2fa: true,
            note: "test client".into(),
        };
        app.store
            .add_ip_rule(&rule, app.clock.now_ts())
            .await
            .unwrap();
    }
    (user, totp)
}

async fn sign_in(app: &TestApp, name: &str) -> (StatusCode, Value) {
    app.post(
        "/api/v1/signin",
        json!({ "username": name, "password": TestApp::password_of(name) }),
    )
    .await
}

pub(crate) fn transaction(answer: &Value) -> String {
    answer["transaction"]
        .as_str()
        .expect("a transaction")
        .to_owned()
}

/// Checks a signed-in answer and that its session works.
async fn assert_signed_in(app: &TestApp, answer: &Value) {
    assert_eq!(answer["status"], "signed_in", "{answer}");
    let session = answer["session"].as_str().expect("a session token");
    let (status, me) = app.get_json("/api/v1/me", Some(session)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["username"], "jane");
}

#[tokio::test]
async fn spec_row_1_interface_user_signs_in_with_the_password_alone() {
    for in_network in [false, true] {
        let app = spawn_app().await;
        row_user(&app, None, Require2fa::No, false, true, in_network).await;
        let (status, answer) = sign_in(&app, "jane").await;
        assert_eq!(status, StatusCode::OK);
        assert_signed_in(&app, &answer).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn spec_row_2_when_appropriate_device_in_network_skips_the_code() {
    let app = spawn_app().await;
    row_user(
        &app,
        Some(PromptMode::WhenAppropriate),
        Require2fa::Force,
        true,
        false,
        true,
    )
    .await;
    let (_, answer) = sign_in(&app, "jane").await;
    assert_signed_in(&app, &answer).await;
}

#[tokio::test]
async fn spec_row_3_when_appropriate_device_outside_asks_the_device_code() {
    let app = spawn_app().await;
    let (_, totp) = row_user(
        &app,
        Some(PromptMode::WhenAppropriate),
        Require2fa::Encourage,
        true,
        false,
        false,
    )
    .await;
    let (_, answer) = sign_in(&app, "jane").await;
    assert_eq!(answer["status"], "otp_required");
    assert_eq!(answer["method"], "device");
    let (status, done) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": transaction(&answer), "code": app.totp_now(&totp.unwrap()) }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_signed_in(&app, &done).await;
    assert!(
        app.mails().await.is_empty(),
        "a device replaces the emailed OTP"
    );
}

#[tokio::test]
async fn spec_row_4_every_login_device_asks_the_code_even_in_network() {
    let app = spawn_app().await;
    let (_, totp) = row_user(
        &app,
        Some(PromptMode::EveryLogin),
        Require2fa::No,
        false,
        false,
        true,
    )
    .await;
    let (_, answer) = sign_in(&app, "jane").await;
    assert_eq!(answer["status"], "otp_required");
    assert_eq!(answer["method"], "device");
    let code = app.totp_now(&totp.unwrap());
    let (_, done) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": transaction(&answer), "code": code }),
        )
        .await;
    assert_signed_in(&app, &done).await;
}

#[tokio::test]
async fn spec_row_5_role_no_without_otp_signs_in_with_the_password() {
    let app = spawn_app().await;
    row_user(&app, None, Require2fa::No, false, false, false).await;
    let (_, answer) = sign_in(&app, "jane").await;
    assert_signed_in(&app, &answer).await;
}

#[tokio::test]
async fn spec_row_6_otp_required_outside_emails_a_code_that_signs_in() {
    let app = spawn_app().await;
    row_user(&app, None, Require2fa::No, true, false, false).await;
    let (_, answer) = sign_in(&app, "jane").await;
    assert_eq!(answer["status"], "otp_required");
    assert_eq!(answer["method"], "email");
    assert_eq!(answer["sent_to"], "j***@example.org");
    let mails = app.mails().await;
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].contains("To: \"jane Display\" <jane@example.org>"),
        "{}",
        mails[0]
    );
    let code = crate::helpers::code_in_email(&mails[0]).unwrap();
    assert_eq!(code.len(), 6);
    let (_, done) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": transaction(&answer), "code": code }),
        )
        .await;
    assert_signed_in(&app, &done).await;
}

#[tokio::test]
async fn spec_row_7_otp_required_in_network_signs_in_without_a_code() {
    let app = spawn_app().await;
    row_user(&app, None, Require2fa::No, true, false, true).await;
    let (_, answer) = sign_in(&app, "jane").await;
    assert_signed_in(&app, &answer).await;
    assert!(app.mails().await.is_empty());
}

#[tokio::test]
async fn spec_row_8_encourage_offers_set_up_later_and_asks_again_next_time() {
    let app = spawn_app().await;
    row_user(&app, None, Require2fa::Encourage, false, false, false).await;
    for _ in 0..2 {
        let (_, answer) = sign_in(&app, "jane").await;
        assert_eq!(answer["status"], "enroll");
        assert_eq!(answer["required"], false);
        assert_eq!(answer["methods"], json!(["totp"]), "Use 2FA = 2 by default");
        let (status, done) = app
            .post(
                "/api/v1/signin/enroll/skip",
                json!({ "transaction": transaction(&answer) }),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_signed_in(&app, &done).await;
    }
}

#[tokio::test]
async fn spec_row_9_encourage_with_otp_outside_asks_email_then_optional_enrollment() {
    let app = spawn_app().await;
    row_user(&app, None, Require2fa::Encourage, true, false, false).await;
    let (_, answer) = sign_in(&app, "jane").await;
    assert_eq!(
        (answer["status"].as_str(), answer["method"].as_str()),
        (Some("otp_required"), Some("email"))
    );
    let code = app.last_emailed_code().await;
    let (_, next) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": transaction(&answer), "code": code }),
        )
        .await;
    assert_eq!(next["status"], "enroll");
    assert_eq!(next["required"], false);
    let (_, done) = app
        .post(
            "/api/v1/signin/enroll/skip",
            json!({ "transaction": transaction(&next) }),
        )
        .await;
    assert_signed_in(&app, &done).await;
}

#[tokio::test]
async fn spec_row_10_encourage_with_otp_in_network_offers_enrollment_without_email() {
    let app = spawn_app().await;
    row_user(&app, None, Require2fa::Encourage, true, false, true).await;
    let (_, answer) = sign_in(&app, "jane").await;
    assert_eq!(answer["status"], "enroll");
    assert_eq!(answer["required"], false);
    assert!(app.mails().await.is_empty());
}

/// Enrolls a TOTP device through the API and returns the answer to Complete Setup.
pub(crate) async fn enroll_through_api(
    app: &TestApp,
    transaction: &str,
    mode: &str,
) -> (StatusCode, Value) {
    let (status, setup) = app
        .post(
            "/api/v1/signin/enroll",
            json!({ "transaction": transaction, "method": "totp", "prompt_mode": mode }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{setup}");
    let uri = twostep::otp::KeyUri::parse(setup["otpauth_uri"].as_str().unwrap()).unwrap();
    assert_eq!(uri.secret.to_base32(), setup["secret"].as_str().unwrap());
    assert_eq!(uri.issuer.as_deref(), Some("St. Elsewhere"));
    assert_eq!(uri.account, "jane");
    let totp = Totp {
        secret: uri.secret,
        algorithm: uri.algorithm,
        digits: uri.digits,
        period: twostep::otp::Period::DEFAULT,
    };
    app.post(
        "/api/v1/signin/enroll/confirm",
        json!({ "transaction": transaction, "code": app.totp_now(&totp) }),
    )
    .await
}

#[tokio::test]
async fn spec_row_11_force_requires_enrollment_even_in_network() {
    for in_network in [false, true] {
        let app = spawn_app().await;
        row_user(&app, None, Require2fa::Force, false, false, in_network).await;
        let (_, answer) = sign_in(&app, "jane").await;
        assert_eq!(answer["status"], "enroll");
        assert_eq!(answer["required"], true);
        let (status, refused) = app
            .post(
                "/api/v1/signin/enroll/skip",
                json!({ "transaction": transaction(&answer) }),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(refused["code"], "enrollment_required");
        let (status, done) = enroll_through_api(&app, &transaction(&answer), "every_login").await;
        assert_eq!(status, StatusCode::OK);
        assert_signed_in(&app, &done).await;
        // From now on the device is asked for.
        let (_, again) = sign_in(&app, "jane").await;
        assert_eq!(again["status"], "otp_required");
        assert_eq!(again["method"], "device");
        app.stop().await;
    }
}

#[tokio::test]
async fn spec_row_12_force_with_otp_outside_asks_email_then_required_enrollment() {
    let app = spawn_app().await;
    row_user(&app, None, Require2fa::Force, true, false, false).await;
    let (_, answer) = sign_in(&app, "jane").await;
    assert_eq!(answer["method"], "email");
    let code = app.last_emailed_code().await;
    let (_, next) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": transaction(&answer), "code": code }),
        )
        .await;
    assert_eq!(next["status"], "enroll");
    assert_eq!(next["required"], true);
    let (_, done) = enroll_through_api(&app, &transaction(&next), "when_appropriate").await;
    assert_signed_in(&app, &done).await;
    // The device replaces the emailed OTP for good (row 3 now).
    let (_, again) = sign_in(&app, "jane").await;
    assert_eq!(again["method"], "device");
}

#[tokio::test]
async fn spec_row_13_force_with_otp_in_network_requires_enrollment_without_email() {
    let app = spawn_app().await;
    row_user(&app, None, Require2fa::Force, true, false, true).await;
    let (_, answer) = sign_in(&app, "jane").await;
    assert_eq!(answer["status"], "enroll");
    assert_eq!(answer["required"], true);
    assert!(app.mails().await.is_empty());
}

#[tokio::test]
async fn lockout_refuses_even_the_right_password_and_code_with_the_generic_answer() {
    let app = spawn_app().await;
    let (user, totp) = row_user(
        &app,
        Some(PromptMode::EveryLogin),
        Require2fa::Force,
        false,
        false,
        false,
    )
    .await;
    app.settings(&[(SettingKey::LockoutThreshold, "3")]).await;
    let totp = totp.unwrap();
    let (_, first) = sign_in(&app, "jane").await;
    for _ in 0..2 {
        let (status, wrong) = app
            .post(
                "/api/v1/signin/otp",
                json!({ "transaction": transaction(&first), "code": "000000" }),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(wrong["code"], "invalid_credentials");
    }
    let (status, wrong_password) = app
        .post(
            "/api/v1/signin",
            json!({ "username": "jane", "password": "wrong password 1" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let locked = app.store.user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(locked.failed_count, 3);
    assert!(locked.is_locked(app.clock.now_ts()));

    let (status, right_password) = sign_in(&app, "jane").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        right_password, wrong_password,
        "a locked account gets the wrong-password answer"
    );
    let (status, right_code) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": transaction(&first), "code": app.totp_now(&totp) }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(right_code["code"], "invalid_credentials");

    // Lockout Minutes (30) later, the right credentials work again.
    app.clock.advance_seconds(30 * 60);
    let (_, answer) = sign_in(&app, "jane").await;
    assert_eq!(answer["status"], "otp_required");
    let (_, done) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": transaction(&answer), "code": app.totp_now(&totp) }),
        )
        .await;
    assert_signed_in(&app, &done).await;
    assert_eq!(
        app.store
            .user_by_id(user.id)
            .await
            .unwrap()
            .unwrap()
            .failed_count,
        0,
        "success resets"
    );
}

#[tokio::test]
async fn unknown_users_wrong_passwords_and_locked_accounts_get_one_answer() {
    let app = spawn_app().await;
    row_user(&app, None, Require2fa::No, false, false, false).await;
    let (s1, unknown) = app
        .post(
            "/api/v1/signin",
            json!({ "username": "nobody", "password": "some password 1" }),
        )
        .await;
    let (s2, wrong) = app
        .post(
            "/api/v1/signin",
            json!({ "username": "jane", "password": "some password 1" }),
        )
        .await;
    let (s3, malformed) = app
        .post(
            "/api/v1/signin",
            json!({ "username": "not a name!", "password": "x" }),
        )
        .await;
    assert_eq!(
        (s1, s2, s3),
        (
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED
        )
    );
    assert_eq!(unknown, wrong);
    assert_eq!(unknown, malformed);
    assert_eq!(unknown["code"], "invalid_credentials");
}

#[tokio::test]
async fn usernames_are_case_insensitive_at_sign_in() {
    let app = spawn_app().await;
    row_user(&app, None, Require2fa::No, false, false, false).await;
    let (_, answer) = app
        .post(
            "/api/v1/signin",
            json!({ "username": "JANE", "password": TestApp::password_of("jane") }),
        )
        .await;
    assert_signed_in(&app, &answer).await;
}

#[tokio::test]
async fn an_expired_transaction_asks_for_the_password_again() {
    let app = spawn_app().await;
    let (_, totp) = row_user(
        &app,
        Some(PromptMode::EveryLogin),
        Require2fa::No,
        false,
        false,
        false,
    )
    .await;
    app.settings(&[(SettingKey::OtpCsrfValidMinutes, "5")])
        .await;
    let (_, answer) = sign_in(&app, "jane").await;
    app.clock.advance_seconds(5 * 60);
    let (status, expired) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": transaction(&answer), "code": app.totp_now(&totp.unwrap()) }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(expired["code"], "transaction_expired");
    let (status, unknown) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": "not-a-token", "code": "123456" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown["code"], "transaction_expired");
}

#[tokio::test]
async fn send_a_new_code_is_refused_within_the_request_delay_with_retry_after() {
    let app = spawn_app().await;
    row_user(&app, None, Require2fa::No, true, false, false).await;
    let (_, answer) = sign_in(&app, "jane").await;
    let first = app.last_emailed_code().await;
    app.clock.advance_seconds(10);
    let (status, refused) = app
        .post(
            "/api/v1/signin/otp/resend",
            json!({ "transaction": transaction(&answer) }),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused["code"], "otp_request_delay");
    assert_eq!(refused["retry_after"], 20);
    app.clock.advance_seconds(20);
    let (status, sent) = app
        .post(
            "/api/v1/signin/otp/resend",
            json!({ "transaction": transaction(&answer) }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(sent["sent_to"], "j***@example.org");
    let second = app.last_emailed_code().await;
    assert_eq!(app.mails().await.len(), 2);
    // The new code voids the old one.
    let (status, _) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": transaction(&answer), "code": first }),
        )
        .await;
    assert!(first == second || status == StatusCode::UNAUTHORIZED);
    let (_, done) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": transaction(&answer), "code": second }),
        )
        .await;
    assert_signed_in(&app, &done).await;
}

#[tokio::test]
async fn a_new_sign_in_within_the_request_delay_sends_nothing_and_says_when() {
    let app = spawn_app().await;
    row_user(&app, None, Require2fa::No, true, false, false).await;
    sign_in(&app, "jane").await;
    app.clock.advance_seconds(12);
    let (_, second) = sign_in(&app, "jane").await;
    assert_eq!(second["method"], "email");
    assert_eq!(second["resend_after"], 18);
    assert_eq!(
        app.mails().await.len(),
        1,
        "nothing sent for the second sign-in"
    );
}

#[tokio::test]
async fn an_expired_emailed_code_is_refused_and_counts_as_a_failure() {
    let app = spawn_app().await;
    let (user, _) = row_user(&app, None, Require2fa::No, true, false, false).await;
    app.settings(&[(SettingKey::OtpValidSeconds, "60")]).await;
    let (_, answer) = sign_in(&app, "jane").await;
    let code = app.last_emailed_code().await;
    app.clock.advance_seconds(60);
    let (status, refused) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": transaction(&answer), "code": code }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused["code"], "invalid_credentials");
    assert_eq!(
        app.store
            .user_by_id(user.id)
            .await
            .unwrap()
            .unwrap()
            .failed_count,
        1
    );
}

#[tokio::test]
async fn a_replayed_totp_code_is_refused() {
    let app = spawn_app().await;
    let (_, totp) = row_user(
        &app,
        Some(PromptMode::EveryLogin),
        Require2fa::No,
        false,
        false,
        false,
    )
    .await;
    let code = app.totp_now(&totp.unwrap());
    let (_, first) = sign_in(&app, "jane").await;
    let (_, done) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": transaction(&first), "code": code }),
        )
        .await;
    assert_signed_in(&app, &done).await;
    let (_, second) = sign_in(&app, "jane").await;
    let (status, replay) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": transaction(&second), "code": code }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(replay["code"], "invalid_credentials");
}

async fn bypass_network_user(app: &TestApp) -> Totp {
    let role = app.role("Nurses", Require2fa::Force, false, false).await;
    let user = app.user("jane", &role, true).await;
    let totp = app.enroll_totp(&user, PromptMode::WhenAppropriate).await;
    app.settings(&[(SettingKey::BypassEnabled, "true")]).await;
    let rule = twostep::domain::IpRule {
        network: twostep::domain::IpNetwork::parse("10.20.0.0/16").unwrap(),
        bypass_2fa: true,
        note: "Ward 7".into(),
    };
    app.store
        .add_ip_rule(&rule, app.clock.now_ts())
        .await
        .unwrap();
    totp
}

/// The client address of the newest successful sign-in in the audit log.
async fn last_sign_in_ip(app: &TestApp) -> Option<String> {
    let entries = app
        .store
        .audit_entries(&twostep::store::AuditQuery {
            event: Some(twostep::domain::AuditEvent::SignInSucceeded),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    entries.first().and_then(|entry| entry.client_ip.clone())
}

#[tokio::test]
async fn x_forwarded_for_from_an_untrusted_peer_never_bypasses() {
    let app = spawn_app().await;
    bypass_network_user(&app).await;
    let body = json!({ "username": "jane", "password": TestApp::password_of("jane") });
    let (_, answer) = app
        .post_with("/api/v1/signin", body, &[("X-Forwarded-For", "10.20.0.5")])
        .await;
    assert_eq!(
        answer["status"], "otp_required",
        "a spoofed header is ignored"
    );
}

#[tokio::test]
async fn x_forwarded_for_from_a_trusted_proxy_gives_the_client_address() {
    let app = spawn_app_with(AppOptions {
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        ..Default::default()
    })
    .await;
    bypass_network_user(&app).await;
    let body = json!({ "username": "jane", "password": TestApp::password_of("jane") });
    let (_, inside) = app
        .post_with(
            "/api/v1/signin",
            body.clone(),
            &[("X-Forwarded-For", "203.0.113.7, 10.20.0.5")],
        )
        .await;
    assert_signed_in(&app, &inside).await;
    let (_, outside) = app
        .post_with(
            "/api/v1/signin",
            body,
            &[("X-Forwarded-For", "10.20.0.5, 203.0.113.7")],
        )
        .await;
    assert_eq!(
        outside["status"], "otp_required",
        "the right-most untrusted hop is the client"
    );
}

#[tokio::test]
async fn an_unparsable_hop_from_a_trusted_proxy_in_a_bypass_network_asks_the_otp() {
    let app = spawn_app_with(AppOptions {
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        ..Default::default()
    })
    .await;
    let totp = bypass_network_user(&app).await;
    // The proxy itself is in a bypass network.
    let rule = twostep::domain::IpRule {
        network: twostep::domain::IpNetwork::parse("127.0.0.0/8").unwrap(),
        bypass_2fa: true,
        note: "the reverse proxy".into(),
    };
    app.store
        .add_ip_rule(&rule, app.clock.now_ts())
        .await
        .unwrap();
    let body = json!({ "username": "jane", "password": TestApp::password_of("jane") });

    for header in ["a", "10.20.0.5, a", "10.20.0.5,", "10.20.0.5:443"] {
        let (_, unknown) = app
            .post_with(
                "/api/v1/signin",
                body.clone(),
                &[("X-Forwarded-For", header)],
            )
            .await;
        assert_eq!(
            unknown["status"], "otp_required",
            "{header:?}: an unknown client is not the proxy"
        );
        assert_eq!(unknown["method"], "device", "{header:?}");
    }
    let (_, unknown) = app
        .post_with("/api/v1/signin", body.clone(), &[("X-Forwarded-For", "a")])
        .await;
    let (_, done) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": transaction(&unknown), "code": app.totp_now(&totp) }),
        )
        .await;
    assert_signed_in(&app, &done).await;
    assert_eq!(last_sign_in_ip(&app).await.as_deref(), Some("unknown"));

    // A valid hop is still the client: in network bypasses, outside asks the code.
    let (_, inside) = app
        .post_with(
            "/api/v1/signin",
            body.clone(),
            &[("X-Forwarded-For", "a, 10.20.0.5")],
        )
        .await;
    assert_signed_in(&app, &inside).await;
    assert_eq!(last_sign_in_ip(&app).await.as_deref(), Some("10.20.0.5"));
    let (_, outside) = app
        .post_with(
            "/api/v1/signin",
            body.clone(),
            &[("X-Forwarded-For", "203.0.113.7")],
        )
        .await;
    assert_eq!(outside["status"], "otp_required");
    // Without any header the proxy connected directly: it is the client, in network.
    let (_, direct) = app.post("/api/v1/signin", body).await;
    assert_signed_in(&app, &direct).await;
    assert_eq!(last_sign_in_ip(&app).await.as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn an_emailed_otp_without_an_email_address_stops_with_email_missing() {
    let app = spawn_app().await;
    let role = app.role("Clerks", Require2fa::No, true, false).await;
    app.user("jane", &role, false).await;
    let (status, answer) = sign_in(&app, "jane").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(answer["code"], "email_missing");
    assert!(app.mails().await.is_empty());
}

#[tokio::test]
async fn the_bootstrap_admin_signs_in_and_me_reports_role_and_two_step() {
    let app = spawn_app().await;
    let (_, answer) = app
        .post(
            "/api/v1/signin",
            json!({ "username": "admin", "password": app.admin_password }),
        )
        .await;
    assert_eq!(
        answer["status"], "enroll",
        "System Administrator encourages 2FA"
    );
    let (_, done) = app
        .post(
            "/api/v1/signin/enroll/skip",
            json!({ "transaction": transaction(&answer) }),
        )
        .await;
    let (status, me) = app.get_json("/api/v1/me", done["session"].as_str()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["username"], "admin");
    assert_eq!(me["role"], "System Administrator");
    assert_eq!(me["two_step"], "not_enabled");
    let (status, _) = app.get_json("/api/v1/me", Some("forged-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_forced_password_change_comes_before_the_session() {
    let app = spawn_app().await;
    let role = app.role("Plain", Require2fa::No, false, false).await;
    let user = app.user("jane", &role, true).await;
    app.set_temporary_password(&user, "temporary password 1")
        .await;
    let (_, answer) = app
        .post(
            "/api/v1/signin",
            json!({ "username": "jane", "password": "temporary password 1" }),
        )
        .await;
    assert_eq!(answer["status"], "password_change_required");
    let (status, short) = app
        .post(
            "/api/v1/signin/password",
            json!({ "transaction": transaction(&answer), "new_password": "short" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(short["code"], "invalid_password");
    let (_, done) = app
        .post("/api/v1/signin/password", json!({ "transaction": transaction(&answer), "new_password": "a much better password" }))
        .await;
    assert_signed_in(&app, &done).await;
    let (_, again) = app
        .post(
            "/api/v1/signin",
            json!({ "username": "jane", "password": "a much better password" }),
        )
        .await;
    assert_signed_in(&app, &again).await;
}

#[tokio::test]
async fn malformed_requests_get_clear_json_errors() {
    let app = spawn_app().await;
    let url = format!("{}/api/v1/signin", app.address);
    let response = app
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json::<Value>().await.unwrap()["code"],
        "malformed_json"
    );
    let response = app
        .client
        .post(&url)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, missing) = app
        .post("/api/v1/signin", json!({ "username": "jane" }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(missing["code"], "invalid_input");
    let huge = "x".repeat(1024 * 1024);
    let response = app
        .client
        .post(&url)
        .json(&json!({ "username": huge, "password": "p" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (status, bad) = app
        .post(
            "/api/v1/signin/enroll",
            json!({ "transaction": "t", "method": "sms", "prompt_mode": "every_login" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad["field"], "method");
    // The server is fine afterwards.
    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn responses_carry_the_security_headers() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/api/v1/signin", app.address))
        .json(&json!({"username":"a","password":"b"}))
        .send()
        .await
        .unwrap();
    let headers = response.headers();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("unsafe-inline"));
    assert!(csp.contains("default-src 'none'"));
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn a_failed_sign_in_takes_at_least_the_failure_delay() {
    let app = spawn_app_with(AppOptions {
        keep_failure_delay: true,
        ..Default::default()
    })
    .await;
    row_user(&app, None, Require2fa::No, false, false, false).await;
    for (name, password) in [("nobody", "some password 1"), ("jane", "some password 1")] {
        let started = tokio::time::Instant::now();
        let (status, _) = app
            .post(
                "/api/v1/signin",
                json!({ "username": name, "password": password }),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(
            started.elapsed() >= std::time::Duration::from_millis(500),
            "{name}: {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn sessions_end_after_30_idle_minutes_and_12_hours_at_most() {
    let app = spawn_app().await;
    row_user(&app, None, Require2fa::No, false, false, false).await;
    let (_, answer) = sign_in(&app, "jane").await;
    let session = answer["session"].as_str().unwrap().to_owned();
    app.clock.advance_seconds(29 * 60);
    assert_eq!(
        app.get_json("/api/v1/me", Some(&session)).await.0,
        StatusCode::OK
    );
    app.clock.advance_seconds(30 * 60);
    assert_eq!(
        app.get_json("/api/v1/me", Some(&session)).await.0,
        StatusCode::UNAUTHORIZED,
        "idle"
    );

    let (_, answer) = sign_in(&app, "jane").await;
    let session = answer["session"].as_str().unwrap().to_owned();
    for _ in 0..24 {
        app.clock.advance_seconds(29 * 60);
        assert_eq!(
            app.get_json("/api/v1/me", Some(&session)).await.0,
            StatusCode::OK
        );
    }
    app.clock.advance_seconds(29 * 60);
    assert_eq!(
        app.get_json("/api/v1/me", Some(&session)).await.0,
        StatusCode::UNAUTHORIZED,
        "absolute 12 h"
    );
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let app = spawn_app().await;
    row_user(&app, None, Require2fa::No, false, false, false).await;
    let (_, answer) = sign_in(&app, "jane").await;
    let session = answer["session"].as_str().unwrap();
    let response = app
        .client
        .post(format!("{}/api/v1/signout", app.address))
        .bearer_auth(session)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get_json("/api/v1/me", Some(session)).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_bootstrap_password_is_changed_before_enrollment() {
    let app = spawn_app().await;
    let admin = app
        .store
        .user_by_username(&twostep::domain::Username::parse("admin").unwrap())
        .await
        .unwrap()
        .unwrap();
    app.set_temporary_password(&admin, "printed once 12345")
        .await;
    let (_, answer) = app
        .post(
            "/api/v1/signin",
            json!({ "username": "admin", "password": "printed once 12345" }),
        )
        .await;
    assert_eq!(answer["status"], "password_change_required");
    let (_, next) = app
        .post("/api/v1/signin/password", json!({ "transaction": transaction(&answer), "new_password": "the admin's own password" }))
        .await;
    assert_eq!(next["status"], "enroll", "then the encouraged set-up");
    assert_eq!(next["required"], false);
}

#[tokio::test]
async fn a_new_data_folder_and_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app().await;
    let mode =
        |path: std::path::PathBuf| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(app.dir.path().join("twostep.db")), 0o600);
    assert_eq!(mode(app.dir.path().join("twostep.key")), 0o600);
}

#[tokio::test]
async fn a_locked_account_gets_no_new_codes_and_code_guessing_locks_it() {
    let app = spawn_app().await;
    row_user(&app, None, Require2fa::No, true, false, false).await;
    app.settings(&[(SettingKey::LockoutThreshold, "3")]).await;
    let (_, answer) = sign_in(&app, "jane").await;
    let code = app.last_emailed_code().await;
    for guess in ["000000", "111111", "222222"] {
        let guess = if guess == code { "333333" } else { guess };
        let (status, _) = app
            .post(
                "/api/v1/signin/otp",
                json!({ "transaction": transaction(&answer), "code": guess }),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, right) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": transaction(&answer), "code": code }),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "locked: even the right code"
    );
    assert_eq!(right["code"], "invalid_credentials");
    app.clock.advance_seconds(60);
    let (status, _) = app
        .post(
            "/api/v1/signin/otp/resend",
            json!({ "transaction": transaction(&answer) }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let mails = app.mails().await;
    let codes = mails
        .iter()
        .filter(|mail| crate::helpers::code_in_email(mail).is_some())
        .count();
    assert_eq!(codes, 1, "no new code for a locked account");
    // SPEC 11: the locked user is emailed (without a code).
    assert_eq!(mails.len(), 2, "the code, then the lock's notification");
    assert!(mails[1].contains("Subject: Your St. Elsewhere account was locked"));
}

#[tokio::test]
async fn a_password_of_the_wrong_type_is_not_echoed_in_the_error() {
    let app = spawn_app().await;
    let (status, answer) = app
        .post(
            "/api/v1/signin",
            json!({ "username": "jane", "password": 987654321 }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["code"], "invalid_input");
    assert!(!answer.to_string().contains("987654321"), "{answer}");
}

/// Signs in with an emailed code to the end, then again at once: the completed sign-in
/// (its transaction and code deleted) must not reset the request delay (SPEC section 4).
async fn a_completed_sign_in_keeps_the_request_delay(app: &TestApp) {
    row_user(app, None, Require2fa::No, true, false, false).await;
    let (_, first) = sign_in(app, "jane").await;
    let code = app.last_emailed_code().await;
    let (_, done) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": transaction(&first), "code": code }),
        )
        .await;
    assert_signed_in(app, &done).await;

    app.clock.advance_seconds(1);
    let (status, second) = sign_in(app, "jane").await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["method"], "email");
    assert_eq!(second["resend_after"], 29, "{second}");
    assert_eq!(app.mails().await.len(), 1, "nothing sent within the delay");
    let (status, refused) = app
        .post(
            "/api/v1/signin/otp/resend",
            json!({ "transaction": transaction(&second) }),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{refused}");
    assert_eq!(refused["retry_after"], 29);
    assert_eq!(app.mails().await.len(), 1);

    // After the delay, a new sign-in sends at once.
    app.clock.advance_seconds(29);
    let (_, third) = sign_in(app, "jane").await;
    assert_eq!(third["sent_to"], "j***@example.org");
    assert!(third.get("resend_after").is_none(), "{third}");
    assert_eq!(app.mails().await.len(), 2);
    let code = app.last_emailed_code().await;
    let (_, done) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": transaction(&third), "code": code }),
        )
        .await;
    assert_signed_in(app, &done).await;
}

#[tokio::test]
async fn a_new_sign_in_right_after_a_completed_one_sends_nothing_within_the_delay() {
    let app = spawn_app().await;
    a_completed_sign_in_keeps_the_request_delay(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_new_sign_in_right_after_a_completed_one_sends_nothing_within_the_delay_on_postgresql() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let app = spawn_app_with(AppOptions {
        database: Some(db.url.clone()),
        ..AppOptions::default()
    })
    .await;
    a_completed_sign_in_keeps_the_request_delay(&app).await;
    app.stop().await;
    db.finish().await;
}
