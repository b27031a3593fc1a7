//! IP Settings (SPEC sections 1 and 3): the in-network rules, each an address or range with
//! its 2FA bypass and a note; add and remove. Needs Manage IP Settings (SPEC section 6),
//! checked by [`Admin`](crate::service::admin::Admin).

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::{
    actor, fail, failure, failure_page, ip_text, poster, render, Failure, FieldErrors, Nav,
    SummaryItem,
};
use crate::service::admin::{Actor, AdminError};
use crate::web::html::{see_other, Layout, PageForm};
use crate::web::{AppState, ClientIp};

#[derive(Template)]
#[template(path = "admin/ip.html")]
pub struct IpView {
    pub layout: Layout,
    pub nav: Nav,
    pub rules: Vec<IpRow>,
    pub network: String,
    pub bypass: bool,
    pub note: String,
    pub notice: Option<&'static str>,
    pub errors: FieldErrors,
    pub summary: Vec<SummaryItem>,
    /// Enable Bypass 2FA OTP (SPEC section 11: IP Settings shows it).
    pub bypass_enabled: bool,
}

/// The add form's fields and their labels.
const IP_LABELS: &[(&str, &str)] = &[("network", "IP address or CIDR"), ("note", "Note")];

/// The second page before a broad rule is added or a rule is removed (SPEC section 11).
#[derive(Template)]
#[template(path = "admin/ip_confirm.html")]
pub struct IpConfirmView {
    pub layout: Layout,
    pub nav: Nav,
    /// `add` (a broad network) or `delete`.
    pub kind: &'static str,
    pub id: i64,
    pub network: String,
    /// "every IPv4 address", "131,072 addresses".
    pub size: String,
    pub bypass: bool,
    pub note: String,
}

pub struct IpRow {
    pub id: i64,
    pub network: String,
    pub bypass: bool,
    pub note: String,
}

#[allow(clippy::too_many_arguments)]
async fn show_ip(
    state: &AppState,
    headers: &HeaderMap,
    actor: &Actor,
    status: StatusCode,
    network: String,
    bypass: bool,
    note: String,
    notice: Option<&'static str>,
    errors: FieldErrors,
) -> Response {
    let rules = match state.admin.ip_rules(actor).await {
        Ok(rules) => rules,
        Err(error) => return fail(state, headers, error),
    };
    let bypass_enabled = match state.admin.bypass_enabled(actor).await {
        Ok(enabled) => enabled,
        Err(error) => return fail(state, headers, error),
    };
    let view = IpView {
        layout: Layout::new(state, headers),
        nav: Nav::new(actor, "ip"),
        rules: rules
            .into_iter()
            .map(|stored| IpRow {
                id: stored.id,
                network: stored.rule.network.to_string(),
                bypass: stored.rule.bypass_2fa,
                note: stored.rule.note,
            })
            .collect(),
        network,
        bypass,
        note,
        notice,
        summary: errors.summary(IP_LABELS),
        errors,
        bypass_enabled,
    };
    render(state, status, &view.layout, &view)
}

#[derive(Deserialize, Default)]
pub(super) struct IpQuery {
    m: Option<String>,
}

pub(super) async fn ip_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<IpQuery>, QueryRejection>,
) -> Response {
    let actor = match actor(&state, &headers).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let notice = match query.ok().and_then(|Query(q)| q.m).as_deref() {
        Some("added") => Some("The rule was added."),
        Some("removed") => Some("The rule was removed."),
        _ => None,
    };
    show_ip(
        &state,
        &headers,
        &actor,
        StatusCode::OK,
        String::new(),
        false,
        String::new(),
        notice,
        FieldErrors::default(),
    )
    .await
}

#[derive(Deserialize)]
pub(super) struct IpForm {
    csrf: Option<String>,
    #[serde(default)]
    network: String,
    bypass_2fa: Option<String>,
    #[serde(default)]
    note: String,
    /// Set by the confirmation page of a broad network.
    confirm_broad: Option<String>,
}

/// A rule's removal: without `confirm`, the confirmation page.
#[derive(Deserialize)]
pub(super) struct IpDeleteForm {
    csrf: Option<String>,
    confirm: Option<String>,
}

pub(super) async fn ip_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PageForm(form): PageForm<IpForm>,
) -> Response {
    let actor = match poster(&state, &headers, form.csrf.as_deref()).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    match state
        .admin
        .add_ip_rule_confirmed(
            &actor,
            form.network.trim(),
            form.bypass_2fa.is_some(),
            &form.note,
            form.confirm_broad.is_some(),
            Some(&ip_text(ip)),
        )
        .await
    {
        Ok(_) => see_other("/admin/ip?m=added"),
        Err(AdminError::BroadNetwork(network)) => {
            let view = IpConfirmView {
                layout: Layout::new(&state, &headers),
                nav: Nav::new(&actor, "ip"),
                kind: "add",
                id: 0,
                network: network.to_string(),
                size: network.size_text(),
                bypass: form.bypass_2fa.is_some(),
                note: form.note,
            };
            render(&state, StatusCode::OK, &view.layout, &view)
        }
        Err(error) => match failure(error) {
            Failure::Field { field, message } => {
                show_ip(
                    &state,
                    &headers,
                    &actor,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    form.network,
                    form.bypass_2fa.is_some(),
                    form.note,
                    None,
                    FieldErrors::one(field, message),
                )
                .await
            }
            other => failure_page(&state, &headers, other),
        },
    }
}

pub(super) async fn ip_delete_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(id): Path<String>,
    PageForm(form): PageForm<IpDeleteForm>,
) -> Response {
    let actor = match poster(&state, &headers, form.csrf.as_deref()).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    // A rule id that is not a number names no rule: the not-found page, not a 400.
    let Ok(id) = id.parse::<i64>() else {
        return fail(&state, &headers, AdminError::NotFound("IP rule"));
    };
    if form.confirm.is_none() {
        let rules = match state.admin.ip_rules(&actor).await {
            Ok(rules) => rules,
            Err(error) => return fail(&state, &headers, error),
        };
        let Some(stored) = rules.into_iter().find(|stored| stored.id == id) else {
            return fail(&state, &headers, AdminError::NotFound("IP rule"));
        };
        let view = IpConfirmView {
            layout: Layout::new(&state, &headers),
            nav: Nav::new(&actor, "ip"),
            kind: "delete",
            id,
            network: stored.rule.network.to_string(),
            size: stored.rule.network.size_text(),
            bypass: stored.rule.bypass_2fa,
            note: stored.rule.note,
        };
        return render(&state, StatusCode::OK, &view.layout, &view);
    }
    match state
        .admin
        .remove_ip_rule(&actor, id, Some(&ip_text(ip)))
        .await
    {
        Ok(()) => see_other("/admin/ip?m=removed"),
        Err(error) => fail(&state, &headers, error),
    }
}
