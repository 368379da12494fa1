//! `sous logs` (issue 13, point 6): "no such function" fails with one clear line and no
//! backtrace; "no invocations yet" is not an error; `--filter`, `--since` and `--follow`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

fn sous_logs(server: &Server, args: &[&str]) -> Output {
    Command::new(Server::binary())
        .arg("logs")
        .args(args)
        .arg("--data-dir")
        .arg(&server.data_dir)
        // The machine's environment asking for backtraces is not the user asking.
        .env("RUST_BACKTRACE", "1")
        .env_remove("SOUS_BACKTRACE")
        .output()
        .expect("run sous logs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn deploy_talker(server: &Server) -> String {
    let name = unique("logs");
    let zip = bootstrap_zip(shell_runtime(
        "",
        r#"  echo "said $(cat "$EVENT")"
  respond "$EVENT""#,
    ));
    create_ok(server, create(&server.client, &name, &zip)).await;
    name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_such_function_fails_in_one_line_and_no_invocations_yet_does_not() {
    let server = Server::start();
    let out = sous_logs(&server, &["no-such-function"]);
    assert!(!out.status.success(), "{out:?}");
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        "Error: no function named \"no-such-function\" (and no stored logs of one)",
        "{stderr}"
    );

    let name = deploy_talker(&server).await;
    let out = sous_logs(&server, &[&name]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout), "");
    assert!(
        text(&out.stderr).contains("has no invocations yet"),
        "{}",
        text(&out.stderr)
    );

    // A data dir Sous never used is named as such.
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(Server::binary())
        .args(["logs", "f", "--data-dir"])
        .arg(empty.path())
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("Error: no Sous data in "), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_and_since_select_events() {
    let server = Server::start();
    let name = deploy_talker(&server).await;
    invoke(&server, &name, br#""apple""#).await;
    invoke(&server, &name, br#""banana""#).await;

    let all = text(&sous_logs(&server, &[&name]).stdout);
    assert!(
        all.contains("said \"apple\"") && all.contains("said \"banana\""),
        "{all}"
    );
    assert!(all.contains("START RequestId: "), "{all}");

    let out = sous_logs(&server, &[&name, "--filter", "banana"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout), "said \"banana\"\n");

    let recent = text(&sous_logs(&server, &[&name, "--since", "1h"]).stdout);
    assert_eq!(recent, all);
    let future = text(&sous_logs(&server, &[&name, "--since", "2999-01-01T00:00:00Z"]).stdout);
    assert_eq!(future, "");

    let out = sous_logs(&server, &[&name, "--since", "yesterday"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).starts_with("Error: --since \"yesterday\": "),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_prints_new_events_until_interrupted() {
    let server = Server::start();
    let name = deploy_talker(&server).await;
    invoke(&server, &name, br#""first""#).await;

    let mut child = Command::new(Server::binary())
        .args(["logs", &name, "--follow", "--filter", "said", "--data-dir"])
        .arg(&server.data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let next = |what: &str| {
        rx.recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("no {what} from sous logs --follow: {e}"))
    };
    assert_eq!(next("existing event"), "said \"first\"");
    let start = Instant::now();
    // A second event in the same environment's stream, then one in a new stream (after a
    // configuration update retires the environment).
    invoke(&server, &name, br#""second""#).await;
    assert_eq!(next("event of an existing stream"), "said \"second\"");
    server
        .client
        .update_function_configuration()
        .function_name(&name)
        .description("new environment")
        .send()
        .await
        .unwrap();
    invoke(&server, &name, br#""third""#).await;
    assert_eq!(next("event of a new stream"), "said \"third\"");
    assert!(start.elapsed() < Duration::from_secs(30));
    assert!(child.try_wait().unwrap().is_none(), "--follow exited");
    child.kill().unwrap();
    child.wait().unwrap();
}
