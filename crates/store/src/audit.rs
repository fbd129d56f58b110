//! Appending to and reading back the keyed, hash-chained `disclosures` table.

use anyhow::Context;
use futures_util::TryStreamExt;

/// The advisory-lock key of lane 0; lane `n` is this plus `n`. Held for a writer session's whole
/// life, so that exactly one session appends to a lane across every onshi process sharing the
/// database.
const CHAIN_LOCK: i64 = 0x6f6e_7368_695f_6100;

/// The most lanes a database can have (the column is a `smallint`).
const MAX_LANES: i16 = i16::MAX;

/// A writer's own session, holding the lock of one lane for as long as it lives.
pub struct LaneSession {
    client: tokio_postgres::Client,
    number: i16,
    insert: tokio_postgres::Statement,
}

/// The last record of a lane as stored: where an appending session continues the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tail {
    pub first_id: i64,
    pub last_id: i64,
    pub hash: [u8; 32],
    pub records: u64,
}

/// Records to append to a lane, column by column, with the hashes the caller chained.
#[derive(Debug, Default)]
pub struct NewRecords<'a> {
    pub at: Vec<chrono::DateTime<chrono::Utc>>,
    pub party_id: Vec<i64>,
    pub person_id: Vec<Option<i64>>,
    pub coverage_id: Vec<Option<i64>>,
    pub kind: Vec<&'a str>,
    pub check_id: Vec<uuid::Uuid>,
    pub validity: Vec<i16>,
    pub prev_hash: Vec<Vec<u8>>,
    pub hash: Vec<Vec<u8>>,
}

impl LaneSession {
    /// Opens a session and locks the lowest free lane; returns it with the lane's tail (`None`
    /// for an empty lane).
    ///
    /// # Errors
    /// The database is unreachable, or every lane is taken.
    pub async fn claim(
        connector: &super::Connector,
    ) -> anyhow::Result<(LaneSession, Option<Tail>)> {
        let client = connector.connect().await?;
        let try_lock = client
            .prepare("select pg_try_advisory_lock($1 + $2::int8)")
            .await?;
        let mut number: i16 = 0;
        loop {
            let locked: bool = client
                .query_one(&try_lock, &[&CHAIN_LOCK, &i64::from(number)])
                .await?
                .get(0);
            if locked {
                break;
            }
            number = number
                .checked_add(1)
                .filter(|n| *n < MAX_LANES)
                .context("every audit lane is held by another session")?;
        }
        let tail = read_tail(&client, number).await?;
        let insert = client
            .prepare(
                "with appended as (
                     insert into disclosures
                         (lane, key_epoch, at, party_id, person_id, coverage_id, kind, check_id,
                          validity, prev_hash, hash, lane_seq)
                     select $10, $11, at, party_id, person_id, coverage_id, kind, check_id,
                            validity, prev_hash, hash, $12::int8 + ord
                     from unnest($1::timestamptz[], $2::int8[], $3::int8[], $4::int8[],
                                 $5::text[], $6::uuid[], $7::int2[], $8::bytea[], $9::bytea[])
                          with ordinality as r(at, party_id, person_id, coverage_id, kind,
                                               check_id, validity, prev_hash, hash, ord)
                     order by ord
                     returning id)
                 select min(id), max(id) from appended",
            )
            .await?;
        Ok((
            LaneSession {
                client,
                number,
                insert,
            },
            tail,
        ))
    }

    /// The lane this session holds.
    pub fn number(&self) -> i16 {
        self.number
    }

    /// Whether the session has ended (the lane is no longer held).
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Appends the records, in order, with one statement, which commits on its own (no explicit
    /// transaction: one round trip, one durable commit), numbered in the lane after the
    /// `records` it already holds; returns the first and last new ids.
    ///
    /// # Errors
    /// Database failures. The statement may or may not have committed: only a fresh claim
    /// reads the true tail back.
    pub async fn append(
        &self,
        epoch: i64,
        records_before: u64,
        records: &NewRecords<'_>,
    ) -> anyhow::Result<(Option<i64>, Option<i64>)> {
        let before = i64::try_from(records_before).context("a lane's record count")?;
        let row = self
            .client
            .query_one(
                &self.insert,
                &[
                    &records.at,
                    &records.party_id,
                    &records.person_id,
                    &records.coverage_id,
                    &records.kind,
                    &records.check_id,
                    &records.validity,
                    &records.prev_hash,
                    &records.hash,
                    &self.number,
                    &epoch,
                    &before,
                ],
            )
            .await
            .context("inserting audit records")?;
        Ok((row.get(0), row.get(1)))
    }
}

/// The lane's tail: its last record (by the `(lane, id)` index), its first id, and its record
/// count from the last record's `lane_seq`. For a lane whose last record predates `lane_seq`
/// (migration 0011), the count is the base 0011 recorded plus the unnumbered records after it.
async fn read_tail(client: &tokio_postgres::Client, lane: i16) -> anyhow::Result<Option<Tail>> {
    let Some(last) = client
        .query_opt(
            "select id, hash, lane_seq from disclosures where lane = $1 order by id desc limit 1",
            &[&lane],
        )
        .await?
    else {
        return Ok(None);
    };
    let first_id: i64 = client
        .query_one("select min(id) from disclosures where lane = $1", &[&lane])
        .await?
        .get(0);
    let records = match last.get::<_, Option<i64>>(2) {
        Some(seq) => seq,
        None => client
            .query_one(
                "select coalesce((select records from audit_lane_bases where lane = $1), 0)
                      + (select count(*) from disclosures
                         where lane = $1
                           and id > coalesce((select last_id from audit_lane_bases
                                              where lane = $1), 0))",
                &[&lane],
            )
            .await
            .context("counting a lane written before lane_seq")?
            .get(0),
    };
    Ok(Some(Tail {
        first_id,
        last_id: last.get(0),
        hash: last
            .get::<_, &[u8]>(1)
            .try_into()
            .context("a stored audit hash is not 32 bytes")?,
        records: u64::try_from(records).unwrap_or(0),
    }))
}

/// A record as stored, for verification.
pub struct StoredRecord {
    pub id: i64,
    pub lane: i16,
    pub key_epoch: Option<i64>,
    pub at: chrono::DateTime<chrono::Utc>,
    pub party_id: i64,
    pub person_id: Option<i64>,
    pub coverage_id: Option<i64>,
    pub kind: String,
    pub check_id: uuid::Uuid,
    pub validity: i16,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// Streams every record in id order (flat memory for any table size) to `visit`.
///
/// # Errors
/// Database failures, or what `visit` returns.
pub async fn for_each_record(
    client: &tokio_postgres::Client,
    mut visit: impl FnMut(StoredRecord) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let rows = client
        .query_raw(
            "select id, lane, key_epoch, at, party_id, person_id, coverage_id, kind, check_id,
                    validity, prev_hash, hash
             from disclosures order by id",
            std::iter::empty::<i64>(),
        )
        .await
        .context("reading the audit records")?;
    futures_util::pin_mut!(rows);
    while let Some(row) = rows.try_next().await? {
        visit(StoredRecord {
            id: row.get(0),
            lane: row.get(1),
            key_epoch: row.get(2),
            at: row.get(3),
            party_id: row.get(4),
            person_id: row.get(5),
            coverage_id: row.get(6),
            kind: row.get(7),
            check_id: row.get(8),
            validity: row.get(9),
            prev_hash: row.get(10),
            hash: row.get(11),
        })?;
    }
    Ok(())
}

/// A lane's head as migration 0008 froze it: the end of its unkeyed records.
pub struct UnkeyedHead {
    pub lane: i16,
    pub last_id: i64,
    pub hash: Vec<u8>,
    pub records: i64,
}

/// # Errors
/// Database failures.
pub async fn unkeyed_heads(client: &tokio_postgres::Client) -> anyhow::Result<Vec<UnkeyedHead>> {
    let rows = client
        .query(
            "select lane, last_id, hash, records from audit_unkeyed_heads",
            &[],
        )
        .await
        .context("reading the unkeyed heads")?;
    Ok(rows
        .iter()
        .map(|row| UnkeyedHead {
            lane: row.get(0),
            last_id: row.get(1),
            hash: row.get(2),
            records: row.get(3),
        })
        .collect())
}
