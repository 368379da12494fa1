//! Account usage.
//!
//! Nothing is stored for it: GetAccountSettings' `AccountUsage` is computed from the
//! `functions` and `versions` tables on every call.

use crate::db::{Store, StoreError};

/// Totals for GetAccountSettings' `AccountUsage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Sum of `CodeSize` over every stored version.
    pub total_code_size: u64,
    pub function_count: u64,
}

impl Store {
    /// Code size over all versions and the number of functions.
    pub fn usage(&self) -> Result<Usage, StoreError> {
        let conn = self.conn();
        let (size, count): (i64, i64) = conn.query_row(
            "SELECT (SELECT COALESCE(SUM(code_size), 0) FROM versions), (SELECT COUNT(*) FROM functions)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(Usage {
            total_code_size: u64::try_from(size).unwrap_or(0),
            function_count: u64::try_from(count).unwrap_or(0),
        })
    }

    /// Sum of `CodeSize` over every stored version.
    pub fn code_size_total(&self) -> Result<u64, StoreError> {
        Ok(self.usage()?.total_code_size)
    }

    /// Number of functions.
    pub fn function_count(&self) -> Result<u64, StoreError> {
        Ok(self.usage()?.function_count)
    }
}
