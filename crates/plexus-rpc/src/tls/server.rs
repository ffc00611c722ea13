//! [`ServerTls`]: the server's certificate and, for mTLS, the client CA.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use super::pem;
use crate::error::Error;

/// TLS for a server: its certificate chain and key, and optionally the CA
/// that client certificates must chain to (mutual TLS).
///
/// With a client CA, a client certificate is verified during the handshake
/// (one from another CA is refused there) and becomes the caller's
/// [`Identity`](crate::auth::Identity). By default a client may connect
/// without a certificate, so that the authorization policy can answer
/// `UNAUTHENTICATED` with a reason; [`require_client_certificate`](Self::require_client_certificate)
/// refuses such clients in the handshake instead.
#[derive(Debug)]
pub struct ServerTls {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_ca: Option<Vec<CertificateDer<'static>>>,
    require_client_cert: bool,
}

impl ServerTls {
    /// The server's certificate chain and private key, in PEM.
    pub fn from_pem(cert_chain: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> Result<Self, Error> {
        Ok(ServerTls {
            chain: pem::certificates(cert_chain.as_ref(), "server certificate")?,
            key: pem::private_key(key.as_ref(), "server key")?,
            client_ca: None,
            require_client_cert: false,
        })
    }

    /// Verifies client certificates against this CA (PEM): mutual TLS.
    pub fn client_ca_pem(mut self, ca: impl AsRef<[u8]>) -> Result<Self, Error> {
        self.client_ca = Some(pem::certificates(ca.as_ref(), "client CA")?);
        Ok(self)
    }

    /// Refuses, during the handshake, clients that present no certificate.
    pub fn require_client_certificate(mut self, required: bool) -> Self {
        self.require_client_cert = required;
        self
    }

    pub(crate) fn acceptor(&self) -> Result<TlsAcceptor, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::tls(e.to_string()))?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(cas) => {
                let mut roots = RootCertStore::empty();
                for ca in cas {
                    roots
                        .add(ca.clone())
                        .map_err(|e| Error::tls(format!("client CA certificate unusable: {e}")))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = if self.require_client_cert {
                    verifier.build()
                } else {
                    verifier.allow_unauthenticated().build()
                }
                .map_err(|e| Error::tls(format!("client certificate verifier: {e}")))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| {
                Error::tls(format!(
                    "server certificate and key do not match or are unusable: {e}"
                ))
            })?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}
