//! Security notifications (SPEC section 10, "Security notifications"; SPEC 11: the locked
//! user is emailed): one email per event through the outbox, to the user, with the
//! template of module "Security" for the event and no code, password or secret in it;
//! none when `notify_users` is off or the user has no email address; templates editable
//! in the API and the console, where `@user_otp` is refused.

use reqwest::{Method, StatusCode};
use serde_json::json;
use twostep::domain::{AuditEvent, SecurityEvent, SettingKey};
use twostep::mail::template::EmailTemplate;
use twostep::otp::Totp;
use twostep::store::AuditQuery;

use crate::admin_api::{admin, call};
use crate::admin_pages::sign_in_admin;
use crate::helpers::{
    free_port, spawn_app, spawn_app_with, totp_of, AppOptions, SmtpSink, TestApp,
};
use crate::pages::{get, submit};

/// A message as a reader sees it: header lines unfolded, quoted-printable decoded.
fn decoded(mail: &str) -> String {
    let joined = mail
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("\r\n ", " ")
        .replace("\r\n\t", " ")
        .replace("\n ", " ");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(value) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(value);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn subject_of(event: SecurityEvent) -> String {
    EmailTemplate::default_security(event)
        .subject
        .replace("@site_name", "St. Elsewhere")
}

/// An administrator sets up and confirms a TOTP device for `username`; the secrets the
/// set-up handed out (base32 secret, key URI, the confirming code).
async fn admin_adds_device(app: &TestApp, token: &str, username: &str) -> Vec<String> {
    let (status, setup) = call(
        app,
        Method::POST,
        &format!("/api/v1/users/{username}/device"),
        Some(token),
        Some(json!({ "method": "totp", "prompt_mode": "every_login" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{setup}");
    let uri = setup["otpauth_uri"].as_str().unwrap().to_owned();
    let code = app.totp_now(&totp_of(&uri));
    let (status, answer) = call(
        app,
        Method::POST,
        &format!("/api/v1/users/{username}/device/confirm"),
        Some(token),
        Some(json!({ "code": code })),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
    let secret = setup["secret"].as_str().unwrap().to_owned();
    vec![secret.replace(' ', ""), secret, uri, "otpauth".into(), code]
}

async fn admin_removes_device(app: &TestApp, token: &str, username: &str) {
    let (status, answer) = call(
        app,
        Method::DELETE,
        &format!("/api/v1/users/{username}/device"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
}

async fn admin_resets_password(app: &TestApp, token: &str, username: &str, password: &str) {
    let (status, answer) = call(
        app,
        Method::PATCH,
        &format!("/api/v1/users/{username}"),
        Some(token),
        Some(json!({ "password": password })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

/// Signs in with the temporary `password` and changes it to `new_password` at sign-in.
async fn user_changes_password(app: &TestApp, username: &str, password: &str, new_password: &str) {
    let (status, answer) = app
        .post(
            "/api/v1/signin",
            json!({ "username": username, "password": password }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "password_change_required", "{answer}");
    let (status, answer) = app
        .post(
            "/api/v1/signin/password",
            json!({ "transaction": answer["transaction"], "new_password": new_password }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

/// Signs in with the device's code, then makes a set of recovery codes on My account
/// (the device's next code as proof); the codes.
async fn user_makes_recovery_codes(app: &TestApp, username: &str, totp: &Totp) -> Vec<String> {
    app.clock.advance_seconds(30);
    let (_, answer) = app
        .post(
            "/api/v1/signin",
            json!({ "username": username, "password": TestApp::password_of(username) }),
        )
        .await;
    assert_eq!(answer["status"], "otp_required", "{answer}");
    let (_, answer) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": answer["transaction"], "code": app.totp_now(totp) }),
        )
        .await;
    assert_eq!(answer["status"], "signed_in", "{answer}");
    let session = answer["session"].as_str().unwrap().to_owned();
    app.clock.advance_seconds(30);
    let (status, answer) = app
        .post_with(
            "/api/v1/account/recovery-codes",
            json!({ "code": app.totp_now(totp) }),
            &[("Authorization", &format!("Bearer {session}"))],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    serde_json::from_value(answer["codes"].clone()).unwrap()
}

/// Signs in with a recovery code where the device code is asked.
async fn user_signs_in_with_recovery_code(app: &TestApp, username: &str, code: &str) {
    let (_, answer) = app
        .post(
            "/api/v1/signin",
            json!({ "username": username, "password": TestApp::password_of(username) }),
        )
        .await;
    assert_eq!(answer["status"], "otp_required", "{answer}");
    let (_, answer) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": answer["transaction"], "code": code }),
        )
        .await;
    assert_eq!(answer["status"], "signed_in", "{answer}");
    assert_eq!(answer["recovery_codes_left"], 9, "{answer}");
}

/// Wrong passwords until Lockout Threshold (2 here) locks the account; every answer is
/// the generic 401.
async fn lock_out(app: &TestApp, username: &str) {
    for _ in 0..2 {
        let (status, answer) = app
            .post(
                "/api/v1/signin",
                json!({ "username": username, "password": "not the password at all 7" }),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    }
}

/// SPEC 10 + 11: device added, recovery codes generated, a recovery code used, device
/// removed, password reset, password changed and account locked each send one message, over a real SMTP server, to the user, with the
/// event's template, and none of them holds the device secret, a code or a password.
#[tokio::test]
async fn every_wired_event_emails_the_user_its_template_without_a_secret() {
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
        (SettingKey::LockoutThreshold, "2"),
    ])
    .await;
    let token = admin(&app).await;
    let staff = app.store.role_by_name("Staff").await.unwrap().unwrap();
    app.user("jane", &staff, true).await;
    let reset = "correct horse battery staple 42";
    let changed = "another horse battery staple 43";
    let mut secrets = vec![
        TestApp::password_of("jane"),
        reset.to_owned(),
        changed.to_owned(),
    ];

    let device = admin_adds_device(&app, &token, "jane").await;
    let totp = totp_of(&device[2]);
    secrets.extend(device);
    assert_eq!(sink.wait_for(1, 20).await.len(), 1);
    let codes = user_makes_recovery_codes(&app, "jane", &totp).await;
    assert_eq!(sink.wait_for(2, 20).await.len(), 2);
    user_signs_in_with_recovery_code(&app, "jane", &codes[0]).await;
    assert_eq!(sink.wait_for(3, 20).await.len(), 3);
    secrets.extend(
        codes
            .iter()
            .flat_map(|code| [code.clone(), code.replace('-', "")]),
    );
    admin_removes_device(&app, &token, "jane").await;
    assert_eq!(sink.wait_for(4, 20).await.len(), 4);
    admin_resets_password(&app, &token, "jane", reset).await;
    assert_eq!(sink.wait_for(5, 20).await.len(), 5);
    user_changes_password(&app, "jane", reset, changed).await;
    assert_eq!(sink.wait_for(6, 20).await.len(), 6);
    lock_out(&app, "jane").await;
    let messages = sink.wait_for(7, 20).await;
    assert_eq!(messages.len(), 7, "one message per event");

    let events = [
        SecurityEvent::DeviceAdded,
        SecurityEvent::RecoveryCodesGenerated,
        SecurityEvent::RecoveryCodeUsed,
        SecurityEvent::DeviceRemoved,
        SecurityEvent::PasswordReset,
        SecurityEvent::PasswordChanged,
        SecurityEvent::AccountLocked,
    ];
    let mails: Vec<String> = messages.iter().map(|mail| decoded(mail)).collect();
    for event in events {
        let subject = format!("Subject: {}", subject_of(event));
        let matching: Vec<&String> = mails.iter().filter(|m| m.contains(&subject)).collect();
        assert_eq!(
            matching.len(),
            1,
            "{event}: one message {subject:?}: {mails:#?}"
        );
        let mail = matching[0];
        assert!(
            mail.contains("X-RcptTo: jane@example.org"),
            "{event}: {mail}"
        );
        assert!(
            mail.contains("To: \"jane Display\" <jane@example.org>"),
            "{event}: {mail}"
        );
        assert!(
            mail.contains("From: mfa@hospital.example"),
            "{event}: {mail}"
        );
        assert!(mail.contains("Hello jane Display,"), "{event}: {mail}");
        assert!(mail.contains("When: 2027-01-15 08:0"), "{event}: {mail}");
        assert!(mail.contains("From: 127.0.0.1"), "{event}: {mail}");
        assert!(mail.contains("call your service desk"), "{event}: {mail}");
        // The headers hold random numbers (Message-ID) a 6-digit code could match.
        let body = mail
            .split_once("\r\n\r\n")
            .map_or(mail.as_str(), |(_, body)| body);
        for secret in &secrets {
            assert!(
                !body.contains(secret.as_str()),
                "{event}: {secret:?} in {mail}"
            );
        }
    }
    app.stop().await;
}

/// SPEC 10: with `notify_users` off nothing is sent, and the actions still succeed.
#[tokio::test]
async fn with_notify_users_off_no_email_is_sent() {
    let app = spawn_app().await;
    app.settings(&[
        (SettingKey::NotifyUsers, "false"),
        (SettingKey::LockoutThreshold, "2"),
    ])
    .await;
    let token = admin(&app).await;
    let staff = app.store.role_by_name("Staff").await.unwrap().unwrap();
    app.user("jane", &staff, true).await;
    admin_adds_device(&app, &token, "jane").await;
    admin_removes_device(&app, &token, "jane").await;
    admin_resets_password(&app, &token, "jane", "correct horse battery staple 42").await;
    lock_out(&app, "jane").await;
    assert_eq!(app.mails().await, Vec::<String>::new());
    assert_eq!(app.store.outbox_pending().await.unwrap(), 0);
    app.stop().await;
}

/// SPEC 10: a user without an email address gets none, silently; the action succeeds.
#[tokio::test]
async fn a_user_without_email_gets_none_and_the_action_succeeds() {
    let app = spawn_app().await;
    app.settings(&[(SettingKey::LockoutThreshold, "2")]).await;
    let token = admin(&app).await;
    let staff = app.store.role_by_name("Staff").await.unwrap().unwrap();
    app.user("bob", &staff, false).await;
    admin_adds_device(&app, &token, "bob").await;
    let (_, bob) = call(&app, Method::GET, "/api/v1/users/bob", Some(&token), None).await;
    assert_eq!(bob["two_step"], "enabled", "{bob}");
    admin_removes_device(&app, &token, "bob").await;
    admin_resets_password(&app, &token, "bob", "correct horse battery staple 42").await;
    lock_out(&app, "bob").await;
    assert_eq!(app.mails().await, Vec::<String>::new());
    app.stop().await;
}

/// SPEC 10: templates "editable like the OTP one": a saved custom template is the one
/// sent, with every placeholder filled; an unknown event is 404.
#[tokio::test]
async fn a_saved_custom_security_template_is_the_one_used() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let staff = app.store.role_by_name("Staff").await.unwrap().unwrap();
    app.user("jane", &staff, true).await;
    let path = "/api/v1/templates/security/device_removed";
    let (status, default) = call(&app, Method::GET, path, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{default}");
    assert_eq!(
        default["subject"],
        EmailTemplate::default_security(SecurityEvent::DeviceRemoved).subject
    );
    let custom = json!({
        "subject": "Device gone at @site_name for @user_id",
        "text_body": "Dear @user_name (@user_id): removed at @event_time from @client_ip.",
        "html_body": null,
    });
    let (status, saved) = call(&app, Method::PUT, path, Some(&token), Some(custom)).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["subject"], "Device gone at @site_name for @user_id");
    let (status, unknown) = call(
        &app,
        Method::GET,
        "/api/v1/templates/security/device_stolen",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{unknown}");
    assert_eq!(unknown["code"], "not_found");

    admin_adds_device(&app, &token, "jane").await;
    admin_removes_device(&app, &token, "jane").await;
    let mails: Vec<String> = app.mails().await.iter().map(|m| decoded(m)).collect();
    assert_eq!(mails.len(), 2, "{mails:#?}");
    assert!(
        mails[0].contains(&format!(
            "Subject: {}",
            subject_of(SecurityEvent::DeviceAdded)
        )),
        "the other events keep their default: {}",
        mails[0]
    );
    let mail = &mails[1];
    assert!(
        mail.contains("Subject: Device gone at St. Elsewhere for jane"),
        "{mail}"
    );
    assert!(
        mail.contains(
            "Dear jane Display (jane): removed at 2027-01-15 08:00:00 UTC from 127.0.0.1."
        ),
        "{mail}"
    );
    assert!(!mail.contains("text/html"), "no HTML part: {mail}");
    let saved = app
        .store
        .audit_entries(&AuditQuery {
            event: Some(AuditEvent::TemplateChanged),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert_eq!(saved[0].detail, "Security / Device Removed");
    assert_eq!(saved[0].actor.as_deref(), Some("admin"));
    app.stop().await;
}

/// SPEC 10: "no code or secret in any of them": `@user_otp` is refused at save, by the
/// API (422) and the console (the error on the page), and nothing is stored.
#[tokio::test]
async fn a_security_template_with_the_code_placeholder_is_refused() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let path = "/api/v1/templates/security/password_reset";
    let (status, answer) = call(
        &app,
        Method::PUT,
        path,
        Some(&token),
        Some(json!({
            "subject": "Reset",
            "text_body": "Your new code is @user_otp",
            "html_body": null,
        })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["code"], "invalid_field", "{answer}");
    assert_eq!(answer["field"], "template", "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("@user_otp"),
        "{answer}"
    );
    let (_, stored) = call(&app, Method::GET, path, Some(&token), None).await;
    assert_eq!(
        stored["subject"],
        EmailTemplate::default_security(SecurityEvent::PasswordReset).subject
    );

    sign_in_admin(&app).await;
    let page_path = "/admin/email/security/password_reset";
    let page = get(&app, page_path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.assert_contains("Password Reset");
    page.assert_contains("<code>@event_time</code>");
    page.assert_contains(r#"href="/admin/email/security/account_locked""#);
    let refused = submit(
        &app,
        page_path,
        page_path,
        &[
            ("subject", "Reset"),
            ("text_body", "Your code: @user_otp"),
            ("html_body", ""),
            ("action", "save"),
        ],
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    refused.assert_contains("@user_otp cannot be used in the text body");
    let saved = submit(
        &app,
        page_path,
        page_path,
        &[
            ("subject", "Password reset at @site_name"),
            ("text_body", "Reset for @user_id at @event_time."),
            ("html_body", ""),
            ("action", "save"),
        ],
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let (_, stored) = call(&app, Method::GET, path, Some(&token), None).await;
    assert_eq!(stored["subject"], "Password reset at @site_name");
    let missing = get(&app, "/admin/email/security/nothing_here").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    app.stop().await;
}

/// SPEC 10: a device the user sets up at sign-in is "added" too; the email names the
/// address the sign-in came from and holds neither the secret nor the code.
#[tokio::test]
async fn enrollment_at_sign_in_emails_device_added() {
    let app = spawn_app().await;
    let staff = app.store.role_by_name("Staff").await.unwrap().unwrap();
    app.user("jane", &staff, true).await;
    let (status, answer) = app
        .post(
            "/api/v1/signin",
            json!({ "username": "jane", "password": TestApp::password_of("jane") }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "enroll", "{answer}");
    let transaction = answer["transaction"].clone();
    let (status, setup) = app
        .post(
            "/api/v1/signin/enroll",
            json!({ "transaction": transaction, "method": "totp", "prompt_mode": "every_login" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{setup}");
    let uri = setup["otpauth_uri"].as_str().unwrap().to_owned();
    let code = app.totp_now(&totp_of(&uri));
    let (status, done) = app
        .post(
            "/api/v1/signin/enroll/confirm",
            json!({ "transaction": transaction, "code": code }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    // Device Added, and the first set of recovery codes it came with.
    let mails: Vec<String> = app.mails().await.iter().map(|m| decoded(m)).collect();
    assert_eq!(mails.len(), 2, "{mails:#?}");
    let subject = |event| format!("Subject: {}", subject_of(event));
    let of = |event| {
        mails
            .iter()
            .find(|mail| mail.contains(&subject(event)))
            .unwrap_or_else(|| panic!("{event}: {mails:#?}"))
    };
    of(SecurityEvent::RecoveryCodesGenerated);
    let mail = of(SecurityEvent::DeviceAdded);
    assert!(
        mail.contains("To: \"jane Display\" <jane@example.org>"),
        "{mail}"
    );
    assert!(mail.contains("From: 127.0.0.1"), "{mail}");
    let body = mail
        .split_once("\r\n\r\n")
        .map_or(mail.as_str(), |(_, body)| body);
    let secret = setup["secret"].as_str().unwrap().replace(' ', "");
    for hidden in [secret.as_str(), uri.as_str(), "otpauth", code.as_str()] {
        assert!(!body.contains(hidden), "{hidden:?} in {mail}");
    }
    app.stop().await;
}
