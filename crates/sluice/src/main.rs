//! `sluice`: the Sluice binary. `sluice serve` serves an address space over AMQP 1.0;
//! `sluice check PATH...` validates EnMasse manifests; `sluice bench` measures a broker;
//! `sluice hostile` measures what hostile clients make it hold; `sluice queue` purges a queue
//! or moves dead-lettered messages back, over `$management`.

/// jemalloc, not the system's malloc: after a spike (a backlog drained, a hostile client gone)
/// it returns the memory to the system, where glibc's malloc kept most of it; throughput is
/// the same (benches/README.md, "Allocator").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod check;
mod export;
mod http;
mod manage;
mod memory;
mod reload;
mod render;
mod secure;
mod serve;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Sluice: an AMQP 1.0 broker serving EnMasse-style address spaces.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve an address space over AMQP 1.0 (the embedded default one without --config).
    Serve(Box<serve::ServeArgs>),
    /// Check AddressSpace, Address, MessagingUser and plan manifests; exit 1 on any error.
    Check(CheckArgs),
    /// Write the Kubernetes manifests (StatefulSet, ConfigMap, Service, ...) of every address
    /// space of valid manifests into --out; exit 1, writing nothing, on any error.
    Render(render::RenderArgs),
    /// Measure any AMQP 1.0 endpoint (or, without a URL, the peer-to-peer ceiling): rates,
    /// latency percentiles, the broker's CPU and memory. Exits 1 if messages were lost or
    /// refused.
    Bench(sluice_bench::BenchArgs),
    /// Measure what a hostile client makes a broker hold (its RSS before, at peak, after).
    Hostile(sluice_bench::hostile::HostileArgs),
    /// Show a running broker's address space and addresses (its HTTP /status) as a table.
    Status(status::StatusArgs),
    /// Operate on a running broker's queue over AMQP (`$management`): purge it, move
    /// dead-lettered messages back to where they came from, read its figures.
    Queue(manage::QueueArgs),
}

/// Arguments of `sluice check`.
#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// YAML files or directories of them (`.yaml`/`.yml`, not recursive).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// The address space `serve` would serve; `check` checks them all and says whether this
    /// one is defined.
    #[arg(long, value_name = "NAME")]
    address_space: Option<String>,
}

fn bench(args: &sluice_bench::BenchArgs) -> anyhow::Result<ExitCode> {
    let report = sluice_bench::run(args).map_err(anyhow::Error::msg)?;
    if args.json {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Check(args) => check::run(&args.paths, args.address_space.as_deref()),
        Command::Render(args) => render::run(&args),
        Command::Bench(args) => bench(&args),
        Command::Hostile(args) => sluice_bench::hostile::run(&args).map_err(anyhow::Error::msg),
        Command::Status(args) => status::run(&args),
        Command::Queue(args) => manage::run(&args),
    };
    // One line with the chain of causes, never a backtrace: these are users' errors (a busy
    // port, a locked data directory, an unreadable file), not the program's.
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::FAILURE
    })
}
