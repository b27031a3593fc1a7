//! The HTML shell that the sign-in pages ([`pages`](super::pages)) and the administration
//! console ([`console`](super::console)) share: the [`Layout`] every page carries (site
//! name, the forms' CSRF token), rendering a view as a response ([`page`]), the pages that
//! are not a step (an expired form, an unreadable form, an error of ours), the CSRF check
//! of a POST ([`csrf_ok`]), redirects, the form extractor ([`PageForm`]), the QR code and
//! manual key of a device being set up (SPEC section 5), and the console's sections, which
//! the signed-in page links to.
//!
//! HTML comes only from the askama templates in `templates/` (auto-escaping on); the one
//! value inserted unescaped is the QR code, an SVG that twostep generates itself.

use askama::Template;
use axum::extract::{FromRequest, Request};
use axum::http::header::{self, HeaderValue};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use serde::de::DeserializeOwned;

use super::{cookies, csrf, request_id, AppState};
use crate::domain::{Permission, Role};
use crate::service::signin::PageNotes;

// ---------------------------------------------------------------------------------------
// The page shell and rendering
// ---------------------------------------------------------------------------------------

/// What every page shows: the site name and the CSRF token of its forms.
pub struct Layout {
    pub site_name: String,
    /// The forms' token, bound to the browser's session, transaction or anonymous cookie.
    pub csrf: String,
    /// A new anonymous cookie value (the browser had no binding): the response sets it.
    new_csrf: Option<String>,
    /// The Help Text setting, line by line (sign-in pages only; SPEC section 11).
    pub help_lines: Vec<String>,
    /// The lockout hint under a failed password or code (sign-in pages only).
    pub lockout_hint: Option<String>,
}

impl Layout {
    pub(super) fn new(state: &AppState, headers: &HeaderMap) -> Self {
        let (csrf, new_csrf) = csrf::token_for(state.signin.context().form_key(), headers);
        Self {
            site_name: state.signin.context().site_name().to_owned(),
            csrf,
            new_csrf,
            help_lines: Vec::new(),
            lockout_hint: None,
        }
    }

    /// A sign-in page's shell: the Help Text (kept as lines, each escaped by the
    /// template) and the lockout hint, the same for every account (SPEC section 11).
    pub(super) fn with_notes(mut self, notes: &PageNotes) -> Self {
        self.help_lines = if notes.help_text.trim().is_empty() {
            Vec::new()
        } else {
            notes.help_text.lines().map(str::to_owned).collect()
        };
        self.lockout_hint = Some(lockout_hint(notes.lockout_minutes));
        self
    }
}

/// "After several failed attempts an account is locked for N minutes." (SPEC section 11.)
pub(super) fn lockout_hint(minutes: u32) -> String {
    match minutes {
        0 => "After several failed attempts an account is locked until an administrator \
              unlocks it."
            .to_owned(),
        1 => "After several failed attempts an account is locked for 1 minute.".to_owned(),
        n => format!("After several failed attempts an account is locked for {n} minutes."),
    }
}

/// Pages that are not a step: an expired form, an unreadable request, an error of ours.
#[derive(Template)]
#[template(path = "problem.html")]
pub struct ProblemView {
    pub layout: Layout,
    pub title: &'static str,
    pub text: String,
    pub request_id: Option<String>,
}

/// Whether a form carries the CSRF token of the browser that posts it ([`csrf::verify`]).
pub(super) fn csrf_ok(state: &AppState, headers: &HeaderMap, field: Option<&str>) -> bool {
    csrf::verify(state.signin.context().form_key(), headers, field)
}

/// The page as a response, with the anonymous CSRF cookie when the layout made one.
pub(super) fn page<T: Template>(
    state: &AppState,
    status: StatusCode,
    layout: &Layout,
    view: &T,
) -> Response {
    let body = match view.render() {
        Ok(body) => body,
        Err(error) => {
            let id = request_id();
            tracing::error!(request_id = %id, error = %error, "a page template failed");
            // No template to fall back on: plain text, still without detail.
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Something went wrong. Reference: {id}\n"),
            )
                .into_response();
        }
    };
    let mut response = (status, Html(body)).into_response();
    if let Some(token) = &layout.new_csrf {
        response.headers_mut().append(
            header::SET_COOKIE,
            cookies::set(cookies::CSRF, token, state.secure_cookies, None),
        );
    }
    response
}

pub(super) fn problem(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    title: &'static str,
    text: String,
    request_id: Option<String>,
) -> Response {
    problem_in(
        state,
        Layout::new(state, headers),
        status,
        title,
        text,
        request_id,
    )
}

/// [`problem`] in a given shell (a sign-in page's carries the Help Text).
pub(super) fn problem_in(
    state: &AppState,
    layout: Layout,
    status: StatusCode,
    title: &'static str,
    text: String,
    request_id: Option<String>,
) -> Response {
    let view = ProblemView {
        layout,
        title,
        text,
        request_id,
    };
    page(state, status, &view.layout, &view)
}

/// 403 for a POST without the form's token; nothing was done.
pub(super) fn form_expired(state: &AppState, headers: &HeaderMap) -> Response {
    form_expired_in(state, Layout::new(state, headers))
}

pub(super) fn form_expired_in(state: &AppState, layout: Layout) -> Response {
    problem_in(
        state,
        layout,
        StatusCode::FORBIDDEN,
        "Please try again",
        "This form has expired; please go back and try again.".to_owned(),
        None,
    )
}

pub(super) fn internal_error(state: &AppState, headers: &HeaderMap, id: String) -> Response {
    internal_error_in(state, Layout::new(state, headers), id)
}

pub(super) fn internal_error_in(state: &AppState, layout: Layout, id: String) -> Response {
    problem_in(
        state,
        layout,
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "We could not complete your request. Please try again in a moment. If this keeps \
         happening, contact your IT service desk and give them the reference below."
            .to_owned(),
        Some(id),
    )
}

// ---------------------------------------------------------------------------------------
// Redirects
// ---------------------------------------------------------------------------------------

pub(super) fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}

pub(super) fn with_cookie(mut response: Response, cookie: HeaderValue) -> Response {
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

// ---------------------------------------------------------------------------------------
// Forms
// ---------------------------------------------------------------------------------------

/// A urlencoded form; an unreadable body gets a page, not axum's plain text.
pub struct PageForm<T>(pub T);

impl<T> FromRequest<AppState> for PageForm<T>
where
    T: DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let headers = request.headers().clone();
        let status = match Form::<T>::from_request(request, state).await {
            Ok(Form(value)) => return Ok(Self(value)),
            Err(rejection) => {
                tracing::debug!(error = %rejection, "unreadable form");
                match rejection.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
                    _ => StatusCode::BAD_REQUEST,
                }
            }
        };
        // The Help Text too: a sign-in form that could not be read is an error page of
        // the sign-in flow (SPEC section 11).
        let layout = Layout::new(state, &headers);
        let layout = match state.signin.page_notes().await {
            Ok(notes) => layout.with_notes(&notes),
            Err(_) => layout,
        };
        Err(problem_in(
            state,
            layout,
            status,
            "The form could not be read",
            "The form could not be read; please go back and try again.".to_owned(),
            None,
        ))
    }
}

// ---------------------------------------------------------------------------------------
// A device being set up: the QR code and the manual key
// ---------------------------------------------------------------------------------------

/// The manual key in groups of four, as apps and people read it.
pub(super) fn key_groups(secret: &str) -> Vec<String> {
    secret
        .as_bytes()
        .chunks(4)
        .filter_map(|chunk| std::str::from_utf8(chunk).ok())
        .map(str::to_owned)
        .collect()
}

/// The SVG element of the QR code, without the XML declaration a standalone file has.
pub(super) fn inline_svg(document: &str) -> String {
    document
        .find("<svg")
        .and_then(|start| document.get(start..))
        .unwrap_or_default()
        .to_owned()
}

/// `value` as JSON that is safe inside a `<script type="application/json">` element
/// (inserted unescaped: `<`, `>` and `&` are written as JSON escapes, so that no text of
/// it can close the element or start markup). The WebAuthn options of SPEC 14.
pub(super) fn script_json(value: &serde_json::Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// What a page says about a security key that could not be set up; `None`: our fault.
pub(super) fn key_setup_message(
    error: &crate::service::webauthn::KeyError,
) -> Option<&'static str> {
    Some(match error {
        crate::service::webauthn::KeyError::NotOffered => {
            "Security keys are not available here. Choose an authenticator app instead."
        }
        crate::service::webauthn::KeyError::InterfaceUser => {
            "Interface accounts cannot have security keys."
        }
        crate::service::webauthn::KeyError::TooMany => {
            "You have 5 security keys already. Remove one on your account page first."
        }
        crate::service::webauthn::KeyError::AlreadyRegistered => {
            "This security key is registered already."
        }
        crate::service::webauthn::KeyError::NoCeremony => {
            "The key's set-up has expired or was already used. Please start again."
        }
        crate::service::webauthn::KeyError::UserNotVerified => {
            "The key did not confirm it is you. twostep needs a security key with a PIN or \
             fingerprint: if yours has none, set a PIN with its maker's app, or use another key."
        }
        crate::service::webauthn::KeyError::Invalid => {
            "The security key's answer was not valid. Please try again."
        }
        crate::service::webauthn::KeyError::Store(_) => return None,
    })
}

// ---------------------------------------------------------------------------------------
// The console's sections
// ---------------------------------------------------------------------------------------

/// The console's sections, each with the permission that opens it: the console's
/// navigation, and whether the signed-in page links to the console ([`any_section`]).
pub(super) const CONSOLE_SECTIONS: [(&str, &str, &str, Permission); 7] = [
    (
        "users",
        "/admin/users",
        "Access Control",
        Permission::ManageUsers,
    ),
    (
        "roles",
        "/admin/roles",
        "Security Roles",
        Permission::ManageRoles,
    ),
    (
        "settings",
        "/admin/settings",
        "System Settings",
        Permission::ManageSystemSettings,
    ),
    (
        "ip",
        "/admin/ip",
        "IP Settings",
        Permission::ManageIpSettings,
    ),
    (
        "email",
        "/admin/email",
        "Email Templates",
        Permission::ManageSystemSettings,
    ),
    (
        "audit",
        "/admin/audit",
        "Audit Log",
        Permission::ViewAuditLog,
    ),
    (
        "applications",
        "/admin/applications",
        "Applications",
        Permission::ManageApplications,
    ),
];

/// Whether a role opens any section of the console (the link on the signed-in page).
pub fn any_section(role: &Role) -> bool {
    CONSOLE_SECTIONS
        .iter()
        .any(|(_, _, _, permission)| role.has(*permission))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manual_key_is_grouped_in_fours() {
        assert_eq!(
            key_groups("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567").join(" "),
            "ABCD EFGH IJKL MNOP QRST UVWX YZ23 4567"
        );
        assert_eq!(key_groups("ABCDEF"), ["ABCD", "EF"]);
    }

    #[test]
    fn the_qr_code_is_inlined_without_its_xml_declaration() {
        let svg = crate::otp::qr_svg("otpauth://totp/x?secret=ABCD").unwrap();
        assert!(svg.starts_with("<?xml"));
        let inline = inline_svg(&svg);
        assert!(inline.starts_with("<svg") && inline.ends_with("</svg>"));
        assert_eq!(inline_svg("no svg here"), "");
    }
}

/// The page that shows a new set of recovery codes once (SPEC section 10): the codes as
/// `xxxxx-xxxxx`, "Download as text" (a `data:` link with the `download` attribute:
/// navigation, which the CSP does not restrict), "Print" (`/static/print.js`, a file, as
/// the CSP allows) and "Continue" to `continue_href`. Shared by the sign-in pages (the
/// first set, when enrollment completes at sign-in) and the account page (a new set).
#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub struct RecoveryCodesView {
    pub layout: Layout,
    /// The codes as shown, `xxxxx-xxxxx`.
    pub codes: Vec<String>,
    /// The `data:text/plain` URL of the codes as a text file.
    pub download_href: String,
    /// Where "Continue" goes.
    pub continue_href: String,
}

impl RecoveryCodesView {
    pub fn new(layout: Layout, codes: &[crate::domain::RecoveryCode], continue_href: &str) -> Self {
        let codes: Vec<String> = codes.iter().map(|code| code.reveal()).collect();
        let text = format!(
            "{} recovery codes\r\nEach code works once, instead of the code from your app.\r\n\r\n{}\r\n",
            layout.site_name,
            codes.join("\r\n")
        );
        Self {
            download_href: format!("data:text/plain;charset=utf-8,{}", percent_encode(&text)),
            codes,
            layout,
            continue_href: continue_href.to_owned(),
        }
    }
}

/// Percent-encodes every byte outside the unreserved characters of RFC 3986.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte))
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// `GET /static/webauthn.js`: the security key pages' script (SPEC 14).
pub(super) async fn webauthn_script() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        include_str!("../../static/webauthn.js"),
    )
        .into_response()
}

/// `GET /static/print.js`: the "Print" button of the recovery codes page.
pub(super) async fn print_script() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        include_str!("../../static/print.js"),
    )
        .into_response()
}
