//! `onshi proof verify`: checks a proof offline, against a saved JWK Set.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use super::jws;

#[derive(Subcommand)]
pub enum ProofCommand {
    /// Read a proof (compact JWS) on standard input and check it against a key of the JWK Set in
    /// FILE (as saved from GET /.well-known/jwks.json); print its payload and exit 0 when it
    /// verifies, exit 1 with the reason on standard error when it does not. Needs no server.
    Verify {
        #[arg(long, value_name = "FILE")]
        jwks: PathBuf,
    },
}

/// Runs a proof command; returns the process exit code.
///
/// # Errors
/// The key set cannot be read or is not a JWK Set (a proof that does not verify is exit 1).
pub fn run(command: ProofCommand) -> anyhow::Result<i32> {
    let ProofCommand::Verify { jwks } = command;
    let text = std::fs::read_to_string(&jwks)
        .with_context(|| format!("reading the key set {}", jwks.display()))?;
    let keys: jws::Jwks = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JWK Set ({{\"keys\": [...]}})", jwks.display()))?;
    let mut proof = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut proof)
        .context("reading the proof from standard input")?;
    match verified_payload(&proof, &keys) {
        Ok(payload) => {
            println!("{payload}");
            Ok(0)
        }
        Err(reason) => {
            eprintln!("onshi proof verify: NOT verified: {reason}");
            Ok(1)
        }
    }
}

/// The payload of a proof that verifies, pretty-printed.
fn verified_payload(proof: &str, keys: &jws::Jwks) -> Result<String, String> {
    let (header, payload) = jws::verify(proof, keys).map_err(|e| e.to_string())?;
    if header.typ.as_deref() != Some(jws::TYPE) {
        return Err(format!(
            "the header's typ is {:?}, not {:?}: not an onshi proof",
            header.typ,
            jws::TYPE
        ));
    }
    let value: serde_json::Value =
        serde_json::from_slice(&payload).map_err(|_| "the payload is not JSON".to_owned())?;
    Ok(serde_json::to_string_pretty(&value).expect("a JSON value serializes"))
}
