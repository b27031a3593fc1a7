//! The administration JSON API through real HTTP (SPEC sections 6, 7 and 9): for every
//! endpoint, success with the stored outcome, 401 without a token, 403 without the
//! permission, 422 for bad input and 404 for unknown objects; API tokens; the OpenAPI
//! document.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use twostep::domain::AuditEvent;
use twostep::domain::{Permission, PromptMode, Require2fa, RoleName, RoleSecurity, Username};
use twostep::store::AuditQuery;

use crate::helpers::{spawn_app, totp_of, NowTs, TestApp};

/// Sends `body` (if any) as JSON with the bearer `token` (if any); the status and the
/// JSON answer (`Null` when empty).
pub(crate) async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app.client.request(method, format!("{}{path}", app.address));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let text = response.text().await.unwrap();
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, json)
}

async fn get(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value) {
    call(app, Method::GET, path, Some(token), None).await
}

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    call(app, Method::POST, path, Some(token), Some(body)).await
}

async fn patch(app: &TestApp, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    call(app, Method::PATCH, path, Some(token), Some(body)).await
}

async fn delete(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value) {
    call(app, Method::DELETE, path, Some(token), None).await
}

/// Signs `username` in with `password` through the API, skipping enrollment when it is
/// offered; the session token.
pub(crate) async fn session_of(app: &TestApp, username: &str, password: &str) -> String {
    let (status, mut answer) = app
        .post(
            "/api/v1/signin",
            json!({ "username": username, "password": password }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    if answer["status"] == "enroll" {
        let (_, skipped) = app
            .post(
                "/api/v1/signin/enroll/skip",
                json!({ "transaction": answer["transaction"] }),
            )
            .await;
        answer = skipped;
    }
    assert_eq!(answer["status"], "signed_in", "{answer}");
    answer["session"].as_str().unwrap().to_owned()
}

/// The bootstrap administrator's session (System Administrator: every permission).
pub(crate) async fn admin(app: &TestApp) -> String {
    session_of(app, "admin", &app.admin_password).await
}

/// A signed-in user `name` whose role (`<name> role`, no 2FA) has exactly `permissions`.
pub(crate) async fn signed_in_with(
    app: &TestApp,
    name: &str,
    permissions: &[Permission],
) -> String {
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
    session_of(app, name, &TestApp::password_of(name)).await
}

/// The newest audit entries of `event`, newest first.
async fn audit_details(app: &TestApp, event: AuditEvent) -> Vec<String> {
    app.store
        .audit_entries(&AuditQuery {
            event: Some(event),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.detail)
        .collect()
}

fn assert_forbidden(status: StatusCode, answer: &Value, permission: &str) {
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["code"], "forbidden", "{answer}");
    assert_eq!(answer["permission"], permission, "{answer}");
}

fn assert_invalid(status: StatusCode, answer: &Value, field: &str) {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["code"], "invalid_field", "{answer}");
    assert_eq!(answer["field"], field, "{answer}");
    assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
}

fn assert_not_found(status: StatusCode, answer: &Value) {
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["code"], "not_found", "{answer}");
}

/// Every administration endpoint, with a body where it takes one.
fn every_endpoint() -> Vec<(Method, &'static str, Option<Value>)> {
    let role = json!({ "name": "Clerks" });
    vec![
        (Method::GET, "/api/v1/roles", None),
        (Method::POST, "/api/v1/roles", Some(role.clone())),
        (Method::GET, "/api/v1/roles/Staff", None),
        (Method::PATCH, "/api/v1/roles/Staff", Some(role)),
        (Method::GET, "/api/v1/users", None),
        (
            Method::POST,
            "/api/v1/users",
            Some(
                json!({ "username": "x", "password": "a long password 1", "display_name": "X", "role": "Staff" }),
            ),
        ),
        (Method::GET, "/api/v1/users/admin", None),
        (
            Method::PATCH,
            "/api/v1/users/admin",
            Some(json!({ "display_name": "Y" })),
        ),
        (Method::DELETE, "/api/v1/users/admin", None),
        (Method::POST, "/api/v1/users/admin/unlock", None),
        (
            Method::POST,
            "/api/v1/users/admin/device",
            Some(json!({ "method": "totp", "prompt_mode": "every_login" })),
        ),
        (
            Method::POST,
            "/api/v1/users/admin/device/confirm",
            Some(json!({ "code": "123456" })),
        ),
        (Method::DELETE, "/api/v1/users/admin/device", None),
        (Method::GET, "/api/v1/settings", None),
        (
            Method::PATCH,
            "/api/v1/settings",
            Some(json!({ "otp_length": 8 })),
        ),
        (Method::GET, "/api/v1/ip-rules", None),
        (
            Method::POST,
            "/api/v1/ip-rules",
            Some(json!({ "network": "10.0.0.0/8" })),
        ),
        (Method::DELETE, "/api/v1/ip-rules/1", None),
        (
            Method::GET,
            "/api/v1/templates/otp-notification-email",
            None,
        ),
        (
            Method::PUT,
            "/api/v1/templates/otp-notification-email",
            Some(json!({ "subject": "s", "text_body": "@user_otp", "html_body": null })),
        ),
        (Method::GET, "/api/v1/templates/security/device_added", None),
        (
            Method::PUT,
            "/api/v1/templates/security/device_added",
            Some(json!({ "subject": "s", "text_body": "Added", "html_body": null })),
        ),
        (Method::GET, "/api/v1/audit", None),
        (Method::POST, "/api/v1/tokens", Some(json!({ "name": "t" }))),
        (Method::GET, "/api/v1/oidc/clients", None),
        (
            Method::POST,
            "/api/v1/oidc/clients",
            Some(
                json!({ "client_id": "wiki", "name": "Wiki", "redirect_uris": ["https://wiki.example.org/cb"] }),
            ),
        ),
        (Method::GET, "/api/v1/oidc/clients/wiki", None),
        (
            Method::PATCH,
            "/api/v1/oidc/clients/wiki",
            Some(json!({ "name": "Team Wiki" })),
        ),
        (Method::POST, "/api/v1/oidc/clients/wiki/secret", None),
        (Method::DELETE, "/api/v1/oidc/clients/wiki", None),
    ]
}

// ----- authentication -----

#[tokio::test]
async fn every_admin_endpoint_refuses_a_request_without_a_valid_token() {
    let app = spawn_app().await;
    let session = admin(&app).await;
    let (head, last) = session.split_at(session.len() - 1);
    let tampered = format!("{head}{}", if last == "A" { "B" } else { "A" });
    for (method, path, body) in every_endpoint() {
        for token in [None, Some("not-a-token"), Some(tampered.as_str())] {
            let (status, answer) = call(&app, method.clone(), path, token, body.clone()).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path}: {answer}"
            );
            assert_eq!(answer["code"], "unauthenticated", "{method} {path}");
        }
    }
    assert!(app.store.role_by_name("Clerks").await.unwrap().is_none());
}

#[tokio::test]
async fn a_signed_out_session_no_longer_administers() {
    let app = spawn_app().await;
    let session = admin(&app).await;
    assert_eq!(get(&app, "/api/v1/roles", &session).await.0, StatusCode::OK);
    let (status, _) = call(&app, Method::POST, "/api/v1/signout", Some(&session), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, answer) = get(&app, "/api/v1/roles", &session).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
}

#[tokio::test]
async fn a_user_without_any_permission_is_forbidden_everywhere_but_tokens() {
    let app = spawn_app().await;
    let nobody = signed_in_with(&app, "nobody", &[]).await;
    for (method, path, body) in every_endpoint() {
        let (status, answer) = call(&app, method.clone(), path, Some(&nobody), body).await;
        if path == "/api/v1/tokens" {
            // A token acts with its creator's permissions: here, none.
            assert_eq!(status, StatusCode::CREATED, "{answer}");
        } else {
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
            assert_eq!(answer["code"], "forbidden");
            assert!(answer["permission"].is_string(), "{answer}");
        }
    }
    // Nothing changed.
    let admin = app
        .store
        .user_by_username(&Username::parse("admin").unwrap())
        .await
        .unwrap();
    assert!(admin.is_some());
    assert!(app.store.ip_rules().await.unwrap().is_empty());
    assert_eq!(app.store.settings().await.unwrap().otp_length().get(), 6);
}

// ----- roles -----

#[tokio::test]
async fn an_administrator_creates_reads_and_changes_a_role_audited_before_and_after() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let (status, created) = post(
        &app,
        "/api/v1/roles",
        &token,
        json!({ "name": "Clerks", "require_2fa": "encourage", "otp_required": true,
                "permissions": ["view_audit_log"] }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        created,
        json!({ "name": "Clerks", "require_2fa": "encourage", "otp_required": true,
                "interface": false, "permissions": ["view_audit_log"],
                "session_idle_minutes": 30, "session_max_hours": 12 })
    );

    let (status, list) = get(&app, "/api/v1/roles", &token).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = list["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for name in ["System Administrator", "Interface User", "Staff", "Clerks"] {
        assert!(names.contains(&name), "{names:?}");
    }
    let (status, one) = get(&app, "/api/v1/roles/clerks", &token).await;
    assert_eq!(status, StatusCode::OK, "names are case-insensitive");
    assert_eq!(one, created);
    let (status, admin_role) = get(&app, "/api/v1/roles/System%20Administrator", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        admin_role["permissions"].as_array().unwrap().len(),
        Permission::ALL.len()
    );

    let (status, changed) = patch(
        &app,
        "/api/v1/roles/Clerks",
        &token,
        json!({ "require_2fa": "force", "permissions": ["manage_users", "view_audit_log"] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["require_2fa"], "force");
    assert_eq!(changed["otp_required"], true, "fields not sent are kept");
    let stored = app.store.role_by_name("Clerks").await.unwrap().unwrap();
    assert_eq!(stored.security.require_2fa(), Require2fa::Force);
    assert!(stored.has(Permission::ManageUsers) && stored.has(Permission::ViewAuditLog));

    let details = audit_details(&app, AuditEvent::RoleChanged).await;
    assert!(
        details[1].starts_with("created: name=Clerks"),
        "{details:?}"
    );
    assert!(
        details[0].contains("before: name=Clerks require_2fa=encourage")
            && details[0].contains("permissions=[view_audit_log]")
            && details[0].contains("after: name=Clerks require_2fa=force")
            && details[0].contains("permissions=[manage_users,view_audit_log]"),
        "{}",
        details[0]
    );

    let (status, renamed) = patch(
        &app,
        "/api/v1/roles/Clerks",
        &token,
        json!({ "name": "Ward Clerks" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(
        get(&app, "/api/v1/roles/Ward%20Clerks", &token).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn roles_need_manage_roles() {
    let app = spawn_app().await;
    let auditor = signed_in_with(&app, "auditor", &[Permission::ViewAuditLog]).await;
    let answers = [
        get(&app, "/api/v1/roles", &auditor).await,
        post(&app, "/api/v1/roles", &auditor, json!({ "name": "Clerks" })).await,
        get(&app, "/api/v1/roles/Staff", &auditor).await,
        patch(
            &app,
            "/api/v1/roles/Staff",
            &auditor,
            json!({ "permissions": ["manage_users"] }),
        )
        .await,
    ];
    for (status, answer) in answers {
        assert_forbidden(status, &answer, "manage_roles");
    }
    let staff = app.store.role_by_name("Staff").await.unwrap().unwrap();
    assert!(staff.permissions.is_empty());
    assert!(app.store.role_by_name("Clerks").await.unwrap().is_none());
}

#[tokio::test]
async fn an_interface_role_requiring_2fa_is_refused_next_to_require_2fa() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let (status, answer) = post(
        &app,
        "/api/v1/roles",
        &token,
        json!({ "name": "Robots", "interface": true, "require_2fa": "force" }),
    )
    .await;
    assert_invalid(status, &answer, "require_2fa");
    assert!(
        answer["message"].as_str().unwrap().contains("interface"),
        "{answer}"
    );
    let (status, answer) = patch(
        &app,
        "/api/v1/roles/Interface%20User",
        &token,
        json!({ "require_2fa": "encourage" }),
    )
    .await;
    assert_invalid(status, &answer, "require_2fa");
    let (status, answer) = patch(
        &app,
        "/api/v1/roles/Interface%20User",
        &token,
        json!({ "otp_required": true }),
    )
    .await;
    assert_invalid(status, &answer, "otp_required");
    let interface = app
        .store
        .role_by_name("Interface User")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(interface.security.require_2fa(), Require2fa::No);
    assert!(!interface.security.otp_required());
    assert!(app.store.role_by_name("Robots").await.unwrap().is_none());
}

#[tokio::test]
async fn bad_role_input_names_the_field() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    for (body, field) in [
        (json!({ "name": "" }), "name"),
        (json!({ "name": "a/b" }), "name"),
        (
            json!({ "name": "X", "require_2fa": "always" }),
            "require_2fa",
        ),
        (
            json!({ "name": "X", "permissions": ["fly"] }),
            "permissions",
        ),
    ] {
        let (status, answer) = post(&app, "/api/v1/roles", &token, body).await;
        assert_invalid(status, &answer, field);
    }
    let (status, answer) = post(
        &app,
        "/api/v1/roles",
        &token,
        json!({ "name": "X", "otp_required": "yes" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["code"], "invalid_input");
    let (status, answer) = post(
        &app,
        "/api/v1/roles",
        &token,
        json!({ "name": "X", "require2fa": "no" }),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown fields: {answer}"
    );
    assert_eq!(answer["code"], "invalid_input");
    assert!(app.store.role_by_name("X").await.unwrap().is_none());

    let (status, answer) = post(&app, "/api/v1/roles", &token, json!({ "name": "staff" })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["code"], "role_name_taken");
}

#[tokio::test]
async fn an_unknown_role_is_not_found() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let (status, answer) = get(&app, "/api/v1/roles/Nurses", &token).await;
    assert_not_found(status, &answer);
    let (status, answer) = patch(
        &app,
        "/api/v1/roles/Nurses",
        &token,
        json!({ "otp_required": true }),
    )
    .await;
    assert_not_found(status, &answer);
}

// ----- users -----

#[tokio::test]
async fn an_administrator_creates_lists_reads_changes_and_deletes_a_user() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let (status, created) = post(
        &app,
        "/api/v1/users",
        &token,
        json!({ "username": "JSmith", "password": "first password 123", "display_name": "Jane Smith",
                "email": "jane@example.org", "role": "Staff" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        created,
        json!({ "username": "jsmith", "display_name": "Jane Smith", "email": "jane@example.org",
                "role": "Staff", "active": true, "two_step": "not_enabled", "locked": false,
                "consecutive_failures": 0, "must_change_password": true,
                "recovery_codes_left": 0, "source": "local" })
    );
    assert!(created.get("password").is_none());
    let stored = app
        .store
        .user_by_username(&Username::parse("jsmith").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.display_name.as_str(), "Jane Smith");
    assert!(stored.must_change_password);

    for name in ["alice", "bob"] {
        let staff = app.store.role_by_name("Staff").await.unwrap().unwrap();
        app.user(name, &staff, false).await;
    }
    let (status, page) = get(&app, "/api/v1/users", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total"], 4);
    let (_, page) = get(&app, "/api/v1/users?offset=1&limit=2", &token).await;
    let names: Vec<&str> = page["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["alice", "bob"],
        "by username: admin, alice, bob, jsmith"
    );
    assert_eq!(page["total"], 4);
    let (_, found) = get(&app, "/api/v1/users?q=SMITH", &token).await;
    assert_eq!(found["total"], 1);
    assert_eq!(found["users"][0]["username"], "jsmith");

    let (status, one) = get(&app, "/api/v1/users/JSMITH", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one, created);

    let (status, changed) = patch(
        &app,
        "/api/v1/users/jsmith",
        &token,
        json!({ "display_name": "Jane Doe", "email": null, "role": "System Administrator",
                "active": false }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["display_name"], "Jane Doe");
    assert_eq!(changed["email"], Value::Null);
    assert_eq!(changed["role"], "System Administrator");
    assert_eq!(changed["active"], false);
    let stored = app
        .store
        .user_by_username(&Username::parse("jsmith").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.active && stored.email.is_none());
    let (_, kept) = patch(
        &app,
        "/api/v1/users/jsmith",
        &token,
        json!({ "active": true }),
    )
    .await;
    assert_eq!(kept["display_name"], "Jane Doe", "fields not sent are kept");

    let (status, _) = delete(&app, "/api/v1/users/jsmith", &token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(app
        .store
        .user_by_username(&Username::parse("jsmith").unwrap())
        .await
        .unwrap()
        .is_none());
    let (status, answer) = get(&app, "/api/v1/users/jsmith", &token).await;
    assert_not_found(status, &answer);
    for event in [
        AuditEvent::UserCreated,
        AuditEvent::UserChanged,
        AuditEvent::UserDeleted,
    ] {
        assert!(!audit_details(&app, event).await.is_empty(), "{event:?}");
    }
}

#[tokio::test]
async fn a_password_reset_forces_a_change_at_the_next_sign_in() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let plain = app.role("Plain", Require2fa::No, false, false).await;
    app.user("jane", &plain, true).await;
    let (status, answer) = patch(
        &app,
        "/api/v1/users/jane",
        &token,
        json!({ "password": "temporary password 9" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["must_change_password"], true);
    assert!(answer.get("password").is_none());
    let (status, old) = app
        .post(
            "/api/v1/signin",
            json!({ "username": "jane", "password": TestApp::password_of("jane") }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{old}");
    let (status, new) = app
        .post(
            "/api/v1/signin",
            json!({ "username": "jane", "password": "temporary password 9" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(new["status"], "password_change_required", "{new}");
    let details = audit_details(&app, AuditEvent::PasswordChanged).await;
    assert!(!details[0].contains("temporary"), "{details:?}");
}

/// SPEC 12: a directory user shows `source: "ldap"` with its entry's DN and groups; its
/// password, name, email and role are the directory's (refused here, nothing changed),
/// while twostep's own Active stays editable. A local user shows `source: "local"`.
#[tokio::test]
async fn a_directory_user_shows_its_entry_and_its_password_cannot_be_set() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let staff = app.role("Ward Staff", Require2fa::No, false, false).await;
    let other = app.role("Porters", Require2fa::No, false, false).await;
    let group = "cn=staff,ou=groups,dc=example,dc=org";
    app.directory_user("dana", &staff, &[group]).await;
    app.user("lena", &staff, true).await;

    let (status, dana) = get(&app, "/api/v1/users/dana", &token).await;
    assert_eq!(status, StatusCode::OK, "{dana}");
    assert_eq!(dana["source"], "ldap");
    assert_eq!(
        dana["directory"]["dn"],
        "uid=dana,ou=people,dc=example,dc=org"
    );
    assert_eq!(dana["directory"]["groups"], json!([group]));
    assert!(
        dana["directory"]["synced_at"].as_i64().unwrap() > 0,
        "{dana}"
    );
    let (_, lena) = get(&app, "/api/v1/users/lena", &token).await;
    assert_eq!(lena["source"], "local");
    assert!(lena.get("directory").is_none(), "{lena}");

    for (body, field) in [
        (
            json!({ "password": "a new passphrase for dana 31" }),
            "password",
        ),
        (json!({ "display_name": "Someone Else" }), "display_name"),
        (json!({ "email": "other@example.org" }), "email"),
        (json!({ "role": other.name.as_str() }), "role"),
    ] {
        let (status, answer) = patch(&app, "/api/v1/users/dana", &token, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["code"], "invalid_field");
        assert_eq!(answer["field"], field);
        assert!(
            answer["message"].as_str().unwrap().contains("directory"),
            "{answer}"
        );
    }
    let stored = app
        .store
        .user_by_username(&Username::parse("dana").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.display_name.as_str(), "dana Directory");
    assert_eq!(stored.role_id, staff.id);
    assert!(audit_details(&app, AuditEvent::PasswordChanged)
        .await
        .is_empty());

    // The same values (as the console's form sends them) and Active are fine.
    let (status, answer) = patch(
        &app,
        "/api/v1/users/dana",
        &token,
        json!({ "display_name": "dana Directory", "role": "Ward Staff", "active": false }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["active"], false);
    let changes = audit_details(&app, AuditEvent::UserChanged).await;
    assert_eq!(changes[0], "active=false", "{changes:?}");
    app.stop().await;
}

#[tokio::test]
async fn users_need_manage_users() {
    let app = spawn_app().await;
    let auditor = signed_in_with(&app, "auditor", &[Permission::ViewAuditLog]).await;
    let staff = app.store.role_by_name("Staff").await.unwrap().unwrap();
    app.user("jane", &staff, true).await;
    let answers = [
        get(&app, "/api/v1/users", &auditor).await,
        post(
            &app,
            "/api/v1/users",
            &auditor,
            json!({ "username": "x", "password": "a long password 1", "display_name": "X",
                    "role": "Staff" }),
        )
        .await,
        get(&app, "/api/v1/users/jane", &auditor).await,
        patch(
            &app,
            "/api/v1/users/jane",
            &auditor,
            json!({ "role": "System Administrator" }),
        )
        .await,
        delete(&app, "/api/v1/users/jane", &auditor).await,
        call(
            &app,
            Method::POST,
            "/api/v1/users/jane/unlock",
            Some(&auditor),
            None,
        )
        .await,
        post(
            &app,
            "/api/v1/users/jane/device",
            &auditor,
            json!({ "method": "totp", "prompt_mode": "every_login" }),
        )
        .await,
        post(
            &app,
            "/api/v1/users/jane/device/confirm",
            &auditor,
            json!({ "code": "123456" }),
        )
        .await,
        delete(&app, "/api/v1/users/jane/device", &auditor).await,
    ];
    for (status, answer) in answers {
        assert_forbidden(status, &answer, "manage_users");
    }
    let jane = app
        .store
        .user_by_username(&Username::parse("jane").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(jane.role_id, staff.id);
    assert!(app.store.pending_device(jane.id).await.unwrap().is_none());
}

#[tokio::test]
async fn bad_user_input_names_the_field() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let user = |change: Value| {
        let mut body = json!({ "username": "jane", "password": "a long password 1",
                               "display_name": "Jane", "role": "Staff" });
        for (key, value) in change.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    };
    for (body, field) in [
        (user(json!({ "role": "Nurses" })), "role"),
        (user(json!({ "email": "not an address" })), "email"),
        (user(json!({ "password": "short" })), "password"),
        (user(json!({ "username": "" })), "username"),
        (user(json!({ "display_name": " " })), "display_name"),
        (user(json!({ "active": false })), "active"),
    ] {
        let (status, answer) = post(&app, "/api/v1/users", &token, body).await;
        assert_invalid(status, &answer, field);
    }
    let (status, answer) = post(
        &app,
        "/api/v1/users",
        &token,
        user(json!({ "admin": true })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["code"], "invalid_input");
    assert_eq!(app.store.count_users().await.unwrap(), 1, "nothing created");

    let (status, answer) = post(
        &app,
        "/api/v1/users",
        &token,
        user(json!({ "username": "ADMIN" })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["code"], "username_taken");

    let (status, answer) = patch(
        &app,
        "/api/v1/users/admin",
        &token,
        json!({ "role": "Nurses" }),
    )
    .await;
    assert_invalid(status, &answer, "role");
    assert!(answer["message"].as_str().unwrap().contains("Nurses"));
    let (status, answer) = patch(
        &app,
        "/api/v1/users/admin",
        &token,
        json!({ "username": "root" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");

    let (status, answer) = delete(&app, "/api/v1/users/admin", &token).await;
    assert_invalid(status, &answer, "username");

    for query in ["limit=many", "offset=-1"] {
        let (status, answer) = get(&app, &format!("/api/v1/users?{query}"), &token).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {answer}"
        );
    }
}

#[tokio::test]
async fn unknown_users_are_not_found() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let answers = [
        get(&app, "/api/v1/users/ghost", &token).await,
        patch(
            &app,
            "/api/v1/users/ghost",
            &token,
            json!({ "display_name": "G" }),
        )
        .await,
        delete(&app, "/api/v1/users/ghost", &token).await,
        call(
            &app,
            Method::POST,
            "/api/v1/users/ghost/unlock",
            Some(&token),
            None,
        )
        .await,
        post(
            &app,
            "/api/v1/users/ghost/device",
            &token,
            json!({ "method": "totp", "prompt_mode": "every_login" }),
        )
        .await,
        post(
            &app,
            "/api/v1/users/ghost/device/confirm",
            &token,
            json!({ "code": "123456" }),
        )
        .await,
        delete(&app, "/api/v1/users/ghost/device", &token).await,
        // Not even a valid username.
        get(&app, "/api/v1/users/%20%20", &token).await,
    ];
    for (status, answer) in answers {
        assert_not_found(status, &answer);
    }
}

#[tokio::test]
async fn an_administrator_unlocks_a_locked_user() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let staff = app.store.role_by_name("Staff").await.unwrap().unwrap();
    app.user("jane", &staff, true).await;
    for _ in 0..5 {
        let (status, _) = app
            .post(
                "/api/v1/signin",
                json!({ "username": "jane", "password": "wrong password 123" }),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (_, jane) = get(&app, "/api/v1/users/jane", &token).await;
    assert_eq!(jane["locked"], true, "{jane}");
    let (status, answer) = call(
        &app,
        Method::POST,
        "/api/v1/users/jane/unlock",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
    let (_, jane) = get(&app, "/api/v1/users/jane", &token).await;
    assert_eq!(jane["locked"], false);
    let (_, answer) = app
        .post(
            "/api/v1/signin",
            json!({ "username": "jane", "password": TestApp::password_of("jane") }),
        )
        .await;
    assert_eq!(answer["status"], "enroll", "signs in again: {answer}");
    let unlocked = app
        .store
        .audit_entries(&AuditQuery {
            event: Some(AuditEvent::Unlocked),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(unlocked[0].actor.as_deref(), Some("admin"));
    assert_eq!(unlocked[0].subject.as_deref(), Some("jane"));
    assert_eq!(unlocked[0].client_ip.as_deref(), Some("127.0.0.1"));
}

// ----- a user's device -----

/// Signs `name` in with the device code `code`; the final status.
async fn sign_in_with_code(app: &TestApp, name: &str, code: &str) -> Value {
    let (_, answer) = app
        .post(
            "/api/v1/signin",
            json!({ "username": name, "password": TestApp::password_of(name) }),
        )
        .await;
    assert_eq!(answer["status"], "otp_required", "{answer}");
    assert_eq!(answer["method"], "device");
    app.post(
        "/api/v1/signin/otp",
        json!({ "transaction": answer["transaction"], "code": code }),
    )
    .await
    .1
}

#[tokio::test]
async fn setup_via_the_api_then_confirm_enables_two_step_and_disable_removes_it() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let staff = app.store.role_by_name("Staff").await.unwrap().unwrap();
    app.user("jane", &staff, true).await;
    let (status, setup) = post(
        &app,
        "/api/v1/users/jane/device",
        &token,
        json!({ "method": "totp", "prompt_mode": "every_login" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{setup}");
    let uri = setup["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    let totp = totp_of(uri);
    assert_eq!(
        totp.secret.to_base32(),
        setup["secret"].as_str().unwrap().replace(' ', "")
    );
    let (_, jane) = get(&app, "/api/v1/users/jane", &token).await;
    assert_eq!(jane["two_step"], "not_enabled", "pending until confirmed");

    let (status, answer) = post(
        &app,
        "/api/v1/users/jane/device/confirm",
        &token,
        json!({ "code": app.totp_now(&totp) }),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
    let (_, jane) = get(&app, "/api/v1/users/jane", &token).await;
    assert_eq!(jane["two_step"], "enabled");
    assert!(!audit_details(&app, AuditEvent::DeviceEnrolled)
        .await
        .is_empty());

    app.clock.advance_seconds(30);
    let done = sign_in_with_code(&app, "jane", &app.totp_now(&totp)).await;
    assert_eq!(done["status"], "signed_in", "{done}");

    let (status, _) = delete(&app, "/api/v1/users/jane/device", &token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, jane) = get(&app, "/api/v1/users/jane", &token).await;
    assert_eq!(jane["two_step"], "not_enabled");
    let (_, answer) = app
        .post(
            "/api/v1/signin",
            json!({ "username": "jane", "password": TestApp::password_of("jane") }),
        )
        .await;
    assert_eq!(answer["status"], "enroll", "no device any more: {answer}");
    let (status, answer) = delete(&app, "/api/v1/users/jane/device", &token).await;
    assert_not_found(status, &answer);
}

#[tokio::test]
async fn setup_new_device_keeps_the_old_device_until_confirmed() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let staff = app.store.role_by_name("Staff").await.unwrap().unwrap();
    let jane = app.user("jane", &staff, true).await;
    let old = app.enroll_totp(&jane, PromptMode::EveryLogin).await;
    let (status, setup) = post(
        &app,
        "/api/v1/users/jane/device",
        &token,
        json!({ "method": "totp", "prompt_mode": "when_appropriate" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{setup}");
    let new = totp_of(setup["otpauth_uri"].as_str().unwrap());

    let done = sign_in_with_code(&app, "jane", &app.totp_now(&old)).await;
    assert_eq!(
        done["status"], "signed_in",
        "the old device still works: {done}"
    );
    let (_, view) = get(&app, "/api/v1/users/jane", &token).await;
    assert_eq!(view["two_step"], "enabled");

    let (status, answer) = post(
        &app,
        "/api/v1/users/jane/device/confirm",
        &token,
        json!({ "code": app.totp_now(&new) }),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
    app.clock.advance_seconds(30);
    let refused = sign_in_with_code(&app, "jane", &app.totp_now(&old)).await;
    assert_eq!(refused["code"], "invalid_credentials", "{refused}");
    let done = sign_in_with_code(&app, "jane", &app.totp_now(&new)).await;
    assert_eq!(done["status"], "signed_in", "{done}");
    let device = app.store.confirmed_device(jane.id).await.unwrap().unwrap();
    assert_eq!(device.prompt_mode, PromptMode::WhenAppropriate);
}

#[tokio::test]
async fn bad_device_input_names_the_field() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let staff = app.store.role_by_name("Staff").await.unwrap().unwrap();
    app.user("jane", &staff, true).await;
    let path = "/api/v1/users/jane/device";
    let (status, answer) = post(
        &app,
        "/api/v1/users/jane/device/confirm",
        &token,
        json!({ "code": "123456" }),
    )
    .await;
    assert_invalid(status, &answer, "code");
    for (body, field) in [
        (
            json!({ "method": "sms", "prompt_mode": "every_login" }),
            "method",
        ),
        (
            json!({ "method": "totp", "prompt_mode": "sometimes" }),
            "prompt_mode",
        ),
        // Use 2FA = 2 (TOTP only) by default.
        (
            json!({ "method": "hotp", "prompt_mode": "every_login" }),
            "method",
        ),
    ] {
        let (status, answer) = post(&app, path, &token, body).await;
        assert_invalid(status, &answer, field);
    }
    let (status, setup) = post(
        &app,
        path,
        &token,
        json!({ "method": "totp", "prompt_mode": "every_login" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let totp = totp_of(setup["otpauth_uri"].as_str().unwrap());
    let wrong = totp.generate_at(app.clock.now_ts().unix_seconds() + 3600);
    for code in [wrong.as_str(), "12ab56"] {
        let (status, answer) = post(
            &app,
            "/api/v1/users/jane/device/confirm",
            &token,
            json!({ "code": code }),
        )
        .await;
        assert_invalid(status, &answer, "code");
    }
    let (_, view) = get(&app, "/api/v1/users/jane", &token).await;
    assert_eq!(view["two_step"], "not_enabled");
}

// ----- settings -----

#[tokio::test]
async fn an_administrator_reads_and_changes_settings_each_change_audited_before_and_after() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let (status, settings) = get(&app, "/api/v1/settings", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        settings,
        json!({ "use_2fa": 2, "bypass_enabled": false, "otp_csrf_valid_minutes": 30,
                "otp_length": 6, "otp_request_delay_seconds": 30, "otp_valid_seconds": 900,
                "failure_delay_ms": 0, "autoreply": "no-reply@localhost",
                "lockout_threshold": 5, "lockout_minutes": 30, "hotp_window": 10,
                "totp_skew_steps": 1, "validate_pass_mode": "otp", "help_text": "",
                "notify_users": true, "security_keys": true,
                "security_officer_email": "" })
    );
    let (status, changed) = patch(
        &app,
        "/api/v1/settings",
        &token,
        json!({ "otp_length": 8, "use_2fa": 3, "bypass_enabled": true, "lockout_minutes": 0,
                "autoreply": "it@hospital.example" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["otp_length"], 8);
    assert_eq!(changed["bypass_enabled"], true);
    assert_eq!(changed["otp_valid_seconds"], 900, "others unchanged");
    let stored = app.store.settings().await.unwrap();
    assert_eq!(stored.otp_length().get(), 8);
    assert_eq!(stored.use_2fa().value(), 3);
    assert!(stored.bypass_enabled());
    assert_eq!(stored.lockout_minutes(), 0);
    assert_eq!(stored.autoreply().as_str(), "it@hospital.example");
    let details = audit_details(&app, AuditEvent::SettingChanged).await;
    for expected in [
        "otp_length: 6 -> 8",
        "use_2fa: 2 -> 3",
        "bypass_enabled: false -> true",
        "lockout_minutes: 30 -> 0",
        "autoreply: no-reply@localhost -> it@hospital.example",
    ] {
        assert!(
            details.iter().any(|d| d == expected),
            "{expected}: {details:?}"
        );
    }
    assert_eq!(details.len(), 5, "unchanged settings are not audited");
}

#[tokio::test]
async fn settings_out_of_range_or_of_the_wrong_type_are_refused_and_nothing_changes() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let before = app.store.settings().await.unwrap();
    for (body, field) in [
        (json!({ "otp_length": 21 }), "otp_length"),
        (
            json!({ "lockout_threshold": 7, "otp_length": 5 }),
            "otp_length",
        ),
        (json!({ "use_2fa": 4 }), "use_2fa"),
        (json!({ "totp_skew_steps": -1 }), "totp_skew_steps"),
        (json!({ "otp_valid_seconds": 60.5 }), "otp_valid_seconds"),
        (json!({ "otp_length": "8" }), "otp_length"),
        (json!({ "bypass_enabled": "yes" }), "bypass_enabled"),
        (json!({ "bypass_enabled": 1 }), "bypass_enabled"),
        (json!({ "autoreply": "not an address" }), "autoreply"),
        (json!({ "autoreply": null }), "autoreply"),
    ] {
        let (status, answer) = patch(&app, "/api/v1/settings", &token, body.clone()).await;
        assert_invalid(status, &answer, field);
        if field == "otp_length" && body.get("lockout_threshold").is_none() {
            assert!(
                answer["message"]
                    .as_str()
                    .unwrap()
                    .contains("between 6 and 20"),
                "{answer}"
            );
        }
    }
    let (status, answer) = patch(
        &app,
        "/api/v1/settings",
        &token,
        json!({ "otp_length": 8, "otp_lenght": 9 }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["code"], "unknown_field");
    assert_eq!(answer["field"], "otp_lenght");
    let (status, answer) = patch(&app, "/api/v1/settings", &token, json!([1, 2])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["code"], "invalid_input");
    assert_eq!(app.store.settings().await.unwrap(), before);
    assert!(audit_details(&app, AuditEvent::SettingChanged)
        .await
        .is_empty());
}

#[tokio::test]
async fn settings_need_manage_system_settings() {
    let app = spawn_app().await;
    let auditor = signed_in_with(&app, "auditor", &[Permission::ViewAuditLog]).await;
    let (status, answer) = get(&app, "/api/v1/settings", &auditor).await;
    assert_forbidden(status, &answer, "manage_system_settings");
    let (status, answer) = patch(
        &app,
        "/api/v1/settings",
        &auditor,
        json!({ "otp_length": 8 }),
    )
    .await;
    assert_forbidden(status, &answer, "manage_system_settings");
    // An empty change is a read, with the read's check.
    let (status, answer) = patch(&app, "/api/v1/settings", &auditor, json!({})).await;
    assert_forbidden(status, &answer, "manage_system_settings");
    assert_eq!(app.store.settings().await.unwrap().otp_length().get(), 6);
}

#[tokio::test]
async fn the_bypass_needs_manage_2fa_bypass() {
    let app = spawn_app().await;
    let settings_only = signed_in_with(&app, "sysop", &[Permission::ManageSystemSettings]).await;
    let (status, answer) = patch(
        &app,
        "/api/v1/settings",
        &settings_only,
        json!({ "bypass_enabled": true }),
    )
    .await;
    assert_forbidden(status, &answer, "manage_2fa_bypass");
    let (status, answer) = patch(
        &app,
        "/api/v1/settings",
        &settings_only,
        json!({ "otp_length": 7, "bypass_enabled": true }),
    )
    .await;
    assert_forbidden(status, &answer, "manage_2fa_bypass");
    let stored = app.store.settings().await.unwrap();
    assert!(!stored.bypass_enabled());
    assert_eq!(stored.otp_length().get(), 6, "all or nothing");
    let (status, _) = patch(
        &app,
        "/api/v1/settings",
        &settings_only,
        json!({ "otp_length": 7 }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let bypass_only = signed_in_with(&app, "netsec", &[Permission::Manage2faBypass]).await;
    let (status, settings) = get(&app, "/api/v1/settings", &bypass_only).await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    let (status, changed) = patch(
        &app,
        "/api/v1/settings",
        &bypass_only,
        json!({ "bypass_enabled": true }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["bypass_enabled"], true);
    assert!(app.store.settings().await.unwrap().bypass_enabled());
    let (status, answer) = patch(
        &app,
        "/api/v1/settings",
        &bypass_only,
        json!({ "otp_length": 8 }),
    )
    .await;
    assert_forbidden(status, &answer, "manage_system_settings");
    let entries = app
        .store
        .audit_entries(&AuditQuery {
            event: Some(AuditEvent::SettingChanged),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(entries[0].detail, "bypass_enabled: false -> true");
    assert_eq!(entries[0].actor.as_deref(), Some("netsec"));
}

// ----- IP rules -----

#[tokio::test]
async fn an_administrator_adds_lists_and_removes_ip_rules() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let (status, rule) = post(
        &app,
        "/api/v1/ip-rules",
        &token,
        json!({ "network": "10.20.0.0/16", "bypass_2fa": true, "note": "Ward 3" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{rule}");
    assert_eq!(rule["network"], "10.20.0.0/16");
    assert_eq!(rule["bypass_2fa"], true);
    assert_eq!(rule["note"], "Ward 3");
    let id = rule["id"].as_i64().unwrap();
    let (status, second) = post(
        &app,
        "/api/v1/ip-rules",
        &token,
        json!({ "network": "2001:db8::1" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["bypass_2fa"], false);

    let (status, list) = get(&app, "/api/v1/ip-rules", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["ip_rules"].as_array().unwrap().len(), 2);
    assert!(list["ip_rules"].as_array().unwrap().contains(&rule));
    let stored = app.store.ip_rules().await.unwrap();
    assert_eq!(stored.len(), 2);

    let (status, answer) = post(
        &app,
        "/api/v1/ip-rules",
        &token,
        json!({ "network": "10.20.0.0/16" }),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["code"], "network_exists");
    assert_eq!(answer["message"], "this network already exists");

    let (status, _) = delete(&app, &format!("/api/v1/ip-rules/{id}"), &token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let stored = app.store.ip_rules().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0].id, id);
    let details = audit_details(&app, AuditEvent::IpRuleChanged).await;
    assert_eq!(details[0], "removed 10.20.0.0/16");
    assert!(details.contains(&"added 10.20.0.0/16 bypass_2fa=true".to_owned()));

    for path in [
        format!("/api/v1/ip-rules/{id}"),
        "/api/v1/ip-rules/abc".to_owned(),
        "/api/v1/ip-rules/99999999999999999999999".to_owned(),
    ] {
        let (status, answer) = delete(&app, &path, &token).await;
        assert_not_found(status, &answer);
    }
}

#[tokio::test]
async fn ip_rules_need_manage_ip_settings() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let (_, rule) = post(
        &app,
        "/api/v1/ip-rules",
        &token,
        json!({ "network": "10.0.0.0/8", "bypass_2fa": true, "confirm_broad": true }),
    )
    .await;
    let sysop = signed_in_with(
        &app,
        "sysop",
        &[
            Permission::ManageSystemSettings,
            Permission::Manage2faBypass,
            Permission::ManageUsers,
        ],
    )
    .await;
    let answers = [
        get(&app, "/api/v1/ip-rules", &sysop).await,
        post(
            &app,
            "/api/v1/ip-rules",
            &sysop,
            json!({ "network": "0.0.0.0/0", "bypass_2fa": true }),
        )
        .await,
        delete(&app, &format!("/api/v1/ip-rules/{}", rule["id"]), &sysop).await,
    ];
    for (status, answer) in answers {
        assert_forbidden(status, &answer, "manage_ip_settings");
    }
    let stored = app.store.ip_rules().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].rule.network.to_string(), "10.0.0.0/8");
}

#[tokio::test]
async fn a_bad_network_or_note_is_refused() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    for network in ["10.0.0.0/33", "not an address", "", "10.0.0.1/24/1"] {
        let (status, answer) = post(
            &app,
            "/api/v1/ip-rules",
            &token,
            json!({ "network": network }),
        )
        .await;
        assert_invalid(status, &answer, "network");
    }
    let (status, answer) = post(
        &app,
        "/api/v1/ip-rules",
        &token,
        json!({ "network": "10.0.0.0/8", "note": "x".repeat(201) }),
    )
    .await;
    assert_invalid(status, &answer, "note");
    let (status, answer) = post(
        &app,
        "/api/v1/ip-rules",
        &token,
        json!({ "network": "10.0.0.0/8", "bypass_2fa": "yes" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(app.store.ip_rules().await.unwrap().is_empty());
}

// ----- the OTP email template -----

#[tokio::test]
async fn an_administrator_reads_and_replaces_the_otp_template() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let path = "/api/v1/templates/otp-notification-email";
    let (status, default) = get(&app, path, &token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(default["text_body"].as_str().unwrap().contains("@user_otp"));
    let new = json!({ "subject": "Your code for @site_name",
                      "text_body": "Hello @user_name, your code is @user_otp",
                      "html_body": null });
    let (status, saved) = call(&app, Method::PUT, path, Some(&token), Some(new.clone())).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved, new);
    let (_, read) = get(&app, path, &token).await;
    assert_eq!(read, new);
    assert!(!audit_details(&app, AuditEvent::TemplateChanged)
        .await
        .is_empty());

    let (status, answer) = call(
        &app,
        Method::PUT,
        path,
        Some(&token),
        Some(json!({ "subject": "Code", "text_body": "no code here", "html_body": null })),
    )
    .await;
    assert_invalid(status, &answer, "template");
    let (_, read) = get(&app, path, &token).await;
    assert_eq!(read, new, "unchanged");

    let auditor = signed_in_with(&app, "auditor", &[Permission::ViewAuditLog]).await;
    let (status, answer) = get(&app, path, &auditor).await;
    assert_forbidden(status, &answer, "manage_system_settings");
    let (status, answer) = call(&app, Method::PUT, path, Some(&auditor), Some(default)).await;
    assert_forbidden(status, &answer, "manage_system_settings");
    let (_, read) = get(&app, path, &token).await;
    assert_eq!(read, new, "unchanged");
}

// ----- the audit log -----

#[tokio::test]
async fn the_audit_log_filters_by_user_event_and_time() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let staff = app.store.role_by_name("Staff").await.unwrap().unwrap();
    app.user("jane", &staff, true).await;
    let start = app.clock.now_ts().millis();
    patch(&app, "/api/v1/settings", &token, json!({ "otp_length": 7 })).await;
    app.clock.advance_seconds(60);
    let later = app.clock.now_ts().millis();
    patch(
        &app,
        "/api/v1/users/jane",
        &token,
        json!({ "display_name": "J" }),
    )
    .await;
    patch(&app, "/api/v1/settings", &token, json!({ "otp_length": 8 })).await;

    let (status, page) = get(&app, "/api/v1/audit?event=setting_changed", &token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["detail"], "otp_length: 7 -> 8", "newest first");
    assert_eq!(entries[0]["actor"], "admin");
    assert_eq!(entries[0]["at"], later);
    assert_eq!(entries[1]["at"], start);

    let (_, page) = get(
        &app,
        &format!("/api/v1/audit?event=setting_changed&since={later}"),
        &token,
    )
    .await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 1);
    let (_, page) = get(
        &app,
        &format!("/api/v1/audit?event=setting_changed&until={later}"),
        &token,
    )
    .await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 1);
    assert_eq!(page["entries"][0]["detail"], "otp_length: 6 -> 7");
    let (_, page) = get(&app, "/api/v1/audit?user=jane", &token).await;
    let entries = page["entries"].as_array().unwrap();
    assert!(!entries.is_empty());
    assert!(entries
        .iter()
        .all(|e| e["subject"] == "jane" || e["actor"] == "jane"));
    let (_, page) = get(&app, "/api/v1/audit?limit=1&offset=1", &token).await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 1);
    assert_eq!(page["entries"][0]["event"], "user_changed");

    for (query, field) in [
        ("since=yesterday", "since"),
        ("until=2027-01-01T00:00:00Z", "until"),
        ("event=coffee_break", "event"),
        ("limit=-5", "limit"),
        ("offset=x", "offset"),
    ] {
        let (status, answer) = get(&app, &format!("/api/v1/audit?{query}"), &token).await;
        assert_invalid(status, &answer, field);
    }

    let clerk = signed_in_with(&app, "clerk", &[Permission::ManageUsers]).await;
    let (status, answer) = get(&app, "/api/v1/audit", &clerk).await;
    assert_forbidden(status, &answer, "view_audit_log");
    let auditor = signed_in_with(&app, "auditor", &[Permission::ViewAuditLog]).await;
    let (status, _) = get(&app, "/api/v1/audit", &auditor).await;
    assert_eq!(status, StatusCode::OK);
}

// ----- API tokens -----

#[tokio::test]
async fn an_api_token_acts_with_its_creators_permissions_and_is_stored_only_hashed() {
    let app = spawn_app().await;
    let session = admin(&app).await;
    let (status, created) = post(
        &app,
        "/api/v1/tokens",
        &session,
        json!({ "name": "provisioning script" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["name"], "provisioning script");
    let token = created["token"].as_str().unwrap().to_owned();
    assert_ne!(token, session);

    let (status, answer) = post(
        &app,
        "/api/v1/users",
        &token,
        json!({ "username": "robot", "password": "robot orchard lantern 123", "display_name": "Robot",
                "role": "Interface User", "must_change_password": false }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let created_by = app
        .store
        .audit_entries(&AuditQuery {
            event: Some(AuditEvent::UserCreated),
            limit: 1,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        created_by[0].actor.as_deref(),
        Some("admin"),
        "acts as its creator"
    );
    let tokens = audit_details(&app, AuditEvent::ApiTokenCreated).await;
    assert_eq!(tokens, ["name=provisioning script"]);

    // A modified token is not a token.
    let mut modified = token.clone().into_bytes();
    let last = modified.len() - 1;
    modified[last] = if modified[last] == b'A' { b'B' } else { b'A' };
    let modified = String::from_utf8(modified).unwrap();
    let (status, _) = get(&app, "/api/v1/users", &modified).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Only the hash is stored.
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}", app.dir.path().join("twostep.db").display());
    let mut db = sqlx::AnyConnection::connect(&url).await.unwrap();
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
        .fetch_all(&mut db)
        .await
        .unwrap();
    let parsed = twostep::crypto::Token::parse(&token).unwrap();
    assert_eq!(stored, [parsed.hash().to_vec()]);
    let leaks: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM api_tokens WHERE name LIKE $1 OR CAST(token_hash AS TEXT) LIKE $1",
    )
    .bind(format!("%{token}%"))
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(leaks, 0);
    db.close().await.unwrap();
    assert!(app
        .store
        .api_token_user(&parsed.hash())
        .await
        .unwrap()
        .is_some());
    let modified = twostep::crypto::Token::parse(&modified).map(|t| t.hash());
    if let Ok(hash) = modified {
        assert!(app.store.api_token_user(&hash).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn a_token_of_a_user_with_few_permissions_has_only_those() {
    let app = spawn_app().await;
    let auditor = signed_in_with(&app, "auditor", &[Permission::ViewAuditLog]).await;
    let (status, created) = post(&app, "/api/v1/tokens", &auditor, json!({ "name": "siem" })).await;
    assert_eq!(status, StatusCode::CREATED);
    let token = created["token"].as_str().unwrap();
    let (status, _) = get(&app, "/api/v1/audit", token).await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = get(&app, "/api/v1/users", token).await;
    assert_forbidden(status, &answer, "manage_users");
    let (status, answer) = get(&app, "/api/v1/ip-rules", token).await;
    assert_forbidden(status, &answer, "manage_ip_settings");

    // The token follows its user: deactivated, it stops working.
    let session = admin(&app).await;
    patch(
        &app,
        "/api/v1/users/auditor",
        &session,
        json!({ "active": false }),
    )
    .await;
    let (status, _) = get(&app, "/api/v1/audit", token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    for name in ["", "   ", &"x".repeat(101)] {
        let (status, answer) =
            post(&app, "/api/v1/tokens", &session, json!({ "name": name })).await;
        assert_invalid(status, &answer, "name");
    }
}

// ----- bodies and the document -----

#[tokio::test]
async fn malformed_admin_bodies_get_json_errors() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let url = format!("{}/api/v1/roles", app.address);
    let response = app
        .client
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"name\":")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["code"], "malformed_json");
    let response = app
        .client
        .post(&url)
        .bearer_auth(&token)
        .body("name=Clerks")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["code"], "unsupported_media_type");
}

#[tokio::test]
async fn the_openapi_document_is_public_and_lists_every_endpoint() {
    let app = spawn_app().await;
    let (status, doc) = app.get_json("/api/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for (method, path, _) in every_endpoint() {
        let template = path
            .replace("/roles/Staff", "/roles/{name}")
            .replace("/users/admin", "/users/{username}")
            .replace("/ip-rules/1", "/ip-rules/{id}")
            .replace("/security/device_added", "/security/{event}")
            .replace("/oidc/clients/wiki", "/oidc/clients/{client_id}");
        let operation = &paths
            .get(&template)
            .unwrap_or_else(|| panic!("{template} is documented"))[method.as_str().to_lowercase()];
        assert!(operation.is_object(), "{method} {template}");
        assert_eq!(
            operation["security"],
            json!([{ "bearer": [] }]),
            "{method} {template}"
        );
        assert!(
            operation["responses"]["401"].is_object(),
            "{method} {template}"
        );
    }
    for path in [
        "/api/v1/signin",
        "/api/v1/signin/otp",
        "/api/v1/signin/otp/resend",
        "/api/v1/signin/enroll",
        "/api/v1/signin/enroll/confirm",
        "/api/v1/signin/enroll/skip",
        "/api/v1/signin/password",
        "/api/v1/me",
        "/api/v1/signout",
        "/api/v1/openapi.json",
        "/api/v1/authz",
    ] {
        assert!(paths.contains_key(path), "{path}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let audit = &paths["/api/v1/audit"]["get"]["parameters"];
    let since = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "since")
        .unwrap();
    assert!(since["description"]
        .as_str()
        .unwrap()
        .contains("Unix milliseconds"));
}

/// SPEC section 11: an IP rule broader than /16 (IPv4) or /48 (IPv6) is refused with
/// `422 broad_network` unless the body says `"confirm_broad": true`; the schema says so.
#[tokio::test]
async fn a_broad_ip_rule_needs_confirm_broad_and_the_schema_documents_it() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    for network in ["0.0.0.0/0", "10.0.0.0/15", "::/0", "2001:db8::/47"] {
        let (status, answer) = post(
            &app,
            "/api/v1/ip-rules",
            &token,
            json!({ "network": network, "bypass_2fa": true }),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{network}: {answer}"
        );
        assert_eq!(answer["code"], "broad_network", "{network}");
        assert!(answer["message"].as_str().unwrap().contains("broad"));
    }
    assert!(
        app.store.ip_rules().await.unwrap().is_empty(),
        "nothing stored"
    );
    for network in ["10.0.0.0/16", "2001:db8::/48"] {
        let (status, answer) = post(
            &app,
            "/api/v1/ip-rules",
            &token,
            json!({ "network": network }),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{network}: {answer}");
    }
    let (status, answer) = post(
        &app,
        "/api/v1/ip-rules",
        &token,
        json!({ "network": "0.0.0.0/0", "confirm_broad": true }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["network"], "0.0.0.0/0");
    assert_eq!(app.store.ip_rules().await.unwrap().len(), 3);
    let (_, doc) = app.get_json("/api/v1/openapi.json", None).await;
    let schema = &doc["components"]["schemas"]["IpRuleIn"]["properties"]["confirm_broad"];
    assert_eq!(schema["type"], "boolean", "{schema}");
    let responses = doc["paths"]["/api/v1/ip-rules"]["post"]["responses"]["422"].to_string();
    assert!(responses.contains("broad_network"), "{responses}");
    app.stop().await;
}
