//! The first start on a new database: default roles and the bootstrap administrator
//! (SPEC section 8).

use std::collections::BTreeSet;

use super::{int, Store, StoreResult};
use crate::clock::Timestamp;
use crate::domain::{Permission, Require2fa, RoleName, RoleSecurity};

/// The roles every new database starts with: (name, Require 2FA, OTP Required,
/// interface, permissions).
pub const DEFAULT_ROLES: [(&str, Require2fa, bool, bool, &[Permission]); 3] = [
    (
        "System Administrator",
        Require2fa::Encourage,
        false,
        false,
        &Permission::ALL,
    ),
    ("Interface User", Require2fa::No, false, true, &[]),
    ("Staff", Require2fa::Encourage, false, false, &[]),
];

/// The bootstrap administrator's username.
pub const ADMIN_USERNAME: &str = "admin";

impl Store {
    /// On a database without roles: creates the default roles and the user `admin` (with
    /// `admin_password_hash`) in one transaction and returns `true`. On any other
    /// database does nothing and returns `false`, so restarts and concurrent first starts
    /// of several instances are safe.
    pub async fn bootstrap(
        &self,
        admin_password_hash: &str,
        must_change: bool,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let roles: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM roles")
            .fetch_one(&mut *tx)
            .await?;
        if roles > 0 {
            return Ok(false);
        }
        let mut admin_role = None;
        for (name, require, otp_required, interface, permissions) in DEFAULT_ROLES {
            let name = RoleName::parse(name).map_err(|_| super::corrupt("default role name"))?;
            let security = RoleSecurity::new(require, otp_required, interface)
                .map_err(|_| super::corrupt("default role"))?;
            let permissions: BTreeSet<Permission> = permissions.iter().copied().collect();
            let text = permissions
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(",");
            // ON CONFLICT: a concurrent first start inserted it already; that transaction
            // also creates the administrator, so this one stops.
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO roles (name, name_key, require_2fa, otp_required, interface, permissions, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                 ON CONFLICT (name_key) DO NOTHING RETURNING id",
            )
            .bind(name.as_str())
            .bind(name.key())
            .bind(security.require_2fa().as_str())
            .bind(int(security.otp_required()))
            .bind(int(security.interface()))
            .bind(text)
            .bind(now.millis())
            .fetch_optional(&mut *tx)
            .await?;
            let Some(id) = id else { return Ok(false) };
            if permissions.len() == Permission::ALL.len() {
                admin_role = Some(id);
            }
        }
        let admin_role = admin_role.ok_or_else(|| super::corrupt("no administrator role"))?;
        sqlx::query(
            "INSERT INTO users (username, display_name, email, role_id, password_hash, \
             must_change_password, created_at, updated_at) VALUES ($1, $2, NULL, $3, $4, $5, $6, $6)",
        )
        .bind(ADMIN_USERNAME)
        .bind("Administrator")
        .bind(admin_role)
        .bind(admin_password_hash)
        .bind(int(must_change))
        .bind(now.millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}
