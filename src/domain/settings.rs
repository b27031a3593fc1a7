//! System settings (SPEC section 2): typed, each with its range, label and help text.
//!
//! A [`Settings`] value is always valid: it starts from the defaults and changes only
//! through [`Settings::set`], which checks the setting's range. Every setting has one text
//! form, used in storage, on the command line and in forms.

use crate::domain::device::Use2fa;
use crate::domain::role::Permission;
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
    HelpText,
    NotifyUsers,
    SecurityKeys,
    SecurityOfficerEmail,
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
    /// An email address; `optional`: or empty (none).
    Email { optional: bool },
    /// One of these words.
    Choice(&'static [&'static str]),
    /// Plain text of at most `max_chars` characters; line breaks are the only control
    /// characters allowed (a form's CRLF is stored as LF).
    Text { max_chars: u32 },
}

/// One setting's row of [`SETTINGS`]: everything the parsing, the forms, the OpenAPI
/// schema, the command line and the README say about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SettingSpec {
    pub key: SettingKey,
    /// The snake_case name of SPEC section 9 (API fields, CLI, storage).
    pub name: &'static str,
    /// The name an administrator knows from the seed.
    pub label: &'static str,
    /// What the setting holds, with its range or choices.
    pub kind: SettingKind,
    /// The default's text form (SPEC section 2).
    pub default: &'static str,
    /// Help text, in the seed's words where the seed has them.
    pub help: &'static str,
    /// The permission needed to change it (SPEC section 6).
    pub permission: Permission,
}

const fn number(min: u32, max: u32) -> SettingKind {
    SettingKind::Number { min, max }
}

/// Every system setting, in [`SettingKey`]'s order (checked when compiling).
pub const SETTINGS: [SettingSpec; 17] = [
    SettingSpec {
        key: SettingKey::Use2fa,
        name: "use_2fa",
        label: "Use 2FA",
        kind: number(1, 3),
        default: "2",
        help: "Which one-time password methods users may set up: 1 HOTP (counter based) only, 2 TOTP (time based) only, 3 the user chooses. TOTP is recommended; HOTP suits users who have difficulty typing a code quickly or whose device does not reliably keep the current time.",
        permission: Permission::ManageSystemSettings,
    },
    SettingSpec {
        key: SettingKey::BypassEnabled,
        name: "bypass_enabled",
        label: "Enable Bypass 2FA OTP",
        kind: SettingKind::Flag,
        default: "false",
        help: "When enabled, users whose device is detected as having an IP address within a configured \"In Network\" location may skip the OTP prompt, unless they chose \"Every Login (Maximum Security)\" for their device. Review with your network security department first.",
        permission: Permission::Manage2faBypass,
    },
    SettingSpec {
        key: SettingKey::OtpCsrfValidMinutes,
        name: "otp_csrf_valid_minutes",
        label: "OTP CSRF Valid Minutes",
        kind: number(1, 1440),
        default: "30",
        help: "The maximum amount of time that a user may continue to request OTPs before they must re-enter their username and password. Tightens the window of time when replay attacks are available against the user's account.",
        permission: Permission::ManageSystemSettings,
    },
    SettingSpec {
        key: SettingKey::OtpLength,
        name: "otp_length",
        label: "OTP Length",
        kind: number(OtpLength::MIN as u32, OtpLength::MAX as u32),
        default: "6",
        help: "The number of characters in a system-generated (emailed) OTP. A longer OTP, up to 20 characters, further increases the difficulty of attacks on a user account.",
        permission: Permission::ManageSystemSettings,
    },
    SettingSpec {
        key: SettingKey::OtpRequestDelaySeconds,
        name: "otp_request_delay_seconds",
        label: "OTP Request Delay Seconds",
        kind: number(0, 3600),
        default: "30",
        help: "The minimum amount of time which must elapse before an additional OTP request may be made. Rate-limits a potential attacker forcing OTPs on an account.",
        permission: Permission::ManageSystemSettings,
    },
    SettingSpec {
        key: SettingKey::OtpValidSeconds,
        name: "otp_valid_seconds",
        label: "OTP Valid Seconds",
        kind: number(30, 86_400),
        default: "900",
        help: "The maximum amount of time during which a generated OTP will be accepted before it expires. Entering an expired OTP counts as a sign-in failure and may lock the account.",
        permission: Permission::ManageSystemSettings,
    },
    SettingSpec {
        key: SettingKey::FailureDelayMs,
        name: "failure_delay_ms",
        label: "Failure Delay (ms)",
        kind: number(0, 10_000),
        default: "500",
        help: "A minimum processing duration for a failed credential check, to mitigate timing attacks. Keep it close to the duration of a successful sign-in.",
        permission: Permission::ManageSystemSettings,
    },
    SettingSpec {
        key: SettingKey::Autoreply,
        name: "autoreply",
        label: "Autoreply",
        kind: SettingKind::Email { optional: false },
        default: "no-reply@localhost",
        help: "The sending 'from' email address of OTP notification messages.",
        permission: Permission::ManageSystemSettings,
    },
    SettingSpec {
        key: SettingKey::LockoutThreshold,
        name: "lockout_threshold",
        label: "Lockout Threshold",
        kind: number(1, 100),
        default: "5",
        help: "Consecutive failed sign-ins (wrong password, wrong or expired OTP) that lock the account. A successful sign-in resets the count.",
        permission: Permission::ManageSystemSettings,
    },
    SettingSpec {
        key: SettingKey::LockoutMinutes,
        name: "lockout_minutes",
        label: "Lockout Minutes",
        kind: number(0, 525_600),
        default: "30",
        help: "How long a locked account stays locked; 0 keeps it locked until an administrator unlocks it.",
        permission: Permission::ManageSystemSettings,
    },
    SettingSpec {
        key: SettingKey::HotpWindow,
        name: "hotp_window",
        label: "HOTP Look-ahead Window",
        kind: number(0, 100),
        default: "10",
        help: "How many HOTP counter values ahead of the expected one are accepted; a success resynchronizes the device.",
        permission: Permission::ManageSystemSettings,
    },
    SettingSpec {
        key: SettingKey::TotpSkewSteps,
        name: "totp_skew_steps",
        label: "TOTP Skew Steps",
        kind: number(0, 2),
        default: "1",
        help: "How many 30-second time steps before and after the current one are accepted, for devices whose clock is slightly off.",
        permission: Permission::ManageSystemSettings,
    },
    SettingSpec {
        key: SettingKey::ValidatePassMode,
        name: "validate_pass_mode",
        label: "Validate Pass Mode",
        kind: SettingKind::Choice(PASS_MODES),
        default: "otp",
        help: "What systems using the privacyIDEA-compatible /validate/check send as the password: otp = the one-time password only (the system checked the password itself); password_otp = the twostep password followed by the one-time password, and twostep applies the whole sign-in policy.",
        permission: Permission::ManageSystemSettings,
    },
    SettingSpec {
        key: SettingKey::HelpText,
        name: "help_text",
        label: "Help Text",
        kind: SettingKind::Text {
            max_chars: HELP_TEXT_MAX_CHARS,
        },
        default: "",
        help: "Shown on the sign-in page and on every error page of the sign-in flow, e.g. the service desk's phone number. Plain text, at most 500 characters; line breaks are kept.",
        permission: Permission::ManageSystemSettings,
    },
    SettingSpec {
        key: SettingKey::NotifyUsers,
        name: "notify_users",
        label: "Notify Users",
        kind: SettingKind::Flag,
        default: "true",
        help: "When enabled, users with an email address are told by email when a 2-step verification device is added or removed, recovery codes are generated or one is used, their account is locked, or their password is changed or reset. The emails (templates in module Security) never contain a code or secret.",
        permission: Permission::ManageSystemSettings,
    },
    SettingSpec {
        key: SettingKey::SecurityKeys,
        name: "security_keys",
        label: "Security Keys",
        kind: SettingKind::Flag,
        default: "true",
        help: "When enabled, users may set up security keys and passkeys (FIDO2, WebAuthn) beside an authenticator app, and sign in with them. Keys need twostep's public URL (--public-url): the key is bound to its host name. Keys already set up keep working only while this is enabled.",
        permission: Permission::ManageSystemSettings,
    },
    SettingSpec {
        key: SettingKey::SecurityOfficerEmail,
        name: "security_officer_email",
        label: "Security Officer Email",
        kind: SettingKind::Email { optional: true },
        default: "",
        help: "Who is emailed, besides the user, when the service desk issues a temporary access code (who issued it, for whom, why, for how long). Empty: nobody besides the user.",
        permission: Permission::ManageSystemSettings,
    },
];

/// The longest Help Text (SPEC section 11).
pub const HELP_TEXT_MAX_CHARS: u32 = 500;

// Row `i` of the table is the setting whose discriminant is `i`, so that
// `SettingKey::spec` can index it: a table out of order does not compile.
const _: () = {
    let mut i = 0;
    while i < SETTINGS.len() {
        assert!(
            SETTINGS[i].key as usize == i,
            "SETTINGS is in SettingKey's order"
        );
        i += 1;
    }
};

impl SettingKey {
    /// Every setting, in the table's order.
    pub const ALL: [Self; SETTINGS.len()] = {
        let mut all = [Self::Use2fa; SETTINGS.len()];
        let mut i = 0;
        while i < SETTINGS.len() {
            all[i] = SETTINGS[i].key;
            i += 1;
        }
        all
    };

    /// The setting's row of [`SETTINGS`].
    pub fn spec(self) -> &'static SettingSpec {
        &SETTINGS[self as usize]
    }

    /// The snake_case name of SPEC section 9 (API fields, CLI, storage).
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|key| key.name() == name)
    }

    /// The name an administrator knows from the seed.
    pub fn label(self) -> &'static str {
        self.spec().label
    }

    /// Help text, in the seed's words where the seed has them.
    pub fn help(self) -> &'static str {
        self.spec().help
    }

    pub fn kind(self) -> SettingKind {
        self.spec().kind
    }

    /// The default's text form (SPEC section 2).
    pub fn default(self) -> &'static str {
        self.spec().default
    }

    /// The permission needed to change the setting.
    pub fn permission(self) -> Permission {
        self.spec().permission
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
    #[error("{label} must be at most {max_chars} characters", label = key.label())]
    TooLong { key: SettingKey, max_chars: u32 },
    #[error("{label} must be plain text: no control characters other than line breaks", label = key.label())]
    ControlCharacter { key: SettingKey },
}

impl SettingError {
    /// The setting concerned, if the key was known.
    pub fn key(&self) -> Option<SettingKey> {
        match self {
            Self::UnknownKey(_) => None,
            Self::OutOfRange { key, .. }
            | Self::NotAFlag { key }
            | Self::NotAnEmail { key }
            | Self::NotAChoice { key, .. }
            | Self::TooLong { key, .. }
            | Self::ControlCharacter { key } => Some(*key),
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
    help_text: String,
    notify_users: bool,
    security_keys: bool,
    security_officer_email: Option<Email>,
}

impl Default for Settings {
    /// SPEC section 2's defaults: the table's, each parsed as [`Settings::set`] parses it.
    fn default() -> Self {
        // Valid values to start from, each replaced by the table's default below.
        let mut settings = Self {
            use_2fa: Use2fa::DEFAULT,
            bypass_enabled: false,
            otp_csrf_valid_minutes: 1,
            otp_length: OtpLength::DEFAULT,
            otp_request_delay_seconds: 0,
            otp_valid_seconds: 30,
            failure_delay_ms: 0,
            autoreply: Email(String::from("no-reply@localhost")),
            lockout_threshold: 1,
            lockout_minutes: 0,
            hotp_window: 0,
            totp_skew_steps: 0,
            validate_pass_mode: ValidatePassMode::Otp,
            help_text: String::new(),
            notify_users: true,
            security_keys: true,
            security_officer_email: None,
        };
        for spec in &SETTINGS {
            // Every default parses (tests::every_default_parses_to_spec_section_2); a
            // refused one would leave the valid starting value.
            let _parsed = settings.set(spec.key, spec.default);
        }
        settings
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
    /// Plain text (escape it in HTML); may hold line breaks (`\n`); empty by default.
    pub fn help_text(&self) -> &str {
        &self.help_text
    }
    /// Whether users are emailed about security events on their account (SPEC section 10).
    pub fn notify_users(&self) -> bool {
        self.notify_users
    }
    /// Whether security keys and passkeys may be set up and used (SPEC section 14).
    pub fn security_keys(&self) -> bool {
        self.security_keys
    }
    /// Who hears of each temporary access code besides its user (SPEC section 15).
    pub fn security_officer_email(&self) -> Option<&Email> {
        self.security_officer_email.as_ref()
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
            SettingKey::HelpText => self.help_text.clone(),
            SettingKey::NotifyUsers => self.notify_users.to_string(),
            SettingKey::SecurityKeys => self.security_keys.to_string(),
            SettingKey::SecurityOfficerEmail => self
                .security_officer_email
                .as_ref()
                .map(|email| email.as_str().to_owned())
                .unwrap_or_default(),
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
                match key {
                    SettingKey::BypassEnabled => self.bypass_enabled = flag,
                    SettingKey::NotifyUsers => self.notify_users = flag,
                    SettingKey::SecurityKeys => self.security_keys = flag,
                    // Only the Flag rows reach this arm.
                    other => return Err(SettingError::NotAFlag { key: other }),
                }
                Ok(())
            }
            SettingKind::Email { optional } => {
                let email = match (optional, text.is_empty()) {
                    (true, true) => None,
                    _ => Some(Email::parse(text).map_err(|_| SettingError::NotAnEmail { key })?),
                };
                match (key, email) {
                    (SettingKey::SecurityOfficerEmail, email) => {
                        self.security_officer_email = email;
                    }
                    (SettingKey::Autoreply, Some(email)) => self.autoreply = email,
                    _ => return Err(SettingError::NotAnEmail { key }),
                }
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
            SettingKind::Text { max_chars } => {
                let text = text.replace("\r\n", "\n");
                if text.chars().any(|c| c.is_control() && c != '\n') {
                    return Err(SettingError::ControlCharacter { key });
                }
                if text.chars().count() > max_chars as usize {
                    return Err(SettingError::TooLong { key, max_chars });
                }
                match key {
                    SettingKey::HelpText => self.help_text = text,
                    _ => return Err(SettingError::TooLong { key, max_chars }),
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
            SettingKey::BypassEnabled
            | SettingKey::Autoreply
            | SettingKey::ValidatePassMode
            | SettingKey::HelpText
            | SettingKey::NotifyUsers
            | SettingKey::SecurityKeys
            | SettingKey::SecurityOfficerEmail => return Err(out_of_range),
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
        assert_eq!(s.help_text(), "");
        assert!(s.notify_users());
    }

    /// SPEC 15 / 19: `security_officer_email` is empty by default, takes an address, and
    /// empty again; a malformed address is refused and changes nothing.
    #[test]
    fn the_security_officer_email_is_optional() {
        let mut s = Settings::default();
        assert_eq!(s.security_officer_email(), None);
        assert_eq!(s.get(SettingKey::SecurityOfficerEmail), "");
        s.set(SettingKey::SecurityOfficerEmail, " ciso@hospital.example ")
            .unwrap();
        assert_eq!(
            s.security_officer_email().map(Email::as_str),
            Some("ciso@hospital.example")
        );
        assert_eq!(
            s.set(SettingKey::SecurityOfficerEmail, "not an address"),
            Err(SettingError::NotAnEmail {
                key: SettingKey::SecurityOfficerEmail
            })
        );
        assert_eq!(
            s.get(SettingKey::SecurityOfficerEmail),
            "ciso@hospital.example"
        );
        s.set(SettingKey::SecurityOfficerEmail, "").unwrap();
        assert_eq!(s.security_officer_email(), None);
        // The autoreply address is not optional.
        assert!(s.set(SettingKey::Autoreply, "").is_err());
        assert_eq!(s.autoreply().as_str(), "no-reply@localhost");
    }

    /// SPEC section 11: plain text up to 500 characters, line breaks kept (a form's CRLF
    /// as LF), no other control character; a refusal changes nothing.
    #[test]
    fn the_help_text_takes_500_characters_of_plain_text_with_line_breaks() {
        let mut s = Settings::default();
        let longest = "é".repeat(500);
        s.set(SettingKey::HelpText, &longest).unwrap();
        assert_eq!(s.help_text(), longest);
        let before = s.clone();
        assert_eq!(
            s.set(SettingKey::HelpText, &"a".repeat(501)),
            Err(SettingError::TooLong {
                key: SettingKey::HelpText,
                max_chars: 500
            })
        );
        for control in ["a\tb", "a\u{0}b", "bell\u{7}", "a\rb", "\u{1b}[31m"] {
            assert_eq!(
                s.set(SettingKey::HelpText, control),
                Err(SettingError::ControlCharacter {
                    key: SettingKey::HelpText
                }),
                "{control:?}"
            );
        }
        assert_eq!(s, before, "a refused text changes nothing");
        s.set(SettingKey::HelpText, "Service desk\r\nPhone 4444")
            .unwrap();
        assert_eq!(s.help_text(), "Service desk\nPhone 4444");
        assert_eq!(s.get(SettingKey::HelpText), "Service desk\nPhone 4444");
        s.set(SettingKey::HelpText, "").unwrap();
        assert_eq!(s.help_text(), "");
    }

    #[test]
    fn the_default_of_every_setting_is_the_tables_text() {
        let defaults = Settings::default();
        for key in SettingKey::ALL {
            assert_eq!(defaults.get(key), key.default(), "{}", key.name());
        }
    }

    #[test]
    fn every_default_parses_on_its_own_and_lies_within_its_range() {
        for spec in &SETTINGS {
            let mut s = Settings::default();
            s.set(spec.key, spec.default)
                .unwrap_or_else(|e| panic!("{}: {e}", spec.name));
            assert_eq!(s.get(spec.key), spec.default, "{}: canonical", spec.name);
            match spec.kind {
                SettingKind::Number { min, max } => {
                    assert!(min <= max, "{}", spec.name);
                    let value: u32 = spec.default.parse().unwrap();
                    assert!((min..=max).contains(&value), "{}", spec.name);
                }
                SettingKind::Choice(choices) => {
                    assert!(choices.contains(&spec.default), "{}", spec.name)
                }
                SettingKind::Text { max_chars } => {
                    assert!(spec.default.chars().count() <= max_chars as usize)
                }
                SettingKind::Flag | SettingKind::Email { .. } => {}
            }
        }
    }

    #[test]
    fn the_table_names_each_setting_once_under_a_unique_name() {
        let mut names: Vec<&str> = SETTINGS.iter().map(|spec| spec.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SETTINGS.len(), "names are unique");
        let mut labels: Vec<&str> = SETTINGS.iter().map(|spec| spec.label).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), SETTINGS.len(), "labels are unique");
        for (i, key) in SettingKey::ALL.into_iter().enumerate() {
            assert_eq!(
                SettingKey::ALL.iter().filter(|k| **k == key).count(),
                1,
                "{key:?} once in ALL"
            );
            assert_eq!(SETTINGS[i].key, key);
            assert_eq!(key.spec().key, key);
            assert!(
                names.iter().all(|name| name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')),
                "snake case"
            );
        }
    }

    #[test]
    fn only_the_bypass_needs_manage_2fa_bypass() {
        for key in SettingKey::ALL {
            let needed = match key {
                SettingKey::BypassEnabled => Permission::Manage2faBypass,
                _ => Permission::ManageSystemSettings,
            };
            assert_eq!(key.permission(), needed, "{}", key.name());
        }
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
