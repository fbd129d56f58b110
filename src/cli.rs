//! The `onshi` command line: the same service, driven by operators and scripts.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::config::Settings;
use crate::enrollment::{self, Outcome, Sender};
use crate::parties::{NewParty, Role, Token};

#[derive(Parser)]
#[command(
    name = "onshi",
    version,
    about = "Online insurance-eligibility confirmation"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve the API on ONSHI_LISTEN (default 127.0.0.1:8080), migrating the database first.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Load an enrolment CSV (all or nothing) and print its report.
    Load {
        file: PathBuf,
        /// The batch id (Idempotency-Key); defaults to the SHA-256 of the file, so loading the
        /// same file twice changes nothing the second time.
        #[arg(long)]
        batch_id: Option<String>,
    },
    /// Manage parties (facilities, claims systems, insurers, administrators).
    Party {
        #[command(subcommand)]
        command: PartyCommand,
    },
    /// Manage health-ID purposes: register, re-issue one ID, rotate the key.
    Purpose {
        #[command(subcommand)]
        command: crate::health_id::cli::PurposeCommand,
    },
    /// Manage the person-link key.
    LinkKey {
        #[command(subcommand)]
        command: LinkKeyCommand,
    },
    /// Check the access audit.
    Audit {
        #[command(subcommand)]
        command: crate::audit::cli::AuditCommand,
    },
    /// Check a proof of check offline.
    Proof {
        #[command(subcommand)]
        command: crate::proof::cli::ProofCommand,
    },
    /// Answer the real system's XML folder interface: request files dropped in DIR/req are
    /// checked with onshi over HTTP and answered in DIR/res (runs until stopped).
    Bridge {
        /// The folder with `req` and `res`, as the reception software is set up.
        #[arg(long, value_name = "DIR")]
        folder: PathBuf,
        /// onshi's base URL.
        #[arg(long, value_name = "URL")]
        server: String,
        /// A file holding the facility's token.
        #[arg(long, value_name = "FILE")]
        token_file: PathBuf,
        /// Seconds to keep asking an unreachable onshi before answering with an error.
        #[arg(long, value_name = "SECONDS", default_value_t = 60)]
        give_up_after: u64,
        /// Milliseconds between looks at DIR/req.
        #[arg(long, value_name = "MS", default_value_t = 500)]
        poll_ms: u64,
        /// Keep answered requests in this folder instead of removing them.
        #[arg(long, value_name = "DIR")]
        archive: Option<PathBuf>,
        /// Serve the bridge's own metrics (files handled, retries) as GET /metrics here,
        /// e.g. 127.0.0.1:9464.
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<std::net::SocketAddr>,
    },
}

#[derive(Subcommand)]
pub enum PartyCommand {
    /// Register a party; its new token is the last line of standard output (shown once).
    Add {
        #[arg(long, value_enum)]
        role: RoleArg,
        #[arg(long)]
        name: Option<String>,
        /// The facility's 10-digit facility code (facilities only).
        #[arg(long)]
        code: Option<String>,
        /// An insurer number the insurer owns (or, for a payer, a 公費負担者番号 it owns);
        /// repeat the flag for each.
        #[arg(long = "insurer-number", alias = "payer-number")]
        insurer_numbers: Vec<String>,
        /// The token stops working after this many days (default: no expiry).
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// A PEM file of a client certificate the party must then present over TLS besides its
        /// token; repeat the flag to allow several (e.g. while a certificate is replaced).
        #[arg(long = "client-cert", value_name = "FILE.pem")]
        client_certs: Vec<PathBuf>,
    },
    /// Revoke a party's token at once, on every server.
    Revoke {
        #[arg(long)]
        id: i64,
    },
    /// List the parties flagged for suspected enumeration (refused until cleared).
    Flags {
        /// Also list flags cleared before.
        #[arg(long)]
        all: bool,
    },
    /// Clear a party's flag after looking into it: its requests are served again, on every server.
    ClearFlag {
        #[arg(long)]
        id: i64,
        /// Who cleared it and why, kept with the flag.
        #[arg(long, default_value = "operator")]
        by: String,
    },
}

#[derive(Subcommand)]
pub enum LinkKeyCommand {
    /// Import the key of ONSHI_LINK_KEY_FILE into the PKCS#11 token (sensitive, never
    /// extractable), checking that the token then gives the same links; then set
    /// ONSHI_LINK_KEY_PKCS11_LABEL to the label and destroy the file.
    Import {
        #[arg(long, default_value = "onshi-link")]
        label: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Facility,
    Claims,
    Insurer,
    Payer,
    Admin,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Facility => Role::Facility,
            RoleArg::Claims => Role::Claims,
            RoleArg::Insurer => Role::Insurer,
            RoleArg::Payer => Role::Payer,
            RoleArg::Admin => Role::Admin,
        }
    }
}

/// Runs a command that is not `serve`. Returns the process exit code.
///
/// # Errors
/// Whatever the command failed on, with context.
pub async fn run(command: Command, settings: &Settings) -> anyhow::Result<i32> {
    match command {
        Command::Serve => unreachable_serve(),
        Command::Migrate => {
            let applied = migrate(settings).await?;
            println!("{applied} migrations applied");
            Ok(0)
        }
        Command::Load { file, batch_id } => load(settings, file, batch_id).await,
        Command::Party {
            command:
                PartyCommand::Add {
                    role,
                    name,
                    code,
                    insurer_numbers,
                    expires_in_days,
                    client_certs,
                },
        } => {
            let registration = Registration {
                role: role.into(),
                name,
                code,
                insurer_numbers,
                expires_in_days,
                client_certs,
            };
            party_add(settings, registration).await
        }
        Command::Party {
            command: PartyCommand::Revoke { id },
        } => {
            let client = crate::store::connect(&settings.database_url).await?;
            match crate::parties::revoke(&client, crate::domain::PartyId::new(id)).await? {
                Some(at) => {
                    println!("party {id} revoked at {at}");
                    Ok(0)
                }
                None => {
                    println!("no party {id}");
                    Ok(1)
                }
            }
        }
        Command::Party {
            command: PartyCommand::Flags { all },
        } => {
            let client = crate::store::connect(&settings.database_url).await?;
            let flags = crate::store::limits::flags(&client, all).await?;
            if flags.is_empty() {
                println!("no flagged parties");
            }
            for flag in flags {
                let state = match (&flag.cleared_at, &flag.cleared_by) {
                    (Some(at), by) => format!("cleared {at} by {}", by.as_deref().unwrap_or("?")),
                    (None, _) => "ACTIVE: refused until cleared".to_owned(),
                };
                println!(
                    "party {} ({}): {} flagged {}: {} distinct misses among {} distinct keys; {state}",
                    flag.party_id,
                    flag.party_name.as_deref().unwrap_or("unnamed"),
                    flag.reason,
                    flag.flagged_at,
                    flag.misses,
                    flag.answers,
                );
            }
            Ok(0)
        }
        Command::Party {
            command: PartyCommand::ClearFlag { id, by },
        } => {
            // The application role may raise flags but not clear them: an operator's session.
            let client = crate::store::connect(settings.migration_url()).await?;
            if crate::store::limits::clear_flag(&client, crate::domain::PartyId::new(id), &by)
                .await?
            {
                println!("party {id}: flag cleared");
                Ok(0)
            } else {
                println!("party {id} has no active flag");
                Ok(1)
            }
        }
        Command::Purpose { command } => crate::health_id::cli::run(command, settings).await,
        Command::LinkKey {
            command: LinkKeyCommand::Import { label },
        } => {
            crate::link_key::import(settings, &label)?;
            println!(
                "link key imported into the token as {label}; set ONSHI_LINK_KEY_PKCS11_LABEL={label} \
                 and destroy the key file"
            );
            Ok(0)
        }
        Command::Audit { command } => crate::audit::cli::run(command, settings).await,
        Command::Proof { command } => crate::proof::cli::run(command),
        Command::Bridge {
            folder,
            server,
            token_file,
            give_up_after,
            poll_ms,
            archive,
            metrics_listen,
        } => {
            let options = crate::bridge::Options {
                folder,
                server,
                token_file,
                give_up_after: std::time::Duration::from_secs(give_up_after),
                poll: std::time::Duration::from_millis(poll_ms),
                archive,
                metrics_listen,
            };
            tokio::task::spawn_blocking(move || crate::bridge::run(options)).await??;
            Ok(0)
        }
    }
}

/// Applies pending migrations as the schema owner (`migration_database_url`, else
/// `database_url`).
async fn migrate(settings: &Settings) -> anyhow::Result<usize> {
    let mut client = crate::store::connect(settings.migration_url()).await?;
    crate::store::migrate::run(&mut client).await
}

fn unreachable_serve() -> anyhow::Result<i32> {
    anyhow::bail!("serve is run by main")
}

async fn load(settings: &Settings, file: PathBuf, batch_id: Option<String>) -> anyhow::Result<i32> {
    let link_key = Arc::new(settings.link_key()?);
    let batch_id = match batch_id {
        Some(id) => id,
        None => file_digest(&file)?,
    };
    let handle =
        std::fs::File::open(&file).with_context(|| format!("opening {}", file.display()))?;
    let size = handle.metadata()?.len();
    let bar = indicatif::ProgressBar::new(size).with_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        )
        .context("progress bar template")?,
    );
    let reader = bar.wrap_read(std::io::BufReader::with_capacity(1 << 20, handle));
    migrate(settings).await?;
    let mut client = crate::store::connect(&settings.database_url).await?;
    let sender = Sender {
        party_id: None,
        owned: None,
        statement_timeout: std::time::Duration::ZERO,
    };
    let outcome = enrollment::load(&mut client, reader, &batch_id, sender, link_key).await;
    bar.finish_and_clear();
    let (report, note) = match outcome.map_err(|e| anyhow::anyhow!(e))? {
        Outcome::Applied(r) => (r, ""),
        Outcome::Rejected(r) => (r, ""),
        Outcome::Repeated(r) => (r, "(this batch id was loaded before; nothing changed)\n"),
    };
    print!("{note}{}", report.summary());
    Ok(match report.status {
        enrollment::report::BatchStatus::Applied => 0,
        enrollment::report::BatchStatus::Rejected => 1,
    })
}

fn file_digest(file: &std::path::Path) -> anyhow::Result<String> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut handle =
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    std::io::copy(&mut handle, &mut hasher)?;
    Ok(format!("file-sha256-{}", hex::encode(hasher.finalize())))
}

/// What `onshi party add` was asked to register, as typed.
struct Registration {
    role: Role,
    name: Option<String>,
    code: Option<String>,
    insurer_numbers: Vec<String>,
    expires_in_days: Option<u32>,
    client_certs: Vec<PathBuf>,
}

async fn party_add(settings: &Settings, r: Registration) -> anyhow::Result<i32> {
    let pems = r
        .client_certs
        .iter()
        .map(|path| client_certificate_pem(path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let party = NewParty::new(
        r.role,
        r.name,
        r.code.as_deref(),
        &r.insurer_numbers,
        r.expires_in_days,
        &pems,
    )
    .map_err(|e| anyhow::anyhow!("{}: {}", e.field, e.message))?;
    let token = Token::generate();
    migrate(settings).await?;
    let mut client = crate::store::connect(&settings.database_url).await?;
    let id = crate::parties::register(&mut client, &party, &token).await?;
    for fingerprint in &party.client_certificates {
        println!("client certificate bound: sha256 {fingerprint}");
    }
    println!(
        "party {id} registered as {}; its token (shown once):",
        r.role.as_str()
    );
    println!("{}", token.reveal());
    Ok(0)
}

/// Reads a client certificate file for `party add`, naming the file in any complaint.
fn client_certificate_pem(path: &std::path::Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("reading the client certificate {}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        anyhow::anyhow!(
            "client certificate {}: not PEM text (for a DER file: \
             openssl x509 -inform der -in FILE -out FILE.pem)",
            path.display()
        )
    })?;
    crate::domain::CertFingerprint::from_pem(&text)
        .map_err(|e| anyhow::anyhow!("client certificate {}: {}", path.display(), e.message))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_client_certificate_file_is_named_with_the_reason() {
        let dir = std::env::temp_dir().join(format!("onshi-cli-cert-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(
            &junk,
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let der = dir.join("cert.der");
        std::fs::write(&der, [0x30, 0x82, 0xff, 0xfe]).unwrap();
        let err = client_certificate_pem(&junk).unwrap_err().to_string();
        assert!(err.contains("junk.pem") && err.contains("damaged"), "{err}");
        let err = client_certificate_pem(&der).unwrap_err().to_string();
        assert!(err.contains("cert.der") && err.contains("not PEM"), "{err}");
        let err = client_certificate_pem(&dir.join("absent.pem")).unwrap_err();
        assert!(format!("{err:#}").contains("absent.pem"), "{err:#}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
