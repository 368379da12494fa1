//! Scheduled rules (the EventBridge subset) and their targets (being built).
//!
//! What we store, and why: every rule with its schedule expression and state, and its
//! targets, so schedules keep firing after a restart.

/// Migration 7.
pub(crate) const MIGRATION: &str = "CREATE TABLE event_rules (
        name         TEXT PRIMARY KEY NOT NULL,
        config_json  TEXT NOT NULL
    );
    CREATE TABLE event_rule_targets (
        rule_name    TEXT NOT NULL REFERENCES event_rules(name) ON DELETE CASCADE,
        target_id    TEXT NOT NULL,
        config_json  TEXT NOT NULL,
        PRIMARY KEY (rule_name, target_id)
    );";
