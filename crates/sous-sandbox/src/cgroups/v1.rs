//! cgroup v1: one directory per controller (`<root>/<controller>/sous/<env>`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{keyed, kill_listed, mkdir, read, rmdir, write, CgroupError, Limits, Result, PARENT};

/// The controllers an environment joins. `cpu` is optional (some hosts mount it as
/// `cpu,cpuacct`, found through the usual `cpu` symlink).
pub const CONTROLLERS: [&str; 4] = ["memory", "pids", "freezer", "cpu"];

/// The controllers an environment cannot do without.
pub const REQUIRED: [&str; 3] = ["memory", "pids", "freezer"];

#[derive(Debug, Clone)]
pub struct Hierarchy {
    /// Per controller, the directory under which Sous's parent cgroup is made: the
    /// controller's mount point as root, a delegated cgroup rootless.
    bases: Vec<(&'static str, PathBuf)>,
}

impl Hierarchy {
    /// The hierarchies mounted under `root` (`<root>/<controller>`).
    pub fn open(root: &Path) -> Hierarchy {
        Hierarchy {
            bases: CONTROLLERS
                .iter()
                .filter(|c| **c != "cpu" || root.join("cpu").is_dir())
                .map(|c| (*c, root.join(c)))
                .collect(),
        }
    }

    /// Explicit base directories, one per controller ([`REQUIRED`] and optionally `cpu`).
    pub fn from_bases(bases: Vec<(&'static str, PathBuf)>) -> Hierarchy {
        Hierarchy { bases }
    }

    /// The base directory of each controller in use.
    pub fn bases(&self) -> &[(&'static str, PathBuf)] {
        &self.bases
    }

    pub(super) fn parent_dir(&self, controller: &str) -> PathBuf {
        self.bases
            .iter()
            .find(|(c, _)| *c == controller)
            .map(|(_, b)| b.join(PARENT))
            .unwrap_or_default()
    }

    fn controllers(&self) -> Vec<&'static str> {
        self.bases.iter().map(|(c, _)| *c).collect()
    }

    pub(super) fn handle(&self, name: &str) -> Cgroup {
        Cgroup {
            dirs: self
                .controllers()
                .into_iter()
                .map(|c| (c, self.parent_dir(c).join(name)))
                .collect(),
        }
    }

    pub fn create(&self, name: &str, l: &Limits) -> Result<Cgroup> {
        let cg = self.handle(name);
        for (c, dir) in &cg.dirs {
            mkdir(&self.parent_dir(c))?;
            mkdir(dir)?;
        }
        let swappiness = cg.dir("memory").join("memory.swappiness");
        if swappiness.exists() {
            write(&swappiness, "0")?;
        }
        cg.set_limits(l)?;
        Ok(cg)
    }
}

impl Cgroup {
    /// Set (or change) the limits; members may already be running.
    pub fn set_limits(&self, l: &Limits) -> Result<()> {
        let cg = self;
        let has_cpu = self.dirs.iter().any(|(c, _)| *c == "cpu");
        let mem = cg.dir("memory");
        let limit = mem.join("memory.limit_in_bytes");
        let value = l.memory_bytes.to_string();
        // memory+swap = memory: no swap. Present only with swap accounting. The kernel keeps
        // memory ≤ memory+swap at every moment, so a raise writes memory+swap first and a
        // cut writes it last.
        let memsw = mem.join("memory.memsw.limit_in_bytes");
        if memsw.exists() {
            if write(&memsw, &value).is_ok() {
                write(&limit, &value)?;
            } else {
                write(&limit, &value)?;
                write(&memsw, &value)?;
            }
        } else {
            write(&limit, &value)?;
        }
        write(&cg.dir("pids").join("pids.max"), &l.pids_max.to_string())?;
        if has_cpu {
            let cpu = cg.dir("cpu");
            write(
                &cpu.join("cpu.cfs_period_us"),
                &super::CPU_PERIOD_US.to_string(),
            )?;
            let quota = l.cpu_quota_us.map_or("-1".to_string(), |q| q.to_string());
            write(&cpu.join("cpu.cfs_quota_us"), &quota)?;
            write(&cpu.join("cpu.shares"), &l.cpu_shares.to_string())?;
        }
        Ok(())
    }
}

#[derive(Debug)]
pub struct Cgroup {
    dirs: Vec<(&'static str, PathBuf)>,
}

impl Cgroup {
    pub fn dir(&self, controller: &str) -> PathBuf {
        self.dirs
            .iter()
            .find(|(c, _)| *c == controller)
            .map(|(_, d)| d.clone())
            .unwrap_or_default()
    }

    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .map(|(_, d)| d.join("cgroup.procs"))
            .collect()
    }

    /// Freeze, SIGKILL every member, thaw (the kills land), wait until empty.
    pub fn kill_all(&self) -> Result<()> {
        let fz = self.dir("freezer");
        if !fz.is_dir() {
            return Ok(());
        }
        let state = fz.join("freezer.state");
        write(&state, "FROZEN")?;
        let start = Instant::now();
        while read(&state)?.trim() != "FROZEN" && start.elapsed() < Duration::from_secs(1) {
            std::thread::sleep(Duration::from_micros(200));
        }
        let procs = fz.join("cgroup.procs");
        for pid in super::read_pids(&procs) {
            let _ = crate::syscalls::kill(pid, libc::SIGKILL);
        }
        write(&state, "THAWED")?;
        kill_listed(&procs)
    }

    pub fn peak_memory(&self) -> Option<u64> {
        read(&self.dir("memory").join("memory.max_usage_in_bytes"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    pub fn oom_killed(&self) -> bool {
        let mem = self.dir("memory");
        match read(&mem.join("memory.oom_control")) {
            Ok(t) if keyed(&t, "oom_kill").is_some() => keyed(&t, "oom_kill") > Some(0),
            // Kernels before 4.13 do not count OOM kills; a hit limit is the best hint.
            _ => read(&mem.join("memory.failcnt"))
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .is_some_and(|n| n > 0),
        }
    }

    pub fn remove(&self) -> Result<()> {
        let mut first: Option<CgroupError> = None;
        for (_, d) in &self.dirs {
            if let Err(e) = rmdir(d) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{detect, limits_for, Hierarchy as H};
    use super::*;

    fn fake_root() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for c in CONTROLLERS {
            std::fs::create_dir(t.path().join(c)).unwrap();
        }
        t
    }

    #[test]
    fn creates_limits_in_each_controller() {
        let t = fake_root();
        let h = detect(t.path()).unwrap();
        let cg = h.create("env-1", &limits_for(128, 2, true)).unwrap();
        let r = t.path();
        let rd = |p: &str| std::fs::read_to_string(r.join(p)).unwrap();
        assert_eq!(rd("memory/sous/env-1/memory.limit_in_bytes"), "134217728");
        assert_eq!(rd("pids/sous/env-1/pids.max"), "1024");
        assert_eq!(rd("cpu/sous/env-1/cpu.cfs_quota_us"), "7235");
        assert_eq!(rd("cpu/sous/env-1/cpu.cfs_period_us"), "100000");
        assert_eq!(cg.procs_files().len(), 4);
        assert!(cg
            .procs_files()
            .contains(&r.join("freezer/sous/env-1/cgroup.procs")));
        assert_eq!(h.existing(), vec!["env-1".to_string()]);
    }

    #[test]
    fn swap_is_limited_when_accounted() {
        let t = fake_root();
        std::fs::create_dir_all(t.path().join("memory/sous/e")).unwrap();
        std::fs::write(
            t.path().join("memory/sous/e/memory.memsw.limit_in_bytes"),
            "",
        )
        .unwrap();
        let h = Hierarchy::open(t.path());
        h.create("e", &limits_for(256, 2, true)).unwrap();
        assert_eq!(
            std::fs::read_to_string(t.path().join("memory/sous/e/memory.memsw.limit_in_bytes"))
                .unwrap(),
            (256u64 << 20).to_string()
        );
    }

    #[test]
    fn kill_all_freezes_then_thaws_and_remove_deletes() {
        let t = fake_root();
        let h = H::V1(Hierarchy::open(t.path()));
        let cg = h.create("e", &limits_for(128, 2, true)).unwrap();
        cg.kill_all().unwrap();
        assert_eq!(
            std::fs::read_to_string(t.path().join("freezer/sous/e/freezer.state")).unwrap(),
            "THAWED"
        );
        cg.remove().unwrap();
        assert!(!t.path().join("memory/sous/e").exists());
        assert!(h.existing().is_empty());
    }

    #[test]
    fn peak_and_oom_are_read_from_memory_files() {
        let t = fake_root();
        let h = Hierarchy::open(t.path());
        let cg = h.create("e", &limits_for(128, 2, true)).unwrap();
        let m = t.path().join("memory/sous/e");
        assert_eq!(cg.peak_memory(), None);
        assert!(!cg.oom_killed());
        std::fs::write(m.join("memory.max_usage_in_bytes"), "4096\n").unwrap();
        std::fs::write(
            m.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        )
        .unwrap();
        assert_eq!(cg.peak_memory(), Some(4096));
        assert!(cg.oom_killed());
    }

    #[test]
    fn a_host_without_cpu_controller_still_works() {
        let t = tempfile::tempdir().unwrap();
        for c in ["memory", "pids", "freezer"] {
            std::fs::create_dir(t.path().join(c)).unwrap();
        }
        let cg = detect(t.path())
            .unwrap()
            .create("e", &limits_for(128, 1, true))
            .unwrap();
        assert_eq!(cg.procs_files().len(), 3);
    }
}
