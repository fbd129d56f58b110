//! The only place with SQL. Each submodule owns the statements of one part of the schema and
//! takes a client or transaction from its caller: commit is always the caller's explicit step,
//! and a transaction dropped early rolls back.

pub mod access_log;
pub mod audit;
pub mod bulk;
pub mod card;
pub mod connector;
pub mod coverage;
pub mod enrollment;
pub mod errors;
pub mod health_id;
pub mod limits;
pub mod migrate;
pub mod parties;
pub mod proof_keys;
pub mod public_expense;
pub mod reference;

use std::time::Duration;

use anyhow::Context;
use deadpool_postgres::{ManagerConfig, Pool, RecyclingMethod, Runtime};

pub use connector::Connector;

/// How long a request waits for a free connection before it is answered 503.
const POOL_WAIT: Duration = Duration::from_secs(5);

/// The longest a single statement of the server's own sessions may run.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds the connection pool; connections are opened lazily, so this succeeds without a database.
///
/// # Errors
/// A malformed database URL or an unreadable `sslrootcert`.
pub fn pool(database_url: &str, size: usize) -> anyhow::Result<Pool> {
    pool_with(&Connector::for_server(database_url)?, size)
}

/// Builds a connection pool of sessions opened by `connector`.
///
/// # Errors
/// The pool's settings are refused.
pub fn pool_with(connector: &Connector, size: usize) -> anyhow::Result<Pool> {
    let manager = connector.manager(ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    });
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(POOL_WAIT))
        .create_timeout(Some(POOL_WAIT))
        .recycle_timeout(Some(POOL_WAIT))
        .build()
        .context("building the connection pool")
}

/// The settings of the server's own sessions (pooled or dedicated).
fn server_session_options(config: &mut tokio_postgres::Config) {
    // The request path runs a few prepared statements over and over with array parameters.
    // Left to choose, the planner keeps custom plans for them and re-plans every execution,
    // which cost more than half of the database's CPU under load (seen with perf); the
    // generic plans are the same index lookups.
    //
    // A statement that runs for more than STATEMENT_TIMEOUT on the request path is a bug or an
    // overload: cut it rather than hold a connection (bulk loads lift it for their transaction).
    config.options(format!(
        "-c plan_cache_mode=force_generic_plan -c statement_timeout={}",
        STATEMENT_TIMEOUT.as_millis()
    ));
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(POOL_WAIT);
    }
}

/// Connects one plain client (for the command line and migrations), with the URL's TLS settings.
///
/// # Errors
/// The database is unreachable, refuses the connection, or fails the certificate check.
pub async fn connect(database_url: &str) -> anyhow::Result<tokio_postgres::Client> {
    Connector::parse(database_url)?.connect().await
}

/// Whether an error means "the database cannot be reached now" (answer 503, try again) rather
/// than a bug: pool timeouts, lost connections, and the server refusing connections.
pub fn is_unavailable(error: &anyhow::Error) -> bool {
    use tokio_postgres::error::SqlState;
    error.chain().any(|cause| {
        if let Some(pool) = cause.downcast_ref::<deadpool_postgres::PoolError>() {
            return !matches!(pool, deadpool_postgres::PoolError::PostCreateHook(_));
        }
        if let Some(db) = cause.downcast_ref::<tokio_postgres::Error>() {
            if db.is_closed() {
                return true;
            }
            return match db.code() {
                Some(code) => {
                    code.code().starts_with("08")
                        || *code == SqlState::ADMIN_SHUTDOWN
                        || *code == SqlState::CRASH_SHUTDOWN
                        || *code == SqlState::CANNOT_CONNECT_NOW
                        || *code == SqlState::TOO_MANY_CONNECTIONS
                }
                // No SQLSTATE: the failure happened on the wire, not in the server.
                None => true,
            };
        }
        cause.downcast_ref::<std::io::Error>().is_some()
    })
}

/// Whether a statement was cancelled by its `statement_timeout` (SQLSTATE 57014): the database
/// did not answer in time, so the request is refused with 503 and nothing of the statement is
/// kept (the cancelled statement rolls back). Not a reason to retry on the spot.
pub fn is_timeout(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<tokio_postgres::Error>()
            .and_then(tokio_postgres::Error::code)
            .is_some_and(|code| *code == tokio_postgres::error::SqlState::QUERY_CANCELED)
    })
}

/// Whether an error is a unique violation of the named constraint (or unique index).
pub fn is_unique_violation(error: &anyhow::Error, constraint: &str) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<tokio_postgres::Error>()
            .and_then(tokio_postgres::Error::as_db_error)
            .is_some_and(|db| {
                *db.code() == tokio_postgres::error::SqlState::UNIQUE_VIOLATION
                    && db.constraint() == Some(constraint)
            })
    })
}

#[cfg(test)]
mod tests {
    use super::is_unavailable;

    #[test]
    fn pool_timeouts_and_io_errors_are_unavailable() {
        let timeout = anyhow::Error::new(deadpool_postgres::PoolError::Timeout(
            deadpool_postgres::TimeoutType::Wait,
        ));
        assert!(is_unavailable(&timeout));
        let io = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
            .context("connecting");
        assert!(is_unavailable(&io));
    }

    #[test]
    fn other_errors_are_not_unavailable() {
        assert!(!is_unavailable(&anyhow::anyhow!("a bug")));
    }
}
