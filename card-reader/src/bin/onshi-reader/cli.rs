//! The command line: subcommands and their options.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Reads the My Number card (JPKI) and checks insurance eligibility with an onshi server.
#[derive(Parser)]
#[command(name = "onshi-reader", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// List the card readers.
    Readers,
    /// Print the card's user-authentication certificate as PEM (no PIN needed).
    Cert(CertArgs),
    /// Check eligibility: card, PIN, server challenge, signature, answer.
    Check(CheckArgs),
    /// Link the card to its holder's health insurance, from the card's own signed data
    /// (both PINs; a facility's reader, with its token).
    Link(LinkArgs),
    /// Unlink the card from health insurance: the holder, with card and PIN (no token).
    Unlink(UnlinkArgs),
    /// Withdraw every consent given at readers that is still in force: the holder, with card
    /// and PIN (no token).
    WithdrawConsents(UnlinkArgs),
    /// Show the card holder's own access log: who looked at their data, and when (no token:
    /// the card is the credential).
    AccessLog(AccessLogArgs),
    /// Serve the reception page's card checks on 127.0.0.1: the page asks, this program reads
    /// the card and asks for the PIN on its own terminal (never through the page).
    Serve(ServeArgs),
}

#[derive(Args)]
pub struct CertArgs {
    /// Reader name (or a unique part of it); all readers when absent.
    #[arg(long)]
    pub reader: Option<String>,
    /// Seconds to wait for a card.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
}

#[derive(Args)]
pub struct CheckArgs {
    /// onshi server base URL, e.g. https://onshi.example.jp
    #[arg(long, env = "ONSHI_SERVER")]
    pub server: String,
    /// File holding the facility token; without it the token is taken from ONSHI_TOKEN.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Reader name (or a unique part of it); all readers when absent.
    #[arg(long)]
    pub reader: Option<String>,
    /// Seconds to wait for a card.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Day of care, YYYY-MM-DD (the server takes today when absent).
    #[arg(long, value_parser = parse_date)]
    pub date_of_care: Option<String>,
    /// Information the person agreed to share, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub consent: Vec<Consent>,
    /// Read the PIN from the first line of standard input (scripts and tests) instead
    /// of prompting without echo.
    #[arg(long)]
    pub pin_stdin: bool,
    /// Seconds before a server request gives up.
    #[arg(long, default_value_t = 15)]
    pub server_timeout: u64,
    /// Print the server's answer as JSON instead of the desk summary.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub face: FaceArgs,
}

/// Where answered card checks are left for the reception software (`check`, `serve`).
#[derive(Args, Clone)]
pub struct FaceArgs {
    /// Also write each answered check to this folder as the real system's face file
    /// (OQSsiquc01res_face_*.xml), in --face-encoding.
    /// The folder must exist.
    #[arg(long = "face", value_name = "DIR", value_parser = parse_face_dir)]
    pub dir: Option<PathBuf>,
    /// The face file's encoding: shift_jis (the real system's) or utf-8.
    #[arg(long = "face-encoding", default_value = "shift_jis", value_parser = parse_encoding)]
    pub encoding: onshi_oqs_xml::Encoding,
}

#[derive(Args)]
pub struct ServeArgs {
    /// onshi server base URL, e.g. https://onshi.example.jp
    #[arg(long, env = "ONSHI_SERVER")]
    pub server: String,
    /// File holding the facility token; without it the token is taken from ONSHI_TOKEN.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Loopback address and port to listen on (a non-loopback address is refused).
    #[arg(long, default_value = "127.0.0.1:47380")]
    pub listen: std::net::SocketAddr,
    /// The origin of the reception page allowed to call (scheme://host[:port]); the origin of
    /// --server when absent.
    #[arg(long)]
    pub allow_origin: Option<String>,
    /// Reader name (or a unique part of it); all readers when absent.
    #[arg(long)]
    pub reader: Option<String>,
    /// Seconds to wait for a card in each check.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Read each check's PIN from the next line of standard input (scripts and tests) instead
    /// of prompting without echo.
    #[arg(long)]
    pub pin_stdin: bool,
    /// Seconds before a server request gives up.
    #[arg(long, default_value_t = 15)]
    pub server_timeout: u64,
    #[command(flatten)]
    pub face: FaceArgs,
}

#[derive(Args)]
pub struct AccessLogArgs {
    /// onshi server base URL, e.g. https://onshi.example.jp
    #[arg(long, env = "ONSHI_SERVER")]
    pub server: String,
    /// Reader name (or a unique part of it); all readers when absent.
    #[arg(long)]
    pub reader: Option<String>,
    /// Seconds to wait for a card.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Entries to show, 1 to 100 (the server's default when absent).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub limit: Option<u16>,
    /// Show entries older than this: the "next" value a previous page printed, or an
    /// RFC 3339 time.
    #[arg(long)]
    pub before: Option<String>,
    /// Read the PIN from the first line of standard input (scripts and tests) instead
    /// of prompting without echo.
    #[arg(long)]
    pub pin_stdin: bool,
    /// Seconds before a server request gives up.
    #[arg(long, default_value_t = 15)]
    pub server_timeout: u64,
    /// Print the server's answer as JSON instead of the list.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct LinkArgs {
    /// onshi server base URL, e.g. https://onshi.example.jp
    #[arg(long, env = "ONSHI_SERVER")]
    pub server: String,
    /// File holding the facility token; without it the token is taken from ONSHI_TOKEN.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Reader name (or a unique part of it); all readers when absent.
    #[arg(long)]
    pub reader: Option<String>,
    /// Seconds to wait for a card.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Read the PINs from standard input, one line each (the user-authentication PIN, then the
    /// input-assistance PIN) instead of prompting without echo.
    #[arg(long)]
    pub pin_stdin: bool,
    /// The holder set both PINs to the same digits: ask (or read) one PIN for both.
    #[arg(long)]
    pub same_pin: bool,
    /// Seconds before a server request gives up.
    #[arg(long, default_value_t = 15)]
    pub server_timeout: u64,
    /// Print the server's answer as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct UnlinkArgs {
    /// onshi server base URL, e.g. https://onshi.example.jp
    #[arg(long, env = "ONSHI_SERVER")]
    pub server: String,
    /// Reader name (or a unique part of it); all readers when absent.
    #[arg(long)]
    pub reader: Option<String>,
    /// Seconds to wait for a card.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Read the PIN from the first line of standard input instead of prompting without echo.
    #[arg(long)]
    pub pin_stdin: bool,
    /// Seconds before a server request gives up.
    #[arg(long, default_value_t = 15)]
    pub server_timeout: u64,
    /// Print the server's answer as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Consent {
    Medication,
    Checkups,
    Diagnosis,
    Surgery,
    /// The high-cost limit certificate (限度額適用認定証) in the answer.
    LimitCertificate,
    /// The specific-disease certificates (特定疾病療養受療証) in the answer.
    SpecificDiseases,
}

/// An existing folder.
fn parse_face_dir(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    if path.is_dir() {
        Ok(path)
    } else {
        Err(format!(
            "{s:?} is not a folder: create it, or name the folder the reception system reads"
        ))
    }
}

/// `shift_jis` (also `sjis`, `cp932`) or `utf-8`.
fn parse_encoding(s: &str) -> Result<onshi_oqs_xml::Encoding, String> {
    onshi_oqs_xml::Encoding::from_name(s)
        .ok_or_else(|| format!("{s:?} is not an encoding: shift_jis or utf-8"))
}

/// Accepts `YYYY-MM-DD` with a plausible month and day.
fn parse_date(s: &str) -> Result<String, String> {
    let err = || format!("{s:?} is not a date like 2025-04-01");
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(err());
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|p| p.parse::<u32>().ok());
    match (num(0..4), num(5..7), num(8..10)) {
        (Some(y), Some(m), Some(d))
            if (1900..=2999).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d) =>
        {
            Ok(s.to_owned())
        }
        _ => Err(err()),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_date;

    #[test]
    fn dates() {
        assert!(parse_date("2025-04-01").is_ok());
        for bad in [
            "2025-4-01",
            "2025-13-01",
            "2025-04-32",
            "20250401",
            "2025/04/01",
            "abcd-ef-gh",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }
}
