//! SPEC 13's client registry through the JSON API (`/api/v1/oidc/clients`): registration
//! with the stored outcome and its audit entry, the secret shown once and stored only as
//! its hash, the permission `manage_applications`, bad fields, unknown clients and a
//! taken client id.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use twostep::domain::oidc::ClientId;
use twostep::domain::{AuditEvent, Permission};
use twostep::store::AuditQuery;

use crate::admin_api::{admin, call, signed_in_with};
use crate::helpers::{spawn_app, TestApp};

const CLIENTS: &str = "/api/v1/oidc/clients";

async fn audit_details(app: &TestApp, event: AuditEvent) -> Vec<(Option<String>, String)> {
    app.store
        .audit_entries(&AuditQuery {
            event: Some(event),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|entry| (entry.actor, entry.detail))
        .collect()
}

fn wiki() -> Value {
    json!({
        "client_id": "wiki",
        "name": "Team Wiki",
        "redirect_uris": ["https://wiki.example.org/oidc/callback", "http://127.0.0.1:8400/cb"],
        "post_logout_redirect_uris": ["https://wiki.example.org/"],
        "confidential": true,
        "require_2fa": false
    })
}

/// Every file of the app's data directory (the SQLite database and its WAL), as bytes.
fn data_files(app: &TestApp) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(app.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            bytes.extend(std::fs::read(path).unwrap());
        }
    }
    bytes
}

/// SPEC 13: an administrator registers a confidential client; the 201 answer alone
/// carries its `client_secret`, which is stored only as its SHA-256 (the database files do
/// not contain it); reading and listing show the registration without a secret; a change
/// and the removal are stored, and each step is audited with its values and no secret.
#[tokio::test]
async fn an_administrator_registers_changes_and_removes_an_application_audited() {
    let app = spawn_app().await;
    let token = admin(&app).await;

    let (status, created) = call(&app, Method::POST, CLIENTS, Some(&token), Some(wiki())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 43, "256 bits as base64url");
    let mut expected = wiki();
    expected["client_secret"] = json!(secret);
    assert_eq!(created, expected);

    let stored = app
        .store
        .oidc_client(&ClientId::parse("wiki").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.name, "Team Wiki");
    assert!(stored.confidential && !stored.require_2fa);
    let hash = app
        .store
        .oidc_client_secret_hash(&stored.client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hash, Sha256::digest(secret.as_bytes()).to_vec());
    let files = data_files(&app);
    assert!(
        !files.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the secret is not stored"
    );

    let (status, one) = call(
        &app,
        Method::GET,
        &format!("{CLIENTS}/wiki"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one, wiki(), "shown once: no secret when read");
    let (status, list) = call(&app, Method::GET, CLIENTS, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list, json!({ "clients": [wiki()] }));

    let created_audit = audit_details(&app, AuditEvent::ApplicationCreated).await;
    assert_eq!(created_audit.len(), 1);
    assert_eq!(created_audit[0].0.as_deref(), Some("admin"));
    assert!(
        created_audit[0].1.contains("client_id=wiki"),
        "{created_audit:?}"
    );
    assert!(created_audit[0].1.contains("confidential=yes"));
    assert!(!created_audit[0].1.contains(&secret));

    let (status, changed) = call(
        &app,
        Method::PATCH,
        &format!("{CLIENTS}/wiki"),
        Some(&token),
        Some(json!({ "name": "Wiki", "redirect_uris": ["https://wiki.example.org/cb"], "require_2fa": true })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["name"], "Wiki");
    assert_eq!(
        changed["redirect_uris"],
        json!(["https://wiki.example.org/cb"])
    );
    assert_eq!(
        changed["post_logout_redirect_uris"],
        json!(["https://wiki.example.org/"])
    );
    assert_eq!(changed["require_2fa"], true);
    assert!(changed.get("client_secret").is_none());
    let stored = app
        .store
        .oidc_client(&stored.client_id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.require_2fa && stored.name == "Wiki");
    assert_eq!(
        app.store
            .oidc_client_secret_hash(&stored.client_id)
            .await
            .unwrap(),
        Some(hash),
        "a change keeps the secret"
    );
    let changed_audit = audit_details(&app, AuditEvent::ApplicationChanged).await;
    assert_eq!(changed_audit.len(), 1);
    assert!(changed_audit[0]
        .1
        .contains("before: client_id=wiki name=Team Wiki"));
    assert!(changed_audit[0]
        .1
        .contains("after: client_id=wiki name=Wiki"));

    let (status, answer) = call(
        &app,
        Method::DELETE,
        &format!("{CLIENTS}/wiki"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
    assert!(app.store.list_oidc_clients().await.unwrap().is_empty());
    let deleted_audit = audit_details(&app, AuditEvent::ApplicationDeleted).await;
    assert_eq!(deleted_audit.len(), 1);
    assert!(deleted_audit[0].1.contains("client_id=wiki"));
}

/// SPEC 13: a public client (a browser or native app) gets no secret and stores none;
/// `confidential` defaults to true, `require_2fa` to false and the logout URIs to none.
#[tokio::test]
async fn a_public_client_gets_no_secret_and_defaults_apply() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let (status, created) = call(
        &app,
        Method::POST,
        CLIENTS,
        Some(&token),
        Some(json!({ "client_id": "org.example.app", "name": "Phone app",
                     "redirect_uris": ["org.example.app:/callback"], "confidential": false })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(created.get("client_secret").is_none(), "{created}");
    assert_eq!(created["post_logout_redirect_uris"], json!([]));
    assert_eq!(created["require_2fa"], false);
    let id = ClientId::parse("org.example.app").unwrap();
    assert_eq!(app.store.oidc_client_secret_hash(&id).await.unwrap(), None);

    let (status, created) = call(
        &app,
        Method::POST,
        CLIENTS,
        Some(&token),
        Some(json!({ "client_id": "erp", "name": "ERP", "redirect_uris": ["https://erp.example.org/cb"] })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["confidential"], true);
    assert!(created["client_secret"].is_string());
}

/// SPEC 13: every client endpoint needs `manage_applications` (403 `forbidden` naming it,
/// nothing stored or removed), which alone is enough.
#[tokio::test]
async fn applications_need_manage_applications() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let (status, _) = call(&app, Method::POST, CLIENTS, Some(&token), Some(wiki())).await;
    assert_eq!(status, StatusCode::CREATED);
    let others: Vec<Permission> = Permission::ALL
        .into_iter()
        .filter(|p| *p != Permission::ManageApplications)
        .collect();
    let clerk = signed_in_with(&app, "clerk", &others).await;
    let one = format!("{CLIENTS}/wiki");
    let attempts = [
        (Method::GET, CLIENTS, None),
        (
            Method::POST,
            CLIENTS,
            Some(
                json!({ "client_id": "other", "name": "Other", "redirect_uris": ["https://other.example.org/cb"] }),
            ),
        ),
        (Method::GET, one.as_str(), None),
        (
            Method::PATCH,
            one.as_str(),
            Some(json!({ "name": "Renamed" })),
        ),
        (Method::DELETE, one.as_str(), None),
    ];
    for (method, path, body) in attempts.clone() {
        let (status, answer) = call(&app, method.clone(), path, Some(&clerk), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
        assert_eq!(answer["code"], "forbidden");
        assert_eq!(answer["permission"], "manage_applications");
    }
    let clients = app.store.list_oidc_clients().await.unwrap();
    assert_eq!(clients.len(), 1);
    assert_eq!(clients[0].name, "Team Wiki");

    let keeper = signed_in_with(&app, "keeper", &[Permission::ManageApplications]).await;
    let (status, list) = call(&app, Method::GET, CLIENTS, Some(&keeper), None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["clients"].as_array().unwrap().len(), 1);
}

/// SPEC 13 with the domain's rules: each bad field is a 422 `invalid_field` naming it, and
/// nothing is stored: a redirect URI with a fragment, `http://` to a host that is not this
/// machine, no redirect URI, a bad client id, no name, a bad logout URI; a change of
/// `confidential` is refused too.
#[tokio::test]
async fn bad_application_input_names_the_field_and_stores_nothing() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let with = |field: &str, value: Value| {
        let mut body = wiki();
        body[field] = value;
        body
    };
    let cases = [
        (
            with("redirect_uris", json!(["https://wiki.example.org/cb#top"])),
            "redirect_uris",
        ),
        (
            with("redirect_uris", json!(["http://wiki.example.org/cb"])),
            "redirect_uris",
        ),
        (with("redirect_uris", json!([])), "redirect_uris"),
        (
            with("redirect_uris", json!(["/relative/cb"])),
            "redirect_uris",
        ),
        (
            with(
                "redirect_uris",
                json!(["https://wiki.example.org/cb", "https://wiki.example.org/cb"]),
            ),
            "redirect_uris",
        ),
        (with("client_id", json!("my wiki")), "client_id"),
        (with("client_id", json!("")), "client_id"),
        (with("client_id", json!("w".repeat(65))), "client_id"),
        (with("name", json!("  ")), "name"),
        (
            with("post_logout_redirect_uris", json!(["http://example.org/"])),
            "post_logout_redirect_uris",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = call(
            &app,
            Method::POST,
            CLIENTS,
            Some(&token),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["code"], "invalid_field", "{answer}");
        assert_eq!(answer["field"], field, "{body}: {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert!(app.store.list_oidc_clients().await.unwrap().is_empty());

    let (status, answer) = call(
        &app,
        Method::POST,
        CLIENTS,
        Some(&token),
        Some(json!({ "client_id": "wiki", "name": "Wiki", "redirect_uris": ["https://wiki.example.org/cb"], "secret": "mine" })),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown fields: {answer}"
    );
    assert_eq!(answer["code"], "invalid_input");

    let (status, _) = call(&app, Method::POST, CLIENTS, Some(&token), Some(wiki())).await;
    assert_eq!(status, StatusCode::CREATED);
    let one = format!("{CLIENTS}/wiki");
    for (patch, field) in [
        (json!({ "confidential": false }), "confidential"),
        (
            json!({ "redirect_uris": ["https://wiki.example.org/#x"] }),
            "redirect_uris",
        ),
        (json!({ "redirect_uris": [] }), "redirect_uris"),
        (json!({ "name": "" }), "name"),
    ] {
        let (status, answer) =
            call(&app, Method::PATCH, &one, Some(&token), Some(patch.clone())).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{patch}: {answer}"
        );
        assert_eq!(answer["field"], field, "{patch}: {answer}");
    }
    let (_, unchanged) = call(&app, Method::GET, &one, Some(&token), None).await;
    assert_eq!(unchanged, wiki());
    assert!(audit_details(&app, AuditEvent::ApplicationChanged)
        .await
        .is_empty());
}

/// SPEC 13: an unknown client id (or one that cannot be one) is 404 `not_found` for
/// reading, changing and removing; client ids match exactly, case included.
#[tokio::test]
async fn an_unknown_application_is_not_found() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let (status, _) = call(&app, Method::POST, CLIENTS, Some(&token), Some(wiki())).await;
    assert_eq!(status, StatusCode::CREATED);
    for path in ["/nobody", "/WIKI", "/not%20an%20id"] {
        let path = format!("{CLIENTS}{path}");
        for (method, body) in [
            (Method::GET, None),
            (Method::PATCH, Some(json!({ "name": "X" }))),
            (Method::DELETE, None),
        ] {
            let (status, answer) = call(&app, method.clone(), &path, Some(&token), body).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
            assert_eq!(answer["code"], "not_found");
        }
    }
    assert_eq!(app.store.list_oidc_clients().await.unwrap().len(), 1);
}

/// SPEC 13: a client id is registered once: a second registration is 409
/// `client_id_taken` and the first stays as it was, secret included.
#[tokio::test]
async fn a_taken_client_id_is_a_conflict() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let (status, first) = call(&app, Method::POST, CLIENTS, Some(&token), Some(wiki())).await;
    assert_eq!(status, StatusCode::CREATED);
    let mut again = wiki();
    again["name"] = json!("Another wiki");
    let (status, answer) = call(&app, Method::POST, CLIENTS, Some(&token), Some(again)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["code"], "client_id_taken");
    let id = ClientId::parse("wiki").unwrap();
    assert_eq!(
        app.store.oidc_client(&id).await.unwrap().unwrap().name,
        "Team Wiki"
    );
    let secret = first["client_secret"].as_str().unwrap();
    assert_eq!(
        app.store.oidc_client_secret_hash(&id).await.unwrap(),
        Some(Sha256::digest(secret.as_bytes()).to_vec())
    );
    assert_eq!(
        audit_details(&app, AuditEvent::ApplicationCreated)
            .await
            .len(),
        1
    );
}

/// SPEC 13: a confidential application gets a new secret, shown once (stored as its hash;
/// the old one no longer matches), audited without it; a public one has none to replace
/// (422 `confidential`), an unknown one is 404, and it needs `manage_applications`.
#[tokio::test]
async fn a_confidential_application_gets_a_new_secret_shown_once() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let (_, created) = call(&app, Method::POST, CLIENTS, Some(&token), Some(wiki())).await;
    let old = created["client_secret"].as_str().unwrap().to_owned();
    let path = format!("{CLIENTS}/wiki/secret");
    let (status, answer) = call(&app, Method::POST, &path, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let new = answer["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(new.len(), 43);
    assert_ne!(new, old);
    let hash = app
        .store
        .oidc_client_secret_hash(&ClientId::parse("wiki").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hash, Sha256::digest(new.as_bytes()).to_vec());
    assert_ne!(hash, Sha256::digest(old.as_bytes()).to_vec());
    let entries = app
        .store
        .audit_entries(&AuditQuery {
            event: Some(AuditEvent::ApplicationChanged),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(entries[0].detail, "new client secret for wiki");
    assert!(!entries[0].detail.contains(&new));

    let (_, _) = call(
        &app,
        Method::POST,
        CLIENTS,
        Some(&token),
        Some(
            json!({ "client_id": "phone", "name": "Phone", "confidential": false,
                     "redirect_uris": ["org.example.phone:/cb"] }),
        ),
    )
    .await;
    let (status, answer) = call(
        &app,
        Method::POST,
        &format!("{CLIENTS}/phone/secret"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["field"], "confidential");
    let (status, _) = call(
        &app,
        Method::POST,
        &format!("{CLIENTS}/nobody/secret"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let auditor = signed_in_with(&app, "auditor", &[Permission::ViewAuditLog]).await;
    let (status, _) = call(&app, Method::POST, &path, Some(&auditor), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.stop().await;
}
