//! `onshi audit verify`: walks every lane's keyed chain and holds it against the checkpoints.
//!
//! The chain alone proves that nothing inside a lane was changed, moved or removed by anyone
//! without the audit key. The checkpoints add what a chain cannot show: a lane's newest records
//! deleted, a whole lane deleted, or a lane rolled back to an earlier state. Per lane, the
//! checkpoint with the most records counts (a chain only grows, so that is the newest); every
//! other checkpoint of the lane is a point the chain must still pass through unchanged.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context;
use chrono::{DateTime, Utc};

use super::chain::{self, ChainKey, GENESIS};
use super::checkpoint::Checkpoint;
use super::key::AuditKey;
use super::witness::Witness;
use crate::store::audit::{StoredRecord, UnkeyedHead};

/// What verify found wrong, each naming the lane and the first record affected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A record whose stored link does not match its content or its predecessor: changed,
    /// inserted, moved, or its predecessor deleted.
    Broken {
        lane: i16,
        id: i64,
        reason: &'static str,
    },
    /// The chain verifies, but a record a checkpoint vouches for is gone or differs: rewritten
    /// by someone holding the audit key.
    Rewritten { lane: i16, id: i64 },
    /// The lane ends before the newest checkpoint's head: its newest records were deleted.
    DeletedTail {
        lane: i16,
        /// The last record left (none: every record of the lane is gone but the lane is named).
        after_id: Option<i64>,
        /// The first missing record a checkpoint vouches for.
        first_missing_id: i64,
        witnessed_last_id: i64,
        missing: u64,
    },
    /// A lane a checkpoint vouches for has no records at all.
    DeletedLane {
        lane: i16,
        first_id: i64,
        witnessed_last_id: i64,
        records: u64,
    },
    /// The lane ends exactly at an older checkpoint's head, before the newest one's.
    RolledBack {
        lane: i16,
        after_id: i64,
        first_missing_id: i64,
        to_checkpoint_at: DateTime<Utc>,
        witnessed_last_id: i64,
    },
    /// A file in the witness that is not a checkpoint signed with this key.
    BadCheckpoint { name: String },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Broken { lane, id, reason } => {
                write!(f, "lane {lane}: broken at record {id}: {reason}")
            }
            Problem::Rewritten { lane, id } => write!(
                f,
                "lane {lane}: record {id} differs from what a checkpoint witnessed (rewritten)"
            ),
            Problem::DeletedTail {
                lane,
                after_id,
                first_missing_id,
                witnessed_last_id,
                missing,
            } => write!(
                f,
                "lane {lane}: {missing} newest records deleted, from record {first_missing_id} \
                 (the lane ends at {}; a checkpoint witnessed it up to record {witnessed_last_id})",
                after_id.map_or("nothing".into(), |id| format!("record {id}"))
            ),
            Problem::DeletedLane {
                lane,
                first_id,
                witnessed_last_id,
                records,
            } => write!(
                f,
                "lane {lane}: deleted: a checkpoint witnessed {records} records, \
                 from record {first_id} to {witnessed_last_id}"
            ),
            Problem::RolledBack {
                lane,
                after_id,
                first_missing_id,
                to_checkpoint_at,
                witnessed_last_id,
            } => write!(
                f,
                "lane {lane}: rolled back to the checkpoint of {to_checkpoint_at}: records from \
                 {first_missing_id} (after {after_id}) up to {witnessed_last_id} are gone"
            ),
            Problem::BadCheckpoint { name } => write!(
                f,
                "checkpoint {name} does not verify under this audit key (forged or damaged)"
            ),
        }
    }
}

/// The outcome of a verification.
#[derive(Debug, Default)]
pub struct Report {
    pub records: u64,
    pub lanes: usize,
    /// Records written before keyed chains (checked against the heads migration 0008 froze).
    pub unkeyed: u64,
    pub checkpoints: usize,
    pub latest_checkpoint: Option<DateTime<Utc>>,
    /// Records newer than every checkpoint of their lane: a deletion of these is not detected yet.
    pub not_yet_witnessed: u64,
    pub problems: Vec<Problem>,
}

impl Report {
    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// A head some checkpoint vouches for.
#[derive(Clone, Debug)]
struct Witnessed {
    at: DateTime<Utc>,
    first_id: i64,
    last_id: i64,
    hash: Vec<u8>,
    records: u64,
}

/// Reads every checkpoint, keeping those that verify; the others become problems.
fn witnessed_heads(
    witness: Option<&dyn Witness>,
    key: &AuditKey,
    report: &mut Report,
) -> anyhow::Result<BTreeMap<i16, Vec<Witnessed>>> {
    let mut lanes: BTreeMap<i16, Vec<Witnessed>> = BTreeMap::new();
    let Some(witness) = witness else {
        return Ok(lanes);
    };
    let verifier = key.checkpoint_signer()?.verifier();
    for (name, file) in witness.entries().context("reading the witness")? {
        let Ok(checkpoint) = Checkpoint::open(&file, &verifier) else {
            report.problems.push(Problem::BadCheckpoint { name });
            continue;
        };
        report.checkpoints += 1;
        report.latest_checkpoint = report.latest_checkpoint.max(Some(checkpoint.at));
        for head in checkpoint.lanes {
            let Ok(hash) = hex::decode(&head.hash) else {
                report
                    .problems
                    .push(Problem::BadCheckpoint { name: name.clone() });
                continue;
            };
            lanes.entry(head.lane).or_default().push(Witnessed {
                at: checkpoint.at,
                first_id: head.first_id,
                last_id: head.last_id,
                hash,
                records: head.records,
            });
        }
    }
    for heads in lanes.values_mut() {
        heads.sort_by_key(|w| (w.last_id, w.at));
    }
    Ok(lanes)
}

/// One lane's walk so far.
struct Walk<'a> {
    prev: [u8; 32],
    records: u64,
    last_id: Option<i64>,
    broken: bool,
    unkeyed: Option<&'a UnkeyedHead>,
    witnessed: &'a [Witnessed],
    /// The next checkpointed head (index into `witnessed`) the chain must pass through.
    next: usize,
}

/// Verifies every lane; `visit` is fed the records in id order by the store.
pub struct Verifier<'a> {
    key: &'a AuditKey,
    chain_keys: HashMap<(i16, i64), ChainKey>,
    unkeyed: HashMap<i16, &'a UnkeyedHead>,
    witnessed: &'a BTreeMap<i16, Vec<Witnessed>>,
    walks: BTreeMap<i16, Walk<'a>>,
    report: Report,
}

/// Verifies the records the store streams against the key and the witness.
///
/// # Errors
/// The database, the witness or the key source failed (a tampering is a [`Problem`], not an
/// error).
pub async fn verify(
    client: &tokio_postgres::Client,
    key: &AuditKey,
    witness: Option<&dyn Witness>,
) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let witnessed = witnessed_heads(witness, key, &mut report)?;
    let unkeyed = crate::store::audit::unkeyed_heads(client).await?;
    let mut verifier = Verifier {
        key,
        chain_keys: HashMap::new(),
        unkeyed: unkeyed.iter().map(|h| (h.lane, h)).collect(),
        witnessed: &witnessed,
        walks: BTreeMap::new(),
        report,
    };
    crate::store::audit::for_each_record(client, |record| verifier.visit(&record)).await?;
    Ok(verifier.finish())
}

const EMPTY: &[Witnessed] = &[];

impl<'a> Verifier<'a> {
    fn visit(&mut self, record: &StoredRecord) -> anyhow::Result<()> {
        let lane = record.lane;
        let walk = self.walks.entry(lane).or_insert_with(|| Walk {
            prev: GENESIS,
            records: 0,
            last_id: None,
            broken: false,
            unkeyed: self.unkeyed.get(&lane).copied(),
            witnessed: self.witnessed.get(&lane).map_or(EMPTY, Vec::as_slice),
            next: 0,
        });
        self.report.records += 1;
        let newest = walk.witnessed.last().map(|w| w.last_id);
        if newest.is_none_or(|last| record.id > last) {
            self.report.not_yet_witnessed += 1;
        }
        if walk.broken {
            return Ok(());
        }
        let broken = |reason| Problem::Broken {
            lane,
            id: record.id,
            reason,
        };
        let in_unkeyed = walk.unkeyed.filter(|u| record.id <= u.last_id);
        if walk
            .unkeyed
            .is_some_and(|u| walk.last_id.is_none_or(|l| l < u.last_id))
            && in_unkeyed.is_none()
        {
            // The unkeyed part ended somewhere other than where migration 0008 froze it.
            walk.broken = true;
            self.report.problems.push(broken(
                "the records before keyed chains differ from what migration 0008 recorded",
            ));
            return Ok(());
        }
        if record.prev_hash != walk.prev {
            walk.broken = true;
            self.report
                .problems
                .push(broken("its predecessor is missing, moved or was changed"));
            return Ok(());
        }
        let expected = match (in_unkeyed, record.key_epoch) {
            (Some(_), None) => {
                self.report.unkeyed += 1;
                chain::link_unkeyed(&walk.prev, &super::lane::fields(record))
            }
            (None, Some(epoch)) => {
                let key = match self.chain_keys.entry((lane, epoch)) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(self.key.lane_key(lane, epoch)?)
                    }
                };
                chain::link(key, &walk.prev, &super::lane::fields(record))
            }
            _ => {
                walk.broken = true;
                self.report
                    .problems
                    .push(broken("its key epoch does not fit its place in the lane"));
                return Ok(());
            }
        };
        if record.hash != expected {
            walk.broken = true;
            self.report
                .problems
                .push(broken("its content does not match its MAC"));
            return Ok(());
        }
        walk.prev = expected;
        walk.records += 1;
        walk.last_id = Some(record.id);
        if let Some(u) = in_unkeyed.filter(|u| u.last_id == record.id) {
            if u.hash != expected || u64::try_from(u.records).ok() != Some(walk.records) {
                walk.broken = true;
                self.report.problems.push(broken(
                    "the records before keyed chains differ from what migration 0008 recorded",
                ));
                return Ok(());
            }
        }
        // Every checkpointed head at or before this record must be exactly where the chain is.
        while let Some(w) = walk.witnessed.get(walk.next) {
            if w.last_id > record.id {
                break;
            }
            walk.next += 1;
            if w.last_id < record.id || w.hash != expected || w.records != walk.records {
                walk.broken = true;
                self.report.problems.push(Problem::Rewritten {
                    lane,
                    id: w.last_id,
                });
                break;
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Report {
        self.report.lanes = self.walks.len();
        for (&lane, heads) in self.witnessed {
            let Some(newest) = heads.last() else { continue };
            let Some(walk) = self.walks.get(&lane) else {
                self.report.problems.push(Problem::DeletedLane {
                    lane,
                    first_id: heads
                        .iter()
                        .map(|w| w.first_id)
                        .min()
                        .unwrap_or(newest.first_id),
                    witnessed_last_id: newest.last_id,
                    records: newest.records,
                });
                continue;
            };
            if walk.broken || walk.last_id.is_some_and(|l| l >= newest.last_id) {
                continue;
            }
            let after = walk.last_id.unwrap_or(0);
            let first_missing_id = heads
                .iter()
                .map(|w| w.last_id)
                .find(|id| *id > after)
                .unwrap_or(newest.last_id);
            let rolled_back_to = heads
                .iter()
                .find(|w| Some(w.last_id) == walk.last_id && w.hash == walk.prev);
            self.report
                .problems
                .push(match (rolled_back_to, walk.last_id) {
                    (Some(old), Some(after_id)) => Problem::RolledBack {
                        lane,
                        after_id,
                        first_missing_id,
                        to_checkpoint_at: old.at,
                        witnessed_last_id: newest.last_id,
                    },
                    _ => Problem::DeletedTail {
                        lane,
                        after_id: walk.last_id,
                        first_missing_id,
                        witnessed_last_id: newest.last_id,
                        missing: newest.records.saturating_sub(walk.records),
                    },
                });
        }
        self.report
    }
}
