//! Asking onshi: `POST /v1/eligibility` with the facility's token, retried with backoff while
//! onshi cannot answer, until the bridge's patience runs out.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::answer::Outcome;

/// Where and as whom the bridge asks.
pub struct Client {
    agent: ureq::Agent,
    url: String,
    token: SecretString,
    give_up_after: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.url)
            .field("token", &"[redacted]")
            .finish()
    }
}

/// One attempt's result.
enum Attempt {
    Done(Outcome),
    /// onshi could not answer now (unreachable, 429, 5xx): worth asking again.
    Again(String),
}

impl Client {
    pub fn new(server: &str, token: SecretString, give_up_after: Duration) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build();
        Client {
            agent,
            url: format!("{}/v1/eligibility", server.trim_end_matches('/')),
            token,
            give_up_after,
        }
    }

    /// Asks until onshi answers or refuses, or `give_up_after` has passed since the first try
    /// (then a failure saying onshi was unreachable).
    pub fn check(&self, query: &Value) -> Outcome {
        let started = Instant::now();
        let mut pause = Duration::from_millis(250);
        loop {
            match self.attempt(query) {
                Attempt::Done(outcome) => return outcome,
                Attempt::Again(why) => {
                    let waited = started.elapsed();
                    if waited >= self.give_up_after {
                        return Outcome::Failed {
                            code: "bridge.unreachable".into(),
                            message: format!(
                                "onshi did not answer within {} s: {why}",
                                self.give_up_after.as_secs()
                            ),
                        };
                    }
                    tracing::warn!(reason = %why, "onshi did not answer; asking again");
                    std::thread::sleep(pause.min(self.give_up_after - waited));
                    pause = (pause * 2).min(Duration::from_secs(8));
                }
            }
        }
    }

    fn attempt(&self, query: &Value) -> Attempt {
        let response = self
            .agent
            .post(&self.url)
            .set(
                "Authorization",
                &format!("Bearer {}", self.token.expose_secret()),
            )
            .send_json(query.clone());
        match response {
            Ok(r) => match r.into_json::<Value>() {
                Ok(answer) => Attempt::Done(Outcome::Answered(answer)),
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
                Attempt::Done(Outcome::Failed { code, message })
            }
            Err(ureq::Error::Transport(t)) => Attempt::Again(t.kind().to_string()),
        }
    }
}

fn error_code(response: ureq::Response) -> Option<String> {
    let body: Value = response.into_json().ok()?;
    body["error"]["code"].as_str().map(str::to_owned)
}
