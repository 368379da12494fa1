//! Attack helpers shared by the sandbox tests as root (`sandbox.rs`) and rootless
//! (`rootless.rs`): shell-script functions that try something and report what happened, the
//! checks that Sous is unharmed, and the "test host" (a network namespace the test makes) that
//! outbound networking is tried against.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_lambda::types::EphemeralStorage;

use super::*;

/// A custom runtime whose handler runs `script` (a shell fragment; `$EVENT` is the event
/// file) and responds with everything it printed.
pub fn attack_zip(script: &str) -> Vec<u8> {
    attack_zip_with_init("", script)
}

pub fn attack_zip_with_init(init: &str, script: &str) -> Vec<u8> {
    bootstrap_zip(shell_runtime(
        &format!("{TRY}\n{init}"),
        &format!("  {{\n{script}\n  }} > \"$WORK/report\" 2>&1\n  respond \"$WORK/report\""),
    ))
}

/// `t KEY CMD...` runs CMD in the runtime's shell and prints `KEY=rcN <its output>` on one
/// line.
pub const TRY: &str = r#"t() { k=$1; shift; "$@" >"$WORK/t" 2>&1; r=$?; echo "$k=rc$r $(tr '\n' ' ' < "$WORK/t")"; }"#;

/// The value of `key` in a report made with `t`, which must show a failure.
pub fn failed<'a>(report: &'a str, key: &str) -> &'a str {
    let v = field(report, key).unwrap_or_else(|| panic!("no {key} in:\n{report}"));
    assert!(
        v.starts_with("rc") && !v.starts_with("rc0 "),
        "{key} succeeded:\n{report}"
    );
    v
}

/// Creates a function from `zip` with the given settings (seconds, MB, MB, variables).
pub async fn deploy(
    server: &Server,
    prefix: &str,
    zip: &[u8],
    timeout_s: i32,
    memory_mb: i32,
    ephemeral_mb: i32,
    vars: &[(&str, &str)],
) -> String {
    let name = unique(prefix);
    create_ok(
        server,
        create(&server.client, &name, zip)
            .timeout(timeout_s)
            .memory_size(memory_mb)
            .ephemeral_storage(
                EphemeralStorage::builder()
                    .size(ephemeral_mb)
                    .build()
                    .unwrap(),
            )
            .environment(env_vars(vars)),
    )
    .await;
    name
}

/// Invokes a function that must complete (no function error) and returns its report.
pub async fn report(server: &Server, name: &str) -> String {
    let out = invoke(server, name, b"{}").await;
    assert_eq!(
        out.function_error,
        None,
        "{name} failed: {}\nlog: {:?}\n{}",
        out.text(),
        out.log,
        server.output_tail(3000)
    );
    // Shown with the failure of the test that asserts on it.
    eprintln!("----- {name} reported:\n{}", out.text());
    out.text()
}

/// The server still answers its API and still runs a fresh function.
pub async fn assert_sous_unharmed(server: &Server) {
    let pid = server.pid().expect("server running");
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "sous serve (pid {pid}) is gone\n{}",
        server.output_tail(3000)
    );
    server
        .client
        .list_functions()
        .send()
        .await
        .unwrap_or_else(|e| panic!("the API stopped answering: {e:?}"));
    let name = unique("healthy");
    create_ok(
        server,
        create(&server.client, &name, &bootstrap_zip(echo_runtime())).timeout(10),
    )
    .await;
    let out = invoke(server, &name, br#"{"still":"ok"}"#).await;
    assert_eq!(out.function_error, None, "{}", out.text());
    assert_eq!(out.text(), r#"{"still":"ok"}"#);
}

/// `key=value` lines of a report.
pub fn field<'a>(report: &'a str, key: &str) -> Option<&'a str> {
    report
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

/// Max Memory Used of the REPORT line of a tail log.
pub fn max_memory_used(log: &str) -> u64 {
    let re = regex::Regex::new(r"Max Memory Used: (\d+) MB").unwrap();
    re.captures(log)
        .unwrap_or_else(|| panic!("no Max Memory Used in {log}"))[1]
        .parse()
        .unwrap()
}

/// The host's own IPv4 addresses other than loopback (a function must reach none of them).
pub fn host_addresses() -> Vec<Ipv4Addr> {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .output()
        .expect("run ip");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let ifname = it.nth(1)?;
            let addr = it.skip_while(|w| *w != "inet").nth(1)?;
            let addr: Ipv4Addr = addr.split('/').next()?.parse().ok()?;
            (!addr.is_loopback() && !ifname.starts_with("sth")).then_some(addr)
        })
        .collect()
}

/// A test host: a network namespace made by the test, joined to the host by a veth pair with
/// addresses from a test-only /30 (198.18.A.B: the lower half of RFC 2544's benchmarking
/// range, which Sous's environments (198.19.0.0/16) and rootless outbound blocklist leave alone), serving `token` over HTTP on port 8000. All
/// of it is removed on drop.
pub struct TestHost {
    pub netns: String,
    pub host_if: String,
    /// The test host's address.
    pub addr: Ipv4Addr,
    /// The host side's address (what the test host sees as the client after NAT).
    pub host_side: Ipv4Addr,
    pub server: Option<Child>,
    pub dir: tempfile::TempDir,
    pub token: String,
}

pub const TEST_HOST_PORT: u16 = 8000;

pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {args:?}: {e} (iproute2: run `cargo xtask setup`)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl TestHost {
    pub fn start() -> TestHost {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed) % 64;
        let pid = std::process::id();
        let base = u32::from(Ipv4Addr::new(198, 18, 0, 0)) + ((pid % 256) << 8) + n * 4;
        let mut host = TestHost {
            netns: format!("sthost-{pid}-{n}"),
            host_if: format!("sth{}x{n}", pid % 100_000),
            addr: Ipv4Addr::from(base + 2),
            host_side: Ipv4Addr::from(base + 1),
            server: None,
            dir: tempfile::tempdir().unwrap(),
            token: unique("test-host-token"),
        };
        // Leftovers of an earlier run with the same pid.
        let _ = ip(&["netns", "del", &host.netns]);
        let _ = ip(&["link", "del", &host.host_if]);
        let host_cidr = format!("{}/30", host.host_side);
        let addr_cidr = format!("{}/30", host.addr);
        let steps: Vec<Vec<&str>> = vec![
            vec!["netns", "add", &host.netns],
            vec![
                "link",
                "add",
                &host.host_if,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &host.netns,
            ],
            vec!["addr", "add", &host_cidr, "dev", &host.host_if],
            vec!["link", "set", &host.host_if, "up"],
            vec!["-n", &host.netns, "addr", "add", &addr_cidr, "dev", "eth0"],
            vec!["-n", &host.netns, "link", "set", "eth0", "up"],
            vec!["-n", &host.netns, "link", "set", "lo", "up"],
        ];
        for s in steps {
            ip(&s).unwrap_or_else(|e| panic!("set up the test host: {e}"));
        }
        std::fs::write(host.dir.path().join("token"), &host.token).unwrap();
        let log = std::fs::File::create(host.dir.path().join("access.log")).unwrap();
        let python = if std::path::Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        let child = Command::new("ip")
            .args(["netns", "exec", &host.netns, python, "-m", "http.server"])
            .arg(TEST_HOST_PORT.to_string())
            .args(["--bind", &host.addr.to_string(), "--directory"])
            .arg(host.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start the test host's HTTP server");
        host.server = Some(child);
        // Ready when it answers (the host reaches the test host directly over the veth).
        let target = SocketAddr::from((host.addr, TEST_HOST_PORT));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the test host's server did not come up on {target}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        host
    }

    pub fn url(&self) -> String {
        format!("http://{}:{TEST_HOST_PORT}/token", self.addr)
    }

    pub fn access_log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.path().join("access.log")) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = ip(&["netns", "del", &self.netns]);
        let _ = ip(&["link", "del", &self.host_if]);
    }
}

pub const CURL_TEST_HOST: &str = r#"if body=$(curl -sS --max-time 5 "$URL" 2>&1); then echo "fetched=$body"; else echo "failed=$body"; fi"#;

// ---------------------------------------------------------------------------------------
// Attacks that must fail the same way as root and rootless: each deploys its function on
// `server` (however the test started it), named from `prefix`, and asserts the outcome.

/// The function sees only its own PID namespace (its runtime and Sous's small init, low
/// pids), not Sous, cannot signal Sous, and runs as uid 993.
pub async fn check_sees_only_its_own_processes(server: &Server, prefix: &str) {
    let zip = attack_zip(
        r#"set -- /proc/[0-9]*
  echo "count=$#"
  echo "pids=$(for p in "$@"; do printf '%s ' "${p#/proc/}"; done)"
  echo "server=$(cat /proc/$SERVER_PID/cmdline 2>&1 | tr '\0' ' ')"
  echo "uid=$(id -u)"
  t kill kill -9 "$SERVER_PID""#,
    );
    let pid = server.pid().unwrap().to_string();
    let name = deploy(server, prefix, &zip, 10, 128, 512, &[("SERVER_PID", &pid)]).await;
    let out = report(server, &name).await;
    let count: usize = field(&out, "count").unwrap().parse().unwrap();
    assert!(count < 10, "the function sees {count} processes:\n{out}");
    let pids: Vec<u32> = field(&out, "pids")
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(pids.iter().all(|&p| p < 100), "host pids visible:\n{out}");
    assert!(pids.contains(&1), "{out}");
    assert!(!out.contains("sous serve"), "the server is visible:\n{out}");
    assert_eq!(field(&out, "uid"), Some("993"), "{out}");
    assert!(failed(&out, "kill").contains("No such process"), "{out}");
    assert_sous_unharmed(server).await;
}

/// The runtime's own shell grows a 400 MB string in a 128 MB function: the runtime is
/// killed, the caller gets Runtime.ExitError "signal: killed", and Max Memory Used (from the
/// environment's cgroup) is about the limit. The shell reads the substitution 128 bytes at a
/// time, so reaching the limit is CPU work at a small cpu weight: the timeout is generous, so
/// that a busy machine still ends in the kill and not in Sandbox.Timedout.
pub async fn check_memory_past_memory_size_is_killed(server: &Server, prefix: &str) {
    let zip = attack_zip(r#"  x=$(head -c 400000000 /dev/zero | tr '\0' x); echo "len=${#x}""#);
    let name = deploy(server, prefix, &zip, 100, 128, 512, &[]).await;
    let out = invoke(server, &name, b"{}").await;
    assert_eq!(
        out.function_error.as_deref(),
        Some("Unhandled"),
        "{}\n{}",
        out.text(),
        out.log()
    );
    let body = out.json();
    assert_eq!(
        body["errorType"],
        "Runtime.ExitError",
        "{body}\n{}",
        out.log()
    );
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .ends_with("signal: killed"),
        "{body}"
    );
    let used = max_memory_used(out.log());
    assert!(
        (100..=140).contains(&used),
        "Max Memory Used should be about the 128 MB limit: {used}\n{}",
        out.log()
    );
    assert_sous_unharmed(server).await;
}

/// Outbound networking reaches `test_host`, which sees the host's side of its own link as
/// the client (NAT as root, slirp4netns rootless).
pub async fn check_outbound_reaches(server: &Server, prefix: &str, test_host: &TestHost) {
    let url = test_host.url();
    let name = deploy(
        server,
        prefix,
        &attack_zip(CURL_TEST_HOST),
        30,
        128,
        512,
        &[("URL", &url)],
    )
    .await;
    let out = report(server, &name).await;
    assert_eq!(
        field(&out, "fetched"),
        Some(test_host.token.as_str()),
        "outbound networking must reach the test host:\n{out}"
    );
    let log = test_host.access_log();
    let get = log
        .lines()
        .find(|l| l.contains("GET /token"))
        .unwrap_or_else(|| panic!("the test host logged no request: {log}"));
    assert!(
        get.starts_with(&format!("{} ", test_host.host_side)),
        "{log}"
    );
    assert_sous_unharmed(server).await;
}

/// With `--function-network none` the function has only loopback and cannot reach
/// `test_host`, which is up (the function had no route, not a dead peer).
pub async fn check_no_route_out(server: &Server, prefix: &str, test_host: &TestHost) {
    let zip = attack_zip(&format!(
        "  {CURL_TEST_HOST}\n  echo \"links=$(/usr/sbin/ip -o link show | wc -l)\""
    ));
    let name = deploy(
        server,
        prefix,
        &zip,
        30,
        128,
        512,
        &[("URL", &test_host.url())],
    )
    .await;
    let out = report(server, &name).await;
    assert!(
        field(&out, "failed").is_some() && !out.contains(&test_host.token),
        "with --function-network none the test host must be unreachable:\n{out}"
    );
    assert_eq!(field(&out, "links"), Some("1"), "only loopback: {out}");
    let target = SocketAddr::from((test_host.addr, TEST_HOST_PORT));
    assert!(TcpStream::connect_timeout(&target, Duration::from_secs(2)).is_ok());
    assert_sous_unharmed(server).await;
}

/// Reads of Sous's data dir (its credentials, every function's code, the sandbox's state), of
/// `/root`, `/home` and the host's `/etc/shadow` and `/etc/sudoers` all fail, and the admin
/// secret appears nowhere. As root and rootless alike: rootless the data dir even belongs to
/// the uid the function is mapped onto, and only the view keeps the function from it.
pub async fn check_cannot_read_host_secrets(server: &Server, prefix: &str) {
    let data = server.data_dir.display().to_string();
    let zip = attack_zip(
        r#"for p in "$DATA_DIR" "$DATA_DIR/credentials" "$DATA_DIR/sandbox" /root /home /etc/shadow /etc/sudoers /proc/1/root/etc/shadow; do
    if out=$(ls -la "$p" 2>&1 && cat "$p" 2>&1); then echo "read $p: $out"; else echo "denied $p: $out"; fi
  done
  echo "etc=$(ls /etc | tr '\n' ' ')""#,
    );
    let name = deploy(server, prefix, &zip, 10, 128, 512, &[("DATA_DIR", &data)]).await;
    let out = report(server, &name).await;
    for p in [
        data.clone(),
        format!("{data}/credentials"),
        format!("{data}/sandbox"),
        "/root".into(),
        "/home".into(),
        "/etc/shadow".into(),
        "/etc/sudoers".into(),
    ] {
        assert!(
            out.contains(&format!("denied {p}: ")),
            "{p} must not be readable:\n{out}"
        );
    }
    assert!(
        !out.lines().any(|l| l.starts_with("read ")),
        "something was readable:\n{out}"
    );
    assert!(!out.contains(SECRET_KEY), "the admin secret leaked:\n{out}");
    let shadow = std::fs::read_to_string("/etc/shadow").unwrap_or_default();
    if let Some(root_line) = shadow.lines().find(|l| l.starts_with("root:")) {
        assert!(!out.contains(root_line), "/etc/shadow leaked:\n{out}");
    }
    let etc = field(&out, "etc").unwrap();
    assert!(!etc.contains("shadow"), "/etc lists shadow:\n{out}");
    assert_sous_unharmed(server).await;
}

/// The raw system calls behind `mount`, `unshare` and `setns`, for
/// [`check_mount_and_unshare_are_denied`] (the tools alone could fail for other reasons).
const SYSCALLS: &str = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
what = sys.argv[1]
if what == "mount":
    rc = libc.mount(b"none", b"/tmp/m", b"tmpfs", 0, None)
elif what == "unshare":
    rc = libc.unshare(0x10000000 | 0x00020000)  # CLONE_NEWUSER | CLONE_NEWNS
else:
    fd = os.open("/proc/self/ns/mnt", os.O_RDONLY)
    rc = libc.setns(fd, 0)
print(what, rc, os.strerror(ctypes.get_errno()))
sys.exit(0 if rc == 0 else 1)
"#;

/// Mounts, namespaces, chroot and hostname changes all fail, as tools and as raw system
/// calls; every capability set is empty, `no_new_privs` is set and seccomp filters.
pub async fn check_mount_and_unshare_are_denied(server: &Server, prefix: &str) {
    let zip = attack_zip(
        r#"mkdir -p /tmp/m
  t mount mount -t tmpfs none /tmp/m
  t bind mount --bind /tmp /tmp/m
  t userns unshare -r id
  t netns unshare -n true
  t mntns unshare -m true
  t chroot /usr/sbin/chroot /tmp /bin/true
  t hostname hostname evil
  t sysmount python3 -c "$SYSCALLS" mount
  t sysunshare python3 -c "$SYSCALLS" unshare
  t syssetns python3 -c "$SYSCALLS" setns
  echo "caps=$(grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status | tr '\n\t' '  ')"
  echo "nnp=$(grep NoNewPrivs /proc/self/status | tr -d '\t ')"
  echo "seccomp=$(grep '^Seccomp:' /proc/self/status | tr -d '\t ')"
  echo "mounts=$(grep -c ' /tmp/m ' /proc/self/mounts)""#,
    );
    let vars = [("SYSCALLS", SYSCALLS)];
    let name = deploy(server, prefix, &zip, 10, 128, 512, &vars).await;
    let out = report(server, &name).await;
    for key in [
        "mount",
        "bind",
        "userns",
        "netns",
        "mntns",
        "chroot",
        "hostname",
        "sysmount",
        "sysunshare",
        "syssetns",
    ] {
        let v = failed(&out, key);
        assert!(
            v.contains("not permitted")
                || v.contains("must be superuser")
                || v.contains("must be root"),
            "{key}:\n{out}"
        );
    }
    let caps = field(&out, "caps").unwrap();
    assert_eq!(
        caps.matches("0000000000000000").count(),
        5,
        "capabilities left: {out}"
    );
    assert_eq!(field(&out, "nnp"), Some("NoNewPrivs:1"), "{out}");
    assert_eq!(field(&out, "seccomp"), Some("Seccomp:2"), "{out}");
    assert_eq!(field(&out, "mounts"), Some("0"), "{out}");
    assert_sous_unharmed(server).await;
}

/// A victim for the signalling attacks: a function that counts its invocations in its
/// `/tmp`, deployed and invoked once. [`assert_victim_unharmed`] checks that its environment
/// survived whatever ran meanwhile (the count goes on).
pub async fn deploy_victim(server: &Server, prefix: &str) -> String {
    let victim = deploy(
        server,
        prefix,
        &attack_zip(
            r#"n=$(cat /tmp/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /tmp/n
  echo "n=$n""#,
        ),
        10,
        128,
        512,
        &[],
    )
    .await;
    assert_eq!(field(&report(server, &victim).await, "n"), Some("1"));
    victim
}

/// The second invocation of a [`deploy_victim`] function found its environment alive.
pub async fn assert_victim_unharmed(server: &Server, victim: &str) {
    assert_eq!(
        field(&report(server, victim).await, "n"),
        Some("2"),
        "the victim's environment was hurt"
    );
}
