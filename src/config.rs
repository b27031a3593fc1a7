//! `twostep serve` settings: command-line flags, each also read from `TWOSTEP_<FLAG>`
//! (SPEC section 9). Checked at start-up; a bad value stops the server with a message
//! that says what to change.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::domain::{host_of, DomainName, DomainNameError};
use crate::domain::{IpNetwork, IpNetworkError};
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
