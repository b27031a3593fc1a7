//! The rules every credential check shares (SPEC section 4), in one place for the sign-in
//! flow ([`super::signin`]), HTTP Basic at forward-auth and the second-factor check
//! ([`super::verify`]):
//!
//! - **Attempts are counted before they are evaluated.** [`reserve`] counts an attempt at
//!   a password or code of an account as a failure *before* the credential is checked,
//!   in one atomic statement that refuses it unchecked when the account is locked. So
//!   however many requests race, on however many instances, at most Lockout Threshold
//!   credentials of one account are checked between two successes or unlocks, and the
//!   hard limit ([`crate::domain::HARD_LIMIT`]) counts across lock expiries.
//! - Each granted [`Attempt`] ends once: [`Attempt::failed`] (already counted: only the
//!   audit, and the lock's entry if this attempt locked the account),
//!   [`Attempt::succeeded`] (the counts start again), or [`Attempt::released`] (a right
//!   password before the code step: neither a failure nor a success).
//! - The password check ([`check_password`]): a dummy hash for unknown users and for
//!   attempts refused unchecked, so that timing tells nothing.
//! - A device code ([`check_device_code`]): checked, then consumed with one conditional
//!   update that also writes its audit entry and resets the counts.
//! - The Failure Delay before the one generic answer ([`failure_delay`]).

use super::Context;
use crate::clock::{Stopwatch, Timestamp};
use crate::domain::AuditEvent;
use crate::domain::{Device, Settings, User, UserId, Username, HARD_LIMIT};
use crate::otp::OtpCode;
use crate::password::Password;
use crate::store::{FailureOutcome, NewAuditEntry, Reservation, StoreError};

/// Who presents a credential, for the audit log: the calling system's user (an API token
/// of the second-factor check) or none (the person signing in), the client address, and
/// the surface (`""` for sign-in, `"OTP check"`, `"validate"`) that prefixes each reason.
#[derive(Clone, Copy, Debug)]
pub struct Origin<'a> {
    pub actor: Option<&'a str>,
    pub ip: &'a str,
    pub surface: &'a str,
}

impl Origin<'_> {
    /// The audit detail of `reason` on this surface.
    pub fn reason(&self, reason: &str) -> String {
        match self.surface {
            "" => reason.to_owned(),
            surface => format!("{surface}: {reason}"),
        }
    }
}

/// The audit detail of an attempt refused unchecked (the account was locked).
pub const REFUSED_UNCHECKED: &str = "refused unchecked: account locked";

/// A granted attempt at a credential of one account, counted as a failure in advance.
/// It ends exactly once: failed, succeeded or released.
#[must_use = "an attempt ends as failed, succeeded or released"]
#[derive(Debug)]
pub struct Attempt {
    user: UserId,
    username: Username,
    counted: FailureOutcome,
    threshold: u32,
}

impl Attempt {
    /// The credential was wrong. The failure was counted when the attempt was reserved;
    /// this audits it, and the lock when this attempt's count locked the account.
    pub async fn failed(
        self,
        ctx: &Context,
        origin: Origin<'_>,
        reason: &str,
    ) -> Result<(), StoreError> {
        ctx.audit(
            AuditEvent::SignInFailed,
            origin.actor,
            Some(self.username.as_str()),
            Some(origin.ip),
            origin.reason(reason),
        )
        .await?;
        let counted = self.counted;
        let lock = if counted.locked_until.is_none() {
            None
        } else if counted.consecutive_failures >= HARD_LIMIT {
            Some(format!(
                "after {HARD_LIMIT} consecutive failures (hard limit): until an administrator unlocks"
            ))
        } else if counted.failed_count == self.threshold {
            Some(format!(
                "after {} consecutive failures",
                counted.failed_count
            ))
        } else {
            None
        };
        if let Some(detail) = lock {
            ctx.audit(
                AuditEvent::Locked,
                origin.actor,
                Some(self.username.as_str()),
                Some(origin.ip),
                detail,
            )
            .await?;
        }
        Ok(())
    }

    /// A refused code: audited as such ("OTP refused"), then [`Attempt::failed`].
    pub async fn refused_code(
        self,
        ctx: &Context,
        origin: Origin<'_>,
        reason: &str,
    ) -> Result<(), StoreError> {
        ctx.audit(
            AuditEvent::OtpRefused,
            origin.actor,
            Some(self.username.as_str()),
            Some(origin.ip),
            origin.reason(reason),
        )
        .await?;
        self.failed(ctx, origin, reason).await
    }

    /// The credential was right and the sign-in (or check) is complete: the counts start
    /// again.
    pub async fn succeeded(self, ctx: &Context) -> Result<(), StoreError> {
        ctx.store.record_success(self.user).await
    }

    /// The credential was right, but this is not yet a success (a right password before
    /// the code step, or an account that may not sign in): the attempt is given back.
    pub async fn released(self, ctx: &Context) -> Result<(), StoreError> {
        ctx.store.release_attempt(self.user, self.threshold).await
    }
}

/// Counts an attempt at a credential of `user` before it is checked. `None`: refused
/// unchecked because the account is locked (audited as such); the caller must then not
/// check the credential and answers with the generic failure.
pub async fn reserve(
    ctx: &Context,
    user: &User,
    settings: &Settings,
    origin: Origin<'_>,
) -> Result<Option<Attempt>, StoreError> {
    let now = ctx.now();
    let reservation = ctx
        .store
        .reserve_attempt(
            user.id,
            now,
            settings.lockout_threshold(),
            settings.lock_until(now),
        )
        .await?;
    attempt(ctx, user, settings, origin, reservation).await
}

/// The attempt of a `reservation` the store made for `user` (the hot path reserves while
/// it reads the user: `Store::reserve_for_check`); refused: audited, `None`.
pub async fn attempt(
    ctx: &Context,
    user: &User,
    settings: &Settings,
    origin: Origin<'_>,
    reservation: Reservation,
) -> Result<Option<Attempt>, StoreError> {
    match reservation {
        Reservation::Granted(counted) => Ok(Some(Attempt {
            user: user.id,
            username: user.username.clone(),
            counted,
            threshold: settings.lockout_threshold(),
        })),
        Reservation::Refused => {
            audit_failure(ctx, Some(user), origin, REFUSED_UNCHECKED).await?;
            Ok(None)
        }
    }
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

/// The password check, in the one order every surface follows: unknown user, then the
/// attempt's reservation (locked: refused unchecked), then the password (wrong: a
/// failure), then the account's state (inactive: audited, the attempt given back).
/// `found` is the user and hash of the username ([`user_and_hash`]). The hash work is
/// done in every case. `Some`: the password is right and the account may sign in; the
/// attempt goes on (released, or succeeded once every step is done). `None`: refused,
/// already audited and counted; answer with the generic failure.
pub async fn check_password(
    ctx: &Context,
    settings: &Settings,
    origin: Origin<'_>,
    found: Option<(User, String)>,
    password: &str,
) -> Result<Option<(User, Attempt)>, StoreError> {
    let Some((user, hash)) = found else {
        verify_password(ctx, None, password).await;
        audit_failure(ctx, None, origin, "unknown user").await?;
        return Ok(None);
    };
    let Some(attempt) = reserve(ctx, &user, settings, origin).await? else {
        // The same hash work as a check, against no account's hash.
        verify_password(ctx, None, password).await;
        return Ok(None);
    };
    if !verify_password(ctx, Some(&hash), password).await {
        attempt.failed(ctx, origin, "wrong password").await?;
        return Ok(None);
    }
    if !user.active {
        attempt.released(ctx).await?;
        audit_failure(ctx, Some(&user), origin, "inactive").await?;
        return Ok(None);
    }
    Ok(Some((user, attempt)))
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

/// A device code that was not accepted: the attempt to end (refused) and the reason for
/// the audit log.
#[derive(Debug)]
pub struct CodeRefused {
    pub attempt: Attempt,
    pub reason: &'static str,
}

/// Checks `code` against a confirmed `device` under a granted `attempt` and consumes it:
/// of several requests with one code, on any number of instances, one at most is
/// accepted. Accepted: the code's use, its audit entry ("OTP accepted") and the reset of
/// the counts are one commit, and the attempt has succeeded. Refused: the attempt comes
/// back with the reason.
pub async fn check_device_code(
    ctx: &Context,
    attempt: Attempt,
    device: &Device,
    code: &OtpCode,
    settings: &Settings,
    now: Timestamp,
    accepted: Accepted<'_>,
) -> Result<Result<(), CodeRefused>, StoreError> {
    let Some(used) = device.check(
        code,
        now,
        settings.hotp_window(),
        settings.totp_skew_steps(),
    ) else {
        return Ok(Err(CodeRefused {
            attempt,
            reason: "wrong device code",
        }));
    };
    let entry = NewAuditEntry {
        event: AuditEvent::OtpAccepted,
        actor: accepted.origin.actor.map(str::to_owned),
        subject: Some(attempt.username.as_str().to_owned()),
        client_ip: Some(accepted.origin.ip.to_owned()),
        detail: accepted.detail.to_owned(),
    };
    if ctx
        .store
        .consume_device_use_audited(device.id, used, &entry, now, attempt.user)
        .await?
    {
        Ok(Ok(()))
    } else {
        Ok(Err(CodeRefused {
            attempt,
            reason: "code already used",
        }))
    }
}

/// The audit entry of an accepted device code ("OTP accepted"), written in the same
/// commit as the code's consumption: an accepted code is never without its entry.
#[derive(Clone, Copy, Debug)]
pub struct Accepted<'a> {
    pub origin: Origin<'a>,
    pub detail: &'a str,
}

/// Records a failed sign-in in the audit log without counting it: the user is unknown,
/// the attempt was refused unchecked, or the account may not sign in.
pub async fn audit_failure(
    ctx: &Context,
    user: Option<&User>,
    origin: Origin<'_>,
    reason: &str,
) -> Result<(), StoreError> {
    ctx.audit(
        AuditEvent::SignInFailed,
        origin.actor,
        user.map(|u| u.username.as_str()),
        Some(origin.ip),
        origin.reason(reason),
    )
    .await
}

/// A sign-in completed after its attempts were released: the counts start again.
/// Skipped when there is nothing to reset (no write on the common path).
pub async fn record_success(ctx: &Context, user: &User) -> Result<(), StoreError> {
    if user.failed_count > 0 || user.consecutive_failures > 0 || user.locked_until.is_some() {
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
