//! Scaling and concurrency through the real binary and aws-sdk-lambda: scale-out to N
//! environments and idle scale-down to zero, reserved and account concurrency with AWS's
//! throttles, host memory admission, provisioned concurrency, and the status endpoint.
//!
//! Functions here are shell-script custom runtimes that sleep as long as the event asks, so
//! a test holds environments busy for as long as it needs; every wait polls with a generous
//! bound instead of sleeping a fixed time.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::common::*;
use aws_sdk_lambda::types::ProvisionedConcurrencyStatusEnum;
use aws_sdk_lambda::Client;
use serde_json::Value;

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
    fn start(args: &[&str]) -> Sous {
        Sous {
            server: Server::start_with(ServerOptions::with_args(args)),
        }
    }

    async fn create(&self, name: &str, memory: i32) {
        let out = create(&self.client, name, &bootstrap_zip(sleeper()))
            .memory_size(memory)
            .timeout(60)
            .send()
            .await;
        if let Err(e) = out {
            panic!("CreateFunction: {:#?}\n{}", api_error(e), self.output());
        }
    }

    /// A synchronous invoke that sleeps `secs` in the function; Ok(answer) or Err(throttle).
    async fn call(&self, name: &str, secs: f64) -> Result<Reply, ApiError> {
        call(&self.client, name, secs).await
    }
}

/// A runtime that sleeps the event's `sleep` seconds, then answers with what identifies its
/// environment: log stream, pid, initialization type, version.
fn sleeper() -> String {
    shell_runtime(
        "",
        r#"  S=$(sed -n 's/.*"sleep": *\([0-9.]*\).*/\1/p' "$EVENT")
  if [ -n "$S" ]; then sleep "$S"; fi
  respond_text "{\"stream\":\"$AWS_LAMBDA_LOG_STREAM_NAME\",\"pid\":$$,\"init\":\"$AWS_LAMBDA_INITIALIZATION_TYPE\",\"version\":\"$AWS_LAMBDA_FUNCTION_VERSION\"}""#,
    )
}

#[derive(Debug, Clone)]
struct Reply {
    stream: String,
    init: String,
    version: String,
    log: String,
}

impl Reply {
    fn cold(&self) -> bool {
        self.log.contains("Init Duration")
    }
}

async fn call(client: &Client, name: &str, secs: f64) -> Result<Reply, ApiError> {
    let out = invoke_req(client, name, format!(r#"{{"sleep": {secs}}}"#).as_bytes())
        .send()
        .await
        .map_err(api_error)?;
    let payload = out
        .payload()
        .map(|b| b.as_ref().to_vec())
        .unwrap_or_default();
    assert!(
        out.function_error().is_none(),
        "function error: {}",
        String::from_utf8_lossy(&payload)
    );
    let v: Value = serde_json::from_slice(&payload)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&payload)));
    let log = out
        .log_result()
        .map(|l| String::from_utf8_lossy(&unb64(l)).into_owned())
        .unwrap_or_default();
    Ok(Reply {
        stream: v["stream"].as_str().unwrap_or_default().to_string(),
        init: v["init"].as_str().unwrap_or_default().to_string(),
        version: v["version"].as_str().unwrap_or_default().to_string(),
        log,
    })
}

/// Asserts a 429 TooManyRequestsException with AWS's message and `reason`.
fn assert_throttled(e: &ApiError, reason: &str) {
    e.assert(429, "TooManyRequestsException");
    let body: Value = serde_json::from_str(&e.body).unwrap_or_else(|_| panic!("{e:#?}"));
    assert_eq!(body["Reason"], reason, "{e:#?}");
    assert_eq!(body["message"], "Rate Exceeded.", "{e:#?}");
    assert_eq!(body["Type"], "User", "{e:#?}");
}

fn in_flight(status: &Value, function: &str) -> u64 {
    status["Functions"][function]["InFlight"]
        .as_u64()
        .unwrap_or(0)
}

fn environments(status: &Value, function: &str) -> Vec<Value> {
    status["Environments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["Function"] == function)
        .cloned()
        .collect()
}

/// Starts `n` invocations of `target` (a function, possibly qualified) that sleep `secs`,
/// and waits until all `n` are in flight.
async fn hold(
    sous: &Sous,
    target: &str,
    n: u64,
    secs: f64,
) -> Vec<tokio::task::JoinHandle<Result<Reply, ApiError>>> {
    let function = target.split(':').next().unwrap_or(target).to_string();
    let before = in_flight(&sous.status().await, &function);
    let handles = (0..n)
        .map(|_| {
            let client = sous.client.clone();
            let target = target.to_string();
            tokio::spawn(async move { call(&client, &target, secs).await })
        })
        .collect();
    sous.wait_status("invocations in flight", 60, |s| {
        in_flight(s, &function) >= before + n
    })
    .await;
    handles
}

async fn join_ok(handles: Vec<tokio::task::JoinHandle<Result<Reply, ApiError>>>) -> Vec<Reply> {
    let mut out = Vec::new();
    for h in handles {
        out.push(
            h.await
                .unwrap()
                .unwrap_or_else(|e| panic!("held invocation failed: {e:#?}")),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_invocations_scale_out_and_reuse_environments() {
    let sous = Sous::start(&[]);
    let name = unique("scale");
    sous.create(&name, 128).await;
    const N: usize = 4;
    let calls = (0..N).map(|_| sous.call(&name, 1.5));
    let first: Vec<Reply> = futures_join(calls).await;
    let streams: BTreeSet<String> = first.iter().map(|r| r.stream.clone()).collect();
    assert_eq!(
        streams.len(),
        N,
        "each concurrent invocation gets its own environment: {first:#?}"
    );
    assert!(first.iter().all(Reply::cold), "{first:#?}");
    assert!(first.iter().all(|r| r.init == "on-demand"), "{first:#?}");

    let status = sous
        .wait_status("idle environments", 60, |s| {
            environments(s, &name)
                .iter()
                .filter(|e| e["State"] == "idle")
                .count()
                == N
        })
        .await;
    assert_eq!(
        status["Functions"][&name]["Versions"]["$LATEST"]["Idle"],
        N as u64
    );

    // The same burst again runs warm, in the same environments.
    let calls = (0..N).map(|_| sous.call(&name, 0.5));
    let second: Vec<Reply> = futures_join(calls).await;
    for r in &second {
        assert!(streams.contains(&r.stream), "{r:#?} not one of {streams:?}");
        assert!(
            !r.cold(),
            "warm invocation reported Init Duration: {}",
            r.log
        );
    }
}

/// Awaits futures concurrently (all on this task), in order, panicking on an API error.
async fn futures_join<F>(calls: impl Iterator<Item = F>) -> Vec<Reply>
where
    F: std::future::Future<Output = Result<Reply, ApiError>>,
{
    let results = join_all(calls.collect()).await;
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("invoke failed: {e:#?}")))
        .collect()
}

async fn join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(Option::unwrap).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reserved_concurrency_caps_a_function_and_zero_throttles_all() {
    let sous = Sous::start(&[]);
    let c = &sous.client;
    let name = unique("reserved");
    sous.create(&name, 128).await;

    let e = expect_err(
        c.get_function_concurrency()
            .function_name("nope")
            .send()
            .await,
    );
    e.assert(404, "ResourceNotFoundException");
    let got = c
        .get_function_concurrency()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(got.reserved_concurrent_executions(), None);

    let put = c
        .put_function_concurrency()
        .function_name(&name)
        .reserved_concurrent_executions(2)
        .send()
        .await
        .unwrap();
    assert_eq!(put.reserved_concurrent_executions(), Some(2));
    let got = c
        .get_function_concurrency()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(got.reserved_concurrent_executions(), Some(2));
    let f = c.get_function().function_name(&name).send().await.unwrap();
    assert_eq!(
        f.concurrency()
            .and_then(|c| c.reserved_concurrent_executions()),
        Some(2)
    );
    let settings = c.get_account_settings().send().await.unwrap();
    let limit = settings.account_limit().unwrap();
    assert_eq!(limit.concurrent_executions(), 1000);
    assert_eq!(limit.unreserved_concurrent_executions(), Some(998));

    // Two in flight: the third is throttled, and nothing new starts for it.
    let held = hold(&sous, &name, 2, 4.0).await;
    let e = sous.call(&name, 0.0).await.unwrap_err();
    assert_throttled(&e, "ReservedFunctionConcurrentInvocationLimitExceeded");
    let status = sous.status().await;
    assert_eq!(environments(&status, &name).len(), 2, "{status:#}");
    let replies = join_ok(held).await;
    assert_ne!(replies[0].stream, replies[1].stream);
    // Capacity is given back: the next one runs.
    sous.call(&name, 0.0).await.unwrap();

    // 0 throttles every invocation.
    c.put_function_concurrency()
        .function_name(&name)
        .reserved_concurrent_executions(0)
        .send()
        .await
        .unwrap();
    for _ in 0..3 {
        let e = sous.call(&name, 0.0).await.unwrap_err();
        assert_throttled(&e, "ReservedFunctionConcurrentInvocationLimitExceeded");
    }

    // Delete: unreserved again, and it runs.
    c.delete_function_concurrency()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    let got = c
        .get_function_concurrency()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(got.reserved_concurrent_executions(), None);
    sous.call(&name, 0.0).await.unwrap();
    let f = c.get_function().function_name(&name).send().await.unwrap();
    assert!(f.concurrency().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn account_settings_carve_reserved_concurrency_out_of_the_account() {
    let sous = Sous::start(&[]);
    let c = &sous.client;
    let (a, b, d) = (unique("acct-a"), unique("acct-b"), unique("acct-d"));
    for n in [&a, &b, &d] {
        sous.create(n, 128).await;
    }
    let unreserved = || async {
        c.get_account_settings()
            .send()
            .await
            .unwrap()
            .account_limit()
            .unwrap()
            .unreserved_concurrent_executions()
            .unwrap()
    };
    assert_eq!(unreserved().await, 1000);
    let put = |name: String, n: i32| async move {
        c.put_function_concurrency()
            .function_name(name)
            .reserved_concurrent_executions(n)
            .send()
            .await
    };
    put(a.clone(), 5).await.unwrap();
    put(b.clone(), 7).await.unwrap();
    assert_eq!(unreserved().await, 988);
    // Re-putting a function's own reservation does not count it twice.
    put(b.clone(), 7).await.unwrap();
    assert_eq!(unreserved().await, 988);
    // At least 100 must stay unreserved.
    let e = expect_err(put(d.clone(), 889).await);
    e.assert(400, "InvalidParameterValueException");
    assert_eq!(
        e.message(),
        "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [100]."
    );
    put(d.clone(), 888).await.unwrap();
    assert_eq!(unreserved().await, 100);
    c.delete_function_concurrency()
        .function_name(&d)
        .send()
        .await
        .unwrap();
    // Deleting a function gives its reservation back.
    c.delete_function().function_name(&a).send().await.unwrap();
    assert_eq!(unreserved().await, 993);
    let e = expect_err(put("nope".into(), 1).await);
    e.assert(404, "ResourceNotFoundException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn account_limit_throttles_unreserved_functions() {
    let sous = Sous::start(&["--account-concurrency", "2"]);
    let c = &sous.client;
    let (a, b) = (unique("limit-a"), unique("limit-b"));
    sous.create(&a, 128).await;
    sous.create(&b, 128).await;
    let limit = c.get_account_settings().send().await.unwrap();
    let limit = limit.account_limit().unwrap();
    assert_eq!(limit.concurrent_executions(), 2);
    assert_eq!(limit.unreserved_concurrent_executions(), Some(2));
    // A small account must keep all of it unreserved, as AWS answers such accounts.
    let e = expect_err(
        c.put_function_concurrency()
            .function_name(&a)
            .reserved_concurrent_executions(1)
            .send()
            .await,
    );
    e.assert(400, "InvalidParameterValueException");
    assert!(
        e.message().ends_with("below its minimum value of [2]."),
        "{e:#?}"
    );

    let held_a = hold(&sous, &a, 1, 4.0).await;
    let held_b = hold(&sous, &b, 1, 4.0).await;
    for f in [&a, &b] {
        let e = sous.call(f, 0.0).await.unwrap_err();
        assert_throttled(&e, "ConcurrentInvocationLimitExceeded");
    }
    join_ok(held_a).await;
    join_ok(held_b).await;
    sous.call(&a, 0.0).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_environments_are_stopped_down_to_zero() {
    let sous = Sous::start(&["--idle-timeout-secs", "2"]);
    let name = unique("idle");
    sous.create(&name, 128).await;
    let first = sous.call(&name, 0.0).await.unwrap();
    assert!(first.cold(), "{}", first.log);
    let second = sous.call(&name, 0.0).await.unwrap();
    if second.stream == first.stream {
        assert!(!second.cold(), "{}", second.log);
    }
    sous.wait_status("scale-down to zero", 60, |s| {
        environments(s, &name).is_empty()
    })
    .await;
    let third = sous.call(&name, 0.0).await.unwrap();
    assert!(
        third.cold(),
        "after scale-down the next invoke is a cold start: {}",
        third.log
    );
    assert_ne!(third.stream, first.stream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn host_memory_admission_throttles_instead_of_overcommitting() {
    let sous = Sous::start(&["--host-memory-mb", "256", "--memory-headroom-mb", "0"]);
    let (a, b) = (unique("mem-a"), unique("mem-b"));
    sous.create(&a, 128).await;
    sous.create(&b, 128).await;

    let rec = Recorder::default();
    sous.client
        .get_account_settings()
        .customize()
        .interceptor(rec.clone())
        .send()
        .await
        .unwrap();
    let sous_block = &rec.seen().json()["Sous"];
    assert_eq!(sous_block["HostMemoryMB"], 256);
    assert_eq!(sous_block["MemoryCapacityMB"], 256);
    assert_eq!(sous_block["MemoryAvailableMB"], 256);

    let held = hold(&sous, &a, 2, 4.0).await;
    let status = sous.status().await;
    assert_eq!(status["Memory"]["ReservedMB"], 256, "{status:#}");
    assert_eq!(status["Memory"]["AvailableMB"], 0, "{status:#}");
    // A third environment does not fit: throttled, not started.
    for f in [&a, &b] {
        let e = sous.call(f, 0.0).await.unwrap_err();
        assert_throttled(&e, "ConcurrentInvocationLimitExceeded");
    }
    let status = sous.status().await;
    assert_eq!(
        status["Environments"].as_array().unwrap().len(),
        2,
        "{status:#}"
    );
    join_ok(held).await;

    // With both idle, another function's cold start stops the least recently used one.
    let r = sous.call(&b, 0.0).await.unwrap();
    assert!(r.cold());
    let status = sous.status().await;
    assert_eq!(environments(&status, &a).len(), 1, "{status:#}");
    assert_eq!(environments(&status, &b).len(), 1, "{status:#}");
    assert_eq!(status["Memory"]["ReservedMB"], 256, "{status:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn provisioned_concurrency_lifecycle() {
    let mut sous = Sous::start(&[]);
    let name = unique("prov");
    sous.create(&name, 128).await;
    let c = sous.client.clone();
    let v1 = c
        .publish_version()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(v1.version(), Some("1"));
    c.create_alias()
        .function_name(&name)
        .name("live")
        .function_version("1")
        .send()
        .await
        .unwrap();

    // $LATEST is refused.
    let e = expect_err(
        c.put_provisioned_concurrency_config()
            .function_name(&name)
            .qualifier("$LATEST")
            .provisioned_concurrent_executions(1)
            .send()
            .await,
    );
    e.assert(400, "InvalidParameterValueException");
    assert_eq!(
        e.message(),
        "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
    );
    let e = expect_err(
        c.get_provisioned_concurrency_config()
            .function_name(&name)
            .qualifier("1")
            .send()
            .await,
    );
    e.assert(404, "ProvisionedConcurrencyConfigNotFoundException");
    let e = expect_err(
        c.put_provisioned_concurrency_config()
            .function_name(&name)
            .qualifier("7")
            .provisioned_concurrent_executions(1)
            .send()
            .await,
    );
    e.assert(404, "ResourceNotFoundException");

    let put = c
        .put_provisioned_concurrency_config()
        .function_name(&name)
        .qualifier("1")
        .provisioned_concurrent_executions(2)
        .send()
        .await
        .unwrap();
    assert_eq!(put.requested_provisioned_concurrent_executions(), Some(2));
    assert_matches(
        LAST_MODIFIED_RE,
        put.last_modified().unwrap(),
        "LastModified",
    );
    assert!(
        matches!(
            put.status(),
            Some(
                ProvisionedConcurrencyStatusEnum::InProgress
                    | ProvisionedConcurrencyStatusEnum::Ready
            )
        ),
        "{put:?}"
    );
    let ready = wait_ready(&sous, &name, "1", 2).await;
    assert_eq!(ready.available_provisioned_concurrent_executions(), Some(2));
    assert_eq!(ready.allocated_provisioned_concurrent_executions(), Some(2));

    // Both environments exist before any traffic, and the first invoke is warm.
    let status = sous.status().await;
    let envs = environments(&status, &name);
    assert_eq!(envs.len(), 2, "{status:#}");
    assert!(
        envs.iter().all(|e| e["ProvisionedFor"] == "1"),
        "{status:#}"
    );
    let r = call(&c, &format!("{name}:1"), 0.0).await.unwrap();
    assert_eq!(r.init, "provisioned-concurrency");
    assert_eq!(r.version, "1");
    assert!(!r.cold(), "provisioned: no Init Duration: {}", r.log);
    let provisioned_stream = r.stream.clone();
    // Through the alias too.
    let r = call(&c, &format!("{name}:live"), 0.0).await.unwrap();
    assert_eq!(r.init, "provisioned-concurrency");
    // $LATEST is on-demand.
    let r = call(&c, &name, 0.0).await.unwrap();
    assert_eq!(r.init, "on-demand");
    assert!(r.cold());

    // A version and an alias routing to it cannot both be provisioned.
    let e = expect_err(
        c.put_provisioned_concurrency_config()
            .function_name(&name)
            .qualifier("live")
            .provisioned_concurrent_executions(1)
            .send()
            .await,
    );
    e.assert(409, "ResourceConflictException");

    let list = c
        .list_provisioned_concurrency_configs()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    let items = list.provisioned_concurrency_configs();
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0].function_arn(),
        Some(format!("{}:1", function_arn(&name)).as_str())
    );
    assert_eq!(
        items[0].status(),
        Some(&ProvisionedConcurrencyStatusEnum::Ready)
    );

    // Updating $LATEST leaves the published version's environments alone.
    c.update_function_code()
        .function_name(&name)
        .zip_file(aws_smithy_types::Blob::new(bootstrap_zip(sleeper() + "\n")))
        .send()
        .await
        .unwrap();
    let r = call(&c, &format!("{name}:1"), 0.0).await.unwrap();
    assert_eq!(r.init, "provisioned-concurrency");
    assert!(!r.cold());
    let status = sous.status().await;
    assert!(
        environments(&status, &name)
            .iter()
            .any(|e| e["EnvironmentId"].is_string()),
        "{status:#}"
    );
    let _ = provisioned_stream;

    // Durable: a restart provisions again.
    sous.restart();
    let c = sous.client.clone();
    wait_ready(&sous, &name, "1", 2).await;
    let r = call(&c, &format!("{name}:1"), 0.0).await.unwrap();
    assert_eq!(r.init, "provisioned-concurrency");
    assert!(!r.cold());

    // Delete: 204, then 404, and the environments go.
    c.delete_provisioned_concurrency_config()
        .function_name(&name)
        .qualifier("1")
        .send()
        .await
        .unwrap();
    let e = expect_err(
        c.get_provisioned_concurrency_config()
            .function_name(&name)
            .qualifier("1")
            .send()
            .await,
    );
    e.assert(404, "ProvisionedConcurrencyConfigNotFoundException");
    sous.wait_status("provisioned environments stopped", 60, |s| {
        environments(s, &name)
            .iter()
            .all(|e| e["ProvisionedFor"].is_null())
    })
    .await;
    let list = c
        .list_provisioned_concurrency_configs()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    assert!(list.provisioned_concurrency_configs().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn provisioned_concurrency_counts_against_reserved_and_fails_on_init_error() {
    let sous = Sous::start(&[]);
    let c = &sous.client;
    let name = unique("prov-res");
    sous.create(&name, 128).await;
    c.publish_version()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    c.put_function_concurrency()
        .function_name(&name)
        .reserved_concurrent_executions(1)
        .send()
        .await
        .unwrap();
    let e = expect_err(
        c.put_provisioned_concurrency_config()
            .function_name(&name)
            .qualifier("1")
            .provisioned_concurrent_executions(2)
            .send()
            .await,
    );
    e.assert(400, "InvalidParameterValueException");
    assert_eq!(
        e.message(),
        "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function"
    );
    c.put_provisioned_concurrency_config()
        .function_name(&name)
        .qualifier("1")
        .provisioned_concurrent_executions(1)
        .send()
        .await
        .unwrap();
    wait_ready(&sous, &name, "1", 1).await;
    // Reserved 1 is all provisioned: a second concurrent invocation has no on-demand room.
    let held = hold(&sous, &format!("{name}:1"), 1, 3.0).await;
    let e = sous.call(&format!("{name}:1"), 0.0).await.unwrap_err();
    assert_throttled(&e, "ReservedFunctionConcurrentInvocationLimitExceeded");
    let r = join_ok(held).await;
    assert_eq!(r[0].init, "provisioned-concurrency");

    // A function whose init fails: FAILED with a reason.
    let broken = unique("prov-broken");
    create_ok_with(&sous, &broken, shell_runtime("exit 3", "")).await;
    c.publish_version()
        .function_name(&broken)
        .send()
        .await
        .unwrap();
    c.put_provisioned_concurrency_config()
        .function_name(&broken)
        .qualifier("1")
        .provisioned_concurrent_executions(1)
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = c
            .get_provisioned_concurrency_config()
            .function_name(&broken)
            .qualifier("1")
            .send()
            .await
            .unwrap();
        if got.status() == Some(&ProvisionedConcurrencyStatusEnum::Failed) {
            assert_eq!(got.status_reason(), Some("FUNCTION_ERROR_INIT_FAILURE"));
            assert_eq!(got.allocated_provisioned_concurrent_executions(), Some(0));
            break;
        }
        assert!(Instant::now() < deadline, "never FAILED: {got:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn create_ok_with(sous: &Sous, name: &str, bootstrap: String) {
    if let Err(e) = create(&sous.client, name, &bootstrap_zip(bootstrap))
        .send()
        .await
    {
        panic!("CreateFunction: {:#?}", api_error(e));
    }
}

/// Polls GetProvisionedConcurrencyConfig until READY with `n` allocated.
async fn wait_ready(
    sous: &Sous,
    name: &str,
    qualifier: &str,
    n: i32,
) -> aws_sdk_lambda::operation::get_provisioned_concurrency_config::GetProvisionedConcurrencyConfigOutput{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = sous
            .client
            .get_provisioned_concurrency_config()
            .function_name(name)
            .qualifier(qualifier)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{:#?}", api_error(e)));
        assert_eq!(got.requested_provisioned_concurrent_executions(), Some(n));
        if got.status() == Some(&ProvisionedConcurrencyStatusEnum::Ready) {
            return got;
        }
        assert_ne!(
            got.status(),
            Some(&ProvisionedConcurrencyStatusEnum::Failed),
            "{got:?}\n{}",
            sous.output()
        );
        assert!(
            Instant::now() < deadline,
            "never READY: {got:?}\n{}",
            sous.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
