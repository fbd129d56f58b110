//! Limits for the routes without a token (the card holder's own view), per client address.
//!
//! IPv6 addresses count by their /64: one subscriber is usually handed a whole /64, so cycling
//! through it would otherwise give a fresh bucket per request. The map is bounded without ever
//! being emptied wholesale: at its bound, buckets that have refilled (they carry nothing a fresh
//! one would not) are dropped, and if none has, new addresses are refused until one does. The
//! client's address is the connection's, or, only behind a configured trusted proxy, the last
//! address in `X-Forwarded-For` that is not one of the trusted proxies.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

struct Bucket {
    tokens: f64,
    refilled: Instant,
}

pub struct AddressBuckets {
    rate: f64,
    burst: f64,
    max: usize,
    buckets: Mutex<HashMap<AddressKey, Bucket>>,
}

impl AddressBuckets {
    pub fn new(rate: f64, burst: f64) -> Self {
        Self::with_max(rate, burst, ADDRESSES_MAX)
    }

    fn with_max(rate: f64, burst: f64, max: usize) -> Self {
        AddressBuckets {
            rate,
            burst,
            max,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn admit(&self, address: IpAddr) -> Result<(), Refusal> {
        self.admit_at(AddressKey::of(address), Instant::now())
    }

    fn admit_at(&self, key: AddressKey, now: Instant) -> Result<(), Refusal> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(&key) && buckets.len() >= self.max {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.refilled).as_secs_f64() * rate < burst
            });
            if buckets.len() >= self.max {
                // Every tracked address is busy: a new one waits rather than resetting them all.
                return Err(Refusal::Rate { retry_after: 1 });
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            refilled: now,
        });
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate);
            Err(Refusal::Rate {
                retry_after: super::whole_seconds(wait),
            })
        }
    }
}

/// The proxies whose `X-Forwarded-For` is believed: addresses or CIDR blocks.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

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
                .map_err(|_| anyhow::anyhow!("trusted_proxies: {entry:?} is not an address"))?;
            let max = if address.is_ipv4() { 32 } else { 128 };
            let prefix =
                match prefix {
                    Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| {
                        anyhow::anyhow!("trusted_proxies: bad prefix in {entry:?}")
                    })?,
                    None => max,
                };
            blocks.push((address, prefix));
        }
        Ok(TrustedProxies(blocks))
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
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_ipv6_slash_64_is_one_bucket() {
        let buckets = AddressBuckets::new(1.0, 2.0);
        let t0 = Instant::now();
        let a = AddressKey::of(ip("2001:db8:1:2::1"));
        let b = AddressKey::of(ip("2001:db8:1:2:ffff:1:2:3"));
        assert_eq!(a, b);
        assert!(buckets.admit_at(a, t0).is_ok());
        assert!(buckets.admit_at(b, t0).is_ok());
        assert!(buckets.admit_at(b, t0).is_err());
        let other = AddressKey::of(ip("2001:db8:1:3::1"));
        assert!(buckets.admit_at(other, t0).is_ok());
    }

    #[test]
    fn a_full_map_drops_refilled_buckets_only_and_never_resets_a_busy_one() {
        let buckets = AddressBuckets::with_max(1.0, 2.0, 3);
        let t0 = Instant::now();
        let key = |n: u8| AddressKey::of(IpAddr::from([192, 0, 2, n]));
        // An attacker empties its bucket.
        assert!(buckets.admit_at(key(1), t0).is_ok());
        assert!(buckets.admit_at(key(1), t0).is_ok());
        assert!(buckets.admit_at(key(1), t0).is_err());
        assert!(buckets.admit_at(key(2), t0).is_ok());
        assert!(buckets.admit_at(key(3), t0).is_ok());
        // The map is full of busy buckets: a new address waits, and the attacker stays limited.
        assert!(buckets.admit_at(key(4), t0).is_err());
        assert!(buckets.admit_at(key(1), t0).is_err());
        // Later, refilled buckets make room; the emptied one has refilled too by then.
        let later = t0 + Duration::from_secs(3);
        assert!(buckets.admit_at(key(4), later).is_ok());
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
