//! `/metrics`: the Prometheus text, read by an independent parser (the Python
//! `prometheus_client` library's), moves with the traffic of the test.

use std::collections::HashMap;
use std::io::Write;

use reqwest::StatusCode;
use serde_json::json;
use twostep::domain::{PromptMode, Require2fa};

use crate::helpers::{require_program, spawn_app_with, AppOptions, TestApp};

/// Samples by `name{label="value",...}` (labels sorted), as the parser reads them.
type Samples = HashMap<String, f64>;

const PARSER: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        out[f"{s.name}{{{labels}}}"] = s.value
print(json.dumps(out))
"#;

/// Scrapes `/metrics` and parses it; `None` (skipped) outside CI without the parser.
async fn scrape(app: &TestApp) -> Option<Samples> {
    let python = require_program("python3", "the python3 package")?;
    let response = reqwest::get(format!("{}/metrics", app.address))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    let mut child = std::process::Command::new(python)
        .args(["-c", PARSER])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("No module named 'prometheus_client'") {
        if std::env::var_os("CI").is_some() {
            panic!(
                "prometheus_client is required in CI (python3 -m pip install prometheus_client)"
            );
        }
        eprintln!("SKIPPED: prometheus_client is not installed; CI runs this test");
        return None;
    }
    assert!(
        output.status.success(),
        "the text does not parse as Prometheus text: {stderr}\n{text}"
    );
    Some(serde_json::from_slice(&output.stdout).unwrap())
}

fn value(samples: &Samples, key: &str) -> f64 {
    *samples
        .get(key)
        .unwrap_or_else(|| panic!("no sample {key} among {:?}", samples.keys()))
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_count_the_traffic() {
    let app = spawn_app_with(AppOptions::default()).await;
    let Some(before) = scrape(&app).await else {
        return;
    };
    let role = app.role("Clinician", Require2fa::Force, false, false).await;
    let user = app.user("jane", &role, true).await;
    let totp = app.enroll_totp(&user, PromptMode::EveryLogin).await;
    // A wrong password, a wrong code, then a complete sign-in.
    let (status, _) = app
        .post(
            "/api/v1/signin",
            json!({"username": "jane", "password": "nope"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let password = json!({"username": "jane", "password": TestApp::password_of("jane")});
    let (_, started) = app.post("/api/v1/signin", password.clone()).await;
    let (status, _) = app
        .post(
            "/api/v1/signin/otp",
            json!({"transaction": started["transaction"], "code": "000000"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, started) = app.post("/api/v1/signin", password).await;
    let (status, _) = app
        .post(
            "/api/v1/signin/otp",
            json!({"transaction": started["transaction"], "code": app.totp_now(&totp)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let after = scrape(&app).await.unwrap();

    let delta = |key: &str| value(&after, key) - value(&before, key);
    assert_eq!(delta(r#"twostep_signins_total{outcome="signed_in"}"#), 1.0);
    assert_eq!(delta(r#"twostep_signins_total{outcome="failed"}"#), 2.0);
    assert_eq!(
        delta(r#"twostep_otp_checks_total{method="totp",outcome="accepted"}"#),
        1.0
    );
    assert_eq!(
        delta(r#"twostep_otp_checks_total{method="totp",outcome="refused"}"#),
        1.0
    );
    // Five sign-in API calls: 2 answered 200, 3 answered 401 (+Inf bucket = count).
    let route = r#"route="/api/v1/signin""#;
    assert_eq!(
        value(
            &after,
            &format!(r#"twostep_http_request_duration_seconds_count{{{route},status="2xx"}}"#)
        ),
        2.0
    );
    assert_eq!(
        value(
            &after,
            &format!(
                r#"twostep_http_request_duration_seconds_bucket{{le="+Inf",{route},status="4xx"}}"#
            )
        ),
        1.0
    );
    assert!(value(&after, r#"twostep_db_pool_max_connections{}"#) >= 1.0);
    assert!(value(&after, r#"twostep_db_pool_connections{state="idle"}"#) >= 0.0);
    app.stop().await;
}

#[tokio::test]
async fn emails_sent_are_counted() {
    let app = spawn_app_with(AppOptions::default()).await;
    let Some(before) = scrape(&app).await else {
        return;
    };
    let role = app.role("Nurse", Require2fa::No, true, false).await;
    app.user("ana", &role, true).await;
    let (_, answer) = app
        .post(
            "/api/v1/signin",
            json!({"username": "ana", "password": TestApp::password_of("ana")}),
        )
        .await;
    assert_eq!(answer["method"], "email");
    // Delivered by the server's own worker (the helper waits for it).
    assert_eq!(app.mails().await.len(), 1);
    let mut sent = 0.0;
    for _ in 0..100 {
        let now = scrape(&app).await.unwrap();
        sent = value(&now, r#"twostep_emails_total{outcome="sent"}"#)
            - value(&before, r#"twostep_emails_total{outcome="sent"}"#);
        if sent >= 1.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The helper may deliver with its own worker, which counts on the same context.
    assert_eq!(sent, 1.0);
    app.stop().await;
}

#[tokio::test]
async fn metrics_are_refused_outside_the_metrics_networks() {
    // Behind a trusted proxy, the client is the forwarded address, not loopback.
    let app = spawn_app_with(AppOptions {
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        ..AppOptions::default()
    })
    .await;
    // An unparsable hop is an unknown client, not the (loopback) proxy.
    for forwarded in ["203.0.113.9", "a"] {
        let refused = reqwest::Client::new()
            .get(format!("{}/metrics", app.address))
            .header("x-forwarded-for", forwarded)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{forwarded}");
        assert!(!refused.text().await.unwrap().contains("twostep_"));
    }
    app.stop().await;
}
