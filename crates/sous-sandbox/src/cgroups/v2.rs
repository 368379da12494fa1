//! cgroup v2: one unified tree (`<root>/sous/<env>`), controllers enabled down to it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{keyed, kill_listed, mkdir, read, rmdir, write, CgroupError, Limits, Result, PARENT};

/// Controllers an environment needs; `cpu` is used when available.
const REQUIRED: [&str; 2] = ["memory", "pids"];

#[derive(Debug, Clone)]
pub struct Hierarchy {
    root: PathBuf,
    has_cpu: bool,
}

impl Hierarchy {
    pub fn open(root: &Path) -> Result<Hierarchy> {
        let available = read(&root.join("cgroup.controllers"))?;
        let has = |c: &str| available.split_whitespace().any(|a| a == c);
        for c in REQUIRED {
            if !has(c) {
                return Err(CgroupError::MissingController {
                    root: root.to_path_buf(),
                    controller: c,
                    available: available.trim().to_string(),
                });
            }
        }
        Ok(Hierarchy {
            root: root.to_path_buf(),
            has_cpu: has("cpu"),
        })
    }

    /// The root and whether `cpu` is used (see [`super::HierarchySpec`]).
    pub(super) fn parts(&self) -> (&Path, bool) {
        (&self.root, self.has_cpu)
    }

    pub(super) fn from_parts(root: PathBuf, has_cpu: bool) -> Hierarchy {
        Hierarchy { root, has_cpu }
    }

    pub(super) fn parent_dir(&self) -> PathBuf {
        self.root.join(PARENT)
    }

    pub(super) fn handle(&self, name: &str) -> Cgroup {
        Cgroup {
            dir: self.parent_dir().join(name),
            has_cpu: self.has_cpu,
        }
    }

    fn enable(&self) -> String {
        let mut s = String::from("+memory +pids");
        if self.has_cpu {
            s.push_str(" +cpu");
        }
        s
    }

    pub fn create(&self, name: &str, l: &Limits) -> Result<Cgroup> {
        let parent = self.parent_dir();
        if !parent.join("cgroup.subtree_control").exists()
            || !read(&parent.join("cgroup.subtree_control"))?.contains("memory")
        {
            // Delegate the controllers down to Sous's parent, then to its children.
            write(&self.root.join("cgroup.subtree_control"), &self.enable())?;
            mkdir(&parent)?;
            write(&parent.join("cgroup.subtree_control"), &self.enable())?;
        }
        let cg = self.handle(name);
        mkdir(&cg.dir)?;
        let swap = cg.dir.join("memory.swap.max");
        if swap.exists() {
            write(&swap, "0")?;
        }
        // An OOM kill takes the whole environment, as on Lambda.
        let group = cg.dir.join("memory.oom.group");
        if group.exists() {
            write(&group, "1")?;
        }
        cg.set_limits(l)?;
        Ok(cg)
    }
}

impl Cgroup {
    /// Set (or change) the limits; members may already be running.
    pub fn set_limits(&self, l: &Limits) -> Result<()> {
        let cg = self;
        let has_cpu = cg.has_cpu;
        write(&cg.dir.join("memory.max"), &l.memory_bytes.to_string())?;
        write(&cg.dir.join("pids.max"), &l.pids_max.to_string())?;
        if has_cpu {
            write(
                &cg.dir.join("cpu.max"),
                &format!(
                    "{} {}",
                    l.cpu_quota_us.map_or("max".to_string(), |q| q.to_string()),
                    super::CPU_PERIOD_US
                ),
            )?;
            write(&cg.dir.join("cpu.weight"), &l.cpu_weight.to_string())?;
        }
        Ok(())
    }
}

#[derive(Debug)]
pub struct Cgroup {
    dir: PathBuf,
    /// The cpu controller is enabled for it.
    has_cpu: bool,
}

impl Cgroup {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `cgroup.kill` (Linux 5.14+) when present; otherwise freeze, SIGKILL, thaw.
    pub fn kill_all(&self) -> Result<()> {
        if !self.dir.is_dir() {
            return Ok(());
        }
        let procs = self.dir.join("cgroup.procs");
        let kill = self.dir.join("cgroup.kill");
        if kill.exists() {
            write(&kill, "1")?;
            return kill_listed(&procs);
        }
        let freeze = self.dir.join("cgroup.freeze");
        write(&freeze, "1")?;
        let start = Instant::now();
        while keyed(
            &read(&self.dir.join("cgroup.events")).unwrap_or_default(),
            "frozen",
        ) == Some(0)
            && start.elapsed() < Duration::from_secs(1)
        {
            std::thread::sleep(Duration::from_micros(200));
        }
        for pid in super::read_pids(&procs) {
            let _ = crate::syscalls::kill(pid, libc::SIGKILL);
        }
        write(&freeze, "0")?;
        kill_listed(&procs)
    }

    pub fn peak_memory(&self) -> Option<u64> {
        read(&self.dir.join("memory.peak"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    pub fn oom_killed(&self) -> bool {
        read(&self.dir.join("memory.events"))
            .ok()
            .and_then(|t| keyed(&t, "oom_kill"))
            .is_some_and(|n| n > 0)
    }

    pub fn remove(&self) -> Result<()> {
        rmdir(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{detect, limits_for, Cgroup as Any, Version};

    fn fake_root() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(
            t.path().join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        t
    }

    #[test]
    fn enables_controllers_and_writes_limits() {
        let t = fake_root();
        let h = detect(t.path()).unwrap();
        assert_eq!(h.version(), Version::V2);
        let cg = h.create("env-9", &limits_for(1769, 4, true)).unwrap();
        let rd = |p: &str| std::fs::read_to_string(t.path().join(p)).unwrap();
        assert_eq!(rd("cgroup.subtree_control"), "+memory +pids +cpu");
        assert_eq!(rd("sous/cgroup.subtree_control"), "+memory +pids +cpu");
        assert_eq!(rd("sous/env-9/memory.max"), (1769u64 << 20).to_string());
        assert_eq!(rd("sous/env-9/pids.max"), "1024");
        assert_eq!(rd("sous/env-9/cpu.max"), "100000 100000");
        assert_eq!(rd("sous/env-9/cpu.weight"), "100");
        assert_eq!(
            cg.procs_files(),
            vec![t.path().join("sous/env-9/cgroup.procs")]
        );
        assert_eq!(h.existing(), vec!["env-9".to_string()]);
    }

    #[test]
    fn kill_uses_cgroup_kill_when_present_and_reads_peak_and_oom() {
        let t = fake_root();
        let h = detect(t.path()).unwrap();
        let cg = h.create("e", &limits_for(128, 2, true)).unwrap();
        let d = t.path().join("sous/e");
        std::fs::write(d.join("cgroup.kill"), "").unwrap();
        cg.kill_all().unwrap();
        assert_eq!(std::fs::read_to_string(d.join("cgroup.kill")).unwrap(), "1");
        std::fs::write(d.join("memory.peak"), "123456\n").unwrap();
        std::fs::write(
            d.join("memory.events"),
            "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n",
        )
        .unwrap();
        assert_eq!(cg.peak_memory(), Some(123456));
        assert!(cg.oom_killed());
        let Any::V2(inner) = &cg else { panic!() };
        assert_eq!(inner.dir(), d);
        cg.remove().unwrap();
        assert!(!d.exists());
    }

    #[test]
    fn kill_falls_back_to_freezing() {
        let t = fake_root();
        let cg = detect(t.path())
            .unwrap()
            .create("e", &limits_for(128, 2, true))
            .unwrap();
        cg.kill_all().unwrap();
        assert_eq!(
            std::fs::read_to_string(t.path().join("sous/e/cgroup.freeze")).unwrap(),
            "0"
        );
    }
}
