//! The bulk inquiries' jobs and their queries (`bulk_jobs`, `bulk_items`, migration 0017): a
//! job is stored whole at its upload, taken by one worker at a time under a row lock, answered
//! chunk by chunk, read back page by page, and deleted when its retention ends.

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use onshi_domain::PartyId;
use tokio_postgres::{GenericClient, Row, Transaction};
use uuid::Uuid;

/// A query waiting for its answer.
pub const WAITING: i16 = 0;
/// A query answered, its disclosure being recorded: its answer is not shown yet.
pub const ANSWERED: i16 = 1;
/// A query answered and recorded, or refused at the upload.
pub const DONE: i16 = 2;

/// A new job's queries, column by column, in upload order.
#[derive(Debug, Default)]
pub struct NewItems {
    pub query: Vec<serde_json::Value>,
    /// [`WAITING`] for a query to answer, [`DONE`] for one refused at the upload.
    pub state: Vec<i16>,
    /// The refusal of a query refused at the upload.
    pub result: Vec<Option<serde_json::Value>>,
}

/// A job as stored.
#[derive(Clone, Debug)]
pub struct JobRow {
    pub id: i64,
    pub reception_number: String,
    pub party_id: PartyId,
    pub received_at: DateTime<Utc>,
    pub received_on: NaiveDate,
    pub total: i32,
    pub answered: i32,
    pub rejected: i32,
    pub done: bool,
    /// The sending party's role and facility code (what a proof of check names).
    pub party_role: String,
    pub party_facility_code: Option<String>,
}

const JOB_COLUMNS: &str = "j.id, j.reception_number, j.party_id, j.received_at, j.received_on, \
                           j.total, j.answered, j.rejected, j.done_at is not null, \
                           p.role, p.facility_code";

fn job(row: &Row) -> JobRow {
    JobRow {
        id: row.get(0),
        reception_number: row.get(1),
        party_id: row.get(2),
        received_at: row.get(3),
        received_on: row.get(4),
        total: row.get(5),
        answered: row.get(6),
        rejected: row.get(7),
        done: row.get(8),
        party_role: row.get(9),
        party_facility_code: row.get(10),
    }
}

/// Stores a job and all its queries (indexed from 0 in order), in the caller's transaction;
/// `None`, storing nothing, when the party already has a job with this idempotency key.
///
/// # Errors
/// Database failures (a reception number already taken is a unique violation of
/// `bulk_jobs_reception_number_key`).
pub async fn insert_job(
    tx: &Transaction<'_>,
    reception_number: &str,
    party_id: PartyId,
    received_on: NaiveDate,
    idempotency_key: Option<&str>,
    items: &NewItems,
) -> anyhow::Result<Option<i64>> {
    let total = i32::try_from(items.query.len()).context("a job's size")?;
    let rejected = i32::try_from(items.state.iter().filter(|s| **s == DONE).count())
        .context("a job's size")?;
    let inserted = tx
        .query_opt(
            "insert into bulk_jobs (reception_number, party_id, received_on, total, rejected,
                                    done_at, idempotency_key)
             values ($1, $2, $3, $4::int4, $5::int4, case when $5::int4 = $4::int4 then now() end,
                     $6)
             on conflict (party_id, idempotency_key) where idempotency_key is not null do nothing
             returning id",
            &[
                &reception_number,
                &party_id,
                &received_on,
                &total,
                &rejected,
                &idempotency_key,
            ],
        )
        .await
        .context("storing a bulk job")?;
    let Some(row) = inserted else {
        return Ok(None);
    };
    let id: i64 = row.get(0);
    tx.execute(
        "insert into bulk_items (job_id, idx, query, state, result)
         select $1, ord::int4 - 1, query, state, result
         from unnest($2::jsonb[], $3::int2[], $4::jsonb[]) with ordinality as i(query, state, result, ord)",
        &[&id, &items.query, &items.state, &items.result],
    )
    .await
    .context("storing a bulk job's queries")?;
    if rejected < total {
        tx.execute("insert into bulk_leases (job_id) values ($1)", &[&id])
            .await
            .context("opening a bulk job's lease")?;
    }
    Ok(Some(id))
}

/// The reception number of the party's job with this idempotency key.
///
/// # Errors
/// Database failures.
pub async fn reception_number_by_key(
    client: &impl GenericClient,
    party_id: PartyId,
    idempotency_key: &str,
) -> anyhow::Result<Option<String>> {
    let row = client
        .query_opt(
            "select reception_number from bulk_jobs
             where party_id = $1 and idempotency_key = $2",
            &[&party_id, &idempotency_key],
        )
        .await
        .context("reading a bulk job by its idempotency key")?;
    Ok(row.map(|r| r.get(0)))
}

/// The job with this reception number.
///
/// # Errors
/// Database failures.
pub async fn job_by_reception_number(
    client: &impl GenericClient,
    reception_number: &str,
) -> anyhow::Result<Option<JobRow>> {
    let row = client
        .query_opt(
            &format!(
                "select {JOB_COLUMNS} from bulk_jobs j join parties p on p.id = j.party_id
                 where j.reception_number = $1"
            ),
            &[&reception_number],
        )
        .await
        .context("reading a bulk job")?;
    Ok(row.as_ref().map(job))
}

/// A finished query as stored.
#[derive(Debug)]
pub struct DoneItem {
    pub idx: i32,
    pub query: serde_json::Value,
    pub check_id: Option<Uuid>,
    pub result: serde_json::Value,
}

/// Up to `limit` finished queries after index `after`, in order, and only below the first
/// unfinished one: a page never skips a query that is answered later, so a client paging while
/// the job runs misses nothing.
///
/// # Errors
/// Database failures.
pub async fn done_items(
    client: &impl GenericClient,
    job_id: i64,
    after: i32,
    limit: i64,
) -> anyhow::Result<Vec<DoneItem>> {
    let rows = client
        .query(
            "select idx, query, check_id, result from bulk_items
             where job_id = $1 and idx > $2 and state = 2
               and idx < coalesce((select min(idx) from bulk_items
                                   where job_id = $1 and state < 2), 2147483647)
             order by idx limit $3",
            &[&job_id, &after, &limit],
        )
        .await
        .context("reading a bulk job's results")?;
    Ok(rows
        .iter()
        .map(|row| DoneItem {
            idx: row.get(0),
            query: row.get(1),
            check_id: row.get(2),
            result: row.get(3),
        })
        .collect())
}

/// Locks the lease of the oldest unfinished job no other session holds, in the caller's
/// transaction (which holds it until it ends). Jobs of a party flagged for suspected
/// enumeration wait until the flag is cleared; those of a party revoked or expired since wait
/// for their retention to end (no one could read their answers).
///
/// # Errors
/// Database failures.
pub async fn lock_next_job(tx: &Transaction<'_>) -> anyhow::Result<Option<JobRow>> {
    let row = tx
        .query_opt(
            &format!(
                "select {JOB_COLUMNS} from bulk_leases l join bulk_jobs j on j.id = l.job_id
                 join parties p on p.id = j.party_id
                 where p.revoked_at is null and (p.expires_at is null or p.expires_at > now())
                   and not exists (select 1 from party_flags f
                                   where f.party_id = j.party_id and f.cleared_at is null)
                 order by l.job_id limit 1
                 for update of l skip locked"
            ),
            &[],
        )
        .await
        .context("taking a bulk job")?;
    Ok(row.as_ref().map(job))
}

/// Settles the queries a stopped worker left answered but unconfirmed: those whose disclosure
/// is in the audit log are done; the others (never recorded, never shown) wait again. Returns
/// how many were done and how many wait again. Only the holder of the job's lock may call this.
///
/// # Errors
/// Database failures.
pub async fn settle_answered(
    client: &impl GenericClient,
    job_id: i64,
) -> anyhow::Result<(i64, i64)> {
    let row = client
        .query_one(
            "with open as (
                 select i.idx, exists (select 1 from disclosures d where d.check_id = i.check_id)
                            as recorded
                 from bulk_items i where i.job_id = $1 and i.state = 1),
             settled as (
                 update bulk_items i
                    set state = case when o.recorded then 2 else 0 end,
                        check_id = case when o.recorded then i.check_id end,
                        result = case when o.recorded then i.result end
                   from open o
                  where i.job_id = $1 and i.idx = o.idx
                  returning o.recorded),
             counted as (
                 select count(*) filter (where recorded) as done,
                        count(*) filter (where not recorded) as again
                 from settled),
             job as (
                 update bulk_jobs set answered = answered + (select done from counted)
                  where id = $1)
             select done, again from counted",
            &[&job_id],
        )
        .await
        .context("settling a bulk job's unconfirmed answers")?;
    Ok((row.get(0), row.get(1)))
}

/// A waiting query.
#[derive(Debug)]
pub struct WaitingItem {
    pub idx: i32,
    pub query: serde_json::Value,
}

/// The first `limit` waiting queries of a job, in order.
///
/// # Errors
/// Database failures.
pub async fn waiting_items(
    client: &impl GenericClient,
    job_id: i64,
    limit: i64,
) -> anyhow::Result<Vec<WaitingItem>> {
    let rows = client
        .query(
            "select idx, query from bulk_items where job_id = $1 and state = 0
             order by idx limit $2",
            &[&job_id, &limit],
        )
        .await
        .context("reading a bulk job's waiting queries")?;
    Ok(rows
        .iter()
        .map(|row| WaitingItem {
            idx: row.get(0),
            query: row.get(1),
        })
        .collect())
}

/// Stores a chunk's results, column by column: answers under their check ids become
/// [`ANSWERED`] (shown only once [`confirm`] says their disclosures are recorded); queries that
/// no longer parse (`check_id` none) are [`DONE`] with their refusal at once.
///
/// # Errors
/// Database failures.
pub async fn store_answers(
    client: &impl GenericClient,
    job_id: i64,
    idx: &[i32],
    check_id: &[Option<Uuid>],
    result: &[serde_json::Value],
) -> anyhow::Result<()> {
    client
        .execute(
            "with refused as (
                 update bulk_items i
                    set state = case when r.check_id is null then 2 else 1 end,
                        check_id = r.check_id, result = r.result
                   from unnest($2::int4[], $3::uuid[], $4::jsonb[]) as r(idx, check_id, result)
                  where i.job_id = $1 and i.idx = r.idx and i.state = 0
                  returning r.check_id)
             update bulk_jobs
                set rejected = rejected + (select count(*) from refused where check_id is null)
              where id = $1",
            &[&job_id, &idx, &check_id, &result],
        )
        .await
        .context("storing a bulk chunk's answers")?;
    Ok(())
}

/// Marks the chunk's answered queries done (their disclosures are recorded), and the job done
/// when nothing of it is left.
///
/// # Errors
/// Database failures.
pub async fn confirm(client: &impl GenericClient, job_id: i64, idx: &[i32]) -> anyhow::Result<()> {
    client
        .execute(
            "with confirmed as (
                 update bulk_items set state = 2
                  where job_id = $1 and idx = any($2) and state = 1
                  returning 1)
             update bulk_jobs
                set answered = answered + (select count(*) from confirmed)
              where id = $1",
            &[&job_id, &idx],
        )
        .await
        .context("confirming a bulk chunk")?;
    Ok(())
}

/// Marks the job done when every query is (answered or refused); returns whether it is.
///
/// # Errors
/// Database failures.
pub async fn finish(client: &impl GenericClient, job_id: i64) -> anyhow::Result<bool> {
    let row = client
        .query_opt(
            "update bulk_jobs set done_at = coalesce(done_at, now())
              where id = $1
                and not exists (select 1 from bulk_items where job_id = $1 and state < 2)
              returning 1",
            &[&job_id],
        )
        .await
        .context("finishing a bulk job")?;
    Ok(row.is_some())
}

/// Ends a finished job's lease, in the transaction that holds it (commit it next).
///
/// # Errors
/// Database failures.
pub async fn release(tx: &Transaction<'_>, job_id: i64) -> anyhow::Result<()> {
    tx.execute("delete from bulk_leases where job_id = $1", &[&job_id])
        .await
        .context("ending a bulk job's lease")?;
    Ok(())
}

/// Deletes the jobs (with their queries and answers) received before `before`; returns how
/// many.
///
/// # Errors
/// Database failures.
pub async fn delete_received_before(
    client: &impl GenericClient,
    before: DateTime<Utc>,
) -> anyhow::Result<u64> {
    client
        .execute("delete from bulk_jobs where received_at < $1", &[&before])
        .await
        .context("deleting expired bulk jobs")
}

/// How many kept jobs are queued (nothing answered yet), working (some answered) and done.
///
/// # Errors
/// Database failures.
pub async fn count_by_state(client: &impl GenericClient) -> anyhow::Result<JobCounts> {
    let row = client
        .query_one(
            "select count(*) filter (where done_at is null and answered = 0),
                    count(*) filter (where done_at is null and answered > 0),
                    count(*) filter (where done_at is not null)
             from bulk_jobs",
            &[],
        )
        .await?;
    Ok(JobCounts {
        queued: row.get(0),
        working: row.get(1),
        done: row.get(2),
    })
}

/// The jobs of [`count_by_state`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobCounts {
    pub queued: i64,
    pub working: i64,
    pub done: i64,
}
