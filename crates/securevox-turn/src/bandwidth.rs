//! Per-allocation bandwidth cap (T3): a token bucket per direction. Packets over the cap are
//! dropped, as a congested link would drop them; congestion control at the ends adapts.

use std::time::Instant;

#[derive(Debug)]
pub struct TokenBucket {
    /// Bytes per second; 0 = unlimited.
    rate: u64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A cap of `bits_per_second` (0 = none) that lets half a second's worth through at once.
    pub fn new(bits_per_second: u64, now: Instant) -> Self {
        let rate = bits_per_second / 8;
        let burst = (rate as f64 / 2.0).max(64.0 * 1024.0);
        Self { rate, burst, tokens: burst, last: now }
    }

    /// [`take`](Self::take) at the current time, reading the clock only when capped.
    pub fn take_now(&mut self, bytes: usize) -> bool {
        self.rate == 0 || self.take(bytes, Instant::now())
    }

    /// Whether `bytes` may pass at `now`; takes them from the bucket if so.
    pub fn take(&mut self, bytes: usize, now: Instant) -> bool {
        if self.rate == 0 {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate as f64).min(self.burst);
        let bytes = bytes as f64;
        if self.tokens >= bytes {
            self.tokens -= bytes;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn passes_the_rate_and_drops_the_excess() {
        let start = Instant::now();
        // 3 Mbit/s = 375 000 B/s; burst 187 500 B.
        let mut bucket = TokenBucket::new(3_000_000, start);
        let mut passed = 0u64;
        // 10 s of 1000-byte packets every 1 ms (8 Mbit/s offered).
        for ms in 0..10_000u64 {
            if bucket.take(1000, start + Duration::from_millis(ms)) {
                passed += 1000;
            }
        }
        let expected = 375_000 * 10 + 187_500;
        assert!(passed <= expected + 1000 && passed >= expected - 2000, "{passed}");
    }

    #[test]
    fn zero_is_unlimited() {
        let now = Instant::now();
        let mut bucket = TokenBucket::new(0, now);
        assert!((0..100_000).all(|_| bucket.take(65_000, now)));
    }
}
