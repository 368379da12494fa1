//! Load benchmarks of issues 5 and 6.
//!
//! - `sous-bench --scale`: 100 concurrent cold invocations of one python3.11 function (all
//!   sent at once): time until all answered, latency p50/p99, failures; then 1,000 warm
//!   invocations at concurrency 50.
//! - `sous-bench --async`: Event invocations accepted per second at concurrency 16 with
//!   durable commit (202 latency p50/p99) while delivery is held (reserved concurrency 0), the
//!   delivery of that backlog once released, then acceptance and delivery to a trivial
//!   function at once.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::{
    concurrent, connect, create_function, create_function_sized, send, signed_event, signed_invoke,
    start_sous, status_request, zip_bootstrap, BoxError,
};

const PYTHON_APP: &str = "def handler(event, context):\n    return {\"hello\": \"world\"}\n";

fn p(v: &mut [Duration], q: usize) -> f64 {
    v.sort();
    v[(v.len() * q / 100).min(v.len() - 1)].as_secs_f64() * 1000.0
}

fn python_zip() -> Result<Vec<u8>, BoxError> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = zip::ZipWriter::new(&mut out);
    w.start_file(
        "app.py",
        zip::write::SimpleFileOptions::default().unix_permissions(0o644),
    )?;
    w.write_all(PYTHON_APP.as_bytes())?;
    w.finish()?;
    Ok(out.into_inner())
}

fn sous_path() -> Result<std::path::PathBuf, BoxError> {
    Ok(std::env::current_exe()?
        .parent()
        .ok_or("no exe dir")?
        .join("sous"))
}

/// Issue 5's benchmark.
pub async fn scale(quick: bool) -> Result<(), BoxError> {
    let server = start_sous(&sous_path()?, &[]).await?;
    let (cold_n, warm_total) = if quick { (20, 200) } else { (100, 1000) };
    create_function_sized(
        &server,
        "scale-py",
        &python_zip()?,
        ("python3.11", "app.handler"),
        128,
    )
    .await?;
    let req = signed_invoke(&server, "scale-py", false);
    let start = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..cold_n {
        let r = req.clone_request()?;
        let addr = server.addr;
        handles.push(tokio::spawn(async move {
            let mut c = connect(addr).await?;
            let t = Instant::now();
            let (status, body) = send(&mut c, r).await?;
            Ok::<_, BoxError>((status, body, t.elapsed()))
        }));
    }
    let (mut lat, mut failed, mut throttled) = (Vec::new(), 0, 0);
    for h in handles {
        let (status, body, d) = h.await??;
        match status {
            200 if !String::from_utf8_lossy(&body).contains("errorType") => lat.push(d),
            429 => throttled += 1,
            _ => failed += 1,
        }
    }
    let all = start.elapsed();
    let (warm_rate, mut warm) =
        concurrent(50, warm_total, server.addr, || req.clone_request()).await?;
    println!("| measurement | value |");
    println!("| --- | --- |");
    println!(
        "| {cold_n} concurrent cold invocations (python3.11): all answered after | {:.0} ms |",
        all.as_secs_f64() * 1000.0
    );
    println!(
        "| cold latency p50 / p99 | {:.0} / {:.0} ms |",
        p(&mut lat, 50),
        p(&mut lat, 99)
    );
    println!("| failed (not a throttle) / throttled | {failed} / {throttled} |");
    println!(
        "| {warm_total} warm invocations at concurrency 50: rate | {warm_rate:.0} invokes/s |"
    );
    println!(
        "| warm latency p50 / p99 | {:.2} / {:.2} ms |",
        p(&mut warm, 50),
        p(&mut warm, 99)
    );
    Ok(())
}

/// Issue 6's benchmark, in three parts: acceptance alone (the function's reserved
/// concurrency is 0, so accepted events wait in the queue, as Lambda keeps a throttled
/// function's events), then the delivery of that backlog once the function is released, then
/// acceptance and delivery at once.
pub async fn asynchronous(quick: bool) -> Result<(), BoxError> {
    let sous = sous_path()?;
    let server = start_sous(&sous, &[]).await?;
    let bootstrap = sous.parent().ok_or("no exe dir")?.join("minimal-bootstrap");
    create_function(&server, "async-target", &zip_bootstrap(&bootstrap)?).await?;
    let total = if quick { 500 } else { 4000 };
    let event = signed_event(&server, "async-target");

    set_reserved_concurrency(&server, "async-target", Some(0)).await?;
    let (held_rate, mut held) =
        concurrent(16, total, server.addr, || event.clone_request()).await?;
    let backlog = queue_status(&server).await?["queue_depth"]
        .as_u64()
        .unwrap_or(0);
    set_reserved_concurrency(&server, "async-target", None).await?;
    let start = Instant::now();
    drain(&server).await?;
    let backlog_drained = start.elapsed();

    let start = Instant::now();
    let (rate, mut lat) = concurrent(16, total, server.addr, || event.clone_request()).await?;
    let accepted = lat.len();
    let status = drain(&server).await?;
    let drained = start.elapsed();

    println!("| measurement | value |");
    println!("| --- | --- |");
    println!("| accepted durably, delivery held (concurrency 16) | {held_rate:.0} events/s |");
    println!(
        "| 202 latency p50 / p99, delivery held | {:.2} / {:.2} ms |",
        p(&mut held, 50),
        p(&mut held, 99)
    );
    println!(
        "| backlog of {backlog} delivered after release | {:.1} s ({:.0} events/s) |",
        backlog_drained.as_secs_f64(),
        backlog as f64 / backlog_drained.as_secs_f64()
    );
    println!("| accepted durably while delivering (concurrency 16) | {rate:.0} events/s |");
    println!(
        "| 202 latency p50 / p99, while delivering | {:.2} / {:.2} ms |",
        p(&mut lat, 50),
        p(&mut lat, 99)
    );
    println!(
        "| all {accepted} (+ warm-up) delivered after | {:.1} s ({:.0} events/s end to end) |",
        drained.as_secs_f64(),
        accepted as f64 / drained.as_secs_f64()
    );
    println!(
        "| delivery attempts refused by concurrency or host admission (retried later) | {} |",
        status["throttles"].as_u64().unwrap_or(0)
    );
    Ok(())
}

/// The status endpoint's `async` part.
async fn queue_status(server: &crate::Server) -> Result<serde_json::Value, BoxError> {
    let mut c = connect(server.addr).await?;
    let (status, body) = send(&mut c, status_request(server)?).await?;
    if status != 200 {
        return Err(format!("status answered {status}").into());
    }
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(v["async"].clone())
}

/// Wait until the queue is empty; returns the last status.
async fn drain(server: &crate::Server) -> Result<serde_json::Value, BoxError> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let v = queue_status(server).await?;
        if v["queue_depth"].as_u64() == Some(0) {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(format!("queue not drained: {v}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// PutFunctionConcurrency (`Some`) or DeleteFunctionConcurrency (`None`).
async fn set_reserved_concurrency(
    server: &crate::Server,
    function: &str,
    reserved: Option<u32>,
) -> Result<(), BoxError> {
    let path = format!("/2017-10-31/functions/{function}/concurrency");
    let (method, body) = match reserved {
        Some(n) => ("PUT", format!("{{\"ReservedConcurrentExecutions\":{n}}}")),
        None => ("DELETE", String::new()),
    };
    let headers = crate::signed(server, method, &path, &[], body.as_bytes());
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(&path)
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))?;
    *req.headers_mut() = headers;
    let mut c = connect(server.addr).await?;
    let (status, body) = send(&mut c, req).await?;
    if !(200..300).contains(&status) {
        return Err(format!(
            "{method} {path}: {status} {}",
            String::from_utf8_lossy(&body)
        )
        .into());
    }
    Ok(())
}
