//! A throwaway PKI for the TLS tests, made with rcgen and written to a
//! temporary directory so the `plexus` binary can read it.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// A CA plus a server and a client certificate it issued, as PEM text and
/// as files.
pub struct Pki {
    /// The CA certificate.
    pub ca_pem: String,
    /// The server's certificate (localhost, 127.0.0.1) and key.
    pub server: (String, String),
    /// The CA certificate file.
    pub ca_file: PathBuf,
    /// The client certificate file (SPIFFE id [`CLIENT_ID`]).
    pub client_cert_file: PathBuf,
    /// The client key file.
    pub client_key_file: PathBuf,
    _dir: tempfile::TempDir,
}

/// The identity in the client certificate.
pub const CLIENT_ID: &str = "spiffe://plexus.test/cli";

impl Pki {
    pub fn new() -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "plexus call test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().unwrap();
        let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::new(ca_params, ca_key);

        let mut server = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        server
            .subject_alt_names
            .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
        let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
        client
            .distinguished_name
            .push(DnType::CommonName, "plexus call");
        client
            .subject_alt_names
            .push(SanType::URI(CLIENT_ID.try_into().unwrap()));

        let issue = |params: CertificateParams| {
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let server = issue(server);
        let (client_cert, client_key) = issue(client);

        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        Pki {
            ca_file: write("ca.pem", &ca_pem),
            client_cert_file: write("client.pem", &client_cert),
            client_key_file: write("client.key", &client_key),
            ca_pem,
            server,
            _dir: dir,
        }
    }
}
