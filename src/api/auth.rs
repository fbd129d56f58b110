//! Bearer-token authentication and role checks.
//!
//! The token's hash is looked up in `parties`; a hit is cached in memory (`moka`, bounded) for
//! `auth_cache_seconds`. A revocation is announced to every server (`NOTIFY`, see
//! [`super::limits::sync`]) and drops the party from each cache at once; while a server cannot
//! hear announcements its cache is not used at all. An expired token stops working within
//! `auth_cache_seconds`. Misses are not cached (random tokens must not fill memory). A party with registered client
//! certificates must also have presented one of them at the TLS handshake ([`crate::tls`]); the
//! cache holds the party with its fingerprints, and the comparison runs on every request. An
//! authenticated party then passes its abuse limits ([`super::limits`]) before the handler runs.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::http::header::AUTHORIZATION;
use actix_web::{web, FromRequest, HttpRequest};

use super::codes::Code;
use super::error::{ApiError, ClientError};
use super::AppState;
use crate::domain::CertFingerprint;
use crate::domain::PartyId;
use crate::parties::{Party, Token};
use crate::tls::PeerCertificate;

/// The most tokens cached at once; beyond it `moka` evicts the least likely to be used again.
const CACHE_MAX: u64 = 100_000;

pub struct AuthCache {
    /// `None`: a time to live of zero, nothing is cached.
    entries: Option<moka::sync::Cache<[u8; 32], Party>>,
    /// Whether this server hears revocations now; until it does, the cache is not trusted.
    live: AtomicBool,
}

impl AuthCache {
    pub fn new(ttl: Duration) -> Self {
        let entries = (!ttl.is_zero()).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(CACHE_MAX)
                .time_to_live(ttl)
                // For `forget_party`: a revoked party's entries are never returned again.
                .support_invalidation_closures()
                .build()
        });
        AuthCache {
            entries,
            live: AtomicBool::new(false),
        }
    }

    /// Says whether revocations reach this server; turning it off empties the cache.
    pub fn set_live(&self, live: bool) {
        self.live.store(live, Ordering::SeqCst);
        if !live {
            self.clear();
        }
    }

    pub fn clear(&self) {
        if let Some(entries) = &self.entries {
            entries.invalidate_all();
        }
    }

    /// Drops every cached token of the party (it was revoked): from now on none of them is
    /// answered from the cache, whenever `moka` gets round to removing them.
    pub fn forget_party(&self, party_id: PartyId) {
        if let Some(entries) = &self.entries {
            if entries
                .invalidate_entries_if(move |_, party| party.id == party_id)
                .is_err()
            {
                // Only without invalidation closures, which the builder enables.
                entries.invalidate_all();
            }
        }
    }

    fn get(&self, hash: &[u8; 32]) -> Option<Party> {
        if !self.live.load(Ordering::SeqCst) {
            return None;
        }
        self.entries.as_ref()?.get(hash)
    }

    fn put(&self, hash: [u8; 32], party: Party) {
        if !self.live.load(Ordering::SeqCst) {
            return;
        }
        if let Some(entries) = &self.entries {
            entries.insert(hash, party);
        }
    }
}

/// The authenticated party of a request, admitted by the route's [`Access`]
/// (`super::routes::ROUTES`): a party of another role never reaches the handler.
pub struct Caller(pub Party);

impl Caller {
    pub fn party(&self) -> &Party {
        &self.0
    }
}

/// 403 `auth.forbidden`: the caller is known but may not do this.
pub fn forbidden(message: &'static str) -> ClientError {
    ClientError::new(Code::AuthForbidden, message)
}

fn unauthorized(code: Code, message: &'static str) -> ApiError {
    ClientError::new(code, message).into()
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        authenticated(req, Some(1))
    }
}

/// The authenticated party of a request whose cost is known only from its body (a batch): the
/// handler charges the limits itself, all at once, with [`super::limits::Limits::admit`].
pub struct UnchargedCaller(pub Party);

impl FromRequest for UnchargedCaller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let caller = authenticated(req, None);
        Box::pin(async move { caller.await.map(|Caller(party)| UnchargedCaller(party)) })
    }
}

/// Authenticates the request and charges `cost` queries to the party's limits (`None`: the
/// handler will).
fn authenticated(
    req: &HttpRequest,
    cost: Option<u64>,
) -> Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .map(|v| v.to_str().map(|s| s.to_owned()));
    let presented = req.conn_data::<PeerCertificate>().map(|c| c.0);
    // A handler outside the table admits nobody (a route must be listed to be served).
    let access = super::routes::matched(req).map(|route| route.access);
    Box::pin(async move {
        let state = state.ok_or_else(|| anyhow::anyhow!("application state missing"))?;
        if cfg!(feature = "unguarded-bench") {
            return Ok(Caller(Party::unguarded_bench()));
        }
        let party = authenticate(&state, header).await?;
        require_bound_certificate(&party, presented)?;
        let admitted = access.is_some_and(|access| access.admits(party.role));
        // A refused request costs one query, as any other: refusals are not a free probe.
        match cost {
            Some(cost) => state.limits.admit(&state.pool, party.id, cost).await?,
            None if !admitted => state.limits.admit(&state.pool, party.id, 1).await?,
            None => {}
        }
        if !admitted {
            return Err(forbidden("Your credential's role may not use this endpoint.").into());
        }
        Ok(Caller(party))
    })
}

/// Resolves the Authorization header to its party.
async fn authenticate(
    state: &AppState,
    header: Option<Result<String, actix_web::http::header::ToStrError>>,
) -> Result<Party, ApiError> {
    let value = match header {
        None => {
            return Err(unauthorized(
                Code::AuthMissing,
                "Send your credential as 'Authorization: Bearer <token>'.",
            ))
        }
        Some(Err(_)) => {
            return Err(unauthorized(
                Code::AuthMalformed,
                "The Authorization header is not readable text.",
            ))
        }
        Some(Ok(value)) => value,
    };
    let Some(raw) = value.strip_prefix("Bearer ") else {
        return Err(unauthorized(
            Code::AuthMalformed,
            "Use the Bearer scheme: 'Authorization: Bearer <token>'.",
        ));
    };
    let token = Token::from_header(raw.trim());
    let hash = token.hash();
    if let Some(party) = state.auth.get(&hash) {
        return Ok(party);
    }
    let client = state.pool.get().await.map_err(anyhow::Error::new)?;
    match crate::parties::by_token_hash(&client, &hash).await? {
        Some(party) => {
            state.auth.put(hash, party.clone());
            Ok(party)
        }
        None => Err(unauthorized(
            Code::AuthInvalid,
            "This credential is unknown, revoked or expired; ask your operator for a new one.",
        )),
    }
}

/// A party with registered client certificates must have presented one of them on this
/// connection; a party with none is bound by its token alone. Plain HTTP presents nothing, so a
/// bound party is refused there too (a deployment terminating TLS in front cannot bind).
fn require_bound_certificate(
    party: &Party,
    presented: Option<CertFingerprint>,
) -> Result<(), ApiError> {
    if party.certificates.is_empty() || presented.is_some_and(|p| party.certificates.contains(&p)) {
        return Ok(());
    }
    tracing::warn!(
        party = party.id.get(),
        presented = ?presented,
        "token used without its bound client certificate"
    );
    Err(unauthorized(
        Code::AuthCertificateMismatch,
        "This credential is bound to a client certificate: connect over TLS presenting the \
         certificate registered for it (ask your operator which one, or to register a new one).",
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::parties::Role;

    fn party(id: i64) -> Party {
        Party {
            id: PartyId::new(id),
            role: Role::Facility,
            facility_code: None,
            insurer_numbers: BTreeSet::new(),
            payer_numbers: BTreeSet::new(),
            certificates: Vec::new(),
        }
    }

    #[test]
    fn the_cache_answers_only_while_live_and_forgets_a_revoked_party() {
        let cache = AuthCache::new(Duration::from_secs(3_600));
        cache.put([1; 32], party(1));
        assert!(cache.get(&[1; 32]).is_none(), "not live: nothing is cached");
        cache.set_live(true);
        cache.put([1; 32], party(1));
        cache.put([2; 32], party(1));
        cache.put([3; 32], party(2));
        assert_eq!(cache.get(&[1; 32]).map(|p| p.id), Some(PartyId::new(1)));
        cache.forget_party(PartyId::new(1));
        assert!(cache.get(&[1; 32]).is_none());
        assert!(cache.get(&[2; 32]).is_none());
        assert_eq!(cache.get(&[3; 32]).map(|p| p.id), Some(PartyId::new(2)));
        // Going deaf to revocations empties the cache.
        cache.set_live(false);
        cache.set_live(true);
        assert!(cache.get(&[3; 32]).is_none());
    }

    #[test]
    fn a_time_to_live_of_zero_caches_nothing() {
        let cache = AuthCache::new(Duration::ZERO);
        cache.set_live(true);
        cache.put([1; 32], party(1));
        assert!(cache.get(&[1; 32]).is_none());
    }
}
