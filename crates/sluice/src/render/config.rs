//! The configuration a space's pod mounts: a ConfigMap with the space, its addresses, its
//! plans, infra config and authentication service, and a Secret with its MessagingUsers.
//! Each resource is written again from the document as it was read (without `status`), so
//! that `sluice serve --config` loads exactly what `sluice check` checked.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use sluice_config::Origin;

use super::Target;
use super::yaml::to_yaml;

/// The rendered configuration of one space.
pub(super) struct Config {
    /// `<space>-config`.
    pub(super) config_map: ConfigMap,
    /// `<space>-users`, when the space has users.
    pub(super) users: Option<Secret>,
    /// SHA-256 of both, hex: a pod annotation, so that a change rolls the pods.
    pub(super) digest: String,
}

/// The ConfigMap's name.
pub(super) fn config_map_name(target: &Target<'_>) -> String {
    format!("{}-config", target.name())
}

/// The users' Secret's name.
pub(super) fn users_secret_name(target: &Target<'_>) -> String {
    format!("{}-users", target.name())
}

pub(super) fn render(target: &Target<'_>) -> Config {
    let space = target.space;
    let mut data = BTreeMap::new();
    let mut put = |key: &str, origins: Vec<&Origin>| {
        if !origins.is_empty() {
            data.insert(key.to_owned(), documents(&origins));
        }
    };
    put("address-space.yaml", vec![&space.space.origin]);
    let mut addresses: Vec<&Origin> = space
        .addresses
        .iter()
        .map(|a| &a.address.origin)
        .chain(space.pending.iter().map(|p| &p.address.address.origin))
        .collect();
    addresses.sort_by(|a, b| (&a.file, a.document).cmp(&(&b.file, b.document)));
    put("addresses.yaml", addresses);
    // The space's plan lists address plans that `sluice check` requires to exist, whether
    // an address uses them or not: all of them go along. The last definition of a name is
    // the one that counts, as in `sluice check`.
    let mut plans = vec![&space.plan.origin];
    for name in &space.plan.resource.spec.address_plans {
        if let Some(plan) = target
            .manifests
            .address_plans
            .iter()
            .rev()
            .find(|p| p.resource.metadata.name == *name)
        {
            plans.push(&plan.origin);
        }
    }
    put("plans.yaml", plans);
    put(
        "infra-config.yaml",
        space.infra_config.iter().map(|i| &i.origin).collect(),
    );
    put(
        "authentication-service.yaml",
        space
            .authentication_service
            .iter()
            .map(|a| &a.origin)
            .collect(),
    );
    let users: Vec<&Origin> = space.users.iter().map(|u| &u.origin).collect();

    let mut hasher = Sha256::new();
    for (key, text) in &data {
        hasher.update(key.as_bytes());
        hasher.update([0]);
        hasher.update(text.as_bytes());
        hasher.update([0]);
    }
    let users = (!users.is_empty()).then(|| {
        let text = documents(&users);
        hasher.update(b"users.yaml\0");
        hasher.update(text.as_bytes());
        Secret {
            metadata: target.meta(users_secret_name(target)),
            type_: Some("Opaque".to_owned()),
            string_data: Some(BTreeMap::from([("users.yaml".to_owned(), text)])),
            ..Secret::default()
        }
    });
    let digest = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Config {
        config_map: ConfigMap {
            metadata: target.meta(config_map_name(target)),
            data: Some(data),
            ..ConfigMap::default()
        },
        users,
        digest,
    }
}

/// The documents of `origins` as one YAML stream.
fn documents(origins: &[&Origin]) -> String {
    let mut text = String::new();
    for origin in origins {
        let mut document = origin.written().clone();
        if let Value::Object(map) = &mut document {
            map.remove("status");
        }
        text.push_str("---\n");
        text.push_str(&to_yaml(&document));
    }
    text
}
