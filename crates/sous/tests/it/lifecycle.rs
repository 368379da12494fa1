//! The server's own lifecycle (issue 2, points 2 and 8): state survives a restart, SIGTERM
//! and SIGINT shut down cleanly with no function process left, a crash (SIGKILL) is cleaned
//! up by the next start, and code or configuration updates retire old environments.

use std::time::Duration;

use crate::common::*;
use aws_sdk_lambda::primitives::Blob;
use nix::sys::signal::Signal;
use serde_json::json;

/// Creates a function whose environment carries `marker` (in the runtime's environment and
/// in a background grandchild's command line), invokes it once, and checks the marker is
/// visible in `/proc` — so that "gone" later means something.
async fn warm_marked_function(server: &Server, marker: &str) -> String {
    let name = unique("marked");
    create_ok(
        server,
        create(
            &server.client,
            &name,
            &bootstrap_zip(marked_runtime(marker)),
        )
        .environment(env_vars(&[("SOUS_TEST_MARKER", marker)])),
    )
    .await;
    let out = invoke(server, &name, br#"{"warm":1}"#).await;
    assert_eq!(out.function_error, None, "{}", out.text());
    let found = processes_with(marker);
    assert!(
        found.iter().any(|(_, cmd)| cmd.contains("sleep 600")),
        "the function's background process should be running: {found:?}"
    );
    name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_survive_a_restart() {
    let mut server = Server::start();
    let a = unique("keep-a");
    let b = unique("keep-b");
    let zip_a = bootstrap_zip(echo_runtime());
    let zip_b = bootstrap_zip(shell_runtime("", r#"  respond_text '"b"'"#));
    create_ok(
        &server,
        create(&server.client, &a, &zip_a).environment(env_vars(&[("KEY", "v")])),
    )
    .await;
    create_ok(&server, create(&server.client, &b, &zip_b).memory_size(256)).await;
    assert_eq!(
        invoke(&server, &a, br#"{"x":1}"#).await.json(),
        json!({"x": 1})
    );
    let before_a = server
        .client
        .get_function_configuration()
        .function_name(&a)
        .send()
        .await
        .unwrap();
    let before_b = server
        .client
        .get_function_configuration()
        .function_name(&b)
        .send()
        .await
        .unwrap();

    let status = server.stop();
    assert!(
        status.success(),
        "SIGTERM → exit 0, got {status}\n{}",
        server.output_tail(3000)
    );
    server.restart();

    let after_a = server
        .client
        .get_function_configuration()
        .function_name(&a)
        .send()
        .await;
    let after_a = after_a.unwrap_or_else(|e| {
        panic!(
            "after restart: {:#?}\n{}",
            api_error(e),
            server.output_tail(3000)
        )
    });
    let after_b = server
        .client
        .get_function_configuration()
        .function_name(&b)
        .send()
        .await
        .unwrap();
    assert_eq!(
        conf!(after_a),
        conf!(before_a),
        "configuration unchanged by a restart"
    );
    assert_eq!(
        conf!(after_b),
        conf!(before_b),
        "configuration unchanged by a restart"
    );
    let list = server.client.list_functions().send().await.unwrap();
    assert_eq!(list.functions().len(), 2);

    let out = invoke(&server, &a, br#"{"after":"restart"}"#).await;
    assert_eq!(out.function_error, None, "{}", out.text());
    assert_eq!(out.json(), json!({"after": "restart"}));
    assert_eq!(invoke(&server, &b, b"{}").await.json(), json!("b"));
    let got = server
        .client
        .get_function()
        .function_name(&a)
        .send()
        .await
        .unwrap();
    let loc = got.code().and_then(|c| c.location()).unwrap().to_string();
    assert!(
        raw_request("GET", &loc, &[], Vec::new()).await.body == zip_a,
        "zip still served"
    );

    // Updates after the restart work and persist across another one.
    server
        .client
        .update_function_code()
        .function_name(&a)
        .zip_file(Blob::new(zip_b.clone()))
        .send()
        .await
        .unwrap();
    server.restart();
    assert_eq!(invoke(&server, &a, b"{}").await.json(), json!("b"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_0_and_leaves_no_function_process() {
    let mut server = Server::start();
    let marker = unique("term-marker");
    warm_marked_function(&server, &marker).await;
    let status = server.stop();
    let left = wait_processes_gone(&marker, Duration::from_millis(500));
    reap(&marker);
    assert!(
        status.success(),
        "SIGTERM → exit 0, got {status}\n{}",
        server.output_tail(3000)
    );
    assert!(
        left.is_empty(),
        "function processes outlived sous serve: {left:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_exits_0_and_leaves_no_function_process() {
    let mut server = Server::start();
    let marker = unique("int-marker");
    warm_marked_function(&server, &marker).await;
    let status = server.stop_with(Signal::SIGINT);
    let left = wait_processes_gone(&marker, Duration::from_millis(500));
    reap(&marker);
    assert!(
        status.success(),
        "SIGINT → exit 0, got {status}\n{}",
        server.output_tail(3000)
    );
    assert!(
        left.is_empty(),
        "function processes outlived sous serve: {left:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_after_a_crash_cleans_up_what_the_last_run_left() {
    let mut server = Server::start();
    let marker = unique("crash-marker");
    let name = warm_marked_function(&server, &marker).await;
    server.kill_hard();
    server.restart();
    let left = wait_processes_gone(&marker, Duration::from_secs(5));
    reap(&marker);
    assert!(
        left.is_empty(),
        "processes of the crashed run survived the restart: {left:?}\n{}",
        server.output_tail(3000)
    );
    let out = invoke(&server, &name, br#"{"again":1}"#).await;
    assert_eq!(out.function_error, None, "{}", out.text());
    assert_eq!(out.json(), json!({"again": 1}));
    let status = server.stop();
    assert!(status.success(), "{status}");
    let left = wait_processes_gone(&marker, Duration::from_millis(500));
    reap(&marker);
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_retire_old_environments() {
    let server = Server::start();
    let marker_a = unique("old-env");
    let name = warm_marked_function(&server, &marker_a).await;
    let old: Vec<u32> = processes_with(&marker_a)
        .iter()
        .map(|(pid, _)| *pid)
        .collect();

    // Configuration update: the processes of the old environment go away.
    let marker_b = unique("new-env");
    server
        .client
        .update_function_configuration()
        .function_name(&name)
        .environment(env_vars(&[("SOUS_TEST_MARKER", &marker_b)]))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{:#?}", api_error(e)));
    let out = invoke(&server, &name, br#"{"n":2}"#).await;
    assert_eq!(out.json(), json!({"n": 2}));
    assert!(
        out.log().contains("Init Duration: "),
        "a new environment after a config update"
    );
    let left = wait_pids_gone(&old, Duration::from_secs(3));
    assert!(
        left.is_empty(),
        "old environment still running after a configuration update: {left:?}\n{}",
        server.output_tail(4000)
    );
    let old: Vec<u32> = processes_with(&marker_a)
        .iter()
        .map(|(pid, _)| *pid)
        .collect();
    assert!(!old.is_empty(), "the new environment runs");

    // Code update: the environment started after the configuration update goes away too.
    let marker_c = unique("code-env");
    server
        .client
        .update_function_code()
        .function_name(&name)
        .zip_file(Blob::new(bootstrap_zip(marked_runtime(&marker_c))))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{:#?}", api_error(e)));
    let out = invoke(&server, &name, br#"{"n":3}"#).await;
    assert_eq!(out.json(), json!({"n": 3}));
    assert!(
        out.log().contains("Init Duration: "),
        "a new environment after a code update"
    );
    let left = wait_pids_gone(&old, Duration::from_secs(3));
    reap(&marker_a);
    reap(&marker_b);
    reap(&marker_c);
    assert!(
        left.is_empty(),
        "old environment still running after a code update: {left:?}\n{}",
        server.output_tail(4000)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_function_stops_its_environments() {
    let server = Server::start();
    let marker = unique("del-env");
    let name = warm_marked_function(&server, &marker).await;
    server
        .client
        .delete_function()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    let left = wait_processes_gone(&marker, Duration::from_secs(3));
    reap(&marker);
    assert!(
        left.is_empty(),
        "environment of a deleted function still running: {left:?}"
    );
}
