//! The admin subcommands (SPEC section 9: `twostep user|role|settings|ip ...`; SPEC 13:
//! `twostep oidc client ...`), run as the
//! real binary on the database of a running app: each change shows in the store, is
//! audited with the actor "cli", and each refusal has its exit code (1 refused, 2 usage,
//! 3 no usable database).

use std::path::Path;
use std::process::Stdio;

use serde_json::json;
use tokio::io::AsyncWriteExt;
use twostep::domain::AuditEntry;
use twostep::domain::AuditEvent;
use twostep::domain::{PromptMode, Require2fa, Username};
use twostep::password::Password;
use twostep::store::AuditQuery;

use crate::helpers::{spawn_app, spawn_app_with, AppOptions, NowTs, TestApp, TestDb};

/// What one run of the binary did.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    #[track_caller]
    pub(crate) fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "the command failed: {self:?}");
        &self.stdout
    }

    #[track_caller]
    pub(crate) fn refused(&self, message: &str) {
        assert_eq!(self.code, 1, "expected a refusal: {self:?}");
        assert!(self.stderr.contains(message), "{self:?} names {message:?}");
        assert!(self.stdout.is_empty(), "nothing on stdout: {self:?}");
    }
}

/// Runs `twostep ARGS` with nothing from the environment but `env`, on `stdin`.
pub(crate) async fn twostep_with(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_twostep"));
    command
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("the binary starts");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(text.as_bytes()).await.unwrap();
        drop(pipe);
    }
    let output = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the command finishes")
        .unwrap();
    Run {
        code: output.status.code().expect("an exit code"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Runs `twostep ARGS --data-dir <the app's data dir>`.
pub(crate) async fn cli(app: &TestApp, args: &[&str]) -> Run {
    cli_in(app.dir.path(), args, None).await
}

async fn cli_stdin(app: &TestApp, args: &[&str], stdin: &str) -> Run {
    cli_in(app.dir.path(), args, Some(stdin)).await
}

async fn cli_in(dir: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let dir = dir.to_str().unwrap();
    let mut all = args.to_vec();
    all.extend(["--data-dir", dir]);
    twostep_with(&all, &[], stdin).await
}

/// The audit entries of `event`, newest first.
async fn audited(app: &TestApp, event: AuditEvent) -> Vec<AuditEntry> {
    app.store
        .audit_entries(&AuditQuery {
            event: Some(event),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
}

#[track_caller]
fn assert_cli_audit(entries: &[AuditEntry], subject: Option<&str>) -> AuditEntry {
    let entry = entries.first().expect("an audit entry").clone();
    assert_eq!(entry.actor.as_deref(), Some("cli"), "{entry:?}");
    assert_eq!(entry.subject.as_deref(), subject, "{entry:?}");
    entry
}

async fn user(app: &TestApp, name: &str) -> Option<twostep::domain::User> {
    app.store
        .user_by_username(&Username::parse(name).unwrap())
        .await
        .unwrap()
}

async fn role_name_of(app: &TestApp, name: &str) -> String {
    let user = user(app, name).await.expect("the user exists");
    app.store
        .role_by_id(user.role_id)
        .await
        .unwrap()
        .unwrap()
        .name
        .as_str()
        .to_owned()
}

async fn password_works(app: &TestApp, name: &str, password: &str) -> bool {
    let (_, hash) = app
        .store
        .user_with_password_hash(&Username::parse(name).unwrap())
        .await
        .unwrap()
        .unwrap();
    app.hasher
        .verify(
            &Password::for_sign_in(password.to_owned()).unwrap(),
            Some(&hash),
        )
        .await
}

/// The lines of a table after its header.
fn rows(table: &str) -> Vec<Vec<&str>> {
    table
        .lines()
        .skip(1)
        .map(|line| line.split('\t').collect())
        .collect()
}

// ----- user -----

#[tokio::test]
async fn user_add_with_password_stdin_creates_a_user_who_signs_in() {
    let app = spawn_app().await;
    cli(
        &app,
        &["role", "set", "Clerks", "--require-2fa", "no", "--create"],
    )
    .await
    .ok();

    let out = cli_stdin(
        &app,
        &[
            "user",
            "add",
            "Carol",
            "--display-name",
            "Carol Clerk",
            "--email",
            "carol@example.org",
            "--role",
            "clerks",
            "--password-stdin",
        ],
        "carol's orchard lantern 123\n",
    )
    .await;
    assert_eq!(out.ok(), "added user carol (role Clerks)\n");
    assert!(!out.stdout.contains("orchard lantern") && !out.stderr.contains("orchard lantern"));

    let carol = user(&app, "carol").await.expect("carol exists");
    assert_eq!(carol.display_name.as_str(), "Carol Clerk");
    assert_eq!(carol.email.unwrap().as_str(), "carol@example.org");
    assert!(!carol.must_change_password);
    assert_eq!(role_name_of(&app, "carol").await, "Clerks");
    let (status, answer) = app
        .post(
            "/api/v1/signin",
            json!({"username": "carol", "password": "carol's orchard lantern 123"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "signed_in", "{answer}");

    let entry = assert_cli_audit(&audited(&app, AuditEvent::UserCreated).await, Some("carol"));
    assert!(!entry.detail.contains("orchard lantern"));
}

#[tokio::test]
async fn user_add_with_generate_password_prints_it_once_and_forces_a_change() {
    let app = spawn_app().await;
    // No 2FA in this role: the forced change is the only step after the password.
    app.role("Clerks", Require2fa::No, false, false).await;
    let out = cli(
        &app,
        &[
            "user",
            "add",
            "dave",
            "--display-name",
            "Dave",
            "--role",
            "Clerks",
            "--generate-password",
        ],
    )
    .await;
    let lines: Vec<&str> = out.ok().lines().collect();
    assert_eq!(lines[0], "added user dave (role Clerks)");
    let password = lines[1]
        .strip_prefix("one-time password: ")
        .expect("the generated password");
    assert_eq!(password.len(), 20);
    assert!(password_works(&app, "dave", password).await);
    assert!(user(&app, "dave").await.unwrap().must_change_password);
    let (status, answer) = app
        .post(
            "/api/v1/signin",
            json!({"username": "dave", "password": password}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "password_change_required", "{answer}");
    for entry in app
        .store
        .audit_entries(&AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
    {
        assert!(!entry.detail.contains(password), "{entry:?}");
    }
}

#[tokio::test]
async fn user_add_refuses_an_unknown_role_a_taken_name_and_a_short_password() {
    let app = spawn_app().await;
    let add = |name: &'static str, role: &'static str| {
        [
            "user",
            "add",
            name,
            "--display-name",
            "Someone",
            "--role",
            role,
            "--password-stdin",
        ]
    };
    cli_stdin(&app, &add("erin", "Surgeons"), "a good long password\n")
        .await
        .refused("there is no role named \"Surgeons\"");
    assert!(user(&app, "erin").await.is_none());
    cli_stdin(&app, &add("ADMIN", "Staff"), "a good long password\n")
        .await
        .refused("a user with this username already exists");
    cli_stdin(&app, &add("erin", "Staff"), "short\n")
        .await
        .refused("the password is too short");
    assert!(user(&app, "erin").await.is_none());
    assert!(audited(&app, AuditEvent::UserCreated).await.is_empty());
}

#[tokio::test]
async fn user_set_role_changes_the_role_and_refuses_unknown_users_and_roles() {
    let app = spawn_app().await;
    let staff = app.role("Staff", Require2fa::Encourage, false, false).await;
    app.user("frank", &staff, true).await;

    let out = cli(&app, &["user", "set-role", "Frank", "interface user"]).await;
    assert_eq!(out.ok(), "user frank now has the role Interface User\n");
    assert_eq!(role_name_of(&app, "frank").await, "Interface User");
    let entry = assert_cli_audit(&audited(&app, AuditEvent::UserChanged).await, Some("frank"));
    assert!(entry.detail.contains("role=Interface User"), "{entry:?}");

    cli(&app, &["user", "set-role", "frank", "Nobody"])
        .await
        .refused("there is no role named \"Nobody\"");
    cli(&app, &["user", "set-role", "ghost", "Staff"])
        .await
        .refused("there is no user named \"ghost\"");
    assert_eq!(role_name_of(&app, "frank").await, "Interface User");
}

#[tokio::test]
async fn user_reset_password_from_stdin_replaces_the_password_and_forces_a_change() {
    let app = spawn_app().await;
    let clerks = app.role("Clerks", Require2fa::No, false, false).await;
    app.user("gina", &clerks, true).await;

    let out = cli_stdin(
        &app,
        &["user", "reset-password", "gina", "--password-stdin"],
        "gina's new password 456\r\n",
    )
    .await;
    assert!(
        out.ok().starts_with("reset the password of gina"),
        "{out:?}"
    );
    assert!(!out.stdout.contains("456"));
    assert!(password_works(&app, "gina", "gina's new password 456").await);
    assert!(!password_works(&app, "gina", &TestApp::password_of("gina")).await);
    assert!(user(&app, "gina").await.unwrap().must_change_password);
    let (status, answer) = app
        .post(
            "/api/v1/signin",
            json!({"username": "gina", "password": "gina's new password 456"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "password_change_required", "{answer}");
    let entry = assert_cli_audit(
        &audited(&app, AuditEvent::PasswordChanged).await,
        Some("gina"),
    );
    assert!(!entry.detail.contains("456"));

    let generated = cli(
        &app,
        &["user", "reset-password", "gina", "--generate-password"],
    )
    .await;
    let password = generated
        .ok()
        .lines()
        .find_map(|line| line.strip_prefix("one-time password: "))
        .expect("the generated password");
    assert!(password_works(&app, "gina", password).await);

    cli_stdin(
        &app,
        &["user", "reset-password", "ghost", "--password-stdin"],
        "a good long password\n",
    )
    .await
    .refused("there is no user named \"ghost\"");
    cli_stdin(
        &app,
        &["user", "reset-password", "gina", "--password-stdin"],
        "",
    )
    .await
    .refused("the password is empty");
    assert!(password_works(&app, "gina", password).await);
}

/// SPEC 12: a directory user's password is the directory's: `user reset-password` refuses
/// before reading one, and nothing is stored; `user list` names each user's source.
#[tokio::test]
async fn a_directory_users_password_cannot_be_reset_and_the_list_shows_its_source() {
    let app = spawn_app().await;
    let staff = app.role("Staff", Require2fa::Encourage, false, false).await;
    app.directory_user("dana", &staff, &[]).await;
    cli_stdin(
        &app,
        &["user", "reset-password", "dana", "--password-stdin"],
        "a good long passphrase for dana 77\n",
    )
    .await
    .refused("dana: this user signs in with the directory's password; reset it in the directory");
    cli(
        &app,
        &["user", "reset-password", "dana", "--generate-password"],
    )
    .await
    .refused("reset it in the directory");
    assert!(!password_works(&app, "dana", "a good long passphrase for dana 77").await);
    let out = cli(&app, &["user", "list", "--search", "dana"]).await;
    assert_eq!(
        rows(out.ok()),
        vec![vec![
            "dana",
            "dana Directory",
            "Staff",
            "Not Enabled",
            "no",
            "ldap"
        ]]
    );
}

#[tokio::test]
async fn user_unlock_clears_a_lock() {
    let app = spawn_app().await;
    let staff = app.role("Staff", Require2fa::Encourage, false, false).await;
    let hank = app.user("hank", &staff, true).await;
    app.store
        .reserve_attempt(
            hank.id,
            app.clock.now_ts(),
            1,
            twostep::clock::Timestamp::NEVER,
        )
        .await
        .unwrap();
    let listed = cli(&app, &["user", "list", "--search", "hank"]).await;
    assert_eq!(rows(listed.ok())[0][4], "yes");

    assert_eq!(
        cli(&app, &["user", "unlock", "hank"]).await.ok(),
        "unlocked hank\n"
    );
    let hank = user(&app, "hank").await.unwrap();
    assert_eq!(hank.locked_until, None);
    assert_eq!(hank.failed_count, 0);
    let listed = cli(&app, &["user", "list", "--search", "hank"]).await;
    assert_eq!(rows(listed.ok())[0][4], "no");
    assert_cli_audit(&audited(&app, AuditEvent::Unlocked).await, Some("hank"));

    cli(&app, &["user", "unlock", "ghost"])
        .await
        .refused("there is no user named \"ghost\"");
}

#[tokio::test]
async fn user_disable_2fa_removes_the_device() {
    let app = spawn_app().await;
    let staff = app.role("Staff", Require2fa::Encourage, false, false).await;
    let ivy = app.user("ivy", &staff, true).await;
    app.enroll_totp(&ivy, PromptMode::EveryLogin).await;
    let listed = cli(&app, &["user", "list", "--search", "ivy"]).await;
    assert_eq!(rows(listed.ok())[0][3], "Enabled");

    let out = cli(&app, &["user", "disable-2fa", "ivy"]).await;
    assert_eq!(out.ok(), "disabled 2-step verification of ivy\n");
    assert!(app.store.confirmed_device(ivy.id).await.unwrap().is_none());
    let listed = cli(&app, &["user", "list", "--search", "ivy"]).await;
    assert_eq!(rows(listed.ok())[0][3], "Not Enabled");
    assert_cli_audit(
        &audited(&app, AuditEvent::DeviceDisabled).await,
        Some("ivy"),
    );

    // Nothing left to disable: not an error, and nothing audited.
    let again = cli(&app, &["user", "disable-2fa", "ivy"]).await;
    assert!(again.ok().contains("nothing changed"));
    assert_eq!(audited(&app, AuditEvent::DeviceDisabled).await.len(), 1);
    cli(&app, &["user", "disable-2fa", "ghost"])
        .await
        .refused("there is no user named \"ghost\"");
}

/// SPEC 15: `user temporary-access` prints the code once, audited with the reason as
/// the CLI; the code signs in at the device step; bad terms are refused and store
/// nothing; `user revoke-temporary-access` ends it.
#[tokio::test]
async fn user_temporary_access_prints_a_code_once_and_revoke_ends_it() {
    let app = spawn_app().await;
    let clinicians = app
        .role("Clinicians", Require2fa::Force, false, false)
        .await;
    let ivy = app.user("ivy", &clinicians, true).await;
    app.enroll_totp(&ivy, PromptMode::EveryLogin).await;
    cli(
        &app,
        &[
            "user",
            "temporary-access",
            "ivy",
            "--minutes",
            "0",
            "--reason",
            "x",
        ],
    )
    .await
    .refused("minutes must be a whole number from 1 to 1440");
    cli(
        &app,
        &[
            "user",
            "temporary-access",
            "ivy",
            "--uses",
            "11",
            "--reason",
            "x",
        ],
    )
    .await
    .refused("uses must be a whole number from 1 to 10");
    cli(
        &app,
        &["user", "temporary-access", "ghost", "--reason", "x"],
    )
    .await
    .refused("there is no user named \"ghost\"");
    assert!(app.store.temporary_access(ivy.id).await.unwrap().is_none());

    let run = cli(
        &app,
        &[
            "user",
            "temporary-access",
            "ivy",
            "--minutes",
            "20",
            "--uses",
            "2",
            "--reason",
            "INC-9 phone lost",
        ],
    )
    .await;
    let out = run.ok();
    assert!(out.starts_with("temporary access code for ivy: "), "{out}");
    assert!(out.contains("works for 2 sign-in(s) until "), "{out}");
    let code = out
        .trim_start_matches("temporary access code for ivy: ")
        .split('\n')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        twostep::domain::TemporaryAccessCode::parse(&code).is_ok(),
        "{code}"
    );
    let entry = assert_cli_audit(
        &audited(&app, AuditEvent::TemporaryAccessIssued).await,
        Some("ivy"),
    );
    assert_eq!(entry.detail, "minutes=20 uses=2 reason=INC-9 phone lost");
    // The command ran on the machine's clock; the server's is the tests' own: it moves to
    // the moment the code was issued.
    let stored = app.store.temporary_access(ivy.id).await.unwrap().unwrap();
    assert_eq!((stored.uses, stored.uses_left), (2, 2));
    app.clock.set(stored.created_at);
    let (status, body) = app
        .post(
            "/api/v1/signin",
            serde_json::json!({"username": "ivy", "password": TestApp::password_of("ivy")}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let (status, body) = app
        .post(
            "/api/v1/signin/otp",
            serde_json::json!({"transaction": body["transaction"], "code": code}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    assert_eq!(body["status"], "signed_in", "{body}");

    let out = cli(&app, &["user", "revoke-temporary-access", "ivy"]).await;
    assert_eq!(out.ok(), "revoked the temporary access code of ivy\n");
    assert!(app.store.temporary_access(ivy.id).await.unwrap().is_none());
    cli(&app, &["user", "revoke-temporary-access", "ivy"])
        .await
        .refused("ivy has no temporary access code");
}

#[tokio::test]
async fn user_list_is_a_table_one_user_a_line_and_searches() {
    let app = spawn_app().await;
    let staff = app.role("Staff", Require2fa::Encourage, false, false).await;
    app.user("jack", &staff, true).await;
    let jill = app.user("jill", &staff, false).await;
    app.enroll_totp(&jill, PromptMode::WhenAppropriate).await;

    let out = cli(&app, &["user", "list"]).await;
    let table = out.ok();
    assert_eq!(
        table.lines().next().unwrap(),
        "username\tdisplay_name\trole\ttwo_step\tlocked\tsource"
    );
    assert_eq!(
        rows(table),
        vec![
            vec![
                "admin",
                "Administrator",
                "System Administrator",
                "Not Enabled",
                "no",
                "local"
            ],
            vec![
                "jack",
                "jack Display",
                "Staff",
                "Not Enabled",
                "no",
                "local"
            ],
            vec!["jill", "jill Display", "Staff", "Enabled", "no", "local"],
        ]
    );
    let found = cli(&app, &["user", "list", "--search", "JACK@example"]).await;
    assert_eq!(
        rows(found.ok()),
        vec![vec![
            "jack",
            "jack Display",
            "Staff",
            "Not Enabled",
            "no",
            "local"
        ]]
    );
    let none = cli(&app, &["user", "list", "--search", "nobody"]).await;
    assert_eq!(rows(none.ok()).len(), 0);
}

// ----- role -----

#[tokio::test]
async fn role_list_shows_every_role() {
    let app = spawn_app().await;
    let out = cli(&app, &["role", "list"]).await;
    let table = out.ok();
    assert_eq!(
        table.lines().next().unwrap(),
        "name\trequire_2fa\totp_required\tinterface\tpermissions\t\
         session_idle_minutes\tsession_max_hours"
    );
    let rows = rows(table);
    assert!(rows.contains(&vec!["Interface User", "no", "no", "yes", "", "30", "12"]));
    assert!(rows.contains(&vec!["Staff", "encourage", "no", "no", "", "30", "12"]));
    let admin = rows
        .iter()
        .find(|row| row[0] == "System Administrator")
        .unwrap();
    assert!(admin[4].contains("manage_users") && admin[4].contains("verify_otp"));
}

#[tokio::test]
async fn role_set_changes_or_creates_a_role_and_refuses_bad_values() {
    let app = spawn_app().await;
    let out = cli(
        &app,
        &[
            "role",
            "set",
            "staff",
            "--require-2fa",
            "force",
            "--otp-required",
            "yes",
            "--permissions",
            "view_audit_log,manage_users",
        ],
    )
    .await;
    assert_eq!(
        out.ok(),
        "Staff\tforce\tyes\tno\tmanage_users,view_audit_log\t30\t12\n"
    );
    let staff = app.store.role_by_name("Staff").await.unwrap().unwrap();
    assert_eq!(staff.security.require_2fa(), Require2fa::Force);
    assert!(staff.security.otp_required());
    assert_eq!(staff.permissions.len(), 2);
    let entry = assert_cli_audit(&audited(&app, AuditEvent::RoleChanged).await, None);
    assert!(
        entry
            .detail
            .contains("before: name=Staff require_2fa=encourage")
            && entry.detail.contains("after: name=Staff require_2fa=force"),
        "{entry:?}"
    );

    // Options not given keep their value; an empty list clears the permissions.
    cli(&app, &["role", "set", "Staff", "--permissions", ""])
        .await
        .ok();
    let staff = app.store.role_by_name("Staff").await.unwrap().unwrap();
    assert!(staff.permissions.is_empty());
    assert_eq!(staff.security.require_2fa(), Require2fa::Force);

    cli(&app, &["role", "set", "Porters", "--require-2fa", "no"])
        .await
        .refused("there is no role named \"Porters\"; add --create");
    let created = cli(
        &app,
        &["role", "set", "Porters", "--interface", "yes", "--create"],
    )
    .await;
    assert_eq!(created.ok(), "Porters\tno\tno\tyes\t\t30\t12\n");
    assert!(audited(&app, AuditEvent::RoleChanged).await[0]
        .detail
        .starts_with("created: name=Porters"));

    // The seed's WARNING: an interface role never requires 2FA nor OTP.
    let before = audited(&app, AuditEvent::RoleChanged).await.len();
    cli(&app, &["role", "set", "Porters", "--otp-required", "yes"])
        .await
        .refused("an interface role cannot require an emailed OTP");
    cli(
        &app,
        &[
            "role",
            "set",
            "Porters",
            "--permissions",
            "manage_everything",
        ],
    )
    .await
    .refused("unknown permission \"manage_everything\"");
    let porters = app.store.role_by_name("Porters").await.unwrap().unwrap();
    assert!(!porters.security.otp_required());
    assert_eq!(audited(&app, AuditEvent::RoleChanged).await.len(), before);

    let usage = cli(&app, &["role", "set", "Porters", "--require-2fa", "always"]).await;
    assert_eq!(usage.code, 2, "{usage:?}");
}

// ----- settings -----

#[tokio::test]
async fn settings_get_prints_every_setting_or_one_value() {
    let app = spawn_app().await;
    let out = cli(&app, &["settings", "get"]).await;
    let all = out.ok();
    assert_eq!(all.lines().count(), twostep::domain::SETTINGS.len());
    assert!(all.lines().any(|line| line == "help_text = "));
    assert!(all.lines().any(|line| line == "validate_pass_mode = otp"));
    assert!(all.lines().any(|line| line == "otp_length = 6"));
    assert!(all
        .lines()
        .any(|line| line == "autoreply = no-reply@localhost"));
    assert!(all.lines().any(|line| line == "failure_delay_ms = 0"));
    assert_eq!(
        cli(&app, &["settings", "get", "otp_length"]).await.ok(),
        "6\n"
    );
    cli(&app, &["settings", "get", "otp_size"])
        .await
        .refused("unknown setting \"otp_size\"");
    // A Help Text of two lines stays one line of the listing.
    app.settings(&[(twostep::domain::SettingKey::HelpText, "Desk\n4444")])
        .await;
    let listed = cli(&app, &["settings", "get"]).await;
    let all = listed.ok();
    assert_eq!(all.lines().count(), twostep::domain::SETTINGS.len());
    assert!(all.lines().any(|line| line == r"help_text = Desk\n4444"));
}

#[tokio::test]
async fn settings_set_changes_all_or_nothing() {
    let app = spawn_app().await;
    let out = cli(
        &app,
        &[
            "settings",
            "set",
            "otp_length",
            "8",
            "lockout_threshold",
            "10",
        ],
    )
    .await;
    assert_eq!(out.ok(), "otp_length = 8\nlockout_threshold = 10\n");
    let settings = app.store.settings().await.unwrap();
    assert_eq!(settings.otp_length().get(), 8);
    assert_eq!(settings.lockout_threshold(), 10);
    let entries = audited(&app, AuditEvent::SettingChanged).await;
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|e| e.actor.as_deref() == Some("cli")));
    assert!(entries.iter().any(|e| e.detail == "otp_length: 6 -> 8"));

    // One value out of range: nothing changes.
    cli(
        &app,
        &[
            "settings",
            "set",
            "lockout_threshold",
            "3",
            "otp_length",
            "30",
        ],
    )
    .await
    .refused("OTP Length must be a whole number between 6 and 20");
    let settings = app.store.settings().await.unwrap();
    assert_eq!(settings.otp_length().get(), 8);
    assert_eq!(settings.lockout_threshold(), 10);
    cli(&app, &["settings", "set", "autoreply", "not an address"])
        .await
        .refused("Autoreply must be a valid email address");
    cli(&app, &["settings", "set", "otp_size", "8"])
        .await
        .refused("unknown setting");
    assert_eq!(audited(&app, AuditEvent::SettingChanged).await.len(), 2);

    let odd = cli(
        &app,
        &["settings", "set", "otp_length", "8", "lockout_threshold"],
    )
    .await;
    assert_eq!(odd.code, 2, "{odd:?}");
    assert!(odd.stderr.contains("KEY VALUE pairs"));
}

// ----- ip -----

#[tokio::test]
async fn ip_add_list_and_remove_rules() {
    let app = spawn_app().await;
    let out = cli(
        &app,
        &[
            "ip",
            "add",
            "10.20.0.0/16",
            "--bypass-2fa",
            "--note",
            "Ward 3",
        ],
    )
    .await;
    let added: Vec<&str> = out.ok().trim_end().split('\t').collect();
    let id = added[0].to_owned();
    assert_eq!(added[1..], ["10.20.0.0/16", "yes", "Ward 3"]);
    cli(&app, &["ip", "add", "2001:db8::1"]).await.ok();

    let listed = cli(&app, &["ip", "list"]).await;
    let table = listed.ok();
    assert_eq!(
        table.lines().next().unwrap(),
        "id\tnetwork\tbypass_2fa\tnote"
    );
    let rules = rows(table);
    assert_eq!(rules.len(), 2);
    assert!(rules.contains(&vec![id.as_str(), "10.20.0.0/16", "yes", "Ward 3"]));
    assert_eq!(app.store.ip_rules().await.unwrap().len(), 2);
    let entry = assert_cli_audit(&audited(&app, AuditEvent::IpRuleChanged).await, None);
    assert!(entry.detail.starts_with("added 2001:db8::1"), "{entry:?}");

    cli(&app, &["ip", "add", "10.20.0.0/16"])
        .await
        .refused("this network already exists");
    cli(&app, &["ip", "add", "10.20.0.0/33"])
        .await
        .refused("is not an IPv4/IPv6 address or CIDR range");
    cli(&app, &["ip", "add", "10.20.0.1/16"])
        .await
        .refused("has host bits set; the network is 10.20.0.0/16");
    assert_eq!(app.store.ip_rules().await.unwrap().len(), 2);
    // SPEC section 11: a network broader than /16 needs --confirm-broad.
    cli(&app, &["ip", "add", "0.0.0.0/0"])
        .await
        .refused("0.0.0.0/0 is a broad network (every IPv4 address)");
    assert_eq!(app.store.ip_rules().await.unwrap().len(), 2);
    cli(&app, &["ip", "add", "10.0.0.0/8", "--confirm-broad"])
        .await
        .ok();
    assert_eq!(app.store.ip_rules().await.unwrap().len(), 3);
    let broad = app.store.ip_rules().await.unwrap();
    let broad_id = broad
        .iter()
        .find(|r| r.rule.network.to_string() == "10.0.0.0/8")
        .unwrap()
        .id
        .to_string();
    cli(&app, &["ip", "remove", &broad_id]).await.ok();

    assert_eq!(
        cli(&app, &["ip", "remove", &id]).await.ok(),
        format!("removed IP rule {id}\n")
    );
    assert_eq!(app.store.ip_rules().await.unwrap().len(), 1);
    let entry = assert_cli_audit(&audited(&app, AuditEvent::IpRuleChanged).await, None);
    assert_eq!(entry.detail, "removed 10.20.0.0/16");
    cli(&app, &["ip", "remove", &id])
        .await
        .refused(&format!("there is no IP rule with id {id}"));
    assert_eq!(cli(&app, &["ip", "remove", "ward-3"]).await.code, 2);
}

// ----- the database and the command line -----

#[tokio::test]
async fn a_missing_database_exits_3_and_creates_nothing() {
    let empty = tempfile::tempdir().unwrap();
    let run = cli_in(empty.path(), &["user", "list"], None).await;
    assert_eq!(run.code, 3, "{run:?}");
    let expected = format!(
        "no twostep database at {}; run `twostep serve` once first",
        empty.path().join("twostep.db").display()
    );
    assert!(run.stderr.contains(&expected), "{run:?}");
    assert!(run.stdout.is_empty());
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);

    // A data dir that does not exist is not created; nor is a database named by URL.
    let absent = empty.path().join("absent");
    let run = cli_in(&absent, &["settings", "set", "otp_length", "8"], None).await;
    assert_eq!(run.code, 3, "{run:?}");
    let url = format!("sqlite://{}", empty.path().join("elsewhere.db").display());
    let run = twostep_with(&["ip", "list", "--database", &url], &[], None).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains("no twostep database at sqlite://"),
        "{run:?}"
    );
    let run = twostep_with(&["role", "list"], &[("TWOSTEP_DATABASE", &url)], None).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);

    // An empty file is no database either, and stays empty.
    std::fs::write(empty.path().join("twostep.db"), b"").unwrap();
    let run = cli_in(empty.path(), &["role", "list"], None).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("run `twostep serve` once first"));
    assert_eq!(
        std::fs::metadata(empty.path().join("twostep.db"))
            .unwrap()
            .len(),
        0
    );
    let names: Vec<_> = std::fs::read_dir(empty.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("twostep.db")]);
}

#[tokio::test]
async fn a_wrong_or_missing_key_exits_3_and_creates_no_key() {
    let app = spawn_app().await;
    let dir = app.dir.path().to_str().unwrap().to_owned();
    let other_key = twostep::crypto::MasterKey::generate(&mut rand::rngs::OsRng).to_hex();
    let run = twostep_with(
        &["user", "list", "--data-dir", &dir],
        &[("TWOSTEP_KEY", &other_key)],
        None,
    )
    .await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr
            .contains("the server key does not match this database"),
        "{run:?}"
    );
    assert!(!run.stderr.contains(&other_key));

    let missing = app.dir.path().join("elsewhere.key");
    let run = twostep_with(
        &[
            "user",
            "list",
            "--data-dir",
            &dir,
            "--key-file",
            missing.to_str().unwrap(),
        ],
        &[],
        None,
    )
    .await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("does not exist"), "{run:?}");
    assert!(!missing.exists());

    // The key the server uses, from the environment, works.
    let key = std::fs::read_to_string(app.dir.path().join("twostep.key")).unwrap();
    let run = twostep_with(
        &["settings", "get", "otp_length"],
        &[("TWOSTEP_DATA_DIR", &dir), ("TWOSTEP_KEY", key.trim())],
        None,
    )
    .await;
    assert_eq!(run.ok(), "6\n");
}

#[tokio::test]
async fn usage_errors_exit_2_and_touch_nothing() {
    let app = spawn_app().await;
    for args in [
        &[
            "user",
            "add",
            "kim",
            "--display-name",
            "Kim",
            "--role",
            "Staff",
        ][..],
        &[
            "user",
            "add",
            "kim",
            "--display-name",
            "Kim",
            "--role",
            "Staff",
            "--password-stdin",
            "--generate-password",
        ][..],
        &["user", "add", "kim", "--password", "a good long password"][..],
        &["user", "frobnicate"][..],
        &["user", "set-role", "kim"][..],
        &["ip", "remove"][..],
        &["settings", "set"][..],
        &["role", "set", "Staff", "--otp-required", "maybe"][..],
    ] {
        let run = cli(&app, args).await;
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stdout.is_empty() && !run.stderr.is_empty(), "{run:?}");
    }
    assert!(user(&app, "kim").await.is_none());
    let run = twostep_with(&["frobnicate"], &[], None).await;
    assert_eq!(run.code, 2, "{run:?}");
}

#[tokio::test]
async fn serve_refuses_a_network_flag_with_host_bits_naming_the_flag_and_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    for (flag, variable) in [
        ("--trusted-proxy", "TWOSTEP_TRUSTED_PROXY"),
        ("--validate-client", "TWOSTEP_VALIDATE_CLIENT"),
        ("--metrics-client", "TWOSTEP_METRICS_CLIENT"),
    ] {
        let expected = format!("{flag} 10.0.0.1/8: host bits are set; the network is 10.0.0.0/8");
        let run = twostep_with(
            &["serve", "--data-dir", data, flag, "10.0.0.1/8"],
            &[],
            None,
        )
        .await;
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stderr.contains(&expected), "{run:?}");
        let run = twostep_with(
            &["serve", "--data-dir", data],
            &[(variable, "10.0.0.5,10.0.0.1/8")],
            None,
        )
        .await;
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stderr.contains(&expected), "{run:?}");
    }
    assert!(!dir.path().join("data").exists(), "nothing was created");
}

#[tokio::test]
async fn serve_takes_bare_addresses_for_network_flags() {
    let data = tempfile::tempdir().unwrap();
    let port = crate::helpers::free_port();
    // Only 10.9.0.5 reads /metrics, and only the loopback proxy may say so.
    let _server = crate::email::ServerProcess::start_with(
        data.path(),
        port,
        &[
            "--trusted-proxy",
            "127.0.0.1",
            "--validate-client",
            "2001:db8::1",
            "--metrics-client",
            "10.9.0.5",
        ],
    )
    .await;
    let metrics = |forwarded: Option<&'static str>| async move {
        let mut request = reqwest::Client::new().get(format!("http://127.0.0.1:{port}/metrics"));
        if let Some(forwarded) = forwarded {
            request = request.header("x-forwarded-for", forwarded);
        }
        request.send().await.unwrap().status()
    };
    assert_eq!(metrics(Some("10.9.0.5")).await, reqwest::StatusCode::OK);
    assert_eq!(
        metrics(Some("10.9.0.6")).await,
        reqwest::StatusCode::FORBIDDEN
    );
    assert_eq!(metrics(None).await, reqwest::StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn commands_work_on_the_database_of_a_stopped_server() {
    let mut app = spawn_app().await;
    let store = app.store.clone();
    // Keep the data dir past the server.
    let dir = std::mem::replace(&mut app.dir, tempfile::tempdir().unwrap());
    app.stop().await;
    let run = cli_in(
        dir.path(),
        &["ip", "add", "192.168.10.7", "--note", "front desk"],
        None,
    )
    .await;
    assert!(
        run.ok().contains("192.168.10.7/32\tno\tfront desk"),
        "{run:?}"
    );
    assert_eq!(store.ip_rules().await.unwrap().len(), 1);
}

#[tokio::test]
async fn commands_work_on_postgresql_and_refuse_an_empty_schema() {
    let Some(empty) = TestDb::postgres().await else {
        return;
    };
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    // A schema without twostep's tables: no database, and none is created.
    let run = twostep_with(&["role", "list", "--database", &empty.url], &[], None).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains("no twostep database at postgres"),
        "{run:?}"
    );
    let tables = empty
        .raw_count(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()",
        )
        .await;
    assert_eq!(tables, 0);

    let app = spawn_app_with(AppOptions {
        database: Some(db.url.clone()),
        ..AppOptions::default()
    })
    .await;
    let on_pg = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        all.extend([
            "--database".to_owned(),
            db.url.clone(),
            "--data-dir".to_owned(),
            app.dir.path().to_str().unwrap().to_owned(),
        ]);
        all
    };
    let args = on_pg(&["ip", "add", "10.1.0.0/16", "--bypass-2fa"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    twostep_with(&args, &[], None).await.ok();
    let args = on_pg(&["settings", "set", "bypass_enabled", "yes"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(
        twostep_with(&args, &[], None).await.ok(),
        "bypass_enabled = true\n"
    );
    assert_eq!(app.store.ip_rules().await.unwrap().len(), 1);
    assert!(app.store.settings().await.unwrap().bypass_enabled());
    assert_cli_audit(&audited(&app, AuditEvent::SettingChanged).await, None);
    app.stop().await;
    db.finish().await;
    empty.finish().await;
}

// ----- oidc client -----

/// SPEC 13's `twostep oidc client add|list|remove`: a confidential client's secret is
/// printed once (and stored only as its SHA-256), a public one has none; the list shows
/// both; removal works once; each change is audited as "cli".
#[tokio::test]
async fn oidc_client_add_list_and_remove_applications() {
    use sha2::{Digest, Sha256};
    use twostep::domain::oidc::ClientId;
    let app = spawn_app().await;
    let out = cli(
        &app,
        &[
            "oidc",
            "client",
            "add",
            "--client-id",
            "wiki",
            "--name",
            "Team Wiki",
            "--redirect-uri",
            "https://wiki.example.org/cb",
            "--redirect-uri",
            "http://127.0.0.1:8400/cb",
            "--require-2fa",
        ],
    )
    .await;
    let lines: Vec<&str> = out.ok().lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        lines[0],
        "wiki\tTeam Wiki\tyes\tyes\thttps://wiki.example.org/cb http://127.0.0.1:8400/cb"
    );
    let secret = lines[1]
        .strip_prefix("client secret (shown once): ")
        .expect("the secret line");
    assert_eq!(secret.len(), 43);
    let id = ClientId::parse("wiki").unwrap();
    assert_eq!(
        app.store.oidc_client_secret_hash(&id).await.unwrap(),
        Some(Sha256::digest(secret.as_bytes()).to_vec())
    );
    let entry = assert_cli_audit(&audited(&app, AuditEvent::ApplicationCreated).await, None);
    assert!(entry.detail.starts_with("client_id=wiki "), "{entry:?}");

    let out = cli(
        &app,
        &[
            "oidc",
            "client",
            "add",
            "--client-id",
            "phone",
            "--name",
            "Phone",
            "--redirect-uri",
            "org.example.phone:/cb",
            "--public",
        ],
    )
    .await;
    assert_eq!(out.ok(), "phone\tPhone\tno\tno\torg.example.phone:/cb\n");

    let listed = cli(&app, &["oidc", "client", "list"]).await;
    let table = listed.ok();
    assert_eq!(
        table.lines().next().unwrap(),
        "client_id\tname\tconfidential\trequire_2fa\tredirect_uris"
    );
    assert_eq!(rows(table).len(), 2);
    assert!(!table.contains(secret), "the list shows no secret");

    cli(&app, &["oidc", "client", "remove", "phone"]).await.ok();
    let entry = assert_cli_audit(&audited(&app, AuditEvent::ApplicationDeleted).await, None);
    assert!(entry.detail.starts_with("client_id=phone "), "{entry:?}");
    assert_eq!(app.store.list_oidc_clients().await.unwrap().len(), 1);
    cli(&app, &["oidc", "client", "remove", "phone"])
        .await
        .refused("there is no application with client id \"phone\"");

    // SPEC 13: a new secret, printed once; the old one no longer matches.
    let out = cli(&app, &["oidc", "client", "new-secret", "wiki"]).await;
    let renewed = out
        .ok()
        .trim_end()
        .strip_prefix("client secret (shown once): ")
        .expect("the new secret")
        .to_owned();
    assert_ne!(renewed, secret);
    assert_eq!(
        app.store.oidc_client_secret_hash(&id).await.unwrap(),
        Some(Sha256::digest(renewed.as_bytes()).to_vec())
    );
    cli(&app, &["oidc", "client", "new-secret", "phone"])
        .await
        .refused("there is no application with client id \"phone\"");
}

/// SPEC 13's `twostep oidc rotate-key`: a new signing key, current at once for the
/// running server (its JWKS leads with it), audited as the command line's.
#[tokio::test]
async fn oidc_rotate_key_makes_a_new_signing_key() {
    let app = spawn_app().await;
    let jwks = || async {
        let keys: serde_json::Value = reqwest::get(format!("{}/oauth2/jwks", app.address))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| key["kid"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let before = jwks().await;
    assert_eq!(before.len(), 1);
    let out = cli(&app, &["oidc", "rotate-key"]).await;
    let kid = out
        .ok()
        .strip_prefix("new signing key ")
        .and_then(|rest| rest.split(';').next())
        .expect("the new key's id")
        .to_owned();
    assert_ne!(kid, before[0]);
    assert_eq!(
        jwks().await.first(),
        Some(&kid),
        "the server publishes it first"
    );
    let entry = assert_cli_audit(&audited(&app, AuditEvent::SigningKeyRotated).await, None);
    assert_eq!(entry.detail, format!("new key {kid}"));
}

/// SPEC 13: the command line refuses what the API refuses (exit 1, the domain's message,
/// nothing stored): a redirect URI with a fragment, http:// to another host, none at all,
/// a bad client id, a taken one.
#[tokio::test]
async fn oidc_client_add_refuses_bad_values() {
    let app = spawn_app().await;
    let add = |client_id: &'static str, uri: Option<&'static str>| {
        let mut args = vec![
            "oidc",
            "client",
            "add",
            "--client-id",
            client_id,
            "--name",
            "App",
        ];
        if let Some(uri) = uri {
            args.extend(["--redirect-uri", uri]);
        }
        args
    };
    cli(&app, &add("app", Some("https://app.example.org/cb#x")))
        .await
        .refused("has no fragment");
    cli(&app, &add("app", Some("http://app.example.org/cb")))
        .await
        .refused("uses https://");
    cli(&app, &add("app", None))
        .await
        .refused("needs at least one redirect URI");
    cli(&app, &add("my app", Some("https://app.example.org/cb")))
        .await
        .refused("a client id is 1 to 64 letters");
    assert!(app.store.list_oidc_clients().await.unwrap().is_empty());
    cli(&app, &add("app", Some("https://app.example.org/cb")))
        .await
        .ok();
    cli(&app, &add("app", Some("https://app.example.org/cb")))
        .await
        .refused("an application with this client id already exists");
    assert_eq!(app.store.list_oidc_clients().await.unwrap().len(), 1);
}
