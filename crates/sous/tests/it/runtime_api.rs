//! The Runtime API (2018-06-01) as custom runtimes see it (issue 2, points 7 and 8): `/next`
//! headers, `/response`, `/error`, `/init/error`, status codes, and what the caller gets for
//! function errors, init errors, timeouts and runtimes that exit mid-invocation.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_carries_every_header_lambda_sends() {
    let server = Server::start();
    let name = unique("next");
    let runtime = shell_runtime("", r#"  respond "$HEADERS""#);
    create_ok(
        &server,
        create(&server.client, &name, &bootstrap_zip(runtime)).timeout(30),
    )
    .await;
    // Warm it up so the deadline check below is not blurred by the cold start.
    invoke(&server, &name, b"{}").await;

    let before = now_ms();
    let out = invoke(&server, &name, br#"{"x":1}"#).await;
    let after = now_ms();
    let text = out.text();
    let headers: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let get = |k: &str| {
        headers
            .get(k)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("/next lacks {k}:\n{text}"))
    };
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "/next answers 200:\n{text}"
    );
    assert_eq!(
        Some(get("lambda-runtime-aws-request-id")),
        out.request_id.as_deref()
    );
    let deadline: u128 = get("lambda-runtime-deadline-ms")
        .parse()
        .expect("deadline is epoch ms");
    assert!(
        deadline + 100 >= before + 30_000 && deadline <= after + 30_000,
        "deadline {deadline} should be the invoke start + 30 s (invoke ran {before}..{after})"
    );
    assert_eq!(
        get("lambda-runtime-invoked-function-arn"),
        function_arn(&name)
    );
    assert_matches(
        r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24}",
        get("lambda-runtime-trace-id"),
        "trace id",
    );
    assert!(
        !headers.contains_key("lambda-runtime-client-context"),
        "no client context given:\n{text}"
    );
    assert!(
        !headers.contains_key("lambda-runtime-cognito-identity"),
        "no identity given:\n{text}"
    );

    let again = invoke(&server, &name, b"{}").await;
    let trace2 = again
        .text()
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("lambda-runtime-trace-id:")
        })
        .map(|l| l.split_once(':').unwrap().1.trim().to_string())
        .expect("trace id");
    assert_ne!(
        trace2,
        get("lambda-runtime-trace-id"),
        "a trace id per invocation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_api_status_codes() {
    let server = Server::start();
    let name = unique("codes");
    // Invocation 1 probes wrong calls, then responds; invocation 2 reports what the valid
    // response and a second response to the same id got.
    let runtime = shell_runtime(
        "N=0",
        r#"  N=$((N+1))
  code() { curl -sS -o "$WORK/body" -w '%{http_code}' -H 'Expect:' -X POST "$@"; }
  if [ "$N" = 1 ]; then
    BOGUS=$(code --data-binary '{}' "$API/invocation/not-the-current-id/response")
    BOGUS_ERR=$(code --data-binary '{}' -H 'Lambda-Runtime-Function-Error-Type: X.Y' "$API/invocation/not-the-current-id/error")
    INIT_ERR=$(code --data-binary '{}' "$API/init/error")
    printf '{"bogus_response":%s,"bogus_error":%s,"init_error_after_init":%s}' "$BOGUS" "$BOGUS_ERR" "$INIT_ERR" > "$WORK/out"
    FIRST_ID=$REQUEST_ID
    FIRST=$(code --data-binary "@$WORK/out" "$API/invocation/$REQUEST_ID/response")
    FIRST_BODY=$(cat "$WORK/body")
    SECOND=$(code --data-binary '{}' "$API/invocation/$FIRST_ID/response")
  else
    printf '{"first_response":%s,"first_body":%s,"second_response":%s}' "$FIRST" "$FIRST_BODY" "$SECOND" > "$WORK/out"
    respond "$WORK/out"
  fi"#,
    );
    create_ok(
        &server,
        create(&server.client, &name, &bootstrap_zip(runtime)),
    )
    .await;
    let first = invoke(&server, &name, b"{}").await;
    assert_eq!(first.function_error, None, "{}", first.text());
    let v = first.json();
    assert_eq!(
        v["bogus_response"], 400,
        "response for an unknown request id: {v}"
    );
    assert_eq!(
        v["bogus_error"], 400,
        "error for an unknown request id: {v}"
    );
    assert_eq!(
        v["init_error_after_init"], 403,
        "init/error outside init: {v}"
    );
    let second = invoke(&server, &name, b"{}").await;
    let v = second.json();
    assert_eq!(v["first_response"], 202, "{v}");
    assert_eq!(v["first_body"], json!({"status": "OK"}), "{v}");
    let dup = v["second_response"].as_u64().unwrap();
    assert!(
        dup == 400 || dup == 403,
        "a second response for the same id is refused: {v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocation_error_reaches_the_caller_verbatim() {
    let server = Server::start();
    let name = unique("fnerr");
    let error_body = r#"{"errorMessage":"it broke","errorType":"MyError","stackTrace":["at a (x.js:1)","at b (y.js:2)"]}"#;
    let runtime = shell_runtime(
        "",
        &format!(
            r#"  if grep -q '"fail"' "$EVENT"; then fail MyError.Broken '{error_body}'; else respond "$EVENT"; fi"#
        ),
    );
    create_ok(
        &server,
        create(&server.client, &name, &bootstrap_zip(runtime)),
    )
    .await;
    let out = invoke(&server, &name, br#"{"fail":true}"#).await;
    assert_eq!(out.status, 200, "function errors keep 200");
    assert_eq!(out.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(out.text(), error_body, "the /error body, verbatim");
    assert_eq!(out.executed_version.as_deref(), Some("$LATEST"));
    let id = out.request_id.clone().unwrap();
    assert!(
        out.log().contains(&format!("END RequestId: {id}")),
        "{}",
        out.log()
    );
    assert!(
        out.log().contains(&format!("REPORT RequestId: {id}")),
        "{}",
        out.log()
    );

    // The environment survives a handled error and serves the next event warm.
    let ok = invoke(&server, &name, br#"{"fine":1}"#).await;
    assert_eq!(ok.function_error, None);
    assert_eq!(ok.json(), json!({"fine": 1}));
    assert!(
        !ok.log().contains("Init Duration: "),
        "same environment after an error:\n{}",
        ok.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_error_is_returned_and_the_next_invoke_retries_init() {
    let server = Server::start();
    let name = unique("initerr");
    let body = r#"{"errorMessage":"cannot import module","errorType":"Runtime.ImportModuleError","stackTrace":[]}"#;
    let bootstrap = format!(
        r#"#!/bin/sh
printf '%s' '{body}' > /tmp/sous-initerr-$$
curl -sS -H 'Expect:' -X POST -H 'Lambda-Runtime-Function-Error-Type: Runtime.ImportModuleError' \
  --data-binary @/tmp/sous-initerr-$$ "http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/init/error" >/dev/null
rm -f /tmp/sous-initerr-$$
exit 1
"#
    );
    create_ok(
        &server,
        create(&server.client, &name, &bootstrap_zip(bootstrap)),
    )
    .await;
    for attempt in 1..=2 {
        let out = invoke(&server, &name, b"{}").await;
        assert_eq!(out.status, 200, "attempt {attempt}");
        assert_eq!(
            out.function_error.as_deref(),
            Some("Unhandled"),
            "attempt {attempt}"
        );
        assert_eq!(out.text(), body, "attempt {attempt}: the init error body");
    }
    // The function stays usable: fixing the code fixes the invoke.
    server
        .client
        .update_function_code()
        .function_name(&name)
        .zip_file(bootstrap_zip(echo_runtime()).into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("UpdateFunctionCode: {:#?}", api_error(e)));
    let out = invoke(&server, &name, br#"{"ok":1}"#).await;
    assert_eq!(out.function_error, None, "{}", out.text());
    assert_eq!(out.json(), json!({"ok": 1}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_that_exits_during_init_is_runtime_exit_error() {
    let server = Server::start();
    let name = unique("initexit");
    create_ok(
        &server,
        create(
            &server.client,
            &name,
            &bootstrap_zip("#!/bin/sh\necho dying\nexit 3\n"),
        ),
    )
    .await;
    let out = invoke(&server, &name, b"{}").await;
    assert_eq!(out.function_error.as_deref(), Some("Unhandled"));
    let v = out.json();
    assert_eq!(v["errorType"], "Runtime.ExitError", "{v}");
    let msg = v["errorMessage"].as_str().unwrap_or("");
    assert!(
        msg.contains("Runtime exited with error: exit status 3"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_stops_the_environment_and_the_next_invoke_gets_a_new_one() {
    let server = Server::start();
    let name = unique("timeout");
    let sleeper = unique("sleeper");
    let runtime = shell_runtime(
        "",
        &format!(
            r#"  if grep -q '"sleep"' "$EVENT"; then SOUS_TEST_MARKER={sleeper} sh -c 'sleep 5; true' {sleeper}; fi
  respond_text "{{\"env\":\"$AWS_LAMBDA_LOG_STREAM_NAME\"}}""#
        ),
    );
    create_ok(
        &server,
        create(&server.client, &name, &bootstrap_zip(runtime)).timeout(1),
    )
    .await;
    // Warm up, so that the timed invocation measures the timeout, not a cold start.
    let warm = invoke(&server, &name, b"{}").await;
    // Environments are told apart by their log stream (a PID is 2 in every sandbox).
    let warm_pid = warm.json()["env"].as_str().unwrap().to_string();

    let out = invoke(&server, &name, br#"{"sleep":true}"#).await;
    let id = out.request_id.clone().expect("request id");
    assert_eq!(out.status, 200);
    assert_eq!(out.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(
        out.json(),
        json!({"errorType": "Sandbox.Timedout", "errorMessage": format!("RequestId: {id} Error: Task timed out after 1.00 seconds")})
    );
    assert!(
        out.elapsed >= Duration::from_millis(1000),
        "answered before the deadline: {:?}",
        out.elapsed
    );
    // Lambda answers within ~100 ms of the deadline; allow for a loaded 2-core machine (the
    // function would sleep for 5 s).
    assert!(
        out.elapsed < Duration::from_millis(4000),
        "timeout answered late: {:?}",
        out.elapsed
    );
    assert!(
        out.log().contains(&format!("REPORT RequestId: {id}")),
        "{}",
        out.log()
    );
    let left = wait_processes_gone(&sleeper, Duration::from_secs(2));
    reap(&sleeper);
    assert!(
        left.is_empty(),
        "the timed-out environment was not stopped: {left:?}"
    );

    let next = invoke(&server, &name, b"{}").await;
    assert_eq!(next.function_error, None, "{}", next.text());
    assert_ne!(
        next.json()["env"].as_str().unwrap(),
        warm_pid,
        "a new environment"
    );
    assert!(
        next.log().contains("Init Duration: "),
        "a new environment has an init:\n{}",
        next.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_exiting_mid_invocation_is_runtime_exit_error_and_is_replaced() {
    let server = Server::start();
    let name = unique("crash");
    let runtime = shell_runtime(
        "",
        r#"  if grep -q '"crash"' "$EVENT"; then exit 1; fi
  if grep -q '"kill"' "$EVENT"; then kill -9 $$; fi
  respond_text "{\"env\":\"$AWS_LAMBDA_LOG_STREAM_NAME\"}""#,
    );
    create_ok(
        &server,
        create(&server.client, &name, &bootstrap_zip(runtime)),
    )
    .await;
    let first_pid = invoke(&server, &name, b"{}").await.json()["env"]
        .as_str()
        .unwrap()
        .to_string();

    let out = invoke(&server, &name, br#"{"crash":true}"#).await;
    let id = out.request_id.clone().unwrap();
    assert_eq!(out.status, 200);
    assert_eq!(out.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(
        out.json(),
        json!({"errorType": "Runtime.ExitError", "errorMessage": format!("RequestId: {id} Error: Runtime exited with error: exit status 1")})
    );

    let next = invoke(&server, &name, b"{}").await;
    assert_eq!(next.function_error, None, "{}", next.text());
    let second_pid = next.json()["env"].as_str().unwrap().to_string();
    assert_ne!(
        second_pid, first_pid,
        "the crashed environment was replaced"
    );
    assert!(next.log().contains("Init Duration: "), "{}", next.log());

    let out = invoke(&server, &name, br#"{"kill":true}"#).await;
    let id = out.request_id.clone().unwrap();
    assert_eq!(out.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(
        out.json(),
        json!({"errorType": "Runtime.ExitError", "errorMessage": format!("RequestId: {id} Error: Runtime exited with error: signal: killed")})
    );
    let last = invoke(&server, &name, b"{}").await;
    assert_eq!(last.function_error, None, "{}", last.text());
}
