//! `sluice hostile SCENARIO [URL] --pid PID`: what a hostile (or merely careless) client makes
//! a broker hold, measured from outside as the broker's resident memory, so each figure can be
//! recorded before and after a change to the broker.
//!
//! Each scenario is a module: it connects to the URL, does one thing a well-behaved client
//! would not, reads the broker's VmRSS (`/proc/PID/status`) before, at the peak and after,
//! and reports a table or JSON ([`HostileReport`]):
//!
//! - [`held_publishes`]: unsettled publishes to a full queue, which the broker parks
//!   unanswered, from publishers that then disconnect; two rounds.
//! - [`topic_subscribers`]: thousands of topic receivers that grant no credit, then a burst
//!   published to the topic; meanwhile an unrelated client times round trips on a queue.
//! - [`partial_deliveries`]: deliveries whose transfers say `more` and never finish: large
//!   ones on several links, and millions of one-byte frames on one. The frames are written
//!   by hand (`wire`): the engine always finishes what it sends.
//! - [`idle_connections`]: connections that open, begin a session and sit there.
//! - [`selectors`]: receivers on a queue, each with the largest selector the broker takes.
//!
//! Every scenario is bounded in count (its flags) and time (`--timeout`: past it, the scenario
//! stops, closes its connections and reports what it has, with an error), and closes every
//! connection it opened before it reports. A reading waits for the broker to settle (see
//! `measure`). The figures are measurements, not pass/fail: targets for them belong in the
//! benchmarks' records, never in tests.

mod clients;
pub mod held_publishes;
pub mod idle_connections;
mod measure;
pub mod partial_deliveries;
mod quiet;
mod report;
pub mod selectors;
pub mod topic_subscribers;
mod wire;

use std::process::ExitCode;
use std::time::Duration;

pub use held_publishes::HeldPublishesArgs;
pub use idle_connections::IdleConnectionsArgs;
pub use partial_deliveries::PartialDeliveriesArgs;
pub use report::{HostileReport, RssReading};
pub use selectors::SelectorsArgs;
pub use topic_subscribers::TopicSubscribersArgs;

use measure::Measure;

/// Arguments of `sluice hostile`.
#[derive(Debug, Clone, clap::Args)]
pub struct HostileArgs {
    /// What the hostile client does.
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// The scenarios.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Scenario {
    /// Fill a queue, then publish to it from links whose publishes the broker parks
    /// unanswered, and disconnect them; two rounds.
    HeldPublishes(HeldPublishesArgs),
    /// Attach topic receivers that grant no credit, then publish to the topic, while another
    /// client times round trips on a queue.
    TopicSubscribers(TopicSubscribersArgs),
    /// Start multi-frame deliveries and never finish them: large ones on several links, then
    /// millions of one-byte frames on one.
    PartialDeliveries(PartialDeliveriesArgs),
    /// Open connections that complete open and begin a session, then sit idle; close them.
    IdleConnections(IdleConnectionsArgs),
    /// Attach receivers to a queue, each with a selector as large as the broker takes and no
    /// credit; close them.
    Selectors(SelectorsArgs),
}

/// Options every scenario takes.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// The broker's process id: its VmRSS is read from /proc/PID/status.
    #[arg(long)]
    pub pid: u32,
    /// One JSON object on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Most seconds the scenario may take; past it, it closes its connections and reports
    /// what it has, with an error.
    #[arg(long, default_value_t = 300.0)]
    pub timeout: f64,
    /// Most seconds a reading waits for the broker to settle (CPU quiet and RSS flat for a
    /// second).
    #[arg(long, default_value_t = 10.0)]
    pub settle: f64,
}

impl Scenario {
    fn name(&self) -> &'static str {
        match self {
            Scenario::HeldPublishes(_) => "held-publishes",
            Scenario::TopicSubscribers(_) => "topic-subscribers",
            Scenario::PartialDeliveries(_) => "partial-deliveries",
            Scenario::IdleConnections(_) => "idle-connections",
            Scenario::Selectors(_) => "selectors",
        }
    }

    fn common_and_url(&self) -> (&CommonArgs, &str) {
        match self {
            Scenario::HeldPublishes(a) => (&a.common, &a.url),
            Scenario::TopicSubscribers(a) => (&a.common, &a.url),
            Scenario::PartialDeliveries(a) => (&a.common, &a.url),
            Scenario::IdleConnections(a) => (&a.common, &a.url),
            Scenario::Selectors(a) => (&a.common, &a.url),
        }
    }
}

fn seconds(what: &str, value: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{what} must be a positive number of seconds"))
}

/// Runs the scenario `args` names and prints its report; exits 1 if the scenario could not
/// finish as described (the report says why). An error is a scenario that could not start.
pub fn run(args: &HostileArgs) -> Result<ExitCode, String> {
    let (common, url) = args.scenario.common_and_url();
    let timeout = seconds("--timeout", common.timeout)?;
    let settle = seconds("--settle", common.settle)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let report = runtime.block_on(async {
        let mut m = Measure::new(args.scenario.name(), url, common.pid, timeout, settle)?;
        m.sockets("broker_sockets_at_start");
        match &args.scenario {
            Scenario::HeldPublishes(a) => held_publishes::run(a, &mut m).await?,
            Scenario::TopicSubscribers(a) => topic_subscribers::run(a, &mut m).await?,
            Scenario::PartialDeliveries(a) => partial_deliveries::run(a, &mut m).await?,
            Scenario::IdleConnections(a) => idle_connections::run(a, &mut m).await?,
            Scenario::Selectors(a) => selectors::run(a, &mut m).await?,
        }
        Ok::<_, String>(m.report)
    })?;
    if common.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.table());
    }
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
