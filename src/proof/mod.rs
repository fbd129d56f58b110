//! The proof of check: a signature anyone can verify offline that onshi gave this answer, to
//! this party, about this coverage, for this date of care.
//!
//! Every eligibility answer (by number, in a batch, by card, and the answers inside health-ID
//! issuance and resolution) carries `proof`, a compact JWS (`alg` `EdDSA`, Ed25519; `typ`
//! [`jws::TYPE`]; `kid` the RFC 7638 thumbprint of the public key) over [`Claims`]. A claims
//! system attaches it to a claim; the insurer checks it with the public keys of
//! `GET /.well-known/jwks.json` (or a copy saved earlier: `onshi proof verify --jwks FILE`, or
//! any JOSE library) and recomputes [`coverage_digest`] from the key and birth date printed on
//! the claim. The proof holds no name and no address: the digest names the coverage only to
//! whoever already knows its key and the holder's birth date.
//!
//! **Keys and rotation.** The signing key is a file key (development) or an Ed25519 pair made in
//! the PKCS#11 token ([`key`]). A server publishes its key in `proof_keys` when it starts
//! ([`publish`]); the JWKS lists every key ever published, so that after a rotation (start the
//! servers with a new key) the proofs signed with the old one still verify. Proofs carry no
//! expiry: a claim is checked months after the care.
//!
//! **Cost.** One signature per answer: in process an Ed25519 signature (`benches/proof.rs`: 52 µs
//! unoptimised on the shared 2-core machine); in the token one `CKM_EDDSA` call through the
//! pair's single session (286 µs in SoftHSM2), so the token's calls are serialized. A batch
//! signs off the async threads while its audit records are being made durable
//! (`crate::eligibility::seal`).

pub mod cli;
pub mod jws;
pub mod key;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub use key::{ProofKey, ProofSettings};

/// What a proof says: the payload of its JWS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// The answer's `check_id` (the audit record's).
    pub check_id: Uuid,
    /// When onshi answered, seconds since the epoch.
    pub iat: i64,
    /// The asking facility's code, when a facility asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facility_code: Option<String>,
    /// The asking party's id, when the party is not a facility (a claims system).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub party_id: Option<i64>,
    /// The 資格有効性 code answered.
    pub validity: i16,
    pub date_of_care: NaiveDate,
    /// [`coverage_digest`] of the coverage the answer shows, else of the key asked about;
    /// absent only when no key is known (a card whose holder has no coverage on that date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage_digest: Option<String>,
}

/// Who asked, as a proof names them: a facility by its code, any other party by its id.
pub fn asking_party(party: &crate::parties::Party) -> (Option<String>, Option<i64>) {
    match (&party.facility_code, party.role) {
        (Some(code), crate::parties::Role::Facility) => (Some(code.clone()), None),
        _ => (None, Some(party.id.get())),
    }
}

/// base64url (no padding) of the SHA-256 of `insurer_number:symbol:number:branch:birth_date`,
/// each in the form onshi matches on: the insurer number in its 8 digits (国民健康保険's 6 with
/// `00` before them), symbol and number with full-width letters and digits folded to ASCII
/// (kana and kanji as written), an absent symbol or branch as the empty string, the birth date
/// `YYYY-MM-DD`. For example `33120015:12:3456:01:1980-04-01`.
pub fn coverage_digest(
    insurer_number: &str,
    symbol: &str,
    number: &str,
    branch: &str,
    birth_date: NaiveDate,
) -> String {
    let text = format!(
        "{insurer_number}:{symbol}:{number}:{branch}:{}",
        birth_date.format("%Y-%m-%d")
    );
    B64URL.encode(Sha256::digest(text.as_bytes()))
}

impl Claims {
    /// Signs the claims with `key`.
    ///
    /// # Errors
    /// The token failed.
    pub fn sign(&self, key: &ProofKey) -> anyhow::Result<String> {
        key.sign(&serde_json::to_vec(self).expect("claims always serialize"))
    }
}

/// Publishes the server's key in `proof_keys` if it is new, logging when it was.
///
/// # Errors
/// The database failed.
pub async fn publish(pool: &deadpool_postgres::Pool, key: &ProofKey) -> anyhow::Result<()> {
    use anyhow::Context;
    let client = pool.get().await.context("getting a database connection")?;
    if crate::store::proof_keys::publish(&client, key.kid(), &key.public_key()).await? {
        tracing::info!(kid = key.kid(), "published a new proof signing key");
    }
    Ok(())
}

/// The JWK Set of every published key, the most recent first.
///
/// # Errors
/// The database failed.
pub async fn published(
    client: &impl deadpool_postgres::GenericClient,
) -> anyhow::Result<jws::Jwks> {
    let keys = crate::store::proof_keys::published(client).await?;
    Ok(jws::Jwks {
        keys: keys
            .iter()
            .map(|k| jws::Jwk::ed25519(&k.public_key))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_of_the_documented_text() {
        let birth = "1980-04-01".parse().unwrap();
        let expected = B64URL.encode(Sha256::digest(b"33120015:12:3456:01:1980-04-01"));
        assert_eq!(
            coverage_digest("33120015", "12", "3456", "01", birth),
            expected
        );
        assert_ne!(
            coverage_digest("33120015", "", "3456", "01", birth),
            expected
        );
        assert_eq!(expected.len(), 43);
    }

    #[test]
    fn claims_verify_and_omit_what_is_absent() {
        let key = ProofKey::from_file_key(&[3; 32]).unwrap();
        let claims = Claims {
            check_id: Uuid::nil(),
            iat: 1_764_000_000,
            facility_code: Some("0110113719".into()),
            party_id: None,
            validity: 4,
            date_of_care: "2026-11-24".parse().unwrap(),
            coverage_digest: None,
        };
        let token = claims.sign(&key).unwrap();
        let jwks = jws::Jwks {
            keys: vec![jws::Jwk::ed25519(&key.public_key())],
        };
        let (header, payload) = jws::verify(&token, &jwks).unwrap();
        assert_eq!(header.kid, key.kid());
        let text = String::from_utf8(payload).unwrap();
        assert!(
            !text.contains("party_id") && !text.contains("coverage_digest"),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Claims>(&text).unwrap(), claims);
    }
}
