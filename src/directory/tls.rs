//! The TLS client configuration of the directory connections (ldaps:// and StartTLS):
//! rustls with ring, trusting only the configured CA file, or the system's roots when no
//! CA file is given.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use super::DirectoryError;

/// The client configuration: only the certificates of `ca_file` as roots (all of its
/// `CERTIFICATE` blocks), or the system's when `None`.
pub(super) fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, DirectoryError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let shown = path.display();
            let certificates = CertificateDer::pem_file_iter(path).map_err(|error| {
                DirectoryError::Config(format!("cannot read the CA file {shown}: {error}"))
            })?;
            for certificate in certificates {
                let certificate = certificate.map_err(|error| {
                    DirectoryError::Config(format!("the CA file {shown} is not PEM: {error}"))
                })?;
                roots.add(certificate).map_err(|error| {
                    DirectoryError::Config(format!(
                        "the CA file {shown} holds an unusable certificate: {error}"
                    ))
                })?;
            }
            if roots.is_empty() {
                return Err(DirectoryError::Config(format!(
                    "the CA file {shown} holds no certificate"
                )));
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                return Err(DirectoryError::Config(
                    "no CA file given and the system has no CA certificates".to_owned(),
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| DirectoryError::Config(format!("TLS set-up failed: {error}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
