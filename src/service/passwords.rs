//! Choosing a password (SPEC section 10, "Passwords"): the one entry point that every
//! surface goes through when a password is set — the forced change at sign-in, an
//! administrator's create and reset (API, console, command line), the account page.
//!
//! The rules are [`crate::domain::password_rules`] with the site's name as context; the
//! one rule that needs the stored hash, "not the current password", is checked here with
//! the argon2 hasher. Only run when a password is chosen, never at sign-in.

use super::Context;
use crate::domain::{check_new_password, PasswordContext, PasswordProblem, User};
use crate::password::{Password, PasswordError};
use crate::store::StoreError;

/// Whom a password is chosen for.
#[derive(Clone, Copy, Debug)]
pub enum ChosenFor<'a> {
    /// A user who does not exist yet (an administrator creates them).
    New {
        username: &'a str,
        display_name: &'a str,
    },
    /// An existing user: the new password must differ from their current one.
    Existing(&'a User),
}

impl ChosenFor<'_> {
    fn names(&self) -> (&str, &str) {
        match self {
            Self::New {
                username,
                display_name,
            } => (username, display_name),
            Self::Existing(user) => (user.username.as_str(), user.display_name.as_str()),
        }
    }
}

/// Why a password could not be chosen.
#[derive(Debug, thiserror::Error)]
pub enum PasswordChoiceError {
    /// The person's mistake: the message says why, never shows the password.
    #[error(transparent)]
    Refused(#[from] PasswordProblem),
    #[error("password hashing failed")]
    Hashing(#[source] PasswordError),
    #[error("the current password could not be read")]
    Store(#[from] StoreError),
}

/// The rules of SPEC section 10 without the stored hash: what a form can report with its
/// other fields before anything is hashed.
pub fn problem(ctx: &Context, user: &ChosenFor<'_>, candidate: &str) -> Option<PasswordProblem> {
    let (username, display_name) = user.names();
    check_new_password(
        candidate,
        &PasswordContext {
            username,
            display_name,
            site_name: ctx.site_name(),
        },
    )
    .err()
}

/// The argon2id PHC string to store for `candidate`, chosen for `user`: refused when it
/// breaks a rule of [`crate::domain::password_rules`] (with the site's name as context) or,
/// for an existing user with a password, when it is the current one
/// ([`PasswordProblem::SameAsCurrent`]). The caller stores the hash
/// (`Store::set_password_hash` or a new user's row).
pub async fn choose(
    ctx: &Context,
    user: &ChosenFor<'_>,
    candidate: &str,
) -> Result<String, PasswordChoiceError> {
    if let Some(problem) = problem(ctx, user, candidate) {
        return Err(problem.into());
    }
    // The domain rule is the stricter: this cannot refuse after it, but a refusal would
    // stay a refusal.
    let password =
        Password::new_password(candidate.to_owned()).map_err(|error| match error.as_problem() {
            Some(problem) => PasswordChoiceError::Refused(problem),
            None => PasswordChoiceError::Hashing(error),
        })?;
    if let ChosenFor::Existing(existing) = user {
        if let Some((_, current)) = ctx
            .store
            .user_with_password_hash(&existing.username)
            .await?
        {
            if ctx.hasher.verify(&password, Some(&current)).await {
                return Err(PasswordProblem::SameAsCurrent.into());
            }
        }
    }
    ctx.hasher
        .hash(&password)
        .await
        .map_err(PasswordChoiceError::Hashing)
}
