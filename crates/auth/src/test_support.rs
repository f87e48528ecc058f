//! Fixtures shared by the unit tests: address spaces parsed from manifests by
//! `sluice-config`, repeatable randomness, and a SCRAM client.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sluice_config::{ResolvedAddressSpace, Source, check};

use crate::scram::Hash;
use crate::settings::{AuthSettings, Service};
use crate::users::Users;

/// Plans and authentication services for a standard and a brokered space.
const PLANS: &str = r#"
apiVersion: admin.enmasse.io/v1beta2
kind: AddressSpacePlan
metadata: {name: standard-plan}
spec:
  addressSpaceType: standard
  resourceLimits: {router: 1.0, broker: 1.0, aggregate: 2.0}
  addressPlans: [queue]
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressSpacePlan
metadata: {name: brokered-plan}
spec:
  addressSpaceType: brokered
  addressPlans: [queue]
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressPlan
metadata: {name: queue}
spec: {addressType: queue, resources: {router: 0.01, broker: 0.1}}
---
apiVersion: admin.enmasse.io/v1beta1
kind: AuthenticationService
metadata: {name: none}
spec: {type: none}
---
apiVersion: admin.enmasse.io/v1beta1
kind: AuthenticationService
metadata: {name: standard}
spec: {type: standard}
---
apiVersion: admin.enmasse.io/v1beta1
kind: AuthenticationService
metadata: {name: external}
spec: {type: external, external: {host: auth.example, port: 5671}}
"#;

/// The users most tests log in as: `alice` (password `alice-pw`), `bob` (`bob-pw`), the
/// service account `system:serviceaccount:ns:app`, and a federated `dev`.
pub(crate) const USERS: &str = r#"
apiVersion: user.enmasse.io/v1beta1
kind: MessagingUser
metadata: {name: s.alice}
spec:
  username: alice
  authentication: {type: password, password: YWxpY2UtcHc=}
  authorization:
  - {addresses: [orders, "top*"], operations: [send, recv]}
  - {operations: [view, manage]}
---
apiVersion: user.enmasse.io/v1beta1
kind: MessagingUser
metadata: {name: s.bob}
spec:
  username: bob
  authentication: {type: password, password: Ym9iLXB3}
  authorization:
  - {addresses: [orders], operations: [recv]}
---
apiVersion: user.enmasse.io/v1beta1
kind: MessagingUser
metadata: {name: s.app}
spec:
  username: system:serviceaccount:ns:app
  authentication: {type: serviceaccount}
  authorization:
  - {addresses: ["*"], operations: [send]}
---
apiVersion: user.enmasse.io/v1beta1
kind: MessagingUser
metadata: {name: s.dev}
spec:
  username: dev
  authentication: {type: federated, provider: openshift}
"#;

/// Address space `s` of `space_type` (`standard` or `brokered`) using the authentication
/// service named `service` (`none`, `standard` or `external`), with the users in `users`.
pub(crate) fn space(space_type: &str, service: &str, users: &str) -> ResolvedAddressSpace {
    let manifest = format!(
        "apiVersion: enmasse.io/v1beta1\nkind: AddressSpace\nmetadata: {{name: s}}\n\
         spec: {{type: {space_type}, plan: {space_type}-plan, authenticationService: {{name: {service}}}}}\n\
         ---\n{users}"
    );
    let checked = check(&[
        Source::new("plans.yaml", PLANS),
        Source::new("space.yaml", &manifest),
    ]);
    assert!(checked.is_valid(), "{:?}", checked.diagnostics);
    checked.config.address_space("s").unwrap().clone()
}

/// A repeatable random source (xorshift64*; not for production use).
pub(crate) fn seeded(seed: u64) -> impl FnMut(&mut [u8]) + Send + 'static {
    let mut state = seed | 1;
    move |buf: &mut [u8]| {
        for byte in buf {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            *byte = (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8;
        }
    }
}

/// Users of `USERS` in a standard space with the `service` service.
pub(crate) fn users(service: Service) -> Arc<Users> {
    let name = match service {
        Service::None => "none",
        Service::Standard => "standard",
        Service::External => "external",
    };
    let space = space("standard", name, USERS);
    let settings = AuthSettings::new(service);
    Arc::new(Users::from_space(&space, &settings, &mut seeded(7)).unwrap())
}

/// A SCRAM client, written from RFC 5802 for the tests.
pub(crate) struct ScramClient {
    pub(crate) hash: Hash,
    pub(crate) username: String,
    pub(crate) password: String,
    pub(crate) nonce: String,
    pub(crate) gs2_header: String,
}

/// What the client computed from server-first.
pub(crate) struct ClientFinal {
    pub(crate) message: String,
    /// The `v=` the server must answer.
    pub(crate) expected_server_final: String,
}

impl ScramClient {
    pub(crate) fn new(hash: Hash, username: &str, password: &str) -> ScramClient {
        ScramClient {
            hash,
            username: username.to_owned(),
            password: password.to_owned(),
            nonce: "fyko+d2lbbFgONRv9qkxdawL".to_owned(),
            gs2_header: "n,,".to_owned(),
        }
    }

    pub(crate) fn bare(&self) -> String {
        let name = self.username.replace('=', "=3D").replace(',', "=2C");
        format!("n={name},r={}", self.nonce)
    }

    pub(crate) fn first(&self) -> String {
        format!("{}{}", self.gs2_header, self.bare())
    }

    /// client-final for `server_first`, with the nonce and channel binding as sent.
    pub(crate) fn finish(&self, server_first: &str) -> ClientFinal {
        let mut nonce = "";
        let mut salt = Vec::new();
        let mut iterations = 0;
        for field in server_first.split(',') {
            if let Some(v) = field.strip_prefix("r=") {
                nonce = v;
            } else if let Some(v) = field.strip_prefix("s=") {
                salt = STANDARD.decode(v).unwrap();
            } else if let Some(v) = field.strip_prefix("i=") {
                iterations = v.parse().unwrap();
            }
        }
        assert!(nonce.starts_with(&self.nonce), "server nonce extends ours");
        let without_proof = format!("c={},r={nonce}", STANDARD.encode(&self.gs2_header));
        self.finish_with(server_first, &without_proof, &salt, iterations)
    }

    pub(crate) fn finish_with(
        &self,
        server_first: &str,
        without_proof: &str,
        salt: &[u8],
        iterations: u32,
    ) -> ClientFinal {
        let hash = self.hash;
        let salted = hash.salted_password(self.password.as_bytes(), salt, iterations);
        let client_key = hash.hmac(&salted, &[b"Client Key"]);
        let stored_key = hash.digest(&client_key);
        let auth_message = format!("{},{server_first},{without_proof}", self.bare());
        let signature = hash.hmac(&stored_key, &[auth_message.as_bytes()]);
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hash.hmac(&salted, &[b"Server Key"]);
        let server_signature = hash.hmac(&server_key, &[auth_message.as_bytes()]);
        ClientFinal {
            message: format!("{without_proof},p={}", STANDARD.encode(proof)),
            expected_server_final: format!("v={}", STANDARD.encode(server_signature)),
        }
    }
}
