//! Directory sign-in (SPEC section 12): the pure rules of looking a user up in LDAP or
//! Active Directory and reading the directory's answers.
//!
//! Nothing here talks to a directory: the filter a search sends ([`UserFilter`], with RFC
//! 4515 escaping), which role a user's groups give ([`RoleMap`]), what a refused bind means
//! ([`BindAnswer`], [`BindRefusal`], with Active Directory's `data XXX` sub-codes), what a
//! found entry says ([`DirectoryEntry`]) and where the directory is ([`LdapUrl`], with the
//! rule that a password never crosses the network in clear text by accident).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::domain::role::{RoleName, RoleNameError};
use crate::domain::user::{DisplayName, Email, Username};

// ---------------------------------------------------------------------------------------
// Filters (RFC 4515)
// ---------------------------------------------------------------------------------------

/// SPEC 12's default user filter, for OpenLDAP and FreeIPA.
pub const OPENLDAP_USER_FILTER: &str = "(&(objectClass=inetOrgPerson)(uid={username}))";

/// SPEC 12's user filter for Active Directory.
pub const ACTIVE_DIRECTORY_USER_FILTER: &str = "(&(objectClass=user)(sAMAccountName={username}))";

/// The placeholder a user filter template holds exactly once.
pub const USERNAME_PLACEHOLDER: &str = "{username}";

/// An assertion value escaped per RFC 4515 section 3, so that whatever a user types is
/// matched literally and can never add a wildcard or a clause to a filter: `*` is `\2a`,
/// `(` is `\28`, `)` is `\29`, `\` is `\5c`, NUL is `\00`, and every other control
/// character (ASCII 0x01 to 0x1f and 0x7f, and the C1 controls U+0080 to U+009F) is
/// escaped byte by byte too. Other UTF-8 is kept as it is (RFC 4515's `UTFMB`).
pub fn escape_filter_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '*' | '(' | ')' | '\\' | '\0') || c.is_control() {
            let mut bytes = [0u8; 4];
            for byte in c.encode_utf8(&mut bytes).bytes() {
                escaped.push_str(&format!("\\{byte:02x}"));
            }
        } else {
            escaped.push(c);
        }
    }
    escaped
}

/// The search filter that finds a user's entry (`--ldap-user-filter`): a template such as
/// [`OPENLDAP_USER_FILTER`], one parenthesised filter holding [`USERNAME_PLACEHOLDER`]
/// exactly once, which [`UserFilter::for_username`] replaces with the escaped username.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserFilter(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserFilterError {
    #[error("the user filter is empty; for OpenLDAP use {OPENLDAP_USER_FILTER}")]
    Empty,
    #[error("the user filter has more than {max} characters", max = UserFilter::MAX_LENGTH)]
    TooLong,
    #[error("the user filter cannot contain control characters")]
    ControlCharacter,
    #[error("the user filter must start with ( and end with ), like {OPENLDAP_USER_FILTER}")]
    NotParenthesised,
    #[error("the user filter's parentheses are not balanced")]
    Unbalanced,
    #[error("the user filter must be one filter; combine several with (&...), like {OPENLDAP_USER_FILTER}")]
    SeveralFilters,
    #[error("the user filter must contain {USERNAME_PLACEHOLDER}, like {OPENLDAP_USER_FILTER}")]
    MissingPlaceholder,
    #[error("the user filter must contain {USERNAME_PLACEHOLDER} only once (found {0})")]
    RepeatedPlaceholder(usize),
}

impl UserFilter {
    pub const MAX_LENGTH: usize = 1024;

    /// Parses a template. Checked: not empty, at most [`Self::MAX_LENGTH`] characters, no
    /// control character, one filter from its first `(` to its last `)` with balanced
    /// parentheses, and `{username}` exactly once. Not checked: that attribute names
    /// exist or that `{username}` sits in a value (the directory answers that).
    pub fn parse(template: &str) -> Result<Self, UserFilterError> {
        let template = template.trim();
        if template.is_empty() {
            return Err(UserFilterError::Empty);
        }
        if template.chars().count() > Self::MAX_LENGTH {
            return Err(UserFilterError::TooLong);
        }
        if template.chars().any(char::is_control) {
            return Err(UserFilterError::ControlCharacter);
        }
        if !template.starts_with('(') || !template.ends_with(')') {
            return Err(UserFilterError::NotParenthesised);
        }
        let mut depth: usize = 0;
        let mut closed_at_top = false;
        for c in template.chars() {
            match c {
                '(' => {
                    if closed_at_top {
                        return Err(UserFilterError::SeveralFilters);
                    }
                    depth += 1;
                }
                ')' => {
                    depth = depth.checked_sub(1).ok_or(UserFilterError::Unbalanced)?;
                    if depth == 0 {
                        closed_at_top = true;
                    }
                }
                _ if closed_at_top => return Err(UserFilterError::SeveralFilters),
                _ => {}
            }
        }
        if depth != 0 {
            return Err(UserFilterError::Unbalanced);
        }
        match template.matches(USERNAME_PLACEHOLDER).count() {
            0 => Err(UserFilterError::MissingPlaceholder),
            1 => Ok(Self(template.to_owned())),
            n => Err(UserFilterError::RepeatedPlaceholder(n)),
        }
    }

    /// The template as configured.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The filter that finds `username`'s entry.
    pub fn for_username(&self, username: &Username) -> String {
        self.for_value(username.as_str())
    }

    /// The filter with any text in place of `{username}`, escaped.
    fn for_value(&self, value: &str) -> String {
        self.0
            .replacen(USERNAME_PLACEHOLDER, &escape_filter_value(value), 1)
    }
}

impl Default for UserFilter {
    /// SPEC 12's default, [`OPENLDAP_USER_FILTER`].
    fn default() -> Self {
        Self(OPENLDAP_USER_FILTER.to_owned())
    }
}

impl std::fmt::Display for UserFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

// ---------------------------------------------------------------------------------------
// Group DNs and the role map
// ---------------------------------------------------------------------------------------

/// A DN in the form two DNs are compared in (RFC 4514, lightly): lower case (Unicode),
/// and without the whitespace around the separators `,`, `+` and `=` or at either end, so
/// `CN=Nurses, OU=Groups,DC=Hospital,DC=Example` and
/// `cn=nurses,ou=groups,dc=hospital,dc=example` are one group.
///
/// An escaped character (`\,`, `\ `, `\2C`) is part of its value: a `\,` is not a
/// separator and an escaped space is never trimmed. Not normalised: an escape and the
/// character it stands for (`\2C` and `\,`, `\4E` and `N`), hex-encoded values (`#04...`),
/// attribute OIDs and their names (`2.5.4.3` and `cn`), the order of a multi-valued RDN's
/// parts, `;` as an old separator, and spaces inside a value (kept as they are).
pub fn normalize_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    // `out[..kept]` may not be trimmed: it ends with an escape sequence or a separator.
    let mut kept = 0;
    let mut after_separator = true;
    let mut chars = dn.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push('\\');
                if let Some(next) = chars.next() {
                    out.extend(next.to_lowercase());
                }
                kept = out.len();
                after_separator = false;
            }
            ',' | '+' | '=' => {
                trim_end_after(&mut out, kept);
                out.push(c);
                kept = out.len();
                after_separator = true;
            }
            c if c.is_whitespace() && after_separator => {}
            c => {
                out.extend(c.to_lowercase());
                after_separator = false;
            }
        }
    }
    trim_end_after(&mut out, kept);
    out
}

fn trim_end_after(out: &mut String, kept: usize) {
    let trimmed = out.trim_end().len().max(kept);
    out.truncate(trimmed);
}

/// Whether `text` has the shape of a DN: one or more RDNs separated by unescaped `,`, each
/// of `type=value` parts (joined by `+`) with a non-empty type.
fn looks_like_dn(text: &str) -> bool {
    let normalized = normalize_dn(text);
    if normalized.is_empty() {
        return false;
    }
    split_unescaped(&normalized, ',').iter().all(|rdn| {
        split_unescaped(rdn, '+').iter().all(|part| {
            part.split_once('=')
                .is_some_and(|(kind, _)| !kind.is_empty() && !kind.contains('\\'))
        })
    })
}

fn split_unescaped(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == separator {
            parts.push(&text[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&text[start..]);
    parts
}

/// One `--ldap-role-map GROUP_DN=ROLE` item.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RoleMapping {
    /// As configured, for messages.
    group: String,
    /// [`normalize_dn`] of `group`.
    key: String,
    role: RoleName,
}

/// Which role a directory user's groups give (`--ldap-role-map GROUP_DN=ROLE`, repeatable):
/// the items in the order given, the first whose group the user is in wins.
///
/// An item is split at its **last** `=`: a DN is full of `=` (and a value may even hold an
/// unescaped one), a role name used here cannot contain one, so
/// `cn=Nurses,ou=Groups,dc=hospital,dc=example=Night Nurses` maps the group
/// `cn=Nurses,ou=Groups,dc=hospital,dc=example` to the role `Night Nurses`. A role whose
/// name contains `=` cannot be mapped. Groups are compared with [`normalize_dn`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleMap(Vec<RoleMapping>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RoleMapError {
    #[error("role map item \"{0}\" is not GROUP_DN=ROLE (like cn=Nurses,ou=Groups,dc=hospital,dc=example=Nurses)")]
    NotGroupEqualsRole(String),
    #[error("role map item \"{item}\": \"{group}\" (before the last =) is not a group DN like cn=Nurses,ou=Groups,dc=hospital,dc=example; an item is GROUP_DN=ROLE")]
    NotADn { item: String, group: String },
    #[error("role map item \"{item}\": {problem}")]
    BadRole {
        item: String,
        problem: RoleNameError,
    },
    #[error("the role map names the group \"{0}\" twice")]
    DuplicateGroup(String),
}

impl RoleMap {
    /// Parses the items in order. Each is trimmed; the group (before the last `=`) must be
    /// a DN, the role (after it) a valid role name; a group may appear only once (compared
    /// normalised), since a second item for it could never apply.
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self, RoleMapError> {
        let mut mappings: Vec<RoleMapping> = Vec::with_capacity(items.len());
        for item in items {
            let item = item.as_ref().trim();
            let shown = || item.chars().take(200).collect::<String>();
            let (group, role) = item
                .rsplit_once('=')
                .map(|(group, role)| (group.trim(), role.trim()))
                .filter(|(group, role)| !group.is_empty() && !role.is_empty())
                .ok_or_else(|| RoleMapError::NotGroupEqualsRole(shown()))?;
            if !looks_like_dn(group) {
                return Err(RoleMapError::NotADn {
                    item: shown(),
                    group: group.chars().take(200).collect(),
                });
            }
            let role = RoleName::parse(role).map_err(|problem| RoleMapError::BadRole {
                item: shown(),
                problem,
            })?;
            let key = normalize_dn(group);
            if mappings.iter().any(|mapping| mapping.key == key) {
                return Err(RoleMapError::DuplicateGroup(group.to_owned()));
            }
            mappings.push(RoleMapping {
                group: group.to_owned(),
                key,
                role,
            });
        }
        Ok(Self(mappings))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The items as `(group as configured, role)`, in order.
    pub fn items(&self) -> impl Iterator<Item = (&str, &RoleName)> {
        self.0
            .iter()
            .map(|mapping| (mapping.group.as_str(), &mapping.role))
    }

    /// The role of a user in `groups` (DNs as the directory lists them): the role of the
    /// first item, in the map's order, whose group is among them; else `default`
    /// (`--ldap-default-role`); `None` when neither applies: the user cannot sign in.
    pub fn role_for(&self, groups: &[String], default: Option<&str>) -> Option<String> {
        let keys: Vec<String> = groups.iter().map(|group| normalize_dn(group)).collect();
        self.0
            .iter()
            .find(|mapping| keys.contains(&mapping.key))
            .map(|mapping| mapping.role.as_str().to_owned())
            .or_else(|| default.map(str::to_owned))
    }

    /// The roles the map names, then `default` (`--ldap-default-role`), that are not
    /// among `known` (compared case-insensitively, as role names are unique), each once,
    /// in that order: start-up refuses a set-up naming a role that does not exist.
    pub fn unknown_roles(&self, default: Option<&RoleName>, known: &[&str]) -> Vec<String> {
        let known: Vec<String> = known
            .iter()
            .map(|name| name.trim().to_lowercase())
            .collect();
        let mut unknown: Vec<String> = Vec::new();
        let named = self.0.iter().map(|mapping| &mapping.role).chain(default);
        for role in named {
            if !known.contains(&role.key())
                && !unknown.iter().any(|seen| seen.to_lowercase() == role.key())
            {
                unknown.push(role.as_str().to_owned());
            }
        }
        unknown
    }
}

// ---------------------------------------------------------------------------------------
// Bind answers
// ---------------------------------------------------------------------------------------

/// LDAP result codes (RFC 4511 appendix A, and the client-side codes of the C API) that
/// twostep reads.
pub mod result_code {
    pub const SUCCESS: u32 = 0;
    pub const OPERATIONS_ERROR: u32 = 1;
    pub const PROTOCOL_ERROR: u32 = 2;
    pub const TIME_LIMIT_EXCEEDED: u32 = 3;
    pub const ADMIN_LIMIT_EXCEEDED: u32 = 11;
    pub const CONFIDENTIALITY_REQUIRED: u32 = 13;
    pub const CONSTRAINT_VIOLATION: u32 = 19;
    pub const NO_SUCH_OBJECT: u32 = 32;
    pub const INAPPROPRIATE_AUTHENTICATION: u32 = 48;
    pub const INVALID_CREDENTIALS: u32 = 49;
    pub const INSUFFICIENT_ACCESS_RIGHTS: u32 = 50;
    pub const BUSY: u32 = 51;
    pub const UNAVAILABLE: u32 = 52;
    pub const UNWILLING_TO_PERFORM: u32 = 53;
    pub const OTHER: u32 = 80;
    /// Client side: the connection was lost.
    pub const SERVER_DOWN: u32 = 81;
    /// Client side: no answer in time.
    pub const TIMEOUT: u32 = 85;
    /// Client side: could not connect.
    pub const CONNECT_ERROR: u32 = 91;
}

/// Active Directory's sub-codes, the `data XXX` (hexadecimal) in the diagnostic message of
/// an `invalidCredentials` (49) answer.
pub mod ad_data {
    /// Wrong password.
    pub const WRONG_PASSWORD: u32 = 0x52e;
    /// No such user.
    pub const NO_SUCH_USER: u32 = 0x525;
    /// Not permitted to sign in at this time.
    pub const NOT_PERMITTED_AT_THIS_TIME: u32 = 0x530;
    /// Not permitted to sign in at this workstation.
    pub const NOT_PERMITTED_AT_THIS_WORKSTATION: u32 = 0x531;
    pub const PASSWORD_EXPIRED: u32 = 0x532;
    pub const ACCOUNT_DISABLED: u32 = 0x533;
    pub const ACCOUNT_EXPIRED: u32 = 0x701;
    /// The user must change their password before signing in.
    pub const MUST_CHANGE_PASSWORD: u32 = 0x773;
    pub const ACCOUNT_LOCKED: u32 = 0x775;
}

/// What a bind as the user's entry answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindAnswer {
    /// The password is the entry's.
    Bound,
    /// The directory refused the bind.
    Refused(BindRefusal),
    /// The directory could not answer (busy, unavailable, timed out, connection lost):
    /// SPEC 12's `directory_unavailable`, not counted against the user.
    Unavailable(u32),
}

impl BindAnswer {
    /// Classifies a bind's result code and diagnostic message: 0 is [`Self::Bound`]; the
    /// codes that say the directory could not answer (1, 2, 3, 11, 51, 52, 80, and the
    /// client's 81, 85, 91) are [`Self::Unavailable`]; every other code is a refusal
    /// ([`BindRefusal::from_result`]).
    pub fn from_result(code: u32, diagnostic: &str) -> Self {
        use result_code::*;
        match code {
            SUCCESS => Self::Bound,
            OPERATIONS_ERROR | PROTOCOL_ERROR | TIME_LIMIT_EXCEEDED | ADMIN_LIMIT_EXCEEDED
            | BUSY | UNAVAILABLE | OTHER | SERVER_DOWN | TIMEOUT | CONNECT_ERROR => {
                Self::Unavailable(code)
            }
            _ => Self::Refused(BindRefusal::from_result(code, diagnostic)),
        }
    }
}

/// Why the directory refused a bind, as far as twostep distinguishes it. Only an expired
/// password and one that must be changed are told to the user ([`Self::own_message`]; AD
/// gives these only for the right password); every other refusal is the generic sign-in
/// failure, with [`Self::audit_reason`] in the audit log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindRefusal {
    /// Wrong password, or no such entry (plain 49; AD 52e and 525).
    WrongPassword,
    /// AD 532.
    PasswordExpired,
    /// AD 773: the password was reset and must be changed first.
    MustChangePassword,
    /// AD 775; 389-ds / FreeIPA "Exceed password retry limit" (19).
    LockedInDirectory,
    /// AD 533; 389-ds / FreeIPA "Account inactivated" (53).
    Disabled,
    /// AD 701.
    AccountExpired,
    /// AD 530 (logon hours) and 531 (allowed workstations): the directory's sign-in
    /// restrictions.
    NotPermittedNow,
    /// Any other refusal, with its LDAP result code.
    Other(u32),
}

/// The message of [`BindRefusal::PasswordExpired`] (SPEC 12).
pub const PASSWORD_EXPIRED_MESSAGE: &str =
    "Your password has expired. Please change your password in Windows first, then sign in here again.";

/// The message of [`BindRefusal::MustChangePassword`] (SPEC 12).
pub const MUST_CHANGE_PASSWORD_MESSAGE: &str =
    "Your password must be changed. Please change your password in Windows first, then sign in here again.";

impl BindRefusal {
    /// The refusal a non-zero result code and its diagnostic message mean. Code 49 reads
    /// Active Directory's `data XXX` ([`ad_data_code`]); without one, or with a sub-code not
    /// listed, it is [`Self::WrongPassword`]. 389-ds / FreeIPA's texts for a locked (19)
    /// and an inactivated (53) account are recognised; any other code is
    /// [`Self::Other`]. (Which codes are not refusals at all is [`BindAnswer::from_result`].)
    pub fn from_result(code: u32, diagnostic: &str) -> Self {
        use result_code::*;
        let lower = diagnostic.to_ascii_lowercase();
        match code {
            INVALID_CREDENTIALS => match ad_data_code(diagnostic) {
                Some(ad_data::PASSWORD_EXPIRED) => Self::PasswordExpired,
                Some(ad_data::MUST_CHANGE_PASSWORD) => Self::MustChangePassword,
                Some(ad_data::ACCOUNT_LOCKED) => Self::LockedInDirectory,
                Some(ad_data::ACCOUNT_DISABLED) => Self::Disabled,
                Some(ad_data::ACCOUNT_EXPIRED) => Self::AccountExpired,
                Some(
                    ad_data::NOT_PERMITTED_AT_THIS_TIME
                    | ad_data::NOT_PERMITTED_AT_THIS_WORKSTATION,
                ) => Self::NotPermittedNow,
                Some(_) | None => Self::WrongPassword,
            },
            CONSTRAINT_VIOLATION if lower.contains("retry limit") => Self::LockedInDirectory,
            UNWILLING_TO_PERFORM if lower.contains("inactivated") => Self::Disabled,
            _ => Self::Other(code),
        }
    }

    /// The message shown to the user in place of the generic refusal, if this refusal has
    /// its own: only [`Self::PasswordExpired`] and [`Self::MustChangePassword`] ("change
    /// your password in Windows first").
    pub const fn own_message(self) -> Option<&'static str> {
        match self {
            Self::PasswordExpired => Some(PASSWORD_EXPIRED_MESSAGE),
            Self::MustChangePassword => Some(MUST_CHANGE_PASSWORD_MESSAGE),
            Self::WrongPassword
            | Self::LockedInDirectory
            | Self::Disabled
            | Self::AccountExpired
            | Self::NotPermittedNow
            | Self::Other(_) => None,
        }
    }

    /// The reason the audit log records.
    /// (The result code of [`Self::Other`] goes to the service's log, not the audit text,
    /// whose texts are fixed.)
    pub const fn audit_reason(self) -> &'static str {
        match self {
            Self::WrongPassword => "wrong password (directory)",
            Self::PasswordExpired => "directory password expired",
            Self::MustChangePassword => "directory password must be changed",
            Self::LockedInDirectory => "locked in the directory",
            Self::Disabled => "disabled in the directory",
            Self::AccountExpired => "directory account expired",
            Self::NotPermittedNow => "the directory does not permit sign-in now or from here",
            Self::Other(_) => "directory refused the bind",
        }
    }
}

/// Active Directory's sub-code in a diagnostic message: the hexadecimal number after
/// `data ` (`80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data
/// 773, v4563` gives `0x773`).
pub fn ad_data_code(diagnostic: &str) -> Option<u32> {
    let lower = diagnostic.to_ascii_lowercase();
    let mut rest = lower.as_str();
    while let Some(at) = rest.find("data ") {
        let starts_word = at == 0 || !rest.as_bytes()[at - 1].is_ascii_alphanumeric();
        let after = &rest[at + "data ".len()..];
        let digits: &str = after
            .find(|c: char| !c.is_ascii_hexdigit())
            .map_or(after, |end| &after[..end]);
        if starts_word && !digits.is_empty() && digits.len() <= 8 {
            return u32::from_str_radix(digits, 16).ok();
        }
        rest = after;
    }
    None
}

// ---------------------------------------------------------------------------------------
// Entries
// ---------------------------------------------------------------------------------------

/// Active Directory's `userAccountControl` attribute.
pub const USER_ACCOUNT_CONTROL_ATTR: &str = "userAccountControl";

/// 389-ds / FreeIPA's `nsAccountLock` attribute (`TRUE`: the account is disabled).
pub const NS_ACCOUNT_LOCK_ATTR: &str = "nsAccountLock";

/// `userAccountControl`'s `ACCOUNTDISABLE` flag.
pub const ACCOUNTDISABLE: u32 = 0x2;

/// Whether an Active Directory `userAccountControl` value marks the account disabled
/// (bit 2, `ACCOUNTDISABLE`, 0x2).
pub const fn user_account_control_disabled(user_account_control: u32) -> bool {
    user_account_control & ACCOUNTDISABLE != 0
}

/// The configured attribute names of an entry (`--ldap-attr-name`, `--ldap-attr-email`,
/// `--ldap-group-attr`). LDAP compares attribute names case-insensitively, and so does
/// [`DirectoryEntry::from_attributes`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryAttributes {
    name_attr: String,
    email_attr: String,
    group_attr: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("\"{0}\" is not an LDAP attribute name (a letter, then letters, digits and hyphens, like memberOf)")]
pub struct AttributeNameError(pub String);

impl DirectoryAttributes {
    /// Each name is an attribute type (RFC 4512 `descr`: a letter, then letters, digits and
    /// `-`) or a numeric OID (`2.5.4.3`).
    pub fn new(
        name_attr: &str,
        email_attr: &str,
        group_attr: &str,
    ) -> Result<Self, AttributeNameError> {
        Ok(Self {
            name_attr: attribute_name(name_attr)?,
            email_attr: attribute_name(email_attr)?,
            group_attr: attribute_name(group_attr)?,
        })
    }

    pub fn name_attr(&self) -> &str {
        &self.name_attr
    }

    pub fn email_attr(&self) -> &str {
        &self.email_attr
    }

    pub fn group_attr(&self) -> &str {
        &self.group_attr
    }

    /// The attributes a user search asks for: the three configured ones and the two that
    /// say an account is disabled.
    pub fn requested(&self) -> Vec<&str> {
        vec![
            self.name_attr.as_str(),
            self.email_attr.as_str(),
            self.group_attr.as_str(),
            USER_ACCOUNT_CONTROL_ATTR,
            NS_ACCOUNT_LOCK_ATTR,
        ]
    }
}

impl Default for DirectoryAttributes {
    /// SPEC 12's defaults: `cn`, `mail`, `memberOf`.
    fn default() -> Self {
        Self {
            name_attr: "cn".to_owned(),
            email_attr: "mail".to_owned(),
            group_attr: "memberOf".to_owned(),
        }
    }
}

fn attribute_name(text: &str) -> Result<String, AttributeNameError> {
    let text = text.trim();
    let descr = text.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let oid = !text.is_empty()
        && text.split('.').all(|arc| {
            !arc.is_empty()
                && arc.bytes().all(|b| b.is_ascii_digit())
                && (arc == "0" || !arc.starts_with('0'))
        });
    if (descr || oid) && text.len() <= 128 {
        Ok(text.to_owned())
    } else {
        Err(AttributeNameError(text.chars().take(80).collect()))
    }
}

/// A user's entry as the domain sees it: what a sign-in creates or refreshes the local
/// user from (SPEC 12).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryEntry {
    pub dn: String,
    pub username: Username,
    pub display_name: DisplayName,
    pub email: Option<Email>,
    /// The group DNs as the directory lists them (compare with [`normalize_dn`]).
    pub groups: Vec<String>,
    /// AD's `userAccountControl` has `ACCOUNTDISABLE`, or 389-ds's `nsAccountLock` is
    /// `TRUE`: the entry signs in nobody.
    pub disabled: bool,
}

impl DirectoryEntry {
    /// Reads a found entry's attributes (name → values, names matched case-insensitively).
    ///
    /// - display name: the first value of `name_attr`, control characters made spaces and
    ///   cut to [`DisplayName::MAX_LENGTH`] characters; missing or blank: the username;
    /// - email: the first value of `email_attr` that is a valid address; none is valid or
    ///   there is none: `None` (a bad address does not stop a sign-in);
    /// - groups: every value of `group_attr`;
    /// - disabled: a `userAccountControl` with `ACCOUNTDISABLE`, or one that is not a
    ///   number (the account's state cannot be told, so it is refused), or an
    ///   `nsAccountLock` of `TRUE`.
    pub fn from_attributes(
        dn: &str,
        username: Username,
        attributes: &HashMap<String, Vec<String>>,
        names: &DirectoryAttributes,
    ) -> Self {
        let values = |name: &str| values_of(attributes, name);
        let display_name = values(names.name_attr())
            .first()
            .and_then(|name| {
                let cleaned: String = name
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                let cut: String = cleaned
                    .trim()
                    .chars()
                    .take(DisplayName::MAX_LENGTH)
                    .collect();
                DisplayName::parse(&cut).ok()
            })
            .unwrap_or_else(|| DisplayName::of_username(&username));
        let email = values(names.email_attr())
            .iter()
            .find_map(|value| Email::parse(value).ok());
        let uac_disabled = values(USER_ACCOUNT_CONTROL_ATTR).iter().any(|value| {
            let value = value.trim();
            value
                .parse::<u32>()
                .ok()
                .or_else(|| value.parse::<i32>().ok().map(|signed| signed as u32))
                .map_or(true, user_account_control_disabled)
        });
        let lock_disabled = values(NS_ACCOUNT_LOCK_ATTR)
            .iter()
            .any(|value| value.trim().eq_ignore_ascii_case("true"));
        Self {
            dn: dn.to_owned(),
            display_name,
            username,
            email,
            groups: values(names.group_attr()).to_vec(),
            disabled: uac_disabled || lock_disabled,
        }
    }
}

/// The values of an attribute, its name compared case-insensitively as LDAP does.
fn values_of<'a>(attributes: &'a HashMap<String, Vec<String>>, name: &str) -> &'a [String] {
    attributes
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map_or(&[], |(_, values)| values.as_slice())
}

// ---------------------------------------------------------------------------------------
// Where the directory is
// ---------------------------------------------------------------------------------------

/// `ldap://` or `ldaps://`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LdapScheme {
    Ldap,
    Ldaps,
}

impl LdapScheme {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ldap => "ldap",
            Self::Ldaps => "ldaps",
        }
    }

    pub const fn default_port(self) -> u16 {
        match self {
            Self::Ldap => 389,
            Self::Ldaps => 636,
        }
    }
}

/// The directory's address (`--ldap-url`): `ldap://HOST[:PORT]` or `ldaps://HOST[:PORT]`,
/// nothing else (no user, path, search parameters or fragment: the base and filter have
/// their own flags). The host is a DNS name (lower-cased), an IPv4 address or an IPv6
/// address in brackets; the port defaults to 389 or 636. Displays as `scheme://host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LdapUrl {
    scheme: LdapScheme,
    host: String,
    port: u16,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LdapUrlError {
    #[error("enter the directory's URL, like ldaps://dc1.hospital.example:636")]
    Empty,
    #[error("\"{0}\" is not an LDAP URL: it starts with ldap:// or ldaps://, like ldaps://dc1.hospital.example:636")]
    Scheme(String),
    #[error("\"{0}\" has no host, like ldaps://dc1.hospital.example:636")]
    MissingHost(String),
    #[error("\"{0}\": put no user in the URL; the service account is --ldap-bind-dn")]
    UserInfo(String),
    #[error("\"{0}\": the URL is only ldap(s)://HOST:PORT; the base and filter are --ldap-user-base and --ldap-user-filter")]
    PathOrQuery(String),
    #[error("\"{0}\" has a host that is not a DNS name or an IP address")]
    InvalidHost(String),
    #[error("\"{0}\" has a port that is not a number from 1 to 65535")]
    InvalidPort(String),
}

impl LdapUrl {
    pub fn parse(text: &str) -> Result<Self, LdapUrlError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(LdapUrlError::Empty);
        }
        let shown = || text.chars().take(120).collect::<String>();
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(LdapUrlError::InvalidHost(shown()));
        }
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| LdapUrlError::Scheme(shown()))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "ldap" => LdapScheme::Ldap,
            "ldaps" => LdapScheme::Ldaps,
            _ => return Err(LdapUrlError::Scheme(shown())),
        };
        let (authority, tail) = rest
            .find(['/', '?', '#'])
            .map_or((rest, ""), |at| rest.split_at(at));
        if !tail.is_empty() && tail != "/" {
            return Err(LdapUrlError::PathOrQuery(shown()));
        }
        if authority.contains('@') {
            return Err(LdapUrlError::UserInfo(shown()));
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (address, after) = bracketed
                .split_once(']')
                .ok_or_else(|| LdapUrlError::InvalidHost(shown()))?;
            let address: Ipv6Addr = address
                .parse()
                .map_err(|_| LdapUrlError::InvalidHost(shown()))?;
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| LdapUrlError::InvalidHost(shown()))?,
                ),
            };
            (address.to_string(), port)
        } else {
            let (host, port) = match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            if host.is_empty() {
                return Err(LdapUrlError::MissingHost(shown()));
            }
            let host = host.to_ascii_lowercase();
            if host.parse::<Ipv4Addr>().is_err() && !is_dns_name(&host) {
                return Err(LdapUrlError::InvalidHost(shown()));
            }
            (host, port)
        };
        let port = match port {
            None => scheme.default_port(),
            Some(port) => Some(port)
                .filter(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|port| port.parse::<u16>().ok())
                .filter(|port| *port != 0)
                .ok_or_else(|| LdapUrlError::InvalidPort(shown()))?,
        };
        Ok(Self { scheme, host, port })
    }

    pub fn scheme(&self) -> LdapScheme {
        self.scheme
    }

    /// The host: a DNS name in lower case, or an IP address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `localhost`, or an address in `127.0.0.0/8` or `::1` (or `::ffff:127.x.y.z`): the
    /// directory runs on this machine, so a plain connection crosses no network.
    pub fn is_loopback(&self) -> bool {
        if self.host == "localhost" {
            return true;
        }
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => v4.is_loopback(),
            Ok(IpAddr::V6(v6)) => {
                v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
            Err(_) => false,
        }
    }

    /// How a connection is protected, or why it may not be made (SPEC 12, issue 18): a
    /// plain `ldap://` connection carries passwords in clear text, so it is allowed only to
    /// a loopback address, with StartTLS (`--ldap-starttls`), or when the administrator
    /// says the network is trusted (`--ldap-allow-plain`). StartTLS over `ldaps://` is a
    /// mistake in the configuration, refused too.
    pub fn check_transport(
        &self,
        starttls: bool,
        allow_plain: bool,
    ) -> Result<LdapTransport, LdapTransportError> {
        match (self.scheme, starttls) {
            (LdapScheme::Ldaps, false) => Ok(LdapTransport::Ldaps),
            (LdapScheme::Ldaps, true) => Err(LdapTransportError::StartTlsOverLdaps(self.clone())),
            (LdapScheme::Ldap, true) => Ok(LdapTransport::StartTls),
            (LdapScheme::Ldap, false) if self.is_loopback() || allow_plain => {
                Ok(LdapTransport::Plain)
            }
            (LdapScheme::Ldap, false) => Err(LdapTransportError::PlainToRemoteHost(self.clone())),
        }
    }
}

impl std::fmt::Display for LdapUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self.scheme.as_str();
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// A DNS name whose last label is not all digits (`300.1.1.1` is a bad address, not a
/// name).
fn is_dns_name(host: &str) -> bool {
    let last_label_numeric = host
        .rsplit('.')
        .next()
        .is_some_and(|label| label.bytes().all(|b| b.is_ascii_digit()));
    !last_label_numeric
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// How the connection to the directory is protected ([`LdapUrl::check_transport`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LdapTransport {
    /// `ldaps://`: TLS from the first byte.
    Ldaps,
    /// `ldap://` upgraded with StartTLS before any bind.
    StartTls,
    /// `ldap://` in clear text: to loopback, or allowed by `--ldap-allow-plain`.
    Plain,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LdapTransportError {
    #[error("--ldap-url {0} would send passwords in clear text to another machine: use ldaps://, or add --ldap-starttls, or add --ldap-allow-plain if the network between them is trusted")]
    PlainToRemoteHost(LdapUrl),
    #[error("--ldap-url {0} is already TLS; --ldap-starttls is for ldap:// URLs only")]
    StartTlsOverLdaps(LdapUrl),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn username(text: &str) -> Username {
        Username::parse(text).unwrap()
    }

    // SPEC 12: "filter with RFC 4515 escaping".
    #[test]
    fn filter_values_are_escaped_per_rfc_4515() {
        assert_eq!(escape_filter_value("*"), "\\2a");
        assert_eq!(escape_filter_value("("), "\\28");
        assert_eq!(escape_filter_value(")"), "\\29");
        assert_eq!(escape_filter_value("\\"), "\\5c");
        assert_eq!(escape_filter_value("\0"), "\\00");
        assert_eq!(
            escape_filter_value("*)(uid=*))(|(uid=*"),
            "\\2a\\29\\28uid=\\2a\\29\\29\\28|\\28uid=\\2a"
        );
        assert_eq!(escape_filter_value("a\\2a"), "a\\5c2a");
        assert_eq!(escape_filter_value("adm\0in"), "adm\\00in");
        // Other non-printable bytes are escaped too.
        assert_eq!(escape_filter_value("a\tb\nc\u{7f}"), "a\\09b\\0ac\\7f");
        // A C1 control is escaped byte by byte (U+0085 is C2 85 in UTF-8).
        assert_eq!(escape_filter_value("a\u{85}b"), "a\\c2\\85b");
        // Printable UTF-8 stays as it is.
        assert_eq!(escape_filter_value("José Müller 山田"), "José Müller 山田");
        assert_eq!(escape_filter_value("j.doe@hospital"), "j.doe@hospital");
        assert_eq!(escape_filter_value(""), "");
    }

    // SPEC 12: a filter from the template, with the value escaped.
    #[test]
    fn a_user_filter_puts_the_escaped_username_in_its_place() {
        let filter = UserFilter::parse(OPENLDAP_USER_FILTER).unwrap();
        assert_eq!(
            filter.for_username(&username("J.Doe")),
            "(&(objectClass=inetOrgPerson)(uid=j.doe))"
        );
        let ad = UserFilter::parse(ACTIVE_DIRECTORY_USER_FILTER).unwrap();
        assert_eq!(
            ad.for_username(&username("nurse-1")),
            "(&(objectClass=user)(sAMAccountName=nurse-1))"
        );
        // An injection attempt is matched literally.
        assert_eq!(
            filter.for_value("*)(objectClass=*"),
            "(&(objectClass=inetOrgPerson)(uid=\\2a\\29\\28objectClass=\\2a))"
        );
        assert_eq!(
            filter.for_value("a\\b\0(c)"),
            "(&(objectClass=inetOrgPerson)(uid=a\\5cb\\00\\28c\\29))"
        );
        assert_eq!(
            filter.for_value("Zoë"),
            "(&(objectClass=inetOrgPerson)(uid=Zoë))"
        );
        // A value containing the placeholder's text is not expanded again.
        assert_eq!(
            filter.for_value("{username}"),
            "(&(objectClass=inetOrgPerson)(uid={username}))"
        );
        assert_eq!(UserFilter::default(), filter);
        assert_eq!(filter.as_str(), OPENLDAP_USER_FILTER);
    }

    // SPEC 12: `--ldap-user-filter` is checked at start.
    #[test]
    fn user_filter_templates_are_checked() {
        assert_eq!(
            UserFilter::parse("  (uid={username})  ").unwrap().as_str(),
            "(uid={username})"
        );
        assert!(UserFilter::parse("(&(objectClass=person)(|(uid={username})(mail=x)))").is_ok());
        let cases = [
            ("", UserFilterError::Empty),
            ("   ", UserFilterError::Empty),
            ("uid={username}", UserFilterError::NotParenthesised),
            ("(uid={username}", UserFilterError::NotParenthesised),
            ("((uid={username})", UserFilterError::Unbalanced),
            ("(uid={username}))", UserFilterError::Unbalanced),
            ("(a=b))((uid={username})", UserFilterError::Unbalanced),
            ("(a=b)(uid={username})", UserFilterError::SeveralFilters),
            ("(a=b) (uid={username})", UserFilterError::SeveralFilters),
            ("(objectClass=person)", UserFilterError::MissingPlaceholder),
            ("(uid={user})", UserFilterError::MissingPlaceholder),
            (
                "(|(uid={username})(mail={username}))",
                UserFilterError::RepeatedPlaceholder(2),
            ),
            ("(uid={username}\n)", UserFilterError::ControlCharacter),
            ("(uid={username}\0)", UserFilterError::ControlCharacter),
        ];
        for (template, expected) in cases {
            assert_eq!(UserFilter::parse(template), Err(expected), "{template:?}");
        }
        let long = format!("(uid={{username}}{})", "x".repeat(UserFilter::MAX_LENGTH));
        assert_eq!(UserFilter::parse(&long), Err(UserFilterError::TooLong));
        // The error says what is wrong.
        assert!(UserFilterError::RepeatedPlaceholder(2)
            .to_string()
            .contains("{username} only once (found 2)"));
        assert!(UserFilterError::MissingPlaceholder
            .to_string()
            .contains("must contain {username}"));
    }

    // SPEC 12: the role map's groups are DNs, compared as RFC 4514 (lightly).
    #[test]
    fn dns_are_compared_case_insensitively_without_separator_spaces() {
        let key = "cn=nurses,ou=groups,dc=hospital,dc=example";
        for dn in [
            "CN=Nurses,OU=Groups,DC=Hospital,DC=Example",
            "cn = Nurses , ou=Groups,  dc=hospital,dc=example  ",
            " cn=nurses,ou=groups,dc=hospital,dc=example",
        ] {
            assert_eq!(normalize_dn(dn), key, "{dn:?}");
        }
        // Spaces inside a value stay.
        assert_eq!(
            normalize_dn("CN=Night  Nurses , DC=x"),
            "cn=night  nurses,dc=x"
        );
        // Multi-valued RDN: spaces around + go.
        assert_eq!(normalize_dn("cn=A + uid=b,dc=x"), "cn=a+uid=b,dc=x");
        // An escaped comma is part of the value, and an escaped space is not trimmed.
        assert_eq!(normalize_dn("CN=Doe\\, John ,DC=x"), "cn=doe\\, john,dc=x");
        assert_eq!(normalize_dn("cn=a\\ ,dc=x"), "cn=a\\ ,dc=x");
        assert_ne!(normalize_dn("cn=a\\,b"), normalize_dn("cn=a,b"));
        // Not normalised: a hex escape and its character.
        assert_ne!(normalize_dn("cn=a\\2Cb"), normalize_dn("cn=a\\,b"));
        assert_eq!(normalize_dn("cn=a\\2Cb"), normalize_dn("cn=a\\2cb"));
        // Unicode case folding.
        assert_eq!(normalize_dn("CN=ÄRZTE,DC=x"), normalize_dn("cn=ärzte,dc=x"));
    }

    fn items(items: &[&str]) -> RoleMap {
        RoleMap::parse(items).unwrap()
    }

    // SPEC 12: `--ldap-role-map GROUP_DN=ROLE`, split at the last `=`.
    #[test]
    fn role_map_items_split_at_the_last_equals_sign() {
        let map = items(&[
            "cn=Nurses,ou=Groups,dc=hospital,dc=example=Night Nurses",
            " CN=Admins,DC=hospital,DC=example = admin ",
            // A value may hold an unescaped `=`; the role is still after the last one.
            "cn=a=b,dc=x=Staff",
        ]);
        let items: Vec<(&str, &str)> = map.items().map(|(g, r)| (g, r.as_str())).collect();
        assert_eq!(
            items,
            [
                ("cn=Nurses,ou=Groups,dc=hospital,dc=example", "Night Nurses"),
                ("CN=Admins,DC=hospital,DC=example", "admin"),
                ("cn=a=b,dc=x", "Staff"),
            ]
        );
        assert!(!map.is_empty());
        assert!(RoleMap::parse::<&str>(&[]).unwrap().is_empty());
    }

    #[test]
    fn bad_role_map_items_are_refused_with_what_is_wrong() {
        let one = |item: &str| RoleMap::parse(&[item]).unwrap_err();
        // No role: the last `=` is the DN's own.
        assert_eq!(
            one("cn=Nurses,dc=x"),
            RoleMapError::NotADn {
                item: "cn=Nurses,dc=x".to_owned(),
                group: "cn=Nurses,dc".to_owned()
            }
        );
        assert!(matches!(
            one("no equals"),
            RoleMapError::NotGroupEqualsRole(_)
        ));
        assert!(matches!(
            one("cn=Nurses,dc=x="),
            RoleMapError::NotGroupEqualsRole(_)
        ));
        assert!(matches!(one("=admin"), RoleMapError::NotGroupEqualsRole(_)));
        assert!(matches!(one("Nurses=admin"), RoleMapError::NotADn { .. }));
        assert!(matches!(
            one("cn=x,,dc=y=admin"),
            RoleMapError::NotADn { .. }
        ));
        assert!(matches!(one("cn=x,=y=admin"), RoleMapError::NotADn { .. }));
        assert!(one("cn=Nurses,dc=x")
            .to_string()
            .contains("an item is GROUP_DN=ROLE"));
        assert!(matches!(
            one("cn=x,dc=y=a/b"),
            RoleMapError::BadRole {
                problem: RoleNameError::InvalidCharacter,
                ..
            }
        ));
        assert_eq!(
            RoleMap::parse(&["cn=N,dc=x=a", "CN=n , DC=X=b"]),
            Err(RoleMapError::DuplicateGroup("CN=n , DC=X".to_owned()))
        );
        assert!(RoleMapError::NotGroupEqualsRole("x".to_owned())
            .to_string()
            .contains("GROUP_DN=ROLE"));
    }

    // SPEC 12: "first match wins"; "none: users in no mapped group cannot sign in".
    #[test]
    fn the_first_mapped_group_gives_the_role_else_the_default_else_nobody() {
        let map = items(&[
            "cn=Doctors,ou=Groups,dc=h,dc=example=Doctors",
            "cn=Nurses,ou=Groups,dc=h,dc=example=Nurses",
        ]);
        let groups = |list: &[&str]| list.iter().map(|g| (*g).to_owned()).collect::<Vec<_>>();
        // The map's order decides, not the order of the user's groups.
        assert_eq!(
            map.role_for(
                &groups(&[
                    "CN=Nurses,OU=Groups,DC=h,DC=example",
                    "cn=doctors, ou=groups, dc=h, dc=example",
                ]),
                None
            ),
            Some("Doctors".to_owned())
        );
        assert_eq!(
            map.role_for(
                &groups(&["cn=Nurses,ou=Groups,dc=h,dc=example"]),
                Some("Staff")
            ),
            Some("Nurses".to_owned())
        );
        let unmapped = groups(&["cn=Porters,ou=Groups,dc=h,dc=example"]);
        assert_eq!(
            map.role_for(&unmapped, Some("Staff")),
            Some("Staff".to_owned())
        );
        assert_eq!(map.role_for(&unmapped, None), None);
        assert_eq!(map.role_for(&[], None), None);
        assert_eq!(
            RoleMap::default().role_for(&[], Some("Staff")),
            Some("Staff".to_owned())
        );
    }

    // Issue 18: "a role map naming an unknown role ... stop[s] start-up".
    #[test]
    fn unknown_roles_are_listed_once_in_the_maps_order() {
        let map = items(&[
            "cn=a,dc=x=Nurses",
            "cn=b,dc=x=Ghosts",
            "cn=c,dc=x=admin",
            "cn=d,dc=x=GHOSTS",
            "cn=e,dc=x=Porters",
        ]);
        assert_eq!(
            map.unknown_roles(None, &["Admin", "nurses"]),
            ["Ghosts".to_owned(), "Porters".to_owned()]
        );
        assert!(map
            .unknown_roles(None, &["nurses", "ghosts", "admin", "porters"])
            .is_empty());
        // The default role is checked too, after the map's, and listed once.
        let staff = RoleName::parse("Staff").unwrap();
        assert_eq!(
            map.unknown_roles(Some(&staff), &["Admin", "nurses"]),
            [
                "Ghosts".to_owned(),
                "Porters".to_owned(),
                "Staff".to_owned()
            ]
        );
        let ghosts = RoleName::parse("ghosts").unwrap();
        assert_eq!(
            map.unknown_roles(Some(&ghosts), &["Admin", "nurses", "porters"]),
            ["Ghosts".to_owned()]
        );
        assert!(map
            .unknown_roles(
                Some(&staff),
                &["nurses", "ghosts", "admin", "porters", " STAFF "]
            )
            .is_empty());
    }

    const AD_PREFIX: &str =
        "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data ";

    fn ad(data: &str) -> BindRefusal {
        BindRefusal::from_result(49, &format!("{AD_PREFIX}{data}, v4563\0"))
    }

    // SPEC 12: AD's answers; issue 18: 532/773 their own message, 775 and disabled generic.
    #[test]
    fn active_directory_sub_codes_are_read_from_the_diagnostic() {
        assert_eq!(ad("52e"), BindRefusal::WrongPassword);
        assert_eq!(ad("525"), BindRefusal::WrongPassword);
        assert_eq!(ad("530"), BindRefusal::NotPermittedNow);
        assert_eq!(ad("531"), BindRefusal::NotPermittedNow);
        assert_eq!(ad("532"), BindRefusal::PasswordExpired);
        assert_eq!(ad("533"), BindRefusal::Disabled);
        assert_eq!(ad("701"), BindRefusal::AccountExpired);
        assert_eq!(ad("773"), BindRefusal::MustChangePassword);
        assert_eq!(ad("775"), BindRefusal::LockedInDirectory);
        // An unknown sub-code of 49 is still invalid credentials.
        assert_eq!(ad("568"), BindRefusal::WrongPassword);
        assert_eq!(
            ad_data_code(
                "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 773, v4563"
            ),
            Some(0x773)
        );
        // Samba's AD DC writes the same, sometimes without the version.
        assert_eq!(
            BindRefusal::from_result(
                49,
                "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 532"
            ),
            BindRefusal::PasswordExpired
        );
        assert_eq!(ad_data_code("metadata 773"), None);
        assert_eq!(ad_data_code("data , v1"), None);
        assert_eq!(ad_data_code(""), None);
        assert_eq!(ad_data_code("DATA 52E"), Some(0x52e));
    }

    #[test]
    fn plain_ldap_answers_are_mapped() {
        assert_eq!(BindRefusal::from_result(49, ""), BindRefusal::WrongPassword);
        assert_eq!(
            BindRefusal::from_result(19, "Exceed password retry limit. Please try later."),
            BindRefusal::LockedInDirectory
        );
        assert_eq!(
            BindRefusal::from_result(53, "Account inactivated. Contact system administrator."),
            BindRefusal::Disabled
        );
        assert_eq!(
            BindRefusal::from_result(53, "unauthenticated bind (DN with no password) disallowed"),
            BindRefusal::Other(53)
        );
        assert_eq!(BindRefusal::from_result(50, ""), BindRefusal::Other(50));
        assert_eq!(BindRefusal::from_result(48, ""), BindRefusal::Other(48));
        assert_eq!(BindRefusal::from_result(19, ""), BindRefusal::Other(19));
    }

    // SPEC 12: "Directory unreachable: 503 ... not counted against the user".
    #[test]
    fn bind_answers_tell_success_refusal_and_unavailability_apart() {
        assert_eq!(BindAnswer::from_result(0, ""), BindAnswer::Bound);
        for code in [1, 2, 3, 11, 51, 52, 80, 81, 85, 91] {
            assert_eq!(
                BindAnswer::from_result(code, ""),
                BindAnswer::Unavailable(code)
            );
        }
        assert_eq!(
            BindAnswer::from_result(49, &format!("{AD_PREFIX}773, v4563")),
            BindAnswer::Refused(BindRefusal::MustChangePassword)
        );
        assert_eq!(
            BindAnswer::from_result(50, ""),
            BindAnswer::Refused(BindRefusal::Other(50))
        );
    }

    // SPEC 12: "password expired / must change" get "change your password in Windows first".
    #[test]
    fn only_expired_and_must_change_passwords_have_their_own_message() {
        for refusal in [
            BindRefusal::PasswordExpired,
            BindRefusal::MustChangePassword,
        ] {
            let message = refusal.own_message().unwrap();
            assert!(
                message.contains("change your password in Windows first"),
                "{message}"
            );
        }
        for refusal in [
            BindRefusal::WrongPassword,
            BindRefusal::LockedInDirectory,
            BindRefusal::Disabled,
            BindRefusal::AccountExpired,
            BindRefusal::NotPermittedNow,
            BindRefusal::Other(50),
        ] {
            assert_eq!(refusal.own_message(), None, "{refusal:?}");
        }
        assert_eq!(
            BindRefusal::LockedInDirectory.audit_reason(),
            "locked in the directory"
        );
        assert_eq!(
            BindRefusal::Disabled.audit_reason(),
            "disabled in the directory"
        );
        assert_eq!(
            BindRefusal::Other(50).audit_reason(),
            "directory refused the bind"
        );
        let reasons: Vec<&str> = [
            BindRefusal::WrongPassword,
            BindRefusal::PasswordExpired,
            BindRefusal::MustChangePassword,
            BindRefusal::LockedInDirectory,
            BindRefusal::Disabled,
            BindRefusal::AccountExpired,
            BindRefusal::NotPermittedNow,
            BindRefusal::Other(1),
        ]
        .into_iter()
        .map(BindRefusal::audit_reason)
        .collect();
        for (i, reason) in reasons.iter().enumerate() {
            assert!(!reasons[..i].contains(reason), "{reason} twice");
        }
    }

    // SPEC 12: "disabled (AD `userAccountControl` bit 2)".
    #[test]
    fn user_account_control_bit_2_means_disabled() {
        assert!(!user_account_control_disabled(512)); // NORMAL_ACCOUNT
        assert!(user_account_control_disabled(514)); // NORMAL_ACCOUNT | ACCOUNTDISABLE
        assert!(user_account_control_disabled(0x2));
        assert!(!user_account_control_disabled(0x10200)); // DONT_EXPIRE_PASSWORD
        assert!(user_account_control_disabled(0x10202));
        assert!(!user_account_control_disabled(0));
    }

    fn attributes(pairs: &[(&str, &[&str])]) -> HashMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(name, values)| {
                (
                    (*name).to_owned(),
                    values.iter().map(|v| (*v).to_owned()).collect(),
                )
            })
            .collect()
    }

    // SPEC 12: the user is created or updated from the entry (display name, email, groups).
    #[test]
    fn an_entry_is_read_from_its_attributes() {
        let names = DirectoryAttributes::default();
        let entry = DirectoryEntry::from_attributes(
            "uid=jdoe,ou=People,dc=h,dc=example",
            username("jdoe"),
            &attributes(&[
                ("CN", &["Jane Doe", "J. Doe"]),
                ("mail", &["not an address", "jane.doe@h.example"]),
                (
                    "memberof",
                    &[
                        "cn=Nurses,ou=Groups,dc=h,dc=example",
                        "cn=Staff,ou=Groups,dc=h,dc=example",
                    ],
                ),
            ]),
            &names,
        );
        assert_eq!(
            entry,
            DirectoryEntry {
                dn: "uid=jdoe,ou=People,dc=h,dc=example".to_owned(),
                username: username("jdoe"),
                display_name: DisplayName::parse("Jane Doe").unwrap(),
                email: Some(Email::parse("jane.doe@h.example").unwrap()),
                groups: vec![
                    "cn=Nurses,ou=Groups,dc=h,dc=example".to_owned(),
                    "cn=Staff,ou=Groups,dc=h,dc=example".to_owned(),
                ],
                disabled: false,
            }
        );
    }

    #[test]
    fn a_bad_email_or_name_does_not_stop_the_entry() {
        let names = DirectoryAttributes::new("displayName", "mail", "memberOf").unwrap();
        let long = "N".repeat(150);
        let entry = DirectoryEntry::from_attributes(
            "cn=x",
            username("nurse1"),
            &attributes(&[
                ("displayName", &[long.as_str()]),
                ("mail", &["nurse1 at h.example"]),
            ]),
            &names,
        );
        assert_eq!(entry.email, None);
        assert_eq!(entry.display_name.as_str(), "N".repeat(100));
        assert!(entry.groups.is_empty());
        assert!(!entry.disabled);

        let entry = DirectoryEntry::from_attributes(
            "cn=x",
            username("nurse1"),
            &attributes(&[("displayName", &["  Ann\tLee\n "])]),
            &names,
        );
        assert_eq!(entry.display_name.as_str(), "Ann Lee");

        // No name, or a blank one: the username.
        for attrs in [attributes(&[]), attributes(&[("displayname", &["  "])])] {
            let entry = DirectoryEntry::from_attributes("cn=x", username("nurse1"), &attrs, &names);
            assert_eq!(entry.display_name.as_str(), "nurse1");
        }
    }

    // SPEC 12: "A directory entry that is ... disabled (AD `userAccountControl` bit 2) signs
    // in nobody".
    #[test]
    fn disabled_entries_are_recognised() {
        let names = DirectoryAttributes::default();
        let disabled = |pairs: &[(&str, &[&str])]| {
            DirectoryEntry::from_attributes("cn=x", username("u"), &attributes(pairs), &names)
                .disabled
        };
        assert!(!disabled(&[]));
        assert!(!disabled(&[("userAccountControl", &["512"])]));
        assert!(disabled(&[("useraccountcontrol", &["514"])]));
        assert!(disabled(&[("userAccountControl", &[" 66050 "])]));
        // A value that cannot be read: refused.
        assert!(disabled(&[("userAccountControl", &["enabled"])]));
        // A signed rendering of the same bits.
        assert!(!disabled(&[("userAccountControl", &["-2147483136"])]));
        assert!(disabled(&[("userAccountControl", &["-2147483134"])]));
        assert!(disabled(&[("nsAccountLock", &["TRUE"])]));
        assert!(!disabled(&[("nsAccountLock", &["false"])]));
    }

    #[test]
    fn attribute_names_are_checked() {
        let names = DirectoryAttributes::new(" cn ", "mail", "2.5.4.31").unwrap();
        assert_eq!(
            (names.name_attr(), names.email_attr(), names.group_attr()),
            ("cn", "mail", "2.5.4.31")
        );
        assert_eq!(
            names.requested(),
            [
                "cn",
                "mail",
                "2.5.4.31",
                "userAccountControl",
                "nsAccountLock"
            ]
        );
        for bad in [
            "",
            "mail address",
            "1mail",
            "mail;binary",
            "2..5",
            "2.05",
            "(cn)",
        ] {
            assert!(
                DirectoryAttributes::new("cn", bad, "memberOf").is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(DirectoryAttributes::default().group_attr(), "memberOf");
    }

    // SPEC 12: `--ldap-url ldap://HOST:PORT | ldaps://...`.
    #[test]
    fn ldap_urls_are_parsed_with_default_ports() {
        let url = LdapUrl::parse("ldaps://DC1.Hospital.Example").unwrap();
        assert_eq!(url.scheme(), LdapScheme::Ldaps);
        assert_eq!(url.host(), "dc1.hospital.example");
        assert_eq!(url.port(), 636);
        assert_eq!(url.to_string(), "ldaps://dc1.hospital.example:636");
        let url = LdapUrl::parse(" LDAP://10.0.0.5 ").unwrap();
        assert_eq!((url.scheme(), url.port()), (LdapScheme::Ldap, 389));
        assert_eq!(url.to_string(), "ldap://10.0.0.5:389");
        let url = LdapUrl::parse("ldap://[::1]:3890/").unwrap();
        assert_eq!((url.host(), url.port()), ("::1", 3890));
        assert_eq!(url.to_string(), "ldap://[::1]:3890");
        assert_eq!(
            LdapUrl::parse("ldaps://localhost:10636").unwrap().port(),
            10636
        );
    }

    #[test]
    fn bad_ldap_urls_are_refused_with_what_is_wrong() {
        type Expected = fn(&LdapUrlError) -> bool;
        let cases: &[(&str, Expected)] = &[
            ("", |e| matches!(e, LdapUrlError::Empty)),
            ("dc1.example:389", |e| matches!(e, LdapUrlError::Scheme(_))),
            ("http://dc1.example", |e| {
                matches!(e, LdapUrlError::Scheme(_))
            }),
            ("ldapi://%2fvar%2frun%2fslapd", |e| {
                matches!(e, LdapUrlError::Scheme(_))
            }),
            ("ldap://", |e| matches!(e, LdapUrlError::MissingHost(_))),
            ("ldap://:389", |e| matches!(e, LdapUrlError::MissingHost(_))),
            ("ldap:///dc=example", |e| {
                matches!(
                    e,
                    LdapUrlError::MissingHost(_) | LdapUrlError::PathOrQuery(_)
                )
            }),
            ("ldap://dc1/dc=example,dc=org", |e| {
                matches!(e, LdapUrlError::PathOrQuery(_))
            }),
            ("ldap://dc1?uid", |e| {
                matches!(e, LdapUrlError::PathOrQuery(_))
            }),
            ("ldap://dc1#x", |e| {
                matches!(e, LdapUrlError::PathOrQuery(_))
            }),
            ("ldap://admin@dc1", |e| {
                matches!(e, LdapUrlError::UserInfo(_))
            }),
            ("ldap://dc_1.example", |e| {
                matches!(e, LdapUrlError::InvalidHost(_))
            }),
            ("ldap://dc1 .example", |e| {
                matches!(e, LdapUrlError::InvalidHost(_))
            }),
            ("ldap://[::1", |e| matches!(e, LdapUrlError::InvalidHost(_))),
            ("ldap://[dc1]:389", |e| {
                matches!(e, LdapUrlError::InvalidHost(_))
            }),
            ("ldap://dc1:", |e| matches!(e, LdapUrlError::InvalidPort(_))),
            ("ldap://dc1:0", |e| {
                matches!(e, LdapUrlError::InvalidPort(_))
            }),
            ("ldap://dc1:65536", |e| {
                matches!(e, LdapUrlError::InvalidPort(_))
            }),
            ("ldap://dc1:+389", |e| {
                matches!(e, LdapUrlError::InvalidPort(_))
            }),
            ("ldap://dc1:38a", |e| {
                matches!(e, LdapUrlError::InvalidPort(_))
            }),
            ("ldap://300.1.1.1", |e| {
                matches!(e, LdapUrlError::InvalidHost(_))
            }),
            ("ldap://dc1:389:1", |e| {
                matches!(e, LdapUrlError::InvalidPort(_))
            }),
        ];
        for (text, expected) in cases {
            let error = LdapUrl::parse(text).unwrap_err();
            assert!(expected(&error), "{text:?} gave {error:?}");
        }
        assert!(LdapUrl::parse("ldap://dc1/dc=x")
            .unwrap_err()
            .to_string()
            .contains("--ldap-user-base"));
    }

    #[test]
    fn loopback_directories_are_recognised() {
        for text in [
            "ldap://localhost",
            "ldap://LOCALHOST:3389",
            "ldap://127.0.0.1:3389",
            "ldap://127.8.9.10",
            "ldap://[::1]",
            "ldap://[::ffff:127.0.0.1]",
        ] {
            assert!(LdapUrl::parse(text).unwrap().is_loopback(), "{text}");
        }
        for text in [
            "ldap://10.0.0.1",
            "ldap://dc1.hospital.example",
            "ldap://localhost.hospital.example",
            "ldap://[::2]",
            "ldap://0.0.0.0",
        ] {
            assert!(!LdapUrl::parse(text).unwrap().is_loopback(), "{text}");
        }
    }

    // Issue 18: plain `ldap://` only to loopback unless `--ldap-allow-plain`.
    #[test]
    fn plain_ldap_goes_only_to_loopback_unless_allowed_or_upgraded() {
        let remote = LdapUrl::parse("ldap://dc1.hospital.example").unwrap();
        let local = LdapUrl::parse("ldap://127.0.0.1:3389").unwrap();
        let tls = LdapUrl::parse("ldaps://dc1.hospital.example").unwrap();
        assert_eq!(
            remote.check_transport(false, false),
            Err(LdapTransportError::PlainToRemoteHost(remote.clone()))
        );
        assert_eq!(
            remote.check_transport(false, true),
            Ok(LdapTransport::Plain)
        );
        assert_eq!(
            remote.check_transport(true, false),
            Ok(LdapTransport::StartTls)
        );
        assert_eq!(
            remote.check_transport(true, true),
            Ok(LdapTransport::StartTls)
        );
        assert_eq!(
            local.check_transport(false, false),
            Ok(LdapTransport::Plain)
        );
        assert_eq!(tls.check_transport(false, false), Ok(LdapTransport::Ldaps));
        assert_eq!(tls.check_transport(false, true), Ok(LdapTransport::Ldaps));
        assert_eq!(
            tls.check_transport(true, false),
            Err(LdapTransportError::StartTlsOverLdaps(tls.clone()))
        );
        let message = remote
            .check_transport(false, false)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("ldap://dc1.hospital.example:389"),
            "{message}"
        );
        assert!(message.contains("clear text"), "{message}");
        for flag in ["ldaps://", "--ldap-starttls", "--ldap-allow-plain"] {
            assert!(message.contains(flag), "{message}");
        }
    }
}
