//! Recovery codes (SPEC section 10): single-use codes a user keeps on paper for the day the
//! phone is lost, accepted once where a device code is asked.
//!
//! A code is 10 symbols of the 32-symbol alphabet [`ALPHABET`] (Crockford's base32 in
//! lower case: no `i`, `l`, `o`, `u`, so nothing reads as something else), 5 bits each:
//! 50 random bits, shown as `xxxxx-xxxxx`. Typing is forgiving: spaces and one hyphen are
//! ignored, upper case is accepted, and the look-alikes `o` (as `0`) and `i`, `l` (as `1`)
//! are folded. Every one of the 32^10 codes can be drawn, so a code carries the full 50
//! bits. A code made of digits only (about 1 in 112,600) could read as a device or
//! emailed code (those are digits too, with spaces or hyphens ignored), so it is taken for
//! a recovery code only as it is shown, `ddddd-ddddd`, with its hyphen in the middle;
//! typed as plain digits it is a device code. Where a device code is asked, the sign-in
//! flow tries a recovery code first when the input parses as one.
//!
//! Pure: the RNG is a parameter. The store keeps only a keyed hash
//! (`crypto::MasterKey::recovery_code_hash`).

use rand::{CryptoRng, Rng, RngCore};

/// The symbols of a code, in the order of their 5-bit values.
pub const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Symbols in a code (5 bits each: 50 bits).
pub const RECOVERY_CODE_SYMBOLS: usize = 10;

/// Codes in one set (SPEC section 10).
pub const RECOVERY_CODES_PER_SET: usize = 10;

/// One recovery code. Never printed: `Debug` and `Display` show `[redacted]`; the code
/// leaves only through [`RecoveryCode::reveal`] (shown once) and [`RecoveryCode::as_str`]
/// (hashed).
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryCode(String);

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryCodeError {
    #[error("a recovery code has 10 letters and digits, like abcde-12345")]
    Malformed,
}

impl RecoveryCode {
    /// A new random code: 10 symbols drawn uniformly from [`ALPHABET`] (50 bits).
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        Self(
            (0..RECOVERY_CODE_SYMBOLS)
                .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
                .collect(),
        )
    }

    /// A code as typed: trimmed, spaces and one hyphen ignored, upper case accepted, `o`
    /// read as `0` and `i`, `l` as `1`; anything else or a wrong length is refused. A code
    /// of digits only is one only as shown (`ddddd-ddddd`): otherwise it reads as a
    /// device code, and is refused here.
    pub fn parse(text: &str) -> Result<Self, RecoveryCodeError> {
        // Bound the work on hostile input before looking at it character by character.
        if text.len() > 4 * RECOVERY_CODE_SYMBOLS {
            return Err(RecoveryCodeError::Malformed);
        }
        let mut code = String::with_capacity(RECOVERY_CODE_SYMBOLS);
        let mut hyphens = 0;
        for ch in text.trim().chars() {
            let folded = match ch.to_ascii_lowercase() {
                ' ' => continue,
                '-' => {
                    hyphens += 1;
                    continue;
                }
                'o' => '0',
                'i' | 'l' => '1',
                other if other.is_ascii() && ALPHABET.contains(&(other as u8)) => other,
                _ => return Err(RecoveryCodeError::Malformed),
            };
            code.push(folded);
        }
        if hyphens > 1 || code.len() != RECOVERY_CODE_SYMBOLS {
            return Err(RecoveryCodeError::Malformed);
        }
        if code.bytes().all(|b| b.is_ascii_digit()) && !as_shown(text.trim()) {
            return Err(RecoveryCodeError::Malformed);
        }
        Ok(Self(code))
    }

    /// The code in its canonical form (10 symbols, no hyphen): what is hashed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The code as shown once to its owner: `xxxxx-xxxxx`.
    pub fn reveal(&self) -> String {
        let (first, second) = self.0.split_at(RECOVERY_CODE_SYMBOLS / 2);
        format!("{first}-{second}")
    }
}

/// Whether `text` is written as a code is shown: five symbols, a hyphen, five symbols.
fn as_shown(text: &str) -> bool {
    let half = RECOVERY_CODE_SYMBOLS / 2;
    text.len() == RECOVERY_CODE_SYMBOLS + 1
        && text.as_bytes()[half] == b'-'
        && text
            .bytes()
            .enumerate()
            .all(|(at, b)| at == half || b.is_ascii_alphanumeric())
}

impl std::fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCode([redacted])")
    }
}

impl std::fmt::Display for RecoveryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A new set of [`RECOVERY_CODES_PER_SET`] distinct codes.
pub fn generate_set<R: RngCore + CryptoRng>(rng: &mut R) -> Vec<RecoveryCode> {
    let mut set: Vec<RecoveryCode> = Vec::with_capacity(RECOVERY_CODES_PER_SET);
    while set.len() < RECOVERY_CODES_PER_SET {
        let code = RecoveryCode::generate(rng);
        if !set.contains(&code) {
            set.push(code);
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::{OsRng, StdRng};
    use rand::SeedableRng;

    /// SPEC 10: lower-case letters and digits without look-alikes, 32 symbols = 5 bits.
    #[test]
    fn the_alphabet_has_32_distinct_symbols_without_look_alikes() {
        let mut seen = std::collections::HashSet::new();
        for symbol in ALPHABET {
            assert!(seen.insert(symbol));
            assert!(symbol.is_ascii_digit() || symbol.is_ascii_lowercase());
        }
        assert_eq!(seen.len(), 32);
        for look_alike in [b'i', b'l', b'o', b'u'] {
            assert!(!ALPHABET.contains(&look_alike));
        }
        // 10 symbols of 5 bits: 50 bits.
        assert_eq!(RECOVERY_CODE_SYMBOLS * 5, 50);
    }

    /// SPEC 10: at least 50 random bits; every symbol appears in every position.
    #[test]
    fn generated_codes_use_every_symbol_in_every_position() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut seen = vec![std::collections::HashSet::new(); RECOVERY_CODE_SYMBOLS];
        for _ in 0..4000 {
            let code = RecoveryCode::generate(&mut rng);
            assert_eq!(code.as_str().len(), RECOVERY_CODE_SYMBOLS);
            for (position, byte) in code.as_str().bytes().enumerate() {
                assert!(ALPHABET.contains(&byte));
                seen[position].insert(byte);
            }
        }
        for position in seen {
            assert_eq!(position.len(), 32);
        }
    }

    /// SPEC 10: shown once as `xxxxx-xxxxx`, never printed otherwise.
    #[test]
    fn a_code_is_revealed_as_two_groups_and_otherwise_redacted() {
        let code = RecoveryCode::parse("abcde12345").unwrap();
        assert_eq!(code.reveal(), "abcde-12345");
        assert_eq!(format!("{code:?}"), "RecoveryCode([redacted])");
        assert_eq!(code.to_string(), "[redacted]");
        let generated = RecoveryCode::generate(&mut OsRng);
        assert_eq!(RecoveryCode::parse(&generated.reveal()).unwrap(), generated);
    }

    #[test]
    fn parsing_folds_case_spaces_one_hyphen_and_look_alikes() {
        let code = RecoveryCode::parse("abcde-12345").unwrap();
        for typed in [
            "ABCDE-12345",
            "  abcde 12345 ",
            "abcde12345",
            "ab cde-123 45",
            "abcde-I2345",
            "abcde-l2345",
        ] {
            assert_eq!(RecoveryCode::parse(typed), Ok(code.clone()), "{typed}");
        }
        assert_eq!(
            RecoveryCode::parse("0o0o0-zzzzz").unwrap().as_str(),
            "00000zzzzz"
        );
    }

    #[test]
    fn parsing_refuses_other_symbols_lengths_and_hyphens() {
        for typed in [
            "",
            "abcde-1234",
            "abcde-123456",
            "abcde-1234u",
            "abcde--12345",
            "ab-cde-12345",
            "abcde_12345",
            "abcde-1234é",
            "abcde\t12345",
            &"a".repeat(100),
        ] {
            assert_eq!(
                RecoveryCode::parse(typed),
                Err(RecoveryCodeError::Malformed),
                "{typed:?}"
            );
        }
    }

    /// SPEC 10: where a device code is asked, a device (or emailed) code as people type
    /// it must never be taken for a recovery code; a code of digits only is a recovery
    /// code only as it is shown, and no code with a letter reads as a device code.
    #[test]
    fn device_codes_never_parse_as_recovery_codes() {
        for typed in [
            "123456",
            "1234567",
            "12345678",
            "123 456",
            "1234 5678",
            "1234567890",
            "12345 67890",
            "1234-567890",
            "000000",
            "12345678901234567890",
        ] {
            assert!(RecoveryCode::parse(typed).is_err(), "{typed}");
        }
        let digits = RecoveryCode::parse("12345-67890").unwrap();
        assert_eq!(digits.reveal(), "12345-67890");
        assert_eq!(RecoveryCode::parse(" 12345-67890 "), Ok(digits));
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..2000 {
            let code = RecoveryCode::generate(&mut rng);
            // Every drawn code parses back from its shown form.
            assert_eq!(RecoveryCode::parse(&code.reveal()).as_ref(), Ok(&code));
            if code.as_str().bytes().any(|b| b.is_ascii_lowercase()) {
                assert!(crate::otp::OtpCode::parse(code.as_str()).is_err());
                assert!(crate::otp::OtpCode::parse(&code.reveal()).is_err());
            }
        }
    }

    /// 50 bits: the codes of digits only are drawn too (no symbol, position or kind of
    /// code is left out).
    #[test]
    fn codes_of_digits_only_are_drawn_too() {
        struct Zeros;
        impl RngCore for Zeros {
            fn next_u32(&mut self) -> u32 {
                0
            }
            fn next_u64(&mut self) -> u64 {
                0
            }
            fn fill_bytes(&mut self, dest: &mut [u8]) {
                dest.fill(0);
            }
            fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
                dest.fill(0);
                Ok(())
            }
        }
        impl CryptoRng for Zeros {}
        let code = RecoveryCode::generate(&mut Zeros);
        assert_eq!(code.reveal(), "00000-00000");
    }

    #[test]
    fn a_set_has_ten_distinct_codes() {
        let set = generate_set(&mut OsRng);
        assert_eq!(set.len(), RECOVERY_CODES_PER_SET);
        let distinct: std::collections::HashSet<_> = set.iter().map(|c| c.as_str()).collect();
        assert_eq!(distinct.len(), RECOVERY_CODES_PER_SET);
    }
}
