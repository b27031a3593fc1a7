//! The integration test binary: one binary, one module per area (SPEC sections named in
//! each module).

// Tests stop at the first surprise: unwrap, expect and panic are how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod account;
mod admin_api;
mod admin_pages;
mod applications;
mod attacks;
mod attempts;
mod audit_chain;
mod browser;
mod browser_account;
mod browser_console;
mod browser_console_pages;
mod browser_keys;
mod browser_signin;
mod caddy;
mod cli;
mod console_forms;
mod console_info;
mod directory_client;
mod directory_signin;
mod email;
mod forward_auth;
mod helpers;
mod html_check;
mod instances;
mod metrics;
mod nginx;
mod notifications;
mod oathtool;
mod oidc;
mod oidc_apache;
mod oidc_authlib;
mod pages;
mod password_rules;
mod recovery_codes;
mod samba_ad;
mod security_keys;
mod session_limits;
mod signin_api;
mod signin_pages_ux;
mod slapd;
mod soft_key;
mod store;
mod temporary_access;
mod verify;
mod virtual_authenticator;
