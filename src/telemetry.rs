//! Logging: `tracing` to standard error, as text or JSON lines, filtered by `RUST_LOG`
//! (default `info`). Every HTTP request runs in a span carrying its request id
//! (`tracing-actix-web`); nothing secret is ever a span field.

use tracing_subscriber::{fmt, EnvFilter};

use crate::config::LogFormat;

/// Installs the global subscriber once; later calls (tests spawning several apps) do nothing.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
