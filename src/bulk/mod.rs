//! The asynchronous bulk inquiry (一括照会): hospitals and dental clinics check the patients
//! booked for tomorrow the day before. A facility uploads up to [`BULK_MAX`] queries, receives
//! a reception number at once, and reads the answers later, page by page.
//!
//! The upload is stored whole as a job in PostgreSQL ([`submit`]); the [`worker`] of any server
//! takes it and answers it chunk by chunk, recording each answer in the audit log as every
//! check does. A job survives its server's restart: the next worker (on any server) carries it
//! on without losing or repeating a query's audit record (see `worker` for how). Jobs are
//! deleted `retention_days` after their receipt.

pub mod worker;

use anyhow::Context;
use chrono::NaiveDate;
use serde::Deserialize;

use crate::domain::PartyId;
use crate::store::bulk::{self as store, JobRow, NewItems};

/// The most queries one bulk inquiry holds.
pub const BULK_MAX: usize = 100_000;

/// The worker's settings (`[bulk]` in the configuration file).
///
/// | setting | env | default |
/// |---|---|---|
/// | `bulk.worker` | `ONSHI_BULK_WORKER` (`true`/`false`: whether this server works on bulk jobs) | `true` |
/// | `bulk.chunk_size` | `ONSHI_BULK_CHUNK_SIZE` (queries answered and recorded together) | 500 |
/// | `bulk.poll_millis` | `ONSHI_BULK_POLL_MILLIS` (how often an idle worker looks for a job) | 1000 |
/// | `bulk.retention_days` | `ONSHI_BULK_RETENTION_DAYS` (a job and its answers are deleted this long after receipt) | 7 |
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BulkSettings {
    pub worker: bool,
    pub chunk_size: usize,
    pub poll_millis: u64,
    pub retention_days: u32,
}

impl Default for BulkSettings {
    fn default() -> Self {
        BulkSettings {
            worker: true,
            chunk_size: 500,
            poll_millis: 1000,
            retention_days: 7,
        }
    }
}

impl BulkSettings {
    /// # Errors
    /// A chunk size outside 1 to 10,000, a poll interval of 0, or a retention of 0 days.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=10_000).contains(&self.chunk_size),
            "bulk.chunk_size (ONSHI_BULK_CHUNK_SIZE) must be 1 to 10000, not {}",
            self.chunk_size
        );
        anyhow::ensure!(
            self.poll_millis >= 1,
            "bulk.poll_millis (ONSHI_BULK_POLL_MILLIS) must be at least 1"
        );
        anyhow::ensure!(
            self.retention_days >= 1,
            "bulk.retention_days (ONSHI_BULK_RETENTION_DAYS) must be at least 1"
        );
        Ok(())
    }
}

/// One uploaded query: as sent (echoed with its result), and refused at the upload or not.
pub struct Submitted {
    pub query: serde_json::Value,
    /// The refusal (an error body) of a query that failed its own validation.
    pub refusal: Option<serde_json::Value>,
}

/// A new random reception number: 128 bits, as 32 lower-case hex digits.
fn reception_number() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `text` could be a reception number (anything else names no job).
pub fn is_reception_number(text: &str) -> bool {
    text.len() == 32
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Stores the job with all its queries in one transaction; returns its reception number. With
/// an idempotency key the party already used, stores nothing and returns that job's number
/// (two uploads racing with one key: one stores, the other is answered the first's number).
///
/// # Errors
/// The database failed: nothing is stored.
pub async fn submit(
    pool: &deadpool_postgres::Pool,
    party_id: PartyId,
    received_on: NaiveDate,
    idempotency_key: Option<&str>,
    queries: Vec<Submitted>,
) -> anyhow::Result<String> {
    let mut items = NewItems::default();
    for submitted in queries {
        items.state.push(if submitted.refusal.is_some() {
            store::DONE
        } else {
            store::WAITING
        });
        items.query.push(submitted.query);
        items.result.push(submitted.refusal);
    }
    let mut client = pool.get().await.context("getting a database connection")?;
    let tx = client.transaction().await?;
    let number = reception_number();
    let stored =
        store::insert_job(&tx, &number, party_id, received_on, idempotency_key, &items).await?;
    tx.commit().await.context("committing a bulk job")?;
    match (stored, idempotency_key) {
        (Some(_), _) => Ok(number),
        (None, Some(key)) => store::reception_number_by_key(&**client, party_id, key)
            .await?
            .context("a bulk job's idempotency key was taken, then its job was gone"),
        (None, None) => anyhow::bail!("a bulk job without an idempotency key was not stored"),
    }
}

/// The reception number of the party's job sent with this idempotency key, if any.
///
/// # Errors
/// The database failed.
pub async fn previous_job(
    pool: &deadpool_postgres::Pool,
    party_id: PartyId,
    idempotency_key: &str,
) -> anyhow::Result<Option<String>> {
    let client = pool.get().await.context("getting a database connection")?;
    store::reception_number_by_key(&**client, party_id, idempotency_key).await
}

/// The party's job with this reception number: another party's is as unknown as none.
///
/// # Errors
/// The database failed.
pub async fn job_of(
    client: &impl tokio_postgres::GenericClient,
    party_id: PartyId,
    reception_number: &str,
) -> anyhow::Result<Option<JobRow>> {
    if !is_reception_number(reception_number) {
        return Ok(None);
    }
    Ok(store::job_by_reception_number(client, reception_number)
        .await?
        .filter(|job| job.party_id == party_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reception_numbers_are_random_and_recognised() {
        let (a, b) = (reception_number(), reception_number());
        assert_ne!(a, b);
        assert!(is_reception_number(&a));
        assert!(!is_reception_number(&a.to_uppercase()));
        assert!(!is_reception_number(&a[1..]));
        assert!(!is_reception_number("1"));
    }

    #[test]
    fn settings_are_read_from_the_environment_and_checked() {
        let env = |name: &str| match name {
            "ONSHI_LINK_KEY" => Some("5a".repeat(32)),
            "ONSHI_BULK_WORKER" => Some("false".to_owned()),
            "ONSHI_BULK_CHUNK_SIZE" => Some("7".to_owned()),
            _ => None,
        };
        let settings = crate::config::Settings::load_from(None, env).unwrap();
        assert!(!settings.bulk.worker);
        assert_eq!(settings.bulk.chunk_size, 7);
        assert_eq!(settings.bulk.retention_days, 7);
        for (name, bad) in [
            ("ONSHI_BULK_RETENTION_DAYS", "0"),
            ("ONSHI_BULK_CHUNK_SIZE", "10001"),
            ("ONSHI_BULK_CHUNK_SIZE", "many"),
        ] {
            let env = |n: &str| (n == name).then(|| bad.to_owned());
            assert!(
                crate::config::Settings::load_from(None, env).is_err(),
                "{name}={bad}"
            );
        }
    }
}
