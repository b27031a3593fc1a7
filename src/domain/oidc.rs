//! The pure rules of the OpenID Connect provider (SPEC section 13), as OpenID Connect Core
//! 1.0, RFC 6749 (OAuth 2.0) and RFC 7636 (PKCE) define them; no I/O, no clock, no
//! randomness of its own.
//!
//! - A registered application: [`ClientId`], [`RedirectUri`] (matched exactly as
//!   registered), [`ClientRegistration`].
//! - The authorization request ([`AuthorizationRequest::parse`]): what is wrong with it is
//!   either shown as a page ([`PageError`]: an unknown client or a redirect URI that is not
//!   registered, where redirecting would send the user to an attacker) or sent back to the
//!   client's redirect URI with `error` and `state` ([`RedirectError`], RFC 6749
//!   4.1.2.1).
//! - PKCE: only `S256` ([`CodeChallenge`], [`CodeChallenge::verifies`]); a public client
//!   must use it.
//! - Whether an existing session may answer ([`sign_in_need`]: `prompt=login`, `max_age`,
//!   a client that requires a second factor).
//! - How the user signed in, as the ID token says it ([`Authentication`]: `amr` per RFC
//!   8176 and `acr`).
//! - The code exchange ([`check_code_exchange`]): single use, 60 s, bound to the client,
//!   the redirect URI and the verifier; a second use revokes what the first issued.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::clock::Timestamp;
use crate::domain::{SessionId, UserId};

/// How long an authorization code may be exchanged (SPEC 13: 60 s).
pub const CODE_LIFETIME_SECONDS: i64 = 60;

/// `acr` of a sign-in with one factor (the password, or a session from one).
pub const ACR_SINGLE_FACTOR: &str = "urn:twostep:acr:single-factor";
/// `acr` of a sign-in with a second factor (a one-time password or a security key).
pub const ACR_MULTI_FACTOR: &str = "urn:twostep:acr:multi-factor";

/// An application's `client_id`: 1 to 64 of `A-Z a-z 0-9 . _ -` (it appears in URLs and
/// logs, so nothing that needs escaping).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a client id is 1 to 64 letters, digits, dots, underscores and hyphens")]
pub struct ClientIdError;

impl ClientId {
    pub fn parse(text: &str) -> Result<Self, ClientIdError> {
        let valid = (1..=64).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(ClientIdError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A redirect URI as registered: an absolute `https://` URL; `http://` only to this
/// machine (`localhost`, `127.0.0.1`, `[::1]`: RFC 8252's loopback redirect of native
/// apps); or a private-use scheme of a native app with a dot in it (`org.hospital.app:`,
/// RFC 8252 7.1). No fragment (RFC 6749 3.1.2), no user or password, at most 2,000
/// characters. Kept exactly as given: a request matches only the very same text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RedirectUri(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RedirectUriError {
    #[error("\"{0}\" is not an absolute URL")]
    NotAbsolute(String),
    #[error(
        "\"{0}\": a redirect URI uses https:// (http:// only to localhost, 127.0.0.1 or [::1])"
    )]
    Insecure(String),
    #[error("\"{0}\": a redirect URI has no fragment (#...)")]
    Fragment(String),
    #[error("\"{0}\": a redirect URI carries no user or password")]
    UserInfo(String),
    #[error("a redirect URI is at most 2,000 characters")]
    TooLong,
}

impl RedirectUri {
    pub const MAX_LENGTH: usize = 2000;

    pub fn parse(text: &str) -> Result<Self, RedirectUriError> {
        if text.len() > Self::MAX_LENGTH {
            return Err(RedirectUriError::TooLong);
        }
        let shown = || text.chars().take(200).collect::<String>();
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(RedirectUriError::NotAbsolute(shown()));
        }
        let url = url::Url::parse(text).map_err(|_| RedirectUriError::NotAbsolute(shown()))?;
        if url.fragment().is_some() || text.contains('#') {
            return Err(RedirectUriError::Fragment(shown()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(RedirectUriError::UserInfo(shown()));
        }
        match url.scheme() {
            "https" if url.host().is_some() => {}
            "http" if is_loopback_host(&url) => {}
            "http" | "https" => return Err(RedirectUriError::Insecure(shown())),
            // A native app's own scheme (reverse domain name).
            scheme if scheme.contains('.') => {}
            _ => return Err(RedirectUriError::Insecure(shown())),
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Exact matching (SPEC 13: "redirect URIs match exactly as registered"): no
    /// normalisation, no prefix, no case folding.
    pub fn matches(&self, given: &str) -> bool {
        self.0 == given
    }
}

fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(address)) => address.is_loopback(),
        Some(url::Host::Ipv6(address)) => address.is_loopback(),
        None => false,
    }
}

/// A registered application (SPEC 13's client registry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRegistration {
    pub client_id: ClientId,
    /// Shown to users on the sign-in page ("Sign in to continue to ...").
    pub name: String,
    pub redirect_uris: Vec<RedirectUri>,
    /// Where RP-initiated logout may return to.
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    /// Holds a client secret (a server-side application); a public client (a browser or
    /// native app) holds none and must use PKCE.
    pub confidential: bool,
    /// Its users do a second-factor step even where their role needs none.
    pub require_2fa: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistrationError {
    #[error("a name is 1 to 100 characters, without control characters")]
    Name,
    #[error("an application needs at least one redirect URI")]
    NoRedirectUri,
    #[error("at most 20 redirect URIs of each kind")]
    TooManyRedirectUris(RedirectList),
    #[error("the redirect URI \"{uri}\" is listed twice")]
    DuplicateRedirectUri { list: RedirectList, uri: String },
}

/// Which of a registration's lists of redirect URIs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirectList {
    /// `redirect_uris`: where codes go.
    Redirect,
    /// `post_logout_redirect_uris`: where RP-initiated logout may return to.
    PostLogout,
}

impl RedirectList {
    /// The list's name in SPEC 13's client body.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Redirect => "redirect_uris",
            Self::PostLogout => "post_logout_redirect_uris",
        }
    }
}

impl ClientRegistration {
    pub const MAX_REDIRECT_URIS: usize = 20;

    /// Checks what the parts' own parsers cannot: the name, and the lists.
    pub fn check(&self) -> Result<(), RegistrationError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(RegistrationError::Name);
        }
        if self.redirect_uris.is_empty() {
            return Err(RegistrationError::NoRedirectUri);
        }
        for (name, list) in [
            (RedirectList::Redirect, &self.redirect_uris),
            (RedirectList::PostLogout, &self.post_logout_redirect_uris),
        ] {
            if list.len() > Self::MAX_REDIRECT_URIS {
                return Err(RegistrationError::TooManyRedirectUris(name));
            }
            for (at, uri) in list.iter().enumerate() {
                if list[..at].contains(uri) {
                    return Err(RegistrationError::DuplicateRedirectUri {
                        list: name,
                        uri: uri.as_str().chars().take(200).collect(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The registered redirect URI that `given` is, exactly.
    pub fn redirect_uri(&self, given: &str) -> Option<&RedirectUri> {
        self.redirect_uris.iter().find(|uri| uri.matches(given))
    }
}

/// A PKCE code challenge, method `S256` (RFC 7636 4.2): the base64url (no padding) of the
/// SHA-256 of the verifier, 43 characters. `plain` is refused (SPEC 13).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// `code_challenge` with `code_challenge_method` (absent means `plain`, RFC 7636 4.3).
    pub fn parse(challenge: &str, method: Option<&str>) -> Result<Self, &'static str> {
        match method {
            Some("S256") => {}
            Some("plain") | None => {
                return Err("code_challenge_method must be S256 (plain is not accepted)")
            }
            Some(_) => return Err("code_challenge_method must be S256"),
        }
        let valid = challenge.len() == 43
            && challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
        if valid {
            Ok(Self(challenge.to_owned()))
        } else {
            Err("code_challenge must be the base64url SHA-256 of the verifier (43 characters)")
        }
    }

    /// The challenge of `verifier` (what a client computes; for tests and the store).
    pub fn of_verifier(verifier: &str) -> Self {
        Self(data_encoding::BASE64URL_NOPAD.encode(&Sha256::digest(verifier.as_bytes())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `verifier` is the one this challenge was made from: a verifier is 43 to
    /// 128 unreserved characters (RFC 7636 4.1); compared in constant time.
    pub fn verifies(&self, verifier: &str) -> bool {
        let well_formed = (43..=128).contains(&verifier.len())
            && verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        let computed = Self::of_verifier(verifier);
        let same: bool = computed.0.as_bytes().ct_eq(self.0.as_bytes()).into();
        well_formed && same
    }
}

/// RFC 6749 4.1.2.1 and OpenID Connect Core 3.1.2.6 error codes sent to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OAuthError {
    InvalidRequest,
    UnauthorizedClient,
    AccessDenied,
    UnsupportedResponseType,
    InvalidScope,
    ServerError,
    TemporarilyUnavailable,
    LoginRequired,
    RequestNotSupported,
    RequestUriNotSupported,
}

impl OAuthError {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::LoginRequired => "login_required",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
        }
    }
}

/// An authorization request that cannot be answered at the client's redirect URI (RFC
/// 6749 4.1.2.1: "the authorization server SHOULD inform the resource owner of the error
/// and MUST NOT automatically redirect"): shown to the user as a page.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PageError {
    #[error("the request names no application (client_id is missing)")]
    MissingClientId,
    #[error("the application is not registered with this sign-in service")]
    UnknownClient,
    #[error("the request has no redirect_uri")]
    MissingRedirectUri,
    #[error("the request's redirect_uri is not one registered for this application")]
    RedirectUriNotRegistered,
    #[error("the parameter {0} appears more than once")]
    Repeated(&'static str),
    /// The sign-in an application asked for took too long, or was already answered.
    #[error("this sign-in request has expired; go back to the application and start again")]
    Expired,
}

/// What is sent back to the client's (registered) redirect URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedirectError {
    pub redirect_uri: RedirectUri,
    pub error: OAuthError,
    /// For the client's developers; never holds a secret.
    pub description: String,
    /// The request's `state`, returned as given.
    pub state: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum AuthorizeError {
    Page(PageError),
    Redirect(RedirectError),
}

/// `prompt` (OpenID Connect Core 3.1.2.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prompt {
    /// `none`: no page may be shown; without a usable session, `login_required`.
    pub none: bool,
    /// `login`: sign in again even with a session.
    pub login: bool,
}

/// A valid authorization request of a registered client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationRequest {
    pub client_id: ClientId,
    pub redirect_uri: RedirectUri,
    /// The scopes asked for; `openid` is among them.
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<CodeChallenge>,
    /// Seconds since the last sign-in beyond which the user must sign in again.
    pub max_age: Option<u64>,
    pub prompt: Prompt,
}

/// The scopes twostep answers (others are ignored, as OpenID Connect allows).
pub const SCOPES: [&str; 4] = ["openid", "profile", "email", "role"];

impl AuthorizationRequest {
    /// Parses the query of `GET /oauth2/authorize` for `client` (the registration of its
    /// `client_id`, looked up by the caller; `None`: unknown). The client and redirect URI
    /// are checked first: only a request with both valid may be answered by a redirect.
    pub fn parse(
        params: &[(String, String)],
        client: Option<&ClientRegistration>,
    ) -> Result<Self, AuthorizeError> {
        let page = |error| Err(AuthorizeError::Page(error));
        let single = |name: &'static str| -> Result<Option<&str>, &'static str> {
            let mut values = params.iter().filter(|(key, _)| key == name);
            let first = values.next().map(|(_, value)| value.as_str());
            match values.next() {
                Some(_) => Err(name),
                None => Ok(first.filter(|value| !value.is_empty())),
            }
        };
        let client_id = match single("client_id") {
            Err(name) => return page(PageError::Repeated(name)),
            Ok(None) => return page(PageError::MissingClientId),
            Ok(Some(id)) => id,
        };
        let Some(client) = client.filter(|client| client.client_id.as_str() == client_id) else {
            return page(PageError::UnknownClient);
        };
        let redirect_uri = match single("redirect_uri") {
            Err(name) => return page(PageError::Repeated(name)),
            Ok(None) => return page(PageError::MissingRedirectUri),
            Ok(Some(uri)) => match client.redirect_uri(uri) {
                Some(registered) => registered.clone(),
                None => return page(PageError::RedirectUriNotRegistered),
            },
        };
        // From here on, errors go back to the client, with its state.
        let state = single("state").ok().flatten().map(str::to_owned);
        let fail = |error: OAuthError, description: &str| {
            Err(AuthorizeError::Redirect(RedirectError {
                redirect_uri: redirect_uri.clone(),
                error,
                description: description.to_owned(),
                state: state.clone(),
            }))
        };
        let get = |name: &'static str| single(name);
        let values = (|| {
            Ok::<_, &'static str>((
                get("response_type")?,
                get("scope")?,
                get("nonce")?,
                get("code_challenge")?,
                get("code_challenge_method")?,
                get("max_age")?,
                get("prompt")?,
                get("response_mode")?,
            ))
        })();
        let Ok((response_type, scope, nonce, challenge, method, max_age, prompt, response_mode)) =
            values
        else {
            return fail(
                OAuthError::InvalidRequest,
                "a parameter appears more than once",
            );
        };
        if params.iter().any(|(key, _)| key == "request") {
            return fail(
                OAuthError::RequestNotSupported,
                "request objects are not supported",
            );
        }
        if params.iter().any(|(key, _)| key == "request_uri") {
            return fail(
                OAuthError::RequestUriNotSupported,
                "request_uri is not supported",
            );
        }
        match response_type {
            Some("code") => {}
            None => return fail(OAuthError::InvalidRequest, "response_type is missing"),
            Some(_) => {
                return fail(
                    OAuthError::UnsupportedResponseType,
                    "only the authorization code flow (response_type=code) is supported",
                )
            }
        }
        if !matches!(response_mode, None | Some("query")) {
            return fail(OAuthError::InvalidRequest, "response_mode must be query");
        }
        let scopes: Vec<String> = scope
            .unwrap_or("")
            .split(' ')
            .filter(|scope| !scope.is_empty())
            .map(str::to_owned)
            .collect();
        if !scopes.iter().any(|scope| scope == "openid") {
            return fail(OAuthError::InvalidScope, "the scope must include openid");
        }
        if state.as_ref().is_some_and(|state| state.len() > 1024)
            || nonce.is_some_and(|nonce| nonce.len() > 1024)
        {
            return fail(
                OAuthError::InvalidRequest,
                "state and nonce are at most 1024 characters",
            );
        }
        let code_challenge = match (challenge, method) {
            (Some(challenge), method) => match CodeChallenge::parse(challenge, method) {
                Ok(challenge) => Some(challenge),
                Err(problem) => return fail(OAuthError::InvalidRequest, problem),
            },
            (None, Some(_)) => {
                return fail(
                    OAuthError::InvalidRequest,
                    "code_challenge_method without code_challenge",
                )
            }
            (None, None) if !client.confidential => {
                return fail(
                    OAuthError::InvalidRequest,
                    "a public client must use PKCE (code_challenge with S256)",
                )
            }
            (None, None) => None,
        };
        let max_age = match max_age {
            None => None,
            Some(text) => match text.parse::<u64>() {
                Ok(seconds) if text.bytes().all(|b| b.is_ascii_digit()) => Some(seconds),
                _ => {
                    return fail(
                        OAuthError::InvalidRequest,
                        "max_age must be a whole number of seconds",
                    )
                }
            },
        };
        let mut parsed_prompt = Prompt::default();
        for value in prompt.unwrap_or("").split(' ').filter(|v| !v.is_empty()) {
            match value {
                "none" => parsed_prompt.none = true,
                "login" => parsed_prompt.login = true,
                // No consent page: twostep's applications are registered by administrators.
                "consent" | "select_account" => {}
                _ => return fail(OAuthError::InvalidRequest, "prompt has an unknown value"),
            }
        }
        if parsed_prompt.none
            && prompt
                .unwrap_or("")
                .split(' ')
                .filter(|v| !v.is_empty())
                .count()
                > 1
        {
            return fail(
                OAuthError::InvalidRequest,
                "prompt=none cannot be combined with other values",
            );
        }
        Ok(Self {
            client_id: client.client_id.clone(),
            redirect_uri,
            scopes,
            state,
            nonce: nonce.map(str::to_owned),
            code_challenge,
            max_age,
            prompt: parsed_prompt,
        })
    }
}

/// How a user signed in, for the ID token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Authentication {
    pub password: bool,
    /// A one-time password (device, emailed, or a recovery code).
    pub otp: bool,
    /// A security key (WebAuthn).
    pub hardware_key: bool,
    /// The one-time code was a temporary access code from the service desk (SPEC 15):
    /// `otp` is set too. Stored only; no `amr` value of its own.
    pub temporary_access: bool,
}

impl Authentication {
    /// RFC 8176 `amr` values: `pwd`, `otp`, `hwk`, and `mfa` when more than one kind of
    /// factor was used.
    pub fn amr(self) -> Vec<&'static str> {
        let mut amr = Vec::new();
        if self.password {
            amr.push("pwd");
        }
        if self.otp {
            amr.push("otp");
        }
        if self.hardware_key {
            amr.push("hwk");
        }
        if self.factors() > 1 {
            amr.push("mfa");
        }
        amr
    }

    pub fn acr(self) -> &'static str {
        if self.second_factor() {
            ACR_MULTI_FACTOR
        } else {
            ACR_SINGLE_FACTOR
        }
    }

    /// A factor beyond the password (an OTP or a security key).
    pub fn second_factor(self) -> bool {
        self.otp || self.hardware_key
    }

    /// The stored form: the `amr` factor names, comma-separated (`pwd`, `pwd,otp`).
    pub fn encode(self) -> String {
        let mut names = Vec::new();
        for (used, name) in [
            (self.password, "pwd"),
            (self.otp, "otp"),
            (self.hardware_key, "hwk"),
            (self.temporary_access, "tac"),
        ] {
            if used {
                names.push(name);
            }
        }
        names.join(",")
    }

    /// The stored form read back; `None` for text no version wrote.
    pub fn decode(text: &str) -> Option<Self> {
        let mut authentication = Self::default();
        for name in text.split(',').filter(|name| !name.is_empty()) {
            let used = match name {
                "pwd" => &mut authentication.password,
                "otp" => &mut authentication.otp,
                "hwk" => &mut authentication.hardware_key,
                "tac" => &mut authentication.temporary_access,
                _ => return None,
            };
            *used = true;
        }
        Some(authentication)
    }

    fn factors(self) -> usize {
        [self.password, self.otp, self.hardware_key]
            .into_iter()
            .filter(|used| *used)
            .count()
    }
}

/// A session the browser already has, as [`sign_in_need`] sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExistingSignIn {
    pub auth_time: Timestamp,
    pub authentication: Authentication,
}

/// What `/oauth2/authorize` does about signing in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignInNeed {
    /// The session answers: a code is issued at once.
    Reuse,
    /// The user signs in (again) through twostep's sign-in (SPEC section 3 applies).
    SignIn {
        /// The client requires a second factor: an OTP step even where the role needs
        /// none.
        second_factor: bool,
    },
    /// `prompt=none` and no usable session: `login_required` to the client.
    LoginRequired,
}

/// SPEC 13: "an existing session is reused unless `prompt=login` or `max_age` demands a new
/// one"; a client with `require_2fa` also needs a session with a second factor.
pub fn sign_in_need(
    existing: Option<ExistingSignIn>,
    request: &AuthorizationRequest,
    client: &ClientRegistration,
    now: Timestamp,
) -> SignInNeed {
    let usable = existing.filter(|session| {
        let fresh = request.max_age.map_or(true, |max_age| {
            let age_ms = now.millis().saturating_sub(session.auth_time.millis());
            u64::try_from(age_ms).map_or(true, |age_ms| age_ms / 1000 <= max_age)
        });
        let strong = !client.require_2fa || session.authentication.second_factor();
        fresh && strong && !request.prompt.login
    });
    match (usable, request.prompt.none) {
        (Some(_), _) => SignInNeed::Reuse,
        (None, true) => SignInNeed::LoginRequired,
        (None, false) => SignInNeed::SignIn {
            second_factor: client.require_2fa,
        },
    }
}

/// An issued authorization code, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedCode {
    pub client_id: ClientId,
    pub redirect_uri: RedirectUri,
    pub code_challenge: Option<CodeChallenge>,
    pub issued_at: Timestamp,
    /// Already exchanged once.
    pub used: bool,
}

/// What a code or a grant stands for: who signed in, how and when, for which client and
/// scopes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    pub client_id: ClientId,
    pub user_id: UserId,
    /// The twostep session the user signed in with; the grant ends with it.
    pub session_id: Option<SessionId>,
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
    pub auth_time: Timestamp,
    pub authentication: Authentication,
}

/// What a code exchange issued (a refresh token family), as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub id: i64,
    pub authorization: Authorization,
    /// The generation of the family's newest refresh token.
    pub generation: u32,
    pub expires_at: Timestamp,
    pub revoked: bool,
}

impl Grant {
    /// Whether its tokens may still be used at `now`: not revoked, before its end, and
    /// the session it came from still there (signing out of twostep ends it).
    pub fn live(&self, now: Timestamp) -> bool {
        !self.revoked && now < self.expires_at && self.authorization.session_id.is_some()
    }
}

/// The token endpoint's errors (RFC 6749 5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenError {
    InvalidRequest,
    /// Client authentication failed (401).
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
}

impl TokenError {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
        }
    }
}

/// Why a code exchange is refused; each is `invalid_grant` to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeRefusal {
    /// The code was exchanged before: what that exchange issued is revoked (SPEC 13).
    Reused,
    Expired,
    OtherClient,
    OtherRedirectUri,
    /// No verifier, a verifier without a challenge, or one that does not match.
    Verifier,
}

/// The checks of `POST /oauth2/token` with `grant_type=authorization_code` for an
/// authenticated (or public) `client_id`: single use, within [`CODE_LIFETIME_SECONDS`],
/// the same client and exact redirect URI, and the PKCE verifier of the challenge.
pub fn check_code_exchange(
    code: &IssuedCode,
    client_id: &ClientId,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
    now: Timestamp,
) -> Result<(), CodeRefusal> {
    if code.used {
        return Err(CodeRefusal::Reused);
    }
    let age_ms = now.millis().saturating_sub(code.issued_at.millis());
    if !(0..CODE_LIFETIME_SECONDS * 1000).contains(&age_ms) {
        return Err(CodeRefusal::Expired);
    }
    if code.client_id != *client_id {
        return Err(CodeRefusal::OtherClient);
    }
    if !redirect_uri.is_some_and(|given| code.redirect_uri.matches(given)) {
        return Err(CodeRefusal::OtherRedirectUri);
    }
    match (&code.code_challenge, verifier) {
        (Some(challenge), Some(verifier)) if challenge.verifies(verifier) => Ok(()),
        (None, None) => Ok(()),
        _ => Err(CodeRefusal::Verifier),
    }
}

/// A refresh token's place in its family (SPEC 13: "refresh tokens rotate at each use; a
/// reused one revokes the family").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshUse {
    /// The family's current token: a new one replaces it.
    Rotate,
    /// A token the family has already rotated past: a stolen copy, or a replay. The whole
    /// family is revoked.
    RevokeFamily,
    /// The family was revoked or has expired.
    Refused,
}

/// `generation`: the presented token's number in its family; `current`: the family's
/// latest; `revoked` / `expired`: the family's state.
pub fn refresh_use(generation: u32, current: u32, revoked: bool, expired: bool) -> RefreshUse {
    if revoked || expired {
        RefreshUse::Refused
    } else if generation == current {
        RefreshUse::Rotate
    } else {
        RefreshUse::RevokeFamily
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(confidential: bool, require_2fa: bool) -> ClientRegistration {
        ClientRegistration {
            client_id: ClientId::parse("ehr").unwrap(),
            name: "Electronic Health Record".to_owned(),
            redirect_uris: vec![
                RedirectUri::parse("https://ehr.hospital.example/oidc/callback").unwrap(),
            ],
            post_logout_redirect_uris: Vec::new(),
            confidential,
            require_2fa,
        }
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    /// RFC 7636 Appendix B's challenge of that verifier.
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn base(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut all = vec![
            ("client_id", "ehr"),
            ("redirect_uri", "https://ehr.hospital.example/oidc/callback"),
            ("response_type", "code"),
            ("scope", "openid profile"),
            ("state", "af0ifjsldkj"),
        ];
        all.extend_from_slice(extra);
        params(&all)
    }

    fn redirect_error(result: Result<AuthorizationRequest, AuthorizeError>) -> OAuthError {
        match result {
            Err(AuthorizeError::Redirect(error)) => {
                assert_eq!(error.state.as_deref(), Some("af0ifjsldkj"), "state kept");
                error.error
            }
            other => panic!("a redirected error, not {other:?}"),
        }
    }

    /// SPEC 13: redirect URIs are https (http to loopback only), without a fragment, kept
    /// as given and matched exactly.
    #[test]
    fn redirect_uris_are_checked_and_matched_exactly() {
        for good in [
            "https://ehr.hospital.example/cb",
            "https://ehr.hospital.example:8443/cb?x=1",
            "http://127.0.0.1:8765/cb",
            "http://localhost/cb",
            "http://[::1]:9000/cb",
            "org.hospital.ward:/oauth2redirect",
        ] {
            assert!(RedirectUri::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "http://ehr.hospital.example/cb",
            "https://ehr.hospital.example/cb#x",
            "https://user:pw@ehr.hospital.example/cb",
            "/cb",
            "javascript:alert(1)",
            "https://ehr.hospital.example/c b",
            "ftp://ehr.hospital.example/cb",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad}");
        }
        let uri = RedirectUri::parse("https://ehr.hospital.example/cb").unwrap();
        assert!(uri.matches("https://ehr.hospital.example/cb"));
        for near in [
            "https://ehr.hospital.example/cb/",
            "https://ehr.hospital.example/cB",
            "https://EHR.hospital.example/cb",
            "https://ehr.hospital.example/cb?",
            "https://ehr.hospital.example:443/cb",
            "https://ehr.hospital.example/c",
        ] {
            assert!(!uri.matches(near), "{near}");
        }
        assert!(RedirectUri::parse(&format!("https://h.example/{}", "a".repeat(2000))).is_err());
    }

    #[test]
    fn client_ids_and_registrations_are_checked() {
        assert!(ClientId::parse("ehr-prod_2.x").is_ok());
        for bad in ["", "a b", "ehr/1", &"a".repeat(65)] {
            assert!(ClientId::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(client(true, false).check(), Ok(()));
        let unnamed = ClientRegistration {
            name: " ".to_owned(),
            ..client(true, false)
        };
        assert_eq!(unnamed.check(), Err(RegistrationError::Name));
        let none = ClientRegistration {
            redirect_uris: Vec::new(),
            ..client(true, false)
        };
        assert_eq!(none.check(), Err(RegistrationError::NoRedirectUri));
        let twice = ClientRegistration {
            redirect_uris: vec![client(true, false).redirect_uris[0].clone(); 2],
            ..client(true, false)
        };
        assert!(matches!(
            twice.check(),
            Err(RegistrationError::DuplicateRedirectUri {
                list: RedirectList::Redirect,
                ..
            })
        ));
        let logout = RedirectUri::parse("https://ehr.hospital.example/bye").unwrap();
        let twice_after_logout = ClientRegistration {
            post_logout_redirect_uris: vec![logout.clone(), logout],
            ..client(true, false)
        };
        assert!(matches!(
            twice_after_logout.check(),
            Err(RegistrationError::DuplicateRedirectUri {
                list: RedirectList::PostLogout,
                ..
            })
        ));
        let many = ClientRegistration {
            post_logout_redirect_uris: (0..21)
                .map(|n| RedirectUri::parse(&format!("https://ehr.hospital.example/{n}")).unwrap())
                .collect(),
            ..client(true, false)
        };
        assert_eq!(
            many.check(),
            Err(RegistrationError::TooManyRedirectUris(
                RedirectList::PostLogout
            ))
        );
    }

    /// RFC 7636 Appendix B, and SPEC 13: only S256; plain (or no method) refused.
    #[test]
    fn pkce_is_s256_only_and_checks_the_verifier() {
        let challenge = CodeChallenge::parse(CHALLENGE, Some("S256")).unwrap();
        assert_eq!(CodeChallenge::of_verifier(VERIFIER), challenge);
        assert!(challenge.verifies(VERIFIER));
        assert!(!challenge.verifies("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj"));
        assert!(!challenge.verifies("short"));
        assert!(CodeChallenge::parse(CHALLENGE, Some("plain")).is_err());
        assert!(CodeChallenge::parse(CHALLENGE, None).is_err());
        assert!(CodeChallenge::parse("abc", Some("S256")).is_err());
        assert!(CodeChallenge::parse(&format!("{}=", &CHALLENGE[..42]), Some("S256")).is_err());
    }

    /// RFC 6749 4.1.2.1: an unknown client or an unregistered redirect URI is a page,
    /// never a redirect.
    #[test]
    fn an_unknown_client_or_redirect_uri_is_shown_not_redirected() {
        let confidential = client(true, false);
        let page = |pairs: Vec<(String, String)>, client: Option<&ClientRegistration>| {
            match AuthorizationRequest::parse(&pairs, client) {
                Err(AuthorizeError::Page(error)) => error,
                other => panic!("a page, not {other:?}"),
            }
        };
        assert_eq!(
            page(params(&[]), Some(&confidential)),
            PageError::MissingClientId
        );
        assert_eq!(page(base(&[]), None), PageError::UnknownClient);
        let other = ClientRegistration {
            client_id: ClientId::parse("lab").unwrap(),
            ..client(true, false)
        };
        assert_eq!(page(base(&[]), Some(&other)), PageError::UnknownClient);
        let mut wrong_uri = base(&[]);
        wrong_uri[1].1 = "https://ehr.hospital.example/oidc/callbacK".to_owned();
        assert_eq!(
            page(wrong_uri, Some(&confidential)),
            PageError::RedirectUriNotRegistered
        );
        let mut no_uri = base(&[]);
        no_uri.remove(1);
        assert_eq!(
            page(no_uri, Some(&confidential)),
            PageError::MissingRedirectUri
        );
        assert_eq!(
            page(base(&[("client_id", "ehr")]), Some(&confidential)),
            PageError::Repeated("client_id")
        );
    }

    #[test]
    fn other_errors_go_back_to_the_client_with_its_state() {
        let confidential = client(true, false);
        let public = client(false, false);
        let parse = |pairs: &[(&str, &str)], client: &ClientRegistration| {
            AuthorizationRequest::parse(&base(pairs), Some(client))
        };
        let mut token = base(&[]);
        token[2].1 = "token".to_owned();
        assert_eq!(
            redirect_error(AuthorizationRequest::parse(&token, Some(&confidential))),
            OAuthError::UnsupportedResponseType
        );
        let mut no_openid = base(&[]);
        no_openid[3].1 = "profile".to_owned();
        assert_eq!(
            redirect_error(AuthorizationRequest::parse(&no_openid, Some(&confidential))),
            OAuthError::InvalidScope
        );
        assert_eq!(
            redirect_error(parse(&[], &public)),
            OAuthError::InvalidRequest,
            "a public client must use PKCE"
        );
        assert_eq!(
            redirect_error(parse(
                &[
                    ("code_challenge", CHALLENGE),
                    ("code_challenge_method", "plain")
                ],
                &public
            )),
            OAuthError::InvalidRequest
        );
        assert_eq!(
            redirect_error(parse(&[("max_age", "-1")], &confidential)),
            OAuthError::InvalidRequest
        );
        assert_eq!(
            redirect_error(parse(&[("prompt", "none login")], &confidential)),
            OAuthError::InvalidRequest
        );
        assert_eq!(
            redirect_error(parse(&[("request", "eyJ...")], &confidential)),
            OAuthError::RequestNotSupported
        );
        assert_eq!(
            redirect_error(parse(&[("response_mode", "fragment")], &confidential)),
            OAuthError::InvalidRequest
        );
        assert_eq!(
            redirect_error(parse(&[("nonce", "a"), ("nonce", "b")], &confidential)),
            OAuthError::InvalidRequest
        );
    }

    #[test]
    fn a_valid_request_keeps_what_the_client_sent() {
        let public = client(false, false);
        let request = AuthorizationRequest::parse(
            &base(&[
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
                ("nonce", "n-0S6_WzA2Mj"),
                ("max_age", "300"),
                ("prompt", "login"),
            ]),
            Some(&public),
        )
        .unwrap();
        assert_eq!(request.scopes, ["openid", "profile"]);
        assert_eq!(request.state.as_deref(), Some("af0ifjsldkj"));
        assert_eq!(request.nonce.as_deref(), Some("n-0S6_WzA2Mj"));
        assert_eq!(request.max_age, Some(300));
        assert!(request.prompt.login && !request.prompt.none);
        assert!(request.code_challenge.unwrap().verifies(VERIFIER));
    }

    /// RFC 8176 values and the two `acr` levels.
    #[test]
    fn amr_and_acr_say_how_the_user_signed_in() {
        let password = Authentication {
            password: true,
            ..Authentication::default()
        };
        assert_eq!(password.amr(), ["pwd"]);
        assert_eq!(password.acr(), ACR_SINGLE_FACTOR);
        let with_otp = Authentication {
            otp: true,
            ..password
        };
        assert_eq!(with_otp.amr(), ["pwd", "otp", "mfa"]);
        assert_eq!(with_otp.acr(), ACR_MULTI_FACTOR);
        let key_only = Authentication {
            hardware_key: true,
            ..Authentication::default()
        };
        assert_eq!(key_only.amr(), ["hwk"]);
        assert_eq!(key_only.acr(), ACR_MULTI_FACTOR);
        // SPEC 15: a temporary access code is a one-time code to applications; the
        // session remembers it (for the account page), the claims do not tell.
        let temporary = Authentication {
            temporary_access: true,
            ..with_otp
        };
        assert_eq!(temporary.amr(), ["pwd", "otp", "mfa"]);
        assert_eq!(temporary.encode(), "pwd,otp,tac");
        assert_eq!(Authentication::decode("pwd,otp,tac"), Some(temporary));
    }

    /// SPEC 13: a session is reused unless prompt=login or max_age demands a new sign-in;
    /// a client with require_2fa needs a session with a second factor.
    #[test]
    fn a_session_is_reused_unless_the_request_or_the_client_demands_more() {
        let now = Timestamp::from_millis(1_000_000_000);
        let session = |age_seconds: i64, otp: bool| ExistingSignIn {
            auth_time: Timestamp::from_millis(now.millis() - age_seconds * 1000),
            authentication: Authentication {
                password: true,
                otp,
                hardware_key: false,
                temporary_access: false,
            },
        };
        let confidential = client(true, false);
        let strict = client(true, true);
        let request = |extra: &[(&str, &str)]| {
            AuthorizationRequest::parse(&base(extra), Some(&confidential)).unwrap()
        };
        let plain = request(&[]);
        assert_eq!(
            sign_in_need(None, &plain, &confidential, now),
            SignInNeed::SignIn {
                second_factor: false
            }
        );
        assert_eq!(
            sign_in_need(Some(session(10, false)), &plain, &confidential, now),
            SignInNeed::Reuse
        );
        let login = request(&[("prompt", "login")]);
        assert!(matches!(
            sign_in_need(Some(session(10, true)), &login, &confidential, now),
            SignInNeed::SignIn { .. }
        ));
        let max_age = request(&[("max_age", "60")]);
        assert_eq!(
            sign_in_need(Some(session(60, false)), &max_age, &confidential, now),
            SignInNeed::Reuse
        );
        assert!(matches!(
            sign_in_need(Some(session(61, false)), &max_age, &confidential, now),
            SignInNeed::SignIn { .. }
        ));
        assert_eq!(
            sign_in_need(Some(session(10, false)), &plain, &strict, now),
            SignInNeed::SignIn {
                second_factor: true
            }
        );
        assert_eq!(
            sign_in_need(Some(session(10, true)), &plain, &strict, now),
            SignInNeed::Reuse
        );
        let none = request(&[("prompt", "none")]);
        assert_eq!(
            sign_in_need(None, &none, &confidential, now),
            SignInNeed::LoginRequired
        );
        assert_eq!(
            sign_in_need(Some(session(10, false)), &none, &strict, now),
            SignInNeed::LoginRequired
        );
    }

    /// SPEC 13: codes are single use, 60 s, bound to client, redirect URI and verifier.
    #[test]
    fn a_code_is_exchanged_once_within_a_minute_by_its_client_with_its_verifier() {
        let issued_at = Timestamp::from_millis(5_000_000);
        let ehr = ClientId::parse("ehr").unwrap();
        let uri = "https://ehr.hospital.example/oidc/callback";
        let code = IssuedCode {
            client_id: ehr.clone(),
            redirect_uri: RedirectUri::parse(uri).unwrap(),
            code_challenge: Some(CodeChallenge::of_verifier(VERIFIER)),
            issued_at,
            used: false,
        };
        let at = |seconds: i64| Timestamp::from_millis(issued_at.millis() + seconds * 1000);
        assert_eq!(
            check_code_exchange(&code, &ehr, Some(uri), Some(VERIFIER), at(59)),
            Ok(())
        );
        assert_eq!(
            check_code_exchange(&code, &ehr, Some(uri), Some(VERIFIER), at(60)),
            Err(CodeRefusal::Expired)
        );
        let used = IssuedCode {
            used: true,
            ..code.clone()
        };
        assert_eq!(
            check_code_exchange(&used, &ehr, Some(uri), Some(VERIFIER), at(1)),
            Err(CodeRefusal::Reused)
        );
        assert_eq!(
            check_code_exchange(
                &code,
                &ClientId::parse("lab").unwrap(),
                Some(uri),
                Some(VERIFIER),
                at(1)
            ),
            Err(CodeRefusal::OtherClient)
        );
        assert_eq!(
            check_code_exchange(&code, &ehr, Some(&format!("{uri}/")), Some(VERIFIER), at(1)),
            Err(CodeRefusal::OtherRedirectUri)
        );
        assert_eq!(
            check_code_exchange(&code, &ehr, None, Some(VERIFIER), at(1)),
            Err(CodeRefusal::OtherRedirectUri)
        );
        for verifier in [None, Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj")] {
            assert_eq!(
                check_code_exchange(&code, &ehr, Some(uri), verifier, at(1)),
                Err(CodeRefusal::Verifier)
            );
        }
        let without_pkce = IssuedCode {
            code_challenge: None,
            ..code
        };
        assert_eq!(
            check_code_exchange(&without_pkce, &ehr, Some(uri), None, at(1)),
            Ok(())
        );
        assert_eq!(
            check_code_exchange(&without_pkce, &ehr, Some(uri), Some(VERIFIER), at(1)),
            Err(CodeRefusal::Verifier)
        );
    }

    #[test]
    fn a_reused_refresh_token_revokes_its_family() {
        assert_eq!(refresh_use(3, 3, false, false), RefreshUse::Rotate);
        assert_eq!(refresh_use(2, 3, false, false), RefreshUse::RevokeFamily);
        assert_eq!(refresh_use(3, 3, true, false), RefreshUse::Refused);
        assert_eq!(refresh_use(3, 3, false, true), RefreshUse::Refused);
    }
}
