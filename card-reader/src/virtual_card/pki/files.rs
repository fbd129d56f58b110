//! Writing the test PKI to a directory (`onshi-virtual-card pki`, `ops/demo`) and reading its
//! keys back.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::RsaPrivateKey;
use serde_json::json;

use super::TestPki;

impl TestPki {
    /// Writes every certificate as `<name>.der` and `<name>.pem`, every key as
    /// `<name>.key.pem` (PKCS#8), the CRL as `user-auth-ca.crl` (DER) and
    /// `user-auth-ca.crl.pem`, and `manifest.json` listing them; returns the paths.
    ///
    /// # Errors
    /// File system errors.
    pub fn write_to(&self, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
        fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let mut written = Vec::new();
        let mut write = |file: String, bytes: &[u8]| -> anyhow::Result<()> {
            let path = dir.join(&file);
            fs::write(&path, bytes).with_context(|| format!("write {}", path.display()))?;
            written.push(path);
            Ok(())
        };
        let mut certs = Vec::new();
        for c in self.all() {
            write(format!("{}.der", c.name), &c.cert_der)?;
            write(
                format!("{}.pem", c.name),
                crate::pem::encode("CERTIFICATE", &c.cert_der).as_bytes(),
            )?;
            let key = c.key.to_pkcs8_pem(LineEnding::LF)?;
            write(format!("{}.key.pem", c.name), key.as_bytes())?;
            certs.push(json!({
                "name": c.name,
                "status": status_of(c.name),
                "subject": c.subject,
                "serial": c.serial_hex,
                "not_before": c.not_before,
                "not_after": c.not_after,
                "der": format!("{}.der", c.name),
                "pem": format!("{}.pem", c.name),
                "key": format!("{}.key.pem", c.name),
            }));
        }
        write("user-auth-ca.crl".into(), &self.crl_der)?;
        let crl_pem = crate::pem::encode("X509 CRL", &self.crl_der);
        write("user-auth-ca.crl.pem".into(), crl_pem.as_bytes())?;
        write("root-ca.crl".into(), &self.root_crl_der)?;
        write("user-auth-ca-renewed.crl".into(), &self.renewed_crl_der)?;
        let key = self.surface_card_key.to_pkcs8_pem(LineEnding::LF)?;
        write("surface-card.key.pem".into(), key.as_bytes())?;
        let manifest = json!({
            "description": "Synthetic test PKI of onshi: no real person, no real CA.",
            "certificates": certs,
            "other_crls": ["root-ca.crl", "user-auth-ca-renewed.crl"],
            "surface_card_key": "surface-card.key.pem",
            "crl": {
                "der": "user-auth-ca.crl",
                "pem": "user-auth-ca.crl.pem",
                "issuer": self.user_ca.subject,
                "revoked_serials": [self.person_revoked.serial_hex],
            },
        });
        write(
            "manifest.json".into(),
            serde_json::to_string_pretty(&manifest)?.as_bytes(),
        )?;
        Ok(written)
    }
}

fn status_of(name: &str) -> &'static str {
    match name {
        "person-valid" | "person-valid-2" => "valid",
        "person-expired" => "expired",
        "person-revoked" => "revoked",
        "person-renewed" => "valid",
        "foreign-person" | "person-of-not-a-ca" => "foreign",
        "surface-issuer" => "surface issuer",
        _ => "ca",
    }
}

/// Reads a PKCS#8 PEM private key, as `write_to` writes them.
///
/// # Errors
/// If the file cannot be read or is not an RSA PKCS#8 key.
pub fn read_key(path: &Path) -> anyhow::Result<RsaPrivateKey> {
    let pem = fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    RsaPrivateKey::from_pkcs8_pem(&pem)
        .with_context(|| format!("{} is not a PKCS#8 RSA key", path.display()))
}
