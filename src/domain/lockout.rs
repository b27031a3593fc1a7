//! Lockout (SPEC section 4), the one home of its rules: when a lock that begins now ends,
//! whether an account is locked, the hard limit, and what a counted failure did.
//!
//! Pure: `now` is a parameter. The store's reservation statement
//! (`store::users::reserve_sql`) is the atomic form of [`Lockout::reserve`]: it must
//! decide exactly as that function does (the integration suite compares the two).

use crate::clock::Timestamp;
use crate::domain::Settings;

/// The hard limit of SPEC section 4 (NIST SP 800-63B 5.2.2): this many consecutive
/// failures, counted across lockout expiries, lock the account until an administrator
/// unlocks it, whatever Lockout Threshold and Lockout Minutes say.
pub const HARD_LIMIT: u32 = 100;

/// Whether an account whose lock ends at `locked_until` is locked at `now`: while
/// `now < locked_until`; a lock ending exactly at `now` has ended.
/// [`Timestamp::NEVER`] holds until an administrator unlocks.
pub fn is_locked(locked_until: Option<Timestamp>, now: Timestamp) -> bool {
    locked_until.is_some_and(|until| now < until)
}

/// An account's failure counts, as the users table keeps them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureCounts {
    /// Toward Lockout Threshold; starts again when a lock expires.
    pub failed_count: u32,
    /// Toward [`HARD_LIMIT`]; counted across lock expiries.
    pub consecutive_failures: u32,
    /// `Some(t)`: locked while `now < t`.
    pub locked_until: Option<Timestamp>,
}

/// What a counted failure did to the account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockedBy {
    /// The count reached Lockout Threshold (this many failures).
    Threshold(u32),
    /// The count reached [`HARD_LIMIT`]: locked until an administrator unlocks.
    HardLimit,
}

impl LockedBy {
    /// The detail of the "locked" audit entry.
    pub fn audit_detail(self) -> String {
        match self {
            Self::Threshold(failures) => format!("after {failures} consecutive failures"),
            Self::HardLimit => format!(
                "after {HARD_LIMIT} consecutive failures (hard limit): until an administrator unlocks"
            ),
        }
    }
}

/// The lockout rule of the settings: Lockout Threshold consecutive failures lock an
/// account for Lockout Minutes (0: until an administrator unlocks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lockout {
    threshold: u32,
    minutes: u32,
}

impl Lockout {
    pub fn new(threshold: u32, minutes: u32) -> Self {
        Self { threshold, minutes }
    }

    /// The rule the settings' Lockout Threshold and Lockout Minutes make.
    pub fn of(settings: &Settings) -> Self {
        Self::new(settings.lockout_threshold(), settings.lockout_minutes())
    }

    /// Lockout Threshold.
    pub fn threshold(self) -> u32 {
        self.threshold
    }

    /// When a lock that begins at `now` ends: after Lockout Minutes, or never (0: until
    /// an administrator unlocks).
    pub fn lock_until(self, now: Timestamp) -> Timestamp {
        match self.minutes {
            0 => Timestamp::NEVER,
            minutes => now.plus_seconds(i64::from(minutes) * 60),
        }
    }

    /// The reservation of an attempt at `now` on an account with `counts` (see
    /// `Store::reserve_attempt`, whose one statement implements this): `None` refuses it
    /// unchecked (locked, or at the hard limit); otherwise the counts with this attempt
    /// counted as a failure in advance. A lock that has expired starts a new count toward
    /// the threshold, but not toward the hard limit.
    pub fn reserve(self, counts: FailureCounts, now: Timestamp) -> Option<FailureCounts> {
        if is_locked(counts.locked_until, now) || counts.consecutive_failures >= HARD_LIMIT {
            return None;
        }
        let failed_count = match counts.locked_until {
            Some(_) => 1,
            None => counts.failed_count.saturating_add(1),
        };
        let consecutive_failures = counts.consecutive_failures.saturating_add(1);
        let locked_until = if consecutive_failures >= HARD_LIMIT {
            Some(Timestamp::NEVER)
        } else if failed_count >= self.threshold {
            Some(self.lock_until(now))
        } else {
            None
        };
        Some(FailureCounts {
            failed_count,
            consecutive_failures,
            locked_until,
        })
    }

    /// What the failure whose reservation left `counted` did: locked the account at the
    /// hard limit, locked it at the threshold, or nothing worth an entry of its own (not
    /// locked; or locked past the threshold, which an earlier entry recorded).
    pub fn locked_by(self, counted: FailureCounts) -> Option<LockedBy> {
        if counted.locked_until.is_none() {
            None
        } else if counted.consecutive_failures >= HARD_LIMIT {
            Some(LockedBy::HardLimit)
        } else if counted.failed_count == self.threshold {
            Some(LockedBy::Threshold(counted.failed_count))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);

    fn counts(
        failed_count: u32,
        consecutive_failures: u32,
        locked_until: Option<Timestamp>,
    ) -> FailureCounts {
        FailureCounts {
            failed_count,
            consecutive_failures,
            locked_until,
        }
    }

    #[test]
    fn a_lock_holds_until_its_time_and_ends_exactly_then() {
        let until = Timestamp::from_millis(2_000);
        assert!(is_locked(Some(until), Timestamp::from_millis(1_999)));
        assert!(!is_locked(Some(until), Timestamp::from_millis(2_000)));
        assert!(!is_locked(Some(until), Timestamp::from_millis(2_001)));
        assert!(is_locked(
            Some(Timestamp::NEVER),
            Timestamp::from_millis(i64::MAX - 1)
        ));
        assert!(!is_locked(None, Timestamp::from_millis(0)));
        assert!(!is_locked(None, Timestamp::NEVER));
    }

    #[test]
    fn a_lock_lasts_lockout_minutes_and_zero_minutes_is_until_an_unlock() {
        assert_eq!(Lockout::new(5, 30).lock_until(NOW), NOW.plus_seconds(1_800));
        assert_eq!(Lockout::new(5, 1).lock_until(NOW), NOW.plus_seconds(60));
        assert_eq!(Lockout::new(5, 0).lock_until(NOW), Timestamp::NEVER);
        // Saturates instead of overflowing.
        assert_eq!(
            Lockout::new(5, u32::MAX).lock_until(Timestamp::from_millis(i64::MAX - 1)),
            Timestamp::NEVER
        );
    }

    #[test]
    fn the_rule_is_the_settings_threshold_and_minutes() {
        let settings = Settings::default();
        let lockout = Lockout::of(&settings);
        assert_eq!(lockout.threshold(), settings.lockout_threshold());
        assert_eq!(
            lockout,
            Lockout::new(settings.lockout_threshold(), settings.lockout_minutes())
        );
        assert_eq!(
            lockout.lock_until(NOW),
            NOW.plus_seconds(i64::from(settings.lockout_minutes()) * 60)
        );
    }

    #[test]
    fn the_threshold_th_failure_locks_and_the_one_before_does_not() {
        let lockout = Lockout::new(5, 30);
        let before = lockout.reserve(counts(3, 3, None), NOW).unwrap();
        assert_eq!(before, counts(4, 4, None));
        assert_eq!(lockout.locked_by(before), None);
        let at = lockout.reserve(before, NOW).unwrap();
        assert_eq!(at, counts(5, 5, Some(NOW.plus_seconds(1_800))));
        assert_eq!(lockout.locked_by(at), Some(LockedBy::Threshold(5)));
        // Locked: the next attempt is refused unchecked, until the lock's last moment.
        assert_eq!(
            lockout.reserve(at, NOW.plus_seconds(1_800).plus_seconds(-1)),
            None
        );
    }

    #[test]
    fn an_expired_lock_starts_a_new_count_but_not_toward_the_hard_limit() {
        let lockout = Lockout::new(3, 1);
        let locked = counts(3, 3, Some(NOW));
        // Expiry exactly at `now`: the lock has ended.
        let after = lockout.reserve(locked, NOW).unwrap();
        assert_eq!(after, counts(1, 4, None));
        assert_eq!(lockout.locked_by(after), None);
        assert_eq!(
            lockout.reserve(counts(3, 3, Some(NOW.plus_seconds(1))), NOW),
            None
        );
    }

    #[test]
    fn a_threshold_of_one_locks_at_the_first_failure() {
        let lockout = Lockout::new(1, 0);
        let after = lockout.reserve(counts(0, 0, None), NOW).unwrap();
        assert_eq!(after, counts(1, 1, Some(Timestamp::NEVER)));
        assert_eq!(lockout.locked_by(after), Some(LockedBy::Threshold(1)));
        // Zero minutes: never expires.
        assert_eq!(
            lockout.reserve(after, Timestamp::from_millis(i64::MAX - 1)),
            None
        );
    }

    #[test]
    fn the_hundredth_consecutive_failure_locks_until_an_unlock_and_the_ninety_ninth_does_not() {
        // A threshold the count never reaches: only the hard limit locks.
        let lockout = Lockout::new(1_000, 30);
        let ninety_ninth = lockout.reserve(counts(98, 98, None), NOW).unwrap();
        assert_eq!(ninety_ninth, counts(99, 99, None));
        assert_eq!(lockout.locked_by(ninety_ninth), None);
        let hundredth = lockout.reserve(ninety_ninth, NOW).unwrap();
        assert_eq!(hundredth, counts(100, HARD_LIMIT, Some(Timestamp::NEVER)));
        assert_eq!(lockout.locked_by(hundredth), Some(LockedBy::HardLimit));
        assert_eq!(
            lockout.reserve(hundredth, Timestamp::from_millis(i64::MAX - 1)),
            None
        );
    }

    #[test]
    fn the_hard_limit_counts_across_expired_locks_and_wins_over_the_threshold() {
        let lockout = Lockout::new(5, 1);
        // The 100th failure is also the 5th toward the threshold: the hard limit wins.
        let after = lockout.reserve(counts(4, 99, None), NOW).unwrap();
        assert_eq!(after, counts(5, HARD_LIMIT, Some(Timestamp::NEVER)));
        assert_eq!(lockout.locked_by(after), Some(LockedBy::HardLimit));
        // After an expired lock, the count toward the threshold starts again, not the other.
        let after = lockout.reserve(counts(5, 99, Some(NOW)), NOW).unwrap();
        assert_eq!(after, counts(1, HARD_LIMIT, Some(Timestamp::NEVER)));
        assert_eq!(lockout.locked_by(after), Some(LockedBy::HardLimit));
        // At the hard limit without a lock (never written so): refused all the same.
        assert_eq!(lockout.reserve(counts(0, HARD_LIMIT, None), NOW), None);
    }

    #[test]
    fn a_lock_past_the_threshold_is_not_recorded_again() {
        // The threshold was lowered while failures were counted: the account locks, but
        // this failure did not reach the threshold itself.
        let lockout = Lockout::new(3, 30);
        let after = lockout.reserve(counts(4, 4, None), NOW).unwrap();
        assert_eq!(after, counts(5, 5, Some(NOW.plus_seconds(1_800))));
        assert_eq!(lockout.locked_by(after), None);
    }

    #[test]
    fn the_locked_entries_say_why() {
        assert_eq!(
            LockedBy::Threshold(5).audit_detail(),
            "after 5 consecutive failures"
        );
        assert_eq!(
            LockedBy::HardLimit.audit_detail(),
            "after 100 consecutive failures (hard limit): until an administrator unlocks"
        );
    }
}
