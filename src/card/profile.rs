//! What a certificate is allowed to be, read from its extensions: a CA (basicConstraints
//! `cA=true` and keyUsage keyCertSign), a CRL signer (keyUsage cRLSign), or an end entity that
//! signs (keyUsage digitalSignature, not a CA). RFC 5280 §4.2.1.3 and §4.2.1.9: a certificate
//! without basicConstraints is not a CA, and one without keyUsage is refused for every use here,
//! as the JPKI profile sets keyUsage on every certificate it issues.

use der::{Decode, Encode};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::{Certificate, TbsCertificate};

/// The extensions that decide what a certificate may do, and its key identifiers.
#[derive(Clone, Debug, Default)]
pub struct Capabilities {
    /// basicConstraints `cA`; `None` when the extension is absent.
    pub ca: Option<bool>,
    /// keyUsage; `None` when the extension is absent.
    pub key_usage: Option<KeyUsage>,
    /// subjectKeyIdentifier.
    pub key_id: Option<Vec<u8>>,
    /// authorityKeyIdentifier's keyIdentifier.
    pub authority_key_id: Option<Vec<u8>>,
}

impl Capabilities {
    /// Reads them from a certificate.
    ///
    /// # Errors
    /// A malformed or repeated extension of these kinds.
    pub fn of(tbs: &TbsCertificate) -> Result<Self, der::Error> {
        Ok(Capabilities {
            ca: tbs.get::<BasicConstraints>()?.map(|(_, bc)| bc.ca),
            key_usage: tbs.get::<KeyUsage>()?.map(|(_, ku)| ku),
            key_id: tbs
                .get::<SubjectKeyIdentifier>()?
                .map(|(_, ski)| ski.0.as_bytes().to_vec()),
            authority_key_id: tbs
                .get::<AuthorityKeyIdentifier>()?
                .and_then(|(_, aki)| aki.key_identifier.map(|k| k.as_bytes().to_vec())),
        })
    }

    fn has(&self, usage: KeyUsages) -> bool {
        self.key_usage.is_some_and(|ku| ku.0.contains(usage))
    }

    /// May issue certificates: `cA=true` and keyCertSign.
    pub fn is_ca(&self) -> bool {
        self.ca == Some(true) && self.has(KeyUsages::KeyCertSign)
    }

    /// May sign revocation lists.
    pub fn signs_crls(&self) -> bool {
        self.is_ca() && self.has(KeyUsages::CRLSign)
    }

    /// An end entity whose key signs: digitalSignature and not a CA.
    pub fn is_signing_leaf(&self) -> bool {
        self.ca != Some(true) && self.has(KeyUsages::DigitalSignature)
    }

    /// Why this is no CA, for the operator's log; `None` when it is one.
    pub fn why_not_ca(&self) -> Option<&'static str> {
        match (self.ca, self.has(KeyUsages::KeyCertSign)) {
            (None, _) => Some("no basicConstraints extension"),
            (Some(false), _) => Some("basicConstraints cA is false"),
            (Some(true), false) if self.key_usage.is_none() => Some("no keyUsage extension"),
            (Some(true), false) => Some("keyUsage lacks keyCertSign"),
            (Some(true), true) => None,
        }
    }
}

/// The keyIdentifier of a CRL's authorityKeyIdentifier extension, if it has one.
///
/// # Errors
/// A malformed extension.
pub fn crl_authority_key_id(
    extensions: Option<&[Extension]>,
) -> Result<Option<Vec<u8>>, der::Error> {
    let Some(found) = extensions
        .unwrap_or(&[])
        .iter()
        .find(|e| e.extn_id == <AuthorityKeyIdentifier as der::oid::AssociatedOid>::OID)
    else {
        return Ok(None);
    };
    let aki = AuthorityKeyIdentifier::from_der(found.extn_value.as_bytes())?;
    Ok(aki.key_identifier.map(|k| k.as_bytes().to_vec()))
}

/// `tbsCertificate.signature` equals `signatureAlgorithm` (RFC 5280 §4.1.1.2): a certificate
/// where they differ was assembled, not issued.
pub fn algorithms_agree(cert: &Certificate) -> bool {
    match (
        cert.tbs_certificate.signature.to_der(),
        cert.signature_algorithm.to_der(),
    ) {
        (Ok(inner), Ok(outer)) => inner == outer,
        _ => false,
    }
}
