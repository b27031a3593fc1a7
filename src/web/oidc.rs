//! The OpenID Connect provider's endpoints (SPEC 13), as OpenID Connect Core 1.0,
//! Discovery 1.0, RP-Initiated Logout 1.0 and RFC 6749 / 7636 define them: discovery, the
//! JWKS, authorize (and its return after twostep's own sign-in pages), token, userinfo and
//! logout. Each handler is one call of [`Oidc`]; errors sent to a client have the shapes
//! of RFC 6749 (a redirect with `error` and `state`, or a JSON body with `error` and
//! `error_description`); what must not go back to a client is a page.
//!
//! [`Oidc`]: crate::service::oidc::Oidc

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::header::{self, HeaderValue};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use data_encoding::BASE64;
use serde_json::{json, Value};

use super::html::{csrf_ok, form_expired, internal_error, page, problem, with_cookie, Layout};
use super::{cookies, request_id, AppState};
use crate::service::oidc::{
    AuthorizeAnswer, ClientCredentials, LogoutAnswer, LogoutRequest, OidcError, TokenFailure,
    TokenRequest,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/oauth2/jwks", get(jwks))
        .route("/oauth2/authorize", get(authorize))
        .route("/oauth2/authorize/resume", get(resume))
        .route("/oauth2/token", axum::routing::post(token))
        .route("/oauth2/userinfo", get(userinfo).post(userinfo))
        .route("/oauth2/logout", get(logout).post(logout_confirmed))
}

/// How long the waiting request's cookie lives (the request itself expires in the store).
const AUTHORIZE_COOKIE_SECONDS: i64 = 30 * 60;

/// The query's or form's pairs, in order (repeated names kept: the rules refuse them).
fn pairs(text: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(text.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// A 302 to `location` (a client's redirect URI).
fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => no_store((StatusCode::FOUND, [(header::LOCATION, value)]).into_response()),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn internal(state: &AppState, headers: &HeaderMap, error: OidcError) -> Response {
    let id = request_id();
    tracing::error!(request_id = %id, %error, "an OpenID Connect request failed");
    internal_error(state, headers, id)
}

fn json_internal(error: OidcError) -> Response {
    let id = request_id();
    tracing::error!(request_id = %id, %error, "an OpenID Connect request failed");
    no_store(
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": "server_error", "error_description": format!("reference {id}")})),
        )
            .into_response(),
    )
}

/// `GET /.well-known/openid-configuration` (Discovery 1.0 section 3).
async fn discovery(State(state): State<AppState>) -> Response {
    let issuer = state.oidc.issuer();
    let body = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth2/authorize"),
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "userinfo_endpoint": format!("{issuer}/oauth2/userinfo"),
        "jwks_uri": format!("{issuer}/oauth2/jwks"),
        "end_session_endpoint": format!("{issuer}/oauth2/logout"),
        "scopes_supported": crate::domain::oidc::SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "amr",
            "acr", "azp", "preferred_username", "name", "email", "role"],
        "acr_values_supported": [crate::domain::oidc::ACR_SINGLE_FACTOR,
            crate::domain::oidc::ACR_MULTI_FACTOR],
        "prompt_values_supported": ["none", "login"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
    });
    Json(body).into_response()
}

/// `GET /oauth2/jwks`: the current signing key and the retired ones still in use.
async fn jwks(State(state): State<AppState>) -> Response {
    match state.oidc.public_keys().await {
        Ok(keys) => {
            let keys: Vec<Value> = keys
                .iter()
                .map(|key| {
                    json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": key.kid,
                        "n": key.n, "e": key.e})
                })
                .collect();
            let mut response = Json(json!({ "keys": keys })).into_response();
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                // Short: a rotated key signs at once, and clients that cache the set
                // without fetching it again for an unknown `kid` catch up within a minute.
                HeaderValue::from_static("public, max-age=60"),
            );
            response
        }
        Err(error) => json_internal(error),
    }
}

/// The page of a request that must not go back to the client.
fn refused_page(state: &AppState, headers: &HeaderMap, text: String) -> Response {
    no_store(problem(
        state,
        headers,
        StatusCode::BAD_REQUEST,
        "This sign-in request cannot be answered",
        format!(
            "The application sent a request that this sign-in service cannot answer: {text}. \
             Nothing was sent back to it. Go back to the application and try again, or tell \
             its administrator."
        ),
        None,
    ))
}

async fn answer(
    state: &AppState,
    headers: &HeaderMap,
    outcome: Result<AuthorizeAnswer, OidcError>,
) -> Response {
    match outcome {
        Ok(AuthorizeAnswer::Redirect(location)) => with_cookie(
            found(&location),
            cookies::clear(cookies::AUTHORIZE, state.secure_cookies),
        ),
        Ok(AuthorizeAnswer::Page(error)) => refused_page(state, headers, error.to_string()),
        Ok(AuthorizeAnswer::SignIn { request, .. }) => with_cookie(
            no_store(super::html::see_other("/signin?authorize=1")),
            cookies::set(
                cookies::AUTHORIZE,
                request.as_str(),
                state.secure_cookies,
                Some(AUTHORIZE_COOKIE_SECONDS),
            ),
        ),
        Err(error) => internal(state, headers, error),
    }
}

/// `GET /oauth2/authorize` (Core 3.1.2).
async fn authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = pairs(query.as_deref());
    let session = cookies::get(&headers, cookies::SESSION);
    let outcome = state.oidc.authorize(&params, session.as_deref()).await;
    answer(&state, &headers, outcome).await
}

/// `GET /oauth2/authorize/resume`: where the sign-in pages send the browser when the user
/// has signed in for a waiting request (the cookie names it).
async fn resume(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(request) = cookies::get(&headers, cookies::AUTHORIZE) else {
        return refused_page(
            &state,
            &headers,
            crate::domain::oidc::PageError::Expired.to_string(),
        );
    };
    let session = cookies::get(&headers, cookies::SESSION);
    let outcome = state.oidc.resume(&request, session.as_deref()).await;
    answer(&state, &headers, outcome).await
}

fn token_error(failure: &TokenFailure) -> Response {
    let status = match failure.error {
        crate::domain::oidc::TokenError::InvalidClient => StatusCode::UNAUTHORIZED,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut response = no_store(
        (
            status,
            Json(json!({
                "error": failure.error.as_str(),
                "error_description": failure.description,
            })),
        )
            .into_response(),
    );
    if status == StatusCode::UNAUTHORIZED {
        let scheme = if failure.basic {
            "Basic realm=\"twostep\""
        } else {
            "Basic realm=\"twostep\", error=\"invalid_client\""
        };
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(scheme));
    }
    response
}

fn bad_token_request(description: &'static str) -> Response {
    token_error(&TokenFailure {
        error: crate::domain::oidc::TokenError::InvalidRequest,
        description,
        basic: false,
    })
}

/// One form-urlencoded component of a Basic credential (RFC 6749 2.3.1).
fn form_decoded(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

/// `Authorization: Basic`: `Some(Ok((id, secret)))`, `Some(Err(()))` when malformed.
fn basic_credentials(headers: &HeaderMap) -> Option<Result<(String, String), ()>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = BASE64
        .decode(encoded.trim().as_bytes())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    Some(
        match decoded.as_deref().and_then(|text| text.split_once(':')) {
            Some((id, secret)) => Ok((form_decoded(id), form_decoded(secret))),
            None => Err(()),
        },
    )
}

/// `POST /oauth2/token` (RFC 6749 3.2, 4.1.3, 6).
async fn token(State(state): State<AppState>, headers: HeaderMap, body: String) -> Response {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value.split(';').next().is_some_and(|kind| {
                kind.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !form_type {
        return bad_token_request("the body must be application/x-www-form-urlencoded");
    }
    let params = pairs(Some(&body));
    let mut single = std::collections::BTreeMap::new();
    for (name, value) in &params {
        if single.insert(name.as_str(), value.clone()).is_some() {
            return bad_token_request("a parameter appears more than once");
        }
    }
    let basic = match basic_credentials(&headers) {
        Some(Ok(pair)) => Some(pair),
        Some(Err(())) => {
            return token_error(&TokenFailure {
                error: crate::domain::oidc::TokenError::InvalidClient,
                description: "the Basic credentials cannot be read",
                basic: true,
            })
        }
        None => None,
    };
    let mut take = |name: &str| single.remove(name).filter(|value| !value.is_empty());
    let request = TokenRequest {
        grant_type: take("grant_type"),
        code: take("code"),
        redirect_uri: take("redirect_uri"),
        code_verifier: take("code_verifier"),
        refresh_token: take("refresh_token"),
        client: ClientCredentials {
            basic,
            client_id: take("client_id"),
            client_secret: take("client_secret"),
        },
    };
    match state.oidc.token(&request).await {
        Ok(Ok(tokens)) => no_store(
            Json(json!({
                "access_token": tokens.access_token.as_str(),
                "token_type": "Bearer",
                "expires_in": tokens.expires_in,
                "refresh_token": tokens.refresh_token.as_str(),
                "id_token": tokens.id_token,
                "scope": tokens.scope,
            }))
            .into_response(),
        ),
        Ok(Err(failure)) => token_error(&failure),
        Err(error) => json_internal(error),
    }
}

/// `GET|POST /oauth2/userinfo` (Core 5.3) with `Authorization: Bearer`.
async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    let refused = |error: &'static str| {
        let challenge = format!("Bearer realm=\"twostep\", error=\"{error}\"");
        let mut response = no_store(
            (
                StatusCode::UNAUTHORIZED,
                Json(
                    json!({"error": error, "error_description": "a valid access token is needed"}),
                ),
            )
                .into_response(),
        );
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    };
    let Some(token) = bearer else {
        return refused("invalid_request");
    };
    match state.oidc.userinfo(&token).await {
        Ok(Some(claims)) => no_store(Json(Value::Object(claims)).into_response()),
        Ok(None) => refused("invalid_token"),
        Err(error) => json_internal(error),
    }
}

/// The confirmation page of a logout without a hint of this browser's user.
#[derive(Template)]
#[template(path = "oidc_logout.html")]
struct LogoutView {
    layout: Layout,
    id_token_hint: String,
    client_id: String,
    post_logout_redirect_uri: String,
    state: String,
}

/// The page after signing out, with a link back to the application when it gave one.
#[derive(Template)]
#[template(path = "oidc_signed_out.html")]
struct SignedOutView {
    layout: Layout,
    url: String,
    host: String,
}

fn logout_request(params: &[(String, String)]) -> LogoutRequest {
    let get = |name: &str| {
        params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    LogoutRequest {
        id_token_hint: get("id_token_hint"),
        client_id: get("client_id"),
        post_logout_redirect_uri: get("post_logout_redirect_uri"),
        state: get("state"),
    }
}

async fn logout_answer(
    state: &AppState,
    headers: &HeaderMap,
    request: LogoutRequest,
    confirmed: bool,
) -> Response {
    let session = cookies::get(headers, cookies::SESSION);
    match state
        .oidc
        .logout(&request, session.as_deref(), confirmed)
        .await
    {
        Ok(LogoutAnswer::SignedOut { redirect }) => {
            let response = match redirect {
                // After a GET: a redirect. After the confirmation's POST, a page that
                // refreshes (the forms' CSP forbids a redirect to another host).
                Some(url) if !confirmed => found(&url),
                Some(url) => {
                    let host = url::Url::parse(&url)
                        .ok()
                        .and_then(|u| u.host_str().map(str::to_owned))
                        .unwrap_or_default();
                    let view = SignedOutView {
                        layout: Layout::new(state, headers),
                        url,
                        host,
                    };
                    page(state, StatusCode::OK, &view.layout, &view)
                }
                None => super::html::see_other("/signin?m=signed_out"),
            };
            with_cookie(response, cookies::clear_session(state))
        }
        Ok(LogoutAnswer::Confirm) => {
            let view = LogoutView {
                layout: Layout::new(state, headers),
                id_token_hint: request.id_token_hint.unwrap_or_default(),
                client_id: request.client_id.unwrap_or_default(),
                post_logout_redirect_uri: request.post_logout_redirect_uri.unwrap_or_default(),
                state: request.state.unwrap_or_default(),
            };
            no_store(page(state, StatusCode::OK, &view.layout, &view))
        }
        Ok(LogoutAnswer::Refused(reason)) => refused_page(state, headers, reason.to_owned()),
        Err(error) => internal(state, headers, error),
    }
}

/// `GET /oauth2/logout` (RP-Initiated Logout 1.0 section 2).
async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let request = logout_request(&pairs(query.as_deref()));
    logout_answer(&state, &headers, request, false).await
}

/// `POST /oauth2/logout`: the confirmation page's "Sign out".
async fn logout_confirmed(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let params = pairs(Some(&body));
    let csrf = params
        .iter()
        .find(|(key, _)| key == "csrf")
        .map(|(_, value)| value.as_str());
    if !csrf_ok(&state, &headers, csrf) {
        return form_expired(&state, &headers);
    }
    let request = logout_request(&params);
    logout_answer(&state, &headers, request, true).await
}
