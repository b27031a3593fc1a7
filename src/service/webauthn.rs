//! Security keys and passkeys (SPEC 14): the WebAuthn ceremonies, through `webauthn-rs`.
//!
//! A ceremony's options are made here and its state waits in the store
//! (`webauthn_challenges`), bound to a sign-in transaction, a session, or a random
//! handle (passkey sign-in), until the browser's answer takes it: once, on any instance.
//! User verification is always required. What is counted and audited is the caller's
//! ([`super::credentials::Gate`]); this module answers what the key's answer proves.

use rand::rngs::OsRng;
use rand::RngCore;
use webauthn_rs::prelude::{
    AuthenticationResult, CreationChallengeResponse, DiscoverableAuthentication, Passkey,
    PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    Url, Uuid, Webauthn, WebauthnBuilder, WebauthnError,
};

use super::credentials::{FailureReason, KeyUse};
use super::Context;
use crate::clock::Timestamp;
use crate::crypto::Token;
use crate::domain::{KeyName, PromptMode, SecurityKey, Settings, User, UserId};
use crate::store::{
    ChallengeOwner, ChallengePurpose, KeyRefused, NewSecurityKey, StoreError, StoredSecurityKey,
};

/// How long a browser may take to answer (the options' `timeout`).
const CEREMONY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// The relying party of `--public-url`: its host is the RP ID keys are bound to.
pub struct RelyingParty {
    webauthn: Webauthn,
    id: String,
}

/// Why keys cannot be offered (System Settings says it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RelyingPartyProblem {
    #[error(
        "security keys need --public-url: a key is bound to the host name users reach twostep at"
    )]
    NoPublicUrl,
    #[error("security keys need a host name in --public-url, not an IP address ({0})")]
    NotAHostName(String),
    #[error("--public-url is not a URL webauthn accepts ({0})")]
    Invalid(String),
}

impl RelyingParty {
    /// The relying party of `public_url`, named `site_name` to the authenticator.
    pub fn for_public_url(
        public_url: Option<&str>,
        site_name: &str,
    ) -> Result<Self, RelyingPartyProblem> {
        let text = public_url.ok_or(RelyingPartyProblem::NoPublicUrl)?;
        let url = Url::parse(text).map_err(|_| RelyingPartyProblem::Invalid(text.to_owned()))?;
        let Some(host) = url.domain().map(str::to_owned) else {
            return Err(RelyingPartyProblem::NotAHostName(text.to_owned()));
        };
        let webauthn = WebauthnBuilder::new(&host, &url)
            .and_then(|builder| builder.rp_name(site_name).timeout(CEREMONY_TIMEOUT).build())
            .map_err(|_| RelyingPartyProblem::Invalid(text.to_owned()))?;
        Ok(Self { webauthn, id: host })
    }

    /// The RP ID: the public URL's host.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Why a key could not be registered or used, for the caller's answer.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The setting is off or there is no relying party (`--public-url`).
    #[error("security keys are not offered")]
    NotOffered,
    /// Interface users cannot have keys (SPEC 14).
    #[error("interface users cannot have security keys")]
    InterfaceUser,
    #[error("you have 5 security keys already; remove one first")]
    TooMany,
    #[error("this security key is registered already")]
    AlreadyRegistered,
    /// No waiting registration: never started, answered already, or expired.
    #[error("the key's set-up was not started or has expired; start again")]
    NoCeremony,
    /// The key did not verify its user (no PIN or fingerprint).
    #[error("the key did not confirm it is you: twostep needs a security key with a PIN or fingerprint; set a PIN on the key, or use another key")]
    UserNotVerified,
    /// The browser's answer does not verify or cannot be read.
    #[error("the security key's answer is not valid; try again")]
    Invalid,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether keys are offered now: the setting is on and `--public-url` names a host.
pub fn offered(ctx: &Context, settings: &Settings) -> bool {
    settings.security_keys() && ctx.relying_party.is_some()
}

fn relying_party<'a>(ctx: &'a Context, settings: &Settings) -> Result<&'a RelyingParty, KeyError> {
    match (&ctx.relying_party, settings.security_keys()) {
        (Some(party), true) => Ok(party),
        _ => Err(KeyError::NotOffered),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, KeyError> {
    serde_json::to_string(value).map_err(|error| StoreError::Corrupt(error.to_string()).into())
}

fn stored_passkey(stored: &StoredSecurityKey) -> Result<Passkey, StoreError> {
    serde_json::from_str(&stored.credential)
        .map_err(|_| StoreError::Corrupt("key credential".into()))
}

/// The user's handle, made at the first key (16 random bytes).
async fn user_handle(ctx: &Context, user: UserId) -> Result<Uuid, StoreError> {
    let mut new = [0u8; 16];
    OsRng.fill_bytes(&mut new);
    let handle = ctx.store.webauthn_user_handle(user, new).await?;
    Uuid::from_slice(&handle).map_err(|_| StoreError::Corrupt("user handle".into()))
}

/// A registration's options (`PublicKeyCredentialCreationOptions`, JSON form) for
/// `user`, waiting under `owner` until `expires_at`. Resident keys are preferred (so that
/// the key can be a passkey) and user verification is required; the user's keys are
/// excluded.
pub async fn registration_options(
    ctx: &Context,
    settings: &Settings,
    user: &User,
    interface: bool,
    owner: ChallengeOwner<'_>,
    prompt_mode: PromptMode,
    expires_at: Timestamp,
) -> Result<serde_json::Value, KeyError> {
    let party = relying_party(ctx, settings)?;
    if interface {
        return Err(KeyError::InterfaceUser);
    }
    let keys = ctx.store.security_keys(user.id).await?;
    if !crate::domain::may_add_key(keys.len()) {
        return Err(KeyError::TooMany);
    }
    let handle = user_handle(ctx, user.id).await?;
    let exclude = keys
        .iter()
        .map(|key| key.credential_id.clone())
        .collect::<Vec<_>>();
    let (options, state): (CreationChallengeResponse, PasskeyRegistration) = party
        .webauthn
        .start_passkey_registration(
            handle,
            user.username.as_str(),
            user.display_name.as_str(),
            Some(exclude),
        )
        .map_err(|_| KeyError::Invalid)?;
    ctx.store
        .put_webauthn_challenge(
            owner,
            ChallengePurpose::Register,
            Some(user.id),
            &to_json(&state)?,
            Some(prompt_mode),
            ctx.now(),
            expires_at,
        )
        .await?;
    let mut options = serde_json::to_value(&options.public_key)
        .map_err(|error| StoreError::Corrupt(error.to_string()))?;
    // A discoverable credential where the key can keep one, so that it can also sign in
    // as a passkey (webauthn-rs asks for none).
    if let Some(selection) = options
        .get_mut("authenticatorSelection")
        .and_then(serde_json::Value::as_object_mut)
    {
        selection.insert("residentKey".into(), "preferred".into());
    }
    Ok(options)
}

/// Registers the key of the browser's answer `credential` (RegistrationResponseJSON) to
/// the registration waiting under `owner` for `user`.
pub async fn register(
    ctx: &Context,
    settings: &Settings,
    user: &User,
    owner: ChallengeOwner<'_>,
    credential: &str,
    name: Option<KeyName>,
) -> Result<SecurityKey, KeyError> {
    let party = relying_party(ctx, settings)?;
    let waiting = ctx
        .store
        .take_webauthn_challenge(owner, ChallengePurpose::Register, ctx.now())
        .await?
        .filter(|waiting| waiting.user_id == Some(user.id))
        .ok_or(KeyError::NoCeremony)?;
    let state: PasskeyRegistration =
        serde_json::from_str(&waiting.state).map_err(|_| KeyError::NoCeremony)?;
    let answer: RegisterPublicKeyCredential =
        serde_json::from_str(credential).map_err(|_| KeyError::Invalid)?;
    let discoverable = answer
        .extensions
        .cred_props
        .as_ref()
        .and_then(|props| props.rk)
        .unwrap_or(false);
    let passkey = party
        .webauthn
        .finish_passkey_registration(&answer, &state)
        .map_err(|error| match error {
            WebauthnError::UserNotVerified => KeyError::UserNotVerified,
            _ => KeyError::Invalid,
        })?;
    let new = NewSecurityKey {
        credential_id: passkey.cred_id().to_vec(),
        name,
        prompt_mode: waiting.prompt_mode.unwrap_or(PromptMode::WhenAppropriate),
        credential: to_json(&passkey)?,
        discoverable,
        sign_count: 0,
    };
    match ctx.store.add_security_key(user.id, &new, ctx.now()).await? {
        Ok(key) => Ok(key),
        Err(KeyRefused::TooMany) => Err(KeyError::TooMany),
        Err(KeyRefused::AlreadyRegistered) => Err(KeyError::AlreadyRegistered),
    }
}

/// The options of an assertion by one of `user`'s keys at a sign-in's device step
/// (`PublicKeyCredentialRequestOptions`, JSON form), waiting under `owner` until
/// `expires_at`; `None` when the user has no key or keys are not offered.
pub async fn assertion_options(
    ctx: &Context,
    settings: &Settings,
    user: &User,
    owner: ChallengeOwner<'_>,
    expires_at: Timestamp,
) -> Result<Option<serde_json::Value>, KeyError> {
    let Ok(party) = relying_party(ctx, settings) else {
        return Ok(None);
    };
    let keys = ctx.store.security_keys(user.id).await?;
    if keys.is_empty() {
        return Ok(None);
    }
    let passkeys = keys
        .iter()
        .map(stored_passkey)
        .collect::<Result<Vec<_>, _>>()?;
    let (options, state): (_, PasskeyAuthentication) = party
        .webauthn
        .start_passkey_authentication(&passkeys)
        .map_err(|_| KeyError::Invalid)?;
    ctx.store
        .put_webauthn_challenge(
            owner,
            ChallengePurpose::Authenticate,
            Some(user.id),
            &to_json(&state)?,
            None,
            ctx.now(),
            expires_at,
        )
        .await?;
    Ok(Some(
        serde_json::to_value(&options.public_key)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
    ))
}

/// Checks the browser's answer `credential` (AuthenticationResponseJSON) against the
/// assertion waiting under `owner` for `user`, taking it (single use). Pure of
/// consequences: the caller counts and records (`Gate::security_key`).
pub async fn check_assertion(
    ctx: &Context,
    settings: &Settings,
    user: &User,
    owner: ChallengeOwner<'_>,
    credential: &str,
) -> Result<Result<KeyUse, FailureReason>, StoreError> {
    let Ok(party) = relying_party(ctx, settings) else {
        return Ok(Err(FailureReason::KeyChallengeMissing));
    };
    let Some(waiting) = ctx
        .store
        .take_webauthn_challenge(owner, ChallengePurpose::Authenticate, ctx.now())
        .await?
        .filter(|waiting| waiting.user_id == Some(user.id))
    else {
        return Ok(Err(FailureReason::KeyChallengeMissing));
    };
    let Ok(state) = serde_json::from_str::<PasskeyAuthentication>(&waiting.state) else {
        return Ok(Err(FailureReason::KeyChallengeMissing));
    };
    let Ok(answer) = serde_json::from_str::<PublicKeyCredential>(credential) else {
        return Ok(Err(FailureReason::WrongKeyAssertion));
    };
    let Some(stored) = ctx
        .store
        .security_key_by_credential(answer.get_credential_id())
        .await?
        .filter(|stored| stored.key.user_id == user.id)
    else {
        return Ok(Err(FailureReason::WrongKeyAssertion));
    };
    let result = party
        .webauthn
        .finish_passkey_authentication(&answer, &state);
    key_use(stored, result)
}

/// A passkey sign-in's options: a random handle for the browser to send back (its hash
/// names the waiting state) and the options, with no allowed credentials (the
/// authenticator chooses a discoverable one).
pub async fn passkey_options(
    ctx: &Context,
    settings: &Settings,
    expires_at: Timestamp,
) -> Result<(Token, serde_json::Value), KeyError> {
    let party = relying_party(ctx, settings)?;
    let (options, state): (_, DiscoverableAuthentication) = party
        .webauthn
        .start_discoverable_authentication()
        .map_err(|_| KeyError::Invalid)?;
    let handle = Token::generate(&mut OsRng);
    ctx.store
        .put_webauthn_challenge(
            ChallengeOwner::Handle(&handle.hash()),
            ChallengePurpose::Passkey,
            None,
            &to_json(&state)?,
            None,
            ctx.now(),
            expires_at,
        )
        .await?;
    let options = serde_json::to_value(&options.public_key)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok((handle, options))
}

/// What a passkey's answer names: the user its handle and credential belong to, with the
/// key; or nobody.
pub struct PasskeyAnswer {
    pub user: Option<UserId>,
    state: Option<DiscoverableAuthentication>,
    answer: Option<PublicKeyCredential>,
    stored: Option<StoredSecurityKey>,
}

/// Reads a passkey sign-in's answer: takes the waiting state of `handle` (once) and finds
/// whose key answered. Nothing is verified yet: [`check_passkey`] does, after the caller
/// reserved an attempt on the user.
pub async fn read_passkey(
    ctx: &Context,
    handle: &str,
    credential: &str,
) -> Result<PasskeyAnswer, StoreError> {
    let nobody = PasskeyAnswer {
        user: None,
        state: None,
        answer: None,
        stored: None,
    };
    let Ok(handle) = Token::parse(handle) else {
        return Ok(nobody);
    };
    let Some(waiting) = ctx
        .store
        .take_webauthn_challenge(
            ChallengeOwner::Handle(&handle.hash()),
            ChallengePurpose::Passkey,
            ctx.now(),
        )
        .await?
    else {
        return Ok(nobody);
    };
    let Ok(state) = serde_json::from_str::<DiscoverableAuthentication>(&waiting.state) else {
        return Ok(nobody);
    };
    let Ok(answer) = serde_json::from_str::<PublicKeyCredential>(credential) else {
        return Ok(nobody);
    };
    let Some(user_handle) = answer.get_user_unique_id().map(<[u8]>::to_vec) else {
        return Ok(nobody);
    };
    let Some(user) = ctx.store.user_of_webauthn_handle(&user_handle).await? else {
        return Ok(nobody);
    };
    let stored = ctx
        .store
        .security_key_by_credential(answer.get_credential_id())
        .await?;
    Ok(PasskeyAnswer {
        user: Some(user),
        state: Some(state),
        answer: Some(answer),
        stored,
    })
}

/// Verifies a passkey's answer read by [`read_passkey`]: the key must be the user's and
/// discoverable, the signature, challenge, relying party, user verification and counter
/// right.
pub fn check_passkey(
    ctx: &Context,
    settings: &Settings,
    read: PasskeyAnswer,
) -> Result<Result<KeyUse, FailureReason>, StoreError> {
    let Ok(party) = relying_party(ctx, settings) else {
        return Ok(Err(FailureReason::KeyChallengeMissing));
    };
    let (Some(user), Some(state), Some(answer)) = (read.user, read.state, read.answer) else {
        return Ok(Err(FailureReason::UnknownKey));
    };
    let Some(stored) = read
        .stored
        .filter(|stored| stored.key.user_id == user && stored.key.discoverable)
    else {
        return Ok(Err(FailureReason::WrongKeyAssertion));
    };
    let passkey = stored_passkey(&stored)?;
    let result = party
        .webauthn
        .finish_discoverable_authentication_v2(&answer, state, &passkey);
    key_use(stored, result)
}

/// The use of `stored` an assertion's `result` gives, or why it is refused.
fn key_use(
    stored: StoredSecurityKey,
    result: Result<AuthenticationResult, WebauthnError>,
) -> Result<Result<KeyUse, FailureReason>, StoreError> {
    let result = match result {
        Ok(result) => result,
        Err(WebauthnError::UserNotVerified) => return Ok(Err(FailureReason::KeyUserNotVerified)),
        Err(WebauthnError::CredentialPossibleCompromise) => {
            return Ok(Err(FailureReason::KeyCounterNotGrown))
        }
        Err(_) => return Ok(Err(FailureReason::WrongKeyAssertion)),
    };
    if !result.user_verified() {
        return Ok(Err(FailureReason::KeyUserNotVerified));
    }
    if !crate::domain::counter_accepts(stored.sign_count, result.counter()) {
        return Ok(Err(FailureReason::KeyCounterNotGrown));
    }
    let mut passkey = stored_passkey(&stored)?;
    passkey.update_credential(&result);
    Ok(Ok(KeyUse {
        key: stored.key.id,
        counter: result.counter(),
        credential: serde_json::to_string(&passkey)
            .map_err(|error| StoreError::Corrupt(error.to_string()))?,
    }))
}
