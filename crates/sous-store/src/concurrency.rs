//! Concurrency settings.
//!
//! What we store, and why: a restart must enforce and re-provision them. Reserved concurrency
//! is `functions.reserved_concurrency` (NULL = unreserved); provisioned concurrency is one
//! row of `provisioned_concurrency` per version or alias with the requested amount (what is
//! allocated is the worker's live state, never stored). Their checks against the account's
//! limits run inside the transaction that writes them.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::db::{Store, StoreError};

/// A stored provisioned concurrency configuration (what was asked; what is allocated is the
/// worker's live state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredProvisioned {
    pub function_name: String,
    /// A version number or an alias name.
    pub qualifier: String,
    pub requested: u64,
    /// `Timestamp` string of the last Put.
    pub last_modified: String,
}

/// The account's concurrency bookkeeping, as a reservation check sees it inside the
/// transaction that writes the reservation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConcurrencyView {
    /// Reserved concurrency of the function being changed (`None` = unreserved).
    pub current: Option<u64>,
    /// Sum of the reserved concurrency of every other function.
    pub others_reserved: u64,
    /// Sum of provisioned concurrency of functions without reserved concurrency, this one
    /// excluded (it counts against the unreserved pool).
    pub others_unreserved_provisioned: u64,
    /// Provisioned concurrency of this function: all its configurations but the one being
    /// written (by a provisioned Put), or all of them (by a reservation).
    pub own_provisioned: u64,
}

impl Store {
    /// A function's reserved concurrency: `None` if the function does not exist,
    /// `Some(None)` if it has none.
    pub fn reserved_concurrency(&self, name: &str) -> Result<Option<Option<u64>>, StoreError> {
        let conn = self.conn();
        let row: Option<Option<i64>> = conn
            .query_row(
                "SELECT reserved_concurrency FROM functions WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?;
        Ok(row.map(|r| r.and_then(|v| u64::try_from(v).ok())))
    }

    /// Every function's reserved concurrency (functions without one are left out).
    pub fn all_reserved_concurrency(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT name, reserved_concurrency FROM functions WHERE reserved_concurrency IS NOT NULL",
        )?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows
            .into_iter()
            .map(|(n, v)| (n, u64::try_from(v).unwrap_or(0)))
            .collect())
    }

    /// Set (`Some`) or remove (`None`) a function's reserved concurrency, atomically with
    /// `check`, which sees the account's bookkeeping. `NotFound` if the function does not
    /// exist.
    pub fn put_reserved_concurrency<E: From<StoreError>>(
        &self,
        name: &str,
        value: Option<u64>,
        check: impl FnOnce(&ConcurrencyView) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let view = concurrency_view(&tx, name, None)?;
        check(&view)?;
        tx.execute(
            "UPDATE functions SET reserved_concurrency = ?2 WHERE name = ?1",
            params![name, value.map(|v| i64::try_from(v).unwrap_or(i64::MAX))],
        )
        .map_err(StoreError::from)?;
        self.commit(tx)?;
        Ok(())
    }

    /// Store a provisioned concurrency configuration (replacing the qualifier's previous one),
    /// atomically with `check`. `NotFound` if the function does not exist.
    pub fn put_provisioned<E: From<StoreError>>(
        &self,
        p: &StoredProvisioned,
        check: impl FnOnce(&ConcurrencyView) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let view = concurrency_view(&tx, &p.function_name, Some(&p.qualifier))?;
        check(&view)?;
        tx.execute(
            "INSERT INTO provisioned_concurrency (function_name, qualifier, requested, last_modified)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (function_name, qualifier) DO UPDATE SET requested = ?3, last_modified = ?4",
            params![
                p.function_name,
                p.qualifier,
                i64::try_from(p.requested).unwrap_or(i64::MAX),
                p.last_modified
            ],
        )
        .map_err(StoreError::from)?;
        self.commit(tx)?;
        Ok(())
    }

    /// One provisioned concurrency configuration, if stored.
    pub fn get_provisioned(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<Option<StoredProvisioned>, StoreError> {
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT requested, last_modified FROM provisioned_concurrency
                 WHERE function_name = ?1 AND qualifier = ?2",
                params![function, qualifier],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
            )
            .optional()?;
        Ok(row.map(|(requested, last_modified)| StoredProvisioned {
            function_name: function.to_string(),
            qualifier: qualifier.to_string(),
            requested: u64::try_from(requested).unwrap_or(0),
            last_modified,
        }))
    }

    /// Provisioned concurrency configurations of one function (`Some(function)`, by
    /// qualifier) or of all functions.
    pub fn list_provisioned(
        &self,
        function: Option<&str>,
    ) -> Result<Vec<StoredProvisioned>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT function_name, qualifier, requested, last_modified FROM provisioned_concurrency
             WHERE ?1 IS NULL OR function_name = ?1 ORDER BY function_name, qualifier",
        )?;
        let rows = stmt
            .query_map(params![function], |r| {
                Ok(StoredProvisioned {
                    function_name: r.get(0)?,
                    qualifier: r.get(1)?,
                    requested: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                    last_modified: r.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Delete a provisioned concurrency configuration; whether it existed.
    pub fn delete_provisioned(&self, function: &str, qualifier: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "DELETE FROM provisioned_concurrency WHERE function_name = ?1 AND qualifier = ?2",
            params![function, qualifier],
        )?;
        self.commit(tx)?;
        Ok(n > 0)
    }
}

/// The concurrency bookkeeping around `name`, inside a transaction; `excluded` is a
/// provisioned configuration of `name` left out of `own_provisioned`. `NotFound` if the
/// function does not exist.
fn concurrency_view(
    conn: &Connection,
    name: &str,
    excluded: Option<&str>,
) -> Result<ConcurrencyView, StoreError> {
    let current: Option<Option<i64>> = conn
        .query_row(
            "SELECT reserved_concurrency FROM functions WHERE name = ?1",
            params![name],
            |r| r.get(0),
        )
        .optional()?;
    let Some(current) = current else {
        return Err(StoreError::NotFound);
    };
    let (others_reserved, others_unreserved_provisioned, own_provisioned): (i64, i64, i64) = conn
        .query_row(
        "SELECT
                (SELECT COALESCE(SUM(reserved_concurrency), 0) FROM functions
                  WHERE name <> ?1 AND reserved_concurrency IS NOT NULL),
                (SELECT COALESCE(SUM(p.requested), 0) FROM provisioned_concurrency p
                  JOIN functions f ON f.name = p.function_name
                  WHERE p.function_name <> ?1 AND f.reserved_concurrency IS NULL),
                (SELECT COALESCE(SUM(requested), 0) FROM provisioned_concurrency
                  WHERE function_name = ?1 AND (?2 IS NULL OR qualifier <> ?2))",
        params![name, excluded],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let u = |v: i64| u64::try_from(v).unwrap_or(0);
    Ok(ConcurrencyView {
        current: current.map(u),
        others_reserved: u(others_reserved),
        others_unreserved_provisioned: u(others_unreserved_provisioned),
        own_provisioned: u(own_provisioned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

    #[test]
    fn concurrency_settings_persist_and_see_the_account() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.insert_function(&func("a", "r1", "aa")).unwrap();
        store.insert_function(&func("b", "r1", "bb")).unwrap();
        assert_eq!(store.reserved_concurrency("a").unwrap(), Some(None));
        assert_eq!(store.reserved_concurrency("zz").unwrap(), None);
        store
            .put_reserved_concurrency::<StoreError>("a", Some(7), |v| {
                assert_eq!(v, &ConcurrencyView::default());
                Ok(())
            })
            .unwrap();
        let p = |q: &str, n: u64| StoredProvisioned {
            function_name: "b".into(),
            qualifier: q.into(),
            requested: n,
            last_modified: "t".into(),
        };
        store
            .put_provisioned::<StoreError>(&p("1", 2), |_| Ok(()))
            .unwrap();
        store
            .put_provisioned::<StoreError>(&p("live", 3), |v| {
                assert_eq!(v.own_provisioned, 2);
                assert_eq!(v.others_reserved, 7);
                Ok(())
            })
            .unwrap();
        store
            .put_reserved_concurrency::<StoreError>("a", Some(1), |v| {
                assert_eq!(v.current, Some(7));
                assert_eq!(v.others_unreserved_provisioned, 5);
                Ok(())
            })
            .unwrap();
        assert!(matches!(
            store.put_reserved_concurrency::<StoreError>("zz", Some(1), |_| Ok(())),
            Err(StoreError::NotFound)
        ));
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.reserved_concurrency("a").unwrap(), Some(Some(1)));
        assert_eq!(
            store.all_reserved_concurrency().unwrap(),
            [("a".to_string(), 1)].into()
        );
        assert_eq!(
            store.get_provisioned("b", "live").unwrap(),
            Some(p("live", 3))
        );
        assert_eq!(store.list_provisioned(Some("b")).unwrap().len(), 2);
        assert_eq!(store.list_provisioned(None).unwrap().len(), 2);
        assert!(store.delete_provisioned("b", "1").unwrap());
        assert!(!store.delete_provisioned("b", "1").unwrap());
        store.delete_alias("b", "live").unwrap();
        assert_eq!(store.get_provisioned("b", "live").unwrap(), None);
        store
            .put_provisioned::<StoreError>(&p("1", 2), |_| Ok(()))
            .unwrap();
        store.delete_function("b").unwrap();
        assert!(store.list_provisioned(None).unwrap().is_empty());
    }
}
