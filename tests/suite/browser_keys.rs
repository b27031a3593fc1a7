//! Security keys and passkeys in a real browser (SPEC section 14): Chromium's virtual
//! authenticator stands in for the key, and the pages' own script (`/static/webauthn.js`,
//! under the CSP) talks to it. The app is at `http://localhost:PORT`, its public URL: a
//! secure context with a domain as relying party ID.

use std::time::Duration;

use twostep::domain::Require2fa;

use crate::browser::{browser_at, Browser, ONE_BROWSER_AT_A_TIME};
use crate::helpers::TestApp;
use crate::virtual_authenticator::{
    add_authenticator, credentials, remove_authenticator, set_user_verified, AuthenticatorOptions,
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

/// A key with a PIN that is accepted, keeping passkeys.
const WITH_PIN: AuthenticatorOptions = AuthenticatorOptions {
    user_verification: true,
    user_verified: true,
    resident_key: true,
};

async fn sign_out(browser: &Browser) {
    browser.click("form[action='/signout'] button").await;
    browser.page("signin").await;
}

#[tokio::test]
async fn a_force_user_enrolls_a_key_on_the_pages_then_signs_in_with_it_and_as_a_passkey() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let (app, base) = crate::security_keys::local_app().await;
    let role = app.role("Clinician", Require2fa::Force, false, false).await;
    app.user("jane", &role, true).await;
    let Some(mut browser) = browser_at(base, "keys", 1024, 1000, &[]).await else {
        return;
    };
    let key = add_authenticator(&browser.client, &WITH_PIN).await;
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

/// The recovery codes the page shows.
async fn shown_codes(browser: &Browser) -> Vec<String> {
    browser
        .text("#recovery-codes")
        .await
        .lines()
        .map(|line| line.trim().to_owned())
        .filter(|line| !line.is_empty())
        .collect()
}

/// SPEC 14 in the browser, the rest of the acceptance: a key without a PIN is refused
/// with the clear message; in network a When-appropriate key skips the step; a second key
/// (Every Login) is added from `/account` and then the step is asked even in network; the
/// first key is removed from `/account`.
#[tokio::test]
async fn a_key_without_pin_is_refused_then_account_keys_and_in_network_bypass_follow_the_prompt_mode(
) {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let (app, base) = crate::security_keys::local_app().await;
    let role = app.role("Clinician", Require2fa::Force, false, false).await;
    let jane = app.user("jane", &role, true).await;
    let Some(mut browser) = browser_at(base, "keys-account", 1024, 1000, &[]).await else {
        return;
    };
    let password = TestApp::password_of("jane");

    // A key without PIN or fingerprint: refused, with the message that says what to do.
    let no_pin = add_authenticator(
        &browser.client,
        &AuthenticatorOptions {
            user_verification: false,
            user_verified: false,
            resident_key: true,
        },
    )
    .await;
    browser.sign_in("jane", &password, false).await;
    browser.page("enroll").await;
    browser.click("#method-webauthn").await;
    browser.click("#prompt-when_appropriate").await;
    browser.click("form[action='/signin/enroll'] button").await;
    browser.page("key-setup").await;
    browser.click("#key-setup .webauthn-start").await;
    let error = key_error(&browser, "#key-setup").await;
    assert!(
        error.contains("needs a security key with a PIN or fingerprint"),
        "{error}"
    );
    assert!(error.contains("set a PIN"), "{error}");
    browser.shot("no-pin").await;
    assert!(credentials(&browser.client, &no_pin).await.is_empty());
    assert!(app.store.security_keys(jane.id).await.unwrap().is_empty());
    remove_authenticator(&browser.client, &no_pin).await;

    // A key with a PIN, When appropriate.
    let first = add_authenticator(&browser.client, &WITH_PIN).await;
    browser.type_into("#key-name", "Desk key").await;
    browser.click("#key-setup .webauthn-start").await;
    browser.page("recovery-codes").await;
    let codes = shown_codes(&browser).await;
    assert_eq!(codes.len(), 10, "{codes:?}");
    browser.click("#continue").await;
    browser.page("home").await;
    sign_out(&browser).await;

    // In network (Bypass 2FA for this address): the When-appropriate key is not asked.
    app.settings(&[(twostep::domain::SettingKey::BypassEnabled, "true")])
        .await;
    for network in ["127.0.0.1", "::1"] {
        let rule = twostep::domain::IpRule {
            network: twostep::domain::IpNetwork::parse(network).unwrap(),
            bypass_2fa: true,
            note: "ward".into(),
        };
        app.store
            .add_ip_rule(&rule, crate::helpers::NowTs::now_ts(&app.clock))
            .await
            .unwrap();
    }
    browser.sign_in("jane", &password, false).await;
    browser.page("home").await;

    // A second key from My account (proof: a recovery code), Every Login.
    remove_authenticator(&browser.client, &first).await;
    let second = add_authenticator(&browser.client, &WITH_PIN).await;
    browser.goto("/account").await;
    browser.page("account").await;
    browser.type_into("#key-proof", &codes[0]).await;
    browser.click("#key-prompt-every_login").await;
    browser.shot("account-add-key").await;
    browser.click("#key-submit").await;
    browser.page("key-setup").await;
    browser.type_into("#key-name", "Badge key").await;
    browser.click("#key-setup .webauthn-start").await;
    browser.page("account").await;
    assert!(browser
        .text("#account-done")
        .await
        .contains("security key is set up"));
    let table = browser.text("#keys").await;
    assert!(
        table.contains("Desk key") && table.contains("Badge key"),
        "{table}"
    );
    browser.shot("account-two-keys").await;
    assert_eq!(credentials(&browser.client, &second).await.len(), 1);
    browser.goto("/").await;
    browser.page("home").await;
    sign_out(&browser).await;

    // Now an Every Login key: the step is asked even in network, and the key answers it.
    browser.sign_in("jane", &password, false).await;
    browser.page("verify").await;
    browser.click("#security-key .webauthn-start").await;
    browser.page("home").await;

    // The first key removed from My account (proof: another recovery code).
    browser.goto("/account").await;
    browser.page("account").await;
    let keys = app.store.security_keys(jane.id).await.unwrap();
    let desk = keys
        .iter()
        .find(|stored| stored.key.name.as_str() == "Desk key")
        .unwrap()
        .key
        .id
        .0;
    browser.click(&format!("#key-{desk}-change summary")).await;
    browser
        .type_into(&format!("#key-{desk}-code"), &codes[1])
        .await;
    browser.shot("account-remove-key").await;
    browser.click(&format!("#key-{desk}-remove button")).await;
    browser.page("account").await;
    assert!(browser.text("#account-done").await.contains("removed"));
    let table = browser.text("#keys").await;
    assert!(
        !table.contains("Desk key") && table.contains("Badge key"),
        "{table}"
    );
    let left = app.store.security_keys(jane.id).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].key.name.as_str(), "Badge key");
    browser.shot("account-one-key").await;
    browser.finish().await;
}
