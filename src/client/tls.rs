//! `https://` and `wss://` for the client: whom it trusts, and the stream it talks over.

use super::ClientError;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// The certificates a client trusts for HTTPS and WSS (rustls, ring). A server is named by
/// the address dialled (its certificate must cover that IP address).
#[derive(Clone)]
pub struct Tls(TlsConnector);

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

impl Tls {
    /// Trust exactly the certificates in `pem` (a self-signed server's, or a private CA's).
    pub fn trusting_pem(pem: &[u8]) -> Result<Self, ClientError> {
        let bad = |e: &dyn std::fmt::Display| ClientError::Protocol(format!("certificate: {e}"));
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
        }
        if roots.is_empty() {
            return Err(bad(&"no certificate in the PEM text"));
        }
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(&e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self(TlsConnector::from(Arc::new(config))))
    }
}

/// A byte stream, plain or TLS.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// `stream` to `addr`, wrapped in TLS when `tls` is given.
pub(crate) async fn wrap(
    stream: TcpStream,
    addr: SocketAddr,
    tls: Option<&Tls>,
) -> Result<Box<dyn Stream>, ClientError> {
    let _ = stream.set_nodelay(true);
    match tls {
        None => Ok(Box::new(stream)),
        Some(Tls(connector)) => {
            let name = ServerName::IpAddress(addr.ip().into());
            let s = connector
                .connect(name, stream)
                .await
                .map_err(|e| ClientError::Http(format!("TLS with {addr}: {e}")))?;
            Ok(Box::new(s))
        }
    }
}
