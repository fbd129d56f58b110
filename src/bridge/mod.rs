//! `onshi bridge`: the real system's folder interface for reception software that already
//! speaks it. The software drops a request XML in `DIR/req`; the bridge asks onshi over HTTP
//! and writes the answer XML to `DIR/res` under the real system's answer name, in the
//! request's encoding.
//!
//! Every request gets exactly one answer, across crashes and restarts:
//! 1. a request is claimed by moving it into `DIR/req/.processing` (only while `DIR/res` has
//!    no answer of that name, which the software has not collected yet);
//! 2. its answer is written to a hidden temporary name in `DIR/res`, synced, renamed, and the
//!    folder synced;
//! 3. only then is the claimed request removed (or moved to `--archive`).
//!
//! On start, what is in `.processing` is finished first; one whose answer is already in
//! `DIR/res` is not answered again.

mod answer;
mod client;
mod files;
mod names;
mod request;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use secrecy::SecretString;
use serde_json::{json, Value};

use answer::Outcome;
use client::Client;

/// How `onshi bridge` was started.
pub struct Options {
    /// The folder with `req` and `res` (created when missing).
    pub folder: PathBuf,
    /// onshi's base URL, e.g. `https://onshi.example.jp`.
    pub server: String,
    /// A file holding the facility's token (never logged).
    pub token_file: PathBuf,
    /// How long to keep asking an unreachable onshi before answering with an error.
    pub give_up_after: Duration,
    /// How often `req` is looked at.
    pub poll: Duration,
    /// Where answered requests are kept; removed when `None`.
    pub archive: Option<PathBuf>,
}

/// The folders of one bridge.
struct Folders {
    req: PathBuf,
    processing: PathBuf,
    res: PathBuf,
    archive: Option<PathBuf>,
}

/// Runs until the process is stopped.
///
/// # Errors
/// The token file cannot be read or a folder cannot be created; a failing request does not
/// stop the bridge.
pub fn run(options: Options) -> anyhow::Result<()> {
    let token = read_token(&options.token_file)?;
    let folders = Folders {
        req: options.folder.join("req"),
        processing: options.folder.join("req").join(".processing"),
        res: options.folder.join("res"),
        archive: options.archive.clone(),
    };
    for dir in [&folders.req, &folders.processing, &folders.res]
        .into_iter()
        .chain(folders.archive.as_ref())
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let client = Client::new(&options.server, token, options.give_up_after);
    tracing::info!(folder = %options.folder.display(), server = %options.server, "bridge watching");
    loop {
        if let Err(e) = sweep(&folders, &client) {
            tracing::error!(error = %format!("{e:#}"), "bridge: a folder step failed; trying again");
        }
        std::thread::sleep(options.poll);
    }
}

fn read_token(path: &Path) -> anyhow::Result<SecretString> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the token file {}", path.display()))?;
    let token = text.trim();
    anyhow::ensure!(
        !token.is_empty(),
        "the token file {} is empty",
        path.display()
    );
    Ok(SecretString::from(token.to_owned()))
}

/// Finishes the claimed requests, then claims and answers the new ones, oldest name first.
fn sweep(folders: &Folders, client: &Client) -> anyhow::Result<()> {
    for name in request_names(&folders.processing)? {
        answer_claimed(folders, client, &name)?;
    }
    for name in request_names(&folders.req)? {
        let Some(answer_name) = names::answer_name(&name) else {
            continue;
        };
        if folders.res.join(&answer_name).exists() {
            // The previous answer of that name is not collected yet: overwriting it would lose
            // it, so the new request waits.
            continue;
        }
        files::move_durably(&folders.req.join(&name), &folders.processing.join(&name))?;
        answer_claimed(folders, client, &name)?;
    }
    Ok(())
}

/// The request file names in `dir` the bridge answers, sorted.
fn request_names(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        if let Some(name) = entry.file_name().to_str() {
            if names::answer_name(name).is_some() {
                names.push(name.to_owned());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Answers one claimed request, unless its answer is already in `res`; then lets it go.
fn answer_claimed(folders: &Folders, client: &Client, name: &str) -> anyhow::Result<()> {
    let answer_name = names::answer_name(name).context("not a request name")?;
    let claimed = folders.processing.join(name);
    if folders.res.join(&answer_name).exists() {
        tracing::info!(request = name, "answer already written; not answered again");
    } else {
        let bytes =
            std::fs::read(&claimed).with_context(|| format!("reading {}", claimed.display()))?;
        let answer = respond(&bytes, client);
        files::write_atomically(&folders.res, &answer_name, &answer)?;
        tracing::info!(request = name, answer = %answer_name, "answered");
    }
    match &folders.archive {
        Some(archive) => files::move_durably(&claimed, &archive.join(name)),
        None => {
            std::fs::remove_file(&claimed)
                .with_context(|| format!("removing {}", claimed.display()))?;
            files::sync_dir(&folders.processing)
        }
    }
}

/// The answer document for a request's bytes: onshi's answer, or an error answer.
fn respond(bytes: &[u8], client: &Client) -> Vec<u8> {
    let encoding = request::sniff(bytes);
    let executed_at = chrono::Utc::now()
        .with_timezone(&japan())
        .format("%Y%m%d%H%M%S")
        .to_string();
    let (header, outcome) = match request::parse(bytes, encoding) {
        Ok(request) => {
            let outcome = match query(&request) {
                Ok(query) => client.check(&query),
                Err(failed) => failed,
            };
            (request.header, outcome)
        }
        Err(malformed) => (
            HashMap::new(),
            Outcome::Failed {
                code: malformed.code.to_owned(),
                message: malformed.message,
            },
        ),
    };
    answer::render(&header, encoding, &outcome, &executed_at)
}

fn japan() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(9 * 3600).expect("UTC+9 is a valid offset")
}

/// The `POST /v1/eligibility` body for a request; dates from `yyyyMMdd`.
fn query(request: &request::Request) -> Result<Value, Outcome> {
    let search = &request.search;
    let get = |name: &str| search.get(name).filter(|v| !v.is_empty()).cloned();
    let date = |member: &str, value: &str| -> Result<String, Outcome> {
        let ok = value.len() == 8 && value.bytes().all(|b| b.is_ascii_digit());
        if ok {
            Ok(format!("{}-{}-{}", &value[..4], &value[4..6], &value[6..]))
        } else {
            Err(Outcome::Failed {
                code: "request.date".into(),
                message: format!("{member} must be yyyyMMdd"),
            })
        }
    };
    let birth = date("Birthdate", &get("Birthdate").unwrap_or_default())?;
    let care = match request
        .header
        .get("QualificationConfirmationDate")
        .filter(|v| !v.is_empty())
    {
        Some(d) => Some(date("QualificationConfirmationDate", d)?),
        None => None,
    };
    let flag = |name: &str| get(name).is_some_and(|v| v == "1");
    Ok(json!({
        "insurer_number": get("InsurerNumber").unwrap_or_default(),
        "symbol": get("InsuredCardSymbol"),
        "number": get("InsuredIdentificationNumber").unwrap_or_default(),
        "branch": get("InsuredBranchNumber"),
        "birth_date": birth,
        "date_of_care": care,
        "limit_certificate_consent": flag("LimitApplicationCertificateRelatedConsFlg"),
        "specific_disease_consent": flag("SpecificDiseasesCertificateRelatedConsFlg"),
    }))
}
