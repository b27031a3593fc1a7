//! What needs attention (SPEC section 11, the console home): locked accounts, users of
//! Force roles without a device, and emails not delivered in the last
//! [`DEAD_EMAIL_DAYS`] days. Each item is fixed in Access Control (unlock, set up 2FA,
//! correct the email address), so the list needs Manage Users.

use super::admin::{Actor, Admin, AdminError};
use crate::domain::attention::{Attention, DEAD_EMAIL_DAYS};
use crate::domain::Permission;

impl Admin {
    pub async fn needs_attention(&self, actor: &Actor) -> Result<Attention, AdminError> {
        if !actor.has(Permission::ManageUsers) {
            return Err(AdminError::Forbidden(Permission::ManageUsers));
        }
        let ctx = self.context();
        let now = ctx.now();
        let store = &ctx.store;
        Ok(Attention {
            locked: store.locked_users(now).await?,
            without_device: store.force_users_without_device().await?,
            undelivered: store
                .undelivered_emails(now.plus_seconds(-DEAD_EMAIL_DAYS * 86_400))
                .await?,
        })
    }
}
