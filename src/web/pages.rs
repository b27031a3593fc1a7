//! The server-rendered pages: sign in, verify code, set up 2-step verification, change
//! password, signed in. Work without JavaScript; every form carries a CSRF token.

use axum::Router;

use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
