//! The second-factor check for other systems (SPEC sections 6 and 9): a VPN gateway, PAM,
//! a credential provider or an application that checked the password itself asks
//! whether a user's one-time password is right. Shared by the native API
//! (`POST /api/v1/verify`, `/api/v1/verify/challenge`) and privacyIDEA's `/validate/check`
//! protocol; every rule comes from [`super::credentials`] and [`super::emailed`], the same
//! code the sign-in flow runs:
//!
//! - a device code is checked and consumed with one conditional update (never twice);
//! - an emailed code belongs to a challenge: a transaction in the sign-in transactions
//!   table, marked so that the sign-in flow never takes it (all state in the database);
//! - every failure counts toward Lockout Threshold on the same counter as the sign-in
//!   flow, so failures here lock the web sign-in too; a success resets it;
//! - every refusal of a credential is the one generic answer, no sooner than Failure Delay;
//! - every check is audited with the calling system's address (never the code).
//!
//! In `password_otp` mode (setting Validate Pass Mode) `/validate/check` gets the
//! password followed by the code, and the whole sign-in decision of SPEC section 3
//! applies. The calling system's address says nothing about where the user is, so the
//! in-network bypass never applies here.

use rand::rngs::OsRng;

use super::admin::Admin;
use super::credentials::{self, EmailedFor, FailureReason, Gate, Origin, Surface};
use super::emailed::{self, SendError};
use super::Context;
use crate::clock::{Stopwatch, Timestamp};
use crate::crypto::Token;
use crate::domain::SignInTransaction;
use crate::domain::{AuditEvent, TransactionKind};
use crate::domain::{
    ClientAddress, Device, Permission, Settings, User, Username, ValidatePassMode,
};
use crate::metrics::OtpCheckMethod;
use crate::policy::{decide, SignInFacts, Step};
use crate::store::{Reservation, StoreError};

/// Device OTPs are 6 digits (SPEC section 2): in `password_otp` mode, the last 6
/// characters of `pass` are the code.
pub const DEVICE_CODE_DIGITS: usize = 6;

/// The system that asks, for the audit log.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The resolved client address of the calling system (unknown when its proxy's
    /// header could not be read: audited as `unknown`).
    pub ip: ClientAddress,
    /// The user of the API token it presented; `None` for a listed client network.
    pub actor: Option<String>,
}

impl Caller {
    /// This caller on `surface`, for the audit log; `ip` is [`Caller::ip`] as text.
    fn origin<'a>(&'a self, ip: &'a str, surface: Surface) -> Origin<'a> {
        Origin {
            actor: self.actor.as_deref(),
            ip,
            surface,
        }
    }
}

/// Why a caller may not ask.
#[derive(Debug, thiserror::Error)]
pub enum CallerError {
    #[error("send an API token that holds the permission Verify OTP")]
    Unauthenticated,
    #[error("this API token's role lacks the permission Verify OTP")]
    Forbidden,
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Why a check or challenge was refused (not an internal failure).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown user, locked or inactive account, wrong, expired or used code, unknown
    /// challenge, wrong password: one answer for all.
    InvalidCredentials,
    /// An emailed code was requested within OTP Request Delay Seconds.
    RequestDelay { retry_after: i64 },
    /// An emailed code is needed but the user has no email address.
    EmailMissing,
    /// An emailed challenge for a user with a confirmed device: the device's code is the
    /// second factor (a device replaces the emailed OTP for good).
    DeviceEnrolled,
    /// `password_otp`: the role forces 2-step verification and the user has not set it
    /// up; that happens at the sign-in page.
    EnrollmentRequired,
    /// `password_otp`: the password must be changed at the sign-in page first.
    PasswordChangeRequired,
    /// `password_otp`: the directory's password is expired or must be changed there first
    /// (SPEC 12); the message says so.
    DirectoryPassword(&'static str),
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("refused: {0:?}")]
    Refused(Refusal),
    /// The directory could not check the password (SPEC 12): 503, not the user's failure.
    #[error("the directory is unavailable")]
    DirectoryUnavailable,
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<StoreError> for VerifyError {
    fn from(error: StoreError) -> Self {
        Self::Internal(Box::new(error))
    }
}

/// An emailed code is on its way; answer with it and `transaction`.
#[derive(Clone, Debug)]
pub struct Challenge {
    pub transaction: Token,
    /// Where it went, masked: `j***@example.org`.
    pub masked_to: String,
}

/// The answer of `/validate/check`.
#[derive(Clone, Debug)]
pub enum Verdict {
    Accept,
    Reject(Refusal),
    Challenge(Challenge),
}

/// The second-factor check.
#[derive(Clone)]
pub struct SecondFactor {
    ctx: Context,
}

impl SecondFactor {
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }

    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// Who may ask: an API token whose role holds Verify OTP; for `/validate/*` also
    /// any system in a `--validate-client` network (`from_networks`).
    pub async fn caller(
        &self,
        token: Option<&str>,
        ip: ClientAddress,
        from_networks: bool,
    ) -> Result<Caller, CallerError> {
        // An unknown address is in no network: such a caller needs its token.
        if from_networks && ip.is_in(&self.ctx.config.validate_clients) {
            return Ok(Caller { ip, actor: None });
        }
        let token = token.ok_or(CallerError::Unauthenticated)?;
        let actor = Admin::new(self.ctx.clone())
            .actor_for_api_token(token)
            .await
            .map_err(|error| CallerError::Internal(Box::new(error)))?
            .ok_or(CallerError::Unauthenticated)?;
        if !actor.has(Permission::VerifyOtp) {
            return Err(CallerError::Forbidden);
        }
        Ok(Caller {
            ip,
            actor: Some(actor.name().to_owned()),
        })
    }

    /// Checks the OTP `code` of `username`: the code of the user's confirmed device, or,
    /// with `transaction`, the emailed code of that challenge. A user with neither is
    /// refused (there is nothing a code could match).
    pub async fn check(
        &self,
        caller: &Caller,
        username: &str,
        code: &str,
        transaction: Option<&str>,
    ) -> Result<(), VerifyError> {
        let stopwatch = Stopwatch::start();
        // The settings, the user with their device and the attempt's reservation in one
        // request (the hot path).
        let (settings, found) = match Username::parse(username) {
            Ok(name) => {
                self.ctx
                    .store
                    .reserve_for_check(&name, self.ctx.now())
                    .await?
            }
            Err(_) => (self.ctx.store.settings().await?, None),
        };
        self.check_found(&stopwatch, &settings, caller, found, code, transaction)
            .await
    }

    /// Emails a code to `username` for a challenge (request delay and validity as at
    /// sign-in); then [`SecondFactor::check`] with the transaction.
    pub async fn challenge(
        &self,
        caller: &Caller,
        username: &str,
    ) -> Result<Challenge, VerifyError> {
        let stopwatch = Stopwatch::start();
        let settings = self.ctx.store.settings().await?;
        self.challenge_with(&stopwatch, &settings, caller, username)
            .await
    }

    /// privacyIDEA's `/validate/check`: `pass` is what Validate Pass Mode says; with a
    /// `transaction`, it is the emailed code of that challenge. In `otp` mode an empty
    /// `pass` asks for an emailed challenge (as a privacyIDEA client triggers one).
    pub async fn validate(
        &self,
        caller: &Caller,
        username: &str,
        pass: &str,
        transaction: Option<&str>,
    ) -> Result<Verdict, VerifyError> {
        let stopwatch = Stopwatch::start();
        let settings = self.ctx.store.settings().await?;
        let outcome = match (transaction, settings.validate_pass_mode()) {
            (Some(transaction), _) => self
                .check_with(
                    &stopwatch,
                    &settings,
                    caller,
                    username,
                    pass,
                    Some(transaction),
                )
                .await
                .map(|()| Verdict::Accept),
            (None, ValidatePassMode::Otp) if pass.is_empty() => self
                .challenge_with(&stopwatch, &settings, caller, username)
                .await
                .map(Verdict::Challenge),
            (None, ValidatePassMode::Otp) => self
                .check_with(&stopwatch, &settings, caller, username, pass, None)
                .await
                .map(|()| Verdict::Accept),
            (None, ValidatePassMode::PasswordOtp) => {
                self.password_otp(&stopwatch, &settings, caller, username, pass)
                    .await
            }
        };
        match outcome {
            Err(VerifyError::Refused(refusal)) => Ok(Verdict::Reject(refusal)),
            other => other,
        }
    }

    async fn check_with(
        &self,
        stopwatch: &Stopwatch,
        settings: &Settings,
        caller: &Caller,
        username: &str,
        code: &str,
        transaction: Option<&str>,
    ) -> Result<(), VerifyError> {
        let found = match Username::parse(username) {
            Ok(name) => {
                self.ctx
                    .store
                    .reserve_for_check(&name, self.ctx.now())
                    .await?
                    .1
            }
            Err(_) => None,
        };
        self.check_found(stopwatch, settings, caller, found, code, transaction)
            .await
    }

    /// [`SecondFactor::check`] of the user `found` (with their confirmed device and the
    /// reservation of this attempt, made as they were read), or of an unknown user.
    async fn check_found(
        &self,
        stopwatch: &Stopwatch,
        settings: &Settings,
        caller: &Caller,
        found: Option<(User, Option<Device>, Reservation)>,
        code: &str,
        transaction: Option<&str>,
    ) -> Result<(), VerifyError> {
        let ip = caller.ip.to_string();
        let gate = Gate::new(&self.ctx, settings, caller.origin(&ip, Surface::OtpCheck));
        let Some((user, device, reservation)) = found else {
            gate.refuse(None, FailureReason::UnknownUser).await?;
            return Err(self.fail(stopwatch, settings).await);
        };
        let now = self.ctx.now();
        let Ok(attempt) = gate.code_attempt(&user, reservation).await? else {
            return Err(self.fail(stopwatch, settings).await);
        };
        let Ok((attempt, code)) = gate.code(attempt, code).await? else {
            return Err(self.fail(stopwatch, settings).await);
        };
        // The method of a code that was checked against something (for `/metrics`).
        let (checked, outcome) = match (transaction, device) {
            (None, Some(device)) => (
                Some(OtpCheckMethod::from(device.method())),
                gate.device_code(attempt, &device, &code, now).await?,
            ),
            (None, None) => (
                None,
                Err(gate
                    .refuse_code(attempt, FailureReason::NoDeviceNoChallenge)
                    .await?),
            ),
            (Some(transaction), _) => {
                let record = self.challenge_of(&user, transaction, now).await?;
                let of = EmailedFor::Challenge {
                    transaction: record.map(|record| record.id),
                };
                (
                    Some(OtpCheckMethod::Email),
                    gate.emailed_code(attempt, &user, of, &code, now).await?,
                )
            }
        };
        if let Some(method) = checked {
            self.ctx.metrics.otp_check(method, outcome.is_ok());
        }
        match outcome {
            Ok(()) => Ok(()),
            Err(_) => Err(self.fail(stopwatch, settings).await),
        }
    }

    /// The live challenge transaction of `user` with this token, if any: a sign-in
    /// transaction or another user's challenge is not one.
    async fn challenge_of(
        &self,
        user: &User,
        transaction: &str,
        now: Timestamp,
    ) -> Result<Option<SignInTransaction>, StoreError> {
        let Ok(token) = Token::parse(transaction) else {
            return Ok(None);
        };
        Ok(self
            .ctx
            .store
            .signin_transaction(&token.hash(), now)
            .await?
            .filter(|record| {
                record.kind == TransactionKind::VerifyChallenge && record.user_id == user.id
            }))
    }

    async fn challenge_with(
        &self,
        stopwatch: &Stopwatch,
        settings: &Settings,
        caller: &Caller,
        username: &str,
    ) -> Result<Challenge, VerifyError> {
        let ip = caller.ip.to_string();
        let user = match Username::parse(username) {
            Ok(name) => self.ctx.store.user_by_username(&name).await?,
            Err(_) => None,
        };
        let gate = Gate::new(
            &self.ctx,
            settings,
            caller.origin(&ip, Surface::OtpChallenge),
        );
        let Some(user) = user else {
            gate.refuse(None, FailureReason::UnknownUser).await?;
            return Err(self.fail(stopwatch, settings).await);
        };
        // No credential is checked here, so nothing is counted; a locked account gets no
        // new codes.
        if gate.usable(&user).await?.is_err() {
            return Err(self.fail(stopwatch, settings).await);
        }
        if self.ctx.store.confirmed_device(user.id).await?.is_some() {
            gate.refuse(Some(&user), FailureReason::DeviceEnrolled)
                .await?;
            return Err(VerifyError::Refused(Refusal::DeviceEnrolled));
        }
        self.send_challenge(caller, &user, settings).await
    }

    /// Creates a challenge transaction for `user` and emails its code.
    async fn send_challenge(
        &self,
        caller: &Caller,
        user: &User,
        settings: &Settings,
    ) -> Result<Challenge, VerifyError> {
        let ip = caller.ip.to_string();
        if user.email.is_none() {
            credentials::audit_failure(
                &self.ctx,
                Some(user),
                caller.origin(&ip, Surface::Unprefixed),
                FailureReason::EmailMissing,
            )
            .await?;
            return Err(VerifyError::Refused(Refusal::EmailMissing));
        }
        let now = self.ctx.now();
        let token = Token::generate(&mut OsRng);
        let expires_at = now.plus_seconds(i64::from(settings.otp_csrf_valid_minutes()) * 60);
        let record = self
            .ctx
            .store
            .create_signin_transaction(
                &token.hash(),
                user.id,
                &TransactionKind::VerifyChallenge,
                &ip,
                now,
                expires_at,
            )
            .await?;
        match emailed::send(&self.ctx, user, Some(record.id), settings, Some(&ip)).await {
            Ok(Ok(sent)) => Ok(Challenge {
                transaction: token,
                masked_to: sent.masked_to,
            }),
            Ok(Err(delay)) => {
                // No code, so no challenge: nothing could answer it.
                self.ctx.store.delete_signin_transaction(record.id).await?;
                Err(VerifyError::Refused(Refusal::RequestDelay {
                    retry_after: delay.retry_after,
                }))
            }
            Err(SendError::EmailMissing) => Err(VerifyError::Refused(Refusal::EmailMissing)),
            Err(other) => Err(VerifyError::Internal(Box::new(other))),
        }
    }

    /// `password_otp` mode: the password, then what SPEC section 3 asks of this user.
    async fn password_otp(
        &self,
        stopwatch: &Stopwatch,
        settings: &Settings,
        caller: &Caller,
        username: &str,
        pass: &str,
    ) -> Result<Verdict, VerifyError> {
        let ip = caller.ip.to_string();
        let origin = caller.origin(&ip, Surface::Validate);
        let gate = Gate::new(&self.ctx, settings, origin);
        let found = gate.find(username).await?;
        // Which part of `pass` is the code follows from the user's policy, which does not
        // depend on the password: decided first, used only once the password is right.
        let (decision, device) = match found.user() {
            Some(user) => {
                let role = self
                    .ctx
                    .store
                    .role_by_id(user.role_id)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("user without role".into()))?;
                let device = self.ctx.store.confirmed_device(user.id).await?;
                let facts = SignInFacts {
                    role: role.security,
                    device: device.as_ref().map(|d| d.prompt_mode),
                    in_network: false,
                };
                (Some(decide(facts)), device)
            }
            None => (None, None),
        };
        let wants_device_code = decision.is_some_and(|d| d.steps.first() == Some(&Step::DeviceOtp));
        let (password, code) = if wants_device_code {
            split_code(pass, DEVICE_CODE_DIGITS)
        } else {
            (pass, "")
        };
        let (user, attempt) = match gate.password(found, password).await? {
            Ok(passed) => passed,
            Err(refused) if refused.directory_unavailable() => {
                return Err(VerifyError::DirectoryUnavailable)
            }
            Err(refused) => {
                let error = self.fail(stopwatch, settings).await;
                return match refused.own_message() {
                    Some(message) => Ok(Verdict::Reject(Refusal::DirectoryPassword(message))),
                    None => Err(error),
                };
            }
        };
        let Some(decision) = decision else {
            // (A known user always has a decision.)
            attempt.released(&self.ctx).await?;
            return Err(self.fail(stopwatch, settings).await);
        };
        if user.must_change_password {
            attempt.released(&self.ctx).await?;
            gate.refuse(Some(&user), FailureReason::PasswordChangeRequired)
                .await?;
            return Ok(Verdict::Reject(Refusal::PasswordChangeRequired));
        }
        let row = format!("validate: row={}", decision.row);
        match decision.steps {
            [] | [Step::Enroll { required: false }, ..] => {
                attempt.succeeded(&self.ctx).await?;
                self.signed_in(&user, origin, &row).await?;
                Ok(Verdict::Accept)
            }
            [Step::Enroll { required: true }, ..] => {
                attempt.released(&self.ctx).await?;
                self.enrollment_required(&user, origin).await
            }
            [Step::EmailOtp, rest @ ..] => {
                attempt.released(&self.ctx).await?;
                if rest.contains(&Step::Enroll { required: true }) {
                    // The code would be useless: the user must set up a device first.
                    return self.enrollment_required(&user, origin).await;
                }
                Ok(Verdict::Challenge(
                    self.send_challenge(caller, &user, settings).await?,
                ))
            }
            [Step::DeviceOtp, ..] => {
                // One attempt covers the password and the code of one request.
                let now = self.ctx.now();
                let Ok((attempt, code)) = gate.code(attempt, code).await? else {
                    return Err(self.fail(stopwatch, settings).await);
                };
                let outcome = match &device {
                    Some(device) => {
                        let outcome = gate.device_code(attempt, device, &code, now).await?;
                        self.ctx
                            .metrics
                            .otp_check(device.method().into(), outcome.is_ok());
                        outcome
                    }
                    None => Err(gate
                        .refuse_code(attempt, FailureReason::DeviceRemoved)
                        .await?),
                };
                if outcome.is_err() {
                    return Err(self.fail(stopwatch, settings).await);
                }
                self.signed_in(&user, origin, &row).await?;
                Ok(Verdict::Accept)
            }
        }
    }

    /// Every step done (`password_otp`; the counts were reset by the attempt): audited as
    /// a sign-in.
    async fn signed_in(
        &self,
        user: &User,
        origin: Origin<'_>,
        detail: &str,
    ) -> Result<(), StoreError> {
        self.ctx
            .audit(
                AuditEvent::SignInSucceeded,
                origin.actor,
                Some(user.username.as_str()),
                Some(origin.ip),
                detail,
            )
            .await
    }

    async fn enrollment_required(
        &self,
        user: &User,
        origin: Origin<'_>,
    ) -> Result<Verdict, VerifyError> {
        credentials::audit_failure(
            &self.ctx,
            Some(user),
            origin,
            FailureReason::EnrollmentRequired,
        )
        .await?;
        Ok(Verdict::Reject(Refusal::EnrollmentRequired))
    }

    /// The generic refusal, no sooner than Failure Delay after the request began.
    async fn fail(&self, stopwatch: &Stopwatch, settings: &Settings) -> VerifyError {
        credentials::failure_delay(stopwatch, settings).await;
        VerifyError::Refused(Refusal::InvalidCredentials)
    }

    /// The sign-in page, for messages that send a user there.
    pub fn sign_in_page(&self) -> String {
        match &self.ctx.config.public_url {
            Some(url) => format!("{}/signin", url.trim_end_matches('/')),
            None => "/signin".to_owned(),
        }
    }
}

/// Splits `pass` into the password and its last `digits` characters (the code). A `pass`
/// no longer than a code has no password: the password part is empty, which no password
/// matches.
pub fn split_code(pass: &str, digits: usize) -> (&str, &str) {
    match digits
        .checked_sub(1)
        .and_then(|last| pass.char_indices().rev().nth(last))
    {
        Some((at, _)) => pass.split_at(at),
        None => ("", pass),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_is_the_last_six_characters() {
        assert_eq!(
            split_code("correct horse123456", 6),
            ("correct horse", "123456")
        );
        assert_eq!(split_code("pässwörd123456", 6), ("pässwörd", "123456"));
        assert_eq!(split_code("1234567", 6), ("1", "234567"));
        assert_eq!(split_code("123456", 6), ("", "123456"));
        assert_eq!(split_code("12345", 6), ("", "12345"));
        assert_eq!(split_code("", 6), ("", ""));
        // Multi-byte characters at the boundary are never split.
        assert_eq!(split_code("pw€12345", 6), ("pw", "€12345"));
    }
}
