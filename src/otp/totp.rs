//! TOTP (RFC 6238): HOTP over the number of time steps since the Unix epoch.

use subtle::ConditionallySelectable;

use super::hotp::KeyedMac;
use super::{Algorithm, Digits, OtpCode, OtpSecret, Period};

/// A TOTP device's parameters (the last used step lives in the store).
#[derive(Clone, Debug)]
pub struct Totp {
    pub secret: OtpSecret,
    pub algorithm: Algorithm,
    pub digits: Digits,
    pub period: Period,
}

impl Totp {
    /// The time step containing `unix_seconds` (RFC 6238 section 4.2, T0 = 0).
    pub fn step_at(&self, unix_seconds: u64) -> u64 {
        unix_seconds / u64::from(self.period.get())
    }

    /// The code an authenticator app shows at `unix_seconds`.
    pub fn generate_at(&self, unix_seconds: u64) -> OtpCode {
        self.generate_step(self.step_at(unix_seconds))
    }

    /// The code of time step `step`.
    pub fn generate_step(&self, step: u64) -> OtpCode {
        OtpCode::from_value(
            KeyedMac::new(self.algorithm, &self.secret).code(step, self.digits),
            self.digits,
        )
    }

    /// Accepts `code` for any step within `skew` steps of the current one that is greater
    /// than `last_used_step`, and returns the matched step for the caller to store.
    ///
    /// When two steps of the window match the same code (a 1-in-10^digits coincidence),
    /// the greatest is returned: storing it leaves no step at or below it to replay.
    /// Every candidate is computed and compared in constant time.
    pub fn verify(
        &self,
        code: &OtpCode,
        unix_seconds: u64,
        skew: u8,
        last_used_step: Option<u64>,
    ) -> Option<u64> {
        let mac = KeyedMac::new(self.algorithm, &self.secret);
        let current = self.step_at(unix_seconds);
        let first = current.saturating_sub(u64::from(skew));
        let last = current.saturating_add(u64::from(skew));
        let mut found = subtle::Choice::from(0u8);
        let mut matched = 0u64;
        for step in first..=last {
            let fresh = last_used_step.map_or(true, |used| step > used);
            let hit = code.ct_matches(mac.code(step, self.digits), self.digits)
                & subtle::Choice::from(u8::from(fresh));
            // Later hits overwrite earlier ones: the greatest matching step wins.
            matched = u64::conditional_select(&matched, &step, hit);
            found |= hit;
        }
        bool::from(found).then_some(matched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(algorithm: Algorithm) -> OtpSecret {
        // RFC 6238 Appendix B: the seed is the ASCII string repeated to the digest length.
        let bytes: &[u8] = match algorithm {
            Algorithm::Sha1 => b"12345678901234567890",
            Algorithm::Sha256 => b"12345678901234567890123456789012",
            Algorithm::Sha512 => {
                b"1234567890123456789012345678901234567890123456789012345678901234"
            }
        };
        OtpSecret::from_bytes(bytes.to_vec()).unwrap()
    }

    fn rfc6238(algorithm: Algorithm) -> Totp {
        Totp {
            secret: key(algorithm),
            algorithm,
            digits: Digits::EIGHT,
            period: Period::DEFAULT,
        }
    }

    /// RFC 6238 Appendix B, every row: (time, expected code) per algorithm.
    const APPENDIX_B: [(u64, &str, Algorithm); 18] = [
        (59, "94287082", Algorithm::Sha1),
        (59, "46119246", Algorithm::Sha256),
        (59, "90693936", Algorithm::Sha512),
        (1111111109, "07081804", Algorithm::Sha1),
        (1111111109, "68084774", Algorithm::Sha256),
        (1111111109, "25091201", Algorithm::Sha512),
        (1111111111, "14050471", Algorithm::Sha1),
        (1111111111, "67062674", Algorithm::Sha256),
        (1111111111, "99943326", Algorithm::Sha512),
        (1234567890, "89005924", Algorithm::Sha1),
        (1234567890, "91819424", Algorithm::Sha256),
        (1234567890, "93441116", Algorithm::Sha512),
        (2000000000, "69279037", Algorithm::Sha1),
        (2000000000, "90698825", Algorithm::Sha256),
        (2000000000, "38618901", Algorithm::Sha512),
        (20000000000, "65353130", Algorithm::Sha1),
        (20000000000, "77737706", Algorithm::Sha256),
        (20000000000, "47863826", Algorithm::Sha512),
    ];

    #[test]
    fn rfc6238_appendix_b_vectors() {
        for (time, expected, algorithm) in APPENDIX_B {
            let totp = rfc6238(algorithm);
            assert_eq!(
                totp.generate_at(time).as_str(),
                expected,
                "{algorithm:?} at {time}"
            );
            let code = OtpCode::parse(expected).unwrap();
            assert_eq!(totp.verify(&code, time, 0, None), Some(totp.step_at(time)));
        }
    }

    #[test]
    fn rfc6238_appendix_b_steps() {
        let totp = rfc6238(Algorithm::Sha1);
        assert_eq!(totp.step_at(59), 0x1);
        assert_eq!(totp.step_at(1111111109), 0x23523EC);
        assert_eq!(totp.step_at(1111111111), 0x23523ED);
        assert_eq!(totp.step_at(1234567890), 0x273EF07);
        assert_eq!(totp.step_at(2000000000), 0x3F940AA);
        assert_eq!(totp.step_at(20000000000), 0x27BC86AA);
    }

    fn six_digit() -> Totp {
        Totp {
            digits: Digits::SIX,
            ..rfc6238(Algorithm::Sha1)
        }
    }

    #[test]
    fn skew_accepts_one_step_behind_and_one_ahead() {
        let totp = six_digit();
        let now = 1_700_000_015;
        let current = totp.step_at(now);
        let behind = totp.generate_step(current - 1);
        let ahead = totp.generate_step(current + 1);
        assert_eq!(totp.verify(&behind, now, 1, None), Some(current - 1));
        assert_eq!(totp.verify(&ahead, now, 1, None), Some(current + 1));
    }

    #[test]
    fn skew_refuses_two_steps_away_with_skew_one() {
        let totp = six_digit();
        let now = 1_700_000_015;
        let current = totp.step_at(now);
        assert_eq!(
            totp.verify(&totp.generate_step(current - 2), now, 1, None),
            None
        );
        assert_eq!(
            totp.verify(&totp.generate_step(current + 2), now, 1, None),
            None
        );
        // ... which skew 2 accepts.
        assert_eq!(
            totp.verify(&totp.generate_step(current - 2), now, 2, None),
            Some(current - 2)
        );
        assert_eq!(
            totp.verify(&totp.generate_step(current + 2), now, 2, None),
            Some(current + 2)
        );
    }

    #[test]
    fn skew_zero_accepts_only_the_current_step() {
        let totp = six_digit();
        let now = 1_700_000_015;
        let current = totp.step_at(now);
        assert_eq!(
            totp.verify(&totp.generate_step(current), now, 0, None),
            Some(current)
        );
        assert_eq!(
            totp.verify(&totp.generate_step(current - 1), now, 0, None),
            None
        );
        assert_eq!(
            totp.verify(&totp.generate_step(current + 1), now, 0, None),
            None
        );
    }

    #[test]
    fn a_step_equal_to_the_last_used_one_is_refused() {
        let totp = six_digit();
        let now = 1_700_000_015;
        let current = totp.step_at(now);
        let code = totp.generate_step(current);
        assert_eq!(totp.verify(&code, now, 1, Some(current)), None);
    }

    #[test]
    fn an_older_step_after_a_newer_one_is_refused() {
        let totp = six_digit();
        let now = 1_700_000_015;
        let current = totp.step_at(now);
        let older = totp.generate_step(current - 1);
        assert_eq!(totp.verify(&older, now, 1, Some(current)), None);
        // The step right after the last used one is still fine.
        let newer = totp.generate_step(current + 1);
        assert_eq!(
            totp.verify(&newer, now, 1, Some(current)),
            Some(current + 1)
        );
        assert_eq!(
            totp.verify(&totp.generate_step(current), now, 1, Some(current - 1)),
            Some(current)
        );
    }

    #[test]
    fn a_wrong_code_is_refused() {
        let totp = six_digit();
        let now = 1_700_000_015;
        let right = totp.generate_at(now);
        let wrong_value = (right.numeric_value() + 1) % 1_000_000;
        let wrong = OtpCode::from_value(wrong_value, Digits::SIX);
        assert_eq!(totp.verify(&wrong, now, 0, None), None);
    }

    #[test]
    fn times_near_the_epoch_do_not_underflow() {
        let totp = six_digit();
        assert_eq!(totp.verify(&totp.generate_step(0), 5, 2, None), Some(0));
    }

    #[test]
    fn other_periods_change_the_step() {
        let totp = Totp {
            period: Period::new(60).unwrap(),
            ..six_digit()
        };
        assert_eq!(totp.step_at(119), 1);
        assert_eq!(totp.step_at(120), 2);
    }
}
