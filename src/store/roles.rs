//! Security roles.

use std::collections::BTreeSet;

use sqlx::FromRow;

use super::sql::found;
use super::{corrupt, flag, int, is_unique_violation, Conflict, Store, StoreError, StoreResult};
use crate::clock::Timestamp;
use crate::domain::{Permission, Require2fa, Role, RoleId, RoleName, RoleSecurity, SessionLimits};

/// A role's new values; `None` keeps the current one.
#[derive(Clone, Debug, Default)]
pub struct RoleChange {
    pub name: Option<RoleName>,
    pub security: Option<RoleSecurity>,
    pub permissions: Option<BTreeSet<Permission>>,
    /// SPEC 15.
    pub session_limits: Option<SessionLimits>,
}

#[derive(FromRow)]
pub(super) struct RoleRow {
    pub(super) id: i64,
    pub(super) name: String,
    pub(super) require_2fa: String,
    pub(super) otp_required: i64,
    pub(super) interface: i64,
    pub(super) permissions: String,
    pub(super) session_idle_minutes: i64,
    pub(super) session_max_hours: i64,
}

impl TryFrom<RoleRow> for Role {
    type Error = StoreError;

    fn try_from(row: RoleRow) -> StoreResult<Self> {
        let require = Require2fa::parse(&row.require_2fa).ok_or_else(|| corrupt("require_2fa"))?;
        let security = RoleSecurity::new(require, flag(row.otp_required), flag(row.interface))
            .map_err(|_| corrupt("interface role requiring 2FA"))?;
        let permissions = row
            .permissions
            .split(',')
            .filter(|name| !name.is_empty())
            .map(|name| Permission::parse(name).ok_or_else(|| corrupt("permission")))
            .collect::<StoreResult<BTreeSet<_>>>()?;
        Ok(Role {
            id: RoleId(row.id),
            name: RoleName::parse(&row.name).map_err(|_| corrupt("role name"))?,
            security,
            permissions,
            session_limits: SessionLimits::new(row.session_idle_minutes, row.session_max_hours)
                .map_err(|_| corrupt("session limits"))?,
        })
    }
}

fn permissions_text(permissions: &BTreeSet<Permission>) -> String {
    permissions
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

pub(super) const ROLE_COLUMNS: &str =
    "id, name, require_2fa, otp_required, interface, permissions, \
     session_idle_minutes, session_max_hours";

impl Store {
    pub async fn create_role(
        &self,
        name: &RoleName,
        security: RoleSecurity,
        permissions: &BTreeSet<Permission>,
        session_limits: SessionLimits,
        now: Timestamp,
    ) -> StoreResult<Role> {
        let sql = format!(
            "INSERT INTO roles (name, name_key, require_2fa, otp_required, interface, permissions, \
             session_idle_minutes, session_max_hours, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING {ROLE_COLUMNS}"
        );
        let row: RoleRow = sqlx::query_as(&sql)
            .bind(name.as_str())
            .bind(name.key())
            .bind(security.require_2fa().as_str())
            .bind(int(security.otp_required()))
            .bind(int(security.interface()))
            .bind(permissions_text(permissions))
            .bind(i64::from(session_limits.idle_minutes()))
            .bind(i64::from(session_limits.max_hours()))
            .bind(now.millis())
            .fetch_one(&self.pool)
            .await
            .map_err(|error| match is_unique_violation(&error) {
                true => StoreError::Conflict(Conflict::RoleNameTaken),
                false => error.into(),
            })?;
        row.try_into()
    }

    /// The role of that name, in any case.
    pub async fn role_by_name(&self, name: &str) -> StoreResult<Option<Role>> {
        let sql = format!("SELECT {ROLE_COLUMNS} FROM roles WHERE name_key = $1");
        let row: Option<RoleRow> = sqlx::query_as(&sql)
            .bind(name.trim().to_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.map(Role::try_from).transpose()
    }

    pub async fn role_by_id(&self, id: RoleId) -> StoreResult<Option<Role>> {
        let sql = format!("SELECT {ROLE_COLUMNS} FROM roles WHERE id = $1");
        let row: Option<RoleRow> = sqlx::query_as(&sql)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.map(Role::try_from).transpose()
    }

    pub async fn list_roles(&self) -> StoreResult<Vec<Role>> {
        let sql = format!("SELECT {ROLE_COLUMNS} FROM roles ORDER BY name_key");
        let rows: Vec<RoleRow> = sqlx::query_as(&sql).fetch_all(&self.pool).await?;
        rows.into_iter().map(Role::try_from).collect()
    }

    pub async fn update_role(
        &self,
        id: RoleId,
        change: &RoleChange,
        now: Timestamp,
    ) -> StoreResult<Role> {
        let current = self.role_by_id(id).await?.ok_or(StoreError::NotFound)?;
        let name = change.name.as_ref().unwrap_or(&current.name);
        let security = change.security.unwrap_or(current.security);
        let permissions = change.permissions.as_ref().unwrap_or(&current.permissions);
        let limits = change.session_limits.unwrap_or(current.session_limits);
        let sql = format!(
            "UPDATE roles SET name = $2, name_key = $3, require_2fa = $4, otp_required = $5, \
             interface = $6, permissions = $7, session_idle_minutes = $8, session_max_hours = $9, \
             updated_at = $10 WHERE id = $1 RETURNING {ROLE_COLUMNS}"
        );
        let row: RoleRow = sqlx::query_as(&sql)
            .bind(id.0)
            .bind(name.as_str())
            .bind(name.key())
            .bind(security.require_2fa().as_str())
            .bind(int(security.otp_required()))
            .bind(int(security.interface()))
            .bind(permissions_text(permissions))
            .bind(i64::from(limits.idle_minutes()))
            .bind(i64::from(limits.max_hours()))
            .bind(now.millis())
            .fetch_one(&self.pool)
            .await
            .map_err(|error| match is_unique_violation(&error) {
                true => StoreError::Conflict(Conflict::RoleNameTaken),
                false => error.into(),
            })?;
        row.try_into()
    }

    /// Deletes a role no user has.
    pub async fn delete_role(&self, id: RoleId) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role_id = $1")
            .bind(id.0)
            .fetch_one(&mut *tx)
            .await?;
        if users > 0 {
            return Err(Conflict::RoleInUse.into());
        }
        let done = sqlx::query("DELETE FROM roles WHERE id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        found(done.rows_affected())?;
        tx.commit().await?;
        Ok(())
    }
}
