//! The email templates: the OTP email (SPEC section 4: module "OTP", name "OTP
//! Notification Email") and the security notifications (SPEC section 10: module
//! "Security", one per [`SecurityEvent`], see [`EmailTemplate::default_security`]).
//!
//! Administrators may replace the default template, so a template is untrusted text with
//! placeholders. It is checked before it is stored ([`EmailTemplate::validate`]) and again
//! before each use ([`EmailTemplate::render`]).
//!
//! # Placeholders
//!
//! A placeholder is `@` followed by the longest run of `[a-z0-9_]` (ASCII, case-sensitive),
//! when that `@` is the first character of the text or follows a character that is not an
//! ASCII letter or digit. So `help@hospital.org` is plain text, and `@user_idx` is the
//! unknown placeholder `user_idx`, not `@user_id` followed by `x`. Two more rules:
//!
//! - `@@` is a literal `@` (wherever it appears): `@@user_otp` shows the text `@user_otp`.
//! - An `@` followed by nothing or by a character outside `[a-z0-9_]` is literal text.
//!
//! Placeholders that touch a previous word are text: in `@user_otp@user_id` the second
//! `@` follows `p`, so it stays literal (this is what lets `@user_id@hospital.org` build an
//! address from the username). Separate placeholders with a space or punctuation.
//!
//! Each kind of template ([`TemplateKind`]) knows its own placeholders; any other name is
//! refused. The OTP email's are `@user_id` (username), `@user_otp` (the code), `@user_name`
//! (display name), `@otp_valid_minutes` and `@site_name`. A security notification's are
//! `@user_id`, `@user_name`, `@event_time` (when it happened, UTC), `@client_ip` (from
//! where, or "unknown") and `@site_name`: `@user_otp` and `@otp_valid_minutes` are refused
//! there ([`TemplateError::CodeNotAllowed`]), so no code or secret can be put in one.
//!
//! # Substitution
//!
//! One pass over the template: a value is never scanned for placeholders, so a display
//! name of `@user_otp` stays that text. Values are adapted to where they land:
//!
//! - subject: control characters (CR, LF, tab, ...) and Unicode line/paragraph separators
//!   are removed, so no value can start a new mail header;
//! - text body: inserted as they are;
//! - HTML body: HTML-escaped (`& < > " '`). The template's own markup is kept as written:
//!   administrators write it, users do not.

/// The template module of the OTP email (the seed's "module" column).
pub const OTP_MODULE: &str = "OTP";
/// The template name of the OTP email.
pub const OTP_TEMPLATE_NAME: &str = "OTP Notification Email";

/// Longest subject template, in characters.
pub const MAX_SUBJECT_CHARS: usize = 200;
/// Longest text or HTML body template, in characters.
pub const MAX_BODY_CHARS: usize = 20_000;

use crate::domain::SecurityEvent;

/// Every placeholder name of the OTP email, in the order error messages list them.
const PLACEHOLDER_NAMES: &str = "@user_id, @user_otp, @user_name, @otp_valid_minutes or @site_name";
/// Every placeholder name of a security notification.
const SECURITY_PLACEHOLDER_NAMES: &str =
    "@user_id, @user_name, @event_time, @client_ip or @site_name";

/// Which email a template is for: it decides the placeholders and the rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TemplateKind {
    /// The OTP Notification Email: must contain `@user_otp`.
    Otp,
    /// A security notification: must not contain a code.
    Security,
}

impl TemplateKind {
    /// The placeholders this kind allows, in the order pages and messages list them.
    pub fn placeholders(self) -> &'static [&'static str] {
        match self {
            Self::Otp => &[
                "@user_id",
                "@user_otp",
                "@user_name",
                "@otp_valid_minutes",
                "@site_name",
            ],
            Self::Security => &[
                "@user_id",
                "@user_name",
                "@event_time",
                "@client_ip",
                "@site_name",
            ],
        }
    }

    /// [`Self::placeholders`] as error messages list them ("a, b or c").
    pub fn placeholder_names(self) -> &'static str {
        match self {
            Self::Otp => PLACEHOLDER_NAMES,
            Self::Security => SECURITY_PLACEHOLDER_NAMES,
        }
    }

    fn allows(self, placeholder: Placeholder) -> bool {
        match placeholder {
            Placeholder::UserId | Placeholder::UserName | Placeholder::SiteName => true,
            Placeholder::UserOtp | Placeholder::OtpValidMinutes => self == Self::Otp,
            Placeholder::EventTime | Placeholder::ClientIp => self == Self::Security,
        }
    }
}

/// An email template: subject, plain-text body and an optional HTML body.
///
/// A blank HTML body (empty or only whitespace) counts as none: the email is sent as
/// plain text only, rather than with an empty HTML part that mail clients would show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailTemplate {
    pub subject: String,
    pub text_body: String,
    pub html_body: Option<String>,
}

/// A part of a template, named in error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TemplatePart {
    Subject,
    TextBody,
    HtmlBody,
}

impl TemplatePart {
    /// The name used in messages for administrators.
    pub fn label(self) -> &'static str {
        match self {
            Self::Subject => "subject",
            Self::TextBody => "text body",
            Self::HtmlBody => "HTML body",
        }
    }

    fn max_chars(self) -> usize {
        match self {
            Self::Subject => MAX_SUBJECT_CHARS,
            Self::TextBody | Self::HtmlBody => MAX_BODY_CHARS,
        }
    }
}

impl std::fmt::Display for TemplatePart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// Why a template cannot be used. Messages are written for the administrator editing it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("unknown placeholder @{name} in the {part}; use {PLACEHOLDER_NAMES}")]
    UnknownPlaceholder { name: String, part: TemplatePart },
    /// A placeholder no security notification knows.
    #[error("unknown placeholder @{name} in the {part}; use {SECURITY_PLACEHOLDER_NAMES}")]
    UnknownSecurityPlaceholder { name: String, part: TemplatePart },
    /// `@user_otp` or `@otp_valid_minutes` in a security notification: no code or secret
    /// may be put in one.
    #[error(
        "@{name} cannot be used in the {part}: a security email never contains a code or \
         secret; use {SECURITY_PLACEHOLDER_NAMES}"
    )]
    CodeNotAllowed { name: String, part: TemplatePart },
    #[error("enter a subject")]
    EmptySubject,
    #[error("enter a text body")]
    EmptyTextBody,
    #[error("the {part} is too long: at most {max} characters", max = part.max_chars())]
    TooLong { part: TemplatePart },
    #[error("the subject must fit on one line")]
    SubjectLineBreak,
    /// Without the code the email is useless: the user cannot finish signing in. Checked
    /// in the text body and, when there is one, in the HTML body (most mail clients show
    /// only the HTML part).
    #[error("the {part} must contain @user_otp, the code the user has to enter")]
    MissingCode { part: TemplatePart },
}

/// The values put into a template. `Debug` hides the code.
#[derive(Clone, Copy)]
pub struct TemplateValues<'a> {
    /// `@user_id`: the username.
    pub user_id: &'a str,
    /// `@user_otp`: the code.
    pub user_otp: &'a str,
    /// `@user_name`: the display name.
    pub user_name: &'a str,
    /// `@otp_valid_minutes`: see [`TemplateValues::minutes_from_seconds`].
    pub otp_valid_minutes: u32,
    /// `@site_name`: the name of the installation, as users know it.
    pub site_name: &'a str,
}

impl TemplateValues<'_> {
    /// Whole minutes for the OTP Valid Seconds setting, rounded up: a code valid for 30
    /// seconds is "valid for 1 minutes", never "0 minutes".
    pub fn minutes_from_seconds(seconds: u32) -> u32 {
        seconds.div_ceil(60)
    }
}

impl std::fmt::Debug for TemplateValues<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplateValues")
            .field("user_id", &self.user_id)
            .field("user_otp", &format_args!("[redacted]"))
            .field("user_name", &self.user_name)
            .field("otp_valid_minutes", &self.otp_valid_minutes)
            .field("site_name", &self.site_name)
            .finish()
    }
}

/// The values put into a security notification.
#[derive(Clone, Copy, Debug)]
pub struct SecurityValues<'a> {
    /// `@user_id`: the username.
    pub user_id: &'a str,
    /// `@user_name`: the display name.
    pub user_name: &'a str,
    /// `@event_time`: when it happened, in UTC (`2026-12-03 11:07 UTC`, see
    /// [`SecurityValues::event_time_text`]).
    pub event_time: &'a str,
    /// `@client_ip`: the address the request came from, or "unknown".
    pub client_ip: &'a str,
    /// `@site_name`: the name of the installation, as users know it.
    pub site_name: &'a str,
}

impl SecurityValues<'_> {
    /// The readable UTC form of a moment: `2026-12-03 11:07:38 UTC`.
    pub fn event_time_text(at: crate::clock::Timestamp) -> String {
        let iso = at.iso_utc();
        format!("{} UTC", iso.trim_end_matches('Z').replacen('T', " ", 1))
    }
}

/// The values of either kind, as [`substitute`] reads them.
#[derive(Clone, Copy)]
enum Values<'v, 'a> {
    Otp(&'v TemplateValues<'a>),
    Security(&'v SecurityValues<'a>),
}

/// A rendered email, ready to become a message. Every part may contain the code, so
/// `Debug` shows none of them.
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    /// One line: no control characters came from the values.
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

impl std::fmt::Debug for RenderedEmail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = format_args!("[redacted]");
        f.debug_struct("RenderedEmail")
            .field("subject", &redacted)
            .field("text", &redacted)
            .field("html", &self.html.as_ref().map(|_| redacted))
            .finish()
    }
}

impl EmailTemplate {
    /// The template that ships: calm and plain, for clinicians who may read it on a ward
    /// phone. No external resources and no script in the HTML, so it renders the same in
    /// every client and tracks no one.
    pub fn default_otp() -> Self {
        Self {
            subject: "Your sign-in code for @site_name".to_owned(),
            text_body: DEFAULT_TEXT_BODY.to_owned(),
            html_body: Some(DEFAULT_HTML_BODY.to_owned()),
        }
    }

    /// Checks the template as an OTP email, in this order: empty subject or text body,
    /// lengths, line breaks in the subject, unknown placeholders (subject, then text, then
    /// HTML; the first one is named), then the code's presence (text, then HTML).
    pub fn validate(&self) -> Result<(), TemplateError> {
        self.validate_as(TemplateKind::Otp)
    }

    /// Checks the template as an email of `kind`: a security notification is checked in
    /// the same order, with its own placeholders, and refuses `@user_otp` instead of
    /// requiring it.
    pub fn validate_as(&self, kind: TemplateKind) -> Result<(), TemplateError> {
        self.parse(kind).map(|_| ())
    }

    /// Validates as an OTP email, then fills in the values (see the module documentation
    /// for how each part treats them).
    pub fn render(&self, values: &TemplateValues<'_>) -> Result<RenderedEmail, TemplateError> {
        let parsed = self.parse(TemplateKind::Otp)?;
        Ok(parsed.fill(Values::Otp(values)))
    }

    /// Validates as a security notification, then fills in the values.
    pub fn render_security(
        &self,
        values: &SecurityValues<'_>,
    ) -> Result<RenderedEmail, TemplateError> {
        let parsed = self.parse(TemplateKind::Security)?;
        Ok(parsed.fill(Values::Security(values)))
    }

    /// The security notification that ships for `event`: what happened, when, from where,
    /// and whom to call if it was not the user. Plain, short, no links, nothing loaded.
    pub fn default_security(event: SecurityEvent) -> Self {
        let (subject, what, advice) = security_wording(event);
        let text_body = format!(
            "Hello @user_name,\n\n{what}\n\nWhen: @event_time\nFrom: @client_ip\nAccount: @user_id\n\n\
             {advice}\n\nIf this was not you, call your service desk.\n"
        );
        let html_body = format!(
            r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{subject}</title>
</head>
<body style="margin:0; padding:24px; background-color:#f4f6f8; font-family:Arial, Helvetica, sans-serif; color:#1f2933;">
<div style="max-width:520px; margin:0 auto; padding:24px; background-color:#ffffff; border:1px solid #d9e2ec; border-radius:6px;">
<p style="margin:0 0 16px 0; font-size:16px; line-height:1.5;">Hello @user_name,</p>
<p style="margin:0 0 16px 0; font-size:16px; line-height:1.5;">{what}</p>
<p style="margin:0 0 16px 0; font-size:16px; line-height:1.5;">When: @event_time<br>From: @client_ip<br>Account: @user_id</p>
<p style="margin:0 0 16px 0; font-size:16px; line-height:1.5;">{advice}</p>
<p style="margin:0; font-size:16px; line-height:1.5; font-weight:bold;">If this was not you, call your service desk.</p>
</div>
</body>
</html>
"#
        );
        Self {
            subject: subject.to_owned(),
            text_body,
            html_body: Some(html_body),
        }
    }

    /// The HTML body unless it is blank.
    fn html(&self) -> Option<&str> {
        self.html_body
            .as_deref()
            .filter(|html| !html.trim().is_empty())
    }

    fn parse(&self, kind: TemplateKind) -> Result<Parsed<'_>, TemplateError> {
        if self.subject.trim().is_empty() {
            return Err(TemplateError::EmptySubject);
        }
        if self.text_body.trim().is_empty() {
            return Err(TemplateError::EmptyTextBody);
        }
        let html = self.html();
        let parts = [
            (TemplatePart::Subject, Some(self.subject.as_str())),
            (TemplatePart::TextBody, Some(self.text_body.as_str())),
            (TemplatePart::HtmlBody, html),
        ];
        for (part, text) in parts {
            if text.is_some_and(|text| text.chars().count() > part.max_chars()) {
                return Err(TemplateError::TooLong { part });
            }
        }
        if self.subject.contains(['\r', '\n']) {
            return Err(TemplateError::SubjectLineBreak);
        }
        let subject = parse_part(kind, TemplatePart::Subject, &self.subject)?;
        let text = parse_part(kind, TemplatePart::TextBody, &self.text_body)?;
        let html = html
            .map(|html| parse_part(kind, TemplatePart::HtmlBody, html))
            .transpose()?;
        if kind == TemplateKind::Security {
            return Ok(Parsed {
                subject,
                text,
                html,
            });
        }
        let has_code = |segments: &[Segment<'_>]| {
            segments.contains(&Segment::Placeholder(Placeholder::UserOtp))
        };
        if !has_code(&text) {
            return Err(TemplateError::MissingCode {
                part: TemplatePart::TextBody,
            });
        }
        if html.as_deref().is_some_and(|html| !has_code(html)) {
            return Err(TemplateError::MissingCode {
                part: TemplatePart::HtmlBody,
            });
        }
        Ok(Parsed {
            subject,
            text,
            html,
        })
    }
}

const DEFAULT_TEXT_BODY: &str = "\
Hello @user_name,

Your sign-in code for @site_name is:

    @user_otp

Enter it on the sign-in page to continue. It is valid for @otp_valid_minutes minutes \
and works only once.

If you did not just try to sign in as @user_id, do not use this code. Please contact your \
IT service desk: someone else may know your password.

Nobody from IT will ever ask you for this code.
";

const DEFAULT_HTML_BODY: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Your sign-in code for @site_name</title>
</head>
<body style="margin:0; padding:24px; background-color:#f4f6f8; font-family:Arial, Helvetica, sans-serif; color:#1f2933;">
<div style="max-width:520px; margin:0 auto; padding:24px; background-color:#ffffff; border:1px solid #d9e2ec; border-radius:6px;">
<p style="margin:0 0 16px 0; font-size:16px; line-height:1.5;">Hello @user_name,</p>
<p style="margin:0 0 16px 0; font-size:16px; line-height:1.5;">Your sign-in code for @site_name is:</p>
<p style="margin:0 0 16px 0; font-size:28px; font-weight:bold; letter-spacing:4px; font-family:'Courier New', Courier, monospace;">@user_otp</p>
<p style="margin:0 0 16px 0; font-size:16px; line-height:1.5;">Enter it on the sign-in page to continue. It is valid for @otp_valid_minutes minutes and works only once.</p>
<p style="margin:0 0 16px 0; font-size:16px; line-height:1.5;">If you did not just try to sign in as @user_id, do not use this code. Please contact your IT service desk: someone else may know your password.</p>
<p style="margin:0; font-size:14px; line-height:1.5; color:#52606d;">Nobody from IT will ever ask you for this code.</p>
</div>
</body>
</html>
"#;

/// Subject, what happened and what to do, per security event (plain text without `@`
/// but for the placeholders).
fn security_wording(event: SecurityEvent) -> (&'static str, &'static str, &'static str) {
    match event {
        SecurityEvent::DeviceAdded => (
            "A 2-step verification device was added to your @site_name account",
            "A new 2-step verification device was set up for your @site_name account. It replaces any device you had before.",
            "If you set it up, or your service desk did it for you, there is nothing to do.",
        ),
        SecurityEvent::KeyAdded => (
            "A security key was added to your @site_name account",
            "A new security key or passkey was registered to your @site_name account. It can now be used to sign in.",
            "If you added it, or your service desk did it for you, there is nothing to do.",
        ),
        SecurityEvent::KeyRemoved => (
            "A security key was removed from your @site_name account",
            "A security key or passkey was removed from your @site_name account. It can no longer be used to sign in.",
            "If you asked for this, there is nothing to do.",
        ),
        SecurityEvent::TemporaryAccessIssued => (
            "A temporary access code was issued for your @site_name account",
            "Your service desk issued a temporary access code for your @site_name account. With your password, it lets you sign in for a short time without your 2-step verification device.",
            "If you did not ask the service desk for it, call them now: someone may be trying to get into your account.",
        ),
        SecurityEvent::DeviceRemoved => (
            "2-step verification was removed from your @site_name account",
            "The 2-step verification device of your @site_name account was removed.",
            "If you asked for this, there is nothing to do; you may be asked to set up a device at your next sign-in.",
        ),
        SecurityEvent::RecoveryCodesGenerated => (
            "New recovery codes for your @site_name account",
            "A new set of recovery codes was created for your @site_name account. Your earlier codes no longer work.",
            "If you created them, keep them somewhere safe.",
        ),
        SecurityEvent::RecoveryCodeUsed => (
            "A recovery code was used to sign in to your @site_name account",
            "One of your recovery codes was used to sign in to your @site_name account. It cannot be used again.",
            "If it was you, there is nothing to do; when few codes are left, create a new set.",
        ),
        SecurityEvent::AccountLocked => (
            "Your @site_name account was locked",
            "Your @site_name account was locked after several failed sign-in attempts.",
            "It unlocks by itself after a while, or your service desk can unlock it. If you did not try to sign in, someone else may be trying to guess your password.",
        ),
        SecurityEvent::PasswordChanged => (
            "The password of your @site_name account was changed",
            "The password of your @site_name account was changed.",
            "If you changed it, there is nothing to do.",
        ),
        SecurityEvent::PasswordReset => (
            "An administrator reset the password of your @site_name account",
            "An administrator set a new password for your @site_name account.",
            "If you asked your service desk for this, there is nothing to do.",
        ),
    }
}

/// A template split into text and placeholders.
struct Parsed<'t> {
    subject: Vec<Segment<'t>>,
    text: Vec<Segment<'t>>,
    html: Option<Vec<Segment<'t>>>,
}

impl Parsed<'_> {
    fn fill(&self, values: Values<'_, '_>) -> RenderedEmail {
        RenderedEmail {
            subject: substitute(&self.subject, values, Target::Subject),
            text: substitute(&self.text, values, Target::Text),
            html: self
                .html
                .as_deref()
                .map(|segments| substitute(segments, values, Target::Html)),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placeholder {
    UserId,
    UserOtp,
    UserName,
    OtpValidMinutes,
    SiteName,
    EventTime,
    ClientIp,
}

impl Placeholder {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "user_id" => Some(Self::UserId),
            "user_otp" => Some(Self::UserOtp),
            "user_name" => Some(Self::UserName),
            "otp_valid_minutes" => Some(Self::OtpValidMinutes),
            "site_name" => Some(Self::SiteName),
            "event_time" => Some(Self::EventTime),
            "client_ip" => Some(Self::ClientIp),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Segment<'t> {
    Text(&'t str),
    Placeholder(Placeholder),
}

fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_'
}

/// Splits a template part; `Err` carries the first unknown placeholder name.
///
/// Works on bytes: `@` and name characters are ASCII, so every slice boundary falls on a
/// character boundary, and the byte before an `@` that ends a multi-byte character is a
/// continuation byte, which is (correctly) not an ASCII letter or digit.
fn parse_part(
    kind: TemplateKind,
    part: TemplatePart,
    text: &str,
) -> Result<Vec<Segment<'_>>, TemplateError> {
    parse_segments(text, kind).map_err(|name| {
        let known = Placeholder::from_name(&name);
        match kind {
            TemplateKind::Otp => TemplateError::UnknownPlaceholder { name, part },
            TemplateKind::Security
                if matches!(
                    known,
                    Some(Placeholder::UserOtp | Placeholder::OtpValidMinutes)
                ) =>
            {
                TemplateError::CodeNotAllowed { name, part }
            }
            TemplateKind::Security => TemplateError::UnknownSecurityPlaceholder { name, part },
        }
    })
}

/// `Err` carries the first name that is not a placeholder of `kind`.
fn parse_segments(text: &str, kind: TemplateKind) -> Result<Vec<Segment<'_>>, String> {
    let bytes = text.as_bytes();
    let mut segments = Vec::new();
    let mut text_start = 0;
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] != b'@' {
            index += 1;
            continue;
        }
        if bytes.get(index + 1) == Some(&b'@') {
            // `@@`: keep the first `@` as text, drop the second.
            segments.push(Segment::Text(&text[text_start..=index]));
            index += 2;
            text_start = index;
            continue;
        }
        let at_word_start = index == 0 || !bytes[index - 1].is_ascii_alphanumeric();
        let name_end = index
            + 1
            + bytes[index + 1..]
                .iter()
                .take_while(|byte| is_name_byte(**byte))
                .count();
        if !at_word_start || name_end == index + 1 {
            index += 1;
            continue;
        }
        let name = &text[index + 1..name_end];
        let placeholder = Placeholder::from_name(name)
            .filter(|placeholder| kind.allows(*placeholder))
            .ok_or_else(|| name.to_owned())?;
        if text_start < index {
            segments.push(Segment::Text(&text[text_start..index]));
        }
        segments.push(Segment::Placeholder(placeholder));
        index = name_end;
        text_start = index;
    }
    if text_start < bytes.len() {
        segments.push(Segment::Text(&text[text_start..]));
    }
    Ok(segments)
}

#[derive(Clone, Copy)]
enum Target {
    Subject,
    Text,
    Html,
}

fn substitute(segments: &[Segment<'_>], values: Values<'_, '_>, target: Target) -> String {
    let mut out = String::new();
    for segment in segments {
        let minutes;
        let value = match (*segment, values) {
            (Segment::Text(text), _) => {
                out.push_str(text);
                continue;
            }
            (Segment::Placeholder(Placeholder::UserId), Values::Otp(values)) => values.user_id,
            (Segment::Placeholder(Placeholder::UserOtp), Values::Otp(values)) => values.user_otp,
            (Segment::Placeholder(Placeholder::UserName), Values::Otp(values)) => values.user_name,
            (Segment::Placeholder(Placeholder::OtpValidMinutes), Values::Otp(values)) => {
                minutes = values.otp_valid_minutes.to_string();
                &minutes
            }
            (Segment::Placeholder(Placeholder::SiteName), Values::Otp(values)) => values.site_name,
            (Segment::Placeholder(Placeholder::UserId), Values::Security(values)) => values.user_id,
            (Segment::Placeholder(Placeholder::UserName), Values::Security(values)) => {
                values.user_name
            }
            (Segment::Placeholder(Placeholder::SiteName), Values::Security(values)) => {
                values.site_name
            }
            (Segment::Placeholder(Placeholder::EventTime), Values::Security(values)) => {
                values.event_time
            }
            (Segment::Placeholder(Placeholder::ClientIp), Values::Security(values)) => {
                values.client_ip
            }
            // Parsing refused these for the kind: nothing to fill in.
            (
                Segment::Placeholder(Placeholder::EventTime | Placeholder::ClientIp),
                Values::Otp(_),
            )
            | (
                Segment::Placeholder(Placeholder::UserOtp | Placeholder::OtpValidMinutes),
                Values::Security(_),
            ) => "",
        };
        match target {
            Target::Subject => out.extend(value.chars().filter(|c| !breaks_header(*c))),
            Target::Text => out.push_str(value),
            Target::Html => escape_html_into(value, &mut out),
        }
    }
    out
}

/// Characters a subject value loses: controls (CR and LF above all) and the Unicode line
/// and paragraph separators.
pub(super) fn breaks_header(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_html_into(text, &mut out);
    out
}

fn escape_html_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages' list of placeholders is the pages' list, and each is a placeholder
    /// its kind allows.
    #[test]
    fn the_placeholder_names_in_messages_are_the_listed_ones() {
        for kind in [TemplateKind::Otp, TemplateKind::Security] {
            let list = kind.placeholders();
            let (last, rest) = list.split_last().unwrap();
            assert_eq!(
                kind.placeholder_names(),
                format!("{} or {last}", rest.join(", "))
            );
            for name in list {
                let placeholder = Placeholder::from_name(&name[1..]).unwrap();
                assert!(kind.allows(placeholder), "{name}");
            }
        }
    }
    use proptest::prelude::*;

    fn values() -> TemplateValues<'static> {
        TemplateValues {
            user_id: "jsmith",
            user_otp: "482913",
            user_name: "Jane Smith",
            otp_valid_minutes: 15,
            site_name: "St. Mary's Hospital",
        }
    }

    fn template(subject: &str, text: &str, html: Option<&str>) -> EmailTemplate {
        EmailTemplate {
            subject: subject.to_owned(),
            text_body: text.to_owned(),
            html_body: html.map(str::to_owned),
        }
    }

    #[test]
    fn the_seed_names_the_otp_template() {
        assert_eq!(OTP_MODULE, "OTP");
        assert_eq!(OTP_TEMPLATE_NAME, "OTP Notification Email");
    }

    #[test]
    fn the_default_template_validates_and_fills_every_placeholder() {
        let template = EmailTemplate::default_otp();
        assert_eq!(template.validate(), Ok(()));
        let email = template.render(&values()).unwrap();
        assert_eq!(email.subject, "Your sign-in code for St. Mary's Hospital");
        for needle in [
            "482913",
            "15 minutes",
            "Jane Smith",
            "jsmith",
            "IT service desk",
        ] {
            assert!(email.text.contains(needle), "{needle}");
        }
        let html = email.html.unwrap();
        for needle in [
            "482913",
            "15 minutes",
            "Jane Smith",
            "St. Mary&#39;s Hospital",
        ] {
            assert!(html.contains(needle), "{needle}");
        }
        for part in [&email.subject, &email.text, &html] {
            assert!(!part.contains("@user_"), "{part}");
            assert!(!part.contains("@otp_"), "{part}");
            assert!(!part.contains("@site_"), "{part}");
        }
    }

    #[test]
    fn the_default_html_loads_nothing_and_runs_nothing() {
        let html = EmailTemplate::default_otp()
            .html_body
            .unwrap()
            .to_lowercase();
        for banned in [
            "<script", "http:", "https:", "src=", "url(", "<link", "<img",
        ] {
            assert!(!html.contains(banned), "{banned}");
        }
    }

    #[test]
    fn a_custom_template_renders_every_placeholder_in_every_part() {
        let template = template(
            "@site_name: @user_otp for @user_id (@user_name, @otp_valid_minutes min)",
            "@user_name / @user_id / @user_otp / @otp_valid_minutes / @site_name",
            Some("<p>@user_name|@user_id|@user_otp|@otp_valid_minutes|@site_name</p>"),
        );
        let email = template.render(&values()).unwrap();
        assert_eq!(
            email.subject,
            "St. Mary's Hospital: 482913 for jsmith (Jane Smith, 15 min)"
        );
        assert_eq!(
            email.text,
            "Jane Smith / jsmith / 482913 / 15 / St. Mary's Hospital"
        );
        assert_eq!(
            email.html.as_deref(),
            Some("<p>Jane Smith|jsmith|482913|15|St. Mary&#39;s Hospital</p>")
        );
    }

    #[test]
    fn an_unknown_placeholder_is_refused_by_name_and_part() {
        let cases = [
            (
                template("Code @user_pin", "@user_otp", None),
                TemplatePart::Subject,
            ),
            (
                template("Code", "@user_otp @user_pin", None),
                TemplatePart::TextBody,
            ),
            (
                template("Code", "@user_otp", Some("<p>@user_otp @user_pin</p>")),
                TemplatePart::HtmlBody,
            ),
        ];
        for (template, part) in cases {
            let error = template.validate().unwrap_err();
            assert_eq!(
                error,
                TemplateError::UnknownPlaceholder {
                    name: "user_pin".to_owned(),
                    part
                }
            );
            assert_eq!(
                error.to_string(),
                format!(
                    "unknown placeholder @user_pin in the {}; use @user_id, @user_otp, \
                     @user_name, @otp_valid_minutes or @site_name",
                    part.label()
                )
            );
            assert_eq!(template.render(&values()), Err(error));
        }
    }

    #[test]
    fn the_first_unknown_placeholder_is_the_one_reported() {
        let template = template("Hi", "@user_otp @first_bad @second_bad", None);
        assert_eq!(
            template.validate(),
            Err(TemplateError::UnknownPlaceholder {
                name: "first_bad".to_owned(),
                part: TemplatePart::TextBody
            })
        );
    }

    #[test]
    fn a_placeholder_name_is_the_longest_run_of_name_characters() {
        let error = template("Hi", "@user_otp @user_idx", None)
            .validate()
            .unwrap_err();
        assert_eq!(
            error,
            TemplateError::UnknownPlaceholder {
                name: "user_idx".to_owned(),
                part: TemplatePart::TextBody
            }
        );
        // Upper case ends the name: `@user_OTP` is the unknown `@user_`.
        let error = template("Hi", "@user_otp @user_OTP", None)
            .validate()
            .unwrap_err();
        assert_eq!(
            error,
            TemplateError::UnknownPlaceholder {
                name: "user_".to_owned(),
                part: TemplatePart::TextBody
            }
        );
        // Punctuation ends it too.
        let email = template("Hi", "(@user_otp).", None)
            .render(&values())
            .unwrap();
        assert_eq!(email.text, "(482913).");
    }

    #[test]
    fn email_addresses_double_at_and_lone_at_are_text() {
        let template = template(
            "Write to help@hospital.org",
            "@user_otp: ask help@hospital.org or it@@desk; @@user_otp, a @ b, @, @User, end@",
            Some("<p>@user_otp help@hospital.org @@ @</p>"),
        );
        let email = template.render(&values()).unwrap();
        assert_eq!(email.subject, "Write to help@hospital.org");
        assert_eq!(
            email.text,
            "482913: ask help@hospital.org or it@desk; @user_otp, a @ b, @, @User, end@"
        );
        assert_eq!(
            email.html.as_deref(),
            Some("<p>482913 help@hospital.org @ @</p>")
        );
    }

    #[test]
    fn an_at_right_after_a_word_is_text_so_addresses_can_use_placeholders() {
        let email = template("Hi", "@user_otp@user_id, mail @user_id@hospital.org", None)
            .render(&values())
            .unwrap();
        assert_eq!(email.text, "482913@user_id, mail jsmith@hospital.org");
        // A non-ASCII letter is not an ASCII letter: the placeholder counts.
        let email = template("Hi", "é@user_otp", None)
            .render(&values())
            .unwrap();
        assert_eq!(email.text, "é482913");
    }

    #[test]
    fn html_values_are_escaped_and_text_values_are_not() {
        let name = r#"<script>alert(1)</script> & "x" 'y'"#;
        let values = TemplateValues {
            user_name: name,
            ..values()
        };
        let email = template(
            "Hi",
            "Hello @user_name, @user_otp",
            Some(r#"<p class="greeting">Hello @user_name, <b>@user_otp</b></p>"#),
        )
        .render(&values)
        .unwrap();
        assert_eq!(email.text, format!("Hello {name}, 482913"));
        assert_eq!(
            email.html.as_deref(),
            Some(
                "<p class=\"greeting\">Hello &lt;script&gt;alert(1)&lt;/script&gt; \
                 &amp; &quot;x&quot; &#39;y&#39;, <b>482913</b></p>"
            )
        );
    }

    #[test]
    fn subject_values_cannot_add_a_header() {
        let values = TemplateValues {
            user_name: "Jane\r\nBcc: evil@example.org",
            site_name: "Ward\n7\t\u{0}\u{2028}",
            ..values()
        };
        let email = template("Code for @user_name at @site_name", "@user_otp", None)
            .render(&values)
            .unwrap();
        assert_eq!(email.subject, "Code for JaneBcc: evil@example.org at Ward7");
        assert!(!email.subject.contains(['\r', '\n']));
    }

    #[test]
    fn a_value_is_never_expanded_again() {
        let values = TemplateValues {
            user_name: "@user_otp",
            user_id: "@@user_otp",
            site_name: "@site_name",
            ..values()
        };
        let email = template(
            "@user_name @site_name",
            "Hi @user_name @user_id: @user_otp",
            Some("<p>@user_name @user_otp</p>"),
        )
        .render(&values)
        .unwrap();
        assert_eq!(email.subject, "@user_otp @site_name");
        assert_eq!(email.text, "Hi @user_otp @@user_otp: 482913");
        assert_eq!(email.html.as_deref(), Some("<p>@user_otp 482913</p>"));
        // Only the one place the template asks for it reveals the code.
        assert_eq!(email.text.matches("482913").count(), 1);
        assert!(!email.subject.contains("482913"));
    }

    #[test]
    fn empty_parts_are_refused() {
        assert_eq!(
            template(" ", "@user_otp", None).validate(),
            Err(TemplateError::EmptySubject)
        );
        assert_eq!(
            template("Hi", "\n\t ", None).validate(),
            Err(TemplateError::EmptyTextBody)
        );
    }

    #[test]
    fn a_blank_html_body_means_a_text_only_email() {
        let email = template("Hi", "@user_otp", Some("  \n"))
            .render(&values())
            .unwrap();
        assert_eq!(email.html, None);
    }

    #[test]
    fn long_parts_are_refused_at_the_limit_in_characters() {
        let subject_ok = "é".repeat(MAX_SUBJECT_CHARS);
        assert_eq!(template(&subject_ok, "@user_otp", None).validate(), Ok(()));
        let subject_long = "é".repeat(MAX_SUBJECT_CHARS + 1);
        assert_eq!(
            template(&subject_long, "@user_otp", None).validate(),
            Err(TemplateError::TooLong {
                part: TemplatePart::Subject
            })
        );
        let body_ok = format!("@user_otp{}", "é".repeat(MAX_BODY_CHARS - 9));
        assert_eq!(template("Hi", &body_ok, Some(&body_ok)).validate(), Ok(()));
        let body_long = format!("{body_ok}x");
        assert_eq!(
            template("Hi", &body_long, None).validate(),
            Err(TemplateError::TooLong {
                part: TemplatePart::TextBody
            })
        );
        assert_eq!(
            template("Hi", "@user_otp", Some(&body_long)).validate(),
            Err(TemplateError::TooLong {
                part: TemplatePart::HtmlBody
            })
        );
        assert_eq!(
            TemplateError::TooLong {
                part: TemplatePart::Subject
            }
            .to_string(),
            "the subject is too long: at most 200 characters"
        );
    }

    #[test]
    fn a_subject_with_a_line_break_is_refused() {
        for subject in ["Your\ncode", "Your\rcode", "Your code\r\n"] {
            assert_eq!(
                template(subject, "@user_otp", None).validate(),
                Err(TemplateError::SubjectLineBreak),
                "{subject:?}"
            );
        }
    }

    #[test]
    fn a_body_without_the_code_is_refused() {
        assert_eq!(
            template("Hi", "Your code is on its way", None).validate(),
            Err(TemplateError::MissingCode {
                part: TemplatePart::TextBody
            })
        );
        // An escaped or glued `@user_otp` is text, not the code.
        for text in ["@@user_otp", "code:x@user_otp"] {
            assert_eq!(
                template("Hi", text, None).validate(),
                Err(TemplateError::MissingCode {
                    part: TemplatePart::TextBody
                }),
                "{text}"
            );
        }
        assert_eq!(
            template("Hi", "@user_otp", Some("<p>Hello @user_name</p>")).validate(),
            Err(TemplateError::MissingCode {
                part: TemplatePart::HtmlBody
            })
        );
    }

    #[test]
    fn debug_never_shows_the_code() {
        let values = values();
        let debug = format!("{values:?}");
        assert!(!debug.contains("482913"), "{debug}");
        assert!(
            debug.contains("[redacted]") && debug.contains("jsmith"),
            "{debug}"
        );

        let email = template("@user_otp", "@user_otp", Some("<p>@user_otp</p>"))
            .render(&values)
            .unwrap();
        let debug = format!("{email:?}");
        assert!(!debug.contains("482913"), "{debug}");
        assert_eq!(
            debug,
            "RenderedEmail { subject: [redacted], text: [redacted], html: Some([redacted]) }"
        );
        let pretty = format!("{email:#?}");
        assert!(!pretty.contains("482913"), "{pretty}");
    }

    #[test]
    fn minutes_are_rounded_up() {
        assert_eq!(TemplateValues::minutes_from_seconds(900), 15);
        assert_eq!(TemplateValues::minutes_from_seconds(30), 1);
        assert_eq!(TemplateValues::minutes_from_seconds(61), 2);
        assert_eq!(TemplateValues::minutes_from_seconds(86_400), 1440);
    }

    #[test]
    fn escape_html_escapes_the_five_characters() {
        assert_eq!(
            escape_html(r#"a&b<c>d"e'f é"#),
            "a&amp;b&lt;c&gt;d&quot;e&#39;f é"
        );
    }

    fn security_values() -> SecurityValues<'static> {
        SecurityValues {
            user_id: "jsmith",
            user_name: "Jane Smith",
            event_time: "2027-01-15 08:00:00 UTC",
            client_ip: "192.0.2.10",
            site_name: "St. Mary's Hospital",
        }
    }

    /// SPEC 10: one default per security event, telling what, when, from where and whom
    /// to call; no code placeholder and nothing loaded.
    #[test]
    fn every_security_default_validates_and_says_what_when_where() {
        for event in SecurityEvent::ALL {
            let template = EmailTemplate::default_security(event);
            assert_eq!(
                template.validate_as(TemplateKind::Security),
                Ok(()),
                "{event}"
            );
            let email = template.render_security(&security_values()).unwrap();
            assert!(email.subject.contains("St. Mary's Hospital"), "{event}");
            for needle in [
                "Jane Smith",
                "jsmith",
                "2027-01-15 08:00:00 UTC",
                "192.0.2.10",
                "call your service desk",
            ] {
                assert!(email.text.contains(needle), "{event}: {needle}");
                assert!(
                    email.html.as_deref().unwrap().contains(needle),
                    "{event}: {needle}"
                );
            }
            for part in [&email.subject, &email.text] {
                assert!(!part.contains('@'), "{event}: {part}");
            }
            let html = template.html_body.unwrap().to_lowercase();
            for banned in [
                "<script", "http:", "https:", "src=", "url(", "<link", "<img",
            ] {
                assert!(!html.contains(banned), "{event}: {banned}");
            }
            // As an OTP template it would be refused: no code in it.
            assert!(EmailTemplate::default_security(event).validate().is_err());
        }
        let subjects: std::collections::HashSet<String> = SecurityEvent::ALL
            .into_iter()
            .map(|event| EmailTemplate::default_security(event).subject)
            .collect();
        assert_eq!(
            subjects.len(),
            SecurityEvent::ALL.len(),
            "one subject per event"
        );
    }

    /// SPEC 10: no code or secret in a security email; `@user_otp` is refused, by part.
    #[test]
    fn a_security_template_refuses_the_code_placeholders() {
        for (name, template, part) in [
            (
                "user_otp",
                template("Hi @user_otp", "Hello", None),
                TemplatePart::Subject,
            ),
            (
                "user_otp",
                template("Hi", "Code @user_otp", None),
                TemplatePart::TextBody,
            ),
            (
                "otp_valid_minutes",
                template("Hi", "Hello", Some("<p>@otp_valid_minutes</p>")),
                TemplatePart::HtmlBody,
            ),
        ] {
            let error = template.validate_as(TemplateKind::Security).unwrap_err();
            assert_eq!(
                error,
                TemplateError::CodeNotAllowed {
                    name: name.to_owned(),
                    part
                }
            );
            assert!(
                error.to_string().contains("never contains a code"),
                "{error}"
            );
            assert_eq!(template.render_security(&security_values()), Err(error));
        }
        // Escaped, it is text: `@@user_otp` shows the words, not a code.
        let email = template("Hi", "Never share @@user_otp", None)
            .render_security(&security_values())
            .unwrap();
        assert_eq!(email.text, "Never share @user_otp");
    }

    #[test]
    fn each_kind_knows_only_its_own_placeholders() {
        let error = template("Hi", "@user_otp at @event_time", None)
            .validate()
            .unwrap_err();
        assert_eq!(
            error,
            TemplateError::UnknownPlaceholder {
                name: "event_time".to_owned(),
                part: TemplatePart::TextBody
            }
        );
        let error = template("Hi", "Hello @user_pin", None)
            .validate_as(TemplateKind::Security)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown placeholder @user_pin in the text body; use @user_id, @user_name, \
             @event_time, @client_ip or @site_name"
        );
        assert_eq!(
            TemplateKind::Security.placeholder_names(),
            "@user_id, @user_name, @event_time, @client_ip or @site_name"
        );
        // A security template needs no placeholder at all.
        assert_eq!(
            template("Hi", "Something changed.", None).validate_as(TemplateKind::Security),
            Ok(())
        );
    }

    #[test]
    fn security_values_are_adapted_like_the_otp_ones() {
        let values = SecurityValues {
            user_name: "<b>Jane</b>\r\nBcc: x@example.org",
            client_ip: "@user_otp",
            ..security_values()
        };
        let email = template(
            "For @user_name",
            "@user_name from @client_ip at @event_time",
            Some("<p>@user_name</p>"),
        )
        .render_security(&values)
        .unwrap();
        assert_eq!(email.subject, "For <b>Jane</b>Bcc: x@example.org");
        assert_eq!(
            email.text,
            "<b>Jane</b>\r\nBcc: x@example.org from @user_otp at 2027-01-15 08:00:00 UTC"
        );
        assert_eq!(
            email.html.as_deref(),
            Some("<p>&lt;b&gt;Jane&lt;/b&gt;\r\nBcc: x@example.org</p>")
        );
    }

    #[test]
    fn the_event_time_reads_in_utc_to_the_second() {
        assert_eq!(
            SecurityValues::event_time_text(crate::clock::Timestamp::from_millis(
                1_800_000_000_999
            )),
            "2027-01-15 08:00:00 UTC"
        );
    }

    /// Template text rich in the characters the parser cares about.
    fn arb_template_text() -> impl Strategy<Value = String> {
        proptest::string::string_regex(
            "(@user_otp|@user_id|@user_name|@otp_valid_minutes|@site_name|@@|@|[a-zA-Z0-9_ .<>&\"'\r\n\té中🙂-]){0,40}",
        )
        .unwrap()
    }

    proptest! {
        #[test]
        fn render_never_panics(
            subject in arb_template_text(),
            text in arb_template_text(),
            html in proptest::option::of(arb_template_text()),
            user_id in any::<String>(),
            user_otp in any::<String>(),
            user_name in any::<String>(),
            otp_valid_minutes in any::<u32>(),
            site_name in any::<String>(),
        ) {
            let template = EmailTemplate { subject, text_body: text, html_body: html };
            let values = TemplateValues {
                user_id: &user_id,
                user_otp: &user_otp,
                user_name: &user_name,
                otp_valid_minutes,
                site_name: &site_name,
            };
            if let Ok(email) = template.render(&values) {
                prop_assert!(!email.subject.contains(['\r', '\n']));
            }
        }

        #[test]
        fn render_never_panics_on_arbitrary_text(
            subject in any::<String>(),
            text in any::<String>(),
            user_otp in "[0-9]{6,20}",
        ) {
            let template = EmailTemplate { subject, text_body: text, html_body: None };
            let values = TemplateValues { user_otp: &user_otp, ..values() };
            if let Ok(email) = template.render(&values) {
                prop_assert!(email.text.contains(&user_otp));
            }
        }
    }
}
