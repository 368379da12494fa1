//! Payload format 1.0: the REST API event shape (for HTTP API integrations with
//! `PayloadFormatVersion` 1.0) and the mapping of a function's answer to an HTTP response.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use super::payload_v2::{body_of, scalar, status_code, Malformed, MappedResponse};
use super::request::HttpRequest;
use crate::routing::RouteMatch;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    version: &'static str,
    resource: &'a str,
    path: &'a str,
    http_method: &'a str,
    headers: BTreeMap<&'a str, String>,
    multi_value_headers: BTreeMap<&'a str, Vec<String>>,
    query_string_parameters: Option<BTreeMap<String, String>>,
    multi_value_query_string_parameters: Option<BTreeMap<String, Vec<String>>>,
    request_context: Context<'a>,
    path_parameters: Option<&'a BTreeMap<String, String>>,
    stage_variables: Option<()>,
    body: Option<&'a str>,
    is_base64_encoded: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Context<'a> {
    account_id: &'a str,
    api_id: &'a str,
    domain_name: &'a str,
    domain_prefix: &'a str,
    extended_request_id: &'a str,
    http_method: &'a str,
    identity: Identity<'a>,
    path: &'a str,
    protocol: &'a str,
    request_id: &'a str,
    request_time: String,
    request_time_epoch: i64,
    resource_id: &'a str,
    resource_path: &'a str,
    stage: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Identity<'a> {
    access_key: Option<()>,
    account_id: Option<()>,
    caller: Option<()>,
    cognito_authentication_provider: Option<()>,
    cognito_authentication_type: Option<()>,
    cognito_identity_id: Option<()>,
    cognito_identity_pool_id: Option<()>,
    principal_org_id: Option<()>,
    source_ip: &'a str,
    user: Option<()>,
    user_agent: &'a str,
    user_arn: Option<()>,
}

/// Build the 1.0 event: `headers` keeps the last value of a repeated header and
/// `multiValueHeaders` all of them (likewise for the query string); absent maps are `null`;
/// `path` is the path without the stage, `requestContext.path` the path as requested.
pub fn event(
    req: &HttpRequest<'_>,
    route: &RouteMatch,
    account_id: &str,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut headers: BTreeMap<&str, String> = BTreeMap::new();
    let mut multi: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, value) in req.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers.insert(name.as_str(), value.clone());
        multi.entry(name.as_str()).or_default().push(value);
    }
    for (name, value) in req.forwarded() {
        headers.insert(name, value.clone());
        multi.insert(name, vec![value]);
    }
    let query = req.query_multi();
    let (single_q, multi_q) = if query.is_empty() {
        (None, None)
    } else {
        let single = query
            .iter()
            .filter_map(|(k, v)| v.last().map(|last| (k.clone(), last.clone())))
            .collect();
        (Some(single), Some(query))
    };
    let body = req.body();
    let path = req.path();
    let event = Event {
        version: "1.0",
        resource: &route.resource,
        // As REST APIs: `path` without the stage, `requestContext.path` as requested.
        path: &route.path,
        http_method: req.method,
        headers,
        multi_value_headers: multi,
        query_string_parameters: single_q,
        multi_value_query_string_parameters: multi_q,
        request_context: Context {
            account_id,
            api_id: &route.api_id,
            domain_name: &req.domain_name,
            domain_prefix: &req.domain_prefix,
            extended_request_id: &req.request_id,
            http_method: req.method,
            identity: Identity {
                access_key: None,
                account_id: None,
                caller: None,
                cognito_authentication_provider: None,
                cognito_authentication_type: None,
                cognito_identity_id: None,
                cognito_identity_pool_id: None,
                principal_org_id: None,
                source_ip: &req.source_ip,
                user: None,
                user_agent: req.user_agent(),
                user_arn: None,
            },
            path: &path,
            protocol: req.protocol,
            request_id: &req.request_id,
            request_time: req.time(),
            request_time_epoch: req.time_epoch(),
            resource_id: &route.route_key,
            resource_path: &route.resource,
            stage: &route.stage,
        },
        path_parameters: Some(&route.path_parameters).filter(|p| !p.is_empty()),
        stage_variables: None,
        body: body.as_ref().map(|(b, _)| b.as_ref()),
        is_base64_encoded: body.as_ref().is_some_and(|(_, b64)| *b64),
    };
    serde_json::to_vec(&event)
}

/// Map the function's answer (format 1.0): an object with `statusCode` is required;
/// `headers` and `multiValueHeaders` are merged.
pub fn response(payload: &[u8]) -> Result<MappedResponse, Malformed> {
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| Malformed(format!("the function's answer is not JSON: {e}")))?;
    let Value::Object(mut obj) = value else {
        return Err(Malformed("the function's answer is not an object".into()));
    };
    let status = status_code(
        obj.get("statusCode")
            .ok_or_else(|| Malformed("statusCode is missing".into()))?,
    )?;
    let mut headers: Vec<(String, String)> = Vec::new();
    match obj.remove("multiValueHeaders") {
        None | Some(Value::Null) => {}
        Some(Value::Object(h)) => {
            for (k, v) in h {
                match v {
                    Value::Array(items) => {
                        for it in items {
                            headers.push((k.clone(), scalar(it, "multiValueHeaders")?));
                        }
                    }
                    other => headers.push((k, scalar(other, "multiValueHeaders")?)),
                }
            }
        }
        Some(_) => return Err(Malformed("multiValueHeaders must be an object".into())),
    }
    match obj.remove("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(h)) => {
            for (k, v) in h {
                let v = scalar(v, "headers")?;
                if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(&k)) {
                    headers.push((k, v));
                }
            }
        }
        Some(_) => return Err(Malformed("headers must be an object".into())),
    }
    let b64 = matches!(obj.get("isBase64Encoded"), Some(Value::Bool(true)));
    let body: Bytes = body_of(obj.remove("body"), b64)?;
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("content-type".into(), "application/json".into()));
    }
    Ok(MappedResponse {
        status,
        headers,
        cookies: Vec::new(),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::PayloadFormat;
    use http::HeaderMap;
    use time::macros::datetime;

    #[test]
    fn event_has_the_rest_shape() {
        let mut h = HeaderMap::new();
        h.append("x-multi", "a".parse().unwrap());
        h.append("x-multi", "b".parse().unwrap());
        let req = HttpRequest {
            method: "GET",
            raw_path: "/prod/items/7",
            raw_query: "f=1&f=2",
            headers: &h,
            body: b"",
            source_ip: "127.0.0.1".into(),
            protocol: "HTTP/1.1",
            request_id: "rid".into(),
            now: datetime!(2026-11-28 22:52:53 UTC),
            domain_name: "api.execute-api.us-east-1.localhost".into(),
            domain_prefix: "api".into(),
        };
        let route = RouteMatch {
            api_id: "api".into(),
            stage: "prod".into(),
            route_key: "GET /items/{id}".into(),
            resource: "/items/{id}".into(),
            path: "/items/7".into(),
            path_parameters: [("id".to_string(), "7".to_string())].into(),
            function: "f".into(),
            payload_format: PayloadFormat::V1,
            timeout_ms: 30_000,
        };
        let v: Value =
            serde_json::from_slice(&event(&req, &route, "000000000000").unwrap()).unwrap();
        assert_eq!(v["resource"], "/items/{id}");
        assert_eq!(v["httpMethod"], "GET");
        assert_eq!(v["headers"]["x-multi"], "b");
        assert_eq!(
            v["multiValueHeaders"]["x-multi"],
            serde_json::json!(["a", "b"])
        );
        assert_eq!(v["queryStringParameters"]["f"], "2");
        assert_eq!(
            v["multiValueQueryStringParameters"]["f"],
            serde_json::json!(["1", "2"])
        );
        assert_eq!(v["pathParameters"]["id"], "7");
        assert_eq!(v["requestContext"]["stage"], "prod");
        assert_eq!(v["path"], "/items/7");
        assert_eq!(v["requestContext"]["path"], "/prod/items/7");
        assert!(v["body"].is_null());
        assert!(v["stageVariables"].is_null());
    }

    #[test]
    fn responses_need_a_status_code() {
        assert!(response(br#""hi""#).is_err());
        assert!(response(br#"{"body":"x"}"#).is_err());
        let r = response(
            br#"{"statusCode":404,"headers":{"a":"1"},"multiValueHeaders":{"b":["1","2"]},"body":"nope"}"#,
        )
        .unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(r.headers.iter().filter(|(k, _)| k == "b").count(), 2);
        assert_eq!(&r.body[..], b"nope");
    }
}
