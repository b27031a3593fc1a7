//! Temporary access codes (SPEC section 15): what the service desk gives a user who lost
//! the device, so that they can sign in for a while without turning 2-step verification
//! off. A code stands in for the second factor only (the password is still asked), works
//! for a number of uses and minutes set when it is issued, and can be revoked.
//!
//! A code is 12 symbols of the recovery codes' alphabet ([`super::recovery::ALPHABET`],
//! Crockford's base32 in lower case): 60 random bits, shown as `xxxx-xxxx-xxxx` so that it
//! can be read out over the phone. Typing is forgiving like a recovery code's (spaces and
//! hyphens ignored, upper case accepted, `o` read as `0`, `i` and `l` as `1`). Its length
//! tells it apart from a device or emailed code (at most 8 digits) and from a recovery
//! code (10 symbols), so where a code is asked the sign-in flow knows which one it is.
//!
//! Pure: the RNG and the clock's time are parameters. The store keeps only a keyed hash
//! (`crypto::MasterKey::temporary_access_hash`).

use rand::{CryptoRng, Rng, RngCore};

use super::recovery::ALPHABET;
use crate::clock::Timestamp;

/// Symbols in a code (5 bits each: 60 bits).
pub const TEMPORARY_ACCESS_SYMBOLS: usize = 12;

/// How long a code may work: 1 minute to 24 hours (SPEC 15).
pub const MINUTES: std::ops::RangeInclusive<u32> = 1..=1440;

/// How many sign-ins a code may stand in for: 1 to 10 (SPEC 15).
pub const USES: std::ops::RangeInclusive<u32> = 1..=10;

/// The longest reason an administrator writes.
pub const REASON_MAX_CHARS: usize = 200;

/// One temporary access code. Never printed: `Debug` and `Display` show `[redacted]`; it
/// leaves only through [`TemporaryAccessCode::reveal`] (shown once to the administrator)
/// and [`TemporaryAccessCode::as_str`] (hashed).
#[derive(Clone, PartialEq, Eq)]
pub struct TemporaryAccessCode(String);

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemporaryAccessCodeError {
    #[error("a temporary access code has 12 letters and digits, like abcd-efgh-1234")]
    Malformed,
}

impl TemporaryAccessCode {
    /// A new random code: 12 symbols drawn uniformly from [`ALPHABET`] (60 bits).
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        Self(
            (0..TEMPORARY_ACCESS_SYMBOLS)
                .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
                .collect(),
        )
    }

    /// A code as typed: trimmed, spaces and hyphens ignored, upper case accepted, `o`
    /// read as `0` and `i`, `l` as `1`; anything else or a wrong length is refused.
    pub fn parse(text: &str) -> Result<Self, TemporaryAccessCodeError> {
        // Bound the work on hostile input before looking at it character by character.
        if text.len() > 4 * TEMPORARY_ACCESS_SYMBOLS {
            return Err(TemporaryAccessCodeError::Malformed);
        }
        let mut code = String::with_capacity(TEMPORARY_ACCESS_SYMBOLS);
        for ch in text.trim().chars() {
            let folded = match ch.to_ascii_lowercase() {
                ' ' | '-' => continue,
                'o' => '0',
                'i' | 'l' => '1',
                other if other.is_ascii() && ALPHABET.contains(&(other as u8)) => other,
                _ => return Err(TemporaryAccessCodeError::Malformed),
            };
            code.push(folded);
        }
        if code.len() != TEMPORARY_ACCESS_SYMBOLS {
            return Err(TemporaryAccessCodeError::Malformed);
        }
        Ok(Self(code))
    }

    /// The canonical form (12 symbols, no hyphen): what is hashed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The code as shown once: `xxxx-xxxx-xxxx`.
    pub fn reveal(&self) -> String {
        self.0
            .as_bytes()
            .chunks(4)
            .map(|part| String::from_utf8_lossy(part).into_owned())
            .collect::<Vec<_>>()
            .join("-")
    }
}

impl std::fmt::Debug for TemporaryAccessCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TemporaryAccessCode([redacted])")
    }
}

impl std::fmt::Display for TemporaryAccessCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// What an administrator asks for when issuing a code: always valid once built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemporaryAccessTerms {
    minutes: u32,
    uses: u32,
    reason: String,
}

/// Why terms were refused; each names its field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemporaryAccessTermsError {
    #[error("minutes must be a whole number from 1 to 1440 (24 hours)")]
    Minutes,
    #[error("uses must be a whole number from 1 to 10")]
    Uses,
    #[error("enter the reason (for example the service desk ticket)")]
    ReasonMissing,
    #[error("the reason has at most 200 characters")]
    ReasonTooLong,
    #[error("the reason cannot contain control characters")]
    ReasonControlCharacter,
}

impl TemporaryAccessTermsError {
    /// The field the error is about: `minutes`, `uses` or `reason`.
    pub fn field(self) -> &'static str {
        match self {
            Self::Minutes => "minutes",
            Self::Uses => "uses",
            Self::ReasonMissing | Self::ReasonTooLong | Self::ReasonControlCharacter => "reason",
        }
    }
}

impl TemporaryAccessTerms {
    /// Checks the ranges of SPEC 15; the reason is trimmed.
    pub fn new(minutes: u32, uses: u32, reason: &str) -> Result<Self, TemporaryAccessTermsError> {
        if !MINUTES.contains(&minutes) {
            return Err(TemporaryAccessTermsError::Minutes);
        }
        if !USES.contains(&uses) {
            return Err(TemporaryAccessTermsError::Uses);
        }
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(TemporaryAccessTermsError::ReasonMissing);
        }
        if reason.chars().count() > REASON_MAX_CHARS {
            return Err(TemporaryAccessTermsError::ReasonTooLong);
        }
        if reason.chars().any(char::is_control) {
            return Err(TemporaryAccessTermsError::ReasonControlCharacter);
        }
        Ok(Self {
            minutes,
            uses,
            reason: reason.to_owned(),
        })
    }

    pub fn minutes(&self) -> u32 {
        self.minutes
    }

    pub fn uses(&self) -> u32 {
        self.uses
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// When a code issued at `now` stops working.
    pub fn expires_at(&self, now: Timestamp) -> Timestamp {
        now.plus_seconds(i64::from(self.minutes) * 60)
    }
}

/// A user's temporary access code as stored (without the code: only its hash is kept).
/// A user has at most one; a new one replaces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemporaryAccess {
    pub reason: String,
    /// The administrator who issued it.
    pub issued_by: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// Sign-ins it was issued for.
    pub uses: u32,
    /// Sign-ins it still stands in for.
    pub uses_left: u32,
}

impl TemporaryAccess {
    /// Whether it still lets its user in at `now`: a use left, and not expired (a revoked
    /// code is not stored at all).
    pub fn live(&self, now: Timestamp) -> bool {
        self.uses_left > 0 && now < self.expires_at
    }

    /// Whole minutes left at `now`, rounded up (0 once expired).
    pub fn minutes_left(&self, now: Timestamp) -> i64 {
        let millis = self.expires_at.millis() - now.millis();
        if millis <= 0 {
            0
        } else {
            (millis + 59_999) / 60_000
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn a_generated_code_is_shown_in_three_groups_and_parses_back() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let code = TemporaryAccessCode::generate(&mut rng);
            let shown = code.reveal();
            assert_eq!(shown.len(), 14);
            assert_eq!(shown.matches('-').count(), 2);
            assert_eq!(TemporaryAccessCode::parse(&shown), Ok(code.clone()));
            assert_eq!(TemporaryAccessCode::parse(&shown.to_uppercase()), Ok(code));
        }
    }

    #[test]
    fn typing_is_forgiving_and_look_alikes_fold() {
        let code = TemporaryAccessCode::parse("abcd-efgh-1234").unwrap();
        for typed in [
            "abcdefgh1234",
            " ABCD EFGH 1234 ",
            "abcd-efgh-1234",
            "ab-cd-ef-gh-12-34",
        ] {
            assert_eq!(
                TemporaryAccessCode::parse(typed),
                Ok(code.clone()),
                "{typed}"
            );
        }
        assert_eq!(
            TemporaryAccessCode::parse("0o0o-IiLl-zzzz")
                .unwrap()
                .as_str(),
            "00001111zzzz"
        );
    }

    /// A device or emailed code (6 to 8 digits) and a recovery code (10 symbols) never
    /// read as a temporary access code, so each code step knows what it was given.
    #[test]
    fn other_codes_and_malformed_text_are_refused() {
        for typed in [
            "",
            "123456",
            "12345678",
            "abcde-12345",
            "abcd-efgh-123",
            "abcd-efgh-12345",
            "abcd-efgh-123u",
            "abcd_efgh_1234",
            "abcd-efgh-12é4",
            &"a".repeat(49),
        ] {
            assert!(TemporaryAccessCode::parse(typed).is_err(), "{typed}");
        }
    }

    #[test]
    fn a_code_is_never_printed() {
        let code = TemporaryAccessCode::parse("abcd-efgh-1234").unwrap();
        assert_eq!(format!("{code:?}"), "TemporaryAccessCode([redacted])");
        assert_eq!(code.to_string(), "[redacted]");
    }

    #[test]
    fn terms_take_spec_15_ranges_and_a_reason() {
        let terms = TemporaryAccessTerms::new(60, 1, "  INC-4711 phone lost ").unwrap();
        assert_eq!((terms.minutes(), terms.uses()), (60, 1));
        assert_eq!(terms.reason(), "INC-4711 phone lost");
        assert!(TemporaryAccessTerms::new(1, 1, "x").is_ok());
        assert!(TemporaryAccessTerms::new(1440, 10, "x").is_ok());
        let refused = [
            (0, 1, "x", TemporaryAccessTermsError::Minutes),
            (1441, 1, "x", TemporaryAccessTermsError::Minutes),
            (60, 0, "x", TemporaryAccessTermsError::Uses),
            (60, 11, "x", TemporaryAccessTermsError::Uses),
            (60, 1, "  ", TemporaryAccessTermsError::ReasonMissing),
            (
                60,
                1,
                "a\u{7}b",
                TemporaryAccessTermsError::ReasonControlCharacter,
            ),
        ];
        for (minutes, uses, reason, error) in refused {
            assert_eq!(
                TemporaryAccessTerms::new(minutes, uses, reason),
                Err(error),
                "{minutes} {uses} {reason:?}"
            );
        }
        assert!(TemporaryAccessTerms::new(60, 1, &"r".repeat(200)).is_ok());
        assert_eq!(
            TemporaryAccessTerms::new(60, 1, &"r".repeat(201)),
            Err(TemporaryAccessTermsError::ReasonTooLong)
        );
        assert_eq!(TemporaryAccessTermsError::Uses.field(), "uses");
        assert_eq!(TemporaryAccessTermsError::ReasonTooLong.field(), "reason");
    }

    #[test]
    fn a_code_lives_while_a_use_is_left_and_until_it_expires() {
        let now = Timestamp::from_millis(1_000_000);
        let terms = TemporaryAccessTerms::new(30, 2, "lost phone").unwrap();
        let access = TemporaryAccess {
            reason: terms.reason().to_owned(),
            issued_by: "admin".to_owned(),
            created_at: now,
            expires_at: terms.expires_at(now),
            uses: 2,
            uses_left: 2,
        };
        assert_eq!(access.expires_at, now.plus_seconds(1800));
        assert!(access.live(now));
        assert_eq!(access.minutes_left(now), 30);
        assert_eq!(access.minutes_left(now.plus_seconds(61)), 29);
        assert!(access.live(now.plus_seconds(1799)));
        assert!(!access.live(now.plus_seconds(1800)));
        assert_eq!(access.minutes_left(now.plus_seconds(1800)), 0);
        let used_up = TemporaryAccess {
            uses_left: 0,
            ..access
        };
        assert!(!used_up.live(now));
    }
}
