//! The codec's definitions checked against the AMQP 1.0 specification's own XML (Debian package
//! `amqp-specs`, installed by the README's test command): every composite type is defined, with
//! the spec's descriptor, its fields in order, and the same mandatory fields; the descriptor
//! table and the error conditions list what the spec lists.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::collections::BTreeMap;

use sluice_codec::composite::{Composite, FieldInfo};
use sluice_codec::descriptors::DESCRIPTORS;
use sluice_codec::messaging::*;
use sluice_codec::security::*;
use sluice_codec::transactions::*;
use sluice_codec::transport::*;

const SPEC_DIR: &str = "/usr/share/amqp/specs/1-0";
const SPEC_FILES: &[&str] = &[
    "types.bare.xml",
    "transport.bare.xml",
    "messaging.bare.xml",
    "transactions.bare.xml",
    "security.bare.xml",
];

fn spec() -> String {
    SPEC_FILES
        .iter()
        .map(|f| {
            std::fs::read_to_string(format!("{SPEC_DIR}/{f}")).unwrap_or_else(|e| {
                panic!("{SPEC_DIR}/{f}: {e}; install Debian's amqp-specs (the README's test command does)")
            })
        })
        .collect()
}

/// The value of attribute `name` in an XML start tag (with or without the element name).
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("{name}=\"");
    let start = tag
        .match_indices(&key)
        .find(|(i, _)| *i == 0 || tag[..*i].ends_with(char::is_whitespace))?
        .0
        + key.len();
    let len = tag[start..].find('"')?;
    Some(&tag[start..start + len])
}

#[derive(Debug)]
struct SpecField {
    name: String,
    mandatory: bool,
}

#[derive(Debug)]
struct SpecComposite {
    code: u64,
    symbol: String,
    fields: Vec<SpecField>,
}

/// Every `<type class="composite">` of the spec, by type name.
fn composites(xml: &str) -> BTreeMap<String, SpecComposite> {
    let mut out = BTreeMap::new();
    for chunk in xml.split("<type ").skip(1) {
        let tag = &chunk[..chunk.find('>').unwrap()];
        if attr(tag, "class") != Some("composite") {
            continue;
        }
        let body = &chunk[..chunk.find("</type>").unwrap_or(chunk.len())];
        let descriptor = body
            .split("<descriptor ")
            .nth(1)
            .expect("composite has a descriptor");
        let code = attr(descriptor, "code").unwrap();
        let code = u64::from_str_radix(code.rsplit("0x").next().unwrap(), 16).unwrap();
        let fields = body
            .split("<field ")
            .skip(1)
            .map(|f| {
                let tag = &f[..f.find('>').unwrap()];
                SpecField {
                    name: attr(tag, "name").unwrap().replace('-', "_"),
                    mandatory: attr(tag, "mandatory") == Some("true"),
                }
            })
            .collect();
        out.insert(
            attr(tag, "name").unwrap().to_string(),
            SpecComposite {
                code,
                symbol: attr(descriptor, "name").unwrap().to_string(),
                fields,
            },
        );
    }
    out
}

fn ours<T: Composite>() -> (u64, &'static str, &'static [FieldInfo]) {
    (T::CODE, T::NAME, T::FIELDS)
}

#[test]
fn every_composite_matches_the_spec() {
    let ours: BTreeMap<&str, (u64, &str, &[FieldInfo])> = [
        ("open", ours::<Open>()),
        ("begin", ours::<Begin>()),
        ("attach", ours::<Attach>()),
        ("flow", ours::<Flow>()),
        ("transfer", ours::<Transfer>()),
        ("disposition", ours::<Disposition>()),
        ("detach", ours::<Detach>()),
        ("end", ours::<End>()),
        ("close", ours::<Close>()),
        ("error", ours::<Error>()),
        ("header", ours::<Header>()),
        ("properties", ours::<Properties>()),
        ("received", ours::<Received>()),
        ("accepted", ours::<Accepted>()),
        ("rejected", ours::<Rejected>()),
        ("released", ours::<Released>()),
        ("modified", ours::<Modified>()),
        ("source", ours::<Source>()),
        ("target", ours::<Target>()),
        ("delete-on-close", ours::<DeleteOnClose>()),
        ("delete-on-no-links", ours::<DeleteOnNoLinks>()),
        ("delete-on-no-messages", ours::<DeleteOnNoMessages>()),
        (
            "delete-on-no-links-or-messages",
            ours::<DeleteOnNoLinksOrMessages>(),
        ),
        ("coordinator", ours::<Coordinator>()),
        ("declare", ours::<Declare>()),
        ("discharge", ours::<Discharge>()),
        ("declared", ours::<Declared>()),
        ("transactional-state", ours::<TransactionalState>()),
        ("sasl-mechanisms", ours::<SaslMechanisms>()),
        ("sasl-init", ours::<SaslInit>()),
        ("sasl-challenge", ours::<SaslChallenge>()),
        ("sasl-response", ours::<SaslResponse>()),
        ("sasl-outcome", ours::<SaslOutcome>()),
    ]
    .into_iter()
    .collect();

    let spec = composites(&spec());
    assert!(
        spec.len() >= 33,
        "the spec XML defines {} composites",
        spec.len()
    );
    let mut problems = Vec::new();
    for (name, def) in &spec {
        let Some((code, symbol, fields)) = ours.get(name.as_str()) else {
            problems.push(format!("{name}: not defined by the codec"));
            continue;
        };
        if *code != def.code || *symbol != def.symbol {
            problems.push(format!(
                "{name}: descriptor {symbol} {code:#x}, spec {} {:#x}",
                def.symbol, def.code
            ));
        }
        let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
        let spec_names: Vec<&str> = def.fields.iter().map(|f| f.name.as_str()).collect();
        if names != spec_names {
            problems.push(format!("{name}: fields {names:?}, spec {spec_names:?}"));
            continue;
        }
        for (f, s) in fields.iter().zip(&def.fields) {
            if f.required != s.mandatory {
                problems.push(format!(
                    "{name}.{}: required {}, spec mandatory {}",
                    s.name, f.required, s.mandatory
                ));
            }
        }
    }
    assert_eq!(
        ours.len(),
        spec.len(),
        "the codec defines composites the spec does not"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_descriptor_table_lists_every_spec_descriptor() {
    let xml = spec();
    let mut from_spec = spec_descriptors(&xml);
    from_spec.sort();
    let table: Vec<(u64, String)> = DESCRIPTORS
        .iter()
        .map(|(c, n)| (*c, n.to_string()))
        .collect();
    assert_eq!(table, from_spec);
}

/// Every `<descriptor>` in the spec, composite or restricted (the map and body sections).
fn spec_descriptors(xml: &str) -> Vec<(u64, String)> {
    xml.split("<descriptor ")
        .skip(1)
        .map(|d| {
            let tag = &d[..d.find('>').unwrap()];
            let code = attr(tag, "code").unwrap().rsplit("0x").next().unwrap();
            (
                u64::from_str_radix(code, 16).unwrap(),
                attr(tag, "name").unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn every_error_condition_in_the_spec_is_named() {
    let xml = spec();
    let mut missing = Vec::new();
    for chunk in xml.split("<type ").skip(1) {
        let tag = &chunk[..chunk.find('>').unwrap()];
        let name = attr(tag, "name").unwrap_or_default();
        if !name.ends_with("-error") || name == "error" {
            continue;
        }
        let body = &chunk[..chunk.find("</type>").unwrap_or(chunk.len())];
        for choice in body.split("<choice ").skip(1) {
            let value = attr(&choice[..choice.find('>').unwrap()], "value").unwrap();
            if !conditions::ALL.contains(&value) {
                missing.push(value.to_string());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "conditions not in transport::conditions: {missing:?}"
    );
}
