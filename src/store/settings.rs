//! System settings, one row per setting in its text form; missing rows are defaults.

use super::{Store, StoreResult};
use crate::clock::Timestamp;
use crate::domain::{SettingKey, Settings};

impl Store {
    /// The settings in force. A stored value that no longer parses (never written by this
    /// code) falls back to the default and is logged.
    pub async fn settings(&self) -> StoreResult<Settings> {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT key, value FROM settings")
            .fetch_all(&self.pool)
            .await?;
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
        Ok(settings)
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
