//! The console's forms in Chromium (SPEC section 11), on a desk screen (1280x900) and a
//! phone (390x844): a summary link puts the focus on its field; the confirmation pages
//! appear, Cancel changes nothing stored and Confirm stores; Edit User's details and Use
//! 2FA's choices. Screenshots of each page go to `target/screenshots/`.

use twostep::domain::{PromptMode, Require2fa};

use crate::browser::{browser_at, Browser, ONE_BROWSER_AT_A_TIME};
use crate::helpers::spawn_app;

/// The id of the element that has the focus.
async fn focused_id(browser: &Browser) -> String {
    browser
        .client
        .active_element()
        .await
        .expect("an active element")
        .attr("id")
        .await
        .expect("its id")
        .unwrap_or_default()
}

async fn walk(width: u32, height: u32, tag: &'static str) {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let app = spawn_app().await;
    let role = app
        .role("Nurses", Require2fa::Encourage, false, false)
        .await;
    for name in ["ann", "bea", "cy"] {
        app.user(name, &role, true).await;
    }
    let dee = app.user("dee", &role, true).await;
    app.enroll_totp(&dee, PromptMode::EveryLogin).await;
    let Some(mut browser) = browser_at(app.address.clone(), tag, width, height, &[]).await else {
        return;
    };
    browser.sign_in_admin(&app).await;

    // Add User with four bad fields: the summary, and its links move the focus.
    browser.goto("/admin/users/new").await;
    browser.page("admin-user-new").await;
    browser.type_into("#username", "no spaces allowed").await;
    browser.type_into("#email", "not-an-email").await;
    browser.type_into("#password", "short").await;
    browser
        .click("form[action='/admin/users/new'] button[type='submit']")
        .await;
    browser.page("admin-user-new").await;
    assert!(browser
        .text("#error-summary")
        .await
        .contains("There is a problem"));
    assert_eq!(
        focused_id(&browser).await,
        "error-summary",
        "the summary takes the focus"
    );
    browser.shot("user-new-errors").await;
    for field in ["username", "display_name", "email", "password"] {
        browser
            .click(&format!("#error-summary a[href='#{field}']"))
            .await;
        assert_eq!(
            focused_id(&browser).await,
            field,
            "the link focuses its field"
        );
    }
    let kept = browser.find("#username").await.prop("value").await.unwrap();
    assert_eq!(kept.as_deref(), Some("no spaces allowed"));
    let password = browser.find("#password").await.prop("value").await.unwrap();
    assert_eq!(password.as_deref(), Some(""), "the password is not kept");

    // A broad IP rule: Cancel stores nothing, Confirm stores it.
    browser.goto("/admin/ip").await;
    browser.page("admin-ip").await;
    assert!(browser
        .text("#bypass-state")
        .await
        .contains("Enable Bypass 2FA OTP is off"));
    browser.shot("ip").await;
    browser.type_into("#network", "10.0.0.0/8").await;
    browser.click("#add-ip-rule button[type='submit']").await;
    browser.page("admin-ip-confirm").await;
    assert!(browser
        .text("#confirm-what")
        .await
        .contains("16,777,216 addresses"));
    browser.shot("ip-broad-confirm").await;
    browser.click("#cancel").await;
    browser.page("admin-ip").await;
    assert!(
        app.store.ip_rules().await.unwrap().is_empty(),
        "Cancel stores nothing"
    );
    browser.type_into("#network", "10.0.0.0/8").await;
    browser.click("#add-ip-rule button[type='submit']").await;
    browser.page("admin-ip-confirm").await;
    browser.click("#confirm").await;
    browser.page("admin-ip").await;
    assert_eq!(
        app.store.ip_rules().await.unwrap().len(),
        1,
        "Confirm stores"
    );

    // Removing it: Cancel keeps it, Confirm removes it.
    browser.click("#ip-rules button").await;
    browser.page("admin-ip-confirm").await;
    browser.shot("ip-delete-confirm").await;
    browser.click("#cancel").await;
    browser.page("admin-ip").await;
    assert_eq!(
        app.store.ip_rules().await.unwrap().len(),
        1,
        "Cancel keeps it"
    );
    browser.click("#ip-rules button").await;
    browser.page("admin-ip-confirm").await;
    browser.click("#confirm").await;
    browser.page("admin-ip").await;
    assert!(
        app.store.ip_rules().await.unwrap().is_empty(),
        "Confirm removes it"
    );

    // A role to Force: the count of users without a device.
    browser.goto("/admin/roles/Nurses").await;
    browser.page("admin-role-edit").await;
    browser.click("#require-force").await;
    browser.shot("role-edit").await;
    browser
        .click("form[action='/admin/roles/Nurses'] button[type='submit']")
        .await;
    browser.page("admin-role-confirm").await;
    assert!(browser.text("#confirm-what").await.contains(
        "3 users of this role have no device and will have to set one up at their next sign-in"
    ));
    browser.shot("role-force-confirm").await;
    browser.click("#cancel").await;
    browser.page("admin-role-edit").await;
    let stored = app.store.role_by_name("Nurses").await.unwrap().unwrap();
    assert_eq!(
        stored.security.require_2fa(),
        Require2fa::Encourage,
        "Cancel changes nothing"
    );
    browser.click("#require-force").await;
    browser
        .click("form[action='/admin/roles/Nurses'] button[type='submit']")
        .await;
    browser.page("admin-role-confirm").await;
    browser.click("#confirm").await;
    browser.page("admin-roles").await;
    let stored = app.store.role_by_name("Nurses").await.unwrap().unwrap();
    assert_eq!(
        stored.security.require_2fa(),
        Require2fa::Force,
        "Confirm stores"
    );

    // System Settings: Use 2FA's choices, and the bypass asks first.
    browser.goto("/admin/settings").await;
    browser.page("admin-settings").await;
    browser.click("#use_2fa-3").await;
    browser.click("#bypass_enabled").await;
    browser.shot("settings").await;
    browser
        .click("form[action='/admin/settings'] button.primary")
        .await;
    browser.page("admin-settings-confirm").await;
    browser.shot("settings-bypass-confirm").await;
    browser.click("#cancel").await;
    browser.page("admin-settings").await;
    let settings = app.store.settings().await.unwrap();
    assert!(!settings.bypass_enabled(), "Cancel changes nothing");
    assert_eq!(settings.get(twostep::domain::SettingKey::Use2fa), "2");
    browser.click("#use_2fa-3").await;
    browser.click("#bypass_enabled").await;
    browser
        .click("form[action='/admin/settings'] button.primary")
        .await;
    browser.page("admin-settings-confirm").await;
    browser.click("#confirm").await;
    browser.page("admin-settings").await;
    let settings = app.store.settings().await.unwrap();
    assert!(settings.bypass_enabled(), "Confirm stores");
    assert_eq!(settings.get(twostep::domain::SettingKey::Use2fa), "3");
    browser.goto("/admin/ip").await;
    browser.page("admin-ip").await;
    assert!(browser
        .text("#bypass-state")
        .await
        .contains("Enable Bypass 2FA OTP is on"));

    // Edit User: the device and the audit link.
    browser.goto("/admin/users/dee").await;
    browser.page("admin-user-edit").await;
    assert!(browser.text("#devices").await.contains("Every Login"));
    browser.shot("user-edit").await;
    browser.click("#audit-link").await;
    browser.page("admin-audit").await;
    browser.shot("audit-of-user").await;
    browser.finish().await;
    app.stop().await;
}

/// SPEC section 11, on a desk screen.
#[tokio::test]
async fn console_forms_summaries_and_confirmations_at_1280x900() {
    walk(1280, 900, "console-forms-desk").await;
}

/// SPEC section 11, on a phone.
#[tokio::test]
async fn console_forms_summaries_and_confirmations_at_390x844() {
    walk(390, 844, "console-forms-phone").await;
}
