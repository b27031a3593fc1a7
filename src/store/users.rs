//! Users, their password hashes and the lockout counter.

use std::sync::LazyLock;

use sqlx::FromRow;

use super::sql::found;
use super::{corrupt, flag, int, is_unique_violation, Conflict, Store, StoreError, StoreResult};
use crate::clock::Timestamp;
use crate::domain::{
    DirectoryLink, DisplayName, Email, RoleId, User, UserId, UserSource, Username, HARD_LIMIT,
};

/// A user to create. The password arrives already hashed (argon2id PHC string).
#[derive(Clone, Debug)]
pub struct NewUser {
    pub username: Username,
    pub display_name: DisplayName,
    pub email: Option<Email>,
    pub role_id: RoleId,
    pub password_hash: String,
    pub must_change_password: bool,
}

/// Changes to a user's profile; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct UserChange {
    pub display_name: Option<DisplayName>,
    /// `Some(None)` removes the email address.
    pub email: Option<Option<Email>>,
    pub role_id: Option<RoleId>,
    pub active: Option<bool>,
}

/// The lockout counters after an attempt was counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureOutcome {
    /// Toward Lockout Threshold (starts again when a lock expires).
    pub failed_count: u32,
    /// Toward the hard limit (across lock expiries; reset by a success or an unlock).
    pub consecutive_failures: u32,
    pub locked_until: Option<Timestamp>,
}

/// The answer to [`Store::reserve_attempt`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// The attempt is counted as a failure in advance: the credential may be checked now.
    /// A right one then resets the count ([`Store::record_success`]) or gives the
    /// attempt back ([`Store::release_attempt`]).
    Granted(FailureOutcome),
    /// The account is locked (or the user is gone): the credential must not be checked.
    Refused,
}

#[derive(FromRow)]
pub(super) struct UserRow {
    id: i64,
    username: String,
    display_name: String,
    email: Option<String>,
    role_id: i64,
    active: i64,
    must_change_password: i64,
    failed_count: i64,
    locked_until: Option<i64>,
    consecutive_failures: i64,
    source: String,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(row: UserRow) -> StoreResult<Self> {
        Ok(User {
            id: UserId(row.id),
            username: Username::parse(&row.username).map_err(|_| corrupt("username"))?,
            display_name: DisplayName::parse(&row.display_name)
                .map_err(|_| corrupt("display name"))?,
            email: row
                .email
                .map(|email| Email::parse(&email).map_err(|_| corrupt("email")))
                .transpose()?,
            role_id: RoleId(row.role_id),
            active: flag(row.active),
            must_change_password: flag(row.must_change_password),
            failed_count: u32::try_from(row.failed_count).map_err(|_| corrupt("failed count"))?,
            locked_until: row.locked_until.map(Timestamp::from_millis),
            consecutive_failures: u32::try_from(row.consecutive_failures)
                .map_err(|_| corrupt("consecutive failures"))?,
            source: UserSource::parse(&row.source).ok_or_else(|| corrupt("user source"))?,
        })
    }
}

pub(super) const USER_COLUMNS: &str = "id, username, display_name, email, role_id, active, \
     must_change_password, failed_count, locked_until, consecutive_failures, source";

/// The password hash of a directory user: not a PHC string, so no password ever matches
/// it (a directory user's password is checked by a bind, never against this).
const NO_LOCAL_PASSWORD: &str = "!directory";

/// A directory user as its entry was just read (SPEC 12): what a sign-in creates the
/// local user from, or refreshes it with.
#[derive(Clone, Debug)]
pub struct DirectoryUser {
    pub username: Username,
    pub display_name: DisplayName,
    pub email: Option<Email>,
    pub role_id: RoleId,
    pub dn: String,
    pub groups: Vec<String>,
}

#[derive(FromRow)]
struct DirectoryLinkRow {
    directory_dn: Option<String>,
    directory_groups: Option<String>,
    directory_synced_at: Option<i64>,
}

/// The groups as stored: a JSON array of strings.
fn groups_json(groups: &[String]) -> StoreResult<String> {
    serde_json::to_string(groups).map_err(|_| corrupt("directory groups"))
}

impl Store {
    pub async fn create_user(&self, new: &NewUser, now: Timestamp) -> StoreResult<User> {
        let sql = format!(
            "INSERT INTO users (username, display_name, email, role_id, password_hash, \
             must_change_password, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {USER_COLUMNS}"
        );
        let row: UserRow = sqlx::query_as(&sql)
            .bind(new.username.as_str())
            .bind(new.display_name.as_str())
            .bind(new.email.as_ref().map(|e| e.as_str().to_owned()))
            .bind(new.role_id.0)
            .bind(&new.password_hash)
            .bind(int(new.must_change_password))
            .bind(now.millis())
            .fetch_one(&self.pool)
            .await
            .map_err(|error| match is_unique_violation(&error) {
                true => StoreError::Conflict(Conflict::UsernameTaken),
                false => error.into(),
            })?;
        row.try_into()
    }

    pub async fn user_by_username(&self, username: &Username) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1");
        let row: Option<UserRow> = sqlx::query_as(&sql)
            .bind(username.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(User::try_from).transpose()
    }

    pub async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let row: Option<UserRow> = sqlx::query_as(&sql)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.map(User::try_from).transpose()
    }

    /// The user and their password hash, for checking a password (one request).
    pub async fn user_with_password_hash(
        &self,
        username: &Username,
    ) -> StoreResult<Option<(User, String)>> {
        #[derive(FromRow)]
        struct WithHash {
            #[sqlx(flatten)]
            user: UserRow,
            password_hash: String,
        }
        let sql = format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = $1");
        let row: Option<WithHash> = sqlx::query_as(&sql)
            .bind(username.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| Ok((User::try_from(row.user)?, row.password_hash)))
            .transpose()
    }

    /// Creates a directory user (`source` "ldap", no local password) from its entry.
    /// A user of that name already existing is [`Conflict::UsernameTaken`].
    pub async fn create_directory_user(
        &self,
        new: &DirectoryUser,
        now: Timestamp,
    ) -> StoreResult<User> {
        let sql = format!(
            "INSERT INTO users (username, display_name, email, role_id, password_hash, \
             must_change_password, source, directory_dn, directory_groups, \
             directory_synced_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 0, 'ldap', $6, $7, $8, $8, $8) RETURNING {USER_COLUMNS}"
        );
        let row: UserRow = sqlx::query_as(&sql)
            .bind(new.username.as_str())
            .bind(new.display_name.as_str())
            .bind(new.email.as_ref().map(|e| e.as_str().to_owned()))
            .bind(new.role_id.0)
            .bind(NO_LOCAL_PASSWORD)
            .bind(&new.dn)
            .bind(groups_json(&new.groups)?)
            .bind(now.millis())
            .fetch_one(&self.pool)
            .await
            .map_err(|error| match is_unique_violation(&error) {
                true => StoreError::Conflict(Conflict::UsernameTaken),
                false => error.into(),
            })?;
        row.try_into()
    }

    /// Refreshes directory user `id` from its entry (name, email, role, DN, groups).
    /// `None` when there is no such directory user (gone, or a local account).
    pub async fn refresh_directory_user(
        &self,
        id: UserId,
        entry: &DirectoryUser,
        now: Timestamp,
    ) -> StoreResult<Option<User>> {
        let sql = format!(
            "UPDATE users SET display_name = $2, email = $3, role_id = $4, directory_dn = $5, \
             directory_groups = $6, directory_synced_at = $7, updated_at = $7 \
             WHERE id = $1 AND source = 'ldap' RETURNING {USER_COLUMNS}"
        );
        let row: Option<UserRow> = sqlx::query_as(&sql)
            .bind(id.0)
            .bind(entry.display_name.as_str())
            .bind(entry.email.as_ref().map(|e| e.as_str().to_owned()))
            .bind(entry.role_id.0)
            .bind(&entry.dn)
            .bind(groups_json(&entry.groups)?)
            .bind(now.millis())
            .fetch_optional(&self.pool)
            .await?;
        row.map(User::try_from).transpose()
    }

    /// The directory users with a session that has not expired at `now`, by id: whose
    /// entries the periodic check reads again (SPEC 12).
    pub async fn directory_users_with_sessions(&self, now: Timestamp) -> StoreResult<Vec<User>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE source = 'ldap' AND EXISTS \
             (SELECT 1 FROM sessions WHERE sessions.user_id = users.id \
             AND sessions.expires_at > $1) ORDER BY id"
        );
        let rows: Vec<UserRow> = sqlx::query_as(&sql)
            .bind(now.millis())
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(User::try_from).collect()
    }

    /// What was last read of directory user `id`'s entry; `None` for a local account.
    pub async fn directory_link(&self, id: UserId) -> StoreResult<Option<DirectoryLink>> {
        let row: Option<DirectoryLinkRow> = sqlx::query_as(
            "SELECT directory_dn, directory_groups, directory_synced_at FROM users \
             WHERE id = $1 AND source = 'ldap'",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let groups: Vec<String> = match row.directory_groups {
            Some(json) => serde_json::from_str(&json).map_err(|_| corrupt("directory groups"))?,
            None => Vec::new(),
        };
        Ok(Some(DirectoryLink {
            dn: row.directory_dn.unwrap_or_default(),
            groups,
            synced_at: Timestamp::from_millis(row.directory_synced_at.unwrap_or(0)),
        }))
    }

    /// Users whose username, display name or email contains `search` (any case), by
    /// username; and the total number of matches.
    pub async fn list_users(
        &self,
        search: Option<&str>,
        offset: u32,
        limit: u32,
    ) -> StoreResult<(Vec<User>, u64)> {
        let pattern = format!("%{}%", escape_like(&search.unwrap_or("").to_lowercase()));
        let filter =
            "(LOWER(username) LIKE $1 ESCAPE '\\' OR LOWER(display_name) LIKE $1 ESCAPE '\\' \
                      OR LOWER(COALESCE(email, '')) LIKE $1 ESCAPE '\\')";
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE {filter} ORDER BY username LIMIT $2 OFFSET $3"
        );
        let rows: Vec<UserRow> = sqlx::query_as(&sql)
            .bind(&pattern)
            .bind(i64::from(limit))
            .bind(i64::from(offset))
            .fetch_all(&self.pool)
            .await?;
        let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM users WHERE {filter}"))
            .bind(&pattern)
            .fetch_one(&self.pool)
            .await?;
        let users = rows
            .into_iter()
            .map(User::try_from)
            .collect::<StoreResult<_>>()?;
        Ok((users, super::unsigned(total, "count")?))
    }

    pub async fn count_users(&self) -> StoreResult<u64> {
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?;
        super::unsigned(total, "count")
    }

    /// Applies the changes that are `Some`; the user must exist.
    pub async fn update_user(
        &self,
        id: UserId,
        change: &UserChange,
        now: Timestamp,
    ) -> StoreResult<User> {
        let current = self.user_by_id(id).await?.ok_or(StoreError::NotFound)?;
        let display_name = change
            .display_name
            .as_ref()
            .unwrap_or(&current.display_name);
        let email = change.email.as_ref().unwrap_or(&current.email);
        let role_id = change.role_id.unwrap_or(current.role_id);
        let active = change.active.unwrap_or(current.active);
        let sql = format!(
            "UPDATE users SET display_name = $2, email = $3, role_id = $4, active = $5, updated_at = $6 \
             WHERE id = $1 RETURNING {USER_COLUMNS}"
        );
        let row: UserRow = sqlx::query_as(&sql)
            .bind(id.0)
            .bind(display_name.as_str())
            .bind(email.as_ref().map(|e| e.as_str().to_owned()))
            .bind(role_id.0)
            .bind(int(active))
            .bind(now.millis())
            .fetch_one(&self.pool)
            .await?;
        row.try_into()
    }

    /// Replaces the password hash; `must_change` forces a change at the next sign-in.
    pub async fn set_password_hash(
        &self,
        id: UserId,
        hash: &str,
        must_change: bool,
        now: Timestamp,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            // A directory user has no local password (SPEC 12): not found here.
            "UPDATE users SET password_hash = $2, must_change_password = $3, updated_at = $4 \
             WHERE id = $1 AND source = 'local'",
        )
        .bind(id.0)
        .bind(hash)
        .bind(int(must_change))
        .bind(now.millis())
        .execute(&self.pool)
        .await?;
        found(done.rows_affected())
    }

    /// Counts an attempt at a credential of user `id` *before* it is checked (SPEC
    /// section 4, "Attempts are counted before they are evaluated"): in one conditional
    /// statement, refused while the account is locked or at the hard limit, otherwise
    /// counted as a failure in advance, locking the account when the count reaches
    /// `threshold` (until `lock_until`) or the hard limit (until an unlock). However many
    /// requests race, on however many instances, at most `threshold` attempts are granted
    /// between two successes or unlocks. On SQLite the statement runs in the group commit
    /// writer's order and is durable before the answer.
    pub async fn reserve_attempt(
        &self,
        id: UserId,
        now: Timestamp,
        threshold: u32,
        lock_until: Timestamp,
    ) -> StoreResult<Reservation> {
        if let Some(group) = &self.group {
            return group
                .run(move |conn| Box::pin(update_reserve(conn, id, now, threshold, lock_until)))
                .await;
        }
        let mut conn = self.pool.acquire().await?;
        update_reserve(&mut conn, id, now, threshold, lock_until).await
    }

    /// Gives back a granted attempt whose credential was right but that is not yet a
    /// success (a right password before the code step): the counts return to what they
    /// were, and a lock that this attempt's count set is lifted.
    pub async fn release_attempt(&self, id: UserId, threshold: u32) -> StoreResult<()> {
        if let Some(group) = &self.group {
            return group
                .run(move |conn| Box::pin(update_release(conn, id, threshold)))
                .await
                .map(|_| ());
        }
        let mut conn = self.pool.acquire().await?;
        update_release(&mut conn, id, threshold).await.map(|_| ())
    }

    /// A successful sign-in: the consecutive-failure counts start again.
    pub async fn record_success(&self, id: UserId) -> StoreResult<()> {
        self.unlock(id).await
    }

    /// Clears the lock and the failure count.
    pub async fn unlock(&self, id: UserId) -> StoreResult<()> {
        let changed = match &self.group {
            Some(group) => {
                group
                    .run(move |conn| Box::pin(update_unlock(conn, id)))
                    .await?
            }
            None => {
                let mut conn = self.pool.acquire().await?;
                update_unlock(&mut conn, id).await?
            }
        };
        found(u64::from(changed))
    }

    /// Deletes a user with their devices, sessions and transactions.
    pub async fn delete_user(&self, id: UserId) -> StoreResult<()> {
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        found(done.rows_affected())
    }
}

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// The reservation rule as one `UPDATE` of the users `filter` matches (see
/// [`Store::reserve_attempt`]): the `WHERE` refuses a locked account; a lock that has
/// expired starts a new count toward the threshold (but not toward the hard limit).
/// `threshold` and `lock_until` are SQL expressions; `$2` is now, `$5` the hard limit and
/// `$6` [`Timestamp::NEVER`]. Every expression reads the row as it was before the update.
pub(super) fn reserve_sql(filter: &str, threshold: &str, lock_until: &str) -> String {
    let count = "CASE WHEN locked_until IS NOT NULL THEN 1 ELSE failed_count + 1 END";
    format!(
        "UPDATE users SET \
           failed_count = {count}, \
           consecutive_failures = consecutive_failures + 1, \
           locked_until = CASE \
               WHEN consecutive_failures + 1 >= $5 THEN $6 \
               WHEN ({count}) >= {threshold} THEN {lock_until} \
               ELSE NULL END, \
           updated_at = $2 \
         WHERE {filter} AND (locked_until IS NULL OR locked_until <= $2) \
           AND consecutive_failures < $5"
    )
}

/// The reservation's one statement for user `id` (see [`Store::reserve_attempt`]).
pub(super) async fn update_reserve(
    conn: &mut sqlx::AnyConnection,
    id: UserId,
    now: Timestamp,
    threshold: u32,
    lock_until: Timestamp,
) -> StoreResult<Reservation> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "{} RETURNING failed_count, consecutive_failures, locked_until",
            reserve_sql("id = $1", "$3", "$4")
        )
    });
    let row: Option<(i64, i64, Option<i64>)> = sqlx::query_as(SQL.as_str())
        .bind(id.0)
        .bind(now.millis())
        .bind(i64::from(threshold))
        .bind(lock_until.millis())
        .bind(i64::from(HARD_LIMIT))
        .bind(Timestamp::NEVER.millis())
        .fetch_optional(&mut *conn)
        .await?;
    let Some((count, consecutive, locked_until)) = row else {
        return Ok(Reservation::Refused);
    };
    Ok(Reservation::Granted(failure_outcome(
        count,
        consecutive,
        locked_until,
    )?))
}

/// The counts as read from a row.
pub(super) fn failure_outcome(
    count: i64,
    consecutive: i64,
    locked_until: Option<i64>,
) -> StoreResult<FailureOutcome> {
    Ok(FailureOutcome {
        failed_count: u32::try_from(count).map_err(|_| corrupt("failed count"))?,
        consecutive_failures: u32::try_from(consecutive)
            .map_err(|_| corrupt("consecutive failures"))?,
        locked_until: locked_until.map(Timestamp::from_millis),
    })
}

/// The release's one statement (see [`Store::release_attempt`]); whether the user exists.
pub(super) async fn update_release(
    conn: &mut sqlx::AnyConnection,
    id: UserId,
    threshold: u32,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE users SET \
           failed_count = CASE WHEN failed_count > 0 THEN failed_count - 1 ELSE 0 END, \
           consecutive_failures = CASE WHEN consecutive_failures > 0 \
                                       THEN consecutive_failures - 1 ELSE 0 END, \
           locked_until = CASE \
               WHEN locked_until IS NOT NULL AND failed_count - 1 < $2 \
                    AND consecutive_failures - 1 < $3 THEN NULL \
               ELSE locked_until END \
         WHERE id = $1",
    )
    .bind(id.0)
    .bind(i64::from(threshold))
    .bind(i64::from(HARD_LIMIT))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The failure counts start again and the lock ends, for the user whose id is parameter
/// `$param`: an unlock, a success, and an accepted code's use (`store::devices`).
pub(super) fn reset_sql(param: usize) -> String {
    format!(
        "UPDATE users SET failed_count = 0, consecutive_failures = 0, locked_until = NULL \
         WHERE id = ${param}"
    )
}

/// Clears the lock and the count; whether the user exists.
pub(super) async fn update_unlock(conn: &mut sqlx::AnyConnection, id: UserId) -> StoreResult<bool> {
    static SQL: LazyLock<String> = LazyLock::new(|| reset_sql(1));
    let done = sqlx::query(SQL.as_str())
        .bind(id.0)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}
