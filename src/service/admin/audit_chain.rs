//! `twostep audit verify` (SPEC 16) under View Audit Log.

use super::{Actor, Admin, AdminError};
use crate::domain::Permission;
use crate::service::audit_chain::{verify, ChainReport};

impl Admin {
    /// Walks the audit chain (see [`verify`]); it only reads. Needs View Audit Log.
    pub async fn verify_audit_chain(
        &self,
        actor: &Actor,
        from: Option<i64>,
    ) -> Result<ChainReport, AdminError> {
        actor.require(Permission::ViewAuditLog)?;
        Ok(verify(&self.ctx.store, from).await?)
    }
}
