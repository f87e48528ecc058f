//! The resolved model: per address space, its plan, its addresses with their plans, its users
//! and its authentication service. This is what the broker serves from.

use std::collections::BTreeMap;

use crate::diagnostic::{Diagnostic, Severity};
use crate::load::Located;
use crate::resources::{
    Address, AddressPlan, AddressSpace, AddressSpacePlan, AddressSpaceType, AddressType,
    AuthenticationService, InfraConfig, MessageTtl, MessagingUser,
};

/// Delivery attempts before dead-lettering when an address has a dead-letter target and no
/// `maximumDeliveryAttempts` (EnMasse set Artemis `maxDeliveryAttempts=10` with a DLA).
pub const DEAD_LETTER_DELIVERY_ATTEMPTS_DEFAULT: u32 = 10;

/// The outcome of [`crate::check`]: every diagnostic and the valid address spaces.
#[derive(Clone, Debug)]
pub struct Checked {
    /// The resolved address spaces.
    pub config: Config,
    /// Every diagnostic, in the order found.
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    /// Whether no diagnostic is an error (warnings and notes are allowed).
    pub fn is_valid(&self) -> bool {
        !self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// How many diagnostics have `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == severity)
            .count()
    }
}

/// Every address space whose own definition is valid, by qualified name.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Address spaces by [`ResolvedAddressSpace::qualified_name`]: `<namespace>/<name>`, or
    /// `<name>` for a space written without a namespace.
    pub address_spaces: BTreeMap<String, ResolvedAddressSpace>,
}

impl Config {
    /// The address space `name`: `<namespace>/<name>`, or a bare `<name>` when exactly one
    /// space (in any namespace, or in none) has it. `None` when there is no such space, or a
    /// bare name is ambiguous (see [`Config::address_spaces_named`]).
    pub fn address_space<'a>(&'a self, name: &str) -> Option<&'a ResolvedAddressSpace> {
        if name.contains('/') {
            return self.address_spaces.get(name);
        }
        let mut named = self.address_spaces.values().filter(|s| s.name == name);
        match (named.next(), named.next()) {
            (Some(space), None) => Some(space),
            _ => None,
        }
    }

    /// Every address space whose `metadata.name` is `name`, in any namespace or in none.
    pub fn address_spaces_named<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a ResolvedAddressSpace> + 'a {
        self.address_spaces.values().filter(move |s| s.name == name)
    }

    /// Every address space with its namespace (`None` when written without one), ordered by
    /// qualified name.
    pub fn spaces(&self) -> impl Iterator<Item = (Option<&str>, &ResolvedAddressSpace)> {
        self.address_spaces
            .values()
            .map(|space| (space.namespace.as_deref(), space))
    }

    /// Whether any address space is written with a namespace.
    pub fn is_namespaced(&self) -> bool {
        self.spaces().any(|(namespace, _)| namespace.is_some())
    }
}

/// One address space with everything it refers to resolved.
#[derive(Clone, Debug)]
pub struct ResolvedAddressSpace {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`; `None` when written without one. Its addresses and users are
    /// those of the same namespace.
    pub namespace: Option<String>,
    /// `spec.type`.
    pub space_type: AddressSpaceType,
    /// The AddressSpace resource.
    pub space: Located<AddressSpace>,
    /// Its AddressSpacePlan.
    pub plan: Located<AddressSpacePlan>,
    /// The plan's infra config, when the plan names one.
    pub infra_config: Option<Located<InfraConfig>>,
    /// Its AuthenticationService, when the space names one.
    pub authentication_service: Option<Located<AuthenticationService>>,
    /// The valid addresses within quota, in the order they were read.
    pub addresses: Vec<ResolvedAddress>,
    /// Valid addresses not served because the quota is exceeded (EnMasse's `Pending`).
    pub pending: Vec<PendingAddress>,
    /// Its valid users.
    pub users: Vec<Located<MessagingUser>>,
}

impl ResolvedAddressSpace {
    /// `<namespace>/<name>`, or `<name>` without a namespace: the key in
    /// [`Config::address_spaces`], and what `--address-space` accepts.
    pub fn qualified_name(&self) -> String {
        match &self.namespace {
            Some(namespace) => format!("{namespace}/{}", self.name),
            None => self.name.clone(),
        }
    }

    /// How many served addresses have `address_type`.
    pub fn count(&self, address_type: AddressType) -> usize {
        self.addresses
            .iter()
            .filter(|a| a.address_type() == address_type)
            .count()
    }

    /// The served address whose `spec.address` is `address`.
    pub fn address(&self, address: &str) -> Option<&ResolvedAddress> {
        self.addresses
            .iter()
            .find(|a| a.address.resource.spec.address == address)
    }
}

/// An address with its plan.
#[derive(Clone, Debug)]
pub struct ResolvedAddress {
    /// The Address resource.
    pub address: Located<Address>,
    /// Its AddressPlan.
    pub plan: AddressPlan,
}

impl ResolvedAddress {
    /// `spec.type`.
    pub fn address_type(&self) -> AddressType {
        self.address.resource.spec.address_type
    }

    /// The effective `messageTtl`, as EnMasse's `updateMessageTtlStatus` combined them: the
    /// address can only narrow the plan's range (the lesser maximum, the greater minimum),
    /// values below 1 are ignored, and a pair whose maximum is not above its minimum is
    /// ignored altogether.
    pub fn message_ttl(&self) -> MessageTtl {
        let address = self.address.resource.spec.message_ttl.unwrap_or_default();
        let plan = self.plan.spec.message_ttl.unwrap_or_default();
        let positive = |v: Option<u64>| v.filter(|v| *v >= 1);
        let combine = |a: Option<u64>, b: Option<u64>, pick: fn(u64, u64) -> u64| match (a, b) {
            (Some(a), Some(b)) => Some(pick(a, b)),
            (a, b) => a.or(b),
        };
        let maximum = combine(positive(address.maximum), positive(plan.maximum), u64::min);
        let minimum = combine(positive(address.minimum), positive(plan.minimum), u64::max);
        match (minimum, maximum) {
            (Some(min), Some(max)) if max <= min => MessageTtl::default(),
            _ => MessageTtl { minimum, maximum },
        }
    }

    /// The effective redelivery delay: `messageRedelivery.redeliveryDelay` (ms),
    /// `redeliveryDelayMultiplier` and `maximumDeliveryDelay` (ms), each the address's value
    /// over the plan's. As EnMasse set Artemis: no delay by default, a multiplier of 1, and a
    /// maximum of 0 (or below) meaning none; a negative delay or a multiplier below 1 (or not
    /// finite) is taken as the default.
    pub fn redelivery_delay(&self) -> RedeliveryDelay {
        let address = self.address.resource.spec.message_redelivery;
        let plan = self.plan.spec.message_redelivery;
        let pick = |f: fn(&crate::resources::MessageRedelivery) -> Option<i64>| {
            address
                .as_ref()
                .and_then(f)
                .or_else(|| plan.as_ref().and_then(f))
        };
        let multiplier = address
            .and_then(|r| r.redelivery_delay_multiplier)
            .or_else(|| plan.and_then(|r| r.redelivery_delay_multiplier))
            .filter(|m| m.is_finite() && *m >= 1.0)
            .unwrap_or(1.0);
        RedeliveryDelay {
            delay_ms: pick(|r| r.redelivery_delay)
                .and_then(|d| u64::try_from(d).ok())
                .unwrap_or(0),
            multiplier,
            maximum_ms: pick(|r| r.maximum_delivery_delay)
                .and_then(|d| u64::try_from(d).ok())
                .filter(|d| *d > 0),
        }
    }

    /// The effective `messageRedelivery.maximumDeliveryAttempts`: the address's value wins over
    /// the plan's; `-1` (or any negative value) is infinite (`None`); unset is
    /// [`DEAD_LETTER_DELIVERY_ATTEMPTS_DEFAULT`] when a dead-letter target is set, else infinite.
    pub fn maximum_delivery_attempts(&self) -> Option<u32> {
        let spec = &self.address.resource.spec;
        let configured = spec
            .message_redelivery
            .and_then(|r| r.maximum_delivery_attempts)
            .or_else(|| {
                self.plan
                    .spec
                    .message_redelivery
                    .and_then(|r| r.maximum_delivery_attempts)
            });
        match configured {
            Some(n) => u32::try_from(n).ok(),
            None => spec
                .deadletter
                .is_some()
                .then_some(DEAD_LETTER_DELIVERY_ATTEMPTS_DEFAULT),
        }
    }
}

/// How long a message waits after a failed delivery attempt before it is offered again:
/// `delay_ms × multiplier^(attempts − 1)`, at most `maximum_ms`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RedeliveryDelay {
    /// The first delay, ms; 0 is none.
    pub delay_ms: u64,
    /// What each later delay is multiplied by (at least 1).
    pub multiplier: f64,
    /// The longest delay, ms.
    pub maximum_ms: Option<u64>,
}

/// A valid address that is not served, and why (`Quota exceeded`).
#[derive(Clone, Debug)]
pub struct PendingAddress {
    /// The address and its plan.
    pub address: ResolvedAddress,
    /// Why it is pending, as EnMasse put it in `status.messages`.
    pub reason: String,
}
