//! The views of the sign-in pages, one per askama template in `templates/`.

use askama::Template;

use super::failures::Message;
use crate::domain::{OtpMethod, PromptMode};
use crate::web::html::Layout;

/// One option of a radio group.
pub struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    /// A plain sentence under the label: what choosing it means.
    pub description: &'static str,
    pub checked: bool,
}

/// The enrollment choice of a security key (SPEC 14), beside the app methods.
pub(super) const KEY_METHOD: Choice = Choice {
    value: "webauthn",
    label: "Security key or passkey",
    description: "A USB or NFC key, or your computer's or phone's passkey, with its PIN or \
                  fingerprint. Nothing to type at sign-in.",
    checked: false,
};

pub(super) fn method_description(method: OtpMethod) -> &'static str {
    match method {
        OtpMethod::Totp => "The code changes every 30 seconds. Recommended.",
        OtpMethod::Hotp => "A new code each time you press the button in your app.",
    }
}

pub(super) fn prompt_description(mode: PromptMode) -> &'static str {
    match mode {
        PromptMode::EveryLogin => "We ask for a code every time you sign in.",
        PromptMode::WhenAppropriate => {
            "We may skip the code when you sign in from a trusted hospital network."
        }
    }
}

#[derive(Template)]
#[template(path = "signin.html")]
pub struct SignInView {
    pub layout: Layout,
    pub username: String,
    pub message: Option<Message>,
    /// The application the user signs in for (SPEC 13), by its registered name.
    pub application: Option<String>,
    /// "Sign in with a passkey" is offered (SPEC 14).
    pub passkeys: bool,
}

/// The emailed-code part of the Verify page.
pub struct EmailView {
    pub masked_to: String,
    /// Nothing was sent for this sign-in (OTP Request Delay): a code can be asked for in
    /// this many seconds.
    pub nothing_sent_wait: Option<i64>,
    /// "Send a new code" just worked.
    pub just_sent: bool,
    /// Delivery failed once and is being retried.
    pub still_sending: bool,
}

#[derive(Template)]
#[template(path = "verify.html")]
pub struct VerifyView {
    pub layout: Layout,
    /// `None`: a code from the authenticator app.
    pub email: Option<EmailView>,
    /// The app makes counter-based codes (a button press shows the next one).
    pub hotp: bool,
    pub message: Option<Message>,
    /// The user's security keys answer this step: the request options, as JSON safe
    /// inside a `<script>` element ([`crate::web::html::script_json`]).
    pub key_options: Option<String>,
    /// The user has an authenticator app (its code form is shown).
    pub app: bool,
}

#[derive(Template)]
#[template(path = "key_setup.html")]
pub struct KeySetupView {
    pub layout: Layout,
    /// Where the key's answer goes.
    pub action: &'static str,
    /// Where "choose an app instead" leads.
    pub back: &'static str,
    /// The creation options, as JSON safe inside a `<script>` element.
    pub options: String,
    pub message: Option<Message>,
    /// At sign-in ("Cancel and sign out" is offered).
    pub signin: bool,
}

#[derive(Template)]
#[template(path = "enroll.html")]
pub struct EnrollView {
    pub layout: Layout,
    pub required: bool,
    /// Shown as a choice only when there is more than one.
    pub methods: Vec<Choice>,
    pub prompt_modes: Vec<Choice>,
    pub message: Option<Message>,
}

#[derive(Template)]
#[template(path = "setup.html")]
pub struct SetupView {
    pub layout: Layout,
    pub hotp: bool,
    /// Our own SVG (inserted unescaped); empty if the QR code could not be made.
    pub qr_svg: String,
    /// The base32 secret in groups of four.
    pub key_groups: Vec<String>,
    /// The `otpauth://` key URI: the QR code is also a link that opens an installed app.
    pub otpauth_uri: String,
    /// What the app will show: the issuer (site name) and the account (username).
    pub issuer: String,
    pub account: String,
    pub message: Option<Message>,
}

#[derive(Template)]
#[template(path = "change_password.html")]
pub struct ChangePasswordView {
    pub layout: Layout,
    pub message: Option<Message>,
}

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomeView {
    pub layout: Layout,
    pub display_name: String,
    pub username: String,
    pub role: String,
    pub two_step_enabled: bool,
    /// The user holds a permission of the administration console.
    pub admin: bool,
    /// This sign-in used a recovery code: how many are left (SPEC 10).
    pub recovery_codes_left: Option<u32>,
    /// This sign-in used a temporary access code (SPEC 15): the offer to set up a new
    /// device, with the code's uses and expiry when it still works.
    pub temporary_access: Option<TemporaryAccessNotice>,
}

/// What the signed-in page says after a temporary access code.
pub struct TemporaryAccessNotice {
    /// "2 more sign-ins until 2027-01-15 10:30 UTC", or empty once it no longer works.
    pub left: String,
}

/// "Switch user" (SPEC 15): who is signed in, the button that signs out for the next
/// person, and the way on as this one.
#[derive(Template)]
#[template(path = "switch_user.html")]
pub struct SwitchUserView {
    pub layout: Layout,
    pub display_name: String,
    pub username: String,
    /// The allowed application URL, or `/`.
    pub continue_url: String,
    /// The allowed application URL the next person returns to, sent with the form.
    pub rd: Option<String>,
}

/// After sign-in, the way back to the application that sent the browser (forward-auth).
#[derive(Template)]
#[template(path = "continue.html")]
pub struct ContinueView {
    pub layout: Layout,
    /// An URL that [`ReturnPolicy`](super::return_to::ReturnPolicy) allowed.
    pub url: String,
    pub host: String,
}
