//! HTTPS: the API served over TLS (rustls) by the gateway itself, with
//! `--tls-cert` and `--tls-key`.
//!
//! Each accepted connection does its TLS handshake within the header timeout
//! and is then served by the same loop as plain connections
//! ([`crate::server`]): same timeouts, connection cap and answers, graceful
//! shutdown on [`Shutdown`].
//!
//! HTTP/1.1 only (ALPN `http/1.1`): hyper's HTTP/2 server has no header read
//! timeout, so an HTTP/2 client could hold a connection open without
//! sending a request; offering it would undo the slow-client protection.

use crate::{AppState, Shutdown};
use std::path::Path;
use std::sync::Arc;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// Why the certificate or key cannot be used.
#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0} holds no PEM certificate")]
    NoCertificate(String),
    #[error("{0} holds no PEM private key")]
    NoKey(String),
    #[error("the certificate and key cannot be used: {0}")]
    Rustls(#[from] rustls::Error),
}

fn read_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// The TLS settings of a server with the certificate chain in `cert` and
/// its private key in `key` (both PEM).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &read_pem(cert)?[..])
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Read {
            path: cert.display().to_string(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(cert.display().to_string()));
    }
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut &read_pem(key)?[..])
        .map_err(|source| TlsError::Read {
            path: key.display().to_string(),
            source,
        })?
        .ok_or_else(|| TlsError::NoKey(key.display().to_string()))?;
    // ring, named here: the process may link more than one provider.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves the API over TLS on `listener` until `shutdown` triggers and every
/// in-flight request has been answered: the connection loop of
/// [`crate::serve`], with the TLS handshake as its first step, so HTTPS has
/// the same header and body timeouts, keep-alive limit and connection cap.
pub async fn serve_tls(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    state: AppState,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    crate::server::serve_with(listener, Some(TlsAcceptor::from(config)), state, shutdown).await
}
