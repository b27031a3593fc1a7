//! HOTP (RFC 4226): the HMAC truncation shared with TOTP, and counter-window verification.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha512};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::{Algorithm, Digits, OtpCode, OtpSecret};

/// An HMAC whose key state (the inner and outer padded key blocks) was computed once;
/// each code then costs a clone and two compressions, not a fresh key schedule.
#[derive(Clone)]
pub(crate) enum KeyedMac {
    Sha1(Hmac<Sha1>),
    Sha256(Hmac<Sha256>),
    Sha512(Hmac<Sha512>),
}

impl KeyedMac {
    pub(crate) fn new(algorithm: Algorithm, secret: &OtpSecret) -> Self {
        // HMAC accepts keys of every length (RFC 2104), so these constructors cannot fail;
        // `new_from_slice` returns a Result only because the trait is shared with fixed-key MACs.
        fn keyed<M: Mac + hmac::digest::KeyInit>(key: &[u8]) -> M {
            <M as hmac::digest::KeyInit>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
        }
        match algorithm {
            Algorithm::Sha1 => Self::Sha1(keyed(secret.as_bytes())),
            Algorithm::Sha256 => Self::Sha256(keyed(secret.as_bytes())),
            Algorithm::Sha512 => Self::Sha512(keyed(secret.as_bytes())),
        }
    }

    /// RFC 4226 section 5.3: HMAC of the 8-byte big-endian counter, dynamic truncation,
    /// modulo 10^digits.
    pub(crate) fn code(&self, counter: u64, digits: Digits) -> u64 {
        let message = counter.to_be_bytes();
        let truncated = match self {
            Self::Sha1(mac) => truncate(&mac.clone().chain_update(message).finalize().into_bytes()),
            Self::Sha256(mac) => {
                truncate(&mac.clone().chain_update(message).finalize().into_bytes())
            }
            Self::Sha512(mac) => {
                truncate(&mac.clone().chain_update(message).finalize().into_bytes())
            }
        };
        u64::from(truncated) % digits.modulus()
    }
}

/// Dynamic truncation (RFC 4226 section 5.3): a 31-bit value from the offset given by the
/// low nibble of the last byte. Every supported digest is at least 20 bytes long, so
/// `offset + 3 <= 15 + 3 < 20` always indexes inside it.
fn truncate(hash: &[u8]) -> u32 {
    let offset = usize::from(hash.last().copied().unwrap_or(0) & 0x0f);
    let mut word = [0u8; 4];
    for (slot, byte) in word.iter_mut().zip(hash.iter().skip(offset)) {
        *slot = *byte;
    }
    u32::from_be_bytes(word) & 0x7fff_ffff
}

/// An HOTP device's parameters (the moving counter lives in the store).
#[derive(Clone, Debug)]
pub struct Hotp {
    pub secret: OtpSecret,
    pub algorithm: Algorithm,
    pub digits: Digits,
}

impl Hotp {
    /// The code for `counter`.
    pub fn generate(&self, counter: u64) -> OtpCode {
        OtpCode::from_value(
            KeyedMac::new(self.algorithm, &self.secret).code(counter, self.digits),
            self.digits,
        )
    }

    /// Accepts `code` for any counter in `counter ..= counter + window` and returns the
    /// lowest matching counter (RFC 4226 section 7.4: the look-ahead resynchronizes).
    /// The caller stores `matched + 1`. Every candidate is computed and compared in
    /// constant time, so the timing does not tell which counter matched.
    pub fn verify(&self, code: &OtpCode, counter: u64, window: u64) -> Option<u64> {
        let mac = KeyedMac::new(self.algorithm, &self.secret);
        let last = counter.saturating_add(window);
        let mut found = subtle::Choice::from(0u8);
        let mut matched = 0u64;
        for candidate in counter..=last {
            let hit = code.ct_matches(mac.code(candidate, self.digits), self.digits);
            // Keep the first hit: select only while nothing was found yet.
            let take = hit & !found;
            matched = u64::conditional_select(&matched, &candidate, take);
            found |= hit;
        }
        bool::from(found).then_some(matched)
    }
}

impl OtpCode {
    /// Constant-time comparison with a computed code of `digits` digits.
    pub(crate) fn ct_matches(&self, value: u64, digits: Digits) -> subtle::Choice {
        let length_ok = (self.len() as u64).ct_eq(&u64::from(digits.get()));
        length_ok & self.numeric_value().ct_eq(&value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc4226() -> Hotp {
        Hotp {
            secret: OtpSecret::from_bytes(b"12345678901234567890".to_vec()).unwrap(),
            algorithm: Algorithm::Sha1,
            digits: Digits::SIX,
        }
    }

    /// RFC 4226 Appendix D: the ten HOTP values of the test secret.
    const APPENDIX_D: [&str; 10] = [
        "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
        "520489",
    ];

    /// RFC 4226 Appendix D, intermediate "Truncated" decimal values.
    const APPENDIX_D_TRUNCATED: [u64; 10] = [
        1284755224, 1094287082, 137359152, 1726969429, 1640338314, 868254676, 1918287922, 82162583,
        673399871, 645520489,
    ];

    #[test]
    fn rfc4226_appendix_d_vectors() {
        let hotp = rfc4226();
        for (counter, expected) in APPENDIX_D.iter().enumerate() {
            assert_eq!(
                hotp.generate(counter as u64).as_str(),
                *expected,
                "counter {counter}"
            );
        }
    }

    #[test]
    fn rfc4226_appendix_d_truncated_values_with_ten_digits() {
        // With 10 digits the modulus exceeds 2^31, so the code is the truncated value itself.
        let hotp = Hotp {
            digits: Digits::new(10).unwrap(),
            ..rfc4226()
        };
        for (counter, expected) in APPENDIX_D_TRUNCATED.iter().enumerate() {
            assert_eq!(hotp.generate(counter as u64).numeric_value(), *expected);
            assert_eq!(hotp.generate(counter as u64).len(), 10);
        }
    }

    #[test]
    fn verify_accepts_the_counter_itself_and_returns_it() {
        let hotp = rfc4226();
        let code = OtpCode::parse(APPENDIX_D[3]).unwrap();
        assert_eq!(hotp.verify(&code, 3, 0), Some(3));
        assert_eq!(hotp.verify(&code, 3, 10), Some(3));
    }

    #[test]
    fn verify_accepts_the_code_at_the_window_end_and_refuses_one_past() {
        let hotp = rfc4226();
        let at_end = OtpCode::parse(APPENDIX_D[5]).unwrap();
        assert_eq!(
            hotp.verify(&at_end, 2, 3),
            Some(5),
            "counter 2 + window 3 = 5"
        );
        let one_past = OtpCode::parse(APPENDIX_D[6]).unwrap();
        assert_eq!(
            hotp.verify(&one_past, 2, 3),
            None,
            "counter 6 is past the window"
        );
    }

    #[test]
    fn verify_refuses_codes_behind_the_counter() {
        let hotp = rfc4226();
        let old = OtpCode::parse(APPENDIX_D[1]).unwrap();
        assert_eq!(hotp.verify(&old, 2, 10), None);
    }

    #[test]
    fn verify_refuses_a_code_of_another_length() {
        let hotp = rfc4226();
        // "755224" padded to 8 digits is not the 6-digit code.
        let longer = OtpCode::parse("00755224").unwrap();
        assert_eq!(hotp.verify(&longer, 0, 10), None);
        let eight = Hotp {
            digits: Digits::EIGHT,
            ..rfc4226()
        };
        assert_eq!(
            eight.verify(&OtpCode::parse(APPENDIX_D[0]).unwrap(), 0, 10),
            None
        );
        assert_eq!(eight.verify(&eight.generate(0), 0, 0), Some(0));
    }

    #[test]
    fn verify_near_the_counter_maximum_does_not_overflow() {
        let hotp = rfc4226();
        let code = hotp.generate(u64::MAX);
        assert_eq!(hotp.verify(&code, u64::MAX - 1, 10), Some(u64::MAX));
    }

    #[test]
    fn truncation_reads_the_offset_from_the_last_nibble() {
        // RFC 4226 section 5.4 worked example.
        let hash = [
            0x1f, 0x86, 0x98, 0x69, 0x0e, 0x02, 0xca, 0x16, 0x61, 0x85, 0x50, 0xef, 0x7f, 0x19,
            0xda, 0x8e, 0x94, 0x5b, 0x55, 0x5a,
        ];
        assert_eq!(truncate(&hash), 0x50ef7f19);
        assert_eq!(u64::from(truncate(&hash)) % 1_000_000, 872921);
    }
}
