//! Recovery codes (SPEC section 10): a user's one set of single-use codes, kept as keyed
//! hashes (`crypto::MasterKey::recovery_code_hash`), and their atomic consumption.

use std::sync::LazyLock;

use super::audit::{bind_audit, insert_audit, NewAuditEntry, AUDIT_COLUMNS, AUDIT_VALUES};
use super::users::reset_sql;
use super::{corrupt, Backend, Store, StoreResult};
use crate::clock::Timestamp;
use crate::domain::UserId;

/// Takes the user's row lock for the rest of the transaction, so that two replacements
/// (or a replacement and a revocation) of one user's codes run one after the other. On
/// PostgreSQL (read committed) a second `DELETE` would otherwise miss the rows the first
/// inserted, and two sets would work; SQLite's write transactions are serial already.
async fn lock_user(tx: &mut sqlx::Transaction<'_, sqlx::Any>, user_id: UserId) -> StoreResult<()> {
    sqlx::query("UPDATE users SET updated_at = updated_at WHERE id = $1")
        .bind(user_id.0)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// A new set replaces the user's codes, in one transaction with its audit `entry`:
    /// every code of an older set (used or not) is gone, so it is refused from now on, and
    /// no set is made that the log does not show (nor a log entry of a set never made).
    pub async fn replace_recovery_codes(
        &self,
        user_id: UserId,
        hashes: &[[u8; 32]],
        entry: &NewAuditEntry,
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        lock_user(&mut tx, user_id).await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id.0)
            .execute(&mut *tx)
            .await?;
        for hash in hashes {
            sqlx::query(
                "INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)",
            )
            .bind(user_id.0)
            .bind(hash.to_vec())
            .bind(now.millis())
            .execute(&mut *tx)
            .await?;
        }
        insert_audit(&mut tx, entry, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// How many of the user's codes are unused.
    pub async fn recovery_codes_left(&self, user_id: UserId) -> StoreResult<u32> {
        let left: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(user_id.0)
        .fetch_one(&self.pool)
        .await?;
        u32::try_from(left).map_err(|_| corrupt("recovery code count"))
    }

    /// Removes the user's codes (used or not); how many unused ones there were.
    pub async fn revoke_recovery_codes(&self, user_id: UserId) -> StoreResult<u32> {
        let mut tx = self.begin_write().await?;
        lock_user(&mut tx, user_id).await?;
        let left: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(user_id.0)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        u32::try_from(left).map_err(|_| corrupt("recovery code count"))
    }

    /// Consumes the unused code of `user_id` whose hash is `hash`, as a success of that
    /// user: when a code is consumed, the audit `entry` is written and the user's failure
    /// counts start again, durable together in one commit (SQLite: in the group commit;
    /// PostgreSQL: one statement). Of several requests racing with one code, on any number
    /// of instances, exactly one gets `true`; a used code, a code of an older set and
    /// another user's code change nothing and give `false`.
    pub async fn consume_recovery_code(
        &self,
        user_id: UserId,
        hash: [u8; 32],
        entry: &NewAuditEntry,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let backend = self.backend;
        let entry = entry.clone();
        if let Some(group) = &self.group {
            return group
                .run(move |conn| {
                    Box::pin(
                        async move { consume(conn, backend, user_id, hash, &entry, now).await },
                    )
                })
                .await;
        }
        // PostgreSQL: one statement, atomic on its own.
        let mut conn = self.pool.acquire().await?;
        consume(&mut conn, backend, user_id, hash, &entry, now).await
    }
}

/// The conditional update of a code's use: only an unused code of this user.
const CONSUME: &str = "UPDATE recovery_codes SET used_at = $1 \
     WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL";

/// The consume with its audit entry and the reset of the counts, in one request (see
/// `store::devices::ConsumeForm::build`): SQLite, statements each conditional on
/// `changes()` of the one before (run inside the batch's transaction); PostgreSQL, one
/// statement whose later parts read the update's `RETURNING` row.
fn consume_sql(backend: Backend) -> String {
    let first = 4;
    let values = (first..first + AUDIT_VALUES)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let audit = format!("INSERT INTO audit_log ({AUDIT_COLUMNS}) SELECT {values}");
    let reset = reset_sql(first + AUDIT_VALUES);
    match backend {
        Backend::Sqlite => {
            format!("{CONSUME}; {audit} WHERE changes() = 1; {reset} AND changes() = 1")
        }
        Backend::Postgres => format!(
            "WITH consumed AS ({CONSUME} RETURNING id), \
             audited AS ({audit} FROM consumed RETURNING 1) \
             {reset} AND EXISTS (SELECT 1 FROM consumed)"
        ),
    }
}

async fn consume(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    user_id: UserId,
    hash: [u8; 32],
    entry: &NewAuditEntry,
    now: Timestamp,
) -> StoreResult<bool> {
    static SQLITE: LazyLock<String> = LazyLock::new(|| consume_sql(Backend::Sqlite));
    static POSTGRES: LazyLock<String> = LazyLock::new(|| consume_sql(Backend::Postgres));
    let (sql, accepted_rows) = match backend {
        // The update, the audit entry and the reset each change one row.
        Backend::Sqlite => (SQLITE.as_str(), 3),
        // The main statement (the reset) changes one row.
        Backend::Postgres => (POSTGRES.as_str(), 1),
    };
    let query = sqlx::query(sql)
        .bind(now.millis())
        .bind(user_id.0)
        .bind(hash.to_vec());
    let query = bind_audit(query, entry, now).bind(user_id.0);
    let changed = query.execute(&mut *conn).await?.rows_affected();
    match changed {
        0 => Ok(false),
        n if n == accepted_rows => Ok(true),
        _ => Err(corrupt(&format!(
            "a recovery code use changed {changed} rows"
        ))),
    }
}
