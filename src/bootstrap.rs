//! First start on a new database (SPEC sections 8 and 9): the default roles and the
//! bootstrap administrator `admin`.

use rand::{CryptoRng, RngCore};

use crate::clock::Timestamp;
use crate::domain::{check_new_password, PasswordContext, PasswordProblem};
use crate::password::{Password, PasswordError, PasswordHasher};
use crate::store::{Store, StoreError, ADMIN_USERNAME};

/// What the first start did.
#[derive(Debug)]
pub enum Bootstrap {
    /// The database already had its roles and users; nothing changed.
    Existing,
    /// Created with the password given by `TWOSTEP_ADMIN_PASSWORD` (no forced change).
    CreatedWithGivenPassword,
    /// Created with this random password, to be printed once and changed at the first
    /// sign-in.
    CreatedWithGeneratedPassword(Password),
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("TWOSTEP_ADMIN_PASSWORD is not acceptable: {0}")]
    GivenPassword(#[source] PasswordProblem),
    #[error("the administrator password could not be hashed")]
    Hashing(#[source] PasswordError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates the default roles and `admin` on a new database; does nothing on an existing
/// one. `given_password` is `TWOSTEP_ADMIN_PASSWORD`, checked like any new password (SPEC
/// section 10's rules, with `admin`, "Administrator" and `site_name` as context words).
pub async fn first_start(
    store: &Store,
    hasher: &PasswordHasher,
    given_password: Option<String>,
    site_name: &str,
    now: Timestamp,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<Bootstrap, BootstrapError> {
    if !store.list_roles().await?.is_empty() {
        return Ok(Bootstrap::Existing);
    }
    let (password, generated) = match given_password {
        Some(text) => {
            check_new_password(
                &text,
                &PasswordContext {
                    username: ADMIN_USERNAME,
                    display_name: "Administrator",
                    site_name,
                },
            )
            .map_err(BootstrapError::GivenPassword)?;
            let password =
                Password::new_password(text).map_err(|error| match error.as_problem() {
                    Some(problem) => BootstrapError::GivenPassword(problem),
                    None => BootstrapError::Hashing(error),
                })?;
            (password, false)
        }
        None => (Password::generate(rng), true),
    };
    let hash = hasher
        .hash(&password)
        .await
        .map_err(BootstrapError::Hashing)?;
    if !store.bootstrap(&hash, generated, now).await? {
        // Another instance bootstrapped the same database at the same moment.
        return Ok(Bootstrap::Existing);
    }
    Ok(if generated {
        Bootstrap::CreatedWithGeneratedPassword(password)
    } else {
        Bootstrap::CreatedWithGivenPassword
    })
}
