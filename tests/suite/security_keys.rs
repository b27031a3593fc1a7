//! Security keys and passkeys through the JSON API (SPEC 14), with the software
//! authenticator of `soft_key` (ES256, "none" attestation): enrollment at sign-in, the
//! device step answered by a key, passkey sign-in, the account's keys, and every refusal
//! the issue names (a replay, another challenge, another relying party, a counter that
//! did not grow, another user's key, no user verification), each a generic 401 that
//! counts as a failure.

use reqwest::StatusCode;
use serde_json::{json, Value};
use twostep::domain::{AuditEvent, PromptMode, Require2fa, SettingKey, User};

use crate::helpers::{spawn_app_with, AppOptions, NowTs, TestApp};
use crate::soft_key::{SoftKey, Tweak};

/// The public URL of these tests: the RP ID is its host.
const PUBLIC_URL: &str = "https://signin.hospital.test";

async fn keys_app() -> TestApp {
    spawn_app_with(AppOptions {
        public_url: Some(PUBLIC_URL.into()),
        ..AppOptions::default()
    })
    .await
}

async fn password(app: &TestApp, name: &str) -> Value {
    let (status, answer) = app
        .post(
            "/api/v1/signin",
            json!({ "username": name, "password": TestApp::password_of(name) }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

/// A user of a Force role (no otp_required), with an email address.
async fn force_user(app: &TestApp, name: &str) -> User {
    let role = app.role("Clinician", Require2fa::Force, false, false).await;
    app.user(name, &role, true).await
}

/// Enrolls a key for `name` at sign-in through the JSON API (the first sign-in of a
/// Force user), checking each answer; returns the key and the recovery codes shown.
async fn enroll_with_codes(app: &TestApp, name: &str, mode: PromptMode) -> (SoftKey, Vec<String>) {
    let started = password(app, name).await;
    assert_eq!(started["status"], "enroll", "{started}");
    assert_eq!(started["required"], true);
    let methods = started["methods"].as_array().unwrap();
    assert!(methods.contains(&json!("webauthn")), "{started}");
    let (status, options) = app
        .post(
            "/api/v1/signin/enroll",
            json!({ "transaction": started["transaction"], "method": "webauthn",
                    "prompt_mode": mode.as_str() }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{options}");
    let public_key = &options["public_key"];
    assert_eq!(public_key["rp"]["id"], "signin.hospital.test");
    assert_eq!(
        public_key["authenticatorSelection"]["userVerification"],
        "required"
    );
    let mut key = SoftKey::new(PUBLIC_URL);
    let credential = key.register(public_key);
    let (status, done) = app
        .post(
            "/api/v1/signin/enroll/confirm",
            json!({ "transaction": started["transaction"], "credential": credential,
                    "name": "Blue key" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "signed_in", "{done}");
    let codes: Vec<String> = done["recovery_codes"]
        .as_array()
        .expect("a first set of recovery codes")
        .iter()
        .map(|code| code.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    (key, codes)
}

async fn enroll_at_sign_in(app: &TestApp, name: &str, mode: PromptMode) -> SoftKey {
    enroll_with_codes(app, name, mode).await.0
}

/// The device step's options for a transaction.
async fn key_options(app: &TestApp, transaction: &Value) -> Value {
    let (status, options) = app
        .post(
            "/api/v1/signin/webauthn/options",
            json!({ "transaction": transaction }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{options}");
    options["public_key"].clone()
}

async fn answer(app: &TestApp, transaction: &Value, credential: &Value) -> (StatusCode, Value) {
    app.post(
        "/api/v1/signin/webauthn",
        json!({ "transaction": transaction, "credential": credential }),
    )
    .await
}

async fn failed_count(app: &TestApp, user: &User) -> u32 {
    app.store
        .user_by_id(user.id)
        .await
        .unwrap()
        .unwrap()
        .failed_count
}

async fn audit_details(app: &TestApp, event: AuditEvent) -> Vec<String> {
    app.store
        .audit_entries(&twostep::store::AuditQuery {
            event: Some(event),
            limit: 1000,
            ..twostep::store::AuditQuery::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.detail)
        .collect()
}

/// SPEC 14: a Force user enrolls a key at sign-in, then the device step takes the key's
/// answer instead of a code; the counter moves on and the session says `hwk`-free `otp`.
#[tokio::test]
async fn a_force_user_enrolls_a_key_and_signs_in_with_it_instead_of_a_code() {
    let app = keys_app().await;
    let user = force_user(&app, "jane").await;
    let mut key = enroll_at_sign_in(&app, "jane", PromptMode::EveryLogin).await;
    let stored = app.store.security_keys(user.id).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].key.name.as_str(), "Blue key");
    assert_eq!(stored[0].key.prompt_mode, PromptMode::EveryLogin);
    assert!(stored[0].key.discoverable, "credProps rk: a passkey");
    assert!(audit_details(&app, AuditEvent::SecurityKeyAdded)
        .await
        .iter()
        .any(|detail| detail.contains("name=Blue key")));

    let started = password(&app, "jane").await;
    assert_eq!(started["status"], "otp_required", "{started}");
    assert_eq!(started["method"], "device");
    assert_eq!(started["security_key"], true);
    let options = key_options(&app, &started["transaction"]).await;
    assert_eq!(options["rpId"], "signin.hospital.test");
    assert_eq!(options["userVerification"], "required");
    let credential = key.assert(&options);
    let (status, done) = answer(&app, &started["transaction"], &credential).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "signed_in");
    let (status, me) = app.get_json("/api/v1/me", done["session"].as_str()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["two_step"], "enabled");
    let stored = app.store.security_keys(user.id).await.unwrap();
    assert_eq!(stored[0].sign_count, 1);
    assert!(stored[0].key.last_used_at.is_some());
    assert!(audit_details(&app, AuditEvent::OtpAccepted)
        .await
        .contains(&"security key".to_owned()));
    app.stop().await;
}

/// Makes a refused answer from jane's key, mark's key, the options and older options.
type MakeAnswer = Box<dyn Fn(&mut SoftKey, &mut SoftKey, &Value, &Value) -> Value>;

/// Each refusal the issue lists is the generic 401 and counts as a failure; the right
/// answer afterwards still works (nothing stored was spoiled).
#[tokio::test]
async fn replayed_foreign_misdirected_cloned_and_unverified_assertions_are_refused_and_counted() {
    let app = keys_app().await;
    let jane = force_user(&app, "jane").await;
    let mut key = enroll_at_sign_in(&app, "jane", PromptMode::EveryLogin).await;
    let _mark = force_user(&app, "mark").await;
    let mut marks_key = enroll_at_sign_in(&app, "mark", PromptMode::EveryLogin).await;
    app.settings(&[(SettingKey::LockoutThreshold, "20")]).await;

    // A good sign-in, whose answer is then replayed on a new transaction.
    let first = password(&app, "jane").await;
    let options = key_options(&app, &first["transaction"]).await;
    let good = key.assert(&options);
    let (status, _) = answer(&app, &first["transaction"], &good).await;
    assert_eq!(status, StatusCode::OK);

    let mut refusals: Vec<(&str, MakeAnswer)> = Vec::new();
    refusals.push((
        "a replayed assertion",
        Box::new(move |_, _, _, _| good.clone()),
    ));
    refusals.push((
        "an assertion for another challenge",
        Box::new(|key, _, _, older| key.assert(older)),
    ));
    refusals.push((
        "a wrong RP ID hash",
        Box::new(|key, _, options, _| {
            key.assert_with(
                options,
                &Tweak {
                    rp_id: Some("evil.example".into()),
                    ..Tweak::default()
                },
            )
        }),
    ));
    refusals.push((
        "a lower signature counter",
        Box::new(|key, _, options, _| {
            key.assert_with(
                options,
                &Tweak {
                    counter: Some(1),
                    ..Tweak::default()
                },
            )
        }),
    ));
    refusals.push((
        "a credential of another user",
        Box::new(|_, other, options, _| other.assert(options)),
    ));
    refusals.push((
        "no user verification",
        Box::new(|key, _, options, _| {
            key.assert_with(
                options,
                &Tweak {
                    user_verified: false,
                    ..Tweak::default()
                },
            )
        }),
    ));
    for (what, make) in &refusals {
        let started = password(&app, "jane").await;
        let older = key_options(&app, &started["transaction"]).await;
        // A second options call replaces the first challenge.
        let options = key_options(&app, &started["transaction"]).await;
        assert_ne!(older["challenge"], options["challenge"]);
        let before = failed_count(&app, &jane).await;
        let credential = make(&mut key, &mut marks_key, &options, &older);
        let (status, refused) = answer(&app, &started["transaction"], &credential).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {refused}");
        assert_eq!(refused["code"], "invalid_credentials", "{what}");
        assert_eq!(
            failed_count(&app, &jane).await,
            before + 1,
            "{what} counted"
        );
    }
    // A challenge is single use: once answered (here by a refused answer), a second
    // answer to it, even the right one, finds no challenge.
    let started = password(&app, "jane").await;
    let options = key_options(&app, &started["transaction"]).await;
    let unverified = key.assert_with(
        &options,
        &Tweak {
            user_verified: false,
            ..Tweak::default()
        },
    );
    let (status, _) = answer(&app, &started["transaction"], &unverified).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = answer(&app, &started["transaction"], &key.assert(&options)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the challenge was used");
    let details = audit_details(&app, AuditEvent::OtpRefused).await;
    for expected in [
        "security key: no waiting challenge (replayed or expired)",
        "security key: assertion does not verify",
        "security key: signature counter did not grow (cloned key?)",
        "security key: user not verified (no PIN or fingerprint)",
    ] {
        assert!(
            details.iter().any(|detail| detail == expected),
            "{expected} in {details:?}"
        );
    }
    // The key still works, and a success starts the count again.
    let started = password(&app, "jane").await;
    let options = key_options(&app, &started["transaction"]).await;
    let (status, done) = answer(&app, &started["transaction"], &key.assert(&options)).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(failed_count(&app, &jane).await, 0);
    app.stop().await;
}

/// A key without user verification cannot be registered: the clear message, and no key.
#[tokio::test]
async fn a_key_without_user_verification_is_refused_with_a_clear_message() {
    let app = keys_app().await;
    let user = force_user(&app, "jane").await;
    let started = password(&app, "jane").await;
    let (_, options) = app
        .post(
            "/api/v1/signin/enroll",
            json!({ "transaction": started["transaction"], "method": "webauthn",
                    "prompt_mode": "every_login" }),
        )
        .await;
    let mut key = SoftKey::new(PUBLIC_URL);
    let credential = key.register_with(
        &options["public_key"],
        &Tweak {
            user_verified: false,
            ..Tweak::default()
        },
    );
    let (status, refused) = app
        .post(
            "/api/v1/signin/enroll/confirm",
            json!({ "transaction": started["transaction"], "credential": credential }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["code"], "user_verification_required");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("PIN or fingerprint"),
        "{refused}"
    );
    assert!(app.store.security_keys(user.id).await.unwrap().is_empty());
    app.stop().await;
}

/// "Sign in with a passkey": no username, no password, no other step; the challenge is
/// single use; an unknown credential is the generic 401.
#[tokio::test]
async fn a_passkey_signs_in_without_username_and_password_once_per_challenge() {
    let app = keys_app().await;
    let _user = force_user(&app, "jane").await;
    let mut key = enroll_at_sign_in(&app, "jane", PromptMode::EveryLogin).await;
    let (status, options) = app.post("/api/v1/signin/passkey/options", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{options}");
    let public_key = &options["public_key"];
    assert!(public_key
        .get("allowCredentials")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty));
    let credential = key.assert(public_key);
    let body = json!({ "challenge_id": options["challenge_id"], "credential": credential });
    let (status, done) = app.post("/api/v1/signin/passkey", body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "signed_in");
    let (status, me) = app.get_json("/api/v1/me", done["session"].as_str()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["username"], "jane");
    // The same answer again: the challenge was taken.
    let (status, refused) = app.post("/api/v1/signin/passkey", body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    assert_eq!(refused["code"], "invalid_credentials");
    // A key nobody registered.
    let (_, options) = app.post("/api/v1/signin/passkey/options", json!({})).await;
    let mut stranger = SoftKey::new(PUBLIC_URL);
    let _ = stranger.register(&json!({
        "rp": {"id": "signin.hospital.test"}, "user": {"id": "AAAAAAAAAAAAAAAAAAAAAA"},
        "challenge": "AAAA"
    }));
    let (status, refused) = app
        .post(
            "/api/v1/signin/passkey",
            json!({ "challenge_id": options["challenge_id"],
                    "credential": stranger.assert(&options["public_key"]) }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    let metrics = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await;
    assert!(metrics
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("security_key"));
    app.stop().await;
}

/// SPEC 14 with SPEC 3 row 2: in network, a When-appropriate key skips the step; an
/// Every Login key does not (the strictest prompt mode applies).
#[tokio::test]
async fn in_network_a_when_appropriate_key_skips_the_step_and_an_every_login_key_does_not() {
    let app = keys_app().await;
    let jane = force_user(&app, "jane").await;
    let (_key, codes) = enroll_with_codes(&app, "jane", PromptMode::WhenAppropriate).await;
    app.settings(&[(SettingKey::BypassEnabled, "true")]).await;
    let rule = twostep::domain::IpRule {
        network: twostep::domain::IpNetwork::parse("127.0.0.1").unwrap(),
        bypass_2fa: true,
        note: "ward".into(),
    };
    app.store
        .add_ip_rule(&rule, app.clock.now_ts())
        .await
        .unwrap();
    let inside = password(&app, "jane").await;
    assert_eq!(inside["status"], "signed_in", "{inside}");

    let session = session_of(&app, &jane).await;
    let _second = add_key(&app, &session, PromptMode::EveryLogin, Some(&codes[0])).await;
    let inside = password(&app, "jane").await;
    assert_eq!(inside["status"], "otp_required", "{inside}");
    assert_eq!(inside["security_key"], true);
    app.stop().await;
}

/// A session of `user` made directly (as a finished sign-in makes it).
async fn session_of(app: &TestApp, user: &User) -> String {
    let token = twostep::crypto::Token::generate(&mut rand::rngs::OsRng);
    let now = app.clock.now_ts();
    app.store
        .create_session(
            &token.hash(),
            user.id,
            "127.0.0.1",
            twostep::domain::oidc::Authentication {
                password: true,
                otp: true,
                hardware_key: false,
                temporary_access: false,
            },
            now,
            now.plus_seconds(3600),
        )
        .await
        .unwrap();
    token.as_str().to_owned()
}

async fn add_key(
    app: &TestApp,
    session: &str,
    mode: PromptMode,
    proof: Option<&str>,
) -> (SoftKey, Value) {
    let (status, options) = app
        .post_with(
            "/api/v1/account/device",
            json!({ "method": "webauthn", "prompt_mode": mode.as_str(), "code": proof }),
            &[("authorization", &format!("Bearer {session}"))],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{options}");
    let mut key = SoftKey::new(PUBLIC_URL);
    let credential = key.register(&options["public_key"]);
    let (status, confirmed) = app
        .post_with(
            "/api/v1/account/device/confirm",
            json!({ "credential": credential, "name": "Spare key" }),
            &[("authorization", &format!("Bearer {session}"))],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    (key, confirmed)
}

async fn account(app: &TestApp, session: &str) -> Value {
    let (status, account) = app.get_json("/api/v1/account", Some(session)).await;
    assert_eq!(status, StatusCode::OK, "{account}");
    account
}

/// The account page's keys: a second key added (fresh proof), the first removed (fresh
/// proof, a wrong one counted), renamed; at most 5; the user is told each time.
#[tokio::test]
async fn the_account_adds_a_second_key_removes_the_first_and_stops_at_five() {
    let app = keys_app().await;
    let jane = force_user(&app, "jane").await;
    let (mut first, codes) = enroll_with_codes(&app, "jane", PromptMode::EveryLogin).await;
    let session = session_of(&app, &jane).await;
    let bearer = format!("Bearer {session}");
    // Without proof: refused.
    let (status, refused) = app
        .post_with(
            "/api/v1/account/device",
            json!({ "method": "webauthn", "prompt_mode": "every_login" }),
            &[("authorization", &bearer)],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["code"], "code_required");
    let (mut second, _) = add_key(&app, &session, PromptMode::EveryLogin, Some(&codes[0])).await;
    let keys = account(&app, &session).await["security_keys"].clone();
    assert_eq!(keys.as_array().unwrap().len(), 2, "{keys}");
    assert_eq!(keys[1]["name"], "Spare key");
    let first_id = keys[0]["id"].as_i64().unwrap();

    // Removing needs fresh proof; a wrong code is a counted failure.
    let before = failed_count(&app, &jane).await;
    let (status, _) = app
        .post_with(
            &format!("/api/v1/account/keys/{first_id}/remove"),
            json!({ "code": "zzzzz-zzzzz" }),
            &[("authorization", &bearer)],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(failed_count(&app, &jane).await, before + 1);
    let (status, _) = app
        .post_with(
            &format!("/api/v1/account/keys/{first_id}/remove"),
            json!({ "code": codes[1] }),
            &[("authorization", &bearer)],
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let keys = account(&app, &session).await["security_keys"].clone();
    assert_eq!(keys.as_array().unwrap().len(), 1);
    assert!(audit_details(&app, AuditEvent::SecurityKeyRemoved)
        .await
        .iter()
        .any(|detail| detail.contains("name=Blue key")));

    // The removed key no longer signs in; the remaining one does.
    let started = password(&app, "jane").await;
    let options = key_options(&app, &started["transaction"]).await;
    let (status, _) = answer(&app, &started["transaction"], &first.assert(&options)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let started = password(&app, "jane").await;
    let options = key_options(&app, &started["transaction"]).await;
    let (status, done) = answer(&app, &started["transaction"], &second.assert(&options)).await;
    assert_eq!(status, StatusCode::OK, "{done}");

    // Renamed; a bad name is refused by field.
    let id = keys[0]["id"].as_i64().unwrap();
    let renamed = app
        .client
        .patch(format!("{}/api/v1/account/keys/{id}", app.address))
        .header("authorization", &bearer)
        .json(&json!({ "name": "Ward 7 key" }))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status(), StatusCode::NO_CONTENT);
    let bad = app
        .client
        .patch(format!("{}/api/v1/account/keys/{id}", app.address))
        .header("authorization", &bearer)
        .json(&json!({ "name": "   " }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let keys = account(&app, &session).await["security_keys"].clone();
    assert_eq!(keys[0]["name"], "Ward 7 key");

    // Up to 5 keys.
    for code in &codes[2..6] {
        add_key(&app, &session, PromptMode::EveryLogin, Some(code)).await;
    }
    assert_eq!(
        account(&app, &session).await["security_keys"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    let (status, refused) = app
        .post_with(
            "/api/v1/account/device",
            json!({ "method": "webauthn", "prompt_mode": "every_login", "code": codes[6] }),
            &[("authorization", &bearer)],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["code"], "too_many_keys");
    // The user was told of the added and removed keys.
    let outbox = app.mails().await;
    assert!(
        outbox.iter().any(|m| m.contains("security key was added")),
        "{outbox:?}"
    );
    assert!(outbox
        .iter()
        .any(|m| m.contains("security key was removed")));
    app.stop().await;
}

/// Two instances on PostgreSQL: the options come from A, the key's answer goes to B.
#[tokio::test]
async fn options_from_one_instance_are_answered_on_the_other() {
    let Some(db) = crate::helpers::TestDb::postgres().await else {
        return;
    };
    let twostep::store::KeySource::Hex(server_key) = db.key.clone() else {
        unreachable!("test databases have hex keys")
    };
    let options = AppOptions {
        database: Some(db.url.clone()),
        key: Some(server_key),
        public_url: Some(PUBLIC_URL.into()),
        ..AppOptions::default()
    };
    let a = spawn_app_with(options.clone()).await;
    let b = spawn_app_with(options).await;
    let _user = force_user(&a, "jane").await;
    // Enrollment: options from A, the new key's answer to B.
    let started = password(&a, "jane").await;
    let (_, created) = a
        .post(
            "/api/v1/signin/enroll",
            json!({ "transaction": started["transaction"], "method": "webauthn",
                    "prompt_mode": "every_login" }),
        )
        .await;
    let mut key = SoftKey::new(PUBLIC_URL);
    let (status, done) = b
        .post(
            "/api/v1/signin/enroll/confirm",
            json!({ "transaction": started["transaction"],
                    "credential": key.register(&created["public_key"]) }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    // Sign-in: options from A, assertion to B; the same answer to A again is refused.
    let started = password(&a, "jane").await;
    let options = key_options(&a, &started["transaction"]).await;
    let credential = key.assert(&options);
    let (status, done) = answer(&b, &started["transaction"], &credential).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "signed_in");
    let (status, _) = answer(&a, &started["transaction"], &credential).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Passkey: options from B, the answer to A.
    let (_, passkey) = b.post("/api/v1/signin/passkey/options", json!({})).await;
    let (status, done) = a
        .post(
            "/api/v1/signin/passkey",
            json!({ "challenge_id": passkey["challenge_id"],
                    "credential": key.assert(&passkey["public_key"]) }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    a.stop().await;
    b.stop().await;
    db.finish().await;
}

// ----- the pages, as a browser without JavaScript sees them -----

use crate::pages::{get, post, Page};

/// The app at `http://localhost:PORT` (its public URL: a host name, so keys are offered,
/// and plain http, so the test client's cookies flow; Chromium treats localhost as a
/// secure context). The second value is that URL.
pub(crate) async fn local_app() -> (TestApp, String) {
    let port = crate::helpers::free_port();
    let origin = format!("http://localhost:{port}");
    let app = spawn_app_with(AppOptions {
        port: Some(port),
        public_url: Some(origin.clone()),
        ..AppOptions::default()
    })
    .await;
    (app, origin)
}

/// The options a key form of `page` carries for the script.
fn page_options(page: &Page) -> Value {
    let marker = r#"<script type="application/json" class="webauthn-options">"#;
    let start = page.body.find(marker).expect("the key form's options") + marker.len();
    let end = start + page.body[start..].find("</script>").unwrap();
    serde_json::from_str(&page.body[start..end]).expect("options as JSON")
}

async fn submit_key(app: &TestApp, page: &Page, action: &str, fields: &[(&str, &str)]) -> Page {
    let csrf = page.csrf();
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    post(app, action, &all).await
}

/// The sign-in pages with a key, without JavaScript: each key form is there but hidden
/// (the script shows it), the options are in the page; the answer posted by the form
/// enrolls the key, answers the device step and signs in as a passkey.
#[tokio::test]
async fn the_sign_in_pages_carry_the_key_forms_and_take_their_answers() {
    let (app, origin) = local_app().await;
    let _user = force_user(&app, "jane").await;
    let signin = get(&app, "/signin").await;
    signin.assert_contains(r#"<script src="/static/webauthn.js" defer></script>"#);
    signin.assert_contains(r#"data-webauthn="passkey""#);
    signin.assert_contains("Sign in with a passkey");
    let script = get(&app, "/static/webauthn.js").await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(script.body.contains("navigator.credentials"));

    // Enroll: the choice, then the key's page.
    let started = crate::pages::sign_in(&app, "jane", &TestApp::password_of("jane")).await;
    assert_eq!(started.location(), "/signin/enroll");
    let enroll = get(&app, "/signin/enroll").await;
    enroll.assert_contains(r#"value="webauthn""#);
    enroll.assert_contains("Security key or passkey");
    let setup = submit_key(
        &app,
        &enroll,
        "/signin/enroll",
        &[("method", "webauthn"), ("prompt_mode", "every_login")],
    )
    .await;
    assert_eq!(setup.status, StatusCode::OK);
    setup.assert_contains(r#"data-webauthn="create" hidden"#);
    setup.assert_contains("choose an authenticator app instead");
    let mut key = SoftKey::new(&origin);
    let credential = key.register(&page_options(&setup)).to_string();
    let done = submit_key(
        &app,
        &setup,
        "/signin/enroll/key",
        &[("credential", &credential), ("name", "Ward key")],
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    done.assert_contains("recovery codes");
    let home = get(&app, "/").await;
    let _ = post(&app, "/signout", &[("csrf", &home.csrf())]).await;

    // The device step: a key-only user sees the key form and the recovery code, no app code.
    let started = crate::pages::sign_in(&app, "jane", &TestApp::password_of("jane")).await;
    assert_eq!(started.location(), "/signin/verify");
    let verify = get(&app, "/signin/verify").await;
    verify.assert_contains(r#"data-webauthn="get" hidden"#);
    verify.assert_contains("Use a recovery code");
    assert!(!verify.body.contains(r#"id="code""#), "no app code field");
    // A refused answer shows the page again, saying so.
    let options = page_options(&verify);
    let unverified = key
        .assert_with(
            &options,
            &Tweak {
                user_verified: false,
                ..Tweak::default()
            },
        )
        .to_string();
    let refused = submit_key(
        &app,
        &verify,
        "/signin/webauthn",
        &[("credential", &unverified)],
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    refused.assert_contains("The security key was not accepted");
    let credential = key.assert(&page_options(&refused)).to_string();
    let signed_in = submit_key(
        &app,
        &refused,
        "/signin/webauthn",
        &[("credential", &credential)],
    )
    .await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    assert_eq!(signed_in.location(), "/");
    assert!(signed_in.cookie("twostep_session").is_some());
    let home = get(&app, "/").await;
    home.assert_contains("jane Display");
    let _ = post(&app, "/signout", &[("csrf", &home.csrf())]).await;

    // A passkey: the options from the JSON API, the answer through the sign-in page's form.
    let signin = get(&app, "/signin").await;
    let (_, options) = app.post("/api/v1/signin/passkey/options", json!({})).await;
    let challenge = options["challenge_id"].as_str().unwrap().to_owned();
    let credential = key.assert(&options["public_key"]).to_string();
    let signed_in = submit_key(
        &app,
        &signin,
        "/signin/passkey",
        &[("challenge_id", &challenge), ("credential", &credential)],
    )
    .await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    assert_eq!(signed_in.location(), "/");
    let home = get(&app, "/").await;
    home.assert_contains("jane Display");
    app.stop().await;
}

/// Without `--public-url` no key is offered: no passkey form, no `webauthn` method.
#[tokio::test]
async fn without_a_public_url_no_key_is_offered() {
    let app = crate::helpers::spawn_app().await;
    let _user = force_user(&app, "jane").await;
    let signin = get(&app, "/signin").await;
    assert!(!signin.body.contains("webauthn"), "{}", signin.body);
    let started = password(&app, "jane").await;
    assert_eq!(started["methods"], json!(["totp"]), "{started}");
    let (status, refused) = app
        .post(
            "/api/v1/signin/enroll",
            json!({ "transaction": started["transaction"], "method": "webauthn",
                    "prompt_mode": "every_login" }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["code"], "security_keys_not_offered");
    let (status, _) = app.post("/api/v1/signin/passkey/options", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    app.stop().await;
}

/// Edit User lists a user's keys; the administrator renames and removes one (audited, the
/// user told); the admin API lists and removes them too; a key id that is not a number
/// or not the user's is "not found", never an error page of our own.
#[tokio::test]
async fn administrators_see_rename_and_remove_a_users_keys() {
    use reqwest::Method;
    let (app, origin) = local_app().await;
    let jane = force_user(&app, "jane").await;
    // jane's key, registered directly through the software key and the JSON API.
    let started = password(&app, "jane").await;
    let (_, options) = app
        .post(
            "/api/v1/signin/enroll",
            json!({ "transaction": started["transaction"], "method": "webauthn",
                    "prompt_mode": "when_appropriate" }),
        )
        .await;
    let mut key = SoftKey::new(&origin);
    let (status, _) = app
        .post(
            "/api/v1/signin/enroll/confirm",
            json!({ "transaction": started["transaction"],
                    "credential": key.register(&options["public_key"]), "name": "Red key" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let stored = app.store.security_keys(jane.id).await.unwrap();
    let id = stored[0].key.id.0;

    crate::admin_pages::sign_in_admin(&app).await;
    let edit = get(&app, "/admin/users/jane").await;
    edit.assert_contains("Security keys and passkeys");
    edit.assert_contains("Red key");
    edit.assert_contains("2 Step Verification:</strong> Enabled");
    let renamed = submit_key(
        &app,
        &edit,
        &format!("/admin/users/jane/keys/{id}/rename"),
        &[("name", "Ward 3 key")],
    )
    .await;
    assert_eq!(renamed.status, StatusCode::SEE_OTHER, "{}", renamed.body);
    let edit = get(&app, "/admin/users/jane").await;
    edit.assert_contains("Ward 3 key");
    for bad in ["abc", "999999"] {
        let refused = submit_key(
            &app,
            &edit,
            &format!("/admin/users/jane/keys/{bad}/remove"),
            &[],
        )
        .await;
        assert_eq!(
            refused.status,
            StatusCode::NOT_FOUND,
            "{bad}: {}",
            refused.body
        );
    }
    let removed = submit_key(
        &app,
        &edit,
        &format!("/admin/users/jane/keys/{id}/remove"),
        &[],
    )
    .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER, "{}", removed.body);
    let edit = get(&app, "/admin/users/jane").await;
    edit.assert_contains("No security key is set up.");
    assert!(app.store.security_keys(jane.id).await.unwrap().is_empty());
    let removals = audit_details(&app, AuditEvent::SecurityKeyRemoved).await;
    assert_eq!(removals, vec!["name=Ward 3 key".to_owned()]);
    assert!(app
        .mails()
        .await
        .iter()
        .any(|mail| mail.contains("security key was removed")));

    // The admin API: list, remove.
    let token = crate::admin_api::admin(&app).await;
    let mut second = SoftKey::new(&origin);
    let session = session_of(&app, &jane).await;
    let (status, options) = app
        .post_with(
            "/api/v1/account/device",
            json!({ "method": "webauthn", "prompt_mode": "every_login" }),
            &[("authorization", &format!("Bearer {session}"))],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "no key left: no proof asked, {options}"
    );
    let (status, _) = app
        .post_with(
            "/api/v1/account/device/confirm",
            json!({ "credential": second.register(&options["public_key"]) }),
            &[("authorization", &format!("Bearer {session}"))],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, keys) = crate::admin_api::call(
        &app,
        Method::GET,
        "/api/v1/users/jane/keys",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{keys}");
    assert_eq!(keys[0]["name"], "Security key 1");
    assert_eq!(keys[0]["prompt_mode"], "every_login");
    let id = keys[0]["id"].as_i64().unwrap();
    let (status, _) = crate::admin_api::call(
        &app,
        Method::DELETE,
        &format!("/api/v1/users/jane/keys/{id}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, refused) = crate::admin_api::call(
        &app,
        Method::DELETE,
        &format!("/api/v1/users/jane/keys/{id}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{refused}");
    assert_eq!(refused["code"], "not_found");
    app.stop().await;
}

/// The store moves a key's counter only forward (the one conditional update that keeps
/// two instances from both accepting a repeated counter); a key that keeps no counter
/// (0 each time, 0 stored) is accepted each time.
#[tokio::test]
async fn the_stored_counter_only_grows() {
    let app = keys_app().await;
    let jane = force_user(&app, "jane").await;
    let mut key = enroll_at_sign_in(&app, "jane", PromptMode::EveryLogin).await;
    let started = password(&app, "jane").await;
    let options = key_options(&app, &started["transaction"]).await;
    let (status, _) = answer(&app, &started["transaction"], &key.assert(&options)).await;
    assert_eq!(status, StatusCode::OK);
    let stored = app.store.security_keys(jane.id).await.unwrap().remove(0);
    assert_eq!(stored.sign_count, 1);
    let now = app.clock.now_ts();
    let store = &app.store;
    let id = stored.key.id;
    let credential = stored.credential.as_str();
    assert!(!store
        .use_security_key(id, 1, credential, now)
        .await
        .unwrap());
    assert!(!store
        .use_security_key(id, 0, credential, now)
        .await
        .unwrap());
    assert!(store
        .use_security_key(id, 7, credential, now)
        .await
        .unwrap());
    assert!(!store
        .use_security_key(id, 7, credential, now)
        .await
        .unwrap());
    assert_eq!(store.security_keys(jane.id).await.unwrap()[0].sign_count, 7);
    // A second key that keeps no counter.
    let mark = force_user(&app, "mark").await;
    let _ = enroll_at_sign_in(&app, "mark", PromptMode::EveryLogin).await;
    let marks = store.security_keys(mark.id).await.unwrap().remove(0);
    assert_eq!(marks.sign_count, 0);
    for _ in 0..2 {
        assert!(store
            .use_security_key(marks.key.id, 0, &marks.credential, now)
            .await
            .unwrap());
    }
    app.stop().await;
}
