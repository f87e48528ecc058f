//! What the infra config asks of the pod: replicas, memory, the journal's volume.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::Value;
use sluice_config::resources::AddressSpaceType;
use sluice_config::{Diagnostic, ResolvedAddressSpace, Severity};

/// The journal volume's size without `spec.broker.resources.storage`.
pub(super) const STORAGE_DEFAULT: &str = "2Gi";

/// The pod's size, from the space's infra config.
#[derive(Clone, Debug)]
pub(super) struct Sizing {
    /// Brokered: 1. Standard: `spec.router.minReplicas` (default 1); each replica is an
    /// independent broker with its own journal.
    pub(super) replicas: i32,
    /// `spec.broker.resources.memory`: the container's memory request and limit.
    pub(super) memory: Option<Quantity>,
    /// `spec.broker.resources.storage`, or [`STORAGE_DEFAULT`].
    pub(super) storage: Quantity,
    /// `spec.broker.storageClassName`.
    pub(super) storage_class: Option<String>,
}

/// Reads the sizing of `space`; a size Kubernetes would not take is an error naming the field.
pub(super) fn sizing(space: &ResolvedAddressSpace) -> Result<Sizing, Diagnostic> {
    let infra = space.infra_config.as_ref();
    let spec = infra.map(|i| &i.resource.spec);
    let broker = spec.and_then(|s| s.broker.as_ref());
    let resources = broker.and_then(|b| b.resources.as_ref());
    let quantity = |field: &str| -> Result<Option<Quantity>, Diagnostic> {
        let (Some(infra), Some(value)) = (infra, resources.and_then(|r| r.get(field))) else {
            return Ok(None);
        };
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        if is_quantity(&text) {
            Ok(Some(Quantity(text)))
        } else {
            let path = format!("spec.broker.resources.{field}");
            Err(infra.origin.diagnostic(
                Severity::Error,
                path,
                format!("{value} is not a Kubernetes quantity (such as 512Mi or 2Gi)"),
            ))
        }
    };
    let replicas = match space.space_type {
        AddressSpaceType::Brokered => 1,
        AddressSpaceType::Standard => spec
            .and_then(|s| s.router.as_ref())
            .and_then(|r| r.min_replicas)
            .map_or(1, |n| i32::try_from(n.max(1)).unwrap_or(i32::MAX)),
    };
    Ok(Sizing {
        replicas,
        memory: quantity("memory")?,
        storage: quantity("storage")?.unwrap_or_else(|| Quantity(STORAGE_DEFAULT.to_owned())),
        storage_class: broker.and_then(|b| b.storage_class_name.clone()),
    })
}

/// Whether `text` is a Kubernetes quantity: a decimal number, then a binary (`Ki`..`Ei`) or
/// decimal (`n u m k M G T P E`) suffix or an exponent, or nothing.
pub(super) fn is_quantity(text: &str) -> bool {
    let number_end = text
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && (c == '+' || c == '-'))))
        .map_or(text.len(), |(i, _)| i);
    let (number, suffix) = text.split_at(number_end);
    let digits = number.trim_start_matches(['+', '-']);
    let number_ok = !digits.is_empty()
        && digits != "."
        && digits.matches('.').count() <= 1
        && digits.chars().any(|c| c.is_ascii_digit());
    let exponent = |s: &str| {
        s.strip_prefix(['e', 'E']).is_some_and(|e| {
            let e = e.trim_start_matches(['+', '-']);
            !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
        })
    };
    const SUFFIXES: [&str; 16] = [
        "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E",
    ];
    number_ok && (SUFFIXES.contains(&suffix) || exponent(suffix))
}

#[cfg(test)]
mod tests {
    use super::is_quantity;

    #[test]
    fn quantities() {
        for ok in ["2Gi", "512Mi", "1", "1.5G", "100m", "1e3", "0.5Ti", "+1k"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "Gi", "64Mb", "1.2.3Gi", "2 Gi", "1e", ".", "lots"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }
}
