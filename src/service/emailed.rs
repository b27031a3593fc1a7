//! Emailed OTPs (SPEC section 4): a code of OTP Length digits, valid OTP Valid Seconds,
//! single use, kept only as a keyed hash, mailed through the outbox in the same
//! transaction, at most one request per OTP Request Delay Seconds.

use rand::rngs::OsRng;
use rand::RngCore;

use super::Context;
use crate::clock::Timestamp;
use crate::crypto::ct_eq_hash;
use crate::domain::AuditEvent;
use crate::domain::{Email, Settings, TransactionId, User};
use crate::mail::message::{message_id_for, MessageError, OutgoingEmail};
use crate::mail::template::{
    EmailTemplate, TemplateError, TemplateValues, OTP_MODULE, OTP_TEMPLATE_NAME,
};
use crate::otp::{generate_emailed_code, OtpCode};
use crate::store::{NewEmailedOtp, NewOutboxMessage, OutboxState, RequestDelay, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the user has no email address")]
    EmailMissing,
    #[error("the OTP email template is invalid: {0}")]
    Template(#[from] TemplateError),
    #[error("the OTP email could not be built: {0}")]
    Message(#[from] MessageError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A code was queued for delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// The address as shown to the person signing in: `j***@example.org`.
    pub masked_to: String,
}

/// The OTP email template in force: the administrators' version, else the default.
pub async fn otp_template(ctx: &Context) -> Result<EmailTemplate, StoreError> {
    Ok(
        match ctx.store.template(OTP_MODULE, OTP_TEMPLATE_NAME).await? {
            Some(stored) => EmailTemplate {
                subject: stored.subject,
                text_body: stored.text_body,
                html_body: stored.html_body,
            },
            None => EmailTemplate::default_otp(),
        },
    )
}

/// The hash context of a code: the transaction (or user) it belongs to, so that a hash
/// stored for one cannot be replayed for another.
fn context(user: &User, transaction_id: Option<TransactionId>) -> Vec<u8> {
    format!(
        "user:{};transaction:{}",
        user.id.0,
        transaction_id.map_or(0, |id| id.0)
    )
    .into_bytes()
}

/// Generates a code for `user`, bound to `transaction_id`, and queues its email; refused
/// within the request delay.
pub async fn send(
    ctx: &Context,
    user: &User,
    transaction_id: Option<TransactionId>,
    settings: &Settings,
    client_ip: Option<&str>,
) -> Result<Result<Sent, RequestDelay>, SendError> {
    let to = user.email.clone().ok_or(SendError::EmailMissing)?;
    let now = ctx.now();
    let code = generate_emailed_code(settings.otp_length(), &mut OsRng);
    let rendered = otp_template(ctx).await?.render(&TemplateValues {
        user_id: user.username.as_str(),
        user_otp: code.as_str(),
        user_name: user.display_name.as_str(),
        otp_valid_minutes: TemplateValues::minutes_from_seconds(settings.otp_valid_seconds()),
        site_name: &ctx.config.site_name,
    })?;
    let message_id = message_id_for(now.millis(), OsRng.next_u64(), &ctx.config.mail_domain);
    let email = OutgoingEmail::new(
        message_id.clone(),
        settings.autoreply().clone(),
        to.clone(),
        Some(user.display_name.as_str().to_owned()),
        rendered,
        now.millis(),
    )?;
    let message = NewOutboxMessage {
        message_id,
        from: settings.autoreply().as_str().to_owned(),
        to: to.as_str().to_owned(),
        payload: email.to_rfc5322()?,
        expires_at: now.plus_seconds(i64::from(settings.otp_valid_seconds())),
    };
    let hash = ctx
        .store
        .key()
        .hash_emailed_code(&context(user, transaction_id), code.as_str());
    let created = ctx
        .store
        .create_emailed_otp(
            &NewEmailedOtp {
                user_id: user.id,
                transaction_id,
                code_hash: &hash,
                request_delay_seconds: settings.otp_request_delay_seconds(),
                valid_seconds: settings.otp_valid_seconds(),
                message: &message,
            },
            now,
        )
        .await?;
    if let Err(delay) = created {
        return Ok(Err(delay));
    }
    ctx.outbox_wakeup.notify_one();
    ctx.audit(
        AuditEvent::OtpSent,
        None,
        Some(user.username.as_str()),
        client_ip,
        format!("to={}", mask(&to)),
    )
    .await?;
    Ok(Ok(Sent {
        masked_to: mask(&to),
    }))
}

fn mask(email: &Email) -> String {
    email.masked()
}

/// The outcome of checking an emailed code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    Accepted,
    /// No live code, a wrong code, or one that was used meanwhile.
    Wrong,
    /// The right code, after OTP Valid Seconds: counts as a failure all the same.
    Expired,
}

/// Checks `code` against the current code of `transaction_id` and consumes it once.
pub async fn check(
    ctx: &Context,
    user: &User,
    transaction_id: Option<TransactionId>,
    code: &OtpCode,
    now: Timestamp,
) -> Result<Check, StoreError> {
    let Some(current) = current(ctx, transaction_id).await? else {
        return Ok(Check::Wrong);
    };
    let hash = ctx
        .store
        .key()
        .hash_emailed_code(&context(user, transaction_id), code.as_str());
    if !ct_eq_hash(&hash, &current.code_hash) {
        return Ok(Check::Wrong);
    }
    if now >= current.expires_at {
        return Ok(Check::Expired);
    }
    Ok(if ctx.store.consume_emailed_otp(current.id, now).await? {
        Check::Accepted
    } else {
        Check::Wrong
    })
}

async fn current(
    ctx: &Context,
    transaction_id: Option<TransactionId>,
) -> Result<Option<crate::domain::EmailedOtp>, StoreError> {
    match transaction_id {
        Some(id) => ctx.store.current_emailed_otp(id).await,
        None => Ok(None),
    }
}

/// Whether the current code of a transaction is still being delivered after a failed
/// attempt ("we are still sending your code").
pub async fn still_sending(
    ctx: &Context,
    transaction_id: TransactionId,
) -> Result<bool, StoreError> {
    let Some(otp) = ctx.store.current_emailed_otp(transaction_id).await? else {
        return Ok(false);
    };
    Ok(matches!(
        ctx.store.outbox_state_for_otp(otp.id).await?,
        Some(OutboxState::Pending { failed: true, .. })
    ))
}

#[derive(Debug, thiserror::Error)]
pub enum SaveTemplateError {
    #[error(transparent)]
    Invalid(#[from] TemplateError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Replaces the "OTP Notification Email" template; a template with an unknown
/// placeholder (or without the code) is refused and nothing is stored.
pub async fn save_otp_template(
    ctx: &Context,
    template: &EmailTemplate,
    actor: &str,
    client_ip: Option<&str>,
) -> Result<(), SaveTemplateError> {
    template.validate()?;
    let stored = crate::store::StoredTemplate {
        subject: template.subject.clone(),
        text_body: template.text_body.clone(),
        html_body: template.html_body.clone(),
    };
    ctx.store
        .put_template(OTP_MODULE, OTP_TEMPLATE_NAME, &stored, ctx.now())
        .await?;
    ctx.audit(
        AuditEvent::TemplateChanged,
        Some(actor),
        None,
        client_ip,
        format!("{OTP_MODULE} / {OTP_TEMPLATE_NAME}"),
    )
    .await?;
    Ok(())
}
