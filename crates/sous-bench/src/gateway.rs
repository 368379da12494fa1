//! `sous-bench --gateway` (issue 7, point 7): a warm function reached through its function
//! URL on the HTTP front door, beside the same function through the Lambda API's Invoke, in
//! the same run: latency p50/p99 at concurrency 1 (the two interleaved in rounds, so drift of
//! a noisy machine hits both alike) and requests per second at concurrency 8.
//!
//! The function is the native `minimal-bootstrap` (returns its event), so the gateway's
//! answer is its own 2.0 event mapped back as a 200 JSON body: the door's whole round trip.

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;

use crate::{
    concurrent, connect, create_function, create_function_url, send, signed_invoke, start_sous,
    zip_bootstrap, BoxError, PAYLOAD,
};

fn pct(v: &mut [Duration], q: usize) -> f64 {
    v.sort();
    v[(v.len() * q / 100).min(v.len() - 1)].as_secs_f64() * 1000.0
}

/// Run the gateway benchmark and print a Markdown table.
pub async fn run(quick: bool) -> Result<(), BoxError> {
    let bin_dir = std::env::current_exe()?
        .parent()
        .ok_or("no exe dir")?
        .to_path_buf();
    let bootstrap = bin_dir.join("minimal-bootstrap");
    let gateway: SocketAddr = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        l.local_addr()?
    };
    let gw = gateway.to_string();
    let server = start_sous(&bin_dir.join("sous"), &["--gateway-addr", &gw]).await?;
    let (rounds, per_round, c8_n) = if quick {
        (4, 250, 4000)
    } else {
        (10, 1000, 20000)
    };

    create_function(&server, "bench-gw", &zip_bootstrap(&bootstrap)?).await?;
    let url_path = create_function_url(&server, "bench-gw", &gw).await?;
    let mut api = connect(server.addr).await?;
    let gateway_req = || {
        Request::post(url_path.as_str())
            .header("host", gw.as_str())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(PAYLOAD)))
    };
    let invoke = signed_invoke(&server, "bench-gw", false);

    let mut door = connect(gateway).await?;
    for _ in 0..200 {
        let (s, b) = send(&mut door, gateway_req()?).await?;
        if s != 200 {
            return Err(format!("gateway warm-up: {s} {}", String::from_utf8_lossy(&b)).into());
        }
        let (s, _) = send(&mut api, invoke.clone_request()?).await?;
        if s != 200 {
            return Err(format!("invoke warm-up: {s}").into());
        }
    }
    let mut via_invoke = Vec::with_capacity(rounds * per_round);
    let mut via_gateway = Vec::with_capacity(rounds * per_round);
    for _ in 0..rounds {
        for _ in 0..per_round {
            let t = Instant::now();
            send(&mut api, invoke.clone_request()?).await?;
            via_invoke.push(t.elapsed());
        }
        for _ in 0..per_round {
            let t = Instant::now();
            send(&mut door, gateway_req()?).await?;
            via_gateway.push(t.elapsed());
        }
    }
    let (invoke_rate, _) = concurrent(8, c8_n, server.addr, || invoke.clone_request()).await?;
    let (gateway_rate, _) = concurrent(8, c8_n, gateway, gateway_req).await?;

    let (i50, i99) = (pct(&mut via_invoke, 50), pct(&mut via_invoke, 99));
    let (g50, g99) = (pct(&mut via_gateway, 50), pct(&mut via_gateway, 99));
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "| path (warm minimal-bootstrap) | p50 ms | p99 ms | req/s at concurrency 8 |"
    )?;
    writeln!(out, "| --- | --- | --- | --- |")?;
    writeln!(
        out,
        "| Invoke (Lambda API) | {i50:.3} | {i99:.3} | {invoke_rate:.0} |"
    )?;
    writeln!(
        out,
        "| function URL (front door) | {g50:.3} | {g99:.3} | {gateway_rate:.0} |"
    )?;
    writeln!(
        out,
        "gateway p50 - Invoke p50 = {:.3} ms (target <= 0.2 ms); samples: {} each at concurrency 1, {c8_n} each at concurrency 8",
        g50 - i50,
        rounds * per_round
    )?;
    drop(server);
    Ok(())
}
