//! API Gateway v2's errors, and the one place they become responses: rest-json with
//! `x-amzn-ErrorType: <type>` and `{"message": ...}`, as the service sends them.

use axum::response::Response;
use sous_types::LambdaError;

use crate::error::{internal_message, InternalError};
use crate::protocol::body::BodyError;
use crate::protocol::rest_json;

/// An API Gateway error, as the service names it (`x-amzn-ErrorType`).
#[derive(Debug, thiserror::Error)]
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
    /// Sous's own fault: 500 InternalServerErrorException naming only the request id; the
    /// cause goes to the log.
    #[error(transparent)]
    Internal(#[from] InternalError),
}

impl From<sous_store::StoreError> for ApigwError {
    fn from(e: sous_store::StoreError) -> Self {
        ApigwError::Internal(InternalError::new("use the HTTP API store", e))
    }
}

impl From<BodyError> for ApigwError {
    /// The caller's body could not be read: 400, as before the one body reader.
    fn from(e: BodyError) -> Self {
        let why = match e {
            BodyError::TooLarge { .. } => "length limit exceeded".to_string(),
            BodyError::Broken(cause) => cause.to_string(),
        };
        ApigwError::BadRequest(format!("Could not read the request body: {why}"))
    }
}

/// API Gateway's error wire format: status, `x-amzn-ErrorType` (which botocore's rest-json
/// parser reads first for the error code) and `{"message": "..."}`.
pub fn error_response(err: &ApigwError, request_id: &str) -> Response {
    let (status, kind, message) = match err {
        ApigwError::NotFound(m) => (404, "NotFoundException", m.clone()),
        ApigwError::BadRequest(m) => (400, "BadRequestException", m.clone()),
        ApigwError::Conflict(m) => (409, "ConflictException", m.clone()),
        ApigwError::Auth(e) => (e.code.status(), e.code.as_str(), e.message.clone()),
        ApigwError::Internal(e) => {
            e.report(request_id);
            (
                500,
                "InternalServerErrorException",
                internal_message(request_id),
            )
        }
    };
    if status < 500 {
        tracing::debug!(code = kind, %message, "request refused");
    }
    rest_json::error(
        status,
        kind,
        &serde_json::json!({ "message": message }),
        request_id,
    )
}
