//! API Gateway v2 (HTTP APIs) control plane, the subset `aws apigatewayv2` and boto3 use
//! (being built).

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::request::Parts;
use http::StatusCode;
use time::OffsetDateTime;

use crate::ApiState;

/// Whether this request belongs to the API Gateway v2 control plane (paths under `/v2/`).
pub fn handles(parts: &Parts) -> bool {
    parts.uri.path().starts_with("/v2/")
}

/// Serve one API Gateway v2 request.
pub async fn handle(
    _state: &Arc<ApiState>,
    _parts: Parts,
    _body: Body,
    _now: OffsetDateTime,
) -> Response {
    let mut resp = Response::new(Body::from(r#"{"message":"Not Found"}"#));
    *resp.status_mut() = StatusCode::NOT_FOUND;
    resp
}
