//! The rules every credential check shares (SPEC section 4), in one place for the sign-in
//! flow ([`super::signin`]), HTTP Basic at forward-auth and the second-factor check
//! ([`super::verify`]): the [`Gate`] every credential passes through.
//!
//! - **Attempts are counted before they are evaluated.** [`Gate::reserve`] counts an
//!   attempt at a password or code of an account as a failure *before* the credential is
//!   checked, in one atomic statement that refuses it unchecked when the account is
//!   locked (the rule of [`crate::domain::Lockout::reserve`]). So however many requests
//!   race, on however many instances, at most Lockout Threshold credentials of one account
//!   are checked between two successes or unlocks, and the hard limit
//!   ([`crate::domain::HARD_LIMIT`]) counts across lock expiries.
//! - Each granted [`Attempt`] ends once: refused by the gate (already counted: only the
//!   audit, and the lock's entry if this attempt locked the account),
//!   [`Attempt::succeeded`] (the counts start again), or [`Attempt::released`] (a right
//!   password before the code step: neither a failure nor a success).
//! - The password check ([`Gate::password`]): a dummy hash for unknown users and for
//!   attempts refused unchecked, so that timing tells nothing.
//! - A device code ([`Gate::device_code`]): checked, then consumed with one conditional
//!   update that also writes its audit entry and resets the counts.
//! - "Locked or inactive" ([`usable`]): the one test of whether an account may present a
//!   credential at all.
//! - Every refusal carries a [`FailureReason`], whose text is the audit detail.
//! - The Failure Delay before the one generic answer ([`failure_delay`]).

use super::directory::{self, Bind, Lookup};
use super::{notify, Context};
use crate::clock::{Stopwatch, Timestamp};
use crate::domain::{AuditEvent, BindRefusal, DirectoryEntry, FailureCounts, Lockout};
use crate::domain::{Device, RecoveryCode, Settings, TransactionId, User, UserId, Username};
use crate::domain::{SecurityEvent, TemporaryAccess, TemporaryAccessCode, UserSource};
use crate::otp::OtpCode;
use crate::password::Password;
use crate::store::{FailureOutcome, NewAuditEntry, Reservation, StoreError};

/// The surface a credential is presented on, which prefixes each audit detail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// The person signing in (pages, JSON API, HTTP Basic at forward-auth): no prefix.
    SignIn,
    /// The second-factor check of a code (`/api/v1/verify`, `/validate/check`): "OTP check".
    OtpCheck,
    /// An emailed challenge of the second-factor check: "OTP challenge".
    OtpChallenge,
    /// `/validate/check` in `password_otp` mode: "validate".
    Validate,
    /// A signed-in user's fresh proof on the account page (a current device code before a
    /// change to 2-step verification, the current password before a new one): "account".
    Account,
    /// An entry written alike on every surface (a challenge for a user without an email
    /// address, worded as at sign-in): no prefix.
    Unprefixed,
}

impl Surface {
    fn prefix(self) -> Option<&'static str> {
        match self {
            Self::SignIn | Self::Unprefixed => None,
            Self::OtpCheck => Some("OTP check"),
            Self::OtpChallenge => Some("OTP challenge"),
            Self::Validate => Some("validate"),
            Self::Account => Some("account"),
        }
    }
}

/// Who presents a credential, for the audit log: the calling system's user (an API token
/// of the second-factor check) or none (the person signing in), the client address, and
/// the surface that prefixes each detail.
#[derive(Clone, Copy, Debug)]
pub struct Origin<'a> {
    pub actor: Option<&'a str>,
    pub ip: &'a str,
    pub surface: Surface,
}

impl Origin<'_> {
    /// The audit detail `text` on this surface.
    pub fn detail(&self, text: &str) -> String {
        match self.surface.prefix() {
            None => text.to_owned(),
            Some(surface) => format!("{surface}: {text}"),
        }
    }
}

/// Why a credential, or a sign-in, was refused: the audit detail of its "sign-in failed"
/// entry (after the surface's prefix). The texts are part of the audit log's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureReason {
    /// No account has this username (or it is malformed).
    UnknownUser,
    /// The attempt was refused unchecked: the account is locked.
    RefusedUnchecked,
    WrongPassword,
    /// The password was right, but the account is inactive.
    Inactive,
    /// The account became inactive between the password and the code.
    InactiveAtCodeStep,
    /// No emailed challenge for an account that is locked or inactive.
    LockedOrInactive,
    MalformedCode,
    WrongDeviceCode,
    /// The right device code, used meanwhile (or earlier).
    CodeAlreadyUsed,
    /// `password_otp`: the policy asked for the device's code, but the device is gone.
    DeviceRemoved,
    /// The device of the code step was removed after the password step.
    DeviceRemovedDuringSignIn,
    /// The second-factor check of a user with no device, without a challenge.
    NoDeviceNoChallenge,
    /// The challenge's transaction is unknown, expired, or another user's.
    UnknownChallenge,
    /// The sign-in's emailed code does not match (or was used).
    WrongEmailedCode,
    /// The challenge's emailed code does not match, or was used.
    WrongOrUsedEmailedCode,
    /// The right emailed code, after OTP Valid Seconds.
    ExpiredEmailedCode,
    /// The policy asks for an emailed code and the account has no address.
    EmailMissing,
    /// HTTP Basic at forward-auth with a person's account.
    NotInterfaceUser,
    /// An emailed challenge for a user whose confirmed device is the second factor.
    DeviceEnrolled,
    /// `password_otp`: a bootstrap password is changed at the sign-in page first.
    PasswordChangeRequired,
    /// `password_otp`: the role requires a device that is not set up yet.
    EnrollmentRequired,
    /// A recovery code that is wrong, used, of an older set or another user's.
    WrongRecoveryCode,
    /// The directory could not be reached or could not answer (SPEC 12): not counted,
    /// answered `directory_unavailable`.
    DirectoryUnavailable,
    /// A directory user whose entry is no longer in the directory.
    DirectoryEntryGone,
    /// The entry is disabled (AD `userAccountControl` bit 2, 389-ds `nsAccountLock`).
    DirectoryDisabled,
    /// The entry is in no mapped group and there is no default role.
    DirectoryNoRole,
    /// The user filter matched more than one entry.
    DirectoryAmbiguous,
    /// An empty password: refused before any bind.
    EmptyPassword,
    /// The directory refused the bind as the entry.
    DirectoryBind(BindRefusal),
    /// A security key's answer without a waiting challenge: none was asked, it was
    /// answered already (a replay), or it expired (SPEC 14).
    KeyChallengeMissing,
    /// A security key's answer that does not verify: another challenge, another relying
    /// party, a bad signature, or a credential that is not this user's.
    WrongKeyAssertion,
    /// The key did not verify the user (no PIN or fingerprint): user verification is
    /// required.
    KeyUserNotVerified,
    /// The key's signature counter did not grow: a cloned key, or a replay.
    KeyCounterNotGrown,
    /// A passkey whose user handle or credential no account holds.
    UnknownKey,
    /// A temporary access code that is wrong, used up, expired, revoked or another
    /// user's (SPEC 15).
    WrongTemporaryAccessCode,
}

impl FailureReason {
    /// The audit detail (without the surface's prefix).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UnknownUser => "unknown user",
            Self::RefusedUnchecked => "refused unchecked: account locked",
            Self::WrongPassword => "wrong password",
            Self::Inactive => "inactive",
            Self::InactiveAtCodeStep => "inactive at code step",
            Self::LockedOrInactive => "locked or inactive",
            Self::MalformedCode => "malformed code",
            Self::WrongDeviceCode => "wrong device code",
            Self::CodeAlreadyUsed => "code already used",
            Self::DeviceRemoved => "device removed",
            Self::DeviceRemovedDuringSignIn => "device removed during sign-in",
            Self::NoDeviceNoChallenge => "no device and no emailed challenge",
            Self::UnknownChallenge => "unknown or expired challenge",
            Self::WrongEmailedCode => "wrong emailed code",
            Self::WrongOrUsedEmailedCode => "wrong or used emailed code",
            Self::ExpiredEmailedCode => "expired emailed code",
            Self::EmailMissing => "email OTP required but no email address",
            Self::NotInterfaceUser => "HTTP Basic refused: not an interface user",
            Self::DeviceEnrolled => "the user has an authenticator app",
            Self::PasswordChangeRequired => "the password must be changed at sign-in first",
            Self::EnrollmentRequired => "2-step verification must be set up at sign-in first",
            Self::WrongRecoveryCode => "wrong or used recovery code",
            Self::DirectoryUnavailable => "directory unavailable",
            Self::DirectoryEntryGone => "no longer in the directory",
            Self::DirectoryDisabled => "disabled in the directory",
            Self::DirectoryNoRole => "in no directory group that gives a role",
            Self::DirectoryAmbiguous => "the directory's user filter matched several entries",
            Self::EmptyPassword => "empty password",
            Self::DirectoryBind(refusal) => refusal.audit_reason(),
            Self::KeyChallengeMissing => "security key: no waiting challenge (replayed or expired)",
            Self::WrongKeyAssertion => "security key: assertion does not verify",
            Self::KeyUserNotVerified => "security key: user not verified (no PIN or fingerprint)",
            Self::KeyCounterNotGrown => {
                "security key: signature counter did not grow (cloned key?)"
            }
            Self::UnknownKey => "security key: unknown credential",
            Self::WrongTemporaryAccessCode => {
                "wrong, used up, expired or revoked temporary access code"
            }
        }
    }
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The audit detail of an attempt refused unchecked (the account was locked).
pub const REFUSED_UNCHECKED: &str = FailureReason::RefusedUnchecked.as_str();

/// A credential the [`Gate`] refused, already recorded: audited, and counted when its
/// attempt was reserved. Answer with the generic failure, unless
/// [`Refused::directory_unavailable`] (503 `directory_unavailable`) or
/// [`Refused::own_message`] (the directory's expired or must-change password).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    pub reason: FailureReason,
}

impl Refused {
    /// The password could not be checked because the directory did not answer (SPEC 12).
    pub fn directory_unavailable(&self) -> bool {
        self.reason == FailureReason::DirectoryUnavailable
    }

    /// The message shown instead of the generic failure: only AD's expired and
    /// must-change passwords have one ("change your password in Windows first").
    pub fn own_message(&self) -> Option<&'static str> {
        match self.reason {
            FailureReason::DirectoryBind(refusal) => refusal.own_message(),
            _ => None,
        }
    }
}

/// Whose password a username names ([`Gate::find`]).
#[derive(Debug)]
pub enum Found {
    /// No account, locally or in the directory (or a malformed name).
    Unknown,
    /// A local account and its password hash.
    Local(User, String),
    /// A directory user, just created or refreshed from its entry: the password is checked
    /// by a bind as the entry.
    Directory(User, DirectoryEntry),
    /// Nobody signs in with this name now, whatever the password (an entry gone, disabled
    /// or in no mapped group; the directory unavailable).
    Refused {
        user: Option<User>,
        reason: FailureReason,
    },
}

impl Found {
    /// The account, if there is one.
    pub fn user(&self) -> Option<&User> {
        match self {
            Self::Unknown => None,
            Self::Local(user, _) | Self::Directory(user, _) => Some(user),
            Self::Refused { user, .. } => user.as_ref(),
        }
    }
}

/// What a [`Gate`] check gives: passed, refused (already recorded), or a store failure.
pub type Checked<T> = Result<Result<T, Refused>, StoreError>;

/// Whether `user` may present a credential at `now`: neither locked nor inactive. The one
/// place of this rule.
pub fn usable(user: &User, now: Timestamp) -> bool {
    user.active && !user.is_locked(now)
}

/// A granted attempt at a credential of one account, counted as a failure in advance.
/// It ends exactly once: refused by the [`Gate`], succeeded or released.
#[must_use = "an attempt ends as refused, succeeded or released"]
#[derive(Debug)]
pub struct Attempt {
    user: UserId,
    username: Username,
    counted: FailureOutcome,
    lockout: Lockout,
}

impl Attempt {
    /// The credential was wrong. The failure was counted when the attempt was reserved;
    /// this audits it, and the lock when this attempt's count locked the account.
    async fn failed(
        self,
        ctx: &Context,
        origin: Origin<'_>,
        reason: FailureReason,
    ) -> Result<Refused, StoreError> {
        ctx.audit(
            AuditEvent::SignInFailed,
            origin.actor,
            Some(self.username.as_str()),
            Some(origin.ip),
            origin.detail(reason.as_str()),
        )
        .await?;
        let counted = FailureCounts {
            failed_count: self.counted.failed_count,
            consecutive_failures: self.counted.consecutive_failures,
            locked_until: self.counted.locked_until,
        };
        if let Some(locked) = self.lockout.locked_by(counted) {
            ctx.audit(
                AuditEvent::Locked,
                origin.actor,
                Some(self.username.as_str()),
                Some(origin.ip),
                locked.audit_detail(),
            )
            .await?;
            // SPEC 11: the locked user is emailed; the answer stays the generic one.
            // Read only now, on this rare path: the attempt carries no address.
            match ctx.store.user_by_id(self.user).await {
                Ok(Some(user)) => {
                    notify::security_logged(
                        ctx,
                        &user,
                        SecurityEvent::AccountLocked,
                        Some(origin.ip),
                    )
                    .await;
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "locked user not read for the notification"),
            }
        }
        Ok(Refused { reason })
    }

    /// A refused code: audited as such ("OTP refused"), then [`Attempt::failed`].
    async fn refused_code(
        self,
        ctx: &Context,
        origin: Origin<'_>,
        reason: FailureReason,
    ) -> Result<Refused, StoreError> {
        ctx.audit(
            AuditEvent::OtpRefused,
            origin.actor,
            Some(self.username.as_str()),
            Some(origin.ip),
            origin.detail(reason.as_str()),
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
        ctx.store
            .release_attempt(self.user, self.lockout.threshold())
            .await
    }
}

/// An assertion that verified, to be recorded by the gate: the key, its new counter and
/// its updated credential.
#[derive(Clone, Debug)]
pub struct KeyUse {
    pub key: crate::domain::SecurityKeyId,
    pub counter: u32,
    pub credential: String,
}

/// Whose emailed code is checked: a sign-in transaction's, or a second-factor
/// challenge's (`None`: no live challenge of this user has the token).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmailedFor {
    SignIn { transaction: TransactionId },
    Challenge { transaction: Option<TransactionId> },
}

/// The one credential gate: every password and code of an account, on every surface,
/// is checked here, under the settings of the request and for the audit `origin`. Each
/// check passes, or refuses with a [`FailureReason`] that it has already audited (and
/// counted, when the attempt was granted).
#[derive(Clone, Copy)]
pub struct Gate<'a> {
    ctx: &'a Context,
    settings: &'a Settings,
    origin: Origin<'a>,
}

impl<'a> Gate<'a> {
    pub fn new(ctx: &'a Context, settings: &'a Settings, origin: Origin<'a>) -> Self {
        Self {
            ctx,
            settings,
            origin,
        }
    }

    /// Records a refusal that counts nothing (no attempt was granted, or it was given
    /// back): the "sign-in failed" entry of `reason`.
    pub async fn refuse(
        &self,
        user: Option<&User>,
        reason: FailureReason,
    ) -> Result<Refused, StoreError> {
        audit_failure(self.ctx, user, self.origin, reason).await?;
        Ok(Refused { reason })
    }

    /// [`usable`], audited when refused: a locked or inactive account is given nothing
    /// (no new codes either).
    pub async fn usable(&self, user: &User) -> Checked<()> {
        if usable(user, self.ctx.now()) {
            return Ok(Ok(()));
        }
        Ok(Err(self
            .refuse(Some(user), FailureReason::LockedOrInactive)
            .await?))
    }

    /// Counts an attempt at a credential of `user` before it is checked. Refused
    /// unchecked because the account is locked (audited as such): the caller must then
    /// not check the credential.
    pub async fn reserve(&self, user: &User) -> Checked<Attempt> {
        let now = self.ctx.now();
        let lockout = Lockout::of(self.settings);
        let reservation = self
            .ctx
            .store
            .reserve_attempt(user.id, now, lockout.threshold(), lockout.lock_until(now))
            .await?;
        self.attempt(user, reservation).await
    }

    /// The attempt of a `reservation` the store made for `user` (the hot path reserves
    /// while it reads the user: `Store::reserve_for_check`); refused: audited.
    pub async fn attempt(&self, user: &User, reservation: Reservation) -> Checked<Attempt> {
        match reservation {
            Reservation::Granted(counted) => Ok(Ok(Attempt {
                user: user.id,
                username: user.username.clone(),
                counted,
                lockout: Lockout::of(self.settings),
            })),
            Reservation::Refused => Ok(Err(self
                .refuse(Some(user), FailureReason::RefusedUnchecked)
                .await?)),
        }
    }

    /// The attempt of a sign-in's code step: an account made inactive since the password
    /// is refused uncounted, then the attempt is reserved ([`Gate::reserve`]).
    pub async fn reserve_code(&self, user: &User) -> Checked<Attempt> {
        if !user.active {
            return Ok(Err(self
                .refuse(Some(user), FailureReason::InactiveAtCodeStep)
                .await?));
        }
        self.reserve(user).await
    }

    /// The attempt of a second-factor check, reserved by the store as it read `user`: an
    /// inactive account is refused uncounted (the store reserved nothing for it), then
    /// [`Gate::attempt`].
    pub async fn code_attempt(&self, user: &User, reservation: Reservation) -> Checked<Attempt> {
        if !user.active {
            return Ok(Err(self
                .refuse(Some(user), FailureReason::Inactive)
                .await?));
        }
        self.attempt(user, reservation).await
    }

    /// Whose password `username` names: a local account (which always wins), else the
    /// directory's entry of that name, with the local user created or refreshed from it
    /// (SPEC 12), else nobody. A malformed name is nobody, and is never looked up.
    pub async fn find(&self, username: &str) -> Result<Found, StoreError> {
        let Ok(name) = Username::parse(username) else {
            return Ok(Found::Unknown);
        };
        let existing = match self.ctx.store.user_with_password_hash(&name).await? {
            Some((user, hash)) if user.source == UserSource::Local => {
                return Ok(Found::Local(user, hash))
            }
            Some((user, _)) => Some(user),
            None => None,
        };
        Ok(
            match directory::look_up(self.ctx, &name, existing, Some(self.origin.ip)).await? {
                Lookup::NotFound => Found::Unknown,
                Lookup::Found(user, entry) => Found::Directory(user, entry),
                Lookup::Refused { user, reason } => Found::Refused {
                    user,
                    reason: match reason {
                        directory::FailureReason::DirectoryUnavailable => {
                            FailureReason::DirectoryUnavailable
                        }
                        directory::FailureReason::DirectoryEntryGone => {
                            FailureReason::DirectoryEntryGone
                        }
                        directory::FailureReason::DirectoryDisabled => {
                            FailureReason::DirectoryDisabled
                        }
                        directory::FailureReason::DirectoryNoRole => FailureReason::DirectoryNoRole,
                        directory::FailureReason::DirectoryAmbiguous => {
                            FailureReason::DirectoryAmbiguous
                        }
                    },
                },
            },
        )
    }

    /// The password check, in the one order every surface follows: unknown user, then the
    /// attempt's reservation (locked: refused unchecked), then the password (wrong: a
    /// failure), then the account's state (inactive: audited, the attempt given back).
    /// `found` is whose password the username names ([`Gate::find`]). For a local account
    /// the hash work is done in every case; a directory user's password is checked by a
    /// bind, only once the attempt is reserved (so lockout is counted in twostep, never in
    /// the directory), and never with an empty password. Passed: the password is right and
    /// the account may sign in; the attempt goes on (released, or succeeded once every
    /// step is done).
    pub async fn password(&self, found: Found, password: &str) -> Checked<(User, Attempt)> {
        let (user, credential) = match found {
            Found::Unknown => {
                verify_password(self.ctx, None, password).await;
                return Ok(Err(self.refuse(None, FailureReason::UnknownUser).await?));
            }
            Found::Refused { user, reason } => {
                return Ok(Err(self.refuse(user.as_ref(), reason).await?));
            }
            Found::Local(user, hash) => (user, Credential::Hash(hash)),
            Found::Directory(user, entry) => (user, Credential::Entry(entry)),
        };
        let attempt = match self.reserve(&user).await? {
            Ok(attempt) => attempt,
            Err(refused) => {
                if let Credential::Hash(_) = credential {
                    // The same hash work as a check, against no account's hash.
                    verify_password(self.ctx, None, password).await;
                }
                return Ok(Err(refused));
            }
        };
        match credential {
            Credential::Hash(hash) => {
                if !verify_password(self.ctx, Some(&hash), password).await {
                    return Ok(Err(attempt
                        .failed(self.ctx, self.origin, FailureReason::WrongPassword)
                        .await?));
                }
            }
            Credential::Entry(entry) => match directory::bind(self.ctx, &entry, password).await {
                Bind::Bound => {}
                Bind::EmptyPassword => {
                    return Ok(Err(attempt
                        .failed(self.ctx, self.origin, FailureReason::EmptyPassword)
                        .await?));
                }
                Bind::Unavailable => {
                    // Not the user's failure (SPEC 12).
                    attempt.released(self.ctx).await?;
                    return Ok(Err(self
                        .refuse(Some(&user), FailureReason::DirectoryUnavailable)
                        .await?));
                }
                Bind::Refused(
                    refusal @ (BindRefusal::PasswordExpired | BindRefusal::MustChangePassword),
                ) => {
                    // AD answers these only to the right password: not a failure, not a
                    // sign-in either.
                    attempt.released(self.ctx).await?;
                    return Ok(Err(self
                        .refuse(Some(&user), FailureReason::DirectoryBind(refusal))
                        .await?));
                }
                Bind::Refused(refusal) => {
                    return Ok(Err(attempt
                        .failed(self.ctx, self.origin, FailureReason::DirectoryBind(refusal))
                        .await?));
                }
            },
        }
        if !user.active {
            attempt.released(self.ctx).await?;
            return Ok(Err(self
                .refuse(Some(&user), FailureReason::Inactive)
                .await?));
        }
        Ok(Ok((user, attempt)))
    }

    /// Refuses a code under `attempt` ("OTP refused", then the counted failure).
    pub async fn refuse_code(
        &self,
        attempt: Attempt,
        reason: FailureReason,
    ) -> Result<Refused, StoreError> {
        attempt.refused_code(self.ctx, self.origin, reason).await
    }

    /// The code as typed, parsed under `attempt`; a malformed one is a refused code.
    pub async fn code(&self, attempt: Attempt, code: &str) -> Checked<(Attempt, OtpCode)> {
        match OtpCode::parse(code) {
            Ok(code) => Ok(Ok((attempt, code))),
            Err(_) => Ok(Err(self
                .refuse_code(attempt, FailureReason::MalformedCode)
                .await?)),
        }
    }

    /// Checks `code` against a confirmed `device` under a granted `attempt` and consumes
    /// it: of several requests with one code, on any number of instances, one at most is
    /// accepted. Accepted: the code's use, its audit entry ("OTP accepted", detail
    /// "device" after the surface's prefix) and the reset of the counts are one commit,
    /// and the attempt has succeeded.
    pub async fn device_code(
        &self,
        attempt: Attempt,
        device: &Device,
        code: &OtpCode,
        now: Timestamp,
    ) -> Checked<()> {
        let Some(used) = device.check(
            code,
            now,
            self.settings.hotp_window(),
            self.settings.totp_skew_steps(),
        ) else {
            return Ok(Err(self
                .refuse_code(attempt, FailureReason::WrongDeviceCode)
                .await?));
        };
        // Written in the same commit as the code's consumption: an accepted code is
        // never without its entry.
        let entry = NewAuditEntry {
            event: AuditEvent::OtpAccepted,
            actor: self.origin.actor.map(str::to_owned),
            subject: Some(attempt.username.as_str().to_owned()),
            client_ip: Some(self.origin.ip.to_owned()),
            detail: self.origin.detail("device"),
        };
        if self
            .ctx
            .store
            .consume_device_use_audited(device.id, used, &entry, now, attempt.user)
            .await?
        {
            Ok(Ok(()))
        } else {
            Ok(Err(self
                .refuse_code(attempt, FailureReason::CodeAlreadyUsed)
                .await?))
        }
    }

    /// Records a security key's verified assertion under a granted `attempt` (SPEC 14):
    /// the key's new counter is stored only if it still grows (one conditional update, so
    /// a repeated counter racing on another instance is refused as a clone's), then the
    /// attempt has succeeded and "OTP accepted" (detail "security key" after the surface's
    /// prefix) is audited. `checked` is what `webauthn::check_assertion` or
    /// `check_passkey` found; a refusal is counted.
    pub async fn security_key(
        &self,
        attempt: Attempt,
        checked: Result<KeyUse, FailureReason>,
    ) -> Checked<()> {
        let used = match checked {
            Ok(used) => used,
            Err(reason) => return Ok(Err(self.refuse_code(attempt, reason).await?)),
        };
        let now = self.ctx.now();
        if !self
            .ctx
            .store
            .use_security_key(used.key, used.counter, &used.credential, now)
            .await?
        {
            return Ok(Err(self
                .refuse_code(attempt, FailureReason::KeyCounterNotGrown)
                .await?));
        }
        let username = attempt.username.as_str().to_owned();
        attempt.succeeded(self.ctx).await?;
        self.ctx
            .audit(
                AuditEvent::OtpAccepted,
                self.origin.actor,
                Some(&username),
                Some(self.origin.ip),
                self.origin.detail("security key"),
            )
            .await?;
        Ok(Ok(()))
    }

    /// Checks a recovery `code` of `user` under a granted `attempt` and consumes it once:
    /// of several requests with one code, on any number of instances, one at most is
    /// accepted. Accepted: the code's use, its audit entry ("Recovery code used") and the
    /// reset of the counts are one commit, and the attempt has succeeded; the answer is how
    /// many codes are left. Wrong, used, of an older set or another user's: a refused code,
    /// counted like a wrong device code.
    pub async fn recovery_code(
        &self,
        attempt: Attempt,
        user: &User,
        code: &RecoveryCode,
        now: Timestamp,
    ) -> Checked<u32> {
        let hash = self.ctx.store.key().recovery_code_hash(user.id, code);
        let entry = NewAuditEntry {
            event: AuditEvent::RecoveryCodeUsed,
            actor: self.origin.actor.map(str::to_owned),
            subject: Some(attempt.username.as_str().to_owned()),
            client_ip: Some(self.origin.ip.to_owned()),
            detail: self.origin.detail("recovery code"),
        };
        if self
            .ctx
            .store
            .consume_recovery_code(attempt.user, hash, &entry, now)
            .await?
        {
            let left = self.ctx.store.recovery_codes_left(user.id).await?;
            notify::security_logged(
                self.ctx,
                user,
                SecurityEvent::RecoveryCodeUsed,
                Some(self.origin.ip),
            )
            .await;
            Ok(Ok(left))
        } else {
            Ok(Err(self
                .refuse_code(attempt, FailureReason::WrongRecoveryCode)
                .await?))
        }
    }

    /// Checks a temporary access `code` of `user` under a granted `attempt` and uses it
    /// once (SPEC 15): of requests racing with a code of N uses, N at most are accepted.
    /// Accepted: the use, its audit entry ("Temporary access code used") and the reset of
    /// the counts are one commit, and the attempt has succeeded; the answer is the code as
    /// it is now (uses left, expiry). Wrong, used up, expired, revoked or another user's:
    /// a refused code, counted like a wrong device code.
    pub async fn temporary_access(
        &self,
        attempt: Attempt,
        user: &User,
        code: &TemporaryAccessCode,
        now: Timestamp,
    ) -> Checked<TemporaryAccess> {
        let hash = self.ctx.store.key().temporary_access_hash(user.id, code);
        let entry = NewAuditEntry {
            event: AuditEvent::TemporaryAccessUsed,
            actor: self.origin.actor.map(str::to_owned),
            subject: Some(attempt.username.as_str().to_owned()),
            client_ip: Some(self.origin.ip.to_owned()),
            detail: self.origin.detail("temporary access code"),
        };
        match self
            .ctx
            .store
            .use_temporary_access(attempt.user, hash, &entry, now)
            .await?
        {
            Some(access) => Ok(Ok(access)),
            None => Ok(Err(self
                .refuse_code(attempt, FailureReason::WrongTemporaryAccessCode)
                .await?)),
        }
    }

    /// Checks the emailed `code` of `user` for `of` and consumes it once. Accepted: the
    /// attempt has succeeded, then "OTP accepted" (detail "email" after the surface's
    /// prefix) is audited.
    pub async fn emailed_code(
        &self,
        attempt: Attempt,
        user: &User,
        of: EmailedFor,
        code: &OtpCode,
        now: Timestamp,
    ) -> Checked<()> {
        let (transaction, wrong) = match of {
            EmailedFor::SignIn { transaction } => (transaction, FailureReason::WrongEmailedCode),
            EmailedFor::Challenge {
                transaction: Some(transaction),
            } => (transaction, FailureReason::WrongOrUsedEmailedCode),
            EmailedFor::Challenge { transaction: None } => {
                return Ok(Err(self
                    .refuse_code(attempt, FailureReason::UnknownChallenge)
                    .await?));
            }
        };
        let reason =
            match super::emailed::check(self.ctx, user, Some(transaction), code, now).await? {
                super::emailed::Check::Accepted => {
                    attempt.succeeded(self.ctx).await?;
                    self.ctx
                        .audit(
                            AuditEvent::OtpAccepted,
                            self.origin.actor,
                            Some(user.username.as_str()),
                            Some(self.origin.ip),
                            self.origin.detail("email"),
                        )
                        .await?;
                    return Ok(Ok(()));
                }
                super::emailed::Check::Wrong => wrong,
                super::emailed::Check::Expired => FailureReason::ExpiredEmailedCode,
            };
        Ok(Err(self.refuse_code(attempt, reason).await?))
    }
}

/// How a password is checked: against a local hash, or by a bind as a directory entry.
enum Credential {
    Hash(String),
    Entry(DirectoryEntry),
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

/// Records a failed sign-in in the audit log without counting it: the user is unknown,
/// the attempt was refused unchecked, or the account may not sign in.
pub async fn audit_failure(
    ctx: &Context,
    user: Option<&User>,
    origin: Origin<'_>,
    reason: FailureReason,
) -> Result<(), StoreError> {
    ctx.audit(
        AuditEvent::SignInFailed,
        origin.actor,
        user.map(|u| u.username.as_str()),
        Some(origin.ip),
        origin.detail(reason.as_str()),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The audit log's texts, byte for byte: every reason, and every surface's prefix.
    #[test]
    fn every_failure_reason_has_its_audit_text() {
        use FailureReason::*;
        let texts = [
            (UnknownUser, "unknown user"),
            (RefusedUnchecked, "refused unchecked: account locked"),
            (WrongPassword, "wrong password"),
            (Inactive, "inactive"),
            (InactiveAtCodeStep, "inactive at code step"),
            (LockedOrInactive, "locked or inactive"),
            (MalformedCode, "malformed code"),
            (WrongDeviceCode, "wrong device code"),
            (CodeAlreadyUsed, "code already used"),
            (DeviceRemoved, "device removed"),
            (DeviceRemovedDuringSignIn, "device removed during sign-in"),
            (NoDeviceNoChallenge, "no device and no emailed challenge"),
            (UnknownChallenge, "unknown or expired challenge"),
            (WrongEmailedCode, "wrong emailed code"),
            (WrongOrUsedEmailedCode, "wrong or used emailed code"),
            (ExpiredEmailedCode, "expired emailed code"),
            (EmailMissing, "email OTP required but no email address"),
            (
                NotInterfaceUser,
                "HTTP Basic refused: not an interface user",
            ),
            (DeviceEnrolled, "the user has an authenticator app"),
            (
                PasswordChangeRequired,
                "the password must be changed at sign-in first",
            ),
            (
                EnrollmentRequired,
                "2-step verification must be set up at sign-in first",
            ),
            (WrongRecoveryCode, "wrong or used recovery code"),
            (DirectoryUnavailable, "directory unavailable"),
            (DirectoryEntryGone, "no longer in the directory"),
            (DirectoryDisabled, "disabled in the directory"),
            (DirectoryNoRole, "in no directory group that gives a role"),
            (
                DirectoryAmbiguous,
                "the directory's user filter matched several entries",
            ),
            (EmptyPassword, "empty password"),
            (
                KeyChallengeMissing,
                "security key: no waiting challenge (replayed or expired)",
            ),
            (WrongKeyAssertion, "security key: assertion does not verify"),
            (
                KeyUserNotVerified,
                "security key: user not verified (no PIN or fingerprint)",
            ),
            (
                KeyCounterNotGrown,
                "security key: signature counter did not grow (cloned key?)",
            ),
            (UnknownKey, "security key: unknown credential"),
            (
                WrongTemporaryAccessCode,
                "wrong, used up, expired or revoked temporary access code",
            ),
            (
                DirectoryBind(BindRefusal::WrongPassword),
                "wrong password (directory)",
            ),
            (
                DirectoryBind(BindRefusal::PasswordExpired),
                "directory password expired",
            ),
        ];
        for (reason, text) in texts {
            assert_eq!(reason.as_str(), text);
            assert_eq!(reason.to_string(), text);
            // Exhaustive: a new reason must be added to the table above.
            match reason {
                UnknownUser
                | RefusedUnchecked
                | WrongPassword
                | Inactive
                | InactiveAtCodeStep
                | LockedOrInactive
                | MalformedCode
                | WrongDeviceCode
                | CodeAlreadyUsed
                | DeviceRemoved
                | DeviceRemovedDuringSignIn
                | NoDeviceNoChallenge
                | UnknownChallenge
                | WrongEmailedCode
                | WrongOrUsedEmailedCode
                | ExpiredEmailedCode
                | EmailMissing
                | NotInterfaceUser
                | DeviceEnrolled
                | PasswordChangeRequired
                | EnrollmentRequired
                | WrongRecoveryCode
                | DirectoryUnavailable
                | DirectoryEntryGone
                | DirectoryDisabled
                | DirectoryNoRole
                | DirectoryAmbiguous
                | EmptyPassword
                | DirectoryBind(_)
                | KeyChallengeMissing
                | WrongKeyAssertion
                | KeyUserNotVerified
                | KeyCounterNotGrown
                | UnknownKey
                | WrongTemporaryAccessCode => {}
            }
        }
        assert_eq!(texts.len(), 36);
        assert_eq!(REFUSED_UNCHECKED, "refused unchecked: account locked");
    }

    #[test]
    fn each_surface_prefixes_the_detail_as_before() {
        let origin = |surface| Origin {
            actor: None,
            ip: "192.0.2.1",
            surface,
        };
        assert_eq!(origin(Surface::SignIn).detail("device"), "device");
        assert_eq!(origin(Surface::Unprefixed).detail("x"), "x");
        assert_eq!(
            origin(Surface::OtpCheck).detail("device"),
            "OTP check: device"
        );
        assert_eq!(
            origin(Surface::OtpChallenge).detail("unknown user"),
            "OTP challenge: unknown user"
        );
        assert_eq!(
            origin(Surface::Validate).detail("device"),
            "validate: device"
        );
        assert_eq!(
            origin(Surface::Account).detail("wrong device code"),
            "account: wrong device code"
        );
    }

    fn user(active: bool, locked_until: Option<Timestamp>) -> User {
        User {
            id: UserId(1),
            username: Username::parse("jane").unwrap(),
            display_name: crate::domain::DisplayName::parse("Jane").unwrap(),
            email: None,
            role_id: crate::domain::RoleId(1),
            active,
            must_change_password: false,
            failed_count: 0,
            locked_until,
            consecutive_failures: 0,
            source: crate::domain::UserSource::Local,
        }
    }

    #[test]
    fn only_an_active_unlocked_account_is_usable() {
        let now = Timestamp::from_millis(10_000);
        assert!(usable(&user(true, None), now));
        assert!(!usable(&user(false, None), now));
        assert!(!usable(&user(true, Some(now.plus_seconds(1))), now));
        assert!(!usable(&user(true, Some(Timestamp::NEVER)), now));
        // A lock ending exactly now has ended.
        assert!(usable(&user(true, Some(now)), now));
        assert!(!usable(&user(false, Some(now)), now));
    }
}
