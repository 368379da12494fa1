//! Function URL configurations (being built).
//!
//! What we store, and why: one row per function URL (a function's `$LATEST` or an alias),
//! with the configuration JSON the API returns, so the gateway can find the function behind a
//! URL id after a restart.

/// Migration 5.
pub(crate) const MIGRATION: &str = "CREATE TABLE function_urls (
        url_id         TEXT PRIMARY KEY NOT NULL,
        function_name  TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
        qualifier      TEXT NOT NULL,
        config_json    TEXT NOT NULL,
        UNIQUE (function_name, qualifier)
    );";
