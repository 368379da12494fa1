//! Function URL configurations.
//!
//! What we store, and why: one row per function URL (a function's `$LATEST` or an alias),
//! with its `FunctionUrlConfig` (kept as the JSON the API returns; the store encodes and
//! decodes it), so the gateway can find the function behind a URL id after a restart. The URL
//! id is the primary key: the front door's one lookup per request is an index probe. A
//! function's URLs go with it (foreign key cascade); an alias's URL goes with the alias
//! (trigger), as on Lambda.

use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};
use sous_types::function_url::FunctionUrlConfig;

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
pub struct FunctionUrl {
    pub url_id: String,
    pub function_name: String,
    /// `$LATEST` or an alias name.
    pub qualifier: String,
    pub config: FunctionUrlConfig,
}

const COLUMNS: &str = "url_id, function_name, qualifier, config_json";

fn from_row(r: &Row<'_>) -> rusqlite::Result<(String, String, String, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn decode(
    (url_id, function_name, qualifier, json): (String, String, String, String),
) -> Result<FunctionUrl, StoreError> {
    let config = serde_json::from_str(&json)
        .map_err(|e| StoreError::Corrupt(format!("URL configuration of {function_name}: {e}")))?;
    Ok(FunctionUrl {
        url_id,
        function_name,
        qualifier,
        config,
    })
}

fn encode(function: &str, config: &FunctionUrlConfig) -> Result<String, StoreError> {
    serde_json::to_string(config)
        .map_err(|e| StoreError::Corrupt(format!("serialize URL configuration of {function}: {e}")))
}

impl Store {
    /// Store a new function URL. `Exists` if `(function, qualifier)` already has one;
    /// `NotFound` if the function does not exist.
    pub fn insert_url(&self, url: &FunctionUrl) -> Result<(), StoreError> {
        let json = encode(&url.function_name, &url.config)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM function_urls WHERE function_name = ?1 AND qualifier = ?2",
                params![url.function_name, url.qualifier],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_some() {
            return Err(StoreError::Exists);
        }
        let changed = tx.execute(
            "INSERT INTO function_urls (url_id, function_name, qualifier, config_json)
             SELECT ?1, ?2, ?3, ?4 WHERE EXISTS(SELECT 1 FROM functions WHERE name = ?2)",
            params![url.url_id, url.function_name, url.qualifier, json],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        self.commit(tx)
    }

    /// The function URL of `(function, qualifier)`.
    pub fn url(&self, function: &str, qualifier: &str) -> Result<Option<FunctionUrl>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM function_urls WHERE function_name = ?1 AND qualifier = ?2"
        ))?;
        let row = stmt
            .query_row(params![function, qualifier], from_row)
            .optional()?;
        drop(stmt);
        drop(conn);
        row.map(decode).transpose()
    }

    /// The function URL with id `url_id` (the front door's lookup).
    pub fn url_by_id(&self, url_id: &str) -> Result<Option<FunctionUrl>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM function_urls WHERE url_id = ?1"
        ))?;
        let row = stmt.query_row(params![url_id], from_row).optional()?;
        drop(stmt);
        drop(conn);
        row.map(decode).transpose()
    }

    /// Replace the configuration of `(function, qualifier)`; `false` if there is none.
    pub fn update_url(
        &self,
        function: &str,
        qualifier: &str,
        config: &FunctionUrlConfig,
    ) -> Result<bool, StoreError> {
        let json = encode(function, config)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let changed = tx.execute(
            "UPDATE function_urls SET config_json = ?3 WHERE function_name = ?1 AND qualifier = ?2",
            params![function, qualifier, json],
        )?;
        self.commit(tx)?;
        Ok(changed > 0)
    }

    /// Remove the function URL of `(function, qualifier)`; `false` if there was none.
    pub fn delete_function_url(&self, function: &str, qualifier: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let deleted = tx.execute(
            "DELETE FROM function_urls WHERE function_name = ?1 AND qualifier = ?2",
            params![function, qualifier],
        )?;
        self.commit(tx)?;
        Ok(deleted > 0)
    }

    /// Every function URL of `function`, ordered by qualifier.
    pub fn urls(&self, function: &str) -> Result<Vec<FunctionUrl>, StoreError> {
        let rows = {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM function_urls WHERE function_name = ?1 ORDER BY qualifier"
            ))?;
            let rows = stmt
                .query_map(params![function], from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            rows
        };
        rows.into_iter().map(decode).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sous_types::function_url::AuthType;

    pub(crate) fn config(id: &str) -> FunctionUrlConfig {
        FunctionUrlConfig {
            function_url: format!("http://x/lambda-url/{id}/"),
            function_arn: "arn".into(),
            auth_type: AuthType::None,
            cors: None,
            creation_time: "t".into(),
            last_modified_time: None,
            invoke_mode: "BUFFERED".into(),
        }
    }

    fn url(id: &str, f: &str, q: &str) -> FunctionUrl {
        FunctionUrl {
            url_id: id.into(),
            function_name: f.into(),
            qualifier: q.into(),
            config: config(id),
        }
    }

    #[test]
    fn a_url_needs_its_function_and_is_unique_per_qualifier() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(matches!(
            store.insert_url(&url("a", "missing", "$LATEST")),
            Err(StoreError::NotFound)
        ));
        store
            .conn()
            .execute(
                "INSERT INTO functions (name, created_at) VALUES ('f', 0)",
                [],
            )
            .unwrap();
        store.insert_url(&url("a", "f", "$LATEST")).unwrap();
        assert!(matches!(
            store.insert_url(&url("b", "f", "$LATEST")),
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
        store.insert_url(&url("c", "f", "live")).unwrap();
        assert_eq!(store.urls("f").unwrap().len(), 2);
        assert_eq!(store.url_by_id("c").unwrap(), Some(url("c", "f", "live")));
        let mut changed = config("c");
        changed.invoke_mode = "RESPONSE_STREAM".into();
        assert!(store.update_url("f", "live", &changed).unwrap());
        assert_eq!(store.url("f", "live").unwrap().unwrap().config, changed);
        assert!(!store.update_url("f", "nope", &changed).unwrap());
        // Deleting the alias drops its URL; deleting the function drops the rest.
        assert!(store.delete_alias("f", "live").unwrap());
        assert!(store.url_by_id("c").unwrap().is_none());
        store
            .conn()
            .execute("DELETE FROM functions WHERE name = 'f'", [])
            .unwrap();
        assert!(store.url_by_id("a").unwrap().is_none());
        assert!(!store.delete_function_url("f", "$LATEST").unwrap());
    }

    #[test]
    fn a_corrupt_url_row_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .conn()
            .execute_batch(
                "INSERT INTO functions (name, created_at) VALUES ('f', 0);
                 INSERT INTO function_urls VALUES ('a', 'f', '$LATEST', '{not json');",
            )
            .unwrap();
        assert!(matches!(store.url_by_id("a"), Err(StoreError::Corrupt(_))));
    }
}
