//! Per-allocation bandwidth cap (T3): a token bucket per direction. Packets over the cap are
//! dropped, as a congested link would drop them; congestion control at the ends adapts. The
//! byte streams of TCP allocations are slowed down instead ([`TokenBucket::debit`]).

use std::time::{Duration, Instant};

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
        self.refill(now);
        let bytes = bytes as f64;
        if self.tokens >= bytes {
            self.tokens -= bytes;
            true
        } else {
            false
        }
    }

    /// Takes `bytes` that have already been read from a stream, into debt if need be, and
    /// returns how long the reader should pause before passing them on: TCP's own flow control
    /// then slows the sender to the cap, where a datagram would be dropped.
    pub fn debit(&mut self, bytes: usize, now: Instant) -> Duration {
        if self.rate == 0 {
            return Duration::ZERO;
        }
        self.refill(now);
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate as f64)
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate as f64).min(self.burst);
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
    fn a_stream_in_debt_waits_for_the_rate() {
        let start = Instant::now();
        // 80 kbit/s = 10 000 B/s; the 64 KiB burst passes at once.
        let mut bucket = TokenBucket::new(80_000, start);
        assert_eq!(bucket.debit(64 * 1024, start), Duration::ZERO);
        let wait = bucket.debit(10_000, start);
        assert!((wait.as_secs_f64() - 1.0).abs() < 1e-6, "{wait:?}");
        // Once the wait has passed, the debt is repaid and the next chunk waits its own share.
        let wait = bucket.debit(5_000, start + Duration::from_secs(1));
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
        assert_eq!(TokenBucket::new(0, start).debit(1 << 30, start), Duration::ZERO);
    }

    #[test]
    fn zero_is_unlimited() {
        let now = Instant::now();
        let mut bucket = TokenBucket::new(0, now);
        assert!((0..100_000).all(|_| bucket.take(65_000, now)));
    }
}
