//! IP Settings: the acceptable IP rules.

use sqlx::FromRow;

use super::sql::found;
use super::{corrupt, flag, int, is_unique_violation, Conflict, Store, StoreError, StoreResult};
use crate::clock::Timestamp;
use crate::domain::{IpNetwork, IpRule};

/// A rule with its row id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredIpRule {
    pub id: i64,
    pub rule: IpRule,
}

#[derive(FromRow)]
struct IpRuleRow {
    id: i64,
    network: String,
    bypass_2fa: i64,
    note: String,
}

impl TryFrom<IpRuleRow> for StoredIpRule {
    type Error = StoreError;

    fn try_from(row: IpRuleRow) -> StoreResult<Self> {
        Ok(StoredIpRule {
            id: row.id,
            rule: IpRule {
                network: IpNetwork::parse(&row.network).map_err(|_| corrupt("network"))?,
                bypass_2fa: flag(row.bypass_2fa),
                note: row.note,
            },
        })
    }
}

impl Store {
    /// Adds a rule; a network already present is a [`Conflict::NetworkExists`].
    pub async fn add_ip_rule(&self, rule: &IpRule, now: Timestamp) -> StoreResult<StoredIpRule> {
        let row: IpRuleRow = sqlx::query_as(
            "INSERT INTO ip_rules (network, bypass_2fa, note, created_at) VALUES ($1, $2, $3, $4) \
             RETURNING id, network, bypass_2fa, note",
        )
        .bind(rule.network.to_string())
        .bind(int(rule.bypass_2fa))
        .bind(&rule.note)
        .bind(now.millis())
        .fetch_one(&self.pool)
        .await
        .map_err(|error| match is_unique_violation(&error) {
            true => StoreError::Conflict(Conflict::NetworkExists),
            false => error.into(),
        })?;
        row.try_into()
    }

    pub async fn ip_rules(&self) -> StoreResult<Vec<StoredIpRule>> {
        let rows: Vec<IpRuleRow> =
            sqlx::query_as("SELECT id, network, bypass_2fa, note FROM ip_rules ORDER BY network")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(StoredIpRule::try_from).collect()
    }

    pub async fn ip_rule(&self, id: i64) -> StoreResult<Option<StoredIpRule>> {
        let row: Option<IpRuleRow> =
            sqlx::query_as("SELECT id, network, bypass_2fa, note FROM ip_rules WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(StoredIpRule::try_from).transpose()
    }

    pub async fn remove_ip_rule(&self, id: i64) -> StoreResult<()> {
        let done = sqlx::query("DELETE FROM ip_rules WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        found(done.rows_affected())
    }
}
