//! The HTTP front door on `--gateway-addr`: function URLs and HTTP API routes.
//!
//! Addressing (both forms work for both kinds of target):
//! - function URLs: `/lambda-url/{url-id}/...` on any host, or `Host: {url-id}.lambda-url.*`;
//! - HTTP APIs: `/execute-api/{apiId}/...`, or `Host: {apiId}.execute-api.*`;
//! - anything else: 404 `{"message":"Not Found"}`.
//!
//! A request is read whole (6 MB limit, 413 above), turned into a payload format 2.0
//! ([`payload_v2`]) or 1.0 ([`payload_v1`]) event, invoked synchronously through the
//! [`Invoker`] exactly as the Lambda API's Invoke does, and the function's answer is mapped
//! back to HTTP. The per-request store work is one primary-key lookup (the URL id) or the
//! route resolution of [`crate::routing::resolve`].

mod cors;
pub mod payload_v1;
pub mod payload_v2;
pub mod request;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use http_body_util::BodyExt;
use serde_json::json;
use sous_invoke::{InvocationType, InvokeRequest, Invoker};
use sous_store::Store;
use sous_types::function_url::{is_url_id, AuthType};
use sous_types::limits::SYNC_REQUEST_MAX_BYTES;
use sous_types::names::{parse_function_name, Scope};
use sous_types::sigv4;
use sous_types::{ErrorCode, LambdaError};
use time::OffsetDateTime;
use tracing::Instrument;

use crate::routing::{self, PayloadFormat, Resolution};
use payload_v2::MappedResponse;
use request::HttpRequest;

/// The largest request body the door accepts (Lambda's synchronous payload limit).
pub const BODY_MAX_BYTES: usize = SYNC_REQUEST_MAX_BYTES;

/// What the front door needs.
pub struct GatewayState {
    pub store: Arc<Store>,
    pub invoker: Arc<Invoker>,
    pub scope: Scope,
    /// The key pair AWS_IAM function URLs accept signatures of.
    pub credentials: sigv4::Credentials,
}

/// The router: everything goes to one handler that dispatches on host and path.
pub fn router(state: Arc<GatewayState>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// Serve the front door on `listener` under the connection `limits` until `shutdown`
/// resolves, then finish in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<GatewayState>,
    limits: sous_http::Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    sous_http::serve(listener, router(state), limits, "front door", shutdown).await
}

/// Which kind of door a request came through: the error bodies differ.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Door {
    /// Lambda function URLs: `{"Message": ...}` bodies.
    Url,
    /// API Gateway HTTP APIs: `{"message": ...}` bodies.
    Api,
}

/// What a request addresses, from its host or its path.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    Url { id: &'a str, rest: &'a str },
    Api { id: &'a str, rest: &'a str },
    Nothing,
}

/// Parse the addressing: host-based first (`{id}.lambda-url.*`, `{id}.execute-api.*`),
/// then path-based (`/lambda-url/{id}/...`, `/execute-api/{id}/...`). `rest` is the path
/// after the prefix, always starting with `/`.
fn target<'a>(host: Option<&'a str>, path: &'a str) -> Target<'a> {
    if let Some(host) = host {
        let mut labels = host.split('.');
        if let (Some(id), Some(kind)) = (labels.next(), labels.next()) {
            match kind {
                "lambda-url" => return Target::Url { id, rest: path },
                "execute-api" => return Target::Api { id, rest: path },
                _ => {}
            }
        }
    }
    let split = |prefix: &str| -> Option<(&'a str, &'a str)> {
        let after = path.strip_prefix(prefix)?;
        let (id, rest) = match after.find('/') {
            Some(i) => (&after[..i], &after[i..]),
            None => (after, "/"),
        };
        (!id.is_empty()).then_some((id, rest))
    };
    if let Some((id, rest)) = split("/lambda-url/") {
        return Target::Url { id, rest };
    }
    if let Some((id, rest)) = split("/execute-api/") {
        return Target::Api { id, rest };
    }
    Target::Nothing
}

async fn handle(
    State(state): State<Arc<GatewayState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let (parts, body) = req.into_parts();
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.host());
    let path = parts.uri.path();
    let (door, id, rest) = match target(host, path) {
        Target::Url { id, rest } => (Door::Url, id, rest),
        Target::Api { id, rest } => (Door::Api, id, rest),
        Target::Nothing => return not_found(),
    };
    let body = match read_body(body, &parts.headers).await {
        Ok(b) => b,
        Err(status) => return door_error(door, status),
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let region = &state.scope.region;
    let (domain_name, domain_prefix) = match door {
        Door::Url => (
            format!("{id}.lambda-url.{region}.localhost"),
            id.to_string(),
        ),
        Door::Api => (
            format!("{id}.execute-api.{region}.localhost"),
            id.to_string(),
        ),
    };
    let http_req = HttpRequest {
        method: parts.method.as_str(),
        raw_path: rest,
        raw_query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        body: &body,
        source_ip: peer.ip().to_string(),
        protocol: match parts.version {
            http::Version::HTTP_2 => "HTTP/2.0",
            http::Version::HTTP_10 => "HTTP/1.0",
            _ => "HTTP/1.1",
        },
        request_id,
        now,
        domain_name,
        domain_prefix,
    };
    let span = tracing::debug_span!("gateway", door = ?door, id, request_id = %http_req.request_id);
    async {
        match door {
            Door::Url => function_url(&state, id, &parts, &http_req).await,
            Door::Api => http_api(&state, id, &http_req).await,
        }
    }
    .instrument(span)
    .await
}

/// Serve a function URL request.
async fn function_url(
    state: &GatewayState,
    id: &str,
    parts: &http::request::Parts,
    req: &HttpRequest<'_>,
) -> Response {
    if !is_url_id(id) {
        return not_found();
    }
    let url_id = id.to_string();
    let stored = match state.store.run(move |s| s.url_by_id(&url_id)).await {
        Ok(Some(s)) => s,
        Ok(None) => return not_found(),
        Err(e) => {
            tracing::error!(error = %e, url_id = id, "look up function URL");
            return door_error(Door::Url, StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    let config = &stored.config;
    if let Some(cors) = &config.cors {
        if cors::is_preflight(&parts.method, &parts.headers) {
            let mut resp = Response::new(Body::empty());
            for (name, value) in cors::preflight_headers(cors, &parts.headers) {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    resp.headers_mut().insert(name, v);
                }
            }
            put_request_id(resp.headers_mut(), &req.request_id);
            return resp;
        }
    }
    let (account_id, authorizer) = match config.auth_type {
        AuthType::None => ("anonymous".to_string(), None),
        AuthType::AwsIam => {
            let signed = sigv4::SignedRequest::from_parts(parts, req.body);
            if let Err(e) = sigv4::verify(&signed, &state.credentials, "lambda", req.now) {
                tracing::debug!(url_id = id, error = %e.message, "function URL request refused");
                return forbidden();
            }
            let account = state.scope.account.clone();
            let authorizer = json!({"iam": {
                "accessKey": state.credentials.access_key_id,
                "accountId": account,
                "callerId": account,
                "cognitoIdentity": null,
                "principalOrgId": null,
                "userArn": format!("arn:aws:iam::{account}:root"),
                "userId": account,
            }});
            (account, Some(authorizer))
        }
    };
    let event = match payload_v2::event(
        req,
        payload_v2::Route {
            route_key: "$default",
            stage: "$default",
            api_id: id,
            account_id: &account_id,
            authorizer,
            path_parameters: None,
        },
    ) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "serialize function URL event");
            return door_error(Door::Url, StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    if event.len() > BODY_MAX_BYTES {
        return door_error(Door::Url, StatusCode::PAYLOAD_TOO_LARGE);
    }
    let qualifier = (stored.qualifier != sous_invoke::LATEST).then(|| stored.qualifier.clone());
    let outcome = invoke(state, stored.function_name.clone(), qualifier, event).await;
    let mut resp = match outcome {
        Ok((request_id, Ok(mapped))) => http_response(mapped, &request_id),
        Ok((_, Err(status))) | Err(status) => door_error(Door::Url, status),
    };
    if let Some(cors) = &config.cors {
        cors::apply(cors, &parts.headers, resp.headers_mut());
    }
    resp
}

/// Serve an HTTP API request.
async fn http_api(state: &GatewayState, api_id: &str, req: &HttpRequest<'_>) -> Response {
    let (api, method, path) = (
        api_id.to_string(),
        req.method.to_string(),
        req.raw_path.to_string(),
    );
    let resolution = match state
        .store
        .run(move |s| routing::resolve(s, &api, &method, &path))
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, api_id, "resolve route");
            return door_error(Door::Api, StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    let route = match resolution {
        Resolution::Matched(m) => m,
        Resolution::NoApi | Resolution::NoRoute => return not_found(),
    };
    let event = match route.payload_format {
        PayloadFormat::V2 => payload_v2::event(
            req,
            payload_v2::Route {
                route_key: &route.route_key,
                stage: &route.stage,
                api_id,
                account_id: &state.scope.account,
                authorizer: None,
                path_parameters: Some(&route.path_parameters),
            },
        ),
        PayloadFormat::V1 => payload_v1::event(req, &route, &state.scope.account),
    };
    let event = match event {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "serialize HTTP API event");
            return door_error(Door::Api, StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    if event.len() > BODY_MAX_BYTES {
        return door_error(Door::Api, StatusCode::PAYLOAD_TOO_LARGE);
    }
    let fref = match parse_function_name(&route.function, &state.scope, 256) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(api_id, function = %route.function, error = %e.message, "integration names no valid function");
            return door_error(Door::Api, StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    let call = invoke_with(
        state,
        fref.name,
        fref.qualifier,
        event,
        route.payload_format,
    );
    let timeout = std::time::Duration::from_millis(route.timeout_ms.max(1));
    let mut resp = match tokio::time::timeout(timeout, call).await {
        Err(_) => door_error(Door::Api, StatusCode::GATEWAY_TIMEOUT),
        Ok(Ok((request_id, Ok(mapped)))) => http_response(mapped, &request_id),
        Ok(Ok((_, Err(status)))) | Ok(Err(status)) => door_error(Door::Api, status),
    };
    if let Ok(v) = HeaderValue::from_str(&req.request_id) {
        resp.headers_mut().insert("apigw-requestid", v);
    }
    resp
}

/// Invoke with a 2.0 answer mapping (function URLs).
async fn invoke(
    state: &GatewayState,
    function: String,
    qualifier: Option<String>,
    event: Vec<u8>,
) -> Result<(String, Result<MappedResponse, StatusCode>), StatusCode> {
    invoke_with(state, function, qualifier, event, PayloadFormat::V2).await
}

/// Invoke the function synchronously (as the Lambda API's Invoke does) and map its answer;
/// `Err(status)` for what the door answers itself.
async fn invoke_with(
    state: &GatewayState,
    function: String,
    qualifier: Option<String>,
    event: Vec<u8>,
    format: PayloadFormat,
) -> Result<(String, Result<MappedResponse, StatusCode>), StatusCode> {
    let out = state
        .invoker
        .invoke(InvokeRequest {
            function_name: function.clone(),
            qualifier,
            invocation_type: InvocationType::RequestResponse,
            payload: Bytes::from(event),
            tail_logs: false,
            client_context: None,
            trace_id: None,
        })
        .await
        .map_err(|e| invoke_error_status(&function, &e))?;
    if out.function_error.is_some() {
        tracing::debug!(function = %function, request_id = %out.request_id, "function error at the door");
        return Ok((out.request_id, Err(StatusCode::BAD_GATEWAY)));
    }
    let mapped = match format {
        PayloadFormat::V2 => payload_v2::response(out.payload),
        PayloadFormat::V1 => payload_v1::response(&out.payload),
    };
    Ok((
        out.request_id,
        mapped.map_err(|m| {
            tracing::info!(function = %function, reason = %m.0, "malformed function response at the door");
            StatusCode::BAD_GATEWAY
        }),
    ))
}

fn invoke_error_status(function: &str, e: &LambdaError) -> StatusCode {
    match e.code {
        ErrorCode::TooManyRequestsException => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RequestTooLargeException | ErrorCode::RequestEntityTooLargeException => {
            StatusCode::PAYLOAD_TOO_LARGE
        }
        _ => {
            tracing::warn!(function, error = %e.message, code = e.code.as_str(), "invocation failed at the door");
            StatusCode::BAD_GATEWAY
        }
    }
}

/// Build the HTTP response of a mapped answer.
fn http_response(mapped: MappedResponse, request_id: &str) -> Response {
    let mut resp = Response::new(Body::from(mapped.body));
    *resp.status_mut() = StatusCode::from_u16(mapped.status).unwrap_or(StatusCode::OK);
    let h = resp.headers_mut();
    for (name, value) in mapped.headers {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            (Ok(n), Ok(v)) => {
                h.append(n, v);
            }
            _ => {
                tracing::debug!(header = %name, "dropped a response header that is not valid HTTP")
            }
        }
    }
    for c in mapped.cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            h.append(header::SET_COOKIE, v);
        }
    }
    put_request_id(h, request_id);
    resp
}

fn put_request_id(h: &mut HeaderMap, id: &str) {
    if let Ok(v) = HeaderValue::from_str(id) {
        h.insert("x-amzn-requestid", v);
    }
}

/// Read the whole body, refusing more than [`BODY_MAX_BYTES`] (413) as soon as it is known
/// (Content-Length, or the bytes counted so far), and a body slower than the listener's
/// minimum rate (408).
async fn read_body(mut body: Body, headers: &HeaderMap) -> Result<Bytes, StatusCode> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Refused at once, without waiting for the rest: the listener drains it while it
    // closes the connection (a lingering close), so the client reads the 413.
    if declared.is_some_and(|n| n > BODY_MAX_BYTES as u64) {
        return Err(StatusCode::PAYLOAD_TOO_LARGE);
    }
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(f) => f,
            Err(e) if sous_http::is_body_too_slow(&e) => {
                tracing::debug!(error = %e, "read request body");
                return Err(StatusCode::REQUEST_TIMEOUT);
            }
            Err(e) => {
                tracing::debug!(error = %e, "read request body");
                return Err(StatusCode::BAD_REQUEST);
            }
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if buf.len() + data.len() > BODY_MAX_BYTES {
            return Err(StatusCode::PAYLOAD_TOO_LARGE);
        }
        if buf.is_empty() && declared == Some(data.len() as u64) {
            // A body in one frame needs no copy.
            return Ok(data);
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}

fn json_response(status: StatusCode, body: &'static str) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// 404 `{"message":"Not Found"}`: no URL, API or route at that address.
fn not_found() -> Response {
    json_response(StatusCode::NOT_FOUND, r#"{"message":"Not Found"}"#)
}

/// 403 for an AWS_IAM function URL request without a valid signature.
fn forbidden() -> Response {
    json_response(
        StatusCode::FORBIDDEN,
        r#"{"Message":"Forbidden. For troubleshooting Function URL authorization issues, see: https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html"}"#,
    )
}

/// The door's own answers, with each door's body.
fn door_error(door: Door, status: StatusCode) -> Response {
    let body = match (door, status.as_u16()) {
        (Door::Url, 502) => "Internal Server Error",
        (Door::Url, 413) => r#"{"Message":"Request Entity Too Large"}"#,
        (Door::Url, 429) => r#"{"Message":"Too Many Requests"}"#,
        (Door::Url, 400) => r#"{"Message":"Bad Request"}"#,
        (Door::Url, 408) => r#"{"Message":"Request Timeout"}"#,
        (Door::Url, _) => r#"{"Message":"Internal Server Error"}"#,
        (Door::Api, 502) => r#"{"message":"Internal Server Error"}"#,
        (Door::Api, 504) => r#"{"message":"Endpoint request timed out"}"#,
        (Door::Api, 413) => r#"{"message":"Request Entity Too Large"}"#,
        (Door::Api, 429) => r#"{"message":"Too Many Requests"}"#,
        (Door::Api, 400) => r#"{"message":"Bad Request"}"#,
        (Door::Api, 408) => r#"{"message":"Request Timeout"}"#,
        (Door::Api, _) => r#"{"message":"Internal Server Error"}"#,
    };
    json_response(status, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addressing_by_path_and_by_host() {
        assert_eq!(
            target(Some("127.0.0.1:3000"), "/lambda-url/abc/x/y"),
            Target::Url {
                id: "abc",
                rest: "/x/y"
            }
        );
        assert_eq!(
            target(None, "/lambda-url/abc"),
            Target::Url {
                id: "abc",
                rest: "/"
            }
        );
        assert_eq!(
            target(Some("abc.lambda-url.us-east-1.localhost:3000"), "/x"),
            Target::Url {
                id: "abc",
                rest: "/x"
            }
        );
        assert_eq!(
            target(Some("api1.execute-api.us-east-1.localhost"), "/prod/items"),
            Target::Api {
                id: "api1",
                rest: "/prod/items"
            }
        );
        assert_eq!(
            target(Some("localhost"), "/execute-api/api1/items"),
            Target::Api {
                id: "api1",
                rest: "/items"
            }
        );
        assert_eq!(target(Some("localhost"), "/"), Target::Nothing);
        assert_eq!(target(None, "/lambda-url/"), Target::Nothing);
    }
}
