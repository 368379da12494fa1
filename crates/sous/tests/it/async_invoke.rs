//! Asynchronous invocation through the real binary and aws-sdk-lambda: the durable queue
//! (202 only once committed; SIGKILL loses nothing), delivery under concurrency limits,
//! Lambda's retries with exact attempt counts, maximum event age, OnSuccess / OnFailure
//! destinations with Lambda's record, and dead-letter targets.
//!
//! What a function did is read from its log streams in `<data-dir>/logs/<function>/`: every
//! attempt writes `START RequestId: <id>`, and the shell functions here print their event, so
//! a payload marker (or a destination record) appears in the log of the function that ran it.
//! The server runs with `--retry-base-delay-ms 300` so retries come after 0.3 s and 0.6 s.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::common::*;
use aws_sdk_lambda::operation::RequestId as _;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    DeadLetterConfig, DestinationConfig, InvocationType, OnFailure, OnSuccess,
};
use serde_json::Value;

const RETRY_BASE_MS: &str = "300";

/// A `sous serve` started with extra flags, with this file's helpers around it.
struct Sous {
    server: Server,
}

impl std::ops::Deref for Sous {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

impl std::ops::DerefMut for Sous {
    fn deref_mut(&mut self) -> &mut Server {
        &mut self.server
    }
}

impl Sous {
    /// A server with a short retry delay (`RETRY_BASE_MS`) and `args`.
    fn start(args: &[&str]) -> Sous {
        let mut all = vec!["--retry-base-delay-ms", RETRY_BASE_MS];
        all.extend_from_slice(args);
        Sous {
            server: Server::start_with(ServerOptions::with_args(&all)),
        }
    }

    /// How many attempts ran request `request_id` of `function`.
    fn starts(&self, function: &str, request_id: &str) -> usize {
        let needle = format!("START RequestId: {request_id} ");
        self.log_events(function)
            .iter()
            .filter(|l| l.starts_with(&needle))
            .count()
    }

    /// The JSON documents `function` printed that contain `key` (destination records).
    fn printed_json(&self, function: &str, key: &str) -> Vec<Value> {
        self.log_events(function)
            .iter()
            .filter(|l| l.contains(key))
            .filter_map(|l| l.find('{').map(|i| &l[i..]))
            .filter_map(|j| serde_json::from_str(j).ok())
            .collect()
    }

    /// Polls until `ready` holds (bounded by `secs`).
    async fn wait_for(&self, what: &str, secs: u64, ready: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !ready() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn create(&self, name: &str, bootstrap: String) {
        self.create_with_dlq(name, bootstrap, None).await
    }

    async fn create_with_dlq(&self, name: &str, bootstrap: String, dlq: Option<&str>) {
        let mut b = create(&self.client, name, &bootstrap_zip(bootstrap)).timeout(30);
        if let Some(arn) = dlq {
            b = b.dead_letter_config(DeadLetterConfig::builder().target_arn(arn).build());
        }
        if let Err(e) = b.send().await {
            panic!(
                "CreateFunction {name}: {:#?}\n{}",
                api_error(e),
                self.output()
            );
        }
    }

    /// An `Event` invoke; returns the request id after checking the 202.
    async fn send_event(&self, name: &str, payload: &str) -> String {
        let out = self
            .client
            .invoke()
            .function_name(name)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(payload.as_bytes().to_vec()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("Invoke Event: {:#?}\n{}", api_error(e), self.output()));
        assert_eq!(out.status_code(), 202);
        assert!(out.payload().map(|p| p.as_ref().is_empty()).unwrap_or(true));
        out.request_id().expect("request id").to_string()
    }

    async fn reserve(&self, name: &str, n: i32) {
        self.client
            .put_function_concurrency()
            .function_name(name)
            .reserved_concurrent_executions(n)
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutFunctionConcurrency: {:#?}", api_error(e)));
    }

    async fn unreserve(&self, name: &str) {
        self.client
            .delete_function_concurrency()
            .function_name(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DeleteFunctionConcurrency: {:#?}", api_error(e)));
    }

    /// Waits until the status endpoint's `async` figures satisfy `ready`, and returns the
    /// whole status. Counters move just after the commit that makes follow-up events (and so
    /// what a destination function prints) visible, so read them through this.
    async fn wait_for_async_status(
        &self,
        what: &str,
        secs: u64,
        ready: impl Fn(&Value) -> bool,
    ) -> Value {
        self.wait_status(what, secs, |s| ready(&s["async"])).await
    }

    /// Waits until every accepted event, destination records included, is finished.
    async fn wait_for_empty_queue(&self, secs: u64) -> Value {
        self.wait_for_async_status("an empty queue", secs, |a| a["queue_depth"] == 0)
            .await
    }
}

/// Prints its event (one line) and answers `{"ok":true}`.
fn ok_function() -> String {
    shell_runtime(
        "",
        r#"  printf 'EVENT %s\n' "$(cat "$EVENT")"
  respond_text '{"ok":true}'"#,
    )
}

/// Prints its event, then fails with an unhandled error.
fn failing_function() -> String {
    shell_runtime(
        "",
        r#"  printf 'EVENT %s\n' "$(cat "$EVENT")"
  fail Boom '{"errorMessage":"boom","errorType":"Boom"}'"#,
    )
}

/// Sleeps the event's `sleep` seconds after printing it.
fn slow_function() -> String {
    shell_runtime(
        "",
        r#"  printf 'EVENT %s\n' "$(cat "$EVENT")"
  S=$(sed -n 's/.*"sleep": *\([0-9.]*\).*/\1/p' "$EVENT")
  if [ -n "$S" ]; then sleep "$S"; fi
  respond_text '{"ok":true}'"#,
    )
}

fn arn(name: &str) -> String {
    format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}")
}

/// The markers (`"m":"..."`) of the events `function` printed.
fn markers(lines: &[String]) -> BTreeSet<String> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("EVENT "))
        .filter_map(|j| serde_json::from_str::<Value>(j).ok())
        .filter_map(|v| v["m"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn event_is_accepted_then_delivered_once() {
    let sous = Sous::start(&[]);
    sous.create("ok-fn", ok_function()).await;
    let rid = sous.send_event("ok-fn", r#"{"m":"hello-async"}"#).await;
    sous.wait_for("the delivery", 60, || {
        sous.starts("ok-fn", &rid) == 1
            && markers(&sous.log_events("ok-fn")).contains("hello-async")
    })
    .await;
    // Delivered once: no retry follows a success (once the queue is empty, none can).
    let s = sous
        .wait_for_async_status("an empty queue", 30, |a| {
            a["queue_depth"] == 0 && a["successes"].as_u64() >= Some(1)
        })
        .await;
    assert_eq!(sous.starts("ok-fn", &rid), 1);
    let a = &s["async"];
    assert_eq!(a["accepted"], 1, "{s:#}");
    assert_eq!(a["deliveries"], 1, "{s:#}");
    assert_eq!(a["successes"], 1, "{s:#}");
    assert_eq!(a["queue_depth"], 0, "{s:#}");
    assert!(a["oldest_event_age_ms"].is_null(), "{s:#}");

    // Over 1 MB: Lambda's 413 for the Event invocation type.
    let big = format!("\"{}\"", "x".repeat(1_048_576));
    let e = expect_err(
        sous.client
            .invoke()
            .function_name("ok-fn")
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(big.clone().into_bytes()))
            .send()
            .await,
    );
    e.assert(413, "RequestEntityTooLargeException");
    assert_eq!(
        e.message(),
        format!(
            "{} byte payload is too large for the Event invocation type (limit 1048576 bytes)",
            big.len()
        )
    );
    // An unknown function is refused before anything is queued.
    let e = expect_err(
        sous.client
            .invoke()
            .function_name("nope")
            .invocation_type(InvocationType::Event)
            .send()
            .await,
    );
    e.assert(404, "ResourceNotFoundException");
}

#[tokio::test(flavor = "multi_thread")]
async fn function_errors_are_retried_exactly_then_go_to_on_failure() {
    let sous = Sous::start(&[]);
    sous.create("sink", ok_function()).await;
    sous.create("fail-default", failing_function()).await;
    sous.create("fail-once", failing_function()).await;
    sous.create("fail-never", failing_function()).await;
    for (name, retries) in [
        ("fail-default", None),
        ("fail-once", Some(1)),
        ("fail-never", Some(0)),
    ] {
        let mut b = sous
            .client
            .put_function_event_invoke_config()
            .function_name(name)
            .destination_config(
                DestinationConfig::builder()
                    .on_failure(OnFailure::builder().destination(arn("sink")).build())
                    .build(),
            );
        if let Some(n) = retries {
            b = b.maximum_retry_attempts(n);
        }
        b.send()
            .await
            .unwrap_or_else(|e| panic!("PutFunctionEventInvokeConfig: {:#?}", api_error(e)));
    }
    let r_default = sous.send_event("fail-default", r#"{"m":"d"}"#).await;
    let r_once = sous.send_event("fail-once", r#"{"m":"o"}"#).await;
    let r_never = sous.send_event("fail-never", r#"{"m":"n"}"#).await;
    sous.wait_for("three failure records", 60, || {
        sous.printed_json("sink", "RetriesExhausted").len() == 3
    })
    .await;
    // No attempt after the record: exactly 1 + MaximumRetryAttempts.
    let s = sous
        .wait_for_async_status("the failures' counters", 30, |a| {
            a["queue_depth"] == 0 && a["retries_exhausted"].as_u64() >= Some(3)
        })
        .await;
    assert_eq!(sous.starts("fail-default", &r_default), 3);
    assert_eq!(sous.starts("fail-once", &r_once), 2);
    assert_eq!(sous.starts("fail-never", &r_never), 1);

    let records = sous.printed_json("sink", "RetriesExhausted");
    let rec = records
        .iter()
        .find(|r| r["requestContext"]["requestId"] == r_default.as_str())
        .expect("record of the default function");
    assert_eq!(rec["version"], "1.0");
    let ts = rec["timestamp"].as_str().unwrap();
    assert!(ts.ends_with('Z') && ts.len() == 24, "{ts}");
    assert_eq!(
        rec["requestContext"],
        serde_json::json!({
            "requestId": r_default,
            "functionArn": format!("{}:$LATEST", arn("fail-default")),
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        })
    );
    assert_eq!(rec["requestPayload"], serde_json::json!({"m": "d"}));
    assert_eq!(
        rec["responseContext"],
        serde_json::json!({"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"})
    );
    assert_eq!(rec["responsePayload"]["errorType"], "Boom");
    assert_eq!(rec["responsePayload"]["errorMessage"], "boom");
    let once = records
        .iter()
        .find(|r| r["requestContext"]["requestId"] == r_once.as_str())
        .unwrap();
    assert_eq!(once["requestContext"]["approximateInvokeCount"], 2);

    let a = &s["async"];
    assert_eq!(a["function_errors"], 6, "{s:#}");
    assert_eq!(a["retries"], 3, "{s:#}");
    assert_eq!(a["retries_exhausted"], 3, "{s:#}");
    assert_eq!(a["destination_deliveries"], 3, "{s:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn success_destination_and_dead_letter_target() {
    let sous = Sous::start(&[]);
    sous.create("sink", ok_function()).await;
    sous.create("dlq", ok_function()).await;
    sous.create("good", ok_function()).await;
    sous.create_with_dlq("bad", failing_function(), Some(&arn("dlq")))
        .await;
    sous.client
        .put_function_event_invoke_config()
        .function_name("good")
        .destination_config(
            DestinationConfig::builder()
                .on_success(OnSuccess::builder().destination(arn("sink")).build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    sous.client
        .put_function_event_invoke_config()
        .function_name("bad")
        .maximum_retry_attempts(0)
        .send()
        .await
        .unwrap();
    let r_good = sous.send_event("good", r#"{"m":"g"}"#).await;
    let r_bad = sous.send_event("bad", r#"{"m":"to-dlq"}"#).await;
    sous.wait_for("the success record", 60, || {
        !sous.printed_json("sink", "\"Success\"").is_empty()
    })
    .await;
    let rec = &sous.printed_json("sink", "\"Success\"")[0];
    assert_eq!(
        rec["requestContext"],
        serde_json::json!({
            "requestId": r_good,
            "functionArn": format!("{}:$LATEST", arn("good")),
            "condition": "Success",
            "approximateInvokeCount": 1,
        })
    );
    assert_eq!(rec["requestPayload"], serde_json::json!({"m": "g"}));
    assert_eq!(
        rec["responseContext"],
        serde_json::json!({"statusCode": 200, "executedVersion": "$LATEST"})
    );
    assert_eq!(rec["responsePayload"], serde_json::json!({"ok": true}));

    // The dead-letter target receives the original event.
    sous.wait_for("the dead-letter copy", 60, || {
        markers(&sous.log_events("dlq")).contains("to-dlq")
    })
    .await;
    let s = sous
        .wait_for_async_status("an empty queue", 30, |a| {
            a["queue_depth"] == 0
                && a["dead_letters"].as_u64() >= Some(1)
                && a["destination_deliveries"].as_u64() >= Some(1)
        })
        .await;
    assert_eq!(sous.starts("bad", &r_bad), 1);
    assert_eq!(s["async"]["dead_letters"], 1, "{s:#}");
    assert_eq!(s["async"]["destination_deliveries"], 1, "{s:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn throttled_events_wait_and_are_delivered_later() {
    let sous = Sous::start(&[]);
    sous.create("held", ok_function()).await;
    sous.reserve("held", 0).await;
    let mut rids = Vec::new();
    for i in 0..3 {
        rids.push(
            sous.send_event("held", &format!(r#"{{"m":"held-{i}"}}"#))
                .await,
        );
    }
    // Each event meets the throttle at least once, and stays queued.
    let s = sous
        .wait_for_async_status("three throttled attempts", 30, |a| {
            a["throttles"].as_u64() >= Some(3) && a["oldest_event_age_ms"].as_u64() >= Some(1000)
        })
        .await;
    assert!(sous.log_events("held").is_empty(), "a throttled event ran");
    assert_eq!(s["async"]["queue_depth"], 3, "{s:#}");
    sous.unreserve("held").await;
    let want: BTreeSet<String> = (0..3).map(|i| format!("held-{i}")).collect();
    // START is logged before the function prints its marker: wait for both.
    sous.wait_for("the held events", 60, || {
        rids.iter().all(|r| sous.starts("held", r) == 1)
            && markers(&sous.log_events("held")) == want
    })
    .await;
    assert!(rids.iter().all(|r| sous.starts("held", r) == 1));
}

/// The maximum event age, through the binary: a throttled event of a function whose
/// MaximumEventAgeInSeconds is 60 (the smallest allowed) goes to OnFailure as
/// EventAgeExceeded without ever running. Takes a little over a minute.
#[tokio::test(flavor = "multi_thread")]
async fn old_events_expire_to_on_failure() {
    let sous = Sous::start(&[]);
    sous.create("sink", ok_function()).await;
    sous.create("never", ok_function()).await;
    sous.reserve("never", 0).await;
    sous.client
        .put_function_event_invoke_config()
        .function_name("never")
        .maximum_event_age_in_seconds(60)
        .destination_config(
            DestinationConfig::builder()
                .on_failure(OnFailure::builder().destination(arn("sink")).build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let rid = sous.send_event("never", r#"{"m":"too-old"}"#).await;
    sous.wait_for("the expiry record", 120, || {
        !sous.printed_json("sink", "EventAgeExceeded").is_empty()
    })
    .await;
    let rec = &sous.printed_json("sink", "EventAgeExceeded")[0];
    assert_eq!(rec["requestContext"]["requestId"], rid.as_str());
    assert_eq!(rec["requestContext"]["approximateInvokeCount"], 0);
    assert_eq!(rec["requestPayload"], serde_json::json!({"m": "too-old"}));
    assert!(rec.get("responseContext").is_none());
    assert!(rec.get("responsePayload").is_none());
    assert!(sous.log_events("never").is_empty());
    // The record reaches the sink as an event of its own, queued until the sink returns.
    let s = sous
        .wait_for_async_status("an empty queue", 30, |a| {
            a["queue_depth"] == 0 && a["expirations"].as_u64() >= Some(1)
        })
        .await;
    assert_eq!(s["async"]["expirations"], 1, "{s:#}");
}

/// SIGKILL while events are queued (a throttled function) and in flight (a slow one): after
/// a restart on the same data dir, every accepted event runs at least once.
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_loses_no_accepted_event() {
    let mut sous = Sous::start(&[]);
    sous.create("queued", ok_function()).await;
    sous.create("slow", slow_function()).await;
    sous.reserve("queued", 0).await;
    sous.reserve("slow", 1).await;
    const N: usize = 25;
    for i in 0..N {
        sous.send_event("queued", &format!(r#"{{"m":"q-{i}"}}"#))
            .await;
    }
    for i in 0..4 {
        sous.send_event("slow", &format!(r#"{{"m":"s-{i}","sleep":2}}"#))
            .await;
    }
    sous.wait_for("a slow event in flight", 60, || {
        !markers(&sous.log_events("slow")).is_empty()
    })
    .await;
    sous.kill_hard();
    sous.restart();
    sous.unreserve("queued").await;
    sous.unreserve("slow").await;
    let want_q: BTreeSet<String> = (0..N).map(|i| format!("q-{i}")).collect();
    let want_s: BTreeSet<String> = (0..4).map(|i| format!("s-{i}")).collect();
    sous.wait_for("every accepted event", 120, || {
        markers(&sous.log_events("queued")) == want_q && markers(&sous.log_events("slow")) == want_s
    })
    .await;
    sous.wait_for_empty_queue(60).await;
}
