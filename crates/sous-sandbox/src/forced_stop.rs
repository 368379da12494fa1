//! Forced stops: what a `sous serve` killed at any moment (SIGKILL, the OOM killer, a crash,
//! a service manager's final kill, in the middle of its shutdown or not) leaves on the host.
//!
//! Every resource an environment is made of goes away without Sous's help, or through a
//! watcher process, so that nothing is left outside the data dir even when no new start
//! follows (a next start also cleans up, [`Leftovers::clean`], in case the watcher was killed
//! too):
//!
//! | resource                                  | goes away by                                   |
//! |-------------------------------------------|------------------------------------------------|
//! | `/tmp` image mounts, the bind of `<state>/tmp` | made only in Sous's private mount namespace ([`private_mount_namespace`]) and the environments' copies of it: they vanish with the last of those processes |
//! | loop devices of the images                | `LO_FLAGS_AUTOCLEAR`: detached with their mount |
//! | environment processes                     | inits: `PR_SET_PDEATHSIG` (SIGKILL) tied to the pool thread; everything else dies with its PID namespace's PID 1 |
//! | network namespaces                        | held only by descriptors and the environments' processes |
//! | the nftables table `ip sous-<tag>`        | owned by Sous's netlink socket (`NFT_TABLE_F_OWNER`) |
//! | `slirp4netns` (rootless)                  | `PR_SET_PDEATHSIG` |
//! | veth pairs                                | die with their namespace, asynchronously; the watcher deletes them at once |
//! | cgroup directories (v1 and v2)            | nothing but an `rmdir`: the watcher            |
//!
//! The watcher is `sous __sandbox-init watch`, started by [`crate::Sandbox::new`] before it makes
//! anything: a process of its own session, in the host's mount namespace, that ignores
//! SIGINT, SIGTERM and SIGHUP and reads a pipe only Sous holds the other end of. A clean stop
//! writes [`DONE`] on it, and the watcher exits. End of file without it means Sous died: the
//! watcher then removes exactly what Sous's [`Leftovers`] describe (the cgroups named with
//! this data dir's tag, the veths carrying its alias, its `/tmp` images) and exits. It holds
//! the data dir's lock ([`LOCK_FILE`]) until then, so a next start waits for it instead of
//! racing it. The iptables fallback's chains (`SOUS-*`) are shared by every Sous on the host
//! and stay after any stop, as after a clean one.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::{cgroups, network, storage, syscalls};

/// The watcher re-exec's second argument, after [`crate::INIT_ARG`] (so that every program
/// that runs the sandbox init runs the watcher too).
pub const WATCH_ARG: &str = "watch";
/// What a clean stop writes to the watcher.
pub const DONE: &[u8] = b"done\n";
/// The data dir's lock (in the sandbox state dir): held by Sous and its watcher.
pub const LOCK_FILE: &str = "watcher.lock";
/// How long a start waits for the lock (a watcher removing what a killed run left).
const LOCK_WAIT: Duration = Duration::from_secs(20);
/// Test hook: `sous serve` pauses (forever) at the named stop phase ([`stop_phase`]), so a
/// test can kill it there.
pub const PAUSE_ENV: &str = "SOUS_TEST_PAUSE_STOP_AT";

/// The host's mount namespace, once Sous has left it.
static HOST_MOUNTS: OnceLock<OwnedFd> = OnceLock::new();

/// As root, move `sous serve` into a mount namespace of its own whose mounts are slaves of
/// the host's (host mounts still appear in it; its own never appear on the host). The `/tmp`
/// images Sous mounts are then gone, with their loop devices, as soon as Sous and its
/// environments are, however they end. Must run before any thread is started (unshare
/// moves the calling thread only). Returns whether Sous is now in its own namespace
/// (without root: `false`, a rootless Sous mounts nothing on the host).
pub fn private_mount_namespace() -> io::Result<bool> {
    if syscalls::geteuid() != 0 {
        return Ok(false);
    }
    if HOST_MOUNTS.get().is_some() {
        return Ok(true);
    }
    if syscalls::thread_count() != 1 {
        return Err(io::Error::other(
            "the process already runs threads: a mount namespace would move only one",
        ));
    }
    let host = syscalls::unshare_mounts_as_slave()?;
    let _ = HOST_MOUNTS.set(host);
    Ok(true)
}

/// Whether [`private_mount_namespace`] moved this process.
pub fn in_private_mount_namespace() -> bool {
    HOST_MOUNTS.get().is_some()
}

static STOPPING: AtomicBool = AtomicBool::new(false);

/// Marks a phase of `sous serve`'s stop (the first call marks the stop's start). With
/// [`PAUSE_ENV`] naming this phase, the calling thread stops here for good: a test kills Sous
/// in exactly this phase.
pub fn stop_phase(phase: &str) {
    STOPPING.store(true, Ordering::SeqCst);
    pause_if_asked(phase);
}

/// [`stop_phase`] for code that also runs outside a stop (environment teardown, a sandbox
/// dropped at start-up): only once the stop has begun.
pub(crate) fn stop_phase_if_stopping(phase: &str) {
    if STOPPING.load(Ordering::SeqCst) {
        pause_if_asked(phase);
    }
}

fn pause_if_asked(phase: &str) {
    if std::env::var(PAUSE_ENV).is_ok_and(|p| p == phase) {
        eprintln!("sous: paused at stop phase {phase} ({PAUSE_ENV})");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

/// What one Sous (one data dir: its `tag`) may have made outside its data dir that the kernel
/// does not remove by itself, plus its `/tmp` images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leftovers {
    /// The data dir's tag: environment cgroups are named `<tag>-<n>-env`.
    pub tag: String,
    pub cgroups: Option<cgroups::HierarchySpec>,
    /// `<state>/tmp`: images and their mount points as root, directories rootless.
    pub tmp_dir: PathBuf,
    pub rootless: bool,
    /// The `ifalias` of this data dir's host-side veths.
    pub veth_alias: String,
}

/// What [`Leftovers::clean`] did.
#[derive(Debug, Default)]
pub struct Cleaned {
    /// One line per thing removed.
    pub removed: Vec<String>,
    /// Rootless `/tmp` directories removed.
    pub tmp_dirs: usize,
    /// One line per failure.
    pub failed: Vec<String>,
}

impl Leftovers {
    /// Remove them: kill the members of and remove every cgroup named with the tag, delete
    /// the veths with the alias, detach and delete the `/tmp` images (rootless: remove the
    /// directories). For a start (before anything is made) and for the watcher (after Sous
    /// died); never while that Sous runs.
    pub fn clean(&self) -> Cleaned {
        let mut out = Cleaned::default();
        if let Some(spec) = &self.cgroups {
            let h = spec.hierarchy();
            let prefix = format!("{}-", self.tag);
            for name in h.existing().into_iter().filter(|n| n.starts_with(&prefix)) {
                match h.open_existing(&name).remove() {
                    Ok(()) => out.removed.push(format!("cgroup {name}")),
                    Err(e) => out
                        .failed
                        .push(format!("remove leftover cgroup {name}: {e}")),
                }
            }
        }
        for link in network::cleanup_links(&self.veth_alias) {
            out.removed.push(format!("veth {link}"));
        }
        if self.rootless {
            let (removed, failed) = storage::cleanup_dirs(&self.tmp_dir);
            out.tmp_dirs = removed;
            for f in failed {
                out.failed
                    .push(format!("could not remove a leftover /tmp directory: {f}"));
            }
        } else {
            let n = storage::cleanup_dir(&self.tmp_dir);
            if n > 0 {
                out.removed.push(format!("{n} /tmp images"));
            }
            // The shared bind of <state>/tmp, where it was made in the host's namespace.
            if syscalls::umount_detach(&self.tmp_dir).is_ok() {
                out.removed
                    .push(format!("mount {}", self.tmp_dir.display()));
            }
        }
        out
    }
}

/// The running watcher (or, when it could not start, the lock alone).
#[derive(Debug)]
pub(crate) struct Watcher {
    /// The data dir's lock; the watcher shares it (the same open file).
    _lock: OwnedFd,
    child: Option<(Child, ChildStdin)>,
}

impl Watcher {
    /// Take the data dir's lock (waiting for the watcher of a killed run to finish), then
    /// start the watcher of `leftovers` from `exe` (the `sous` binary). `Err`: the lock could
    /// not be had. A watcher that cannot start is a warning (`Ok` with the reason).
    pub(crate) fn start(
        state_dir: &Path,
        exe: &Path,
        leftovers: &Leftovers,
    ) -> Result<(Watcher, Option<String>), String> {
        let path = state_dir.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| format!("open {}: {e}", path.display()))?;
        let lock = OwnedFd::from(file);
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            match syscalls::try_lock_exclusive(lock.as_raw_fd()) {
                Ok(true) => break,
                Ok(false) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(false) => {
                    return Err(format!(
                        "{} is locked: another `sous serve` uses this data dir, or the watcher \
                         of one that was killed is still removing what it left",
                        path.display()
                    ))
                }
                Err(e) => return Err(format!("lock {}: {e}", path.display())),
            }
        }
        let json = serde_json::to_string(leftovers).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(exe);
        cmd.arg(crate::INIT_ARG)
            .arg(WATCH_ARG)
            .arg(json)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::null());
        let mut keep = vec![lock.as_raw_fd()];
        if let Some(host) = HOST_MOUNTS.get() {
            cmd.arg(host.as_raw_fd().to_string());
            keep.push(host.as_raw_fd());
        }
        // SAFETY: runs in the forked child before exec; it only calls fcntl
        // (async-signal-safe) on descriptors this process holds open until spawn returns,
        // and allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                for fd in &keep {
                    syscalls::clear_cloexec(*fd)?;
                }
                Ok(())
            });
        }
        match cmd.spawn() {
            Ok(mut child) => {
                let stdin = child.stdin.take().expect("piped stdin");
                Ok((
                    Watcher {
                        _lock: lock,
                        child: Some((child, stdin)),
                    },
                    None,
                ))
            }
            Err(e) => Ok((
                Watcher {
                    _lock: lock,
                    child: None,
                },
                Some(format!(
                    "the forced-stop watcher could not start ({} {} {WATCH_ARG}: {e}): if Sous \
                     is killed, its cgroups stay until the next start",
                    exe.display(),
                    crate::INIT_ARG
                )),
            )),
        }
    }

    /// A clean stop: everything is removed; tell the watcher and wait for it to exit.
    pub(crate) fn finish(self) {
        drop(self);
    }
}

impl Drop for Watcher {
    /// Dropped (a clean stop, or [`crate::Sandbox::new`] failing, which undoes what it made):
    /// the watcher has nothing to do. Only a death of the process skips this.
    fn drop(&mut self) {
        if let Some((mut child, mut stdin)) = self.child.take() {
            let _ = stdin.write_all(DONE);
            drop(stdin);
            let _ = child.wait();
        }
    }
}

/// The watcher: `sous __sandbox-init watch <leftovers-json> [<host-mount-ns-fd>]`. Never
/// returns.
pub fn watch_main() -> ! {
    let args: Vec<String> = std::env::args().collect();
    syscalls::detach_from_signals();
    // Out of Sous's mount namespace: holding it would keep its mounts alive.
    if let Some(fd) = args.get(4).and_then(|a| a.parse().ok()) {
        if let Err(e) = syscalls::enter_mount_namespace(fd) {
            eprintln!("sous watcher: enter the host's mount namespace: {e}");
        }
    }
    let _ = std::env::set_current_dir("/");
    let leftovers: Leftovers = match args.get(3).map(|a| serde_json::from_str(a)) {
        Some(Ok(l)) => l,
        _ => {
            eprintln!(
                "sous watcher: usage: sous {} {WATCH_ARG} <leftovers-json> [<mount-ns-fd>]",
                crate::INIT_ARG
            );
            std::process::exit(2);
        }
    };
    // Until Sous closes its end: at a clean stop after DONE, or when it dies.
    let mut said = Vec::new();
    let _ = io::stdin().lock().read_to_end(&mut said);
    if said.ends_with(DONE) {
        std::process::exit(0);
    }
    let cleaned = leftovers.clean();
    let mut what = cleaned.removed;
    if cleaned.tmp_dirs > 0 {
        what.push(format!("{} /tmp directories", cleaned.tmp_dirs));
    }
    eprintln!(
        "sous watcher: the server ended without a clean stop; removed what it left: {}",
        if what.is_empty() {
            "nothing was left".to_string()
        } else {
            what.join(", ")
        }
    );
    for f in &cleaned.failed {
        eprintln!("sous watcher: {f}");
    }
    std::process::exit(if cleaned.failed.is_empty() { 0 } else { 1 });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_travel_as_json() {
        let l = Leftovers {
            tag: "0123abcd".into(),
            cgroups: Some(cgroups::HierarchySpec::V1 {
                bases: vec![("memory".into(), "/sys/fs/cgroup/memory".into())],
            }),
            tmp_dir: "/var/lib/sous/sandbox/tmp".into(),
            rootless: false,
            veth_alias: "sous-0123abcd".into(),
        };
        let back: Leftovers = serde_json::from_str(&serde_json::to_string(&l).unwrap()).unwrap();
        assert_eq!(back, l);
    }

    #[test]
    fn cleaning_removes_only_the_tags_cgroups_and_images() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        let h = cgroups::detect(root.path()).unwrap();
        let limits = cgroups::limits_for(128, 1, false);
        h.create("aaaa0000-1-env", &limits).unwrap();
        h.create("bbbb0000-1-env", &limits).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("aaaa0000-3.img"), b"x").unwrap();
        std::fs::create_dir(tmp.path().join("aaaa0000-3")).unwrap();
        let l = Leftovers {
            tag: "aaaa0000".into(),
            cgroups: Some(h.spec()),
            tmp_dir: tmp.path().to_path_buf(),
            rootless: false,
            veth_alias: "sous-aaaa0000".into(),
        };
        let cleaned = l.clean();
        assert!(cleaned.failed.is_empty(), "{:?}", cleaned.failed);
        assert_eq!(h.existing(), ["bbbb0000-1-env"]);
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
        assert!(cleaned
            .removed
            .contains(&"cgroup aaaa0000-1-env".to_string()));
    }
}
