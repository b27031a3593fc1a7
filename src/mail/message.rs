//! One email as an RFC 5322 message: headers, a plain-text part and an optional HTML part.
//!
//! Built with lettre, which encodes what needs encoding: non-ASCII headers as RFC 2047
//! words, bodies as 7bit or quoted-printable UTF-8, a random MIME boundary of its own.
//! Nothing here reads the clock: the date is a parameter.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{Address, Message};

use super::template::{breaks_header, RenderedEmail};
use crate::domain::Email;

/// The first second mail dates cannot express (year 10000); lettre's date formatting
/// would panic on it, as it would on a date before 1970.
const DATE_LIMIT_SECONDS: u64 = 253_402_300_800;

/// The `Message-ID` of an outbox entry: `<twostep.{outbox_id}.{random:016x}@{domain}>`.
///
/// Store it with the outbox entry and reuse it on every retry, so a receiving server that
/// got the first attempt can recognise the duplicate. `random` (from the caller's RNG)
/// keeps ids unique across databases that reuse outbox ids. A `domain` that is not a plain
/// ASCII host name (letters, digits, `-`, `.`) is replaced by `localhost`: the id must stay
/// a valid header without encoding.
pub fn message_id_for(outbox_id: i64, random: u64, domain: &str) -> String {
    let domain_ok = !domain.is_empty()
        && domain.len() <= 253
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'));
    let domain = if domain_ok { domain } else { "localhost" };
    format!("<twostep.{outbox_id}.{random:016x}@{domain}>")
}

/// An email ready to send or to write to a `.eml` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// With angle brackets, as [`message_id_for`] makes it.
    pub message_id: String,
    pub from: Email,
    pub to: Email,
    /// Shown next to the recipient's address; control characters are dropped.
    pub to_name: Option<String>,
    pub rendered: RenderedEmail,
    /// The `Date:` header. Must lie between 1970 and 9999 ([`OutgoingEmail::to_lettre`]
    /// checks it again, since the field is public).
    pub date: SystemTime,
}

/// Why a message cannot be built. Messages name addresses only masked and never contain
/// the subject or a body (they hold the code).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MessageError {
    #[error("the sender address {masked} cannot be used in an email; check the Autoreply setting")]
    InvalidFrom { masked: String },
    #[error("the recipient address {masked} cannot be used in an email")]
    InvalidTo { masked: String },
    #[error("the Message-ID must look like <id@domain>, in printable ASCII")]
    InvalidMessageId,
    #[error("the email date must lie between the years 1970 and 9999")]
    DateOutOfRange,
    /// lettre refused the message; `reason` is lettre's own message (it names headers and
    /// addresses, never a body).
    #[error("the email could not be built: {reason}")]
    Build { reason: String },
}

impl OutgoingEmail {
    /// `date_unix_millis` is the `Date:` header, in Unix milliseconds (the store's
    /// timestamps); it must lie between 1970 and 9999.
    pub fn new(
        message_id: String,
        from: Email,
        to: Email,
        to_name: Option<String>,
        rendered: RenderedEmail,
        date_unix_millis: i64,
    ) -> Result<Self, MessageError> {
        let millis = u64::try_from(date_unix_millis).map_err(|_| MessageError::DateOutOfRange)?;
        let date = UNIX_EPOCH
            .checked_add(Duration::from_millis(millis))
            .ok_or(MessageError::DateOutOfRange)?;
        check_date(date)?;
        Ok(Self {
            message_id,
            from,
            to,
            to_name,
            rendered,
            date,
        })
    }

    /// The lettre message: From, To (with the display name when given), Subject, Date,
    /// our Message-ID, and a `multipart/alternative` body (text, then HTML) when there is
    /// an HTML part, otherwise a single `text/plain` body. UTF-8 throughout.
    pub fn to_lettre(&self) -> Result<Message, MessageError> {
        check_date(self.date)?;
        check_message_id(&self.message_id)?;
        let from = address(&self.from).map_err(|()| MessageError::InvalidFrom {
            masked: self.from.masked(),
        })?;
        let to = address(&self.to).map_err(|()| MessageError::InvalidTo {
            masked: self.to.masked(),
        })?;
        let to_name = self
            .to_name
            .as_deref()
            .map(header_safe)
            .filter(|name| !name.trim().is_empty());
        let builder = Message::builder()
            .from(Mailbox::new(None, from))
            .to(Mailbox::new(to_name, to))
            .subject(header_safe(&self.rendered.subject))
            .date(self.date)
            .message_id(Some(self.message_id.clone()));
        let text = self.rendered.text.clone();
        let built = match &self.rendered.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(text, html.clone())),
            None => builder.singlepart(SinglePart::plain(text)),
        };
        built.map_err(|error| MessageError::Build {
            reason: error.to_string(),
        })
    }

    /// The message as bytes, CRLF line endings, as written to an `.eml` file or sent.
    pub fn to_rfc5322(&self) -> Result<Vec<u8>, MessageError> {
        Ok(self.to_lettre()?.formatted())
    }
}

fn address(email: &Email) -> Result<Address, ()> {
    email.as_str().parse::<Address>().map_err(|_| ())
}

/// Drops what could end a header line; lettre encodes the rest.
fn header_safe(text: &str) -> String {
    text.chars().filter(|c| !breaks_header(*c)).collect()
}

fn check_date(date: SystemTime) -> Result<(), MessageError> {
    match date.duration_since(UNIX_EPOCH) {
        Ok(since) if since.as_secs() < DATE_LIMIT_SECONDS => Ok(()),
        _ => Err(MessageError::DateOutOfRange),
    }
}

/// `<left@right>` in printable ASCII without spaces or further angle brackets, so lettre
/// writes it as it is instead of encoding it.
fn check_message_id(id: &str) -> Result<(), MessageError> {
    let inner = id
        .strip_prefix('<')
        .and_then(|rest| rest.strip_suffix('>'))
        .ok_or(MessageError::InvalidMessageId)?;
    let (left, right) = inner
        .split_once('@')
        .ok_or(MessageError::InvalidMessageId)?;
    let printable = inner
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>'));
    if left.is_empty() || right.is_empty() || !printable || id.len() > 250 {
        return Err(MessageError::InvalidMessageId);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::template::{EmailTemplate, TemplateValues};

    /// 2024-03-05 06:07:08 UTC.
    const DATE_MILLIS: i64 = 1_709_618_828_000;

    fn email(text: &str) -> Email {
        Email::parse(text).unwrap()
    }

    fn rendered(subject: &str, text: &str, html: Option<&str>) -> RenderedEmail {
        RenderedEmail {
            subject: subject.to_owned(),
            text: text.to_owned(),
            html: html.map(str::to_owned),
        }
    }

    fn outgoing(rendered: RenderedEmail) -> OutgoingEmail {
        OutgoingEmail::new(
            message_id_for(42, 0xdead_beef, "mail.hospital.example"),
            email("no-reply@hospital.example"),
            email("jane.smith@hospital.example"),
            Some("Jane Smith".to_owned()),
            rendered,
            DATE_MILLIS,
        )
        .unwrap()
    }

    fn eml(email: &OutgoingEmail) -> String {
        String::from_utf8(email.to_rfc5322().unwrap()).unwrap()
    }

    /// The header block, unfolded (continuation lines joined), one header per entry.
    fn headers(message: &str) -> Vec<String> {
        let head = message.split("\r\n\r\n").next().unwrap();
        let mut headers: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            match (line.starts_with([' ', '\t']), headers.last_mut()) {
                (true, Some(last)) => last.push_str(line),
                _ => headers.push(line.to_owned()),
            }
        }
        headers
    }

    fn header<'m>(headers: &'m [String], name: &str) -> Option<&'m str> {
        let prefix = format!("{name}: ");
        headers.iter().find_map(|h| h.strip_prefix(prefix.as_str()))
    }

    /// Decodes a quoted-printable body (RFC 2045): soft line breaks and `=XX` escapes.
    fn decode_quoted_printable(text: &str) -> String {
        let joined = text.replace("=\r\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::new();
        let mut index = 0;
        while index < bytes.len() {
            if bytes[index] == b'=' {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                index += 3;
            } else {
                out.push(bytes[index]);
                index += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    /// The decoded bodies of each MIME part (or of the whole message), with content type.
    fn parts(message: &str) -> Vec<(String, String)> {
        let decode = |part: &str| {
            let (head, body) = part.split_once("\r\n\r\n").unwrap();
            let headers = headers(head);
            let content_type = header(&headers, "Content-Type").unwrap().to_owned();
            let body = match header(&headers, "Content-Transfer-Encoding") {
                Some("7bit") | Some("8bit") => body.to_owned(),
                Some("quoted-printable") => decode_quoted_printable(body),
                other => panic!("unexpected encoding {other:?}"),
            };
            (content_type, body)
        };
        let top = headers(message);
        let content_type = header(&top, "Content-Type").unwrap();
        match content_type.split_once("boundary=\"") {
            Some((_, rest)) => {
                // Each delimiter is CRLF, `--`, the boundary: the CRLF is not the part's.
                let delimiter = format!("\r\n--{}", rest.split('"').next().unwrap());
                let body = format!("\r\n{}", message.split_once("\r\n\r\n").unwrap().1);
                body.split(delimiter.as_str())
                    .skip(1)
                    .filter(|part| !part.starts_with("--"))
                    .map(|part| decode(part.strip_prefix("\r\n").unwrap()))
                    .collect()
            }
            // A single part: lettre ends the message with one CRLF of its own.
            None => vec![decode(message.strip_suffix("\r\n").unwrap())],
        }
    }

    /// Decodes RFC 2047 `=?utf-8?b?...?=` words (what lettre writes for non-ASCII).
    fn decode_encoded_words(value: &str) -> String {
        let mut out = String::new();
        let mut rest = value;
        while let Some(start) = rest.find("=?utf-8?b?") {
            out.push_str(&rest[..start]);
            let word = &rest[start + "=?utf-8?b?".len()..];
            let end = word.find("?=").unwrap();
            let bytes = data_encoding::BASE64
                .decode(&word.as_bytes()[..end])
                .unwrap();
            out.push_str(&String::from_utf8(bytes).unwrap());
            rest = &word[end + 2..];
            // Space between two encoded words is not part of the text (RFC 2047).
            let trimmed = rest.trim_start_matches([' ', '\t']);
            if trimmed.starts_with("=?utf-8?b?") {
                rest = trimmed;
            }
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn message_ids_are_stable_and_header_safe() {
        assert_eq!(
            message_id_for(42, 0xdead_beef, "mail.hospital.example"),
            "<twostep.42.00000000deadbeef@mail.hospital.example>"
        );
        assert_eq!(
            message_id_for(7, u64::MAX, "localhost"),
            "<twostep.7.ffffffffffffffff@localhost>"
        );
        for bad in ["", "bücher.example", "a>b", "x\r\nBcc: y", "a b"] {
            assert_eq!(
                message_id_for(1, 1, bad),
                "<twostep.1.0000000000000001@localhost>",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_plain_text_email_has_the_expected_headers_and_body() {
        let message = eml(&outgoing(rendered(
            "Your sign-in code",
            "Your code is 482913.\nIt is valid for 15 minutes.",
            None,
        )));
        let headers = headers(&message);
        assert_eq!(header(&headers, "From"), Some("no-reply@hospital.example"));
        assert_eq!(
            header(&headers, "To"),
            Some("\"Jane Smith\" <jane.smith@hospital.example>")
        );
        assert_eq!(header(&headers, "Subject"), Some("Your sign-in code"));
        assert_eq!(
            header(&headers, "Message-ID"),
            Some("<twostep.42.00000000deadbeef@mail.hospital.example>")
        );
        assert_eq!(
            header(&headers, "Date"),
            Some("Tue, 05 Mar 2024 06:07:08 +0000")
        );
        assert_eq!(header(&headers, "MIME-Version"), Some("1.0"));
        assert_eq!(
            header(&headers, "Content-Type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(header(&headers, "Content-Transfer-Encoding"), Some("7bit"));
        assert!(!message.contains("multipart"));
        assert_eq!(
            parts(&message),
            vec![(
                "text/plain; charset=utf-8".to_owned(),
                "Your code is 482913.\r\nIt is valid for 15 minutes.".to_owned()
            )]
        );
    }

    #[test]
    fn an_html_email_is_multipart_alternative_with_text_first() {
        let message = eml(&outgoing(rendered(
            "Your sign-in code",
            "Your code is 482913.",
            Some("<p>Your code is <b>482913</b>.</p>"),
        )));
        let headers = headers(&message);
        let content_type = header(&headers, "Content-Type").unwrap();
        assert!(
            content_type.starts_with("multipart/alternative; boundary=\""),
            "{content_type}"
        );
        assert_eq!(
            parts(&message),
            vec![
                (
                    "text/plain; charset=utf-8".to_owned(),
                    "Your code is 482913.".to_owned()
                ),
                (
                    "text/html; charset=utf-8".to_owned(),
                    "<p>Your code is <b>482913</b>.</p>".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn the_rendered_default_template_survives_encoding() {
        let values = TemplateValues {
            user_id: "zoe",
            user_otp: "90817263",
            user_name: "Zoë Ølund",
            otp_valid_minutes: 15,
            site_name: "Hôpital Saint-Éloi",
        };
        let rendered = EmailTemplate::default_otp().render(&values).unwrap();
        let message = eml(&OutgoingEmail {
            to_name: Some("Zoë Ølund".to_owned()),
            ..outgoing(rendered.clone())
        });
        let headers = headers(&message);
        // Non-ASCII headers are RFC 2047 encoded: present, not verbatim.
        let subject = header(&headers, "Subject").unwrap();
        assert!(subject.contains("=?utf-8?"), "{subject}");
        assert_eq!(decode_encoded_words(subject), rendered.subject);
        assert_eq!(
            decode_encoded_words(header(&headers, "To").unwrap()),
            "Zoë Ølund <jane.smith@hospital.example>"
        );
        let parts = parts(&message);
        assert_eq!(parts.len(), 2);
        // Line endings become CRLF on the wire; otherwise the parts arrive intact.
        assert_eq!(parts[0].1, rendered.text.replace('\n', "\r\n"));
        assert_eq!(
            Some(parts[1].1.clone()),
            rendered.html.map(|html| html.replace('\n', "\r\n"))
        );
        assert!(parts[0].1.contains("90817263"));
        assert!(parts[1].1.contains("Zoë Ølund"));
    }

    #[test]
    fn header_breaking_characters_never_reach_the_headers() {
        let values = TemplateValues {
            user_id: "jsmith",
            user_otp: "482913",
            user_name: "Jane\r\nBcc: evil@example.org",
            otp_valid_minutes: 15,
            site_name: "Ward 7",
        };
        let template = EmailTemplate {
            subject: "Code for @user_name".to_owned(),
            text_body: "@user_otp".to_owned(),
            html_body: None,
        };
        let rendered = template.render(&values).unwrap();
        let mut email = outgoing(rendered);
        email.to_name = Some("Jane\r\nBcc: evil@example.org".to_owned());
        let message = eml(&email);
        let headers = headers(&message);
        assert!(headers.iter().all(|h| !h.starts_with("Bcc")), "{headers:?}");
        assert_eq!(
            header(&headers, "Subject"),
            Some("Code for JaneBcc: evil@example.org")
        );
        // Even a subject set by hand with a line break stays one header.
        email.rendered.subject = "Hi\r\nBcc: evil@example.org".to_owned();
        let headers = self::headers(&eml(&email));
        assert!(headers.iter().all(|h| !h.starts_with("Bcc")), "{headers:?}");
        assert_eq!(email.to_lettre().unwrap().envelope().to().len(), 1);
    }

    #[test]
    fn without_a_name_the_recipient_is_the_bare_address() {
        for name in [None, Some("  ".to_owned())] {
            let email = OutgoingEmail {
                to_name: name,
                ..outgoing(rendered("Hi", "482913", None))
            };
            let message = eml(&email);
            assert_eq!(
                header(&headers(&message), "To"),
                Some("jane.smith@hospital.example")
            );
        }
    }

    #[test]
    fn dates_outside_what_mail_can_say_are_refused() {
        let make = |millis| {
            OutgoingEmail::new(
                message_id_for(1, 1, "localhost"),
                email("no-reply@localhost"),
                email("jane@example.org"),
                None,
                rendered("Hi", "482913", None),
                millis,
            )
        };
        assert!(make(0).is_ok());
        assert_eq!(make(-1).unwrap_err(), MessageError::DateOutOfRange);
        assert_eq!(make(i64::MAX).unwrap_err(), MessageError::DateOutOfRange);
        let last_ok = i64::try_from(DATE_LIMIT_SECONDS * 1000 - 1).unwrap();
        assert!(make(last_ok).unwrap().to_rfc5322().is_ok());
        assert_eq!(make(last_ok + 1).unwrap_err(), MessageError::DateOutOfRange);
        // The public field is checked again before lettre sees it.
        let mut email = make(0).unwrap();
        email.date = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(email.to_lettre().unwrap_err(), MessageError::DateOutOfRange);
    }

    #[test]
    fn local_addresses_and_unicode_addresses_are_accepted() {
        let email = OutgoingEmail {
            from: email("no-reply@localhost"),
            to: email("zoë@bücher.example"),
            ..outgoing(rendered("Hi", "482913", None))
        };
        let message = email.to_lettre().unwrap();
        assert_eq!(
            message.envelope().from().unwrap().to_string(),
            "no-reply@localhost"
        );
        assert_eq!(message.envelope().to().len(), 1);
    }

    #[test]
    fn a_malformed_message_id_is_refused() {
        for bad in [
            "twostep.1@localhost",
            "<twostep.1.localhost>",
            "<@localhost>",
            "<twostep@>",
            "<twostep 1@localhost>",
            "<twostep\r\n@localhost>",
            "<a<b@localhost>",
            "<zoë@localhost>",
        ] {
            let email = OutgoingEmail {
                message_id: bad.to_owned(),
                ..outgoing(rendered("Hi", "482913", None))
            };
            assert_eq!(
                email.to_lettre().unwrap_err(),
                MessageError::InvalidMessageId,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn errors_mask_addresses_and_never_show_a_body() {
        let error = MessageError::InvalidTo {
            masked: email("jane.smith@hospital.example").masked(),
        };
        assert_eq!(
            error.to_string(),
            "the recipient address j***@hospital.example cannot be used in an email"
        );
        let debug = format!(
            "{:?}",
            outgoing(rendered("482913", "482913", Some("482913")))
        );
        assert!(!debug.contains("482913"), "{debug}");
    }
}
