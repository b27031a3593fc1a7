//! System settings (SPEC section 2): typed, each with its range, label and help text.
//!
//! A [`Settings`] value is always valid: it starts from the defaults and changes only
//! through [`Settings::set`], which checks the setting's range. Every setting has one text
//! form, used in storage, on the command line and in forms.

use crate::domain::device::Use2fa;
use crate::domain::user::Email;
use crate::otp::OtpLength;

/// Every system setting, by its SPEC section 9 name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SettingKey {
    Use2fa,
    BypassEnabled,
    OtpCsrfValidMinutes,
    OtpLength,
    OtpRequestDelaySeconds,
    OtpValidSeconds,
    FailureDelayMs,
    Autoreply,
    LockoutThreshold,
    LockoutMinutes,
    HotpWindow,
    TotpSkewSteps,
    ValidatePassMode,
}

/// What the `pass` of privacyIDEA's `/validate/check` holds (the second-factor check of
/// `service::verify`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValidatePassMode {
    /// The OTP only: the caller checked the password itself (the default).
    Otp,
    /// The password followed by the OTP: twostep checks both, and the whole sign-in
    /// decision of SPEC section 3 applies.
    PasswordOtp,
}

impl ValidatePassMode {
    pub const ALL: [Self; 2] = [Self::Otp, Self::PasswordOtp];

    /// The text form: `otp`, `password_otp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Otp => "otp",
            Self::PasswordOtp => "password_otp",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|mode| mode.as_str() == text)
    }
}

/// The text forms of [`ValidatePassMode`], for [`SettingKind::Choice`].
const PASS_MODES: &[&str] = &["otp", "password_otp"];

/// What kind of value a setting holds, with its range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettingKind {
    /// A whole number in `min..=max`.
    Number { min: u32, max: u32 },
    /// On or off.
    Flag,
    /// An email address.
    Email,
    /// One of these words.
    Choice(&'static [&'static str]),
}

impl SettingKey {
    pub const ALL: [Self; 13] = [
        Self::Use2fa,
        Self::BypassEnabled,
        Self::OtpCsrfValidMinutes,
        Self::OtpLength,
        Self::OtpRequestDelaySeconds,
        Self::OtpValidSeconds,
        Self::FailureDelayMs,
        Self::Autoreply,
        Self::LockoutThreshold,
        Self::LockoutMinutes,
        Self::HotpWindow,
        Self::TotpSkewSteps,
        Self::ValidatePassMode,
    ];

    /// The snake_case name of SPEC section 9 (API fields, CLI, storage).
    pub fn name(self) -> &'static str {
        match self {
            Self::Use2fa => "use_2fa",
            Self::BypassEnabled => "bypass_enabled",
            Self::OtpCsrfValidMinutes => "otp_csrf_valid_minutes",
            Self::OtpLength => "otp_length",
            Self::OtpRequestDelaySeconds => "otp_request_delay_seconds",
            Self::OtpValidSeconds => "otp_valid_seconds",
            Self::FailureDelayMs => "failure_delay_ms",
            Self::Autoreply => "autoreply",
            Self::LockoutThreshold => "lockout_threshold",
            Self::LockoutMinutes => "lockout_minutes",
            Self::HotpWindow => "hotp_window",
            Self::TotpSkewSteps => "totp_skew_steps",
            Self::ValidatePassMode => "validate_pass_mode",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|key| key.name() == name)
    }

    /// The name an administrator knows from the seed.
    pub fn label(self) -> &'static str {
        match self {
            Self::Use2fa => "Use 2FA",
            Self::BypassEnabled => "Enable Bypass 2FA OTP",
            Self::OtpCsrfValidMinutes => "OTP CSRF Valid Minutes",
            Self::OtpLength => "OTP Length",
            Self::OtpRequestDelaySeconds => "OTP Request Delay Seconds",
            Self::OtpValidSeconds => "OTP Valid Seconds",
            Self::FailureDelayMs => "Failure Delay (ms)",
            Self::Autoreply => "Autoreply",
            Self::LockoutThreshold => "Lockout Threshold",
            Self::LockoutMinutes => "Lockout Minutes",
            Self::HotpWindow => "HOTP Look-ahead Window",
            Self::TotpSkewSteps => "TOTP Skew Steps",
            Self::ValidatePassMode => "Validate Pass Mode",
        }
    }

    /// Help text, in the seed's words where the seed has them.
    pub fn help(self) -> &'static str {
        match self {
            Self::Use2fa => "Which one-time password methods users may set up: 1 HOTP (counter based) only, 2 TOTP (time based) only, 3 the user chooses. TOTP is recommended; HOTP suits users who have difficulty typing a code quickly or whose device does not reliably keep the current time.",
            Self::BypassEnabled => "When enabled, users whose device is detected as having an IP address within a configured \"In Network\" location may skip the OTP prompt, unless they chose \"Every Login (Maximum Security)\" for their device. Review with your network security department first.",
            Self::OtpCsrfValidMinutes => "The maximum amount of time that a user may continue to request OTPs before they must re-enter their username and password. Tightens the window of time when replay attacks are available against the user's account.",
            Self::OtpLength => "The number of characters in a system-generated (emailed) OTP. A longer OTP, up to 20 characters, further increases the difficulty of attacks on a user account.",
            Self::OtpRequestDelaySeconds => "The minimum amount of time which must elapse before an additional OTP request may be made. Rate-limits a potential attacker forcing OTPs on an account.",
            Self::OtpValidSeconds => "The maximum amount of time during which a generated OTP will be accepted before it expires. Entering an expired OTP counts as a sign-in failure and may lock the account.",
            Self::FailureDelayMs => "A minimum processing duration for a failed credential check, to mitigate timing attacks. Keep it close to the duration of a successful sign-in.",
            Self::Autoreply => "The sending 'from' email address of OTP notification messages.",
            Self::LockoutThreshold => "Consecutive failed sign-ins (wrong password, wrong or expired OTP) that lock the account. A successful sign-in resets the count.",
            Self::LockoutMinutes => "How long a locked account stays locked; 0 keeps it locked until an administrator unlocks it.",
            Self::HotpWindow => "How many HOTP counter values ahead of the expected one are accepted; a success resynchronizes the device.",
            Self::TotpSkewSteps => "How many 30-second time steps before and after the current one are accepted, for devices whose clock is slightly off.",
            Self::ValidatePassMode => "What systems using the privacyIDEA-compatible /validate/check send as the password: otp = the one-time password only (the system checked the password itself); password_otp = the twostep password followed by the one-time password, and twostep applies the whole sign-in policy.",
        }
    }

    pub fn kind(self) -> SettingKind {
        let number = |min, max| SettingKind::Number { min, max };
        match self {
            Self::Use2fa => number(1, 3),
            Self::BypassEnabled => SettingKind::Flag,
            Self::OtpCsrfValidMinutes => number(1, 1440),
            Self::OtpLength => number(u32::from(OtpLength::MIN), u32::from(OtpLength::MAX)),
            Self::OtpRequestDelaySeconds => number(0, 3600),
            Self::OtpValidSeconds => number(30, 86_400),
            Self::FailureDelayMs => number(0, 10_000),
            Self::Autoreply => SettingKind::Email,
            Self::LockoutThreshold => number(1, 100),
            Self::LockoutMinutes => number(0, 525_600),
            Self::HotpWindow => number(0, 100),
            Self::TotpSkewSteps => number(0, 2),
            Self::ValidatePassMode => SettingKind::Choice(PASS_MODES),
        }
    }
}

/// A refused setting value; the message names the setting and what it accepts.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingError {
    #[error("unknown setting \"{0}\"")]
    UnknownKey(String),
    #[error("{label} must be a whole number between {min} and {max}", label = key.label())]
    OutOfRange { key: SettingKey, min: u32, max: u32 },
    #[error("{label} must be true or false", label = key.label())]
    NotAFlag { key: SettingKey },
    #[error("{label} must be a valid email address", label = key.label())]
    NotAnEmail { key: SettingKey },
    #[error("{label} must be one of: {choices}", label = key.label(), choices = choices.join(", "))]
    NotAChoice {
        key: SettingKey,
        choices: &'static [&'static str],
    },
}

impl SettingError {
    /// The setting concerned, if the key was known.
    pub fn key(&self) -> Option<SettingKey> {
        match self {
            Self::UnknownKey(_) => None,
            Self::OutOfRange { key, .. }
            | Self::NotAFlag { key }
            | Self::NotAnEmail { key }
            | Self::NotAChoice { key, .. } => Some(*key),
        }
    }
}

/// All system settings, always within their ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    use_2fa: Use2fa,
    bypass_enabled: bool,
    otp_csrf_valid_minutes: u32,
    otp_length: OtpLength,
    otp_request_delay_seconds: u32,
    otp_valid_seconds: u32,
    failure_delay_ms: u32,
    autoreply: Email,
    lockout_threshold: u32,
    lockout_minutes: u32,
    hotp_window: u32,
    totp_skew_steps: u32,
    validate_pass_mode: ValidatePassMode,
}

impl Default for Settings {
    /// SPEC section 2's defaults.
    fn default() -> Self {
        Self {
            use_2fa: Use2fa::DEFAULT,
            bypass_enabled: false,
            otp_csrf_valid_minutes: 30,
            otp_length: OtpLength::DEFAULT,
            otp_request_delay_seconds: 30,
            otp_valid_seconds: 900,
            failure_delay_ms: 500,
            autoreply: Email(String::from("no-reply@localhost")),
            lockout_threshold: 5,
            lockout_minutes: 30,
            hotp_window: 10,
            totp_skew_steps: 1,
            validate_pass_mode: ValidatePassMode::Otp,
        }
    }
}

impl Settings {
    pub fn use_2fa(&self) -> Use2fa {
        self.use_2fa
    }
    pub fn bypass_enabled(&self) -> bool {
        self.bypass_enabled
    }
    pub fn otp_csrf_valid_minutes(&self) -> u32 {
        self.otp_csrf_valid_minutes
    }
    pub fn otp_length(&self) -> OtpLength {
        self.otp_length
    }
    pub fn otp_request_delay_seconds(&self) -> u32 {
        self.otp_request_delay_seconds
    }
    pub fn otp_valid_seconds(&self) -> u32 {
        self.otp_valid_seconds
    }
    pub fn failure_delay_ms(&self) -> u32 {
        self.failure_delay_ms
    }
    pub fn autoreply(&self) -> &Email {
        &self.autoreply
    }
    /// When a lock that begins at `now` ends: after Lockout Minutes, or never (0: until
    /// an administrator unlocks).
    pub fn lock_until(&self, now: crate::clock::Timestamp) -> crate::clock::Timestamp {
        match self.lockout_minutes {
            0 => crate::clock::Timestamp::NEVER,
            minutes => now.plus_seconds(i64::from(minutes) * 60),
        }
    }

    pub fn lockout_threshold(&self) -> u32 {
        self.lockout_threshold
    }
    /// 0 means: locked until an administrator unlocks.
    pub fn lockout_minutes(&self) -> u32 {
        self.lockout_minutes
    }
    pub fn hotp_window(&self) -> u32 {
        self.hotp_window
    }
    pub fn totp_skew_steps(&self) -> u8 {
        // At most 2, by the setting's range.
        u8::try_from(self.totp_skew_steps).unwrap_or(2)
    }
    pub fn validate_pass_mode(&self) -> ValidatePassMode {
        self.validate_pass_mode
    }

    /// The canonical text form of a setting's value.
    pub fn get(&self, key: SettingKey) -> String {
        match key {
            SettingKey::Use2fa => self.use_2fa.value().to_string(),
            SettingKey::BypassEnabled => self.bypass_enabled.to_string(),
            SettingKey::OtpCsrfValidMinutes => self.otp_csrf_valid_minutes.to_string(),
            SettingKey::OtpLength => self.otp_length.get().to_string(),
            SettingKey::OtpRequestDelaySeconds => self.otp_request_delay_seconds.to_string(),
            SettingKey::OtpValidSeconds => self.otp_valid_seconds.to_string(),
            SettingKey::FailureDelayMs => self.failure_delay_ms.to_string(),
            SettingKey::Autoreply => self.autoreply.as_str().to_owned(),
            SettingKey::LockoutThreshold => self.lockout_threshold.to_string(),
            SettingKey::LockoutMinutes => self.lockout_minutes.to_string(),
            SettingKey::HotpWindow => self.hotp_window.to_string(),
            SettingKey::TotpSkewSteps => self.totp_skew_steps.to_string(),
            SettingKey::ValidatePassMode => self.validate_pass_mode.as_str().to_owned(),
        }
    }

    /// Changes one setting from its text form; out of range or malformed values are
    /// refused and leave every setting as it was.
    pub fn set(&mut self, key: SettingKey, text: &str) -> Result<(), SettingError> {
        let text = text.trim();
        match key.kind() {
            SettingKind::Number { min, max } => {
                let value = text
                    .parse::<u32>()
                    .ok()
                    .filter(|value| (min..=max).contains(value))
                    .ok_or(SettingError::OutOfRange { key, min, max })?;
                self.set_number(key, value, min, max)
            }
            SettingKind::Flag => {
                let flag = match text.to_ascii_lowercase().as_str() {
                    "true" | "on" | "yes" | "1" => true,
                    "false" | "off" | "no" | "0" => false,
                    _ => return Err(SettingError::NotAFlag { key }),
                };
                self.bypass_enabled = flag;
                Ok(())
            }
            SettingKind::Email => {
                self.autoreply =
                    Email::parse(text).map_err(|_| SettingError::NotAnEmail { key })?;
                Ok(())
            }
            SettingKind::Choice(choices) => {
                let refused = SettingError::NotAChoice { key, choices };
                match key {
                    SettingKey::ValidatePassMode => {
                        self.validate_pass_mode = ValidatePassMode::parse(text).ok_or(refused)?;
                    }
                    _ => return Err(refused),
                }
                Ok(())
            }
        }
    }

    /// Stores a number already checked against `min..=max`.
    fn set_number(
        &mut self,
        key: SettingKey,
        value: u32,
        min: u32,
        max: u32,
    ) -> Result<(), SettingError> {
        let out_of_range = SettingError::OutOfRange { key, min, max };
        match key {
            SettingKey::Use2fa => {
                self.use_2fa = u8::try_from(value)
                    .ok()
                    .and_then(Use2fa::from_value)
                    .ok_or(out_of_range)?;
            }
            SettingKey::OtpLength => {
                self.otp_length = u8::try_from(value)
                    .ok()
                    .and_then(|v| OtpLength::new(v).ok())
                    .ok_or(out_of_range)?;
            }
            SettingKey::OtpCsrfValidMinutes => self.otp_csrf_valid_minutes = value,
            SettingKey::OtpRequestDelaySeconds => self.otp_request_delay_seconds = value,
            SettingKey::OtpValidSeconds => self.otp_valid_seconds = value,
            SettingKey::FailureDelayMs => self.failure_delay_ms = value,
            SettingKey::LockoutThreshold => self.lockout_threshold = value,
            SettingKey::LockoutMinutes => self.lockout_minutes = value,
            SettingKey::HotpWindow => self.hotp_window = value,
            SettingKey::TotpSkewSteps => self.totp_skew_steps = value,
            SettingKey::BypassEnabled | SettingKey::Autoreply | SettingKey::ValidatePassMode => {
                return Err(out_of_range)
            }
        }
        Ok(())
    }

    /// Applies several changes at once: all of them, or (on the first refusal) none.
    pub fn with_changes<'a>(
        &self,
        changes: impl IntoIterator<Item = (SettingKey, &'a str)>,
    ) -> Result<Self, SettingError> {
        let mut next = self.clone();
        for (key, text) in changes {
            next.set(key, text)?;
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_spec_section_2() {
        let s = Settings::default();
        assert_eq!(s.use_2fa(), Use2fa::Totp);
        assert!(!s.bypass_enabled());
        assert_eq!(s.otp_csrf_valid_minutes(), 30);
        assert_eq!(s.otp_length().get(), 6);
        assert_eq!(s.otp_request_delay_seconds(), 30);
        assert_eq!(s.otp_valid_seconds(), 900);
        assert_eq!(s.failure_delay_ms(), 500);
        assert_eq!(s.autoreply().as_str(), "no-reply@localhost");
        assert_eq!(s.lockout_threshold(), 5);
        assert_eq!(s.lockout_minutes(), 30);
        assert_eq!(s.hotp_window(), 10);
        assert_eq!(s.totp_skew_steps(), 1);
        assert_eq!(s.validate_pass_mode(), ValidatePassMode::Otp);
    }

    #[test]
    fn the_pass_mode_takes_its_two_words_only() {
        let mut s = Settings::default();
        s.set(SettingKey::ValidatePassMode, "password_otp").unwrap();
        assert_eq!(s.validate_pass_mode(), ValidatePassMode::PasswordOtp);
        assert_eq!(s.get(SettingKey::ValidatePassMode), "password_otp");
        s.set(SettingKey::ValidatePassMode, " otp ").unwrap();
        assert_eq!(s.validate_pass_mode(), ValidatePassMode::Otp);
        for wrong in ["", "OTP", "password", "otp_password"] {
            let error = s.set(SettingKey::ValidatePassMode, wrong).unwrap_err();
            assert_eq!(
                error.to_string(),
                "Validate Pass Mode must be one of: otp, password_otp"
            );
            assert_eq!(error.key(), Some(SettingKey::ValidatePassMode));
        }
        assert_eq!(s.validate_pass_mode(), ValidatePassMode::Otp);
        let SettingKind::Choice(choices) = SettingKey::ValidatePassMode.kind() else {
            unreachable!()
        };
        let names: Vec<&str> = ValidatePassMode::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(choices, names.as_slice());
    }

    #[test]
    fn every_number_accepts_its_bounds_and_refuses_one_past() {
        for key in SettingKey::ALL {
            let SettingKind::Number { min, max } = key.kind() else {
                continue;
            };
            let mut s = Settings::default();
            s.set(key, &min.to_string()).unwrap();
            assert_eq!(s.get(key), min.to_string());
            s.set(key, &max.to_string()).unwrap();
            assert_eq!(s.get(key), max.to_string());
            let before = s.clone();
            if min > 0 {
                assert_eq!(
                    s.set(key, &(min - 1).to_string()),
                    Err(SettingError::OutOfRange { key, min, max })
                );
            }
            assert_eq!(
                s.set(key, &(u64::from(max) + 1).to_string()),
                Err(SettingError::OutOfRange { key, min, max })
            );
            assert_eq!(
                s.set(key, "-1"),
                Err(SettingError::OutOfRange { key, min, max })
            );
            assert_eq!(
                s.set(key, "12abc"),
                Err(SettingError::OutOfRange { key, min, max })
            );
            assert_eq!(
                s.set(key, "99999999999999999999"),
                Err(SettingError::OutOfRange { key, min, max })
            );
            assert_eq!(s, before, "{key:?}: a refused value changes nothing");
        }
    }

    #[test]
    fn spec_ranges_are_the_ones_enforced() {
        let range = |key: SettingKey| match key.kind() {
            SettingKind::Number { min, max } => (min, max),
            _ => unreachable!(),
        };
        assert_eq!(range(SettingKey::Use2fa), (1, 3));
        assert_eq!(range(SettingKey::OtpCsrfValidMinutes), (1, 1440));
        assert_eq!(range(SettingKey::OtpLength), (6, 20));
        assert_eq!(range(SettingKey::OtpRequestDelaySeconds), (0, 3600));
        assert_eq!(range(SettingKey::OtpValidSeconds), (30, 86_400));
        assert_eq!(range(SettingKey::FailureDelayMs), (0, 10_000));
        assert_eq!(range(SettingKey::LockoutThreshold), (1, 100));
        assert_eq!(range(SettingKey::HotpWindow), (0, 100));
        assert_eq!(range(SettingKey::TotpSkewSteps), (0, 2));
    }

    #[test]
    fn flags_and_emails_are_parsed() {
        let mut s = Settings::default();
        s.set(SettingKey::BypassEnabled, "on").unwrap();
        assert!(s.bypass_enabled());
        assert_eq!(s.get(SettingKey::BypassEnabled), "true");
        s.set(SettingKey::BypassEnabled, "FALSE").unwrap();
        assert!(!s.bypass_enabled());
        assert_eq!(
            s.set(SettingKey::BypassEnabled, "maybe"),
            Err(SettingError::NotAFlag {
                key: SettingKey::BypassEnabled
            })
        );
        s.set(SettingKey::Autoreply, "mfa@hospital.example")
            .unwrap();
        assert_eq!(s.autoreply().as_str(), "mfa@hospital.example");
        assert_eq!(
            s.set(SettingKey::Autoreply, "not an email"),
            Err(SettingError::NotAnEmail {
                key: SettingKey::Autoreply
            })
        );
        assert_eq!(s.autoreply().as_str(), "mfa@hospital.example");
    }

    #[test]
    fn with_changes_is_all_or_nothing() {
        let s = Settings::default();
        let refused = s.with_changes([
            (SettingKey::OtpLength, "8"),
            (SettingKey::TotpSkewSteps, "3"),
        ]);
        assert_eq!(
            refused,
            Err(SettingError::OutOfRange {
                key: SettingKey::TotpSkewSteps,
                min: 0,
                max: 2
            })
        );
        let changed = s
            .with_changes([(SettingKey::OtpLength, "8"), (SettingKey::Use2fa, "3")])
            .unwrap();
        assert_eq!(changed.otp_length().get(), 8);
        assert_eq!(changed.use_2fa(), Use2fa::Both);
    }

    #[test]
    fn names_round_trip_and_errors_name_the_setting() {
        for key in SettingKey::ALL {
            assert_eq!(SettingKey::parse(key.name()), Some(key));
            assert!(!key.help().is_empty());
        }
        assert_eq!(SettingKey::parse("Use 2FA"), None);
        let message = SettingError::OutOfRange {
            key: SettingKey::OtpLength,
            min: 6,
            max: 20,
        }
        .to_string();
        assert_eq!(
            message,
            "OTP Length must be a whole number between 6 and 20"
        );
    }
}
