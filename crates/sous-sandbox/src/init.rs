//! The sandbox init: what `sous __sandbox-init <plan-fd>` runs between the sandbox pool's
//! spawn and the function's runtime.
//!
//! Inits are started ahead of demand by the pool ([`crate::Sandbox`]): each one enters its
//! cgroup and network namespace, unshares the others, and its PID 1 mounts everything
//! environments share ([`crate::mounts::common_plan`]) and compiles the seccomp filters, then
//! waits on its control socket. Claiming it for a function sends one message (a JSON
//! [`LaunchPlan`] with the descriptors for stdout, stderr and, for managed runtimes, the
//! telemetry pipe): PID 1 mounts the function's code, `/tmp` and paths, pivots, and forks the
//! runtime. So a cold start pays for a few mounts, one fork and the runtime's exec, not for
//! starting the init.
//!
//! Process tree (pids as the host sees them / as the environment sees them):
//!
//! ```text
//! worker ─ init (outer, host pid P)           joins the cgroups and netns, unshares
//!            │                                mount/PID/IPC/UTS namespaces, forwards signals,
//!            │                                exits with the runtime's status (or dies by its
//!            │                                signal), so the worker's child *is* the function
//!            └─ init (PID 1 in the env)       builds the root, pivot_root, sets the hostname,
//!                 │                           reaps orphans, forwards signals, and ends the
//!                 │                           environment (the whole PID namespace) when the
//!                 │                           runtime exits
//!                 └─ runtime (PID 2)          drops every capability, becomes the sandbox
//!                                             user, no_new_privs, seccomp, exec
//! ```
//!
//! Rootless ([`InitPlan::user`]), the outer init joins its cgroups, then creates a user
//! namespace and maps the function's uid and gid onto Sous's own, and creates every other
//! namespace (the network one too) inside it; PID 1 then binds the Runtime API listener in the
//! new network namespace and sends it to Sous ([`announce`]), since Sous cannot enter a
//! namespace owned by that user namespace.
//!
//! The init's own plan (a JSON [`InitPlan`]) arrives in an inherited memfd whose number is the
//! argument after `__sandbox-init`; the descriptors it names (cgroup.procs files, the netns,
//! the control socket) are inherited too, and closed once used. A control socket closed
//! before any claim (the pool discards the init) ends it quietly.

use std::io::Read;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

use serde::{Deserialize, Serialize};

use crate::mounts::{self, Step};
use crate::syscalls::{self, Forked, Kernel, LinuxKernel, Rlimit, SysResult, WaitStatus};

/// The hidden first argument of the init re-exec.
pub const INIT_ARG: &str = "__sandbox-init";

/// Exit status of the init when the environment could not be set up.
pub const SETUP_FAILED: i32 = 125;
/// Exit status when the program could not be executed.
pub const EXEC_FAILED: i32 = 127;

/// What an init needs before it is claimed, prepared by the pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitPlan {
    /// Open `cgroup.procs` descriptors to write "0" into (join).
    pub cgroup_fds: Vec<RawFd>,
    /// The environment's network namespace.
    pub netns_fd: Option<RawFd>,
    /// The mounts every environment shares.
    pub mounts: Vec<Step>,
    /// The `SOCK_SEQPACKET` socket the claim arrives on.
    pub control_fd: RawFd,
    /// Rootless: the init first creates a user namespace with this single-id mapping, then
    /// the other namespaces inside it (the network namespace too: `netns_fd` is `None`).
    #[serde(default)]
    pub user: Option<UserMap>,
    /// Rootless: once its environment is ready, PID 1 binds the Runtime API listener on this
    /// address inside the environment's network namespace and sends it back over the control
    /// socket ([`READY`] with one descriptor); Sous could not enter that namespace itself.
    #[serde(default)]
    pub runtime_api: Option<std::net::SocketAddr>,
    /// Rootless: further loopback addresses PID 1 binds beside the Runtime API and sends with
    /// it, in this order (the service endpoint forwarders' listeners,
    /// [`crate::SandboxConfig::service_addrs`]).
    #[serde(default)]
    pub service_addrs: Vec<std::net::SocketAddr>,
    /// Rootless with outbound networking: destinations the environment's network namespace
    /// refuses. PID 1 installs them (it still holds CAP_NET_ADMIN there) when Sous says
    /// slirp4netns has configured the namespace ([`NETWORK_READY`]; refusing the gateway
    /// earlier would make slirp4netns's default route fail), and answers [`FENCED`] before
    /// Sous pools the init: no function runs without them.
    #[serde(default)]
    pub blocklist: Option<crate::network::Blocklist>,
}

/// The one-id mapping of a rootless environment's user namespace: the function's uid and gid
/// inside are Sous's own outside. An unprivileged process may write exactly this (after
/// denying `setgroups`), without `newuidmap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserMap {
    pub inside_uid: u32,
    pub inside_gid: u32,
    pub outside_uid: u32,
    pub outside_gid: u32,
}

/// The message a rootless init sends when its environment is ready, with the Runtime API
/// listener. A setup failure before the claim is sent instead as [`SETUP_ERROR`] and the text.
pub const READY: &[u8] = b"ready";
/// Sous to a rootless init with a blocklist, once slirp4netns has configured the network.
pub const NETWORK_READY: &[u8] = b"network ready";
/// A rootless init's answer to [`NETWORK_READY`] once its blocklist is installed.
pub const FENCED: &[u8] = b"fenced";
/// Prefix of the message a rootless init sends when its setup failed before the claim.
pub const SETUP_ERROR: &str = "error: ";

/// The descriptor number of the telemetry pipe in the runtime's process, when there is one
/// (`_LAMBDA_TELEMETRY_LOG_FD`).
pub const TELEMETRY_FD: RawFd = 3;

/// The descriptor numbers of the Runtime API pipes in a managed runtime's process, when it has
/// them (`_SOUS_RUNTIME_API_PIPES`): it reads Sous's answers from the first and writes its
/// requests to the second.
pub const RUNTIME_API_FDS: [RawFd; 2] = [4, 5];

/// Received descriptors are staged at or above this number before being placed at theirs.
const STAGING_FD: RawFd = 64;
/// The most descriptors [`place_fds`] places (telemetry and the two Runtime API pipes).
const MAX_PLACED: usize = 3;

/// The claim: what makes a pooled init one function's environment. Sent with stdout and
/// stderr, then the descriptors [`LaunchPlan::fds`] numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchPlan {
    /// The function's mounts, pivot_root included.
    pub mounts: Vec<Step>,
    pub hostname: String,
    pub uid: u32,
    pub gid: u32,
    /// Soft and hard RLIMIT_NOFILE (Lambda: 1024).
    pub nofile: u64,
    /// Path inside the environment.
    pub program: PathBuf,
    /// Full argv, argv\[0\] included.
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Working directory inside the environment.
    pub cwd: PathBuf,
    /// The number in the runtime's process of each descriptor that comes with the claim after
    /// stdout and stderr, in their order ([`TELEMETRY_FD`], [`RUNTIME_API_FDS`]).
    #[serde(default)]
    pub fds: Vec<RawFd>,
    /// The init runs in a user namespace it created ([`InitPlan::user`]): groups cannot be
    /// set (setgroups is denied there) and the uid is already the function's, so leaving it
    /// clears no capability: they are cleared explicitly.
    #[serde(default)]
    pub rootless: bool,
}

/// Largest claim message accepted (the environment variables are at most 4 KB on Lambda;
/// paths and arguments are short).
pub const LAUNCH_PLAN_MAX: usize = 256 * 1024;

/// Namespaces the init unshares (the network namespace is joined, not created).
pub const UNSHARE_FLAGS: i32 =
    libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;

/// Phase 1, in the outer init: join the cgroups and the netns, unshare the other namespaces
/// (the new PID namespace applies to the children). Rootless ([`InitPlan::user`]): join the
/// cgroups (as Sous's user, whose delegated tree they are in), create the user namespace and
/// write its mapping, then create every other namespace in it, the network namespace too.
pub fn enter(k: &dyn Kernel, plan: &InitPlan) -> SysResult<()> {
    for &fd in &plan.cgroup_fds {
        k.write_fd(fd, b"0")?;
        k.close(fd);
    }
    if let Some(map) = &plan.user {
        k.unshare(libc::CLONE_NEWUSER)?;
        enter_user_namespace(k, map)?;
        return k.unshare(UNSHARE_FLAGS | libc::CLONE_NEWNET);
    }
    if let Some(fd) = plan.netns_fd {
        k.setns(fd, libc::CLONE_NEWNET)?;
        k.close(fd);
    }
    k.unshare(UNSHARE_FLAGS)
}

/// Right after `unshare(CLONE_NEWUSER)`: the mapping an unprivileged process may write for
/// itself. `setgroups` must be denied before `gid_map` is written.
pub fn enter_user_namespace(k: &dyn Kernel, map: &UserMap) -> SysResult<()> {
    k.write_proc_file(Path::new("/proc/self/setgroups"), b"deny")?;
    k.write_proc_file(
        Path::new("/proc/self/uid_map"),
        format!("{} {} 1\n", map.inside_uid, map.outside_uid).as_bytes(),
    )?;
    k.write_proc_file(
        Path::new("/proc/self/gid_map"),
        format!("{} {} 1\n", map.inside_gid, map.outside_gid).as_bytes(),
    )
}

/// Phase 2, in the environment's PID 1 before the claim: die with the outer init, mount what
/// every environment shares (rootless: keeping the flags the kernel locked on host mounts).
pub fn prebuild(k: &dyn Kernel, plan: &InitPlan) -> SysResult<()> {
    k.set_parent_death_signal(libc::SIGKILL)?;
    match plan.user {
        Some(_) => mounts::apply_in_user_namespace(k, &plan.mounts),
        None => mounts::apply(k, &plan.mounts),
    }
}

/// Phase 2b, rootless only ([`InitPlan::runtime_api`]): loopback up, the Runtime API listener
/// (then one per [`InitPlan::service_addrs`]) bound inside the environment's network
/// namespace and handed to Sous with [`READY`].
pub fn announce(k: &dyn Kernel, plan: &InitPlan) -> SysResult<()> {
    let Some(addr) = plan.runtime_api else {
        return Ok(());
    };
    k.loopback_up()?;
    let mut fds = Vec::with_capacity(1 + plan.service_addrs.len());
    let mut result = Ok(());
    for a in std::iter::once(addr).chain(plan.service_addrs.iter().copied()) {
        match k.listen_tcp(a) {
            Ok(fd) => fds.push(fd),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if result.is_ok() {
        result = k.send_fds(plan.control_fd, READY, &fds);
    }
    for fd in fds {
        k.close(fd);
    }
    result
}

/// Phase 2c, rootless with outbound networking only ([`InitPlan::blocklist`]): wait for
/// [`NETWORK_READY`], install the blocklist, answer [`FENCED`]. `Ok(false)`: the pool
/// discarded the init instead.
pub fn fence(k: &dyn Kernel, plan: &InitPlan, ready: &[u8]) -> SysResult<bool> {
    let Some(b) = &plan.blocklist else {
        return Ok(true);
    };
    if ready != NETWORK_READY {
        return Ok(false);
    }
    k.block_destinations(b)?;
    k.send_fds(plan.control_fd, FENCED, &[])?;
    Ok(true)
}

/// Phase 3, in PID 1 once claimed: take the function's stdout and stderr, mount its files,
/// pivot, name the host.
pub fn build(k: &dyn Kernel, plan: &LaunchPlan, stdout: RawFd, stderr: RawFd) -> SysResult<()> {
    k.dup_to(stdout, 1)?;
    k.dup_to(stderr, 2)?;
    k.close(stdout);
    k.close(stderr);
    match plan.rootless {
        true => mounts::apply_in_user_namespace(k, &plan.mounts)?,
        false => mounts::apply(k, &plan.mounts)?,
    }
    k.sethostname(&plan.hostname)
}

/// Put each received descriptor at its number in the runtime's process. All are first copied
/// above every target (close-on-exec), so that one received at another's target number is not
/// overwritten before it is placed. Allocates nothing: it also runs between fork and exec.
pub fn place_fds(k: &dyn Kernel, placed: &[(RawFd, RawFd)]) -> SysResult<()> {
    if placed.len() > MAX_PLACED {
        return Err(syscalls::SysError::Other {
            what: "place descriptors",
            err: std::io::Error::from_raw_os_error(libc::EINVAL),
        });
    }
    let mut staged = [(-1, -1); MAX_PLACED];
    for (slot, &(fd, target)) in staged.iter_mut().zip(placed) {
        *slot = (k.dup_above(fd, STAGING_FD)?, target);
    }
    for &(fd, target) in &staged[..placed.len()] {
        k.dup_to(fd, target)?;
    }
    Ok(())
}

/// Phase 4, in the runtime's process: place the claim's extra descriptors (`(received,
/// number)`) and make their pipes the function user's (Sous created them as root, and a
/// runtime that can only reach a descriptor through `/proc/self/fd/N`, as Java's, must be
/// able to open it), shed every privilege and exec. Returns only on failure.
pub fn become_function(
    k: &dyn Kernel,
    plan: &LaunchPlan,
    placed: &[(RawFd, RawFd)],
    filters: &[seccompiler::BpfProgram],
    last_cap: u32,
) -> SysResult<()> {
    place_fds(k, placed)?;
    if !plan.rootless {
        // Rootless, Sous's user made them, and it is the function's user already.
        for &(_, fd) in placed {
            k.fchown(fd, plan.uid, plan.gid)?;
        }
    }
    k.reset_signals()?;
    for cap in 0..=last_cap {
        k.drop_bounding_cap(cap)?;
    }
    k.clear_ambient_caps()?;
    // In a user namespace made by an unprivileged process, setgroups is denied for good (the
    // condition for writing gid_map): the groups are Sous's own, unmapped ones show as nobody.
    if !plan.rootless {
        k.setgroups(&[])?;
    }
    k.setresgid(plan.gid)?;
    // Leaving uid 0 clears the permitted, effective and ambient capability sets.
    k.setresuid(plan.uid)?;
    if plan.rootless {
        // There was no uid 0 to leave: the init has been uid `plan.uid` since it wrote the
        // map, with every capability of its user namespace.
        k.clear_caps()?;
    }
    k.set_rlimit(Rlimit::NoFile, plan.nofile, plan.nofile)?;
    k.set_no_new_privs()?;
    for f in filters {
        k.install_seccomp(f)?;
    }
    k.chdir(&plan.cwd)?;
    k.execve(&plan.program, &plan.argv, &plan.env)
}

/// The child whose signals the current init forwards.
static CHILD: AtomicI32 = AtomicI32::new(0);

/// Signals passed on to the child (the runtime ends up receiving them).
const FORWARDED: &[i32] = &[
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

extern "C" fn forward(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::Relaxed);
    if pid > 0 {
        let _ = syscalls::kill(pid, sig);
    }
}

/// `SOUS_SANDBOX_TIMING=1` in the init's environment prints each phase's duration to stderr
/// (for the start-up benchmark).
fn timing() -> Option<std::time::Instant> {
    std::env::var_os("SOUS_SANDBOX_TIMING").map(|_| std::time::Instant::now())
}

fn mark(t: &Option<std::time::Instant>, what: &str) {
    if let Some(t) = t {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros()
            % 1_000_000_000;
        eprintln!(
            "sous sandbox timing: {what} at {:?} (wall {wall} µs)",
            t.elapsed()
        );
    }
}

fn fail(phase: &str, err: impl std::fmt::Display, code: i32) -> ! {
    eprintln!("sous sandbox init: {phase}: {err}");
    syscalls::exit_now(code)
}

/// Fail before the claim. A rootless init also tells Sous why, over the control socket: Sous
/// is waiting there for [`READY`].
fn fail_setup(plan: &InitPlan, phase: &str, err: impl std::fmt::Display) -> ! {
    if plan.runtime_api.is_some() {
        let text = format!("{SETUP_ERROR}{phase}: {err}");
        let _ = syscalls::send_with_fds(plan.control_fd, text.as_bytes(), &[]);
    }
    fail(phase, err, SETUP_FAILED)
}

fn read_plan(arg: Option<&String>) -> Result<InitPlan, String> {
    let fd: RawFd = arg
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("usage: {INIT_ARG} <plan-fd>"))?;
    let owned = syscalls::adopt_inherited_fd(fd).map_err(|e| format!("plan fd {fd}: {e}"))?;
    let mut text = String::new();
    std::fs::File::from(owned)
        .read_to_string(&mut text)
        .map_err(|e| format!("read plan: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("parse plan: {e}"))
}

/// Entry point of the hidden `__sandbox-init` subcommand: `argv[1]` must be
/// [`INIT_ARG`] and `argv[2]` the plan descriptor. Never returns: once claimed, it execs the
/// function's program (in a grandchild) and exits with its status; it exits non-zero with a
/// message on stderr when setup fails, and with 0 when discarded unclaimed.
pub fn init_main() -> ! {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some(INIT_ARG) {
        fail("arguments", format!("usage: {INIT_ARG} <plan-fd>"), 2);
    }
    // The forced-stop watcher comes through the same entry point: every program that runs
    // the init (the `sous` binary, the test init, benchmarks) runs the watcher too.
    if args.get(2).map(String::as_str) == Some(crate::forced_stop::WATCH_ARG) {
        crate::forced_stop::watch_main();
    }
    let t = timing();
    let plan = read_plan(args.get(2)).unwrap_or_else(|e| fail("plan", e, SETUP_FAILED));
    mark(&t, "plan read");
    let k = LinuxKernel;
    if let Err(e) = enter(&k, &plan) {
        fail_setup(&plan, "enter namespaces", e);
    }
    mark(&t, "entered");
    let (status_rd, status_wr) =
        syscalls::pipe_cloexec().unwrap_or_else(|e| fail_setup(&plan, "status pipe", e));
    match syscalls::fork() {
        Err(e) => fail_setup(&plan, "fork", e),
        Ok(Forked::Child) => {
            drop(status_rd);
            pid1(&k, &plan, status_wr, t)
        }
        Ok(Forked::Parent(pid)) => {
            drop(status_wr);
            k.close(plan.control_fd);
            CHILD.store(pid, Ordering::Relaxed);
            let _ = syscalls::set_signal_handler(FORWARDED, forward);
            let (_, own) = syscalls::waitpid(pid).unwrap_or_else(|e| fail("wait", e, 1));
            mark(&t, "environment ended");
            // The runtime's own status, when PID 1 got to report it.
            let mut buf = [0u8; 4];
            let reported = std::fs::File::from(status_rd)
                .read_exact(&mut buf)
                .ok()
                .map(|_| WaitStatus(i32::from_ne_bytes(buf)));
            propagate(reported.unwrap_or(own))
        }
    }
}

/// Exit like `status`: same exit code, or death by the same signal (no core dump).
fn propagate(status: WaitStatus) -> ! {
    if let Some(sig) = status.signal() {
        let _ = LinuxKernel.set_rlimit(Rlimit::Core, 0, 0);
        syscalls::die_by_signal(sig);
    }
    syscalls::exit_now(status.exit_code().unwrap_or(1))
}

/// PID 1 of the environment: the shared setup, then wait for the claim, then the function's.
fn pid1(
    k: &LinuxKernel,
    plan: &InitPlan,
    status_wr: std::os::fd::OwnedFd,
    t: Option<std::time::Instant>,
) -> ! {
    mark(&t, "pid 1 started");
    if let Err(e) = prebuild(k, plan) {
        fail_setup(plan, "build root", e);
    }
    let filters = crate::seccomp::filters().unwrap_or_else(|e| fail_setup(plan, "seccomp", e));
    if let Err(e) = announce(k, plan) {
        fail_setup(plan, "Runtime API listener", e);
    }
    mark(&t, "ready");
    if plan.blocklist.is_some() {
        let ready = syscalls::recv_with_fds(plan.control_fd, 64)
            .map(|(b, _)| b)
            .unwrap_or_default();
        match fence(k, plan, &ready) {
            Ok(true) => mark(&t, "fenced"),
            Ok(false) => syscalls::exit_now(0),
            Err(e) => fail_setup(plan, "outbound blocklist", e),
        }
    }
    let (bytes, fds) = syscalls::recv_with_fds(plan.control_fd, LAUNCH_PLAN_MAX)
        .unwrap_or_else(|e| fail("receive claim", e, SETUP_FAILED));
    if bytes.is_empty() && fds.is_empty() {
        // Discarded by the pool before any claim.
        syscalls::exit_now(0)
    }
    k.close(plan.control_fd);
    let t = timing_since_claim(t);
    mark(&t, "claimed");
    let launch: LaunchPlan =
        serde_json::from_slice(&bytes).unwrap_or_else(|e| fail("parse claim", e, SETUP_FAILED));
    let want = 2 + launch.fds.len();
    if fds.len() != want {
        fail(
            "claim",
            format!("{} descriptors, expected {want}", fds.len()),
            SETUP_FAILED,
        );
    }
    let fds: Vec<RawFd> = fds
        .into_iter()
        .map(std::os::fd::IntoRawFd::into_raw_fd)
        .collect();
    if let Err(e) = build(k, &launch, fds[0], fds[1]) {
        fail("build root", e, SETUP_FAILED);
    }
    mark(&t, "root built");
    let placed: Vec<(RawFd, RawFd)> = fds[2..].iter().copied().zip(launch.fds.clone()).collect();
    match syscalls::fork() {
        Err(e) => fail("fork runtime", e, SETUP_FAILED),
        Ok(Forked::Child) => {
            drop(status_wr);
            mark(&t, "runtime forked");
            let e = become_function(k, &launch, &placed, &filters, syscalls::last_cap()).err();
            let code = match &e {
                Some(syscalls::SysError::Exec { .. }) => EXEC_FAILED,
                _ => SETUP_FAILED,
            };
            fail(
                "start runtime",
                e.map_or("exec returned".into(), |e| e.to_string()),
                code,
            )
        }
        Ok(Forked::Parent(runtime)) => {
            // Only the runtime uses these (telemetry, the Runtime API pipes): they end with it.
            for &(fd, _) in &placed {
                k.close(fd);
            }
            CHILD.store(runtime, Ordering::Relaxed);
            let _ = syscalls::set_signal_handler(FORWARDED, forward);
            loop {
                match syscalls::waitpid(-1) {
                    Ok((pid, status)) if pid == runtime => {
                        mark(&t, "runtime exited");
                        let _ = std::io::Write::write_all(
                            &mut std::fs::File::from(status_wr),
                            &status.0.to_ne_bytes(),
                        );
                        // Leaving ends the PID namespace: the kernel kills what remains.
                        let code = status
                            .exit_code()
                            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
                        syscalls::exit_now(code)
                    }
                    Ok(_) => {} // an orphan reaped
                    Err(e) => fail("reap", e, 1),
                }
            }
        }
    }
}

/// Timing restarts at the claim: what happens before it is off the cold start's path.
fn timing_since_claim(t: Option<std::time::Instant>) -> Option<std::time::Instant> {
    t.map(|_| std::time::Instant::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscalls::{Call, RecordingKernel};

    fn plan() -> InitPlan {
        InitPlan {
            cgroup_fds: vec![5, 6],
            netns_fd: Some(7),
            mounts: vec![Step::MakeRootSlave],
            control_fd: 8,
            user: None,
            runtime_api: None,
            service_addrs: Vec::new(),
            blocklist: None,
        }
    }

    fn rootless_plan() -> InitPlan {
        InitPlan {
            netns_fd: None,
            user: Some(UserMap {
                inside_uid: 993,
                inside_gid: 990,
                outside_uid: 64123,
                outside_gid: 64124,
            }),
            runtime_api: Some(crate::RUNTIME_API_ADDR),
            blocklist: Some(crate::network::Blocklist::for_host(
                &[std::net::Ipv4Addr::new(192, 0, 2, 7)],
                &[],
            )),
            mounts: vec![Step::BindReadOnly {
                source: "/usr".into(),
                target: "/r/usr".into(),
            }],
            ..plan()
        }
    }

    fn launch() -> LaunchPlan {
        LaunchPlan {
            mounts: vec![Step::RemountRootReadOnly],
            hostname: "169.254.7.1".into(),
            uid: 993,
            gid: 990,
            nofile: 1024,
            program: "/var/task/bootstrap".into(),
            argv: vec!["/var/task/bootstrap".into()],
            env: vec![("A".into(), "1".into())],
            cwd: "/var/task".into(),
            fds: vec![],
            rootless: false,
        }
    }

    #[test]
    fn enter_joins_cgroups_and_netns_before_unsharing() {
        let k = RecordingKernel::new();
        enter(&k, &plan()).unwrap();
        assert_eq!(
            k.calls(),
            vec![
                Call::WriteFd(5, b"0".to_vec()),
                Call::Close(5),
                Call::WriteFd(6, b"0".to_vec()),
                Call::Close(6),
                Call::Setns(7, libc::CLONE_NEWNET),
                Call::Close(7),
                Call::Unshare(UNSHARE_FLAGS),
            ]
        );
        assert_ne!(UNSHARE_FLAGS & libc::CLONE_NEWPID, 0);
        assert_ne!(UNSHARE_FLAGS & libc::CLONE_NEWNS, 0);
    }

    #[test]
    fn rootless_enter_joins_cgroups_then_creates_the_user_namespace_then_the_rest() {
        let k = RecordingKernel::new();
        enter(&k, &rootless_plan()).unwrap();
        assert_eq!(
            k.calls(),
            vec![
                // Joined as Sous's user: the delegated cgroups are that user's.
                Call::WriteFd(5, b"0".to_vec()),
                Call::Close(5),
                Call::WriteFd(6, b"0".to_vec()),
                Call::Close(6),
                Call::Unshare(libc::CLONE_NEWUSER),
                // setgroups denied before gid_map: the kernel's rule for unprivileged maps.
                Call::WriteProc("/proc/self/setgroups".into(), b"deny".to_vec()),
                Call::WriteProc("/proc/self/uid_map".into(), b"993 64123 1\n".to_vec()),
                Call::WriteProc("/proc/self/gid_map".into(), b"990 64124 1\n".to_vec()),
                // Owned by the new user namespace; the network namespace is made, not joined.
                Call::Unshare(UNSHARE_FLAGS | libc::CLONE_NEWNET),
            ]
        );
    }

    #[test]
    fn a_failed_map_stops_before_any_other_namespace() {
        let k = RecordingKernel::failing_at(6);
        assert!(enter(&k, &rootless_plan()).is_err());
        let c = k.calls();
        assert!(matches!(c.last(), Some(Call::WriteProc(p, _)) if p.ends_with("uid_map")));
        assert_eq!(
            c.iter().filter(|c| matches!(c, Call::Unshare(_))).count(),
            1
        );
    }

    #[test]
    fn rootless_prebuild_keeps_locked_flags_and_announce_sends_the_listener() {
        let k = RecordingKernel::new();
        prebuild(&k, &rootless_plan()).unwrap();
        let c = k.calls();
        assert_eq!(c[0], Call::ParentDeathSignal(libc::SIGKILL));
        // The remount of the bind asks for the flags the host mount has locked first.
        assert!(
            c.contains(&Call::LockedMountFlags("/r/usr".into())),
            "{c:?}"
        );

        let k = RecordingKernel::new();
        announce(&k, &rootless_plan()).unwrap();
        let fd = RecordingKernel::LISTENER_FD;
        assert_eq!(
            k.calls(),
            vec![
                Call::LoopbackUp,
                Call::ListenTcp(crate::RUNTIME_API_ADDR),
                Call::SendFds(8, READY.to_vec(), vec![fd]),
                Call::Close(fd),
            ]
        );
        // As root, Sous binds the listener itself: nothing to announce.
        let k = RecordingKernel::new();
        announce(&k, &plan()).unwrap();
        assert!(k.calls().is_empty());
    }

    #[test]
    fn rootless_announce_sends_the_service_listeners_after_the_runtime_api() {
        let services: Vec<std::net::SocketAddr> = vec![
            "127.0.0.1:5000".parse().unwrap(),
            "127.0.0.2:80".parse().unwrap(),
        ];
        let plan = InitPlan {
            service_addrs: services.clone(),
            ..rootless_plan()
        };
        let k = RecordingKernel::new();
        announce(&k, &plan).unwrap();
        let fd = RecordingKernel::LISTENER_FD;
        assert_eq!(
            k.calls(),
            vec![
                Call::LoopbackUp,
                Call::ListenTcp(crate::RUNTIME_API_ADDR),
                Call::ListenTcp(services[0]),
                Call::ListenTcp(services[1]),
                Call::SendFds(8, READY.to_vec(), vec![fd, fd, fd]),
                Call::Close(fd),
                Call::Close(fd),
                Call::Close(fd),
            ]
        );
        // A bind that fails sends nothing and closes what was bound.
        let k = RecordingKernel::failing_at(3);
        assert!(announce(&k, &plan).is_err());
        let c = k.calls();
        assert!(!c.iter().any(|c| matches!(c, Call::SendFds(..))), "{c:?}");
        assert_eq!(
            c.iter().filter(|c| matches!(c, Call::Close(_))).count(),
            2,
            "{c:?}"
        );
    }

    #[test]
    fn the_blocklist_goes_in_when_sous_says_the_network_is_ready_then_is_acknowledged() {
        let plan = rootless_plan();
        let k = RecordingKernel::new();
        assert!(fence(&k, &plan, NETWORK_READY).unwrap());
        assert_eq!(
            k.calls(),
            vec![
                Call::BlockDestinations(plan.blocklist.clone().unwrap()),
                Call::SendFds(8, FENCED.to_vec(), vec![]),
            ]
        );
        // Discarded (the pool closed the socket): nothing installed, nothing sent.
        let k = RecordingKernel::new();
        assert!(!fence(&k, &plan, b"").unwrap());
        assert!(k.calls().is_empty());
        // No blocklist (as root, or without outbound networking): nothing to wait for.
        let k = RecordingKernel::new();
        assert!(fence(&k, &plan_without_blocklist(), b"").unwrap());
        assert!(k.calls().is_empty());
    }

    fn plan_without_blocklist() -> InitPlan {
        InitPlan {
            blocklist: None,
            ..rootless_plan()
        }
    }

    #[test]
    fn rootless_identity_skips_setgroups_and_clears_capabilities_before_exec() {
        let k = RecordingKernel::new();
        let filters = crate::seccomp::filters().unwrap();
        let l = LaunchPlan {
            rootless: true,
            ..launch()
        };
        become_function(&k, &l, &[], &filters, 40).unwrap();
        let c = k.calls();
        let pos = |want: &Call| c.iter().position(|x| x == want).unwrap();
        assert!(!c.iter().any(|x| matches!(x, Call::Setgroups(_))), "{c:?}");
        assert!(pos(&Call::DropBoundingCap(40)) < pos(&Call::Setresgid(990)));
        assert!(pos(&Call::Setresuid(993)) < pos(&Call::ClearCaps));
        assert!(pos(&Call::ClearCaps) < pos(&Call::NoNewPrivs));
        let seccomps: Vec<_> = c
            .iter()
            .enumerate()
            .filter(|(_, x)| matches!(x, Call::Seccomp(_)))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(seccomps.len(), 3);
        assert!(seccomps.iter().all(|&i| i > pos(&Call::ClearCaps)));
        assert!(matches!(c.last(), Some(Call::Execve { .. })));
        // The root path is unchanged: groups cleared, no explicit capset.
        let k = RecordingKernel::new();
        become_function(&k, &launch(), &[], &filters, 40).unwrap();
        assert!(k.calls().contains(&Call::Setgroups(vec![])));
        assert!(!k.calls().contains(&Call::ClearCaps));
    }

    #[test]
    fn prebuild_sets_pdeathsig_then_mounts() {
        let k = RecordingKernel::new();
        prebuild(&k, &plan()).unwrap();
        let c = k.calls();
        assert_eq!(c[0], Call::ParentDeathSignal(libc::SIGKILL));
        assert_eq!(c.len(), 2, "{c:?}");
    }

    #[test]
    fn build_takes_the_functions_stdio_then_mounts_then_hostname() {
        let k = RecordingKernel::new();
        build(&k, &launch(), 10, 11).unwrap();
        let c = k.calls();
        assert_eq!(
            c[..4],
            [
                Call::DupTo(10, 1),
                Call::DupTo(11, 2),
                Call::Close(10),
                Call::Close(11)
            ]
        );
        assert_eq!(c.last(), Some(&Call::Sethostname("169.254.7.1".into())));
    }

    #[test]
    fn extra_descriptors_are_placed_before_anything_else() {
        let k = RecordingKernel::new();
        let filters = crate::seccomp::filters().unwrap();
        let mut l = launch();
        l.fds = vec![TELEMETRY_FD, 4, 5];
        // Received at 5, 3 and 4: each would overwrite another if placed directly.
        let placed = [(5, TELEMETRY_FD), (3, 4), (4, 5)];
        become_function(&k, &l, &placed, &filters, 40).unwrap();
        assert_eq!(
            k.calls()[..6],
            [
                Call::DupAbove(5, 64),
                Call::DupAbove(3, 64),
                Call::DupAbove(4, 64),
                Call::DupTo(69, TELEMETRY_FD),
                Call::DupTo(67, 4),
                Call::DupTo(68, 5),
            ]
        );
        assert_eq!(
            k.calls()[6..9],
            [
                Call::Fchown(TELEMETRY_FD, 993, 990),
                Call::Fchown(4, 993, 990),
                Call::Fchown(5, 993, 990),
            ]
        );
    }

    #[test]
    fn without_extra_descriptors_none_are_placed() {
        let l = launch();
        assert!(l.fds.is_empty());
        let k = RecordingKernel::new();
        let filters = crate::seccomp::filters().unwrap();
        become_function(&k, &l, &[], &filters, 40).unwrap();
        assert_eq!(k.calls()[0], Call::ResetSignals);
    }

    #[test]
    fn privileges_go_before_exec_in_the_right_order() {
        let k = RecordingKernel::new();
        let filters = crate::seccomp::filters().unwrap();
        become_function(&k, &launch(), &[], &filters, 40).unwrap();
        let c = k.calls();
        let pos = |want: &Call| c.iter().position(|x| x == want).unwrap();
        // Bounding set dropped while still root, groups before gid before uid.
        assert!(pos(&Call::DropBoundingCap(40)) < pos(&Call::Setresuid(993)));
        assert!(pos(&Call::Setgroups(vec![])) < pos(&Call::Setresgid(990)));
        assert!(pos(&Call::Setresgid(990)) < pos(&Call::Setresuid(993)));
        // no_new_privs, then every seccomp filter, then chdir and exec last.
        let nnp = pos(&Call::NoNewPrivs);
        let seccomps: Vec<_> = c
            .iter()
            .enumerate()
            .filter(|(_, x)| matches!(x, Call::Seccomp(_)))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(seccomps.len(), 3);
        assert!(seccomps
            .iter()
            .all(|&i| i > nnp && i > pos(&Call::Setresuid(993))));
        assert_eq!(c[c.len() - 2], Call::Chdir("/var/task".into()));
        assert!(
            matches!(c.last(), Some(Call::Execve { program, .. }) if program.ends_with("bootstrap"))
        );
        assert_eq!(c[0], Call::ResetSignals);
    }

    #[test]
    fn a_failed_uid_drop_never_reaches_exec() {
        let k = RecordingKernel::new();
        let filters = crate::seccomp::filters().unwrap();
        // Count the calls up to setresuid and fail there.
        become_function(&k, &launch(), &[], &filters, 40).unwrap();
        let at = k
            .calls()
            .iter()
            .position(|c| *c == Call::Setresuid(993))
            .unwrap();
        let k = RecordingKernel::failing_at(at);
        assert!(become_function(&k, &launch(), &[], &filters, 40).is_err());
        assert!(!k.calls().iter().any(|c| matches!(c, Call::Execve { .. })));
    }

    #[test]
    fn plans_round_trip_as_json() {
        for p in [plan(), rootless_plan()] {
            let back: InitPlan = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
            assert_eq!(back, p);
        }
        let l = launch();
        let back: LaunchPlan = serde_json::from_str(&serde_json::to_string(&l).unwrap()).unwrap();
        assert_eq!(back, l);
    }
}
