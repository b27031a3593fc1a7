//! Sign-in transactions, emailed OTPs, sessions and API tokens: the short-lived state of
//! signing in, all in the database so that any instance can serve the next request.

use sqlx::FromRow;

use super::outbox::NewOutboxMessage;
use super::sql::found;
use super::{corrupt, Store, StoreError, StoreResult};
use crate::clock::Timestamp;
use crate::domain::oidc::Authentication;
use crate::domain::{
    EmailedOtp, EmailedOtpId, Session, SessionId, SignInTransaction, TransactionId,
    TransactionKind, UserId,
};

#[derive(FromRow)]
struct TransactionRow {
    id: i64,
    user_id: i64,
    steps: String,
    client_ip: String,
    created_at: i64,
    expires_at: i64,
    second_factor: i64,
}

impl TryFrom<TransactionRow> for SignInTransaction {
    type Error = StoreError;

    fn try_from(row: TransactionRow) -> StoreResult<Self> {
        Ok(Self {
            id: TransactionId(row.id),
            user_id: UserId(row.user_id),
            kind: TransactionKind::decode(&row.steps).ok_or_else(|| corrupt("sign-in step"))?,
            client_ip: row.client_ip,
            created_at: Timestamp::from_millis(row.created_at),
            expires_at: Timestamp::from_millis(row.expires_at),
            second_factor: row.second_factor == 1,
        })
    }
}

#[derive(FromRow)]
struct EmailedOtpRow {
    id: i64,
    user_id: i64,
    transaction_id: Option<i64>,
    code_hash: Vec<u8>,
    created_at: i64,
    expires_at: i64,
}

impl From<EmailedOtpRow> for EmailedOtp {
    fn from(row: EmailedOtpRow) -> Self {
        Self {
            id: EmailedOtpId(row.id),
            user_id: UserId(row.user_id),
            transaction_id: row.transaction_id.map(TransactionId),
            code_hash: row.code_hash,
            created_at: Timestamp::from_millis(row.created_at),
            expires_at: Timestamp::from_millis(row.expires_at),
        }
    }
}

/// Why no new emailed code was created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestDelay {
    /// Seconds until the next code may be requested.
    pub retry_after: i64,
}

/// An emailed code to create, with the message that carries it.
#[derive(Clone, Copy, Debug)]
pub struct NewEmailedOtp<'a> {
    pub user_id: UserId,
    pub transaction_id: Option<TransactionId>,
    pub code_hash: &'a [u8],
    pub request_delay_seconds: u32,
    pub valid_seconds: u32,
    pub message: &'a NewOutboxMessage,
}

#[derive(FromRow)]
struct SessionRow {
    id: i64,
    user_id: i64,
    client_ip: String,
    created_at: i64,
    last_seen_at: i64,
    expires_at: i64,
    factors: String,
}

/// A session's columns, as [`SessionRow`] reads them.
const SESSION_COLUMNS: &str =
    "id, user_id, client_ip, created_at, last_seen_at, expires_at, factors";

impl TryFrom<SessionRow> for Session {
    type Error = StoreError;

    fn try_from(row: SessionRow) -> StoreResult<Self> {
        Ok(Self {
            id: SessionId(row.id),
            user_id: UserId(row.user_id),
            client_ip: row.client_ip,
            created_at: Timestamp::from_millis(row.created_at),
            last_seen_at: Timestamp::from_millis(row.last_seen_at),
            expires_at: Timestamp::from_millis(row.expires_at),
            authentication: Authentication::decode(&row.factors)
                .ok_or_else(|| corrupt("session factors"))?,
        })
    }
}

impl Store {
    pub async fn create_signin_transaction(
        &self,
        token_hash: &[u8],
        user_id: UserId,
        kind: &TransactionKind,
        client_ip: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<SignInTransaction> {
        let row: TransactionRow = sqlx::query_as(
            "INSERT INTO signin_transactions (token_hash, user_id, steps, client_ip, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             RETURNING id, user_id, steps, client_ip, created_at, expires_at, second_factor",
        )
        .bind(token_hash.to_vec())
        .bind(user_id.0)
        .bind(kind.encode())
        .bind(client_ip)
        .bind(now.millis())
        .bind(expires_at.millis())
        .fetch_one(&self.pool)
        .await?;
        row.try_into()
    }

    /// The live transaction with this token hash; an expired one is as good as absent.
    pub async fn signin_transaction(
        &self,
        token_hash: &[u8],
        now: Timestamp,
    ) -> StoreResult<Option<SignInTransaction>> {
        let row: Option<TransactionRow> = sqlx::query_as(
            "SELECT id, user_id, steps, client_ip, created_at, expires_at, second_factor \
             FROM signin_transactions \
             WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(token_hash.to_vec())
        .bind(now.millis())
        .fetch_optional(&self.pool)
        .await?;
        row.map(SignInTransaction::try_from).transpose()
    }

    /// Records the remaining steps, only if they are still `expected` (a concurrent
    /// request on another instance may have moved the transaction on); `second_factor`:
    /// the step done was a second factor (it stays recorded).
    pub async fn advance_signin_transaction(
        &self,
        id: TransactionId,
        expected: &TransactionKind,
        next: &TransactionKind,
        second_factor: bool,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE signin_transactions SET steps = $3, \
             second_factor = CASE WHEN $4 = 1 THEN 1 ELSE second_factor END \
             WHERE id = $1 AND steps = $2",
        )
        .bind(id.0)
        .bind(expected.encode())
        .bind(next.encode())
        .bind(i64::from(second_factor))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends a transaction; `false` if it was already gone (so only one request finishes it).
    pub async fn delete_signin_transaction(&self, id: TransactionId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM signin_transactions WHERE id = $1")
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Creates an emailed code for `user_id` and queues the `message` that carries it, in
    /// one transaction, unless the user's previous code was created less than
    /// `request_delay_seconds` ago; voids the user's older codes.
    ///
    /// The time of the previous send is kept per user (`emailed_otp_last_send`), not read
    /// from the codes: a code goes with its transaction when the sign-in finishes, is
    /// abandoned or expires, and the delay must outlive all of these (SPEC section 4). The
    /// check and the new time are one conditional upsert: its row lock (PostgreSQL) or the
    /// write lock (SQLite) makes two concurrent requests, on any instances, queue on it, and
    /// only the first passes the delay.
    pub async fn create_emailed_otp(
        &self,
        new: &NewEmailedOtp<'_>,
        now: Timestamp,
    ) -> StoreResult<Result<EmailedOtp, RequestDelay>> {
        let NewEmailedOtp {
            user_id,
            transaction_id,
            code_hash,
            request_delay_seconds,
            valid_seconds,
            message,
        } = *new;
        let delay = i64::from(request_delay_seconds);
        let mut tx = self.begin_write().await?;
        let claimed: Option<i64> = sqlx::query_scalar(
            "INSERT INTO emailed_otp_last_send (user_id, sent_at) VALUES ($1, $2) \
             ON CONFLICT (user_id) DO UPDATE SET sent_at = excluded.sent_at \
             WHERE emailed_otp_last_send.sent_at <= $3 \
             RETURNING user_id",
        )
        .bind(user_id.0)
        .bind(now.millis())
        .bind(now.plus_seconds(delay.saturating_neg()).millis())
        .fetch_optional(&mut *tx)
        .await?;
        if claimed.is_none() {
            let last: i64 =
                sqlx::query_scalar("SELECT sent_at FROM emailed_otp_last_send WHERE user_id = $1")
                    .bind(user_id.0)
                    .fetch_one(&mut *tx)
                    .await?;
            let allowed_at = Timestamp::from_millis(last).plus_seconds(delay);
            // At most the delay, even if the send was stamped by an instance whose clock
            // is ahead of ours.
            return Ok(Err(RequestDelay {
                retry_after: now.seconds_until(allowed_at).clamp(1, delay.max(1)),
            }));
        }
        sqlx::query("UPDATE emailed_otps SET voided = 1 WHERE user_id = $1 AND used_at IS NULL AND voided = 0")
            .bind(user_id.0)
            .execute(&mut *tx)
            .await?;
        let otp: EmailedOtpRow = sqlx::query_as(
            "INSERT INTO emailed_otps (user_id, transaction_id, code_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5) \
             RETURNING id, user_id, transaction_id, code_hash, created_at, expires_at",
        )
        .bind(user_id.0)
        .bind(transaction_id.map(|id| id.0))
        .bind(code_hash.to_vec())
        .bind(now.millis())
        .bind(now.plus_seconds(i64::from(valid_seconds)).millis())
        .fetch_one(&mut *tx)
        .await?;
        self.enqueue_in(&mut tx, message, Some(otp.id), now).await?;
        tx.commit().await?;
        Ok(Ok(otp.into()))
    }

    /// The newest unused, unvoided code of a sign-in transaction (expired or not: an
    /// expired code entered counts as a failure, so the caller needs to see it).
    pub async fn current_emailed_otp(
        &self,
        transaction_id: TransactionId,
    ) -> StoreResult<Option<EmailedOtp>> {
        let row: Option<EmailedOtpRow> = sqlx::query_as(
            "SELECT id, user_id, transaction_id, code_hash, created_at, expires_at FROM emailed_otps \
             WHERE transaction_id = $1 AND used_at IS NULL AND voided = 0 ORDER BY id DESC LIMIT 1",
        )
        .bind(transaction_id.0)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(EmailedOtp::from))
    }

    /// Marks a code used, once: of concurrent attempts exactly one gets `true`; an
    /// expired or voided code is never consumed.
    pub async fn consume_emailed_otp(&self, id: EmailedOtpId, now: Timestamp) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE emailed_otps SET used_at = $2 WHERE id = $1 AND used_at IS NULL AND voided = 0 \
             AND expires_at > $2",
        )
        .bind(id.0)
        .bind(now.millis())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A new session of `user_id`, who signed in with `authentication` at `now`.
    pub async fn create_session(
        &self,
        token_hash: &[u8],
        user_id: UserId,
        client_ip: &str,
        authentication: Authentication,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<Session> {
        let sql = format!(
            "INSERT INTO sessions (token_hash, user_id, client_ip, created_at, last_seen_at, \
             expires_at, factors) VALUES ($1, $2, $3, $4, $4, $5, $6) RETURNING {SESSION_COLUMNS}"
        );
        let row: SessionRow = sqlx::query_as(&sql)
            .bind(token_hash.to_vec())
            .bind(user_id.0)
            .bind(client_ip)
            .bind(now.millis())
            .bind(expires_at.millis())
            .bind(authentication.encode())
            .fetch_one(&self.pool)
            .await?;
        row.try_into()
    }

    /// The session with this token hash, if it has not passed its absolute limit.
    pub async fn session(&self, token_hash: &[u8], now: Timestamp) -> StoreResult<Option<Session>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = $1 AND expires_at > $2"
        );
        let row: Option<SessionRow> = sqlx::query_as(&sql)
            .bind(token_hash.to_vec())
            .bind(now.millis())
            .fetch_optional(&self.pool)
            .await?;
        row.map(Session::try_from).transpose()
    }

    pub async fn touch_session(&self, id: SessionId, now: Timestamp) -> StoreResult<()> {
        let done = sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1")
            .bind(id.0)
            .bind(now.millis())
            .execute(&self.pool)
            .await?;
        found(done.rows_affected())
    }

    pub async fn delete_session(&self, id: SessionId) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The user's live sessions, oldest first: within their absolute limit at `now` and
    /// used after `idle_since` (the account page's list).
    pub async fn live_sessions(
        &self,
        user_id: UserId,
        now: Timestamp,
        idle_since: Timestamp,
    ) -> StoreResult<Vec<Session>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions \
             WHERE user_id = $1 AND expires_at > $2 AND last_seen_at > $3 \
             ORDER BY created_at, id"
        );
        let rows: Vec<SessionRow> = sqlx::query_as(&sql)
            .bind(user_id.0)
            .bind(now.millis())
            .bind(idle_since.millis())
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(Session::try_from).collect()
    }

    /// Ends every session of the user but `keep`, in one statement; how many ended.
    pub async fn delete_other_sessions(
        &self,
        user_id: UserId,
        keep: SessionId,
    ) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2")
            .bind(user_id.0)
            .bind(keep.0)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Signs a user out everywhere (password reset, deactivation).
    pub async fn delete_user_sessions(&self, user_id: UserId) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user_id.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores an API token (by hash) acting for `user_id`; returns its id.
    pub async fn create_api_token(
        &self,
        token_hash: &[u8],
        name: &str,
        user_id: UserId,
        now: Timestamp,
    ) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO api_tokens (token_hash, name, user_id, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(token_hash.to_vec())
        .bind(name)
        .bind(user_id.0)
        .bind(now.millis())
        .fetch_one(&self.pool)
        .await?)
    }

    /// The user an unrevoked API token acts for.
    pub async fn api_token_user(&self, token_hash: &[u8]) -> StoreResult<Option<UserId>> {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT user_id FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(token_hash.to_vec())
        .fetch_optional(&self.pool)
        .await?;
        Ok(id.map(UserId))
    }

    pub async fn revoke_api_token(&self, id: i64, now: Timestamp) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(now.millis())
        .execute(&self.pool)
        .await?;
        found(done.rows_affected())
    }

    /// Removes expired transactions and sessions (run now and then).
    pub async fn purge_expired(&self, now: Timestamp) -> StoreResult<u64> {
        let a = sqlx::query("DELETE FROM signin_transactions WHERE expires_at <= $1")
            .bind(now.millis())
            .execute(&self.pool)
            .await?;
        let b = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now.millis())
            .execute(&self.pool)
            .await?;
        Ok(a.rows_affected() + b.rows_affected())
    }
}
