//! Aliases.
//!
//! What we store, and why: each alias's `AliasConfiguration` JSON with its primary and
//! additional version in columns, so a version an alias routes to is never deleted (see
//! `versions.rs`), and so an alias can only route to versions that exist (checked inside the
//! transaction that writes it).

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use sous_types::alias::AliasConfiguration;

use crate::db::{Store, StoreError};

impl Store {
    /// Create an alias of `function`. `NotFound` if the function does not exist,
    /// `VersionNotFound` if a version it routes to does not, `Exists` if the name is taken.
    pub fn insert_alias(
        &self,
        function: &str,
        alias: &AliasConfiguration,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        require_versions(&tx, function, alias)?;
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO aliases (function_name, name, function_version, additional_version, config_json, revision_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                function,
                alias.name,
                alias.function_version,
                additional_version(alias),
                alias_json(alias)?,
                alias.revision_id
            ],
        )?;
        if inserted == 0 {
            return Err(StoreError::Exists);
        }
        self.commit(tx)?;
        Ok(())
    }

    /// Replace an alias if its stored RevisionId is still `expected_revision_id`:
    /// `NotFound` if the alias does not exist, `RevisionMismatch`, or `VersionNotFound`.
    pub fn replace_alias(
        &self,
        function: &str,
        alias: &AliasConfiguration,
        expected_revision_id: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: Option<String> = tx
            .query_row(
                "SELECT revision_id FROM aliases WHERE function_name = ?1 AND name = ?2",
                params![function, alias.name],
                |r| r.get(0),
            )
            .optional()?;
        match current {
            None => return Err(StoreError::NotFound),
            Some(r) if r != expected_revision_id => return Err(StoreError::RevisionMismatch),
            Some(_) => {}
        }
        require_versions(&tx, function, alias)?;
        tx.execute(
            "UPDATE aliases SET function_version = ?3, additional_version = ?4, config_json = ?5, revision_id = ?6
             WHERE function_name = ?1 AND name = ?2",
            params![
                function,
                alias.name,
                alias.function_version,
                additional_version(alias),
                alias_json(alias)?,
                alias.revision_id
            ],
        )?;
        self.commit(tx)?;
        Ok(())
    }

    /// One alias of a function, if it exists.
    pub fn get_alias(
        &self,
        function: &str,
        name: &str,
    ) -> Result<Option<AliasConfiguration>, StoreError> {
        let conn = self.conn();
        let json: Option<String> = conn
            .query_row(
                "SELECT config_json FROM aliases WHERE function_name = ?1 AND name = ?2",
                params![function, name],
                |r| r.get(0),
            )
            .optional()?;
        drop(conn);
        json.map(|j| decode_alias(function, &j)).transpose()
    }

    /// Every alias of a function, by name (`None` if the function does not exist).
    pub fn list_aliases(
        &self,
        function: &str,
    ) -> Result<Option<Vec<AliasConfiguration>>, StoreError> {
        let conn = self.conn();
        let exists: bool = conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM functions WHERE name = ?1)",
            params![function],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(None);
        }
        let mut stmt = conn.prepare_cached(
            "SELECT config_json FROM aliases WHERE function_name = ?1 ORDER BY name",
        )?;
        let rows = stmt
            .query_map(params![function], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        drop(conn);
        rows.iter()
            .map(|j| decode_alias(function, j))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Delete an alias (and its provisioned concurrency configuration); whether it existed.
    pub fn delete_alias(&self, function: &str, name: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "DELETE FROM aliases WHERE function_name = ?1 AND name = ?2",
            params![function, name],
        )?;
        tx.execute(
            "DELETE FROM provisioned_concurrency WHERE function_name = ?1 AND qualifier = ?2",
            params![function, name],
        )?;
        self.commit(tx)?;
        Ok(n > 0)
    }
}

/// Fail with `VersionNotFound` unless every version `alias` routes to exists (and `NotFound`
/// unless the function does).
fn require_versions(
    conn: &Connection,
    function: &str,
    alias: &AliasConfiguration,
) -> Result<(), StoreError> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM functions WHERE name = ?1)",
        params![function],
        |r| r.get(0),
    )?;
    if !exists {
        return Err(StoreError::NotFound);
    }
    let mut stmt = conn.prepare_cached(
        "SELECT EXISTS(SELECT 1 FROM versions WHERE function_name = ?1 AND version = ?2)",
    )?;
    for v in alias.versions() {
        let found: bool = stmt.query_row(params![function, v], |r| r.get(0))?;
        if !found {
            return Err(StoreError::VersionNotFound(v.to_string()));
        }
    }
    Ok(())
}

fn additional_version(alias: &AliasConfiguration) -> Option<&str> {
    alias
        .routing_config
        .as_ref()
        .and_then(|r| r.additional())
        .map(|(v, _)| v)
}

fn alias_json(alias: &AliasConfiguration) -> Result<String, StoreError> {
    serde_json::to_string(alias)
        .map_err(|e| StoreError::Corrupt(format!("serialize alias {}: {e}", alias.alias_arn)))
}

fn decode_alias(function: &str, json: &str) -> Result<AliasConfiguration, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("alias of function {function}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::LATEST;
    use crate::test_support::*;

    #[test]
    fn versions_in_use_by_aliases_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.insert_function(&func("a", "r1", "aa")).unwrap();
        publish(&store, "a", "l2");
        let mut next = func("a", "l3", "bb");
        next.config.code_sha256 = "y".into();
        store.replace_function(&next, "l2").unwrap();
        publish(&store, "a", "l4");

        assert!(matches!(
            store.insert_alias("a", &alias("x", "9", None)),
            Err(StoreError::VersionNotFound(v)) if v == "9"
        ));
        assert!(matches!(
            store.insert_alias("a", &alias("x", "1", Some("9"))),
            Err(StoreError::VersionNotFound(v)) if v == "9"
        ));
        assert!(matches!(
            store.insert_alias("zz", &alias("x", "1", None)),
            Err(StoreError::NotFound)
        ));
        store.insert_alias("a", &alias("live", "1", None)).unwrap();
        store
            .insert_alias("a", &alias("canary", "2", Some("1")))
            .unwrap();
        assert!(matches!(
            store.insert_alias("a", &alias("live", "2", None)),
            Err(StoreError::Exists)
        ));
        match store.delete_version("a", "1") {
            Err(StoreError::VersionInUse(a)) => assert_eq!(a, ["canary", "live"]),
            other => panic!("{other:?}"),
        }
        // Moving the aliases frees version 1; its code "aa" is then unreferenced.
        let mut moved = alias("live", "2", None);
        moved.revision_id = "r2".into();
        assert!(matches!(
            store.replace_alias("a", &moved, "stale"),
            Err(StoreError::RevisionMismatch)
        ));
        store.replace_alias("a", &moved, "r-live").unwrap();
        assert!(store.delete_alias("a", "canary").unwrap());
        assert!(!store.delete_alias("a", "canary").unwrap());
        assert_eq!(
            store.delete_version("a", "1").unwrap(),
            Some(vec!["aa".to_string()])
        );
        assert_eq!(store.delete_version("a", "1").unwrap(), None);
        assert!(matches!(
            store.delete_version("zz", "1"),
            Err(StoreError::NotFound)
        ));
        assert_eq!(store.get_alias("a", "live").unwrap(), Some(moved.clone()));
        assert_eq!(store.list_aliases("a").unwrap(), Some(vec![moved]));
        assert_eq!(store.list_aliases("zz").unwrap(), None);
        // Numbers are never reused.
        let mut next = func("a", "l6", "cc");
        next.config.code_sha256 = "z".into();
        let current = store.get_function("a", LATEST).unwrap().unwrap();
        store
            .replace_function(&next, &current.config.revision_id)
            .unwrap();
        assert_eq!(publish(&store, "a", "l7").version.config.version, "3");
        // Deleting the function deletes its versions and aliases.
        let orphans = store.delete_function("a").unwrap();
        assert_eq!(orphans.len(), 2, "{orphans:?}");
        store.insert_function(&func("a", "r1", "aa")).unwrap();
        assert_eq!(store.list_aliases("a").unwrap(), Some(vec![]));
        assert_eq!(store.list_versions("a").unwrap().unwrap().len(), 1);
    }
}
