//! The admin subcommands (SPEC section 9): `twostep user|role|settings|ip ...` and SPEC
//! 13's `twostep oidc client ...`, for automation and recovery, on the database a
//! `twostep serve` created.
//!
//! Every change goes through [`Admin`] as [`Actor::Cli`], so it is validated and audited
//! (actor "cli") exactly like the same change through the API. The database is opened
//! with [`Store::open_existing`]: a command never creates a database, a schema or a key.
//!
//! Exit codes: 0 success; 1 a refused operation (a bad value, not found, a conflict: the
//! service's message) or a local failure (standard input or output); 2 a usage error
//! (clap's, or KEY VALUE pairs that do not pair); 3 the database cannot be opened or used
//! (missing, wrong key, unreachable). Results go to standard output, one record per line
//! with tab-separated columns after a header line; errors go to standard error. Nothing
//! secret is printed but a password generated on request, or a new application's client
//! secret, once.

use std::fmt::Write as _;
use std::io::{BufRead as _, Write as _};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use rand::rngs::OsRng;

use crate::clock::Clock;
use crate::config::DatabaseArgs;
use crate::domain::oidc::ClientRegistration;
use crate::domain::{Role, SettingKey, UserSource, Username};
use crate::password::{Password, PasswordHasher};
use crate::service::admin::{
    Actor, Admin, AdminError, ApplicationInput, RolePatch, UserInput, UserPatch, UserView,
    DIRECTORY_PASSWORD,
};
use crate::service::oidc::Oidc;
use crate::service::{Context, ServiceConfig};
use crate::store::{Store, StoreError, StoredIpRule};

/// Database connections a command opens; it runs one operation at a time.
const CLI_DB_CONNECTIONS: u32 = 2;
/// Users fetched per page by `user list`.
const USER_PAGE: u32 = 200;

/// The admin subcommands, each with the database options of `serve`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Users: add, set-role, reset-password, unlock, disable-2fa, revoke-recovery-codes,
    /// temporary-access, revoke-temporary-access, list.
    User(UserCommand),
    /// Security roles: list, set.
    Role(RoleCommand),
    /// System settings (SPEC section 2): get, set.
    Settings(SettingsCommand),
    /// IP Settings, the acceptable IP rules: add, list, remove.
    Ip(IpCommand),
    /// The OpenID Connect provider (SPEC 13): `oidc client add|list|remove|new-secret`,
    /// `oidc rotate-key`.
    Oidc(OidcCommand),
    /// The audit log (SPEC 16): `audit verify` checks its hash chain.
    Audit(AuditCommand),
}

#[derive(Debug, Args)]
pub struct AuditCommand {
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(subcommand)]
    pub action: AuditAction,
}

#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Check the hash chain of the audit log: every entry's content, sequence number and
    /// link to the entry before it. Prints the first broken entry and exits 1.
    Verify {
        /// Start at this sequence number, trusting its link to the entry before it.
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
        from: Option<i64>,
    },
}

#[derive(Debug, Args)]
pub struct UserCommand {
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(subcommand)]
    pub action: UserAction,
}

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Add a user.
    Add {
        /// Letters, digits and . _ - @; case-insensitive.
        username: String,
        /// The name shown to administrators and in emails.
        #[arg(long)]
        display_name: String,
        /// Where emailed OTPs go.
        #[arg(long)]
        email: Option<String>,
        /// The security role, e.g. "Staff".
        #[arg(long)]
        role: String,
        #[command(flatten)]
        password: NewPassword,
        /// With --password-stdin: the user must still choose a new password at the first
        /// sign-in (a generated password always requires it).
        #[arg(long)]
        must_change_password: bool,
    },
    /// Give a user another security role.
    SetRole { username: String, role: String },
    /// Reset a user's password; the user must choose a new one at the next sign-in, and
    /// their sessions end.
    ResetPassword {
        username: String,
        #[command(flatten)]
        password: NewPassword,
    },
    /// Unlock an account locked after failed sign-ins.
    Unlock { username: String },
    /// Remove a user's 2-step verification device (Change -> Disable).
    #[command(name = "disable-2fa")]
    Disable2fa { username: String },
    /// Revoke a user's recovery codes: none of them works any more.
    #[command(name = "revoke-recovery-codes")]
    RevokeRecoveryCodes { username: String },
    /// Issue a temporary access code (SPEC 15) for a user who lost the device: printed
    /// once; with the password it stands in for 2-step verification. It replaces any
    /// earlier one; the user and the security officer are emailed.
    #[command(name = "temporary-access")]
    TemporaryAccess {
        username: String,
        /// How long it works: 1 to 1440 minutes.
        #[arg(long, default_value_t = 60)]
        minutes: u32,
        /// How many sign-ins it stands in for: 1 to 10.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// Why (for example the service desk ticket); audited.
        #[arg(long)]
        reason: String,
    },
    /// Revoke a user's temporary access code.
    #[command(name = "revoke-temporary-access")]
    RevokeTemporaryAccess { username: String },
    /// List users: username, display name, role, 2-step verification, locked.
    List {
        /// Only users whose username, display name or email contains this (any case).
        #[arg(long)]
        search: Option<String>,
    },
}

/// Where a new password comes from; never a command-line argument, which every user of
/// the machine can read (`ps`).
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct NewPassword {
    /// Read the password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// Generate a password, print it once, and require a change at the next sign-in.
    #[arg(long)]
    pub generate_password: bool,
}

#[derive(Debug, Args)]
pub struct RoleCommand {
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(subcommand)]
    pub action: RoleAction,
}

#[derive(Debug, Subcommand)]
pub enum RoleAction {
    /// List roles: name, Require 2FA, OTP Required, interface, permissions, session idle
    /// minutes, session max hours.
    List,
    /// Change a role (options not given keep their value), or create it with --create.
    Set {
        /// The role's name, e.g. "Staff" (any case).
        name: String,
        /// Require 2FA: device enrollment policy.
        #[arg(long = "require-2fa", value_parser = ["no", "encourage", "force"])]
        require_2fa: Option<String>,
        /// OTP Required: an emailed OTP at sign-in.
        #[arg(long, value_enum)]
        otp_required: Option<YesNo>,
        /// An interface role (service accounts; never 2FA nor OTP).
        #[arg(long, value_enum)]
        interface: Option<YesNo>,
        /// The role's permissions, replacing the current ones, comma-separated (empty for
        /// none): manage_users, manage_roles, manage_system_settings, manage_2fa_bypass,
        /// manage_ip_settings, view_audit_log, verify_otp, manage_applications.
        #[arg(long, value_delimiter = ',')]
        permissions: Option<Vec<String>>,
        /// SPEC 15: a session ends after this many minutes without a request (1 to 1440;
        /// default 30).
        #[arg(long)]
        session_idle_minutes: Option<i64>,
        /// SPEC 15: a session ends this many hours after the sign-in (1 to 168; default 12).
        #[arg(long)]
        session_max_hours: Option<i64>,
        /// Create the role when there is none of this name (defaults: Require 2FA no, OTP
        /// Required no, not interface, no permissions).
        #[arg(long)]
        create: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum YesNo {
    Yes,
    No,
}

impl YesNo {
    fn get(self) -> bool {
        self == Self::Yes
    }
}

#[derive(Debug, Args)]
pub struct SettingsCommand {
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(subcommand)]
    pub action: SettingsAction,
}

#[derive(Debug, Subcommand)]
pub enum SettingsAction {
    /// Print every setting as `key = value`, or only the value of KEY.
    Get {
        /// Not named `key`: that is the id of the global `--key` (TWOSTEP_KEY), which
        /// would take this value too.
        #[arg(value_name = "KEY")]
        setting: Option<String>,
    },
    /// Change settings: all of them, or none when one value is refused.
    Set {
        /// KEY VALUE pairs, e.g. `otp_length 8 lockout_threshold 10`.
        #[arg(required = true, value_name = "KEY VALUE")]
        pairs: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct IpCommand {
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(subcommand)]
    pub action: IpAction,
}

#[derive(Debug, Subcommand)]
pub enum IpAction {
    /// Add an acceptable IP rule.
    Add {
        /// An IPv4/IPv6 address or CIDR range, e.g. 10.20.0.0/16.
        network: String,
        /// Clients from this network may skip the OTP prompt ("In Network"), when the
        /// setting bypass_enabled is on.
        #[arg(long = "bypass-2fa")]
        bypass_2fa: bool,
        /// A note for administrators (at most 200 characters).
        #[arg(long, default_value = "")]
        note: String,
        /// Needed for a network broader than /16 (IPv4) or /48 (IPv6), e.g. 0.0.0.0/0.
        #[arg(long = "confirm-broad")]
        confirm_broad: bool,
    },
    /// List the rules: id, network, bypass_2fa, note.
    List,
    /// Remove the rule with this id (see `ip list`).
    Remove { id: i64 },
}

#[derive(Debug, Args)]
pub struct OidcCommand {
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(subcommand)]
    pub action: OidcAction,
}

#[derive(Debug, Subcommand)]
pub enum OidcAction {
    /// The registered applications (OpenID Connect clients): add, list, remove, new-secret.
    #[command(subcommand)]
    Client(ClientAction),
    /// Make a new signing key for ID tokens. Every instance signs with it at once; the
    /// old key stays in the JWKS until the ID tokens it signed have expired.
    RotateKey,
}

#[derive(Debug, Subcommand)]
pub enum ClientAction {
    /// Register an application; a confidential one's client secret is printed once.
    Add {
        /// 1 to 64 letters, digits, dots, underscores and hyphens.
        #[arg(long = "client-id")]
        client_id: String,
        /// Shown to users at sign-in.
        #[arg(long)]
        name: String,
        /// Where the application receives the code (https://, http:// only to
        /// localhost, 127.0.0.1 or [::1], or a native app's scheme); repeatable, 1 to 20.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Where RP-initiated logout may return to; repeatable.
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// A public client (a browser or native app): no secret, PKCE required.
        #[arg(long)]
        public: bool,
        /// Its users do a second-factor step even where their role needs none.
        #[arg(long = "require-2fa")]
        require_2fa: bool,
    },
    /// List the applications: client_id, name, confidential, require_2fa, redirect_uris.
    List,
    /// Remove the application with this client id.
    Remove { client_id: String },
    /// Give a confidential application a new client secret, printed once; the old one
    /// stops working at once.
    NewSecret { client_id: String },
}

/// Why a command failed; [`CliError::exit_code`] is what the process returns.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The service refused: a bad value, not found, a conflict.
    #[error("{0}")]
    Refused(String),
    /// Arguments that clap accepted but that do not make a command.
    #[error("{0}")]
    Usage(String),
    #[error("no twostep database at {0}; run `twostep serve` once first")]
    NoDatabase(String),
    /// The database cannot be opened (wrong key, unreachable) or failed during the command.
    #[error(transparent)]
    Database(anyhow::Error),
    /// Standard input or output, or the password hasher.
    #[error(transparent)]
    Local(anyhow::Error),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Refused(_) | Self::Local(_) => 1,
            Self::Usage(_) => 2,
            Self::NoDatabase(_) | Self::Database(_) => 3,
        }
    }
}

/// Runs `command` and prints its result (standard output) or its error (standard error);
/// returns the exit code. What `main` calls.
pub async fn execute(command: Command, clock: Arc<dyn Clock>) -> ExitCode {
    let result = match run(command, clock).await {
        Ok(output) => std::io::stdout()
            .lock()
            .write_all(output.as_bytes())
            .and_then(|()| std::io::stdout().lock().flush())
            .context("cannot write to standard output")
            .map_err(CliError::Local),
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Nothing to do if standard error is gone too.
            let _ = writeln!(std::io::stderr().lock(), "error: {error:#}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// Runs `command`; returns what it prints on standard output.
pub async fn run(command: Command, clock: Arc<dyn Clock>) -> Result<String, CliError> {
    match command {
        Command::User(UserCommand { db, action }) => {
            let admin = open(&db, clock).await?;
            let result = user(&admin, action).await;
            admin.context().close().await;
            result
        }
        Command::Role(RoleCommand { db, action }) => {
            let admin = open(&db, clock).await?;
            let result = role(&admin, action).await;
            admin.context().close().await;
            result
        }
        Command::Settings(SettingsCommand { db, action }) => {
            // Usage is checked before the database is touched.
            let action = SettingsRequest::parse(action)?;
            let admin = open(&db, clock).await?;
            let result = settings(&admin, action).await;
            admin.context().close().await;
            result
        }
        Command::Audit(AuditCommand {
            db,
            action: AuditAction::Verify { from },
        }) => {
            let admin = open(&db, clock).await?;
            let result = admin
                .verify_audit_chain(&Actor::Cli, from)
                .await
                .map_err(|e| refused(e, "audit chain"));
            admin.context().close().await;
            let report = result?;
            let waiting = match report.unsealed {
                0 => String::new(),
                n => format!(" ({n} newer entries not sealed yet)"),
            };
            match report.broken {
                None => Ok(format!(
                    "the audit chain verifies: {} entries{waiting}\n",
                    report.checked
                )),
                Some(broken) if broken.id == 0 => Err(CliError::Refused(format!(
                    "the audit chain is broken at sequence number {}: the last entries \
                     were removed ({} entries before it verify)",
                    broken.seq, report.checked
                ))),
                Some(broken) => Err(CliError::Refused(format!(
                    "the audit chain is broken at entry {} (sequence number {}): {} ({} \
                     entries before it verify)",
                    broken.id, broken.seq, broken.why, report.checked
                ))),
            }
        }
        Command::Ip(IpCommand { db, action }) => {
            let admin = open(&db, clock).await?;
            let result = ip(&admin, action).await;
            admin.context().close().await;
            result
        }
        Command::Oidc(OidcCommand {
            db,
            action: OidcAction::Client(action),
        }) => {
            let admin = open(&db, clock).await?;
            let result = oidc_client(&admin, action).await;
            admin.context().close().await;
            result
        }
        Command::Oidc(OidcCommand {
            db,
            action: OidcAction::RotateKey,
        }) => {
            let admin = open(&db, clock).await?;
            // The issuer plays no part in making a key.
            let provider = Oidc::new(admin.context().clone(), "");
            let result = provider
                .rotate_key()
                .await
                .map(|kid| {
                    format!(
                        "new signing key {kid}; the old one stays published for {} minutes\n",
                        crate::service::oidc::ID_TOKEN_SECONDS / 60
                    )
                })
                .context("cannot rotate the signing key")
                .map_err(CliError::Database);
            admin.context().close().await;
            result
        }
    }
}

/// The administration service on the existing database at `db`.
async fn open(db: &DatabaseArgs, clock: Arc<dyn Clock>) -> Result<Admin, CliError> {
    let location = db.location();
    let store = Store::open_existing(&db.store_options(Some(CLI_DB_CONNECTIONS)))
        .await
        .with_context(|| format!("cannot open the database at {location}"))
        .map_err(CliError::Database)?
        .ok_or_else(|| CliError::NoDatabase(location.clone()))?;
    // A database whose first start did not finish has no roles yet; `serve` completes it.
    let roles = store
        .list_roles()
        .await
        .with_context(|| format!("cannot read the database at {location}"))
        .map_err(CliError::Database)?;
    if roles.is_empty() {
        store.close().await;
        return Err(CliError::NoDatabase(location));
    }
    let hasher = PasswordHasher::new(1)
        .context("cannot set up password hashing")
        .map_err(CliError::Local)?;
    Ok(Admin::new(Context::new(
        store,
        hasher,
        clock,
        ServiceConfig::default(),
    )))
}

/// An error of the service, for a command about `subject` (e.g. `named "bob"`).
fn refused(error: AdminError, subject: &str) -> CliError {
    match error {
        AdminError::NotFound(what) => CliError::Refused(format!("there is no {what} {subject}")),
        AdminError::Forbidden(_)
        | AdminError::Invalid { .. }
        | AdminError::BroadNetwork(_)
        | AdminError::Conflict(_) => CliError::Refused(error.to_string()),
        AdminError::Internal(source) => {
            let is_store = source.downcast_ref::<StoreError>().is_some();
            let error = anyhow::Error::from_boxed(source).context("the operation failed");
            if is_store {
                CliError::Database(error)
            } else {
                CliError::Local(error)
            }
        }
    }
}

fn named(name: &str) -> String {
    format!("named \"{}\"", name.chars().take(64).collect::<String>())
}

/// The password for `user add` / `user reset-password`, and whether it was generated.
async fn new_password(source: &NewPassword) -> Result<(Password, bool), CliError> {
    if source.generate_password {
        return Ok((Password::generate(&mut OsRng), true));
    }
    // One line, read on a blocking thread: standard input may be a terminal or a pipe.
    let mut line = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|_| line)
    })
    .await
    .context("cannot read the password from standard input")
    .and_then(|read| read.context("cannot read the password from standard input"))
    .map_err(CliError::Local)?;
    if line.ends_with('\n') {
        line.pop();
        if line.ends_with('\r') {
            line.pop();
        }
    }
    // Checked here for a message before any work; the service checks it again.
    let password = Password::new_password(line).map_err(|e| CliError::Refused(e.to_string()))?;
    Ok((password, false))
}

// ----- user -----

async fn user(admin: &Admin, action: UserAction) -> Result<String, CliError> {
    let actor = Actor::Cli;
    let mut out = String::new();
    match action {
        UserAction::Add {
            username,
            display_name,
            email,
            role,
            password,
            must_change_password,
        } => {
            let (password, generated) = new_password(&password).await?;
            let input = UserInput {
                username: username.clone(),
                display_name,
                email,
                role,
                password: password.expose().to_owned(),
                must_change_password: generated || must_change_password,
            };
            let view = admin
                .create_user(&actor, &input, None)
                .await
                .map_err(|e| refused(e, &named(&username)))?;
            let _ = writeln!(
                out,
                "added user {} (role {})",
                view.user.username.as_str(),
                view.role
            );
            if generated {
                push_generated(&mut out, &password);
            }
        }
        UserAction::SetRole { username, role } => {
            let patch = UserPatch {
                role: Some(role),
                ..UserPatch::default()
            };
            let view = admin
                .update_user(&actor, &username, &patch, None)
                .await
                .map_err(|e| refused(e, &named(&username)))?;
            let _ = writeln!(
                out,
                "user {} now has the role {}",
                view.user.username.as_str(),
                view.role
            );
        }
        UserAction::ResetPassword { username, password } => {
            // Refuse an unknown user, or one whose password is the directory's, before
            // reading a password for it.
            let found = admin
                .get_user(&actor, &username)
                .await
                .map_err(|e| refused(e, &named(&username)))?;
            if found.user.source == UserSource::Directory {
                return Err(CliError::Refused(format!(
                    "{}: {DIRECTORY_PASSWORD}",
                    found.user.username.as_str()
                )));
            }
            let (password, generated) = new_password(&password).await?;
            let patch = UserPatch {
                password: Some(password.expose().to_owned()),
                ..UserPatch::default()
            };
            let view = admin
                .update_user(&actor, &username, &patch, None)
                .await
                .map_err(|e| refused(e, &named(&username)))?;
            let _ = writeln!(
                out,
                "reset the password of {}; it must be changed at the next sign-in",
                view.user.username.as_str()
            );
            if generated {
                push_generated(&mut out, &password);
            }
        }
        UserAction::Unlock { username } => {
            admin
                .unlock(&actor, &username, None)
                .await
                .map_err(|e| refused(e, &named(&username)))?;
            let _ = writeln!(out, "unlocked {}", canonical(&username));
        }
        UserAction::Disable2fa { username } => {
            let had = admin
                .disable_device(&actor, &username, None)
                .await
                .map_err(|e| refused(e, &named(&username)))?;
            let name = canonical(&username);
            let _ = if had {
                writeln!(out, "disabled 2-step verification of {name}")
            } else {
                writeln!(
                    out,
                    "{name} has no 2-step verification device; nothing changed"
                )
            };
        }
        UserAction::RevokeRecoveryCodes { username } => {
            let left = admin
                .revoke_recovery_codes(&actor, &username, None)
                .await
                .map_err(|e| refused(e, &named(&username)))?;
            let _ = writeln!(
                out,
                "revoked the recovery codes of {} ({left} unused)",
                canonical(&username)
            );
        }
        UserAction::TemporaryAccess {
            username,
            minutes,
            uses,
            reason,
        } => {
            let issued = admin
                .issue_temporary_access(&actor, &username, minutes, uses, &reason, None)
                .await
                .map_err(|e| refused(e, &named(&username)))?;
            let _ = writeln!(
                out,
                "temporary access code for {}: {}\nworks for {} sign-in(s) until {} (shown once)",
                canonical(&username),
                issued.code.reveal(),
                issued.access.uses,
                issued.access.expires_at.iso_utc()
            );
        }
        UserAction::RevokeTemporaryAccess { username } => {
            admin
                .revoke_temporary_access(&actor, &username, None)
                .await
                .map_err(|e| match e {
                    AdminError::NotFound("temporary access code") => CliError::Refused(format!(
                        "{} has no temporary access code",
                        canonical(&username)
                    )),
                    other => refused(other, &named(&username)),
                })?;
            let _ = writeln!(
                out,
                "revoked the temporary access code of {}",
                canonical(&username)
            );
        }
        UserAction::List { search } => {
            let views = all_users(admin, search.as_deref()).await?;
            out.push_str("username\tdisplay_name\trole\ttwo_step\tlocked\tsource\n");
            for view in &views {
                push_user(&mut out, view);
            }
        }
    }
    Ok(out)
}

/// A username as stored (lower case), for messages about a user the service found.
fn canonical(username: &str) -> String {
    Username::parse(username).map_or_else(|_| username.to_owned(), |name| name.as_str().to_owned())
}

/// The generated password, on a line of its own: printed once, never stored in clear.
fn push_generated(out: &mut String, password: &Password) {
    let _ = writeln!(out, "one-time password: {}", password.expose());
}

async fn all_users(admin: &Admin, search: Option<&str>) -> Result<Vec<UserView>, CliError> {
    let mut views = Vec::new();
    loop {
        let offset = u32::try_from(views.len()).unwrap_or(u32::MAX);
        let (page, total) = admin
            .list_users(&Actor::Cli, search, offset, USER_PAGE)
            .await
            .map_err(|e| refused(e, ""))?;
        let done = page.is_empty();
        views.extend(page);
        if done || views.len() as u64 >= total {
            return Ok(views);
        }
    }
}

fn push_user(out: &mut String, view: &UserView) {
    let _ = writeln!(
        out,
        "{}\t{}\t{}\t{}\t{}\t{}",
        view.user.username.as_str(),
        view.user.display_name.as_str(),
        view.role,
        if view.two_step_enabled {
            "Enabled"
        } else {
            "Not Enabled"
        },
        yes_no(view.locked),
        view.user.source,
    );
}

fn yes_no(flag: bool) -> &'static str {
    if flag {
        "yes"
    } else {
        "no"
    }
}

// ----- role -----

async fn role(admin: &Admin, action: RoleAction) -> Result<String, CliError> {
    let actor = Actor::Cli;
    let mut out = String::new();
    match action {
        RoleAction::List => {
            let roles = admin.list_roles(&actor).await.map_err(|e| refused(e, ""))?;
            out.push_str(
                "name\trequire_2fa\totp_required\tinterface\tpermissions\t\
                 session_idle_minutes\tsession_max_hours\n",
            );
            for role in &roles {
                push_role(&mut out, role);
            }
        }
        RoleAction::Set {
            name,
            require_2fa,
            otp_required,
            interface,
            permissions,
            session_idle_minutes,
            session_max_hours,
            create,
        } => {
            let patch = RolePatch {
                name: None,
                require_2fa,
                otp_required: otp_required.map(YesNo::get),
                interface: interface.map(YesNo::get),
                permissions: permissions.map(|names| {
                    names
                        .into_iter()
                        .map(|name| name.trim().to_owned())
                        .filter(|name| !name.is_empty())
                        .collect()
                }),
                session_idle_minutes,
                session_max_hours,
            };
            let changes = patch.require_2fa.is_some()
                || patch.otp_required.is_some()
                || patch.interface.is_some()
                || patch.permissions.is_some()
                || patch.session_idle_minutes.is_some()
                || patch.session_max_hours.is_some();
            let existing = match admin.get_role(&actor, &name).await {
                Ok(role) => Some(role),
                Err(AdminError::NotFound(_)) => None,
                Err(error) => return Err(refused(error, &named(&name))),
            };
            let role = match existing {
                Some(role) if !changes => role,
                Some(_) => admin
                    .update_role(&actor, &name, &patch, None)
                    .await
                    .map_err(|e| refused(e, &named(&name)))?,
                None if create => {
                    let input = RolePatch {
                        name: Some(name.clone()),
                        ..patch
                    };
                    admin
                        .create_role(&actor, &input, None)
                        .await
                        .map_err(|e| refused(e, &named(&name)))?
                }
                None => {
                    return Err(CliError::Refused(format!(
                        "there is no role {}; add --create to create it",
                        named(&name)
                    )))
                }
            };
            push_role(&mut out, &role);
        }
    }
    Ok(out)
}

fn push_role(out: &mut String, role: &Role) {
    let permissions: Vec<&str> = role.permissions.iter().map(|p| p.as_str()).collect();
    let _ = writeln!(
        out,
        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
        role.name.as_str(),
        role.security.require_2fa().as_str(),
        yes_no(role.security.otp_required()),
        yes_no(role.security.interface()),
        permissions.join(","),
        role.session_limits.idle_minutes(),
        role.session_limits.max_hours(),
    );
}

// ----- settings -----

/// A settings action with its keys parsed.
enum SettingsRequest {
    GetAll,
    Get(SettingKey),
    Set(Vec<(SettingKey, String)>),
}

impl SettingsRequest {
    fn parse(action: SettingsAction) -> Result<Self, CliError> {
        match action {
            SettingsAction::Get { setting: None } => Ok(Self::GetAll),
            SettingsAction::Get {
                setting: Some(name),
            } => Ok(Self::Get(setting_key(&name)?)),
            SettingsAction::Set { pairs } => {
                if pairs.len() % 2 != 0 {
                    return Err(CliError::Usage(
                        "settings set takes KEY VALUE pairs; a value is missing".into(),
                    ));
                }
                pairs
                    .chunks_exact(2)
                    .map(|pair| match pair {
                        [key, value] => Ok((setting_key(key)?, value.clone())),
                        _ => Err(CliError::Usage("settings set takes KEY VALUE pairs".into())),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Self::Set)
            }
        }
    }
}

fn setting_key(name: &str) -> Result<SettingKey, CliError> {
    SettingKey::parse(name).ok_or_else(|| {
        let known: Vec<&str> = SettingKey::ALL.iter().map(|key| key.name()).collect();
        CliError::Refused(format!(
            "unknown setting \"{}\"; the settings are {}",
            name.chars().take(64).collect::<String>(),
            known.join(", ")
        ))
    })
}

async fn settings(admin: &Admin, request: SettingsRequest) -> Result<String, CliError> {
    let actor = Actor::Cli;
    let mut out = String::new();
    match request {
        SettingsRequest::GetAll => {
            let settings = admin.settings(&actor).await.map_err(|e| refused(e, ""))?;
            // One line per setting: a line break of the Help Text is shown as `\n`.
            for key in SettingKey::ALL {
                let value = settings.get(key).replace('\n', "\\n");
                let _ = writeln!(out, "{} = {}", key.name(), value);
            }
        }
        SettingsRequest::Get(key) => {
            let settings = admin.settings(&actor).await.map_err(|e| refused(e, ""))?;
            let _ = writeln!(out, "{}", settings.get(key));
        }
        SettingsRequest::Set(changes) => {
            let after = admin
                .update_settings(&actor, &changes, None)
                .await
                .map_err(|e| refused(e, ""))?;
            let mut shown = Vec::new();
            for (key, _) in &changes {
                if !shown.contains(key) {
                    shown.push(*key);
                    let _ = writeln!(out, "{} = {}", key.name(), after.get(*key));
                }
            }
        }
    }
    Ok(out)
}

// ----- ip -----

async fn ip(admin: &Admin, action: IpAction) -> Result<String, CliError> {
    let actor = Actor::Cli;
    let mut out = String::new();
    match action {
        IpAction::Add {
            network,
            bypass_2fa,
            note,
            confirm_broad,
        } => {
            let rule = admin
                .add_ip_rule_confirmed(&actor, &network, bypass_2fa, &note, confirm_broad, None)
                .await
                .map_err(|e| refused(e, ""))?;
            push_rule(&mut out, &rule);
        }
        IpAction::List => {
            let rules = admin.ip_rules(&actor).await.map_err(|e| refused(e, ""))?;
            out.push_str("id\tnetwork\tbypass_2fa\tnote\n");
            for rule in &rules {
                push_rule(&mut out, rule);
            }
        }
        IpAction::Remove { id } => {
            admin
                .remove_ip_rule(&actor, id, None)
                .await
                .map_err(|e| refused(e, &format!("with id {id}")))?;
            let _ = writeln!(out, "removed IP rule {id}");
        }
    }
    Ok(out)
}

fn push_rule(out: &mut String, stored: &StoredIpRule) {
    let _ = writeln!(
        out,
        "{}\t{}\t{}\t{}",
        stored.id,
        stored.rule.network,
        yes_no(stored.rule.bypass_2fa),
        stored.rule.note,
    );
}

// ----- oidc client -----

async fn oidc_client(admin: &Admin, action: ClientAction) -> Result<String, CliError> {
    let actor = Actor::Cli;
    let mut out = String::new();
    match action {
        ClientAction::Add {
            client_id,
            name,
            redirect_uris,
            post_logout_redirect_uris,
            public,
            require_2fa,
        } => {
            let input = ApplicationInput {
                client_id,
                name,
                redirect_uris,
                post_logout_redirect_uris,
                confidential: !public,
                require_2fa,
            };
            let created = admin
                .create_application(&actor, &input, None)
                .await
                .map_err(|e| refused(e, ""))?;
            push_client(&mut out, &created.client);
            if let Some(secret) = created.secret {
                let _ = writeln!(out, "client secret (shown once): {}", secret.as_str());
            }
        }
        ClientAction::List => {
            let clients = admin
                .applications(&actor)
                .await
                .map_err(|e| refused(e, ""))?;
            out.push_str(CLIENT_HEADER);
            for client in &clients {
                push_client(&mut out, client);
            }
        }
        ClientAction::Remove { client_id } => {
            admin
                .delete_application(&actor, &client_id, None)
                .await
                .map_err(|e| refused(e, &with_client_id(&client_id)))?;
            let _ = writeln!(out, "removed application {client_id}");
        }
        ClientAction::NewSecret { client_id } => {
            let secret = admin
                .new_application_secret(&actor, &client_id, None)
                .await
                .map_err(|e| refused(e, &with_client_id(&client_id)))?;
            let _ = writeln!(out, "client secret (shown once): {}", secret.as_str());
        }
    }
    Ok(out)
}

/// "with client id \"...\"", for a refusal that names the application asked for.
fn with_client_id(client_id: &str) -> String {
    format!(
        "with client id \"{}\"",
        client_id.chars().take(64).collect::<String>()
    )
}

const CLIENT_HEADER: &str = "client_id\tname\tconfidential\trequire_2fa\tredirect_uris\n";

/// A client's line; its redirect URIs separated by spaces (a URI has none).
fn push_client(out: &mut String, client: &ClientRegistration) {
    let uris: Vec<&str> = client.redirect_uris.iter().map(|u| u.as_str()).collect();
    let _ = writeln!(
        out,
        "{}\t{}\t{}\t{}\t{}",
        client.client_id.as_str(),
        client.name,
        yes_no(client.confidential),
        yes_no(client.require_2fa),
        uris.join(" "),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Debug, Parser)]
    struct TestCli {
        #[command(subcommand)]
        command: Command,
    }

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        TestCli::try_parse_from(std::iter::once("twostep").chain(args.iter().copied()))
            .map(|cli| cli.command)
    }

    #[test]
    fn the_command_line_is_well_formed() {
        TestCli::command().debug_assert();
    }

    #[test]
    fn database_options_go_before_or_after_the_action() {
        for args in [
            &["user", "--data-dir", "d", "list"][..],
            &["user", "list", "--data-dir", "d"][..],
        ] {
            let Ok(Command::User(command)) = parse(args) else {
                panic!("{args:?} parses");
            };
            assert_eq!(command.db.data_dir, std::path::PathBuf::from("d"));
            assert!(matches!(command.action, UserAction::List { search: None }));
        }
    }

    #[test]
    fn a_setting_name_is_not_taken_for_the_server_key() {
        let Ok(Command::Settings(command)) = parse(&["settings", "get", "otp_length"]) else {
            panic!("parses");
        };
        assert!(command.db.key.is_none());
        assert!(matches!(
            command.action,
            SettingsAction::Get { setting: Some(name) } if name == "otp_length"
        ));
    }

    #[test]
    fn a_new_password_needs_exactly_one_source() {
        let base = [
            "user",
            "add",
            "bob",
            "--display-name",
            "Bob",
            "--role",
            "Staff",
        ];
        let without = parse(&base).unwrap_err();
        assert_eq!(without.exit_code(), 2);
        let mut both = base.to_vec();
        both.extend(["--password-stdin", "--generate-password"]);
        assert_eq!(parse(&both).unwrap_err().exit_code(), 2);
        let mut one = base.to_vec();
        one.push("--generate-password");
        assert!(parse(&one).is_ok());
        // A password is never an argument.
        let mut plain = base.to_vec();
        plain.extend(["--password", "secret password"]);
        assert!(parse(&plain).is_err());
    }

    #[test]
    fn role_options_take_only_their_values() {
        assert!(parse(&["role", "set", "Staff", "--require-2fa", "force"]).is_ok());
        assert!(parse(&["role", "set", "Staff", "--require-2fa", "always"]).is_err());
        assert!(parse(&["role", "set", "Staff", "--otp-required", "maybe"]).is_err());
        let Ok(Command::Role(RoleCommand {
            action: RoleAction::Set { permissions, .. },
            ..
        })) = parse(&[
            "role",
            "set",
            "X",
            "--permissions",
            "manage_users,view_audit_log",
        ])
        else {
            panic!("parses");
        };
        assert_eq!(
            permissions.unwrap(),
            vec!["manage_users".to_owned(), "view_audit_log".to_owned()]
        );
    }

    #[test]
    fn settings_set_needs_pairs_of_known_keys() {
        let pairs = |args: &[&str]| {
            SettingsRequest::parse(SettingsAction::Set {
                pairs: args.iter().map(|s| (*s).to_owned()).collect(),
            })
        };
        assert!(matches!(
            pairs(&["otp_length", "8", "lockout_threshold", "10"]),
            Ok(SettingsRequest::Set(changes)) if changes.len() == 2
        ));
        let odd = pairs(&["otp_length", "8", "lockout_threshold"])
            .err()
            .unwrap();
        assert_eq!(odd.exit_code(), 2);
        let unknown = pairs(&["otp_size", "8"]).err().unwrap();
        assert_eq!(unknown.exit_code(), 1);
        assert!(unknown.to_string().contains("otp_length"));
    }

    #[test]
    fn exit_codes_follow_the_module_doc() {
        assert_eq!(CliError::Refused("x".into()).exit_code(), 1);
        assert_eq!(CliError::Usage("x".into()).exit_code(), 2);
        assert_eq!(CliError::NoDatabase("d".into()).exit_code(), 3);
        assert_eq!(
            CliError::Database(anyhow::anyhow!("wrong key")).exit_code(),
            3
        );
        assert!(CliError::NoDatabase("d/twostep.db".into())
            .to_string()
            .contains("run `twostep serve` once first"));
    }

    #[test]
    fn not_found_names_what_and_whom() {
        let error = refused(AdminError::NotFound("user"), &named("bob"));
        assert_eq!(error.to_string(), "there is no user named \"bob\"");
        assert_eq!(error.exit_code(), 1);
    }
}
