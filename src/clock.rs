//! Where time comes from. The core takes time as a parameter; the shells read it here.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// A point in time, in Unix milliseconds (what the store keeps).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The far future: "locked until an administrator unlocks".
    pub const NEVER: Self = Self(i64::MAX);

    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the Unix epoch (TOTP's clock); 0 before the epoch.
    pub fn unix_seconds(self) -> u64 {
        u64::try_from(self.0.div_euclid(1000)).unwrap_or(0)
    }

    pub fn plus_seconds(self, seconds: i64) -> Self {
        Self(self.0.saturating_add(seconds.saturating_mul(1000)))
    }

    pub fn plus_millis(self, millis: i64) -> Self {
        Self(self.0.saturating_add(millis))
    }

    /// Whole seconds from `self` until `later`, rounded up; 0 if `later` is not later.
    pub fn seconds_until(self, later: Self) -> i64 {
        let millis = later.0.saturating_sub(self.0).max(0);
        millis.saturating_add(999) / 1000
    }
}

/// A source of the current time, passed to the services so tests can move time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The real clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        // The one place that reads the wall clock.
        #[allow(clippy::disallowed_methods)]
        let now = std::time::SystemTime::now();
        let millis = now
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp(millis)
    }
}

/// A clock that only moves when told to; shared by clones. For tests and tools.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(AtomicI64::new(start.0)))
    }

    pub fn advance_seconds(&self, seconds: i64) {
        self.0
            .fetch_add(seconds.saturating_mul(1000), Ordering::SeqCst);
    }

    pub fn set(&self, at: Timestamp) {
        self.0.store(at.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

/// Real elapsed time for a minimum response duration (Failure Delay); not the wall clock,
/// and not moved by a [`ManualClock`].
#[derive(Clone, Copy, Debug)]
pub struct Stopwatch(std::time::Instant);

impl Stopwatch {
    pub fn start() -> Self {
        // The one place that reads the monotonic clock.
        #[allow(clippy::disallowed_methods)]
        let now = std::time::Instant::now();
        Self(now)
    }

    pub fn elapsed(&self) -> std::time::Duration {
        self.0.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_until_rounds_up_and_never_goes_negative() {
        let t = Timestamp::from_millis(10_000);
        assert_eq!(t.seconds_until(t.plus_millis(1)), 1);
        assert_eq!(t.seconds_until(t.plus_seconds(30)), 30);
        assert_eq!(t.plus_seconds(5).seconds_until(t), 0);
        assert_eq!(Timestamp::from_millis(-5).unix_seconds(), 0);
        assert_eq!(Timestamp::from_millis(59_999).unix_seconds(), 59);
    }

    #[test]
    fn the_manual_clock_moves_only_when_told_and_clones_share_it() {
        let clock = ManualClock::new(Timestamp::from_millis(1_000));
        let other = clock.clone();
        assert_eq!(clock.now(), Timestamp::from_millis(1_000));
        other.advance_seconds(2);
        assert_eq!(clock.now(), Timestamp::from_millis(3_000));
        assert!(SystemClock.now() > Timestamp::from_millis(1_700_000_000_000));
    }
}
