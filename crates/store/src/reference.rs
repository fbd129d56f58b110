//! 照会番号: a facility's own patient numbers, by coverage key. Only the registering party ever
//! reads its own.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use onshi_domain::PartyId;

/// A coverage key in the canonical forms onshi matches on (`''` for an absent symbol or branch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub insurer_number: String,
    pub symbol: String,
    pub number: String,
    pub branch: String,
}

/// Registers (or replaces) `party_id`'s reference numbers, all in one statement.
///
/// # Errors
/// Database failures.
pub async fn register(
    client: &impl GenericClient,
    party_id: PartyId,
    entries: &[(Key, String)],
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let column = |f: fn(&(Key, String)) -> &str| -> Vec<&str> { entries.iter().map(f).collect() };
    let statement = client
        .prepare_cached(
            "insert into reference_numbers (party_id, insurer_number, symbol, number, branch,
                                            reference, updated_at)
             select $1, * , $7 from unnest($2::text[], $3::text[], $4::text[], $5::text[],
                                            $6::text[])
             on conflict (party_id, insurer_number, number, symbol, branch)
             do update set reference = excluded.reference, updated_at = excluded.updated_at",
        )
        .await?;
    Ok(client
        .execute(
            &statement,
            &[
                &party_id,
                &column(|e| &e.0.insurer_number),
                &column(|e| &e.0.symbol),
                &column(|e| &e.0.number),
                &column(|e| &e.0.branch),
                &column(|e| &e.1),
                &now,
            ],
        )
        .await?)
}

/// `party_id`'s reference number of each key, in order (`None` where it registered none).
///
/// # Errors
/// Database failures.
pub async fn of_keys(
    client: &impl GenericClient,
    party_id: PartyId,
    keys: &[Key],
) -> anyhow::Result<Vec<Option<String>>> {
    let asked: Vec<(PartyId, &Key)> = keys.iter().map(|k| (party_id, k)).collect();
    of_party_keys(client, &asked).await
}

/// Each party's reference number of its key, in order (`None` where it registered none): the
/// checks of several parties answered together ask once.
///
/// # Errors
/// Database failures.
pub async fn of_party_keys(
    client: &impl GenericClient,
    asked: &[(PartyId, &Key)],
) -> anyhow::Result<Vec<Option<String>>> {
    if asked.is_empty() {
        return Ok(Vec::new());
    }
    let column = |f: fn(&Key) -> &str| -> Vec<&str> { asked.iter().map(|(_, k)| f(k)).collect() };
    let parties: Vec<PartyId> = asked.iter().map(|(p, _)| *p).collect();
    let statement = client
        .prepare_cached(
            "select r.reference
             from unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[])
                  with ordinality as k (party_id, insurer_number, symbol, number, branch, i)
             left join reference_numbers r
               on r.party_id = k.party_id and r.insurer_number = k.insurer_number
              and r.number = k.number and r.symbol = k.symbol and r.branch = k.branch
             order by k.i",
        )
        .await?;
    let rows = client
        .query(
            &statement,
            &[
                &parties,
                &column(|k| &k.insurer_number),
                &column(|k| &k.symbol),
                &column(|k| &k.number),
                &column(|k| &k.branch),
            ],
        )
        .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}
