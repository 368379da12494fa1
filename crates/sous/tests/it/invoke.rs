//! Synchronous Invoke over the wire (issue 2, points 6, 8 and 9): results, DryRun, payload
//! limits, headers, request ids, LogType=Tail with START/END/REPORT, warm reuse, the
//! environment variables Lambda sets, client context.

use std::collections::BTreeMap;

use crate::common::*;
use aws_sdk_lambda::types::InvocationType;

/// A runtime answering `{"request_id": ..., "event": ...}`.
fn id_echo_runtime() -> String {
    shell_runtime(
        "",
        r#"  { printf '{"request_id":"%s","event":' "$REQUEST_ID"; cat "$EVENT"; printf '}'; } > "$WORK/out"
  respond "$WORK/out""#,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_response_returns_the_result_and_the_request_id_the_function_saw() {
    let server = Server::start();
    let name = unique("rr");
    create_ok(
        &server,
        create(&server.client, &name, &bootstrap_zip(id_echo_runtime())),
    )
    .await;
    let payload = br#"{"hello":"world","n":[1,2,3],"nested":{"a":null}}"#;
    let rec = Recorder::default();
    let out = finish_invoke(
        &server,
        invoke_req(&server.client, &name, payload)
            .customize()
            .interceptor(rec.clone())
            .send(),
    )
    .await;
    assert_eq!(out.status, 200);
    assert_eq!(out.function_error, None, "{}", out.text());
    assert_eq!(out.executed_version.as_deref(), Some("$LATEST"));
    let body = out.json();
    let seen_id = body["request_id"].as_str().unwrap().to_string();
    assert_matches(UUID_RE, &seen_id, "request id");
    assert_eq!(
        out.request_id.as_deref(),
        Some(seen_id.as_str()),
        "x-amzn-RequestId is the id the function saw"
    );
    assert_eq!(
        body["event"],
        serde_json::from_slice::<serde_json::Value>(payload).unwrap()
    );
    assert_eq!(rec.seen().header("X-Amz-Executed-Version"), Some("$LATEST"));

    // The body is exactly what the runtime posted: a plain echo returns the payload's bytes.
    let echo = unique("echo");
    create_ok(
        &server,
        create(&server.client, &echo, &bootstrap_zip(echo_runtime())),
    )
    .await;
    for p in [
        &b"\"a string\""[..],
        b"42",
        b"null",
        b"[1, 2,  3]",
        br#"{"k" : "v"}"#,
    ] {
        let out = invoke(&server, &echo, p).await;
        assert_eq!(out.payload, p, "echo of {}", String::from_utf8_lossy(p));
    }
    // An empty payload is allowed.
    let out = send_invoke(&server, server.client.invoke().function_name(&echo)).await;
    assert_eq!(out.status, 200);
    assert_eq!(out.function_error, None);

    // Each invocation has its own id.
    let a = invoke(&server, &name, b"{}").await;
    let b = invoke(&server, &name, b"{}").await;
    assert_ne!(a.request_id, b.request_id);
    assert_eq!(a.json()["request_id"].as_str(), a.request_id.as_deref());
    assert_eq!(b.json()["request_id"].as_str(), b.request_id.as_deref());

    // By ARN and with Qualifier=$LATEST.
    let out = send_invoke(
        &server,
        server
            .client
            .invoke()
            .function_name(function_arn(&name))
            .qualifier("$LATEST")
            .payload(b"{}".to_vec().into()),
    )
    .await;
    assert_eq!(out.status, 200);
    assert_eq!(out.executed_version.as_deref(), Some("$LATEST"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_is_204_and_runs_nothing() {
    let server = Server::start();
    let name = unique("dry");
    let marker = unique("dry-marker");
    create_ok(
        &server,
        create(
            &server.client,
            &name,
            &bootstrap_zip(marked_runtime(&marker)),
        )
        .environment(env_vars(&[("SOUS_TEST_MARKER", &marker)])),
    )
    .await;
    let out = server
        .client
        .invoke()
        .function_name(&name)
        .invocation_type(InvocationType::DryRun)
        .payload(b"{}".to_vec().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("DryRun: {:#?}", api_error(e)));
    assert_eq!(out.status_code(), 204);
    assert!(out.payload().map(|p| p.as_ref().is_empty()).unwrap_or(true));
    assert_eq!(out.function_error(), None);
    assert!(
        processes_with(&marker).is_empty(),
        "DryRun started an environment"
    );

    // DryRun on a missing function is a 404.
    let err = expect_err(
        server
            .client
            .invoke()
            .function_name(unique("missing"))
            .invocation_type(InvocationType::DryRun)
            .send()
            .await,
    );
    err.assert(404, "ResourceNotFoundException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_json_payload_is_invalid_request_content() {
    let server = Server::start();
    let name = unique("badjson");
    create_ok(
        &server,
        create(&server.client, &name, &bootstrap_zip(echo_runtime())),
    )
    .await;
    for bad in [&b"{not json"[..], b"{\"a\":1", b"\xff\xfe"] {
        let err = expect_err(invoke_req(&server.client, &name, bad).send().await);
        err.assert(400, "InvalidRequestContentException");
        assert!(
            err.message()
                .starts_with("Could not parse request body into json"),
            "{:?}",
            err.message()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_over_6_mb_is_413_and_response_over_6_mb_is_a_function_error() {
    let server = Server::start();
    let name = unique("big");
    let runtime = shell_runtime(
        "",
        r#"  if grep -q '"big"' "$EVENT"; then
    { printf '"'; head -c 7000000 /dev/zero | tr '\0' a; printf '"'; } > "$WORK/big"
    respond "$WORK/big"
  else
    respond "$EVENT"
  fi"#,
    );
    // Megabytes through a shell at a 128 MB function's CPU weight: more than the default 3 s
    // on a busy machine.
    create_ok(
        &server,
        create(&server.client, &name, &bootstrap_zip(runtime)).timeout(30),
    )
    .await;

    // Request: 6 MiB + 1 KiB of valid JSON.
    let mut big = Vec::with_capacity(6 * 1024 * 1024 + 1026);
    big.push(b'"');
    big.resize(6 * 1024 * 1024 + 1024, b'x');
    big.push(b'"');
    let err = expect_err(invoke_req(&server.client, &name, &big).send().await);
    // A `BrokenPipe` dispatch failure here means the server answered before reading the
    // body and closed the connection: clients then never see the 413.
    assert_eq!(err.status, Some(413), "{err:#?}");
    let code = err.code.clone().unwrap_or_default();
    assert!(
        code == "RequestEntityTooLargeException" || code == "RequestTooLargeException",
        "413 error code: {err:#?}"
    );

    // Just under the limit (5 MiB) goes through and comes back intact.
    let mut ok = vec![b'"'];
    ok.resize(5 * 1024 * 1024, b'y');
    ok.push(b'"');
    let out = invoke(&server, &name, &ok).await;
    assert_eq!(out.function_error, None);
    assert!(
        out.payload == ok,
        "5 MiB echo came back changed ({} bytes)",
        out.payload.len()
    );

    // Response: 7 MB.
    let out = invoke(&server, &name, br#"{"big":true}"#).await;
    assert_eq!(out.status, 200);
    assert_eq!(out.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(
        out.json(),
        serde_json::json!({
            "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
            "errorType": "Function.ResponseSizeTooLarge"
        })
    );
    // The function keeps working afterwards.
    let out = invoke(&server, &name, br#"{"small":true}"#).await;
    assert_eq!(out.function_error, None, "{}", out.text());
    assert_eq!(out.json(), serde_json::json!({"small": true}));
}

fn report_re(id: &str, memory: u32, cold: bool) -> String {
    let init = if cold {
        r"Init Duration: \d+\.\d{2} ms\t"
    } else {
        ""
    };
    format!(
        r"(?m)^REPORT RequestId: {id}\tDuration: \d+\.\d{{2}} ms\tBilled Duration: \d+ ms\tMemory Size: {memory} MB\tMax Memory Used: \d+ MB\t{init}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_tail_frames_the_invocation_with_start_end_report() {
    let server = Server::start();
    let name = unique("logs");
    let runtime = shell_runtime(
        r#"echo "init line on stdout""#,
        r#"  echo "to stdout $REQUEST_ID"
  echo "to stderr $REQUEST_ID" >&2
  if grep -q '"lots"' "$EVENT"; then
    i=0; while [ $i -lt 200 ]; do echo "filler line $i ......................................"; i=$((i+1)); done
  fi
  respond "$EVENT""#,
    );
    create_ok(
        &server,
        create(&server.client, &name, &bootstrap_zip(runtime)),
    )
    .await;

    let first = invoke(&server, &name, b"{}").await;
    let id = first.request_id.clone().expect("request id");
    let log = first.log();
    let start = format!("START RequestId: {id} Version: $LATEST");
    let end = format!("END RequestId: {id}");
    let out_line = format!("to stdout {id}");
    let err_line = format!("to stderr {id}");
    for needle in [&start, &end, &out_line, &err_line] {
        assert!(
            log.contains(needle.as_str()),
            "log lacks {needle:?}:\n{log}"
        );
    }
    let pos = |s: &str| log.find(s).unwrap();
    assert!(
        pos(&start) < pos(&out_line) && pos(&out_line) < pos(&end),
        "order START < output < END:\n{log}"
    );
    assert!(
        pos(&end) < pos("REPORT RequestId: "),
        "END before REPORT:\n{log}"
    );
    assert_matches(&report_re(&id, 128, true), log, "cold REPORT line");
    assert!(
        log.contains("Init Duration: "),
        "cold start reports Init Duration:\n{log}"
    );

    let second = invoke(&server, &name, b"{}").await;
    let id2 = second.request_id.clone().unwrap();
    let log2 = second.log();
    assert!(
        log2.contains(&format!("START RequestId: {id2} Version: $LATEST")),
        "{log2}"
    );
    assert!(log2.contains(&format!("END RequestId: {id2}")), "{log2}");
    assert_matches(&report_re(&id2, 128, false), log2, "warm REPORT line");
    assert!(
        !log2.contains("Init Duration: "),
        "a warm invoke has no Init Duration:\n{log2}"
    );
    assert!(
        !log2.contains(&id),
        "the tail holds only this invocation:\n{log2}"
    );

    // More output than 4 KB: only the last 4 KB come back, ending with REPORT.
    let third = invoke(&server, &name, br#"{"lots":true}"#).await;
    let id3 = third.request_id.clone().unwrap();
    let raw_len = third.log().len();
    assert!(
        raw_len <= 4096,
        "X-Amz-Log-Result holds at most 4 KB, got {raw_len}"
    );
    assert!(raw_len > 3000, "the last 4 KB, not less: {raw_len}");
    assert!(
        third.log().contains(&format!("REPORT RequestId: {id3}")),
        "{}",
        third.log()
    );
    assert!(third.log().contains("filler line 199"));

    // Without LogType=Tail there is no X-Amz-Log-Result.
    let plain = send_invoke(
        &server,
        server
            .client
            .invoke()
            .function_name(&name)
            .payload(b"{}".to_vec().into()),
    )
    .await;
    assert_eq!(plain.log, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_invokes_reuse_the_warm_environment() {
    let server = Server::start();
    let name = unique("warm");
    let runtime = shell_runtime(
        "COUNT=0",
        r#"  COUNT=$((COUNT+1))
  respond_text "{\"count\":$COUNT,\"pid\":$$}""#,
    );
    create_ok(
        &server,
        create(&server.client, &name, &bootstrap_zip(runtime)),
    )
    .await;
    let mut pids = Vec::new();
    for i in 1..=4 {
        let out = invoke(&server, &name, b"{}").await;
        let body = out.json();
        assert_eq!(
            body["count"], i,
            "global state persists across warm invokes: {body}"
        );
        assert_eq!(
            out.log().contains("Init Duration: "),
            i == 1,
            "Init Duration only on the cold start"
        );
        pids.push(body["pid"].as_u64().unwrap());
    }
    pids.dedup();
    assert_eq!(pids.len(), 1, "one process served every invoke");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_has_every_variable_lambda_sets() {
    let server = Server::start();
    let name = unique("env");
    let runtime = shell_runtime(
        "",
        r#"  { env; echo "CWD_IS=$(pwd)"; [ -x "$LAMBDA_TASK_ROOT/bootstrap" ] && echo "TASK_ROOT_HAS_BOOTSTRAP=yes"; } > "$WORK/out"
  respond "$WORK/out""#,
    );
    create_ok(
        &server,
        create(&server.client, &name, &bootstrap_zip(runtime))
            .handler("my.handler")
            .memory_size(256)
            .environment(env_vars(&[("MY_VAR", "my value"), ("OTHER_VAR", "42")])),
    )
    .await;
    let out = invoke(&server, &name, b"{}").await;
    assert_eq!(out.function_error, None, "{}", out.text());
    let text = out.text();
    let env: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let get = |k: &str| {
        env.get(k)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("{k} not set; env:\n{text}"))
    };
    assert_eq!(get("AWS_LAMBDA_FUNCTION_NAME"), name);
    assert_eq!(get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), "256");
    assert_eq!(get("AWS_LAMBDA_FUNCTION_VERSION"), "$LATEST");
    assert_eq!(get("AWS_REGION"), "us-east-1");
    assert_eq!(get("AWS_DEFAULT_REGION"), "us-east-1");
    assert_eq!(
        get("AWS_LAMBDA_LOG_GROUP_NAME"),
        format!("/aws/lambda/{name}")
    );
    assert_matches(
        r"^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$",
        get("AWS_LAMBDA_LOG_STREAM_NAME"),
        "AWS_LAMBDA_LOG_STREAM_NAME",
    );
    assert_matches(
        r"^127\.0\.0\.1:\d+$",
        get("AWS_LAMBDA_RUNTIME_API"),
        "AWS_LAMBDA_RUNTIME_API",
    );
    assert_eq!(get("AWS_LAMBDA_INITIALIZATION_TYPE"), "on-demand");
    assert_eq!(get("_HANDLER"), "my.handler");
    let tz = get("TZ");
    assert!(tz == ":UTC" || tz == "UTC", "TZ={tz}");
    assert_eq!(get("LANG"), "en_US.UTF-8");
    assert_eq!(get("PATH"), "/usr/local/bin:/usr/bin/:/bin:/opt/bin");
    let task_root = get("LAMBDA_TASK_ROOT");
    let runtime_dir = get("LAMBDA_RUNTIME_DIR");
    assert!(!task_root.is_empty() && !runtime_dir.is_empty());
    assert_eq!(
        get("LD_LIBRARY_PATH"),
        format!("/lib64:/usr/lib64:{runtime_dir}:{runtime_dir}/lib:{task_root}:{task_root}/lib:/opt/lib")
    );
    assert_eq!(
        get("TASK_ROOT_HAS_BOOTSTRAP"),
        "yes",
        "LAMBDA_TASK_ROOT holds the code"
    );
    assert_eq!(
        get("CWD_IS"),
        task_root,
        "the runtime starts in LAMBDA_TASK_ROOT"
    );
    assert_eq!(get("MY_VAR"), "my value");
    assert_eq!(get("OTHER_VAR"), "42");
    assert!(
        !env.contains_key("AWS_EXECUTION_ENV"),
        "provided runtimes have no AWS_EXECUTION_ENV"
    );
    // Nothing of the server's own environment leaks in: above all not its secret.
    assert!(
        !text.contains(SECRET_KEY),
        "the admin secret reached the function's environment"
    );
    let leaked: Vec<_> = env.keys().filter(|k| k.starts_with("SOUS_")).collect();
    assert!(
        leaked.is_empty(),
        "server variables leaked into the function: {leaked:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_context_reaches_the_function_decoded() {
    let server = Server::start();
    let name = unique("ctx");
    let runtime = shell_runtime(
        "",
        r#"  if grep -qi '^Lambda-Runtime-Client-Context:' "$HEADERS"; then header Lambda-Runtime-Client-Context > "$WORK/out"; else printf 'NONE' > "$WORK/out"; fi
  respond "$WORK/out""#,
    );
    create_ok(
        &server,
        create(&server.client, &name, &bootstrap_zip(runtime)),
    )
    .await;
    let ctx = r#"{"custom":{"k":"v"},"env":{"a":"b"},"client":{"installation_id":"i-1"}}"#;
    let out = send_invoke(
        &server,
        invoke_req(&server.client, &name, b"{}").client_context(b64(ctx.as_bytes())),
    )
    .await;
    assert_eq!(out.function_error, None, "{}", out.text());
    assert_eq!(
        out.text(),
        ctx,
        "Lambda-Runtime-Client-Context is the decoded JSON"
    );

    let out = invoke(&server, &name, b"{}").await;
    assert_eq!(out.text(), "NONE", "no client context, no header");
}
