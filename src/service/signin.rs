//! Signing in (SPEC sections 3, 4 and 9): the password step, then the steps the policy
//! asks for, each on a server-side transaction; sessions at the end.
//!
//! Shared by the HTML pages and the JSON API: both call these functions and translate
//! the outcome. Every failure of a credential (unknown user, wrong password, locked
//! account, wrong or expired code) gives the same [`SignInError::InvalidCredentials`], no
//! sooner than Failure Delay after the request began.

use rand::rngs::OsRng;

use super::credentials::{self, EmailedFor, FailureReason, Gate, Origin, Surface};
use super::devices::{self, SetupError, SetupInfo};
use super::emailed::{self, SendError};
use super::passwords::{self, ChosenFor, PasswordChoiceError};
use super::recovery;
use super::webauthn::{self, KeyError};

mod keys;
use super::{notify, Context};
use crate::clock::{Stopwatch, Timestamp};
use crate::crypto::Token;
use crate::domain::oidc::Authentication;
use crate::domain::{
    in_network, strictest_prompt_mode, AuditEvent, ClientAddress, OtpMethod, PasswordProblem,
    PendingStep, PromptMode, RecoveryCode, Role, SecurityEvent, Settings, TemporaryAccess,
    TemporaryAccessCode, TransactionKind, User,
};
use crate::domain::{Session, SessionLimits, SignInTransaction};
use crate::metrics::{OtpCheckMethod, SignInOutcome};
use crate::otp::OtpCode;
use crate::policy::{decide, demand_second_factor, SignInFacts};
use crate::store::StoreError;

/// A person signing in presents their own credentials: no actor, no surface prefix.
fn sign_in_origin(ip: &str) -> Origin<'_> {
    Origin {
        actor: None,
        ip,
        surface: Surface::SignIn,
    }
}

/// The live session of a token with its user and role (SPEC 15): used within the role's
/// `session_idle_minutes` (each use extends it) and before its end, the earlier of the
/// `expires_at` set at sign-in (from the role's `session_max_hours` then) and sign-in plus
/// the role's `session_max_hours` now, of an active user. So a stricter limit applies at
/// once to the sessions already open, a looser one from the next sign-in. A session past
/// either limit is deleted. The one rule of every surface: pages, the JSON API,
/// `/api/v1/authz` and the OpenID Connect provider reach sessions through here.
pub(in crate::service) async fn live_session(
    ctx: &Context,
    token: &str,
) -> Result<Option<(Session, User, Role)>, StoreError> {
    let Ok(token) = Token::parse(token) else {
        return Ok(None);
    };
    let now = ctx.now();
    let Some(session) = ctx.store.session(&token.hash(), now).await? else {
        return Ok(None);
    };
    let Some(user) = ctx.store.user_by_id(session.user_id).await? else {
        return Ok(None);
    };
    let role = ctx
        .store
        .role_by_id(user.role_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("user without role".into()))?;
    if now >= session_ends_at(&session, role.session_limits) {
        ctx.store.delete_session(session.id).await?;
        return Ok(None);
    }
    if !user.active {
        return Ok(None);
    }
    ctx.store.touch_session(session.id, now).await?;
    Ok(Some((session, user, role)))
}

/// When `session` ends under `limits` unless used again (SPEC 15): its idle end or its
/// absolute end, whichever is first. See [`live_session`].
pub(in crate::service) fn session_ends_at(session: &Session, limits: SessionLimits) -> Timestamp {
    let idle_until = session.last_seen_at.plus_seconds(limits.idle_seconds());
    let absolute = session
        .expires_at
        .min(session.created_at.plus_seconds(limits.max_seconds()));
    idle_until.min(absolute)
}

/// A credential presented to forward-auth.
#[derive(Clone, Copy)]
pub enum Credential<'a> {
    /// The session cookie of a browser.
    SessionCookie(&'a str),
    /// `Authorization: Bearer`: a session token, or an interface user's API token.
    Bearer(&'a str),
    /// `Authorization: Basic`: an interface user's username and password.
    Basic {
        username: &'a str,
        password: &'a str,
    },
}

impl std::fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens and passwords are never printed.
        match self {
            Self::SessionCookie(_) => f.write_str("SessionCookie([redacted])"),
            Self::Bearer(_) => f.write_str("Bearer([redacted])"),
            Self::Basic { username, .. } => write!(f, "Basic({username}, [redacted])"),
        }
    }
}

/// Which code the user is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtpKind {
    Device(OtpMethod),
    /// The device step of a user whose only devices are security keys (SPEC 14).
    SecurityKey,
    Email,
}

/// About the emailed code, for the Verify page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailNotice {
    /// `j***@example.org`.
    pub masked_to: String,
    /// No code was sent for this transaction yet because of OTP Request Delay Seconds:
    /// "Send a new code" works in this many seconds.
    pub resend_after: Option<i64>,
}

/// Where a sign-in stands.
#[derive(Clone, Debug)]
pub enum SignInStatus {
    /// Done: a new session. `recovery_codes_left`: how many recovery codes are left, when
    /// one was used for this sign-in (SPEC 10); `recovery_codes`: the first set, shown
    /// once, when enrollment completed at this sign-in (empty otherwise);
    /// `temporary_access`: the temporary access code as it is now, when one stood in for
    /// the second factor (SPEC 15: the user is offered to set up a new device).
    SignedIn {
        session: Token,
        user: User,
        recovery_codes_left: Option<u32>,
        recovery_codes: Vec<RecoveryCode>,
        temporary_access: Option<TemporaryAccess>,
    },
    /// Enter a code.
    OtpRequired {
        kind: OtpKind,
        transaction: Token,
        email: Option<EmailNotice>,
        /// At the device step: the user's security keys answer it too (SPEC 14).
        security_keys: bool,
    },
    /// Set up a device (methods allowed by Use 2FA, and a security key when
    /// `security_keys`); `required: false` offers "Set up later".
    Enroll {
        required: bool,
        methods: Vec<OtpMethod>,
        security_keys: bool,
        transaction: Token,
    },
    /// Choose a new password (the bootstrap password must be replaced).
    ChangePassword { transaction: Token },
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Unknown user, wrong password, locked or inactive account, wrong or expired code:
    /// one answer for all.
    #[error("the username, password or code is not correct")]
    InvalidCredentials,
    #[error("the sign-in has expired; enter your username and password again")]
    TransactionExpired,
    #[error("a new code can be requested in {retry_after} seconds")]
    RequestDelay { retry_after: i64 },
    #[error(
        "a code must be emailed, but there is no email address on file; contact an administrator"
    )]
    EmailMissing,
    #[error("2-step verification must be set up to continue")]
    EnrollmentRequired,
    #[error("this step is not the current one")]
    WrongStep,
    #[error("this method is not offered")]
    MethodNotAllowed,
    #[error("the code does not match; enter the code your app shows now")]
    WrongSetupCode,
    #[error("{0}")]
    InvalidPassword(PasswordProblem),
    /// The directory could not check the password (SPEC 12): 503, not the user's failure.
    #[error("sign-in is unavailable right now")]
    DirectoryUnavailable,
    /// The directory's password is expired or must be changed there first (SPEC 12).
    #[error("{0}")]
    DirectoryPassword(&'static str),
    /// A security key could not be set up (SPEC 14): not offered, too many, already
    /// registered, no PIN, an answer that does not verify.
    #[error("{0}")]
    SecurityKey(KeyError),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<KeyError> for SignInError {
    fn from(error: KeyError) -> Self {
        match error {
            KeyError::Store(store) => store.into(),
            other => Self::SecurityKey(other),
        }
    }
}

impl From<StoreError> for SignInError {
    fn from(error: StoreError) -> Self {
        Self::Internal(Box::new(error))
    }
}

impl From<SendError> for SignInError {
    fn from(error: SendError) -> Self {
        match error {
            SendError::EmailMissing => Self::EmailMissing,
            other => Self::Internal(Box::new(other)),
        }
    }
}

impl From<SetupError> for SignInError {
    fn from(error: SetupError) -> Self {
        match error {
            SetupError::MethodNotAllowed => Self::MethodNotAllowed,
            SetupError::NoPendingDevice | SetupError::WrongCode => Self::WrongSetupCode,
            SetupError::Store(store) => store.into(),
        }
    }
}

type SignInResult = Result<SignInStatus, SignInError>;

/// What the sign-in pages show whatever happened ([`SignIn::page_notes`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageNotes {
    /// The Help Text setting: plain text, maybe with line breaks; empty when not set.
    pub help_text: String,
    /// Lockout Minutes (0: until an administrator unlocks).
    pub lockout_minutes: u32,
}

/// A live transaction with its user, as each step loads it.
struct Live {
    token: Token,
    record: SignInTransaction,
    steps: Vec<PendingStep>,
    user: User,
    /// This request's code step was passed with a temporary access code (SPEC 15): a
    /// session made now records it.
    temporary_access: bool,
}

/// The sign-in service.
#[derive(Clone)]
pub struct SignIn {
    ctx: Context,
}

impl SignIn {
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }

    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// The password step. `client_ip` is the resolved client address (see the web
    /// layer's trusted-proxy rule); an unknown one is never in network.
    pub async fn password(
        &self,
        username: &str,
        password: &str,
        client_ip: ClientAddress,
    ) -> SignInResult {
        self.password_for(username, password, client_ip, false)
            .await
    }

    /// [`password`](Self::password) for an application that requires a second factor
    /// (SPEC 13's `require_2fa`) when `second_factor_required`: an OTP step is added where
    /// the policy asks for none ([`demand_second_factor`]).
    pub async fn password_for(
        &self,
        username: &str,
        password: &str,
        client_ip: ClientAddress,
        second_factor_required: bool,
    ) -> SignInResult {
        let stopwatch = Stopwatch::start();
        let settings = self.ctx.store.settings().await?;
        let ip = client_ip.to_string();
        let user = self
            .check_password(username, password, &ip, &stopwatch, &settings)
            .await?;
        let now = self.ctx.now();

        let role = self.role_of(&user).await?;
        let device = self.ctx.store.confirmed_device(user.id).await?;
        let keys = self.usable_keys(&user, &settings).await?;
        let rules: Vec<_> = self
            .ctx
            .store
            .ip_rules()
            .await?
            .into_iter()
            .map(|r| r.rule)
            .collect();
        let facts = SignInFacts {
            role: role.security,
            // SPEC 14: the app device or any key, the strictest prompt mode applying.
            device: strictest_prompt_mode(
                device.as_ref().map(|d| d.prompt_mode),
                keys.iter().copied(),
            ),
            in_network: in_network(settings.bypass_enabled(), client_ip, &rules),
        };
        let decision = decide(facts);
        let has_device = device.is_some() || !keys.is_empty();
        let decided = match second_factor_required {
            true => demand_second_factor(decision.steps, has_device, user.email.is_some()),
            false => decision.steps.to_vec(),
        };
        let mut steps: Vec<PendingStep> = decided.into_iter().map(PendingStep::from).collect();
        if user.must_change_password {
            // After the codes (identity proven), before enrollment (a known bootstrap
            // password is replaced before anything else is set up).
            let at = steps
                .iter()
                .position(|step| matches!(step, PendingStep::Enroll { .. }))
                .unwrap_or(steps.len());
            steps.insert(at, PendingStep::ChangePassword);
        }
        tracing::debug!(row = decision.row, "sign-in decision");
        if steps.is_empty() {
            return self
                .finish(&user, &ip, false, &format!("row={}", decision.row))
                .await;
        }
        if steps.first() == Some(&PendingStep::EmailOtp) && user.email.is_none() {
            self.audit_failure(Some(&user), &ip, FailureReason::EmailMissing)
                .await?;
            self.ctx.metrics.signin(SignInOutcome::EmailMissing);
            return Err(SignInError::EmailMissing);
        }
        let token = Token::generate(&mut OsRng);
        let expires_at = now.plus_seconds(i64::from(settings.otp_csrf_valid_minutes()) * 60);
        let record = self
            .ctx
            .store
            .create_signin_transaction(
                &token.hash(),
                user.id,
                &TransactionKind::SignIn(steps.clone()),
                &ip,
                now,
                expires_at,
            )
            .await?;
        let live = Live {
            token,
            record,
            steps,
            user,
            temporary_access: false,
        };
        if live.steps.first() == Some(&PendingStep::EmailOtp) {
            return self.send_and_ask(live, &settings).await;
        }
        self.status_of(live, &settings).await
    }

    /// The password check shared by the password step and HTTP Basic at forward-auth
    /// ([`Gate::password`]): the user if the password is right and the
    /// account may sign in (the attempt given back: a right password alone is not yet a
    /// success); otherwise a counted or audited failure, answered after Failure Delay.
    async fn check_password(
        &self,
        username: &str,
        password: &str,
        ip: &str,
        stopwatch: &Stopwatch,
        settings: &Settings,
    ) -> Result<User, SignInError> {
        let gate = Gate::new(&self.ctx, settings, sign_in_origin(ip));
        let found = gate.find(username).await?;
        match gate.password(found, password).await? {
            Ok((user, attempt)) => {
                attempt.released(&self.ctx).await?;
                Ok(user)
            }
            Err(refused) if refused.directory_unavailable() => {
                self.ctx.metrics.signin(SignInOutcome::Failed);
                Err(SignInError::DirectoryUnavailable)
            }
            Err(refused) => {
                let error = self.fail(stopwatch, settings).await;
                Err(match refused.own_message() {
                    Some(message) => SignInError::DirectoryPassword(message),
                    None => error,
                })
            }
        }
    }

    /// Loads the live transaction of `token`; anything else is "expired".
    async fn live(&self, token: &str) -> Result<Live, SignInError> {
        let token = Token::parse(token).map_err(|_| SignInError::TransactionExpired)?;
        let record = self
            .ctx
            .store
            .signin_transaction(&token.hash(), self.ctx.now())
            .await?
            .ok_or(SignInError::TransactionExpired)?;
        // A second-factor challenge's token never continues a sign-in.
        let TransactionKind::SignIn(steps) = record.kind.clone() else {
            return Err(SignInError::TransactionExpired);
        };
        let user = self
            .ctx
            .store
            .user_by_id(record.user_id)
            .await?
            .ok_or(SignInError::TransactionExpired)?;
        Ok(Live {
            token,
            record,
            steps,
            user,
            temporary_access: false,
        })
    }

    /// The status of a transaction's current step (for showing a page again).
    pub async fn status(&self, token: &str) -> SignInResult {
        let live = self.live(token).await?;
        let settings = self.ctx.store.settings().await?;
        self.status_of(live, &settings).await
    }

    async fn status_of(&self, live: Live, settings: &Settings) -> SignInResult {
        Ok(match live.steps.first().copied() {
            None => {
                let second_factor = live.record.second_factor;
                return self
                    .finish(&live.user, &live.record.client_ip, second_factor, "")
                    .await;
            }
            Some(PendingStep::DeviceOtp) => {
                let method = self
                    .ctx
                    .store
                    .confirmed_device(live.user.id)
                    .await?
                    .map(|d| d.method());
                let security_keys = !self.usable_keys(&live.user, settings).await?.is_empty();
                let kind = match (method, security_keys) {
                    (Some(method), _) => OtpKind::Device(method),
                    (None, true) => OtpKind::SecurityKey,
                    (None, false) => OtpKind::Device(OtpMethod::Totp),
                };
                SignInStatus::OtpRequired {
                    kind,
                    transaction: live.token,
                    email: None,
                    security_keys,
                }
            }
            Some(PendingStep::EmailOtp) => {
                let masked_to = live
                    .user
                    .email
                    .as_ref()
                    .map(|e| e.masked())
                    .unwrap_or_default();
                SignInStatus::OtpRequired {
                    kind: OtpKind::Email,
                    transaction: live.token,
                    email: Some(EmailNotice {
                        masked_to,
                        resend_after: None,
                    }),
                    security_keys: false,
                }
            }
            Some(PendingStep::Enroll { required }) => SignInStatus::Enroll {
                required,
                methods: settings.use_2fa().methods().to_vec(),
                security_keys: webauthn::offered(&self.ctx, settings)
                    && !self.role_of(&live.user).await?.security.interface(),
                transaction: live.token,
            },
            Some(PendingStep::ChangePassword) => SignInStatus::ChangePassword {
                transaction: live.token,
            },
        })
    }

    /// Sends the emailed code of a new transaction (or says when one can be requested).
    async fn send_and_ask(&self, live: Live, settings: &Settings) -> SignInResult {
        let masked_to = live
            .user
            .email
            .as_ref()
            .map(|e| e.masked())
            .unwrap_or_default();
        let sent = emailed::send(
            &self.ctx,
            &live.user,
            Some(live.record.id),
            settings,
            Some(&live.record.client_ip),
        )
        .await?;
        let resend_after = sent.err().map(|delay| delay.retry_after);
        Ok(SignInStatus::OtpRequired {
            kind: OtpKind::Email,
            transaction: live.token,
            email: Some(EmailNotice {
                masked_to,
                resend_after,
            }),
            security_keys: false,
        })
    }

    /// "Send a new code".
    pub async fn resend(&self, token: &str) -> Result<EmailNotice, SignInError> {
        let live = self.live(token).await?;
        if live.steps.first() != Some(&PendingStep::EmailOtp) {
            return Err(SignInError::WrongStep);
        }
        if !credentials::usable(&live.user, self.ctx.now()) {
            // A locked account gets no more codes.
            return Err(SignInError::InvalidCredentials);
        }
        let settings = self.ctx.store.settings().await?;
        match emailed::send(
            &self.ctx,
            &live.user,
            Some(live.record.id),
            &settings,
            Some(&live.record.client_ip),
        )
        .await?
        {
            Ok(sent) => Ok(EmailNotice {
                masked_to: sent.masked_to,
                resend_after: None,
            }),
            Err(delay) => Err(SignInError::RequestDelay {
                retry_after: delay.retry_after,
            }),
        }
    }

    /// Whether the current emailed code is still being delivered after a failed attempt.
    pub async fn still_sending(&self, token: &str) -> Result<bool, SignInError> {
        let live = self.live(token).await?;
        Ok(emailed::still_sending(&self.ctx, live.record.id).await?)
    }

    /// The code step (device or emailed).
    pub async fn otp(&self, token: &str, code: &str) -> SignInResult {
        let stopwatch = Stopwatch::start();
        let live = match self.live(token).await {
            Err(SignInError::TransactionExpired) => {
                self.ctx.metrics.signin(SignInOutcome::Expired);
                return Err(SignInError::TransactionExpired);
            }
            other => other?,
        };
        let settings = self.ctx.store.settings().await?;
        let step = live.steps.first().copied();
        if !matches!(step, Some(PendingStep::EmailOtp | PendingStep::DeviceOtp)) {
            return Err(SignInError::WrongStep);
        }
        let now = self.ctx.now();
        let ip = live.record.client_ip.clone();
        let gate = Gate::new(&self.ctx, &settings, sign_in_origin(&ip));
        let user = &live.user;
        let Ok(attempt) = gate.reserve_code(user).await? else {
            return Err(self.fail(&stopwatch, &settings).await);
        };
        // A temporary access code from the service desk stands in for the second factor
        // at either code step (SPEC 15), under the same attempt; no device, emailed or
        // recovery code parses as one.
        if let Ok(access_code) = TemporaryAccessCode::parse(code) {
            let outcome = gate
                .temporary_access(attempt, user, &access_code, now)
                .await?;
            self.ctx
                .metrics
                .otp_check(OtpCheckMethod::TemporaryAccess, outcome.is_ok());
            let Ok(access) = outcome else {
                return Err(self.fail(&stopwatch, &settings).await);
            };
            let live = Live {
                temporary_access: true,
                ..live
            };
            return match self.advance(live, &settings, true).await? {
                SignInStatus::SignedIn {
                    session,
                    user,
                    recovery_codes_left,
                    recovery_codes,
                    ..
                } => Ok(SignInStatus::SignedIn {
                    session,
                    user,
                    recovery_codes_left,
                    recovery_codes,
                    temporary_access: Some(access),
                }),
                other => Ok(other),
            };
        }
        // A recovery code where the device code is asked (SPEC 10), under the same
        // attempt; a device code never parses as one.
        if let (Some(PendingStep::DeviceOtp), Ok(recovery)) = (step, RecoveryCode::parse(code)) {
            let outcome = gate.recovery_code(attempt, user, &recovery, now).await?;
            self.ctx
                .metrics
                .otp_check(OtpCheckMethod::Recovery, outcome.is_ok());
            let Ok(left) = outcome else {
                return Err(self.fail(&stopwatch, &settings).await);
            };
            return match self.advance(live, &settings, true).await? {
                SignInStatus::SignedIn {
                    session,
                    user,
                    recovery_codes,
                    ..
                } => Ok(SignInStatus::SignedIn {
                    session,
                    user,
                    recovery_codes_left: Some(left),
                    recovery_codes,
                    temporary_access: None,
                }),
                other => Ok(other),
            };
        }
        let Ok((attempt, code)) = gate.code(attempt, code).await? else {
            return Err(self.fail(&stopwatch, &settings).await);
        };
        let (method, outcome) = match step {
            Some(PendingStep::DeviceOtp) => match self.ctx.store.confirmed_device(user.id).await? {
                Some(device) => (
                    device.method().into(),
                    gate.device_code(attempt, &device, &code, now).await?,
                ),
                None => (
                    OtpCheckMethod::Totp,
                    Err(gate
                        .refuse_code(attempt, FailureReason::DeviceRemovedDuringSignIn)
                        .await?),
                ),
            },
            _ => {
                let of = EmailedFor::SignIn {
                    transaction: live.record.id,
                };
                let outcome = gate.emailed_code(attempt, user, of, &code, now).await?;
                (OtpCheckMethod::Email, outcome)
            }
        };
        self.ctx.metrics.otp_check(method, outcome.is_ok());
        if outcome.is_err() {
            return Err(self.fail(&stopwatch, &settings).await);
        }
        self.advance(live, &settings, true).await
    }

    /// Removes the current step and shows the next; the conditional update makes sure
    /// that of two requests finishing the same step, only one moves on. `second_factor`:
    /// the step was passed with a code (a device, emailed or recovery code, or a new
    /// device's first code), which the session will record.
    async fn advance(
        &self,
        mut live: Live,
        settings: &Settings,
        second_factor: bool,
    ) -> SignInResult {
        let before = TransactionKind::SignIn(live.steps.clone());
        live.steps.remove(0);
        let after = TransactionKind::SignIn(live.steps.clone());
        if !self
            .ctx
            .store
            .advance_signin_transaction(live.record.id, &before, &after, second_factor)
            .await?
        {
            return Err(SignInError::TransactionExpired);
        }
        live.record.kind = after;
        live.record.second_factor |= second_factor;
        if live.steps.is_empty() {
            if !self
                .ctx
                .store
                .delete_signin_transaction(live.record.id)
                .await?
            {
                return Err(SignInError::TransactionExpired);
            }
            let how = Authentication {
                password: true,
                otp: live.record.second_factor,
                hardware_key: false,
                temporary_access: live.temporary_access,
            };
            return self
                .finish_as(&live.user, &live.record.client_ip, how, "")
                .await;
        }
        self.status_of(live, settings).await
    }

    /// Create (at sign-in): starts setting up a device of `method`.
    pub async fn enroll(
        &self,
        token: &str,
        method: OtpMethod,
        prompt_mode: PromptMode,
    ) -> Result<SetupInfo, SignInError> {
        let live = self.live(token).await?;
        if !matches!(live.steps.first(), Some(PendingStep::Enroll { .. })) {
            return Err(SignInError::WrongStep);
        }
        let settings = self.ctx.store.settings().await?;
        Ok(devices::begin_setup(
            &self.ctx,
            &live.user,
            settings.use_2fa(),
            method,
            prompt_mode,
        )
        .await?)
    }

    /// The set-up page of the pending device (after a wrong code).
    pub async fn pending_setup(&self, token: &str) -> Result<Option<SetupInfo>, SignInError> {
        let live = self.live(token).await?;
        let pending = self.ctx.store.pending_device(live.user.id).await?;
        Ok(pending.map(|device| devices::setup_info(&self.ctx, &live.user, &device)))
    }

    /// Complete Setup (at sign-in).
    pub async fn enroll_confirm(&self, token: &str, code: &str) -> SignInResult {
        let live = self.live(token).await?;
        if !matches!(live.steps.first(), Some(PendingStep::Enroll { .. })) {
            return Err(SignInError::WrongStep);
        }
        let code = OtpCode::parse(code).map_err(|_| SignInError::WrongSetupCode)?;
        let username = live.user.username.as_str().to_owned();
        devices::complete_setup(
            &self.ctx,
            &live.user,
            &code,
            &username,
            Some(&live.record.client_ip),
        )
        .await?;
        let settings = self.ctx.store.settings().await?;
        self.advance_enrolled(live, &settings).await
    }

    /// The user's temporary access code as it is now, when it is still live (SPEC 15):
    /// the signed-in page after such a sign-in says how long and how often it works.
    pub async fn temporary_access(
        &self,
        user: &User,
    ) -> Result<Option<TemporaryAccess>, SignInError> {
        let now = self.ctx.now();
        Ok(self
            .ctx
            .store
            .temporary_access(user.id)
            .await?
            .filter(|access| access.live(now)))
    }

    /// How many recovery codes `user` has left (the signed-in page after a recovery code).
    pub async fn recovery_codes_left(&self, user: &User) -> Result<u32, SignInError> {
        Ok(recovery::left(&self.ctx, user).await?)
    }

    /// "Set up later": only when enrollment is not required.
    pub async fn enroll_skip(&self, token: &str) -> SignInResult {
        let live = self.live(token).await?;
        match live.steps.first() {
            Some(PendingStep::Enroll { required: false }) => {
                let settings = self.ctx.store.settings().await?;
                self.advance(live, &settings, false).await
            }
            Some(PendingStep::Enroll { required: true }) => Err(SignInError::EnrollmentRequired),
            _ => Err(SignInError::WrongStep),
        }
    }

    /// The forced change of a bootstrap password.
    pub async fn change_password(&self, token: &str, new_password: &str) -> SignInResult {
        let live = self.live(token).await?;
        if live.steps.first() != Some(&PendingStep::ChangePassword) {
            return Err(SignInError::WrongStep);
        }
        let hash = passwords::choose(&self.ctx, &ChosenFor::Existing(&live.user), new_password)
            .await
            .map_err(|error| match error {
                PasswordChoiceError::Refused(problem) => SignInError::InvalidPassword(problem),
                other => SignInError::Internal(Box::new(other)),
            })?;
        self.ctx
            .store
            .set_password_hash(live.user.id, &hash, false, self.ctx.now())
            .await?;
        self.ctx
            .audit(
                AuditEvent::PasswordChanged,
                Some(live.user.username.as_str()),
                Some(live.user.username.as_str()),
                Some(&live.record.client_ip),
                "at sign-in",
            )
            .await?;
        notify::security_logged(
            &self.ctx,
            &live.user,
            SecurityEvent::PasswordChanged,
            Some(&live.record.client_ip),
        )
        .await;
        let settings = self.ctx.store.settings().await?;
        self.advance(live, &settings, false).await
    }

    /// All steps done: the failure count starts again, and a new session begins (a new
    /// id at every sign-in), recording whether a second factor was passed.
    async fn finish(
        &self,
        user: &User,
        ip: &str,
        second_factor: bool,
        detail: &str,
    ) -> SignInResult {
        let how = Authentication {
            password: true,
            otp: second_factor,
            hardware_key: false,
            temporary_access: false,
        };
        self.finish_as(user, ip, how, detail).await
    }

    /// [`finish`](Self::finish) of a sign-in that proved `how`.
    async fn finish_as(
        &self,
        user: &User,
        ip: &str,
        how: Authentication,
        detail: &str,
    ) -> SignInResult {
        self.ctx.metrics.signin(SignInOutcome::SignedIn);
        let now = self.ctx.now();
        credentials::record_success(&self.ctx, user).await?;
        let session = Token::generate(&mut OsRng);
        // SPEC 15: the session's end is the role's `session_max_hours` from now.
        let limits = self.role_of(user).await?.session_limits;
        self.ctx
            .store
            .create_session(
                &session.hash(),
                user.id,
                ip,
                how,
                now,
                now.plus_seconds(limits.max_seconds()),
            )
            .await?;
        self.ctx
            .audit(
                AuditEvent::SignInSucceeded,
                None,
                Some(user.username.as_str()),
                Some(ip),
                detail,
            )
            .await?;
        Ok(SignInStatus::SignedIn {
            session,
            user: user.clone(),
            recovery_codes_left: None,
            recovery_codes: Vec::new(),
            temporary_access: None,
        })
    }

    async fn role_of(&self, user: &User) -> Result<Role, SignInError> {
        self.ctx
            .store
            .role_by_id(user.role_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("user without role".into()).into())
    }

    async fn audit_failure(
        &self,
        user: Option<&User>,
        ip: &str,
        reason: FailureReason,
    ) -> Result<(), StoreError> {
        credentials::audit_failure(&self.ctx, user, sign_in_origin(ip), reason).await
    }

    /// The generic failure, no sooner than Failure Delay after the request began.
    async fn fail(&self, stopwatch: &Stopwatch, settings: &Settings) -> SignInError {
        self.ctx.metrics.signin(SignInOutcome::Failed);
        credentials::failure_delay(stopwatch, settings).await;
        SignInError::InvalidCredentials
    }

    /// The user of a session token, if the session is live under the role's limits
    /// (SPEC 15, [`live_session`]; each use extends the idle limit).
    pub async fn session_user(&self, token: &str) -> Result<Option<(User, Role)>, SignInError> {
        Ok(live_session(&self.ctx, token)
            .await?
            .map(|(_, user, role)| (user, role)))
    }

    /// Whether `user` has a confirmed device: "2 Step Verification: Enabled".
    pub async fn two_step_enabled(&self, user: &User) -> Result<bool, SignInError> {
        Ok(self.ctx.store.confirmed_device(user.id).await?.is_some()
            || self.ctx.store.has_security_key(user.id).await?)
    }

    /// Forward-auth (`/api/v1/authz`): who presents `credential`. A person is known by a
    /// session (cookie or Bearer), which only a complete sign-in with every step creates;
    /// an interface user (SPEC: a service account, never asked for an OTP) by an API
    /// token or HTTP Basic. A person's password alone is never enough, whatever the role.
    pub async fn authorize(
        &self,
        credential: Credential<'_>,
        client_ip: ClientAddress,
    ) -> Result<(User, Role), SignInError> {
        match credential {
            Credential::SessionCookie(token) => self
                .session_user(token)
                .await?
                .ok_or(SignInError::InvalidCredentials),
            Credential::Bearer(token) => {
                if let Some(found) = self.session_user(token).await? {
                    return Ok(found);
                }
                self.interface_token_user(token)
                    .await?
                    .ok_or(SignInError::InvalidCredentials)
            }
            Credential::Basic { username, password } => {
                self.interface_password(username, password, client_ip).await
            }
        }
    }

    /// The interface user of an API token (a person's API token does not pass).
    async fn interface_token_user(&self, token: &str) -> Result<Option<(User, Role)>, SignInError> {
        let Ok(token) = Token::parse(token) else {
            return Ok(None);
        };
        let Some(user_id) = self.ctx.store.api_token_user(&token.hash()).await? else {
            return Ok(None);
        };
        let Some(user) = self.ctx.store.user_by_id(user_id).await? else {
            return Ok(None);
        };
        if !credentials::usable(&user, self.ctx.now()) {
            return Ok(None);
        }
        let role = self.role_of(&user).await?;
        Ok(role.security.interface().then_some((user, role)))
    }

    /// HTTP Basic: the password check of the sign-in (lockout, Failure Delay, audit), then
    /// SPEC section 3 row 1 (an interface role signs in without any step). A person's
    /// account is refused with the same answer, even with the right password: their
    /// role may ask for an OTP, which Basic cannot carry. That refusal is audited but not
    /// counted toward lockout (the password was right).
    async fn interface_password(
        &self,
        username: &str,
        password: &str,
        client_ip: ClientAddress,
    ) -> Result<(User, Role), SignInError> {
        let stopwatch = Stopwatch::start();
        let settings = self.ctx.store.settings().await?;
        let ip = client_ip.to_string();
        let user = self
            .check_password(username, password, &ip, &stopwatch, &settings)
            .await?;
        let role = self.role_of(&user).await?;
        if !role.security.interface() {
            self.audit_failure(Some(&user), &ip, FailureReason::NotInterfaceUser)
                .await?;
            return Err(self.fail(&stopwatch, &settings).await);
        }
        credentials::record_success(&self.ctx, &user).await?;
        self.ctx
            .audit(
                AuditEvent::SignInSucceeded,
                None,
                Some(user.username.as_str()),
                Some(&ip),
                "interface user, HTTP Basic (forward-auth)",
            )
            .await?;
        Ok((user, role))
    }

    /// What every sign-in page tells everyone alike (SPEC section 11): the Help Text, and
    /// Lockout Minutes for the lockout hint, which is shown on every failure so that it
    /// reveals nothing about an account.
    pub async fn page_notes(&self) -> Result<PageNotes, SignInError> {
        let settings = self.ctx.store.settings().await?;
        Ok(PageNotes {
            help_text: settings.help_text().to_owned(),
            lockout_minutes: settings.lockout_minutes(),
        })
    }

    /// "Cancel and sign out": the sign-in transaction of `token` ends (an expired or
    /// unknown one is already gone), so that its token no longer continues.
    pub async fn cancel(&self, token: &str) -> Result<(), SignInError> {
        match self.live(token).await {
            Ok(live) => {
                self.ctx
                    .store
                    .delete_signin_transaction(live.record.id)
                    .await?;
                Ok(())
            }
            Err(SignInError::TransactionExpired) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Sign out: the session ends.
    pub async fn sign_out(&self, token: &str) -> Result<(), SignInError> {
        let Ok(token) = Token::parse(token) else {
            return Ok(());
        };
        if let Some(session) = self
            .ctx
            .store
            .session(&token.hash(), self.ctx.now())
            .await?
        {
            self.ctx.store.delete_session(session.id).await?;
        }
        Ok(())
    }
}
