//! `sluice serve`: loads an address space and serves it over AMQP until SIGTERM or SIGINT.

use std::fs::{File, TryLockError};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use sluice_config::{Checked, Source};
use tokio::net::TcpListener;

/// The address space served without `--config` (see `config/default.yaml`).
const DEFAULT_CONFIG: &str = include_str!("../../../config/default.yaml");
/// Where the embedded default listens: loopback, so trying Sluice exposes nothing.
const DEFAULT_AMQP: &str = "127.0.0.1:5672";
/// Where a configured address space listens unless told otherwise.
const CONFIGURED_AMQP: &str = "0.0.0.0:5672";
/// Where the HTTP endpoint listens: loopback for the embedded default, as its AMQP port.
const DEFAULT_HTTP: &str = "127.0.0.1:8080";
const CONFIGURED_HTTP: &str = "0.0.0.0:8080";

/// Arguments of `sluice serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// YAML files or directories of EnMasse resources; without it, an embedded default
    /// address space (a queue, a topic, an anycast and a multicast address) is served.
    #[arg(long = "config", value_name = "PATH")]
    config: Vec<PathBuf>,
    /// The address space to serve when the configuration holds several.
    #[arg(long, value_name = "NAME")]
    address_space: Option<String>,
    /// Address to listen on for AMQP (default 0.0.0.0:5672; 127.0.0.1:5672 without --config).
    #[arg(long, value_name = "ADDR")]
    amqp: Option<SocketAddr>,
    /// Directory for the broker's state: the journal of the durable queues' messages, which
    /// is replayed at start. It is created if missing and locked, so two brokers never share
    /// one. Without --config the default is $XDG_DATA_HOME/sluice/<address space> (or
    /// ~/.local/share/sluice/<address space>); with --config and without it, durable
    /// messages are kept in memory only.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// When the journal syncs: `always` (a durable message is accepted once it is on disk),
    /// or `danger-never` (only at segment ends and shutdown; a crash of the machine loses what
    /// the OS had not written; for benchmarks).
    #[arg(long, value_enum, default_value = "always", value_name = "POLICY")]
    journal_sync: JournalSync,
    /// The memory budget: the most bytes of messages the queues hold in memory together (e.g.
    /// 512Mi, 2G). Above it, queues with a journal keep new messages on disk and publishers to
    /// the others wait for credit until memory falls. Default: 40% of the container's cgroup
    /// memory limit, or of the machine's memory.
    #[arg(long, value_name = "SIZE", value_parser = sluice_config::parse_size)]
    max_memory: Option<u64>,
    /// Threads that run connections and the core (default: the CPUs available, less one,
    /// and at least one).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    worker_threads: Option<u16>,
    /// Address of the HTTP endpoint: /metrics (Prometheus), /healthz, /readyz and /status
    /// (JSON). Default 0.0.0.0:8080 (127.0.0.1:8080 without --config).
    #[arg(long, value_name = "ADDR", conflicts_with = "no_http")]
    http: Option<SocketAddr>,
    /// Serve no HTTP endpoint.
    #[arg(long)]
    no_http: bool,
    /// Directory to write the endpoint information into, one file per key as EnMasse's
    /// exports had them: service.host, service.port.<amqp|amqps|amqp-wss>, ca.crt.
    #[arg(long, value_name = "DIR")]
    export_dir: Option<PathBuf>,
    /// The host written as service.host (default: this machine's name).
    #[arg(long, value_name = "HOST", requires = "export_dir")]
    export_host: Option<String>,
    /// How long a queue removed from the configuration (by a reload, or already at start)
    /// keeps its stored messages, waiting for its address to come back: e.g. 30s, 15m, 24h;
    /// 0 deletes them at once.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
    removed_address_grace: Duration,
    /// Log format.
    #[arg(long, value_enum, default_value = "human")]
    log_format: LogFormat,
    #[command(flatten)]
    security: crate::secure::SecurityArgs,
}

/// The default worker threads: one CPU is left to the clients and the rest of the pod. Every
/// queue lives on one core task, and a message crosses it between two connection tasks; with
/// a worker per CPU those hand-offs wake sleeping threads, which cost a quarter of the
/// throughput on a 2-CPU machine shared with the clients (benches/README.md).
fn default_worker_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .saturating_sub(1)
        .max(1)
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum JournalSync {
    Always,
    DangerNever,
}

impl From<JournalSync> for sluice_broker::SyncPolicy {
    fn from(s: JournalSync) -> Self {
        match s {
            JournalSync::Always => Self::Always,
            JournalSync::DangerNever => Self::DangerNever,
        }
    }
}

/// The data directory of the embedded default address space: the XDG data home, as a
/// desktop user's programs keep theirs.
fn default_data_dir(space: &str) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/share"))
        })?;
    Some(base.join("sluice").join(space))
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging(args.log_format);
    let sources = if args.config.is_empty() {
        vec![Source::new(
            "config/default.yaml (embedded)",
            DEFAULT_CONFIG,
        )]
    } else {
        sluice_config::read_paths(&args.config).context("reading the configuration")?
    };
    let checked = sluice_config::check(&sources);
    report_problems(&checked);
    let space = match (&args.address_space, checked.config.address_spaces.len()) {
        (Some(name), _) => checked
            .config
            .address_space(name)
            .with_context(|| format!("no valid address space named {name:?}"))?,
        (None, 1) => checked
            .config
            .address_spaces
            .values()
            .next()
            .context("one address space")?,
        (None, 0) => bail!("the configuration defines no valid address space"),
        (None, n) => {
            bail!("the configuration defines {n} address spaces: choose one with --address-space")
        }
    };
    let data_dir = match (&args.data_dir, args.config.is_empty()) {
        (Some(dir), _) => Some(dir.clone()),
        (None, true) => {
            let dir = default_data_dir(&space.name);
            if dir.is_none() {
                tracing::warn!(
                    "neither XDG_DATA_HOME nor HOME is set: durable messages are kept in memory only (give --data-dir)"
                );
            }
            dir
        }
        (None, false) => {
            tracing::warn!(
                "no --data-dir: durable messages are kept in memory only, and a restart loses them"
            );
            None
        }
    };
    // Held for the life of the process: the lock goes when the file is closed.
    let _data_lock = data_dir.as_deref().map(lock_data_dir).transpose()?;
    let max_memory = match args.max_memory {
        Some(max) => {
            tracing::info!(max_memory_bytes = max, "memory budget from --max-memory");
            Some(max)
        }
        None => match crate::memory::default_max_memory() {
            Some((max, source)) => {
                tracing::info!(
                    max_memory_bytes = max,
                    "memory budget: 40% of {source} (--max-memory sets it)"
                );
                Some(max)
            }
            None => {
                tracing::warn!(
                    "no cgroup limit or machine memory to read: no memory budget (give --max-memory)"
                );
                None
            }
        },
    };
    let durability = sluice_broker::Durability {
        data_dir,
        sync: args.journal_sync.into(),
        max_memory: max_memory.map(|m| usize::try_from(m).unwrap_or(usize::MAX)),
    };
    let (default_amqp, default_http) = if args.config.is_empty() {
        (DEFAULT_AMQP, DEFAULT_HTTP)
    } else {
        (CONFIGURED_AMQP, CONFIGURED_HTTP)
    };
    let http = match (args.no_http, args.http) {
        (true, _) => None,
        (false, Some(a)) => Some(a),
        (false, None) => Some(default_http.parse().context("default HTTP address")?),
    };
    let amqp = match args.amqp {
        Some(a) => a,
        None => default_amqp.parse().context("default listen address")?,
    };
    let tls = args.security.tls(durability.data_dir.as_deref())?;
    let (security, users_tx) = args.security.security(space)?;
    let workers = args
        .worker_threads
        .map_or_else(default_worker_threads, usize::from);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(amqp).await.with_context(|| format!("listening on {amqp}"))?;
        let local = listener.local_addr()?;
        let amqps = bind(args.security.amqps(), "amqps").await?;
        let wss = bind(args.security.amqp_wss(), "amqp-wss").await?;
        let http = bind(http, "HTTP").await?;
        let telemetry = sluice_broker::Telemetry::new();
        let mut ports = vec![("amqp", local.port())];
        // Tests and scripts read these lines to learn the ports of `--amqp 127.0.0.1:0`.
        if let Some(l) = &amqps {
            println!("amqps on {}", l.local_addr()?);
            ports.push(("amqps", l.local_addr()?.port()));
        }
        if let Some(l) = &wss {
            println!("amqp-wss on {}", l.local_addr()?);
            ports.push(("amqp-wss", l.local_addr()?.port()));
        }
        if let Some(dir) = &args.export_dir {
            let export = crate::export::Export {
                host: args.export_host.clone().unwrap_or_else(crate::export::default_host),
                ports: ports.clone(),
                ca: args.security.ca_cert(durability.data_dir.as_deref()),
            };
            export.write(dir)?;
            tracing::info!(dir = %dir.display(), "endpoint information exported");
        }
        if let Some(l) = http {
            let addr = l.local_addr()?;
            println!("http on {addr}");
            ports.push(("http", addr.port()));
            crate::http::spawn(l, telemetry.clone());
        }
        telemetry.set_ports(&ports);
        // Tests and scripts connect once they read it: printed when the journal is recovered
        // and the listeners accept, as /readyz says.
        let ready = telemetry.clone();
        tokio::spawn(async move {
            ready.wait_ready().await;
            println!("listening on {local}");
        });
        if let Some(tls) = &tls {
            crate::secure::SecurityArgs::watch(tls);
        }
        tracing::info!(address_space = %space.name, %local, addresses = space.addresses.len(), "serving");
        let (spaces_tx, reloads) = tokio::sync::mpsc::channel(1);
        crate::reload::spawn(
            crate::reload::Reloading {
                paths: args.config.clone(),
                space: space.qualified_name(),
                settings: security.settings.clone(),
                users: users_tx,
                spaces: spaces_tx,
                telemetry: telemetry.clone(),
            },
            &sources,
        );
        let ops = sluice_broker::Operations {
            telemetry,
            reloads,
            removed_address_grace: args.removed_address_grace,
        };
        let listeners = sluice_broker::Listeners { amqp: Some(listener), amqps, wss, tls };
        sluice_broker::serve(listeners, space, format!("sluice-{}", space.name), durability, security, ops, shutdown_signal()).await?;
        tracing::info!("shut down");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Binds an extra listener, if asked for.
async fn bind(addr: Option<SocketAddr>, what: &str) -> anyhow::Result<Option<TcpListener>> {
    match addr {
        Some(a) => Ok(Some(
            TcpListener::bind(a)
                .await
                .with_context(|| format!("listening for {what} on {a}"))?,
        )),
        None => Ok(None),
    }
}

/// Parses a duration: a whole number with `s`, `m`, `h` or `d` (or none, for seconds).
fn parse_duration(value: &str) -> Result<Duration, String> {
    let text = value.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{value:?} is not a duration: write a whole number and s, m, h or d (as in 90s, 15m, 24h)"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "{value:?} is not a duration: its unit must be s, m, h or d"
            ));
        }
    };
    Ok(Duration::from_secs(n.saturating_mul(seconds)))
}

/// Name of the lock file in `--data-dir`.
const DATA_LOCK: &str = "sluice.lock";

/// Creates `dir` if needed and takes an exclusive lock on its lock file, which the caller
/// holds while serving.
fn lock_data_dir(dir: &Path) -> anyhow::Result<File> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the data directory {}", dir.display()))?;
    let path = dir.join(DATA_LOCK);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => bail!(
            "the data directory {} is in use by another sluice (it holds the lock on {})",
            dir.display(),
            path.display()
        ),
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", path.display()));
        }
    }
    tracing::info!(data_dir = %dir.display(), "data directory");
    Ok(file)
}

/// Errors stop nothing here (the invalid parts are not served), but they are logged.
fn report_problems(checked: &Checked) {
    for d in &checked.diagnostics {
        if d.is_error() {
            tracing::error!("{d}");
        } else {
            tracing::debug!("{d}");
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log file or a container's log gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
