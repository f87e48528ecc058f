//! Loading errors that name the file, and swapping the certificate while serving: by
//! `reload_if_changed`, through a Kubernetes-style `..data` symlink, and by `watch`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{bounded, connect_tls, echo_once, listen, round_trip};
use sluice_transport::testing::{SERVER_DNS_NAME, TestPki};
use sluice_transport::{CertSource, Tls, TlsSettings, TransportError, accept_amqps};
use tokio::io::AsyncWriteExt;

fn files(cert: &Path, key: &Path) -> TlsSettings {
    TlsSettings {
        cert: CertSource::Files {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        },
        client_ca: None,
        client_cert_required: false,
    }
}

/// Whether a client with `pki`'s CA completes a round trip with a server using `tls`.
async fn connects(tls: &Tls, pki: &TestPki) -> bool {
    let (listener, addr) = listen().await;
    let serving = tls.clone();
    let server = echo_once(listener, move |tcp| async move {
        accept_amqps(tcp, &serving).await
    });
    let config = pki.client_config(false).unwrap();
    let ok = match connect_tls(addr, config, SERVER_DNS_NAME).await {
        Ok(mut client) => {
            assert_eq!(round_trip(&mut client, b"ping").await, b"ping");
            client.shutdown().await.unwrap();
            true
        }
        Err(_) => false,
    };
    assert_eq!(server.await.unwrap().is_ok(), ok);
    ok
}

/// Two PKIs with different CAs, and a directory the server's files live in.
struct TwoPkis {
    first: TestPki,
    second: TestPki,
    served: tempfile::TempDir,
    _dirs: [tempfile::TempDir; 2],
}

impl TwoPkis {
    fn new() -> TwoPkis {
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        TwoPkis {
            first: TestPki::generate(dirs[0].path(), "unused").unwrap(),
            second: TestPki::generate(dirs[1].path(), "unused").unwrap(),
            served: tempfile::tempdir().unwrap(),
            _dirs: dirs,
        }
    }

    /// `tls.crt` and `tls.key` in the served directory, holding `pki`'s server files.
    fn serve_files_of(&self, pki: &TestPki) -> (PathBuf, PathBuf) {
        let cert = self.served.path().join("tls.crt");
        let key = self.served.path().join("tls.key");
        std::fs::copy(&pki.server_cert, &cert).unwrap();
        std::fs::copy(&pki.server_key, &key).unwrap();
        (cert, key)
    }
}

#[test]
fn load_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(dir.path(), "unused").unwrap();
    let missing = dir.path().join("missing.pem");

    let error = Tls::load(files(&missing, &pki.server_key)).unwrap_err();
    assert!(matches!(&error, TransportError::CertificateFileRead { path, .. } if path == &missing));
    assert!(error.to_string().contains("missing.pem"), "{error}");

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not PEM at all\n").unwrap();
    let error = Tls::load(files(&garbage, &pki.server_key)).unwrap_err();
    assert!(matches!(&error, TransportError::BadCertificateFile { path, .. } if path == &garbage));
    let error = Tls::load(files(&pki.server_cert, &garbage)).unwrap_err();
    assert!(matches!(&error, TransportError::BadCertificateFile { path, .. } if path == &garbage));
    assert!(error.to_string().contains("garbage.pem"), "{error}");

    // The client key does not belong to the server certificate.
    let error = Tls::load(files(&pki.server_cert, &pki.client_key)).unwrap_err();
    assert!(
        matches!(error, TransportError::CertificateRejected { .. }),
        "{error}"
    );

    let mut with_bad_ca = pki.server_settings_with_client_ca(true);
    with_bad_ca.client_ca = Some(garbage.clone());
    let error = Tls::load(with_bad_ca).unwrap_err();
    assert!(matches!(&error, TransportError::BadCertificateFile { path, .. } if path == &garbage));
}

#[tokio::test]
async fn a_changed_certificate_is_served_and_an_invalid_one_keeps_the_old() {
    bounded(async {
        let pkis = TwoPkis::new();
        let (first, second) = (&pkis.first, &pkis.second);
        let (cert, key) = pkis.serve_files_of(first);

        let tls = Tls::load(files(&cert, &key)).unwrap();
        assert!(!tls.reload_if_changed().unwrap(), "nothing changed yet");
        assert!(connects(&tls, first).await);
        assert!(!connects(&tls, second).await);

        pkis.serve_files_of(second);
        assert!(tls.reload_if_changed().unwrap());
        assert!(!tls.reload_if_changed().unwrap(), "reloaded twice");
        assert!(connects(&tls, second).await);
        assert!(!connects(&tls, first).await);

        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nbroken\n").unwrap();
        let error = tls.reload_if_changed().unwrap_err();
        assert!(matches!(&error, TransportError::BadCertificateFile { path, .. } if path == &cert));
        assert!(
            connects(&tls, second).await,
            "the old configuration stays in use"
        );

        // A certificate with a key from another PKI: refused as a pair, old config kept.
        std::fs::copy(&second.server_cert, &cert).unwrap();
        std::fs::copy(&first.server_key, &key).unwrap();
        assert!(matches!(
            tls.reload_if_changed(),
            Err(TransportError::CertificateRejected { .. })
        ));
        assert!(connects(&tls, second).await);
    })
    .await;
}

/// A mounted Secret: `tls.crt -> ..data/tls.crt`, `..data -> ..v1`; an update writes `..v2`
/// and renames a new `..data` link over the old one.
#[tokio::test]
async fn a_kubernetes_secret_swap_through_the_data_symlink_is_picked_up() {
    bounded(async {
        let pkis = TwoPkis::new();
        let (first, second) = (&pkis.first, &pkis.second);
        let mount = &pkis.served;
        let write_version = |name: &str, pki: &TestPki| {
            let version = mount.path().join(name);
            std::fs::create_dir(&version).unwrap();
            std::fs::copy(&pki.server_cert, version.join("tls.crt")).unwrap();
            std::fs::copy(&pki.server_key, version.join("tls.key")).unwrap();
        };
        write_version("..v1", first);
        symlink("..v1", mount.path().join("..data")).unwrap();
        symlink("..data/tls.crt", mount.path().join("tls.crt")).unwrap();
        symlink("..data/tls.key", mount.path().join("tls.key")).unwrap();

        let tls = Tls::load(files(
            &mount.path().join("tls.crt"),
            &mount.path().join("tls.key"),
        ))
        .unwrap();
        assert!(connects(&tls, first).await);

        write_version("..v2", second);
        symlink("..v2", mount.path().join("..data_tmp")).unwrap();
        std::fs::rename(mount.path().join("..data_tmp"), mount.path().join("..data")).unwrap();
        assert!(tls.reload_if_changed().unwrap());
        assert!(connects(&tls, second).await);
    })
    .await;
}

#[tokio::test]
async fn watch_reloads_on_its_own() {
    bounded(async {
        let pkis = TwoPkis::new();
        let (first, second) = (&pkis.first, &pkis.second);
        let (cert, key) = pkis.serve_files_of(first);
        let tls = Tls::load(files(&cert, &key)).unwrap();
        // Zero is raised to RELOAD_INTERVAL_MIN rather than panicking in tokio.
        let watcher = tls.watch(Duration::ZERO);

        pkis.serve_files_of(second);
        // Bounded in count (and by the test timeout); no assertion on how long it takes.
        let mut attempts = 0;
        while !connects(&tls, second).await {
            attempts += 1;
            assert!(attempts < 400, "the watcher never reloaded");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Nothing left for the next tick to reload.
        assert!(!tls.reload_if_changed().unwrap());
        watcher.abort();
    })
    .await;
}
