//! Chromium's virtual authenticator, the browser tests' security key (SPEC section 14):
//! the WebAuthn WebDriver extension (W3C Web Authentication, "WebDriver Extension"), which
//! chromedriver implements, sent through fantoccini as custom commands.
//!
//! WebAuthn needs a secure context and a domain as relying party ID: the tests open the
//! app at `http://localhost:PORT` (Chromium treats localhost as secure), with the app's
//! public URL the same.

use std::time::Duration;

use axum::http::Method;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::Client;
use serde_json::{json, Value};

use crate::browser::{browser_at, ONE_BROWSER_AT_A_TIME};

/// The kind of key the virtual authenticator is.
pub(crate) struct AuthenticatorOptions {
    /// `hasUserVerification`: the key has a PIN or a fingerprint reader.
    pub(crate) user_verification: bool,
    /// `isUserVerified`: the PIN or finger is accepted.
    pub(crate) user_verified: bool,
    /// `hasResidentKey`: the key keeps discoverable credentials (passkeys).
    pub(crate) resident_key: bool,
}

/// One command of the WebDriver extension: `{method} /session/{id}/webauthn/{path}`.
#[derive(Debug)]
struct WebAuthnCommand {
    method: Method,
    path: String,
    body: Option<Value>,
}

impl WebDriverCompatibleCommand for WebAuthnCommand {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session_id.expect("a WebDriver session");
        base_url.join(&format!("session/{session}/webauthn/{}", self.path))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (Method, Option<String>) {
        (
            self.method.clone(),
            self.body.as_ref().map(|body| body.to_string()),
        )
    }
}

/// The command's `value`; a refused command fails the test.
async fn issue(client: &Client, method: Method, path: String, body: Option<Value>) -> Value {
    let what = format!("{method} webauthn/{path}");
    client
        .issue_cmd(WebAuthnCommand { method, path, body })
        .await
        .unwrap_or_else(|error| panic!("{what}: {error}"))
}

/// Plugs a CTAP2 USB key into the browser; its `authenticatorId`. It answers at once
/// (presence is simulated), verifies the user as `options` says.
pub(crate) async fn add_authenticator(client: &Client, options: &AuthenticatorOptions) -> String {
    let answer = issue(
        client,
        Method::POST,
        "authenticator".to_owned(),
        Some(json!({
            "protocol": "ctap2",
            "transport": "usb",
            "hasResidentKey": options.resident_key,
            "hasUserVerification": options.user_verification,
            "isUserConsenting": true,
            "isUserVerified": options.user_verified,
        })),
    )
    .await;
    answer
        .as_str()
        .unwrap_or_else(|| panic!("an authenticator id: {answer}"))
        .to_owned()
}

/// The credentials the key holds (`credentialId`, `isResidentCredential`, `rpId`,
/// `userHandle`, `signCount`, ...).
pub(crate) async fn credentials(client: &Client, authenticator: &str) -> Vec<Value> {
    let answer = issue(
        client,
        Method::GET,
        format!("authenticator/{authenticator}/credentials"),
        None,
    )
    .await;
    match answer {
        Value::Array(credentials) => credentials,
        other => panic!("a list of credentials: {other}"),
    }
}

/// From now on the key accepts (or refuses) the PIN or finger.
pub(crate) async fn set_user_verified(client: &Client, authenticator: &str, verified: bool) {
    issue(
        client,
        Method::POST,
        format!("authenticator/{authenticator}/uv"),
        Some(json!({ "isUserVerified": verified })),
    )
    .await;
}

/// Unplugs the key.
pub(crate) async fn remove_authenticator(client: &Client, authenticator: &str) {
    issue(
        client,
        Method::DELETE,
        format!("authenticator/{authenticator}"),
        None,
    )
    .await;
}

/// `navigator.credentials.create` with a passkey's options (resident key and user
/// verification required, `timeout` ms): `{ok, id, uv, ms}` or `{ok: false, name,
/// message, ms}`.
const CREATE: &str = r#"
    const done = arguments[arguments.length - 1];
    const started = performance.now();
    const random = (n) => crypto.getRandomValues(new Uint8Array(n));
    navigator.credentials.create({ publicKey: {
        rp: { id: "localhost", name: "St. Elsewhere" },
        user: { id: random(16), name: "jane", displayName: "jane" },
        challenge: random(32),
        pubKeyCredParams: [{ type: "public-key", alg: -7 }],
        authenticatorSelection: { residentKey: "required", userVerification: "required" },
        timeout: arguments[0],
    } }).then(
        (credential) => done({
            ok: true,
            id: credential.id,
            // Flags byte of the authenticator data: bit 2 is UV.
            uv: (new Uint8Array(credential.response.getAuthenticatorData())[32] & 4) !== 0,
            ms: performance.now() - started,
        }),
        (error) => done({
            ok: false, name: error.name, message: error.message,
            ms: performance.now() - started,
        }),
    );
"#;

/// `navigator.credentials.get` of a discoverable credential, user verification
/// required: the same answer.
const GET: &str = r#"
    const done = arguments[arguments.length - 1];
    const started = performance.now();
    navigator.credentials.get({ publicKey: {
        rpId: "localhost",
        challenge: crypto.getRandomValues(new Uint8Array(32)),
        userVerification: "required",
        timeout: arguments[0],
    } }).then(
        (credential) => done({
            ok: true,
            id: credential.id,
            uv: (new Uint8Array(credential.response.authenticatorData)[32] & 4) !== 0,
            ms: performance.now() - started,
        }),
        (error) => done({
            ok: false, name: error.name, message: error.message,
            ms: performance.now() - started,
        }),
    );
"#;

/// The WebAuthn call's own timeout in these tests.
const TIMEOUT_MS: u64 = 10_000;

async fn run(client: &Client, script: &str) -> Value {
    client
        .execute_async(script, vec![json!(TIMEOUT_MS)])
        .await
        .expect("the script answers")
}

/// A refusal, printed for the record: its name, and whether it came at once (well
/// before the call's timeout).
fn refused(what: &str, answer: &Value) -> (String, bool) {
    println!("{what}: {answer}");
    assert_eq!(answer["ok"], false, "{what}: {answer}");
    let ms = answer["ms"].as_f64().unwrap();
    (
        answer["name"].as_str().unwrap().to_owned(),
        ms < (TIMEOUT_MS as f64) / 2.0,
    )
}

#[tokio::test]
async fn the_virtual_authenticator_registers_a_passkey_and_refuses_without_verification() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let (_app, base) = crate::security_keys::local_app().await;
    let Some(browser) = browser_at(base, "virtual-authenticator", 800, 600, &[]).await else {
        return;
    };
    let client = &browser.client;
    client
        .update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
            Some(Duration::from_millis(TIMEOUT_MS * 3)),
            None,
            None,
        ))
        .await
        .expect("the script timeout");
    browser.goto("/signin").await;
    browser.page("signin").await;

    // A key with a PIN that is accepted: a passkey is made, verified, and kept.
    let key = add_authenticator(
        client,
        &AuthenticatorOptions {
            user_verification: true,
            user_verified: true,
            resident_key: true,
        },
    )
    .await;
    let created = run(client, CREATE).await;
    println!("create, PIN accepted: {created}");
    assert_eq!(created["ok"], true, "{created}");
    assert_eq!(created["uv"], true, "{created}");
    let held = credentials(client, &key).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["isResidentCredential"], true, "{held:?}");
    assert_eq!(held[0]["rpId"], "localhost", "{held:?}");
    let signed = run(client, GET).await;
    println!("get, PIN accepted: {signed}");
    assert_eq!(signed["ok"], true, "{signed}");
    assert_eq!(signed["id"], created["id"], "{signed}");
    assert_eq!(signed["uv"], true, "{signed}");

    // The PIN is now refused: sign-in and registration fail with NotAllowedError.
    set_user_verified(client, &key, false).await;
    let (name, at_once) = refused("get, PIN refused", &run(client, GET).await);
    assert_eq!(name, "NotAllowedError");
    println!("get, PIN refused: at once = {at_once}");
    let (name, at_once) = refused("create, PIN refused", &run(client, CREATE).await);
    assert_eq!(name, "NotAllowedError");
    println!("create, PIN refused: at once = {at_once}");
    assert_eq!(
        credentials(client, &key).await.len(),
        1,
        "nothing was added"
    );
    remove_authenticator(client, &key).await;

    // A key without PIN or fingerprint cannot do what twostep asks.
    let plain = add_authenticator(
        client,
        &AuthenticatorOptions {
            user_verification: false,
            user_verified: false,
            resident_key: true,
        },
    )
    .await;
    let (name, at_once) = refused("create, key without PIN", &run(client, CREATE).await);
    assert_eq!(name, "NotAllowedError");
    println!("create, key without PIN: at once = {at_once}");
    assert!(credentials(client, &plain).await.is_empty());
    remove_authenticator(client, &plain).await;
    browser.finish().await;
}

// static/webauthn.js against webauthn-rs: the options the server will send, the answers it
// will read. The page is the app's sign-in page; the script file is not served yet, so the
// test runs its text as a WebDriver script (which the page's CSP does not restrict).

/// A form of SPEC section 14 at the top of the page, as the pages will have it; then
/// `form.submit()` only records the credential in `window.submitted`, and `fetch` (when
/// `arguments[3]` is an answer `{status, body}`) answers without the network, recording
/// the request in `window.fetched`.
const FORM: &str = r#"
    const [kind, options, optionsUrl, answer] = arguments;
    document.querySelectorAll("form.webauthn").forEach((old) => old.remove());
    const form = document.createElement("form");
    form.method = "post";
    form.action = "/signin/webauthn";
    form.className = "webauthn";
    form.hidden = true;
    form.dataset.webauthn = kind;
    if (optionsUrl) {
        form.dataset.optionsUrl = optionsUrl;
    }
    form.innerHTML = '<input type="hidden" name="csrf" value="token">' +
        '<input type="hidden" name="credential" value="">' +
        '<input type="hidden" name="challenge_id" value="">' +
        '<script type="application/json" class="webauthn-options"></script>' +
        '<button type="button" class="webauthn-start primary">Use your security key</button>' +
        '<p class="webauthn-error notice error" role="alert" hidden></p>';
    form.querySelector("script").textContent = options;
    document.body.prepend(form);
    window.submitted = null;
    HTMLFormElement.prototype.submit = function () {
        window.submitted = this.querySelector("input[name='credential']").value;
    };
    if (answer) {
        window.fetch = async (url, init) => {
            window.fetched = { url: String(url), init: init };
            return new Response(answer.body, {
                status: answer.status,
                headers: { "Content-Type": "application/json" },
            });
        };
    }
"#;

/// What the form ended with: the submitted credential (JSON), or the error shown.
async fn outcome(browser: &crate::browser::Browser) -> Result<Value, String> {
    browser.click("form.webauthn .webauthn-start").await;
    for _ in 0..300 {
        let state = browser
            .client
            .execute(
                r#"const error = document.querySelector("form.webauthn .webauthn-error");
                   return { submitted: window.submitted,
                            error: error.hidden ? null : error.textContent,
                            disabled: document.querySelector(".webauthn-start").disabled };"#,
                vec![],
            )
            .await
            .expect("the form's state");
        if let Some(credential) = state["submitted"].as_str() {
            assert_eq!(state["disabled"], true, "the button waits: {state}");
            return Ok(serde_json::from_str(credential).expect("the credential is JSON"));
        }
        if let Some(error) = state["error"].as_str() {
            assert_eq!(state["disabled"], false, "the button is back: {state}");
            return Err(error.to_owned());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the form neither submitted nor showed an error");
}

/// Puts the form on the page, runs static/webauthn.js, and clicks its button.
async fn use_form(
    browser: &crate::browser::Browser,
    kind: &str,
    options: &Value,
    fetch_answer: Option<Value>,
) -> Result<Value, String> {
    let options_url = (kind == "passkey").then_some("/api/v1/signin/passkey/options");
    browser
        .client
        .execute(
            FORM,
            vec![
                json!(kind),
                json!(options.to_string()),
                json!(options_url),
                fetch_answer.unwrap_or(Value::Null),
            ],
        )
        .await
        .expect("the form is on the page");
    let form = browser.find("form.webauthn").await;
    assert!(
        !form.is_displayed().await.unwrap(),
        "hidden without the script"
    );
    browser
        .client
        .execute(include_str!("../../static/webauthn.js"), vec![])
        .await
        .expect("static/webauthn.js runs");
    assert!(form.is_displayed().await.unwrap(), "shown by the script");
    outcome(browser).await
}

const NOT_ALLOWED: &str = "The key did not answer, or it could not confirm it is you. twostep \
                           needs a security key with a PIN or fingerprint: if yours has none, \
                           set a PIN with its maker's app, or use another key. Then try again.";

#[tokio::test]
async fn the_script_registers_and_signs_in_with_what_webauthn_rs_sends_and_reads() {
    use webauthn_rs::prelude::{
        PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, WebauthnBuilder,
    };

    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let (_app, base) = crate::security_keys::local_app().await;
    let origin = Url::parse(&base).unwrap();
    let webauthn = WebauthnBuilder::new("localhost", &origin)
        .unwrap()
        .rp_name("St. Elsewhere")
        .build()
        .unwrap();
    let Some(mut browser) = browser_at(base, "webauthn-script", 800, 600, &[]).await else {
        return;
    };
    browser.goto("/signin").await;
    browser.page("signin").await;

    // Twice: with the browser's own JSON conversions, then with the script's by hand.
    for (round, by_hand) in [(1_u128, false), (2, true)] {
        if by_hand {
            let gone = browser
                .client
                .execute(
                    "delete PublicKeyCredential.prototype.toJSON;
                     delete PublicKeyCredential.parseCreationOptionsFromJSON;
                     delete PublicKeyCredential.parseRequestOptionsFromJSON;
                     return typeof PublicKeyCredential.prototype.toJSON;",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(gone, "undefined", "the browser's toJSON is gone");
        }
        let key = add_authenticator(
            &browser.client,
            &AuthenticatorOptions {
                user_verification: true,
                user_verified: true,
                resident_key: true,
            },
        )
        .await;

        // Registration: the options as webauthn-rs serialises them, asking for a
        // discoverable credential (a passkey).
        let user = Uuid::from_u128(round);
        let (creation, registration) = webauthn
            .start_passkey_registration(user, "jane", "jane", None)
            .unwrap();
        let mut options = serde_json::to_value(&creation.public_key).unwrap();
        options["authenticatorSelection"]["residentKey"] = json!("required");
        options["authenticatorSelection"]["requireResidentKey"] = json!(true);
        options["timeout"] = Value::Null; // a null the script drops
        let credential = use_form(&browser, "create", &options, None)
            .await
            .expect("the key is registered");
        browser.shot(&format!("registered-{round}")).await;
        println!("registration (by hand: {by_hand}): {credential}");
        assert_eq!(credential["type"], "public-key");
        assert!(
            credential["response"]["transports"].is_array(),
            "{credential}"
        );
        let registered: RegisterPublicKeyCredential =
            serde_json::from_value(credential).expect("webauthn-rs reads the registration");
        let passkey = webauthn
            .finish_passkey_registration(&registered, &registration)
            .expect("webauthn-rs accepts the registration");
        let held = credentials(&browser.client, &key).await;
        assert_eq!(held.len(), 1, "{held:?}");
        assert_eq!(held[0]["isResidentCredential"], true, "{held:?}");

        // The same key again: refused by the key itself.
        let (again, _) = webauthn
            .start_passkey_registration(user, "jane", "jane", Some(vec![passkey.cred_id().clone()]))
            .unwrap();
        let error = use_form(
            &browser,
            "create",
            &serde_json::to_value(&again.public_key).unwrap(),
            None,
        )
        .await
        .expect_err("the same key twice");
        assert_eq!(error, "This key is already registered to your account.");
        browser.shot(&format!("already-registered-{round}")).await;

        // Sign-in at the device step (the whole RequestChallengeResponse embedded, too).
        let (request, authentication) = webauthn
            .start_passkey_authentication(std::slice::from_ref(&passkey))
            .unwrap();
        let embedded = if by_hand {
            serde_json::to_value(&request).unwrap()
        } else {
            serde_json::to_value(&request.public_key).unwrap()
        };
        let credential = use_form(&browser, "get", &embedded, None)
            .await
            .expect("the key signs in");
        println!("assertion (by hand: {by_hand}): {credential}");
        let asserted: PublicKeyCredential =
            serde_json::from_value(credential).expect("webauthn-rs reads the assertion");
        let result = webauthn
            .finish_passkey_authentication(&asserted, &authentication)
            .expect("webauthn-rs accepts the assertion");
        assert!(result.user_verified());

        // Passkey sign-in: the options fetched, the challenge id kept for the form.
        let (discoverable, state) = webauthn.start_discoverable_authentication().unwrap();
        let answer = json!({
            "status": 200,
            "body": json!({ "challenge_id": format!("challenge-{round}"),
                            "public_key": discoverable.public_key }).to_string(),
        });
        let credential = use_form(&browser, "passkey", &Value::Null, Some(answer))
            .await
            .expect("the passkey signs in");
        let fetched = browser
            .client
            .execute(
                r#"return { url: window.fetched.url, method: window.fetched.init.method,
                            body: window.fetched.init.body,
                            credentials: window.fetched.init.credentials,
                            type: window.fetched.init.headers["Content-Type"],
                            challenge: document.querySelector("input[name='challenge_id']").value };"#,
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            fetched,
            json!({ "url": "/api/v1/signin/passkey/options", "method": "POST", "body": "{}",
                    "credentials": "same-origin", "type": "application/json",
                    "challenge": format!("challenge-{round}") })
        );
        let asserted: PublicKeyCredential = serde_json::from_value(credential).unwrap();
        let (handle, _) = webauthn
            .identify_discoverable_authentication(&asserted)
            .expect("the passkey names its user");
        assert_eq!(handle, user);
        let result = webauthn
            .finish_discoverable_authentication_v2(&asserted, state, &passkey)
            .expect("webauthn-rs accepts the passkey");
        assert!(result.user_verified());

        // The server's refusal of the options is shown as it says.
        let answer = json!({
            "status": 429,
            "body": json!({ "message": "Too many attempts: wait a minute." }).to_string(),
        });
        let error = use_form(&browser, "passkey", &Value::Null, Some(answer))
            .await
            .expect_err("no options");
        assert_eq!(error, "Too many attempts: wait a minute.");

        // A PIN refused: the plain-English explanation.
        set_user_verified(&browser.client, &key, false).await;
        let (request, _) = webauthn.start_passkey_authentication(&[passkey]).unwrap();
        let error = use_form(
            &browser,
            "get",
            &serde_json::to_value(&request.public_key).unwrap(),
            None,
        )
        .await
        .expect_err("no user verification");
        assert_eq!(error, NOT_ALLOWED);
        browser.shot(&format!("not-allowed-{round}")).await;
        remove_authenticator(&browser.client, &key).await;
    }
    browser.finish().await;
}
