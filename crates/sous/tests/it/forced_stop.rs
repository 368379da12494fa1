//! Leftovers after a forced stop (issue 14, point 7): `sous serve` killed with SIGKILL while
//! it runs warm environments (outbound networking, a `/tmp` image each), or in each phase of
//! its stop (paused there through the test hook `SOUS_TEST_PAUSE_STOP_AT`), leaves nothing
//! outside its data dir even before any next start: no mount in the host's mount namespace, no
//! loop device backed by one of its images, no process of its environments, no cgroup it made
//! (v1 or v2), no nftables table `ip sous-<tag>`, no veth of it. A next start on the same data
//! dir then finds nothing stale inside the data dir either.
//!
//! Each test has its own data dir, so its own tag: tests running in parallel do not see each
//! other's resources. These tests need root and fail loudly without it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use sous_sandbox::network::nft;

fn require_root() {
    assert_eq!(
        sous_sandbox::syscalls::geteuid(),
        0,
        "the forced-stop tests must run as root: `sous serve` isolates functions with \
         namespaces, cgroups, mounts, loop devices, veth pairs and nftables, which need root; \
         run `cargo test -p sous --test it forced_stop::` as root"
    );
}

/// The phases of a stop the server can be paused in (see sous_sandbox::forced_stop).
const PHASES: [&str; 6] = [
    "signal",
    "environment-killed",
    "sandbox",
    "pool-stopped",
    "tmps-released",
    "inits-discarded",
];

/// One server's identity, as seen from outside.
struct Footprint {
    data_dir: PathBuf,
    /// The data dir's tag: its cgroups are `<tag>-<n>-env`, its table `sous-<tag>`.
    tag: String,
    /// In the command line or environment of each environment's processes.
    marker: String,
    /// Whether the server made its firewall as an nftables table.
    nft: bool,
}

/// A function whose environments carry `marker`, write to their `/tmp` and take a second per
/// event, and three of its environments warm (three events at once).
async fn warm_environments(server: &Server, marker: &str) -> Footprint {
    let name = unique("forced");
    let runtime = shell_runtime(
        &format!(
            "SOUS_TEST_MARKER={marker} sh -c 'sleep 600; true' {marker} </dev/null >/dev/null 2>&1 &"
        ),
        r#"  echo written > /tmp/written; sleep 1; respond "$EVENT""#,
    );
    create_ok(
        server,
        create(&server.client, &name, &bootstrap_zip(runtime))
            .environment(env_vars(&[("SOUS_TEST_MARKER", marker)])),
    )
    .await;
    let (a, b, c) = tokio::join!(
        invoke(server, &name, br#"{"n":1}"#),
        invoke(server, &name, br#"{"n":2}"#),
        invoke(server, &name, br#"{"n":3}"#),
    );
    for out in [a, b, c] {
        assert_eq!(out.function_error, None, "{}", out.text());
    }
    let marked = processes_with(marker);
    let tag = marked
        .iter()
        .find_map(|(pid, _)| tag_of(*pid))
        .unwrap_or_else(|| panic!("no environment cgroup of the marked processes {marked:?}"));
    let out = server.output();
    let fp = Footprint {
        data_dir: server.data_dir.clone(),
        nft: out.contains(&format!("nftables table ip sous-{tag}")),
        tag,
        marker: marker.to_string(),
    };
    // What the checks look for exists while the server runs, so "gone" means something.
    assert!(
        marked
            .iter()
            .filter(|(_, c)| c.contains("sleep 600"))
            .count()
            >= 3,
        "three warm environments should run: {marked:?}"
    );
    assert!(
        !cgroups_of(&fp.tag).is_empty(),
        "no cgroup {}-* found",
        fp.tag
    );
    assert!(
        !loops_of(&fp.data_dir).is_empty(),
        "no loop device backed by a /tmp image of {}",
        fp.data_dir.display()
    );
    assert!(
        !veths_of(&fp.tag).is_empty(),
        "no veth with alias sous-{}",
        fp.tag
    );
    if fp.nft {
        assert!(nft::table_exists(&format!("sous-{}", fp.tag)).unwrap());
    }
    fp
}

/// The environment cgroup's tag of process `pid` (`.../sous/<tag>-<n>-env`).
fn tag_of(pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines().find_map(|l| {
        let (_, rest) = l.split_once("/sous/")?;
        let name = rest.split('/').next()?;
        name.ends_with("-env")
            .then(|| name.split('-').next().map(str::to_string))?
    })
}

/// Cgroup directories named `<tag>-*` under Sous's parent, in the v2 tree and every v1
/// controller hierarchy.
fn cgroups_of(tag: &str) -> Vec<String> {
    let mut parents = vec![PathBuf::from("/sys/fs/cgroup/sous")];
    for e in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        parents.push(e.path().join("sous"));
    }
    let prefix = format!("{tag}-");
    let mut found = Vec::new();
    for p in parents {
        for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) && e.path().is_dir() {
                found.push(e.path().display().to_string());
            }
        }
    }
    found
}

/// Loop devices whose backing file is in `data_dir`.
fn loops_of(data_dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/sys/block")
        .into_iter()
        .flatten()
        .flatten()
    {
        let backing =
            std::fs::read_to_string(e.path().join("loop/backing_file")).unwrap_or_default();
        if backing.starts_with(&*data_dir.to_string_lossy()) {
            found.push(format!(
                "{} -> {}",
                e.file_name().to_string_lossy(),
                backing.trim()
            ));
        }
    }
    found
}

/// Host-side veths with this tag's alias.
fn veths_of(tag: &str) -> Vec<String> {
    let alias = format!("sous-{tag}");
    std::fs::read_dir("/sys/class/net")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("ifalias")).is_ok_and(|a| a.trim() == alias)
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Mounts of this (the host's) mount namespace at or below `data_dir`.
fn mounts_under(data_dir: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = data_dir.to_string_lossy();
    info.lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|mp| mp.starts_with(&*dir)))
        .map(str::to_string)
        .collect()
}

/// Processes in one of the tag's cgroups.
fn processes_in_cgroups_of(tag: &str) -> Vec<String> {
    let needle = format!("/sous/{tag}-");
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let cg = std::fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
        if cg.contains(&needle) {
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            if !cmd.is_empty() {
                found.push(format!(
                    "{} {}",
                    e.file_name().to_string_lossy(),
                    String::from_utf8_lossy(&cmd).replace('\0', " ")
                ));
            }
        }
    }
    found
}

/// Everything of `fp` left outside its data dir.
fn left_outside(fp: &Footprint) -> Vec<String> {
    let mut left = Vec::new();
    left.extend(
        mounts_under(&fp.data_dir)
            .into_iter()
            .map(|m| format!("mount: {m}")),
    );
    left.extend(
        loops_of(&fp.data_dir)
            .into_iter()
            .map(|l| format!("loop device: {l}")),
    );
    left.extend(
        processes_with(&fp.marker)
            .into_iter()
            .map(|(pid, c)| format!("environment process: {pid} {c}")),
    );
    left.extend(
        processes_in_cgroups_of(&fp.tag)
            .into_iter()
            .map(|p| format!("process in a cgroup of the tag: {p}")),
    );
    left.extend(
        cgroups_of(&fp.tag)
            .into_iter()
            .map(|c| format!("cgroup: {c}")),
    );
    left.extend(veths_of(&fp.tag).into_iter().map(|v| format!("veth: {v}")));
    if fp.nft && nft::table_exists(&format!("sous-{}", fp.tag)).unwrap() {
        left.push(format!("nftables table ip sous-{}", fp.tag));
    }
    left
}

/// After the server died: wait (bounded) until no process names the data dir (its watcher
/// has finished), then until nothing of it is left outside the data dir (the kernel releases
/// namespaces, mounts and loop devices asynchronously); what is left otherwise.
fn left_after_death(server: &Server, fp: &Footprint, when: &str) -> Result<(), String> {
    let watchers = wait_processes_gone(&fp.data_dir.to_string_lossy(), Duration::from_secs(15));
    if !watchers.is_empty() {
        return Err(format!(
            "{when}: processes naming the data dir still run 15 s after the kill: {watchers:?}"
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut left = left_outside(fp);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        left = left_outside(fp);
    }
    reap(&fp.marker);
    match left.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "{when}: left outside the data dir:\n  {}\n{}",
            left.join("\n  "),
            server.output_tail(2000)
        )),
    }
}

fn assert_nothing_left_outside(server: &Server, fp: &Footprint, when: &str) {
    if let Err(e) = left_after_death(server, fp, when) {
        panic!("{e}");
    }
}

/// After a next start finished: nothing stale in the data dir. Every `/tmp` image is one the
/// new run made (attached to a loop device), every mount point beside them has its image.
fn assert_nothing_stale_inside(server: &Server, fp: &Footprint) {
    let tmp = fp.data_dir.join("sandbox/tmp");
    let attached = loops_of(&fp.data_dir).join("\n");
    let mut stale = Vec::new();
    for e in std::fs::read_dir(&tmp).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "img") {
            if !attached.contains(&*p.to_string_lossy()) {
                stale.push(format!("image not attached: {}", p.display()));
            }
        } else if !p.with_extension("img").exists() {
            stale.push(format!("mount point without image: {}", p.display()));
        }
    }
    assert!(
        stale.is_empty(),
        "stale after the next start:\n  {}\n{}",
        stale.join("\n  "),
        server.output_tail(3000)
    );
}

/// Restart on the same data dir (without the pause hook), check it, then stop it cleanly and
/// check that a clean stop leaves nothing either.
async fn restart_and_check(server: &mut Server, fp: &Footprint) {
    server.options.env.clear();
    server.restart();
    assert!(
        server.output().contains("ready: isolation"),
        "no ready line after the restart:\n{}",
        server.output_tail(3000)
    );
    assert_nothing_stale_inside(server, fp);
    // An answered call: the server serves, and its SIGTERM handler is in place (a SIGTERM
    // right after the listening lines may still find the default action).
    server.status().await;
    assert!(server.stop().success(), "{}", server.output_tail(3000));
    assert_nothing_left_outside(server, fp, "after a clean stop of the next start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_warm_environments_leaves_nothing_outside_the_data_dir() {
    require_root();
    let mut server = Server::start();
    let marker = unique("forced-running");
    let fp = warm_environments(&server, &marker).await;
    server.kill_hard();
    assert_nothing_left_outside(&server, &fp, "SIGKILL while running");
    restart_and_check(&mut server, &fp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_each_phase_of_the_stop_leaves_nothing_outside_the_data_dir() {
    require_root();
    let mut failures = Vec::new();
    for phase in PHASES {
        let mut server = Server::start_with(ServerOptions {
            env: vec![(
                sous_sandbox::forced_stop::PAUSE_ENV.to_string(),
                phase.to_string(),
            )],
            ..ServerOptions::default()
        });
        let marker = unique(&format!("forced-{phase}"));
        let fp = warm_environments(&server, &marker).await;
        let pid = server.pid().unwrap() as i32;
        kill(Pid::from_raw(pid), Signal::SIGTERM).unwrap();
        let paused = format!("paused at stop phase {phase} ");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !server.output().contains(&paused) {
            assert!(
                Instant::now() < deadline,
                "the server did not reach stop phase {phase} within 30 s of SIGTERM:\n{}",
                server.output_tail(4000)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server.kill_hard();
        // Every phase is tried, whatever an earlier one left.
        if let Err(e) = left_after_death(&server, &fp, &format!("SIGKILL in stop phase {phase}")) {
            failures.push(e);
        }
        restart_and_check(&mut server, &fp).await;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
