//! `GET /api/v1/openapi.json`: the OpenAPI 3 document of the JSON API, generated from the
//! handlers' `#[utoipa::path]` attributes and the `ToSchema` types they send and take.
//! Reading it needs no authentication; every other `/api/v1` endpoint but the sign-in
//! steps needs the `bearer` scheme.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{account_api, admin_api, authz, signin_api, verify, AppState};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "twostep",
        description = "Sign-in with multi-factor authentication (SPEC section 9). Errors are \
                       `{\"code\", \"message\"}` with a fitting status; administration \
                       endpoints check the caller's role permissions."
    ),
    paths(
        signin_api::signin,
        signin_api::otp,
        signin_api::resend,
        signin_api::enroll,
        signin_api::enroll_confirm,
        signin_api::enroll_skip,
        signin_api::change_password,
        signin_api::keys::options,
        signin_api::keys::assertion,
        signin_api::keys::passkey_options,
        signin_api::keys::passkey,
        signin_api::me,
        signin_api::signout,
        account_api::get_account,
        account_api::begin_device,
        account_api::confirm_device,
        account_api::regenerate_recovery_codes,
        account_api::change_password,
        account_api::rename_key,
        account_api::remove_key,
        account_api::sign_out_other_sessions,
        verify::verify,
        verify::challenge,
        admin_api::roles::list_roles,
        admin_api::roles::create_role,
        admin_api::roles::get_role,
        admin_api::roles::update_role,
        admin_api::users::list_users,
        admin_api::users::create_user,
        admin_api::users::get_user,
        admin_api::users::update_user,
        admin_api::users::delete_user,
        admin_api::users::unlock_user,
        admin_api::devices::setup_device,
        admin_api::devices::confirm_device,
        admin_api::devices::disable_device,
        admin_api::devices::revoke_recovery_codes,
        admin_api::keys::list_keys,
        admin_api::keys::remove_key,
        admin_api::temporary_access::issue,
        admin_api::temporary_access::show,
        admin_api::temporary_access::revoke,
        admin_api::settings::get_settings,
        admin_api::settings::update_settings,
        admin_api::ip_rules::list_ip_rules,
        admin_api::ip_rules::add_ip_rule,
        admin_api::ip_rules::remove_ip_rule,
        admin_api::templates::get_template,
        admin_api::templates::put_template,
        admin_api::templates::get_security_template,
        admin_api::templates::put_security_template,
        admin_api::audit::audit_log,
        admin_api::tokens::create_token,
        admin_api::applications::list_clients,
        admin_api::applications::create_client,
        admin_api::applications::get_client,
        admin_api::applications::update_client,
        admin_api::applications::delete_client,
        admin_api::applications::new_client_secret,
        authz::authz,
        openapi,
    ),
    modifiers(&BearerScheme),
    tags(
        (name = "sign-in", description = "Password, OTP steps, enrollment, sessions"),
        (name = "account", description = "The signed-in user's own account (SPEC section 10): 2-step verification, recovery codes, sessions, password"),
        (name = "roles", description = "Security roles (`manage_roles`)"),
        (name = "users", description = "Users and their devices (`manage_users`)"),
        (name = "settings", description = "System settings and the OTP email template"),
        (name = "ip-rules", description = "IP Settings (`manage_ip_settings`)"),
        (name = "audit", description = "The audit log (`view_audit_log`)"),
        (name = "tokens", description = "API tokens"),
        (name = "applications", description = "OpenID Connect clients (`manage_applications`, SPEC 13)"),
        (name = "forward-auth", description = "Reverse proxies asking who a request is"),
        (name = "verify", description = "The second-factor check for systems that checked the password themselves (an API token with `verify_otp`); privacyIDEA's `/validate/check` is described in the README"),
    )
)]
pub struct ApiDoc;

/// The `bearer` security scheme: a session token or an API token.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(
                            "A session token (from sign-in) or an API token (POST /api/v1/tokens)",
                        ))
                        .build(),
                ),
            );
    }
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/openapi.json", get(openapi))
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "sign-in",
    responses((status = 200, description = "The OpenAPI 3 document", content_type = "application/json"))
)]
async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
