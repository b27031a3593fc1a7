//! Every page is valid HTML (SPEC section 11: pages a nurse can use start with markup a
//! browser and a screen reader read as meant): each page of the sign-in flow and of the
//! console, error pages and forms showing their errors included, goes through HTML Tidy
//! (Debian package `tidy`) with `-q -e`, and the test fails naming the page and tidy's
//! message. The pages come from the routers in `web/signin_pages.rs`,
//! `web/account_pages.rs` and `web/console/mod.rs`; a new route belongs in [`every_page`].
//!
//! Which messages matter: every tidy error, and every warning except those about valid
//! HTML that tidy 5.6 does not know (attributes such as `inputmode`, `aria-current`, and a
//! `<div>` grouping `<dt>`/`<dd>`; see [`IGNORED_WARNINGS`]).

use std::path::Path;
use std::process::Command;

use reqwest::StatusCode;
use twostep::domain::{DeviceOtp, PromptMode, Require2fa};

use crate::helpers::{require_program, spawn_app, NowTs, TestApp};

/// Warnings about valid HTML that tidy 5.6 (2017) misreads; none of them is a fault a
/// browser or a screen reader trips on. Every error, and every other warning, fails.
const IGNORED_WARNINGS: [&str; 11] = [
    // Attributes of HTML (and WAI-ARIA, SVG) that tidy 5.6 does not know.
    "proprietary attribute \"aria-current\"",
    // `autofocus` is a global attribute (the error summary takes the focus).
    "proprietary attribute \"autofocus\"",
    "proprietary attribute \"autocapitalize\"",
    "proprietary attribute \"autocorrect\"",
    "proprietary attribute \"inputmode\"",
    "proprietary attribute \"minlength\"",
    "proprietary attribute \"shape-rendering\"",
    // `<dl><div><dt>…</dt><dd>…</dd></div></dl>`: a `<div>` grouping a term with its
    // description is valid HTML (WHATWG, 2017); tidy 5.6 closes the `<div>` and
    // complains about what follows.
    "inserting implicit <dl>",
    "missing </dl> before </div>",
    "missing </div> before <dt>",
    "missing <dd>",
];

/// A browser of its own (cookie jar, no redirects followed).
struct Visitor<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
}

/// A fetched page: its name in the report, status and body.
struct Fetched {
    name: String,
    status: StatusCode,
    location: String,
    body: String,
}

impl<'a> Visitor<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .cookie_store(true)
                .build()
                .unwrap(),
        }
    }

    async fn answer(name: String, response: reqwest::Response) -> Fetched {
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Fetched {
            name,
            status,
            location,
            body: response.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Fetched {
        let response = self
            .client
            .get(format!("{}{path}", self.app.address))
            .send()
            .await
            .unwrap();
        Self::answer(format!("GET {path}"), response).await
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Fetched {
        let response = self
            .client
            .post(format!("{}{path}", self.app.address))
            .form(fields)
            .send()
            .await
            .unwrap();
        Self::answer(format!("POST {path}"), response).await
    }

    /// Posts the form of `form_page` with its CSRF token.
    async fn submit(&self, form_page: &str, action: &str, fields: &[(&str, &str)]) -> Fetched {
        let page = self.get(form_page).await;
        let marker = r#"name="csrf" value=""#;
        let start = page
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("{}: no CSRF field:\n{}", page.name, page.body))
            + marker.len();
        let token = &page.body[start..start + page.body[start..].find('"').unwrap()];
        let mut all = vec![("csrf", token)];
        all.extend_from_slice(fields);
        let mut answer = self.post(action, &all).await;
        answer.name = format!("{} ({})", answer.name, describe(fields));
        answer
    }
}

fn describe(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(name, value)| format!("{name}={value:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Collects the pages, each expected to be HTML with `status`.
#[derive(Default)]
struct Pages(Vec<Fetched>);

impl Pages {
    fn add(&mut self, page: Fetched, status: StatusCode) {
        assert_eq!(page.status, status, "{}: {}", page.name, page.body);
        assert!(
            page.body.starts_with("<!doctype html>"),
            "{}: not a page:\n{}",
            page.name,
            page.body
        );
        self.0.push(page);
    }

    /// A page whose status is not what this check is about (an error page of a form).
    fn add_any(&mut self, page: Fetched) {
        let status = page.status;
        self.add(page, status);
    }
}

/// Signs `visitor` in through the password form; the answer (a redirect).
async fn password(visitor: &Visitor<'_>, username: &str, password: &str) -> Fetched {
    let answer = visitor
        .submit(
            "/signin",
            "/signin",
            &[("username", username), ("password", password)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    answer
}

/// Every page of the sign-in flow and the console, as a visitor meets it.
async fn every_page(app: &TestApp) -> Pages {
    let mut pages = Pages::default();
    let ok = StatusCode::OK;

    // Roles and users for each step.
    let nurses = app.role("Nurses", Require2fa::Force, false, false).await;
    app.user("jane", &nurses, true).await;
    let doctors = app.role("Doctors", Require2fa::Force, false, false).await;
    let bob = app.user("bob", &doctors, true).await;
    app.enroll_totp(&bob, PromptMode::EveryLogin).await;
    let clerks = app.role("Clerks", Require2fa::No, false, false).await;
    let carol = app.user("carol", &clerks, true).await;
    app.set_temporary_password(&carol, "temporary password 1")
        .await;
    let emailed = app.role("Porters", Require2fa::No, true, false).await;
    app.user("dave", &emailed, true).await;

    // Before signing in: the form, its error, an expired form, the error pages.
    let anonymous = Visitor::new(app);
    pages.add(anonymous.get("/signin").await, ok);
    pages.add(
        anonymous
            .submit(
                "/signin",
                "/signin",
                &[("username", "jane"), ("password", "wrong password")],
            )
            .await,
        StatusCode::UNAUTHORIZED,
    );
    pages.add_any(
        anonymous
            .submit("/signin", "/signin", &[("username", ""), ("password", "")])
            .await,
    );
    let expired = anonymous
        .post("/signin", &[("username", "jane"), ("password", "x")])
        .await;
    pages.add_any(expired);
    let missing = anonymous.get("/no/such/page").await;
    if missing.body.starts_with("<!doctype html>") {
        pages.add_any(missing);
    } else {
        eprintln!(
            "NOTE: GET /no/such/page is not an HTML page yet ({})",
            missing.status
        );
    }

    // Forced enrollment: the choice, the QR code, a wrong code.
    let enrolling = Visitor::new(app);
    let answer = password(&enrolling, "jane", &TestApp::password_of("jane")).await;
    assert_eq!(answer.location, "/signin/enroll");
    pages.add(enrolling.get("/signin/enroll").await, ok);
    let chosen = enrolling
        .submit(
            "/signin/enroll",
            "/signin/enroll",
            &[("method", "totp"), ("prompt_mode", "every_login")],
        )
        .await;
    assert_eq!(chosen.location, "/signin/enroll/confirm", "{}", chosen.body);
    pages.add(enrolling.get("/signin/enroll/confirm").await, ok);
    let wrong = enrolling
        .submit(
            "/signin/enroll/confirm",
            "/signin/enroll/confirm",
            &[("code", "000000")],
        )
        .await;
    pages.add_any(wrong);

    // Enrollment completed at sign-in: the first set of recovery codes (SPEC 10).
    let fern = app.user("fern", &nurses, true).await;
    let finishing = Visitor::new(app);
    let answer = password(&finishing, "fern", &TestApp::password_of("fern")).await;
    assert_eq!(answer.location, "/signin/enroll");
    finishing
        .submit(
            "/signin/enroll",
            "/signin/enroll",
            &[("method", "totp"), ("prompt_mode", "every_login")],
        )
        .await;
    let pending = app.store.pending_device(fern.id).await.unwrap().unwrap();
    let DeviceOtp::Totp { totp, .. } = pending.otp else {
        unreachable!()
    };
    let code = app.totp_now(&totp);
    pages.add(
        finishing
            .submit(
                "/signin/enroll/confirm",
                "/signin/enroll/confirm",
                &[("code", &code)],
            )
            .await,
        ok,
    );

    // A device code, and a wrong one.
    let verifying = Visitor::new(app);
    let answer = password(&verifying, "bob", &TestApp::password_of("bob")).await;
    assert_eq!(answer.location, "/signin/verify");
    pages.add(verifying.get("/signin/verify").await, ok);
    let wrong = verifying
        .submit("/signin/verify", "/signin/verify", &[("code", "000000")])
        .await;
    pages.add_any(wrong);

    // An emailed code.
    let emailing = Visitor::new(app);
    let answer = password(&emailing, "dave", &TestApp::password_of("dave")).await;
    assert_eq!(answer.location, "/signin/verify");
    pages.add(emailing.get("/signin/verify").await, ok);

    // The forced password change, its error, then the signed-in page.
    let changing = Visitor::new(app);
    let answer = password(&changing, "carol", "temporary password 1").await;
    assert_eq!(answer.location, "/signin/change-password");
    pages.add(changing.get("/signin/change-password").await, ok);
    let mismatch = changing
        .submit(
            "/signin/change-password",
            "/signin/change-password",
            &[
                ("new_password", "a brand new password"),
                ("confirm_password", "another new password"),
            ],
        )
        .await;
    pages.add_any(mismatch);
    let changed = changing
        .submit(
            "/signin/change-password",
            "/signin/change-password",
            &[
                ("new_password", "a brand new password"),
                ("confirm_password", "a brand new password"),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
    pages.add(changing.get("/").await, ok);
    // My account (SPEC section 10): the page, a form's error, the set-up page.
    pages.add(changing.get("/account").await, ok);
    pages.add_any(
        changing
            .submit(
                "/account",
                "/account/password",
                &[
                    ("current_password", "x"),
                    ("new_password", "correct horse battery staple 42"),
                    ("confirm_password", "correct horse battery staple 43"),
                ],
            )
            .await,
    );
    let chosen = changing
        .submit(
            "/account",
            "/account/device",
            &[("method", "totp"), ("prompt_mode", "every_login")],
        )
        .await;
    assert_eq!(
        chosen.location, "/account/device/confirm",
        "{}",
        chosen.body
    );
    pages.add(changing.get("/account/device/confirm").await, ok);
    // A signed-in user without a console permission.
    pages.add(changing.get("/admin/users").await, StatusCode::FORBIDDEN);

    // Something for each list of the console home: a locked account (jane is Force
    // without a device), an email not delivered.
    let erin = app.user("erin", &clerks, true).await;
    for _ in 0..5 {
        let (status, _) = app
            .post(
                "/api/v1/signin",
                serde_json::json!({ "username": erin.username.as_str(), "password": "wrong password" }),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let later = app.clock.now_ts().plus_seconds(3600);
    let dead = app
        .store
        .enqueue(
            &twostep::store::NewOutboxMessage {
                message_id: "<dead@html-check>".to_owned(),
                from: "twostep@example.org".to_owned(),
                to: "erin@example.org".to_owned(),
                payload: b"Subject: code".to_vec(),
                expires_at: later.plus_seconds(300),
            },
            later,
        )
        .await
        .unwrap();
    app.store
        .outbox_dead(dead, "550 <erin@example.org> & co: unavailable")
        .await
        .unwrap();

    // The administrator: every console page, forms with their errors, the error pages.
    let admin = Visitor::new(app);
    let answer = password(&admin, "admin", &app.admin_password).await;
    if answer.location == "/signin/enroll" {
        pages.add(admin.get("/signin/enroll").await, ok);
        let skipped = admin
            .submit("/signin/enroll", "/signin/enroll/skip", &[])
            .await;
        assert_eq!(skipped.location, "/");
    }
    pages.add(admin.get("/").await, ok);
    let home = admin.get("/admin").await;
    for list in [
        r#"id="locked""#,
        r#"id="without-device""#,
        r#"id="undelivered""#,
    ] {
        assert!(home.body.contains(list), "{list}:\n{}", home.body);
    }
    pages.add(home, ok);
    for path in [
        "/admin/users",
        "/admin/users?q=jan",
        "/admin/users/new",
        "/admin/users/jane",
        "/admin/users/bob",
        "/admin/users/jane/2fa/setup",
        "/admin/users/bob/2fa/change",
        "/admin/users/bob/2fa/disable",
        "/admin/roles",
        "/admin/roles/new",
        "/admin/roles/Nurses",
        "/admin/settings",
        "/admin/ip",
        "/admin/email",
        "/admin/email/security/device_added",
        "/admin/audit",
        "/admin/audit?event=signin_failed",
        "/admin/applications",
    ] {
        pages.add(admin.get(path).await, ok);
    }
    // SPEC 13's Applications: the answer with the secret shown once, the list, the edit
    // page, and a refused form.
    let created = admin
        .submit(
            "/admin/applications",
            "/admin/applications",
            &[
                ("client_id", "wiki"),
                ("name", "Team Wiki"),
                (
                    "redirect_uris",
                    "https://wiki.example.org/cb\nhttp://127.0.0.1:8400/cb",
                ),
                ("post_logout_redirect_uris", ""),
                ("kind", "confidential"),
            ],
        )
        .await;
    assert!(created.body.contains("client-secret"), "{}", created.body);
    pages.add(created, ok);
    pages.add(admin.get("/admin/applications").await, ok);
    pages.add(admin.get("/admin/applications/wiki").await, ok);
    pages.add(
        admin
            .submit(
                "/admin/applications/wiki",
                "/admin/applications/wiki/delete",
                &[],
            )
            .await,
        ok,
    );
    // SPEC 13's New secret: the confirmation, then the secret.
    for fields in [&[][..], &[("confirm", "yes")][..]] {
        pages.add(
            admin
                .submit(
                    "/admin/applications/wiki",
                    "/admin/applications/wiki/secret",
                    fields,
                )
                .await,
            ok,
        );
    }
    // The provider's pages (SPEC 13): a request that cannot go back to the application,
    // the sign-in page naming the application, and the logout confirmation.
    pages.add(
        admin.get("/oauth2/authorize?client_id=nobody").await,
        StatusCode::BAD_REQUEST,
    );
    pages.add(admin.get("/oauth2/logout").await, ok);
    let visitor = Visitor::new(app);
    let waiting = visitor
        .get(
            "/oauth2/authorize?client_id=wiki&redirect_uri=https%3A%2F%2Fwiki.example.org%2Fcb\
             &response_type=code&scope=openid",
        )
        .await;
    assert_eq!(waiting.status, StatusCode::SEE_OTHER, "{}", waiting.body);
    let named = visitor.get("/signin?authorize=1").await;
    assert!(named.body.contains("to continue to"), "{}", named.body);
    pages.add(named, ok);
    pages.add(
        admin
            .submit(
                "/admin/applications",
                "/admin/applications",
                &[
                    ("client_id", "bad id"),
                    ("name", ""),
                    ("redirect_uris", "http://x.example.org/#a"),
                ],
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    let setup = admin
        .submit(
            "/admin/users/jane/2fa/setup",
            "/admin/users/jane/2fa/setup",
            &[("method", "totp"), ("prompt_mode", "every_login")],
        )
        .await;
    assert_eq!(setup.status, StatusCode::SEE_OTHER, "{}", setup.body);
    pages.add(admin.get("/admin/users/jane/2fa/confirm").await, ok);
    let wrong = admin
        .submit(
            "/admin/users/jane/2fa/confirm",
            "/admin/users/jane/2fa/confirm",
            &[("code", "000000")],
        )
        .await;
    pages.add_any(wrong);
    for (form, action, fields) in [
        (
            "/admin/users/new",
            "/admin/users/new",
            vec![
                ("username", "no spaces allowed"),
                ("display_name", ""),
                ("email", "not an email"),
                ("role", "Nurses"),
                ("password", "short"),
            ],
        ),
        (
            "/admin/roles/new",
            "/admin/roles/new",
            vec![
                ("name", ""),
                ("require_2fa", "force"),
                ("otp_required", "no"),
            ],
        ),
        (
            "/admin/ip",
            "/admin/ip",
            vec![("network", "10.0.0.0/33"), ("note", "")],
        ),
        (
            "/admin/settings",
            "/admin/settings",
            vec![("lockout_threshold", "0")],
        ),
        (
            "/admin/email",
            "/admin/email",
            vec![
                ("subject", ""),
                ("text_body", "no code placeholder"),
                ("html_body", ""),
                ("action", "save"),
            ],
        ),
        (
            "/admin/email",
            "/admin/email",
            vec![
                ("subject", "Your code"),
                ("text_body", "Your code is {{otp}}"),
                ("html_body", "<p>{{otp}}</p>"),
                ("action", "preview"),
            ],
        ),
    ] {
        let page = admin.submit(form, action, &fields).await;
        let status = page.status;
        assert!(
            status.is_client_error() || status == ok,
            "{}: {status}",
            page.name
        );
        pages.add_any(page);
    }
    // The confirmation pages of dangerous changes (SPEC section 11).
    for (form, action, fields) in [
        (
            "/admin/ip",
            "/admin/ip",
            vec![("network", "0.0.0.0/0"), ("note", "")],
        ),
        (
            "/admin/roles/Clerks",
            "/admin/roles/Clerks",
            vec![
                ("name", "Clerks"),
                ("require_2fa", "force"),
                ("otp_required", "no"),
            ],
        ),
    ] {
        let page = admin.submit(form, action, &fields).await;
        assert!(
            page.body.contains("confirm_"),
            "{}:\n{}",
            page.name,
            page.body
        );
        pages.add(page, ok);
    }
    let kept = admin
        .submit(
            "/admin/ip",
            "/admin/ip",
            &[("network", "10.30.0.0/16"), ("note", "")],
        )
        .await;
    assert_eq!(kept.status, StatusCode::SEE_OTHER, "{}", kept.body);
    let rule = app.store.ip_rules().await.unwrap()[0].id;
    pages.add(
        admin
            .submit("/admin/ip", &format!("/admin/ip/{rule}/delete"), &[])
            .await,
        ok,
    );
    pages.add(
        admin.get("/admin/users/nobody").await,
        StatusCode::NOT_FOUND,
    );
    pages.add(
        admin.get("/admin/audit/export?from=soon").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    let expired = admin.post("/admin/ip", &[("network", "10.0.0.0/8")]).await;
    pages.add_any(expired);
    pages
}

/// tidy's messages about `html` that matter (empty when none).
fn tidy_problems(tidy: &Path, html: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("page.html");
    std::fs::write(&file, html).unwrap();
    let output = Command::new(tidy)
        .args(["-q", "-e", "--show-warnings", "yes", "--gnu-emacs", "no"])
        .arg(&file)
        .output()
        .unwrap();
    // 0: clean, 1: warnings, 2: errors; anything else is tidy failing.
    assert!(
        matches!(output.status.code(), Some(0..=2)),
        "tidy failed: {output:?}"
    );
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|line| !line.trim().is_empty())
        .filter(|line| {
            !IGNORED_WARNINGS
                .iter()
                .any(|ignored| line.contains(ignored))
        })
        .map(str::to_owned)
        .collect()
}

/// SPEC section 11: every page of the sign-in flow and the console, with errors shown,
/// is HTML that tidy finds no error in.
#[tokio::test]
async fn every_sign_in_and_console_page_passes_html_tidy() {
    let Some(tidy) = require_program("tidy", "apt-get install tidy") else {
        return;
    };
    let app = spawn_app().await;
    let pages = every_page(&app).await;
    assert!(pages.0.len() >= 40, "only {} pages", pages.0.len());
    eprintln!("tidy checks {} pages", pages.0.len());
    let mut report = Vec::new();
    for page in &pages.0 {
        for problem in tidy_problems(&tidy, &page.body) {
            report.push(format!("{} ({}): {problem}", page.name, page.status));
        }
    }
    assert!(
        report.is_empty(),
        "tidy found problems in {} of {} pages:\n{}",
        report.len(),
        pages.0.len(),
        report.join("\n")
    );
    app.stop().await;
}

/// The check itself catches what it should: a broken page fails it, named.
#[test]
fn tidy_reports_a_broken_page_and_passes_a_sound_one() {
    let Some(tidy) = require_program("tidy", "apt-get install tidy") else {
        return;
    };
    let sound = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>t</title></head><body><main><time datetime=\"2027-01-15T08:00:00Z\">x</time></main></body></html>";
    assert_eq!(tidy_problems(&tidy, sound), Vec::<String>::new());
    let broken = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>t</title></head><body><main><p>a</div><table><tr><td>x</td></tr></table></main></body></html>";
    let problems = tidy_problems(&tidy, broken);
    assert!(!problems.is_empty());
    assert!(
        problems
            .iter()
            .any(|line| line.contains("discarding unexpected </div>")),
        "{problems:?}"
    );
}
