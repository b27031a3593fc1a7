//! The outbox worker (SPEC section 8): delivers the queued emails (OTP codes and security
//! notifications) through a [`Transport`] of [`crate::mail::delivery`], with retries until
//! the message expires (the code's validity; a day for a notification); then the message
//! is dead and audited. One worker per instance; each message is claimed by
//! one worker at a time (a lease in the database), so several instances share one outbox.

use std::time::Duration;

use super::Context;
use crate::clock::Timestamp;
use crate::domain::AuditEvent;
use crate::mail::delivery::Transport;
use crate::metrics::EmailOutcome;
use crate::store::{ClaimedMessage, StoreError};

/// Seconds to wait before attempt `attempts + 1`: 2, 4, 8, ... up to 5 minutes.
pub fn backoff_seconds(attempts: u32) -> i64 {
    2i64.saturating_pow(attempts.clamp(1, 20)).min(300)
}

/// How long a claimed message stays reserved for the worker that claimed it.
const LEASE_SECONDS: i64 = 120;
/// Messages claimed per pass.
const BATCH: u32 = 16;

/// Delivers the outbox until `shutdown` resolves.
pub struct Worker {
    ctx: Context,
    transport: Transport,
}

impl Worker {
    pub fn new(ctx: Context, transport: Transport) -> Self {
        Self { ctx, transport }
    }

    /// Runs passes: right after a message is queued on this instance, and every
    /// `poll` otherwise (messages queued by other instances, retries that came due).
    pub async fn run(self, poll: Duration, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            match self.pass().await {
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "outbox pass failed"),
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = self.ctx.outbox_wakeup.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// One pass: claims due messages and delivers each. Returns how many were handled.
    pub async fn pass(&self) -> Result<usize, StoreError> {
        let now = self.ctx.now();
        let claimed = self
            .ctx
            .store
            .claim_outbox(now, LEASE_SECONDS, BATCH)
            .await?;
        for message in &claimed {
            self.handle(message, now).await?;
        }
        Ok(claimed.len())
    }

    async fn handle(&self, message: &ClaimedMessage, now: Timestamp) -> Result<(), StoreError> {
        let to = masked(&message.to);
        if now >= message.expires_at {
            let reason = "the message expired before it could be delivered";
            self.ctx.store.outbox_dead(message.id, reason).await?;
            self.ctx.metrics.email(EmailOutcome::Dead);
            tracing::warn!(message_id = %message.message_id, %to, attempts = message.attempts, "email dead: {reason}");
            self.ctx
                .audit(
                    AuditEvent::EmailDead,
                    None,
                    None,
                    None,
                    format!("message_id={} to={to}", message.message_id),
                )
                .await?;
            return Ok(());
        }
        match self.transport.deliver(message).await {
            Ok(()) => {
                self.ctx
                    .store
                    .outbox_sent(message.id, self.ctx.now())
                    .await?;
                self.ctx.metrics.email(EmailOutcome::Sent);
                let via = match &self.transport {
                    Transport::Folder(folder) => format!("written to {}", folder.display()),
                    Transport::Smtp(_) => "sent over SMTP".to_owned(),
                };
                tracing::info!(message_id = %message.message_id, %to, "email {via}");
            }
            Err(error) => {
                let next = now.plus_seconds(backoff_seconds(message.attempts));
                // A retry scheduled after the expiry still runs once, to mark it dead.
                let next = next.min(message.expires_at);
                self.ctx
                    .store
                    .outbox_retry(message.id, next, &error)
                    .await?;
                self.ctx.metrics.email(EmailOutcome::Retried);
                tracing::warn!(message_id = %message.message_id, %to, attempts = message.attempts, %error, "email not delivered; will retry");
            }
        }
        Ok(())
    }
}

fn masked(address: &str) -> String {
    crate::domain::Email::parse(address)
        .map(|email| email.masked())
        .unwrap_or_else(|_| "***".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(backoff_seconds(1), 2);
        assert_eq!(backoff_seconds(2), 4);
        assert_eq!(backoff_seconds(5), 32);
        assert_eq!(backoff_seconds(9), 300);
        assert_eq!(backoff_seconds(u32::MAX), 300);
        assert_eq!(backoff_seconds(0), 2);
    }
}
