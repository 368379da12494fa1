//! Event invoke configurations.
//!
//! What we store, and why: the `FunctionEventInvokeConfig` of a function's `$LATEST`, a
//! version or an alias (retries, maximum event age, destinations), one row per qualifier,
//! because every asynchronous delivery (also after a restart) follows it. The record is kept
//! as the JSON the API returns (a field can be added without a migration); the store encodes
//! and decodes it, callers see the type. A function's configurations go with it (foreign key
//! cascade).

use rusqlite::{params, OptionalExtension, TransactionBehavior};
use sous_types::event_invoke::FunctionEventInvokeConfig;

use crate::db::{Store, StoreError};

impl Store {
    /// Store the event invoke configuration of `(function, qualifier)` (`$LATEST` for an
    /// unqualified one), replacing any earlier one. `NotFound` if the function does not
    /// exist.
    pub fn set_event_invoke_config(
        &self,
        function: &str,
        qualifier: &str,
        config: &FunctionEventInvokeConfig,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(config).map_err(|e| {
            StoreError::Corrupt(format!(
                "serialize event invoke configuration of {function}: {e}"
            ))
        })?;
        self.put_event_invoke_json(function, qualifier, &json)
    }

    /// The event invoke configuration of `(function, qualifier)`, if one is stored.
    pub fn event_invoke_config(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<Option<FunctionEventInvokeConfig>, StoreError> {
        self.event_invoke_json(function, qualifier)?
            .map(|json| decode(function, &json))
            .transpose()
    }

    /// Every event invoke configuration of a function, by qualifier.
    pub fn event_invoke_configs(
        &self,
        function: &str,
    ) -> Result<Vec<FunctionEventInvokeConfig>, StoreError> {
        self.event_invoke_jsons(function)?
            .iter()
            .map(|json| decode(function, json))
            .collect()
    }

    /// Remove an event invoke configuration; `false` if there was none.
    pub fn delete_event_invoke_config(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let deleted = tx.execute(
            "DELETE FROM event_invoke_configs WHERE function_name = ?1 AND qualifier = ?2",
            params![function, qualifier],
        )?;
        self.commit(tx)?;
        Ok(deleted > 0)
    }

    pub(crate) fn put_event_invoke_json(
        &self,
        function: &str,
        qualifier: &str,
        json: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let changed = tx.execute(
            "INSERT INTO event_invoke_configs (function_name, qualifier, config_json)
             SELECT ?1, ?2, ?3 WHERE EXISTS(SELECT 1 FROM functions WHERE name = ?1)
             ON CONFLICT (function_name, qualifier) DO UPDATE SET config_json = excluded.config_json",
            params![function, qualifier, json],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        self.commit(tx)
    }

    pub(crate) fn event_invoke_json(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<Option<String>, StoreError> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                "SELECT config_json FROM event_invoke_configs WHERE function_name = ?1 AND qualifier = ?2",
                params![function, qualifier],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub(crate) fn event_invoke_jsons(&self, function: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT config_json FROM event_invoke_configs WHERE function_name = ?1 ORDER BY qualifier",
        )?;
        let rows = stmt
            .query_map(params![function], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(rows)
    }
}

fn decode(function: &str, json: &str) -> Result<FunctionEventInvokeConfig, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("event invoke configuration of {function}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use crate::LATEST;

    fn cfg(retries: u32) -> FunctionEventInvokeConfig {
        FunctionEventInvokeConfig {
            maximum_retry_attempts: Some(retries),
            ..FunctionEventInvokeConfig::default()
        }
    }

    #[test]
    fn event_invoke_configs_per_qualifier() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(matches!(
            store.set_event_invoke_config("f", LATEST, &cfg(0)),
            Err(StoreError::NotFound)
        ));
        store.insert_function(&func("f", "r1", "aa")).unwrap();
        store.set_event_invoke_config("f", LATEST, &cfg(1)).unwrap();
        store.set_event_invoke_config("f", LATEST, &cfg(2)).unwrap();
        store.set_event_invoke_config("f", "live", &cfg(0)).unwrap();
        assert_eq!(
            store.event_invoke_config("f", LATEST).unwrap(),
            Some(cfg(2))
        );
        assert_eq!(store.event_invoke_configs("f").unwrap(), [cfg(2), cfg(0)]);
        assert!(store.delete_event_invoke_config("f", "live").unwrap());
        assert!(!store.delete_event_invoke_config("f", "live").unwrap());
        store.delete_function("f").unwrap();
        assert!(store.event_invoke_config("f", LATEST).unwrap().is_none());
    }
}
