//! The sign-in pages of SPEC section 11 in Chromium, at a desktop (1280x900) and a phone
//! (390x844) width: the walk of issue 16's sign-in defects (help text, lockout hint,
//! otpauth link, expired emailed code, Cancel and sign out, focus ring) with a
//! screenshot of every sign-in page under `target/screenshots/`.

use twostep::domain::{PromptMode, Require2fa, SettingKey};
use twostep::otp::KeyUri;

use crate::browser::{browser, Browser, ONE_BROWSER_AT_A_TIME};
use crate::helpers::{spawn_app, TestApp};

const HELP: &str = "Service desk: 4444\nOr ask the ward's charge nurse";

/// The computed outline colour of the element that has the focus (WebDriver's script
/// runs outside the page's CSP; the pages themselves have none).
async fn focused_outline(browser: &Browser) -> String {
    browser
        .client
        .execute(
            "return getComputedStyle(document.activeElement).outlineColor",
            vec![],
        )
        .await
        .expect("a script result")
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn walk(width: u32, height: u32, name: &'static str) {
    let app = spawn_app().await;
    app.settings(&[
        (SettingKey::HelpText, HELP),
        (SettingKey::LockoutThreshold, "2"),
        (SettingKey::LockoutMinutes, "15"),
    ])
    .await;
    let force = app.role("Doctors", Require2fa::Force, false, false).await;
    let emailed = app.role("Clerks", Require2fa::No, true, false).await;
    let plain = app.role("Porters", Require2fa::No, false, false).await;
    let nurse = app.user("nurse", &force, true).await;
    app.enroll_totp(&nurse, PromptMode::EveryLogin).await;
    app.user("locked", &plain, true).await;
    app.user("clerk", &emailed, true).await;
    app.user("newbie", &force, true).await;
    let temp = app.user("temp", &plain, true).await;
    app.set_temporary_password(&temp, "temporary password 1")
        .await;
    let Some(mut browser) = browser(&app, name, width, height).await else {
        return;
    };

    // The sign-in page: the help text, line by line; the focus ring's colour.
    browser.goto("/signin").await;
    browser.page("signin").await;
    let help = browser.text("#help-text").await;
    assert_eq!(help, HELP, "the help text with its line break");
    browser.click("#username").await;
    assert_eq!(
        focused_outline(&browser).await,
        "rgb(11, 31, 58)",
        "--focus"
    );
    browser.shot("signin").await;

    // A locked account: the generic message, the lockout hint and the help text.
    for password in ["wrong password 1", "wrong password 2"] {
        browser.sign_in("locked", password, false).await;
        browser.page("signin").await;
    }
    browser
        .sign_in("locked", &TestApp::password_of("locked"), false)
        .await;
    browser.page("signin").await;
    let body = browser.body().await;
    assert!(
        body.contains("The username or password is not correct"),
        "{body}"
    );
    assert_eq!(
        browser.text("#lockout-hint").await,
        "After several failed attempts an account is locked for 15 minutes."
    );
    assert!(body.contains("Service desk: 4444"), "{body}");
    browser.shot("signin-locked").await;

    // Code entry, a wrong code, then Cancel and sign out: the old transaction is gone.
    browser
        .sign_in("nurse", &TestApp::password_of("nurse"), false)
        .await;
    browser.page("verify").await;
    browser.shot("verify").await;
    browser.type_into("#code", "000000").await;
    browser.click("form[action='/signin/verify'] button").await;
    browser.page("verify").await;
    assert!(browser.text(".notice.error").await.contains("not correct"));
    browser.shot("verify-wrong-code").await;
    let old = browser
        .client
        .get_named_cookie("twostep_tx")
        .await
        .expect("the transaction cookie");
    browser.click("#cancel-signin").await;
    browser.page("signin").await;
    assert!(browser
        .body()
        .await
        .contains("Sign-in was cancelled and you are signed out."));
    browser.shot("signin-cancelled").await;
    browser
        .client
        .add_cookie(old)
        .await
        .expect("the old cookie");
    browser.goto("/signin/verify").await;
    browser.page("signin").await;
    assert!(
        browser.body().await.contains("Your sign-in has expired"),
        "the old transaction no longer works"
    );

    // The emailed code: an expired code reads as a wrong one, with Send a new code.
    browser
        .sign_in("clerk", &TestApp::password_of("clerk"), false)
        .await;
    browser.page("verify").await;
    let code = app.last_emailed_code().await;
    browser.goto("/signin/verify").await;
    browser.page("verify").await;
    browser.shot("verify-email").await;
    app.clock.advance_seconds(901);
    browser.type_into("#code", &code).await;
    browser.click("form[action='/signin/verify'] button").await;
    browser.page("verify").await;
    assert_eq!(
        browser.text(".notice.error").await,
        "That code is not correct or has expired. Send a new code."
    );
    browser.find("form[action='/signin/resend'] button").await;
    browser.shot("verify-email-expired").await;
    browser.click("#cancel-signin").await;
    browser.page("signin").await;

    // Set-up of a forced enrollment: why, then the otpauth link, issuer and account.
    browser
        .sign_in("newbie", &TestApp::password_of("newbie"), false)
        .await;
    browser.page("enroll").await;
    assert!(browser
        .text("#required-why")
        .await
        .starts_with("Your role requires 2-step verification"));
    browser.shot("enroll").await;
    browser.click("form[action='/signin/enroll'] button").await;
    browser.page("setup").await;
    let href = browser
        .find("#otpauth-link")
        .await
        .attr("href")
        .await
        .expect("an attribute")
        .expect("an href");
    let uri = KeyUri::parse(&href).unwrap_or_else(|e| panic!("{href}: {e}"));
    assert_eq!(uri.issuer.as_deref(), Some("St. Elsewhere"));
    assert_eq!(uri.account, "newbie");
    assert_eq!(browser.text("#manual-issuer").await, "St. Elsewhere");
    assert_eq!(browser.text("#manual-account").await, "newbie");
    assert!(browser.text("#app-list").await.contains("FreeOTP"));
    browser.shot("setup").await;
    browser.click("#cancel-signin").await;
    browser.page("signin").await;

    // The forced password change, and a page that does not exist.
    browser.sign_in("temp", "temporary password 1", false).await;
    browser.page("change-password").await;
    browser.shot("change-password").await;
    browser.goto("/no/such/page").await;
    browser.page("problem").await;
    assert_eq!(browser.text("h1").await, "Page not found");
    assert!(browser.text("#help-text").await.starts_with("Service desk"));
    browser.shot("not-found").await;
    browser.finish().await;
    app.stop().await;
}

/// SPEC section 11 at 1280x900.
#[tokio::test]
async fn the_sign_in_pages_of_issue_16_on_a_desktop() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    walk(1280, 900, "signin-desktop").await;
}

/// SPEC section 11 at 390x844 (a phone).
#[tokio::test]
async fn the_sign_in_pages_of_issue_16_on_a_phone() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    walk(390, 844, "signin-phone").await;
}
