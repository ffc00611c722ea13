//! [`ClientTls`]: the CA a client trusts and, for mTLS, its own certificate.

use tonic::transport::{Certificate, ClientTlsConfig, Identity as TlsIdentity};

use super::pem;
use crate::error::Error;

/// TLS for a client: the CA that server certificates must chain to, the
/// name to verify, and optionally a client certificate (mutual TLS).
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    ca: Option<Vec<u8>>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
    domain: Option<String>,
}

impl ClientTls {
    /// TLS with no CA yet; add one with [`ca_pem`](Self::ca_pem).
    pub fn new() -> Self {
        ClientTls::default()
    }

    /// Trusts server certificates issued by this CA (PEM).
    pub fn ca_pem(mut self, ca: impl AsRef<[u8]>) -> Result<Self, Error> {
        pem::certificates(ca.as_ref(), "CA")?;
        self.ca = Some(ca.as_ref().to_vec());
        Ok(self)
    }

    /// Presents this certificate chain and key (PEM) to the server.
    pub fn identity_pem(
        mut self,
        cert_chain: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
    ) -> Result<Self, Error> {
        pem::certificates(cert_chain.as_ref(), "client certificate")?;
        pem::private_key(key.as_ref(), "client key")?;
        self.identity = Some((cert_chain.as_ref().to_vec(), key.as_ref().to_vec()));
        Ok(self)
    }

    /// Verifies the server certificate against this name instead of the
    /// endpoint's host.
    pub fn domain_name(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    pub(crate) fn to_tonic(&self) -> Result<ClientTlsConfig, Error> {
        let mut config = ClientTlsConfig::new();
        match &self.ca {
            Some(ca) => config = config.ca_certificate(Certificate::from_pem(ca)),
            None => {
                return Err(Error::tls(
                    "no CA to verify the server with; call ClientTls::ca_pem",
                ));
            }
        }
        if let Some((cert, key)) = &self.identity {
            config = config.identity(TlsIdentity::from_pem(cert, key));
        }
        if let Some(domain) = &self.domain {
            config = config.domain_name(domain.clone());
        }
        Ok(config)
    }
}
