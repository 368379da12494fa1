//! The official runtime clients, unchanged, as `provided.al2023` functions (issue 2, point 7):
//! (a) a binary built with the `lambda_runtime` crate (`examples/rust_runtime_hello.rs`), and
//! (b) a Python function vendoring `awslambdaric` from PyPI (`tests/fixtures/python-ric`).

use std::process::Command;
use std::time::Duration;

use crate::common::*;
use serde_json::json;

fn rust_fixture_zip() -> Vec<u8> {
    let bin = std::fs::read(example_binary("rust_runtime_hello")).expect("read fixture binary");
    zip_entries(&[file("bootstrap", bin, 0o755)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_lambda_runtime_function_runs_unchanged() {
    let server = Server::start();
    let name = unique("rust");
    create_ok(
        &server,
        create(&server.client, &name, &rust_fixture_zip())
            .memory_size(512)
            .timeout(20)
            .environment(env_vars(&[("FIXTURE_VAR", "from config")])),
    )
    .await;

    let before = now_ms();
    let first = invoke(&server, &name, br#"{"hello":"rust"}"#).await;
    let after = now_ms();
    assert_eq!(
        first.function_error,
        None,
        "{}\n{}",
        first.text(),
        server.output_tail(3000)
    );
    let v = first.json();
    assert_eq!(v["echo"], json!({"hello": "rust"}));
    assert_eq!(v["count"], 1);
    assert_eq!(
        v["request_id"].as_str(),
        first.request_id.as_deref(),
        "the function saw x-amzn-RequestId"
    );
    assert_eq!(v["invoked_arn"], function_arn(&name));
    assert_eq!(v["function_name"], name.as_str());
    assert_eq!(v["memory"], 512);
    assert_eq!(v["version"], "$LATEST");
    assert_eq!(v["log_group"], format!("/aws/lambda/{name}"));
    assert_matches(
        r"^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$",
        v["log_stream"].as_str().unwrap_or(""),
        "log stream",
    );
    let deadline = v["deadline_ms"].as_u64().unwrap() as u128;
    assert!(
        deadline + 100 >= before + 20_000 && deadline <= after + 20_000,
        "deadline {deadline} is not invoke start + 20 s ({before}..{after})"
    );
    let trace = v["xray_trace_id"].as_str().expect("trace id given");
    assert_matches(r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24}", trace, "trace id");
    assert_eq!(
        v["env"]["_X_AMZN_TRACE_ID"].as_str(),
        Some(trace),
        "_X_AMZN_TRACE_ID per invocation"
    );
    assert_eq!(v["env"]["FIXTURE_VAR"], "from config");
    assert_eq!(v["env"]["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "512");
    assert_eq!(v["env"]["AWS_LAMBDA_LOG_STREAM_NAME"], v["log_stream"]);
    assert!(first.log().contains("Init Duration: "));

    // Warm reuse: the static counter goes on in the same process; a new trace id.
    let second = invoke(&server, &name, br#"{"n":2}"#).await;
    let w = second.json();
    assert_eq!(w["count"], 2, "warm environment keeps its globals");
    assert_eq!(w["pid"], v["pid"]);
    assert_ne!(w["xray_trace_id"], v["xray_trace_id"]);
    assert_eq!(w["env"]["_X_AMZN_TRACE_ID"], w["xray_trace_id"]);
    assert!(!second.log().contains("Init Duration: "));

    // Client context in the crate's own shape.
    let ctx = r#"{"client":{"installation_id":"inst","app_title":"t","app_version_name":"1","app_version_code":"1","app_package_name":"p"},"custom":{"k":"v"},"env":{"platform":"linux"}}"#;
    let out = send_invoke(
        &server,
        invoke_req(&server.client, &name, b"{}").client_context(b64(ctx.as_bytes())),
    )
    .await;
    assert_eq!(out.function_error, None, "{}", out.text());
    assert_eq!(
        out.json()["client_context"]["custom"]["k"],
        "v",
        "{}",
        out.text()
    );

    // A handler error in the crate's shape.
    let err = invoke(&server, &name, br#"{"fail":"rust handler failed"}"#).await;
    assert_eq!(err.function_error.as_deref(), Some("Unhandled"));
    let e = err.json();
    assert_eq!(e["errorMessage"], "rust handler failed", "{e}");
    assert!(e["errorType"].is_string(), "{e}");
    // And it keeps serving.
    let after_err = invoke(&server, &name, b"{}").await;
    assert_eq!(after_err.function_error, None);
    assert_eq!(
        after_err.json()["count"],
        5,
        "same environment after a handler error"
    );
}

/// Builds the awslambdaric fixture with the repo's script. Fails (never skips) when PyPI or
/// Python is unavailable.
fn python_fixture_zip() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fn");
    let script = repo_root().join("tests/fixtures/python-ric/build.sh");
    let mut cmd = Command::new("sh");
    cmd.arg(&script).arg(&out);
    // Prefer the CI venv's interpreter (its pip) when it exists.
    let venv_python = repo_root().join(".venv/bin/python3");
    if std::env::var_os("PYTHON").is_none() && venv_python.exists() {
        cmd.env("PYTHON", &venv_python);
    }
    let result = cmd
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    assert!(
        result.status.success(),
        "building the awslambdaric fixture failed (is PyPI reachable? `cargo xtask setup` makes the .venv whose pip it uses): {}\nstdout:\n{}\nstderr:\n{}",
        result.status,
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    zip_dir(&out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_awslambdaric_function_runs_unchanged() {
    let zip = tokio::task::spawn_blocking(python_fixture_zip)
        .await
        .unwrap();
    let server = Server::start();
    let name = unique("py");
    create_ok(
        &server,
        create(&server.client, &name, &zip)
            .handler("app.handler")
            .memory_size(256)
            .timeout(15),
    )
    .await;

    let out = invoke(&server, &name, br#"{"hello":"python"}"#).await;
    assert_eq!(
        out.function_error,
        None,
        "{}\n{}",
        out.text(),
        server.output_tail(3000)
    );
    let v = out.json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["echo"], json!({"hello": "python"}));
    assert_eq!(v["fn"], name.as_str());
    assert_eq!(v["request_id"].as_str(), out.request_id.as_deref());
    assert_eq!(v["memory"], "256");
    assert_eq!(v["version"], "$LATEST");
    assert_eq!(v["arn"], function_arn(&name));
    assert_eq!(v["log_group"], format!("/aws/lambda/{name}"));
    let remaining = v["remaining_ms"].as_i64().unwrap();
    assert!(
        remaining > 10_000 && remaining <= 15_000,
        "remaining time {remaining} ms of 15 s"
    );
    assert_matches(
        r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24}",
        v["trace_id"].as_str().unwrap_or(""),
        "trace id",
    );

    let second = invoke(&server, &name, b"[1,2]").await;
    assert_eq!(second.json()["echo"], json!([1, 2]));
    assert!(!second.log().contains("Init Duration: "), "warm");

    // A handler exception in awslambdaric's shape.
    let err = invoke(&server, &name, br#"{"fail":"python handler failed"}"#).await;
    assert_eq!(err.function_error.as_deref(), Some("Unhandled"));
    let e = err.json();
    assert_eq!(e["errorType"], "ValueError", "{e}");
    assert_eq!(e["errorMessage"], "python handler failed", "{e}");
    assert!(e["stackTrace"].is_array(), "{e}");
    assert_eq!(e["requestId"].as_str(), err.request_id.as_deref(), "{e}");

    // Still serving after the exception.
    let ok = tokio::time::timeout(Duration::from_secs(20), invoke(&server, &name, b"{}"))
        .await
        .unwrap();
    assert_eq!(ok.json()["ok"], true);
}
