//! Plain domain types: every SPEC noun, parsed once and valid from then on.
//!
//! No I/O here. Storage rows and wire bodies are separate types that convert to and from
//! these.

pub mod attention;
pub mod audit;
pub mod audit_chain;
pub mod device;
pub mod directory;
pub mod domain_name;
pub mod ip;
pub mod lockout;
pub mod oidc;
pub mod password_rules;
pub mod recovery;
pub mod role;
pub mod security_event;
pub mod security_key;
pub mod settings;
pub mod signin;
pub mod temporary_access;
pub mod user;

pub use audit::{AuditEntry, AuditEvent};
pub use device::{
    new_device_otp, Device, DeviceId, DeviceOtp, DeviceState, DeviceUse, OtpMethod, PromptMode,
    Use2fa,
};
pub use directory::{
    ad_data_code, escape_filter_value, normalize_dn, user_account_control_disabled,
    AttributeNameError, BindAnswer, BindRefusal, DirectoryAttributes, DirectoryEntry, LdapScheme,
    LdapTransport, LdapTransportError, LdapUrl, LdapUrlError, RoleMap, RoleMapError, UserFilter,
    UserFilterError, ACTIVE_DIRECTORY_USER_FILTER, OPENLDAP_USER_FILTER,
};
pub use domain_name::{host_of, DomainName, DomainNameError};
pub use ip::{in_network, ClientAddress, IpNetwork, IpNetworkError, IpRule};
pub use lockout::{FailureCounts, LockedBy, Lockout, HARD_LIMIT};
pub use password_rules::{check_new_password, PasswordContext, PasswordProblem};
pub use recovery::{generate_set, RecoveryCode, RecoveryCodeError, RECOVERY_CODES_PER_SET};
pub use role::{
    Permission, Require2fa, Role, RoleId, RoleName, RoleNameError, RoleSecurity, RoleSecurityError,
    SessionLimits, SessionLimitsError,
};
pub use security_event::{SecurityEvent, SECURITY_MODULE};
pub use security_key::{
    counter_accepts, may_add_key, strictest_prompt_mode, KeyName, KeyNameError, SecurityKey,
    SecurityKeyId, MAX_SECURITY_KEYS,
};
pub use settings::{
    SettingError, SettingKey, SettingKind, SettingSpec, Settings, ValidatePassMode, SETTINGS,
};
pub use signin::{
    EmailedOtp, EmailedOtpId, PendingStep, Session, SessionId, SignInTransaction, TransactionId,
    TransactionKind,
};
pub use temporary_access::{
    TemporaryAccess, TemporaryAccessCode, TemporaryAccessCodeError, TemporaryAccessTerms,
    TemporaryAccessTermsError,
};
pub use user::{
    DirectoryLink, DisplayName, DisplayNameError, Email, EmailError, User, UserId, UserSource,
    Username, UsernameError,
};
