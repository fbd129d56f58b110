//! Per-party abuse limits, applied right after authentication.
//!
//! - **Rate**: a token bucket per party (`rate_per_second`, bursts of `rate_burst`). A request
//!   over the limit gets 429 `rate.limited` with `Retry-After`.
//! - **Enumeration**: a party whose checks mostly find nothing is probably walking through
//!   insurance numbers. Within each minute, once a party has had `enumeration_misses` not-found
//!   answers and they are at least half of its answers, it is flagged in the log (once) and every
//!   request of its is refused with 429 `rate.enumeration_suspected` for
//!   `enumeration_cooloff_seconds`. Batches count each query, so a claims system's few misses
//!   among thousands of hits never trip it.
//!
//! Routes without a token (the card holder's own view) are limited the same way per client
//! address ([`Subject::Address`]).
//!
//! The state lives in this process: with several onshi servers behind a balancer, a party's
//! effective limit is the per-process limit times the servers it reaches (a deliberate
//! simplification that keeps the servers stateless; the enumeration watch still flags a party
//! that every server sees enumerate). Parties are few (one per facility, insurer, system), so the
//! map is bounded by the register, not by traffic.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;

use super::error::ClientError;

const WINDOW: Duration = Duration::from_secs(60);

/// Whose bucket a request draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    Party(i64),
    /// A caller without a token, by its connection's address.
    Address(IpAddr),
}

/// Beyond this many tracked addresses the map starts afresh: a bound on memory, since addresses
/// (unlike parties) are not registered.
const ADDRESSES_MAX: usize = 100_000;

pub struct Limits {
    /// Tokens a second; 0 means no rate limit.
    rate: f64,
    burst: f64,
    /// Misses a window that flag a party; 0 turns the watch off.
    misses_to_flag: u32,
    cooloff: Duration,
    subjects: Mutex<HashMap<Subject, PartyState>>,
}

struct PartyState {
    tokens: f64,
    refilled: Instant,
    window_started: Instant,
    answers: u32,
    misses: u32,
    blocked_until: Option<Instant>,
}

/// Why a request was refused, with the seconds to wait.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Rate { retry_after: u64 },
    Enumeration { retry_after: u64 },
}

impl From<Refusal> for ClientError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Rate { retry_after } => ClientError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate.limited",
                "Too many requests from your credential; wait for the Retry-After seconds and send again.",
            )
            .with_retry_after(retry_after),
            Refusal::Enumeration { retry_after } => ClientError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate.enumeration_suspected",
                "Most of your recent checks found no coverage, so your credential is paused; \
                 check how your system builds its queries, or ask your operator.",
            )
            .with_retry_after(retry_after),
        }
    }
}

impl Limits {
    pub fn new(rate_per_second: u32, burst: u32, misses_to_flag: u32, cooloff: Duration) -> Self {
        Limits {
            rate: f64::from(rate_per_second),
            burst: f64::from(burst.max(1)),
            misses_to_flag,
            cooloff,
            subjects: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request's token from the party's bucket.
    ///
    /// # Errors
    /// The party is over its rate, or paused for enumeration.
    pub fn admit(&self, subject: Subject) -> Result<(), Refusal> {
        self.admit_at(subject, Instant::now())
    }

    fn admit_at(&self, subject: Subject, now: Instant) -> Result<(), Refusal> {
        let mut subjects = self.subjects.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(subject, Subject::Address(_)) && subjects.len() >= ADDRESSES_MAX {
            subjects.retain(|s, _| matches!(s, Subject::Party(_)));
        }
        let state = subjects.entry(subject).or_insert_with(|| PartyState {
            tokens: self.burst,
            refilled: now,
            window_started: now,
            answers: 0,
            misses: 0,
            blocked_until: None,
        });
        if let Some(until) = state.blocked_until {
            if now < until {
                return Err(Refusal::Enumeration {
                    retry_after: seconds_until(now, until),
                });
            }
            state.blocked_until = None;
        }
        if self.rate <= 0.0 {
            return Ok(());
        }
        let elapsed = now.saturating_duration_since(state.refilled).as_secs_f64();
        state.tokens = (state.tokens + elapsed * self.rate).min(self.burst);
        state.refilled = now;
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            Ok(())
        } else {
            let wait = Duration::from_secs_f64((1.0 - state.tokens) / self.rate);
            Err(Refusal::Rate {
                retry_after: seconds_until(now, now + wait),
            })
        }
    }

    /// Counts a request's answers and how many of them found nothing; flags the party when the
    /// misses look like enumeration.
    pub fn note_answers(&self, party_id: i64, answers: usize, misses: usize) {
        self.note_answers_at(party_id, answers, misses, Instant::now());
    }

    fn note_answers_at(&self, party_id: i64, answers: usize, misses: usize, now: Instant) {
        if self.misses_to_flag == 0 || answers == 0 {
            return;
        }
        let mut subjects = self.subjects.lock().unwrap_or_else(|p| p.into_inner());
        let Some(state) = subjects.get_mut(&Subject::Party(party_id)) else {
            return;
        };
        if now.saturating_duration_since(state.window_started) >= WINDOW {
            state.window_started = now;
            state.answers = 0;
            state.misses = 0;
        }
        let saturate = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        state.answers = state.answers.saturating_add(saturate(answers));
        state.misses = state.misses.saturating_add(saturate(misses));
        if state.misses >= self.misses_to_flag
            && state.misses.saturating_mul(2) >= state.answers
            && state.blocked_until.is_none()
        {
            tracing::warn!(
                party_id,
                misses = state.misses,
                answers = state.answers,
                cooloff_seconds = self.cooloff.as_secs(),
                "enumeration suspected: most of this party's checks find nothing; pausing it"
            );
            state.blocked_until = Some(now + self.cooloff);
            state.window_started = now;
            state.answers = 0;
            state.misses = 0;
        }
    }
}

/// A request without a token that has passed its address's limit: routes where no party is
/// involved take this instead of [`super::auth::Caller`].
pub struct AddressLimited;

impl actix_web::FromRequest for AddressLimited {
    type Error = super::error::ApiError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &actix_web::HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(admit_address(req))
    }
}

fn admit_address(req: &actix_web::HttpRequest) -> Result<AddressLimited, super::error::ApiError> {
    if cfg!(feature = "unguarded-bench") {
        return Ok(AddressLimited);
    }
    let state = req
        .app_data::<actix_web::web::Data<super::AppState>>()
        .ok_or_else(|| anyhow::anyhow!("application state missing"))?;
    // The connection's own address: a forwarded-for header would let a caller pick its bucket.
    if let Some(address) = req.peer_addr() {
        state
            .limits
            .admit(Subject::Address(address.ip()))
            .map_err(ClientError::from)?;
    }
    Ok(AddressLimited)
}

/// Whole seconds from `now` to `until`, rounded up, at least 1 (what `Retry-After` carries).
fn seconds_until(now: Instant, until: Instant) -> u64 {
    let wait = until.saturating_duration_since(now);
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::new(10, 5, 20, Duration::from_secs(300))
    }

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let limits = limits();
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(limits.admit_at(Subject::Party(1), t0), Ok(()));
        }
        assert_eq!(
            limits.admit_at(Subject::Party(1), t0),
            Err(Refusal::Rate { retry_after: 1 })
        );
        // Another party has its own bucket.
        assert_eq!(limits.admit_at(Subject::Party(2), t0), Ok(()));
        // 10 a second: after 0.3 s there are 3 tokens again.
        let later = t0 + Duration::from_millis(300);
        for _ in 0..3 {
            assert_eq!(limits.admit_at(Subject::Party(1), later), Ok(()));
        }
        assert!(limits.admit_at(Subject::Party(1), later).is_err());
    }

    #[test]
    fn a_rate_of_zero_is_no_limit() {
        let limits = Limits::new(0, 1, 0, Duration::from_secs(1));
        let t0 = Instant::now();
        for _ in 0..10_000 {
            assert_eq!(limits.admit_at(Subject::Party(1), t0), Ok(()));
        }
    }

    #[test]
    fn mostly_misses_pause_the_party_for_the_cooloff() {
        let limits = Limits::new(0, 1, 20, Duration::from_secs(300));
        let t0 = Instant::now();
        limits.admit_at(Subject::Party(1), t0).unwrap();
        for _ in 0..19 {
            limits.note_answers_at(1, 1, 1, t0);
        }
        assert_eq!(
            limits.admit_at(Subject::Party(1), t0),
            Ok(()),
            "19 misses are not yet a pattern"
        );
        limits.note_answers_at(1, 1, 1, t0);
        assert_eq!(
            limits.admit_at(Subject::Party(1), t0 + Duration::from_secs(1)),
            Err(Refusal::Enumeration { retry_after: 299 })
        );
        assert_eq!(
            limits.admit_at(Subject::Party(1), t0 + Duration::from_secs(300)),
            Ok(())
        );
    }

    #[test]
    fn misses_among_many_hits_or_spread_over_minutes_are_not_flagged() {
        let limits = Limits::new(0, 1, 20, Duration::from_secs(300));
        let t0 = Instant::now();
        limits.admit_at(Subject::Party(1), t0).unwrap();
        // A batch of 1,000 with 30 misses.
        limits.note_answers_at(1, 1_000, 30, t0);
        assert_eq!(limits.admit_at(Subject::Party(1), t0), Ok(()));
        // 15 misses a minute, for ten minutes.
        let limits = Limits::new(0, 1, 20, Duration::from_secs(300));
        limits.admit_at(Subject::Party(2), t0).unwrap();
        for minute in 0..10 {
            limits.note_answers_at(2, 15, 15, t0 + WINDOW * minute);
        }
        assert_eq!(limits.admit_at(Subject::Party(2), t0 + WINDOW * 10), Ok(()));
    }
}
