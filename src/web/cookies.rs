//! The few cookies twostep sets, without a cookie crate: each is HttpOnly, SameSite=Lax,
//! Path=/, and Secure when the public URL is https.

use axum::http::{HeaderMap, HeaderValue};

use super::AppState;

/// The sign-in transaction between the password and the last step.
pub const TRANSACTION: &str = "twostep_tx";
/// A signed-in session.
pub const SESSION: &str = "twostep_session";
/// A random value that the forms' CSRF token is bound to before a sign-in transaction or
/// session exists (the token is a keyed MAC of it, see `csrf`).
pub const CSRF: &str = "twostep_csrf";
/// Where to go after signing in (forward-auth), base64url of an allowed URL.
pub const RETURN_TO: &str = "twostep_return";
/// An application's authorization request waiting for the user to sign in (SPEC 13):
/// its token, so that the sign-in pages can return to `/oauth2/authorize/resume`.
pub const AUTHORIZE: &str = "twostep_authorize";

/// The value of cookie `name` in the request, if present.
pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// A `Set-Cookie` value; `max_age_seconds: None` makes a browser-session cookie. Values
/// are tokens from our own alphabet (base64url), never user input.
pub fn set(name: &str, value: &str, secure: bool, max_age_seconds: Option<i64>) -> HeaderValue {
    set_for_domain(name, value, secure, max_age_seconds, None)
}

/// [`set`] with a `Domain` (the session cookie under `--cookie-domain`, so that
/// applications on sibling hosts send it to their forward-auth proxy).
pub fn set_for_domain(
    name: &str,
    value: &str,
    secure: bool,
    max_age_seconds: Option<i64>,
    domain: Option<&str>,
) -> HeaderValue {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(domain) = domain {
        cookie.push_str(&format!("; Domain={domain}"));
    }
    if let Some(age) = max_age_seconds {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    HeaderValue::from_str(&cookie)
        .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// Removes a cookie.
pub fn clear(name: &str, secure: bool) -> HeaderValue {
    set(name, "", secure, Some(0))
}

/// The session cookie of a new session (a browser-session cookie).
pub fn session(state: &AppState, token: &str) -> HeaderValue {
    set_for_domain(
        SESSION,
        token,
        state.secure_cookies,
        None,
        state
            .forward_auth
            .cookie_domain
            .as_ref()
            .map(|d| d.as_str()),
    )
}

/// Removes the session cookie (with the same `Domain` it was set with).
pub fn clear_session(state: &AppState) -> HeaderValue {
    set_for_domain(
        SESSION,
        "",
        state.secure_cookies,
        Some(0),
        state
            .forward_auth
            .cookie_domain
            .as_ref()
            .map(|d| d.as_str()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append("cookie", HeaderValue::from_static("a=1; twostep_tx=abc"));
        headers.append("cookie", HeaderValue::from_static("twostep_session=xyz"));
        assert_eq!(get(&headers, TRANSACTION).as_deref(), Some("abc"));
        assert_eq!(get(&headers, SESSION).as_deref(), Some("xyz"));
        assert_eq!(get(&headers, CSRF), None);
    }

    #[test]
    fn set_cookie_is_http_only_lax_and_secure_on_https() {
        let plain = set(SESSION, "t", false, None);
        assert_eq!(
            plain.to_str().unwrap(),
            "twostep_session=t; Path=/; HttpOnly; SameSite=Lax"
        );
        let secure = set(SESSION, "t", true, Some(60));
        assert_eq!(
            secure.to_str().unwrap(),
            "twostep_session=t; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
        assert!(clear(CSRF, false).to_str().unwrap().contains("Max-Age=0"));
        let shared = set_for_domain(SESSION, "t", true, None, Some("hospital.example"));
        assert_eq!(
            shared.to_str().unwrap(),
            "twostep_session=t; Path=/; HttpOnly; SameSite=Lax; Domain=hospital.example; Secure"
        );
    }
}
