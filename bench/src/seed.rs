//! Seeding through twostep's own `Store` API, with the server stopped.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{ensure, Context as _};
use rand::rngs::OsRng;
use tokio::time::Instant;
use twostep::clock::{Clock, SystemClock, Timestamp};
use twostep::crypto::Token;
use twostep::domain::{
    new_device_otp, DeviceOtp, DisplayName, Email, OtpMethod, Permission, PromptMode, Require2fa,
    RoleId, RoleName, RoleSecurity, SettingKey, Username,
};
use twostep::otp::{Hotp, OtpSecret};
use twostep::password::{Password, PasswordHasher};
use twostep::store::{KeySource, NewDevice, NewUser, Store, StoreOptions};

/// The password of every seeded user (hashed once, the hash reused for all).
pub const PASSWORD: &str = "load-test-password-1";

/// What the scenarios need to know of the seeded database.
pub struct Seeded {
    /// Users with a confirmed HOTP device (`load-u0000000`, ...).
    pub device_users: Vec<String>,
    /// Their HOTP generators, by the same index.
    pub hotps: Vec<Hotp>,
    /// The next counter of each device (the server accepts it..it+window).
    pub counters: Vec<AtomicU64>,
    /// Users without a device in an OTP Required role, each with an email address.
    pub email_users: Vec<(String, String)>,
    /// The `verify_otp` API token.
    pub token: String,
    pub failure_delay_ms: u32,
    pub seconds: f64,
}

pub struct SeedOptions {
    pub database_url: String,
    pub key_hex: String,
    pub users: usize,
    pub email_users: usize,
    pub tasks: usize,
    pub failure_delay_ms: Option<u32>,
}

pub fn device_username(index: usize) -> String {
    format!("load-u{index:07}")
}

pub fn email_username(index: usize) -> String {
    format!("load-e{index:07}")
}

pub fn email_address(index: usize) -> String {
    format!("load-e{index:07}@example.org")
}

fn now() -> Timestamp {
    SystemClock.now()
}

pub async fn seed(options: &SeedOptions) -> anyhow::Result<Seeded> {
    let started = Instant::now();
    let store = Store::open(&StoreOptions {
        database_url: options.database_url.clone(),
        key: KeySource::Hex(options.key_hex.clone()),
        max_connections: Some(u32::try_from(options.tasks.max(2)).unwrap_or(16)),
    })
    .await
    .context("cannot open the database to seed it")?;

    // One argon2id hash (the server's cost) shared by every user: hashing a million
    // passwords would take hours and measure nothing.
    let hasher = PasswordHasher::new(1)?;
    let password_hash = hasher
        .hash(&Password::new_password(PASSWORD.to_owned())?)
        .await?;

    let device_role = store
        .create_role(
            &RoleName::parse("load-device")?,
            RoleSecurity::new(Require2fa::Force, false, false)?,
            &BTreeSet::new(),
            twostep::domain::SessionLimits::DEFAULT,
            now(),
        )
        .await?;
    let email_role = store
        .create_role(
            &RoleName::parse("load-email")?,
            RoleSecurity::new(Require2fa::No, true, false)?,
            &BTreeSet::new(),
            twostep::domain::SessionLimits::DEFAULT,
            now(),
        )
        .await?;
    let caller_role = store
        .create_role(
            &RoleName::parse("load-verifier")?,
            RoleSecurity::new(Require2fa::No, false, true)?,
            &BTreeSet::from([Permission::VerifyOtp]),
            twostep::domain::SessionLimits::DEFAULT,
            now(),
        )
        .await?;
    let caller = store
        .create_user(
            &NewUser {
                username: Username::parse("load-verifier")?,
                display_name: DisplayName::parse("Load verifier")?,
                email: None,
                role_id: caller_role.id,
                password_hash: password_hash.clone(),
                must_change_password: false,
            },
            now(),
        )
        .await?;
    let token = Token::generate(&mut OsRng);
    store
        .create_api_token(&token.hash(), "twostep-load", caller.id, now())
        .await?;

    let current = store.settings().await?;
    let failure_delay = options
        .failure_delay_ms
        .unwrap_or_else(|| current.failure_delay_ms())
        .to_string();
    let settings = current.with_changes([
        (SettingKey::LockoutThreshold, "100"),
        (SettingKey::HotpWindow, "10"),
        (SettingKey::OtpRequestDelaySeconds, "0"),
        (SettingKey::FailureDelayMs, failure_delay.as_str()),
    ])?;
    store.save_settings(&settings, now()).await?;
    let failure_delay_ms = settings.failure_delay_ms();

    let hotps = seed_device_users(
        &store,
        options.users,
        options.tasks,
        device_role.id,
        &password_hash,
    )
    .await?;
    let email_users = seed_email_users(
        &store,
        options.email_users,
        options.tasks,
        email_role.id,
        &password_hash,
    )
    .await?;
    store.close().await;

    Ok(Seeded {
        device_users: (0..options.users).map(device_username).collect(),
        counters: (0..options.users).map(|_| AtomicU64::new(1)).collect(),
        hotps,
        email_users,
        token: token.as_str().to_owned(),
        failure_delay_ms,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `users` users with a confirmed HOTP device (Every Login), by `tasks` concurrent tasks
/// each taking every `tasks`-th index; each device is confirmed with its code 0, as an
/// enrollment would, so the next counter is 1.
async fn seed_device_users(
    store: &Store,
    users: usize,
    tasks: usize,
    role_id: RoleId,
    password_hash: &str,
) -> anyhow::Result<Vec<Hotp>> {
    let progress = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut handles = Vec::new();
    for task in 0..tasks.max(1) {
        let store = store.clone();
        let password_hash = password_hash.to_owned();
        let progress = Arc::clone(&progress);
        handles.push(tokio::spawn(async move {
            let mut made = Vec::new();
            for index in (task..users).step_by(tasks.max(1)) {
                let name = device_username(index);
                let user = store
                    .create_user(
                        &NewUser {
                            username: Username::parse(&name)?,
                            display_name: DisplayName::parse(&name)?,
                            email: None,
                            role_id,
                            password_hash: password_hash.clone(),
                            must_change_password: false,
                        },
                        now(),
                    )
                    .await?;
                let pending = store
                    .create_pending_device(
                        user.id,
                        &NewDevice {
                            prompt_mode: PromptMode::EveryLogin,
                            otp: new_device_otp(OtpMethod::Hotp, OtpSecret::generate(&mut OsRng)),
                        },
                        now(),
                    )
                    .await?;
                let DeviceOtp::Hotp { hotp, .. } = pending.otp.clone() else {
                    anyhow::bail!("the store made a TOTP device of a HOTP one");
                };
                let used = pending
                    .check(&hotp.generate(0), now(), 0, 0)
                    .context("code 0 of a new HOTP device was refused")?;
                ensure!(
                    store.confirm_device(&pending, used, now()).await?,
                    "the device of {name} was not confirmed"
                );
                made.push((index, hotp));
                report_progress(&progress, users, started, "device users");
            }
            anyhow::Ok(made)
        }));
    }
    let mut hotps: Vec<Option<Hotp>> = vec![None; users];
    for handle in handles {
        for (index, hotp) in handle.await?? {
            hotps[index] = Some(hotp);
        }
    }
    hotps
        .into_iter()
        .map(|hotp| hotp.context("a user was not seeded"))
        .collect()
}

async fn seed_email_users(
    store: &Store,
    users: usize,
    tasks: usize,
    role_id: RoleId,
    password_hash: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let progress = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut handles = Vec::new();
    for task in 0..tasks.max(1) {
        let store = store.clone();
        let password_hash = password_hash.to_owned();
        let progress = Arc::clone(&progress);
        handles.push(tokio::spawn(async move {
            for index in (task..users).step_by(tasks.max(1)) {
                let name = email_username(index);
                store
                    .create_user(
                        &NewUser {
                            username: Username::parse(&name)?,
                            display_name: DisplayName::parse(&name)?,
                            email: Some(Email::parse(&email_address(index))?),
                            role_id,
                            password_hash: password_hash.clone(),
                            must_change_password: false,
                        },
                        now(),
                    )
                    .await?;
                report_progress(&progress, users, started, "email users");
            }
            anyhow::Ok(())
        }));
    }
    for handle in handles {
        handle.await??;
    }
    Ok((0..users)
        .map(|index| (email_username(index), email_address(index)))
        .collect())
}

/// Prints a line at every tenth of the way (for long seedings).
fn report_progress(progress: &AtomicU64, total: usize, started: Instant, what: &str) {
    let done = progress.fetch_add(1, Ordering::Relaxed) + 1;
    let total = total as u64;
    let step = (total / 10).max(1);
    if total >= 10_000 && done % step == 0 {
        let seconds = started.elapsed().as_secs_f64();
        eprintln!(
            "  seeded {done}/{total} {what} in {seconds:.0} s ({:.0}/s)",
            done as f64 / seconds.max(1e-9)
        );
    }
}
