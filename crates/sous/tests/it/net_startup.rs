//! Outbound networking without host programs, and what `sous serve` says about networking at
//! start-up (issue 13, point 3), through the real binary as root.
//!
//! - With outbound networking (the default), the NAT and firewall are Sous's own nftables
//!   table, made through netlink (this host has no `nft` or `iptables` program): a function
//!   reaches a test host (a network namespace the test creates, as in the sandbox tests), and
//!   the table goes when Sous stops, even when it is killed.
//! - Where outbound networking cannot be set up, `sous serve` still starts when the operator
//!   did not ask for it: one warning line that names the fix, and functions that run with
//!   their own loopback only. With `--function-network outbound` given, it refuses to start.
//!   The failure is made with the hidden `--test-outbound-unavailable REASON` flag of
//!   `sous serve` (for these tests only): it makes the set-up fail with REASON where the real
//!   one would have run, so everything after it is the real path.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::attack::*;
use crate::common::*;
use sous_sandbox::network::nft;

fn require_root() {
    assert_eq!(
        sous_sandbox::syscalls::geteuid(),
        0,
        "the networking start-up tests must run as root: outbound networking (veth pairs, \
         nftables) needs it; run `cargo test -p sous --test net_startup` as root"
    );
}

/// The nftables table the server's start-up line names.
fn table_of(server: &Server) -> String {
    let out = server.output();
    let at = out
        .find("nftables table ip ")
        .unwrap_or_else(|| panic!("the start-up line names no nftables table:\n{out}"));
    out[at + "nftables table ip ".len()..]
        .split(|c: char| c == ')' || c.is_whitespace())
        .next()
        .unwrap()
        .to_string()
}

/// Wait (briefly) until `table` is gone: the kernel removes an owned table as the owner's
/// socket is released.
fn wait_gone(table: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !nft::table_exists(table).unwrap() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_through_netlink_reaches_a_test_host_and_the_table_goes_at_exit() {
    require_root();
    let test_host = TestHost::start();
    let mut server = Server::start();
    let table = table_of(&server);
    assert!(table.starts_with("sous-"), "{table}");
    assert!(
        nft::table_exists(&table).unwrap(),
        "table {table} is not in the kernel"
    );
    let out = server.output();
    assert!(
        out.contains("functions' network outbound")
            && out.contains("start-up check passed")
            && !out.contains("limited to their own loopback"),
        "{out}"
    );
    check_outbound_reaches(&server, "netlink-outbound", &test_host).await;
    // Link-local (instance metadata) is refused at once by the table's reject rule (curl's
    // exit 7, "couldn't connect"), not sent out to time out (exit 28).
    let name = deploy(
        &server,
        "metadata",
        &attack_zip("  t meta curl -sS --max-time 5 http://169.254.169.254/latest/meta-data/"),
        30,
        128,
        512,
        &[],
    )
    .await;
    let report = report(&server, &name).await;
    assert!(failed(&report, "meta").starts_with("rc7 "), "{report}");

    // A clean stop removes the table.
    assert!(server.stop().success());
    assert!(wait_gone(&table), "table {table} left after SIGTERM");

    // A new start puts it back; a crash removes it too (the table belongs to Sous's socket).
    server.restart();
    assert!(nft::table_exists(&table).unwrap());
    server.kill_hard();
    assert!(wait_gone(&table), "table {table} left after SIGKILL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_outbound_sous_warns_once_and_serves_with_loopback_only() {
    require_root();
    let test_host = TestHost::start();
    let reason = "nf_tables is not in this test's kernel";
    let server = Server::start_with(ServerOptions::with_args(&[
        "--test-outbound-unavailable",
        reason,
    ]));
    let out = server.output();
    let warnings: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("functions' network is limited to their own loopback"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning line:\n{out}");
    assert!(
        warnings[0].contains("WARN")
            && warnings[0].contains(reason)
            && warnings[0].contains("Fix that and restart"),
        "the warning names the cause and the fix: {}",
        warnings[0]
    );
    assert!(
        out.contains("functions' network loopback only"),
        "the start-up line says so:\n{out}"
    );
    assert!(!out.contains("nftables table"), "{out}");
    // Functions run, with their own loopback only.
    check_no_route_out(&server, "loopback-only", &test_host).await;
}

#[test]
fn explicit_outbound_that_cannot_be_set_up_refuses_to_start() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let reason = "nf_tables is not in this test's kernel";
    let mut child = Command::new(Server::binary())
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--api-addr", "127.0.0.1:0", "--gateway-addr", "127.0.0.1:0"])
        .args(["--function-network", "outbound"])
        .args(["--test-outbound-unavailable", reason])
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sous serve did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(!stdout.contains("listening"), "{stdout}");
    assert!(
        stderr.contains("--function-network outbound was asked for")
            && stderr.contains(reason)
            && stderr.contains("--function-network none"),
        "the refusal names the cause and the fix:\n{stderr}"
    );
}
