//! The append-only audit log (SPEC section 7).

use std::sync::LazyLock;

use sqlx::FromRow;

use super::{Store, StoreResult};
use crate::clock::Timestamp;
use crate::domain::{AuditEntry, AuditEvent};

/// An entry to append. `detail` holds before/after values or an internal reason; never a
/// password, code or secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAuditEntry {
    pub event: AuditEvent,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub client_ip: Option<String>,
    pub detail: String,
}

/// An entry as stored; the store hands out [`AuditEntry`].
#[derive(FromRow)]
struct AuditRow {
    id: i64,
    at: i64,
    event: String,
    actor: Option<String>,
    subject: Option<String>,
    client_ip: Option<String>,
    detail: String,
}

impl From<AuditRow> for AuditEntry {
    fn from(row: AuditRow) -> Self {
        Self {
            id: row.id,
            at: Timestamp::from_millis(row.at),
            event: row.event,
            actor: row.actor,
            subject: row.subject,
            client_ip: row.client_ip,
            detail: row.detail,
        }
    }
}

/// A filter over the log; every part optional. Newest first.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    /// Entries whose actor or subject is this username.
    pub user: Option<String>,
    pub event: Option<AuditEvent>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub offset: u32,
    pub limit: u32,
}

impl Store {
    /// When a code of the user's device was last accepted since `since` (the device's
    /// confirmation): the newest "OTP accepted" entry whose subject is the user and whose
    /// detail names the device (an emailed code's says "email"; a calling system's own
    /// checks name it as the actor, not the subject).
    pub async fn device_last_used(
        &self,
        username: &str,
        since: Option<Timestamp>,
    ) -> StoreResult<Option<Timestamp>> {
        let sql = format!(
            "SELECT MAX(at) FROM audit_log WHERE event = '{}' AND subject = $1 AND at >= $2 \
             AND detail LIKE '%device'",
            AuditEvent::OtpAccepted.as_str()
        );
        let at: Option<i64> = sqlx::query_scalar(&sql)
            .bind(username)
            .bind(since.map_or(0, Timestamp::millis))
            .fetch_one(&self.pool)
            .await?;
        Ok(at.map(Timestamp::from_millis))
    }

    pub async fn audit(&self, entry: &NewAuditEntry, now: Timestamp) -> StoreResult<()> {
        if let Some(group) = &self.group {
            let entry = entry.clone();
            return group
                .run(move |conn| Box::pin(async move { insert_audit(conn, &entry, now).await }))
                .await;
        }
        let mut conn = self.pool.acquire().await?;
        insert_audit(&mut conn, entry, now).await
    }

    pub async fn audit_entries(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        // Unused filters are written so that they always hold (`$n IS NULL OR ...`), so one
        // statement serves every combination.
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT id, at, event, actor, subject, client_ip, detail FROM audit_log \
             WHERE ($1 IS NULL OR actor = $1 OR subject = $1) \
               AND ($2 IS NULL OR event = $2) \
               AND ($3 IS NULL OR at >= $3) \
               AND ($4 IS NULL OR at < $4) \
             ORDER BY id DESC LIMIT $5 OFFSET $6",
        )
        .bind(query.user.clone())
        .bind(query.event.map(|e| e.as_str().to_owned()))
        .bind(query.since.map(Timestamp::millis))
        .bind(query.until.map(Timestamp::millis))
        .bind(i64::from(query.limit))
        .bind(i64::from(query.offset))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(AuditEntry::from).collect())
    }
}

/// The columns an audit entry is written to, and how many values that takes.
pub(super) const AUDIT_COLUMNS: &str = "at, event, actor, subject, client_ip, detail";
pub(super) const AUDIT_VALUES: usize = 6;

/// Binds the values of `entry` in the order of [`AUDIT_COLUMNS`].
pub(super) fn bind_audit<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    entry: &NewAuditEntry,
    at: Timestamp,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(at.millis())
        .bind(entry.event.as_str())
        .bind(entry.actor.clone())
        .bind(entry.subject.clone())
        .bind(entry.client_ip.clone())
        .bind(entry.detail.clone())
}

/// Appends one entry (on any connection: the pool's, or a group-commit batch's).
pub(super) async fn insert_audit(
    conn: &mut sqlx::AnyConnection,
    entry: &NewAuditEntry,
    at: Timestamp,
) -> StoreResult<()> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!("INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)")
    });
    bind_audit(sqlx::query(SQL.as_str()), entry, at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
