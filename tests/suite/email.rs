//! Emailed OTP delivery against a real SMTP server process (Python's aiosmtpd on
//! 127.0.0.1): arrival, outages, expiry, restarts and several workers.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use serde_json::json;
use twostep::domain::AuditEvent;
use twostep::domain::{Require2fa, SettingKey};
use twostep::mail::delivery::{SmtpSecurity, SmtpSettings, Transport};
use twostep::mail::template::EmailTemplate;
use twostep::service::emailed::{save_otp_template, SaveTemplateError};
use twostep::service::outbox::Worker;
use twostep::store::{AuditQuery, NewOutboxMessage, OutboxState};

use crate::helpers::{
    code_in_email, free_port, spawn_app_with, AppOptions, NowTs, SmtpSink, TestApp, TestDb,
};

async fn otp_user(app: &TestApp) {
    let role = app.role("Front Desk", Require2fa::No, true, false).await;
    app.user("jane", &role, true).await;
}

async fn start_sign_in(app: &TestApp) -> String {
    let (status, answer) = app
        .post(
            "/api/v1/signin",
            json!({ "username": "jane", "password": TestApp::password_of("jane") }),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["method"], "email");
    answer["transaction"].as_str().unwrap().to_owned()
}

/// Waits (bounded) until a delivery attempt has failed.
async fn wait_for_attempt(app: &TestApp) {
    for _ in 0..200 {
        let attempted = matches!(
            outbox_state(app).await,
            Some(OutboxState::Pending { failed: true, .. })
        );
        if attempted {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the outbox worker never tried to send");
}

async fn outbox_state(app: &TestApp) -> Option<OutboxState> {
    // The newest emailed OTP is id 1 in these tests (one sign-in each).
    app.store
        .outbox_state_for_otp(twostep::domain::EmailedOtpId(1))
        .await
        .unwrap()
}

#[tokio::test]
async fn the_otp_email_arrives_over_smtp_with_the_right_headers_and_its_code_signs_in() {
    let port = free_port();
    let maildir = tempfile::tempdir().unwrap();
    let Some(sink) = SmtpSink::start(port, maildir.path()).await else {
        return;
    };
    let app = spawn_app_with(AppOptions {
        smtp_port: Some(port),
        ..Default::default()
    })
    .await;
    app.settings(&[(SettingKey::Autoreply, "mfa@hospital.example")])
        .await;
    otp_user(&app).await;
    let transaction = start_sign_in(&app).await;
    let messages = sink.wait_for(1, 20).await;
    assert_eq!(messages.len(), 1, "the message arrived");
    let mail = &messages[0];
    assert!(mail.contains("From: mfa@hospital.example"), "{mail}");
    assert!(
        mail.contains("To: \"jane Display\" <jane@example.org>"),
        "{mail}"
    );
    assert!(
        mail.contains("Subject: Your sign-in code for St. Elsewhere"),
        "{mail}"
    );
    assert!(
        mail.contains("X-RcptTo: jane@example.org"),
        "the envelope recipient"
    );
    assert!(mail.contains("Message-ID: <twostep."), "{mail}");
    // The worker marks the message sent once the server has answered; the sink may have
    // handed it over a moment before.
    let mut state = outbox_state(&app).await;
    for _ in 0..100 {
        if state == Some(OutboxState::Sent) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        state = outbox_state(&app).await;
    }
    assert_eq!(state, Some(OutboxState::Sent));
    let code = code_in_email(mail).expect("a code in the body");
    let (_, done) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": transaction, "code": code }),
        )
        .await;
    assert_eq!(done["status"], "signed_in");
}

#[tokio::test]
async fn smtp_down_when_the_code_is_requested_then_up_within_validity_delivers_it() {
    let port = free_port();
    let maildir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(AppOptions {
        smtp_port: Some(port),
        ..Default::default()
    })
    .await;
    otp_user(&app).await;
    let transaction = start_sign_in(&app).await;
    wait_for_attempt(&app).await;
    assert!(
        app.signin_still_sending(&transaction).await,
        "the page says we are still sending"
    );
    let Some(sink) = SmtpSink::start(port, maildir.path()).await else {
        return;
    };
    // The retry comes due (backoff 2 s on the manual clock) and runs.
    app.clock.advance_seconds(2);
    app.ctx.wake_outbox();
    let messages = sink.wait_for(1, 20).await;
    assert_eq!(messages.len(), 1);
    let code = code_in_email(&messages[0]).unwrap();
    let (_, done) = app
        .post(
            "/api/v1/signin/otp",
            json!({ "transaction": transaction, "code": code }),
        )
        .await;
    assert_eq!(done["status"], "signed_in");
}

#[tokio::test]
async fn smtp_never_up_makes_the_message_dead_after_the_validity_and_audits_it() {
    let port = free_port();
    let app = spawn_app_with(AppOptions {
        smtp_port: Some(port),
        ..Default::default()
    })
    .await;
    app.settings(&[(SettingKey::OtpValidSeconds, "60")]).await;
    otp_user(&app).await;
    start_sign_in(&app).await;
    wait_for_attempt(&app).await;
    app.clock.advance_seconds(61);
    let dead_entries = || async {
        app.store
            .audit_entries(&AuditQuery {
                event: Some(AuditEvent::EmailDead),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap()
    };
    // The worker marks the message dead, then audits it: wait (bounded) for both.
    for _ in 0..200 {
        app.ctx.wake_outbox();
        if outbox_state(&app).await == Some(OutboxState::Dead) && !dead_entries().await.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(outbox_state(&app).await, Some(OutboxState::Dead));
    let dead = dead_entries().await;
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].detail.contains("j***@example.org"),
        "{}",
        dead[0].detail
    );
    assert!(!dead[0].detail.contains("jane@"), "the address is masked");
}

#[tokio::test]
async fn a_custom_template_with_every_placeholder_is_used_and_an_unknown_one_refused() {
    let app = spawn_app_with(AppOptions::default()).await;
    otp_user(&app).await;
    let custom = EmailTemplate {
        subject: "@site_name code for @user_id".into(),
        text_body: "Dear @user_name (@user_id), your code is\n\n@user_otp\n\nValid @otp_valid_minutes minutes at @site_name.\n".into(),
        html_body: Some("<p>Dear @user_name, your code is <b>@user_otp</b>.</p>".into()),
    };
    save_otp_template(&app.ctx, &custom, "admin", None)
        .await
        .unwrap();
    let unknown = EmailTemplate {
        text_body: "Your PIN: @user_pin @user_otp".into(),
        ..custom.clone()
    };
    let refused = save_otp_template(&app.ctx, &unknown, "admin", None).await;
    assert!(matches!(&refused, Err(SaveTemplateError::Invalid(_))));
    assert!(refused.unwrap_err().to_string().contains("@user_pin"));
    start_sign_in(&app).await;
    let mail = app.mails().await.pop().unwrap();
    assert!(
        mail.contains("Subject: St. Elsewhere code for jane"),
        "{mail}"
    );
    assert!(
        mail.contains("Dear jane Display (jane), your code is"),
        "{mail}"
    );
    assert!(
        mail.contains("Valid 15 minutes at St. Elsewhere."),
        "{mail}"
    );
    assert!(code_in_email(&mail).is_some());
}

/// The twostep binary as a separate process, to be killed for real.
pub(crate) struct ServerProcess(Child);

impl ServerProcess {
    async fn start(data_dir: &std::path::Path, port: u16, smtp_port: u16) -> Self {
        Self::start_with(
            data_dir,
            port,
            &[
                "--smtp-host",
                "127.0.0.1",
                "--smtp-port",
                &smtp_port.to_string(),
                "--smtp-security",
                "plain",
            ],
        )
        .await
    }

    /// `twostep serve` on `data_dir` and `port`, with more arguments; its log (standard
    /// error, default filter) is appended to `<data_dir>/server.log`.
    pub(crate) async fn start_with(data_dir: &std::path::Path, port: u16, args: &[&str]) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("server.log"))
            .expect("the server log opens");
        let child = Command::new(env!("CARGO_BIN_EXE_twostep"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .arg("--data-dir")
            .arg(data_dir)
            .env("TWOSTEP_ADMIN_PASSWORD", "admin password for tests")
            .env_remove("TWOSTEP_LOG")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("twostep starts");
        // Owned by the guard at once: killed and reaped on every path, panics included.
        let server = Self(child);
        let client = reqwest::Client::new();
        for _ in 0..400 {
            if client
                .get(format!("http://127.0.0.1:{port}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return server;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("twostep did not answer /healthz");
    }

    pub(crate) fn kill_9(mut self) {
        // SIGKILL: no graceful shutdown, no chance to flush anything.
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_server_killed_with_messages_in_the_outbox_sends_them_after_restart() {
    let data = tempfile::tempdir().unwrap();
    let maildir = tempfile::tempdir().unwrap();
    let (web, smtp) = (free_port(), free_port());
    let server = ServerProcess::start(data.path(), web, smtp).await;
    // A user with OTP Required, written to the same database beside the running server.
    let store = twostep::store::Store::open(&twostep::store::StoreOptions {
        database_url: format!("sqlite://{}", data.path().join("twostep.db").display()),
        key: twostep::store::KeySource::File(data.path().join("twostep.key")),
        max_connections: Some(2),
    })
    .await
    .unwrap();
    let clock = twostep::clock::ManualClock::new(crate::helpers::START);
    let role = store
        .create_role(
            &twostep::domain::RoleName::parse("Front Desk").unwrap(),
            twostep::domain::RoleSecurity::new(Require2fa::No, true, false).unwrap(),
            &Default::default(),
            twostep::domain::SessionLimits::DEFAULT,
            clock.now_ts(),
        )
        .await
        .unwrap();
    let hasher = twostep::password::PasswordHasher::new(1).unwrap();
    let hash = hasher
        .hash(&twostep::password::Password::new_password(TestApp::password_of("jane")).unwrap())
        .await
        .unwrap();
    store
        .create_user(
            &twostep::store::NewUser {
                username: twostep::domain::Username::parse("jane").unwrap(),
                display_name: twostep::domain::DisplayName::parse("Jane").unwrap(),
                email: Some(twostep::domain::Email::parse("jane@example.org").unwrap()),
                role_id: role.id,
                password_hash: hash,
                must_change_password: false,
            },
            clock.now_ts(),
        )
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let answer: serde_json::Value = client
        .post(format!("http://127.0.0.1:{web}/api/v1/signin"))
        .json(&json!({ "username": "jane", "password": TestApp::password_of("jane") }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["method"], "email", "{answer}");
    assert_eq!(
        store.outbox_pending().await.unwrap(),
        1,
        "queued while SMTP is down"
    );
    // Kill between two attempts: right after a failed attempt was recorded (which also
    // ends its lease). A process killed during an attempt leaves the message leased for
    // the lease time (120 s) before another worker may take it, which is the point of
    // the lease but would make this test slow.
    for _ in 0..200 {
        if matches!(
            store
                .outbox_state_for_otp(twostep::domain::EmailedOtpId(1))
                .await
                .unwrap(),
            Some(OutboxState::Pending { failed: true, .. })
        ) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    server.kill_9();

    let Some(sink) = SmtpSink::start(smtp, maildir.path()).await else {
        return;
    };
    let _restarted = ServerProcess::start(data.path(), web, smtp).await;
    let messages = sink.wait_for(1, 30).await;
    assert_eq!(messages.len(), 1, "sent after the restart");
    assert!(code_in_email(&messages[0]).is_some());
    // The worker marks the message sent just after the SMTP server has it: wait (bounded).
    let mut pending = store.outbox_pending().await.unwrap();
    for _ in 0..100 {
        if pending == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        pending = store.outbox_pending().await.unwrap();
    }
    assert_eq!(pending, 0);
}

#[tokio::test]
async fn two_workers_sharing_postgresql_send_each_message_exactly_once() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let port = free_port();
    let maildir = tempfile::tempdir().unwrap();
    let Some(sink) = SmtpSink::start(port, maildir.path()).await else {
        return;
    };
    let clock = twostep::clock::ManualClock::new(crate::helpers::START);
    let smtp = SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        security: SmtpSecurity::Plain,
        username: None,
        password: None,
        timeout: std::time::Duration::from_secs(10),
    };
    let mut workers = Vec::new();
    for _ in 0..2 {
        let store = db.open().await;
        let ctx = twostep::service::Context::new(
            store.clone(),
            twostep::password::PasswordHasher::new(1).unwrap(),
            Arc::new(clock.clone()),
            twostep::service::ServiceConfig::default(),
        );
        workers.push((store, Worker::new(ctx, Transport::smtp(&smtp).unwrap())));
    }
    let store = workers[0].0.clone();
    const MESSAGES: usize = 40;
    for n in 0..MESSAGES {
        let message_id = format!("<twostep.race.{n}@localhost>");
        let payload = format!("From: no-reply@localhost\r\nTo: user{n}@example.org\r\nSubject: {n}\r\nMessage-ID: {message_id}\r\n\r\nmessage {n}\r\n");
        store
            .enqueue(
                &NewOutboxMessage {
                    message_id,
                    from: "no-reply@localhost".into(),
                    to: format!("user{n}@example.org"),
                    payload: payload.into_bytes(),
                    expires_at: crate::helpers::START.plus_seconds(900),
                },
                clock.now_ts(),
            )
            .await
            .unwrap();
    }
    let runs: Vec<_> = workers
        .into_iter()
        .map(|(store, worker)| {
            tokio::spawn(async move {
                let mut handled = 0;
                // Bounded: a broken delivery fails the test instead of spinning.
                for _ in 0..1000 {
                    if store.outbox_pending().await.unwrap() == 0 {
                        break;
                    }
                    handled += worker.pass().await.unwrap();
                }
                handled
            })
        })
        .collect();
    let mut handled = Vec::new();
    for run in runs {
        handled.push(run.await.unwrap());
    }
    assert_eq!(
        handled.iter().sum::<usize>(),
        MESSAGES,
        "each claimed once: {handled:?}"
    );
    let messages = sink.wait_for(MESSAGES, 20).await;
    assert_eq!(messages.len(), MESSAGES);
    let mut ids: Vec<String> = messages
        .iter()
        .filter_map(|m| {
            m.lines()
                .find(|l| l.starts_with("Message-ID:"))
                .map(str::to_owned)
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), MESSAGES, "no message sent twice");
    db.finish().await;
}
