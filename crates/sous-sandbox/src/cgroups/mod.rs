//! Resource control of execution environments through cgroups, v1 or v2 (detected at start).
//!
//! Every environment gets a cgroup named `sous/<env>` (in each v1 controller hierarchy, or in
//! the v2 tree) with: a memory limit of MemorySize and no swap, a CPU quota and weight
//! proportional to memory as Lambda does (1,769 MB = one vCPU, capped by the host's cores), and
//! a pids limit. The environment's processes join it before they fork, so [`Cgroup::kill_all`]
//! (freeze, then SIGKILL every member) reaches double-forked descendants too.
//!
//! The hierarchy root is a parameter (`/sys/fs/cgroup` in production), so this module is
//! tested on a temporary directory without root.

pub mod delegated;
pub mod v1;
pub mod v2;

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Name of Sous's parent cgroup under the hierarchy root.
pub const PARENT: &str = "sous";

/// Memory (MB) that buys one full vCPU on Lambda.
pub const MB_PER_VCPU: u64 = 1769;

/// Lambda's limit on processes and threads per execution environment.
pub const PIDS_MAX: u64 = 1024;

/// CFS period used for the CPU quota (µs).
pub const CPU_PERIOD_US: u64 = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error(
        "no usable cgroup hierarchy under {0}: need cgroup v2 (cgroup.controllers) or cgroup v1 \
         memory, pids and freezer controllers"
    )]
    NotFound(PathBuf),
    #[error("cgroup v2 at {root} lacks the {controller} controller (available: {available:?})")]
    MissingController {
        root: PathBuf,
        controller: &'static str,
        available: String,
    },
    /// Rootless: no cgroup tree the user may manage (see [`delegated`]).
    #[error("no delegated cgroup tree with a memory controller: {0}. To fix: {how}", how = delegated::HOW_TO_DELEGATE)]
    NotDelegated(String),
    #[error("create cgroup {path}: {err}")]
    Create { path: PathBuf, err: io::Error },
    #[error("write {value:?} to {path}: {err}")]
    Write {
        path: PathBuf,
        value: String,
        err: io::Error,
    },
    #[error("read {path}: {err}")]
    Read { path: PathBuf, err: io::Error },
    #[error("remove cgroup {path}: {err}")]
    Remove { path: PathBuf, err: io::Error },
    #[error("processes of {path} still alive after {waited:?}")]
    KillTimeout { path: PathBuf, waited: Duration },
}

pub type Result<T> = std::result::Result<T, CgroupError>;

/// Resource limits of one environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: u64,
    /// CFS quota per period (µs; the period is [`CPU_PERIOD_US`]); `None`: no cap.
    pub cpu_quota_us: Option<u64>,
    /// v1 `cpu.shares` (1024 = one vCPU).
    pub cpu_shares: u64,
    /// v2 `cpu.weight` (100 = one vCPU, 1..=10000).
    pub cpu_weight: u64,
    pub pids_max: u64,
}

/// Lambda's allocation: CPU proportional to memory, one vCPU per 1,769 MB, capped by the
/// host's cores (and never below 1% of a core) — as a hard quota when `cap`, else only as a
/// weight.
pub fn limits_for(memory_mb: u64, host_cpus: u64, cap: bool) -> Limits {
    let host_cpus = host_cpus.max(1);
    let quota = (memory_mb * CPU_PERIOD_US / MB_PER_VCPU)
        .clamp(CPU_PERIOD_US / 100, host_cpus * CPU_PERIOD_US);
    Limits {
        memory_bytes: memory_mb * 1024 * 1024,
        cpu_quota_us: cap.then_some(quota),
        cpu_shares: (memory_mb * 1024 / MB_PER_VCPU).clamp(2, 262_144),
        cpu_weight: (memory_mb * 100 / MB_PER_VCPU).clamp(1, 10_000),
        pids_max: PIDS_MAX,
    }
}

/// Which cgroup version a host offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// The cgroup hierarchy Sous manages environments in.
#[derive(Debug, Clone)]
pub enum Hierarchy {
    V1(v1::Hierarchy),
    V2(v2::Hierarchy),
}

/// Detect the cgroup version at `root` (normally `/sys/fs/cgroup`): v2 when `root` is a
/// cgroup2 mount (has `cgroup.controllers`), v1 when it holds per-controller hierarchies.
pub fn detect(root: &Path) -> Result<Hierarchy> {
    if root.join("cgroup.controllers").is_file() {
        return Ok(Hierarchy::V2(v2::Hierarchy::open(root)?));
    }
    if ["memory", "pids", "freezer"]
        .iter()
        .all(|c| root.join(c).is_dir())
    {
        return Ok(Hierarchy::V1(v1::Hierarchy::open(root)));
    }
    Err(CgroupError::NotFound(root.to_path_buf()))
}

impl Hierarchy {
    pub fn version(&self) -> Version {
        match self {
            Hierarchy::V1(_) => Version::V1,
            Hierarchy::V2(_) => Version::V2,
        }
    }

    /// Create the cgroup of environment `name` with `limits`.
    pub fn create(&self, name: &str, limits: &Limits) -> Result<Cgroup> {
        match self {
            Hierarchy::V1(h) => h.create(name, limits).map(Cgroup::V1),
            Hierarchy::V2(h) => h.create(name, limits).map(Cgroup::V2),
        }
    }

    /// Names of the environment cgroups that exist under Sous's parent (leftovers of a
    /// crashed run when called at start).
    pub fn existing(&self) -> Vec<String> {
        let dir = match self {
            Hierarchy::V1(h) => h.parent_dir("freezer"),
            Hierarchy::V2(h) => h.parent_dir(),
        };
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        if let Hierarchy::V1(h) = self {
            for (c, _) in h.bases() {
                for e in std::fs::read_dir(h.parent_dir(c))
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    if let Ok(n) = e.file_name().into_string() {
                        if e.path().is_dir() && !names.contains(&n) {
                            names.push(n);
                        }
                    }
                }
            }
        }
        names
    }

    /// Handle on an existing environment cgroup (for cleanup).
    pub fn open_existing(&self, name: &str) -> Cgroup {
        match self {
            Hierarchy::V1(h) => Cgroup::V1(h.handle(name)),
            Hierarchy::V2(h) => Cgroup::V2(h.handle(name)),
        }
    }
}

/// A [`Hierarchy`] as data, for the watcher process (see [`crate::forced_stop`]), which
/// finds the same cgroups again without detecting (rootless detection moves the caller).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HierarchySpec {
    /// Per controller, its base directory.
    V1 {
        bases: Vec<(String, PathBuf)>,
    },
    V2 {
        root: PathBuf,
        has_cpu: bool,
    },
}

impl Hierarchy {
    pub fn spec(&self) -> HierarchySpec {
        match self {
            Hierarchy::V1(h) => HierarchySpec::V1 {
                bases: h
                    .bases()
                    .iter()
                    .map(|(c, b)| (c.to_string(), b.clone()))
                    .collect(),
            },
            Hierarchy::V2(h) => {
                let (root, has_cpu) = h.parts();
                HierarchySpec::V2 {
                    root: root.to_path_buf(),
                    has_cpu,
                }
            }
        }
    }
}

impl HierarchySpec {
    /// The hierarchy again (v1 controllers Sous does not know are left out).
    pub fn hierarchy(&self) -> Hierarchy {
        match self {
            HierarchySpec::V1 { bases } => Hierarchy::V1(v1::Hierarchy::from_bases(
                bases
                    .iter()
                    .filter_map(|(c, b)| {
                        let known = v1::CONTROLLERS.iter().find(|k| **k == c.as_str())?;
                        Some((*known, b.clone()))
                    })
                    .collect(),
            )),
            HierarchySpec::V2 { root, has_cpu } => {
                Hierarchy::V2(v2::Hierarchy::from_parts(root.clone(), *has_cpu))
            }
        }
    }
}

/// One environment's cgroup.
#[derive(Debug)]
pub enum Cgroup {
    V1(v1::Cgroup),
    V2(v2::Cgroup),
}

impl Cgroup {
    /// The `cgroup.procs` files a process writes itself into to join (one per v1 controller).
    pub fn procs_files(&self) -> Vec<PathBuf> {
        match self {
            Cgroup::V1(c) => c.procs_files(),
            Cgroup::V2(c) => vec![c.dir().join("cgroup.procs")],
        }
    }

    /// Pids of the members.
    pub fn pids(&self) -> Vec<i32> {
        let f = match self {
            Cgroup::V1(c) => c.dir("freezer").join("cgroup.procs"),
            Cgroup::V2(c) => c.dir().join("cgroup.procs"),
        };
        read_pids(&f)
    }

    /// Set (or change) the limits; members may already be running.
    pub fn set_limits(&self, limits: &Limits) -> Result<()> {
        match self {
            Cgroup::V1(c) => c.set_limits(limits),
            Cgroup::V2(c) => c.set_limits(limits),
        }
    }

    /// Kill every member (freeze first, so none can fork away meanwhile) and wait until the
    /// cgroup is empty.
    pub fn kill_all(&self) -> Result<()> {
        match self {
            Cgroup::V1(c) => c.kill_all(),
            Cgroup::V2(c) => c.kill_all(),
        }
    }

    /// Peak memory use in bytes since creation.
    pub fn peak_memory(&self) -> Option<u64> {
        match self {
            Cgroup::V1(c) => c.peak_memory(),
            Cgroup::V2(c) => c.peak_memory(),
        }
    }

    /// Whether the kernel's OOM killer killed a member.
    pub fn oom_killed(&self) -> bool {
        match self {
            Cgroup::V1(c) => c.oom_killed(),
            Cgroup::V2(c) => c.oom_killed(),
        }
    }

    /// Kill the members and remove the cgroup.
    pub fn remove(&self) -> Result<()> {
        self.kill_all()?;
        match self {
            Cgroup::V1(c) => c.remove(),
            Cgroup::V2(c) => c.remove(),
        }
    }
}

/// The mount point of the host's cgroup2 hierarchy (the v2 root, or `unified` on hybrid v1
/// hosts) and whether it already has `favordynmods`, from `/proc/self/mountinfo`.
pub fn cgroup2_mount() -> Option<(PathBuf, bool)> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let mut r = right.split_whitespace();
        (r.next()? == "cgroup2").then_some(())?;
        let super_opts = r.nth(1).unwrap_or("");
        let mp = left.split_whitespace().nth(4)?;
        Some((
            PathBuf::from(mp),
            super_opts.split(',').any(|o| o == "favordynmods"),
        ))
    })
}

/// Enable `favordynmods` on the host's cgroup2 hierarchy (see `SandboxConfig::favor_dynmods`).
/// `mount -o remount` keeps the mount's other options.
pub fn favor_dynmods() -> io::Result<()> {
    let Some((mp, already)) = cgroup2_mount() else {
        return Err(io::Error::other("no cgroup2 mount"));
    };
    if already {
        return Ok(());
    }
    let out = std::process::Command::new("mount")
        .args(["-o", "remount,favordynmods"])
        .arg(&mp)
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("run mount: {e}")))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "mount -o remount,favordynmods {}: {}",
            mp.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

pub(crate) fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|err| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        err,
    })
}

pub(crate) fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|err| CgroupError::Read {
        path: path.to_path_buf(),
        err,
    })
}

pub(crate) fn mkdir(path: &Path) -> Result<()> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(CgroupError::Create {
            path: path.to_path_buf(),
            err,
        }),
    }
}

/// rmdir a cgroup directory, retrying briefly while the kernel finishes exiting members.
pub(crate) fn rmdir(path: &Path) -> Result<()> {
    let start = Instant::now();
    loop {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            // A regular directory (tests) still holding the control files we wrote.
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => {
                return std::fs::remove_dir_all(path).map_err(|err| CgroupError::Remove {
                    path: path.to_path_buf(),
                    err,
                })
            }
            Err(err) if start.elapsed() > Duration::from_secs(2) => {
                return Err(CgroupError::Remove {
                    path: path.to_path_buf(),
                    err,
                })
            }
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

pub(crate) fn read_pids(path: &Path) -> Vec<i32> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// SIGKILL each pid listed in `procs` until the file is empty (bounded wait).
pub(crate) fn kill_listed(procs: &Path) -> Result<()> {
    let start = Instant::now();
    loop {
        let pids = read_pids(procs);
        if pids.is_empty() {
            return Ok(());
        }
        for pid in pids {
            // A member that exited meanwhile is fine.
            let _ = crate::syscalls::kill(pid, libc::SIGKILL);
        }
        if start.elapsed() > Duration::from_secs(5) {
            return Err(CgroupError::KillTimeout {
                path: procs.to_path_buf(),
                waited: start.elapsed(),
            });
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// `key N` from a flat keyed file such as `memory.events` or `memory.oom_control`.
pub(crate) fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key))
            .then(|| it.next()?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_proportional_to_memory_and_capped_by_the_host() {
        let l = limits_for(1769, 8, true);
        assert_eq!(l.cpu_quota_us, Some(CPU_PERIOD_US));
        assert_eq!(l.cpu_shares, 1024);
        assert_eq!(l.cpu_weight, 100);
        assert_eq!(l.memory_bytes, 1769 * 1024 * 1024);
        assert_eq!(
            limits_for(128, 8, true).cpu_quota_us,
            Some(128 * CPU_PERIOD_US / 1769)
        );
        assert_eq!(limits_for(128, 8, false).cpu_quota_us, None);
        // 10 GB would be ~5.8 vCPUs; a 2-core host caps it at 2.
        assert_eq!(
            limits_for(10240, 2, true).cpu_quota_us,
            Some(2 * CPU_PERIOD_US)
        );
        assert_eq!(limits_for(128, 2, true).pids_max, PIDS_MAX);
    }

    #[test]
    fn detection_picks_v2_v1_or_refuses() {
        let t = tempfile::tempdir().unwrap();
        assert!(matches!(detect(t.path()), Err(CgroupError::NotFound(_))));
        for c in ["memory", "pids", "freezer", "cpu"] {
            std::fs::create_dir(t.path().join(c)).unwrap();
        }
        assert_eq!(detect(t.path()).unwrap().version(), Version::V1);

        let t2 = tempfile::tempdir().unwrap();
        std::fs::write(t2.path().join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        assert_eq!(detect(t2.path()).unwrap().version(), Version::V2);
        std::fs::write(t2.path().join("cgroup.controllers"), "cpu\n").unwrap();
        assert!(matches!(
            detect(t2.path()),
            Err(CgroupError::MissingController { .. })
        ));
    }

    #[test]
    fn keyed_files_parse() {
        let t = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed(t, "oom_kill"), Some(3));
        assert_eq!(keyed(t, "missing"), None);
    }
}
