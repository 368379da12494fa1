//! HTTP APIs (the API Gateway v2 subset) (being built).
//!
//! What we store, and why: each API with its routes, integrations and stages, so the gateway
//! routes requests after a restart exactly as the control plane left it.

/// Migration 6.
pub(crate) const MIGRATION: &str = "CREATE TABLE http_apis (
        api_id       TEXT PRIMARY KEY NOT NULL,
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
