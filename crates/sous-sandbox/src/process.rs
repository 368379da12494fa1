//! Process lifecycle helpers for execution environments.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::syscalls::{Kernel, LinuxKernel, SysError};

/// Arrange for `cmd`'s child to start in a new process group (its pid is the group id) and to
/// receive SIGKILL when the thread that spawned it exits, so that no environment outlives
/// `sous serve` even when Sous itself is killed with SIGKILL.
pub fn detach_with_parent_death(cmd: &mut Command) {
    cmd.process_group(0);
    // SAFETY: the closure runs in the forked child before exec: one prctl (async-signal-safe)
    // through `LinuxKernel`, its error built from the errno alone (see `child_error`): no
    // allocation, no lock.
    unsafe {
        cmd.pre_exec(|| {
            LinuxKernel
                .set_parent_death_signal(libc::SIGKILL)
                .map_err(child_error)
        });
    }
}

/// A failure between fork and exec as the `io::Error` that `spawn` reports, made from the
/// errno without allocating (the child of a multi-threaded parent must not: another thread
/// may have held the allocator's lock at the fork).
fn child_error(e: SysError) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(libc::EINVAL))
}

/// The two pipes of a managed runtime's Runtime API, every end close-on-exec and blocking.
pub struct RuntimeApiPipes {
    /// Sous reads the runtime's requests here.
    pub requests: std::os::fd::OwnedFd,
    /// Sous writes its answers here.
    pub answers: std::os::fd::OwnedFd,
    /// The runtime's ends, in [`RUNTIME_API_FDS`](crate::RUNTIME_API_FDS) order: the answers
    /// to read, the requests to write.
    pub runtime: [std::os::fd::OwnedFd; 2],
}

impl RuntimeApiPipes {
    pub fn new() -> io::Result<RuntimeApiPipes> {
        let pipe = || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC);
        let (answers_read, answers) = pipe()?;
        let (requests, requests_write) = pipe()?;
        Ok(RuntimeApiPipes {
            requests,
            answers,
            runtime: [answers_read, requests_write],
        })
    }

    /// The variable that names the runtime's descriptor numbers to its bootstrap:
    /// `_SOUS_RUNTIME_API_PIPES=4,5`.
    pub fn env_var() -> (&'static str, String) {
        let [answers, requests] = crate::RUNTIME_API_FDS;
        ("_SOUS_RUNTIME_API_PIPES", format!("{answers},{requests}"))
    }
}

/// Give `cmd`'s child each descriptor of `fds` (`(open here, number in the child)`), without
/// close-on-exec. The descriptors must stay open until the child is spawned.
pub fn pass_fds(cmd: &mut Command, fds: Vec<(std::os::fd::RawFd, std::os::fd::RawFd)>) {
    if fds.is_empty() {
        return;
    }
    // SAFETY: the closure runs in the forked child before exec; `place_fds` only calls fcntl
    // and dup2 (async-signal-safe) on a fixed-size array, its errors carry only an errno and
    // become an `io::Error` without allocating (`child_error`), and `fds` was allocated before
    // the fork: no allocation, no lock.
    unsafe {
        cmd.pre_exec(move || crate::init::place_fds(&LinuxKernel, &fds).map_err(child_error));
    }
}

/// Kill every process of the process group `pgid` with SIGKILL. A group that no longer exists
/// is not an error.
pub fn kill_group(pgid: i32) -> io::Result<()> {
    match killpg(Pid::from_raw(pgid), Signal::SIGKILL) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(io::Error::from(e)),
    }
}

/// The start time of process `pid` in clock ticks since boot (field 22 of `/proc/PID/stat`),
/// used to tell a process Sous started from a later process that reused its pid.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces; fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Peak resident memory of process `pid` in KiB (`VmHWM` of `/proc/PID/status`).
pub fn peak_rss_kib(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The resident set of one process, read again and again through one open
/// `/proc/<pid>/statm`: the cheapest of the kernel's memory reports (`status`, which has the
/// peak, costs several times more to produce), for a read on every invocation. The highest
/// value read so far is kept.
#[derive(Debug)]
pub struct Rss {
    statm: std::fs::File,
    page_kib: u64,
    highest_kib: std::sync::atomic::AtomicU64,
}

impl Rss {
    pub fn open(pid: i32) -> Option<Rss> {
        let statm = std::fs::File::open(format!("/proc/{pid}/statm")).ok()?;
        let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE);
        let page_kib = match page {
            Ok(Some(bytes)) if bytes > 0 => bytes as u64 / 1024,
            _ => 4,
        };
        Some(Rss {
            statm,
            page_kib,
            highest_kib: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The highest resident set seen, now included, in KiB.
    pub fn highest_kib(&self) -> u64 {
        use std::os::unix::fs::FileExt;
        use std::sync::atomic::Ordering;
        let mut buf = [0u8; 128];
        let now = self
            .statm
            .read_at(&mut buf, 0)
            .ok()
            .and_then(|n| std::str::from_utf8(&buf[..n]).ok())
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or(0, |pages| pages * self.page_kib);
        self.highest_kib.fetch_max(now, Ordering::Relaxed).max(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_start_time_and_memory() {
        let me = std::process::id() as i32;
        assert!(start_time(me).is_some());
        assert!(peak_rss_kib(me).unwrap() > 0);
        let rss = Rss::open(me).unwrap();
        let first = rss.highest_kib();
        assert!(first > 0);
        // Read again through the same descriptor: fresh. (Tests running beside this one may
        // free memory meanwhile, so half the growth is the bound.)
        let grown = vec![1u8; 64 << 20];
        let second = rss.highest_kib();
        assert!(second >= first + 32 * 1024, "{first} then {second} KiB");
        drop(grown);
        assert_eq!(rss.highest_kib(), second, "the highest is kept");
    }

    #[test]
    fn killing_a_missing_group_is_fine() {
        // Pid numbers near the maximum are practically never in use.
        kill_group(4_194_000).unwrap();
    }
}
