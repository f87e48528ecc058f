//! Helpers shared by the integration tests.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sluice_tokenreview::testing::{FakeApiServer, FakeToken};

/// A JWT-shaped token (unsigned: the fake API server is the authority) expiring at `exp`, at
/// least `bytes_min` long.
pub(crate) fn jwt(exp: SystemTime, subject: &str, bytes_min: usize) -> String {
    let exp = exp
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"test"}"#);
    let mut token = String::new();
    let mut padding = String::new();
    loop {
        let claims = format!(
            r#"{{"aud":["amqp"],"exp":{exp},"iss":"https://kubernetes.default.svc","sub":"{subject}","pad":"{padding}"}}"#
        );
        token.clear();
        token.push_str(&header);
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(claims));
        token.push('.');
        token.push_str(&"s".repeat(342)); // an RS256 signature's length
        if token.len() >= bytes_min || padding.len() > 16 * 1024 {
            return token;
        }
        padding.push('x');
    }
}

/// A fake API server knowing `tokens` (token, namespace:name, audiences).
pub(crate) async fn fake(tokens: &[(&str, &str, &[&str])]) -> FakeApiServer {
    let map: HashMap<String, FakeToken> = tokens
        .iter()
        .map(|(token, account, audiences)| {
            let (namespace, name) = account.split_once(':').unwrap();
            (
                (*token).to_owned(),
                FakeToken::service_account(namespace, name, audiences),
            )
        })
        .collect();
    FakeApiServer::start(map).await.unwrap()
}

/// The API server's own audience, which tokens for it carry.
pub(crate) const API: &str = FakeApiServer::API_AUDIENCE;

/// Seconds after `t`.
pub(crate) fn later(t: SystemTime, seconds: u64) -> SystemTime {
    t + Duration::from_secs(seconds)
}

/// Now, rounded down to a whole second (JWT `exp` has whole seconds here).
pub(crate) fn now_whole() -> SystemTime {
    let seconds = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
}
