//! Cold-start overhead of isolation: N starts of `/bin/true` in a sandbox (prepare + spawn +
//! wait + destroy, the pool warm) against N plain spawns of `/bin/true`, in one run.
//!
//! `cargo run --release -p sous-sandbox --example bench_start [N]` (as root; or as a user in
//! a delegated cgroup tree, which measures rootless isolation). The example is its own init
//! (`__sandbox-init`), as the `sous` binary is.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sous_sandbox::{EnvSandboxSpec, Launch, NetworkMode, Sandbox, SandboxConfig, INIT_ARG};

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn report(name: &str, v: &mut [Duration]) -> (Duration, Duration) {
    let (p50, p99) = (pct(v, 0.50), pct(v, 0.99));
    println!(
        "{name:<28} p50 {:>8.3} ms   p99 {:>8.3} ms",
        ms(p50),
        ms(p99)
    );
    (p50, p99)
}

/// `/bin/true` with stdout and stderr to /dev/null.
fn null_launch() -> Launch<'static> {
    let null = || {
        std::fs::File::options()
            .write(true)
            .open("/dev/null")
            .unwrap()
    };
    Launch {
        program: Path::new("/bin/true"),
        args: &[],
        env: &[],
        cwd: Path::new("/var/task"),
        stdout: null().into(),
        stderr: null().into(),
        telemetry: None,
        runtime_api: None,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some(INIT_ARG) {
        sous_sandbox::init_main();
    }
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let state = std::env::temp_dir().join(format!("sous-bench-{}", std::process::id()));
    let mut cfg = SandboxConfig::new(&state);
    cfg.network = NetworkMode::None;
    cfg.pool_size = 4;
    let sandbox = Sandbox::new(cfg).expect("sandbox (run as root, or rootless with delegation)");
    println!(
        "isolation: {}",
        if sandbox.is_rootless() {
            "rootless"
        } else {
            "as root"
        }
    );
    let task = state.join("task");
    std::fs::create_dir_all(&task).unwrap();
    let spec = EnvSandboxSpec {
        id: "bench".into(),
        memory_mb: 128,
        ephemeral_mb: 512,
        task_dir: task.clone(),
        runtime_dir: None,
        opt_dir: None,
        host_paths: vec![],
        hostname: "169.254.1.1".into(),
    };
    let wait_pool = || std::thread::sleep(Duration::from_millis(150));
    wait_pool();
    wait_pool();

    let mut plain_worker = vec![];
    let (mut plain, mut boxed, mut prep, mut spawn_only, mut teardown) =
        (vec![], vec![], vec![], vec![], vec![]);
    for i in 0..n {
        // Interleave, so both see the same machine state.
        let t = Instant::now();
        let st = Command::new("/bin/true")
            .stdout(Stdio::null())
            .status()
            .unwrap();
        plain.push(t.elapsed());
        assert!(st.success());

        // What the worker does without isolation: own process group, parent-death signal.
        let t = Instant::now();
        let mut cmd = Command::new("/bin/true");
        cmd.stdout(Stdio::null());
        sous_sandbox::process::detach_with_parent_death(&mut cmd);
        assert!(cmd.status().unwrap().success());
        plain_worker.push(t.elapsed());

        // Let the pool refill (it makes inits and /tmp images in the background) so it does not compete with
        // the measured starts on small machines: cold starts draw from a full pool.
        let _ = i;
        let t0 = Instant::now();
        while sandbox.pool_status() != (4, 4) && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(10));
        let t = Instant::now();
        let mut p = sandbox.prepare(&spec).unwrap();
        let t1 = Instant::now();
        let mut child = p.start(null_launch()).unwrap();
        let st = child.wait().unwrap();
        let t2 = Instant::now();
        boxed.push(t2 - t);
        prep.push(t1 - t);
        spawn_only.push(t2 - t1);
        assert!(st.success(), "{st:?}");
        p.destroy().unwrap();
        teardown.push(t2.elapsed());
    }
    println!("{n} starts of /bin/true each");
    report("plain Command spawn+wait", &mut plain);
    let (a50, a99) = report("unsandboxed (as the worker)", &mut plain_worker);
    let (b50, b99) = report("sandboxed prepare+spawn+wait", &mut boxed);
    report("  of which prepare", &mut prep);
    report("  of which spawn+wait", &mut spawn_only);
    report("destroy (off the start path)", &mut teardown);
    println!(
        "overhead                     p50 {:>8.3} ms   p99 {:>8.3} ms",
        ms(b50) - ms(a50),
        ms(b99) - ms(a99)
    );
    if std::env::var_os("SOUS_SANDBOX_TIMING").is_some() {
        wait_pool();
        let mut p = sandbox.prepare(&spec).unwrap();
        let wall = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_micros()
                % 1_000_000_000
        };
        let t = Instant::now();
        eprintln!("claim at wall {} µs", wall());
        let st = p.start(null_launch()).unwrap().wait().unwrap();
        eprintln!("waited at wall {} µs", wall());
        println!("traced start: {:?} {st:?}", t.elapsed());
    }
    drop(sandbox);
    let _ = std::fs::remove_dir_all(&state);
}
