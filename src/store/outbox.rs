//! The email outbox: messages written in the same transaction as what they announce,
//! claimed with a lease by one delivery worker among all instances, sent or retried.

use rand::rngs::OsRng;
use sqlx::FromRow;

use super::{Backend, Store, StoreResult};
use crate::clock::Timestamp;
use crate::domain::EmailedOtpId;

/// A message to queue. `payload` is the whole RFC 5322 message; the store seals it
/// under the server key (it contains the code) and forgets it once sent or dead.
#[derive(Clone)]
pub struct NewOutboxMessage {
    pub message_id: String,
    pub from: String,
    pub to: String,
    pub payload: Vec<u8>,
    /// Delivery is pointless after this (the code has expired; a notification is a day
    /// old): the message goes dead.
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for NewOutboxMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewOutboxMessage")
            .field("message_id", &self.message_id)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

/// A message claimed for delivery, with its payload opened.
#[derive(Clone)]
pub struct ClaimedMessage {
    pub id: i64,
    pub message_id: String,
    pub from: String,
    pub to: String,
    pub payload: Vec<u8>,
    /// Attempts so far, this one included.
    pub attempts: u32,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for ClaimedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimedMessage")
            .field("id", &self.id)
            .field("message_id", &self.message_id)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// Where a message stands, for the "we are still sending your code" page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutboxState {
    /// Not delivered yet; `failed`: an attempt failed (the worker is retrying).
    Pending {
        attempts: u32,
        failed: bool,
    },
    Sent,
    Dead,
}

#[derive(FromRow)]
struct ClaimRow {
    id: i64,
    message_id: String,
    from_address: String,
    to_address: String,
    payload: Option<Vec<u8>>,
    attempts: i64,
    created_at: i64,
    expires_at: i64,
}

impl Store {
    /// Inserts a message inside an open transaction (the emailed OTP's).
    pub(super) async fn enqueue_in(
        &self,
        tx: &mut sqlx::AnyConnection,
        message: &NewOutboxMessage,
        emailed_otp_id: Option<i64>,
        now: Timestamp,
    ) -> StoreResult<i64> {
        let sealed = self
            .key
            .seal(&message.payload, message.message_id.as_bytes(), &mut OsRng)?;
        Ok(sqlx::query_scalar(
            "INSERT INTO outbox (message_id, from_address, to_address, payload, emailed_otp_id, \
             next_attempt_at, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $6, $7) RETURNING id",
        )
        .bind(&message.message_id)
        .bind(&message.from)
        .bind(&message.to)
        .bind(sealed)
        .bind(emailed_otp_id)
        .bind(now.millis())
        .bind(message.expires_at.millis())
        .fetch_one(&mut *tx)
        .await?)
    }

    /// Queues a message on its own.
    pub async fn enqueue(&self, message: &NewOutboxMessage, now: Timestamp) -> StoreResult<i64> {
        let mut tx = self.begin_write().await?;
        let id = self.enqueue_in(&mut tx, message, None, now).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Claims up to `limit` due messages for `lease_seconds`: no other worker (on any
    /// instance) gets them until the lease ends. PostgreSQL skips rows another worker is
    /// claiming (`FOR UPDATE SKIP LOCKED`); SQLite has one writer at a time anyway.
    pub async fn claim_outbox(
        &self,
        now: Timestamp,
        lease_seconds: i64,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedMessage>> {
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE outbox SET lease_until = $2, attempts = attempts + 1 WHERE id IN ( \
               SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= $1 \
               AND (lease_until IS NULL OR lease_until <= $1) ORDER BY id LIMIT $3 {lock}) \
             RETURNING id, message_id, from_address, to_address, payload, attempts, created_at, expires_at"
        );
        let rows: Vec<ClaimRow> = sqlx::query_as(&sql)
            .bind(now.millis())
            .bind(now.plus_seconds(lease_seconds).millis())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let sealed = row
                .payload
                .ok_or_else(|| super::corrupt("pending message without payload"))?;
            let payload = self.key.open(&sealed, row.message_id.as_bytes())?;
            claimed.push(ClaimedMessage {
                id: row.id,
                message_id: row.message_id,
                from: row.from_address,
                to: row.to_address,
                payload,
                attempts: u32::try_from(row.attempts).unwrap_or(u32::MAX),
                created_at: Timestamp::from_millis(row.created_at),
                expires_at: Timestamp::from_millis(row.expires_at),
            });
        }
        Ok(claimed)
    }

    /// Delivered: the payload (with its code) is erased.
    pub async fn outbox_sent(&self, id: i64, now: Timestamp) -> StoreResult<()> {
        sqlx::query(
            "UPDATE outbox SET state = 'sent', payload = NULL, sent_at = $2, lease_until = NULL, last_error = NULL \
             WHERE id = $1",
        )
        .bind(id)
        .bind(now.millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Failed this time; try again at `next_attempt_at`.
    pub async fn outbox_retry(
        &self,
        id: i64,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE outbox SET next_attempt_at = $2, lease_until = NULL, last_error = $3 WHERE id = $1")
            .bind(id)
            .bind(next_attempt_at.millis())
            .bind(error)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Given up: the message expired before delivery. The payload is erased.
    pub async fn outbox_dead(&self, id: i64, error: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE outbox SET state = 'dead', payload = NULL, lease_until = NULL, last_error = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Messages not yet delivered nor given up.
    pub async fn outbox_pending(&self) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE state = 'pending'")
            .fetch_one(&self.pool)
            .await?;
        super::unsigned(count, "count")
    }

    /// The delivery state of the message carrying an emailed OTP.
    pub async fn outbox_state_for_otp(
        &self,
        emailed_otp_id: EmailedOtpId,
    ) -> StoreResult<Option<OutboxState>> {
        let row: Option<(String, i64, Option<String>)> = sqlx::query_as(
            "SELECT state, attempts, last_error FROM outbox WHERE emailed_otp_id = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(emailed_otp_id.0)
        .fetch_optional(&self.pool)
        .await?;
        Ok(
            row.map(|(state, attempts, last_error)| match state.as_str() {
                "sent" => OutboxState::Sent,
                "dead" => OutboxState::Dead,
                _ => OutboxState::Pending {
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    failed: last_error.is_some(),
                },
            }),
        )
    }
}
