use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use proptest::prelude::*;

use super::*;
use crate::test_support::{ScramClient, seeded, users};

const NOW_MS: i64 = 1_700_000_000_000;
const SA: &str = "system:serviceaccount:ns:app";

fn settings(service: Service) -> AuthSettings {
    AuthSettings::new(service)
}

fn tls() -> Transport {
    Transport {
        tls: true,
        client_subject: None,
    }
}

fn with_certificate(subject: &str) -> Transport {
    Transport {
        tls: true,
        client_subject: Some(subject.to_owned()),
    }
}

/// The users of `service`; the standard ones are built once, as deriving their credentials
/// costs PBKDF2 per user.
fn users_for(service: Service) -> Arc<Users> {
    match service {
        Service::Standard => Arc::clone(&STANDARD_USERS),
        other => users(other),
    }
}

fn exchange(service: Service, transport: Transport) -> Exchange {
    Exchange::with_random(
        users_for(service),
        &settings(service),
        transport,
        Box::new(seeded(99)),
    )
}

fn standard() -> Exchange {
    exchange(Service::Standard, tls())
}

#[track_caller]
fn principal(step: Step) -> Principal {
    match step {
        Step::Success { principal, .. } => principal,
        other => panic!("expected success, got {other:?}"),
    }
}

#[track_caller]
fn failure(step: Step) -> (FailureCode, String) {
    match step {
        Step::Failure { code, reason } => (code, reason),
        other => panic!("expected failure, got {other:?}"),
    }
}

#[track_caller]
fn challenge(step: Step) -> String {
    match step {
        Step::Challenge(bytes) => String::from_utf8(bytes.to_vec()).unwrap(),
        other => panic!("expected a challenge, got {other:?}"),
    }
}

#[track_caller]
fn review(step: Step) -> String {
    match step {
        Step::Review { token } => token,
        other => panic!("expected a review, got {other:?}"),
    }
}

fn plain(authcid: &str, password: &str) -> Vec<u8> {
    format!("\0{authcid}\0{password}").into_bytes()
}

// ---- mechanisms ---------------------------------------------------------------------------

#[test]
fn standard_offers_scram_and_plain_only_over_tls() {
    let plain_text = Transport::default();
    assert_eq!(
        exchange(Service::Standard, plain_text.clone()).mechanisms(),
        ["SCRAM-SHA-512", "SCRAM-SHA-256"]
    );
    assert_eq!(
        standard().mechanisms(),
        ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]
    );
    let mut danger = settings(Service::Standard);
    danger.danger_plain_without_tls = true;
    let exchange = Exchange::new(users_for(Service::Standard), &danger, plain_text);
    assert_eq!(
        exchange.mechanisms(),
        ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]
    );
}

#[test]
fn external_is_offered_only_with_a_client_certificate() {
    assert_eq!(
        exchange(Service::Standard, with_certificate("alice")).mechanisms(),
        ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN", "EXTERNAL"]
    );
    assert_eq!(
        exchange(Service::None, Transport::default()).mechanisms(),
        ["ANONYMOUS", "PLAIN"]
    );
    assert_eq!(
        exchange(Service::None, with_certificate("x")).mechanisms(),
        ["ANONYMOUS", "PLAIN", "EXTERNAL"]
    );
    assert!(
        exchange(Service::External, with_certificate("x"))
            .mechanisms()
            .is_empty()
    );
}

#[test]
fn a_mechanism_not_offered_fails() {
    let mut exchange = exchange(Service::Standard, Transport::default());
    let (code, reason) = failure(exchange.init("PLAIN", Some(&plain("alice", "alice-pw")), NOW_MS));
    assert_eq!(code, FailureCode::Auth);
    assert!(reason.contains("not offered"), "{reason}");
    let mut exchange = standard();
    failure(exchange.init("ANONYMOUS", None, NOW_MS));
    let mut exchange = standard();
    let (_, reason) = failure(exchange.init(&"X".repeat(10_000), None, NOW_MS));
    assert!(reason.len() < 100, "{reason}");
    let mut external = self::exchange(Service::External, tls());
    failure(external.init("PLAIN", Some(&plain("alice", "alice-pw")), NOW_MS));
}

#[test]
fn one_attempt_per_connection() {
    let mut exchange = standard();
    principal(exchange.init("PLAIN", Some(&plain("alice", "alice-pw")), NOW_MS));
    failure(exchange.init("PLAIN", Some(&plain("alice", "alice-pw")), NOW_MS));
    let mut exchange = standard();
    failure(exchange.init("PLAIN", Some(&plain("alice", "wrong")), NOW_MS));
    failure(exchange.init("PLAIN", Some(&plain("alice", "alice-pw")), NOW_MS));
    let mut exchange = standard();
    failure(exchange.respond(b"anything", NOW_MS));
    failure(exchange.init("PLAIN", Some(&plain("alice", "alice-pw")), NOW_MS));
}

// ---- PLAIN --------------------------------------------------------------------------------

#[test]
fn plain_right_password() {
    let principal = principal(standard().init("PLAIN", Some(&plain("alice", "alice-pw")), NOW_MS));
    assert_eq!(&*principal.username, "alice");
    assert_eq!(principal.mechanism, Mechanism::Plain);
    assert_eq!(principal.grants, Grants::User);
    assert_eq!(principal.expires_at_ms, None);
}

#[test]
fn plain_wrong_password_and_unknown_user_look_the_same_to_the_client() {
    let (wrong, wrong_reason) =
        failure(standard().init("PLAIN", Some(&plain("alice", "bob-pw")), NOW_MS));
    let (unknown, unknown_reason) =
        failure(standard().init("PLAIN", Some(&plain("carol", "alice-pw")), NOW_MS));
    assert_eq!(wrong, FailureCode::Auth);
    assert_eq!(unknown, FailureCode::Auth);
    assert!(wrong_reason.contains("wrong password"), "{wrong_reason}");
    assert!(unknown_reason.contains("unknown user"), "{unknown_reason}");
    assert!(!wrong_reason.contains("bob-pw"));
    assert!(!unknown_reason.contains("alice-pw"));
}

#[test]
fn plain_malformed_frames_fail() {
    let long = format!("\0alice\0{}", "p".repeat(crate::PASSWORD_BYTES_MAX + 1));
    for message in [
        &b""[..],
        b"alice-pw",
        b"\0alice",
        b"\0alice\0",
        b"alice\0alice-pw",
        long.as_bytes(),
    ] {
        let (code, _) = failure(standard().init("PLAIN", Some(message), NOW_MS));
        assert_eq!(code, FailureCode::Auth);
    }
}

#[test]
fn plain_authzid_must_equal_authcid() {
    principal(standard().init("PLAIN", Some(b"alice\0alice\0alice-pw"), NOW_MS));
    let (_, reason) = failure(standard().init("PLAIN", Some(b"bob\0alice\0alice-pw"), NOW_MS));
    assert!(reason.contains("authzid"), "{reason}");
}

#[test]
fn plain_without_initial_response_gets_an_empty_challenge() {
    let mut exchange = standard();
    assert_eq!(challenge(exchange.init("PLAIN", None, NOW_MS)), "");
    principal(exchange.respond(&plain("bob", "bob-pw"), NOW_MS));
}

// ---- service accounts ---------------------------------------------------------------------

fn reviewed(username: &str, expires_at_ms: Option<i64>) -> Result<Reviewed, ReviewFailure> {
    Ok(Reviewed {
        username: username.to_owned(),
        expires_at_ms,
    })
}

#[test]
fn service_account_token_is_reviewed() {
    let mut exchange = standard();
    let token = review(exchange.init(
        "PLAIN",
        Some(&plain(SERVICE_ACCOUNT_USERNAME, "tok.en")),
        NOW_MS,
    ));
    assert_eq!(token, "tok.en");
    let expiry = NOW_MS + 60_000;
    let principal = principal(exchange.reviewed(reviewed(SA, Some(expiry)), NOW_MS));
    assert_eq!(&*principal.username, SA);
    assert_eq!(principal.grants, Grants::User);
    assert_eq!(principal.mechanism, Mechanism::Plain);
    assert_eq!(principal.expires_at_ms, Some(expiry));
}

#[test]
fn service_account_review_must_name_a_service_account_user() {
    for username in ["system:serviceaccount:ns:other", "alice"] {
        let mut exchange = standard();
        review(exchange.init("PLAIN", Some(&plain(SERVICE_ACCOUNT_USERNAME, "t")), NOW_MS));
        let (code, reason) = failure(exchange.reviewed(reviewed(username, None), NOW_MS));
        assert_eq!(code, FailureCode::Auth);
        assert!(reason.contains(username), "{reason}");
    }
}

#[test]
fn named_service_account_user_must_match_the_review() {
    let mut exchange = standard();
    assert_eq!(
        review(exchange.init("PLAIN", Some(&plain(SA, "t")), NOW_MS)),
        "t"
    );
    principal(exchange.reviewed(reviewed(SA, None), NOW_MS));

    let mut exchange = standard();
    review(exchange.init("PLAIN", Some(&plain(SA, "t")), NOW_MS));
    let (code, _) =
        failure(exchange.reviewed(reviewed("system:serviceaccount:ns:b", None), NOW_MS));
    assert_eq!(code, FailureCode::Auth);
}

#[test]
fn an_expired_token_fails() {
    let mut exchange = standard();
    review(exchange.init("PLAIN", Some(&plain(SERVICE_ACCOUNT_USERNAME, "t")), NOW_MS));
    let (code, reason) = failure(exchange.reviewed(reviewed(SA, Some(NOW_MS)), NOW_MS));
    assert_eq!(code, FailureCode::Auth);
    assert!(reason.contains("expired"), "{reason}");
}

#[test]
fn review_failures_map_to_outcome_codes() {
    let mut exchange = standard();
    review(exchange.init("PLAIN", Some(&plain(SERVICE_ACCOUNT_USERNAME, "t")), NOW_MS));
    let unavailable = ReviewFailure::Unavailable("connection refused".into());
    let (code, _) = failure(exchange.reviewed(Err(unavailable), NOW_MS));
    assert_eq!(code, FailureCode::SysTemp);

    let mut exchange = standard();
    review(exchange.init("PLAIN", Some(&plain(SERVICE_ACCOUNT_USERNAME, "t")), NOW_MS));
    let (code, _) = failure(exchange.reviewed(Err(ReviewFailure::Rejected("bad".into())), NOW_MS));
    assert_eq!(code, FailureCode::Auth);
}

#[test]
fn a_review_result_without_a_review_fails() {
    let mut exchange = standard();
    let (code, _) = failure(exchange.reviewed(reviewed(SA, None), NOW_MS));
    assert_eq!(code, FailureCode::Sys);
    let mut exchange = standard();
    principal(exchange.init("PLAIN", Some(&plain("alice", "alice-pw")), NOW_MS));
    failure(exchange.reviewed(reviewed(SA, None), NOW_MS));
}

#[test]
fn debug_never_shows_the_token() {
    let mut exchange = standard();
    let step = exchange.init(
        "PLAIN",
        Some(&plain(SERVICE_ACCOUNT_USERNAME, "secret-token")),
        NOW_MS,
    );
    let text = format!("{step:?} {exchange:?}");
    assert!(!text.contains("secret-token"), "{text}");
    assert!(text.contains("redacted"), "{text}");
}

// ---- SCRAM --------------------------------------------------------------------------------

/// Runs a SCRAM exchange with the test client and returns the final step and the server
/// signature the client expects.
fn scram(mechanism: &str, client: &ScramClient) -> (Step, String) {
    let mut exchange = standard();
    let server_first = challenge(exchange.init(mechanism, Some(client.first().as_bytes()), NOW_MS));
    let last = client.finish(&server_first);
    (
        exchange.respond(last.message.as_bytes(), NOW_MS),
        last.expected_server_final,
    )
}

/// A SCRAM round trip that must succeed: the principal, after checking that the server's
/// final message is the signature the client expects.
#[track_caller]
fn scram_success(mechanism: &str, client: &ScramClient) -> Principal {
    let (step, expected) = scram(mechanism, client);
    let Step::Success {
        principal,
        additional_data,
    } = step
    else {
        panic!("{step:?}");
    };
    assert_eq!(additional_data.unwrap(), expected.as_bytes());
    principal
}

#[test]
fn scram_sha512_round_trip() {
    let client = ScramClient::new(Hash::Sha512, "alice", "alice-pw");
    let principal = scram_success("SCRAM-SHA-512", &client);
    assert_eq!(&*principal.username, "alice");
    assert_eq!(principal.mechanism, Mechanism::ScramSha512);
    assert_eq!(principal.grants, Grants::User);
}

#[test]
fn scram_sha256_round_trip_with_the_test_client() {
    let client = ScramClient::new(Hash::Sha256, "bob", "bob-pw");
    let principal = scram_success("SCRAM-SHA-256", &client);
    assert_eq!(&*principal.username, "bob");
    assert_eq!(principal.mechanism, Mechanism::ScramSha256);
}

#[test]
fn scram_sha256_with_an_independent_client() {
    let client = scram_2::ScramClient::new("alice", "alice-pw", None);
    let (client, first) = client.client_first();
    let mut exchange = standard();
    let server_first = challenge(exchange.init("SCRAM-SHA-256", Some(first.as_bytes()), NOW_MS));
    let client = client.handle_server_first(&server_first).unwrap();
    let (client, last) = client.client_final();
    let Step::Success {
        additional_data: Some(server_final),
        ..
    } = exchange.respond(last.as_bytes(), NOW_MS)
    else {
        panic!("the independent client was refused");
    };
    client
        .handle_server_final(std::str::from_utf8(&server_final).unwrap())
        .unwrap();
}

#[test]
fn scram_independent_client_with_a_wrong_password_fails() {
    let client = scram_2::ScramClient::new("alice", "nope", None);
    let (client, first) = client.client_first();
    let mut exchange = standard();
    let server_first = challenge(exchange.init("SCRAM-SHA-256", Some(first.as_bytes()), NOW_MS));
    let (_, last) = client
        .handle_server_first(&server_first)
        .unwrap()
        .client_final();
    let (code, _) = failure(exchange.respond(last.as_bytes(), NOW_MS));
    assert_eq!(code, FailureCode::Auth);
}

#[test]
fn scram_wrong_password_fails() {
    let client = ScramClient::new(Hash::Sha512, "alice", "bob-pw");
    let (step, _) = scram("SCRAM-SHA-512", &client);
    let (code, reason) = failure(step);
    assert_eq!(code, FailureCode::Auth);
    assert!(reason.contains("wrong password"), "{reason}");
}

#[test]
fn scram_unknown_user_gets_a_plausible_challenge_and_fails_at_the_end() {
    let client = ScramClient::new(Hash::Sha256, "carol", "whatever");
    let mut exchange = standard();
    let server_first =
        challenge(exchange.init("SCRAM-SHA-256", Some(client.first().as_bytes()), NOW_MS));
    assert!(server_first.contains(",s="), "{server_first}");
    assert!(server_first.ends_with(",i=4096"), "{server_first}");
    let last = client.finish(&server_first);
    let (code, reason) = failure(exchange.respond(last.message.as_bytes(), NOW_MS));
    assert_eq!(code, FailureCode::Auth);
    assert!(reason.contains("unknown user"), "{reason}");

    // The same fake salt on the next attempt, as a real user's would be.
    let mut again = standard();
    let second = challenge(again.init("SCRAM-SHA-256", Some(client.first().as_bytes()), NOW_MS));
    let salt = |m: &str| {
        m.split(',')
            .find(|f| f.starts_with("s="))
            .unwrap()
            .to_owned()
    };
    assert_eq!(salt(&server_first), salt(&second));
}

#[test]
fn scram_service_account_user_fails() {
    let client = ScramClient::new(Hash::Sha256, SA, "token");
    let (step, _) = scram("SCRAM-SHA-256", &client);
    assert_eq!(failure(step).0, FailureCode::Auth);
}

#[test]
fn scram_wrong_nonce_fails() {
    let client = ScramClient::new(Hash::Sha256, "alice", "alice-pw");
    let mut exchange = standard();
    let server_first =
        challenge(exchange.init("SCRAM-SHA-256", Some(client.first().as_bytes()), NOW_MS));
    let forged = server_first.replacen("r=fyko", "r=fykx", 1);
    let without_proof = format!("c=biws,r={}", &forged[2..forged.find(',').unwrap()]);
    let last = client.finish_with(&server_first, &without_proof, b"", 4096);
    let (code, reason) = failure(exchange.respond(last.message.as_bytes(), NOW_MS));
    assert_eq!(code, FailureCode::Auth);
    assert!(reason.contains("nonce"), "{reason}");
}

#[test]
fn scram_bad_proof_fails() {
    let client = ScramClient::new(Hash::Sha512, "alice", "alice-pw");
    let mut exchange = standard();
    let server_first =
        challenge(exchange.init("SCRAM-SHA-512", Some(client.first().as_bytes()), NOW_MS));
    let last = client.finish(&server_first);
    let (head, proof) = last.message.rsplit_once(",p=").unwrap();
    let mut bytes = BASE64.decode(proof).unwrap();
    bytes[0] ^= 1;
    let tampered = format!("{head},p={}", BASE64.encode(bytes));
    let (code, reason) = failure(exchange.respond(tampered.as_bytes(), NOW_MS));
    assert_eq!(code, FailureCode::Auth);
    assert!(reason.contains("wrong password"), "{reason}");
}

#[test]
fn scram_channel_binding_request_is_refused() {
    let mut exchange = standard();
    let (code, reason) = failure(exchange.init(
        "SCRAM-SHA-256",
        Some(b"p=tls-server-end-point,,n=alice,r=abc"),
        NOW_MS,
    ));
    assert_eq!(code, FailureCode::Auth);
    assert!(reason.contains("channel binding"), "{reason}");
}

#[test]
fn scram_client_without_binding_support_flag_is_accepted() {
    let mut client = ScramClient::new(Hash::Sha256, "alice", "alice-pw");
    client.gs2_header = "y,,".into();
    scram_success("SCRAM-SHA-256", &client);
}

#[test]
fn scram_authzid_must_equal_the_user() {
    let mut client = ScramClient::new(Hash::Sha256, "alice", "alice-pw");
    client.gs2_header = "n,a=alice,".into();
    scram_success("SCRAM-SHA-256", &client);
    client.gs2_header = "n,a=bob,".into();
    let mut exchange = standard();
    failure(exchange.init("SCRAM-SHA-256", Some(client.first().as_bytes()), NOW_MS));
}

#[test]
fn scram_without_initial_response() {
    let client = ScramClient::new(Hash::Sha256, "alice", "alice-pw");
    let mut exchange = standard();
    assert_eq!(challenge(exchange.init("SCRAM-SHA-256", None, NOW_MS)), "");
    let server_first = challenge(exchange.respond(client.first().as_bytes(), NOW_MS));
    let last = client.finish(&server_first);
    principal(exchange.respond(last.message.as_bytes(), NOW_MS));
    failure(exchange.respond(last.message.as_bytes(), NOW_MS));
}

#[test]
fn server_nonces_differ_between_exchanges_with_os_randomness() {
    let client = ScramClient::new(Hash::Sha256, "alice", "alice-pw");
    let first = |_: u8| {
        let mut exchange = Exchange::new(
            users_for(Service::Standard),
            &settings(Service::Standard),
            tls(),
        );
        challenge(exchange.init("SCRAM-SHA-256", Some(client.first().as_bytes()), NOW_MS))
    };
    assert_ne!(first(1), first(2));
}

// ---- EXTERNAL, ANONYMOUS and the none service ---------------------------------------------

#[test]
fn external_maps_the_subject_to_a_user() {
    let mut exchange = exchange(Service::Standard, with_certificate("Alice"));
    let alice = principal(exchange.init("EXTERNAL", None, NOW_MS));
    assert_eq!(&*alice.username, "alice");
    assert_eq!(alice.mechanism, Mechanism::External);
    assert_eq!(alice.grants, Grants::User);

    let mut exchange = self::exchange(Service::Standard, with_certificate("alice"));
    principal(exchange.init("EXTERNAL", Some(b"alice"), NOW_MS));
    let mut exchange = self::exchange(Service::Standard, with_certificate("alice"));
    failure(exchange.init("EXTERNAL", Some(b"bob"), NOW_MS));
    let mut exchange = self::exchange(Service::Standard, with_certificate("mallory"));
    failure(exchange.init("EXTERNAL", Some(b""), NOW_MS));
}

#[test]
fn external_without_a_certificate_fails() {
    let mut exchange = standard();
    failure(exchange.init("EXTERNAL", None, NOW_MS));
    let mut exchange = self::exchange(Service::None, tls());
    failure(exchange.init("EXTERNAL", None, NOW_MS));
}

#[test]
fn none_service_grants_everything() {
    let mut exchange = exchange(Service::None, Transport::default());
    let anonymous = principal(exchange.init("ANONYMOUS", Some(b"trace@example"), NOW_MS));
    assert_eq!(&*anonymous.username, "anonymous");
    assert_eq!(anonymous.grants, Grants::All);
    assert_eq!(anonymous.mechanism, Mechanism::Anonymous);

    let mut exchange = self::exchange(Service::None, Transport::default());
    let plain_user = principal(exchange.init("PLAIN", Some(&plain("anyone", "anything")), NOW_MS));
    assert_eq!(&*plain_user.username, "anyone");
    assert_eq!(plain_user.grants, Grants::All);

    let mut exchange = self::exchange(Service::None, Transport::default());
    failure(exchange.init("PLAIN", Some(b"no separators"), NOW_MS));

    let mut exchange = self::exchange(Service::None, with_certificate("CN-ish"));
    let external = principal(exchange.init("EXTERNAL", None, NOW_MS));
    assert_eq!(&*external.username, "CN-ish");
    assert_eq!(external.grants, Grants::All);
}

#[test]
fn anonymous_trace_is_bounded() {
    let trace = vec![b'x'; crate::ANONYMOUS_TRACE_BYTES_MAX + 1];
    let mut exchange = exchange(Service::None, Transport::default());
    failure(exchange.init("ANONYMOUS", Some(&trace), NOW_MS));
}

#[test]
fn exchanges_and_users_move_between_tasks() {
    fn send<T: Send>() {}
    fn shared<T: Send + Sync>() {}
    send::<Exchange>();
    shared::<Users>();
    shared::<Principal>();
}

// ---- never a panic ------------------------------------------------------------------------

fn any_service() -> impl Strategy<Value = Service> {
    prop_oneof![
        Just(Service::None),
        Just(Service::Standard),
        Just(Service::External)
    ]
}

fn any_mechanism() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("ANONYMOUS"),
        Just("PLAIN"),
        Just("SCRAM-SHA-256"),
        Just("SCRAM-SHA-512"),
        Just("EXTERNAL"),
        Just("GSSAPI"),
    ]
}

/// Bytes that are sometimes close to a valid message: random, or a valid prefix with noise.
fn any_message() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        (
            prop_oneof![
                Just(b"n,,n=alice,r=".to_vec()),
                Just(b"\0alice\0".to_vec()),
                Just(b"c=biws,r=fyko".to_vec()),
                Just(b"\0@@serviceaccount@@\0".to_vec()),
            ],
            proptest::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(mut head, tail)| {
                head.extend(tail);
                head
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_frames_never_panic(
        service in any_service(),
        mechanism in any_mechanism(),
        initial in proptest::option::of(any_message()),
        responses in proptest::collection::vec(any_message(), 0..3),
        certificate in any::<bool>(),
    ) {
        let transport = if certificate { with_certificate("alice") } else { tls() };
        let mut exchange = Exchange::with_random(
            users_for(service), &settings(service), transport, Box::new(seeded(3)));
        let mut step = exchange.init(mechanism, initial.as_deref(), NOW_MS);
        for response in &responses {
            step = exchange.respond(response, NOW_MS);
        }
        if let Step::Review { .. } = step {
            step = exchange.reviewed(Ok(Reviewed { username: SA.into(), expires_at_ms: None }), NOW_MS);
        }
        let pending = matches!(step, Step::Review { .. });
        prop_assert!(!pending);
    }

    #[test]
    fn arbitrary_client_final_never_panics(last in any_message()) {
        let client = ScramClient::new(Hash::Sha256, "alice", "alice-pw");
        let mut exchange = Exchange::with_random(
            Arc::clone(&STANDARD_USERS), &settings(Service::Standard), tls(), Box::new(seeded(3)));
        challenge(exchange.init("SCRAM-SHA-256", Some(client.first().as_bytes()), NOW_MS));
        let step = exchange.respond(&last, NOW_MS);
        let refused = matches!(step, Step::Failure { code: FailureCode::Auth, .. });
        prop_assert!(refused, "{:?}", step);
    }
}

static STANDARD_USERS: std::sync::LazyLock<Arc<Users>> =
    std::sync::LazyLock::new(|| users(Service::Standard));
