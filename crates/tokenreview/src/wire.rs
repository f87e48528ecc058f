//! The TokenReview (`authentication.k8s.io/v1`) on the wire: the request we send and what
//! the answer means. Unknown fields of the answer are ignored; missing ones take the
//! defaults Kubernetes omits them for (`authenticated` false, no audiences).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ReviewError;
use crate::cache::Answer;

/// Longest `status.error` text kept in a [`ReviewError::Rejected`].
pub const ERROR_TEXT_CHARS_MAX: usize = 512;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenReviewRequest<'a> {
    kind: &'static str,
    api_version: &'static str,
    spec: RequestSpec<'a>,
}

#[derive(Serialize)]
struct RequestSpec<'a> {
    token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    audiences: Option<[&'a str; 1]>,
}

pub(crate) fn request_body(token: &str, audience: Option<&str>) -> Result<Bytes, ReviewError> {
    let request = TokenReviewRequest {
        kind: "TokenReview",
        api_version: "authentication.k8s.io/v1",
        spec: RequestSpec {
            token,
            audiences: audience.map(|a| [a]),
        },
    };
    serde_json::to_vec(&request)
        .map(Bytes::from)
        .map_err(|error| ReviewError::Unavailable(format!("cannot encode the request: {error}")))
}

#[derive(Deserialize)]
struct TokenReviewResponse {
    #[serde(default)]
    status: ReviewStatus,
}

#[derive(Deserialize, Default)]
struct ReviewStatus {
    #[serde(default)]
    authenticated: bool,
    #[serde(default)]
    user: UserInfo,
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize, Default)]
struct UserInfo {
    #[serde(default)]
    username: String,
}

/// A Kubernetes `Status` object, sent with error codes.
#[derive(Deserialize)]
struct ApiStatus {
    #[serde(default)]
    message: String,
}

/// What the API server's answer means for the token.
pub(crate) fn judge(
    status: hyper::StatusCode,
    body: &[u8],
    audience: Option<&str>,
) -> Result<Answer, ReviewError> {
    if !status.is_success() {
        let message = serde_json::from_slice::<ApiStatus>(body)
            .map(|s| truncate(&s.message))
            .unwrap_or_default();
        let whose = match status.as_u16() {
            401 | 403 => "; our own credential was refused",
            _ => "",
        };
        return Err(ReviewError::Unavailable(format!(
            "the API server answered {status}{whose}: {message}"
        )));
    }
    let review: TokenReviewResponse = serde_json::from_slice(body).map_err(|error| {
        ReviewError::Unavailable(format!(
            "the API server's answer is not a TokenReview: {error}"
        ))
    })?;
    let status = review.status;
    if !status.authenticated {
        let reason = status
            .error
            .as_deref()
            .map_or_else(|| "not authenticated".to_owned(), truncate);
        return Err(ReviewError::Rejected(reason));
    }
    if status.user.username.is_empty() {
        return Err(ReviewError::Unavailable(
            "the API server authenticated the token but gave no status.user.username".to_owned(),
        ));
    }
    if let Some(wanted) = audience
        && !status.audiences.iter().any(|got| got == wanted)
    {
        return Err(ReviewError::WrongAudience {
            wanted: wanted.to_owned(),
            got: status.audiences,
        });
    }
    Ok(Answer {
        username: status.user.username,
        audiences: status.audiences,
    })
}

fn truncate(text: &str) -> String {
    text.chars().take(ERROR_TEXT_CHARS_MAX).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use hyper::StatusCode;

    #[test]
    fn the_request_is_a_v1_token_review() {
        let body = request_body("tok\"en", Some("amqp")).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1",
                "spec":{"token":"tok\"en","audiences":["amqp"]}})
        );
        let body = request_body("t", None).unwrap();
        assert_eq!(&body[..], br#"{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","spec":{"token":"t"}}"#);
    }

    #[test]
    fn judges_answers() {
        let ok = br#"{"status":{"authenticated":true,"user":{"username":"system:serviceaccount:ns:sa"},"audiences":["amqp"]}}"#;
        let answer = judge(StatusCode::CREATED, ok, Some("amqp")).unwrap();
        assert_eq!(answer.username, "system:serviceaccount:ns:sa");
        assert!(matches!(
            judge(StatusCode::CREATED, ok, Some("other")),
            Err(ReviewError::WrongAudience { wanted, got }) if wanted == "other" && got == ["amqp"]
        ));
        let no_audiences = br#"{"status":{"authenticated":true,"user":{"username":"u"}}}"#;
        assert!(matches!(
            judge(StatusCode::CREATED, no_audiences, Some("amqp")),
            Err(ReviewError::WrongAudience { .. })
        ));
        let refused = br#"{"status":{"user":{},"error":"invalid bearer token"}}"#;
        assert!(matches!(
            judge(StatusCode::CREATED, refused, None),
            Err(ReviewError::Rejected(reason)) if reason == "invalid bearer token"
        ));
        let forbidden = br#"{"kind":"Status","message":"tokenreviews is forbidden","code":403}"#;
        let error = judge(StatusCode::FORBIDDEN, forbidden, None).unwrap_err();
        assert!(
            matches!(&error, ReviewError::Unavailable(m) if m.contains("forbidden") && m.contains("our own credential")),
            "{error}"
        );
        for (status, body) in [
            (StatusCode::INTERNAL_SERVER_ERROR, &b""[..]),
            (StatusCode::OK, b"<html>"),
            (
                StatusCode::OK,
                br#"{"status":{"authenticated":true,"user":{}}}"#,
            ),
        ] {
            assert!(matches!(
                judge(status, body, None),
                Err(ReviewError::Unavailable(_))
            ));
        }
    }

    #[test]
    fn long_error_texts_are_cut() {
        let long = "x".repeat(10_000);
        let body = serde_json::json!({"status":{"error": long}}).to_string();
        let Err(ReviewError::Rejected(reason)) = judge(StatusCode::CREATED, body.as_bytes(), None)
        else {
            panic!("not rejected");
        };
        assert_eq!(reason.len(), ERROR_TEXT_CHARS_MAX);
    }
}
