//! Reading a kubeconfig file (`kind: Config`) as kubectl does, for the parts Sluice needs: the
//! current context's cluster (`server`, CA, `tls-server-name`) and user (token, token file or
//! client certificate). Unknown fields are ignored, as kubectl ignores them; what Sluice
//! cannot honour (exec and auth-provider plugins, proxies, basic auth, skipping TLS
//! verification without the `danger_` option) is refused with the field named.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use crate::ReviewError;
use crate::files::{CONFIG_FILE_BYTES_MAX, read_bounded};
use crate::server::{ApiServer, Credential, ServerTrust, parse_ca};

/// Options for [`ApiServer::from_kubeconfig_with`].
#[derive(Debug, Clone, Copy, Default)]
pub struct KubeconfigOptions {
    /// Honour `insecure-skip-tls-verify: true`: the API server's certificate is then not
    /// checked, so anyone on the path can answer every review. Off by default.
    pub danger_accept_insecure_skip_tls_verify: bool,
}

#[derive(Deserialize)]
struct Kubeconfig {
    #[serde(rename = "current-context", default)]
    current_context: Option<String>,
    #[serde(default)]
    clusters: Vec<Named<Cluster>>,
    #[serde(default)]
    contexts: Vec<Named<Context>>,
    #[serde(default)]
    users: Vec<Named<User>>,
}

#[derive(Deserialize)]
#[serde(bound = "T: Deserialize<'de>")]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "context", alias = "user")]
    #[serde(default)]
    item: Option<T>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Cluster {
    #[serde(default)]
    server: Option<String>,
    #[serde(default)]
    certificate_authority: Option<PathBuf>,
    #[serde(default)]
    certificate_authority_data: Option<String>,
    #[serde(default)]
    insecure_skip_tls_verify: bool,
    #[serde(default)]
    tls_server_name: Option<String>,
    #[serde(default)]
    proxy_url: Option<String>,
}

#[derive(Deserialize)]
struct Context {
    #[serde(default)]
    cluster: Option<String>,
    #[serde(default)]
    user: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct User {
    #[serde(default)]
    token: Option<String>,
    #[serde(rename = "tokenFile", default)]
    token_file: Option<PathBuf>,
    #[serde(default)]
    client_certificate: Option<PathBuf>,
    #[serde(default)]
    client_certificate_data: Option<String>,
    #[serde(default)]
    client_key: Option<PathBuf>,
    #[serde(default)]
    client_key_data: Option<String>,
    #[serde(default)]
    exec: Option<serde_json::Value>,
    #[serde(rename = "auth-provider", default)]
    auth_provider: Option<serde_json::Value>,
    #[serde(default)]
    username: Option<String>,
}

/// Everything about one kubeconfig file that errors need.
struct Source<'a> {
    path: &'a Path,
    dir: PathBuf,
}

impl Source<'_> {
    fn error(&self, field: impl Into<String>, reason: impl Into<String>) -> ReviewError {
        ReviewError::config(self.path, field, reason)
    }

    /// A path in the file, relative to the file's directory.
    fn resolve(&self, path: &Path) -> PathBuf {
        self.dir.join(path)
    }

    /// An inline `*-data` field (base64) or the file a path field names.
    fn data_or_file(
        &self,
        data: Option<&str>,
        file: Option<&Path>,
        data_field: &str,
        file_field: &str,
    ) -> Result<Option<Vec<u8>>, ReviewError> {
        match (data, file) {
            (Some(data), _) => {
                let compact: String = data.split_whitespace().collect();
                STANDARD
                    .decode(compact)
                    .map(Some)
                    .map_err(|error| self.error(data_field, format!("not base64: {error}")))
            }
            (None, Some(file)) => {
                read_bounded(&self.resolve(file), file_field, CONFIG_FILE_BYTES_MAX).map(Some)
            }
            (None, None) => Ok(None),
        }
    }
}

/// Reads the kubeconfig at `path`.
pub(crate) fn load(path: &Path, options: KubeconfigOptions) -> Result<ApiServer, ReviewError> {
    let bytes = read_bounded(path, "kubeconfig", CONFIG_FILE_BYTES_MAX)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ReviewError::config(path, "kubeconfig", "the file is not UTF-8"))?;
    let config: Kubeconfig = serde_saphyr::from_str(text).map_err(|error| {
        ReviewError::config(
            path,
            "kubeconfig",
            format!("not YAML of a kubeconfig: {error}"),
        )
    })?;
    let source = Source {
        path,
        dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let context_name = config
        .current_context
        .as_deref()
        .filter(|name| !name.is_empty())
        .ok_or_else(|| source.error("current-context", "not set"))?;
    let context = find(&config.contexts, context_name)
        .ok_or_else(|| source.error("contexts", format!("no context named {context_name:?}")))?;
    let field = format!("contexts[{context_name}].context");
    let cluster_name = context
        .cluster
        .as_deref()
        .ok_or_else(|| source.error(format!("{field}.cluster"), "not set"))?;
    let user_name = context
        .user
        .as_deref()
        .ok_or_else(|| source.error(format!("{field}.user"), "not set"))?;
    let cluster = find(&config.clusters, cluster_name)
        .ok_or_else(|| source.error("clusters", format!("no cluster named {cluster_name:?}")))?;
    let user = find(&config.users, user_name)
        .ok_or_else(|| source.error("users", format!("no user named {user_name:?}")))?;
    let server = server(
        &source,
        cluster_name,
        cluster,
        options,
        user_credential(&source, user_name, user)?,
    )?;
    Ok(server)
}

fn find<'a, T>(items: &'a [Named<T>], name: &str) -> Option<&'a T> {
    items
        .iter()
        .find(|named| named.name == name)
        .and_then(|named| named.item.as_ref())
}

fn server(
    source: &Source<'_>,
    name: &str,
    cluster: &Cluster,
    options: KubeconfigOptions,
    credential: Credential,
) -> Result<ApiServer, ReviewError> {
    let field = |suffix: &str| format!("clusters[{name}].cluster.{suffix}");
    if cluster.proxy_url.is_some() {
        return Err(source.error(field("proxy-url"), "proxies are not supported"));
    }
    let url = cluster
        .server
        .as_deref()
        .ok_or_else(|| source.error(field("server"), "not set"))?;
    let ca = source.data_or_file(
        cluster.certificate_authority_data.as_deref(),
        cluster.certificate_authority.as_deref(),
        &field("certificate-authority-data"),
        &field("certificate-authority"),
    )?;
    let trust = match (cluster.insecure_skip_tls_verify, ca) {
        (true, _) if !options.danger_accept_insecure_skip_tls_verify => {
            return Err(source.error(
                field("insecure-skip-tls-verify"),
                "refused: the API server's certificate would not be checked \
                 (danger_accept_insecure_skip_tls_verify allows it)",
            ));
        }
        (true, _) => ServerTrust::DangerAcceptAny,
        (false, Some(pem)) => ServerTrust::Ca(parse_ca(
            &pem,
            source.path,
            &field("certificate-authority"),
        )?),
        (false, None) => {
            return Err(source.error(
                field("certificate-authority-data"),
                "not set (nor certificate-authority): Sluice has no system CA store",
            ));
        }
    };
    let mut server = ApiServer::build(
        url,
        trust,
        credential,
        source.path.to_path_buf(),
        &field("server"),
    )?;
    if let Some(tls_name) = cluster.tls_server_name.as_deref() {
        server = server.with_tls_server_name(tls_name)?;
    }
    Ok(server)
}

fn user_credential(
    source: &Source<'_>,
    name: &str,
    user: &User,
) -> Result<Credential, ReviewError> {
    let field = |suffix: &str| format!("users[{name}].user.{suffix}");
    if user.exec.is_some() {
        return Err(source.error(
            field("exec"),
            "exec credential plugins are not supported: give a token, tokenFile or client certificate",
        ));
    }
    if user.auth_provider.is_some() {
        return Err(source.error(
            field("auth-provider"),
            "auth-provider plugins are not supported",
        ));
    }
    if user.username.is_some() {
        return Err(source.error(field("username"), "basic authentication is not supported"));
    }
    let cert = source.data_or_file(
        user.client_certificate_data.as_deref(),
        user.client_certificate.as_deref(),
        &field("client-certificate-data"),
        &field("client-certificate"),
    )?;
    let key = source.data_or_file(
        user.client_key_data.as_deref(),
        user.client_key.as_deref(),
        &field("client-key-data"),
        &field("client-key"),
    )?;
    let has_token = user.token.is_some() || user.token_file.is_some();
    match (cert, key) {
        (Some(_), Some(_)) if has_token => Err(source.error(
            field("token"),
            "both a token and a client certificate are given; Sluice uses one",
        )),
        (Some(cert_pem), Some(key_pem)) => Ok(Credential::ClientCert { cert_pem, key_pem }),
        (Some(_), None) => Err(source.error(field("client-key-data"), "a client certificate needs its key")),
        (None, Some(_)) => Err(source.error(field("client-certificate-data"), "a client key needs its certificate")),
        // As client-go: a token file, when given, wins over an inline token.
        (None, None) => match (&user.token_file, &user.token) {
            (Some(file), _) => Ok(Credential::TokenFile(source.resolve(file))),
            (None, Some(token)) if !token.trim().is_empty() => Ok(Credential::Token(token.trim().to_owned())),
            _ => Err(source.error(
                field("token"),
                "no credential: give token, tokenFile or client-certificate(-data) with client-key(-data)",
            )),
        },
    }
}
