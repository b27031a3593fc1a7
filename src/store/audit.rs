//! The append-only audit log (SPEC section 7) and the email templates.

use std::sync::LazyLock;

use sqlx::FromRow;

use super::{Store, StoreResult};
use crate::clock::Timestamp;

/// What happened. Stored by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuditEvent {
    SignInSucceeded,
    SignInFailed,
    OtpSent,
    OtpAccepted,
    OtpRefused,
    Locked,
    Unlocked,
    DeviceEnrolled,
    DeviceDisabled,
    PasswordChanged,
    UserCreated,
    UserChanged,
    UserDeleted,
    RoleChanged,
    SettingChanged,
    IpRuleChanged,
    TemplateChanged,
    EmailDead,
    ApiTokenCreated,
}

impl AuditEvent {
    pub const ALL: [Self; 19] = [
        Self::SignInSucceeded,
        Self::SignInFailed,
        Self::OtpSent,
        Self::OtpAccepted,
        Self::OtpRefused,
        Self::Locked,
        Self::Unlocked,
        Self::DeviceEnrolled,
        Self::DeviceDisabled,
        Self::PasswordChanged,
        Self::UserCreated,
        Self::UserChanged,
        Self::UserDeleted,
        Self::RoleChanged,
        Self::SettingChanged,
        Self::IpRuleChanged,
        Self::TemplateChanged,
        Self::EmailDead,
        Self::ApiTokenCreated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignInSucceeded => "signin_succeeded",
            Self::SignInFailed => "signin_failed",
            Self::OtpSent => "otp_sent",
            Self::OtpAccepted => "otp_accepted",
            Self::OtpRefused => "otp_refused",
            Self::Locked => "locked",
            Self::Unlocked => "unlocked",
            Self::DeviceEnrolled => "device_enrolled",
            Self::DeviceDisabled => "device_disabled",
            Self::PasswordChanged => "password_changed",
            Self::UserCreated => "user_created",
            Self::UserChanged => "user_changed",
            Self::UserDeleted => "user_deleted",
            Self::RoleChanged => "role_changed",
            Self::SettingChanged => "setting_changed",
            Self::IpRuleChanged => "ip_rule_changed",
            Self::TemplateChanged => "template_changed",
            Self::EmailDead => "email_dead",
            Self::ApiTokenCreated => "api_token_created",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|event| event.as_str() == text)
    }
}

/// An entry to append. `detail` holds before/after values or an internal reason; never a
/// password, code or secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAuditEntry {
    pub event: AuditEvent,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub client_ip: Option<String>,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub event: String,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub client_ip: Option<String>,
    pub detail: String,
}

/// A filter over the log; every part optional. Newest first.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    /// Entries whose actor or subject is this username.
    pub user: Option<String>,
    pub event: Option<AuditEvent>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub offset: u32,
    pub limit: u32,
}

/// An email template (module "OTP", name "OTP Notification Email").
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct StoredTemplate {
    pub subject: String,
    pub text_body: String,
    pub html_body: Option<String>,
}

impl Store {
    pub async fn audit(&self, entry: &NewAuditEntry, now: Timestamp) -> StoreResult<()> {
        if let Some(group) = &self.group {
            let entry = entry.clone();
            return group
                .run(move |conn| Box::pin(async move { insert_audit(conn, &entry, now).await }))
                .await;
        }
        let mut conn = self.pool.acquire().await?;
        insert_audit(&mut conn, entry, now).await
    }

    pub async fn audit_entries(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        // Unused filters are written so that they always hold (`$n IS NULL OR ...`), so one
        // statement serves every combination.
        Ok(sqlx::query_as(
            "SELECT id, at, event, actor, subject, client_ip, detail FROM audit_log \
             WHERE ($1 IS NULL OR actor = $1 OR subject = $1) \
               AND ($2 IS NULL OR event = $2) \
               AND ($3 IS NULL OR at >= $3) \
               AND ($4 IS NULL OR at < $4) \
             ORDER BY id DESC LIMIT $5 OFFSET $6",
        )
        .bind(query.user.clone())
        .bind(query.event.map(|e| e.as_str().to_owned()))
        .bind(query.since.map(Timestamp::millis))
        .bind(query.until.map(Timestamp::millis))
        .bind(i64::from(query.limit))
        .bind(i64::from(query.offset))
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn template(&self, module: &str, name: &str) -> StoreResult<Option<StoredTemplate>> {
        Ok(sqlx::query_as(
            "SELECT subject, text_body, html_body FROM email_templates WHERE module = $1 AND name = $2",
        )
        .bind(module)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
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

/// The columns an audit entry is written to, and how many values that takes.
pub(super) const AUDIT_COLUMNS: &str = "at, event, actor, subject, client_ip, detail";
pub(super) const AUDIT_VALUES: usize = 6;

/// Binds the values of `entry` in the order of [`AUDIT_COLUMNS`].
pub(super) fn bind_audit<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    entry: &NewAuditEntry,
    at: Timestamp,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(at.millis())
        .bind(entry.event.as_str())
        .bind(entry.actor.clone())
        .bind(entry.subject.clone())
        .bind(entry.client_ip.clone())
        .bind(entry.detail.clone())
}

/// Appends one entry (on any connection: the pool's, or a group-commit batch's).
pub(super) async fn insert_audit(
    conn: &mut sqlx::AnyConnection,
    entry: &NewAuditEntry,
    at: Timestamp,
) -> StoreResult<()> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!("INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)")
    });
    bind_audit(sqlx::query(SQL.as_str()), entry, at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
