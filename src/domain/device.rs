//! 2FA devices: methods, the Use 2FA setting and the prompt mode (SPEC sections 1 and 5).

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

#[cfg(test)]
mod tests {
    use super::*;

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
