//! Asynchronous invocation: delivery of the durable queue's events.
//!
//! `Invoke` with `InvocationType: Event` commits the event to the store's queue before it
//! answers 202 ([`crate::Invoker::invoke`]). [`run`] (started by `sous serve`) draws due events
//! and invokes them through the worker's pool, so reserved and account concurrency apply:
//!
//! - a throttled attempt puts the event back with a backoff (from `base/60`, doubling, up to
//!   `5 × base`: 1 s to 5 min with Lambda's one-minute base) and does not count as a retry;
//! - a function error is retried up to `MaximumRetryAttempts` (default 2) times, after `base`
//!   and then `2 × base` (Lambda: about one and two minutes);
//! - an event older than `MaximumEventAgeInSeconds` (default 6 h) is discarded;
//! - a finished event is removed in the same transaction that enqueues its destination record
//!   (OnSuccess / OnFailure) and its dead-letter copy, so none of them is lost.
//!
//! Delivery is at least once. An attempt's outcome is committed as soon as it is known,
//! before the environment writes the attempt's `END` line (through the invocation's
//! [`Settle`] callback), on the group commit's fast path (no fsync: see `commit.rs`). So an
//! `END` in the log means the event is done with or rescheduled, and a restart does not run
//! that attempt again. Duplicates still arise when `sous serve` is killed while an attempt
//! runs (after its `START`, before its outcome is committed: its outcome is unknown, so it
//! must run again), and after an OS crash or power loss, which can undo outcomes committed
//! since the last fsync (never an acceptance: Invoke answers 202 only after one). See
//! docs/ARCHITECTURE.md, "The asynchronous queue".

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use sous_store::{NewEvent, QueueWrite, QueuedEvent, StoredFunction};
use sous_types::event_invoke::{function_target, FunctionEventInvokeConfig};
use sous_types::ErrorCode;
use sous_worker::{Invocation, Outcome, Settle};
use tracing::{info_span, Instrument};

use crate::{trace_id, Invoker, LATEST};

/// Counters of the asynchronous path since the server started.
#[derive(Debug, Default)]
pub struct AsyncCounters {
    /// Events accepted (committed, answered 202).
    pub accepted: AtomicU64,
    /// Attempts that ran the function.
    pub deliveries: AtomicU64,
    pub successes: AtomicU64,
    pub function_errors: AtomicU64,
    /// Attempts scheduled again after a function error.
    pub retries: AtomicU64,
    /// Attempts refused by concurrency or memory admission (put back, not retries).
    pub throttles: AtomicU64,
    /// Events discarded for age (`EventAgeExceeded`).
    pub expirations: AtomicU64,
    /// Events that failed on every allowed attempt (`RetriesExhausted`).
    pub retries_exhausted: AtomicU64,
    /// Records enqueued to OnSuccess / OnFailure destinations.
    pub destination_deliveries: AtomicU64,
    /// Events enqueued to a dead-letter target.
    pub dead_letters: AtomicU64,
    /// Events dropped because their function no longer exists.
    pub dropped: AtomicU64,
}

/// Shared state of the asynchronous path: counters, and the bell that wakes the delivery
/// task when an event is enqueued or an attempt finishes.
#[derive(Debug, Default)]
pub struct AsyncState {
    pub counters: AsyncCounters,
    pub wake: tokio::sync::Notify,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// How the delivery task runs.
#[derive(Debug, Clone, Copy)]
pub struct DeliverySettings {
    /// Delay before the first retry after a function error (Lambda: one minute).
    pub retry_base: Duration,
    /// Events delivered at the same time, at most (see [`Window`]).
    pub max_in_flight: usize,
}

/// How many events are delivered at the same time, adapted as TCP adapts its congestion
/// window: it starts small and doubles (one more per accepted attempt) until the worker's pool
/// first refuses an attempt (reserved or account concurrency, or host memory admission); a
/// refusal halves it, to half of what was running, and from there it grows by about one per
/// window's worth of accepted attempts. A backlog so settles at what the function and the host
/// can take, instead of starting deliveries that are refused and sent into backoff.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    size: f64,
    /// Below it, the window doubles; above it, it grows linearly.
    threshold: f64,
    max: f64,
}

impl Window {
    /// The first window (or `max`, if smaller).
    pub const START: usize = 16;

    pub fn new(max: usize) -> Self {
        let max = max.max(1) as f64;
        Self {
            size: (Self::START as f64).min(max),
            threshold: max,
            max,
        }
    }

    /// Deliveries allowed at once now.
    pub fn size(&self) -> usize {
        self.size as usize
    }

    /// Account for one finished attempt; `running` is how many were being delivered then
    /// (refusals of attempts that were running together halve the window once, not each).
    pub fn record(&mut self, refused: bool, running: usize) {
        if refused {
            self.threshold = (running as f64 / 2.0).clamp(1.0, self.size.max(1.0));
            self.size = self.threshold;
        } else if self.size < self.threshold {
            self.size = (self.size + 1.0).min(self.max);
        } else {
            self.size = (self.size + 1.0 / self.size).min(self.max);
        }
    }
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            retry_base: Duration::from_secs(60),
            max_in_flight: 256,
        }
    }
}

/// Why an event's delivery ended (a destination record's `condition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Success,
    RetriesExhausted,
    EventAgeExceeded,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Success => "Success",
            Condition::RetriesExhausted => "RetriesExhausted",
            Condition::EventAgeExceeded => "EventAgeExceeded",
        }
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Succeeded,
    FunctionError,
    /// Refused by admission, or the environment could not be prepared: put back.
    Throttled,
}

/// What happens to an event after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Finish(Condition),
    RetryAt {
        at_ms: i64,
        attempts: u32,
        throttles: u32,
    },
}

/// Whether an event is older than its configuration allows at `now_ms`.
pub fn expired(ev: &QueuedEvent, cfg: &FunctionEventInvokeConfig, now_ms: i64) -> bool {
    let max_age_ms = i64::try_from(cfg.max_age_s().saturating_mul(1000)).unwrap_or(i64::MAX);
    now_ms.saturating_sub(ev.event.received_ms) > max_age_ms
}

/// The delay before a throttled event is tried again: from `base/60` (at least 50 ms),
/// doubling, up to `5 × base`.
pub fn throttle_delay_ms(base_ms: u64, throttles: u32) -> u64 {
    let first = (base_ms / 60).max(50);
    let cap = base_ms.saturating_mul(5).max(first);
    first.saturating_mul(1u64 << throttles.min(20)).min(cap)
}

/// Lambda's retry policy as a pure function of the event, its configuration, the attempt's
/// result and the clock.
pub fn decide(
    ev: &QueuedEvent,
    cfg: &FunctionEventInvokeConfig,
    attempt: Attempt,
    now_ms: i64,
    base_ms: u64,
) -> Decision {
    let at = |delay: u64| now_ms.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX));
    match attempt {
        Attempt::Succeeded => Decision::Finish(Condition::Success),
        Attempt::FunctionError => {
            let attempts = ev.attempts + 1;
            if attempts > cfg.retries() {
                Decision::Finish(Condition::RetriesExhausted)
            } else {
                Decision::RetryAt {
                    at_ms: at(base_ms.saturating_mul(1u64 << (attempts - 1).min(20))),
                    attempts,
                    throttles: 0,
                }
            }
        }
        Attempt::Throttled => Decision::RetryAt {
            at_ms: at(throttle_delay_ms(base_ms, ev.throttles)),
            attempts: ev.attempts,
            throttles: ev.throttles + 1,
        },
    }
}

/// The delivery task: draws due events and delivers them, for as long as the server runs.
pub async fn run(invoker: Arc<Invoker>, settings: DeliverySettings) {
    let in_flight: Arc<Mutex<HashSet<i64>>> = Arc::default();
    let window = Arc::new(Mutex::new(Window::new(settings.max_in_flight)));
    let state = invoker.async_state.clone();
    loop {
        let now = now_ms();
        let skip = in_flight.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let allowed = window.lock().unwrap_or_else(|p| p.into_inner()).size();
        let room = allowed.saturating_sub(skip.len());
        let due = if room == 0 {
            Vec::new()
        } else {
            let store = invoker.store.clone();
            match tokio::task::spawn_blocking(move || store.due_events(now, room, &skip)).await {
                Ok(Ok(d)) => d,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "read the asynchronous invocation queue");
                    Vec::new()
                }
                Err(e) => {
                    tracing::error!(error = %e, "queue read task failed");
                    Vec::new()
                }
            }
        };
        if !due.is_empty() {
            for ev in due {
                in_flight
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(ev.id);
                let inv = invoker.clone();
                let flight = in_flight.clone();
                let window = window.clone();
                tokio::spawn(async move {
                    let id = ev.id;
                    let refused = deliver(&inv, ev, settings).await;
                    let mut running = flight.lock().unwrap_or_else(|p| p.into_inner());
                    window
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .record(refused, running.len());
                    running.remove(&id);
                    drop(running);
                    inv.async_state.wake.notify_one();
                });
            }
            continue;
        }
        let wait_ms = match invoker.store.run(|s| s.next_due_ms()).await {
            Ok(Some(t)) if t > now => (t - now).min(1000),
            _ => 1000,
        };
        tokio::select! {
            _ = state.wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(u64::try_from(wait_ms).unwrap_or(1000))) => {}
        }
    }
}

/// One attempt at one event, and what follows from it. Returns whether the worker's pool
/// refused the attempt (concurrency or host admission): the delivery window's signal.
async fn deliver(inv: &Arc<Invoker>, ev: QueuedEvent, settings: DeliverySettings) -> bool {
    let c = &inv.async_state.counters;
    let base_ms = u64::try_from(settings.retry_base.as_millis()).unwrap_or(u64::MAX);
    let name = ev.event.function_name.clone();
    let qualifier = ev.event.qualifier.clone();
    let cfg = inv
        .event_config_or_default(&name, qualifier.as_deref())
        .await;
    if expired(&ev, &cfg, now_ms()) {
        let resolved = inv.resolve(&name, qualifier.as_deref()).await.ok();
        let stored = resolved.as_ref().map(|r| &r.stored);
        finish(
            inv,
            &ev,
            &cfg,
            Condition::EventAgeExceeded,
            None,
            stored,
            ev.attempts,
        )
        .await;
        return false;
    }
    let resolved = match inv.resolve(&name, qualifier.as_deref()).await {
        Ok(r) => r,
        Err(e) if e.code == ErrorCode::ResourceNotFoundException => {
            tracing::warn!(function = %name, request_id = %ev.event.request_id, "asynchronous event dropped: its function no longer exists");
            bump(&c.dropped);
            let done = QueueWrite::Complete {
                id: ev.id,
                follow_ups: Vec::new(),
            };
            if let Err(e) = inv.commits.write(done).await {
                tracing::error!(error = %e, "remove a dropped event from the queue");
            }
            return false;
        }
        Err(e) => {
            tracing::warn!(function = %name, error = %e, "asynchronous event: cannot load the function; trying later");
            put_back(inv, &ev, &cfg, Attempt::Throttled, base_ms).await;
            return false;
        }
    };
    let stored = &resolved.stored;
    let spec = match inv.spec_for(&resolved).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(function = %name, error = %e, "asynchronous event: cannot prepare the environment; trying later");
            put_back(inv, &ev, &cfg, Attempt::Throttled, base_ms).await;
            return false;
        }
    };
    // What follows the attempt, done once: by the environment, as soon as the outcome is
    // known and before it logs `END` (the usual way), or here, for an attempt refused by
    // admission or one that ended without reaching an environment.
    let after = Arc::new(Mutex::new(Some(AfterAttempt {
        inv: inv.clone(),
        ev: ev.clone(),
        cfg,
        stored: stored.clone(),
        base_ms,
    })));
    let settle = {
        let after = after.clone();
        Settle(Arc::new(move |o: &Outcome| -> SettleFuture {
            let pending = after.lock().unwrap_or_else(|p| p.into_inner()).take();
            let o = o.clone();
            Box::pin(async move {
                if let Some(a) = pending {
                    a.settle(Some(o)).await;
                }
            })
        }))
    };
    let invocation = Invocation {
        request_id: ev.event.request_id.clone(),
        payload: Bytes::from(ev.event.payload.clone()),
        invoked_arn: inv.scope.qualified_arn(&name, qualifier.as_deref()),
        trace_id: trace_id(ev.event.trace_id.as_deref()),
        client_context: None,
        cognito_identity: None,
        tail_logs: false,
        settle: Some(settle),
    };
    let span = info_span!("deliver", function = %name, version = %stored.config.version, request_id = %ev.event.request_id, attempt = ev.attempts + 1);
    let result = inv.pool.invoke(spec, invocation).instrument(span).await;
    let pending = after.lock().unwrap_or_else(|p| p.into_inner()).take();
    match result {
        Err(refusal) => {
            tracing::debug!(function = %name, ?refusal, "asynchronous event throttled; put back");
            if let Some(a) = pending {
                a.settle(None).await;
            }
            true
        }
        Ok(o) => {
            if let Some(a) = pending {
                a.settle(Some(o)).await;
            }
            false
        }
    }
}

type SettleFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// What an attempt's outcome leads to, with what deciding it needs.
struct AfterAttempt {
    inv: Arc<Invoker>,
    ev: QueuedEvent,
    cfg: Arc<FunctionEventInvokeConfig>,
    stored: StoredFunction,
    base_ms: u64,
}

impl AfterAttempt {
    /// Count the attempt and commit what follows from it: `None` = refused by admission
    /// (put back without counting as a retry).
    async fn settle(self, outcome: Option<Outcome>) {
        let Self {
            inv,
            ev,
            cfg,
            stored,
            base_ms,
        } = self;
        let c = &inv.async_state.counters;
        let attempt = match &outcome {
            None => Attempt::Throttled,
            Some(o) => {
                bump(&c.deliveries);
                if o.error_type.is_some() {
                    bump(&c.function_errors);
                    Attempt::FunctionError
                } else {
                    bump(&c.successes);
                    Attempt::Succeeded
                }
            }
        };
        let ran = u32::from(outcome.is_some());
        match decide(&ev, &cfg, attempt, now_ms(), base_ms) {
            Decision::Finish(cond) => {
                finish(
                    &inv,
                    &ev,
                    &cfg,
                    cond,
                    outcome.as_ref(),
                    Some(&stored),
                    ev.attempts + ran,
                )
                .await
            }
            Decision::RetryAt {
                at_ms,
                attempts,
                throttles,
            } => {
                bump(if attempt == Attempt::FunctionError {
                    &c.retries
                } else {
                    &c.throttles
                });
                reschedule(&inv, &ev, attempts, throttles, at_ms).await;
            }
        }
    }
}

async fn put_back(
    inv: &Invoker,
    ev: &QueuedEvent,
    cfg: &FunctionEventInvokeConfig,
    attempt: Attempt,
    base_ms: u64,
) {
    bump(&inv.async_state.counters.throttles);
    if let Decision::RetryAt {
        at_ms,
        attempts,
        throttles,
    } = decide(ev, cfg, attempt, now_ms(), base_ms)
    {
        reschedule(inv, ev, attempts, throttles, at_ms).await;
    }
}

async fn reschedule(inv: &Invoker, ev: &QueuedEvent, attempts: u32, throttles: u32, at_ms: i64) {
    let write = QueueWrite::Reschedule {
        id: ev.id,
        attempts,
        throttles,
        next_attempt_ms: at_ms,
    };
    if let Err(e) = inv.commits.write(write).await {
        tracing::error!(error = %e, request_id = %ev.event.request_id, "reschedule an asynchronous event");
    }
}

/// End an event's delivery: enqueue its destination record and dead-letter copy, and remove
/// it, in one transaction.
async fn finish(
    inv: &Invoker,
    ev: &QueuedEvent,
    cfg: &FunctionEventInvokeConfig,
    cond: Condition,
    outcome: Option<&Outcome>,
    stored: Option<&StoredFunction>,
    invoke_count: u32,
) {
    let c = &inv.async_state.counters;
    let now = now_ms();
    let mut follow_ups = Vec::new();
    let destination = match cond {
        Condition::Success => cfg.destination_config.on_success.destination.as_deref(),
        _ => cfg.destination_config.on_failure.destination.as_deref(),
    };
    let mut records = 0;
    if let Some(arn) = destination {
        let record = destination_record(inv, ev, cond, outcome, stored, invoke_count, now);
        match follow_up(
            inv,
            arn,
            serde_json::to_vec(&record).unwrap_or_default(),
            now,
        ) {
            Some(e) => {
                follow_ups.push(e);
                records += 1;
            }
            None => tracing::warn!(
                destination = arn,
                "destination is not a function of this Sous host; record dropped"
            ),
        }
    }
    let mut dead = 0;
    if cond != Condition::Success {
        let dlq = stored
            .and_then(|s| s.config.dead_letter_config.as_ref())
            .and_then(|d| d.target_arn.as_deref());
        if let Some(arn) = dlq {
            match follow_up(inv, arn, ev.event.payload.clone(), now) {
                Some(e) => {
                    follow_ups.push(e);
                    dead += 1;
                }
                None => tracing::warn!(
                    target = arn,
                    "dead-letter target is not a function of this Sous host; event dropped"
                ),
            }
        }
        tracing::warn!(function = %ev.event.function_name, request_id = %ev.event.request_id, condition = cond.as_str(), attempts = invoke_count, "asynchronous invocation failed for good");
    }
    let sends_on = !follow_ups.is_empty();
    let done = QueueWrite::Complete {
        id: ev.id,
        follow_ups,
    };
    if let Err(e) = inv.commits.write(done).await {
        // The event stays queued and is delivered again (at least once).
        tracing::error!(error = %e, request_id = %ev.event.request_id, "finish an asynchronous event");
        return;
    }
    match cond {
        Condition::Success => {}
        Condition::RetriesExhausted => bump(&c.retries_exhausted),
        Condition::EventAgeExceeded => bump(&c.expirations),
    }
    c.destination_deliveries
        .fetch_add(records, Ordering::Relaxed);
    c.dead_letters.fetch_add(dead, Ordering::Relaxed);
    if sends_on {
        inv.async_state.wake.notify_one();
    }
}

/// An event for the function `arn` names (of this region and account).
fn follow_up(inv: &Invoker, arn: &str, payload: Vec<u8>, now: i64) -> Option<NewEvent> {
    let (function_name, qualifier) = function_target(arn, &inv.scope)?;
    Some(NewEvent {
        request_id: uuid::Uuid::new_v4().to_string(),
        function_name,
        qualifier,
        payload,
        received_ms: now,
        trace_id: None,
    })
}

/// Lambda's destination record.
fn destination_record(
    inv: &Invoker,
    ev: &QueuedEvent,
    cond: Condition,
    outcome: Option<&Outcome>,
    stored: Option<&StoredFunction>,
    invoke_count: u32,
    now: i64,
) -> Value {
    let qualifier = ev.event.qualifier.as_deref().unwrap_or(LATEST);
    let mut record = json!({
        "version": "1.0",
        "timestamp": timestamp(now),
        "requestContext": {
            "requestId": ev.event.request_id,
            "functionArn": inv.scope.qualified_arn(&ev.event.function_name, Some(qualifier)),
            "condition": cond.as_str(),
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": as_json(&ev.event.payload),
    });
    if let Some(o) = outcome {
        let mut ctx = json!({
            "statusCode": 200,
            "executedVersion": stored.map(|s| s.config.version.as_str()).unwrap_or(LATEST),
        });
        if o.error_type.is_some() {
            ctx["functionError"] = json!("Unhandled");
        }
        record["responseContext"] = ctx;
        record["responsePayload"] = as_json(&o.body);
    }
    record
}

/// A payload as JSON (a string when it is not JSON).
fn as_json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

fn timestamp(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    sous_types::timefmt::log_time(t)
}

/// Now, in epoch milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(received_ms: i64, attempts: u32, throttles: u32) -> QueuedEvent {
        QueuedEvent {
            id: 1,
            event: NewEvent {
                request_id: "r".into(),
                function_name: "f".into(),
                qualifier: None,
                payload: b"{}".to_vec(),
                received_ms,
                trace_id: None,
            },
            attempts,
            throttles,
            next_attempt_ms: received_ms,
        }
    }

    #[test]
    fn function_errors_retry_twice_with_base_then_double() {
        let cfg = FunctionEventInvokeConfig::default();
        let base = 60_000;
        assert_eq!(
            decide(&event(0, 0, 0), &cfg, Attempt::FunctionError, 1000, base),
            Decision::RetryAt {
                at_ms: 61_000,
                attempts: 1,
                throttles: 0
            }
        );
        assert_eq!(
            decide(&event(0, 1, 0), &cfg, Attempt::FunctionError, 1000, base),
            Decision::RetryAt {
                at_ms: 121_000,
                attempts: 2,
                throttles: 0
            }
        );
        assert_eq!(
            decide(&event(0, 2, 0), &cfg, Attempt::FunctionError, 1000, base),
            Decision::Finish(Condition::RetriesExhausted)
        );
        let none = FunctionEventInvokeConfig {
            maximum_retry_attempts: Some(0),
            ..Default::default()
        };
        assert_eq!(
            decide(&event(0, 0, 0), &none, Attempt::FunctionError, 1000, base),
            Decision::Finish(Condition::RetriesExhausted)
        );
        assert_eq!(
            decide(&event(0, 0, 0), &none, Attempt::Succeeded, 1000, base),
            Decision::Finish(Condition::Success)
        );
    }

    #[test]
    fn throttles_back_off_without_consuming_retries() {
        let cfg = FunctionEventInvokeConfig::default();
        assert_eq!(
            decide(&event(0, 1, 0), &cfg, Attempt::Throttled, 0, 60_000),
            Decision::RetryAt {
                at_ms: 1000,
                attempts: 1,
                throttles: 1
            }
        );
        assert_eq!(throttle_delay_ms(60_000, 3), 8000);
        assert_eq!(throttle_delay_ms(60_000, 30), 300_000);
        assert_eq!(throttle_delay_ms(200, 0), 50);
        assert_eq!(throttle_delay_ms(200, 10), 1000);
    }

    #[test]
    fn events_expire_by_the_injected_clock() {
        let cfg = FunctionEventInvokeConfig {
            maximum_event_age_in_seconds: Some(60),
            ..Default::default()
        };
        let ev = event(1_000_000, 0, 5);
        assert!(!expired(&ev, &cfg, 1_000_000 + 60_000));
        assert!(expired(&ev, &cfg, 1_000_000 + 60_001));
        let default = FunctionEventInvokeConfig::default();
        assert!(!expired(&ev, &default, 1_000_000 + 21_600_000));
        assert!(expired(&ev, &default, 1_000_000 + 21_600_001));
    }

    #[test]
    fn the_window_doubles_then_halves_on_refusal_then_grows_linearly() {
        let mut w = Window::new(256);
        assert_eq!(w.size(), Window::START);
        for _ in 0..10 {
            w.record(false, 16);
        }
        assert_eq!(w.size(), 26);
        // Twelve running attempts refused together: half of what ran, once.
        for running in (1..=12).rev() {
            w.record(true, running.max(12));
        }
        assert_eq!(w.size(), 6);
        // Linear growth: about one per window of accepted attempts.
        for _ in 0..6 {
            w.record(false, 6);
        }
        assert_eq!(w.size(), 6);
        for _ in 0..8 {
            w.record(false, 6);
        }
        assert_eq!(w.size(), 8);
        for _ in 0..100_000 {
            w.record(false, 8);
        }
        assert_eq!(w.size(), 256);
        w.record(true, 0);
        assert_eq!(w.size(), 1);
        assert_eq!(Window::new(4).size(), 4);
        assert_eq!(Window::new(0).size(), 1);
    }

    #[test]
    fn timestamps_are_utc_millis() {
        assert_eq!(timestamp(1_573_755_365_568), "2019-11-14T18:16:05.568Z");
    }
}
