//! The JPKI trust store: CA certificates (the anchors and the user-authentication CAs) and the
//! CAs' revocation lists ([`super::crl`]), loaded from configured directories and reloaded
//! periodically, so a new CRL dropped into the directory takes effect without a restart.
//!
//! A certificate of the trust directory is kept as a CA only when it is one (basicConstraints
//! `cA=true`, keyUsage keyCertSign: [`super::profile`]) and chains to a self-signed anchor of the
//! directory; the others are listed in [`Snapshot::rejected`] with the reason. Validity is checked
//! when a card is verified, since time moves between reloads. A CA renewed under the same
//! distinguished name with a new key is a CA of its own: issuers are matched by key identifier.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use der::{Decode, Encode};
use rsa::pkcs8::DecodePublicKey;
use rsa::RsaPublicKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use x509_cert::Certificate;

use super::crl::{self, CrlState, Revocation};
use super::profile::Capabilities;
use super::signature::{signed_by, unix_seconds};

/// A CA certificate the store trusts, with the state of its revocation list.
pub struct CaCert {
    pub subject: Vec<u8>,
    /// The subject as text (RFC 4514), for logs and `/readyz`.
    pub name: String,
    pub issuer: Vec<u8>,
    pub key: RsaPublicKey,
    pub capabilities: Capabilities,
    pub not_before: i64,
    pub not_after: i64,
    pub cert: Certificate,
    pub der: Vec<u8>,
    pub revocation: Revocation,
    /// The index in [`Snapshot::cas`] of the CA whose key verified this certificate, found
    /// once at load (an anchor is its own), so checks walk the chain without RSA work.
    pub parent: usize,
}

impl CaCert {
    pub fn self_signed(&self) -> bool {
        self.subject == self.issuer
    }

    pub fn valid_at(&self, now: i64) -> bool {
        (self.not_before..=self.not_after).contains(&now)
    }
}

/// A certificate of the trust directory that is not used as a CA, and why.
#[derive(Debug)]
pub struct RejectedCa {
    pub file: String,
    pub reason: String,
}

/// A CA whose revocation list is not current, as `/readyz` reports it.
#[derive(Debug)]
pub struct UncheckedCa {
    pub name: String,
    pub state: CrlState,
}

/// One consistent view of the trust store.
#[derive(Default)]
pub struct Snapshot {
    pub cas: Vec<CaCert>,
    pub rejected: Vec<RejectedCa>,
    /// Seconds a CRL stays usable past its `nextUpdate`.
    pub crl_grace: i64,
    /// The certificates whose CA signature verified under this snapshot's CAs.
    pub verified: VerifiedIssuers,
}

/// The most certificates a snapshot remembers as verified (about 40 bytes each).
const VERIFIED_MAX: u64 = 500_000;

/// Certificates whose CA signature has verified, by the SHA-256 of their whole DER, with the
/// index (in [`Snapshot::cas`]) of the CA whose key verified it: a card read again is the same
/// bytes, so its chain signature is verified once per snapshot, not once per check. Only
/// successes are kept, and a reload starts an empty one (its CAs may differ); the validity,
/// revocation and the card's own signature are checked on every check.
pub struct VerifiedIssuers(moka::sync::Cache<[u8; 32], usize>);

impl Default for VerifiedIssuers {
    fn default() -> Self {
        VerifiedIssuers(moka::sync::Cache::new(VERIFIED_MAX))
    }
}

impl VerifiedIssuers {
    /// The CA that verified the certificate of this digest, if one did.
    pub fn get(&self, cert_digest: &[u8; 32]) -> Option<usize> {
        self.0.get(cert_digest)
    }

    pub fn insert(&self, cert_digest: [u8; 32], ca: usize) {
        self.0.insert(cert_digest, ca);
    }
}

impl Snapshot {
    /// The CAs that may have issued a certificate of issuer `name` (DER) whose
    /// authorityKeyIdentifier is `key_id`: same name and, when both carry one, same key
    /// identifier. The caller tries their keys: a CA renewed under one name has several.
    pub fn issuers(&self, name: &[u8], key_id: Option<&[u8]>) -> Vec<&CaCert> {
        self.cas
            .iter()
            .filter(|ca| {
                ca.subject == name
                    && match (key_id, ca.capabilities.key_id.as_deref()) {
                        (Some(wanted), Some(has)) => wanted == has,
                        _ => true,
                    }
            })
            .collect()
    }

    /// Every CA whose revocation list is not current at `now` (seconds).
    pub fn unchecked(&self, now: i64) -> Vec<UncheckedCa> {
        self.cas
            .iter()
            .filter_map(|ca| match ca.revocation.state(now, self.crl_grace) {
                CrlState::Current => None,
                state => Some(UncheckedCa {
                    name: ca.name.clone(),
                    state,
                }),
            })
            .collect()
    }

    /// Loads every `*.der`/`*.pem`/`*.crt` certificate of `trust_dir` and every CRL (`*.crl`,
    /// `*.crl.pem`) of `crl_dir`.
    ///
    /// # Errors
    /// An unreadable directory. Files that do not parse or verify are skipped with a warning.
    pub fn load(trust_dir: &Path, crl_dir: Option<&Path>, crl_grace: i64) -> anyhow::Result<Self> {
        let mut snapshot = Snapshot {
            crl_grace,
            ..Snapshot::default()
        };
        for path in files(trust_dir)? {
            let name = path.to_string_lossy();
            if name.ends_with(".crl") || name.ends_with(".crl.pem") || name.ends_with(".key.pem") {
                continue;
            }
            let file = path.display().to_string();
            match read_der::<CertificateDer>(&path).and_then(|der| ca_cert(&der)) {
                Ok(Ok(ca)) => snapshot.cas.push(ca),
                Ok(Err(reason)) => {
                    tracing::warn!(%file, reason, "not a CA certificate; not trusted as an issuer");
                    snapshot.rejected.push(RejectedCa {
                        file,
                        reason: reason.to_owned(),
                    });
                }
                Err(error) => {
                    tracing::debug!(%file, %error, "not a certificate; skipped")
                }
            }
        }
        // Only CAs that chain to a self-signed anchor in the store are kept.
        let anchored: Vec<bool> = snapshot
            .cas
            .iter()
            .map(|ca| chains_to_anchor(&snapshot.cas, ca))
            .collect();
        let mut anchored = anchored.into_iter();
        snapshot.cas.retain(|ca| {
            let keep = anchored.next().unwrap_or(false);
            if !keep {
                tracing::warn!(ca = %ca.name, "CA does not chain to a trusted anchor; not trusted");
            }
            keep
        });
        let parents: Vec<usize> = (0..snapshot.cas.len())
            .map(|i| parent_of(&snapshot.cas, i).unwrap_or(usize::MAX))
            .collect();
        for (ca, parent) in snapshot.cas.iter_mut().zip(parents) {
            ca.parent = parent;
        }
        if let Some(dir) = crl_dir {
            for path in files(dir)? {
                let name = path.to_string_lossy();
                if !(name.ends_with(".crl") || name.ends_with(".crl.pem")) {
                    continue;
                }
                match read_der::<CertificateRevocationListDer>(&path)
                    .and_then(|der| crl::apply(&mut snapshot.cas, &der))
                {
                    Ok(count) => tracing::debug!(file = %path.display(), count, "CRL loaded"),
                    Err(error) => {
                        tracing::warn!(file = %path.display(), error = format!("{error:#}"), "CRL refused")
                    }
                }
            }
        }
        Ok(snapshot)
    }
}

/// The index of the CA whose key verifies `cas[i]`'s signature (name and key identifier first).
fn parent_of(cas: &[CaCert], i: usize) -> Option<usize> {
    let ca = &cas[i];
    let tbs = super::signature::signed_part(&ca.der)?;
    let key_id = ca.capabilities.authority_key_id.as_deref();
    (0..cas.len()).find(|&j| {
        let candidate = &cas[j];
        candidate.subject == ca.issuer
            && match (key_id, candidate.capabilities.key_id.as_deref()) {
                (Some(wanted), Some(has)) => wanted == has,
                _ => true,
            }
            && signed_by(
                &candidate.key,
                &ca.cert.signature_algorithm,
                tbs,
                ca.cert.signature.as_bytes(),
            )
    })
}

/// Says which CAs' cards cannot be checked now, at each load.
fn warn_unchecked(snapshot: &Snapshot) {
    for ca in snapshot.unchecked(chrono::Utc::now().timestamp()) {
        tracing::warn!(ca = %ca.name, problem = ca.state.problem(), "no current CRL: card checks of this CA's certificates answer card.revocation_unavailable");
    }
}

fn chains_to_anchor(cas: &[CaCert], ca: &CaCert) -> bool {
    let mut current = ca;
    for _ in 0..4 {
        let Some(tbs) = super::signature::signed_part(&current.der) else {
            return false;
        };
        let issuer = cas
            .iter()
            .filter(|c| c.subject == current.issuer)
            .find(|c| {
                signed_by(
                    &c.key,
                    &current.cert.signature_algorithm,
                    tbs,
                    current.cert.signature.as_bytes(),
                )
            });
        let Some(issuer) = issuer else {
            return false;
        };
        if current.self_signed() && std::ptr::eq(issuer, current) {
            return true;
        }
        current = issuer;
    }
    false
}

/// The CA of a certificate's DER, or why it is not one.
fn ca_cert(der: &[u8]) -> anyhow::Result<Result<CaCert, &'static str>> {
    let cert = Certificate::from_der(der)?;
    let tbs = &cert.tbs_certificate;
    let capabilities = Capabilities::of(tbs).context("reading the extensions")?;
    if let Some(reason) = capabilities.why_not_ca() {
        return Ok(Err(reason));
    }
    if !super::profile::algorithms_agree(&cert) {
        return Ok(Err(
            "tbsCertificate.signature differs from signatureAlgorithm",
        ));
    }
    let spki = tbs.subject_public_key_info.to_der()?;
    Ok(Ok(CaCert {
        subject: tbs.subject.to_der()?,
        name: tbs.subject.to_string(),
        issuer: tbs.issuer.to_der()?,
        key: RsaPublicKey::from_public_key_der(&spki).context("not an RSA key")?,
        capabilities,
        not_before: unix_seconds(&tbs.validity.not_before),
        not_after: unix_seconds(&tbs.validity.not_after),
        cert,
        der: der.to_vec(),
        revocation: Revocation::Missing,
        parent: usize::MAX,
    }))
}

fn files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    Ok(out)
}

/// DER bytes of a file holding DER or a PEM block of `T`'s label (certificate or CRL).
fn read_der<T: PemObject + AsRef<[u8]>>(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path)?;
    // A DER certificate or CRL starts 30 81 or 30 82, never valid UTF-8: text is PEM.
    if std::str::from_utf8(&bytes).is_err() {
        return Ok(bytes);
    }
    Ok(T::from_pem_slice(&bytes)?.as_ref().to_vec())
}

/// The shared, periodically reloaded trust store. Empty when no trust directory is configured:
/// card endpoints then answer that the card path is not configured.
#[derive(Clone, Default)]
pub struct TrustStore {
    inner: Arc<RwLock<Option<Arc<Snapshot>>>>,
}

impl TrustStore {
    /// Loads now and, when `trust_dir` is set, reloads every `every` on the current runtime.
    /// With `revocation_checked` (the JPKI store) each load warns about the CAs without a
    /// current CRL; the card-surface anchors have no CRLs.
    ///
    /// # Errors
    /// The first load fails (a configured directory that cannot be read).
    pub fn start(
        trust_dir: Option<PathBuf>,
        crl_dir: Option<PathBuf>,
        crl_grace: i64,
        revocation_checked: bool,
        every: Duration,
    ) -> anyhow::Result<Self> {
        let store = TrustStore::default();
        let Some(trust_dir) = trust_dir else {
            return Ok(store);
        };
        let first = Snapshot::load(&trust_dir, crl_dir.as_deref(), crl_grace)?;
        tracing::info!(
            cas = first.cas.len(),
            rejected = first.rejected.len(),
            dir = %trust_dir.display(),
            "trust store loaded"
        );
        if revocation_checked {
            warn_unchecked(&first);
        }
        store.set(first);
        let reloader = store.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let (t, c) = (trust_dir.clone(), crl_dir.clone());
                match tokio::task::spawn_blocking(move || {
                    Snapshot::load(&t, c.as_deref(), crl_grace)
                })
                .await
                {
                    Ok(Ok(snapshot)) => {
                        if revocation_checked {
                            warn_unchecked(&snapshot);
                        }
                        reloader.set(snapshot)
                    }
                    Ok(Err(error)) => tracing::warn!(
                        error = format!("{error:#}"),
                        "trust store reload failed; keeping the previous one"
                    ),
                    Err(error) => tracing::warn!(%error, "trust store reload panicked"),
                }
            }
        });
        Ok(store)
    }

    fn set(&self, snapshot: Snapshot) {
        *self.inner.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(snapshot));
    }

    pub fn current(&self) -> Option<Arc<Snapshot>> {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_der_as_is_or_the_pem_block_of_its_kind() {
        let dir = std::env::temp_dir().join(format!("onshi-trust-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = [0x30u8, 0x82, 0x00, 0x01, 0xAB];
        let crl = [0x30u8, 0x81, 0x01, 0xCD];
        let der_file = dir.join("ca.der");
        std::fs::write(&der_file, cert).unwrap();
        let pem_file = dir.join("both.pem");
        let pem = card_reader::pem::encode("X509 CRL", &crl)
            + &card_reader::pem::encode("CERTIFICATE", &cert);
        std::fs::write(&pem_file, pem).unwrap();
        let text_file = dir.join("notes.txt");
        std::fs::write(&text_file, "not a certificate").unwrap();

        assert_eq!(read_der::<CertificateDer>(&der_file).unwrap(), cert);
        assert_eq!(read_der::<CertificateDer>(&pem_file).unwrap(), cert);
        assert_eq!(
            read_der::<CertificateRevocationListDer>(&pem_file).unwrap(),
            crl
        );
        assert!(read_der::<CertificateDer>(&text_file).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
