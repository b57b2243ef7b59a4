//! Receive coalescing under signaling load, the way a network card moderates its interrupts.
//!
//! A busy signaling server that wakes for every message a client sends reads one or two
//! messages per `recv`, acknowledges them with a TCP ACK of its own, writes them on in one
//! `send` each and goes back to `epoll_wait`: three system calls and two context switches for
//! a few hundred bytes. When Socket.IO events have been arriving faster than
//! `realtime.coalesce_min_events_per_s`, a runtime worker that wakes up from idle first waits
//! `realtime.coalesce_us`, so what the clients send meanwhile is read, relayed and written in
//! one pass. Measured on the signaling benchmark (docs/PERFORMANCE.md): system calls per relayed
//! message fall several-fold and CPU per message by about a third, for a latency cost of the
//! delay (0.2 ms by default, nothing next to a network round trip). The default threshold,
//! 10,000 events/s, is where a wait of 0.2 ms gathers two events or more on average; below
//! it waiting would cost more than it saves. A quiet server (chat, calls being set up) never
//! waits: the rate is that of the last complete window of [`WINDOW`], so the first events of a
//! burst go through at once.
//!
//! The runtime calls [`on_worker_unpark`] (the `securevox` binary installs it with tokio's
//! `on_thread_unpark`); [`configure`] sets the delay and the threshold from the configuration.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long the event rate is measured over before a worker changes its mind.
pub const WINDOW: Duration = Duration::from_millis(10);

/// Socket.IO events received since the process started (all connections).
static EVENTS: AtomicU64 = AtomicU64::new(0);
/// Microseconds a waking worker waits while busy; 0 turns coalescing off.
static DELAY_US: AtomicU64 = AtomicU64::new(0);
/// Events per second from which a worker counts as busy.
static MIN_RATE: AtomicU64 = AtomicU64::new(u64::MAX);
/// Wake-ups that waited (`securevox_realtime_coalesced_wakeups_total`).
static WAITS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static RATE: Cell<Option<Window>> = const { Cell::new(None) };
}

/// Sets the delay (0: off) and the event rate from which it applies.
pub fn configure(delay_us: u64, min_events_per_s: u64) {
    MIN_RATE.store(min_events_per_s, Ordering::Relaxed);
    DELAY_US.store(delay_us, Ordering::Relaxed);
}

/// Wake-ups that waited since the process started.
pub fn waits() -> u64 {
    WAITS.load(Ordering::Relaxed)
}

/// Counts one Socket.IO event received.
pub fn note_event() {
    EVENTS.fetch_add(1, Ordering::Relaxed);
}

/// Runs on a runtime worker as it wakes up: waits the configured delay while events arrive
/// fast, returns at once otherwise.
pub fn on_worker_unpark() {
    let delay = DELAY_US.load(Ordering::Relaxed);
    if delay == 0 {
        return;
    }
    let now = Instant::now();
    let events = EVENTS.load(Ordering::Relaxed);
    let min_rate = MIN_RATE.load(Ordering::Relaxed);
    let window = RATE.with(|rate| {
        let window = Window::next(rate.get(), now, events, min_rate);
        rate.set(Some(window));
        window
    });
    if window.busy {
        WAITS.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_micros(delay));
    }
}

/// One worker's view of the event rate: the current window, and whether the last complete one
/// was busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    start: Instant,
    events_at_start: u64,
    busy: bool,
}

impl Window {
    /// The window after a wake-up at `now` with the event counter at `events`.
    fn next(previous: Option<Self>, now: Instant, events: u64, min_rate: u64) -> Self {
        let Some(window) = previous else {
            return Self { start: now, events_at_start: events, busy: false };
        };
        let elapsed = now.saturating_duration_since(window.start);
        if elapsed < WINDOW {
            return window;
        }
        let seen = u128::from(events.saturating_sub(window.events_at_start));
        let rate = seen * 1_000_000 / elapsed.as_micros().max(1);
        Self { start: now, events_at_start: events, busy: rate >= u128::from(min_rate) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN_RATE: u64 = 2_000;

    #[test]
    fn quiet_until_a_whole_window_was_busy_and_quiet_again_after_one_that_was_not() {
        let t0 = Instant::now();
        let first = Window::next(None, t0, 0, MIN_RATE);
        assert!(!first.busy, "no history: no waiting");

        // Inside the first window nothing changes, however many events arrive.
        let inside = Window::next(Some(first), t0 + Duration::from_millis(5), 500, MIN_RATE);
        assert_eq!(inside, first);

        // 30 events in 10 ms = 3,000/s: busy.
        let busy = Window::next(Some(first), t0 + WINDOW, 30, MIN_RATE);
        assert!(busy.busy);
        assert_eq!((busy.start, busy.events_at_start), (t0 + WINDOW, 30));

        // 10 events in the next 10 ms = 1,000/s: quiet again.
        let quiet = Window::next(Some(busy), t0 + 2 * WINDOW, 40, MIN_RATE);
        assert!(!quiet.busy);

        // A single event after a long idle spell is not a burst.
        let later = Window::next(Some(quiet), t0 + Duration::from_mins(1), 41, MIN_RATE);
        assert!(!later.busy);
    }

    #[test]
    fn the_threshold_is_inclusive_and_a_clock_going_backwards_changes_nothing() {
        let t0 = Instant::now();
        let first = Window::next(None, t0, 100, MIN_RATE);
        // exactly 2,000/s over 10 ms
        assert!(Window::next(Some(first), t0 + WINDOW, 120, MIN_RATE).busy);
        assert!(!Window::next(Some(first), t0 + WINDOW, 119, MIN_RATE).busy);
        let earlier = t0.checked_sub(Duration::from_millis(1)).expect("monotonic clock past 1 ms");
        assert_eq!(Window::next(Some(first), earlier, 1_000, MIN_RATE), first);
    }

    #[test]
    fn does_nothing_until_configured() {
        // Not configured (no other test configures it): returns before measuring anything.
        for _ in 0..10_000 {
            note_event();
        }
        on_worker_unpark();
        assert_eq!(RATE.with(Cell::get), None, "nothing measured, no waiting while off");
        assert_eq!(waits(), 0);
    }
}
