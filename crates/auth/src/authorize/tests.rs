use sluice_config::resources::AddressSpaceType;

use super::*;
use crate::principal::Mechanism;
use crate::settings::{AuthSettings, Service};
use crate::test_support::{USERS, seeded, space, users};

fn user(name: &str) -> Principal {
    Principal::new(name, Mechanism::Plain, Grants::User)
}

#[test]
fn user_rights_come_from_the_snapshot() {
    let users = users(Service::None);
    let alice = user("alice");
    assert_eq!(
        authorize(&users, &alice, None, Operation::Send, "orders"),
        Ok(())
    );
    assert_eq!(
        authorize(&users, &alice, None, Operation::Recv, "topic/x"),
        Ok(())
    );
    let denied = authorize(&users, &alice, None, Operation::Send, "payments").unwrap_err();
    assert_eq!(
        denied.to_string(),
        "user 'alice' may not send to 'payments'"
    );
    assert_eq!(denied.operation(), Operation::Send);
    assert_eq!(denied.username(), "alice");

    let bob = user("bob");
    assert_eq!(
        authorize(&users, &bob, None, Operation::Recv, "orders"),
        Ok(())
    );
    let denied = authorize(&users, &bob, None, Operation::Recv, "orders2").unwrap_err();
    assert_eq!(
        denied.to_string(),
        "user 'bob' may not receive from 'orders2'"
    );
    assert!(authorize(&users, &bob, None, Operation::Send, "orders").is_err());
}

#[test]
fn a_reload_applies_to_the_next_check() {
    let before = users(Service::None);
    let alice = user("alice");
    assert!(authorize(&before, &alice, None, Operation::Send, "orders").is_ok());
    let reduced = USERS.replace("[orders, \"top*\"]", "[audit]");
    let space = space("standard", "none", &reduced);
    let after =
        Users::from_space(&space, &AuthSettings::new(Service::None), &mut seeded(2)).unwrap();
    assert!(authorize(&after, &alice, None, Operation::Send, "orders").is_err());
    assert!(authorize(&after, &alice, None, Operation::Send, "audit").is_ok());

    let gone = user("mallory");
    let denied = authorize(&after, &gone, None, Operation::Recv, "audit").unwrap_err();
    assert!(denied.to_string().contains("no longer exists"), "{denied}");
}

#[test]
fn all_and_explicit_grants() {
    let users = users(Service::None);
    let anyone = Principal::new("anonymous", Mechanism::Anonymous, Grants::All);
    assert!(authorize(&users, &anyone, None, Operation::Recv, "x/y").is_ok());

    let mut rights = Rights::new();
    rights.grant("t/+", false, true, AddressSpaceType::Brokered);
    let external = Principal::new("ext", Mechanism::Plain, Grants::Explicit(rights));
    assert!(authorize(&users, &external, None, Operation::Recv, "t/a").is_ok());
    assert!(authorize(&users, &external, None, Operation::Recv, "t/a/b").is_err());
    assert!(authorize(&users, &external, None, Operation::Send, "t/a").is_err());
}

#[test]
fn extra_rights_add_to_the_principal() {
    let users = users(Service::None);
    let bob = user("bob");
    let mut cbs = Rights::new();
    cbs.grant("events", true, false, AddressSpaceType::Standard);
    assert!(authorize(&users, &bob, None, Operation::Send, "events").is_err());
    assert!(authorize(&users, &bob, Some(&cbs), Operation::Send, "events").is_ok());
    assert!(authorize(&users, &bob, Some(&cbs), Operation::Recv, "events").is_err());
}

#[test]
fn denied_escapes_and_bounds_the_address() {
    let users = users(Service::None);
    let bob = user("bob");
    let address = format!("a\nb{}", "x".repeat(1000));
    let denied = authorize(&users, &bob, None, Operation::Send, &address).unwrap_err();
    let text = denied.to_string();
    assert!(!text.contains('\n'), "{text}");
    assert!(text.contains("a\\nb"), "{text}");
    assert!(text.len() < 300, "{}", text.len());
}
