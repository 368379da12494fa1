//! `sous-bench --forwarder` (issue 15, point 3): the latency a service endpoint forwarder
//! adds. An HTTP echo server on the host's loopback is configured as `--service-endpoint
//! bench=http://127.0.0.1:PORT`; a python3.11 function makes N sequential POSTs to
//! `AWS_ENDPOINT_URL_BENCH` (through its environment's forwarder) and times each; the same
//! script, run by the same interpreter directly on the host, makes the same requests to the
//! echo server. Both ways alternate in rounds, so drift of a noisy machine hits both alike.
//!
//! Two request patterns: on one keep-alive connection (the relay's per-byte cost: two more
//! socket hops per direction) and on a new connection per request (plus the forwarder's accept
//! and its own connect to the endpoint, as an SDK pays once per pooled connection).

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use crate::{connect, create_function_with, send, signed_invoke, start_echo, start_sous, BoxError};

/// The timing script: a function handler, and a command-line program for the host side.
const SCRIPT: &str = r#"
import http.client, json, os, sys, time

BODY = b'{"hello":"world"}'

def measure(url, n, fresh):
    host, port = url.split("://", 1)[1].rstrip("/").rsplit(":", 1)
    out, conn = [], None
    for _ in range(n):
        t = time.perf_counter_ns()
        if conn is None or fresh:
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("POST", "/", body=BODY, headers={"content-type": "application/json"})
        r = conn.getresponse()
        if r.read() != BODY:
            raise RuntimeError("the echo answered something else")
        if fresh:
            conn.close()
        out.append(time.perf_counter_ns() - t)
    if conn is not None:
        conn.close()
    return out

def both(url, n):
    # A few requests first, outside the figures (connection set-up, code paths warm).
    measure(url, 20, False)
    return {"keepalive": measure(url, n, False), "fresh": measure(url, n, True)}

def handler(event, context):
    return both(os.environ["AWS_ENDPOINT_URL_BENCH"], N)

if __name__ == "__main__":
    print(json.dumps(both(sys.argv[1], int(sys.argv[2]))))
"#;

fn pct(v: &mut [u64], q: usize) -> f64 {
    v.sort_unstable();
    v[(v.len() * q / 100).min(v.len() - 1)] as f64 / 1e6
}

fn zip_script(n: usize) -> Result<Vec<u8>, BoxError> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = zip::ZipWriter::new(&mut out);
    let opts = zip::write::SimpleFileOptions::default().unix_permissions(0o644);
    w.start_file("fwd.py", opts)?;
    w.write_all(format!("N = {n}\n{SCRIPT}").as_bytes())?;
    w.finish()?;
    Ok(out.into_inner())
}

/// Nanosecond samples of `key` in the script's JSON output.
fn samples(v: &serde_json::Value, key: &str) -> Result<Vec<u64>, BoxError> {
    v[key]
        .as_array()
        .ok_or_else(|| format!("no {key} in {v}"))?
        .iter()
        .map(|x| x.as_u64().ok_or_else(|| "not a number".into()))
        .collect()
}

/// Run the forwarder benchmark and print a Markdown table.
pub async fn run(quick: bool) -> Result<(), BoxError> {
    let bin_dir = std::env::current_exe()?
        .parent()
        .ok_or("no exe dir")?
        .to_path_buf();
    let echo = start_echo().await?;
    let endpoint = format!("bench=http://{echo}");
    let server = start_sous(&bin_dir.join("sous"), &["--service-endpoint", &endpoint]).await?;
    let (rounds, per_round) = if quick { (3, 200) } else { (10, 500) };
    create_function_with(
        &server,
        "bench-fwd",
        &zip_script(per_round)?,
        ("python3.11", "fwd.handler"),
    )
    .await?;
    let invoke = signed_invoke(&server, "bench-fwd", false);
    let mut api = connect(server.addr).await?;
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("fwd.py");
    std::fs::write(&script, SCRIPT)?;
    let url = format!("http://{echo}");

    let (mut keep_in, mut fresh_in, mut keep_host, mut fresh_host) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // The first invocation is the cold start: not a round.
    for round in 0..=rounds {
        let (status, body) = send(&mut api, invoke.clone_request()?).await?;
        if status != 200 {
            return Err(format!("invoke: {status} {}", String::from_utf8_lossy(&body)).into());
        }
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        if v.get("errorType").is_some() {
            return Err(format!("the function failed: {v}").into());
        }
        // The python3 the function's runtime runs is the host's: the same interpreter here.
        let out = Command::new("python3")
            .arg(&script)
            .arg(&url)
            .arg(per_round.to_string())
            .output()?;
        if !out.status.success() {
            return Err(format!("host side: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        let h: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        if round == 0 {
            continue;
        }
        keep_in.extend(samples(&v, "keepalive")?);
        fresh_in.extend(samples(&v, "fresh")?);
        keep_host.extend(samples(&h, "keepalive")?);
        fresh_host.extend(samples(&h, "fresh")?);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "{} requests of each kind, each way (python3 http.client, sequential, 17-byte body echoed)\n",
        keep_in.len()
    );
    println!("| requests | from the host, p50 / p99 | from a function through the forwarder, p50 / p99 | added at p50 | ratio at p50 |");
    println!("| --- | --- | --- | --- | --- |");
    for (what, inside, host) in [
        ("keep-alive connection", &mut keep_in, &mut keep_host),
        ("new connection each", &mut fresh_in, &mut fresh_host),
    ] {
        let (h50, h99) = (pct(host, 50), pct(host, 99));
        let (i50, i99) = (pct(inside, 50), pct(inside, 99));
        println!(
            "| {what} | {h50:.3} / {h99:.3} ms | {i50:.3} / {i99:.3} ms | {:.3} ms | {:.2} |",
            i50 - h50,
            i50 / h50
        );
    }
    drop(server);
    Ok(())
}
