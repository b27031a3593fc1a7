//! A real OpenLDAP server (Debian's `slapd`) for the directory tests (SPEC section 12).
//!
//! `Slapd::start()` writes everything into a private temporary folder, never touching the
//! package's own instance (`/etc/ldap/slapd.d`, port 389): a `slapd.conf` with the `mdb`
//! backend, the schemas core, cosine, inetorgperson and nis from `/etc/ldap/schema`, and a
//! small test schema (below) with Active Directory's `userAccountControl`; the `memberof`
//! overlay, so that the users' `memberOf` is what slapd derives from the groups'
//! `member` (as on a real server); a test CA and the server's certificate for LDAPS and
//! StartTLS (made with the `openssl` command), and a second, unrelated CA for the refusal
//! test. slapd runs in the foreground with `-d stats`, its log in `slapd.log` (`log()`),
//! on `ldap://127.0.0.1:PORT/` and `ldaps://127.0.0.1:PORT2/`; it is killed on drop.
//!
//! The directory, suffix `dc=example,dc=org`:
//! - `cn=twostep,ou=services,dc=example,dc=org` (password [`SERVICE_PASSWORD`]): the
//!   service account, which may read everything but passwords;
//! - `uid=jane` (Jane Doe, jane@example.org, groups `staff` and `admins`), `uid=omar`
//!   (Omar Haddad, omar@example.org, group `staff`), `uid=dora` (disabled: the test's
//!   "disabled" marker is `userAccountControl: 514`, AD's bit 2 ACCOUNTDISABLE, group
//!   `staff`), each with the password of [`password_of`], under `ou=people`;
//! - `cn=staff` and `cn=admins` (`groupOfNames`) under `ou=groups`.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

use crate::helpers::{free_port, require_program};

/// The directory's suffix.
pub const SUFFIX: &str = "dc=example,dc=org";
/// Where the users are.
pub const PEOPLE: &str = "ou=people,dc=example,dc=org";
/// The service account the client binds as.
pub const SERVICE_DN: &str = "cn=twostep,ou=services,dc=example,dc=org";
/// The service account's password.
pub const SERVICE_PASSWORD: &str = "service account passphrase for twostep 7";
/// The administrator of the database (slapd's `rootdn`), used only to seed it.
const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
const ROOT_PASSWORD: &str = "root passphrase of the test directory 3";
/// The group DNs.
pub const STAFF_GROUP: &str = "cn=staff,ou=groups,dc=example,dc=org";
pub const ADMINS_GROUP: &str = "cn=admins,ou=groups,dc=example,dc=org";

/// A seeded user's password (strong passphrases, as every new test uses).
pub fn password_of(uid: &str) -> String {
    format!("correct horse battery staple for {uid} 42")
}

/// A seeded user's DN.
pub fn dn_of(uid: &str) -> String {
    format!("uid={uid},{PEOPLE}")
}

/// AD's `userAccountControl` (the OID Active Directory gives it), so that the disabled
/// test user carries the very attribute and bit the client reads from AD.
const TEST_SCHEMA: &str = r#"
attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl'
    EQUALITY integerMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.4203.666.11.90.1 NAME 'twostepTestAccount'
    SUP top AUXILIARY MAY userAccountControl )
"#;

const SLAPD_CONF: &str = r#"
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
include {DIR}/test.schema

pidfile {DIR}/slapd.pid
argsfile {DIR}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof

TLSCACertificateFile {DIR}/ca.pem
TLSCertificateFile {DIR}/server.pem
TLSCertificateKeyFile {DIR}/server.key

database mdb
maxsize 67108864
suffix "dc=example,dc=org"
rootdn "cn=admin,dc=example,dc=org"
rootpw "{ROOTPW}"
directory {DIR}/data

overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint true

access to attrs=userPassword
    by anonymous auth
    by * none
access to *
    by dn.exact="cn=twostep,ou=services,dc=example,dc=org" read
    by self read
    by * none
"#;

fn seed_ldif() -> String {
    let user = |uid: &str, cn: &str, sn: &str, extra: &str| {
        format!(
            "dn: {dn}\nobjectClass: inetOrgPerson\nobjectClass: twostepTestAccount\n\
             uid: {uid}\ncn: {cn}\nsn: {sn}\nmail: {uid}@example.org\n\
             userPassword: {password}\n{extra}\n",
            dn = dn_of(uid),
            password = password_of(uid),
        )
    };
    [
        format!("dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n"),
        format!("dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n"),
        format!("dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n"),
        format!("dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services\n"),
        format!(
            "dn: {SERVICE_DN}\nobjectClass: applicationProcess\nobjectClass: simpleSecurityObject\n\
             cn: twostep\nuserPassword: {SERVICE_PASSWORD}\n"
        ),
        user("jane", "Jane Doe", "Doe", "userAccountControl: 512"),
        user("omar", "Omar Haddad", "Haddad", "userAccountControl: 512"),
        user("dora", "Dora Disabled", "Disabled", "userAccountControl: 514"),
        format!(
            "dn: {STAFF_GROUP}\nobjectClass: groupOfNames\ncn: staff\nmember: {}\nmember: {}\nmember: {}\n",
            dn_of("jane"),
            dn_of("omar"),
            dn_of("dora")
        ),
        format!(
            "dn: {ADMINS_GROUP}\nobjectClass: groupOfNames\ncn: admins\nmember: {}\n",
            dn_of("jane")
        ),
    ]
    .join("\n")
}

/// A running slapd with the test directory.
pub struct Slapd {
    dir: tempfile::TempDir,
    slapd: PathBuf,
    child: Option<Child>,
    /// The plain (and StartTLS) port.
    pub port: u16,
    /// The LDAPS port.
    pub tls_port: u16,
}

impl Slapd {
    /// Starts a seeded slapd. `None` (the test skips, saying so) when slapd, ldapadd or
    /// openssl is missing outside CI; with `CI` set a missing program fails the test.
    pub fn start() -> Option<Slapd> {
        let hint = "apt-get install slapd ldap-utils openssl";
        let slapd = require_program("slapd", hint)?;
        let ldapadd = require_program("ldapadd", hint)?;
        let openssl = require_program("openssl", hint)?;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        std::fs::create_dir(path.join("data")).unwrap();
        std::fs::write(path.join("test.schema"), TEST_SCHEMA).unwrap();
        make_certificates(&openssl, &path);
        let conf = SLAPD_CONF
            .replace("{DIR}", &path.display().to_string())
            .replace("{ROOTPW}", ROOT_PASSWORD);
        std::fs::write(path.join("slapd.conf"), conf).unwrap();
        let mut server = Slapd {
            dir,
            slapd,
            child: None,
            port: free_port(),
            tls_port: free_port(),
        };
        server.launch();
        std::fs::write(path.join("seed.ldif"), seed_ldif()).unwrap();
        let seeded = Command::new(ldapadd)
            .args([
                "-x",
                "-H",
                &server.url(),
                "-D",
                ROOT_DN,
                "-w",
                ROOT_PASSWORD,
                "-f",
            ])
            .arg(path.join("seed.ldif"))
            .output()
            .unwrap();
        assert!(
            seeded.status.success(),
            "seeding slapd failed: {}{}",
            String::from_utf8_lossy(&seeded.stdout),
            String::from_utf8_lossy(&seeded.stderr)
        );
        Some(server)
    }

    fn launch(&mut self) {
        let dir = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("slapd.log"))
            .unwrap();
        let urls = format!(
            "ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/",
            self.port, self.tls_port
        );
        let child = Command::new(&self.slapd)
            .arg("-d")
            .arg("stats")
            .arg("-f")
            .arg(dir.join("slapd.conf"))
            .arg("-h")
            .arg(urls)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let up = [self.port, self.tls_port]
                .iter()
                .all(|port| TcpStream::connect(("127.0.0.1", *port)).is_ok());
            if up {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("slapd exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "slapd did not answer in 20 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `ldap://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// `ldaps://127.0.0.1:PORT2`
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.tls_port)
    }

    /// The CA that signed the server's certificate (PEM).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A CA that signed nothing of this server's (PEM): a client trusting only it must
    /// refuse the server.
    pub fn wrong_ca_file(&self) -> PathBuf {
        self.dir.path().join("wrong-ca.pem")
    }

    /// Everything slapd logged so far (`-d stats`: a line per connection and operation,
    /// e.g. `conn=1001 op=0 BIND dn="uid=jane,..." method=128`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    /// Changes the directory as its administrator: `ldif` is an `ldapmodify` change
    /// record (`dn: ...`, `changetype: modify`, ...).
    pub fn modify(&self, ldif: &str) {
        self.as_root("ldapmodify", &[], ldif);
    }

    /// Deletes the entry `dn` as the directory's administrator (`ldapdelete`).
    pub fn delete(&self, dn: &str) {
        self.as_root("ldapdelete", &[dn], "");
    }

    /// Whether slapd itself accepts `password` for `dn`: a simple bind with `ldapwhoami`,
    /// around twostep.
    pub fn accepts(&self, dn: &str, password: &str) -> bool {
        let ldapwhoami = require_program("ldapwhoami", "apt-get install ldap-utils")
            .expect("ldap-utils is installed with ldapadd");
        Command::new(ldapwhoami)
            .args(["-x", "-H", &self.url(), "-D", dn, "-w", password])
            .output()
            .unwrap()
            .status
            .success()
    }

    /// Runs an ldap-utils `tool` bound as the root DN, `input` on its standard input.
    fn as_root(&self, tool: &str, args: &[&str], input: &str) {
        let program = require_program(tool, "apt-get install ldap-utils")
            .expect("ldap-utils is installed with ldapadd");
        let mut child = Command::new(program)
            .args(["-x", "-H", &self.url(), "-D", ROOT_DN, "-w", ROOT_PASSWORD])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{tool} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Stops slapd (the data stays, for `restart`).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts slapd again on the same ports and data.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The test CA, the server's key and certificate (for 127.0.0.1 and localhost, signed by
/// the CA) and an unrelated CA, with the `openssl` command.
fn make_certificates(openssl: &Path, dir: &Path) {
    let run = |args: &[&str]| {
        let output = Command::new(openssl)
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    for (name, subject) in [
        ("ca", "/CN=twostep test CA"),
        ("wrong-ca", "/CN=another CA"),
    ] {
        run(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            subject,
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
    }
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ]);
}
