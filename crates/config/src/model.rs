//! The resolved model: per address space, its plan, its addresses with their plans, its users
//! and its authentication service. This is what the broker serves from.

use std::collections::BTreeMap;

use crate::diagnostic::{Diagnostic, Severity};
use crate::load::Located;
use crate::resources::{
    Address, AddressPlan, AddressSpace, AddressSpacePlan, AddressSpaceType, AddressType,
    AuthenticationService, InfraConfig, MessagingUser,
};

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

/// Every address space whose own definition is valid, by name.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Address spaces by `metadata.name`.
    pub address_spaces: BTreeMap<String, ResolvedAddressSpace>,
}

impl Config {
    /// The address space called `name`.
    pub fn address_space(&self, name: &str) -> Option<&ResolvedAddressSpace> {
        self.address_spaces.get(name)
    }
}

/// One address space with everything it refers to resolved.
#[derive(Clone, Debug)]
pub struct ResolvedAddressSpace {
    /// `metadata.name`.
    pub name: String,
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
}

/// A valid address that is not served, and why (`Quota exceeded`).
#[derive(Clone, Debug)]
pub struct PendingAddress {
    /// The address and its plan.
    pub address: ResolvedAddress,
    /// Why it is pending, as EnMasse put it in `status.messages`.
    pub reason: String,
}
