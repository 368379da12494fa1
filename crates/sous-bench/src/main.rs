//! `sous-bench`: measures the performance promises of docs/PERFORMANCE.md against the real
//! `sous` binary, each beside a baseline measured in the same run.
//!
//! Run: `cargo build --release --bins && target/release/sous-bench [--quick]`
//!
//! - warm invoke latency (concurrency 1) vs. three loopback HTTP round trips made with the
//!   same client library (hyper, HTTP/1.1 keep-alive) to an in-process echo server;
//! - warm throughput at concurrency 8, beside the baseline's at concurrency 8;
//! - cold start: Init Duration (spawn to first `/next`) and end-to-end cold invoke latency of
//!   a native `provided.al2023` function built with `lambda_runtime`, beside the bare start
//!   of the same executable.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{HeaderMap, Request};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

const REGION: &str = "us-east-1";
pub(crate) const PAYLOAD: &[u8] = br#"{"hello":"world"}"#;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let quick = std::env::args().any(|a| a == "--quick");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if std::env::args().any(|a| a == "--runtimes") {
        return rt.block_on(runtimes::run(quick));
    }
    if std::env::args().any(|a| a == "--scale") {
        return rt.block_on(load::scale(quick));
    }
    if std::env::args().any(|a| a == "--gateway") {
        return rt.block_on(gateway::run(quick));
    }
    if std::env::args().any(|a| a == "--connections") {
        return rt.block_on(connections::run(quick));
    }
    if std::env::args().any(|a| a == "--crash-dups") {
        return rt.block_on(crash_dups::run());
    }
    if std::env::args().any(|a| a == "--async") {
        return rt.block_on(load::asynchronous(quick));
    }
    if std::env::args().any(|a| a == "--packages") {
        return rt.block_on(packages::run(quick));
    }
    if std::env::args().any(|a| a == "--forwarder") {
        return rt.block_on(forwarder::run(quick));
    }
    rt.block_on(run(quick))
}

mod connections;
mod crash_dups;
mod forwarder;
mod gateway;
mod load;
mod packages;
mod runtimes;

pub(crate) struct Server {
    child: Child,
    pub(crate) addr: SocketAddr,
    creds: Credentials,
    pub(crate) dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

async fn run(quick: bool) -> Result<(), BoxError> {
    let bin_dir = std::env::current_exe()?
        .parent()
        .ok_or("no exe dir")?
        .to_path_buf();
    let sous = bin_dir.join("sous");
    let bootstrap = bin_dir.join("minimal-bootstrap");
    for p in [&sous, &bootstrap] {
        if !p.exists() {
            return Err(format!(
                "{} missing: run `cargo build --release --bins` first",
                p.display()
            )
            .into());
        }
    }
    let (warm_n, c8_n, cold_n) = if quick {
        (500, 4000, 10)
    } else {
        (5000, 40000, 60)
    };
    // `--isolation-none` measures the warm path without the sandbox, for comparison.
    let main_flags: &[&str] = if std::env::args().any(|a| a == "--isolation-none") {
        &["--isolation", "none"]
    } else {
        &[]
    };
    let server = start_sous(&sous, main_flags).await?;
    let zip = zip_bootstrap(&bootstrap)?;

    // Baseline: three round trips to an in-process echo server.
    let echo = start_echo().await?;
    let mut base = connect(echo).await?;
    let baseline_req = || {
        Request::post("/echo")
            .header("host", "bench")
            .body(Full::new(Bytes::from_static(PAYLOAD)))
    };
    for _ in 0..200 {
        for _ in 0..3 {
            send(&mut base, baseline_req()?).await?;
        }
    }
    let mut baseline = Vec::with_capacity(warm_n);
    for _ in 0..warm_n {
        let t = Instant::now();
        for _ in 0..3 {
            send(&mut base, baseline_req()?).await?;
        }
        baseline.push(t.elapsed());
    }

    // Warm invoke, concurrency 1.
    create_function(&server, "bench-warm", &zip).await?;
    let invoke = signed_invoke(&server, "bench-warm", false);
    let mut conn = connect(server.addr).await?;
    for _ in 0..200 {
        let (status, _) = send(&mut conn, invoke.clone_request()?).await?;
        assert_eq!(status, 200, "warm-up invoke failed");
    }
    let mut warm = Vec::with_capacity(warm_n);
    for _ in 0..warm_n {
        let t = Instant::now();
        send(&mut conn, invoke.clone_request()?).await?;
        warm.push(t.elapsed());
    }

    // Throughput, concurrency 8 (eight environments warm up first).
    let (sous_c8_rate, sous_c8) =
        concurrent(8, c8_n, server.addr, || invoke.clone_request()).await?;
    let (base_c8_rate, _) = concurrent(8, c8_n / 3, echo, baseline_req).await?;

    // Cold starts: each function's first invocation, sandboxed (the default) and, in the
    // same run, with `--isolation none`.
    let (mut cold_e2e, mut init) = cold_starts(&server, &zip, cold_n, "bench-cold").await?;
    let plain = start_sous(&sous, &["--isolation", "none"]).await?;
    let (mut plain_e2e, mut plain_init) = cold_starts(&plain, &zip, cold_n, "bench-plain").await?;
    drop(plain);
    let bare = bare_starts(&bootstrap, cold_n)?;

    let p = |v: &mut Vec<Duration>, q: usize| -> f64 {
        v.sort();
        v[(v.len() * q / 100).min(v.len() - 1)].as_secs_f64() * 1000.0
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "| measurement | p50 (ms) | p99 (ms) |")?;
    writeln!(out, "| --- | --- | --- |")?;
    let (mut sous_c8, mut bare) = (sous_c8, bare);
    let rows: Vec<(&str, &mut Vec<Duration>)> = vec![
        ("baseline: 3 loopback round trips (hyper)", &mut baseline),
        ("warm invoke, concurrency 1", &mut warm),
        ("warm invoke, concurrency 8 (per request)", &mut sous_c8),
        ("cold invoke, end to end", &mut cold_e2e),
        (
            "cold start: Init Duration (spawn to first /next)",
            &mut init,
        ),
        (
            "baseline: bare start of the bootstrap executable",
            &mut bare,
        ),
        ("cold invoke, end to end, --isolation none", &mut plain_e2e),
        (
            "cold start: Init Duration, --isolation none",
            &mut plain_init,
        ),
    ];
    let mut medians = Vec::new();
    for (name, v) in rows {
        let (p50, p99) = (p(v, 50), p(v, 99));
        medians.push(p50);
        writeln!(out, "| {name} | {p50:.3} | {p99:.3} |")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "isolation adds at p50: {:.3} ms to a cold invoke, {:.3} ms to Init Duration",
        medians[3] - medians[6],
        medians[4] - medians[7]
    )?;
    writeln!(
        out,
        "added warm latency at p50: {:.3} ms over the baseline",
        medians[1] - medians[0]
    )?;
    writeln!(out, "throughput at concurrency 8: {sous_c8_rate:.0} invokes/s (baseline: {base_c8_rate:.0} single loopback round trips/s)")?;
    writeln!(
        out,
        "samples: warm {warm_n}, concurrency-8 {c8_n}, cold {cold_n}"
    )?;
    drop(server);
    Ok(())
}

/// A request that can be re-sent as is: SigV4 signatures stay valid for 15 minutes and carry
/// no nonce, so signing once keeps client-side cost out of the measurement.
pub(crate) struct Prepared {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Prepared {
    fn clone_request(&self) -> Result<Request<Full<Bytes>>, hyper::http::Error> {
        let mut req = Request::post(&self.path).body(Full::new(self.body.clone()))?;
        *req.headers_mut() = self.headers.clone();
        Ok(req)
    }
}

/// The headers of a request to the server, SigV4-signed (service `lambda`) by the `aws-sigv4`
/// crate, the AWS SDKs' signer.
pub(crate) fn signed(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&'static str, &str)],
    body: &[u8],
) -> HeaderMap {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;
    let mut map = HeaderMap::new();
    map.insert(
        "host",
        server.addr.to_string().parse().expect("host header"),
    );
    for (k, v) in headers {
        map.insert(*k, v.parse().expect("header value"));
    }
    let identity = server.creds.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("lambda")
        .time(std::time::SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("signing parameters")
        .into();
    let url = format!("http://{}{path}", server.addr);
    let request = SignableRequest::new(
        method,
        url,
        map.iter()
            .map(|(k, v)| (k.as_str(), v.to_str().expect("ASCII header value"))),
        SignableBody::Bytes(body),
    )
    .expect("signable request");
    let (instructions, _signature) = sign(request, &params).expect("sign").into_parts();
    for (k, v) in instructions.headers() {
        map.insert(
            hyper::header::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
            v.parse().expect("header value"),
        );
    }
    map
}

/// A signed `GET /_sous/status`.
pub(crate) fn status_request(server: &Server) -> Result<Request<Full<Bytes>>, hyper::http::Error> {
    let headers = signed(server, "GET", "/_sous/status", &[], b"");
    let mut req = Request::get("/_sous/status").body(Full::new(Bytes::new()))?;
    *req.headers_mut() = headers;
    Ok(req)
}

/// A signed asynchronous (`InvocationType: Event`) invoke of `function`.
pub(crate) fn signed_event(server: &Server, function: &str) -> Prepared {
    let path = format!("/2015-03-31/functions/{function}/invocations");
    let headers = signed(
        server,
        "POST",
        &path,
        &[("x-amz-invocation-type", "Event")],
        PAYLOAD,
    );
    Prepared {
        path,
        headers,
        body: Bytes::from_static(PAYLOAD),
    }
}

pub(crate) fn signed_invoke(server: &Server, function: &str, tail: bool) -> Prepared {
    let path = format!("/2015-03-31/functions/{function}/invocations");
    let log_type = if tail { "Tail" } else { "None" };
    let headers = signed(
        server,
        "POST",
        &path,
        &[("x-amz-log-type", log_type)],
        PAYLOAD,
    );
    Prepared {
        path,
        headers,
        body: Bytes::from_static(PAYLOAD),
    }
}

/// CreateFunctionUrlConfig (AuthType NONE) for `name`; returns the URL's path on the front
/// door at `gateway` (what a client sends with `Host: gateway`).
pub(crate) async fn create_function_url(
    server: &Server,
    name: &str,
    gateway: &str,
) -> Result<String, BoxError> {
    let path = format!("/2021-10-31/functions/{name}/url");
    let body = br#"{"AuthType":"NONE"}"#;
    let headers = signed(
        server,
        "POST",
        &path,
        &[("content-type", "application/json")],
        body,
    );
    let mut req = Request::post(path.as_str()).body(Full::new(Bytes::from_static(body)))?;
    *req.headers_mut() = headers;
    let mut api = connect(server.addr).await?;
    let (status, out) = send(&mut api, req).await?;
    if status != 201 {
        return Err(format!(
            "CreateFunctionUrlConfig: {status} {}",
            String::from_utf8_lossy(&out)
        )
        .into());
    }
    let config: serde_json::Value = serde_json::from_slice(&out)?;
    let url = config["FunctionUrl"].as_str().ok_or("no FunctionUrl")?;
    Ok(url
        .strip_prefix(&format!("http://{gateway}"))
        .ok_or("FunctionUrl is not on the gateway address")?
        .to_string())
}

pub(crate) async fn create_function(
    server: &Server,
    name: &str,
    zip: &[u8],
) -> Result<(), BoxError> {
    create_function_with(server, name, zip, ("provided.al2023", "bootstrap")).await
}

/// CreateFunction with a `(runtime, handler)` and 1,769 MB (one vCPU on Lambda).
pub(crate) async fn create_function_with(
    server: &Server,
    name: &str,
    zip: &[u8],
    runtime: (&str, &str),
) -> Result<(), BoxError> {
    create_function_sized(server, name, zip, runtime, 1769).await
}

/// CreateFunction with a `(runtime, handler)` and `memory` MB.
pub(crate) async fn create_function_sized(
    server: &Server,
    name: &str,
    zip: &[u8],
    (runtime, handler): (&str, &str),
    memory: u32,
) -> Result<(), BoxError> {
    let body = serde_json::json!({
        "FunctionName": name,
        "Runtime": runtime,
        "Role": "arn:aws:iam::000000000000:role/bench",
        "Handler": handler,
        "MemorySize": memory,
        "Code": { "ZipFile": base64::engine::general_purpose::STANDARD.encode(zip) },
    })
    .to_string();
    let path = "/2015-03-31/functions";
    let headers = signed(
        server,
        "POST",
        path,
        &[("content-type", "application/json")],
        body.as_bytes(),
    );
    let mut req = Request::post(path).body(Full::new(Bytes::from(body)))?;
    *req.headers_mut() = headers;
    let mut c = connect(server.addr).await?;
    let (status, body) = send(&mut c, req).await?;
    if status != 201 {
        return Err(format!(
            "CreateFunction {name}: {status} {}",
            String::from_utf8_lossy(&body)
        )
        .into());
    }
    Ok(())
}

pub(crate) async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, BoxError> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

pub(crate) async fn send(
    c: &mut SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> Result<(u16, Bytes), BoxError> {
    c.ready().await?;
    let resp = c.send_request(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// `tasks` connections sending `total` requests between them; returns requests per second and
/// per-request latencies.
pub(crate) async fn concurrent<F, E>(
    tasks: usize,
    total: usize,
    addr: SocketAddr,
    make: F,
) -> Result<(f64, Vec<Duration>), BoxError>
where
    F: Fn() -> Result<Request<Full<Bytes>>, E>,
    E: std::error::Error + Send + Sync + 'static,
{
    let per_task = total / tasks;
    let mut batches = Vec::new();
    for _ in 0..tasks {
        let mut reqs = Vec::with_capacity(per_task + 20);
        for _ in 0..per_task + 20 {
            reqs.push(make()?);
        }
        batches.push(reqs);
    }
    let start = Instant::now();
    let mut handles = Vec::new();
    for reqs in batches {
        handles.push(tokio::spawn(async move {
            let mut c = connect(addr).await?;
            let mut lat = Vec::with_capacity(reqs.len());
            for (i, req) in reqs.into_iter().enumerate() {
                let t = Instant::now();
                send(&mut c, req).await?;
                if i >= 20 {
                    lat.push(t.elapsed());
                }
            }
            Ok::<_, BoxError>(lat)
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await??);
    }
    let rate = all.len() as f64 / start.elapsed().as_secs_f64();
    Ok((rate, all))
}

async fn start_echo() -> Result<SocketAddr, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                        let body = req.into_body().collect().await?.to_bytes();
                        Ok::<_, hyper::Error>(hyper::Response::new(Full::new(body)))
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(addr)
}

pub(crate) async fn start_sous(sous: &Path, extra: &[&str]) -> Result<Server, BoxError> {
    let dir = tempfile::tempdir()?;
    let port = TcpListener::bind("127.0.0.1:0").await?.local_addr()?.port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let (access_key_id, secret_access_key) = ("AKIDBENCH", "bench-secret");
    let creds = Credentials::new(access_key_id, secret_access_key, None, None, "sous-bench");
    let child = Command::new(sous)
        .args([
            "serve",
            "--no-echo-logs",
            "--api-addr",
            &addr.to_string(),
            "--data-dir",
        ])
        .arg(dir.path())
        .args(extra)
        // Two servers may run at once: the front door takes any free port unless asked.
        .args(match extra.contains(&"--gateway-addr") {
            true => &[][..],
            false => &["--gateway-addr", "127.0.0.1:0"][..],
        })
        .env("SOUS_ACCESS_KEY_ID", access_key_id)
        .env("SOUS_SECRET_ACCESS_KEY", secret_access_key)
        .env("SOUS_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()?;
    let server = Server {
        child,
        addr,
        creds,
        dir,
    };
    for _ in 0..200 {
        if TcpStream::connect(addr).await.is_ok() {
            return Ok(server);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Err("sous serve did not start listening".into())
}

pub(crate) fn zip_bootstrap(bootstrap: &PathBuf) -> Result<Vec<u8>, BoxError> {
    let bytes = std::fs::read(bootstrap)?;
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = zip::ZipWriter::new(&mut out);
    let opts = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
    w.start_file("bootstrap", opts)?;
    w.write_all(&bytes)?;
    w.finish()?;
    Ok(out.into_inner())
}

/// First invocations of `n` new functions, one every 200 ms (a steady trickle, so the
/// sandbox's pools of prepared namespaces and /tmp images are ready, as between real cold
/// starts): end-to-end latencies and Init Durations.
pub(crate) async fn cold_starts(
    server: &Server,
    zip: &[u8],
    n: usize,
    prefix: &str,
) -> Result<(Vec<Duration>, Vec<Duration>), BoxError> {
    cold_starts_of(server, zip, n, prefix, ("provided.al2023", "bootstrap")).await
}

/// [`cold_starts`] of functions of a given `(runtime, handler)`.
pub(crate) async fn cold_starts_of(
    server: &Server,
    zip: &[u8],
    n: usize,
    prefix: &str,
    runtime: (&str, &str),
) -> Result<(Vec<Duration>, Vec<Duration>), BoxError> {
    let mut e2e = Vec::new();
    let mut init = Vec::new();
    for i in 0..n {
        let name = format!("{prefix}-{i}");
        create_function_with(server, &name, zip, runtime).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let req = signed_invoke(server, &name, true);
        let mut c = connect(server.addr).await?;
        let t = Instant::now();
        let resp = c.send_request(req.clone_request()?).await?;
        let elapsed = t.elapsed();
        let log = resp
            .headers()
            .get("x-amz-log-result")
            .and_then(|v| {
                base64::engine::general_purpose::STANDARD
                    .decode(v.as_bytes())
                    .ok()
            })
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        resp.into_body().collect().await?;
        e2e.push(elapsed);
        if let Some(ms) = init_duration(&log) {
            init.push(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    Ok((e2e, init))
}

/// `Init Duration: 4.56 ms` from a REPORT line.
pub(crate) fn init_duration(log: &str) -> Option<f64> {
    let rest = &log[log.find("Init Duration: ")? + "Init Duration: ".len()..];
    rest.split(' ').next()?.parse().ok()
}

/// Start the bootstrap executable bare (no Runtime API: it exits at once) `n` times.
fn bare_starts(bootstrap: &Path, n: usize) -> Result<Vec<Duration>, BoxError> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        Command::new(bootstrap)
            .env_clear()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        v.push(t.elapsed());
    }
    Ok(v)
}
