//! The console home, `GET /admin` (SPEC section 11): what needs attention, each item
//! linked to the page that fixes it, or that all is well. The list needs Manage Users
//! (every fix is in Access Control); a role without it goes to its first section.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::audit::utc_text;
use super::{actor, fail, failure_page, render, segment, Failure, Nav};
use crate::clock::Timestamp;
use crate::domain::attention::{Attention, DEAD_EMAIL_DAYS};
use crate::domain::Permission;
use crate::web::html::{see_other, Layout, CONSOLE_SECTIONS};
use crate::web::AppState;

#[derive(Template)]
#[template(path = "admin/home.html")]
pub struct HomeView {
    pub layout: Layout,
    pub nav: Nav,
    pub all_is_well: bool,
    pub dead_days: i64,
    pub locked: Vec<LockedItem>,
    pub without_device: Vec<WithoutDeviceItem>,
    pub undelivered: Vec<UndeliveredItem>,
}

/// A moment as the pages write it: ISO 8601 UTC for `datetime`, the UTC text.
pub struct Moment {
    pub iso: String,
    pub text: String,
}

impl Moment {
    fn of(at: Timestamp) -> Self {
        Self {
            iso: at.iso_utc(),
            text: utc_text(at.millis()),
        }
    }
}

pub struct LockedItem {
    pub username: String,
    /// Edit User, with its Unlock button.
    pub href: String,
    /// `None`: until an administrator unlocks.
    pub until: Option<Moment>,
}

pub struct WithoutDeviceItem {
    pub username: String,
    pub role: String,
    /// 2 Step Verification set-up for the user.
    pub href: String,
}

pub struct UndeliveredItem {
    pub to: String,
    pub username: String,
    /// Edit User (the email address), when the user is known.
    pub href: Option<String>,
    pub queued: Moment,
    pub error: String,
}

fn user_href(username: &str) -> String {
    format!("/admin/users/{}", segment(username))
}

fn view(layout: Layout, nav: Nav, attention: Attention) -> HomeView {
    HomeView {
        layout,
        nav,
        all_is_well: attention.all_is_well(),
        dead_days: DEAD_EMAIL_DAYS,
        locked: attention
            .locked
            .into_iter()
            .map(|item| LockedItem {
                href: user_href(item.username.as_str()),
                username: item.username.as_str().to_owned(),
                until: (item.until != Timestamp::NEVER).then(|| Moment::of(item.until)),
            })
            .collect(),
        without_device: attention
            .without_device
            .into_iter()
            .map(|item| WithoutDeviceItem {
                href: format!("{}/2fa/setup", user_href(item.username.as_str())),
                username: item.username.as_str().to_owned(),
                role: item.role.as_str().to_owned(),
            })
            .collect(),
        undelivered: attention
            .undelivered
            .into_iter()
            .map(|item| UndeliveredItem {
                href: item.username.as_ref().map(|name| user_href(name.as_str())),
                username: item
                    .username
                    .map(|name| name.as_str().to_owned())
                    .unwrap_or_default(),
                to: item.to,
                queued: Moment::of(item.queued_at),
                error: item.error,
            })
            .collect(),
    }
}

/// `GET /admin`: what needs attention, or (without Manage Users) the first section the
/// role allows.
pub(super) async fn admin_home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let actor = match actor(&state, &headers).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    if !actor.has(Permission::ManageUsers) {
        return match CONSOLE_SECTIONS.iter().find(|(_, _, _, p)| actor.has(*p)) {
            Some((_, href, _, _)) => see_other(href),
            None => failure_page(
                &state,
                &headers,
                Failure::Forbidden(Permission::ManageUsers),
            ),
        };
    }
    let attention = match state.admin.needs_attention(&actor).await {
        Ok(attention) => attention,
        Err(error) => return fail(&state, &headers, error),
    };
    let view = view(
        Layout::new(&state, &headers),
        Nav::new(&actor, "home"),
        attention,
    );
    render(&state, StatusCode::OK, &view.layout, &view)
}
