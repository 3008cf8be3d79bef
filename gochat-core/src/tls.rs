//! TLS for the HTTP and WebSocket listeners (rustls, ring): a certificate chain and its key
//! from PEM files.

use crate::config::TlsConfig;
use crate::{Error, Result};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring::default_provider;

/// What a listener hands each accepted socket to.
pub type Acceptor = tokio_rustls::TlsAcceptor;

fn bad(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::InvalidConfig(format!("tls: {}: {e}", path.display()))
}

/// The acceptor `[tls]` describes, or `None` when it is off (no certificate configured).
pub fn acceptor(c: &TlsConfig) -> Result<Option<Acceptor>> {
    let (cert, key) = match (&c.cert_file, &c.key_file) {
        (Some(cert), Some(key)) => (cert, key),
        _ => return Ok(None),
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(cert, e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(cert, e))?;
    if certs.is_empty() {
        return Err(bad(cert, "no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, e))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(cert, e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| bad(cert, e))?;
    // hyper here speaks HTTP/1.1 (and WebSocket upgrades over it).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Acceptor::from(Arc::new(config))))
}
