//! Isolation tests: real sandboxes, attacked from inside by `sous-sandbox-probe`.
//!
//! These need root (namespaces, cgroups, mounts) and FAIL when not run as root: a skipped
//! isolation test would read as a passed one.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use sous_sandbox::{EnvSandboxSpec, Launch, NetworkMode, Prepared, Sandbox, SandboxConfig};

const INIT: &str = env!("CARGO_BIN_EXE_sous-sandbox-init");
const PROBE: &str = env!("CARGO_BIN_EXE_sous-sandbox-probe");

struct Env {
    sandbox: Sandbox,
    _state: tempfile::TempDir,
    task: tempfile::TempDir,
}

fn require_root() {
    assert_eq!(
        sous_sandbox::syscalls::geteuid(),
        0,
        "the sandbox isolation tests must run as root (they create namespaces, cgroups and \
         mounts); run `cargo test -p sous-sandbox` as root"
    );
}

fn env() -> Env {
    require_root();
    let state = tempfile::tempdir().unwrap();
    let mut cfg = SandboxConfig::new(state.path().join("sandbox"));
    cfg.network = NetworkMode::None;
    cfg.pool_size = 0;
    cfg.init_exe = PathBuf::from(INIT);
    let sandbox = Sandbox::new(cfg).expect("sandbox");
    let task = tempfile::tempdir().unwrap();
    std::fs::copy(PROBE, task.path().join("probe")).unwrap();
    Env {
        sandbox,
        _state: state,
        task,
    }
}

fn spec(e: &Env, memory_mb: u64, ephemeral_mb: u64) -> EnvSandboxSpec {
    EnvSandboxSpec {
        id: "test".into(),
        memory_mb,
        ephemeral_mb,
        task_dir: e.task.path().to_path_buf(),
        runtime_dir: None,
        opt_dir: None,
        host_paths: vec![],
        hostname: "169.254.10.1".into(),
    }
}

/// A program started in a sandbox, with its stdout and stderr on one pipe.
struct Running {
    child: Child,
    out: UnixStream,
}

/// The probe's output.
struct Output {
    status: ExitStatus,
    text: String,
}

fn start(p: &mut Prepared, program: &str, args: &[&str]) -> Running {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    // A socket serves as the pipe for stdout and stderr.
    let (out, w) = UnixStream::pair().unwrap();
    let w2 = w.try_clone().unwrap();
    let child = p
        .start(Launch {
            program: Path::new(program),
            args: &args,
            env: &[("PATH".into(), "/usr/bin:/bin".into())],
            cwd: Path::new("/var/task"),
            stdout: w.into(),
            stderr: w2.into(),
            telemetry: None,
            runtime_api: None,
        })
        .unwrap();
    Running { child, out }
}

fn start_probe(p: &mut Prepared, args: &[&str]) -> Running {
    start(p, "/var/task/probe", args)
}

fn wait_timeout(mut run: Running, limit: Duration) -> Output {
    let start = Instant::now();
    while run.child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = run.child.kill();
            panic!("probe did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = run.child.wait().unwrap();
    let mut text = String::new();
    run.out.read_to_string(&mut text).unwrap();
    Output { status, text }
}

/// Run a probe; (succeeded, stdout+stderr).
fn probe(p: &mut Prepared, args: &[&str]) -> (bool, String) {
    let out = wait_timeout(start_probe(p, args), Duration::from_secs(20));
    (out.status.success(), out.text)
}

#[test]
fn runs_unprivileged_without_capabilities_in_var_task() {
    let e = env();
    let mut p = e.sandbox.prepare(&spec(&e, 128, 16)).unwrap();
    let (ok, out) = probe(&mut p, &["id"]);
    assert!(ok, "{out}");
    assert!(out.contains("Uid:\t993\t993\t993\t993"), "{out}");
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(out.contains("hostname:\t169.254.10.1"), "{out}");
    assert!(out.contains("cwd:\t/var/task"), "{out}");
    // Exactly the environment given, nothing of the worker's.
    let envs: Vec<_> = out.lines().filter(|l| l.starts_with("env:")).collect();
    assert_eq!(envs, vec!["env:\tPATH=/usr/bin:/bin"], "{out}");
    p.destroy().unwrap();
}

#[test]
fn telemetry_and_runtime_api_pipes_arrive_at_their_numbers() {
    let e = env();
    let mut p = e.sandbox.prepare(&spec(&e, 128, 16)).unwrap();
    let (out, w) = UnixStream::pair().unwrap();
    let w2 = w.try_clone().unwrap();
    let pipe = || {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        (std::fs::File::from(r), std::fs::File::from(w))
    };
    let (mut telemetry, telemetry_w) = pipe();
    let (answers_r, mut answers) = pipe();
    let (mut requests, requests_w) = pipe();
    // The shell reads an answer on 4, writes the request it makes of it on 5, and a record on 3.
    let script = "read line <&4; echo \"asked: $line\" >&5; echo record >&3";
    let args = ["-c".to_string(), script.to_string()];
    let child = p
        .start(Launch {
            program: Path::new("/bin/sh"),
            args: &args,
            env: &[("PATH".into(), "/usr/bin:/bin".into())],
            cwd: Path::new("/var/task"),
            stdout: w.into(),
            stderr: w2.into(),
            telemetry: Some(telemetry_w.into()),
            runtime_api: Some([answers_r.into(), requests_w.into()]),
        })
        .unwrap();
    answers.write_all(b"next\n").unwrap();
    drop(answers);
    let out = wait_timeout(Running { child, out }, Duration::from_secs(20));
    assert!(out.status.success(), "{}", out.text);
    let mut text = String::new();
    requests.read_to_string(&mut text).unwrap();
    assert_eq!(text, "asked: next\n");
    text.clear();
    telemetry.read_to_string(&mut text).unwrap();
    assert_eq!(text, "record\n");
}

#[test]
fn the_host_is_not_visible() {
    let e = env();
    let state = e._state.path().to_str().unwrap().to_string();
    let task = e.task.path().to_str().unwrap().to_string();
    for path in [
        "/root",
        "/work",
        "/home",
        "/etc/shadow",
        "/etc/passwd-",
        "/sys",
        &state,
        &task,
    ] {
        let mut p = e.sandbox.prepare(&spec(&e, 128, 16)).unwrap();
        let (found, out) = probe(&mut p, &["exists", path]);
        assert!(!found, "{path} is visible inside: {out}");
        assert_eq!(out.trim(), "absent", "{path}: the probe did not run: {out}");
    }
    for path in [
        "/usr/bin",
        "/etc/passwd",
        "/var/task/probe",
        "/dev/null",
        "/proc/self",
    ] {
        let mut p = e.sandbox.prepare(&spec(&e, 128, 16)).unwrap();
        let (found, out) = probe(&mut p, &["exists", path]);
        assert!(found, "{path} is missing inside: {out}");
    }
}

#[test]
fn only_tmp_is_writable_and_only_up_to_its_size() {
    let e = env();
    let mut p = e.sandbox.prepare(&spec(&e, 128, 16)).unwrap();
    for path in ["/usr/x", "/var/task/x", "/etc/x", "/x", "/dev/x", "/opt/x"] {
        let mut p = e.sandbox.prepare(&spec(&e, 128, 16)).unwrap();
        let (ok, out) = probe(&mut p, &["write", path]);
        assert!(!ok, "could write {path}: {out}");
        assert!(
            out.contains("Read-only file system") || out.contains("Permission denied"),
            "{path}: {out}"
        );
    }
    // One environment runs one program: a shell runs the probe twice on the same /tmp.
    let out = wait_timeout(
        start(
            &mut p,
            "/bin/sh",
            &[
                "-c",
                "/var/task/probe fill /tmp/a 10 && echo first-fill-ok && /var/task/probe fill /tmp/b 20",
            ],
        ),
        Duration::from_secs(20),
    );
    assert!(out.text.contains("first-fill-ok"), "{}", out.text);
    assert!(
        !out.status.success(),
        "wrote past EphemeralStorage: {}",
        out.text
    );
    assert!(out.text.contains("No space left"), "{}", out.text);
    p.destroy().unwrap();
}

#[test]
fn tmp_is_storage_not_memory() {
    let e = env();
    // 64 MB of memory, 160 MB of /tmp: writing 120 MB must work and not OOM.
    let mut p = e.sandbox.prepare(&spec(&e, 64, 160)).unwrap();
    let (ok, out) = probe(&mut p, &["fill", "/tmp/big", "120"]);
    assert!(ok, "{out}");
    assert!(!p.oom_killed());
}

#[test]
fn memory_past_the_limit_is_killed_and_reported() {
    let e = env();
    let mut p = e.sandbox.prepare(&spec(&e, 48, 16)).unwrap();
    let out = wait_timeout(
        start_probe(&mut p, &["alloc", "200"]),
        Duration::from_secs(20),
    );
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGKILL),
        "{:?} {}",
        out.status,
        out.text
    );
    assert!(p.oom_killed());
    let peak = p.peak_memory().unwrap();
    assert!(peak > 40 << 20 && peak <= 48 << 20, "peak {peak}");
}

#[test]
fn kill_all_reaches_a_double_forked_daemon() {
    let e = env();
    let mut p = e.sandbox.prepare(&spec(&e, 128, 16)).unwrap();
    let Running { mut child, out } = start_probe(&mut p, &["orphan"]);
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).unwrap();
    assert!(line.starts_with("ready"), "{line}");
    // outer init, PID 1, the probe, the daemon (sh may still be exiting).
    assert!(p.pids().len() >= 4, "{:?}", p.pids());
    p.kill_all().unwrap();
    assert!(p.pids().is_empty(), "{:?}", p.pids());
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    p.destroy().unwrap();
}

#[test]
fn the_function_sees_only_its_own_processes() {
    let e = env();
    let mut p = e.sandbox.prepare(&spec(&e, 128, 16)).unwrap();
    let (ok, out) = probe(&mut p, &["pids"]);
    assert!(ok, "{out}");
    assert!(out.starts_with("[1, 2] self=2"), "{out}");
}

#[test]
fn mount_and_unshare_are_denied() {
    let e = env();
    for attack in ["unshare", "mount"] {
        let mut p = e.sandbox.prepare(&spec(&e, 128, 16)).unwrap();
        let (ok, out) = probe(&mut p, &[attack]);
        assert!(!ok, "{attack} worked: {out}");
        assert!(out.contains("Operation not permitted"), "{attack}: {out}");
    }
}

#[test]
fn host_loopback_is_unreachable_and_the_runtime_api_is_reachable() {
    let e = env();
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    let host_addr = host.local_addr().unwrap().to_string();
    let mut p = e.sandbox.prepare(&spec(&e, 128, 16)).unwrap();
    let (ok, out) = probe(&mut p, &["connect", &host_addr]);
    assert!(!ok, "reached the host's loopback: {out}");
    let mut p = e.sandbox.prepare(&spec(&e, 128, 16)).unwrap();

    let api = p.listener.try_clone().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = api.accept().unwrap();
        s.write_all(b"runtime-api").unwrap();
    });
    let (ok, out) = probe(&mut p, &["connect", "127.0.0.1:9001"]);
    assert!(ok, "{out}");
    assert!(out.contains("connected: runtime-api"), "{out}");
    server.join().unwrap();
    assert_eq!(p.runtime_api_addr().to_string(), "127.0.0.1:9001");
}

#[test]
fn a_missing_program_fails_with_127_and_a_message() {
    let e = env();
    let mut p = e.sandbox.prepare(&spec(&e, 128, 16)).unwrap();
    let out = wait_timeout(
        start(&mut p, "/var/task/nope", &[]),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(127));
    assert!(out.text.contains("/var/task/nope"), "{}", out.text);
}

#[test]
fn destroy_removes_cgroup_and_tmp_image() {
    let e = env();
    let mut p = e.sandbox.prepare(&spec(&e, 128, 16)).unwrap();
    let (ok, out) = probe(&mut p, &["write", "/tmp/secret"]);
    assert!(ok, "{out}");
    let tmp_dir: PathBuf = e._state.path().join("sandbox/tmp");
    assert_eq!(std::fs::read_dir(&tmp_dir).unwrap().count(), 2); // image + mount point
    p.destroy().unwrap();
    assert_eq!(std::fs::read_dir(&tmp_dir).unwrap().count(), 0);
    // A second environment starts with an empty /tmp.
    let mut p2 = e.sandbox.prepare(&spec(&e, 128, 16)).unwrap();
    let (found, out) = probe(&mut p2, &["exists", "/tmp/secret"]);
    assert!(!found);
    assert_eq!(out.trim(), "absent");
}

/// `/tmp` images made from one formatted template: each is an empty, world-writable ext4 of
/// its size, private (a file written in one is not in the other), and gone when released.
#[test]
fn tmp_images_from_one_template_are_empty_private_and_sized() {
    use sous_sandbox::storage;
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let templates = storage::Templates::default();
    let template = templates.get(64).unwrap();
    assert!(template.data_bytes() < 8 << 20, "{}", template.data_bytes());
    let a = storage::create(dir.path(), "a", &template).unwrap();
    let b = storage::create(dir.path(), "b", &templates.get(64).unwrap()).unwrap();
    for img in [&a, &b] {
        let entries: Vec<_> = std::fs::read_dir(&img.mountpoint).unwrap().collect();
        assert!(entries.is_empty(), "{entries:?}");
        let mode = std::fs::metadata(&img.mountpoint).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o7777,
            0o1777
        );
        let st = nix::sys::statvfs::statvfs(&img.mountpoint).unwrap();
        let size = st.blocks() * st.fragment_size();
        assert!(size > 56 << 20 && size <= 64 << 20, "{size}");
        assert_eq!(std::fs::metadata(&img.file).unwrap().len(), 64 << 20);
    }
    std::fs::write(a.mountpoint.join("secret"), b"a's").unwrap();
    assert!(!b.mountpoint.join("secret").exists());
    for img in [&a, &b] {
        storage::release(img).unwrap();
        assert!(!img.file.exists() && !img.mountpoint.exists());
    }
    // Only what the test made is left: no template file.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}
