//! The shared secret of an HOTP/TOTP device, and its base32 text form.

use data_encoding::BASE32_NOPAD;
use rand::{CryptoRng, RngCore};

/// Bits of a newly generated secret (RFC 4226 section 4 recommends 160).
pub const GENERATED_SECRET_BYTES: usize = 20;
/// RFC 4226 section 4: "The length of the shared secret MUST be at least 128 bits."
pub const MIN_SECRET_BYTES: usize = 16;
/// Generous upper bound (RFC 6238's SHA-512 vector uses 64 bytes); longer input is refused
/// so that a hostile URI cannot make us allocate or hash without limit.
pub const MAX_SECRET_BYTES: usize = 128;

/// The key of an OTP device. Never printed: `Debug` shows `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpSecret(Vec<u8>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("the secret is empty")]
    Empty,
    /// The position is 1-based in the text as given; the character itself is not echoed,
    /// since it is part of a secret.
    #[error("the secret has a character that is not base32 (A-Z, 2-7) at position {position}")]
    InvalidCharacter { position: usize },
    #[error("the secret's length is not a valid base32 length")]
    InvalidLength,
    #[error("the secret is {bits} bits long; at least {min} bits are required", min = MIN_SECRET_BYTES * 8)]
    TooShort { bits: usize },
    #[error("the secret is {bits} bits long; at most {max} bits are accepted", max = MAX_SECRET_BYTES * 8)]
    TooLong { bits: usize },
}

impl OtpSecret {
    /// A new random 160-bit secret.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = vec![0u8; GENERATED_SECRET_BYTES];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Wraps raw key bytes (e.g. decrypted from the store), checking the length bounds.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, SecretError> {
        let bits = bytes.len() * 8;
        if bytes.is_empty() {
            Err(SecretError::Empty)
        } else if bytes.len() < MIN_SECRET_BYTES {
            Err(SecretError::TooShort { bits })
        } else if bytes.len() > MAX_SECRET_BYTES {
            Err(SecretError::TooLong { bits })
        } else {
            Ok(Self(bytes))
        }
    }

    /// Parses base32 as people and apps write it: any case, with spaces or hyphens between
    /// groups, with or without `=` padding.
    pub fn from_base32(text: &str) -> Result<Self, SecretError> {
        let mut cleaned = String::with_capacity(text.len());
        let mut padding_started = false;
        for (index, ch) in text.chars().enumerate() {
            match ch {
                ' ' | '\t' | '-' => {}
                '=' => padding_started = true,
                'a'..='z' | 'A'..='Z' | '2'..='7' if !padding_started => {
                    cleaned.push(ch.to_ascii_uppercase());
                }
                _ => {
                    return Err(SecretError::InvalidCharacter {
                        position: index + 1,
                    })
                }
            }
        }
        if cleaned.is_empty() {
            return Err(SecretError::Empty);
        }
        // Too long input is refused before decoding (no unbounded allocation).
        if cleaned.len() > BASE32_NOPAD.encode_len(MAX_SECRET_BYTES) {
            return Err(SecretError::TooLong {
                bits: cleaned.len() * 5,
            });
        }
        let bytes = BASE32_NOPAD
            .decode(cleaned.as_bytes())
            .map_err(|_| SecretError::InvalidLength)?;
        Self::from_bytes(bytes)
    }

    /// Base32 without padding, upper case: what authenticator apps expect in a key URI.
    pub fn to_base32(&self) -> String {
        BASE32_NOPAD.encode(&self.0)
    }

    /// The base32 form in groups of four, for people typing it into an app by hand.
    pub fn to_base32_grouped(&self) -> String {
        let plain = self.to_base32();
        let groups: Vec<&str> = plain
            .as_bytes()
            .chunks(4)
            .filter_map(|chunk| std::str::from_utf8(chunk).ok())
            .collect();
        groups.join(" ")
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for OtpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OtpSecret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn generated_secrets_are_160_bits_and_differ() {
        let mut rng = StdRng::seed_from_u64(7);
        let a = OtpSecret::generate(&mut rng);
        let b = OtpSecret::generate(&mut rng);
        assert_eq!(a.as_bytes().len(), 20);
        assert_eq!(a.to_base32().len(), 32);
        assert_ne!(a, b);
    }

    #[test]
    fn base32_parse_tolerates_case_spaces_hyphens_and_padding() {
        let expected = OtpSecret::from_bytes(b"12345678901234567890".to_vec()).unwrap();
        let canonical = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        assert_eq!(expected.to_base32(), canonical);
        for text in [
            canonical,
            "gezdgnbvgy3tqojqgezdgnbvgy3tqojq",
            "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ",
            "gezd-gnbv-gy3t-qojq-gezd-gnbv-gy3t-qojq",
            " GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\t",
        ] {
            assert_eq!(OtpSecret::from_base32(text).unwrap(), expected, "{text}");
        }
        // 17 bytes -> 28 characters, 4 padding characters in the padded form.
        let odd = OtpSecret::from_bytes(vec![0xAB; 17]).unwrap();
        let padded = data_encoding::BASE32.encode(odd.as_bytes());
        assert!(padded.ends_with('='));
        assert_eq!(OtpSecret::from_base32(&padded).unwrap(), odd);
        assert_eq!(
            OtpSecret::from_base32(padded.trim_end_matches('=')).unwrap(),
            odd
        );
    }

    #[test]
    fn base32_parse_errors_are_specific_and_never_echo_the_secret() {
        assert_eq!(OtpSecret::from_base32(""), Err(SecretError::Empty));
        assert_eq!(OtpSecret::from_base32("  = "), Err(SecretError::Empty));
        assert_eq!(
            OtpSecret::from_base32("GEZDGNBVGY3TQOJ1GEZD"),
            Err(SecretError::InvalidCharacter { position: 16 })
        );
        assert_eq!(
            OtpSecret::from_base32("GEZDGNBV=GY"),
            Err(SecretError::InvalidCharacter { position: 10 })
        );
        assert_eq!(
            OtpSecret::from_base32("GEZDGNBVGY3TQOJQG"),
            Err(SecretError::InvalidLength)
        );
        // 80 bits: the old Google Authenticator length, below RFC 4226's minimum.
        assert_eq!(
            OtpSecret::from_base32("GEZDGNBVGY3TQOJQ"),
            Err(SecretError::TooShort { bits: 80 })
        );
        let long = "A".repeat(400);
        assert!(matches!(
            OtpSecret::from_base32(&long),
            Err(SecretError::TooLong { .. })
        ));
        let message = SecretError::InvalidCharacter { position: 3 }.to_string();
        assert!(message.contains("position 3"));
    }

    #[test]
    fn debug_output_redacts_the_key() {
        let secret = OtpSecret::from_bytes(b"12345678901234567890".to_vec()).unwrap();
        let shown = format!("{secret:?}");
        assert!(!shown.contains("49"), "{shown}");
        assert!(!shown.contains("GEZD"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn grouped_form_is_the_same_secret() {
        let secret = OtpSecret::generate(&mut StdRng::seed_from_u64(1));
        let grouped = secret.to_base32_grouped();
        assert_eq!(grouped.len(), 32 + 7);
        assert_eq!(OtpSecret::from_base32(&grouped).unwrap(), secret);
    }

    proptest::proptest! {
        #[test]
        fn base32_round_trips(key in proptest::collection::vec(proptest::prelude::any::<u8>(), 16..=128)) {
            let secret = OtpSecret::from_bytes(key.clone()).unwrap();
            let parsed = OtpSecret::from_base32(&secret.to_base32()).unwrap();
            proptest::prop_assert_eq!(parsed.as_bytes(), &key[..]);
            proptest::prop_assert_eq!(OtpSecret::from_base32(&secret.to_base32().to_lowercase()).unwrap(), secret.clone());
            proptest::prop_assert_eq!(OtpSecret::from_base32(&secret.to_base32_grouped()).unwrap(), secret.clone());
            let padded = data_encoding::BASE32.encode(&key);
            proptest::prop_assert_eq!(OtpSecret::from_base32(&padded).unwrap(), secret);
        }

        #[test]
        fn base32_parse_never_panics(text in "[ -~]{0,300}") {
            let _ = OtpSecret::from_base32(&text);
        }
    }
}
