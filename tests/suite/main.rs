//! The integration test binary: one binary, one module per area (SPEC sections named in
//! each module).

mod browser;
mod helpers;
mod oathtool;
mod pages;
mod signin_api;
mod store;
