//! Users: usernames (case-insensitive), display names and email addresses.

/// A username, case-insensitive everywhere (SPEC section 4): stored and compared in lower
/// case. 1 to 64 characters of ASCII letters, digits and `. _ - @`, so that no two
/// usernames look alike and none needs escaping in a URL or a log line.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UsernameError {
    #[error("enter a username")]
    Empty,
    #[error("a username has at most {max} characters", max = Username::MAX_LENGTH)]
    TooLong,
    #[error("a username may contain only letters, digits and . _ - @")]
    InvalidCharacter,
}

impl Username {
    pub const MAX_LENGTH: usize = 64;

    pub fn parse(text: &str) -> Result<Self, UsernameError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(UsernameError::Empty);
        }
        if text.len() > Self::MAX_LENGTH {
            return Err(UsernameError::TooLong);
        }
        if !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
        {
            return Err(UsernameError::InvalidCharacter);
        }
        Ok(Self(text.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Username {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name shown for a user: 1 to 100 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DisplayName(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DisplayNameError {
    #[error("enter a display name")]
    Empty,
    #[error("a display name has at most {max} characters", max = DisplayName::MAX_LENGTH)]
    TooLong,
    #[error("a display name cannot contain control characters")]
    ControlCharacter,
}

impl DisplayName {
    pub const MAX_LENGTH: usize = 100;

    /// A username as a display name (for a directory entry without a usable name): a
    /// username is always a valid display name (1 to 64 characters, none a control).
    pub fn of_username(username: &Username) -> Self {
        Self(username.as_str().to_owned())
    }

    pub fn parse(text: &str) -> Result<Self, DisplayNameError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(DisplayNameError::Empty);
        }
        if text.chars().count() > Self::MAX_LENGTH {
            return Err(DisplayNameError::TooLong);
        }
        if text.chars().any(char::is_control) {
            return Err(DisplayNameError::ControlCharacter);
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DisplayName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address: `local@domain`, at most 254 characters, nothing that could break a
/// mail header (no spaces, control characters, `<`, `>`, `,`, `;`, quotes or backslashes).
/// A domain without a dot (`no-reply@localhost`) is allowed for local installations.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Email(pub(super) String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EmailError {
    #[error("enter an email address")]
    Empty,
    #[error("an email address has at most 254 characters")]
    TooLong,
    #[error("an email address looks like name@example.org")]
    Invalid,
}

impl Email {
    pub fn parse(text: &str) -> Result<Self, EmailError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(EmailError::Empty);
        }
        if text.len() > 254 {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = text.rsplit_once('@').ok_or(EmailError::Invalid)?;
        let forbidden = |c: char| {
            c.is_whitespace()
                || c.is_control()
                || matches!(
                    c,
                    '<' | '>' | ',' | ';' | '"' | '\\' | '(' | ')' | '[' | ']' | ':'
                )
        };
        let domain_ok = !domain.is_empty()
            && domain.len() <= 253
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if local.is_empty()
            || local.len() > 64
            || local.contains('@')
            || local.chars().any(forbidden)
            || !domain_ok
        {
            return Err(EmailError::Invalid);
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address as shown to someone who may not be its owner: the first character of
    /// the local part, then `***`: `j***@example.org`.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.rsplit_once('@').unwrap_or((&self.0, ""));
        let first: String = local.chars().take(1).collect();
        format!("{first}***@{domain}")
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user's row id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub i64);

/// Where a user's password is checked (SPEC section 12): `source` in the API, console and
/// command line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum UserSource {
    /// A local account: twostep holds the password hash. A local account of a name always
    /// wins over the directory's entry of that name.
    #[default]
    Local,
    /// Created from the directory at a sign-in and refreshed at each one: the password is
    /// checked by a bind as the entry, and twostep holds none (setting one is refused).
    Directory,
}

impl UserSource {
    /// `"local"` or `"ldap"`, as stored and as the API, console and command line show it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Directory => "ldap",
        }
    }

    /// The source of its [`Self::as_str`] text.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "local" => Some(Self::Local),
            "ldap" => Some(Self::Directory),
            _ => None,
        }
    }
}

impl std::fmt::Display for UserSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What twostep last read of a directory user's entry: shown on Edit User and in the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryLink {
    /// The entry's DN, as the directory gave it.
    pub dn: String,
    /// The entry's groups (DNs), as the directory listed them.
    pub groups: Vec<String>,
    /// When the entry was last read at a sign-in.
    pub synced_at: crate::clock::Timestamp,
}

/// A user as the services see it (the password hash is fetched separately, only for
/// checking a password).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    pub display_name: DisplayName,
    pub email: Option<Email>,
    pub role_id: crate::domain::role::RoleId,
    pub active: bool,
    /// Set for a bootstrap password: the next sign-in must change it.
    pub must_change_password: bool,
    /// Consecutive failed sign-ins toward Lockout Threshold (starts again when a lock
    /// expires).
    pub failed_count: u32,
    /// `Some(t)`: locked while `now < t` ([`crate::clock::Timestamp::NEVER`]: until unlocked).
    pub locked_until: Option<crate::clock::Timestamp>,
    /// Consecutive failed sign-ins toward the [`crate::domain::HARD_LIMIT`]: counted across lock
    /// expiries, reset only by a success or an administrator's unlock.
    pub consecutive_failures: u32,
    /// Where the password is checked.
    pub source: UserSource,
}

impl User {
    /// Whether the account is locked at `now` ([`crate::domain::lockout::is_locked`]).
    pub fn is_locked(&self, now: crate::clock::Timestamp) -> bool {
        crate::domain::lockout::is_locked(self.locked_until, now)
    }

    /// The failure counts of the lockout rule ([`crate::domain::Lockout`]).
    pub fn failure_counts(&self) -> crate::domain::FailureCounts {
        crate::domain::FailureCounts {
            failed_count: self.failed_count,
            consecutive_failures: self.consecutive_failures,
            locked_until: self.locked_until,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_case_insensitive() {
        assert_eq!(
            Username::parse("JSmith").unwrap(),
            Username::parse("jsmith").unwrap()
        );
        assert_eq!(
            Username::parse("  Dr.Who@ward-7 ").unwrap().as_str(),
            "dr.who@ward-7"
        );
    }

    #[test]
    fn bad_usernames_are_refused() {
        assert_eq!(Username::parse(""), Err(UsernameError::Empty));
        assert_eq!(Username::parse("   "), Err(UsernameError::Empty));
        assert_eq!(
            Username::parse(&"a".repeat(65)),
            Err(UsernameError::TooLong)
        );
        assert!(Username::parse(&"a".repeat(64)).is_ok());
        for bad in [
            "j smith",
            "jsmith'",
            "jsmith;--",
            "jsmïth",
            "a/b",
            "a\u{0}b",
            "ａdmin",
        ] {
            assert_eq!(
                Username::parse(bad),
                Err(UsernameError::InvalidCharacter),
                "{bad}"
            );
        }
    }

    #[test]
    fn display_names_allow_unicode_but_not_control_characters() {
        assert_eq!(
            DisplayName::parse(" Zoë Ølund ").unwrap().as_str(),
            "Zoë Ølund"
        );
        assert_eq!(DisplayName::parse(""), Err(DisplayNameError::Empty));
        assert_eq!(
            DisplayName::parse("a\nb"),
            Err(DisplayNameError::ControlCharacter)
        );
        assert_eq!(
            DisplayName::parse(&"é".repeat(101)),
            Err(DisplayNameError::TooLong)
        );
        assert!(DisplayName::parse(&"é".repeat(100)).is_ok());
    }

    #[test]
    fn emails_are_checked_for_shape_and_header_safety() {
        for good in [
            "jane@example.org",
            "no-reply@localhost",
            "a.b+tag@sub.example.co.uk",
            "zoë@bücher.example",
        ] {
            assert_eq!(Email::parse(good).unwrap().as_str(), good);
        }
        assert_eq!(Email::parse(" "), Err(EmailError::Empty));
        for bad in [
            "jane",
            "@example.org",
            "jane@",
            "jane@@example.org",
            "jane doe@example.org",
            "jane@example..org",
            "jane@-example.org",
            "jane@example.org\r\nBcc: x@y.z",
            "Jane <jane@example.org>",
            "a,b@example.org",
            "jane@exa_mple.org",
        ] {
            assert_eq!(Email::parse(bad), Err(EmailError::Invalid), "{bad:?}");
        }
        assert_eq!(
            Email::parse(&format!("{}@example.org", "a".repeat(250))),
            Err(EmailError::TooLong)
        );
    }

    #[test]
    fn a_lock_holds_until_its_time_and_never_ends_for_never() {
        use crate::clock::Timestamp;
        let mut user = User {
            source: UserSource::Local,
            id: UserId(1),
            username: Username::parse("a").unwrap(),
            display_name: DisplayName::parse("A").unwrap(),
            email: None,
            role_id: crate::domain::role::RoleId(1),
            active: true,
            must_change_password: false,
            failed_count: 5,
            locked_until: Some(Timestamp::from_millis(2_000)),
            consecutive_failures: 5,
        };
        assert!(user.is_locked(Timestamp::from_millis(1_999)));
        assert!(!user.is_locked(Timestamp::from_millis(2_000)));
        user.locked_until = Some(Timestamp::NEVER);
        assert!(user.is_locked(Timestamp::from_millis(i64::MAX - 1)));
        user.locked_until = None;
        assert!(!user.is_locked(Timestamp::from_millis(0)));
    }

    #[test]
    fn masked_email_shows_the_first_letter_and_the_domain() {
        assert_eq!(
            Email::parse("jane.doe@example.org").unwrap().masked(),
            "j***@example.org"
        );
        assert_eq!(
            Email::parse("ö@example.org").unwrap().masked(),
            "ö***@example.org"
        );
    }
}
