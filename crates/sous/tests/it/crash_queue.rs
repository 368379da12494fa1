//! Duplicates after a crash (issue 14, point 5), through the real binary and aws-sdk-lambda.
//!
//! Asynchronous events are accepted while earlier ones are delivered; `sous serve` is
//! SIGKILLed as soon as some of them have logged `END`, then started again on the same data
//! dir, several times. An attempt that logged `END` before a kill must not run again (its
//! outcome was committed before that line was written), and no accepted event may be lost
//! (an attempt cut by the kill runs again: that duplicate is allowed).
//!
//! Deliveries are read from the function's log streams (`<data-dir>/logs/<function>/`):
//! every attempt writes `START RequestId: <id>`, and `END RequestId: <id>` when it ends (an
//! attempt killed between its outcome's commit and its `END` line has no `END` and is not run
//! again: it did run, so an event is lost only if it has no `START`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use aws_sdk_lambda::operation::RequestId as _;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;

const FUNCTION: &str = "crash-queue";
/// Kills (each followed by a restart).
const ROUNDS: usize = 5;
/// Events sent per round, by `SENDERS` clients at once.
const PER_ROUND: usize = 240;
const SENDERS: usize = 8;
/// `END` lines a round waits for (beyond the earlier rounds') before its kill.
const ENDS_BEFORE_KILL: usize = 30;

/// `(STARTs, ENDs)` per request id in the function's log streams.
fn attempts(server: &Server) -> BTreeMap<String, (usize, usize)> {
    let mut by_id: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for line in server.log_events(FUNCTION) {
        if let Some(rest) = line.strip_prefix("START RequestId: ") {
            let id = rest.split(' ').next().unwrap_or_default().to_string();
            by_id.entry(id).or_default().0 += 1;
        } else if let Some(rest) = line.strip_prefix("END RequestId: ") {
            by_id.entry(rest.trim().to_string()).or_default().1 += 1;
        }
    }
    by_id
}

/// `PER_ROUND` Event invokes from `SENDERS` tasks; the request ids of the 202s go to
/// `accepted` (calls cut by the kill fail, and are not counted as accepted).
fn send_events(client: aws_sdk_lambda::Client, accepted: Arc<Mutex<Vec<String>>>) {
    for s in 0..SENDERS {
        let (client, accepted) = (client.clone(), accepted.clone());
        tokio::spawn(async move {
            for i in 0..PER_ROUND / SENDERS {
                let out = client
                    .invoke()
                    .function_name(FUNCTION)
                    .invocation_type(InvocationType::Event)
                    .payload(Blob::new(format!(r#"{{"sender":{s},"n":{i}}}"#)))
                    .send()
                    .await;
                match out {
                    Ok(out) if out.status_code() == 202 => {
                        let id = out.request_id().expect("request id").to_string();
                        accepted.lock().unwrap().push(id);
                    }
                    // The server was killed under this call.
                    _ => return,
                }
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kill_never_reruns_an_attempt_that_logged_end_and_loses_nothing() {
    let mut server = Server::start();
    let bootstrap = std::fs::read(example_binary("rust_runtime_hello")).expect("read fixture");
    create_ok(
        &server,
        create(&server.client, FUNCTION, &bootstrap_zip(bootstrap)).timeout(30),
    )
    .await;

    let accepted = Arc::new(Mutex::new(Vec::new()));
    // Per request id whose END was logged before a kill: its STARTs at that kill.
    let mut done: BTreeMap<String, usize> = BTreeMap::new();
    for round in 0..ROUNDS {
        let ends_before: usize = attempts(&server).values().map(|a| a.1).sum();
        send_events(server.client.clone(), accepted.clone());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ends: usize = attempts(&server).values().map(|a| a.1).sum();
            if ends >= ends_before + ENDS_BEFORE_KILL {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: {ENDS_BEFORE_KILL} deliveries did not end in 60 s\n{}",
                server.output_tail(4000)
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // Kill while deliveries and acceptances go on, then read what was logged before.
        server.kill_hard();
        for (id, (starts, ends)) in attempts(&server) {
            if ends > 0 {
                done.entry(id).or_insert(starts);
            }
        }
        server.restart();
    }
    server
        .wait_status("an empty queue", 180, |s| s["async"]["queue_depth"] == 0)
        .await;

    let accepted: BTreeSet<String> = accepted.lock().unwrap().iter().cloned().collect();
    assert!(accepted.len() >= ROUNDS * ENDS_BEFORE_KILL);
    let last = attempts(&server);
    let lost: Vec<_> = accepted
        .iter()
        .filter(|id| last.get(*id).map(|a| a.0).unwrap_or(0) == 0)
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} accepted events never ran: {lost:?}",
        lost.len(),
        accepted.len()
    );
    let rerun: Vec<_> = done
        .iter()
        .filter(|(id, starts)| last[*id].0 > **starts)
        .map(|(id, starts)| (id, *starts, last[id].0))
        .collect();
    assert!(
        rerun.is_empty(),
        "{} of {} attempts that had logged END before a kill ran again \
         (request id, STARTs at the kill, STARTs at the end): {rerun:?}",
        rerun.len(),
        done.len()
    );
}
