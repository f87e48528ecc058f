//! The benchmark harness behind `sluice bench`.
//!
//! Owns: the command-line options, the load it generates (senders and receivers on their own
//! connections, each a task driving a [`sluice_engine::Connection`], so the client costs what
//! Sluice's own engine costs), pacing at a fixed rate, the latency histograms (end to end, and
//! the senders' confirm latency), the disk's own sync time (`--sync-probe`), the broker's CPU
//! and memory as `/proc` shows them, and the report (a table, or JSON). Also [`hostile`]:
//! `sluice hostile`, clients that make a broker hold memory, measured as its resident size.
//!
//! A message carries its sequence number and its send time in the last 16 bytes of its body,
//! so any broker carries them untouched; senders and receivers share one clock, as they run in
//! one process. Without a URL, the harness is its own peer: senders connect straight to a
//! listener whose connections receive (the ceiling any broker on the same machine is measured
//! against).
//!
//! Must not depend on: the broker, the store, the router or the config crates: it measures any
//! AMQP 1.0 endpoint from the outside.

mod confirm;
mod driver;
pub mod hostile;
mod message;
mod options;
mod pace;
mod procstat;
mod receiver;
mod report;
pub mod request;
mod run;
mod sender;
mod syncprobe;
mod txn;
mod url;

pub use message::{TRAILER_BYTES, Template, trailer};
pub use options::BenchArgs;
pub use pace::Pacer;
pub use report::{BrokerUsage, Latency, Report};
pub use run::run;
pub use syncprobe::{DiskSync, PROBE_BUDGET, PROBE_SYNCS, probe};
pub use url::{BenchUrl, UrlError};
