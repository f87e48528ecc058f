//! The broker's store limits from an infra config's `spec.broker`: `globalMaxSize` (the memory
//! all addresses share, in Artemis's size notation or as a Kubernetes quantity) and
//! `addressFullPolicy` (what a full address does). EnMasse gave each address
//! `globalMaxSize × its plan's broker credit` (anchors/enmasse.md §4, "Address full").

use std::fmt;

use crate::diagnostic::Diagnostic;
use crate::load::Located;
use crate::model::{ResolvedAddress, ResolvedAddressSpace};
use crate::resources::InfraConfig;

/// What a full address does with a new message (`spec.broker.addressFullPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressFullPolicy {
    /// Keep accepting: messages past the memory budget are kept on disk, and the address is
    /// bounded by the disk alone.
    Page,
    /// Hold the senders back: no credit until consumers make room. Sluice's default.
    #[default]
    Block,
    /// Refuse the message with `amqp:resource-limit-exceeded` (EnMasse's shipped default).
    Fail,
    /// Make room by dropping the oldest messages, counted as dropped. (Artemis's `DROP`
    /// discards the arriving message instead; Sluice keeps the newest, as a bounded buffer of
    /// recent messages is what an address configured to drop is for.)
    Drop,
}

impl fmt::Display for AddressFullPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Page => "PAGE",
            Self::Block => "BLOCK",
            Self::Fail => "FAIL",
            Self::Drop => "DROP",
        })
    }
}

/// Parses `addressFullPolicy`, in any case.
pub fn parse_address_full_policy(value: &str) -> Result<AddressFullPolicy, String> {
    match value.to_ascii_uppercase().as_str() {
        "PAGE" => Ok(AddressFullPolicy::Page),
        "BLOCK" => Ok(AddressFullPolicy::Block),
        "FAIL" => Ok(AddressFullPolicy::Fail),
        "DROP" => Ok(AddressFullPolicy::Drop),
        _ => Err(format!(
            "{value:?} is not an address-full policy; use PAGE, BLOCK, FAIL or DROP"
        )),
    }
}

/// Parses a size: digits with an optional suffix. Artemis's `K`, `M`, `G`, `T` (with or
/// without `b`/`B`, any case) and Kubernetes's `Ki`, `Mi`, `Gi`, `Ti` are powers of 1024;
/// Kubernetes's decimal `k`, `M`, `G` read as Artemis reads them, 1024-based, since the field
/// is Artemis's.
pub fn parse_size(value: &str) -> Result<u64, String> {
    let bad = |why: &str| {
        format!(
            "{value:?} is not a size: {why} (write bytes, or a whole number with K, M, G or T, as in 64Mb or 512Mi)"
        )
    };
    let text = value.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, suffix) = text.split_at(digits);
    if text.starts_with('-') {
        return Err(bad("it is negative"));
    }
    if number.is_empty() {
        return Err(bad("it does not start with a whole number"));
    }
    if suffix.starts_with('.') {
        return Err(bad("fractions are not accepted"));
    }
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "ki" | "kib" => 10,
        "m" | "mb" | "mi" | "mib" => 20,
        "g" | "gb" | "gi" | "gib" => 30,
        "t" | "tb" | "ti" | "tib" => 40,
        _ => return Err(bad(&format!("unknown unit {suffix:?}"))),
    };
    let n: u64 = number.parse().map_err(|_| bad("too large"))?;
    let bytes = n
        .checked_mul(1u64 << shift)
        .ok_or_else(|| bad("too large"))?;
    if bytes == 0 {
        return Err(bad("it must be more than 0"));
    }
    Ok(bytes)
}

/// The limits an address space's infra config sets for its store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreLimits {
    /// `globalMaxSize`, in bytes.
    pub global_max_size: Option<u64>,
    /// `addressFullPolicy`.
    pub address_full_policy: Option<AddressFullPolicy>,
    /// `treatRejectAsUnmodifiedDeliveryFailed: false`: a consumer's `rejected` outcome sends
    /// the message to its dead-letter target at once. By default (EnMasse's, `true`) a
    /// rejected message counts as a failed delivery attempt and is offered again until its
    /// attempts run out.
    pub rejected_dead_letters: bool,
}

/// The errors in an infra config's store limits, naming the field.
pub(crate) fn check(infra: &Located<InfraConfig>, d: &mut Vec<Diagnostic>) {
    let Some(broker) = &infra.resource.spec.broker else {
        return;
    };
    if let Some(size) = &broker.global_max_size
        && let Err(e) = parse_size(size)
    {
        d.push(infra.origin.error("spec.broker.globalMaxSize", e));
    }
    if let Some(policy) = &broker.address_full_policy
        && let Err(e) = parse_address_full_policy(policy)
    {
        d.push(infra.origin.error("spec.broker.addressFullPolicy", e));
    }
}

impl ResolvedAddressSpace {
    /// The store limits of the space's infra config (checked at validation, so a value that
    /// would not parse is never here).
    pub fn store_limits(&self) -> StoreLimits {
        let broker = self
            .infra_config
            .as_ref()
            .and_then(|i| i.resource.spec.broker.as_ref());
        StoreLimits {
            global_max_size: broker
                .and_then(|b| b.global_max_size.as_deref())
                .and_then(|s| parse_size(s).ok()),
            address_full_policy: broker
                .and_then(|b| b.address_full_policy.as_deref())
                .and_then(|p| parse_address_full_policy(p).ok()),
            rejected_dead_letters: broker
                .and_then(|b| b.treat_reject_as_unmodified_delivery_failed)
                == Some(false),
        }
    }
}

impl ResolvedAddress {
    /// The broker credit of its plan (`spec.resources.broker`), if the plan gives one.
    pub fn broker_credit(&self) -> Option<f64> {
        self.plan.spec.resources.broker
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_artemis_and_kubernetes_write_them() {
        for (text, bytes) in [
            ("1048576", 1 << 20),
            ("64Mb", 64 << 20),
            ("64MB", 64 << 20),
            ("512Mi", 512 << 20),
            ("1G", 1 << 30),
            ("1Gi", 1 << 30),
            ("100K", 100 << 10),
            ("10kb", 10 << 10),
            ("2Ti", 2 << 40),
            (" 7b ", 7),
            ("512MiB", 512 << 20),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn bad_sizes_are_refused_with_the_reason() {
        for (text, why) in [
            ("", "whole number"),
            ("-1", "negative"),
            ("0", "more than 0"),
            ("1.5G", "fractions"),
            ("10Pb", "unknown unit"),
            ("99999999999999999999", "too large"),
            ("99999999999T", "too large"),
            ("Mb", "whole number"),
        ] {
            let e = parse_size(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn policies_read_in_any_case_and_others_are_refused() {
        assert_eq!(
            parse_address_full_policy("page"),
            Ok(AddressFullPolicy::Page)
        );
        assert_eq!(
            parse_address_full_policy("FAIL"),
            Ok(AddressFullPolicy::Fail)
        );
        assert_eq!(
            parse_address_full_policy("Drop"),
            Ok(AddressFullPolicy::Drop)
        );
        assert_eq!(
            parse_address_full_policy("block"),
            Ok(AddressFullPolicy::Block)
        );
        let e = parse_address_full_policy("SPILL").unwrap_err();
        assert!(e.contains("PAGE, BLOCK, FAIL or DROP"), "{e}");
    }

    #[test]
    fn a_bad_value_in_an_infra_config_is_an_error_naming_the_field() {
        let yaml = "apiVersion: admin.enmasse.io/v1beta1
kind: BrokeredInfraConfig
metadata:
  name: small
spec:
  broker:
    globalMaxSize: 64Zb
    addressFullPolicy: spill
";
        let checked = crate::check(&[crate::Source::new("infra.yaml", yaml)]);
        let errors: Vec<String> = checked
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(ToString::to_string)
            .collect();
        assert!(
            errors.iter().any(|e| e.contains("infra.yaml")
                && e.contains("spec.broker.globalMaxSize")
                && e.contains("64Zb")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("spec.broker.addressFullPolicy") && e.contains("spill")),
            "{errors:?}"
        );
    }

    #[test]
    fn good_values_reach_the_address_space_and_the_plan_gives_the_broker_credit() {
        let yaml = "apiVersion: admin.enmasse.io/v1beta1
kind: StandardInfraConfig
metadata:
  name: infra
spec:
  broker:
    globalMaxSize: 1048576
    addressFullPolicy: Fail
    treatRejectAsUnmodifiedDeliveryFailed: false
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressPlan
metadata:
  name: small-queue
spec:
  addressType: queue
  resources:
    router: 0.01
    broker: 0.25
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressSpacePlan
metadata:
  name: plan
spec:
  addressSpaceType: standard
  infraConfigRef: infra
  resourceLimits:
    router: 10.0
    broker: 10.0
    aggregate: 10.0
  addressPlans:
    - small-queue
---
apiVersion: enmasse.io/v1beta1
kind: AddressSpace
metadata:
  name: space
spec:
  type: standard
  plan: plan
---
apiVersion: enmasse.io/v1beta1
kind: Address
metadata:
  name: space.q
spec:
  address: q
  type: queue
  plan: small-queue
";
        let checked = crate::check(&[crate::Source::new("space.yaml", yaml)]);
        assert!(checked.is_valid(), "{:?}", checked.diagnostics);
        let space = checked.config.address_space("space").unwrap();
        assert_eq!(
            space.store_limits(),
            StoreLimits {
                global_max_size: Some(1 << 20),
                address_full_policy: Some(AddressFullPolicy::Fail),
                rejected_dead_letters: true,
            }
        );
        assert_eq!(space.address("q").unwrap().broker_credit(), Some(0.25));
    }
}
