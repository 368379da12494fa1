//! The rest-json protocol's responses (Lambda, API Gateway v2): a JSON document with a
//! status, and errors as `x-amzn-ErrorType` (which botocore's rest-json parser reads first
//! for the error code) plus a JSON body. Every response carries `x-amzn-RequestId`.

use axum::body::Body;
use axum::response::Response;
use http::{header, HeaderValue, StatusCode};
use serde::Serialize;

use super::{put_header, set_request_id};

/// `value` as a JSON document with `status`.
pub fn json<T: Serialize>(
    status: u16,
    value: &T,
    request_id: &str,
) -> Result<Response, serde_json::Error> {
    Ok(bytes(status, serde_json::to_vec(value)?, request_id))
}

/// An already serialized JSON document with `status`.
pub fn bytes(status: u16, body: impl Into<Body>, request_id: &str) -> Response {
    let mut resp = Response::new(body.into());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    set_request_id(resp.headers_mut(), request_id);
    resp
}

/// An answer without a body (204 for Delete*).
pub fn empty(status: StatusCode, request_id: &str) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = status;
    set_request_id(resp.headers_mut(), request_id);
    resp
}

/// An error: `status`, `x-amzn-ErrorType: error_type`, and `body` (whose members each
/// service's model names).
pub fn error(
    status: u16,
    error_type: &'static str,
    body: &serde_json::Value,
    request_id: &str,
) -> Response {
    let mut resp = bytes(status, body.to_string(), request_id);
    put_header(resp.headers_mut(), "x-amzn-errortype", error_type);
    resp
}
