//! Forward-auth (SPEC section 9, `GET /api/v1/authz`) through real HTTP: who passes, the
//! headers an application receives, the way back from sign-in, and what never passes
//! (a person's password alone, a person's API token, any URL outside the allowed domains).

use reqwest::header::{ACCEPT, AUTHORIZATION, LOCATION, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use serde_json::json;
use twostep::domain::{PromptMode, Require2fa, Role, SettingKey, User};

use crate::helpers::{spawn_app_with, AppOptions, TestApp};
use crate::pages::{get, submit};

const PUBLIC_URL: &str = "http://signin.hospital.test:8080";

async fn app() -> TestApp {
    spawn_app_with(AppOptions {
        public_url: Some(PUBLIC_URL.into()),
        redirect_domains: vec!["hospital.test".into()],
        ..AppOptions::default()
    })
    .await
}

/// An authz request with these headers.
async fn authz(app: &TestApp, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/api/v1/authz", app.address));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("authz answers")
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

fn basic(username: &str, password: &str) -> String {
    use data_encoding::BASE64;
    format!(
        "Basic {}",
        BASE64.encode(format!("{username}:{password}").as_bytes())
    )
}

async fn force_user(app: &TestApp) -> (User, twostep::otp::Totp) {
    let role = app.role("Clinician", Require2fa::Force, false, false).await;
    let user = app.user("jane", &role, true).await;
    let totp = app.enroll_totp(&user, PromptMode::EveryLogin).await;
    (user, totp)
}

async fn interface_user(app: &TestApp) -> (User, Role) {
    let role = app.role("Lab Interface", Require2fa::No, false, true).await;
    (app.user("lab-feed", &role, false).await, role)
}

/// A session through the JSON API: password, then the device code.
async fn session_of(app: &TestApp, totp: &twostep::otp::Totp) -> String {
    let (_, answer) = app
        .post(
            "/api/v1/signin",
            json!({"username": "jane", "password": TestApp::password_of("jane")}),
        )
        .await;
    assert_eq!(answer["status"], "otp_required", "{answer}");
    let (_, done) = app
        .post(
            "/api/v1/signin/otp",
            json!({"transaction": answer["transaction"], "code": app.totp_now(totp)}),
        )
        .await;
    assert_eq!(done["status"], "signed_in", "{done}");
    done["session"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_session_passes_with_the_remote_headers_as_cookie_or_bearer() {
    let app = app().await;
    let (_, totp) = force_user(&app).await;
    let session = session_of(&app, &totp).await;
    for response in [
        authz(&app, &[("cookie", &format!("twostep_session={session}"))]).await,
        authz(&app, &[("authorization", &format!("Bearer {session}"))]).await,
    ] {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "remote-user"), Some("jane"));
        assert_eq!(header(&response, "remote-name"), Some("jane Display"));
        assert_eq!(header(&response, "remote-email"), Some("jane@example.org"));
        assert_eq!(header(&response, "remote-role"), Some("Clinician"));
    }
    // Any method: a proxy may forward the original one.
    let post = reqwest::Client::new()
        .post(format!("{}/api/v1/authz", app.address))
        .header("cookie", format!("twostep_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::OK);
    // A session that ended no longer passes.
    app.clock.advance_seconds(31 * 60);
    let ended = authz(&app, &[("cookie", &format!("twostep_session={session}"))]).await;
    assert_eq!(ended.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test]
async fn without_a_session_programs_get_401_and_browsers_the_way_to_sign_in() {
    let app = app().await;
    let api = authz(&app, &[]).await;
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&api, WWW_AUTHENTICATE.as_str()),
        Some("Basic realm=\"twostep\", charset=\"UTF-8\"")
    );
    let body: serde_json::Value = api.json().await.unwrap();
    assert_eq!(body["code"], "unauthenticated");

    // Traefik / Caddy: a redirect the proxy passes to the browser.
    let traefik = authz(
        &app,
        &[
            (ACCEPT.as_str(), "text/html,application/xhtml+xml"),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "ehr.hospital.test"),
            ("x-forwarded-uri", "/chart?patient=7&tab=labs"),
        ],
    )
    .await;
    assert_eq!(traefik.status(), StatusCode::FOUND);
    assert_eq!(
        header(&traefik, LOCATION.as_str()),
        Some("http://signin.hospital.test:8080/signin?rd=http%3A%2F%2Fehr.hospital.test%2Fchart%3Fpatient%3D7%26tab%3Dlabs")
    );

    // nginx passes only 401 on: the way to sign in is in Location.
    let nginx = authz(
        &app,
        &[
            (ACCEPT.as_str(), "text/html"),
            ("x-original-url", "http://ehr.hospital.test/chart"),
        ],
    )
    .await;
    assert_eq!(nginx.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&nginx, LOCATION.as_str()),
        Some("http://signin.hospital.test:8080/signin?rd=http%3A%2F%2Fehr.hospital.test%2Fchart")
    );
    app.stop().await;
}

#[tokio::test]
async fn an_original_url_outside_the_allowed_domains_is_never_a_return_url() {
    let app = app().await;
    for outside in [
        "http://evil.example/phish",
        "http://hospital.test.evil.example/",
        "http://evil.example\\@ehr.hospital.test/",
        "javascript:alert(1)",
    ] {
        let response = authz(
            &app,
            &[(ACCEPT.as_str(), "text/html"), ("x-original-url", outside)],
        )
        .await;
        assert_eq!(
            header(&response, LOCATION.as_str()),
            Some("http://signin.hospital.test:8080/signin"),
            "{outside}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn sign_in_returns_to_an_allowed_url_and_ignores_any_other() {
    let app = app().await;
    let (_, totp) = force_user(&app).await;
    let back = "http://ehr.hospital.test/chart?patient=7";
    let encoded: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
    let form = format!("/signin?rd={encoded}");
    let password = submit(
        &app,
        &form,
        "/signin",
        &[
            ("username", "jane"),
            ("password", &TestApp::password_of("jane")),
        ],
    )
    .await;
    assert_eq!(password.location(), "/signin/verify");
    let code = app.totp_now(&totp);
    let done = submit(&app, "/signin/verify", "/signin/verify", &[("code", &code)]).await;
    assert_eq!(done.location(), "/");
    // A page that continues there (a redirect would break the form's CSP form-action).
    let home = get(&app, "/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert_eq!(refresh_url(&home.body), back);
    home.assert_contains(
        r#"<a id="continue" href="http://ehr.hospital.test/chart?patient=7">ehr.hospital.test</a>"#,
    );
    // Once: the next visit shows the signed-in page.
    assert_eq!(get(&app, "/").await.status, StatusCode::OK);
    // Already signed in: straight back.
    assert_eq!(get(&app, &form).await.location(), back);

    // An open-redirect attempt: the URL is ignored and forgotten.
    let app2 = app_with_user_of_row_5().await;
    let evil: String =
        url::form_urlencoded::byte_serialize(b"https://evil.example/login").collect();
    let page = get(&app2, &format!("/signin?rd={evil}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.cookie("twostep_return").unwrap().contains("Max-Age=0"));
    let signed_in = crate::pages::sign_in(&app2, "kim", &TestApp::password_of("kim")).await;
    assert_eq!(signed_in.location(), "/");
    let home = get(&app2, "/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(!home.body.contains("refresh"), "no way to anywhere else");
    let again = get(&app2, &format!("/signin?rd={evil}")).await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "a signed-in user is not sent there either"
    );
    app.stop().await;
    app2.stop().await;
}

/// The URL of a page's `<meta http-equiv="refresh">`, unescaped.
pub fn refresh_url(html: &str) -> String {
    let marker = r#"<meta http-equiv="refresh" content="0; url="#;
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no refresh in:\n{html}"))
        + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].replace("&amp;", "&")
}

async fn app_with_user_of_row_5() -> TestApp {
    let app = app().await;
    let role = app.role("Volunteer", Require2fa::No, false, false).await;
    app.user("kim", &role, false).await;
    app
}

#[tokio::test]
async fn the_session_cookie_carries_the_configured_domain() {
    let app = spawn_app_with(AppOptions {
        public_url: Some(PUBLIC_URL.into()),
        cookie_domain: Some("hospital.test".into()),
        ..AppOptions::default()
    })
    .await;
    let role = app.role("Volunteer", Require2fa::No, false, false).await;
    app.user("kim", &role, false).await;
    let signed_in = crate::pages::sign_in(&app, "kim", &TestApp::password_of("kim")).await;
    let cookie = signed_in.cookie("twostep_session").unwrap();
    assert!(cookie.contains("; Domain=hospital.test"), "{cookie}");
    // The transaction and CSRF cookies stay on twostep's own host.
    assert!(signed_in
        .set_cookies()
        .iter()
        .filter(|c| !c.starts_with("twostep_session="))
        .all(|c| !c.contains("Domain=")));
    app.stop().await;
}

#[tokio::test]
async fn an_interface_user_passes_with_basic_credentials_or_its_api_token_and_no_otp() {
    let app = app().await;
    // Every OTP a person could be asked for is on: none applies to an interface user.
    app.settings(&[(SettingKey::Use2fa, "3")]).await;
    let (user, _) = interface_user(&app).await;
    let password = TestApp::password_of("lab-feed");
    let ok = authz(
        &app,
        &[(AUTHORIZATION.as_str(), &basic("Lab-Feed", &password))],
    )
    .await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(header(&ok, "remote-user"), Some("lab-feed"));
    assert_eq!(header(&ok, "remote-role"), Some("Lab Interface"));
    assert_eq!(header(&ok, "remote-email"), None);

    let token = app.api_token(&user, "test").await;
    let by_token = authz(
        &app,
        &[(AUTHORIZATION.as_str(), &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(by_token.status(), StatusCode::OK);
    assert_eq!(header(&by_token, "remote-user"), Some("lab-feed"));

    let wrong = authz(
        &app,
        &[(AUTHORIZATION.as_str(), &basic("lab-feed", "nope"))],
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let stored = app.store.user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(stored.failed_count, 1, "a wrong Basic password counts");
    let audit = app
        .store
        .audit_entries(&twostep::store::AuditQuery {
            user: Some("lab-feed".into()),
            event: None,
            since: None,
            until: None,
            offset: 0,
            limit: 100,
        })
        .await
        .unwrap();
    assert!(audit.iter().any(|e| e.detail.contains("HTTP Basic")));
    app.stop().await;
}

#[tokio::test]
async fn a_persons_password_alone_or_api_token_never_passes() {
    let app = app().await;
    let (user, _) = force_user(&app).await;
    let right = authz(
        &app,
        &[(
            AUTHORIZATION.as_str(),
            &basic("jane", &TestApp::password_of("jane")),
        )],
    )
    .await;
    assert_eq!(right.status(), StatusCode::UNAUTHORIZED);
    let wrong = authz(&app, &[(AUTHORIZATION.as_str(), &basic("jane", "nope"))]).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        right.text().await.unwrap(),
        wrong.text().await.unwrap(),
        "the right password is not revealed"
    );
    // A role without any 2FA changes nothing: Basic is for interface users only.
    let plain = app.role("Volunteer", Require2fa::No, false, false).await;
    app.user("kim", &plain, false).await;
    let kim = authz(
        &app,
        &[(
            AUTHORIZATION.as_str(),
            &basic("kim", &TestApp::password_of("kim")),
        )],
    )
    .await;
    assert_eq!(kim.status(), StatusCode::UNAUTHORIZED);

    let token = app.api_token(&user, "test").await;
    let by_token = authz(
        &app,
        &[(AUTHORIZATION.as_str(), &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(by_token.status(), StatusCode::UNAUTHORIZED);
    let garbage = authz(
        &app,
        &[(
            AUTHORIZATION.as_str(),
            "Bearer not a token; DROP TABLE users",
        )],
    )
    .await;
    assert_eq!(garbage.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test]
async fn basic_credentials_count_toward_lockout_like_the_sign_in_form() {
    let app = app().await;
    app.settings(&[(SettingKey::LockoutThreshold, "3")]).await;
    interface_user(&app).await;
    for _ in 0..3 {
        let response = authz(
            &app,
            &[(AUTHORIZATION.as_str(), &basic("lab-feed", "guess"))],
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let locked = authz(
        &app,
        &[(
            AUTHORIZATION.as_str(),
            &basic("lab-feed", &TestApp::password_of("lab-feed")),
        )],
    )
    .await;
    assert_eq!(locked.status(), StatusCode::UNAUTHORIZED);
    // The JSON sign-in refuses the right password too: one lock for every door.
    let (status, _) = app
        .post(
            "/api/v1/signin",
            json!({"username": "lab-feed", "password": TestApp::password_of("lab-feed")}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.stop().await;
}
