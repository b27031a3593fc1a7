//! The sign-in pages as real users meet them (SPEC section 11, first six items): the Help
//! Text setting, the lockout hint, the expired emailed code, "Cancel and sign out", the
//! phone set-up, and real 404, 405 and 500 answers; with the focus ring's contrast
//! (WCAG 2.2 1.4.11) computed from the stylesheet.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use twostep::domain::{PromptMode, Require2fa, SettingKey, Username};
use twostep::otp::KeyUri;

use crate::admin_api::call;
use crate::helpers::{spawn_app, NowTs, TestApp};
use crate::pages::{bare_client, get, sign_in, submit, user_in_role, Page};

/// An API token of the bootstrap administrator.
async fn admin_token(app: &TestApp) -> String {
    let admin = app
        .store
        .user_by_username(&Username::parse("admin").unwrap())
        .await
        .unwrap()
        .unwrap();
    app.api_token(&admin, "help text").await
}

/// SPEC section 11: `help_text` takes plain text of up to 500 characters through
/// `PATCH /api/v1/settings`; 501 characters or a control character other than a line
/// break is refused with 422 `invalid_field`, and nothing is stored.
#[tokio::test]
async fn the_help_text_takes_500_characters_and_refuses_501_or_a_control_character() {
    let app = spawn_app().await;
    let token = admin_token(&app).await;
    let (status, answer) = call(&app, Method::GET, "/api/v1/settings", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["help_text"], "", "empty by default");

    let longest = format!("Service desk: 4444\n{}", "x".repeat(481));
    assert_eq!(longest.chars().count(), 500);
    let (status, answer) = call(
        &app,
        Method::PATCH,
        "/api/v1/settings",
        Some(&token),
        Some(json!({ "help_text": longest })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["help_text"], longest.as_str());
    assert_eq!(app.store.settings().await.unwrap().help_text(), longest);

    for refused in [
        Value::String("y".repeat(501)),
        Value::String("bell\u{7}".to_owned()),
        Value::String("tab\there".to_owned()),
        json!(12),
    ] {
        let (status, answer) = call(
            &app,
            Method::PATCH,
            "/api/v1/settings",
            Some(&token),
            Some(json!({ "help_text": refused, "otp_length": 8 })),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["code"], "invalid_field");
        assert_eq!(answer["field"], "help_text");
        let stored = app.store.settings().await.unwrap();
        assert_eq!(stored.help_text(), longest, "nothing stored on refusal");
        assert_eq!(stored.otp_length().get(), 6, "not the other change either");
    }
    app.stop().await;
}

/// SPEC section 11: the Help Text shows on the sign-in page and on the error pages of
/// the sign-in flow, HTML-escaped, its line breaks kept as `<br>`.
#[tokio::test]
async fn the_help_text_shows_escaped_with_its_line_breaks_on_the_sign_in_and_error_pages() {
    let app = spawn_app().await;
    let page = get(&app, "/signin").await;
    assert!(
        !page.body.contains("help-text"),
        "nothing while it is empty"
    );
    app.settings(&[(
        SettingKey::HelpText,
        "Call <b>4444</b> & ask\nWard phone: 12",
    )])
    .await;
    let shown = "Call &#60;b&#62;4444&#60;/b&#62; &#38; ask<br>Ward phone: 12";
    let escaped = |page: &Page| {
        let start = page
            .body
            .find(r#"<aside class="help-text""#)
            .unwrap_or_else(|| panic!("the help text on a {} page:\n{}", page.status, page.body));
        let aside = &page.body[start..];
        let aside = &aside[..aside.find("</aside>").unwrap()];
        assert!(!aside.contains("<b>"), "escaped: {aside}");
        assert!(
            aside.contains("4444") && aside.contains("<br>Ward phone: 12"),
            "{aside}"
        );
    };
    let signin = get(&app, "/signin").await;
    escaped(&signin);
    // askama escapes as named or numbered entities; either way no tag gets through.
    assert!(
        signin.body.contains(shown) || signin.body.contains("Call &lt;b&gt;4444"),
        "{}",
        signin.body
    );
    let wrong = sign_in(&app, "nobody", "wrong password 1").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    escaped(&wrong);
    let expired = crate::pages::post(&app, "/signin", &[("username", "x")]).await;
    assert_eq!(expired.status, StatusCode::FORBIDDEN);
    escaped(&expired);
    let missing = get(&app, "/no/such/page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    escaped(&missing);
    app.stop().await;
}

/// SPEC section 11: a locked account's JSON answer is byte for byte a wrong password's.
#[tokio::test]
async fn a_locked_account_gets_the_wrong_password_json_answer_byte_for_byte() {
    let app = spawn_app().await;
    app.settings(&[(SettingKey::LockoutThreshold, "2")]).await;
    user_in_role(&app, Require2fa::No, false).await;
    let raw = |password: &'static str| {
        let url = format!("{}/api/v1/signin", app.address);
        async move {
            let response = bare_client()
                .post(url)
                .json(&json!({ "username": "jane", "password": password }))
                .send()
                .await
                .unwrap();
            (response.status(), response.bytes().await.unwrap())
        }
    };
    let wrong = raw("wrong password 1").await;
    raw("wrong password 2").await;
    let user = app
        .store
        .user_by_username(&Username::parse("jane").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(user.is_locked(app.clock.now_ts()), "locked now");
    let locked = raw("jane orchard lantern 123").await;
    assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
    assert_eq!(locked, wrong, "status and body are the same bytes");
    app.stop().await;
}

/// The page without its CSRF tokens (they differ by binding, not by account).
fn without_csrf(page: &Page) -> String {
    page.body.replace(&page.csrf(), "CSRF")
}

/// SPEC section 11: the page adds "After several failed attempts an account is locked
/// for N minutes" and the Help Text to every failed password, so that a locked account's
/// page is the same as a wrong password's (apart from the CSRF token).
#[tokio::test]
async fn a_locked_account_and_a_wrong_password_get_the_same_page_with_the_lockout_hint() {
    let app = spawn_app().await;
    app.settings(&[
        (SettingKey::LockoutThreshold, "2"),
        (SettingKey::LockoutMinutes, "20"),
        (SettingKey::HelpText, "Service desk: 4444"),
    ])
    .await;
    user_in_role(&app, Require2fa::No, false).await;
    let wrong = sign_in(&app, "jane", "wrong password 1").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    wrong.assert_contains("The username or password is not correct");
    wrong.assert_contains(
        r#"id="lockout-hint">After several failed attempts an account is locked for 20 minutes.</p>"#,
    );
    wrong.assert_contains("Service desk: 4444");
    sign_in(&app, "jane", "wrong password 2").await;
    let locked = sign_in(&app, "jane", &TestApp::password_of("jane")).await;
    assert_eq!(locked.status, wrong.status);
    assert_eq!(without_csrf(&locked), without_csrf(&wrong));
    assert!(locked.cookie("twostep_session").is_none());

    app.settings(&[(SettingKey::LockoutMinutes, "0")]).await;
    sign_in(&app, "nobody", "wrong password 1")
        .await
        .assert_contains("locked until an administrator unlocks it.");
    app.stop().await;
}

/// SPEC section 11: on the emailed step a wrong and an expired code read "That code is
/// not correct or has expired. Send a new code.", with the button there; both count as
/// failures. A wrong app code keeps its own sentence, with the lockout hint.
#[tokio::test]
async fn a_wrong_or_expired_emailed_code_reads_the_same_and_offers_a_new_code() {
    let app = spawn_app().await;
    let user = user_in_role(&app, Require2fa::No, true).await;
    sign_in(&app, "jane", &TestApp::password_of("jane")).await;
    let code = app.last_emailed_code().await;
    let wrong_code = if code.starts_with('1') { "2" } else { "1" }.repeat(code.len());
    let wrong = submit(
        &app,
        "/signin/verify",
        "/signin/verify",
        &[("code", &wrong_code)],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let sentence = "That code is not correct or has expired. Send a new code.";
    wrong.assert_contains(sentence);
    wrong.assert_contains(r#"action="/signin/resend""#);
    wrong.assert_contains("After several failed attempts an account is locked for 30 minutes.");
    // OTP Valid Seconds (900) later, the right code has expired: the same sentence.
    app.clock.advance_seconds(901);
    let expired = submit(&app, "/signin/verify", "/signin/verify", &[("code", &code)]).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    expired.assert_contains(sentence);
    assert_eq!(without_csrf(&expired), without_csrf(&wrong));
    let counted = app.store.user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(counted.failed_count, 2, "both failures count");
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_app_code_keeps_its_sentence_with_the_lockout_hint() {
    let app = spawn_app().await;
    let user = user_in_role(&app, Require2fa::Force, false).await;
    app.enroll_totp(&user, PromptMode::EveryLogin).await;
    sign_in(&app, "jane", &TestApp::password_of("jane")).await;
    let wrong = submit(
        &app,
        "/signin/verify",
        "/signin/verify",
        &[("code", "000000")],
    )
    .await;
    wrong.assert_contains("That code is not correct. Please check it and try again.");
    wrong.assert_contains("After several failed attempts an account is locked");
    assert!(!wrong.body.contains("has expired"));
    app.stop().await;
}

/// The value of the transaction cookie the last answer set.
fn transaction_of(page: &Page) -> String {
    crate::pages::cookie_value(page, "twostep_tx")
}

/// SPEC section 11: "Cancel and sign out" on a step after the password ends the
/// transaction: back to /signin with a calm message, and the old transaction's token no
/// longer continues.
#[tokio::test]
async fn cancel_and_sign_out_ends_the_sign_in_and_the_old_transaction_no_longer_works() {
    let app = spawn_app().await;
    let user = user_in_role(&app, Require2fa::Force, false).await;
    app.enroll_totp(&user, PromptMode::EveryLogin).await;
    let answer = sign_in(&app, "jane", &TestApp::password_of("jane")).await;
    let old = transaction_of(&answer);
    let verify = get(&app, "/signin/verify").await;
    verify.assert_contains(r#"action="/signin/cancel""#);
    verify.assert_contains(">Cancel and sign out</button>");
    let cancelled = submit(&app, "/signin/verify", "/signin/cancel", &[]).await;
    assert_eq!(cancelled.status, StatusCode::SEE_OTHER);
    assert_eq!(cancelled.location(), "/signin?m=cancelled");
    assert!(cancelled
        .cookie("twostep_tx")
        .unwrap()
        .contains("Max-Age=0"));
    get(&app, "/signin?m=cancelled")
        .await
        .assert_contains("Sign-in was cancelled and you are signed out.");
    // The old token, presented again, is gone.
    let replay = Page::of(
        bare_client()
            .get(format!("{}/signin/verify", app.address))
            .header("cookie", format!("twostep_tx={old}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(replay.location(), "/signin?m=expired");
    let (status, answer) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": old, "code": "123456" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer["code"], "transaction_expired");
    // Without the form's token nothing is cancelled.
    let answer = sign_in(&app, "jane", &TestApp::password_of("jane")).await;
    let live = transaction_of(&answer);
    let forged = crate::pages::post(&app, "/signin/cancel", &[("csrf", "forged")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let still = Page::of(
        bare_client()
            .get(format!("{}/signin/verify", app.address))
            .header("cookie", format!("twostep_tx={live}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(still.status, StatusCode::OK, "still live");
    app.stop().await;
}

/// SPEC section 11: every step after the password offers "Cancel and sign out"; a
/// forced enrollment says why it is required.
#[tokio::test]
async fn every_step_after_the_password_offers_cancel_and_a_forced_enrollment_says_why() {
    let app = spawn_app().await;
    user_in_role(&app, Require2fa::Force, false).await;
    sign_in(&app, "jane", &TestApp::password_of("jane")).await;
    let enroll = get(&app, "/signin/enroll").await;
    enroll.assert_contains("Your role requires 2-step verification");
    enroll.assert_contains(r#"action="/signin/cancel""#);
    submit(
        &app,
        "/signin/enroll",
        "/signin/enroll",
        &[("method", "totp"), ("prompt_mode", "every_login")],
    )
    .await;
    get(&app, "/signin/enroll/confirm")
        .await
        .assert_contains(r#"action="/signin/cancel""#);
    let cancelled = submit(&app, "/signin/enroll/confirm", "/signin/cancel", &[]).await;
    assert_eq!(cancelled.location(), "/signin?m=cancelled");

    // The forced password change and the emailed step offer it too.
    let plain = app.role("Porters", Require2fa::No, false, false).await;
    let bob = app.user("bob", &plain, true).await;
    app.set_temporary_password(&bob, "temporary password 1")
        .await;
    let answer = sign_in(&app, "bob", "temporary password 1").await;
    assert_eq!(answer.location(), "/signin/change-password");
    get(&app, "/signin/change-password")
        .await
        .assert_contains(">Cancel and sign out</button>");
    let cancelled = submit(&app, "/signin/change-password", "/signin/cancel", &[]).await;
    assert_eq!(cancelled.location(), "/signin?m=cancelled");
    let emailed = app.role("Clerks", Require2fa::No, true, false).await;
    app.user("carol", &emailed, true).await;
    sign_in(&app, "carol", &TestApp::password_of("carol")).await;
    let emailed = get(&app, "/signin/verify").await;
    emailed.assert_contains("A code was sent to");
    emailed.assert_contains(">Cancel and sign out</button>");
    app.stop().await;
}

/// SPEC section 11: the QR code is also a link to the `otpauth://` key URI (it opens an
/// installed app); the manual key shows issuer and account; apps that work are listed.
#[tokio::test]
async fn the_setup_page_links_the_qr_code_to_its_otpauth_uri_and_names_issuer_account_and_apps() {
    let app = spawn_app().await;
    user_in_role(&app, Require2fa::Force, false).await;
    sign_in(&app, "jane", &TestApp::password_of("jane")).await;
    submit(
        &app,
        "/signin/enroll",
        "/signin/enroll",
        &[("method", "totp"), ("prompt_mode", "every_login")],
    )
    .await;
    let page = get(&app, "/signin/enroll/confirm").await;
    let marker = r#"<a href=""#;
    let start = page
        .body
        .find(&format!(r#"{marker}otpauth://"#))
        .expect("an otpauth link")
        + marker.len();
    let href = &page.body[start..start + page.body[start..].find('"').unwrap()];
    let href = href.replace("&#38;", "&").replace("&amp;", "&");
    let uri = KeyUri::parse(&href).unwrap_or_else(|e| panic!("{href}: {e}"));
    assert_eq!(uri.issuer.as_deref(), Some("St. Elsewhere"));
    assert_eq!(uri.account, "jane");
    let key: String = page.body[page.body.find(r#"id="manual-key""#).unwrap()..]
        .split("</p>")
        .next()
        .unwrap()
        .split("<span>")
        .skip(1)
        .map(|part| part.split("</span>").next().unwrap())
        .collect();
    assert_eq!(key, uri.secret.to_base32(), "the link holds the key shown");
    page.assert_contains(r#"<dd id="manual-issuer">St. Elsewhere</dd>"#);
    page.assert_contains(r#"<dd id="manual-account">jane</dd>"#);
    for app_name in [
        "FreeOTP",
        "Google Authenticator",
        "Microsoft Authenticator",
        "any app for time-based codes (RFC 6238)",
    ] {
        page.assert_contains(&format!("<li>{app_name}</li>"));
    }
    // A link is navigation: the CSP, which has no navigate-to, lets it open the app;
    // form-action (forms only) stays 'self'.
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("form-action 'self'") && !csp.contains("navigate-to"));
    app.stop().await;
}

/// SPEC section 11: a path that does not exist is a real 404: the page (with a link to
/// sign in) for a browser, `{"code":"not_found"}` under /api; never an empty body.
#[tokio::test]
async fn an_unknown_address_is_a_404_page_or_json_under_the_api() {
    let app = spawn_app().await;
    let page = get(&app, "/no/such/page").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    page.assert_contains("<h1>Page not found</h1>");
    page.assert_contains(r#"href="/signin""#);
    for path in ["/api/v1/no-such-thing", "/api", "/validate/nothing"] {
        let (status, answer) = call(&app, Method::GET, path, None, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(answer["code"], "not_found", "{path}: {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    app.stop().await;
}

/// SPEC section 11: a method a path does not take is a real 405, with `Allow`.
#[tokio::test]
async fn a_wrong_method_is_a_405_page_or_json_under_the_api() {
    let app = spawn_app().await;
    let page = get(&app, "/signin/cancel").await;
    assert_eq!(page.status, StatusCode::METHOD_NOT_ALLOWED);
    page.assert_contains("<h1>This action is not available here</h1>");
    page.assert_contains(r#"href="/signin""#);
    assert_eq!(page.headers["allow"], "POST");
    let response = app
        .client
        .delete(format!("{}/api/v1/signin", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(response.headers().contains_key("allow"));
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["code"], "method_not_allowed");
    app.stop().await;
}

// ----- the focus ring (WCAG 2.2 1.4.11) -----

/// The `--name: #rrggbb;` custom properties of the stylesheet.
fn css_colour(css: &str, name: &str) -> [u8; 3] {
    let marker = format!("--{name}:");
    let start = css
        .find(&marker)
        .unwrap_or_else(|| panic!("--{name} in style.css"))
        + marker.len();
    let value = css[start..].split(';').next().unwrap().trim();
    let hex = value.strip_prefix('#').expect("a #rrggbb colour");
    assert_eq!(hex.len(), 6, "--{name}: {value}");
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap();
    [byte(0), byte(2), byte(4)]
}

/// WCAG 2.x relative luminance and contrast ratio.
pub(crate) fn contrast(a: [u8; 3], b: [u8; 3]) -> f64 {
    let luminance = |c: [u8; 3]| {
        let channel = |v: u8| {
            let s = f64::from(v) / 255.0;
            if s <= 0.04045 {
                s / 12.92
            } else {
                ((s + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(c[0]) + 0.7152 * channel(c[1]) + 0.0722 * channel(c[2])
    };
    let (la, lb) = (luminance(a), luminance(b));
    let (light, dark) = if la > lb { (la, lb) } else { (lb, la) };
    (light + 0.05) / (dark + 0.05)
}

#[test]
fn the_contrast_ratio_follows_wcag() {
    assert!((contrast([0, 0, 0], [255, 255, 255]) - 21.0).abs() < 1e-9);
    assert!((contrast([0x77, 0x77, 0x77], [255, 255, 255]) - 4.48).abs() < 0.01);
}

/// SPEC section 11, WCAG 2.2 1.4.11: the focus ring is a dark outline on a white ring:
/// the outline has 3:1 against the page and the card it is drawn on, and against the
/// white ring; the white ring has 3:1 against every button colour it surrounds.
#[test]
fn the_focus_ring_has_3_to_1_against_the_backgrounds_and_the_buttons() {
    let css =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/static/style.css")).unwrap();
    let focus = css_colour(&css, "focus");
    let offset = css_colour(&css, "focus-offset");
    for background in ["page", "card", "info-bg", "error-bg"] {
        let ratio = contrast(focus, css_colour(&css, background));
        assert!(ratio >= 3.0, "--focus on --{background}: {ratio:.2}");
    }
    assert!(contrast(focus, offset) >= 3.0);
    for button in ["brand", "brand-dark", "error-line"] {
        let ratio = contrast(offset, css_colour(&css, button));
        assert!(ratio >= 3.0, "--focus-offset by --{button}: {ratio:.2}");
    }
    // Every focus rule draws both: the outline in --focus, the ring in --focus-offset.
    let rules: Vec<&str> = css
        .split('}')
        .filter(|rule| rule.contains(":focus"))
        .collect();
    assert!(!rules.is_empty());
    for rule in rules {
        assert!(
            rule.contains("outline: 3px solid var(--focus)")
                && rule.contains("box-shadow: 0 0 0 2px var(--focus-offset)"),
            "{rule}"
        );
    }
}

async fn post_settings(app: &TestApp, fields: Vec<(String, String)>) -> Page {
    let borrowed: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    submit(app, "/admin/settings", "/admin/settings", &borrowed).await
}

/// SPEC section 11: System Settings edits the Help Text in a `<textarea>`; a browser's
/// CRLF line breaks are stored as LF, and 501 characters are refused next to the field
/// with nothing changed.
#[tokio::test]
async fn the_console_edits_the_help_text_in_a_textarea() {
    let app = spawn_app().await;
    let password = app.admin_password.clone();
    let answer = sign_in(&app, "admin", &password).await;
    if answer.location() == "/signin/enroll" {
        submit(&app, "/signin/enroll", "/signin/enroll/skip", &[]).await;
    }
    let current = app.store.settings().await.unwrap();
    let form = |help: &str| -> Vec<(String, String)> {
        SettingKey::ALL
            .into_iter()
            .map(|key| match key {
                SettingKey::HelpText => (key.name().to_owned(), help.to_owned()),
                other => (other.name().to_owned(), current.get(other)),
            })
            .filter(|(name, value)| name != "bypass_enabled" || value == "true")
            .collect()
    };
    let saved = post_settings(&app, form("Service desk\r\n4444")).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let stored = app.store.settings().await.unwrap();
    assert_eq!(stored.help_text(), "Service desk\n4444");
    get(&app, "/admin/settings").await.assert_contains(
        r#"maxlength="500" rows="4" aria-describedby="help_text-help">Service desk"#,
    );

    let refused = post_settings(&app, form(&"z".repeat(501))).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    refused.assert_contains("Help Text must be at most 500 characters");
    assert_eq!(
        app.store.settings().await.unwrap(),
        stored,
        "nothing changed"
    );
    app.stop().await;
}

/// SPEC section 11: a sign-in form that cannot be read is an error page with the Help
/// Text too.
#[tokio::test]
async fn an_unreadable_sign_in_form_shows_the_help_text() {
    let app = spawn_app().await;
    app.settings(&[(SettingKey::HelpText, "Service desk: 4444")])
        .await;
    let page = Page::of(
        app.client
            .post(format!("{}/signin", app.address))
            .header("content-type", "text/plain")
            .body("username=jane")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    page.assert_contains("The form could not be read");
    page.assert_contains(r#"<aside class="help-text" id="help-text""#);
    page.assert_contains("Service desk: 4444");
    app.stop().await;
}
