//! API Gateway v2 (HTTP APIs) control plane: the subset `aws apigatewayv2` and boto3 use to
//! define routes to functions, on the API address under `/v2/`.
//!
//! The same four stages as the Lambda API, in this module's own wire format (REST-JSON with
//! lowerCamelCase members, errors as `x-amzn-ErrorType` + `{"message": ...}`):
//! 1. transport (this file): read the body within [`BODY_LIMIT`], SigV4 for service
//!    `apigateway`;
//! 2. [`parse`]: method + path + body → one [`Command`];
//! 3. [`service`]: execute it against the store (all decisions);
//! 4. [`ApigwError`] → API Gateway's error response, here and nowhere else.
//!
//! The gateway (`sous_events::routing`) reads what this control plane stores; every write
//! changes the API's revision, so the next request sees it.

mod parse;
mod service;

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::request::Parts;
use http::{header, HeaderValue, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde::Serialize;
use sous_types::LambdaError;
use time::OffsetDateTime;
use tracing::Instrument;

use crate::{sigv4, ApiState};

pub use parse::Command;

/// Largest request body accepted (API definitions are small).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Whether this request belongs to the API Gateway v2 control plane (paths under `/v2/`).
pub fn handles(parts: &Parts) -> bool {
    parts.uri.path().starts_with("/v2/")
}

/// An API Gateway error, as the service names it (`x-amzn-ErrorType`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApigwError {
    /// 404 NotFoundException.
    #[error("NotFoundException: {0}")]
    NotFound(String),
    /// 400 BadRequestException.
    #[error("BadRequestException: {0}")]
    BadRequest(String),
    /// 409 ConflictException.
    #[error("ConflictException: {0}")]
    Conflict(String),
    /// Authentication failed (403, with SigV4's own error type).
    #[error("{0}")]
    Auth(LambdaError),
    /// Sous's own fault: 500 InternalServerErrorException (the cause is logged where it happens).
    #[error("InternalServerErrorException: {0}")]
    Internal(String),
}

impl ApigwError {
    fn status_and_type(&self) -> (u16, &str) {
        match self {
            ApigwError::NotFound(_) => (404, "NotFoundException"),
            ApigwError::BadRequest(_) => (400, "BadRequestException"),
            ApigwError::Conflict(_) => (409, "ConflictException"),
            ApigwError::Auth(e) => (e.code.status(), e.code.as_str()),
            ApigwError::Internal(_) => (500, "InternalServerErrorException"),
        }
    }

    fn message(&self) -> &str {
        match self {
            ApigwError::NotFound(m)
            | ApigwError::BadRequest(m)
            | ApigwError::Conflict(m)
            | ApigwError::Internal(m) => m,
            ApigwError::Auth(e) => &e.message,
        }
    }
}

impl From<sous_store::StoreError> for ApigwError {
    fn from(e: sous_store::StoreError) -> Self {
        tracing::error!(error = %e, "HTTP API store operation failed");
        ApigwError::Internal("Internal server error".into())
    }
}

/// What a successful operation answers.
#[derive(Debug)]
pub enum Reply {
    /// A JSON document with this status (201 for Create*, 200 otherwise).
    Json(u16, serde_json::Value),
    /// 204, empty body (Delete*).
    NoContent,
}

/// Serve one API Gateway v2 request.
pub async fn handle(
    state: &Arc<ApiState>,
    parts: Parts,
    body: Body,
    now: OffsetDateTime,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let body = match Limited::new(body, BODY_LIMIT).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let err = ApigwError::BadRequest(format!("Could not read the request body: {e}"));
            return error_response(&err, &request_id);
        }
    };
    let cmd = match authenticate_and_parse(state, &parts, &body, now) {
        Ok(cmd) => cmd,
        Err(e) => return error_response(&e, &request_id),
    };
    let span = tracing::info_span!("apigw", op = cmd.operation(), api_id = cmd.api_id());
    async move {
        match service::execute(state, cmd, now) {
            Ok(reply) => reply_response(reply, &request_id),
            Err(e) => error_response(&e, &request_id),
        }
    }
    .instrument(span)
    .await
}

fn authenticate_and_parse(
    state: &ApiState,
    parts: &Parts,
    body: &Bytes,
    now: OffsetDateTime,
) -> Result<Command, ApigwError> {
    let signed = sigv4::SignedRequest::from_parts(parts, body);
    sigv4::verify(&signed, &state.credentials, "apigateway", now).map_err(ApigwError::Auth)?;
    parse::parse(&parts.method, parts.uri.path(), body)
}

fn reply_response(reply: Reply, request_id: &str) -> Response {
    match reply {
        Reply::Json(status, value) => json(status, &value, request_id),
        Reply::NoContent => {
            let mut resp = Response::new(Body::empty());
            *resp.status_mut() = StatusCode::NO_CONTENT;
            set_request_id(&mut resp, request_id);
            resp
        }
    }
}

/// API Gateway's error wire format: status, `x-amzn-ErrorType` (which botocore's rest-json
/// parser reads first for the error code) and `{"message": "..."}`.
pub fn error_response(err: &ApigwError, request_id: &str) -> Response {
    #[derive(Serialize)]
    struct Body<'a> {
        message: &'a str,
    }
    let (status, kind) = err.status_and_type();
    let mut resp = json(
        status,
        &Body {
            message: err.message(),
        },
        request_id,
    );
    if let Ok(v) = HeaderValue::from_str(kind) {
        resp.headers_mut().insert("x-amzn-errortype", v);
    }
    resp
}

fn json<T: Serialize>(status: u16, value: &T, request_id: &str) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_else(|e| {
        tracing::error!(error = %e, "serialize API Gateway response");
        br#"{"message":"Internal server error"}"#.to_vec()
    });
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    set_request_id(&mut resp, request_id);
    resp
}

fn set_request_id(resp: &mut Response, request_id: &str) {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
}
