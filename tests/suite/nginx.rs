//! twostep protecting a real application behind Debian's nginx (`auth_request`), with two
//! twostep instances on one PostgreSQL behind the same nginx (round robin), as the README
//! describes: a browser is sent to sign in and back, the application sees `Remote-User`,
//! an interface user passes with HTTP Basic, and nothing redirects outside the hospital.
//!
//! The set-up ([`setup_behind`]) and the checks (`*_behind`) take any [`Proxy`]: the
//! Caddy test (`caddy.rs`) runs the same checks behind Caddy.

use std::future::Future;
use std::path::Path;

use reqwest::header::{ACCEPT, AUTHORIZATION, LOCATION};
use reqwest::StatusCode;
use twostep::domain::{PromptMode, Require2fa};

use crate::helpers::{free_port, require_program, spawn_app_with, AppOptions, TestApp, TestDb};

/// The nginx configuration of the README's "Protecting applications" section, for ports
/// chosen by the test. `{PORT}` is nginx, `{A}` and `{B}` the twostep instances,
/// `{UPSTREAM}` the application, `{DIR}` a private folder.
const NGINX_CONF: &str = r#"
{USER}
worker_processes 1;
pid {DIR}/nginx.pid;
error_log {DIR}/error.log info;
daemon off;
events { worker_connections 128; }
http {
    access_log {DIR}/access.log;
    client_body_temp_path {DIR}/body;
    proxy_temp_path {DIR}/proxy;
    fastcgi_temp_path {DIR}/fastcgi;
    uwsgi_temp_path {DIR}/uwsgi;
    scgi_temp_path {DIR}/scgi;

    # Two twostep instances on one PostgreSQL: any instance answers any request.
    upstream twostep {
        server 127.0.0.1:{A};
        server 127.0.0.1:{B};
    }

    # twostep itself (--public-url http://signin.hospital.test:{PORT}).
    server {
        listen 127.0.0.1:{PORT};
        server_name signin.hospital.test;
        location / {
            proxy_pass http://twostep;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }
    }

    # An application behind twostep.
    server {
        listen 127.0.0.1:{PORT};
        server_name app.hospital.test;

        location = /twostep-authz {
            internal;
            proxy_pass http://twostep/api/v1/authz;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }

        location / {
            auth_request /twostep-authz;
            auth_request_set $twostep_user $upstream_http_remote_user;
            auth_request_set $twostep_name $upstream_http_remote_name;
            auth_request_set $twostep_email $upstream_http_remote_email;
            auth_request_set $twostep_role $upstream_http_remote_role;
            auth_request_set $twostep_signin $upstream_http_location;
            error_page 401 = @twostep_signin;

            # Set by the proxy, whatever the client sent.
            proxy_set_header Remote-User $twostep_user;
            proxy_set_header Remote-Name $twostep_name;
            proxy_set_header Remote-Email $twostep_email;
            proxy_set_header Remote-Role $twostep_role;
            proxy_pass http://127.0.0.1:{UPSTREAM};
        }

        # Browsers go to sign in; programs get the 401.
        location @twostep_signin {
            if ($twostep_signin = "") {
                return 401;
            }
            return 302 $twostep_signin;
        }
    }
}
"#;

/// nginx as a child process; stopped (gracefully) when dropped.
pub(crate) struct Nginx {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl Nginx {
    async fn start(binary: &Path, ports: Ports) -> Self {
        let Ports {
            port,
            a,
            b,
            upstream,
        } = ports;
        let dir = tempfile::tempdir().unwrap();
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| out.stdout.starts_with(b"0\n"));
        let conf = NGINX_CONF
            .replace("{USER}", if root { "user root;" } else { "" })
            .replace("{DIR}", &dir.path().display().to_string())
            .replace("{PORT}", &port.to_string())
            .replace("{A}", &a.to_string())
            .replace("{B}", &b.to_string())
            .replace("{UPSTREAM}", &upstream.to_string());
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = std::process::Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("nginx starts");
        let nginx = Self { child, dir };
        wait_for_listener(&nginx, port).await;
        nginx
    }
}

impl Proxy for Nginx {
    const NAME: &'static str = "nginx";

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGQUIT: the master stops its workers and exits (a killed master would leave
        // its workers holding the port).
        let _ = std::process::Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// A reverse proxy started by a test in front of the application and twostep.
pub(crate) trait Proxy {
    /// Its name in failure messages.
    const NAME: &'static str;
    /// What it logged, for failure messages.
    fn log(&self) -> String;
}

/// Waits until `proxy` accepts connections on `port`; panics with its log after 5 s.
pub(crate) async fn wait_for_listener<P: Proxy>(proxy: &P, port: u16) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("{} did not listen:\n{}", P::NAME, proxy.log());
}

/// The loopback ports of a set-up: the proxy, twostep instances A and B, the application.
#[derive(Clone, Copy)]
pub(crate) struct Ports {
    pub(crate) port: u16,
    pub(crate) a: u16,
    pub(crate) b: u16,
    pub(crate) upstream: u16,
}

/// The application behind the proxy: answers with the identity headers it received.
async fn start_upstream() -> u16 {
    use axum::http::HeaderMap;
    async fn echo(headers: HeaderMap) -> String {
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        format!(
            "user={} name={} email={} role={}",
            get("remote-user"),
            get("remote-name"),
            get("remote-email"),
            get("remote-role")
        )
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback(echo);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    port
}

pub(crate) struct Setup<P> {
    db: TestDb,
    pub(crate) a: TestApp,
    pub(crate) b: TestApp,
    pub(crate) proxy: P,
    pub(crate) port: u16,
    /// A browser: keeps cookies, follows nothing, resolves the hospital's names to the proxy.
    pub(crate) browser: reqwest::Client,
}

pub(crate) async fn setup() -> Option<Setup<Nginx>> {
    let binary = require_program("nginx", "Debian package nginx")?;
    setup_behind(|ports| Nginx::start(&binary, ports)).await
}

/// Two twostep instances on one fresh PostgreSQL schema (public URL
/// `http://signin.hospital.test:PORT`, returning under `hospital.test`, trusting the proxy
/// on 127.0.0.1), the application, and the proxy that `start` starts on `ports.port`.
/// `None` when PostgreSQL is not there (outside CI).
pub(crate) async fn setup_behind<P, F, Fut>(start: F) -> Option<Setup<P>>
where
    F: FnOnce(Ports) -> Fut,
    Fut: Future<Output = P>,
{
    let db = TestDb::postgres().await?;
    let twostep::store::KeySource::Hex(key) = db.key.clone() else {
        unreachable!("test databases have hex keys")
    };
    let port = free_port();
    let options = AppOptions {
        database: Some(db.url.clone()),
        key: Some(key),
        public_url: Some(format!("http://signin.hospital.test:{port}")),
        redirect_domains: vec!["hospital.test".into()],
        cookie_domain: Some("hospital.test".into()),
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        ..AppOptions::default()
    };
    let a = spawn_app_with(options.clone()).await;
    let b = spawn_app_with(options).await;
    let port_of = |app: &TestApp| {
        app.address
            .rsplit(':')
            .next()
            .unwrap()
            .parse::<u16>()
            .unwrap()
    };
    let upstream = start_upstream().await;
    let proxy = start(Ports {
        port,
        a: port_of(&a),
        b: port_of(&b),
        upstream,
    })
    .await;
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .resolve("signin.hospital.test", loopback)
        .resolve("app.hospital.test", loopback)
        .resolve("evil.example", loopback)
        .build()
        .unwrap();
    Some(Setup {
        db,
        a,
        b,
        proxy,
        port,
        browser,
    })
}

impl<P: Proxy> Setup<P> {
    pub(crate) fn signin(&self, path: &str) -> String {
        format!("http://signin.hospital.test:{}{path}", self.port)
    }

    pub(crate) fn app(&self, path: &str) -> String {
        format!("http://app.hospital.test:{}{path}", self.port)
    }

    pub(crate) async fn get(&self, url: &str) -> reqwest::Response {
        self.browser
            .get(url)
            .header(ACCEPT, "text/html,application/xhtml+xml")
            .send()
            .await
            .unwrap()
    }

    /// Posts a form of the page at `page` with its CSRF token.
    pub(crate) async fn submit(
        &self,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let html = self.get(page).await.text().await.unwrap();
        let marker = r#"name="csrf" value=""#;
        let start = html.find(marker).expect("a CSRF field") + marker.len();
        let csrf = &html[start..start + html[start..].find('"').unwrap()];
        let mut all = vec![("csrf", csrf)];
        all.extend_from_slice(fields);
        self.browser.post(action).form(&all).send().await.unwrap()
    }

    pub(crate) async fn finish(self) {
        drop(self.proxy);
        self.a.stop().await;
        self.b.stop().await;
        self.db.finish().await;
    }
}

pub(crate) fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("no Location on a {} answer", response.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_browser_is_sent_to_sign_in_and_back_and_the_application_sees_remote_user() {
    if let Some(s) = setup().await {
        a_browser_signs_in_and_back_behind(s).await;
    }
}

#[tokio::test]
async fn nothing_redirects_outside_the_allowed_domains() {
    if let Some(s) = setup().await {
        nothing_redirects_outside_the_allowed_domains_behind(s).await;
    }
}

#[tokio::test]
async fn an_interface_user_passes_nginx_with_basic_credentials_and_a_persons_password_does_not() {
    if let Some(s) = setup().await {
        basic_credentials_behind(s).await;
    }
}

/// The identity headers a client sends of its own, which the proxy must replace (or
/// remove) whatever twostep answers.
const FORGED: [(&str, &str); 4] = [
    ("remote-user", "admin"),
    ("remote-name", "Administrator"),
    ("remote-email", "admin@hospital.test"),
    ("remote-role", "Administrator"),
];

/// A browser is sent to sign in with the URL it asked for, signs in with a password and a
/// TOTP code (requests spread over A and B), returns, and the application sees who; a
/// forged identity header from the browser never reaches the application.
pub(crate) async fn a_browser_signs_in_and_back_behind<P: Proxy>(s: Setup<P>) {
    let role = s.a.role("Clinician", Require2fa::Force, false, false).await;
    let user = s.a.user("jane", &role, true).await;
    let totp = s.a.enroll_totp(&user, PromptMode::EveryLogin).await;

    // 1. Not signed in: the proxy sends the browser to twostep with the URL it asked for.
    let first = s.get(&s.app("/records/7?tab=labs")).await;
    assert_eq!(first.status(), StatusCode::FOUND, "{}", s.proxy.log());
    let to_signin = location(&first);
    let back = s.app("/records/7?tab=labs");
    let encoded: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
    assert_eq!(to_signin, s.signin(&format!("/signin?rd={encoded}")));

    // 2. Password, then the device code (the proxy spreads the requests over A and B).
    let password = s
        .submit(
            &to_signin,
            &s.signin("/signin"),
            &[
                ("username", "jane"),
                ("password", &TestApp::password_of("jane")),
            ],
        )
        .await;
    assert_eq!(location(&password), "/signin/verify");
    let code = s.a.totp_now(&totp);
    let verified = s
        .submit(
            &s.signin("/signin/verify"),
            &s.signin("/signin/verify"),
            &[("code", &code)],
        )
        .await;
    assert_eq!(location(&verified), "/");
    let home = s.get(&s.signin("/")).await;
    assert_eq!(home.status(), StatusCode::OK);
    assert_eq!(
        crate::forward_auth::refresh_url(&home.text().await.unwrap()),
        back
    );

    // 3. Back at the application, signed in: it sees who.
    let page = s.get(&back).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(
        page.text().await.unwrap(),
        "user=jane name=jane Display email=jane@example.org role=Clinician"
    );
    // Forged identity headers from the browser are replaced by the proxy.
    let mut forged = s.browser.get(s.app("/"));
    for (name, value) in FORGED {
        forged = forged.header(name, value);
    }
    assert_eq!(
        forged.send().await.unwrap().text().await.unwrap(),
        "user=jane name=jane Display email=jane@example.org role=Clinician"
    );
    s.finish().await;
}

/// Sign-in ignores a return URL outside the allowed domains, before and after signing in.
pub(crate) async fn nothing_redirects_outside_the_allowed_domains_behind<P: Proxy>(s: Setup<P>) {
    let role = s.a.role("Volunteer", Require2fa::No, false, false).await;
    s.a.user("kim", &role, false).await;
    let evil: String = url::form_urlencoded::byte_serialize(b"http://evil.example/login").collect();
    let page = s.get(&s.signin(&format!("/signin?rd={evil}"))).await;
    assert_eq!(page.status(), StatusCode::OK);
    let signed_in = s
        .submit(
            &s.signin(&format!("/signin?rd={evil}")),
            &s.signin("/signin"),
            &[
                ("username", "kim"),
                ("password", &TestApp::password_of("kim")),
            ],
        )
        .await;
    assert_eq!(location(&signed_in), "/");
    let home = s.get(&s.signin("/")).await;
    assert_eq!(home.status(), StatusCode::OK);
    assert!(
        !home.text().await.unwrap().contains("refresh"),
        "the signed-in page, no way elsewhere"
    );
    // Signed in, the refused URL is still not followed.
    let again = s.get(&s.signin(&format!("/signin?rd={evil}"))).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert!(again.headers().get(LOCATION).is_none());
    s.finish().await;
}

/// A program: an interface user passes with HTTP Basic (and a forged identity, here the
/// `Remote-Email` twostep leaves out for a user without one, does not reach the
/// application); a person's password alone and a made-up Bearer token get a 401.
pub(crate) async fn basic_credentials_behind<P: Proxy>(s: Setup<P>) {
    let interface = s.a.role("Lab Interface", Require2fa::No, false, true).await;
    s.a.user("lab-feed", &interface, false).await;
    let force = s.a.role("Clinician", Require2fa::Force, false, false).await;
    s.a.user("jane", &force, true).await;
    let program = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve(
            "app.hospital.test",
            std::net::SocketAddr::from(([127, 0, 0, 1], s.port)),
        )
        .build()
        .unwrap();
    let feed = program
        .get(s.app("/results"))
        .basic_auth("lab-feed", Some(TestApp::password_of("lab-feed")))
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), StatusCode::OK, "{}", s.proxy.log());
    assert_eq!(
        feed.text().await.unwrap(),
        "user=lab-feed name=lab-feed Display email= role=Lab Interface"
    );
    let mut forged = program
        .get(s.app("/results"))
        .basic_auth("lab-feed", Some(TestApp::password_of("lab-feed")));
    for (name, value) in FORGED {
        forged = forged.header(name, value);
    }
    assert_eq!(
        forged.send().await.unwrap().text().await.unwrap(),
        "user=lab-feed name=lab-feed Display email= role=Lab Interface"
    );
    let person = program
        .get(s.app("/results"))
        .basic_auth("jane", Some(TestApp::password_of("jane")))
        .send()
        .await
        .unwrap();
    assert_eq!(person.status(), StatusCode::UNAUTHORIZED);
    let nobody = program
        .get(s.app("/results"))
        .header(AUTHORIZATION, "Bearer nonsense")
        .send()
        .await
        .unwrap();
    assert_eq!(nobody.status(), StatusCode::UNAUTHORIZED);
    s.finish().await;
}

#[tokio::test]
async fn in_chromium_the_application_sends_to_sign_in_and_shows_who_signed_in() {
    use crate::browser::{browser_at, ONE_BROWSER_AT_A_TIME};
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let Some(s) = setup().await else {
        return;
    };
    let role = s.a.role("Clinician", Require2fa::Force, false, false).await;
    let user = s.a.user("jane", &role, true).await;
    let totp = s.a.enroll_totp(&user, PromptMode::EveryLogin).await;
    // The hospital's names resolve to nginx; nothing else is reachable.
    let rules = "--host-resolver-rules=MAP *.hospital.test 127.0.0.1, EXCLUDE localhost".to_owned();
    let Some(mut browser) =
        browser_at(String::new(), "nginx-forward-auth", 1000, 800, &[rules]).await
    else {
        return;
    };
    browser.goto(&s.app("/records/7")).await;
    browser.page("signin").await;
    let url = browser.client.current_url().await.unwrap();
    assert_eq!(url.host_str(), Some("signin.hospital.test"), "{url}");
    browser.shot("signin").await;
    browser.type_into("#username", "jane").await;
    browser
        .type_into("#password", &TestApp::password_of("jane"))
        .await;
    browser
        .click("form[action='/signin'] button[type='submit']")
        .await;
    browser.page("verify").await;
    browser.type_into("#code", &s.a.totp_now(&totp)).await;
    browser.shot("verify").await;
    browser.click("form[action='/signin/verify'] button").await;
    // Back at the application, which names the user nginx passed on.
    let shown = browser
        .client
        .wait()
        .at_most(std::time::Duration::from_secs(30))
        .for_element(fantoccini::Locator::XPath("//*[contains(., 'user=jane ')]"))
        .await;
    let url = browser.client.current_url().await.unwrap();
    if let Err(error) = shown {
        browser.shot("unexpected").await;
        let source = browser.client.source().await.unwrap_or_default();
        panic!("the application did not show the user at {url} ({error}):\n{source}");
    }
    assert_eq!(url.as_str(), s.app("/records/7"));
    browser.shot("application").await;
    browser.finish().await;
    s.finish().await;
}
