//! Key rotation: re-issue every current ID of a purpose under its next key version.
//!
//! The job streams the purpose's persons in id order, a chunk per transaction: each old ID is
//! revoked and the new one recorded, and the checkpoint (the last person id done) is saved in the
//! same transaction. A crash therefore loses at most the chunk in flight, and running the job
//! again resumes after the checkpoint under the same key version. Persons are handled one by one
//! inside a chunk (each may need its own collision re-derivation); the round trips are on one
//! connection inside one transaction, which a rotation, rare and offline, can afford.

use super::keys::KeySource;
use super::{issue_new, HealthIdError};
use crate::store::health_id as store;

/// Where a rotation stands after a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub key_version: u32,
    /// Persons re-issued by this run.
    pub done: u64,
    /// Persons still to do (0 when finished).
    pub remaining: u64,
    pub finished: bool,
}

/// Runs (or resumes) the rotation of the purpose. `limit` stops the run after that many persons,
/// leaving the checkpoint for the next run; `progress` is told `(done, total)` after each chunk.
///
/// # Errors
/// [`HealthIdError::UnknownPurpose`], database or key failures (the committed chunks stay done).
pub async fn rotate(
    client: &mut deadpool_postgres::Client,
    keys: &KeySource,
    purpose_name: &str,
    chunk: usize,
    limit: Option<u64>,
    mut progress: impl FnMut(u64, u64),
) -> Result<Rotation, HealthIdError> {
    let purpose = store::purpose_by_name(&*client, purpose_name)
        .await?
        .ok_or(HealthIdError::UnknownPurpose)?;
    let (key_version, mut after) = store::start_rotation(client, purpose.id).await?;
    let total = store::count_to_rotate(&*client, purpose.id, key_version).await?;
    let key = keys.keyed(&purpose.name, key_version);
    let chunk = u64::try_from(chunk.max(1)).unwrap_or(1000);
    let mut done = 0u64;
    progress(done, total);
    loop {
        let take = match limit {
            Some(limit) if done >= limit => {
                return Ok(Rotation {
                    key_version,
                    done,
                    remaining: total - done,
                    finished: false,
                })
            }
            Some(limit) => chunk.min(limit - done),
            None => chunk,
        };
        let rows = store::rotation_chunk(
            &*client,
            purpose.id,
            key_version,
            after,
            i64::try_from(take).unwrap_or(i64::MAX),
        )
        .await?;
        let Some(last) = rows.last().map(|r| r.person_id) else {
            store::save_checkpoint(&*client, purpose.id, key_version, after, true).await?;
            return Ok(Rotation {
                key_version,
                done,
                remaining: 0,
                finished: true,
            });
        };
        let tx = client.transaction().await.map_err(anyhow::Error::from)?;
        for row in &rows {
            // Revoked meanwhile (a re-issuance): that person already holds a new-version ID.
            if store::revoke(&tx, row.row_id).await?.is_some() {
                issue_new(&tx, &key, &purpose, key_version, row.person_id, row.epoch).await?;
            }
        }
        store::save_checkpoint(&tx, purpose.id, key_version, last, false).await?;
        tx.commit().await.map_err(anyhow::Error::from)?;
        after = last;
        done += rows.len() as u64;
        progress(done, total.max(done));
    }
}
