//! The console in a real browser (SPEC section 11): the audit log's times in the
//! browser's time zone with the UTC time as title, and every console page at a desktop
//! (1280x900) and a phone (390x844) size, headed by its name and never wider than the
//! phone's screen. Screenshots of each land in `target/screenshots/`
//! (`console-desktop-*`, `console-phone-*`, `audit-local-time-*`).

use fantoccini::wd::WebDriverCompatibleCommand;
use serde_json::{json, Value};
use twostep::domain::{AuditEvent, PromptMode, Require2fa};
use twostep::store::NewAuditEntry;

use crate::browser::{browser_at, Browser, ONE_BROWSER_AT_A_TIME};
use crate::helpers::{spawn_app, NowTs, TestApp};

/// A Chrome DevTools Protocol command through chromedriver
/// (`POST /session/{id}/goog/cdp/execute`).
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(json!({ "cmd": self.cmd, "params": self.params }).to_string()),
        )
    }
}

async fn cdp(browser: &Browser, cmd: &'static str, params: Value) {
    browser
        .client
        .issue_cmd(Cdp { cmd, params })
        .await
        .unwrap_or_else(|error| panic!("{cmd}: {error}"));
}

/// The viewport of a phone (mobile: the page's viewport meta applies) or a desktop.
async fn viewport(browser: &Browser, width: u32, height: u32) {
    cdp(
        browser,
        "Emulation.setDeviceMetricsOverride",
        json!({
            "width": width,
            "height": height,
            "deviceScaleFactor": 1,
            "mobile": width < 600,
        }),
    )
    .await;
}

/// The app with a Force role, Nurses: jane without a device, bob with a TOTP app.
async fn nurses_jane_and_bob() -> TestApp {
    let app = spawn_app().await;
    let nurses = app.role("Nurses", Require2fa::Force, false, false).await;
    app.user("jane", &nurses, true).await;
    let bob = app.user("bob", &nurses, true).await;
    app.enroll_totp(&bob, PromptMode::EveryLogin).await;
    app
}

async fn script_number(browser: &Browser, script: &str) -> i64 {
    browser
        .client
        .execute(script, vec![])
        .await
        .expect("the script runs")
        .as_i64()
        .expect("a number")
}

/// SPEC section 11: "The audit log shows plain-language events in the browser's time
/// zone (the UTC time as title)": in New York, 2027-01-15 08:00 UTC reads 03:00 EST.
#[tokio::test]
async fn the_audit_log_shows_times_in_the_browsers_time_zone_with_utc_as_title() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let app = spawn_app().await;
    app.store
        .audit(
            &NewAuditEntry {
                event: AuditEvent::Locked,
                actor: None,
                subject: Some("jane".to_owned()),
                client_ip: None,
                detail: String::new(),
            },
            app.clock.now_ts(),
        )
        .await
        .unwrap();
    let Some(mut browser) =
        browser_at(app.address.clone(), "audit-local-time", 1280, 900, &[]).await
    else {
        return;
    };
    cdp(
        &browser,
        "Emulation.setTimezoneOverride",
        json!({ "timezoneId": "America/New_York" }),
    )
    .await;
    browser.sign_in_admin(&app).await;
    browser.goto("/admin/audit?event=locked").await;
    browser.page("admin-audit").await;
    let time = browser.find("#audit tbody time").await;
    assert_eq!(time.text().await.unwrap(), "2027-01-15 03:00:00 EST");
    assert_eq!(
        time.attr("title").await.unwrap().as_deref(),
        Some("2027-01-15 08:00:00 UTC")
    );
    assert_eq!(
        time.attr("datetime").await.unwrap().as_deref(),
        Some("2027-01-15T08:00:00Z")
    );
    assert_eq!(
        browser.text("#audit tbody td:nth-child(2)").await,
        "Account locked"
    );
    browser.shot("new-york").await;

    // Elsewhere, the same entry in that zone.
    cdp(
        &browser,
        "Emulation.setTimezoneOverride",
        json!({ "timezoneId": "Asia/Kolkata" }),
    )
    .await;
    browser.goto("/admin/audit?event=locked").await;
    browser.page("admin-audit").await;
    assert_eq!(
        browser.text("#audit tbody time").await,
        "2027-01-15 13:30:00 GMT+5:30"
    );
    browser.shot("kolkata").await;
    browser.finish().await;
    app.stop().await;
}

/// SPEC section 11 (pages people can use on a ward's phone or a desk): every console
/// page, at 1280x900 and 390x844, is headed by its name and nothing overflows
/// horizontally at 390 px (`scrollWidth <= 390`); each is saved as a screenshot.
#[tokio::test]
async fn every_console_page_is_headed_by_its_name_and_fits_a_phone() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let app = nurses_jane_and_bob().await;
    let Some(mut browser) = browser_at(app.address.clone(), "console", 1280, 900, &[]).await else {
        return;
    };
    browser.sign_in_admin(&app).await;
    // Jane's device being set up, for the QR page.
    browser.goto("/admin/users/jane/2fa/setup").await;
    browser.page("admin-user-setup").await;
    browser
        .click("form[action='/admin/users/jane/2fa/setup'] button[type='submit']")
        .await;
    browser.page("admin-user-qr").await;

    let pages: [(&str, &str, &str, &str); 18] = [
        ("/admin", "admin-home", "Needs attention", "home"),
        ("/admin/users", "admin-users", "Access Control", "users"),
        ("/admin/users/new", "admin-user-new", "Add User", "user-new"),
        (
            "/admin/users/jane",
            "admin-user-edit",
            "Edit User: jane",
            "user-edit",
        ),
        (
            "/admin/users/bob/2fa/setup",
            "admin-user-setup",
            "Setup New Device: 2 Step Verification",
            "user-setup",
        ),
        (
            "/admin/users/jane/2fa/confirm",
            "admin-user-qr",
            "Complete Setup for jane",
            "user-qr",
        ),
        (
            "/admin/users/bob/2fa/change",
            "admin-user-change",
            "Change 2 Step Verification",
            "user-change",
        ),
        (
            "/admin/users/bob/2fa/disable",
            "admin-user-disable",
            "Disable 2 Step Verification?",
            "user-disable",
        ),
        ("/admin/roles", "admin-roles", "Security Roles", "roles"),
        (
            "/admin/roles/new",
            "admin-role-edit",
            "Add Role",
            "role-new",
        ),
        (
            "/admin/roles/Nurses",
            "admin-role-edit",
            "Edit Role: Nurses",
            "role-edit",
        ),
        (
            "/admin/settings",
            "admin-settings",
            "System Settings",
            "settings",
        ),
        ("/admin/ip", "admin-ip", "IP Settings", "ip"),
        ("/admin/email", "admin-email", "Email Templates", "email"),
        (
            "/admin/email/security/recovery_codes_generated",
            "admin-email",
            "Email Templates",
            "email-security",
        ),
        ("/admin/audit", "admin-audit", "Audit Log", "audit"),
        (
            "/admin/audit?event=signin_succeeded",
            "admin-audit",
            "Audit Log",
            "audit-filtered",
        ),
        (
            "/admin/applications",
            "admin-applications",
            "Applications",
            "applications",
        ),
    ];
    let mut too_wide = Vec::new();
    for (size, width, height) in [("desktop", 1280, 900), ("phone", 390, 844)] {
        viewport(&browser, width, height).await;
        for (path, marker, heading, name) in pages {
            browser.goto(path).await;
            browser.page(marker).await;
            assert_eq!(browser.text("main h1").await, heading, "{path} at {size}");
            let scroll_width =
                script_number(&browser, "return document.documentElement.scrollWidth;").await;
            let inner_width = script_number(&browser, "return window.innerWidth;").await;
            assert_eq!(inner_width, i64::from(width), "{path}: the viewport");
            if scroll_width > i64::from(width) {
                too_wide.push(format!("{path} at {size}: {scroll_width} px wide"));
            }
            browser.shot(&format!("{size}-{name}")).await;
        }
    }
    assert!(
        too_wide.is_empty(),
        "pages wider than the screen:\n{}",
        too_wide.join("\n")
    );
    browser.finish().await;
    app.stop().await;
}

/// Defect 8 of the browser review, in Chromium at 1280x900 and 390x844 (SPEC section 11):
/// the console home lists who needs attention, Edit User shows the device with its
/// method and prompt mode and links to the user's audit entries, and Use 2FA is three
/// labelled choices rather than a number.
#[tokio::test]
async fn the_home_edit_user_and_use_2fa_read_in_words_at_both_sizes() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let app = nurses_jane_and_bob().await;
    let Some(mut browser) = browser_at(app.address.clone(), "console-words", 1280, 900, &[]).await
    else {
        return;
    };
    browser.sign_in_admin(&app).await;
    for (size, width, height) in [("desktop", 1280, 900), ("phone", 390, 844)] {
        viewport(&browser, width, height).await;

        browser.goto("/admin").await;
        browser.page("admin-home").await;
        let waiting = browser.text("#without-device").await;
        assert!(waiting.contains("jane"), "{size}: {waiting}");
        assert!(
            !waiting.contains("bob"),
            "{size}: bob has a device: {waiting}"
        );
        browser.shot(&format!("{size}-home")).await;

        browser.goto("/admin/users/bob").await;
        browser.page("admin-user-edit").await;
        assert_eq!(
            browser.text("#devices .device-method").await,
            "Authenticator app, time-based (TOTP)"
        );
        assert_eq!(browser.text("#devices .device-prompt").await, "Every Login");
        let enrolled = browser.find("#devices .device-enrolled time").await;
        assert!(enrolled.attr("datetime").await.unwrap().is_some());
        let audit = browser.find("#audit-link").await;
        assert_eq!(
            audit.attr("href").await.unwrap().as_deref(),
            Some("/admin/audit?user=bob")
        );
        browser.shot(&format!("{size}-user-edit")).await;

        browser.goto("/admin/settings").await;
        browser.page("admin-settings").await;
        let choices = script_number(
            &browser,
            "return document.querySelectorAll('fieldset#use_2fa input[type=radio]').length;",
        )
        .await;
        assert_eq!(choices, 3, "{size}: Use 2FA offers three choices");
        for (value, label) in [
            ("1", "Counter-based codes (HOTP) only"),
            ("2", "Time-based codes (TOTP) only"),
            ("3", "The user chooses"),
        ] {
            assert_eq!(
                browser.text(&format!("label[for='use_2fa-{value}']")).await,
                label
            );
        }
        let checked = browser.find("#use_2fa-2").await;
        assert_eq!(
            checked.prop("checked").await.unwrap().as_deref(),
            Some("true"),
            "the default, 2, is chosen"
        );
        browser.shot(&format!("{size}-settings-use-2fa")).await;
    }
    browser.finish().await;
    app.stop().await;
}
