//! Delivering the outbox: a worker on every instance claims due messages with a lease
//! and sends them over SMTP, or writes them to `<data-dir>/mail/` when no SMTP server is
//! configured. Failures are retried with exponential backoff until the code expires;
//! then the message is dead and audited.

use std::path::PathBuf;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::store::ClaimedMessage;

/// How the connection to the SMTP server is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// No TLS (a relay on the same host or a trusted network).
    Plain,
    /// Plain connection upgraded with STARTTLS, which must succeed.
    StartTls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

impl SmtpSecurity {
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "plain" | "none" => Some(Self::Plain),
            "starttls" => Some(Self::StartTls),
            "tls" | "smtps" => Some(Self::Tls),
            _ => None,
        }
    }
}

/// The SMTP server to send through.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<String>,
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Where messages go.
#[derive(Clone)]
pub enum Transport {
    /// One `.eml` file per message in this folder (no SMTP configured).
    Folder(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("the SMTP settings are not usable: {0}")]
    Settings(String),
}

impl Transport {
    pub fn smtp(settings: &SmtpSettings) -> Result<Self, TransportError> {
        let tls = || {
            TlsParameters::new(settings.host.clone())
                .map_err(|error| TransportError::Settings(error.to_string()))
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.clone())
                .port(settings.port)
                .timeout(Some(settings.timeout));
        builder = match settings.security {
            SmtpSecurity::Plain => builder.tls(Tls::None),
            SmtpSecurity::StartTls => builder.tls(Tls::Required(tls()?)),
            SmtpSecurity::Tls => builder.tls(Tls::Wrapper(tls()?)),
        };
        match (&settings.username, &settings.password) {
            (Some(user), Some(password)) => {
                builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
            }
            (None, None) => {}
            _ => {
                return Err(TransportError::Settings(
                    "give both the SMTP username and the SMTP password, or neither".into(),
                ))
            }
        }
        Ok(Self::Smtp(builder.build()))
    }

    /// Delivers one message; the error text is safe to log (no body).
    pub async fn deliver(&self, message: &ClaimedMessage) -> Result<(), String> {
        match self {
            Self::Folder(folder) => write_eml(folder, message).await,
            Self::Smtp(transport) => {
                let from: Address = message
                    .from
                    .parse()
                    .map_err(|_| "invalid sender address".to_owned())?;
                let to: Address = message
                    .to
                    .parse()
                    .map_err(|_| "invalid recipient address".to_owned())?;
                let envelope =
                    Envelope::new(Some(from), vec![to]).map_err(|error| error.to_string())?;
                transport
                    .send_raw(&envelope, &message.payload)
                    .await
                    .map(|_| ())
                    .map_err(|error| smtp_hint(&error))
            }
        }
    }
}

/// An actionable line for the log from an SMTP failure.
fn smtp_hint(error: &lettre::transport::smtp::Error) -> String {
    if error.is_permanent() {
        format!("the SMTP server refused the message: {error}")
    } else if error.is_transient() {
        format!("the SMTP server asked to try later: {error}")
    } else {
        format!(
            "cannot talk to the SMTP server (check host, port, TLS mode and credentials): {error}"
        )
    }
}

/// Writes `<folder>/<created>-<id>.eml` through a temporary name, so a reader never sees
/// half a message; mode 0600, since it holds a code.
async fn write_eml(folder: &std::path::Path, message: &ClaimedMessage) -> Result<(), String> {
    let folder = folder.to_path_buf();
    let name = format!("{}-{:06}.eml", message.created_at.millis(), message.id);
    let payload = message.payload.clone();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(&folder)?;
        let temporary = folder.join(format!(".{name}.tmp"));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(&payload)?;
        file.sync_all()?;
        std::fs::rename(&temporary, folder.join(&name))
    })
    .await
    .map_err(|error| error.to_string())?
    .map_err(|error| format!("cannot write to the mail folder: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_security_names_parse() {
        assert_eq!(
            SmtpSecurity::parse("STARTTLS"),
            Some(SmtpSecurity::StartTls)
        );
        assert_eq!(SmtpSecurity::parse("tls"), Some(SmtpSecurity::Tls));
        assert_eq!(SmtpSecurity::parse("plain"), Some(SmtpSecurity::Plain));
        assert_eq!(SmtpSecurity::parse("ssl3"), None);
    }

    #[test]
    fn smtp_settings_debug_hides_the_password() {
        let settings = SmtpSettings {
            host: "mail.example.org".into(),
            port: 587,
            security: SmtpSecurity::StartTls,
            username: Some("twostep".into()),
            password: Some("hunter2-secret".into()),
            timeout: Duration::from_secs(10),
        };
        assert!(!format!("{settings:?}").contains("hunter2"));
        assert!(
            Transport::smtp(&SmtpSettings {
                password: None,
                ..settings
            })
            .is_err(),
            "user without password"
        );
    }
}
