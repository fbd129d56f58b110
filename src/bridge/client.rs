//! Asking onshi over HTTP with the facility's token, retried with backoff while onshi cannot
//! answer (unreachable, 429, 5xx), until the bridge's patience runs out.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::metrics::BridgeMetrics;

/// Where and as whom the bridge asks.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    token: SecretString,
    give_up_after: Duration,
    metrics: BridgeMetrics,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &"[redacted]")
            .finish()
    }
}

/// What onshi said.
pub enum Reply {
    /// A 2xx answer's body.
    Answered(Value),
    /// A 4xx other than 429: onshi's error code and message (with the field at fault).
    Refused { code: String, message: String },
    /// onshi did not answer within the give-up time.
    Unreachable { code: String, message: String },
}

/// One request to onshi.
pub struct Call<'a> {
    pub method: &'a str,
    /// From the base URL, e.g. `/v1/eligibility`.
    pub path: &'a str,
    pub body: Option<&'a Value>,
    pub idempotency_key: Option<&'a str>,
    /// The kind of request file, for the retry metric.
    pub kind: &'static str,
}

/// One attempt's result.
enum Attempt {
    Done(Reply),
    /// onshi could not answer now: worth asking again.
    Again(String),
}

impl Client {
    pub fn new(
        server: &str,
        token: SecretString,
        give_up_after: Duration,
        metrics: BridgeMetrics,
    ) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build();
        Client {
            agent,
            base: server.trim_end_matches('/').to_owned(),
            token,
            give_up_after,
            metrics,
        }
    }

    /// Asks until onshi answers or refuses, or `give_up_after` has passed since the first try.
    pub fn call(&self, call: &Call<'_>) -> Reply {
        let started = Instant::now();
        let mut pause = Duration::from_millis(250);
        loop {
            match self.attempt(call) {
                Attempt::Done(reply) => return reply,
                Attempt::Again(why) => {
                    let waited = started.elapsed();
                    if waited >= self.give_up_after {
                        return Reply::Unreachable {
                            code: "bridge.unreachable".into(),
                            message: format!(
                                "onshi did not answer within {} s: {why}",
                                self.give_up_after.as_secs()
                            ),
                        };
                    }
                    self.metrics.retry(call.kind);
                    tracing::warn!(reason = %why, path = call.path, "onshi did not answer; asking again");
                    std::thread::sleep(pause.min(self.give_up_after - waited));
                    pause = (pause * 2).min(Duration::from_secs(8));
                }
            }
        }
    }

    fn attempt(&self, call: &Call<'_>) -> Attempt {
        let mut request = self
            .agent
            .request(call.method, &format!("{}{}", self.base, call.path))
            .set(
                "Authorization",
                &format!("Bearer {}", self.token.expose_secret()),
            );
        if let Some(key) = call.idempotency_key {
            request = request.set("Idempotency-Key", key);
        }
        let response = match call.body {
            Some(body) => request.send_json(body.clone()),
            None => request.call(),
        };
        match response {
            Ok(r) => match r.into_json::<Value>() {
                Ok(answer) => Attempt::Done(Reply::Answered(answer)),
                Err(e) => Attempt::Again(format!("unreadable answer: {e}")),
            },
            Err(ureq::Error::Status(status, r)) if status == 429 || status >= 500 => {
                let code = error_code(r).unwrap_or_default();
                Attempt::Again(format!("status {status} {code}"))
            }
            Err(ureq::Error::Status(status, r)) => {
                let body: Value = r.into_json().unwrap_or(Value::Null);
                let error = &body["error"];
                let code = error["code"]
                    .as_str()
                    .map_or_else(|| format!("http.{status}"), str::to_owned);
                let mut message = error["message"].as_str().unwrap_or("refused").to_owned();
                if let Some(field) = error["field"].as_str() {
                    message = format!("{message} ({field})");
                }
                Attempt::Done(Reply::Refused { code, message })
            }
            Err(ureq::Error::Transport(t)) => Attempt::Again(t.kind().to_string()),
        }
    }
}

fn error_code(response: ureq::Response) -> Option<String> {
    let body: Value = response.into_json().ok()?;
    body["error"]["code"].as_str().map(str::to_owned)
}
