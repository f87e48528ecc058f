use sluice_config::resources::AddressSpaceType;

use super::*;
use crate::rights::Operation;
use crate::test_support::{USERS, seeded, space, users};

/// Loads users straight from their manifests, past `sluice check`'s validation (which already
/// refuses bad passwords), to show the loader refuses them too.
fn load_unchecked(users_yaml: &str) -> Result<Users, AuthError> {
    let mut diagnostics = Vec::new();
    let manifests = sluice_config::parse_sources(
        &[sluice_config::Source::new("u.yaml", users_yaml)],
        &mut diagnostics,
    );
    let resources: Vec<_> = manifests
        .messaging_users
        .iter()
        .map(|u| &u.resource)
        .collect();
    Users::from_users(
        &resources,
        sluice_config::resources::AddressSpaceType::Standard,
        &AuthSettings::new(Service::Standard),
        &mut seeded(1),
    )
}

fn load(users_yaml: &str) -> Result<Users, AuthError> {
    let space = space("standard", "standard", users_yaml);
    Users::from_space(
        &space,
        &AuthSettings::new(Service::Standard),
        &mut seeded(1),
    )
}

fn password_user(name: &str, username: &str, password: &str) -> String {
    format!(
        "---\napiVersion: user.enmasse.io/v1beta1\nkind: MessagingUser\n\
         metadata: {{name: s.{name}}}\nspec:\n  username: {username}\n  \
         authentication: {{type: password, password: \"{password}\"}}\n"
    )
}

#[test]
fn loads_password_and_service_account_users_and_skips_federated() {
    let users = users(Service::Standard);
    assert_eq!(users.len(), 3);
    assert!(!users.is_empty());
    assert_eq!(users.space_type(), AddressSpaceType::Standard);
    let alice = users.get("alice").unwrap();
    assert_eq!(alice.kind(), UserKind::Password);
    assert_eq!(alice.resource_name(), "s.alice");
    assert!(alice.rights().allows(Operation::Send, "topic/a"));
    assert!(!alice.rights().allows(Operation::Send, "other"));
    let app = users.get("system:serviceaccount:ns:app").unwrap();
    assert_eq!(app.kind(), UserKind::ServiceAccount);
    assert!(app.rights().allows(Operation::Send, "anything"));
    assert!(!app.rights().allows(Operation::Recv, "anything"));
    assert!(users.get("dev").is_none());
}

#[test]
fn plain_check_against_the_stored_credential() {
    let users = users(Service::Standard);
    assert_eq!(users.check_password("alice", b"alice-pw"), Ok(()));
    assert_eq!(
        users.check_password("alice", b"bob-pw"),
        Err("wrong password")
    );
    assert_eq!(users.check_password("bob", b"bob-pw"), Ok(()));
    assert_eq!(
        users.check_password("carol", b"alice-pw"),
        Err("unknown user")
    );
    assert_eq!(
        users.check_password("system:serviceaccount:ns:app", b"token"),
        Err("user has no password")
    );
}

#[test]
fn no_credentials_are_derived_for_other_services() {
    let users = users(Service::None);
    assert_eq!(users.len(), 3);
    assert_eq!(
        users.check_password("alice", b"alice-pw"),
        Err("user has no password")
    );
}

#[test]
fn bad_base64_names_the_user_and_the_field_but_not_the_value() {
    let error = load_unchecked(&password_user("eve", "eve", "c2VjcmV0!")).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("\"s.eve\""), "{message}");
    assert!(
        message.contains("spec.authentication.password"),
        "{message}"
    );
    assert!(!message.contains("c2VjcmV0"), "{message}");
    assert!(!message.contains('!'), "{message}");
}

#[test]
fn a_missing_password_loads_a_user_who_cannot_log_in_and_an_empty_one_is_an_error() {
    let missing = "apiVersion: user.enmasse.io/v1beta1\nkind: MessagingUser\n\
                   metadata: {name: s.eve}\nspec:\n  username: eve\n  \
                   authentication: {type: password}\n";
    let users = load(missing).unwrap();
    assert!(users.get("eve").is_some());
    assert!(users.check_password("eve", b"").is_err());
    assert!(matches!(
        load_unchecked(&password_user("eve", "eve", "")).unwrap_err(),
        AuthError::PasswordLength { bytes: 0, .. }
    ));
}

#[test]
fn duplicate_usernames_are_an_error() {
    let yaml = format!(
        "{}{}",
        password_user("one", "same", "YQ=="),
        password_user("two", "same", "Yg==")
    );
    assert_eq!(
        load(&yaml).unwrap_err(),
        AuthError::DuplicateUsername {
            user: "s.two".into(),
            username: "same".into(),
            other: "s.one".into()
        }
    );
}

#[test]
fn iterations_out_of_range_are_an_error() {
    let space = space("standard", "standard", USERS);
    let mut settings = AuthSettings::new(Service::Standard);
    settings.scram_iterations = 1;
    let error = Users::from_space(&space, &settings, &mut seeded(1)).unwrap_err();
    assert!(matches!(error, AuthError::Iterations { iterations: 1, .. }));
}

#[test]
fn fake_scram_salts_are_stable_per_user_and_unlike_real_ones() {
    let users = users(Service::Standard);
    let (ghost, refusal) = users.scram_credential(Hash::Sha256, "ghost");
    assert_eq!(refusal, Some("unknown user"));
    let (again, _) = users.scram_credential(Hash::Sha256, "ghost");
    assert_eq!(ghost, again);
    let (other, _) = users.scram_credential(Hash::Sha256, "ghost2");
    assert_ne!(ghost.salt, other.salt);
    let (real, refusal) = users.scram_credential(Hash::Sha256, "alice");
    assert_eq!(refusal, None);
    assert_eq!(real.salt.len(), ghost.salt.len());
    assert_eq!(real.iterations, ghost.iterations);
    let (_, refusal) = users.scram_credential(Hash::Sha512, "system:serviceaccount:ns:app");
    assert!(refusal.is_some());
}

#[test]
fn the_same_seed_gives_the_same_salts() {
    let a = users(Service::Standard);
    let b = users(Service::Standard);
    assert_eq!(
        a.scram_credential(Hash::Sha512, "alice"),
        b.scram_credential(Hash::Sha512, "alice")
    );
}

#[test]
fn os_random_loads() {
    let space = space("standard", "standard", USERS);
    let settings = AuthSettings::new(Service::Standard);
    let users = Users::from_space_os_random(&space, &settings).unwrap();
    assert_eq!(users.check_password("bob", b"bob-pw"), Ok(()));
}

#[test]
fn debug_shows_no_credential() {
    let users = users(Service::Standard);
    let text = format!("{users:?} {:?}", users.get("alice").unwrap());
    assert!(text.contains("alice"), "{text}");
    assert!(!text.contains("alice-pw"), "{text}");
    assert!(!text.contains("stored_key"), "{text}");
}
