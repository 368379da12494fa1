//! Functions and their code.
//!
//! What we store, and why: every function version's `FunctionConfiguration` (exactly the JSON
//! shape the API returns, so a read never re-derives it) and the SHA-256 of the code zip it
//! runs. The `functions` table holds what belongs to the function rather than to a version
//! (its creation time, its tags, the next version number to publish, its reserved
//! concurrency); `versions` holds `$LATEST` and each published `N` (see `versions.rs`). The
//! code blobs themselves live in the [`CodeStore`](crate::CodeStore) beside the database; rows
//! reference them by hex digest, and a blob no row references any more is garbage-collected
//! through [`Store::gc_code`].

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use sous_types::config::FunctionConfiguration;

use crate::db::{now_ms, size_i64, Store, StoreError};

/// `$LATEST`, the version every function has (defined once, in sous-types).
pub use sous_types::LATEST;

/// One function version as stored: its configuration and the digest of its code zip.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFunction {
    pub config: FunctionConfiguration,
    /// Hex SHA-256 of the code zip in the [`CodeStore`].
    pub code_sha256_hex: String,
}

impl Store {
    /// Create a function: its `functions` row and its `$LATEST` version, atomically.
    pub fn insert_function(&self, f: &StoredFunction) -> Result<(), StoreError> {
        self.insert_function_with_tags(f, &BTreeMap::new())
    }

    /// [`Store::insert_function`] with the function's tags.
    pub fn insert_function_with_tags(
        &self,
        f: &StoredFunction,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let json = to_json(&f.config)?;
        let tags_json = serde_json::to_string(tags).map_err(|e| {
            StoreError::Corrupt(format!("serialize tags of {}: {e}", f.config.function_name))
        })?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO functions (name, created_at, next_version, tags_json) VALUES (?1, ?2, 1, ?3)",
            params![f.config.function_name, now_ms(), tags_json],
        )?;
        if inserted == 0 {
            return Err(StoreError::Exists);
        }
        tx.execute(
            "INSERT INTO versions (function_name, version, config_json, code_sha256_hex, revision_id, code_size)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                f.config.function_name,
                LATEST,
                json,
                f.code_sha256_hex,
                f.config.revision_id,
                size_i64(f.config.code_size)
            ],
        )?;
        self.commit(tx)?;
        Ok(())
    }

    /// One version of a function (`$LATEST` or `N`), if it exists.
    pub fn get_function(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Option<StoredFunction>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT config_json, code_sha256_hex FROM versions WHERE function_name = ?1 AND version = ?2",
        )?;
        let row = stmt
            .query_row(params![name, version], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .optional()?;
        drop(stmt);
        drop(conn);
        row.map(|(json, hex)| decode(name, &json, hex)).transpose()
    }

    /// End a `Pending` creation: if `$LATEST` of `name` still holds code `code_hex` and is
    /// `Pending`, make it `Active` (`extracted`) or `Failed`. Its RevisionId stays. Returns
    /// whether a row changed.
    pub fn settle_creation(
        &self,
        name: &str,
        code_hex: &str,
        extracted: bool,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let json: Option<String> = tx
            .query_row(
                "SELECT config_json FROM versions WHERE function_name = ?1 AND version = ?2 AND code_sha256_hex = ?3",
                params![name, LATEST, code_hex],
                |r| r.get(0),
            )
            .optional()?;
        let Some(json) = json else {
            return Ok(false);
        };
        let mut config = decode(name, &json, code_hex.to_string())?.config;
        if config.state.as_deref() != Some(sous_types::config::function_state::PENDING) {
            return Ok(false);
        }
        if extracted {
            config.set_active();
        } else {
            config.set_failed();
        }
        tx.execute(
            "UPDATE versions SET config_json = ?3 WHERE function_name = ?1 AND version = ?2",
            params![name, LATEST, to_json(&config)?],
        )?;
        self.commit(tx)?;
        Ok(true)
    }

    /// Functions whose `$LATEST` is `Pending` (an extraction that a stop interrupted): name
    /// and code digest.
    pub fn pending_creations(&self) -> Result<Vec<(String, String)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT function_name, config_json, code_sha256_hex FROM versions WHERE version = ?1",
        )?;
        let rows = stmt
            .query_map(params![LATEST], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        drop(conn);
        let mut pending = Vec::new();
        for (name, json, hex) in rows {
            let stored = decode(&name, &json, hex)?;
            if stored.config.state.as_deref() == Some(sous_types::config::function_state::PENDING) {
                pending.push((name, stored.code_sha256_hex));
            }
        }
        Ok(pending)
    }

    /// A function's tags (`None` if the function does not exist).
    pub fn get_tags(&self, name: &str) -> Result<Option<BTreeMap<String, String>>, StoreError> {
        let conn = self.conn();
        let json: Option<String> = conn
            .query_row(
                "SELECT tags_json FROM functions WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?;
        drop(conn);
        json.map(|j| {
            serde_json::from_str(&j)
                .map_err(|e| StoreError::Corrupt(format!("tags of function {name}: {e}")))
        })
        .transpose()
    }

    /// Replace a version's configuration (`f.config.function_name` / `f.config.version`) if
    /// its stored RevisionId is still `expected_revision_id`. Returns the code digests no row
    /// references any more (the replaced code, when the code changed), for [`Store::gc_code`].
    pub fn replace_function(
        &self,
        f: &StoredFunction,
        expected_revision_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let json = to_json(&f.config)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: Option<(String, String)> = tx
            .query_row(
                "SELECT revision_id, code_sha256_hex FROM versions WHERE function_name = ?1 AND version = ?2",
                params![f.config.function_name, f.config.version],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((revision, old_hex)) = current else {
            return Err(StoreError::NotFound);
        };
        if revision != expected_revision_id {
            return Err(StoreError::RevisionMismatch);
        }
        tx.execute(
            "UPDATE versions SET config_json = ?3, code_sha256_hex = ?4, revision_id = ?5, code_size = ?6
             WHERE function_name = ?1 AND version = ?2",
            params![
                f.config.function_name,
                f.config.version,
                json,
                f.code_sha256_hex,
                f.config.revision_id,
                size_i64(f.config.code_size)
            ],
        )?;
        let orphans = unreferenced(&tx, std::iter::once(old_hex))?;
        self.commit(tx)?;
        Ok(orphans)
    }

    /// `$LATEST` of up to `limit` functions whose names sort after `after`, by name.
    pub fn list_functions(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredFunction>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT function_name, config_json, code_sha256_hex FROM versions
             WHERE version = ?1 AND function_name > ?2 ORDER BY function_name LIMIT ?3",
        )?;
        let rows = stmt
            .query_map(
                params![
                    LATEST,
                    after.unwrap_or(""),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                },
            )?
            .collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        drop(conn);
        rows.into_iter()
            .map(|(name, json, hex)| decode(&name, &json, hex))
            .collect()
    }

    /// Up to `limit` versions of all functions, by function name and then `$LATEST` first and
    /// by number, starting after `after` (a function name and a [`version_order`]).
    pub fn list_all_versions(
        &self,
        after: Option<(&str, i64)>,
        limit: usize,
    ) -> Result<Vec<StoredFunction>, StoreError> {
        let (after_name, after_order) = after.unwrap_or(("", i64::MIN));
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT function_name, config_json, code_sha256_hex,
                    CASE WHEN version = ?1 THEN -1 ELSE CAST(version AS INTEGER) END AS ord
             FROM versions
             WHERE function_name > ?2 OR (function_name = ?2 AND ord > ?3)
             ORDER BY function_name, ord LIMIT ?4",
        )?;
        let rows = stmt
            .query_map(
                params![
                    LATEST,
                    after_name,
                    after_order,
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                },
            )?
            .collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        drop(conn);
        rows.into_iter()
            .map(|(name, json, hex)| decode(&name, &json, hex))
            .collect()
    }

    /// Delete a function and all its versions. Returns the code digests no row references any
    /// more, for [`Store::gc_code`].
    pub fn delete_function(&self, name: &str) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let hexes: Vec<String> = {
            let mut stmt = tx.prepare(
                "SELECT DISTINCT code_sha256_hex FROM versions WHERE function_name = ?1",
            )?;
            let rows = stmt
                .query_map(params![name], |r| r.get(0))?
                .collect::<Result<Vec<_>, _>>()?;
            rows
        };
        tx.execute(
            "DELETE FROM aliases WHERE function_name = ?1",
            params![name],
        )?;
        tx.execute(
            "DELETE FROM provisioned_concurrency WHERE function_name = ?1",
            params![name],
        )?;
        tx.execute(
            "DELETE FROM versions WHERE function_name = ?1",
            params![name],
        )?;
        let deleted = tx.execute("DELETE FROM functions WHERE name = ?1", params![name])?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        let orphans = unreferenced(&tx, hexes)?;
        self.commit(tx)?;
        Ok(orphans)
    }

    /// Remove the blobs (zip and extraction) of `hexes` that no row references. Safe against
    /// a concurrent create that is storing the same blob (see [`Store::pin_code`]).
    pub fn gc_code(&self, hexes: &[String]) -> Result<(), StoreError> {
        if hexes.is_empty() {
            return Ok(());
        }
        let _gate = self.code_gate.write().unwrap_or_else(|p| p.into_inner());
        let still_orphans = {
            let conn = self.conn();
            unreferenced(&conn, hexes.iter().cloned())?
        };
        for hex in still_orphans {
            self.code().remove(&hex)?;
        }
        // Merged layer dirs (`/opt`) made of a removed layer go too.
        self.gc_opt_dirs()?;
        Ok(())
    }
}

/// Those of `hexes` that no function version or layer version row references.
pub(crate) fn unreferenced(
    conn: &Connection,
    hexes: impl IntoIterator<Item = String>,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT EXISTS(SELECT 1 FROM versions WHERE code_sha256_hex = ?1)
             OR EXISTS(SELECT 1 FROM layer_versions WHERE code_sha256_hex = ?1)",
    )?;
    let mut out = Vec::new();
    for hex in hexes {
        let used: bool = stmt.query_row(params![hex], |r| r.get(0))?;
        if !used && !out.contains(&hex) {
            out.push(hex);
        }
    }
    Ok(out)
}

/// Where a version sorts among its function's versions: `$LATEST` first (-1), then by number.
pub fn version_order(version: &str) -> i64 {
    if version == LATEST {
        -1
    } else {
        version.parse().unwrap_or(i64::MAX)
    }
}

/// One version row, read inside a transaction.
pub(crate) fn read_version(
    conn: &Connection,
    name: &str,
    version: &str,
) -> Result<Option<StoredFunction>, StoreError> {
    let row: Option<(String, String)> = conn
        .query_row(
            "SELECT config_json, code_sha256_hex FROM versions WHERE function_name = ?1 AND version = ?2",
            params![name, version],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    row.map(|(json, hex)| decode(name, &json, hex)).transpose()
}

pub(crate) fn decode(
    name: &str,
    json: &str,
    code_sha256_hex: String,
) -> Result<StoredFunction, StoreError> {
    let config = serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("configuration of function {name}: {e}")))?;
    Ok(StoredFunction {
        config,
        code_sha256_hex,
    })
}

pub(crate) fn to_json(config: &FunctionConfiguration) -> Result<String, StoreError> {
    serde_json::to_string(config).map_err(|e| {
        StoreError::Corrupt(format!(
            "serialize configuration of {}: {e}",
            config.function_name
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use crate::usage::Usage;

    #[test]
    fn insert_get_and_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let f = func("a", "r1", "aa");
        store.insert_function(&f).unwrap();
        assert!(matches!(store.insert_function(&f), Err(StoreError::Exists)));
        assert_eq!(store.get_function("a", LATEST).unwrap(), Some(f));
        assert_eq!(store.get_function("a", "1").unwrap(), None);
        assert_eq!(store.get_function("b", LATEST).unwrap(), None);
        assert_eq!(store.get_tags("a").unwrap(), Some(BTreeMap::new()));
        assert_eq!(store.get_tags("b").unwrap(), None);
        let tags: BTreeMap<String, String> = [("k".to_string(), "v".to_string())].into();
        store
            .insert_function_with_tags(&func("t", "r", "aa"), &tags)
            .unwrap();
        assert_eq!(store.get_tags("t").unwrap(), Some(tags));
    }

    #[test]
    fn replace_is_compare_and_swap() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.insert_function(&func("a", "r1", "aa")).unwrap();
        store.insert_function(&func("b", "r1", "bb")).unwrap();
        let next = func("a", "r2", "bb");
        assert!(matches!(
            store.replace_function(&next, "r0"),
            Err(StoreError::RevisionMismatch)
        ));
        // "aa" is no longer referenced; "bb" still is.
        assert_eq!(
            store.replace_function(&next, "r1").unwrap(),
            vec!["aa".to_string()]
        );
        assert_eq!(
            store
                .get_function("a", LATEST)
                .unwrap()
                .unwrap()
                .config
                .revision_id,
            "r2"
        );
        assert!(matches!(
            store.replace_function(&func("zz", "r", "x"), "r"),
            Err(StoreError::NotFound)
        ));
    }

    #[test]
    fn list_pages_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for n in ["c", "a", "b", "d"] {
            store.insert_function(&func(n, "r", "h")).unwrap();
        }
        let names = |v: Vec<StoredFunction>| {
            v.into_iter()
                .map(|f| f.config.function_name)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(store.list_functions(None, 2).unwrap()), ["a", "b"]);
        assert_eq!(
            names(store.list_functions(Some("b"), 10).unwrap()),
            ["c", "d"]
        );
        assert!(store.list_functions(Some("d"), 10).unwrap().is_empty());
    }

    #[test]
    fn delete_returns_orphans_and_usage() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.insert_function(&func("a", "r", "shared")).unwrap();
        store.insert_function(&func("b", "r", "shared")).unwrap();
        store.insert_function(&func("c", "r", "own")).unwrap();
        assert_eq!(
            store.usage().unwrap(),
            Usage {
                total_code_size: 30,
                function_count: 3
            }
        );
        assert!(store.delete_function("a").unwrap().is_empty());
        assert_eq!(
            store.delete_function("b").unwrap(),
            vec!["shared".to_string()]
        );
        assert!(matches!(
            store.delete_function("b"),
            Err(StoreError::NotFound)
        ));
        assert_eq!(
            store.usage().unwrap(),
            Usage {
                total_code_size: 10,
                function_count: 1
            }
        );
        assert_eq!(store.function_count().unwrap(), 1);
        assert_eq!(store.code_size_total().unwrap(), 10);
    }

    #[test]
    fn corrupt_rows_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.insert_function(&func("a", "r1", "aa")).unwrap();
        store
            .conn()
            .execute("UPDATE versions SET config_json = '{not json'", [])
            .unwrap();
        assert!(matches!(
            store.get_function("a", LATEST),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            store.list_functions(None, 10),
            Err(StoreError::Corrupt(_))
        ));
    }
}
