//! Security keys and passkeys (SPEC 14): the users' handles, their registered keys, and
//! the WebAuthn ceremonies waiting for a browser's answer.
//!
//! The key's credential (public key, flags) is webauthn-rs's, kept as its JSON text; the
//! store reads only the columns it needs to decide (owner, counter, prompt mode).

use sqlx::FromRow;

use super::{corrupt, flag, int, is_unique_violation, Store, StoreError, StoreResult};
use crate::clock::Timestamp;
use crate::domain::{
    KeyName, PromptMode, SecurityKey, SecurityKeyId, SessionId, TransactionId, UserId,
    MAX_SECURITY_KEYS,
};

/// A registered key with what the ceremonies need: its credential id, webauthn-rs's
/// credential as JSON, and the last signature counter accepted.
#[derive(Clone, Debug)]
pub struct StoredSecurityKey {
    pub key: SecurityKey,
    pub credential_id: Vec<u8>,
    pub credential: String,
    pub sign_count: u32,
}

/// A key being registered.
#[derive(Clone, Debug)]
pub struct NewSecurityKey {
    pub credential_id: Vec<u8>,
    pub name: Option<KeyName>,
    pub prompt_mode: PromptMode,
    pub credential: String,
    pub discoverable: bool,
    pub sign_count: u32,
}

/// Why a key was not registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRefused {
    /// The user holds [`MAX_SECURITY_KEYS`] already.
    TooMany,
    /// This credential is registered already (to this user or another).
    AlreadyRegistered,
}

/// Whom a waiting ceremony belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChallengeOwner<'a> {
    /// A sign-in transaction (enrollment, the device step).
    Transaction(TransactionId),
    /// A signed-in session (a key added on the account page).
    Session(SessionId),
    /// Nobody yet (passkey sign-in): the SHA-256 of the handle given to the browser.
    Handle(&'a [u8]),
}

/// What a ceremony is for; a challenge is taken only for its own purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChallengePurpose {
    Register,
    Authenticate,
    Passkey,
}

impl ChallengePurpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Authenticate => "authenticate",
            Self::Passkey => "passkey",
        }
    }
}

/// A waiting ceremony, as stored.
#[derive(Clone, Debug)]
pub struct StoredChallenge {
    /// webauthn-rs's state, as JSON.
    pub state: String,
    /// For a registration: the prompt mode chosen.
    pub prompt_mode: Option<PromptMode>,
    pub user_id: Option<UserId>,
}

#[derive(FromRow)]
struct KeyRow {
    id: i64,
    user_id: i64,
    credential_id: Vec<u8>,
    name: String,
    prompt_mode: String,
    passkey: String,
    discoverable: i64,
    sign_count: i64,
    created_at: i64,
    last_used_at: Option<i64>,
}

const KEY_COLUMNS: &str = "id, user_id, credential_id, name, prompt_mode, passkey, \
                           discoverable, sign_count, created_at, last_used_at";

impl TryFrom<KeyRow> for StoredSecurityKey {
    type Error = StoreError;

    fn try_from(row: KeyRow) -> StoreResult<Self> {
        Ok(Self {
            key: SecurityKey {
                id: SecurityKeyId(row.id),
                user_id: UserId(row.user_id),
                name: KeyName::parse(&row.name).map_err(|_| corrupt("key name"))?,
                prompt_mode: PromptMode::parse(&row.prompt_mode)
                    .ok_or_else(|| corrupt("key prompt mode"))?,
                discoverable: flag(row.discoverable),
                created_at: Timestamp::from_millis(row.created_at),
                last_used_at: row.last_used_at.map(Timestamp::from_millis),
            },
            credential_id: row.credential_id,
            credential: row.passkey,
            sign_count: u32::try_from(row.sign_count).map_err(|_| corrupt("key counter"))?,
        })
    }
}

#[derive(FromRow)]
struct ChallengeRow {
    state: String,
    prompt_mode: Option<String>,
    user_id: Option<i64>,
}

impl Store {
    /// The user handle of `user`'s keys: the stored one, else `new` stored now (two
    /// requests racing store one between them).
    pub async fn webauthn_user_handle(&self, user: UserId, new: [u8; 16]) -> StoreResult<Vec<u8>> {
        sqlx::query(
            "INSERT INTO webauthn_user_handles (user_id, handle) VALUES ($1, $2) \
             ON CONFLICT (user_id) DO NOTHING",
        )
        .bind(user.0)
        .bind(new.to_vec())
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT handle FROM webauthn_user_handles WHERE user_id = $1")
                .bind(user.0)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Whose keys carry `handle`.
    pub async fn user_of_webauthn_handle(&self, handle: &[u8]) -> StoreResult<Option<UserId>> {
        let id: Option<i64> =
            sqlx::query_scalar("SELECT user_id FROM webauthn_user_handles WHERE handle = $1")
                .bind(handle.to_vec())
                .fetch_optional(&self.pool)
                .await?;
        Ok(id.map(UserId))
    }

    /// `user`'s keys, oldest first.
    pub async fn security_keys(&self, user: UserId) -> StoreResult<Vec<StoredSecurityKey>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM security_keys WHERE user_id = $1 ORDER BY id");
        let rows: Vec<KeyRow> = sqlx::query_as(&sql)
            .bind(user.0)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(StoredSecurityKey::try_from).collect()
    }

    /// Whether `user` holds a key (without reading the keys).
    pub async fn has_security_key(&self, user: UserId) -> StoreResult<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT id FROM security_keys WHERE user_id = $1 LIMIT 1")
                .bind(user.0)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    /// The key of a credential id, whoever holds it.
    pub async fn security_key_by_credential(
        &self,
        credential_id: &[u8],
    ) -> StoreResult<Option<StoredSecurityKey>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM security_keys WHERE credential_id = $1");
        let row: Option<KeyRow> = sqlx::query_as(&sql)
            .bind(credential_id.to_vec())
            .fetch_optional(&self.pool)
            .await?;
        row.map(StoredSecurityKey::try_from).transpose()
    }

    /// Registers a key of `user`, unless they hold [`MAX_SECURITY_KEYS`] already (counted
    /// by the insert itself, so that two racing registrations cannot make a sixth) or the
    /// credential is registered already. Without a name, it is "Security key N".
    pub async fn add_security_key(
        &self,
        user: UserId,
        new: &NewSecurityKey,
        now: Timestamp,
    ) -> StoreResult<Result<SecurityKey, KeyRefused>> {
        let mut tx = self.begin_write().await?;
        let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM security_keys WHERE user_id = $1")
            .bind(user.0)
            .fetch_one(&mut *tx)
            .await?;
        let held = usize::try_from(held).map_err(|_| corrupt("key count"))?;
        if held >= MAX_SECURITY_KEYS {
            return Ok(Err(KeyRefused::TooMany));
        }
        let name = new
            .name
            .clone()
            .unwrap_or_else(|| KeyName::numbered(held + 1));
        let sql = format!(
            "INSERT INTO security_keys (user_id, credential_id, name, prompt_mode, passkey, \
             discoverable, sign_count, created_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8 \
             WHERE (SELECT COUNT(*) FROM security_keys WHERE user_id = $1) < {MAX_SECURITY_KEYS} \
             RETURNING {KEY_COLUMNS}"
        );
        let inserted: Result<Option<KeyRow>, sqlx::Error> = sqlx::query_as(&sql)
            .bind(user.0)
            .bind(new.credential_id.clone())
            .bind(name.as_str())
            .bind(new.prompt_mode.as_str())
            .bind(new.credential.as_str())
            .bind(int(new.discoverable))
            .bind(i64::from(new.sign_count))
            .bind(now.millis())
            .fetch_optional(&mut *tx)
            .await;
        let row = match inserted {
            Ok(Some(row)) => row,
            Ok(None) => return Ok(Err(KeyRefused::TooMany)),
            Err(error) if is_unique_violation(&error) => {
                return Ok(Err(KeyRefused::AlreadyRegistered))
            }
            Err(error) => return Err(error.into()),
        };
        tx.commit().await?;
        Ok(Ok(StoredSecurityKey::try_from(row)?.key))
    }

    /// Records an accepted assertion of `key`: the new counter and credential, and its
    /// last use, only if the counter still grows from the stored one
    /// ([`crate::domain::counter_accepts`], as one conditional update: of two assertions
    /// racing on two instances, a repeated counter is refused). `false`: refused.
    pub async fn use_security_key(
        &self,
        key: SecurityKeyId,
        sign_count: u32,
        credential: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE security_keys SET sign_count = $2, passkey = $3, last_used_at = $4 \
             WHERE id = $1 AND (sign_count < $2 OR (sign_count = 0 AND $2 = 0))",
        )
        .bind(key.0)
        .bind(i64::from(sign_count))
        .bind(credential)
        .bind(now.millis())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Renames a key of `user`; `false` when `user` has no such key.
    pub async fn rename_security_key(
        &self,
        user: UserId,
        key: SecurityKeyId,
        name: &KeyName,
    ) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE security_keys SET name = $3 WHERE id = $1 AND user_id = $2")
            .bind(key.0)
            .bind(user.0)
            .bind(name.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes a key of `user`, answering it; `None` when `user` has no such key.
    pub async fn remove_security_key(
        &self,
        user: UserId,
        key: SecurityKeyId,
    ) -> StoreResult<Option<SecurityKey>> {
        let sql = format!(
            "DELETE FROM security_keys WHERE id = $1 AND user_id = $2 RETURNING {KEY_COLUMNS}"
        );
        let row: Option<KeyRow> = sqlx::query_as(&sql)
            .bind(key.0)
            .bind(user.0)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(StoredSecurityKey::try_from)
            .transpose()?
            .map(|stored| stored.key))
    }

    /// Stores a ceremony waiting for the browser, replacing an earlier one of the same
    /// owner and purpose (only the newest options can be answered).
    #[allow(clippy::too_many_arguments)]
    pub async fn put_webauthn_challenge(
        &self,
        owner: ChallengeOwner<'_>,
        purpose: ChallengePurpose,
        user: Option<UserId>,
        state: &str,
        prompt_mode: Option<PromptMode>,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        let (transaction, session, handle) = owner_columns(owner);
        let mut tx = self.begin_write().await?;
        if transaction.is_some() || session.is_some() {
            sqlx::query(
                "DELETE FROM webauthn_challenges WHERE purpose = $1 \
                 AND (transaction_id = $2 OR session_id = $3)",
            )
            .bind(purpose.as_str())
            .bind(transaction)
            .bind(session)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO webauthn_challenges (purpose, transaction_id, session_id, handle, \
             user_id, state, prompt_mode, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(purpose.as_str())
        .bind(transaction)
        .bind(session)
        .bind(handle)
        .bind(user.map(|user| user.0))
        .bind(state)
        .bind(prompt_mode.map(PromptMode::as_str))
        .bind(now.millis())
        .bind(expires_at.millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes the waiting ceremony of `owner` for `purpose`, once: one `DELETE`, so that
    /// of two answers to one challenge (on any instance) one at most finds it. `None`:
    /// none, expired, or taken already.
    pub async fn take_webauthn_challenge(
        &self,
        owner: ChallengeOwner<'_>,
        purpose: ChallengePurpose,
        now: Timestamp,
    ) -> StoreResult<Option<StoredChallenge>> {
        let (transaction, session, handle) = owner_columns(owner);
        let row: Option<ChallengeRow> = sqlx::query_as(
            "DELETE FROM webauthn_challenges WHERE purpose = $1 \
             AND (transaction_id = $2 OR session_id = $3 OR handle = $4) AND expires_at > $5 \
             RETURNING state, prompt_mode, user_id",
        )
        .bind(purpose.as_str())
        .bind(transaction)
        .bind(session)
        .bind(handle)
        .bind(now.millis())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(StoredChallenge {
                state: row.state,
                prompt_mode: row
                    .prompt_mode
                    .map(|mode| PromptMode::parse(&mode).ok_or_else(|| corrupt("prompt mode")))
                    .transpose()?,
                user_id: row.user_id.map(UserId),
            })
        })
        .transpose()
    }

    /// Removes the ceremonies past their expiry (housekeeping).
    pub async fn purge_webauthn_challenges(&self, now: Timestamp) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM webauthn_challenges WHERE expires_at <= $1")
            .bind(now.millis())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

fn owner_columns(owner: ChallengeOwner<'_>) -> (Option<i64>, Option<i64>, Option<Vec<u8>>) {
    match owner {
        ChallengeOwner::Transaction(id) => (Some(id.0), None, None),
        ChallengeOwner::Session(id) => (None, Some(id.0), None),
        ChallengeOwner::Handle(hash) => (None, None, Some(hash.to_vec())),
    }
}
