//! Parties, their tokens (as hashes), the insurer numbers they own and the fingerprints of the
//! client certificates bound to them.

use anyhow::Context;
use deadpool_postgres::GenericClient;

use std::collections::BTreeSet;

use onshi_domain::{
    CertFingerprint, FacilityCode, InsurerNumber, PartyId, PublicExpensePayerNumber, Role,
};

/// A party to insert.
#[derive(Debug)]
pub struct NewPartyRow<'a> {
    pub role: Role,
    pub name: Option<&'a str>,
    pub facility_code: Option<&'a FacilityCode>,
    pub insurer_numbers: &'a [InsurerNumber],
    /// The 公費負担者番号s a payer owns; empty for other roles.
    pub payer_numbers: &'a [PublicExpensePayerNumber],
    /// When the token stops working; `None` for no expiry.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Fingerprints of the client certificates bound to the token; empty for none.
    pub client_certificates: &'a [CertFingerprint],
}

/// A registered party as stored.
#[derive(Clone, Debug)]
pub struct PartyRow {
    pub id: PartyId,
    pub role: Role,
    pub facility_code: Option<String>,
    /// The insurer numbers an insurer owns (canonical 8-digit form); empty for other roles.
    pub insurer_numbers: BTreeSet<String>,
    /// The 公費負担者番号s a payer owns; empty for other roles.
    pub payer_numbers: BTreeSet<String>,
    /// The TLS client certificates the party must present one of; empty: the token alone.
    pub certificates: Vec<CertFingerprint>,
}

/// Registers a party with the hash of its new token and its client certificates; returns its
/// id. Insurer numbers the database does not know yet are registered as insurers on the way.
///
/// # Errors
/// Database failures.
pub async fn insert(
    client: &mut tokio_postgres::Client,
    party: &NewPartyRow<'_>,
    token_hash: &[u8; 32],
) -> anyhow::Result<PartyId> {
    let tx = client.transaction().await?;
    let row = tx
        .query_one(
            "insert into parties (role, name, facility_code, token_hash, expires_at)
             values ($1, $2, $3, $4, $5) returning id",
            &[
                &party.role.as_str(),
                &party.name,
                &party.facility_code.as_ref().map(|c| c.as_str()),
                &token_hash.as_slice(),
                &party.expires_at,
            ],
        )
        .await
        .context("inserting the party")?;
    let id: PartyId = row.get(0);
    for number in party.insurer_numbers {
        tx.execute(
            "insert into insurers (insurer_number, name) values ($1, $2)
             on conflict (insurer_number) do nothing",
            &[&number.as_str(), &party.name],
        )
        .await?;
        tx.execute(
            "insert into party_insurers (party_id, insurer_number) values ($1, $2)",
            &[&id, &number.as_str()],
        )
        .await?;
    }
    for number in party.payer_numbers {
        tx.execute(
            "insert into party_payers (party_id, payer_number) values ($1, $2)",
            &[&id, &number.as_str()],
        )
        .await
        .context("registering a payer number")?;
    }
    for fingerprint in party.client_certificates {
        tx.execute(
            "insert into party_certificates (party_id, fingerprint) values ($1, $2)
             on conflict do nothing",
            &[&id, &fingerprint.as_bytes().as_slice()],
        )
        .await
        .context("registering a client certificate")?;
    }
    tx.commit().await?;
    Ok(id)
}

/// The active (not revoked, not expired) party holding this token hash, with its client
/// certificates.
///
/// # Errors
/// Database failures.
pub async fn by_token_hash(
    client: &impl GenericClient,
    token_hash: &[u8; 32],
) -> anyhow::Result<Option<PartyRow>> {
    let statement = client
        .prepare_cached(
            "select p.id, p.role, p.facility_code,
                    coalesce(array_agg(pi.insurer_number) filter (where pi.insurer_number is not null), '{}'),
                    array(select pc.fingerprint from party_certificates pc where pc.party_id = p.id),
                    array(select pp.payer_number from party_payers pp where pp.party_id = p.id)
             from parties p left join party_insurers pi on pi.party_id = p.id
             where p.token_hash = $1 and p.revoked_at is null
               and (p.expires_at is null or p.expires_at > now())
             group by p.id",
        )
        .await?;
    let Some(row) = client
        .query_opt(&statement, &[&token_hash.as_slice()])
        .await?
    else {
        return Ok(None);
    };
    let role: &str = row.get(1);
    let insurer_numbers: Vec<String> = row.get(3);
    let fingerprints: Vec<&[u8]> = row.get(4);
    let payer_numbers: Vec<String> = row.get(5);
    Ok(Some(PartyRow {
        id: row.get(0),
        role: Role::parse(role).context("unknown role in the parties table")?,
        facility_code: row.get(2),
        insurer_numbers: insurer_numbers.into_iter().collect(),
        payer_numbers: payer_numbers.into_iter().collect(),
        certificates: fingerprints
            .into_iter()
            .map(CertFingerprint::from_stored)
            .collect::<Result<_, _>>()
            .context("a malformed fingerprint in party_certificates")?,
    }))
}

/// Revokes a party's token now; returns when it was revoked, or `None` for an unknown party.
/// Revoking twice keeps the first time.
///
/// # Errors
/// Database failures.
pub async fn revoke(
    client: &impl tokio_postgres::GenericClient,
    party_id: PartyId,
) -> anyhow::Result<Option<chrono::DateTime<chrono::Utc>>> {
    // Announced in the same statement (delivered at commit), so that every server drops the
    // party from its credential cache at once.
    let row = client
        .query_opt(
            "with revoked as (
                 update parties set revoked_at = coalesce(revoked_at, now()) where id = $1
                 returning id, revoked_at)
             select revoked_at, pg_notify($2, id::text) from revoked",
            &[&party_id, &super::limits::PARTY_CHANNEL],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}
