//! Database errors as they may be logged.
//!
//! PostgreSQL's `DETAIL` repeats the values of the row at fault ("Key (symbol, number)=(12, 3456)
//! already exists."), and the messages of data and integrity errors (SQLSTATE classes 22 and 23)
//! may quote a value too: an insured number or a link would end up in the log. What is logged
//! instead is the SQLSTATE, the severity, the schema object named (constraint, table, column) and,
//! outside those two classes, the message; never `DETAIL`, `HINT` or `WHERE`. The driver's and
//! the pool's own error texts embed the full server error, so they are replaced by their kind.

use std::fmt::Write;

use tokio_postgres::error::DbError;

/// The error's chain as `{:#}` prints it, with every database error reduced as above.
pub fn describe(error: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let text = if let Some(db) = cause.downcast_ref::<DbError>() {
            summary(db)
        } else if embeds_db_error(cause) {
            // The next cause is the server error itself; this layer only repeats it.
            continue;
        } else {
            cause.to_string()
        };
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// Whether `cause` is a wrapper whose text would include a server error's `DETAIL`.
fn embeds_db_error(cause: &(dyn std::error::Error + 'static)) -> bool {
    let wraps = cause.downcast_ref::<tokio_postgres::Error>().is_some()
        || cause
            .downcast_ref::<deadpool_postgres::PoolError>()
            .is_some();
    let mut source = cause.source();
    while let Some(inner) = source {
        if inner.downcast_ref::<DbError>().is_some() {
            return wraps;
        }
        source = inner.source();
    }
    false
}

/// SQLSTATE, severity, the objects named and (where it cannot quote data) the message.
pub fn summary(db: &DbError) -> String {
    let code = db.code().code();
    let mut out = format!("database error {code} ({})", db.severity());
    for (name, value) in [
        ("constraint", db.constraint()),
        ("table", db.table()),
        ("column", db.column()),
    ] {
        if let Some(value) = value {
            let _ = write!(out, " {name} {value}");
        }
    }
    if !(code.starts_with("22") || code.starts_with("23")) {
        let _ = write!(out, ": {}", db.message());
    }
    out
}
