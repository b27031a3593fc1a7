//! Codes the system generates and emails (SPEC section 4, "Emailed OTP").

use rand::distributions::{Distribution, Uniform};
use rand::{CryptoRng, RngCore};

use super::OtpCode;

/// The OTP Length setting: digits of an emailed code, 6 to 20.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OtpLength(u8);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("OTP Length must be between {min} and {max}", min = OtpLength::MIN, max = OtpLength::MAX)]
pub struct OtpLengthError;

impl OtpLength {
    pub const MIN: u8 = 6;
    pub const MAX: u8 = 20;
    pub const DEFAULT: Self = Self(6);

    pub fn new(length: u8) -> Result<Self, OtpLengthError> {
        (Self::MIN..=Self::MAX)
            .contains(&length)
            .then_some(Self(length))
            .ok_or(OtpLengthError)
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

/// A fresh emailed code of `length` digits from a cryptographic RNG. Each digit is drawn
/// with `Uniform(0..10)`, which rejects out-of-range samples instead of reducing modulo
/// 10, so every digit is exactly equally likely.
pub fn generate_emailed_code<R: RngCore + CryptoRng>(length: OtpLength, rng: &mut R) -> OtpCode {
    let digit = Uniform::new(0u8, 10);
    let digits: String = (0..length.get())
        .map(|_| char::from(b'0' + digit.sample(rng)))
        .collect();
    OtpCode::from_digits(digits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::{OsRng, StdRng};
    use rand::SeedableRng;

    #[test]
    fn length_bounds_match_the_setting_range() {
        assert_eq!(OtpLength::new(5), Err(OtpLengthError));
        assert_eq!(OtpLength::new(6).map(OtpLength::get), Ok(6));
        assert_eq!(OtpLength::new(20).map(OtpLength::get), Ok(20));
        assert_eq!(OtpLength::new(21), Err(OtpLengthError));
        assert_eq!(OtpLength::DEFAULT.get(), 6);
    }

    #[test]
    fn codes_from_the_os_rng_parse_as_codes() {
        for length in OtpLength::MIN..=OtpLength::MAX {
            let code = generate_emailed_code(OtpLength::new(length).unwrap(), &mut OsRng);
            assert_eq!(OtpCode::parse(code.as_str()).unwrap(), code);
        }
    }

    /// Pearson's chi-square over 200,000 digits with 9 degrees of freedom. The critical
    /// value for p = 0.0001 is 33.72; a modulo-biased generator (a byte % 10 gives the
    /// digits 0-5 a 26/256 share instead of 25.6/256) scores in the hundreds.
    #[test]
    fn digits_are_uniform_by_chi_square() {
        let mut rng = StdRng::seed_from_u64(0x7e57);
        let length = OtpLength::new(20).unwrap();
        let mut counts = [0u64; 10];
        for _ in 0..10_000 {
            for byte in generate_emailed_code(length, &mut rng).as_str().bytes() {
                counts[usize::from(byte - b'0')] += 1;
            }
        }
        let chi = chi_square(&counts);
        assert!(chi < 33.72, "chi-square {chi} over {counts:?}");

        // The same statistic catches the classic bias, so the check can fail.
        let mut biased = [0u64; 10];
        let mut bytes = vec![0u8; 200_000];
        rng.fill_bytes(&mut bytes);
        for byte in bytes {
            biased[usize::from(byte % 10)] += 1;
        }
        assert!(chi_square(&biased) > 33.72, "{biased:?}");
    }

    fn chi_square(counts: &[u64; 10]) -> f64 {
        let total: u64 = counts.iter().sum();
        let expected = total as f64 / 10.0;
        counts
            .iter()
            .map(|&observed| (observed as f64 - expected).powi(2) / expected)
            .sum()
    }

    proptest::proptest! {
        #[test]
        fn codes_have_exactly_the_asked_length_and_only_digits(length in 6u8..=20, seed in proptest::prelude::any::<u64>()) {
            let code = generate_emailed_code(OtpLength::new(length).unwrap(), &mut StdRng::seed_from_u64(seed));
            proptest::prop_assert_eq!(code.len(), usize::from(length));
            proptest::prop_assert!(code.as_str().bytes().all(|b| b.is_ascii_digit()));
        }
    }
}
