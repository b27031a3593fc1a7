//! The OpenID Connect provider (SPEC 13): applications registered by administrators send
//! users to `/oauth2/authorize`; the user signs in with twostep's own sign-in (SPEC section
//! 3 applies, and a client's `require_2fa` adds an OTP step); the application exchanges
//! the code at `/oauth2/token` for an RS256 ID token, an access token for
//! `/oauth2/userinfo` and a refresh token that rotates at each use.
//!
//! The rules are `domain::oidc`'s (pure); this module keeps the state in the database
//! (`store::oidc`), signs with [`keys`], and audits. Nothing here holds state in memory
//! that changes an answer: any instance may take any step.

pub mod keys;

use std::sync::Arc;

use jsonwebtoken::{Algorithm, Header, Validation};
use rand::rngs::OsRng;
use rand::RngCore;
use serde_json::{json, Map, Value};

use super::signin::live_session;
use super::Context;
use crate::clock::Timestamp;
use crate::crypto::{ct_eq_hash, Token};
use crate::domain::oidc::{
    check_code_exchange, refresh_use, sign_in_need, Authorization, AuthorizationRequest,
    AuthorizeError, ClientId, ClientRegistration, CodeRefusal, ExistingSignIn, Grant, IssuedCode,
    OAuthError, PageError, RedirectError, RefreshUse, SignInNeed, TokenError,
};
use crate::domain::{AuditEvent, Session, User};
use crate::store::{CodeId, NewTokens, StoreError};

pub use keys::{KeyError, PublicKey};

/// How long an ID token is valid, and so how long a retired key stays published.
pub const ID_TOKEN_SECONDS: i64 = 10 * 60;
/// How long an access token is valid.
pub const ACCESS_TOKEN_SECONDS: i64 = 10 * 60;
/// How long an authorization request waits for the user to sign in.
const REQUEST_SECONDS: i64 = 30 * 60;

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("the ID token could not be signed")]
    Sign,
}

/// What `/oauth2/authorize` (and its return after sign-in) answers.
#[derive(Debug)]
pub enum AuthorizeAnswer {
    /// Send the browser here: the client's redirect URI with a code, or an error.
    Redirect(String),
    /// Show this error; never redirect (RFC 6749 4.1.2.1).
    Page(PageError),
    /// The user signs in first; `request` names the waiting request (a cookie) and
    /// `application` is the client's name for the sign-in page.
    SignIn { request: Token, application: String },
}

/// The client's credentials as the token request carries them.
#[derive(Clone, Debug, Default)]
pub struct ClientCredentials {
    /// `Authorization: Basic` (`client_secret_basic`), already decoded.
    pub basic: Option<(String, String)>,
    /// `client_id` and `client_secret` in the body (`client_secret_post`, or a public
    /// client's `client_id` alone).
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// `POST /oauth2/token`'s form.
#[derive(Clone, Debug, Default)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub client: ClientCredentials,
}

/// A refused token request (RFC 6749 5.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenFailure {
    pub error: TokenError,
    pub description: &'static str,
    /// The client tried `client_secret_basic` (a 401 then names the scheme).
    pub basic: bool,
}

/// What the token endpoint issues.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub access_token: Token,
    pub refresh_token: Token,
    pub id_token: String,
    pub expires_in: i64,
    pub scope: String,
}

/// `/oauth2/logout`'s answer.
#[derive(Debug, PartialEq, Eq)]
pub enum LogoutAnswer {
    /// Signed out: go to the application's post-logout URI (with `state`), or show the
    /// signed-out page.
    SignedOut { redirect: Option<String> },
    /// The browser's session may not be the hint's: ask before signing out.
    Confirm,
    /// A bad request (an invalid hint, an unregistered URI): shown, nothing ended.
    Refused(&'static str),
}

/// `/oauth2/logout`'s parameters (OpenID Connect RP-Initiated Logout 1.0).
#[derive(Clone, Debug, Default)]
pub struct LogoutRequest {
    pub id_token_hint: Option<String>,
    pub client_id: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
}

/// The provider.
#[derive(Clone)]
pub struct Oidc {
    ctx: Context,
    issuer: Arc<str>,
    keys: Arc<keys::KeyCache>,
}

fn failure(error: TokenError, description: &'static str) -> TokenFailure {
    TokenFailure {
        error,
        description,
        basic: false,
    }
}

fn invalid_grant(description: &'static str) -> TokenFailure {
    failure(TokenError::InvalidGrant, description)
}

/// `uri` with the query parameters added (the registered URI's own query kept).
fn with_query(uri: &str, pairs: &[(&str, Option<&str>)]) -> String {
    match url::Url::parse(uri) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (name, value) in pairs {
                    if let Some(value) = value {
                        query.append_pair(name, value);
                    }
                }
            }
            url.to_string()
        }
        // Registered URIs always parse (RedirectUri::parse).
        Err(_) => uri.to_owned(),
    }
}

fn error_redirect(error: &RedirectError) -> String {
    with_query(
        error.redirect_uri.as_str(),
        &[
            ("error", Some(error.error.as_str())),
            ("error_description", Some(error.description.as_str())),
            ("state", error.state.as_deref()),
        ],
    )
}

/// A browser's session as [`sign_in_need`] sees it.
fn existing(session: &Option<(Session, User)>) -> Option<ExistingSignIn> {
    session.as_ref().map(|(session, _)| ExistingSignIn {
        auth_time: session.created_at,
        authentication: session.authentication,
    })
}

/// The first value of `name`.
fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

impl Oidc {
    /// The provider of `issuer` (the public URL, without a trailing `/`).
    pub fn new(ctx: Context, issuer: &str) -> Self {
        Self {
            ctx,
            issuer: Arc::from(issuer.trim_end_matches('/')),
            keys: Arc::new(keys::KeyCache::default()),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Makes the first signing key if none is stored (at start).
    pub async fn ensure_signing_key(&self) -> Result<(), KeyError> {
        keys::ensure(&self.ctx).await
    }

    /// `twostep oidc rotate-key`: a new signing key; the old one stays published until
    /// its tokens have expired.
    pub async fn rotate_key(&self) -> Result<String, OidcError> {
        let kid = keys::rotate(&self.ctx).await?;
        self.ctx
            .audit(
                AuditEvent::SigningKeyRotated,
                Some("cli"),
                None,
                None,
                format!("new key {kid}"),
            )
            .await?;
        Ok(kid)
    }

    /// The JWKS's keys.
    pub async fn public_keys(&self) -> Result<Vec<PublicKey>, OidcError> {
        Ok(keys::published(&self.ctx).await?)
    }

    async fn client(
        &self,
        client_id: Option<&str>,
    ) -> Result<Option<ClientRegistration>, OidcError> {
        let Some(id) = client_id.and_then(|id| ClientId::parse(id).ok()) else {
            return Ok(None);
        };
        Ok(self.ctx.store.oidc_client(&id).await?)
    }

    /// The live session of the browser's cookie, if any.
    async fn session(&self, token: Option<&str>) -> Result<Option<(Session, User)>, OidcError> {
        let Some(token) = token else {
            return Ok(None);
        };
        Ok(live_session(&self.ctx, token)
            .await?
            .map(|(session, user, _)| (session, user)))
    }

    /// An authorization request with its client, or the answer to a bad one (a page, or
    /// the error sent back to the client).
    async fn parse(
        &self,
        params: &[(String, String)],
    ) -> Result<Result<(AuthorizationRequest, ClientRegistration), AuthorizeAnswer>, OidcError>
    {
        let client = self.client(param(params, "client_id")).await?;
        Ok(match AuthorizationRequest::parse(params, client.as_ref()) {
            Ok(request) => match client {
                Some(client) => Ok((request, client)),
                None => Err(AuthorizeAnswer::Page(PageError::UnknownClient)),
            },
            Err(AuthorizeError::Page(error)) => Err(AuthorizeAnswer::Page(error)),
            Err(AuthorizeError::Redirect(error)) => {
                Err(AuthorizeAnswer::Redirect(error_redirect(&error)))
            }
        })
    }

    /// `GET /oauth2/authorize`. `session` is the browser's session cookie.
    pub async fn authorize(
        &self,
        params: &[(String, String)],
        session: Option<&str>,
    ) -> Result<AuthorizeAnswer, OidcError> {
        let (request, client) = match self.parse(params).await? {
            Ok(parsed) => parsed,
            Err(answer) => return Ok(answer),
        };
        let session = self.session(session).await?;
        match sign_in_need(existing(&session), &request, &client, self.ctx.now()) {
            SignInNeed::Reuse => match session {
                Some((session, user)) => self.issue_code(&request, &session, &user).await,
                None => Ok(AuthorizeAnswer::Page(PageError::UnknownClient)),
            },
            SignInNeed::LoginRequired => {
                Ok(AuthorizeAnswer::Redirect(error_redirect(&RedirectError {
                    redirect_uri: request.redirect_uri.clone(),
                    error: OAuthError::LoginRequired,
                    description: "the user is not signed in".to_owned(),
                    state: request.state.clone(),
                })))
            }
            SignInNeed::SignIn { .. } => {
                let token = Token::generate(&mut OsRng);
                let now = self.ctx.now();
                let params = serde_json::to_string(params)
                    .map_err(|_| StoreError::Corrupt("oidc request".into()))?;
                self.ctx
                    .store
                    .create_oidc_request(
                        &token.hash(),
                        &params,
                        now,
                        now.plus_seconds(REQUEST_SECONDS),
                    )
                    .await?;
                Ok(AuthorizeAnswer::SignIn {
                    request: token,
                    application: client.name,
                })
            }
        }
    }

    /// The waiting request of `request` (the cookie), with its client.
    async fn waiting(
        &self,
        request: &str,
    ) -> Result<Option<(Vec<(String, String)>, Timestamp, Token)>, OidcError> {
        let Ok(token) = Token::parse(request) else {
            return Ok(None);
        };
        let Some((params, created_at)) = self
            .ctx
            .store
            .oidc_request(&token.hash(), self.ctx.now())
            .await?
        else {
            return Ok(None);
        };
        let params: Vec<(String, String)> = serde_json::from_str(&params)
            .map_err(|_| StoreError::Corrupt("oidc request".into()))?;
        Ok(Some((params, created_at, token)))
    }

    /// The name of the application a waiting request is for, and whether it requires a
    /// second factor (the sign-in pages ask before the password step).
    pub async fn waiting_application(
        &self,
        request: &str,
    ) -> Result<Option<(String, bool)>, OidcError> {
        let Some((params, _, _)) = self.waiting(request).await? else {
            return Ok(None);
        };
        let client = self.client(param(&params, "client_id")).await?;
        Ok(client.map(|client| (client.name, client.require_2fa)))
    }

    /// `GET /oauth2/authorize/resume`: back from signing in for the waiting `request`. A
    /// session that began after the request answers it (whatever `prompt=login` or
    /// `max_age` said: that sign-in is the one they asked for).
    pub async fn resume(
        &self,
        request: &str,
        session: Option<&str>,
    ) -> Result<AuthorizeAnswer, OidcError> {
        let Some((params, created_at, token)) = self.waiting(request).await? else {
            return Ok(AuthorizeAnswer::Page(PageError::Expired));
        };
        let (mut parsed, client) = match self.parse(&params).await? {
            Ok(parsed) => parsed,
            Err(answer) => return Ok(answer),
        };
        let session = self
            .session(session)
            .await?
            .filter(|(session, _)| session.created_at >= created_at);
        parsed.prompt.login = false;
        parsed.prompt.none = false;
        parsed.max_age = None;
        match (
            sign_in_need(existing(&session), &parsed, &client, self.ctx.now()),
            session,
        ) {
            (SignInNeed::Reuse, Some((session, user))) => {
                if !self.ctx.store.delete_oidc_request(&token.hash()).await? {
                    return Ok(AuthorizeAnswer::Page(PageError::Expired));
                }
                self.issue_code(&parsed, &session, &user).await
            }
            _ => Ok(AuthorizeAnswer::SignIn {
                request: token,
                application: client.name,
            }),
        }
    }

    /// A code for `user`'s `session`, sent to the client's redirect URI.
    async fn issue_code(
        &self,
        request: &AuthorizationRequest,
        session: &Session,
        user: &User,
    ) -> Result<AuthorizeAnswer, OidcError> {
        let code = Token::generate(&mut OsRng);
        let now = self.ctx.now();
        let issued = IssuedCode {
            client_id: request.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            code_challenge: request.code_challenge.clone(),
            issued_at: now,
            used: false,
        };
        let authorization = Authorization {
            client_id: request.client_id.clone(),
            user_id: user.id,
            session_id: Some(session.id),
            scopes: request.scopes.clone(),
            nonce: request.nonce.clone(),
            auth_time: session.created_at,
            authentication: session.authentication,
        };
        self.ctx
            .store
            .create_oidc_code(&code.hash(), &issued, &authorization)
            .await?;
        self.ctx
            .audit(
                AuditEvent::ApplicationSignIn,
                None,
                Some(user.username.as_str()),
                Some(&session.client_ip),
                format!(
                    "application {}, amr {}",
                    request.client_id.as_str(),
                    session.authentication.amr().join(" ")
                ),
            )
            .await?;
        Ok(AuthorizeAnswer::Redirect(with_query(
            request.redirect_uri.as_str(),
            &[
                ("code", Some(code.as_str())),
                ("state", request.state.as_deref()),
            ],
        )))
    }

    /// Client authentication (RFC 6749 2.3.1): a confidential client by its secret, in
    /// the header or the body (not both); a public client by its `client_id` alone.
    async fn authenticate(
        &self,
        credentials: &ClientCredentials,
    ) -> Result<Result<ClientRegistration, TokenFailure>, OidcError> {
        let basic = credentials.basic.is_some();
        let refuse = |description| {
            Ok(Err(TokenFailure {
                error: TokenError::InvalidClient,
                description,
                basic,
            }))
        };
        let (id, secret) = match (&credentials.basic, &credentials.client_secret) {
            (Some(_), Some(_)) => {
                return Ok(Err(failure(
                    TokenError::InvalidRequest,
                    "use one client authentication method, not two",
                )))
            }
            (Some((id, secret)), None) => {
                if credentials
                    .client_id
                    .as_ref()
                    .is_some_and(|other| other != id)
                {
                    return Ok(Err(failure(
                        TokenError::InvalidRequest,
                        "client_id differs from the authenticated client",
                    )));
                }
                (id.as_str(), Some(secret.as_str()))
            }
            (None, secret) => match &credentials.client_id {
                Some(id) => (id.as_str(), secret.as_deref()),
                None => return refuse("the client is not identified"),
            },
        };
        let Some(client) = self.client(Some(id)).await? else {
            return refuse("unknown client or wrong secret");
        };
        match (client.confidential, secret) {
            (true, Some(secret)) => {
                let stored = self
                    .ctx
                    .store
                    .oidc_client_secret_hash(&client.client_id)
                    .await?;
                let given = Token::parse(secret).map(|token| token.hash());
                let right = match (stored, given) {
                    (Some(stored), Ok(given)) => ct_eq_hash(&stored, &given),
                    _ => false,
                };
                if right {
                    Ok(Ok(client))
                } else {
                    refuse("unknown client or wrong secret")
                }
            }
            (true, None) => refuse("a confidential client authenticates with its secret"),
            (false, None) => Ok(Ok(client)),
            (false, Some(_)) => refuse("a public client has no secret"),
        }
    }

    /// `POST /oauth2/token`.
    pub async fn token(
        &self,
        request: &TokenRequest,
    ) -> Result<Result<Tokens, TokenFailure>, OidcError> {
        let client = match self.authenticate(&request.client).await? {
            Ok(client) => client,
            Err(refused) => return Ok(Err(refused)),
        };
        match request.grant_type.as_deref() {
            Some("authorization_code") => self.exchange_code(&client, request).await,
            Some("refresh_token") => self.refresh(&client, request).await,
            None => Ok(Err(failure(
                TokenError::InvalidRequest,
                "grant_type is missing",
            ))),
            Some(_) => Ok(Err(failure(
                TokenError::UnsupportedGrantType,
                "grant_type must be authorization_code or refresh_token",
            ))),
        }
    }

    async fn exchange_code(
        &self,
        client: &ClientRegistration,
        request: &TokenRequest,
    ) -> Result<Result<Tokens, TokenFailure>, OidcError> {
        let Some(code) = request.code.as_deref() else {
            return Ok(Err(failure(TokenError::InvalidRequest, "code is missing")));
        };
        let Ok(code) = Token::parse(code) else {
            return Ok(Err(invalid_grant("the code is not valid")));
        };
        let Some((id, issued, authorization)) = self.ctx.store.oidc_code(&code.hash()).await?
        else {
            return Ok(Err(invalid_grant("the code is not valid")));
        };
        let now = self.ctx.now();
        let checked = check_code_exchange(
            &issued,
            &client.client_id,
            request.redirect_uri.as_deref(),
            request.code_verifier.as_deref(),
            now,
        );
        match checked {
            Ok(()) => {}
            Err(CodeRefusal::Reused) => {
                return self.refuse_reused_code(id, &authorization, now).await
            }
            Err(refusal) => {
                return Ok(Err(invalid_grant(match refusal {
                    CodeRefusal::Expired => "the code has expired",
                    CodeRefusal::OtherClient => "the code was issued to another client",
                    CodeRefusal::OtherRedirectUri => {
                        "redirect_uri is not the one the code was issued for"
                    }
                    _ => "code_verifier does not match the code_challenge",
                })))
            }
        }
        let Some(user) = self.usable_user(&authorization).await? else {
            return Ok(Err(invalid_grant("the user may no longer sign in")));
        };
        if authorization.session_id.is_none() {
            return Ok(Err(invalid_grant("the user has signed out")));
        }
        let (access, refresh) = (Token::generate(&mut OsRng), Token::generate(&mut OsRng));
        // SPEC 15: a grant lasts as long as a session of the user's role may.
        let limits = self
            .ctx
            .store
            .role_by_id(user.role_id)
            .await?
            .map(|role| role.session_limits)
            .unwrap_or_default();
        let expires_at = authorization.auth_time.plus_seconds(limits.max_seconds());
        let redeemed = self
            .ctx
            .store
            .redeem_oidc_code(
                id,
                &authorization,
                expires_at,
                NewTokens {
                    refresh_hash: &refresh.hash(),
                    access_hash: &access.hash(),
                    access_expires_at: now.plus_seconds(ACCESS_TOKEN_SECONDS),
                },
                now,
            )
            .await?;
        if !redeemed {
            return self.refuse_reused_code(id, &authorization, now).await;
        }
        let id_token = self
            .id_token(&user, &authorization, authorization.nonce.as_deref(), now)
            .await?;
        Ok(Ok(Tokens {
            access_token: access,
            refresh_token: refresh,
            id_token,
            expires_in: ACCESS_TOKEN_SECONDS,
            scope: authorization.scopes.join(" "),
        }))
    }

    /// SPEC 13: a second use of a code is refused and revokes what the first issued.
    async fn refuse_reused_code(
        &self,
        id: CodeId,
        authorization: &Authorization,
        now: Timestamp,
    ) -> Result<Result<Tokens, TokenFailure>, OidcError> {
        let revoked = self.ctx.store.revoke_oidc_grants_of_code(id, now).await?;
        self.audit_revoked(authorization, "a code was used twice", revoked)
            .await?;
        Ok(Err(invalid_grant("the code was already used")))
    }

    async fn refresh(
        &self,
        client: &ClientRegistration,
        request: &TokenRequest,
    ) -> Result<Result<Tokens, TokenFailure>, OidcError> {
        let Some(token) = request.refresh_token.as_deref() else {
            return Ok(Err(failure(
                TokenError::InvalidRequest,
                "refresh_token is missing",
            )));
        };
        let Ok(token) = Token::parse(token) else {
            return Ok(Err(invalid_grant("the refresh token is not valid")));
        };
        let Some((grant, generation)) = self.ctx.store.oidc_refresh_token(&token.hash()).await?
        else {
            return Ok(Err(invalid_grant("the refresh token is not valid")));
        };
        if grant.authorization.client_id != client.client_id {
            return Ok(Err(invalid_grant(
                "the refresh token was issued to another client",
            )));
        }
        let now = self.ctx.now();
        let revoke = |reason| self.revoke_grant(&grant, reason, now);
        match refresh_use(
            generation,
            grant.generation,
            grant.revoked,
            !grant.live(now),
        ) {
            RefreshUse::Refused => {
                return Ok(Err(invalid_grant("the refresh token is no longer valid")))
            }
            RefreshUse::RevokeFamily => {
                revoke("a replaced refresh token was used again").await?;
                return Ok(Err(invalid_grant("the refresh token was already used")));
            }
            RefreshUse::Rotate => {}
        }
        let Some(user) = self.usable_user(&grant.authorization).await? else {
            return Ok(Err(invalid_grant("the user may no longer sign in")));
        };
        let (access, refresh) = (Token::generate(&mut OsRng), Token::generate(&mut OsRng));
        let rotated = self
            .ctx
            .store
            .rotate_oidc_refresh_token(
                grant.id,
                generation,
                NewTokens {
                    refresh_hash: &refresh.hash(),
                    access_hash: &access.hash(),
                    access_expires_at: now.plus_seconds(ACCESS_TOKEN_SECONDS),
                },
            )
            .await?;
        if !rotated {
            // Another request rotated it first: the same token used twice.
            revoke("a refresh token was used twice at once").await?;
            return Ok(Err(invalid_grant("the refresh token was already used")));
        }
        let id_token = self
            .id_token(&user, &grant.authorization, None, now)
            .await?;
        Ok(Ok(Tokens {
            access_token: access,
            refresh_token: refresh,
            id_token,
            expires_in: ACCESS_TOKEN_SECONDS,
            scope: grant.authorization.scopes.join(" "),
        }))
    }

    async fn revoke_grant(
        &self,
        grant: &Grant,
        reason: &str,
        now: Timestamp,
    ) -> Result<(), OidcError> {
        self.ctx.store.revoke_oidc_grant(grant.id, now).await?;
        self.audit_revoked(&grant.authorization, reason, 1).await
    }

    async fn audit_revoked(
        &self,
        authorization: &Authorization,
        reason: &str,
        grants: u64,
    ) -> Result<(), OidcError> {
        let user = self.ctx.store.user_by_id(authorization.user_id).await?;
        self.ctx
            .audit(
                AuditEvent::ApplicationTokensRevoked,
                None,
                user.as_ref().map(|user| user.username.as_str()),
                None,
                format!(
                    "application {}: {reason}; {grants} grant(s) revoked",
                    authorization.client_id.as_str()
                ),
            )
            .await?;
        Ok(())
    }

    /// The user of an authorization, if still active and not locked.
    async fn usable_user(&self, authorization: &Authorization) -> Result<Option<User>, OidcError> {
        let now = self.ctx.now();
        Ok(self
            .ctx
            .store
            .user_by_id(authorization.user_id)
            .await?
            .filter(|user| user.active && !user.is_locked(now)))
    }

    /// The user's `sub`: random, made at the first token, never another user's.
    async fn subject(&self, user: &User) -> Result<String, OidcError> {
        let mut bytes = [0u8; 16];
        OsRng.fill_bytes(&mut bytes);
        let candidate = data_encoding::BASE64URL_NOPAD.encode(&bytes);
        Ok(self.ctx.store.oidc_subject(user.id, &candidate).await?)
    }

    /// The claims of `user` for `scopes` (ID token and userinfo, SPEC 13).
    async fn user_claims(
        &self,
        user: &User,
        scopes: &[String],
    ) -> Result<Map<String, Value>, OidcError> {
        let mut claims = Map::new();
        claims.insert("sub".into(), self.subject(user).await?.into());
        let has = |scope: &str| scopes.iter().any(|s| s == scope);
        if has("profile") {
            claims.insert("preferred_username".into(), user.username.as_str().into());
            claims.insert("name".into(), user.display_name.as_str().into());
        }
        if has("email") {
            if let Some(email) = &user.email {
                claims.insert("email".into(), email.as_str().into());
            }
        }
        if has("role") {
            let role = self.ctx.store.role_by_id(user.role_id).await?;
            if let Some(role) = role {
                claims.insert("role".into(), role.name.as_str().into());
            }
        }
        Ok(claims)
    }

    async fn id_token(
        &self,
        user: &User,
        authorization: &Authorization,
        nonce: Option<&str>,
        now: Timestamp,
    ) -> Result<String, OidcError> {
        let mut claims = self.user_claims(user, &authorization.scopes).await?;
        let seconds = |at: Timestamp| at.unix_seconds();
        let more = json!({
            "iss": &*self.issuer,
            "aud": authorization.client_id.as_str(),
            "azp": authorization.client_id.as_str(),
            "iat": seconds(now),
            "exp": seconds(now.plus_seconds(ID_TOKEN_SECONDS)),
            "auth_time": seconds(authorization.auth_time),
            "amr": authorization.authentication.amr(),
            "acr": authorization.authentication.acr(),
        });
        if let Value::Object(more) = more {
            claims.extend(more);
        }
        if let Some(nonce) = nonce {
            claims.insert("nonce".into(), nonce.into());
        }
        let (kid, key) = self.keys.current(&self.ctx).await?;
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid);
        jsonwebtoken::encode(&header, &claims, &key).map_err(|_| OidcError::Sign)
    }

    /// `/oauth2/userinfo`: the claims of a live access token's user; `None` for a token
    /// that is unknown, expired or revoked, or whose user may no longer sign in.
    pub async fn userinfo(
        &self,
        access_token: &str,
    ) -> Result<Option<Map<String, Value>>, OidcError> {
        let Ok(token) = Token::parse(access_token) else {
            return Ok(None);
        };
        let now = self.ctx.now();
        let Some(grant) = self.ctx.store.oidc_access_token(&token.hash(), now).await? else {
            return Ok(None);
        };
        if !grant.live(now) {
            return Ok(None);
        }
        let Some(user) = self.usable_user(&grant.authorization).await? else {
            return Ok(None);
        };
        Ok(Some(
            self.user_claims(&user, &grant.authorization.scopes).await?,
        ))
    }

    /// The claims of an ID token this provider signed (any published key; it may have
    /// expired: a hint names a past sign-in). `None` for anything else, `alg: none`
    /// included.
    async fn verified_hint(&self, hint: &str) -> Result<Option<Map<String, Value>>, OidcError> {
        let Ok(header) = jsonwebtoken::decode_header(hint) else {
            return Ok(None);
        };
        if header.alg != Algorithm::RS256 {
            return Ok(None);
        }
        let keys = self.public_keys().await?;
        let Some(key) = keys
            .iter()
            .find(|key| header.kid.as_deref() == Some(key.kid.as_str()))
            .and_then(PublicKey::decoding_key)
        else {
            return Ok(None);
        };
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.set_issuer(&[&*self.issuer]);
        Ok(
            jsonwebtoken::decode::<Map<String, Value>>(hint, &key, &validation)
                .ok()
                .map(|data| data.claims),
        )
    }

    /// `GET /oauth2/logout` (`confirmed: false`) and its confirmation's POST
    /// (`confirmed: true`): ends the browser's twostep `session` (and with it what
    /// applications were issued from it), then back to the application's registered
    /// post-logout URI.
    pub async fn logout(
        &self,
        request: &LogoutRequest,
        session: Option<&str>,
        confirmed: bool,
    ) -> Result<LogoutAnswer, OidcError> {
        let hint = match request.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
            None => None,
            Some(hint) => match self.verified_hint(hint).await? {
                Some(claims) => Some(claims),
                None => {
                    return Ok(LogoutAnswer::Refused(
                        "the id_token_hint is not an ID token of this sign-in service",
                    ))
                }
            },
        };
        let hinted_client = hint
            .as_ref()
            .and_then(|claims| claims.get("aud"))
            .and_then(Value::as_str);
        let client_id = match (hinted_client, request.client_id.as_deref()) {
            (Some(a), Some(b)) if a != b => {
                return Ok(LogoutAnswer::Refused(
                    "client_id is not the id_token_hint's audience",
                ))
            }
            (Some(id), _) | (None, Some(id)) => Some(id),
            (None, None) => None,
        };
        let redirect = match request
            .post_logout_redirect_uri
            .as_deref()
            .filter(|u| !u.is_empty())
        {
            None => None,
            Some(uri) => {
                let client = self.client(client_id).await?;
                let registered = client.as_ref().is_some_and(|client| {
                    client
                        .post_logout_redirect_uris
                        .iter()
                        .any(|registered| registered.matches(uri))
                });
                if !registered {
                    return Ok(LogoutAnswer::Refused(
                        "post_logout_redirect_uri is not registered for this application",
                    ));
                }
                Some(with_query(uri, &[("state", request.state.as_deref())]))
            }
        };
        let Some((session, user)) = self.session(session).await? else {
            return Ok(LogoutAnswer::SignedOut { redirect });
        };
        let hinted_user = match hint
            .as_ref()
            .and_then(|claims| claims.get("sub"))
            .and_then(Value::as_str)
        {
            Some(sub) => self.subject(&user).await? == sub,
            None => false,
        };
        if !(hinted_user || confirmed) {
            return Ok(LogoutAnswer::Confirm);
        }
        self.ctx.store.delete_session(session.id).await?;
        Ok(LogoutAnswer::SignedOut { redirect })
    }
}
