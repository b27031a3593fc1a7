//! Security keys and passkeys in a real browser (SPEC section 14): Chromium's virtual
//! authenticator stands in for the key, and the pages' own script (`/static/webauthn.js`,
//! under the CSP) talks to it. The app is at `http://localhost:PORT`, its public URL: a
//! secure context with a domain as relying party ID.

use std::time::Duration;

use twostep::domain::Require2fa;

use crate::browser::{browser_at, Browser, ONE_BROWSER_AT_A_TIME};
use crate::helpers::{free_port, spawn_app_with, AppOptions, TestApp};
use crate::virtual_authenticator::{
    add_authenticator, credentials, set_user_verified, AuthenticatorOptions,
};

/// What the key form of `form` shows after its button, once it shows something.
async fn key_error(browser: &Browser, form: &str) -> String {
    let selector = format!("{form} .webauthn-error");
    for _ in 0..300 {
        let error = browser.find(&selector).await;
        if error.is_displayed().await.unwrap() {
            let text = error.text().await.unwrap();
            if !text.is_empty() {
                return text;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{form}: no error was shown");
}

async fn sign_out(browser: &Browser) {
    browser.click("form[action='/signout'] button").await;
    browser.page("signin").await;
}

#[tokio::test]
async fn a_force_user_enrolls_a_key_on_the_pages_then_signs_in_with_it_and_as_a_passkey() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let port = free_port();
    let base = format!("http://localhost:{port}");
    let app = spawn_app_with(AppOptions {
        port: Some(port),
        public_url: Some(base.clone()),
        ..Default::default()
    })
    .await;
    let role = app.role("Clinician", Require2fa::Force, false, false).await;
    app.user("jane", &role, true).await;
    let Some(mut browser) = browser_at(base, "keys", 1024, 1000, &[]).await else {
        return;
    };
    let key = add_authenticator(
        &browser.client,
        &AuthenticatorOptions {
            user_verification: true,
            user_verified: true,
            resident_key: true,
        },
    )
    .await;
    let password = TestApp::password_of("jane");

    // First sign-in: the role requires 2-step; the key is chosen and set up.
    browser.sign_in("jane", &password, false).await;
    browser.page("enroll").await;
    browser.click("#method-webauthn").await;
    browser.click("#prompt-every_login").await;
    browser.shot("enroll").await;
    browser.click("form[action='/signin/enroll'] button").await;
    browser.page("key-setup").await;
    let form = browser.find("#key-setup").await;
    assert!(
        form.is_displayed().await.unwrap(),
        "the script shows the form"
    );
    browser.type_into("#key-name", "Ward key").await;
    browser.shot("key-setup").await;
    browser.click("#key-setup .webauthn-start").await;
    browser.page("recovery-codes").await;
    browser.shot("recovery-codes").await;
    let held = credentials(&browser.client, &key).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["isResidentCredential"], true, "{held:?}");
    browser.click("#continue").await;
    browser.page("home").await;
    assert_eq!(browser.text("#two-step").await, "Enabled");
    sign_out(&browser).await;

    // Next sign-in: the key answers the device step. Its PIN refused first: the page
    // explains, in plain words, and nothing is sent.
    browser.sign_in("jane", &password, false).await;
    browser.page("verify").await;
    assert!(browser
        .find("#security-key")
        .await
        .is_displayed()
        .await
        .unwrap());
    browser.shot("verify").await;
    set_user_verified(&browser.client, &key, false).await;
    browser.click("#security-key .webauthn-start").await;
    let error = key_error(&browser, "#security-key").await;
    assert!(
        error.starts_with("The key did not answer, or it could not confirm it is you."),
        "{error}"
    );
    browser.shot("pin-refused").await;
    set_user_verified(&browser.client, &key, true).await;
    browser.click("#security-key .webauthn-start").await;
    browser.page("home").await;
    assert_eq!(browser.text("#username").await, "jane");
    browser.shot("signed-in").await;
    sign_out(&browser).await;

    // A passkey: no username, no password.
    assert!(browser.find("#passkey").await.is_displayed().await.unwrap());
    browser.shot("signin-passkey").await;
    browser.click("#passkey .webauthn-start").await;
    browser.page("home").await;
    assert_eq!(browser.text("#username").await, "jane");
    browser.shot("passkey-signed-in").await;
    browser.finish().await;
}
