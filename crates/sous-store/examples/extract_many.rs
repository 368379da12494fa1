//! Times the extraction of a package of many small files without HTTP, JSON or base64 (issue
//! 14, point 4): `cargo run --release -p sous-store --example extract_many [FILES] [RUNS]`.
//!
//! The package is `bootstrap` plus FILES (default 100,000) one-byte files in 100 directories,
//! stored, like `sous-bench --packages`. Each run extracts into a fresh directory of a fresh
//! store next to the target dir (the file system Sous's data dir would be on), and reports p50
//! over RUNS (default 5) of: `code::extract_zip` alone (validation and writes, no flush), and
//! `CodeStore::put_zip` (that, plus the flush, the disk measurement and the blob).

use std::io::Write;
use std::time::{Duration, Instant};

use sous_store::code::extract_zip;
use sous_store::CodeStore;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let files: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let runs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);

    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = zip::ZipWriter::new(&mut out);
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    w.start_file("bootstrap", stored.unix_permissions(0o755))?;
    w.write_all(b"#!/bin/sh\nexit 0\n")?;
    for i in 0..files {
        w.start_file(
            format!("pkg/d{:02}/f{i:06}.txt", i % 100),
            stored.unix_permissions(0o644),
        )?;
        w.write_all(&[b'a' + (i % 26) as u8])?;
    }
    w.finish()?;
    let zip = out.into_inner();

    // Beside the build, not in /tmp (often tmpfs): the file system a data dir would be on.
    let base = std::env::current_exe()?
        .parent()
        .ok_or("no exe dir")?
        .to_path_buf();
    let mut alone = Vec::new();
    let mut put = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let dir = tempfile::tempdir_in(&base)?;
        let root = dir.path().join("root");
        std::fs::create_dir(&root)?;
        let t = Instant::now();
        extract_zip(&zip, &root)?;
        alone.push(t.elapsed());
        drop(dir);

        let dir = tempfile::tempdir_in(&base)?;
        let store = CodeStore::open(dir.path())?;
        let t = Instant::now();
        last = Some(store.put_zip(&zip)?);
        put.push(t.elapsed());
    }
    let p50 = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1000.0
    };
    let stored = last.ok_or("no runs")?;
    println!(
        "package: {} entries, {} bytes zipped, {} bytes unzipped; extraction takes {} bytes of \
         disk in {} inodes",
        files + 1,
        zip.len(),
        stored.unzipped_size,
        stored.disk_bytes,
        stored.inodes
    );
    println!("extract_zip alone: p50 {:.0} ms", p50(&mut alone));
    println!(
        "CodeStore::put_zip: p50 {:.0} ms (runs: {runs})",
        p50(&mut put)
    );
    Ok(())
}
