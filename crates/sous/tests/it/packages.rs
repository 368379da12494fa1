//! Packages with many files (issue 14, point 4), through `aws-sdk-lambda` against the real
//! `sous serve`: a package of 100,000 one-byte files is created, reported with Lambda's
//! `CodeSize` (the zip's length) and runs with every file in `/var/task`; a package of more
//! entries than Sous accepts, and one of more than 250 MB unzipped, are refused with Lambda's
//! error and leave nothing behind. How long the big one takes is measured by
//! `sous-bench --packages` (docs/PERFORMANCE.md), not asserted here.

use std::io::{Cursor, Write};

use std::time::Duration;

use aws_sdk_lambda::client::Waiters;
use aws_sdk_lambda::types::{LastUpdateStatus, State, StateReasonCode};

use crate::common::*;
use sous_types::limits::PACKAGE_ENTRIES_MAX;

/// Files of the big package, spread over [`DIRS`] directories.
const FILES: usize = 100_000;
const DIRS: usize = 100;

/// `pkg/dNN/fNNNNNN.txt` holding one letter: `a` + i mod 26.
fn file_path(i: usize) -> String {
    format!("pkg/d{:02}/f{i:06}.txt", i % DIRS)
}

/// `text` without ANSI colour sequences (`ESC [ … m`), which the server's log fields carry.
fn without_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn letter(i: usize) -> char {
    char::from(b'a' + (i % 26) as u8)
}

/// A zip of `bootstrap` and `files` one-byte files (stored, as packers store tiny files).
fn many_files_zip(bootstrap: &str, files: usize) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    w.start_file("bootstrap", stored.unix_permissions(0o755))
        .unwrap();
    w.write_all(bootstrap.as_bytes()).unwrap();
    for i in 0..files {
        w.start_file(file_path(i), stored.unix_permissions(0o644))
            .unwrap();
        w.write_all(&[letter(i) as u8]).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_of_100000_files_is_created_and_runs() {
    let server = Server::start();
    let c = &server.client;
    // Reads the first, a middle and the last file, counts one directory's files and all of
    // them, from the read-only /var/task the sandbox mounts.
    let bootstrap = shell_runtime(
        "",
        r#"  first=$(cat /var/task/pkg/d00/f000000.txt)
  middle=$(cat /var/task/pkg/d42/f054342.txt)
  last=$(cat /var/task/pkg/d99/f099999.txt)
  in_d42=$(ls /var/task/pkg/d42 | wc -l)
  all=$(find /var/task/pkg -type f | wc -l)
  respond_text "{\"first\":\"$first\",\"middle\":\"$middle\",\"last\":\"$last\",\"in_d42\":$in_d42,\"all\":$all}""#,
    );
    let zip = many_files_zip(&bootstrap, FILES);
    let name = unique("many");
    let out = create_ok(&server, create(c, &name, &zip)).await;
    let conf = conf!(out);
    assert_eq!(conf.code_size, zip.len() as i64, "CreateFunction CodeSize");
    assert_eq!(conf.code_sha256, Some(code_sha256(&zip)));

    // Answered at once: Active when the extraction finished within CreateFunction's wait,
    // else Pending until it has (as Lambda's functions are while it prepares them).
    match out.state() {
        Some(State::Active) => {}
        Some(State::Pending) => wait_active(c, &name).await,
        other => panic!("CreateFunction State {other:?}"),
    }

    let got = c.get_function().function_name(&name).send().await.unwrap();
    let got = got.configuration().expect("GetFunction Configuration");
    assert_eq!(got.code_size(), zip.len() as i64, "GetFunction CodeSize");
    assert_eq!(got.state(), Some(&State::Active));

    let out = invoke(&server, &name, b"{}").await;
    assert_eq!(out.function_error, None, "{}", out.log());
    assert_eq!(
        out.json(),
        serde_json::json!({
            "first": letter(0).to_string(),
            "middle": letter(54_342).to_string(),
            "last": letter(FILES - 1).to_string(),
            "in_d42": FILES / DIRS,
            "all": FILES,
        })
    );

    // Every file is in the cache, and its disk use is in the log line of the extraction.
    let extracted = server.tree("extract");
    assert_eq!(
        extracted.iter().filter(|p| p.ends_with(".txt")).count(),
        FILES
    );
    let log = without_colours(&server.output());
    let line = log
        .lines()
        .find(|l| l.contains("extracted code package") && l.contains("entries=100001"))
        .unwrap_or_else(|| panic!("no extraction log line with its disk use:\n{log}"));
    assert!(
        line.contains("disk_bytes=") && line.contains("inodes="),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packages_over_the_entry_cap_or_250_mb_unzipped_are_refused() {
    let server = Server::start();
    let c = &server.client;
    let good = unique("good");
    create_ok(&server, create(c, &good, &bootstrap_zip(echo_runtime()))).await;
    let code_before = server.tree("code");
    let extract_before = server.tree("extract");

    // One entry over the cap: refused before anything is written.
    let over = many_files_zip("#!/bin/sh\n", PACKAGE_ENTRIES_MAX as usize);
    let entries = PACKAGE_ENTRIES_MAX + 1;
    let name = unique("over");
    let err = expect_err(create(c, &name, &over).send().await);
    err.assert(400, "InvalidParameterValueException");
    assert_eq!(
        err.message(),
        format!(
            "Could not unzip uploaded file. The package has {entries} entries; \
             this server accepts at most {PACKAGE_ENTRIES_MAX}."
        )
    );
    let err = expect_err(
        c.update_function_code()
            .function_name(&good)
            .zip_file(aws_sdk_lambda::primitives::Blob::new(over))
            .send()
            .await,
    );
    err.assert(400, "InvalidParameterValueException");

    // Lambda's limit on unzipped bytes, with Lambda's message.
    let err = expect_err(create(c, &unique("big"), &zip_bomb(260)).send().await);
    err.assert(400, "InvalidParameterValueException");
    assert_eq!(
        err.message(),
        "Unzipped size must be smaller than 262144000 bytes"
    );

    let err = expect_err(c.get_function().function_name(&name).send().await);
    err.assert(404, "ResourceNotFoundException");
    assert_eq!(server.tree("code"), code_before, "code/ changed");
    assert_eq!(server.tree("extract"), extract_before, "extract/ changed");
}

/// Wait for `Active` with the SDK's own waiter (`FunctionActiveV2`, as `aws lambda wait
/// function-active-v2` does).
async fn wait_active(c: &aws_sdk_lambda::Client, name: &str) {
    c.wait_until_function_active_v2()
        .function_name(name)
        .wait(Duration::from_secs(300))
        .await
        .unwrap_or_else(|e| panic!("{name} did not become Active: {e:?}"));
}

/// A function whose package is still being extracted is `Pending` (StateReasonCode
/// `Creating`, no LastUpdateStatus), refuses invocations and changes with Lambda's
/// ResourceConflictException and messages, and becomes `Active` for the SDK's waiter.
/// `SOUS_TEST_CREATE_PENDING_MS` makes every creation Pending for that long, whatever the
/// machine's speed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_whose_code_is_being_extracted_is_pending_then_active() {
    let server = Server::start_with(ServerOptions {
        env: vec![("SOUS_TEST_CREATE_PENDING_MS".into(), "4000".into())],
        ..ServerOptions::default()
    });
    let c = &server.client;
    let name = unique("pending");
    let zip = many_files_zip(&echo_runtime(), 1_000);
    let out = create_ok(&server, create(c, &name, &zip)).await;
    assert_eq!(out.state(), Some(&State::Pending));
    assert_eq!(out.state_reason(), Some("The function is being created."));
    assert_eq!(out.state_reason_code(), Some(&StateReasonCode::Creating));
    assert_eq!(out.last_update_status(), None);
    let arn = out.function_arn().unwrap().to_string();

    let err = expect_err(invoke_req(c, &name, b"{}").send().await);
    err.assert(409, "ResourceConflictException");
    assert_eq!(
        err.message(),
        "The operation cannot be performed at this time. The function is currently in the following state: Pending"
    );
    let err = expect_err(
        c.update_function_configuration()
            .function_name(&name)
            .description("too early")
            .send()
            .await,
    );
    err.assert(409, "ResourceConflictException");
    assert_eq!(
        err.message(),
        format!(
            "The operation cannot be performed at this time. The resource {arn} is currently in \
             the following state: 'Pending'. StateReasonCode: 'Creating'"
        )
    );
    let err = expect_err(c.publish_version().function_name(&name).send().await);
    err.assert(409, "ResourceConflictException");
    // Listing shows it, without its state (as ListFunctions never shows State).
    let listed = c.list_functions().send().await.unwrap();
    assert!(listed
        .functions()
        .iter()
        .any(|f| f.function_name() == Some(name.as_str()) && f.state().is_none()));

    wait_active(c, &name).await;
    let got = c
        .get_function_configuration()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(got.state(), Some(&State::Active));
    assert_eq!(got.state_reason(), None);
    assert_eq!(got.state_reason_code(), None);
    assert_eq!(
        got.last_update_status(),
        Some(&LastUpdateStatus::Successful)
    );
    assert_eq!(
        got.revision_id(),
        out.revision_id(),
        "the state change keeps RevisionId"
    );
    let out = invoke(&server, &name, br#"{"hello":"pending"}"#).await;
    assert_eq!(out.function_error, None, "{}", out.log());
    assert_eq!(out.json(), serde_json::json!({"hello": "pending"}));
}

/// A server killed while a function is Pending finishes its creation at the next start (the
/// code is extracted again from its stored blob).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creation_cut_by_a_kill_is_finished_at_the_next_start() {
    let mut server = Server::start_with(ServerOptions {
        env: vec![("SOUS_TEST_CREATE_PENDING_MS".into(), "600000".into())],
        ..ServerOptions::default()
    });
    let name = unique("cut");
    let zip = many_files_zip(&echo_runtime(), 1_000);
    let out = create_ok(&server, create(&server.client, &name, &zip)).await;
    assert_eq!(out.state(), Some(&State::Pending));
    server.kill_hard();
    server.restart();
    let c = &server.client;
    wait_active(c, &name).await;
    let out = invoke(&server, &name, br#"{"after":"restart"}"#).await;
    assert_eq!(out.function_error, None, "{}", out.log());
    assert_eq!(out.json(), serde_json::json!({"after": "restart"}));
}
