//! TLS for `mqtts://` brokers: rustls with the ring provider, a private CA from the config,
//! optional client certificate (mutual TLS). No system roots: a station trusts only the CA it
//! was given. Central's media server (`video.push` over `rtsps://`) may carry a public
//! certificate: [`public_roots_and`] trusts Mozilla's roots besides a configured CA.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read PEM certificates from {path}: {reason}")]
    Certs { path: PathBuf, reason: String },
    #[error("cannot read a PEM private key from {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("TLS configuration rejected: {0}")]
    Config(#[from] rustls::Error),
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |reason: String| TlsError::Certs {
        path: path.to_path_buf(),
        reason,
    };
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE block found".into()));
    }
    Ok(certs)
}

fn provider_builder(
) -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>, TlsError> {
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?)
}

/// Mozilla's roots (webpki-roots) and, when given, the CA in `ca_file`; no client certificate.
pub fn public_roots_and(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(ca) = ca_file {
        for cert in certs(ca)? {
            roots.add(cert).map_err(|e| TlsError::Certs {
                path: ca.to_path_buf(),
                reason: e.to_string(),
            })?;
        }
    }
    Ok(Arc::new(
        provider_builder()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// Builds the client configuration from the CA file and an optional (cert, key) pair.
pub fn client_config(
    ca_file: &Path,
    client: Option<(&Path, &Path)>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs(ca_file)? {
        roots.add(cert).map_err(|e| TlsError::Certs {
            path: ca_file.to_path_buf(),
            reason: e.to_string(),
        })?;
    }
    let builder = provider_builder()?.with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
                path: key.to_path_buf(),
                reason: e.to_string(),
            })?;
            builder.with_client_auth_cert(chain, key)?
        }
    };
    Ok(Arc::new(config))
}
