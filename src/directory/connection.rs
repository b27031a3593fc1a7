//! One connection to the directory: opened (TCP, then TLS for ldaps:// or StartTLS) under
//! the connect timeout, its driver task spawned, and ldap3's errors sorted into what the
//! caller can act on.

use std::sync::Arc;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError};
use rustls::ClientConfig;

use super::{DirectoryConfig, DirectoryError};

/// How a connection is opened, derived once from the configuration.
pub(super) struct Connector {
    pub(super) url: String,
    pub(super) starttls: bool,
    pub(super) tls: Option<Arc<ClientConfig>>,
}

impl Connector {
    /// A new connection, not yet bound. The whole opening (TCP, TLS handshake, StartTLS
    /// exchange) is under `connect_timeout`.
    pub(super) async fn open(&self, config: &DirectoryConfig) -> Result<Ldap, DirectoryError> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(config.connect_timeout)
            .set_starttls(self.starttls);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(Arc::clone(tls));
        }
        let opening = LdapConnAsync::with_settings(settings, &self.url);
        let (connection, ldap) = match tokio::time::timeout(config.connect_timeout, opening).await {
            Ok(Ok(opened)) => opened,
            Ok(Err(error)) => return Err(connection_error(&error)),
            Err(_) => {
                return Err(DirectoryError::Unavailable(format!(
                    "no connection to {} within {} ms",
                    self.url,
                    config.connect_timeout.as_millis()
                )))
            }
        };
        // The driver ends when the last handle of the connection is dropped or the
        // server closes it.
        tokio::spawn(async move {
            if let Err(error) = connection.drive().await {
                tracing::debug!(%error, "directory connection ended");
            }
        });
        Ok(ldap)
    }
}

/// An error of the connection itself (not an LDAP result code): a refused certificate is
/// `Tls`, everything else (refused, reset, timed out, closed) `Unavailable`.
pub(super) fn connection_error(error: &LdapError) -> DirectoryError {
    match error {
        LdapError::Rustls { source } => DirectoryError::Tls(source.to_string()),
        LdapError::Io { source } => {
            match source
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                Some(tls) => DirectoryError::Tls(tls.to_string()),
                None => DirectoryError::Unavailable(error.to_string()),
            }
        }
        other => DirectoryError::Unavailable(other.to_string()),
    }
}
