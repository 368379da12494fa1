//! `sous-bench --connections` (issue 14, point 1): the latency of a new client while
//! connections are held against both listeners. Each sample opens a new connection and
//! sends one request on it: an Invoke (Lambda API) and a function URL call (front door),
//! p50/p99, first with nothing held, then with 5,000 idle connections and 100 slow ones
//! (50 trickling a request head, 50 trickling a body, one byte a second) on each listener,
//! then the same with `--max-connections 1000`, where each new connection evicts an idle one.
//!
//! The function is the native `minimal-bootstrap` (returns its event).

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::{
    connect, create_function, create_function_url, send, signed_invoke, start_sous, zip_bootstrap,
};
use crate::{BoxError, PAYLOAD};

fn pct(v: &mut [Duration], q: usize) -> f64 {
    v.sort();
    v[(v.len() * q / 100).min(v.len() - 1)].as_secs_f64() * 1000.0
}

/// What is held against each listener.
struct Held {
    idle: Vec<TcpStream>,
    slow: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        for t in &self.slow {
            t.abort();
        }
    }
}

async fn hold(addrs: [(SocketAddr, String); 2], idle: usize, slow: usize) -> Held {
    let mut held = Held {
        idle: Vec::new(),
        slow: Vec::new(),
    };
    for (addr, path) in addrs {
        for _ in 0..idle {
            match TcpStream::connect(addr).await {
                Ok(s) => held.idle.push(s),
                Err(e) => eprintln!("idle connection: {e}"),
            }
        }
        for i in 0..slow {
            let path = path.clone();
            held.slow.push(tokio::spawn(async move {
                let Ok(mut s) = TcpStream::connect(addr).await else {
                    return;
                };
                let head = if i % 2 == 0 {
                    format!("POST {path} HTTP/1.1\r\nHost: slow\r\n")
                } else {
                    format!("POST {path} HTTP/1.1\r\nHost: slow\r\nContent-Length: 100000\r\n\r\n")
                };
                if s.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let drip: &[u8] = if i % 2 == 0 { b"X-Slow: 1\r\n" } else { b"a" };
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if s.write_all(drip).await.is_err() {
                        return;
                    }
                }
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    held
}

/// Run the benchmark and print a Markdown table.
pub async fn run(quick: bool) -> Result<(), BoxError> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    let (idle, slow) = if quick { (2_000, 40) } else { (5_000, 100) };
    if hard < (2 * (idle + slow) + 1_000) as u64 {
        return Err(format!("the open-file hard limit ({hard}) is too low for this bench").into());
    }
    let samples = if quick { 200 } else { 1_000 };
    let bin_dir = std::env::current_exe()?
        .parent()
        .ok_or("no exe dir")?
        .to_path_buf();
    let bootstrap = bin_dir.join("minimal-bootstrap");
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "| held on each listener | server | Invoke p50 ms | Invoke p99 ms | function URL p50 ms | function URL p99 ms |"
    )?;
    writeln!(out, "| --- | --- | --- | --- | --- | --- |")?;
    for (label, extra) in [
        ("default cap", &[][..]),
        ("--max-connections 1000", &["--max-connections", "1000"][..]),
    ] {
        let gateway: SocketAddr = {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            l.local_addr()?
        };
        let gw = gateway.to_string();
        let mut args = vec!["--gateway-addr", gw.as_str()];
        args.extend_from_slice(extra);
        let server = start_sous(&bin_dir.join("sous"), &args).await?;
        create_function(&server, "bench-conn", &zip_bootstrap(&bootstrap)?).await?;
        let url_path = create_function_url(&server, "bench-conn", &gw).await?;
        let invoke = signed_invoke(&server, "bench-conn", false);
        let url_req = || {
            Request::post(url_path.as_str())
                .header("host", gw.as_str())
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(PAYLOAD)))
        };
        // One request on a new connection, timed from the connect.
        let once_api = || async {
            let t = Instant::now();
            let mut c = connect(server.addr).await?;
            let (s, _) = send(&mut c, invoke.clone_request()?).await?;
            if s != 200 {
                return Err::<Duration, BoxError>(format!("Invoke: {s}").into());
            }
            Ok(t.elapsed())
        };
        let once_url = || async {
            let t = Instant::now();
            let mut c = connect(gateway).await?;
            let (s, _) = send(&mut c, url_req()?).await?;
            if s != 200 {
                return Err::<Duration, BoxError>(format!("function URL: {s}").into());
            }
            Ok(t.elapsed())
        };
        for _ in 0..50 {
            once_api().await?;
            once_url().await?;
        }
        let scenarios: &[(&str, usize, usize)] = if extra.is_empty() {
            &[("nothing", 0, 0), ("idle + slow", idle, slow)]
        } else {
            &[("idle + slow", idle, slow)]
        };
        for &(what, n_idle, n_slow) in scenarios {
            let held = hold(
                [
                    (
                        server.addr,
                        "/2015-03-31/functions/f/invocations".to_string(),
                    ),
                    (gateway, url_path.clone()),
                ],
                n_idle,
                n_slow,
            )
            .await;
            let (mut a, mut u) = (Vec::new(), Vec::new());
            for _ in 0..samples {
                a.push(once_api().await?);
                u.push(once_url().await?);
            }
            let held_desc = if n_idle == 0 {
                what.to_string()
            } else {
                format!("{n_idle} idle + {n_slow} slow")
            };
            writeln!(
                out,
                "| {held_desc} | {label} | {:.3} | {:.3} | {:.3} | {:.3} |",
                pct(&mut a, 50),
                pct(&mut a, 99),
                pct(&mut u, 50),
                pct(&mut u, 99)
            )?;
            drop(held);
        }
        drop(server);
    }
    writeln!(
        out,
        "each sample: a new TCP connection and one request on it; {samples} samples per cell"
    )?;
    Ok(())
}
