//! Per-purpose invisible health IDs (医療等ID): issue, resolve, re-issue.
//!
//! | module | owns |
//! |---|---|
//! | [`derive`] | the format: MAC input, 160 kept bits, Crockford base32 with a mod-37 check symbol |
//! | [`keys`] | the key sources: in-process master key with HKDF per purpose, or a PKCS#11 token |
//! | [`cli`] | `onshi purpose add / rotate-key / reissue` |
//! | [`rotation`] | the resumable job that re-issues a whole purpose under a new key version |
//!
//! An ID is derived, not drawn, so the same person, purpose, key version and epoch always give
//! the same ID; but it is also recorded, because only the record guarantees that no two persons
//! ever hold the same one (a derived ID already taken is re-derived with the next counter).
//! IDs are derived from a random per-person base (`person_bases`), not from the My Number link:
//! the link key plus a My Number must not be enough to compute an ID (as Germany's KVNR rule
//! forbids deriving one number from the other), and the internal person id is sequential, so a
//! leaked purpose key would let anyone enumerate every ID from it.

pub mod cli;
pub mod derive;
pub mod keys;
pub mod rotation;

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::{GenericClient, Pool};
use serde::Serialize;

use crate::audit::{AuditLog, DisclosureKind};
use crate::domain::{PartyId, PersonId};
use crate::eligibility::{decide, Answer, Query, Validity};
use crate::store::health_id::{self as store, Insert, IssuedRow, Purpose};
use derive::{HealthId, Inputs};
use keys::{KeySource, Keyed};

/// Re-derivations tried before giving up: with 160-bit IDs even one is astronomically rare, so
/// reaching this means the derivation is broken, not unlucky.
const MAX_COUNTER: u32 = 64;

/// A purpose's name: 1 to 63 of `a-z 0-9 . _ -`, starting with a letter or digit (it is part of
/// every ID's MAC input, so it is kept plain and unambiguous).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurposeName(String);

impl PurposeName {
    /// # Errors
    /// `format` for anything else.
    pub fn parse(s: &str) -> Result<Self, crate::domain::Invalid> {
        let ok_char = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b);
        let bytes = s.as_bytes();
        if (1..=63).contains(&bytes.len())
            && bytes[0].is_ascii_alphanumeric()
            && bytes.iter().all(|&b| ok_char(b))
        {
            Ok(PurposeName(s.to_owned()))
        } else {
            Err(crate::domain::Invalid {
                kind: crate::domain::Fault::Format,
                message: "A purpose name is 1 to 63 of a-z, 0-9, '.', '_', '-', starting with a letter or digit.",
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The outcomes of the health-ID use cases a caller must treat differently.
#[derive(Debug, thiserror::Error)]
pub enum HealthIdError {
    #[error("no purpose has this name")]
    UnknownPurpose,
    #[error("the party is not registered for this purpose")]
    NotAuthorized,
    #[error("no such health ID in this purpose")]
    NotFound,
    #[error("this health ID was revoked already")]
    AlreadyRevoked,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// An ID as handed out.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Issued {
    pub purpose: String,
    pub health_id: String,
    pub key_version: u32,
    pub epoch: u32,
}

impl Issued {
    fn new(purpose: &Purpose, row: &IssuedRow) -> Self {
        Issued {
            purpose: purpose.name.clone(),
            health_id: row.health_id.clone(),
            key_version: row.key_version,
            epoch: row.epoch,
        }
    }
}

/// What issuance answers: the eligibility check it rests on, and the ID when it is valid.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Issuance {
    pub eligibility: Answer,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_id: Option<Issued>,
}

/// What resolution answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Resolution {
    Active { eligibility: Box<Answer> },
    Revoked { revoked_at: DateTime<Utc> },
}

/// The purpose, if the party is registered for it.
async fn purpose_for(
    client: &impl GenericClient,
    name: &str,
    party_id: Option<PartyId>,
) -> Result<Purpose, HealthIdError> {
    let purpose = store::purpose_by_name(client, name)
        .await?
        .ok_or(HealthIdError::UnknownPurpose)?;
    if let Some(party_id) = party_id {
        if !store::is_party_of(client, purpose.id, party_id).await? {
            return Err(HealthIdError::NotAuthorized);
        }
    }
    Ok(purpose)
}

/// Registers a purpose (its name, key version and the parties that may use it).
///
/// # Errors
/// Database failures.
pub async fn register_purpose(
    client: &mut deadpool_postgres::Client,
    name: &PurposeName,
    key_version: u32,
    party_ids: &[PartyId],
) -> anyhow::Result<crate::store::health_id::NewPurpose> {
    crate::store::health_id::insert_purpose(client, name.as_str(), key_version, party_ids).await
}

/// Derives the ID for `inputs` (one MAC and the encoding).
///
/// # Errors
/// The key source failed.
pub fn derive_id(key: &Keyed<'_>, inputs: &Inputs<'_>) -> anyhow::Result<HealthId> {
    Ok(HealthId::from_mac(&derive::with_message(inputs, |m| {
        key.mac(m)
    })?))
}

/// Derives and records a new current ID, re-deriving with the next counter while the ID is taken.
///
/// # Errors
/// Database or key failures; [`MAX_COUNTER`] collisions in a row.
pub async fn issue_new(
    client: &impl GenericClient,
    key: &Keyed<'_>,
    purpose: &Purpose,
    key_version: u32,
    person_id: PersonId,
    epoch: u32,
) -> anyhow::Result<Option<IssuedRow>> {
    let base = store::base_for(client, person_id).await?;
    for counter in 0..MAX_COUNTER {
        let inputs = Inputs {
            purpose: &purpose.name,
            key_version,
            base: &base,
            epoch,
            counter,
        };
        let id = derive_id(key, &inputs)?;
        match store::try_insert(
            client,
            purpose.id,
            person_id,
            id.as_str(),
            key_version,
            epoch,
            counter,
        )
        .await?
        {
            Insert::Inserted => {
                return Ok(Some(IssuedRow {
                    row_id: 0,
                    person_id,
                    health_id: id.as_str().to_owned(),
                    key_version,
                    epoch,
                    counter,
                    revoked_at: None,
                }))
            }
            Insert::IdTaken => {
                tracing::info!(purpose = %purpose.name, counter, "health ID taken; re-deriving");
            }
            Insert::PersonHasCurrent => return Ok(None),
        }
    }
    anyhow::bail!("{MAX_COUNTER} health-ID collisions in a row")
}

/// Issues (or returns the current) ID of the person the query identifies, if their coverage is
/// valid on the date of care, to a party registered for the purpose. The check is audited.
///
/// # Errors
/// [`HealthIdError`].
pub async fn issue(
    pool: &Pool,
    audit: &AuditLog,
    proofs: &std::sync::Arc<crate::proof::ProofKey>,
    keys: &KeySource,
    party: &crate::parties::Party,
    purpose_name: &str,
    query: &Query,
) -> Result<Issuance, HealthIdError> {
    use anyhow::Context;
    let party_id = party.id;
    let client = pool.get().await.context("getting a database connection")?;
    let purpose = purpose_for(&client, purpose_name, Some(party_id)).await?;
    let mut found = crate::store::coverage::candidates(&client, &[query.lookup()])
        .await
        .context("looking up coverages")?;
    let candidates = found.pop().unwrap_or_default();
    let (validity, chosen) = decide(query.date_of_care, &candidates);
    let mut health_id = None;
    if let (Validity::Valid, Some(c)) = (validity, chosen) {
        let mut row = store::current(&client, purpose.id, c.person_id).await?;
        if row.is_none() {
            let key = keys.keyed(&purpose.name, purpose.key_version);
            row = issue_new(&client, &key, &purpose, purpose.key_version, c.person_id, 0).await?;
        }
        if row.is_none() {
            row = store::current(&client, purpose.id, c.person_id).await?;
        }
        let row = row.context("the person's current ID vanished")?;
        health_id = Some(Issued::new(&purpose, &row));
    }
    drop(client);
    let answer = answer_and_audit(
        audit,
        proofs,
        party,
        DisclosureKind::HealthIdIssue,
        (validity, chosen),
        Some(query),
        query.date_of_care,
    )
    .await?;
    Ok(Issuance {
        eligibility: answer,
        health_id,
    })
}

async fn answer_and_audit(
    audit: &AuditLog,
    proofs: &std::sync::Arc<crate::proof::ProofKey>,
    party: &crate::parties::Party,
    kind: DisclosureKind,
    (validity, chosen): (Validity, Option<&crate::eligibility::Candidate>),
    asked: Option<&Query>,
    date_of_care: NaiveDate,
) -> anyhow::Result<Answer> {
    let decision = crate::eligibility::decided(
        Utc::now(),
        party,
        kind,
        (validity, chosen),
        asked,
        date_of_care,
        // A health ID's answer never carries consent-bound details: it lists them as withheld.
        crate::eligibility::Shown::default(),
    );
    crate::eligibility::seal(audit, proofs, vec![decision])
        .await?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no answer for one check"))
}

/// Turns an ID back into the eligibility answer of its person on the date of care (or
/// "revoked"), for a party registered for the purpose. Another purpose's ID is [`NotFound`],
/// exactly like a random one.
///
/// [`NotFound`]: HealthIdError::NotFound
///
/// # Errors
/// [`HealthIdError`].
pub async fn resolve(
    pool: &Pool,
    audit: &AuditLog,
    proofs: &std::sync::Arc<crate::proof::ProofKey>,
    party: &crate::parties::Party,
    purpose_name: &str,
    health_id: &HealthId,
    date_of_care: NaiveDate,
) -> Result<Resolution, HealthIdError> {
    use anyhow::Context;
    let party_id = party.id;
    let client = pool.get().await.context("getting a database connection")?;
    let purpose = purpose_for(&client, purpose_name, Some(party_id)).await?;
    let row = store::by_health_id(&client, purpose.id, health_id.as_str())
        .await?
        .ok_or(HealthIdError::NotFound)?;
    if let Some(revoked_at) = row.revoked_at {
        return Ok(Resolution::Revoked { revoked_at });
    }
    let mut candidates = Vec::new();
    let query = person_query(&client, row.person_id, date_of_care).await?;
    if let Some(query) = &query {
        candidates = crate::store::coverage::candidates(&client, &[query.lookup()])
            .await
            .context("looking up coverages")?
            .pop()
            .unwrap_or_default();
        // A key and birth date shared with another person (twins without a branch number)
        // must not disclose the other one.
        candidates.retain(|c| c.person_id == row.person_id);
    }
    drop(client);
    let (validity, chosen) = decide(date_of_care, &candidates);
    let eligibility = answer_and_audit(
        audit,
        proofs,
        party,
        DisclosureKind::HealthIdResolve,
        (validity, chosen),
        query.as_ref(),
        date_of_care,
    )
    .await?;
    Ok(Resolution::Active {
        eligibility: Box::new(eligibility),
    })
}

/// The eligibility query for the person's most relevant coverage on the date.
async fn person_query(
    client: &impl GenericClient,
    person_id: PersonId,
    date_of_care: NaiveDate,
) -> anyhow::Result<Option<Query>> {
    use crate::domain::{BranchNumber, InsuredNumber, InsuredSymbol, InsurerNumber};
    let Some((insurer, symbol, number, branch, birth_date)) =
        store::latest_key(client, person_id, date_of_care).await?
    else {
        return Ok(None);
    };
    let stored = |what: &str| anyhow::anyhow!("a stored {what} does not parse");
    Ok(Some(Query {
        insurer_number: InsurerNumber::parse(&insurer).map_err(|_| stored("insurer number"))?,
        symbol: (!symbol.is_empty())
            .then(|| InsuredSymbol::parse(&symbol))
            .transpose()
            .map_err(|_| stored("symbol"))?,
        number: InsuredNumber::parse(&number).map_err(|_| stored("number"))?,
        branch: (!branch.is_empty())
            .then(|| BranchNumber::parse(&branch))
            .transpose()
            .map_err(|_| stored("branch"))?,
        birth_date,
        date_of_care,
        stated: crate::eligibility::Shown::default(),
    }))
}

/// Re-issues one person's ID in a purpose on suspected misuse: the ID is revoked (it then
/// resolves to "revoked") and the person gets a new one under the next epoch.
///
/// # Errors
/// [`HealthIdError`]: unknown purpose, an ID not of this purpose, or one revoked already.
pub async fn reissue(
    client: &mut deadpool_postgres::Client,
    keys: &KeySource,
    purpose_name: &str,
    health_id: &HealthId,
) -> Result<Issued, HealthIdError> {
    let tx = client.transaction().await.map_err(anyhow::Error::from)?;
    let purpose = purpose_for(&tx, purpose_name, None).await?;
    let row = store::by_health_id(&tx, purpose.id, health_id.as_str())
        .await?
        .ok_or(HealthIdError::NotFound)?;
    if row.revoked_at.is_some() || store::revoke(&tx, row.row_id).await?.is_none() {
        return Err(HealthIdError::AlreadyRevoked);
    }
    let key = keys.keyed(&purpose.name, purpose.key_version);
    let epoch = row.epoch + 1;
    let new = issue_new(
        &tx,
        &key,
        &purpose,
        purpose.key_version,
        row.person_id,
        epoch,
    )
    .await?
    .ok_or_else(|| anyhow::anyhow!("a current ID appeared during re-issuance"))?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(Issued::new(&purpose, &new))
}
