//! Certificate generation with rcgen: the CA and server certificate of the `selfsigned`
//! provider, and (for `testing`) client certificates. One place, so the runtime provider and
//! the test PKI issue certificates the same way.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::TransportError;

/// A generated certificate authority that can issue server and client certificates.
pub(crate) struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate issued by a [`Ca`], with its private key.
pub(crate) struct Issued {
    /// The certificate, DER.
    pub(crate) cert: CertificateDer<'static>,
    /// The certificate, PEM.
    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))]
    pub(crate) cert_pem: String,
    /// The private key, PKCS#8 DER.
    pub(crate) key: PrivatePkcs8KeyDer<'static>,
    /// The private key, PEM.
    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))]
    pub(crate) key_pem: String,
}

impl Issued {
    /// The private key as rustls takes it.
    pub(crate) fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }
}

impl Ca {
    /// A new CA (ECDSA P-256) whose subject CN is `common_name`.
    pub(crate) fn generate(common_name: &str) -> Result<Ca, TransportError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(Ca { issuer })
    }

    /// The CA certificate, DER.
    pub(crate) fn cert(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// The CA certificate, PEM.
    pub(crate) fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `hostnames` (DNS names or IP addresses, as SANs); the first
    /// one is also the subject CN.
    pub(crate) fn issue_server(&self, hostnames: &[String]) -> Result<Issued, TransportError> {
        let mut params = CertificateParams::new(hostnames.to_vec())?;
        if let Some(first) = hostnames.first() {
            params.distinguished_name.push(DnType::CommonName, first);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    /// A client certificate whose subject CN is `common_name` (no SANs).
    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))]
    pub(crate) fn issue_client(&self, common_name: &str) -> Result<Issued, TransportError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    /// A certificate from `params` (as an end entity, with a fresh key).
    pub(crate) fn sign(&self, mut params: CertificateParams) -> Result<Issued, TransportError> {
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert: cert.der().clone(),
            cert_pem: cert.pem(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
            key_pem: key.serialize_pem(),
        })
    }
}
