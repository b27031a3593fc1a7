//! The administration console through real HTTP (issue 6; SPEC sections 5, 6 and 7): every
//! page renders for an administrator, the server checks each permission, every POST needs
//! the CSRF token, and errors are shown next to their field.

use reqwest::StatusCode;
use twostep::domain::AuditEvent;
use twostep::domain::{Permission, Require2fa, RoleName, RoleSecurity, SettingKey};

use crate::helpers::{spawn_app, NowTs, TestApp};
use crate::pages::{get, post, sign_in, submit, Page};

/// Signs the bootstrap administrator in through the forms (skipping the offered set-up);
/// the client keeps the session cookie.
pub(crate) async fn sign_in_admin(app: &TestApp) {
    let password = app.admin_password.clone();
    sign_in_as(app, "admin", &password).await;
}

async fn sign_in_as(app: &TestApp, username: &str, password: &str) {
    let page = sign_in(app, username, password).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    if page.location() == "/signin/enroll" {
        let skipped = submit(app, "/signin/enroll", "/signin/enroll/skip", &[]).await;
        assert_eq!(skipped.location(), "/");
    } else {
        assert_eq!(page.location(), "/");
    }
}

/// A user `name` (no 2FA) whose role has exactly `permissions`, signed in.
async fn sign_in_with(app: &TestApp, name: &str, permissions: &[Permission]) {
    let role = app
        .store
        .create_role(
            &RoleName::parse(&format!("{name} role")).unwrap(),
            RoleSecurity::new(Require2fa::No, false, false).unwrap(),
            &permissions.iter().copied().collect(),
            twostep::domain::SessionLimits::DEFAULT,
            app.clock.now_ts(),
        )
        .await
        .unwrap();
    app.user(name, &role, true).await;
    sign_in_as(app, name, &TestApp::password_of(name)).await;
}

fn ok(page: &Page, marker: &str) {
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.assert_contains(&format!(r#"data-page="{marker}""#));
}

#[tokio::test]
async fn every_console_page_renders_for_an_administrator_with_the_navigation() {
    let app = spawn_app().await;
    let role = app.role("Nurses", Require2fa::Force, false, false).await;
    app.user("jane", &role, true).await;
    sign_in_admin(&app).await;

    let home = get(&app, "/").await;
    home.assert_contains(r#"href="/admin""#);
    let start = get(&app, "/admin").await;
    ok(&start, "admin-home");

    for (path, marker) in [
        ("/admin/users", "admin-users"),
        ("/admin/users?q=jan", "admin-users"),
        ("/admin/users/new", "admin-user-new"),
        ("/admin/users/jane", "admin-user-edit"),
        ("/admin/users/jane/2fa/setup", "admin-user-setup"),
        ("/admin/roles", "admin-roles"),
        ("/admin/roles/new", "admin-role-edit"),
        ("/admin/roles/Nurses", "admin-role-edit"),
        ("/admin/settings", "admin-settings"),
        ("/admin/ip", "admin-ip"),
        ("/admin/email", "admin-email"),
        ("/admin/email/security/account_locked", "admin-email"),
        ("/admin/audit", "admin-audit"),
        ("/admin/applications", "admin-applications"),
    ] {
        let page = get(&app, path).await;
        ok(&page, marker);
        for section in [
            "Access Control",
            "Security Roles",
            "System Settings",
            "IP Settings",
            "Email Templates",
            "Audit Log",
            "Applications",
        ] {
            page.assert_contains(section);
        }
    }
    let users = get(&app, "/admin/users?q=jan").await;
    users.assert_contains("/admin/users/jane");
    assert!(
        !users.body.contains(r#"href="/admin/users/admin""#),
        "the search filters"
    );
    let edit = get(&app, "/admin/users/jane").await;
    edit.assert_contains("2 Step Verification:</strong> Not Enabled");
    let setup = get(&app, "/admin/users/jane/2fa/setup").await;
    setup.assert_contains("Every Login (Maximum Security)");
    setup.assert_contains("When the system deems appropriate (More Security)");
    assert!(
        !setup.body.contains(r#"id="method-hotp""#),
        "Use 2FA = 2: no choice"
    );
    app.settings(&[(SettingKey::Use2fa, "3")]).await;
    get(&app, "/admin/users/jane/2fa/setup")
        .await
        .assert_contains(r#"id="method-hotp""#);
    let settings = get(&app, "/admin/settings").await;
    for key in SettingKey::ALL {
        settings.assert_contains(key.label());
    }
    settings.assert_contains(&askama_escape(SettingKey::LockoutMinutes.help()));
    settings.assert_contains(r#"min="1" max="1440""#);
    settings.assert_contains(
        r#"<option value="otp" selected>otp</option><option value="password_otp">"#,
    );
    app.stop().await;
}

/// The help texts contain quotes and apostrophes, which the page escapes.
fn askama_escape(text: &str) -> String {
    text.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

#[tokio::test]
async fn without_a_session_the_console_sends_to_sign_in() {
    let app = spawn_app().await;
    for path in ["/admin", "/admin/users", "/admin/ip", "/admin/audit"] {
        let page = get(&app, path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        assert_eq!(page.location(), "/signin");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_user_without_manage_ip_settings_gets_403_and_adds_nothing() {
    let app = spawn_app().await;
    sign_in_with(&app, "clerk", &[Permission::ManageUsers]).await;
    let home = get(&app, "/admin/users").await;
    ok(&home, "admin-users");
    assert!(
        !home.body.contains(r#"href="/admin/ip""#),
        "the navigation shows only allowed sections"
    );
    let page = get(&app, "/admin/ip").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    page.assert_contains("You do not have permission to manage IP settings");
    let token = get(&app, "/admin/users/new").await.csrf();
    let posted = post(
        &app,
        "/admin/ip",
        &[("csrf", &token), ("network", "10.0.0.0/8"), ("note", "x")],
    )
    .await;
    assert_eq!(posted.status, StatusCode::FORBIDDEN);
    posted.assert_contains("You do not have permission to manage IP settings");
    assert!(app.store.ip_rules().await.unwrap().is_empty());
    let settings = get(&app, "/admin/settings").await;
    assert_eq!(settings.status, StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_refused_and_does_nothing() {
    let app = spawn_app().await;
    sign_in_admin(&app).await;
    let page = post(&app, "/admin/ip", &[("network", "10.0.0.0/8")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let wrong = post(
        &app,
        "/admin/ip",
        &[("csrf", "wrong"), ("network", "10.0.0.0/8")],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(app.store.ip_rules().await.unwrap().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn adding_an_ip_rule_twice_shows_already_exists_and_delete_removes_it() {
    let app = spawn_app().await;
    sign_in_admin(&app).await;
    let fields = [
        ("network", "10.20.0.0/16"),
        ("bypass_2fa", "yes"),
        ("note", "Ward <B>"),
    ];
    let added = submit(&app, "/admin/ip", "/admin/ip", &fields).await;
    assert_eq!(added.status, StatusCode::SEE_OTHER);
    let listing = get(&app, "/admin/ip").await;
    listing.assert_contains("10.20.0.0/16");
    listing.assert_contains("Ward &#60;B&#62;");
    let again = submit(&app, "/admin/ip", "/admin/ip", &fields).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    again.assert_contains("This IP address or range already exists");
    let bad = submit(
        &app,
        "/admin/ip",
        "/admin/ip",
        &[("network", "10.300.0.0/8")],
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    bad.assert_contains("field-error");
    let rules = app.store.ip_rules().await.unwrap();
    assert_eq!(rules.len(), 1);
    let id = rules[0].id.to_string();
    let asked = submit(&app, "/admin/ip", &format!("/admin/ip/{id}/delete"), &[]).await;
    assert_eq!(asked.status, StatusCode::OK, "a confirmation page first");
    assert_eq!(app.store.ip_rules().await.unwrap().len(), 1);
    let removed = submit(
        &app,
        "/admin/ip",
        &format!("/admin/ip/{id}/delete"),
        &[("confirm", "yes")],
    )
    .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    assert!(app.store.ip_rules().await.unwrap().is_empty());
    let nonsense = submit(&app, "/admin/ip", "/admin/ip/not-a-number/delete", &[]).await;
    assert_eq!(
        nonsense.status,
        StatusCode::NOT_FOUND,
        "a page, not a plain-text 400"
    );
    let unknown = submit(&app, "/admin/ip", "/admin/ip/99999/delete", &[]).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn a_setting_out_of_range_shows_the_error_and_changes_nothing() {
    let app = spawn_app().await;
    sign_in_admin(&app).await;
    let before = app.store.settings().await.unwrap();
    let page = submit(
        &app,
        "/admin/settings",
        "/admin/settings",
        &[
            ("use_2fa", "2"),
            ("otp_length", "8"),
            ("otp_csrf_valid_minutes", "99999"),
        ],
    )
    .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    page.assert_contains("OTP CSRF Valid Minutes must be a whole number between 1 and 1440");
    page.assert_contains("Nothing was changed");
    assert_eq!(app.store.settings().await.unwrap(), before);

    // A good change is saved; the bypass needs its own permission, which admin has.
    let mut fields: Vec<(String, String)> = SettingKey::ALL
        .into_iter()
        .filter(|key| *key != SettingKey::BypassEnabled)
        .map(|key| (key.name().to_owned(), before.get(key)))
        .collect();
    fields.retain(|(name, _)| name != "lockout_threshold");
    fields.push(("lockout_threshold".into(), "7".into()));
    fields.push(("bypass_enabled".into(), "true".into()));
    // Turning the bypass on asks first (SPEC section 11); this is the confirmed form.
    fields.push(("confirm_bypass".into(), "yes".into()));
    let borrowed: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let saved = submit(&app, "/admin/settings", "/admin/settings", &borrowed).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let after = app.store.settings().await.unwrap();
    assert_eq!(after.lockout_threshold(), 7);
    assert!(after.bypass_enabled());
    app.stop().await;
}

#[tokio::test]
async fn without_manage_2fa_bypass_the_bypass_checkbox_is_disabled_and_unchanged() {
    let app = spawn_app().await;
    sign_in_with(&app, "settler", &[Permission::ManageSystemSettings]).await;
    let page = get(&app, "/admin/settings").await;
    ok(&page, "admin-settings");
    page.assert_contains(r#"name="bypass_enabled" value="true" disabled"#);
    page.assert_contains("Only a role with the Manage 2FA Bypass permission");
    // A crafted form that ticks the bypass anyway: the other changes are saved, the
    // bypass is not read from the form of a user who may not change it.
    let current = app.store.settings().await.unwrap();
    let mut fields: Vec<(String, String)> = SettingKey::ALL
        .into_iter()
        .filter(|key| *key != SettingKey::BypassEnabled && *key != SettingKey::LockoutThreshold)
        .map(|key| (key.name().to_owned(), current.get(key)))
        .collect();
    fields.push(("lockout_threshold".into(), "9".into()));
    fields.push(("bypass_enabled".into(), "true".into()));
    let borrowed: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let saved = submit(&app, "/admin/settings", "/admin/settings", &borrowed).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let after = app.store.settings().await.unwrap();
    assert_eq!(after.lockout_threshold(), 9);
    assert!(!after.bypass_enabled());
    app.stop().await;
}

#[tokio::test]
async fn an_interface_role_requiring_2fa_shows_the_refusal_next_to_the_field() {
    let app = spawn_app().await;
    sign_in_admin(&app).await;
    let page = submit(
        &app,
        "/admin/roles/new",
        "/admin/roles/new",
        &[
            ("name", "Lab Interface"),
            ("require_2fa", "force"),
            ("otp_required", "no"),
            ("interface", "yes"),
        ],
    )
    .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    page.assert_contains(r#"id="require_2fa-error""#);
    page.assert_contains("An interface role cannot require 2FA");
    assert!(app
        .store
        .role_by_name("Lab Interface")
        .await
        .unwrap()
        .is_none());
    let otp = submit(
        &app,
        "/admin/roles/Interface%20User",
        "/admin/roles/Interface%20User",
        &[
            ("name", "Interface User"),
            ("require_2fa", "no"),
            ("otp_required", "yes"),
            ("interface", "yes"),
        ],
    )
    .await;
    assert_eq!(otp.status, StatusCode::UNPROCESSABLE_ENTITY);
    otp.assert_contains(r#"id="otp_required-error""#);
    let created = submit(
        &app,
        "/admin/roles/new",
        "/admin/roles/new",
        &[
            ("name", "Pharmacists"),
            ("require_2fa", "force"),
            ("otp_required", "no"),
            ("permission", "view_audit_log"),
        ],
    )
    .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let role = app
        .store
        .role_by_name("Pharmacists")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(role.security.require_2fa(), Require2fa::Force);
    assert!(role.has(Permission::ViewAuditLog));
    app.stop().await;
}

#[tokio::test]
async fn the_template_preview_escapes_html_and_unknown_placeholders_are_shown() {
    let app = spawn_app().await;
    sign_in_admin(&app).await;
    let page = submit(
        &app,
        "/admin/email",
        "/admin/email",
        &[
            ("subject", "Code for @user_name"),
            ("text_body", "Your code: @user_otp"),
            (
                "html_body",
                "<p onclick=\"x()\">Code <b>@user_otp</b></p><script>alert(1)</script>",
            ),
            ("action", "preview"),
        ],
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.assert_contains("Code for Jane Smith");
    page.assert_contains("Your code: 428193");
    page.assert_contains("&#60;script&#62;alert(1)&#60;/script&#62;");
    assert!(
        !page.body.contains("<script>"),
        "admin HTML is never inserted raw"
    );
    assert!(!page.body.contains("<b>428193"));

    let unknown = submit(
        &app,
        "/admin/email",
        "/admin/email",
        &[
            ("subject", "Code"),
            ("text_body", "Your code: @user_otp @nonsense"),
            ("html_body", ""),
            ("action", "save"),
        ],
    )
    .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    unknown.assert_contains("Unknown placeholder @nonsense");

    let saved = submit(
        &app,
        "/admin/email",
        "/admin/email",
        &[
            ("subject", "Your code for @site_name"),
            ("text_body", "Code: @user_otp"),
            ("html_body", ""),
            ("action", "save"),
        ],
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    get(&app, "/admin/email")
        .await
        .assert_contains("Your code for St. Elsewhere");
    app.stop().await;
}

#[tokio::test]
async fn the_audit_log_filters_by_user_event_and_date() {
    let app = spawn_app().await;
    sign_in_admin(&app).await;
    let role = app.role("Staff", Require2fa::No, false, false).await;
    app.user("zed", &role, true).await;
    let added = submit(
        &app,
        "/admin/ip",
        "/admin/ip",
        &[("network", "192.168.0.0/24"), ("note", "")],
    )
    .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER);
    let unlocked = submit(&app, "/admin/users/zed", "/admin/users/zed/unlock", &[]).await;
    assert_eq!(unlocked.status, StatusCode::SEE_OTHER);

    let all = get(&app, "/admin/audit").await;
    ok(&all, "admin-audit");
    all.assert_contains("ip_rule_changed");
    all.assert_contains("2027-01-15 08:00:00 UTC");

    let by_event = get(&app, "/admin/audit?event=ip_rule_changed").await;
    by_event.assert_contains("added 192.168.0.0/24");
    assert!(!by_event.body.contains("<td>Account unlocked</td>"));

    let by_user = get(&app, "/admin/audit?user=zed").await;
    by_user.assert_contains("<td>Account unlocked</td>");
    assert!(!by_user.body.contains("<td>IP rule changed</td>"));

    let same_day = get(&app, "/admin/audit?from=2027-01-15&to=2027-01-15").await;
    same_day.assert_contains("<td>Account unlocked</td>");
    let later = get(&app, "/admin/audit?from=2027-01-16").await;
    later.assert_contains("No entries match");
    let bad = get(&app, "/admin/audit?from=someday").await;
    bad.assert_contains("Enter a date as YYYY-MM-DD");
    for event in AuditEvent::ALL {
        all.assert_contains(&format!(r#"<option value="{}""#, event.as_str()));
    }
    app.stop().await;
}

#[tokio::test]
async fn add_user_and_edit_user_work_and_errors_sit_next_to_their_field() {
    let app = spawn_app().await;
    sign_in_admin(&app).await;
    let added = submit(
        &app,
        "/admin/users/new",
        "/admin/users/new",
        &[
            ("username", "newnurse"),
            ("display_name", "New Nurse"),
            ("email", "new@example.org"),
            ("role", "Staff"),
            ("password", "a long enough password"),
            ("must_change_password", "yes"),
        ],
    )
    .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let edit = get(&app, added.location()).await;
    edit.assert_contains("The user newnurse was added.");
    let again = submit(
        &app,
        "/admin/users/new",
        "/admin/users/new",
        &[
            ("username", "newnurse"),
            ("display_name", "Other"),
            ("role", "Staff"),
            ("password", "a long enough password"),
        ],
    )
    .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    again.assert_contains("A user with this username already exists");
    let bad_email = submit(
        &app,
        "/admin/users/newnurse",
        "/admin/users/newnurse",
        &[
            ("display_name", "New Nurse"),
            ("email", "not an address"),
            ("role", "Staff"),
            ("active", "yes"),
        ],
    )
    .await;
    assert_eq!(bad_email.status, StatusCode::UNPROCESSABLE_ENTITY);
    bad_email.assert_contains("field-error");
    let saved = submit(
        &app,
        "/admin/users/newnurse",
        "/admin/users/newnurse",
        &[
            ("display_name", "Renamed Nurse"),
            ("email", "new@example.org"),
            ("role", "Staff"),
        ],
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let user = app
        .store
        .user_by_username(&twostep::domain::Username::parse("newnurse").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.display_name.as_str(), "Renamed Nurse");
    assert!(!user.active, "an unticked Active deactivates");
    app.stop().await;
}

#[tokio::test]
async fn a_locked_user_shows_unlock_and_unlock_lets_them_sign_in_again() {
    let app = spawn_app().await;
    let role = app.role("Porters", Require2fa::No, false, false).await;
    app.user("locky", &role, true).await;
    for _ in 0..5 {
        app.post(
            "/api/v1/signin",
            serde_json::json!({ "username": "locky", "password": "wrong password" }),
        )
        .await;
    }
    sign_in_admin(&app).await;
    let list = get(&app, "/admin/users?q=locky").await;
    list.assert_contains("<td>Locked</td>");
    let edit = get(&app, "/admin/users/locky").await;
    edit.assert_contains("This account is locked");
    let unlocked = submit(&app, "/admin/users/locky", "/admin/users/locky/unlock", &[]).await;
    assert_eq!(unlocked.status, StatusCode::SEE_OTHER);
    let after = get(&app, unlocked.location()).await;
    after.assert_contains("locky is unlocked and can sign in again.");
    assert!(!after.body.contains("This account is locked"));
    let (_, answer) = app
        .post(
            "/api/v1/signin",
            serde_json::json!({ "username": "locky", "password": TestApp::password_of("locky") }),
        )
        .await;
    assert_eq!(answer["status"], "signed_in", "{answer}");
    app.stop().await;
}

/// Signs the administrator in with a browser of its own; returns its session token.
async fn admin_session(app: &TestApp) -> String {
    let password = app.admin_password.clone();
    let page = sign_in(app, "admin", &password).await;
    let last = if page.location() == "/signin/enroll" {
        submit(app, "/signin/enroll", "/signin/enroll/skip", &[]).await
    } else {
        page
    };
    assert_eq!(last.location(), "/");
    crate::pages::cookie_value(&last, "twostep_session")
}

#[tokio::test]
async fn a_planted_csrf_cookie_and_field_cannot_disable_a_users_device() {
    let app = spawn_app().await;
    let role = app.role("Nurses", Require2fa::Force, false, false).await;
    let jane = app.user("jane", &role, true).await;
    app.enroll_totp(&jane, twostep::domain::PromptMode::EveryLogin)
        .await;
    let session = admin_session(&app).await;
    let action = "/admin/users/jane/2fa/disable";

    // The administrator's browser, with a cookie a sibling host planted and the same value
    // in the form that host made it post.
    let planted = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let cookies = format!("twostep_session={session}; twostep_csrf={planted}");
    let page =
        crate::pages::post_with_cookies(&app, action, &cookies, &[], &[("csrf", planted)]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    page.assert_contains("This form has expired; please go back and try again");
    // A genuine pair of another browser's sign-in page is no better: a signed-in
    // browser's token is bound to its session.
    let theirs = Page::of(
        reqwest::Client::new()
            .get(format!("{}/signin", app.address))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let anonymous = crate::pages::cookie_value(&theirs, "twostep_csrf");
    let cookies = format!("twostep_session={session}; twostep_csrf={anonymous}");
    let token = theirs.csrf();
    let page =
        crate::pages::post_with_cookies(&app, action, &cookies, &[], &[("csrf", &token)]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(
        app.store.confirmed_device(jane.id).await.unwrap().is_some(),
        "the device is still there"
    );
    assert_eq!(disabled_entries(&app).await, 0);

    // The console's own form works.
    let done = submit(&app, action, action, &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert!(app.store.confirmed_device(jane.id).await.unwrap().is_none());
    assert_eq!(disabled_entries(&app).await, 1);
    app.stop().await;
}

async fn disabled_entries(app: &TestApp) -> usize {
    app.store
        .audit_entries(&twostep::store::AuditQuery {
            event: Some(AuditEvent::DeviceDisabled),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .len()
}

/// One description of each setting (SPEC section 2): the domain's settings table (name,
/// kind, range, default, help), the OpenAPI schema of `GET /api/v1/settings`, the value the API
/// answers on a new install, and the console's form must agree on every setting's name,
/// default and range. Fails when a setting is added or changed in one place only.
#[tokio::test]
async fn the_settings_table_the_openapi_schema_and_the_console_form_agree() {
    use twostep::domain::{SettingKind, Settings};
    let app = spawn_app().await;
    let (status, doc) = app.get_json("/api/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let properties = doc["components"]["schemas"]["SettingsOut"]["properties"]
        .as_object()
        .expect("the settings schema")
        .clone();
    let admin = crate::admin_api::admin(&app).await;
    let (status, current) = app.get_json("/api/v1/settings", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{current}");
    sign_in_admin(&app).await;
    let form = get(&app, "/admin/settings").await;
    assert_eq!(form.status, StatusCode::OK);
    // Failure Delay is 0 in the test app (for speed); every other setting is its default.
    let defaults = Settings::default();
    let mut names: Vec<&str> = properties.keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut keys: Vec<&str> = SettingKey::ALL.iter().map(|key| key.name()).collect();
    keys.sort_unstable();
    assert_eq!(names, keys, "the schema names exactly the settings");
    for key in SettingKey::ALL {
        let name = key.name();
        let schema = &properties[name];
        let default = match key {
            SettingKey::FailureDelayMs => "0".to_owned(),
            _ => defaults.get(key),
        };
        let answered = match &current[name] {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        assert_eq!(
            answered, default,
            "{name}: the API's value on a new install"
        );
        match key.kind() {
            SettingKind::Number { min, max } => {
                assert_eq!(schema["minimum"], u64::from(min), "{name}: schema minimum");
                assert_eq!(schema["maximum"], u64::from(max), "{name}: schema maximum");
                if key == SettingKey::Use2fa {
                    // Labelled choices, one radio button per value (SPEC section 11).
                    for value in min..=max {
                        form.assert_contains(&format!(
                            r#"type="radio" id="{name}-{value}" name="{name}" value="{value}""#
                        ));
                    }
                } else {
                    form.assert_contains(&format!(
                        r#"name="{name}" value="{default}" min="{min}" max="{max}""#
                    ));
                }
            }
            SettingKind::Flag => {
                assert_eq!(schema["type"], "boolean", "{name}");
                form.assert_contains(&format!(r#"name="{name}" value="true""#));
            }
            SettingKind::Email { .. } => {
                assert_eq!(schema["format"], "email", "{name}");
                form.assert_contains(&format!(r#"name="{name}" value="{default}""#));
            }
            SettingKind::Choice(choices) => {
                assert_eq!(
                    schema["enum"],
                    serde_json::json!(choices),
                    "{name}: schema enum"
                );
                form.assert_contains(&format!(r#"<select id="{name}" name="{name}""#));
                for choice in choices {
                    form.assert_contains(&format!(r#"<option value="{choice}""#));
                }
            }
            SettingKind::Text { max_chars } => {
                assert_eq!(schema["type"], "string", "{name}");
                assert_eq!(schema["maxLength"], max_chars, "{name}: schema maxLength");
                form.assert_contains(&format!(
                    r#"<textarea id="{name}" name="{name}" maxlength="{max_chars}""#
                ));
            }
        }
        assert_eq!(
            schema["description"],
            key.help(),
            "{name}: schema description"
        );
        let schema_default = match &schema["default"] {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        assert_eq!(schema_default, key.default(), "{name}: schema default");
    }
    app.stop().await;
}

/// The README's table of system settings lists exactly the settings table's settings, in
/// its order, with the same name, default and range.
#[test]
fn the_readme_lists_the_settings_table() {
    use twostep::domain::{SettingKind, SETTINGS};
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let rows: Vec<Vec<String>> = readme
        .lines()
        .skip_while(|line| !line.starts_with("| setting (API name) | default | range |"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            line.trim_matches('|')
                .split(" | ")
                .map(|cell| cell.trim().to_owned())
                .collect()
        })
        .collect();
    // The first `word` between backticks in `text`.
    let quoted = |text: &str| -> Option<String> {
        let (_, rest) = text.split_once('`')?;
        Some(rest.split_once('`')?.0.to_owned())
    };
    let names: Vec<String> = rows.iter().map(|row| quoted(&row[0]).unwrap()).collect();
    let table: Vec<&str> = SETTINGS.iter().map(|spec| spec.name).collect();
    assert_eq!(
        names, table,
        "the README names the table's settings, in order"
    );
    for (row, spec) in rows.iter().zip(&SETTINGS) {
        let name = spec.name;
        assert_eq!(row.len(), 3, "{name}: three columns");
        let default = match row[1].trim_matches('`') {
            "off" => "false",
            "on" => "true",
            other => other,
        };
        assert_eq!(default, spec.default, "{name}: README default");
        let range = row[2].as_str();
        match spec.kind {
            SettingKind::Number { min, max } => {
                // `min..max`, with a note after it, or the values one by one:
                // `1 HOTP, 2 TOTP, 3 ...`.
                let bounds = match range.split(' ').next().unwrap().split_once("..") {
                    Some((low, high)) => (low.parse().unwrap(), high.parse().unwrap()),
                    None => {
                        let values: Vec<u32> = range
                            .split(", ")
                            .map(|item| item.split(' ').next().unwrap().parse().unwrap())
                            .collect();
                        let expected: Vec<u32> = (min..=max).collect();
                        assert_eq!(values, expected, "{name}: README values");
                        (values[0], values[values.len() - 1])
                    }
                };
                assert_eq!(bounds, (min, max), "{name}: README range");
            }
            SettingKind::Flag => assert_eq!(range, "", "{name}: a flag has no range"),
            SettingKind::Email { optional: false } => {
                assert_eq!(range, "an email address", "{name}")
            }
            SettingKind::Email { optional: true } => {
                assert_eq!(range, "an email address, or empty", "{name}")
            }
            SettingKind::Choice(choices) => {
                let words: Vec<String> = range
                    .split("; ")
                    .map(|part| quoted(part).unwrap())
                    .collect();
                assert_eq!(words, choices, "{name}: README choices");
            }
            SettingKind::Text { max_chars } => assert!(
                range.starts_with(&format!("plain text, at most {max_chars} characters")),
                "{name}: README length"
            ),
        }
    }
}

// ----- Applications (SPEC 13) -----

/// SPEC 13's console page "Applications": adding a confidential client shows its secret
/// on the answer page only (the list and the edit page never do, and only its hash is
/// stored); the edit page saves name, redirect URIs (one a line) and Require 2FA; Remove
/// asks for confirmation, then deletes it; each is audited.
#[tokio::test]
async fn applications_are_added_with_the_secret_shown_once_edited_and_removed() {
    use twostep::domain::oidc::ClientId;
    let app = spawn_app().await;
    sign_in_admin(&app).await;
    let empty = get(&app, "/admin/applications").await;
    ok(&empty, "admin-applications");
    empty.assert_contains(r#"id="no-applications""#);

    let added = submit(
        &app,
        "/admin/applications",
        "/admin/applications",
        &[
            ("client_id", "wiki"),
            ("name", "Team <Wiki>"),
            (
                "redirect_uris",
                "https://wiki.example.org/cb\r\n\r\nhttp://127.0.0.1:8400/cb",
            ),
            ("post_logout_redirect_uris", "https://wiki.example.org/"),
            ("kind", "confidential"),
        ],
    )
    .await;
    ok(&added, "admin-application-created");
    let marker = r#"<code id="client-secret">"#;
    let start = added.body.find(marker).expect("the secret is shown") + marker.len();
    let secret = &added.body[start..start + 43];
    let id = ClientId::parse("wiki").unwrap();
    let stored = app.store.oidc_client(&id).await.unwrap().unwrap();
    assert_eq!(stored.name, "Team <Wiki>");
    assert_eq!(stored.redirect_uris.len(), 2);
    assert!(stored.confidential && !stored.require_2fa);
    assert!(app
        .store
        .oidc_client_secret_hash(&id)
        .await
        .unwrap()
        .is_some());

    let list = get(&app, "/admin/applications").await;
    list.assert_contains("Team &#60;Wiki&#62;");
    list.assert_contains(r#"href="/admin/applications/wiki""#);
    let edit = get(&app, "/admin/applications/wiki").await;
    ok(&edit, "admin-application-edit");
    for page in [&list, &edit] {
        assert!(!page.body.contains(secret), "the secret is shown once");
    }

    // New secret: a confirmation first, then a new secret shown once; the old hash goes.
    let old_hash = app.store.oidc_client_secret_hash(&id).await.unwrap();
    edit.assert_contains(r#"action="/admin/applications/wiki/secret""#);
    let asked = submit(
        &app,
        "/admin/applications/wiki",
        "/admin/applications/wiki/secret",
        &[],
    )
    .await;
    ok(&asked, "admin-application-secret");
    assert!(!asked.body.contains(r#"id="client-secret""#));
    assert_eq!(
        app.store.oidc_client_secret_hash(&id).await.unwrap(),
        old_hash
    );
    let renewed = submit(
        &app,
        "/admin/applications/wiki",
        "/admin/applications/wiki/secret",
        &[("confirm", "yes")],
    )
    .await;
    ok(&renewed, "admin-application-secret");
    let start = renewed.body.find(marker).expect("the new secret is shown") + marker.len();
    let new_secret = &renewed.body[start..start + 43];
    assert_ne!(new_secret, secret);
    let new_hash: Vec<u8> = {
        use sha2::Digest;
        sha2::Sha256::digest(new_secret.as_bytes()).to_vec()
    };
    assert_eq!(
        app.store.oidc_client_secret_hash(&id).await.unwrap(),
        Some(new_hash),
        "only the new secret's hash is kept"
    );

    let saved = submit(
        &app,
        "/admin/applications/wiki",
        "/admin/applications/wiki",
        &[
            ("name", "Wiki"),
            ("redirect_uris", "https://wiki.example.org/oidc"),
            ("post_logout_redirect_uris", ""),
            ("require_2fa", "yes"),
        ],
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let stored = app.store.oidc_client(&id).await.unwrap().unwrap();
    assert_eq!(stored.name, "Wiki");
    assert_eq!(
        stored.redirect_uris[0].as_str(),
        "https://wiki.example.org/oidc"
    );
    assert!(stored.post_logout_redirect_uris.is_empty() && stored.require_2fa);
    assert!(stored.confidential, "the type stays");

    let asked = submit(
        &app,
        "/admin/applications/wiki",
        "/admin/applications/wiki/delete",
        &[],
    )
    .await;
    ok(&asked, "admin-application-delete");
    assert_eq!(
        app.store.list_oidc_clients().await.unwrap().len(),
        1,
        "a confirmation first"
    );
    let removed = submit(
        &app,
        "/admin/applications/wiki",
        "/admin/applications/wiki/delete",
        &[("confirm", "yes")],
    )
    .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    assert!(app.store.list_oidc_clients().await.unwrap().is_empty());
    for event in [
        AuditEvent::ApplicationCreated,
        AuditEvent::ApplicationDeleted,
    ] {
        let entries = app
            .store
            .audit_entries(&twostep::store::AuditQuery {
                event: Some(event),
                limit: 100,
                ..twostep::store::AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(entries.len(), 1, "{event:?}");
        assert_eq!(entries[0].actor.as_deref(), Some("admin"));
    }
    let gone = get(&app, "/admin/applications/wiki").await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    app.stop().await;
}

/// SPEC 13: the Add Application form shows a refusal next to its field and stores
/// nothing (a redirect URI with a fragment, http:// to another host, none, a bad client
/// id, a taken one); a public client gets no secret.
#[tokio::test]
async fn an_application_form_error_sits_next_to_its_field() {
    let app = spawn_app().await;
    sign_in_admin(&app).await;
    for (client_id, uris, field) in [
        ("wiki", "https://wiki.example.org/cb#x", "redirect_uris"),
        ("wiki", "http://wiki.example.org/cb", "redirect_uris"),
        ("wiki", "", "redirect_uris"),
        ("my wiki", "https://wiki.example.org/cb", "client_id"),
    ] {
        let page = submit(
            &app,
            "/admin/applications",
            "/admin/applications",
            &[
                ("client_id", client_id),
                ("name", "Wiki"),
                ("redirect_uris", uris),
            ],
        )
        .await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            page.body
        );
        page.assert_contains(&format!(r#"id="{field}-error""#));
        page.assert_contains(&format!(r##"href="#{field}""##));
    }
    assert!(app.store.list_oidc_clients().await.unwrap().is_empty());
    let public = submit(
        &app,
        "/admin/applications",
        "/admin/applications",
        &[
            ("client_id", "phone"),
            ("name", "Phone"),
            ("redirect_uris", "org.example.phone:/cb"),
            ("kind", "public"),
        ],
    )
    .await;
    ok(&public, "admin-application-created");
    assert!(!public.body.contains("client-secret"));
    let taken = submit(
        &app,
        "/admin/applications",
        "/admin/applications",
        &[
            ("client_id", "phone"),
            ("name", "Phone"),
            ("redirect_uris", "org.example.phone:/cb"),
        ],
    )
    .await;
    assert_eq!(taken.status, StatusCode::UNPROCESSABLE_ENTITY);
    taken.assert_contains("An application with this client ID already exists");
    app.stop().await;
}

/// SPEC 13: without Manage Applications the navigation has no Applications, and every
/// page and form of it is 403 and changes nothing; every POST needs the CSRF token.
#[tokio::test]
async fn applications_need_manage_applications_and_the_csrf_token() {
    let app = spawn_app().await;
    sign_in_with(&app, "clerk", &[Permission::ManageUsers]).await;
    let users = get(&app, "/admin/users").await;
    assert!(!users.body.contains(r#"href="/admin/applications""#));
    let token = get(&app, "/admin/users/new").await.csrf();
    let page = get(&app, "/admin/applications").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    page.assert_contains("You do not have permission to manage applications");
    let fields = [
        ("csrf", token.as_str()),
        ("client_id", "wiki"),
        ("name", "Wiki"),
        ("redirect_uris", "https://wiki.example.org/cb"),
    ];
    let posted = post(&app, "/admin/applications", &fields).await;
    assert_eq!(posted.status, StatusCode::FORBIDDEN);
    assert!(app.store.list_oidc_clients().await.unwrap().is_empty());
    app.stop().await;

    let app = spawn_app().await;
    sign_in_admin(&app).await;
    let no_token = post(
        &app,
        "/admin/applications",
        &[
            ("client_id", "wiki"),
            ("name", "Wiki"),
            ("redirect_uris", "https://wiki.example.org/cb"),
        ],
    )
    .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    assert!(app.store.list_oidc_clients().await.unwrap().is_empty());
    app.stop().await;
}
