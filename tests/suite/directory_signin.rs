//! Directory sign-in through the whole server (SPEC section 12), against a real OpenLDAP
//! ([`crate::slapd`]): users created and refreshed from their entries at each sign-in,
//! roles from the group map with their 2FA policy, refusals of disabled and deleted
//! entries, the empty password, lockout counted in twostep before any bind, a directory
//! that goes away and comes back, LDAPS, start-up refusals, `/validate/check` and the bind
//! metrics. The directory client alone is `directory_client`'s.
//!
//! Every test starts its own slapd: they change the directory, or stop it.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{json, Value};
use twostep::config::{DatabaseArgs, LdapArgs, ServeArgs};
use twostep::domain::{PromptMode, Require2fa, SettingKey, User, UserSource, Username};
use twostep::startup::{Application, StartupError};

use crate::directory_client::binds_of;
use crate::helpers::{spawn_app_with, AppOptions, TestApp, TestDb, START};
use crate::slapd::{
    dn_of, password_of, Slapd, ADMINS_GROUP, PEOPLE, SERVICE_DN, SERVICE_PASSWORD, STAFF_GROUP,
};

/// The role of the `admins` group: 2FA set-up required.
const DOCTORS: &str = "Doctors";
/// The role of the `staff` group: no 2FA.
const CLERKS: &str = "Ward Clerks";

/// The `--ldap-*` flags for `url`: the test directory's service account and people,
/// `admins` → Doctors first, then `staff` → Ward Clerks, short timeouts.
fn ldap_args(url: &str) -> LdapArgs {
    LdapArgs {
        ldap_url: Some(url.to_owned()),
        ldap_bind_dn: Some(SERVICE_DN.to_owned()),
        ldap_bind_password: Some(SERVICE_PASSWORD.to_owned()),
        ldap_user_base: Some(PEOPLE.to_owned()),
        ldap_role_map: vec![
            format!("{ADMINS_GROUP}={DOCTORS}"),
            format!("{STAFF_GROUP}={CLERKS}"),
        ],
        ldap_connect_timeout: 2,
        ldap_operation_timeout: 2,
        ..LdapArgs::none()
    }
}

pub(crate) fn hex_key(db: &TestDb) -> String {
    let twostep::store::KeySource::Hex(key) = db.key.clone() else {
        unreachable!("test databases have hex keys")
    };
    key
}

/// A database with the role map's roles: start-up checks that they exist, so a first app
/// without the directory creates them (and the administrator), then stops.
async fn database_with_roles() -> TestDb {
    let db = TestDb::sqlite().await;
    let first = spawn_app_with(AppOptions {
        database: Some(db.url.clone()),
        key: Some(hex_key(&db)),
        ..AppOptions::default()
    })
    .await;
    first.role(DOCTORS, Require2fa::Force, false, false).await;
    first.role(CLERKS, Require2fa::No, false, false).await;
    first.stop().await;
    db
}

/// The app with directory sign-in on `ldap`, on a database that has the roles.
async fn directory_app_with(ldap: LdapArgs, options: AppOptions) -> (TestDb, TestApp) {
    let db = database_with_roles().await;
    let app = spawn_app_with(AppOptions {
        database: Some(db.url.clone()),
        key: Some(hex_key(&db)),
        ldap: Some(ldap),
        ..options
    })
    .await;
    (db, app)
}

async fn directory_app(server: &Slapd) -> (TestDb, TestApp) {
    directory_app_with(ldap_args(&server.url()), AppOptions::default()).await
}

/// `Application::build` straight (spawn_app_with panics on a refusal): its error.
async fn build_error(db: &TestDb, ldap: LdapArgs) -> StartupError {
    let dir = tempfile::tempdir().unwrap();
    let args = ServeArgs {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        db: DatabaseArgs {
            database: Some(db.url.clone()),
            key: Some(hex_key(db)),
            ..DatabaseArgs::with_data_dir(dir.path().to_path_buf())
        },
        admin_password: Some("admin password for tests".to_owned()),
        ldap,
        ..ServeArgs::with_data_dir(dir.path().to_path_buf())
    };
    let clock = twostep::clock::ManualClock::new(START);
    match Application::build(&args, Arc::new(clock)).await {
        Ok(_) => panic!("the application started"),
        Err(error) => error,
    }
}

/// The JSON password step.
pub(crate) async fn sign_in(app: &TestApp, username: &str, password: &str) -> (StatusCode, Value) {
    app.post(
        "/api/v1/signin",
        json!({ "username": username, "password": password }),
    )
    .await
}

pub(crate) fn assert_refused(status: StatusCode, answer: &Value) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer["code"], "invalid_credentials", "{answer}");
    assert!(answer.get("session").is_none(), "{answer}");
}

/// Checks a signed-in answer and that its session is `username`'s; returns the session.
pub(crate) async fn assert_signed_in(app: &TestApp, answer: &Value, username: &str) -> String {
    assert_eq!(answer["status"], "signed_in", "{answer}");
    let session = answer["session"].as_str().expect("a session token");
    let (status, me) = app.get_json("/api/v1/me", Some(session)).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["username"], username);
    session.to_owned()
}

pub(crate) async fn user(app: &TestApp, name: &str) -> Option<User> {
    app.store
        .user_by_username(&Username::parse(name).unwrap())
        .await
        .unwrap()
}

pub(crate) async fn role_name(app: &TestApp, user: &User) -> String {
    app.store
        .role_by_id(user.role_id)
        .await
        .unwrap()
        .unwrap()
        .name
        .as_str()
        .to_owned()
}

/// slapd writes its log as it goes: the count of `dn`'s binds once it settled.
async fn settled_binds_of(server: &Slapd, dn: &str) -> usize {
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    binds_of(server, dn)
}

/// SPEC 12: a directory user signs in with the directory password; the local user is made
/// from the entry (source ldap, display name, email, role from the first mapped group),
/// and the role's 2FA policy applies: jane (Force) enrolls, then is asked for her device's
/// code, which signs her in; omar (no 2FA) signs in with the password alone.
#[tokio::test]
async fn a_directory_user_is_created_from_the_entry_and_gets_the_mapped_roles_policy() {
    let Some(server) = Slapd::start() else { return };
    let (_db, app) = directory_app(&server).await;
    assert!(user(&app, "jane").await.is_none(), "not local before");

    let (status, answer) = sign_in(&app, "jane", &password_of("jane")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "enroll", "{answer}");
    assert_eq!(answer["required"], true, "Doctors force the set-up");
    let jane = user(&app, "jane").await.expect("jane was created");
    assert_eq!(jane.source, UserSource::Directory);
    assert_eq!(jane.display_name.as_str(), "Jane Doe");
    assert_eq!(
        jane.email.as_ref().map(|email| email.as_str()),
        Some("jane@example.org")
    );
    assert_eq!(
        role_name(&app, &jane).await,
        DOCTORS,
        "admins is mapped first"
    );
    let link = app.store.directory_link(jane.id).await.unwrap().unwrap();
    assert_eq!(link.dn, dn_of("jane"));
    let created = app
        .store
        .audit_entries(&twostep::store::AuditQuery {
            event: Some(twostep::domain::AuditEvent::UserCreated),
            limit: 10,
            ..twostep::store::AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(
        created
            .iter()
            .any(|entry| entry.subject.as_deref() == Some("jane")
                && entry.detail.contains(&dn_of("jane"))
                && entry.detail.contains(DOCTORS)),
        "the creation is audited with the DN and role: {created:?}"
    );

    let transaction = crate::signin_api::transaction(&answer);
    let (status, done) =
        crate::signin_api::enroll_through_api(&app, &transaction, "every_login").await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_signed_in(&app, &done, "jane").await;
    // The device as stored: the key the set-up handed out (and the app scanned).
    let device = app
        .store
        .confirmed_device(jane.id)
        .await
        .unwrap()
        .expect("jane's device is confirmed");
    let twostep::domain::DeviceOtp::Totp { totp, .. } = device.otp else {
        panic!("a TOTP device")
    };

    // Next time the device is asked for; its code signs her in.
    app.clock.advance_seconds(30);
    let (_, again) = sign_in(&app, "jane", &password_of("jane")).await;
    assert_eq!(again["status"], "otp_required", "{again}");
    assert_eq!(again["method"], "device");
    let (status, done) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": crate::signin_api::transaction(&again),
                    "code": app.totp_now(&totp) }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_signed_in(&app, &done, "jane").await;

    let (status, answer) = sign_in(&app, "omar", &password_of("omar")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_signed_in(&app, &answer, "omar").await;
    let omar = user(&app, "omar").await.unwrap();
    assert_eq!(omar.source, UserSource::Directory);
    assert_eq!(omar.display_name.as_str(), "Omar Haddad");
    assert_eq!(role_name(&app, &omar).await, CLERKS);
    app.stop().await;
}

/// SPEC 12: the role comes from the groups at every sign-in: jane, removed from `admins`
/// in the directory, has the staff role (and its policy: no 2FA) at her next sign-in.
#[tokio::test]
async fn a_group_change_in_the_directory_changes_the_role_at_the_next_sign_in() {
    let Some(server) = Slapd::start() else { return };
    let (_db, app) = directory_app(&server).await;
    let (_, answer) = sign_in(&app, "jane", &password_of("jane")).await;
    assert_eq!(answer["status"], "enroll", "{answer}");
    let jane = user(&app, "jane").await.unwrap();
    assert_eq!(role_name(&app, &jane).await, DOCTORS);

    // groupOfNames needs a member: dora takes jane's place in admins.
    server.modify(&format!(
        "dn: {ADMINS_GROUP}\nchangetype: modify\nadd: member\nmember: {}\n-\n\
         delete: member\nmember: {}\n",
        dn_of("dora"),
        dn_of("jane")
    ));
    let (status, answer) = sign_in(&app, "jane", &password_of("jane")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_signed_in(&app, &answer, "jane").await;
    let jane = user(&app, "jane").await.unwrap();
    assert_eq!(role_name(&app, &jane).await, CLERKS);
    let link = app.store.directory_link(jane.id).await.unwrap().unwrap();
    assert_eq!(link.groups, vec![STAFF_GROUP.to_owned()]);
    app.stop().await;
}

/// SPEC 12: a disabled entry (AD's ACCOUNTDISABLE bit) signs nobody in, even with the
/// right password; an entry disabled or deleted after its user signed in signs nobody in
/// either, and ends that user's session at the next check.
#[tokio::test]
async fn disabled_and_deleted_entries_sign_nobody_in_and_end_the_sessions() {
    let Some(server) = Slapd::start() else { return };
    let (_db, app) = directory_app(&server).await;
    let (status, answer) = sign_in(&app, "dora", &password_of("dora")).await;
    assert_refused(status, &answer);
    assert!(
        user(&app, "dora").await.is_none(),
        "no user made of a disabled entry"
    );

    let set_account_control = |value: &str| {
        server.modify(&format!(
            "dn: {}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: {value}\n",
            dn_of("omar")
        ));
    };
    let (_, answer) = sign_in(&app, "omar", &password_of("omar")).await;
    let session = assert_signed_in(&app, &answer, "omar").await;
    set_account_control("514");
    let (status, answer) = sign_in(&app, "omar", &password_of("omar")).await;
    assert_refused(status, &answer);
    let (status, me) = app.get_json("/api/v1/me", Some(&session)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "omar's session ended when he was disabled: {me}"
    );
    set_account_control("512");

    let (_, answer) = sign_in(&app, "omar", &password_of("omar")).await;
    let session = assert_signed_in(&app, &answer, "omar").await;
    server.delete(&dn_of("omar"));
    let (status, answer) = sign_in(&app, "omar", &password_of("omar")).await;
    assert_refused(status, &answer);
    let (status, me) = app.get_json("/api/v1/me", Some(&session)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "omar's session ended: {me}"
    );
    app.stop().await;
}

/// SPEC 12: an empty password is refused before any bind (an unauthenticated bind must
/// never pass): slapd sees no bind of jane's DN for it, and sees one for a real sign-in.
#[tokio::test]
async fn an_empty_password_is_refused_without_a_bind() {
    let Some(server) = Slapd::start() else { return };
    let (_db, app) = directory_app(&server).await;
    let jane = dn_of("jane");
    let (status, answer) = sign_in(&app, "jane", "").await;
    assert_refused(status, &answer);
    assert_eq!(
        settled_binds_of(&server, &jane).await,
        0,
        "{}",
        server.log()
    );

    let (_, answer) = sign_in(&app, "jane", &password_of("jane")).await;
    assert_eq!(answer["status"], "enroll", "{answer}");
    assert_eq!(
        settled_binds_of(&server, &jane).await,
        1,
        "{}",
        server.log()
    );
    app.stop().await;
}

/// SPEC 12: lockout is counted in twostep before the bind: Lockout Threshold wrong
/// passwords lock jane in twostep (then the right one is refused too, without a bind),
/// while the directory still accepts her password.
#[tokio::test]
async fn wrong_passwords_lock_the_twostep_account_not_the_directory_one() {
    let Some(server) = Slapd::start() else { return };
    let (_db, app) = directory_app(&server).await;
    let threshold = app.store.settings().await.unwrap().lockout_threshold();
    assert!(threshold > 1);
    let jane_dn = dn_of("jane");
    let mut wrong_answer = Value::Null;
    for n in 0..threshold {
        let (status, answer) = sign_in(
            &app,
            "jane",
            &format!("wrong passphrase number {n} of jane"),
        )
        .await;
        assert_refused(status, &answer);
        wrong_answer = answer;
    }
    let jane = user(&app, "jane").await.unwrap();
    assert_eq!(jane.failed_count, threshold);
    assert!(jane.is_locked(twostep::clock::Clock::now(&app.clock)));
    let binds = settled_binds_of(&server, &jane_dn).await;
    assert_eq!(binds, threshold as usize, "one bind per counted attempt");

    let (status, answer) = sign_in(&app, "jane", &password_of("jane")).await;
    assert_refused(status, &answer);
    assert_eq!(answer, wrong_answer, "locked: the wrong-password answer");
    assert_eq!(
        settled_binds_of(&server, &jane_dn).await,
        binds,
        "a locked account's password is not tried on the directory"
    );
    assert!(
        server.accepts(&jane_dn, &password_of("jane")),
        "the directory account is not locked"
    );
    app.stop().await;
}

/// SPEC 12: with the directory down, a directory user's sign-in answers 503
/// `directory_unavailable` (JSON) and "Sign-in is unavailable right now" (form), is not
/// counted against the user, and local accounts keep working; once it is back, the user
/// signs in again.
#[tokio::test]
async fn a_stopped_directory_answers_unavailable_and_local_accounts_keep_working() {
    let Some(mut server) = Slapd::start() else {
        return;
    };
    let (_db, app) = directory_app(&server).await;
    let (_, answer) = sign_in(&app, "jane", &password_of("jane")).await;
    assert_eq!(answer["status"], "enroll", "{answer}");
    let (status, answer) = sign_in(&app, "jane", "not the passphrase of jane at all").await;
    assert_refused(status, &answer);
    assert_eq!(user(&app, "jane").await.unwrap().failed_count, 1);

    server.stop();
    let (status, answer) = sign_in(&app, "jane", &password_of("jane")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(answer["code"], "directory_unavailable", "{answer}");
    let page = crate::pages::sign_in(&app, "jane", &password_of("jane")).await;
    assert_eq!(
        page.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        page.body
    );
    page.assert_contains("Sign-in is unavailable right now");
    let (status, answer) = sign_in(&app, "admin", &app.admin_password).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["status"], "enroll",
        "the administrator's password passed: {answer}"
    );
    assert_eq!(
        user(&app, "jane").await.unwrap().failed_count,
        1,
        "the outage is not jane's failure"
    );
    let (status, health) = app.get_json("/healthz", None).await;
    assert_eq!(status, StatusCode::OK, "{health}");

    server.restart();
    let (status, answer) = sign_in(&app, "jane", &password_of("jane")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "enroll", "{answer}");
    app.stop().await;
}

/// SPEC 12: LDAPS with the configured CA works end to end; a CA that did not sign the
/// server's certificate stops start-up with a message about the certificate.
#[tokio::test]
async fn ldaps_works_with_the_test_ca_and_the_wrong_ca_stops_start_up() {
    let Some(server) = Slapd::start() else { return };
    let ldaps = LdapArgs {
        ldap_ca_file: Some(server.ca_file()),
        ..ldap_args(&server.ldaps_url())
    };
    let (db, app) = directory_app_with(ldaps.clone(), AppOptions::default()).await;
    let (status, answer) = sign_in(&app, "omar", &password_of("omar")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_signed_in(&app, &answer, "omar").await;
    app.stop().await;

    let error = build_error(
        &db,
        LdapArgs {
            ldap_ca_file: Some(server.wrong_ca_file()),
            ..ldaps
        },
    )
    .await;
    assert!(matches!(error, StartupError::Directory(_)), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("certificate") || message.contains("TLS"),
        "{message}"
    );
}

/// SPEC 12: start-up refuses a role map naming a role that does not exist, and a service
/// account whose bind fails, each with a message that names what to fix.
#[tokio::test]
async fn start_up_refuses_an_unknown_role_and_a_wrong_service_password() {
    let Some(server) = Slapd::start() else { return };
    let db = database_with_roles().await;
    let error = build_error(
        &db,
        LdapArgs {
            ldap_role_map: vec![
                format!("{ADMINS_GROUP}=Surgeons"),
                format!("{STAFF_GROUP}={CLERKS}"),
            ],
            ..ldap_args(&server.url())
        },
    )
    .await;
    let message = error.to_string();
    assert!(
        matches!(&error, StartupError::DirectoryRoles(roles) if roles == &["Surgeons".to_owned()]),
        "{message}"
    );
    assert!(
        message.contains("--ldap-role-map") && message.contains("Surgeons"),
        "{message}"
    );

    let error = build_error(
        &db,
        LdapArgs {
            ldap_bind_password: Some("not the service passphrase 99".to_owned()),
            ..ldap_args(&server.url())
        },
    )
    .await;
    let message = error.to_string();
    assert!(matches!(error, StartupError::Directory(_)), "{message}");
    assert!(
        message.contains("service account") && message.contains("bind DN and password"),
        "{message}"
    );
}

/// SPEC 12 with SPEC 9: `/validate/check` in password_otp mode checks a directory user's
/// password by a bind, then the device's code.
#[tokio::test]
async fn validate_check_in_password_otp_mode_takes_the_directory_password_and_the_code() {
    let Some(server) = Slapd::start() else { return };
    let (_db, app) = directory_app_with(
        ldap_args(&server.url()),
        AppOptions {
            validate_clients: vec!["127.0.0.1/32".parse().unwrap()],
            ..AppOptions::default()
        },
    )
    .await;
    app.settings(&[(SettingKey::ValidatePassMode, "password_otp")])
        .await;
    let (_, answer) = sign_in(&app, "jane", &password_of("jane")).await;
    assert_eq!(answer["status"], "enroll", "{answer}");
    let jane = user(&app, "jane").await.unwrap();
    let totp = app.enroll_totp(&jane, PromptMode::EveryLogin).await;
    let check = |pass: String| {
        let app = &app;
        async move {
            crate::verify::validate(
                app,
                "/validate/check",
                &[],
                &[("user", "jane"), ("pass", &pass)],
            )
            .await
        }
    };
    let (status, answer) = check(format!("{}{}", password_of("jane"), app.totp_next(&totp))).await;
    crate::verify::assert_accept(status, &answer);
    let (status, answer) = check(format!(
        "not the passphrase of jane{}",
        app.totp_next(&totp)
    ))
    .await;
    crate::verify::assert_reject(status, &answer);
    app.stop().await;
}

/// slapd's stats lines of searches (one `SRCH base=` line per search request).
fn searches(server: &Slapd) -> usize {
    server
        .log()
        .lines()
        .filter(|line| line.contains(" SRCH base="))
        .count()
}

/// SPEC 12: filter characters in a username reach no entry through the whole sign-in:
/// each is refused with the generic answer, nobody is signed in, no user is created. The
/// username rules refuse them before the directory is asked (slapd sees no search), so the
/// filter's RFC 4515 escaping is the client's test (`directory_client`).
#[tokio::test]
async fn filter_characters_in_a_username_sign_nobody_in() {
    let Some(server) = Slapd::start() else { return };
    let (_db, app) = directory_app(&server).await;
    let users = app.store.count_users().await.unwrap();
    let (_, answer) = sign_in(&app, "nobody", "not anybody's passphrase 5").await;
    assert_refused(StatusCode::UNAUTHORIZED, &answer);
    let before = settled_searches(&server).await;
    assert!(before > 0, "a well-formed unknown name is looked up");
    for username in [
        "*",
        "j*",
        "jane)(uid=*",
        "*)(|(uid=*",
        "ja(ne",
        "jane\\",
        "\\6aane",
        "\u{0}",
        "jane\u{0}",
    ] {
        let (status, answer) = sign_in(&app, username, &password_of("jane")).await;
        assert_refused(status, &answer);
        assert!(
            answer.get("transaction").is_none(),
            "{username:?}: {answer}"
        );
    }
    assert_eq!(
        app.store.count_users().await.unwrap(),
        users,
        "no user was created"
    );
    assert!(user(&app, "jane").await.is_none());
    assert_eq!(
        settled_searches(&server).await,
        before,
        "a malformed name is never looked up: {}",
        server.log()
    );
    app.stop().await;
}

async fn settled_searches(server: &Slapd) -> usize {
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    searches(server)
}

/// The value of the sample `line_start` (`name{labels}`) in the Prometheus text.
fn sample(metrics: &str, line_start: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(line_start))
        .and_then(|value| value.trim().parse().ok())
}

/// SPEC 12: `/metrics` counts the binds as directory users by outcome.
#[tokio::test]
async fn metrics_count_directory_binds_by_outcome() {
    let Some(server) = Slapd::start() else { return };
    let (_db, app) = directory_app(&server).await;
    let (_, answer) = sign_in(&app, "omar", &password_of("omar")).await;
    assert_signed_in(&app, &answer, "omar").await;
    let (status, answer) = sign_in(&app, "omar", "not the passphrase of omar 1").await;
    assert_refused(status, &answer);
    let (status, answer) = sign_in(&app, "omar", "not the passphrase of omar 2").await;
    assert_refused(status, &answer);

    let response = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let metrics = response.text().await.unwrap();
    assert_eq!(
        sample(
            &metrics,
            "twostep_directory_binds_total{outcome=\"success\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "twostep_directory_binds_total{outcome=\"invalid_credentials\"}"
        ),
        Some(2.0),
        "{metrics}"
    );
    app.stop().await;
}

/// SPEC 12: a local account of the same name always wins (break-glass administrators):
/// its local password signs in, the directory's does not, and the directory is not asked.
#[tokio::test]
async fn a_local_account_of_the_same_name_wins_over_the_directory() {
    let Some(server) = Slapd::start() else { return };
    let (_db, app) = directory_app(&server).await;
    let role = app.role(CLERKS, Require2fa::No, false, false).await;
    app.user("omar", &role, true).await;
    let (status, answer) = sign_in(&app, "omar", &password_of("omar")).await;
    assert_refused(status, &answer);
    let (_, answer) = sign_in(&app, "omar", &TestApp::password_of("omar")).await;
    assert_signed_in(&app, &answer, "omar").await;
    let omar = user(&app, "omar").await.unwrap();
    assert_eq!(omar.source, UserSource::Local);
    assert_eq!(omar.display_name.as_str(), "omar Display", "not refreshed");
    assert_eq!(
        settled_binds_of(&server, &dn_of("omar")).await,
        0,
        "the directory was not asked"
    );
    app.stop().await;
}

/// The admin API's view of `username`, as the bootstrap administrator sees it.
async fn admin_view(app: &TestApp, admin: &str, username: &str) -> Value {
    let (status, shown) = crate::admin_api::call(
        app,
        reqwest::Method::GET,
        &format!("/api/v1/users/{username}"),
        Some(admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    shown
}

/// SPEC 12: a directory user "is marked `source: \"ldap\"` in the API".
#[tokio::test]
async fn the_api_marks_a_directory_user_source_ldap() {
    let Some(server) = Slapd::start() else { return };
    let (_db, app) = directory_app(&server).await;
    let (_, answer) = sign_in(&app, "omar", &password_of("omar")).await;
    assert_signed_in(&app, &answer, "omar").await;
    let admin = crate::admin_api::session_of(&app, "admin", &app.admin_password).await;
    let shown = admin_view(&app, &admin, "omar").await;
    assert_eq!(shown["display_name"], "Omar Haddad", "{shown}");
    assert_eq!(shown["source"], "ldap", "{shown}");
    let shown = admin_view(&app, &admin, "admin").await;
    assert_eq!(shown["source"], "local", "{shown}");
    app.stop().await;
}

/// SPEC 12: a directory user "has no local password (setting one is refused)"; as for
/// every refused password, the administrator's change leaves the user as it was.
#[tokio::test]
async fn an_administrators_password_for_a_directory_user_is_refused_and_changes_nothing() {
    let Some(server) = Slapd::start() else { return };
    let (_db, app) = directory_app(&server).await;
    let (_, answer) = sign_in(&app, "omar", &password_of("omar")).await;
    assert_signed_in(&app, &answer, "omar").await;
    let admin = crate::admin_api::session_of(&app, "admin", &app.admin_password).await;
    let (status, refused) = crate::admin_api::call(
        &app,
        reqwest::Method::PATCH,
        "/api/v1/users/omar",
        Some(&admin),
        Some(json!({ "display_name": "Someone Else",
                     "password": "a local passphrase for omar 77" })),
    )
    .await;
    assert!(
        status.is_client_error() && status != StatusCode::NOT_FOUND,
        "refused as a directory user's password, not as a missing user: {status} {refused}"
    );
    let shown = admin_view(&app, &admin, "omar").await;
    assert_eq!(
        shown["display_name"], "Omar Haddad",
        "a refused change changes nothing: {shown}"
    );
    let (_, answer) = sign_in(&app, "omar", &password_of("omar")).await;
    assert_signed_in(&app, &answer, "omar").await;
    app.stop().await;
}

/// SPEC 12 / issue 18: System Settings shows the directory's connection state: its URL and
/// base, the last success, and after the directory stopped, the last error.
#[tokio::test]
async fn system_settings_show_the_directory_connection_state() {
    let Some(mut server) = Slapd::start() else {
        return;
    };
    let (_db, app) = directory_app(&server).await;
    crate::admin_pages::sign_in_admin(&app).await;
    let page = crate::pages::get(&app, "/admin/settings").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&server.url()), "{}", page.body);
    assert!(page.body.contains(PEOPLE), "{}", page.body);
    assert!(
        page.body
            .contains(r#"<dd id="directory-last-error">None</dd>"#),
        "{}",
        page.body
    );
    assert!(
        !page
            .body
            .contains(r#"id="directory-last-success">None yet"#),
        "the start-up bind succeeded: {}",
        page.body
    );

    server.stop();
    let (status, _) = sign_in(&app, "jane", &password_of("jane")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let page = crate::pages::get(&app, "/admin/settings").await;
    let error_at = page
        .body
        .find(r#"<dd id="directory-last-error"><time"#)
        .unwrap_or_else(|| panic!("a last error: {}", page.body));
    let error = &page.body[error_at..error_at + page.body[error_at..].find("</dd>").unwrap()];
    assert!(error.contains("unavailable"), "{error}");
    assert!(!error.contains(SERVICE_PASSWORD), "{error}");
    app.stop().await;
}

/// SPEC 12: forward-auth's HTTP Basic (for interface users) takes the password from the
/// same source: a directory user whose group maps to an interface role passes with the
/// directory password, and a wrong one is refused and counted in twostep.
#[tokio::test]
async fn forward_auth_basic_takes_the_directory_password_of_an_interface_user() {
    use data_encoding::BASE64;
    let Some(server) = Slapd::start() else { return };
    let db = TestDb::sqlite().await;
    let first = spawn_app_with(AppOptions {
        database: Some(db.url.clone()),
        key: Some(hex_key(&db)),
        ..AppOptions::default()
    })
    .await;
    first
        .role("Lab Interface", Require2fa::No, false, true)
        .await;
    first.stop().await;
    let app = spawn_app_with(AppOptions {
        database: Some(db.url.clone()),
        key: Some(hex_key(&db)),
        ldap: Some(LdapArgs {
            ldap_role_map: vec![format!("{STAFF_GROUP}=Lab Interface")],
            ..ldap_args(&server.url())
        }),
        ..AppOptions::default()
    })
    .await;
    let authz = |password: String| {
        let request = app
            .client
            .get(format!("{}/api/v1/authz", app.address))
            .header(
                reqwest::header::AUTHORIZATION,
                format!(
                    "Basic {}",
                    BASE64.encode(format!("omar:{password}").as_bytes())
                ),
            );
        async move { request.send().await.unwrap() }
    };
    let passed = authz(password_of("omar")).await;
    assert_eq!(passed.status(), StatusCode::OK);
    assert_eq!(
        passed
            .headers()
            .get("remote-user")
            .unwrap()
            .to_str()
            .unwrap(),
        "omar"
    );
    assert_eq!(
        passed
            .headers()
            .get("remote-role")
            .unwrap()
            .to_str()
            .unwrap(),
        "Lab Interface"
    );
    let refused = authz("not omar's passphrase at all 5".to_owned()).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(user(&app, "omar").await.unwrap().failed_count, 1);
    app.stop().await;
}

/// SPEC 12: a directory user's password is the directory's: My account says so instead of
/// offering the form, and the account API refuses a change (409 `directory_user`) without
/// touching the directory's password.
#[tokio::test]
async fn my_account_sends_a_directory_user_to_the_directory_to_change_the_password() {
    let Some(server) = Slapd::start() else { return };
    let (_db, app) = directory_app(&server).await;
    let signed = crate::pages::sign_in(&app, "omar", &password_of("omar")).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let page = crate::pages::get(&app, "/account").await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_contains(r#"id="password-directory""#);
    assert!(
        !page.body.contains(r#"id="password-form""#),
        "{}",
        page.body
    );

    let (_, answer) = sign_in(&app, "omar", &password_of("omar")).await;
    let session = assert_signed_in(&app, &answer, "omar").await;
    let response = app
        .client
        .post(format!("{}/api/v1/account/password", app.address))
        .bearer_auth(&session)
        .json(&json!({ "current_password": password_of("omar"),
                       "new_password": "a new local passphrase for omar 8" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["code"], "directory_user", "{answer}");
    assert!(server.accepts(&dn_of("omar"), &password_of("omar")));
    app.stop().await;
}

/// SPEC 12: "ends that user's sessions at the next check": besides a sign-in attempt, the
/// periodic check (`--ldap-session-check-minutes`) reads the entries of signed-in
/// directory users again: omar's entry deleted ends his session without any sign-in;
/// jane's stays; with the directory stopped, nobody's session ends.
#[tokio::test]
async fn the_periodic_check_ends_the_sessions_of_an_entry_deleted_since() {
    use twostep::service::directory::{check_sessions, SessionCheck};
    let Some(mut server) = Slapd::start() else {
        return;
    };
    let (_db, app) = directory_app(&server).await;
    let (_, answer) = sign_in(&app, "omar", &password_of("omar")).await;
    let omar = assert_signed_in(&app, &answer, "omar").await;
    app.clock.advance_seconds(30);
    let (_, answer) = sign_in(&app, "jane", &password_of("jane")).await;
    let transaction = crate::signin_api::transaction(&answer);
    let (_, done) = crate::signin_api::enroll_through_api(&app, &transaction, "every_login").await;
    let jane = assert_signed_in(&app, &done, "jane").await;

    assert_eq!(
        check_sessions(&app.ctx).await.unwrap(),
        SessionCheck {
            checked: 2,
            ended: 0,
            unavailable: false
        }
    );
    server.delete(&dn_of("omar"));
    assert_eq!(
        check_sessions(&app.ctx).await.unwrap(),
        SessionCheck {
            checked: 2,
            ended: 1,
            unavailable: false
        }
    );
    let (status, _) = app.get_json("/api/v1/me", Some(&omar)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "omar's session ended");
    let (status, _) = app.get_json("/api/v1/me", Some(&jane)).await;
    assert_eq!(status, StatusCode::OK, "jane's session stays");
    let ended = app
        .store
        .audit_entries(&twostep::store::AuditQuery {
            user: Some("omar".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        ended[0].detail == "sessions ended: no longer in the directory",
        "{ended:?}"
    );

    server.stop();
    assert_eq!(
        check_sessions(&app.ctx).await.unwrap(),
        SessionCheck {
            checked: 0,
            ended: 0,
            unavailable: true
        }
    );
    let (status, _) = app.get_json("/api/v1/me", Some(&jane)).await;
    assert_eq!(status, StatusCode::OK, "an outage ends nobody's session");
    app.stop().await;
}
