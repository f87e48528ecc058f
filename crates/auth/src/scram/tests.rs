use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::*;
use crate::test_support::ScramClient;

const RFC7677_CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const RFC7677_SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const RFC7677_SERVER_FIRST: &str = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                    s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const RFC7677_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                    p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const RFC7677_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

fn rfc7677_server() -> (ScramServer, String) {
    let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
    let credential = ScramCredential::derive(Hash::Sha256, b"pencil", &salt, 4096);
    let first = parse_client_first(RFC7677_CLIENT_FIRST.as_bytes()).unwrap();
    ScramServer::start(Hash::Sha256, first, credential, None, RFC7677_SERVER_NONCE)
}

#[test]
fn rfc7677_test_vector() {
    let (server, server_first) = rfc7677_server();
    assert_eq!(server_first, RFC7677_SERVER_FIRST);
    let server_final = server.finish(RFC7677_CLIENT_FINAL.as_bytes()).unwrap();
    assert_eq!(server_final, RFC7677_SERVER_FINAL);
}

#[test]
fn rfc7677_with_a_flipped_proof_bit_fails() {
    let (server, _) = rfc7677_server();
    let tampered = RFC7677_CLIENT_FINAL.replace("p=dHzb", "p=dHzc");
    assert_eq!(server.finish(tampered.as_bytes()), Err("wrong password"));
}

#[test]
fn rfc7677_plain_check_against_the_credential() {
    let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
    let credential = ScramCredential::derive(Hash::Sha256, b"pencil", &salt, 4096);
    assert!(credential.verify_password(Hash::Sha256, b"pencil"));
    assert!(!credential.verify_password(Hash::Sha256, b"pencil "));
    assert!(!format!("{credential:?}").contains("stored"));
}

#[test]
fn sha512_round_trip_with_the_test_client() {
    let credential = ScramCredential::derive(Hash::Sha512, b"s3cret", b"0123456789abcdef", 4096);
    let client = ScramClient::new(Hash::Sha512, "alice", "s3cret");
    let first = parse_client_first(client.first().as_bytes()).unwrap();
    let (server, server_first) = ScramServer::start(Hash::Sha512, first, credential, None, "xyz");
    let last = client.finish(&server_first);
    assert_eq!(
        server.finish(last.message.as_bytes()).unwrap(),
        last.expected_server_final
    );
}

#[test]
fn a_refused_exchange_fails_even_with_a_right_proof() {
    let credential = ScramCredential::derive(Hash::Sha256, b"pw", b"salt", 4096);
    let client = ScramClient::new(Hash::Sha256, "ghost", "pw");
    let first = parse_client_first(client.first().as_bytes()).unwrap();
    let (server, server_first) =
        ScramServer::start(Hash::Sha256, first, credential, Some("unknown user"), "n");
    let last = client.finish(&server_first);
    assert_eq!(server.finish(last.message.as_bytes()), Err("unknown user"));
}

#[test]
fn parses_client_first_fields() {
    let first = parse_client_first(b"n,a=a=3Db,n=a=3Db,r=abc,x=ext").unwrap();
    assert_eq!(first.gs2_header, "n,a=a=3Db,");
    assert_eq!(first.authzid.as_deref(), Some("a=b"));
    assert_eq!(first.username, "a=b");
    assert_eq!(first.nonce, "abc");
    assert_eq!(first.bare, "n=a=3Db,r=abc,x=ext");
    let first = parse_client_first(b"y,,n=x=2Cy,r=n").unwrap();
    assert_eq!(first.gs2_header, "y,,");
    assert_eq!(first.username, "x,y");
}

#[test]
fn refuses_bad_client_first() {
    for (message, why) in [
        (&b""[..], "empty"),
        (b"p=tls-unique,,n=user,r=abc", "channel binding"),
        (b"q,,n=user,r=abc", "bad flag"),
        (b"n,x=y,n=user,r=abc", "bad authzid"),
        (b"n,,m=ext,n=user,r=abc", "mandatory extension"),
        (b"n,,r=abc", "no username"),
        (b"n,,n=,r=abc", "empty username"),
        (b"n,,n=us=er,r=abc", "bad escape"),
        (b"n,,n=user", "no nonce"),
        (b"n,,n=user,r=", "empty nonce"),
        (b"n,,n=user,r=a b", "space in nonce"),
        (b"n,,n=us\xffer,r=abc", "not UTF-8"),
    ] {
        assert!(parse_client_first(message).is_err(), "{why}");
    }
    let long_nonce = format!("n,,n=user,r={}", "x".repeat(SCRAM_NONCE_BYTES_MAX + 1));
    assert!(parse_client_first(long_nonce.as_bytes()).is_err());
    let long_name = format!("n,,n={},r=abc", "u".repeat(USERNAME_BYTES_MAX + 1));
    assert!(parse_client_first(long_name.as_bytes()).is_err());
    let long = format!("n,,n=user,r=abc,x={}", "y".repeat(SCRAM_MESSAGE_BYTES_MAX));
    assert_eq!(
        parse_client_first(long.as_bytes()),
        Err("SCRAM message is too long")
    );
}

#[test]
fn refuses_bad_client_final() {
    let (server, _) = rfc7677_server();
    let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    let proof = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    for (message, expected) in [
        (format!("c=biws,r={nonce}"), "client-final has no proof"),
        (
            format!("c=eSws,r={nonce},p={proof}"),
            "client-final channel binding does not match the gs2 header",
        ),
        (
            format!("c=b!ws,r={nonce},p={proof}"),
            "client-final channel binding is not base64",
        ),
        (
            format!("r={nonce},p={proof}"),
            "client-final has no channel binding",
        ),
        (
            format!("c=biws,r=rOprNGfwEbeRWgbNEkqO,p={proof}"),
            "client-final nonce does not match",
        ),
        (format!("c=biws,p={proof}"), "client-final has no nonce"),
        (
            format!("c=biws,r={nonce},p=AAAA"),
            "client-final proof has the wrong length",
        ),
        (
            format!("c=biws,r={nonce},p=!!"),
            "client-final proof is not base64",
        ),
    ] {
        assert_eq!(
            server.finish(message.as_bytes()),
            Err(expected),
            "{message}"
        );
    }
}
