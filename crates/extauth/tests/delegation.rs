//! Delegated exchanges against the fake external authentication server, over real sockets.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use sluice_codec::SaslCode;
use sluice_extauth::testing::{FakeConfig, FakeServer, FakeUser, X_TEST_CHALLENGE};
use sluice_extauth::{Delegation, ExtAuthError, ExtStep, ExternalServer, probe_mechanisms};

fn plain(user: &str, password: &str) -> Option<Bytes> {
    Some(Bytes::from(format!("\0{user}\0{password}")))
}

async fn fake() -> FakeServer {
    let alice = FakeUser::new("secret")
        .group("admin")
        .group("team-a")
        .authz("orders/#", &["send", "recv"])
        .authz("events", &["recv"]);
    FakeServer::start(FakeConfig::default().user("alice", alice))
        .await
        .unwrap()
}

/// Waits, a bounded number of times, for `done`.
async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done()
}

#[tokio::test]
async fn probe_lists_the_servers_mechanisms() {
    let server = fake().await;
    let mechanisms = probe_mechanisms(&server.external_server()).await.unwrap();
    assert_eq!(mechanisms, ["PLAIN", X_TEST_CHALLENGE]);
    assert_eq!(server.connections(), 1);

    let only_plain = FakeConfig {
        mechanisms: vec!["PLAIN".into()],
        ..FakeConfig::default()
    };
    let server = FakeServer::start(only_plain).await.unwrap();
    let mechanisms = probe_mechanisms(&server.external_server()).await.unwrap();
    assert_eq!(mechanisms, ["PLAIN"]);
}

#[tokio::test]
async fn plain_with_the_right_password_is_authenticated_with_groups_and_grants() {
    let server = fake().await;
    let (_, step) = Delegation::start(&server.external_server(), "PLAIN", plain("alice", "secret"))
        .await
        .unwrap();
    let ExtStep::Authenticated(identity) = step else {
        panic!("expected Authenticated, got {step:?}");
    };
    assert_eq!(identity.sub.as_deref(), Some("sub-alice"));
    assert_eq!(identity.preferred_username.as_deref(), Some("alice"));
    assert_eq!(identity.groups, ["admin", "team-a"]);
    let expected = BTreeMap::from([
        ("events".to_string(), vec!["recv".to_string()]),
        (
            "orders/#".to_string(),
            vec!["send".to_string(), "recv".to_string()],
        ),
    ]);
    assert_eq!(identity.address_authz, Some(expected));
    // We close after the open exchange, and the server sees that close.
    assert!(eventually(|| server.closes() == 1).await);
}

#[tokio::test]
async fn a_wrong_password_or_unknown_user_is_refused_with_auth() {
    let server = fake().await;
    let external = server.external_server();
    for response in [plain("alice", "wrong"), plain("bob", "secret"), None] {
        let (_, step) = Delegation::start(&external, "PLAIN", response)
            .await
            .unwrap();
        assert_eq!(step, ExtStep::Refused(SaslCode::Auth));
    }
    assert_eq!(server.closes(), 0);
}

#[tokio::test]
async fn a_server_that_is_down_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let external = ExternalServer::new("127.0.0.1", port);
    let err = Delegation::start(&external, "PLAIN", plain("alice", "secret"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ExtAuthError::Connect { port: p, .. } if *p == port),
        "{err}"
    );
    let err = probe_mechanisms(&external).await.unwrap_err();
    assert!(matches!(err, ExtAuthError::Connect { .. }), "{err}");
}

#[tokio::test]
async fn the_realm_is_sent_as_the_sasl_hostname() {
    let server = fake().await;
    let mut external = server.external_server();
    Delegation::start(&external, "PLAIN", plain("alice", "secret"))
        .await
        .unwrap();
    external.realm = Some("myns-myspace".into());
    Delegation::start(&external, "PLAIN", plain("alice", "secret"))
        .await
        .unwrap();
    assert_eq!(server.hostnames(), [None, Some("myns-myspace".to_string())]);

    external.realm = Some("r".repeat(256));
    let err = Delegation::start(&external, "PLAIN", plain("alice", "secret"))
        .await
        .unwrap_err();
    assert!(matches!(err, ExtAuthError::InvalidRealm(_)), "{err}");
}

#[tokio::test]
async fn a_challenge_is_relayed_and_the_response_goes_back() {
    let server = fake().await;
    let external = server.external_server();
    let (mut delegation, step) =
        Delegation::start(&external, X_TEST_CHALLENGE, Some(Bytes::from("alice")))
            .await
            .unwrap();
    assert_eq!(step, ExtStep::Challenge(Bytes::from("password?")));
    let step = delegation.respond(Bytes::from("secret")).await.unwrap();
    let ExtStep::Authenticated(identity) = step else {
        panic!("expected Authenticated, got {step:?}");
    };
    assert_eq!(identity.preferred_username.as_deref(), Some("alice"));
    // The exchange is over: there is nothing left to respond to.
    let err = delegation.respond(Bytes::from("again")).await.unwrap_err();
    assert!(matches!(err, ExtAuthError::NotChallenged), "{err}");

    let (mut delegation, _) =
        Delegation::start(&external, X_TEST_CHALLENGE, Some(Bytes::from("alice")))
            .await
            .unwrap();
    let step = delegation.respond(Bytes::from("wrong")).await.unwrap();
    assert_eq!(step, ExtStep::Refused(SaslCode::Auth));
}

#[tokio::test]
async fn responding_before_any_challenge_is_refused() {
    let server = fake().await;
    let (mut delegation, step) =
        Delegation::start(&server.external_server(), "PLAIN", plain("alice", "wrong"))
            .await
            .unwrap();
    assert_eq!(step, ExtStep::Refused(SaslCode::Auth));
    let err = delegation.respond(Bytes::from("x")).await.unwrap_err();
    assert!(matches!(err, ExtAuthError::NotChallenged), "{err}");
}

#[tokio::test]
async fn a_mechanism_the_server_does_not_offer_is_reported() {
    let config = FakeConfig {
        mechanisms: vec!["PLAIN".into()],
        ..FakeConfig::default()
    };
    let server = FakeServer::start(config).await.unwrap();
    let err = Delegation::start(&server.external_server(), X_TEST_CHALLENGE, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ExtAuthError::MechanismNotOffered(m) if m == X_TEST_CHALLENGE),
        "{err}"
    );
}

#[tokio::test]
async fn invalid_mechanisms_and_oversized_responses_are_refused_before_connecting() {
    let server = fake().await;
    let external = server.external_server();
    for mechanism in ["", "PLÄIN", &"X".repeat(65)] {
        let err = Delegation::start(&external, mechanism, None)
            .await
            .unwrap_err();
        assert!(matches!(err, ExtAuthError::InvalidMechanism(_)), "{err}");
    }
    let huge = Some(Bytes::from(vec![
        b'a';
        sluice_extauth::RESPONSE_BYTES_MAX + 1
    ]));
    let err = Delegation::start(&external, "PLAIN", huge)
        .await
        .unwrap_err();
    assert!(matches!(err, ExtAuthError::TooLarge(_)), "{err}");
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn a_challenge_over_the_sasl_frame_limit_ends_the_exchange() {
    let challenge = vec![b'c'; sluice_extauth::SASL_FRAME_SIZE_MAX as usize + 1];
    let config = FakeConfig {
        challenge: Bytes::from(challenge),
        ..FakeConfig::default()
    };
    let server = FakeServer::start(config).await.unwrap();
    let err = Delegation::start(
        &server.external_server(),
        X_TEST_CHALLENGE,
        Some(Bytes::from("alice")),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, ExtAuthError::Protocol(m) if m.contains("maximum frame size")),
        "{err}"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts and holds the sockets, never writing a byte.
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mut external = ExternalServer::new("127.0.0.1", port);
    external.timeout = Duration::from_millis(200);
    let err = Delegation::start(&external, "PLAIN", plain("alice", "secret"))
        .await
        .unwrap_err();
    assert!(matches!(err, ExtAuthError::Timeout), "{err}");
    let err = probe_mechanisms(&external).await.unwrap_err();
    assert!(matches!(err, ExtAuthError::Timeout), "{err}");
    silent.abort();
}

#[tokio::test]
async fn a_client_that_never_answers_the_challenge_times_out() {
    let server = fake().await;
    let mut external = server.external_server();
    external.timeout = Duration::from_millis(300);
    let (mut delegation, step) =
        Delegation::start(&external, X_TEST_CHALLENGE, Some(Bytes::from("alice")))
            .await
            .unwrap();
    assert!(matches!(step, ExtStep::Challenge(_)));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let err = delegation.respond(Bytes::from("secret")).await.unwrap_err();
    assert!(matches!(err, ExtAuthError::Timeout), "{err}");
}

#[tokio::test]
async fn many_exchanges_run_side_by_side() {
    let server = fake().await;
    let external = server.external_server();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let external = external.clone();
        tasks.spawn(async move {
            let password = if i % 2 == 0 { "secret" } else { "wrong" };
            let (_, step) = Delegation::start(&external, "PLAIN", plain("alice", password))
                .await
                .unwrap();
            (i, step)
        });
    }
    while let Some(result) = tasks.join_next().await {
        let (i, step) = result.unwrap();
        if i % 2 == 0 {
            assert!(matches!(step, ExtStep::Authenticated(_)), "{step:?}");
        } else {
            assert_eq!(step, ExtStep::Refused(SaslCode::Auth));
        }
    }
    assert_eq!(server.connections(), 20);
}
