//! Security roles and their permissions (SPEC sections 1, 3 and 6).

/// The Require 2FA role permission: device enrollment policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Require2fa {
    /// Username and password only; 2FA is not used.
    No,
    /// After the password, offer set-up with "Set up later"; ask again at every sign-in.
    Encourage,
    /// After the password, set-up is required.
    Force,
}

impl Require2fa {
    /// The wire and storage name: `no`, `encourage`, `force`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::No => "no",
            Self::Encourage => "encourage",
            Self::Force => "force",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "no" => Some(Self::No),
            "encourage" => Some(Self::Encourage),
            "force" => Some(Self::Force),
            _ => None,
        }
    }

    /// The seed's label: No, Encourage, Force.
    pub fn label(self) -> &'static str {
        match self {
            Self::No => "No",
            Self::Encourage => "Encourage",
            Self::Force => "Force",
        }
    }
}

/// The parts of a role that the sign-in decision reads. It can only be built through
/// [`RoleSecurity::new`], which enforces the seed's WARNING: an interface role never
/// requires 2FA nor an emailed OTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RoleSecurity {
    require_2fa: Require2fa,
    otp_required: bool,
    interface: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RoleSecurityError {
    #[error("an interface role cannot require 2FA: set Require 2FA to No")]
    InterfaceRequires2fa,
    #[error("an interface role cannot require an emailed OTP: set OTP Required to No")]
    InterfaceRequiresOtp,
}

impl RoleSecurity {
    pub fn new(
        require_2fa: Require2fa,
        otp_required: bool,
        interface: bool,
    ) -> Result<Self, RoleSecurityError> {
        if interface && require_2fa != Require2fa::No {
            return Err(RoleSecurityError::InterfaceRequires2fa);
        }
        if interface && otp_required {
            return Err(RoleSecurityError::InterfaceRequiresOtp);
        }
        Ok(Self {
            require_2fa,
            otp_required,
            interface,
        })
    }

    pub fn require_2fa(self) -> Require2fa {
        self.require_2fa
    }

    pub fn otp_required(self) -> bool {
        self.otp_required
    }

    pub fn interface(self) -> bool {
        self.interface
    }
}

/// The permissions of SPEC section 6, besides Require 2FA and OTP Required.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    ManageUsers,
    ManageRoles,
    ManageSystemSettings,
    Manage2faBypass,
    ManageIpSettings,
    ViewAuditLog,
    VerifyOtp,
    /// SPEC 13: the OpenID Connect client registry ("Applications").
    ManageApplications,
}

impl Permission {
    pub const ALL: [Self; 8] = [
        Self::ManageUsers,
        Self::ManageRoles,
        Self::ManageSystemSettings,
        Self::Manage2faBypass,
        Self::ManageIpSettings,
        Self::ViewAuditLog,
        Self::VerifyOtp,
        Self::ManageApplications,
    ];

    /// The snake_case name of SPEC section 9.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ManageUsers => "manage_users",
            Self::ManageRoles => "manage_roles",
            Self::ManageSystemSettings => "manage_system_settings",
            Self::Manage2faBypass => "manage_2fa_bypass",
            Self::ManageIpSettings => "manage_ip_settings",
            Self::ViewAuditLog => "view_audit_log",
            Self::VerifyOtp => "verify_otp",
            Self::ManageApplications => "manage_applications",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// The name an administrator reads on the role page.
    pub fn label(self) -> &'static str {
        match self {
            Self::ManageUsers => "Manage Users",
            Self::ManageRoles => "Manage Roles",
            Self::ManageSystemSettings => "Manage System Settings",
            Self::Manage2faBypass => "Manage 2FA Bypass",
            Self::ManageIpSettings => "Manage IP Settings",
            Self::ViewAuditLog => "View Audit Log",
            Self::VerifyOtp => "Verify OTP",
            Self::ManageApplications => "Manage Applications",
        }
    }
}

/// A role's row id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoleId(pub i64);

/// A role's name: 1 to 64 characters, no control characters; unique case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RoleName(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RoleNameError {
    #[error("enter a role name")]
    Empty,
    #[error("a role name has at most 64 characters")]
    TooLong,
    #[error("a role name cannot contain control characters or /")]
    InvalidCharacter,
}

impl RoleName {
    pub fn parse(text: &str) -> Result<Self, RoleNameError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(RoleNameError::Empty);
        }
        if text.chars().count() > 64 {
            return Err(RoleNameError::TooLong);
        }
        // `/` is refused so that a name is always one URL path segment.
        if text.chars().any(|c| c.is_control() || c == '/') {
            return Err(RoleNameError::InvalidCharacter);
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-insensitive key that makes names unique.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl std::fmt::Display for RoleName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// SPEC 15: how long a session of a role's user may live: `idle_minutes` without a
/// request (1 to 1440, default 30) and `max_hours` after the sign-in (1 to 168, default 12).
/// It can only be built within those ranges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SessionLimits {
    idle_minutes: u32,
    max_hours: u32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionLimitsError {
    #[error("session idle minutes must be between 1 and 1440")]
    IdleMinutes,
    #[error("session max hours must be between 1 and 168")]
    MaxHours,
}

impl SessionLimits {
    pub const IDLE_MINUTES: std::ops::RangeInclusive<u32> = 1..=1440;
    pub const MAX_HOURS: std::ops::RangeInclusive<u32> = 1..=168;
    /// SPEC 15's defaults: 30 minutes idle, 12 hours at most.
    pub const DEFAULT: Self = Self {
        idle_minutes: 30,
        max_hours: 12,
    };
    /// The longest a session of any role can live (168 hours), in seconds.
    pub const LONGEST_SECONDS: i64 = 168 * 3600;

    pub fn new(idle_minutes: i64, max_hours: i64) -> Result<Self, SessionLimitsError> {
        Ok(Self {
            idle_minutes: Self::idle(idle_minutes)?,
            max_hours: Self::max(max_hours)?,
        })
    }

    /// A form's or the command line's text, both numbers.
    pub fn parse(idle_minutes: &str, max_hours: &str) -> Result<Self, SessionLimitsError> {
        let idle = idle_minutes
            .trim()
            .parse::<i64>()
            .map_err(|_| SessionLimitsError::IdleMinutes)?;
        let max = max_hours
            .trim()
            .parse::<i64>()
            .map_err(|_| SessionLimitsError::MaxHours)?;
        Self::new(idle, max)
    }

    fn idle(minutes: i64) -> Result<u32, SessionLimitsError> {
        u32::try_from(minutes)
            .ok()
            .filter(|m| Self::IDLE_MINUTES.contains(m))
            .ok_or(SessionLimitsError::IdleMinutes)
    }

    fn max(hours: i64) -> Result<u32, SessionLimitsError> {
        u32::try_from(hours)
            .ok()
            .filter(|h| Self::MAX_HOURS.contains(h))
            .ok_or(SessionLimitsError::MaxHours)
    }

    /// These limits with the idle minutes changed.
    pub fn with_idle_minutes(self, minutes: i64) -> Result<Self, SessionLimitsError> {
        Ok(Self {
            idle_minutes: Self::idle(minutes)?,
            ..self
        })
    }

    /// These limits with the max hours changed.
    pub fn with_max_hours(self, hours: i64) -> Result<Self, SessionLimitsError> {
        Ok(Self {
            max_hours: Self::max(hours)?,
            ..self
        })
    }

    pub fn idle_minutes(self) -> u32 {
        self.idle_minutes
    }

    pub fn max_hours(self) -> u32 {
        self.max_hours
    }

    pub fn idle_seconds(self) -> i64 {
        i64::from(self.idle_minutes) * 60
    }

    pub fn max_seconds(self) -> i64 {
        i64::from(self.max_hours) * 3600
    }
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A security role: every user has exactly one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    pub id: RoleId,
    pub name: RoleName,
    pub security: RoleSecurity,
    pub permissions: std::collections::BTreeSet<Permission>,
    /// SPEC 15: the sessions of the role's users.
    pub session_limits: SessionLimits,
}

impl Role {
    pub fn has(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interface_role_requiring_2fa_is_refused() {
        for require in [Require2fa::Encourage, Require2fa::Force] {
            assert_eq!(
                RoleSecurity::new(require, false, true),
                Err(RoleSecurityError::InterfaceRequires2fa)
            );
        }
    }

    #[test]
    fn an_interface_role_requiring_an_emailed_otp_is_refused() {
        assert_eq!(
            RoleSecurity::new(Require2fa::No, true, true),
            Err(RoleSecurityError::InterfaceRequiresOtp)
        );
    }

    #[test]
    fn an_interface_role_without_2fa_or_otp_is_accepted() {
        let role = RoleSecurity::new(Require2fa::No, false, true).unwrap();
        assert!(role.interface());
        assert_eq!(role.require_2fa(), Require2fa::No);
        assert!(!role.otp_required());
    }

    #[test]
    fn person_roles_accept_every_combination() {
        for require in [Require2fa::No, Require2fa::Encourage, Require2fa::Force] {
            for otp in [false, true] {
                let role = RoleSecurity::new(require, otp, false).unwrap();
                assert_eq!((role.require_2fa(), role.otp_required()), (require, otp));
            }
        }
    }

    #[test]
    fn role_names_are_trimmed_and_keyed_case_insensitively() {
        let name = RoleName::parse("  Night Nurses ").unwrap();
        assert_eq!(name.as_str(), "Night Nurses");
        assert_eq!(name.key(), RoleName::parse("NIGHT NURSES").unwrap().key());
        assert_eq!(RoleName::parse(" "), Err(RoleNameError::Empty));
        assert_eq!(
            RoleName::parse(&"r".repeat(65)),
            Err(RoleNameError::TooLong)
        );
        assert_eq!(RoleName::parse("a/b"), Err(RoleNameError::InvalidCharacter));
        assert_eq!(
            RoleName::parse("a\tb"),
            Err(RoleNameError::InvalidCharacter)
        );
    }

    #[test]
    fn names_round_trip() {
        for require in [Require2fa::No, Require2fa::Encourage, Require2fa::Force] {
            assert_eq!(Require2fa::parse(require.as_str()), Some(require));
        }
        assert_eq!(Require2fa::parse("Force"), None);
        for permission in Permission::ALL {
            assert_eq!(Permission::parse(permission.as_str()), Some(permission));
        }
        assert_eq!(Permission::parse("root"), None);
    }

    /// SPEC 15: the session limits keep to their ranges, at both ends, and default to
    /// 30 minutes idle and 12 hours.
    #[test]
    fn session_limits_keep_to_their_ranges() {
        assert_eq!(
            SessionLimits::default(),
            SessionLimits::new(30, 12).unwrap()
        );
        let ends = SessionLimits::new(1, 1).unwrap();
        assert_eq!((ends.idle_minutes(), ends.max_hours()), (1, 1));
        let ends = SessionLimits::new(1440, 168).unwrap();
        assert_eq!((ends.idle_seconds(), ends.max_seconds()), (86_400, 604_800));
        for idle in [0, 1441, -1, i64::MAX] {
            assert_eq!(
                SessionLimits::new(idle, 12),
                Err(SessionLimitsError::IdleMinutes)
            );
        }
        for max in [0, 169, -5] {
            assert_eq!(
                SessionLimits::new(30, max),
                Err(SessionLimitsError::MaxHours)
            );
        }
        assert_eq!(
            SessionLimits::parse("ten", "12"),
            Err(SessionLimitsError::IdleMinutes)
        );
        assert_eq!(
            SessionLimits::parse("10", "1.5"),
            Err(SessionLimitsError::MaxHours)
        );
        assert_eq!(
            SessionLimits::parse(" 10 ", "2").unwrap(),
            SessionLimits::new(10, 2).unwrap()
        );
        let changed = SessionLimits::DEFAULT.with_idle_minutes(10).unwrap();
        assert_eq!((changed.idle_minutes(), changed.max_hours()), (10, 12));
        assert_eq!(
            changed.with_max_hours(169),
            Err(SessionLimitsError::MaxHours)
        );
        assert_eq!(
            SessionLimitsError::IdleMinutes.to_string(),
            "session idle minutes must be between 1 and 1440"
        );
    }

    /// SPEC 13: the client registry's permission, `manage_applications`, is named and
    /// labelled like the others, and sorts last, so that a stored list only grows at its end.
    #[test]
    fn manage_applications_is_a_permission() {
        let permission = Permission::parse("manage_applications").unwrap();
        assert_eq!(permission, Permission::ManageApplications);
        assert_eq!(permission.label(), "Manage Applications");
        assert_eq!(Permission::ALL.iter().max(), Some(&permission));
    }
}
