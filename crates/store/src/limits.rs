//! The abuse limits' shared state: each party's bucket and daily count, its flags, and the
//! notifications that tell every server at once (`onshi_party` for a revoked or changed party,
//! `onshi_flag` for a flag raised or cleared).

use chrono::{DateTime, NaiveDate, Utc};
use onshi_domain::PartyId;
use tokio_postgres::GenericClient;

/// The channel a party's revocation is announced on (payload: the party id).
pub const PARTY_CHANNEL: &str = "onshi_party";
/// The channel a flag raised or cleared is announced on (payload: the party id).
pub const FLAG_CHANNEL: &str = "onshi_flag";

/// What the shared bucket said to a request for tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grant {
    /// Tokens granted: at least the need, or 0 when refused.
    pub granted: f64,
    /// Seconds until the need could be granted (when refused for rate).
    pub wait_seconds: f64,
    pub quota_spent: bool,
    pub flagged: bool,
}

/// The shape of a party's budget, as configured.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub rate: f64,
    pub burst: f64,
    /// Queries a day; 0: no quota.
    pub daily_quota: i64,
}

/// Takes `need` tokens, and up to `extra` more as the server's lease, from the party's bucket.
///
/// # Errors
/// Database failures.
pub async fn take(
    client: &deadpool_postgres::Client,
    party_id: PartyId,
    need: f64,
    extra: f64,
    budget: Budget,
    day: NaiveDate,
) -> anyhow::Result<Grant> {
    let statement = client
        .prepare_cached(
            "select granted, wait_seconds, quota_spent, flagged
             from onshi_take_budget($1, $2, $3, $4, $5, $6, $7)",
        )
        .await?;
    let row = client
        .query_one(
            &statement,
            &[
                &party_id,
                &need,
                &extra,
                &budget.rate,
                &budget.burst,
                &budget.daily_quota,
                &day,
            ],
        )
        .await?;
    Ok(Grant {
        granted: row.get(0),
        wait_seconds: row.get(1),
        quota_spent: row.get(2),
        flagged: row.get(3),
    })
}

/// Counts `queries` against the party's quota for `day`, without taking tokens from its bucket
/// (what a bulk inquiry's queries cost); false, counting nothing, when they do not fit in what
/// is left of the day's quota.
///
/// # Errors
/// Database failures.
pub async fn count_against_quota(
    client: &impl GenericClient,
    party_id: PartyId,
    queries: i64,
    budget: Budget,
    day: NaiveDate,
) -> anyhow::Result<bool> {
    client
        .execute(
            "insert into party_budgets (party_id, tokens, refilled_at, quota_day, used)
             values ($1, $2, now(), $3, 0)
             on conflict (party_id) do nothing",
            &[&party_id, &budget.burst, &day],
        )
        .await?;
    let counted = client
        .execute(
            "update party_budgets
                set used = (case when quota_day = $3 then used else 0 end) + $2, quota_day = $3
              where party_id = $1
                and (case when quota_day = $3 then used else 0 end) + $2 <= $4",
            &[&party_id, &queries, &day, &budget.daily_quota],
        )
        .await?;
    Ok(counted == 1)
}

/// A flag as stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FlagRow {
    pub id: i64,
    pub party_id: PartyId,
    pub party_name: Option<String>,
    pub reason: String,
    pub flagged_at: DateTime<Utc>,
    pub misses: i32,
    pub answers: i32,
    pub cleared_at: Option<DateTime<Utc>>,
    pub cleared_by: Option<String>,
}

/// Raises a flag against the party unless one is active, and tells every server. Returns whether
/// this call raised it.
///
/// # Errors
/// Database failures.
pub async fn raise_flag(
    client: &impl GenericClient,
    party_id: PartyId,
    reason: &str,
    misses: i32,
    answers: i32,
) -> anyhow::Result<bool> {
    let raised = client
        .execute(
            "with raised as (
                 insert into party_flags (party_id, reason, misses, answers)
                 values ($1, $2, $3, $4)
                 on conflict (party_id) where cleared_at is null do nothing
                 returning party_id)
             select pg_notify($5, party_id::text) from raised",
            &[&party_id, &reason, &misses, &answers, &FLAG_CHANNEL],
        )
        .await?;
    Ok(raised > 0)
}

/// Clears the party's active flag (an administrator's decision) and tells every server. Returns
/// whether there was one.
///
/// # Errors
/// Database failures.
pub async fn clear_flag(
    client: &impl GenericClient,
    party_id: PartyId,
    cleared_by: &str,
) -> anyhow::Result<bool> {
    let cleared = client
        .execute(
            "with cleared as (
                 update party_flags set cleared_at = now(), cleared_by = $2
                 where party_id = $1 and cleared_at is null
                 returning party_id)
             select pg_notify($3, party_id::text) from cleared",
            &[&party_id, &cleared_by, &FLAG_CHANNEL],
        )
        .await?;
    Ok(cleared > 0)
}

/// The parties flagged now.
///
/// # Errors
/// Database failures.
pub async fn active_flags(client: &impl GenericClient) -> anyhow::Result<Vec<PartyId>> {
    let rows = client
        .query(
            "select party_id from party_flags where cleared_at is null",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Every flag, newest first; only the active ones unless `all`.
///
/// # Errors
/// Database failures.
pub async fn flags(client: &impl GenericClient, all: bool) -> anyhow::Result<Vec<FlagRow>> {
    let rows = client
        .query(
            "select f.id, f.party_id, p.name, f.reason, f.flagged_at, f.misses, f.answers,
                    f.cleared_at, f.cleared_by
             from party_flags f left join parties p on p.id = f.party_id
             where $1 or f.cleared_at is null
             order by f.flagged_at desc, f.id desc",
            &[&all],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| FlagRow {
            id: r.get(0),
            party_id: r.get(1),
            party_name: r.get(2),
            reason: r.get(3),
            flagged_at: r.get(4),
            misses: r.get(5),
            answers: r.get(6),
            cleared_at: r.get(7),
            cleared_by: r.get(8),
        })
        .collect())
}

/// A notification on one of the channels above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Party(PartyId),
    Flag(PartyId),
}

/// Opens a session that listens on both channels. The receiver yields each notice and ends when
/// the session does (the caller then listens afresh and treats everything cached as stale).
///
/// # Errors
/// The database is unreachable.
pub async fn listen(
    config: &super::Connector,
) -> anyhow::Result<(
    tokio_postgres::Client,
    tokio::sync::mpsc::UnboundedReceiver<Notice>,
)> {
    use anyhow::Context;
    let (client, mut connection) = config
        .connect_raw()
        .await
        .context("connecting the notification session")?;
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = futures_util::StreamExt::next(&mut messages).await {
            let notice = match message {
                Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                    let Ok(id) = n.payload().parse::<i64>() else {
                        continue;
                    };
                    match n.channel() {
                        PARTY_CHANNEL => Notice::Party(PartyId::new(id)),
                        FLAG_CHANNEL => Notice::Flag(PartyId::new(id)),
                        _ => continue,
                    }
                }
                Ok(_) => continue,
                Err(error) => {
                    tracing::warn!(%error, "notification session ended");
                    break;
                }
            };
            if sender.send(notice).is_err() {
                break;
            }
        }
    });
    client
        .batch_execute(&format!("listen {PARTY_CHANNEL}; listen {FLAG_CHANNEL}"))
        .await
        .context("listening")?;
    Ok((client, receiver))
}

/// Whether the party has an active flag.
///
/// # Errors
/// Database failures.
pub async fn is_flagged(client: &impl GenericClient, party_id: PartyId) -> anyhow::Result<bool> {
    let row = client
        .query_one(
            "select exists (select 1 from party_flags where party_id = $1 and cleared_at is null)",
            &[&party_id],
        )
        .await?;
    Ok(row.get(0))
}
