//! The pages in a real browser: headless Chromium driven through chromedriver (Debian
//! packages `chromium` and `chromium-driver`) with fantoccini. Each test saves a
//! screenshot of every page it sees under `target/screenshots/`.
//!
//! The app's clock is manual: the tests move it instead of waiting for time to pass; they
//! only wait for the browser (fantoccini's wait API).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use twostep::domain::Require2fa;
use twostep::otp::{KeyUri, Totp};

use crate::helpers::{require_program, spawn_app, NowTs, TestApp};

/// Chromium is heavy for a 2-core machine: one browser at a time keeps the tests calm.
pub(crate) static ONE_BROWSER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a page may take to appear.
const PAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// chromedriver, killed (with the browser it started) when dropped.
struct Driver {
    child: Child,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver leads its own process group: the group goes, Chromium with it,
        // even when a failing test never closed its session.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser session on the app, saving numbered screenshots.
pub(crate) struct Browser {
    pub(crate) client: Client,
    base: String,
    test: &'static str,
    shots: u32,
    folder: PathBuf,
    // Dropped after the client: the driver, then the profile folder.
    _driver: Driver,
    _profile: tempfile::TempDir,
}

/// `None` (skipped with a message) without Chromium outside CI; in CI a missing program
/// fails the test.
pub(crate) async fn browser(
    app: &TestApp,
    test: &'static str,
    width: u32,
    height: u32,
) -> Option<Browser> {
    browser_at(app.address.clone(), test, width, height, &[]).await
}

/// A browser whose relative paths go to `base`, with more Chromium arguments.
pub(crate) async fn browser_at(
    base: String,
    test: &'static str,
    width: u32,
    height: u32,
    extra_args: &[String],
) -> Option<Browser> {
    let chromium = require_program("chromium", "apt-get install chromium")?;
    let chromedriver = require_program("chromedriver", "apt-get install chromium-driver")?;
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").expect("a free port");
        probe.local_addr().unwrap().port()
    };
    let child = {
        use std::os::unix::process::CommandExt;
        Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts")
    };
    let driver = Driver { child };
    // Wait (bounded) until chromedriver listens.
    let mut ready = false;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "chromedriver did not listen on port {port}");

    let profile = tempfile::tempdir().expect("a profile folder");
    let mut args = vec![
        "--headless=new".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-quic".to_owned(),
        format!("--user-data-dir={}", profile.path().display()),
    ];
    args.extend_from_slice(extra_args);
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({ "binary": chromium.display().to_string(), "args": args }),
    );
    // Plain HTTP to the local chromedriver: no TLS stack (and no rustls provider) needed.
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a Chromium session");
    client
        .set_window_size(width, height)
        .await
        .expect("window size");
    let folder = screenshot_folder();
    std::fs::create_dir_all(&folder).expect("the screenshot folder");
    Some(Browser {
        client,
        base,
        test,
        shots: 0,
        folder,
        _driver: driver,
        _profile: profile,
    })
}

/// `target/screenshots/` of the target folder in use.
fn screenshot_folder() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("screenshots")
}

impl Browser {
    pub(crate) async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .expect("navigation");
    }

    /// Waits for the page whose body has `data-page="{page}"`.
    pub(crate) async fn page(&self, page: &str) {
        let selector = format!("body[data-page='{page}']");
        if let Err(error) = self
            .client
            .wait()
            .at_most(PAGE_TIMEOUT)
            .for_element(Locator::Css(&selector))
            .await
        {
            let source = self.client.source().await.unwrap_or_default();
            panic!("the {page} page did not appear ({error}); the browser shows:\n{source}");
        }
    }

    pub(crate) async fn find(&self, selector: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(PAGE_TIMEOUT)
            .for_element(Locator::Css(selector))
            .await
            .unwrap_or_else(|error| panic!("{selector}: {error}"))
    }

    pub(crate) async fn text(&self, selector: &str) -> String {
        self.find(selector).await.text().await.expect("text")
    }

    pub(crate) async fn body(&self) -> String {
        self.text("body").await
    }

    pub(crate) async fn type_into(&self, selector: &str, text: &str) {
        let field = self.find(selector).await;
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("typing");
    }

    pub(crate) async fn click(&self, selector: &str) {
        self.find(selector).await.click().await.expect("click");
    }

    /// Saves `target/screenshots/<test>-<nn>-<page>.png`.
    pub(crate) async fn shot(&mut self, page: &str) -> Vec<u8> {
        self.shots += 1;
        let png = self.client.screenshot().await.expect("a screenshot");
        let name = format!("{}-{:02}-{page}.png", self.test, self.shots);
        std::fs::write(self.folder.join(name), &png).expect("the screenshot is saved");
        png
    }

    /// Saves a screenshot of one element, numbered like the pages.
    async fn element_shot(&mut self, selector: &str, name: &str) -> Vec<u8> {
        self.shots += 1;
        let png = self
            .find(selector)
            .await
            .screenshot()
            .await
            .expect("an element screenshot");
        let file = format!("{}-{:02}-{name}.png", self.test, self.shots);
        std::fs::write(self.folder.join(file), &png).expect("the screenshot is saved");
        png
    }

    /// The password step through the form.
    pub(crate) async fn sign_in(&mut self, username: &str, password: &str, shot: bool) {
        self.goto("/signin").await;
        self.page("signin").await;
        self.type_into("#username", username).await;
        self.type_into("#password", password).await;
        if shot {
            self.shot("signin").await;
        }
        self.submit("form[action='/signin'] button[type='submit']")
            .await;
    }

    /// Clicks `selector` and waits until the browser has left the page it was on: a form
    /// answered by a page of the same name (a refused sign-in) would otherwise race the
    /// next read, which then finds the old page or an element that is going away.
    pub(crate) async fn submit(&self, selector: &str) {
        let before = self.find("html").await;
        self.click(selector).await;
        let step = Duration::from_millis(20);
        for _ in 0..(PAGE_TIMEOUT.as_millis() / step.as_millis()) {
            if before.tag_name().await.is_err() {
                return;
            }
            tokio::time::sleep(step).await;
        }
        panic!("{selector}: the browser stayed on the page");
    }

    /// The administrator, signed in through the forms, 2-step set-up offered and put off.
    pub(crate) async fn sign_in_admin(&mut self, app: &TestApp) {
        self.sign_in("admin", &app.admin_password, false).await;
        self.page("enroll").await;
        self.click("form[action='/signin/enroll/skip'] button")
            .await;
        self.page("home").await;
    }

    async fn sign_out(&self) {
        self.click("form[action='/signout'] button").await;
        self.page("signin").await;
        assert!(self.body().await.contains("You have signed out."));
    }

    pub(crate) async fn finish(self) {
        let _ = self.client.close().await;
    }
}

/// Reads the QR code in a PNG as an authenticator app's camera would.
fn decode_qr(png: &[u8]) -> String {
    let image = image::load_from_memory(png)
        .expect("a PNG screenshot")
        .to_luma8();
    let (width, height) = image.dimensions();
    let mut prepared =
        rqrr::PreparedImage::prepare_from_greyscale(width as usize, height as usize, |x, y| {
            image.get_pixel(x as u32, y as u32)[0]
        });
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the screenshot");
    let (_, content) = grids[0].decode().expect("the QR code decodes");
    content
}

fn code_at(app: &TestApp, totp: &Totp) -> String {
    totp.generate_at(app.clock.now_ts().unix_seconds())
        .as_str()
        .to_owned()
}

#[tokio::test]
async fn encourage_set_up_later_signs_in_and_asks_again_next_time() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let app = spawn_app().await;
    let role = app
        .role("Nurses", Require2fa::Encourage, false, false)
        .await;
    app.user("jane", &role, true).await;
    let Some(mut browser) = browser(&app, "encourage", 1024, 1000).await else {
        return;
    };
    let password = TestApp::password_of("jane");

    browser.sign_in("jane", &password, true).await;
    browser.page("enroll").await;
    let enroll = browser.body().await;
    assert!(
        enroll.contains("Every Login (Maximum Security)"),
        "{enroll}"
    );
    assert!(enroll.contains("When the system deems appropriate (More Security)"));
    assert!(enroll.contains("Set up later"));
    browser.shot("enroll").await;

    browser
        .click("form[action='/signin/enroll/skip'] button")
        .await;
    browser.page("home").await;
    let session = browser
        .client
        .get_named_cookie("twostep_session")
        .await
        .expect("a session cookie");
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(
        session.same_site().map(|same_site| same_site.to_string()),
        Some("Lax".to_owned())
    );
    assert_eq!(browser.text("#username").await, "jane");
    assert_eq!(browser.text("#role").await, "Nurses");
    assert_eq!(browser.text("#two-step").await, "Not Enabled");
    browser.shot("signed-in").await;

    browser.sign_out().await;
    browser.shot("signed-out").await;

    browser.sign_in("jane", &password, false).await;
    browser.page("enroll").await;
    assert!(browser.body().await.contains("Set up later"));
    browser.shot("enroll-again").await;
    browser.finish().await;
}

#[tokio::test]
async fn force_sets_up_totp_from_the_qr_code_and_signs_in_with_it_next_time() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let app = spawn_app().await;
    let role = app.role("Doctors", Require2fa::Force, false, false).await;
    app.user("jane", &role, true).await;
    let Some(mut browser) = browser(&app, "force", 1024, 1000).await else {
        return;
    };
    let password = TestApp::password_of("jane");

    browser.sign_in("jane", &password, true).await;
    browser.page("enroll").await;
    let enroll = browser.body().await;
    assert!(!enroll.contains("Set up later"), "Force: {enroll}");
    browser.click("#prompt-every_login").await;
    browser.shot("enroll").await;
    browser.click("form[action='/signin/enroll'] button").await;

    browser.page("setup").await;
    browser.shot("setup").await;
    // The app scans the code: decoded from pixels, never from the page's text.
    let qr = browser.element_shot(".qr svg", "qr").await;
    let uri = decode_qr(&qr);
    let totp = crate::helpers::totp_of(&uri);
    let key = KeyUri::parse(&uri).unwrap();
    assert_eq!(key.issuer.as_deref(), Some("St. Elsewhere"));
    assert_eq!(key.account, "jane");
    let manual: String = browser
        .text("#manual-key")
        .await
        .split_whitespace()
        .collect();
    assert_eq!(
        manual,
        totp.secret.to_base32(),
        "the manual key is the same"
    );

    browser.type_into("#code", &code_at(&app, &totp)).await;
    browser.shot("setup-code").await;
    browser
        .click("form[action='/signin/enroll/confirm'] button")
        .await;
    // SPEC 10: the first set of recovery codes, shown once, then Continue.
    browser.page("recovery-codes").await;
    let codes = browser.text("#recovery-codes").await;
    assert_eq!(codes.lines().count(), 10, "{codes}");
    assert!(codes
        .lines()
        .all(|code| twostep::domain::RecoveryCode::parse(code.trim()).is_ok()));
    // Print appears: the script file ran under the CSP.
    assert!(browser
        .find("#print-codes")
        .await
        .is_displayed()
        .await
        .unwrap());
    browser.shot("recovery-codes").await;
    browser.click("#continue").await;
    browser.page("home").await;
    assert_eq!(browser.text("#two-step").await, "Enabled");
    browser.shot("signed-in").await;
    browser.sign_out().await;

    // Next sign-in: a fresh code of the next time step.
    app.clock.advance_seconds(30);
    browser.sign_in("jane", &password, false).await;
    browser.page("verify").await;
    assert!(browser
        .body()
        .await
        .contains("Enter the 6-digit code from your authenticator app"));
    browser.type_into("#code", &code_at(&app, &totp)).await;
    browser.shot("verify").await;
    browser.click("form[action='/signin/verify'] button").await;
    browser.page("home").await;
    assert_eq!(browser.text("#two-step").await, "Enabled");
    browser.shot("signed-in-again").await;
    browser.finish().await;
}

#[tokio::test]
async fn an_emailed_code_signs_in_and_a_wrong_one_is_refused_on_a_phone_sized_screen() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let app = spawn_app().await;
    let role = app.role("Clerks", Require2fa::No, true, false).await;
    app.user("jane", &role, true).await;
    let Some(mut browser) = browser(&app, "email", 390, 844).await else {
        return;
    };

    browser
        .sign_in("jane", &TestApp::password_of("jane"), true)
        .await;
    browser.page("verify").await;
    let code = app.last_emailed_code().await;
    browser.goto("/signin/verify").await; // shown again now that the email is out
    browser.page("verify").await;
    let page = browser.body().await;
    assert!(
        page.contains("A code was sent to j***@example.org"),
        "{page}"
    );
    assert!(page.contains("Send a new code"));
    browser.shot("verify").await;

    let wrong = if code == "000000" { "111111" } else { "000000" };
    browser.type_into("#code", wrong).await;
    browser.click("form[action='/signin/verify'] button").await;
    let error = browser.text(".notice.error").await;
    assert!(error.contains("That code is not correct"), "{error}");
    browser.shot("wrong-code").await;

    browser.type_into("#code", &code).await;
    browser.click("form[action='/signin/verify'] button").await;
    browser.page("home").await;
    assert_eq!(browser.text("#username").await, "jane");
    browser.shot("signed-in").await;
    browser.finish().await;
}

#[tokio::test]
async fn the_less_common_pages_read_calmly_on_a_phone() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let app = spawn_app().await;
    app.settings(&[(twostep::domain::SettingKey::Use2fa, "3")])
        .await;
    let role = app
        .role("Porters", Require2fa::Encourage, false, false)
        .await;
    let user = app.user("jane", &role, true).await;
    let temporary = "temporary password 1";
    app.set_temporary_password(&user, temporary).await;
    let clerks = app.role("Clerks", Require2fa::No, true, false).await;
    app.user("sam", &clerks, true).await;
    let Some(mut browser) = browser(&app, "other", 390, 844).await else {
        return;
    };

    // The bootstrap password is replaced first (after any code, before set-up); the two
    // fields must match.
    browser.sign_in("jane", temporary, false).await;
    browser.page("change-password").await;
    browser.shot("change-password").await;
    browser
        .type_into("#new_password", "a much better password")
        .await;
    browser
        .type_into("#confirm_password", "a much better passwork")
        .await;
    browser
        .click("form[action='/signin/change-password'] button")
        .await;
    let error = browser.text(".notice.error").await;
    assert!(error.contains("not the same"), "{error}");
    browser.shot("passwords-differ").await;
    browser
        .type_into("#new_password", "a much better password")
        .await;
    browser
        .type_into("#confirm_password", "a much better password")
        .await;
    browser
        .click("form[action='/signin/change-password'] button")
        .await;

    // Then Use 2FA = 3: the user chooses the method.
    browser.page("enroll").await;
    let enroll = browser.body().await;
    assert!(enroll.contains("TOTP (time based)") && enroll.contains("HOTP (counter based)"));
    browser.click("#method-hotp").await;
    browser.click("#prompt-when_appropriate").await;
    browser.shot("enroll-methods").await;
    browser.click("form[action='/signin/enroll'] button").await;
    browser.page("setup").await;
    assert!(browser.body().await.contains("counter based"));
    browser.shot("setup-hotp").await;
    browser.goto("/signin/enroll").await;
    browser.page("enroll").await;
    browser
        .click("form[action='/signin/enroll/skip'] button")
        .await;
    browser.page("home").await;
    browser.sign_out().await;

    // A form whose token is gone is refused, calmly, and nothing happens.
    browser.goto("/signin").await;
    browser.page("signin").await;
    browser
        .client
        .delete_cookie("twostep_csrf")
        .await
        .expect("the cookie is removed");
    browser.type_into("#username", "jane").await;
    browser
        .type_into("#password", "a much better password")
        .await;
    browser
        .click("form[action='/signin'] button[type='submit']")
        .await;
    browser.page("problem").await;
    assert!(browser
        .body()
        .await
        .contains("This form has expired; please go back and try again"));
    browser.shot("form-expired").await;
    browser.goto("/").await;
    browser.page("signin").await;

    // A second sign-in within the request delay: nothing sent yet, and when it can be.
    browser
        .sign_in("sam", &TestApp::password_of("sam"), false)
        .await;
    browser.page("verify").await;
    app.clock.advance_seconds(12);
    browser
        .sign_in("sam", &TestApp::password_of("sam"), false)
        .await;
    browser.page("verify").await;
    let page = browser.body().await;
    assert!(
        page.contains("You can request a new code in 18 seconds."),
        "{page}"
    );
    browser.shot("verify-wait").await;
    browser.finish().await;
}

/// Signs `username` in through the JSON API with the code `code` (when asked); whether a
/// session came back.
async fn api_signs_in_with(app: &TestApp, username: &str, code: &str) -> bool {
    let (_, answer) = app
        .post(
            "/api/v1/signin",
            json!({ "username": username, "password": TestApp::password_of(username) }),
        )
        .await;
    assert_eq!(answer["status"], "otp_required", "{answer}");
    let (_, done) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": answer["transaction"], "code": code }),
        )
        .await;
    done["status"] == "signed_in"
}

/// Create on the Setup page (prompt mode "When the system deems appropriate"), then the
/// app scans the QR code: decoded from the screenshot's pixels.
async fn admin_creates_device(browser: &mut Browser, shot: &str) -> Totp {
    browser.page("admin-user-setup").await;
    browser.click("#prompt-when_appropriate").await;
    browser.shot(&format!("{shot}-setup")).await;
    browser.click("#create").await;
    browser.page("admin-user-qr").await;
    browser.shot(&format!("{shot}-qr-page")).await;
    let qr = browser.element_shot(".qr svg", &format!("{shot}-qr")).await;
    let uri = decode_qr(&qr);
    let key = KeyUri::parse(&uri).unwrap();
    assert_eq!(key.account, "jane");
    crate::helpers::totp_of(&uri)
}

#[tokio::test]
async fn the_administrator_procedures_of_the_seed_in_the_console() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let app = crate::helpers::spawn_app_with(crate::helpers::AppOptions {
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        ..Default::default()
    })
    .await;
    let role = app.role("Doctors", Require2fa::Force, false, false).await;
    app.user("jane", &role, true).await;
    let bob = app.user("bob", &role, true).await;
    let bob_totp = app
        .enroll_totp(&bob, twostep::domain::PromptMode::EveryLogin)
        .await;
    let Some(mut browser) = browser(&app, "admin", 1100, 1000).await else {
        return;
    };

    // Sign in as the administrator (System Administrator encourages 2FA: set up later).
    let password = app.admin_password.clone();
    browser.sign_in("admin", &password, false).await;
    browser.page("enroll").await;
    browser
        .click("form[action='/signin/enroll/skip'] button")
        .await;
    browser.page("home").await;
    browser.click("#admin-link").await;
    // The console home: jane (Force, no device) needs attention.
    browser.page("admin-home").await;
    browser.shot("needs-attention").await;
    browser.click("nav.admin-nav a[href='/admin/users']").await;
    browser.page("admin-users").await;
    browser.shot("users").await;

    // Access Control -> Edit User -> Setup.
    browser.click("a[href='/admin/users/jane']").await;
    browser.page("admin-user-edit").await;
    assert_eq!(
        browser.text("#two-step").await,
        "2 Step Verification: Not Enabled"
    );
    browser.shot("edit-user").await;
    browser.click("#two-step-setup").await;
    let first = admin_creates_device(&mut browser, "first").await;
    browser.type_into("#code", &code_at(&app, &first)).await;
    browser.click("#complete-setup").await;
    browser.page("admin-user-edit").await;
    assert_eq!(
        browser.text("#notice").await,
        "2 Step Verification was successfully set up for jane"
    );
    assert_eq!(
        browser.text("#two-step").await,
        "2 Step Verification: Enabled"
    );
    browser.shot("setup-done").await;

    // Change -> Disable -> confirm.
    browser.click("#two-step-change").await;
    browser.page("admin-user-change").await;
    browser.shot("change").await;
    browser.click("#disable").await;
    browser.page("admin-user-disable").await;
    browser.shot("disable-confirm").await;
    browser.click("#confirm-disable").await;
    browser.page("admin-user-edit").await;
    assert_eq!(
        browser.text("#notice").await,
        "2 Step Verification is now disabled for jane. They should remove the account from \
         their authenticator app."
    );
    assert_eq!(
        browser.text("#two-step").await,
        "2 Step Verification: Not Enabled"
    );
    browser.shot("disabled").await;

    // Setup again, then Change -> Setup New Device.
    app.clock.advance_seconds(30);
    browser.click("#two-step-setup").await;
    let old = admin_creates_device(&mut browser, "again").await;
    browser.type_into("#code", &code_at(&app, &old)).await;
    browser.click("#complete-setup").await;
    browser.page("admin-user-edit").await;
    assert!(browser
        .text("#notice")
        .await
        .contains("successfully set up"));
    browser.click("#two-step-change").await;
    browser.page("admin-user-change").await;
    browser.click("#setup-new-device").await;
    let new = admin_creates_device(&mut browser, "new-device").await;

    // Until the new device is confirmed, the old one still signs jane in.
    app.clock.advance_seconds(30);
    assert!(api_signs_in_with(&app, "jane", &code_at(&app, &old)).await);
    app.clock.advance_seconds(30);
    browser.type_into("#code", &code_at(&app, &new)).await;
    browser.click("#complete-setup").await;
    browser.page("admin-user-edit").await;
    assert_eq!(
        browser.text("#notice").await,
        "2 Step Verification was successfully set up for jane"
    );
    // Then only the new one does.
    app.clock.advance_seconds(30);
    assert!(!api_signs_in_with(&app, "jane", &code_at(&app, &old)).await);
    assert!(api_signs_in_with(&app, "jane", &code_at(&app, &new)).await);

    // IP Settings: Add Acceptable IP Rule with Bypass 2FA.
    browser.goto("/admin/ip").await;
    browser.page("admin-ip").await;
    browser.type_into("#network", "10.20.0.0/16").await;
    browser.click("#bypass_2fa").await;
    browser.type_into("#note", "Ward 5").await;
    browser.shot("ip-add").await;
    browser.click("#add-ip-rule button[type='submit']").await;
    // The same page again: the rule table appears only after the rule was added.
    assert!(browser.text("#ip-rules").await.contains("10.20.0.0/16"));
    browser.shot("ip-listing").await;

    // System Settings: Enable Bypass 2FA OTP.
    browser.goto("/admin/settings").await;
    browser.page("admin-settings").await;
    browser.click("#bypass_enabled").await;
    browser.shot("settings").await;
    browser
        .click("form[action='/admin/settings'] button.primary")
        .await;
    // Turning the bypass on asks first (SPEC section 11).
    browser.page("admin-settings-confirm").await;
    browser.shot("settings-bypass-confirm").await;
    browser.click("#confirm").await;
    // The same page again: wait for its notice, which the page before did not have.
    assert_eq!(
        browser.text("p.notice.info").await,
        "The settings were saved."
    );
    assert!(app.store.settings().await.unwrap().bypass_enabled());

    // The remaining pages, for the record.
    for (path, page, name) in [
        ("/admin/roles", "admin-roles", "roles"),
        ("/admin/roles/Doctors", "admin-role-edit", "role-edit"),
        ("/admin/users/new", "admin-user-new", "user-new"),
        ("/admin/email", "admin-email", "email"),
        ("/admin/audit", "admin-audit", "audit"),
    ] {
        browser.goto(path).await;
        browser.page(page).await;
        browser.shot(name).await;
    }
    // On a phone: the navigation wraps and the tables scroll inside the card.
    browser
        .client
        .set_window_size(390, 844)
        .await
        .expect("window size");
    for (path, page, name) in [
        ("/admin/users", "admin-users", "phone-users"),
        ("/admin/users/jane", "admin-user-edit", "phone-edit-user"),
        ("/admin/ip", "admin-ip", "phone-ip"),
    ] {
        browser.goto(path).await;
        browser.page(page).await;
        browser.shot(name).await;
    }
    browser.finish().await;

    // In network through the trusted proxy: the "When the system deems appropriate"
    // device skips the code; the "Every Login" one does not.
    let inside = [("X-Forwarded-For", "10.20.0.5")];
    let (_, jane) = app
        .post_with(
            "/api/v1/signin",
            json!({ "username": "jane", "password": TestApp::password_of("jane") }),
            &inside,
        )
        .await;
    assert_eq!(jane["status"], "signed_in", "{jane}");
    let (_, bob) = app
        .post_with(
            "/api/v1/signin",
            json!({ "username": "bob", "password": TestApp::password_of("bob") }),
            &inside,
        )
        .await;
    assert_eq!(bob["status"], "otp_required", "{bob}");
    let (_, done) = app
        .post_with(
            "/api/v1/signin/otp",
            json!({ "transaction": bob["transaction"], "code": code_at(&app, &bob_totp) }),
            &inside,
        )
        .await;
    assert_eq!(done["status"], "signed_in", "{done}");
}
