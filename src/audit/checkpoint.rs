//! Signed checkpoints: what each server's lanes held at a moment, kept outside the database.
//!
//! At `checkpoint_seconds` intervals (when a lane moved) and when the server stops, the server
//! signs the heads of the lanes its writers hold (lane, first and last id, last hash, record
//! count) with the checkpoint key and appends the result to the [`Witness`]. The database roles
//! cannot reach the witness, so a record once witnessed cannot be removed, changed or rolled back
//! without `onshi audit verify` noticing, even by someone holding the audit key.
//!
//! A checkpoint file is two lines: the payload (JSON) and the hex Ed25519 signature over
//! `"onshi/audit/checkpoint/v1\0" || payload`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::key::{CheckpointSigner, CheckpointVerifier};
use super::witness::Witness;

/// A lane's head as a writer last saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub first_id: Option<i64>,
    pub last_id: Option<i64>,
    pub hash: [u8; 32],
    pub records: u64,
}

/// The heads of the lanes this server's writers hold (or last held), shared by the writers and
/// the checkpointer.
#[derive(Default)]
pub struct Heads(Mutex<BTreeMap<i16, Head>>);

impl Heads {
    pub fn set(&self, lane: i16, head: Head) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(lane, head);
    }

    fn snapshot(&self) -> BTreeMap<i16, Head> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// One lane in a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneHead {
    pub lane: i16,
    pub first_id: i64,
    pub last_id: i64,
    /// Hex of the last record's hash.
    pub hash: String,
    pub records: u64,
}

/// The signed content of a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub format: String,
    /// The writing server process (a fresh id per start).
    pub server: uuid::Uuid,
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub lanes: Vec<LaneHead>,
}

const FORMAT: &str = "onshi-audit-checkpoint/v1";

impl Checkpoint {
    /// The file: payload line, signature line.
    ///
    /// # Errors
    /// The signer (a token) failed.
    pub fn seal(&self, signer: &CheckpointSigner) -> anyhow::Result<Vec<u8>> {
        let payload = serde_json::to_vec(self).expect("a checkpoint always serializes");
        let signature = signer.sign(&payload)?;
        let mut file = payload;
        file.push(b'\n');
        file.extend_from_slice(hex::encode(signature).as_bytes());
        file.push(b'\n');
        Ok(file)
    }

    /// Reads a checkpoint file, only if its signature verifies.
    ///
    /// # Errors
    /// A damaged file or a signature that does not verify under `verifier`.
    pub fn open(file: &[u8], verifier: &CheckpointVerifier) -> anyhow::Result<Checkpoint> {
        let text = std::str::from_utf8(file).context("not text")?;
        let (payload, signature) = text.split_once('\n').context("no signature line")?;
        let signature = hex::decode(signature.trim()).context("the signature is not hex")?;
        anyhow::ensure!(
            verifier.verify(payload.as_bytes(), &signature),
            "the signature does not verify"
        );
        let checkpoint: Checkpoint = serde_json::from_str(payload).context("the payload")?;
        anyhow::ensure!(checkpoint.format == FORMAT, "unknown checkpoint format");
        Ok(checkpoint)
    }

    /// The witness entry name: sorts by time, unique per server and sequence.
    fn name(&self) -> String {
        format!(
            "{}-{}-{:08}",
            self.at.format("%Y%m%dT%H%M%S%.6fZ"),
            self.server.simple(),
            self.seq
        )
    }
}

/// Signs and appends this server's checkpoints.
pub struct Checkpointer {
    heads: Arc<Heads>,
    signer: CheckpointSigner,
    witness: Arc<dyn Witness>,
    server: uuid::Uuid,
    /// The sequence number and lanes of the last checkpoint written; one checkpoint at a time.
    last: tokio::sync::Mutex<(u64, BTreeMap<i16, Head>)>,
}

impl Checkpointer {
    pub fn new(heads: Arc<Heads>, signer: CheckpointSigner, witness: Arc<dyn Witness>) -> Self {
        Checkpointer {
            heads,
            signer,
            witness,
            server: uuid::Uuid::new_v4(),
            last: tokio::sync::Mutex::new((0, BTreeMap::new())),
        }
    }

    /// Signs and appends the current heads, unless nothing moved since the last checkpoint.
    /// Returns the new entry's name.
    ///
    /// # Errors
    /// The witness could not store it durably.
    pub async fn checkpoint(&self) -> anyhow::Result<Option<String>> {
        let mut last = self.last.lock().await;
        let heads = self.heads.snapshot();
        if heads == last.1 {
            return Ok(None);
        }
        let lanes: Vec<LaneHead> = heads
            .iter()
            .filter_map(|(lane, head)| {
                Some(LaneHead {
                    lane: *lane,
                    first_id: head.first_id?,
                    last_id: head.last_id?,
                    hash: hex::encode(head.hash),
                    records: head.records,
                })
            })
            .collect();
        if lanes.is_empty() {
            last.1 = heads;
            return Ok(None);
        }
        let checkpoint = Checkpoint {
            format: FORMAT.into(),
            server: self.server,
            seq: last.0 + 1,
            at: Utc::now(),
            lanes,
        };
        let name = checkpoint.name();
        let file = checkpoint.seal(&self.signer)?;
        let witness = self.witness.clone();
        let entry = name.clone();
        tokio::task::spawn_blocking(move || witness.append(&entry, &file))
            .await
            .context("the checkpoint task panicked")??;
        *last = (checkpoint.seq, heads);
        tracing::debug!(checkpoint = %name, "audit checkpoint witnessed");
        Ok(Some(name))
    }

    /// Checkpoints every `interval` for as long as the checkpointer is in use elsewhere.
    pub fn run_every(this: &Arc<Self>, interval: std::time::Duration) {
        let weak = Arc::downgrade(this);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(checkpointer) = weak.upgrade() else {
                    return;
                };
                if let Err(error) = checkpointer.checkpoint().await {
                    tracing::error!(
                        error = format!("{error:#}"),
                        "the audit checkpoint could not be witnessed"
                    );
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::key::AuditKey;

    #[test]
    fn a_sealed_checkpoint_opens_only_untouched_and_under_its_key() {
        let key = AuditKey::from_bytes(zeroize::Zeroizing::new(vec![3; 32])).unwrap();
        let signer = key.checkpoint_signer().unwrap();
        let checkpoint = Checkpoint {
            format: FORMAT.into(),
            server: uuid::Uuid::nil(),
            seq: 1,
            at: Utc::now(),
            lanes: vec![LaneHead {
                lane: 0,
                first_id: 1,
                last_id: 9,
                hash: "00".repeat(32),
                records: 9,
            }],
        };
        let file = checkpoint.seal(&signer).unwrap();
        assert_eq!(
            Checkpoint::open(&file, &signer.verifier()).unwrap(),
            checkpoint
        );
        let forged = String::from_utf8(file.clone())
            .unwrap()
            .replace("\"records\":9", "\"records\":8");
        assert!(Checkpoint::open(forged.as_bytes(), &signer.verifier()).is_err());
        let other = AuditKey::from_bytes(zeroize::Zeroizing::new(vec![4; 32])).unwrap();
        let other = other.checkpoint_signer().unwrap().verifier();
        assert!(Checkpoint::open(&file, &other).is_err());
    }
}
