//! How a request fails, for every service on the API address, and how the Lambda API renders
//! it (docs/ERROR-HANDLING.md states the convention):
//!
//! - a refusal ([`ApiError::Refused`]) is the caller's: the client gets the [`LambdaError`]
//!   (its code's status, `x-amzn-ErrorType`, the model's JSON body), logged at DEBUG;
//! - Sous's own failure ([`InternalError`]) keeps its whole `source()` chain and is never
//!   shown to the client: the client gets `ServiceException` (500) with a message naming only
//!   the request id, and the chain goes to the log once, at ERROR, in the request's span
//!   (which carries the request id) — by [`InternalError::report`], called only by the
//!   protocols' renderers.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;

use axum::response::Response;
use sous_store::{CodeError, StoreError};
use sous_types::{ErrorCode, LambdaError};

use crate::protocol::rest_json;

/// Any error, kept with its sources.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A failure of Sous itself while serving a request: what it was doing (an action, e.g.
/// "read the alias from the metadata store") and why.
#[derive(Debug, thiserror::Error)]
#[error("{action}")]
pub struct InternalError {
    action: Cow<'static, str>,
    #[source]
    source: BoxError,
}

impl InternalError {
    pub fn new(action: impl Into<Cow<'static, str>>, source: impl Into<BoxError>) -> Self {
        Self {
            action: action.into(),
            source: source.into(),
        }
    }

    /// Log the failure, with its whole source chain, once, at ERROR. Called by the renderers
    /// only, inside the request's span (which names the request id).
    pub fn report(&self, request_id: &str) {
        tracing::error!(request_id, error = %Chain(self), "internal error; the client got only the request id");
    }
}

/// The message a client gets for an internal error: the request id, nothing else.
pub fn internal_message(request_id: &str) -> String {
    format!("An internal error occurred. Request ID: {request_id}")
}

/// An error and its sources, `action: cause: cause ...`, for the log. A source whose text
/// its parent's message already ends with (an error that prints its source and also returns
/// it from `source()`) is not repeated.
pub struct Chain<'a>(pub &'a (dyn StdError + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parent = self.0.to_string();
        f.write_str(&parent)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            let text = e.to_string();
            if !parent.ends_with(&text) {
                write!(f, ": {text}")?;
            }
            parent = text;
            next = e.source();
        }
        Ok(())
    }
}

/// Why a Lambda API request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is refused in Lambda's terms; the client sees this error.
    #[error(transparent)]
    Refused(LambdaError),
    /// Sous failed; the client sees only `ServiceException` and the request id.
    #[error(transparent)]
    Internal(#[from] InternalError),
}

impl ApiError {
    pub fn internal(action: impl Into<Cow<'static, str>>, source: impl Into<BoxError>) -> Self {
        ApiError::Internal(InternalError::new(action, source))
    }
}

impl From<LambdaError> for ApiError {
    /// A `ServiceException` from another crate (the invoker) is Sous's own failure, whatever
    /// its message says: it goes the internal path, so its text reaches only the log.
    fn from(e: LambdaError) -> Self {
        if e.code == ErrorCode::ServiceException {
            ApiError::internal("run the operation", e)
        } else {
            ApiError::Refused(e)
        }
    }
}

impl From<CodeError> for ApiError {
    /// Bad packages are the caller's (Lambda's InvalidParameterValueException and friends);
    /// a failure of the code store itself is internal.
    fn from(e: CodeError) -> Self {
        let refusal = e.to_lambda_error();
        if refusal.code == ErrorCode::ServiceException {
            ApiError::internal("store the code package", e)
        } else {
            ApiError::Refused(refusal)
        }
    }
}

/// Map a store failure; `what` is the ARN (for not-found and conflicts) or the operation.
pub fn store_error(e: StoreError, what: &str) -> ApiError {
    match e {
        StoreError::Exists => ApiError::Refused(LambdaError::conflict(format!(
            "Resource already exists: {what}"
        ))),
        StoreError::NotFound => ApiError::Refused(LambdaError::function_not_found(what)),
        StoreError::RevisionMismatch => ApiError::Refused(precondition_failed()),
        StoreError::Code(c) => c.into(),
        other => ApiError::internal(format!("use the metadata store for {what}"), other),
    }
}

/// Lambda's answer to a stale `RevisionId`.
pub fn precondition_failed() -> LambdaError {
    LambdaError::new(
        ErrorCode::PreconditionFailedException,
        "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
    )
}

/// The Lambda API's error response, as AWS sends it: the code's status,
/// `x-amzn-ErrorType: <Code>`, `x-amzn-RequestId`, and a JSON body with the message member
/// cased as botocore's model spells it for that code.
pub fn error_response(err: &ApiError, request_id: &str) -> Response {
    match err {
        ApiError::Refused(e) if e.code != ErrorCode::ServiceException => {
            tracing::debug!(code = e.code.as_str(), message = %e.message, request_id, "request refused");
            rest_json::error(e.code.status(), e.code.as_str(), &e.body(), request_id)
        }
        // A ServiceException built by hand is internal too: its text stays in the log.
        ApiError::Refused(e) => {
            InternalError::new("run the operation", e.clone()).report(request_id);
            service_exception(request_id)
        }
        ApiError::Internal(e) => {
            e.report(request_id);
            service_exception(request_id)
        }
    }
}

fn service_exception(request_id: &str) -> Response {
    let e = LambdaError::service(internal_message(request_id));
    rest_json::error(e.code.status(), e.code.as_str(), &e.body(), request_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn renders_as_aws() {
        let resp = error_response(&LambdaError::function_not_found("arn:x").into(), "rid");
        assert_eq!(resp.status(), 404);
        assert_eq!(
            resp.headers()["x-amzn-ErrorType"],
            "ResourceNotFoundException"
        );
        assert_eq!(resp.headers()["x-amzn-RequestId"], "rid");
        assert_eq!(resp.headers()["content-type"], "application/json");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["Message"], "Function not found: arn:x");
        assert_eq!(v["Type"], "User");

        let resp = error_response(
            &LambdaError::new(ErrorCode::RequestEntityTooLargeException, "big").into(),
            "r",
        );
        assert_eq!(resp.status(), 413);
        assert_eq!(
            resp.headers()["x-amzn-ErrorType"],
            "RequestEntityTooLargeException"
        );
    }

    #[tokio::test]
    async fn internal_errors_show_only_the_request_id() {
        let io = std::io::Error::other("disk I/O error at /var/lib/sous/sous.db");
        for err in [
            ApiError::internal("read the function", io),
            LambdaError::service("load function f: sqlite: no such table").into(),
            ApiError::Refused(LambdaError::service("/secret/path")),
        ] {
            let resp = error_response(&err, "rid-1");
            assert_eq!(resp.status(), 500);
            assert_eq!(resp.headers()["x-amzn-ErrorType"], "ServiceException");
            assert_eq!(resp.headers()["x-amzn-RequestId"], "rid-1");
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(
                v,
                serde_json::json!({
                    "Type": "Service",
                    "Message": "An internal error occurred. Request ID: rid-1"
                })
            );
        }
    }

    #[test]
    fn chains_keep_every_source() {
        let store = StoreError::Corrupt("bad json".into());
        let e = InternalError::new("read the alias", store);
        assert_eq!(
            Chain(&e).to_string(),
            "read the alias: corrupt metadata: bad json"
        );
        let io = std::io::Error::other("disk full");
        let code = CodeError::Io {
            context: "write blob".into(),
            source: io,
        };
        let e = InternalError::new("store the code package", StoreError::Code(code));
        assert_eq!(
            Chain(&e).to_string(),
            "store the code package: code store: write blob: disk full"
        );
    }
}
