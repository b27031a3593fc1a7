//! 2FA devices, their encrypted secrets and the atomic consumption of codes.

use std::sync::LazyLock;

use rand::rngs::OsRng;
use sqlx::FromRow;

use super::audit::{bind_audit, NewAuditEntry, AUDIT_COLUMNS, AUDIT_VALUES};
use super::users::reset_sql;
use super::{corrupt, signed, unsigned, Backend, Store, StoreError, StoreResult};
use crate::clock::Timestamp;
use crate::domain::{
    Device, DeviceId, DeviceOtp, DeviceState, DeviceUse, PromptMode, SessionId, UserId,
};
use crate::otp::{Algorithm, Digits, Hotp, OtpSecret, Period, Totp};

/// A device being set up (it starts pending).
#[derive(Clone, Debug)]
pub struct NewDevice {
    pub prompt_mode: PromptMode,
    pub otp: DeviceOtp,
}

#[derive(FromRow)]
pub(super) struct DeviceRow {
    pub(super) id: i64,
    pub(super) user_id: i64,
    pub(super) state: String,
    pub(super) method: String,
    pub(super) secret: Vec<u8>,
    pub(super) algorithm: String,
    pub(super) digits: i64,
    pub(super) period: i64,
    pub(super) counter: Option<i64>,
    pub(super) last_step: Option<i64>,
    pub(super) prompt_mode: String,
}

pub(super) const DEVICE_COLUMNS: &str =
    "id, user_id, state, method, secret, algorithm, digits, period, counter, last_step, prompt_mode";

/// The associated data that binds a sealed secret to its user: a secret copied into
/// another user's row does not decrypt.
fn secret_binding(user_id: UserId) -> Vec<u8> {
    format!("twostep device secret of user {}", user_id.0).into_bytes()
}

impl Store {
    pub(super) fn device_from_row(&self, row: DeviceRow) -> StoreResult<Device> {
        let user_id = UserId(row.user_id);
        let plain = self
            .key
            .open(&row.secret, &secret_binding(user_id))
            .map_err(|_| StoreError::WrongKey)?;
        let secret = OtpSecret::from_bytes(plain).map_err(|_| corrupt("device secret"))?;
        let algorithm = Algorithm::parse(&row.algorithm).ok_or_else(|| corrupt("algorithm"))?;
        let digits = u8::try_from(row.digits)
            .ok()
            .and_then(Digits::new)
            .ok_or_else(|| corrupt("digits"))?;
        let otp = match (row.method.as_str(), row.counter) {
            ("hotp", Some(counter)) => DeviceOtp::Hotp {
                hotp: Hotp {
                    secret,
                    algorithm,
                    digits,
                },
                counter: unsigned(counter, "counter")?,
            },
            ("totp", _) => DeviceOtp::Totp {
                totp: Totp {
                    secret,
                    algorithm,
                    digits,
                    period: u32::try_from(row.period)
                        .ok()
                        .and_then(Period::new)
                        .ok_or_else(|| corrupt("period"))?,
                },
                last_step: row
                    .last_step
                    .map(|step| unsigned(step, "step"))
                    .transpose()?,
            },
            _ => return Err(corrupt("device method")),
        };
        Ok(Device {
            id: DeviceId(row.id),
            user_id,
            state: DeviceState::parse(&row.state).ok_or_else(|| corrupt("device state"))?,
            prompt_mode: PromptMode::parse(&row.prompt_mode)
                .ok_or_else(|| corrupt("prompt mode"))?,
            otp,
        })
    }

    /// Starts a set-up: a new pending device replaces any earlier pending one of the user.
    /// A confirmed device stays in use until this one is confirmed (Setup New Device).
    pub async fn create_pending_device(
        &self,
        user_id: UserId,
        new: &NewDevice,
        now: Timestamp,
    ) -> StoreResult<Device> {
        let (method, hotp_or_totp_secret, algorithm, digits, period, counter) = match &new.otp {
            DeviceOtp::Hotp { hotp, counter } => (
                "hotp",
                &hotp.secret,
                hotp.algorithm,
                hotp.digits,
                Period::DEFAULT,
                Some(signed(*counter)?),
            ),
            DeviceOtp::Totp { totp, .. } => (
                "totp",
                &totp.secret,
                totp.algorithm,
                totp.digits,
                totp.period,
                None,
            ),
        };
        let sealed = self.key.seal(
            hotp_or_totp_secret.as_bytes(),
            &secret_binding(user_id),
            &mut OsRng,
        )?;
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM devices WHERE user_id = $1 AND state = 'pending'")
            .bind(user_id.0)
            .execute(&mut *tx)
            .await?;
        let sql = format!(
            "INSERT INTO devices (user_id, state, method, secret, algorithm, digits, period, counter, \
             prompt_mode, created_at) VALUES ($1, 'pending', $2, $3, $4, $5, $6, $7, $8, $9) \
             RETURNING {DEVICE_COLUMNS}"
        );
        let row: DeviceRow = sqlx::query_as(&sql)
            .bind(user_id.0)
            .bind(method)
            .bind(sealed)
            .bind(algorithm.as_str())
            .bind(i64::from(digits.get()))
            .bind(i64::from(period.get()))
            .bind(counter)
            .bind(new.prompt_mode.as_str())
            .bind(now.millis())
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        self.device_from_row(row)
    }

    async fn device_in_state(
        &self,
        user_id: UserId,
        state: DeviceState,
    ) -> StoreResult<Option<Device>> {
        // The state is written into the SQL (see `user_device_sql`).
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE user_id = $1 AND state = '{}'",
            state.as_str()
        );
        let row: Option<DeviceRow> = sqlx::query_as(&sql)
            .bind(user_id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| self.device_from_row(row)).transpose()
    }

    /// The device used at sign-in, if the user has one ("2 Step Verification: Enabled").
    pub async fn confirmed_device(&self, user_id: UserId) -> StoreResult<Option<Device>> {
        self.device_in_state(user_id, DeviceState::Confirmed).await
    }

    /// When a device was confirmed ("enrolled"), `None` for a pending one.
    pub async fn device_confirmed_at(&self, device: DeviceId) -> StoreResult<Option<Timestamp>> {
        let at: Option<Option<i64>> =
            sqlx::query_scalar("SELECT confirmed_at FROM devices WHERE id = $1")
                .bind(device.0)
                .fetch_optional(&self.pool)
                .await?;
        Ok(at.flatten().map(Timestamp::from_millis))
    }

    /// The device being set up, if any.
    pub async fn pending_device(&self, user_id: UserId) -> StoreResult<Option<Device>> {
        self.device_in_state(user_id, DeviceState::Pending).await
    }

    /// Marks a pending device as started by `session` (My account's fresh proof belongs to
    /// that session). `false` when the device is no longer pending.
    pub async fn bind_pending_device(
        &self,
        device: DeviceId,
        session: SessionId,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE devices SET setup_session_id = $2 WHERE id = $1 AND state = 'pending'",
        )
        .bind(device.0)
        .bind(session.0)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The user's pending device if `session` started it (see [`Self::bind_pending_device`])
    /// no earlier than `since`.
    pub async fn pending_device_of_session(
        &self,
        user_id: UserId,
        session: SessionId,
        since: Timestamp,
    ) -> StoreResult<Option<Device>> {
        // The state is written into the SQL (see `user_device_sql`).
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE user_id = $1 AND state = 'pending' \
             AND setup_session_id = $2 AND created_at >= $3"
        );
        let row: Option<DeviceRow> = sqlx::query_as(&sql)
            .bind(user_id.0)
            .bind(session.0)
            .bind(since.millis())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| self.device_from_row(row)).transpose()
    }

    /// Complete Setup: consumes the code that proved the pending device works, removes
    /// the user's previous device and confirms this one, in one transaction. `false`
    /// when the pending device is gone or the code was already used.
    pub async fn confirm_device(
        &self,
        device: &Device,
        used: DeviceUse,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        if !consume(
            &mut tx,
            self.backend,
            device.id,
            used,
            DeviceState::Pending,
            None,
            None,
        )
        .await?
        {
            return Ok(false);
        }
        sqlx::query("DELETE FROM devices WHERE user_id = $1 AND state = 'confirmed'")
            .bind(device.user_id.0)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query(
            "UPDATE devices SET state = 'confirmed', confirmed_at = $2 WHERE id = $1 AND state = 'pending'",
        )
        .bind(device.id.0)
        .bind(now.millis())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Consumes an accepted code of a confirmed device, only if the device has not moved
    /// past it: of several requests racing with one code, on any number of instances,
    /// exactly one gets `true`.
    pub async fn consume_device_use(&self, device: DeviceId, used: DeviceUse) -> StoreResult<bool> {
        self.consume_confirmed(device, used, None, None).await
    }

    /// [`Store::consume_device_use`] as a success of the device's user: when the code is
    /// accepted, the audit `entry` is written with it and the user's failure counts start
    /// again, durable together in one commit.
    pub async fn consume_device_use_audited(
        &self,
        device: DeviceId,
        used: DeviceUse,
        entry: &NewAuditEntry,
        at: Timestamp,
        user: UserId,
    ) -> StoreResult<bool> {
        self.consume_confirmed(device, used, Some((entry.clone(), at)), Some(user))
            .await
    }

    async fn consume_confirmed(
        &self,
        device: DeviceId,
        used: DeviceUse,
        audit: Option<(NewAuditEntry, Timestamp)>,
        reset: Option<UserId>,
    ) -> StoreResult<bool> {
        let state = DeviceState::Confirmed;
        if let Some(group) = &self.group {
            let backend = self.backend;
            return group
                .run(move |conn| {
                    Box::pin(async move {
                        let audit = audit.as_ref().map(|(entry, at)| (entry, *at));
                        consume(conn, backend, device, used, state, audit, reset).await
                    })
                })
                .await;
        }
        // PostgreSQL: one statement, atomic on its own.
        let mut conn = self.pool.acquire().await?;
        let audit = audit.as_ref().map(|(entry, at)| (entry, *at));
        consume(&mut conn, self.backend, device, used, state, audit, reset).await
    }

    /// Disable: removes the user's devices (confirmed and pending). Returns whether a
    /// confirmed device existed.
    pub async fn delete_devices(&self, user_id: UserId) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let confirmed: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM devices WHERE user_id = $1 AND state = 'confirmed'",
        )
        .bind(user_id.0)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM devices WHERE user_id = $1")
            .bind(user_id.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(confirmed > 0)
    }
}

/// The conditional update behind every code use: HOTP moves the counter to `matched + 1`
/// only while it is still at or below `matched`; TOTP records `step` only while the last
/// step is below it. `{state}` is the device's state, written into the SQL (see
/// `user_device_sql`).
const CONSUME_HOTP: &str = "UPDATE devices SET counter = $2 WHERE id = $1 AND state = '{state}' \
     AND method = 'hotp' AND counter <= $3";
const CONSUME_TOTP: &str = "UPDATE devices SET last_step = $2 WHERE id = $1 \
     AND state = '{state}' AND method = 'totp' AND (last_step IS NULL OR last_step < $2)";

/// Which SQL a code use takes.
#[derive(Clone, Copy, PartialEq)]
struct ConsumeForm {
    backend: Backend,
    hotp: bool,
    state: DeviceState,
    /// With the audit entry, written only if the code was accepted.
    audited: bool,
    /// With the reset of the user's failure counts, only if the code was accepted.
    reset: bool,
}

impl ConsumeForm {
    /// The update for the device `state`, and when `audited` its audit entry, when `reset`
    /// the reset of the user's failure counts, in the same request (the hot path: one
    /// round trip to the database instead of three). SQLite: statements in one request,
    /// each after the first conditional on `changes()` of the one just before it (callers
    /// run it inside a transaction); PostgreSQL: one statement, the later parts reading
    /// the update's `RETURNING` row.
    fn build(self) -> String {
        let (update, first) = match self.hotp {
            true => (CONSUME_HOTP, 4),
            false => (CONSUME_TOTP, 3),
        };
        let update = update.replace("{state}", self.state.as_str());
        let mut next = first;
        let audit = self.audited.then(|| {
            let values = (next..next + AUDIT_VALUES)
                .map(|n| format!("${n}"))
                .collect::<Vec<_>>()
                .join(", ");
            next += AUDIT_VALUES;
            format!("INSERT INTO audit_log ({AUDIT_COLUMNS}) SELECT {values}")
        });
        let reset = self.reset.then(|| reset_sql(next));
        match self.backend {
            Backend::Sqlite => {
                let mut sql = update;
                if let Some(audit) = audit {
                    sql.push_str(&format!("; {audit} WHERE changes() = 1"));
                }
                if let Some(reset) = reset {
                    sql.push_str(&format!("; {reset} AND changes() = 1"));
                }
                sql
            }
            Backend::Postgres => match (audit, reset) {
                (None, None) => update,
                (Some(audit), None) => {
                    format!("WITH consumed AS ({update} RETURNING id) {audit} FROM consumed")
                }
                (audit, Some(reset)) => {
                    let audit = audit
                        .map(|audit| format!(", audited AS ({audit} FROM consumed RETURNING 1)"))
                        .unwrap_or_default();
                    format!(
                        "WITH consumed AS ({update} RETURNING id){audit} \
                         {reset} AND EXISTS (SELECT 1 FROM consumed)"
                    )
                }
            },
        }
    }

    /// The rows a request of this form changes when the code is accepted: SQLite counts
    /// every statement's rows, PostgreSQL those of the main statement.
    fn accepted_rows(self) -> u64 {
        match self.backend {
            Backend::Sqlite => 1 + u64::from(self.audited) + u64::from(self.reset),
            Backend::Postgres => 1,
        }
    }

    /// The SQL of this form; every form is built once.
    fn sql(self) -> Option<&'static str> {
        static FORMS: LazyLock<Vec<(ConsumeForm, String)>> = LazyLock::new(|| {
            let mut forms = Vec::new();
            for backend in [Backend::Sqlite, Backend::Postgres] {
                for hotp in [true, false] {
                    for state in [DeviceState::Confirmed, DeviceState::Pending] {
                        for audited in [false, true] {
                            for reset in [false, true] {
                                let form = ConsumeForm {
                                    backend,
                                    hotp,
                                    state,
                                    audited,
                                    reset,
                                };
                                forms.push((form, form.build()));
                            }
                        }
                    }
                }
            }
            forms
        });
        FORMS
            .iter()
            .find(|(form, _)| *form == self)
            .map(|(_, sql)| sql.as_str())
    }
}

/// Consumes a code of `device` (see [`CONSUME_HOTP`]); with `audit`, the entry is
/// written, and with `reset` the failure counts of that user start again, only if the
/// code was accepted, in the same request. Whether it was accepted.
async fn consume(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    device: DeviceId,
    used: DeviceUse,
    state: DeviceState,
    audit: Option<(&NewAuditEntry, Timestamp)>,
    reset: Option<UserId>,
) -> StoreResult<bool> {
    let hotp = matches!(used, DeviceUse::Hotp { .. });
    let form = ConsumeForm {
        backend,
        hotp,
        state,
        audited: audit.is_some(),
        reset: reset.is_some(),
    };
    let sql = form
        .sql()
        .ok_or_else(|| corrupt("no SQL for this code use"))?;
    let query = match used {
        DeviceUse::Hotp { matched } => {
            let next = matched
                .checked_add(1)
                .ok_or_else(|| corrupt("counter out of range"))?;
            sqlx::query(sql)
                .bind(device.0)
                .bind(signed(next)?)
                .bind(signed(matched)?)
        }
        DeviceUse::Totp { step } => sqlx::query(sql).bind(device.0).bind(signed(step)?),
    };
    let query = match audit {
        None => query,
        Some((entry, at)) => bind_audit(query, entry, at),
    };
    let query = match reset {
        None => query,
        Some(user) => query.bind(user.0),
    };
    let changed = query.execute(&mut *conn).await?.rows_affected();
    match changed {
        0 => Ok(false),
        n if n == form.accepted_rows() => Ok(true),
        _ => Err(corrupt(&format!("a code use changed {changed} rows"))),
    }
}
