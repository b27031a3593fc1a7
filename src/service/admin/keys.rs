//! A user's security keys on Edit User (SPEC 14): an administrator sees, names and
//! removes them (Manage Users), each change audited and the user notified.

use super::{Actor, Admin, AdminError};
use crate::domain::{AuditEvent, KeyName, Permission, SecurityEvent, SecurityKey, SecurityKeyId};
use crate::service::notify;

impl Admin {
    /// The user's keys, oldest first.
    pub async fn user_keys(
        &self,
        actor: &Actor,
        username: &str,
    ) -> Result<Vec<SecurityKey>, AdminError> {
        actor.require(Permission::ManageUsers)?;
        let user = self.user_named(username).await?;
        Ok(self
            .ctx
            .store
            .security_keys(user.id)
            .await?
            .into_iter()
            .map(|stored| stored.key)
            .collect())
    }

    /// Names one of the user's keys.
    pub async fn rename_user_key(
        &self,
        actor: &Actor,
        username: &str,
        key: SecurityKeyId,
        name: &str,
        ip: Option<&str>,
    ) -> Result<(), AdminError> {
        actor.require(Permission::ManageUsers)?;
        let user = self.user_named(username).await?;
        let name = KeyName::parse(name).map_err(|problem| AdminError::Invalid {
            field: "name",
            message: problem.to_string(),
        })?;
        if !self
            .ctx
            .store
            .rename_security_key(user.id, key, &name)
            .await?
        {
            return Err(AdminError::NotFound("security key"));
        }
        self.ctx
            .audit(
                AuditEvent::SecurityKeyRenamed,
                Some(actor.name()),
                Some(user.username.as_str()),
                ip,
                format!("name={}", name.as_str()),
            )
            .await?;
        Ok(())
    }

    /// Removes one of the user's keys (a lost or stolen key).
    pub async fn remove_user_key(
        &self,
        actor: &Actor,
        username: &str,
        key: SecurityKeyId,
        ip: Option<&str>,
    ) -> Result<(), AdminError> {
        actor.require(Permission::ManageUsers)?;
        let user = self.user_named(username).await?;
        let Some(removed) = self.ctx.store.remove_security_key(user.id, key).await? else {
            return Err(AdminError::NotFound("security key"));
        };
        self.ctx
            .audit(
                AuditEvent::SecurityKeyRemoved,
                Some(actor.name()),
                Some(user.username.as_str()),
                ip,
                format!("name={}", removed.name.as_str()),
            )
            .await?;
        notify::security_logged(&self.ctx, &user, SecurityEvent::KeyRemoved, ip).await;
        Ok(())
    }
}
