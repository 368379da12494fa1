//! The HTTP listener of both of Sous's addresses (the Lambda API and the HTTP front door):
//! one accept loop serving an axum [`Router`] over hyper, with what production HTTP servers
//! put between a socket and a handler.
//!
//! - **Header timeout**: a connection must deliver a whole request head within
//!   [`Limits::header_timeout`], counted from its accept (a connection that says nothing is
//!   closed then) or, on a kept-alive connection, from the first byte of the next request.
//! - **Keep-alive timeout**: a connection idle between requests is closed after
//!   [`Limits::keep_alive_timeout`].
//! - **Body rate**: a request body must arrive within [`Limits::body_timeout`], extended by
//!   one second for every [`Limits::body_min_rate`] bytes received (Apache's
//!   `mod_reqtimeout` rule). A body that trickles ends in [`BodyTooSlow`], which the handler
//!   answers in its protocol.
//! - **Connection cap**: at most [`Limits::max_connections`] open connections per listener.
//!   At the cap, a new connection evicts the connection idle the longest among those waiting
//!   for a request head (nginx's reuse of keep-alive connections); only when every connection
//!   has a request in flight is the new one closed at once. Accepting never stops, so the
//!   backlog cannot fill up with clients nobody will serve. An accept that fails for want of
//!   file descriptors evicts the same way.
//! - **Lingering close**: a connection closed while the client is still sending a body the
//!   handler refused (an early 413) is shut for writing, then drained for a few seconds, so
//!   the client reads the answer instead of a reset.
//! - **Graceful shutdown**: when `shutdown` resolves the listener closes, idle connections
//!   close, and requests in flight finish (axum's `with_graceful_shutdown`).
//!
//! [`raise_fd_limit`] raises the open-file soft limit to the hard limit at start-up, and
//! [`default_max_connections`] derives the cap from the limit so that the listeners cannot
//! use up the descriptors environments, the store and code files need.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch, Notify};
use tokio::time::{Instant, Sleep};
use tower_service::Service;

/// `--header-timeout-secs`' default (hyper's own default header read timeout).
pub const HEADER_TIMEOUT_DEFAULT_S: u64 = 30;
/// `--keep-alive-timeout-secs`' default: above the idle timeouts of common clients' pools
/// (90 s in hyper's and the AWS SDKs'), so a client rarely reuses a connection being closed.
pub const KEEP_ALIVE_TIMEOUT_DEFAULT_S: u64 = 120;
/// `--body-timeout-secs`' default (Apache's `RequestReadTimeout body=20`).
pub const BODY_TIMEOUT_DEFAULT_S: u64 = 20;
/// `--body-min-rate`' default, bytes per second (Apache's `MinRate=500`).
pub const BODY_MIN_RATE_DEFAULT: u64 = 500;
/// How long a lingering close drains what a client still sends.
const LINGER_TIME: Duration = Duration::from_secs(5);
/// How often at most a listener logs refused connections or accept errors.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The limits of one listener (`sous serve` flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Time to receive a request head (zero: no limit).
    pub header_timeout: Duration,
    /// Time a connection may stay idle between requests (zero: no limit).
    pub keep_alive_timeout: Duration,
    /// Time to receive a request body, before the rate allowance (zero: no limit).
    pub body_timeout: Duration,
    /// Bytes per second that extend `body_timeout` by one second each (zero: no extension).
    pub body_min_rate: u64,
    /// Open connections at most.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(HEADER_TIMEOUT_DEFAULT_S),
            keep_alive_timeout: Duration::from_secs(KEEP_ALIVE_TIMEOUT_DEFAULT_S),
            body_timeout: Duration::from_secs(BODY_TIMEOUT_DEFAULT_S),
            body_min_rate: BODY_MIN_RATE_DEFAULT,
            max_connections: default_max_connections(1024),
        }
    }
}

impl Limits {
    /// The latest a body of which `received` bytes arrived since `started` may take.
    fn body_deadline(&self, started: Instant, received: u64) -> Option<Instant> {
        if self.body_timeout.is_zero() {
            return None;
        }
        let allowance = match self.body_min_rate {
            0 => Duration::ZERO,
            rate => Duration::from_millis(received.saturating_mul(1000) / rate),
        };
        Some(started + self.body_timeout + allowance)
    }
}

/// A request body that did not arrive at the minimum rate: the error a handler's body read
/// ends with (find it with [`is_body_too_slow`]).
#[derive(Debug)]
pub struct BodyTooSlow {
    pub timeout: Duration,
    pub min_rate: u64,
}

impl std::fmt::Display for BodyTooSlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body was not received in time: {} s, plus one second per {} bytes received",
            self.timeout.as_secs(),
            self.min_rate
        )
    }
}

impl std::error::Error for BodyTooSlow {}

/// Whether `err`, or an error in its source chain, is [`BodyTooSlow`].
pub fn is_body_too_slow(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if e.is::<BodyTooSlow>() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// The open-file limit after [`raise_fd_limit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdLimit {
    /// The soft limit now in force.
    pub soft: u64,
    pub hard: u64,
    /// The soft limit Sous started with.
    pub was: u64,
}

/// Below this soft limit `sous serve` warns at start-up.
pub const FD_LIMIT_LOW: u64 = 4096;

/// Raise the open-file soft limit to the hard limit (bounded by the kernel's `nr_open`).
pub fn raise_fd_limit() -> io::Result<FdLimit> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(1 << 20);
    let target = hard.min(nr_open);
    if soft >= target {
        return Ok(FdLimit {
            soft,
            hard,
            was: soft,
        });
    }
    setrlimit(Resource::RLIMIT_NOFILE, target, hard).map_err(io::Error::from)?;
    Ok(FdLimit {
        soft: target,
        hard,
        was: soft,
    })
}

/// The default cap of each of the two listeners for an open-file limit of `fd_limit`: a
/// quarter of the descriptors (at least 256) stays for environments, the store, code files
/// and logs; the two listeners share the rest; at most 10,000 connections each.
pub fn default_max_connections(fd_limit: u64) -> usize {
    let reserve = (fd_limit / 4).max(256);
    let each = fd_limit.saturating_sub(reserve) / 2;
    each.clamp(16, 10_000) as usize
}

/// Serve `router` on `listener` under `limits` until `shutdown` resolves, then finish the
/// requests in flight. `name` names the listener in logs. Handlers can extract
/// `ConnectInfo<SocketAddr>`.
pub async fn serve<F>(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    name: &'static str,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let shared = Arc::new(Shared {
        router,
        limits,
        epoch: Instant::now(),
        conns: Mutex::new(HashMap::new()),
        builder: auto::Builder::new(TokioExecutor::new()),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut next_id = 0u64;
    let mut refused = Tally::default();
    let mut accept_errors = Tally::default();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = &mut shutdown => break,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                let out_of_fds = matches!(
                    e.raw_os_error().map(nix::errno::Errno::from_raw),
                    Some(nix::errno::Errno::EMFILE | nix::errno::Errno::ENFILE)
                );
                if accept_errors.add() {
                    tracing::warn!(listener = name, error = %e, errors = accept_errors.take(), "accept failed");
                }
                if out_of_fds {
                    // Free a descriptor, and do not spin while the kernel has none.
                    shared.evict_idlest();
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                continue;
            }
        };
        if shared.len() >= limits.max_connections && !shared.evict_idlest() {
            drop(tcp);
            if refused.add() {
                tracing::warn!(
                    listener = name,
                    max_connections = limits.max_connections,
                    refused = refused.take(),
                    "connections refused: every connection has a request in flight (--max-connections)"
                );
            }
            continue;
        }
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "set TCP_NODELAY");
        }
        next_id += 1;
        let state = Arc::new(ConnState::new(shared.now_ms()));
        shared.lock().insert(next_id, state.clone());
        tokio::spawn(connection(
            shared.clone(),
            next_id,
            state,
            tcp,
            peer,
            stop_rx.clone(),
        ));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(stop_rx);
    stop_tx.closed().await;
    Ok(())
}

/// Counts events, and says when to log them (at most once per [`LOG_EVERY`]).
#[derive(Default)]
struct Tally {
    count: u64,
    logged: Option<Instant>,
}

impl Tally {
    fn add(&mut self) -> bool {
        self.count += 1;
        let now = Instant::now();
        if self
            .logged
            .is_none_or(|t| now.duration_since(t) >= LOG_EVERY)
        {
            self.logged = Some(now);
            return true;
        }
        false
    }

    fn take(&mut self) -> u64 {
        std::mem::take(&mut self.count)
    }
}

/// What a listener's connections share.
struct Shared {
    router: Router,
    limits: Limits,
    epoch: Instant,
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
    builder: auto::Builder<TokioExecutor>,
}

impl Shared {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn instant(&self, ms: u64) -> Instant {
        self.epoch + Duration::from_millis(ms)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ConnState>>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    /// Close the connection idle the longest among those with no request in flight; false
    /// if there is none.
    fn evict_idlest(&self) -> bool {
        let mut conns = self.lock();
        let victim = conns
            .iter()
            .filter(|(_, c)| c.in_flight.load(Ordering::Acquire) == 0)
            .min_by_key(|(_, c)| c.last_active_ms.load(Ordering::Relaxed))
            .map(|(id, _)| *id);
        let Some(id) = victim else {
            return false;
        };
        if let Some(c) = conns.remove(&id) {
            c.evicted.store(true, Ordering::Release);
            c.wake.notify_one();
        }
        true
    }
}

/// One connection's phase, shared by its task, its socket and its requests.
struct ConnState {
    /// Requests whose response is not yet fully written.
    in_flight: AtomicUsize,
    /// Bytes of a request head have arrived since the last response.
    head_started: AtomicBool,
    /// No request finished yet: the header timeout runs from the accept.
    fresh: AtomicBool,
    /// Start of the current phase (idle, or head), ms since the listener's epoch.
    since_ms: AtomicU64,
    last_active_ms: AtomicU64,
    /// The last request left part of its body unread: close lingering.
    linger: AtomicBool,
    evicted: AtomicBool,
    /// The phase changed, or the connection was evicted.
    wake: Notify,
}

impl ConnState {
    fn new(now: u64) -> Self {
        ConnState {
            in_flight: AtomicUsize::new(0),
            head_started: AtomicBool::new(false),
            fresh: AtomicBool::new(true),
            since_ms: AtomicU64::new(now),
            last_active_ms: AtomicU64::new(now),
            linger: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    /// When the connection is to be closed if nothing changes.
    fn deadline_ms(&self, limits: &Limits) -> Option<u64> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since = self.since_ms.load(Ordering::Acquire);
        let waiting_head =
            self.fresh.load(Ordering::Acquire) || self.head_started.load(Ordering::Acquire);
        let timeout = if waiting_head {
            limits.header_timeout
        } else {
            limits.keep_alive_timeout
        };
        (!timeout.is_zero()).then(|| since + timeout.as_millis() as u64)
    }

    fn on_read(&self, now: u64) {
        self.last_active_ms.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Acquire) == 0
            && !self.head_started.swap(true, Ordering::AcqRel)
        {
            if !self.fresh.load(Ordering::Acquire) {
                self.since_ms.store(now, Ordering::Release);
            }
            self.wake.notify_one();
        }
    }
}

/// One connection: hyper serving it, closed on its timeouts, on eviction, or gracefully at
/// shutdown; then, if a body was left unread, a lingering close.
async fn connection(
    shared: Arc<Shared>,
    id: u64,
    state: Arc<ConnState>,
    tcp: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    let (back_tx, back_rx) = oneshot::channel();
    let io = ConnIo {
        stream: Some(tcp),
        state: state.clone(),
        shared: shared.clone(),
        back: Some(back_tx),
    };
    let svc = ConnService {
        shared: shared.clone(),
        state: state.clone(),
        peer,
    };
    let mut conn = Box::pin(shared.builder.serve_connection(TokioIo::new(io), svc));
    let limits = shared.limits;
    let mut stopping = false;
    loop {
        if state.evicted.load(Ordering::Acquire) {
            // A request may have started since it was chosen: let that one finish.
            if state.in_flight.load(Ordering::Acquire) == 0 {
                tracing::debug!(%peer, "connection evicted: the listener is at its connection cap");
                break;
            }
            if !stopping {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
        let deadline = state.deadline_ms(&limits).map(|ms| shared.instant(ms));
        let timer = async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                break;
            }
            _ = state.wake.notified() => {}
            _ = timer => {
                if state.deadline_ms(&limits).is_some_and(|d| shared.now_ms() >= d) {
                    tracing::debug!(%peer, "connection closed: header or keep-alive timeout");
                    break;
                }
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
    drop(conn);
    if let Ok(stream) = back_rx.await {
        if !state.evicted.load(Ordering::Acquire) {
            linger(stream, &state, &mut stop).await;
        }
    }
    shared.lock().remove(&id);
}

/// Shut the socket for writing, then read and drop what the client still sends (for at most
/// [`LINGER_TIME`]) so that closing does not reset the connection before it read the answer.
async fn linger(mut stream: TcpStream, state: &ConnState, stop: &mut watch::Receiver<bool>) {
    let _ = stream.shutdown().await;
    let deadline = Instant::now() + LINGER_TIME;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            r = tokio::time::timeout_at(deadline, stream.read(&mut buf)) => match r {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            },
            _ = state.wake.notified() => {
                if state.evicted.load(Ordering::Acquire) {
                    return;
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// The socket, noting reads in the connection's phase; on drop it hands the stream back to
/// the connection task when a lingering close is due.
struct ConnIo {
    stream: Option<TcpStream>,
    state: Arc<ConnState>,
    shared: Arc<Shared>,
    back: Option<oneshot::Sender<TcpStream>>,
}

impl ConnIo {
    fn stream(&mut self) -> Pin<&mut TcpStream> {
        Pin::new(
            self.stream
                .as_mut()
                .expect("the stream is taken only on drop"),
        )
    }
}

impl Drop for ConnIo {
    fn drop(&mut self) {
        if self.state.linger.load(Ordering::Acquire) {
            if let (Some(stream), Some(back)) = (self.stream.take(), self.back.take()) {
                let _ = back.send(stream);
            }
        }
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(self.stream().poll_read(cx, buf))?;
        if buf.filled().len() > before {
            let now = self.shared.now_ms();
            self.state.on_read(now);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.stream().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.stream().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream
            .as_ref()
            .is_some_and(AsyncWrite::is_write_vectored)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_shutdown(cx)
    }
}

/// A request in flight on a connection, until its response body is dropped.
struct InFlight {
    state: Arc<ConnState>,
    shared: Arc<Shared>,
}

impl InFlight {
    fn new(state: Arc<ConnState>, shared: Arc<Shared>) -> Self {
        state.in_flight.fetch_add(1, Ordering::AcqRel);
        state.linger.store(false, Ordering::Release);
        InFlight { state, shared }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let now = self.shared.now_ms();
        let s = &self.state;
        if s.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            s.fresh.store(false, Ordering::Release);
            s.head_started.store(false, Ordering::Release);
            s.since_ms.store(now, Ordering::Release);
            s.last_active_ms.store(now, Ordering::Relaxed);
            s.wake.notify_one();
        }
    }
}

/// The router as one connection's hyper service.
struct ConnService {
    shared: Arc<Shared>,
    state: Arc<ConnState>,
    peer: SocketAddr,
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<axum::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let guard = InFlight::new(self.state.clone(), self.shared.clone());
        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(ConnectInfo(self.peer));
        let body = TimedBody {
            started: Instant::now(),
            received: 0,
            limits: self.shared.limits,
            timer: None,
            ended: body.is_end_stream(),
            failed: false,
            state: self.state.clone(),
            inner: body,
        };
        let req = Request::from_parts(parts, axum::body::Body::new(body));
        let mut router = self.shared.router.clone();
        Box::pin(async move {
            let resp = match router.call(req).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            };
            Ok(resp.map(|inner| {
                axum::body::Body::new(Guarded {
                    inner,
                    _guard: guard,
                })
            }))
        })
    }
}

/// A response body that keeps its request in flight until it is written.
struct Guarded {
    inner: axum::body::Body,
    _guard: InFlight,
}

impl HttpBody for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body held to the minimum rate.
struct TimedBody {
    inner: Incoming,
    started: Instant,
    received: u64,
    limits: Limits,
    timer: Option<Pin<Box<Sleep>>>,
    ended: bool,
    failed: bool,
    state: Arc<ConnState>,
}

impl Drop for TimedBody {
    fn drop(&mut self) {
        if !self.ended && !self.inner.is_end_stream() {
            self.state.linger.store(true, Ordering::Release);
        }
    }
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.failed || this.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => {
                this.ended = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                let Some(deadline) = this.limits.body_deadline(this.started, this.received) else {
                    return Poll::Pending;
                };
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                if timer.as_mut().poll(cx).is_ready() {
                    this.failed = true;
                    return Poll::Ready(Some(Err(Box::new(BodyTooSlow {
                        timeout: this.limits.body_timeout,
                        min_rate: this.limits.body_min_rate,
                    }))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_cap_leaves_descriptors_for_the_rest() {
        assert_eq!(default_max_connections(1024), 384);
        assert_eq!(default_max_connections(20_000), 7_500);
        assert_eq!(default_max_connections(1 << 20), 10_000);
        assert_eq!(default_max_connections(64), 16);
        for limit in [300u64, 1024, 4096, 65_536] {
            let two = 2 * default_max_connections(limit) as u64;
            assert!(two <= limit * 3 / 4, "{limit}: {two}");
        }
    }

    #[test]
    fn body_deadline_grows_with_what_arrived() {
        let l = Limits {
            body_timeout: Duration::from_secs(20),
            body_min_rate: 500,
            ..Limits::default()
        };
        let t = Instant::now();
        assert_eq!(l.body_deadline(t, 0), Some(t + Duration::from_secs(20)));
        assert_eq!(l.body_deadline(t, 5_000), Some(t + Duration::from_secs(30)));
        let off = Limits {
            body_timeout: Duration::ZERO,
            ..l
        };
        assert_eq!(off.body_deadline(t, 0), None);
    }

    #[test]
    fn finds_body_too_slow_in_a_chain() {
        let slow = BodyTooSlow {
            timeout: Duration::from_secs(1),
            min_rate: 1,
        };
        let wrapped = axum::Error::new(slow);
        assert!(is_body_too_slow(&wrapped));
        assert!(!is_body_too_slow(&io::Error::other("x")));
    }

    #[test]
    fn phases_and_deadlines() {
        let l = Limits {
            header_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(60),
            ..Limits::default()
        };
        let s = ConnState::new(1_000);
        // Fresh: the header timeout runs from the accept, even after the first byte.
        assert_eq!(s.deadline_ms(&l), Some(11_000));
        s.on_read(5_000);
        assert_eq!(s.deadline_ms(&l), Some(11_000));
        s.in_flight.fetch_add(1, Ordering::AcqRel);
        assert_eq!(s.deadline_ms(&l), None);
        // After a request: keep-alive, then the header timeout from the next first byte.
        s.in_flight.fetch_sub(1, Ordering::AcqRel);
        s.fresh.store(false, Ordering::Release);
        s.head_started.store(false, Ordering::Release);
        s.since_ms.store(20_000, Ordering::Release);
        assert_eq!(s.deadline_ms(&l), Some(80_000));
        s.on_read(30_000);
        assert_eq!(s.deadline_ms(&l), Some(40_000));
    }
}
