//! EventBridge control plane for scheduled rules, the subset `aws events` and boto3 use for
//! them: AWS JSON 1.1 (`POST /`, `X-Amz-Target: AWSEvents.<Operation>`, SigV4 for service
//! `events`). Operations: PutRule, DescribeRule, ListRules, EnableRule, DisableRule,
//! DeleteRule, PutTargets, ListTargetsByRule, RemoveTargets, on the default event bus only.
//!
//! The same layout as the Lambda API:
//! 1. transport (this file): read the body with the shared reader, SigV4 for `events`;
//! 2. [`routes`]: the target header and JSON body → one [`Command`] (shape errors:
//!    SerializationException; model constraints: ValidationException);
//! 3. [`service`]: run it against the store's rules (`sous_store::rules`), on the blocking
//!    pool;
//! 4. [`error`]: an error → AWS JSON 1.1's error response, there and nowhere else.
//!
//! Rules fire from the scheduler in `sous-events`, which reads the store: a change made here
//! takes effect within its one-second poll.

mod error;
mod routes;
mod service;

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::request::Parts;
use time::OffsetDateTime;

use crate::protocol::{self, aws_json, body};
use crate::{sigv4, ApiState};

pub use error::{error_response, EventsError, ServiceError};
pub use routes::{parse, Command, PutRuleInput, TargetInput};
pub use service::{execute, parse_function_arn, rule_arn};

/// Largest request body accepted (PutTargets with 100 targets and their inputs fits).
const BODY_LIMIT: usize = 1024 * 1024;
/// The only event bus: scheduled rules live on it.
const DEFAULT_BUS: &str = "default";

/// Serve one EventBridge request: read, authenticate, parse, execute, answer.
pub async fn handle(
    state: &Arc<ApiState>,
    parts: Parts,
    body: Body,
    now: OffsetDateTime,
    request_id: &str,
) -> Response {
    let result = async {
        let body = body::read(body, &parts.headers, BODY_LIMIT)
            .await
            .map_err(EventsError::from)?;
        let signed = sigv4::SignedRequest::from_parts(&parts, &body);
        sigv4::verify(&signed, &state.credentials, protocol::EVENTS, now)
            .map_err(EventsError::from)?;
        let target = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let cmd = parse(target, &body)?;
        crate::record_operation(cmd.operation(), None);
        crate::blocking::on_pool(state, move |st| execute(st, cmd, now)).await
    }
    .await;
    match result {
        Ok(Some(value)) => aws_json::reply(
            200,
            value.to_string(),
            request_id,
            aws_json::CONTENT_TYPE_1_1,
        ),
        Ok(None) => aws_json::reply(200, String::new(), request_id, aws_json::CONTENT_TYPE_1_1),
        Err(e) => error_response(&e, request_id),
    }
}
