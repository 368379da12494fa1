//! Which function an HTTP API request goes to.
//!
//! Owned by the HTTP APIs work (API Gateway v2 subset); the gateway ([`crate::gateway`]) calls
//! [`resolve`] for every request addressed to an API and builds the event from the
//! [`RouteMatch`]. The body of `resolve` is being built; the types are the contract.

use std::collections::BTreeMap;

use sous_store::{Store, StoreError};

/// The payload format of an integration (`PayloadFormatVersion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    /// "1.0": the REST API shape (httpMethod, resource, multiValueHeaders, ...).
    V1,
    /// "2.0": the HTTP API shape (version, routeKey, rawPath, ...).
    V2,
}

/// A request matched to a route of an HTTP API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub api_id: String,
    /// The stage the request addressed: `$default` or a stage name.
    pub stage: String,
    /// The matched route key, e.g. `GET /items/{id}`, `ANY /{proxy+}` or `$default`.
    pub route_key: String,
    /// The route's path template (payload 1.0 `resource`), e.g. `/items/{id}`; for
    /// `$default` routes, `/{proxy+}` as API Gateway reports it.
    pub resource: String,
    /// The path without the stage prefix (e.g. `/items/7` for `/prod/items/7`).
    pub path: String,
    /// Values of `{param}` and `{proxy+}` segments, by name (`proxy` for `{proxy+}`).
    pub path_parameters: BTreeMap<String, String>,
    /// The integration's target: a function name or ARN, possibly with a qualifier.
    pub function: String,
    pub payload_format: PayloadFormat,
    /// The integration's TimeoutInMillis (API Gateway's default 30000).
    pub timeout_ms: u64,
}

/// What [`resolve`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Matched(RouteMatch),
    /// No API with that id, or no stage of it at the start of the path: 404 `Not Found`.
    NoApi,
    /// The API exists but no route matches method and path: 404 `Not Found`.
    NoRoute,
}

/// Route a request for API `api_id`: `path` is the request path as received, after the
/// gateway's own addressing prefix (if any) is removed, still including a stage name when
/// the API has no `$default` stage (e.g. `/prod/items/7`).
pub fn resolve(
    _store: &Store,
    _api_id: &str,
    _method: &str,
    _path: &str,
) -> Result<Resolution, StoreError> {
    Ok(Resolution::NoApi)
}
