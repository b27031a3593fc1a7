//! A real Active Directory domain controller (Debian's Samba, `samba-tool domain
//! provision`) for the Active Directory test of SPEC section 12.
//!
//! `SambaAd::start()` provisions the domain `HOSPITAL.TEST` into a private temporary
//! folder (`--targetdir`: its own `smb.conf`, databases and keys; nothing of the system's
//! Samba is touched), adds the test accounts with `samba-tool` on the offline database,
//! then runs `samba` in the foreground with only its LDAP server (`server services =
//! ldap`), listening on loopback only. It is killed on drop.
//!
//! Samba's LDAP server has no port setting: it listens on 389 (and 636), so the test
//! needs that port free on 127.0.0.1 and the rights to bind it (root). Simple binds over
//! plain LDAP are allowed for the test (`ldap server require strong auth = no`; twostep
//! allows plain `ldap://` to loopback only), so no certificate for 127.0.0.1 is needed.
//!
//! The domain, `DC=hospital,DC=test`, users under `CN=Users`:
//! - `svc-twostep` (password [`SERVICE_PASSWORD`]): the service account;
//! - `nina` (Nina Nurse, nina@hospital.test, group `Nurses`);
//! - `mona` (group `Nurses`) who must change her password at the next sign-in: a bind as
//!   her gets AD's `data 773`;
//! - `dina` (group `Nurses`), disabled (`userAccountControl` with bit 2).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

use crate::helpers::require_program;

/// The domain's naming context.
pub const BASE: &str = "DC=hospital,DC=test";
/// Where `samba-tool user create` puts users.
pub const USERS: &str = "CN=Users,DC=hospital,DC=test";
/// The group the nurses are in (created under `CN=Users`).
pub const NURSES_GROUP: &str = "CN=Nurses,CN=Users,DC=hospital,DC=test";
/// The service account's DN and password.
pub const SERVICE_DN: &str = "CN=svc-twostep,CN=Users,DC=hospital,DC=test";
pub const SERVICE_PASSWORD: &str = "Service passphrase for twostep 2026";
/// The URL of the domain controller's LDAP server.
pub const URL: &str = "ldap://127.0.0.1:389";

/// A test account's password (AD's complexity rules: upper, lower, digits).
pub fn password_of(name: &str) -> String {
    format!("Ward passphrase of {name} 2026")
}

/// A running Samba AD DC with the test domain.
pub struct SambaAd {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl SambaAd {
    /// Provisions and starts the domain controller. `None` (the test skips, saying so)
    /// outside CI when Samba is missing, the process is not root, or port 389 is taken;
    /// with `CI` set each of these fails the test, naming what is missing.
    pub fn start() -> Option<SambaAd> {
        let hint = "apt-get install samba";
        let samba = require_program("samba", hint)?;
        let tool = require_program("samba-tool", hint)?;
        if let Err(problem) = port_389_usable() {
            if std::env::var_os("CI").is_some() {
                panic!("the Active Directory test needs {problem}");
            }
            eprintln!("skipped: the Active Directory test needs {problem}");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("dc");
        run(
            &tool,
            &[
                "domain",
                "provision",
                &format!("--targetdir={}", target.display()),
                "--realm=HOSPITAL.TEST",
                "--domain=HOSPITAL",
                "--server-role=dc",
                "--dns-backend=NONE",
                "--adminpass=Administrator passphrase 2026",
                "--option=interfaces=lo",
                "--option=bind interfaces only=yes",
            ],
        );
        let ad = SambaAd { dir, child: None };
        let conf = ad.conf();
        let conf = conf.to_str().unwrap();
        let user = |name: &str, password: &str, extra: &[&str]| {
            let mut args = vec!["user", "create", name, password, "-s", conf];
            args.extend_from_slice(extra);
            run(&tool, &args);
        };
        user("svc-twostep", SERVICE_PASSWORD, &[]);
        user(
            "nina",
            &password_of("nina"),
            &[
                "--given-name=Nina",
                "--surname=Nurse",
                "--mail-address=nina@hospital.test",
            ],
        );
        user(
            "mona",
            &password_of("mona"),
            &["--must-change-at-next-login", "--given-name=Mona"],
        );
        user("dina", &password_of("dina"), &["--given-name=Dina"]);
        run(&tool, &["user", "disable", "dina", "-s", conf]);
        run(&tool, &["group", "add", "Nurses", "-s", conf]);
        run(
            &tool,
            &[
                "group",
                "addmembers",
                "Nurses",
                "nina,mona,dina",
                "-s",
                conf,
            ],
        );
        let mut ad = ad;
        ad.launch(&samba);
        Some(ad)
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("dc/etc/smb.conf")
    }

    fn launch(&mut self, samba: &Path) {
        let log = std::fs::File::create(self.dir.path().join("samba.log")).unwrap();
        let child = Command::new(samba)
            .args(["-i", "-M", "single", "-s"])
            .arg(self.conf())
            .args([
                "--option=server services=ldap",
                "--option=ldap server require strong auth=no",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("samba starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", 389)).is_err() {
            assert!(
                Instant::now() < deadline,
                "samba did not listen on 127.0.0.1:389 within 60 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What samba logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("samba.log")).unwrap_or_default()
    }
}

impl Drop for SambaAd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether this process may listen on 127.0.0.1:389 and nothing else does.
fn port_389_usable() -> Result<(), String> {
    match std::net::TcpListener::bind(("127.0.0.1", 389)) {
        Ok(listener) => {
            drop(listener);
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => Err(
            "to run as root: Samba's LDAP server listens on port 389, which it cannot change"
                .to_owned(),
        ),
        Err(error) => Err(format!(
            "port 389 on 127.0.0.1 free for Samba's LDAP server ({error}); stop the system's \
             slapd or Samba"
        )),
    }
}

fn run(program: &Path, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("{} cannot run: {error}", program.display()));
    assert!(
        output.status.success(),
        "{} {args:?} failed:\n{}\n{}",
        program.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// SPEC 12 against Active Directory (Samba's AD DC): the AD filter on `sAMAccountName`,
/// `displayName` and AD's computed `memberOf` give the user and its role; the search from
/// the domain's root (where AD answers with referrals to its other partitions) finds the
/// one entry; a password that must be changed (AD's `data 773`) gets its own message, not
/// the generic refusal; a disabled account (`userAccountControl` bit 2) signs nobody in.
#[tokio::test]
async fn active_directory_users_sign_in_and_an_expired_password_gets_its_own_message() {
    use reqwest::StatusCode;
    use twostep::config::LdapArgs;
    use twostep::domain::{Require2fa, UserSource};

    use crate::directory_signin::{assert_refused, assert_signed_in, hex_key, role_name};
    use crate::directory_signin::{sign_in, user};
    use crate::helpers::{spawn_app_with, AppOptions, TestDb};

    let Some(ad) = SambaAd::start() else { return };
    let db = TestDb::sqlite().await;
    let first = spawn_app_with(AppOptions {
        database: Some(db.url.clone()),
        key: Some(hex_key(&db)),
        ..AppOptions::default()
    })
    .await;
    first.role("Nurses", Require2fa::No, false, false).await;
    first.stop().await;
    let app = spawn_app_with(AppOptions {
        database: Some(db.url.clone()),
        key: Some(hex_key(&db)),
        ldap: Some(LdapArgs {
            ldap_url: Some(URL.to_owned()),
            ldap_bind_dn: Some(SERVICE_DN.to_owned()),
            ldap_bind_password: Some(SERVICE_PASSWORD.to_owned()),
            ldap_user_base: Some(BASE.to_owned()),
            ldap_user_filter: twostep::domain::ACTIVE_DIRECTORY_USER_FILTER.to_owned(),
            ldap_attr_name: "displayName".to_owned(),
            ldap_role_map: vec![format!("{NURSES_GROUP}=Nurses")],
            ..LdapArgs::none()
        }),
        ..AppOptions::default()
    })
    .await;

    let (status, answer) = sign_in(&app, "nina", &password_of("nina")).await;
    assert_eq!(status, StatusCode::OK, "{answer}\n{}", ad.log());
    assert_signed_in(&app, &answer, "nina").await;
    let nina = user(&app, "nina").await.expect("nina was created");
    assert_eq!(nina.source, UserSource::Directory);
    assert_eq!(nina.display_name.as_str(), "Nina Nurse");
    assert_eq!(
        nina.email.as_ref().map(|email| email.as_str()),
        Some("nina@hospital.test")
    );
    assert_eq!(role_name(&app, &nina).await, "Nurses");
    let link = app.store.directory_link(nina.id).await.unwrap().unwrap();
    assert_eq!(link.dn, format!("CN=Nina Nurse,{USERS}"));
    assert!(
        link.groups.iter().any(|group| group == NURSES_GROUP),
        "{link:?}"
    );

    let (status, answer) = sign_in(&app, "mona", &password_of("mona")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["code"], "directory_password_change", "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("change your password in Windows first"),
        "{answer}"
    );
    let mona = user(&app, "mona").await.expect("mona's user exists");
    assert_eq!(mona.failed_count, 0, "not counted as a wrong password");

    let (status, answer) = sign_in(&app, "dina", &password_of("dina")).await;
    assert_refused(status, &answer);
    let (status, answer) = sign_in(&app, "nina", "not her passphrase at all 1").await;
    assert_refused(status, &answer);
    app.stop().await;
    db.finish().await;
}
