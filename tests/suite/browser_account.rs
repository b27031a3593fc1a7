//! My account in Chromium (SPEC section 10 "/account"): a user of an Encourage role puts
//! set-up off at sign-in, sets up from the account page and sees a first set of recovery
//! codes, signs in with a recovery code (9 left) and with the device, replaces it (the old
//! one works until the new one is confirmed) and signs out another session.

use serde_json::json;
use twostep::domain::Require2fa;
use twostep::otp::Totp;

use crate::browser::{browser, Browser, ONE_BROWSER_AT_A_TIME};
use crate::helpers::{totp_of, TestApp};

/// The generator of the device being set up, from the page's otpauth link; the manual
/// key the page shows is the same secret.
async fn device_on_page(browser: &Browser) -> Totp {
    let href = browser
        .find("#otpauth-link")
        .await
        .attr("href")
        .await
        .expect("an attribute")
        .expect("an href");
    let totp = totp_of(&href);
    let manual: String = browser
        .text("#manual-key")
        .await
        .split_whitespace()
        .collect();
    assert_eq!(
        manual,
        totp.secret.to_base32(),
        "the manual key is the secret"
    );
    totp
}

async fn sign_out(browser: &Browser) {
    browser.goto("/").await;
    browser.page("home").await;
    browser.click("form[action='/signout'] button").await;
    browser.page("signin").await;
}

/// Signs in through the forms with the device's code.
async fn sign_in_with(app: &TestApp, browser: &mut Browser, totp: &Totp) {
    browser
        .sign_in("jane", &TestApp::password_of("jane"), false)
        .await;
    browser.page("verify").await;
    browser.type_into("#code", &app.totp_next(totp)).await;
    browser.click("form[action='/signin/verify'] button").await;
    browser.page("home").await;
}

/// SPEC 10: set up, sign in with, replace the device, and sign out another session, all
/// from My account.
#[tokio::test]
async fn my_account_sets_up_replaces_the_device_and_signs_out_other_sessions() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let app = crate::helpers::spawn_app().await;
    let role = app
        .role("Nurses", Require2fa::Encourage, false, false)
        .await;
    app.user("jane", &role, true).await;
    let Some(mut browser) = browser(&app, "account", 1024, 1000).await else {
        return;
    };
    let password = TestApp::password_of("jane");

    // Set up later at sign-in, then My account.
    browser.sign_in("jane", &password, false).await;
    browser.page("enroll").await;
    browser
        .click("form[action='/signin/enroll/skip'] button")
        .await;
    browser.page("home").await;
    browser.click("#account-link").await;
    browser.page("account").await;
    assert_eq!(browser.text("#two-step").await, "Not Enabled");
    browser.shot("account-not-enabled").await;

    // Set up now: no code asked (no device yet).
    browser.click("#prompt-every_login").await;
    browser.click("#device-submit").await;
    browser.page("account-setup").await;
    browser.shot("account-setup").await;
    let first = device_on_page(&browser).await;
    browser.type_into("#code", &app.totp_next(&first)).await;
    browser
        .click("form[action='/account/device/confirm'] button")
        .await;
    // The first set of recovery codes, shown once.
    browser.page("recovery-codes").await;
    let codes: Vec<String> = browser
        .text("#recovery-codes")
        .await
        .lines()
        .map(|code| code.trim().to_owned())
        .collect();
    assert_eq!(codes.len(), 10, "{codes:?}");
    assert!(codes
        .iter()
        .all(|code| twostep::domain::RecoveryCode::parse(code).is_ok()));
    browser.shot("account-recovery-codes").await;
    browser.click("#continue").await;
    browser.page("account").await;
    assert_eq!(browser.text("#two-step").await, "Enabled");
    assert!(browser.text("#devices").await.contains("TOTP (time based)"));
    assert_eq!(browser.text("#recovery-left").await, "10");
    browser.shot("account-enabled").await;
    sign_out(&browser).await;

    // Signs in with a recovery code instead of the device's code: 9 left.
    browser.sign_in("jane", &password, false).await;
    browser.page("verify").await;
    browser.click("#use-recovery-code summary").await;
    browser.type_into("#recovery-code", &codes[0]).await;
    browser.shot("verify-recovery-code").await;
    browser.click("#use-recovery-code button").await;
    browser.page("home").await;
    assert!(browser
        .text("#recovery-codes-left")
        .await
        .contains("You have 9 recovery codes left"));
    browser.goto("/account").await;
    browser.page("account").await;
    assert_eq!(browser.text("#recovery-left").await, "9");
    sign_out(&browser).await;

    // And with the device's code.
    sign_in_with(&app, &mut browser, &first).await;

    // Replace device: a current code first.
    browser.goto("/account").await;
    browser.page("account").await;
    browser.type_into("#device-code", "000000").await;
    browser.click("#device-submit").await;
    browser.page("account").await;
    assert!(browser.text("#device-error").await.contains("not correct"));
    browser.shot("account-replace-wrong-code").await;
    browser
        .type_into("#device-code", &app.totp_next(&first))
        .await;
    browser.click("#device-submit").await;
    browser.page("account-setup").await;
    let second = device_on_page(&browser).await;

    // Not confirmed yet: the old device still signs in (through the API, a session of
    // its own).
    let (_, answer) = app
        .post(
            "/api/v1/signin",
            json!({ "username": "jane", "password": password }),
        )
        .await;
    assert_eq!(answer["status"], "otp_required", "{answer}");
    let (_, answer) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": answer["transaction"], "code": app.totp_next(&first) }),
        )
        .await;
    assert_eq!(
        answer["status"], "signed_in",
        "the old device works: {answer}"
    );
    let other = answer["session"].as_str().unwrap().to_owned();

    browser.type_into("#code", &app.totp_next(&second)).await;
    browser
        .click("form[action='/account/device/confirm'] button")
        .await;
    browser.page("account").await;
    assert!(browser
        .text("#account-done")
        .await
        .contains("new device is set up"));

    // Now the old one is refused, the new one signs in.
    let (_, answer) = app
        .post(
            "/api/v1/signin",
            json!({ "username": "jane", "password": password }),
        )
        .await;
    let (status, _) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": answer["transaction"], "code": app.totp_next(&first) }),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);

    // The other session (the API's) is listed, then signed out.
    browser.goto("/account").await;
    browser.page("account").await;
    let sessions = browser.text("#sessions").await;
    assert!(sessions.contains("This browser"), "{sessions}");
    browser.shot("account-sessions").await;
    let (status, _) = app.get_json("/api/v1/me", Some(&other)).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    browser.click("#end-sessions").await;
    browser.page("account").await;
    assert!(browser
        .text("#account-done")
        .await
        .contains("other sessions have been signed out"));
    let (status, _) = app.get_json("/api/v1/me", Some(&other)).await;
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);
    sign_out(&browser).await;

    // The new device signs in.
    sign_in_with(&app, &mut browser, &second).await;
    browser.finish().await;
    app.stop().await;
}
