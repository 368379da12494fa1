//! Attacks from inside an execution environment, through the real `sous serve` binary with
//! its default full isolation (issue 4, points 5 and 8; docs/SECURITY.md maps each barrier to
//! the test that proves it). Each test deploys a `provided.al2023` shell-script function that
//! attempts one attack and reports what happened, then asserts that the attack failed and
//! that the host and Sous are unharmed (the server still answers, other functions still run).
//!
//! These tests need root (namespaces, cgroups, mounts, veth pairs, iptables) and fail loudly
//! without it. The outbound tests talk only to a "test host": a network namespace each test
//! creates itself (`ip netns add`), joined to the host by a veth pair with a test-only /30 out
//! of 198.18.0.0/16, running a small HTTP server; the guard removes it in all cases.

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use crate::common::attack::*;
use crate::common::*;

fn require_root() {
    assert_eq!(
        sous_sandbox::syscalls::geteuid(),
        0,
        "the sandbox attack tests must run as root: `sous serve` isolates functions with \
         namespaces, cgroups, mounts, veth pairs and nftables, which need root; run \
         `cargo test -p sous --test it sandbox::` as root"
    );
}

// ---------------------------------------------------------------------------------------
// Reading what is not the function's

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cannot_read_host_secrets() {
    require_root();
    let server = Server::start();
    check_cannot_read_host_secrets(&server, "read").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cannot_read_another_functions_tmp() {
    require_root();
    let server = Server::start();
    let secret = unique("tmp-secret");
    let owner = deploy(
        &server,
        "tmp-owner",
        &attack_zip(
            r#"[ -f /tmp/secret ] || echo "$SECRET" > /tmp/secret
  echo "mine=$(cat /tmp/secret)""#,
        ),
        10,
        128,
        512,
        &[("SECRET", &secret)],
    )
    .await;
    let out = report(&server, &owner).await;
    assert_eq!(field(&out, "mine"), Some(secret.as_str()), "{out}");

    let thief = deploy(
        &server,
        "tmp-thief",
        &attack_zip(
            r#"echo "cat=$(cat /tmp/secret 2>&1)"
  echo "ls=$(ls -a /tmp | tr '\n' ' ')"
  echo "grep=$(grep -rs "$SECRET" /tmp /var /opt /run 2>/dev/null | head -n 3)""#,
        ),
        10,
        128,
        512,
        &[("SECRET", &secret)],
    )
    .await;
    let stolen = report(&server, &thief).await;
    assert!(
        field(&stolen, "cat").is_some_and(|v| v.contains("No such file")),
        "{stolen}"
    );
    assert_eq!(field(&stolen, "grep"), Some(""), "{stolen}");
    // The owner's file is still there: the thief looked while it existed.
    let again = report(&server, &owner).await;
    assert_eq!(field(&again, "mine"), Some(secret.as_str()), "{again}");
    assert_sous_unharmed(&server).await;
}

// ---------------------------------------------------------------------------------------
// Writing what is not the function's

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cannot_write_code_or_system_dirs() {
    require_root();
    let server = Server::start();
    let mark = unique("planted");
    let zip = attack_zip(
        r#"for f in /var/task/bootstrap /var/task/new "/usr/$MARK" "/usr/bin/$MARK" "/etc/$MARK" /etc/passwd /etc/resolv.conf "/$MARK" "/var/$MARK" "/lib/$MARK"; do
    if echo pwned 2>&1 >> "$f"; then echo "wrote $f"; else echo "refused $f"; fi
  done
  if ln -s /tmp "/var/task/$MARK" 2>/dev/null; then echo "wrote link"; else echo "refused link"; fi
  if chmod 777 /var/task/bootstrap 2>/dev/null; then echo "wrote mode"; else echo "refused mode"; fi
  echo "tmp=$(echo ok > /tmp/x && cat /tmp/x)""#,
    );
    let name = deploy(&server, "write", &zip, 10, 128, 512, &[("MARK", &mark)]).await;
    let out = report(&server, &name).await;
    assert!(!out.contains("wrote"), "a write went through:\n{out}");
    assert_eq!(out.matches("refused").count(), 12, "{out}");
    assert_eq!(
        field(&out, "tmp"),
        Some("ok"),
        "/tmp must stay writable:\n{out}"
    );
    for dir in ["/usr", "/usr/bin", "/etc", "/", "/var", "/lib"] {
        let host = PathBuf::from(dir).join(&mark);
        assert!(!host.exists(), "{} appeared on the host", host.display());
    }
    // The code is untouched: the function still runs as deployed.
    let again = report(&server, &name).await;
    assert!(!again.contains("wrote"), "{again}");
    assert_sous_unharmed(&server).await;
}

// ---------------------------------------------------------------------------------------
// Processes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sees_only_its_own_processes() {
    require_root();
    let server = Server::start();
    check_sees_only_its_own_processes(&server, "ps").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cannot_signal_sous_or_other_environments() {
    require_root();
    let server = Server::start();
    let victim = deploy_victim(&server, "victim").await;
    let pid = server.pid().unwrap().to_string();
    let attacker = deploy(
        &server,
        "killer",
        &attack_zip(
            r#"t server kill -9 "$SERVER_PID"
  t init kill -9 1
  kill -9 -1; echo "all=rc$?""#,
        ),
        10,
        128,
        512,
        &[("SERVER_PID", &pid)],
    )
    .await;
    let text = report(&server, &attacker).await;
    // The server's pid does not exist in the environment's PID namespace.
    assert!(
        failed(&text, "server").contains("No such process"),
        "{text}"
    );
    // Its own init is root's: not the function's to signal.
    failed(&text, "init");
    assert_sous_unharmed(&server).await;
    assert_victim_unharmed(&server, &victim).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fork_bomb_is_contained() {
    require_root();
    let server = Server::start();
    // 1. Bounded: fork sleepers until fork fails, count them, kill them with builtins only.
    let counted = deploy(
        &server,
        "forks",
        &attack_zip(
            r#"rm -f /tmp/pids
  ( i=0; while [ $i -lt 3000 ]; do sleep 600 & echo $! >> /tmp/pids; i=$((i+1)); done ) 2>/dev/null
  while read p; do kill -9 "$p" 2>/dev/null; done < /tmp/pids
  k=0; while [ $k -lt 200000 ]; do set -- /proc/[0-9]*; [ $# -lt 10 ] && break; k=$((k+1)); done
  echo "forked=$(sort -u /tmp/pids | wc -l)""#,
        ),
        100,
        1024,
        512,
        &[],
    )
    .await;
    let out = report(&server, &counted).await;
    let forked: u32 = field(&out, "forked").unwrap().parse().unwrap();
    assert!(
        (900..1024).contains(&forked),
        "the pids limit (1024) should stop the forks: {out}"
    );

    // 2. The classic bomb: the environment ends (timeout or exit), Sous goes on.
    let marker = unique("bomb");
    let bomb = deploy(
        &server,
        "bomb",
        &attack_zip("  b() { b | b & }; b\n  sleep 30"),
        3,
        128,
        512,
        &[("SOUS_TEST_MARKER", &marker)],
    )
    .await;
    let out = invoke(&server, &bomb, b"{}").await;
    assert!(
        out.function_error.is_some(),
        "a fork bomb cannot finish normally: {}",
        out.text()
    );
    let left = wait_processes_gone(&marker, Duration::from_secs(20));
    reap(&marker);
    assert!(left.is_empty(), "fork bomb processes survived: {left:?}");
    assert_sous_unharmed(&server).await;
    // The bounded function still works in a fresh environment.
    report(&server, &counted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_process_survives_a_timeout() {
    require_root();
    let server = Server::start();
    let marker = unique("survivor");
    let zip = attack_zip(
        r#"SOUS_TEST_MARKER="$MARKER" setsid sh -c 'sleep 60; true' "$MARKER" </dev/null >/dev/null 2>&1 &
  ( sh -c 'sleep 60; true' "$MARKER" & ) </dev/null >/dev/null 2>&1
  sleep 30"#,
    );
    let name = deploy(
        &server,
        "timeout",
        &zip,
        2,
        128,
        512,
        &[("SOUS_TEST_MARKER", &marker), ("MARKER", &marker)],
    )
    .await;
    let out = invoke(&server, &name, b"{}").await;
    assert_eq!(
        out.function_error.as_deref(),
        Some("Unhandled"),
        "{}",
        out.text()
    );
    assert!(out.text().contains("Task timed out"), "{}", out.text());
    let left = wait_processes_gone(&marker, Duration::from_secs(10));
    reap(&marker);
    assert!(left.is_empty(), "processes outlived the timeout: {left:?}");
    assert_sous_unharmed(&server).await;
}

// ---------------------------------------------------------------------------------------
// Resources

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_past_memory_size_is_killed() {
    require_root();
    let server = Server::start();
    check_memory_past_memory_size_is_killed(&server, "oom").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tmp_is_disk_sized_by_ephemeral_storage() {
    require_root();
    let server = Server::start();
    let zip = attack_zip(
        r#"rm -f /tmp/big
  echo "dd=$(dd if=/dev/zero of=/tmp/big bs=1M count="$MB" conv=fsync 2>&1 | tr '\n' ' ')"
  echo "size=$(stat -c %s /tmp/big)"
  echo "df=$(df -m /tmp | tail -n 1)"
  rm -f /tmp/big"#,
    );
    // 600 MB of disk for a 128 MB function with 1024 MB of /tmp.
    let big = deploy(&server, "tmp1024", &zip, 120, 128, 1024, &[("MB", "600")]).await;
    let out = report(&server, &big).await;
    assert_eq!(field(&out, "size"), Some("629145600"), "{out}");
    assert!(!out.contains("No space left"), "{out}");
    // 700 MB into the default 512 MB: ENOSPC, and the file stops short of the size.
    let small = deploy(&server, "tmp512", &zip, 120, 128, 512, &[("MB", "700")]).await;
    let out = report(&server, &small).await;
    assert!(out.contains("No space left on device"), "{out}");
    let size: u64 = field(&out, "size").unwrap().parse().unwrap();
    assert!(size < 512 << 20, "{out}");
    assert_sous_unharmed(&server).await;
}

// ---------------------------------------------------------------------------------------
// The code package

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_escaping_the_zip_are_refused() {
    require_root();
    let server = Server::start();
    let boot = file("bootstrap", echo_runtime(), 0o755);
    for (path, target) in [
        ("shadow", "/etc/shadow"),
        ("up", "../../../../../../etc"),
        ("lib/deep", "../../outside"),
    ] {
        let zip = zip_entries(&[
            boot.clone(),
            Entry::Symlink {
                path: path.into(),
                target: target.into(),
            },
        ]);
        let err = expect_err(
            create(&server.client, &unique("symlink"), &zip)
                .send()
                .await,
        );
        err.assert(400, "InvalidParameterValueException");
    }
    // A link inside the package is fine (as on Lambda).
    let zip = zip_entries(&[
        boot,
        file("real.txt", "inside", 0o644),
        Entry::Symlink {
            path: "link.txt".into(),
            target: "real.txt".into(),
        },
    ]);
    create_ok(&server, create(&server.client, &unique("symlink-ok"), &zip)).await;
    assert_sous_unharmed(&server).await;
}

// ---------------------------------------------------------------------------------------
// Privileges

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mount_and_unshare_are_denied() {
    require_root();
    let server = Server::start();
    check_mount_and_unshare_are_denied(&server, "mount").await;
}

// ---------------------------------------------------------------------------------------
// Network

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cannot_connect_to_sous_or_host_services() {
    require_root();
    let server = Server::start();
    // A host service on every address: nothing of it may be reachable.
    let host_service = TcpListener::bind("0.0.0.0:0").unwrap();
    host_service.set_nonblocking(true).unwrap();
    let port = host_service.local_addr().unwrap().port().to_string();
    let addrs: Vec<String> = host_addresses().iter().map(|a| a.to_string()).collect();
    let zip = attack_zip(
        r#"probe() { if curl -sS --max-time 3 -o /dev/null "http://$1/" 2>/dev/null; then echo "reached $1"; else echo "blocked $1"; fi; }
  probe "127.0.0.1:$API_PORT"
  probe "127.0.0.1:$GATEWAY_PORT"
  probe "127.0.0.1:$PORT"
  GW=$(/usr/sbin/ip route | sed -n 's/^default via \([0-9.]*\).*/\1/p')
  echo "gateway=$GW"
  probe "$GW:$PORT"
  probe "$GW:$API_PORT"
  for a in $HOST_ADDRS; do probe "$a:$PORT"; done"#,
    );
    let api = server.api_addr.port().to_string();
    let gw = server.gateway_addr.port().to_string();
    let joined = addrs.join(" ");
    let name = deploy(
        &server,
        "connect",
        &zip,
        60,
        128,
        512,
        &[
            ("API_PORT", &api),
            ("GATEWAY_PORT", &gw),
            ("PORT", &port),
            ("HOST_ADDRS", &joined),
        ],
    )
    .await;
    let out = report(&server, &name).await;
    assert!(
        !out.contains("reached"),
        "a host service was reached:\n{out}"
    );
    assert_eq!(
        out.matches("blocked").count(),
        5 + addrs.len(),
        "every attempt must be reported:\n{out}"
    );
    let gateway = field(&out, "gateway").unwrap();
    assert!(
        gateway.starts_with("198.19."),
        "outbound networking gives a default route: {out}"
    );
    match host_service.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the host service saw a connection: {other:?}"),
    }
    assert_sous_unharmed(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environments_cannot_reach_each_other() {
    require_root();
    let server = Server::start();
    // The listener: an HTTP server in its environment, checked from inside that environment.
    let listener = deploy(
        &server,
        "listener",
        &attack_zip_with_init(
            "mkdir -p /tmp/www && echo here > /tmp/www/x && (cd /tmp/www && python3 -m http.server 8080 >/dev/null 2>&1 &)",
            r#"ME=$(/usr/sbin/ip -4 -o addr show eth0 | sed 's/.* inet \([0-9.]*\).*/\1/')
  i=0; until curl -s --max-time 1 "http://$ME:8080/x" >/dev/null || [ $i -ge 100 ]; do sleep 0.1; i=$((i+1)); done
  echo "addr=$ME"
  echo "self=$(curl -sS --max-time 2 "http://$ME:8080/x" 2>&1)""#,
        ),
        30,
        128,
        512,
        &[],
    )
    .await;
    let out = report(&server, &listener).await;
    assert_eq!(field(&out, "self"), Some("here"), "{out}");
    let addr = field(&out, "addr").unwrap().to_string();
    assert!(addr.starts_with("198.19."), "{out}");
    let intruder = deploy(
        &server,
        "intruder",
        &attack_zip(
            r#"if curl -sS --max-time 3 "http://$TARGET:8080/x" 2>&1; then echo "reached"; else echo "blocked"; fi"#,
        ),
        30,
        128,
        512,
        &[("TARGET", &addr)],
    )
    .await;
    let out = report(&server, &intruder).await;
    assert!(out.contains("blocked") && !out.contains("here"), "{out}");
    // The listener is still up: it was the path that was closed.
    let again = report(&server, &listener).await;
    assert_eq!(field(&again, "self"), Some("here"), "{again}");
    assert_sous_unharmed(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_reaches_a_test_host() {
    require_root();
    let test_host = TestHost::start();
    let server = Server::start();
    check_outbound_reaches(&server, "outbound", &test_host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_network_none_has_no_route_out() {
    require_root();
    let test_host = TestHost::start();
    let server = Server::start_with(ServerOptions::with_args(&["--function-network", "none"]));
    check_no_route_out(&server, "no-network", &test_host).await;
}
