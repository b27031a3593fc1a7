//! The account page and its JSON API (SPEC section 10 "/account") through real HTTP: the
//! overview, setting up and replacing a device under fresh proof, changing the password,
//! signing out the other sessions, and the audit entry of each action.

use reqwest::StatusCode;
use serde_json::{json, Value};
use twostep::domain::{AuditEvent, PromptMode, Require2fa, User};
use twostep::otp::Totp;
use twostep::store::AuditQuery;

use crate::helpers::{spawn_app, totp_of, TestApp};
use crate::pages;

/// A user of a role that does not ask for 2-step verification.
async fn plain_user(app: &TestApp, name: &str) -> User {
    let role = app.role("Clerks", Require2fa::No, false, false).await;
    app.user(name, &role, true).await
}

/// Signs in through the API with the password and, when asked, the device's current code
/// (then the clock moves on a step, so that the next code is a new one).
async fn session(app: &TestApp, name: &str, password: &str, totp: Option<&Totp>) -> String {
    let (status, answer) = app
        .post(
            "/api/v1/signin",
            json!({ "username": name, "password": password }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let answer = if answer["status"] == "otp_required" {
        let totp = totp.expect("a device for the code step");
        let code = app.totp_now(totp);
        app.clock.advance_seconds(30);
        let (status, answer) = app
            .post(
                "/api/v1/signin/otp",
                json!({ "transaction": answer["transaction"], "code": code }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer
    } else {
        answer
    };
    assert_eq!(answer["status"], "signed_in", "{answer}");
    answer["session"].as_str().unwrap().to_owned()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn post_as(app: &TestApp, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    app.post_with(path, body, &[("Authorization", &bearer(token))])
        .await
}

async fn audit(app: &TestApp, event: AuditEvent) -> Vec<(Option<String>, String)> {
    app.store
        .audit_entries(&AuditQuery {
            event: Some(event),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|entry| (entry.subject, entry.detail))
        .collect()
}

async fn failed_count(app: &TestApp, user: &User) -> u32 {
    app.store
        .user_by_id(user.id)
        .await
        .unwrap()
        .unwrap()
        .failed_count
}

/// SPEC 10: `GET /api/v1/account` has the documented shape, in Unix milliseconds; no
/// session is 401.
#[tokio::test]
async fn the_overview_has_the_documented_shape() {
    let app = spawn_app().await;
    let jane = plain_user(&app, "jane").await;
    let totp = app.enroll_totp(&jane, PromptMode::EveryLogin).await;
    let token = session(&app, "jane", &TestApp::password_of("jane"), Some(&totp)).await;

    let (status, answer) = app.get_json("/api/v1/account", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer["code"], "unauthenticated");

    let (status, account) = app.get_json("/api/v1/account", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{account}");
    assert_eq!(account["username"], "jane");
    assert_eq!(account["display_name"], "jane Display");
    assert_eq!(account["email"], "jane@example.org");
    assert_eq!(account["role"], "Clerks");
    assert_eq!(account["two_step"], "enabled");
    assert_eq!(account["recovery_codes_left"], 0);
    let devices = account["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0]["method"], "totp");
    assert_eq!(devices[0]["prompt_mode"], "every_login");
    assert!(devices[0]["id"].is_i64());
    assert_eq!(
        devices[0]["created_at"],
        crate::helpers::START.millis(),
        "{account}"
    );
    // The sign-in's code was the last one accepted.
    assert!(devices[0]["last_used_at"].as_i64().unwrap() >= crate::helpers::START.millis());
    let sessions = account["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["current"], true);
    assert_eq!(sessions[0]["ip"], "127.0.0.1");
    assert!(sessions[0]["created_at"].is_i64() && sessions[0]["last_seen_at"].is_i64());
    app.stop().await;
}

/// SPEC 10: "Set up now" needs no code when the user has no device yet; confirmed, it is
/// the device, audited.
#[tokio::test]
async fn set_up_now_needs_no_code_without_a_device() {
    let app = spawn_app().await;
    plain_user(&app, "jane").await;
    let token = session(&app, "jane", &TestApp::password_of("jane"), None).await;
    let (status, setup) = post_as(
        &app,
        &token,
        "/api/v1/account/device",
        json!({ "method": "totp", "prompt_mode": "every_login" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{setup}");
    assert!(setup["otpauth_uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/"));
    let totp = totp_of(setup["otpauth_uri"].as_str().unwrap());

    let (status, answer) = post_as(
        &app,
        &token,
        "/api/v1/account/device/confirm",
        json!({ "code": "000000x" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    let (status, confirmed) = post_as(
        &app,
        &token,
        "/api/v1/account/device/confirm",
        json!({ "code": app.totp_next(&totp) }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    // No codes before: a first set, shown once.
    assert_eq!(confirmed["recovery_codes"].as_array().unwrap().len(), 10);
    let (_, account) = app.get_json("/api/v1/account", Some(&token)).await;
    assert_eq!(account["two_step"], "enabled");
    assert_eq!(account["recovery_codes_left"], 10);
    assert_eq!(
        audit(&app, AuditEvent::DeviceSetupStarted).await,
        [(
            Some("jane".to_owned()),
            "on the account page: method=totp prompt_mode=every_login".to_owned()
        )]
    );
    assert_eq!(audit(&app, AuditEvent::DeviceEnrolled).await.len(), 1);
    app.stop().await;
}

/// SPEC 10: replacing a device needs a current code of it; a wrong one is the generic
/// 401, counted and audited; the old device works until the new one is confirmed, then
/// only the new one.
#[tokio::test]
async fn replacing_a_device_needs_fresh_proof_and_keeps_the_old_until_confirmed() {
    let app = spawn_app().await;
    let jane = plain_user(&app, "jane").await;
    let old = app.enroll_totp(&jane, PromptMode::EveryLogin).await;
    let token = session(&app, "jane", &TestApp::password_of("jane"), Some(&old)).await;
    let body = |code: Option<&str>| {
        let mut body = json!({ "method": "totp", "prompt_mode": "every_login" });
        if let Some(code) = code {
            body["code"] = json!(code);
        }
        body
    };

    let (status, answer) = post_as(&app, &token, "/api/v1/account/device", body(None)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["code"], "code_required");

    let before = failed_count(&app, &jane).await;
    let wrong = if app.totp_now(&old) == "123456" {
        "654321"
    } else {
        "123456"
    };
    let (status, answer) = post_as(&app, &token, "/api/v1/account/device", body(Some(wrong))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer["code"], "invalid_credentials");
    assert_eq!(failed_count(&app, &jane).await, before + 1);
    assert!(audit(&app, AuditEvent::SignInFailed)
        .await
        .contains(&(Some("jane".into()), "account: wrong device code".into())));

    let (status, setup) = post_as(
        &app,
        &token,
        "/api/v1/account/device",
        body(Some(&app.totp_next(&old))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{setup}");
    // The right code was a success: the count starts again.
    assert_eq!(failed_count(&app, &jane).await, 0);
    let new = totp_of(setup["otpauth_uri"].as_str().unwrap());

    // Not confirmed yet: the old device still signs in.
    session(&app, "jane", &TestApp::password_of("jane"), Some(&old)).await;

    let (status, confirmed) = post_as(
        &app,
        &token,
        "/api/v1/account/device/confirm",
        json!({ "code": app.totp_next(&new) }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    // She had no recovery codes (her first device came from an administrator): a first set.
    assert_eq!(confirmed["recovery_codes"].as_array().unwrap().len(), 10);

    // Now only the new one.
    let (_, answer) = app
        .post(
            "/api/v1/signin",
            json!({ "username": "jane", "password": TestApp::password_of("jane") }),
        )
        .await;
    let (status, _) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": answer["transaction"], "code": app.totp_next(&old) }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    session(&app, "jane", &TestApp::password_of("jane"), Some(&new)).await;
    app.stop().await;
}

/// SPEC 10: new recovery codes need fresh proof: none without a device (409), none
/// without a code (422), a wrong code is the generic 401 and counted; a current device
/// code or one of the user's recovery codes (used up by it) makes a new set of 10 that
/// replaces the old one; a recovery code also replaces a lost device, and the codes left
/// are kept.
#[tokio::test]
async fn new_recovery_codes_need_fresh_proof() {
    let app = spawn_app().await;
    let jane = plain_user(&app, "jane").await;
    let bare = session(&app, "jane", &TestApp::password_of("jane"), None).await;
    let (status, answer) = post_as(&app, &bare, "/api/v1/account/recovery-codes", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["code"], "no_device");

    let totp = app.enroll_totp(&jane, PromptMode::EveryLogin).await;
    let token = session(&app, "jane", &TestApp::password_of("jane"), Some(&totp)).await;
    let (status, answer) = post_as(&app, &token, "/api/v1/account/recovery-codes", json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["code"], "code_required");

    let before = failed_count(&app, &jane).await;
    for wrong in ["abcde-fghjk", "000000"] {
        let (status, answer) = post_as(
            &app,
            &token,
            "/api/v1/account/recovery-codes",
            json!({ "code": wrong }),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
        assert_eq!(answer["code"], "invalid_credentials");
    }
    assert_eq!(failed_count(&app, &jane).await, before + 2);

    let (status, first) = post_as(
        &app,
        &token,
        "/api/v1/account/recovery-codes",
        json!({ "code": app.totp_next(&totp) }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let first: Vec<String> = serde_json::from_value(first["codes"].clone()).unwrap();
    assert_eq!(first.len(), 10);

    // A recovery code is proof too; it is used up, and the new set replaces the old.
    let (status, second) = post_as(
        &app,
        &token,
        "/api/v1/account/recovery-codes",
        json!({ "code": first[0] }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let second: Vec<String> = serde_json::from_value(second["codes"].clone()).unwrap();
    assert!(second.iter().all(|code| !first.contains(code)));
    let (status, answer) = post_as(
        &app,
        &token,
        "/api/v1/account/recovery-codes",
        json!({ "code": first[1] }),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a code of the older set: {answer}"
    );
    let (_, account) = app.get_json("/api/v1/account", Some(&token)).await;
    assert_eq!(account["recovery_codes_left"], 10);
    assert_eq!(
        audit(&app, AuditEvent::RecoveryCodesGenerated).await.len(),
        2
    );
    assert_eq!(audit(&app, AuditEvent::RecoveryCodeUsed).await.len(), 1);

    // A lost phone: a recovery code replaces the device; the other codes are kept.
    let (status, setup) = post_as(
        &app,
        &token,
        "/api/v1/account/device",
        json!({ "method": "totp", "prompt_mode": "every_login", "code": second[0] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{setup}");
    let phone = totp_of(setup["otpauth_uri"].as_str().unwrap());
    let (status, confirmed) = post_as(
        &app,
        &token,
        "/api/v1/account/device/confirm",
        json!({ "code": app.totp_next(&phone) }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    assert_eq!(
        confirmed["recovery_codes"],
        json!([]),
        "codes were left: kept"
    );
    let (_, account) = app.get_json("/api/v1/account", Some(&token)).await;
    assert_eq!(account["recovery_codes_left"], 9);
    session(&app, "jane", &TestApp::password_of("jane"), Some(&phone)).await;
    app.stop().await;
}

/// SPEC 10: a wrong current password is the generic 401, counted; the right one changes
/// it (204): the new one signs in, the old one does not, the user's other sessions end;
/// audited.
#[tokio::test]
async fn changing_the_password_checks_the_current_one() {
    let app = spawn_app().await;
    let jane = plain_user(&app, "jane").await;
    let old = TestApp::password_of("jane");
    let token = session(&app, "jane", &old, None).await;
    let elsewhere = session(&app, "jane", &old, None).await;
    let new = "correct horse battery staple 42";

    let (status, answer) = post_as(
        &app,
        &token,
        "/api/v1/account/password",
        json!({ "current_password": "not my password at all", "new_password": new }),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer["code"], "invalid_credentials");
    assert_eq!(failed_count(&app, &jane).await, 1);

    let (status, answer) = post_as(
        &app,
        &token,
        "/api/v1/account/password",
        json!({ "current_password": old, "new_password": "tiny42" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["code"], "invalid_password");
    assert!(!answer["message"].as_str().unwrap().contains("tiny42"));

    let (status, answer) = post_as(
        &app,
        &token,
        "/api/v1/account/password",
        json!({ "current_password": old, "new_password": new }),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
    // Whoever knew the old password is signed out; this session goes on.
    let (status, _) = app.get_json("/api/v1/me", Some(&elsewhere)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.get_json("/api/v1/me", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(audit(&app, AuditEvent::OtherSessionsEnded)
        .await
        .contains(&(
            Some("jane".into()),
            "with the password change: 1 ended".into()
        )));
    session(&app, "jane", new, None).await;
    let (status, _) = app
        .post(
            "/api/v1/signin",
            json!({ "username": "jane", "password": old }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(audit(&app, AuditEvent::PasswordChanged)
        .await
        .contains(&(Some("jane".into()), "on the account page".into())));
    app.stop().await;
}

/// SPEC 10: "sign out other sessions" ends every other session of the user (their bearer
/// token gets 401), keeps this one, and is audited.
#[tokio::test]
async fn signing_out_the_other_sessions_keeps_this_one() {
    let app = spawn_app().await;
    plain_user(&app, "jane").await;
    let john = plain_user(&app, "john").await;
    let password = TestApp::password_of("jane");
    let here = session(&app, "jane", &password, None).await;
    let there = session(&app, "jane", &password, None).await;
    let johns = session(&app, "john", &TestApp::password_of("john"), None).await;
    let (_, account) = app.get_json("/api/v1/account", Some(&here)).await;
    assert_eq!(
        account["sessions"].as_array().unwrap().len(),
        2,
        "{account}"
    );

    let response = app
        .client
        .delete(format!("{}/api/v1/account/sessions", app.address))
        .bearer_auth(&here)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (status, _) = app.get_json("/api/v1/me", Some(&there)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.get_json("/api/v1/me", Some(&here)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.get_json("/api/v1/me", Some(&johns)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "another user's session is not ended"
    );
    let (_, account) = app.get_json("/api/v1/account", Some(&here)).await;
    assert_eq!(account["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(
        audit(&app, AuditEvent::OtherSessionsEnded).await,
        [(
            Some("jane".to_owned()),
            "on the account page: 1 ended".to_owned()
        )]
    );
    let _ = john;
    app.stop().await;
}

/// SPEC 10: the page: not signed in goes to sign-in; signed in (cookie), it shows the
/// status, "Set up now", the sessions, and a form error keeps the page.
#[tokio::test]
async fn the_account_page_shows_the_account_and_reports_errors() {
    let app = spawn_app().await;
    plain_user(&app, "jane").await;
    let page = pages::get(&app, "/account").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/signin");

    let signed = pages::sign_in(&app, "jane", &TestApp::password_of("jane")).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let home = pages::get(&app, "/").await;
    home.assert_contains(r#"href="/account">My account</a>"#);
    let page = pages::get(&app, "/account").await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_contains(r#"<strong id="two-step">Not Enabled</strong>"#);
    page.assert_contains("Set up now");
    page.assert_contains("This browser");
    page.assert_contains("Sign out other sessions");

    // A form without its token does nothing.
    let refused = pages::post(&app, "/account/sessions/end", &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let mismatch = pages::submit(
        &app,
        "/account",
        "/account/password",
        &[
            ("current_password", "x"),
            ("new_password", "correct horse battery staple 42"),
            ("confirm_password", "correct horse battery staple 43"),
        ],
    )
    .await;
    assert_eq!(mismatch.status, StatusCode::UNPROCESSABLE_ENTITY);
    mismatch.assert_contains("The two new passwords are not the same");
    assert!(!mismatch.body.contains("correct horse battery"));

    let setup = pages::submit(
        &app,
        "/account",
        "/account/device",
        &[("method", "totp"), ("prompt_mode", "when_appropriate")],
    )
    .await;
    assert_eq!(setup.status, StatusCode::SEE_OTHER);
    assert_eq!(setup.location(), "/account/device/confirm");
    let setup = pages::get(&app, "/account/device/confirm").await;
    setup.assert_contains(r#"id="manual-key""#);
    setup.assert_contains(r#"href="otpauth://totp/"#);
    let wrong = pages::submit(
        &app,
        "/account/device/confirm",
        "/account/device/confirm",
        &[("code", "12")],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    wrong.assert_contains("The code does not match");
    wrong.assert_contains(r#"id="manual-key""#);
    app.stop().await;
}

/// SPEC 10 and 19: every account endpoint is in the OpenAPI document, under the bearer
/// scheme, with its 401.
#[tokio::test]
async fn the_account_endpoints_are_in_the_openapi_document() {
    let app = spawn_app().await;
    let (status, doc) = app.get_json("/api/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    for (method, path) in [
        ("get", "/api/v1/account"),
        ("post", "/api/v1/account/device"),
        ("post", "/api/v1/account/device/confirm"),
        ("post", "/api/v1/account/recovery-codes"),
        ("post", "/api/v1/account/password"),
        ("delete", "/api/v1/account/sessions"),
    ] {
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path}");
        assert_eq!(
            operation["security"],
            json!([{ "bearer": [] }]),
            "{method} {path}"
        );
        assert!(operation["responses"]["401"].is_object(), "{method} {path}");
    }
    app.stop().await;
}

/// SPEC 10: the API also takes the session cookie of a browser, but not for a request
/// that another site's page started.
#[tokio::test]
async fn the_api_takes_the_session_cookie_from_this_site_only() {
    let app = spawn_app().await;
    plain_user(&app, "jane").await;
    let token = session(&app, "jane", &TestApp::password_of("jane"), None).await;
    let get = |site: Option<&'static str>| {
        let mut request = app
            .client
            .get(format!("{}/api/v1/account", app.address))
            .header("Cookie", format!("twostep_session={token}"));
        if let Some(site) = site {
            request = request.header("Sec-Fetch-Site", site);
        }
        request.send()
    };
    assert_eq!(get(None).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        get(Some("same-origin")).await.unwrap().status(),
        StatusCode::OK
    );
    let refused = get(Some("same-site")).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let answer: Value = refused.json().await.unwrap();
    assert_eq!(answer["code"], "unauthenticated");
    app.stop().await;
}

/// SPEC 10 "fresh proof": the proof belongs to the session that gave it. A device set up
/// after proof in one session cannot be seen nor confirmed from another session of the
/// same user, nor after 15 minutes; one an administrator started cannot be confirmed from
/// My account.
#[tokio::test]
async fn a_set_up_belongs_to_the_session_that_gave_proof() {
    let app = spawn_app().await;
    let jane = plain_user(&app, "jane").await;
    let old = app.enroll_totp(&jane, PromptMode::EveryLogin).await;
    let proving = session(&app, "jane", &TestApp::password_of("jane"), Some(&old)).await;
    let other = session(&app, "jane", &TestApp::password_of("jane"), Some(&old)).await;
    let (status, setup) = post_as(
        &app,
        &proving,
        "/api/v1/account/device",
        json!({ "method": "totp", "prompt_mode": "every_login", "code": app.totp_next(&old) }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{setup}");
    let new = totp_of(setup["otpauth_uri"].as_str().unwrap());

    // Another session of hers: no pending device to confirm, and no secret on a page.
    let (status, answer) = post_as(
        &app,
        &other,
        "/api/v1/account/device/confirm",
        json!({ "code": app.totp_now(&new) }),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["code"], "no_pending_device");
    let page = app
        .client
        .get(format!("{}/account/device/confirm", app.address))
        .header("Cookie", format!("twostep_session={other}"))
        .send()
        .await
        .unwrap();
    let body = page.text().await.unwrap();
    assert!(
        !body.contains(&new.secret.to_base32()),
        "the secret is shown elsewhere"
    );

    // Too late: 15 minutes on, the set-up has expired, also for the proving session.
    app.clock.advance_seconds(15 * 60 + 1);
    let (status, answer) = post_as(
        &app,
        &proving,
        "/api/v1/account/device/confirm",
        json!({ "code": app.totp_now(&new) }),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    let (_, account) = app.get_json("/api/v1/account", Some(&proving)).await;
    assert_eq!(account["devices"].as_array().unwrap().len(), 1);

    // An administrator's set-up is not My account's to confirm.
    let admin = app
        .store
        .user_by_username(&twostep::domain::Username::parse("admin").unwrap())
        .await
        .unwrap()
        .unwrap();
    let admin_token = app.api_token(&admin, "account test").await;
    let (status, started) = app
        .post_with(
            "/api/v1/users/jane/device",
            json!({ "method": "totp", "prompt_mode": "every_login" }),
            &[("Authorization", &format!("Bearer {admin_token}"))],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let by_admin = totp_of(started["otpauth_uri"].as_str().unwrap());
    let fresh = session(&app, "jane", &TestApp::password_of("jane"), Some(&old)).await;
    let (status, answer) = post_as(
        &app,
        &fresh,
        "/api/v1/account/device/confirm",
        json!({ "code": app.totp_now(&by_admin) }),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    // Her device is still the old one.
    session(&app, "jane", &TestApp::password_of("jane"), Some(&old)).await;
    app.stop().await;
}
