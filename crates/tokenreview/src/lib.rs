//! Kubernetes service-account token checks: TokenReview against the API server, with a bounded cache (being built for issue 12).
