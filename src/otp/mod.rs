//! The OTP engine: HOTP (RFC 4226), TOTP (RFC 6238), key URIs, QR codes and emailed codes.
//!
//! Pure code: no clock, no randomness, no I/O of its own. Time arrives as Unix seconds and
//! randomness as an `RngCore + CryptoRng` argument; the shell supplies both.

mod code;
mod emailed;
mod hotp;
mod qr;
mod secret;
mod totp;
mod uri;

pub use code::{CodeError, OtpCode, MAX_CODE_LENGTH};
pub use emailed::{generate_emailed_code, OtpLength, OtpLengthError};
pub use hotp::Hotp;
pub use qr::{qr_svg, QrError};
pub use secret::{OtpSecret, SecretError, GENERATED_SECRET_BYTES};
pub use totp::Totp;
pub use uri::{KeyUri, KeyUriKind, UriError, MAX_NAME_BYTES, MAX_URI_LENGTH};

/// The HMAC hash of a device (`algorithm=` in a key URI).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The name used in key URIs and stored rows.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }

    /// Parses `SHA1`, `SHA256`, `SHA512` in any case (apps differ).
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_uppercase().as_str() {
            "SHA1" => Some(Self::Sha1),
            "SHA256" => Some(Self::Sha256),
            "SHA512" => Some(Self::Sha512),
            _ => None,
        }
    }
}

/// Digits of a device code: 6 to 10 (RFC 4226 requires at least 6; beyond 10 the 31-bit
/// truncated value has no more digits to give).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Digits(u8);

impl Digits {
    pub const MIN: u8 = 6;
    pub const MAX: u8 = 10;
    pub const SIX: Self = Self(6);
    pub const EIGHT: Self = Self(8);

    pub fn new(digits: u8) -> Option<Self> {
        (Self::MIN..=Self::MAX)
            .contains(&digits)
            .then_some(Self(digits))
    }

    pub fn get(self) -> u8 {
        self.0
    }

    pub(crate) fn modulus(self) -> u64 {
        10u64.pow(u32::from(self.0))
    }
}

/// Seconds per TOTP time step: 1 to 300 (every app uses 30).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Period(u32);

impl Period {
    pub const DEFAULT: Self = Self(30);
    pub const MAX: u32 = 300;

    pub fn new(seconds: u32) -> Option<Self> {
        (1..=Self::MAX).contains(&seconds).then_some(Self(seconds))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}
