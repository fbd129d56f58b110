//! The JPKI trust store: CA certificates (the anchors and the user-authentication CAs) and the
//! CAs' revocation lists, loaded from configured directories and reloaded periodically, so a new
//! CRL dropped into the directory takes effect without a restart.
//!
//! A CRL is accepted only when its signature verifies with the key of a loaded CA whose subject
//! is the CRL's issuer; anything else in the directories is logged and ignored.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use der::{Decode, Encode};
use rsa::pkcs8::DecodePublicKey;
use rsa::RsaPublicKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use x509_cert::crl::CertificateList;
use x509_cert::Certificate;

use super::verify::{signed_by, unix_seconds};

/// A CA certificate the store trusts.
pub struct CaCert {
    pub subject: Vec<u8>,
    pub issuer: Vec<u8>,
    pub key: RsaPublicKey,
    pub not_before: i64,
    pub not_after: i64,
    pub cert: Certificate,
    pub der: Vec<u8>,
}

impl CaCert {
    pub fn self_signed(&self) -> bool {
        self.subject == self.issuer
    }
}

/// One consistent view of the trust store.
#[derive(Default)]
pub struct Snapshot {
    pub cas: Vec<CaCert>,
    /// Revoked serial numbers (their bytes) by the issuer's Name (DER).
    pub revoked: HashMap<Vec<u8>, HashSet<Vec<u8>>>,
}

impl Snapshot {
    pub fn ca_named(&self, name: &[u8]) -> Option<&CaCert> {
        self.cas.iter().find(|ca| ca.subject == name)
    }

    /// Loads every `*.der`/`*.pem`/`*.crt` certificate of `trust_dir` and every CRL (`*.crl`,
    /// `*.crl.pem`) of `crl_dir`.
    ///
    /// # Errors
    /// An unreadable directory. Files that do not parse or verify are skipped with a warning.
    pub fn load(trust_dir: &Path, crl_dir: Option<&Path>) -> anyhow::Result<Self> {
        let mut snapshot = Snapshot::default();
        for path in files(trust_dir)? {
            let name = path.to_string_lossy();
            if name.ends_with(".crl") || name.ends_with(".crl.pem") || name.ends_with(".key.pem") {
                continue;
            }
            match read_der::<CertificateDer>(&path).and_then(|der| ca_cert(&der)) {
                Ok(ca) => snapshot.cas.push(ca),
                Err(error) => {
                    tracing::debug!(file = %path.display(), %error, "not a CA certificate; skipped")
                }
            }
        }
        // Only CAs that chain to a self-signed anchor in the store are kept.
        let anchors: Vec<bool> = snapshot
            .cas
            .iter()
            .map(|ca| chains_to_anchor(&snapshot.cas, ca))
            .collect();
        let mut anchored = anchors.into_iter();
        snapshot.cas.retain(|_| anchored.next().unwrap_or(false));
        if let Some(dir) = crl_dir {
            for path in files(dir)? {
                let name = path.to_string_lossy();
                if !(name.ends_with(".crl") || name.ends_with(".crl.pem")) {
                    continue;
                }
                match read_der::<CertificateRevocationListDer>(&path)
                    .and_then(|der| snapshot.add_crl(&der))
                {
                    Ok(count) => tracing::debug!(file = %path.display(), count, "CRL loaded"),
                    Err(error) => {
                        tracing::warn!(file = %path.display(), error = format!("{error:#}"), "CRL skipped")
                    }
                }
            }
        }
        Ok(snapshot)
    }

    fn add_crl(&mut self, der: &[u8]) -> anyhow::Result<usize> {
        let crl = CertificateList::from_der(der).context("parsing the CRL")?;
        let issuer = crl.tbs_cert_list.issuer.to_der()?;
        let ca = self
            .ca_named(&issuer)
            .context("the CRL's issuer is not a trusted CA")?;
        let tbs = super::verify::signed_part(der).context("the CRL is not a signed structure")?;
        anyhow::ensure!(
            signed_by(
                &ca.key,
                &crl.signature_algorithm,
                tbs,
                crl.signature.as_bytes()
            ),
            "the CRL's signature does not verify"
        );
        if let Some(next) = crl.tbs_cert_list.next_update {
            if unix_seconds(&next) < chrono::Utc::now().timestamp() {
                tracing::warn!("a CRL is past its next update; load a newer one");
            }
        }
        let serials = self.revoked.entry(issuer).or_default();
        let list = crl.tbs_cert_list.revoked_certificates.unwrap_or_default();
        for revoked in &list {
            serials.insert(revoked.serial_number.as_bytes().to_vec());
        }
        Ok(list.len())
    }
}

fn chains_to_anchor(cas: &[CaCert], ca: &CaCert) -> bool {
    let mut current = ca;
    for _ in 0..4 {
        let Some(issuer) = cas.iter().find(|c| c.subject == current.issuer) else {
            return false;
        };
        let Some(tbs) = super::verify::signed_part(&current.der) else {
            return false;
        };
        if !signed_by(
            &issuer.key,
            &current.cert.signature_algorithm,
            tbs,
            current.cert.signature.as_bytes(),
        ) {
            return false;
        }
        if current.self_signed() {
            return true;
        }
        current = issuer;
    }
    false
}

fn ca_cert(der: &[u8]) -> anyhow::Result<CaCert> {
    let cert = Certificate::from_der(der)?;
    let tbs = &cert.tbs_certificate;
    let spki = tbs.subject_public_key_info.to_der()?;
    Ok(CaCert {
        subject: tbs.subject.to_der()?,
        issuer: tbs.issuer.to_der()?,
        key: RsaPublicKey::from_public_key_der(&spki).context("not an RSA key")?,
        not_before: unix_seconds(&tbs.validity.not_before),
        not_after: unix_seconds(&tbs.validity.not_after),
        cert,
        der: der.to_vec(),
    })
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
    ///
    /// # Errors
    /// The first load fails (a configured directory that cannot be read).
    pub fn start(
        trust_dir: Option<PathBuf>,
        crl_dir: Option<PathBuf>,
        every: Duration,
    ) -> anyhow::Result<Self> {
        let store = TrustStore::default();
        let Some(trust_dir) = trust_dir else {
            return Ok(store);
        };
        let first = Snapshot::load(&trust_dir, crl_dir.as_deref())?;
        tracing::info!(
            cas = first.cas.len(),
            revoked_lists = first.revoked.len(),
            "JPKI trust store loaded"
        );
        store.set(first);
        let reloader = store.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let (t, c) = (trust_dir.clone(), crl_dir.clone());
                match tokio::task::spawn_blocking(move || Snapshot::load(&t, c.as_deref())).await {
                    Ok(Ok(snapshot)) => reloader.set(snapshot),
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
