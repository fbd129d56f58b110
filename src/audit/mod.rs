//! The access audit: every answered check is recorded before its answer leaves the server.
//!
//! Requests hand their records to a queue and wait. [`LANES`] writer tasks take turns at the
//! queue: each takes everything waiting (up to `audit_batch_max` records), appends it to its own
//! lane of the hash chain in one transaction, commits, then wakes the waiting requests (group
//! commit). One fsync serves many requests, several commits are in flight at once, and no answer
//! is returned before its record is durable. If a write fails, every request waiting on it fails
//! with it and answers 503.

pub mod chain;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Mutex};
use uuid::Uuid;

/// What kind of data a check disclosed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisclosureKind {
    EligibilityByNumber,
    EligibilityBatch,
    EligibilityCard,
    HealthIdIssue,
    HealthIdResolve,
}

impl DisclosureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DisclosureKind::EligibilityByNumber => "eligibility.number",
            DisclosureKind::EligibilityBatch => "eligibility.batch",
            DisclosureKind::EligibilityCard => "eligibility.card",
            DisclosureKind::HealthIdIssue => "health_id.issue",
            DisclosureKind::HealthIdResolve => "health_id.resolve",
        }
    }
}

/// One audit record: who asked, about whom (the internal person id, never an identifier the
/// person carries), which check, with what result.
#[derive(Clone, Debug)]
pub struct Disclosure {
    pub at: DateTime<Utc>,
    pub party_id: i64,
    pub person_id: Option<i64>,
    pub coverage_id: Option<i64>,
    pub kind: DisclosureKind,
    pub check_id: Uuid,
    pub validity: i16,
}

/// Why a group of records was not written, shared by every request of the group.
#[derive(Clone, Debug)]
struct WriteFailure {
    /// The database could not be reached (as opposed to a bug or a schema problem).
    unavailable: bool,
    cause: String,
}

struct Pending {
    records: Vec<Disclosure>,
    done: oneshot::Sender<Result<(), WriteFailure>>,
}

/// The handle requests use to record disclosures. Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<Pending>,
}

impl AuditLog {
    /// Starts the writer task on the current runtime. It ends when every handle is dropped, after
    /// writing what is queued.
    pub fn start(pool: Pool, batch_max: usize) -> Self {
        let (queue, receiver) = mpsc::channel(4096);
        let receiver = Arc::new(Mutex::new(receiver));
        for lane in 0..LANES {
            tokio::spawn(writer(
                lane,
                pool.clone(),
                receiver.clone(),
                batch_max.max(1),
            ));
        }
        AuditLog { queue }
    }

    /// Records the disclosures durably; returns once they are committed.
    ///
    /// # Errors
    /// The writer could not commit them (the database is unreachable): the caller must not
    /// return the answers.
    pub async fn record(&self, records: Vec<Disclosure>) -> anyhow::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let (done, wait) = oneshot::channel();
        self.queue
            .send(Pending { records, done })
            .await
            .map_err(|_| anyhow::anyhow!("the audit writer has stopped"))?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            // An io::Error is what the HTTP layer reads as "database unavailable" (503).
            Ok(Err(WriteFailure {
                unavailable: true,
                cause,
            })) => Err(anyhow::Error::new(std::io::Error::other(cause))
                .context("writing the audit record")),
            Ok(Err(WriteFailure { cause, .. })) => {
                Err(anyhow::anyhow!(cause).context("writing the audit record"))
            }
            Err(_) => anyhow::bail!("the audit writer stopped before committing"),
        }
    }
}

/// How many writers (and chain lanes) append at once. Fixed: `onshi audit verify` and every
/// server sharing the database must agree on the lanes that exist.
pub const LANES: i16 = 4;

async fn writer(
    lane: i16,
    pool: Pool,
    receiver: Arc<Mutex<mpsc::Receiver<Pending>>>,
    batch_max: usize,
) {
    loop {
        let group = {
            let mut receiver = receiver.lock().await;
            let Some(first) = receiver.recv().await else {
                return;
            };
            let mut group = vec![first];
            let mut count = group[0].records.len();
            while count < batch_max {
                match receiver.try_recv() {
                    Ok(next) => {
                        count += next.records.len();
                        group.push(next);
                    }
                    Err(_) => break,
                }
            }
            group
        };
        let records: Vec<&Disclosure> = group.iter().flat_map(|p| p.records.iter()).collect();
        let outcome = match pool.get().await {
            Ok(mut client) => crate::store::audit::append(&mut client, lane, &records).await,
            Err(error) => Err(anyhow::Error::new(error)),
        };
        let outcome = outcome.map_err(|error| {
            tracing::warn!(
                error = format!("{error:#}"),
                records = records.len(),
                "audit write failed"
            );
            WriteFailure {
                unavailable: crate::store::is_unavailable(&error),
                cause: format!("{error:#}"),
            }
        });
        for pending in group {
            let _ = pending.done.send(outcome.clone());
        }
    }
}
