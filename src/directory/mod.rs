//! The directory client of SPEC section 12 (LDAP and Active Directory), with ldap3 over
//! rustls. Shell: network I/O, no decisions. It finds a user's entry through the service
//! account ([`DirectoryClient::find_user`]: a small pool of bound service connections)
//! and checks a password by binding as that entry on a new connection
//! ([`DirectoryClient::check_password`]), answering the raw result code and diagnostic
//! message; what they mean (role map, AD's sub-codes, disabled accounts) is decided by the
//! pure rules elsewhere. Every connect and every operation has a timeout, so a stopped or
//! hung server answers [`DirectoryError::Unavailable`] quickly. Passwords are never logged
//! nor shown (`DirectoryConfig`'s `Debug` hides the service password).

mod connection;
mod tls;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use ldap3::{Ldap, LdapError, Scope, SearchEntry, SearchOptions};

use connection::{connection_error, Connector};

use crate::domain::{directory, escape_filter_value};
use crate::domain::{DirectoryAttributes, DirectoryEntry, RoleMap, RoleName, Username};

/// The default user filter (SPEC 12); `{username}` is replaced by the escaped username.
pub const DEFAULT_USER_FILTER: &str = directory::OPENLDAP_USER_FILTER;
/// The placeholder of the user filter.
pub const USERNAME_PLACEHOLDER: &str = directory::USERNAME_PLACEHOLDER;

/// At most this many idle service connections are kept.
const POOL_SIZE: usize = 4;
/// LDAP result code 4, sizeLimitExceeded: the filter matched more than one entry.
const SIZE_LIMIT_EXCEEDED: u32 = 4;
/// LDAP result codes 51 (busy) and 52 (unavailable): the server cannot serve now.
const BUSY: u32 = 51;
const UNAVAILABLE: u32 = 52;

/// How to reach and read the directory (the `--ldap-*` flags of SPEC 12).
#[derive(Clone)]
pub struct DirectoryConfig {
    /// `ldap://HOST:PORT` or `ldaps://HOST:PORT`.
    pub url: String,
    /// StartTLS on an `ldap://` URL.
    pub starttls: bool,
    /// The only CA trusted for ldaps:// and StartTLS (PEM); `None`: the system's CAs.
    pub ca_file: Option<PathBuf>,
    /// The service account's DN.
    pub bind_dn: String,
    /// The service account's password (hidden from `Debug`).
    pub bind_password: String,
    /// Where users are searched (subtree).
    pub user_base: String,
    /// The search filter, with [`USERNAME_PLACEHOLDER`].
    pub user_filter: String,
    /// The attributes of the display name, the email address and the groups.
    pub attributes: DirectoryAttributes,
    /// For opening a connection (TCP, TLS, StartTLS).
    pub connect_timeout: Duration,
    /// For each operation (bind, search).
    pub operation_timeout: Duration,
}

impl DirectoryConfig {
    /// A configuration with SPEC 12's defaults for the filter and the attributes, and
    /// 5 s timeouts.
    pub fn new(url: &str, bind_dn: &str, bind_password: &str, user_base: &str) -> Self {
        DirectoryConfig {
            url: url.to_owned(),
            starttls: false,
            ca_file: None,
            bind_dn: bind_dn.to_owned(),
            bind_password: bind_password.to_owned(),
            user_base: user_base.to_owned(),
            user_filter: DEFAULT_USER_FILTER.to_owned(),
            attributes: DirectoryAttributes::default(),
            connect_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(5),
        }
    }
}

impl fmt::Debug for DirectoryConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("DirectoryConfig")
            .field("url", &self.url)
            .field("starttls", &self.starttls)
            .field("ca_file", &self.ca_file)
            .field("bind_dn", &self.bind_dn)
            .field("bind_password", &"[redacted]")
            .field("user_base", &self.user_base)
            .field("user_filter", &self.user_filter)
            .field("attributes", &self.attributes)
            .field("connect_timeout", &self.connect_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .finish()
    }
}

/// How to reach the directory and how its groups give roles (the `--ldap-*` flags).
#[derive(Clone, Debug)]
pub struct DirectorySetup {
    pub client: DirectoryConfig,
    /// `--ldap-role-map GROUP_DN=ROLE`, in order: the first group the user is in wins.
    pub role_map: RoleMap,
    /// `--ldap-default-role`: the role of a user in no mapped group (`None`: such a user
    /// cannot sign in).
    pub default_role: Option<RoleName>,
}

/// What went wrong talking to the directory. No variant carries a password.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The configuration cannot work (URL, CA file, filter).
    #[error("the directory configuration is invalid: {0}")]
    Config(String),
    /// The server cannot be reached or did not answer in time (connection refused,
    /// closed, timed out), or answered busy (51) or unavailable (52) to the service.
    #[error("the directory is unavailable: {0}")]
    Unavailable(String),
    /// The server's certificate was refused (not signed by the trusted CA, wrong name).
    #[error("the directory's TLS certificate was refused: {0}")]
    Tls(String),
    /// The service account's bind was refused (wrong DN or password).
    #[error(
        "the directory refused the service account's bind (LDAP result {code}: {diagnostic}); \
         check the bind DN and password"
    )]
    ServiceBind { code: u32, diagnostic: String },
    /// The user search failed with an LDAP result (e.g. 32, no such object: the user base).
    #[error("the directory refused the user search (LDAP result {code}: {diagnostic})")]
    Search { code: u32, diagnostic: String },
    /// The filter matched more than one entry: nobody signs in with it.
    #[error("the user filter matched more than one directory entry")]
    Ambiguous,
}

/// A user's entry, as read by the service account: its DN and the attributes asked for
/// ([`DirectoryAttributes::requested`]). What they mean is [`FoundEntry::entry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundEntry {
    pub dn: String,
    /// Attribute name (as the server spelled it) to values.
    pub attributes: HashMap<String, Vec<String>>,
}

impl FoundEntry {
    /// The values of attribute `name` (compared case-insensitively, as LDAP does).
    pub fn values(&self, name: &str) -> &[String] {
        self.attributes
            .iter()
            .find(|(attribute, _)| attribute.eq_ignore_ascii_case(name))
            .map_or(&[], |(_, values)| values.as_slice())
    }

    /// The entry as the domain reads it ([`DirectoryEntry::from_attributes`]).
    pub fn entry(&self, username: Username, names: &DirectoryAttributes) -> DirectoryEntry {
        DirectoryEntry::from_attributes(&self.dn, username, &self.attributes, names)
    }
}

/// The server's answer to a bind as the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindResult {
    /// Result code 0.
    Accepted,
    /// Any other result code (49: invalid credentials; AD puts its sub-code, e.g.
    /// `data 532`, in the diagnostic message).
    Refused { code: u32, diagnostic: String },
    /// The password was empty: refused before any network I/O (an LDAP "unauthenticated
    /// bind" must never count as success).
    EmptyPassword,
}

/// The directory client: bound service connections for searches, a new connection per
/// password check. Share it behind an `Arc`.
pub struct DirectoryClient {
    config: DirectoryConfig,
    connector: Connector,
    idle: Mutex<Vec<Ldap>>,
}

impl DirectoryClient {
    /// Checks the configuration and binds as the service account, so that a wrong service
    /// password is an error at start-up ([`DirectoryError::ServiceBind`]).
    pub async fn connect(config: DirectoryConfig) -> Result<Self, DirectoryError> {
        let connector = connector_for(&config)?;
        let client = DirectoryClient {
            config,
            connector,
            idle: Mutex::new(Vec::new()),
        };
        let ldap = client.service_connection().await?;
        client.give_back(ldap);
        Ok(client)
    }

    /// The configuration in use.
    pub fn config(&self) -> &DirectoryConfig {
        &self.config
    }

    /// The entry whose filter matches `username` (escaped), `None` when there is none.
    /// More than one match is [`DirectoryError::Ambiguous`].
    pub async fn find_user(&self, username: &str) -> Result<Option<FoundEntry>, DirectoryError> {
        if username.is_empty() {
            return Ok(None);
        }
        let filter = self
            .config
            .user_filter
            .replace(USERNAME_PLACEHOLDER, &escape_filter_value(username));
        // A pooled connection may have died with the server (restart, idle timeout):
        // then one new connection is tried.
        if let Some(mut ldap) = self.take_idle() {
            match self.search(&mut ldap, &filter).await {
                Ok(found) => {
                    self.give_back(ldap);
                    return found;
                }
                // A hung server would hang the new connection as well.
                Err(error @ LdapError::Timeout { .. }) => return Err(connection_error(&error)),
                Err(error) => {
                    tracing::debug!(%error, "pooled directory connection failed; reconnecting");
                }
            }
        }
        let mut ldap = self.service_connection().await?;
        match self.search(&mut ldap, &filter).await {
            Ok(found) => {
                self.give_back(ldap);
                found
            }
            Err(error) => Err(connection_error(&error)),
        }
    }

    /// Binds as `dn` with `password` on a new connection and answers the server's result.
    /// An empty password is refused before any network I/O.
    pub async fn check_password(
        &self,
        dn: &str,
        password: &str,
    ) -> Result<BindResult, DirectoryError> {
        if password.is_empty() {
            return Ok(BindResult::EmptyPassword);
        }
        if dn.is_empty() {
            return Err(DirectoryError::Config(
                "a password check needs the entry's DN".to_owned(),
            ));
        }
        let mut ldap = self.connector.open(&self.config).await?;
        let answer = ldap
            .with_timeout(self.config.operation_timeout)
            .simple_bind(dn, password)
            .await
            .map_err(|error| connection_error(&error))?;
        close(ldap, self.config.operation_timeout).await;
        Ok(if answer.rc == 0 {
            BindResult::Accepted
        } else {
            BindResult::Refused {
                code: answer.rc,
                diagnostic: answer.text,
            }
        })
    }

    /// A new connection bound as the service account.
    async fn service_connection(&self) -> Result<Ldap, DirectoryError> {
        let mut ldap = self.connector.open(&self.config).await?;
        let answer = ldap
            .with_timeout(self.config.operation_timeout)
            .simple_bind(&self.config.bind_dn, &self.config.bind_password)
            .await
            .map_err(|error| connection_error(&error))?;
        if answer.rc == BUSY || answer.rc == UNAVAILABLE {
            close(ldap, self.config.operation_timeout).await;
            return Err(unavailable(answer.rc, &answer.text));
        }
        if answer.rc != 0 {
            close(ldap, self.config.operation_timeout).await;
            return Err(DirectoryError::ServiceBind {
                code: answer.rc,
                diagnostic: answer.text,
            });
        }
        Ok(ldap)
    }

    /// The search on `ldap`: `Err` when the connection failed (the caller may retry on a
    /// new one), `Ok` with the answer otherwise.
    async fn search(
        &self,
        ldap: &mut Ldap,
        filter: &str,
    ) -> Result<Result<Option<FoundEntry>, DirectoryError>, LdapError> {
        let config = &self.config;
        let attributes = config.attributes.requested();
        let result = ldap
            .with_search_options(SearchOptions::new().sizelimit(2))
            .with_timeout(config.operation_timeout)
            .search(&config.user_base, Scope::Subtree, filter, attributes)
            .await?;
        let ldap3::SearchResult(entries, answer) = result;
        if answer.rc == SIZE_LIMIT_EXCEEDED {
            return Ok(Err(DirectoryError::Ambiguous));
        }
        if answer.rc == BUSY || answer.rc == UNAVAILABLE {
            return Ok(Err(unavailable(answer.rc, &answer.text)));
        }
        if answer.rc != 0 {
            return Ok(Err(DirectoryError::Search {
                code: answer.rc,
                diagnostic: answer.text,
            }));
        }
        // Search references (AD's referrals to other partitions) are not entries.
        let mut found: Vec<FoundEntry> = entries
            .into_iter()
            .filter(|entry| !entry.is_ref())
            .map(|entry| self.found(SearchEntry::construct(entry)))
            .collect();
        Ok(match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            _ => Err(DirectoryError::Ambiguous),
        })
    }

    fn found(&self, entry: SearchEntry) -> FoundEntry {
        FoundEntry {
            dn: entry.dn,
            attributes: entry.attrs,
        }
    }

    fn take_idle(&self) -> Option<Ldap> {
        self.idle.lock().ok().and_then(|mut idle| idle.pop())
    }

    fn give_back(&self, ldap: Ldap) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < POOL_SIZE {
                idle.push(ldap);
            }
        }
    }
}

/// A server that answers it cannot serve now (busy, unavailable).
fn unavailable(code: u32, diagnostic: &str) -> DirectoryError {
    DirectoryError::Unavailable(format!("LDAP result {code}: {diagnostic}"))
}

/// Unbinds (best effort, bounded), which closes the connection.
async fn close(mut ldap: Ldap, timeout: Duration) {
    let _ = tokio::time::timeout(timeout, ldap.unbind()).await;
}

/// The connector for a configuration, refusing what cannot work.
fn connector_for(config: &DirectoryConfig) -> Result<Connector, DirectoryError> {
    let url = url::Url::parse(&config.url).map_err(|error| {
        DirectoryError::Config(format!("the URL {} is not valid: {error}", config.url))
    })?;
    let ldaps = match url.scheme() {
        "ldap" => false,
        "ldaps" => true,
        other => {
            return Err(DirectoryError::Config(format!(
                "the URL's scheme must be ldap or ldaps, not {other}"
            )))
        }
    };
    if ldaps && config.starttls {
        return Err(DirectoryError::Config(
            "StartTLS applies to an ldap:// URL, not ldaps://".to_owned(),
        ));
    }
    let sample = config.user_filter.replace(USERNAME_PLACEHOLDER, "x");
    if !config.user_filter.contains(USERNAME_PLACEHOLDER) || ldap3::parse_filter(&sample).is_err() {
        return Err(DirectoryError::Config(format!(
            "the user filter {} must be an LDAP filter with {USERNAME_PLACEHOLDER}",
            config.user_filter
        )));
    }
    let tls = if ldaps || config.starttls {
        Some(tls::client_config(config.ca_file.as_deref())?)
    } else {
        None
    };
    Ok(Connector {
        url: config.url.clone(),
        starttls: config.starttls,
        tls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_password_is_not_in_debug() {
        let config = DirectoryConfig::new("ldap://h", "cn=s", "hunter2 secret", "dc=x");
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn unusable_configurations_are_refused() {
        let mut config = DirectoryConfig::new("http://h", "cn=s", "p", "dc=x");
        assert!(matches!(
            connector_for(&config),
            Err(DirectoryError::Config(_))
        ));
        config.url = "ldaps://h".to_owned();
        config.starttls = true;
        assert!(matches!(
            connector_for(&config),
            Err(DirectoryError::Config(_))
        ));
        config.url = "ldap://h".to_owned();
        config.starttls = false;
        config.user_filter = "(uid=jane)".to_owned();
        assert!(matches!(
            connector_for(&config),
            Err(DirectoryError::Config(_))
        ));
        config.user_filter = "(uid={username}".to_owned();
        assert!(matches!(
            connector_for(&config),
            Err(DirectoryError::Config(_))
        ));
    }
}
