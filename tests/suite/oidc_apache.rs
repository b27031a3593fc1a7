//! SPEC 13's OpenID Connect provider with Debian's Apache and mod_auth_openidc (packages
//! `apache2`, `libapache2-mod-auth-openidc`) as the relying party, as the README's Apache
//! example describes it: a protected location sends Chromium to twostep's sign-in, back
//! at the application the user's claims arrive in the `OIDC_CLAIM_*` headers, and the
//! module's logout ends the twostep session.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fantoccini::Locator;

use crate::browser::{browser, Browser, ONE_BROWSER_AT_A_TIME};
use crate::helpers::{free_port, require_program, spawn_app};
use crate::nginx::{wait_for_listener, Proxy};
use crate::oidc_authlib::{
    browser_state, clinician, register_client, sign_in_with_totp, wall_clock,
};

/// The Apache configuration of the README's OpenID Connect example, for ports and a
/// folder chosen by the test: `{PORT}` is Apache, `{UPSTREAM}` the application, `{ISSUER}`
/// twostep's public URL, `{DIR}` a private folder; `{USER}` names the user the workers run
/// as when Apache starts as root. Only the modules it needs are loaded.
const APACHE_CONF: &str = r#"
ServerRoot "{DIR}"
ServerName 127.0.0.1:{PORT}
Listen 127.0.0.1:{PORT}
PidFile {DIR}/apache2.pid
DefaultRuntimeDir {DIR}
ErrorLog {DIR}/error.log
LogLevel warn
{USER}

LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authn_core_module /usr/lib/apache2/modules/mod_authn_core.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule authz_user_module /usr/lib/apache2/modules/mod_authz_user.so
LoadModule proxy_module /usr/lib/apache2/modules/mod_proxy.so
LoadModule proxy_http_module /usr/lib/apache2/modules/mod_proxy_http.so
LoadModule auth_openidc_module /usr/lib/apache2/modules/mod_auth_openidc.so

# twostep as the OpenID Connect provider; the client registered in Applications
# (confidential, redirect URI below, post-logout redirect URI http://127.0.0.1:{PORT}/loggedout).
OIDCProviderMetadataURL {ISSUER}/.well-known/openid-configuration
OIDCClientID {CLIENT_ID}
OIDCClientSecret {CLIENT_SECRET}
# A path inside the protected location that the module answers itself.
OIDCRedirectURI http://127.0.0.1:{PORT}/protected/redirect_uri
OIDCCryptoPassphrase {PASSPHRASE}
OIDCScope "openid profile email role"

# The application; only /protected needs a sign-in. The module passes the ID token's
# claims on as OIDC_CLAIM_* request headers (and removes any a client sent).
ProxyPass / http://127.0.0.1:{UPSTREAM}/
<Location /protected>
    AuthType openid-connect
    Require valid-user
</Location>
"#;

const MODULE: &str = "/usr/lib/apache2/modules/mod_auth_openidc.so";

/// Apache in the foreground as a child process; stopped when dropped.
struct Apache {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

/// What [`Apache::start`] fills in.
struct ApacheSite<'a> {
    port: u16,
    upstream: u16,
    issuer: &'a str,
    client_id: &'a str,
    client_secret: &'a str,
}

impl Apache {
    async fn start(binary: &Path, site: ApacheSite<'_>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| out.stdout.starts_with(b"0\n"));
        let passphrase = twostep::crypto::Token::generate(&mut rand::rngs::OsRng);
        let conf = APACHE_CONF
            .replace(
                "{USER}",
                // Apache refuses to serve as root: its workers become www-data.
                if root {
                    "User www-data\nGroup www-data"
                } else {
                    ""
                },
            )
            .replace("{DIR}", &dir.path().display().to_string())
            .replace("{PORT}", &site.port.to_string())
            .replace("{UPSTREAM}", &site.upstream.to_string())
            .replace("{ISSUER}", site.issuer)
            .replace("{CLIENT_ID}", site.client_id)
            .replace("{CLIENT_SECRET}", site.client_secret)
            .replace("{PASSPHRASE}", passphrase.as_str());
        let conf_path = dir.path().join("apache2.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = std::process::Command::new(binary)
            .arg("-f")
            .arg(&conf_path)
            .arg("-DFOREGROUND")
            .env("APACHE_RUN_DIR", dir.path())
            .env("APACHE_LOCK_DIR", dir.path())
            .env("APACHE_LOG_DIR", dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("apache2 starts");
        let apache = Self { child, dir };
        wait_for_listener(&apache, site.port).await;
        apache
    }
}

impl Proxy for Apache {
    const NAME: &'static str = "apache2";

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        // SIGTERM: the parent stops its workers and exits.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// The application behind Apache: answers with its path and the `oidc_claim_*` headers
/// it received, one `name: value` a line, sorted.
async fn start_claims_upstream() -> u16 {
    use axum::http::{HeaderMap, Uri};
    async fn echo(uri: Uri, headers: HeaderMap) -> String {
        let mut lines: Vec<String> = headers
            .iter()
            .filter(|(name, _)| name.as_str().starts_with("oidc_claim_"))
            .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap_or("?")))
            .collect();
        lines.sort();
        format!("path={}\n{}\n", uri.path(), lines.join("\n"))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback(echo);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    port
}

/// The module's file, or `None` (skipped with a message) outside CI; in CI its absence
/// fails the test.
fn require_module() -> Option<PathBuf> {
    let path = PathBuf::from(MODULE);
    if path.is_file() {
        return Some(path);
    }
    let hint = "Debian package libapache2-mod-auth-openidc";
    if std::env::var_os("CI").is_some() {
        panic!("{MODULE} is required in CI but is not installed ({hint})");
    }
    eprintln!("SKIPPED: {MODULE} is not installed ({hint}); CI runs this test");
    None
}

/// Waits until the browser shows text containing `needle`; panics with what it shows.
async fn wait_for_text(browser: &Browser, needle: &str, apache: &Apache) -> String {
    let xpath = format!("//*[contains(., '{needle}')]");
    if let Err(error) = browser
        .client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::XPath(&xpath))
        .await
    {
        let state = browser_state(browser).await;
        panic!(
            "`{needle}` did not appear ({error}); {state}\nApache's log:\n{}",
            apache.log()
        );
    }
    browser.body().await
}

/// Waits for twostep's sign-in page; panics with what the browser shows and Apache's log.
async fn wait_for_signin(browser: &Browser, apache: &Apache) {
    if let Err(error) = browser
        .client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("body[data-page='signin']"))
        .await
    {
        let state = browser_state(browser).await;
        panic!(
            "the sign-in page did not appear ({error}); {state}\nApache's log:\n{}",
            apache.log()
        );
    }
}

/// The value of `oidc_claim_{claim}` in the application's answer.
fn claim<'a>(page: &'a str, claim: &str) -> Option<&'a str> {
    let prefix = format!("oidc_claim_{claim}: ");
    page.lines()
        .find_map(|line| line.trim().strip_prefix(prefix.as_str()))
}

/// SPEC 13 with mod_auth_openidc: an unauthenticated visit to the protected location is
/// sent to twostep's sign-in (password and TOTP code), comes back to the page, and the
/// application sees jane's claims (preferred_username, email, role, amr with otp, a sub
/// that is not the username); the module's logout (RP-initiated, to a registered
/// post-logout URI) ends the twostep session: `/` asks to sign in again, and a new visit
/// to the protected location goes to twostep's sign-in page.
#[tokio::test]
async fn apache_mod_auth_openidc_signs_in_through_twostep_and_logs_out() {
    let Some(binary) = require_program("apache2", "Debian package apache2") else {
        return;
    };
    let Some(_module) = require_module() else {
        return;
    };
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let app = spawn_app().await;
    wall_clock(&app);
    let totp = clinician(&app).await;
    let port = free_port();
    let site = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let secret = register_client(
        &app,
        "apache-app",
        &[site("/protected/redirect_uri")],
        &[site("/loggedout")],
        true,
    )
    .await
    .unwrap();
    let upstream = start_claims_upstream().await;
    let apache = Apache::start(
        &binary,
        ApacheSite {
            port,
            upstream,
            issuer: &app.address,
            client_id: "apache-app",
            client_secret: &secret,
        },
    )
    .await;
    let Some(mut browser) = browser(&app, "oidc-apache", 1000, 800).await else {
        return;
    };

    // 1. Not signed in: Apache sends the browser to twostep, which asks for a sign-in.
    browser
        .client
        .goto(&site("/protected/records/7"))
        .await
        .expect("navigation");
    wait_for_signin(&browser, &apache).await;
    let at = browser.client.current_url().await.unwrap();
    assert!(
        at.as_str().starts_with(&format!("{}/signin", app.address)),
        "at {at}"
    );
    sign_in_with_totp(&mut browser, &app, &totp).await;

    // 2. Back at the page, which shows the claims mod_auth_openidc passed on.
    let page = wait_for_text(&browser, "path=/protected/records/7", &apache).await;
    assert_eq!(
        browser.client.current_url().await.unwrap().as_str(),
        site("/protected/records/7")
    );
    browser.shot("application").await;
    assert_eq!(claim(&page, "preferred_username"), Some("jane"), "{page}");
    assert_eq!(claim(&page, "email"), Some("jane@example.org"), "{page}");
    assert_eq!(claim(&page, "role"), Some("Clinician"), "{page}");
    let amr = claim(&page, "amr").unwrap_or_default();
    assert!(amr.split(',').any(|method| method == "otp"), "{page}");
    let sub = claim(&page, "sub").unwrap_or_default();
    assert!(!sub.is_empty() && sub != "jane", "{page}");
    assert_eq!(claim(&page, "iss"), Some(app.address.as_str()), "{page}");

    // 3. The module's logout: twostep ends the session and sends the browser to the
    //    registered post-logout URI.
    let back: String =
        url::form_urlencoded::byte_serialize(site("/loggedout").as_bytes()).collect();
    browser
        .client
        .goto(&site(&format!("/protected/redirect_uri?logout={back}")))
        .await
        .expect("navigation");
    wait_for_text(&browser, "path=/loggedout", &apache).await;
    browser.shot("logged-out").await;

    // 4. twostep's session is over: its home asks to sign in, and so does a new visit to
    //    the protected location.
    browser.goto("/").await;
    browser.page("signin").await;
    browser
        .client
        .goto(&site("/protected/records/7"))
        .await
        .expect("navigation");
    wait_for_signin(&browser, &apache).await;
    let at = browser.client.current_url().await.unwrap();
    assert!(
        at.as_str().starts_with(&format!("{}/signin", app.address)),
        "{}",
        browser_state(&browser).await
    );
    browser.shot("signin-again").await;
    browser.finish().await;
    drop(apache);
    app.stop().await;
}

/// The README's values for the test's placeholders: (in the test, in the README).
const README_VALUES: [(&str, &str); 6] = [
    ("{ISSUER}", "https://signin.hospital.example"),
    ("{CLIENT_ID}", "ehr"),
    ("{CLIENT_SECRET}", "\"the client secret\""),
    ("http://127.0.0.1:{PORT}", "https://ehr.hospital.example"),
    ("{PASSPHRASE}", "\"a long random passphrase\""),
    ("{UPSTREAM}", "8081"),
];

/// SPEC 13: the README's Apache example is the OpenID Connect part of the configuration
/// the test runs (from `OIDCProviderMetadataURL` to the end), with the README's values
/// for the placeholders and without its comments.
#[test]
fn the_readmes_apache_example_is_the_tested_configuration() {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("```apache\n")
        .expect("an Apache example in the README")
        + "```apache\n".len();
    let shown = &readme[start..start + readme[start..].find("```").unwrap()];
    let from = APACHE_CONF.find("OIDCProviderMetadataURL").unwrap();
    let tested: String = README_VALUES
        .iter()
        .fold(APACHE_CONF[from..].to_owned(), |text, (test, readme)| {
            text.replace(test, readme)
        })
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_eq!(shown, tested);
}
