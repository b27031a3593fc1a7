//! The OpenID Connect client registry (SPEC 13): registered applications, with a
//! confidential client's secret kept only as its hash.

use sqlx::FromRow;

use super::sql::found;
use super::{corrupt, flag, int, is_unique_violation, Conflict, Store, StoreError, StoreResult};
use crate::clock::Timestamp;
use crate::domain::oidc::{ClientId, ClientRegistration, RedirectUri};

#[derive(FromRow)]
struct ClientRow {
    client_id: String,
    name: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    confidential: i64,
    require_2fa: i64,
}

const CLIENT_COLUMNS: &str =
    "client_id, name, redirect_uris, post_logout_redirect_uris, confidential, require_2fa";

impl TryFrom<ClientRow> for ClientRegistration {
    type Error = StoreError;

    fn try_from(row: ClientRow) -> StoreResult<Self> {
        let client = ClientRegistration {
            client_id: ClientId::parse(&row.client_id).map_err(|_| corrupt("client id"))?,
            name: row.name,
            redirect_uris: uris_from_json(&row.redirect_uris)?,
            post_logout_redirect_uris: uris_from_json(&row.post_logout_redirect_uris)?,
            confidential: flag(row.confidential),
            require_2fa: flag(row.require_2fa),
        };
        client.check().map_err(|_| corrupt("client registration"))?;
        Ok(client)
    }
}

/// A JSON array of the URIs' exact text.
fn uris_to_json(uris: &[RedirectUri]) -> StoreResult<String> {
    let texts: Vec<&str> = uris.iter().map(RedirectUri::as_str).collect();
    serde_json::to_string(&texts).map_err(|_| corrupt("redirect URIs"))
}

fn uris_from_json(text: &str) -> StoreResult<Vec<RedirectUri>> {
    let texts: Vec<String> = serde_json::from_str(text).map_err(|_| corrupt("redirect URIs"))?;
    texts
        .iter()
        .map(|uri| RedirectUri::parse(uri).map_err(|_| corrupt("redirect URI")))
        .collect()
}

impl Store {
    /// Registers a client; `secret_hash` is given exactly for a confidential one. A
    /// `client_id` already registered is a [`Conflict::ClientIdTaken`] and writes nothing.
    pub async fn create_oidc_client(
        &self,
        client: &ClientRegistration,
        secret_hash: Option<&[u8]>,
        now: Timestamp,
    ) -> StoreResult<ClientRegistration> {
        if client.confidential != secret_hash.is_some() {
            return Err(corrupt(
                "a confidential client has a secret, a public one none",
            ));
        }
        let sql = format!(
            "INSERT INTO oidc_clients (client_id, name, redirect_uris, post_logout_redirect_uris, \
             confidential, require_2fa, secret_hash, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING {CLIENT_COLUMNS}"
        );
        let row: ClientRow = sqlx::query_as(&sql)
            .bind(client.client_id.as_str())
            .bind(client.name.as_str())
            .bind(uris_to_json(&client.redirect_uris)?)
            .bind(uris_to_json(&client.post_logout_redirect_uris)?)
            .bind(int(client.confidential))
            .bind(int(client.require_2fa))
            .bind(secret_hash.map(<[u8]>::to_vec))
            .bind(now.millis())
            .fetch_one(&self.pool)
            .await
            .map_err(|error| match is_unique_violation(&error) {
                true => StoreError::Conflict(Conflict::ClientIdTaken),
                false => error.into(),
            })?;
        row.try_into()
    }

    /// Every registered client, by `client_id`.
    pub async fn list_oidc_clients(&self) -> StoreResult<Vec<ClientRegistration>> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM oidc_clients ORDER BY client_id");
        let rows: Vec<ClientRow> = sqlx::query_as(&sql).fetch_all(&self.pool).await?;
        rows.into_iter().map(ClientRegistration::try_from).collect()
    }

    /// The client of exactly that `client_id` (case matters, as in the protocol).
    pub async fn oidc_client(
        &self,
        client_id: &ClientId,
    ) -> StoreResult<Option<ClientRegistration>> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM oidc_clients WHERE client_id = $1");
        let row: Option<ClientRow> = sqlx::query_as(&sql)
            .bind(client_id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(ClientRegistration::try_from).transpose()
    }

    /// Replaces the name, the redirect URIs and `require_2fa` of the client of
    /// `client.client_id`. Whether it is confidential, and so its secret, stays.
    pub async fn update_oidc_client(
        &self,
        client: &ClientRegistration,
        now: Timestamp,
    ) -> StoreResult<ClientRegistration> {
        let sql = format!(
            "UPDATE oidc_clients SET name = $2, redirect_uris = $3, post_logout_redirect_uris = $4, \
             require_2fa = $5, updated_at = $6 WHERE client_id = $1 RETURNING {CLIENT_COLUMNS}"
        );
        let row: Option<ClientRow> = sqlx::query_as(&sql)
            .bind(client.client_id.as_str())
            .bind(client.name.as_str())
            .bind(uris_to_json(&client.redirect_uris)?)
            .bind(uris_to_json(&client.post_logout_redirect_uris)?)
            .bind(int(client.require_2fa))
            .bind(now.millis())
            .fetch_optional(&self.pool)
            .await?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// Removes a client; `NotFound` when there is none of that `client_id`.
    pub async fn delete_oidc_client(&self, client_id: &ClientId) -> StoreResult<()> {
        let result = sqlx::query("DELETE FROM oidc_clients WHERE client_id = $1")
            .bind(client_id.as_str())
            .execute(&self.pool)
            .await?;
        found(result.rows_affected())
    }

    /// Replaces a confidential client's secret hash (a new secret: the old one stops
    /// working at once); `NotFound` for a public or unknown client.
    pub async fn replace_oidc_client_secret(
        &self,
        client_id: &ClientId,
        secret_hash: &[u8],
        now: Timestamp,
    ) -> StoreResult<()> {
        let result = sqlx::query(
            "UPDATE oidc_clients SET secret_hash = $2, updated_at = $3 \
             WHERE client_id = $1 AND confidential = 1",
        )
        .bind(client_id.as_str())
        .bind(secret_hash)
        .bind(now.millis())
        .execute(&self.pool)
        .await?;
        found(result.rows_affected())
    }

    /// The stored hash of a confidential client's secret (for its authentication at the
    /// token endpoint); `None` for a public client or an unknown `client_id`.
    pub async fn oidc_client_secret_hash(
        &self,
        client_id: &ClientId,
    ) -> StoreResult<Option<Vec<u8>>> {
        let hash: Option<Option<Vec<u8>>> =
            sqlx::query_scalar("SELECT secret_hash FROM oidc_clients WHERE client_id = $1")
                .bind(client_id.as_str())
                .fetch_optional(&self.pool)
                .await?;
        Ok(hash.flatten())
    }
}
