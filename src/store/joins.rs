//! Reads that join several aggregates, in one place so that users, roles and devices do
//! not import each other: an API token's holder with their role, and a user with their
//! confirmed device (the hot path of an OTP check, with the settings and the reservation
//! of the attempt).

use std::sync::LazyLock;

use sqlx::FromRow;

use super::devices::{DeviceRow, DEVICE_COLUMNS};
use super::roles::{RoleRow, ROLE_COLUMNS};
use super::settings::{settings_from_json, settings_json_sql};
use super::users::{reserve_sql, FailureOutcome, Reservation, UserRow, USER_COLUMNS};
use super::{corrupt, qualified, Backend, Store, StoreResult};
use crate::clock::Timestamp;
use crate::domain::{
    Device, Lockout, Role, RoleId, SettingKey, SettingKind, Settings, User, Username, HARD_LIMIT,
};

/// A user row with the columns of their role (an API token's holder).
#[derive(FromRow)]
struct TokenHolderRow {
    #[sqlx(flatten)]
    user: UserRow,
    r_id: i64,
    r_name: String,
    r_require_2fa: String,
    r_otp_required: i64,
    r_interface: i64,
    r_permissions: String,
    r_session_idle_minutes: i64,
    r_session_max_hours: i64,
}

/// A user row with the columns of their confirmed device, if any (a LEFT JOIN).
#[derive(FromRow)]
struct UserDeviceRow {
    #[sqlx(flatten)]
    user: UserRow,
    d_id: Option<i64>,
    d_user_id: Option<i64>,
    d_state: Option<String>,
    d_method: Option<String>,
    d_secret: Option<Vec<u8>>,
    d_algorithm: Option<String>,
    d_digits: Option<i64>,
    d_period: Option<i64>,
    d_counter: Option<i64>,
    d_last_step: Option<i64>,
    d_prompt_mode: Option<String>,
    /// The settings as JSON, when the query asked for them.
    #[sqlx(default)]
    settings: Option<String>,
    /// Whether the attempt was reserved, when the query reserved one (1 or 0).
    #[sqlx(default)]
    reserved: Option<i64>,
}

/// What a user read after a reservation that granted says of their counts.
fn counted(user: &User) -> FailureOutcome {
    FailureOutcome {
        failed_count: user.failed_count,
        consecutive_failures: user.consecutive_failures,
        locked_until: user.locked_until,
    }
}

/// Lockout Threshold and Lockout Minutes as the reservation of the hot path reads them
/// (`$3`, `$4`: their defaults; a stored row out of range counts as absent, as
/// [`super::settings`] treats it).
fn setting_sql(key: SettingKey, default: &str) -> String {
    let (min, max) = match key.kind() {
        SettingKind::Number { min, max } => (min, max),
        _ => (0, 0),
    };
    format!(
        "COALESCE((SELECT CAST(value AS INTEGER) FROM settings WHERE key = '{}' \
         AND CAST(value AS INTEGER) BETWEEN {min} AND {max}), {default})",
        key.name()
    )
}

/// SQLite's hot path of an OTP check, one request to the database inside the group
/// commit: the attempt's reservation for the active user named `$1` (with the settings'
/// Lockout Threshold and Lockout Minutes), then the user with their confirmed device, the
/// settings, and whether the reservation was granted (`changes()` of the update).
fn reserve_and_read_sql() -> String {
    let minutes = setting_sql(SettingKey::LockoutMinutes, "$4");
    let reserve = reserve_sql(
        "username = $1 AND active = 1",
        &setting_sql(SettingKey::LockoutThreshold, "$3"),
        &format!("CASE WHEN {minutes} = 0 THEN $6 ELSE $2 + {minutes} * 60000 END"),
    );
    let read = user_device_sql_with(&format!(
        ", {} AS settings, changes() AS reserved",
        settings_json_sql(Backend::Sqlite)
    ));
    format!("{reserve}; {read}")
}

/// Runs [`reserve_and_read_sql`] (in the group commit writer's transaction).
async fn reserve_and_read(
    conn: &mut sqlx::AnyConnection,
    username: &str,
    now: Timestamp,
) -> StoreResult<Option<UserDeviceRow>> {
    static SQL: LazyLock<String> = LazyLock::new(reserve_and_read_sql);
    let defaults = Settings::default();
    // `fetch_all`: the rows of every statement of the request (the update has none).
    let rows: Vec<UserDeviceRow> = sqlx::query_as(SQL.as_str())
        .bind(username)
        .bind(now.millis())
        .bind(i64::from(defaults.lockout_threshold()))
        .bind(i64::from(defaults.lockout_minutes()))
        .bind(i64::from(HARD_LIMIT))
        .bind(Timestamp::NEVER.millis())
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.into_iter().next_back())
}

/// A user by name (`$1`) with their confirmed device; with `settings`, also that scalar
/// subquery as the column `settings`.
///
/// Device states are written into the SQL, never bound: a bound value compared with the
/// `state` of the partial indexes on `devices` makes SQLite re-plan the statement on every
/// use (it cannot know in advance whether the index applies).
fn user_device_sql(settings: Option<&str>) -> String {
    let settings = settings
        .map(|sql| format!(", {sql} AS settings"))
        .unwrap_or_default();
    user_device_sql_with(&settings)
}

/// [`user_device_sql`] with `extra` columns (each after a comma).
fn user_device_sql_with(extra: &str) -> String {
    format!(
        "SELECT {}, {}{extra} FROM users u \
         LEFT JOIN devices d ON d.user_id = u.id AND d.state = 'confirmed' \
         WHERE u.username = $1",
        qualified(USER_COLUMNS, "u", false),
        qualified(DEVICE_COLUMNS, "d", true)
    )
}

impl Store {
    /// The user an unrevoked API token belongs to (by the token's hash) and their role,
    /// in one query: this runs for every request of an API token.
    pub async fn api_token_holder(&self, token_hash: &[u8]) -> StoreResult<Option<(User, Role)>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {}, {} FROM api_tokens t JOIN users u ON u.id = t.user_id \
                 JOIN roles r ON r.id = u.role_id \
                 WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
                qualified(USER_COLUMNS, "u", false),
                qualified(ROLE_COLUMNS, "r", true)
            )
        });
        let row: Option<TokenHolderRow> = sqlx::query_as(SQL.as_str())
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let role = Role::try_from(RoleRow {
            id: row.r_id,
            name: row.r_name,
            require_2fa: row.r_require_2fa,
            otp_required: row.r_otp_required,
            interface: row.r_interface,
            permissions: row.r_permissions,
            session_idle_minutes: row.r_session_idle_minutes,
            session_max_hours: row.r_session_max_hours,
        })?;
        Ok(Some((User::try_from(row.user)?, role)))
    }

    /// How many users of a role have no confirmed device (they would have to set one up
    /// at their next sign-in if the role were Force).
    pub async fn users_without_device(&self, role: RoleId) -> StoreResult<u64> {
        // The state is written into the SQL (see `user_device_sql`).
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM users u WHERE u.role_id = $1 AND NOT EXISTS \
             (SELECT 1 FROM devices d WHERE d.user_id = u.id AND d.state = 'confirmed')",
        )
        .bind(role.0)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// A user by name with their confirmed device, in one query (`user_by_username` and
    /// `confirmed_device` together).
    pub async fn user_with_confirmed_device(
        &self,
        username: &Username,
    ) -> StoreResult<Option<(User, Option<Device>)>> {
        static SQL: LazyLock<String> = LazyLock::new(|| user_device_sql(None));
        let row: Option<UserDeviceRow> = sqlx::query_as(SQL.as_str())
            .bind(username.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| self.user_and_device(row)).transpose()
    }

    /// What an OTP check reads: the settings in force and the user by name with their
    /// confirmed device, in one query (the hot path). For an unknown user the settings
    /// take a second query.
    pub async fn settings_and_user_with_device(
        &self,
        username: &Username,
    ) -> StoreResult<(Settings, Option<(User, Option<Device>)>)> {
        static SQL: LazyLock<[String; 2]> = LazyLock::new(|| {
            [Backend::Sqlite, Backend::Postgres]
                .map(|backend| user_device_sql(Some(settings_json_sql(backend))))
        });
        let sql = match self.backend {
            Backend::Sqlite => &SQL[0],
            Backend::Postgres => &SQL[1],
        };
        let row: Option<UserDeviceRow> = sqlx::query_as(sql.as_str())
            .bind(username.as_str())
            .fetch_optional(&self.pool)
            .await?;
        let Some(mut row) = row else {
            return Ok((self.settings().await?, None));
        };
        let json = row.settings.take().ok_or_else(|| corrupt("settings"))?;
        Ok((settings_from_json(&json)?, Some(self.user_and_device(row)?)))
    }

    /// The hot path of an OTP check: the settings in force, the user by name with their
    /// confirmed device, and the reservation of the attempt at their code (see
    /// [`Store::reserve_attempt`]; an inactive user's is refused). SQLite: one request,
    /// in the group commit writer's order and durable before the answer; PostgreSQL: the
    /// read, then the reservation's conditional `UPDATE`. For an unknown user the
    /// settings take a second query.
    pub async fn reserve_for_check(
        &self,
        username: &Username,
        now: Timestamp,
    ) -> StoreResult<(Settings, Option<(User, Option<Device>, Reservation)>)> {
        let Some(group) = &self.group else {
            let (settings, found) = self.settings_and_user_with_device(username).await?;
            let Some((user, device)) = found else {
                return Ok((settings, None));
            };
            let reservation = match user.active {
                true => {
                    let lockout = Lockout::of(&settings);
                    self.reserve_attempt(user.id, now, lockout.threshold(), lockout.lock_until(now))
                        .await?
                }
                false => Reservation::Refused,
            };
            return Ok((settings, Some((user, device, reservation))));
        };
        let name = username.as_str().to_owned();
        let row = group
            .run(move |conn| Box::pin(async move { reserve_and_read(conn, &name, now).await }))
            .await?;
        let Some(mut row) = row else {
            return Ok((self.settings().await?, None));
        };
        let json = row.settings.take().ok_or_else(|| corrupt("settings"))?;
        let reserved = row.reserved;
        let (user, device) = self.user_and_device(row)?;
        let reservation = match reserved {
            Some(1) => Reservation::Granted(counted(&user)),
            Some(0) => Reservation::Refused,
            _ => return Err(corrupt("reservation")),
        };
        Ok((
            settings_from_json(&json)?,
            Some((user, device, reservation)),
        ))
    }

    fn user_and_device(&self, row: UserDeviceRow) -> StoreResult<(User, Option<Device>)> {
        let user = User::try_from(row.user)?;
        let device = match row.d_id {
            None => None,
            Some(id) => {
                let missing = || corrupt("device row");
                Some(self.device_from_row(DeviceRow {
                    id,
                    user_id: row.d_user_id.ok_or_else(missing)?,
                    state: row.d_state.ok_or_else(missing)?,
                    method: row.d_method.ok_or_else(missing)?,
                    secret: row.d_secret.ok_or_else(missing)?,
                    algorithm: row.d_algorithm.ok_or_else(missing)?,
                    digits: row.d_digits.ok_or_else(missing)?,
                    period: row.d_period.ok_or_else(missing)?,
                    counter: row.d_counter,
                    last_step: row.d_last_step,
                    prompt_mode: row.d_prompt_mode.ok_or_else(missing)?,
                })?)
            }
        };
        Ok((user, device))
    }
}
