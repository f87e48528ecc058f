//! `--export-dir`: the endpoint information EnMasse exported to a ConfigMap or Secret
//! (`service.host`, `service.port.<name>`, `ca.crt`), written as one file per key, so a
//! sidecar or the control plane can publish it. Each file is written whole and renamed into
//! place, so a reader never sees half of one.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// What is exported.
#[derive(Debug)]
pub(crate) struct Export {
    /// `service.host`.
    pub(crate) host: String,
    /// `service.port.<name>` for each listener.
    pub(crate) ports: Vec<(&'static str, u16)>,
    /// The CA certificate clients trust the TLS endpoints with, if any.
    pub(crate) ca: Option<PathBuf>,
}

impl Export {
    /// Writes the keys into `dir` (created if missing), removing `ca.crt` when there is none.
    pub(crate) fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the export directory {}", dir.display()))?;
        write_key(dir, "service.host", self.host.as_bytes())?;
        for (name, port) in &self.ports {
            write_key(
                dir,
                &format!("service.port.{name}"),
                port.to_string().as_bytes(),
            )?;
        }
        match &self.ca {
            Some(ca) => {
                let pem = std::fs::read(ca)
                    .with_context(|| format!("reading the CA certificate {}", ca.display()))?;
                write_key(dir, "ca.crt", &pem)?;
            }
            None => match std::fs::remove_file(dir.join("ca.crt")) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).context("removing the old ca.crt");
                }
                _ => {}
            },
        }
        Ok(())
    }
}

fn write_key(dir: &Path, key: &str, value: &[u8]) -> anyhow::Result<()> {
    let path = dir.join(key);
    let tmp = dir.join(format!(".{key}.tmp"));
    std::fs::write(&tmp, value).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
}

/// The host clients reach this broker by when `--export-host` is not given: the machine's
/// name (a pod's hostname).
pub(crate) fn default_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn every_key_is_a_file_and_a_missing_ca_removes_the_old_one() {
        let dir = std::env::temp_dir().join(format!("sluice-export-{}", std::process::id()));
        let ca = dir.join("ca-source.pem");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&ca, "PEM").unwrap();
        let out = dir.join("out");
        let mut export = Export {
            host: "messaging.team-a.svc".into(),
            ports: vec![("amqp", 5672), ("amqps", 5671)],
            ca: Some(ca),
        };
        export.write(&out).unwrap();
        let read = |k: &str| std::fs::read_to_string(out.join(k)).unwrap();
        assert_eq!(read("service.host"), "messaging.team-a.svc");
        assert_eq!(read("service.port.amqp"), "5672");
        assert_eq!(read("service.port.amqps"), "5671");
        assert_eq!(read("ca.crt"), "PEM");
        export.ca = None;
        export.write(&out).unwrap();
        assert!(!out.join("ca.crt").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
