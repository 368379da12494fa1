//! HTTP APIs (API Gateway v2's `HTTP` protocol): the resources the control plane manages
//! (APIs, routes, integrations, stages) in their wire shapes, and the pure rules about them —
//! route-key parsing, Lambda integration URIs, identifier formats. No I/O.
//!
//! The control plane (`sous-api`) validates with these rules, the store keeps the shapes as
//! JSON, and the gateway's routing (`sous-events`) compiles route keys parsed here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The route key of the catch-all route, and the name of the stage served at the API's root.
pub const DEFAULT: &str = "$default";

/// API Gateway's default (and maximum) integration timeout for HTTP APIs, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;

/// The smallest integration timeout API Gateway accepts, in milliseconds.
pub const MIN_TIMEOUT_MS: u64 = 50;

/// `RouteSelectionExpression` of every HTTP API.
pub const ROUTE_SELECTION_EXPRESSION: &str = "$request.method $request.path";

/// `ApiKeySelectionExpression` API Gateway reports by default.
pub const API_KEY_SELECTION_EXPRESSION: &str = "$request.header.x-api-key";

/// The HTTP methods a route key may name (besides `ANY`).
pub const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// An HTTP API (`Api` shape; lowerCamelCase on the wire).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Api {
    pub api_endpoint: String,
    pub api_id: String,
    pub api_key_selection_expression: String,
    /// `yyyy-MM-ddTHH:mm:ssZ` (`__timestampIso8601`).
    pub created_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub disable_execute_api_endpoint: bool,
    pub name: String,
    pub protocol_type: String,
    pub route_selection_expression: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// A route (`Route` shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub api_gateway_managed: bool,
    pub api_key_required: bool,
    pub authorization_type: String,
    pub route_id: String,
    pub route_key: String,
    /// `integrations/{integrationId}`, or absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// An integration (`Integration` shape); Sous serves `AWS_PROXY` to a Lambda function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Integration {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub api_gateway_managed: bool,
    pub connection_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub integration_id: String,
    pub integration_method: String,
    pub integration_type: String,
    /// As given: a function ARN, or the `arn:aws:apigateway:...:lambda:path/...` form.
    pub integration_uri: String,
    pub payload_format_version: String,
    pub timeout_in_millis: u64,
}

/// A stage (`Stage` shape). Every stage serves the API's current routes (see COMPATIBILITY).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub api_gateway_managed: bool,
    pub auto_deploy: bool,
    pub created_date: String,
    pub default_route_settings: RouteSettings,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub last_updated_date: String,
    #[serde(default)]
    pub route_settings: BTreeMap<String, RouteSettings>,
    pub stage_name: String,
    #[serde(default)]
    pub stage_variables: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// `RouteSettings` as API Gateway reports a stage's defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteSettings {
    #[serde(default)]
    pub detailed_metrics_enabled: bool,
}

/// One segment of a route path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Matched exactly.
    Literal(String),
    /// `{name}`: any one non-empty segment.
    Param(String),
    /// `{name+}`: one or more segments; only last.
    Greedy(String),
}

/// A parsed route key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteKey {
    /// `$default`: the catch-all route.
    Default,
    /// `METHOD /path`.
    Path {
        /// Upper-case method, or `None` for `ANY`.
        method: Option<String>,
        /// The path template as written, e.g. `/items/{id}`.
        path: String,
        /// Its segments (`/` has none).
        segments: Vec<Segment>,
    },
}

/// Why a route key was refused (BadRequestException with this message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteKeyError {
    #[error("Route key is required")]
    Empty,
    #[error("Invalid route key '{0}': a route key of an HTTP API is $default or an HTTP method (or ANY), a space and a path starting with /")]
    Shape(String),
    #[error("Invalid route key '{0}': unsupported HTTP method '{1}'")]
    Method(String, String),
    #[error("One or more path parts appear to be invalid")]
    PathPart,
}

impl RouteKey {
    /// Parse and validate a route key as CreateRoute receives it.
    pub fn parse(key: &str) -> Result<RouteKey, RouteKeyError> {
        if key.is_empty() {
            return Err(RouteKeyError::Empty);
        }
        if key == DEFAULT {
            return Ok(RouteKey::Default);
        }
        let Some((method, path)) = key.split_once(' ') else {
            return Err(RouteKeyError::Shape(key.to_string()));
        };
        if !path.starts_with('/') || path.contains(' ') {
            return Err(RouteKeyError::Shape(key.to_string()));
        }
        let method = match method {
            "ANY" => None,
            m if METHODS.contains(&m) => Some(m.to_string()),
            m => return Err(RouteKeyError::Method(key.to_string(), m.to_string())),
        };
        let segments = parse_path(path)?;
        Ok(RouteKey::Path {
            method,
            path: path.to_string(),
            segments,
        })
    }
}

/// Split a route path template into segments, checking each.
fn parse_path(path: &str) -> Result<Vec<Segment>, RouteKeyError> {
    if path == "/" {
        return Ok(Vec::new());
    }
    let parts: Vec<&str> = path[1..].split('/').collect();
    let mut out = Vec::with_capacity(parts.len());
    let mut names = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let seg = if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            let (name, greedy) = match inner.strip_suffix('+') {
                Some(n) => (n, true),
                None => (inner, false),
            };
            if !valid_param_name(name) || names.contains(&name) {
                return Err(RouteKeyError::PathPart);
            }
            names.push(name);
            if greedy {
                if i + 1 != parts.len() {
                    return Err(RouteKeyError::PathPart);
                }
                Segment::Greedy(name.to_string())
            } else {
                Segment::Param(name.to_string())
            }
        } else {
            if part.is_empty() || !part.chars().all(literal_char) {
                return Err(RouteKeyError::PathPart);
            }
            Segment::Literal((*part).to_string())
        };
        out.push(seg);
    }
    Ok(out)
}

fn valid_param_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

fn literal_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@%".contains(c)
}

/// The Lambda function an `AWS_PROXY` integration URI names: a function ARN (possibly
/// qualified) given directly, or wrapped as
/// `arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations`.
pub fn lambda_function_of(uri: &str) -> Option<&str> {
    let arn = if uri.starts_with("arn:aws:apigateway:") {
        let (_, rest) = uri.split_once(":lambda:path/2015-03-31/functions/")?;
        rest.strip_suffix("/invocations")?
    } else {
        uri
    };
    let parts: Vec<&str> = arn.split(':').collect();
    let ok = matches!(parts.len(), 7 | 8)
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "lambda"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5] == "function"
        && !parts[6].is_empty()
        && parts[6]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && parts.get(7).is_none_or(|q| !q.is_empty());
    ok.then_some(arn)
}

/// A stage name API Gateway accepts: 1–128 of letters, digits, `-`, `_`, or `$default`.
pub fn valid_stage_name(name: &str) -> bool {
    name == DEFAULT
        || (!name.is_empty()
            && name.len() <= 128
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
}

/// The integration id a route `target` names (`integrations/{id}`).
pub fn integration_of_target(target: &str) -> Option<&str> {
    target
        .strip_prefix("integrations/")
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// A new API id: 10 lower-case letters and digits, as API Gateway's.
pub fn new_api_id() -> String {
    random_id(10)
}

/// A new route or integration id: 7 lower-case letters and digits, as API Gateway's.
pub fn new_resource_id() -> String {
    random_id(7)
}

fn random_id(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in uuid::Uuid::new_v4().as_bytes() {
            // 252 = 7 * 36: reject the tail so every character is equally likely.
            if *b < 252 && out.len() < len {
                out.push(ALPHABET[(*b % 36) as usize] as char);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_keys_parse() {
        assert_eq!(RouteKey::parse("$default"), Ok(RouteKey::Default));
        let RouteKey::Path {
            method, segments, ..
        } = RouteKey::parse("GET /items/{id}").unwrap()
        else {
            panic!("path key expected")
        };
        assert_eq!(method.as_deref(), Some("GET"));
        assert_eq!(
            segments,
            vec![
                Segment::Literal("items".into()),
                Segment::Param("id".into())
            ]
        );
        let RouteKey::Path {
            method, segments, ..
        } = RouteKey::parse("ANY /{proxy+}").unwrap()
        else {
            panic!("path key expected")
        };
        assert_eq!(method, None);
        assert_eq!(segments, vec![Segment::Greedy("proxy".into())]);
        assert!(matches!(
            RouteKey::parse("GET /"),
            Ok(RouteKey::Path { segments, .. }) if segments.is_empty()
        ));
    }

    #[test]
    fn bad_route_keys_are_refused() {
        assert_eq!(RouteKey::parse(""), Err(RouteKeyError::Empty));
        assert!(matches!(
            RouteKey::parse("GET"),
            Err(RouteKeyError::Shape(_))
        ));
        assert!(matches!(
            RouteKey::parse("GET items"),
            Err(RouteKeyError::Shape(_))
        ));
        assert!(matches!(
            RouteKey::parse("FETCH /items"),
            Err(RouteKeyError::Method(..))
        ));
        assert!(matches!(
            RouteKey::parse("get /items"),
            Err(RouteKeyError::Method(..))
        ));
        for bad in [
            "GET /{proxy+}/x",
            "GET /a//b",
            "GET /a/",
            "GET /{}",
            "GET /{id}/{id}",
            "GET /a{b",
        ] {
            assert_eq!(RouteKey::parse(bad), Err(RouteKeyError::PathPart), "{bad}");
        }
    }

    #[test]
    fn lambda_uris() {
        let arn = "arn:aws:lambda:us-east-1:000000000000:function:items";
        assert_eq!(lambda_function_of(arn), Some(arn));
        let q = "arn:aws:lambda:us-east-1:000000000000:function:items:live";
        assert_eq!(lambda_function_of(q), Some(q));
        let wrapped = format!(
            "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{arn}/invocations"
        );
        assert_eq!(lambda_function_of(&wrapped), Some(arn));
        assert_eq!(lambda_function_of("items"), None);
        assert_eq!(lambda_function_of("https://example.com"), None);
        assert_eq!(
            lambda_function_of("arn:aws:lambda:us-east-1:0:function:items"),
            None
        );
    }

    #[test]
    fn ids_have_api_gateway_shapes() {
        let id = new_api_id();
        assert_eq!(id.len(), 10);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert_eq!(new_resource_id().len(), 7);
        assert_ne!(new_api_id(), new_api_id());
    }
}
