//! Every problem of a form at once (SPEC section 11: "console forms report every error at
//! once"). The operations in [`Admin`] stop at the first invalid value; these checks look
//! at every field first, with the same parsers, so that a form can list them all.

use super::directory_users::{owned_by_directory, ProposedChange};
use super::{
    parse_email, parse_permissions, role_security, session_limits, Actor, Admin, AdminError,
    RolePatch, UserInput, UserPatch,
};
use crate::domain::{DisplayName, Permission, RoleName, SessionLimits, Username};
use crate::service::passwords::{self, ChosenFor};

/// A field's problem: the field's name and the message.
pub type Problem = (&'static str, String);

impl Admin {
    /// The problems of a new user's fields, all of them, in the form's order (username,
    /// display name, email, role, password); empty when [`Admin::create_user`] would
    /// accept the values (a race can still make it refuse, e.g. a username taken since).
    pub async fn new_user_problems(
        &self,
        actor: &Actor,
        input: &UserInput,
    ) -> Result<Vec<Problem>, AdminError> {
        actor.require(Permission::ManageUsers)?;
        let mut problems = Vec::new();
        match Username::parse(&input.username) {
            Ok(name) => {
                if self.ctx.store.user_by_username(&name).await?.is_some() {
                    problems.push((
                        "username",
                        "a user with this username already exists".to_owned(),
                    ));
                }
            }
            Err(error) => problems.push(("username", error.to_string())),
        }
        if let Err(error) = DisplayName::parse(&input.display_name) {
            problems.push(("display_name", error.to_string()));
        }
        if let Err(AdminError::Invalid { field, message }) = parse_email(input.email.as_deref()) {
            problems.push((field, message));
        }
        match self.role_named(&input.role, "role").await {
            Ok(_) => {}
            Err(AdminError::Invalid { field, message }) => problems.push((field, message)),
            Err(other) => return Err(other),
        }
        let chosen_for = ChosenFor::New {
            username: input.username.trim(),
            display_name: input.display_name.trim(),
        };
        if let Some(problem) = passwords::problem(&self.ctx, &chosen_for, &input.password) {
            problems.push(("password", problem.to_string()));
        }
        Ok(problems)
    }

    /// The problems of an Edit User patch, all of them (display name, email, role,
    /// password, checked for `username` without the "not the current one" rule, which
    /// needs the hash), as [`Admin::update_user`] would find them one by one.
    pub async fn user_patch_problems(
        &self,
        actor: &Actor,
        username: &str,
        patch: &UserPatch,
    ) -> Result<Vec<Problem>, AdminError> {
        actor.require(Permission::ManageUsers)?;
        let user = self.user_named(username).await?;
        let mut problems = Vec::new();
        let mut display_name = None;
        if let Some(name) = &patch.display_name {
            match DisplayName::parse(name) {
                Ok(name) => display_name = Some(name),
                Err(error) => problems.push(("display_name", error.to_string())),
            }
        }
        let mut email = None;
        if let Some(text) = &patch.email {
            match parse_email(text.as_deref()) {
                Ok(parsed) => email = Some(parsed),
                Err(AdminError::Invalid { field, message }) => problems.push((field, message)),
                Err(other) => return Err(other),
            }
        }
        let mut role_id = None;
        if let Some(role) = &patch.role {
            match self.role_named(role, "role").await {
                Ok(role) => role_id = Some(role.id),
                Err(AdminError::Invalid { field, message }) => problems.push((field, message)),
                Err(other) => return Err(other),
            }
        }
        let owned = owned_by_directory(
            &user,
            &ProposedChange {
                display_name: display_name.as_ref(),
                email: email.as_ref(),
                role_id,
                password: patch.password.is_some(),
            },
        );
        if !owned.is_empty() {
            // The password rules do not apply to a password that cannot be set.
            problems.extend(owned);
            return Ok(problems);
        }
        if let Some(password) = &patch.password {
            let chosen_for = ChosenFor::New {
                username: user.username.as_str(),
                display_name: patch
                    .display_name
                    .as_deref()
                    .unwrap_or(user.display_name.as_str())
                    .trim(),
            };
            if let Some(problem) = passwords::problem(&self.ctx, &chosen_for, password) {
                problems.push(("password", problem.to_string()));
            }
        }
        Ok(problems)
    }

    /// The problems of a role form (name, Require 2FA with OTP Required and Interface,
    /// permissions), all of them; a field the patch leaves out is not checked.
    pub fn role_problems(
        &self,
        actor: &Actor,
        patch: &RolePatch,
    ) -> Result<Vec<Problem>, AdminError> {
        actor.require(Permission::ManageRoles)?;
        let mut problems = Vec::new();
        if let Some(name) = &patch.name {
            if let Err(error) = RoleName::parse(name) {
                problems.push(("name", error.to_string()));
            }
        }
        if let Some(require_2fa) = &patch.require_2fa {
            if let Err(AdminError::Invalid { field, message }) = role_security(
                require_2fa,
                patch.otp_required.unwrap_or(false),
                patch.interface.unwrap_or(false),
            ) {
                problems.push((field, message));
            }
        }
        if let Some(permissions) = &patch.permissions {
            if let Err(AdminError::Invalid { field, message }) = parse_permissions(permissions) {
                problems.push((field, message));
            }
        }
        // SPEC 15: each limit on its own, so that both are reported.
        for one in [
            RolePatch {
                session_idle_minutes: patch.session_idle_minutes,
                ..RolePatch::default()
            },
            RolePatch {
                session_max_hours: patch.session_max_hours,
                ..RolePatch::default()
            },
        ] {
            if let Err(AdminError::Invalid { field, message }) =
                session_limits(&one, SessionLimits::DEFAULT)
            {
                problems.push((field, message));
            }
        }
        Ok(problems)
    }
}
