//! twostep: a self-hosted sign-in service with multi-factor authentication.
//!
//! # Layout
//!
//! - [`otp`]: the OTP engine (HOTP, TOTP, key URIs, QR codes, emailed codes). Pure.
//! - [`policy`]: the sign-in decision of SPEC section 3. Pure.
//! - [`domain`]: plain types for every SPEC noun (roles, devices, IP rules, ...). Pure.
//! - [`bootstrap`]: the first start on a new database (default roles, `admin`).
//! - [`cli`]: the admin subcommands (`twostep user|role|settings|ip ...`) on an existing
//!   database, through the administration service; exit codes for scripts.
//! - [`clock`]: `Timestamp` and the `Clock` the shells read time from.
//! - [`service`]: what twostep does (sign-in, device set-up, emailed codes), over the
//!   store, the mailer and the pure core; the web layer and the CLI only translate.
//! - [`store`]: persistence on SQLite or PostgreSQL; the only module that speaks SQL.
//! - [`crypto`]: the master key (key file, subkeys, sealed device secrets, key check),
//!   emailed-code hashes and bearer tokens. Shell: reads and creates the key file.
//! - [`directory`]: the LDAP / Active Directory client (SPEC 12): finds a user's entry
//!   with the service account, checks a password by binding as it. Shell: network I/O.
//! - [`password`]: passwords (typed at sign-in, or being set) and argon2id hashing on a
//!   few threads of its own. Shell: its own threads (reused argon2 memory), salts from the OS RNG.
//! - [`metrics`]: the counters served at `/metrics` (Prometheus text); written by the
//!   services and the web layer, never read to decide anything.
//! - [`mail`]: the OTP email: its template (placeholders, validation, HTML escaping) and
//!   the RFC 5322 message it becomes. Pure but for lettre's random MIME boundary.
//!
//! Pure means: no I/O, no clock, no randomness of its own. Time arrives as a parameter and
//! randomness as an RNG argument; `clippy.toml` bans the clock and `thread_rng` so that
//! this stays true. See `ARCHITECTURE.md` for the whole map.

// The workspace's `[lints]` deny unwrap, expect and panic and forbid unsafe code; the
// library's own unit tests may unwrap.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod bootstrap;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod directory;
pub mod domain;
pub mod mail;
pub mod metrics;
pub mod otp;
pub mod password;
pub mod policy;
pub mod service;
pub mod startup;
pub mod store;
pub mod web;
