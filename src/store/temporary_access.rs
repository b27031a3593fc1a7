//! Temporary access codes (SPEC section 15): at most one per user, kept as a keyed hash
//! (`crypto::MasterKey::temporary_access_hash`), and its race-safe use.

use sqlx::FromRow;

use super::audit::{insert_audit, NewAuditEntry};
use super::users::reset_sql;
use super::{corrupt, Store, StoreResult};
use crate::clock::Timestamp;
use crate::domain::{TemporaryAccess, TemporaryAccessTerms, UserId};

const COLUMNS: &str = "reason, issued_by, created_at, expires_at, uses, uses_left";

#[derive(FromRow)]
struct Row {
    reason: String,
    issued_by: String,
    created_at: i64,
    expires_at: i64,
    uses: i64,
    uses_left: i64,
}

impl TryFrom<Row> for TemporaryAccess {
    type Error = super::StoreError;

    fn try_from(row: Row) -> StoreResult<Self> {
        let count = |n: i64| u32::try_from(n).map_err(|_| corrupt("temporary access uses"));
        Ok(Self {
            reason: row.reason,
            issued_by: row.issued_by,
            created_at: Timestamp::from_millis(row.created_at),
            expires_at: Timestamp::from_millis(row.expires_at),
            uses: count(row.uses)?,
            uses_left: count(row.uses_left)?,
        })
    }
}

impl Store {
    /// A new code of `user_id` (its `hash`) replaces any earlier one, in one transaction
    /// with its audit `entry`: the earlier code is refused from now on.
    pub async fn issue_temporary_access(
        &self,
        user_id: UserId,
        hash: [u8; 32],
        terms: &TemporaryAccessTerms,
        issued_by: &str,
        entry: &NewAuditEntry,
        now: Timestamp,
    ) -> StoreResult<TemporaryAccess> {
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "INSERT INTO temporary_access_codes (user_id, code_hash, {COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
             ON CONFLICT (user_id) DO UPDATE SET code_hash = excluded.code_hash, \
             reason = excluded.reason, issued_by = excluded.issued_by, \
             created_at = excluded.created_at, expires_at = excluded.expires_at, \
             uses = excluded.uses, uses_left = excluded.uses_left \
             RETURNING {COLUMNS}"
        );
        let row: Row = sqlx::query_as(&sql)
            .bind(user_id.0)
            .bind(hash.to_vec())
            .bind(terms.reason())
            .bind(issued_by)
            .bind(now.millis())
            .bind(terms.expires_at(now).millis())
            .bind(i64::from(terms.uses()))
            .fetch_one(&mut *tx)
            .await?;
        insert_audit(&mut tx, entry, now).await?;
        tx.commit().await?;
        row.try_into()
    }

    /// The user's code as stored (live, used up or expired but not yet purged), if any.
    pub async fn temporary_access(&self, user_id: UserId) -> StoreResult<Option<TemporaryAccess>> {
        let sql = format!("SELECT {COLUMNS} FROM temporary_access_codes WHERE user_id = $1");
        let row: Option<Row> = sqlx::query_as(&sql)
            .bind(user_id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.map(TemporaryAccess::try_from).transpose()
    }

    /// Removes the user's code and ends the sessions it opened (their factors hold `tac`),
    /// with its audit `entry` in the same commit: `None` when there was no code (nothing
    /// is audited then), else how many sessions ended.
    pub async fn revoke_temporary_access(
        &self,
        user_id: UserId,
        entry: &NewAuditEntry,
        now: Timestamp,
    ) -> StoreResult<Option<u64>> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM temporary_access_codes WHERE user_id = $1")
            .bind(user_id.0)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let ended = sqlx::query(
            "DELETE FROM sessions WHERE user_id = $1 AND (factors = 'tac' OR factors LIKE 'tac,%' \
             OR factors LIKE '%,tac' OR factors LIKE '%,tac,%')",
        )
        .bind(user_id.0)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let entry = NewAuditEntry {
            detail: format!("sessions ended: {ended}"),
            ..entry.clone()
        };
        insert_audit(&mut tx, &entry, now).await?;
        tx.commit().await?;
        Ok(Some(ended))
    }

    /// Uses the code of `user_id` whose hash is `hash` once, as a success of that user:
    /// one use fewer, the audit `entry` and the reset of the failure counts are one
    /// commit. The use is one conditional update (a use left, not expired), so of
    /// requests racing with a code of N uses, on any number of instances, N at most
    /// succeed: SQLite's write transactions are serial, and PostgreSQL re-checks the
    /// condition on the row it waited for. A wrong, used up, expired, revoked or other
    /// user's code changes nothing and gives `None`; a use gives the code as it is now.
    pub async fn use_temporary_access(
        &self,
        user_id: UserId,
        hash: [u8; 32],
        entry: &NewAuditEntry,
        now: Timestamp,
    ) -> StoreResult<Option<TemporaryAccess>> {
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "UPDATE temporary_access_codes SET uses_left = uses_left - 1 \
             WHERE user_id = $1 AND code_hash = $2 AND uses_left > 0 AND expires_at > $3 \
             RETURNING {COLUMNS}"
        );
        let row: Option<Row> = sqlx::query_as(&sql)
            .bind(user_id.0)
            .bind(hash.to_vec())
            .bind(now.millis())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        insert_audit(&mut tx, entry, now).await?;
        sqlx::query(&reset_sql(1))
            .bind(user_id.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        row.try_into().map(Some)
    }

    /// Removes the codes expired at `now`; how many.
    pub async fn purge_temporary_access(&self, now: Timestamp) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM temporary_access_codes WHERE expires_at <= $1")
            .bind(now.millis())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
