//! The account page's security keys (SPEC 14): "Add a security key" (after fresh proof;
//! the key's page, where `/static/webauthn.js` asks the browser), name and remove keys.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::{failure, poster, settle, show_account, show_codes, Failure, FormError, Typed};
use crate::domain::{PromptMode, SecurityKeyId};
use crate::web::html::{page, script_json, see_other, Layout, PageForm};
use crate::web::AppState;

/// The key's set-up page from the account page (the sign-in page's template).
#[derive(Template)]
#[template(path = "key_setup.html")]
pub struct AccountKeySetupView {
    pub layout: Layout,
    pub action: &'static str,
    pub back: &'static str,
    pub options: String,
    pub message: Option<Note>,
    pub signin: bool,
}

/// A sentence above the key's form (the shared `message.html` reads it).
pub struct Note(String);

impl Note {
    pub fn tone(&self) -> &'static str {
        "error"
    }

    pub fn role(&self) -> &'static str {
        "alert"
    }

    pub fn shows_lockout_hint(&self) -> bool {
        false
    }
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Deserialize)]
pub(super) struct BeginForm {
    csrf: Option<String>,
    #[serde(default)]
    prompt_mode: String,
    code: Option<String>,
}

/// The account page with `text` beside the keys' forms.
async fn again(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    status: StatusCode,
    text: String,
) -> Response {
    show_account(
        state,
        headers,
        token,
        None,
        Some((status, FormError::Key(text))),
        &Typed::default(),
    )
    .await
}

/// `POST /account/key`: "Add a security key".
pub(super) async fn begin_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(form): PageForm<BeginForm>,
) -> Response {
    let token = match poster(&state, &headers, form.csrf.as_deref()) {
        Ok(token) => token,
        Err(refused) => return *refused,
    };
    let Some(prompt_mode) = PromptMode::parse(&form.prompt_mode) else {
        let text = "Choose when the key is asked for.".to_owned();
        return again(
            &state,
            &headers,
            &token,
            StatusCode::UNPROCESSABLE_ENTITY,
            text,
        )
        .await;
    };
    match state
        .account
        .begin_key(&token, prompt_mode, form.code.as_deref())
        .await
    {
        Ok(options) => {
            let view = AccountKeySetupView {
                layout: Layout::new(&state, &headers),
                action: "/account/key/confirm",
                back: "/account",
                options: script_json(&options),
                message: None,
                signin: false,
            };
            page(&state, StatusCode::OK, &view.layout, &view)
        }
        Err(error) => match failure(error) {
            Failure::Message(status, text) => again(&state, &headers, &token, status, text).await,
            other => settle(&state, &headers, other),
        },
    }
}

#[derive(Deserialize)]
pub(super) struct ConfirmForm {
    csrf: Option<String>,
    #[serde(default)]
    credential: String,
    #[serde(default)]
    name: String,
}

/// `POST /account/key/confirm`: the new key's answer registers it.
pub(super) async fn confirm_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(form): PageForm<ConfirmForm>,
) -> Response {
    let token = match poster(&state, &headers, form.csrf.as_deref()) {
        Ok(token) => token,
        Err(refused) => return *refused,
    };
    let name = Some(form.name.as_str()).filter(|name| !name.trim().is_empty());
    match state
        .account
        .confirm_key(&token, &form.credential, name)
        .await
    {
        Ok(codes) if codes.is_empty() => see_other("/account?m=key_added"),
        Ok(codes) => show_codes(&state, &headers, &codes),
        Err(error) => match failure(error) {
            Failure::Message(status, text) => again(&state, &headers, &token, status, text).await,
            other => settle(&state, &headers, other),
        },
    }
}

#[derive(Deserialize)]
pub(super) struct RenameForm {
    csrf: Option<String>,
    #[serde(default)]
    name: String,
}

/// `POST /account/keys/{id}/rename`.
pub(super) async fn rename_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Option<Path<i64>>,
    PageForm(form): PageForm<RenameForm>,
) -> Response {
    let token = match poster(&state, &headers, form.csrf.as_deref()) {
        Ok(token) => token,
        Err(refused) => return *refused,
    };
    let key = SecurityKeyId(id.map_or(0, |Path(id)| id));
    match state.account.rename_key(&token, key, &form.name).await {
        Ok(()) => see_other("/account?m=key_renamed"),
        Err(error) => match failure(error) {
            Failure::Message(status, text) => again(&state, &headers, &token, status, text).await,
            other => settle(&state, &headers, other),
        },
    }
}

#[derive(Deserialize)]
pub(super) struct RemoveForm {
    csrf: Option<String>,
    code: Option<String>,
}

/// `POST /account/keys/{id}/remove`: after fresh proof.
pub(super) async fn remove_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Option<Path<i64>>,
    PageForm(form): PageForm<RemoveForm>,
) -> Response {
    let token = match poster(&state, &headers, form.csrf.as_deref()) {
        Ok(token) => token,
        Err(refused) => return *refused,
    };
    let key = SecurityKeyId(id.map_or(0, |Path(id)| id));
    match state
        .account
        .remove_key(&token, key, form.code.as_deref())
        .await
    {
        Ok(()) => see_other("/account?m=key_removed"),
        Err(error) => match failure(error) {
            Failure::Message(status, text) => again(&state, &headers, &token, status, text).await,
            other => settle(&state, &headers, other),
        },
    }
}
