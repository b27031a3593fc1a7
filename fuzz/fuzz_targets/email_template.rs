//! The OTP email template (`twostep::mail::EmailTemplate`): arbitrary subject, text and
//! HTML templates rendered with arbitrary values.
//!
//! Input: NUL-separated fields `subject \0 text \0 html \0 user_id \0 user_otp \0
//! user_name \0 site_name \0 minutes` (missing fields are empty; no third field means no
//! HTML body), so seeds and crashes are readable text.
//!
//! Properties (what src/mail/template.rs promises):
//! - `validate` and `render` never panic and agree (`render` fails with `validate`'s error);
//! - subject: no value adds a control character or U+2028/U+2029 (the template itself may
//!   hold a tab but never CR/LF), so no value can start a mail header;
//! - text body: holds the code;
//! - HTML body: present iff the HTML template is not blank, holds the escaped code, and
//!   every `<`, `>`, `"`, `'` in it comes from the template: a value never adds markup.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twostep::mail::{escape_html, EmailTemplate, TemplateValues};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut fields = text.split('\0');
    let mut next = || fields.next();
    let subject = next().unwrap_or_default().to_owned();
    let text_body = next().unwrap_or_default().to_owned();
    let html_body = next().map(str::to_owned);
    let user_id = next().unwrap_or_default();
    let user_otp = next().unwrap_or_default();
    let user_name = next().unwrap_or_default();
    let site_name = next().unwrap_or_default();
    let minutes = next()
        .and_then(|m| m.trim().parse::<u32>().ok())
        .unwrap_or(15);

    let template = EmailTemplate {
        subject,
        text_body,
        html_body,
    };
    let values = TemplateValues {
        user_id,
        user_otp,
        user_name,
        otp_valid_minutes: minutes,
        site_name,
    };
    let validated = template.validate();
    let rendered = template.render(&values);
    let email = match (validated, rendered) {
        (Ok(()), Ok(email)) => email,
        (Err(expected), Err(error)) => {
            assert_eq!(error, expected, "render and validate disagree");
            let _ = error.to_string();
            return;
        }
        (validated, rendered) => panic!(
            "validate says {validated:?} but render says {:?}",
            rendered.map(|_| "ok")
        ),
    };

    let header_breaking = |s: &str| {
        s.chars()
            .filter(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
            .count()
    };
    assert!(
        !email.subject.contains(['\r', '\n']),
        "line break in the subject"
    );
    assert_eq!(
        header_breaking(&email.subject),
        header_breaking(&template.subject),
        "a value put a control character or line separator into the subject"
    );
    assert!(email.text.contains(user_otp), "text body lacks the code");

    let html_template = template
        .html_body
        .as_deref()
        .filter(|html| !html.trim().is_empty());
    assert_eq!(
        email.html.is_some(),
        html_template.is_some(),
        "HTML part present iff the HTML template is not blank"
    );
    if let (Some(html), Some(html_template)) = (email.html.as_deref(), html_template) {
        assert!(
            html.contains(&escape_html(user_otp)),
            "HTML body lacks the code"
        );
        for markup in ['<', '>', '"', '\''] {
            let count = |s: &str| s.matches(markup).count();
            assert_eq!(
                count(html),
                count(html_template),
                "a value put an unescaped {markup:?} into the HTML body"
            );
        }
    }
});
