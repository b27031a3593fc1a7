//! The console's forms as SPEC section 11 asks: every error at once in a summary whose
//! items link to their fields, `aria-invalid` / `aria-describedby`, typed values kept
//! (never a password); second pages before dangerous changes (a broad IP rule, removing a
//! rule, a role to Force, Enable Bypass 2FA OTP), where Cancel stores nothing; IP Settings
//! showing the bypass; Edit User's device, lock and audit link; Use 2FA as three choices.

use reqwest::StatusCode;
use twostep::domain::{PromptMode, Require2fa, SettingKey, SettingKind};

use crate::admin_pages::sign_in_admin;
use crate::helpers::{spawn_app, TestApp};
use crate::pages::{get, submit, Page};

/// The `href="#..."` targets of the error summary, in order.
fn summary_links(page: &Page) -> Vec<String> {
    let start = page
        .body
        .find(r#"class="error-summary""#)
        .expect("an error summary");
    let end = start + page.body[start..].find("</div>").unwrap();
    page.body[start..end]
        .split(r##"href="#"##)
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .collect()
}

/// The opening tag of the element with this id.
fn tag_with_id<'a>(page: &'a Page, id: &str) -> &'a str {
    let at = page
        .body
        .find(&format!(r#"id="{id}""#))
        .unwrap_or_else(|| panic!("no element with id {id}:\n{}", page.body));
    let start = page.body[..at].rfind('<').unwrap();
    let end = at + page.body[at..].find('>').unwrap();
    &page.body[start..=end]
}

/// Asserts the summary is the accessible one of SPEC section 11.
fn assert_summary_box(page: &Page) {
    let tag = tag_with_id(page, "error-summary");
    assert!(tag.contains(r#"role="alert""#), "{tag}");
    assert!(tag.contains(r#"tabindex="-1""#), "focusable: {tag}");
    page.assert_contains("There is a problem");
}

/// SPEC section 11: Add User with four bad fields lists four errors at once, each a link
/// to a field that exists and is marked invalid, keeps what was typed and never the password.
#[tokio::test]
async fn add_user_with_four_bad_fields_lists_four_linked_errors_and_keeps_the_values() {
    let app = spawn_app().await;
    sign_in_admin(&app).await;
    let page = submit(
        &app,
        "/admin/users/new",
        "/admin/users/new",
        &[
            ("username", "no spaces allowed"),
            ("display_name", ""),
            ("email", "not-an-email"),
            ("role", "Staff"),
            ("password", "short"),
        ],
    )
    .await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.body
    );
    assert_summary_box(&page);
    let links = summary_links(&page);
    assert_eq!(
        links,
        ["username", "display_name", "email", "password"],
        "one item per bad field, in the form's order"
    );
    for (id, label) in [
        ("username", "Username"),
        ("display_name", "Display name"),
        ("email", "Email"),
        ("password", "Password"),
    ] {
        page.assert_contains(&format!(r##"<a href="#{id}">{label}: "##));
        let input = tag_with_id(&page, id);
        assert!(input.contains(r#"aria-invalid="true""#), "{input}");
        assert!(
            input.contains(&format!(r#"aria-describedby="{id}-error""#)),
            "{input}"
        );
        let error = tag_with_id(&page, &format!("{id}-error"));
        assert!(error.contains("field-error"), "{error}");
    }
    assert!(!tag_with_id(&page, "role").contains("aria-invalid"));
    assert!(tag_with_id(&page, "username").contains(r#"value="no spaces allowed""#));
    assert!(tag_with_id(&page, "email").contains(r#"value="not-an-email""#));
    let password = tag_with_id(&page, "password");
    assert!(
        !password.contains("value="),
        "the password is not kept: {password}"
    );
    assert!(
        !page.body.contains("short\""),
        "the password is nowhere on the page"
    );
    assert!(app
        .store
        .user_by_username(&twostep::domain::Username::parse("admin").unwrap())
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        app.store.count_users().await.unwrap(),
        1,
        "nothing was added"
    );
    app.stop().await;
}

/// SPEC section 11: Edit User reports every bad field at once too.
#[tokio::test]
async fn edit_user_with_three_bad_fields_lists_all_three() {
    let app = spawn_app().await;
    let role = app.role("Porters", Require2fa::No, false, false).await;
    app.user("pat", &role, true).await;
    sign_in_admin(&app).await;
    let page = submit(
        &app,
        "/admin/users/pat",
        "/admin/users/pat",
        &[
            ("display_name", ""),
            ("email", "nope"),
            ("role", "No Such Role"),
            ("active", "yes"),
            ("password", ""),
        ],
    )
    .await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.body
    );
    assert_summary_box(&page);
    assert_eq!(summary_links(&page), ["display_name", "email", "role"]);
    assert!(tag_with_id(&page, "email").contains(r#"value="nope""#));
    app.stop().await;
}

/// All current settings as form fields, with `changes` applied.
async fn settings_fields(app: &TestApp, changes: &[(&str, &str)]) -> Vec<(String, String)> {
    let current = app.store.settings().await.unwrap();
    let mut fields = Vec::new();
    for key in SettingKey::ALL {
        let value = changes
            .iter()
            .find(|(name, _)| *name == key.name())
            .map_or_else(|| current.get(key), |(_, value)| (*value).to_owned());
        if key.kind() == SettingKind::Flag && value != "true" {
            continue;
        }
        fields.push((key.name().to_owned(), value));
    }
    fields
}

async fn submit_settings(app: &TestApp, fields: &[(String, String)]) -> Page {
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    submit(app, "/admin/settings", "/admin/settings", &fields).await
}

/// SPEC section 11: the settings summary names each bad setting by its label.
#[tokio::test]
async fn two_bad_settings_are_both_named_by_their_label_in_the_summary() {
    let app = spawn_app().await;
    sign_in_admin(&app).await;
    let fields = settings_fields(
        &app,
        &[("otp_length", "99"), ("lockout_threshold", "nonsense")],
    )
    .await;
    let page = submit_settings(&app, &fields).await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.body
    );
    assert_summary_box(&page);
    let links = summary_links(&page);
    assert!(links.contains(&"otp_length".to_owned()), "{links:?}");
    assert!(links.contains(&"lockout_threshold".to_owned()), "{links:?}");
    page.assert_contains(r##"<a href="#otp_length">OTP Length: "##);
    assert!(tag_with_id(&page, "otp_length").contains(r#"aria-invalid="true""#));
    assert!(tag_with_id(&page, "otp_length").contains(r#"value="99""#));
    assert_eq!(
        app.store.settings().await.unwrap().otp_length().get(),
        6,
        "nothing changed"
    );
    app.stop().await;
}

/// SPEC section 11: Use 2FA is three labelled radio buttons, each explained; the stored
/// value stays the number.
#[tokio::test]
async fn use_2fa_is_three_labelled_choices_and_saving_one_stores_its_number() {
    let app = spawn_app().await;
    sign_in_admin(&app).await;
    let page = get(&app, "/admin/settings").await;
    for (value, label) in [
        ("1", "Counter-based codes (HOTP) only"),
        ("2", "Time-based codes (TOTP) only"),
        ("3", "The user chooses"),
    ] {
        let radio = tag_with_id(&page, &format!("use_2fa-{value}"));
        assert!(radio.contains(r#"type="radio""#), "{radio}");
        assert!(radio.contains(&format!(r#"value="{value}""#)), "{radio}");
        assert_eq!(radio.contains("checked"), value == "2", "{radio}");
        page.assert_contains(&format!(r#"<label for="use_2fa-{value}">{label}</label>"#));
        page.assert_contains(&format!(r#"id="use_2fa-{value}-hint""#));
    }
    assert!(!page
        .body
        .contains(r#"type="number" class="number" id="use_2fa""#));
    let fields = settings_fields(&app, &[("use_2fa", "3")]).await;
    let saved = submit_settings(&app, &fields).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(
        app.store.settings().await.unwrap().get(SettingKey::Use2fa),
        "3"
    );
    app.stop().await;
}

/// SPEC section 11: turning on Enable Bypass 2FA OTP asks first; Cancel leaves it off,
/// Confirm turns it on.
#[tokio::test]
async fn turning_on_the_bypass_asks_first_and_only_confirm_stores_it() {
    let app = spawn_app().await;
    sign_in_admin(&app).await;
    let fields = settings_fields(&app, &[("bypass_enabled", "true"), ("otp_length", "8")]).await;
    let page = submit_settings(&app, &fields).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.assert_contains("Turn on Enable Bypass 2FA OTP?");
    page.assert_contains("will no longer be asked for their one-time code");
    assert!(tag_with_id(&page, "cancel").contains(r#"href="/admin/settings""#));
    page.assert_contains(r#"name="confirm_bypass" value="yes""#);
    page.assert_contains(r#"name="otp_length" value="8""#);
    let settings = app.store.settings().await.unwrap();
    assert!(!settings.bypass_enabled(), "nothing stored before Confirm");
    assert_eq!(settings.otp_length().get(), 6);
    let mut confirmed = fields.clone();
    confirmed.push(("confirm_bypass".into(), "yes".into()));
    let saved = submit_settings(&app, &confirmed).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let settings = app.store.settings().await.unwrap();
    assert!(settings.bypass_enabled());
    assert_eq!(settings.otp_length().get(), 8);
    // Saving other settings while it is on asks nothing.
    let again = submit_settings(&app, &settings_fields(&app, &[("otp_length", "7")]).await).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    app.stop().await;
}

/// SPEC section 11: IP Settings shows whether Enable Bypass 2FA OTP is on, with a link.
#[tokio::test]
async fn ip_settings_shows_whether_the_bypass_is_on_with_a_link_to_change_it() {
    let app = spawn_app().await;
    sign_in_admin(&app).await;
    let off = get(&app, "/admin/ip").await;
    off.assert_contains("Enable Bypass 2FA OTP is off");
    assert!(tag_with_id(&off, "bypass-change").contains(r#"href="/admin/settings#bypass_enabled""#));
    app.settings(&[(SettingKey::BypassEnabled, "true")]).await;
    let on = get(&app, "/admin/ip").await;
    on.assert_contains("Enable Bypass 2FA OTP is on");
    app.stop().await;
}

/// SPEC section 11: a rule broader than /16 asks first (0.0.0.0/0 and ::/0 too); Cancel
/// stores nothing, Confirm stores it; a /16 is added at once.
#[tokio::test]
async fn a_broad_ip_rule_asks_first_and_only_confirm_stores_it() {
    let app = spawn_app().await;
    sign_in_admin(&app).await;
    for (network, size) in [
        ("10.0.0.0/15", "131,072 addresses"),
        ("0.0.0.0/0", "every IPv4 address"),
        ("::/0", "every IPv6 address"),
        ("2001:db8::/47", "2^81 addresses"),
    ] {
        let page = submit(
            &app,
            "/admin/ip",
            "/admin/ip",
            &[("network", network), ("bypass_2fa", "yes"), ("note", "All")],
        )
        .await;
        assert_eq!(page.status, StatusCode::OK, "{network}: {}", page.body);
        page.assert_contains("Add a broad IP rule?");
        page.assert_contains(&format!("it covers {size}"));
        page.assert_contains(r#"name="confirm_broad" value="yes""#);
        assert!(tag_with_id(&page, "cancel").contains(r#"href="/admin/ip""#));
    }
    assert!(
        app.store.ip_rules().await.unwrap().is_empty(),
        "nothing stored"
    );
    let confirmed = submit(
        &app,
        "/admin/ip",
        "/admin/ip",
        &[
            ("network", "10.0.0.0/15"),
            ("bypass_2fa", "yes"),
            ("note", "All"),
            ("confirm_broad", "yes"),
        ],
    )
    .await;
    assert_eq!(
        confirmed.status,
        StatusCode::SEE_OTHER,
        "{}",
        confirmed.body
    );
    let narrow = submit(
        &app,
        "/admin/ip",
        "/admin/ip",
        &[("network", "10.30.0.0/16")],
    )
    .await;
    assert_eq!(
        narrow.status,
        StatusCode::SEE_OTHER,
        "a /16 needs no confirmation"
    );
    let rules = app.store.ip_rules().await.unwrap();
    let networks: Vec<String> = rules.iter().map(|r| r.rule.network.to_string()).collect();
    assert_eq!(networks.len(), 2, "{networks:?}");
    assert!(networks.contains(&"10.0.0.0/15".to_owned()));
    let broad = rules
        .iter()
        .find(|r| r.rule.network.to_string() == "10.0.0.0/15")
        .unwrap();
    assert!(broad.rule.bypass_2fa);
    assert_eq!(broad.rule.note, "All");
    app.stop().await;
}

/// SPEC section 11: removing an IP rule asks first and says what will happen.
#[tokio::test]
async fn removing_an_ip_rule_asks_first_and_only_confirm_removes_it() {
    let app = spawn_app().await;
    sign_in_admin(&app).await;
    submit(
        &app,
        "/admin/ip",
        "/admin/ip",
        &[("network", "10.20.0.0/16"), ("bypass_2fa", "yes")],
    )
    .await;
    let id = app.store.ip_rules().await.unwrap()[0].id;
    let page = submit(&app, "/admin/ip", &format!("/admin/ip/{id}/delete"), &[]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.assert_contains("Remove this IP rule?");
    page.assert_contains("will be asked for their one-time code again");
    assert!(tag_with_id(&page, "cancel").contains(r#"href="/admin/ip""#));
    assert_eq!(
        app.store.ip_rules().await.unwrap().len(),
        1,
        "Cancel keeps it"
    );
    let removed = submit(
        &app,
        "/admin/ip",
        &format!("/admin/ip/{id}/delete"),
        &[("confirm", "yes")],
    )
    .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    assert!(app.store.ip_rules().await.unwrap().is_empty());
    app.stop().await;
}

/// SPEC section 11: saving a role with Force says how many of its users have no device;
/// only Confirm saves it.
#[tokio::test]
async fn a_role_to_force_says_how_many_users_have_no_device_and_only_confirm_saves() {
    let app = spawn_app().await;
    let role = app
        .role("Nurses", Require2fa::Encourage, false, false)
        .await;
    for name in ["ann", "bea", "cy"] {
        app.user(name, &role, true).await;
    }
    let dee = app.user("dee", &role, true).await;
    app.enroll_totp(&dee, PromptMode::WhenAppropriate).await;
    sign_in_admin(&app).await;
    let fields = [
        ("name", "Nurses"),
        ("require_2fa", "force"),
        ("otp_required", "no"),
    ];
    let page = submit(&app, "/admin/roles/Nurses", "/admin/roles/Nurses", &fields).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.assert_contains(
        "3 users of this role have no device and will have to set one up at their next sign-in",
    );
    page.assert_contains(r#"name="confirm_force" value="yes""#);
    assert!(tag_with_id(&page, "cancel").contains(r#"href="/admin/roles/Nurses""#));
    let stored = app.store.role_by_name("Nurses").await.unwrap().unwrap();
    assert_eq!(
        stored.security.require_2fa(),
        Require2fa::Encourage,
        "Cancel changes nothing"
    );
    let mut confirmed = fields.to_vec();
    confirmed.push(("confirm_force", "yes"));
    let saved = submit(
        &app,
        "/admin/roles/Nurses",
        "/admin/roles/Nurses",
        &confirmed,
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let stored = app.store.role_by_name("Nurses").await.unwrap().unwrap();
    assert_eq!(stored.security.require_2fa(), Require2fa::Force);
    app.stop().await;
}

/// SPEC section 11: Edit User shows the device (method, prompt mode, enrolled, last used
/// as `<time datetime>`), the lock with its end, and a link to the user's audit entries,
/// which the audit page filters by.
#[tokio::test]
async fn edit_user_shows_the_device_the_lock_with_its_end_and_the_audit_link() {
    let app = spawn_app().await;
    let role = app.role("Porters", Require2fa::No, false, false).await;
    let user = app.user("locky", &role, true).await;
    app.enroll_totp(&user, PromptMode::EveryLogin).await;
    app.role("Other", Require2fa::No, false, false).await;
    app.user(
        "other",
        &app.role("Other", Require2fa::No, false, false).await,
        true,
    )
    .await;
    for _ in 0..5 {
        app.post(
            "/api/v1/signin",
            serde_json::json!({ "username": "locky", "password": "wrong password" }),
        )
        .await;
    }
    // An entry of another user, which the filtered audit page must leave out.
    app.post(
        "/api/v1/signin",
        serde_json::json!({ "username": "other", "password": "wrong password" }),
    )
    .await;
    sign_in_admin(&app).await;
    let all = get(&app, "/admin/audit").await;
    assert!(
        all.body.contains("other"),
        "the unfiltered log has other's entry"
    );
    let page = get(&app, "/admin/users/locky").await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_contains("Authenticator app, time-based (TOTP)");
    page.assert_contains("Every Login");
    let enrolled = &page.body[page.body.find(r#"class="device-enrolled""#).unwrap()..];
    assert!(
        enrolled.starts_with(r#"class="device-enrolled"><time datetime=""#),
        "{enrolled}"
    );
    assert!(enrolled.contains("Z\">"), "an ISO UTC datetime");
    assert!(enrolled.contains(" UTC</time>"));
    page.assert_contains(r#"<td class="device-last-used">Never</td>"#);
    let lock = tag_with_id(&page, "lock-state");
    assert!(lock.starts_with("<p"), "{lock}");
    let lock_text = &page.body[page.body.find(r#"id="lock-state""#).unwrap()..];
    assert!(lock_text.contains("until <time datetime=\""), "{lock_text}");
    assert!(tag_with_id(&page, "audit-link").contains(r#"href="/admin/audit?user=locky""#));
    let audit = get(&app, "/admin/audit?user=locky").await;
    assert_eq!(audit.status, StatusCode::OK);
    audit.assert_contains("locky");
    let rows = &audit.body[audit.body.find("<tbody").expect("audit rows")..];
    assert!(rows.contains("locky"));
    assert!(
        !rows.contains("other"),
        "the audit page shows only that user's entries"
    );
    let none = get(&app, "/admin/users/other").await;
    none.assert_contains("No device is set up.");
    assert!(!none.body.contains(r#"id="lock-state""#));
    app.stop().await;
}

/// SPEC section 11: the email template form's errors show in the same summary box.
#[tokio::test]
async fn a_bad_email_template_shows_the_error_summary_and_keeps_the_text() {
    let app = spawn_app().await;
    sign_in_admin(&app).await;
    let page = submit(
        &app,
        "/admin/email",
        "/admin/email",
        &[
            ("subject", "Your code"),
            ("text_body", "No code here"),
            ("html_body", ""),
            ("action", "save"),
        ],
    )
    .await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.body
    );
    assert_summary_box(&page);
    page.assert_contains("No code here</textarea>");
    app.stop().await;
}

/// SPEC section 11: Edit User shows "until an administrator unlocks it" for a lock
/// without an end, and the time of the last accepted code.
#[tokio::test]
async fn edit_user_shows_a_lock_without_end_and_the_last_use_of_the_device() {
    let app = spawn_app().await;
    app.settings(&[(SettingKey::LockoutMinutes, "0")]).await;
    let role = app.role("Porters", Require2fa::No, false, false).await;
    let user = app.user("kim", &role, true).await;
    let totp = app.enroll_totp(&user, PromptMode::EveryLogin).await;
    let (_, answer) = app
        .post(
            "/api/v1/signin",
            serde_json::json!({ "username": "kim", "password": TestApp::password_of("kim") }),
        )
        .await;
    let transaction = answer["transaction"].as_str().unwrap().to_owned();
    let (_, done) = app
        .post(
            "/api/v1/signin/otp",
            serde_json::json!({ "transaction": transaction, "code": app.totp_now(&totp) }),
        )
        .await;
    assert_eq!(done["status"], "signed_in", "{done}");
    for _ in 0..5 {
        app.post(
            "/api/v1/signin",
            serde_json::json!({ "username": "kim", "password": "wrong password" }),
        )
        .await;
    }
    sign_in_admin(&app).await;
    let page = get(&app, "/admin/users/kim").await;
    let lock = &page.body[page.body.find(r#"id="lock-state""#).unwrap()..];
    assert!(lock.contains("until an administrator unlocks it"), "{lock}");
    let used = &page.body[page.body.find(r#"class="device-last-used""#).unwrap()..];
    assert!(
        used.starts_with(r#"class="device-last-used"><time datetime=""#),
        "{used}"
    );
    app.stop().await;
}

/// SPEC section 11: a role form with a bad name and a bad Require 2FA lists both.
#[tokio::test]
async fn a_role_form_with_two_bad_fields_lists_both() {
    let app = spawn_app().await;
    sign_in_admin(&app).await;
    let page = submit(
        &app,
        "/admin/roles/new",
        "/admin/roles/new",
        &[
            ("name", ""),
            ("require_2fa", "sometimes"),
            ("otp_required", "no"),
        ],
    )
    .await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.body
    );
    assert_summary_box(&page);
    assert_eq!(summary_links(&page), ["name", "require_2fa"]);
    assert!(tag_with_id(&page, "name").contains(r#"aria-invalid="true""#));
    assert!(tag_with_id(&page, "require_2fa").contains(r#"aria-describedby="require_2fa-error""#));
    app.stop().await;
}

/// SPEC 12: Edit User of a directory user shows its DN and groups, shows the name, email
/// and role as read (no inputs for them), and has no password reset; saving changes
/// what is twostep's own (Active). A local user's page has the reset and no entry.
#[tokio::test]
async fn edit_user_of_a_directory_user_shows_its_entry_and_no_password_reset() {
    let app = spawn_app().await;
    let role = app.role("Porters", Require2fa::No, false, false).await;
    let group = "cn=porters,ou=groups,dc=example,dc=org";
    app.directory_user("dana", &role, &[group]).await;
    app.user("pat", &role, true).await;
    sign_in_admin(&app).await;

    let page = get(&app, "/admin/users/dana").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("uid=dana,ou=people,dc=example,dc=org"),
        "{}",
        page.body
    );
    assert!(page.body.contains(group), "{}", page.body);
    assert!(
        page.body.contains(r#"id="directory-owned""#),
        "{}",
        page.body
    );
    for absent in [r#"id="password""#, r#"id="display_name""#, r#"id="role""#] {
        assert!(!page.body.contains(absent), "{absent} on {}", page.body);
    }
    let local = get(&app, "/admin/users/pat").await;
    assert!(local.body.contains(r#"id="password""#), "{}", local.body);
    assert!(!local.body.contains("directory-dn"), "{}", local.body);
    let list = get(&app, "/admin/users?q=dana").await;
    assert!(
        list.body.contains("<td class=\"wide-only\">Directory</td>"),
        "{}",
        list.body
    );

    // The form as the page has it: only Active (unchecked).
    let saved = submit(&app, "/admin/users/dana", "/admin/users/dana", &[]).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let dana = app
        .store
        .user_by_username(&twostep::domain::Username::parse("dana").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(!dana.active);
    assert_eq!(dana.display_name.as_str(), "dana Directory");

    // A password sent anyway is refused, and named.
    let refused = submit(
        &app,
        "/admin/users/dana",
        "/admin/users/dana",
        &[
            ("active", "yes"),
            ("password", "a new passphrase for dana 31"),
        ],
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("reset it in the directory"),
        "{}",
        refused.body
    );
    app.stop().await;
}

/// SPEC 12: System Settings says when directory sign-in is off.
#[tokio::test]
async fn system_settings_say_directory_sign_in_is_off_without_a_directory() {
    let app = spawn_app().await;
    sign_in_admin(&app).await;
    let page = get(&app, "/admin/settings").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains(r#"id="directory-state">Off"#),
        "{}",
        page.body
    );
    app.stop().await;
}
