//! Published versions.
//!
//! What we store, and why: publishing copies `$LATEST` into an immutable row `N` of
//! `versions` (numbers come from `functions.next_version` and are never reused). Published
//! versions carry `source_fingerprint`, the fingerprint of the `$LATEST` they were published
//! from, so that publishing an unchanged `$LATEST` again returns the existing version as
//! Lambda does. A version an alias routes to is never deleted: the check runs inside the
//! transaction that deletes.

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use crate::db::{size_i64, Store, StoreError};
use crate::functions::{decode, read_version, to_json, unreferenced, StoredFunction, LATEST};

/// What [`Store::publish_version`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub version: StoredFunction,
    /// `false` when `$LATEST` had not changed since the last published version, which is
    /// returned instead of a new one.
    pub created: bool,
}

impl Store {
    /// Publish `$LATEST` of `name` as the next version, atomically. `check` sees `$LATEST`
    /// first (the caller's preconditions); when `$LATEST` has not changed since the last
    /// published version, that version is returned (`created: false`). Otherwise `make` builds
    /// version `N` (the function's next number, never reused) from `$LATEST`, it is stored,
    /// and `$LATEST` takes `new_latest_revision` as its RevisionId, as Lambda's does.
    pub fn publish_version<E: From<StoreError>>(
        &self,
        name: &str,
        new_latest_revision: &str,
        check: impl FnOnce(&StoredFunction) -> Result<(), E>,
        make: impl FnOnce(&StoredFunction, u64) -> StoredFunction,
    ) -> Result<Published, E> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let latest = read_version(&tx, name, LATEST)?.ok_or(StoreError::NotFound)?;
        check(&latest)?;
        let fingerprint = fingerprint(&latest)?;
        let next: i64 = tx
            .query_row(
                "SELECT next_version FROM functions WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .map_err(StoreError::from)?;
        if next > 1 {
            let previous: Option<(String, String, Option<String>)> = tx
                .query_row(
                    "SELECT config_json, code_sha256_hex, source_fingerprint FROM versions
                     WHERE function_name = ?1 AND version = ?2",
                    params![name, (next - 1).to_string()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(StoreError::from)?;
            if let Some((json, hex, Some(source))) = previous {
                if source == fingerprint {
                    return Ok(Published {
                        version: decode(name, &json, hex)?,
                        created: false,
                    });
                }
            }
        }
        let number = u64::try_from(next)
            .map_err(|_| StoreError::Corrupt(format!("next version {next} of {name}")))?;
        let version = make(&latest, number);
        let json = to_json(&version.config)?;
        tx.execute(
            "INSERT INTO versions (function_name, version, config_json, code_sha256_hex, revision_id, code_size, source_fingerprint)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                name,
                number.to_string(),
                json,
                version.code_sha256_hex,
                version.config.revision_id,
                size_i64(version.config.code_size),
                fingerprint
            ],
        )
        .map_err(StoreError::from)?;
        tx.execute(
            "UPDATE functions SET next_version = ?2 WHERE name = ?1",
            params![name, next + 1],
        )
        .map_err(StoreError::from)?;
        let mut latest_config = latest.config;
        latest_config.revision_id = new_latest_revision.to_string();
        tx.execute(
            "UPDATE versions SET config_json = ?3, revision_id = ?4 WHERE function_name = ?1 AND version = ?2",
            params![name, LATEST, to_json(&latest_config)?, new_latest_revision],
        )
        .map_err(StoreError::from)?;
        self.commit(tx)?;
        Ok(Published {
            version,
            created: true,
        })
    }

    /// Every version of a function, `$LATEST` first and then by number (`None` if the
    /// function does not exist).
    pub fn list_versions(&self, name: &str) -> Result<Option<Vec<StoredFunction>>, StoreError> {
        let conn = self.conn();
        let exists: bool = conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM functions WHERE name = ?1)",
            params![name],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(None);
        }
        let mut stmt = conn.prepare_cached(
            "SELECT config_json, code_sha256_hex FROM versions WHERE function_name = ?1
             ORDER BY CASE WHEN version = ?2 THEN -1 ELSE CAST(version AS INTEGER) END",
        )?;
        let rows = stmt
            .query_map(params![name, LATEST], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        drop(conn);
        rows.into_iter()
            .map(|(json, hex)| decode(name, &json, hex))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Delete one published version. `NotFound` if the function does not exist,
    /// `VersionInUse` if an alias routes to it; a version that does not exist is no error
    /// (`Ok(None)`). Returns the code digests no row references any more.
    pub fn delete_version(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists: bool = tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM functions WHERE name = ?1)",
            params![name],
            |r| r.get(0),
        )?;
        if !exists {
            return Err(StoreError::NotFound);
        }
        let referencing: Vec<String> = {
            let mut stmt = tx.prepare(
                "SELECT name FROM aliases WHERE function_name = ?1
                 AND (function_version = ?2 OR additional_version = ?2) ORDER BY name",
            )?;
            let rows = stmt
                .query_map(params![name, version], |r| r.get(0))?
                .collect::<Result<Vec<_>, _>>()?;
            rows
        };
        if !referencing.is_empty() {
            return Err(StoreError::VersionInUse(referencing));
        }
        let hex: Option<String> = tx
            .query_row(
                "SELECT code_sha256_hex FROM versions WHERE function_name = ?1 AND version = ?2",
                params![name, version],
                |r| r.get(0),
            )
            .optional()?;
        let Some(hex) = hex else {
            return Ok(None);
        };
        tx.execute(
            "DELETE FROM versions WHERE function_name = ?1 AND version = ?2",
            params![name, version],
        )?;
        tx.execute(
            "DELETE FROM provisioned_concurrency WHERE function_name = ?1 AND qualifier = ?2",
            params![name, version],
        )?;
        let orphans = unreferenced(&tx, std::iter::once(hex))?;
        self.commit(tx)?;
        Ok(Some(orphans))
    }
}

/// What identifies the content of `$LATEST` for publishing: its code and configuration, less
/// the RevisionId (which publishing itself changes).
fn fingerprint(latest: &StoredFunction) -> Result<String, StoreError> {
    let mut config = latest.config.clone();
    config.revision_id = String::new();
    Ok(format!("{}\n{}", latest.code_sha256_hex, to_json(&config)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

    #[test]
    fn publish_numbers_dedups_and_keeps_code() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.insert_function(&func("a", "r1", "aa")).unwrap();
        let p1 = publish(&store, "a", "l2");
        assert!(p1.created);
        assert_eq!(p1.version.config.version, "1");
        // $LATEST took the new RevisionId; nothing else of it changed.
        let latest = store.get_function("a", LATEST).unwrap().unwrap();
        assert_eq!(latest.config.revision_id, "l2");
        // Unchanged: the same version, and $LATEST keeps its RevisionId.
        let again = publish(&store, "a", "l3");
        assert!(!again.created);
        assert_eq!(again.version.config.version, "1");
        assert_eq!(
            store
                .get_function("a", LATEST)
                .unwrap()
                .unwrap()
                .config
                .revision_id,
            "l2"
        );
        // New code: version 2; the old code stays referenced by version 1.
        let mut next = func("a", "l4", "bb");
        next.config.code_sha256 = "y".into();
        assert!(store.replace_function(&next, "l2").unwrap().is_empty());
        assert_eq!(publish(&store, "a", "l5").version.config.version, "2");
        let listed: Vec<_> = store
            .list_versions("a")
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|v| (v.config.version, v.code_sha256_hex))
            .collect();
        assert_eq!(
            listed,
            [
                ("$LATEST".to_string(), "bb".to_string()),
                ("1".into(), "aa".into()),
                ("2".into(), "bb".into())
            ]
        );
        assert_eq!(store.list_versions("zz").unwrap(), None);
        // A refused precondition publishes nothing.
        let refused = store.publish_version::<StoreError>(
            "a",
            "x",
            |_| Err(StoreError::RevisionMismatch),
            |_, _| unreachable!(),
        );
        assert!(matches!(refused, Err(StoreError::RevisionMismatch)));
        assert!(matches!(
            store.publish_version::<StoreError>("zz", "x", |_| Ok(()), |l, _| l.clone()),
            Err(StoreError::NotFound)
        ));
        // ALL lists every version, by function then version.
        store.insert_function(&func("b", "r", "cc")).unwrap();
        let all: Vec<_> = store
            .list_all_versions(None, 10)
            .unwrap()
            .into_iter()
            .map(|v| format!("{}:{}", v.config.function_name, v.config.version))
            .collect();
        assert_eq!(all, ["a:$LATEST", "a:1", "a:2", "b:$LATEST"]);
        let rest: Vec<_> = store
            .list_all_versions(Some(("a", 1)), 10)
            .unwrap()
            .into_iter()
            .map(|v| format!("{}:{}", v.config.function_name, v.config.version))
            .collect();
        assert_eq!(rest, ["a:2", "b:$LATEST"]);
    }
}
