//! Per-party abuse limits, applied right after authentication, shared by every onshi server on
//! the database.
//!
//! - **Rate and daily quota** ([`Limits::admit`]): a token bucket per party (`rate_per_second`,
//!   bursts of `rate_burst`) and a count per Japanese day (`daily_quota`, 0 for none), charged per
//!   query: a batch of n queries costs n tokens. The bucket lives in PostgreSQL
//!   (`party_budgets`); a server takes tokens from it in leases of about one second of the
//!   party's rate and spends them locally, so a database round trip serves many requests. The
//!   stated tolerance: across S servers a party can exceed its rate (and its quota) by at most S
//!   leases, one second of its rate per server. Over the rate: 429 `rate.limited` with
//!   `Retry-After`; a batch larger than the burst is admitted from a full bucket, which then owes
//!   the difference. Over the quota: 429 `rate.daily_quota` until midnight in Japan.
//! - **Enumeration** ([`watch`]): a party whose distinct queries mostly find nothing is flagged
//!   in `party_flags`, on every server at once (`NOTIFY`), and refused with 429
//!   `rate.enumeration_suspected` until an administrator clears the flag
//!   (`onshi party clear-flag`); `Retry-After` says when to ask the operator again. A restart
//!   does not clear it.
//! - **Token-less routes** ([`address`]) are limited per client address, in this process.

pub mod address;
pub mod sync;
pub mod watch;

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::Timelike;
use deadpool_postgres::Pool;

use super::error::{ApiError, ClientError};
use crate::api::codes::Code;
use crate::domain::PartyId;
use crate::store::limits::{self as store, Budget};
use address::AddressBuckets;
pub use address::TrustedProxies;
use watch::{Key, Watch};

/// How much of a party's rate a server leases at a time: the tolerance per server.
const LEASE: Duration = Duration::from_secs(1);

/// Why a request was refused, with the seconds to wait.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Rate { retry_after: u64 },
    Quota { retry_after: u64 },
    Enumeration { retry_after: u64 },
}

impl From<Refusal> for ClientError {
    fn from(refusal: Refusal) -> Self {
        let reason = match refusal {
            Refusal::Rate { .. } => "rate",
            Refusal::Quota { .. } => "quota",
            Refusal::Enumeration { .. } => "enumeration",
        };
        crate::metrics::metrics()
            .refusals
            .with_label_values(&[reason])
            .inc();
        match refusal {
            Refusal::Rate { retry_after } => ClientError::new(
                Code::RateLimited,
                "Too many queries from your credential (a batch costs one per query); wait for \
                 the Retry-After seconds and send again.",
            )
            .with_retry_after(retry_after),
            Refusal::Quota { retry_after } => ClientError::new(
                Code::RateDailyQuota,
                "Your credential has used its queries for today (Japan time); send again after \
                 midnight, or ask your operator for a larger quota.",
            )
            .with_retry_after(retry_after),
            Refusal::Enumeration { retry_after } => ClientError::new(
                Code::RateEnumerationSuspected,
                "Most of your recent checks found no coverage, so your credential is paused \
                 until your operator clears it; check how your system builds its queries.",
            )
            .with_retry_after(retry_after),
        }
    }
}

/// The settings of the limits.
#[derive(Clone, Debug)]
pub struct LimitSettings {
    pub rate_per_second: u32,
    pub rate_burst: NonZeroU32,
    pub daily_quota: u64,
    pub enumeration_misses: u32,
    pub enumeration_retry_after: Duration,
    pub trusted_proxies: TrustedProxies,
}

pub struct Limits {
    /// `None`: neither a rate nor a quota (no database round trip at all).
    budget: Option<Budget>,
    lease_extra: f64,
    retry_after_flag: u64,
    /// Tokens this server has leased per party and not spent yet.
    leases: Mutex<HashMap<PartyId, Arc<tokio::sync::Mutex<f64>>>>,
    /// Parties flagged now, kept current by [`sync`] (and by every lease, which reads the flag).
    flagged: RwLock<HashSet<PartyId>>,
    watch: Watch,
    addresses: AddressBuckets,
    proxies: TrustedProxies,
}

impl Limits {
    pub fn new(settings: &LimitSettings) -> Self {
        let rate = f64::from(settings.rate_per_second);
        let burst = f64::from(settings.rate_burst.get());
        let quota = i64::try_from(settings.daily_quota).unwrap_or(i64::MAX);
        let budget = match (rate > 0.0, quota > 0) {
            (false, false) => None,
            (true, _) => Some(Budget {
                rate,
                burst,
                daily_quota: quota,
            }),
            // A quota without a rate: a bucket that never runs dry.
            (false, true) => Some(Budget {
                rate: 1e12,
                burst: 1e12,
                daily_quota: quota,
            }),
        };
        let lease_extra = if rate > 0.0 {
            (rate * LEASE.as_secs_f64()).min(burst)
        } else {
            100.0
        };
        Limits {
            budget,
            lease_extra,
            retry_after_flag: settings.enumeration_retry_after.as_secs(),
            leases: Mutex::new(HashMap::new()),
            flagged: RwLock::new(HashSet::new()),
            watch: Watch::new(settings.enumeration_misses),
            addresses: AddressBuckets::new(settings.rate_per_second, settings.rate_burst),
            proxies: settings.trusted_proxies.clone(),
        }
    }

    /// Charges `cost` queries to the party: from this server's lease, else from the shared
    /// bucket.
    ///
    /// # Errors
    /// A [`Refusal`] (429), or the database failing (503).
    pub async fn admit(&self, pool: &Pool, party_id: PartyId, cost: u64) -> Result<(), ApiError> {
        if self.is_flagged(party_id) {
            return Err(self.flag_refusal().into());
        }
        let Some(budget) = self.budget else {
            return Ok(());
        };
        let cost = cost as f64;
        let lease = {
            let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
            leases.entry(party_id).or_default().clone()
        };
        // Held across the database round trip: a party's concurrent requests on this server
        // wait for one lease instead of each taking its own.
        let mut held = lease.lock().await;
        if *held >= cost {
            *held -= cost;
            return Ok(());
        }
        let client = pool.get().await.map_err(anyhow::Error::new)?;
        let grant = store::take(
            &client,
            party_id,
            cost - *held,
            self.lease_extra,
            budget,
            crate::eligibility::today_in_japan(),
        )
        .await?;
        if grant.flagged {
            self.set_flagged(party_id, true);
            return Err(self.flag_refusal().into());
        }
        if grant.quota_spent {
            return Err(ClientError::from(Refusal::Quota {
                retry_after: seconds_to_midnight_in_japan(),
            })
            .into());
        }
        if grant.granted <= 0.0 {
            return Err(ClientError::from(Refusal::Rate {
                retry_after: whole_seconds(Duration::from_secs_f64(
                    grant.wait_seconds.clamp(0.0, 86_400.0),
                )),
            })
            .into());
        }
        *held = (*held + grant.granted - cost).max(0.0);
        Ok(())
    }

    /// Counts a bulk inquiry's `queries` against the party's daily quota (every server's), without
    /// taking them from its rate: the workers pace bulk work, not the party's bucket.
    ///
    /// # Errors
    /// 429 `rate.daily_quota` when they do not fit in what is left of today's quota (nothing is
    /// counted then), or the database failing (503).
    pub async fn count_queries(
        &self,
        pool: &Pool,
        party_id: PartyId,
        queries: usize,
    ) -> Result<(), ApiError> {
        let Some(budget) = self.budget.filter(|b| b.daily_quota > 0) else {
            return Ok(());
        };
        let client = pool.get().await.map_err(anyhow::Error::new)?;
        let counted = store::count_against_quota(
            &**client,
            party_id,
            i64::try_from(queries).unwrap_or(i64::MAX),
            budget,
            crate::eligibility::today_in_japan(),
        )
        .await?;
        if counted {
            Ok(())
        } else {
            Err(ClientError::from(Refusal::Quota {
                retry_after: seconds_to_midnight_in_japan(),
            })
            .into())
        }
    }

    /// Counts a request's answers for the enumeration watch, each as its key and whether it
    /// found something, and flags the party (on every server) when they look like a walk.
    pub async fn note_answers(&self, pool: &Pool, party_id: PartyId, answers: Vec<(Key, bool)>) {
        let Some(suspicion) = self.watch.note(party_id, answers) else {
            return;
        };
        tracing::warn!(
            party_id = party_id.get(),
            distinct_misses = suspicion.distinct_misses,
            distinct_keys = suspicion.distinct_keys,
            "enumeration suspected: most of this party's distinct checks find nothing; pausing \
             it until an administrator clears the flag (onshi party flags)"
        );
        self.set_flagged(party_id, true);
        let saturate = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        let raised = match pool.get().await {
            Ok(client) => store::raise_flag(
                &**client,
                party_id,
                "enumeration",
                saturate(suspicion.distinct_misses),
                saturate(suspicion.distinct_keys),
            )
            .await
            .map(|_| ()),
            Err(error) => Err(anyhow::Error::new(error)),
        };
        if let Err(error) = raised {
            // The flag still holds on this server; the next lease of another server reads it
            // once stored, so keep the record of why it is missing.
            tracing::error!(
                party_id = party_id.get(),
                error = format!("{error:#}"),
                "storing a flag failed"
            );
        }
    }

    /// The watch's key for a value a party asked about.
    pub fn key(&self, value: &impl std::hash::Hash) -> Key {
        self.watch.key(value)
    }

    /// Admits a request without a token by its client address.
    ///
    /// # Errors
    /// The address is over its rate.
    pub fn admit_address(
        &self,
        peer: std::net::IpAddr,
        forwarded_for: Option<&str>,
    ) -> Result<(), Refusal> {
        self.addresses
            .admit(self.proxies.client_address(peer, forwarded_for))
    }

    pub(crate) fn is_flagged(&self, party_id: PartyId) -> bool {
        let flagged = self.flagged.read().unwrap_or_else(|p| p.into_inner());
        flagged.contains(&party_id)
    }

    pub(super) fn set_flagged(&self, party_id: PartyId, on: bool) {
        let mut flagged = self.flagged.write().unwrap_or_else(|p| p.into_inner());
        if on {
            flagged.insert(party_id);
        } else {
            flagged.remove(&party_id);
        }
    }

    pub(super) fn replace_flags(&self, parties: impl IntoIterator<Item = PartyId>) {
        let mut flagged = self.flagged.write().unwrap_or_else(|p| p.into_inner());
        *flagged = parties.into_iter().collect();
    }

    fn flag_refusal(&self) -> ClientError {
        Refusal::Enumeration {
            retry_after: self.retry_after_flag,
        }
        .into()
    }
}

/// A request without a token that has passed its address's limit: routes where no party is
/// involved take this instead of [`super::auth::Caller`].
pub struct AddressLimited;

impl actix_web::FromRequest for AddressLimited {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &actix_web::HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(admit_address(req))
    }
}

fn admit_address(req: &actix_web::HttpRequest) -> Result<AddressLimited, ApiError> {
    if cfg!(feature = "unguarded-bench") {
        return Ok(AddressLimited);
    }
    let state = req
        .app_data::<actix_web::web::Data<super::AppState>>()
        .ok_or_else(|| anyhow::anyhow!("application state missing"))?;
    if let Some(peer) = req.peer_addr() {
        let forwarded_for = req
            .headers()
            .get("X-Forwarded-For")
            .and_then(|v| v.to_str().ok());
        state
            .limits
            .admit_address(peer.ip(), forwarded_for)
            .map_err(ClientError::from)?;
    }
    Ok(AddressLimited)
}

/// Whole seconds, rounded up, at least 1 (what `Retry-After` carries).
fn whole_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

fn seconds_to_midnight_in_japan() -> u64 {
    let now = chrono::Utc::now() + chrono::Duration::hours(9);
    let elapsed = u64::from(now.num_seconds_from_midnight());
    (86_400 - elapsed).max(1)
}
