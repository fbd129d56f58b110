//! `onshi bridge`: the real system's folder interface for reception software that already
//! speaks it. The software drops a request XML in `DIR/req`; the bridge asks onshi over HTTP
//! and writes the answer XML to `DIR/res` under the real system's answer name, in the
//! request's encoding: single checks, bulk inquiries (upload, then download requests) and
//! 照会番号 registrations ([`respond`] has the table). The layout itself is the
//! `onshi-oqs-xml` crate's. A malformed request gets an error answer, never silence.
//!
//! Every request gets exactly one answer, across crashes and restarts:
//! 1. a request is claimed by moving it into `DIR/req/.processing` (only while `DIR/res` has
//!    no answer of that name, which the software has not collected yet);
//! 2. its answer is written to a hidden temporary name in `DIR/res`, synced, renamed, and the
//!    folder synced;
//! 3. only then is the claimed request removed (or moved to `--archive`).
//!
//! On start, what is in `.processing` is finished first; one whose answer is already in
//! `DIR/res` is not answered again. A bulk upload asked again after a crash (claimed, sent,
//! not yet answered) is the same job: it is sent with an `Idempotency-Key` derived from the
//! file's name and content, and onshi answers the first receipt.

mod client;
mod metrics;
mod respond;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use onshi_oqs_xml::files;
use onshi_oqs_xml::names;
use secrecy::SecretString;

use client::Client;
use metrics::BridgeMetrics;

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
    /// Where `GET /metrics` is served; not at all when `None`.
    pub metrics_listen: Option<SocketAddr>,
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
    let metrics = BridgeMetrics::new()?;
    if let Some(address) = options.metrics_listen {
        metrics.serve(address)?;
    }
    let client = Client::new(
        &options.server,
        token,
        options.give_up_after,
        metrics.clone(),
    );
    let bridge = Bridge {
        folders,
        client,
        metrics,
    };
    tracing::info!(folder = %options.folder.display(), server = %options.server, "bridge watching");
    loop {
        if let Err(e) = sweep(&bridge) {
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

/// What a running bridge works with.
struct Bridge {
    folders: Folders,
    client: Client,
    metrics: BridgeMetrics,
}

/// Finishes the claimed requests, then claims and answers the new ones, oldest name first.
fn sweep(bridge: &Bridge) -> anyhow::Result<()> {
    let folders = &bridge.folders;
    for name in request_names(&folders.processing)? {
        answer_claimed(bridge, &name)?;
    }
    for name in request_names(&folders.req)? {
        let Some((_, answer_name)) = names::answer_name(&name) else {
            continue;
        };
        if folders.res.join(&answer_name).is_file() {
            // The previous answer of that name is not collected yet: overwriting it would lose
            // it, so the new request waits.
            continue;
        }
        files::move_durably(&folders.req.join(&name), &folders.processing.join(&name))?;
        answer_claimed(bridge, &name)?;
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
fn answer_claimed(bridge: &Bridge, name: &str) -> anyhow::Result<()> {
    let folders = &bridge.folders;
    let (kind, answer_name) = names::answer_name(name).context("not a request name")?;
    let claimed = folders.processing.join(name);
    // Only a file is an answer (a folder of that name is in the way, and the write below
    // fails until it is gone).
    if folders.res.join(&answer_name).is_file() {
        tracing::info!(request = name, "answer already written; not answered again");
    } else {
        let bytes =
            std::fs::read(&claimed).with_context(|| format!("reading {}", claimed.display()))?;
        let (answer, outcome) = respond::respond(kind, name, &bytes, &bridge.client);
        files::write_atomically(&folders.res, &answer_name, &answer)?;
        bridge.metrics.handled(kind.label(), outcome);
        tracing::info!(request = name, answer = %answer_name, outcome = ?outcome, "answered");
    }
    match &folders.archive {
        Some(archive) => Ok(files::move_durably(&claimed, &archive.join(name))?),
        None => {
            std::fs::remove_file(&claimed)
                .with_context(|| format!("removing {}", claimed.display()))?;
            Ok(files::sync_dir(&folders.processing)?)
        }
    }
}
