//! "Switch user" (SPEC 15): on a shared workstation the person at the keyboard signs out
//! and leaves the sign-in page to the next one. `POST /switch-user` ends the session like
//! Sign out; with an allowed `rd` (an application behind forward-auth links to
//! `/switch-user?rd=<its URL>`) the next person returns to that application after signing
//! in. The page asks first, so that a link cannot sign anyone out (the POST carries the
//! CSRF token).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::steps::{expired_form, failure_of_status, layout, settle_now};
use super::views::SwitchUserView;
use crate::web::authz::signin_url;
use crate::web::html::{csrf_ok, page, see_other, with_cookie, PageForm};
use crate::web::return_to::ReturnUrl;
use crate::web::{cookies, AppState};

#[derive(Deserialize)]
pub(super) struct SwitchQuery {
    /// The application to return to after the next sign-in; used only if allowed.
    rd: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct SwitchForm {
    csrf: Option<String>,
    rd: Option<String>,
}

/// An `rd` as [`ReturnPolicy::check`](crate::web::return_to::ReturnPolicy::check) allows
/// it; any other is ignored.
fn allowed(state: &AppState, rd: Option<&str>) -> Option<ReturnUrl> {
    let url = rd?;
    let checked = state.forward_auth.returns.check(url);
    if checked.is_none() {
        tracing::info!("switch user ignored a return URL that is not allowed (--redirect-domain)");
    }
    checked
}

/// `GET /switch-user[?rd=URL]`: "Signed in as NAME. [Switch user] [Continue as NAME]";
/// without a live session, straight to the sign-in page (with the allowed `rd`).
pub(super) async fn switch_user_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<SwitchQuery>, QueryRejection>,
) -> Response {
    let rd = query.ok().and_then(|Query(q)| q.rd);
    let return_to = allowed(&state, rd.as_deref());
    let session = cookies::get(&headers, cookies::SESSION).filter(|t| !t.is_empty());
    let found = match session {
        Some(token) => match state.signin.session_user(&token).await {
            Ok(found) => found,
            Err(error) => return settle_now(&state, &headers, failure_of_status(error)).await,
        },
        None => None,
    };
    let Some((user, _)) = found else {
        return see_other(&signin_url("", return_to.as_ref()));
    };
    let view = SwitchUserView {
        layout: layout(&state, &headers).await,
        display_name: user.display_name.as_str().to_owned(),
        username: user.username.as_str().to_owned(),
        continue_url: return_to
            .as_ref()
            .map_or_else(|| "/".to_owned(), |url| url.as_str().to_owned()),
        rd: return_to.map(|url| url.as_str().to_owned()),
    };
    page(&state, StatusCode::OK, &view.layout, &view)
}

/// `POST /switch-user`: the session ends and its cookie goes (as Sign out), then the
/// sign-in page says the next person can sign in; with an allowed `rd` it returns there
/// after that sign-in.
pub(super) async fn switch_user_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(form): PageForm<SwitchForm>,
) -> Response {
    if !csrf_ok(&state, &headers, form.csrf.as_deref()) {
        return expired_form(&state, &headers).await;
    }
    if let Some(token) = cookies::get(&headers, cookies::SESSION) {
        if let Err(error) = state.signin.sign_out(&token).await {
            return settle_now(&state, &headers, failure_of_status(error)).await;
        }
    }
    let return_to = allowed(&state, form.rd.as_deref().filter(|rd| !rd.is_empty()));
    let target = match &return_to {
        // `/signin?rd=` remembers it; `m` tells the next person.
        Some(_) => signin_url("", return_to.as_ref()).replacen("?", "?m=switched&", 1),
        None => "/signin?m=switched".to_owned(),
    };
    let response = with_cookie(see_other(&target), cookies::clear_session(&state));
    // The previous person's way back is not the next one's.
    with_cookie(
        response,
        cookies::clear(cookies::RETURN_TO, state.secure_cookies),
    )
}
