//! Where the API server is and how Sluice authenticates to it: [`ApiServer`], built from the
//! in-cluster files, a kubeconfig, or by hand.

use std::ffi::OsStr;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::ReviewError;
use crate::files::{CONFIG_FILE_BYTES_MAX, read_bounded, read_token_file};

/// Where a service account's files are mounted in a pod.
pub const IN_CLUSTER_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// How Sluice authenticates itself to the API server.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// A bearer token read from this file at every request (the projected service-account
    /// token rotates), e.g. `/var/run/secrets/kubernetes.io/serviceaccount/token`.
    TokenFile(PathBuf),
    /// A bearer token given inline (kubeconfig `user.token`).
    Token(String),
    /// A client certificate chain and its key, PEM (kubeconfig `client-certificate(-data)` and
    /// `client-key(-data)`).
    ClientCert {
        /// The certificate chain, leaf first.
        cert_pem: Vec<u8>,
        /// The private key (PKCS#8, PKCS#1 or SEC1).
        key_pem: Vec<u8>,
    },
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::TokenFile(path) => f.debug_tuple("TokenFile").field(path).finish(),
            Credential::Token(_) => f.write_str("Token(<redacted>)"),
            Credential::ClientCert { cert_pem, .. } => f
                .debug_struct("ClientCert")
                .field("cert_pem_bytes", &cert_pem.len())
                .field("key_pem", &"<redacted>")
                .finish(),
        }
    }
}

/// How the API server's certificate is checked.
#[derive(Debug, Clone)]
pub(crate) enum ServerTrust {
    /// Against these CA certificates.
    Ca(Vec<CertificateDer<'static>>),
    /// Not at all (kubeconfig `insecure-skip-tls-verify`, only with the `danger_` option).
    DangerAcceptAny,
}

/// Where the API server is and how Sluice authenticates to it.
#[derive(Debug, Clone)]
pub struct ApiServer {
    base_url: String,
    /// The host to connect to (an IPv6 literal without brackets).
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The path the API lives under (empty, or e.g. `/k8s/clusters/c-1` behind a proxy).
    pub(crate) path_prefix: String,
    /// The name the server's certificate must carry.
    pub(crate) server_name: ServerName<'static>,
    pub(crate) trust: ServerTrust,
    pub(crate) credential: Credential,
    /// Where this configuration came from, for error messages.
    pub(crate) origin: PathBuf,
}

impl ApiServer {
    /// An API server at `base_url` (`https://host[:port][/prefix]`) whose certificate is
    /// checked against the CA certificates in `ca_pem`.
    pub fn new(
        base_url: &str,
        ca_pem: &[u8],
        credential: Credential,
    ) -> Result<ApiServer, ReviewError> {
        let origin = PathBuf::from("<inline configuration>");
        let trust = ServerTrust::Ca(parse_ca(ca_pem, &origin, "certificate-authority")?);
        ApiServer::build(base_url, trust, credential, origin, "server")
    }

    /// Like [`ApiServer::new`] without checking the server's certificate at all: anyone on
    /// the path can then answer every review. Only for a development cluster.
    pub fn danger_without_server_verification(
        base_url: &str,
        credential: Credential,
    ) -> Result<ApiServer, ReviewError> {
        let origin = PathBuf::from("<inline configuration>");
        ApiServer::build(
            base_url,
            ServerTrust::DangerAcceptAny,
            credential,
            origin,
            "server",
        )
    }

    /// Checks the server's certificate for `name` instead of the URL's host (kubeconfig
    /// `tls-server-name`).
    pub fn with_tls_server_name(mut self, name: &str) -> Result<ApiServer, ReviewError> {
        self.server_name = ServerName::try_from(name.to_owned()).map_err(|_| {
            ReviewError::config(&self.origin, "tls-server-name", "not a DNS name or IP")
        })?;
        Ok(self)
    }

    pub(crate) fn build(
        base_url: &str,
        trust: ServerTrust,
        credential: Credential,
        origin: PathBuf,
        url_field: &str,
    ) -> Result<ApiServer, ReviewError> {
        let bad = |reason: &str| ReviewError::config(&origin, url_field, reason);
        let uri: hyper::Uri = base_url
            .parse()
            .map_err(|error| bad(&format!("{base_url:?} is not a URL: {error}")))?;
        if uri.scheme_str() != Some("https") {
            return Err(bad(&format!("{base_url:?} is not an https:// URL")));
        }
        if uri.query().is_some() {
            return Err(bad(&format!("{base_url:?} has a query")));
        }
        let host = uri
            .host()
            .ok_or_else(|| bad(&format!("{base_url:?} has no host")))?;
        let host = host
            .strip_prefix('[')
            .and_then(|inner| inner.strip_suffix(']'))
            .unwrap_or(host)
            .to_owned();
        let port = uri.port_u16().unwrap_or(443);
        let server_name = match host.parse::<IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(host.clone())
                .map_err(|_| bad(&format!("{host:?} is not a DNS name or IP")))?,
        };
        let path_prefix = uri.path().trim_end_matches('/').to_owned();
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        validate_credential(&credential, &origin)?;
        Ok(ApiServer {
            base_url: format!("https://{authority}{path_prefix}"),
            host,
            port,
            path_prefix,
            server_name,
            trust,
            credential,
            origin,
        })
    }

    /// In-cluster configuration: `KUBERNETES_SERVICE_HOST` / `KUBERNETES_SERVICE_PORT`, the
    /// token `/var/run/secrets/kubernetes.io/serviceaccount/token` and `ca.crt` beside it.
    /// `Ok(None)` when not in a cluster (the variables unset).
    pub fn in_cluster() -> Result<Option<ApiServer>, ReviewError> {
        let host = std::env::var("KUBERNETES_SERVICE_HOST").ok();
        let port = std::env::var("KUBERNETES_SERVICE_PORT").ok();
        in_cluster_from(host.as_deref(), port.as_deref(), Path::new(IN_CLUSTER_DIR))
    }

    /// A kubeconfig file: the current context's cluster and user. Refuses
    /// `insecure-skip-tls-verify` and exec or auth-provider plugins; see
    /// [`ApiServer::from_kubeconfig_with`].
    pub fn from_kubeconfig(path: &Path) -> Result<ApiServer, ReviewError> {
        crate::kubeconfig::load(path, crate::KubeconfigOptions::default())
    }

    /// [`ApiServer::from_kubeconfig`] with options.
    pub fn from_kubeconfig_with(
        path: &Path,
        options: crate::KubeconfigOptions,
    ) -> Result<ApiServer, ReviewError> {
        crate::kubeconfig::load(path, options)
    }

    /// `--kubeconfig PATH`, else `$KUBECONFIG` (its first path), else in-cluster, else
    /// `Ok(None)`.
    pub fn discover(kubeconfig: Option<&Path>) -> Result<Option<ApiServer>, ReviewError> {
        let env = std::env::var_os("KUBECONFIG");
        discover_from(kubeconfig, env.as_deref(), ApiServer::in_cluster)
    }

    /// The API server's URL, `https://host:port[/prefix]`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// How Sluice authenticates itself.
    pub fn credential(&self) -> &Credential {
        &self.credential
    }
}

/// [`ApiServer::in_cluster`] with the environment and directory passed in.
pub fn in_cluster_from(
    host: Option<&str>,
    port: Option<&str>,
    dir: &Path,
) -> Result<Option<ApiServer>, ReviewError> {
    let (Some(host), Some(port)) = (host, port) else {
        return Ok(None);
    };
    let (host, port) = (host.trim(), port.trim());
    if host.is_empty() || port.is_empty() {
        return Ok(None);
    }
    let url = if host.contains(':') {
        format!("https://[{host}]:{port}")
    } else {
        format!("https://{host}:{port}")
    };
    let ca_path = dir.join("ca.crt");
    let ca_pem = read_bounded(&ca_path, "ca.crt", CONFIG_FILE_BYTES_MAX)?;
    let trust = ServerTrust::Ca(parse_ca(&ca_pem, &ca_path, "ca.crt")?);
    let token_path = dir.join("token");
    let server = ApiServer::build(
        &url,
        trust,
        Credential::TokenFile(token_path),
        PathBuf::from("KUBERNETES_SERVICE_HOST"),
        "KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT",
    )?;
    Ok(Some(server))
}

/// [`ApiServer::discover`] with `$KUBECONFIG` and the in-cluster lookup passed in.
fn discover_from(
    kubeconfig: Option<&Path>,
    env: Option<&OsStr>,
    in_cluster: impl FnOnce() -> Result<Option<ApiServer>, ReviewError>,
) -> Result<Option<ApiServer>, ReviewError> {
    if let Some(path) = kubeconfig {
        return ApiServer::from_kubeconfig(path).map(Some);
    }
    if let Some(first) =
        env.and_then(|paths| std::env::split_paths(paths).find(|p| !p.as_os_str().is_empty()))
    {
        return ApiServer::from_kubeconfig(&first).map(Some);
    }
    in_cluster()
}

/// The CA certificates in `pem`; none at all is an error.
pub(crate) fn parse_ca(
    pem: &[u8],
    file: &Path,
    field: &str,
) -> Result<Vec<CertificateDer<'static>>, ReviewError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| ReviewError::config(file, field, format!("bad PEM: {error}")))?;
    if certs.is_empty() {
        return Err(ReviewError::config(
            file,
            field,
            "no CERTIFICATE in the PEM",
        ));
    }
    Ok(certs)
}

/// Checks what can be checked of a credential before the first request.
fn validate_credential(credential: &Credential, origin: &Path) -> Result<(), ReviewError> {
    match credential {
        Credential::TokenFile(path) => read_token_file(path, "token file").map(drop),
        Credential::Token(token) if token.trim().is_empty() => {
            Err(ReviewError::config(origin, "token", "the token is empty"))
        }
        Credential::Token(_) => Ok(()),
        Credential::ClientCert { cert_pem, key_pem } => {
            client_identity(cert_pem, key_pem, origin).map(drop)
        }
    }
}

/// The certificate chain and key of a [`Credential::ClientCert`].
pub(crate) fn client_identity(
    cert_pem: &[u8],
    key_pem: &[u8],
    origin: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ReviewError> {
    let chain = parse_ca(cert_pem, origin, "client-certificate")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|error| {
        ReviewError::config(origin, "client-key", format!("no private key: {error}"))
    })?;
    Ok((chain, key))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn server(url: &str) -> Result<ApiServer, ReviewError> {
        ApiServer::build(
            url,
            ServerTrust::DangerAcceptAny,
            Credential::Token("t".into()),
            PathBuf::from("test"),
            "server",
        )
    }

    #[test]
    fn parses_base_urls() {
        let s = server("https://example.org").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.base_url()),
            ("example.org", 443, "https://example.org:443")
        );
        let s = server("https://10.0.0.1:6443/").unwrap();
        assert_eq!((s.port, s.path_prefix.as_str()), (6443, ""));
        assert!(matches!(s.server_name, ServerName::IpAddress(_)));
        let s = server("https://[::1]:6443/k8s/clusters/c-1/").unwrap();
        assert_eq!(s.host, "::1");
        assert_eq!(s.base_url(), "https://[::1]:6443/k8s/clusters/c-1");
    }

    #[test]
    fn refuses_other_urls() {
        for url in [
            "http://example.org",
            "example.org",
            "https://",
            "https://h/?q=1",
        ] {
            let error = server(url).unwrap_err().to_string();
            assert!(error.contains("server"), "{url}: {error}");
        }
    }

    #[test]
    fn inline_tokens_are_redacted() {
        let shown = format!("{:?}", Credential::Token("secret-token".into()));
        assert_eq!(shown, "Token(<redacted>)");
        let shown = format!(
            "{:?}",
            Credential::ClientCert {
                cert_pem: vec![1],
                key_pem: b"secret-key".to_vec()
            }
        );
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn discover_prefers_the_flag_then_kubeconfig_then_in_cluster() {
        let missing = Path::new("/nonexistent/kubeconfig");
        let error = discover_from(Some(missing), Some(OsStr::new("/other")), || unreachable!())
            .unwrap_err();
        assert!(
            error.to_string().contains("/nonexistent/kubeconfig"),
            "{error}"
        );
        let error = discover_from(
            None,
            Some(OsStr::new(":/env/first:/env/second")),
            || unreachable!(),
        )
        .unwrap_err();
        assert!(error.to_string().contains("/env/first"), "{error}");
        assert!(discover_from(None, None, || Ok(None)).unwrap().is_none());
        assert!(
            discover_from(None, Some(OsStr::new("")), || Ok(None))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn not_in_a_cluster_without_the_variables() {
        let dir = Path::new("/nonexistent");
        assert!(in_cluster_from(None, Some("443"), dir).unwrap().is_none());
        assert!(
            in_cluster_from(Some("10.0.0.1"), None, dir)
                .unwrap()
                .is_none()
        );
        assert!(in_cluster_from(Some(""), Some(""), dir).unwrap().is_none());
        let error = in_cluster_from(Some("10.0.0.1"), Some("443"), dir).unwrap_err();
        assert!(error.to_string().contains("/nonexistent/ca.crt"), "{error}");
    }
}
