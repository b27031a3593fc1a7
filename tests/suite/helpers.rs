//! Shared test helpers.

use std::path::PathBuf;

/// The path of an external program the tests need. Outside CI a missing program skips the
/// calling test with a message; with `CI` set it fails the test, so CI never skips silently.
pub fn require_program(name: &str, install_hint: &str) -> Option<PathBuf> {
    // Daemons such as nginx live in /usr/sbin, which a user's PATH may lack.
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain(["/usr/sbin".into(), "/sbin".into()])
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    match found {
        Some(path) => Some(path),
        None if std::env::var_os("CI").is_some() => {
            panic!("`{name}` is required in CI but is not installed ({install_hint})")
        }
        None => {
            eprintln!("SKIPPED: `{name}` is not installed ({install_hint}); CI runs this test");
            None
        }
    }
}

/// `python3`, when it can import `module`. Outside CI a missing module skips the calling
/// test with a message; with `CI` set it fails the test.
pub fn require_python_module(module: &str, install_hint: &str) -> Option<PathBuf> {
    let python = require_program("python3", "the python3 package")?;
    let available = std::process::Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|status| status.success());
    if available {
        return Some(python);
    }
    if std::env::var_os("CI").is_some() {
        panic!("Python's {module} is required in CI but is not installed ({install_hint})");
    }
    eprintln!("SKIPPED: Python's {module} is not installed ({install_hint}); CI runs this test");
    None
}

/// A fresh database for one test: a SQLite file in a temp folder, or a fresh PostgreSQL
/// schema that is dropped afterwards. The server key is random per test.
pub struct TestDb {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub key: twostep::store::KeySource,
    /// PostgreSQL: (server URL, schema name) to drop the schema when done.
    pg_schema: Option<(String, String)>,
}

/// The PostgreSQL server for tests.
pub fn pg_url() -> String {
    std::env::var("TWOSTEP_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

impl TestDb {
    fn new_key() -> twostep::store::KeySource {
        twostep::store::KeySource::Hex(
            twostep::crypto::MasterKey::generate(&mut rand::rngs::OsRng).to_hex(),
        )
    }

    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("twostep.db").display());
        Self {
            dir,
            url,
            key: Self::new_key(),
            pg_schema: None,
        }
    }

    /// `None` (test skipped, with a message) when PostgreSQL is unreachable outside CI;
    /// in CI an unreachable PostgreSQL fails the test.
    pub async fn postgres() -> Option<Self> {
        use sqlx::Connection;
        let server = pg_url();
        let mut admin = match sqlx::PgConnection::connect(&server).await {
            Ok(conn) => conn,
            Err(error) if std::env::var_os("CI").is_some() => {
                panic!("PostgreSQL is required in CI but {server} is unreachable: {error}")
            }
            Err(error) => {
                eprintln!(
                    "SKIPPED: PostgreSQL at {server} is unreachable ({error}); CI runs this test"
                );
                return None;
            }
        };
        let schema = format!(
            "twostep_test_{}",
            rand::RngCore::next_u64(&mut rand::rngs::OsRng)
        );
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut admin)
            .await
            .expect("create schema");
        admin.close().await.ok();
        let separator = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{separator}options=-c%20search_path%3D{schema}");
        Some(Self {
            dir: tempfile::tempdir().expect("temp dir"),
            url,
            key: Self::new_key(),
            pg_schema: Some((server, schema)),
        })
    }

    pub async fn open(&self) -> twostep::store::Store {
        self.open_with(self.key.clone()).await.expect("store opens")
    }

    pub async fn open_with(
        &self,
        key: twostep::store::KeySource,
    ) -> Result<twostep::store::Store, twostep::store::StoreError> {
        twostep::store::Store::open(&twostep::store::StoreOptions {
            database_url: self.url.clone(),
            key,
            max_connections: Some(8),
        })
        .await
    }

    async fn raw(&self) -> sqlx::AnyConnection {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        sqlx::AnyConnection::connect(&self.url)
            .await
            .expect("raw connection")
    }

    /// Runs SQL around the store, as an attacker or a careless script would.
    pub async fn raw_execute(&self, sql: &str) -> Result<u64, sqlx::Error> {
        let mut conn = self.raw().await;
        sqlx::query(sql)
            .execute(&mut conn)
            .await
            .map(|done| done.rows_affected())
    }

    pub async fn raw_bytes(&self, sql: &str) -> Vec<u8> {
        let mut conn = self.raw().await;
        sqlx::query_scalar(sql)
            .fetch_one(&mut conn)
            .await
            .expect("raw bytes")
    }

    pub async fn raw_count(&self, sql: &str) -> i64 {
        let mut conn = self.raw().await;
        sqlx::query_scalar(sql)
            .fetch_one(&mut conn)
            .await
            .expect("raw count")
    }

    /// Drops the PostgreSQL schema (the temp folder goes with `self`).
    pub async fn finish(mut self) {
        if let Some((server, schema)) = self.pg_schema.take() {
            drop_schema(&server, &schema).await;
        }
    }
}

async fn drop_schema(server: &str, schema: &str) {
    use sqlx::Connection;
    if let Ok(mut admin) = sqlx::PgConnection::connect(server).await {
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&mut admin)
            .await;
        admin.close().await.ok();
    }
}

impl Drop for TestDb {
    /// A test that panicked before `finish` still drops its schema.
    fn drop(&mut self) {
        if let Some((server, schema)) = self.pg_schema.take() {
            let _ = std::thread::spawn(move || {
                if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    runtime.block_on(drop_schema(&server, &schema));
                }
            })
            .join();
        }
    }
}

/// The start of every test's manual clock (2027-01-15).
pub const START: twostep::clock::Timestamp =
    twostep::clock::Timestamp::from_millis(1_800_000_000_000);

/// Options for [`spawn_app_with`].
#[derive(Clone, Debug, Default)]
pub struct AppOptions {
    pub trusted_proxies: Vec<twostep::domain::IpNetwork>,
    /// `--validate-client` networks.
    pub validate_clients: Vec<twostep::domain::IpNetwork>,
    /// A PostgreSQL URL instead of the default SQLite file.
    pub database: Option<String>,
    pub public_url: Option<String>,
    /// Keep the Failure Delay default (500 ms) instead of 0 for speed.
    pub keep_failure_delay: bool,
    /// Send through a plain SMTP server on 127.0.0.1 at this port.
    pub smtp_port: Option<u16>,
    /// `--redirect-domain`s.
    pub redirect_domains: Vec<String>,
    /// `--cookie-domain`.
    pub cookie_domain: Option<String>,
    /// The server key (hex): instances sharing a database must share it.
    pub key: Option<String>,
    /// Listen on this port instead of a random one.
    pub port: Option<u16>,
    /// The `--ldap-*` flags (directory sign-in, SPEC section 12); none by default.
    pub ldap: Option<twostep::config::LdapArgs>,
}

/// The real server on a random port, with a temp data dir and a manual clock.
pub struct TestApp {
    pub address: String,
    pub clock: twostep::clock::ManualClock,
    /// The services' context (its clock, its outbox wake-up).
    pub ctx: twostep::service::Context,
    /// The app's database, to prepare and look at what is stored.
    pub store: twostep::store::Store,
    /// The app's password hasher, to store users' passwords.
    pub hasher: twostep::password::PasswordHasher,
    pub dir: tempfile::TempDir,
    pub admin_password: String,
    pub client: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// The app on a fresh PostgreSQL schema; `None` (the test skipped, with a message) when
/// PostgreSQL is unreachable outside CI. Call `db.finish()` after `app.stop()`.
pub async fn spawn_app_on_postgres() -> Option<(TestDb, TestApp)> {
    let db = TestDb::postgres().await?;
    let app = spawn_app_with(AppOptions {
        database: Some(db.url.clone()),
        ..AppOptions::default()
    })
    .await;
    Some((db, app))
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default()).await
}

pub async fn spawn_app_with(options: AppOptions) -> TestApp {
    use std::sync::Arc;
    use twostep::config::ServeArgs;
    // Server logs go to the test's captured output (shown when a test fails).
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info,sqlx=warn"))
        .try_init();
    let dir = tempfile::tempdir().expect("temp dir");
    let admin_password = "admin password for tests".to_owned();
    let args = ServeArgs {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], options.port.unwrap_or(0))),
        db: twostep::config::DatabaseArgs {
            database: options.database.clone(),
            key: options.key.clone(),
            ..twostep::config::DatabaseArgs::with_data_dir(dir.path().to_path_buf())
        },
        redirect_domains: options.redirect_domains.clone(),
        cookie_domain: options.cookie_domain.clone(),
        trusted_proxies: options.trusted_proxies.clone(),
        validate_clients: options.validate_clients.clone(),
        public_url: options.public_url.clone(),
        admin_password: Some(admin_password.clone()),
        site_name: "St. Elsewhere".into(),
        smtp_host: options.smtp_port.map(|_| "127.0.0.1".to_owned()),
        smtp_port: options.smtp_port,
        smtp_security: if options.smtp_port.is_some() {
            "plain".into()
        } else {
            "starttls".into()
        },
        ldap: options
            .ldap
            .clone()
            .unwrap_or_else(twostep::config::LdapArgs::none),
        ..ServeArgs::with_data_dir(dir.path().to_path_buf())
    };
    let clock = twostep::clock::ManualClock::new(START);
    let app = twostep::startup::Application::build(&args, Arc::new(clock.clone()))
        .await
        .expect("the application starts");
    let port = app.local_addr().unwrap().port();
    let ctx = app.context().clone();
    let store = app.store().clone();
    let hasher = app.hasher().clone();
    if !options.keep_failure_delay {
        let settings = store.settings().await.unwrap();
        let fast = settings
            .with_changes([(twostep::domain::SettingKey::FailureDelayMs, "0")])
            .unwrap();
        store.save_settings(&fast, START).await.unwrap();
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until(async {
            let _ = stopped.await;
        })
        .await
        .expect("the server runs");
    });
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        clock,
        ctx,
        store,
        hasher,
        dir,
        admin_password,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .build()
            .unwrap(),
        shutdown: Some(stop),
        server: Some(server),
    }
}

impl TestApp {
    /// POSTs JSON to the API; returns the status and the JSON answer.
    pub async fn post(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        self.post_with(path, body, &[]).await
    }

    pub async fn post_with(
        &self,
        path: &str,
        body: serde_json::Value,
        headers: &[(&str, &str)],
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.address))
            .json(&body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let text = response.text().await.unwrap();
        let json = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        };
        (status, json)
    }

    pub async fn get_json(
        &self,
        path: &str,
        bearer: Option<&str>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let mut request = self.client.get(format!("{}{path}", self.address));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    pub async fn settings(&self, changes: &[(twostep::domain::SettingKey, &str)]) {
        let settings = self.store.settings().await.unwrap();
        let changed = settings.with_changes(changes.iter().copied()).unwrap();
        self.store
            .save_settings(&changed, self.clock.now_ts())
            .await
            .unwrap();
    }

    /// A role (created if needed) with these security permissions.
    pub async fn role(
        &self,
        name: &str,
        require: twostep::domain::Require2fa,
        otp_required: bool,
        interface: bool,
    ) -> twostep::domain::Role {
        use twostep::domain::{RoleName, RoleSecurity};
        if let Some(role) = self.store.role_by_name(name).await.unwrap() {
            return role;
        }
        self.store
            .create_role(
                &RoleName::parse(name).unwrap(),
                RoleSecurity::new(require, otp_required, interface).unwrap(),
                &Default::default(),
                twostep::domain::SessionLimits::DEFAULT,
                self.clock.now_ts(),
            )
            .await
            .unwrap()
    }

    /// A user in `role` with password "<name> orchard lantern 123" ([`TestApp::password_of`]) and email <name>@example.org
    /// (or none).
    pub async fn user(
        &self,
        name: &str,
        role: &twostep::domain::Role,
        with_email: bool,
    ) -> twostep::domain::User {
        use twostep::domain::{DisplayName, Email, Username};
        let password = twostep::password::Password::new_password(Self::password_of(name)).unwrap();
        let hash = self.hasher.hash(&password).await.unwrap();
        self.store
            .create_user(
                &twostep::store::NewUser {
                    username: Username::parse(name).unwrap(),
                    display_name: DisplayName::parse(&format!("{name} Display")).unwrap(),
                    email: with_email
                        .then(|| Email::parse(&format!("{name}@example.org")).unwrap()),
                    role_id: role.id,
                    password_hash: hash,
                    must_change_password: false,
                },
                self.clock.now_ts(),
            )
            .await
            .unwrap()
    }

    /// A directory user (SPEC 12) as a sign-in through the directory leaves it: source
    /// ldap, no local password, the entry's DN and groups; email <name>@example.org.
    pub async fn directory_user(
        &self,
        name: &str,
        role: &twostep::domain::Role,
        groups: &[&str],
    ) -> twostep::domain::User {
        use twostep::domain::{DisplayName, Email, Username};
        self.store
            .create_directory_user(
                &twostep::store::DirectoryUser {
                    username: Username::parse(name).unwrap(),
                    display_name: DisplayName::parse(&format!("{name} Directory")).unwrap(),
                    email: Some(Email::parse(&format!("{name}@example.org")).unwrap()),
                    role_id: role.id,
                    dn: format!("uid={name},ou=people,dc=example,dc=org"),
                    groups: groups.iter().map(|group| (*group).to_owned()).collect(),
                },
                self.clock.now_ts(),
            )
            .await
            .unwrap()
    }

    /// Gives `user` the password `password`, to be changed at the next sign-in (as a
    /// bootstrap or reset password is).
    pub async fn set_temporary_password(&self, user: &twostep::domain::User, password: &str) {
        let password = twostep::password::Password::new_password(password.to_owned()).unwrap();
        let hash = self.hasher.hash(&password).await.unwrap();
        self.store
            .set_password_hash(user.id, &hash, true, self.clock.now_ts())
            .await
            .unwrap();
    }

    /// A new API token of `user` named `name`, made as `POST /api/v1/tokens` makes it.
    pub async fn api_token(&self, user: &twostep::domain::User, name: &str) -> String {
        let token = twostep::crypto::Token::generate(&mut rand::rngs::OsRng);
        self.store
            .create_api_token(&token.hash(), name, user.id, self.clock.now_ts())
            .await
            .unwrap();
        token.as_str().to_owned()
    }

    pub fn password_of(name: &str) -> String {
        format!("{name} orchard lantern 123")
    }

    /// Sets up and confirms a TOTP device for `user` directly; returns its generator.
    pub async fn enroll_totp(
        &self,
        user: &twostep::domain::User,
        mode: twostep::domain::PromptMode,
    ) -> twostep::otp::Totp {
        use twostep::domain::{new_device_otp, DeviceOtp, OtpMethod};
        let secret = twostep::otp::OtpSecret::generate(&mut rand::rngs::OsRng);
        let pending = self
            .store
            .create_pending_device(
                user.id,
                &twostep::store::NewDevice {
                    prompt_mode: mode,
                    otp: new_device_otp(OtpMethod::Totp, secret),
                },
                self.clock.now_ts(),
            )
            .await
            .unwrap();
        let DeviceOtp::Totp { totp, .. } = pending.otp.clone() else {
            unreachable!()
        };
        // Confirm with the code of the previous step, leaving the current one unused.
        let now = self.clock.now_ts();
        let used = pending
            .check(&totp.generate_at(now.unix_seconds() - 30), now, 10, 1)
            .unwrap();
        assert!(self
            .store
            .confirm_device(&pending, used, now)
            .await
            .unwrap());
        totp
    }

    /// The current TOTP code of `totp` at the app's clock.
    pub fn totp_now(&self, totp: &twostep::otp::Totp) -> String {
        totp.generate_at(self.clock.now_ts().unix_seconds())
            .as_str()
            .to_owned()
    }

    /// The code of `totp` now; the clock then moves a step on (each code is accepted once).
    pub fn totp_next(&self, totp: &twostep::otp::Totp) -> String {
        let code = self.totp_now(totp);
        self.clock.advance_seconds(30);
        code
    }

    /// Delivers the outbox now and returns the emails in the mail folder, oldest first.
    pub async fn mails(&self) -> Vec<String> {
        let worker = twostep::service::outbox::Worker::new(
            self.ctx.clone(),
            twostep::mail::delivery::Transport::Folder(self.dir.path().join("mail")),
        );
        // The server's own worker may hold a message; wait (bounded) until all are delivered.
        for _ in 0..250 {
            worker.pass().await.unwrap();
            if self.store.outbox_pending().await.unwrap() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let folder = self.dir.path().join("mail");
        let mut files: Vec<_> = std::fs::read_dir(&folder)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .map(|path| std::fs::read_to_string(path).unwrap())
            .collect()
    }

    /// The code in the newest email.
    pub async fn last_emailed_code(&self) -> String {
        let mails = self.mails().await;
        let mail = mails.last().expect("an email was written");
        code_in_email(mail).expect("the email holds a code")
    }

    pub async fn signin_still_sending(&self, transaction: &str) -> bool {
        twostep::service::signin::SignIn::new(self.ctx.clone())
            .still_sending(transaction)
            .await
            .unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

/// The code in an email: the first line of the (quoted-printable decoded) message that
/// is nothing but 6 to 20 digits.
pub fn code_in_email(mail: &str) -> Option<String> {
    let joined = mail.replace("=\r\n", "").replace("=\n", "");
    let mut decoded = String::new();
    let bytes = joined.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(value) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                decoded.push(char::from(value));
                i += 3;
                continue;
            }
        }
        decoded.push(char::from(bytes[i]));
        i += 1;
    }
    decoded
        .lines()
        .map(str::trim)
        .find(|line| (6..=20).contains(&line.len()) && line.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_owned)
}

/// `now()` under a name that does not clash with `Clock::now` in scope.
pub trait NowTs {
    fn now_ts(&self) -> twostep::clock::Timestamp;
}

impl NowTs for twostep::clock::ManualClock {
    fn now_ts(&self) -> twostep::clock::Timestamp {
        use twostep::clock::Clock;
        self.now()
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real SMTP server process (Python's aiosmtpd) on 127.0.0.1 that stores every message
/// it accepts in a Maildir.
pub struct SmtpSink {
    child: std::process::Child,
    pub maildir: std::path::PathBuf,
}

impl SmtpSink {
    /// `None` outside CI when Python's aiosmtpd is missing (the test then skips, saying so).
    pub async fn start(port: u16, maildir: &std::path::Path) -> Option<Self> {
        let python = require_program("python3", "the python3 package")?;
        let available = std::process::Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .status()
            .is_ok_and(|status| status.success());
        if !available {
            if std::env::var_os("CI").is_some() {
                panic!("Python's aiosmtpd is required in CI (python3 -m pip install aiosmtpd)");
            }
            eprintln!("SKIPPED: Python's aiosmtpd is not installed; CI runs this test");
            return None;
        }
        let child = std::process::Command::new(&python)
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(maildir.join("Maildir"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("aiosmtpd starts");
        let sink = Self {
            child,
            maildir: maildir.join("Maildir"),
        };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Some(sink);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the SMTP server did not start listening on port {port}");
    }

    /// The messages received so far.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<_> = std::fs::read_dir(self.maildir.join("new"))
            .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .collect()
    }

    /// Waits (at most `seconds`) until at least `count` messages arrived.
    pub async fn wait_for(&self, count: usize, seconds: u64) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(seconds);
        loop {
            let messages = self.messages();
            if messages.len() >= count || tokio::time::Instant::now() >= deadline {
                return messages;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The generator an authenticator app makes from a TOTP key URI handed out by a set-up.
pub fn totp_of(otpauth_uri: &str) -> twostep::otp::Totp {
    let key = twostep::otp::KeyUri::parse(otpauth_uri)
        .unwrap_or_else(|error| panic!("{otpauth_uri}: {error}"));
    let twostep::otp::KeyUriKind::Totp { period } = key.kind else {
        panic!("a TOTP key URI: {otpauth_uri}")
    };
    twostep::otp::Totp {
        secret: key.secret,
        algorithm: key.algorithm,
        digits: key.digits,
        period,
    }
}
