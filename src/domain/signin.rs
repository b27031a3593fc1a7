//! The sign-in transaction's state (SPEC sections 3 and 4): the steps still to do between
//! the password and the session, and what kind of transaction a row is. A second-factor
//! challenge (SPEC section 9) lives in the same table, but is never a sign-in: its token
//! can never continue a sign-in or yield a session. Also the emailed codes and the
//! sessions a sign-in leads to.

use crate::clock::Timestamp;
use crate::domain::oidc::Authentication;
use crate::domain::UserId;

/// A step still to do in a sign-in transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PendingStep {
    EmailOtp,
    DeviceOtp,
    Enroll {
        required: bool,
    },
    /// A bootstrap password must be replaced before the session starts.
    ChangePassword,
}

impl PendingStep {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmailOtp => "email_otp",
            Self::DeviceOtp => "device_otp",
            Self::Enroll { required: false } => "enroll_optional",
            Self::Enroll { required: true } => "enroll_required",
            Self::ChangePassword => "change_password",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "email_otp" => Some(Self::EmailOtp),
            "device_otp" => Some(Self::DeviceOtp),
            "enroll_optional" => Some(Self::Enroll { required: false }),
            "enroll_required" => Some(Self::Enroll { required: true }),
            "change_password" => Some(Self::ChangePassword),
            _ => None,
        }
    }
}

/// What a row of the transactions table is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransactionKind {
    /// A sign-in, with the steps still to do (empty: done).
    SignIn(Vec<PendingStep>),
    /// A second-factor challenge whose emailed code another system checks.
    VerifyChallenge,
}

/// The stored text of a challenge: never a sign-in step's name.
const VERIFY_CHALLENGE: &str = "verify_email_otp";

impl TransactionKind {
    /// The stored text: the steps' names joined by commas, or the challenge's marker.
    pub fn encode(&self) -> String {
        match self {
            Self::SignIn(steps) => steps
                .iter()
                .map(|step| step.as_str())
                .collect::<Vec<_>>()
                .join(","),
            Self::VerifyChallenge => VERIFY_CHALLENGE.to_owned(),
        }
    }

    /// The kind of a stored text; `None` for text no version wrote.
    pub fn decode(text: &str) -> Option<Self> {
        if text == VERIFY_CHALLENGE {
            return Some(Self::VerifyChallenge);
        }
        text.split(',')
            .filter(|part| !part.is_empty())
            .map(PendingStep::parse)
            .collect::<Option<Vec<_>>>()
            .map(Self::SignIn)
    }
}

/// A sign-in transaction's (or challenge's) row id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId(pub i64);

/// The server side of a sign-in between the password and the last step, or of a
/// second-factor challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignInTransaction {
    pub id: TransactionId,
    pub user_id: UserId,
    pub kind: TransactionKind,
    pub client_ip: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// A second-factor step (a code, or a device set up with one) has been passed.
    pub second_factor: bool,
}

/// An emailed code's row id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailedOtpId(pub i64);

/// An emailed code (SPEC section 4), known only by its keyed hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailedOtp {
    pub id: EmailedOtpId,
    pub user_id: UserId,
    /// The sign-in transaction or challenge the code belongs to.
    pub transaction_id: Option<TransactionId>,
    pub code_hash: Vec<u8>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A session's row id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub i64);

/// A signed-in session (SPEC: 30 minutes idle, 12 hours at most).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub client_ip: String,
    /// When the user signed in (the ID token's `auth_time`).
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
    /// How the user proved who they are at that sign-in.
    pub authentication: Authentication,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_and_a_challenge_is_no_sign_in() {
        let all = [
            PendingStep::EmailOtp,
            PendingStep::DeviceOtp,
            PendingStep::Enroll { required: false },
            PendingStep::Enroll { required: true },
            PendingStep::ChangePassword,
        ];
        for kind in [
            TransactionKind::SignIn(all.to_vec()),
            TransactionKind::SignIn(vec![PendingStep::EmailOtp]),
            TransactionKind::SignIn(Vec::new()),
            TransactionKind::VerifyChallenge,
        ] {
            assert_eq!(TransactionKind::decode(&kind.encode()), Some(kind));
        }
        assert_eq!(TransactionKind::decode("device_otp,nonsense"), None);
        assert!(all.iter().all(|step| step.as_str() != VERIFY_CHALLENGE));
    }
}
