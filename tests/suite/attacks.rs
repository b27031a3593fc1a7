//! Protections under attack and fault (SPEC section 4): timing does not tell users apart,
//! brute force stops at the lockout, a code is accepted once however many race for it,
//! a killed server loses nothing it acknowledged, and bad input gets a clear 4xx.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use twostep::domain::{new_device_otp, DeviceOtp, OtpMethod, PromptMode, Require2fa, SettingKey};

use crate::admin_api::{admin, call};
use crate::helpers::{free_port, spawn_app, spawn_app_with, AppOptions, NowTs, TestApp, TestDb};

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn password(app: &TestApp, username: &str, password: &str) -> (StatusCode, Value) {
    app.post(
        "/api/v1/signin",
        json!({"username": username, "password": password}),
    )
    .await
}

#[tokio::test]
async fn unknown_users_and_wrong_passwords_take_the_same_time_and_get_the_same_answer() {
    // Failure Delay at its default, 500 ms.
    let app = spawn_app_with(AppOptions {
        keep_failure_delay: true,
        ..AppOptions::default()
    })
    .await;
    let role = app.role("Staff", Require2fa::No, false, false).await;
    app.user("jane", &role, false).await;
    // 12 failures stay below the threshold: the known user is never locked here.
    app.settings(&[(SettingKey::LockoutThreshold, "100")]).await;
    let (mut unknown, mut known) = (Vec::new(), Vec::new());
    let mut answers = std::collections::HashSet::new();
    let timed = |name: &'static str| {
        let app = &app;
        async move {
            let started = tokio::time::Instant::now();
            let (status, body) = password(app, name, "not the password").await;
            (started.elapsed().as_secs_f64(), status, body)
        }
    };
    for round in 0..12 {
        // Interleaved, one of each at a time, in alternating order.
        let ((a, sa, ba), (b, sb, bb)) = if round % 2 == 0 {
            tokio::join!(timed("nobody"), timed("jane"))
        } else {
            let (b, a) = tokio::join!(timed("jane"), timed("nobody"));
            (a, b)
        };
        assert_eq!(
            (sa, sb),
            (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
        );
        unknown.push(a);
        known.push(b);
        answers.insert(ba.to_string());
        answers.insert(bb.to_string());
    }
    let (u, k) = (median(unknown), median(known));
    let difference = (u - k).abs() / u.min(k);
    assert!(
        difference < 0.10,
        "median unknown user {u:.3} s, known user {k:.3} s: {:.1}% apart",
        difference * 100.0
    );
    assert!(u >= 0.5 && k >= 0.5, "both wait out the Failure Delay");
    assert_eq!(answers.len(), 1, "one answer for both: {answers:?}");
    app.stop().await;
}

/// A user of a Force role with a TOTP device (Every Login).
async fn totp_user(app: &TestApp, name: &str) -> twostep::otp::Totp {
    let role = app.role("Clinician", Require2fa::Force, false, false).await;
    let user = app.user(name, &role, true).await;
    app.enroll_totp(&user, PromptMode::EveryLogin).await
}

async fn code_step(app: &TestApp, transaction: &Value, code: &str) -> (StatusCode, Value) {
    app.post(
        "/api/v1/signin/otp",
        json!({"transaction": transaction, "code": code}),
    )
    .await
}

/// Two wrong codes and a wrong password: three failures of jane's.
async fn lock_out(app: &TestApp) {
    for _ in 0..2 {
        let (_, started) = password(app, "jane", &TestApp::password_of("jane")).await;
        let (status, _) = code_step(app, &started["transaction"], "000000").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = password(app, "jane", "wrong").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn after_the_threshold_the_right_password_and_code_wait_for_expiry_or_unlock() {
    let app = spawn_app().await;
    app.settings(&[
        (SettingKey::LockoutThreshold, "3"),
        (SettingKey::LockoutMinutes, "15"),
    ])
    .await;
    let totp = totp_user(&app, "jane").await;
    let right = TestApp::password_of("jane");
    lock_out(&app).await;
    let (status, refused) = password(&app, "jane", &right).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "locked: {refused}");
    assert_eq!(refused["code"], "invalid_credentials");

    // 14 minutes later still locked; after 15 the right password and code work.
    app.clock.advance_seconds(14 * 60);
    assert_eq!(
        password(&app, "jane", &right).await.0,
        StatusCode::UNAUTHORIZED
    );
    app.clock.advance_seconds(60);
    let (_, started) = password(&app, "jane", &right).await;
    let (status, done) = code_step(&app, &started["transaction"], &app.totp_now(&totp)).await;
    assert_eq!(
        (status, &done["status"]),
        (StatusCode::OK, &json!("signed_in"))
    );

    // Locked again: an administrator's Unlock ends it at once.
    app.clock.advance_seconds(30);
    lock_out(&app).await;
    assert_eq!(
        password(&app, "jane", &right).await.0,
        StatusCode::UNAUTHORIZED
    );
    let token = admin(&app).await;
    let (status, _) = call(
        &app,
        Method::POST,
        "/api/v1/users/jane/unlock",
        Some(&token),
        None,
    )
    .await;
    assert!(status.is_success(), "{status}");
    app.clock.advance_seconds(30);
    let (_, started) = password(&app, "jane", &right).await;
    let (status, _) = code_step(&app, &started["transaction"], &app.totp_now(&totp)).await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}

async fn fifty_race_for_one_code(app: &TestApp) {
    let totp = totp_user(app, "jane").await;
    app.settings(&[(SettingKey::LockoutThreshold, "100")]).await;
    let mut transactions = Vec::new();
    for _ in 0..50 {
        let (_, started) = password(app, "jane", &TestApp::password_of("jane")).await;
        assert_eq!(started["status"], "otp_required");
        transactions.push(started["transaction"].clone());
    }
    let code = app.totp_now(&totp);
    // All 50 in flight at once.
    let answers = futures_util::future::join_all(
        transactions
            .iter()
            .map(|transaction| code_step(app, transaction, &code)),
    )
    .await;
    let accepted = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    let refused = answers
        .iter()
        .filter(|(s, b)| *s == StatusCode::UNAUTHORIZED && b["code"] == "invalid_credentials")
        .count();
    assert_eq!((accepted, refused), (1, 49), "{answers:?}");

    // An older step after a newer one: the code of 30 s ago (inside the skew) is refused.
    let (_, started) = password(app, "jane", &TestApp::password_of("jane")).await;
    let earlier = totp
        .generate_at(app.clock.now_ts().unix_seconds() - 30)
        .as_str()
        .to_owned();
    let (status, _) = code_step(app, &started["transaction"], &earlier).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The next step is accepted.
    app.clock.advance_seconds(30);
    let (_, started) = password(app, "jane", &TestApp::password_of("jane")).await;
    let (status, _) = code_step(app, &started["transaction"], &app.totp_now(&totp)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn fifty_concurrent_submissions_of_one_totp_code_sign_in_once_on_sqlite() {
    let app = spawn_app().await;
    fifty_race_for_one_code(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn fifty_concurrent_submissions_of_one_totp_code_sign_in_once_on_postgresql() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let app = spawn_app_with(AppOptions {
        database: Some(db.url.clone()),
        ..AppOptions::default()
    })
    .await;
    fifty_race_for_one_code(&app).await;
    app.stop().await;
    db.finish().await;
}

/// The database of a data folder, opened by the test beside the server (never created).
async fn store_beside(data: &std::path::Path) -> twostep::store::Store {
    twostep::store::Store::open_existing(&twostep::store::StoreOptions {
        database_url: format!("sqlite://{}", data.join("twostep.db").display()),
        key: twostep::store::KeySource::File(data.join("twostep.key")),
        max_connections: Some(2),
    })
    .await
    .expect("the database opens")
    .expect("the database exists")
}

/// A confirmed HOTP device (Every Login) for `user`; the next counter is 1.
async fn hotp_device(
    store: &twostep::store::Store,
    user: &twostep::domain::User,
) -> twostep::otp::Hotp {
    let now = crate::helpers::START;
    let secret = twostep::otp::OtpSecret::generate(&mut rand::rngs::OsRng);
    let pending = store
        .create_pending_device(
            user.id,
            &twostep::store::NewDevice {
                prompt_mode: PromptMode::EveryLogin,
                otp: new_device_otp(OtpMethod::Hotp, secret),
            },
            now,
        )
        .await
        .unwrap();
    let DeviceOtp::Hotp { hotp, .. } = pending.otp.clone() else {
        unreachable!()
    };
    let used = pending.check(&hotp.generate(0), now, 0, 0).unwrap();
    assert!(store.confirm_device(&pending, used, now).await.unwrap());
    hotp
}

/// The next HOTP counter stored for `user`'s confirmed device.
async fn stored_counter(store: &twostep::store::Store, user: &twostep::domain::User) -> u64 {
    match store.confirmed_device(user.id).await.unwrap() {
        Some(twostep::domain::Device {
            otp: DeviceOtp::Hotp { counter, .. },
            ..
        }) => counter,
        other => panic!("{} lost its device: {other:?}", user.username.as_str()),
    }
}

#[tokio::test]
async fn a_server_killed_during_sign_ins_loses_nothing_it_acknowledged() {
    use crate::email::ServerProcess;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = ServerProcess::start_with(data.path(), port, &[]).await;
    // Eight users with HOTP devices, written beside the running server.
    let store = store_beside(data.path()).await;
    let role = store
        .create_role(
            &twostep::domain::RoleName::parse("Clinician").unwrap(),
            twostep::domain::RoleSecurity::new(Require2fa::Force, false, false).unwrap(),
            &Default::default(),
            twostep::domain::SessionLimits::DEFAULT,
            crate::helpers::START,
        )
        .await
        .unwrap();
    let hasher = twostep::password::PasswordHasher::new(1).unwrap();
    let mut users = Vec::new();
    for i in 0..8 {
        let name = format!("user{i}");
        let hash = hasher
            .hash(&twostep::password::Password::new_password(TestApp::password_of(&name)).unwrap())
            .await
            .unwrap();
        let user = store
            .create_user(
                &twostep::store::NewUser {
                    username: twostep::domain::Username::parse(&name).unwrap(),
                    display_name: twostep::domain::DisplayName::parse(&name).unwrap(),
                    email: None,
                    role_id: role.id,
                    password_hash: hash,
                    must_change_password: false,
                },
                crate::helpers::START,
            )
            .await
            .unwrap();
        let hotp = hotp_device(&store, &user).await;
        users.push((name, user, hotp));
    }

    // A stream of complete sign-ins per user, each acknowledging the counter it used.
    let stop = Arc::new(AtomicBool::new(false));
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut streams = Vec::new();
    for (name, _, hotp) in &users {
        let (stop, client, base, name, hotp) = (
            stop.clone(),
            client.clone(),
            base.clone(),
            name.clone(),
            hotp.clone(),
        );
        streams.push(tokio::spawn(async move {
            let mut next = 1u64;
            let mut acknowledged = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let Ok(response) = client
                    .post(format!("{base}/api/v1/signin"))
                    .json(&json!({"username": name, "password": TestApp::password_of(&name)}))
                    .send()
                    .await
                else {
                    break;
                };
                let Ok(started) = response.json::<Value>().await else {
                    break;
                };
                let code = hotp.generate(next);
                let Ok(response) = client
                    .post(format!("{base}/api/v1/signin/otp"))
                    .json(&json!({"transaction": started["transaction"], "code": code.as_str()}))
                    .send()
                    .await
                else {
                    break;
                };
                if response.status() == StatusCode::OK {
                    // Acknowledged: counter `next` is spent; the store must say > next.
                    acknowledged = next + 1;
                }
                next += 1;
            }
            acknowledged
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    server.kill_9();
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    for stream in streams {
        acknowledged.push(stream.await.unwrap());
    }
    assert!(
        acknowledged.iter().all(|&a| a >= 2),
        "every stream completed sign-ins before the kill: {acknowledged:?}"
    );
    drop(store);

    // Restart on the same folder: the database opens and nothing went backwards.
    let server = ServerProcess::start_with(data.path(), port, &[]).await;
    let store = store_beside(data.path()).await;
    for ((name, user, hotp), acknowledged) in users.iter().zip(&acknowledged) {
        let counter = stored_counter(&store, user).await;
        assert!(
            counter >= *acknowledged,
            "{name}: stored counter {counter} is behind the acknowledged {acknowledged}"
        );
        assert!(store
            .user_by_id(user.id)
            .await
            .unwrap()
            .is_some_and(|u| u.active));
        // An acknowledged code is not accepted again; the next one is.
        let replay = hotp.generate(acknowledged - 1);
        let (status, _) = sign_in_with_code(&client, &base, name, replay.as_str()).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{name}: replay after restart"
        );
        let fresh = hotp.generate(counter);
        let (status, body) = sign_in_with_code(&client, &base, name, fresh.as_str()).await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
    }
    drop(server);
    // The log of both runs (a file, not a terminal): plain text, one line per request,
    // no secret.
    let log = std::fs::read_to_string(data.path().join("server.log")).unwrap();
    assert!(log.contains("served"), "{log}");
    assert!(!log.contains('\u{1b}'), "no terminal colours in a log file");
    for (name, _, _) in &users {
        assert!(
            !log.contains(&TestApp::password_of(name)),
            "no password in the log"
        );
    }
}

async fn sign_in_with_code(
    client: &reqwest::Client,
    base: &str,
    name: &str,
    code: &str,
) -> (StatusCode, Value) {
    let started: Value = client
        .post(format!("{base}/api/v1/signin"))
        .json(&json!({"username": name, "password": TestApp::password_of(name)}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let response = client
        .post(format!("{base}/api/v1/signin/otp"))
        .json(&json!({"transaction": started["transaction"], "code": code}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// (what it is, method, path, content type, body, bearer token, expected status)
type Case<'a> = (
    &'a str,
    Method,
    &'a str,
    &'a str,
    Vec<u8>,
    Option<&'a str>,
    u16,
);

/// A raw request: any body bytes, any content type.
async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
    token: Option<&str>,
) -> (StatusCode, String) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", app.address))
        .header("content-type", content_type)
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("an answer");
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_the_server_carries_on() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let settings_before = app.store.settings().await.unwrap();
    let json = "application/json";
    let form = "application/x-www-form-urlencoded";
    let megabyte = "a".repeat(1 << 20);
    let mut cases: Vec<Case> = vec![
        // Oversized: a 1 MB username, as JSON and as a form.
        ("1 MB JSON username", Method::POST, "/api/v1/signin", json,
         format!(r#"{{"username":"{megabyte}","password":"x"}}"#).into_bytes(), None, 413),
        ("1 MB form username", Method::POST, "/signin", form,
         format!("username={megabyte}&password=x").into_bytes(), None, 413),
        // Not UTF-8.
        ("invalid UTF-8 JSON", Method::POST, "/api/v1/signin", json,
         b"{\"username\":\"\xff\xfe\",\"password\":\"x\"}".to_vec(), None, 400),
        ("invalid UTF-8 form", Method::POST, "/signin", form,
         b"username=%ff%fe&password=x".to_vec(), None, 403),
        // Wrong content types.
        ("XML body", Method::POST, "/api/v1/signin", "application/xml",
         b"<signin/>".to_vec(), None, 415),
        ("form to the JSON API", Method::POST, "/api/v1/signin", form,
         b"username=a&password=b".to_vec(), None, 415),
        ("JSON to a settings PATCH as text", Method::PATCH, "/api/v1/settings", "text/plain",
         b"{\"otp_length\": 8}".to_vec(), Some(&token), 415),
        // Control characters and SQL metacharacters: just wrong credentials.
        ("control characters", Method::POST, "/api/v1/signin", json,
         br#"{"username":"ja\u0000ne\r\n","password":"\u0007"}"#.to_vec(), None, 401),
        ("SQL metacharacters", Method::POST, "/api/v1/signin", json,
         br#"{"username":"' OR 1=1; DROP TABLE users; --","password":"' OR ''='"}"#.to_vec(), None, 401),
        ("SQL in a new username", Method::POST, "/api/v1/users", json,
         br#"{"username":"x'; DROP TABLE users;--","display_name":"X","role":"Staff","password":"a long enough password"}"#.to_vec(),
         Some(&token), 422),
        // Absurd numbers in settings.
        ("a huge number", Method::PATCH, "/api/v1/settings", json,
         br#"{"otp_length": 99999999999999999999999999}"#.to_vec(), Some(&token), 422),
        ("a negative number", Method::PATCH, "/api/v1/settings", json,
         br#"{"lockout_threshold": -1}"#.to_vec(), Some(&token), 422),
        ("a float", Method::PATCH, "/api/v1/settings", json,
         br#"{"failure_delay_ms": 1e308}"#.to_vec(), Some(&token), 422),
        ("out of range", Method::PATCH, "/api/v1/settings", json,
         br#"{"otp_valid_seconds": 86401, "use_2fa": 2}"#.to_vec(), Some(&token), 422),
        ("a string for a number", Method::PATCH, "/api/v1/settings", json,
         br#"{"hotp_window": "NaN"}"#.to_vec(), Some(&token), 422),
        ("nesting", Method::PATCH, "/api/v1/settings", json,
         format!("{}1{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(), Some(&token), 422),
        ("truncated JSON", Method::POST, "/api/v1/signin", json,
         br#"{"username":"#.to_vec(), None, 400),
    ];
    // An unknown path with metacharacters names nothing.
    cases.push((
        "SQL in a path",
        Method::GET,
        "/api/v1/users/'%20OR%201=1--",
        json,
        Vec::new(),
        Some(&token),
        404,
    ));
    for (name, method, path, content_type, body, bearer, expected) in cases {
        let (status, text) = raw(&app, method, path, content_type, body, bearer).await;
        assert_eq!(status.as_u16(), expected, "{name}: {text}");
        assert!(
            !text.contains("panicked") && !text.contains("sqlx"),
            "{name}: {text}"
        );
        if path.starts_with("/api/") {
            let body: Value = serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{name}: a JSON error, got {text:?}"));
            assert!(body["code"].is_string(), "{name}: {body}");
        }
    }
    // Nothing changed, and the server is fine.
    let settings_after = app.store.settings().await.unwrap();
    assert_eq!(
        format!("{settings_before:?}"),
        format!("{settings_after:?}")
    );
    let (status, _) = app.get_json("/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, users) = app
        .get_json("/api/v1/users?q=%27%20OR%201%3D1--", Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(users["total"], 0, "a search for SQL finds nothing: {users}");
    let (status, answer) = password(&app, "admin", &app.admin_password).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    app.stop().await;
}
