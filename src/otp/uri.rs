//! `otpauth://` key URIs, the format authenticator apps scan from a QR code.
//!
//! `otpauth://TYPE/ISSUER:ACCOUNT?secret=BASE32&issuer=ISSUER&algorithm=SHA1&digits=6&period=30`
//! (`counter=N` instead of `period` for HOTP). Issuer and account are percent-encoded
//! byte by byte (UTF-8), everything but RFC 3986's unreserved characters, so a `:` or `&`
//! in a name can never be mistaken for a separator.

use super::{Algorithm, Digits, OtpSecret, Period, SecretError};

/// Longest key URI accepted by `parse`; real ones are under 300 bytes.
pub const MAX_URI_LENGTH: usize = 4096;

/// The longest issuer or account name (UTF-8 bytes): small enough that the rendered URI,
/// where each byte may become `%XX` and the issuer appears twice, stays under
/// [`MAX_URI_LENGTH`], so that every URI `parse` accepts renders to one it accepts too.
pub const MAX_NAME_BYTES: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyUriKind {
    /// Counter-based; `counter` is the next counter value the app will use.
    Hotp { counter: u64 },
    /// Time-based.
    Totp { period: Period },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyUri {
    pub kind: KeyUriKind,
    /// Shown by the app above the account; `None` leaves it out.
    pub issuer: Option<String>,
    pub account: String,
    pub secret: OtpSecret,
    pub algorithm: Algorithm,
    pub digits: Digits,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UriError {
    #[error("the key URI is longer than {MAX_URI_LENGTH} characters")]
    TooLong,
    #[error("the key URI's issuer or account name is longer than {MAX_NAME_BYTES} bytes")]
    NameTooLong,
    #[error("the key URI must start with otpauth://")]
    NotOtpauth,
    #[error("the key URI type must be totp or hotp")]
    UnknownType,
    #[error("the key URI has no account name")]
    MissingAccount,
    #[error("the key URI has a malformed percent-encoding")]
    BadEncoding,
    #[error("the key URI's {0} is not valid UTF-8")]
    NotUtf8(&'static str),
    #[error("the key URI repeats the parameter {0}")]
    DuplicateParameter(String),
    #[error("the key URI has no secret")]
    MissingSecret,
    #[error("the key URI's secret is invalid: {0}")]
    Secret(#[from] SecretError),
    #[error("the key URI's algorithm must be SHA1, SHA256 or SHA512")]
    BadAlgorithm,
    #[error("the key URI's digits must be between 6 and 10")]
    BadDigits,
    #[error("the key URI's period must be between 1 and 300 seconds")]
    BadPeriod,
    #[error("an HOTP key URI needs a counter")]
    MissingCounter,
    #[error("the key URI's counter is not a number")]
    BadCounter,
    #[error("the issuer in the label differs from the issuer parameter")]
    IssuerMismatch,
}

impl KeyUri {
    /// The URI text, ready for a QR code.
    pub fn to_uri(&self) -> String {
        let (kind, tail) = match self.kind {
            KeyUriKind::Hotp { counter } => ("hotp", format!("counter={counter}")),
            KeyUriKind::Totp { period } => ("totp", format!("period={}", period.get())),
        };
        let mut uri = format!("otpauth://{kind}/");
        if let Some(issuer) = &self.issuer {
            uri.push_str(&encode(issuer));
            uri.push(':');
        }
        uri.push_str(&encode(&self.account));
        uri.push_str("?secret=");
        uri.push_str(&self.secret.to_base32());
        if let Some(issuer) = &self.issuer {
            uri.push_str("&issuer=");
            uri.push_str(&encode(issuer));
        }
        uri.push_str(&format!(
            "&algorithm={}&digits={}&{tail}",
            self.algorithm.as_str(),
            self.digits.get()
        ));
        uri
    }

    /// Parses a key URI as apps and other servers write it: parameters in any order,
    /// unknown parameters (such as `image`) ignored, the label's separator written as `:`
    /// or `%3A`.
    pub fn parse(text: &str) -> Result<Self, UriError> {
        if text.len() > MAX_URI_LENGTH {
            return Err(UriError::TooLong);
        }
        let rest = strip_prefix_ignore_case(text, "otpauth://").ok_or(UriError::NotOtpauth)?;
        let (kind_text, rest) = rest.split_once('/').ok_or(UriError::UnknownType)?;
        let is_hotp = match kind_text.to_ascii_lowercase().as_str() {
            "hotp" => true,
            "totp" => false,
            _ => return Err(UriError::UnknownType),
        };
        let (label, query) = rest.split_once('?').unwrap_or((rest, ""));
        let params = Params::parse(query)?;

        let issuer_param = params
            .get("issuer")
            .map(|v| decode(v, "issuer"))
            .transpose()?;
        let (label_issuer, account) = split_label(label, issuer_param.as_deref())?;
        if account.is_empty() {
            return Err(UriError::MissingAccount);
        }
        let too_long = |name: Option<&str>| name.is_some_and(|n| n.len() > MAX_NAME_BYTES);
        if too_long(Some(&account))
            || too_long(label_issuer.as_deref())
            || too_long(issuer_param.as_deref())
        {
            return Err(UriError::NameTooLong);
        }
        let issuer = match (label_issuer, issuer_param) {
            (Some(label), Some(param)) if label != param => return Err(UriError::IssuerMismatch),
            (label, param) => param.or(label).filter(|issuer| !issuer.is_empty()),
        };

        let secret = OtpSecret::from_base32(&decode(
            params.get("secret").ok_or(UriError::MissingSecret)?,
            "secret",
        )?)?;
        let algorithm = match params.get("algorithm") {
            None => Algorithm::Sha1,
            Some(value) => Algorithm::parse(value).ok_or(UriError::BadAlgorithm)?,
        };
        let digits = match params.get("digits") {
            None => Digits::SIX,
            Some(value) => value
                .parse::<u8>()
                .ok()
                .and_then(Digits::new)
                .ok_or(UriError::BadDigits)?,
        };
        let kind = if is_hotp {
            let counter = params.get("counter").ok_or(UriError::MissingCounter)?;
            KeyUriKind::Hotp {
                counter: counter.parse().map_err(|_| UriError::BadCounter)?,
            }
        } else {
            KeyUriKind::Totp {
                period: match params.get("period") {
                    None => Period::DEFAULT,
                    Some(value) => value
                        .parse::<u32>()
                        .ok()
                        .and_then(Period::new)
                        .ok_or(UriError::BadPeriod)?,
                },
            }
        };
        Ok(Self {
            kind,
            issuer,
            account,
            secret,
            algorithm,
            digits,
        })
    }
}

/// The raw (still encoded) query parameters, each at most once.
struct Params<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Params<'a> {
    fn parse(query: &'a str) -> Result<Self, UriError> {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if pairs.iter().any(|(seen, _)| seen.eq_ignore_ascii_case(key)) {
                return Err(UriError::DuplicateParameter(
                    decode(key, "parameter name").unwrap_or_else(|_| "?".to_owned()),
                ));
            }
            pairs.push((key, value));
        }
        Ok(Self(pairs))
    }

    fn get(&self, key: &str) -> Option<&'a str> {
        self.0
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, value)| *value)
    }
}

/// Splits `ISSUER:ACCOUNT`. A literal `:` is always the separator (ours encodes every `:`
/// inside a name). Without one, the decoded label is split at `ISSUER:` when it starts
/// with the issuer parameter; otherwise all of it is the account (an encoded `:` in an
/// account without issuer stays part of the account).
fn split_label(
    label: &str,
    issuer_param: Option<&str>,
) -> Result<(Option<String>, String), UriError> {
    if let Some((issuer, account)) = label.split_once(':') {
        return Ok((Some(decode(issuer, "issuer")?), decode(account, "account")?));
    }
    let decoded = decode(label, "account")?;
    match issuer_param {
        Some(issuer) => match decoded
            .strip_prefix(issuer)
            .and_then(|r| r.strip_prefix(':'))
        {
            Some(account) => Ok((Some(issuer.to_owned()), account.to_owned())),
            None => Ok((None, decoded)),
        },
        None => Ok((None, decoded)),
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Percent-encodes every byte outside RFC 3986's unreserved set.
fn encode(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
    out
}

/// Decodes `%XX` escapes (a `+` stays a plus, as RFC 3986 says); the bytes must be UTF-8.
fn decode(text: &str, what: &'static str) -> Result<String, UriError> {
    fn hex(byte: u8) -> Option<u8> {
        match byte {
            b'0'..=b'9' => Some(byte - b'0'),
            b'a'..=b'f' => Some(byte - b'a' + 10),
            b'A'..=b'F' => Some(byte - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let high = bytes.get(index + 1).copied().and_then(hex);
            let low = bytes.get(index + 2).copied().and_then(hex);
            match (high, low) {
                (Some(high), Some(low)) => out.push(high << 4 | low),
                _ => return Err(UriError::BadEncoding),
            }
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UriError::NotUtf8(what))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secret() -> OtpSecret {
        OtpSecret::from_bytes(b"12345678901234567890".to_vec()).unwrap()
    }

    fn totp_uri() -> KeyUri {
        KeyUri {
            kind: KeyUriKind::Totp {
                period: Period::DEFAULT,
            },
            issuer: Some("St. Mary's Hospital".to_owned()),
            account: "jane.doe@example.org".to_owned(),
            secret: secret(),
            algorithm: Algorithm::Sha1,
            digits: Digits::SIX,
        }
    }

    #[test]
    fn builds_the_form_apps_expect() {
        assert_eq!(
            totp_uri().to_uri(),
            "otpauth://totp/St.%20Mary%27s%20Hospital:jane.doe%40example.org\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=St.%20Mary%27s%20Hospital\
             &algorithm=SHA1&digits=6&period=30"
        );
        let hotp = KeyUri {
            kind: KeyUriKind::Hotp { counter: 7 },
            issuer: None,
            digits: Digits::EIGHT,
            algorithm: Algorithm::Sha256,
            ..totp_uri()
        };
        assert_eq!(
            hotp.to_uri(),
            "otpauth://hotp/jane.doe%40example.org?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &algorithm=SHA256&digits=8&counter=7"
        );
    }

    #[test]
    fn the_longest_names_render_to_a_uri_that_parses_back() {
        // Every byte percent-encoded, the issuer twice: the worst case of `to_uri`.
        let key = KeyUri {
            kind: KeyUriKind::Totp {
                period: Period::DEFAULT,
            },
            issuer: Some("é".repeat(MAX_NAME_BYTES / 2)),
            account: " ".repeat(MAX_NAME_BYTES),
            secret: OtpSecret::from_bytes(vec![7u8; 128]).unwrap(),
            algorithm: Algorithm::Sha512,
            digits: Digits::new(10).unwrap(),
        };
        let text = key.to_uri();
        assert!(text.len() <= MAX_URI_LENGTH, "{}", text.len());
        assert_eq!(KeyUri::parse(&text).unwrap(), key);
    }

    #[test]
    fn parses_the_google_authenticator_example() {
        let uri = KeyUri::parse(
            "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Example",
        )
        .unwrap();
        assert_eq!(uri.issuer.as_deref(), Some("Example"));
        assert_eq!(uri.account, "alice@google.com");
        assert_eq!(
            uri.kind,
            KeyUriKind::Totp {
                period: Period::DEFAULT
            }
        );
        assert_eq!(uri.algorithm, Algorithm::Sha1);
        assert_eq!(uri.digits, Digits::SIX);
    }

    #[test]
    fn parses_an_encoded_separator_and_unknown_parameters() {
        let uri = KeyUri::parse(
            "OTPAUTH://TOTP/ACME%20Co%3Ajohn.doe%40email.com?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ\
             &issuer=ACME%20Co&algorithm=sha256&digits=8&period=60&image=https%3A%2F%2Fx",
        )
        .unwrap();
        assert_eq!(uri.issuer.as_deref(), Some("ACME Co"));
        assert_eq!(uri.account, "john.doe@email.com");
        assert_eq!(uri.algorithm, Algorithm::Sha256);
        assert_eq!(uri.digits, Digits::EIGHT);
        assert_eq!(
            uri.kind,
            KeyUriKind::Totp {
                period: Period::new(60).unwrap()
            }
        );
    }

    #[test]
    fn issuer_only_in_the_label_is_kept() {
        let uri = KeyUri::parse(
            "otpauth://hotp/Clinic:bob?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&counter=3",
        )
        .unwrap();
        assert_eq!(uri.issuer.as_deref(), Some("Clinic"));
        assert_eq!(uri.kind, KeyUriKind::Hotp { counter: 3 });
    }

    #[test]
    fn bad_uris_are_refused_with_a_reason() {
        let good_secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        let cases: Vec<(String, UriError)> = vec![
            ("https://totp/a?secret=X".into(), UriError::NotOtpauth),
            ("otpauth://motp/a?secret=X".into(), UriError::UnknownType),
            ("otpauth://totp".into(), UriError::UnknownType),
            (
                format!("otpauth://totp/?secret={good_secret}"),
                UriError::MissingAccount,
            ),
            (
                format!("otpauth://totp/Issuer:?secret={good_secret}"),
                UriError::MissingAccount,
            ),
            ("otpauth://totp/a".into(), UriError::MissingSecret),
            ("otpauth://totp/a%zz?secret=x".into(), UriError::BadEncoding),
            (
                "otpauth://totp/a%C3?secret=x".into(),
                UriError::NotUtf8("account"),
            ),
            (
                format!("otpauth://totp/a?secret={good_secret}&secret={good_secret}"),
                UriError::DuplicateParameter("secret".into()),
            ),
            (
                "otpauth://totp/a?secret=1111".into(),
                UriError::Secret(SecretError::InvalidCharacter { position: 1 }),
            ),
            (
                format!("otpauth://totp/a?secret={good_secret}&algorithm=MD5"),
                UriError::BadAlgorithm,
            ),
            (
                format!("otpauth://totp/a?secret={good_secret}&digits=5"),
                UriError::BadDigits,
            ),
            (
                format!("otpauth://totp/a?secret={good_secret}&digits=11"),
                UriError::BadDigits,
            ),
            (
                format!("otpauth://totp/a?secret={good_secret}&digits=x"),
                UriError::BadDigits,
            ),
            (
                format!("otpauth://totp/a?secret={good_secret}&period=0"),
                UriError::BadPeriod,
            ),
            (
                format!("otpauth://hotp/a?secret={good_secret}"),
                UriError::MissingCounter,
            ),
            (
                format!("otpauth://hotp/a?secret={good_secret}&counter=-1"),
                UriError::BadCounter,
            ),
            (
                format!("otpauth://totp/A:b?secret={good_secret}&issuer=B"),
                UriError::IssuerMismatch,
            ),
            (
                format!("otpauth://totp/{}?secret=x", "a".repeat(5000)),
                UriError::TooLong,
            ),
            (
                format!("otpauth://totp/{}?secret={good_secret}", "%20".repeat(257)),
                UriError::NameTooLong,
            ),
            (
                format!(
                    "otpauth://totp/a?secret={good_secret}&issuer={}",
                    "b".repeat(257)
                ),
                UriError::NameTooLong,
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(KeyUri::parse(&text), Err(expected), "{text}");
        }
    }

    #[test]
    fn errors_never_contain_the_secret() {
        let error = KeyUri::parse("otpauth://totp/a?secret=GEZDGNBVGY3TQOJQ1EZD").unwrap_err();
        assert!(!error.to_string().contains("GEZD"), "{error}");
    }

    fn arb_kind() -> impl Strategy<Value = KeyUriKind> {
        prop_oneof![
            any::<u64>().prop_map(|counter| KeyUriKind::Hotp { counter }),
            (1u32..=300).prop_map(|p| KeyUriKind::Totp {
                period: Period::new(p).unwrap()
            }),
        ]
    }

    /// Names with unicode and every separator the URI syntax uses.
    fn arb_name() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[a-zA-Z0-9 :&%=?#/+@._~é中🙂-]{1,24}").unwrap()
    }

    proptest! {
        #[test]
        fn build_then_parse_round_trips(
            kind in arb_kind(),
            issuer in proptest::option::of(arb_name()),
            account in arb_name(),
            key in proptest::collection::vec(any::<u8>(), 16..=64),
            algorithm in prop_oneof![Just(Algorithm::Sha1), Just(Algorithm::Sha256), Just(Algorithm::Sha512)],
            digits in 6u8..=10,
        ) {
            let uri = KeyUri {
                kind,
                issuer,
                account,
                secret: OtpSecret::from_bytes(key).unwrap(),
                algorithm,
                digits: Digits::new(digits).unwrap(),
            };
            let text = uri.to_uri();
            prop_assert!(text.is_ascii());
            prop_assert_eq!(KeyUri::parse(&text), Ok(uri));
        }

        #[test]
        fn parse_never_panics(text in "otpauth://(totp|hotp)/[ -~]{0,80}") {
            let _ = KeyUri::parse(&text);
        }
    }
}
