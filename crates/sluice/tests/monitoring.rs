//! The monitoring that ships in `config/monitoring/` against the broker that feeds it: the
//! PrometheusRule and the Grafana dashboard use only metrics the real `sluice serve` exports,
//! their structure is what Prometheus, Alertmanager and Grafana need, the metrics and `/status`
//! count real traffic, and `sluice status` prints it.
//!
//! Metric names are taken from every PromQL expression (alerts, recording rules, panel targets,
//! template variable queries) by a small tokenizer: identifiers outside strings and `[...]`
//! ranges that start with `sluice_` are metrics, and those with a `:` are recorded series,
//! which must be recorded in the rule file. A name is exported when `/metrics` has its
//! `# TYPE` line, where a counter `sluice_x` is written `# TYPE sluice_x counter` with samples
//! `sluice_x_total`, and a histogram's `_bucket`, `_sum` and `_count` series belong to its
//! `# TYPE ... histogram` line.
//!
//! The HTTP GET here is a few lines of its own, not `sluice status`'s client: a black-box test
//! should not share a bug with what it tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;
use support::*;

/// How long a metric may take to show what just happened (gauges may be sampled, not pushed).
const SETTLE: Duration = Duration::from_secs(10);

/// The metric families of the contract (issue 13) and their types.
const CONTRACT: &[(&str, &str)] = &[
    ("sluice_info", "gauge"),
    ("sluice_ready", "gauge"),
    ("sluice_connections", "gauge"),
    ("sluice_connections_opened", "counter"),
    ("sluice_connections_refused", "counter"),
    ("sluice_sessions", "gauge"),
    ("sluice_links", "gauge"),
    ("sluice_deliveries_in", "counter"),
    ("sluice_deliveries_out", "counter"),
    ("sluice_deliveries_transit", "counter"),
    ("sluice_outcomes", "counter"),
    ("sluice_queue_depth", "gauge"),
    ("sluice_queue_bytes", "gauge"),
    ("sluice_queue_bytes_max", "gauge"),
    ("sluice_queue_oldest_message_age_seconds", "gauge"),
    ("sluice_queue_durable_messages", "gauge"),
    ("sluice_queue_consumers", "gauge"),
    ("sluice_addresses", "gauge"),
    ("sluice_addresses_not_ready", "gauge"),
    ("sluice_address_space_ready", "gauge"),
    ("sluice_memory_used_bytes", "gauge"),
    ("sluice_memory_max_bytes", "gauge"),
    ("sluice_process_resident_memory_bytes", "gauge"),
    ("sluice_journal_sync_duration_seconds", "histogram"),
    ("sluice_journal_written_bytes", "counter"),
    ("sluice_journal_segments", "gauge"),
    ("sluice_auth_successes", "counter"),
    ("sluice_auth_failures", "counter"),
    ("sluice_authentication_service_ready", "gauge"),
    ("sluice_config_reloads", "counter"),
    ("sluice_config_reload_failures", "counter"),
    (
        "sluice_config_last_reload_success_timestamp_seconds",
        "gauge",
    ),
];

/// The alerts the rule file must have: EnMasse's, rewritten, and what an operator of this
/// broker needs.
const ALERTS: &[&str] = &[
    "BrokerMemory",
    "ComponentHealth",
    "AuthenticationService",
    "AddressSpaceHealth",
    "AddressHealth",
    "ConfigReloadFailing",
    "QueueStuck",
    "JournalSyncSlow",
    "AuthFailuresHigh",
    "RestartingPods",
    "PendingPods",
];

/// Alerts that fire at once, with no `for`, as EnMasse's did.
const WITHOUT_FOR: &[&str] = &["RestartingPods"];

fn monitoring_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/monitoring")
}

fn read(name: &str) -> String {
    let path = monitoring_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrometheusRule {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    metadata: Metadata,
    spec: RuleSpec,
}

#[derive(Debug, Deserialize)]
struct Metadata {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    groups: Vec<Group>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Group {
    name: String,
    rules: Vec<Rule>,
}

/// One rule, as the Prometheus Operator's CRD has it: a recording rule (`record`) or an alert.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    record: Option<String>,
    alert: Option<String>,
    expr: String,
    #[serde(rename = "for")]
    for_duration: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

fn rules() -> PrometheusRule {
    serde_saphyr::from_str(&read("prometheus-rule.yaml"))
        .unwrap_or_else(|e| panic!("prometheus-rule.yaml: {e}"))
}

fn dashboard() -> Value {
    serde_json::from_str(&read("grafana-dashboard.json"))
        .unwrap_or_else(|e| panic!("grafana-dashboard.json: {e}"))
}

/// Every panel, those inside collapsed rows included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().expect("no panels") {
        all.push(panel);
        if let Some(inner) = panel["panels"].as_array() {
            all.extend(inner);
        }
    }
    all
}

/// Every PromQL expression, with where it is: the rules' `expr`, the panels' targets' `expr`
/// and the query variables' queries.
fn expressions() -> Vec<(String, String)> {
    let mut all = Vec::new();
    for group in rules().spec.groups {
        for rule in group.rules {
            let name = rule.alert.or(rule.record).unwrap_or_default();
            all.push((format!("rule {name}"), rule.expr));
        }
    }
    let dashboard = dashboard();
    for panel in panels(&dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                all.push((format!("panel {}", panel["title"]), expr.to_owned()));
            }
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("no templating")
    {
        if variable["type"] == "query" {
            let query = variable["query"]["query"]
                .as_str()
                .or(variable["query"].as_str())
                .expect("a query variable without a query");
            all.push((format!("variable {}", variable["name"]), query.to_owned()));
        }
    }
    all
}

/// The identifiers of a PromQL expression outside string literals and `[...]` ranges (and
/// numbers such as `0.99`, `1e3`, `5m`), in order: metric, function, label and keyword names.
fn identifiers(expr: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                let mut escaped = false;
                for d in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if d == '\\' && c != '`' {
                        escaped = true;
                    } else if d == c {
                        break;
                    }
                }
            }
            '[' => {
                for d in chars.by_ref() {
                    if d == ']' {
                        break;
                    }
                }
            }
            '0'..='9' | '.' => {
                while chars
                    .peek()
                    .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '.' || *d == '_')
                {
                    chars.next();
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let mut name = c.to_string();
                while let Some(&d) = chars.peek() {
                    if d.is_ascii_alphanumeric() || d == '_' || d == ':' {
                        name.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                found.push(name);
            }
            _ => {}
        }
    }
    found
}

/// The `sluice_*` metrics an expression reads.
fn metrics_of(expr: &str) -> BTreeSet<String> {
    identifiers(expr)
        .into_iter()
        .filter(|name| name.starts_with("sluice_"))
        .collect()
}

/// The recorded series (`level:metric:operation`) an expression reads.
fn recorded_of(expr: &str) -> BTreeSet<String> {
    identifiers(expr)
        .into_iter()
        .filter(|name| name.contains(':'))
        .collect()
}

/// Whether `name` as a query writes it belongs to a family of `families` (name → type): the
/// family itself, a counter's `_total` samples, or a histogram's `_bucket`/`_sum`/`_count`.
fn family_of<'a>(name: &str, families: &'a BTreeMap<String, String>) -> Option<&'a str> {
    if let Some((family, _)) = families.get_key_value(name) {
        return Some(family.as_str());
    }
    let with = |suffix: &str, kind: &str| {
        let base = name.strip_suffix(suffix)?;
        let (family, found) = families.get_key_value(base)?;
        (found == kind).then_some(family.as_str())
    };
    with("_total", "counter")
        .or_else(|| with("_bucket", "histogram"))
        .or_else(|| with("_sum", "histogram"))
        .or_else(|| with("_count", "histogram"))
}

/// The families of a Prometheus text exposition: each `# TYPE name type` line.
fn families(exposition: &str) -> BTreeMap<String, String> {
    exposition
        .lines()
        .filter_map(|line| {
            let mut words = line.strip_prefix("# TYPE ")?.split_whitespace();
            Some((words.next()?.to_owned(), words.next()?.to_owned()))
        })
        .collect()
}

fn contract_families() -> BTreeMap<String, String> {
    CONTRACT
        .iter()
        .map(|(name, kind)| ((*name).to_owned(), (*kind).to_owned()))
        .collect()
}

/// Every metric the rule file and the dashboard read, with one place that reads it.
fn metrics_used() -> BTreeMap<String, String> {
    let mut used = BTreeMap::new();
    for (place, expr) in expressions() {
        for metric in metrics_of(&expr) {
            used.entry(metric).or_insert_with(|| place.clone());
        }
    }
    used
}

#[test]
fn the_tokenizer_finds_metrics_and_recorded_series_only() {
    let expr = r#"histogram_quantile(0.99, sum by (pod, le) (rate(sluice_journal_sync_duration_seconds_bucket{namespace="sluice_not_a_metric", pod=~"$pod"}[$__rate_interval]))) > 1e3 and on (pod) pod:sluice_memory_utilisation:ratio offset 5m"#;
    assert_eq!(
        metrics_of(expr),
        BTreeSet::from(["sluice_journal_sync_duration_seconds_bucket".to_owned()])
    );
    assert_eq!(
        recorded_of(expr),
        BTreeSet::from(["pod:sluice_memory_utilisation:ratio".to_owned()])
    );
    assert_eq!(
        metrics_of("label_values(sluice_info{x='sluice_y'}, namespace)"),
        BTreeSet::from(["sluice_info".to_owned()])
    );
}

#[test]
fn every_metric_the_monitoring_reads_is_in_the_contract() {
    let contract = contract_families();
    let used = metrics_used();
    assert!(!used.is_empty());
    let unknown: Vec<_> = used
        .iter()
        .filter(|(name, _)| family_of(name, &contract).is_none())
        .collect();
    assert!(
        unknown.is_empty(),
        "not metrics of the contract (name, where): {unknown:?}"
    );
    // A counter is read by its samples, `_total`; the family name alone selects nothing.
    let bare_counters: Vec<_> = used
        .iter()
        .filter(|(name, _)| contract.get(name.as_str()).is_some_and(|k| k == "counter"))
        .collect();
    assert!(
        bare_counters.is_empty(),
        "counters without _total: {bare_counters:?}"
    );
}

#[test]
fn the_dashboard_shows_every_metric_of_the_contract() {
    let contract = contract_families();
    let dashboard = dashboard();
    let mut shown = BTreeSet::new();
    for panel in panels(&dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            for metric in metrics_of(target["expr"].as_str().unwrap_or_default()) {
                shown.extend(family_of(&metric, &contract).map(str::to_owned));
            }
        }
    }
    let missing: Vec<_> = contract.keys().filter(|f| !shown.contains(*f)).collect();
    assert!(missing.is_empty(), "no panel shows {missing:?}");
}

#[test]
fn every_recorded_series_read_is_recorded() {
    let recorded: BTreeSet<String> = rules()
        .spec
        .groups
        .into_iter()
        .flat_map(|g| g.rules)
        .filter_map(|r| r.record)
        .collect();
    for (place, expr) in expressions() {
        for series in recorded_of(&expr) {
            assert!(
                recorded.contains(&series),
                "{place} reads {series}, which no rule records"
            );
        }
    }
}

#[test]
fn the_rule_file_is_a_prometheus_rule_every_alert_complete() {
    let rule = rules();
    assert_eq!(rule.api_version, "monitoring.coreos.com/v1");
    assert_eq!(rule.kind, "PrometheusRule");
    assert_eq!(rule.metadata.name, "sluice");
    assert!(!rule.spec.groups.is_empty());
    let mut alerts = BTreeSet::new();
    let mut group_names = BTreeSet::new();
    for group in &rule.spec.groups {
        assert!(
            group_names.insert(&group.name),
            "group {} twice",
            group.name
        );
        assert!(!group.rules.is_empty(), "group {} is empty", group.name);
        for rule in &group.rules {
            assert!(!rule.expr.trim().is_empty(), "{rule:?}: no expr");
            assert_balanced(&rule.expr);
            match (&rule.alert, &rule.record) {
                (Some(alert), None) => {
                    alerts.insert(alert.as_str());
                    match &rule.for_duration {
                        Some(duration) => assert!(
                            is_duration(duration),
                            "{alert}: `for: {duration}` is not a duration"
                        ),
                        None => assert!(
                            WITHOUT_FOR.contains(&alert.as_str()),
                            "{alert}: no `for` (only {WITHOUT_FOR:?} fire at once)"
                        ),
                    }
                    let severity = rule.labels.get("severity").map(String::as_str);
                    assert!(
                        matches!(severity, Some("warning" | "critical")),
                        "{alert}: labels.severity {severity:?}, expected warning or critical"
                    );
                    for annotation in ["summary", "description"] {
                        let text = rule.annotations.get(annotation);
                        assert!(
                            text.is_some_and(|t| !t.trim().is_empty()),
                            "{alert}: no annotations.{annotation}"
                        );
                        assert_balanced_templates(alert, text.unwrap());
                    }
                }
                (None, Some(record)) => {
                    assert!(
                        record.contains(':'),
                        "recording rule {record}: name it level:metric:operation"
                    );
                    assert!(
                        rule.for_duration.is_none(),
                        "{record}: `for` on a recording rule"
                    );
                    assert!(
                        rule.annotations.is_empty(),
                        "{record}: annotations on a record"
                    );
                }
                _ => panic!("a rule must be an alert or a record, not both or neither: {rule:?}"),
            }
        }
    }
    let missing: Vec<_> = ALERTS.iter().filter(|a| !alerts.contains(**a)).collect();
    assert!(missing.is_empty(), "alerts missing: {missing:?}");
}

#[test]
fn the_readme_explains_every_alert() {
    let readme = read("README.md");
    for alert in ALERTS {
        assert!(
            readme
                .lines()
                .any(|l| l.starts_with('#') && l.contains(alert)),
            "README.md has no heading for {alert}"
        );
    }
}

/// Parentheses, brackets and braces pair up (outside strings): a cheap guard against a
/// broken edit; promtool checks the rest.
fn assert_balanced(expr: &str) {
    let mut open = Vec::new();
    let mut quote = None;
    for c in expr.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(' | '[' | '{') => open.push(c),
            (None, ')' | ']' | '}') => {
                let want = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                assert_eq!(open.pop(), Some(want), "unbalanced {c:?} in {expr}");
            }
            _ => {}
        }
    }
    assert!(
        open.is_empty() && quote.is_none(),
        "unclosed {open:?} in {expr}"
    );
}

fn assert_balanced_templates(alert: &str, text: &str) {
    assert_eq!(
        text.matches("{{").count(),
        text.matches("}}").count(),
        "{alert}: unbalanced template in {text:?}"
    );
}

/// A Prometheus duration: `300s`, `5m`, `1h30m`.
fn is_duration(text: &str) -> bool {
    let mut digits = false;
    let mut rest = text;
    while !rest.is_empty() {
        let number = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if number == 0 {
            return false;
        }
        rest = &rest[number..];
        let unit = ["ms", "s", "m", "h", "d", "w", "y"]
            .into_iter()
            .find(|u| rest.starts_with(u));
        let Some(unit) = unit else { return false };
        rest = &rest[unit.len()..];
        digits = true;
    }
    digits
}

#[test]
fn every_panel_has_a_datasource_and_a_query() {
    let dashboard = dashboard();
    assert!(
        dashboard["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
        "schemaVersion {}",
        dashboard["schemaVersion"]
    );
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    let variable = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no template variable {name}"))
    };
    let datasource = variable("datasource");
    assert_eq!(datasource["type"], "datasource");
    assert_eq!(datasource["query"], "prometheus");
    for (name, source) in [
        ("namespace", "label_values(sluice_info"),
        ("pod", "label_values(sluice_info"),
        ("address", "label_values(sluice_queue_depth"),
    ] {
        let v = variable(name);
        assert_eq!(v["type"], "query", "{name}");
        assert_eq!(v["datasource"]["uid"], "${datasource}", "{name}");
        let query = v["query"]["query"].as_str().unwrap_or_default();
        assert!(query.starts_with(source), "{name}: {query}");
    }

    let mut ids = BTreeSet::new();
    let mut rows = 0;
    for panel in panels(&dashboard) {
        let title = &panel["title"];
        assert!(
            title.as_str().is_some_and(|t| !t.is_empty()),
            "a panel without a title"
        );
        let id = panel["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("{title}: no id"));
        assert!(ids.insert(id), "{title}: id {id} twice");
        for field in ["x", "y", "w", "h"] {
            assert!(
                panel["gridPos"][field].is_u64(),
                "{title}: no gridPos.{field}"
            );
        }
        if panel["type"] == "row" {
            rows += 1;
            continue;
        }
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{title}: the datasource must be the template variable"
        );
        let targets = panel["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        assert!(!targets.is_empty(), "{title}: no targets");
        for target in targets {
            let expr = target["expr"].as_str().unwrap_or_default();
            assert!(!expr.trim().is_empty(), "{title}: a target without an expr");
            assert_balanced(expr);
            // Only the broker's own metrics, and Prometheus's `up`.
            let foreign: Vec<_> = identifiers(expr)
                .into_iter()
                .filter(|name| name.starts_with("kube_") || name == "ALERTS")
                .collect();
            assert!(foreign.is_empty(), "{title}: reads {foreign:?}");
        }
    }
    assert!(rows >= 7, "expected a row per area, found {rows}");
}

/// The broker's HTTP endpoint as `http://HOST:PORT`.
fn http_url(server: &Server) -> String {
    let url = server.http_url.clone().expect(
        "the test server has no http_url: support's Server must start `sluice serve` with \
         `--http 127.0.0.1:0` and record its `http on ADDR` line",
    );
    let url = url.trim_end_matches('/');
    if url.starts_with("http://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    }
}

/// One HTTP/1.1 GET of `path` at `url` (`http://HOST:PORT`): the status code and the body.
fn get(url: &str, path: &str) -> (u16, String) {
    http_get(url, path)
}

/// One sample of an exposition: its name, labels and value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn samples(exposition: &str) -> Vec<Sample> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = match line.find('}') {
                Some(close) => (&line[..=close], line[close + 1..].trim()),
                None => line.split_once(' ').unwrap(),
            };
            let value = value.split_whitespace().next().unwrap();
            let value = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value in {line:?}")),
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.strip_suffix('}').unwrap()),
                None => (series.trim(), ""),
            };
            Sample {
                name: name.to_owned(),
                labels: parse_labels(labels),
                value,
            }
        })
        .collect()
}

/// `a="x",b="y"` (values escaped as the text format escapes them).
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").unwrap();
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("an unterminated label value") {
                (_, '\\') => match chars.next().unwrap().1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        labels.insert(name.trim().to_owned(), value);
        rest = after[end + 1..].trim_start_matches(',').trim();
    }
    labels
}

/// The value of the one series of `name` with `labels` (among others); `None` when there is
/// none. More than one is a failure: the test's selector must name one series.
fn value(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<_> = samples(exposition)
        .into_iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).is_some_and(|x| x == v))
        })
        .collect();
    assert!(
        matching.len() <= 1,
        "{name}{labels:?} selects several series: {matching:?}"
    );
    matching.first().map(|s| s.value)
}

/// A series wanted in `/metrics`: its name, some of its labels, its value.
type Expected<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

/// Waits (bounded by [`SETTLE`]) until every expected series has its value in `/metrics`;
/// the exposition it last read.
fn wait_metrics(server: &Server, want: &[Expected<'_>]) -> String {
    let url = http_url(server);
    let deadline = Instant::now() + SETTLE;
    loop {
        let (code, exposition) = get(&url, "/metrics");
        assert_eq!(code, 200, "GET /metrics: {exposition}");
        let wrong: Vec<_> = want
            .iter()
            .filter_map(|(name, labels, expected)| {
                let got = value(&exposition, name, labels);
                (got != Some(*expected))
                    .then(|| format!("{name}{labels:?} = {got:?}, want {expected}"))
            })
            .collect();
        if wrong.is_empty() {
            return exposition;
        }
        assert!(
            Instant::now() < deadline,
            "after {SETTLE:?}: {wrong:#?}\n/metrics:\n{exposition}\nserver stderr:\n{}",
            server.log()
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// Waits (bounded by [`SETTLE`]) until `/status` satisfies `check` (which says what is wrong);
/// the document it last read.
fn wait_status(server: &Server, check: impl Fn(&Value) -> Result<(), String>) -> Value {
    let url = http_url(server);
    let deadline = Instant::now() + SETTLE;
    loop {
        let (code, body) = get(&url, "/status");
        assert_eq!(code, 200, "GET /status: {body}");
        let status: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("/status is not JSON ({e}): {body}"));
        match check(&status) {
            Ok(()) => return status,
            Err(wrong) => assert!(
                Instant::now() < deadline,
                "after {SETTLE:?}: {wrong}\n/status: {status:#}\nserver stderr:\n{}",
                server.log()
            ),
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// `/status`'s entry for `address`, and whether its fields have these values.
fn address_is(status: &Value, address: &str, want: &[(&str, Value)]) -> Result<(), String> {
    let entry = status["addresses"]
        .as_array()
        .ok_or("no addresses array")?
        .iter()
        .find(|a| a["address"] == address)
        .ok_or_else(|| format!("no address {address}"))?;
    for (field, value) in want {
        if &entry[*field] != value {
            return Err(format!(
                "{address}.{field} = {}, want {value}",
                entry[*field]
            ));
        }
    }
    Ok(())
}

#[test]
fn the_exposition_reader_knows_counters_histograms_and_escapes() {
    let exposition = "\
# HELP sluice_deliveries_in Messages received from publishers per address.
# TYPE sluice_deliveries_in counter
sluice_deliveries_in_total{address=\"myqueue\"} 20
sluice_deliveries_in_total{address=\"we\\\"ird\",x=\"a,b\"} 1
# TYPE sluice_journal_sync_duration_seconds histogram
# UNIT sluice_journal_sync_duration_seconds seconds
sluice_journal_sync_duration_seconds_sum 0.5
sluice_journal_sync_duration_seconds_count 3
sluice_journal_sync_duration_seconds_bucket{le=\"+Inf\"} 3
# TYPE sluice_queue_depth gauge
sluice_queue_depth{address=\"myqueue\"} 2.0 1700000000
# EOF
";
    let found = families(exposition);
    assert_eq!(found.len(), 3, "{found:?}");
    for (name, family) in [
        ("sluice_deliveries_in_total", Some("sluice_deliveries_in")),
        ("sluice_deliveries_in", Some("sluice_deliveries_in")),
        (
            "sluice_journal_sync_duration_seconds_bucket",
            Some("sluice_journal_sync_duration_seconds"),
        ),
        (
            "sluice_journal_sync_duration_seconds_count",
            Some("sluice_journal_sync_duration_seconds"),
        ),
        ("sluice_queue_depth", Some("sluice_queue_depth")),
        ("sluice_queue_depth_total", None),
        ("sluice_queue_depth_count", None),
        ("sluice_nothing", None),
    ] {
        assert_eq!(family_of(name, &found), family, "{name}");
    }
    let q: &[(&str, &str)] = &[("address", "myqueue")];
    assert_eq!(
        value(exposition, "sluice_deliveries_in_total", q),
        Some(20.0)
    );
    assert_eq!(
        value(
            exposition,
            "sluice_deliveries_in_total",
            &[("address", "we\"ird"), ("x", "a,b")]
        ),
        Some(1.0)
    );
    assert_eq!(value(exposition, "sluice_queue_depth", q), Some(2.0));
    assert_eq!(
        value(
            exposition,
            "sluice_journal_sync_duration_seconds_bucket",
            &[("le", "+Inf")]
        ),
        Some(3.0)
    );
    assert_eq!(
        value(
            exposition,
            "sluice_journal_sync_duration_seconds_count",
            &[]
        ),
        Some(3.0)
    );
    assert_eq!(
        value(exposition, "sluice_queue_depth", &[("address", "other")]),
        None
    );
}

#[test]
fn every_metric_the_monitoring_reads_is_exported() {
    let server = Server::start("monitoring-names");
    let (code, exposition) = get(&http_url(&server), "/metrics");
    assert_eq!(code, 200, "{exposition}");
    assert!(
        exposition.trim_end().ends_with("# EOF"),
        "no `# EOF` at the end:\n{exposition}"
    );
    let exported = families(&exposition);
    let missing: Vec<_> = metrics_used()
        .into_iter()
        .filter(|(name, _)| family_of(name, &exported).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "read by the monitoring but without a `# TYPE` line in /metrics (name, where): \
         {missing:#?}\n/metrics:\n{exposition}"
    );
    // And the families have the contract's types.
    for (name, kind) in CONTRACT {
        assert_eq!(
            exported.get(*name).map(String::as_str),
            Some(*kind),
            "# TYPE of {name}"
        );
    }
}

#[test]
fn metrics_and_status_count_what_a_queue_carries() {
    const N: usize = 20;
    let n = N as f64;
    let server = Server::start("monitoring-traffic");
    let url = http_url(&server);
    let (code, body) = get(&url, "/healthz");
    assert_eq!((code, body.trim()), (200, "ok"));
    // Ready once the core serves, which may follow the `listening on` line by a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (code, body) = loop {
        let (code, body) = get(&url, "/readyz");
        if code == 200 || Instant::now() > deadline {
            break (code, body);
        }
        assert_eq!(code, 503, "{body}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!((code, body.trim()), (200, "ready"));

    let q: &[(&str, &str)] = &[("address", "myqueue")];
    let exposition = wait_metrics(
        &server,
        &[
            (
                "sluice_info",
                &[
                    ("address_space", "myspace"),
                    ("address_space_type", "standard"),
                ],
                1.0,
            ),
            ("sluice_ready", &[], 1.0),
            ("sluice_address_space_ready", &[], 1.0),
            ("sluice_addresses", &[], 7.0),
            ("sluice_addresses_not_ready", &[], 0.0),
            ("sluice_authentication_service_ready", &[], 1.0),
            ("sluice_connections", &[], 0.0),
            ("sluice_queue_depth", q, 0.0),
            ("sluice_deliveries_in_total", q, 0.0),
        ],
    );
    assert!(exposition.trim_end().ends_with("# EOF"));

    let sent = ok(
        &server,
        server.run(&["send", "myqueue", &N.to_string()]),
        "send",
    );
    assert_eq!(sent["accepted"], N, "{sent}");
    wait_metrics(
        &server,
        &[
            ("sluice_deliveries_in_total", q, n),
            ("sluice_deliveries_out_total", q, 0.0),
            ("sluice_queue_depth", q, n),
            ("sluice_queue_consumers", q, 0.0),
            ("sluice_connections", &[], 0.0),
            ("sluice_connections_opened_total", &[], 1.0),
        ],
    );
    let status = wait_status(&server, |s| {
        address_is(
            s,
            "myqueue",
            &[
                ("type", "queue".into()),
                ("isReady", true.into()),
                ("phase", "Active".into()),
                ("depth", N.into()),
                ("deliveriesIn", N.into()),
                ("deliveriesOut", 0.into()),
                ("consumers", 0.into()),
            ],
        )?;
        (s["connections"] == 0)
            .then_some(())
            .ok_or("connections not 0".to_owned())
    });
    assert_eq!(status["addressSpace"]["name"], "myspace", "{status:#}");
    assert_eq!(status["addressSpace"]["isReady"], true, "{status:#}");
    // Stored types have the stored fields; anycast has none.
    address_is(
        &status,
        "myanycast",
        &[("depth", Value::Null), ("bytes", Value::Null)],
    )
    .unwrap();

    // `sluice status` prints the queue's row with its depth.
    let table = sluice_status(&url);
    assert_eq!(column(&table, "myqueue", "DEPTH"), N.to_string(), "{table}");
    assert_eq!(column(&table, "myqueue", "IN"), N.to_string(), "{table}");
    assert_eq!(column(&table, "myanycast", "DEPTH"), "-", "{table}");
    assert!(table.starts_with("address space: myspace"), "{table}");

    let received = ok(
        &server,
        server.run(&["receive", "myqueue", &N.to_string()]),
        "receive",
    );
    assert_eq!(bodies(&received).len(), N);
    wait_metrics(
        &server,
        &[
            ("sluice_deliveries_in_total", q, n),
            ("sluice_deliveries_out_total", q, n),
            (
                "sluice_outcomes_total",
                &[("address", "myqueue"), ("outcome", "accepted")],
                n,
            ),
            ("sluice_queue_depth", q, 0.0),
            ("sluice_queue_bytes", q, 0.0),
            ("sluice_queue_oldest_message_age_seconds", q, 0.0),
            ("sluice_queue_consumers", q, 0.0),
            ("sluice_connections", &[], 0.0),
            ("sluice_connections_opened_total", &[], 2.0),
        ],
    );
    wait_status(&server, |s| {
        address_is(
            s,
            "myqueue",
            &[
                ("depth", 0.into()),
                ("deliveriesIn", N.into()),
                ("deliveriesOut", N.into()),
                ("consumers", 0.into()),
            ],
        )
    });

    // A receiver attached: one connection, one consumer, one outgoing link.
    let mut holder = server.spawn(&["hold", "myqueue", "1"]);
    holder.wait_ready(&server);
    wait_metrics(
        &server,
        &[
            ("sluice_connections", &[], 1.0),
            ("sluice_queue_consumers", q, 1.0),
            (
                "sluice_links",
                &[("address", "myqueue"), ("direction", "out")],
                1.0,
            ),
        ],
    );
    wait_status(&server, |s| {
        address_is(s, "myqueue", &[("consumers", 1.into())])?;
        (s["connections"] == 1)
            .then_some(())
            .ok_or("connections not 1".to_owned())
    });
    holder.kill();
    wait_metrics(
        &server,
        &[
            ("sluice_connections", &[], 0.0),
            ("sluice_queue_consumers", q, 0.0),
        ],
    );
}

/// Runs `sluice status --url URL`, asserting it succeeds; its stdout.
fn sluice_status(url: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["status", "--url", url])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "sluice status --url {url}: {:?}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The cell of `column` in the table row of `address` (cells have no spaces).
fn column(table: &str, address: &str, column: &str) -> String {
    let header: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("ADDRESS "))
        .unwrap_or_else(|| panic!("no table header in {table}"))
        .split_whitespace()
        .collect();
    let index = header.iter().position(|c| *c == column).unwrap();
    let row: Vec<&str> = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(address))
        .unwrap_or_else(|| panic!("no row for {address} in {table}"))
        .split_whitespace()
        .collect();
    assert_eq!(row.len(), header.len(), "{table}");
    row[index].to_owned()
}

#[test]
fn sluice_status_takes_the_url_with_or_without_status_and_prints_json() {
    let server = Server::start("monitoring-status");
    let url = http_url(&server);
    let table = sluice_status(&format!("{url}/status"));
    assert_eq!(column(&table, "myqueue", "DEPTH"), "0", "{table}");
    assert_eq!(column(&table, "myqueue", "READY"), "true", "{table}");

    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["status", "--url", &url, "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let status: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(status["addressSpace"]["name"], "myspace");
    assert_eq!(
        status["addresses"].as_array().unwrap().len(),
        7,
        "{status:#}"
    );
}

/// `sluice status` against nothing, or over https: exit 1 and one line that says why.
#[test]
fn sluice_status_fails_clearly_without_a_broker() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for (url, why) in [
        (format!("http://127.0.0.1:{port}"), "cannot connect to"),
        (
            format!("https://127.0.0.1:{port}"),
            "https is not supported",
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["status", "--url", &url])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{url}: {stderr}");
        assert!(output.stdout.is_empty(), "{url}: {output:?}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(why),
            "{url}: {stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{url}: {stderr}");
    }
}

/// Under load (four publishers at once, scraped while they send, then one consumer), the
/// counts are exactly what was sent and received, and nothing is counted twice.
#[test]
fn the_counts_are_exact_under_concurrent_publishers_while_being_scraped() {
    const EACH: usize = 500;
    const PUBLISHERS: usize = 4;
    let total = (EACH * PUBLISHERS) as f64;
    let server = Server::start("monitoring-load");
    let url = http_url(&server);
    let senders: Vec<_> = (0..PUBLISHERS)
        .map(|_| server.spawn(&["send", "myqueue", &EACH.to_string()]))
        .collect();
    // Scrapes while they send: every answer is whole, and the count never goes back.
    let mut last = 0.0;
    for _ in 0..20 {
        let (code, body) = get(&url, "/metrics");
        assert_eq!(code, 200);
        assert!(body.trim_end().ends_with("# EOF"), "cut short");
        let now = value(
            &body,
            "sluice_deliveries_in_total",
            &[("address", "myqueue")],
        )
        .unwrap_or(0.0);
        assert!(now >= last && now <= total, "{last} then {now}");
        last = now;
    }
    for sender in senders {
        let sent = ok(&server, sender.finish(&server), "send");
        assert_eq!(sent["accepted"], EACH, "{sent}");
    }
    let q: &[(&str, &str)] = &[("address", "myqueue")];
    wait_metrics(
        &server,
        &[
            ("sluice_deliveries_in_total", q, total),
            ("sluice_queue_depth", q, total),
            ("sluice_connections_opened_total", &[], PUBLISHERS as f64),
        ],
    );
    let received = ok(
        &server,
        server.run(&["receive", "myqueue", &(EACH * PUBLISHERS).to_string()]),
        "receive",
    );
    assert_eq!(received["received"], EACH * PUBLISHERS, "{received}");
    wait_metrics(
        &server,
        &[
            ("sluice_deliveries_out_total", q, total),
            (
                "sluice_outcomes_total",
                &[("address", "myqueue"), ("outcome", "accepted")],
                total,
            ),
            ("sluice_queue_depth", q, 0.0),
            (
                "sluice_links",
                &[("address", "myqueue"), ("direction", "in")],
                0.0,
            ),
            ("sluice_connections", &[], 0.0),
            ("sluice_sessions", &[], 0.0),
        ],
    );
}
