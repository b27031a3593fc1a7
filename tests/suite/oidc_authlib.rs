//! SPEC 13's OpenID Connect provider with a real relying party: authlib (PyPI), in
//! `tests/interop/oidc_authlib_client.py`, discovers the provider, sends Chromium to
//! `/oauth2/authorize`, where a person signs in with a password and a TOTP code, takes the
//! code at its loopback redirect URI, exchanges it with authlib's `OAuth2Session` and has
//! authlib check the ID token against the JWKS. The script prints one JSON object a line;
//! these tests drive the browser between its lines and judge what it saw.
//!
//! The app's clock is set to the wall clock first: authlib (and mod_auth_openidc in
//! `oidc_apache.rs`) check `exp` and `iat` against real time.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use twostep::domain::{PromptMode, Require2fa};
use twostep::otp::Totp;

use crate::admin_api::{admin, call};
use crate::browser::{browser, Browser, ONE_BROWSER_AT_A_TIME};
use crate::helpers::{free_port, require_python_module, spawn_app, TestApp};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/interop/oidc_authlib_client.py"
);

/// How long the script may take to say its next line (a browser sign-in included).
const LINE_TIMEOUT: Duration = Duration::from_secs(90);

/// Moves the app's manual clock to the wall clock, so that the tokens it signs are valid
/// now for a relying party that reads the real time.
pub(crate) fn wall_clock(app: &TestApp) {
    use twostep::clock::Clock;
    app.clock.set(twostep::clock::SystemClock.now());
}

/// jane, in a role that forces 2-step verification, with a confirmed TOTP device asked at
/// every sign-in; its generator.
pub(crate) async fn clinician(app: &TestApp) -> Totp {
    let role = app.role("Clinician", Require2fa::Force, false, false).await;
    let jane = app.user("jane", &role, true).await;
    app.enroll_totp(&jane, PromptMode::EveryLogin).await
}

/// Registers a client through the admin API as SPEC 13 describes it; the client secret
/// of a confidential client (none for a public one).
pub(crate) async fn register_client(
    app: &TestApp,
    client_id: &str,
    redirect_uris: &[String],
    post_logout_redirect_uris: &[String],
    confidential: bool,
) -> Option<String> {
    let token = admin(app).await;
    let (status, created) = call(
        app,
        Method::POST,
        "/api/v1/oidc/clients",
        Some(&token),
        Some(json!({
            "client_id": client_id,
            "name": format!("{client_id} (interop test)"),
            "redirect_uris": redirect_uris,
            "post_logout_redirect_uris": post_logout_redirect_uris,
            "confidential": confidential,
            "require_2fa": false,
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["client_secret"].as_str().map(str::to_owned);
    assert_eq!(secret.is_some(), confidential, "{created}");
    secret
}

/// On twostep's sign-in page (reached from `/oauth2/authorize`): jane's password, then
/// the code of her TOTP device.
pub(crate) async fn sign_in_with_totp(browser: &mut Browser, app: &TestApp, totp: &Totp) {
    browser.page("signin").await;
    browser.type_into("#username", "jane").await;
    browser
        .type_into("#password", &TestApp::password_of("jane"))
        .await;
    browser.shot("signin").await;
    browser
        .submit("form[action='/signin'] button[type='submit']")
        .await;
    browser.page("verify").await;
    browser.type_into("#code", &app.totp_now(totp)).await;
    browser.shot("verify").await;
    browser.submit("form[action='/signin/verify'] button").await;
}

/// Where the browser is and what it shows, for a failure message.
pub(crate) async fn browser_state(browser: &Browser) -> String {
    let url = browser
        .client
        .current_url()
        .await
        .map(|url| url.to_string())
        .unwrap_or_default();
    let source = browser.client.source().await.unwrap_or_default();
    format!("the browser is at {url} and shows:\n{source}")
}

/// The `data-page` of the page the browser shows once it has one.
async fn data_page(browser: &Browser) -> String {
    browser
        .find("body[data-page]")
        .await
        .attr("data-page")
        .await
        .expect("an attribute")
        .unwrap_or_default()
}

/// The authlib relying party as a child process, read a line at a time.
struct RelyingParty {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    stdin: Option<ChildStdin>,
    /// Every line so far, for failure messages.
    seen: Vec<String>,
    /// The redirect URI's port.
    port: u16,
}

impl RelyingParty {
    fn start(
        python: &Path,
        mode: &str,
        app: &TestApp,
        client_id: &str,
        secret: Option<&str>,
        port: u16,
    ) -> Self {
        let mut command = tokio::process::Command::new(python);
        command
            .arg(SCRIPT)
            .arg(mode)
            .arg(&app.address)
            .arg(client_id)
            .arg(port.to_string())
            .env("AUTHLIB_INSECURE_TRANSPORT", "1")
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(secret) = secret {
            command.env("OIDC_CLIENT_SECRET", secret);
        }
        let mut child = command.spawn().expect("python3 starts");
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take();
        Self {
            child,
            lines: BufReader::new(stdout).lines(),
            stdin,
            seen: Vec::new(),
            port,
        }
    }

    /// What went wrong, with every line and the script's standard error.
    async fn failure(&mut self, what: &str, browser: Option<&Browser>) -> String {
        let _ = self.child.start_kill();
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), pipe.read_to_string(&mut stderr))
                .await;
        }
        let shown = match browser {
            Some(browser) => browser_state(browser).await,
            None => String::new(),
        };
        format!(
            "{what}\nthe relying party said:\n{}\nits standard error:\n{stderr}\n{shown}",
            self.seen.join("\n")
        )
    }

    /// The next line whose `event` is `event`; panics on an `error` line, the end of the
    /// output or a silence longer than [`LINE_TIMEOUT`].
    async fn expect(&mut self, event: &str, browser: Option<&Browser>) -> Value {
        loop {
            let line = match tokio::time::timeout(LINE_TIMEOUT, self.lines.next_line()).await {
                Ok(Ok(Some(line))) => line,
                Ok(Ok(None)) => {
                    let message = self
                        .failure(
                            &format!("the relying party ended before `{event}`"),
                            browser,
                        )
                        .await;
                    panic!("{message}")
                }
                Ok(Err(error)) => panic!("reading the relying party: {error}"),
                Err(_) => {
                    let message = self
                        .failure(
                            &format!("no `{event}` from the relying party in time"),
                            browser,
                        )
                        .await;
                    panic!("{message}")
                }
            };
            self.seen.push(line.clone());
            let Ok(value) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if value["event"] == "error" {
                let message = self
                    .failure(
                        &format!("the relying party failed before `{event}`"),
                        browser,
                    )
                    .await;
                panic!("{message}")
            }
            if value["event"] == event {
                return value;
            }
        }
    }

    /// Tells the script to stop waiting for the browser (end of its standard input).
    fn stop_waiting(&mut self) {
        self.stdin.take();
    }

    /// Waits for the script to exit; panics unless it succeeded.
    async fn finish(mut self) {
        self.stop_waiting();
        let status = tokio::time::timeout(LINE_TIMEOUT, self.child.wait())
            .await
            .expect("the relying party exits")
            .unwrap();
        if !status.success() {
            let message = self
                .failure(&format!("the relying party exited with {status}"), None)
                .await;
            panic!("{message}");
        }
    }

    fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}/callback", self.port)
    }
}

/// The redirect and post-logout URIs a relying party on `port` registers.
fn uris(port: u16) -> (Vec<String>, Vec<String>) {
    (
        vec![format!("http://127.0.0.1:{port}/callback")],
        vec![format!("http://127.0.0.1:{port}/loggedout")],
    )
}

/// One test's parts: the app with jane, a registered client, Chromium, the script.
struct Case {
    app: TestApp,
    totp: Totp,
    browser: Browser,
    rp: RelyingParty,
}

/// `None` when Python's authlib or Chromium is missing outside CI (skipped, saying so).
async fn case(test: &'static str, mode: &str, confidential: bool) -> Option<Case> {
    let python = require_python_module(
        "authlib.integrations.requests_client",
        "python3 -m pip install authlib requests",
    )?;
    let app = spawn_app().await;
    wall_clock(&app);
    let totp = clinician(&app).await;
    let port = free_port();
    let (redirect_uris, post_logout) = uris(port);
    let client_id = if confidential { "wiki" } else { "notes-app" };
    let secret = register_client(&app, client_id, &redirect_uris, &post_logout, confidential).await;
    let browser = browser(&app, test, 1000, 800).await?;
    let rp = RelyingParty::start(&python, mode, &app, client_id, secret.as_deref(), port);
    Some(Case {
        app,
        totp,
        browser,
        rp,
    })
}

impl Case {
    /// The discovery line, checked against SPEC 13's contract.
    async fn discovery(&mut self) {
        let found = self.rp.expect("discovery", None).await;
        let meta = &found["metadata"];
        let iss = &self.app.address;
        assert_eq!(meta["issuer"], json!(iss), "{meta}");
        for (field, path) in [
            ("authorization_endpoint", "/oauth2/authorize"),
            ("token_endpoint", "/oauth2/token"),
            ("userinfo_endpoint", "/oauth2/userinfo"),
            ("jwks_uri", "/oauth2/jwks"),
            ("end_session_endpoint", "/oauth2/logout"),
        ] {
            assert_eq!(
                meta[field],
                json!(format!("{iss}{path}")),
                "{field}: {meta}"
            );
        }
        assert_eq!(
            meta["id_token_signing_alg_values_supported"],
            json!(["RS256"])
        );
        assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(
            meta["token_endpoint_auth_methods_supported"],
            json!(["client_secret_basic", "client_secret_post", "none"])
        );
    }

    /// The authorize URL the script made, opened in Chromium; the line.
    async fn open_authorize_url(&mut self) -> Value {
        let line = self.rp.expect("authorize_url", None).await;
        let url = line["url"].as_str().unwrap().to_owned();
        assert!(
            url.starts_with(&format!("{}/oauth2/authorize?", self.app.address)),
            "{url}"
        );
        self.browser.client.goto(&url).await.expect("navigation");
        line
    }

    /// Opens the authorize URL, signs jane in with password and TOTP; the callback's
    /// query, checked to carry a code and the state of the authorize URL.
    async fn sign_in(&mut self) -> Value {
        let authorize = self.open_authorize_url().await;
        sign_in_with_totp(&mut self.browser, &self.app, &self.totp).await;
        let callback = self.rp.expect("callback", Some(&self.browser)).await;
        let query = callback["query"].clone();
        assert_eq!(callback["path"], "/callback");
        assert_eq!(query["state"], authorize["state"], "{callback}");
        assert!(query["code"].is_string(), "{callback}");
        // The browser shows the relying party's page at the redirect URI.
        self.browser.page("relying-party").await;
        let url = self.browser.client.current_url().await.unwrap();
        assert!(
            url.as_str().starts_with(&self.rp.redirect_uri()),
            "the browser is at {url}"
        );
        self.browser.shot("callback").await;
        authorize
    }

    async fn finish(self) {
        self.rp.finish().await;
        self.browser.finish().await;
        self.app.stop().await;
    }
}

/// What SPEC 13 says of jane's claims, in the verified ID token and in userinfo.
fn assert_janes_claims(result: &Value, app: &TestApp, client_id: &str, nonce: &Value) {
    let claims = &result["claims"];
    let header = &result["header"];
    assert_eq!(header["alg"], "RS256", "{header}");
    assert!(
        result["kids"].as_array().unwrap().contains(&header["kid"]),
        "the header's kid is in the JWKS: {result}"
    );
    assert_eq!(claims["iss"], json!(app.address), "{claims}");
    let aud = &claims["aud"];
    assert!(
        *aud == json!(client_id) || *aud == json!([client_id]),
        "aud: {claims}"
    );
    assert_eq!(claims["nonce"], *nonce, "{claims}");
    for claim in ["exp", "iat", "auth_time"] {
        assert!(claims[claim].is_number(), "{claim}: {claims}");
    }
    let sub = claims["sub"].as_str().expect("a sub");
    assert!(!sub.is_empty());
    assert_ne!(sub, "jane", "sub is not the username");
    let amr: Vec<&str> = claims["amr"]
        .as_array()
        .expect("amr is a list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for method in ["pwd", "otp", "mfa"] {
        assert!(amr.contains(&method), "amr has {method}: {claims}");
    }
    assert!(claims["acr"].is_string(), "{claims}");
    assert_eq!(claims["preferred_username"], "jane", "{claims}");
    assert_eq!(claims["name"], "jane Display", "{claims}");
    assert_eq!(claims["email"], "jane@example.org", "{claims}");
    assert_eq!(claims["role"], "Clinician", "{claims}");

    let info = &result["userinfo"];
    assert_eq!(info["sub"], claims["sub"], "userinfo: {info}");
    assert_eq!(info["preferred_username"], "jane", "{info}");
    assert_eq!(info["name"], "jane Display", "{info}");
    assert_eq!(info["email"], "jane@example.org", "{info}");
    assert_eq!(info["role"], "Clinician", "{info}");

    let token = &result["token"];
    assert!(
        token["token_type"]
            .as_str()
            .is_some_and(|kind| kind.eq_ignore_ascii_case("bearer")),
        "{token}"
    );
    assert!(
        token["expires_in"].as_i64().is_some_and(|s| s > 0),
        "{token}"
    );
    assert_eq!(token["has_access_token"], true, "{token}");
    assert_eq!(token["has_id_token"], true, "{token}");
    assert_eq!(token["has_refresh_token"], true, "{token}");
    assert!(token["scope"].is_string(), "{token}");
}

/// SPEC 13: a confidential client (`client_secret_basic`) through authlib: discovery as
/// announced, twostep's own sign-in with password and TOTP, the code exchanged, the ID
/// token's RS256 signature and claims verified by authlib against the JWKS (kid, iss,
/// aud, exp, iat, nonce), `amr` with `otp`, a random `sub`, userinfo with the same `sub`;
/// a refresh rotates the refresh token and the old one is then refused.
#[tokio::test]
async fn authlib_signs_in_a_confidential_client_with_password_and_totp() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let Some(mut case) = case("oidc-authlib-confidential", "confidential", true).await else {
        return;
    };
    case.discovery().await;
    let authorize = case.sign_in().await;
    let result = case.rp.expect("result", Some(&case.browser)).await;
    assert_eq!(result["state_matches"], true);
    assert_janes_claims(&result, &case.app, "wiki", &authorize["nonce"]);
    let refresh = &result["refresh"];
    assert_eq!(refresh["token"]["has_access_token"], true, "{refresh}");
    assert_eq!(refresh["rotated"], true, "{refresh}");
    assert_eq!(refresh["userinfo_status"], 200, "{refresh}");
    assert_eq!(
        refresh["userinfo_sub"], result["claims"]["sub"],
        "{refresh}"
    );
    assert_eq!(refresh["reuse"]["error"], "invalid_grant", "{refresh}");
    case.finish().await;
}

/// SPEC 13: `client_secret_post` is accepted as well as `client_secret_basic`.
#[tokio::test]
async fn authlib_signs_in_a_confidential_client_with_client_secret_post() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let Some(mut case) = case("oidc-authlib-post", "confidential_post", true).await else {
        return;
    };
    case.discovery().await;
    let authorize = case.sign_in().await;
    let result = case.rp.expect("result", Some(&case.browser)).await;
    assert_janes_claims(&result, &case.app, "wiki", &authorize["nonce"]);
    case.finish().await;
}

/// SPEC 13: a public client (no secret) with PKCE S256 through authlib signs jane in the
/// same way: ID token verified by authlib, `amr` with `otp`, userinfo with the same sub.
#[tokio::test]
async fn authlib_signs_in_a_public_client_with_pkce_s256() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let Some(mut case) = case("oidc-authlib-public", "public", false).await else {
        return;
    };
    case.discovery().await;
    let authorize = case.sign_in().await;
    let url = authorize["url"].as_str().unwrap();
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    let result = case.rp.expect("result", Some(&case.browser)).await;
    assert_janes_claims(&result, &case.app, "notes-app", &authorize["nonce"]);
    case.finish().await;
}

/// SPEC 13: a code is single use, and its second use revokes what the first issued: the
/// second exchange is `invalid_grant`, then the first access token gets a 401 from
/// userinfo (`WWW-Authenticate: Bearer error="invalid_token"`) and the first refresh token
/// is `invalid_grant`.
#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_the_first_tokens() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let Some(mut case) = case("oidc-authlib-replay", "replay", true).await else {
        return;
    };
    case.sign_in().await;
    let result = case.rp.expect("result", Some(&case.browser)).await;
    assert_eq!(result["first"]["has_access_token"], true, "{result}");
    assert_eq!(result["userinfo_before"], 200, "{result}");
    assert_eq!(result["second"]["error"], "invalid_grant", "{result}");
    assert_eq!(result["second"]["status"], 400, "{result}");
    assert_eq!(result["userinfo_after"], 401, "{result}");
    let challenge = result["userinfo_after_www_authenticate"]
        .as_str()
        .unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains(r#"error="invalid_token""#),
        "{result}"
    );
    assert_eq!(
        result["refresh_after"]["error"], "invalid_grant",
        "{result}"
    );
    case.finish().await;
}

/// SPEC 13: PKCE `plain` is refused: the browser is sent back to the (registered)
/// redirect URI with `error=invalid_request` and the state, and no code.
#[tokio::test]
async fn a_plain_pkce_challenge_is_sent_back_as_invalid_request() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let Some(mut case) = case("oidc-authlib-plain", "plain_pkce", false).await else {
        return;
    };
    let authorize = case.open_authorize_url().await;
    let url = authorize["url"].as_str().unwrap();
    assert!(url.contains("code_challenge_method=plain"), "{url}");
    let callback = case.rp.expect("callback", Some(&case.browser)).await;
    let query = &callback["query"];
    assert_eq!(query["error"], "invalid_request", "{callback}");
    assert_eq!(query["state"], authorize["state"], "{callback}");
    assert!(query.get("code").is_none(), "{callback}");
    case.browser.page("relying-party").await;
    case.browser.shot("plain-refused").await;
    let result = case.rp.expect("result", None).await;
    assert_eq!(result["state_matches"], true);
    case.finish().await;
}

/// SPEC 13: the code is bound to the PKCE verifier: the right code with another verifier
/// is `invalid_grant`.
#[tokio::test]
async fn a_wrong_pkce_verifier_is_refused() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let Some(mut case) = case("oidc-authlib-verifier", "wrong_verifier", false).await else {
        return;
    };
    case.sign_in().await;
    let result = case.rp.expect("result", Some(&case.browser)).await;
    assert_eq!(result["exchange"]["error"], "invalid_grant", "{result}");
    assert_eq!(result["exchange"]["status"], 400, "{result}");
    case.finish().await;
}

/// SPEC 13 (redirect URIs match exactly; RFC 6749 4.1.2.1): a redirect_uri one character
/// off the registered one gets twostep's error page (400, no redirect), and nothing ever
/// reaches the relying party's callback server.
#[tokio::test]
async fn a_redirect_uri_one_character_off_gets_an_error_page_and_no_redirect() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let Some(mut case) = case("oidc-authlib-redirect", "wrong_redirect", true).await else {
        return;
    };
    let authorize = case.open_authorize_url().await;
    let wrong = authorize["redirect_uri"].as_str().unwrap();
    assert_ne!(wrong, case.rp.redirect_uri());
    assert_eq!(wrong.len(), case.rp.redirect_uri().len());
    // The browser stays with twostep, on a page of its own.
    let page = data_page(&case.browser).await;
    let at = case.browser.client.current_url().await.unwrap();
    let state = browser_state(&case.browser).await;
    assert!(
        at.as_str().starts_with(&format!("{}/", case.app.address)),
        "{state}"
    );
    assert_ne!(page, "relying-party", "{state}");
    case.browser.shot("redirect-refused").await;
    // The same request without a browser: a 400 page, no Location.
    let direct = case
        .app
        .client
        .get(authorize["url"].as_str().unwrap())
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), StatusCode::BAD_REQUEST);
    assert!(direct.headers().get("location").is_none());
    assert!(direct
        .headers()
        .get("content-type")
        .and_then(|kind| kind.to_str().ok())
        .is_some_and(|kind| kind.starts_with("text/html")));
    case.rp.stop_waiting();
    let result = case.rp.expect("result", None).await;
    assert_eq!(result["callback_received"], false, "{result}");
    case.finish().await;
}

/// SPEC 13: a copy of a real ID token signed `alg: none` is refused by authlib (with the
/// algorithms discovery announces, and with authlib's default JWT object); as the
/// `id_token_hint` of a logout twostep refuses it with an error page (400, no redirect)
/// and the session lives on; the real ID token as hint ends the session and sends the
/// browser to the registered post-logout URI with the state; then `/` asks to sign in.
#[tokio::test]
async fn a_none_signed_id_token_is_refused_by_authlib_and_by_twosteps_logout() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let Some(mut case) = case("oidc-authlib-none", "none_token", true).await else {
        return;
    };
    case.sign_in().await;
    let result = case.rp.expect("result", Some(&case.browser)).await;
    assert!(result["refused_by_authlib"].is_string(), "{result}");
    assert!(
        result["refused_by_authlib_default_jwt"].is_string(),
        "{result}"
    );
    assert_eq!(result["forged_alg"], "none");
    assert_eq!(result["logout_direct_status"], 400, "{result}");
    assert!(result["logout_direct_location"].is_null(), "{result}");

    // The forged hint in the signed-in browser: refused, no redirect, still signed in.
    let forged = case.rp.expect("logout_url", None).await;
    assert_eq!(forged["hint"], "none");
    case.browser
        .client
        .goto(forged["url"].as_str().unwrap())
        .await
        .expect("navigation");
    let page = data_page(&case.browser).await;
    let at = case.browser.client.current_url().await.unwrap();
    let state = browser_state(&case.browser).await;
    assert!(
        at.as_str()
            .starts_with(&format!("{}/oauth2/logout", case.app.address)),
        "{state}"
    );
    assert_ne!(page, "relying-party", "{state}");
    case.browser.shot("forged-hint-refused").await;
    case.browser.goto("/").await;
    case.browser.page("home").await;
    assert_eq!(case.browser.text("#username").await, "jane");

    // The real hint: logged out, back at the post-logout URI with the state.
    let real = case.rp.expect("logout_url", None).await;
    assert_eq!(real["hint"], "real");
    case.browser
        .client
        .goto(real["url"].as_str().unwrap())
        .await
        .expect("navigation");
    let loggedout = case.rp.expect("loggedout", Some(&case.browser)).await;
    assert_eq!(loggedout["path"], "/loggedout");
    assert_eq!(loggedout["state_matches"], true, "{loggedout}");
    case.browser.page("relying-party").await;
    case.browser.shot("logged-out").await;
    case.browser.goto("/").await;
    case.browser.page("signin").await;
    case.finish().await;
}

/// SPEC 13 (RP-initiated logout without `id_token_hint`): twostep asks first, with a
/// `#signout` button, and only the button ends the session.
#[tokio::test]
async fn a_logout_without_a_hint_asks_before_signing_out() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let Some(mut case) = case("oidc-logout-confirm", "confidential", true).await else {
        return;
    };
    case.sign_in().await;
    case.rp.expect("result", Some(&case.browser)).await;
    case.browser.goto("/oauth2/logout").await;
    case.browser.find("#signout").await;
    case.browser.shot("logout-confirm").await;
    // Asking alone changes nothing.
    case.browser.goto("/").await;
    case.browser.page("home").await;
    case.browser.goto("/oauth2/logout").await;
    case.browser.submit("#signout").await;
    case.browser.shot("logout-done").await;
    case.browser.goto("/").await;
    case.browser.page("signin").await;
    case.finish().await;
}
