//! What Edit User shows beside the form (SPEC section 11): the user's device with its
//! method, prompt mode, when it was enrolled and last used, and the lock with its end.
//! and how many recovery codes are left.

use super::{Actor, Admin, AdminError, UserView};
use crate::clock::Timestamp;
use crate::domain::{OtpMethod, Permission, PromptMode};

/// A user's confirmed device as Edit User shows it.
#[derive(Clone, Debug)]
pub struct DeviceDetails {
    pub method: OtpMethod,
    pub prompt_mode: PromptMode,
    /// When it was confirmed ("enrolled").
    pub enrolled_at: Option<Timestamp>,
    /// The last accepted code of the device (`Store::device_last_used`).
    pub last_used: Option<Timestamp>,
}

/// Edit User's facts about a user.
#[derive(Clone, Debug)]
pub struct UserDetails {
    pub view: UserView,
    pub device: Option<DeviceDetails>,
    /// While locked: when the lock ends ([`Timestamp::NEVER`]: when an administrator
    /// unlocks it).
    pub locked_until: Option<Timestamp>,
    /// Unused recovery codes (SPEC 10).
    pub recovery_codes_left: u32,
    /// Security keys and passkeys (SPEC 14), oldest first.
    pub security_keys: Vec<crate::domain::SecurityKey>,
}

impl Admin {
    /// The user with their device and lock, for Edit User (Manage Users).
    pub async fn user_details(
        &self,
        actor: &Actor,
        username: &str,
    ) -> Result<UserDetails, AdminError> {
        actor.require(Permission::ManageUsers)?;
        let view = self.get_user(actor, username).await?;
        let device = match self.ctx.store.confirmed_device(view.user.id).await? {
            Some(device) => {
                let enrolled_at = self.ctx.store.device_confirmed_at(device.id).await?;
                let last_used = self
                    .ctx
                    .store
                    .device_last_used(view.user.username.as_str(), enrolled_at)
                    .await?;
                Some(DeviceDetails {
                    method: device.method(),
                    prompt_mode: device.prompt_mode,
                    enrolled_at,
                    last_used,
                })
            }
            None => None,
        };
        let locked_until = if view.locked {
            view.user.locked_until
        } else {
            None
        };
        let recovery_codes_left = view.recovery_codes_left;
        let security_keys = self
            .ctx
            .store
            .security_keys(view.user.id)
            .await?
            .into_iter()
            .map(|stored| stored.key)
            .collect();
        Ok(UserDetails {
            view,
            device,
            locked_until,
            recovery_codes_left,
            security_keys,
        })
    }

    /// How many users of the role have no confirmed device: they will have to set one up
    /// at their next sign-in when the role is saved with Use 2FA = Force.
    pub async fn role_users_without_device(
        &self,
        actor: &Actor,
        role: &str,
    ) -> Result<u64, AdminError> {
        actor.require(Permission::ManageRoles)?;
        let role = self
            .ctx
            .store
            .role_by_name(role)
            .await?
            .ok_or(AdminError::NotFound("role"))?;
        Ok(self.ctx.store.users_without_device(role.id).await?)
    }
}
