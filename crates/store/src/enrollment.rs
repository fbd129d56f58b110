//! Applying an enrolment batch, set-based: the lines are COPYed into a temporary staging table,
//! then a few statements apply them all. Lines touching the same coverage key are applied in
//! file order by splitting them into rounds (a key's n-th line is in round n); within a round
//! every key appears once, so acquire, update and lose statements cannot interfere.

use anyhow::Context;
use onshi_domain::PartyId;
use tokio_postgres::Transaction;

use onshi_domain::enrolment_columns::{ALL, ATTRIBUTES};

/// A staged line the stored coverages refuse (the caller turns it into the report's error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// 1-based line in the file; the header is line 1.
    pub line: u64,
    /// The column at fault (the header name).
    pub column: String,
    /// Stable machine code, `<column>.<kind>`.
    pub code: String,
}

/// Claims the batch id for this transaction; `false` when it was already used (the caller then
/// answers with the stored report). Blocks while another transaction holds the same id.
///
/// # Errors
/// Database failures.
pub async fn claim_batch(
    tx: &Transaction<'_>,
    batch_id: &str,
    party_id: Option<PartyId>,
) -> anyhow::Result<bool> {
    let inserted = tx
        .execute(
            "insert into enrollment_batches (id, party_id, status, report)
             values ($1, $2, 'applied', '{}') on conflict (id) do nothing",
            &[&batch_id, &party_id],
        )
        .await
        .context("claiming the batch id")?;
    Ok(inserted == 1)
}

/// The stored report of a batch (as JSON) and the party that sent it.
///
/// # Errors
/// Database failures.
pub async fn stored_report(
    client: &impl tokio_postgres::GenericClient,
    batch_id: &str,
) -> anyhow::Result<Option<(Option<PartyId>, serde_json::Value)>> {
    let row = client
        .query_opt(
            "select party_id, report from enrollment_batches where id = $1",
            &[&batch_id],
        )
        .await?;
    Ok(row.map(|row| (row.get(0), row.get(1))))
}

/// Records a rejected batch (in its own transaction, after the batch's was rolled back) so that
/// a repeat of its id returns the same answer.
///
/// # Errors
/// Database failures.
pub async fn record_rejection(
    client: &impl tokio_postgres::GenericClient,
    batch_id: &str,
    party_id: Option<PartyId>,
    report: &serde_json::Value,
) -> anyhow::Result<()> {
    client
        .execute(
            "insert into enrollment_batches (id, party_id, status, report)
             values ($1, $2, 'rejected', $3) on conflict (id) do nothing",
            &[&batch_id, &party_id, report],
        )
        .await
        .context("recording the rejected batch")?;
    Ok(())
}

/// Stores the final report of an applied batch (same transaction as the changes).
///
/// # Errors
/// Database failures.
pub async fn finish_batch(
    tx: &Transaction<'_>,
    batch_id: &str,
    report: &serde_json::Value,
) -> anyhow::Result<()> {
    tx.execute(
        "update enrollment_batches set report = $2 where id = $1",
        &[&batch_id, report],
    )
    .await?;
    Ok(())
}

/// Creates the staging table (dropped at commit or rollback).
///
/// # Errors
/// Database failures.
pub async fn create_staging(
    tx: &Transaction<'_>,
    statement_timeout: std::time::Duration,
) -> anyhow::Result<()> {
    let mut ddl = String::from(
        "create temp table staging (line integer not null, change text not null, link bytea",
    );
    for col in &ALL[2..] {
        let ty = if col.is_date() { "date" } else { "text" };
        ddl.push_str(&format!(", {} {ty}", col.name()));
    }
    // A batch of millions of rows legitimately runs for minutes: the request sessions'
    // statement timeout gives way, for this transaction only, to the upload's own (0: none).
    ddl.push_str(", round integer not null default 1) on commit drop;");
    ddl.push_str(&format!(
        "set local statement_timeout = {};",
        statement_timeout.as_millis()
    ));
    ddl.push_str(
        "create temp table load_errors (line integer not null, col text not null, code text not null)
         on commit drop;",
    );
    tx.batch_execute(&ddl)
        .await
        .context("creating the staging table")
}

/// The COPY statement the encoded lines of `enrollment::row` are fed to.
pub fn copy_statement() -> String {
    let columns: Vec<&str> = ALL[2..].iter().map(|c| c.name()).collect();
    format!(
        "copy staging (line, change, link, {}) from stdin",
        columns.join(", ")
    )
}

/// Counts of what an applied batch changed.
#[derive(Debug, Default)]
pub struct Applied {
    pub acquired: u64,
    pub updated: u64,
    pub lost: u64,
}

const KEY_MATCH: &str = "c.insurer_number = s.insurer_number and c.number = s.number
     and c.symbol = s.symbol and c.branch = s.branch";

/// Applies the staged lines. Lines that fail a check against the stored coverages are recorded
/// as errors and skipped; the caller rolls back when any were recorded.
///
/// # Errors
/// Database failures.
pub async fn apply(
    tx: &Transaction<'_>,
    batch_id: &str,
) -> anyhow::Result<(Applied, Vec<Conflict>)> {
    tx.batch_execute("analyze staging").await?;
    let repeated_keys: bool = tx
        .query_one(
            "select exists (select 1 from staging
                            group by insurer_number, number, symbol, branch having count(*) > 1)",
            &[],
        )
        .await?
        .get(0);
    if repeated_keys {
        tx.batch_execute(
            "update staging s set round = r.n
             from (select line, row_number() over (
                       partition by insurer_number, number, symbol, branch order by line) as n
                   from staging) r
             where r.line = s.line and r.n > 1",
        )
        .await
        .context("ordering repeated keys into rounds")?;
    }
    let rounds: i32 = tx
        .query_one("select coalesce(max(round), 0) from staging", &[])
        .await?
        .get(0);

    tx.execute(
        "insert into insurers (insurer_number, name)
         select distinct on (insurer_number) insurer_number, insurer_name from staging
         order by insurer_number, insurer_name is null, line desc
         on conflict (insurer_number) do update set name = coalesce(excluded.name, insurers.name)",
        &[],
    )
    .await
    .context("registering insurers")?;

    // A version row holds every attribute column, then where it came from.
    let attributes: Vec<&str> = ATTRIBUTES.iter().map(|c| c.name()).collect();
    let versions = format!("{}, batch_id, line", attributes.join(", "));
    let staged: Vec<String> = attributes.iter().map(|c| format!("s.{c}")).collect();
    let merged: Vec<String> = attributes
        .iter()
        .map(|c| format!("coalesce(s.{c}, v.{c})"))
        .collect();

    let acquire_conflicts = format!(
        "insert into load_errors
         select s.line, 'number', 'coverage.already_active' from staging s
         where s.round = $1 and s.change = 'acquire'
           and exists (select 1 from coverages c where {KEY_MATCH} and c.lost_on is null)"
    );
    let insert_persons = "insert into persons (link)
         select distinct link from staging where round = $1 and change = 'acquire'
         on conflict (link) do nothing";
    let insert_acquired = format!(
        "with fresh as (
             insert into coverages (person_id, insurer_number, symbol, number, branch, acquired_on,
                                    batch_id, line)
             select p.id, s.insurer_number, s.symbol, s.number, s.branch, s.acquired_on, $2, s.line
             from staging s join persons p on p.link = s.link
             where s.round = $1 and s.change = 'acquire'
               and not exists (select 1 from coverages c where {KEY_MATCH} and c.lost_on is null)
             returning id, line)
         insert into coverage_versions (coverage_id, effective_on, {versions})
         select f.id, s.acquired_on, {}, $2, s.line
         from fresh f join staging s on s.line = f.line",
        staged.join(", ")
    );
    let not_active = format!(
        "insert into load_errors
         select s.line, 'number', 'coverage.not_active' from staging s
         where s.round = $1 and s.change in ('update', 'lose')
           and not exists (select 1 from coverages c where {KEY_MATCH} and c.lost_on is null)"
    );
    let out_of_order = format!(
        "insert into load_errors
         select s.line, 'effective_on', 'effective_on.before_latest_change'
         from staging s join coverages c on {KEY_MATCH} and c.lost_on is null
         where s.round = $1 and s.change = 'update'
           and s.effective_on < (select max(v.effective_on) from coverage_versions v
                                 where v.coverage_id = c.id)"
    );
    let insert_updates = format!(
        "insert into coverage_versions (coverage_id, effective_on, {versions})
         select c.id, s.effective_on, {}, $2, s.line
         from staging s
         join coverages c on {KEY_MATCH} and c.lost_on is null
         join lateral (select * from coverage_versions v where v.coverage_id = c.id
                       order by v.effective_on desc, v.id desc limit 1) v on true
         where s.round = $1 and s.change = 'update' and s.effective_on >= v.effective_on",
        merged.join(", ")
    );
    let lost_too_early = format!(
        "insert into load_errors
         select s.line, 'lost_on', 'lost_on.before_acquired_on'
         from staging s join coverages c on {KEY_MATCH} and c.lost_on is null
         where s.round = $1 and s.change = 'lose' and s.lost_on < c.acquired_on"
    );
    let apply_losses = format!(
        "with lost as (
             update coverages c set lost_on = s.lost_on, loss_reason = s.loss_reason
             from staging s
             where s.round = $1 and s.change = 'lose' and {KEY_MATCH} and c.lost_on is null
               and s.lost_on >= c.acquired_on
             returning c.id, s.lost_on, s.loss_reason, s.line)
         insert into coverage_losses (coverage_id, lost_on, loss_reason, batch_id, line)
         select id, lost_on, loss_reason, $2, line from lost"
    );

    let mut applied = Applied::default();
    for round in 1..=rounds {
        let r = &round;
        let b = &batch_id;
        tx.execute(acquire_conflicts.as_str(), &[r])
            .await
            .context("acquire conflicts")?;
        tx.execute(insert_persons, &[r]).await.context("persons")?;
        applied.acquired += tx
            .execute(insert_acquired.as_str(), &[r, b])
            .await
            .context("acquired coverages")?;
        tx.execute(not_active.as_str(), &[r])
            .await
            .context("inactive keys")?;
        tx.execute(out_of_order.as_str(), &[r])
            .await
            .context("update order")?;
        applied.updated += tx
            .execute(insert_updates.as_str(), &[r, b])
            .await
            .context("updates")?;
        tx.execute(lost_too_early.as_str(), &[r])
            .await
            .context("loss dates")?;
        applied.lost += tx
            .execute(apply_losses.as_str(), &[r, b])
            .await
            .context("losses")?;
    }

    let errors = tx
        .query(
            "select line, col, code from load_errors order by line, col",
            &[],
        )
        .await?
        .iter()
        .map(|row| {
            let line: i32 = row.get(0);
            Conflict {
                line: u64::try_from(line).unwrap_or_default(),
                column: row.get(1),
                code: row.get(2),
            }
        })
        .collect();
    Ok((applied, errors))
}
