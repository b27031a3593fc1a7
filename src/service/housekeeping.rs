//! Removing what has expired: sign-in transactions, sessions, temporary access codes, and
//! the OpenID Connect provider's waiting requests, access tokens, grants and old codes.
//! Every read already ignores expired rows; this only keeps the tables from growing. Any
//! instance may run it (each delete is one statement).

use std::time::Duration;

use super::Context;
use crate::domain::SessionLimits;
use crate::store::StoreError;

/// How often the expired rows are removed.
pub const INTERVAL: Duration = Duration::from_secs(10 * 60);

/// Removes the rows expired at the clock's now; how many. A used code is kept as long as a
/// session of any role can last (SPEC 15's largest `session_max_hours`, 168 hours), so that
/// a late second use still finds the grant to revoke. Sessions go by the end set at their
/// sign-in; one past a role's shorter limit is already refused by every read.
pub async fn pass(ctx: &Context) -> Result<u64, StoreError> {
    let now = ctx.now();
    let sessions = ctx.store.purge_expired(now).await?;
    let provider = ctx
        .store
        .purge_oidc(now, now.plus_seconds(-SessionLimits::LONGEST_SECONDS))
        .await?;
    let ceremonies = ctx.store.purge_webauthn_challenges(now).await?;
    let temporary_access = ctx.store.purge_temporary_access(now).await?;
    Ok(sessions + provider + ceremonies + temporary_access)
}

/// Runs [`pass`] every [`INTERVAL`] until shut down.
pub async fn run(ctx: Context, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(INTERVAL) => {}
        }
        match pass(&ctx).await {
            Ok(0) => {}
            Ok(removed) => tracing::debug!(removed, "removed expired rows"),
            Err(error) => tracing::warn!(%error, "removing expired rows failed"),
        }
    }
}
