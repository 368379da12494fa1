//! The AWS wire protocols spoken on the API address, shared by the services Sous serves:
//! which service a request is for ([`identify`]), the one body reader ([`body`]), and one
//! response writer per protocol: [`rest_json`] (Lambda, API Gateway v2), [`aws_json`]
//! (EventBridge's JSON 1.1) and [`query`] (the XML errors of the query and rest-xml
//! protocols, for requests to services Sous does not serve).
//!
//! Services are told apart as AWS's protocols allow: the path (`/v2/` is API Gateway v2),
//! `X-Amz-Target` (JSON protocols name `Service_Version.Operation`), and the SigV4
//! credential scope's service name (which every signed request carries). A request for a
//! service Sous does not serve is answered here, in its protocol's error shape, with an
//! error that says so: the AWS CLI prints it.

pub mod aws_json;
pub mod body;
pub mod query;
pub mod rest_json;

use axum::response::Response;
use http::request::Parts;
use http::{header, HeaderMap, HeaderValue};
use percent_encoding::percent_decode_str;

/// The SigV4 service names of the services Sous serves.
pub const LAMBDA: &str = "lambda";
pub const APIGATEWAY: &str = "apigateway";
pub const EVENTS: &str = "events";
/// The served services, as the AWS CLI names them (for the "not served" message).
pub const SERVED: &str = "lambda, apigatewayv2, events";

/// The service a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Service {
    /// The Lambda API (rest-json): everything not claimed by another service.
    Lambda,
    /// API Gateway v2's control plane (rest-json, paths under `/v2/`).
    ApiGatewayV2,
    /// EventBridge (JSON 1.1, `X-Amz-Target: AWSEvents.*`).
    Events,
    /// A service Sous does not serve.
    Unserved(Unserved),
}

impl Service {
    /// The name logged in the request's span.
    pub fn name(&self) -> &str {
        match self {
            Service::Lambda => LAMBDA,
            Service::ApiGatewayV2 => "apigatewayv2",
            Service::Events => EVENTS,
            Service::Unserved(u) => &u.name,
        }
    }
}

/// A request for a service Sous does not serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unserved {
    /// The service's SigV4 name (`logs`, `sts`, ...), else the `X-Amz-Target` prefix.
    pub name: String,
    /// The protocol the caller speaks, so the refusal is in a shape its SDK parses.
    pub protocol: Protocol,
}

/// An AWS protocol, as far as an error answer needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// REST with JSON bodies: `x-amzn-ErrorType` and a JSON body.
    RestJson,
    /// JSON 1.0 / 1.1 (`X-Amz-Target`): `{"__type", "message"}` with this content type.
    Json { content_type: &'static str },
    /// Query (`Action=`) and rest-xml: an XML `ErrorResponse`.
    Xml,
}

/// Which service `parts` is for.
pub fn identify(parts: &Parts) -> Service {
    let target = header_str(&parts.headers, "x-amz-target");
    if parts.uri.path().starts_with("/v2/") {
        return Service::ApiGatewayV2;
    }
    if target.is_some_and(|t| t.starts_with("AWSEvents.")) {
        return Service::Events;
    }
    let scope = scope_service(parts);
    let protocol = if target.is_some() {
        Protocol::Json {
            content_type: json_content_type(&parts.headers),
        }
    } else if is_query(parts) || scope.as_deref() == Some("s3") {
        Protocol::Xml
    } else {
        Protocol::RestJson
    };
    match scope {
        Some(s) if ![LAMBDA, APIGATEWAY, EVENTS].contains(&s.as_str()) => {
            return Service::Unserved(Unserved { name: s, protocol })
        }
        _ => {}
    }
    // A JSON-protocol call is never Lambda's (rest-json), whatever its scope says: name
    // the service its target names (`DynamoDB_20120810.ListTables` → dynamodb).
    if let Some(t) = target {
        let prefix = t.split(['.', '_']).next().unwrap_or(t);
        return Service::Unserved(Unserved {
            name: prefix.to_ascii_lowercase(),
            protocol,
        });
    }
    Service::Lambda
}

/// Answer a request for a service Sous does not serve: 400, in the caller's protocol.
pub fn unserved(u: &Unserved, request_id: &str) -> Response {
    let message = format!(
        "Sous does not serve the {} service (served: {SERVED})",
        u.name
    );
    tracing::info!(service = %u.name, "request for a service Sous does not serve");
    match u.protocol {
        Protocol::RestJson => rest_json::error(
            400,
            "UnknownOperationException",
            &serde_json::json!({ "message": message }),
            request_id,
        ),
        Protocol::Json { content_type } => aws_json::error(
            400,
            "UnknownOperationException",
            &message,
            request_id,
            content_type,
        ),
        Protocol::Xml => query::error(400, "InvalidAction", &message, request_id),
    }
}

/// The service name of the request's SigV4 credential scope
/// (`Credential=AKID/date/region/SERVICE/aws4_request`), from the Authorization header or
/// a presigned query. `None` for an unsigned or malformed request: SigV4 verification then
/// refuses it in the Lambda API's terms, as before.
fn scope_service(parts: &Parts) -> Option<String> {
    let credential = match header_str(&parts.headers, header::AUTHORIZATION.as_str()) {
        Some(auth) => auth
            .split([',', ' '])
            .find_map(|p| p.trim().strip_prefix("Credential="))?
            .to_string(),
        None => parts
            .uri
            .query()?
            .split('&')
            .find_map(|p| p.strip_prefix("X-Amz-Credential="))
            .and_then(|v| percent_decode_str(v).decode_utf8().ok())?
            .into_owned(),
    };
    let service = credential.split('/').nth(3)?;
    (!service.is_empty()).then(|| service.to_string())
}

/// Whether the request speaks the query protocol: a form body or an `Action=` query.
fn is_query(parts: &Parts) -> bool {
    let form = header_str(&parts.headers, header::CONTENT_TYPE.as_str())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let action = parts
        .uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("Action=")));
    form || action
}

fn json_content_type(headers: &HeaderMap) -> &'static str {
    match header_str(headers, header::CONTENT_TYPE.as_str()) {
        Some(c) if c.starts_with(aws_json::CONTENT_TYPE_1_0) => aws_json::CONTENT_TYPE_1_0,
        _ => aws_json::CONTENT_TYPE_1_1,
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A new request id: the `x-amzn-RequestId` of the answer and the `request_id` of the
/// request's log span.
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `x-amzn-RequestId: id`.
pub fn set_request_id(h: &mut HeaderMap, id: &str) {
    put_header(h, "x-amzn-requestid", id);
}

/// Set a header whose value comes from data (dropped, with a warning, if not valid HTTP).
pub fn put_header(h: &mut HeaderMap, name: &'static str, value: &str) {
    match HeaderValue::from_str(value) {
        Ok(v) => {
            h.insert(name, v);
        }
        Err(_) => tracing::warn!(
            header = name,
            "dropped a response header that is not valid HTTP"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    fn parts(req: Request<()>) -> Parts {
        req.into_parts().0
    }

    fn auth(service: &str) -> String {
        format!("AWS4-HMAC-SHA256 Credential=AKID/20261207/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=00")
    }

    #[test]
    fn services_are_told_apart() {
        let lambda = Request::get("/2015-03-31/functions/")
            .header("authorization", auth("lambda"))
            .body(())
            .unwrap();
        assert_eq!(identify(&parts(lambda)), Service::Lambda);
        let unsigned = Request::get("/2015-03-31/functions/").body(()).unwrap();
        assert_eq!(identify(&parts(unsigned)), Service::Lambda);
        let apis = Request::get("/v2/apis")
            .header("authorization", auth("apigateway"))
            .body(())
            .unwrap();
        assert_eq!(identify(&parts(apis)), Service::ApiGatewayV2);
        let events = Request::post("/")
            .header("x-amz-target", "AWSEvents.ListRules")
            .header("authorization", auth("events"))
            .body(())
            .unwrap();
        assert_eq!(identify(&parts(events)), Service::Events);

        let logs = Request::post("/")
            .header("x-amz-target", "Logs_20140328.DescribeLogGroups")
            .header("content-type", "application/x-amz-json-1.1")
            .header("authorization", auth("logs"))
            .body(())
            .unwrap();
        assert_eq!(
            identify(&parts(logs)),
            Service::Unserved(Unserved {
                name: "logs".into(),
                protocol: Protocol::Json {
                    content_type: aws_json::CONTENT_TYPE_1_1
                }
            })
        );
        let sts = Request::post("/")
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .header("authorization", auth("sts"))
            .body(())
            .unwrap();
        assert_eq!(
            identify(&parts(sts)),
            Service::Unserved(Unserved {
                name: "sts".into(),
                protocol: Protocol::Xml
            })
        );
        let presigned = Request::get(
            "/?Action=ListUsers&X-Amz-Credential=AKID%2F20261207%2Fus-east-1%2Fiam%2Faws4_request",
        )
        .body(())
        .unwrap();
        assert_eq!(
            identify(&parts(presigned)),
            Service::Unserved(Unserved {
                name: "iam".into(),
                protocol: Protocol::Xml
            })
        );
        let misaddressed = Request::post("/")
            .header("x-amz-target", "Logs_20140328.DescribeLogGroups")
            .header("authorization", auth("lambda"))
            .body(())
            .unwrap();
        assert!(matches!(identify(&parts(misaddressed)), Service::Unserved(u) if u.name == "logs"));
        let dynamo_unsigned = Request::post("/")
            .header("x-amz-target", "DynamoDB_20120810.ListTables")
            .header("content-type", "application/x-amz-json-1.0")
            .body(())
            .unwrap();
        assert_eq!(
            identify(&parts(dynamo_unsigned)),
            Service::Unserved(Unserved {
                name: "dynamodb".into(),
                protocol: Protocol::Json {
                    content_type: aws_json::CONTENT_TYPE_1_0
                }
            })
        );
    }
}
