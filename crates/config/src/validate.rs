//! The validation rules of the EnMasse API, and resolving references into [`Config`].
//!
//! Rules (sources: `AddressNameValidator`, `AddressController`, the CRDs; see
//! anchors/enmasse.md §1.4, §2, §3): an Address's or MessagingUser's `metadata.name` is
//! `<addressspace>.<name>`; `spec.address` has no whitespace and does not start with `_!`; the
//! address type is one the space type serves; the plan exists, is for that address type and is
//! listed by the space's plan; a subscription names a topic of its space; dead-letter and expiry
//! targets are deadletter addresses; one `spec.address` per space; an AddressSpace's plan and
//! authentication service exist. Addresses past the plan's `resourceLimits` are pending with
//! `Quota exceeded`, a warning, as EnMasse reported them in status rather than refusing them.
//!
//! Namespaces: a gitops folder holds several teams' namespaces. `AddressSpace`, `Address` and
//! `MessagingUser` are namespaced, as in Kubernetes: an Address or MessagingUser belongs to
//! the AddressSpace of its name's prefix *in its own `metadata.namespace`*, so a team's
//! resources reach only its own address spaces. A resource written without a namespace
//! matches an AddressSpace written without one, and nothing else (Sluice does not guess the
//! namespace `kubectl apply` would pick). Two AddressSpaces of one name in different
//! namespaces are two spaces. Plans, infra configs and AuthenticationServices are shared by
//! every namespace (EnMasse kept them in its own infra namespace); their `metadata.namespace`
//! is not looked at.

use std::collections::{BTreeMap, HashMap};

use crate::diagnostic::{Diagnostic, Severity};
use crate::load::{Located, Manifests};
use crate::model::{Config, PendingAddress, ResolvedAddress, ResolvedAddressSpace};
use crate::resources::{
    Address, AddressPlan, AddressSpace, AddressSpacePlan, AddressSpaceType, AddressType,
    AuthenticationService, ForwarderDirection, InfraConfig, MessagingUser, ObjectMeta,
};

/// Resource types with metadata, so that one index function serves them all.
trait HasMeta {
    fn metadata(&self) -> &ObjectMeta;
}

macro_rules! has_meta {
    ($($t:ty),*) => {$(
        impl HasMeta for $t {
            fn metadata(&self) -> &ObjectMeta {
                &self.metadata
            }
        }
    )*};
}
has_meta!(
    Address,
    AddressPlan,
    AddressSpace,
    AddressSpacePlan,
    AuthenticationService,
    InfraConfig,
    MessagingUser
);

/// How a resource is told apart from others of its kind: its `metadata.namespace` (for the
/// namespaced kinds; `None` for shared ones and for a resource written without one) and
/// `metadata.name`.
type Key<'a> = (Option<&'a str>, &'a str);

/// `in namespace "team-a"`, or `without a namespace`, for messages.
fn describe_namespace(namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("in namespace {ns:?}"),
        None => "without a namespace".to_owned(),
    }
}

/// The namespace of a namespaced resource (`AddressSpace`, `Address`, `MessagingUser`).
fn namespace_of<T: HasMeta>(item: &Located<T>) -> Option<&str> {
    item.resource.metadata().namespace.as_deref()
}

/// Indexes resources by `metadata.name`, and for the namespaced kinds also by
/// `metadata.namespace`, keeping the read order. A second resource with the same key replaces
/// the first, as `kubectl apply` of both would; that is a warning.
fn index<'a, T: HasMeta>(
    kind: &str,
    items: &'a [Located<T>],
    namespaced: bool,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<&'a Located<T>> {
    let mut out: Vec<&'a Located<T>> = Vec::new();
    let mut position: HashMap<Key<'a>, usize> = HashMap::new();
    for item in items {
        let name = item.resource.metadata().name.as_str();
        if name.is_empty() {
            diagnostics.push(item.origin.error("metadata", "missing field `name`"));
            continue;
        }
        let namespace = if namespaced { namespace_of(item) } else { None };
        if let Some(ns) = namespace
            && !is_dns_label(ns)
        {
            diagnostics.push(item.origin.error(
                "metadata.namespace",
                format!("{ns:?} is not a valid namespace (lower-case letters, digits and '-')"),
            ));
            continue;
        }
        match position
            .get(&(namespace, name))
            .and_then(|&at| out.get_mut(at))
        {
            Some(earlier) => {
                let what = match namespace {
                    Some(ns) => format!("{kind} {name:?} in namespace {ns:?}"),
                    None => format!("{kind} {name:?}"),
                };
                diagnostics.push(item.origin.warning(
                    "metadata.name",
                    format!(
                        "{what} is defined again; this definition replaces the one in {}",
                        earlier.origin.describe()
                    ),
                ));
                *earlier = item;
            }
            None => {
                position.insert((namespace, name), out.len());
                out.push(item);
            }
        }
    }
    out
}

fn find<'a, T: HasMeta>(items: &[&'a Located<T>], name: &str) -> Option<&'a Located<T>> {
    items
        .iter()
        .copied()
        .find(|item| item.resource.metadata().name == name)
}

/// The AddressSpace `name` of `namespace` (absent matches absent only).
fn find_space<'a>(
    spaces: &[&'a Located<AddressSpace>],
    namespace: Option<&str>,
    name: &str,
) -> Option<&'a Located<AddressSpace>> {
    spaces
        .iter()
        .copied()
        .find(|space| space.resource.metadata.name == name && namespace_of(space) == namespace)
}

/// The error for an Address or MessagingUser whose address space is not in its namespace,
/// naming the namespaces where a space of that name does exist.
fn no_space_error(
    item: &Located<impl HasMeta>,
    // With its article: "an Address".
    kind: &str,
    spaces: &[&Located<AddressSpace>],
    space: &str,
) -> Diagnostic {
    let namespace = namespace_of(item);
    let elsewhere: Vec<String> = spaces
        .iter()
        .filter(|s| s.resource.metadata.name == space)
        .map(|s| describe_namespace(namespace_of(s)))
        .collect();
    let message = if elsewhere.is_empty() {
        format!("no AddressSpace named {space:?}")
    } else {
        format!(
            "no AddressSpace named {space:?} {}: it exists only {}, and {kind} belongs to the address space of its own namespace",
            describe_namespace(namespace),
            elsewhere.join(", ")
        )
    };
    item.origin.error("metadata.name", message)
}

/// A Kubernetes name segment (RFC 1123 label): lower-case alphanumerics and `-`, starting and
/// ending with an alphanumeric.
fn is_dns_label(name: &str) -> bool {
    let alphanumeric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty()
        && name.len() <= 63
        && name.starts_with(alphanumeric)
        && name.ends_with(alphanumeric)
        && name.chars().all(|c| alphanumeric(c) || c == '-')
}

/// The address space part of an Address's or MessagingUser's `metadata.name`, when the name is
/// `<addressspace>.<name>` with every part a valid label.
fn space_of<'a>(
    origin: &Located<impl HasMeta>,
    name: &'a str,
    d: &mut Vec<Diagnostic>,
) -> Option<&'a str> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() < 2 || !parts.iter().all(|part| is_dns_label(part)) {
        d.push(origin.origin.error(
            "metadata.name",
            format!("{name:?} must be \"<addressspace>.<name>\", each part lower-case letters, digits and '-'"),
        ));
        return None;
    }
    parts.first().copied()
}

/// A password user without a password.
const PASSWORD_MISSING: &str = "a password user without a password cannot log in";

/// What is wrong with a password user's `spec.authentication.password`, if anything. The
/// reason never quotes the value: it is a secret.
fn password_problem(user: &MessagingUser) -> Option<&'static str> {
    use base64::Engine as _;
    let auth = &user.spec.authentication;
    if auth.auth_type != crate::resources::UserAuthenticationType::Password {
        return None;
    }
    let Some(password) = auth.password.as_deref() else {
        return Some(PASSWORD_MISSING);
    };
    match base64::engine::general_purpose::STANDARD.decode(password.trim()) {
        Ok(bytes) if bytes.is_empty() => Some("the password is empty"),
        Ok(_) => None,
        Err(_) => Some("the password is not valid base64"),
    }
}

/// MessagingUser `spec.username`: `^[a-z0-9]+([a-z0-9_@.:\-]*[a-z0-9]+|[a-z0-9]*)$`.
fn is_valid_username(username: &str) -> bool {
    let end = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    username.starts_with(end)
        && username.ends_with(end)
        && username
            .chars()
            .all(|c| end(c) || matches!(c, '_' | '@' | '.' | ':' | '-'))
}

/// Validates `manifests` and resolves every address space, appending diagnostics.
pub fn resolve(manifests: &Manifests, diagnostics: &mut Vec<Diagnostic>) -> Config {
    let d = diagnostics;
    // AddressSpaces, Addresses and MessagingUsers belong to a namespace (a team's); plans,
    // infra configs and authentication services are shared by all, as in EnMasse, whatever
    // namespace they are written with.
    let spaces = index("AddressSpace", &manifests.address_spaces, true, d);
    let addresses = index("Address", &manifests.addresses, true, d);
    let users = index("MessagingUser", &manifests.messaging_users, true, d);
    let space_plans = index("AddressSpacePlan", &manifests.address_space_plans, false, d);
    let address_plans = index("AddressPlan", &manifests.address_plans, false, d);
    let auth_services = index(
        "AuthenticationService",
        &manifests.authentication_services,
        false,
        d,
    );
    let standard_infra = index(
        "StandardInfraConfig",
        &manifests.standard_infra_configs,
        false,
        d,
    );
    let brokered_infra = index(
        "BrokeredInfraConfig",
        &manifests.brokered_infra_configs,
        false,
        d,
    );

    for infra in standard_infra.iter().chain(&brokered_infra) {
        crate::limits::check(infra, d);
    }
    for plan in &address_plans {
        crate::duplicates::check_plan(plan, d);
    }
    for plan in &space_plans {
        check_space_plan(plan, &address_plans, &standard_infra, &brokered_infra, d);
    }

    // Group addresses and users by the space their name starts with, in their own namespace.
    let mut addresses_by_space: BTreeMap<Key<'_>, Vec<&Located<Address>>> = BTreeMap::new();
    for address in &addresses {
        if let Some(space) = space_of(address, &address.resource.metadata.name, d) {
            let namespace = namespace_of(address);
            if find_space(&spaces, namespace, space).is_some() {
                addresses_by_space
                    .entry((namespace, space))
                    .or_default()
                    .push(address);
            } else {
                d.push(no_space_error(address, "an Address", &spaces, space));
            }
        }
    }
    let mut users_by_space: BTreeMap<Key<'_>, Vec<Located<MessagingUser>>> = BTreeMap::new();
    for user in &users {
        let space = space_of(user, &user.resource.metadata.name, d);
        let mut valid = space.is_some();
        if let Some(space) = space
            && find_space(&spaces, namespace_of(user), space).is_none()
        {
            d.push(no_space_error(user, "a MessagingUser", &spaces, space));
            valid = false;
        }
        let username = &user.resource.spec.username;
        if !is_valid_username(username) {
            d.push(user.origin.error(
                "spec.username",
                format!("{username:?} is not a valid user name (lower-case letters and digits, inner '_', '@', '.', ':' and '-')"),
            ));
            valid = false;
        }
        match password_problem(&user.resource) {
            // A user read back from EnMasse's API carries no password: it cannot log in, but
            // it is not wrong.
            Some(why @ PASSWORD_MISSING) => {
                d.push(user.origin.warning("spec.authentication.password", why));
            }
            Some(why) => {
                d.push(user.origin.error("spec.authentication.password", why));
                valid = false;
            }
            None => {}
        }
        if let (true, Some(space)) = (valid, space) {
            users_by_space
                .entry((namespace_of(user), space))
                .or_default()
                .push((*user).clone());
        }
    }

    let mut config = Config::default();
    for space in &spaces {
        let key = (namespace_of(space), space.resource.metadata.name.as_str());
        let space_addresses = addresses_by_space.remove(&key).unwrap_or_default();
        let space_users = users_by_space.remove(&key).unwrap_or_default();
        let context = Context {
            space_plans: &space_plans,
            address_plans: &address_plans,
            auth_services: &auth_services,
            standard_infra: &standard_infra,
            brokered_infra: &brokered_infra,
        };
        if let Some(resolved) = context.resolve_space(space, &space_addresses, space_users, d) {
            config
                .address_spaces
                .insert(resolved.qualified_name(), resolved);
        }
    }
    config
}

fn check_space_plan(
    plan: &Located<AddressSpacePlan>,
    address_plans: &[&Located<AddressPlan>],
    standard_infra: &[&Located<InfraConfig>],
    brokered_infra: &[&Located<InfraConfig>],
    d: &mut Vec<Diagnostic>,
) {
    let spec = &plan.resource.spec;
    for (i, name) in spec.address_plans.iter().enumerate() {
        if find(address_plans, name).is_none() {
            d.push(plan.origin.error(
                format!("spec.addressPlans[{i}]"),
                format!("no AddressPlan named {name:?}"),
            ));
        }
    }
    if let Some(infra) = &spec.infra_config_ref {
        let kind = spec.address_space_type.infra_config_kind();
        let infra_configs = match spec.address_space_type {
            crate::resources::AddressSpaceType::Standard => standard_infra,
            crate::resources::AddressSpaceType::Brokered => brokered_infra,
        };
        if find(infra_configs, infra).is_none() {
            d.push(
                plan.origin
                    .error("spec.infraConfigRef", format!("no {kind} named {infra:?}")),
            );
        }
    }
}

struct Context<'a> {
    space_plans: &'a [&'a Located<AddressSpacePlan>],
    address_plans: &'a [&'a Located<AddressPlan>],
    auth_services: &'a [&'a Located<AuthenticationService>],
    standard_infra: &'a [&'a Located<InfraConfig>],
    brokered_infra: &'a [&'a Located<InfraConfig>],
}

impl Context<'_> {
    fn resolve_space(
        &self,
        space: &Located<AddressSpace>,
        addresses: &[&Located<Address>],
        users: Vec<Located<MessagingUser>>,
        d: &mut Vec<Diagnostic>,
    ) -> Option<ResolvedAddressSpace> {
        let name = &space.resource.metadata.name;
        let spec = &space.resource.spec;
        if !is_dns_label(name) {
            d.push(space.origin.error(
                "metadata.name",
                format!("{name:?} is not a valid address space name (lower-case letters, digits and '-')"),
            ));
        }
        let plan = match find(self.space_plans, &spec.plan) {
            None => {
                d.push(space.origin.error(
                    "spec.plan",
                    format!("no AddressSpacePlan named {:?}", spec.plan),
                ));
                None
            }
            Some(plan) if plan.resource.spec.address_space_type != spec.space_type => {
                d.push(space.origin.error(
                    "spec.plan",
                    format!(
                        "AddressSpacePlan {:?} is for {} address spaces, not {}",
                        spec.plan, plan.resource.spec.address_space_type, spec.space_type
                    ),
                ));
                None
            }
            Some(plan) => Some(plan),
        };
        let authentication_service = match &spec.authentication_service {
            None => None,
            Some(reference) => {
                let found = find(self.auth_services, &reference.name);
                if found.is_none() {
                    d.push(space.origin.error(
                        "spec.authenticationService.name",
                        format!("no AuthenticationService named {:?}", reference.name),
                    ));
                }
                found
            }
        };
        let valid = self.check_addresses(space, plan, addresses, d);
        let plan = plan?;
        let (addresses, pending) = apply_quota(plan, valid, d);
        let infra_config = plan
            .resource
            .spec
            .infra_config_ref
            .as_ref()
            .and_then(|infra| {
                let configs = match spec.space_type {
                    crate::resources::AddressSpaceType::Standard => self.standard_infra,
                    crate::resources::AddressSpaceType::Brokered => self.brokered_infra,
                };
                find(configs, infra).cloned()
            });
        // Addresses with errors are left out; the space is resolved when its plan is valid,
        // so that one bad address does not take the whole space down.
        Some(ResolvedAddressSpace {
            name: name.clone(),
            namespace: space.resource.metadata.namespace.clone(),
            space_type: spec.space_type,
            space: space.clone(),
            plan: plan.clone(),
            infra_config,
            authentication_service: authentication_service.cloned(),
            addresses,
            pending,
            users,
        })
    }

    /// Checks each address of a space; returns the valid ones with their plans.
    fn check_addresses(
        &self,
        space: &Located<AddressSpace>,
        plan: Option<&Located<AddressSpacePlan>>,
        addresses: &[&Located<Address>],
        d: &mut Vec<Diagnostic>,
    ) -> Vec<ResolvedAddress> {
        let space_name = &space.resource.metadata.name;
        let space_type = space.resource.spec.space_type;
        // spec.address → the first resource that claimed it (EnMasse: the first one wins).
        let mut claimed: HashMap<&str, &Located<Address>> = HashMap::new();
        let mut candidates = Vec::new();
        for address in addresses {
            let origin = &address.origin;
            let spec = &address.resource.spec;
            let mut ok = true;
            if spec.address.is_empty() || spec.address.chars().any(char::is_whitespace) {
                d.push(origin.error(
                    "spec.address",
                    format!(
                        "address {:?} must be non-empty and contain no whitespace",
                        spec.address
                    ),
                ));
                ok = false;
            } else if spec.address.starts_with("_!") {
                d.push(origin.error(
                    "spec.address",
                    format!("address {:?} must not start with \"_!\"", spec.address),
                ));
                ok = false;
            } else if spec.address.starts_with(crate::TEMPORARY_ADDRESS_PREFIX) {
                d.push(origin.error(
                    "spec.address",
                    format!(
                        "address {:?} must not start with {:?}: Sluice names dynamic receivers' temporary queues so",
                        spec.address,
                        crate::TEMPORARY_ADDRESS_PREFIX
                    ),
                ));
                ok = false;
            }
            let allowed = space_type.allowed_address_types();
            if !allowed.contains(&spec.address_type) {
                let allowed: Vec<String> = allowed.iter().map(ToString::to_string).collect();
                d.push(origin.error(
                    "spec.type",
                    format!(
                        "address type {} is not allowed in a {space_type} address space (allowed: {})",
                        spec.address_type,
                        allowed.join(", ")
                    ),
                ));
                ok = false;
            }
            let address_plan = find(self.address_plans, &spec.plan);
            match address_plan {
                None => {
                    d.push(
                        origin.error("spec.plan", format!("no AddressPlan named {:?}", spec.plan)),
                    );
                    ok = false;
                }
                Some(p) if p.resource.spec.address_type != spec.address_type => {
                    d.push(origin.error(
                        "spec.plan",
                        format!(
                            "AddressPlan {:?} is for addresses of type {}, not {}",
                            spec.plan, p.resource.spec.address_type, spec.address_type
                        ),
                    ));
                    ok = false;
                }
                Some(_) => {
                    if let Some(space_plan) = plan
                        && !space_plan.resource.spec.address_plans.contains(&spec.plan)
                    {
                        d.push(origin.error(
                            "spec.plan",
                            format!(
                                "AddressPlan {:?} is not allowed by AddressSpacePlan {:?} of address space {space_name:?}",
                                spec.plan, space_plan.resource.metadata.name
                            ),
                        ));
                        ok = false;
                    }
                }
            }
            if let Some(first) = claimed.get(spec.address.as_str()) {
                d.push(origin.error(
                    "spec.address",
                    format!(
                        "address {:?} already exists with resource name {:?} ({})",
                        spec.address,
                        first.resource.metadata.name,
                        first.origin.describe()
                    ),
                ));
                continue;
            }
            claimed.insert(spec.address.as_str(), address);
            candidates.push((address, address_plan, ok));
        }

        let type_of = |name: &str| claimed.get(name).map(|a| a.resource.spec.address_type);
        let mut valid = Vec::new();
        for (address, address_plan, mut ok) in candidates {
            let origin = &address.origin;
            let spec = &address.resource.spec;
            if spec.address_type == AddressType::Subscription {
                match &spec.topic {
                    None => {
                        d.push(
                            origin.error(
                                "spec",
                                "a subscription must name its topic in `spec.topic`",
                            ),
                        );
                        ok = false;
                    }
                    Some(topic) => match type_of(topic) {
                        Some(AddressType::Topic) => {}
                        Some(other) => {
                            d.push(origin.error(
                                "spec.topic",
                                format!("address {topic:?} is of type {other}, not topic"),
                            ));
                            ok = false;
                        }
                        None => {
                            d.push(origin.error(
                                "spec.topic",
                                format!(
                                    "no topic address {topic:?} in address space {space_name:?}"
                                ),
                            ));
                            ok = false;
                        }
                    },
                }
            }
            for (field, target) in [("deadletter", &spec.deadletter), ("expiry", &spec.expiry)] {
                let Some(target) = target else { continue };
                let path = format!("spec.{field}");
                if !matches!(
                    spec.address_type,
                    AddressType::Queue | AddressType::Topic | AddressType::Subscription
                ) {
                    d.push(origin.error(
                        path.as_str(),
                        format!(
                            "an address of type {} cannot have a {field} address",
                            spec.address_type
                        ),
                    ));
                    ok = false;
                    continue;
                }
                match type_of(target) {
                    Some(AddressType::Deadletter) => {}
                    Some(other) => {
                        d.push(origin.error(
                            path.as_str(),
                            format!("address {target:?} is of type {other}, not deadletter"),
                        ));
                        ok = false;
                    }
                    None => {
                        d.push(origin.error(
                            path.as_str(),
                            format!(
                                "no deadletter address {target:?} in address space {space_name:?}"
                            ),
                        ));
                        ok = false;
                    }
                }
            }
            ok &= check_forwarders(space, address, d);
            ok &= crate::duplicates::check_address(address, d);
            if let (true, Some(address_plan)) = (ok, address_plan) {
                valid.push(ResolvedAddress {
                    address: (*address).clone(),
                    plan: address_plan.resource.clone(),
                });
            }
        }
        valid
    }
}

/// EnMasse's forwarder rules (`AddressController` and the agent): queue and subscription
/// addresses of a standard space only, a connector on the space that prefixes the remote
/// address, and no `in` forwarder on a subscription. Valid forwarders are accepted with a
/// warning, since this version does not federate. Returns whether the address may be served.
fn check_forwarders(
    space: &Located<AddressSpace>,
    address: &Located<Address>,
    d: &mut Vec<Diagnostic>,
) -> bool {
    let spec = &address.resource.spec;
    if spec.forwarders.is_empty() {
        return true;
    }
    let origin = &address.origin;
    let space_name = &space.resource.metadata.name;
    let connectors = &space.resource.spec.connectors;
    let mut ok = true;
    if space.resource.spec.space_type != AddressSpaceType::Standard
        || !matches!(
            spec.address_type,
            AddressType::Queue | AddressType::Subscription
        )
    {
        d.push(origin.error(
            "spec.forwarders",
            format!(
                "forwarders are only for queue and subscription addresses of a standard address space (the address is of type {}, in a {} address space)",
                spec.address_type, space.resource.spec.space_type
            ),
        ));
        return false;
    }
    if connectors.is_empty() {
        d.push(origin.error(
            "spec.forwarders",
            format!(
                "Unable to create forwarders: There are no connectors configured for address space {space_name:?}"
            ),
        ));
        return false;
    }
    for (i, forwarder) in spec.forwarders.iter().enumerate() {
        let prefixed = forwarder
            .remote_address
            .split_once('/')
            .is_some_and(|(c, rest)| !rest.is_empty() && connectors.iter().any(|k| k.name == c));
        if !prefixed {
            let names: Vec<&str> = connectors.iter().map(|c| c.name.as_str()).collect();
            d.push(origin.error(
                format!("spec.forwarders[{i}].remoteAddress"),
                format!(
                    "Unable to create forwarder {:?}: remoteAddress {:?} is not prefixed with any connector of address space {space_name:?} ({})",
                    forwarder.name,
                    forwarder.remote_address,
                    names.join(", ")
                ),
            ));
            ok = false;
        }
        if forwarder.direction == ForwarderDirection::In
            && spec.address_type == AddressType::Subscription
        {
            d.push(origin.error(
                format!("spec.forwarders[{i}].direction"),
                format!(
                    "Unable to create forwarder {:?}: direction 'in' is not allowed on 'subscription' address type",
                    forwarder.name
                ),
            ));
            ok = false;
        }
    }
    if ok {
        d.push(origin.warning(
            "spec.forwarders",
            "forwarders are accepted but not run: this version of Sluice does not connect to remote peers",
        ));
    }
    ok
}

/// Sums the addresses' plan resources in read order; an address that would take the sum past
/// any of the plan's `resourceLimits` (router, broker, or router + broker against
/// `aggregate`) is pending with `Quota exceeded`, as EnMasse's standard-controller did.
fn apply_quota(
    plan: &Located<AddressSpacePlan>,
    addresses: Vec<ResolvedAddress>,
    d: &mut Vec<Diagnostic>,
) -> (Vec<ResolvedAddress>, Vec<PendingAddress>) {
    // Plan credits are decimals such as 0.001; allow for binary rounding of their sum.
    const EPSILON: f64 = 1e-9;
    let limits = plan.resource.spec.resource_limits;
    let (mut router, mut broker) = (0.0_f64, 0.0_f64);
    let mut served = Vec::new();
    let mut pending = Vec::new();
    for address in addresses {
        let needs = address.plan.spec.resources;
        let next_router = router + needs.router.unwrap_or(0.0);
        let next_broker = broker + needs.broker.unwrap_or(0.0);
        let over = [
            ("router", limits.router, next_router),
            ("broker", limits.broker, next_broker),
            ("aggregate", limits.aggregate, next_router + next_broker),
        ]
        .into_iter()
        .find(|(_, limit, total)| limit.is_some_and(|limit| *total > limit + EPSILON));
        match over {
            Some((resource, limit, total)) => {
                let reason = "Quota exceeded".to_owned();
                d.push(address.address.origin.diagnostic(
                    Severity::Warning,
                    "spec.plan",
                    format!(
                        "{reason}: address {:?} is pending; AddressSpacePlan {:?} allows {resource} {}, the addresses would need {}",
                        address.address.resource.spec.address,
                        plan.resource.metadata.name,
                        limit.unwrap_or(0.0),
                        round(total)
                    ),
                ));
                pending.push(PendingAddress { address, reason });
            }
            None => {
                router = next_router;
                broker = next_broker;
                served.push(address);
            }
        }
    }
    (served, pending)
}

/// Rounds a credit sum for display (sums of 0.1 are not exact in binary).
fn round(value: f64) -> f64 {
    (value * 1e6).round() / 1e6
}
