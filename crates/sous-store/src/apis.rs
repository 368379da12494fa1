//! HTTP APIs (the API Gateway v2 subset).
//!
//! What we store, and why: each API with its routes, integrations and stages, each as the
//! JSON shape the control plane returns, so the gateway routes requests after a restart
//! exactly as the control plane left it. Every write to an API (or to anything under it)
//! also sets the API's `revision` to a new random number in the same transaction: the
//! gateway keeps compiled route tables in memory and checks, with one primary-key lookup,
//! that the revision it compiled is still the current one.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sous_types::http_api::{Api, Integration, Route, Stage};

use crate::db::{Store, StoreError};

/// Migration 6.
pub(crate) const MIGRATION: &str = "CREATE TABLE http_apis (
        api_id       TEXT PRIMARY KEY NOT NULL,
        revision     INTEGER NOT NULL,
        created_seq  INTEGER NOT NULL,
        config_json  TEXT NOT NULL
    );
    CREATE TABLE http_api_integrations (
        api_id          TEXT NOT NULL REFERENCES http_apis(api_id) ON DELETE CASCADE,
        integration_id  TEXT NOT NULL,
        config_json     TEXT NOT NULL,
        PRIMARY KEY (api_id, integration_id)
    );
    CREATE TABLE http_api_routes (
        api_id      TEXT NOT NULL REFERENCES http_apis(api_id) ON DELETE CASCADE,
        route_id    TEXT NOT NULL,
        route_key   TEXT NOT NULL,
        config_json TEXT NOT NULL,
        PRIMARY KEY (api_id, route_id),
        UNIQUE (api_id, route_key)
    );
    CREATE TABLE http_api_stages (
        api_id      TEXT NOT NULL REFERENCES http_apis(api_id) ON DELETE CASCADE,
        stage_name  TEXT NOT NULL,
        config_json TEXT NOT NULL,
        PRIMARY KEY (api_id, stage_name)
    );";

/// Everything the gateway needs to route requests of one API, read in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpApiSnapshot {
    /// Changes on every write to the API or its children (see the module doc).
    pub revision: i64,
    pub api: Api,
    pub routes: Vec<Route>,
    pub integrations: Vec<Integration>,
    pub stages: Vec<Stage>,
}

/// A child resource of an API: its table and key column. The names are constants of this
/// file, never input.
trait Child: Serialize + DeserializeOwned {
    const TABLE: &'static str;
    const KEY: &'static str;
    fn key(&self) -> &str;
    fn insert(&self, conn: &Connection, api_id: &str, json: &str) -> rusqlite::Result<usize> {
        conn.execute(
            &format!(
                "INSERT INTO {} (api_id, {}, config_json) VALUES (?1, ?2, ?3)",
                Self::TABLE,
                Self::KEY
            ),
            params![api_id, self.key(), json],
        )
    }
}

impl Child for Integration {
    const TABLE: &'static str = "http_api_integrations";
    const KEY: &'static str = "integration_id";
    fn key(&self) -> &str {
        &self.integration_id
    }
}

impl Child for Stage {
    const TABLE: &'static str = "http_api_stages";
    const KEY: &'static str = "stage_name";
    fn key(&self) -> &str {
        &self.stage_name
    }
}

impl Child for Route {
    const TABLE: &'static str = "http_api_routes";
    const KEY: &'static str = "route_id";
    fn key(&self) -> &str {
        &self.route_id
    }
    fn insert(&self, conn: &Connection, api_id: &str, json: &str) -> rusqlite::Result<usize> {
        conn.execute(
            "INSERT INTO http_api_routes (api_id, route_id, route_key, config_json)
             VALUES (?1, ?2, ?3, ?4)",
            params![api_id, self.route_id, self.route_key, json],
        )
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("serialize: {e}")))
}

fn from_json<T: DeserializeOwned>(json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("HTTP API record: {e}")))
}

fn is_constraint(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

/// Set a new revision; `false` when the API does not exist.
fn bump(conn: &Connection, api_id: &str) -> Result<bool, StoreError> {
    let n = conn.execute(
        "UPDATE http_apis SET revision = random() WHERE api_id = ?1",
        params![api_id],
    )?;
    Ok(n == 1)
}

fn list_children<T: Child>(conn: &Connection, api_id: &str) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT config_json FROM {} WHERE api_id = ?1 ORDER BY {}",
        T::TABLE,
        T::KEY
    ))?;
    let rows = stmt
        .query_map(params![api_id], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    rows.iter().map(|j| from_json(j)).collect()
}

fn api_exists(conn: &Connection, api_id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM http_apis WHERE api_id = ?1")?
        .query_row(params![api_id], |_| Ok(()))
        .optional()?
        .is_some())
}

impl Store {
    /// Create an API together with the children a quick create makes, atomically.
    /// [`StoreError::Exists`] if the id is taken.
    pub fn create_http_api(
        &self,
        api: &Api,
        integrations: &[Integration],
        routes: &[Route],
        stages: &[Stage],
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let seq: i64 = tx.query_row(
            "SELECT COALESCE(MAX(created_seq), 0) + 1 FROM http_apis",
            [],
            |r| r.get(0),
        )?;
        let res = tx.execute(
            "INSERT INTO http_apis (api_id, revision, created_seq, config_json)
             VALUES (?1, random(), ?2, ?3)",
            params![api.api_id, seq, to_json(api)?],
        );
        match res {
            Err(e) if is_constraint(&e) => return Err(StoreError::Exists),
            r => r?,
        };
        for i in integrations {
            i.insert(&tx, &api.api_id, &to_json(i)?)?;
        }
        for r in routes {
            r.insert(&tx, &api.api_id, &to_json(r)?)?;
        }
        for s in stages {
            s.insert(&tx, &api.api_id, &to_json(s)?)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// One API, or `None`.
    pub fn get_http_api(&self, api_id: &str) -> Result<Option<Api>, StoreError> {
        let conn = self.conn();
        let json: Option<String> = conn
            .prepare_cached("SELECT config_json FROM http_apis WHERE api_id = ?1")?
            .query_row(params![api_id], |r| r.get(0))
            .optional()?;
        json.map(|j| from_json(&j)).transpose()
    }

    /// Every API, oldest first.
    pub fn list_http_apis(&self) -> Result<Vec<Api>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT config_json FROM http_apis ORDER BY created_seq")?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        rows.iter().map(|j| from_json(j)).collect()
    }

    /// Replace an API's configuration; `false` if it does not exist.
    pub fn update_http_api(&self, api: &Api) -> Result<bool, StoreError> {
        let conn = self.conn();
        let n = conn.execute(
            "UPDATE http_apis SET config_json = ?2, revision = random() WHERE api_id = ?1",
            params![api.api_id, to_json(api)?],
        )?;
        Ok(n == 1)
    }

    /// Delete an API and everything under it; `false` if it did not exist.
    pub fn delete_http_api(&self, api_id: &str) -> Result<bool, StoreError> {
        let conn = self.conn();
        let n = conn.execute("DELETE FROM http_apis WHERE api_id = ?1", params![api_id])?;
        Ok(n == 1)
    }

    /// The API's current revision, or `None` if it does not exist (one primary-key lookup).
    pub fn http_api_revision(&self, api_id: &str) -> Result<Option<i64>, StoreError> {
        let conn = self.conn();
        let rev = conn
            .prepare_cached("SELECT revision FROM http_apis WHERE api_id = ?1")?
            .query_row(params![api_id], |r| r.get(0))
            .optional()?;
        Ok(rev)
    }

    /// The API with all its children, consistently, or `None`.
    pub fn http_api_snapshot(&self, api_id: &str) -> Result<Option<HttpApiSnapshot>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let row: Option<(i64, String)> = tx
            .prepare_cached("SELECT revision, config_json FROM http_apis WHERE api_id = ?1")?
            .query_row(params![api_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((revision, json)) = row else {
            return Ok(None);
        };
        let snap = HttpApiSnapshot {
            revision,
            api: from_json(&json)?,
            routes: list_children(&tx, api_id)?,
            integrations: list_children(&tx, api_id)?,
            stages: list_children(&tx, api_id)?,
        };
        tx.commit()?;
        Ok(Some(snap))
    }

    fn insert_child<T: Child>(&self, api_id: &str, child: &T) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !bump(&tx, api_id)? {
            return Err(StoreError::NotFound);
        }
        match child.insert(&tx, api_id, &to_json(child)?) {
            Err(e) if is_constraint(&e) => return Err(StoreError::Exists),
            r => r?,
        };
        tx.commit()?;
        Ok(())
    }

    fn replace_child<T: Child>(&self, api_id: &str, child: &T) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            &format!(
                "UPDATE {} SET config_json = ?3 WHERE api_id = ?1 AND {} = ?2",
                T::TABLE,
                T::KEY
            ),
            params![api_id, child.key(), to_json(child)?],
        )?;
        if n == 1 {
            bump(&tx, api_id)?;
        }
        tx.commit()?;
        Ok(n == 1)
    }

    fn get_child<T: Child>(&self, api_id: &str, key: &str) -> Result<Option<T>, StoreError> {
        let conn = self.conn();
        let json: Option<String> = conn
            .prepare_cached(&format!(
                "SELECT config_json FROM {} WHERE api_id = ?1 AND {} = ?2",
                T::TABLE,
                T::KEY
            ))?
            .query_row(params![api_id, key], |r| r.get(0))
            .optional()?;
        json.map(|j| from_json(&j)).transpose()
    }

    /// `None` when the API does not exist.
    fn list_children_of<T: Child>(&self, api_id: &str) -> Result<Option<Vec<T>>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if !api_exists(&tx, api_id)? {
            return Ok(None);
        }
        let items = list_children(&tx, api_id)?;
        tx.commit()?;
        Ok(Some(items))
    }

    fn delete_child<T: Child>(&self, api_id: &str, key: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            &format!(
                "DELETE FROM {} WHERE api_id = ?1 AND {} = ?2",
                T::TABLE,
                T::KEY
            ),
            params![api_id, key],
        )?;
        if n == 1 {
            bump(&tx, api_id)?;
        }
        tx.commit()?;
        Ok(n == 1)
    }

    /// Add a route: [`StoreError::NotFound`] without the API, [`StoreError::Exists`] when
    /// its route key is taken.
    pub fn insert_http_api_route(&self, api_id: &str, route: &Route) -> Result<(), StoreError> {
        self.insert_child(api_id, route)
    }
    /// One route, or `None`.
    pub fn get_http_api_route(&self, api_id: &str, id: &str) -> Result<Option<Route>, StoreError> {
        self.get_child(api_id, id)
    }
    /// The API's routes by id, or `None` without the API.
    pub fn list_http_api_routes(&self, api_id: &str) -> Result<Option<Vec<Route>>, StoreError> {
        self.list_children_of(api_id)
    }
    /// Delete a route; `false` if there was none.
    pub fn delete_http_api_route(&self, api_id: &str, id: &str) -> Result<bool, StoreError> {
        self.delete_child::<Route>(api_id, id)
    }

    /// Add an integration: [`StoreError::NotFound`] without the API.
    pub fn insert_http_api_integration(
        &self,
        api_id: &str,
        integration: &Integration,
    ) -> Result<(), StoreError> {
        self.insert_child(api_id, integration)
    }
    /// One integration, or `None`.
    pub fn get_http_api_integration(
        &self,
        api_id: &str,
        id: &str,
    ) -> Result<Option<Integration>, StoreError> {
        self.get_child(api_id, id)
    }
    /// The API's integrations by id, or `None` without the API.
    pub fn list_http_api_integrations(
        &self,
        api_id: &str,
    ) -> Result<Option<Vec<Integration>>, StoreError> {
        self.list_children_of(api_id)
    }
    /// Delete an integration; `false` if there was none.
    pub fn delete_http_api_integration(&self, api_id: &str, id: &str) -> Result<bool, StoreError> {
        self.delete_child::<Integration>(api_id, id)
    }

    /// Add a stage: [`StoreError::NotFound`] without the API, [`StoreError::Exists`] when the
    /// name is taken.
    pub fn insert_http_api_stage(&self, api_id: &str, stage: &Stage) -> Result<(), StoreError> {
        self.insert_child(api_id, stage)
    }
    /// One stage, or `None`.
    pub fn get_http_api_stage(
        &self,
        api_id: &str,
        name: &str,
    ) -> Result<Option<Stage>, StoreError> {
        self.get_child(api_id, name)
    }
    /// Replace a stage's configuration; `false` if it does not exist.
    pub fn update_http_api_stage(&self, api_id: &str, stage: &Stage) -> Result<bool, StoreError> {
        self.replace_child(api_id, stage)
    }
    /// The API's stages by name, or `None` without the API.
    pub fn list_http_api_stages(&self, api_id: &str) -> Result<Option<Vec<Stage>>, StoreError> {
        self.list_children_of(api_id)
    }
    /// Delete a stage; `false` if there was none.
    pub fn delete_http_api_stage(&self, api_id: &str, name: &str) -> Result<bool, StoreError> {
        self.delete_child::<Stage>(api_id, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sous_types::http_api::RouteSettings;

    fn api(id: &str) -> Api {
        Api {
            api_endpoint: format!("http://127.0.0.1:3000/execute-api/{id}"),
            api_id: id.into(),
            api_key_selection_expression: "$request.header.x-api-key".into(),
            created_date: "2026-01-01T00:00:00Z".into(),
            description: None,
            disable_execute_api_endpoint: false,
            name: "x".into(),
            protocol_type: "HTTP".into(),
            route_selection_expression: "$request.method $request.path".into(),
            tags: Default::default(),
            version: None,
        }
    }

    fn route(id: &str, key: &str) -> Route {
        Route {
            api_gateway_managed: false,
            api_key_required: false,
            authorization_type: "NONE".into(),
            route_id: id.into(),
            route_key: key.into(),
            target: None,
        }
    }

    fn stage(name: &str) -> Stage {
        Stage {
            api_gateway_managed: false,
            auto_deploy: true,
            created_date: "2026-01-01T00:00:00Z".into(),
            default_route_settings: RouteSettings::default(),
            description: None,
            last_updated_date: "2026-01-01T00:00:00Z".into(),
            route_settings: Default::default(),
            stage_name: name.into(),
            stage_variables: Default::default(),
            tags: Default::default(),
        }
    }

    #[test]
    fn children_bump_the_revision_and_cascade() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_http_api(&api("a1"), &[], &[], &[]).unwrap();
        assert!(matches!(
            store.create_http_api(&api("a1"), &[], &[], &[]),
            Err(StoreError::Exists)
        ));
        let r0 = store.http_api_revision("a1").unwrap().unwrap();
        store
            .insert_http_api_route("a1", &route("r1", "GET /x"))
            .unwrap();
        let r1 = store.http_api_revision("a1").unwrap().unwrap();
        assert_ne!(r0, r1);
        assert!(matches!(
            store.insert_http_api_route("a1", &route("r2", "GET /x")),
            Err(StoreError::Exists)
        ));
        assert!(matches!(
            store.insert_http_api_route("nope", &route("r2", "GET /y")),
            Err(StoreError::NotFound)
        ));
        store
            .insert_http_api_stage("a1", &stage("$default"))
            .unwrap();
        let snap = store.http_api_snapshot("a1").unwrap().unwrap();
        assert_eq!(snap.routes.len(), 1);
        assert_eq!(snap.stages.len(), 1);
        assert!(store.delete_http_api_route("a1", "r1").unwrap());
        assert!(!store.delete_http_api_route("a1", "r1").unwrap());
        assert!(store.delete_http_api("a1").unwrap());
        assert_eq!(store.http_api_revision("a1").unwrap(), None);
        assert_eq!(store.list_http_api_stages("a1").unwrap(), None);
    }
}
