//! Limits for the routes without a token (the card holder's own view), per client address.
//!
//! IPv6 addresses count by their /64: one subscriber is usually handed a whole /64, so cycling
//! through it would otherwise give a fresh bucket per request. The buckets are `governor`'s
//! (GCRA, the same arithmetic as a token bucket of `burst` refilled at `rate` a second). The map
//! is bounded without ever being emptied wholesale: at its bound, buckets that have refilled
//! (they carry nothing a fresh one would not) are dropped, and if none has, new addresses are
//! refused until one does. The client's address is the connection's, or, only behind a
//! configured trusted proxy, the last address in `X-Forwarded-For` that is not one of the
//! trusted proxies.

use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::{DashMapStateStore, ShrinkableKeyedStateStore};
use governor::state::StateStore;
use governor::{Quota, RateLimiter};

use super::Refusal;

/// The most addresses tracked at once.
const ADDRESSES_MAX: usize = 100_000;

/// A bucket's subject: an IPv4 address, or an IPv6 /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddressKey(IpAddr);

impl AddressKey {
    pub fn of(address: IpAddr) -> Self {
        match address {
            IpAddr::V4(v4) => AddressKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddressKey(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    AddressKey(IpAddr::V6(Ipv6Addr::new(
                        s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                    )))
                }
            },
        }
    }
}

/// The limiter's map, shared with [`AddressBuckets`] so that it can tell a new address from a
/// tracked one (the limiter itself does not say).
struct SharedStore(Arc<DashMapStateStore<AddressKey>>);

impl StateStore for SharedStore {
    type Key = AddressKey;

    fn measure_and_replace<T, F, E>(&self, key: &AddressKey, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        self.0.measure_and_replace(key, f)
    }
}

impl ShrinkableKeyedStateStore<AddressKey> for SharedStore {
    fn retain_recent(&self, drop_below: Nanos) {
        self.0.retain_recent(drop_below);
    }

    fn len(&self) -> usize {
        ShrinkableKeyedStateStore::len(&*self.0)
    }

    fn is_empty(&self) -> bool {
        ShrinkableKeyedStateStore::is_empty(&*self.0)
    }
}

type Limiter<C> = RateLimiter<AddressKey, SharedStore, C, NoOpMiddleware<<C as Clock>::Instant>>;

pub struct AddressBuckets<C: Clock = DefaultClock> {
    /// `None`: no limit (a rate of 0).
    limiter: Option<(Limiter<C>, Arc<DashMapStateStore<AddressKey>>)>,
    clock: C,
    max: usize,
}

impl AddressBuckets {
    /// Buckets of `burst` refilled at `rate` a second; a rate of 0 limits nothing.
    pub fn new(rate: u32, burst: NonZeroU32) -> Self {
        Self::with_clock(rate, burst, ADDRESSES_MAX, DefaultClock::default())
    }
}

impl<C: Clock + Clone> AddressBuckets<C> {
    fn with_clock(rate: u32, burst: NonZeroU32, max: usize, clock: C) -> Self {
        let limiter = NonZeroU32::new(rate).map(|rate| {
            let quota = Quota::per_second(rate).allow_burst(burst);
            let map = Arc::new(DashMapStateStore::default());
            let limiter = RateLimiter::new(quota, SharedStore(map.clone()), clock.clone());
            (limiter, map)
        });
        AddressBuckets {
            limiter,
            clock,
            max,
        }
    }

    pub fn admit(&self, address: IpAddr) -> Result<(), Refusal> {
        self.admit_key(AddressKey::of(address))
    }

    fn admit_key(&self, key: AddressKey) -> Result<(), Refusal> {
        let Some((limiter, map)) = &self.limiter else {
            return Ok(());
        };
        if !map.contains_key(&key) && limiter.len() >= self.max {
            limiter.retain_recent();
            if limiter.len() >= self.max {
                // Every tracked address is busy: a new one waits rather than resetting them all.
                return Err(Refusal::Rate { retry_after: 1 });
            }
        }
        limiter.check_key(&key).map_err(|not_until| Refusal::Rate {
            retry_after: super::whole_seconds(not_until.wait_time_from(self.clock.now())),
        })
    }
}

/// The proxies whose `X-Forwarded-For` is believed: addresses or CIDR blocks (the setting
/// `trusted_proxies`, read from a list of them).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "Vec<String>")]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TryFrom<Vec<String>> for TrustedProxies {
    type Error = anyhow::Error;

    fn try_from(entries: Vec<String>) -> anyhow::Result<Self> {
        TrustedProxies::parse(&entries)
    }
}

impl TrustedProxies {
    /// Parses `address` or `address/prefix` entries.
    ///
    /// # Errors
    /// An entry that is neither, naming it.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> anyhow::Result<Self> {
        let mut blocks = Vec::new();
        for entry in entries {
            let entry = entry.as_ref().trim();
            let (address, prefix) = match entry.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (entry, None),
            };
            let address: IpAddr = address
                .parse()
                .map_err(|_| anyhow::anyhow!("{entry:?} is not an address"))?;
            let max = if address.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                Some(p) => p
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= max)
                    .ok_or_else(|| anyhow::anyhow!("bad prefix in {entry:?}"))?,
                None => max,
            };
            blocks.push((address, prefix));
        }
        Ok(TrustedProxies(blocks))
    }

    /// Whether `address` is in one of the blocks.
    pub fn contains_address(&self, address: IpAddr) -> bool {
        self.contains(address)
    }

    fn contains(&self, address: IpAddr) -> bool {
        self.0
            .iter()
            .any(|&(block, prefix)| match (block, address) {
                (IpAddr::V4(b), IpAddr::V4(a)) => {
                    masked(u128::from(u32::from(b)) << 96, prefix)
                        == masked(u128::from(u32::from(a)) << 96, prefix)
                }
                (IpAddr::V6(b), IpAddr::V6(a)) => {
                    masked(u128::from(b), prefix) == masked(u128::from(a), prefix)
                }
                _ => false,
            })
    }

    /// The client's address: the connection's, unless that is a trusted proxy, in which case the
    /// nearest address in `X-Forwarded-For` that is not a trusted proxy (a caller can prepend
    /// anything to the header, but not what the trusted proxies appended after it).
    pub fn client_address(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let Some(header) = forwarded_for else {
            return peer;
        };
        let mut client = peer;
        for hop in header.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(address) if self.contains(address) => client = address,
                Ok(address) => return address,
                // An unreadable hop: the last trusted one vouched for nothing further.
                Err(_) => return client,
            }
        }
        client
    }
}

fn masked(value: u128, prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        value & (u128::MAX << (128 - u32::from(prefix)))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use governor::clock::FakeRelativeClock;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Buckets on a clock that moves only when told to.
    fn on_fake_clock(
        rate: u32,
        burst: u32,
        max: usize,
    ) -> (AddressBuckets<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let burst = NonZeroU32::new(burst).unwrap();
        (
            AddressBuckets::with_clock(rate, burst, max, clock.clone()),
            clock,
        )
    }

    #[test]
    fn an_ipv6_slash_64_is_one_bucket() {
        let (buckets, _clock) = on_fake_clock(1, 2, ADDRESSES_MAX);
        let a = AddressKey::of(ip("2001:db8:1:2::1"));
        let b = AddressKey::of(ip("2001:db8:1:2:ffff:1:2:3"));
        assert_eq!(a, b);
        assert!(buckets.admit_key(a).is_ok());
        assert!(buckets.admit_key(b).is_ok());
        assert!(buckets.admit_key(b).is_err());
        let other = AddressKey::of(ip("2001:db8:1:3::1"));
        assert!(buckets.admit_key(other).is_ok());
    }

    #[test]
    fn a_full_map_drops_refilled_buckets_only_and_never_resets_a_busy_one() {
        let (buckets, clock) = on_fake_clock(1, 2, 3);
        let key = |n: u8| AddressKey::of(IpAddr::from([192, 0, 2, n]));
        // An attacker empties its bucket.
        assert!(buckets.admit_key(key(1)).is_ok());
        assert!(buckets.admit_key(key(1)).is_ok());
        assert!(buckets.admit_key(key(1)).is_err());
        assert!(buckets.admit_key(key(2)).is_ok());
        assert!(buckets.admit_key(key(3)).is_ok());
        // The map is full of busy buckets: a new address waits, and the attacker stays limited.
        assert!(buckets.admit_key(key(4)).is_err());
        assert!(buckets.admit_key(key(1)).is_err());
        // Later, refilled buckets make room; the emptied one has refilled too by then.
        clock.advance(Duration::from_secs(3));
        assert!(buckets.admit_key(key(4)).is_ok());
    }

    #[test]
    fn a_refusal_says_when_a_token_is_back_and_a_zero_rate_limits_nothing() {
        let (buckets, clock) = on_fake_clock(1, 1, ADDRESSES_MAX);
        let key = AddressKey::of(ip("192.0.2.9"));
        assert!(buckets.admit_key(key).is_ok());
        assert_eq!(
            buckets.admit_key(key),
            Err(Refusal::Rate { retry_after: 1 })
        );
        clock.advance(Duration::from_millis(1_000));
        assert!(buckets.admit_key(key).is_ok());
        let (unlimited, _clock) = on_fake_clock(0, 1, 1);
        for _ in 0..10 {
            assert!(unlimited.admit_key(key).is_ok());
        }
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8", "2001:db8::1"]).unwrap();
        let header = Some("198.51.100.7, 203.0.113.9, 10.1.2.3");
        // From a trusted proxy: the nearest untrusted hop (the caller cannot forge it).
        assert_eq!(
            proxies.client_address(ip("10.0.0.1"), header),
            ip("203.0.113.9")
        );
        // From anyone else: the connection's own address.
        assert_eq!(
            proxies.client_address(ip("192.0.2.1"), header),
            ip("192.0.2.1")
        );
        assert_eq!(
            TrustedProxies::default().client_address(ip("10.0.0.1"), header),
            ip("10.0.0.1")
        );
        assert!(TrustedProxies::parse(&["10.0.0.0/33"]).is_err());
        assert!(TrustedProxies::parse(&["proxy.local"]).is_err());
    }
}
