//! Concurrent single checks answered together.
//!
//! A check by number costs the database a whole statement (and its executor's start-up) for
//! one row, while the same statement answers a thousand rows for little more: so the single
//! checks of every party go through one queue, and each look-up takes every check waiting in it
//! at that moment (up to [`GROUP_MAX`]) into one [`super::check`]: one connection, one look-up
//! statement, one statement for reference numbers and public expenses, one audit record group.
//!
//! Nothing waits for company: a look-up starts as soon as one of the `lookups` slots is free,
//! with whatever is queued then, so a lone check goes at once and checks only gather while the
//! slots are busy (the busier the database, the larger the groups). A slot is held for the
//! database work only; the audit commit and the signatures of a group run while the next group
//! is looked up. Each answer is its own party's and its own record's, exactly as if it had been
//! asked alone: the group changes how many statements are sent, not what any answer says.

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::{Answer, Ask, Query};
use crate::audit::{AuditLog, DisclosureKind};
use crate::clock::Clock;
use crate::parties::Party;
use crate::proof::ProofKey;

/// The most checks one look-up takes.
pub const GROUP_MAX: usize = 512;

/// How many checks may wait for a look-up before a new one is refused as unavailable (503): far
/// beyond what the slots drain in a second, so only a stalled database fills it.
const QUEUE_MAX: usize = 16 * GROUP_MAX;

struct Waiting {
    party: Party,
    kind: DisclosureKind,
    query: Query,
    done: oneshot::Sender<anyhow::Result<Answer>>,
}

/// The queue of single checks (cheap to clone: every clone sends to the same queue).
#[derive(Clone)]
pub struct Coalescer {
    queue: mpsc::Sender<Waiting>,
}

/// What each group's checks are answered with.
#[derive(Clone)]
pub struct Answering {
    pub pool: deadpool_postgres::Pool,
    pub audit: AuditLog,
    pub proofs: Arc<ProofKey>,
    pub clock: Clock,
}

impl Coalescer {
    /// Starts the queue's task on the current runtime, with `lookups` look-ups at most at once.
    pub fn start(answering: Answering, lookups: usize) -> Coalescer {
        let (queue, waiting) = mpsc::channel(QUEUE_MAX);
        tokio::spawn(run(
            waiting,
            answering,
            Arc::new(Semaphore::new(lookups.max(1))),
        ));
        Coalescer { queue }
    }

    /// Answers one query as [`super::check`] would alone: recorded, signed, its party's.
    ///
    /// # Errors
    /// As [`super::check`]; a full queue (a stalled database) is unavailable.
    pub async fn check(
        &self,
        party: &Party,
        kind: DisclosureKind,
        query: &Query,
    ) -> anyhow::Result<Answer> {
        let (done, answered) = oneshot::channel();
        let waiting = Waiting {
            party: party.clone(),
            kind,
            query: query.clone(),
            done,
        };
        self.queue.try_send(waiting).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => anyhow::Error::new(std::io::Error::other(
                "too many checks waiting for the database",
            )),
            mpsc::error::TrySendError::Closed(_) => anyhow::anyhow!("the check queue has stopped"),
        })?;
        answered
            .await
            .context("the check's group stopped before answering")?
    }
}

async fn run(mut waiting: mpsc::Receiver<Waiting>, answering: Answering, slots: Arc<Semaphore>) {
    loop {
        // A slot first, then the checks: while every slot is busy, the queue fills, and the next
        // look-up takes all of it.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = waiting.recv().await else {
            return;
        };
        let mut group = vec![first];
        while group.len() < GROUP_MAX {
            match waiting.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let answering = answering.clone();
        tokio::spawn(async move { answer(group, &answering, slot).await });
    }
}

/// Answers a group and hands each waiting check its answer (or the group's failure).
async fn answer(
    group: Vec<Waiting>,
    answering: &Answering,
    slot: tokio::sync::OwnedSemaphorePermit,
) {
    crate::metrics::metrics()
        .check_group_size
        .observe(group.len() as f64);
    let asks: Vec<Ask<'_>> = group
        .iter()
        .map(|w| Ask {
            party: &w.party,
            kind: w.kind,
            query: &w.query,
        })
        .collect();
    let decided = async {
        let client = answering
            .pool
            .get()
            .await
            .context("getting a database connection")?;
        super::decide_unrecorded(&client, answering.clock.now(), &asks).await
    }
    .await;
    drop(slot);
    let answers = match decided {
        Ok(decided) => super::seal(&answering.audit, &answering.proofs, decided).await,
        Err(e) => Err(e),
    };
    drop(asks);
    match answers {
        Ok(answers) if answers.len() == group.len() => {
            for (w, a) in group.into_iter().zip(answers) {
                // A check whose client has gone has nobody to answer; its record stands.
                let _ = w.done.send(Ok(a));
            }
        }
        Ok(answers) => {
            let error = anyhow::anyhow!("{} answers for {} checks", answers.len(), group.len());
            fail(group, &error);
        }
        Err(e) => fail(group, &e),
    }
}

/// Hands every check of the group the group's failure, classified as the HTTP layer reads it
/// (a database that is unavailable stays unavailable for each).
fn fail(group: Vec<Waiting>, error: &anyhow::Error) {
    let unavailable = crate::store::is_unavailable(error) || crate::store::is_timeout(error);
    let text = format!("{error:#}");
    for w in group {
        let e = if unavailable {
            anyhow::Error::new(std::io::Error::other(text.clone()))
        } else {
            anyhow::anyhow!("{text}")
        };
        let _ = w.done.send(Err(e));
    }
}
