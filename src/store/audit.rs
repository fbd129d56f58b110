//! Appending to and reading back the hash-chained `disclosures` table.

use anyhow::Context;
use futures_util::TryStreamExt;

use crate::audit::chain::{self, ChainFields, GENESIS};
use crate::audit::Disclosure;

/// The advisory-lock key of lane 0; lane `n` is this plus `n`. Held for a writer session's whole
/// life, so that exactly one session appends to a lane across every onshi process sharing the
/// database.
const CHAIN_LOCK: i64 = 0x6f6e_7368_695f_6100;

/// The most lanes a database can have (the column is a `smallint`).
const MAX_LANES: i16 = i16::MAX;

/// A writer's own session, holding the lock of one lane and the hash of that lane's last record.
pub struct Lane {
    client: tokio_postgres::Client,
    number: i16,
    tail: [u8; 32],
    insert: tokio_postgres::Statement,
}

impl Lane {
    /// Opens a session, locks the lowest free lane and reads its tail.
    ///
    /// # Errors
    /// The database is unreachable, or every lane is taken.
    pub async fn claim(config: &tokio_postgres::Config) -> anyhow::Result<Lane> {
        let client = super::connect_with(config).await?;
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
        let row = client
            .query_opt(
                "select hash from disclosures where lane = $1 order by id desc limit 1",
                &[&number],
            )
            .await?;
        let tail = match row {
            Some(row) => row
                .get::<_, &[u8]>(0)
                .try_into()
                .context("a stored audit hash is not 32 bytes")?,
            None => GENESIS,
        };
        let insert = client
            .prepare(
                "insert into disclosures
                     (lane, at, party_id, person_id, coverage_id, kind, check_id, validity,
                      prev_hash, hash)
                 select $10, at, party_id, person_id, coverage_id, kind, check_id, validity,
                        prev_hash, hash
                 from unnest($1::timestamptz[], $2::int8[], $3::int8[], $4::int8[], $5::text[],
                             $6::uuid[], $7::int2[], $8::bytea[], $9::bytea[])
                      with ordinality as r(at, party_id, person_id, coverage_id, kind, check_id,
                                           validity, prev_hash, hash, ord)
                 order by ord",
            )
            .await?;
        tracing::debug!(lane = number, "audit writer claimed its lane");
        Ok(Lane {
            client,
            number,
            tail,
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
        let mut prev = self.tail;
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
            let hash = chain::link(&prev, &ChainFields::from(*record));
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
        self.client
            .execute(
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
                ],
            )
            .await
            .context("inserting audit records")?;
        self.tail = prev;
        Ok(())
    }
}

/// The outcome of walking the whole chain.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Intact {
        records: u64,
    },
    /// The first record (by id) whose stored link does not match its content or predecessor.
    BrokenAt {
        id: i64,
        reason: &'static str,
    },
}

/// Walks every lane's chain in id order, streaming, and reports the first broken record.
///
/// # Errors
/// Database failures.
pub async fn verify(client: &tokio_postgres::Client) -> anyhow::Result<Verdict> {
    let rows = client
        .query_raw(
            "select id, lane, at, party_id, person_id, coverage_id, kind, check_id, validity,
                    prev_hash, hash
             from disclosures order by id",
            std::iter::empty::<i64>(),
        )
        .await?;
    futures_util::pin_mut!(rows);
    let mut tails: std::collections::HashMap<i16, [u8; 32]> = std::collections::HashMap::new();
    let mut count = 0u64;
    while let Some(row) = rows.try_next().await? {
        let id: i64 = row.get(0);
        let lane: i16 = row.get(1);
        let at: chrono::DateTime<chrono::Utc> = row.get(2);
        let kind: String = row.get(6);
        let check: uuid::Uuid = row.get(7);
        let stored_prev: &[u8] = row.get(9);
        let stored_hash: &[u8] = row.get(10);
        let prev = tails.entry(lane).or_insert(GENESIS);
        if stored_prev != prev.as_slice() {
            return Ok(Verdict::BrokenAt {
                id,
                reason: "its predecessor is missing or was changed",
            });
        }
        let fields = ChainFields {
            at_micros: at.timestamp_micros(),
            party_id: row.get(3),
            person_id: row.get(4),
            coverage_id: row.get(5),
            kind: &kind,
            check_id: *check.as_bytes(),
            validity: row.get(8),
        };
        let expected = chain::link(prev, &fields);
        if stored_hash != expected {
            return Ok(Verdict::BrokenAt {
                id,
                reason: "its content does not match its hash",
            });
        }
        *prev = expected;
        count += 1;
    }
    Ok(Verdict::Intact { records: count })
}
