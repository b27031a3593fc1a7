//! Recovery codes (SPEC section 10): a new set (shown once, the old set gone) and how many
//! are left. Checking a code at sign-in is the credential gate's
//! ([`super::credentials::Gate::recovery_code`]).

use rand::rngs::OsRng;

use super::{notify, Context};
use crate::domain::{self, AuditEvent, RecoveryCode, SecurityEvent, User};
use crate::store::{NewAuditEntry, StoreError};

/// A new set of codes for `user`, replacing every earlier code, audited as "Recovery codes
/// generated" by `actor` from `ip`, and the user is told by email (SPEC 10). The codes are
/// returned once, to be shown; the store keeps only their keyed hashes.
pub async fn generate_set(
    ctx: &Context,
    user: &User,
    actor: &str,
    ip: Option<&str>,
) -> Result<Vec<RecoveryCode>, StoreError> {
    let codes = domain::generate_set(&mut OsRng);
    let key = ctx.store.key();
    let hashes: Vec<[u8; 32]> = codes
        .iter()
        .map(|code| key.recovery_code_hash(user.id, code))
        .collect();
    let entry = NewAuditEntry {
        event: AuditEvent::RecoveryCodesGenerated,
        actor: Some(actor.to_owned()),
        subject: Some(user.username.as_str().to_owned()),
        client_ip: ip.map(str::to_owned),
        detail: format!("{} codes", codes.len()),
    };
    ctx.store
        .replace_recovery_codes(user.id, &hashes, &entry, ctx.now())
        .await?;
    notify::security_logged(ctx, user, SecurityEvent::RecoveryCodesGenerated, ip).await;
    Ok(codes)
}

/// How many unused codes `user` has.
pub async fn left(ctx: &Context, user: &User) -> Result<u32, StoreError> {
    ctx.store.recovery_codes_left(user.id).await
}

/// Why a user's codes are revoked (the audit detail).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revocation {
    /// An administrator's "Revoke recovery codes": always audited.
    Revoked,
    /// An administrator removed or replaced the user's device: a new device gets a new
    /// set; audited when codes were left.
    DeviceChanged,
}

/// Removes every code of `user`; how many unused ones there were. Audited as "Recovery
/// codes revoked" by `actor` from `ip` (see [`Revocation`]).
pub async fn revoke(
    ctx: &Context,
    user: &User,
    actor: &str,
    ip: Option<&str>,
    why: Revocation,
) -> Result<u32, StoreError> {
    let left = ctx.store.revoke_recovery_codes(user.id).await?;
    let detail = match why {
        Revocation::Revoked => format!("{left} unused codes"),
        Revocation::DeviceChanged => format!("{left} unused codes, with the 2-step device"),
    };
    if why == Revocation::Revoked || left > 0 {
        ctx.audit(
            AuditEvent::RecoveryCodesRevoked,
            Some(actor),
            Some(user.username.as_str()),
            ip,
            detail,
        )
        .await?;
    }
    Ok(left)
}
