//! The reads of the console home (SPEC section 11): locked accounts, users of Force roles
//! without a confirmed device, emails not delivered. Read-only; each joins what it needs
//! (users with roles and devices; the outbox with the emailed code's user) and returns
//! the types of [`domain::attention`](crate::domain::attention).

use sqlx::FromRow;

use super::{corrupt, Store, StoreResult};
use crate::clock::Timestamp;
use crate::domain::attention::{LockedUser, UndeliveredEmail, UserWithoutDevice};
use crate::domain::{RoleName, Username};

/// The most items of each kind one page lists.
const LIMIT: i64 = 100;
/// The most characters of a delivery error shown.
const ERROR_CHARS: usize = 200;

#[derive(FromRow)]
struct LockedRow {
    username: String,
    locked_until: i64,
}

#[derive(FromRow)]
struct WithoutDeviceRow {
    username: String,
    role: String,
}

#[derive(FromRow)]
struct DeadRow {
    to_address: String,
    username: Option<String>,
    created_at: i64,
    last_error: Option<String>,
}

fn username(text: &str) -> StoreResult<Username> {
    Username::parse(text).map_err(|_| corrupt("username"))
}

impl Store {
    /// Active users locked at `now`, soonest unlocked first (until unlocked: last).
    pub async fn locked_users(&self, now: Timestamp) -> StoreResult<Vec<LockedUser>> {
        let rows: Vec<LockedRow> = sqlx::query_as(
            "SELECT username, locked_until FROM users \
             WHERE active = 1 AND locked_until IS NOT NULL AND locked_until > $1 \
             ORDER BY locked_until, username LIMIT $2",
        )
        .bind(now.millis())
        .bind(LIMIT)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(LockedUser {
                    username: username(&row.username)?,
                    until: Timestamp::from_millis(row.locked_until),
                })
            })
            .collect()
    }

    /// Active users whose role forces 2FA and who have no confirmed device.
    pub async fn force_users_without_device(&self) -> StoreResult<Vec<UserWithoutDevice>> {
        // The device state is written into the SQL (the partial index's value).
        let rows: Vec<WithoutDeviceRow> = sqlx::query_as(
            "SELECT u.username AS username, r.name AS role FROM users u \
             JOIN roles r ON r.id = u.role_id \
             WHERE r.require_2fa = 'force' AND u.active = 1 \
               AND NOT EXISTS (SELECT 1 FROM devices d \
                               WHERE d.user_id = u.id AND d.state = 'confirmed') \
             ORDER BY u.username LIMIT $1",
        )
        .bind(LIMIT)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(UserWithoutDevice {
                    username: username(&row.username)?,
                    role: RoleName::parse(&row.role).map_err(|_| corrupt("role name"))?,
                })
            })
            .collect()
    }

    /// Dead outbox messages queued at or after `since`, newest first, with the user they
    /// were for (through the emailed code, else the address).
    pub async fn undelivered_emails(&self, since: Timestamp) -> StoreResult<Vec<UndeliveredEmail>> {
        let rows: Vec<DeadRow> = sqlx::query_as(
            "SELECT o.to_address AS to_address, \
                    COALESCE(u.username, \
                             (SELECT a.username FROM users a WHERE a.email = o.to_address \
                              ORDER BY a.id LIMIT 1)) AS username, \
                    o.created_at AS created_at, o.last_error AS last_error \
             FROM outbox o \
             LEFT JOIN emailed_otps e ON e.id = o.emailed_otp_id \
             LEFT JOIN users u ON u.id = e.user_id \
             WHERE o.state = 'dead' AND o.created_at >= $1 \
             ORDER BY o.id DESC LIMIT $2",
        )
        .bind(since.millis())
        .bind(LIMIT)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(UndeliveredEmail {
                    to: row.to_address,
                    username: row.username.as_deref().map(username).transpose()?,
                    queued_at: Timestamp::from_millis(row.created_at),
                    error: row
                        .last_error
                        .unwrap_or_default()
                        .chars()
                        .take(ERROR_CHARS)
                        .collect(),
                })
            })
            .collect()
    }
}
