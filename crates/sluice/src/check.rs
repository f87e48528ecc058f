//! `sluice check`: print every diagnostic and a summary of each address space.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use sluice_config::resources::AddressType;
use sluice_config::{Checked, ResolvedAddressSpace, Severity};

/// Checks `paths`; exit code 0 when valid (warnings allowed), 1 otherwise.
pub(crate) fn run(paths: &[PathBuf], address_space: Option<&str>) -> anyhow::Result<ExitCode> {
    let checked = sluice_config::load_paths(paths).context("reading the manifests")?;
    let mut valid = checked.is_valid();
    let mut out = report(&checked);
    if let Some(name) = address_space
        && checked.config.address_space(name).is_none()
    {
        valid = false;
        let named: Vec<String> = checked
            .config
            .address_spaces_named(name)
            .map(ResolvedAddressSpace::qualified_name)
            .collect();
        if named.len() > 1 {
            let _ = writeln!(
                out,
                "error: {name:?} names {} address spaces ({}): give <namespace>/<name>",
                named.len(),
                named.join(", ")
            );
        } else {
            let _ = writeln!(out, "error: no valid address space named {name:?}");
        }
    }
    print!("{out}");
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The diagnostics, then one block per address space, then the verdict.
pub(crate) fn report(checked: &Checked) -> String {
    let mut out = String::new();
    for diagnostic in &checked.diagnostics {
        let _ = writeln!(out, "{}: {diagnostic}", diagnostic.severity);
    }
    if !checked.diagnostics.is_empty() {
        out.push('\n');
    }
    for space in checked.config.address_spaces.values() {
        summarize(space, &mut out);
    }
    let errors = checked.count(Severity::Error);
    let warnings = checked.count(Severity::Warning);
    let notes = checked.count(Severity::Note);
    let verdict = if errors == 0 { "valid" } else { "invalid" };
    let _ = writeln!(
        out,
        "{verdict}: {} address space(s), {errors} error(s), {warnings} warning(s), {notes} note(s)",
        checked.config.address_spaces.len()
    );
    out
}

fn summarize(space: &ResolvedAddressSpace, out: &mut String) {
    let auth = match &space.authentication_service {
        Some(service) => format!(
            "{} ({})",
            service.resource.metadata.name, service.resource.spec.service_type
        ),
        None => "default".to_owned(),
    };
    // `<namespace>/<name>` for a space written with a namespace, as `--address-space` takes it.
    let _ = writeln!(
        out,
        "address space {}: type {}, plan {}, authentication {auth}",
        space.qualified_name(),
        space.space_type,
        space.plan.resource.metadata.name
    );
    let by_type: Vec<String> = AddressType::ALL
        .iter()
        .filter_map(|&t| {
            let names: Vec<&str> = space
                .addresses
                .iter()
                .filter(|a| a.address_type() == t)
                .map(|a| a.address.resource.spec.address.as_str())
                .collect();
            (!names.is_empty()).then(|| format!("    {t} ({}): {}", names.len(), names.join(", ")))
        })
        .collect();
    let _ = writeln!(out, "  addresses: {}", space.addresses.len());
    for line in by_type {
        let _ = writeln!(out, "{line}");
    }
    for pending in &space.pending {
        let _ = writeln!(
            out,
            "    pending: {} ({})",
            pending.address.address.resource.spec.address, pending.reason
        );
    }
    let users: Vec<&str> = space
        .users
        .iter()
        .map(|u| u.resource.spec.username.as_str())
        .collect();
    let _ = writeln!(
        out,
        "  users: {}",
        if users.is_empty() {
            "none".to_owned()
        } else {
            format!("{} ({})", users.len(), users.join(", "))
        }
    );
}
