//! A rate limit on what the server answers over UDP to requests that prove nothing: Binding
//! requests and the 401 challenges to requests without (valid) credentials. A UDP source
//! address can be forged, so without a limit the server would send a stranger's victim a
//! stream of answers larger than the requests (reflection); past the limit the requests of
//! that address are dropped, as a congested link would drop them, and the client retries.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Answers per second one address (an IPv6 /64) keeps getting.
const RATE: f64 = 50.0;
/// Answers one address may get at once (a browser gathering for several ICE servers, a
/// household behind one NAT starting calls together).
const BURST: f64 = 200.0;
/// Addresses tracked at most; when full, the table is swept and, if still full, cleared
/// (which only forgives everyone early).
const MAX_TRACKED: usize = 65_536;

#[derive(Debug, Default)]
pub(crate) struct Strangers {
    buckets: HashMap<IpAddr, (f64, Instant)>,
}

impl Strangers {
    /// Whether an unauthenticated answer may go to `ip` at `now`; counts it if so.
    pub(crate) fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let key = bucket_key(ip);
        if self.buckets.len() >= MAX_TRACKED && !self.buckets.contains_key(&key) {
            self.sweep(now);
            if self.buckets.len() >= MAX_TRACKED {
                self.buckets.clear();
            }
        }
        let (tokens, last) = self.buckets.entry(key).or_insert((BURST, now));
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * RATE).min(BURST);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Forgets addresses whose bucket has refilled (they would start full anyway).
    pub(crate) fn sweep(&mut self, now: Instant) {
        self.buckets.retain(|_, (tokens, last)| {
            *tokens + now.saturating_duration_since(*last).as_secs_f64() * RATE < BURST
        });
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

/// IPv4 addresses count one by one; IPv6 by /64, the block one host or site usually holds.
fn bucket_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_rate_per_address() {
        let mut strangers = Strangers::default();
        let start = Instant::now();
        let victim: IpAddr = "198.51.100.7".parse().unwrap();
        let allowed = (0..1000).filter(|_| strangers.allow(victim, start)).count();
        assert_eq!(allowed, BURST as usize);
        // Another address is not affected.
        assert!(strangers.allow("198.51.100.8".parse().unwrap(), start));
        // One second later the rate's worth is back, not more.
        let later = start + Duration::from_secs(1);
        let allowed = (0..1000).filter(|_| strangers.allow(victim, later)).count();
        assert_eq!(allowed, RATE as usize);
    }

    #[test]
    fn ipv6_counts_by_64() {
        let mut strangers = Strangers::default();
        let now = Instant::now();
        for i in 0..BURST as u16 {
            let ip = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, i));
            assert!(strangers.allow(ip, now));
        }
        assert!(!strangers.allow("2001:db8:0:1::ffff".parse().unwrap(), now), "same /64");
        assert!(strangers.allow("2001:db8:0:2::1".parse().unwrap(), now), "another /64");
    }

    #[test]
    fn refilled_addresses_are_forgotten_and_the_table_is_bounded() {
        let mut strangers = Strangers::default();
        let now = Instant::now();
        for i in 0..MAX_TRACKED as u32 + 10 {
            strangers.allow(IpAddr::V4(i.into()), now);
        }
        assert!(strangers.tracked() <= MAX_TRACKED);
        strangers.sweep(now + Duration::from_secs(10));
        assert_eq!(strangers.tracked(), 0);
    }
}
