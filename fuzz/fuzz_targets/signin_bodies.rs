//! JSON and form bodies of the sign-in API, through the real router in process.
//!
//! The body types of `src/web/signin_api.rs`, `src/web/verify.rs` and `src/web/pages.rs`
//! are private, so the fuzz input goes where a client's would: as the body of a request
//! to `twostep::web::router`, built once (static) over a fresh SQLite database in a temp
//! directory, and driven with `tower::ServiceExt::oneshot` on a current-thread runtime.
//!
//! Input: the first byte picks the request, the rest is the body (any bytes, UTF-8 or
//! not). `$TX` in the body is replaced by a live sign-in transaction of `alice` (password
//! `alice password 123`, emailed OTP), so the fuzzer reaches past "unknown transaction".
//!
//! | first byte % 6 | request |
//! |---|---|
//! | 0 | `POST /api/v1/signin`, `application/json` |
//! | 1 | `POST /api/v1/signin/otp`, `application/json` |
//! | 2 | `POST /api/v1/verify`, `application/json`, bearer token with `verify_otp` |
//! | 3 | `POST /signin` form, anonymous CSRF cookie, body prefixed with its `csrf=...&` |
//! | 4 | `POST /signin` form, anonymous CSRF cookie, body as given (must carry `csrf` itself) |
//! | 5 | `POST /signin/verify` form, CSRF and transaction cookies, `csrf=...&` prefix |
//!
//! The `csrf=...` prefix is the token a page would show to that browser
//! (`web::csrf::token_for`: a MAC of the transaction, else of the anonymous cookie).
//!
//! `TWOSTEP_FUZZ_TRACE=1` prints every request's path, status and the start of the answer.
//!
//! Property: no answer is a 5xx. A 500 is a crash here: the target panics with the
//! request, the status and the body.
#![no_main]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Body;
use axum::http::{header, Method, Request};
use axum::Router;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;
use twostep::clock::{Clock, SystemClock};
use twostep::config::ServeArgs;
use twostep::crypto::Token;
use twostep::domain::{
    DisplayName, Email, Permission, Require2fa, RoleName, RoleSecurity, SettingKey, UserId,
    Username,
};
use twostep::password::{Password, PasswordHasher};
use twostep::service::admin::Admin;
use twostep::service::signin::SignIn;
use twostep::service::verify::SecondFactor;
use twostep::service::Context;
use twostep::startup::Application;
use twostep::store::{NewUser, Store};
use twostep::web::{cookies, csrf, router, AppState, ForwardAuth, Shared};

const ALICE_PASSWORD: &str = "alice password 123";
/// The anonymous CSRF cookie of the fuzzing "browser" (a well-formed token; the form's
/// token is its MAC under the server key).
const CSRF: &str = "ZnV6emluZy1icm93c2VyLWFub255bW91cy1jb29raWU";
/// After this many uses a fresh transaction replaces the old one.
const TRANSACTION_USES: u32 = 200;

struct App {
    runtime: tokio::runtime::Runtime,
    router: Router,
    ctx: Context,
    store: Store,
    verify_token: String,
    alice: UserId,
    transaction: Mutex<String>,
    transaction_uses: AtomicU32,
    _dir: tempfile::TempDir,
}

static APP: OnceLock<App> = OnceLock::new();

fn app() -> &'static App {
    APP.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let (router, ctx, store, verify_token, alice) = runtime.block_on(start(dir.path()));
        let transaction = runtime.block_on(sign_in_alice(&router));
        App {
            runtime,
            router,
            ctx,
            store,
            verify_token,
            alice,
            transaction: Mutex::new(transaction),
            transaction_uses: AtomicU32::new(0),
            _dir: dir,
        }
    })
}

/// The application as `tests/suite/helpers.rs` builds it, Failure Delay 0, plus a verify
/// caller and `alice`.
async fn start(dir: &std::path::Path) -> (Router, Context, Store, String, UserId) {
    let args = ServeArgs {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        admin_password: Some("admin password for fuzzing".to_owned()),
        site_name: "St. Elsewhere".to_owned(),
        ..ServeArgs::with_data_dir(dir.to_path_buf())
    };
    let application = Application::build(&args, Arc::new(SystemClock))
        .await
        .expect("the application starts");
    let ctx = application.context().clone();
    let store = application.store().clone();
    let hasher = application.hasher().clone();
    // Only the router is used: the listener and the outbox worker go (emails stay queued).
    drop(application);
    let now = SystemClock.now();

    let settings = store.settings().await.expect("settings");
    let fast = settings
        .with_changes([
            (SettingKey::FailureDelayMs, "0"),
            (SettingKey::LockoutThreshold, "100"),
        ])
        .expect("valid settings");
    store
        .save_settings(&fast, now)
        .await
        .expect("save settings");

    // A calling system for /api/v1/verify: an interface user whose role has verify_otp.
    let verifier_role = store
        .create_role(
            &RoleName::parse("Verifiers").expect("role name"),
            RoleSecurity::new(Require2fa::No, false, true).expect("role security"),
            &BTreeSet::from([Permission::VerifyOtp]),
            now,
        )
        .await
        .expect("verifier role");
    let gateway = create_user(&store, &hasher, "vpn-gateway", verifier_role.id, false).await;
    let token = Token::generate(&mut rand::rngs::OsRng);
    store
        .create_api_token(&token.hash(), "vpn-gateway", gateway, now)
        .await
        .expect("api token");

    // alice: no device, her role asks for an emailed code.
    let clerks = store
        .create_role(
            &RoleName::parse("Clerks").expect("role name"),
            RoleSecurity::new(Require2fa::No, true, false).expect("role security"),
            &BTreeSet::new(),
            now,
        )
        .await
        .expect("clerk role");
    let alice = create_user(&store, &hasher, "alice", clerks.id, true).await;

    let state = AppState::new(Shared {
        signin: SignIn::new(ctx.clone()),
        account: twostep::service::account::Account::new(ctx.clone()),
        admin: Admin::new(ctx.clone()),
        verify: SecondFactor::new(ctx.clone()),
        trusted_proxies: Arc::new(Vec::new()),
        secure_cookies: false,
        forward_auth: Arc::new(ForwardAuth::default()),
        metrics_clients: Arc::new(Vec::new()),
    });
    (router(state), ctx, store, token.as_str().to_owned(), alice)
}

async fn create_user(
    store: &Store,
    hasher: &PasswordHasher,
    name: &str,
    role: twostep::domain::RoleId,
    email: bool,
) -> UserId {
    let password = Password::new_password(format!("{name} password 123")).expect("password");
    let hash = hasher.hash(&password).await.expect("hash");
    store
        .create_user(
            &NewUser {
                username: Username::parse(name).expect("username"),
                display_name: DisplayName::parse(&format!("{name} Display")).expect("name"),
                email: email.then(|| Email::parse(&format!("{name}@example.org")).expect("email")),
                role_id: role,
                password_hash: hash,
                must_change_password: false,
            },
            SystemClock.now(),
        )
        .await
        .expect("user")
        .id
}

/// A fresh `otp_required` transaction of alice, through the JSON API.
async fn sign_in_alice(router: &Router) -> String {
    let body = format!(r#"{{"username":"alice","password":"{ALICE_PASSWORD}"}}"#);
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/signin")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let answer: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    match answer["transaction"].as_str() {
        Some(transaction) => transaction.to_owned(),
        None => panic!(
            "alice's sign-in gave no transaction: {status} {}",
            String::from_utf8_lossy(&bytes)
        ),
    }
}

/// `TWOSTEP_FUZZ_TRACE=1` prints each request's path and answer (to check the harness
/// reaches the handlers, e.g. with `-runs=0` over the seeds).
fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("TWOSTEP_FUZZ_TRACE").is_some())
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = rest.windows(needle.len()).position(|w| w == needle) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let app = app();

    let uses_transaction = body.windows(3).any(|w| w == b"$TX");
    let transaction = app
        .transaction
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    let body = if uses_transaction {
        replace_all(body, b"$TX", transaction.as_bytes())
    } else {
        body.to_vec()
    };

    let json = "application/json";
    let form = "application/x-www-form-urlencoded";
    let csrf_cookie = format!("{}={CSRF}", cookies::CSRF);
    // The token that the page of a browser with these cookies shows.
    let with_csrf = |cookie: &str, body: Vec<u8>| {
        let mut headers = axum::http::HeaderMap::new();
        if let Ok(value) = header::HeaderValue::from_str(cookie) {
            headers.insert(header::COOKIE, value);
        }
        let (token, _) = csrf::token_for(app.ctx.form_key(), &headers);
        [format!("csrf={token}&").into_bytes(), body].concat()
    };
    let (path, content_type, cookie, bearer, body) = match selector % 6 {
        0 => ("/api/v1/signin", json, None, false, body),
        1 => ("/api/v1/signin/otp", json, None, false, body),
        2 => ("/api/v1/verify", json, None, true, body),
        3 => {
            let body = with_csrf(&csrf_cookie, body);
            ("/signin", form, Some(csrf_cookie), false, body)
        }
        4 => ("/signin", form, Some(csrf_cookie), false, body),
        _ => {
            let cookie = format!("{csrf_cookie}; {}={transaction}", cookies::TRANSACTION);
            let body = with_csrf(&cookie, body);
            ("/signin/verify", form, Some(cookie), false, body)
        }
    };

    let mut request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, content_type);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    if bearer {
        request = request.header(
            header::AUTHORIZATION,
            format!("Bearer {}", app.verify_token),
        );
    }
    let request = request.body(Body::from(body.clone())).expect("request");

    let (status, answer) = app.runtime.block_on(async {
        let response = app
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map(|collected| collected.to_bytes())
            .unwrap_or_default();
        (status, bytes)
    });
    if trace() {
        eprintln!(
            "POST {path}: {status} {}",
            String::from_utf8_lossy(&answer)
                .chars()
                .take(200)
                .collect::<String>()
        );
    }
    if status.is_server_error() {
        panic!(
            "{status} from POST {path} ({content_type}); request body {:?}; answer {}",
            String::from_utf8_lossy(&body),
            String::from_utf8_lossy(&answer)
        );
    }

    // Keep alice usable: failed attempts would lock her after Lockout Threshold, and a
    // transaction may be spent or locked by wrong codes.
    if uses_transaction || body.windows(5).any(|w| w == b"alice") {
        app.runtime.block_on(async {
            app.store.unlock(app.alice).await.expect("unlock alice");
        });
    }
    if uses_transaction
        && app.transaction_uses.fetch_add(1, Ordering::Relaxed) + 1 >= TRANSACTION_USES
    {
        app.transaction_uses.store(0, Ordering::Relaxed);
        let fresh = app.runtime.block_on(sign_in_alice(&app.router));
        *app.transaction
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
    }
});
