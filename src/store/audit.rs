//! Appending to and reading back the keyed, hash-chained `disclosures` table.

use anyhow::Context;
use futures_util::TryStreamExt;

use crate::audit::chain::{self, ChainFields, ChainKey, GENESIS};
use crate::audit::checkpoint::{Head, Heads};
use crate::audit::key::AuditKey;
use crate::audit::Disclosure;

/// The advisory-lock key of lane 0; lane `n` is this plus `n`. Held for a writer session's whole
/// life, so that exactly one session appends to a lane across every onshi process sharing the
/// database.
const CHAIN_LOCK: i64 = 0x6f6e_7368_695f_6100;

/// The most lanes a database can have (the column is a `smallint`).
const MAX_LANES: i16 = i16::MAX;

/// A writer's own session, holding the lock of one lane, that session's chain key and the lane's
/// head (its last record's id and hash, and how many records it holds).
pub struct Lane {
    client: tokio_postgres::Client,
    number: i16,
    epoch: i64,
    key: ChainKey,
    head: Head,
    heads: std::sync::Arc<Heads>,
    insert: tokio_postgres::Statement,
}

impl Lane {
    /// Opens a session, locks the lowest free lane, reads its head and derives the session's
    /// chain key under a fresh epoch (one audit-key operation per claim, none per record).
    ///
    /// # Errors
    /// The database is unreachable, every lane is taken, or the key source failed.
    pub async fn claim(
        config: &super::Connector,
        audit_key: &AuditKey,
        heads: std::sync::Arc<Heads>,
    ) -> anyhow::Result<Lane> {
        let client = config.connect().await?;
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
        let head = read_head(&client, number).await?;
        let epoch: i64 = rand::random();
        let key = audit_key.lane_key(number, epoch)?;
        let insert = client
            .prepare(
                "with appended as (
                     insert into disclosures
                         (lane, key_epoch, at, party_id, person_id, coverage_id, kind, check_id,
                          validity, prev_hash, hash)
                     select $10, $11, at, party_id, person_id, coverage_id, kind, check_id,
                            validity, prev_hash, hash
                     from unnest($1::timestamptz[], $2::int8[], $3::int8[], $4::int8[],
                                 $5::text[], $6::uuid[], $7::int2[], $8::bytea[], $9::bytea[])
                          with ordinality as r(at, party_id, person_id, coverage_id, kind,
                                               check_id, validity, prev_hash, hash, ord)
                     order by ord
                     returning id)
                 select min(id), max(id) from appended",
            )
            .await?;
        heads.set(number, head.clone());
        tracing::debug!(lane = number, "audit writer claimed its lane");
        Ok(Lane {
            client,
            number,
            epoch,
            key,
            head,
            heads,
            insert,
        })
    }

    /// Whether the session has ended (the lane is no longer ours).
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Appends the records, in order, to the lane's chain with one statement, which commits on
    /// its own (no explicit transaction: one round trip, one durable commit).
    ///
    /// # Errors
    /// Database failures. The caller must then drop this lane: the statement may or may not
    /// have committed, and only a fresh claim reads the true tail back.
    pub async fn append(&mut self, records: &[&Disclosure]) -> anyhow::Result<()> {
        let n = records.len();
        let mut prev = self.head.hash;
        let (mut at, mut party, mut person, mut coverage, mut kind, mut check, mut validity) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut prevs, mut hashes) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for record in records {
            let hash = chain::link(&self.key, &prev, &ChainFields::from(*record));
            at.push(record.at);
            party.push(record.party_id);
            person.push(record.person_id);
            coverage.push(record.coverage_id);
            kind.push(record.kind.as_str());
            check.push(record.check_id);
            validity.push(record.validity);
            prevs.push(prev.to_vec());
            hashes.push(hash.to_vec());
            prev = hash;
        }
        let row = self
            .client
            .query_one(
                &self.insert,
                &[
                    &at,
                    &party,
                    &person,
                    &coverage,
                    &kind,
                    &check,
                    &validity,
                    &prevs,
                    &hashes,
                    &self.number,
                    &self.epoch,
                ],
            )
            .await
            .context("inserting audit records")?;
        let (first, last): (Option<i64>, Option<i64>) = (row.get(0), row.get(1));
        self.head.first_id = self.head.first_id.or(first);
        self.head.last_id = last.or(self.head.last_id);
        self.head.hash = prev;
        self.head.records += n as u64;
        self.heads.set(self.number, self.head.clone());
        Ok(())
    }
}

async fn read_head(client: &tokio_postgres::Client, lane: i16) -> anyhow::Result<Head> {
    let row = client
        .query_opt(
            "select id, hash, count(*) over (), min(id) over () from disclosures
             where lane = $1 order by id desc limit 1",
            &[&lane],
        )
        .await?;
    Ok(match row {
        Some(row) => Head {
            first_id: Some(row.get(3)),
            last_id: Some(row.get(0)),
            hash: row
                .get::<_, &[u8]>(1)
                .try_into()
                .context("a stored audit hash is not 32 bytes")?,
            records: u64::try_from(row.get::<_, i64>(2)).unwrap_or(0),
        },
        None => Head {
            first_id: None,
            last_id: None,
            hash: GENESIS,
            records: 0,
        },
    })
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

impl StoredRecord {
    pub fn fields(&self) -> ChainFields<'_> {
        ChainFields {
            at_micros: self.at.timestamp_micros(),
            party_id: self.party_id,
            person_id: self.person_id,
            coverage_id: self.coverage_id,
            kind: &self.kind,
            check_id: *self.check_id.as_bytes(),
            validity: self.validity,
        }
    }
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
