//! A fake Kubernetes API server for tests: HTTPS on 127.0.0.1 port 0 with a certificate from
//! its own fresh CA, answering `POST /apis/authentication.k8s.io/v1/tokenreviews` as the real
//! one does.
//!
//! What it models of the real API server:
//! - it requires its own credential: `Authorization: Bearer <bearer_token()>` or a client
//!   certificate issued by its CA ([`FakeApiServer::client_cert_pem`]); else 401;
//! - an unknown token gets `201` with `status.authenticated` absent and `status.error` set;
//! - `spec.audiences` (or, when absent, the API server's own audience
//!   [`FakeApiServer::API_AUDIENCE`]) must intersect the token's audiences, and
//!   `status.audiences` is the intersection;
//! - [`FakeApiServer::stop`] closes the listener and every connection, so later reviews
//!   cannot connect; [`FakeBehaviour`] makes it stall or answer an error code instead.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use serde::Deserialize as _;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::{AbortHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use crate::{ApiServer, Credential, ReviewError, TOKENREVIEWS_PATH};

/// Most connections the fake serves at once; more are closed on accept.
pub const FAKE_CONNECTIONS_MAX: usize = 256;
/// Largest request body the fake reads.
pub const FAKE_REQUEST_BYTES_MAX: usize = 1024 * 1024;

/// What the fake knows about one token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeToken {
    /// `status.user.username` when authenticated.
    pub username: String,
    /// The audiences the token was issued for (its `aud`).
    pub audiences: Vec<String>,
}

impl FakeToken {
    /// The token of service account `name` in `namespace`, for `audiences`.
    pub fn service_account(namespace: &str, name: &str, audiences: &[&str]) -> FakeToken {
        FakeToken {
            username: format!("system:serviceaccount:{namespace}:{name}"),
            audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
        }
    }
}

/// How the fake answers TokenReviews.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeBehaviour {
    /// As the real API server does.
    Answer,
    /// As an authenticator that is not audience-aware: `spec.audiences` is ignored and
    /// `status.audiences` left out (an old API server or a webhook).
    IgnoreAudiences,
    /// Reads the request and never answers.
    Stall,
    /// Answers every request with this HTTP status and a Kubernetes `Status` body.
    Fail(u16),
}

struct State {
    tokens: Mutex<HashMap<String, FakeToken>>,
    bearer_token: String,
    behaviour: Mutex<FakeBehaviour>,
    calls: AtomicUsize,
}

/// A fake Kubernetes API server (see the module doc). Stops when dropped.
pub struct FakeApiServer {
    addr: SocketAddr,
    ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
    state: Arc<State>,
    accept: AbortHandle,
    down: AtomicBool,
}

impl FakeApiServer {
    /// The audience the fake API server checks when a review asks for none (the real one's
    /// `--api-audiences`, by default the issuer URL).
    pub const API_AUDIENCE: &'static str = "https://kubernetes.default.svc.cluster.local";

    /// Starts a fake that knows `tokens`, listening on 127.0.0.1 port 0.
    pub async fn start(tokens: HashMap<String, FakeToken>) -> io::Result<FakeApiServer> {
        let pki = Pki::generate().map_err(io::Error::other)?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(Arc::new(pki.server_config()?));
        let state = Arc::new(State {
            tokens: Mutex::new(tokens),
            bearer_token: format!("fake-api-server-bearer-{}", addr.port()),
            behaviour: Mutex::new(FakeBehaviour::Answer),
            calls: AtomicUsize::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, acceptor, state.clone())).abort_handle();
        Ok(FakeApiServer {
            addr,
            ca_pem: pki.ca_pem,
            client_cert_pem: pki.client_cert_pem,
            client_key_pem: pki.client_key_pem,
            state,
            accept,
            down: AtomicBool::new(false),
        })
    }

    /// `https://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The PEM of the CA that issued the server's (and the client's) certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The bearer token the fake requires of its callers.
    pub fn bearer_token(&self) -> &str {
        &self.state.bearer_token
    }

    /// A client certificate and key (PEM) the fake accepts instead of the bearer token.
    pub fn client_cert_pem(&self) -> (Vec<u8>, Vec<u8>) {
        (
            self.client_cert_pem.clone().into_bytes(),
            self.client_key_pem.clone().into_bytes(),
        )
    }

    /// An [`ApiServer`] for this fake with its bearer token inline.
    pub fn api_server(&self) -> Result<ApiServer, ReviewError> {
        ApiServer::new(
            &self.base_url(),
            self.ca_pem.as_bytes(),
            Credential::Token(self.state.bearer_token.clone()),
        )
    }

    /// Writes `dir/kubeconfig` (server URL, CA data, the bearer token) and returns its path.
    pub fn kubeconfig(&self, dir: &Path) -> io::Result<PathBuf> {
        let path = dir.join("kubeconfig");
        let yaml = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake\n  \
             cluster:\n    server: {}\n    certificate-authority-data: {}\ncontexts:\n- name: \
             fake\n  context:\n    cluster: fake\n    user: sluice\nusers:\n- name: sluice\n  \
             user:\n    token: {}\n",
            self.base_url(),
            STANDARD.encode(&self.ca_pem),
            self.state.bearer_token
        );
        std::fs::write(&path, yaml)?;
        Ok(path)
    }

    /// How many requests reached the fake.
    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// Adds or replaces a token.
    pub fn insert_token(&self, token: &str, fake: FakeToken) {
        self.tokens().insert(token.to_owned(), fake);
    }

    /// Forgets a token (its service account was deleted): reviews of it fail from now on.
    pub fn remove_token(&self, token: &str) {
        self.tokens().remove(token);
    }

    /// Changes how the fake answers.
    pub fn set_behaviour(&self, behaviour: FakeBehaviour) {
        *self
            .state
            .behaviour
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = behaviour;
    }

    /// Closes the listener and every connection: the API server is unreachable from now on.
    pub fn stop(&self) {
        self.accept.abort();
        self.down.store(true, Ordering::SeqCst);
    }

    /// Whether [`FakeApiServer::stop`] was called.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    fn tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, FakeToken>> {
        self.state
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Accepts connections until aborted; aborting drops the listener and the `JoinSet`, which
/// aborts every connection task.
async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, state: Arc<State>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                if connections.len() >= FAKE_CONNECTIONS_MAX {
                    continue;
                }
                connections.spawn(serve_connection(tcp, acceptor.clone(), state.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(tcp: tokio::net::TcpStream, acceptor: TlsAcceptor, state: Arc<State>) {
    let Ok(tls) = acceptor.accept(tcp).await else {
        return;
    };
    let has_client_cert = tls.get_ref().1.peer_certificates().is_some();
    let service = hyper::service::service_fn(move |request| {
        let state = state.clone();
        async move { Ok::<_, hyper::Error>(handle(&state, request, has_client_cert).await) }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(tls), service)
        .await;
    if let Err(error) = served {
        tracing::debug!(%error, "fake API server connection ended");
    }
}

async fn handle(
    state: &State,
    request: Request<Incoming>,
    has_client_cert: bool,
) -> Response<Full<Bytes>> {
    state.calls.fetch_add(1, Ordering::SeqCst);
    let behaviour = *state
        .behaviour
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    match behaviour {
        FakeBehaviour::Answer | FakeBehaviour::IgnoreAudiences => {}
        FakeBehaviour::Stall => std::future::pending::<()>().await,
        FakeBehaviour::Fail(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return api_status(status, "the fake API server was told to fail");
        }
    }
    if request.uri().path() != TOKENREVIEWS_PATH {
        return api_status(
            StatusCode::NOT_FOUND,
            "the server could not find the requested resource",
        );
    }
    if request.method() != Method::POST {
        return api_status(
            StatusCode::METHOD_NOT_ALLOWED,
            "only POST creates a TokenReview",
        );
    }
    let expected = format!("Bearer {}", state.bearer_token);
    let bearer_ok = request
        .headers()
        .get(AUTHORIZATION)
        .is_some_and(|value| value.as_bytes() == expected.as_bytes());
    if !bearer_ok && !has_client_cert {
        return api_status(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let Ok(body) = Limited::new(request.into_body(), FAKE_REQUEST_BYTES_MAX)
        .collect()
        .await
    else {
        return api_status(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    };
    let Ok(review) = serde_json::from_slice::<Value>(&body.to_bytes()) else {
        return api_status(StatusCode::BAD_REQUEST, "the request body is not JSON");
    };
    let audience_aware = behaviour != FakeBehaviour::IgnoreAudiences;
    match token_review(state, &review, audience_aware) {
        Ok(answer) => json_response(StatusCode::CREATED, &answer),
        Err(message) => api_status(StatusCode::BAD_REQUEST, &message),
    }
}

/// A TokenReview as the fake reads it.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewIn {
    kind: String,
    api_version: String,
    spec: SpecIn,
}

#[derive(serde::Deserialize, serde::Serialize)]
struct SpecIn {
    #[serde(default)]
    token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    audiences: Option<Vec<String>>,
}

/// The TokenReview the real API server would return for `review`.
fn token_review(state: &State, review: &Value, audience_aware: bool) -> Result<Value, String> {
    let review = ReviewIn::deserialize(review).map_err(|error| error.to_string())?;
    if review.kind != "TokenReview" || review.api_version != "authentication.k8s.io/v1" {
        return Err("not an authentication.k8s.io/v1 TokenReview".to_owned());
    }
    let Some(token) = review.spec.token.as_deref() else {
        return Err("spec.token: Required value".to_owned());
    };
    let requested = review
        .spec
        .audiences
        .clone()
        .unwrap_or_else(|| vec![FakeApiServer::API_AUDIENCE.to_owned()]);
    let known = state
        .tokens
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(token)
        .cloned();
    let status = review_status(known, &requested, audience_aware);
    Ok(json!({
        "kind": "TokenReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "spec": review.spec,
        "status": status,
    }))
}

/// `status` of a TokenReview of a token the fake knows as `known` (or not), for `requested`
/// audiences.
fn review_status(known: Option<FakeToken>, requested: &[String], audience_aware: bool) -> Value {
    let Some(fake) = known else {
        return json!({"user": {}, "error": "[invalid bearer token, token lookup failed]"});
    };
    let user = json!({"username": fake.username,
        "uid": "00000000-0000-0000-0000-000000000000",
        "groups": ["system:serviceaccounts", "system:authenticated"]});
    if !audience_aware {
        return json!({"authenticated": true, "user": user});
    }
    let both: Vec<&String> = requested
        .iter()
        .filter(|a| fake.audiences.contains(a))
        .collect();
    if both.is_empty() {
        return json!({"user": {}, "error": format!(
            "[invalid bearer token, token audiences {:?} is invalid for the target audiences {:?}]",
            fake.audiences, requested)});
    }
    json!({"authenticated": true, "user": user, "audiences": both})
}

fn api_status(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": status.canonical_reason(), "code": status.as_u16()});
    json_response(status, &body)
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// The fake's CA, server certificate and a client certificate, made fresh for each fake.
struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server_cert: CertificateDer<'static>,
    server_key: PrivatePkcs8KeyDer<'static>,
    client_cert_pem: String,
    client_key_pem: String,
}

impl Pki {
    fn generate() -> Result<Pki, rcgen::Error> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "fake kubernetes CA");
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let server_key = KeyPair::generate()?;
        let server_params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
        let server_cert = server_params.signed_by(&server_key, &issuer)?;
        let client_key = KeyPair::generate()?;
        let mut client_params = CertificateParams::new(Vec::<String>::new())?;
        client_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "sluice");
        let client_cert = client_params.signed_by(&client_key, &issuer)?;
        Ok(Pki {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().clone(),
            server_cert: server_cert.der().clone(),
            server_key: PrivatePkcs8KeyDer::from(server_key.serialize_der()),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
        })
    }

    fn server_config(&self) -> io::Result<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone()).map_err(io::Error::other)?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(io::Error::other)?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![self.server_cert.clone()],
                PrivateKeyDer::Pkcs8(self.server_key.clone_key()),
            )
            .map_err(io::Error::other)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}
