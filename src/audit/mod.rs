//! The access audit: every answered check is recorded before its answer leaves the server.
//!
//! Requests hand their records to a queue and wait. A few writer tasks take turns at the queue:
//! each takes everything waiting (up to `audit_batch_max` records), appends it to its own lane of
//! the hash chain with one statement, which commits on its own, then wakes the waiting requests
//! (group commit). One fsync serves many requests, several commits are in flight at once, and no
//! answer is returned before its record is durable. If a write fails, every request waiting on
//! it fails with it and answers 503.
//!
//! Each writer owns a lane for as long as its database session lives: it claims the lane with a
//! session advisory lock (`lane::Lane::claim`), reads the lane's last hash once,
//! and from then on keeps the tail in memory. An append is then a single round trip: no lock to
//! take, no tail to read, no separate `BEGIN`/`COMMIT`. Lanes are numbered from 0 and a writer
//! takes the lowest free one, so several onshi processes sharing a database never write the same
//! chain; `onshi audit verify` walks whatever lanes exist. After any failure the writer drops its
//! session (and with it the lane) and claims one afresh, reading the tail back from the database:
//! whether the failed statement committed or not, the chain continues from what is stored.
//!
//! Each record's hash is an HMAC under the session's chain key, derived from the audit key
//! ([`key`]), so nobody without the key can recompute a chain ([`chain`]). The writers keep the
//! heads of their lanes where the [`checkpoint::Checkpointer`] signs them into the [`witness`]
//! at intervals and on shutdown; [`verify`] holds the chains against those checkpoints.

pub mod chain;
pub mod checkpoint;
pub mod cli;
pub mod key;
mod lane;
pub mod verify;
pub mod witness;

use chrono::{DateTime, Utc};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Mutex};
use uuid::Uuid;

use checkpoint::{Checkpointer, Heads};
use key::AuditKey;
use lane::Lane;
use witness::Witness;

use crate::domain::{Actor, CoverageId, PersonId};

/// What kind of data a check disclosed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisclosureKind {
    EligibilityByNumber,
    EligibilityBatch,
    /// A query of an asynchronous bulk inquiry (一括照会).
    EligibilityBulk,
    EligibilityCard,
    /// A check of 医療扶助 by its payer and recipient numbers.
    EligibilityAssistance,
    HealthIdIssue,
    HealthIdResolve,
    /// A person read their own access log, proving themselves with their card.
    AccessLogSelf,
    /// An administrator read a person's access log.
    AccessLogAdmin,
    /// A card was linked to the person (at a facility's reader, from the card's signed data).
    CardLink,
    /// A card was unlinked from the person (by its holder or an administrator).
    CardUnlink,
}

impl DisclosureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DisclosureKind::EligibilityByNumber => "eligibility.number",
            DisclosureKind::EligibilityBatch => "eligibility.batch",
            DisclosureKind::EligibilityBulk => "eligibility.bulk",
            DisclosureKind::EligibilityCard => "eligibility.card",
            DisclosureKind::EligibilityAssistance => "eligibility.assistance",
            DisclosureKind::HealthIdIssue => "health_id.issue",
            DisclosureKind::HealthIdResolve => "health_id.resolve",
            DisclosureKind::AccessLogSelf => "access_log.self",
            DisclosureKind::AccessLogAdmin => "access_log.admin",
            DisclosureKind::CardLink => "card.link",
            DisclosureKind::CardUnlink => "card.unlink",
        }
    }
}

/// One audit record: who asked, about whom (the internal person id, never an identifier the
/// person carries), which check, with what result.
#[derive(Clone, Debug)]
pub struct Disclosure {
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub person_id: Option<PersonId>,
    pub coverage_id: Option<CoverageId>,
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
    checkpointer: Option<Arc<Checkpointer>>,
}

/// What keys the chain and where its checkpoints go.
pub struct Chain {
    pub key: Arc<AuditKey>,
    /// None: no checkpoints (deletions of a lane's newest records then go unnoticed).
    pub witness: Option<Arc<dyn Witness>>,
    pub checkpoint_interval: Duration,
}

/// The writers' shared view: the audit key and their lanes' heads.
struct LaneContext {
    key: Arc<AuditKey>,
    heads: Arc<Heads>,
}

impl AuditLog {
    /// Starts `writers` writer tasks on the current runtime, each with its own database session
    /// (opened on first use, so this succeeds without a database), and the checkpointer. They
    /// end when every handle is dropped, after writing what is queued.
    ///
    /// # Errors
    /// A malformed database URL, or a key source that cannot give the checkpoint key.
    pub fn start(
        connector: &crate::store::Connector,
        writers: NonZeroUsize,
        batch_max: NonZeroUsize,
        chain: Chain,
    ) -> anyhow::Result<Self> {
        let config = connector.clone();
        let heads = Arc::new(Heads::default());
        let checkpointer = match chain.witness {
            Some(witness) => {
                let signer = chain.key.checkpoint_signer()?;
                let checkpointer = Arc::new(Checkpointer::new(heads.clone(), signer, witness));
                Checkpointer::run_every(&checkpointer, chain.checkpoint_interval);
                Some(checkpointer)
            }
            None => None,
        };
        let context = Arc::new(LaneContext {
            key: chain.key,
            heads,
        });
        let (queue, receiver) = mpsc::channel(4096);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..writers.get() {
            tokio::spawn(writer(
                config.clone(),
                context.clone(),
                receiver.clone(),
                batch_max.get(),
            ));
        }
        Ok(AuditLog {
            queue,
            checkpointer,
        })
    }

    /// Signs the heads of this server's lanes into the witness now (also done at intervals and
    /// on shutdown); the new checkpoint's name, or None when nothing moved since the last one.
    ///
    /// # Errors
    /// No witness is configured, or it failed.
    pub async fn checkpoint(&self) -> anyhow::Result<Option<String>> {
        match &self.checkpointer {
            Some(checkpointer) => checkpointer.checkpoint().await,
            None => anyhow::bail!("no audit witness is configured"),
        }
    }

    /// How many requests wait for their records to be written.
    pub fn queue_depth(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Records the disclosures durably; returns once they are committed.
    ///
    /// # Errors
    /// The writer could not commit them (the database is unreachable): the caller must not
    /// return the answers.
    pub async fn record(&self, records: Vec<Disclosure>) -> anyhow::Result<()> {
        if records.is_empty() || cfg!(feature = "unguarded-bench") {
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

/// How long a writer waits before trying to claim a lane again after a claim failed (the
/// database refused or did not answer), so that a database that is down is not hammered with
/// connection attempts; requests meanwhile fail fast with 503. The pause runs from the failed
/// claim only: groups refused during it do not extend it, so a writer under steady traffic
/// reconnects as soon as the pause is over.
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);

async fn writer(
    config: crate::store::Connector,
    context: Arc<LaneContext>,
    receiver: Arc<Mutex<mpsc::Receiver<Pending>>>,
    batch_max: usize,
) {
    let mut lane: Option<Lane> = None;
    let mut claim_again_at: Option<tokio::time::Instant> = None;
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
        let outcome = write(&config, &context, &mut lane, &mut claim_again_at, &records).await;
        let outcome = outcome.map_err(|error| {
            tracing::warn!(
                error = crate::store::errors::describe(&error),
                records = records.len(),
                "audit write failed"
            );
            WriteFailure {
                unavailable: crate::store::is_unavailable(&error)
                    || crate::store::is_timeout(&error),
                cause: crate::store::errors::describe(&error),
            }
        });
        for pending in group {
            let _ = pending.done.send(outcome.clone());
        }
    }
}

/// Appends one group, claiming a lane first when the writer has none. A group whose session was
/// lost under it (a restart, a failover, `pg_terminate_backend`) is tried once more on a freshly
/// claimed lane, so that cutting the sessions costs the requests of that moment a short wait
/// rather than a 503.
async fn write(
    config: &crate::store::Connector,
    context: &LaneContext,
    lane: &mut Option<Lane>,
    claim_again_at: &mut Option<tokio::time::Instant>,
    records: &[&Disclosure],
) -> anyhow::Result<()> {
    let mut retried = false;
    loop {
        let current = match lane {
            Some(current) if !current.is_closed() => current,
            _ => {
                if claim_again_at.is_some_and(|at| tokio::time::Instant::now() < at) {
                    anyhow::bail!(std::io::Error::other(
                        "the audit log's database could not be reached moments ago"
                    ));
                }
                match Lane::claim(config, &context.key, context.heads.clone()).await {
                    Ok(claimed) => {
                        *claim_again_at = None;
                        lane.insert(claimed)
                    }
                    Err(error) => {
                        *claim_again_at = Some(tokio::time::Instant::now() + RECONNECT_PAUSE);
                        return Err(error);
                    }
                }
            }
        };
        let started = std::time::Instant::now();
        let appended = current.append(records).await;
        crate::metrics::metrics()
            .audit_commit_seconds
            .with_label_values(&[if appended.is_ok() {
                "committed"
            } else {
                "failed"
            }])
            .observe(started.elapsed().as_secs_f64());
        let error = match appended {
            Ok(()) => return Ok(()),
            Err(error) => error,
        };
        // Whatever failed, the session's view of the tail can no longer be trusted.
        *lane = None;
        if retried {
            // The first attempt may have committed before its session was lost: its records
            // are then stored (every check id is new, so a second insert of them collides).
            if crate::store::is_unique_violation(&error, "disclosures_check") {
                return Ok(());
            }
            return Err(error);
        }
        if !crate::store::is_unavailable(&error) {
            return Err(error);
        }
        retried = true;
    }
}
