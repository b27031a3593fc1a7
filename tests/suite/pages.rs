//! The HTML pages through real HTTP (SPEC sections 3, 4 and 5 as a browser sees them):
//! forms, redirects, cookies, CSRF, wording. The client keeps cookies and does not follow
//! redirects, so every step is checked.

use reqwest::header::{HeaderMap, CACHE_CONTROL, CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use reqwest::{Response, StatusCode};
use twostep::domain::{PromptMode, Require2fa, SettingKey, User};

use crate::helpers::{spawn_app, TestApp};

/// A page as the tests read it.
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub async fn of(response: Response) -> Self {
        Self {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.expect("a body"),
        }
    }

    pub fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .map(|value| value.to_str().unwrap())
            .unwrap_or_else(|| panic!("no Location on a {} answer", self.status))
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|value| value.to_str().unwrap().to_owned())
            .collect()
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies()
            .into_iter()
            .find(|cookie| cookie.starts_with(&format!("{name}=")))
    }

    /// The CSRF token of the page's forms.
    pub fn csrf(&self) -> String {
        let marker = r#"name="csrf" value=""#;
        let start =
            self.body.find(marker).unwrap_or_else(|| {
                panic!("a CSRF field in a {} page:\n{}", self.status, self.body)
            }) + marker.len();
        let end = start + self.body[start..].find('"').unwrap();
        self.body[start..end].to_owned()
    }

    pub fn assert_contains(&self, text: &str) {
        assert!(
            self.body.contains(text),
            "the page should contain {text:?}:\n{}",
            self.body
        );
    }
}

pub async fn get(app: &TestApp, path: &str) -> Page {
    Page::of(
        app.client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .expect("request sent"),
    )
    .await
}

pub async fn post(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> Page {
    Page::of(
        app.client
            .post(format!("{}{path}", app.address))
            .form(fields)
            .send()
            .await
            .expect("request sent"),
    )
    .await
}

/// Posts a form of the page at `form_page` with its CSRF token.
pub async fn submit(app: &TestApp, form_page: &str, action: &str, fields: &[(&str, &str)]) -> Page {
    let token = get(app, form_page).await.csrf();
    let mut all = vec![("csrf", token.as_str())];
    all.extend_from_slice(fields);
    post(app, action, &all).await
}

/// The password step through the sign-in form.
pub async fn sign_in(app: &TestApp, username: &str, password: &str) -> Page {
    submit(
        app,
        "/signin",
        "/signin",
        &[("username", username), ("password", password)],
    )
    .await
}

pub(crate) async fn user_in_role(app: &TestApp, require: Require2fa, otp_required: bool) -> User {
    let role = app.role("Nurses", require, otp_required, false).await;
    app.user("jane", &role, true).await
}

#[tokio::test]
async fn the_sign_in_form_renders_with_labels_and_a_csrf_field() {
    let app = spawn_app().await;
    let page = get(&app, "/signin").await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_contains(r#"<label for="username">Username</label>"#);
    page.assert_contains(r#"<label for="password">Password</label>"#);
    page.assert_contains(r#"<meta name="viewport""#);
    page.assert_contains(r#"<link rel="stylesheet" href="/static/style.css">"#);
    page.assert_contains("St. Elsewhere");
    assert!(!page.body.contains("<script"));
    assert!(page.csrf().len() >= 32);
    let cookie = page.cookie("twostep_csrf").expect("the CSRF cookie is set");
    assert!(
        !cookie.contains(&page.csrf()),
        "the token is a MAC of the cookie, not the cookie"
    );
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    // The second visit keeps the token of the cookie.
    let again = get(&app, "/signin").await;
    assert_eq!(again.csrf(), page.csrf());
    assert!(again.cookie("twostep_csrf").is_none());
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_refused_and_signs_nobody_in() {
    let app = spawn_app().await;
    user_in_role(&app, Require2fa::No, false).await;
    let password = TestApp::password_of("jane");
    get(&app, "/signin").await; // the cookie exists; the field is missing or wrong
    for fields in [
        vec![("username", "jane"), ("password", password.as_str())],
        vec![
            ("csrf", "not-the-token"),
            ("username", "jane"),
            ("password", password.as_str()),
        ],
    ] {
        let page = post(&app, "/signin", &fields).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        page.assert_contains("This form has expired; please go back and try again");
        assert!(page.cookie("twostep_session").is_none());
        assert!(page.cookie("twostep_tx").is_none());
    }
    let home = get(&app, "/").await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.location(), "/signin");
    // Sign out without the token does not sign out either.
    sign_in(&app, "jane", &password).await;
    let refused = post(&app, "/signout", &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(get(&app, "/").await.status, StatusCode::OK);
}

/// A browser of its own (no cookie jar): the requests carry exactly the cookies given.
pub(crate) fn bare_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// POSTs `fields` with exactly `cookies` (and `extra` headers), as a browser whose cookies
/// someone else planted would.
pub async fn post_with_cookies(
    app: &TestApp,
    path: &str,
    cookies: &str,
    extra: &[(&str, &str)],
    fields: &[(&str, &str)],
) -> Page {
    let mut request = bare_client()
        .post(format!("{}{path}", app.address))
        .header("cookie", cookies)
        .form(fields);
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    Page::of(request.send().await.expect("request sent")).await
}

/// The value of cookie `name` in a `Set-Cookie` of `page`.
pub fn cookie_value(page: &Page, name: &str) -> String {
    let cookie = page
        .cookie(name)
        .unwrap_or_else(|| panic!("no {name} cookie"));
    let value = cookie[name.len() + 1..].split(';').next().unwrap();
    value.to_owned()
}

fn assert_form_expired(page: &Page) {
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    page.assert_contains("This form has expired; please go back and try again");
    assert!(page.cookie("twostep_session").is_none());
    assert!(page.cookie("twostep_tx").is_none());
}

#[tokio::test]
async fn a_planted_csrf_cookie_and_matching_field_are_refused_at_sign_in() {
    let app = spawn_app().await;
    user_in_role(&app, Require2fa::No, false).await;
    let password = TestApp::password_of("jane");
    let with_token = |csrf: &str| -> Vec<(String, String)> {
        [
            ("csrf", csrf),
            ("username", "jane"),
            ("password", &password),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    // What a sibling host under the cookie domain could plant: any value, in both.
    for planted in ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "x"] {
        let fields = with_token(planted);
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (&**k, &**v)).collect();
        let cookie = format!("twostep_csrf={planted}");
        let page = post_with_cookies(&app, "/signin", &cookie, &[], &fields).await;
        assert_form_expired(&page);
    }
    // A genuine pair fetched by another browser, tossed at this one from a sibling host:
    // the browser says the form came from another origin.
    let theirs = Page::of(
        bare_client()
            .get(format!("{}/signin", app.address))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let cookie = format!("twostep_csrf={}", cookie_value(&theirs, "twostep_csrf"));
    let tossed = with_token(&theirs.csrf());
    let tossed: Vec<(&str, &str)> = tossed.iter().map(|(k, v)| (&**k, &**v)).collect();
    for site in ["same-site", "cross-site"] {
        let page = post_with_cookies(
            &app,
            "/signin",
            &cookie,
            &[("sec-fetch-site", site)],
            &tossed,
        )
        .await;
        assert_form_expired(&page);
    }
    // The genuine pair from twostep's own page still signs in.
    let page = post_with_cookies(
        &app,
        "/signin",
        &cookie,
        &[("sec-fetch-site", "same-origin")],
        &tossed,
    )
    .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(page.cookie("twostep_session").is_some());
    app.stop().await;
}

#[tokio::test]
async fn the_csrf_token_shown_before_sign_in_no_longer_works_after_it() {
    let app = spawn_app().await;
    user_in_role(&app, Require2fa::No, true).await;
    let before = get(&app, "/signin").await.csrf();
    let password = TestApp::password_of("jane");
    let answer = post(
        &app,
        "/signin",
        &[
            ("csrf", &before),
            ("username", "jane"),
            ("password", &password),
        ],
    )
    .await;
    assert_eq!(answer.location(), "/signin/verify");
    let code = app.last_emailed_code().await;
    // The code step has a token of its own: the sign-in page's is refused there.
    let refused = post(
        &app,
        "/signin/verify",
        &[("csrf", &before), ("code", &code)],
    )
    .await;
    assert_form_expired(&refused);
    let during = get(&app, "/signin/verify").await.csrf();
    assert_ne!(during, before);
    let done = post(
        &app,
        "/signin/verify",
        &[("csrf", &during), ("code", &code)],
    )
    .await;
    assert_eq!(done.location(), "/", "{}", done.body);

    // Signed in: neither earlier token works, the signed-in page's does.
    let home = get(&app, "/").await;
    home.assert_contains("You are signed in");
    let after = home.csrf();
    assert!(after != before && after != during);
    for stale in [&before, &during] {
        let refused = post(&app, "/signout", &[("csrf", stale)]).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert_eq!(
            get(&app, "/").await.status,
            StatusCode::OK,
            "still signed in"
        );
    }
    let out = post(&app, "/signout", &[("csrf", &after)]).await;
    assert_eq!(out.location(), "/signin?m=signed_out");
    // Signed out: the session's token is refused too, and the form has a new one.
    let signin = get(&app, "/signin").await;
    assert_ne!(signin.csrf(), after);
    let refused = post(
        &app,
        "/signin",
        &[
            ("csrf", &after),
            ("username", "jane"),
            ("password", &password),
        ],
    )
    .await;
    assert_form_expired(&refused);
    app.stop().await;
}

#[tokio::test]
async fn a_password_only_sign_in_through_the_forms_reaches_the_signed_in_page() {
    let app = spawn_app().await;
    user_in_role(&app, Require2fa::No, false).await;
    let signed_in = sign_in(&app, "JANE", &TestApp::password_of("jane")).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_in.location(), "/");
    let session = signed_in.cookie("twostep_session").expect("a session");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax"));
    assert!(!session.contains("Secure"), "plain http in tests");

    let home = get(&app, "/").await;
    assert_eq!(home.status, StatusCode::OK);
    home.assert_contains("You are signed in");
    home.assert_contains(r#"<dd id="display-name">jane Display</dd>"#);
    home.assert_contains(r#"<dd id="username">jane</dd>"#);
    home.assert_contains(r#"<dd id="role">Nurses</dd>"#);
    home.assert_contains(r#"<dd id="two-step">Not Enabled</dd>"#);

    let out = submit(&app, "/", "/signout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), "/signin?m=signed_out");
    assert!(out.cookie("twostep_session").unwrap().contains("Max-Age=0"));
    get(&app, "/signin?m=signed_out")
        .await
        .assert_contains("You have signed out.");
    assert_eq!(get(&app, "/").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn every_sign_in_gets_a_new_session_id() {
    let app = spawn_app().await;
    user_in_role(&app, Require2fa::No, false).await;
    let first = sign_in(&app, "jane", &TestApp::password_of("jane")).await;
    let second = sign_in(&app, "jane", &TestApp::password_of("jane")).await;
    assert_ne!(
        first.cookie("twostep_session").unwrap(),
        second.cookie("twostep_session").unwrap()
    );
}

#[tokio::test]
async fn a_wrong_password_shows_the_generic_message_and_keeps_the_username() {
    let app = spawn_app().await;
    user_in_role(&app, Require2fa::No, false).await;
    let wrong = sign_in(&app, "jane", "not her password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    wrong.assert_contains("The username or password is not correct.");
    wrong.assert_contains(r#"value="jane""#);
    let unknown = sign_in(&app, "nobody", "not her password").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.body.replace("jane", "nobody"),
        unknown.body,
        "an unknown user reads the same"
    );
}

#[tokio::test]
async fn what_a_user_typed_is_escaped_on_the_page() {
    let app = spawn_app().await;
    let typed = r#""><script>alert(1)</script>"#;
    let page = sign_in(&app, typed, "whatever password").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(!page.body.contains("<script>"), "{}", page.body);
    page.assert_contains("&#34;&#62;&#60;script&#62;");
}

#[tokio::test]
async fn pages_carry_the_security_headers_and_the_stylesheet_is_cacheable() {
    let app = spawn_app().await;
    for path in ["/signin", "/signin/verify", "/"] {
        let page = get(&app, path).await;
        let csp = page.headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        assert_eq!(page.headers[CACHE_CONTROL], "no-store", "{path}");
        assert_eq!(page.headers["x-frame-options"], "DENY", "{path}");
    }
    let css = get(&app, "/static/style.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.headers[CACHE_CONTROL], "public, max-age=3600");
    assert_eq!(css.headers["content-type"], "text/css; charset=utf-8");
    assert!(css.body.contains(".qr svg"));
}

#[tokio::test]
async fn force_offers_no_set_up_later_and_encourage_does() {
    for (require, offered) in [(Require2fa::Force, false), (Require2fa::Encourage, true)] {
        let app = spawn_app().await;
        user_in_role(&app, require, false).await;
        let answer = sign_in(&app, "jane", &TestApp::password_of("jane")).await;
        assert_eq!(answer.location(), "/signin/enroll");
        assert!(answer.cookie("twostep_tx").is_some());
        let page = get(&app, "/signin/enroll").await;
        assert_eq!(page.status, StatusCode::OK);
        page.assert_contains("Set up 2-step verification");
        page.assert_contains(">Create</button>");
        assert_eq!(
            page.body.contains("Set up later"),
            offered,
            "{require:?}: {}",
            page.body
        );
        assert_eq!(
            page.body.contains(r#"action="/signin/enroll/skip""#),
            offered
        );
        if !offered {
            // A forged "Set up later" is refused and nothing is skipped.
            let refused = submit(&app, "/signin/enroll", "/signin/enroll/skip", &[]).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN);
            refused.assert_contains("must be set up");
            assert!(refused.cookie("twostep_session").is_none());
        } else {
            let skipped = submit(&app, "/signin/enroll", "/signin/enroll/skip", &[]).await;
            assert_eq!(skipped.location(), "/");
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn the_enroll_page_shows_the_seed_prompt_labels_and_the_method_choice_only_for_use_2fa_3() {
    let app = spawn_app().await;
    user_in_role(&app, Require2fa::Force, false).await;
    sign_in(&app, "jane", &TestApp::password_of("jane")).await;
    let page = get(&app, "/signin/enroll").await;
    for mode in [PromptMode::EveryLogin, PromptMode::WhenAppropriate] {
        page.assert_contains(&format!(
            r#"<label for="prompt-{}">{}</label>"#,
            mode.as_str(),
            mode.label()
        ));
    }
    page.assert_contains("Every Login (Maximum Security)");
    page.assert_contains("When the system deems appropriate (More Security)");
    page.assert_contains(r#"<input type="hidden" name="method" value="totp">"#);
    assert!(!page.body.contains(r#"type="radio" id="method-"#));

    app.settings(&[(SettingKey::Use2fa, "3")]).await;
    let both = get(&app, "/signin/enroll").await;
    both.assert_contains(r#"<label for="method-totp">TOTP (time based)</label>"#);
    both.assert_contains(r#"<label for="method-hotp">HOTP (counter based)</label>"#);
}

#[tokio::test]
async fn create_shows_the_qr_code_and_a_wrong_setup_code_shows_it_again_with_an_error() {
    let app = spawn_app().await;
    user_in_role(&app, Require2fa::Force, false).await;
    sign_in(&app, "jane", &TestApp::password_of("jane")).await;
    let created = submit(
        &app,
        "/signin/enroll",
        "/signin/enroll",
        &[("method", "totp"), ("prompt_mode", "every_login")],
    )
    .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER);
    assert_eq!(created.location(), "/signin/enroll/confirm");
    let setup = get(&app, "/signin/enroll/confirm").await;
    assert_eq!(setup.status, StatusCode::OK);
    setup.assert_contains("<svg");
    assert!(!setup.body.contains("<?xml"));
    setup.assert_contains(">Complete Setup</button>");
    let key: Vec<&str> = {
        let start = setup.body.find(r#"id="manual-key">"#).unwrap();
        let end = start + setup.body[start..].find("</p>").unwrap();
        setup.body[start..end]
            .split("<span>")
            .skip(1)
            .map(|group| group.split('<').next().unwrap())
            .collect()
    };
    assert_eq!(key.len(), 8, "32 characters in groups of four: {key:?}");
    assert!(key.iter().all(|group| group.len() == 4));
    let key = key.join("</span> <span>");

    let wrong = submit(
        &app,
        "/signin/enroll/confirm",
        "/signin/enroll/confirm",
        &[("code", "000000")],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    wrong.assert_contains("That code is not correct.");
    wrong.assert_contains("<svg");
    wrong.assert_contains(&key);
}

#[tokio::test]
async fn a_wrong_device_code_shows_the_page_again_and_the_right_one_signs_in() {
    let app = spawn_app().await;
    let user = user_in_role(&app, Require2fa::Force, false).await;
    let totp = app.enroll_totp(&user, PromptMode::EveryLogin).await;
    let answer = sign_in(&app, "jane", &TestApp::password_of("jane")).await;
    assert_eq!(answer.location(), "/signin/verify");
    let page = get(&app, "/signin/verify").await;
    page.assert_contains("Enter the 6-digit code from your authenticator app");
    assert!(!page.body.contains("Send a new code"));
    let wrong = submit(
        &app,
        "/signin/verify",
        "/signin/verify",
        &[("code", "000000")],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    wrong.assert_contains("That code is not correct");
    wrong.assert_contains(r#"<label for="code">Code</label>"#);
    let code = app.totp_now(&totp);
    let done = submit(&app, "/signin/verify", "/signin/verify", &[("code", &code)]).await;
    assert_eq!(done.location(), "/");
    assert!(done.cookie("twostep_tx").unwrap().contains("Max-Age=0"));
    get(&app, "/")
        .await
        .assert_contains(r#"<dd id="two-step">Enabled</dd>"#);
}

#[tokio::test]
async fn the_emailed_code_page_names_the_masked_address_and_the_refused_resend_the_seconds() {
    let app = spawn_app().await;
    user_in_role(&app, Require2fa::No, true).await;
    let answer = sign_in(&app, "jane", &TestApp::password_of("jane")).await;
    assert_eq!(answer.location(), "/signin/verify");
    // Delivered first: while an attempt is under way the page says it is still sending.
    assert_eq!(app.mails().await.len(), 1);
    let page = get(&app, "/signin/verify").await;
    page.assert_contains("A code was sent to j***@example.org");
    page.assert_contains(">Send a new code</button>");
    page.assert_contains(r#"action="/signin/resend""#);

    app.clock.advance_seconds(12);
    let refused = submit(&app, "/signin/verify", "/signin/resend", &[]).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    refused.assert_contains("You can request a new code in 18 seconds");
    assert_eq!(app.mails().await.len(), 1);

    app.clock.advance_seconds(18);
    let sent = submit(&app, "/signin/verify", "/signin/resend", &[]).await;
    assert_eq!(sent.location(), "/signin/verify?sent=1");
    let code = app.last_emailed_code().await;
    assert_eq!(app.mails().await.len(), 2);
    get(&app, "/signin/verify?sent=1")
        .await
        .assert_contains("A new code was sent to j***@example.org");
    let done = submit(&app, "/signin/verify", "/signin/verify", &[("code", &code)]).await;
    assert_eq!(done.location(), "/");
}

#[tokio::test]
async fn a_new_sign_in_within_the_request_delay_says_when_a_code_can_be_requested() {
    let app = spawn_app().await;
    user_in_role(&app, Require2fa::No, true).await;
    sign_in(&app, "jane", &TestApp::password_of("jane")).await;
    app.clock.advance_seconds(12);
    let second = sign_in(&app, "jane", &TestApp::password_of("jane")).await;
    assert_eq!(second.location(), "/signin/verify?wait=18");
    let page = get(&app, second.location()).await;
    page.assert_contains("No code was sent for this sign-in yet");
    page.assert_contains("You can request a new code in 18 seconds.");
    page.assert_contains(">Send a new code</button>");
}

#[tokio::test]
async fn a_delayed_delivery_shows_a_calm_still_sending_notice() {
    let app = spawn_app().await;
    user_in_role(&app, Require2fa::No, true).await;
    // The mail folder cannot be written: the first delivery attempt fails and is retried.
    let folder = app.dir.path().join("mail");
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::write(&folder, "not a folder").unwrap();
    sign_in(&app, "jane", &TestApp::password_of("jane")).await;
    // Wait (bounded) for the server's outbox worker to make its attempt.
    let mut page = get(&app, "/signin/verify").await;
    for _ in 0..250 {
        if page.body.contains("We are still sending your code") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        page = get(&app, "/signin/verify").await;
    }
    assert_eq!(page.status, StatusCode::OK);
    page.assert_contains("We are still sending your code to j***@example.org.");
    assert!(!page.body.contains(r#"class="notice error""#));
}

#[tokio::test]
async fn an_email_otp_without_an_address_asks_to_contact_an_administrator() {
    let app = spawn_app().await;
    let role = app.role("Clerks", Require2fa::No, true, false).await;
    app.user("jane", &role, false).await;
    let page = sign_in(&app, "jane", &TestApp::password_of("jane")).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    page.assert_contains("contact an administrator");
    page.assert_contains(r#"value="jane""#);
}

#[tokio::test]
async fn an_expired_or_missing_transaction_goes_back_to_the_password_with_a_message() {
    let app = spawn_app().await;
    user_in_role(&app, Require2fa::Force, false).await;
    for path in [
        "/signin/verify",
        "/signin/enroll",
        "/signin/enroll/confirm",
        "/signin/change-password",
    ] {
        let page = get(&app, path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(page.location(), "/signin?m=expired", "{path}");
    }
    sign_in(&app, "jane", &TestApp::password_of("jane")).await;
    assert_eq!(get(&app, "/signin/enroll").await.status, StatusCode::OK);
    app.clock.advance_seconds(30 * 60);
    let expired = get(&app, "/signin/enroll").await;
    assert_eq!(expired.location(), "/signin?m=expired");
    assert!(expired.cookie("twostep_tx").unwrap().contains("Max-Age=0"));
    let posted = submit(&app, "/signin", "/signin/enroll/skip", &[]).await;
    assert_eq!(posted.location(), "/signin?m=expired");
    get(&app, "/signin?m=expired")
        .await
        .assert_contains("Your sign-in has expired.");
}

#[tokio::test]
async fn a_page_of_another_step_redirects_to_the_current_one() {
    let app = spawn_app().await;
    user_in_role(&app, Require2fa::Encourage, false).await;
    sign_in(&app, "jane", &TestApp::password_of("jane")).await;
    let page = get(&app, "/signin/verify").await;
    assert_eq!(page.location(), "/signin/enroll");
    let posted = submit(&app, "/signin", "/signin/verify", &[("code", "123456")]).await;
    assert_eq!(posted.location(), "/signin/enroll");
}

#[tokio::test]
async fn a_bootstrap_password_must_be_changed_through_the_form() {
    let app = spawn_app().await;
    let user = user_in_role(&app, Require2fa::No, false).await;
    let temporary = "temporary password 1";
    app.set_temporary_password(&user, temporary).await;
    let answer = sign_in(&app, "jane", temporary).await;
    assert_eq!(answer.location(), "/signin/change-password");
    let page = get(&app, "/signin/change-password").await;
    page.assert_contains(r#"<label for="new_password">New password</label>"#);
    let differ = submit(
        &app,
        "/signin/change-password",
        "/signin/change-password",
        &[
            ("new_password", "a much better password"),
            ("confirm_password", "a much better passwork"),
        ],
    )
    .await;
    assert_eq!(differ.status, StatusCode::UNPROCESSABLE_ENTITY);
    differ.assert_contains("The two passwords are not the same.");
    let short = submit(
        &app,
        "/signin/change-password",
        "/signin/change-password",
        &[("new_password", "short"), ("confirm_password", "short")],
    )
    .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    short.assert_contains("too short");
    let done = submit(
        &app,
        "/signin/change-password",
        "/signin/change-password",
        &[
            ("new_password", "a much better password"),
            ("confirm_password", "a much better password"),
        ],
    )
    .await;
    assert_eq!(done.location(), "/");
    let again = sign_in(&app, "jane", "a much better password").await;
    assert_eq!(again.location(), "/");
}
