//! System settings, one row per setting in its text form; missing rows are defaults.

use super::{corrupt, Backend, Store, StoreResult};
use crate::clock::Timestamp;
use crate::domain::{SettingKey, Settings};

impl Store {
    /// The settings in force. A stored value that no longer parses (never written by this
    /// code) falls back to the default and is logged.
    pub async fn settings(&self) -> StoreResult<Settings> {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT key, value FROM settings")
            .fetch_all(&self.pool)
            .await?;
        Ok(settings_from_rows(rows))
    }

    /// Stores every setting of `settings` that differs from what is stored, in one
    /// transaction. Validation happened when `settings` was built.
    pub async fn save_settings(&self, settings: &Settings, now: Timestamp) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        for key in SettingKey::ALL {
            sqlx::query(
                "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            )
            .bind(key.name())
            .bind(settings.get(key))
            .bind(now.millis())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// The settings table as one JSON object `{"key": "value", ...}` (a scalar subquery, so
/// that a hot-path read can carry the settings in force with its other columns).
pub(super) fn settings_json_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "(SELECT COALESCE(json_group_object(key, value), '{}') FROM settings)",
        Backend::Postgres => {
            "(SELECT COALESCE(json_object_agg(key, value), '{}')::text FROM settings)"
        }
    }
}

/// The settings of [`settings_json_sql`]'s object.
pub(super) fn settings_from_json(json: &str) -> StoreResult<Settings> {
    let rows: std::collections::BTreeMap<String, String> =
        serde_json::from_str(json).map_err(|_| corrupt("settings"))?;
    Ok(settings_from_rows(rows))
}

/// Stored rows over the defaults; a row that does not parse is logged and ignored.
fn settings_from_rows(rows: impl IntoIterator<Item = (String, String)>) -> Settings {
    let mut settings = Settings::default();
    for (name, value) in rows {
        match SettingKey::parse(&name) {
            Some(key) => {
                if let Err(error) = settings.set(key, &value) {
                    tracing::warn!(setting = %name, %error, "stored setting ignored");
                }
            }
            None => tracing::warn!(setting = %name, "unknown stored setting ignored"),
        }
    }
    settings
}
