//! Kubernetes service-account token checks for Sluice's SASL PLAIN path.
//!
//! A client sends its service-account token as its password; the connection task hands it to
//! [`Reviewer::review`], which asks the API server Sluice runs in with a TokenReview
//! (`authentication.k8s.io/v1`) and answers with the identity (`status.user.username`), or
//! why not. The answer feeds the (sans-IO) auth state machine of `sluice-auth`.
//!
//! What this crate owns:
//! - finding the API server: in-cluster files, a kubeconfig, or `--kubeconfig`
//!   ([`ApiServer`]);
//! - the HTTPS POST itself (hyper's HTTP/1.1 connection API over tokio-rustls with ring), with
//!   our own bearer token re-read at each request because projected tokens rotate;
//! - a short, bounded cache of positive answers keyed by the SHA-256 of the token (never the
//!   token), never kept past the token's own `exp`;
//! - with the `testing` feature, [`testing::FakeApiServer`], a fake API server for tests.
//!
//! It must not depend on the broker, engine or auth crates: they depend on it, or the binary
//! joins them. Every failure to ask fails closed ([`ReviewError::Unavailable`]).

mod cache;
mod error;
mod files;
mod http;
mod jwt;
mod kubeconfig;
mod reviewer;
mod server;
#[cfg(feature = "testing")]
pub mod testing;
mod wire;

pub use error::ReviewError;
pub use http::TOKENREVIEWS_PATH;
pub use kubeconfig::KubeconfigOptions;
pub use reviewer::{
    CACHE_ENTRIES_MAX_DEFAULT, CACHE_TTL_DEFAULT, REQUEST_TIMEOUT_DEFAULT,
    RESPONSE_BYTES_MAX_DEFAULT, REVIEWS_IN_FLIGHT_MAX_DEFAULT, Reviewed, Reviewer,
    ReviewerSettings, TOKEN_BYTES_MAX_DEFAULT, audience_warning,
};
pub use server::{ApiServer, Credential, IN_CLUSTER_DIR, in_cluster_from};
pub use wire::ERROR_TEXT_CHARS_MAX;
