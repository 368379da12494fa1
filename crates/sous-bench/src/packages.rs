//! `sous-bench --packages` (issue 14, point 4): CreateFunction of a package with many files,
//! through the real `sous serve`.
//!
//! The package is 100,000 one-byte files in 100 directories (about 11 MB zipped, entries
//! stored, as packers do for tiny files) and an executable `bootstrap`: every cost that is per
//! file, not per byte, shows. Each run creates a new function from the same bytes on a fresh
//! `sous serve` (a fresh data dir, so the extraction cache is cold); CreateFunction is timed
//! from the request's first byte to the 201, and the real disk use of the data dir's
//! `extract/` is read back (`st_blocks`).
//!
//! The extraction alone (without HTTP, JSON or base64) is timed by
//! `cargo run --release -p sous-store --example extract_many`.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use tokio::net::{TcpListener, TcpStream};

use crate::{create_function, BoxError, Server};

/// Files in the package (besides `bootstrap`).
pub const FILES: usize = 100_000;
/// Directories they are spread over.
const DIRS: usize = 100;

/// The package: `bootstrap` plus [`FILES`] one-byte files `pkg/dNN/fNNNNNN.txt`.
pub fn many_files_zip(files: usize) -> Result<Vec<u8>, BoxError> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = zip::ZipWriter::new(&mut out);
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    w.start_file("bootstrap", stored.unix_permissions(0o755))?;
    w.write_all(b"#!/bin/sh\nexit 0\n")?;
    for i in 0..files {
        w.start_file(
            format!("pkg/d{:02}/f{i:06}.txt", i % DIRS),
            stored.unix_permissions(0o644),
        )?;
        w.write_all(&[b'a' + (i % 26) as u8])?;
    }
    w.finish()?;
    Ok(out.into_inner())
}

/// Bytes of disk under `dir` as the file system counts them (`st_blocks` × 512), and inodes.
fn disk_use(dir: &Path) -> Result<(u64, u64), BoxError> {
    let mut blocks = 0u64;
    let mut inodes = 0u64;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            blocks += meta.blocks() * 512;
            inodes += 1;
            if meta.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    Ok((blocks, inodes))
}

/// `sous serve` on a fresh data dir, waited for up to a minute (a loaded machine can take
/// more than the five seconds `start_sous` waits to check its runtimes and fill its pools).
async fn start_patiently(sous: &Path) -> Result<Server, BoxError> {
    let dir = tempfile::tempdir()?;
    let addr = TcpListener::bind("127.0.0.1:0").await?.local_addr()?;
    let (access_key_id, secret_access_key) = ("AKIDBENCH", "bench-secret");
    let child = std::process::Command::new(sous)
        .args(["serve", "--no-echo-logs", "--api-addr", &addr.to_string()])
        .args(["--gateway-addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("SOUS_ACCESS_KEY_ID", access_key_id)
        .env("SOUS_SECRET_ACCESS_KEY", secret_access_key)
        .env("SOUS_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()?;
    let server = Server {
        child,
        addr,
        creds: Credentials::new(access_key_id, secret_access_key, None, None, "sous-bench"),
        dir,
    };
    for _ in 0..600 {
        if TcpStream::connect(addr).await.is_ok() {
            return Ok(server);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("sous serve did not start listening within a minute".into())
}

/// The function's `State`, from GetFunctionConfiguration.
async fn state(server: &Server, name: &str) -> Result<String, BoxError> {
    let path = format!("/2015-03-31/functions/{name}/configuration");
    let headers = crate::signed(server, "GET", &path, &[], b"");
    let mut req = hyper::Request::get(path.as_str())
        .body(http_body_util::Full::new(hyper::body::Bytes::new()))?;
    *req.headers_mut() = headers;
    let mut c = crate::connect(server.addr).await?;
    let (status, body) = crate::send(&mut c, req).await?;
    if status != 200 {
        return Err(format!("GetFunctionConfiguration {name}: {status}").into());
    }
    let config: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(config["State"].as_str().unwrap_or_default().to_string())
}

/// Run the benchmark and print a Markdown table.
pub async fn run(quick: bool) -> Result<(), BoxError> {
    let sous = std::env::current_exe()?
        .parent()
        .ok_or("no exe dir")?
        .join("sous");
    let runs = if quick { 2 } else { 5 };
    let zip = many_files_zip(FILES)?;
    let mut times = Vec::with_capacity(runs);
    let mut actives = Vec::with_capacity(runs);
    let mut disk = (0, 0);
    for run in 0..runs {
        let server = start_patiently(&sous).await?;
        let name = format!("bench-many-{run}");
        let t = Instant::now();
        create_function(&server, &name, &zip).await?;
        let answered = t.elapsed();
        while state(&server, &name).await? != "Active" {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let active = t.elapsed();
        times.push(answered);
        actives.push(active);
        eprintln!(
            "run {run}: answered in {:.0} ms, Active after {:.0} ms",
            answered.as_secs_f64() * 1000.0,
            active.as_secs_f64() * 1000.0
        );
        disk = disk_use(&server.dir.path().join("extract"))?;
        drop(server);
        // Each run starts with nothing left to write back: the previous run's extraction
        // (flushed in the background) and its deletion would otherwise compete with this
        // one's file creation, which one CreateFunction on its own never meets.
        std::process::Command::new("sync").status()?;
    }
    times.sort();
    actives.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "package: {} entries, {} bytes zipped, {} bytes unzipped",
        FILES + 1,
        zip.len(),
        FILES + 17
    )?;
    writeln!(out, "| measurement | p50 (ms) | min (ms) | max (ms) |")?;
    writeln!(out, "| --- | --- | --- | --- |")?;
    writeln!(
        out,
        "| CreateFunction answered (201), {FILES} one-byte files, cold cache | {:.0} | {:.0} | {:.0} |",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1])
    )?;
    writeln!(
        out,
        "| the function Active (GetFunctionConfiguration every 50 ms) | {:.0} | {:.0} | {:.0} |",
        ms(actives[actives.len() / 2]),
        ms(actives[0]),
        ms(actives[actives.len() - 1])
    )?;
    writeln!(
        out,
        "disk of the extraction: {} bytes in blocks (st_blocks), {} inodes; runs: {runs}",
        disk.0, disk.1
    )?;
    Ok(())
}
