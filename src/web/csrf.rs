//! CSRF protection of the forms: double submit. A random token lives in an HttpOnly,
//! SameSite=Lax cookie and in a hidden field of every form; a POST whose field does not
//! equal its cookie (compared in constant time) is refused. Another site can make a
//! browser post a form, but can neither read nor set our cookie.

use axum::http::HeaderMap;
use rand::rngs::OsRng;

use super::cookies;
use crate::crypto::{ct_eq_hash, Token};

/// The token of this browser: the one in its cookie, or a new one that the response must
/// set (`Some` second value).
pub fn token_for(headers: &HeaderMap) -> (String, Option<String>) {
    match cookies::get(headers, cookies::CSRF).filter(|value| Token::parse(value).is_ok()) {
        Some(existing) => (existing, None),
        None => {
            let fresh = Token::generate(&mut OsRng).as_str().to_owned();
            (fresh.clone(), Some(fresh))
        }
    }
}

/// Whether a submitted form carries the token of its cookie.
pub fn verify(headers: &HeaderMap, submitted: Option<&str>) -> bool {
    match (cookies::get(headers, cookies::CSRF), submitted) {
        (Some(cookie), Some(field)) if !cookie.is_empty() => {
            ct_eq_hash(cookie.as_bytes(), field.as_bytes())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            "cookie",
            HeaderValue::from_str(&format!("twostep_csrf={value}")).unwrap(),
        );
        headers
    }

    #[test]
    fn a_form_without_the_matching_token_is_refused() {
        let token = Token::generate(&mut OsRng).as_str().to_owned();
        let headers = with_cookie(&token);
        assert!(verify(&headers, Some(&token)));
        assert!(!verify(&headers, None), "no field");
        assert!(!verify(&headers, Some("other")), "wrong field");
        assert!(!verify(&HeaderMap::new(), Some(&token)), "no cookie");
        assert!(!verify(&with_cookie(""), Some("")), "empty both");
    }

    #[test]
    fn an_existing_valid_cookie_is_reused_and_a_bad_one_replaced() {
        let token = Token::generate(&mut OsRng).as_str().to_owned();
        assert_eq!(token_for(&with_cookie(&token)), (token.clone(), None));
        let (fresh, set) = token_for(&with_cookie("junk"));
        assert_eq!(set.as_deref(), Some(fresh.as_str()));
        assert!(Token::parse(&fresh).is_ok());
    }
}
