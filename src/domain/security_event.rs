//! The security events a user is told about by email (SPEC section 10, "Security
//! notifications"): one email template per event, in template module "Security".

/// The template module of the security notifications (the seed's "module" column).
pub const SECURITY_MODULE: &str = "Security";

/// Something that happened to a user's account and that the user should hear about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SecurityEvent {
    /// A 2-step verification device was confirmed (by the user or an administrator).
    DeviceAdded,
    /// The user's device was removed.
    DeviceRemoved,
    /// A new set of recovery codes replaced the earlier ones.
    RecoveryCodesGenerated,
    /// A recovery code was used to sign in.
    RecoveryCodeUsed,
    /// Failed attempts locked the account.
    AccountLocked,
    /// The user changed their password.
    PasswordChanged,
    /// An administrator set a new password for the user.
    PasswordReset,
    /// A security key or passkey was registered to the account (SPEC 14).
    KeyAdded,
    /// A security key was removed from the account.
    KeyRemoved,
    /// The service desk issued a temporary access code for the account (SPEC 15).
    TemporaryAccessIssued,
}

impl SecurityEvent {
    pub const ALL: [Self; 10] = [
        Self::DeviceAdded,
        Self::DeviceRemoved,
        Self::RecoveryCodesGenerated,
        Self::RecoveryCodeUsed,
        Self::AccountLocked,
        Self::PasswordChanged,
        Self::PasswordReset,
        Self::KeyAdded,
        Self::KeyRemoved,
        Self::TemporaryAccessIssued,
    ];

    /// The template's name in module [`SECURITY_MODULE`]: "Device Added", ...
    pub fn template_name(self) -> &'static str {
        match self {
            Self::DeviceAdded => "Device Added",
            Self::DeviceRemoved => "Device Removed",
            Self::RecoveryCodesGenerated => "Recovery Codes Generated",
            Self::RecoveryCodeUsed => "Recovery Code Used",
            Self::AccountLocked => "Account Locked",
            Self::PasswordChanged => "Password Changed",
            Self::PasswordReset => "Password Reset",
            Self::KeyAdded => "Security Key Added",
            Self::KeyRemoved => "Security Key Removed",
            Self::TemporaryAccessIssued => "Temporary Access Issued",
        }
    }

    /// The stable name in the API and the console's addresses: `device_added`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DeviceAdded => "device_added",
            Self::DeviceRemoved => "device_removed",
            Self::RecoveryCodesGenerated => "recovery_codes_generated",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::AccountLocked => "account_locked",
            Self::PasswordChanged => "password_changed",
            Self::PasswordReset => "password_reset",
            Self::KeyAdded => "key_added",
            Self::KeyRemoved => "key_removed",
            Self::TemporaryAccessIssued => "temporary_access_issued",
        }
    }

    /// The event of a stable name ([`SecurityEvent::as_str`]).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|event| event.as_str() == name)
    }
}

impl std::fmt::Display for SecurityEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_parse_back() {
        let mut names = std::collections::HashSet::new();
        let mut templates = std::collections::HashSet::new();
        for event in SecurityEvent::ALL {
            assert_eq!(SecurityEvent::parse(event.as_str()), Some(event));
            assert!(names.insert(event.as_str()));
            assert!(templates.insert(event.template_name()));
        }
        assert_eq!(SecurityEvent::parse("Device Added"), None);
        assert_eq!(SecurityEvent::parse(""), None);
    }

    #[test]
    fn the_templates_live_in_module_security() {
        assert_eq!(SECURITY_MODULE, "Security");
        assert_eq!(SecurityEvent::DeviceAdded.template_name(), "Device Added");
        assert_eq!(SecurityEvent::PasswordReset.as_str(), "password_reset");
    }
}
