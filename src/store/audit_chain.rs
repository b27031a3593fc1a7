//! The audit log's hash chain (SPEC section 16): sealing written entries in one ordering
//! point of the database, and reading the chain back for `twostep audit verify`.
//!
//! Entries are written as before (alone, in the SQLite group commit, or inside the
//! statements that consume codes) and sealed afterwards by [`Store::seal_audit`]: one
//! transaction that first takes the single row of `audit_chain` (PostgreSQL: `FOR
//! UPDATE`; SQLite: the write transaction), so that however many instances seal at once,
//! sequence numbers follow each other without a gap and each entry names the one before.
//! An entry a concurrent transaction has not committed yet is sealed by a later pass.

use sqlx::FromRow;

use super::{corrupt, Backend, Store, StoreResult};
use crate::clock::Timestamp;
use crate::domain::audit_chain::{entry_hash, ChainLink};
use crate::domain::AuditEntry;

/// Entries sealed per transaction.
const SEAL_BATCH: i64 = 500;

#[derive(FromRow)]
struct ChainRow {
    id: i64,
    at: i64,
    event: String,
    actor: Option<String>,
    subject: Option<String>,
    client_ip: Option<String>,
    detail: String,
    seq: Option<i64>,
    prev_hash: Option<Vec<u8>>,
    hash: Option<Vec<u8>>,
}

impl ChainRow {
    fn entry(&self) -> AuditEntry {
        AuditEntry {
            id: self.id,
            at: Timestamp::from_millis(self.at),
            event: self.event.clone(),
            actor: self.actor.clone(),
            subject: self.subject.clone(),
            client_ip: self.client_ip.clone(),
            detail: self.detail.clone(),
        }
    }
}

const COLUMNS: &str = "id, at, event, actor, subject, client_ip, detail, seq, prev_hash, hash";

impl Store {
    /// Seals up to one batch of the entries not sealed yet, oldest first; how many. Call
    /// until it answers 0 to seal everything committed so far.
    pub async fn seal_audit(&self) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let lock = match self.backend {
            Backend::Sqlite => "SELECT last_seq, last_hash FROM audit_chain WHERE id = 1",
            Backend::Postgres => {
                "SELECT last_seq, last_hash FROM audit_chain WHERE id = 1 FOR UPDATE"
            }
        };
        let (mut seq, last_hash): (i64, Vec<u8>) = sqlx::query_as(lock).fetch_one(&mut *tx).await?;
        let mut prev =
            <[u8; 32]>::try_from(last_hash.as_slice()).map_err(|_| corrupt("audit chain head"))?;
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_log WHERE seq IS NULL ORDER BY id LIMIT {SEAL_BATCH}"
        );
        let rows: Vec<ChainRow> = sqlx::query_as(&sql).fetch_all(&mut *tx).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        for row in &rows {
            seq += 1;
            let hash = entry_hash(&row.entry(), seq, &prev);
            sqlx::query("UPDATE audit_log SET seq = $1, prev_hash = $2, hash = $3 WHERE id = $4")
                .bind(seq)
                .bind(prev.to_vec())
                .bind(hash.to_vec())
                .bind(row.id)
                .execute(&mut *tx)
                .await?;
            prev = hash;
        }
        sqlx::query("UPDATE audit_chain SET last_seq = $1, last_hash = $2 WHERE id = 1")
            .bind(seq)
            .bind(prev.to_vec())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows.len() as u64)
    }

    /// Seals every entry committed so far; how many.
    pub async fn seal_all_audit(&self) -> StoreResult<u64> {
        let mut sealed = 0;
        loop {
            match self.seal_audit().await? {
                0 => return Ok(sealed),
                n => sealed += n,
            }
        }
    }

    /// Sealed entries with sequence numbers from `from_seq`, in order, at most `limit`.
    pub async fn audit_chain_page(
        &self,
        from_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<(AuditEntry, ChainLink)>> {
        let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2");
        let rows: Vec<ChainRow> = sqlx::query_as(&sql)
            .bind(from_seq)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let entry = row.entry();
                let link = ChainLink {
                    seq: row.seq.unwrap_or_default(),
                    prev_hash: row.prev_hash.unwrap_or_default(),
                    hash: row.hash.unwrap_or_default(),
                };
                (entry, link)
            })
            .collect())
    }

    /// The chain's head (the last sequence number sealed) and how many entries wait to
    /// be sealed.
    pub async fn audit_chain_state(&self) -> StoreResult<(i64, i64)> {
        let head: i64 = sqlx::query_scalar("SELECT last_seq FROM audit_chain WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        let unsealed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE seq IS NULL")
            .fetch_one(&self.pool)
            .await?;
        Ok((head, unsealed))
    }
}
