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

    /// The moment in ISO 8601, UTC, to the second: `2027-01-15T08:00:00Z` (what a
    /// `<time datetime>` and the audit export carry). Pure arithmetic, no time zone data.
    pub fn iso_utc(self) -> String {
        const DAY_MILLIS: i64 = 86_400_000;
        let days = self.0.div_euclid(DAY_MILLIS);
        let seconds = self.0.rem_euclid(DAY_MILLIS) / 1000;
        let (year, month, day) = civil_from_days(days);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60
        )
    }

    /// Whole seconds from `self` until `later`, rounded up; 0 if `later` is not later.
    pub fn seconds_until(self, later: Self) -> i64 {
        let millis = later.0.saturating_sub(self.0).max(0);
        millis.saturating_add(999) / 1000
    }
}

/// The proleptic Gregorian date of a day number since 1970-01-01 (Howard Hinnant's
/// algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
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
    fn iso_utc_writes_the_moment_in_utc_to_the_second() {
        assert_eq!(Timestamp::from_millis(0).iso_utc(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Timestamp::from_millis(1_800_000_000_999).iso_utc(),
            "2027-01-15T08:00:00Z"
        );
        assert_eq!(
            Timestamp::from_millis(951_782_400_000).iso_utc(),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            Timestamp::from_millis(-1000).iso_utc(),
            "1969-12-31T23:59:59Z"
        );
    }

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
