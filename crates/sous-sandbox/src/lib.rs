//! The kernel-facing layer of Sous: it turns "run this program" into "run this program in a
//! Lambda-like execution environment", and holds the process-lifecycle helpers. Every raw
//! syscall the project makes is wrapped here, once, with a `SAFETY:` note ([`syscalls`]).
//!
//! An environment is: cgroups (memory = MemorySize without swap, CPU proportional to memory,
//! pids ≤ 1024; [`cgroups`]), its own network namespace with the Runtime API socket on its
//! loopback and, with outbound networking, a veth pair to the NATed host ([`network`]), mount/PID/IPC/UTS namespaces, a pivot_root'ed read-only view
//! of the host's system directories plus `/var/task`, `/var/runtime`, `/opt` and a private
//! `/tmp` filesystem image ([`mounts`], [`storage`]), the unprivileged uid 993 / gid 990 (as
//! Lambda's `sbx_user1051`), no capabilities, `no_new_privs` and a seccomp filter
//! ([`seccomp`]). [`init`] is the small init that sets it up between the worker's spawn and
//! the runtime's exec.
//!
//! Use: one [`Sandbox`] per `sous serve`; [`Sandbox::prepare`] per environment; then
//! [`Prepared::start`] to run the program, [`Prepared::kill_all`] / [`Prepared::destroy`] to
//! end it.
//!
//! Without root (rootless), the same environment is built inside a user namespace the init
//! creates, mapping uid 993 / gid 990 onto Sous's own user: cgroups come from a delegated
//! tree ([`cgroups::delegated`]), `/tmp` is a directory, the init binds the Runtime API
//! listener and hands it back, and outbound traffic goes through `slirp4netns`
//! ([`network::Slirp`]). docs/SECURITY.md says what differs.
//!
//! What a cold start waits for is kept small by a pool of started inits ([`init`]): each
//! already sits in its own cgroup and network namespace (with the Runtime API listener and,
//! with outbound networking, its veth pair) with the shared part of the root mounted, so
//! `prepare` only sets the cgroup's limits and takes a `/tmp` image, and `start` sends the
//! init one message.

pub mod cgroups;
pub mod forced_stop;
pub mod init;
pub mod mounts;
pub mod network;
pub mod process;
pub mod seccomp;
pub mod storage;
pub mod syscalls;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

pub use init::{init_main, INIT_ARG, RUNTIME_API_FDS, TELEMETRY_FD};
pub use network::RUNTIME_API_ADDR;

/// Lambda runs functions as `sbx_user1051`, uid 993, gid 990.
pub const SANDBOX_UID: u32 = 993;
pub const SANDBOX_GID: u32 = 990;
pub const SANDBOX_USER: &str = "sbx_user1051";
/// Lambda's open-files limit.
pub const NOFILE: u64 = 1024;
/// The memory limit of a pooled init's cgroup until it is claimed (Lambda's smallest).
const POOLED_MEMORY_MB: u64 = 128;
/// How long the pool waits after a cold start took from it before refilling (the refill's
/// namespace and mount work would otherwise compete with that cold start for the CPU: a JVM
/// takes 60-90 ms to start, and a refill 50 ms after the take made every other Java cold
/// start 15-20 ms slower). A `prepare` waiting for an init is served at once.
const REFILL_DELAY: Duration = Duration::from_millis(150);
/// How long `prepare` waits for the pool to start an init before giving up.
const INIT_WAIT: Duration = Duration::from_secs(30);

/// Outbound network access of functions (`--function-network`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    /// As Lambda without VPC: functions may open outbound connections.
    Outbound,
    /// Loopback only (the Runtime API).
    None,
}

/// Whether environments are isolated (`--isolation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    Full,
    /// Plain child processes, for hosts where isolation is impossible; nothing is enforced.
    None,
}

/// Configuration of the [`Sandbox`] manager.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// `<data-dir>/sandbox`: the root mount point and the /tmp images live here.
    pub state_dir: PathBuf,
    pub network: NetworkMode,
    pub isolation: Isolation,
    /// The cgroup hierarchy root; `None` means `/sys/fs/cgroup` as root and, rootless, the
    /// delegated cgroups Sous runs in (see [`cgroups::delegated`]).
    pub cgroup_root: Option<PathBuf>,
    /// How many started inits and default-size /tmp images to keep ready.
    pub pool_size: usize,
    /// The executable whose `__sandbox-init` subcommand runs [`init::init_main`] (the `sous`
    /// binary itself).
    pub init_exe: PathBuf,
    /// Remount the host's cgroup2 hierarchy with `favordynmods` (host-wide; Linux 6.0+), which
    /// takes moving a process into a cgroup from several milliseconds (an RCU grace period) to
    /// tens of microseconds, at a small cost to every fork and exit on the host. Only applied
    /// with the default cgroup root.
    pub favor_dynmods: bool,
    /// Cap each environment's CPU at its Lambda share (a CFS quota: 1,769 MB = one vCPU).
    /// Off: the share is a weight (`cpu.shares` / `cpu.weight`), so environments get CPU in
    /// proportion to memory when the host is busy and may use idle cores otherwise.
    pub cpu_cap: bool,
    /// Loopback addresses each environment's network namespace also listens on, besides the
    /// Runtime API, for Sous to accept on (the service endpoint forwarders of sous-worker);
    /// [`Prepared::service_listeners`] holds them in this order. At most
    /// [`MAX_SERVICE_LISTENERS`].
    pub service_addrs: Vec<SocketAddr>,
}

/// The most [`SandboxConfig::service_addrs`] (a rootless init hands them back in one message).
pub const MAX_SERVICE_LISTENERS: usize = 16;

impl SandboxConfig {
    /// Full isolation, outbound network, `/sys/fs/cgroup`, a pool of 4, this executable as
    /// the init.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        SandboxConfig {
            state_dir: state_dir.into(),
            network: NetworkMode::Outbound,
            isolation: Isolation::Full,
            cgroup_root: None,
            pool_size: 4,
            init_exe: std::env::current_exe().unwrap_or_default(),
            favor_dynmods: true,
            cpu_cap: false,
            service_addrs: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Full isolation cannot work on this host (the caller may offer `--isolation none`).
    #[error("function isolation is not possible on this host: {0}")]
    Unsupported(String),
    #[error("cgroups: {0}")]
    Cgroup(#[from] cgroups::CgroupError),
    #[error("network namespace: {0}")]
    Network(io::Error),
    /// Outbound networking cannot be set up (e.g. neither nf_tables nor iptables works).
    #[error("outbound networking (--function-network outbound): {0}")]
    Outbound(String),
    #[error("/tmp storage: {0}")]
    Storage(#[from] storage::StorageError),
    #[error("filesystem view: {0}")]
    Plan(#[from] mounts::PlanError),
    #[error("{what}: {err}")]
    Io { what: String, err: io::Error },
}

/// What an environment is made of.
#[derive(Debug, Clone)]
pub struct EnvSandboxSpec {
    /// The environment id (used in cgroup names; any string).
    pub id: String,
    pub memory_mb: u64,
    pub ephemeral_mb: u64,
    /// Host directory shown read-only at `/var/task`.
    pub task_dir: PathBuf,
    /// Host directory shown read-only at `/var/runtime`.
    pub runtime_dir: Option<PathBuf>,
    /// Host directory shown read-only at `/opt` (merged layers).
    pub opt_dir: Option<PathBuf>,
    /// Extra host directories (or files) shown read-only at the same path.
    pub host_paths: Vec<PathBuf>,
    pub hostname: String,
}

struct Shared {
    cfg: SandboxConfig,
    cgroups: Option<cgroups::Hierarchy>,
    /// Distinguishes this data dir's cgroups from another Sous on the same host.
    tag: String,
    /// What a killed run of this data dir may leave (see [`forced_stop`]).
    leftovers: forced_stop::Leftovers,
    host_cpus: u64,
    counter: AtomicU64,
    /// Started inits waiting to be claimed.
    inits: Mutex<Vec<Zygote>>,
    /// `prepare` calls waiting for an init (the pool thread makes one at once).
    waiting: AtomicU64,
    /// Signalled when an init joins the pool (or starting one failed); used with `inits`.
    ready: Condvar,
    /// Counts failed init starts, so waiting `prepare` calls give up at once.
    spawn_failures: AtomicU64,
    last_failure: Mutex<Option<String>>,
    /// Veth + NAT for environments, with `NetworkMode::Outbound` as root.
    outbound: Option<network::Outbound>,
    /// Set when Sous runs without root: environments are made in user namespaces.
    rootless: Option<Rootless>,
    /// Ready `/tmp`s: images of the default size as root, directories rootless.
    tmps: Mutex<Vec<Tmp>>,
    /// Formatted filesystems, one per EphemeralStorage size, that `/tmp` images are made from.
    tmp_templates: storage::Templates,
    /// Wakes the pool thread; used with `inits`.
    wake: Condvar,
    stop: AtomicBool,
    warnings: Mutex<Vec<String>>,
}

/// How a rootless Sous makes environments (see [`Sandbox::new`]).
#[derive(Debug, Clone)]
struct Rootless {
    /// The function's ids inside, Sous's own outside.
    map: init::UserMap,
    /// `slirp4netns`, with `NetworkMode::Outbound`.
    slirp: Option<PathBuf>,
    /// The confinement options that `slirp4netns` has (see [`network::slirp_hardening`]).
    slirp_hardening: Vec<String>,
    /// The IPv4 name servers of the environments' `/etc/resolv.conf` (DNS stays reachable
    /// through the outbound blocklist).
    nameservers: Vec<std::net::Ipv4Addr>,
}

/// An environment's `/tmp`: an image (as root) or a directory (rootless).
#[derive(Debug)]
enum Tmp {
    Image(storage::TmpImage),
    Dir(storage::TmpDir),
}

impl Tmp {
    fn source(&self) -> PathBuf {
        match self {
            Tmp::Image(i) => i.mountpoint.clone(),
            Tmp::Dir(d) => d.path.clone(),
        }
    }

    fn release(&self) -> io::Result<()> {
        match self {
            Tmp::Image(i) => storage::release(i),
            Tmp::Dir(d) => storage::release_dir(d),
        }
    }
}

/// An environment's network: the Runtime API listener (inside the environment's network
/// namespace) and what keeps the rest of it alive.
#[derive(Debug)]
struct EnvNet {
    listener: TcpListener,
    /// Listeners on [`SandboxConfig::service_addrs`], in that order.
    services: Vec<TcpListener>,
    /// As root: the namespace, made by Sous. Rootless the init made it; the listener and
    /// the init's processes hold it.
    ns: Option<OwnedFd>,
    veth: Option<network::Veth>,
    slirp: Option<network::Slirp>,
}

impl Shared {
    fn next(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    fn tmp_dir(&self) -> PathBuf {
        self.cfg.state_dir.join("tmp")
    }

    fn root_dir(&self) -> PathBuf {
        self.cfg.state_dir.join("root")
    }

    /// A new `/tmp`: an image of `size_mb` as root; rootless a directory (whose size is not
    /// enforced).
    fn new_tmp(&self, size_mb: u64) -> Result<Tmp, storage::StorageError> {
        let name = format!("{}-{}", self.tag, self.next());
        match self.rootless {
            Some(_) => storage::create_dir(&self.tmp_dir(), &name).map(Tmp::Dir),
            None => {
                let template = self.tmp_templates.get(size_mb)?;
                storage::create(&self.tmp_dir(), &name, &template).map(Tmp::Image)
            }
        }
    }

    /// Whether the pool of inits is short: below its size plus the `prepare` calls waiting.
    fn inits_short(&self, inits: &[Zygote]) -> bool {
        inits.len() < self.cfg.pool_size + self.waiting.load(Ordering::SeqCst) as usize
    }

    /// Keep the pools full; runs on the background thread (the inits' parent: their
    /// parent-death signal is tied to it). Returns whether starting an init failed.
    fn refill(&self) -> bool {
        let mut failed = false;
        while !self.stop.load(Ordering::Relaxed) && self.inits_short(&self.inits.lock().unwrap()) {
            let made = self.spawn_init();
            let mut inits = self.inits.lock().unwrap();
            match made {
                Ok(z) => inits.push(z),
                Err(e) => {
                    self.spawn_failures.fetch_add(1, Ordering::SeqCst);
                    *self.last_failure.lock().unwrap() = Some(e.to_string());
                    self.warn(format!("prepare a sandbox init: {e}"));
                    self.ready.notify_all();
                    failed = true;
                    break;
                }
            }
            self.ready.notify_all();
        }
        while !self.stop.load(Ordering::Relaxed)
            && self.tmps.lock().unwrap().len() < self.cfg.pool_size
        {
            match self.new_tmp(storage::DEFAULT_EPHEMERAL_MB) {
                Ok(t) => self.tmps.lock().unwrap().push(t),
                Err(e) => {
                    self.warn(format!("prepare /tmp: {e}"));
                    break;
                }
            }
        }
        failed
    }

    /// Start one init in a new cgroup (with the smallest function's limits until claimed) and
    /// network namespace; it mounts the shared part of the root and waits for its claim.
    fn spawn_init(&self) -> Result<Zygote, SandboxError> {
        let Some(hierarchy) = &self.cgroups else {
            return Err(SandboxError::Unsupported("no cgroups".into()));
        };
        let name = format!("{}-{}-env", self.tag, self.next());
        let limits = cgroups::limits_for(POOLED_MEMORY_MB, self.host_cpus, self.cfg.cpu_cap);
        let cgroup = match hierarchy.create(&name, &limits) {
            Ok(c) => c,
            Err(e) => {
                let _ = hierarchy.open_existing(&name).remove();
                return Err(e.into());
            }
        };
        match self.start_init_in(&cgroup) {
            Ok((child, control, net)) => Ok(Zygote {
                child,
                control,
                cgroup,
                net,
            }),
            Err(e) => {
                let _ = cgroup.remove();
                Err(e)
            }
        }
    }

    fn start_init_in(
        &self,
        cgroup: &cgroups::Cgroup,
    ) -> Result<(std::process::Child, OwnedFd, EnvNet), SandboxError> {
        let mut procs = Vec::new();
        for f in cgroup.procs_files() {
            let fd = std::fs::OpenOptions::new()
                .write(true)
                .open(&f)
                .map_err(io_ctx(format!("open {}", f.display())))?;
            procs.push(OwnedFd::from(fd));
        }
        // As root Sous makes the network namespace (with the listener) and the init joins
        // it; rootless the init makes it and sends the listener back.
        let net = match &self.rootless {
            None => Some(
                network::create(
                    RUNTIME_API_ADDR,
                    &self.cfg.service_addrs,
                    self.outbound.as_ref(),
                )
                .map_err(SandboxError::Network)?,
            ),
            Some(_) => None,
        };
        let (ours, theirs) = syscalls::seqpacket_pair().map_err(io_ctx("control socket"))?;
        let plan = init::InitPlan {
            cgroup_fds: procs.iter().map(|f| f.as_raw_fd()).collect(),
            netns_fd: net.as_ref().map(|n| n.ns.as_raw_fd()),
            mounts: mounts::common_plan_for(
                &self.root_dir(),
                &mounts::probe_host,
                self.rootless.is_some(),
            ),
            control_fd: theirs.as_raw_fd(),
            user: self.rootless.as_ref().map(|r| r.map),
            runtime_api: self.rootless.as_ref().map(|_| RUNTIME_API_ADDR),
            service_addrs: match &self.rootless {
                Some(_) => self.cfg.service_addrs.clone(),
                None => Vec::new(),
            },
            // The host's addresses now (they may change while Sous runs), off the cold path.
            blocklist: self
                .rootless
                .as_ref()
                .filter(|r| r.slirp.is_some())
                .map(|r| network::Blocklist::for_host(&network::host_addresses(), &r.nameservers)),
        };
        let json = serde_json::to_vec(&plan).map_err(|e| SandboxError::Io {
            what: "encode init plan".into(),
            err: io::Error::other(e),
        })?;
        let plan_fd =
            syscalls::memfd_with("sous-sandbox-plan", &json).map_err(io_ctx("init plan"))?;
        let mut cmd = Command::new(&self.cfg.init_exe);
        cmd.arg(INIT_ARG)
            .arg(plan_fd.as_raw_fd().to_string())
            .env_clear()
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
        if let Some(v) = std::env::var_os("SOUS_SANDBOX_TIMING") {
            cmd.env("SOUS_SANDBOX_TIMING", v);
        }
        let mut keep: Vec<RawFd> = plan.cgroup_fds.clone();
        keep.extend(plan.netns_fd);
        keep.extend([theirs.as_raw_fd(), plan_fd.as_raw_fd()]);
        // SAFETY: runs in the forked child before exec; it only calls fcntl (async-signal-safe)
        // on descriptors the parent holds open until spawn returns, and allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                for fd in &keep {
                    syscalls::clear_cloexec(*fd)?;
                }
                Ok(())
            });
        }
        process::detach_with_parent_death(&mut cmd);
        let child = cmd.spawn().map_err(io_ctx(format!(
            "start the sandbox init {}",
            self.cfg.init_exe.display()
        )))?;
        if let Some(n) = net {
            return Ok((
                child,
                ours,
                EnvNet {
                    listener: n.listener,
                    services: n.services,
                    ns: Some(n.ns),
                    veth: n.veth,
                    slirp: None,
                },
            ));
        }
        // Rootless. Only the init holds its end now: if it dies, the wait below ends.
        drop(theirs);
        let mut child = child;
        let procs_fds: Vec<RawFd> = procs.iter().map(|f| f.as_raw_fd()).collect();
        match self.await_rootless_init(&child, &ours, &procs_fds) {
            Ok(net) => Ok((child, ours, net)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    /// Rootless: wait for the init's [`init::READY`] with the Runtime API listener, then
    /// attach outbound networking to its namespaces.
    fn await_rootless_init(
        &self,
        child: &std::process::Child,
        control: &OwnedFd,
        cgroup_procs: &[RawFd],
    ) -> Result<EnvNet, SandboxError> {
        syscalls::set_recv_timeout(control, INIT_WAIT).map_err(io_ctx("control socket"))?;
        let (msg, fds) = syscalls::recv_with_fds(control.as_raw_fd(), 4096)
            .map_err(io_ctx("wait for the sandbox init"))?;
        // The Runtime API listener, then one per service address, in order.
        let mut fds = fds.into_iter().map(TcpListener::from);
        let wanted = 1 + self.cfg.service_addrs.len();
        let (listener, services) = match (msg.as_slice() == init::READY, fds.next()) {
            (true, Some(l)) if fds.len() + 1 == wanted => (l, fds.collect()),
            _ => {
                let text = String::from_utf8_lossy(&msg);
                let why = match text.strip_prefix(init::SETUP_ERROR) {
                    Some(why) => why.to_string(),
                    None if msg.is_empty() => "it exited before it was ready".to_string(),
                    None => format!("unexpected message {text:?}"),
                };
                return Err(SandboxError::Io {
                    what: "start a sandbox init in a user namespace".into(),
                    err: io::Error::other(why),
                });
            }
        };
        let slirp = match self
            .rootless
            .as_ref()
            .and_then(|r| Some((r.slirp.as_ref()?, r)))
        {
            Some((program, r)) => {
                let slirp =
                    network::Slirp::start(program, &r.slirp_hardening, child.id(), cgroup_procs)
                        .map_err(|e| SandboxError::Outbound(e.to_string()))?;
                // Now the init refuses what functions may not reach (see init::fence).
                let fenced = syscalls::send_with_fds(control.as_raw_fd(), init::NETWORK_READY, &[])
                    .and_then(|()| syscalls::recv_with_fds(control.as_raw_fd(), 4096));
                match fenced {
                    Ok((msg, _)) if msg.as_slice() == init::FENCED => {}
                    Ok((msg, _)) => {
                        return Err(SandboxError::Outbound(format!(
                            "the sandbox init did not install the outbound blocklist: {}",
                            String::from_utf8_lossy(&msg)
                        )))
                    }
                    Err(e) => {
                        return Err(SandboxError::Outbound(format!(
                            "install the outbound blocklist: {e}"
                        )))
                    }
                }
                Some(slirp)
            }
            None => None,
        };
        Ok(EnvNet {
            listener,
            services,
            ns: None,
            veth: None,
            slirp,
        })
    }

    /// Take a started init from the pool, waiting (the pool thread starts one at once) when
    /// it is empty.
    fn take_init(&self) -> Result<Zygote, SandboxError> {
        let mut inits = self.inits.lock().unwrap();
        if let Some(z) = inits.pop() {
            drop(inits);
            self.wake.notify_one();
            return Ok(z);
        }
        let failures = self.spawn_failures.load(Ordering::SeqCst);
        self.waiting.fetch_add(1, Ordering::SeqCst);
        self.wake.notify_one();
        let deadline = std::time::Instant::now() + INIT_WAIT;
        let result = loop {
            if let Some(z) = inits.pop() {
                break Ok(z);
            }
            let now = std::time::Instant::now();
            if self.spawn_failures.load(Ordering::SeqCst) != failures || now >= deadline {
                let why = self.last_failure.lock().unwrap().clone();
                break Err(SandboxError::Io {
                    what: "start a sandbox init".into(),
                    err: io::Error::other(why.unwrap_or_else(|| "timed out".into())),
                });
            }
            inits = self.ready.wait_timeout(inits, deadline - now).unwrap().0;
        };
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        result
    }

    fn warn(&self, w: String) {
        let mut ws = self.warnings.lock().unwrap();
        if !ws.contains(&w) {
            ws.push(w);
        }
    }
}

/// The sandbox manager: created once at `sous serve` start.
pub struct Sandbox {
    shared: Arc<Shared>,
    filler: Option<std::thread::JoinHandle<()>>,
    /// The forced-stop watcher and the data dir's lock (full isolation).
    watcher: Option<forced_stop::Watcher>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("isolation", &self.shared.cfg.isolation)
            .field("state_dir", &self.shared.cfg.state_dir)
            .finish()
    }
}

/// Rootless: the warning when Sous's user has supplementary groups besides `egid`. They stay
/// in effect for its functions (`setgroups` is denied in their user namespace, so the init
/// cannot drop them): a function may use whatever those groups grant on the host's files.
fn supplementary_groups_warning(groups: &[u32], egid: u32) -> Option<String> {
    let extra: Vec<String> = groups
        .iter()
        .filter(|&&g| g != egid)
        .map(u32::to_string)
        .collect();
    (!extra.is_empty()).then(|| {
        format!(
            "rootless isolation: Sous's user has supplementary groups ({}); they stay in effect \
             for functions (shown as nobody inside): run Sous as a dedicated user without them",
            extra.join(", ")
        )
    })
}

fn io_ctx(what: impl Into<String>) -> impl FnOnce(io::Error) -> SandboxError {
    let what = what.into();
    move |err| SandboxError::Io { what, err }
}

impl Sandbox {
    /// Check that isolation is possible here (root, cgroups v1 or v2, a network namespace can
    /// be made; with outbound networking, the firewall and NAT are installed (nftables through
    /// netlink, else iptables) and IPv4 forwarding turned on), clean up what a crashed earlier
    /// run of this data dir left (cgroups, /tmp images and their mounts, veth pairs), and
    /// start the background pool. `/tmp` images need no host program: Sous formats them
    /// itself ([`storage::mkfs`]) and mounts them by system calls.
    /// `Isolation::None` checks nothing.
    pub fn new(cfg: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let host_cpus = std::thread::available_parallelism()
            .map(|n| n.get() as u64)
            .unwrap_or(1);
        let mut tag_hash = DefaultHasher::new();
        cfg.state_dir.hash(&mut tag_hash);
        let tag = format!("{:08x}", tag_hash.finish() as u32);
        let full = cfg.isolation == Isolation::Full;
        let mut hierarchy = None;
        let mut rootless = None;
        let mut watcher = None;
        let mut watcher_warning = None;
        if full {
            if !cfg!(target_os = "linux") {
                return Err(SandboxError::Unsupported("not Linux".into()));
            }
            if syscalls::geteuid() != 0 {
                let (h, r) = Self::rootless_host(&cfg)?;
                hierarchy = Some(h);
                rootless = Some(r);
            } else {
                let root = cfg
                    .cgroup_root
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup"));
                hierarchy = Some(
                    cgroups::detect(&root).map_err(|e| SandboxError::Unsupported(e.to_string()))?,
                );
            }
            // Private to Sous's user, proved at every start: rootless, the functions' /tmp
            // directories below are Sous's user's files (see storage::ensure_private_dir).
            let tmp = cfg.state_dir.join("tmp");
            for dir in [&cfg.state_dir, &tmp] {
                storage::ensure_private_dir(dir).map_err(|e| SandboxError::Io {
                    what: "make the sandbox state dir private".into(),
                    err: io::Error::other(e.to_string()),
                })?;
            }
            // Before anything is made outside the data dir: the watcher removes it if Sous is
            // killed (and a killed run's watcher is done before this start goes on).
            let (w, warning) = forced_stop::Watcher::start(
                &cfg.state_dir,
                &cfg.init_exe,
                &leftovers_of(&cfg, &tag, hierarchy.as_ref(), rootless.is_some()),
            )
            .map_err(|e| SandboxError::Io {
                what: "lock the data dir".into(),
                err: io::Error::other(e),
            })?;
            watcher = Some(w);
            watcher_warning = warning;
            // The root template is rebuilt at every start (fresh copies of the /etc entries).
            // Nothing is ever mounted on it in the host's namespace, only in environments'.
            let root = cfg.state_dir.join("root");
            if root.exists() {
                std::fs::remove_dir_all(&root)
                    .map_err(io_ctx(format!("remove old {}", root.display())))?;
            }
            mounts::build_template(
                &syscalls::LinuxKernel,
                &root,
                &mounts::SandboxUser {
                    uid: SANDBOX_UID,
                    gid: SANDBOX_GID,
                    name: SANDBOX_USER.into(),
                },
                &mounts::probe_host,
                rootless.is_none(),
            )?;
            if let Some(r) = rootless.as_mut() {
                mounts::add_device_mount_points(&syscalls::LinuxKernel, &root)
                    .map_err(mounts::PlanError::from)?;
                r.nameservers = network::nameservers(
                    &std::fs::read_to_string(root.join("etc/resolv.conf")).unwrap_or_default(),
                );
            }
        }
        let outbound = match full && rootless.is_none() && cfg.network == NetworkMode::Outbound {
            true => Some(network::Outbound::setup(&tag).map_err(SandboxError::Outbound)?),
            false => None,
        };
        let leftovers = leftovers_of(&cfg, &tag, hierarchy.as_ref(), rootless.is_some());
        let shared = Arc::new(Shared {
            cfg,
            outbound,
            rootless,
            cgroups: hierarchy,
            tag,
            leftovers,
            host_cpus,
            counter: AtomicU64::new(0),
            inits: Mutex::new(Vec::new()),
            waiting: AtomicU64::new(0),
            ready: Condvar::new(),
            spawn_failures: AtomicU64::new(0),
            last_failure: Mutex::new(None),
            tmps: Mutex::new(Vec::new()),
            tmp_templates: storage::Templates::default(),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            warnings: Mutex::new(Vec::new()),
        });
        if !full {
            return Ok(Sandbox {
                shared,
                filler: None,
                watcher,
            });
        }
        if let Some(w) = watcher_warning {
            shared.warn(w);
        }
        shared.cleanup_leftovers();
        if shared.rootless.is_some() {
            shared.warn(
                "rootless isolation: each environment's /tmp is a directory in the data dir, \
                 EphemeralStorage is not enforced"
                    .into(),
            );
            if let Some(w) =
                supplementary_groups_warning(&syscalls::supplementary_groups(), syscalls::getegid())
            {
                shared.warn(w);
            }
            // One init now proves the host allows what rootless environments need (a user
            // namespace, the others inside it, the mounts, the listener, slirp4netns). It is
            // not pooled: its parent-death signal is tied to this thread, not the pool's.
            shared
                .spawn_init()
                .map_err(|e| {
                    SandboxError::Unsupported(format!(
                        "rootless isolation: a sandbox init could not be started: {e}"
                    ))
                })?
                .discard();
        } else {
            // Pooled inits copy the mount table before their environment's /tmp image is
            // mounted; a shared <state>/tmp makes the image appear in their (slave) copies.
            syscalls::make_shared_mount_point(&shared.tmp_dir())
                .map_err(io_ctx(format!("share {}", shared.tmp_dir().display())))?;
            if shared.cfg.favor_dynmods && shared.cfg.cgroup_root.is_none() {
                if let Err(e) = cgroups::favor_dynmods() {
                    shared.warn(format!(
                        "cgroup2 favordynmods not enabled ({e}): every environment start pays an \
                         RCU grace period (several ms) to join its cgroup"
                    ));
                }
            }
            // One namespace now proves the host allows them.
            drop(
                network::create(
                    RUNTIME_API_ADDR,
                    &shared.cfg.service_addrs,
                    shared.outbound.as_ref(),
                )
                .map_err(|e| {
                    SandboxError::Unsupported(format!("create a network namespace: {e}"))
                })?,
            );
        }
        let bg = shared.clone();
        let filler = std::thread::Builder::new()
            .name("sous-sandbox-pool".into())
            .spawn(move || {
                while !bg.stop.load(Ordering::Relaxed) {
                    let failed = bg.refill();
                    let inits = bg.inits.lock().unwrap();
                    // Demand that arrived during the refill is seen here, under the lock
                    // `take_init` raises it under: no wake-up is lost.
                    if bg.inits_short(&inits) && !failed {
                        continue;
                    }
                    let pause = Duration::from_secs(if failed { 1 } else { 5 });
                    let inits = bg.wake.wait_timeout(inits, pause).unwrap().0;
                    // Woken because a cold start took an init or a /tmp image: let it finish
                    // before competing for the CPU (/tmp images, namespaces), unless a `prepare` is
                    // waiting for an init.
                    let _ = bg
                        .wake
                        .wait_timeout_while(inits, REFILL_DELAY, |_| {
                            bg.waiting.load(Ordering::SeqCst) == 0
                                && !bg.stop.load(Ordering::Relaxed)
                        })
                        .unwrap();
                }
            })
            .map_err(io_ctx("start sandbox pool thread"))?;
        Ok(Sandbox {
            shared,
            filler: Some(filler),
            watcher,
        })
    }

    /// Rootless: what this host offers an unprivileged Sous (see docs/SECURITY.md, "Rootless
    /// isolation"): a delegated cgroup tree with a memory controller (Sous moves itself into
    /// a leaf of a delegated v2 cgroup it runs in), unprivileged user namespaces (proved by
    /// the first init), and with outbound networking `slirp4netns`.
    fn rootless_host(cfg: &SandboxConfig) -> Result<(cgroups::Hierarchy, Rootless), SandboxError> {
        let delegated = cgroups::delegated::detect_on_host(cfg.cgroup_root.as_deref())
            .map_err(|e| SandboxError::Unsupported(format!("rootless isolation: {e}")))?;
        if let Some(leaf) = &delegated.move_into {
            cgroups::delegated::enter_leaf(leaf).map_err(|e| {
                SandboxError::Unsupported(format!(
                    "rootless isolation: move Sous into a leaf of its delegated cgroup: {e}"
                ))
            })?;
        }
        let slirp = match cfg.network {
            NetworkMode::None => None,
            NetworkMode::Outbound => {
                let program = network::slirp_program().ok_or_else(|| {
                    SandboxError::Outbound(
                        "slirp4netns not found: without root, outbound networking of functions \
                         needs it (Debian: apt-get install slirp4netns)"
                            .into(),
                    )
                })?;
                if !syscalls::may_read_write(Path::new(network::TUN_DEVICE)) {
                    return Err(SandboxError::Outbound(format!(
                        "{} is not usable by this user: slirp4netns needs it for rootless \
                         outbound networking (most distributions make it mode 0666; as root: \
                         chmod 0666 {})",
                        network::TUN_DEVICE,
                        network::TUN_DEVICE
                    )));
                }
                Some(program)
            }
        };
        let map = init::UserMap {
            inside_uid: SANDBOX_UID,
            inside_gid: SANDBOX_GID,
            outside_uid: syscalls::geteuid(),
            outside_gid: syscalls::getegid(),
        };
        Ok((
            delegated.hierarchy,
            Rootless {
                map,
                slirp_hardening: slirp
                    .as_deref()
                    .map(network::slirp_hardening)
                    .unwrap_or_default(),
                slirp,
                nameservers: Vec::new(),
            },
        ))
    }

    pub fn isolation(&self) -> Isolation {
        self.shared.cfg.isolation
    }

    /// Whether environments are made without root, in user namespaces.
    pub fn is_rootless(&self) -> bool {
        self.shared.rootless.is_some()
    }

    /// The cgroup version in use (`None` without isolation).
    pub fn cgroup_version(&self) -> Option<cgroups::Version> {
        self.shared.cgroups.as_ref().map(|h| h.version())
    }

    /// Started inits and ready /tmps (default-size images; rootless, directories) in the pool.
    pub fn pool_status(&self) -> (usize, usize) {
        (
            self.shared.inits.lock().unwrap().len(),
            self.shared.tmps.lock().unwrap().len(),
        )
    }

    /// Things the operator should know (features that are off, pool failures), once each.
    pub fn warnings(&self) -> Vec<String> {
        self.shared.warnings.lock().unwrap().clone()
    }

    /// What the NAT and firewall of outbound networking as root are made with (`None`
    /// without them: rootless, or `NetworkMode::None`).
    pub fn outbound_firewall(&self) -> Option<String> {
        self.shared
            .outbound
            .as_ref()
            .map(|o| o.firewall().to_string())
    }

    /// Prepare an environment: cgroup with its limits, network namespace with the Runtime API
    /// listener, /tmp image, and the filesystem plan. Cheap when the pool is warm.
    pub fn prepare(&self, spec: &EnvSandboxSpec) -> Result<Prepared, SandboxError> {
        let sh = &self.shared;
        // A host path shown inside must never reveal Sous's own data dir (the metadata, every
        // function's code and logs): e.g. an interpreter installed under ~/.local when the
        // data dir is ~/.local/share/sous.
        if let Some(data_dir) = sh.cfg.state_dir.parent() {
            if let Some(p) = spec.host_paths.iter().find(|p| data_dir.starts_with(p)) {
                return Err(SandboxError::Unsupported(format!(
                    "showing {} to a function would expose the data dir {}; install the runtime's interpreter outside it",
                    p.display(),
                    data_dir.display()
                )));
            }
        }
        if sh.cgroups.is_none() {
            let listener = TcpListener::bind("127.0.0.1:0").map_err(io_ctx("bind runtime API"))?;
            return Ok(Prepared {
                listener,
                service_listeners: Vec::new(),
                spec: spec.clone(),
                env: None,
            });
        }
        // Check the paths before taking an init, so a bad spec costs nothing.
        mounts::ensure_mount_points(&sh.root_dir(), &spec.host_paths)?;
        let zygote = sh.take_init()?;
        let Zygote {
            child,
            control,
            cgroup,
            net,
        } = zygote;
        let limits = cgroups::limits_for(spec.memory_mb, sh.host_cpus, sh.cfg.cpu_cap);
        let mut env = Isolated {
            cgroup,
            netns: net.ns,
            veth: net.veth,
            slirp: net.slirp,
            tmp: None,
            mounts: Vec::new(),
            init: Some((child, control)),
            heaviest: std::sync::OnceLock::new(),
            memory_bytes: limits.memory_bytes,
            shared: sh.clone(),
            done: false,
        };
        // From here on, dropping `env` undoes everything made so far.
        env.cgroup.set_limits(&limits)?;
        // Pooled: an image of the default size, or (rootless) any directory: a new directory
        // costs a disk write too (over a millisecond here).
        let pooled = (spec.ephemeral_mb == storage::DEFAULT_EPHEMERAL_MB || sh.rootless.is_some())
            .then(|| sh.tmps.lock().unwrap().pop())
            .flatten();
        env.tmp = Some(match pooled {
            Some(t) => t,
            None => sh.new_tmp(spec.ephemeral_mb)?,
        });
        sh.wake.notify_one();
        env.mounts = mounts::function_plan(
            &mounts::RootInputs {
                new_root: sh.root_dir(),
                task_dir: spec.task_dir.clone(),
                runtime_dir: spec.runtime_dir.clone(),
                opt_dir: spec.opt_dir.clone(),
                host_paths: spec.host_paths.clone(),
                tmp_source: env.tmp.as_ref().map(Tmp::source),
            },
            &mounts::probe_host,
        )?;
        Ok(Prepared {
            listener: net.listener,
            service_listeners: net.services,
            spec: spec.clone(),
            env: Some(env),
        })
    }
}

/// A started init waiting in the pool to be claimed (see [`init`]).
struct Zygote {
    /// The outer init: the environment's process as the host sees it.
    child: std::process::Child,
    /// Our end of the control socket.
    control: OwnedFd,
    cgroup: cgroups::Cgroup,
    net: EnvNet,
}

impl Zygote {
    /// End an unclaimed init and release what it holds.
    fn discard(mut self) {
        drop(self.control);
        let _ = self.cgroup.remove();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Shared {
    fn cleanup_leftovers(&self) {
        let cleaned = self.leftovers.clean();
        if cleaned.tmp_dirs > 0 {
            self.warn(format!(
                "removed {} /tmp directories of environments an earlier run left",
                cleaned.tmp_dirs
            ));
        }
        for f in cleaned.failed {
            self.warn(f);
        }
        // Network namespaces are held by descriptors only and die with the process; mounts
        // made in Sous's own mount namespace die with it (see forced_stop).
    }
}

/// What a killed `sous serve` of this configuration may leave (see [`forced_stop`]).
fn leftovers_of(
    cfg: &SandboxConfig,
    tag: &str,
    hierarchy: Option<&cgroups::Hierarchy>,
    rootless: bool,
) -> forced_stop::Leftovers {
    forced_stop::Leftovers {
        tag: tag.to_string(),
        cgroups: hierarchy.map(cgroups::Hierarchy::spec),
        tmp_dir: cfg.state_dir.join("tmp"),
        rootless,
        veth_alias: network::veth_alias(tag),
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        forced_stop::stop_phase_if_stopping("sandbox");
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.wake.notify_all();
        if let Some(t) = self.filler.take() {
            let _ = t.join();
        }
        forced_stop::stop_phase_if_stopping("pool-stopped");
        for t in self.shared.tmps.lock().unwrap().drain(..) {
            let _ = t.release();
        }
        forced_stop::stop_phase_if_stopping("tmps-released");
        let inits: Vec<Zygote> = self.shared.inits.lock().unwrap().drain(..).collect();
        for z in inits {
            z.discard();
        }
        forced_stop::stop_phase_if_stopping("inits-discarded");
        if self.shared.cgroups.is_some() && self.shared.rootless.is_none() {
            let _ = syscalls::umount_detach(&self.shared.tmp_dir());
        }
        if let Some(w) = self.watcher.take() {
            w.finish();
        }
    }
}

/// What [`Prepared::start`] runs.
#[derive(Debug)]
pub struct Launch<'a> {
    pub program: &'a Path,
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    pub cwd: &'a Path,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// The write end of the telemetry pipe (managed runtimes), shown as [`TELEMETRY_FD`].
    pub telemetry: Option<OwnedFd>,
    /// The runtime's ends of the Runtime API pipes (managed runtimes): the read end of Sous's
    /// answers and the write end of its requests, shown as [`RUNTIME_API_FDS`].
    pub runtime_api: Option<[OwnedFd; 2]>,
}

impl Launch<'_> {
    /// The descriptors after stdout and stderr, each with its number in the runtime's process.
    fn extra_fds(&self) -> Vec<(RawFd, RawFd)> {
        let mut fds = Vec::with_capacity(3);
        if let Some(t) = &self.telemetry {
            fds.push((t.as_raw_fd(), TELEMETRY_FD));
        }
        if let Some(pipes) = &self.runtime_api {
            fds.extend(pipes.iter().map(|p| p.as_raw_fd()).zip(RUNTIME_API_FDS));
        }
        fds
    }
}

/// Without isolation: the program itself, as a child of the calling thread.
fn start_plain(launch: Launch<'_>) -> io::Result<std::process::Child> {
    let extra = launch.extra_fds();
    let mut cmd = Command::new(launch.program);
    cmd.args(launch.args)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(launch.cwd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::from(launch.stdout))
        .stderr(std::process::Stdio::from(launch.stderr));
    // Ours stay open (`launch`) until spawn returns.
    process::pass_fds(&mut cmd, extra);
    process::detach_with_parent_death(&mut cmd);
    let child = cmd.spawn();
    drop((launch.telemetry, launch.runtime_api));
    child
}

/// The isolated parts of a prepared environment.
struct Isolated {
    cgroup: cgroups::Cgroup,
    netns: Option<OwnedFd>,
    /// Deleted (both ends) on teardown.
    veth: Option<network::Veth>,
    /// Rootless outbound networking; stopped on teardown.
    slirp: Option<network::Slirp>,
    tmp: Option<Tmp>,
    /// The function's part of the mounts, sent with the claim.
    mounts: Vec<mounts::Step>,
    /// The init and our end of its control socket, until [`Prepared::start`] claims it.
    init: Option<(std::process::Child, OwnedFd)>,
    /// The member holding the most memory when first asked (the runtime), for
    /// [`Prepared::peak_memory`].
    heaviest: std::sync::OnceLock<Option<process::Rss>>,
    /// The memory cgroup's limit: what [`Prepared::peak_memory`] never reports more than.
    memory_bytes: u64,
    shared: Arc<Shared>,
    done: bool,
}

impl Isolated {
    fn teardown(&mut self) -> io::Result<()> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        let mut first: Option<io::Error> = None;
        // Killing the cgroup ends the init too (it is a member).
        let killed = self.cgroup.remove();
        if let Err(e) = &killed {
            first.get_or_insert(io::Error::other(e.to_string()));
        }
        forced_stop::stop_phase_if_stopping("environment-killed");
        if let Some((mut child, control)) = self.init.take() {
            drop(control);
            let _ = child.kill();
            let _ = child.wait();
        }
        self.netns = None;
        self.veth = None;
        self.slirp = None;
        if let Some(t) = self.tmp.take() {
            match (&t, &killed) {
                // Processes of the function may still be changing its /tmp directory: leave
                // it to the next start's cleanup rather than walk a moving tree.
                (Tmp::Dir(d), Err(_)) => self.shared.warn(format!(
                    "left {} (the environment could not be killed); the next start removes it",
                    d.path.display()
                )),
                _ => {
                    if let Err(e) = t.release() {
                        first.get_or_insert(e);
                    }
                }
            }
        }
        self.shared.wake.notify_one();
        first.map_or(Ok(()), Err)
    }
}

impl Drop for Isolated {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

/// A prepared environment. Dropping it destroys it.
pub struct Prepared {
    /// The Runtime API socket, listening on [`Prepared::runtime_api_addr`] inside the
    /// environment's network namespace. Serve it with
    /// `tokio::net::TcpListener::from_std(listener.try_clone()?)` after `set_nonblocking(true)`.
    pub listener: TcpListener,
    /// Listening on each of [`SandboxConfig::service_addrs`] inside the environment's network
    /// namespace, in that order (none without isolation): the function connects to these,
    /// Sous accepts.
    pub service_listeners: Vec<TcpListener>,
    spec: EnvSandboxSpec,
    env: Option<Isolated>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("id", &self.spec.id)
            .field("isolated", &self.env.is_some())
            .finish()
    }
}

impl Prepared {
    /// The value of `AWS_LAMBDA_RUNTIME_API` as the function must see it (`127.0.0.1:9001`
    /// when isolated, the host port otherwise).
    pub fn runtime_api_addr(&self) -> SocketAddr {
        match &self.env {
            Some(_) => RUNTIME_API_ADDR,
            None => self
                .listener
                .local_addr()
                .unwrap_or(network::RUNTIME_API_ADDR),
        }
    }

    /// Whether this environment is isolated.
    pub fn is_isolated(&self) -> bool {
        self.env.is_some()
    }

    /// Where a host path under the task, runtime or layers directory appears to the function
    /// (`/var/task/...`, `/var/runtime/...`, `/opt/...`); host paths exposed as they are and,
    /// without isolation, every path map to themselves. `None`: not visible inside.
    pub fn sandbox_path(&self, host: &Path) -> Option<PathBuf> {
        if self.env.is_none() {
            return Some(host.to_path_buf());
        }
        let s = &self.spec;
        let maps = [
            (Some(&s.task_dir), "/var/task"),
            (s.runtime_dir.as_ref(), "/var/runtime"),
            (s.opt_dir.as_ref(), "/opt"),
        ];
        for (from, to) in maps {
            if let Some(rest) = from.and_then(|f| host.strip_prefix(f).ok()) {
                // `join("")` would add a trailing slash to the directory itself.
                return Some(match rest.as_os_str().is_empty() {
                    true => PathBuf::from(to),
                    false => Path::new(to).join(rest),
                });
            }
        }
        let shared_dirs = ["/usr", "/bin", "/sbin", "/lib", "/lib64"];
        let visible = s.host_paths.iter().any(|p| host.starts_with(p))
            || shared_dirs.iter().any(|d| host.starts_with(d));
        visible.then(|| host.to_path_buf())
    }

    /// Start the environment's program: `program` (a path as seen inside) with exactly
    /// `args` and `env`, in `cwd` (also inside), stdout and stderr to the given descriptors
    /// and, when given, the telemetry pipe as descriptor [`TELEMETRY_FD`]. Isolated, this
    /// claims the environment's init (one message); the returned child is the init, which
    /// exits as the program does. Without isolation it is the program itself. Either way the
    /// child is in its own process group and dies with the thread that started it (without
    /// isolation: the caller's; isolated: the sandbox pool's).
    pub fn start(&mut self, launch: Launch<'_>) -> io::Result<std::process::Child> {
        let Some(iso) = self.env.as_mut() else {
            return start_plain(launch);
        };
        let Some((child, control)) = iso.init.take() else {
            return Err(io::Error::other("environment already started"));
        };
        let mut argv = vec![launch.program.to_string_lossy().into_owned()];
        argv.extend(launch.args.iter().cloned());
        let extra = launch.extra_fds();
        let plan = init::LaunchPlan {
            mounts: iso.mounts.clone(),
            hostname: if self.spec.hostname.is_empty() {
                "localhost".into()
            } else {
                self.spec.hostname.clone()
            },
            uid: SANDBOX_UID,
            gid: SANDBOX_GID,
            nofile: NOFILE,
            program: launch.program.to_path_buf(),
            argv,
            env: launch.env.to_vec(),
            cwd: launch.cwd.to_path_buf(),
            fds: extra.iter().map(|&(_, target)| target).collect(),
            rootless: iso.shared.rootless.is_some(),
        };
        let json = serde_json::to_vec(&plan).map_err(io::Error::other)?;
        if json.len() > init::LAUNCH_PLAN_MAX {
            return Err(io::Error::other(
                "environment too large for the sandbox init",
            ));
        }
        let mut fds = vec![launch.stdout.as_raw_fd(), launch.stderr.as_raw_fd()];
        fds.extend(extra.iter().map(|&(fd, _)| fd));
        match syscalls::send_with_fds(control.as_raw_fd(), &json, &fds) {
            Ok(()) => Ok(child),
            Err(e) => {
                // The init is gone or broken: give it back for teardown.
                iso.init = Some((child, control));
                Err(io::Error::new(
                    e.kind(),
                    format!("claim the sandbox init: {e}"),
                ))
            }
        }
    }

    /// Kill every process of the environment (freeze + SIGKILL the cgroup: double forks
    /// cannot escape). A no-op without isolation.
    pub fn kill_all(&self) -> io::Result<()> {
        match &self.env {
            Some(e) => e
                .cgroup
                .kill_all()
                .map_err(|e| io::Error::other(e.to_string())),
            None => Ok(()),
        }
    }

    /// Peak memory of the environment in bytes: the cgroup's high-water mark, or the runtime's
    /// resident set (the highest seen at these calls) when that is more. The cgroup is charged
    /// only for pages first touched in it: the interpreter's code, already in the host's page
    /// cache, is not, so a Node.js hello world would report 7 MB where its process holds 40 MB
    /// (and Lambda, whose VM reads everything afresh, reports more still). Transient peaks of
    /// the function's own memory are in the cgroup's mark.
    ///
    /// Which process is the runtime (the member with the largest peak) is found at the first
    /// call; later calls read one small file: this runs on every invocation's path.
    pub fn peak_memory(&self) -> Option<u64> {
        let env = self.env.as_ref()?;
        let heaviest = env.heaviest.get_or_init(|| {
            let pids = env.cgroup.pids().into_iter();
            let heaviest = pids
                .filter_map(|pid| Some((process::peak_rss_kib(pid)?, pid)))
                .max()?;
            process::Rss::open(heaviest.1)
        });
        // The resident set counts shared pages the cgroup is not charged for; like Lambda's
        // Max Memory Used, the figure stays within the memory size.
        let rss = heaviest
            .as_ref()
            .map(|r| (r.highest_kib() * 1024).min(env.memory_bytes));
        env.cgroup.peak_memory().max(rss)
    }

    /// Whether the kernel's OOM killer killed a process of the environment.
    pub fn oom_killed(&self) -> bool {
        self.env.as_ref().is_some_and(|e| e.cgroup.oom_killed())
    }

    /// Pids (host view) of the environment's processes.
    pub fn pids(&self) -> Vec<i32> {
        self.env
            .as_ref()
            .map(|e| e.cgroup.pids())
            .unwrap_or_default()
    }

    /// Kill everything, remove the cgroup, unmount and delete the /tmp image, release the
    /// network namespace. Also done on drop.
    pub fn destroy(mut self) -> io::Result<()> {
        match self.env.as_mut() {
            Some(e) => e.teardown(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_launchs_extra_descriptors_go_to_telemetry_then_the_runtime_api_numbers() {
        let null = || OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
        let (t, a, r) = (null(), null(), null());
        let raw = [t.as_raw_fd(), a.as_raw_fd(), r.as_raw_fd()];
        let launch = Launch {
            program: Path::new("/bin/true"),
            args: &[],
            env: &[],
            cwd: Path::new("/"),
            stdout: null(),
            stderr: null(),
            telemetry: Some(t),
            runtime_api: Some([a, r]),
        };
        let targets: Vec<RawFd> = launch.extra_fds().iter().map(|&(_, n)| n).collect();
        assert_eq!(targets, [TELEMETRY_FD, 4, 5]);
        let sent: Vec<RawFd> = launch.extra_fds().iter().map(|&(fd, _)| fd).collect();
        assert_eq!(sent, raw);
        let plain = Launch {
            telemetry: None,
            runtime_api: None,
            ..launch
        };
        assert!(plain.extra_fds().is_empty());
    }

    #[test]
    fn supplementary_groups_other_than_the_own_gid_are_warned_about() {
        assert_eq!(supplementary_groups_warning(&[], 1000), None);
        assert_eq!(supplementary_groups_warning(&[1000], 1000), None);
        let w = supplementary_groups_warning(&[1000, 27, 100], 1000).unwrap();
        assert!(
            w.contains("(27, 100)") && w.contains("dedicated user"),
            "{w}"
        );
    }
}
