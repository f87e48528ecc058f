//! Finding the API server: kubeconfig files and the in-cluster files, checked by reviewing a
//! token against the fake API server with what they yield.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{API, fake};
use sluice_tokenreview::testing::FakeApiServer;
use sluice_tokenreview::{
    ApiServer, Credential, KubeconfigOptions, ReviewError, Reviewer, ReviewerSettings,
    in_cluster_from,
};

async fn works(server: ApiServer) {
    let reviewed = Reviewer::new(server, ReviewerSettings::default())
        .unwrap()
        .review("tok-a")
        .await
        .unwrap();
    assert_eq!(reviewed.username, "system:serviceaccount:ns:app");
}

fn config_error(error: ReviewError) -> (String, String, String) {
    match error {
        ReviewError::Config {
            file,
            field,
            reason,
        } => (file.display().to_string(), field, reason),
        other => panic!("not a config error: {other}"),
    }
}

/// A kubeconfig with one context whose cluster and user bodies are given.
fn write(dir: &Path, cluster: &str, user: &str) -> std::path::PathBuf {
    let path = dir.join("config");
    let yaml = format!(
        "apiVersion: v1\nkind: Config\npreferences: {{}}\ncurrent-context: dev\n\
         clusters:\n- name: c\n  cluster:\n{cluster}\
         contexts:\n- name: dev\n  context:\n    cluster: c\n    user: u\n    namespace: ns\n\
         users:\n- name: u\n  user:\n{user}"
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

fn cluster_with_ca_data(fake: &FakeApiServer) -> String {
    format!(
        "    server: {}\n    certificate-authority-data: {}\n    extensions: []\n",
        fake.base_url(),
        STANDARD.encode(fake.ca_pem())
    )
}

#[tokio::test]
async fn the_fakes_kubeconfig_is_read() {
    let fake = fake(&[("tok-a", "ns:app", &[API])]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = fake.kubeconfig(dir.path()).unwrap();
    let server = ApiServer::from_kubeconfig(&path).unwrap();
    assert_eq!(server.base_url(), fake.base_url());
    assert_eq!(
        server.credential(),
        &Credential::Token(fake.bearer_token().to_owned())
    );
    works(server).await;
    let discovered = ApiServer::discover(Some(&path)).unwrap().unwrap();
    assert_eq!(discovered.base_url(), fake.base_url());
}

#[tokio::test]
async fn relative_token_file_and_ca_paths_are_beside_the_kubeconfig() {
    let fake = fake(&[("tok-a", "ns:app", &[API])]).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("certs")).unwrap();
    std::fs::write(dir.path().join("certs/ca.pem"), fake.ca_pem()).unwrap();
    std::fs::write(dir.path().join("sa-token"), fake.bearer_token()).unwrap();
    let path = write(
        dir.path(),
        &format!(
            "    server: {}\n    certificate-authority: certs/ca.pem\n",
            fake.base_url()
        ),
        "    tokenFile: sa-token\n",
    );
    let server = ApiServer::from_kubeconfig(&path).unwrap();
    assert_eq!(
        server.credential(),
        &Credential::TokenFile(dir.path().join("sa-token"))
    );
    works(server).await;
}

#[tokio::test]
async fn client_certificate_data_and_files_are_read() {
    let fake = fake(&[("tok-a", "ns:app", &[API])]).await;
    let (cert, key) = fake.client_cert_pem();
    let dir = tempfile::tempdir().unwrap();
    let inline = write(
        dir.path(),
        &cluster_with_ca_data(&fake),
        &format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            STANDARD.encode(&cert),
            STANDARD.encode(&key)
        ),
    );
    works(ApiServer::from_kubeconfig(&inline).unwrap()).await;
    std::fs::write(dir.path().join("client.crt"), &cert).unwrap();
    std::fs::write(dir.path().join("client.key"), &key).unwrap();
    let files = write(
        dir.path(),
        &cluster_with_ca_data(&fake),
        "    client-certificate: client.crt\n    client-key: client.key\n",
    );
    works(ApiServer::from_kubeconfig(&files).unwrap()).await;
}

#[tokio::test]
async fn insecure_skip_tls_verify_needs_the_danger_option() {
    let fake = fake(&[("tok-a", "ns:app", &[API])]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        &format!(
            "    server: {}\n    insecure-skip-tls-verify: true\n",
            fake.base_url()
        ),
        &format!("    token: {}\n", fake.bearer_token()),
    );
    let (file, field, reason) = config_error(ApiServer::from_kubeconfig(&path).unwrap_err());
    assert!(file.ends_with("config"), "{file}");
    assert_eq!(field, "clusters[c].cluster.insecure-skip-tls-verify");
    assert!(reason.contains("refused"), "{reason}");
    let options = KubeconfigOptions {
        danger_accept_insecure_skip_tls_verify: true,
    };
    works(ApiServer::from_kubeconfig_with(&path, options).unwrap()).await;
}

#[test]
fn a_missing_current_context_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(&path, "apiVersion: v1\nkind: Config\nclusters: []\n").unwrap();
    let (file, field, reason) = config_error(ApiServer::from_kubeconfig(&path).unwrap_err());
    assert_eq!(file, path.display().to_string());
    assert_eq!(
        (field.as_str(), reason.as_str()),
        ("current-context", "not set")
    );
}

#[test]
fn missing_and_unsupported_parts_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let ca = format!(
        "    server: https://127.0.0.1:6443\n    certificate-authority-data: {}\n",
        STANDARD.encode("not pem")
    );
    let cases = [
        (
            "    server: https://127.0.0.1:6443\n    certificate-authority-data: e30=\n",
            "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: aws\n",
            "users[u].user.exec",
        ),
        (
            "    server: https://127.0.0.1:6443\n    certificate-authority-data: e30=\n",
            "    auth-provider:\n      name: oidc\n",
            "users[u].user.auth-provider",
        ),
        (
            "    server: https://127.0.0.1:6443\n",
            "    token: t\n",
            "clusters[c].cluster.certificate-authority-data",
        ),
        (
            ca.as_str(),
            "    token: t\n",
            "clusters[c].cluster.certificate-authority",
        ),
        (
            "    server: https://127.0.0.1:6443\n    certificate-authority: missing.pem\n",
            "    token: t\n",
            "clusters[c].cluster.certificate-authority",
        ),
        (
            "    server: http://127.0.0.1:6443\n    insecure-skip-tls-verify: true\n",
            "    token: t\n",
            "clusters[c].cluster.insecure-skip-tls-verify",
        ),
        (
            "    certificate-authority-data: e30=\n",
            "    token: t\n",
            "clusters[c].cluster.server",
        ),
        (
            "    server: https://127.0.0.1:6443\n    certificate-authority-data: e30=\n",
            "    client-certificate-data: e30=\n",
            "users[u].user.client-key-data",
        ),
        (
            "    server: https://127.0.0.1:6443\n    certificate-authority-data: e30=\n",
            "    username: admin\n    password: secret\n",
            "users[u].user.username",
        ),
        (
            "    server: https://127.0.0.1:6443\n    certificate-authority-data: e30=\n",
            "    {}\n",
            "users[u].user.token",
        ),
    ];
    for (cluster, user, wanted) in cases {
        let path = write(dir.path(), cluster, user);
        let (_, field, reason) = config_error(ApiServer::from_kubeconfig(&path).unwrap_err());
        assert_eq!(field, wanted, "{reason}\n{cluster}{user}");
    }
}

#[test]
fn a_context_naming_no_cluster_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(
        &path,
        "current-context: dev\ncontexts:\n- name: dev\n  context:\n    cluster: gone\n    user: u\n",
    )
    .unwrap();
    let (_, field, reason) = config_error(ApiServer::from_kubeconfig(&path).unwrap_err());
    assert_eq!(field, "clusters");
    assert!(reason.contains("\"gone\""), "{reason}");
    std::fs::write(&path, "current-context: [unclosed\n").unwrap();
    let (_, field, _) = config_error(ApiServer::from_kubeconfig(&path).unwrap_err());
    assert_eq!(field, "kubeconfig");
}

#[tokio::test]
async fn in_cluster_files_are_found_in_their_directory() {
    let fake = fake(&[("tok-a", "ns:app", &[API])]).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.crt"), fake.ca_pem()).unwrap();
    std::fs::write(dir.path().join("token"), fake.bearer_token()).unwrap();
    std::fs::write(dir.path().join("namespace"), "ns").unwrap();
    let port = fake.base_url().rsplit(':').next().unwrap().to_owned();
    let server = in_cluster_from(Some("127.0.0.1"), Some(&port), dir.path())
        .unwrap()
        .unwrap();
    assert_eq!(server.base_url(), fake.base_url());
    assert_eq!(
        server.credential(),
        &Credential::TokenFile(dir.path().join("token"))
    );
    works(server).await;
    std::fs::remove_file(dir.path().join("token")).unwrap();
    let (file, _, _) =
        config_error(in_cluster_from(Some("127.0.0.1"), Some(&port), dir.path()).unwrap_err());
    assert!(file.ends_with("token"), "{file}");
}
