//! What a rendered pod runs: the binary's path in the image, its ports, the directories it
//! mounts and the `sluice serve` flags. The one place this is written down: the renderer
//! builds the StatefulSet from it, and the tests (`tests/render.rs`, `tests/docker.rs`, which
//! include this file) check the Dockerfile, the checked-in manifests and `sluice serve --help`
//! against it. Self-contained on purpose (no `crate::` paths) so that tests can include it.

/// Where the Dockerfile installs the binary; the container's command.
pub(crate) const BINARY: &str = "/usr/local/bin/sluice";
/// The UID and GID the image and the pod run as (distroless' and Debian's `nonroot`).
pub(crate) const RUN_AS_ID: i64 = 65532;

/// Where the configuration (the ConfigMap and the users' Secret, projected) is mounted.
pub(crate) const CONFIG_DIR: &str = "/etc/sluice/config";
/// Where the journal's volume is mounted.
pub(crate) const DATA_DIR: &str = "/var/lib/sluice";
/// Where the pod writes what is only known at run time (the self-signed CA, `ca.crt`).
pub(crate) const EXPORT_DIR: &str = "/var/run/sluice/export";
/// Where a TLS Secret (`tls.crt`, `tls.key`) is mounted.
pub(crate) const TLS_DIR: &str = "/etc/sluice/tls";

/// A named container port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Port {
    /// The port's name in the pod and the Service (`service.port.<name>` in exports).
    pub(crate) name: &'static str,
    /// Its number, in the pod and the Service alike.
    pub(crate) number: i32,
}

/// Plain AMQP.
pub(crate) const AMQP: Port = Port {
    name: "amqp",
    number: 5672,
};
/// AMQP over TLS.
pub(crate) const AMQPS: Port = Port {
    name: "amqps",
    number: 5671,
};
/// AMQP over WebSockets with TLS (EnMasse's `https` port, exported as `amqp-wss`).
pub(crate) const AMQP_WSS: Port = Port {
    name: "amqp-wss",
    number: 8443,
};
/// Metrics (`/metrics`) and probes (`/healthz`, `/readyz`).
pub(crate) const HTTP: Port = Port {
    name: "http",
    number: 8080,
};
/// Every port a pod listens on, in the order manifests list them.
pub(crate) const PORTS: [Port; 4] = [AMQP, AMQPS, AMQP_WSS, HTTP];

/// The liveness probe's path (on [`HTTP`]).
pub(crate) const LIVENESS_PATH: &str = "/healthz";
/// The readiness probe's path (on [`HTTP`]).
pub(crate) const READINESS_PATH: &str = "/readyz";
/// The metrics path the ServiceMonitor scrapes.
pub(crate) const METRICS_PATH: &str = "/metrics";

/// The subcommand, first of the container's arguments.
pub(crate) const SERVE: &str = "serve";
/// `sluice serve`'s flags with their values, in every rendered pod, in this order.
pub(crate) const SERVE_FLAGS: &[(&str, &str)] = &[
    ("--config", CONFIG_DIR),
    ("--data-dir", DATA_DIR),
    ("--amqp", "0.0.0.0:5672"),
    ("--amqps", "0.0.0.0:5671"),
    ("--amqp-wss", "0.0.0.0:8443"),
    ("--http", "0.0.0.0:8080"),
    ("--export-dir", EXPORT_DIR),
    ("--log-format", "json"),
];
/// Follows [`SERVE_FLAGS`] with the space's `<namespace>/<name>`.
pub(crate) const ADDRESS_SPACE_FLAG: &str = "--address-space";
/// Follows it with the Service's host name.
pub(crate) const EXPORT_HOST_FLAG: &str = "--export-host";
/// With a certificate Secret mounted at [`TLS_DIR`].
pub(crate) const TLS_FLAGS: &[(&str, &str)] = &[
    ("--tls-cert", "/etc/sluice/tls/tls.crt"),
    ("--tls-key", "/etc/sluice/tls/tls.key"),
];
/// Without one, once per name the self-signed certificate is made for.
pub(crate) const TLS_HOSTNAME_FLAG: &str = "--tls-hostname";

/// Every flag a rendered pod may be given: what `sluice serve --help` must list.
#[allow(
    dead_code,
    reason = "tests/render.rs checks these against `sluice serve --help`"
)]
pub(crate) fn all_flags() -> Vec<&'static str> {
    let mut flags: Vec<&str> = SERVE_FLAGS.iter().map(|(flag, _)| *flag).collect();
    flags.push(ADDRESS_SPACE_FLAG);
    flags.push(EXPORT_HOST_FLAG);
    flags.extend(TLS_FLAGS.iter().map(|(flag, _)| *flag));
    flags.push(TLS_HOSTNAME_FLAG);
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_flags_use_the_ports() {
        for (flag, port) in [
            ("--amqp", AMQP),
            ("--amqps", AMQPS),
            ("--amqp-wss", AMQP_WSS),
            ("--http", HTTP),
        ] {
            let value = SERVE_FLAGS
                .iter()
                .find(|(f, _)| *f == flag)
                .map(|(_, v)| *v);
            assert_eq!(value, Some(format!("0.0.0.0:{}", port.number).as_str()));
        }
        for (_, path) in TLS_FLAGS {
            assert!(path.starts_with(TLS_DIR));
        }
    }
}
