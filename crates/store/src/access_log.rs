//! Reading one person's disclosures, newest first, with the party behind each.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use onshi_domain::PersonId;
use serde::Serialize;
use uuid::Uuid;

/// One disclosure of the person's data.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Entry {
    pub at: DateTime<Utc>,
    /// Who looked; `None` when it was the person themself, with their card.
    pub party: Option<PartyView>,
    pub kind: String,
    /// The 資格有効性 code the check answered (1 for a read of this log).
    pub validity: i16,
    pub check_id: Uuid,
}

/// The party behind an entry, as registered.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PartyView {
    pub name: Option<String>,
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facility_code: Option<String>,
}

/// Where a check sits in the log order: `(at, id)`.
pub type Position = (DateTime<Utc>, i64);

/// The position of `check_id` if it is in `person_id`'s log (a cursor from another person's log
/// is unknown here, not a way to page through theirs).
///
/// # Errors
/// Database failures.
pub async fn position(
    client: &impl GenericClient,
    person_id: PersonId,
    check_id: Uuid,
) -> anyhow::Result<Option<Position>> {
    let statement = client
        .prepare_cached("select at, id from disclosures where check_id = $1 and person_id = $2")
        .await?;
    Ok(client
        .query_opt(&statement, &[&check_id, &person_id])
        .await?
        .map(|row| (row.get(0), row.get(1))))
}

/// Up to `limit` of the person's disclosures before `before` (all when `None`), newest first;
/// disclosures made at the same instant (one batch) keep their recorded order, reversed.
///
/// # Errors
/// Database failures.
pub async fn newest_first(
    client: &impl GenericClient,
    person_id: PersonId,
    before: Option<Position>,
    limit: usize,
) -> anyhow::Result<Vec<Entry>> {
    let statement = client
        .prepare_cached(
            "select d.at, d.kind, d.validity, d.check_id, p.id is not null, p.name, p.role,
                    p.facility_code
             from disclosures d left join parties p on p.id = d.party_id
             where d.person_id = $1
               and ($2::timestamptz is null or (d.at, d.id) < ($2, $3))
             order by d.at desc, d.id desc
             limit $4",
        )
        .await?;
    let (at, id) = before.unzip();
    let limit = i64::try_from(limit)?;
    let rows = client
        .query(&statement, &[&person_id, &at, &id, &limit])
        .await?;
    Ok(rows
        .iter()
        .map(|row| Entry {
            at: row.get(0),
            kind: row.get(1),
            validity: row.get(2),
            check_id: row.get(3),
            party: row.get::<_, bool>(4).then(|| PartyView {
                name: row.get(5),
                role: row.get(6),
                facility_code: row.get(7),
            }),
        })
        .collect())
}
