use proptest::prelude::*;
use sluice_config::resources::{AddressSpaceType, AuthorizationRule, Operation as RuleOperation};

use super::{Operation, Rights};

const STANDARD: AddressSpaceType = AddressSpaceType::Standard;
const BROKERED: AddressSpaceType = AddressSpaceType::Brokered;

fn sends(pattern: &str, space: AddressSpaceType, address: &str) -> bool {
    let mut rights = Rights::new();
    rights.grant(pattern, true, false, space);
    rights.allows(Operation::Send, address)
}

#[test]
fn standard_literal_matches_only_itself() {
    assert!(sends("orders", STANDARD, "orders"));
    assert!(!sends("orders", STANDARD, "orders2"));
    assert!(!sends("orders", STANDARD, "order"));
    assert!(!sends("orders", STANDARD, "orders/x"));
}

#[test]
fn standard_trailing_star_is_a_prefix() {
    assert!(sends("top*", STANDARD, "top"));
    assert!(sends("top*", STANDARD, "topic"));
    assert!(sends("top*", STANDARD, "topic/sub"));
    assert!(!sends("top*", STANDARD, "to"));
    assert!(!sends("top*", STANDARD, "xtopic"));
}

#[test]
fn standard_star_alone_matches_everything() {
    for address in ["", "a", "topic/sub", "topic::sub", "#"] {
        assert!(sends("*", STANDARD, address), "{address}");
    }
}

#[test]
fn standard_star_elsewhere_and_hash_are_literal() {
    assert!(sends("*/tenant", STANDARD, "*/tenant"));
    assert!(!sends("*/tenant", STANDARD, "a/tenant"));
    assert!(sends("a*b", STANDARD, "a*b"));
    assert!(!sends("a*b", STANDARD, "axb"));
    assert!(sends("#", STANDARD, "#"));
    assert!(!sends("#", STANDARD, "a"));
    assert!(!sends("topic/+", STANDARD, "topic/sub"));
}

#[test]
fn standard_subscription_matches_the_whole_string() {
    assert!(sends("topic::sub", STANDARD, "topic::sub"));
    assert!(!sends("topic", STANDARD, "topic::sub"));
    assert!(sends("topic*", STANDARD, "topic::sub"));
}

#[test]
fn brokered_plus_matches_one_word() {
    assert!(sends("topic/+", BROKERED, "topic/sub"));
    assert!(!sends("topic/+", BROKERED, "topic/s/sub"));
    assert!(!sends("topic/+", BROKERED, "topic"));
    assert!(sends("a/+/c", BROKERED, "a/b/c"));
    assert!(!sends("a/+/c", BROKERED, "a/b/d"));
    assert!(sends("+", BROKERED, "anything"));
    assert!(!sends("+", BROKERED, "two/words"));
}

#[test]
fn brokered_hash_and_star_match_any_number_of_words() {
    for pattern in ["topic/#", "topic/*"] {
        assert!(sends(pattern, BROKERED, "topic"), "{pattern}");
        assert!(sends(pattern, BROKERED, "topic/sub"), "{pattern}");
        assert!(sends(pattern, BROKERED, "topic/s/sub"), "{pattern}");
        assert!(!sends(pattern, BROKERED, "topics"), "{pattern}");
        assert!(!sends(pattern, BROKERED, "other/sub"), "{pattern}");
    }
    assert!(sends("a/#/z", BROKERED, "a/z"));
    assert!(sends("a/#/z", BROKERED, "a/b/c/z"));
    assert!(!sends("a/#/z", BROKERED, "a/b/c"));
    assert!(sends("#/+/#", BROKERED, "x"));
    assert!(!sends("+/+", BROKERED, "x"));
}

#[test]
fn brokered_wildcard_alone_matches_everything() {
    for pattern in ["#", "*", "#/#"] {
        for address in ["", "a", "a/b/c", "topic::sub"] {
            assert!(sends(pattern, BROKERED, address), "{pattern} {address}");
        }
    }
}

#[test]
fn brokered_wildcard_inside_a_word_is_literal() {
    assert!(sends("top*", BROKERED, "top*"));
    assert!(!sends("top*", BROKERED, "topic"));
}

#[test]
fn operations_are_separate() {
    let mut rights = Rights::new();
    rights.grant("in", true, false, STANDARD);
    rights.grant("out", false, true, STANDARD);
    assert!(rights.allows(Operation::Send, "in"));
    assert!(!rights.allows(Operation::Recv, "in"));
    assert!(rights.allows(Operation::Recv, "out"));
    assert!(!rights.allows(Operation::Send, "out"));
}

#[test]
fn view_and_manage_grant_management_but_no_link() {
    let rules = vec![
        AuthorizationRule {
            addresses: vec!["ops*".into()],
            operations: vec![RuleOperation::Manage],
        },
        AuthorizationRule {
            addresses: vec!["seen".into()],
            operations: vec![RuleOperation::View],
        },
    ];
    let rights = Rights::from_rules(&rules, STANDARD);
    assert!(!rights.allows(Operation::Send, "ops1"));
    assert!(!rights.allows(Operation::Recv, "ops1"));
    assert!(rights.allows(Operation::Manage, "ops1"));
    assert!(
        rights.allows(Operation::View, "ops1"),
        "manage implies view"
    );
    assert!(rights.allows(Operation::View, "seen"));
    assert!(!rights.allows(Operation::Manage, "seen"));
    assert!(!rights.allows(Operation::Manage, "other"));
}

#[test]
fn rules_grant_each_address_its_operations() {
    let rules = vec![
        AuthorizationRule {
            addresses: vec!["q1".into(), "t*".into()],
            operations: vec![RuleOperation::Send, RuleOperation::Recv],
        },
        AuthorizationRule {
            addresses: vec!["any".into()],
            operations: vec![RuleOperation::Send],
        },
    ];
    let rights = Rights::from_rules(&rules, STANDARD);
    assert!(rights.allows(Operation::Recv, "q1"));
    assert!(rights.allows(Operation::Send, "topic"));
    assert!(rights.allows(Operation::Send, "any"));
    assert!(!rights.allows(Operation::Recv, "any"));
    assert!(!rights.allows(Operation::Send, "q2"));
    assert!(Rights::from_rules(&[], STANDARD).is_empty());
}

/// An address or pattern word without wildcard characters.
fn literal() -> impl Strategy<Value = String> {
    "[a-z0-9:._/-]{1,24}"
}

fn address() -> impl Strategy<Value = String> {
    "[a-z0-9:._/+#*-]{0,24}"
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn literal_matches_only_itself(pattern in literal(), other in address()) {
        for space in [STANDARD, BROKERED] {
            prop_assert!(sends(&pattern, space, &pattern));
            prop_assert_eq!(sends(&pattern, space, &other), other == pattern);
        }
    }

    #[test]
    fn hash_matches_everything_brokered(address in address()) {
        prop_assert!(sends("#", BROKERED, &address));
        prop_assert!(sends("*", BROKERED, &address));
        prop_assert!(sends("*", STANDARD, &address));
    }

    #[test]
    fn prefix_pattern_is_starts_with(prefix in literal(), address in address()) {
        let pattern = format!("{prefix}*");
        prop_assert_eq!(sends(&pattern, STANDARD, &address), address.starts_with(&prefix));
    }

    #[test]
    fn trailing_hash_matches_the_stem_and_below(stem in literal(), rest in address()) {
        let pattern = format!("{stem}/#");
        prop_assert!(sends(&pattern, BROKERED, &stem));
        let below = format!("{stem}/{rest}");
        prop_assert!(sends(&pattern, BROKERED, &below));
    }
}
