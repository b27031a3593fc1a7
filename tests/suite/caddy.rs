//! twostep protecting a real application behind Debian's Caddy (2.6, `forward_auth`), with
//! two twostep instances on one PostgreSQL behind it (round robin): SPEC 9 and the README's
//! "Protecting applications (forward-auth)" section, with the same checks as the nginx
//! test (`nginx.rs`): a browser is sent to sign in and back, the application sees
//! `Remote-User`, an interface user passes with HTTP Basic, a person's password does not,
//! nothing redirects outside the hospital, and no identity header a client forges reaches
//! the application.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::helpers::require_program;
use crate::nginx::{
    a_browser_signs_in_and_back_behind, basic_credentials_behind,
    nothing_redirects_outside_the_allowed_domains_behind, setup_behind, wait_for_listener, Ports,
    Proxy, Setup,
};

/// The README's Caddy configuration (its ```` ```caddy ```` block), for addresses chosen by
/// the test: `{PORT}` is Caddy, `{A}` and `{B}` the twostep instances, `{UPSTREAM}` the
/// application. [`the_readmes_caddy_example_is_the_tested_configuration`] keeps the two equal.
const SITES: &str = r#"http://signin.hospital.test:{PORT} {
    reverse_proxy 127.0.0.1:{A} 127.0.0.1:{B} {
        lb_policy round_robin
    }
}

http://app.hospital.test:{PORT} {
    # Caddy 2.6 (and later, until caddyserver/caddy#6610) passes on the placeholder
    # itself for a header twostep leaves out (Remote-Email for a user without one).
    @no_email header Remote-Email "\{http.reverse_proxy.header.Remote-Email\}"
    route {
        # A client's own identity headers never reach the application (some Caddy
        # versions copy only the headers twostep sends and keep the client's others).
        request_header -Remote-*
        forward_auth 127.0.0.1:{A} 127.0.0.1:{B} {
            uri /api/v1/authz
            copy_headers Remote-User Remote-Name Remote-Email Remote-Role
            lb_policy round_robin
        }
        request_header @no_email -Remote-Email
        reverse_proxy 127.0.0.1:{UPSTREAM}
    }
}
"#;

/// What only the test needs: no admin endpoint, no certificates (plain `http://` sites,
/// `auto_https off`), loopback only, storage in the test's folder.
const GLOBAL: &str = r#"{
    admin off
    auto_https off
    default_bind 127.0.0.1
    storage file_system {DIR}/data
}
"#;

/// The README's addresses for the test's: (in the test, in the README).
const README_ADDRESSES: [(&str, &str); 5] = [
    (
        "http://signin.hospital.test:{PORT}",
        "signin.hospital.example",
    ),
    ("http://app.hospital.test:{PORT}", "ehr.hospital.example"),
    ("127.0.0.1:{A}", "10.0.0.11:8080"),
    ("127.0.0.1:{B}", "10.0.0.12:8080"),
    ("127.0.0.1:{UPSTREAM}", "ehr-backend:8080"),
];

/// Caddy as a child process (`caddy run`) with its home, data and configuration in a
/// private folder; killed when dropped.
struct Caddy {
    child: Child,
    dir: tempfile::TempDir,
}

impl Caddy {
    async fn start(binary: &Path, ports: Ports) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let caddyfile = format!("{GLOBAL}\n{SITES}")
            .replace("{DIR}", &dir.path().display().to_string())
            .replace("{PORT}", &ports.port.to_string())
            .replace("{A}", &ports.a.to_string())
            .replace("{B}", &ports.b.to_string())
            .replace("{UPSTREAM}", &ports.upstream.to_string());
        let path = dir.path().join("Caddyfile");
        std::fs::write(&path, caddyfile).unwrap();
        let log = std::fs::File::create(dir.path().join("caddy.log")).unwrap();
        let child = Command::new(binary)
            .arg("run")
            .arg("--config")
            .arg(&path)
            .arg("--adapter")
            .arg("caddyfile")
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("caddy starts");
        let caddy = Self { child, dir };
        wait_for_listener(&caddy, ports.port).await;
        caddy
    }
}

impl Proxy for Caddy {
    const NAME: &'static str = "caddy";

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("caddy.log")).unwrap_or_default()
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn setup() -> Option<Setup<Caddy>> {
    let binary = require_program("caddy", "Debian package caddy")?;
    setup_behind(|ports| Caddy::start(&binary, ports)).await
}

#[tokio::test]
async fn caddy_sends_a_browser_to_sign_in_and_back_and_the_application_sees_remote_user() {
    if let Some(s) = setup().await {
        a_browser_signs_in_and_back_behind(s).await;
    }
}

#[tokio::test]
async fn caddy_redirects_nowhere_outside_the_allowed_domains() {
    if let Some(s) = setup().await {
        nothing_redirects_outside_the_allowed_domains_behind(s).await;
    }
}

#[tokio::test]
async fn caddy_lets_an_interface_user_pass_with_basic_credentials_and_not_a_persons_password() {
    if let Some(s) = setup().await {
        basic_credentials_behind(s).await;
    }
}

/// The README's Caddy example is the configuration these tests run, with the README's
/// addresses.
#[test]
fn the_readmes_caddy_example_is_the_tested_configuration() {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("```caddy\n")
        .expect("a Caddy example in the README")
        + "```caddy\n".len();
    let shown = &readme[start..start + readme[start..].find("```").unwrap()];
    let tested = README_ADDRESSES
        .iter()
        .fold(SITES.to_owned(), |text, (test, readme)| {
            text.replace(test, readme)
        });
    assert_eq!(shown, tested);
}
