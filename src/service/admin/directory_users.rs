//! Directory users (SPEC section 12) as administrators meet them: what twostep last read
//! of the entry is shown, and what the directory owns cannot be changed here. Display
//! name, email and role are read from the entry at every sign-in (a change here would be
//! undone at the next one), and the password is the directory's: setting one is refused
//! with a message that says where to change it. Active, unlock, devices and recovery codes
//! are twostep's own and stay editable.

use crate::domain::{DisplayName, Email, RoleId, User, UserSource};

/// Why a password cannot be set for a directory user.
pub const DIRECTORY_PASSWORD: &str =
    "this user signs in with the directory's password; reset it in the directory";

/// The changes of an Edit User patch, parsed, that [`owned_by_directory`] looks at.
pub(super) struct ProposedChange<'a> {
    pub display_name: Option<&'a DisplayName>,
    pub email: Option<&'a Option<Email>>,
    pub role_id: Option<RoleId>,
    pub password: bool,
}

/// The fields of `change` a directory user's entry owns and that it would change, each
/// with its message, in the form's order; empty for a local user. A value equal to the
/// current one is no change (the console's form sends every field). Each is a field's name
/// and its message, as [`super::Problem`] is.
pub(super) fn owned_by_directory(
    user: &User,
    change: &ProposedChange<'_>,
) -> Vec<(&'static str, String)> {
    if user.source != UserSource::Directory {
        return Vec::new();
    }
    let mut problems = Vec::new();
    if change
        .display_name
        .is_some_and(|name| *name != user.display_name)
    {
        problems.push((
            "display_name",
            "the display name comes from the directory and is read at each sign-in; change it there"
                .to_owned(),
        ));
    }
    if change.email.is_some_and(|email| *email != user.email) {
        problems.push((
            "email",
            "the email address comes from the directory and is read at each sign-in; change it there"
                .to_owned(),
        ));
    }
    if change.role_id.is_some_and(|role| role != user.role_id) {
        problems.push((
            "role",
            "the role comes from the user's groups in the directory (--ldap-role-map) and is read at each sign-in; change the groups there"
                .to_owned(),
        ));
    }
    if change.password {
        problems.push(("password", DIRECTORY_PASSWORD.to_owned()));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{UserId, Username};

    fn user(source: UserSource) -> User {
        User {
            id: UserId(7),
            username: Username::parse("jane").unwrap(),
            display_name: DisplayName::parse("Jane Doe").unwrap(),
            email: Some(Email::parse("jane@example.org").unwrap()),
            role_id: RoleId(2),
            active: true,
            must_change_password: false,
            failed_count: 0,
            locked_until: None,
            consecutive_failures: 0,
            source,
        }
    }

    /// SPEC 12: a directory user's name, email, role and password are the directory's;
    /// the same values (the console's form sends them all) are no change.
    #[test]
    fn the_directory_owns_name_email_role_and_password() {
        let same_name = DisplayName::parse("Jane Doe").unwrap();
        let same_email = Some(Email::parse("jane@example.org").unwrap());
        let unchanged = ProposedChange {
            display_name: Some(&same_name),
            email: Some(&same_email),
            role_id: Some(RoleId(2)),
            password: false,
        };
        assert!(owned_by_directory(&user(UserSource::Directory), &unchanged).is_empty());
        let other_name = DisplayName::parse("Jane Roe").unwrap();
        let no_email = None;
        let changed = ProposedChange {
            display_name: Some(&other_name),
            email: Some(&no_email),
            role_id: Some(RoleId(3)),
            password: true,
        };
        let fields: Vec<&str> = owned_by_directory(&user(UserSource::Directory), &changed)
            .into_iter()
            .map(|(field, _)| field)
            .collect();
        assert_eq!(fields, ["display_name", "email", "role", "password"]);
        assert!(owned_by_directory(&user(UserSource::Local), &changed).is_empty());
    }
}
