//! The report of one enrolment batch: returned by the upload, by every repeat of its
//! Idempotency-Key, by `GET /v1/enrollments/{id}` and printed by `onshi load`.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BatchStatus {
    /// Every line was applied.
    Applied,
    /// At least one line was rejected; nothing was applied.
    Rejected,
}

/// Why one line was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LineError {
    /// 1-based line in the file; the header is line 1.
    pub line: u64,
    /// The column at fault (the header name), or `change` for whole-row problems.
    pub column: String,
    /// Stable machine code, `<column>.<kind>`.
    pub code: String,
    pub message: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = EnrollmentReport)]
pub struct Report {
    pub batch_id: String,
    pub status: BatchStatus,
    /// Data lines read (the header not counted).
    pub rows: u64,
    pub acquired: u64,
    pub updated: u64,
    pub lost: u64,
    /// How many distinct lines were rejected.
    pub rejected_lines: u64,
    /// Every rejected line's errors, in line order.
    pub errors: Vec<LineError>,
}

impl Report {
    pub fn rejected(batch_id: &str, rows: u64, mut errors: Vec<LineError>) -> Self {
        errors.sort_by_key(|e| e.line);
        let mut lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
        lines.dedup();
        Report {
            batch_id: batch_id.to_owned(),
            status: BatchStatus::Rejected,
            rows,
            acquired: 0,
            updated: 0,
            lost: 0,
            rejected_lines: lines.len() as u64,
            errors,
        }
    }

    /// One line per fact, for the command line.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "batch {}: {}; {} rows, {} acquired, {} updated, {} lost, {} lines rejected\n",
            self.batch_id,
            match self.status {
                BatchStatus::Applied => "applied",
                BatchStatus::Rejected => "rejected, nothing applied",
            },
            self.rows,
            self.acquired,
            self.updated,
            self.lost,
            self.rejected_lines
        );
        for e in &self.errors {
            out.push_str(&format!(
                "  line {}, column {}: {} ({})\n",
                e.line, e.column, e.message, e.code
            ));
        }
        out
    }
}
