//! Parse an API Gateway v2 request (method, path, JSON body) into one [`Command`]. Nothing
//! here decides anything about the resources; unknown members of a body are ignored, as a
//! newer client may send them.

use std::collections::BTreeMap;

use http::Method;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::ApigwError;
use crate::protocol::body;

/// One API Gateway v2 operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    CreateApi(CreateApi),
    GetApi {
        api_id: String,
    },
    GetApis,
    UpdateApi {
        api_id: String,
        input: UpdateApi,
    },
    DeleteApi {
        api_id: String,
    },
    CreateRoute {
        api_id: String,
        input: CreateRoute,
    },
    GetRoutes {
        api_id: String,
    },
    GetRoute {
        api_id: String,
        route_id: String,
    },
    DeleteRoute {
        api_id: String,
        route_id: String,
    },
    CreateIntegration {
        api_id: String,
        input: CreateIntegration,
    },
    GetIntegrations {
        api_id: String,
    },
    GetIntegration {
        api_id: String,
        integration_id: String,
    },
    DeleteIntegration {
        api_id: String,
        integration_id: String,
    },
    CreateStage {
        api_id: String,
        input: CreateStage,
    },
    GetStages {
        api_id: String,
    },
    GetStage {
        api_id: String,
        stage_name: String,
    },
    DeleteStage {
        api_id: String,
        stage_name: String,
    },
}

impl Command {
    /// The operation's name, as AWS spells it (for logs).
    pub fn operation(&self) -> &'static str {
        match self {
            Command::CreateApi(_) => "CreateApi",
            Command::GetApi { .. } => "GetApi",
            Command::GetApis => "GetApis",
            Command::UpdateApi { .. } => "UpdateApi",
            Command::DeleteApi { .. } => "DeleteApi",
            Command::CreateRoute { .. } => "CreateRoute",
            Command::GetRoutes { .. } => "GetRoutes",
            Command::GetRoute { .. } => "GetRoute",
            Command::DeleteRoute { .. } => "DeleteRoute",
            Command::CreateIntegration { .. } => "CreateIntegration",
            Command::GetIntegrations { .. } => "GetIntegrations",
            Command::GetIntegration { .. } => "GetIntegration",
            Command::DeleteIntegration { .. } => "DeleteIntegration",
            Command::CreateStage { .. } => "CreateStage",
            Command::GetStages { .. } => "GetStages",
            Command::GetStage { .. } => "GetStage",
            Command::DeleteStage { .. } => "DeleteStage",
        }
    }

    /// The API the command addresses ("" for CreateApi and GetApis).
    pub fn api_id(&self) -> &str {
        match self {
            Command::CreateApi(_) | Command::GetApis => "",
            Command::GetApi { api_id }
            | Command::UpdateApi { api_id, .. }
            | Command::DeleteApi { api_id }
            | Command::CreateRoute { api_id, .. }
            | Command::GetRoutes { api_id }
            | Command::GetRoute { api_id, .. }
            | Command::DeleteRoute { api_id, .. }
            | Command::CreateIntegration { api_id, .. }
            | Command::GetIntegrations { api_id }
            | Command::GetIntegration { api_id, .. }
            | Command::DeleteIntegration { api_id, .. }
            | Command::CreateStage { api_id, .. }
            | Command::GetStages { api_id }
            | Command::GetStage { api_id, .. }
            | Command::DeleteStage { api_id, .. } => api_id,
        }
    }
}

/// CreateApi's body.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateApi {
    pub name: Option<String>,
    pub protocol_type: Option<String>,
    pub description: Option<String>,
    pub version: Option<String>,
    pub target: Option<String>,
    pub route_key: Option<String>,
    pub disable_execute_api_endpoint: Option<bool>,
    pub tags: Option<BTreeMap<String, String>>,
    pub cors_configuration: Option<serde_json::Value>,
    pub credentials_arn: Option<String>,
}

/// UpdateApi's body (the members Sous can change).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateApi {
    pub name: Option<String>,
    pub description: Option<String>,
    pub version: Option<String>,
    pub disable_execute_api_endpoint: Option<bool>,
    pub target: Option<String>,
    pub route_key: Option<String>,
}

/// CreateRoute's body.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRoute {
    pub route_key: Option<String>,
    pub target: Option<String>,
    pub authorization_type: Option<String>,
    pub api_key_required: Option<bool>,
}

/// CreateIntegration's body.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateIntegration {
    pub integration_type: Option<String>,
    pub integration_uri: Option<String>,
    pub integration_method: Option<String>,
    pub payload_format_version: Option<String>,
    pub timeout_in_millis: Option<i64>,
    pub connection_type: Option<String>,
    pub description: Option<String>,
}

/// CreateStage's body.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateStage {
    pub stage_name: Option<String>,
    pub auto_deploy: Option<bool>,
    pub description: Option<String>,
    pub stage_variables: Option<BTreeMap<String, String>>,
    pub tags: Option<BTreeMap<String, String>>,
}

/// Parse a request under `/v2/`.
pub fn parse(method: &Method, path: &str, body: &[u8]) -> Result<Command, ApigwError> {
    let segs: Vec<String> = path
        .trim_start_matches("/v2/")
        .trim_end_matches('/')
        .split('/')
        .map(decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = method.as_str();
    let id = |s: &str| s.to_string();
    let cmd = match (m, segs.as_slice()) {
        ("POST", ["apis"]) => Command::CreateApi(body_of(body)?),
        ("GET", ["apis"]) => Command::GetApis,
        ("GET", ["apis", a]) => Command::GetApi { api_id: id(a) },
        ("PATCH", ["apis", a]) => Command::UpdateApi {
            api_id: id(a),
            input: body_of(body)?,
        },
        ("DELETE", ["apis", a]) => Command::DeleteApi { api_id: id(a) },
        ("POST", ["apis", a, "routes"]) => Command::CreateRoute {
            api_id: id(a),
            input: body_of(body)?,
        },
        ("GET", ["apis", a, "routes"]) => Command::GetRoutes { api_id: id(a) },
        ("GET", ["apis", a, "routes", r]) => Command::GetRoute {
            api_id: id(a),
            route_id: id(r),
        },
        ("DELETE", ["apis", a, "routes", r]) => Command::DeleteRoute {
            api_id: id(a),
            route_id: id(r),
        },
        ("POST", ["apis", a, "integrations"]) => Command::CreateIntegration {
            api_id: id(a),
            input: body_of(body)?,
        },
        ("GET", ["apis", a, "integrations"]) => Command::GetIntegrations { api_id: id(a) },
        ("GET", ["apis", a, "integrations", i]) => Command::GetIntegration {
            api_id: id(a),
            integration_id: id(i),
        },
        ("DELETE", ["apis", a, "integrations", i]) => Command::DeleteIntegration {
            api_id: id(a),
            integration_id: id(i),
        },
        ("POST", ["apis", a, "stages"]) => Command::CreateStage {
            api_id: id(a),
            input: body_of(body)?,
        },
        ("GET", ["apis", a, "stages"]) => Command::GetStages { api_id: id(a) },
        ("GET", ["apis", a, "stages", s]) => Command::GetStage {
            api_id: id(a),
            stage_name: id(s),
        },
        ("DELETE", ["apis", a, "stages", s]) => Command::DeleteStage {
            api_id: id(a),
            stage_name: id(s),
        },
        _ => {
            return Err(ApigwError::NotFound(format!(
                "Sous does not implement this API Gateway operation: {m} {path}"
            )))
        }
    };
    Ok(cmd)
}

fn body_of<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApigwError> {
    body::json(body).map_err(|e| ApigwError::BadRequest(format!("Invalid request body: {e}")))
}

/// Percent-decode one path segment (`$default` arrives as `%24default`).
fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse() {
        let c = parse(&Method::GET, "/v2/apis/abc/stages/%24default", b"").unwrap();
        assert_eq!(
            c,
            Command::GetStage {
                api_id: "abc".into(),
                stage_name: "$default".into()
            }
        );
        let c = parse(
            &Method::POST,
            "/v2/apis",
            br#"{"name":"x","protocolType":"HTTP","target":"t","extra":1}"#,
        )
        .unwrap();
        let Command::CreateApi(c) = c else {
            panic!("CreateApi expected")
        };
        assert_eq!(c.name.as_deref(), Some("x"));
        assert_eq!(c.target.as_deref(), Some("t"));
        assert!(matches!(
            parse(&Method::POST, "/v2/apis", b"{"),
            Err(ApigwError::BadRequest(_))
        ));
        assert!(matches!(
            parse(&Method::GET, "/v2/domainnames", b""),
            Err(ApigwError::NotFound(_))
        ));
    }
}
