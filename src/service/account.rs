//! The account page (SPEC section 10 "/account"): what a signed-in user sees of their own
//! account and changes themselves: 2-step verification (set up, replace), recovery codes,
//! sessions, password.
//!
//! Every call names the user by their session token. A change to 2-step verification
//! needs fresh proof: a current code of the confirmed device, checked by the one
//! [`Gate`] (the attempt reserved first; a wrong code is a counted, audited failure,
//! answered with the generic [`AccountError::InvalidCredentials`] no sooner than Failure
//! Delay). Without a confirmed device there is nothing to prove with, and no code is
//! asked. The current password before a new one passes through the same gate.

use super::credentials::{self, Gate, Origin, Surface};
use super::devices::{self, SetupError, SetupInfo};
use super::passwords::{self, ChosenFor, PasswordChoiceError};
use super::recovery;
use super::signin::{live_session, session_ends_at};
use super::webauthn::KeyError;
use super::{notify, Context};
use crate::clock::{Stopwatch, Timestamp};
use crate::domain::{
    AuditEvent, Device, DeviceId, KeyNameError, OtpMethod, PasswordProblem, PromptMode,
    RecoveryCode, Role, SecurityEvent, SecurityKey, Session, SessionId, Settings, User, UserSource,
};
use crate::otp::OtpCode;
use crate::store::StoreError;

mod keys;

/// Why the user's other sessions end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EndedBy {
    /// "Sign out other sessions".
    SignOutOthers,
    /// A new password on the account page.
    PasswordChange,
}

/// How long a device set up from My account may wait for its confirming code.
pub const SETUP_MINUTES: i64 = 15;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// No live session for the token.
    #[error("sign in first")]
    Unauthenticated,
    /// A wrong proof code or current password (or a locked account): one answer for all.
    #[error("the username, password or code is not correct")]
    InvalidCredentials,
    /// A change to 2-step verification without a code, while a device is set up.
    #[error("enter a current code from your authenticator app")]
    CodeRequired,
    #[error("this method is not offered")]
    MethodNotAllowed,
    #[error("set-up was not started, was replaced or has expired; start again")]
    NoPendingDevice,
    #[error("the code does not match; enter the code your app shows now")]
    WrongSetupCode,
    #[error("{0}")]
    InvalidPassword(PasswordProblem),
    /// Recovery codes asked for without a confirmed device (nothing to recover).
    #[error("set up 2-step verification first; recovery codes stand in for its device")]
    NoDevice,
    /// A directory user's password is the directory's (SPEC 12): it is changed there.
    #[error("your password is your directory (Windows) password: change it there")]
    DirectoryPassword,
    /// A security key could not be set up (SPEC 14).
    #[error("{0}")]
    SecurityKey(KeyError),
    /// The user has no key of this id.
    #[error("no such security key")]
    NoSuchKey,
    #[error("{0}")]
    InvalidKeyName(KeyNameError),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<KeyError> for AccountError {
    fn from(error: KeyError) -> Self {
        match error {
            KeyError::Store(store) => store.into(),
            other => Self::SecurityKey(other),
        }
    }
}

impl From<StoreError> for AccountError {
    fn from(error: StoreError) -> Self {
        Self::Internal(Box::new(error))
    }
}

impl From<SetupError> for AccountError {
    fn from(error: SetupError) -> Self {
        match error {
            SetupError::MethodNotAllowed => Self::MethodNotAllowed,
            SetupError::NoPendingDevice => Self::NoPendingDevice,
            SetupError::WrongCode => Self::WrongSetupCode,
            SetupError::Store(store) => store.into(),
        }
    }
}

/// 2 Step Verification of the user: a confirmed device, or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TwoStep {
    Enabled,
    NotEnabled,
}

/// A confirmed device as the account page shows it.
#[derive(Clone, Debug)]
pub struct DeviceSummary {
    pub id: DeviceId,
    pub method: OtpMethod,
    pub prompt_mode: PromptMode,
    /// When it was confirmed ("enrolled").
    pub created_at: Option<Timestamp>,
    /// The last accepted code (the latest "OTP accepted" entry since it was confirmed).
    pub last_used_at: Option<Timestamp>,
}

/// A live session of the user.
#[derive(Clone, Debug)]
pub struct SessionSummary {
    pub id: SessionId,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub ip: String,
    /// The session of this request.
    pub current: bool,
}

/// Everything the account page shows (`GET /api/v1/account`).
#[derive(Clone, Debug)]
pub struct AccountOverview {
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    /// The role's name.
    pub role: String,
    pub two_step: TwoStep,
    pub devices: Vec<DeviceSummary>,
    pub recovery_codes_left: u32,
    pub sessions: Vec<SessionSummary>,
    /// The methods Use 2FA offers, for "Set up now" / "Replace device".
    pub methods: Vec<OtpMethod>,
    /// The user's security keys and passkeys (SPEC 14), oldest first.
    pub security_keys: Vec<SecurityKey>,
    /// A key may be added now (keys are offered, the role is not an interface role, and
    /// the user holds fewer than 5).
    pub may_add_key: bool,
    /// Where the password is checked: a directory user changes it in the directory
    /// (SPEC 12).
    pub source: crate::domain::UserSource,
    /// This session signed in with a temporary access code within [`SETUP_MINUTES`]
    /// (SPEC 15): a change to 2-step verification needs no further code, so that a user
    /// who lost the device can set up a new one.
    pub proof_given: bool,
}

/// The signed-in user of a request.
struct Me {
    session: Session,
    user: User,
    role: Role,
}

/// The account page's operations; cheap to clone.
#[derive(Clone)]
pub struct Account {
    ctx: Context,
}

impl Account {
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }

    async fn me(&self, token: &str) -> Result<Me, AccountError> {
        let (session, user, role) = live_session(&self.ctx, token)
            .await?
            .ok_or(AccountError::Unauthenticated)?;
        Ok(Me {
            session,
            user,
            role,
        })
    }

    fn origin<'a>(me: &'a Me) -> Origin<'a> {
        Origin {
            actor: Some(me.user.username.as_str()),
            ip: &me.session.client_ip,
            surface: Surface::Account,
        }
    }

    /// The account page: the user, 2-step status with the device, recovery codes left,
    /// live sessions.
    pub async fn overview(&self, token: &str) -> Result<AccountOverview, AccountError> {
        let me = self.me(token).await?;
        let settings = self.ctx.store.settings().await?;
        let devices = match self.ctx.store.confirmed_device(me.user.id).await? {
            Some(device) => vec![self.summary(&me.user, &device).await?],
            None => Vec::new(),
        };
        let security_keys: Vec<SecurityKey> = self
            .ctx
            .store
            .security_keys(me.user.id)
            .await?
            .into_iter()
            .map(|stored| stored.key)
            .collect();
        let may_add_key = super::webauthn::offered(&self.ctx, &settings)
            && !me.role.security.interface()
            && crate::domain::may_add_key(security_keys.len());
        let now = self.ctx.now();
        // SPEC 15: the role's limits, as `live_session` applies them.
        let limits = me.role.session_limits;
        let idle_since = now.plus_seconds(-limits.idle_seconds());
        let sessions = self
            .ctx
            .store
            .live_sessions(me.user.id, now, idle_since)
            .await?
            .into_iter()
            .filter(|session| now < session_ends_at(session, limits))
            .map(|session| SessionSummary {
                current: session.id == me.session.id,
                id: session.id,
                created_at: session.created_at,
                last_seen_at: session.last_seen_at,
                ip: session.client_ip,
            })
            .collect();
        Ok(AccountOverview {
            source: me.user.source,
            proof_given: self.proof_given(&me),
            username: me.user.username.as_str().to_owned(),
            display_name: me.user.display_name.as_str().to_owned(),
            email: me
                .user
                .email
                .as_ref()
                .map(|email| email.as_str().to_owned()),
            role: me.role.name.as_str().to_owned(),
            two_step: if devices.is_empty() && security_keys.is_empty() {
                TwoStep::NotEnabled
            } else {
                TwoStep::Enabled
            },
            devices,
            security_keys,
            may_add_key,
            recovery_codes_left: self.recovery_codes_left(&me.user).await?,
            sessions,
            methods: settings.use_2fa().methods().to_vec(),
        })
    }

    async fn summary(&self, user: &User, device: &Device) -> Result<DeviceSummary, AccountError> {
        let created_at = self.ctx.store.device_confirmed_at(device.id).await?;
        let last_used_at = self
            .ctx
            .store
            .device_last_used(user.username.as_str(), created_at)
            .await?;
        Ok(DeviceSummary {
            id: device.id,
            method: device.method(),
            prompt_mode: device.prompt_mode,
            created_at,
            last_used_at,
        })
    }

    /// How many unused recovery codes the user has.
    async fn recovery_codes_left(&self, user: &User) -> Result<u32, AccountError> {
        Ok(recovery::left(&self.ctx, user).await?)
    }

    /// Fresh proof before a change to 2-step verification: a current code of the
    /// confirmed device, or one of the user's recovery codes (used up by it), under a
    /// reserved attempt; a user whose only devices are security keys proves with a
    /// recovery code. No device and no key: nothing to prove (a code, if sent, is
    /// ignored).
    async fn prove(
        &self,
        me: &Me,
        settings: &Settings,
        code: Option<&str>,
        stopwatch: &Stopwatch,
    ) -> Result<(), AccountError> {
        let device = self.ctx.store.confirmed_device(me.user.id).await?;
        let has_keys = self.ctx.store.has_security_key(me.user.id).await?;
        if (device.is_none() && !has_keys) || self.proof_given(me) {
            return Ok(());
        }
        let Some(code) = code.map(str::trim).filter(|code| !code.is_empty()) else {
            return Err(AccountError::CodeRequired);
        };
        let gate = Gate::new(&self.ctx, settings, Self::origin(me));
        let Ok(attempt) = gate.reserve(&me.user).await? else {
            return Err(self.fail(stopwatch, settings).await);
        };
        let now = self.ctx.now();
        let outcome = match RecoveryCode::parse(code) {
            Ok(recovery) => gate
                .recovery_code(attempt, &me.user, &recovery, now)
                .await?
                .map(|_left| ()),
            Err(_) => match (gate.code(attempt, code).await?, &device) {
                (Ok((attempt, code)), Some(device)) => {
                    gate.device_code(attempt, device, &code, now).await?
                }
                // Keys only: the proof is one of the recovery codes.
                (Ok((attempt, _)), None) => Err(gate
                    .refuse_code(attempt, credentials::FailureReason::WrongRecoveryCode)
                    .await?),
                (Err(refused), _) => Err(refused),
            },
        };
        match outcome {
            Ok(()) => Ok(()),
            Err(_) => Err(self.fail(stopwatch, settings).await),
        }
    }

    /// Whether this session's sign-in is its proof (SPEC 15): a temporary access code
    /// from the service desk stood in for the lost device, less than [`SETUP_MINUTES`]
    /// ago. The code was the proof; asking for the lost device's code would leave the
    /// user no way to set up a new one.
    fn proof_given(&self, me: &Me) -> bool {
        me.session.authentication.temporary_access
            && self.ctx.now() < me.session.created_at.plus_seconds(SETUP_MINUTES * 60)
    }

    /// The generic failure, no sooner than Failure Delay after the request began.
    async fn fail(&self, stopwatch: &Stopwatch, settings: &Settings) -> AccountError {
        credentials::failure_delay(stopwatch, settings).await;
        AccountError::InvalidCredentials
    }

    /// "Set up now" / "Replace device": after fresh proof, a new pending device (methods
    /// allowed by Use 2FA). The old device keeps working until this one is confirmed.
    pub async fn begin_device(
        &self,
        token: &str,
        method: OtpMethod,
        prompt_mode: PromptMode,
        code: Option<&str>,
    ) -> Result<SetupInfo, AccountError> {
        let stopwatch = Stopwatch::start();
        let me = self.me(token).await?;
        let settings = self.ctx.store.settings().await?;
        if !settings.use_2fa().allows(method) {
            return Err(AccountError::MethodNotAllowed);
        }
        self.prove(&me, &settings, code, &stopwatch).await?;
        let device =
            devices::begin_pending(&self.ctx, &me.user, settings.use_2fa(), method, prompt_mode)
                .await?;
        // The proof was given in this session: only it may see and confirm the device.
        if !self
            .ctx
            .store
            .bind_pending_device(device.id, me.session.id)
            .await?
        {
            return Err(AccountError::NoPendingDevice);
        }
        let setup = devices::setup_info(&self.ctx, &me.user, &device);
        self.ctx
            .audit(
                AuditEvent::DeviceSetupStarted,
                Some(me.user.username.as_str()),
                Some(me.user.username.as_str()),
                Some(&me.session.client_ip),
                format!(
                    "on the account page: method={} prompt_mode={}",
                    method.as_str(),
                    prompt_mode.as_str()
                ),
            )
            .await?;
        Ok(setup)
    }

    /// The set-up page of the pending device again (after a wrong code), if this session
    /// started it within [`SETUP_MINUTES`].
    pub async fn pending_setup(&self, token: &str) -> Result<Option<SetupInfo>, AccountError> {
        let me = self.me(token).await?;
        let pending = self.pending_of_session(&me).await?;
        Ok(pending.map(|device| devices::setup_info(&self.ctx, &me.user, &device)))
    }

    /// The pending device this session started after fresh proof, within
    /// [`SETUP_MINUTES`]: not one an administrator, the sign-in flow or another session
    /// started, so that no session can take over 2-step verification without proof.
    async fn pending_of_session(&self, me: &Me) -> Result<Option<Device>, AccountError> {
        let since = self.ctx.now().plus_seconds(-SETUP_MINUTES * 60);
        Ok(self
            .ctx
            .store
            .pending_device_of_session(me.user.id, me.session.id, since)
            .await?)
    }

    /// Complete Setup: the new device's code confirms it, and it replaces the old one.
    /// A user without recovery codes left gets a first set, returned to be shown once
    /// (SPEC 10); one who has codes keeps them (empty answer).
    pub async fn confirm_device(
        &self,
        token: &str,
        code: &str,
    ) -> Result<Vec<RecoveryCode>, AccountError> {
        let me = self.me(token).await?;
        let code = OtpCode::parse(code.trim()).map_err(|_| AccountError::WrongSetupCode)?;
        let username = me.user.username.as_str().to_owned();
        let ip = me.session.client_ip.as_str();
        let pending = self
            .pending_of_session(&me)
            .await?
            .ok_or(AccountError::NoPendingDevice)?;
        devices::confirm_pending(&self.ctx, &me.user, pending, &code, &username, Some(ip)).await?;
        if recovery::left(&self.ctx, &me.user).await? > 0 {
            return Ok(Vec::new());
        }
        Ok(recovery::generate_set(&self.ctx, &me.user, &username, Some(ip)).await?)
    }

    /// "Generate new codes": after fresh proof, a new set of recovery codes replaces the
    /// old one. Without a confirmed device there is nothing to recover: refused.
    pub async fn regenerate_recovery_codes(
        &self,
        token: &str,
        code: Option<&str>,
    ) -> Result<Vec<RecoveryCode>, AccountError> {
        let stopwatch = Stopwatch::start();
        let me = self.me(token).await?;
        let has_keys = self.ctx.store.has_security_key(me.user.id).await?;
        if self.ctx.store.confirmed_device(me.user.id).await?.is_none() && !has_keys {
            return Err(AccountError::NoDevice);
        }
        let settings = self.ctx.store.settings().await?;
        self.prove(&me, &settings, code, &stopwatch).await?;
        let codes = recovery::generate_set(
            &self.ctx,
            &me.user,
            me.user.username.as_str(),
            Some(&me.session.client_ip),
        )
        .await?;
        Ok(codes)
    }

    /// Change password: the current one through the gate (a counted attempt), the new one
    /// checked, stored and audited.
    pub async fn change_password(
        &self,
        token: &str,
        current_password: &str,
        new_password: &str,
    ) -> Result<(), AccountError> {
        let stopwatch = Stopwatch::start();
        let me = self.me(token).await?;
        if me.user.source == UserSource::Directory {
            return Err(AccountError::DirectoryPassword);
        }
        let settings = self.ctx.store.settings().await?;
        let gate = Gate::new(&self.ctx, &settings, Self::origin(&me));
        let found = gate.find(me.user.username.as_str()).await?;
        let Ok((user, attempt)) = gate.password(found, current_password).await? else {
            return Err(self.fail(&stopwatch, &settings).await);
        };
        // The password was right: neither a failure nor a sign-in.
        attempt.released(&self.ctx).await?;
        let hash = passwords::choose(&self.ctx, &ChosenFor::Existing(&user), new_password)
            .await
            .map_err(|error| match error {
                PasswordChoiceError::Refused(problem) => AccountError::InvalidPassword(problem),
                other => AccountError::Internal(Box::new(other)),
            })?;
        self.ctx
            .store
            .set_password_hash(user.id, &hash, false, self.ctx.now())
            .await?;
        self.ctx
            .audit(
                AuditEvent::PasswordChanged,
                Some(user.username.as_str()),
                Some(user.username.as_str()),
                Some(&me.session.client_ip),
                "on the account page",
            )
            .await?;
        notify::security_logged(
            &self.ctx,
            &user,
            SecurityEvent::PasswordChanged,
            Some(&me.session.client_ip),
        )
        .await;
        // A new password often follows a suspicion: whoever knew the old one is signed out.
        self.end_other_sessions(&me, EndedBy::PasswordChange)
            .await?;
        Ok(())
    }

    /// "Sign out other sessions": every session of the user but this one ends.
    pub async fn sign_out_other_sessions(&self, token: &str) -> Result<u64, AccountError> {
        let me = self.me(token).await?;
        let ended = self.end_other_sessions(&me, EndedBy::SignOutOthers).await?;
        Ok(ended)
    }

    /// Ends every other session of the user, audited (always for "Sign out other
    /// sessions"; after a password change only when there were any).
    async fn end_other_sessions(&self, me: &Me, by: EndedBy) -> Result<u64, AccountError> {
        let ended = self
            .ctx
            .store
            .delete_other_sessions(me.user.id, me.session.id)
            .await?;
        let why = match by {
            EndedBy::SignOutOthers => "on the account page",
            EndedBy::PasswordChange => "with the password change",
        };
        if ended > 0 || by == EndedBy::SignOutOthers {
            self.ctx
                .audit(
                    AuditEvent::OtherSessionsEnded,
                    Some(me.user.username.as_str()),
                    Some(me.user.username.as_str()),
                    Some(&me.session.client_ip),
                    format!("{why}: {ended} ended"),
                )
                .await?;
        }
        Ok(ended)
    }
}
