//! SPEC section 10, "Passwords": every surface where a password is chosen (the forced
//! change at sign-in, page and API; an administrator's create and reset, API, console and
//! command line; the account page and its API) refuses a common one, a guessable one, one
//! made of the username and digits, and the current one, saying why without showing it,
//! and leaves the stored hash as it was; a long passphrase is accepted.

use std::process::Stdio;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use twostep::domain::{Require2fa, Username};

use crate::admin_pages::sign_in_admin;
use crate::helpers::{spawn_app, NowTs, TestApp};
use crate::pages::{sign_in, submit, Page};

/// Accepted everywhere: 40 characters of unrelated words.
const PASSPHRASE: &str = "orchard lantern quietly measures twelve";
const EASY: &str = "too common or too easy to guess";
const LIKE_USERNAME: &str = "too much like the username";
const SAME: &str = "must differ from the current one";

/// The refused passwords of a user named `jsmith` whose password is `current`, each with
/// the reason its refusal names. `current` is left out where there is no current password.
fn refused_for(current: Option<&str>) -> Vec<(String, &'static str)> {
    let mut bad = vec![
        ("passwordpassword".to_owned(), EASY),
        ("Password1234".to_owned(), EASY),
        ("jsmith20242025".to_owned(), LIKE_USERNAME),
    ];
    if let Some(current) = current {
        bad.push((current.to_owned(), SAME));
    }
    bad
}

async fn clerks(app: &TestApp) -> twostep::domain::Role {
    app.role("Clerks", Require2fa::No, false, false).await
}

/// The stored hash of `name`, or `None` when there is no such user.
async fn hash_of(app: &TestApp, name: &str) -> Option<String> {
    app.store
        .user_with_password_hash(&Username::parse(name).unwrap())
        .await
        .unwrap()
        .map(|(_, hash)| hash)
}

async fn admin_token(app: &TestApp) -> String {
    let admin = app
        .store
        .user_by_username(&Username::parse("admin").unwrap())
        .await
        .unwrap()
        .unwrap();
    app.api_token(&admin, "password rules").await
}

async fn api(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Value,
) -> (StatusCode, Value) {
    let response = app
        .client
        .request(method, format!("{}{path}", app.address))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[track_caller]
fn assert_page_refuses(page: &Page, candidate: &str, reason: &str) {
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{candidate}: {}",
        page.body
    );
    page.assert_contains(reason);
    assert!(
        !page.body.contains(candidate),
        "the page shows the password {candidate}"
    );
}

#[track_caller]
fn assert_json_refuses(
    status: StatusCode,
    answer: &Value,
    code: &str,
    candidate: &str,
    reason: &str,
) {
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{candidate}: {answer}"
    );
    assert_eq!(answer["code"], code, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(message.contains(reason), "{candidate}: {message}");
    assert!(!answer.to_string().contains(candidate), "{answer} shows it");
}

// ----- the forced change at sign-in -----

#[tokio::test]
async fn the_forced_change_page_refuses_weak_and_current_passwords() {
    let app = spawn_app().await;
    let user = app.user("jsmith", &clerks(&app).await, true).await;
    let temporary = "temporary password 1";
    app.set_temporary_password(&user, temporary).await;
    let before = hash_of(&app, "jsmith").await;
    let answer = sign_in(&app, "jsmith", temporary).await;
    assert_eq!(answer.location(), "/signin/change-password");
    for (candidate, reason) in refused_for(Some(temporary)) {
        let page = submit(
            &app,
            "/signin/change-password",
            "/signin/change-password",
            &[
                ("new_password", &candidate),
                ("confirm_password", &candidate),
            ],
        )
        .await;
        assert_page_refuses(&page, &candidate, reason);
        assert_eq!(hash_of(&app, "jsmith").await, before, "{candidate}");
    }
    let done = submit(
        &app,
        "/signin/change-password",
        "/signin/change-password",
        &[
            ("new_password", PASSPHRASE),
            ("confirm_password", PASSPHRASE),
        ],
    )
    .await;
    assert_eq!(done.location(), "/", "{}", done.body);
    assert_ne!(hash_of(&app, "jsmith").await, before);
    app.stop().await;
}

#[tokio::test]
async fn the_forced_change_api_refuses_weak_and_current_passwords() {
    let app = spawn_app().await;
    let user = app.user("jsmith", &clerks(&app).await, true).await;
    let temporary = "temporary password 1";
    app.set_temporary_password(&user, temporary).await;
    let before = hash_of(&app, "jsmith").await;
    let (_, answer) = app
        .post(
            "/api/v1/signin",
            json!({ "username": "jsmith", "password": temporary }),
        )
        .await;
    assert_eq!(answer["status"], "password_change_required", "{answer}");
    let transaction = answer["transaction"].as_str().unwrap().to_owned();
    for (candidate, reason) in refused_for(Some(temporary)) {
        let (status, refused) = app
            .post(
                "/api/v1/signin/password",
                json!({ "transaction": transaction, "new_password": candidate }),
            )
            .await;
        assert_json_refuses(status, &refused, "invalid_password", &candidate, reason);
        assert_eq!(hash_of(&app, "jsmith").await, before, "{candidate}");
    }
    let (status, done) = app
        .post(
            "/api/v1/signin/password",
            json!({ "transaction": transaction, "new_password": PASSPHRASE }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "signed_in", "{done}");
    assert_ne!(hash_of(&app, "jsmith").await, before);
    app.stop().await;
}

#[tokio::test]
async fn a_stored_weak_password_still_signs_in() {
    // The rules apply when a password is chosen, never at sign-in.
    let app = spawn_app().await;
    let role = clerks(&app).await;
    let user = app.user("jsmith", &role, true).await;
    let hash = app
        .hasher
        .hash(&twostep::password::Password::for_sign_in("passwordpassword".into()).unwrap())
        .await
        .unwrap();
    app.store
        .set_password_hash(user.id, &hash, false, app.clock.now_ts())
        .await
        .unwrap();
    let (_, answer) = app
        .post(
            "/api/v1/signin",
            json!({ "username": "jsmith", "password": "passwordpassword" }),
        )
        .await;
    assert_eq!(answer["status"], "signed_in", "{answer}");
    app.stop().await;
}

// ----- an administrator: API -----

#[tokio::test]
async fn the_admin_api_refuses_weak_passwords_at_create_and_reset() {
    let app = spawn_app().await;
    clerks(&app).await;
    let token = admin_token(&app).await;
    for (candidate, reason) in refused_for(None) {
        let (status, answer) = api(
            &app,
            reqwest::Method::POST,
            "/api/v1/users",
            &token,
            json!({ "username": "jsmith", "display_name": "Jane Smith", "role": "Clerks",
                    "password": candidate, "must_change_password": true }),
        )
        .await;
        assert_json_refuses(status, &answer, "invalid_field", &candidate, reason);
        assert_eq!(answer["field"], "password", "{answer}");
        assert_eq!(hash_of(&app, "jsmith").await, None, "not created");
    }
    let (status, answer) = api(
        &app,
        reqwest::Method::POST,
        "/api/v1/users",
        &token,
        json!({ "username": "jsmith", "display_name": "Jane Smith", "role": "Clerks",
                "password": PASSPHRASE, "must_change_password": false }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");

    // The reset: "an admin gets the same refusal", the current password included.
    let before = hash_of(&app, "jsmith").await;
    assert!(before.is_some());
    for (candidate, reason) in refused_for(Some(PASSPHRASE)) {
        let (status, answer) = api(
            &app,
            reqwest::Method::PATCH,
            "/api/v1/users/jsmith",
            &token,
            json!({ "password": candidate }),
        )
        .await;
        assert_json_refuses(status, &answer, "invalid_field", &candidate, reason);
        assert_eq!(hash_of(&app, "jsmith").await, before, "{candidate}");
    }
    let (status, answer) = api(
        &app,
        reqwest::Method::PATCH,
        "/api/v1/users/jsmith",
        &token,
        json!({ "password": "purple giraffes nap under warm bridges" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_ne!(hash_of(&app, "jsmith").await, before);
    app.stop().await;
}

// ----- an administrator: console -----

/// Edit User for `jsmith`, with `password` in its password field.
async fn edit_user(app: &TestApp, password: &str) -> Page {
    submit(
        app,
        "/admin/users/jsmith",
        "/admin/users/jsmith",
        &[
            ("display_name", "Jane Smith"),
            ("email", ""),
            ("role", "Clerks"),
            ("active", "on"),
            ("password", password),
        ],
    )
    .await
}

#[tokio::test]
async fn the_console_refuses_weak_passwords_at_add_user_and_edit_user() {
    let app = spawn_app().await;
    clerks(&app).await;
    sign_in_admin(&app).await;
    for (candidate, reason) in refused_for(None) {
        let page = submit(
            &app,
            "/admin/users/new",
            "/admin/users/new",
            &[
                ("username", "jsmith"),
                ("display_name", "Jane Smith"),
                ("email", ""),
                ("role", "Clerks"),
                ("password", &candidate),
            ],
        )
        .await;
        assert_page_refuses(&page, &candidate, reason);
        page.assert_contains(r#"id="password-error""#);
        assert_eq!(hash_of(&app, "jsmith").await, None, "not created");
    }
    let created = submit(
        &app,
        "/admin/users/new",
        "/admin/users/new",
        &[
            ("username", "jsmith"),
            ("display_name", "Jane Smith"),
            ("email", ""),
            ("role", "Clerks"),
            ("password", PASSPHRASE),
        ],
    )
    .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);

    let before = hash_of(&app, "jsmith").await;
    for (candidate, reason) in refused_for(Some(PASSPHRASE)) {
        let page = edit_user(&app, &candidate).await;
        assert_page_refuses(&page, &candidate, reason);
        page.assert_contains(r#"id="password-error""#);
        assert_eq!(hash_of(&app, "jsmith").await, before, "{candidate}");
    }
    let saved = edit_user(&app, "purple giraffes nap under warm bridges").await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_ne!(hash_of(&app, "jsmith").await, before);
    app.stop().await;
}

// ----- an administrator: command line -----

/// Runs `twostep ARGS --data-dir <the app's data dir>` with `stdin`; exit code and stderr.
async fn cli(app: &TestApp, args: &[&str], stdin: &str) -> (i32, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_twostep"))
        .args(args)
        .args(["--data-dir", app.dir.path().to_str().unwrap()])
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.as_bytes()).await.unwrap();
    drop(pipe);
    let output = child.wait_with_output().await.unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[tokio::test]
async fn the_command_line_refuses_weak_passwords_at_user_add_and_reset_password() {
    let app = spawn_app().await;
    clerks(&app).await;
    let add = [
        "user",
        "add",
        "jsmith",
        "--display-name",
        "Jane Smith",
        "--role",
        "Clerks",
        "--password-stdin",
    ];
    for (candidate, reason) in refused_for(None) {
        let (code, stderr) = cli(&app, &add, &format!("{candidate}\n")).await;
        assert_eq!(code, 1, "{candidate}: {stderr}");
        assert!(stderr.contains(reason), "{candidate}: {stderr}");
        assert!(!stderr.contains(&candidate), "{stderr}");
        assert_eq!(hash_of(&app, "jsmith").await, None, "not created");
    }
    let (code, stderr) = cli(&app, &add, &format!("{PASSPHRASE}\n")).await;
    assert_eq!(code, 0, "{stderr}");

    let before = hash_of(&app, "jsmith").await;
    let reset = ["user", "reset-password", "jsmith", "--password-stdin"];
    for (candidate, reason) in refused_for(Some(PASSPHRASE)) {
        let (code, stderr) = cli(&app, &reset, &format!("{candidate}\n")).await;
        assert_eq!(code, 1, "{candidate}: {stderr}");
        assert!(stderr.contains(reason), "{candidate}: {stderr}");
        assert!(!stderr.contains(&candidate), "{stderr}");
        assert_eq!(hash_of(&app, "jsmith").await, before, "{candidate}");
    }
    let (code, stderr) = cli(&app, &reset, "purple giraffes nap under warm bridges\n").await;
    assert_eq!(code, 0, "{stderr}");
    assert_ne!(hash_of(&app, "jsmith").await, before);
    // A generated password passes the rules.
    let (code, stderr) = cli(
        &app,
        &["user", "reset-password", "jsmith", "--generate-password"],
        "",
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    app.stop().await;
}

// ----- the account page (SPEC 10 "/account": change password) -----

#[tokio::test]
async fn the_account_api_and_page_refuse_weak_and_current_passwords() {
    let app = spawn_app().await;
    app.user("jsmith", &clerks(&app).await, true).await;
    let current = TestApp::password_of("jsmith");
    let (status, answer) = app
        .post(
            "/api/v1/signin",
            json!({ "username": "jsmith", "password": current }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let session = answer["session"].as_str().unwrap().to_owned();
    let before = hash_of(&app, "jsmith").await;

    for (candidate, reason) in refused_for(Some(&current)) {
        let (status, answer) = app
            .post_with(
                "/api/v1/account/password",
                json!({ "current_password": current, "new_password": candidate }),
                &[("Authorization", &format!("Bearer {session}"))],
            )
            .await;
        assert_json_refuses(status, &answer, "invalid_password", &candidate, reason);
        assert_eq!(
            hash_of(&app, "jsmith").await,
            before,
            "{candidate} was stored"
        );
    }

    let signed = sign_in(&app, "jsmith", &current).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    for (candidate, reason) in refused_for(Some(&current)) {
        let page = submit(
            &app,
            "/account",
            "/account/password",
            &[
                ("current_password", current.as_str()),
                ("new_password", candidate.as_str()),
                ("confirm_password", candidate.as_str()),
            ],
        )
        .await;
        assert_page_refuses(&page, &candidate, reason);
        assert_eq!(
            hash_of(&app, "jsmith").await,
            before,
            "{candidate} was stored"
        );
    }

    let page = submit(
        &app,
        "/account",
        "/account/password",
        &[
            ("current_password", current.as_str()),
            ("new_password", PASSPHRASE),
            ("confirm_password", PASSPHRASE),
        ],
    )
    .await;
    assert!(
        page.status.is_redirection() || page.status.is_success(),
        "{}",
        page.body
    );
    assert_ne!(
        hash_of(&app, "jsmith").await,
        before,
        "the passphrase was not stored"
    );
    let (status, answer) = app
        .post(
            "/api/v1/signin",
            json!({ "username": "jsmith", "password": PASSPHRASE }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    app.stop().await;
}
