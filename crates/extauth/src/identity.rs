//! Reading the server's `open`: who the user is and what it may do.
//!
//! The API (EnMasse `con-external-authentication-server-api.adoc`) puts it in connection
//! properties: `authenticated-identity`, a map `{sub, preferred_username}`; optionally `groups`,
//! a list of strings; and, when the server offers capability `ADDRESS-AUTHZ`, `address-authz`,
//! a map from address pattern to a list of operations. Java servers (proton-j) send string
//! arrays where a list is meant and may use strings or symbols for keys, so both are read.

use std::collections::BTreeMap;

use sluice_codec::Value;
use sluice_codec::transport::Open;

use crate::error::ExtAuthError;
use crate::{ADDRESS_AUTHZ, AUTHZ_ENTRIES_MAX, AUTHZ_OPERATIONS_MAX, GROUPS_MAX, PROPERTIES_MAX};

/// Who the external server says the user is, and what it may do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExternalIdentity {
    /// `authenticated-identity.sub`: the user's stable id.
    pub sub: Option<String>,
    /// `authenticated-identity.preferred_username`: the user's name.
    pub preferred_username: Option<String>,
    /// `groups`, in the server's order (empty when absent).
    pub groups: Vec<String>,
    /// `address-authz` when the server offered ADDRESS-AUTHZ: pattern -> operations
    /// ("send", "recv"; others kept as strings). A pattern sent twice has its operations
    /// merged. `None` when not offered: the caller then grants nothing (fail closed). When the
    /// capability is offered without the property, this is an empty map, which also grants
    /// nothing.
    pub address_authz: Option<BTreeMap<String, Vec<String>>>,
}

impl ExternalIdentity {
    /// Reads the identity from the server's `open`.
    pub(crate) fn from_open(open: &Open) -> Result<Self, ExtAuthError> {
        let properties = open.properties.as_deref().unwrap_or_default();
        if properties.len() > PROPERTIES_MAX {
            return Err(ExtAuthError::TooLarge(format!(
                "{} connection properties, at most {PROPERTIES_MAX}",
                properties.len()
            )));
        }
        let property = |name: &str| {
            properties
                .iter()
                .find(|(k, _)| k.as_str() == name)
                .map(|(_, v)| v)
        };
        let mut identity = ExternalIdentity::default();
        if let Some(value) = property("authenticated-identity") {
            read_identity(value, &mut identity)?;
        }
        if let Some(value) = property("groups") {
            identity.groups = strings(value, "groups", GROUPS_MAX)?;
        }
        let offered = open
            .offered_capabilities
            .iter()
            .any(|c| c.as_str() == ADDRESS_AUTHZ);
        if offered {
            identity.address_authz = Some(match property("address-authz") {
                Some(value) => address_authz(value)?,
                None => BTreeMap::new(),
            });
        }
        Ok(identity)
    }
}

fn read_identity(value: &Value, identity: &mut ExternalIdentity) -> Result<(), ExtAuthError> {
    let Value::Map(pairs) = value else {
        return Err(wrong_type("authenticated-identity", "a map", value));
    };
    for (key, value) in pairs {
        let (field, slot) = match text(key) {
            Some("sub") => ("authenticated-identity.sub", &mut identity.sub),
            Some("preferred_username") => (
                "authenticated-identity.preferred_username",
                &mut identity.preferred_username,
            ),
            _ => continue,
        };
        if !matches!(value, Value::Null) {
            let s = text(value).ok_or_else(|| wrong_type(field, "a string", value))?;
            *slot = Some(s.to_string());
        }
    }
    Ok(())
}

fn address_authz(value: &Value) -> Result<BTreeMap<String, Vec<String>>, ExtAuthError> {
    let Value::Map(pairs) = value else {
        return Err(wrong_type("address-authz", "a map", value));
    };
    if pairs.len() > AUTHZ_ENTRIES_MAX {
        return Err(ExtAuthError::TooLarge(format!(
            "address-authz has {} entries, at most {AUTHZ_ENTRIES_MAX}",
            pairs.len()
        )));
    }
    let mut authz: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (pattern, operations) in pairs {
        let pattern =
            text(pattern).ok_or_else(|| wrong_type("address-authz key", "a string", pattern))?;
        let field = "address-authz operations";
        let operations = strings(operations, field, AUTHZ_OPERATIONS_MAX)?;
        let entry = authz.entry(pattern.to_string()).or_default();
        for op in operations {
            if !entry.contains(&op) {
                entry.push(op);
            }
        }
        if entry.len() > AUTHZ_OPERATIONS_MAX {
            return Err(too_many(field, entry.len(), AUTHZ_OPERATIONS_MAX));
        }
    }
    Ok(authz)
}

/// A list or array of strings (or symbols), at most `max` of them.
fn strings(value: &Value, field: &str, max: usize) -> Result<Vec<String>, ExtAuthError> {
    let items = match value {
        Value::List(items) => items.as_slice(),
        Value::Array(array) => array.items(),
        // A single string where a list is meant: read as a list of one.
        Value::String(_) | Value::Symbol(_) => std::slice::from_ref(value),
        Value::Null => &[],
        other => return Err(wrong_type(field, "a list of strings", other)),
    };
    if items.len() > max {
        return Err(too_many(field, items.len(), max));
    }
    items
        .iter()
        .map(|item| {
            text(item)
                .map(str::to_string)
                .ok_or_else(|| wrong_type(field, "a list of strings", item))
        })
        .collect()
}

fn text(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s.as_str()),
        Value::Symbol(s) => Some(s.as_str()),
        _ => None,
    }
}

fn wrong_type(field: &str, expected: &str, got: &Value) -> ExtAuthError {
    let got = match got.element_type() {
        Some(t) => format!("{t:?}"),
        None => "a described value".to_string(),
    };
    ExtAuthError::Protocol(format!("{field} must be {expected}, not {got}"))
}

fn too_many(field: &str, count: usize, max: usize) -> ExtAuthError {
    ExtAuthError::TooLarge(format!("{field}: {count} items, at most {max}"))
}

#[cfg(test)]
mod tests {
    use sluice_codec::types::{Array, ElementType, Symbol};

    use super::*;

    fn open(properties: Fields, authz_offered: bool) -> Open {
        Open {
            properties: Some(properties),
            offered_capabilities: if authz_offered {
                vec![Symbol::from_static(ADDRESS_AUTHZ)]
            } else {
                Vec::new()
            },
            ..Open::default()
        }
    }

    type Fields = sluice_codec::composite::Fields;

    fn sym(s: &'static str) -> Symbol {
        Symbol::from_static(s)
    }

    fn strs(items: &[&str]) -> Value {
        Value::List(items.iter().map(|s| Value::from(*s)).collect())
    }

    #[test]
    fn reads_the_identity_groups_and_grants() {
        let ops = Array::new(ElementType::Symbol, vec![Value::Symbol(sym("send"))]).unwrap();
        let props = vec![
            (
                sym("authenticated-identity"),
                Value::Map(vec![
                    (Value::Symbol(sym("sub")), Value::from("id-1")),
                    (Value::from("preferred_username"), Value::from("alice")),
                    (Value::from("email"), Value::Uint(7)),
                ]),
            ),
            (sym("groups"), strs(&["a", "b"])),
            (
                sym("address-authz"),
                Value::Map(vec![
                    (Value::from("q/#"), Value::Array(ops)),
                    (Value::from("q/#"), strs(&["recv", "send"])),
                    (Value::Symbol(sym("t")), Value::from("manage")),
                ]),
            ),
        ];
        let id = ExternalIdentity::from_open(&open(props, true)).unwrap();
        assert_eq!(id.sub.as_deref(), Some("id-1"));
        assert_eq!(id.preferred_username.as_deref(), Some("alice"));
        assert_eq!(id.groups, ["a", "b"]);
        let authz = id.address_authz.unwrap();
        assert_eq!(authz["q/#"], ["send", "recv"]);
        assert_eq!(authz["t"], ["manage"]);
    }

    #[test]
    fn grants_are_none_unless_the_capability_is_offered() {
        let grants = vec![(
            sym("address-authz"),
            Value::Map(vec![(Value::from("q"), strs(&["send"]))]),
        )];
        let id = ExternalIdentity::from_open(&open(grants, false)).unwrap();
        assert_eq!(id.address_authz, None);
        // Offered without the property: an empty map, which grants nothing either.
        let id = ExternalIdentity::from_open(&open(Vec::new(), true)).unwrap();
        assert_eq!(id.address_authz, Some(BTreeMap::new()));
        // No properties at all: nobody in particular.
        let id = ExternalIdentity::from_open(&Open::default()).unwrap();
        assert_eq!(id, ExternalIdentity::default());
    }

    #[test]
    fn wrong_types_name_the_field() {
        let cases = [
            (
                sym("authenticated-identity"),
                Value::from("alice"),
                "authenticated-identity",
            ),
            (
                sym("authenticated-identity"),
                Value::Map(vec![(Value::from("sub"), Value::Uint(1))]),
                "authenticated-identity.sub",
            ),
            (sym("groups"), Value::Map(Vec::new()), "groups"),
            (sym("groups"), Value::List(vec![Value::Uint(1)]), "groups"),
            (sym("address-authz"), strs(&["q"]), "address-authz"),
            (
                sym("address-authz"),
                Value::Map(vec![(Value::Uint(1), strs(&["send"]))]),
                "address-authz key",
            ),
        ];
        for (key, value, field) in cases {
            let err = ExternalIdentity::from_open(&open(vec![(key, value)], true)).unwrap_err();
            assert!(
                matches!(&err, ExtAuthError::Protocol(m) if m.starts_with(field)),
                "{field}: {err}"
            );
        }
    }

    fn too_large(properties: Fields) -> bool {
        matches!(
            ExternalIdentity::from_open(&open(properties, true)),
            Err(ExtAuthError::TooLarge(_))
        )
    }

    #[test]
    fn counts_over_the_limits_are_refused() {
        let many = |n: usize| Value::List((0..n).map(|_| Value::from("x")).collect());
        let groups = vec![(sym("groups"), many(GROUPS_MAX + 1))];
        assert!(too_large(groups));
        let groups = vec![(sym("groups"), many(GROUPS_MAX))];
        assert!(ExternalIdentity::from_open(&open(groups, true)).is_ok());

        let entries = (0..=AUTHZ_ENTRIES_MAX)
            .map(|i| (Value::from(format!("a{i}").as_str()), strs(&["send"])))
            .collect();
        let authz = vec![(sym("address-authz"), Value::Map(entries))];
        assert!(too_large(authz));

        // Repeating a pattern cannot grow its operations past the limit.
        let entries = (0..=AUTHZ_OPERATIONS_MAX)
            .map(|i| {
                let op = format!("op{i}");
                (
                    Value::from("q"),
                    Value::List(vec![Value::from(op.as_str())]),
                )
            })
            .collect();
        let authz = vec![(sym("address-authz"), Value::Map(entries))];
        assert!(too_large(authz));

        let props = (0..=PROPERTIES_MAX)
            .map(|_| (sym("x"), Value::Null))
            .collect();
        assert!(too_large(props));
    }
}
