//! Revocation lists, failing closed. Each CA of the trust store holds the state of its CRL:
//! none loaded, one that was refused (and why), or a verified one with its `nextUpdate`. A card
//! is checked only against a verified CRL that is still current at the time of the check
//! (`nextUpdate` plus the configured grace); anything else makes the check answer that
//! revocation cannot be determined, never "not revoked".
//!
//! A CRL is applied to the CA that signed it: among the CAs named as its issuer (and, when it has
//! an authorityKeyIdentifier, with that key identifier), the one whose key verifies its
//! signature. That CA must be allowed to sign CRLs (keyUsage cRLSign). Indirect CRLs and delta
//! CRLs are not supported: the JPKI publishes neither.

use std::collections::HashSet;

use anyhow::Context;
use der::{Decode, Encode};
use x509_cert::crl::CertificateList;

use super::profile::crl_authority_key_id;
use super::signature::{signed_by, signed_part, unix_seconds};
use super::trust::CaCert;

/// A verified revocation list.
#[derive(Debug)]
pub struct Crl {
    pub this_update: i64,
    pub next_update: i64,
    /// Revoked serial numbers (their bytes).
    pub revoked: HashSet<Vec<u8>>,
}

/// What is known about a CA's revocation list.
#[derive(Debug, Default)]
pub enum Revocation {
    /// No CRL of this CA was found.
    #[default]
    Missing,
    /// A CRL naming this CA was found but refused.
    Refused(String),
    Verified(Crl),
}

/// The state of a CA's CRL at one instant, as `/readyz` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CrlState {
    Current,
    Missing,
    Refused(String),
    /// Verified, but past its `nextUpdate` plus the grace.
    Stale {
        next_update: i64,
    },
}

impl CrlState {
    pub fn problem(&self) -> &'static str {
        match self {
            CrlState::Current => "current",
            CrlState::Missing => "missing",
            CrlState::Refused(_) => "not_verified",
            CrlState::Stale { .. } => "stale",
        }
    }
}

impl Revocation {
    /// The state at `now` (seconds), allowing `grace` seconds past `nextUpdate`.
    pub fn state(&self, now: i64, grace: i64) -> CrlState {
        match self {
            Revocation::Missing => CrlState::Missing,
            Revocation::Refused(why) => CrlState::Refused(why.clone()),
            Revocation::Verified(crl) if now > crl.next_update.saturating_add(grace) => {
                CrlState::Stale {
                    next_update: crl.next_update,
                }
            }
            Revocation::Verified(_) => CrlState::Current,
        }
    }

    /// The verified list when it is current at `now`.
    pub fn current(&self, now: i64, grace: i64) -> Option<&Crl> {
        match (self, self.state(now, grace)) {
            (Revocation::Verified(crl), CrlState::Current) => Some(crl),
            _ => None,
        }
    }
}

/// Applies one CRL file's DER to the CA that signed it. Returns how many serials it revokes.
///
/// # Errors
/// Why the CRL was refused; the CAs it names are marked with the reason unless they already hold
/// a verified list.
pub fn apply(cas: &mut [CaCert], der_bytes: &[u8]) -> anyhow::Result<usize> {
    let crl = CertificateList::from_der(der_bytes).context("parsing the CRL")?;
    let issuer = crl.tbs_cert_list.issuer.to_der()?;
    let key_id = crl_authority_key_id(crl.tbs_cert_list.crl_extensions.as_deref())
        .context("reading the CRL's authorityKeyIdentifier")?;
    let named: Vec<usize> = (0..cas.len())
        .filter(|&i| {
            cas[i].subject == issuer
                && key_id
                    .as_ref()
                    .is_none_or(|k| cas[i].capabilities.key_id.as_ref() == Some(k))
        })
        .collect();
    anyhow::ensure!(!named.is_empty(), "the CRL's issuer is not a trusted CA");
    let refuse = |cas: &mut [CaCert], why: &str| {
        for &i in &named {
            if !matches!(cas[i].revocation, Revocation::Verified(_)) {
                cas[i].revocation = Revocation::Refused(why.to_owned());
            }
        }
        anyhow::anyhow!("{why}")
    };
    let tbs = signed_part(der_bytes).context("the CRL is not a signed structure")?;
    let same_algorithm =
        crl.tbs_cert_list.signature.to_der()? == crl.signature_algorithm.to_der()?;
    let signer = named.iter().copied().find(|&i| {
        same_algorithm
            && signed_by(
                &cas[i].key,
                &crl.signature_algorithm,
                tbs,
                crl.signature.as_bytes(),
            )
    });
    let Some(signer) = signer else {
        return Err(refuse(cas, "the CRL's signature does not verify"));
    };
    if !cas[signer].capabilities.signs_crls() {
        return Err(refuse(
            cas,
            "the CRL's signer may not sign CRLs (keyUsage cRLSign)",
        ));
    }
    let Some(next_update) = crl.tbs_cert_list.next_update else {
        return Err(refuse(
            cas,
            "the CRL has no nextUpdate, so it is never known to be current",
        ));
    };
    let this_update = unix_seconds(&crl.tbs_cert_list.this_update);
    let list = crl.tbs_cert_list.revoked_certificates.unwrap_or_default();
    let fresh = Crl {
        this_update,
        next_update: unix_seconds(&next_update),
        revoked: list
            .iter()
            .map(|r| r.serial_number.as_bytes().to_vec())
            .collect(),
    };
    // Of two verified lists of one CA, the later one counts.
    let keep_old = matches!(&cas[signer].revocation, Revocation::Verified(old) if old.this_update >= this_update);
    if !keep_old {
        cas[signer].revocation = Revocation::Verified(fresh);
    }
    Ok(list.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(next_update: i64) -> Revocation {
        Revocation::Verified(Crl {
            this_update: 0,
            next_update,
            revoked: HashSet::new(),
        })
    }

    #[test]
    fn a_list_is_current_until_next_update_plus_grace() {
        assert_eq!(verified(100).state(100, 0), CrlState::Current);
        assert_eq!(
            verified(100).state(101, 0),
            CrlState::Stale { next_update: 100 }
        );
        assert_eq!(verified(100).state(160, 60), CrlState::Current);
        assert_eq!(verified(100).state(161, 60).problem(), "stale");
        assert!(verified(100).current(101, 0).is_none());
        assert_eq!(Revocation::Missing.state(0, 0), CrlState::Missing);
        assert!(Revocation::Refused("x".into())
            .current(0, i64::MAX)
            .is_none());
    }
}
