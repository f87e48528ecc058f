//! Duplicate detection: the `spec.duplicateDetection` field of an AddressPlan or Address, its
//! rules, and the effective setting of an address.
//!
//! ```yaml
//! spec:
//!   duplicateDetection: {window: 10m, maximumIds: 20000}
//! ```
//!
//! Writing the field turns detection on (it is off by default); both fields are optional, and
//! the address's wins over its plan's field by field. The window is a duration with a unit
//! (`ms`, `s`, `m`, `h`, `d`), as Azure Service Bus writes its duplicate detection window; its
//! default is Azure's, 10 minutes. `maximumIds` defaults to Artemis's `idCacheSize`, 20,000,
//! and may not exceed [`DUPLICATE_IDS_MAX`]: every remembered id is memory (and a journal
//! record) a producer makes the broker hold.
//!
//! Detection applies to stored addresses a client sends to: `queue`, and `subscription` (each
//! subscription remembers the ids of the topic messages it stored). Elsewhere it is an error:
//! a `topic` stores nothing itself (its subscriptions do), `anycast` and `multicast` store
//! nothing, and a `deadletter` address takes only messages other addresses moved there.

use crate::diagnostic::Diagnostic;
use crate::load::{Located, Origin};
use crate::model::ResolvedAddress;
use crate::resources::{Address, AddressPlan, AddressType, DuplicateDetectionSpec};

/// The most ids one address may remember, whatever its configuration says.
pub const DUPLICATE_IDS_MAX: u32 = 1_000_000;
/// The ids an address remembers when `maximumIds` is not written (Artemis's `idCacheSize`).
pub const DUPLICATE_IDS_DEFAULT: u32 = 20_000;
/// The window when `window` is not written (Azure Service Bus's default), ms.
pub const DUPLICATE_WINDOW_DEFAULT_MS: u64 = 10 * 60 * 1000;
/// The longest window (Azure Service Bus's maximum, 7 days), ms.
pub const DUPLICATE_WINDOW_MAX_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// An address's effective duplicate detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateDetection {
    /// How long an accepted message's id is remembered, ms.
    pub window_ms: u64,
    /// The most ids remembered at once.
    pub ids_max: u32,
}

/// Parses a duration: a whole number and a unit, `ms`, `s`, `m`, `h` or `d` (`500ms`, `30s`,
/// `10m`); returns milliseconds.
pub fn parse_duration_ms(value: &str) -> Result<u64, String> {
    let bad = |why: &str| {
        format!(
            "{value:?} is not a duration: {why} (write a whole number and a unit, as in 500ms, 30s, 10m or 1h)"
        )
    };
    let text = value.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    if number.is_empty() {
        return Err(bad("it does not start with a whole number"));
    }
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60 * 1000,
        "h" => 60 * 60 * 1000,
        "d" => 24 * 60 * 60 * 1000,
        "" => return Err(bad("it has no unit")),
        other => return Err(bad(&format!("unknown unit {other:?}"))),
    };
    let n: u64 = number.parse().map_err(|_| bad("too large"))?;
    n.checked_mul(unit_ms).ok_or_else(|| bad("too large"))
}

/// What is wrong with a `duplicateDetection` field, as (field path, message) pairs.
fn problems(spec: &DuplicateDetectionSpec) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(window) = &spec.window {
        match parse_duration_ms(window) {
            Err(e) => out.push(("spec.duplicateDetection.window", e)),
            Ok(0) => out.push((
                "spec.duplicateDetection.window",
                format!("{window:?}: the window must be longer than 0"),
            )),
            Ok(ms) if ms > DUPLICATE_WINDOW_MAX_MS => out.push((
                "spec.duplicateDetection.window",
                format!(
                    "{window:?} is longer than the longest window, 7 days ({DUPLICATE_WINDOW_MAX_MS} ms)"
                ),
            )),
            Ok(_) => {}
        }
    }
    if let Some(n) = spec.maximum_ids
        && !(1..=i64::from(DUPLICATE_IDS_MAX)).contains(&n)
    {
        out.push((
            "spec.duplicateDetection.maximumIds",
            format!(
                "{n} is not between 1 and {DUPLICATE_IDS_MAX}, the most ids an address may remember"
            ),
        ));
    }
    out
}

/// Whether an address of `address_type` may detect duplicates.
fn applies_to(address_type: AddressType) -> bool {
    matches!(address_type, AddressType::Queue | AddressType::Subscription)
}

/// Checks a `duplicateDetection` field written on a resource for addresses of `address_type`;
/// returns whether it is valid (or absent).
fn check(
    origin: &Origin,
    spec: Option<&DuplicateDetectionSpec>,
    address_type: AddressType,
    d: &mut Vec<Diagnostic>,
) -> bool {
    let Some(spec) = spec else {
        return true;
    };
    let mut ok = true;
    if !applies_to(address_type) {
        d.push(origin.error(
            "spec.duplicateDetection",
            format!(
                "duplicate detection is for queue and subscription addresses, not {address_type}"
            ),
        ));
        ok = false;
    }
    for (path, message) in problems(spec) {
        d.push(origin.error(path, message));
        ok = false;
    }
    ok
}

/// Checks an AddressPlan's `duplicateDetection`.
pub(crate) fn check_plan(plan: &Located<AddressPlan>, d: &mut Vec<Diagnostic>) -> bool {
    let spec = &plan.resource.spec;
    check(
        &plan.origin,
        spec.duplicate_detection.as_ref(),
        spec.address_type,
        d,
    )
}

/// Checks an Address's `duplicateDetection`; returns whether the address may be served.
pub(crate) fn check_address(address: &Located<Address>, d: &mut Vec<Diagnostic>) -> bool {
    let spec = &address.resource.spec;
    check(
        &address.origin,
        spec.duplicate_detection.as_ref(),
        spec.address_type,
        d,
    )
}

impl ResolvedAddress {
    /// The effective duplicate detection: on when the address or its plan writes
    /// `duplicateDetection` (and the address type is one it applies to), each field the
    /// address's over the plan's, then the default. Values the rules refuse are never served
    /// (the address or plan is invalid), but read as the defaults here.
    pub fn duplicate_detection(&self) -> Option<DuplicateDetection> {
        let address = self.address.resource.spec.duplicate_detection.as_ref();
        let plan = self.plan.spec.duplicate_detection.as_ref();
        if (address.is_none() && plan.is_none()) || !applies_to(self.address_type()) {
            return None;
        }
        let window_ms = address
            .and_then(|s| s.window.as_deref())
            .or_else(|| plan.and_then(|s| s.window.as_deref()))
            .and_then(|w| parse_duration_ms(w).ok())
            .filter(|ms| (1..=DUPLICATE_WINDOW_MAX_MS).contains(ms))
            .unwrap_or(DUPLICATE_WINDOW_DEFAULT_MS);
        let ids_max = address
            .and_then(|s| s.maximum_ids)
            .or_else(|| plan.and_then(|s| s.maximum_ids))
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| (1..=DUPLICATE_IDS_MAX).contains(n))
            .unwrap_or(DUPLICATE_IDS_DEFAULT);
        Some(DuplicateDetection { window_ms, ids_max })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_whole_number_and_a_unit() {
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("30s"), Ok(30_000));
        assert_eq!(parse_duration_ms(" 10m "), Ok(600_000));
        assert_eq!(parse_duration_ms("2h"), Ok(7_200_000));
        assert_eq!(parse_duration_ms("1d"), Ok(86_400_000));
        for bad in [
            "600",
            "m",
            "1.5m",
            "-1s",
            "10 minutes",
            "99999999999999999999d",
        ] {
            assert!(parse_duration_ms(bad).is_err(), "{bad}");
        }
        assert!(parse_duration_ms("600").unwrap_err().contains("no unit"));
    }

    #[test]
    fn a_window_past_seven_days_or_of_zero_and_ids_past_the_cap_are_refused() {
        let spec = |window: &str, ids| DuplicateDetectionSpec {
            window: Some(window.to_owned()),
            maximum_ids: Some(ids),
        };
        assert!(problems(&spec("7d", 1_000_000)).is_empty());
        assert_eq!(problems(&spec("8d", 10)).len(), 1);
        assert_eq!(problems(&spec("0s", 10)).len(), 1);
        assert_eq!(problems(&spec("1m", 1_000_001)).len(), 1);
        assert_eq!(problems(&spec("1m", 0)).len(), 1);
        assert_eq!(problems(&spec("1m", -5)).len(), 1);
    }
}
