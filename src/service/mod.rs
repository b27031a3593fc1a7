//! The services: what twostep does, in terms of the domain, the store and the mailer.
//! The web layer and the command line only translate requests into calls here.
//!
//! - [`account`]: the account page of a signed-in user (SPEC section 10).
//! - [`admin`]: administration: users, devices, roles, settings, IP rules, template, audit.
//! - [`attention`]: what the console home lists as needing attention.
//! - [`signin`]: signing in (SPEC sections 3 and 4), sessions.
//! - [`devices`]: setting up and removing 2FA devices (SPEC section 5).
//! - [`emailed`]: emailed OTPs: generate, queue, check.
//! - [`recovery`]: recovery codes: a new set, how many are left.
//! - [`outbox`]: the outbox worker that delivers the queued emails, with retries.
//! - [`verify`]: the second-factor check for other systems (native API and privacyIDEA's
//!   `/validate/check`).
//! - [`passwords`]: choosing a password (SPEC section 10): the rules, not the current one,
//!   the hash; every surface that sets a password calls [`passwords::choose`].
//! - [`directory`]: directory sign-in (SPEC section 12): users looked up in LDAP or
//!   Active Directory, created and refreshed from their entry, passwords checked by a bind.
//! - [`housekeeping`]: removing expired transactions, sessions and the provider's state.
//! - [`credentials`]: the rules every credential check shares (password, device code,
//!   failure count and lockout, failure delay, audit), used by `signin` and `verify`.

pub mod account;
pub mod admin;
pub mod attention;
pub mod audit_chain;
pub mod credentials;
pub mod devices;
pub mod directory;
pub mod emailed;
pub mod housekeeping;
pub mod notify;
pub mod oidc;
pub mod outbox;
pub mod passwords;
pub mod recovery;
pub mod signin;
pub mod verify;
pub mod webauthn;

use std::sync::Arc;

use crate::clock::{Clock, Timestamp};
use crate::crypto::MasterKey;
use crate::domain::AuditEvent;
use crate::metrics::Metrics;
use crate::password::PasswordHasher;
use crate::store::{NewAuditEntry, Store, StoreError};

/// Settings of the service that are not system settings (they come from the command line).
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// Shown by authenticator apps as the issuer, and `@site_name` in emails.
    pub site_name: String,
    /// The domain in Message-IDs.
    pub mail_domain: String,
    /// The URL users reach twostep at (`--public-url`), to name the sign-in page in
    /// messages to other systems' users.
    pub public_url: Option<String>,
    /// Networks whose systems may call `/validate/check` without an API token
    /// (`--validate-client`).
    pub validate_clients: Vec<crate::domain::IpNetwork>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            site_name: "twostep".to_owned(),
            mail_domain: "localhost".to_owned(),
            public_url: None,
            validate_clients: Vec::new(),
        }
    }
}

/// Everything the services share; cheap to clone.
///
/// Its parts are private to the service layer: the web layer and the command line reach
/// the store, the hasher and the clock only through the services, and through the few
/// narrow methods below (the form key, the site name, readiness, the counters).
#[derive(Clone)]
pub struct Context {
    pub(in crate::service) store: Store,
    pub(in crate::service) hasher: PasswordHasher,
    pub(in crate::service) clock: Arc<dyn Clock>,
    pub(in crate::service) config: Arc<ServiceConfig>,
    /// Wakes the outbox worker of this instance when a message was queued.
    pub(in crate::service) outbox_wakeup: Arc<tokio::sync::Notify>,
    /// This instance's counters (`/metrics`).
    pub(in crate::service) metrics: Arc<Metrics>,
    /// The directory of SPEC 12, when `--ldap-url` is set.
    pub(in crate::service) directory: Option<Arc<directory::Directory>>,
    /// SPEC 14's relying party (the host of `--public-url`), or why there is none.
    pub(in crate::service) relying_party: Option<Arc<webauthn::RelyingParty>>,
    relying_party_problem: Option<webauthn::RelyingPartyProblem>,
}

impl Context {
    /// The services' context on `store`, with a new outbox wake-up and new counters.
    pub fn new(
        store: Store,
        hasher: PasswordHasher,
        clock: Arc<dyn Clock>,
        config: ServiceConfig,
    ) -> Self {
        let (relying_party, relying_party_problem) = match webauthn::RelyingParty::for_public_url(
            config.public_url.as_deref(),
            &config.site_name,
        ) {
            Ok(party) => (Some(Arc::new(party)), None),
            Err(problem) => (None, Some(problem)),
        };
        Self {
            store,
            hasher,
            clock,
            outbox_wakeup: Arc::new(tokio::sync::Notify::new()),
            metrics: Arc::new(Metrics::new()),
            directory: None,
            relying_party,
            relying_party_problem,
            config: Arc::new(config),
        }
    }

    /// This context with the directory of SPEC 12: usernames that are not local accounts
    /// are looked up there.
    pub fn with_directory(mut self, directory: Arc<directory::Directory>) -> Self {
        self.directory = Some(directory);
        self
    }

    /// The directory's address and connection state (System Settings); `None` without a
    /// directory.
    pub fn directory_status(&self) -> Option<directory::DirectoryStatus> {
        self.directory.as_deref().map(directory::Directory::status)
    }

    /// Why security keys cannot be offered (SPEC 14: without a host name in
    /// `--public-url`); `None` when they can.
    pub fn security_keys_problem(&self) -> Option<&webauthn::RelyingPartyProblem> {
        self.relying_party_problem.as_ref()
    }

    /// The server key, for the MACs of the forms' CSRF tokens (`web::csrf`).
    pub fn form_key(&self) -> &MasterKey {
        self.store.key()
    }

    /// The site's name (`--site-name`), shown on every page.
    pub fn site_name(&self) -> &str {
        &self.config.site_name
    }

    /// Whether the database answers (`/healthz`).
    pub async fn database_answers(&self) -> bool {
        self.store.ping().await
    }

    /// This instance's counters, to record a request in.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// This instance's counters and the database pool's use, in the Prometheus text
    /// format (`/metrics`).
    pub fn metrics_text(&self) -> String {
        self.metrics.render(self.store.pool_usage())
    }

    /// Wakes this instance's outbox worker now (it also wakes by itself every second).
    pub fn wake_outbox(&self) {
        self.outbox_wakeup.notify_one();
    }

    /// Closes the database connections (the end of a command-line tool).
    pub async fn close(&self) {
        self.store.close().await;
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Appends to the audit log. A failure to audit is logged, never hidden: it is
    /// returned to the caller, who fails the operation.
    pub async fn audit(
        &self,
        event: AuditEvent,
        actor: Option<&str>,
        subject: Option<&str>,
        client_ip: Option<&str>,
        detail: impl Into<String>,
    ) -> Result<(), StoreError> {
        let entry = NewAuditEntry {
            event,
            actor: actor.map(str::to_owned),
            subject: subject.map(str::to_owned),
            client_ip: client_ip.map(str::to_owned),
            detail: detail.into(),
        };
        self.store.audit(&entry, self.now()).await
    }
}
