//! `sluice bench`'s options.

use std::path::PathBuf;

/// Arguments of `sluice bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// amqp://[user:pass@]host:port/ADDRESS; `{n}` in ADDRESS becomes the pair index. Without
    /// it, peer-to-peer: the senders connect straight to the harness's own receivers.
    #[arg(value_name = "URL")]
    pub url: Option<String>,
    /// Sender/receiver pairs, each side on its own connection; pair i uses address i.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub pairs: u32,
    /// Receivers per address; 0 only sends (to fill a queue: the run ends once every message
    /// is answered).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub receivers: u32,
    /// Every receiver of an address gets every message (topics, multicast); otherwise they
    /// share them (queues, anycast).
    #[arg(long)]
    pub fanout: bool,
    /// Body size in bytes (at least 16: the sequence number and send time travel in it).
    #[arg(long, default_value_t = 100)]
    pub body_size: usize,
    /// Messages per sender; without it, send for --duration.
    #[arg(long)]
    pub count: Option<u64>,
    /// Seconds of sending after the warm-up (without --count).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds at the start left out of rates and latency (default 1, or 0 with --count).
    #[arg(long)]
    pub warmup: Option<f64>,
    /// Receiver credit window.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub credit: u32,
    /// Senders send pre-settled (at most once); by default they send unsettled and each
    /// receiver accepts each message.
    #[arg(long)]
    pub presettled: bool,
    /// Messages carry the application property `slot` (their sequence number mod N), and
    /// receiver r of an address selects `slot = r mod N` (a JMS selector filter): with
    /// `--receivers N` each receiver takes its own N-th of the messages.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub select: Option<u32>,
    /// Send in local transactions of N messages each: every sender declares, sends N, commits,
    /// and repeats (a last, shorter one at the end). Needs a broker URL and unsettled sends.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub txn_batch: Option<u32>,
    /// Mark messages durable.
    #[arg(long)]
    pub durable: bool,
    /// Target total send rate, messages a second (latency at a fixed load; measured from
    /// when each message was due, so stalls count).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Threads the harness runs its connections on (default: one with --rate, which needs no
    /// more and then leaves the broker the other CPUs; otherwise one per CPU).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// The broker's process id: its CPU and peak RSS are reported.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Before the run, time the disk's own append-and-fdatasync in DIR (200 syncs of 1 KiB, at
    /// most 5 s; the file is removed after), reported beside the confirm latency.
    #[arg(long, value_name = "DIR")]
    pub sync_probe: Option<PathBuf>,
    /// One JSON object on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for the broker (to connect, or for outstanding messages at the end).
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
}
