//! Shared support for the codec's integration tests.

pub(crate) mod strategies;
