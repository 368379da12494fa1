//! `sous-bench --crash-dups [--kills N] [--seed S]`: duplicates after a crash (issue 14,
//! point 5).
//!
//! One data dir, one function (`minimal-bootstrap`, which answers at once). Each of `N`
//! rounds (default 20) starts `sous serve` on that data dir, sends bursts of asynchronous
//! invokes (`InvocationType: Event`, 100 per burst at concurrency 16, a random pause between
//! bursts) and SIGKILLs the server at a random moment (0.2–2 s into the round, so kills land
//! while events are accepted and while the backlog of earlier rounds is delivered). A last
//! start then drains the queue and stops with SIGTERM.
//!
//! Counting: every accepted event (answered 202) is known by the request id the answer
//! names. A delivery is a `START RequestId: <id>` line in the function's log streams under
//! `<data-dir>/logs/` (Sous writes it, flushed, just before it hands the event to the
//! runtime; it is the most faithful count Sous persists: an attempt that wrote START and was
//! then killed may or may not have run the function, so this counts such an attempt as a
//! delivery, the side that can only overstate duplicates). Each attempt that completed also
//! wrote `END RequestId: <id>`. Per request id with `s` STARTs and `e` ENDs: `s - 1`
//! duplicates, of which `s - e` follow an attempt cut by a kill (in flight: its outcome was
//! unknown, so it had to run again) and the rest follow an attempt that had logged END
//! (its outcome known, but not committed before the kill). A lost event is an accepted one
//! with no START.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use tokio::net::{TcpListener, TcpStream};

use crate::{connect, create_function, signed_event, status_request, zip_bootstrap, BoxError};

const FUNCTION: &str = "crash-dups";
const BURST: usize = 100;
const SENDERS: usize = 16;

/// A small deterministic generator (xorshift64*), so a run can be repeated with `--seed`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn arg_value(name: &str) -> Option<u64> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn epoch_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// Start `sous serve` on `data_dir` and wait until its API answers.
async fn start(sous: &Path, data_dir: &Path) -> Result<crate::Server, BoxError> {
    let port = TcpListener::bind("127.0.0.1:0").await?.local_addr()?.port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let (akid, secret) = ("AKIDBENCH", "bench-secret");
    let child = Command::new(sous)
        .args(["serve", "--no-echo-logs", "--api-addr", &addr.to_string()])
        .args(["--gateway-addr", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("SOUS_ACCESS_KEY_ID", akid)
        .env("SOUS_SECRET_ACCESS_KEY", secret)
        .env("SOUS_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()?;
    let server = crate::Server {
        child,
        addr,
        creds: Credentials::new(akid, secret, None, None, "sous-bench"),
        // The data dir outlives each server; this one is only the struct's.
        dir: tempfile::tempdir()?,
    };
    for _ in 0..400 {
        if TcpStream::connect(addr).await.is_ok() {
            return Ok(server);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Err("sous serve did not start listening".into())
}

/// SIGKILL the server. The `kill` is sent before the server is dropped (whose drop sends
/// SIGTERM and reaps it), so the pid cannot have been reused in between.
fn kill_hard(server: crate::Server) -> Result<(), BoxError> {
    let status = Command::new("kill")
        .args(["-KILL", &server.child.id().to_string()])
        .status()?;
    if !status.success() {
        return Err("kill -KILL failed".into());
    }
    drop(server);
    Ok(())
}

/// Bursts of Event invokes until `stop`; request ids of the 202s go to `accepted`.
async fn bursts(
    addr: std::net::SocketAddr,
    event: Arc<crate::Prepared>,
    stop: Arc<AtomicBool>,
    accepted: Arc<Mutex<Vec<String>>>,
    seed: u64,
) {
    let mut rng = Rng(seed | 1);
    while !stop.load(Ordering::Relaxed) {
        let mut tasks = Vec::new();
        for _ in 0..SENDERS {
            let (event, stop, accepted) = (event.clone(), stop.clone(), accepted.clone());
            tasks.push(tokio::spawn(async move {
                let Ok(mut c) = connect(addr).await else {
                    return;
                };
                for _ in 0..BURST / SENDERS {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let Ok(req) = event.clone_request() else {
                        return;
                    };
                    if c.ready().await.is_err() {
                        return;
                    }
                    let Ok(resp) = c.send_request(req).await else {
                        return;
                    };
                    if resp.status().as_u16() == 202 {
                        if let Some(id) = resp
                            .headers()
                            .get("x-amzn-requestid")
                            .and_then(|v| v.to_str().ok())
                        {
                            accepted.lock().unwrap().push(id.to_string());
                        }
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        tokio::time::sleep(Duration::from_millis(rng.between(0, 150))).await;
    }
}

/// The `async` part of the status endpoint.
async fn queue_depth(server: &crate::Server) -> Result<u64, BoxError> {
    let mut c = connect(server.addr).await?;
    let (status, body) = crate::send(&mut c, status_request(server)?).await?;
    if status != 200 {
        return Err(format!("status answered {status}").into());
    }
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    v["async"]["queue_depth"]
        .as_u64()
        .ok_or_else(|| "no queue_depth in the status".into())
}

/// `(starts, ends)` per request id, with the time of the first START, from the function's
/// log streams (`epoch-ms\tmessage` lines).
fn deliveries(data_dir: &Path) -> HashMap<String, (u32, u32, u128)> {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&data_dir.join("logs").join(FUNCTION), &mut files);
    let mut by_id: HashMap<String, (u32, u32, u128)> = HashMap::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for line in text.lines() {
            let Some((ms, msg)) = line.split_once('\t') else {
                continue;
            };
            let ms: u128 = ms.parse().unwrap_or(0);
            if let Some(rest) = msg.strip_prefix("START RequestId: ") {
                let id = rest.split(' ').next().unwrap_or_default().to_string();
                let e = by_id.entry(id).or_insert((0, 0, ms));
                e.0 += 1;
                e.2 = e.2.min(ms);
            } else if let Some(rest) = msg.strip_prefix("END RequestId: ") {
                let id = rest.trim().to_string();
                by_id.entry(id).or_insert((0, 0, u128::MAX)).1 += 1;
            }
        }
    }
    by_id
}

pub async fn run() -> Result<(), BoxError> {
    let kills = arg_value("--kills").unwrap_or(20) as usize;
    let seed = arg_value("--seed").unwrap_or_else(|| epoch_ms() as u64);
    let mut rng = Rng(seed | 1);
    let exe_dir = std::env::current_exe()?
        .parent()
        .ok_or("no exe dir")?
        .to_path_buf();
    let sous = exe_dir.join("sous");
    let zip = zip_bootstrap(&exe_dir.join("minimal-bootstrap"))?;
    let data = tempfile::Builder::new()
        .prefix("sous-crash-dups-")
        .tempdir()?;

    let first = start(&sous, data.path()).await?;
    create_function(&first, FUNCTION, &zip).await?;
    let mut first = Some(first);
    // Accepted request ids per round, and the moment of each kill.
    let mut rounds: Vec<Vec<String>> = Vec::new();
    let mut kill_at: Vec<u128> = Vec::new();
    for _ in 0..kills {
        let server = match first.take() {
            Some(s) => s,
            None => start(&sous, data.path()).await?,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let load = {
            let (stop, accepted) = (stop.clone(), accepted.clone());
            let event = Arc::new(signed_event(&server, FUNCTION));
            tokio::spawn(bursts(server.addr, event, stop, accepted, rng.next()))
        };
        tokio::time::sleep(Duration::from_millis(rng.between(200, 2000))).await;
        kill_hard(server)?;
        kill_at.push(epoch_ms());
        stop.store(true, Ordering::Relaxed);
        load.await?;
        let ids = std::mem::take(&mut *accepted.lock().unwrap());
        rounds.push(ids);
    }

    // Drain.
    let server = start(&sous, data.path()).await?;
    let deadline = Instant::now() + Duration::from_secs(600);
    while queue_depth(&server).await? != 0 {
        if Instant::now() > deadline {
            return Err("the queue did not drain in 10 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(server);

    let by_id = deliveries(data.path());
    let accepted_total: usize = rounds.iter().map(Vec::len).sum();
    let (mut dups, mut in_flight, mut lost) = (0u64, 0u64, 0u64);
    // Duplicates per kill: a duplicate arises at the kill that ended the round in which its
    // first attempt STARTed.
    let mut per_round = vec![0u64; kills + 1];
    for ids in &rounds {
        for id in ids {
            match by_id.get(id) {
                None | Some((0, _, _)) => lost += 1,
                Some(&(s, e, first)) => {
                    if s > 1 {
                        dups += u64::from(s - 1);
                        in_flight += u64::from(s.saturating_sub(e).min(s - 1));
                        let r = kill_at.iter().position(|&k| first <= k).unwrap_or(kills);
                        per_round[r] += u64::from(s - 1);
                    }
                }
            }
        }
    }
    let after_end = dups - in_flight;
    let pct = |n: u64| 100.0 * n as f64 / accepted_total.max(1) as f64;
    let worst_kill = per_round[..kills].iter().copied().max().unwrap_or(0);
    println!("| measurement | value |");
    println!("| --- | --- |");
    println!("| SIGKILLs (seed {seed}) | {kills} |");
    println!("| events accepted (202) | {accepted_total} |");
    println!("| lost (accepted, never delivered) | {lost} |");
    println!(
        "| duplicate deliveries | {dups} ({:.2} % of accepted) |",
        pct(dups)
    );
    println!(
        "| of which the first attempt had logged END | {after_end} ({:.2} %) |",
        pct(after_end)
    );
    println!(
        "| of which the first attempt was cut by the kill | {in_flight} ({:.2} %) |",
        pct(in_flight)
    );
    println!(
        "| per kill: accepted (mean), duplicates (mean / worst kill) | {:.0}, {:.1} / {worst_kill} |",
        accepted_total as f64 / kills.max(1) as f64,
        dups as f64 / kills.max(1) as f64
    );
    if lost > 0 {
        return Err(format!("{lost} accepted events were lost").into());
    }
    Ok(())
}
