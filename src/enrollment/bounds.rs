//! What one enrolment file may cost the server while it is read, whatever its size: a record
//! longer than [`RECORD_MAX`] stops the reading (the CSV reader would otherwise hold all of it in
//! memory), and so do more than [`ERRORS_MAX`] line errors (the report would otherwise grow
//! with the file). Either way the file is rejected; nothing is applied.

use std::io::{self, Read};

/// Longest record, in bytes. A real line (35 columns, free text at most 100 characters) is far
/// shorter; this only bounds what a broken or hostile file can make the reader hold.
pub const RECORD_MAX: usize = 64 * 1024;

/// Line errors reported before the reading stops.
pub const ERRORS_MAX: usize = 1_000;

/// The error [`RecordLimit`] reads as when a record is too long.
#[derive(Debug)]
pub struct RecordTooLong;

impl std::fmt::Display for RecordTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a record is longer than {RECORD_MAX} bytes")
    }
}

impl std::error::Error for RecordTooLong {}

impl RecordTooLong {
    /// Whether a CSV reading error is this one.
    pub fn is(error: &io::Error) -> bool {
        error.get_ref().is_some_and(|e| e.is::<RecordTooLong>())
    }
}

/// Counts the bytes since the last line break outside quotes and fails once a record passes
/// [`RECORD_MAX`]. Quotes are tracked by toggling on every `"`: a quote inside a quoted field is
/// doubled, so the toggles cancel out.
pub struct RecordLimit<R> {
    inner: R,
    in_quotes: bool,
    record_bytes: usize,
}

impl<R> RecordLimit<R> {
    pub fn new(inner: R) -> Self {
        RecordLimit {
            inner,
            in_quotes: false,
            record_bytes: 0,
        }
    }
}

impl<R: Read> Read for RecordLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            match b {
                b'"' => self.in_quotes = !self.in_quotes,
                b'\n' if !self.in_quotes => {
                    self.record_bytes = 0;
                    continue;
                }
                _ => {}
            }
            self.record_bytes += 1;
            if self.record_bytes > RECORD_MAX {
                return Err(io::Error::new(io::ErrorKind::InvalidData, RecordTooLong));
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(data: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        RecordLimit::new(data).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn many_short_lines_pass_and_one_long_line_fails() {
        assert_eq!(
            RECORD_MAX,
            64 * 1024,
            "the row.too_long message says 64 KiB"
        );
        let lines = "a,b\n".repeat(RECORD_MAX);
        assert_eq!(read_all(lines.as_bytes()).unwrap(), lines.as_bytes());
        let exact = "a".repeat(RECORD_MAX) + "\n";
        assert!(read_all(exact.as_bytes()).is_ok());
        let long = "a".repeat(RECORD_MAX + 1);
        assert!(RecordTooLong::is(&read_all(long.as_bytes()).unwrap_err()));
    }

    #[test]
    fn line_breaks_inside_quotes_do_not_end_the_record() {
        let quoted = format!("\"{}\"", "a\n".repeat(RECORD_MAX));
        assert!(RecordTooLong::is(&read_all(quoted.as_bytes()).unwrap_err()));
        let doubled = format!("\"say \"\"hi\"\"\n{}\"\nnext", "a".repeat(100));
        assert!(read_all(doubled.as_bytes()).is_ok());
        let escaped_then_long = format!("\"\"\"\"\n{}", "a".repeat(RECORD_MAX));
        assert!(read_all(escaped_then_long.as_bytes()).is_ok());
    }
}
