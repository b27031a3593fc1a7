//! The store test suite, run against both engines: SQLite (a temp file) and PostgreSQL
//! (`TWOSTEP_TEST_PG_URL`, a fresh schema per test, dropped after).

use std::collections::BTreeSet;
use std::sync::Arc;

use rand::rngs::OsRng;
use twostep::clock::Timestamp;
use twostep::crypto::MasterKey;
use twostep::domain::oidc::{Authentication, ClientId, ClientRegistration, RedirectUri};
use twostep::domain::AuditEvent;
use twostep::domain::{
    new_device_otp, DeviceOtp, DeviceUse, DisplayName, Email, IpNetwork, IpRule, OtpMethod,
    PendingStep, Permission, PromptMode, Require2fa, RoleName, RoleSecurity, RoleSecurityError,
    SessionLimits, SettingError, SettingKey, TransactionKind, UserId, Username, HARD_LIMIT,
};
use twostep::otp::OtpSecret;
use twostep::store::{
    AuditQuery, Conflict, FailureOutcome, KeySource, NewAuditEntry, NewDevice, NewUser,
    Reservation, RoleChange, Store, StoreError, UserChange,
};

use crate::helpers::TestDb;

const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

/// How a session's user signed in: the password alone, or with a one-time password.
const PASSWORD_ONLY: Authentication = Authentication {
    password: true,
    otp: false,
    hardware_key: false,
    temporary_access: false,
};
const WITH_OTP: Authentication = Authentication {
    password: true,
    otp: true,
    hardware_key: false,
    temporary_access: false,
};

/// Runs each named test once per engine.
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = crate::helpers::TestDb::sqlite().await;
                    super::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(db) = crate::helpers::TestDb::postgres().await else { return };
                    super::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
    };
}
pub(crate) use on_both_engines;

on_both_engines!(
    bootstrap_creates_the_default_roles_and_the_admin_once,
    usernames_are_unique_in_any_case_and_a_duplicate_writes_nothing,
    users_are_listed_searched_and_changed,
    settings_round_trip_and_a_bad_value_writes_nothing,
    ip_rules_are_unique_per_network_and_a_bad_one_writes_nothing,
    roles_keep_the_interface_rule_and_unique_names,
    device_secrets_are_encrypted_at_rest,
    setup_new_device_keeps_the_old_device_until_the_new_one_is_confirmed,
    racing_tasks_consume_one_totp_step_exactly_once,
    racing_tasks_consume_one_hotp_counter_exactly_once,
    racing_tasks_consume_one_emailed_otp_exactly_once,
    an_accepted_code_and_its_audit_entry_are_written_together_once,
    racing_attempts_are_granted_up_to_the_threshold_and_lock,
    an_expired_lock_starts_a_new_count_but_not_toward_the_hard_limit,
    the_reservation_statement_decides_as_the_domain_lockout_rule,
    a_released_attempt_gives_its_count_back,
    emailed_otps_respect_the_request_delay_and_void_older_codes,
    the_request_delay_outlives_the_codes_and_their_transactions,
    racing_requests_for_a_code_pass_the_request_delay_once,
    the_audit_log_is_append_only_and_filterable,
    signin_transactions_and_sessions_expire,
    restart_keeps_everything_and_migrations_are_idempotent,
    a_wrong_or_missing_key_is_refused_for_an_existing_database,
    open_existing_creates_nothing_and_opens_only_a_twostep_database,
    corrupt_rows_are_reported_not_trusted,
    first_start_uses_the_given_admin_password_without_forced_change,
    first_start_generates_an_admin_password_that_must_be_changed,
    outbox_messages_are_sealed_claimed_once_and_erased_after_delivery,
    a_user_is_read_with_the_confirmed_device_only,
    users_without_a_device_are_counted_per_role_and_enrolment_has_its_time,
    a_users_live_sessions_are_listed_and_the_others_end_in_one_statement,
    oidc_clients_are_registered_listed_changed_and_deleted,
    a_duplicate_client_id_is_a_conflict_and_writes_nothing,
    an_existing_administrator_role_gets_manage_applications_by_migration,
);

async fn staff_role(store: &Store) -> twostep::domain::Role {
    store
        .role_by_name("staff")
        .await
        .unwrap()
        .expect("bootstrap created Staff")
}

async fn bootstrapped(db: &TestDb) -> Store {
    let store = db.open().await;
    assert!(store
        .bootstrap("$argon2id$fake-admin-hash", true, NOW)
        .await
        .unwrap());
    store
}

async fn new_user(store: &Store, name: &str) -> twostep::domain::User {
    let role = staff_role(store).await;
    store
        .create_user(
            &NewUser {
                username: Username::parse(name).unwrap(),
                display_name: DisplayName::parse(name).unwrap(),
                email: Some(Email::parse(&format!("{name}@example.org")).unwrap()),
                role_id: role.id,
                password_hash: "$argon2id$fake".into(),
                must_change_password: false,
            },
            NOW,
        )
        .await
        .unwrap()
}

async fn bootstrap_creates_the_default_roles_and_the_admin_once(db: &TestDb) {
    let store = bootstrapped(db).await;
    let roles = store.list_roles().await.unwrap();
    let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["Interface User", "Staff", "System Administrator"]);
    let admin_role = store
        .role_by_name("System Administrator")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(admin_role.permissions.len(), Permission::ALL.len());
    assert_eq!(admin_role.security.require_2fa(), Require2fa::Encourage);
    let interface = store.role_by_name("interface user").await.unwrap().unwrap();
    assert!(interface.security.interface());
    assert_eq!(interface.security.require_2fa(), Require2fa::No);
    assert!(!interface.security.otp_required());
    assert!(interface.permissions.is_empty());
    assert_eq!(
        staff_role(&store).await.security.require_2fa(),
        Require2fa::Encourage
    );

    let (admin, hash) = store
        .user_with_password_hash(&Username::parse("ADMIN").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(admin.role_id, admin_role.id);
    assert!(admin.must_change_password);
    assert_eq!(hash, "$argon2id$fake-admin-hash");

    assert!(
        !store
            .bootstrap("$argon2id$other", false, NOW)
            .await
            .unwrap(),
        "second start"
    );
    assert_eq!(store.count_users().await.unwrap(), 1);
    assert_eq!(store.list_roles().await.unwrap().len(), 3);
}

async fn usernames_are_unique_in_any_case_and_a_duplicate_writes_nothing(db: &TestDb) {
    let store = bootstrapped(db).await;
    let jane = new_user(&store, "jane").await;
    let role = staff_role(&store).await;
    let duplicate = store
        .create_user(
            &NewUser {
                username: Username::parse("JANE").unwrap(),
                display_name: DisplayName::parse("Other Jane").unwrap(),
                email: None,
                role_id: role.id,
                password_hash: "$argon2id$x".into(),
                must_change_password: false,
            },
            NOW,
        )
        .await;
    assert!(
        matches!(
            duplicate,
            Err(StoreError::Conflict(Conflict::UsernameTaken))
        ),
        "{duplicate:?}"
    );
    assert_eq!(store.count_users().await.unwrap(), 2);
    let found = store
        .user_by_username(&Username::parse("JaNe").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, jane);
    assert_eq!(found.display_name.as_str(), "jane");
}

async fn users_are_listed_searched_and_changed(db: &TestDb) {
    let store = bootstrapped(db).await;
    for name in ["carol", "bob", "alice", "under_score"] {
        new_user(&store, name).await;
    }
    let (page, total) = store.list_users(None, 0, 2).await.unwrap();
    assert_eq!(total, 5);
    let names: Vec<&str> = page.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["admin", "alice"]);
    let (page, _) = store.list_users(None, 2, 2).await.unwrap();
    assert_eq!(
        page.iter().map(|u| u.username.as_str()).collect::<Vec<_>>(),
        ["bob", "carol"]
    );
    let (found, total) = store.list_users(Some("ALI"), 0, 10).await.unwrap();
    assert_eq!((found.len(), total), (1, 1));
    // `_` is a LIKE wildcard; searching for it finds only the name that contains it.
    let (found, _) = store.list_users(Some("_"), 0, 10).await.unwrap();
    assert_eq!(
        found
            .iter()
            .map(|u| u.username.as_str())
            .collect::<Vec<_>>(),
        ["under_score"]
    );
    let (found, _) = store.list_users(Some("%"), 0, 10).await.unwrap();
    assert!(found.is_empty());

    let bob = store
        .user_by_username(&Username::parse("bob").unwrap())
        .await
        .unwrap()
        .unwrap();
    let admin_role = store
        .role_by_name("system administrator")
        .await
        .unwrap()
        .unwrap();
    let changed = store
        .update_user(
            bob.id,
            &UserChange {
                display_name: Some(DisplayName::parse("Robert").unwrap()),
                email: Some(None),
                role_id: Some(admin_role.id),
                active: Some(false),
            },
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(changed.display_name.as_str(), "Robert");
    assert_eq!(changed.email, None);
    assert_eq!(changed.role_id, admin_role.id);
    assert!(!changed.active);
    assert_eq!(store.user_by_id(bob.id).await.unwrap().unwrap(), changed);
    assert!(matches!(
        store
            .update_user(UserId(999_999), &UserChange::default(), NOW)
            .await,
        Err(StoreError::NotFound)
    ));
    store.delete_user(bob.id).await.unwrap();
    assert_eq!(store.user_by_id(bob.id).await.unwrap(), None);
    assert!(matches!(
        store.delete_user(bob.id).await,
        Err(StoreError::NotFound)
    ));
}

async fn settings_round_trip_and_a_bad_value_writes_nothing(db: &TestDb) {
    let store = bootstrapped(db).await;
    let defaults = store.settings().await.unwrap();
    assert_eq!(defaults, twostep::domain::Settings::default());
    let changed = defaults
        .with_changes([
            (SettingKey::OtpLength, "8"),
            (SettingKey::BypassEnabled, "true"),
        ])
        .unwrap();
    store.save_settings(&changed, NOW).await.unwrap();
    assert_eq!(store.settings().await.unwrap(), changed);

    let refused = changed.with_changes([
        (SettingKey::LockoutMinutes, "15"),
        (SettingKey::OtpLength, "21"),
    ]);
    assert_eq!(
        refused,
        Err(SettingError::OutOfRange {
            key: SettingKey::OtpLength,
            min: 6,
            max: 20
        })
    );
    assert_eq!(
        store.settings().await.unwrap(),
        changed,
        "nothing was written"
    );
}

async fn ip_rules_are_unique_per_network_and_a_bad_one_writes_nothing(db: &TestDb) {
    let store = bootstrapped(db).await;
    let rule = IpRule {
        network: IpNetwork::parse("10.20.0.0/16").unwrap(),
        bypass_2fa: true,
        note: "Main campus".into(),
    };
    let stored = store.add_ip_rule(&rule, NOW).await.unwrap();
    assert_eq!(stored.rule, rule);
    let same_network = IpRule {
        network: IpNetwork::parse("10.20.0.0/16").unwrap(),
        bypass_2fa: false,
        note: "again".into(),
    };
    assert!(matches!(
        store.add_ip_rule(&same_network, NOW).await,
        Err(StoreError::Conflict(Conflict::NetworkExists))
    ));
    // The same address written two ways is one network.
    store
        .add_ip_rule(
            &IpRule {
                network: IpNetwork::parse("192.168.1.7").unwrap(),
                bypass_2fa: true,
                note: String::new(),
            },
            NOW,
        )
        .await
        .unwrap();
    assert!(matches!(
        store
            .add_ip_rule(
                &IpRule {
                    network: IpNetwork::parse("192.168.1.7/32").unwrap(),
                    bypass_2fa: true,
                    note: String::new()
                },
                NOW
            )
            .await,
        Err(StoreError::Conflict(Conflict::NetworkExists))
    ));
    assert!(
        IpNetwork::parse("10.20.0.0/33").is_err(),
        "malformed CIDR never reaches the store"
    );
    let rules = store.ip_rules().await.unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].rule, rule);
    store.remove_ip_rule(stored.id).await.unwrap();
    assert_eq!(store.ip_rules().await.unwrap().len(), 1);
    assert!(matches!(
        store.remove_ip_rule(stored.id).await,
        Err(StoreError::NotFound)
    ));
}

async fn roles_keep_the_interface_rule_and_unique_names(db: &TestDb) {
    let store = bootstrapped(db).await;
    assert_eq!(
        RoleSecurity::new(Require2fa::Force, false, true),
        Err(RoleSecurityError::InterfaceRequires2fa)
    );
    let permissions: BTreeSet<Permission> =
        [Permission::ManageIpSettings, Permission::ViewAuditLog].into();
    let role = store
        .create_role(
            &RoleName::parse("Ward Managers").unwrap(),
            RoleSecurity::new(Require2fa::Force, true, false).unwrap(),
            &permissions,
            SessionLimits::new(10, 2).unwrap(),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(role.permissions, permissions);
    // SPEC 15: the session limits are stored and changed with the role.
    assert_eq!(role.session_limits, SessionLimits::new(10, 2).unwrap());
    assert_eq!(store.role_by_id(role.id).await.unwrap().unwrap(), role);
    let changed = store
        .update_role(
            role.id,
            &RoleChange {
                session_limits: Some(SessionLimits::new(1440, 168).unwrap()),
                ..RoleChange::default()
            },
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(
        changed.session_limits,
        SessionLimits::new(1440, 168).unwrap()
    );
    assert_eq!(changed.permissions, permissions);
    assert!(matches!(
        store
            .create_role(
                &RoleName::parse("WARD managers").unwrap(),
                RoleSecurity::new(Require2fa::No, false, false).unwrap(),
                &BTreeSet::new(),
                SessionLimits::DEFAULT,
                NOW
            )
            .await,
        Err(StoreError::Conflict(Conflict::RoleNameTaken))
    ));
    // The database refuses an interface role requiring 2FA even if code tried to write it.
    let raw = db
        .raw_execute("UPDATE roles SET require_2fa = 'force' WHERE name_key = 'interface user'")
        .await;
    assert!(raw.is_err(), "CHECK constraint");
    let interface = store.role_by_name("Interface User").await.unwrap().unwrap();
    assert_eq!(interface.security.require_2fa(), Require2fa::No);

    let staff = staff_role(&store).await;
    new_user(&store, "nurse").await;
    assert!(matches!(
        store.delete_role(staff.id).await,
        Err(StoreError::Conflict(Conflict::RoleInUse))
    ));
    store.delete_role(role.id).await.unwrap();
    assert_eq!(store.role_by_id(role.id).await.unwrap(), None);
}

fn known_secret() -> OtpSecret {
    OtpSecret::from_bytes(b"12345678901234567890".to_vec()).unwrap()
}

async fn enrolled(store: &Store, name: &str, method: OtpMethod) -> twostep::domain::Device {
    let user = new_user(store, name).await;
    let pending = store
        .create_pending_device(
            user.id,
            &NewDevice {
                prompt_mode: PromptMode::EveryLogin,
                otp: new_device_otp(method, known_secret()),
            },
            NOW,
        )
        .await
        .unwrap();
    let used = match &pending.otp {
        DeviceOtp::Hotp { hotp, .. } => pending.check(&hotp.generate(0), NOW, 10, 1).unwrap(),
        DeviceOtp::Totp { totp, .. } => pending
            .check(&totp.generate_at(NOW.unix_seconds() - 30), NOW, 10, 1)
            .unwrap(),
    };
    assert!(store.confirm_device(&pending, used, NOW).await.unwrap());
    store.confirmed_device(user.id).await.unwrap().unwrap()
}

async fn a_user_is_read_with_the_confirmed_device_only(db: &TestDb) {
    let store = bootstrapped(db).await;
    let device = enrolled(&store, "jane", OtpMethod::Hotp).await;
    let name = twostep::domain::Username::parse("JANE").unwrap();
    let (user, found) = store
        .user_with_confirmed_device(&name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.username.as_str(), "jane");
    let found = found.expect("the confirmed device");
    assert_eq!(found.id, device.id);
    let (
        DeviceOtp::Hotp { hotp, counter },
        DeviceOtp::Hotp {
            hotp: want,
            counter: at,
        },
    ) = (&found.otp, &device.otp)
    else {
        panic!("hotp devices")
    };
    assert_eq!((hotp.secret.clone(), counter), (want.secret.clone(), at));
    // A pending device is not the confirmed one; a user without any has none.
    let kim = new_user(&store, "kim").await;
    store
        .create_pending_device(
            kim.id,
            &NewDevice {
                prompt_mode: PromptMode::EveryLogin,
                otp: new_device_otp(OtpMethod::Totp, known_secret()),
            },
            NOW,
        )
        .await
        .unwrap();
    let kim_name = twostep::domain::Username::parse("kim").unwrap();
    let (_, none) = store
        .user_with_confirmed_device(&kim_name)
        .await
        .unwrap()
        .unwrap();
    assert!(none.is_none());
    let nobody = twostep::domain::Username::parse("nobody").unwrap();
    assert!(store
        .user_with_confirmed_device(&nobody)
        .await
        .unwrap()
        .is_none());
}

async fn device_secrets_are_encrypted_at_rest(db: &TestDb) {
    let store = bootstrapped(db).await;
    let device = enrolled(&store, "jane", OtpMethod::Totp).await;
    let raw: Vec<u8> = db
        .raw_bytes(&format!(
            "SELECT secret FROM devices WHERE id = {}",
            device.id.0
        ))
        .await;
    let plain = known_secret();
    assert!(
        !raw.windows(plain.as_bytes().len())
            .any(|w| w == plain.as_bytes()),
        "plaintext secret in the row"
    );
    let base32 = plain.to_base32();
    assert!(
        !raw.windows(base32.len()).any(|w| w == base32.as_bytes()),
        "base32 secret in the row"
    );
    assert!(
        raw.len() >= plain.as_bytes().len() + 16,
        "ciphertext with tag"
    );
    // ... and it decrypts to the secret.
    let DeviceOtp::Totp { totp, .. } = &device.otp else {
        panic!("totp")
    };
    assert_eq!(totp.secret, plain);
}

async fn setup_new_device_keeps_the_old_device_until_the_new_one_is_confirmed(db: &TestDb) {
    let store = bootstrapped(db).await;
    let old = enrolled(&store, "jane", OtpMethod::Totp).await;
    let new_secret = OtpSecret::generate(&mut OsRng);
    let pending = store
        .create_pending_device(
            old.user_id,
            &NewDevice {
                prompt_mode: PromptMode::WhenAppropriate,
                otp: new_device_otp(OtpMethod::Hotp, new_secret),
            },
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .confirmed_device(old.user_id)
            .await
            .unwrap()
            .unwrap()
            .id,
        old.id,
        "old still in use"
    );
    assert_eq!(
        store.pending_device(old.user_id).await.unwrap().unwrap().id,
        pending.id
    );
    // A second set-up replaces the pending one, never the confirmed one.
    let pending = store
        .create_pending_device(
            old.user_id,
            &NewDevice {
                prompt_mode: PromptMode::WhenAppropriate,
                otp: new_device_otp(OtpMethod::Hotp, OtpSecret::generate(&mut OsRng)),
            },
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(
        db.raw_count(&format!(
            "SELECT COUNT(*) FROM devices WHERE user_id = {}",
            old.user_id.0
        ))
        .await,
        2
    );
    let DeviceOtp::Hotp { hotp, .. } = &pending.otp else {
        panic!("hotp")
    };
    let used = pending.check(&hotp.generate(0), NOW, 10, 1).unwrap();
    assert!(store.confirm_device(&pending, used, NOW).await.unwrap());
    let now_confirmed = store.confirmed_device(old.user_id).await.unwrap().unwrap();
    assert_eq!(now_confirmed.id, pending.id);
    assert_eq!(now_confirmed.prompt_mode, PromptMode::WhenAppropriate);
    assert!(store.pending_device(old.user_id).await.unwrap().is_none());
    assert!(
        !store.confirm_device(&pending, used, NOW).await.unwrap(),
        "confirmed once"
    );
    // Disable removes it: "Not Enabled".
    assert!(store.delete_devices(old.user_id).await.unwrap());
    assert!(store.confirmed_device(old.user_id).await.unwrap().is_none());
    assert!(!store.delete_devices(old.user_id).await.unwrap());
}

/// Runs `attempts` copies of `attempt` at once and returns how many succeeded.
async fn race<F, Fut>(attempts: usize, attempt: F) -> usize
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(attempts));
    let handles: Vec<_> = (0..attempts)
        .map(|_| {
            let barrier = barrier.clone();
            let future = attempt();
            tokio::spawn(async move {
                barrier.wait().await;
                future.await
            })
        })
        .collect();
    let mut wins = 0;
    for handle in handles {
        wins += usize::from(handle.await.unwrap());
    }
    wins
}

async fn racing_tasks_consume_one_totp_step_exactly_once(db: &TestDb) {
    let store = bootstrapped(db).await;
    let device = enrolled(&store, "jane", OtpMethod::Totp).await;
    let DeviceOtp::Totp { totp, .. } = &device.otp else {
        panic!("totp")
    };
    let used = device
        .check(&totp.generate_at(NOW.unix_seconds()), NOW, 10, 1)
        .unwrap();
    let wins = race(32, || {
        let store = store.clone();
        let id = device.id;
        async move { store.consume_device_use(id, used).await.unwrap() }
    })
    .await;
    assert_eq!(wins, 1);
    let DeviceUse::Totp { step } = used else {
        panic!("totp use")
    };
    let DeviceOtp::Totp { last_step, .. } = store
        .confirmed_device(device.user_id)
        .await
        .unwrap()
        .unwrap()
        .otp
    else {
        panic!("totp")
    };
    assert_eq!(last_step, Some(step));
    assert!(
        !store
            .consume_device_use(device.id, DeviceUse::Totp { step: step - 1 })
            .await
            .unwrap(),
        "older step"
    );
}

async fn racing_tasks_consume_one_hotp_counter_exactly_once(db: &TestDb) {
    let store = bootstrapped(db).await;
    let device = enrolled(&store, "jane", OtpMethod::Hotp).await;
    let DeviceOtp::Hotp { counter, .. } = device.otp else {
        panic!("hotp")
    };
    assert_eq!(counter, 1, "the confirming code used counter 0");
    let used = DeviceUse::Hotp { matched: 4 };
    let wins = race(32, || {
        let store = store.clone();
        let id = device.id;
        async move { store.consume_device_use(id, used).await.unwrap() }
    })
    .await;
    assert_eq!(wins, 1);
    let DeviceOtp::Hotp { counter, .. } = store
        .confirmed_device(device.user_id)
        .await
        .unwrap()
        .unwrap()
        .otp
    else {
        panic!("hotp")
    };
    assert_eq!(counter, 5, "resynchronized past the matched counter");
    assert!(!store
        .consume_device_use(device.id, DeviceUse::Hotp { matched: 3 })
        .await
        .unwrap());
}

/// The hot path writes a code's use and its "OTP accepted" entry in one request: of 32
/// racing uses of one code exactly one is accepted and exactly one entry written, with
/// what the caller gave; a refused use writes no entry.
async fn an_accepted_code_and_its_audit_entry_are_written_together_once(db: &TestDb) {
    let store = bootstrapped(db).await;
    let totp_device = enrolled(&store, "jane", OtpMethod::Totp).await;
    let hotp_device = enrolled(&store, "bob", OtpMethod::Hotp).await;
    let DeviceOtp::Totp { totp, .. } = &totp_device.otp else {
        panic!("totp")
    };
    let totp_use = totp_device
        .check(&totp.generate_at(NOW.unix_seconds()), NOW, 10, 1)
        .unwrap();
    let hotp_use = DeviceUse::Hotp { matched: 2 };
    let entry = |subject: &str| NewAuditEntry {
        event: AuditEvent::OtpAccepted,
        actor: Some("lab-feed".into()),
        subject: Some(subject.into()),
        client_ip: Some("10.1.2.3".into()),
        detail: format!("OTP check: device of {subject}"),
    };
    let accepted = |subject: &'static str| {
        let store = store.clone();
        async move {
            store
                .audit_entries(&AuditQuery {
                    user: Some(subject.into()),
                    event: Some(AuditEvent::OtpAccepted),
                    limit: 100,
                    ..Default::default()
                })
                .await
                .unwrap()
        }
    };
    for (device, user, used, subject) in [
        (totp_device.id, totp_device.user_id, totp_use, "jane"),
        (hotp_device.id, hotp_device.user_id, hotp_use, "bob"),
    ] {
        // Two failures counted before: the accepted code starts the count again.
        for _ in 0..2 {
            store
                .reserve_attempt(user, NOW, 5, NOW.plus_seconds(60))
                .await
                .unwrap();
        }
        let wins = race(32, || {
            let store = store.clone();
            let entry = entry(subject);
            async move {
                store
                    .consume_device_use_audited(device, used, &entry, NOW, user)
                    .await
                    .unwrap()
            }
        })
        .await;
        let after = store.user_by_id(user).await.unwrap().unwrap();
        assert_eq!(
            (after.failed_count, after.consecutive_failures),
            (0, 0),
            "{subject}: reset with the accepted use"
        );
        assert_eq!(wins, 1, "{subject}");
        let entries = accepted(subject).await;
        assert_eq!(
            entries.len(),
            1,
            "{subject}: one entry for one accepted use"
        );
        assert_eq!(entries[0].actor.as_deref(), Some("lab-feed"));
        assert_eq!(entries[0].client_ip.as_deref(), Some("10.1.2.3"));
        assert_eq!(entries[0].detail, format!("OTP check: device of {subject}"));
        assert_eq!(entries[0].at, NOW);
    }
    let DeviceOtp::Hotp { counter, .. } = store
        .confirmed_device(hotp_device.user_id)
        .await
        .unwrap()
        .unwrap()
        .otp
    else {
        panic!("hotp")
    };
    assert_eq!(counter, 3);
    // Refused (the counter moved past it): no entry.
    assert!(!store
        .consume_device_use_audited(
            hotp_device.id,
            DeviceUse::Hotp { matched: 1 },
            &entry("bob"),
            NOW,
            hotp_device.user_id,
        )
        .await
        .unwrap());
    assert_eq!(accepted("bob").await.len(), 1);
    assert_eq!(
        db.raw_count("SELECT COUNT(*) FROM audit_log WHERE event = 'otp_accepted'")
            .await,
        2
    );
}

async fn racing_tasks_consume_one_emailed_otp_exactly_once(db: &TestDb) {
    let store = bootstrapped(db).await;
    let user = new_user(&store, "jane").await;
    let otp = store
        .create_emailed_otp(&emailed(user.id, &[7; 32], &message()), NOW)
        .await
        .unwrap()
        .unwrap();
    let wins = race(32, || {
        let store = store.clone();
        let id = otp.id;
        async move {
            store
                .consume_emailed_otp(id, NOW.plus_seconds(5))
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(wins, 1);
}

/// SPEC section 4: attempts are counted before they are checked, in one statement: of 32
/// racing reservations with Lockout Threshold 5, exactly 5 are granted (the fifth locks)
/// and 27 refused; nothing is counted for a refused one.
async fn racing_attempts_are_granted_up_to_the_threshold_and_lock(db: &TestDb) {
    let store = bootstrapped(db).await;
    let user = new_user(&store, "jane").await;
    let lock_until = NOW.plus_seconds(30 * 60);
    let granted = race(32, || {
        let store = store.clone();
        let id = user.id;
        async move {
            matches!(
                store.reserve_attempt(id, NOW, 5, lock_until).await.unwrap(),
                Reservation::Granted(_)
            )
        }
    })
    .await;
    assert_eq!(granted, 5);
    let after = store.user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!((after.failed_count, after.consecutive_failures), (5, 5));
    assert_eq!(after.locked_until, Some(lock_until));
    assert!(after.is_locked(NOW));
    store.unlock(user.id).await.unwrap();
    let after = store.user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(
        (
            after.failed_count,
            after.consecutive_failures,
            after.locked_until
        ),
        (0, 0, None)
    );
    // The user is gone: refused.
    let missing = twostep::domain::UserId(user.id.0 + 1000);
    assert_eq!(
        store
            .reserve_attempt(missing, NOW, 5, lock_until)
            .await
            .unwrap(),
        Reservation::Refused
    );
}

/// A lock that expired starts a new count toward Lockout Threshold, but the hard limit
/// counts on: at 100 the account is locked until an unlock, whatever Lockout Minutes.
async fn an_expired_lock_starts_a_new_count_but_not_toward_the_hard_limit(db: &TestDb) {
    let store = bootstrapped(db).await;
    let user = new_user(&store, "jane").await;
    let reserve = |at: Timestamp, lock_until: Timestamp| {
        let store = store.clone();
        async move {
            match store
                .reserve_attempt(user.id, at, 3, lock_until)
                .await
                .unwrap()
            {
                Reservation::Granted(counted) => Some(counted),
                Reservation::Refused => None,
            }
        }
    };
    for _ in 0..3 {
        assert!(reserve(NOW, NOW.plus_seconds(60)).await.is_some());
    }
    assert_eq!(reserve(NOW.plus_seconds(59), NOW).await, None, "locked");
    let mut at = NOW.plus_seconds(61);
    let counted = reserve(at, at.plus_seconds(60)).await.unwrap();
    assert_eq!(
        (
            counted.failed_count,
            counted.consecutive_failures,
            counted.locked_until
        ),
        (1, 4, None)
    );
    // Lockout Minutes 0: locked until an administrator unlocks.
    for _ in 0..2 {
        reserve(at, Timestamp::NEVER).await.unwrap();
    }
    let after = store.user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(after.locked_until, Some(Timestamp::NEVER));
    assert!(after.is_locked(at.plus_seconds(10 * 365 * 24 * 3600)));
    store.unlock(user.id).await.unwrap();
    // 100 consecutive failures across 34 expiring locks: the last one never expires.
    let mut last = None;
    for n in 0..HARD_LIMIT {
        if n % 3 == 0 {
            at = at.plus_seconds(61);
        }
        last = reserve(at, at.plus_seconds(60)).await;
        assert!(last.is_some(), "attempt {n}");
    }
    let last = last.unwrap();
    assert_eq!(last.consecutive_failures, HARD_LIMIT);
    assert_eq!(last.locked_until, Some(Timestamp::NEVER));
    assert_eq!(reserve(at.plus_seconds(365 * 24 * 3600), at).await, None);
    store.record_success(user.id).await.unwrap();
    assert!(reserve(at, at.plus_seconds(60)).await.is_some());
}

/// The reservation's one statement (`store::users::reserve_sql`) is the atomic form of
/// the domain's rule, `Lockout::reserve`: a walk through thresholds reached and passed
/// (the threshold changes on the way), locks held and expiring (exactly at their end
/// too) and the hard limit, compared step by step with the counts as stored.
async fn the_reservation_statement_decides_as_the_domain_lockout_rule(db: &TestDb) {
    use twostep::domain::{FailureCounts, Lockout};
    let store = bootstrapped(db).await;
    let user = new_user(&store, "jane").await;
    let mut at = NOW;
    let mut granted = 0;
    for step in 0..400u32 {
        let threshold = match step {
            40..=59 => 6,
            60..=79 => 2,
            _ => 3,
        };
        let lockout = Lockout::new(threshold, 1);
        let before = store.user_by_id(user.id).await.unwrap().unwrap();
        let expected = lockout.reserve(before.failure_counts(), at);
        let got = match store
            .reserve_attempt(user.id, at, lockout.threshold(), lockout.lock_until(at))
            .await
            .unwrap()
        {
            Reservation::Granted(counted) => Some(FailureCounts {
                failed_count: counted.failed_count,
                consecutive_failures: counted.consecutive_failures,
                locked_until: counted.locked_until,
            }),
            Reservation::Refused => None,
        };
        assert_eq!(got, expected, "step {step}: before {before:?}");
        let after = store.user_by_id(user.id).await.unwrap().unwrap();
        assert_eq!(
            after.failure_counts(),
            expected.unwrap_or(before.failure_counts()),
            "step {step}"
        );
        granted += u32::from(got.is_some());
        // Steps of 20 seconds, and now and then exactly to the end of the lock.
        at = match after.locked_until {
            Some(until) if step % 5 == 0 && until != Timestamp::NEVER => until,
            _ => at.plus_seconds(20),
        };
    }
    assert_eq!(granted, HARD_LIMIT, "the walk ends at the hard limit");
    let last = store.user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(last.locked_until, Some(Timestamp::NEVER));
    // Lockout Minutes 0: the lock at the threshold never ends either.
    store.unlock(user.id).await.unwrap();
    let lockout = Lockout::new(1, 0);
    let expected = lockout.reserve(
        store
            .user_by_id(user.id)
            .await
            .unwrap()
            .unwrap()
            .failure_counts(),
        at,
    );
    assert_eq!(
        expected.and_then(|c| c.locked_until),
        Some(Timestamp::NEVER)
    );
    assert!(matches!(
        store
            .reserve_attempt(user.id, at, lockout.threshold(), lockout.lock_until(at))
            .await
            .unwrap(),
        Reservation::Granted(FailureOutcome {
            locked_until: Some(Timestamp::NEVER),
            ..
        })
    ));
}

/// A right password before the code step is neither a failure nor a success: its
/// attempt is given back, and a lock that its count set is lifted.
async fn a_released_attempt_gives_its_count_back(db: &TestDb) {
    let store = bootstrapped(db).await;
    let user = new_user(&store, "jane").await;
    let lock_until = NOW.plus_seconds(60);
    for _ in 0..2 {
        store
            .reserve_attempt(user.id, NOW, 3, lock_until)
            .await
            .unwrap();
    }
    // The third attempt locks; released, the lock goes with it.
    assert!(matches!(
        store
            .reserve_attempt(user.id, NOW, 3, lock_until)
            .await
            .unwrap(),
        Reservation::Granted(FailureOutcome {
            failed_count: 3,
            locked_until: Some(_),
            ..
        })
    ));
    store.release_attempt(user.id, 3).await.unwrap();
    let after = store.user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(
        (
            after.failed_count,
            after.consecutive_failures,
            after.locked_until
        ),
        (2, 2, None)
    );
    // Released after a success reset the counts: they stay at zero.
    store
        .reserve_attempt(user.id, NOW, 3, lock_until)
        .await
        .unwrap();
    store.record_success(user.id).await.unwrap();
    store.release_attempt(user.id, 3).await.unwrap();
    let after = store.user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!((after.failed_count, after.consecutive_failures), (0, 0));
}

async fn emailed_otps_respect_the_request_delay_and_void_older_codes(db: &TestDb) {
    let store = bootstrapped(db).await;
    let user = new_user(&store, "jane").await;
    let first = store
        .create_emailed_otp(&emailed(user.id, &[1; 32], &message()), NOW)
        .await
        .unwrap()
        .unwrap();
    let refused = store
        .create_emailed_otp(
            &emailed(user.id, &[2; 32], &message()),
            NOW.plus_seconds(10),
        )
        .await
        .unwrap();
    assert_eq!(refused.unwrap_err().retry_after, 20);
    let second = store
        .create_emailed_otp(
            &emailed(user.id, &[3; 32], &message()),
            NOW.plus_seconds(30),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(
        !store
            .consume_emailed_otp(first.id, NOW.plus_seconds(31))
            .await
            .unwrap(),
        "voided"
    );
    assert_eq!(second.code_hash, vec![3; 32]);
    assert_eq!((second.user_id, second.transaction_id), (user.id, None));
    assert_eq!(second.created_at, NOW.plus_seconds(30));
    assert_eq!(second.expires_at, NOW.plus_seconds(30 + 900));
    assert!(
        !store
            .consume_emailed_otp(second.id, NOW.plus_seconds(30 + 900))
            .await
            .unwrap(),
        "expired"
    );
    assert!(store
        .consume_emailed_otp(second.id, NOW.plus_seconds(60))
        .await
        .unwrap());
}

/// A finished sign-in deletes its transaction, and with it its codes; an abandoned one is
/// purged when it expires. Neither may reset the request delay (SPEC section 4).
async fn the_request_delay_outlives_the_codes_and_their_transactions(db: &TestDb) {
    let store = bootstrapped(db).await;
    let user = new_user(&store, "jane").await;
    let send = |token: u8, at: Timestamp, delay: u32| {
        let store = store.clone();
        async move {
            let transaction = store
                .create_signin_transaction(
                    &[token; 32],
                    user.id,
                    &TransactionKind::SignIn(vec![PendingStep::EmailOtp]),
                    "10.0.0.1",
                    at,
                    at.plus_seconds(60),
                )
                .await
                .unwrap();
            let message = message();
            let hash = [token; 32];
            let mut new = emailed(user.id, &hash, &message);
            new.transaction_id = Some(transaction.id);
            new.request_delay_seconds = delay;
            (
                transaction,
                store.create_emailed_otp(&new, at).await.unwrap(),
            )
        }
    };
    let (first, otp) = send(1, NOW, 30).await;
    assert!(store
        .consume_emailed_otp(otp.unwrap().id, NOW.plus_seconds(1))
        .await
        .unwrap());
    assert!(store.delete_signin_transaction(first.id).await.unwrap());
    assert_eq!(
        db.raw_count("SELECT COUNT(*) FROM emailed_otps").await,
        0,
        "the codes went with their transaction"
    );
    let (_, refused) = send(2, NOW.plus_seconds(2), 30).await;
    assert_eq!(refused.unwrap_err().retry_after, 28);
    let (_, sent) = send(3, NOW.plus_seconds(30), 30).await;
    assert!(sent.is_ok(), "sent once the delay has passed");

    // The transaction expires and is purged, its code with it: the delay holds.
    assert_eq!(store.purge_expired(NOW.plus_seconds(91)).await.unwrap(), 2);
    assert_eq!(db.raw_count("SELECT COUNT(*) FROM emailed_otps").await, 0);
    let (_, refused) = send(4, NOW.plus_seconds(91), 3600).await;
    assert_eq!(refused.unwrap_err().retry_after, 3600 - 61);
    assert_eq!(db.raw_count("SELECT COUNT(*) FROM outbox").await, 2);
    let (_, sent) = send(5, NOW.plus_seconds(30 + 3600), 3600).await;
    assert!(sent.is_ok());
    assert_eq!(db.raw_count("SELECT COUNT(*) FROM outbox").await, 3);
}

/// However many requests race (on one instance or several), one code per request delay.
async fn racing_requests_for_a_code_pass_the_request_delay_once(db: &TestDb) {
    let store = bootstrapped(db).await;
    let user = new_user(&store, "jane").await;
    // Half the tasks on a second store: another instance.
    let other = db.open().await;
    let mut tasks = Vec::new();
    for n in 0..16u8 {
        let store = if n % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            let message = message();
            store
                .create_emailed_otp(&emailed(user.id, &[n; 32], &message), NOW)
                .await
                .unwrap()
                .is_ok()
        }));
    }
    let mut sent = 0;
    for task in tasks {
        sent += usize::from(task.await.unwrap());
    }
    assert_eq!(sent, 1);
    assert_eq!(db.raw_count("SELECT COUNT(*) FROM outbox").await, 1);
    assert_eq!(db.raw_count("SELECT COUNT(*) FROM emailed_otps").await, 1);
}

async fn the_audit_log_is_append_only_and_filterable(db: &TestDb) {
    let store = bootstrapped(db).await;
    for (event, subject, at) in [
        (AuditEvent::SignInFailed, "jane", 0),
        (AuditEvent::SignInSucceeded, "jane", 10),
        (AuditEvent::SignInSucceeded, "bob", 20),
    ] {
        store
            .audit(
                &NewAuditEntry {
                    event,
                    actor: None,
                    subject: Some(subject.into()),
                    client_ip: Some("10.0.0.1".into()),
                    detail: String::new(),
                },
                NOW.plus_seconds(at),
            )
            .await
            .unwrap();
    }
    let all = store
        .audit_entries(&AuditQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].subject.as_deref(), Some("bob"), "newest first");
    let jane = store
        .audit_entries(&AuditQuery {
            user: Some("jane".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(jane.len(), 2);
    let ok = store
        .audit_entries(&AuditQuery {
            event: Some(AuditEvent::SignInSucceeded),
            since: Some(NOW.plus_seconds(5)),
            until: Some(NOW.plus_seconds(15)),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].subject.as_deref(), Some("jane"));
    assert!(db
        .raw_execute("UPDATE audit_log SET subject = 'mallory'")
        .await
        .is_err());
    assert!(db.raw_execute("DELETE FROM audit_log").await.is_err());
    assert_eq!(db.raw_count("SELECT COUNT(*) FROM audit_log").await, 3);
}

async fn signin_transactions_and_sessions_expire(db: &TestDb) {
    let store = bootstrapped(db).await;
    let user = new_user(&store, "jane").await;
    let tx = store
        .create_signin_transaction(
            &[9; 32],
            user.id,
            &TransactionKind::SignIn(vec![PendingStep::DeviceOtp]),
            "10.0.0.1",
            NOW,
            NOW.plus_seconds(1800),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .signin_transaction(&[9; 32], NOW.plus_seconds(1799))
            .await
            .unwrap(),
        Some(tx.clone())
    );
    assert_eq!(
        store
            .signin_transaction(&[9; 32], NOW.plus_seconds(1800))
            .await
            .unwrap(),
        None
    );
    let device_step = TransactionKind::SignIn(vec![PendingStep::DeviceOtp]);
    let done = TransactionKind::SignIn(Vec::new());
    assert!(!tx.second_factor, "no second factor yet");
    assert!(store
        .advance_signin_transaction(tx.id, &device_step, &done, true)
        .await
        .unwrap());
    let advanced = store
        .signin_transaction(&[9; 32], NOW.plus_seconds(1))
        .await
        .unwrap()
        .unwrap();
    assert!(advanced.second_factor, "the second factor is recorded");
    assert!(
        !store
            .advance_signin_transaction(tx.id, &device_step, &done, false)
            .await
            .unwrap(),
        "moved on already"
    );
    assert!(store.delete_signin_transaction(tx.id).await.unwrap());
    assert!(!store.delete_signin_transaction(tx.id).await.unwrap());

    let session = store
        .create_session(
            &[5; 32],
            user.id,
            "10.0.0.1",
            WITH_OTP,
            NOW,
            NOW.plus_seconds(12 * 3600),
        )
        .await
        .unwrap();
    store
        .touch_session(session.id, NOW.plus_seconds(60))
        .await
        .unwrap();
    let seen = store
        .session(&[5; 32], NOW.plus_seconds(61))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        seen,
        twostep::domain::Session {
            last_seen_at: NOW.plus_seconds(60),
            ..session.clone()
        }
    );
    assert_eq!(session.user_id, user.id);
    assert_eq!(session.client_ip, "10.0.0.1");
    assert_eq!(session.created_at, NOW);
    assert_eq!(
        session.authentication, WITH_OTP,
        "how the user signed in (SPEC 13's amr)"
    );
    assert_eq!(session.last_seen_at, NOW);
    assert_eq!(session.expires_at, NOW.plus_seconds(12 * 3600));
    assert_eq!(
        store
            .session(&[5; 32], NOW.plus_seconds(12 * 3600))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .purge_expired(NOW.plus_seconds(12 * 3600))
            .await
            .unwrap(),
        1
    );

    let token = store
        .create_api_token(&[6; 32], "monitoring", user.id, NOW)
        .await
        .unwrap();
    assert_eq!(store.api_token_user(&[6; 32]).await.unwrap(), Some(user.id));
    store.revoke_api_token(token, NOW).await.unwrap();
    assert_eq!(store.api_token_user(&[6; 32]).await.unwrap(), None);
}

async fn restart_keeps_everything_and_migrations_are_idempotent(db: &TestDb) {
    let store = bootstrapped(db).await;
    let device = enrolled(&store, "jane", OtpMethod::Totp).await;
    let version = store.schema_version().await.unwrap();
    assert!(version >= 1);
    store.close().await;

    for _ in 0..2 {
        let reopened = db.open().await;
        assert_eq!(reopened.schema_version().await.unwrap(), version);
        assert_eq!(reopened.count_users().await.unwrap(), 2);
        let again = reopened
            .confirmed_device(device.user_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.id, device.id);
        let (DeviceOtp::Totp { totp: a, .. }, DeviceOtp::Totp { totp: b, .. }) =
            (&again.otp, &device.otp)
        else {
            panic!("totp")
        };
        assert_eq!(a.secret, b.secret);
        assert!(!reopened.bootstrap("$argon2id$x", false, NOW).await.unwrap());
        reopened.close().await;
    }
}

async fn a_wrong_or_missing_key_is_refused_for_an_existing_database(db: &TestDb) {
    let store = bootstrapped(db).await;
    enrolled(&store, "jane", OtpMethod::Totp).await;
    store.close().await;
    let other = MasterKey::generate(&mut OsRng).to_hex();
    let wrong = db.open_with(KeySource::Hex(other)).await;
    assert!(matches!(wrong, Err(StoreError::WrongKey)), "{wrong:?}");
    let missing_file = db.dir.path().join("no-such.key");
    let missing = db.open_with(KeySource::File(missing_file.clone())).await;
    assert!(
        missing.is_err(),
        "a missing key file for an existing database"
    );
    assert!(
        !missing_file.exists(),
        "no new key is made for an existing database"
    );
    assert!(db.open_with(db.key.clone()).await.is_ok());
}

async fn open_existing_creates_nothing_and_opens_only_a_twostep_database(db: &TestDb) {
    use twostep::store::StoreOptions;
    let options = |key: KeySource| StoreOptions {
        database_url: db.url.clone(),
        key,
        max_connections: Some(2),
    };
    let key_file = db.dir.path().join("twostep.key");
    // Nothing there yet: no database, and none is started.
    let none = Store::open_existing(&options(KeySource::File(key_file.clone()))).await;
    assert!(matches!(none, Ok(None)), "{none:?}");
    assert!(!key_file.exists(), "no key file is created");
    if db.url.starts_with("sqlite:") {
        assert_eq!(std::fs::read_dir(db.dir.path()).unwrap().count(), 0);
    } else {
        let tables = db
            .raw_count(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()",
            )
            .await;
        assert_eq!(tables, 0, "no schema is created");
    }

    let store = bootstrapped(db).await;
    store.close().await;
    let existing = Store::open_existing(&options(db.key.clone()))
        .await
        .unwrap()
        .expect("the database exists now");
    assert_eq!(existing.count_users().await.unwrap(), 1);
    existing.close().await;
    let other = MasterKey::generate(&mut OsRng).to_hex();
    let wrong = Store::open_existing(&options(KeySource::Hex(other))).await;
    assert!(matches!(wrong, Err(StoreError::WrongKey)), "{wrong:?}");
    let missing = Store::open_existing(&options(KeySource::File(key_file.clone()))).await;
    assert!(matches!(missing, Err(StoreError::Key(_))), "{missing:?}");
    assert!(!key_file.exists());
}

async fn corrupt_rows_are_reported_not_trusted(db: &TestDb) {
    let store = bootstrapped(db).await;
    new_user(&store, "jane").await;
    db.raw_execute("UPDATE roles SET permissions = 'manage_users,root' WHERE name_key = 'staff'")
        .await
        .unwrap();
    assert!(matches!(
        store.role_by_name("staff").await,
        Err(StoreError::Corrupt(_))
    ));
    db.raw_execute("UPDATE users SET email = 'not an email' WHERE username = 'jane'")
        .await
        .unwrap();
    assert!(matches!(
        store
            .user_by_username(&Username::parse("jane").unwrap())
            .await,
        Err(StoreError::Corrupt(_))
    ));
    db.raw_execute("UPDATE users SET username = 'Bad Name' WHERE username = 'jane'")
        .await
        .unwrap();
    assert!(matches!(
        store.list_users(None, 0, 10).await,
        Err(StoreError::Corrupt(_))
    ));
}

fn cheap_hasher() -> twostep::password::PasswordHasher {
    twostep::password::PasswordHasher::with_params(2, 1024, 1, 1).unwrap()
}

async fn first_start_uses_the_given_admin_password_without_forced_change(db: &TestDb) {
    use twostep::bootstrap::{first_start, Bootstrap};
    use twostep::password::Password;
    let store = db.open().await;
    let hasher = cheap_hasher();
    let given = "correct horse battery staple".to_owned();
    let outcome = first_start(
        &store,
        &hasher,
        Some(given.clone()),
        "twostep",
        NOW,
        &mut OsRng,
    )
    .await
    .unwrap();
    assert!(matches!(outcome, Bootstrap::CreatedWithGivenPassword));
    let (admin, hash) = store
        .user_with_password_hash(&Username::parse("admin").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(!admin.must_change_password);
    assert!(
        hasher
            .verify(&Password::for_sign_in(given).unwrap(), Some(&hash))
            .await
    );
    let again = first_start(
        &store,
        &hasher,
        Some("another password 123".into()),
        "twostep",
        NOW,
        &mut OsRng,
    )
    .await
    .unwrap();
    assert!(matches!(again, Bootstrap::Existing));
    let (_, unchanged) = store
        .user_with_password_hash(&Username::parse("admin").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unchanged, hash);
    let short = first_start(
        &db.open().await,
        &hasher,
        Some("short".into()),
        "twostep",
        NOW,
        &mut OsRng,
    )
    .await;
    assert!(
        matches!(short, Ok(Bootstrap::Existing)),
        "an existing database ignores the variable"
    );
}

async fn first_start_generates_an_admin_password_that_must_be_changed(db: &TestDb) {
    use twostep::bootstrap::{first_start, Bootstrap, BootstrapError};
    let store = db.open().await;
    let hasher = cheap_hasher();
    let refused = first_start(
        &store,
        &hasher,
        Some("short".into()),
        "twostep",
        NOW,
        &mut OsRng,
    )
    .await;
    assert!(matches!(refused, Err(BootstrapError::GivenPassword(_))));
    // SPEC section 10: a guessable given password is refused too, saying why.
    let guessable = first_start(
        &store,
        &hasher,
        Some("Password1234".into()),
        "twostep",
        NOW,
        &mut OsRng,
    )
    .await;
    assert!(
        matches!(
            guessable,
            Err(BootstrapError::GivenPassword(
                twostep::domain::PasswordProblem::EasyToGuess { .. }
            ))
        ),
        "{guessable:?}"
    );
    assert!(
        store.list_roles().await.unwrap().is_empty(),
        "nothing written"
    );
    let Bootstrap::CreatedWithGeneratedPassword(password) =
        first_start(&store, &hasher, None, "twostep", NOW, &mut OsRng)
            .await
            .unwrap()
    else {
        panic!("a generated password")
    };
    assert_eq!(password.expose().chars().count(), 20);
    let (admin, hash) = store
        .user_with_password_hash(&Username::parse("admin").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(admin.must_change_password);
    assert!(hasher.verify(&password, Some(&hash)).await);
    assert!(hash.starts_with("$argon2id$"));
}

fn message() -> twostep::store::NewOutboxMessage {
    twostep::store::NewOutboxMessage {
        message_id: format!(
            "<twostep.test.{}@localhost>",
            rand::RngCore::next_u64(&mut OsRng)
        ),
        from: "no-reply@localhost".into(),
        to: "jane@example.org".into(),
        payload: b"Subject: code\r\n\r\nYour code is 424242\r\n".to_vec(),
        expires_at: NOW.plus_seconds(900),
    }
}

async fn outbox_messages_are_sealed_claimed_once_and_erased_after_delivery(db: &TestDb) {
    let store = bootstrapped(db).await;
    let user = new_user(&store, "jane").await;
    let otp = store
        .create_emailed_otp(&emailed(user.id, &[7; 32], &message()), NOW)
        .await
        .unwrap()
        .unwrap();
    let raw = db.raw_bytes("SELECT payload FROM outbox").await;
    assert!(
        !raw.windows(6).any(|w| w == b"424242"),
        "the code is sealed at rest"
    );
    assert_eq!(
        store.outbox_state_for_otp(otp.id).await.unwrap(),
        Some(twostep::store::OutboxState::Pending {
            attempts: 0,
            failed: false
        })
    );
    let claimed = store.claim_outbox(NOW, 60, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(claimed[0].payload.ends_with(b"Your code is 424242\r\n"));
    assert_eq!(claimed[0].attempts, 1);
    assert!(
        store
            .claim_outbox(NOW.plus_seconds(59), 60, 10)
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );
    store
        .outbox_retry(claimed[0].id, NOW.plus_seconds(120), "connection refused")
        .await
        .unwrap();
    assert_eq!(
        store.outbox_state_for_otp(otp.id).await.unwrap(),
        Some(twostep::store::OutboxState::Pending {
            attempts: 1,
            failed: true
        }),
        "a failed attempt is visible (\"we are still sending your code\")"
    );
    assert!(
        store
            .claim_outbox(NOW.plus_seconds(119), 60, 10)
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    let again = store
        .claim_outbox(NOW.plus_seconds(120), 60, 10)
        .await
        .unwrap();
    assert_eq!(again[0].attempts, 2);
    store
        .outbox_sent(again[0].id, NOW.plus_seconds(121))
        .await
        .unwrap();
    assert_eq!(
        store.outbox_state_for_otp(otp.id).await.unwrap(),
        Some(twostep::store::OutboxState::Sent)
    );
    assert_eq!(
        db.raw_count("SELECT COUNT(*) FROM outbox WHERE payload IS NULL")
            .await,
        1,
        "erased"
    );
    assert!(store
        .claim_outbox(NOW.plus_seconds(999), 60, 10)
        .await
        .unwrap()
        .is_empty());

    let racing = race(16, || {
        let store = store.clone();
        async move { !store.claim_outbox(NOW, 60, 10).await.unwrap().is_empty() }
    });
    store.enqueue(&message(), NOW).await.unwrap();
    assert_eq!(racing.await, 1, "one worker claims a message");
}

fn emailed<'a>(
    user_id: UserId,
    code_hash: &'a [u8],
    message: &'a twostep::store::NewOutboxMessage,
) -> twostep::store::NewEmailedOtp<'a> {
    twostep::store::NewEmailedOtp {
        user_id,
        transaction_id: None,
        code_hash,
        request_delay_seconds: 30,
        valid_seconds: 900,
        message,
    }
}

/// SPEC section 11 (a role to Force says how many users have no device; Edit User shows
/// when the device was enrolled): a pending device is no device.
async fn users_without_a_device_are_counted_per_role_and_enrolment_has_its_time(db: &TestDb) {
    let store = bootstrapped(db).await;
    let staff = staff_role(&store).await;
    assert_eq!(store.users_without_device(staff.id).await.unwrap(), 0);
    new_user(&store, "ann").await;
    let bea = new_user(&store, "bea").await;
    let device = enrolled(&store, "cy", OtpMethod::Totp).await;
    let pending = store
        .create_pending_device(
            bea.id,
            &NewDevice {
                prompt_mode: PromptMode::EveryLogin,
                otp: new_device_otp(OtpMethod::Totp, known_secret()),
            },
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(
        store.users_without_device(staff.id).await.unwrap(),
        2,
        "ann and bea (pending only); not cy"
    );
    let admins = store
        .role_by_name("System Administrator")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.users_without_device(admins.id).await.unwrap(),
        1,
        "admin"
    );
    assert_eq!(
        store.device_confirmed_at(device.id).await.unwrap(),
        Some(NOW)
    );
    assert_eq!(store.device_confirmed_at(pending.id).await.unwrap(), None);
}

/// SPEC 10: the account page lists the user's live sessions (not expired, not idle, not
/// another user's), and "sign out other sessions" ends all of them but one.
async fn a_users_live_sessions_are_listed_and_the_others_end_in_one_statement(db: &TestDb) {
    let store = bootstrapped(db).await;
    let jane = new_user(&store, "jane").await;
    let john = new_user(&store, "john").await;
    let later = NOW.plus_seconds(12 * 3600);
    let first = store
        .create_session(&[1; 32], jane.id, "10.0.0.1", PASSWORD_ONLY, NOW, later)
        .await
        .unwrap();
    let second = store
        .create_session(
            &[2; 32],
            jane.id,
            "10.0.0.2",
            PASSWORD_ONLY,
            NOW.plus_seconds(10),
            later,
        )
        .await
        .unwrap();
    // Idle since before the cut-off, and expired: not listed.
    store
        .create_session(
            &[3; 32],
            jane.id,
            "10.0.0.3",
            PASSWORD_ONLY,
            NOW.plus_seconds(-7200),
            later,
        )
        .await
        .unwrap();
    store
        .create_session(
            &[4; 32],
            jane.id,
            "10.0.0.4",
            PASSWORD_ONLY,
            NOW,
            NOW.plus_seconds(5),
        )
        .await
        .unwrap();
    let johns = store
        .create_session(&[5; 32], john.id, "10.0.0.5", PASSWORD_ONLY, NOW, later)
        .await
        .unwrap();
    let at = NOW.plus_seconds(20);
    let idle_since = at.plus_seconds(-1800);
    let live = store.live_sessions(jane.id, at, idle_since).await.unwrap();
    assert_eq!(live, [first.clone(), second.clone()]);

    assert_eq!(
        store
            .delete_other_sessions(jane.id, second.id)
            .await
            .unwrap(),
        3
    );
    let live = store.live_sessions(jane.id, at, idle_since).await.unwrap();
    assert_eq!(live, [second]);
    assert!(store.session(&[1; 32], at).await.unwrap().is_none());
    assert_eq!(
        store.live_sessions(john.id, at, idle_since).await.unwrap(),
        [johns]
    );
}

fn oidc_client(client_id: &str, confidential: bool) -> ClientRegistration {
    ClientRegistration {
        client_id: ClientId::parse(client_id).unwrap(),
        name: format!("Application {client_id}"),
        redirect_uris: vec![
            RedirectUri::parse(&format!("https://{client_id}.example.org/callback")).unwrap(),
            RedirectUri::parse("http://127.0.0.1:8400/cb").unwrap(),
        ],
        post_logout_redirect_uris: vec![RedirectUri::parse(&format!(
            "https://{client_id}.example.org/"
        ))
        .unwrap()],
        confidential,
        require_2fa: !confidential,
    }
}

/// SPEC 13's client registry: a client is stored and read back as registered (its
/// redirect URIs exactly, in order), listed by client id, changed (name, URIs,
/// `require_2fa`; confidentiality and secret stay) and deleted; only a confidential
/// client has a secret hash.
async fn oidc_clients_are_registered_listed_changed_and_deleted(db: &TestDb) {
    let store = bootstrapped(db).await;
    let wiki = oidc_client("wiki", true);
    let app = oidc_client("app.mobile", false);
    assert_eq!(
        store
            .create_oidc_client(&wiki, Some(&[7u8; 32]), NOW)
            .await
            .unwrap(),
        wiki
    );
    assert_eq!(
        store.create_oidc_client(&app, None, NOW).await.unwrap(),
        app
    );
    assert_eq!(
        store.list_oidc_clients().await.unwrap(),
        [app.clone(), wiki.clone()]
    );
    assert_eq!(
        store.oidc_client(&wiki.client_id).await.unwrap(),
        Some(wiki.clone())
    );
    assert_eq!(
        store
            .oidc_client(&ClientId::parse("WIKI").unwrap())
            .await
            .unwrap(),
        None,
        "client ids are exact"
    );
    assert_eq!(
        store
            .oidc_client_secret_hash(&wiki.client_id)
            .await
            .unwrap(),
        Some(vec![7u8; 32])
    );
    assert_eq!(
        store.oidc_client_secret_hash(&app.client_id).await.unwrap(),
        None
    );

    let changed = ClientRegistration {
        name: "Team Wiki".into(),
        redirect_uris: vec![RedirectUri::parse("https://wiki.example.org/oidc").unwrap()],
        post_logout_redirect_uris: vec![],
        require_2fa: true,
        ..wiki.clone()
    };
    assert_eq!(
        store.update_oidc_client(&changed, NOW).await.unwrap(),
        changed
    );
    assert_eq!(
        store.oidc_client(&wiki.client_id).await.unwrap(),
        Some(changed)
    );
    assert_eq!(
        store
            .oidc_client_secret_hash(&wiki.client_id)
            .await
            .unwrap(),
        Some(vec![7u8; 32]),
        "a change keeps the secret"
    );
    assert!(matches!(
        store
            .update_oidc_client(&oidc_client("nobody", false), NOW)
            .await,
        Err(StoreError::NotFound)
    ));

    store.delete_oidc_client(&wiki.client_id).await.unwrap();
    assert_eq!(store.oidc_client(&wiki.client_id).await.unwrap(), None);
    assert!(matches!(
        store.delete_oidc_client(&wiki.client_id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.list_oidc_clients().await.unwrap(), [app]);
}

/// SPEC 13: a client id is registered once; the second registration is
/// `Conflict::ClientIdTaken` and leaves the first as it was. A secret goes with a
/// confidential client only.
async fn a_duplicate_client_id_is_a_conflict_and_writes_nothing(db: &TestDb) {
    let store = bootstrapped(db).await;
    let first = oidc_client("wiki", false);
    store.create_oidc_client(&first, None, NOW).await.unwrap();
    let second = ClientRegistration {
        name: "Another wiki".into(),
        ..oidc_client("wiki", true)
    };
    assert!(matches!(
        store
            .create_oidc_client(&second, Some(&[1u8; 32]), NOW)
            .await,
        Err(StoreError::Conflict(Conflict::ClientIdTaken))
    ));
    assert_eq!(store.list_oidc_clients().await.unwrap(), [first]);
    assert_eq!(
        db.raw_count("SELECT COUNT(*) FROM oidc_clients WHERE secret_hash IS NOT NULL")
            .await,
        0
    );
    assert!(store
        .create_oidc_client(&oidc_client("public", false), Some(&[1u8; 32]), NOW)
        .await
        .is_err());
    assert!(store
        .create_oidc_client(&oidc_client("secret", true), None, NOW)
        .await
        .is_err());
    assert_eq!(db.raw_count("SELECT COUNT(*) FROM oidc_clients").await, 1);
}

/// SPEC 13's permission on a database made before it: migration 0007 gives
/// `manage_applications` to the role holding every earlier permission (the bootstrap's
/// System Administrator), and to no other role. A new database's administrator has it
/// from the bootstrap.
async fn an_existing_administrator_role_gets_manage_applications_by_migration(db: &TestDb) {
    let store = bootstrapped(db).await;
    let admin = store
        .role_by_name("System Administrator")
        .await
        .unwrap()
        .unwrap();
    assert!(
        admin.has(Permission::ManageApplications),
        "a new database's administrator"
    );
    store.close().await;

    // The database as version 6 left it.
    let before = "manage_users,manage_roles,manage_system_settings,manage_2fa_bypass,\
                  manage_ip_settings,view_audit_log,verify_otp";
    db.raw_execute(&format!(
        "UPDATE roles SET permissions = '{before}' WHERE name_key = 'system administrator'"
    ))
    .await
    .unwrap();
    db.raw_execute("UPDATE roles SET permissions = 'manage_users' WHERE name_key = 'staff'")
        .await
        .unwrap();
    // What migrations 0012 (the audit chain), 0011 (temporary access), 0010 (session
    // limits), 0009 (security keys) and 0008 (the provider's state) added on top, then
    // 0007's table.
    if db.url.starts_with("sqlite") {
        db.raw_execute("DROP TRIGGER audit_log_no_update")
            .await
            .unwrap();
    }
    for sql in [
        "DROP TABLE audit_chain",
        "DROP INDEX audit_log_unsealed",
        "DROP INDEX audit_log_seq",
        "ALTER TABLE audit_log DROP COLUMN seq",
        "ALTER TABLE audit_log DROP COLUMN prev_hash",
        "ALTER TABLE audit_log DROP COLUMN hash",
        "DROP TABLE temporary_access_codes",
        "ALTER TABLE roles DROP COLUMN session_idle_minutes",
        "ALTER TABLE roles DROP COLUMN session_max_hours",
        "DROP TABLE webauthn_challenges",
        "DROP TABLE security_keys",
        "DROP TABLE webauthn_user_handles",
        "DROP TABLE oidc_access_tokens",
        "DROP TABLE oidc_refresh_tokens",
        "DROP TABLE oidc_grants",
        "DROP TABLE oidc_codes",
        "DROP TABLE oidc_requests",
        "DROP TABLE oidc_subjects",
        "DROP TABLE oidc_signing_keys",
        "ALTER TABLE sessions DROP COLUMN factors",
        "ALTER TABLE signin_transactions DROP COLUMN second_factor",
        "DROP TABLE oidc_clients",
        "DELETE FROM _sqlx_migrations WHERE version >= 7",
    ] {
        db.raw_execute(sql).await.unwrap();
    }

    let store = db.open().await;
    let admin = store
        .role_by_name("System Administrator")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(admin.permissions, Permission::ALL.into_iter().collect());
    let staff = store.role_by_name("Staff").await.unwrap().unwrap();
    assert_eq!(staff.permissions, [Permission::ManageUsers].into());
    // SPEC 15: migration 0010 gives the existing roles the default session limits.
    assert_eq!(staff.session_limits, SessionLimits::DEFAULT);
    assert_eq!(admin.session_limits, SessionLimits::DEFAULT);
    assert_eq!(store.list_oidc_clients().await.unwrap(), []);
    store.close().await;
}
