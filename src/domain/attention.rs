//! What needs an administrator's attention (SPEC section 11, the console home): locked
//! accounts, users whom a Force role requires to use 2FA but who have no device yet, and
//! emails that were not delivered. What the store reads back; the service gathers them.

use super::{RoleName, Username};
use crate::clock::Timestamp;

/// How far back undelivered emails are shown: a week. A dead message is a code that
/// expired undelivered; older ones are history (the audit log keeps them as "Email not
/// delivered").
pub const DEAD_EMAIL_DAYS: i64 = 7;

/// A locked account and until when ([`Timestamp::NEVER`]: until an administrator unlocks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockedUser {
    pub username: Username,
    pub until: Timestamp,
}

/// An active user of a Force role without a confirmed device: their next sign-in stops
/// at set-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserWithoutDevice {
    pub username: Username,
    pub role: RoleName,
}

/// An email that was given up on (dead in the outbox).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UndeliveredEmail {
    pub to: String,
    /// The user it was for, when still known.
    pub username: Option<Username>,
    /// When it was queued.
    pub queued_at: Timestamp,
    /// The last delivery error (the mail server's answer), bounded.
    pub error: String,
}

/// Everything the console home lists; empty means all is well.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attention {
    pub locked: Vec<LockedUser>,
    pub without_device: Vec<UserWithoutDevice>,
    pub undelivered: Vec<UndeliveredEmail>,
}

impl Attention {
    pub fn all_is_well(&self) -> bool {
        self.locked.is_empty() && self.without_device.is_empty() && self.undelivered.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_well_only_when_every_list_is_empty() {
        assert!(Attention::default().all_is_well());
        let locked = Attention {
            locked: vec![LockedUser {
                username: Username::parse("jane").unwrap(),
                until: Timestamp::NEVER,
            }],
            ..Attention::default()
        };
        assert!(!locked.all_is_well());
        let undelivered = Attention {
            undelivered: vec![UndeliveredEmail {
                to: "jane@example.org".to_owned(),
                username: None,
                queued_at: Timestamp::from_millis(0),
                error: String::new(),
            }],
            ..Attention::default()
        };
        assert!(!undelivered.all_is_well());
        let without_device = Attention {
            without_device: vec![UserWithoutDevice {
                username: Username::parse("bob").unwrap(),
                role: RoleName::parse("Nurses").unwrap(),
            }],
            ..Attention::default()
        };
        assert!(!without_device.all_is_well());
    }
}
