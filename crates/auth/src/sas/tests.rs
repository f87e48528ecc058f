use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::Sha256;
use sluice_config::resources::AddressSpaceType;

use super::*;
use crate::rights::Operation;

const NOW_MS: i64 = 1_700_000_000_000;
const AUDIENCE: &str = "sb://broker.example/orders";
const KEY: &str = "R/mqADMNldBj5tr1tLKxl6/JxaNuTqhPi+AEhHSBwyY=";

/// Python's `urllib.parse.quote_plus` keeps letters, digits and `_.-~` (and writes a space
/// as `+`, which none of these inputs has).
const QUOTE_PLUS: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

fn quote_plus(value: &str) -> String {
    utf8_percent_encode(value, QUOTE_PLUS).to_string()
}

/// A token built as the Azure SDK's `generate_sas_token(audience, policy, key, expiry)`
/// builds it: sign `quote_plus(audience) + "\n" + expiry` with the key string's UTF-8 bytes,
/// then `urlencode({sr: audience, sig: signature, se: expiry, skn: policy})`, which
/// `quote_plus`-encodes every value.
fn azure_token(audience: &str, policy: &str, key: &str, expiry_s: i64) -> String {
    let encoded_uri = quote_plus(audience);
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{encoded_uri}\n{expiry_s}").as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    format!(
        "SharedAccessSignature sr={}&sig={}&se={expiry_s}&skn={}",
        encoded_uri,
        quote_plus(&signature),
        quote_plus(policy)
    )
}

fn keys() -> Vec<SasKey> {
    let mut rights = Rights::new();
    rights.grant("orders", true, false, AddressSpaceType::Standard);
    vec![
        SasKey {
            name: "other".into(),
            key: b"another key".to_vec(),
            rights: Rights::new(),
        },
        SasKey {
            name: "RootManageSharedAccessKey".into(),
            key: KEY.as_bytes().to_vec(),
            rights,
        },
    ]
}

fn later_s() -> i64 {
    NOW_MS / 1000 + 3600
}

#[test]
fn a_valid_token() {
    let token = azure_token(AUDIENCE, "RootManageSharedAccessKey", KEY, later_s());
    assert!(
        token.contains("sr=sb%3A%2F%2Fbroker.example%2Forders"),
        "{token}"
    );
    let grant = verify_sas(&token, &keys(), NOW_MS).unwrap();
    assert_eq!(grant.resource, AUDIENCE);
    assert_eq!(grant.key_name, "RootManageSharedAccessKey");
    assert_eq!(grant.expires_at_ms, later_s() * 1000);
    assert!(grant.rights.allows(Operation::Send, "orders"));
}

#[test]
fn fields_in_any_order_and_unknown_fields_ignored() {
    let token = azure_token(AUDIENCE, "RootManageSharedAccessKey", KEY, later_s());
    let query = token.strip_prefix("SharedAccessSignature ").unwrap();
    let mut fields: Vec<&str> = query.split('&').collect();
    fields.reverse();
    fields.push("x=1");
    let reordered = format!("SharedAccessSignature {}", fields.join("&"));
    assert!(verify_sas(&reordered, &keys(), NOW_MS).is_ok());
}

#[test]
fn an_expired_token() {
    let past_s = NOW_MS / 1000 - 1;
    let token = azure_token(AUDIENCE, "RootManageSharedAccessKey", KEY, past_s);
    assert!(matches!(
        verify_sas(&token, &keys(), NOW_MS),
        Err(AuthError::SasExpired { .. })
    ));
}

#[test]
fn a_token_signed_with_the_wrong_key() {
    let token = azure_token(
        AUDIENCE,
        "RootManageSharedAccessKey",
        "not the key",
        later_s(),
    );
    assert_eq!(
        verify_sas(&token, &keys(), NOW_MS),
        Err(AuthError::SasBadSignature(
            "RootManageSharedAccessKey".into()
        ))
    );
}

#[test]
fn a_tampered_resource_or_expiry() {
    let token = azure_token(AUDIENCE, "RootManageSharedAccessKey", KEY, later_s());
    let resource = token.replace("orders", "payments");
    assert!(matches!(
        verify_sas(&resource, &keys(), NOW_MS),
        Err(AuthError::SasBadSignature(_))
    ));
    let expiry = token.replace(
        &format!("se={}", later_s()),
        &format!("se={}", later_s() + 1),
    );
    assert!(matches!(
        verify_sas(&expiry, &keys(), NOW_MS),
        Err(AuthError::SasBadSignature(_))
    ));
}

#[test]
fn an_unknown_key_name() {
    let token = azure_token(AUDIENCE, "nobody", KEY, later_s());
    assert_eq!(
        verify_sas(&token, &keys(), NOW_MS),
        Err(AuthError::SasUnknownKey("nobody".into()))
    );
}

#[test]
fn malformed_and_oversized_tokens() {
    let valid = azure_token(AUDIENCE, "RootManageSharedAccessKey", KEY, later_s());
    for token in [
        "",
        "Bearer abc",
        "SharedAccessSignature ",
        "SharedAccessSignature sr=a&sig=b&se=1",
        "SharedAccessSignature sr=a&sr=a&sig=b&se=1&skn=other",
        "SharedAccessSignature sr=a&sig=!!&se=1&skn=other",
        "SharedAccessSignature sr=a&sig&se=1&skn=other",
    ] {
        assert!(
            matches!(
                verify_sas(token, &keys(), NOW_MS),
                Err(AuthError::SasMalformed(_))
            ),
            "{token}"
        );
    }
    let huge = format!("{valid}&pad={}", "x".repeat(SAS_TOKEN_BYTES_MAX));
    assert!(matches!(
        verify_sas(&huge, &keys(), NOW_MS),
        Err(AuthError::SasTooLong { .. })
    ));
}

#[test]
fn errors_and_debug_never_show_the_key_or_signature() {
    let token = azure_token(
        AUDIENCE,
        "RootManageSharedAccessKey",
        "not the key",
        later_s(),
    );
    let error = verify_sas(&token, &keys(), NOW_MS).unwrap_err().to_string();
    let signature = token
        .split("sig=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert!(!error.contains(signature), "{error}");
    let debug = format!("{:?}", keys());
    assert!(!debug.contains(KEY), "{debug}");
}
