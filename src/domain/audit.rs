//! What the audit log records (SPEC section 7): the events, by the names they are stored
//! and filtered under, and an entry as read back. The log itself is `store::audit`.

use crate::clock::Timestamp;

/// An entry of the log, as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// The entry's position in the log (newer entries have larger ids).
    pub id: i64,
    pub at: Timestamp,
    /// The event's stored name: an [`AuditEvent`] name ([`AuditEntry::event`] parses it),
    /// or a name this version does not know (written by a newer one).
    pub event: String,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub client_ip: Option<String>,
    /// Before/after values or an internal reason; never a password, code or secret.
    pub detail: String,
}

impl AuditEntry {
    /// The event, if this version knows its name.
    pub fn event(&self) -> Option<AuditEvent> {
        AuditEvent::parse(&self.event)
    }
}

/// What happened. Stored by name ([`AuditEvent::as_str`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuditEvent {
    SignInSucceeded,
    SignInFailed,
    OtpSent,
    OtpAccepted,
    OtpRefused,
    Locked,
    Unlocked,
    DeviceEnrolled,
    DeviceDisabled,
    PasswordChanged,
    UserCreated,
    UserChanged,
    UserDeleted,
    RoleChanged,
    SettingChanged,
    IpRuleChanged,
    TemplateChanged,
    EmailDead,
    ApiTokenCreated,
    /// A signed-in user started setting up a device on the account page (the old one, if
    /// any, keeps working until the new one is confirmed).
    DeviceSetupStarted,
    /// A signed-in user ended their other sessions on the account page.
    OtherSessionsEnded,
    RecoveryCodesGenerated,
    RecoveryCodeUsed,
    RecoveryCodesRevoked,
    /// SPEC 13: an OpenID Connect client was registered, changed or removed.
    ApplicationCreated,
    ApplicationChanged,
    ApplicationDeleted,
    /// An application received a code for a signed-in user (SPEC 13).
    ApplicationSignIn,
    /// What an application was issued is revoked: a code used twice, or a refresh token
    /// used after it was replaced.
    ApplicationTokensRevoked,
    /// `twostep oidc rotate-key`: a new signing key for ID tokens.
    SigningKeyRotated,
    /// A security key or passkey was registered (SPEC 14).
    SecurityKeyAdded,
    /// A security key was removed (by its user or an administrator).
    SecurityKeyRemoved,
    /// A security key was renamed.
    SecurityKeyRenamed,
    /// An administrator issued a temporary access code (SPEC 15); the detail has the
    /// reason, minutes and uses, never the code.
    TemporaryAccessIssued,
    /// A temporary access code was revoked.
    TemporaryAccessRevoked,
    /// A temporary access code stood in for the second factor at a sign-in.
    TemporaryAccessUsed,
}

impl AuditEvent {
    pub const ALL: [Self; 36] = [
        Self::SignInSucceeded,
        Self::SignInFailed,
        Self::OtpSent,
        Self::OtpAccepted,
        Self::OtpRefused,
        Self::Locked,
        Self::Unlocked,
        Self::DeviceEnrolled,
        Self::DeviceDisabled,
        Self::PasswordChanged,
        Self::UserCreated,
        Self::UserChanged,
        Self::UserDeleted,
        Self::RoleChanged,
        Self::SettingChanged,
        Self::IpRuleChanged,
        Self::TemplateChanged,
        Self::EmailDead,
        Self::ApiTokenCreated,
        Self::DeviceSetupStarted,
        Self::OtherSessionsEnded,
        Self::RecoveryCodesGenerated,
        Self::RecoveryCodeUsed,
        Self::RecoveryCodesRevoked,
        Self::ApplicationCreated,
        Self::ApplicationChanged,
        Self::ApplicationDeleted,
        Self::ApplicationSignIn,
        Self::ApplicationTokensRevoked,
        Self::SigningKeyRotated,
        Self::SecurityKeyAdded,
        Self::SecurityKeyRemoved,
        Self::SecurityKeyRenamed,
        Self::TemporaryAccessIssued,
        Self::TemporaryAccessRevoked,
        Self::TemporaryAccessUsed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignInSucceeded => "signin_succeeded",
            Self::SignInFailed => "signin_failed",
            Self::OtpSent => "otp_sent",
            Self::OtpAccepted => "otp_accepted",
            Self::OtpRefused => "otp_refused",
            Self::Locked => "locked",
            Self::Unlocked => "unlocked",
            Self::DeviceEnrolled => "device_enrolled",
            Self::DeviceDisabled => "device_disabled",
            Self::PasswordChanged => "password_changed",
            Self::UserCreated => "user_created",
            Self::UserChanged => "user_changed",
            Self::UserDeleted => "user_deleted",
            Self::RoleChanged => "role_changed",
            Self::SettingChanged => "setting_changed",
            Self::IpRuleChanged => "ip_rule_changed",
            Self::TemplateChanged => "template_changed",
            Self::EmailDead => "email_dead",
            Self::ApiTokenCreated => "api_token_created",
            Self::DeviceSetupStarted => "device_setup_started",
            Self::OtherSessionsEnded => "other_sessions_ended",
            Self::RecoveryCodesGenerated => "recovery_codes_generated",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::RecoveryCodesRevoked => "recovery_codes_revoked",
            Self::ApplicationCreated => "application_created",
            Self::ApplicationChanged => "application_changed",
            Self::ApplicationDeleted => "application_deleted",
            Self::ApplicationSignIn => "application_sign_in",
            Self::ApplicationTokensRevoked => "application_tokens_revoked",
            Self::SigningKeyRotated => "signing_key_rotated",
            Self::SecurityKeyAdded => "security_key_added",
            Self::SecurityKeyRemoved => "security_key_removed",
            Self::SecurityKeyRenamed => "security_key_renamed",
            Self::TemporaryAccessIssued => "temporary_access_issued",
            Self::TemporaryAccessRevoked => "temporary_access_revoked",
            Self::TemporaryAccessUsed => "temporary_access_used",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|event| event.as_str() == text)
    }

    /// The event in plain language, as the console shows it (SPEC section 11).
    pub fn label(self) -> &'static str {
        match self {
            Self::SignInSucceeded => "Signed in",
            Self::SignInFailed => "Sign-in failed",
            Self::OtpSent => "Code sent by email",
            Self::OtpAccepted => "Code accepted",
            Self::OtpRefused => "Code refused",
            Self::Locked => "Account locked",
            Self::Unlocked => "Account unlocked",
            Self::DeviceEnrolled => "2-step device set up",
            Self::DeviceDisabled => "2-step device removed",
            Self::PasswordChanged => "Password changed",
            Self::UserCreated => "User created",
            Self::UserChanged => "User changed",
            Self::UserDeleted => "User deleted",
            Self::RoleChanged => "Security role changed",
            Self::SettingChanged => "System setting changed",
            Self::IpRuleChanged => "IP rule changed",
            Self::TemplateChanged => "Email template changed",
            Self::EmailDead => "Email not delivered",
            Self::ApiTokenCreated => "API token created",
            Self::DeviceSetupStarted => "2-step device set-up started",
            Self::OtherSessionsEnded => "Other sessions signed out",
            Self::RecoveryCodesGenerated => "Recovery codes generated",
            Self::RecoveryCodeUsed => "Recovery code used",
            Self::RecoveryCodesRevoked => "Recovery codes revoked",
            Self::ApplicationCreated => "Application added",
            Self::ApplicationChanged => "Application changed",
            Self::ApplicationDeleted => "Application removed",
            Self::ApplicationSignIn => "Signed in to an application",
            Self::ApplicationTokensRevoked => "Application tokens revoked",
            Self::SigningKeyRotated => "Signing key rotated",
            Self::SecurityKeyAdded => "Security key added",
            Self::SecurityKeyRemoved => "Security key removed",
            Self::SecurityKeyRenamed => "Security key renamed",
            Self::TemporaryAccessIssued => "Temporary access code issued",
            Self::TemporaryAccessRevoked => "Temporary access code revoked",
            Self::TemporaryAccessUsed => "Temporary access code used",
        }
    }
}

/// The plain label of a stored event name; a name this version does not know is shown as
/// stored.
pub fn event_label(stored: &str) -> &str {
    match AuditEvent::parse(stored) {
        Some(event) => event.label(),
        None => stored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_has_one_name_that_parses_back() {
        let mut names = std::collections::HashSet::new();
        for event in AuditEvent::ALL {
            assert!(names.insert(event.as_str()), "{event:?}");
            assert_eq!(AuditEvent::parse(event.as_str()), Some(event));
        }
        assert_eq!(AuditEvent::parse("nothing"), None);
    }

    /// SPEC section 11: the audit log shows plain-language events; every event has its
    /// own label, none is the stored name, and an unknown name is shown as stored.
    #[test]
    fn every_event_has_a_distinct_plain_label_and_unknown_names_show_as_stored() {
        let mut labels = std::collections::HashSet::new();
        for event in AuditEvent::ALL {
            let label = event.label();
            assert!(!label.is_empty(), "{event:?}");
            assert!(!label.contains('_'), "{event:?}: {label}");
            assert!(
                label.starts_with(|c: char| c.is_uppercase() || c.is_ascii_digit()),
                "{label}"
            );
            assert!(labels.insert(label), "{event:?}: {label} is used twice");
            assert_eq!(event_label(event.as_str()), label);
        }
        assert_eq!(AuditEvent::SignInSucceeded.label(), "Signed in");
        assert_eq!(AuditEvent::SignInFailed.label(), "Sign-in failed");
        assert_eq!(AuditEvent::OtpSent.label(), "Code sent by email");
        assert_eq!(AuditEvent::Locked.label(), "Account locked");
        assert_eq!(event_label("from_a_newer_version"), "from_a_newer_version");
    }
}
