//! The account page's security keys (SPEC 14): add one (after fresh proof, bound to the
//! proving session), name and remove them (removal after fresh proof).

use super::{Account, AccountError, Me};
use crate::clock::Stopwatch;
use crate::domain::{AuditEvent, KeyName, PromptMode, RecoveryCode, SecurityEvent, SecurityKeyId};
use crate::service::account::SETUP_MINUTES;
use crate::service::webauthn;
use crate::service::{notify, recovery};
use crate::store::ChallengeOwner;

impl Account {
    /// "Add a security key": after fresh proof, the options of a new key's registration
    /// (`PublicKeyCredentialCreationOptions`, JSON form), bound to this session for
    /// [`SETUP_MINUTES`].
    pub async fn begin_key(
        &self,
        token: &str,
        prompt_mode: PromptMode,
        code: Option<&str>,
    ) -> Result<serde_json::Value, AccountError> {
        let stopwatch = Stopwatch::start();
        let me = self.me(token).await?;
        let settings = self.ctx.store.settings().await?;
        if !webauthn::offered(&self.ctx, &settings) {
            return Err(AccountError::SecurityKey(webauthn::KeyError::NotOffered));
        }
        self.prove(&me, &settings, code, &stopwatch).await?;
        let expires_at = self.ctx.now().plus_seconds(SETUP_MINUTES * 60);
        let options = webauthn::registration_options(
            &self.ctx,
            &settings,
            &me.user,
            me.role.security.interface(),
            ChallengeOwner::Session(me.session.id),
            prompt_mode,
            expires_at,
        )
        .await?;
        self.ctx
            .audit(
                AuditEvent::DeviceSetupStarted,
                Some(me.user.username.as_str()),
                Some(me.user.username.as_str()),
                Some(&me.session.client_ip),
                format!(
                    "on the account page: method=webauthn prompt_mode={}",
                    prompt_mode.as_str()
                ),
            )
            .await?;
        Ok(options)
    }

    /// The new key's answer (RegistrationResponseJSON) registers it. A user without
    /// recovery codes left gets a first set, returned to be shown once.
    pub async fn confirm_key(
        &self,
        token: &str,
        credential: &str,
        name: Option<&str>,
    ) -> Result<Vec<RecoveryCode>, AccountError> {
        let me = self.me(token).await?;
        let settings = self.ctx.store.settings().await?;
        let name = parse_name(name)?;
        let key = webauthn::register(
            &self.ctx,
            &settings,
            &me.user,
            ChallengeOwner::Session(me.session.id),
            credential,
            name,
        )
        .await?;
        let username = me.user.username.as_str().to_owned();
        let ip = me.session.client_ip.as_str();
        self.ctx
            .audit(
                AuditEvent::SecurityKeyAdded,
                Some(&username),
                Some(&username),
                Some(ip),
                format!(
                    "on the account page: name={} prompt_mode={} passkey={}",
                    key.name.as_str(),
                    key.prompt_mode.as_str(),
                    key.discoverable
                ),
            )
            .await?;
        notify::security_logged(&self.ctx, &me.user, SecurityEvent::KeyAdded, Some(ip)).await;
        if recovery::left(&self.ctx, &me.user).await? > 0 {
            return Ok(Vec::new());
        }
        Ok(recovery::generate_set(&self.ctx, &me.user, &username, Some(ip)).await?)
    }

    /// Names one of the user's keys.
    pub async fn rename_key(
        &self,
        token: &str,
        key: SecurityKeyId,
        name: &str,
    ) -> Result<(), AccountError> {
        let me = self.me(token).await?;
        let name = KeyName::parse(name).map_err(AccountError::InvalidKeyName)?;
        if !self
            .ctx
            .store
            .rename_security_key(me.user.id, key, &name)
            .await?
        {
            return Err(AccountError::NoSuchKey);
        }
        self.audit_key(&me, AuditEvent::SecurityKeyRenamed, name.as_str())
            .await
    }

    /// Removes one of the user's keys, after fresh proof.
    pub async fn remove_key(
        &self,
        token: &str,
        key: SecurityKeyId,
        code: Option<&str>,
    ) -> Result<(), AccountError> {
        let stopwatch = Stopwatch::start();
        let me = self.me(token).await?;
        let settings = self.ctx.store.settings().await?;
        let owned = self.ctx.store.security_keys(me.user.id).await?;
        if !owned.iter().any(|stored| stored.key.id == key) {
            return Err(AccountError::NoSuchKey);
        }
        self.prove(&me, &settings, code, &stopwatch).await?;
        let Some(removed) = self.ctx.store.remove_security_key(me.user.id, key).await? else {
            return Err(AccountError::NoSuchKey);
        };
        self.audit_key(&me, AuditEvent::SecurityKeyRemoved, removed.name.as_str())
            .await?;
        notify::security_logged(
            &self.ctx,
            &me.user,
            SecurityEvent::KeyRemoved,
            Some(&me.session.client_ip),
        )
        .await;
        Ok(())
    }

    async fn audit_key(&self, me: &Me, event: AuditEvent, name: &str) -> Result<(), AccountError> {
        self.ctx
            .audit(
                event,
                Some(me.user.username.as_str()),
                Some(me.user.username.as_str()),
                Some(&me.session.client_ip),
                format!("on the account page: name={name}"),
            )
            .await?;
        Ok(())
    }
}

fn parse_name(name: Option<&str>) -> Result<Option<KeyName>, AccountError> {
    name.map(str::trim)
        .filter(|name| !name.is_empty())
        .map(KeyName::parse)
        .transpose()
        .map_err(AccountError::InvalidKeyName)
}
