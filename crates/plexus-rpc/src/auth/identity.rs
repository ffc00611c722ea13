//! [`Identity`]: who is calling, from a client certificate or a bearer token.

use std::fmt;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// The authenticated caller of a call, available to handlers in the request
/// extensions once the [`AuthLayer`](super::AuthLayer) has run.
///
/// The principal is the name authorization rules match: for a client
/// certificate, its first URI SAN (a SPIFFE id such as
/// `spiffe://shop/gateway`), else its first DNS SAN, else its subject common
/// name; for a bearer token, the principal its verifier assigned.
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    inner: Arc<Inner>,
}

#[derive(PartialEq, Eq)]
struct Inner {
    principal: String,
    source: IdentitySource,
    uris: Vec<String>,
    dns_names: Vec<String>,
}

/// How an [`Identity`] was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentitySource {
    /// A client certificate verified during the TLS handshake.
    Certificate,
    /// A bearer token in the `authorization` header.
    BearerToken,
}

impl Identity {
    /// An identity established by a bearer token.
    pub fn from_token_principal(principal: impl Into<String>) -> Self {
        Identity {
            inner: Arc::new(Inner {
                principal: principal.into(),
                source: IdentitySource::BearerToken,
                uris: Vec::new(),
                dns_names: Vec::new(),
            }),
        }
    }

    /// Reads the identity of a (verified) client certificate. `None` when the
    /// certificate cannot be parsed or names no one.
    pub fn from_certificate(cert: &CertificateDer<'_>) -> Option<Self> {
        let (_, parsed) = X509Certificate::from_der(cert.as_ref()).ok()?;
        let mut uris = Vec::new();
        let mut dns_names = Vec::new();
        if let Ok(Some(san)) = parsed.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::URI(uri) => uris.push((*uri).to_owned()),
                    GeneralName::DNSName(dns) => dns_names.push((*dns).to_owned()),
                    _ => {}
                }
            }
        }
        let common_name = parsed
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned);
        let principal = uris
            .first()
            .or(dns_names.first())
            .cloned()
            .or(common_name)?;
        Some(Identity {
            inner: Arc::new(Inner {
                principal,
                source: IdentitySource::Certificate,
                uris,
                dns_names,
            }),
        })
    }

    /// The name authorization rules match.
    pub fn principal(&self) -> &str {
        &self.inner.principal
    }

    /// How the identity was established.
    pub fn source(&self) -> IdentitySource {
        self.inner.source
    }

    /// Every URI SAN of the client certificate (empty for tokens).
    pub fn uris(&self) -> &[String] {
        &self.inner.uris
    }

    /// Every DNS SAN of the client certificate (empty for tokens).
    pub fn dns_names(&self) -> &[String] {
        &self.inner.dns_names
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("principal", &self.inner.principal)
            .field("source", &self.inner.source)
            .finish()
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.principal)
    }
}
