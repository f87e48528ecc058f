//! The identity in a verified client certificate, for SASL EXTERNAL.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The subject common name of the certificate `der`, else its first DNS subject alternative
/// name; `None` if it has neither or does not parse (rustls has verified it by now, so that
/// would be a certificate x509-parser reads differently, and EXTERNAL then has no identity).
pub(crate) fn client_subject(der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let common_name = cert
        .subject()
        .iter_common_name()
        .find_map(|attribute| attribute.as_str().ok())
        .map(str::to_owned);
    common_name.or_else(|| first_dns_name(&cert))
}

fn first_dns_name(cert: &X509Certificate<'_>) -> Option<String> {
    let names = cert.subject_alternative_name().ok()??;
    names
        .value
        .general_names
        .iter()
        .find_map(|name| match name {
            GeneralName::DNSName(dns) => Some((*dns).to_owned()),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;
    use crate::pki::Ca;

    #[test]
    fn the_common_name_is_the_subject() {
        let ca = Ca::generate("test CA").unwrap();
        let client = ca.issue_client("app-one").unwrap();
        assert_eq!(client_subject(&client.cert).as_deref(), Some("app-one"));
    }

    #[test]
    fn without_a_common_name_the_first_dns_name_is_the_subject() {
        let ca = Ca::generate("test CA").unwrap();
        // `issue_server` puts the first name in the CN; an empty-CN certificate needs
        // rcgen directly.
        let mut params =
            rcgen::CertificateParams::new(vec!["svc.example".to_owned(), "other".to_owned()])
                .unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        let der = ca.sign(params).unwrap().cert;
        assert_eq!(client_subject(&der).as_deref(), Some("svc.example"));
    }

    #[test]
    fn garbage_has_no_subject() {
        assert_eq!(client_subject(b"not a certificate"), None);
        assert_eq!(client_subject(&[]), None);
    }
}
