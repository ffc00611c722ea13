//! Reading certificates and keys from PEM.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::Error;

pub(crate) fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::tls(format!("{what}: cannot read PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(Error::tls(format!(
            "{what}: no `BEGIN CERTIFICATE` block found; expected PEM certificates"
        )));
    }
    Ok(certs)
}

pub(crate) fn private_key(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
        Error::tls(format!(
            "{what}: cannot read a PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"
        ))
    })
}
