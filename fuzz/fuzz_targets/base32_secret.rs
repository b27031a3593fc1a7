//! Base32 device secrets (`twostep::otp::OtpSecret::from_base32`): arbitrary text never
//! panics; whatever parses is 128..=1024 bits, its canonical form is exactly the input
//! without separators and padding (upper case), and the canonical, lower-case and grouped
//! forms parse back to the same secret. Errors point inside the input. Arbitrary raw key
//! bytes accepted by `from_bytes` survive `to_base32` -> `from_base32`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twostep::otp::{OtpSecret, SecretError};

const MIN_BYTES: usize = 16;
const MAX_BYTES: usize = 128;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check_text(text);
    }
    check_bytes(data);
});

fn check_text(text: &str) {
    match OtpSecret::from_base32(text) {
        Ok(secret) => {
            let len = secret.as_bytes().len();
            assert!(
                (MIN_BYTES..=MAX_BYTES).contains(&len),
                "{len} bytes accepted"
            );
            let canonical = secret.to_base32();
            // The parser only drops ' ', '\t', '-' and '=' and upper-cases; a value with
            // non-zero trailing bits must be refused, so the canonical form is the input.
            let cleaned: String = text
                .chars()
                .filter(|c| !matches!(c, ' ' | '\t' | '-' | '='))
                .map(|c| c.to_ascii_uppercase())
                .collect();
            assert_eq!(canonical, cleaned, "two texts parse to one secret");
            for form in [
                canonical.clone(),
                canonical.to_lowercase(),
                secret.to_base32_grouped(),
            ] {
                assert!(
                    OtpSecret::from_base32(&form).as_ref() == Ok(&secret),
                    "{form:?} does not parse back"
                );
            }
        }
        Err(SecretError::InvalidCharacter { position }) => {
            let chars = text.chars().count();
            assert!(
                (1..=chars).contains(&position),
                "position {position} outside 1..={chars}"
            );
        }
        Err(SecretError::TooShort { bits }) => assert!(bits < MIN_BYTES * 8),
        Err(SecretError::TooLong { bits }) => assert!(bits > MAX_BYTES * 8),
        Err(SecretError::Empty | SecretError::InvalidLength) => {}
    }
}

fn check_bytes(data: &[u8]) {
    let Ok(secret) = OtpSecret::from_bytes(data.to_vec()) else {
        assert!(data.len() < MIN_BYTES || data.len() > MAX_BYTES);
        return;
    };
    let parsed = OtpSecret::from_base32(&secret.to_base32()).expect("own base32 parses");
    assert_eq!(parsed.as_bytes(), data);
    let grouped = OtpSecret::from_base32(&secret.to_base32_grouped()).expect("grouped parses");
    assert_eq!(grouped.as_bytes(), data);
}
