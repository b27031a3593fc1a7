//! Real pages for what no handler answers (SPEC section 11): a path that does not exist
//! (404), a method a path does not take (405), and a handler that panicked (500). A
//! browser gets the problem page, with the Help Text and a link to sign in; anything
//! under `/api` gets the JSON error body (`not_found`, `method_not_allowed`, `internal`).
//! Never an empty body.

use std::any::Any;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;

use super::html::{internal_error_in, problem_in, Layout};
use super::json_error::{internal_answer, ApiError};
use super::{request_id, AppState};

/// Whether a path is answered in JSON (the APIs, and privacyIDEA's `/validate`).
fn is_api(path: &str) -> bool {
    ["/api", "/validate"].iter().any(|prefix| {
        path == *prefix
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// The problem page's shell, with the Help Text when the settings can be read.
async fn layout(state: &AppState, headers: &HeaderMap) -> Layout {
    let layout = Layout::new(state, headers);
    match state.signin.page_notes().await {
        Ok(notes) => layout.with_notes(&notes),
        Err(_) => layout,
    }
}

/// The router's fallback: 404.
pub(super) async fn not_found(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if is_api(uri.path()) {
        return ApiError::BadBody {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: "there is nothing at this address".to_owned(),
        }
        .into_response();
    }
    problem_in(
        &state,
        layout(&state, &headers).await,
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is no page at this address. Please check the address, or go to the sign-in \
         page."
            .to_owned(),
        None,
    )
}

/// A path that exists but not with this method: 405 (axum adds `Allow`).
pub(super) async fn method_not_allowed(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if is_api(uri.path()) {
        return ApiError::BadBody {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "method_not_allowed",
            message: "this address does not take this method".to_owned(),
        }
        .into_response();
    }
    problem_in(
        &state,
        layout(&state, &headers).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "This action is not available here",
        "This page cannot be used this way. Please go back, or go to the sign-in page.".to_owned(),
        None,
    )
}

/// What [`catch_panics`] leaves on the answer of a panicked handler: its request id, so
/// that [`panic_pages`] can show the page.
#[derive(Clone, Debug)]
struct Panicked(String);

/// A panic in a handler becomes a 500 answer with a request id (the JSON one, which
/// [`panic_pages`] turns into the page for a browser); the log gets the id, not the
/// panic's message, which could hold anything.
pub(super) fn catch_panics() -> CatchPanicLayer<fn(Box<dyn Any + Send + 'static>) -> Response> {
    CatchPanicLayer::custom(panicked as fn(Box<dyn Any + Send + 'static>) -> Response)
}

fn panicked(_payload: Box<dyn Any + Send + 'static>) -> Response {
    let id = request_id();
    tracing::error!(request_id = %id, "a handler panicked");
    let mut response = internal_answer(id.clone());
    response.extensions_mut().insert(Panicked(id));
    response
}

/// Outside the APIs, the answer of a panicked handler is the 500 page.
pub(super) async fn panic_pages(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let api = is_api(request.uri().path());
    if api {
        // The APIs keep the JSON answer: nothing to copy on their (hot) path.
        return next.run(request).await;
    }
    let headers = request.headers().clone();
    let response = next.run(request).await;
    match page_for_panic(&response, api) {
        Some(id) => internal_error_in(&state, layout(&state, &headers).await, id),
        None => response,
    }
}

/// The request id of a panicked answer that a browser gets as the page (outside the APIs).
fn page_for_panic(response: &Response, api: bool) -> Option<String> {
    match response.extensions().get::<Panicked>() {
        Some(Panicked(id)) if !api => Some(id.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    #[test]
    fn the_apis_are_the_json_paths() {
        for path in ["/api", "/api/v1/nothing", "/validate/check", "/validate"] {
            assert!(is_api(path), "{path}");
        }
        for path in [
            "/",
            "/apis",
            "/signin",
            "/admin/api",
            "/validated",
            "/nothing",
        ] {
            assert!(!is_api(path), "{path}");
        }
    }

    /// SPEC section 11: a panic in a handler is a 500 with a body (the JSON error with a
    /// request id), never a dropped connection or an empty answer.
    #[tokio::test]
    async fn a_panicking_handler_answers_500_internal_with_a_request_id() {
        async fn boom() -> &'static str {
            #[allow(clippy::panic)]
            {
                panic!("secret detail")
            }
        }
        let app = Router::new()
            .route("/api/v1/boom", get(boom))
            .layer(catch_panics());
        let response = app
            .oneshot(
                Request::builder()
                    .uri("/api/v1/boom")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let id = page_for_panic(&response, false).expect("a browser gets the 500 page");
        assert_eq!(
            page_for_panic(&response, true),
            None,
            "the API keeps the JSON"
        );
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["code"], "internal");
        assert_eq!(
            body["request_id"],
            id.as_str(),
            "the page and the log share the id"
        );
        assert!(!String::from_utf8_lossy(&bytes).contains("secret detail"));
    }

    #[test]
    fn an_answer_that_did_not_panic_is_left_alone() {
        let response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
        assert_eq!(page_for_panic(&response, false), None);
    }
}
