//! The email templates administrators save (SPEC section 4: module "OTP", name "OTP
//! Notification Email"); the default one ships in `mail::template`.

use super::{Store, StoreResult};
use crate::clock::Timestamp;

/// An email template (module "OTP", name "OTP Notification Email").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredTemplate {
    pub subject: String,
    pub text_body: String,
    pub html_body: Option<String>,
}

impl Store {
    pub async fn template(&self, module: &str, name: &str) -> StoreResult<Option<StoredTemplate>> {
        let row: Option<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT subject, text_body, html_body FROM email_templates WHERE module = $1 AND name = $2",
        )
        .bind(module)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(subject, text_body, html_body)| StoredTemplate {
            subject,
            text_body,
            html_body,
        }))
    }

    pub async fn put_template(
        &self,
        module: &str,
        name: &str,
        template: &StoredTemplate,
        now: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO email_templates (module, name, subject, text_body, html_body, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (module, name) DO UPDATE SET \
             subject = excluded.subject, text_body = excluded.text_body, \
             html_body = excluded.html_body, updated_at = excluded.updated_at",
        )
        .bind(module)
        .bind(name)
        .bind(&template.subject)
        .bind(&template.text_body)
        .bind(template.html_body.clone())
        .bind(now.millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
