//! EventBridge control plane for scheduled rules, the subset `aws events` uses (AWS JSON 1.1,
//! `X-Amz-Target: AWSEvents.<Operation>`) (being built).

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::request::Parts;
use http::StatusCode;
use time::OffsetDateTime;

use crate::ApiState;

/// Whether this request is an EventBridge call (`X-Amz-Target: AWSEvents.*`).
pub fn handles(parts: &Parts) -> bool {
    parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("AWSEvents."))
}

/// Serve one EventBridge request.
pub async fn handle(
    _state: &Arc<ApiState>,
    _parts: Parts,
    _body: Body,
    _now: OffsetDateTime,
) -> Response {
    let mut resp = Response::new(Body::from(
        r#"{"__type":"UnknownOperationException","message":"not built yet"}"#,
    ));
    *resp.status_mut() = StatusCode::BAD_REQUEST;
    resp
}
