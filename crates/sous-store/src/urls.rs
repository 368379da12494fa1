//! Function URL configurations.
//!
//! What we store, and why: one row per function URL (a function's `$LATEST` or an alias),
//! with the configuration JSON the API returns, so the gateway can find the function behind a
//! URL id after a restart. The URL id is the primary key: the front door's one lookup per
//! request is an index probe. A function's URLs go with it (foreign key cascade); an alias's
//! URL goes with the alias (trigger), as on Lambda.

use rusqlite::{params, OptionalExtension};

use crate::db::{Store, StoreError};

/// Migration 5.
pub(crate) const MIGRATION: &str = "CREATE TABLE function_urls (
        url_id         TEXT PRIMARY KEY NOT NULL,
        function_name  TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
        qualifier      TEXT NOT NULL,
        config_json    TEXT NOT NULL,
        UNIQUE (function_name, qualifier)
    );
    CREATE TRIGGER function_urls_follow_aliases AFTER DELETE ON aliases BEGIN
        DELETE FROM function_urls
        WHERE function_name = OLD.function_name AND qualifier = OLD.name;
    END;";

/// A function URL as the front door needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUrl {
    pub url_id: String,
    pub function_name: String,
    /// `$LATEST` or an alias name.
    pub qualifier: String,
    pub config_json: String,
}

impl Store {
    /// Store a new function URL. `Exists` if `(function, qualifier)` already has one;
    /// `NotFound` if the function does not exist.
    pub fn insert_function_url(&self, url: &StoredUrl) -> Result<(), StoreError> {
        let conn = self.conn();
        let exists: Option<i64> = conn
            .query_row(
                "SELECT 1 FROM function_urls WHERE function_name = ?1 AND qualifier = ?2",
                params![url.function_name, url.qualifier],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_some() {
            return Err(StoreError::Exists);
        }
        let changed = conn.execute(
            "INSERT INTO function_urls (url_id, function_name, qualifier, config_json)
             SELECT ?1, ?2, ?3, ?4 WHERE EXISTS(SELECT 1 FROM functions WHERE name = ?2)",
            params![
                url.url_id,
                url.function_name,
                url.qualifier,
                url.config_json
            ],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// The function URL of `(function, qualifier)`.
    pub fn get_function_url(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<Option<StoredUrl>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT url_id, config_json FROM function_urls WHERE function_name = ?1 AND qualifier = ?2",
        )?;
        Ok(stmt
            .query_row(params![function, qualifier], |r| {
                Ok(StoredUrl {
                    url_id: r.get(0)?,
                    function_name: function.to_string(),
                    qualifier: qualifier.to_string(),
                    config_json: r.get(1)?,
                })
            })
            .optional()?)
    }

    /// The function URL with id `url_id` (the front door's lookup).
    pub fn function_url_by_id(&self, url_id: &str) -> Result<Option<StoredUrl>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT function_name, qualifier, config_json FROM function_urls WHERE url_id = ?1",
        )?;
        Ok(stmt
            .query_row(params![url_id], |r| {
                Ok(StoredUrl {
                    url_id: url_id.to_string(),
                    function_name: r.get(0)?,
                    qualifier: r.get(1)?,
                    config_json: r.get(2)?,
                })
            })
            .optional()?)
    }

    /// Replace the configuration JSON of `(function, qualifier)`; `false` if there is none.
    pub fn update_function_url(
        &self,
        function: &str,
        qualifier: &str,
        config_json: &str,
    ) -> Result<bool, StoreError> {
        let conn = self.conn();
        Ok(conn.execute(
            "UPDATE function_urls SET config_json = ?3 WHERE function_name = ?1 AND qualifier = ?2",
            params![function, qualifier, config_json],
        )? > 0)
    }

    /// Remove the function URL of `(function, qualifier)`; `false` if there was none.
    pub fn delete_function_url(&self, function: &str, qualifier: &str) -> Result<bool, StoreError> {
        let conn = self.conn();
        Ok(conn.execute(
            "DELETE FROM function_urls WHERE function_name = ?1 AND qualifier = ?2",
            params![function, qualifier],
        )? > 0)
    }

    /// Every function URL of `function`, ordered by qualifier.
    pub fn list_function_urls(&self, function: &str) -> Result<Vec<StoredUrl>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT url_id, qualifier, config_json FROM function_urls WHERE function_name = ?1 ORDER BY qualifier",
        )?;
        let rows = stmt
            .query_map(params![function], |r| {
                Ok(StoredUrl {
                    url_id: r.get(0)?,
                    function_name: function.to_string(),
                    qualifier: r.get(1)?,
                    config_json: r.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(id: &str, f: &str, q: &str) -> StoredUrl {
        StoredUrl {
            url_id: id.into(),
            function_name: f.into(),
            qualifier: q.into(),
            config_json: "{}".into(),
        }
    }

    #[test]
    fn a_url_needs_its_function_and_is_unique_per_qualifier() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(matches!(
            store.insert_function_url(&url("a", "missing", "$LATEST")),
            Err(StoreError::NotFound)
        ));
        store
            .conn()
            .execute(
                "INSERT INTO functions (name, created_at) VALUES ('f', 0)",
                [],
            )
            .unwrap();
        store
            .insert_function_url(&url("a", "f", "$LATEST"))
            .unwrap();
        assert!(matches!(
            store.insert_function_url(&url("b", "f", "$LATEST")),
            Err(StoreError::Exists)
        ));
        store
            .conn()
            .execute(
                "INSERT INTO aliases (function_name, name, function_version, config_json, revision_id)
                 VALUES ('f', 'live', '1', '{}', 'r')",
                [],
            )
            .unwrap();
        store.insert_function_url(&url("c", "f", "live")).unwrap();
        assert_eq!(store.list_function_urls("f").unwrap().len(), 2);
        assert_eq!(
            store.function_url_by_id("c").unwrap().unwrap().qualifier,
            "live"
        );
        assert!(store.update_function_url("f", "live", "{\"x\":1}").unwrap());
        // Deleting the alias drops its URL; deleting the function drops the rest.
        assert!(store.delete_alias("f", "live").unwrap());
        assert!(store.function_url_by_id("c").unwrap().is_none());
        store
            .conn()
            .execute("DELETE FROM functions WHERE name = 'f'", [])
            .unwrap();
        assert!(store.function_url_by_id("a").unwrap().is_none());
        assert!(!store.delete_function_url("f", "$LATEST").unwrap());
    }
}
