//! `onshi audit ...`: verifying the chain against the witness, printing the checkpoint key.

use clap::Subcommand;

use crate::config::Settings;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Walk every lane's keyed chain and check it against the latest checkpoints in the witness;
    /// exit 1 naming each lane and the first record affected by a change, deletion or rollback.
    Verify,
    /// Print the public key that checks the checkpoints' signatures (hex Ed25519), for anyone
    /// who keeps or inspects the witness without holding the audit key.
    PublicKey,
}

/// Runs an audit command; returns the process exit code.
///
/// # Errors
/// The key source, the witness or the database failed (a tampering is exit code 1, not an error).
pub async fn run(command: AuditCommand, settings: &Settings) -> anyhow::Result<i32> {
    match command {
        AuditCommand::Verify => verify(settings).await,
        AuditCommand::PublicKey => {
            let key = settings.audit.open_key(&settings.health_id)?;
            println!("{}", key.checkpoint_signer()?.verifier().to_hex());
            Ok(0)
        }
    }
}

async fn verify(settings: &Settings) -> anyhow::Result<i32> {
    let key = settings.audit.open_key(&settings.health_id)?;
    let witness = match &settings.audit.witness_dir {
        Some(dir) => Some(crate::audit::witness::DirWitness::open(dir)?),
        None => None,
    };
    let client = crate::store::connect(&settings.database_url).await?;
    let report = crate::audit::verify::verify(
        &client,
        &key,
        witness
            .as_ref()
            .map(|w| w as &dyn crate::audit::witness::Witness),
    )
    .await?;
    for problem in &report.problems {
        println!("{problem}");
    }
    let verdict = if report.intact() {
        "intact"
    } else {
        "NOT intact"
    };
    println!(
        "audit {verdict}: {} records in {} lanes ({} before keyed chains)",
        report.records, report.lanes, report.unkeyed
    );
    match (&report.latest_checkpoint, witness.is_some()) {
        (Some(at), _) => println!(
            "checkpoints: {}, the latest of {at}; not yet witnessed: {} records",
            report.checkpoints, report.not_yet_witnessed
        ),
        (None, true) => println!(
            "no checkpoint yet; not yet witnessed: {} records",
            report.not_yet_witnessed
        ),
        (None, false) => println!(
            "no witness configured (ONSHI_AUDIT_WITNESS_DIR): deleted newest records and \
             deleted lanes cannot be detected; not yet witnessed: {} records",
            report.not_yet_witnessed
        ),
    }
    Ok(if report.intact() { 0 } else { 1 })
}
