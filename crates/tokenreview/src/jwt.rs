//! The `exp` claim of a JWT, read without verifying the signature.
//!
//! The TokenReview is the authority on whether a token is valid; `exp` only lets us refuse an
//! expired token without asking, bound the cache, and tell the broker when to close the
//! connection. A token that is not a JWT (or whose payload we cannot read) has no `exp` here,
//! and the API server decides.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};

/// What the token's `exp` claim says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// No readable `exp` (not a JWT, or no such claim).
    Unknown,
    /// The token is valid until this instant.
    At(SystemTime),
}

impl Expiry {
    /// The instant, if known.
    pub(crate) fn instant(self) -> Option<SystemTime> {
        match self {
            Expiry::Unknown => None,
            Expiry::At(at) => Some(at),
        }
    }

    /// Whether the token has expired at `now` (RFC 7519 §4.1.4: not accepted "on or after").
    pub(crate) fn has_passed(self, now: SystemTime) -> bool {
        matches!(self, Expiry::At(at) if now >= at)
    }
}

/// Reads `exp` from the payload of a compact JWS (`header.payload.signature`).
pub(crate) fn expiry(token: &str) -> Expiry {
    let mut parts = token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Expiry::Unknown;
    };
    let Ok(bytes) = URL_SAFE_NO_PAD
        .decode(payload)
        .or_else(|_| URL_SAFE.decode(payload))
    else {
        return Expiry::Unknown;
    };
    let Ok(claims) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Expiry::Unknown;
    };
    match claims.get("exp") {
        Some(serde_json::Value::Number(exp)) => from_numeric_date(exp),
        _ => Expiry::Unknown,
    }
}

/// A JWT NumericDate (seconds since the epoch, possibly fractional or negative).
fn from_numeric_date(exp: &serde_json::Number) -> Expiry {
    if let Some(seconds) = exp.as_u64() {
        return SystemTime::UNIX_EPOCH
            .checked_add(Duration::from_secs(seconds))
            .map_or(Expiry::Unknown, Expiry::At);
    }
    if exp.as_i64().is_some() {
        // Before 1970: long expired.
        return Expiry::At(SystemTime::UNIX_EPOCH);
    }
    match exp.as_f64() {
        Some(seconds) if seconds < 0.0 => Expiry::At(SystemTime::UNIX_EPOCH),
        Some(seconds) => Duration::try_from_secs_f64(seconds)
            .ok()
            .and_then(|after| SystemTime::UNIX_EPOCH.checked_add(after))
            .map_or(Expiry::Unknown, Expiry::At),
        None => Expiry::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    #[test]
    fn reads_exp_of_a_jwt() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        assert_eq!(expiry(&jwt(r#"{"exp":1900000000}"#)), Expiry::At(at));
        assert_eq!(
            expiry(&jwt(r#"{"exp":1900000000.5}"#)),
            Expiry::At(at + Duration::from_millis(500))
        );
    }

    #[test]
    fn negative_exp_is_long_past() {
        let exp = expiry(&jwt(r#"{"exp":-5}"#));
        assert!(exp.has_passed(SystemTime::UNIX_EPOCH));
    }

    #[test]
    fn tokens_without_a_readable_exp_are_unknown() {
        for token in [
            "opaque-token",
            "a.b",
            "a.b.c.d",
            "a.!!!.c",
            &jwt(r#"{"sub":"x"}"#),
            &jwt(r#"{"exp":"soon"}"#),
            &jwt(r#"{"exp":1e400}"#),
            &jwt("not json"),
        ] {
            assert_eq!(expiry(token), Expiry::Unknown, "{token}");
        }
    }

    #[test]
    fn expiry_is_on_or_after_exp() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let exp = Expiry::At(at);
        assert!(!exp.has_passed(at - Duration::from_secs(1)));
        assert!(exp.has_passed(at));
        assert!(!Expiry::Unknown.has_passed(at));
    }
}
