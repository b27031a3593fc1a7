//! SPEC 13's OpenID Connect provider at the protocol level, driven over HTTP as a browser
//! (cookies, forms, redirects) and an application (the token endpoint) would: discovery and
//! the JWKS, the code flow through twostep's own sign-in pages with a device code, the ID
//! token verified against the JWKS, userinfo, single-use codes whose reuse revokes what
//! they issued, rotating refresh tokens with family revocation, PKCE, exact redirect URIs,
//! `require_2fa`, `prompt`, RP-initiated logout, key rotation and two instances on
//! PostgreSQL. (`oidc_authlib.rs` and `oidc_apache.rs` run real third-party clients.)

use std::collections::HashMap;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::header::{ACCEPT, LOCATION};
use reqwest::StatusCode;
use serde_json::{json, Value};
use twostep::domain::oidc::{CodeChallenge, ACR_MULTI_FACTOR, ACR_SINGLE_FACTOR};
use twostep::domain::{AuditEvent, PromptMode, Require2fa};
use twostep::otp::Totp;
use twostep::store::AuditQuery;

use crate::admin_api::{admin, call};
use crate::helpers::{spawn_app, spawn_app_with, AppOptions, NowTs, TestApp, TestDb};

const CALLBACK: &str = "https://ehr.hospital.example/oidc/callback";
const AFTER_LOGOUT: &str = "https://ehr.hospital.example/signed-out";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-and-some-more";

/// A browser: its own cookies, no automatic redirects.
struct Browser {
    client: reqwest::Client,
    base: String,
}

impl Browser {
    fn new(app: &TestApp) -> Self {
        Self::on(&app.address)
    }

    fn on(base: &str) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .cookie_store(true)
                .build()
                .unwrap(),
            base: base.to_owned(),
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .header(ACCEPT, "text/html")
            .send()
            .await
            .unwrap()
    }

    /// Posts the form at `action` of the page at `page`, with the page's CSRF token.
    async fn submit(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let html = self.get(page).await.text().await.unwrap();
        let marker = r#"name="csrf" value=""#;
        let start = html.find(marker).expect("a CSRF field") + marker.len();
        let csrf = html[start..start + html[start..].find('"').unwrap()].to_owned();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.client
            .post(self.url(action))
            .form(&all)
            .send()
            .await
            .unwrap()
    }
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("no Location on a {} answer", response.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// The query of a URL the provider redirected to.
fn query_of(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// Registers an application through the admin API; its secret for a confidential one.
async fn register(
    app: &TestApp,
    client_id: &str,
    confidential: bool,
    require_2fa: bool,
) -> Option<String> {
    let token = admin(app).await;
    let (status, body) = call(
        app,
        reqwest::Method::POST,
        "/api/v1/oidc/clients",
        Some(&token),
        Some(json!({
            "client_id": client_id,
            "name": format!("EHR {client_id}"),
            "redirect_uris": [CALLBACK],
            "post_logout_redirect_uris": [AFTER_LOGOUT],
            "confidential": confidential,
            "require_2fa": require_2fa,
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["client_secret"].as_str().map(str::to_owned)
}

fn authorize_path(client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse("http://x/oauth2/authorize").unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile email role")
        .append_pair("state", "st-123")
        .append_pair("nonce", "n-456");
    for (name, value) in extra {
        url.query_pairs_mut().append_pair(name, value);
    }
    format!("/oauth2/authorize?{}", url.query().unwrap())
}

fn pkce() -> [(&'static str, String); 2] {
    [
        (
            "code_challenge",
            CodeChallenge::of_verifier(VERIFIER).as_str().to_owned(),
        ),
        ("code_challenge_method", "S256".to_owned()),
    ]
}

/// Through twostep's sign-in pages from an authorization request to the client's
/// redirect URI: the password, then (when asked) `code()`'s code. Returns the final URL.
async fn sign_in_through<F, Fut>(
    browser: &Browser,
    authorize: &str,
    username: &str,
    code: F,
) -> String
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let answer = browser.get(authorize).await;
    if answer.status() == StatusCode::FOUND {
        return location(&answer); // an existing session answered
    }
    assert_eq!(
        answer.status(),
        StatusCode::SEE_OTHER,
        "to the sign-in pages"
    );
    assert_eq!(location(&answer), "/signin?authorize=1");
    let page = browser
        .get("/signin?authorize=1")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("to continue to EHR"),
        "the application is named: {page}"
    );
    let password = TestApp::password_of(username);
    let mut answer = browser
        .submit(
            "/signin?authorize=1",
            "/signin",
            &[("username", username), ("password", &password)],
        )
        .await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    if location(&answer) == "/signin/verify" {
        let code = code().await;
        answer = browser
            .submit("/signin/verify", "/signin/verify", &[("code", &code)])
            .await;
        assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    }
    assert_eq!(location(&answer), "/");
    let home = browser.get("/").await.text().await.unwrap();
    assert!(home.contains("/oauth2/authorize/resume"), "{home}");
    let back = browser.get("/oauth2/authorize/resume").await;
    assert_eq!(back.status(), StatusCode::FOUND);
    location(&back)
}

async fn token_request(
    app_base: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (StatusCode, Value) {
    let client = reqwest::Client::new();
    let mut request = client.post(format!("{app_base}/oauth2/token")).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let answer = request.send().await.unwrap();
    let status = answer.status();
    assert_eq!(
        answer.headers().get("cache-control").unwrap(),
        "no-store",
        "RFC 6749 5.1"
    );
    (status, answer.json().await.unwrap())
}

async fn exchange(
    app_base: &str,
    code: &str,
    client: (&str, &str),
    verifier: Option<&str>,
) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CALLBACK),
    ];
    if let Some(verifier) = verifier {
        form.push(("code_verifier", verifier));
    }
    token_request(app_base, &form, Some(client)).await
}

async fn userinfo(app_base: &str, access_token: &str) -> (StatusCode, Value) {
    let answer = reqwest::Client::new()
        .get(format!("{app_base}/oauth2/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    let status = answer.status();
    (status, answer.json().await.unwrap_or(Value::Null))
}

/// The ID token's claims, verified with the key of its `kid` from the JWKS at `app_base`.
async fn verified(app_base: &str, id_token: &str, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let jwks: Value = reqwest::get(format!("{app_base}/oauth2/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kid"].as_str() == header.kid.as_deref())
        .expect("the token's kid is in the JWKS");
    let decoding =
        DecodingKey::from_rsa_components(key["n"].as_str().unwrap(), key["e"].as_str().unwrap())
            .unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[app_base]);
    jsonwebtoken::decode::<Value>(id_token, &decoding, &validation)
        .expect("the ID token verifies")
        .claims
}

/// The nurse signed in to the confidential client `ehr` through the sign-in pages, and
/// what the code's exchange issued.
struct SignedIn {
    secret: String,
    totp: Totp,
    browser: Browser,
    tokens: Value,
}

async fn signed_in_to_ehr(app: &TestApp) -> SignedIn {
    let secret = register(app, "ehr", true, false).await.unwrap();
    let totp = nurse(app).await;
    let browser = Browser::new(app);
    let back = sign_in_through(&browser, &authorize_path("ehr", &[]), "nina", || {
        std::future::ready(app.totp_next(&totp))
    })
    .await;
    let (status, tokens) = exchange(
        &app.address,
        &query_of(&back)["code"],
        ("ehr", &secret),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    SignedIn {
        secret,
        totp,
        browser,
        tokens,
    }
}

/// A user whose role forces 2FA, with a confirmed TOTP device.
async fn nurse(app: &TestApp) -> Totp {
    let role = app.role("Nurses", Require2fa::Force, false, false).await;
    let user = app.user("nina", &role, true).await;
    app.enroll_totp(&user, PromptMode::EveryLogin).await
}

/// SPEC 13: discovery names the endpoints under the issuer, RS256, S256 and the client
/// authentication methods; the JWKS holds the signing key.
#[tokio::test]
async fn discovery_and_jwks_describe_the_provider() {
    let app = spawn_app().await;
    let config: Value = reqwest::get(format!("{}/.well-known/openid-configuration", app.address))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["issuer"], app.address.as_str());
    for (name, path) in [
        ("authorization_endpoint", "/oauth2/authorize"),
        ("token_endpoint", "/oauth2/token"),
        ("userinfo_endpoint", "/oauth2/userinfo"),
        ("jwks_uri", "/oauth2/jwks"),
        ("end_session_endpoint", "/oauth2/logout"),
    ] {
        assert_eq!(config[name], format!("{}{path}", app.address), "{name}");
    }
    assert_eq!(
        config["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    assert_eq!(config["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(config["response_types_supported"], json!(["code"]));
    let jwks: Value = reqwest::get(format!("{}/oauth2/jwks", app.address))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "one key on a new database");
    assert_eq!(keys[0]["kty"], "RSA");
    assert_eq!(keys[0]["alg"], "RS256");
    assert_eq!(keys[0]["e"], "AQAB");
    // 2048-bit modulus: 256 bytes, 342 base64url characters.
    assert_eq!(keys[0]["n"].as_str().unwrap().len(), 342);
    app.stop().await;
}

/// SPEC 13: a confidential client's code flow: twostep's sign-in with a device code, back
/// to the redirect URI with the code and state; the ID token (RS256, verified with the
/// JWKS) carries the claims with `amr` pwd+otp+mfa, the nonce and no username as `sub`;
/// userinfo answers the same `sub`; the sign-in is audited.
#[tokio::test]
async fn a_confidential_client_signs_a_user_in_with_a_device_code() {
    let app = spawn_app().await;
    let secret = register(&app, "ehr", true, false).await.unwrap();
    let totp = nurse(&app).await;
    let browser = Browser::new(&app);
    let back = sign_in_through(&browser, &authorize_path("ehr", &[]), "nina", || {
        std::future::ready(app.totp_next(&totp))
    })
    .await;
    assert!(back.starts_with(CALLBACK), "{back}");
    let query = query_of(&back);
    assert_eq!(query["state"], "st-123");

    let (status, tokens) = exchange(&app.address, &query["code"], ("ehr", &secret), None).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "openid profile email role");
    let claims = verified(&app.address, tokens["id_token"].as_str().unwrap(), "ehr").await;
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims["acr"], ACR_MULTI_FACTOR);
    assert_eq!(claims["nonce"], "n-456");
    assert_eq!(claims["preferred_username"], "nina");
    assert_eq!(claims["name"], "nina Display");
    assert_eq!(claims["email"], "nina@example.org");
    assert_eq!(claims["role"], "Nurses");
    assert_eq!(
        claims["auth_time"],
        json!(app.clock.now_ts().unix_seconds()),
        "the sign-in just now"
    );
    let sub = claims["sub"].as_str().unwrap().to_owned();
    assert_ne!(sub, "nina");
    assert!(sub.len() >= 22, "random: {sub}");

    let (status, info) = userinfo(&app.address, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["sub"], sub.as_str());
    assert_eq!(info["preferred_username"], "nina");
    assert_eq!(info["role"], "Nurses");

    let audited = app
        .store
        .audit_entries(&AuditQuery {
            event: Some(AuditEvent::ApplicationSignIn),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0].subject.as_deref(), Some("nina"));
    assert!(
        audited[0].detail.contains("application ehr"),
        "{}",
        audited[0].detail
    );

    // The same browser again: its session answers at once, with the same sub.
    let again = browser.get(&authorize_path("ehr", &[])).await;
    assert_eq!(again.status(), StatusCode::FOUND);
    let code = query_of(&location(&again))["code"].clone();
    let (_, second) = exchange(&app.address, &code, ("ehr", &secret), None).await;
    let claims = verified(&app.address, second["id_token"].as_str().unwrap(), "ehr").await;
    assert_eq!(claims["sub"], sub.as_str(), "sub is stable");
    app.stop().await;
}

/// SPEC 13: a second use of a code is refused and revokes what the first issued (the
/// access token and the refresh token); refresh tokens rotate, and a replaced one used
/// again revokes the whole family.
#[tokio::test]
async fn a_reused_code_or_refresh_token_revokes_what_was_issued() {
    let app = spawn_app().await;
    let secret = register(&app, "ehr", true, false).await.unwrap();
    let totp = nurse(&app).await;
    let client = ("ehr", secret.as_str());

    let browser = Browser::new(&app);
    let back = sign_in_through(&browser, &authorize_path("ehr", &[]), "nina", || {
        std::future::ready(app.totp_next(&totp))
    })
    .await;
    let code = query_of(&back)["code"].clone();
    let (_, first) = exchange(&app.address, &code, client, None).await;
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&app.address, access).await.0, StatusCode::OK);
    let (status, again) = exchange(&app.address, &code, client, None).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, body) = userinfo(&app.address, access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let refresh = first["refresh_token"].as_str().unwrap();
    let (status, body) = token_request(
        &app.address,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        Some(client),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    // A new grant: its refresh token rotates.
    let again = browser.get(&authorize_path("ehr", &[])).await;
    let code = query_of(&location(&again))["code"].clone();
    let (_, grant) = exchange(&app.address, &code, client, None).await;
    let first_refresh = grant["refresh_token"].as_str().unwrap().to_owned();
    let (status, rotated) = token_request(
        &app.address,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &first_refresh),
        ],
        Some(client),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_ne!(rotated["refresh_token"], first_refresh.as_str());
    let claims = verified(&app.address, rotated["id_token"].as_str().unwrap(), "ehr").await;
    assert_eq!(
        claims["amr"],
        json!(["pwd", "otp", "mfa"]),
        "how the user signed in stays"
    );
    assert_eq!(
        userinfo(&app.address, rotated["access_token"].as_str().unwrap())
            .await
            .0,
        StatusCode::OK
    );
    // The replaced token again: refused, and the family's newest tokens die with it.
    let (status, _) = token_request(
        &app.address,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &first_refresh),
        ],
        Some(client),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = token_request(
        &app.address,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rotated["refresh_token"].as_str().unwrap()),
        ],
        Some(client),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(
        userinfo(&app.address, rotated["access_token"].as_str().unwrap())
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let revoked = app
        .store
        .audit_entries(&AuditQuery {
            event: Some(AuditEvent::ApplicationTokensRevoked),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(revoked.len(), 2, "the code's and the family's revocation");
    app.stop().await;
}

/// SPEC 13 and RFC 7636: a public client must use PKCE S256: without it or with `plain`
/// the error goes back to the client with the state; a wrong verifier, a code of another
/// client, a redirect URI other than the code's, an expired code, a wrong secret are
/// refused at the token endpoint; a redirect URI one character off is a page, never a
/// redirect.
#[tokio::test]
async fn pkce_redirect_uris_and_client_authentication_are_enforced() {
    let app = spawn_app().await;
    register(&app, "portal", false, false).await;
    let secret = register(&app, "ehr", true, false).await.unwrap();
    let totp = nurse(&app).await;
    let browser = Browser::new(&app);

    for extra in [
        vec![],
        vec![
            ("code_challenge", "abc".to_owned()),
            ("code_challenge_method", "plain".to_owned()),
        ],
    ] {
        let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = browser.get(&authorize_path("portal", &extra)).await;
        assert_eq!(answer.status(), StatusCode::FOUND);
        let query = query_of(&location(&answer));
        assert_eq!(query["error"], "invalid_request", "{query:?}");
        assert_eq!(query["state"], "st-123");
        assert!(!query.contains_key("code"));
    }
    for (client_id, redirect) in [
        ("portal", "https://ehr.hospital.example/oidc/callbacK"),
        ("portal", "https://ehr.hospital.example/oidc/callback/"),
        ("nobody", CALLBACK),
    ] {
        let path = authorize_path(client_id, &[]).replace(
            &url::form_urlencoded::byte_serialize(CALLBACK.as_bytes()).collect::<String>(),
            &url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>(),
        );
        let answer = browser.get(&path).await;
        assert_eq!(
            answer.status(),
            StatusCode::BAD_REQUEST,
            "{client_id} {redirect}"
        );
        assert!(answer.headers().get(LOCATION).is_none(), "never redirected");
        let page = answer.text().await.unwrap();
        assert!(
            page.contains("This sign-in request cannot be answered"),
            "{page}"
        );
    }

    let pkce = pkce();
    let extra: Vec<(&str, &str)> = pkce.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let back = sign_in_through(&browser, &authorize_path("portal", &extra), "nina", || {
        std::future::ready(app.totp_next(&totp))
    })
    .await;
    let code = query_of(&back)["code"].clone();
    let public = |form: Vec<(&'static str, String)>| {
        let address = app.address.clone();
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            token_request(&address, &form, None).await
        }
    };
    let base = |verifier: &str| {
        vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.clone()),
            ("redirect_uri", CALLBACK.to_owned()),
            ("client_id", "portal".to_owned()),
            ("code_verifier", verifier.to_owned()),
        ]
    };
    let wrong = format!("{VERIFIER}x");
    let (status, body) = public(base(&wrong)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // Another client cannot use it, nor a redirect URI one character off.
    let (status, body) = exchange(&app.address, &code, ("ehr", &secret), Some(VERIFIER)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let mut off = base(VERIFIER);
    off[2].1 = format!("{CALLBACK}x");
    assert_eq!(public(off).await.1["error"], "invalid_grant");
    // A public client presenting a secret, and a wrong secret, are not clients.
    let mut with_secret = base(VERIFIER);
    with_secret.push(("client_secret", secret.clone()));
    let (status, body) = public(with_secret).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let (status, body) = exchange(
        &app.address,
        &code,
        ("ehr", &"A".repeat(43)),
        Some(VERIFIER),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    // Refusals did not use the code up: the right verifier still works, once.
    let (status, tokens) = public(base(VERIFIER)).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    verified(&app.address, tokens["id_token"].as_str().unwrap(), "portal").await;

    // A code older than 60 s is refused.
    let again = browser.get(&authorize_path("portal", &extra)).await;
    let late = query_of(&location(&again))["code"].clone();
    app.clock.advance_seconds(61);
    let mut expired = base(VERIFIER);
    expired[1].1 = late;
    assert_eq!(public(expired).await.1["error"], "invalid_grant");
    app.stop().await;
}

/// SPEC 13: a client with `require_2fa` makes its users do an OTP step where their role
/// says No (an emailed code for a user without a device), and the `amr` shows it; a
/// password-only session is not reused for it; `prompt=none` without a fitting session
/// answers `login_required`; `prompt=login` signs in again even with a session.
#[tokio::test]
async fn a_client_requiring_a_second_factor_adds_an_otp_step() {
    let app = spawn_app().await;
    let plain = register(&app, "wiki", true, false).await.unwrap();
    let strict = register(&app, "ehr", true, true).await.unwrap();
    let role = app.role("Clerks", Require2fa::No, false, false).await;
    app.user("carl", &role, true).await;
    let browser = Browser::new(&app);

    let back = sign_in_through(&browser, &authorize_path("wiki", &[]), "carl", || async {
        panic!("no code is asked for a client without require_2fa")
    })
    .await;
    let (_, tokens) = exchange(
        &app.address,
        &query_of(&back)["code"],
        ("wiki", &plain),
        None,
    )
    .await;
    let claims = verified(&app.address, tokens["id_token"].as_str().unwrap(), "wiki").await;
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert_eq!(claims["acr"], ACR_SINGLE_FACTOR);

    // The password-only session does not do for ehr: prompt=none says so.
    let answer = browser
        .get(&authorize_path("ehr", &[("prompt", "none")]))
        .await;
    assert_eq!(answer.status(), StatusCode::FOUND);
    let query = query_of(&location(&answer));
    assert_eq!(
        (query["error"].as_str(), query["state"].as_str()),
        ("login_required", "st-123")
    );

    // Signing in for ehr asks for an emailed code, though the role needs none.
    let back = sign_in_through(&browser, &authorize_path("ehr", &[]), "carl", || async {
        app.last_emailed_code().await
    })
    .await;
    let (status, tokens) = exchange(
        &app.address,
        &query_of(&back)["code"],
        ("ehr", &strict),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let claims = verified(&app.address, tokens["id_token"].as_str().unwrap(), "ehr").await;
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims["acr"], ACR_MULTI_FACTOR);

    // That session now answers wiki at once, unless prompt=login asks for a new sign-in.
    assert_eq!(
        browser.get(&authorize_path("wiki", &[])).await.status(),
        StatusCode::FOUND
    );
    let answer = browser
        .get(&authorize_path("wiki", &[("prompt", "login")]))
        .await;
    assert_eq!(
        answer.status(),
        StatusCode::SEE_OTHER,
        "to the sign-in pages"
    );
    // max_age: a sign-in 5 s ago does for 10 s, not for 3.
    app.clock.advance_seconds(5);
    let fresh = browser
        .get(&authorize_path("wiki", &[("max_age", "10")]))
        .await;
    assert_eq!(fresh.status(), StatusCode::FOUND);
    let stale = browser
        .get(&authorize_path("wiki", &[("max_age", "3")]))
        .await;
    assert_eq!(
        stale.status(),
        StatusCode::SEE_OTHER,
        "to the sign-in pages"
    );
    app.stop().await;
}

/// SPEC 13 and RP-Initiated Logout 1.0: a valid `id_token_hint` ends the twostep session
/// and returns to the registered post-logout URI with the state; an `alg: none` token as
/// hint is refused and ends nothing; without a hint the user is asked first.
#[tokio::test]
async fn logout_ends_the_session_only_with_a_valid_hint_or_confirmation() {
    let app = spawn_app().await;
    let SignedIn {
        secret,
        totp,
        browser,
        tokens,
    } = signed_in_to_ehr(&app).await;
    let id_token = tokens["id_token"].as_str().unwrap().to_owned();

    // alg none with the real token's claims.
    let payload = id_token.split('.').nth(1).unwrap();
    let none = format!(
        "{}.{payload}.",
        data_encoding::BASE64URL_NOPAD.encode(br#"{"alg":"none","typ":"JWT"}"#)
    );
    let logout = |hint: &str| {
        let mut url = url::Url::parse("http://x/oauth2/logout").unwrap();
        url.query_pairs_mut()
            .append_pair("id_token_hint", hint)
            .append_pair("post_logout_redirect_uri", AFTER_LOGOUT)
            .append_pair("state", "bye-1");
        format!("/oauth2/logout?{}", url.query().unwrap())
    };
    let refused = browser.get(&logout(&none)).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused.headers().get(LOCATION).is_none());
    assert_eq!(
        browser.get(&authorize_path("ehr", &[])).await.status(),
        StatusCode::FOUND,
        "still signed in"
    );

    // Not registered as a post-logout URI: refused too.
    let other = logout(&id_token).replace("signed-out", "elsewhere");
    assert_eq!(browser.get(&other).await.status(), StatusCode::BAD_REQUEST);

    let out = browser.get(&logout(&id_token)).await;
    assert_eq!(out.status(), StatusCode::FOUND);
    assert_eq!(location(&out), format!("{AFTER_LOGOUT}?state=bye-1"));
    let answer = browser.get(&authorize_path("ehr", &[])).await;
    assert_eq!(
        answer.status(),
        StatusCode::SEE_OTHER,
        "signed out: to the sign-in pages"
    );
    // What the application was issued ended with the session.
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, _) = token_request(
        &app.address,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        Some(("ehr", &secret)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Without a hint: a confirmation page; its form signs out.
    sign_in_through(&browser, &authorize_path("ehr", &[]), "nina", || {
        std::future::ready(app.totp_next(&totp))
    })
    .await;
    let page = browser.get("/oauth2/logout").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"id="signout""#), "{html}");
    let out = browser
        .submit("/oauth2/logout", "/oauth2/logout", &[])
        .await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        browser.get(&authorize_path("ehr", &[])).await.status(),
        StatusCode::SEE_OTHER
    );
    app.stop().await;
}

/// SPEC 13: `rotate-key` makes a new signing key; the JWKS keeps the old one (tokens it
/// signed still verify) until its tokens have expired, and new tokens use the new key.
#[tokio::test]
async fn a_rotated_key_stays_published_until_its_tokens_expire() {
    let app = spawn_app().await;
    let SignedIn {
        secret,
        browser,
        tokens: before,
        ..
    } = signed_in_to_ehr(&app).await;
    let old_kid = jsonwebtoken::decode_header(before["id_token"].as_str().unwrap())
        .unwrap()
        .kid;

    let provider = twostep::service::oidc::Oidc::new(app.ctx.clone(), &app.address);
    let new_kid = provider.rotate_key().await.unwrap();
    assert_ne!(Some(new_kid.clone()), old_kid);
    let kids = |jwks: Value| -> Vec<String> {
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let jwks: Value = reqwest::get(format!("{}/oauth2/jwks", app.address))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(kids(jwks), vec![new_kid.clone(), old_kid.clone().unwrap()]);
    verified(&app.address, before["id_token"].as_str().unwrap(), "ehr").await;

    let again = browser.get(&authorize_path("ehr", &[])).await;
    let (_, after) = exchange(
        &app.address,
        &query_of(&location(&again))["code"],
        ("ehr", &secret),
        None,
    )
    .await;
    let kid = jsonwebtoken::decode_header(after["id_token"].as_str().unwrap())
        .unwrap()
        .kid;
    assert_eq!(kid.as_deref(), Some(new_kid.as_str()));

    app.clock
        .advance_seconds(twostep::service::oidc::ID_TOKEN_SECONDS + 1);
    let jwks: Value = reqwest::get(format!("{}/oauth2/jwks", app.address))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        kids(jwks),
        vec![new_kid],
        "the old key's tokens have expired"
    );
    app.stop().await;
}

/// SPEC 13: two instances on one PostgreSQL share the keys and all state: the JWKS is the
/// same on both, a code issued on A is exchanged on B, and B's refresh works on A.
#[tokio::test]
async fn two_instances_on_postgresql_share_keys_codes_and_tokens() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let key = twostep::crypto::MasterKey::generate(&mut rand::rngs::OsRng).to_hex();
    let options = AppOptions {
        database: Some(db.url.clone()),
        key: Some(key),
        public_url: Some("https://signin.hospital.example".to_owned()),
        ..AppOptions::default()
    };
    let a = spawn_app_with(options.clone()).await;
    let b = spawn_app_with(options).await;
    let jwks = |app: &TestApp| {
        let address = app.address.clone();
        async move {
            reqwest::get(format!("{address}/oauth2/jwks"))
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(jwks(&a).await, jwks(&b).await, "one signing key, made once");
    let secret = register(&a, "ehr", true, false).await.unwrap();
    let totp = nurse(&a).await;
    let browser = Browser::new(&a);
    let back = sign_in_through(&browser, &authorize_path("ehr", &[]), "nina", || {
        std::future::ready(a.totp_next(&totp))
    })
    .await;
    // The instances' clocks agree (the device code moved A's on).
    b.clock
        .advance_seconds(b.clock.now_ts().seconds_until(a.clock.now_ts()));
    let (status, tokens) =
        exchange(&b.address, &query_of(&back)["code"], ("ehr", &secret), None).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let header = jsonwebtoken::decode_header(tokens["id_token"].as_str().unwrap()).unwrap();
    let jwks_a = jwks(&a).await;
    assert_eq!(jwks_a["keys"][0]["kid"].as_str(), header.kid.as_deref());
    let claims: Value = serde_json::from_slice(
        &data_encoding::BASE64URL_NOPAD
            .decode(
                tokens["id_token"]
                    .as_str()
                    .unwrap()
                    .split('.')
                    .nth(1)
                    .unwrap()
                    .as_bytes(),
            )
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["iss"], "https://signin.hospital.example");
    assert_eq!(
        userinfo(&a.address, tokens["access_token"].as_str().unwrap())
            .await
            .0,
        StatusCode::OK
    );
    let (status, _) = token_request(
        &a.address,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
        Some(("ehr", &secret)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // One code sent to both instances at once: one exchange wins, the other is a second
    // use, which revokes what the first issued.
    let again = browser.get(&authorize_path("ehr", &[])).await;
    let code = query_of(&location(&again))["code"].clone();
    let ((first, one), (second, other)) = tokio::join!(
        exchange(&a.address, &code, ("ehr", &secret), None),
        exchange(&b.address, &code, ("ehr", &secret), None),
    );
    let mut statuses = [first, second];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::BAD_REQUEST],
        "{one} {other}"
    );
    let winner = if first == StatusCode::OK { one } else { other };
    assert_eq!(
        userinfo(&b.address, winner["access_token"].as_str().unwrap())
            .await
            .0,
        StatusCode::UNAUTHORIZED,
        "revoked by the second use"
    );
    a.stop().await;
    b.stop().await;
    db.finish().await;
}

/// What has expired is removed (`service::housekeeping`): a session past its 12 hours, the
/// provider's waiting request, access tokens and grant; the used code goes once a session
/// of any role could no longer be live (SPEC 15's longest, 168 hours). Live rows stay. On
/// PostgreSQL, whose rows the test counts.
#[tokio::test]
async fn housekeeping_removes_what_has_expired_and_keeps_what_is_live() {
    let Some((db, app)) = crate::helpers::spawn_app_on_postgres().await else {
        return;
    };
    let SignedIn { browser, .. } = signed_in_to_ehr(&app).await;
    // A request left waiting (prompt=login asks for a new sign-in).
    let waiting = browser
        .get(&authorize_path("ehr", &[("prompt", "login")]))
        .await;
    assert_eq!(waiting.status(), StatusCode::SEE_OTHER);
    let count = |table: &'static str| {
        let db = &db;
        async move { db.raw_count(&format!("SELECT COUNT(*) FROM {table}")).await }
    };
    let tables = [
        "sessions",
        "oidc_requests",
        "oidc_codes",
        "oidc_grants",
        "oidc_access_tokens",
        "oidc_refresh_tokens",
    ];
    let mut before = Vec::new();
    for table in tables {
        before.push(count(table).await);
    }
    // Two sessions: the nurse's and the administrator's who registered the client.
    assert_eq!(before, [2, 1, 1, 1, 1, 1], "{tables:?}");
    assert_eq!(
        twostep::service::housekeeping::pass(&app.ctx)
            .await
            .unwrap(),
        0,
        "nothing has expired"
    );

    app.clock.advance_seconds(13 * 3600);
    assert!(
        twostep::service::housekeeping::pass(&app.ctx)
            .await
            .unwrap()
            >= 5
    );
    let mut after = Vec::new();
    for table in tables {
        after.push(count(table).await);
    }
    // The refresh tokens go with their grant; the used code stays while a session of a
    // role with longer limits could still be live.
    assert_eq!(after, [0, 0, 1, 0, 0, 0], "{tables:?}");
    app.clock.advance_seconds(156 * 3600);
    assert_eq!(
        twostep::service::housekeeping::pass(&app.ctx)
            .await
            .unwrap(),
        1
    );
    assert_eq!(count("oidc_codes").await, 0, "after 169 hours");
    app.stop().await;
    db.finish().await;
}
