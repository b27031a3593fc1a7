//! Directory sign-in (SPEC section 12): a username that is not a local account is looked
//! up in the directory, created or refreshed from its entry, and its password checked by a
//! bind as that entry. The rules are the domain's ([`crate::domain::directory`]); the
//! network is [`crate::directory::DirectoryClient`]; this module joins them to the store.
//!
//! - [`look_up`]: the entry of a username, and the local user made from it (created at the
//!   first attempt, so that lockout is counted in twostep before the first bind; refreshed
//!   at each one: display name, email, role from the group map). An entry that is gone,
//!   disabled or in no mapped group signs in nobody and ends the user's sessions.
//! - [`bind`]: the password check, timed and counted (`/metrics`), and the connection
//!   state the console shows.
//!
//! The order of the checks around them (lockout before the bind, what is counted) is the
//! credential gate's ([`super::credentials::Gate::password`]).

use std::sync::Mutex;

use super::Context;
use crate::clock::{Stopwatch, Timestamp};
use crate::directory::{BindResult, DirectoryClient, DirectoryError, DirectorySetup};
use crate::domain::{AuditEvent, BindAnswer, BindRefusal, DirectoryEntry, RoleMap, RoleName};
use crate::domain::{User, UserSource, Username};
use crate::metrics::DirectoryBindOutcome;
use crate::store::{Conflict, DirectoryUser, StoreError};

/// What the console shows of the connection (System Settings).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectionState {
    /// The last time the directory answered (a search or a bind).
    pub last_success: Option<Timestamp>,
    /// The last time it could not be reached, and why (no password in it).
    pub last_error: Option<(Timestamp, String)>,
}

/// The directory's address and its connection state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryStatus {
    /// `--ldap-url`.
    pub url: String,
    /// `--ldap-user-base`.
    pub user_base: String,
    pub state: ConnectionState,
}

/// The configured directory: the client, the role map, and the connection state.
pub struct Directory {
    client: DirectoryClient,
    role_map: RoleMap,
    default_role: Option<RoleName>,
    state: Mutex<ConnectionState>,
}

impl Directory {
    /// Checks the configuration and binds as the service account
    /// ([`DirectoryClient::connect`]): a wrong service password stops start-up.
    pub async fn connect(setup: DirectorySetup, now: Timestamp) -> Result<Self, DirectoryError> {
        let client = DirectoryClient::connect(setup.client).await?;
        Ok(Self {
            client,
            role_map: setup.role_map,
            default_role: setup.default_role,
            state: Mutex::new(ConnectionState {
                last_success: Some(now),
                last_error: None,
            }),
        })
    }

    pub fn status(&self) -> DirectoryStatus {
        let config = self.client.config();
        DirectoryStatus {
            url: config.url.clone(),
            user_base: config.user_base.clone(),
            state: self.state.lock().map(|s| s.clone()).unwrap_or_default(),
        }
    }

    fn answered(&self, now: Timestamp) {
        if let Ok(mut state) = self.state.lock() {
            state.last_success = Some(now);
        }
    }

    fn unreachable(&self, now: Timestamp, error: &DirectoryError) {
        tracing::warn!(%error, "the directory could not be used");
        if let Ok(mut state) = self.state.lock() {
            state.last_error = Some((now, error.to_string()));
        }
    }
}

/// Why [`look_up`] signs nobody in with a name (the credential gate's audit reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureReason {
    DirectoryUnavailable,
    DirectoryEntryGone,
    DirectoryDisabled,
    DirectoryNoRole,
    DirectoryAmbiguous,
}

impl FailureReason {
    /// The audit text (the same as the credential gate's reason of the same name).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::DirectoryUnavailable => "directory unavailable",
            Self::DirectoryEntryGone => "no longer in the directory",
            Self::DirectoryDisabled => "disabled in the directory",
            Self::DirectoryNoRole => "in no directory group that gives a role",
            Self::DirectoryAmbiguous => "the directory's user filter matched several entries",
        }
    }
}

/// What [`look_up`] found.
#[derive(Debug)]
pub enum Lookup {
    /// The directory has no entry of this name (or there is no directory): nobody.
    NotFound,
    /// The entry, and the local user just created or refreshed from it.
    Found(User, DirectoryEntry),
    /// Nobody signs in with this name now, before any password is checked: the entry is
    /// gone, disabled or in no mapped group, or the directory cannot be reached
    /// ([`FailureReason::DirectoryUnavailable`]). `user`: the local directory user, if any.
    Refused {
        user: Option<User>,
        reason: FailureReason,
    },
}

/// Looks `username` up in the directory. `existing`: its local directory user, if it has
/// one (a local account never comes here). `ip` is for the audit entries of a user created,
/// changed, or whose sessions end (`None`: the periodic [`check_sessions`]).
pub(in crate::service) async fn look_up(
    ctx: &Context,
    username: &Username,
    existing: Option<User>,
    ip: Option<&str>,
) -> Result<Lookup, StoreError> {
    let Some(directory) = ctx.directory.as_deref() else {
        return Ok(match existing {
            // A directory user while no directory is configured: nobody can check it.
            Some(user) => Lookup::Refused {
                user: Some(user),
                reason: FailureReason::DirectoryUnavailable,
            },
            None => Lookup::NotFound,
        });
    };
    let refused = |user: Option<User>, reason| Lookup::Refused { user, reason };
    let found = match directory.client.find_user(username.as_str()).await {
        Ok(found) => {
            directory.answered(ctx.now());
            found
        }
        Err(DirectoryError::Ambiguous) => {
            tracing::warn!(
                username = username.as_str(),
                "the user filter matched more than one directory entry"
            );
            return Ok(refused(existing, FailureReason::DirectoryAmbiguous));
        }
        Err(error) => {
            directory.unreachable(ctx.now(), &error);
            return Ok(refused(existing, FailureReason::DirectoryUnavailable));
        }
    };
    let Some(found) = found else {
        return Ok(match existing {
            Some(user) => {
                end_sessions(ctx, &user, ip, FailureReason::DirectoryEntryGone).await?;
                refused(Some(user), FailureReason::DirectoryEntryGone)
            }
            None => Lookup::NotFound,
        });
    };
    let entry = found.entry(username.clone(), &directory.client.config().attributes);
    if entry.disabled {
        if let Some(user) = &existing {
            end_sessions(ctx, user, ip, FailureReason::DirectoryDisabled).await?;
        }
        return Ok(refused(existing, FailureReason::DirectoryDisabled));
    }
    let role_name = directory.role_map.role_for(
        &entry.groups,
        directory.default_role.as_ref().map(RoleName::as_str),
    );
    let role = match role_name {
        Some(name) => {
            let role = ctx.store.role_by_name(&name).await?;
            if role.is_none() {
                tracing::warn!(role = %name, "the directory's role map names a role that no longer exists");
            }
            role
        }
        None => None,
    };
    let Some(role) = role else {
        if let Some(user) = &existing {
            end_sessions(ctx, user, ip, FailureReason::DirectoryNoRole).await?;
        }
        return Ok(refused(existing, FailureReason::DirectoryNoRole));
    };
    let update = DirectoryUser {
        username: username.clone(),
        display_name: entry.display_name.clone(),
        email: entry.email.clone(),
        role_id: role.id,
        dn: entry.dn.clone(),
        groups: entry.groups.clone(),
    };
    let now = ctx.now();
    let user = match existing {
        Some(before) => {
            let Some(after) = ctx
                .store
                .refresh_directory_user(before.id, &update, now)
                .await?
            else {
                // Deleted (or made a local account) meanwhile.
                return Ok(Lookup::NotFound);
            };
            let changes = changes(ctx, &before, &after).await?;
            if !changes.is_empty() {
                ctx.audit(
                    AuditEvent::UserChanged,
                    None,
                    Some(after.username.as_str()),
                    ip,
                    format!("from the directory: {}", changes.join(", ")),
                )
                .await?;
            }
            after
        }
        None => match ctx.store.create_directory_user(&update, now).await {
            Ok(user) => {
                ctx.audit(
                    AuditEvent::UserCreated,
                    None,
                    Some(user.username.as_str()),
                    ip,
                    format!("from the directory: {} (role {})", entry.dn, role.name),
                )
                .await?;
                user
            }
            // Created by a concurrent sign-in (or an administrator) meanwhile: that
            // request decides; this one is refused as an unknown name.
            Err(StoreError::Conflict(Conflict::UsernameTaken)) => return Ok(Lookup::NotFound),
            Err(error) => return Err(error),
        },
    };
    debug_assert_eq!(user.source, UserSource::Directory);
    Ok(Lookup::Found(user, entry))
}

/// What a refresh changed, for the audit entry ("role Nurses → Doctors", "email").
async fn changes(ctx: &Context, before: &User, after: &User) -> Result<Vec<String>, StoreError> {
    let mut changes = Vec::new();
    if before.display_name != after.display_name {
        changes.push("display name".to_owned());
    }
    if before.email != after.email {
        changes.push("email".to_owned());
    }
    if before.role_id != after.role_id {
        let name = |role: Option<crate::domain::Role>| {
            role.map_or_else(|| "?".to_owned(), |r| r.name.as_str().to_owned())
        };
        let from = name(ctx.store.role_by_id(before.role_id).await?);
        let to = name(ctx.store.role_by_id(after.role_id).await?);
        changes.push(format!("role {from} → {to}"));
    }
    Ok(changes)
}

/// Ends every session of `user`, whose entry no longer signs anyone in (SPEC 12: "ends that
/// user's sessions at the next check"), audited with the reason.
async fn end_sessions(
    ctx: &Context,
    user: &User,
    ip: Option<&str>,
    reason: FailureReason,
) -> Result<(), StoreError> {
    ctx.store.delete_user_sessions(user.id).await?;
    ctx.audit(
        AuditEvent::UserChanged,
        None,
        Some(user.username.as_str()),
        ip,
        format!("sessions ended: {}", reason.as_str()),
    )
    .await
}

/// What one [`check_sessions`] pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionCheck {
    /// Directory users with a live session whose entry was read.
    pub checked: usize,
    /// Of them, those whose entry is gone, disabled or in no mapped group: their sessions
    /// ended.
    pub ended: usize,
    /// The directory could not be reached: the pass stopped, ending nothing more.
    pub unavailable: bool,
}

/// SPEC 12: "a directory entry that is gone or disabled signs in nobody and ends that
/// user's sessions at the next check". A sign-in attempt is one check; this is the other,
/// run every `--ldap-session-check-minutes` by [`SessionChecker`]: each directory user
/// with a live session has its entry read again, as at a sign-in ([`look_up`]: refreshed,
/// or its sessions ended and audited). An unreachable directory ends nobody's sessions.
pub async fn check_sessions(ctx: &Context) -> Result<SessionCheck, StoreError> {
    let mut check = SessionCheck::default();
    if ctx.directory.is_none() {
        return Ok(check);
    }
    for user in ctx.store.directory_users_with_sessions(ctx.now()).await? {
        let username = user.username.clone();
        match look_up(ctx, &username, Some(user), None).await? {
            Lookup::Refused {
                reason: FailureReason::DirectoryUnavailable,
                ..
            } => {
                check.unavailable = true;
                break;
            }
            // Several entries match: a configuration problem, not the user's; the next
            // sign-in refuses, the sessions stay.
            Lookup::Refused {
                reason: FailureReason::DirectoryAmbiguous,
                ..
            }
            | Lookup::Found(..)
            | Lookup::NotFound => {}
            Lookup::Refused { .. } => check.ended += 1,
        }
        check.checked += 1;
    }
    Ok(check)
}

/// Runs [`check_sessions`] every `interval` until shut down.
pub struct SessionChecker {
    ctx: Context,
    interval: std::time::Duration,
}

impl SessionChecker {
    pub fn new(ctx: Context, interval: std::time::Duration) -> Self {
        Self { ctx, interval }
    }

    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(self.interval) => {}
            }
            match check_sessions(&self.ctx).await {
                Ok(check) if check.ended > 0 || check.unavailable => tracing::info!(
                    checked = check.checked,
                    ended = check.ended,
                    unavailable = check.unavailable,
                    "checked the directory entries of signed-in users"
                ),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "checking directory users' sessions failed"),
            }
        }
    }
}

/// What a bind as the entry answered, as the gate reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bind {
    Bound,
    /// The empty password: refused, no bind was made.
    EmptyPassword,
    Refused(BindRefusal),
    /// The directory could not answer: not the user's failure.
    Unavailable,
}

/// Checks `password` by binding as `entry`: timed and counted by outcome (`/metrics`).
pub(in crate::service) async fn bind(
    ctx: &Context,
    entry: &DirectoryEntry,
    password: &str,
) -> Bind {
    let Some(directory) = ctx.directory.as_deref() else {
        return Bind::Unavailable;
    };
    let started = Stopwatch::start();
    let result = directory.client.check_password(&entry.dn, password).await;
    let answer = match result {
        Ok(BindResult::EmptyPassword) => return Bind::EmptyPassword,
        Ok(BindResult::Accepted) => BindAnswer::Bound,
        Ok(BindResult::Refused { code, diagnostic }) => BindAnswer::from_result(code, &diagnostic),
        Err(error) => {
            directory.unreachable(ctx.now(), &error);
            ctx.metrics
                .directory_bind(DirectoryBindOutcome::Unavailable, started.elapsed());
            return Bind::Unavailable;
        }
    };
    let (outcome, bind) = match answer {
        BindAnswer::Bound => (DirectoryBindOutcome::Success, Bind::Bound),
        BindAnswer::Refused(BindRefusal::WrongPassword) => (
            DirectoryBindOutcome::InvalidCredentials,
            Bind::Refused(BindRefusal::WrongPassword),
        ),
        BindAnswer::Refused(refusal) => {
            if let BindRefusal::Other(code) = refusal {
                tracing::warn!(
                    code,
                    "the directory refused a bind with an unexpected result code"
                );
            }
            (DirectoryBindOutcome::Refused, Bind::Refused(refusal))
        }
        BindAnswer::Unavailable(code) => {
            let error = DirectoryError::Unavailable(format!("LDAP result {code} to a bind"));
            directory.unreachable(ctx.now(), &error);
            (DirectoryBindOutcome::Unavailable, Bind::Unavailable)
        }
    };
    if bind != Bind::Unavailable {
        directory.answered(ctx.now());
    }
    ctx.metrics.directory_bind(outcome, started.elapsed());
    bind
}
