//! Scheduled rules (the EventBridge subset) and their targets.
//!
//! What we store, and why: every rule with its schedule expression, state and the moment its
//! schedule was set (rate expressions count their periods from it), and every target of a
//! rule (a Lambda function ARN and an optional constant input), so schedules keep firing
//! with the same phase after a restart. Firing times themselves are not stored: the
//! scheduler computes the next one from the clock at start, so firings missed while Sous was
//! down are skipped, as EventBridge's own rules skip them.
//!
//! The rule and target records are JSON (`config_json`), so a field can be added without a
//! migration; `state` is a column because the scheduler selects on it.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};

use crate::db::{Store, StoreError};

/// Migration 7.
pub(crate) const MIGRATION: &str = "CREATE TABLE event_rules (
        name         TEXT PRIMARY KEY NOT NULL,
        state        TEXT NOT NULL,
        config_json  TEXT NOT NULL
    );
    CREATE TABLE event_rule_targets (
        rule_name    TEXT NOT NULL REFERENCES event_rules(name) ON DELETE CASCADE,
        target_id    TEXT NOT NULL,
        config_json  TEXT NOT NULL,
        PRIMARY KEY (rule_name, target_id)
    );";

/// A rule as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRule {
    pub name: String,
    /// `rate(...)` or `cron(...)`, as given (already validated).
    pub schedule_expression: String,
    /// `ENABLED`, `DISABLED` (or `ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS`, which
    /// schedules treat as enabled).
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// When the schedule expression was set (epoch ms, whole seconds): rate expressions fire
    /// every period from here. Kept when PutRule repeats the same expression.
    pub schedule_anchor_ms: i64,
}

impl StoredRule {
    /// Whether the rule fires (any state but `DISABLED`).
    pub fn is_enabled(&self) -> bool {
        self.state != "DISABLED"
    }
}

/// A target as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTarget {
    pub id: String,
    /// A Lambda function ARN, with or without a qualifier.
    pub arn: String,
    /// Constant JSON text sent instead of the Scheduled Event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
}

impl StoredTarget {
    /// The function name and qualifier of the target's ARN
    /// (`arn:aws:lambda:{region}:{account}:function:{name}[:{qualifier}]`), or `None` when the
    /// ARN is not a function's (the API accepts only function ARNs).
    pub fn function(&self) -> Option<(&str, Option<&str>)> {
        let (_, rest) = self.arn.split_once(":function:")?;
        match rest.split_once(':') {
            Some((name, qualifier)) => Some((name, Some(qualifier))),
            None => Some((rest, None)),
        }
    }
}

/// What DeleteRule found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleDeletion {
    Deleted,
    NotFound,
    /// Refused: the rule still has targets.
    HasTargets,
}

fn encode<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(format!("encode rule record: {e}")))
}

fn decode<T: for<'de> Deserialize<'de>>(what: &str, json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("decode {what}: {e}")))
}

impl Store {
    /// Create or replace a rule. When the rule exists with the same schedule expression its
    /// anchor is kept (a repeated PutRule does not shift a rate's phase). Returns the rule as
    /// stored.
    pub fn put_rule(&self, rule: &StoredRule) -> Result<StoredRule, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: Option<String> = tx
            .query_row(
                "SELECT config_json FROM event_rules WHERE name = ?1",
                params![rule.name],
                |r| r.get(0),
            )
            .optional()?;
        let mut stored = rule.clone();
        if let Some(json) = current {
            let old: StoredRule = decode("rule", &json)?;
            if old.schedule_expression == rule.schedule_expression {
                stored.schedule_anchor_ms = old.schedule_anchor_ms;
            }
        }
        tx.execute(
            "INSERT INTO event_rules (name, state, config_json) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET state = excluded.state, config_json = excluded.config_json",
            params![stored.name, stored.state, encode(&stored)?],
        )?;
        tx.commit()?;
        Ok(stored)
    }

    /// One rule, if it exists.
    pub fn get_rule(&self, name: &str) -> Result<Option<StoredRule>, StoreError> {
        let conn = self.conn();
        let json: Option<String> = conn
            .query_row(
                "SELECT config_json FROM event_rules WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?;
        drop(conn);
        json.map(|j| decode("rule", &j)).transpose()
    }

    /// Every rule whose name starts with `prefix`, by name.
    pub fn list_rules(&self, prefix: &str) -> Result<Vec<StoredRule>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT name, config_json FROM event_rules ORDER BY name")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        drop(conn);
        rows.iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(_, j)| decode("rule", j))
            .collect()
    }

    /// Set a rule's state; whether the rule exists.
    pub fn set_rule_state(&self, name: &str, state: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let json: Option<String> = tx
            .query_row(
                "SELECT config_json FROM event_rules WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?;
        let Some(json) = json else {
            return Ok(false);
        };
        let mut rule: StoredRule = decode("rule", &json)?;
        rule.state = state.to_string();
        tx.execute(
            "UPDATE event_rules SET state = ?2, config_json = ?3 WHERE name = ?1",
            params![name, state, encode(&rule)?],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Delete a rule that has no targets.
    pub fn delete_rule(&self, name: &str) -> Result<RuleDeletion, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let targets: i64 = tx.query_row(
            "SELECT COUNT(*) FROM event_rule_targets WHERE rule_name = ?1",
            params![name],
            |r| r.get(0),
        )?;
        if targets > 0 {
            return Ok(RuleDeletion::HasTargets);
        }
        let n = tx.execute("DELETE FROM event_rules WHERE name = ?1", params![name])?;
        tx.commit()?;
        Ok(if n > 0 {
            RuleDeletion::Deleted
        } else {
            RuleDeletion::NotFound
        })
    }

    /// Add or replace targets of a rule (by id); `false` if the rule does not exist.
    pub fn put_targets(&self, rule: &str, targets: &[StoredTarget]) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists = rule_exists(&tx, rule)?;
        if !exists {
            return Ok(false);
        }
        for t in targets {
            tx.execute(
                "INSERT INTO event_rule_targets (rule_name, target_id, config_json) VALUES (?1, ?2, ?3)
                 ON CONFLICT (rule_name, target_id) DO UPDATE SET config_json = excluded.config_json",
                params![rule, t.id, encode(t)?],
            )?;
        }
        tx.commit()?;
        Ok(true)
    }

    /// A rule's targets in the order they were first added; `None` if the rule does not exist.
    pub fn list_targets(&self, rule: &str) -> Result<Option<Vec<StoredTarget>>, StoreError> {
        let conn = self.conn();
        let exists = rule_exists(&conn, rule)?;
        if !exists {
            return Ok(None);
        }
        let mut stmt = conn.prepare_cached(
            "SELECT config_json FROM event_rule_targets WHERE rule_name = ?1 ORDER BY rowid",
        )?;
        let rows = stmt
            .query_map(params![rule], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        drop(conn);
        rows.iter()
            .map(|j| decode("target", j))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Remove targets of a rule by id (ids it does not have are ignored); `false` if the rule
    /// does not exist.
    pub fn remove_targets(&self, rule: &str, ids: &[String]) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists = rule_exists(&tx, rule)?;
        if !exists {
            return Ok(false);
        }
        for id in ids {
            tx.execute(
                "DELETE FROM event_rule_targets WHERE rule_name = ?1 AND target_id = ?2",
                params![rule, id],
            )?;
        }
        tx.commit()?;
        Ok(true)
    }

    /// Every enabled rule that has targets, with its targets: what the scheduler fires.
    pub fn scheduled_rules(&self) -> Result<Vec<(StoredRule, Vec<StoredTarget>)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT r.name, r.config_json, t.config_json
             FROM event_rules r JOIN event_rule_targets t ON t.rule_name = r.name
             WHERE r.state != 'DISABLED'
             ORDER BY r.name, t.rowid",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        drop(conn);
        let mut out: Vec<(StoredRule, Vec<StoredTarget>)> = Vec::new();
        for (name, rule_json, target_json) in rows {
            let target: StoredTarget = decode("target", &target_json)?;
            match out.last_mut() {
                Some((rule, targets)) if rule.name == name => targets.push(target),
                _ => out.push((decode("rule", &rule_json)?, vec![target])),
            }
        }
        Ok(out)
    }
}

/// Whether rule `name` exists (inside the caller's transaction, when it has one).
fn rule_exists(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM event_rules WHERE name = ?1)",
        params![name],
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, expr: &str, anchor: i64) -> StoredRule {
        StoredRule {
            name: name.into(),
            schedule_expression: expr.into(),
            state: "ENABLED".into(),
            description: None,
            role_arn: None,
            schedule_anchor_ms: anchor,
        }
    }

    fn target(id: &str) -> StoredTarget {
        StoredTarget {
            id: id.into(),
            arn: format!("arn:aws:lambda:us-east-1:000000000000:function:{id}"),
            input: None,
            role_arn: None,
        }
    }

    #[test]
    fn rules_and_targets_round_trip_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let r = store.put_rule(&rule("a", "rate(1 minute)", 1000)).unwrap();
            assert_eq!(r.schedule_anchor_ms, 1000);
            // Same expression: the anchor stays; a new one moves it.
            let r = store.put_rule(&rule("a", "rate(1 minute)", 5000)).unwrap();
            assert_eq!(r.schedule_anchor_ms, 1000);
            let r = store.put_rule(&rule("a", "rate(2 minutes)", 5000)).unwrap();
            assert_eq!(r.schedule_anchor_ms, 5000);
            store.put_rule(&rule("b", "cron(0 10 * * ? *)", 0)).unwrap();
            assert!(store
                .put_targets("a", &[target("t1"), target("t2")])
                .unwrap());
            assert!(!store.put_targets("nope", &[target("t1")]).unwrap());
            assert_eq!(store.delete_rule("a").unwrap(), RuleDeletion::HasTargets);
            assert_eq!(store.delete_rule("nope").unwrap(), RuleDeletion::NotFound);
        }
        let store = Store::open(dir.path()).unwrap();
        let names: Vec<String> = store
            .list_rules("")
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(store.list_rules("b").unwrap().len(), 1);
        let ids: Vec<String> = store
            .list_targets("a")
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(ids, ["t1", "t2"]);
        let scheduled = store.scheduled_rules().unwrap();
        assert_eq!(scheduled.len(), 1, "b has no targets");
        assert_eq!(scheduled[0].1.len(), 2);
        assert!(store.set_rule_state("a", "DISABLED").unwrap());
        assert!(store.scheduled_rules().unwrap().is_empty());
        assert!(store
            .remove_targets("a", &["t1".into(), "t2".into(), "zz".into()])
            .unwrap());
        assert_eq!(store.delete_rule("a").unwrap(), RuleDeletion::Deleted);
        assert!(store.get_rule("a").unwrap().is_none());
    }
}
