//! A throwaway PKI for TLS tests, generated with `rcgen` into a directory:
//! - a private CA (`ca.pem`);
//! - a server certificate for `localhost` and `127.0.0.1` signed by that CA (`server.pem`,
//!   key `server.key`);
//! - a second, unrelated CA (`other-ca.pem`) for the wrong-CA case.
//!
//! Keys are ECDSA P-256; every file is PEM. Nothing is cached: each call makes new keys.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// The files of one generated PKI.
pub struct Pki {
    /// The private CA that signed the server certificate.
    pub ca: PathBuf,
    /// An unrelated CA: verifying the server with it must fail.
    pub other_ca: PathBuf,
    /// The server certificate (leaf only).
    pub cert: PathBuf,
    /// The server certificate's private key.
    pub key: PathBuf,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

impl Pki {
    /// Generates a CA, a server certificate it signs and another CA, and writes them to `dir`.
    pub fn generate(dir: &Path) -> Pki {
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_p = ca_params("soakd test CA");
        let ca_cert = ca_p.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_p, ca_key);

        let mut server_p =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("server names");
        server_p
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server_p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server_p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate().expect("server key");
        let server_cert = server_p
            .signed_by(&server_key, &issuer)
            .expect("server certificate");

        let other_key = KeyPair::generate().expect("other CA key");
        let other_cert = ca_params("unrelated test CA")
            .self_signed(&other_key)
            .expect("other CA certificate");

        let write = |name: &str, text: String| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
            p
        };
        Pki {
            ca: write("ca.pem", ca_cert.pem()),
            other_ca: write("other-ca.pem", other_cert.pem()),
            cert: write("server.pem", server_cert.pem()),
            key: write("server.key", server_key.serialize_pem()),
        }
    }
}
