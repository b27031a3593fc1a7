//! The OpenID Connect provider's state (SPEC 13): signing keys, subjects, authorization
//! requests waiting for a sign-in, codes, and grants with their refresh and access tokens.
//! Tokens and codes are kept only as their SHA-256; a signing key's private half only
//! sealed under the server key.

use sqlx::FromRow;

use super::{corrupt, Store, StoreError, StoreResult};
use crate::clock::Timestamp;
use crate::domain::oidc::{
    Authentication, Authorization, ClientId, CodeChallenge, Grant, IssuedCode, RedirectUri,
};
use crate::domain::{SessionId, UserId};

/// A signing key as stored: the private key sealed, the public one as JWK parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSigningKey {
    pub kid: String,
    /// PKCS#1 DER, sealed under the server key (associated data: the `kid`).
    pub sealed_private_key: Vec<u8>,
    /// The JWK's `n` and `e` (base64url).
    pub modulus: String,
    pub exponent: String,
    pub created_at: Timestamp,
    /// `None` for the current signing key.
    pub retired_at: Option<Timestamp>,
}

#[derive(FromRow)]
struct KeyRow {
    kid: String,
    private_key: Vec<u8>,
    modulus: String,
    exponent: String,
    created_at: i64,
    retired_at: Option<i64>,
}

impl From<KeyRow> for StoredSigningKey {
    fn from(row: KeyRow) -> Self {
        Self {
            kid: row.kid,
            sealed_private_key: row.private_key,
            modulus: row.modulus,
            exponent: row.exponent,
            created_at: Timestamp::from_millis(row.created_at),
            retired_at: row.retired_at.map(Timestamp::from_millis),
        }
    }
}

const KEY_COLUMNS: &str = "kid, private_key, modulus, exponent, created_at, retired_at";

/// A code's row id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeId(i64);

#[derive(FromRow)]
struct CodeRow {
    id: i64,
    client_id: String,
    redirect_uri: String,
    code_challenge: Option<String>,
    user_id: i64,
    session_id: Option<i64>,
    scopes: String,
    nonce: Option<String>,
    auth_time: i64,
    factors: String,
    issued_at: i64,
    used_at: Option<i64>,
}

const CODE_COLUMNS: &str = "id, client_id, redirect_uri, code_challenge, user_id, session_id, \
     scopes, nonce, auth_time, factors, issued_at, used_at";

#[derive(FromRow)]
struct GrantRow {
    id: i64,
    client_id: String,
    user_id: i64,
    session_id: Option<i64>,
    scopes: String,
    auth_time: i64,
    factors: String,
    generation: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
}

#[derive(FromRow)]
struct RefreshRow {
    #[sqlx(flatten)]
    grant: GrantRow,
    token_generation: i64,
}

const GRANT_COLUMNS: &str = "g.id, g.client_id, g.user_id, g.session_id, g.scopes, g.auth_time, \
     g.factors, g.generation, g.expires_at, g.revoked_at";

fn authorization(
    client_id: &str,
    user_id: i64,
    session_id: Option<i64>,
    scopes: &str,
    nonce: Option<String>,
    auth_time: i64,
    factors: &str,
) -> StoreResult<Authorization> {
    Ok(Authorization {
        client_id: ClientId::parse(client_id).map_err(|_| corrupt("client id"))?,
        user_id: UserId(user_id),
        session_id: session_id.map(SessionId),
        scopes: scopes
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        nonce,
        auth_time: Timestamp::from_millis(auth_time),
        authentication: Authentication::decode(factors).ok_or_else(|| corrupt("factors"))?,
    })
}

impl TryFrom<GrantRow> for Grant {
    type Error = StoreError;

    fn try_from(row: GrantRow) -> StoreResult<Self> {
        Ok(Grant {
            id: row.id,
            authorization: authorization(
                &row.client_id,
                row.user_id,
                row.session_id,
                &row.scopes,
                None,
                row.auth_time,
                &row.factors,
            )?,
            generation: u32::try_from(row.generation).map_err(|_| corrupt("generation"))?,
            expires_at: Timestamp::from_millis(row.expires_at),
            revoked: row.revoked_at.is_some(),
        })
    }
}

/// The tokens a code exchange or a refresh issues, by their hashes.
#[derive(Clone, Copy, Debug)]
pub struct NewTokens<'a> {
    pub refresh_hash: &'a [u8],
    pub access_hash: &'a [u8],
    pub access_expires_at: Timestamp,
}

impl Store {
    // --- Signing keys ----------------------------------------------------------------

    /// The current signing key and the retired ones retired after `retired_after`.
    pub async fn oidc_signing_keys(
        &self,
        retired_after: Timestamp,
    ) -> StoreResult<Vec<StoredSigningKey>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM oidc_signing_keys \
             WHERE current = 1 OR retired_at > $1 ORDER BY created_at DESC, id DESC"
        );
        let rows: Vec<KeyRow> = sqlx::query_as(&sql)
            .bind(retired_after.millis())
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(StoredSigningKey::from).collect())
    }

    /// The current signing key, if there is one.
    pub async fn oidc_current_signing_key(&self) -> StoreResult<Option<StoredSigningKey>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM oidc_signing_keys WHERE current = 1");
        let row: Option<KeyRow> = sqlx::query_as(&sql).fetch_optional(&self.pool).await?;
        Ok(row.map(StoredSigningKey::from))
    }

    /// Stores `key` as the current signing key unless there is one already (another
    /// instance may have made it first); `true` when stored.
    pub async fn add_first_oidc_signing_key(&self, key: &StoredSigningKey) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO oidc_signing_keys (kid, private_key, modulus, exponent, current, created_at) \
             VALUES ($1, $2, $3, $4, 1, $5) ON CONFLICT DO NOTHING",
        )
        .bind(key.kid.as_str())
        .bind(key.sealed_private_key.clone())
        .bind(key.modulus.as_str())
        .bind(key.exponent.as_str())
        .bind(key.created_at.millis())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Retires the current signing key at `key.created_at` and makes `key` current, in
    /// one transaction.
    pub async fn rotate_oidc_signing_key(&self, key: &StoredSigningKey) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE oidc_signing_keys SET current = NULL, retired_at = $1 WHERE current = 1",
        )
        .bind(key.created_at.millis())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO oidc_signing_keys (kid, private_key, modulus, exponent, current, created_at) \
             VALUES ($1, $2, $3, $4, 1, $5)",
        )
        .bind(key.kid.as_str())
        .bind(key.sealed_private_key.clone())
        .bind(key.modulus.as_str())
        .bind(key.exponent.as_str())
        .bind(key.created_at.millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes the keys retired before `retired_before` (no token they signed is valid).
    pub async fn prune_oidc_signing_keys(&self, retired_before: Timestamp) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM oidc_signing_keys WHERE retired_at < $1")
            .bind(retired_before.millis())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    // --- Subjects --------------------------------------------------------------------

    /// The user's subject identifier; `candidate` becomes it at the first call.
    pub async fn oidc_subject(&self, user_id: UserId, candidate: &str) -> StoreResult<String> {
        sqlx::query(
            "INSERT INTO oidc_subjects (user_id, subject) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(user_id.0)
        .bind(candidate)
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT subject FROM oidc_subjects WHERE user_id = $1")
                .bind(user_id.0)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    // --- Authorization requests waiting for a sign-in -------------------------------

    pub async fn create_oidc_request(
        &self,
        token_hash: &[u8],
        params: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO oidc_requests (token_hash, params, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash.to_vec())
        .bind(params)
        .bind(now.millis())
        .bind(expires_at.millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A live waiting request: its parameters and when it was made.
    pub async fn oidc_request(
        &self,
        token_hash: &[u8],
        now: Timestamp,
    ) -> StoreResult<Option<(String, Timestamp)>> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT params, created_at FROM oidc_requests WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(token_hash.to_vec())
        .bind(now.millis())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(params, created_at)| (params, Timestamp::from_millis(created_at))))
    }

    /// Ends a waiting request; `true` if it was there (so only one answer uses it).
    pub async fn delete_oidc_request(&self, token_hash: &[u8]) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM oidc_requests WHERE token_hash = $1")
            .bind(token_hash.to_vec())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    // --- Codes -----------------------------------------------------------------------

    pub async fn create_oidc_code(
        &self,
        code_hash: &[u8],
        code: &IssuedCode,
        authorization: &Authorization,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO oidc_codes (code_hash, client_id, redirect_uri, code_challenge, user_id, \
             session_id, scopes, nonce, auth_time, factors, issued_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(code_hash.to_vec())
        .bind(code.client_id.as_str())
        .bind(code.redirect_uri.as_str())
        .bind(code.code_challenge.as_ref().map(|c| c.as_str().to_owned()))
        .bind(authorization.user_id.0)
        .bind(authorization.session_id.map(|id| id.0))
        .bind(authorization.scopes.join(" "))
        .bind(authorization.nonce.clone())
        .bind(authorization.auth_time.millis())
        .bind(authorization.authentication.encode())
        .bind(code.issued_at.millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The code of this hash, used or not, with what it stands for.
    pub async fn oidc_code(
        &self,
        code_hash: &[u8],
    ) -> StoreResult<Option<(CodeId, IssuedCode, Authorization)>> {
        let sql = format!("SELECT {CODE_COLUMNS} FROM oidc_codes WHERE code_hash = $1");
        let row: Option<CodeRow> = sqlx::query_as(&sql)
            .bind(code_hash.to_vec())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let client_id = ClientId::parse(&row.client_id).map_err(|_| corrupt("client id"))?;
        let code = IssuedCode {
            client_id,
            redirect_uri: RedirectUri::parse(&row.redirect_uri)
                .map_err(|_| corrupt("redirect URI"))?,
            code_challenge: row
                .code_challenge
                .as_deref()
                .map(|c| CodeChallenge::parse(c, Some("S256")))
                .transpose()
                .map_err(|_| corrupt("code challenge"))?,
            issued_at: Timestamp::from_millis(row.issued_at),
            used: row.used_at.is_some(),
        };
        let authorization = authorization(
            &row.client_id,
            row.user_id,
            row.session_id,
            &row.scopes,
            row.nonce,
            row.auth_time,
            &row.factors,
        )?;
        Ok(Some((CodeId(row.id), code, authorization)))
    }

    /// Marks the code used; `false` if it already was (a concurrent exchange won).
    pub async fn use_oidc_code(&self, id: CodeId, now: Timestamp) -> StoreResult<bool> {
        let done =
            sqlx::query("UPDATE oidc_codes SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
                .bind(id.0)
                .bind(now.millis())
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Revokes what the code's exchange issued (SPEC 13: a second use of a code); how many
    /// grants.
    pub async fn revoke_oidc_grants_of_code(&self, id: CodeId, now: Timestamp) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE oidc_grants SET revoked_at = $2 WHERE code_id = $1 AND revoked_at IS NULL",
        )
        .bind(id.0)
        .bind(now.millis())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Removes what has expired at `now`, and the codes issued before `codes_before` (a
    /// used code is kept that long, so that a second use still finds and revokes its
    /// grant).
    pub async fn purge_oidc(&self, now: Timestamp, codes_before: Timestamp) -> StoreResult<u64> {
        let mut removed = 0;
        for (sql, at) in [
            ("DELETE FROM oidc_requests WHERE expires_at <= $1", now),
            ("DELETE FROM oidc_codes WHERE issued_at < $1", codes_before),
            ("DELETE FROM oidc_access_tokens WHERE expires_at <= $1", now),
            ("DELETE FROM oidc_grants WHERE expires_at <= $1", now),
        ] {
            removed += sqlx::query(sql)
                .bind(at.millis())
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(removed)
    }

    // --- Grants and tokens -------------------------------------------------------------

    /// A new grant for `authorization` from the code `code_id`, with its first refresh
    /// and access tokens, in one transaction.
    pub async fn create_oidc_grant(
        &self,
        code_id: Option<CodeId>,
        authorization: &Authorization,
        expires_at: Timestamp,
        tokens: NewTokens<'_>,
        now: Timestamp,
    ) -> StoreResult<i64> {
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO oidc_grants (code_id, client_id, user_id, session_id, scopes, auth_time, \
             factors, generation, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9) RETURNING id",
        )
        .bind(code_id.map(|id| id.0))
        .bind(authorization.client_id.as_str())
        .bind(authorization.user_id.0)
        .bind(authorization.session_id.map(|id| id.0))
        .bind(authorization.scopes.join(" "))
        .bind(authorization.auth_time.millis())
        .bind(authorization.authentication.encode())
        .bind(now.millis())
        .bind(expires_at.millis())
        .fetch_one(&mut *tx)
        .await?;
        insert_tokens(&mut tx, id, 0, tokens).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The grant of a refresh token, with the token's generation.
    pub async fn oidc_refresh_token(&self, token_hash: &[u8]) -> StoreResult<Option<(Grant, u32)>> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS}, r.generation AS token_generation FROM oidc_refresh_tokens r \
             JOIN oidc_grants g ON g.id = r.grant_id WHERE r.token_hash = $1"
        );
        let row: Option<RefreshRow> = sqlx::query_as(&sql)
            .bind(token_hash.to_vec())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let generation = u32::try_from(row.token_generation).map_err(|_| corrupt("generation"))?;
        Ok(Some((row.grant.try_into()?, generation)))
    }

    /// Rotates the grant's refresh token from `generation` to the next, with a new access
    /// token, in one transaction; `false` if `generation` is no longer the newest or the
    /// grant was revoked (another request rotated it first: a replay).
    pub async fn rotate_oidc_refresh_token(
        &self,
        grant_id: i64,
        generation: u32,
        tokens: NewTokens<'_>,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE oidc_grants SET generation = generation + 1 \
             WHERE id = $1 AND generation = $2 AND revoked_at IS NULL",
        )
        .bind(grant_id)
        .bind(i64::from(generation))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        insert_tokens(&mut tx, grant_id, i64::from(generation) + 1, tokens).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Revokes a grant: its refresh and access tokens stop working.
    pub async fn revoke_oidc_grant(&self, grant_id: i64, now: Timestamp) -> StoreResult<()> {
        sqlx::query("UPDATE oidc_grants SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(grant_id)
            .bind(now.millis())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The grant of an access token that has not expired at `now`.
    pub async fn oidc_access_token(
        &self,
        token_hash: &[u8],
        now: Timestamp,
    ) -> StoreResult<Option<Grant>> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM oidc_access_tokens a \
             JOIN oidc_grants g ON g.id = a.grant_id WHERE a.token_hash = $1 AND a.expires_at > $2"
        );
        let row: Option<GrantRow> = sqlx::query_as(&sql)
            .bind(token_hash.to_vec())
            .bind(now.millis())
            .fetch_optional(&self.pool)
            .await?;
        row.map(Grant::try_from).transpose()
    }
}

async fn insert_tokens(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    grant_id: i64,
    generation: i64,
    tokens: NewTokens<'_>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO oidc_refresh_tokens (token_hash, grant_id, generation) VALUES ($1, $2, $3)",
    )
    .bind(tokens.refresh_hash.to_vec())
    .bind(grant_id)
    .bind(generation)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO oidc_access_tokens (token_hash, grant_id, expires_at) VALUES ($1, $2, $3)",
    )
    .bind(tokens.access_hash.to_vec())
    .bind(grant_id)
    .bind(tokens.access_expires_at.millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
