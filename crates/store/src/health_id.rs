//! Purposes, person bases and issued health IDs (`schema/0004_health_ids.sql`).
//!
//! Uniqueness is the database's: an ID that is already taken in a purpose makes the insert do
//! nothing (`on conflict on constraint health_ids_unique`), and the caller re-derives with the next
//! counter. A person's second current ID is refused by the `health_ids_current` index.

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::GenericClient;
use onshi_domain::{PartyId, PersonId};
use rand::RngCore;
use tokio_postgres::error::SqlState;

/// A registered purpose.
#[derive(Clone, Debug)]
pub struct Purpose {
    pub id: i64,
    pub name: String,
    pub key_version: u32,
}

/// An issued ID as stored.
#[derive(Clone, Debug)]
pub struct IssuedRow {
    pub row_id: i64,
    pub person_id: PersonId,
    pub health_id: String,
    pub key_version: u32,
    pub epoch: u32,
    pub counter: u32,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What inserting a purpose ran into.
#[derive(Debug)]
pub enum NewPurpose {
    Created(Purpose),
    NameTaken,
    UnknownParty,
}

fn to_u32(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

fn to_i32(v: u32) -> anyhow::Result<i32> {
    i32::try_from(v).map_err(|_| anyhow::anyhow!("value {v} exceeds the column's range"))
}

/// Registers a purpose and the parties that may receive and resolve its IDs, in one transaction.
///
/// # Errors
/// Database failures (a taken name or an unknown party are outcomes, not errors).
pub async fn insert_purpose(
    client: &mut deadpool_postgres::Client,
    name: &str,
    key_version: u32,
    party_ids: &[PartyId],
) -> anyhow::Result<NewPurpose> {
    let tx = client.transaction().await?;
    let inserted = tx
        .query_one(
            "insert into purposes (name, key_version) values ($1, $2) returning id",
            &[&name, &to_i32(key_version)?],
        )
        .await;
    let id: i64 = match inserted {
        Ok(row) => row.get(0),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            return Ok(NewPurpose::NameTaken)
        }
        Err(e) => return Err(e.into()),
    };
    let linked = tx
        .execute(
            "insert into purpose_parties (purpose_id, party_id)
             select $1, p from unnest($2::bigint[]) as p on conflict do nothing",
            &[&id, &party_ids],
        )
        .await;
    match linked {
        Ok(_) => {}
        Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => {
            return Ok(NewPurpose::UnknownParty)
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    Ok(NewPurpose::Created(Purpose {
        id,
        name: name.to_owned(),
        key_version,
    }))
}

/// # Errors
/// Database failures.
pub async fn purpose_by_name(
    client: &impl GenericClient,
    name: &str,
) -> anyhow::Result<Option<Purpose>> {
    let statement = client
        .prepare_cached("select id, name, key_version from purposes where name = $1")
        .await?;
    Ok(client
        .query_opt(&statement, &[&name])
        .await?
        .map(|row| Purpose {
            id: row.get(0),
            name: row.get(1),
            key_version: to_u32(row.get(2)),
        }))
}

/// Whether the party is registered for the purpose.
///
/// # Errors
/// Database failures.
pub async fn is_party_of(
    client: &impl GenericClient,
    purpose_id: i64,
    party_id: PartyId,
) -> anyhow::Result<bool> {
    let statement = client
        .prepare_cached("select 1 from purpose_parties where purpose_id = $1 and party_id = $2")
        .await?;
    Ok(client
        .query_opt(&statement, &[&purpose_id, &party_id])
        .await?
        .is_some())
}

/// The person's secret base, created (random) on first use.
///
/// # Errors
/// Database failures.
pub async fn base_for(
    client: &impl GenericClient,
    person_id: PersonId,
) -> anyhow::Result<[u8; 32]> {
    let mut fresh = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut fresh);
    let statement = client
        .prepare_cached(
            "with ins as (insert into person_bases (person_id, base) values ($1, $2)
                          on conflict (person_id) do nothing returning base)
             select base from ins union all select base from person_bases where person_id = $1",
        )
        .await?;
    let row = client
        .query_one(&statement, &[&person_id, &fresh.as_slice()])
        .await?;
    let base: &[u8] = row.get(0);
    base.try_into()
        .map_err(|_| anyhow::anyhow!("a person base is not 32 bytes"))
}

const ISSUED_COLUMNS: &str =
    "id, person_id, health_id, key_version, epoch, counter, revoked_at from health_ids";

fn issued(row: &tokio_postgres::Row) -> IssuedRow {
    IssuedRow {
        row_id: row.get(0),
        person_id: row.get(1),
        health_id: row.get(2),
        key_version: to_u32(row.get(3)),
        epoch: to_u32(row.get(4)),
        counter: to_u32(row.get(5)),
        revoked_at: row.get(6),
    }
}

/// The person's current (not revoked) ID in the purpose.
///
/// # Errors
/// Database failures.
pub async fn current(
    client: &impl GenericClient,
    purpose_id: i64,
    person_id: PersonId,
) -> anyhow::Result<Option<IssuedRow>> {
    let sql = format!(
        "select {ISSUED_COLUMNS} where purpose_id = $1 and person_id = $2 and revoked_at is null"
    );
    let statement = client.prepare_cached(&sql).await?;
    let row = client
        .query_opt(&statement, &[&purpose_id, &person_id])
        .await?;
    Ok(row.as_ref().map(issued))
}

/// An ID of the purpose, current or revoked.
///
/// # Errors
/// Database failures.
pub async fn by_health_id(
    client: &impl GenericClient,
    purpose_id: i64,
    health_id: &str,
) -> anyhow::Result<Option<IssuedRow>> {
    let sql = format!("select {ISSUED_COLUMNS} where purpose_id = $1 and health_id = $2");
    let statement = client.prepare_cached(&sql).await?;
    let row = client
        .query_opt(&statement, &[&purpose_id, &health_id])
        .await?;
    Ok(row.as_ref().map(issued))
}

/// What an attempt to record a new ID ran into.
#[derive(Debug, PartialEq, Eq)]
pub enum Insert {
    Inserted,
    /// The ID is already held (now or before) in the purpose: re-derive with the next counter.
    IdTaken,
    /// The person got a current ID concurrently.
    PersonHasCurrent,
}

/// Records a new current ID.
///
/// # Errors
/// Database failures.
pub async fn try_insert(
    client: &impl GenericClient,
    purpose_id: i64,
    person_id: PersonId,
    health_id: &str,
    key_version: u32,
    epoch: u32,
    counter: u32,
) -> anyhow::Result<Insert> {
    let statement = client
        .prepare_cached(
            "insert into health_ids (purpose_id, health_id, person_id, key_version, epoch, counter)
             values ($1, $2, $3, $4, $5, $6)
             on conflict on constraint health_ids_unique do nothing returning id",
        )
        .await?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [
        &purpose_id,
        &health_id,
        &person_id,
        &to_i32(key_version)?,
        &to_i32(epoch)?,
        &to_i32(counter)?,
    ];
    match client.query_opt(&statement, &params).await {
        Ok(Some(_)) => Ok(Insert::Inserted),
        Ok(None) => Ok(Insert::IdTaken),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(Insert::PersonHasCurrent),
        Err(e) => Err(e.into()),
    }
}

/// Revokes one current ID; `None` when it was revoked already (by a concurrent request).
///
/// # Errors
/// Database failures.
pub async fn revoke(
    client: &impl GenericClient,
    row_id: i64,
) -> anyhow::Result<Option<DateTime<Utc>>> {
    let statement = client
        .prepare_cached(
            "update health_ids set revoked_at = now() where id = $1 and revoked_at is null
             returning revoked_at",
        )
        .await?;
    Ok(client
        .query_opt(&statement, &[&row_id])
        .await?
        .map(|row| row.get(0)))
}

/// The card key and birth date of the person's most relevant coverage on a date: one in force if
/// any, else the most recently acquired.
///
/// # Errors
/// Database failures.
pub async fn latest_key(
    client: &impl GenericClient,
    person_id: PersonId,
    on: NaiveDate,
) -> anyhow::Result<Option<(String, String, String, String, NaiveDate)>> {
    let statement = client
        .prepare_cached(
            "select c.insurer_number, c.symbol, c.number, c.branch, v.birth_date
             from coverages c
             join lateral (select birth_date from coverage_versions v
                           where v.coverage_id = c.id and v.effective_on <= $2
                           order by v.effective_on desc, v.id desc limit 1) v on true
             where c.person_id = $1 and c.acquired_on <= $2
             order by (c.lost_on is null or c.lost_on > $2) desc, c.acquired_on desc, c.id desc
             limit 1",
        )
        .await?;
    Ok(client
        .query_opt(&statement, &[&person_id, &on])
        .await?
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))))
}

/// Starts a key rotation of the purpose, or finds the unfinished one: returns the key version
/// being rotated to and the last person already done. Starting raises the purpose's key version,
/// so IDs issued from now on are already under the new one.
///
/// # Errors
/// Database failures.
pub async fn start_rotation(
    client: &mut deadpool_postgres::Client,
    purpose_id: i64,
) -> anyhow::Result<(u32, PersonId)> {
    let tx = client.transaction().await?;
    // Serializes two jobs started at once on the same purpose.
    tx.execute(
        "select 1 from purposes where id = $1 for update",
        &[&purpose_id],
    )
    .await?;
    let open = tx
        .query_opt(
            "select key_version, last_person_id from health_id_rotations
             where purpose_id = $1 and finished_at is null",
            &[&purpose_id],
        )
        .await?;
    let started = match open {
        Some(row) => (to_u32(row.get(0)), row.get(1)),
        None => {
            let row = tx
                .query_one(
                    "update purposes set key_version = key_version + 1 where id = $1
                     returning key_version",
                    &[&purpose_id],
                )
                .await?;
            let version: i32 = row.get(0);
            tx.execute(
                "insert into health_id_rotations (purpose_id, key_version) values ($1, $2)",
                &[&purpose_id, &version],
            )
            .await?;
            (to_u32(version), PersonId::new(0))
        }
    };
    tx.commit().await?;
    Ok(started)
}

/// How many persons still hold a current ID under an older key version.
///
/// # Errors
/// Database failures.
pub async fn count_to_rotate(
    client: &impl GenericClient,
    purpose_id: i64,
    key_version: u32,
) -> anyhow::Result<u64> {
    let row = client
        .query_one(
            "select count(*) from health_ids
             where purpose_id = $1 and revoked_at is null and key_version < $2",
            &[&purpose_id, &to_i32(key_version)?],
        )
        .await?;
    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
}

/// The next persons (by id, after the checkpoint) whose current ID predates the key version.
///
/// # Errors
/// Database failures.
pub async fn rotation_chunk(
    client: &impl GenericClient,
    purpose_id: i64,
    key_version: u32,
    after_person: PersonId,
    limit: i64,
) -> anyhow::Result<Vec<IssuedRow>> {
    let sql = format!(
        "select {ISSUED_COLUMNS}
         where purpose_id = $1 and revoked_at is null and key_version < $2 and person_id > $3
         order by person_id limit $4"
    );
    let statement = client.prepare_cached(&sql).await?;
    let rows = client
        .query(
            &statement,
            &[&purpose_id, &to_i32(key_version)?, &after_person, &limit],
        )
        .await?;
    Ok(rows.iter().map(issued).collect())
}

/// Records progress (in the chunk's transaction) or, with `finished`, the end of the rotation.
///
/// # Errors
/// Database failures.
pub async fn save_checkpoint(
    client: &impl GenericClient,
    purpose_id: i64,
    key_version: u32,
    last_person_id: PersonId,
    finished: bool,
) -> anyhow::Result<()> {
    let statement = client
        .prepare_cached(
            "update health_id_rotations
             set last_person_id = greatest(last_person_id, $3),
                 finished_at = case when $4 then now() end
             where purpose_id = $1 and key_version = $2",
        )
        .await?;
    client
        .execute(
            &statement,
            &[
                &purpose_id,
                &to_i32(key_version)?,
                &last_person_id,
                &finished,
            ],
        )
        .await?;
    Ok(())
}
