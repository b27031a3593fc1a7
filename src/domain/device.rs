//! 2FA devices: methods, the Use 2FA setting and the prompt mode (SPEC sections 1 and 5).

use crate::clock::Timestamp;
use crate::otp::{Algorithm, Digits, Hotp, KeyUri, KeyUriKind, OtpCode, OtpSecret, Period, Totp};

/// How a device makes codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OtpMethod {
    /// Counter-based (RFC 4226): a new code each time the user asks the app.
    Hotp,
    /// Time-based (RFC 6238): a new code every 30 seconds.
    Totp,
}

impl OtpMethod {
    /// The wire and storage name: `hotp`, `totp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hotp => "hotp",
            Self::Totp => "totp",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "hotp" => Some(Self::Hotp),
            "totp" => Some(Self::Totp),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Hotp => "HOTP (counter based)",
            Self::Totp => "TOTP (time based)",
        }
    }
}

/// The Use 2FA system setting: which methods enrollment offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Use2fa {
    /// Value 1: HOTP only.
    Hotp,
    /// Value 2: TOTP only (the default, as the seed recommends).
    Totp,
    /// Value 3: the user chooses.
    Both,
}

impl Use2fa {
    pub const DEFAULT: Self = Self::Totp;

    /// The setting's number, 1 to 3, as the seed names it.
    pub fn value(self) -> u8 {
        match self {
            Self::Hotp => 1,
            Self::Totp => 2,
            Self::Both => 3,
        }
    }

    pub fn from_value(value: u8) -> Option<Self> {
        match value {
            1 => Some(Self::Hotp),
            2 => Some(Self::Totp),
            3 => Some(Self::Both),
            _ => None,
        }
    }

    /// The methods offered at enrollment, TOTP first (the recommended one).
    pub fn methods(self) -> &'static [OtpMethod] {
        match self {
            Self::Hotp => &[OtpMethod::Hotp],
            Self::Totp => &[OtpMethod::Totp],
            Self::Both => &[OtpMethod::Totp, OtpMethod::Hotp],
        }
    }

    pub fn allows(self, method: OtpMethod) -> bool {
        self.methods().contains(&method)
    }
}

/// The device option chosen at set-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PromptMode {
    /// "Every Login (Maximum Security)": always ask for the code, even in network.
    EveryLogin,
    /// "When the system deems appropriate (More Security)": in-network bypass may skip it.
    WhenAppropriate,
}

impl PromptMode {
    /// The wire and storage name: `every_login`, `when_appropriate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EveryLogin => "every_login",
            Self::WhenAppropriate => "when_appropriate",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "every_login" => Some(Self::EveryLogin),
            "when_appropriate" => Some(Self::WhenAppropriate),
            _ => None,
        }
    }

    /// The seed's radio-button label, word for word.
    pub fn label(self) -> &'static str {
        match self {
            Self::EveryLogin => "Every Login (Maximum Security)",
            Self::WhenAppropriate => "When the system deems appropriate (More Security)",
        }
    }
}

/// A device's row id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(pub i64);

/// Pending until the user enters a code from it ("Complete Setup"); only a confirmed
/// device is ever used for sign-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceState {
    Pending,
    Confirmed,
}

impl DeviceState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "confirmed" => Some(Self::Confirmed),
            _ => None,
        }
    }
}

/// The generator of a device and where it stands: the next HOTP counter, or the last
/// TOTP step accepted.
#[derive(Clone, Debug)]
pub enum DeviceOtp {
    Hotp { hotp: Hotp, counter: u64 },
    Totp { totp: Totp, last_step: Option<u64> },
}

/// A 2FA device of one user.
#[derive(Clone, Debug)]
pub struct Device {
    pub id: DeviceId,
    pub user_id: crate::domain::user::UserId,
    pub state: DeviceState,
    pub prompt_mode: PromptMode,
    pub otp: DeviceOtp,
}

/// What an accepted code consumes; the store applies it only if the device has not moved
/// past it meanwhile (another request, another server instance).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceUse {
    /// HOTP: counter `matched` was used; the next expected counter becomes `matched + 1`.
    Hotp { matched: u64 },
    /// TOTP: time step `step` was used; no step at or below it is accepted again.
    Totp { step: u64 },
}

impl Device {
    pub fn method(&self) -> OtpMethod {
        match self.otp {
            DeviceOtp::Hotp { .. } => OtpMethod::Hotp,
            DeviceOtp::Totp { .. } => OtpMethod::Totp,
        }
    }

    /// Checks `code` at `now` with the HOTP look-ahead `window` and the TOTP `skew`
    /// (SPEC section 4, "Device OTP"). Pure: the caller consumes the returned use.
    pub fn check(
        &self,
        code: &OtpCode,
        now: Timestamp,
        window: u32,
        skew: u8,
    ) -> Option<DeviceUse> {
        match &self.otp {
            DeviceOtp::Hotp { hotp, counter } => hotp
                .verify(code, *counter, u64::from(window))
                .map(|matched| DeviceUse::Hotp { matched }),
            DeviceOtp::Totp { totp, last_step } => totp
                .verify(code, now.unix_seconds(), skew, *last_step)
                .map(|step| DeviceUse::Totp { step }),
        }
    }

    /// The key URI an app scans to add this device.
    pub fn key_uri(&self, issuer: &str, account: &str) -> KeyUri {
        let (kind, secret, algorithm, digits) = match &self.otp {
            DeviceOtp::Hotp { hotp, counter } => (
                KeyUriKind::Hotp { counter: *counter },
                hotp.secret.clone(),
                hotp.algorithm,
                hotp.digits,
            ),
            DeviceOtp::Totp { totp, .. } => (
                KeyUriKind::Totp {
                    period: totp.period,
                },
                totp.secret.clone(),
                totp.algorithm,
                totp.digits,
            ),
        };
        KeyUri {
            kind,
            issuer: Some(issuer.to_owned()),
            account: account.to_owned(),
            secret,
            algorithm,
            digits,
        }
    }
}

/// The generator of a device being set up: what every authenticator app expects
/// (SHA-1, 6 digits, 30 s, counter 0) with a fresh 160-bit secret.
pub fn new_device_otp(method: OtpMethod, secret: OtpSecret) -> DeviceOtp {
    match method {
        OtpMethod::Hotp => DeviceOtp::Hotp {
            hotp: Hotp {
                secret,
                algorithm: Algorithm::Sha1,
                digits: Digits::SIX,
            },
            counter: 0,
        },
        OtpMethod::Totp => DeviceOtp::Totp {
            totp: Totp {
                secret,
                algorithm: Algorithm::Sha1,
                digits: Digits::SIX,
                period: Period::DEFAULT,
            },
            last_step: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> OtpSecret {
        OtpSecret::from_bytes(b"12345678901234567890".to_vec()).unwrap()
    }

    fn device(otp: DeviceOtp) -> Device {
        Device {
            id: DeviceId(1),
            user_id: crate::domain::user::UserId(1),
            state: DeviceState::Confirmed,
            prompt_mode: PromptMode::EveryLogin,
            otp,
        }
    }

    #[test]
    fn a_totp_device_check_returns_the_step_to_consume() {
        let device = device(new_device_otp(OtpMethod::Totp, secret()));
        let DeviceOtp::Totp { totp, .. } = &device.otp else {
            unreachable!()
        };
        let now = Timestamp::from_millis(1_700_000_000_000);
        let code = totp.generate_at(now.unix_seconds());
        let step = now.unix_seconds() / 30;
        assert_eq!(
            device.check(&code, now, 10, 1),
            Some(DeviceUse::Totp { step })
        );
        assert_eq!(device.method(), OtpMethod::Totp);
    }

    #[test]
    fn a_hotp_device_check_returns_the_counter_to_consume() {
        let device = device(new_device_otp(OtpMethod::Hotp, secret()));
        let DeviceOtp::Hotp { hotp, .. } = &device.otp else {
            unreachable!()
        };
        assert_eq!(
            device.check(&hotp.generate(3), Timestamp::from_millis(0), 10, 1),
            Some(DeviceUse::Hotp { matched: 3 })
        );
        assert_eq!(
            device.check(&hotp.generate(11), Timestamp::from_millis(0), 10, 1),
            None
        );
        assert_eq!(device.method(), OtpMethod::Hotp);
    }

    #[test]
    fn new_devices_use_what_every_app_expects() {
        let uri = device(new_device_otp(OtpMethod::Totp, secret())).key_uri("twostep", "jane");
        assert_eq!(
            uri.to_uri(),
            "otpauth://totp/twostep:jane?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=twostep&algorithm=SHA1&digits=6&period=30"
        );
        let uri = device(new_device_otp(OtpMethod::Hotp, secret())).key_uri("twostep", "jane");
        assert!(uri.to_uri().ends_with("&algorithm=SHA1&digits=6&counter=0"));
        for state in [DeviceState::Pending, DeviceState::Confirmed] {
            assert_eq!(DeviceState::parse(state.as_str()), Some(state));
        }
    }

    #[test]
    fn use_2fa_values_follow_the_seed() {
        assert_eq!(Use2fa::from_value(1), Some(Use2fa::Hotp));
        assert_eq!(Use2fa::from_value(2), Some(Use2fa::Totp));
        assert_eq!(Use2fa::from_value(3), Some(Use2fa::Both));
        assert_eq!(Use2fa::from_value(0), None);
        assert_eq!(Use2fa::from_value(4), None);
        assert_eq!(Use2fa::DEFAULT.value(), 2);
        for use_2fa in [Use2fa::Hotp, Use2fa::Totp, Use2fa::Both] {
            assert_eq!(Use2fa::from_value(use_2fa.value()), Some(use_2fa));
        }
    }

    #[test]
    fn use_2fa_offers_the_allowed_methods() {
        assert_eq!(Use2fa::Hotp.methods(), &[OtpMethod::Hotp]);
        assert_eq!(Use2fa::Totp.methods(), &[OtpMethod::Totp]);
        assert_eq!(Use2fa::Both.methods(), &[OtpMethod::Totp, OtpMethod::Hotp]);
        assert!(!Use2fa::Totp.allows(OtpMethod::Hotp));
        assert!(Use2fa::Both.allows(OtpMethod::Hotp));
    }

    #[test]
    fn names_round_trip_and_labels_match_the_seed() {
        for mode in [PromptMode::EveryLogin, PromptMode::WhenAppropriate] {
            assert_eq!(PromptMode::parse(mode.as_str()), Some(mode));
        }
        for method in [OtpMethod::Hotp, OtpMethod::Totp] {
            assert_eq!(OtpMethod::parse(method.as_str()), Some(method));
        }
        assert_eq!(OtpMethod::parse("TOTP"), None);
        assert_eq!(
            PromptMode::EveryLogin.label(),
            "Every Login (Maximum Security)"
        );
        assert_eq!(
            PromptMode::WhenAppropriate.label(),
            "When the system deems appropriate (More Security)"
        );
    }
}
