//! Administration (SPEC sections 5, 6 and 7): users, devices, roles, system settings, IP
//! rules, the OTP email template, the audit log and API tokens. Shared by the admin pages,
//! the admin JSON API and the command line; every operation checks the actor's
//! permission here and audits every change with the actor and, for roles and settings,
//! the values before and after.

use std::collections::BTreeSet;

use rand::rngs::OsRng;

mod applications;
mod audit_chain;
mod checks;
mod confirm;
use confirm::ip_rule_note;
mod details;
mod directory_users;
mod keys;
mod temporary_access;
pub use applications::{ApplicationInput, ApplicationPatch, NewApplication};
pub use checks::Problem;
pub use details::{DeviceDetails, UserDetails};
pub use directory_users::DIRECTORY_PASSWORD;
use directory_users::{owned_by_directory, ProposedChange};
pub use temporary_access::IssuedAccess;

use super::devices::{self, SetupError, SetupInfo};
use super::emailed::{self, SaveTemplateError};
use super::passwords::{self, ChosenFor, PasswordChoiceError};
use super::recovery::{self, Revocation};
use super::{notify, Context};
use crate::clock::Timestamp;
use crate::crypto::Token;
use crate::domain::{
    AuditEntry, DisplayName, Email, IpNetwork, IpRule, OtpMethod, Permission, PromptMode,
    Require2fa, Role, RoleName, RoleSecurity, SessionLimits, SettingKey, Settings, User, Username,
};
use crate::domain::{AuditEvent, SecurityEvent};
use crate::domain::{DirectoryLink, UserSource};
use crate::mail::template::EmailTemplate;
use crate::otp::OtpCode;
use crate::store::{
    AuditQuery, Conflict, NewUser, RoleChange, StoreError, StoredIpRule, UserChange,
};

/// Who acts.
#[derive(Clone, Debug)]
pub enum Actor {
    /// A signed-in administrator (or an API token acting for one): their role's permissions.
    User { user: User, role: Role },
    /// The command line on the server itself: every permission (it has the database).
    Cli,
}

impl Actor {
    pub fn name(&self) -> &str {
        match self {
            Self::User { user, .. } => user.username.as_str(),
            Self::Cli => "cli",
        }
    }

    pub fn has(&self, permission: Permission) -> bool {
        match self {
            Self::User { role, .. } => role.has(permission),
            Self::Cli => true,
        }
    }

    fn require(&self, permission: Permission) -> Result<(), AdminError> {
        if self.has(permission) {
            Ok(())
        } else {
            Err(AdminError::Forbidden(permission))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("this needs the permission {}", .0.label())]
    Forbidden(Permission),
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// An IP rule broader than /16 or /48, not confirmed (SPEC section 11).
    #[error("{0} is a broad network ({size}); confirm that it should be added", size = .0.size_text())]
    BroadNetwork(IpNetwork),
    #[error(transparent)]
    Conflict(#[from] Conflict),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(conflict) => Self::Conflict(conflict),
            StoreError::NotFound => Self::NotFound("record"),
            other => Self::Internal(Box::new(other)),
        }
    }
}

fn invalid(field: &'static str, error: impl std::fmt::Display) -> AdminError {
    AdminError::Invalid {
        field,
        message: error.to_string(),
    }
}

/// A password refused by `service::passwords` is the password field's error.
fn password_refused(error: PasswordChoiceError) -> AdminError {
    match error {
        PasswordChoiceError::Refused(problem) => invalid("password", problem),
        PasswordChoiceError::Store(error) => error.into(),
        other => AdminError::Internal(Box::new(other)),
    }
}

/// A user as the console shows it.
#[derive(Clone, Debug)]
pub struct UserView {
    pub user: User,
    pub role: String,
    /// "2 Step Verification: Enabled" (a confirmed device, or a security key).
    pub two_step_enabled: bool,
    pub locked: bool,
    /// Locked until an administrator unlocks (Lockout Minutes 0, or the hard limit).
    pub locked_until_unlock: bool,
    /// Unused recovery codes (SPEC 10).
    pub recovery_codes_left: u32,
    /// A directory user's entry as last read (SPEC 12); `None` for a local account.
    pub directory: Option<DirectoryLink>,
}

/// A new user.
#[derive(Clone, Debug, Default)]
pub struct UserInput {
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub role: String,
    pub password: String,
    /// The user must choose a new password at the next sign-in.
    pub must_change_password: bool,
}

/// Changes to a user; `None` keeps a field.
#[derive(Clone, Debug, Default)]
pub struct UserPatch {
    pub display_name: Option<String>,
    /// `Some(None)` or `Some(Some(""))` removes the address.
    pub email: Option<Option<String>>,
    pub role: Option<String>,
    pub active: Option<bool>,
    /// Reset password (the user must change it at the next sign-in).
    pub password: Option<String>,
}

/// A role's values; on update, `None` keeps one.
#[derive(Clone, Debug, Default)]
pub struct RolePatch {
    pub name: Option<String>,
    pub require_2fa: Option<String>,
    pub otp_required: Option<bool>,
    pub interface: Option<bool>,
    pub permissions: Option<Vec<String>>,
    /// SPEC 15: 1 to 1440 (default 30 on create).
    pub session_idle_minutes: Option<i64>,
    /// SPEC 15: 1 to 168 (default 12 on create).
    pub session_max_hours: Option<i64>,
}

fn role_text(role: &Role) -> String {
    format!(
        "name={} require_2fa={} otp_required={} interface={} permissions=[{}] \
         session_idle_minutes={} session_max_hours={}",
        role.name,
        role.security.require_2fa().as_str(),
        role.security.otp_required(),
        role.security.interface(),
        role.permissions
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(","),
        role.session_limits.idle_minutes(),
        role.session_limits.max_hours(),
    )
}

/// SPEC 15: a patch's session limits over `current`; each bad value is its field's error.
fn session_limits(patch: &RolePatch, current: SessionLimits) -> Result<SessionLimits, AdminError> {
    let limits = match patch.session_idle_minutes {
        Some(minutes) => current
            .with_idle_minutes(minutes)
            .map_err(|e| invalid("session_idle_minutes", e))?,
        None => current,
    };
    match patch.session_max_hours {
        Some(hours) => limits
            .with_max_hours(hours)
            .map_err(|e| invalid("session_max_hours", e)),
        None => Ok(limits),
    }
}

/// The administration service.
#[derive(Clone)]
pub struct Admin {
    ctx: Context,
}

impl Admin {
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }

    pub fn context(&self) -> &Context {
        &self.ctx
    }

    async fn audit(
        &self,
        actor: &Actor,
        event: AuditEvent,
        subject: Option<&str>,
        ip: Option<&str>,
        detail: String,
    ) -> Result<(), AdminError> {
        Ok(self
            .ctx
            .audit(event, Some(actor.name()), subject, ip, detail)
            .await?)
    }

    // ----- users (Manage Users) -----

    async fn user_named(&self, username: &str) -> Result<User, AdminError> {
        let name = Username::parse(username).map_err(|_| AdminError::NotFound("user"))?;
        self.ctx
            .store
            .user_by_username(&name)
            .await?
            .ok_or(AdminError::NotFound("user"))
    }

    async fn role_named(&self, name: &str, field: &'static str) -> Result<Role, AdminError> {
        self.ctx.store.role_by_name(name).await?.ok_or_else(|| {
            invalid(
                field,
                format!(
                    "there is no role named \"{}\"",
                    name.chars().take(64).collect::<String>()
                ),
            )
        })
    }

    async fn view(&self, user: User) -> Result<UserView, AdminError> {
        let role = self
            .ctx
            .store
            .role_by_id(user.role_id)
            .await?
            .map(|r| r.name.as_str().to_owned())
            .unwrap_or_default();
        let two_step_enabled = self.ctx.store.confirmed_device(user.id).await?.is_some()
            || self.ctx.store.has_security_key(user.id).await?;
        let locked = user.is_locked(self.ctx.now());
        let locked_until_unlock = locked && user.locked_until == Some(Timestamp::NEVER);
        let recovery_codes_left = self.ctx.store.recovery_codes_left(user.id).await?;
        let directory = match user.source {
            UserSource::Local => None,
            UserSource::Directory => self.ctx.store.directory_link(user.id).await?,
        };
        Ok(UserView {
            user,
            role,
            two_step_enabled,
            locked,
            locked_until_unlock,
            recovery_codes_left,
            directory,
        })
    }

    pub async fn list_users(
        &self,
        actor: &Actor,
        search: Option<&str>,
        offset: u32,
        limit: u32,
    ) -> Result<(Vec<UserView>, u64), AdminError> {
        actor.require(Permission::ManageUsers)?;
        let (users, total) = self
            .ctx
            .store
            .list_users(search, offset, limit.clamp(1, 200))
            .await?;
        let mut views = Vec::with_capacity(users.len());
        for user in users {
            views.push(self.view(user).await?);
        }
        Ok((views, total))
    }

    pub async fn get_user(&self, actor: &Actor, username: &str) -> Result<UserView, AdminError> {
        actor.require(Permission::ManageUsers)?;
        let user = self.user_named(username).await?;
        self.view(user).await
    }

    pub async fn create_user(
        &self,
        actor: &Actor,
        input: &UserInput,
        ip: Option<&str>,
    ) -> Result<UserView, AdminError> {
        actor.require(Permission::ManageUsers)?;
        let username = Username::parse(&input.username).map_err(|e| invalid("username", e))?;
        let display_name =
            DisplayName::parse(&input.display_name).map_err(|e| invalid("display_name", e))?;
        let email = parse_email(input.email.as_deref())?;
        let role = self.role_named(&input.role, "role").await?;
        let hash = passwords::choose(
            &self.ctx,
            &ChosenFor::New {
                username: username.as_str(),
                display_name: display_name.as_str(),
            },
            &input.password,
        )
        .await
        .map_err(password_refused)?;
        let user = self
            .ctx
            .store
            .create_user(
                &NewUser {
                    username,
                    display_name,
                    email,
                    role_id: role.id,
                    password_hash: hash,
                    must_change_password: input.must_change_password,
                },
                self.ctx.now(),
            )
            .await?;
        self.audit(
            actor,
            AuditEvent::UserCreated,
            Some(user.username.as_str()),
            ip,
            format!("role={}", role.name),
        )
        .await?;
        self.view(user).await
    }

    pub async fn update_user(
        &self,
        actor: &Actor,
        username: &str,
        patch: &UserPatch,
        ip: Option<&str>,
    ) -> Result<UserView, AdminError> {
        actor.require(Permission::ManageUsers)?;
        let user = self.user_named(username).await?;
        let display_name = patch
            .display_name
            .as_deref()
            .map(|name| DisplayName::parse(name).map_err(|e| invalid("display_name", e)))
            .transpose()?;
        let email = match &patch.email {
            Some(value) => Some(parse_email(value.as_deref())?),
            None => None,
        };
        let role = match &patch.role {
            Some(name) => Some(self.role_named(name, "role").await?),
            None => None,
        };
        // What a directory user's entry owns is refused before anything changes.
        let owned = owned_by_directory(
            &user,
            &ProposedChange {
                display_name: display_name.as_ref(),
                email: email.as_ref(),
                role_id: role.as_ref().map(|role| role.id),
                password: patch.password.is_some(),
            },
        );
        if let Some((field, message)) = owned.into_iter().next() {
            return Err(AdminError::Invalid { field, message });
        }
        let directory_user = user.source == UserSource::Directory;
        // The same values, sent by the console's form, are no change for a directory user.
        let display_name = display_name.filter(|_| !directory_user);
        let email = email.filter(|_| !directory_user);
        let role = role.filter(|_| !directory_user);
        // Checked before anything changes: a refused password leaves the user as it was.
        // The rules see the display name the user will have.
        let hash = match &patch.password {
            Some(text) => {
                let renamed;
                let chosen_for = match &display_name {
                    Some(name) => {
                        renamed = User {
                            display_name: name.clone(),
                            ..user.clone()
                        };
                        ChosenFor::Existing(&renamed)
                    }
                    None => ChosenFor::Existing(&user),
                };
                Some(
                    passwords::choose(&self.ctx, &chosen_for, text)
                        .await
                        .map_err(password_refused)?,
                )
            }
            None => None,
        };
        let now = self.ctx.now();
        let change = UserChange {
            display_name,
            email,
            role_id: role.as_ref().map(|r| r.id),
            active: patch.active,
        };
        let updated = self.ctx.store.update_user(user.id, &change, now).await?;
        let mut changed = Vec::new();
        if change.display_name.is_some() {
            changed.push("display_name".to_owned());
        }
        if change.email.is_some() {
            changed.push("email".to_owned());
        }
        if let Some(role) = &role {
            changed.push(format!("role={}", role.name));
        }
        if let Some(active) = patch.active {
            changed.push(format!("active={active}"));
            if !active {
                self.ctx.store.delete_user_sessions(user.id).await?;
            }
        }
        if let Some(hash) = hash {
            self.ctx
                .store
                .set_password_hash(user.id, &hash, true, now)
                .await?;
            self.ctx.store.delete_user_sessions(user.id).await?;
            self.audit(
                actor,
                AuditEvent::PasswordChanged,
                Some(user.username.as_str()),
                ip,
                "reset by an administrator".into(),
            )
            .await?;
            notify::security_logged(&self.ctx, &updated, SecurityEvent::PasswordReset, ip).await;
        }
        if !changed.is_empty() {
            self.audit(
                actor,
                AuditEvent::UserChanged,
                Some(user.username.as_str()),
                ip,
                changed.join(" "),
            )
            .await?;
        }
        let refreshed = self
            .ctx
            .store
            .user_by_id(updated.id)
            .await?
            .ok_or(AdminError::NotFound("user"))?;
        self.view(refreshed).await
    }

    pub async fn delete_user(
        &self,
        actor: &Actor,
        username: &str,
        ip: Option<&str>,
    ) -> Result<(), AdminError> {
        actor.require(Permission::ManageUsers)?;
        let user = self.user_named(username).await?;
        if let Actor::User { user: me, .. } = actor {
            if me.id == user.id {
                return Err(invalid("username", "you cannot delete your own account"));
            }
        }
        self.ctx.store.delete_user(user.id).await?;
        self.audit(
            actor,
            AuditEvent::UserDeleted,
            Some(user.username.as_str()),
            ip,
            String::new(),
        )
        .await
    }

    pub async fn unlock(
        &self,
        actor: &Actor,
        username: &str,
        ip: Option<&str>,
    ) -> Result<(), AdminError> {
        actor.require(Permission::ManageUsers)?;
        let user = self.user_named(username).await?;
        self.ctx.store.unlock(user.id).await?;
        self.audit(
            actor,
            AuditEvent::Unlocked,
            Some(user.username.as_str()),
            ip,
            String::new(),
        )
        .await
    }

    /// The role names a user can be given (the role select of Add User and Edit User).
    pub async fn role_choices(&self, actor: &Actor) -> Result<Vec<String>, AdminError> {
        actor.require(Permission::ManageUsers)?;
        Ok(self
            .ctx
            .store
            .list_roles()
            .await?
            .into_iter()
            .map(|role| role.name.as_str().to_owned())
            .collect())
    }

    /// The methods Setup offers (system setting Use 2FA).
    pub async fn setup_methods(&self, actor: &Actor) -> Result<&'static [OtpMethod], AdminError> {
        actor.require(Permission::ManageUsers)?;
        Ok(self.ctx.store.settings().await?.use_2fa().methods())
    }

    // ----- a user's device (Manage Users): Setup, Complete Setup, Disable -----

    /// Setup, or Setup New Device when one exists (the old one works until the new one is
    /// confirmed).
    pub async fn setup_device(
        &self,
        actor: &Actor,
        username: &str,
        method: OtpMethod,
        prompt_mode: PromptMode,
    ) -> Result<SetupInfo, AdminError> {
        actor.require(Permission::ManageUsers)?;
        let user = self.user_named(username).await?;
        let settings = self.ctx.store.settings().await?;
        devices::begin_setup(&self.ctx, &user, settings.use_2fa(), method, prompt_mode)
            .await
            .map_err(setup_error)
    }

    /// The pending set-up of a user, if any (to show its QR code again).
    pub async fn pending_setup(
        &self,
        actor: &Actor,
        username: &str,
    ) -> Result<Option<SetupInfo>, AdminError> {
        actor.require(Permission::ManageUsers)?;
        let user = self.user_named(username).await?;
        let pending = self.ctx.store.pending_device(user.id).await?;
        Ok(pending.map(|device| devices::setup_info(&self.ctx, &user, &device)))
    }

    /// Complete Setup with a code from the user's app.
    pub async fn confirm_device(
        &self,
        actor: &Actor,
        username: &str,
        code: &str,
        ip: Option<&str>,
    ) -> Result<(), AdminError> {
        actor.require(Permission::ManageUsers)?;
        let user = self.user_named(username).await?;
        let code = OtpCode::parse(code).map_err(|e| invalid("code", e))?;
        devices::complete_setup(&self.ctx, &user, &code, actor.name(), ip)
            .await
            .map_err(setup_error)?;
        // A new device gets a new set of recovery codes: the old set no longer works.
        recovery::revoke(
            &self.ctx,
            &user,
            actor.name(),
            ip,
            Revocation::DeviceChanged,
        )
        .await?;
        Ok(())
    }

    /// Change -> Disable.
    pub async fn disable_device(
        &self,
        actor: &Actor,
        username: &str,
        ip: Option<&str>,
    ) -> Result<bool, AdminError> {
        actor.require(Permission::ManageUsers)?;
        let user = self.user_named(username).await?;
        let had = devices::disable(&self.ctx, &user, actor.name(), ip).await?;
        // The recovery codes go with the device.
        recovery::revoke(
            &self.ctx,
            &user,
            actor.name(),
            ip,
            Revocation::DeviceChanged,
        )
        .await?;
        Ok(had)
    }

    /// Revoke recovery codes (the permission that disables a user's device): every code
    /// of the user stops working. How many unused codes there were.
    pub async fn revoke_recovery_codes(
        &self,
        actor: &Actor,
        username: &str,
        ip: Option<&str>,
    ) -> Result<u32, AdminError> {
        actor.require(Permission::ManageUsers)?;
        let user = self.user_named(username).await?;
        Ok(recovery::revoke(&self.ctx, &user, actor.name(), ip, Revocation::Revoked).await?)
    }

    // ----- roles (Manage Roles) -----

    pub async fn list_roles(&self, actor: &Actor) -> Result<Vec<Role>, AdminError> {
        actor.require(Permission::ManageRoles)?;
        Ok(self.ctx.store.list_roles().await?)
    }

    pub async fn get_role(&self, actor: &Actor, name: &str) -> Result<Role, AdminError> {
        actor.require(Permission::ManageRoles)?;
        self.ctx
            .store
            .role_by_name(name)
            .await?
            .ok_or(AdminError::NotFound("role"))
    }

    pub async fn create_role(
        &self,
        actor: &Actor,
        input: &RolePatch,
        ip: Option<&str>,
    ) -> Result<Role, AdminError> {
        actor.require(Permission::ManageRoles)?;
        let name =
            RoleName::parse(input.name.as_deref().unwrap_or("")).map_err(|e| invalid("name", e))?;
        let security = role_security(
            input.require_2fa.as_deref().unwrap_or("no"),
            input.otp_required.unwrap_or(false),
            input.interface.unwrap_or(false),
        )?;
        let permissions = parse_permissions(input.permissions.as_deref().unwrap_or(&[]))?;
        let limits = session_limits(input, SessionLimits::DEFAULT)?;
        let role = self
            .ctx
            .store
            .create_role(&name, security, &permissions, limits, self.ctx.now())
            .await?;
        self.audit(
            actor,
            AuditEvent::RoleChanged,
            None,
            ip,
            format!("created: {}", role_text(&role)),
        )
        .await?;
        Ok(role)
    }

    pub async fn update_role(
        &self,
        actor: &Actor,
        name: &str,
        patch: &RolePatch,
        ip: Option<&str>,
    ) -> Result<Role, AdminError> {
        actor.require(Permission::ManageRoles)?;
        let before = self
            .ctx
            .store
            .role_by_name(name)
            .await?
            .ok_or(AdminError::NotFound("role"))?;
        let new_name = patch
            .name
            .as_deref()
            .map(|n| RoleName::parse(n).map_err(|e| invalid("name", e)))
            .transpose()?;
        let security = role_security(
            patch
                .require_2fa
                .as_deref()
                .unwrap_or(before.security.require_2fa().as_str()),
            patch.otp_required.unwrap_or(before.security.otp_required()),
            patch.interface.unwrap_or(before.security.interface()),
        )?;
        let permissions = patch
            .permissions
            .as_deref()
            .map(parse_permissions)
            .transpose()?;
        let limits = session_limits(patch, before.session_limits)?;
        let after = self
            .ctx
            .store
            .update_role(
                before.id,
                &RoleChange {
                    name: new_name,
                    security: Some(security),
                    permissions,
                    session_limits: Some(limits),
                },
                self.ctx.now(),
            )
            .await?;
        self.audit(
            actor,
            AuditEvent::RoleChanged,
            None,
            ip,
            format!(
                "before: {}; after: {}",
                role_text(&before),
                role_text(&after)
            ),
        )
        .await?;
        Ok(after)
    }

    // ----- system settings (Manage System Settings; the bypass also Manage 2FA Bypass) -----

    /// The settings, for a holder of any permission that changes one (the settings table's:
    /// Manage System Settings, or Manage 2FA Bypass to change the bypass).
    pub async fn settings(&self, actor: &Actor) -> Result<Settings, AdminError> {
        if !SettingKey::ALL
            .iter()
            .any(|key| actor.has(key.permission()))
        {
            return Err(AdminError::Forbidden(Permission::ManageSystemSettings));
        }
        Ok(self.ctx.store.settings().await?)
    }

    /// The directory's address and connection state (SPEC 12), for System Settings;
    /// `None` when directory sign-in is off. Needs Manage System Settings.
    pub fn directory_status(
        &self,
        actor: &Actor,
    ) -> Result<Option<super::directory::DirectoryStatus>, AdminError> {
        actor.require(Permission::ManageSystemSettings)?;
        Ok(self.ctx.directory_status())
    }

    /// Why security keys cannot be offered (SPEC 14: System Settings says it), `None` when
    /// they can.
    pub fn security_keys_problem(&self, actor: &Actor) -> Result<Option<String>, AdminError> {
        actor.require(Permission::ManageSystemSettings)?;
        Ok(self.ctx.security_keys_problem().map(ToString::to_string))
    }

    /// Applies several changes at once (all or none). Each setting needs the permission of
    /// its row of the settings table (Enable Bypass 2FA OTP: Manage 2FA Bypass; every other
    /// setting: Manage System Settings). Each changed setting is
    /// audited with its value before and after. No changes at all is a read, with the
    /// read's permission check (the answer is the settings).
    pub async fn update_settings(
        &self,
        actor: &Actor,
        changes: &[(SettingKey, String)],
        ip: Option<&str>,
    ) -> Result<Settings, AdminError> {
        if changes.is_empty() {
            return self.settings(actor).await;
        }
        for (key, _) in changes {
            actor.require(key.permission())?;
        }
        let before = self.ctx.store.settings().await?;
        let after = before
            .with_changes(changes.iter().map(|(key, value)| (*key, value.as_str())))
            .map_err(|error| AdminError::Invalid {
                field: error.key().map_or("settings", SettingKey::name),
                message: error.to_string(),
            })?;
        self.ctx.store.save_settings(&after, self.ctx.now()).await?;
        for key in SettingKey::ALL {
            let (old, new) = (before.get(key), after.get(key));
            if old != new {
                self.audit(
                    actor,
                    AuditEvent::SettingChanged,
                    None,
                    ip,
                    format!("{}: {old} -> {new}", key.name()),
                )
                .await?;
            }
        }
        Ok(after)
    }

    // ----- IP Settings (Manage IP Settings) -----

    pub async fn ip_rules(&self, actor: &Actor) -> Result<Vec<StoredIpRule>, AdminError> {
        actor.require(Permission::ManageIpSettings)?;
        Ok(self.ctx.store.ip_rules().await?)
    }

    /// "Add Acceptable IP Rule"; a network already present is refused ("already exists").
    pub async fn add_ip_rule(
        &self,
        actor: &Actor,
        network: &str,
        bypass_2fa: bool,
        note: &str,
        ip: Option<&str>,
    ) -> Result<StoredIpRule, AdminError> {
        actor.require(Permission::ManageIpSettings)?;
        let network = IpNetwork::parse(network).map_err(|e| invalid("network", e))?;
        let note = ip_rule_note(note)?;
        let rule = self
            .ctx
            .store
            .add_ip_rule(
                &IpRule {
                    network,
                    bypass_2fa,
                    note: note.to_owned(),
                },
                self.ctx.now(),
            )
            .await?;
        self.audit(
            actor,
            AuditEvent::IpRuleChanged,
            None,
            ip,
            format!("added {network} bypass_2fa={bypass_2fa}"),
        )
        .await?;
        Ok(rule)
    }

    pub async fn remove_ip_rule(
        &self,
        actor: &Actor,
        id: i64,
        ip: Option<&str>,
    ) -> Result<(), AdminError> {
        actor.require(Permission::ManageIpSettings)?;
        let rule = self
            .ctx
            .store
            .ip_rule(id)
            .await?
            .ok_or(AdminError::NotFound("IP rule"))?;
        self.ctx.store.remove_ip_rule(id).await?;
        self.audit(
            actor,
            AuditEvent::IpRuleChanged,
            None,
            ip,
            format!("removed {}", rule.rule.network),
        )
        .await
    }

    // ----- the OTP email template (Manage System Settings) -----

    pub async fn otp_template(&self, actor: &Actor) -> Result<EmailTemplate, AdminError> {
        actor.require(Permission::ManageSystemSettings)?;
        Ok(emailed::otp_template(&self.ctx).await?)
    }

    pub async fn save_otp_template(
        &self,
        actor: &Actor,
        template: &EmailTemplate,
        ip: Option<&str>,
    ) -> Result<(), AdminError> {
        actor.require(Permission::ManageSystemSettings)?;
        emailed::save_otp_template(&self.ctx, template, actor.name(), ip)
            .await
            .map_err(|error| match error {
                SaveTemplateError::Invalid(invalid_template) => {
                    invalid("template", invalid_template)
                }
                SaveTemplateError::Store(store) => store.into(),
            })
    }

    /// The security notification template of `event` in force (SPEC section 10).
    pub async fn security_template(
        &self,
        actor: &Actor,
        event: SecurityEvent,
    ) -> Result<EmailTemplate, AdminError> {
        actor.require(Permission::ManageSystemSettings)?;
        Ok(notify::template(&self.ctx, event).await?)
    }

    /// Replaces the security notification template of `event`; audited.
    pub async fn save_security_template(
        &self,
        actor: &Actor,
        event: SecurityEvent,
        template: &EmailTemplate,
        ip: Option<&str>,
    ) -> Result<(), AdminError> {
        actor.require(Permission::ManageSystemSettings)?;
        notify::save_template(&self.ctx, event, template, actor.name(), ip)
            .await
            .map_err(|error| match error {
                SaveTemplateError::Invalid(invalid_template) => {
                    invalid("template", invalid_template)
                }
                SaveTemplateError::Store(store) => store.into(),
            })
    }

    // ----- the audit log (View Audit Log) -----

    /// A page of the log, newest first; at most 500 entries per page.
    pub async fn audit_log(
        &self,
        actor: &Actor,
        query: &AuditQuery,
    ) -> Result<Vec<AuditEntry>, AdminError> {
        actor.require(Permission::ViewAuditLog)?;
        let query = AuditQuery {
            limit: query.limit.clamp(1, 500),
            ..query.clone()
        };
        Ok(self.ctx.store.audit_entries(&query).await?)
    }

    // ----- API tokens -----

    /// A new API token acting with the actor's own permissions; the token is returned
    /// once and only its hash is stored.
    pub async fn create_api_token(
        &self,
        actor: &Actor,
        name: &str,
        ip: Option<&str>,
    ) -> Result<Token, AdminError> {
        let Actor::User { user, .. } = actor else {
            return Err(invalid(
                "user",
                "an API token acts for a user; give the user",
            ));
        };
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(invalid("name", "name the token (1 to 100 characters)"));
        }
        let token = Token::generate(&mut OsRng);
        self.ctx
            .store
            .create_api_token(&token.hash(), name, user.id, self.ctx.now())
            .await?;
        self.audit(
            actor,
            AuditEvent::ApiTokenCreated,
            Some(user.username.as_str()),
            ip,
            format!("name={name}"),
        )
        .await?;
        Ok(token)
    }

    /// The actor behind an API token, if it is valid.
    pub async fn actor_for_api_token(&self, token: &str) -> Result<Option<Actor>, AdminError> {
        let Ok(token) = Token::parse(token) else {
            return Ok(None);
        };
        let Some((user, role)) = self.ctx.store.api_token_holder(&token.hash()).await? else {
            return Ok(None);
        };
        if !user.active {
            return Ok(None);
        }
        Ok(Some(Actor::User { user, role }))
    }
}

fn setup_error(error: SetupError) -> AdminError {
    match error {
        SetupError::MethodNotAllowed => invalid(
            "method",
            "this method is not offered (system setting Use 2FA)",
        ),
        SetupError::NoPendingDevice => invalid("code", "set-up was not started; press Setup first"),
        SetupError::WrongCode => invalid(
            "code",
            "the code does not match; enter the code the app shows now",
        ),
        SetupError::Store(store) => store.into(),
    }
}

fn parse_email(text: Option<&str>) -> Result<Option<Email>, AdminError> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => Email::parse(text)
            .map(Some)
            .map_err(|e| invalid("email", e)),
    }
}

fn role_security(
    require_2fa: &str,
    otp_required: bool,
    interface: bool,
) -> Result<RoleSecurity, AdminError> {
    let require = Require2fa::parse(require_2fa)
        .ok_or_else(|| invalid("require_2fa", "Require 2FA must be no, encourage or force"))?;
    RoleSecurity::new(require, otp_required, interface).map_err(|error| {
        let field = match error {
            crate::domain::RoleSecurityError::InterfaceRequires2fa => "require_2fa",
            crate::domain::RoleSecurityError::InterfaceRequiresOtp => "otp_required",
        };
        invalid(field, error)
    })
}

fn parse_permissions(names: &[String]) -> Result<BTreeSet<Permission>, AdminError> {
    names
        .iter()
        .map(|name| {
            Permission::parse(name).ok_or_else(|| {
                invalid(
                    "permissions",
                    format!(
                        "unknown permission \"{}\"",
                        name.chars().take(40).collect::<String>()
                    ),
                )
            })
        })
        .collect()
}
