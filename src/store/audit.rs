//! Appending to and reading back the hash-chained `disclosures` table.

use anyhow::Context;
use deadpool_postgres::Client;
use futures_util::TryStreamExt;

use crate::audit::chain::{self, ChainFields, GENESIS};
use crate::audit::Disclosure;

/// Serialises appends to one lane across every onshi process sharing the database (the lane
/// number is added to it).
const CHAIN_LOCK: i64 = 0x6f6e_7368_695f_6100;

/// Appends the records, in order, to the lane's chain in one committed transaction.
///
/// # Errors
/// Database failures; nothing is written then.
pub async fn append(client: &mut Client, lane: i16, records: &[&Disclosure]) -> anyhow::Result<()> {
    let tx = client.transaction().await?;
    let tail = tx
        .prepare_cached(
            "select pg_advisory_xact_lock($1 + $2::int8)::text,
                    (select hash from disclosures where lane = $2 order by id desc limit 1)",
        )
        .await?;
    let row = tx
        .query_one(&tail, &[&CHAIN_LOCK, &i64::from(lane)])
        .await?;
    let mut prev: [u8; 32] = match row.get::<_, Option<&[u8]>>(1) {
        Some(hash) => hash
            .try_into()
            .context("a stored audit hash is not 32 bytes")?,
        None => GENESIS,
    };
    let n = records.len();
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
    let statement = tx
        .prepare_cached(
            "insert into disclosures
                 (lane, at, party_id, person_id, coverage_id, kind, check_id, validity, prev_hash,
                  hash)
             select $10, at, party_id, person_id, coverage_id, kind, check_id, validity, prev_hash,
                    hash
             from unnest($1::timestamptz[], $2::int8[], $3::int8[], $4::int8[], $5::text[],
                         $6::uuid[], $7::int2[], $8::bytea[], $9::bytea[])
                  with ordinality as r(at, party_id, person_id, coverage_id, kind, check_id,
                                       validity, prev_hash, hash, ord)
             order by ord",
        )
        .await?;
    tx.execute(
        &statement,
        &[
            &at, &party, &person, &coverage, &kind, &check, &validity, &prevs, &hashes, &lane,
        ],
    )
    .await
    .context("inserting audit records")?;
    tx.commit().await.context("committing audit records")?;
    Ok(())
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
