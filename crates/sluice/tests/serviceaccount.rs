//! Black-box tests of service-account users: `sluice serve` on a standard space whose
//! MessagingUser `system:serviceaccount:team-a:app` (type `serviceaccount`) may send and
//! receive on `myqueue`, with `--kubeconfig` naming a fake Kubernetes API server
//! (`sluice_tokenreview::testing::FakeApiServer`, HTTPS on 127.0.0.1 port 0, run on a tokio
//! runtime of the test) that answers TokenReviews and counts them. Clients are Qpid Proton
//! (`tests/interop/proton_client.py`) with SASL PLAIN, the token as the password, over plain
//! TCP thanks to `--danger-plain-without-tls`.
//!
//! The tokens are JWTs built here: a header, claims with `exp`, and a signature nobody checks
//! (the TokenReview is the authority; Sluice only reads `exp`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sluice_tokenreview::testing::{FakeApiServer, FakeToken};
use support::*;

/// The service account the MessagingUser names.
const APP: &str = "system:serviceaccount:team-a:app";
/// `@@serviceaccount@@`, percent-encoded for the URL's user part.
const SA_USER: &str = "%40%40serviceaccount%40%40";
/// [`APP`], percent-encoded for the URL's user part.
const APP_USER: &str = "system%3Aserviceaccount%3Ateam-a%3Aapp";
/// A failed authentication answers after this (the default 1 s would only slow the tests).
const FAILURE_DELAY_MS: &str = "50";

/// A standard space with one queue and the service-account user [`APP`].
const SPACE: &str = "\
apiVersion: admin.enmasse.io/v1beta1
kind: AuthenticationService
metadata: {name: standard-authservice}
spec: {type: standard}
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressSpacePlan
metadata: {name: standard-unlimited}
spec:
  addressSpaceType: standard
  resourceLimits: {router: 10000.0, broker: 10000.0, aggregate: 10000.0}
  addressPlans: [standard-small-queue]
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressPlan
metadata: {name: standard-small-queue}
spec:
  addressType: queue
  resources: {router: 0.001, broker: 0.01}
---
apiVersion: enmasse.io/v1beta1
kind: AddressSpace
metadata: {name: myspace}
spec:
  type: standard
  plan: standard-unlimited
  authenticationService: {name: standard-authservice}
---
apiVersion: enmasse.io/v1beta1
kind: Address
metadata: {name: myspace.myqueue}
spec: {address: myqueue, type: queue, plan: standard-small-queue}
---
apiVersion: user.enmasse.io/v1beta1
kind: MessagingUser
metadata: {name: myspace.app}
spec:
  username: system:serviceaccount:team-a:app
  authentication: {type: serviceaccount}
  authorization:
  - {addresses: [myqueue], operations: [send, recv]}
";

/// A fake API server on its own tokio runtime (a worker thread serves it while the test
/// blocks on clients), and the kubeconfig that names it.
struct Fake {
    api: FakeApiServer,
    kube_dir: PathBuf,
    kubeconfig: String,
    _runtime: tokio::runtime::Runtime,
}

impl Fake {
    /// A fake that knows `tokens` (token → its service account and audiences).
    fn start(tokens: &[(&str, FakeToken)]) -> Fake {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let tokens: HashMap<String, FakeToken> = tokens
            .iter()
            .map(|(t, f)| ((*t).to_owned(), f.clone()))
            .collect();
        let api = runtime.block_on(FakeApiServer::start(tokens)).unwrap();
        let kube_dir = temp_dir("sa-kube");
        let kubeconfig = api.kubeconfig(&kube_dir).unwrap();
        Fake {
            api,
            kubeconfig: kubeconfig.to_str().unwrap().to_owned(),
            kube_dir,
            _runtime: runtime,
        }
    }

    /// `sluice serve` on [`SPACE`] reviewing tokens with this fake, with `extra` arguments.
    fn serve(&self, tag: &str, extra: &[&str]) -> Server {
        let mut args = vec![
            "--kubeconfig",
            &self.kubeconfig,
            "--danger-plain-without-tls",
            "--auth-failure-delay-ms",
            FAILURE_DELAY_MS,
        ];
        args.extend_from_slice(extra);
        Server::start_config(tag, SPACE, &args)
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.kube_dir);
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A service-account JWT for [`APP`] with audience `aud`, expiring at `exp` (Unix seconds),
/// with a signature of `signature_bytes` bytes (a real RS256 one is 256).
fn jwt(aud: &str, exp: u64, signature_bytes: usize) -> String {
    let header = r#"{"alg":"RS256","kid":"test-key"}"#;
    let claims = format!(
        r#"{{"aud":["{aud}"],"exp":{exp},"iat":{iat},"iss":"https://kubernetes.default.svc.cluster.local","kubernetes.io":{{"namespace":"team-a","serviceaccount":{{"name":"app","uid":"6f1b3a52-0000-4000-8000-{exp:012}"}}}},"nbf":{iat},"sub":"{APP}"}}"#,
        iat = unix_now().saturating_sub(60),
    );
    let signature: Vec<u8> = (0..signature_bytes)
        .map(|i| (i * 7 + exp as usize) as u8)
        .collect();
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// A token for [`APP`] valid for an hour, for the API server's default audience.
fn valid_token() -> String {
    jwt(FakeApiServer::API_AUDIENCE, unix_now() + 3600, 256)
}

/// The fake's record of a token of service account `name` in team-a for `audiences`.
fn account(name: &str, audiences: &[&str]) -> FakeToken {
    FakeToken::service_account("team-a", name, audiences)
}

/// The fake's record of a token of [`APP`] for the API server's default audience.
fn app() -> FakeToken {
    account("app", &[FakeApiServer::API_AUDIENCE])
}

/// The server's URL with SASL PLAIN credentials `user` (already percent-encoded) and `token`.
fn url_as(server: &Server, user: &str, token: &str) -> String {
    server
        .url
        .replace("amqp://", &format!("amqp://{user}:{token}@"))
}

/// Runs the Proton client as `user` with `token` to completion.
fn run_as(server: &Server, user: &str, token: &str, args: &[&str]) -> Outcome {
    server
        .spawn_at(&url_as(server, user, token), args, CLIENT_TIMEOUT)
        .finish(server)
}

/// Sends one message to `myqueue` as `user` with `token` and receives it back.
fn round_trip_as(server: &Server, user: &str, token: &str) {
    let sent = ok(
        server,
        run_as(server, user, token, &["send", "myqueue", "1"]),
        &format!("send as {user}"),
    );
    assert_eq!(sent["accepted"], 1, "{sent}");
    let received = ok(
        server,
        run_as(server, user, token, &["receive", "myqueue", "1"]),
        &format!("receive as {user}"),
    );
    assert_eq!(bodies(&received), ["msg-0"]);
}

/// Asserts that a run as `user` with `token` failed SASL authentication: the client gets no
/// connection (exit 1, an error naming the refusal), and what the server logged meanwhile
/// says the authentication failed and contains `log_says`.
fn assert_refused(server: &Server, user: &str, token: &str, log_says: &str) {
    let logged_before = server.log().len();
    let outcome = run_as(server, user, token, &["send", "myqueue", "1"]);
    assert_eq!(
        outcome.code(),
        Some(1),
        "the connection should be refused: {outcome:?}\nserver stderr:\n{}",
        server.log()
    );
    // The client's report names the refusal (in its error, or its condition fields).
    let report = &outcome.stdout;
    assert!(
        report.contains("amqp:unauthorized-access") || report.contains("Authentication failed"),
        "the client should report an authentication failure: {outcome:?}"
    );
    assert!(
        outcome.json.get("accepted").is_none(),
        "nothing was sent: {outcome:?}"
    );
    let log = server.log();
    let new = log.get(logged_before..).unwrap_or_default();
    assert!(
        new.contains("authentication failed") && new.contains(log_says),
        "the server log should say the authentication failed because {log_says:?}:\n{log}"
    );
}

#[test]
fn a_service_account_token_with_the_placeholder_username_sends_and_receives() {
    let token = valid_token();
    let fake = Fake::start(&[(&token, app())]);
    let server = fake.serve("sa-valid", &[]);
    round_trip_as(&server, SA_USER, &token);
    assert!(
        server.log().contains(APP),
        "the log names the reviewed user:\n{}",
        server.log()
    );
}

#[test]
fn the_full_service_account_name_works_as_the_plain_username() {
    let token = valid_token();
    let fake = Fake::start(&[(&token, app())]);
    let server = fake.serve("sa-fullname", &[]);
    round_trip_as(&server, APP_USER, &token);
}

#[test]
fn a_token_the_api_server_does_not_know_is_refused() {
    let known = valid_token();
    let fake = Fake::start(&[(&known, app())]);
    let server = fake.serve("sa-unknown", &[]);
    let unknown = jwt(FakeApiServer::API_AUDIENCE, unix_now() + 3600, 300);
    assert_refused(&server, SA_USER, &unknown, "TokenReview rejected the token");
    assert_eq!(fake.api.calls(), 1, "the unknown token was reviewed once");
}

#[test]
fn a_token_for_another_audience_is_refused_when_an_audience_is_required() {
    let token = jwt("other-app", unix_now() + 3600, 256);
    let ours = jwt("sluice", unix_now() + 3600, 260);
    let fake = Fake::start(&[
        (&token, account("app", &["other-app"])),
        (&ours, account("app", &["sluice"])),
    ]);
    let server = fake.serve("sa-audience", &["--token-audience", "sluice"]);
    assert_refused(
        &server,
        SA_USER,
        &token,
        "is invalid for the target audiences",
    );
    // A token for `sluice` is let in by the same server.
    round_trip_as(&server, SA_USER, &ours);
}

#[test]
fn an_expired_token_is_refused_without_asking_the_api_server() {
    let expired = jwt(FakeApiServer::API_AUDIENCE, unix_now() - 60, 256);
    // The fake would accept it: only its `exp` makes it invalid.
    let fake = Fake::start(&[(&expired, app())]);
    let server = fake.serve("sa-expired", &[]);
    assert_refused(&server, SA_USER, &expired, "the token has expired");
    assert_eq!(
        fake.api.calls(),
        0,
        "an expired token is refused before any TokenReview"
    );
}

#[test]
fn when_the_api_server_is_down_tokens_are_refused_and_the_log_says_why() {
    let first = valid_token();
    let second = jwt(FakeApiServer::API_AUDIENCE, unix_now() + 3600, 270);
    let fake = Fake::start(&[(&first, app()), (&second, app())]);
    let server = fake.serve("sa-down", &[]);
    round_trip_as(&server, SA_USER, &first);

    fake.api.stop();
    // `second` is valid but not cached: it cannot be reviewed, so it is refused (fail closed).
    assert_refused(&server, SA_USER, &second, "TokenReview failed");
    let log = server.log();
    assert!(
        log.contains("cannot connect to") && log.contains(&fake.api.base_url()),
        "the log should say the API server could not be reached:\n{log}"
    );
}

#[test]
fn a_second_connection_with_the_same_token_is_answered_from_the_cache() {
    let token = valid_token();
    let fake = Fake::start(&[(&token, app())]);
    let server = fake.serve("sa-cache", &[]);
    round_trip_as(&server, SA_USER, &token);
    assert_eq!(
        fake.api.calls(),
        1,
        "two connections with one token make one TokenReview"
    );
}

#[test]
fn a_real_size_token_of_one_and_a_half_kib_works() {
    let token = jwt(FakeApiServer::API_AUDIENCE, unix_now() + 3600, 1024);
    assert!(token.len() >= 1536, "{} bytes", token.len());
    let fake = Fake::start(&[(&token, app())]);
    let server = fake.serve("sa-large", &[]);
    round_trip_as(&server, SA_USER, &token);
}

#[test]
fn a_connection_is_closed_when_its_token_expires() {
    // `exp` is whole seconds: the token expires 3 to 4 s from now.
    let token = jwt(FakeApiServer::API_AUDIENCE, unix_now() + 4, 256);
    let fake = Fake::start(&[(&token, app())]);
    let server = fake.serve("sa-expiry", &[]);
    // A receiver on the empty queue waits (up to its 30 s timeout) for a message that never
    // comes; the broker must close it when the token expires.
    let mut receiver = server.spawn_at(
        &url_as(&server, SA_USER, &token),
        &["receive", "myqueue", "1"],
        CLIENT_TIMEOUT,
    );
    receiver.wait_ready(&server);
    let outcome = receiver.finish(&server);
    assert_eq!(
        outcome.code(),
        Some(1),
        "the connection should be closed by the broker, not time out: {outcome:?}\nserver \
         stderr:\n{}",
        server.log()
    );
    assert!(
        outcome.stdout.contains("amqp:unauthorized-access"),
        "closed with amqp:unauthorized-access: {outcome:?}"
    );
    let log = server.log();
    assert!(
        log.contains("expired"),
        "the server log says why it closed the connection:\n{log}"
    );
    // And the expired token cannot come back.
    assert_refused(&server, SA_USER, &token, "the token has expired");
}

#[test]
fn a_reviewed_service_account_without_a_messaging_user_is_refused() {
    let token = valid_token();
    // The API server vouches for the token, but it belongs to team-a:other, who has no
    // MessagingUser in this space.
    let fake = Fake::start(&[(&token, account("other", &[FakeApiServer::API_AUDIENCE]))]);
    let server = fake.serve("sa-nouser", &[]);
    assert_refused(
        &server,
        SA_USER,
        &token,
        "\"system:serviceaccount:team-a:other\" is not a service-account MessagingUser",
    );
    // Naming it as the PLAIN user is no better (no such user, refused before any review), and
    // naming APP with other's token neither.
    assert_refused(
        &server,
        "system%3Aserviceaccount%3Ateam-a%3Aother",
        &token,
        "unknown user",
    );
    assert_refused(&server, APP_USER, &token, &format!("not to {APP:?}"));
}
