//! `sluice status`: what a running broker says about its address space and its addresses,
//! read from its `/status` endpoint (`sluice serve --http`) and printed as a table, or as the
//! JSON it served with `--json`.
//!
//! The client is one HTTP/1.1 `GET` over a `std::net::TcpStream`, plain http only: the endpoint
//! is served without TLS, on loopback or a pod's own network (reach a pod with
//! `kubectl port-forward`). Everything it waits for is bounded: the connect, each read and
//! write ([`TIMEOUT`]), and the size of the answer ([`RESPONSE_SIZE_MAX`]). It reads the
//! response as it comes and stops once it is complete (`Content-Length` or chunked), so a server
//! that keeps the connection open despite `Connection: close` costs nothing.
//!
//! The JSON is read leniently: every field the table shows may be missing (shown as `-`) and
//! unknown fields are ignored, so an older or newer broker still gets a table.

use std::fmt::{self, Write as _};
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use serde::Deserialize;

/// The bound on connecting, and on each read and write.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read (head and body): a status of a million addresses is below it.
const RESPONSE_SIZE_MAX: usize = 256 * 1024 * 1024;
/// The endpoint's path, added to a URL that does not end with it.
const STATUS_PATH: &str = "/status";

/// Arguments of `sluice status`.
#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// The broker's HTTP endpoint (`sluice serve --http`); `/status` is added unless the URL
    /// ends with it. Plain http only.
    #[arg(long, default_value = "http://127.0.0.1:8080", value_name = "URL")]
    url: String,
    /// Print the JSON as the broker served it instead of the table.
    #[arg(long)]
    json: bool,
}

/// Fetches the status and prints it; an unreachable broker, an error answer or a document
/// that is not a status is an error (exit code 1).
pub(crate) fn run(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let target = Target::parse(&args.url)?;
    let body = get(&target)?;
    if args.json {
        println!("{}", body.trim_end());
        return Ok(ExitCode::SUCCESS);
    }
    let status: Status = serde_json::from_str(&body)
        .with_context(|| format!("{target} did not answer with a status document"))?;
    print!("{}", render(&status));
    Ok(ExitCode::SUCCESS)
}

/// `/status` as the broker serves it; only what the table shows.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Status {
    address_space: AddressSpace,
    connections: Option<u64>,
    addresses: Vec<Address>,
}

/// What the address space and each address have in common: EnMasse's resource status.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Resource {
    /// The resource's name (for an address `<space>.<address>`, shown only where the address
    /// is missing).
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    plan: Option<String>,
    is_ready: Option<bool>,
    phase: Option<String>,
    messages: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AddressSpace {
    #[serde(flatten)]
    resource: Resource,
    namespace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Address {
    #[serde(flatten)]
    resource: Resource,
    address: Option<String>,
    depth: Option<u64>,
    bytes: Option<u64>,
    oldest_message_age_seconds: Option<f64>,
    consumers: Option<u64>,
    senders: Option<u64>,
    deliveries_in: Option<u64>,
    deliveries_out: Option<u64>,
}

/// The columns of the address table, in order.
const COLUMNS: [&str; 12] = [
    "ADDRESS",
    "TYPE",
    "PLAN",
    "PHASE",
    "READY",
    "DEPTH",
    "BYTES",
    "OLDEST",
    "CONSUMERS",
    "SENDERS",
    "IN",
    "OUT",
];

/// The address space line, a blank line, the address table, then the messages of what is not
/// ready.
fn render(status: &Status) -> String {
    let space = &status.address_space.resource;
    let mut out = String::new();
    let namespace = status
        .address_space
        .namespace
        .as_deref()
        .map(|ns| format!("  namespace: {ns}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "address space: {}{namespace}  type: {}  plan: {}  phase: {}  ready: {}  connections: {}",
        text(&space.name),
        text(&space.kind),
        text(&space.plan),
        text(&space.phase),
        ready(space.is_ready),
        number(status.connections),
    );
    out.push('\n');
    if status.addresses.is_empty() {
        out.push_str("no addresses\n");
    } else {
        let rows: Vec<[String; 12]> = status.addresses.iter().map(row).collect();
        out.push_str(&table(&COLUMNS, &rows));
    }

    let mut not_ready = Vec::new();
    if space.is_ready == Some(false) {
        not_ready.push(space.not_ready(&format!("address space {}", text(&space.name))));
    }
    for address in status
        .addresses
        .iter()
        .filter(|a| a.resource.is_ready == Some(false))
    {
        not_ready.push(address.resource.not_ready(address_name(address)));
    }
    if !not_ready.is_empty() {
        out.push_str("\nnot ready:\n");
        for line in not_ready {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

impl Resource {
    /// `NAME (PHASE): MESSAGES`, for the list of what is not ready.
    fn not_ready(&self, name: &str) -> String {
        let messages = if self.messages.is_empty() {
            "no status message".to_owned()
        } else {
            self.messages.join("; ")
        };
        format!("{name} ({}): {messages}", text(&self.phase))
    }
}

fn row(address: &Address) -> [String; 12] {
    let resource = &address.resource;
    [
        address_name(address).to_owned(),
        text(&resource.kind).to_owned(),
        text(&resource.plan).to_owned(),
        text(&resource.phase).to_owned(),
        ready(resource.is_ready).to_owned(),
        number(address.depth),
        address.bytes.map_or_else(|| "-".to_owned(), size),
        address
            .oldest_message_age_seconds
            .map_or_else(|| "-".to_owned(), age),
        number(address.consumers),
        number(address.senders),
        number(address.deliveries_in),
        number(address.deliveries_out),
    ]
}

/// Left-aligned columns two spaces apart, no trailing spaces.
fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (cell, width) in cells.zip(widths) {
            let _ = write!(text, "{cell:<width$}  ");
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

fn address_name(address: &Address) -> &str {
    address
        .address
        .as_deref()
        .or(address.resource.name.as_deref())
        .unwrap_or("-")
}

fn text(value: &Option<String>) -> &str {
    value.as_deref().filter(|v| !v.is_empty()).unwrap_or("-")
}

fn ready(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "true",
        Some(false) => "false",
        None => "-",
    }
}

fn number(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_owned(), |n| n.to_string())
}

/// Bytes in binary units, one decimal above a KiB: `512B`, `3.4KiB`, `256.0MiB`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes}B");
    }
    // Precision lost above 2^53 bytes does not show in one decimal.
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64 / 1024.0;
    let mut unit = UNITS[0];
    for next in &UNITS[1..] {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    format!("{value:.1}{unit}")
}

/// An age the way an operator reads it: `0s`, `1.5s`, `2m03s`, `1h02m`, `3d04h`.
fn age(seconds: f64) -> String {
    if !seconds.is_finite() || seconds <= 0.0 {
        return "0s".to_owned();
    }
    if seconds < 60.0 {
        return format!("{seconds:.1}s").replace(".0s", "s");
    }
    // Whole seconds are enough past a minute; an age beyond u64 is not a real one.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let whole = seconds as u64;
    let (days, hours, minutes, secs) = (
        whole / 86_400,
        whole / 3600 % 24,
        whole / 60 % 60,
        whole % 60,
    );
    if days > 0 {
        format!("{days}d{hours:02}h")
    } else if hours > 0 {
        format!("{hours}h{minutes:02}m")
    } else {
        format!("{minutes}m{secs:02}s")
    }
}

/// Where to send the `GET`: from `http://HOST[:PORT][/PATH]`, or `HOST[:PORT]` alone.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    /// `HOST[:PORT]` as given, for the `Host` header.
    authority: String,
    /// The host to connect to (an IPv6 address without its brackets).
    host: String,
    port: u16,
    /// The request path, ending with `/status`.
    path: String,
}

impl Target {
    fn parse(url: &str) -> anyhow::Result<Target> {
        let rest = if let Some(rest) = url.strip_prefix("http://") {
            rest
        } else if url.starts_with("https://") {
            bail!(
                "{url}: https is not supported: the broker serves /status over plain http on its \
                 --http address; use http://HOST:PORT (kubectl port-forward reaches a pod's)"
            );
        } else if let Some((scheme, _)) = url.split_once("://") {
            bail!("{url}: unsupported scheme {scheme:?}; use http://HOST:PORT");
        } else {
            url
        };
        let (authority, path) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, ""),
        };
        if authority.is_empty() {
            bail!("{url}: no host; use http://HOST:PORT");
        }
        if authority.contains('@') {
            bail!("{url}: credentials in the URL are not supported");
        }
        if path.contains(['?', '#']) {
            bail!("{url}: a query or fragment is not supported");
        }
        let (host, port) =
            split_host_port(authority).with_context(|| format!("{url}: bad host"))?;
        let path = path.trim_end_matches('/');
        let path = if path.ends_with(STATUS_PATH) {
            path.to_owned()
        } else {
            format!("{path}{STATUS_PATH}")
        };
        Ok(Target {
            authority: authority.to_owned(),
            host,
            port,
            path,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority, self.path)
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; port 80 when none is given.
fn split_host_port(authority: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| anyhow!("{authority:?}: unclosed '['"))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => bail!("{authority:?}: expected ':PORT' after ']'"),
            },
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        bail!("{authority:?}: no host");
    }
    let port = match port {
        Some(port) => port
            .parse::<u16>()
            .map_err(|_| anyhow!("{authority:?}: {port:?} is not a port"))?,
        None => 80,
    };
    Ok((host.to_owned(), port))
}

/// One `GET` of `target`; the body of a 200 answer.
fn get(target: &Target) -> anyhow::Result<String> {
    let addrs: Vec<_> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {}", target.host))?
        .collect();
    let mut failure = None;
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, TIMEOUT) {
            Ok(connected) => {
                stream = Some(connected);
                break;
            }
            Err(e) => failure = Some(e),
        }
    }
    let mut stream = stream.ok_or_else(|| {
        let why = failure.map_or_else(|| "no address".to_owned(), |e| e.to_string());
        anyhow!(
            "cannot connect to {target}: {why} (is `sluice serve` running there, with its \
             HTTP endpoint on? see --http)"
        )
    })?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nUser-Agent: sluice-status\r\n\
         Connection: close\r\n\r\n",
        target.path, target.authority
    );
    stream
        .write_all(request.as_bytes())
        .with_context(|| format!("sending the request to {target}"))?;

    let mut raw = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    let response = loop {
        let read = match stream.read(&mut buffer) {
            Ok(read) => read,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("reading the answer of {target}")),
        };
        raw.extend_from_slice(buffer.get(..read).unwrap_or_default());
        if raw.len() > RESPONSE_SIZE_MAX {
            bail!("{target}: the answer is larger than {RESPONSE_SIZE_MAX} bytes");
        }
        if let Some(response) =
            parse_response(&raw, read == 0).map_err(|e| anyhow!("{target}: {e}"))?
        {
            break response;
        }
    };
    if response.code != 200 {
        let first = String::from_utf8_lossy(&response.body);
        let first = first.lines().next().unwrap_or_default();
        bail!(
            "{target} answered {} {}: {first}",
            response.code,
            response.reason
        );
    }
    String::from_utf8(response.body).map_err(|_| anyhow!("{target}: the answer is not UTF-8"))
}

/// A complete HTTP response.
#[derive(Debug, PartialEq, Eq)]
struct Response {
    code: u16,
    reason: String,
    body: Vec<u8>,
}

/// The response in `raw` once it is complete; `None` while more is to come. `eof`: the server
/// has closed the connection, which ends a body that has neither a length nor chunks.
fn parse_response(raw: &[u8], eof: bool) -> Result<Option<Response>, String> {
    let Some(head_end) = find(raw, b"\r\n\r\n") else {
        return if eof {
            Err("the connection closed before a complete HTTP answer".to_owned())
        } else {
            Ok(None)
        };
    };
    let (head, rest) = raw.split_at(head_end);
    let body = rest.get(4..).unwrap_or_default();
    let head = std::str::from_utf8(head).map_err(|_| "an HTTP head that is not text")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (version, code) = (parts.next(), parts.next());
    let reason = parts.next().unwrap_or_default().to_owned();
    let code = match (version, code) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => code.parse::<u16>().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("not an HTTP answer: {status_line:?}"))?;

    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("a bad header line {line:?}"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| format!("a bad Content-Length {value:?}"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }

    let body = if chunked {
        match dechunk(body)? {
            Some(body) => body,
            None if eof => return Err("the connection closed inside a chunked body".to_owned()),
            None => return Ok(None),
        }
    } else if let Some(length) = length {
        match body.get(..length) {
            Some(body) => body.to_vec(),
            None if eof => {
                return Err(format!(
                    "the connection closed after {} of {length} body bytes",
                    body.len()
                ));
            }
            None => return Ok(None),
        }
    } else if eof {
        body.to_vec()
    } else {
        return Ok(None);
    };
    Ok(Some(Response { code, reason, body }))
}

/// A chunked body decoded, or `None` while its last chunk has not arrived.
fn dechunk(mut raw: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = find(raw, b"\r\n") else {
            return Ok(None);
        };
        let (line, rest) = raw.split_at(line_end);
        let rest = rest.get(2..).unwrap_or_default();
        let line = std::str::from_utf8(line).map_err(|_| "a bad chunk size line")?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(size, 16).map_err(|_| format!("a bad chunk size {size:?}"))?;
        if size == 0 {
            // Trailers, if any, are not read: the body is complete.
            return Ok(Some(body));
        }
        let Some(chunk) = rest.get(..size) else {
            return Ok(None);
        };
        body.extend_from_slice(chunk);
        match rest.get(size..size + 2) {
            Some(b"\r\n") => raw = rest.get(size + 2..).unwrap_or_default(),
            Some(_) => return Err("a chunk not followed by CRLF".to_owned()),
            None => return Ok(None),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use std::net::TcpListener;
    use std::thread;

    use super::*;

    /// The contract's example, an anycast address (nothing stored: no depth) and an address
    /// over quota.
    const FIXTURE: &str = r#"{
      "addressSpace": {
        "name": "myspace", "namespace": "team-a", "type": "standard", "plan": "standard-small",
        "isReady": true, "phase": "Active", "messages": [],
        "endpointStatuses": [{"name": "messaging", "servicePorts": [{"name": "amqp", "port": 5672}]}]
      },
      "connections": 3,
      "addresses": [
        {
          "name": "myspace.orders", "address": "orders", "type": "queue", "plan": "standard-small-queue",
          "isReady": true, "phase": "Active", "messages": [],
          "planStatus": {"name": "standard-small-queue", "partitions": 1, "resources": {"broker": 0.01, "router": 0.001}},
          "depth": 12, "bytes": 3456, "oldestMessageAgeSeconds": 1.5, "durableMessages": 12,
          "consumers": 1, "senders": 2, "deliveriesIn": 100, "deliveriesOut": 88
        },
        {
          "name": "myspace.events", "address": "events", "type": "anycast", "plan": "standard-small-anycast",
          "isReady": true, "phase": "Active", "messages": [],
          "depth": null, "bytes": null, "oldestMessageAgeSeconds": null, "durableMessages": null,
          "consumers": 0, "senders": 1, "deliveriesIn": 5, "deliveriesOut": 5
        },
        {
          "name": "myspace.big", "address": "big", "type": "queue", "plan": "standard-large-queue",
          "isReady": false, "phase": "Pending", "messages": ["Quota exceeded"],
          "depth": 0, "bytes": 0, "oldestMessageAgeSeconds": 0, "durableMessages": 0,
          "consumers": 0, "senders": 0, "deliveriesIn": 0, "deliveriesOut": 0
        }
      ]
    }"#;

    #[test]
    fn renders_the_space_line_the_aligned_table_and_what_is_not_ready() {
        let status: Status = serde_json::from_str(FIXTURE).unwrap();
        let expected = "\
address space: myspace  namespace: team-a  type: standard  plan: standard-small  phase: Active  ready: true  connections: 3

ADDRESS  TYPE     PLAN                    PHASE    READY  DEPTH  BYTES   OLDEST  CONSUMERS  SENDERS  IN   OUT
orders   queue    standard-small-queue    Active   true   12     3.4KiB  1.5s    1          2        100  88
events   anycast  standard-small-anycast  Active   true   -      -       -       0          1        5    5
big      queue    standard-large-queue    Pending  false  0      0B      0s      0          0        0    0

not ready:
  big (Pending): Quota exceeded
";
        assert_eq!(render(&status), expected);
    }

    #[test]
    fn a_sparse_document_renders_with_dashes() {
        let status: Status =
            serde_json::from_str(r#"{"addressSpace": {"name": "s", "isReady": false}, "addresses": [{"name": "s.q"}], "future": 1}"#)
                .unwrap();
        let out = render(&status);
        assert!(
            out.starts_with(
                "address space: s  type: -  plan: -  phase: -  ready: false  connections: -\n"
            ),
            "{out}"
        );
        let row = out.lines().find(|l| l.starts_with("s.q ")).unwrap();
        assert_eq!(
            row.split_whitespace().collect::<Vec<_>>(),
            ["s.q", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-"]
        );
        assert!(
            out.ends_with("not ready:\n  address space s (-): no status message\n"),
            "{out}"
        );
    }

    #[test]
    fn no_addresses_says_so() {
        let status: Status =
            serde_json::from_str(r#"{"addressSpace": {}, "connections": 0}"#).unwrap();
        assert!(
            render(&status).ends_with("\n\nno addresses\n"),
            "{}",
            render(&status)
        );
    }

    #[test]
    fn sizes_and_ages_read_as_an_operator_would() {
        assert_eq!(size(0), "0B");
        assert_eq!(size(1023), "1023B");
        assert_eq!(size(1024), "1.0KiB");
        assert_eq!(size(256 * 1024 * 1024), "256.0MiB");
        assert_eq!(size(u64::MAX), "16384.0PiB");
        assert_eq!(age(0.0), "0s");
        assert_eq!(age(f64::NAN), "0s");
        assert_eq!(age(2.0), "2s");
        assert_eq!(age(1.25), "1.2s");
        assert_eq!(age(123.0), "2m03s");
        assert_eq!(age(3720.0), "1h02m");
        assert_eq!(age(3.0 * 86_400.0 + 4.0 * 3600.0), "3d04h");
    }

    #[test]
    fn urls_with_or_without_the_status_path() {
        let t = Target::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            t,
            Target {
                authority: "127.0.0.1:8080".into(),
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/status".into()
            }
        );
        assert_eq!(t.to_string(), "http://127.0.0.1:8080/status");
        assert_eq!(
            Target::parse("http://127.0.0.1:8080/").unwrap().path,
            "/status"
        );
        assert_eq!(
            Target::parse("http://127.0.0.1:8080/status").unwrap().path,
            "/status"
        );
        assert_eq!(Target::parse("http://h:1/status/").unwrap().path, "/status");
        assert_eq!(
            Target::parse("http://h/sluice").unwrap().path,
            "/sluice/status"
        );
        let bare = Target::parse("localhost:9").unwrap();
        assert_eq!((bare.host.as_str(), bare.port), ("localhost", 9));
        assert_eq!(Target::parse("http://h").unwrap().port, 80);
        let v6 = Target::parse("http://[::1]:8080/status").unwrap();
        assert_eq!(
            (v6.host.as_str(), v6.port, v6.authority.as_str()),
            ("::1", 8080, "[::1]:8080")
        );
    }

    #[test]
    fn unsupported_urls_are_refused_with_a_reason() {
        let https = Target::parse("https://127.0.0.1:8443")
            .unwrap_err()
            .to_string();
        assert!(https.contains("https is not supported"), "{https}");
        for (url, why) in [
            ("ftp://h", "unsupported scheme"),
            ("http://", "no host"),
            ("http://u:p@h:1", "credentials"),
            ("http://h:99999", "not a port"),
            ("http://h:x", "not a port"),
            ("http://[::1", "unclosed"),
            ("http://h/status?x=1", "query"),
        ] {
            let error = format!("{:#}", Target::parse(url).unwrap_err());
            assert!(error.contains(why), "{url}: {error}");
        }
    }

    #[test]
    fn responses_with_a_length_chunks_or_neither() {
        let full = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        let response = parse_response(full, false).unwrap().unwrap();
        assert_eq!((response.code, response.body.as_slice()), (200, &b"{}"[..]));
        assert_eq!(parse_response(&full[..full.len() - 1], false), Ok(None));
        assert!(parse_response(&full[..full.len() - 1], true).is_err());
        assert_eq!(parse_response(b"HTTP/1.1 200 OK\r\n", false), Ok(None));

        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;x=y\r\n\":1}\r\n0\r\n\r\n";
        let response = parse_response(chunked, false).unwrap().unwrap();
        assert_eq!(response.body, b"{\"a\":1}");
        for cut in 40..chunked.len() - 5 {
            assert_eq!(
                parse_response(&chunked[..cut], false),
                Ok(None),
                "cut at {cut}"
            );
        }

        let until_close = b"HTTP/1.0 503 Service Unavailable\r\n\r\nnot ready";
        assert_eq!(parse_response(until_close, false), Ok(None));
        let response = parse_response(until_close, true).unwrap().unwrap();
        assert_eq!(
            (
                response.code,
                response.reason.as_str(),
                response.body.as_slice()
            ),
            (503, "Service Unavailable", &b"not ready"[..])
        );
        assert!(parse_response(b"SSH-2.0-x\r\n\r\n", false).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false).is_err());
    }

    /// Serves `answer` to one connection and returns the request it read.
    fn serve_once(answer: &'static [u8]) -> (String, thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buffer = [0u8; 1024];
            while find(&request, b"\r\n\r\n").is_none() {
                let read = stream.read(&mut buffer).unwrap();
                assert_ne!(read, 0);
                request.extend_from_slice(&buffer[..read]);
            }
            stream.write_all(answer).unwrap();
            // Kept open: the client must stop at the end of the body, not wait for a close.
            thread::sleep(Duration::from_millis(500));
            String::from_utf8(request).unwrap()
        });
        (url, server)
    }

    #[test]
    fn gets_the_status_over_loopback() {
        let (url, server) = serve_once(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        );
        let target = Target::parse(&url).unwrap();
        assert_eq!(get(&target).unwrap(), "{}");
        let request = server.join().unwrap();
        assert!(request.starts_with("GET /status HTTP/1.1\r\n"), "{request}");
        assert!(
            request.contains(&format!("\r\nHost: {}\r\n", target.authority)),
            "{request}"
        );
        assert!(request.contains("\r\nConnection: close\r\n"), "{request}");
    }

    #[test]
    fn an_error_answer_is_an_error_with_its_first_line() {
        let (url, server) = serve_once(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 19\r\n\r\njournal recovering\n",
        );
        let error = get(&Target::parse(&url).unwrap()).unwrap_err().to_string();
        assert!(
            error.ends_with("answered 503 Service Unavailable: journal recovering"),
            "{error}"
        );
        server.join().unwrap();
    }

    #[test]
    fn a_refused_connection_says_where_and_what_to_check() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let error = get(&Target::parse(&format!("http://127.0.0.1:{port}")).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(&format!(
                "cannot connect to http://127.0.0.1:{port}/status: "
            )),
            "{error}"
        );
        assert!(error.contains("--http"), "{error}");
    }
}
