//! One HTTPS POST of JSON to the API server, on pooled HTTP/1.1 connections.
//!
//! Deliberately small: hyper's connection API and tokio-rustls rather than a full client. A
//! few idle connections are kept so a burst of reviews does not pay a TLS handshake each; a
//! request that fails on a reused connection (the server may have closed it while idle) is
//! tried once more on a new one, which is safe because a TokenReview changes nothing.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue, USER_AGENT};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::ReviewError;
use crate::files::read_token_file;
use crate::server::{ApiServer, Credential, ServerTrust, client_identity};

/// Idle connections kept to the API server.
pub(crate) const IDLE_CONNECTIONS_MAX: usize = 4;

/// The path of the TokenReview collection under the API's base.
pub const TOKENREVIEWS_PATH: &str = "/apis/authentication.k8s.io/v1/tokenreviews";

type Sender = SendRequest<Full<Bytes>>;

/// A client for one API server.
pub(crate) struct Client {
    server: ApiServer,
    tls: TlsConnector,
    idle: Mutex<Vec<Sender>>,
}

/// The API server's answer: its status code and body.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
}

impl Client {
    /// A client with the TLS configuration `server` asks for.
    pub(crate) fn new(server: ApiServer) -> Result<Client, ReviewError> {
        let config = tls_config(&server)?;
        Ok(Client {
            server,
            tls: TlsConnector::from(Arc::new(config)),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// The server this client talks to.
    pub(crate) fn server(&self) -> &ApiServer {
        &self.server
    }

    /// POSTs `body` (JSON) to the TokenReview collection and reads at most `response_bytes_max`
    /// of the answer.
    pub(crate) async fn post_review(
        &self,
        body: Bytes,
        response_bytes_max: usize,
    ) -> Result<Answer, ReviewError> {
        let authorization = self.authorization().await?;
        let pooled = self.take_idle();
        let reused = pooled.is_some();
        let mut sender = match pooled {
            Some(sender) => sender,
            None => self.connect().await?,
        };
        let request = self.request(body.clone(), authorization.as_ref())?;
        let response = match sender.send_request(request).await {
            Ok(response) => response,
            Err(_) if reused => {
                sender = self.connect().await?;
                let request = self.request(body, authorization.as_ref())?;
                sender.send_request(request).await.map_err(|error| {
                    ReviewError::Unavailable(format!("request to the API server failed: {error}"))
                })?
            }
            Err(error) => {
                return Err(ReviewError::Unavailable(format!(
                    "request to the API server failed: {error}"
                )));
            }
        };
        let status = response.status();
        let body = Limited::new(response.into_body(), response_bytes_max)
            .collect()
            .await
            .map_err(|error| {
                ReviewError::Unavailable(format!(
                    "reading the API server's answer failed (at most {response_bytes_max} bytes \
                     are read): {error}"
                ))
            })?
            .to_bytes();
        self.put_idle(sender);
        Ok(Answer { status, body })
    }

    /// The `Authorization` header for our own credential, read now (token files rotate).
    async fn authorization(&self) -> Result<Option<HeaderValue>, ReviewError> {
        let token = match &self.server.credential {
            Credential::ClientCert { .. } => return Ok(None),
            Credential::Token(token) => token.clone(),
            Credential::TokenFile(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || read_token_file(&path, "token file"))
                    .await
                    .map_err(|error| {
                        ReviewError::Unavailable(format!("reading our token file failed: {error}"))
                    })?
                    .map_err(|error| ReviewError::Unavailable(error.to_string()))?
            }
        };
        let mut value = HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| {
            ReviewError::Unavailable(
                "our own bearer token has characters a header cannot carry".to_owned(),
            )
        })?;
        value.set_sensitive(true);
        Ok(Some(value))
    }

    fn request(
        &self,
        body: Bytes,
        authorization: Option<&HeaderValue>,
    ) -> Result<Request<Full<Bytes>>, ReviewError> {
        let server = &self.server;
        let authority = server
            .base_url()
            .strip_prefix("https://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or(server.host.as_str());
        let mut builder = Request::post(format!("{}{TOKENREVIEWS_PATH}", server.path_prefix))
            .header(HOST, authority)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .header(
                USER_AGENT,
                concat!("sluice-tokenreview/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(value) = authorization {
            builder = builder.header(AUTHORIZATION, value.clone());
        }
        builder
            .body(Full::new(body))
            .map_err(|error| ReviewError::Unavailable(format!("cannot build the request: {error}")))
    }

    /// A new TLS connection with an HTTP/1.1 driver task.
    async fn connect(&self) -> Result<Sender, ReviewError> {
        let server = &self.server;
        let unavailable = |what: &str, error: &dyn std::fmt::Display| {
            ReviewError::Unavailable(format!("{what} {}: {error}", server.base_url()))
        };
        let tcp = TcpStream::connect((server.host.as_str(), server.port))
            .await
            .map_err(|error| unavailable("cannot connect to", &error))?;
        tcp.set_nodelay(true)
            .map_err(|error| unavailable("cannot set TCP_NODELAY to", &error))?;
        let tls = self
            .tls
            .connect(server.server_name.clone(), tcp)
            .await
            .map_err(|error| unavailable("TLS handshake failed with", &error))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|error| unavailable("HTTP handshake failed with", &error))?;
        // The driver ends when the connection closes or the sender is dropped.
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "API server connection ended");
            }
        });
        Ok(sender)
    }

    fn take_idle(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(sender) = idle.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    fn put_idle(&self, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < IDLE_CONNECTIONS_MAX {
            idle.push(sender);
        }
    }
}

/// The rustls client configuration: ring, our CA roots (or none checked, on request), and the
/// client certificate if that is our credential.
fn tls_config(server: &ApiServer) -> Result<ClientConfig, ReviewError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls_error = |error: rustls::Error| {
        ReviewError::config(&server.origin, "tls", format!("TLS setup failed: {error}"))
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?;
    let builder = match &server.trust {
        ServerTrust::Ca(certs) => {
            let mut roots = RootCertStore::empty();
            for cert in certs {
                roots.add(cert.clone()).map_err(|error| {
                    ReviewError::config(
                        &server.origin,
                        "certificate-authority",
                        format!("not a usable CA certificate: {error}"),
                    )
                })?;
            }
            builder.with_root_certificates(roots)
        }
        ServerTrust::DangerAcceptAny => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServer(provider))),
    };
    let mut config = match &server.credential {
        Credential::ClientCert { cert_pem, key_pem } => {
            let (chain, key) = client_identity(cert_pem, key_pem, &server.origin)?;
            builder.with_client_auth_cert(chain, key).map_err(|error| {
                ReviewError::config(
                    &server.origin,
                    "client-key",
                    format!("the key does not fit the certificate: {error}"),
                )
            })?
        }
        Credential::Token(_) | Credential::TokenFile(_) => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Accepts any server certificate, still checking that the handshake is signed by its key
/// (kubeconfig `insecure-skip-tls-verify`).
#[derive(Debug)]
struct AcceptAnyServer(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
