//! The Lambda control-plane HTTP API of Sous.
//!
//! A request flows through four stages, each in its own module:
//! 1. transport (this file): read the body once, within the operation's size limit;
//! 2. [`sigv4`]: authenticate it against the admin key pair, on the raw path, query and body;
//! 3. [`routes`]: parse it into one typed [`routes::Command`];
//! 4. [`service`]: execute the command against the store and the invoker.
//!
//! Errors from any stage become AWS's wire format in [`error`], and nowhere else. The code
//! download route of GetFunction's `Code.Location` ([`code_url`]) is the one route without
//! SigV4: its presigned query is its authentication.
//!
//! Two other AWS control planes share the address, as far as Sous needs them, each in its
//! own module with its own wire format and errors: [`apigw`] (API Gateway v2's HTTP APIs,
//! paths under `/v2/`) and [`eventbridge`] (scheduled rules, AWS JSON 1.1 with
//! `X-Amz-Target: AWSEvents.*`).

pub mod apigw;
pub mod code_url;
pub mod error;
pub mod eventbridge;
pub mod function_urls;
pub mod routes;
pub mod service;
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
use http::{header, HeaderMap, HeaderValue, StatusCode};
use http_body_util::BodyExt;
use serde::Serialize;
use sous_invoke::{InvokeResponse, Invoker};
use sous_store::Store;
use sous_types::names::Scope;
use sous_types::{ErrorCode, LambdaError};
use time::OffsetDateTime;
use tracing::Instrument;

use crate::error::error_response;
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
}

/// The control-plane router: every Lambda operation, plus the code download route.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/_sous/code/{file}", get(download_code))
        .fallback(handle)
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Serve the API on `listener` until `shutdown` resolves, then finish in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<ApiState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "set TCP_NODELAY");
        }
    });
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Every Lambda operation: read, authenticate, parse, execute, answer.
async fn handle(State(state): State<Arc<ApiState>>, req: Request) -> Response {
    let now = OffsetDateTime::now_utc();
    let (parts, body) = req.into_parts();
    if apigw::handles(&parts) {
        return apigw::handle(&state, parts, body, now).await;
    }
    if eventbridge::handles(&parts) {
        return eventbridge::handle(&state, parts, body, now).await;
    }
    let (limit, operation) = routes::body_limit(&parts.method, parts.uri.path());
    let body = match read_body(body, &parts.headers, limit).await {
        Ok(b) => b,
        Err(e) => return error_response(&e.into_lambda_error(limit, operation), &new_request_id()),
    };
    let parsed = if body.len() <= INLINE_BODY_MAX {
        authenticate_and_parse(&state, &parts, body, now)
    } else {
        let st = state.clone();
        tokio::task::spawn_blocking(move || authenticate_and_parse(&st, &parts, body, now))
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "request parsing task failed");
                Err(LambdaError::service("internal error"))
            })
    };
    let cmd = match parsed {
        Ok(cmd) => cmd,
        Err(e) => return error_response(&e, &new_request_id()),
    };
    let span = tracing::info_span!(
        "api",
        op = cmd.operation(),
        function = cmd.function_name().unwrap_or("")
    );
    async move {
        match service::execute(&state, cmd, now).await {
            Ok(reply) => reply_response(reply),
            Err(e) => error_response(&e, &new_request_id()),
        }
    }
    .instrument(span)
    .await
}

fn authenticate_and_parse(
    state: &ApiState,
    parts: &Parts,
    body: Bytes,
    now: OffsetDateTime,
) -> Result<Command, LambdaError> {
    let signed = sigv4::SignedRequest::from_parts(parts, &body);
    sigv4::verify(&signed, &state.credentials, "lambda", now)?;
    routes::parse(
        &parts.method,
        parts.uri.path(),
        parts.uri.query(),
        &parts.headers,
        body,
        &state.scope,
    )
}

enum ReadError {
    TooLarge,
    Broken(String),
}

impl ReadError {
    fn into_lambda_error(self, limit: usize, operation: &str) -> LambdaError {
        match self {
            ReadError::TooLarge => routes::too_large(limit, operation),
            ReadError::Broken(e) => LambdaError::new(
                ErrorCode::SerializationException,
                format!("Could not read the request body: {e}"),
            ),
        }
    }
}

/// Read the whole body, refusing more than `limit` bytes (up front when Content-Length says so).
async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, ReadError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        discard(body).await;
        return Err(ReadError::TooLarge);
    }
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ReadError::Broken(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                discard(body).await;
                return Err(ReadError::TooLarge);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// Read and drop what is left of an oversized body (up to a bound), so a client that is
/// still uploading receives the 413 instead of a reset connection.
async fn discard(mut body: Body) {
    const DISCARD_MAX: usize = 256 * 1024 * 1024;
    let mut seen = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen > DISCARD_MAX {
                break;
            }
        }
    }
}

fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn reply_response(reply: Reply) -> Response {
    match reply {
        Reply::Function { status, config } => json_response(status, &config),
        Reply::GetFunction(out) => json_response(200, &out),
        Reply::ListFunctions(out) => json_response(200, &out),
        Reply::AccountSettings(out) => json_response(200, &out),
        Reply::NoContent => {
            let mut resp = Response::new(Body::empty());
            *resp.status_mut() = StatusCode::NO_CONTENT;
            set_request_id(resp.headers_mut(), &new_request_id());
            resp
        }
        Reply::Invoke(out) => invoke_response(out),
        Reply::Alias { status, alias } => json_response(status, &alias),
        Reply::ListVersions(out) => json_response(200, &out),
        Reply::ListAliases(out) => json_response(200, &out),
        Reply::Concurrency(out) => json_response(200, &out),
        Reply::Provisioned { status, config } => json_response(status, &config),
        Reply::ListProvisioned(out) => json_response(200, &out),
        Reply::EventInvokeConfig(out) => json_response(200, &out),
        Reply::ListEventInvokeConfigs(out) => json_response(200, &out),
        Reply::Status(out) => json_response(200, &out),
        Reply::FunctionUrl { status, config } => json_response(status, &config),
        Reply::ListFunctionUrls(out) => json_response(200, &out),
    }
}

fn json_response<T: Serialize>(status: u16, value: &T) -> Response {
    let body = match serde_json::to_vec(value) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "serialize response");
            return error_response(&LambdaError::service("internal error"), &new_request_id());
        }
    };
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    set_request_id(resp.headers_mut(), &new_request_id());
    resp
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

fn set_request_id(h: &mut HeaderMap, id: &str) {
    put_header(h, "x-amzn-requestid", id);
}

fn put_header(h: &mut HeaderMap, name: &'static str, value: &str) {
    match HeaderValue::from_str(value) {
        Ok(v) => {
            h.insert(name, v);
        }
        Err(_) => tracing::warn!(
            header = name,
            "dropped a response header that is not valid HTTP"
        ),
    }
}

/// `GET /_sous/code/{sha256}.zip?expires=..&signature=..`: the zip behind GetFunction's
/// `Code.Location`.
async fn download_code(
    State(state): State<Arc<ApiState>>,
    Path(file): Path<String>,
    req: Request,
) -> Response {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let query = req.uri().query().unwrap_or("");
    let hex = match code_url::verify(&file, query, &state.credentials.secret_access_key, now) {
        Ok(hex) => hex,
        Err(refusal) => {
            let text = match refusal {
                code_url::Refusal::Expired => "AccessDenied: Request has expired",
                code_url::Refusal::Malformed | code_url::Refusal::BadSignature => {
                    "AccessDenied: The request signature is missing or does not match"
                }
            };
            return plain(StatusCode::FORBIDDEN, text);
        }
    };
    match tokio::fs::read(state.store.code().zip_path(hex)).await {
        Ok(bytes) => {
            let mut resp = Response::new(Body::from(bytes));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/zip"),
            );
            set_request_id(resp.headers_mut(), &new_request_id());
            resp
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => plain(
            StatusCode::NOT_FOUND,
            "NoSuchKey: The specified key does not exist.",
        ),
        Err(e) => {
            tracing::error!(error = %e, code = hex, "read code zip for download");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "InternalError")
        }
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    let mut resp = Response::new(Body::from(text));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    set_request_id(resp.headers_mut(), &new_request_id());
    resp
}

#[cfg(test)]
mod tests;
