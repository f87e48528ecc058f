//! Reviews over real HTTPS on 127.0.0.1 against the fake API server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::time::{Duration, SystemTime};

use common::{API, fake, jwt, later, now_whole};
use sluice_tokenreview::testing::{FakeBehaviour, FakeToken};
use sluice_tokenreview::{ApiServer, Credential, ReviewError, Reviewer, ReviewerSettings};

/// Asserts that `result` is [`ReviewError::Unavailable`] saying `text`.
#[track_caller]
fn unavailable<T: std::fmt::Debug>(result: Result<T, ReviewError>, text: &str) {
    match result {
        Err(ReviewError::Unavailable(m)) if m.contains(text) => {}
        other => panic!("wanted Unavailable saying {text:?}, got {other:?}"),
    }
}

/// Asserts that `result` is [`ReviewError::Rejected`] saying `text`.
#[track_caller]
fn rejected<T: std::fmt::Debug>(result: Result<T, ReviewError>, text: &str) {
    match result {
        Err(ReviewError::Rejected(m)) if m.contains(text) => {}
        other => panic!("wanted Rejected saying {text:?}, got {other:?}"),
    }
}

fn reviewer(server: ApiServer, settings: ReviewerSettings) -> Reviewer {
    Reviewer::new(server, settings).unwrap()
}

#[tokio::test]
async fn a_valid_token_is_accepted() {
    let fake = fake(&[("tok-a", "ns:app", &[API])]).await;
    let reviewer = reviewer(fake.api_server().unwrap(), ReviewerSettings::default());
    let reviewed = reviewer.review("tok-a").await.unwrap();
    assert_eq!(reviewed.username, "system:serviceaccount:ns:app");
    assert_eq!(reviewed.audiences, [API]);
    assert_eq!(reviewed.expires_at, None, "an opaque token has no exp");
    assert!(!reviewed.cached);
    assert_eq!(fake.calls(), 1);
    assert_eq!(reviewer.counts(), (1, 0));
}

#[tokio::test]
async fn the_configured_audience_is_asked_for_and_required() {
    let fake = fake(&[
        ("for-amqp", "ns:app", &["amqp", "vault"]),
        ("for-api", "ns:app", &[API]),
    ])
    .await;
    let settings = ReviewerSettings {
        audience: Some("amqp".into()),
        ..ReviewerSettings::default()
    };
    let reviewer = reviewer(fake.api_server().unwrap(), settings);
    let reviewed = reviewer.review("for-amqp").await.unwrap();
    assert_eq!(reviewed.audiences, ["amqp"], "the intersection");
    // An audience-aware API server refuses a token for other audiences itself.
    rejected(reviewer.review("for-api").await, "audiences");
    // One that is not audience-aware authenticates it but names no audience: refused here.
    fake.set_behaviour(FakeBehaviour::IgnoreAudiences);
    let error = reviewer.review("for-api").await.unwrap_err();
    assert!(
        matches!(&error, ReviewError::WrongAudience { wanted, got } if wanted == "amqp" && got.is_empty()),
        "{error}"
    );
    assert!(error.is_token_fault());
}

#[tokio::test]
async fn an_expired_jwt_is_refused_without_a_call() {
    let fake = fake(&[]).await;
    let now = SystemTime::now();
    let token = jwt(now - Duration::from_secs(1), "old", 0);
    fake.insert_token(&token, FakeToken::service_account("ns", "app", &[API]));
    let reviewer = reviewer(fake.api_server().unwrap(), ReviewerSettings::default());
    assert!(matches!(
        reviewer.review_at(&token, now).await,
        Err(ReviewError::Expired)
    ));
    assert_eq!(fake.calls(), 0);
}

#[tokio::test]
async fn an_unknown_token_is_rejected() {
    let fake = fake(&[("tok-a", "ns:app", &[API])]).await;
    let reviewer = reviewer(fake.api_server().unwrap(), ReviewerSettings::default());
    rejected(reviewer.review("tok-unknown").await, "invalid bearer token");
    // Refusals are not cached: the token may be valid by the next try.
    fake.insert_token(
        "tok-unknown",
        FakeToken::service_account("ns", "late", &[API]),
    );
    assert!(reviewer.review("tok-unknown").await.is_ok());
    assert_eq!(fake.calls(), 2);
}

#[tokio::test]
async fn an_unreachable_api_server_fails_closed() {
    let fake = fake(&[("tok-a", "ns:app", &[API]), ("tok-b", "ns:b", &[API])]).await;
    let reviewer = reviewer(fake.api_server().unwrap(), ReviewerSettings::default());
    reviewer.review("tok-a").await.unwrap();
    fake.stop();
    assert!(fake.is_down());
    let error = reviewer.review("tok-b").await.unwrap_err();
    assert!(matches!(error, ReviewError::Unavailable(_)), "{error}");
    assert!(!error.is_token_fault());
    // What was reviewed before stays good for the cache's short life.
    assert!(reviewer.review("tok-a").await.unwrap().cached);
}

#[tokio::test]
async fn api_server_errors_and_silence_fail_closed() {
    let fake = fake(&[("tok-a", "ns:app", &[API])]).await;
    let settings = ReviewerSettings {
        request_timeout: Duration::from_millis(300),
        cache_ttl: Duration::ZERO,
        ..ReviewerSettings::default()
    };
    let reviewer = reviewer(fake.api_server().unwrap(), settings);
    fake.set_behaviour(FakeBehaviour::Fail(500));
    unavailable(reviewer.review("tok-a").await, "500");
    fake.set_behaviour(FakeBehaviour::Fail(403));
    unavailable(reviewer.review("tok-a").await, "our own credential");
    fake.set_behaviour(FakeBehaviour::Stall);
    unavailable(reviewer.review("tok-a").await, "within");
    fake.set_behaviour(FakeBehaviour::Answer);
    assert!(
        reviewer.review("tok-a").await.is_ok(),
        "recovers once the server answers"
    );
}

#[tokio::test]
async fn our_own_credential_is_required() {
    let fake = fake(&[("tok-a", "ns:app", &[API])]).await;
    let wrong = ApiServer::new(
        &fake.base_url(),
        fake.ca_pem().as_bytes(),
        Credential::Token("not-the-bearer".into()),
    )
    .unwrap();
    let reviewer = reviewer(wrong, ReviewerSettings::default());
    unavailable(reviewer.review("tok-a").await, "401");
}

#[tokio::test]
async fn a_client_certificate_is_a_credential() {
    let fake = fake(&[("tok-a", "ns:app", &[API])]).await;
    let (cert_pem, key_pem) = fake.client_cert_pem();
    let server = ApiServer::new(
        &fake.base_url(),
        fake.ca_pem().as_bytes(),
        Credential::ClientCert { cert_pem, key_pem },
    )
    .unwrap();
    let reviewed = reviewer(server, ReviewerSettings::default())
        .review("tok-a")
        .await
        .unwrap();
    assert_eq!(reviewed.username, "system:serviceaccount:ns:app");
}

#[tokio::test]
async fn the_token_file_is_read_at_every_request() {
    let fake = fake(&[("tok-a", "ns:app", &[API])]).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{}\n", fake.bearer_token())).unwrap();
    let server = ApiServer::new(
        &fake.base_url(),
        fake.ca_pem().as_bytes(),
        Credential::TokenFile(token_file.clone()),
    )
    .unwrap();
    let settings = ReviewerSettings {
        cache_ttl: Duration::ZERO,
        ..ReviewerSettings::default()
    };
    let reviewer = reviewer(server, settings);
    reviewer.review("tok-a").await.unwrap();
    std::fs::write(&token_file, "rotated-to-something-the-fake-refuses").unwrap();
    unavailable(reviewer.review("tok-a").await, "401");
}

#[tokio::test]
async fn a_second_review_is_a_cache_hit_that_never_outlives_exp() {
    let fake = fake(&[]).await;
    let now = now_whole();
    let token = jwt(later(now, 10), "short", 0);
    fake.insert_token(&token, FakeToken::service_account("ns", "app", &[API]));
    let reviewer = reviewer(fake.api_server().unwrap(), ReviewerSettings::default());
    let first = reviewer.review_at(&token, now).await.unwrap();
    assert!(!first.cached);
    assert_eq!(first.expires_at, Some(later(now, 10)));
    let second = reviewer.review_at(&token, later(now, 9)).await.unwrap();
    assert!(second.cached);
    assert_eq!(second.username, first.username);
    assert_eq!(fake.calls(), 1);
    assert_eq!(reviewer.counts(), (1, 1));
    assert!(matches!(
        reviewer.review_at(&token, later(now, 10)).await,
        Err(ReviewError::Expired)
    ));
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn the_cache_lives_for_its_ttl_only() {
    let fake = fake(&[("tok-a", "ns:app", &[API])]).await;
    let settings = ReviewerSettings {
        cache_ttl: Duration::from_secs(30),
        ..ReviewerSettings::default()
    };
    let reviewer = reviewer(fake.api_server().unwrap(), settings);
    let now = SystemTime::now();
    reviewer.review_at("tok-a", now).await.unwrap();
    assert!(
        reviewer
            .review_at("tok-a", later(now, 29))
            .await
            .unwrap()
            .cached
    );
    // The service account was deleted: the cached answer ends with the TTL.
    fake.remove_token("tok-a");
    assert!(
        reviewer
            .review_at("tok-a", later(now, 29))
            .await
            .unwrap()
            .cached
    );
    assert!(matches!(
        reviewer.review_at("tok-a", later(now, 30)).await,
        Err(ReviewError::Rejected(_))
    ));
    assert_eq!(fake.calls(), 2);
}

#[tokio::test]
async fn a_real_size_jwt_is_reviewed() {
    let fake = fake(&[]).await;
    let exp = later(SystemTime::UNIX_EPOCH, 4_000_000_000);
    let token = jwt(exp, "system:serviceaccount:ns:app", 1536);
    assert!((1536..1700).contains(&token.len()), "{}", token.len());
    fake.insert_token(&token, FakeToken::service_account("ns", "app", &[API]));
    let reviewer = reviewer(fake.api_server().unwrap(), ReviewerSettings::default());
    let reviewed = reviewer.review(&token).await.unwrap();
    assert_eq!(reviewed.expires_at, Some(exp));
    assert_eq!(reviewed.username, "system:serviceaccount:ns:app");
}

#[tokio::test]
async fn tokens_past_the_size_limit_are_refused_without_a_call() {
    let fake = fake(&[]).await;
    let reviewer = reviewer(fake.api_server().unwrap(), ReviewerSettings::default());
    let token = "x".repeat(8 * 1024 + 1);
    assert!(matches!(
        reviewer.review(&token).await,
        Err(ReviewError::TooLarge {
            bytes: 8193,
            bytes_max: 8192
        })
    ));
    assert!(matches!(
        reviewer.review("").await,
        Err(ReviewError::Rejected(_))
    ));
    assert_eq!(fake.calls(), 0);
}

#[tokio::test]
async fn the_cache_holds_at_most_entries_max() {
    let fake = fake(&[
        ("tok-a", "ns:a", &[API]),
        ("tok-b", "ns:b", &[API]),
        ("tok-c", "ns:c", &[API]),
    ])
    .await;
    let settings = ReviewerSettings {
        cache_entries_max: 2,
        ..ReviewerSettings::default()
    };
    let reviewer = reviewer(fake.api_server().unwrap(), settings);
    for token in ["tok-a", "tok-b", "tok-c"] {
        reviewer.review(token).await.unwrap();
    }
    assert_eq!(reviewer.cache_len(), 2);
    assert!(reviewer.review("tok-c").await.unwrap().cached);
    assert!(
        !reviewer.review("tok-a").await.unwrap().cached,
        "the oldest went first"
    );
    assert_eq!(fake.calls(), 4);
}

#[tokio::test]
async fn clones_share_one_cache_and_concurrent_reviews_all_finish() {
    let fake = fake(&[("tok-a", "ns:a", &[API]), ("tok-b", "ns:b", &[API])]).await;
    let settings = ReviewerSettings {
        reviews_in_flight_max: 2,
        ..ReviewerSettings::default()
    };
    let reviewer = reviewer(fake.api_server().unwrap(), settings);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let reviewer = reviewer.clone();
        let token = if i % 2 == 0 { "tok-a" } else { "tok-b" };
        tasks.spawn(async move { reviewer.review(token).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap().unwrap();
    }
    let (calls, hits) = reviewer.counts();
    assert_eq!(calls + hits, 16);
    assert_eq!(calls as usize, fake.calls());
    assert!(reviewer.clone().review("tok-a").await.unwrap().cached);
}

#[tokio::test]
async fn a_server_certificate_from_another_ca_is_refused() {
    let fake = fake(&[("tok-a", "ns:app", &[API])]).await;
    let other = common::fake(&[]).await;
    let server = ApiServer::new(
        &fake.base_url(),
        other.ca_pem().as_bytes(),
        Credential::Token(fake.bearer_token().to_owned()),
    )
    .unwrap();
    let reviewer = reviewer(server, ReviewerSettings::default());
    unavailable(reviewer.review("tok-a").await, "TLS");
    assert_eq!(fake.calls(), 0);
}
