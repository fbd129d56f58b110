//! Enrolment changes from insurers: a CSV file in, all of it applied or none of it.
//!
//! The file is read as a stream on a blocking thread: each line is validated into canonical
//! values (the My Number becomes its person link there and is dropped) and encoded for COPY;
//! the encoded chunks flow through a bounded channel into `COPY staging FROM STDIN` inside the
//! batch's transaction. Memory stays flat whatever the file's size: at most a few chunks are in
//! flight. Then `store::enrollment::apply` checks the lines against the stored coverages and
//! applies them set-based. Any rejected line rolls everything back; the report says why.
//! [`bounds`] keeps a broken or hostile file from costing memory in proportion to its size.

pub mod bounds;
pub mod columns;
pub mod report;
pub mod row;

use std::collections::BTreeSet;
use std::io::Read;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use futures_util::SinkExt;
use tokio::sync::mpsc;

use crate::domain::LinkKey;
use crate::domain::PartyId;
use crate::store::enrollment as store;
use bounds::{RecordLimit, RecordTooLong, ERRORS_MAX};
use columns::Layout;
use report::{BatchStatus, LineError, Report};
use row::RowContext;

/// Encoded lines are sent to COPY in chunks of about this size.
const CHUNK_BYTES: usize = 256 * 1024;

/// Who sends the batch.
pub struct Sender {
    /// The party's id; `None` for an operator's `onshi load`.
    pub party_id: Option<PartyId>,
    /// Insurer numbers the sender may touch; `None` means any (operator).
    pub owned: Option<BTreeSet<String>>,
    /// The longest any statement of the batch may run; zero: no limit (operator).
    pub statement_timeout: std::time::Duration,
}

/// What became of a batch.
pub enum Outcome {
    Applied(Report),
    Rejected(Report),
    /// The batch id was used before: the first answer, unchanged.
    Repeated(Report),
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The batch id was used by another party.
    #[error("this batch id was used by another sender")]
    BatchIdTaken,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Loads one batch from `source`, applying all of it or none.
///
/// # Errors
/// [`LoadError::BatchIdTaken`], or database and I/O failures (nothing is applied then).
pub async fn load<R: Read + Send + 'static>(
    client: &mut tokio_postgres::Client,
    source: R,
    batch_id: &str,
    sender: Sender,
    link_key: Arc<LinkKey>,
) -> Result<Outcome, LoadError> {
    let tx = client.transaction().await.context("starting the batch")?;
    if !store::claim_batch(&tx, batch_id, sender.party_id).await? {
        drop(tx);
        return repeated(client, batch_id, sender.party_id).await;
    }
    store::create_staging(&tx, sender.statement_timeout).await?;
    let sink = tx
        .copy_in::<_, Bytes>(store::copy_statement().as_str())
        .await
        .context("starting COPY")?;

    let (chunks, mut receiver) = mpsc::channel::<Bytes>(4);
    let owned = sender.owned.clone();
    let parser = tokio::task::spawn_blocking(move || {
        let ctx = RowContext {
            link_key: &link_key,
            owned: owned.as_ref(),
            key_failure: Default::default(),
        };
        parse(source, &ctx, &chunks)
    });
    // Owns the receiver, so that a COPY that fails (its session lost mid-file) drops it: the
    // parser's next send then fails and it stops reading, instead of waiting for ever on a full
    // channel while the sender's body sits unread.
    let copy = async move {
        futures_util::pin_mut!(sink);
        while let Some(chunk) = receiver.recv().await {
            sink.send(chunk).await.context("sending rows to COPY")?;
        }
        sink.finish().await.context("finishing COPY")
    };
    let (parsed, copied) = tokio::join!(parser, copy);
    let parsed = match parsed.context("the parser thread failed")? {
        Ok(parsed) => parsed,
        // The parser stops when COPY does: COPY's failure is the cause worth reporting.
        Err(error) => {
            copied?;
            return Err(error.into());
        }
    };
    if !parsed.errors.is_empty() {
        drop(tx);
        return reject(
            client,
            batch_id,
            sender.party_id,
            parsed.rows,
            parsed.errors,
        )
        .await;
    }
    copied?;

    let (applied, errors) = store::apply(&tx, batch_id).await?;
    if !errors.is_empty() {
        drop(tx);
        let errors = errors.into_iter().map(conflict_error).collect();
        return reject(client, batch_id, sender.party_id, parsed.rows, errors).await;
    }
    let report = Report {
        batch_id: batch_id.to_owned(),
        status: BatchStatus::Applied,
        rows: parsed.rows,
        acquired: applied.acquired,
        updated: applied.updated,
        lost: applied.lost,
        rejected_lines: 0,
        errors: Vec::new(),
    };
    store::finish_batch(
        &tx,
        batch_id,
        &serde_json::to_value(&report).context("the report as JSON")?,
    )
    .await?;
    tx.commit().await.context("committing the batch")?;
    tracing::info!(batch_id, rows = report.rows, "enrolment batch applied");
    Ok(Outcome::Applied(report))
}

/// The stored report of an earlier batch (as it was answered) and the party that sent it.
///
/// # Errors
/// Database failures.
pub async fn stored_report(
    client: &impl tokio_postgres::GenericClient,
    batch_id: &str,
) -> anyhow::Result<Option<(Option<PartyId>, serde_json::Value)>> {
    store::stored_report(client, batch_id).await
}

async fn repeated(
    client: &tokio_postgres::Client,
    batch_id: &str,
    party_id: Option<PartyId>,
) -> Result<Outcome, LoadError> {
    match store::stored_report(client, batch_id).await? {
        Some((owner, report)) if owner == party_id || party_id.is_none() => Ok(Outcome::Repeated(
            serde_json::from_value(report).context("a stored report")?,
        )),
        Some(_) => Err(LoadError::BatchIdTaken),
        None => Err(anyhow::anyhow!("batch {batch_id} vanished while being read").into()),
    }
}

async fn reject(
    client: &tokio_postgres::Client,
    batch_id: &str,
    party_id: Option<PartyId>,
    rows: u64,
    errors: Vec<LineError>,
) -> Result<Outcome, LoadError> {
    let report = Report::rejected(batch_id, rows, errors);
    store::record_rejection(
        client,
        batch_id,
        party_id,
        &serde_json::to_value(&report).context("the report as JSON")?,
    )
    .await?;
    tracing::info!(
        batch_id,
        rejected_lines = report.rejected_lines,
        "enrolment batch rejected"
    );
    Ok(Outcome::Rejected(report))
}

struct Parsed {
    rows: u64,
    errors: Vec<LineError>,
}

/// Reads, validates and encodes every line; stops feeding COPY at the first error but keeps
/// validating, so the report lists every rejected line.
fn parse(
    source: impl Read,
    ctx: &RowContext<'_>,
    chunks: &mpsc::Sender<Bytes>,
) -> anyhow::Result<Parsed> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        // Lines end at '\n', and `read_record` drops the '\r' of a CRLF: with its own CRLF
        // handling the csv crate numbers every line after a CRLF one too low.
        .terminator(csv::Terminator::Any(b'\n'))
        .from_reader(RecordLimit::new(source));
    let mut record = csv::StringRecord::new();
    let mut errors = Vec::new();
    let layout = match read_record(&mut reader, &mut record) {
        Ok(true) => match Layout::from_header(record.iter()) {
            Ok(layout) => layout,
            Err(header_errors) => {
                return Ok(Parsed {
                    rows: 0,
                    errors: header_errors,
                })
            }
        },
        Ok(false) => {
            let empty = LineError {
                line: 1,
                column: "change".into(),
                code: "file.empty".into(),
                message: "The file is empty; it needs a header line.".into(),
            };
            return Ok(Parsed {
                rows: 0,
                errors: vec![empty],
            });
        }
        Err(bad) => {
            return Ok(Parsed {
                rows: 0,
                errors: vec![bad.at_line(1)],
            })
        }
    };
    let width = record.len();
    let mut rows = 0u64;
    let mut buffer = Vec::with_capacity(CHUNK_BYTES + 4096);
    loop {
        // Where the next record starts: its line, even when it cannot be decoded.
        let line = reader.position().line();
        if errors.len() >= ERRORS_MAX {
            errors.push(LineError {
                line,
                column: "change".into(),
                code: "file.too_many_errors".into(),
                message: format!(
                    "More than {ERRORS_MAX} errors were found; reading stopped here. Correct the file and send it again."
                ),
            });
            break;
        }
        match read_record(&mut reader, &mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(RecordError::Io(error)) => return Err(error.context("reading the file")),
            Err(RecordError::TooLong) => {
                errors.push(RecordError::TooLong.at_line(line));
                break;
            }
            Err(bad) => {
                rows += 1;
                errors.push(bad.at_line(line));
                continue;
            }
        }
        rows += 1;
        let line = record.position().map_or(line, |p| p.line());
        if record.len() != width {
            errors.push(LineError {
                line,
                column: "change".into(),
                code: "row.field_count".into(),
                message: format!(
                    "This line has {} fields; the header has {width}.",
                    record.len()
                ),
            });
            continue;
        }
        if let Err(line_errors) = row::encode(&layout, &record, line, ctx, &mut buffer) {
            if let Some(failure) = ctx.key_failure.take() {
                return Err(failure.context("computing a person link"));
            }
            errors.extend(line_errors);
        }
        if !errors.is_empty() {
            buffer.clear();
        } else if buffer.len() >= CHUNK_BYTES {
            let chunk = Bytes::from(std::mem::replace(
                &mut buffer,
                Vec::with_capacity(CHUNK_BYTES + 4096),
            ));
            if chunks.blocking_send(chunk).is_err() {
                anyhow::bail!("COPY stopped accepting rows");
            }
        }
    }
    if errors.is_empty() && !buffer.is_empty() && chunks.blocking_send(Bytes::from(buffer)).is_err()
    {
        anyhow::bail!("COPY stopped accepting rows");
    }
    Ok(Parsed { rows, errors })
}

enum RecordError {
    Utf8,
    Malformed,
    TooLong,
    Io(anyhow::Error),
}

impl RecordError {
    fn at_line(self, line: u64) -> LineError {
        let (code, message) = match self {
            RecordError::Utf8 => (
                "row.encoding",
                "This line is not valid UTF-8; save the file as UTF-8.",
            ),
            RecordError::TooLong => (
                "row.too_long",
                "This line is longer than 64 KiB (an unclosed quote?); reading stopped here.",
            ),
            _ => ("row.malformed", "This line is not well-formed CSV."),
        };
        LineError {
            line,
            column: "change".into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// Reads the next record that is not a blank line, without the '\r' of a CRLF line end.
fn read_record<R: Read>(
    reader: &mut csv::Reader<R>,
    record: &mut csv::StringRecord,
) -> Result<bool, RecordError> {
    loop {
        let more = reader
            .read_record(record)
            .map_err(|error| match error.kind() {
                csv::ErrorKind::Utf8 { .. } => RecordError::Utf8,
                csv::ErrorKind::Io(io) if RecordTooLong::is(io) => RecordError::TooLong,
                csv::ErrorKind::Io(_) => RecordError::Io(anyhow::Error::new(error)),
                _ => RecordError::Malformed,
            })?;
        if !more {
            return Ok(false);
        }
        if let Some(last) = record.len().checked_sub(1) {
            if let Some(without_cr) = record[last].strip_suffix('\r') {
                let without_cr = without_cr.to_owned();
                record.truncate(last);
                record.push_field(&without_cr);
            }
        }
        // A blank CRLF line is skipped, as the csv crate skips a blank LF line.
        if record.len() > 1 || record.get(0).is_some_and(|f| !f.is_empty()) {
            return Ok(true);
        }
    }
}

/// A line the stored coverages refuse, as the report shows it.
fn conflict_error(conflict: store::Conflict) -> LineError {
    LineError {
        message: message_for(&conflict.code).into(),
        line: conflict.line,
        column: conflict.column,
        code: conflict.code,
    }
}

fn message_for(code: &str) -> &'static str {
    match code {
        "coverage.already_active" => {
            "A coverage with this key is already active; lose it first or correct the key."
        }
        "coverage.not_active" => "No active coverage has this key; check the key or acquire it first.",
        "effective_on.before_latest_change" => {
            "The coverage already has a change effective after this date; send changes in date order."
        }
        "lost_on.before_acquired_on" => "The loss date is before the coverage was acquired.",
        _ => "This line conflicts with the stored coverages.",
    }
}
