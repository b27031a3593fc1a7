//! The sentences shown above the sign-in forms, and the one exhaustive mapping of the
//! sign-in service's errors to what a page does ([`failure`]).

use axum::http::StatusCode;

use crate::domain::PasswordProblem;
use crate::service::signin::SignInError;
use crate::web::html::key_setup_message;
use crate::web::request_id;

/// A sentence shown above a form. Every text is ours; values in it are numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Any failed password step (unknown user, wrong password, locked account).
    PasswordNotCorrect,
    /// A wrong code from the app at the code step.
    CodeNotCorrect,
    /// A wrong or expired emailed code: one sentence for both, so that it reveals no more
    /// than the generic answer (SPEC section 11).
    EmailedCodeNotCorrect,
    /// A code at Complete Setup that the new device did not produce.
    SetupCodeNotCorrect,
    /// "Send a new code" refused for this many seconds.
    Wait(i64),
    EmailMissing,
    SetupRequired,
    MethodNotAllowed,
    /// The enroll form came without a valid method or prompt mode.
    ChooseOptions,
    /// A new password refused by the password rules.
    NewPassword(PasswordProblem),
    PasswordsDiffer,
    /// `/signin?m=expired`.
    Expired,
    /// `/signin?m=signed_out`.
    SignedOut,
    /// `/signin?m=cancelled`: "Cancel and sign out" ended the sign-in.
    Cancelled,
    /// `/signin?m=switched`: "Switch user" signed the last person out (SPEC 15).
    Switched,
    /// The directory cannot check passwords now (SPEC 12); the page also shows Help Text.
    SignInUnavailable,
    /// The directory's password is expired or must be changed there first (SPEC 12).
    DirectoryPassword(&'static str),
    /// A security key that did not sign in (any refusal, SPEC 14).
    KeyNotAccepted,
    /// A security key that could not be set up, and why (SPEC 14).
    KeySetup(&'static str),
}

impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PasswordNotCorrect => f.write_str(
                "The username or password is not correct. Please check them and try again.",
            ),
            Self::CodeNotCorrect => {
                f.write_str("That code is not correct. Please check it and try again.")
            }
            Self::SetupCodeNotCorrect => f.write_str(
                "That code is not correct. Enter the code your app shows now, then press \
                 Complete Setup.",
            ),
            Self::Wait(1) => f.write_str("You can request a new code in 1 second."),
            Self::Wait(seconds) => {
                write!(f, "You can request a new code in {seconds} seconds.")
            }
            Self::EmailMissing => f.write_str(
                "Your account needs a code sent by email, but it has no email address. \
                 Please contact an administrator.",
            ),
            Self::SetupRequired => {
                f.write_str("2-step verification must be set up before you can continue.")
            }
            Self::MethodNotAllowed => {
                f.write_str("That method is not offered. Please choose one of the options.")
            }
            Self::ChooseOptions => f.write_str("Please choose one of the options."),
            Self::NewPassword(PasswordProblem::Empty) => {
                f.write_str("Please enter a new password.")
            }
            // The rule's reason as a sentence ("The password is too short; use at least
            // 12 characters."); it never contains the password.
            Self::NewPassword(problem) => {
                let text = problem.to_string();
                let mut chars = text.chars();
                match chars.next() {
                    Some(first) => write!(f, "{}{}.", first.to_uppercase(), chars.as_str()),
                    None => Ok(()),
                }
            }
            Self::PasswordsDiffer => {
                f.write_str("The two passwords are not the same. Please type them again.")
            }
            Self::Expired => f.write_str(
                "Your sign-in has expired. Please enter your username and password again.",
            ),
            Self::SignedOut => f.write_str("You have signed out."),
            Self::Switched => f.write_str("Signed out. The next person can sign in."),
            Self::EmailedCodeNotCorrect => {
                f.write_str("That code is not correct or has expired. Send a new code.")
            }
            Self::Cancelled => f.write_str(
                "Sign-in was cancelled and you are signed out. You can sign in again \
                 whenever you are ready.",
            ),
            Self::SignInUnavailable => {
                f.write_str("Sign-in is unavailable right now. Please try again in a few minutes.")
            }
            Self::DirectoryPassword(message) => f.write_str(message),
            Self::KeyNotAccepted => f.write_str(
                "The security key was not accepted. Try again, or use another way to sign in.",
            ),
            Self::KeySetup(message) => f.write_str(message),
        }
    }
}

impl Message {
    /// The CSS class: a problem to fix, or information.
    pub fn tone(&self) -> &'static str {
        match self {
            Self::Wait(_) | Self::Expired | Self::SignedOut | Self::Switched | Self::Cancelled => {
                "info"
            }
            Self::PasswordNotCorrect
            | Self::CodeNotCorrect
            | Self::EmailedCodeNotCorrect
            | Self::SetupCodeNotCorrect
            | Self::EmailMissing
            | Self::SetupRequired
            | Self::MethodNotAllowed
            | Self::ChooseOptions
            | Self::NewPassword(_)
            | Self::PasswordsDiffer
            | Self::SignInUnavailable
            | Self::DirectoryPassword(_)
            | Self::KeyNotAccepted
            | Self::KeySetup(_) => "error",
        }
    }

    /// A failed password or code: the page adds the lockout hint, whatever the account's
    /// state, so that the hint reveals nothing (SPEC section 11).
    pub fn shows_lockout_hint(&self) -> bool {
        matches!(
            self,
            Self::PasswordNotCorrect
                | Self::CodeNotCorrect
                | Self::EmailedCodeNotCorrect
                | Self::KeyNotAccepted
        )
    }

    /// The ARIA role: errors are announced at once, information politely.
    pub fn role(&self) -> &'static str {
        match self.tone() {
            "error" => "alert",
            _ => "status",
        }
    }
}

/// Which form a failure happened on: "not correct" is worded for what was typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FormKind {
    Password,
    Code,
    Setup,
    Enroll,
    NewPassword,
    /// A security key's answer at the device step or a passkey's.
    Key,
}

/// What a page does about a failed step.
#[derive(Debug)]
pub(super) enum Failure {
    /// Show the same form again, with this message and status.
    Again {
        status: StatusCode,
        message: Message,
    },
    /// The sign-in transaction is gone: back to the password, saying so.
    Restart,
    /// The form belongs to another step: go to the page of the current one.
    Resume,
    /// Our fault: the generic error page with this request id (the detail is logged).
    Internal(String),
}

/// The one mapping of [`SignInError`] to what the pages do.
pub(super) fn failure(error: SignInError, form: FormKind) -> Failure {
    let again = |status, message| Failure::Again { status, message };
    match error {
        SignInError::InvalidCredentials => match form {
            FormKind::Password => again(StatusCode::UNAUTHORIZED, Message::PasswordNotCorrect),
            FormKind::Setup => again(StatusCode::UNAUTHORIZED, Message::SetupCodeNotCorrect),
            FormKind::Code | FormKind::Enroll | FormKind::NewPassword => {
                again(StatusCode::UNAUTHORIZED, Message::CodeNotCorrect)
            }
            FormKind::Key => again(StatusCode::UNAUTHORIZED, Message::KeyNotAccepted),
        },
        SignInError::WrongSetupCode => {
            again(StatusCode::UNAUTHORIZED, Message::SetupCodeNotCorrect)
        }
        SignInError::TransactionExpired => Failure::Restart,
        SignInError::RequestDelay { retry_after } => again(
            StatusCode::TOO_MANY_REQUESTS,
            Message::Wait(retry_after.max(0)),
        ),
        SignInError::EmailMissing => again(StatusCode::FORBIDDEN, Message::EmailMissing),
        SignInError::EnrollmentRequired => again(StatusCode::FORBIDDEN, Message::SetupRequired),
        SignInError::WrongStep => Failure::Resume,
        SignInError::MethodNotAllowed => {
            again(StatusCode::UNPROCESSABLE_ENTITY, Message::MethodNotAllowed)
        }
        SignInError::InvalidPassword(problem) => again(
            StatusCode::UNPROCESSABLE_ENTITY,
            Message::NewPassword(problem),
        ),
        SignInError::DirectoryUnavailable => {
            again(StatusCode::SERVICE_UNAVAILABLE, Message::SignInUnavailable)
        }
        SignInError::DirectoryPassword(message) => {
            again(StatusCode::FORBIDDEN, Message::DirectoryPassword(message))
        }
        SignInError::SecurityKey(error) => match key_setup_message(&error) {
            Some(message) => again(StatusCode::UNPROCESSABLE_ENTITY, Message::KeySetup(message)),
            None => internal(&error),
        },
        SignInError::Internal(source) => internal(&*source),
    }
}

/// Logs `error` under a new request id; the page shows only the id.
pub(super) fn internal(error: &dyn std::fmt::Display) -> Failure {
    let id = request_id();
    tracing::error!(request_id = %id, error = %error, "internal error on a page");
    Failure::Internal(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_error_has_a_page_and_hides_internal_detail() {
        let secret = "database password is hunter2";
        let internal = failure(
            SignInError::Internal(secret.to_owned().into()),
            FormKind::Password,
        );
        let Failure::Internal(id) = internal else {
            panic!("internal errors are 5xx pages")
        };
        assert!(!id.contains("hunter2"));
        assert!(matches!(
            failure(SignInError::InvalidCredentials, FormKind::Password),
            Failure::Again {
                status: StatusCode::UNAUTHORIZED,
                message: Message::PasswordNotCorrect
            }
        ));
        assert!(matches!(
            failure(SignInError::InvalidCredentials, FormKind::Code),
            Failure::Again {
                message: Message::CodeNotCorrect,
                ..
            }
        ));
        assert!(matches!(
            failure(SignInError::TransactionExpired, FormKind::Code),
            Failure::Restart
        ));
        assert!(matches!(
            failure(SignInError::WrongStep, FormKind::Code),
            Failure::Resume
        ));
        assert!(matches!(
            failure(
                SignInError::RequestDelay { retry_after: 18 },
                FormKind::Code
            ),
            Failure::Again {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: Message::Wait(18)
            }
        ));
        assert!(matches!(
            failure(
                SignInError::InvalidPassword(PasswordProblem::TooShort),
                FormKind::NewPassword
            ),
            Failure::Again {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                ..
            }
        ));
    }

    #[test]
    fn messages_read_as_sentences() {
        assert_eq!(
            Message::Wait(18).to_string(),
            "You can request a new code in 18 seconds."
        );
        assert_eq!(
            Message::Wait(1).to_string(),
            "You can request a new code in 1 second."
        );
        assert!(Message::EmailMissing
            .to_string()
            .ends_with("contact an administrator."));
        assert_eq!(Message::CodeNotCorrect.tone(), "error");
        assert_eq!(Message::Wait(3).role(), "status");
    }
}
