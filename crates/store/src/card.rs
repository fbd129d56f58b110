//! Challenges, certificate links and consents of the My Number card path.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use onshi_domain::{PartyId, PersonId};
use uuid::Uuid;

/// Whom a challenge was issued to, and so which use of the card it can prove.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// A party's reader (a facility's card check or card link).
    Party(PartyId),
    /// The card's holder, reading their own access log with no party involved.
    Holder,
}

/// Records a new challenge for its audience.
///
/// # Errors
/// Database failures.
pub async fn insert_challenge(
    client: &impl GenericClient,
    id: Uuid,
    audience: Audience,
    nonce: &[u8; 32],
    expires_at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let statement = client
        .prepare_cached(
            "insert into challenges (id, party_id, audience, nonce, expires_at)
             values ($1, $2, $3, $4, $5)",
        )
        .await?;
    let (party_id, audience) = columns_of(audience);
    client
        .execute(
            &statement,
            &[&id, &party_id, &audience, &nonce.as_slice(), &expires_at],
        )
        .await?;
    Ok(())
}

/// How an [`Audience`] is stored: `challenges.party_id` and `challenges.audience`.
fn columns_of(audience: Audience) -> (Option<PartyId>, &'static str) {
    match audience {
        Audience::Party(id) => (Some(id), "party"),
        Audience::Holder => (None, "self"),
    }
}

fn audience_of(party_id: Option<PartyId>, audience: &str) -> anyhow::Result<Audience> {
    match (audience, party_id) {
        ("party", Some(id)) => Ok(Audience::Party(id)),
        ("self", None) => Ok(Audience::Holder),
        _ => anyhow::bail!("a challenge row with audience {audience:?} and party {party_id:?}"),
    }
}

/// What became of an attempt to use a challenge.
pub enum Taken {
    /// It was unused until now: it is used now.
    Fresh {
        audience: Audience,
        nonce: Vec<u8>,
        expires_at: DateTime<Utc>,
    },
    AlreadyUsed,
    Unknown,
}

/// Marks the challenge used, atomically: of two requests presenting it, exactly one gets
/// [`Taken::Fresh`].
///
/// # Errors
/// Database failures.
pub async fn take_challenge(client: &impl GenericClient, id: Uuid) -> anyhow::Result<Taken> {
    let statement = client
        .prepare_cached(
            "with taken as (
                 update challenges set used_at = now() where id = $1 and used_at is null
                 returning party_id, audience, nonce, expires_at)
             select true, party_id, audience, nonce, expires_at from taken
             union all
             select false, party_id, audience, nonce, expires_at from challenges
             where id = $1 and not exists (select 1 from taken)",
        )
        .await?;
    Ok(match client.query_opt(&statement, &[&id]).await? {
        Some(row) if row.get::<_, bool>(0) => Taken::Fresh {
            audience: audience_of(row.get(1), row.get(2))?,
            nonce: row.get(3),
            expires_at: row.get(4),
        },
        Some(_) => Taken::AlreadyUsed,
        None => Taken::Unknown,
    })
}

/// The person a certificate is linked to.
///
/// # Errors
/// Database failures.
pub async fn linked_person(
    client: &impl GenericClient,
    issuer: &[u8],
    serial: &[u8],
) -> anyhow::Result<Option<PersonId>> {
    let statement = client
        .prepare_cached("select person_id from card_links where issuer = $1 and serial = $2")
        .await?;
    Ok(client
        .query_opt(&statement, &[&issuer, &serial])
        .await?
        .map(|row| row.get(0)))
}

/// The person whose My Number has this link value.
///
/// # Errors
/// Database failures.
pub async fn person_by_link(
    client: &impl GenericClient,
    link: &[u8; 32],
) -> anyhow::Result<Option<PersonId>> {
    let statement = client
        .prepare_cached("select id from persons where link = $1")
        .await?;
    Ok(client
        .query_opt(&statement, &[&link.as_slice()])
        .await?
        .map(|row| row.get(0)))
}

/// Links a certificate to a person. Returns the person it is linked to afterwards: `person_id`,
/// or another person when the certificate was linked before (the caller refuses that).
///
/// # Errors
/// Database failures.
pub async fn link(
    client: &impl GenericClient,
    issuer: &[u8],
    serial: &[u8],
    person_id: PersonId,
    not_after: DateTime<Utc>,
    linked_by: Option<PartyId>,
) -> anyhow::Result<PersonId> {
    let statement = client
        .prepare_cached(
            "with inserted as (
                 insert into card_links (issuer, serial, person_id, not_after, linked_by)
                 values ($1, $2, $3, $4, $5)
                 on conflict (issuer, serial) do nothing
                 returning person_id)
             select person_id from inserted
             union all
             select person_id from card_links where issuer = $1 and serial = $2
             limit 1",
        )
        .await?;
    Ok(client
        .query_one(
            &statement,
            &[&issuer, &serial, &person_id, &not_after, &linked_by],
        )
        .await?
        .get(0))
}

/// Removes a certificate's link. Returns the person it was linked to and the certificate's
/// expiry, or `None` when it was not linked.
///
/// # Errors
/// Database failures.
pub async fn unlink(
    client: &impl GenericClient,
    issuer: &[u8],
    serial: &[u8],
) -> anyhow::Result<Option<(PersonId, DateTime<Utc>)>> {
    let statement = client
        .prepare_cached(
            "delete from card_links where issuer = $1 and serial = $2
             returning person_id, not_after",
        )
        .await?;
    Ok(client
        .query_opt(&statement, &[&issuer, &serial])
        .await?
        .map(|row| (row.get(0), row.get(1))))
}

/// The consents a person gave at the reader. A misspelt choice is refused, not read as "no".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentChoices {
    #[serde(default)]
    pub medication: bool,
    #[serde(default)]
    pub checkups: bool,
    #[serde(default)]
    pub diagnosis: bool,
    #[serde(default)]
    pub surgery: bool,
    /// 限度額適用認定証 information in the eligibility answer.
    #[serde(default)]
    pub limit_certificate: bool,
    /// 特定疾病療養受療証 information in the eligibility answer.
    #[serde(default)]
    pub specific_diseases: bool,
}

/// One kind of consent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentKind {
    Medication,
    Checkups,
    Diagnosis,
    Surgery,
    LimitCertificate,
    SpecificDiseases,
}

impl ConsentKind {
    pub const ALL: [ConsentKind; 6] = [
        ConsentKind::Medication,
        ConsentKind::Checkups,
        ConsentKind::Diagnosis,
        ConsentKind::Surgery,
        ConsentKind::LimitCertificate,
        ConsentKind::SpecificDiseases,
    ];

    pub fn column(self) -> &'static str {
        match self {
            ConsentKind::Medication => "medication",
            ConsentKind::Checkups => "checkups",
            ConsentKind::Diagnosis => "diagnosis",
            ConsentKind::Surgery => "surgery",
            ConsentKind::LimitCertificate => "limit_certificate",
            ConsentKind::SpecificDiseases => "specific_diseases",
        }
    }
}

impl ConsentChoices {
    pub fn gives(self, kind: ConsentKind) -> bool {
        match kind {
            ConsentKind::Medication => self.medication,
            ConsentKind::Checkups => self.checkups,
            ConsentKind::Diagnosis => self.diagnosis,
            ConsentKind::Surgery => self.surgery,
            ConsentKind::LimitCertificate => self.limit_certificate,
            ConsentKind::SpecificDiseases => self.specific_diseases,
        }
    }
}

/// A consent in force: its kind, when it was given and when it lapses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ConsentInForce {
    pub kind: ConsentKind,
    pub given_at: DateTime<Utc>,
    pub lapses_at: DateTime<Utc>,
}

/// Stores the consents given with a card check.
///
/// # Errors
/// Database failures.
pub async fn insert_consents(
    client: &impl GenericClient,
    person_id: PersonId,
    party_id: PartyId,
    check_id: Uuid,
    choices: ConsentChoices,
    given_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let statement = client
        .prepare_cached(
            "insert into consents (person_id, party_id, check_id, medication, checkups, diagnosis,
                                   surgery, limit_certificate, specific_diseases, given_at,
                                   expires_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .await?;
    client
        .execute(
            &statement,
            &[
                &person_id,
                &party_id,
                &check_id,
                &choices.medication,
                &choices.checkups,
                &choices.diagnosis,
                &choices.surgery,
                &choices.limit_certificate,
                &choices.specific_diseases,
                &given_at,
                &expires_at,
            ],
        )
        .await?;
    Ok(())
}

/// Each kind of consent `person_id` gave `party_id` that is in force at `now` (given within its
/// 24 hours and not withdrawn), with the latest giving of each kind. Choices that gave nothing
/// are not read (`consents_giving`): however often a card is checked without consents, the
/// statement costs the same.
///
/// # Errors
/// Database failures.
pub async fn consents_in_force(
    client: &impl GenericClient,
    person_id: PersonId,
    party_id: PartyId,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<ConsentInForce>> {
    let statement = client
        .prepare_cached(
            "select medication, checkups, diagnosis, surgery, limit_certificate,
                    specific_diseases, given_at, expires_at
             from consents
             where person_id = $1 and party_id = $2 and expires_at > $3 and given_at <= $3
               and withdrawn_at is null
               and (medication or checkups or diagnosis or surgery or limit_certificate
                    or specific_diseases)
             order by given_at desc",
        )
        .await?;
    let rows = client
        .query(&statement, &[&person_id, &party_id, &now])
        .await?;
    let mut out: Vec<ConsentInForce> = Vec::new();
    for row in &rows {
        for (i, kind) in ConsentKind::ALL.into_iter().enumerate() {
            if row.get::<_, bool>(i) && out.iter().all(|c| c.kind != kind) {
                out.push(ConsentInForce {
                    kind,
                    given_at: row.get(6),
                    lapses_at: row.get(7),
                });
            }
        }
    }
    out.sort_by_key(|c| ConsentKind::ALL.iter().position(|k| *k == c.kind));
    Ok(out)
}

/// Withdraws every consent of `person_id` in force at `now`, to every party; how many.
///
/// # Errors
/// Database failures.
pub async fn withdraw_consents(
    client: &impl GenericClient,
    person_id: PersonId,
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let statement = client
        .prepare_cached(
            "update consents set withdrawn_at = $2
             where person_id = $1 and expires_at > $2 and withdrawn_at is null",
        )
        .await?;
    Ok(client.execute(&statement, &[&person_id, &now]).await?)
}
