//! TLS first (the 5671 port): protocol versions, server certificate checks on the client
//! side, client certificates, the self-signed provider.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::{bounded, connect_tls, echo_once, listen, pattern, round_trip};
use rustls::ProtocolVersion;
use sluice_transport::testing::{SERVER_DNS_NAME, TestPki, client_config_trusting};
use sluice_transport::{CertSource, Tls, TlsSettings, TransportError, accept_amqps};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn new_pki(dir: &tempfile::TempDir, cn: &str) -> TestPki {
    TestPki::generate(dir.path(), cn).unwrap()
}

/// Serves one TLS-first connection with `tls`, echoing.
async fn serve(
    tls: &Tls,
) -> (
    std::net::SocketAddr,
    tokio::task::JoinHandle<Result<sluice_transport::PeerInfo, TransportError>>,
) {
    let (listener, addr) = listen().await;
    let tls = tls.clone();
    let server = echo_once(
        listener,
        move |tcp| async move { accept_amqps(tcp, &tls).await },
    );
    (addr, server)
}

#[tokio::test]
async fn a_certificate_bundle_from_files_serves_tls_13_and_12() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let pki = new_pki(&dir, "unused");
        let tls = Tls::load(pki.server_settings()).unwrap();
        for (versions, expected) in [
            (&[&rustls::version::TLS13][..], ProtocolVersion::TLSv1_3),
            (&[&rustls::version::TLS12][..], ProtocolVersion::TLSv1_2),
        ] {
            let (addr, server) = serve(&tls).await;
            let config = pki.client_config_with_versions(versions, false).unwrap();
            let mut client = connect_tls(addr, config, SERVER_DNS_NAME).await.unwrap();
            assert_eq!(client.get_ref().1.protocol_version(), Some(expected));
            let bytes = pattern(70_000);
            assert_eq!(round_trip(&mut client, &bytes).await, bytes);
            client.shutdown().await.unwrap();
            let peer = server.await.unwrap().unwrap();
            assert!(peer.tls && !peer.websocket);
            assert_eq!(peer.client_subject, None);
            assert_eq!(peer.addr, client.get_ref().0.local_addr().unwrap());
        }
    })
    .await;
}

/// A hand-written ClientHello with `client_version` and no supported_versions extension,
/// otherwise acceptable to a TLS 1.2 server (ECDHE-ECDSA suites, groups, signature schemes).
fn client_hello(client_version: [u8; 2]) -> Vec<u8> {
    fn with_len16(body: &[u8]) -> Vec<u8> {
        let mut out = (body.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }
    let mut extensions = Vec::new();
    // signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256
    extensions.extend_from_slice(&[0x00, 0x0d]);
    extensions.extend_from_slice(&with_len16(&with_len16(&[0x04, 0x03, 0x08, 0x04])));
    // supported_groups: secp256r1, x25519
    extensions.extend_from_slice(&[0x00, 0x0a]);
    extensions.extend_from_slice(&with_len16(&with_len16(&[0x00, 0x17, 0x00, 0x1d])));
    // ec_point_formats: uncompressed
    extensions.extend_from_slice(&[0x00, 0x0b]);
    extensions.extend_from_slice(&with_len16(&[0x01, 0x00]));

    let mut hello = client_version.to_vec();
    hello.extend_from_slice(&[7u8; 32]); // random
    hello.push(0); // no session id
    hello.extend_from_slice(&with_len16(&[0xc0, 0x2b, 0xc0, 0x2c])); // ECDHE-ECDSA-AES-GCM
    hello.extend_from_slice(&[0x01, 0x00]); // null compression
    hello.extend_from_slice(&with_len16(&extensions));

    let mut handshake = vec![0x01, 0x00];
    handshake.extend_from_slice(&with_len16(&hello));
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&with_len16(&handshake));
    record
}

/// Sends `hello` to a fresh server and returns its first answer byte (or `None`) and what
/// the accept returned.
async fn answer_to(tls: &Tls, hello: &[u8]) -> (Option<u8>, Result<(), TransportError>) {
    let (addr, server) = serve(tls).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(hello).await.unwrap();
    let mut first = [0u8; 1];
    let answer = match tcp.read(&mut first).await {
        Ok(1) => Some(first[0]),
        _ => None,
    };
    drop(tcp);
    (answer, server.await.unwrap().map(|_| ()))
}

#[tokio::test]
async fn tls_11_is_not_offered() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let tls = Tls::load(new_pki(&dir, "unused").server_settings()).unwrap();
        // The control: the same hello as TLS 1.2 gets a handshake record (22) back.
        let (answer, _) = answer_to(&tls, &client_hello([0x03, 0x03])).await;
        assert_eq!(answer, Some(0x16));
        // As TLS 1.1 it gets an alert (21) and the accept fails.
        let (answer, result) = answer_to(&tls, &client_hello([0x03, 0x02])).await;
        assert_eq!(answer, Some(0x15));
        let Err(TransportError::Tls(error)) = result else {
            panic!("TLS 1.1 was not refused: {result:?}");
        };
        assert!(
            error.to_string().contains("Tls12NotOffered"),
            "refused for another reason: {error}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_client_refuses_an_untrusted_certificate_and_a_wrong_hostname() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let other_dir = tempfile::tempdir().unwrap();
        let pki = new_pki(&dir, "unused");
        let stranger = new_pki(&other_dir, "unused");
        let tls = Tls::load(pki.server_settings()).unwrap();

        let (addr, server) = serve(&tls).await;
        let untrusting = stranger.client_config(false).unwrap();
        let error = connect_tls(addr, untrusting, SERVER_DNS_NAME)
            .await
            .expect_err("a client trusting another CA connected");
        assert!(
            error.to_string().contains("invalid peer certificate"),
            "{error}"
        );
        assert!(server.await.unwrap().is_err());

        let (addr, server) = serve(&tls).await;
        let trusting = pki.client_config(false).unwrap();
        let error = connect_tls(addr, trusting, "not-this-server.example")
            .await
            .expect_err("a client expecting another name connected");
        assert!(error.to_string().contains("not valid for name"), "{error}");
        assert!(server.await.unwrap().is_err());
    })
    .await;
}

#[tokio::test]
async fn the_client_certificate_subject_is_reported_and_optional_unless_required() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let pki = new_pki(&dir, "app-one");
        let optional = Tls::load(pki.server_settings_with_client_ca(false)).unwrap();

        let (addr, server) = serve(&optional).await;
        let mut client = connect_tls(addr, pki.client_config(true).unwrap(), SERVER_DNS_NAME)
            .await
            .unwrap();
        assert_eq!(
            round_trip(&mut client, b"AMQP\x03\x01\x00\x00").await,
            b"AMQP\x03\x01\x00\x00"
        );
        client.shutdown().await.unwrap();
        let peer = server.await.unwrap().unwrap();
        assert_eq!(peer.client_subject.as_deref(), Some("app-one"));

        let (addr, server) = serve(&optional).await;
        let mut client = connect_tls(addr, pki.client_config(false).unwrap(), SERVER_DNS_NAME)
            .await
            .unwrap();
        assert_eq!(round_trip(&mut client, b"x").await, b"x");
        client.shutdown().await.unwrap();
        assert_eq!(server.await.unwrap().unwrap().client_subject, None);

        let required = Tls::load(pki.server_settings_with_client_ca(true)).unwrap();
        let (addr, server) = serve(&required).await;
        // In TLS 1.3 the client finishes its side before the server checks it, so the
        // refusal may show on the client's first read rather than in connect.
        if let Ok(mut client) =
            connect_tls(addr, pki.client_config(false).unwrap(), SERVER_DNS_NAME).await
        {
            let _ = client.write_all(b"AMQP\x03\x01\x00\x00").await;
            let mut byte = [0u8; 1];
            assert!(
                !matches!(client.read(&mut byte).await, Ok(1)),
                "a client without a certificate got data"
            );
        }
        assert!(matches!(server.await.unwrap(), Err(TransportError::Tls(_))));

        // And with one, the required configuration lets it in.
        let (addr, server) = serve(&required).await;
        let mut client = connect_tls(addr, pki.client_config(true).unwrap(), SERVER_DNS_NAME)
            .await
            .unwrap();
        assert_eq!(round_trip(&mut client, b"y").await, b"y");
        client.shutdown().await.unwrap();
        assert_eq!(
            server.await.unwrap().unwrap().client_subject.as_deref(),
            Some("app-one")
        );
    })
    .await;
}

#[tokio::test]
async fn the_self_signed_provider_writes_a_ca_clients_can_trust() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let ca_out = dir.path().join("self-signed-ca.pem");
        let tls = Tls::load(TlsSettings {
            cert: CertSource::SelfSigned {
                hostnames: vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
                ca_out: ca_out.clone(),
            },
            client_ca: None,
            client_cert_required: false,
        })
        .unwrap();
        // Nothing on disk to reload.
        assert!(!tls.reload_if_changed().unwrap());
        let (addr, server) = serve(&tls).await;
        let config = client_config_trusting(&ca_out).unwrap();
        let mut client = connect_tls(addr, config, SERVER_DNS_NAME).await.unwrap();
        assert_eq!(round_trip(&mut client, b"hello").await, b"hello");
        client.shutdown().await.unwrap();
        server.await.unwrap().unwrap();
    })
    .await;
}

#[test]
fn the_self_signed_provider_needs_a_hostname() {
    let dir = tempfile::tempdir().unwrap();
    let result = Tls::load(TlsSettings {
        cert: CertSource::SelfSigned {
            hostnames: Vec::new(),
            ca_out: dir.path().join("ca.pem"),
        },
        client_ca: None,
        client_cert_required: false,
    });
    assert!(matches!(result, Err(TransportError::SelfSignedNoHostnames)));
}
