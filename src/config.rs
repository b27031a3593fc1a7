//! `twostep serve` settings: command-line flags, each also read from `TWOSTEP_<FLAG>`
//! (SPEC section 9). Checked at start-up; a bad value stops the server with a message
//! that says what to change.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::directory::{DirectoryConfig, DirectorySetup};
use crate::domain::{host_of, DomainName, DomainNameError};
use crate::domain::{AttributeNameError, DirectoryAttributes, RoleMap, RoleMapError};
use crate::domain::{IpNetwork, IpNetworkError, RoleName, RoleNameError};
use crate::domain::{LdapTransportError, LdapUrl, LdapUrlError, UserFilter, UserFilterError};
use crate::mail::delivery::{SmtpSecurity, SmtpSettings};
use crate::store::{KeySource, StoreOptions};

/// Where the database and the server key are: the options `serve` and the admin
/// subcommands (`twostep user ...`) share, so that both find the same database. `global`
/// lets the admin subcommands take them after the action (`twostep user list --data-dir
/// D`); `serve` has no subcommands, so it changes nothing there.
#[derive(Clone, Debug, clap::Args)]
pub struct DatabaseArgs {
    /// Database URL: `sqlite://PATH` or `postgres://USER@HOST/DB` (several instances
    /// share one PostgreSQL). Default: SQLite at `<data-dir>/twostep.db`.
    #[arg(long, env = "TWOSTEP_DATABASE", global = true)]
    pub database: Option<String>,

    /// Folder for the SQLite database, the key file and (without SMTP) the mail folder.
    #[arg(
        long,
        env = "TWOSTEP_DATA_DIR",
        default_value = "./twostep-data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// The server key file (created with mode 0600 on a new database).
    /// Default: `<data-dir>/twostep.key`.
    #[arg(long, env = "TWOSTEP_KEY_FILE", global = true)]
    pub key_file: Option<PathBuf>,

    /// The server key itself, 64 hex digits, instead of a key file (environment only).
    #[arg(
        long = "key",
        env = "TWOSTEP_KEY",
        hide = true,
        hide_env_values = true,
        global = true
    )]
    pub key: Option<String>,
}

impl DatabaseArgs {
    /// The default location under `data_dir`.
    pub fn with_data_dir(data_dir: PathBuf) -> Self {
        Self {
            database: None,
            data_dir,
            key_file: None,
            key: None,
        }
    }

    pub fn database_url(&self) -> String {
        self.database
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.sqlite_path().display()))
    }

    /// The default SQLite file, `<data-dir>/twostep.db`.
    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join("twostep.db")
    }

    pub fn key_file(&self) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("twostep.key"))
    }

    /// `TWOSTEP_KEY` when given, else the key file.
    pub fn key_source(&self) -> KeySource {
        match &self.key {
            Some(hex) => KeySource::Hex(hex.clone()),
            None => KeySource::File(self.key_file()),
        }
    }

    pub fn store_options(&self, max_connections: Option<u32>) -> StoreOptions {
        StoreOptions {
            database_url: self.database_url(),
            key: self.key_source(),
            max_connections,
        }
    }

    /// The database's location for messages: the SQLite file, or the URL without its
    /// password.
    pub fn location(&self) -> String {
        match &self.database {
            None => self.sqlite_path().display().to_string(),
            Some(url) => without_password(url),
        }
    }
}

/// `scheme://user:password@host/...` without the password.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// The value parser of the network flags (`--trusted-proxy`, `--validate-client`,
/// `--metrics-client`): [`IpNetwork::parse`], the parser of IP rules, so that a flag means
/// what the same text means as a rule. A bare address is that one address (`/32`,
/// `/128`); a CIDR with host bits (`10.0.0.1/8`) is refused rather than widened to its
/// network, since the operator may have meant the one address. The message names the
/// flag (also when the value came from its `TWOSTEP_*` variable, which clap does not say).
#[derive(Clone, Copy, Debug)]
pub struct NetworkFlag;

impl clap::builder::TypedValueParser for NetworkFlag {
    type Value = IpNetwork;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<IpNetwork, clap::Error> {
        let text = value.to_string_lossy();
        IpNetwork::parse(&text).map_err(|error| {
            let flag = arg
                .and_then(clap::Arg::get_long)
                .map_or_else(|| "a network".to_owned(), |long| format!("--{long}"));
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("{}\n", network_flag_message(&flag, &error)),
            )
            .with_cmd(cmd)
        })
    }
}

/// `--trusted-proxy 10.0.0.1/8: host bits are set; the network is 10.0.0.0/8`.
fn network_flag_message(flag: &str, error: &IpNetworkError) -> String {
    match error {
        IpNetworkError::HostBitsSet { given, network } => {
            format!("{flag} {given}: host bits are set; the network is {network}")
        }
        IpNetworkError::Empty | IpNetworkError::Invalid(_) => format!("{flag}: {error}"),
    }
}

#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "TWOSTEP_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Where the database and the server key are.
    #[command(flatten)]
    pub db: DatabaseArgs,

    /// A reverse proxy (an address, or a CIDR without host bits) whose `X-Forwarded-For`
    /// is trusted; repeatable, or comma-separated in the environment variable.
    #[arg(
        long = "trusted-proxy",
        env = "TWOSTEP_TRUSTED_PROXY",
        value_delimiter = ',',
        value_parser = NetworkFlag
    )]
    pub trusted_proxies: Vec<IpNetwork>,

    /// A network (an address, or a CIDR without host bits) whose systems may call
    /// privacyIDEA's `/validate/check` without an API token; repeatable, or
    /// comma-separated in the environment variable.
    /// Without any, only callers with a `verify_otp` API token may.
    #[arg(
        long = "validate-client",
        env = "TWOSTEP_VALIDATE_CLIENT",
        value_delimiter = ',',
        value_parser = NetworkFlag
    )]
    pub validate_clients: Vec<IpNetwork>,

    /// The URL users reach twostep at, e.g. `https://signin.hospital.example`; with https,
    /// cookies are marked Secure.
    #[arg(long, env = "TWOSTEP_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// The name users know this service by: the issuer shown in authenticator apps and
    /// `@site_name` in emails.
    #[arg(long, env = "TWOSTEP_SITE_NAME", default_value = "twostep")]
    pub site_name: String,

    /// On a new database, the bootstrap administrator's password (no forced change);
    /// otherwise a random one is printed once.
    #[arg(long, env = "TWOSTEP_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,

    /// SMTP server host; without it, emails are written to `<data-dir>/mail/`.
    #[arg(long, env = "TWOSTEP_SMTP_HOST")]
    pub smtp_host: Option<String>,

    /// SMTP port (default: 587 for starttls, 465 for tls, 25 for plain).
    #[arg(long, env = "TWOSTEP_SMTP_PORT")]
    pub smtp_port: Option<u16>,

    /// SMTP connection security: starttls, tls or plain.
    #[arg(long, env = "TWOSTEP_SMTP_SECURITY", default_value = "starttls")]
    pub smtp_security: String,

    /// SMTP username (with --smtp-password).
    #[arg(long, env = "TWOSTEP_SMTP_USERNAME")]
    pub smtp_username: Option<String>,

    /// SMTP password (environment recommended).
    #[arg(long, env = "TWOSTEP_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,

    /// Most database connections this instance opens. Default: 4 on SQLite (one file on
    /// one machine: more connections only add threads that wait on each other), 16 on
    /// PostgreSQL.
    #[arg(long, env = "TWOSTEP_DB_MAX_CONNECTIONS")]
    pub db_max_connections: Option<u32>,

    /// The session cookie's domain, e.g. `hospital.example`, so that applications on
    /// other hosts under it (behind a forward-auth proxy) see the sign-in. Default: the
    /// host twostep is reached at only.
    #[arg(long, env = "TWOSTEP_COOKIE_DOMAIN")]
    pub cookie_domain: Option<String>,

    /// A domain whose URLs (and its subdomains') sign-in may return to after a
    /// forward-auth redirect; repeatable, or comma-separated in the environment variable.
    /// The public URL's host is always allowed; any other URL is never redirected to.
    #[arg(
        long = "redirect-domain",
        env = "TWOSTEP_REDIRECT_DOMAIN",
        value_delimiter = ','
    )]
    pub redirect_domains: Vec<String>,

    /// Networks allowed to read `/metrics` (an address, or a CIDR without host bits);
    /// repeatable, or comma-separated in the environment variable.
    #[arg(
        long = "metrics-client",
        env = "TWOSTEP_METRICS_CLIENT",
        value_delimiter = ',',
        value_parser = NetworkFlag,
        default_value = "127.0.0.0/8,::1/128"
    )]
    pub metrics_clients: Vec<IpNetwork>,

    /// Directory sign-in (SPEC section 12): off without `--ldap-url`.
    #[command(flatten)]
    pub ldap: LdapArgs,
}

/// The `--ldap-*` flags of SPEC section 12: where the directory is, how twostep reads it,
/// and how its groups give roles. Without `--ldap-url` there is no directory sign-in and
/// the other flags must not be given.
#[derive(Clone, Debug, clap::Args)]
pub struct LdapArgs {
    /// The directory, `ldaps://HOST[:PORT]` or `ldap://HOST[:PORT]` (plain `ldap://` only
    /// to this machine, with --ldap-starttls, or with --ldap-allow-plain). Turns directory
    /// sign-in on.
    #[arg(long, env = "TWOSTEP_LDAP_URL")]
    pub ldap_url: Option<String>,

    /// Upgrade an `ldap://` connection with StartTLS before any bind.
    #[arg(long, env = "TWOSTEP_LDAP_STARTTLS")]
    pub ldap_starttls: bool,

    /// The CA certificate(s) (PEM) the directory's TLS certificate must chain to; default:
    /// the system's CAs.
    #[arg(long, env = "TWOSTEP_LDAP_CA_FILE")]
    pub ldap_ca_file: Option<PathBuf>,

    /// Allow plain `ldap://` to another machine: passwords then cross the network in clear
    /// text. Only for a network that is trusted end to end.
    #[arg(long, env = "TWOSTEP_LDAP_ALLOW_PLAIN")]
    pub ldap_allow_plain: bool,

    /// The DN of the service account that searches for users.
    #[arg(long, env = "TWOSTEP_LDAP_BIND_DN")]
    pub ldap_bind_dn: Option<String>,

    /// The service account's password (environment recommended).
    #[arg(long, env = "TWOSTEP_LDAP_BIND_PASSWORD", hide_env_values = true)]
    pub ldap_bind_password: Option<String>,

    /// Where users are searched (the whole subtree), e.g. `ou=people,dc=hospital,dc=example`.
    #[arg(long, env = "TWOSTEP_LDAP_USER_BASE")]
    pub ldap_user_base: Option<String>,

    /// The search filter; `{username}` is replaced by the escaped username. For Active
    /// Directory: `(&(objectClass=user)(sAMAccountName={username}))`.
    #[arg(
        long,
        env = "TWOSTEP_LDAP_USER_FILTER",
        default_value = crate::domain::OPENLDAP_USER_FILTER
    )]
    pub ldap_user_filter: String,

    /// The attribute of the user's display name.
    #[arg(long, env = "TWOSTEP_LDAP_ATTR_NAME", default_value = "cn")]
    pub ldap_attr_name: String,

    /// The attribute of the user's email address.
    #[arg(long, env = "TWOSTEP_LDAP_ATTR_EMAIL", default_value = "mail")]
    pub ldap_attr_email: String,

    /// The attribute that lists the user's groups (DNs).
    #[arg(long, env = "TWOSTEP_LDAP_GROUP_ATTR", default_value = "memberOf")]
    pub ldap_group_attr: String,

    /// `GROUP_DN=ROLE`: members of the group get the role; repeatable, the first group the
    /// user is in wins; `;`-separated in the environment variable.
    #[arg(
        long = "ldap-role-map",
        env = "TWOSTEP_LDAP_ROLE_MAP",
        value_delimiter = ';'
    )]
    pub ldap_role_map: Vec<String>,

    /// The role of a directory user in no mapped group; without it, such a user cannot
    /// sign in.
    #[arg(long, env = "TWOSTEP_LDAP_DEFAULT_ROLE")]
    pub ldap_default_role: Option<String>,

    /// Seconds to wait for a connection to the directory (TCP and TLS), 1 to 60.
    #[arg(
        long,
        env = "TWOSTEP_LDAP_CONNECT_TIMEOUT",
        default_value_t = 5,
        value_parser = clap::value_parser!(u64).range(1..=60)
    )]
    pub ldap_connect_timeout: u64,

    /// Seconds to wait for each directory operation (search, bind), 1 to 60.
    #[arg(
        long,
        env = "TWOSTEP_LDAP_OPERATION_TIMEOUT",
        default_value_t = 5,
        value_parser = clap::value_parser!(u64).range(1..=60)
    )]
    pub ldap_operation_timeout: u64,

    /// Minutes between checks of the directory entries of signed-in directory users: an
    /// entry gone or disabled since ends the user's sessions (0: only at sign-in), 0 to 1440.
    #[arg(
        long,
        env = "TWOSTEP_LDAP_SESSION_CHECK_MINUTES",
        default_value_t = 5,
        value_parser = clap::value_parser!(u64).range(0..=1440)
    )]
    pub ldap_session_check_minutes: u64,
}

/// A bad `--ldap-*` value: each names the flag and what to write instead.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LdapConfigError {
    #[error("--ldap-url: {0}")]
    Url(LdapUrlError),
    #[error(transparent)]
    Transport(LdapTransportError),
    #[error("{0} is set but --ldap-url is not: give the directory's URL, or remove the --ldap-* settings")]
    WithoutUrl(&'static str),
    #[error("--ldap-url needs {0}")]
    Missing(&'static str),
    #[error("--ldap-user-filter: {0}")]
    UserFilter(UserFilterError),
    #[error("{flag}: {error}")]
    Attribute {
        flag: &'static str,
        error: AttributeNameError,
    },
    #[error("--ldap-role-map: {0}")]
    RoleMap(RoleMapError),
    #[error("--ldap-default-role: {0}")]
    DefaultRole(RoleNameError),
    #[error("--ldap-url needs --ldap-role-map or --ldap-default-role: without either, no directory user has a role and nobody could sign in")]
    NoRoles,
}

impl LdapArgs {
    /// No directory.
    pub fn none() -> Self {
        Self {
            ldap_url: None,
            ldap_starttls: false,
            ldap_ca_file: None,
            ldap_allow_plain: false,
            ldap_bind_dn: None,
            ldap_bind_password: None,
            ldap_user_base: None,
            ldap_user_filter: crate::domain::OPENLDAP_USER_FILTER.to_owned(),
            ldap_attr_name: "cn".to_owned(),
            ldap_attr_email: "mail".to_owned(),
            ldap_group_attr: "memberOf".to_owned(),
            ldap_role_map: Vec::new(),
            ldap_default_role: None,
            ldap_connect_timeout: 5,
            ldap_operation_timeout: 5,
            ldap_session_check_minutes: 5,
        }
    }

    /// The checked directory set-up, `None` without `--ldap-url`. What needs the network
    /// or the database (the CA file, the service bind, whether the roles exist) is checked
    /// at start-up.
    pub fn setup(&self) -> Result<Option<DirectorySetup>, LdapConfigError> {
        let Some(url) = &self.ldap_url else {
            return match self.first_flag_given() {
                Some(flag) => Err(LdapConfigError::WithoutUrl(flag)),
                None => Ok(None),
            };
        };
        let url = LdapUrl::parse(url).map_err(LdapConfigError::Url)?;
        url.check_transport(self.ldap_starttls, self.ldap_allow_plain)
            .map_err(LdapConfigError::Transport)?;
        let required = |value: &Option<String>, flag: &'static str| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|value| !value.is_empty())
                .map(str::to_owned)
                .ok_or(LdapConfigError::Missing(flag))
        };
        let bind_dn = required(&self.ldap_bind_dn, "--ldap-bind-dn")?;
        let bind_password = self
            .ldap_bind_password
            .clone()
            .filter(|password| !password.is_empty())
            .ok_or(LdapConfigError::Missing(
                "--ldap-bind-password (TWOSTEP_LDAP_BIND_PASSWORD)",
            ))?;
        let user_base = required(&self.ldap_user_base, "--ldap-user-base")?;
        let user_filter =
            UserFilter::parse(&self.ldap_user_filter).map_err(LdapConfigError::UserFilter)?;
        // Each name on its own first, so that the message names its flag.
        for (flag, name) in [
            ("--ldap-attr-name", &self.ldap_attr_name),
            ("--ldap-attr-email", &self.ldap_attr_email),
            ("--ldap-group-attr", &self.ldap_group_attr),
        ] {
            DirectoryAttributes::new(name, name, name)
                .map_err(|error| LdapConfigError::Attribute { flag, error })?;
        }
        let attributes = DirectoryAttributes::new(
            &self.ldap_attr_name,
            &self.ldap_attr_email,
            &self.ldap_group_attr,
        )
        .map_err(|error| LdapConfigError::Attribute {
            flag: "--ldap-attr-name",
            error,
        })?;
        let role_map = RoleMap::parse(&self.ldap_role_map).map_err(LdapConfigError::RoleMap)?;
        let default_role = self
            .ldap_default_role
            .as_deref()
            .map(RoleName::parse)
            .transpose()
            .map_err(LdapConfigError::DefaultRole)?;
        if role_map.is_empty() && default_role.is_none() {
            return Err(LdapConfigError::NoRoles);
        }
        let client = DirectoryConfig {
            url: url.to_string(),
            starttls: self.ldap_starttls,
            ca_file: self.ldap_ca_file.clone(),
            bind_dn,
            bind_password,
            user_base,
            user_filter: user_filter.as_str().to_owned(),
            attributes,
            connect_timeout: Duration::from_secs(self.ldap_connect_timeout),
            operation_timeout: Duration::from_secs(self.ldap_operation_timeout),
        };
        Ok(Some(DirectorySetup {
            client,
            role_map,
            default_role,
        }))
    }

    /// The first `--ldap-*` flag given with a value of its own (not a default).
    fn first_flag_given(&self) -> Option<&'static str> {
        let defaults = Self::none();
        [
            (self.ldap_starttls, "--ldap-starttls"),
            (self.ldap_ca_file.is_some(), "--ldap-ca-file"),
            (self.ldap_allow_plain, "--ldap-allow-plain"),
            (self.ldap_bind_dn.is_some(), "--ldap-bind-dn"),
            (self.ldap_bind_password.is_some(), "--ldap-bind-password"),
            (self.ldap_user_base.is_some(), "--ldap-user-base"),
            (
                self.ldap_user_filter != defaults.ldap_user_filter,
                "--ldap-user-filter",
            ),
            (
                self.ldap_attr_name != defaults.ldap_attr_name,
                "--ldap-attr-name",
            ),
            (
                self.ldap_attr_email != defaults.ldap_attr_email,
                "--ldap-attr-email",
            ),
            (
                self.ldap_group_attr != defaults.ldap_group_attr,
                "--ldap-group-attr",
            ),
            (!self.ldap_role_map.is_empty(), "--ldap-role-map"),
            (self.ldap_default_role.is_some(), "--ldap-default-role"),
            (
                self.ldap_session_check_minutes != defaults.ldap_session_check_minutes,
                "--ldap-session-check-minutes",
            ),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--public-url must start with http:// or https:// (got \"{0}\")")]
    PublicUrl(String),
    #[error("--smtp-security must be starttls, tls or plain (got \"{0}\")")]
    SmtpSecurity(String),
    #[error("--site-name must be 1 to 64 printable characters")]
    SiteName,
    #[error("--db-max-connections must be at least 1")]
    Connections,
    #[error("--cookie-domain: {0}")]
    CookieDomain(DomainNameError),
    #[error("--cookie-domain {domain} does not cover the host of --public-url ({host}); browsers would refuse the cookie")]
    CookieDomainMismatch { domain: String, host: String },
    #[error("--cookie-domain needs --public-url (the host it must cover)")]
    CookieDomainWithoutPublicUrl,
    #[error("--redirect-domain: {0}")]
    RedirectDomain(DomainNameError),
    #[error(transparent)]
    Ldap(#[from] LdapConfigError),
}

impl ServeArgs {
    /// The settings of a server with every default, for `data_dir`.
    pub fn with_data_dir(data_dir: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            db: DatabaseArgs::with_data_dir(data_dir),
            trusted_proxies: Vec::new(),
            validate_clients: Vec::new(),
            public_url: None,
            site_name: "twostep".to_owned(),
            admin_password: None,
            smtp_host: None,
            smtp_port: None,
            smtp_security: "starttls".to_owned(),
            smtp_username: None,
            smtp_password: None,
            db_max_connections: None,
            cookie_domain: None,
            redirect_domains: Vec::new(),
            metrics_clients: IpNetwork::LOOPBACK.to_vec(),
            ldap: LdapArgs::none(),
        }
    }

    /// Checks what clap cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.public_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(ConfigError::PublicUrl(url.chars().take(80).collect()));
            }
        }
        if SmtpSecurity::parse(&self.smtp_security).is_none() {
            return Err(ConfigError::SmtpSecurity(
                self.smtp_security.chars().take(40).collect(),
            ));
        }
        let name_ok = !self.site_name.trim().is_empty()
            && self.site_name.chars().count() <= 64
            && !self.site_name.chars().any(char::is_control);
        if !name_ok {
            return Err(ConfigError::SiteName);
        }
        if self.db_max_connections == Some(0) {
            return Err(ConfigError::Connections);
        }
        self.session_cookie_domain()?;
        self.redirect_domain_names()?;
        self.ldap.setup()?;
        Ok(())
    }

    /// `--cookie-domain`, checked against the public URL's host.
    pub fn session_cookie_domain(&self) -> Result<Option<DomainName>, ConfigError> {
        let Some(text) = &self.cookie_domain else {
            return Ok(None);
        };
        let domain = DomainName::parse(text).map_err(ConfigError::CookieDomain)?;
        let host = self
            .public_url
            .as_deref()
            .and_then(host_of)
            .ok_or(ConfigError::CookieDomainWithoutPublicUrl)?;
        if !domain.covers(&host) {
            return Err(ConfigError::CookieDomainMismatch {
                domain: domain.to_string(),
                host,
            });
        }
        Ok(Some(domain))
    }

    /// `--redirect-domain`, parsed.
    pub fn redirect_domain_names(&self) -> Result<Vec<DomainName>, ConfigError> {
        self.redirect_domains
            .iter()
            .map(|text| DomainName::parse(text).map_err(ConfigError::RedirectDomain))
            .collect()
    }

    pub fn database_url(&self) -> String {
        self.db.database_url()
    }

    pub fn key_file(&self) -> PathBuf {
        self.db.key_file()
    }

    pub fn mail_folder(&self) -> PathBuf {
        self.db.data_dir.join("mail")
    }

    /// Cookies are Secure when users reach twostep over https.
    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://"))
    }

    /// The host of the public URL, for Message-IDs.
    pub fn mail_domain(&self) -> String {
        self.public_url
            .as_deref()
            .and_then(|url| url.split("://").nth(1))
            .and_then(|rest| rest.split(['/', ':']).next())
            .filter(|host| !host.is_empty())
            .unwrap_or("localhost")
            .to_owned()
    }

    /// The SMTP server, when one is configured.
    pub fn smtp(&self) -> Option<SmtpSettings> {
        let host = self.smtp_host.clone()?;
        let security = SmtpSecurity::parse(&self.smtp_security).unwrap_or(SmtpSecurity::StartTls);
        let port = self.smtp_port.unwrap_or(match security {
            SmtpSecurity::StartTls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::Plain => 25,
        });
        Some(SmtpSettings {
            host,
            port,
            security,
            username: self.smtp_username.clone(),
            password: self.smtp_password.clone(),
            timeout: Duration::from_secs(15),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_spec_section_9() {
        let args = ServeArgs::with_data_dir(PathBuf::from("./twostep-data"));
        assert_eq!(args.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(args.database_url(), "sqlite://./twostep-data/twostep.db");
        assert_eq!(args.key_file(), PathBuf::from("./twostep-data/twostep.key"));
        assert_eq!(args.mail_folder(), PathBuf::from("./twostep-data/mail"));
        assert!(!args.secure_cookies());
        assert!(args.smtp().is_none());
        assert!(args.validate().is_ok());
    }

    #[test]
    fn database_options_locate_the_database_and_key_for_serve_and_the_cli() {
        let args = DatabaseArgs::with_data_dir(PathBuf::from("/srv/twostep"));
        assert_eq!(args.database_url(), "sqlite:///srv/twostep/twostep.db");
        assert_eq!(args.location(), "/srv/twostep/twostep.db");
        assert!(matches!(
            args.key_source(),
            KeySource::File(path) if path == std::path::Path::new("/srv/twostep/twostep.key")
        ));
        let hex = DatabaseArgs {
            key: Some("ab".repeat(32)),
            ..args.clone()
        };
        assert!(matches!(hex.key_source(), KeySource::Hex(_)));
        let pg = DatabaseArgs {
            database: Some(
                "postgres://twostep:s3cret@db.example:5432/twostep?sslmode=require".into(),
            ),
            ..args
        };
        assert_eq!(pg.database_url(), pg.database.clone().unwrap());
        assert_eq!(
            pg.location(),
            "postgres://twostep@db.example:5432/twostep?sslmode=require"
        );
        assert_eq!(
            without_password("postgres://db.example/x"),
            "postgres://db.example/x"
        );
        assert_eq!(without_password("postgres://u@h/x"), "postgres://u@h/x");
        assert_eq!(without_password("sqlite://./a@b.db"), "sqlite://./a@b.db");
    }

    #[test]
    fn https_public_url_makes_cookies_secure_and_names_the_mail_domain() {
        let args = ServeArgs {
            public_url: Some("https://signin.hospital.example:8443/".into()),
            ..ServeArgs::with_data_dir(PathBuf::from("d"))
        };
        assert!(args.secure_cookies());
        assert_eq!(args.mail_domain(), "signin.hospital.example");
    }

    #[test]
    fn bad_values_stop_start_up_with_a_hint() {
        let base = ServeArgs::with_data_dir(PathBuf::from("d"));
        let bad_url = ServeArgs {
            public_url: Some("signin.example".into()),
            ..base.clone()
        };
        assert!(bad_url
            .validate()
            .unwrap_err()
            .to_string()
            .contains("https://"));
        let bad_tls = ServeArgs {
            smtp_security: "ssl3".into(),
            ..base.clone()
        };
        assert!(matches!(
            bad_tls.validate(),
            Err(ConfigError::SmtpSecurity(_))
        ));
        let bad_name = ServeArgs {
            site_name: " ".into(),
            ..base
        };
        assert!(matches!(bad_name.validate(), Err(ConfigError::SiteName)));
    }

    #[test]
    fn the_cookie_domain_must_cover_the_public_host() {
        let base = ServeArgs {
            public_url: Some("https://signin.hospital.example".into()),
            ..ServeArgs::with_data_dir(PathBuf::from("d"))
        };
        let shared = ServeArgs {
            cookie_domain: Some("Hospital.Example".into()),
            ..base.clone()
        };
        assert_eq!(
            shared.session_cookie_domain().unwrap().unwrap().as_str(),
            "hospital.example"
        );
        let elsewhere = ServeArgs {
            cookie_domain: Some("clinic.example".into()),
            ..base.clone()
        };
        let message = elsewhere.validate().unwrap_err().to_string();
        assert!(message.contains("does not cover"), "{message}");
        let no_url = ServeArgs {
            public_url: None,
            ..shared.clone()
        };
        assert!(matches!(
            no_url.validate(),
            Err(ConfigError::CookieDomainWithoutPublicUrl)
        ));
        let bad = ServeArgs {
            redirect_domains: vec!["hospital.example/x".into()],
            ..base
        };
        assert!(matches!(
            bad.validate(),
            Err(ConfigError::RedirectDomain(_))
        ));
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        use clap::Parser;
        Cli::try_parse_from(std::iter::once("twostep").chain(args.iter().copied()))
            .map(|cli| cli.serve)
    }

    fn networks(texts: &[&str]) -> Vec<IpNetwork> {
        texts
            .iter()
            .map(|text| IpNetwork::parse(text).unwrap())
            .collect()
    }

    /// Each network flag, its field, and an environment variable of these tests only: the
    /// real `TWOSTEP_*` names are read by every test that parses the command line.
    const NETWORK_FLAGS: [(&str, &str, &str); 3] = [
        (
            "--trusted-proxy",
            "trusted_proxies",
            "TWOSTEP_CONFIG_TEST_TRUSTED_PROXY",
        ),
        (
            "--validate-client",
            "validate_clients",
            "TWOSTEP_CONFIG_TEST_VALIDATE_CLIENT",
        ),
        (
            "--metrics-client",
            "metrics_clients",
            "TWOSTEP_CONFIG_TEST_METRICS_CLIENT",
        ),
    ];

    fn networks_of(args: &ServeArgs, flag: &str) -> Vec<IpNetwork> {
        match flag {
            "--trusted-proxy" => args.trusted_proxies.clone(),
            "--validate-client" => args.validate_clients.clone(),
            _ => args.metrics_clients.clone(),
        }
    }

    #[test]
    fn metrics_are_for_loopback_unless_told_otherwise() {
        let parsed = parse(&[]).unwrap();
        assert_eq!(parsed.metrics_clients, IpNetwork::LOOPBACK.to_vec());
        assert_eq!(
            ServeArgs::with_data_dir(PathBuf::from("d")).metrics_clients,
            IpNetwork::LOOPBACK.to_vec()
        );
        let set = parse(&["--metrics-client", "10.9.0.0/16"]).unwrap();
        assert_eq!(set.metrics_clients, networks(&["10.9.0.0/16"]));
    }

    #[test]
    fn network_flags_take_a_bare_address_as_that_one_address() {
        for (flag, _, _) in NETWORK_FLAGS {
            let v4 = parse(&[flag, "10.0.0.5"]).unwrap();
            assert_eq!(networks_of(&v4, flag), networks(&["10.0.0.5/32"]), "{flag}");
            let v6 = parse(&[flag, "2001:DB8::1"]).unwrap();
            assert_eq!(
                networks_of(&v6, flag),
                networks(&["2001:db8::1/128"]),
                "{flag}"
            );
            let several = parse(&[flag, "10.0.0.5,10.1.0.0/16", flag, "::ffff:10.2.0.7"]).unwrap();
            assert_eq!(
                networks_of(&several, flag),
                networks(&["10.0.0.5/32", "10.1.0.0/16", "10.2.0.7/32"]),
                "{flag}"
            );
        }
    }

    #[test]
    fn network_flags_refuse_host_bits_naming_the_flag_and_the_network() {
        for (flag, _, _) in NETWORK_FLAGS {
            let error = parse(&[flag, "10.0.0.1/8"]).err().unwrap();
            assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
            let message = error.to_string();
            assert!(
                message.contains(&format!(
                    "{flag} 10.0.0.1/8: host bits are set; the network is 10.0.0.0/8"
                )),
                "{message}"
            );
            let message = parse(&[flag, "2001:db8::1/32"]).err().unwrap().to_string();
            assert!(
                message.contains(&format!(
                    "{flag} 2001:db8::1/32: host bits are set; the network is 2001:db8::/32"
                )),
                "{message}"
            );
            let message = parse(&[flag, "proxy.example"]).err().unwrap().to_string();
            assert!(
                message.contains(&format!("{flag}: \"proxy.example\" is not an IPv4/IPv6")),
                "{message}"
            );
        }
    }

    #[test]
    fn network_flags_read_their_environment_variables_the_same_way() {
        use clap::{CommandFactory, FromArgMatches};
        // clap reads a variable when the command is built, so each value gets its own
        // command; the variable is one of these tests', on its own.
        let parse_env = |field: &str, variable: &'static str, value: &str| {
            std::env::set_var(variable, value);
            let matches = Cli::command()
                .mut_arg(field, |arg| arg.env(variable))
                .try_get_matches_from(["twostep"]);
            std::env::remove_var(variable);
            matches.and_then(|matches| Cli::from_arg_matches(&matches).map(|cli| cli.serve))
        };
        for (flag, field, variable) in NETWORK_FLAGS {
            let parsed = parse_env(field, variable, "10.0.0.5,2001:db8::1,10.1.0.0/16").unwrap();
            assert_eq!(
                networks_of(&parsed, flag),
                networks(&["10.0.0.5/32", "2001:db8::1/128", "10.1.0.0/16"]),
                "{variable}"
            );
            let message = parse_env(field, variable, "10.0.0.5,10.0.0.1/8")
                .err()
                .unwrap()
                .to_string();
            assert!(
                message.contains(&format!(
                    "{flag} 10.0.0.1/8: host bits are set; the network is 10.0.0.0/8"
                )),
                "{message}"
            );
        }
    }

    fn ldap(extra: &[&str]) -> Result<Option<DirectorySetup>, LdapConfigError> {
        ldap_at("ldaps://dc1.hospital.example", extra)
    }

    fn ldap_at(url: &str, extra: &[&str]) -> Result<Option<DirectorySetup>, LdapConfigError> {
        let mut args = vec![
            "--ldap-url",
            url,
            "--ldap-bind-dn",
            "cn=twostep,ou=services,dc=hospital,dc=example",
            "--ldap-bind-password",
            "service passphrase",
            "--ldap-user-base",
            "ou=people,dc=hospital,dc=example",
            "--ldap-role-map",
            "cn=nurses,ou=groups,dc=hospital,dc=example=Nurses",
        ];
        args.extend_from_slice(extra);
        parse(&args).unwrap().ldap.setup()
    }

    /// SPEC 12: without --ldap-url there is no directory; with it, the flags make the
    /// client's configuration with SPEC 12's defaults (filter, attributes, 5 s timeouts).
    #[test]
    fn ldap_flags_make_the_directory_set_up_with_spec_defaults() {
        assert!(parse(&[]).unwrap().ldap.setup().unwrap().is_none());
        assert!(ServeArgs::with_data_dir(PathBuf::from("d"))
            .ldap
            .setup()
            .unwrap()
            .is_none());
        let setup = ldap(&[]).unwrap().unwrap();
        assert_eq!(setup.client.url, "ldaps://dc1.hospital.example:636");
        assert_eq!(
            setup.client.user_filter,
            crate::domain::OPENLDAP_USER_FILTER
        );
        assert_eq!(setup.client.attributes.name_attr(), "cn");
        assert_eq!(setup.client.attributes.email_attr(), "mail");
        assert_eq!(setup.client.attributes.group_attr(), "memberOf");
        assert_eq!(setup.client.connect_timeout, Duration::from_secs(5));
        assert_eq!(setup.client.operation_timeout, Duration::from_secs(5));
        assert!(setup.default_role.is_none());
        assert_eq!(
            setup.role_map.role_for(
                &["CN=Nurses,OU=Groups,DC=hospital,DC=example".to_owned()],
                None
            ),
            Some("Nurses".to_owned())
        );
        let ad = ldap(&[
            "--ldap-user-filter",
            crate::domain::ACTIVE_DIRECTORY_USER_FILTER,
            "--ldap-attr-name",
            "displayName",
            "--ldap-role-map",
            "cn=doctors,ou=groups,dc=hospital,dc=example=Doctors",
            "--ldap-default-role",
            "Staff",
            "--ldap-operation-timeout",
            "2",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            ad.client.user_filter,
            crate::domain::ACTIVE_DIRECTORY_USER_FILTER
        );
        assert_eq!(ad.client.attributes.name_attr(), "displayName");
        assert_eq!(ad.role_map.items().count(), 2);
        assert_eq!(ad.default_role.unwrap().as_str(), "Staff");
        assert_eq!(ad.client.operation_timeout, Duration::from_secs(2));
        // The service password never shows in Debug.
        let shown = format!("{:?}", ldap(&[]).unwrap().unwrap());
        assert!(!shown.contains("service passphrase"), "{shown}");
    }

    /// SPEC 12 / issue 18: each bad value stops start-up naming the flag.
    #[test]
    fn bad_ldap_flags_stop_start_up_naming_the_flag() {
        let message = |extra: &[&str]| ldap(extra).unwrap_err().to_string();
        assert!(ldap_at("http://dc1", &[])
            .unwrap_err()
            .to_string()
            .starts_with("--ldap-url: "));
        assert!(ldap_at("ldap://dc1.hospital.example", &[])
            .unwrap_err()
            .to_string()
            .contains("clear text"));
        assert!(
            ldap_at("ldap://dc1.hospital.example", &["--ldap-allow-plain"])
                .unwrap()
                .is_some()
        );
        assert!(ldap_at("ldap://dc1.hospital.example", &["--ldap-starttls"])
            .unwrap()
            .is_some());
        assert!(ldap_at("ldap://127.0.0.1:3389", &[]).unwrap().is_some());
        assert!(message(&["--ldap-starttls"]).contains("--ldap-starttls is for ldap://"));
        assert!(message(&["--ldap-user-filter", "(uid=jane)"]).starts_with("--ldap-user-filter: "));
        assert!(message(&["--ldap-attr-email", "e mail"]).starts_with("--ldap-attr-email: "));
        assert!(message(&["--ldap-group-attr", "member;of"]).starts_with("--ldap-group-attr: "));
        assert!(message(&["--ldap-role-map", "Nurses"]).starts_with("--ldap-role-map: "));
        assert!(message(&["--ldap-default-role", " "]).starts_with("--ldap-default-role: "));
        assert!(parse(&["--ldap-connect-timeout", "0"]).is_err());
        assert!(parse(&["--ldap-operation-timeout", "61"]).is_err());
        let missing = |flag: &str| {
            let mut args = vec![
                "--ldap-url",
                "ldaps://dc1",
                "--ldap-bind-dn",
                "cn=s,dc=x",
                "--ldap-bind-password",
                "p",
                "--ldap-user-base",
                "dc=x",
                "--ldap-default-role",
                "Staff",
            ];
            let at = args.iter().position(|arg| *arg == flag).unwrap();
            args.drain(at..at + 2);
            parse(&args).unwrap().ldap.setup().unwrap_err().to_string()
        };
        assert!(missing("--ldap-bind-dn").contains("needs --ldap-bind-dn"));
        assert!(missing("--ldap-bind-password").contains("needs --ldap-bind-password"));
        assert!(missing("--ldap-user-base").contains("needs --ldap-user-base"));
        assert!(missing("--ldap-default-role").contains("--ldap-role-map or --ldap-default-role"));
        // Directory flags without the URL are a mistake, not silently ignored.
        let stray = parse(&["--ldap-bind-dn", "cn=s,dc=x"]).unwrap();
        assert_eq!(
            stray.ldap.setup().unwrap_err(),
            LdapConfigError::WithoutUrl("--ldap-bind-dn")
        );
        assert!(matches!(
            stray.validate(),
            Err(ConfigError::Ldap(LdapConfigError::WithoutUrl(_)))
        ));
    }

    /// The directory's switches read their variables as words (`true`, `false`).
    #[test]
    fn ldap_switches_read_their_environment_variables() {
        use clap::{CommandFactory, FromArgMatches};
        let parse_env = |field: &str, variable: &'static str, value: &str| {
            std::env::set_var(variable, value);
            let matches = Cli::command()
                .mut_arg(field, |arg| arg.env(variable))
                .try_get_matches_from(["twostep"]);
            std::env::remove_var(variable);
            matches.and_then(|matches| Cli::from_arg_matches(&matches).map(|cli| cli.serve))
        };
        let on = parse_env("ldap_starttls", "TWOSTEP_CONFIG_TEST_LDAP_STARTTLS", "true").unwrap();
        assert!(on.ldap.ldap_starttls);
        let off = parse_env(
            "ldap_allow_plain",
            "TWOSTEP_CONFIG_TEST_LDAP_PLAIN",
            "false",
        )
        .unwrap();
        assert!(!off.ldap.ldap_allow_plain);
        let map = parse_env(
            "ldap_role_map",
            "TWOSTEP_CONFIG_TEST_LDAP_ROLE_MAP",
            "cn=a,dc=x=Nurses;cn=b,dc=x=Doctors",
        )
        .unwrap();
        assert_eq!(
            map.ldap.ldap_role_map,
            ["cn=a,dc=x=Nurses", "cn=b,dc=x=Doctors"]
        );
    }

    #[test]
    fn smtp_ports_default_by_security() {
        let base = ServeArgs {
            smtp_host: Some("mail".into()),
            ..ServeArgs::with_data_dir(PathBuf::from("d"))
        };
        assert_eq!(base.smtp().unwrap().port, 587);
        let tls = ServeArgs {
            smtp_security: "tls".into(),
            ..base.clone()
        };
        assert_eq!(tls.smtp().unwrap().port, 465);
        let explicit = ServeArgs {
            smtp_port: Some(2525),
            ..base
        };
        assert_eq!(explicit.smtp().unwrap().port, 2525);
    }
}
