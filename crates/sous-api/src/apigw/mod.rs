//! API Gateway v2 (HTTP APIs) control plane: the subset `aws apigatewayv2` and boto3 use to
//! define routes to functions, on the API address under `/v2/`.
//!
//! The same layout as the Lambda API, in this service's own wire format (rest-json with
//! lowerCamelCase members, errors as `x-amzn-ErrorType` + `{"message": ...}`):
//! 1. transport (this file): read the body within [`BODY_LIMIT`] with the shared reader,
//!    SigV4 for service `apigateway`;
//! 2. [`routes`]: method + path + body → one [`Command`];
//! 3. [`service`]: execute it against the store (all decisions), on the blocking pool;
//! 4. [`error`]: an [`ApigwError`] → API Gateway's error response, there and nowhere else.
//!
//! The gateway (`sous_events::routing`) reads what this control plane stores; every write
//! changes the API's revision, so the next request sees it.

mod error;
mod routes;
mod service;

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::request::Parts;
use http::StatusCode;
use time::OffsetDateTime;
use tracing::Instrument;

use crate::error::InternalError;
use crate::protocol::{self, body, rest_json};
use crate::{sigv4, ApiState};

pub use error::{error_response, ApigwError};
pub use routes::{parse, Command};

/// Largest request body accepted (API definitions are small).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// What a successful operation answers.
#[derive(Debug)]
pub enum Reply {
    /// A JSON document with this status (201 for Create*, 200 otherwise).
    Json(u16, serde_json::Value),
    /// 204, empty body (Delete*).
    NoContent,
}

/// Serve one API Gateway v2 request: read, authenticate, parse, execute, answer.
pub async fn handle(
    state: &Arc<ApiState>,
    parts: Parts,
    body: Body,
    now: OffsetDateTime,
    request_id: &str,
) -> Response {
    let body = match body::read(body, &parts.headers, BODY_LIMIT).await {
        Ok(b) => b,
        Err(e) => return error_response(&e.into(), request_id),
    };
    let cmd = match authenticate_and_parse(state, &parts, &body, now) {
        Ok(cmd) => cmd,
        Err(e) => return error_response(&e, request_id),
    };
    crate::record_operation(cmd.operation(), None);
    let span = tracing::info_span!("apigw", api_id = cmd.api_id());
    async move {
        let executed =
            crate::blocking::on_pool(state, move |st| service::execute(st, cmd, now)).await;
        match executed {
            Ok(reply) => reply_response(reply, request_id),
            Err(e) => error_response(&e, request_id),
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
    sigv4::verify(&signed, &state.credentials, protocol::APIGATEWAY, now)
        .map_err(ApigwError::Auth)?;
    routes::parse(&parts.method, parts.uri.path(), body)
}

fn reply_response(reply: Reply, request_id: &str) -> Response {
    match reply {
        Reply::Json(status, value) => {
            rest_json::json(status, &value, request_id).unwrap_or_else(|e| {
                let e = InternalError::new("serialize the API Gateway response", e);
                error_response(&e.into(), request_id)
            })
        }
        Reply::NoContent => rest_json::empty(StatusCode::NO_CONTENT, request_id),
    }
}
