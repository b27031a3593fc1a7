//! The web layer: HTTP in, service calls, HTTP out. No decisions are made here; each
//! handler translates a request into a call of [`crate::service`] and its outcome into a
//! page or a JSON body.
//!
//! - [`signin_api`]: the JSON sign-in API of SPEC section 9.
//! - [`account_api`], [`account_pages`]: the signed-in user's own account (SPEC section
//!   10 "/account"), as JSON and as pages.
//! - [`admin_api`]: the JSON administration API of SPEC section 9, one file per resource.
//! - [`json_error`]: the JSON error type of every JSON surface and its one mapping.
//! - [`openapi`]: the OpenAPI 3 document of both, generated from the handlers.
//! - [`html`]: the HTML shell the sign-in pages and the console share: layout, rendering, the CSRF check of a form,
//!   the error pages, the form extractor.
//! - [`pages`]: the server-rendered sign-in pages (askama templates in `templates/`).
//! - [`console`]: the server-rendered administration console under `/admin`, one file
//!   per section.
//! - [`oidc`]: the OpenID Connect provider's endpoints (SPEC 13).
//! - [`verify`]: the second-factor check for other systems: `/api/v1/verify` and
//!   privacyIDEA's `/validate/check`.
//! - `problems`: the 404, 405 and 500 answers (a page, or JSON under `/api`).
//! - [`client_ip`]: the client address, trusting `X-Forwarded-For` only from trusted proxies.
//! - [`cookies`], [`csrf`]: cookies and the forms' CSRF tokens.

pub mod account_api;
pub mod account_pages;
pub mod admin_api;
pub mod authz;
pub mod client_ip;
pub mod console;
pub mod cookies;
pub mod csrf;
pub mod csv;
pub mod html;
pub mod json_error;
pub mod oidc;
pub mod openapi;
mod problems;
pub mod return_to;
pub mod signin_api;
pub mod signin_pages;
pub mod verify;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use self::return_to::{DomainName, ReturnPolicy};
use crate::domain::{ClientAddress, IpNetwork};
use crate::service::account::Account;
use crate::service::admin::Admin;
use crate::service::oidc::Oidc;
use crate::service::signin::SignIn;
use crate::service::verify::SecondFactor;

/// What every handler can reach: one shared [`Shared`] behind an `Arc`, so that the copy
/// axum hands each extractor of each request costs one reference count, not one per
/// service part (every service holds the store, hasher, clock and counters).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The services and settings of the web layer (see [`AppState`]).
pub struct Shared {
    pub signin: SignIn,
    pub account: Account,
    pub admin: Admin,
    pub verify: SecondFactor,
    /// The OpenID Connect provider (SPEC 13).
    pub oidc: Oidc,
    pub trusted_proxies: Arc<Vec<IpNetwork>>,
    /// Cookies get `Secure` (the public URL is https).
    pub secure_cookies: bool,
    pub forward_auth: Arc<ForwardAuth>,
    /// Who may read `/metrics` (`--metrics-client`).
    pub metrics_clients: Arc<Vec<IpNetwork>>,
}

/// Forward-auth and cookie settings from the command line.
#[derive(Clone, Debug, Default)]
pub struct ForwardAuth {
    /// `--public-url`: the base of redirects to the sign-in page.
    pub public_url: Option<String>,
    /// The URLs sign-in may return to (`--redirect-domain`, the public host).
    pub returns: ReturnPolicy,
    /// `--cookie-domain`: the session cookie's `Domain`, shared with the applications.
    pub cookie_domain: Option<DomainName>,
}

/// The largest request body accepted (forms and JSON are tiny).
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Content-Security-Policy of every response: scripts only as files from here
/// (`/static/localtime.js` shows times in the browser's zone, `/static/print.js` prints the
/// recovery codes page; no inline script),
/// styles and images only from here (QR codes are inline SVG), forms post only here,
/// `fetch` only here (`/static/webauthn.js` asks for the passkey options), never framed.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
                   base-uri 'none'";

/// The whole application router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(signin_api::routes())
        .merge(account_api::routes())
        .merge(account_pages::routes())
        .merge(authz::routes())
        .merge(admin_api::routes())
        .merge(verify::routes())
        .merge(oidc::routes())
        .merge(openapi::routes())
        .merge(signin_pages::routes())
        .merge(console::routes())
        // Real 404, 405 and 500 answers: a page, or JSON under /api (SPEC section 11).
        .fallback(problems::not_found)
        .method_not_allowed_fallback(problems::method_not_allowed)
        .layer(problems::catch_panics())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            problems::panic_pages,
        ))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
        // The extractors (JSON, forms) refuse a larger body with our own error shape.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        // Authentication pages and API answers are never stored by a browser or proxy; the
        // stylesheet sets its own cache header.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &axum::http::Request<_>| {
                    // The path only: query strings are not logged.
                    tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
                })
                .on_request(())
                .on_response(|response: &Response, latency: Duration, _span: &tracing::Span| {
                    tracing::info!(status = response.status().as_u16(), latency_ms = latency.as_millis() as u64, "served");
                }),
        )
}

/// `GET /healthz`: 200 when the database answers.
async fn healthz(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    if state.signin.context().database_answers().await {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response()
    }
}

/// `GET /metrics`: this instance's counters in the Prometheus text format, for the
/// `--metrics-client` networks only (an unknown client is in none).
async fn metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
    ClientIp(client): ClientIp,
) -> Response {
    if !client.is_in(&state.metrics_clients) {
        return (
            StatusCode::FORBIDDEN,
            "not a metrics client (--metrics-client)\n",
        )
            .into_response();
    }
    let text = state.signin.context().metrics_text();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// Records the latency of every request by its route pattern (`/metrics`).
async fn observe(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let stopwatch = crate::clock::Stopwatch::start();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    state.signin.context().metrics().request(
        &route,
        response.status().as_u16(),
        stopwatch.elapsed(),
    );
    response
}

/// The resolved client of a request ([`client_ip::client_ip`]): an address, or unknown
/// when a trusted proxy forwarded a hop that is not one.
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub ClientAddress);

impl<S> FromRequestParts<S> for ClientIp
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip())
            // Without a socket (in-process tests), the peer is unknown: the loopback
            // address, which no deployment lists as an in-network rule by accident.
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        Ok(ClientIp(client_ip::client_ip(
            peer,
            &parts.headers,
            &state.trusted_proxies,
        )))
    }
}

/// A short random id tying a 500 answer to its log line.
pub fn request_id() -> String {
    use rand::RngCore;
    format!("{:016x}", rand::rngs::OsRng.next_u64())
}

/// `Retry-After`, for 429 answers.
pub fn retry_after(seconds: i64) -> (HeaderName, HeaderValue) {
    (header::RETRY_AFTER, HeaderValue::from(seconds.max(0)))
}
