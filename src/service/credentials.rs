//! The rules every credential check shares (SPEC section 4), in one place for the sign-in
//! flow ([`super::signin`]) and the second-factor check ([`super::verify`]): the password
//! check (a dummy hash for unknown users), a device code (checked, then consumed with one
//! conditional update), the failure count toward Lockout Threshold, the reset on success,
//! the audit of a failure, and the Failure Delay before the one generic answer.

use super::Context;
use crate::clock::{Stopwatch, Timestamp};
use crate::domain::{Device, Settings, User, Username};
use crate::otp::OtpCode;
use crate::password::Password;
use crate::store::{AuditEvent, NewAuditEntry, StoreError};

/// The user a username names (if any), and whether `password` is theirs.
pub struct PasswordCheck {
    pub user: Option<User>,
    pub password_ok: bool,
}

/// Loads the user of `username` and verifies `password` against their hash (see
/// [`verify_password`]).
pub async fn check_password(
    ctx: &Context,
    username: &str,
    password: &str,
) -> Result<PasswordCheck, StoreError> {
    let found = user_and_hash(ctx, username).await?;
    let password_ok =
        verify_password(ctx, found.as_ref().map(|(_, hash)| hash.as_str()), password).await;
    Ok(PasswordCheck {
        user: found.map(|(user, _)| user),
        password_ok,
    })
}

/// The user a username names, with their password hash; `None` for a malformed name too.
pub async fn user_and_hash(
    ctx: &Context,
    username: &str,
) -> Result<Option<(User, String)>, StoreError> {
    match Username::parse(username) {
        Ok(name) => ctx.store.user_with_password_hash(&name).await,
        Err(_) => Ok(None),
    }
}

/// Whether `password` matches `hash`. The hash work is done in every case (no user: a
/// dummy hash; a malformed password: the same work, then `false`), so that timing does
/// not tell which case this is.
pub async fn verify_password(ctx: &Context, hash: Option<&str>, password: &str) -> bool {
    match Password::for_sign_in(password.to_owned()) {
        Ok(password) => ctx.hasher.verify(&password, hash).await,
        Err(_) => {
            if let Ok(dummy) = Password::for_sign_in("x".to_owned()) {
                ctx.hasher.verify(&dummy, None).await;
            }
            false
        }
    }
}

/// Checks `code` against a confirmed `device` and consumes it: of several requests with
/// one code, on any number of instances, one at most is accepted. `Err` is the reason
/// for the audit log.
pub async fn check_device_code(
    ctx: &Context,
    device: &Device,
    code: &OtpCode,
    settings: &Settings,
    now: Timestamp,
    accepted: Accepted<'_>,
) -> Result<Result<(), &'static str>, StoreError> {
    let entry = NewAuditEntry {
        event: AuditEvent::OtpAccepted,
        actor: accepted.actor.map(str::to_owned),
        subject: Some(accepted.user.username.as_str().to_owned()),
        client_ip: Some(accepted.ip.to_owned()),
        detail: accepted.detail.to_owned(),
    };
    Ok(
        match device.check(
            code,
            now,
            settings.hotp_window(),
            settings.totp_skew_steps(),
        ) {
            Some(used)
                if ctx
                    .store
                    .consume_device_use_audited(device.id, used, &entry, now)
                    .await? =>
            {
                Ok(())
            }
            Some(_) => Err("code already used"),
            None => Err("wrong device code"),
        },
    )
}

/// The audit entry of an accepted device code ("OTP accepted"), written in the same
/// commit as the code's consumption: an accepted code is never without its entry.
#[derive(Clone, Copy, Debug)]
pub struct Accepted<'a> {
    pub user: &'a User,
    pub actor: Option<&'a str>,
    pub ip: &'a str,
    pub detail: &'a str,
}

/// Records a failed sign-in in the audit log (without counting it: the user is unknown,
/// locked or inactive).
pub async fn audit_failure(
    ctx: &Context,
    user: Option<&User>,
    actor: Option<&str>,
    ip: &str,
    reason: &str,
) -> Result<(), StoreError> {
    ctx.audit(
        AuditEvent::SignInFailed,
        actor,
        user.map(|u| u.username.as_str()),
        Some(ip),
        reason,
    )
    .await
}

/// Counts a failed credential (atomically, so that concurrent failures on several
/// instances all count), audits it, and audits the lock when this failure reached
/// Lockout Threshold.
pub async fn count_failure(
    ctx: &Context,
    user: &User,
    settings: &Settings,
    actor: Option<&str>,
    ip: &str,
    reason: &str,
) -> Result<(), StoreError> {
    let now = ctx.now();
    let lock_until = match settings.lockout_minutes() {
        0 => Timestamp::NEVER,
        minutes => now.plus_seconds(i64::from(minutes) * 60),
    };
    let outcome = ctx
        .store
        .record_failure(user.id, now, settings.lockout_threshold(), lock_until)
        .await?;
    audit_failure(ctx, Some(user), actor, ip, reason).await?;
    if outcome.locked_until.is_some() && outcome.failed_count == settings.lockout_threshold() {
        ctx.audit(
            AuditEvent::Locked,
            actor,
            Some(user.username.as_str()),
            Some(ip),
            format!("after {} consecutive failures", outcome.failed_count),
        )
        .await?;
    }
    Ok(())
}

/// A refused code: audited as such, and counted as a failed credential.
pub async fn refuse_code(
    ctx: &Context,
    user: &User,
    settings: &Settings,
    actor: Option<&str>,
    ip: &str,
    reason: &str,
) -> Result<(), StoreError> {
    ctx.audit(
        AuditEvent::OtpRefused,
        actor,
        Some(user.username.as_str()),
        Some(ip),
        reason,
    )
    .await?;
    count_failure(ctx, user, settings, actor, ip, reason).await
}

/// A successful credential check: the consecutive-failure count starts again. Skipped
/// when there is nothing to reset (no write on the common path).
pub async fn record_success(ctx: &Context, user: &User) -> Result<(), StoreError> {
    if user.failed_count > 0 || user.locked_until.is_some() {
        ctx.store.record_success(user.id).await?;
    }
    Ok(())
}

/// Waits until Failure Delay has passed since `stopwatch` started: a failed credential
/// check answers no sooner, whatever failed.
pub async fn failure_delay(stopwatch: &Stopwatch, settings: &Settings) {
    let delay = std::time::Duration::from_millis(u64::from(settings.failure_delay_ms()));
    if let Some(rest) = delay.checked_sub(stopwatch.elapsed()) {
        tokio::time::sleep(rest).await;
    }
}
