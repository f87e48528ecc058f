//! `sluice queue`: an operator's work on a queue of a running broker, over AMQP: the
//! broker's `$management` node (see the broker's `connection::manage`), with the AMQP
//! Management draft's request/response conventions, through the bench harness's client.
//!
//! `purge` removes every available message; `move` sends a dead-letter queue's messages back
//! to the addresses they came from (at most 10,000 per request: it repeats until the queue
//! has no more to move, or `--max` is reached); `read` shows a queue's figures. Each prints
//! what it did, and exits 1 with the broker's status and description on any answer but 200.
//! Plain `amqp://` only (the harness's client has no TLS).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use sluice_bench::BenchUrl;
use sluice_bench::request::{Answer, Value, request};

/// The node and entity type the broker serves operations on.
const MANAGE_ADDRESS: &str = "$management";
const MANAGE_TYPE: &str = "sluice.queue";
/// The most messages the broker moves per request.
const MOVE_PER_REQUEST_MAX: u64 = 10_000;

/// Arguments of `sluice queue`.
#[derive(Debug, clap::Args)]
pub(crate) struct QueueArgs {
    #[command(subcommand)]
    operation: QueueOperation,
}

#[derive(Debug, clap::Subcommand)]
enum QueueOperation {
    /// Remove every available message of a queue (those a consumer holds stay); prints the
    /// count removed.
    Purge(Connect),
    /// Move a dead-letter queue's messages back to the addresses they were dead-lettered or
    /// expired from; prints the count moved.
    Move(MoveArgs),
    /// Show a queue's figures: depth, consumers, counters.
    Read(Connect),
}

#[derive(Debug, clap::Args)]
struct Connect {
    /// The queue, deadletter or subscription address.
    address: String,
    /// The broker: amqp://[user:password@]host[:port].
    #[arg(long, default_value = "amqp://127.0.0.1:5672")]
    url: String,
    /// Seconds to wait for each answer.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
}

#[derive(Debug, clap::Args)]
struct MoveArgs {
    #[command(flatten)]
    connect: Connect,
    /// Only the messages that came from this address.
    #[arg(long, value_name = "ADDRESS")]
    to: Option<String>,
    /// At most this many messages.
    #[arg(long, value_name = "N")]
    max: Option<u64>,
}

pub(crate) fn run(args: &QueueArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        match &args.operation {
            QueueOperation::Purge(c) => {
                let answer = operate(c, "PURGE", Vec::new()).await?;
                println!("{}", count(&answer)?);
            }
            QueueOperation::Move(m) => println!("{}", move_all(m).await?),
            QueueOperation::Read(c) => {
                let answer = operate(c, "READ", Vec::new()).await?;
                if let Value::Map(figures) = &answer.body {
                    for (k, v) in figures {
                        println!("{}: {}", text(k).unwrap_or("?"), shown(v));
                    }
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Moves until the broker has no more to move or `--max` is reached: each request moves at
/// most the broker's per-request bound.
async fn move_all(args: &MoveArgs) -> anyhow::Result<u64> {
    let mut moved = 0u64;
    loop {
        let want = args
            .max
            .map_or(MOVE_PER_REQUEST_MAX, |m| m.saturating_sub(moved))
            .min(MOVE_PER_REQUEST_MAX);
        if want == 0 {
            return Ok(moved);
        }
        let mut extra = vec![(Value::from("max"), Value::Ulong(want))];
        if let Some(to) = &args.to {
            extra.push((Value::from("to"), Value::from(to.as_str())));
        }
        let n = count(&operate(&args.connect, "MOVE", extra).await?)?;
        moved += n;
        // Fewer than asked: nothing more can move now.
        if n < want {
            return Ok(moved);
        }
    }
}

/// Sends one request and returns its answer if its status is 200.
async fn operate(
    c: &Connect,
    operation: &str,
    extra: Vec<(Value, Value)>,
) -> anyhow::Result<Answer> {
    let base = c.url.trim_end_matches('/');
    if base
        .strip_prefix("amqp://")
        .is_some_and(|rest| rest.contains('/'))
    {
        bail!("'{}': give the broker's URL without an address", c.url);
    }
    let url = BenchUrl::parse(&format!("{base}/{MANAGE_ADDRESS}"))?;
    let mut properties = vec![
        (Value::from("operation"), Value::from(operation)),
        (Value::from("type"), Value::from(MANAGE_TYPE)),
        (Value::from("name"), Value::from(c.address.as_str())),
    ];
    properties.extend(extra);
    let timeout = Duration::from_secs_f64(c.timeout.max(0.1));
    let answer = request(&url, properties, timeout)
        .await
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("{operation} '{}'", c.address))?;
    let code = match answer.property("statusCode") {
        Some(Value::Int(code)) => *code,
        _ => bail!("the broker's answer has no statusCode"),
    };
    if code != 200 {
        let why = answer
            .property("statusDescription")
            .and_then(text)
            .unwrap_or("no description");
        bail!(
            "{operation} '{}': the broker answered {code}: {why}",
            c.address
        );
    }
    Ok(answer)
}

/// The answer's `count`.
fn count(answer: &Answer) -> anyhow::Result<u64> {
    if let Value::Map(entries) = &answer.body {
        for (k, v) in entries {
            if let (Some("count"), Value::Ulong(n)) = (text(k), v) {
                return Ok(*n);
            }
        }
    }
    bail!("the broker's answer has no count")
}

fn text(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s.as_str()),
        Value::Symbol(s) => Some(s.as_str()),
        _ => None,
    }
}

fn shown(value: &Value) -> String {
    match value {
        Value::Ulong(n) => n.to_string(),
        other => text(other).map_or_else(|| format!("{other:?}"), str::to_string),
    }
}
