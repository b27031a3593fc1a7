//! CSRF protection of the forms (SPEC section 4, "Forms and tokens"): a form's token is a
//! keyed MAC of what the browser is signing in or signed in with, not a value it merely
//! echoes.
//!
//! # The token
//!
//! `token = base64url(HMAC-SHA256(k, "twostep form v1" | kind | value))`, where `k` is the
//! CSRF subkey of the server key ([`MasterKey::csrf_mac`], each part length-prefixed) and
//! (`kind`, `value`) is the browser's *binding*, the first of:
//!
//! 1. `session`: the session cookie (signed in);
//! 2. `transaction`: the sign-in transaction cookie (between the password and the last
//!    step);
//! 3. `anonymous`: the `twostep_csrf` cookie, a random token that the first page without
//!    either sets (the sign-in form itself needs a token before any transaction exists).
//!
//! A POST is accepted only if its `csrf` field is the token of the binding that the same
//! request carries, recomputed and compared in constant time. So:
//!
//! - **A planted cookie and field pair is refused.** The old scheme (double submit: the
//!   field had to equal a cookie) fell to a sibling host under the same parent domain
//!   (`--cookie-domain`), which can set cookies for twostep's host: it planted
//!   `twostep_csrf=x` and posted `csrf=x`. Now the field must be the MAC of the cookie,
//!   and only the server key makes one.
//! - **The token changes when a session begins** (and at the password step): the binding
//!   moves from the anonymous cookie to the transaction, then to the session. A token
//!   shown before sign-in is refused after it, and a token of session A is refused with
//!   session B.
//! - Tokens live no longer than what they are bound to, and nothing is stored for them:
//!   any instance verifies any token.
//!
//! # Login CSRF: what the anonymous binding cannot do
//!
//! Before a session there is nothing secret to bind to: whoever controls the browser's
//! cookies controls the binding. The anonymous cookie is random, and its token keyed, so a
//! made-up cookie and field fail. What a MAC cannot stop is an attacker who fetches
//! `/signin` with a browser of its own, receives a genuine cookie and token, and tosses
//! both (a cookie from a sibling host, a form posting the token) at a victim, to sign the
//! victim in to the attacker's account (login CSRF). The same holds for a transaction or
//! session of the attacker's (that a page shows the token of whatever cookie it was sent
//! gives an attacker nothing more). Binding to the client's address or user agent would
//! not help (the attacker can match them, or shares a proxy) and would break real users.
//! Instead, a POST whose `Sec-Fetch-Site` header says it comes from another origin
//! (`same-site` for a sibling host, `cross-site` for any other; anything but `same-origin`
//! or the user's own `none`) is refused: browsers set that header themselves, no page can
//! forge it, and twostep's own forms always post to their own origin. Browsers too old to
//! send it still get the MAC and `SameSite=Lax`.
//!
//! A host that can *read* twostep's cookies is out of reach of any CSRF defence: under
//! `--cookie-domain` the session cookie is sent to the sibling applications on purpose
//! (forward-auth), so those applications are trusted with sessions; hosts that can only
//! *write* cookies are what this module keeps out.

use axum::http::HeaderMap;
use data_encoding::BASE64URL_NOPAD;
use rand::rngs::OsRng;

use super::cookies;
use crate::crypto::{ct_eq_hash, MasterKey, Token};

/// What every form token is for, so that a MAC under the CSRF subkey made for another use
/// later can never pass as a form token.
const PURPOSE: &[u8] = b"twostep form v1";

/// The header in which browsers say where a request comes from (Fetch Metadata).
const SEC_FETCH_SITE: &str = "sec-fetch-site";

/// What a form token is bound to, most specific first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Session,
    Transaction,
    Anonymous,
}

impl Kind {
    const ALL: [Self; 3] = [Self::Session, Self::Transaction, Self::Anonymous];

    fn cookie(self) -> &'static str {
        match self {
            Self::Session => cookies::SESSION,
            Self::Transaction => cookies::TRANSACTION,
            Self::Anonymous => cookies::CSRF,
        }
    }

    /// Part of the MAC: a value is never valid as the binding of another kind.
    fn label(self) -> &'static [u8] {
        match self {
            Self::Session => b"session",
            Self::Transaction => b"transaction",
            Self::Anonymous => b"anonymous",
        }
    }
}

/// The browser's binding: the first of its session, transaction and anonymous cookies that
/// holds a well-formed token. A malformed value is no binding (it cannot be a live
/// session or transaction either).
fn binding(headers: &HeaderMap) -> Option<(Kind, Token)> {
    Kind::ALL.into_iter().find_map(|kind| {
        let value = cookies::get(headers, kind.cookie())?;
        Token::parse(&value).ok().map(|token| (kind, token))
    })
}

fn token_of(key: &MasterKey, kind: Kind, value: &Token) -> String {
    BASE64URL_NOPAD.encode(&key.csrf_mac(&[PURPOSE, kind.label(), value.as_str().as_bytes()]))
}

/// The form token for this browser, and the anonymous cookie value the response must set
/// when the browser had no binding yet (`Some` second value).
pub fn token_for(key: &MasterKey, headers: &HeaderMap) -> (String, Option<String>) {
    match binding(headers) {
        Some((kind, value)) => (token_of(key, kind, &value), None),
        None => {
            let fresh = Token::generate(&mut OsRng);
            let token = token_of(key, Kind::Anonymous, &fresh);
            (token, Some(fresh.as_str().to_owned()))
        }
    }
}

/// Whether a submitted form carries the token of the binding that its request carries,
/// and does not come from a page of another origin.
pub fn verify(key: &MasterKey, headers: &HeaderMap, submitted: Option<&str>) -> bool {
    if from_another_origin(headers) {
        return false;
    }
    match (binding(headers), submitted) {
        (Some((kind, value)), Some(field)) => {
            ct_eq_hash(token_of(key, kind, &value).as_bytes(), field.as_bytes())
        }
        _ => false,
    }
}

/// The browser says the request was started by a page of another origin. `none` is the
/// user's own doing (a reload that posts a form again), not another site's. Absent (an old
/// browser, a script), the header says nothing, and the MAC alone decides.
pub(super) fn from_another_origin(headers: &HeaderMap) -> bool {
    headers
        .get(SEC_FETCH_SITE)
        .is_some_and(|site| !matches!(site.as_bytes(), b"same-origin" | b"none"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn key() -> MasterKey {
        MasterKey::generate(&mut OsRng)
    }

    fn new_token() -> String {
        Token::generate(&mut OsRng).as_str().to_owned()
    }

    fn with_cookies(pairs: &[(&str, &str)]) -> HeaderMap {
        let text = pairs
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut headers = HeaderMap::new();
        headers.insert("cookie", HeaderValue::from_str(&text).unwrap());
        headers
    }

    /// The token a page would show to a browser with these headers.
    fn shown(key: &MasterKey, headers: &HeaderMap) -> String {
        let (token, set) = token_for(key, headers);
        assert_eq!(set, None, "the browser has a binding");
        token
    }

    #[test]
    fn a_browser_without_cookies_gets_an_anonymous_cookie_and_its_token() {
        let key = key();
        let (token, set) = token_for(&key, &HeaderMap::new());
        let cookie = set.expect("a new anonymous cookie");
        assert!(Token::parse(&cookie).is_ok());
        let later = with_cookies(&[(cookies::CSRF, &cookie)]);
        assert_eq!(
            shown(&key, &later),
            token,
            "the same token while the cookie lives"
        );
        assert!(verify(&key, &later, Some(&token)));
        assert_ne!(token, cookie, "the token is not the cookie");
    }

    #[test]
    fn a_planted_cookie_and_matching_field_are_refused() {
        let key = key();
        let planted = new_token();
        let headers = with_cookies(&[(cookies::CSRF, &planted)]);
        assert!(
            !verify(&key, &headers, Some(&planted)),
            "the old double submit"
        );
        // The token made with another server's key.
        let elsewhere = shown(&MasterKey::generate(&mut OsRng), &headers);
        assert!(!verify(&key, &headers, Some(&elsewhere)));
        // Junk cookie values bind nothing.
        let junk = with_cookies(&[(cookies::CSRF, "x")]);
        assert!(!verify(&key, &junk, Some("x")));
        assert!(!verify(
            &key,
            &with_cookies(&[(cookies::CSRF, "")]),
            Some("")
        ));
        assert!(
            !verify(&key, &HeaderMap::new(), Some(&planted)),
            "no cookie"
        );
        assert!(!verify(&key, &headers, None), "no field");
    }

    #[test]
    fn a_token_of_session_a_is_refused_with_session_b() {
        let key = key();
        let a = with_cookies(&[(cookies::SESSION, &new_token())]);
        let b = with_cookies(&[(cookies::SESSION, &new_token())]);
        let token_a = shown(&key, &a);
        assert!(verify(&key, &a, Some(&token_a)));
        assert!(!verify(&key, &b, Some(&token_a)));
        assert!(verify(&key, &b, Some(&shown(&key, &b))));
    }

    #[test]
    fn the_token_from_before_sign_in_is_refused_once_the_session_begins() {
        let key = key();
        let anonymous = new_token();
        let transaction = new_token();
        let before = with_cookies(&[(cookies::CSRF, &anonymous)]);
        let sign_in_token = shown(&key, &before);
        let during = with_cookies(&[
            (cookies::CSRF, &anonymous),
            (cookies::TRANSACTION, &transaction),
        ]);
        let step_token = shown(&key, &during);
        assert_ne!(
            step_token, sign_in_token,
            "a new token at the password step"
        );
        assert!(!verify(&key, &during, Some(&sign_in_token)));
        assert!(verify(&key, &during, Some(&step_token)));
        let after = with_cookies(&[
            (cookies::CSRF, &anonymous),
            (cookies::SESSION, &new_token()),
        ]);
        assert!(!verify(&key, &after, Some(&sign_in_token)));
        assert!(!verify(&key, &after, Some(&step_token)));
        assert!(verify(&key, &after, Some(&shown(&key, &after))));
    }

    #[test]
    fn one_value_is_not_a_binding_of_another_kind() {
        let key = key();
        let value = new_token();
        let as_anonymous = with_cookies(&[(cookies::CSRF, &value)]);
        let as_session = with_cookies(&[(cookies::SESSION, &value)]);
        let as_transaction = with_cookies(&[(cookies::TRANSACTION, &value)]);
        let tokens = [
            shown(&key, &as_anonymous),
            shown(&key, &as_session),
            shown(&key, &as_transaction),
        ];
        assert_ne!(tokens[0], tokens[1]);
        assert_ne!(tokens[0], tokens[2]);
        assert_ne!(tokens[1], tokens[2]);
        assert!(!verify(&key, &as_session, Some(&tokens[0])));
    }

    #[test]
    fn a_post_from_another_origin_is_refused_even_with_a_genuine_token() {
        let key = key();
        let mut headers = with_cookies(&[(cookies::CSRF, &new_token())]);
        let token = shown(&key, &headers);
        headers.insert(SEC_FETCH_SITE, HeaderValue::from_static("same-origin"));
        assert!(verify(&key, &headers, Some(&token)));
        headers.insert(SEC_FETCH_SITE, HeaderValue::from_static("none"));
        assert!(
            verify(&key, &headers, Some(&token)),
            "the user's own reload"
        );
        for elsewhere in ["same-site", "cross-site", "something new"] {
            headers.insert(SEC_FETCH_SITE, HeaderValue::from_static(elsewhere));
            assert!(!verify(&key, &headers, Some(&token)), "{elsewhere}");
        }
    }
}
