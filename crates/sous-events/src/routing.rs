//! Which function an HTTP API request goes to.
//!
//! Owned by the HTTP APIs work (API Gateway v2 subset); the gateway ([`crate::gateway`]) calls
//! [`resolve`] for every request addressed to an API and builds the event from the
//! [`RouteMatch`].
//!
//! Semantics, as API Gateway's HTTP APIs:
//! - **Stage.** A first path segment naming a stage of the API selects that stage (and is
//!   removed from the path); otherwise the `$default` stage, if there is one, gets the whole
//!   path; otherwise `{"message":"Not Found"}`. Every stage serves the API's current routes.
//! - **Route.** A route without a greedy variable beats one with `{proxy+}`; among those,
//!   segment by segment from the left, a literal beats `{param}` beats `{proxy+}`; then a
//!   route naming the method beats `ANY`; the `$default` route comes last. A `HEAD` request
//!   matches `HEAD`, `ANY` and `$default` routes only. Path parameter values are
//!   percent-decoded.
//!
//! Speed: route tables are compiled once per API revision and kept in memory; each request
//! costs one primary-key lookup of the API's revision (see `sous_store::apis`), so a change
//! through the control plane takes effect on the next request, even from another process
//! sharing the data dir.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, OnceLock, RwLock};

use sous_store::apis::HttpApiSnapshot;
use sous_store::{Store, StoreError};
use sous_types::http_api::{self, RouteKey, Segment, DEFAULT};

/// The payload format of an integration (`PayloadFormatVersion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    /// "1.0": the REST API shape (httpMethod, resource, multiValueHeaders, ...).
    V1,
    /// "2.0": the HTTP API shape (version, routeKey, rawPath, ...).
    V2,
}

impl PayloadFormat {
    /// The format a `PayloadFormatVersion` string names.
    pub fn parse(version: &str) -> Option<PayloadFormat> {
        match version {
            "1.0" => Some(PayloadFormat::V1),
            "2.0" => Some(PayloadFormat::V2),
            _ => None,
        }
    }
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
    /// The API exists but no route matches method and path (or the matching route has no
    /// usable integration): 404 `Not Found`.
    NoRoute,
}

/// Route a request for API `api_id`: `path` is the request path as received, after the
/// gateway's own addressing prefix (if any) is removed, still including a stage name when
/// the API has no `$default` stage (e.g. `/prod/items/7`).
pub fn resolve(
    store: &Store,
    api_id: &str,
    method: &str,
    path: &str,
) -> Result<Resolution, StoreError> {
    let Some(table) = table_for(store, api_id)? else {
        return Ok(Resolution::NoApi);
    };
    Ok(table.resolve(method, path))
}

/// Compiled tables by API id. An entry is used only while its revision is the stored one;
/// revisions are random per write, so two stores in one process cannot confuse entries.
fn cache() -> &'static RwLock<HashMap<String, Arc<Table>>> {
    static CACHE: OnceLock<RwLock<HashMap<String, Arc<Table>>>> = OnceLock::new();
    CACHE.get_or_init(|| RwLock::new(HashMap::new()))
}

fn table_for(store: &Store, api_id: &str) -> Result<Option<Arc<Table>>, StoreError> {
    let Some(revision) = store.http_api_revision(api_id)? else {
        let mut c = cache().write().unwrap_or_else(|p| p.into_inner());
        c.remove(api_id);
        return Ok(None);
    };
    {
        let c = cache().read().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = c.get(api_id).filter(|t| t.revision == revision) {
            return Ok(Some(t.clone()));
        }
    }
    let Some(snapshot) = store.http_api_snapshot(api_id)? else {
        return Ok(None);
    };
    let table = Arc::new(Table::compile(&snapshot));
    tracing::debug!(
        api_id,
        revision = table.revision,
        "compiled HTTP API route table"
    );
    let mut c = cache().write().unwrap_or_else(|p| p.into_inner());
    c.insert(api_id.to_string(), table.clone());
    Ok(Some(table))
}

/// Where a route sends its requests.
#[derive(Debug, Clone)]
struct Target {
    function: String,
    payload_format: PayloadFormat,
    timeout_ms: u64,
}

#[derive(Debug, Clone)]
struct CompiledRoute {
    /// `None` = ANY.
    method: Option<String>,
    segments: Vec<Segment>,
    route_key: String,
    resource: String,
    /// `None` when the route has no target or its integration is gone or unusable.
    target: Option<Target>,
}

/// One API's routing, compiled from a store snapshot.
#[derive(Debug)]
struct Table {
    api_id: String,
    revision: i64,
    named_stages: HashSet<String>,
    default_stage: bool,
    routes: Vec<CompiledRoute>,
    default_route: Option<CompiledRoute>,
}

impl Table {
    fn compile(snap: &HttpApiSnapshot) -> Table {
        let integrations: HashMap<&str, Target> = snap
            .integrations
            .iter()
            .filter_map(|i| {
                let function = http_api::lambda_function_of(&i.integration_uri)?;
                let payload_format = PayloadFormat::parse(&i.payload_format_version)?;
                Some((
                    i.integration_id.as_str(),
                    Target {
                        function: function.to_string(),
                        payload_format,
                        timeout_ms: i.timeout_in_millis,
                    },
                ))
            })
            .collect();
        let mut routes = Vec::new();
        let mut default_route = None;
        for r in &snap.routes {
            let target = r
                .target
                .as_deref()
                .and_then(http_api::integration_of_target)
                .and_then(|id| integrations.get(id).cloned());
            match RouteKey::parse(&r.route_key) {
                Ok(RouteKey::Default) => {
                    default_route = Some(CompiledRoute {
                        method: None,
                        segments: Vec::new(),
                        route_key: r.route_key.clone(),
                        resource: "/{proxy+}".into(),
                        target,
                    })
                }
                Ok(RouteKey::Path {
                    method,
                    path,
                    segments,
                }) => routes.push(CompiledRoute {
                    method,
                    segments,
                    route_key: r.route_key.clone(),
                    resource: path,
                    target,
                }),
                Err(e) => tracing::warn!(
                    api_id = snap.api.api_id,
                    route_key = r.route_key,
                    error = %e,
                    "stored route key does not parse; route ignored"
                ),
            }
        }
        Table {
            api_id: snap.api.api_id.clone(),
            revision: snap.revision,
            named_stages: snap
                .stages
                .iter()
                .filter(|s| s.stage_name != DEFAULT)
                .map(|s| s.stage_name.clone())
                .collect(),
            default_stage: snap.stages.iter().any(|s| s.stage_name == DEFAULT),
            routes,
            default_route,
        }
    }

    fn resolve(&self, method: &str, path: &str) -> Resolution {
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        let first = path[1..].split('/').next().unwrap_or("");
        let (stage, path) = if !first.is_empty() && self.named_stages.contains(first) {
            let rest = &path[1 + first.len()..];
            let rest = if rest.is_empty() { "/" } else { rest };
            (first.to_string(), rest.to_string())
        } else if self.default_stage {
            (DEFAULT.to_string(), path)
        } else {
            return Resolution::NoApi;
        };
        let Some((route, path_parameters)) = self.select(method, &path) else {
            return Resolution::NoRoute;
        };
        let Some(target) = &route.target else {
            return Resolution::NoRoute;
        };
        Resolution::Matched(RouteMatch {
            api_id: self.api_id.clone(),
            stage,
            route_key: route.route_key.clone(),
            resource: route.resource.clone(),
            path,
            path_parameters,
            function: target.function.clone(),
            payload_format: target.payload_format,
            timeout_ms: target.timeout_ms,
        })
    }

    /// The most specific route for `method` and `path` (stage already removed).
    fn select(
        &self,
        method: &str,
        path: &str,
    ) -> Option<(&CompiledRoute, BTreeMap<String, String>)> {
        let parts: Vec<&str> = if path == "/" {
            Vec::new()
        } else {
            path.trim_start_matches('/').split('/').collect()
        };
        let mut best: Option<(Rank, &CompiledRoute, BTreeMap<String, String>)> = None;
        for route in &self.routes {
            let method_any = match &route.method {
                None => true,
                Some(m) if m == method => false,
                Some(_) => continue,
            };
            let Some((segments, params)) = match_segments(&route.segments, &parts) else {
                continue;
            };
            let greedy = matches!(route.segments.last(), Some(Segment::Greedy(_)));
            let rank = Rank {
                greedy,
                segments,
                method_any,
            };
            if best.as_ref().is_none_or(|(b, _, _)| rank < *b) {
                best = Some((rank, route, params));
            }
        }
        match best {
            Some((_, route, params)) => Some((route, params)),
            None => self.default_route.as_ref().map(|r| (r, BTreeMap::new())),
        }
    }
}

/// How specific a match is; smaller is more specific.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    greedy: bool,
    /// Per segment: 0 literal, 1 `{param}`, 2 `{proxy+}`.
    segments: Vec<u8>,
    method_any: bool,
}

/// Match request path segments against a template; the per-segment ranks and the
/// parameters on success.
fn match_segments(
    template: &[Segment],
    parts: &[&str],
) -> Option<(Vec<u8>, BTreeMap<String, String>)> {
    let mut ranks = Vec::with_capacity(template.len());
    let mut params = BTreeMap::new();
    for (i, seg) in template.iter().enumerate() {
        match seg {
            Segment::Literal(lit) => {
                let part = parts.get(i)?;
                if *part != lit && percent_decode(part) != *lit {
                    return None;
                }
                ranks.push(0);
            }
            Segment::Param(name) => {
                let part = parts.get(i)?;
                if part.is_empty() {
                    return None;
                }
                params.insert(name.clone(), percent_decode(part));
                ranks.push(1);
            }
            Segment::Greedy(name) => {
                let rest = parts.get(i..).filter(|r| !r.is_empty())?;
                let joined = rest.join("/");
                if joined.is_empty() {
                    return None;
                }
                params.insert(name.clone(), percent_decode(&joined));
                ranks.push(2);
                return Some((ranks, params));
            }
        }
    }
    (parts.len() == template.len()).then_some((ranks, params))
}

/// Decode `%XX` escapes (invalid UTF-8 is replaced, malformed escapes are kept).
fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sous_types::http_api::{Api, Integration, Route, RouteSettings, Stage};

    const FN: &str = "arn:aws:lambda:us-east-1:000000000000:function:f";

    fn snapshot(routes: &[&str], stages: &[&str]) -> HttpApiSnapshot {
        HttpApiSnapshot {
            revision: 1,
            api: Api {
                api_endpoint: String::new(),
                api_id: "abcdefghij".into(),
                api_key_selection_expression: String::new(),
                created_date: String::new(),
                description: None,
                disable_execute_api_endpoint: false,
                name: "t".into(),
                protocol_type: "HTTP".into(),
                route_selection_expression: String::new(),
                tags: Default::default(),
                version: None,
            },
            routes: routes
                .iter()
                .enumerate()
                .map(|(i, k)| Route {
                    api_gateway_managed: false,
                    api_key_required: false,
                    authorization_type: "NONE".into(),
                    route_id: format!("r{i}"),
                    route_key: (*k).into(),
                    target: Some("integrations/i1".into()),
                })
                .collect(),
            integrations: vec![Integration {
                api_gateway_managed: false,
                connection_type: "INTERNET".into(),
                description: None,
                integration_id: "i1".into(),
                integration_method: "POST".into(),
                integration_type: "AWS_PROXY".into(),
                integration_uri: FN.into(),
                payload_format_version: "2.0".into(),
                timeout_in_millis: 30000,
            }],
            stages: stages
                .iter()
                .map(|s| Stage {
                    api_gateway_managed: false,
                    auto_deploy: true,
                    created_date: String::new(),
                    default_route_settings: RouteSettings::default(),
                    description: None,
                    last_updated_date: String::new(),
                    route_settings: Default::default(),
                    stage_name: (*s).into(),
                    stage_variables: Default::default(),
                    tags: Default::default(),
                })
                .collect(),
        }
    }

    fn key(t: &Table, method: &str, path: &str) -> Option<String> {
        match t.resolve(method, path) {
            Resolution::Matched(m) => Some(m.route_key),
            _ => None,
        }
    }

    /// The example of API Gateway's "Routing API requests" section, and more.
    #[test]
    fn most_specific_route_wins() {
        let t = Table::compile(&snapshot(
            &[
                "GET /pets/dog/1",
                "GET /pets/dog/{id}",
                "GET /pets/{proxy+}",
                "ANY /{proxy+}",
                "ANY /pets/dog/{id}",
                "$default",
            ],
            &["$default"],
        ));
        assert_eq!(key(&t, "GET", "/pets/dog/1").unwrap(), "GET /pets/dog/1");
        assert_eq!(key(&t, "GET", "/pets/dog/2").unwrap(), "GET /pets/dog/{id}");
        assert_eq!(key(&t, "GET", "/pets/cat/1").unwrap(), "GET /pets/{proxy+}");
        assert_eq!(
            key(&t, "POST", "/pets/dog/1").unwrap(),
            "ANY /pets/dog/{id}"
        );
        assert_eq!(key(&t, "POST", "/pets/cat/1").unwrap(), "ANY /{proxy+}");
        assert_eq!(key(&t, "GET", "/").unwrap(), "$default");
        // HEAD is not GET.
        assert_eq!(
            key(&t, "HEAD", "/pets/dog/1").unwrap(),
            "ANY /pets/dog/{id}"
        );
    }

    #[test]
    fn literal_beats_param_and_no_greedy_beats_greedy() {
        let t = Table::compile(&snapshot(
            &[
                "GET /items/{id}",
                "GET /items/special",
                "GET /{a}/{b}",
                "GET /items/{proxy+}",
            ],
            &["$default"],
        ));
        assert_eq!(
            key(&t, "GET", "/items/special").unwrap(),
            "GET /items/special"
        );
        assert_eq!(key(&t, "GET", "/items/7").unwrap(), "GET /items/{id}");
        assert_eq!(key(&t, "GET", "/other/7").unwrap(), "GET /{a}/{b}");
        assert_eq!(key(&t, "GET", "/items/7/x").unwrap(), "GET /items/{proxy+}");
        // No $default route: nothing matches a bare /items.
        assert_eq!(t.resolve("GET", "/items"), Resolution::NoRoute);
        assert_eq!(t.resolve("POST", "/items/7"), Resolution::NoRoute);
    }

    #[test]
    fn parameters_are_captured_and_decoded() {
        let t = Table::compile(&snapshot(
            &["GET /items/{id}", "ANY /files/{proxy+}"],
            &["$default"],
        ));
        let Resolution::Matched(m) = t.resolve("GET", "/items/a%20b?x=1") else {
            panic!("no match")
        };
        assert_eq!(m.path_parameters["id"], "a b");
        assert_eq!(m.resource, "/items/{id}");
        assert_eq!(m.function, FN);
        assert_eq!(m.payload_format, PayloadFormat::V2);
        assert_eq!(m.stage, "$default");
        let Resolution::Matched(m) = t.resolve("DELETE", "/files/a/b/c.txt") else {
            panic!("no match")
        };
        assert_eq!(m.path_parameters["proxy"], "a/b/c.txt");
        assert_eq!(t.resolve("GET", "/files"), Resolution::NoRoute);
        assert_eq!(t.resolve("GET", "/items/"), Resolution::NoRoute);
    }

    #[test]
    fn stages_select_by_first_segment() {
        let named = Table::compile(&snapshot(&["GET /items/{id}", "GET /"], &["prod"]));
        let Resolution::Matched(m) = named.resolve("GET", "/prod/items/7") else {
            panic!("no match")
        };
        assert_eq!((m.stage.as_str(), m.path.as_str()), ("prod", "/items/7"));
        assert_eq!(key(&named, "GET", "/prod").unwrap(), "GET /");
        // Without a $default stage, a path that names no stage finds no API.
        assert_eq!(named.resolve("GET", "/items/7"), Resolution::NoApi);
        assert_eq!(
            named.resolve("GET", "/production/items/7"),
            Resolution::NoApi
        );

        let both = Table::compile(&snapshot(&["GET /items/{id}"], &["$default", "prod"]));
        let Resolution::Matched(m) = both.resolve("GET", "/items/7") else {
            panic!("no match")
        };
        assert_eq!(m.stage, "$default");
        let Resolution::Matched(m) = both.resolve("GET", "/prod/items/7") else {
            panic!("no match")
        };
        assert_eq!(m.stage, "prod");
        assert_eq!(both.resolve("GET", "/dev/items/7"), Resolution::NoRoute);

        let none = Table::compile(&snapshot(&["GET /items/{id}"], &[]));
        assert_eq!(none.resolve("GET", "/items/7"), Resolution::NoApi);
    }

    #[test]
    fn routes_without_a_usable_integration_do_not_match() {
        let mut snap = snapshot(&["GET /a", "GET /b"], &["$default"]);
        snap.routes[1].target = None;
        snap.integrations[0].payload_format_version = "1.0".into();
        let t = Table::compile(&snap);
        let Resolution::Matched(m) = t.resolve("GET", "/a") else {
            panic!("no match")
        };
        assert_eq!(m.payload_format, PayloadFormat::V1);
        assert_eq!(t.resolve("GET", "/b"), Resolution::NoRoute);
    }

    #[test]
    fn resolve_follows_store_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let snap = snapshot(&["GET /a"], &["$default"]);
        let id = "cachetest1";
        let mut api = snap.api.clone();
        api.api_id = id.into();
        store
            .create_http_api(&api, &snap.integrations, &snap.routes, &snap.stages)
            .unwrap();
        assert!(matches!(
            resolve(&store, id, "GET", "/a").unwrap(),
            Resolution::Matched(_)
        ));
        assert_eq!(
            resolve(&store, id, "GET", "/b").unwrap(),
            Resolution::NoRoute
        );
        let mut r = snap.routes[0].clone();
        r.route_id = "r9".into();
        r.route_key = "GET /b".into();
        store.insert_http_api_route(id, &r).unwrap();
        assert!(matches!(
            resolve(&store, id, "GET", "/b").unwrap(),
            Resolution::Matched(_)
        ));
        store.delete_http_api(id).unwrap();
        assert_eq!(resolve(&store, id, "GET", "/a").unwrap(), Resolution::NoApi);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb"), "a/b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%C3%A9"), "é");
    }
}
