//! SPEC 15 on shared workstations: per-role session limits (`session_idle_minutes`,
//! `session_max_hours`) held by `/api/v1/authz` behind Debian's nginx, by the pages and by
//! the JSON API, changed through the API, the console and the command line; and "Switch
//! user", on the signed-in page and for forward-auth (`/switch-user?rd=`).

use reqwest::header::{ACCEPT, LOCATION};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use twostep::domain::{AuditEvent, Require2fa, Role, RoleName, RoleSecurity, SessionLimits};
use twostep::store::AuditQuery;

use crate::admin_api::{admin, call, session_of};
use crate::admin_pages::sign_in_admin;
use crate::cli::cli;
use crate::helpers::{spawn_app, NowTs, TestApp};
use crate::nginx::{location, setup, Nginx, Proxy, Setup};
use crate::pages::{cookie_value, get, post, sign_in, submit};

const MINUTE: i64 = 60;

/// A role without 2FA (the password signs in) whose sessions end after `idle` minutes
/// without a request and `max` hours after sign-in.
async fn limited_role(app: &TestApp, name: &str, idle: i64, max: i64) -> Role {
    app.store
        .create_role(
            &RoleName::parse(name).unwrap(),
            RoleSecurity::new(Require2fa::No, false, false).unwrap(),
            &Default::default(),
            SessionLimits::new(idle, max).unwrap(),
            app.clock.now_ts(),
        )
        .await
        .unwrap()
}

/// Both instances' clocks move on together.
fn advance<P>(s: &Setup<P>, seconds: i64) {
    s.a.clock.advance_seconds(seconds);
    s.b.clock.advance_seconds(seconds);
}

/// The application through nginx as a program asks (no HTML accepted): nginx answers
/// twostep's 401 itself, or passes to the application.
async fn app_status(s: &Setup<Nginx>) -> StatusCode {
    s.browser
        .get(s.app("/records/7"))
        .send()
        .await
        .unwrap()
        .status()
}

/// `name` signs in through nginx with the password; the browser keeps the cookie.
async fn sign_in_through_nginx(s: &Setup<Nginx>, name: &str) {
    let signed_in = s
        .submit(
            &s.signin("/signin"),
            &s.signin("/signin"),
            &[
                ("username", name),
                ("password", &TestApp::password_of(name)),
            ],
        )
        .await;
    assert_eq!(location(&signed_in), "/");
}

/// SPEC 15 at `/api/v1/authz` behind Debian's nginx (two instances on PostgreSQL): a role
/// with 10 idle minutes passes after 9 minutes without a request and not after 10.
#[tokio::test]
async fn nginx_authz_ends_a_session_idle_for_the_roles_idle_minutes() {
    let Some(s) = setup().await else { return };
    let role = limited_role(&s.a, "Ward Clerks", 10, 12).await;
    s.a.user("jane", &role, true).await;
    sign_in_through_nginx(&s, "jane").await;
    assert_eq!(app_status(&s).await, StatusCode::OK, "{}", s.proxy.log());

    advance(&s, 9 * MINUTE);
    assert_eq!(app_status(&s).await, StatusCode::OK, "9 minutes idle");
    advance(&s, 10 * MINUTE);
    assert_eq!(
        app_status(&s).await,
        StatusCode::UNAUTHORIZED,
        "10 minutes idle"
    );
    // A browser is sent to sign in again.
    let page = s
        .browser
        .get(s.app("/records/7"))
        .header(ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::FOUND);
    assert!(location(&page).starts_with(&s.signin("/signin?rd=")));
    s.finish().await;
}

/// SPEC 15 behind nginx: a session in use (a request every 9 minutes, under the 10 idle
/// minutes) still ends at the role's `session_max_hours`: 200 at 54 minutes, 401 at 60.
#[tokio::test]
async fn nginx_authz_ends_a_session_in_use_at_the_roles_max_hours() {
    let Some(s) = setup().await else { return };
    let role = limited_role(&s.a, "Ward Clerks", 10, 1).await;
    s.a.user("jane", &role, true).await;
    sign_in_through_nginx(&s, "jane").await;
    for step in 1..=6 {
        advance(&s, 9 * MINUTE);
        assert_eq!(
            app_status(&s).await,
            StatusCode::OK,
            "at {} minutes",
            step * 9
        );
    }
    advance(&s, 6 * MINUTE);
    assert_eq!(
        app_status(&s).await,
        StatusCode::UNAUTHORIZED,
        "at 60 minutes"
    );
    s.finish().await;
}

/// The status of `GET /api/v1/me` with the session `token`.
async fn me(app: &TestApp, token: &str) -> (StatusCode, Value) {
    app.get_json("/api/v1/me", Some(token)).await
}

/// `GET /` with the client's cookie: the signed-in page, or the way to sign in.
async fn home_signed_in(app: &TestApp) -> bool {
    let page = get(app, "/").await;
    match page.status {
        StatusCode::OK => true,
        StatusCode::SEE_OTHER => {
            assert_eq!(page.location(), "/signin");
            false
        }
        other => panic!("GET / answered {other}"),
    }
}

/// SPEC 15 on the pages and the JSON API: 9 idle minutes pass, 10 do not; a session in use
/// ends at the role's max hours (200 at 54 minutes, refused at 60).
#[tokio::test]
async fn pages_and_the_json_api_hold_the_roles_idle_and_absolute_limits() {
    let app = spawn_app().await;
    let role = limited_role(&app, "Ward Clerks", 10, 1).await;
    app.user("jane", &role, true).await;
    let password = TestApp::password_of("jane");

    // Idle: pages and API.
    assert_eq!(sign_in(&app, "jane", &password).await.location(), "/");
    let token = session_of(&app, "jane", &password).await;
    app.clock.advance_seconds(9 * MINUTE);
    assert!(home_signed_in(&app).await, "9 minutes idle, page");
    assert_eq!(me(&app, &token).await.0, StatusCode::OK, "9 minutes, API");
    app.clock.advance_seconds(10 * MINUTE);
    assert!(!home_signed_in(&app).await, "10 minutes idle, page");
    let (status, answer) = me(&app, &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer["code"], "unauthenticated");

    // Absolute: a request every 9 minutes, the session still ends after an hour.
    assert_eq!(sign_in(&app, "jane", &password).await.location(), "/");
    let token = session_of(&app, "jane", &password).await;
    for step in 1..=6 {
        app.clock.advance_seconds(9 * MINUTE);
        assert!(home_signed_in(&app).await, "page at {} minutes", step * 9);
        assert_eq!(
            me(&app, &token).await.0,
            StatusCode::OK,
            "API at {}",
            step * 9
        );
    }
    app.clock.advance_seconds(6 * MINUTE);
    assert!(!home_signed_in(&app).await, "page at 60 minutes");
    assert_eq!(me(&app, &token).await.0, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

async fn patch_role(app: &TestApp, admin: &str, role: &str, body: Value) -> (StatusCode, Value) {
    call(
        app,
        Method::PATCH,
        &format!("/api/v1/roles/{role}"),
        Some(admin),
        Some(body),
    )
    .await
}

/// SPEC 15: a stricter limit applies at once to a session already open (idle and max); a
/// looser max applies from the next sign-in.
#[tokio::test]
async fn a_stricter_role_limit_applies_at_once_and_a_looser_one_from_the_next_sign_in() {
    let app = spawn_app().await;
    let role = limited_role(&app, "Ward Clerks", 30, 12).await;
    app.user("jane", &role, true).await;
    let password = TestApp::password_of("jane");

    // Idle 30 -> 10 while a session has been idle 20 minutes.
    let token = session_of(&app, "jane", &password).await;
    app.clock.advance_seconds(20 * MINUTE);
    let administrator = admin(&app).await;
    let (status, answer) = patch_role(
        &app,
        &administrator,
        "Ward%20Clerks",
        json!({ "session_idle_minutes": 10 }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["session_idle_minutes"], 10);
    assert_eq!(me(&app, &token).await.0, StatusCode::UNAUTHORIZED);

    // Max 12 -> 2 hours for a session signed in 3 hours ago and in use.
    patch_role(
        &app,
        &administrator,
        "Ward%20Clerks",
        json!({ "session_idle_minutes": 1440 }),
    )
    .await;
    let token = session_of(&app, "jane", &password).await;
    app.clock.advance_seconds(3 * 60 * MINUTE);
    assert_eq!(me(&app, &token).await.0, StatusCode::OK);
    let administrator = admin(&app).await;
    patch_role(
        &app,
        &administrator,
        "Ward%20Clerks",
        json!({ "session_max_hours": 2 }),
    )
    .await;
    assert_eq!(me(&app, &token).await.0, StatusCode::UNAUTHORIZED);

    // Max 2 -> 5 hours: the session signed in under 2 still ends at 2; a new one at 5.
    let old = session_of(&app, "jane", &password).await;
    patch_role(
        &app,
        &administrator,
        "Ward%20Clerks",
        json!({ "session_max_hours": 5 }),
    )
    .await;
    let new = session_of(&app, "jane", &password).await;
    app.clock.advance_seconds(2 * 60 * MINUTE);
    assert_eq!(me(&app, &old).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&app, &new).await.0, StatusCode::OK);
    app.stop().await;
}

async fn role_changes(app: &TestApp) -> usize {
    app.store
        .audit_entries(&AuditQuery {
            event: Some(AuditEvent::RoleChanged),
            limit: 1000,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .len()
}

/// SPEC 15 in the JSON API: 0, 1441, 169 and non-numbers are refused with a stable code
/// and nothing changes; good values are saved, audited and shown by the list and the role.
#[tokio::test]
async fn the_api_refuses_session_limits_out_of_range_and_shows_saved_ones() {
    let app = spawn_app().await;
    let administrator = admin(&app).await;
    let before = role_changes(&app).await;
    for (body, code, field) in [
        (
            json!({ "session_idle_minutes": 0 }),
            "invalid_field",
            Some("session_idle_minutes"),
        ),
        (
            json!({ "session_idle_minutes": 1441 }),
            "invalid_field",
            Some("session_idle_minutes"),
        ),
        (
            json!({ "session_max_hours": 0 }),
            "invalid_field",
            Some("session_max_hours"),
        ),
        (
            json!({ "session_max_hours": 169 }),
            "invalid_field",
            Some("session_max_hours"),
        ),
        (
            json!({ "session_idle_minutes": "ten" }),
            "invalid_input",
            None,
        ),
        (json!({ "session_max_hours": 1.5 }), "invalid_input", None),
    ] {
        let (status, answer) = patch_role(&app, &administrator, "Staff", body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["code"], code, "{body}: {answer}");
        if let Some(field) = field {
            assert_eq!(answer["field"], field, "{answer}");
            assert!(
                answer["message"]
                    .as_str()
                    .unwrap()
                    .contains("must be between 1 and"),
                "{answer}"
            );
        }
    }
    let (status, answer) = call(
        &app,
        Method::POST,
        "/api/v1/roles",
        Some(&administrator),
        Some(json!({ "name": "Porters", "session_max_hours": 169 })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(app.store.role_by_name("Porters").await.unwrap().is_none());
    let staff = app.store.role_by_name("Staff").await.unwrap().unwrap();
    assert_eq!(staff.session_limits, SessionLimits::DEFAULT);
    assert_eq!(role_changes(&app).await, before, "nothing audited");

    // A new role gets the defaults; a change is saved, audited and shown.
    let (status, created) = call(
        &app,
        Method::POST,
        "/api/v1/roles",
        Some(&administrator),
        Some(json!({ "name": "Porters" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        (
            &created["session_idle_minutes"],
            &created["session_max_hours"]
        ),
        (&json!(30), &json!(12))
    );
    let (status, changed) = patch_role(
        &app,
        &administrator,
        "Staff",
        json!({ "session_idle_minutes": 1440, "session_max_hours": 168 }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    let (_, list) = call(
        &app,
        Method::GET,
        "/api/v1/roles",
        Some(&administrator),
        None,
    )
    .await;
    let listed = list["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|role| role["name"] == "Staff")
        .unwrap()
        .clone();
    assert_eq!(listed["session_idle_minutes"], 1440);
    assert_eq!(listed["session_max_hours"], 168);
    let staff = app.store.role_by_name("Staff").await.unwrap().unwrap();
    assert_eq!(staff.session_limits, SessionLimits::new(1440, 168).unwrap());
    let audited = app
        .store
        .audit_entries(&AuditQuery {
            event: Some(AuditEvent::RoleChanged),
            limit: 1,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(
        audited[0].detail.contains("before: name=Staff")
            && audited[0]
                .detail
                .contains("session_idle_minutes=30 session_max_hours=12")
            && audited[0]
                .detail
                .contains("session_idle_minutes=1440 session_max_hours=168"),
        "{:?}",
        audited[0]
    );
    app.stop().await;
}

/// The console's role form for Staff with these session limits.
fn staff_form<'a>(idle: &'a str, max: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("name", "Staff"),
        ("require_2fa", "encourage"),
        ("otp_required", "no"),
        ("session_idle_minutes", idle),
        ("session_max_hours", max),
    ]
}

/// SPEC 15 in the console: the form's two number inputs with their ranges; 0, 1441, 169
/// and text are refused next to the fields and nothing changes; saved values show on the
/// roles list.
#[tokio::test]
async fn the_console_refuses_session_limits_out_of_range_and_lists_saved_ones() {
    let app = spawn_app().await;
    sign_in_admin(&app).await;
    let form = get(&app, "/admin/roles/Staff").await;
    form.assert_contains(r#"name="session_idle_minutes" value="30" min="1" max="1440""#);
    form.assert_contains(r#"name="session_max_hours" value="12" min="1" max="168""#);
    let before = role_changes(&app).await;
    for (idle, max, errors) in [
        (
            "0",
            "169",
            &["session_idle_minutes", "session_max_hours"][..],
        ),
        ("1441", "12", &["session_idle_minutes"][..]),
        (
            "ten",
            "",
            &["session_idle_minutes", "session_max_hours"][..],
        ),
    ] {
        let page = submit(
            &app,
            "/admin/roles/Staff",
            "/admin/roles/Staff",
            &staff_form(idle, max),
        )
        .await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{idle} {max}"
        );
        for field in errors {
            page.assert_contains(&format!(r#"id="{field}-error""#));
        }
        page.assert_contains("must be between 1 and");
    }
    let staff = app.store.role_by_name("Staff").await.unwrap().unwrap();
    assert_eq!(staff.session_limits, SessionLimits::DEFAULT);
    assert_eq!(role_changes(&app).await, before);

    let saved = submit(
        &app,
        "/admin/roles/Staff",
        "/admin/roles/Staff",
        &staff_form("15", "8"),
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let staff = app.store.role_by_name("Staff").await.unwrap().unwrap();
    assert_eq!(staff.session_limits, SessionLimits::new(15, 8).unwrap());
    let list = get(&app, "/admin/roles").await;
    list.assert_contains("<th scope=\"col\">Idle Minutes</th><th scope=\"col\">Max Hours</th>");
    list.assert_contains("<td>15</td>\n<td>8</td>");
    app.stop().await;
}

/// SPEC 15 on the command line: `role set --session-idle-minutes/--session-max-hours`
/// refuses 0, 1441, 169 (exit 1) and non-numbers (usage, exit 2), changing nothing, and
/// saves good values, which `role list` shows.
#[tokio::test]
async fn the_cli_sets_session_limits_within_their_ranges() {
    let app = spawn_app().await;
    for (option, value, message) in [
        (
            "--session-idle-minutes",
            "0",
            "session idle minutes must be between 1 and 1440",
        ),
        (
            "--session-idle-minutes",
            "1441",
            "session idle minutes must be between 1 and 1440",
        ),
        (
            "--session-max-hours",
            "169",
            "session max hours must be between 1 and 168",
        ),
    ] {
        cli(&app, &["role", "set", "Staff", option, value])
            .await
            .refused(message);
    }
    let usage = cli(
        &app,
        &["role", "set", "Staff", "--session-max-hours", "ten"],
    )
    .await;
    assert_eq!(usage.code, 2, "{usage:?}");
    let staff = app.store.role_by_name("Staff").await.unwrap().unwrap();
    assert_eq!(staff.session_limits, SessionLimits::DEFAULT);

    let out = cli(
        &app,
        &[
            "role",
            "set",
            "Staff",
            "--session-idle-minutes",
            "15",
            "--session-max-hours",
            "8",
        ],
    )
    .await;
    assert_eq!(out.ok(), "Staff\tencourage\tno\tno\t\t15\t8\n");
    let list = cli(&app, &["role", "list"]).await;
    assert!(list
        .ok()
        .lines()
        .any(|line| line.starts_with("Staff\t") && line.ends_with("\t15\t8")));
    let staff = app.store.role_by_name("Staff").await.unwrap().unwrap();
    assert_eq!(staff.session_limits, SessionLimits::new(15, 8).unwrap());
    app.stop().await;
}

/// SPEC 15 "Switch user" on the signed-in page: the POST (with the CSRF token) ends the
/// session, so the old cookie and token no longer work, and the sign-in page tells the
/// next person; without the token nothing ends.
#[tokio::test]
async fn switch_user_on_the_signed_in_page_ends_the_session_and_opens_sign_in() {
    let app = spawn_app().await;
    let role = limited_role(&app, "Ward Clerks", 30, 12).await;
    app.user("jane", &role, true).await;
    let signed_in = sign_in(&app, "jane", &TestApp::password_of("jane")).await;
    let token = cookie_value(&signed_in, "twostep_session");
    let home = get(&app, "/").await;
    home.assert_contains(r#"<form method="post" action="/switch-user">"#);
    home.assert_contains(">Switch user</button>");

    let refused = post(&app, "/switch-user", &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        me(&app, &token).await.0,
        StatusCode::OK,
        "no CSRF, no sign-out"
    );

    let switched = submit(&app, "/", "/switch-user", &[]).await;
    assert_eq!(switched.status, StatusCode::SEE_OTHER);
    assert_eq!(switched.location(), "/signin?m=switched");
    assert!(switched
        .cookie("twostep_session")
        .unwrap()
        .contains("Max-Age=0"));
    let signin = get(&app, "/signin?m=switched").await;
    signin.assert_contains("Signed out. The next person can sign in.");
    assert_eq!(me(&app, &token).await.0, StatusCode::UNAUTHORIZED);
    let old_cookie = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/", app.address))
        .header("cookie", format!("twostep_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(old_cookie.status(), StatusCode::SEE_OTHER);
    assert_eq!(old_cookie.headers()[LOCATION], "/signin");
    app.stop().await;
}

/// SPEC 15 for forward-auth behind nginx: an application's `/switch-user?rd=<its URL>`
/// asks "Switch user" or "Continue as"; switching signs the first person out, and the next
/// person returns to the application after signing in.
#[tokio::test]
async fn switch_user_with_rd_returns_the_next_person_to_the_application() {
    let Some(s) = setup().await else { return };
    let role = limited_role(&s.a, "Ward Clerks", 30, 12).await;
    s.a.user("jane", &role, true).await;
    s.a.user("kim", &role, true).await;
    let back = s.app("/records/7?tab=labs");
    let encoded: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();

    // Without a session: straight to sign in, keeping the way back.
    let nobody = s
        .get(&s.signin(&format!("/switch-user?rd={encoded}")))
        .await;
    assert_eq!(location(&nobody), format!("/signin?rd={encoded}"));

    sign_in_through_nginx(&s, "jane").await;
    assert_eq!(app_status(&s).await, StatusCode::OK);
    let ask = s.signin(&format!("/switch-user?rd={encoded}"));
    let page = s.get(&ask).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Signed in as jane Display (jane)."), "{html}");
    let escaped = back.replace('&', "&amp;");
    assert!(
        html.contains(&format!(
            r#"id="continue" href="{escaped}">Continue as jane Display"#
        )),
        "{html}"
    );
    assert!(
        html.contains(&format!(r#"name="rd" value="{escaped}""#)),
        "{html}"
    );

    let switched = s
        .submit(&ask, &s.signin("/switch-user"), &[("rd", &back)])
        .await;
    assert_eq!(switched.status(), StatusCode::SEE_OTHER);
    let to_signin = location(&switched);
    assert_eq!(to_signin, format!("/signin?m=switched&rd={encoded}"));
    assert_eq!(
        app_status(&s).await,
        StatusCode::UNAUTHORIZED,
        "jane signed out"
    );

    // The next person signs in and is taken back to the application.
    let signin_page = s.get(&s.signin(&to_signin)).await;
    assert!(signin_page
        .text()
        .await
        .unwrap()
        .contains("Signed out. The next person can sign in."));
    sign_in_through_nginx(&s, "kim").await;
    let home = s.get(&s.signin("/")).await;
    assert_eq!(
        crate::forward_auth::refresh_url(&home.text().await.unwrap()),
        back
    );
    let app_page = s.get(&back).await;
    assert_eq!(app_page.status(), StatusCode::OK);
    assert!(app_page.text().await.unwrap().starts_with("user=kim "));
    s.finish().await;
}

/// SPEC 15 with a disallowed `rd` (outside `--redirect-domain`): ignored by the page (no
/// link there, no hidden field), by the POST (plain sign-in page) and without a session.
#[tokio::test]
async fn switch_user_ignores_a_disallowed_rd() {
    let Some(s) = setup().await else { return };
    let role = limited_role(&s.a, "Ward Clerks", 30, 12).await;
    s.a.user("jane", &role, true).await;
    let evil: String = url::form_urlencoded::byte_serialize(b"http://evil.example/login").collect();
    let nobody = s.get(&s.signin(&format!("/switch-user?rd={evil}"))).await;
    assert_eq!(location(&nobody), "/signin");

    sign_in_through_nginx(&s, "jane").await;
    let ask = s.signin(&format!("/switch-user?rd={evil}"));
    let html = s.get(&ask).await.text().await.unwrap();
    assert!(!html.contains("evil.example"), "{html}");
    assert!(html.contains(r#"id="continue" href="/""#), "{html}");
    let switched = s
        .submit(
            &ask,
            &s.signin("/switch-user"),
            &[("rd", "http://evil.example/login")],
        )
        .await;
    assert_eq!(location(&switched), "/signin?m=switched");
    assert_eq!(app_status(&s).await, StatusCode::UNAUTHORIZED);
    s.finish().await;
}

/// SPEC 15 on My account: the list of live sessions applies the role's limits (a session
/// idle for the role's 10 minutes is not listed, nor one past its max hours after a
/// stricter change), as `live_session` does.
#[tokio::test]
async fn my_accounts_session_list_follows_the_roles_limits() {
    let app = spawn_app().await;
    let role = limited_role(&app, "Ward Clerks", 10, 12).await;
    app.user("jane", &role, true).await;
    let password = TestApp::password_of("jane");
    let idle = session_of(&app, "jane", &password).await;
    app.clock.advance_seconds(5 * MINUTE);
    let used = session_of(&app, "jane", &password).await;
    app.clock.advance_seconds(5 * MINUTE);
    let (status, account) = app.get_json("/api/v1/account", Some(&used)).await;
    assert_eq!(status, StatusCode::OK, "{account}");
    assert_eq!(
        account["sessions"].as_array().unwrap().len(),
        1,
        "{account}"
    );
    assert_eq!(me(&app, &idle).await.0, StatusCode::UNAUTHORIZED);

    // Max hours 12 -> 1 while a second session, signed in now, is fresh.
    let fresh_start = session_of(&app, "jane", &password).await;
    app.clock.advance_seconds(9 * MINUTE);
    let (_, account) = app.get_json("/api/v1/account", Some(&fresh_start)).await;
    assert_eq!(
        account["sessions"].as_array().unwrap().len(),
        2,
        "{account}"
    );
    let administrator = admin(&app).await;
    let (status, _) = patch_role(
        &app,
        &administrator,
        "Ward%20Clerks",
        json!({ "session_idle_minutes": 1440, "session_max_hours": 1 }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    app.clock.advance_seconds(50 * MINUTE);
    // `used` began 64 minutes ago, `fresh_start` 59.
    let (status, account) = app.get_json("/api/v1/account", Some(&fresh_start)).await;
    assert_eq!(status, StatusCode::OK, "{account}");
    assert_eq!(
        account["sessions"].as_array().unwrap().len(),
        1,
        "{account}"
    );
    app.stop().await;
}
