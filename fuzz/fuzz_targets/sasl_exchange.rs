//! Arbitrary SASL exchanges against the standard authentication service: the first byte picks
//! the mechanism and whether TLS and a client certificate are present, the rest is split into
//! the initial response and responses. No panic; and nothing but the right password (or the
//! certificate's user) ever authenticates.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use sluice_auth::{AuthSettings, Exchange, Service, Step, Transport, Users};

const SPACE: &str = "
apiVersion: admin.enmasse.io/v1beta2
kind: AddressSpacePlan
metadata: {name: plan}
spec:
  addressSpaceType: standard
  resourceLimits: {router: 1.0, broker: 1.0, aggregate: 2.0}
  addressPlans: []
---
apiVersion: admin.enmasse.io/v1beta1
kind: AuthenticationService
metadata: {name: standard}
spec: {type: standard}
---
apiVersion: enmasse.io/v1beta1
kind: AddressSpace
metadata: {name: space}
spec: {type: standard, plan: plan, authenticationService: {name: standard}}
---
apiVersion: user.enmasse.io/v1beta1
kind: MessagingUser
metadata: {name: space.alice}
spec:
  username: alice
  authentication: {type: password, password: c2VjcmV0}
  authorization: [{addresses: ['*'], operations: [send, recv]}]
---
apiVersion: user.enmasse.io/v1beta1
kind: MessagingUser
metadata: {name: space.app}
spec:
  username: system:serviceaccount:ns:app
  authentication: {type: serviceaccount}
";

const MECHANISMS: [&str; 6] = [
    "PLAIN",
    "SCRAM-SHA-256",
    "SCRAM-SHA-512",
    "EXTERNAL",
    "ANONYMOUS",
    "X-UNKNOWN",
];

fn users() -> &'static (Arc<Users>, AuthSettings) {
    static USERS: OnceLock<(Arc<Users>, AuthSettings)> = OnceLock::new();
    USERS.get_or_init(|| {
        let checked = sluice_config::check(&[sluice_config::Source::new("space.yaml", SPACE)]);
        let space = checked.config.address_space("space").expect("the fuzz space is valid");
        let settings = AuthSettings::new(Service::Standard);
        let mut n = 0u8;
        let mut random = |buf: &mut [u8]| {
            for b in buf {
                n = n.wrapping_add(1);
                *b = n;
            }
        };
        let users = Users::from_space(space, &settings, &mut random).expect("the fuzz users load");
        (Arc::new(users), settings)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let (users, settings) = users();
    let transport = Transport {
        tls: first & 0x10 != 0,
        client_subject: (first & 0x20 != 0).then(|| "carol".to_string()),
    };
    let mechanism = MECHANISMS[usize::from(first & 0x0f) % MECHANISMS.len()];
    let mut exchange = Exchange::with_random(
        Arc::clone(users),
        settings,
        transport,
        Box::new(|buf: &mut [u8]| buf.fill(7)),
    );
    let mut pieces = rest.split(|b| *b == 0xff);
    let initial = pieces.next();
    let mut step = exchange.init(mechanism, initial, 0);
    for _ in 0..4 {
        step = match step {
            Step::Challenge(_) => exchange.respond(pieces.next().unwrap_or_default(), 0),
            Step::Review { .. } => exchange.reviewed(
                Err(sluice_auth::ReviewFailure::Rejected("fuzz".into())),
                0,
            ),
            done => {
                step = done;
                break;
            }
        };
    }
    if let Step::Success { principal, .. } = &step {
        // PLAIN needs alice's password; SCRAM proofs cannot be guessed; there is no user
        // "carol" for EXTERNAL, and ANONYMOUS is not offered.
        let plain = initial.unwrap_or_default();
        assert!(
            mechanism == "PLAIN"
                && plain.ends_with(b"\0alice\0secret")
                && &*principal.username == "alice",
            "{mechanism} authenticated {} from {data:?}",
            principal.username
        );
    }
});
