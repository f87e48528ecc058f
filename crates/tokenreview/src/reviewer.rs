//! [`Reviewer`]: a token in, a reviewed identity (or why not) out.
//!
//! Order of checks for one token: its size; its own `exp` (refused locally once passed); the
//! cache; then one TokenReview under `request_timeout`. Only positive answers are cached, so
//! a token the API server refused is asked about again next time (it may have just been
//! created), and a revoked one stops working within `cache_ttl`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::Semaphore;

use crate::cache::{self, Cache};
use crate::http::Client;
use crate::jwt;
use crate::wire::{judge, request_body};
use crate::{ApiServer, ReviewError};

/// Default [`ReviewerSettings::cache_ttl`].
pub const CACHE_TTL_DEFAULT: Duration = Duration::from_secs(30);
/// Default [`ReviewerSettings::cache_entries_max`].
pub const CACHE_ENTRIES_MAX_DEFAULT: usize = 10_000;
/// Default [`ReviewerSettings::request_timeout`].
pub const REQUEST_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);
/// Default [`ReviewerSettings::token_bytes_max`].
pub const TOKEN_BYTES_MAX_DEFAULT: usize = 8 * 1024;
/// Default [`ReviewerSettings::response_bytes_max`].
pub const RESPONSE_BYTES_MAX_DEFAULT: usize = 64 * 1024;
/// Default [`ReviewerSettings::reviews_in_flight_max`].
pub const REVIEWS_IN_FLIGHT_MAX_DEFAULT: usize = 64;

/// How a [`Reviewer`] asks and caches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewerSettings {
    /// `--token-audience`: asked for in `spec.audiences` and required in `status.audiences`.
    pub audience: Option<String>,
    /// How long a positive answer is reused (default 30 s), never past the token's own `exp`.
    pub cache_ttl: Duration,
    /// Most cached answers (default 10,000); the oldest go first.
    pub cache_entries_max: usize,
    /// Per review (default 5 s), waiting for a free slot included: past it the review fails
    /// as unavailable.
    pub request_timeout: Duration,
    /// Largest token accepted (default 8 KiB).
    pub token_bytes_max: usize,
    /// Largest response body read (default 64 KiB).
    pub response_bytes_max: usize,
    /// Most reviews waiting on the API server at once (default 64); more wait their turn.
    pub reviews_in_flight_max: usize,
}

impl Default for ReviewerSettings {
    fn default() -> ReviewerSettings {
        ReviewerSettings {
            audience: None,
            cache_ttl: CACHE_TTL_DEFAULT,
            cache_entries_max: CACHE_ENTRIES_MAX_DEFAULT,
            request_timeout: REQUEST_TIMEOUT_DEFAULT,
            token_bytes_max: TOKEN_BYTES_MAX_DEFAULT,
            response_bytes_max: RESPONSE_BYTES_MAX_DEFAULT,
            reviews_in_flight_max: REVIEWS_IN_FLIGHT_MAX_DEFAULT,
        }
    }
}

/// The warning to log when no audience is configured, or `None` when one is.
pub fn audience_warning(settings: &ReviewerSettings) -> Option<&'static str> {
    match settings.audience {
        Some(_) => None,
        None => Some(
            "no token audience is configured (--token-audience): any service-account token \
             of the cluster, issued for any purpose, is accepted for the MessagingUser of \
             its service account",
        ),
    }
}

/// An accepted token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reviewed {
    /// `status.user.username`, e.g. `system:serviceaccount:<ns>:<name>`.
    pub username: String,
    /// `status.audiences`.
    pub audiences: Vec<String>,
    /// The token's `exp` claim if the token is a JWT (read without verifying; the
    /// TokenReview is the authority). The broker closes the connection then.
    pub expires_at: Option<SystemTime>,
    /// Whether the answer came from the cache.
    pub cached: bool,
}

/// Checks tokens against the API server. Shared by every connection (`Clone` shares one
/// cache and one connection pool). Concurrent reviews of one token may both go to the API
/// server; that is fine. No lock is held across an await.
#[derive(Clone)]
pub struct Reviewer {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    settings: ReviewerSettings,
    cache: Mutex<Cache>,
    in_flight: Semaphore,
    api_calls: AtomicU64,
    cache_hits: AtomicU64,
}

impl std::fmt::Debug for Reviewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reviewer")
            .field("base_url", &self.inner.client.server().base_url())
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl Reviewer {
    /// A reviewer for `server`; fails on settings out of range or an unusable TLS setup.
    pub fn new(server: ApiServer, settings: ReviewerSettings) -> Result<Reviewer, ReviewError> {
        validate(&settings)?;
        let client = Client::new(server)?;
        let cache = Cache::new(settings.cache_ttl, settings.cache_entries_max);
        Ok(Reviewer {
            inner: Arc::new(Inner {
                client,
                cache: Mutex::new(cache),
                in_flight: Semaphore::new(settings.reviews_in_flight_max),
                settings,
                api_calls: AtomicU64::new(0),
                cache_hits: AtomicU64::new(0),
            }),
        })
    }

    /// Reviews `token` now.
    pub async fn review(&self, token: &str) -> Result<Reviewed, ReviewError> {
        self.review_at(token, SystemTime::now()).await
    }

    /// Reviews `token` with `now` as the time for the expiry check and the cache (the HTTP
    /// call is real IO).
    pub async fn review_at(&self, token: &str, now: SystemTime) -> Result<Reviewed, ReviewError> {
        let inner = &*self.inner;
        let bytes_max = inner.settings.token_bytes_max;
        if token.len() > bytes_max {
            return Err(ReviewError::TooLarge {
                bytes: token.len(),
                bytes_max,
            });
        }
        if token.is_empty() {
            return Err(ReviewError::Rejected("the token is empty".to_owned()));
        }
        let expiry = jwt::expiry(token);
        if expiry.has_passed(now) {
            return Err(ReviewError::Expired);
        }
        let key = cache::token_key(token);
        if let Some(answer) = self.cache().get(&key, now) {
            inner.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Reviewed {
                username: answer.username,
                audiences: answer.audiences,
                expires_at: expiry.instant(),
                cached: true,
            });
        }
        let answer = tokio::time::timeout(inner.settings.request_timeout, self.ask(token))
            .await
            .map_err(|_| {
                ReviewError::Unavailable(format!(
                    "no answer from {} within {:?}",
                    inner.client.server().base_url(),
                    inner.settings.request_timeout
                ))
            })??;
        self.cache()
            .insert(key, answer.clone(), now, expiry.instant());
        Ok(Reviewed {
            username: answer.username,
            audiences: answer.audiences,
            expires_at: expiry.instant(),
            cached: false,
        })
    }

    /// How many reviews went to the API server, and how many were answered from the cache.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.inner.api_calls.load(Ordering::Relaxed),
            self.inner.cache_hits.load(Ordering::Relaxed),
        )
    }

    /// How many answers the cache holds (expired ones included until looked up or evicted).
    pub fn cache_len(&self) -> usize {
        self.cache().len()
    }

    /// The settings this reviewer runs with.
    pub fn settings(&self) -> &ReviewerSettings {
        &self.inner.settings
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// One TokenReview, under the in-flight limit.
    async fn ask(&self, token: &str) -> Result<cache::Answer, ReviewError> {
        let inner = &*self.inner;
        let _slot =
            inner.in_flight.acquire().await.map_err(|_| {
                ReviewError::Unavailable("the reviewer is shutting down".to_owned())
            })?;
        let body = request_body(token, inner.settings.audience.as_deref())?;
        inner.api_calls.fetch_add(1, Ordering::Relaxed);
        let answer = inner
            .client
            .post_review(body, inner.settings.response_bytes_max)
            .await?;
        let result = judge(
            answer.status,
            &answer.body,
            inner.settings.audience.as_deref(),
        );
        if let Err(error) = &result {
            let token_sha256 = short_hex(&cache::token_key(token));
            if error.is_token_fault() {
                tracing::debug!(%error, token_sha256, "token refused");
            } else {
                tracing::warn!(%error, token_sha256, "TokenReview failed");
            }
        }
        result
    }
}

fn validate(settings: &ReviewerSettings) -> Result<(), ReviewError> {
    let positive = [
        ("token_bytes_max", settings.token_bytes_max),
        ("response_bytes_max", settings.response_bytes_max),
        ("reviews_in_flight_max", settings.reviews_in_flight_max),
    ];
    for (field, value) in positive {
        if value == 0 {
            return Err(ReviewError::Settings {
                field,
                reason: "must be at least 1".to_owned(),
            });
        }
    }
    if settings.reviews_in_flight_max > Semaphore::MAX_PERMITS {
        return Err(ReviewError::Settings {
            field: "reviews_in_flight_max",
            reason: format!("at most {}", Semaphore::MAX_PERMITS),
        });
    }
    if settings.request_timeout.is_zero() {
        return Err(ReviewError::Settings {
            field: "request_timeout",
            reason: "must be longer than zero".to_owned(),
        });
    }
    if settings.audience.as_deref().is_some_and(str::is_empty) {
        return Err(ReviewError::Settings {
            field: "audience",
            reason: "is empty".to_owned(),
        });
    }
    Ok(())
}

fn short_hex(key: &cache::TokenKey) -> String {
    key.iter()
        .take(6)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn warns_without_an_audience() {
        assert!(audience_warning(&ReviewerSettings::default()).is_some());
        let with = ReviewerSettings {
            audience: Some("amqp".into()),
            ..ReviewerSettings::default()
        };
        assert!(audience_warning(&with).is_none());
    }

    #[test]
    fn refuses_settings_out_of_range() {
        for settings in [
            ReviewerSettings {
                token_bytes_max: 0,
                ..Default::default()
            },
            ReviewerSettings {
                request_timeout: Duration::ZERO,
                ..Default::default()
            },
            ReviewerSettings {
                reviews_in_flight_max: 0,
                ..Default::default()
            },
            ReviewerSettings {
                audience: Some(String::new()),
                ..Default::default()
            },
        ] {
            assert!(matches!(
                validate(&settings),
                Err(ReviewError::Settings { .. })
            ));
        }
        assert!(validate(&ReviewerSettings::default()).is_ok());
    }
}
