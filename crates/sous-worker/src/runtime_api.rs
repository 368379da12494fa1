//! The Lambda Runtime API (2018-06-01) of one execution environment.
//!
//! Each environment has its own listener, so a runtime can only ever see its own events. A
//! managed runtime's bootstrap is also given a pair of pipes ([`RuntimePipes`]) carrying the
//! same HTTP/1.1 exchange: it reads and writes them with plain blocking calls, which starts
//! faster than any socket client of its language (Node.js's `net` and streams cost about 10 ms
//! of a cold start). The server is a small state machine shared with the environment:
//!
//! ```text
//! Init ──/next──▶ Idle ──event──▶ Invoking(id) ──/response|/error──▶ Idle ...
//!   └──/init/error──▶ InitFailed
//! ```
//! Status codes and error bodies follow Lambda: 202 `{"status":"OK"}` for accepted results,
//! 400 `InvalidRequestID` for a result to another request, 403 `InvalidStateTransition` for a
//! call out of order, 413 `RequestEntityTooLarge` for a response over 6 MiB + 100 bytes.

use std::convert::Infallible;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::unix::pipe;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tracing::{debug, warn};

use sous_types::limits::SYNC_RESPONSE_MAX_BYTES;

const PREFIX: &str = "/2018-06-01/runtime/";

/// Sous's ends of a managed runtime's Runtime API pipes. [`RuntimePipes::new`] also gives the
/// runtime's ends, which stay blocking: the runtime's side is `[answers to read, requests to
/// write]`, placed at [`sous_sandbox::RUNTIME_API_FDS`].
pub struct RuntimePipes {
    requests: OwnedFd,
    answers: OwnedFd,
}

impl RuntimePipes {
    /// Sous's ends (non-blocking) and the runtime's ends.
    pub fn new() -> std::io::Result<(RuntimePipes, [OwnedFd; 2])> {
        use nix::fcntl::{fcntl, FcntlArg, OFlag};
        let p = sous_sandbox::process::RuntimeApiPipes::new()?;
        fcntl(&p.answers, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
        fcntl(&p.requests, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
        Ok((
            RuntimePipes {
                requests: p.requests,
                answers: p.answers,
            },
            p.runtime,
        ))
    }

    /// One byte stream: what the runtime writes is read, what is written goes to the runtime.
    fn into_stream(self) -> std::io::Result<impl tokio::io::AsyncRead + tokio::io::AsyncWrite> {
        let read = pipe::Receiver::from_owned_fd(self.requests)?;
        let write = pipe::Sender::from_owned_fd(self.answers)?;
        Ok(tokio::io::join(read, write))
    }
}

/// An event waiting for (or handed to) the runtime.
pub struct PendingEvent {
    pub request_id: String,
    pub payload: Bytes,
    pub deadline_ms: u64,
    pub invoked_arn: String,
    pub trace_id: String,
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
    pub reply: oneshot::Sender<RuntimeResult>,
}

/// What the runtime reported for an invocation.
#[derive(Debug)]
pub enum RuntimeResult {
    Response(Bytes),
    Error {
        error_type: Option<String>,
        body: Bytes,
    },
    ResponseTooLarge,
}

/// How the init phase ended, from the Runtime API's point of view.
#[derive(Debug)]
pub enum InitResult {
    /// The runtime asked for its first event.
    Ready,
    /// The runtime posted `/runtime/init/error`.
    Failed {
        error_type: Option<String>,
        body: Bytes,
    },
}

enum Phase {
    Init,
    Idle,
    Invoking {
        request_id: String,
        reply: oneshot::Sender<RuntimeResult>,
    },
    InitFailed,
}

struct State {
    phase: Phase,
    init_tx: Option<oneshot::Sender<InitResult>>,
    /// A parked `/next` call waiting for an event.
    parked: Option<oneshot::Sender<PendingEvent>>,
    /// An event delivered before the runtime asked for it.
    queued: Option<PendingEvent>,
}

/// The state shared between the environment and its Runtime API server.
pub struct RuntimeApi {
    state: Mutex<State>,
}

impl RuntimeApi {
    /// A new API in the init phase; `init` fires once when init ends.
    pub fn new() -> (Arc<Self>, oneshot::Receiver<InitResult>) {
        let (tx, rx) = oneshot::channel();
        let api = Arc::new(Self {
            state: Mutex::new(State {
                phase: Phase::Init,
                init_tx: Some(tx),
                parked: None,
                queued: None,
            }),
        });
        (api, rx)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state half-updated in a way that
        // matters more than losing the environment, so poisoning is ignored.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hand an event to the runtime (now if it is waiting in `/next`, else when it asks).
    pub fn deliver(&self, event: PendingEvent) {
        let mut st = self.lock();
        match st.parked.take() {
            Some(tx) => {
                if let Err(event) = tx.send(event) {
                    // The /next connection went away; keep the event for the next call.
                    st.queued = Some(event);
                }
            }
            None => st.queued = Some(event),
        }
    }

    /// Take back the event `request_id` if the runtime has not asked for it yet; `true` when
    /// it was still waiting (so it was never delivered).
    pub fn withdraw(&self, request_id: &str) -> bool {
        let mut st = self.lock();
        if st
            .queued
            .as_ref()
            .is_some_and(|e| e.request_id == request_id)
        {
            st.queued = None;
            return true;
        }
        false
    }

    /// Serve the Runtime API on `listener`, and on `pipes` when given, until the task is
    /// aborted.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, pipes: Option<RuntimePipes>) {
        if let Some(p) = pipes {
            match p.into_stream() {
                Ok(stream) => self.clone().serve_connection(stream),
                // The runtime's init then times out, with this in Sous's log.
                Err(e) => warn!(error = %e, "serve the Runtime API pipes"),
            }
        }
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            self.clone().serve_connection(stream);
        }
    }

    /// One keep-alive HTTP/1.1 connection, on its own task; it ends when the runtime closes
    /// its side.
    fn serve_connection<S>(self: Arc<Self>, stream: S)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let api = self.clone();
                async move { Ok::<_, Infallible>(api.handle(req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_string();
        let Some(rest) = path.strip_prefix(PREFIX) else {
            return not_found();
        };
        let method = req.method().clone();
        let parts: Vec<&str> = rest.split('/').collect();
        match (method.as_str(), parts.as_slice()) {
            ("GET", ["invocation", "next"]) => self.next().await,
            ("POST", ["invocation", id, "response"]) => {
                let id = id.to_string();
                match read_body(req).await {
                    Ok(body) => self.result(&id, RuntimeResult::Response(body)),
                    Err(()) => self.result(&id, RuntimeResult::ResponseTooLarge),
                }
            }
            ("POST", ["invocation", id, "error"]) => {
                let id = id.to_string();
                let error_type = error_type_header(&req);
                let body = read_body(req).await.unwrap_or_default();
                self.result(&id, RuntimeResult::Error { error_type, body })
            }
            ("POST", ["init", "error"]) => {
                let error_type = error_type_header(&req);
                let body = read_body(req).await.unwrap_or_default();
                self.init_error(error_type, body)
            }
            _ => not_found(),
        }
    }

    async fn next(&self) -> Response<Full<Bytes>> {
        let rx = {
            let mut st = self.lock();
            match st.phase {
                Phase::Init => {
                    if let Some(tx) = st.init_tx.take() {
                        let _ = tx.send(InitResult::Ready);
                    }
                    st.phase = Phase::Idle;
                }
                Phase::Idle => {}
                Phase::InitFailed => {
                    return state_error("Init", "Ready", "init already failed");
                }
                Phase::Invoking { .. } => {
                    return state_error("InvocationSent", "Ready", "a response is still owed");
                }
            }
            if let Some(event) = st.queued.take() {
                return self.send_event(&mut st, event);
            }
            let (tx, rx) = oneshot::channel();
            st.parked = Some(tx);
            rx
        };
        match rx.await {
            Ok(event) => {
                let mut st = self.lock();
                self.send_event(&mut st, event)
            }
            // The environment is being torn down.
            Err(_) => error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "the execution environment is shutting down",
            ),
        }
    }

    fn send_event(&self, st: &mut State, event: PendingEvent) -> Response<Full<Bytes>> {
        let PendingEvent {
            request_id,
            payload,
            deadline_ms,
            invoked_arn,
            trace_id,
            client_context,
            cognito_identity,
            reply,
        } = event;
        let mut resp = Response::new(Full::new(payload));
        let h = resp.headers_mut();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        insert(h, "lambda-runtime-aws-request-id", &request_id);
        insert(h, "lambda-runtime-deadline-ms", &deadline_ms.to_string());
        insert(h, "lambda-runtime-invoked-function-arn", &invoked_arn);
        insert(h, "lambda-runtime-trace-id", &trace_id);
        if let Some(cc) = &client_context {
            insert(h, "lambda-runtime-client-context", cc);
        }
        if let Some(ci) = &cognito_identity {
            insert(h, "lambda-runtime-cognito-identity", ci);
        }
        debug!(request_id = %request_id, "event sent to runtime");
        st.phase = Phase::Invoking { request_id, reply };
        resp
    }

    fn result(&self, id: &str, result: RuntimeResult) -> Response<Full<Bytes>> {
        let mut st = self.lock();
        match &st.phase {
            Phase::Invoking { request_id, .. } if request_id == id => {}
            Phase::Invoking { .. } => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestID",
                    "Invalid request ID",
                );
            }
            _ => return state_error("Ready", "ResponseSent", "no invocation is in progress"),
        }
        let Phase::Invoking { reply, .. } = std::mem::replace(&mut st.phase, Phase::Idle) else {
            unreachable!("checked above")
        };
        let too_large = matches!(result, RuntimeResult::ResponseTooLarge);
        let _ = reply.send(result);
        if too_large {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                &format!(
                    "Exceeded maximum allowed payload size ({SYNC_RESPONSE_MAX_BYTES} bytes)."
                ),
            );
        }
        accepted()
    }

    fn init_error(&self, error_type: Option<String>, body: Bytes) -> Response<Full<Bytes>> {
        let mut st = self.lock();
        if !matches!(st.phase, Phase::Init) {
            return state_error("Ready", "InitError", "init has already completed");
        }
        st.phase = Phase::InitFailed;
        if let Some(tx) = st.init_tx.take() {
            let _ = tx.send(InitResult::Failed { error_type, body });
        }
        accepted()
    }
}

fn insert(h: &mut hyper::HeaderMap, name: &'static str, value: &str) {
    // from_bytes keeps UTF-8 (a client context may carry any JSON text).
    if let Ok(v) = HeaderValue::from_bytes(value.as_bytes()) {
        h.insert(name, v);
    }
}

fn error_type_header(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Read a request body of at most 6 MiB + 100 bytes; `Err` when it is larger.
async fn read_body(req: Request<Incoming>) -> Result<Bytes, ()> {
    match Limited::new(req.into_body(), SYNC_RESPONSE_MAX_BYTES)
        .collect()
        .await
    {
        Ok(c) => Ok(c.to_bytes()),
        Err(_) => Err(()),
    }
}

fn accepted() -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(b"{\"status\":\"OK\"}")));
    *r.status_mut() = StatusCode::ACCEPTED;
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    r
}

fn state_error(from: &str, to: &str, why: &str) -> Response<Full<Bytes>> {
    error_response(
        StatusCode::FORBIDDEN,
        "InvalidStateTransition",
        &format!("State transition from {from} to {to} failed for runtime. Error: {why}"),
    )
}

fn not_found() -> Response<Full<Bytes>> {
    error_response(StatusCode::NOT_FOUND, "NotFound", "Not Found")
}

fn error_response(status: StatusCode, error_type: &str, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "errorMessage": message, "errorType": error_type });
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    r
}
