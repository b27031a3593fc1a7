//! A one-time password as a person types it.

use super::Digits;

/// Longest code accepted anywhere: an emailed OTP may be up to 20 digits (SPEC section 2).
pub const MAX_CODE_LENGTH: usize = 20;

/// Digits only, 6 to 20 of them, with the spaces people type between groups removed.
/// Never printed: `Debug` shows `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpCode(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodeError {
    #[error("enter the code")]
    Empty,
    #[error("the code may contain only digits")]
    NotDigits,
    #[error("the code must have {min} to {max} digits", min = Digits::MIN, max = MAX_CODE_LENGTH)]
    BadLength,
}

impl OtpCode {
    pub fn parse(text: &str) -> Result<Self, CodeError> {
        // Bound the work on hostile input before looking at it character by character.
        if text.len() > 4 * MAX_CODE_LENGTH {
            return Err(CodeError::BadLength);
        }
        let mut digits = String::with_capacity(MAX_CODE_LENGTH);
        for ch in text.chars() {
            match ch {
                '0'..='9' => digits.push(ch),
                ' ' | '\t' | '-' => {}
                _ => return Err(CodeError::NotDigits),
            }
        }
        if digits.is_empty() {
            return Err(CodeError::Empty);
        }
        if !(usize::from(Digits::MIN)..=MAX_CODE_LENGTH).contains(&digits.len()) {
            return Err(CodeError::BadLength);
        }
        Ok(Self(digits))
    }

    /// The zero-padded code of `value` with `digits` digits.
    pub(crate) fn from_value(value: u64, digits: Digits) -> Self {
        Self(format!(
            "{value:0width$}",
            width = usize::from(digits.get())
        ))
    }

    /// Builds a code from already generated digits (emailed codes).
    pub(crate) fn from_digits(digits: String) -> Self {
        Self(digits)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The numeric value of a code of up to 19 digits (device codes have at most 10);
    /// longer codes map to `u64::MAX`, which no device code equals. The loop has no
    /// data-dependent branch.
    pub(crate) fn numeric_value(&self) -> u64 {
        if self.0.len() > 19 {
            return u64::MAX;
        }
        self.0.bytes().fold(0u64, |acc, byte| {
            acc * 10 + u64::from(byte.wrapping_sub(b'0'))
        })
    }
}

impl std::fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OtpCode([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_strips_group_separators() {
        assert_eq!(OtpCode::parse("123 456").unwrap().as_str(), "123456");
        assert_eq!(OtpCode::parse(" 123-456 ").unwrap().as_str(), "123456");
        assert_eq!(OtpCode::parse("12345678901234567890").unwrap().len(), 20);
    }

    #[test]
    fn parse_refuses_bad_input_with_a_reason() {
        assert_eq!(OtpCode::parse(""), Err(CodeError::Empty));
        assert_eq!(OtpCode::parse("   "), Err(CodeError::Empty));
        assert_eq!(OtpCode::parse("12345"), Err(CodeError::BadLength));
        assert_eq!(
            OtpCode::parse("123456789012345678901"),
            Err(CodeError::BadLength)
        );
        assert_eq!(OtpCode::parse("12345a"), Err(CodeError::NotDigits));
        assert_eq!(
            OtpCode::parse("١٢٣٤٥٦"),
            Err(CodeError::NotDigits),
            "Arabic-Indic digits"
        );
        assert_eq!(
            OtpCode::parse(&"1".repeat(10_000)),
            Err(CodeError::BadLength)
        );
    }

    #[test]
    fn values_are_zero_padded() {
        assert_eq!(OtpCode::from_value(42, Digits::SIX).as_str(), "000042");
        assert_eq!(OtpCode::from_value(42, Digits::SIX).numeric_value(), 42);
    }

    #[test]
    fn twenty_digit_codes_have_no_device_value() {
        assert_eq!(
            OtpCode::parse(&"9".repeat(20)).unwrap().numeric_value(),
            u64::MAX
        );
        assert_eq!(
            OtpCode::parse(&"9".repeat(19)).unwrap().numeric_value(),
            9_999_999_999_999_999_999
        );
    }

    #[test]
    fn debug_output_redacts_the_code() {
        let code = OtpCode::parse("424242").unwrap();
        assert!(!format!("{code:?}").contains("4242"));
    }
}
