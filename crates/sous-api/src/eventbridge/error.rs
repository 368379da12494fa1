//! EventBridge's errors, and the one place they become responses: AWS JSON 1.1,
//! HTTP 400 (500 for InternalException) with `{"__type": ..., "message": ...}`.

use axum::response::Response;
use sous_types::LambdaError;

use super::DEFAULT_BUS;
use crate::error::{internal_message, InternalError};
use crate::protocol::aws_json;
use crate::protocol::body::BodyError;

/// A refusal, as AWS JSON 1.1 sends it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct EventsError {
    /// `__type`: ValidationException, ResourceNotFoundException, ...
    pub kind: String,
    pub status: u16,
    pub message: String,
}

impl EventsError {
    pub(super) fn new(kind: &str, status: u16, message: impl Into<String>) -> Self {
        Self {
            kind: kind.to_string(),
            status,
            message: message.into(),
        }
    }
    pub(super) fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationException", 400, message)
    }
    pub(super) fn rule_not_found(name: &str) -> Self {
        Self::new(
            "ResourceNotFoundException",
            400,
            format!("Rule {name} does not exist on EventBus {DEFAULT_BUS}."),
        )
    }
}

impl From<LambdaError> for EventsError {
    /// Authentication and model-constraint errors shared with the Lambda API.
    fn from(e: LambdaError) -> Self {
        Self::new(e.code.as_str(), e.code.status(), e.message)
    }
}

impl From<BodyError> for EventsError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge { limit } => EventsError::new(
                "ValidationException",
                413,
                format!("Request body is larger than {limit} bytes."),
            ),
            BodyError::Broken(cause) => EventsError::new(
                "SerializationException",
                400,
                format!("Could not read the request body: {cause}"),
            ),
        }
    }
}

/// Why an EventBridge request failed: refused, or Sous's own failure.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Refused(#[from] EventsError),
    /// 500 InternalException naming only the request id; the cause goes to the log.
    #[error(transparent)]
    Internal(#[from] InternalError),
}

impl From<sous_store::StoreError> for ServiceError {
    fn from(e: sous_store::StoreError) -> Self {
        ServiceError::Internal(InternalError::new("use the rules store", e))
    }
}

/// `{"__type": ..., "message": ...}` with the error's status.
pub fn error_response(e: &ServiceError, request_id: &str) -> Response {
    match e {
        ServiceError::Refused(e) => {
            tracing::debug!(code = %e.kind, message = %e.message, "request refused");
            aws_json::error(
                e.status,
                &e.kind,
                &e.message,
                request_id,
                aws_json::CONTENT_TYPE_1_1,
            )
        }
        ServiceError::Internal(e) => {
            e.report(request_id);
            aws_json::error(
                500,
                "InternalException",
                &internal_message(request_id),
                request_id,
                aws_json::CONTENT_TYPE_1_1,
            )
        }
    }
}
