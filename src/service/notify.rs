//! Security notifications (SPEC section 10): the user is emailed, through the same outbox
//! and worker as the OTP emails, when something happens to their account
//! ([`SecurityEvent`]). The templates are in module "Security", one per event, with the
//! placeholders of [`TemplateKind::Security`] (never a code or secret).
//!
//! A notification never fails the user's action: it is sent after the action is done,
//! and [`security`] returns only a database error, which the callers log and ignore
//! ([`security_logged`]). An unusable saved template (it was valid when saved, so this
//! means a stored row was edited by hand) is logged and the default one is sent instead.

use rand::rngs::OsRng;
use rand::RngCore;

use super::emailed::SaveTemplateError;
use super::Context;
use crate::domain::{AuditEvent, SecurityEvent, User, SECURITY_MODULE};
use crate::mail::message::{message_id_for, OutgoingEmail};
use crate::mail::template::{EmailTemplate, RenderedEmail, SecurityValues, TemplateKind};
use crate::store::{NewOutboxMessage, StoreError, StoredTemplate};

/// How long a queued notification is worth delivering: a security email is still worth
/// sending late, unlike a code.
pub const NOTIFICATION_VALID_SECONDS: i64 = 24 * 3600;

/// What `@client_ip` says when the address is not known.
pub const UNKNOWN_CLIENT_IP: &str = "unknown";

/// Queues the email of `event` for `user`, then wakes the outbox worker. Does nothing,
/// silently, when the setting `notify_users` is off or the user has no email address.
pub async fn security(
    ctx: &Context,
    user: &User,
    event: SecurityEvent,
    client_ip: Option<&str>,
) -> Result<(), StoreError> {
    let Some(to) = user.email.clone() else {
        return Ok(());
    };
    let settings = ctx.store.settings().await?;
    if !settings.notify_users() {
        return Ok(());
    }
    let now = ctx.now();
    let event_time = SecurityValues::event_time_text(now);
    let values = SecurityValues {
        user_id: user.username.as_str(),
        user_name: user.display_name.as_str(),
        event_time: &event_time,
        client_ip: client_ip.unwrap_or(UNKNOWN_CLIENT_IP),
        site_name: &ctx.config.site_name,
    };
    let rendered = match template(ctx, event).await?.render_security(&values) {
        Ok(rendered) => rendered,
        Err(error) => {
            tracing::warn!(event = event.as_str(), %error, "saved security template unusable; sending the default");
            match EmailTemplate::default_security(event).render_security(&values) {
                Ok(rendered) => rendered,
                Err(error) => {
                    tracing::error!(event = event.as_str(), %error, "default security template unusable");
                    return Ok(());
                }
            }
        }
    };
    let message_id = message_id_for(now.millis(), OsRng.next_u64(), &ctx.config.mail_domain);
    let email = match OutgoingEmail::new(
        message_id.clone(),
        settings.autoreply().clone(),
        to.clone(),
        Some(user.display_name.as_str().to_owned()),
        rendered,
        now.millis(),
    )
    .and_then(|email| email.to_rfc5322())
    {
        Ok(payload) => payload,
        Err(error) => {
            tracing::warn!(event = event.as_str(), %error, "security notification not built");
            return Ok(());
        }
    };
    let message = NewOutboxMessage {
        message_id,
        from: settings.autoreply().as_str().to_owned(),
        to: to.as_str().to_owned(),
        payload: email,
        expires_at: now.plus_seconds(NOTIFICATION_VALID_SECONDS),
    };
    ctx.store.enqueue(&message, now).await?;
    ctx.outbox_wakeup.notify_one();
    Ok(())
}

/// [`security`], with a database error logged rather than returned: for the callers,
/// whose action is done and must not fail because its notification could not be queued.
pub async fn security_logged(
    ctx: &Context,
    user: &User,
    event: SecurityEvent,
    client_ip: Option<&str>,
) {
    if let Err(error) = security(ctx, user, event, client_ip).await {
        tracing::warn!(event = event.as_str(), %error, "security notification not queued");
    }
}

/// The template of `event` in force: the administrators' version, else the default.
pub async fn template(ctx: &Context, event: SecurityEvent) -> Result<EmailTemplate, StoreError> {
    Ok(
        match ctx
            .store
            .template(SECURITY_MODULE, event.template_name())
            .await?
        {
            Some(stored) => EmailTemplate {
                subject: stored.subject,
                text_body: stored.text_body,
                html_body: stored.html_body,
            },
            None => EmailTemplate::default_security(event),
        },
    )
}

/// Replaces the template of `event`; a template with a placeholder security emails do
/// not know (`@user_otp` above all) is refused and nothing is stored. Audited as
/// "Security / <template name>".
pub async fn save_template(
    ctx: &Context,
    event: SecurityEvent,
    template: &EmailTemplate,
    actor: &str,
    client_ip: Option<&str>,
) -> Result<(), SaveTemplateError> {
    template.validate_as(TemplateKind::Security)?;
    let stored = StoredTemplate {
        subject: template.subject.clone(),
        text_body: template.text_body.clone(),
        html_body: template.html_body.clone(),
    };
    ctx.store
        .put_template(SECURITY_MODULE, event.template_name(), &stored, ctx.now())
        .await?;
    ctx.audit(
        AuditEvent::TemplateChanged,
        Some(actor),
        None,
        client_ip,
        format!("{SECURITY_MODULE} / {}", event.template_name()),
    )
    .await?;
    Ok(())
}

/// Queues a plain-text email to the security officer (the setting
/// `security_officer_email`, SPEC 15), then wakes the outbox worker. Does nothing when the
/// setting is empty. Like [`security`], it never carries a code or secret, and only a
/// database error is returned.
pub async fn security_officer(ctx: &Context, subject: &str, text: &str) -> Result<(), StoreError> {
    let settings = ctx.store.settings().await?;
    let Some(to) = settings.security_officer_email().cloned() else {
        return Ok(());
    };
    let now = ctx.now();
    let message_id = message_id_for(now.millis(), OsRng.next_u64(), &ctx.config.mail_domain);
    let rendered = RenderedEmail {
        subject: subject.replace(|c: char| c.is_control(), " "),
        text: text.to_owned(),
        html: None,
    };
    let payload = match OutgoingEmail::new(
        message_id.clone(),
        settings.autoreply().clone(),
        to.clone(),
        None,
        rendered,
        now.millis(),
    )
    .and_then(|email| email.to_rfc5322())
    {
        Ok(payload) => payload,
        Err(error) => {
            tracing::warn!(%error, "security officer notification not built");
            return Ok(());
        }
    };
    let message = NewOutboxMessage {
        message_id,
        from: settings.autoreply().as_str().to_owned(),
        to: to.as_str().to_owned(),
        payload,
        expires_at: now.plus_seconds(NOTIFICATION_VALID_SECONDS),
    };
    ctx.store.enqueue(&message, now).await?;
    ctx.outbox_wakeup.notify_one();
    Ok(())
}
