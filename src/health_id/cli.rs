//! `onshi purpose …`: register purposes, re-issue one ID, rotate a purpose's key.
//!
//! The rotation runs here rather than behind an endpoint: it streams a whole purpose, reports
//! progress on a terminal, and is resumed by simply running it again after a crash.

use anyhow::Context;
use clap::Subcommand;

use super::derive::HealthId;
use super::{HealthIdError, PurposeName};
use crate::config::Settings;
use crate::store::health_id::NewPurpose;

#[derive(Subcommand)]
pub enum PurposeCommand {
    /// Register a purpose and the parties that may receive and resolve its IDs.
    Add {
        #[arg(long)]
        name: String,
        /// A party id (see `onshi party add`); repeat the flag for each.
        #[arg(long = "party", required = true)]
        parties: Vec<i64>,
        #[arg(long, default_value_t = 1)]
        key_version: u32,
    },
    /// Re-issue every ID of the purpose under its next key version (resumes an unfinished run).
    RotateKey {
        #[arg(long)]
        purpose: String,
        /// Persons per transaction (and per checkpoint).
        #[arg(long, default_value_t = 1000)]
        chunk: usize,
        /// Stop after this many persons; the next run continues from the checkpoint.
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Revoke one ID on suspected misuse and issue its person a new one.
    Reissue {
        #[arg(long)]
        purpose: String,
        #[arg(long)]
        health_id: String,
    },
}

fn name_arg(name: &str) -> anyhow::Result<PurposeName> {
    PurposeName::parse(name).map_err(|e| anyhow::anyhow!("--purpose/--name: {}", e.message))
}

fn outcome(error: HealthIdError) -> anyhow::Error {
    match error {
        HealthIdError::Unexpected(e) => e,
        other => anyhow::anyhow!("{other}"),
    }
}

/// # Errors
/// Whatever the command failed on, with context.
pub async fn run(command: PurposeCommand, settings: &Settings) -> anyhow::Result<i32> {
    let mut plain = crate::store::connect(settings.migration_url()).await?;
    crate::store::migrate::run(&mut plain).await?;
    drop(plain);
    let pool = crate::store::pool(&settings.database_url, 1)?;
    let mut client = pool.get().await.context("connecting to the database")?;
    match command {
        PurposeCommand::Add {
            name,
            parties,
            key_version,
        } => {
            anyhow::ensure!(
                (1..=i32::MAX as u32).contains(&key_version),
                "--key-version must be positive"
            );
            let name = name_arg(&name)?;
            let parties: Vec<_> = parties
                .into_iter()
                .map(crate::domain::PartyId::new)
                .collect();
            match super::register_purpose(&mut client, &name, key_version, &parties).await? {
                NewPurpose::Created(p) => {
                    println!(
                        "purpose {} registered as {} (key version {})",
                        p.id, p.name, p.key_version
                    );
                    Ok(0)
                }
                NewPurpose::NameTaken => anyhow::bail!("a purpose named {} exists", name.as_str()),
                NewPurpose::UnknownParty => anyhow::bail!("a --party id is not a registered party"),
            }
        }
        PurposeCommand::RotateKey {
            purpose,
            chunk,
            limit,
        } => {
            let name = name_arg(&purpose)?;
            let keys = settings.health_id.open()?.context(
                "no health-ID key configured (ONSHI_HEALTH_ID_KEY_FILE or ONSHI_PKCS11_MODULE)",
            )?;
            let bar = indicatif::ProgressBar::new(0).with_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} persons ({per_sec}, {eta})",
                )
                .context("progress bar template")?,
            );
            let rotation = super::rotation::rotate(
                &mut client,
                &keys,
                name.as_str(),
                chunk,
                limit,
                |done, total| {
                    bar.set_length(total);
                    bar.set_position(done);
                },
            )
            .await
            .map_err(outcome)?;
            bar.finish_and_clear();
            if rotation.finished {
                println!(
                    "{}: {} IDs re-issued under key version {}; rotation finished",
                    name.as_str(),
                    rotation.done,
                    rotation.key_version
                );
            } else {
                println!(
                    "{}: {} IDs re-issued under key version {}; {} to go (run again to resume)",
                    name.as_str(),
                    rotation.done,
                    rotation.key_version,
                    rotation.remaining
                );
            }
            Ok(0)
        }
        PurposeCommand::Reissue { purpose, health_id } => {
            let name = name_arg(&purpose)?;
            let id = HealthId::parse(&health_id)
                .map_err(|e| anyhow::anyhow!("--health-id: {}", e.message))?;
            let keys = settings.health_id.open()?.context(
                "no health-ID key configured (ONSHI_HEALTH_ID_KEY_FILE or ONSHI_PKCS11_MODULE)",
            )?;
            let issued = super::reissue(&mut client, &keys, name.as_str(), &id)
                .await
                .map_err(outcome)?;
            println!(
                "{}: re-issued (epoch {}); the old ID now answers revoked",
                issued.purpose, issued.epoch
            );
            Ok(0)
        }
    }
}
