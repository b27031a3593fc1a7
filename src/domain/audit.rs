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
}

impl AuditEvent {
    pub const ALL: [Self; 19] = [
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
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|event| event.as_str() == text)
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
}
