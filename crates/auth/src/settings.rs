//! What an exchange needs to know besides the users: the address space's authentication
//! service, the settings that do not come from MessagingUsers, and the transport.

use sluice_config::ResolvedAddressSpace;
use sluice_config::resources::AuthenticationServiceType;

use crate::error::AuthError;
use crate::{SCRAM_ITERATIONS_DEFAULT, SCRAM_ITERATIONS_MAX, SCRAM_ITERATIONS_MIN};

/// Which AuthenticationService the address space uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// Anyone, any credentials, every right (EnMasse's `none-authservice`).
    None,
    /// MessagingUsers: passwords and service-account tokens, checked here.
    Standard,
    /// An external SASL server, to which the broker relays the exchange.
    External,
}

impl From<AuthenticationServiceType> for Service {
    fn from(service: AuthenticationServiceType) -> Service {
        match service {
            AuthenticationServiceType::None => Service::None,
            AuthenticationServiceType::Standard => Service::Standard,
            AuthenticationServiceType::External => Service::External,
        }
    }
}

impl Service {
    /// The service the address space names, if it names one.
    pub fn of_space(space: &ResolvedAddressSpace) -> Option<Service> {
        space
            .authentication_service
            .as_ref()
            .map(|s| Service::from(s.resource.spec.service_type))
    }
}

/// Settings that do not come from the MessagingUsers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthSettings {
    /// The address space's authentication service.
    pub service: Service,
    /// Offer PLAIN on connections without TLS although the service is not `none`
    /// (passwords and tokens then cross the network in clear).
    pub danger_plain_without_tls: bool,
    /// SCRAM iteration count used when hashing passwords at load
    /// ([`SCRAM_ITERATIONS_MIN`]..=[`SCRAM_ITERATIONS_MAX`]).
    pub scram_iterations: u32,
    /// With service `standard`, offer ANONYMOUS too: such a connection has no right of its
    /// own, only what `$cbs` tokens grant it (the Azure SDKs authenticate this way).
    pub anonymous_claims: bool,
}

impl AuthSettings {
    /// Safe defaults for `service`: PLAIN only over TLS, [`SCRAM_ITERATIONS_DEFAULT`].
    pub fn new(service: Service) -> AuthSettings {
        AuthSettings {
            service,
            danger_plain_without_tls: false,
            scram_iterations: SCRAM_ITERATIONS_DEFAULT,
            anonymous_claims: false,
        }
    }

    /// Checks the iteration count is in range.
    pub fn validate(&self) -> Result<(), AuthError> {
        if (SCRAM_ITERATIONS_MIN..=SCRAM_ITERATIONS_MAX).contains(&self.scram_iterations) {
            Ok(())
        } else {
            Err(AuthError::Iterations {
                iterations: self.scram_iterations,
                min: SCRAM_ITERATIONS_MIN,
                max: SCRAM_ITERATIONS_MAX,
            })
        }
    }
}

/// What the transport tells about a connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transport {
    /// Whether the connection is over TLS.
    pub tls: bool,
    /// The verified client certificate's subject CN, for EXTERNAL.
    pub client_subject: Option<String>,
}
