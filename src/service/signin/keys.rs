//! The sign-in steps of security keys and passkeys (SPEC 14): the device step answered
//! by a key, a key set up at the enroll step, and "Sign in with a passkey". Each goes
//! through the same transaction, gate and session as the codes of the parent module.

use super::{sign_in_origin, Live, SignIn, SignInError, SignInResult, SignInStatus};
use crate::clock::Stopwatch;
use crate::crypto::Token;
use crate::domain::oidc::Authentication;
use crate::domain::{
    AuditEvent, ClientAddress, KeyName, PendingStep, PromptMode, SecurityEvent, Settings, User,
};
use crate::metrics::{OtpCheckMethod, SignInOutcome};
use crate::service::credentials::{FailureReason, Gate};
use crate::service::webauthn::{self, KeyError};
use crate::service::{notify, recovery};
use crate::store::ChallengeOwner;

impl SignIn {
    /// Whether security keys and passkeys are offered (the setting, and a relying party).
    pub async fn security_keys_offered(&self) -> Result<bool, SignInError> {
        let settings = self.ctx.store.settings().await?;
        Ok(webauthn::offered(&self.ctx, &settings))
    }

    /// The prompt modes of `user`'s security keys, when keys are offered (SPEC 14: with
    /// the setting off, or without a relying party, keys do not count).
    pub(super) async fn usable_keys(
        &self,
        user: &User,
        settings: &Settings,
    ) -> Result<Vec<PromptMode>, SignInError> {
        if !webauthn::offered(&self.ctx, settings) {
            return Ok(Vec::new());
        }
        Ok(self
            .ctx
            .store
            .security_keys(user.id)
            .await?
            .into_iter()
            .map(|stored| stored.key.prompt_mode)
            .collect())
    }

    /// The device step's options for the user's security keys
    /// (`PublicKeyCredentialRequestOptions`, JSON form): a new challenge bound to the
    /// transaction, replacing any earlier one.
    pub async fn key_options(&self, token: &str) -> Result<serde_json::Value, SignInError> {
        let live = self.live(token).await?;
        if live.steps.first() != Some(&PendingStep::DeviceOtp) {
            return Err(SignInError::WrongStep);
        }
        let settings = self.ctx.store.settings().await?;
        webauthn::assertion_options(
            &self.ctx,
            &settings,
            &live.user,
            ChallengeOwner::Transaction(live.record.id),
            live.record.expires_at,
        )
        .await?
        .ok_or(SignInError::SecurityKey(KeyError::NotOffered))
    }

    /// The device step answered by a security key: `credential` is the browser's
    /// AuthenticationResponseJSON. Counted like a code: the attempt is reserved first,
    /// and any refusal is the generic failure (SPEC 14).
    pub async fn security_key(&self, token: &str, credential: &str) -> SignInResult {
        let stopwatch = Stopwatch::start();
        let live = match self.live(token).await {
            Err(SignInError::TransactionExpired) => {
                self.ctx.metrics.signin(SignInOutcome::Expired);
                return Err(SignInError::TransactionExpired);
            }
            other => other?,
        };
        if live.steps.first() != Some(&PendingStep::DeviceOtp) {
            return Err(SignInError::WrongStep);
        }
        let settings = self.ctx.store.settings().await?;
        let ip = live.record.client_ip.clone();
        let gate = Gate::new(&self.ctx, &settings, sign_in_origin(&ip));
        let Ok(attempt) = gate.reserve_code(&live.user).await? else {
            return Err(self.fail(&stopwatch, &settings).await);
        };
        let checked = webauthn::check_assertion(
            &self.ctx,
            &settings,
            &live.user,
            ChallengeOwner::Transaction(live.record.id),
            credential,
        )
        .await?;
        let outcome = gate.security_key(attempt, checked).await?;
        self.ctx
            .metrics
            .otp_check(OtpCheckMethod::SecurityKey, outcome.is_ok());
        if outcome.is_err() {
            return Err(self.fail(&stopwatch, &settings).await);
        }
        self.advance(live, &settings, true).await
    }

    /// Create with method `webauthn` (at sign-in): the options of a new key's
    /// registration (`PublicKeyCredentialCreationOptions`, JSON form), bound to the
    /// transaction.
    pub async fn enroll_key(
        &self,
        token: &str,
        prompt_mode: PromptMode,
    ) -> Result<serde_json::Value, SignInError> {
        let live = self.live(token).await?;
        if !matches!(live.steps.first(), Some(PendingStep::Enroll { .. })) {
            return Err(SignInError::WrongStep);
        }
        let settings = self.ctx.store.settings().await?;
        let role = self.role_of(&live.user).await?;
        Ok(webauthn::registration_options(
            &self.ctx,
            &settings,
            &live.user,
            role.security.interface(),
            ChallengeOwner::Transaction(live.record.id),
            prompt_mode,
            live.record.expires_at,
        )
        .await?)
    }

    /// Complete Setup of a security key (at sign-in): the browser's
    /// RegistrationResponseJSON registers the key (its user verification is the second
    /// factor), and the sign-in goes on, with a first set of recovery codes.
    pub async fn enroll_key_confirm(
        &self,
        token: &str,
        credential: &str,
        name: Option<&str>,
    ) -> SignInResult {
        let live = self.live(token).await?;
        if !matches!(live.steps.first(), Some(PendingStep::Enroll { .. })) {
            return Err(SignInError::WrongStep);
        }
        let name = name
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(KeyName::parse)
            .transpose()
            .map_err(|_| SignInError::SecurityKey(KeyError::Invalid))?;
        let settings = self.ctx.store.settings().await?;
        let key = webauthn::register(
            &self.ctx,
            &settings,
            &live.user,
            ChallengeOwner::Transaction(live.record.id),
            credential,
            name,
        )
        .await?;
        let username = live.user.username.as_str().to_owned();
        let ip = live.record.client_ip.clone();
        self.ctx
            .audit(
                AuditEvent::SecurityKeyAdded,
                Some(&username),
                Some(&username),
                Some(&ip),
                format!(
                    "at sign-in: name={} prompt_mode={} passkey={}",
                    key.name.as_str(),
                    key.prompt_mode.as_str(),
                    key.discoverable
                ),
            )
            .await?;
        notify::security_logged(&self.ctx, &live.user, SecurityEvent::KeyAdded, Some(&ip)).await;
        self.advance_enrolled(live, &settings).await
    }

    /// Enrollment completed (an app or a key): the step is passed with a second factor,
    /// and when that completes the sign-in, a first set of recovery codes is made, to be
    /// shown once.
    pub(super) async fn advance_enrolled(&self, live: Live, settings: &Settings) -> SignInResult {
        let user = live.user.clone();
        let ip = live.record.client_ip.clone();
        match self.advance(live, settings, true).await? {
            SignInStatus::SignedIn {
                session,
                user: signed_in,
                recovery_codes_left,
                ..
            } => Ok(SignInStatus::SignedIn {
                session,
                user: signed_in,
                recovery_codes_left,
                recovery_codes: recovery::generate_set(
                    &self.ctx,
                    &user,
                    user.username.as_str(),
                    Some(&ip),
                )
                .await?,
                temporary_access: None,
            }),
            other => Ok(other),
        }
    }

    /// "Sign in with a passkey": a handle for the browser to send back, and the options
    /// of a discoverable assertion, waiting as long as a sign-in transaction would.
    pub async fn passkey_options(&self) -> Result<(Token, serde_json::Value), SignInError> {
        let settings = self.ctx.store.settings().await?;
        let expires_at = self
            .ctx
            .now()
            .plus_seconds(i64::from(settings.otp_csrf_valid_minutes()) * 60);
        Ok(webauthn::passkey_options(&self.ctx, &settings, expires_at).await?)
    }

    /// A passkey's answer: username, password and every step of SPEC 3 in one (a
    /// discoverable credential with user verification). Its user's attempt is reserved
    /// before the signature is checked; any refusal is the generic failure, counted when
    /// the answer names a user. Never for interface users.
    pub async fn passkey(
        &self,
        handle: &str,
        credential: &str,
        client_ip: ClientAddress,
    ) -> SignInResult {
        let stopwatch = Stopwatch::start();
        let settings = self.ctx.store.settings().await?;
        let ip = client_ip.to_string();
        let gate = Gate::new(&self.ctx, &settings, sign_in_origin(&ip));
        let read = webauthn::read_passkey(&self.ctx, handle, credential).await?;
        let user = match read.user {
            Some(id) => self.ctx.store.user_by_id(id).await?,
            None => None,
        };
        let Some(user) = user else {
            gate.refuse(None, FailureReason::UnknownKey).await?;
            return Err(self.fail(&stopwatch, &settings).await);
        };
        let Ok(attempt) = gate.reserve_code(&user).await? else {
            return Err(self.fail(&stopwatch, &settings).await);
        };
        let checked = match self.role_of(&user).await?.security.interface() {
            true => Err(FailureReason::UnknownKey),
            false => webauthn::check_passkey(&self.ctx, &settings, read)?,
        };
        let outcome = gate.security_key(attempt, checked).await?;
        self.ctx
            .metrics
            .otp_check(OtpCheckMethod::SecurityKey, outcome.is_ok());
        if outcome.is_err() {
            return Err(self.fail(&stopwatch, &settings).await);
        }
        let how = Authentication {
            password: false,
            otp: false,
            hardware_key: true,
            temporary_access: false,
        };
        self.finish_as(&user, &ip, how, "passkey").await
    }
}
