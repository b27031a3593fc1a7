//! The audit log's hash chain (SPEC section 16): each instance seals new entries every
//! second ([`run`]); [`verify`] walks the whole chain and names the first broken entry.
//! The rules are `domain::audit_chain`'s; the ordering point is `Store::seal_audit`'s.

use std::time::Duration;

use super::Context;
use crate::domain::audit_chain::{Broken, ChainCheck};
use crate::store::{Store, StoreError};

/// How often an instance seals the entries written since.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Entries read per page while verifying.
const PAGE: u32 = 1000;

/// What `twostep audit verify` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainReport {
    /// Sealed entries checked.
    pub checked: u64,
    /// Entries written but not sealed yet (sealed within a second by a running instance).
    pub unsealed: i64,
    /// The first broken entry, if any.
    pub broken: Option<Broken>,
}

/// Walks the chain from its start, or from sequence number `from`, until its head or its
/// first broken entry. It only reads.
pub async fn verify(store: &Store, from: Option<i64>) -> Result<ChainReport, StoreError> {
    let (head, unsealed) = store.audit_chain_state().await?;
    let mut walk = match from {
        Some(seq) => ChainCheck::from_seq(seq),
        None => ChainCheck::from_start(),
    };
    let mut next = from.unwrap_or(1);
    let mut broken = None;
    'pages: while next <= head {
        let page = store.audit_chain_page(next, PAGE).await?;
        if page.is_empty() {
            break;
        }
        for (entry, link) in &page {
            if let Err(found) = walk.next(entry, link) {
                broken = Some(found);
                break 'pages;
            }
            next = link.seq + 1;
        }
    }
    // Entries sealed up to the head that are no longer there: the last ones were removed.
    if broken.is_none() && next <= head {
        broken = Some(Broken {
            id: 0,
            seq: next,
            why: crate::domain::audit_chain::Break::Gap { expected: next },
        });
    }
    Ok(ChainReport {
        checked: walk.checked(),
        unsealed,
        broken,
    })
}

/// Seals what was written every [`INTERVAL`] until shut down.
pub async fn run(ctx: Context, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(INTERVAL) => {}
        }
        if let Err(error) = ctx.store.seal_all_audit().await {
            tracing::warn!(%error, "sealing audit entries failed");
        }
    }
    // What the last requests wrote.
    if let Err(error) = ctx.store.seal_all_audit().await {
        tracing::warn!(%error, "sealing audit entries failed");
    }
}
