//! The bridge's own metrics (`--metrics-listen`): the request files handled, by kind and
//! outcome, and the retries of an onshi that did not answer. Served as `GET /metrics` in the
//! Prometheus text format by a small listener of its own (the bridge runs beside the desk, not
//! in onshi's server).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use anyhow::Context;
use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};

/// What became of a request file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// onshi's answer was written (for a bulk download, also "still processing").
    Answered,
    /// An error answer: onshi refused the request or could not be reached in time.
    Error,
    /// An error answer: the request could not be read.
    Malformed,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Error => "error",
            Outcome::Malformed => "malformed",
        }
    }
}

/// The bridge's counters; cheap to clone (shared).
#[derive(Clone)]
pub struct BridgeMetrics {
    registry: Registry,
    files: IntCounterVec,
    retries: IntCounterVec,
}

impl BridgeMetrics {
    /// # Errors
    /// A metric's definition is refused (a programming error).
    pub fn new() -> anyhow::Result<Self> {
        let registry = Registry::new_custom(Some("onshi_bridge".into()), None)?;
        let files = IntCounterVec::new(
            Opts::new(
                "files_total",
                "Request files answered, by kind and outcome.",
            ),
            &["kind", "outcome"],
        )?;
        let retries = IntCounterVec::new(
            Opts::new(
                "unreachable_retries_total",
                "Requests to onshi asked again because onshi did not answer (unreachable, 429, 5xx), by kind.",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(files.clone()))?;
        registry.register(Box::new(retries.clone()))?;
        Ok(BridgeMetrics {
            registry,
            files,
            retries,
        })
    }

    pub fn handled(&self, kind: &str, outcome: Outcome) {
        self.files.with_label_values(&[kind, outcome.label()]).inc();
    }

    pub fn retry(&self, kind: &str) {
        self.retries.with_label_values(&[kind]).inc();
    }

    fn text(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Encoding gathered metrics into memory fails only on a malformed metric family.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "bridge: encoding the metrics failed");
        }
        out
    }

    /// Serves `GET /metrics` on `address` from a thread of its own.
    ///
    /// # Errors
    /// The address cannot be listened on.
    pub fn serve(&self, address: SocketAddr) -> anyhow::Result<()> {
        let listener = TcpListener::bind(address)
            .with_context(|| format!("listening for metrics on {address}"))?;
        tracing::info!(address = %address, "bridge metrics at /metrics");
        let metrics = self.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Err(e) = metrics.answer(stream) {
                    tracing::debug!(error = %e, "bridge: a metrics request failed");
                }
            }
        });
        Ok(())
    }

    /// One HTTP/1.1 exchange, then the connection is closed.
    fn answer(&self, mut stream: TcpStream) -> std::io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut request = Vec::new();
        let mut buffer = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
            let n = stream.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buffer[..n]);
        }
        let line = String::from_utf8_lossy(&request);
        let target = line.lines().next().unwrap_or("");
        let (status, content_type, body) =
            if target.starts_with("GET /metrics ") || target.starts_with("GET /metrics?") {
                (
                    "200 OK",
                    TextEncoder::new().format_type().to_owned(),
                    self.text(),
                )
            } else {
                (
                    "404 Not Found",
                    "text/plain".to_owned(),
                    b"not found\n".to_vec(),
                )
            };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes())?;
        stream.write_all(&body)?;
        stream.flush()
    }
}
