//! The background worker that answers bulk jobs, one per server (`bulk.worker`).
//!
//! **Taking a job.** The worker holds a session of its own in which it locks the lease of the
//! oldest unfinished job nobody holds (`for update skip locked`) and keeps that transaction open
//! while it works on the job: one server works on a job at a time, and the moment its session
//! ends (a crash, a restart, a cut connection) the lock is gone and any server's worker takes the
//! job on. When the job is done the lease is deleted in that same transaction.
//!
//! **A chunk.** `chunk_size` waiting queries are answered together, in three steps:
//! 1. their answers are decided and stored, each under its new check id, as *answered* (one
//!    commit); an answered query is not shown to anyone yet;
//! 2. their disclosures are recorded in the audit log, durably, as for any check;
//! 3. they are marked *done* (one commit), and from then on shown.
//!
//! A worker that stops after 1 leaves answered queries behind. The next holder of the job
//! settles them first: each whose check id is in the audit log was recorded (the stop came
//! between 2 and 3) and is done as it stands; the others were never recorded and never shown,
//! and wait to be answered afresh. So a query's disclosure is recorded exactly once, and every
//! answer shown is the one recorded. Before step 2 the worker makes sure it still holds the
//! job's lock, so that a worker whose lock session died does not record what the next holder
//! will answer again.
//!
//! **Who is answered.** Jobs of a party flagged for suspected enumeration are not taken, and a
//! job whose party is flagged while it runs stops after its chunk; both go on once the flag is
//! cleared. Jobs of a revoked or expired party are not answered at all.
//!
//! **Retention.** While idle, the worker deletes the jobs received more than `retention_days`
//! ago, with their queries and answers.

use std::time::Duration;

use actix_web::web;
use anyhow::Context;

use super::BulkSettings;
use crate::api::AppState;
use crate::audit::DisclosureKind;
use crate::eligibility::{self, Query};
use crate::parties::{Party, Role};
use crate::store::bulk::{self as store, JobRow};
use crate::store::Connector;

/// Starts the worker on the current runtime; it runs for the process's life.
pub fn start(connector: Connector, state: web::Data<AppState>, settings: BulkSettings) {
    tokio::spawn(async move {
        let poll = Duration::from_millis(settings.poll_millis);
        let mut session: Option<tokio_postgres::Client> = None;
        loop {
            let worked = take_and_work(&mut session, &connector, &state, &settings).await;
            match worked {
                Ok(true) => continue,
                Ok(false) => {}
                Err(error) => {
                    session = None;
                    tracing::warn!(
                        error = crate::store::errors::describe(&error),
                        "bulk worker: a job was left for a later turn"
                    );
                }
            }
            if let Err(error) = sweep(&state, &settings).await {
                tracing::warn!(
                    error = crate::store::errors::describe(&error),
                    "bulk worker: expired jobs could not be deleted"
                );
            }
            tokio::time::sleep(poll).await;
        }
    });
}

/// Deletes the jobs whose retention has ended.
async fn sweep(state: &AppState, settings: &BulkSettings) -> anyhow::Result<()> {
    let before = state.clock.now() - chrono::Duration::days(i64::from(settings.retention_days));
    let client = state
        .pool
        .get()
        .await
        .context("getting a database connection")?;
    let deleted = store::delete_received_before(&**client, before).await?;
    if deleted > 0 {
        tracing::info!(
            jobs = deleted,
            "bulk worker: deleted jobs past their retention"
        );
    }
    Ok(())
}

/// Takes the next free job and works on it until it is done; false when there was none (or its
/// party was flagged meanwhile).
async fn take_and_work(
    session: &mut Option<tokio_postgres::Client>,
    connector: &Connector,
    state: &AppState,
    settings: &BulkSettings,
) -> anyhow::Result<bool> {
    let client = match session {
        Some(client) if !client.is_closed() => client,
        _ => session.insert(connector.connect().await?),
    };
    // This transaction holds the job's lease; it writes only the lease's end, once the job is
    // done (otherwise it is rolled back when dropped).
    let lock = client.transaction().await.context("opening the job lock")?;
    let Some(job) = store::lock_next_job(&lock).await? else {
        return Ok(false);
    };
    tracing::debug!(job = job.id, "bulk worker: took a job");
    let client = state
        .pool
        .get()
        .await
        .context("getting a database connection")?;
    let (settled, again) = store::settle_answered(&**client, job.id).await?;
    drop(client);
    if settled + again > 0 {
        tracing::info!(
            job = job.id,
            recorded = settled,
            answered_again = again,
            "bulk worker: settled the answers a stopped worker left"
        );
    }
    while work_chunk(&lock, &job, state, settings.chunk_size).await? {
        if state.limits.is_flagged(job.party_id) {
            // Flagged while its job ran: the rest waits for the flag to be cleared, and this
            // worker for its next poll (the flag may not have reached the database yet).
            return Ok(false);
        }
    }
    let client = state
        .pool
        .get()
        .await
        .context("getting a database connection")?;
    if store::finish(&**client, job.id).await? {
        store::release(&lock, job.id).await?;
        lock.commit().await.context("ending a bulk job's lease")?;
    }
    Ok(true)
}

/// Answers one chunk of the job (see the module's three steps); false when none was waiting.
async fn work_chunk(
    lock: &tokio_postgres::Transaction<'_>,
    job: &JobRow,
    state: &AppState,
    chunk_size: usize,
) -> anyhow::Result<bool> {
    let client = state
        .pool
        .get()
        .await
        .context("getting a database connection")?;
    let limit = i64::try_from(chunk_size).unwrap_or(i64::MAX);
    let waiting = store::waiting_items(&**client, job.id, limit).await?;
    if waiting.is_empty() {
        return Ok(false);
    }
    let (mut idx, mut check_ids, mut results) = (Vec::new(), Vec::new(), Vec::new());
    let mut queries: Vec<Query> = Vec::with_capacity(waiting.len());
    let mut answered_idx = Vec::with_capacity(waiting.len());
    for item in &waiting {
        // Validated at the upload already; should the rules have changed since, the query is
        // refused now as it would have been then.
        match crate::api::eligibility::parse_query(&item.query, job.received_on) {
            Ok(query) => {
                queries.push(query);
                answered_idx.push(item.idx);
            }
            Err(refusal) => {
                idx.push(item.idx);
                check_ids.push(None);
                results.push(serde_json::to_value(&refusal.body)?);
            }
        }
    }
    let asked: Vec<&Query> = queries.iter().collect();
    let party = Party {
        id: job.party_id,
        role: Role::parse(&job.party_role).context("a stored party role")?,
        facility_code: job.party_facility_code.clone(),
        insurer_numbers: Default::default(),
        payer_numbers: Default::default(),
        certificates: Vec::new(),
    };
    let decided = eligibility::decide_unrecorded(
        &client,
        state.clock.now(),
        &eligibility::Ask::all(&party, DisclosureKind::EligibilityBulk, &asked),
    )
    .await?;
    // Signed apart from the runtime's threads: a chunk's proofs are many signatures.
    let key = state.proofs.clone();
    let (answers, records) =
        tokio::task::spawn_blocking(move || eligibility::sign_unrecorded(&key, decided))
            .await
            .context("the signing task panicked")??;
    for (i, answer) in answered_idx.iter().zip(&answers) {
        idx.push(*i);
        check_ids.push(Some(answer.check_id));
        results.push(serde_json::to_value(answer)?);
    }
    store::store_answers(&**client, job.id, &idx, &check_ids, &results).await?;
    drop(client);
    lock.execute("select 1", &[])
        .await
        .context("the bulk job's lock session was lost")?;
    state.audit.record(records).await?;
    let client = state
        .pool
        .get()
        .await
        .context("getting a database connection")?;
    store::confirm(&**client, job.id, &answered_idx).await?;
    drop(client);
    crate::api::eligibility::note_misses(state, job.party_id, &asked, &answers).await;
    Ok(true)
}
