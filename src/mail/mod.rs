//! The OTP email: its template and the message it becomes.
//!
//! - [`template`]: the administrator-editable template (SPEC section 4, module "OTP",
//!   name "OTP Notification Email"), its placeholders, validation and rendering.
//! - [`message`]: a rendered email as an RFC 5322 message (lettre), for SMTP or `.eml`.
//!
//! - [`delivery`]: the transports (SMTP, or `.eml` files in `<data-dir>/mail/`) that the
//!   outbox worker ([`crate::service::outbox`]) delivers through.
//!
//! `template` and `message` do no I/O and read no clock: the date and the Message-ID's
//! random part are parameters (only the MIME boundary is random, drawn by lettre).
//! `delivery` is the shell that talks to the mail server.

pub mod delivery;
pub mod message;
pub mod template;

pub use message::{message_id_for, MessageError, OutgoingEmail};
pub use template::{
    escape_html, EmailTemplate, RenderedEmail, SecurityValues, TemplateError, TemplateKind,
    TemplatePart, TemplateValues, MAX_BODY_CHARS, MAX_SUBJECT_CHARS, OTP_MODULE, OTP_TEMPLATE_NAME,
};
