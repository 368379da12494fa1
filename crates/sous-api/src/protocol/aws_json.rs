//! The AWS JSON 1.0 / 1.1 protocols' responses (`X-Amz-Target` services: EventBridge, and
//! the refusal of unserved ones): a JSON body, and errors as `{"__type": ..., "message":
//! ...}` (HTTP 400, or 500 for the service's own faults). Every response carries
//! `x-amzn-RequestId`.

use axum::body::Body;
use axum::response::Response;
use http::{header, HeaderValue, StatusCode};

use super::set_request_id;

pub const CONTENT_TYPE_1_0: &str = "application/x-amz-json-1.0";
pub const CONTENT_TYPE_1_1: &str = "application/x-amz-json-1.1";

/// A response with `body` (possibly empty: an operation without output).
pub fn reply(
    status: u16,
    body: impl Into<Body>,
    request_id: &str,
    content_type: &'static str,
) -> Response {
    let mut resp = Response::new(body.into());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    set_request_id(h, request_id);
    resp
}

/// An error: `{"__type": error_type, "message": message}` with `status`.
pub fn error(
    status: u16,
    error_type: &str,
    message: &str,
    request_id: &str,
    content_type: &'static str,
) -> Response {
    let body = serde_json::json!({ "__type": error_type, "message": message }).to_string();
    reply(status, body, request_id, content_type)
}
