//! twostep: a self-hosted sign-in service with multi-factor authentication.
//!
//! # Layout
//!
//! - [`otp`]: the OTP engine (HOTP, TOTP, key URIs, QR codes, emailed codes). Pure.
//! - [`policy`]: the sign-in decision of SPEC section 3. Pure.
//! - [`domain`]: plain types for every SPEC noun (roles, devices, IP rules, ...). Pure.
//!
//! Pure means: no I/O, no clock, no randomness of its own. Time arrives as a parameter and
//! randomness as an RNG argument; `clippy.toml` bans the clock and `thread_rng` so that
//! this stays true. See `ARCHITECTURE.md` for the whole map.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![forbid(unsafe_code)]

pub mod domain;
pub mod otp;
pub mod policy;
