//! Security keys and passkeys (SPEC section 14): what a user's key is, the limits on
//! keys, and the rules the sign-in decision and the signature counter follow.
//!
//! The WebAuthn ceremonies themselves (challenges, signatures, attestation) are
//! `webauthn-rs`'s, in `service::webauthn`; here are only the product's rules.

use crate::clock::Timestamp;
use crate::domain::device::PromptMode;
use crate::domain::user::UserId;

/// SPEC 14: a user may hold up to 5 security keys (beside one authenticator-app device).
pub const MAX_SECURITY_KEYS: usize = 5;

/// A key's row id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecurityKeyId(pub i64);

/// The name a user gives a key ("Blue YubiKey"), shown on the account page and on Edit
/// User: 1 to 64 characters after trimming, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyName(String);

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyNameError {
    #[error("enter a name for the key")]
    Empty,
    #[error("the name may have at most 64 characters")]
    TooLong,
    #[error("the name may not contain control characters")]
    ControlCharacter,
}

impl KeyName {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(text: &str) -> Result<Self, KeyNameError> {
        let name = text.trim();
        if name.is_empty() {
            return Err(KeyNameError::Empty);
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err(KeyNameError::TooLong);
        }
        if name.chars().any(char::is_control) {
            return Err(KeyNameError::ControlCharacter);
        }
        Ok(Self(name.to_owned()))
    }

    /// The name given to a key registered without one: "Security key" and its number.
    pub fn numbered(number: usize) -> Self {
        Self(format!("Security key {number}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A registered security key or passkey of one user, as the account page and Edit User
/// list it. The public key itself stays in the store (it is `webauthn-rs`'s to read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityKey {
    pub id: SecurityKeyId,
    pub user_id: UserId,
    pub name: KeyName,
    pub prompt_mode: PromptMode,
    /// A discoverable credential (the authenticator keeps the account): it may sign in
    /// without username and password ("Sign in with a passkey").
    pub discoverable: bool,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

/// SPEC 14's reading of section 3: "confirmed device" means the authenticator-app device
/// or any key, and the strictest prompt mode applies (any Every Login means Every Login).
/// `None`: neither an app device nor a key.
pub fn strictest_prompt_mode(
    device: Option<PromptMode>,
    keys: impl IntoIterator<Item = PromptMode>,
) -> Option<PromptMode> {
    device.into_iter().chain(keys).reduce(|a, b| {
        if a == PromptMode::EveryLogin || b == PromptMode::EveryLogin {
            PromptMode::EveryLogin
        } else {
            PromptMode::WhenAppropriate
        }
    })
}

/// Whether a key may register one more: under [`MAX_SECURITY_KEYS`].
pub fn may_add_key(keys_held: usize) -> bool {
    keys_held < MAX_SECURITY_KEYS
}

/// SPEC 14: "the signature counter must grow when the key keeps one". `stored` is the
/// last counter accepted, `presented` the assertion's. A key that keeps no counter sends
/// 0 every time (and had 0 stored): accepted, since the challenge is single use. Any
/// other value not above the stored one is a clone's (or a replay's).
pub fn counter_accepts(stored: u32, presented: u32) -> bool {
    presented > stored || (stored == 0 && presented == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use PromptMode::{EveryLogin, WhenAppropriate};

    #[test]
    fn names_are_trimmed_and_checked() {
        assert_eq!(KeyName::parse("  Blue key ").unwrap().as_str(), "Blue key");
        assert_eq!(KeyName::parse("   "), Err(KeyNameError::Empty));
        assert_eq!(KeyName::parse(&"k".repeat(65)), Err(KeyNameError::TooLong));
        assert!(KeyName::parse(&"é".repeat(64)).is_ok());
        assert_eq!(
            KeyName::parse("a\u{7}b"),
            Err(KeyNameError::ControlCharacter)
        );
        assert_eq!(KeyName::numbered(2).as_str(), "Security key 2");
    }

    #[test]
    fn the_strictest_prompt_mode_applies() {
        assert_eq!(strictest_prompt_mode(None, []), None);
        assert_eq!(
            strictest_prompt_mode(Some(WhenAppropriate), []),
            Some(WhenAppropriate)
        );
        assert_eq!(
            strictest_prompt_mode(None, [WhenAppropriate, WhenAppropriate]),
            Some(WhenAppropriate)
        );
        assert_eq!(
            strictest_prompt_mode(Some(WhenAppropriate), [EveryLogin]),
            Some(EveryLogin)
        );
        assert_eq!(
            strictest_prompt_mode(Some(EveryLogin), [WhenAppropriate]),
            Some(EveryLogin)
        );
        assert_eq!(
            strictest_prompt_mode(None, [WhenAppropriate, EveryLogin, WhenAppropriate]),
            Some(EveryLogin)
        );
    }

    #[test]
    fn at_most_five_keys() {
        assert!(may_add_key(0));
        assert!(may_add_key(4));
        assert!(!may_add_key(5));
        assert!(!may_add_key(6));
    }

    #[test]
    fn the_counter_must_grow_unless_the_key_keeps_none() {
        assert!(counter_accepts(0, 0));
        assert!(counter_accepts(0, 1));
        assert!(counter_accepts(41, 42));
        assert!(!counter_accepts(42, 42));
        assert!(!counter_accepts(42, 41));
        assert!(!counter_accepts(42, 0));
    }
}
