//! `onshi-virtual-card`: a virtual My Number card (JPKI) for vsmartcard's vpcd, and the
//! generator of the synthetic test PKI. Test machines only.
#![forbid(unsafe_code)]

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use card_reader::pin::Pin;
use card_reader::virtual_card::{
    card::AUTH_PIN_TRIES, pki, vpcd, CardProfile, TestPki, VirtualCard,
};
use clap::{Args, Parser, Subcommand};

/// A virtual JPKI card served to vpcd ("Virtual PCD 00 00" is port 35963, "00 01" is
/// 35964). Needs pcscd with vsmartcard-vpcd running (ops/card-stack).
#[derive(Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: Serve,
}

#[derive(Subcommand)]
enum Command {
    /// Write a synthetic test PKI (certificates, PKCS#8 keys, CRL, manifest.json).
    Pki {
        /// Directory to write into (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Args)]
struct Serve {
    /// vpcd port on 127.0.0.1.
    #[arg(long, default_value_t = vpcd::DEFAULT_PORT)]
    port: u16,
    /// The card's user-authentication PIN (synthetic).
    #[arg(long, default_value = "1234")]
    pin: String,
    /// PIN tries left at start (0 = blocked).
    #[arg(long, default_value_t = AUTH_PIN_TRIES)]
    tries: u8,
    /// User-authentication certificate (DER); a fresh synthetic one when absent.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Its private key (PKCS#8 PEM).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// CA certificate for EF 000B (DER); the certificate itself when absent.
    #[arg(long)]
    ca_cert: Option<PathBuf>,
    /// Be a card without the JPKI application (answers 6A 82).
    #[arg(long)]
    not_jpki: bool,
    /// Give the card the input-assistance application, for the synthetic My Number in this
    /// file (12 digits; a file, so the number is in no shell history), signed by the surface
    /// issuer of the PKI in --pki. Its PIN is --pin.
    #[arg(long, requires = "pki")]
    my_number_file: Option<PathBuf>,
    /// The directory `pki` wrote (for --my-number-file).
    #[arg(long)]
    pki: Option<PathBuf>,
    /// Print every APDU and response to stderr (PIN bytes masked).
    #[arg(long)]
    trace: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Pki { out }) => write_pki(&out),
        None => serve(&cli.serve),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("onshi-virtual-card: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn write_pki(out: &std::path::Path) -> anyhow::Result<()> {
    let pki = TestPki::generate()?;
    let files = pki.write_to(out)?;
    println!(
        "wrote {} files of a synthetic test PKI to {}",
        files.len(),
        out.display()
    );
    Ok(())
}

fn profile(args: &Serve) -> anyhow::Result<CardProfile> {
    let pin = Pin::parse(&args.pin).context("--pin")?;
    let mut digits = [0u8; 4];
    digits.copy_from_slice(args.pin.as_bytes());
    drop(pin);
    let mut profile = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => {
            let auth_cert =
                std::fs::read(cert).with_context(|| format!("read {}", cert.display()))?;
            CardProfile {
                jpki: true,
                pin: digits,
                tries: AUTH_PIN_TRIES,
                auth_ca_cert: auth_cert.clone(),
                auth_cert,
                auth_key: pki::read_key(key)?,
                surface: None,
            }
        }
        _ => {
            eprintln!("onshi-virtual-card: no --cert/--key, generating a synthetic PKI");
            let pki = TestPki::generate()?;
            pki.card_profile(&pki.person_valid, digits)
        }
    };
    if let Some(ca) = &args.ca_cert {
        profile.auth_ca_cert =
            std::fs::read(ca).with_context(|| format!("read {}", ca.display()))?;
    }
    if let (Some(file), Some(dir)) = (&args.my_number_file, &args.pki) {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?;
        let number = text.trim();
        if number.len() != 12 || !number.bytes().all(|b| b.is_ascii_digit()) {
            bail!("{} does not hold a 12-digit number", file.display());
        }
        let facts = card_reader::virtual_card::surface::BasicFacts {
            name: "架空 太郎".into(),
            address: "東京都千代田区架空町1-1".into(),
            birth_date: "19800401".into(),
            sex: "1".into(),
        };
        let issuer_cert = std::fs::read(dir.join("surface-issuer.der"))
            .with_context(|| format!("read the surface issuer of {}", dir.display()))?;
        profile.surface = Some(card_reader::virtual_card::surface::build(
            number,
            &facts,
            digits,
            &pki::read_key(&dir.join("surface-issuer.key.pem"))?,
            &issuer_cert,
            &pki::read_key(&dir.join("surface-card.key.pem"))?,
            card_reader::virtual_card::surface::Tamper::None,
        )?);
    }
    profile.tries = args.tries.min(AUTH_PIN_TRIES);
    profile.jpki = !args.not_jpki;
    Ok(profile)
}

fn serve(args: &Serve) -> anyhow::Result<()> {
    let mut card = VirtualCard::new(profile(args)?);
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let stream = TcpStream::connect(addr).with_context(|| {
        format!("vpcd is not listening on {addr}: is pcscd running? (run ops/card-stack)")
    })?;
    eprintln!(
        "onshi-virtual-card: card inserted in the virtual reader on port {}",
        args.port
    );
    vpcd::serve(&stream, &mut card, args.trace)?;
    if card.tries_left() == 0 {
        eprintln!("onshi-virtual-card: the PIN of this card is blocked");
    }
    bail!("vpcd closed the connection (pcscd stopped?)")
}
