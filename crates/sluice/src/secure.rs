//! The security settings of `sluice serve`: the TLS certificate and the extra listeners, the
//! authentication service and its users, the Kubernetes API server that reviews
//! service-account tokens, the external authentication server, and the SAS keys of `$cbs`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use sluice_auth::{AuthSettings, Rights, SasKey, Service, Users};
use sluice_config::ResolvedAddressSpace;
use sluice_config::resources::{
    AddressSpaceType, AuthenticationServiceType, UserAuthenticationType,
};
use sluice_transport::{CertSource, Tls, TlsSettings};
use tokio::sync::watch;

/// How often certificate files are checked for a change.
const CERT_WATCH_INTERVAL: Duration = Duration::from_secs(10);

/// The security arguments of `sluice serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct SecurityArgs {
    /// Address to listen on for AMQP over TLS (EnMasse's `amqps`, port 5671).
    #[arg(long, value_name = "ADDR")]
    amqps: Option<SocketAddr>,
    /// Address to listen on for AMQP over WebSockets over TLS (EnMasse's `messaging-wss`,
    /// port 8443), subprotocol `amqp`.
    #[arg(long, value_name = "ADDR")]
    amqp_wss: Option<SocketAddr>,
    /// The server certificate chain (PEM; EnMasse's `certBundle` provider). Re-read when it
    /// changes. Without it, a self-signed certificate is made at start.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The server certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Where the self-signed provider writes its CA certificate, for clients to trust
    /// (default: ca.crt in --data-dir).
    #[arg(long, value_name = "FILE")]
    tls_ca_out: Option<PathBuf>,
    /// Host names (or IP addresses) the self-signed certificate is for (default: localhost,
    /// 127.0.0.1 and this machine's host name).
    #[arg(long = "tls-hostname", value_name = "NAME")]
    tls_hostnames: Vec<String>,
    /// Verify client certificates against this CA bundle (PEM): a verified certificate's
    /// subject can then authenticate with SASL EXTERNAL.
    #[arg(long, value_name = "FILE")]
    tls_client_ca: Option<PathBuf>,
    /// With --tls-client-ca: refuse TLS clients without a certificate.
    #[arg(long, requires = "tls_client_ca")]
    tls_client_cert_required: bool,
    /// A kubeconfig naming the Kubernetes API server that reviews service-account tokens
    /// (default: $KUBECONFIG, else the in-cluster configuration).
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// The audience a service-account token must have. Without it the API server's default
    /// audience is used, so any token of the cluster for a MessagingUser's service account is
    /// accepted.
    #[arg(long, value_name = "NAME")]
    token_audience: Option<String>,
    /// Offer SASL PLAIN on connections without TLS although authentication is not `none`:
    /// passwords and tokens then cross the network in clear.
    #[arg(long)]
    danger_plain_without_tls: bool,
    /// A key that signs SAS tokens for `$cbs` put-token, as NAME=FILE (the file holds the
    /// key, e.g. a mounted Secret). Tokens it signs may send and receive on their audience.
    /// Repeatable.
    #[arg(long = "sas-key", value_name = "NAME=FILE")]
    sas_keys: Vec<String>,
    /// CA bundle to verify the external authentication server with (TLS to it; without it,
    /// plain TCP).
    #[arg(long, value_name = "FILE")]
    external_auth_ca: Option<PathBuf>,
    /// Client certificate and key (PEM) to present to the external authentication server.
    #[arg(long, value_names = ["CERT", "KEY"], num_args = 2, requires = "external_auth_ca")]
    external_auth_client_cert: Vec<PathBuf>,
    /// How long a failed authentication waits before its answer, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = sluice_broker::AUTH_FAILURE_DELAY.as_millis() as u64)]
    auth_failure_delay_ms: u64,
}

impl SecurityArgs {
    /// Whether a TLS certificate is needed.
    fn wants_tls(&self) -> bool {
        self.amqps.is_some() || self.amqp_wss.is_some() || self.tls_cert.is_some()
    }

    /// The TLS configuration, and a task re-reading certificate files.
    pub(crate) fn tls(&self, data_dir: Option<&Path>) -> anyhow::Result<Option<Tls>> {
        if !self.wants_tls() {
            return Ok(None);
        }
        let cert = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => CertSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ => {
                let ca_out = match (&self.tls_ca_out, data_dir) {
                    (Some(f), _) => f.clone(),
                    (None, Some(dir)) => dir.join("ca.crt"),
                    (None, None) => bail!(
                        "TLS without --tls-cert makes a self-signed certificate, and its CA must be written somewhere: give --tls-ca-out FILE or --data-dir"
                    ),
                };
                CertSource::SelfSigned {
                    hostnames: self.hostnames(),
                    ca_out,
                }
            }
        };
        let settings = TlsSettings {
            cert,
            client_ca: self.tls_client_ca.clone(),
            client_cert_required: self.tls_client_cert_required,
        };
        let tls = Tls::load(settings).context("loading the TLS certificate")?;
        Ok(Some(tls))
    }

    /// The CA certificate TLS clients trust: the self-signed one written out, or a `ca.crt`
    /// beside `--tls-cert` (as a Kubernetes TLS Secret made by cert-manager holds it).
    pub(crate) fn ca_cert(&self, data_dir: Option<&Path>) -> Option<PathBuf> {
        if !self.wants_tls() {
            return None;
        }
        match &self.tls_cert {
            Some(cert) => cert
                .parent()
                .map(|d| d.join("ca.crt"))
                .filter(|p| p.is_file()),
            None => self
                .tls_ca_out
                .clone()
                .or_else(|| data_dir.map(|d| d.join("ca.crt"))),
        }
    }

    fn hostnames(&self) -> Vec<String> {
        if !self.tls_hostnames.is_empty() {
            return self.tls_hostnames.clone();
        }
        let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
            let host = host.trim();
            if !host.is_empty() && host != "localhost" {
                names.push(host.to_string());
            }
        }
        names
    }

    pub(crate) fn amqps(&self) -> Option<SocketAddr> {
        self.amqps
    }

    pub(crate) fn amqp_wss(&self) -> Option<SocketAddr> {
        self.amqp_wss
    }

    /// Starts re-reading the certificate files when they change.
    pub(crate) fn watch(tls: &Tls) {
        drop(tls.watch(CERT_WATCH_INTERVAL));
    }

    /// The authentication settings for `space`.
    pub(crate) fn settings(&self, space: &ResolvedAddressSpace) -> AuthSettings {
        AuthSettings {
            service: service(space),
            danger_plain_without_tls: self.danger_plain_without_tls,
            scram_iterations: sluice_auth::SCRAM_ITERATIONS_DEFAULT,
            // The Azure SDKs authenticate with ANONYMOUS and then a SAS token on `$cbs`:
            // offered (with no right of its own) only when SAS keys are given.
            anonymous_claims: !self.sas_keys.is_empty(),
        }
    }

    /// Everything the connections need to authenticate and authorize, and the sender a
    /// reload gives new users to.
    pub(crate) fn security(
        &self,
        space: &ResolvedAddressSpace,
    ) -> anyhow::Result<(sluice_broker::Security, watch::Sender<Arc<Users>>)> {
        let settings = self.settings(space);
        let users = users(space, &settings)?;
        let service_accounts = space.users.iter().any(|u| {
            u.resource.spec.authentication.auth_type == UserAuthenticationType::Serviceaccount
        });
        let reviewer = self.reviewer(service_accounts)?;
        let external = match settings.service {
            Service::External => Some(self.external(space)?),
            _ => None,
        };
        tracing::info!(
            service = ?settings.service,
            users = users.len(),
            tls_required_for_plain = !self.danger_plain_without_tls,
            "authentication"
        );
        if self.danger_plain_without_tls && settings.service != Service::None {
            tracing::warn!(
                "--danger-plain-without-tls: SASL PLAIN is offered without TLS, so passwords and tokens cross the network in clear"
            );
        }
        let (tx, rx) = watch::channel(Arc::new(users));
        let security = sluice_broker::Security {
            settings,
            users: rx,
            reviewer,
            external,
            sas_keys: Arc::new(self.sas_keys(space.space_type)?),
            failure_delay: Duration::from_millis(self.auth_failure_delay_ms),
            space_type: space.space_type,
        };
        Ok((security, tx))
    }

    fn reviewer(&self, needed: bool) -> anyhow::Result<Option<sluice_tokenreview::Reviewer>> {
        let server = sluice_tokenreview::ApiServer::discover(self.kubeconfig.as_deref())
            .context("finding the Kubernetes API server (for service-account tokens)")?;
        let Some(server) = server else {
            if needed {
                tracing::warn!(
                    "service-account users are configured, but there is no Kubernetes API server to review their tokens (not in a cluster, no --kubeconfig or KUBECONFIG): they cannot log in"
                );
            }
            return Ok(None);
        };
        let settings = sluice_tokenreview::ReviewerSettings {
            audience: self.token_audience.clone(),
            ..sluice_tokenreview::ReviewerSettings::default()
        };
        if let Some(warning) = sluice_tokenreview::audience_warning(&settings) {
            tracing::warn!("{warning}");
        }
        tracing::info!(api_server = server.base_url(), audience = ?settings.audience, "service-account tokens are reviewed by the Kubernetes API server");
        let reviewer = sluice_tokenreview::Reviewer::new(server, settings)
            .context("setting up the TokenReview client")?;
        Ok(Some(reviewer))
    }

    fn external(
        &self,
        space: &ResolvedAddressSpace,
    ) -> anyhow::Result<sluice_extauth::ExternalServer> {
        let service = space
            .authentication_service
            .as_ref()
            .context("authentication type external needs an AuthenticationService")?;
        let Some(external) = &service.resource.spec.external else {
            bail!(
                "{} (document {}): AuthenticationService {} of type external has no spec.external (host and port)",
                service.origin.file,
                service.origin.document,
                service.resource.metadata.name
            );
        };
        let realm = service.resource.spec.realm.clone().or_else(|| {
            let ns = space.space.resource.metadata.namespace.as_deref();
            Some(match ns {
                Some(ns) => format!("{ns}-{}", space.name),
                None => space.name.clone(),
            })
        });
        let tls = self
            .external_auth_ca
            .as_ref()
            .map(|ca| sluice_extauth::ExternalTls {
                ca: ca.clone(),
                client_cert: match self.external_auth_client_cert.as_slice() {
                    [cert, key] => Some((cert.clone(), key.clone())),
                    _ => None,
                },
            });
        Ok(sluice_extauth::ExternalServer {
            host: external.host.clone(),
            port: external.port,
            realm,
            tls,
            timeout: sluice_extauth::TIMEOUT_DEFAULT,
        })
    }

    fn sas_keys(&self, space: AddressSpaceType) -> anyhow::Result<Vec<SasKey>> {
        self.sas_keys
            .iter()
            .map(|spec| {
                let (name, file) = spec
                    .split_once('=')
                    .with_context(|| format!("--sas-key {spec:?}: write NAME=FILE"))?;
                let key = std::fs::read_to_string(file)
                    .with_context(|| format!("--sas-key {name}: reading {file}"))?;
                let key = key.trim();
                if name.is_empty() || key.is_empty() {
                    bail!("--sas-key {spec:?}: the name and the key must not be empty");
                }
                let mut rights = Rights::new();
                rights.grant("*", true, true, space);
                Ok(SasKey {
                    name: name.to_string(),
                    key: key.as_bytes().to_vec(),
                    rights,
                })
            })
            .collect()
    }
}

/// The space's authentication service. Without one named, EnMasse filled in a default; here
/// it is `standard` when the space has MessagingUsers (they are then enforced) and `none`
/// otherwise, and the log says which.
fn service(space: &ResolvedAddressSpace) -> Service {
    let named = space.authentication_service.as_ref().map(|s| {
        let overridden = space
            .space
            .resource
            .spec
            .authentication_service
            .as_ref()
            .and_then(|r| r.service_type);
        overridden.unwrap_or(s.resource.spec.service_type)
    });
    match named {
        Some(AuthenticationServiceType::None) => Service::None,
        Some(AuthenticationServiceType::Standard) => Service::Standard,
        Some(AuthenticationServiceType::External) => Service::External,
        None if space.users.is_empty() => {
            tracing::warn!(
                "the address space names no authenticationService and has no MessagingUser: anyone may connect, with every right (as type none)"
            );
            Service::None
        }
        None => {
            tracing::info!(
                "the address space names no authenticationService: its MessagingUsers are enforced (as type standard)"
            );
            Service::Standard
        }
    }
}

/// The users of `space`, with salted password hashes made from fresh random salts.
pub(crate) fn users(
    space: &ResolvedAddressSpace,
    settings: &AuthSettings,
) -> anyhow::Result<Users> {
    let mut failed = None;
    let mut random = |buf: &mut [u8]| {
        if let Err(e) = getrandom::fill(buf) {
            failed = Some(e);
        }
    };
    let users =
        Users::from_space(space, settings, &mut random).context("loading the MessagingUsers")?;
    // Without the OS's randomness no salt or secret can be made, and nothing is served.
    if let Some(e) = failed {
        bail!("no randomness from the operating system for password salts: {e}");
    }
    Ok(users)
}
