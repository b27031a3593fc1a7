//! Small SQL helpers every aggregate of the store shares.

use super::{StoreError, StoreResult};

/// `Ok` when a write touched a row, `NotFound` when it touched none.
pub(super) fn found(rows_affected: u64) -> StoreResult<()> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}
