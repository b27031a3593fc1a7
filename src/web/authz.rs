//! Forward-auth for reverse proxies (SPEC section 9): `/api/v1/authz`.
//!
//! nginx (`auth_request`), Traefik (`ForwardAuth`) and Caddy (`forward_auth`) ask this
//! endpoint, for every request to an application behind them, whether the request is
//! signed in. The answer:
//! - **200** with `Remote-User`, `Remote-Name`, `Remote-Email`, `Remote-Role` for a live
//!   session (the session cookie, or `Authorization: Bearer` with a session token) or an
//!   interface user (an API token as Bearer, or HTTP Basic). The proxy copies these
//!   headers to the application.
//! - otherwise **401** (`{"code":"unauthenticated"}`), and for a browser (`Accept:
//!   text/html`) the way to the sign-in page with the original URL, which sign-in returns
//!   to: a `302` for Traefik and Caddy, which pass the answer to the browser; for nginx,
//!   which only passes 401 on, a `Location` header on the 401 (see the README's nginx
//!   configuration). The original URL comes from `X-Original-URL` (nginx) or
//!   `X-Forwarded-Proto` + `X-Forwarded-Host` + `X-Forwarded-Uri` (Traefik, Caddy), and is
//!   only ever used if [`ReturnPolicy`](super::return_to::ReturnPolicy) allows it.
//!
//! Any method is accepted: a proxy may forward the original method.

use axum::extract::State;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use data_encoding::BASE64;

use super::json_error::{ApiError, ErrorBody};
use super::return_to::ReturnUrl;
use super::{cookies, AppState, ClientIp};
use crate::domain::{Role, User};
use crate::service::signin::{Credential, SignInError};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/authz", any(authz))
}

/// The headers a signed-in answer carries (Authelia's names, which proxies' examples use).
pub const REMOTE_USER: &str = "remote-user";
pub const REMOTE_NAME: &str = "remote-name";
pub const REMOTE_EMAIL: &str = "remote-email";
pub const REMOTE_ROLE: &str = "remote-role";

/// `/api/v1/authz`, any method.
#[utoipa::path(
    get,
    path = "/api/v1/authz",
    tag = "forward-auth",
    description = "Forward-auth for reverse proxies (any method). A session cookie or \
                   `Authorization: Bearer` session token, an interface user's API token \
                   (Bearer) or HTTP Basic credentials pass.",
    responses(
        (status = 200, description = "Signed in; `Remote-User`, `Remote-Name`, `Remote-Email`, `Remote-Role` name who"),
        (status = 302, description = "A browser (`Accept: text/html`) behind Traefik or Caddy: the sign-in page, returning to the original URL when allowed"),
        (status = 401, description = "`unauthenticated`; with `Location` for a browser behind nginx (`X-Original-URL`), `WWW-Authenticate: Basic` for programs", body = ErrorBody),
    )
)]
pub(super) async fn authz(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Response {
    // A browser's session cookie first: an application behind the proxy may use the
    // Authorization header for its own purposes.
    if let Some(token) = cookies::get(&headers, cookies::SESSION).filter(|t| !t.is_empty()) {
        match state
            .signin
            .authorize(Credential::SessionCookie(&token), ip)
            .await
        {
            Ok((user, role)) => return signed_in(&user, &role),
            Err(SignInError::InvalidCredentials) => {}
            Err(other) => return ApiError::from(other).into_response(),
        }
    }
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let basic = authorization.and_then(basic_credentials);
    let credential = match (&basic, authorization) {
        (Some((username, password)), _) => Some(Credential::Basic { username, password }),
        (None, Some(value)) => value
            .strip_prefix("Bearer ")
            .map(|token| Credential::Bearer(token.trim())),
        (None, None) => None,
    };
    if let Some(credential) = credential {
        match state.signin.authorize(credential, ip).await {
            Ok((user, role)) => return signed_in(&user, &role),
            Err(SignInError::InvalidCredentials) => {}
            Err(other) => return ApiError::from(other).into_response(),
        }
    }
    not_signed_in(&state, &headers)
}

/// `Authorization: Basic base64(username:password)`, decoded; `None` when it is not Basic
/// or does not decode.
fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = BASE64.decode(encoded.trim().as_bytes()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (username, password) = text.split_once(':')?;
    Some((username.to_owned(), password.to_owned()))
}

/// 200 with the user's headers (values that cannot be a header value are left out; a
/// display name may hold UTF-8, sent as its bytes).
fn signed_in(user: &User, role: &Role) -> Response {
    let mut response = StatusCode::OK.into_response();
    let values = [
        (REMOTE_USER, Some(user.username.as_str())),
        (REMOTE_NAME, Some(user.display_name.as_str())),
        (
            REMOTE_EMAIL,
            user.email.as_ref().map(|email| email.as_str()),
        ),
        (REMOTE_ROLE, Some(role.name.as_str())),
    ];
    for (name, value) in values {
        if let Some(value) = value.and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok()) {
            response
                .headers_mut()
                .insert(HeaderName::from_static(name), value);
        }
    }
    response
}

/// The original URL of the request the proxy asks about, as the proxy reports it.
fn original_url(headers: &HeaderMap) -> Option<String> {
    let get = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if let Some(url) = get("x-original-url") {
        return Some(url.to_owned());
    }
    let proto = get("x-forwarded-proto")?;
    let host = get("x-forwarded-host")?;
    let uri = get("x-forwarded-uri").unwrap_or("/");
    Some(format!("{proto}://{host}{uri}"))
}

/// The sign-in page's URL, with the URL to return to when it is allowed.
pub fn signin_url(public_url: &str, return_to: Option<&ReturnUrl>) -> String {
    let base = public_url.trim_end_matches('/');
    match return_to {
        Some(url) => {
            let encoded: String =
                url::form_urlencoded::byte_serialize(url.as_str().as_bytes()).collect();
            format!("{base}/signin?rd={encoded}")
        }
        None => format!("{base}/signin"),
    }
}

fn not_signed_in(state: &AppState, headers: &HeaderMap) -> Response {
    let browser = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    let nginx = headers.contains_key("x-original-url");
    let location = state.forward_auth.public_url.as_deref().map(|public| {
        let return_to =
            original_url(headers).and_then(|url| state.forward_auth.returns.check(&url));
        signin_url(public, return_to.as_ref())
    });
    if browser {
        if let Some(location) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            if nginx {
                let mut response = unauthenticated();
                response.headers_mut().insert(header::LOCATION, location);
                return response;
            }
            return (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
        }
    }
    let mut response = unauthenticated();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"twostep\", charset=\"UTF-8\""),
    );
    response
}

fn unauthenticated() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(ErrorBody::new("unauthenticated", "sign in first")),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::return_to::{DomainName, ReturnPolicy};

    #[test]
    fn basic_credentials_are_decoded_and_anything_else_is_not_basic() {
        let value = format!("Basic {}", BASE64.encode(b"lab-feed:pass:word"));
        assert_eq!(
            basic_credentials(&value),
            Some(("lab-feed".to_owned(), "pass:word".to_owned()))
        );
        assert_eq!(
            basic_credentials(&format!("basic {}", BASE64.encode(b"a:b"))),
            Some(("a".to_owned(), "b".to_owned()))
        );
        assert_eq!(basic_credentials("Bearer abc"), None);
        assert_eq!(basic_credentials("Basic !!!"), None);
        assert_eq!(
            basic_credentials(&format!("Basic {}", BASE64.encode(b"no-colon"))),
            None
        );
        assert_eq!(
            basic_credentials(&format!("Basic {}", BASE64.encode(&[0xff, b':', 0xfe]))),
            None
        );
    }

    #[test]
    fn the_original_url_comes_from_nginx_or_traefik_and_caddy_headers() {
        let mut nginx = HeaderMap::new();
        nginx.insert(
            "x-original-url",
            HeaderValue::from_static("https://ehr.h.example/a?b=1"),
        );
        assert_eq!(
            original_url(&nginx).as_deref(),
            Some("https://ehr.h.example/a?b=1")
        );
        let mut traefik = HeaderMap::new();
        traefik.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        traefik.insert(
            "x-forwarded-host",
            HeaderValue::from_static("ehr.h.example"),
        );
        traefik.insert("x-forwarded-uri", HeaderValue::from_static("/chart?id=7"));
        assert_eq!(
            original_url(&traefik).as_deref(),
            Some("https://ehr.h.example/chart?id=7")
        );
        assert_eq!(original_url(&HeaderMap::new()), None);
    }

    #[test]
    fn the_signin_url_carries_only_an_allowed_return_url() {
        let policy = ReturnPolicy::new(
            Some("https://signin.h.example"),
            vec![DomainName::parse("h.example").unwrap()],
        );
        let allowed = policy.check("https://ehr.h.example/a?b=1&c=2");
        assert_eq!(
            signin_url("https://signin.h.example/", allowed.as_ref()),
            "https://signin.h.example/signin?rd=https%3A%2F%2Fehr.h.example%2Fa%3Fb%3D1%26c%3D2"
        );
        let refused = policy.check("https://evil.example/");
        assert_eq!(
            signin_url("https://signin.h.example", refused.as_ref()),
            "https://signin.h.example/signin"
        );
    }
}
