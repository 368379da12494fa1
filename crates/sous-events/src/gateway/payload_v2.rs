//! Payload format 2.0: the event of function URLs and of HTTP API integrations with
//! `PayloadFormatVersion` 2.0, and the mapping of a function's answer to an HTTP response.

use std::collections::BTreeMap;

use base64::Engine as _;
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use super::request::HttpRequest;

/// What the function's answer becomes at the door.
#[derive(Debug, PartialEq, Eq)]
pub struct MappedResponse {
    pub status: u16,
    /// Header names as the function wrote them (HTTP makes them case-insensitive).
    pub headers: Vec<(String, String)>,
    /// Each becomes one `Set-Cookie` header.
    pub cookies: Vec<String>,
    pub body: Bytes,
}

/// The answer cannot be mapped: API Gateway and Lambda answer 502.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub String);

/// Where the event is going: a function URL, or a route of an HTTP API.
pub struct Route<'a> {
    /// `$default` for function URLs; the route key (`GET /items/{id}`) for APIs.
    pub route_key: &'a str,
    /// `$default` or the stage name.
    pub stage: &'a str,
    /// The URL id or the API id.
    pub api_id: &'a str,
    pub account_id: &'a str,
    /// `requestContext.authorizer` (`{"iam": {...}}` for AWS_IAM function URLs).
    pub authorizer: Option<Value>,
    pub path_parameters: Option<&'a BTreeMap<String, String>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    version: &'static str,
    route_key: &'a str,
    raw_path: &'a str,
    raw_query_string: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cookies: Option<Vec<String>>,
    headers: BTreeMap<&'a str, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_string_parameters: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_parameters: Option<&'a BTreeMap<String, String>>,
    request_context: Context<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    is_base64_encoded: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Context<'a> {
    account_id: &'a str,
    api_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorizer: Option<Value>,
    domain_name: &'a str,
    domain_prefix: &'a str,
    http: Http<'a>,
    request_id: &'a str,
    route_key: &'a str,
    stage: &'a str,
    time: String,
    time_epoch: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Http<'a> {
    method: &'a str,
    path: &'a str,
    protocol: &'a str,
    source_ip: &'a str,
    user_agent: &'a str,
}

/// Build the 2.0 event: cookies split out of `Cookie`, other headers lowercased with
/// repeated ones comma-joined, query parameters decoded (repeated ones comma-joined).
pub fn event(req: &HttpRequest<'_>, route: Route<'_>) -> Result<Vec<u8>, serde_json::Error> {
    let mut headers: BTreeMap<&str, String> = BTreeMap::new();
    let mut cookies: Vec<String> = Vec::new();
    for (name, value) in req.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        if name == http::header::COOKIE {
            cookies.extend(
                value
                    .split(';')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_string),
            );
            continue;
        }
        headers
            .entry(name.as_str())
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    for (name, value) in req.forwarded() {
        headers.insert(name, value);
    }
    let query = req.query_multi();
    let query = (!query.is_empty()).then(|| {
        query
            .into_iter()
            .map(|(k, v)| (k, v.join(",")))
            .collect::<BTreeMap<_, _>>()
    });
    let body = req.body();
    let path = req.path();
    let event = Event {
        version: "2.0",
        route_key: route.route_key,
        raw_path: req.raw_path,
        raw_query_string: req.raw_query,
        cookies: (!cookies.is_empty()).then_some(cookies),
        headers,
        query_string_parameters: query,
        path_parameters: route.path_parameters.filter(|p| !p.is_empty()),
        request_context: Context {
            account_id: route.account_id,
            api_id: route.api_id,
            authorizer: route.authorizer,
            domain_name: &req.domain_name,
            domain_prefix: &req.domain_prefix,
            http: Http {
                method: req.method,
                path: &path,
                protocol: req.protocol,
                source_ip: &req.source_ip,
                user_agent: req.user_agent(),
            },
            request_id: &req.request_id,
            route_key: route.route_key,
            stage: route.stage,
            time: req.time(),
            time_epoch: req.time_epoch(),
        },
        body: body.as_ref().map(|(b, _)| b.as_ref()),
        is_base64_encoded: body.as_ref().is_some_and(|(_, b64)| *b64),
    };
    serde_json::to_vec(&event)
}

/// Map the function's answer (format 2.0): an object with `statusCode` gives status,
/// headers, cookies, body (base64-decoded when `isBase64Encoded`); any other valid JSON is
/// the body of a 200 `application/json` response, exactly as returned.
pub fn response(payload: Bytes) -> Result<MappedResponse, Malformed> {
    let value: Value = serde_json::from_slice(&payload)
        .map_err(|e| Malformed(format!("the function's answer is not JSON: {e}")))?;
    let Value::Object(mut obj) = value else {
        return Ok(inferred(payload));
    };
    let Some(status) = obj.remove("statusCode") else {
        return Ok(inferred(payload));
    };
    let status = status_code(&status)?;
    let mut headers = Vec::new();
    match obj.remove("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(h)) => {
            for (k, v) in h {
                headers.push((k, scalar(v, "headers")?));
            }
        }
        Some(_) => return Err(Malformed("headers must be an object".into())),
    }
    let mut cookies = Vec::new();
    match obj.remove("cookies") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for c in items {
                cookies.push(scalar(c, "cookies")?);
            }
        }
        Some(_) => return Err(Malformed("cookies must be an array".into())),
    }
    let b64 = matches!(obj.get("isBase64Encoded"), Some(Value::Bool(true)));
    let body = body_of(obj.remove("body"), b64)?;
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("content-type".into(), "application/json".into()));
    }
    Ok(MappedResponse {
        status,
        headers,
        cookies,
        body,
    })
}

fn inferred(payload: Bytes) -> MappedResponse {
    MappedResponse {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        cookies: Vec::new(),
        body: payload,
    }
}

/// `statusCode`: an integer 100..=599 (a numeric string is accepted, as API Gateway does).
pub fn status_code(v: &Value) -> Result<u16, Malformed> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match n {
        Some(n @ 100..=599) => Ok(n as u16),
        _ => Err(Malformed(format!("invalid statusCode {v}"))),
    }
}

/// A header or cookie value: strings as they are, numbers and booleans as JSON prints them.
pub fn scalar(v: Value, what: &str) -> Result<String, Malformed> {
    match v {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(Malformed(format!("{what} value {other} is not a string"))),
    }
}

/// The response body: a string (base64-decoded when flagged), absent = empty.
pub fn body_of(body: Option<Value>, b64: bool) -> Result<Bytes, Malformed> {
    let text = match body {
        None | Some(Value::Null) => return Ok(Bytes::new()),
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
    };
    if b64 {
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map(Bytes::from)
            .map_err(|e| Malformed(format!("body is not valid base64: {e}")))
    } else {
        Ok(Bytes::from(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;
    use time::macros::datetime;

    #[test]
    fn event_has_lambdas_shape() {
        let mut h = HeaderMap::new();
        h.append("x-multi", "a".parse().unwrap());
        h.append("x-multi", "b".parse().unwrap());
        h.append("cookie", "c1=v1; c2=v2".parse().unwrap());
        h.append("user-agent", "curl/8".parse().unwrap());
        let req = HttpRequest {
            method: "POST",
            raw_path: "/my/path",
            raw_query: "p=1&p=2&q=x",
            headers: &h,
            body: b"hello",
            source_ip: "127.0.0.1".into(),
            protocol: "HTTP/1.1",
            request_id: "rid".into(),
            now: datetime!(2026-11-28 22:52:53 UTC),
            domain_name: "abc.lambda-url.us-east-1.localhost".into(),
            domain_prefix: "abc".into(),
        };
        let bytes = event(
            &req,
            Route {
                route_key: "$default",
                stage: "$default",
                api_id: "abc",
                account_id: "anonymous",
                authorizer: None,
                path_parameters: None,
            },
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["version"], "2.0");
        assert_eq!(v["routeKey"], "$default");
        assert_eq!(v["rawPath"], "/my/path");
        assert_eq!(v["rawQueryString"], "p=1&p=2&q=x");
        assert_eq!(v["cookies"], serde_json::json!(["c1=v1", "c2=v2"]));
        assert_eq!(v["headers"]["x-multi"], "a,b");
        assert!(v["headers"].get("cookie").is_none());
        assert_eq!(v["headers"]["x-forwarded-for"], "127.0.0.1");
        assert_eq!(v["headers"]["x-forwarded-proto"], "http");
        assert_eq!(v["queryStringParameters"]["p"], "1,2");
        assert_eq!(v["requestContext"]["accountId"], "anonymous");
        assert_eq!(v["requestContext"]["http"]["method"], "POST");
        assert_eq!(v["requestContext"]["http"]["userAgent"], "curl/8");
        assert_eq!(v["requestContext"]["time"], "28/Nov/2026:22:52:53 +0000");
        assert_eq!(v["body"], "hello");
        assert_eq!(v["isBase64Encoded"], false);
        assert!(v.get("pathParameters").is_none());
    }

    #[test]
    fn responses_map_as_lambda_maps_them() {
        let r = response(Bytes::from_static(
            br#"{"statusCode":201,"headers":{"X-A":"1","X-N":2},"cookies":["a=1","b=2"],"body":"aGk=","isBase64Encoded":true}"#,
        ))
        .unwrap();
        assert_eq!(r.status, 201);
        assert!(r.headers.contains(&("X-N".into(), "2".into())));
        assert_eq!(r.cookies, vec!["a=1", "b=2"]);
        assert_eq!(&r.body[..], b"hi");
        let r = response(Bytes::from_static(br#""Hello, world!""#)).unwrap();
        assert_eq!((r.status, &r.body[..]), (200, &br#""Hello, world!""#[..]));
        let r = response(Bytes::from_static(br#"{"message":"hi"}"#)).unwrap();
        assert_eq!(&r.body[..], br#"{"message":"hi"}"#);
        assert!(response(Bytes::from_static(b"not json")).is_err());
        assert!(response(Bytes::from_static(br#"{"statusCode":"abc"}"#)).is_err());
        assert!(response(Bytes::from_static(br#"{"statusCode":700}"#)).is_err());
    }
}
