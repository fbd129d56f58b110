//! Deterministic synthetic enrolment data: the insurers' change file onshi loads.
//!
//! [`write_enrolment_csv`] streams households of invented people to a CSV writer, one household
//! at a time, so a million-person file needs no more memory than a ten-person one. The same seed
//! always gives the same bytes.
//!
//! Every row is one change (domain brief §4): `acquire` carries a whole new coverage, `lose`
//! only the key with the date and reason, `update` the key, `effective_on` and the changed
//! columns. Rows of one coverage key are in time order, and keys are never re-used, so an
//! acquire never meets an active coverage with the same key.
//!
//! Deliberate simplifications: ages are planned so nobody reaches 75 while on an employee or
//! 国保 coverage (no automatic move to 後期高齢者医療); every family member of a 国保 household is
//! written as relationship 2 after the head, as for employee insurance; all dates other than
//! birth dates, including valid-to dates, stay within 2015-01-01..=2026-10-31 (the data is "as of" the end of October 2026, so no one is born after a check made today).
//!
//! The My Numbers are checksum-valid numbers derived from a counter; they were not issued to
//! anyone and belong to no real person.

mod calendar;
mod coverage;
mod household;
mod lists;
mod row;
#[cfg(test)]
mod tests;

use std::io::Write;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// The columns of the enrolment file, in order.
pub fn header() -> [&'static str; onshi_domain::enrolment_columns::ALL.len()] {
    onshi_domain::enrolment_columns::ALL.map(|col| col.name())
}

/// What a generated file holds.
#[derive(Debug, Default, Clone, Serialize)]
pub struct DemoSummary {
    /// Distinct persons (a person who changed insurer counts once).
    pub persons: u64,
    /// Data rows, not counting the header.
    pub rows: u64,
    /// Distinct insurers that appear in the file.
    pub insurers: u64,
}

/// Writes a synthetic enrolment change file of `persons` people to `out`.
///
/// Output depends only on `persons` and `seed`.
///
/// # Errors
/// Any error of `out`, or of the CSV writer on it.
pub fn write_enrolment_csv<W: Write>(
    out: W,
    persons: u64,
    seed: u64,
) -> std::io::Result<DemoSummary> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(out);
    writer.write_record(header())?;

    let insurers = lists::insurers();
    let mut generator = household::Generator::new(ChaCha8Rng::seed_from_u64(seed), seed, &insurers);
    let mut rows = Vec::new();
    let mut summary = DemoSummary::default();
    while summary.persons < persons {
        rows.clear();
        summary.persons += generator.household(persons - summary.persons, &mut rows);
        for row in &rows {
            writer.serialize(row)?;
        }
        summary.rows += rows.len() as u64;
    }
    writer.flush()?;
    summary.insurers = generator.insurers_used();
    Ok(summary)
}
