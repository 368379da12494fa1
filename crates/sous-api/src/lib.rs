//! The control-plane HTTP API of Sous: the Lambda API, and the other AWS control planes
//! Sous serves on the same address (API Gateway v2's HTTP APIs, EventBridge's scheduled
//! rules). Every service has the same layout, parse → command → execute → render:
//!
//! 1. entry (this file): give the request its id (the `x-amzn-RequestId` of the answer and
//!    the `request_id` of its log span) and tell the service apart ([`protocol::identify`]);
//!    a request for a service Sous does not serve is answered there, in its protocol;
//! 2. transport: read the body once, within the operation's size limit
//!    ([`protocol::body`]), and authenticate it with SigV4 ([`sigv4`]) for the service;
//! 3. routes: parse it into one typed command ([`routes::Command`], [`apigw::Command`],
//!    [`eventbridge::Command`]);
//! 4. service: execute the command against the store and the invoker ([`service`],
//!    [`apigw`]'s and [`eventbridge`]'s `service` modules), one function per command; the
//!    store's blocking calls run on Tokio's blocking pool, never on an async worker
//!    (`blocking.rs`);
//! 5. render: the reply, or the error, in the service's protocol: [`error`] for Lambda,
//!    `apigw::error`, `eventbridge::error`, each through its protocol's one writer
//!    ([`protocol::rest_json`], [`protocol::aws_json`]).
//!
//! Sous's own failures never reach a client: they are [`error::InternalError`]s, answered
//! with the protocol's internal error naming only the request id, and logged once, at ERROR,
//! with their source chain (docs/ERROR-HANDLING.md). The code download route of
//! GetFunction's `Code.Location` ([`code_url`]) is the one route without SigV4: its
//! presigned query is its authentication.

pub mod apigw;
mod blocking;
pub mod code_url;
pub mod error;
pub mod eventbridge;
pub mod function_urls;
pub mod protocol;
pub mod routes;
pub mod s3_code;
pub mod service;
pub use service::resume_pending_creations;
pub use sous_types::sigv4;

use std::future::Future;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http::request::Parts;
use http::{header, HeaderValue, StatusCode};
use serde::Serialize;
use sous_invoke::{InvokeResponse, Invoker};
use sous_store::Store;
use sous_types::names::Scope;
use sous_types::{ErrorCode, LambdaError};
use time::OffsetDateTime;
use tracing::Instrument;

use crate::error::{error_response, ApiError};
use crate::protocol::body::{self, BodyError};
use crate::protocol::{new_request_id, put_header, rest_json, set_request_id, Service};
use crate::routes::Command;
use crate::service::Reply;

/// Bodies above this size are authenticated and parsed on a blocking thread, so hashing a
/// 50 MB upload never stalls the async workers that serve invocations.
const INLINE_BODY_MAX: usize = 256 * 1024;

/// Everything the API needs to serve requests.
pub struct ApiState {
    pub store: Arc<Store>,
    pub invoker: Arc<Invoker>,
    pub scope: Scope,
    pub credentials: sigv4::Credentials,
    /// e.g. "http://127.0.0.1:3001": base of Code.Location URLs
    pub public_url: String,
    /// e.g. "http://127.0.0.1:3000": base of function URLs and HTTP API endpoints
    pub gateway_url: String,
    /// `--schedule-seconds`: PutRule accepts `rate(N second(s))` (development and tests).
    pub schedule_seconds: bool,
    /// Where code given as `S3Bucket`/`S3Key` comes from (`--service-endpoint s3=URL`);
    /// `None`: no S3 endpoint, such code is refused.
    pub s3_code: Option<s3_code::S3Code>,
}

/// The control-plane router: every operation of every service, plus the code download route.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/_sous/code/{file}", get(download_code))
        .fallback(handle)
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Serve the API on `listener` under the connection `limits` until `shutdown` resolves,
/// then finish in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<ApiState>,
    limits: sous_http::Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    sous_http::serve(listener, router(state), limits, "api", shutdown).await
}

/// Every request: its id and span, then the service it is for.
async fn handle(State(state): State<Arc<ApiState>>, req: Request) -> Response {
    let now = OffsetDateTime::now_utc();
    let (parts, body) = req.into_parts();
    let request_id = new_request_id();
    let service = protocol::identify(&parts);
    let span = tracing::info_span!(
        "api",
        request_id = %request_id,
        service = %service.name(),
        op = tracing::field::Empty,
        function = tracing::field::Empty,
    );
    async move {
        match service {
            Service::Lambda => lambda(&state, parts, body, now, &request_id).await,
            Service::ApiGatewayV2 => apigw::handle(&state, parts, body, now, &request_id).await,
            Service::Events => eventbridge::handle(&state, parts, body, now, &request_id).await,
            Service::Unserved(u) => protocol::unserved(&u, &request_id),
        }
    }
    .instrument(span)
    .await
}

/// Name the operation (and the function, if any) in the request's span.
fn record_operation(op: &'static str, function: Option<&str>) {
    let span = tracing::Span::current();
    span.record("op", tracing::field::display(op));
    if let Some(f) = function {
        span.record("function", tracing::field::display(f));
    }
}

/// A Lambda API request: read, authenticate, parse, execute, answer.
async fn lambda(
    state: &Arc<ApiState>,
    parts: Parts,
    body: Body,
    now: OffsetDateTime,
    request_id: &str,
) -> Response {
    let (limit, operation) = routes::body_limit(&parts.method, parts.uri.path());
    let body = match body::read(body, &parts.headers, limit).await {
        Ok(b) => b,
        Err(e) if e.is_too_slow() => return body_too_slow(&e, request_id),
        Err(e) => return error_response(&body_error(e, limit, operation).into(), request_id),
    };
    let parsed = if body.len() <= INLINE_BODY_MAX {
        authenticate_and_parse(state, &parts, body, now).map_err(ApiError::from)
    } else {
        let st = state.clone();
        match tokio::task::spawn_blocking(move || authenticate_and_parse(&st, &parts, body, now))
            .await
        {
            Ok(parsed) => parsed.map_err(ApiError::from),
            Err(e) => Err(ApiError::internal("authenticate and parse the request", e)),
        }
    };
    let cmd = match parsed {
        Ok(cmd) => cmd,
        Err(e) => return error_response(&e, request_id),
    };
    record_operation(cmd.operation(), cmd.function_name());
    match service::execute(state, cmd, now, request_id).await {
        Ok(reply) => reply_response(reply, request_id),
        Err(e) => error_response(&e, request_id),
    }
}

fn authenticate_and_parse(
    state: &ApiState,
    parts: &Parts,
    body: Bytes,
    now: OffsetDateTime,
) -> Result<Command, LambdaError> {
    let signed = sigv4::SignedRequest::from_parts(parts, &body);
    sigv4::verify(&signed, &state.credentials, protocol::LAMBDA, now)?;
    routes::parse(
        &parts.method,
        parts.uri.path(),
        parts.uri.query(),
        &parts.headers,
        body,
        &state.scope,
    )
}

/// A body that could not be read, in Lambda's terms.
fn body_error(e: BodyError, limit: usize, operation: &str) -> LambdaError {
    match e {
        BodyError::TooLarge { .. } => routes::too_large(limit, operation),
        BodyError::Broken(cause) => LambdaError::new(
            ErrorCode::SerializationException,
            format!("Could not read the request body: {cause}"),
        ),
    }
}

/// A body that did not arrive at the minimum rate. Lambda's model has no error for this (its
/// front end's own timeouts are not documented), so the answer is HTTP's 408 in the Lambda
/// error shape; the connection is closed after it.
fn body_too_slow(e: &BodyError, request_id: &str) -> Response {
    let message = match e {
        BodyError::Broken(cause) => format!("Request timed out: {cause}"),
        BodyError::TooLarge { .. } => "Request timed out".to_string(),
    };
    tracing::debug!(request_id, %message, "request refused");
    rest_json::error(
        StatusCode::REQUEST_TIMEOUT.as_u16(),
        "RequestTimeoutException",
        &serde_json::json!({ "Type": "User", "message": message }),
        request_id,
    )
}

fn reply_response(reply: Reply, request_id: &str) -> Response {
    match reply {
        Reply::Function { status, config } => json_response(status, &config, request_id),
        Reply::GetFunction(out) => json_response(200, &out, request_id),
        Reply::ListFunctions(out) => json_response(200, &out, request_id),
        Reply::AccountSettings(out) => json_response(200, &out, request_id),
        Reply::NoContent => rest_json::empty(StatusCode::NO_CONTENT, request_id),
        Reply::Invoke(out) => invoke_response(out),
        Reply::Alias { status, alias } => json_response(status, &alias, request_id),
        Reply::ListVersions(out) => json_response(200, &out, request_id),
        Reply::ListAliases(out) => json_response(200, &out, request_id),
        Reply::Concurrency(out) => json_response(200, &out, request_id),
        Reply::Provisioned { status, config } => json_response(status, &config, request_id),
        Reply::ListProvisioned(out) => json_response(200, &out, request_id),
        Reply::EventInvokeConfig(out) => json_response(200, &out, request_id),
        Reply::ListEventInvokeConfigs(out) => json_response(200, &out, request_id),
        Reply::Status(out) => json_response(200, &out, request_id),
        Reply::FunctionUrl { status, config } => json_response(status, &config, request_id),
        Reply::ListFunctionUrls(out) => json_response(200, &out, request_id),
        Reply::Json { status, body } => json_response(status, &body, request_id),
    }
}

fn json_response<T: Serialize>(status: u16, value: &T, request_id: &str) -> Response {
    rest_json::json(status, value, request_id).unwrap_or_else(|e| {
        error_response(&ApiError::internal("serialize the response", e), request_id)
    })
}

fn invoke_response(out: InvokeResponse) -> Response {
    let mut resp = Response::new(Body::from(out.payload));
    *resp.status_mut() = StatusCode::from_u16(out.status).unwrap_or(StatusCode::OK);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    set_request_id(h, &out.request_id);
    put_header(h, "x-amz-executed-version", &out.executed_version);
    if let Some(fe) = &out.function_error {
        put_header(h, "x-amz-function-error", fe);
    }
    if let Some(log) = &out.log_result {
        put_header(h, "x-amz-log-result", log);
    }
    resp
}

/// `GET /_sous/code/{sha256}.zip?expires=..&signature=..`: the zip behind GetFunction's
/// `Code.Location`.
async fn download_code(
    State(state): State<Arc<ApiState>>,
    Path(file): Path<String>,
    req: Request,
) -> Response {
    let request_id = new_request_id();
    let span = tracing::info_span!("code_download", request_id = %request_id);
    let query = req.uri().query().unwrap_or("").to_string();
    serve_code(&state, &file, &query, &request_id)
        .instrument(span)
        .await
}

async fn serve_code(state: &ApiState, file: &str, query: &str, request_id: &str) -> Response {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let hex = match code_url::verify(file, query, &state.credentials.secret_access_key, now) {
        Ok(hex) => hex,
        Err(refusal) => {
            let text = match refusal {
                code_url::Refusal::Expired => "AccessDenied: Request has expired",
                code_url::Refusal::Malformed | code_url::Refusal::BadSignature => {
                    "AccessDenied: The request signature is missing or does not match"
                }
            };
            return plain(StatusCode::FORBIDDEN, text, request_id);
        }
    };
    match tokio::fs::read(state.store.code().zip_path(hex)).await {
        Ok(bytes) => {
            let mut resp = Response::new(Body::from(bytes));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/zip"),
            );
            set_request_id(resp.headers_mut(), request_id);
            resp
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => plain(
            StatusCode::NOT_FOUND,
            "NoSuchKey: The specified key does not exist.",
            request_id,
        ),
        Err(e) => {
            error::InternalError::new(format!("read the code zip {hex} for download"), e)
                .report(request_id);
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                request_id,
            )
        }
    }
}

fn plain(status: StatusCode, text: &'static str, request_id: &str) -> Response {
    let mut resp = Response::new(Body::from(text));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    set_request_id(resp.headers_mut(), request_id);
    resp
}

#[cfg(test)]
mod tests;
