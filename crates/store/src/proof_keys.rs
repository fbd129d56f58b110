//! The published public keys of the proofs of check (`proof_keys`): added by a server when it
//! starts with a key not yet published, read for `GET /.well-known/jwks.json`, never changed or
//! removed by the service.

use anyhow::Context;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

/// One published key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedKey {
    /// The key's id in the JWKS and in every proof's header.
    pub kid: String,
    /// The Ed25519 public key.
    pub public_key: [u8; 32],
    pub first_published_at: DateTime<Utc>,
}

/// Publishes a key unless it is published already (a restart, or another server with the same
/// key). Returns whether this call added it.
///
/// # Errors
/// Database failures.
pub async fn publish(
    client: &impl GenericClient,
    kid: &str,
    public_key: &[u8; 32],
) -> anyhow::Result<bool> {
    let statement = client
        .prepare_cached(
            "insert into proof_keys (kid, public_key) values ($1, $2) on conflict do nothing",
        )
        .await?;
    let added = client
        .execute(&statement, &[&kid, &public_key.as_slice()])
        .await?;
    Ok(added == 1)
}

/// Every published key, the most recently published first.
///
/// # Errors
/// Database failures, or a stored key that is not 32 bytes (the table's check forbids it).
pub async fn published(client: &impl GenericClient) -> anyhow::Result<Vec<PublishedKey>> {
    let statement = client
        .prepare_cached(
            "select kid, public_key, first_published_at from proof_keys
             order by first_published_at desc, kid",
        )
        .await?;
    client
        .query(&statement, &[])
        .await?
        .into_iter()
        .map(|row| {
            let bytes: Vec<u8> = row.get(1);
            Ok(PublishedKey {
                kid: row.get(0),
                public_key: bytes
                    .as_slice()
                    .try_into()
                    .context("a published proof key is not 32 bytes")?,
                first_published_at: row.get(2),
            })
        })
        .collect()
}
