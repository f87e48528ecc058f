//! TLS to the external server, with certificates made by rcgen in the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sluice_extauth::testing::{FakeConfig, FakeServer, FakeUser};
use sluice_extauth::{
    Delegation, ExtAuthError, ExtStep, ExternalServer, ExternalTls, probe_mechanisms,
};

/// A CA that issues certificates.
struct Ca {
    cert: CertificateDer<'static>,
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        Ca {
            cert: cert.der().clone(),
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf certificate for `name` (a DNS name or an IP address): DER chain, key, and PEMs.
    fn issue(&self, name: &str) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

struct Leaf {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_pem: String,
    key_pem: String,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server configuration presenting `leaf`; with `client_ca`, it requires a client
/// certificate from that CA.
fn server_tls(leaf: Leaf, client_ca: Option<&Ca>) -> Arc<rustls::ServerConfig> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots.add(ca.cert.clone()).unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider())
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    Arc::new(builder.with_single_cert(leaf.chain, leaf.key).unwrap())
}

fn write(dir: &tempfile::TempDir, name: &str, contents: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

async fn tls_fake(tls: Arc<rustls::ServerConfig>) -> FakeServer {
    let config = FakeConfig {
        tls: Some(tls),
        ..FakeConfig::default()
    }
    .user("alice", FakeUser::new("secret").group("g"));
    FakeServer::start(config).await.unwrap()
}

fn plain() -> Option<Bytes> {
    Some(Bytes::from_static(b"\0alice\0secret"))
}

fn with_tls(server: &FakeServer, tls: ExternalTls) -> ExternalServer {
    ExternalServer {
        tls: Some(tls),
        ..server.external_server()
    }
}

#[tokio::test]
async fn tls_with_the_test_ca_authenticates_and_probes() {
    let ca = Ca::new("test CA");
    let server = tls_fake(server_tls(ca.issue("127.0.0.1"), None)).await;
    let dir = tempfile::tempdir().unwrap();
    let external = with_tls(
        &server,
        ExternalTls {
            ca: write(&dir, "ca.pem", &ca.pem),
            client_cert: None,
        },
    );
    let mechanisms = probe_mechanisms(&external).await.unwrap();
    assert!(mechanisms.contains(&"PLAIN".to_string()));
    let (_, step) = Delegation::start(&external, "PLAIN", plain())
        .await
        .unwrap();
    let ExtStep::Authenticated(identity) = step else {
        panic!("expected Authenticated, got {step:?}");
    };
    assert_eq!(identity.groups, ["g"]);
}

/// Starts an exchange with a server whose certificate is for `name` from `issuer`, trusting
/// only `trusted`.
async fn exchange_with(issuer: &Ca, name: &str, trusted: &Ca) -> Result<ExtStep, ExtAuthError> {
    let server = tls_fake(server_tls(issuer.issue(name), None)).await;
    let dir = tempfile::tempdir().unwrap();
    let external = with_tls(
        &server,
        ExternalTls {
            ca: write(&dir, "ca.pem", &trusted.pem),
            client_cert: None,
        },
    );
    Delegation::start(&external, "PLAIN", plain())
        .await
        .map(|(_, step)| step)
}

#[tokio::test]
async fn a_server_certificate_from_another_ca_or_for_another_name_is_refused() {
    let ca = Ca::new("test CA");
    let other = Ca::new("other CA");
    // The good case first, so the refusals below are about the certificate alone.
    let step = exchange_with(&ca, "127.0.0.1", &ca).await.unwrap();
    assert!(matches!(step, ExtStep::Authenticated(_)), "{step:?}");
    for (issuer, name) in [(&other, "127.0.0.1"), (&ca, "auth.example")] {
        let err = exchange_with(issuer, name, &ca).await.unwrap_err();
        assert!(matches!(err, ExtAuthError::Tls { .. }), "{name}: {err}");
    }
}

#[tokio::test]
async fn a_client_certificate_is_presented_when_configured() {
    let ca = Ca::new("test CA");
    let server = tls_fake(server_tls(ca.issue("127.0.0.1"), Some(&ca))).await;
    let client = ca.issue("sluice");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = write(&dir, "ca.pem", &ca.pem);
    let with_cert = with_tls(
        &server,
        ExternalTls {
            ca: ca_file.clone(),
            client_cert: Some((
                write(&dir, "tls.crt", &client.cert_pem),
                write(&dir, "tls.key", &client.key_pem),
            )),
        },
    );
    let (_, step) = Delegation::start(&with_cert, "PLAIN", plain())
        .await
        .unwrap();
    assert!(matches!(step, ExtStep::Authenticated(_)), "{step:?}");

    // Without one, the server ends the connection (under TLS 1.3 the client learns it only
    // when it next reads).
    let without = with_tls(
        &server,
        ExternalTls {
            ca: ca_file,
            client_cert: None,
        },
    );
    let result = Delegation::start(&without, "PLAIN", plain()).await;
    assert!(
        matches!(
            result,
            Err(ExtAuthError::Tls { .. } | ExtAuthError::Disconnected(_))
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn broken_tls_files_are_named_in_the_error() {
    let ca = Ca::new("test CA");
    let server = tls_fake(server_tls(ca.issue("127.0.0.1"), None)).await;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let empty = write(&dir, "empty.pem", "no certificates here\n");
    for ca_file in [missing, empty] {
        let external = with_tls(
            &server,
            ExternalTls {
                ca: ca_file.clone(),
                client_cert: None,
            },
        );
        let err = Delegation::start(&external, "PLAIN", plain())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ExtAuthError::TlsFile { path, .. } if *path == ca_file),
            "{err}"
        );
    }
    // The configuration is read before connecting: the server saw nothing.
    assert_eq!(server.connections(), 0);
}
