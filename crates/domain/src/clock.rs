//! The injected clock: the only way business logic learns the time.

use jiff::{SignedDuration, Timestamp};
use std::sync::Mutex;

/// A source of business time. Production uses [`SystemClock`]; the sandbox and tests use
/// [`ManualClock`], which only moves when told.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current business time.
    fn now(&self) -> Timestamp;
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one sanctioned read of the system time
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// The latest time the sandbox clock may show (it may start no later either). Every time
/// the product computes from "now" — retries hours away, billing periods months away, the
/// 30-day forecast — then stays far inside the range of a timestamp (year 9999), so none of
/// those computations can overflow, whatever the clock is advanced to.
pub const SANDBOX_CLOCK_MAX: Timestamp = Timestamp::constant(221_876_841_600, 0); // 9000-12-31T00:00:00Z

/// A clock that stands still until it is set or advanced: the sandbox test clock.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock to `to`. Time never runs backwards: an earlier `to` is ignored and the
    /// clock's current time is returned.
    pub fn set(&self, to: Timestamp) -> Timestamp {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        if to > *now {
            *now = to;
        }
        *now
    }

    /// Moves the clock forward by `by` (negative durations are ignored).
    pub fn advance(&self, by: SignedDuration) -> Timestamp {
        let target = self.now().checked_add(by).unwrap_or(Timestamp::MAX);
        self.set(target)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sandbox_clock_ends_on_the_last_day_of_9000() {
        assert_eq!(super::SANDBOX_CLOCK_MAX.to_string(), "9000-12-31T00:00:00Z");
    }

    use super::*;

    #[test]
    fn manual_clock_only_moves_forward() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let clock = ManualClock::new(t0);
        assert_eq!(clock.now(), t0);
        let t1 = clock.advance(SignedDuration::from_secs(90));
        assert_eq!(t1, "2026-01-01T00:01:30Z".parse::<Timestamp>().unwrap());
        assert_eq!(clock.set(t0), t1, "setting an earlier time must not rewind");
        assert_eq!(clock.advance(SignedDuration::from_secs(-5)), t1);
    }
}
