//! Rootless: finding a cgroup tree Sous may manage without root (a *delegated* one).
//!
//! An unprivileged user can create child cgroups, write their limits and move its own
//! processes between them only in a tree it owns:
//!
//! * **cgroup v2**: the cgroup Sous runs in (the `0::/...` line of `/proc/self/cgroup`), as
//!   `systemd-run --user -p Delegate=yes` makes one, or the directory given as `--cgroup-root`.
//!   Controllers can be enabled for children only in a cgroup without processes, so when the
//!   tree is Sous's own cgroup, Sous first moves itself into a leaf of it ([`LEAF`]).
//! * **cgroup v1**: per controller, the cgroup Sous runs in (one line of `/proc/self/cgroup`
//!   each, under that controller's mount), when its directory was chown'ed to Sous's user, or
//!   `<--cgroup-root>/<controller>` as with root.
//!
//! A tree is usable when the memory, pids (and, v1, freezer) controllers are there and the
//! user can write it; `cpu` is used when it is delegated too. The inputs are text and a
//! permission check, so the rules are unit-tested on temporary directories.

use std::path::{Path, PathBuf};

use super::{v1, v2, CgroupError, Hierarchy, Result};

/// The leaf of a delegated v2 cgroup that Sous moves itself into, so that the cgroup, now
/// without processes, may enable controllers for the environments' cgroups.
pub const LEAF: &str = "sous-serve";

/// What detection looks at.
pub struct HostView<'a> {
    /// `/proc/self/cgroup`.
    pub self_cgroup: &'a str,
    /// `/proc/self/mountinfo`.
    pub mountinfo: &'a str,
    /// Whether the calling user may create cgroups in a directory and write its files
    /// (`access(W_OK)` on the directory and on `file` inside it when given).
    pub writable: &'a dyn Fn(&Path) -> bool,
}

/// A delegated tree found by [`detect`].
#[derive(Debug, Clone)]
pub struct Delegated {
    pub hierarchy: Hierarchy,
    /// v2 when the tree is Sous's own cgroup: the leaf Sous must move into first.
    pub move_into: Option<PathBuf>,
}

/// The real host: `/proc/self/*` and `access(2)` through the real permission check.
pub fn detect_on_host(explicit_root: Option<&Path>) -> Result<Delegated> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let (cg, mi) = (read("/proc/self/cgroup"), read("/proc/self/mountinfo"));
    let writable = |p: &Path| crate::syscalls::may_write(p);
    detect(
        explicit_root,
        &HostView {
            self_cgroup: &cg,
            mountinfo: &mi,
            writable: &writable,
        },
    )
}

/// Find the delegated tree (see the module docs). `explicit_root` is `--cgroup-root`.
pub fn detect(explicit_root: Option<&Path>, host: &HostView<'_>) -> Result<Delegated> {
    let mounts = cgroup_mounts(host.mountinfo);
    let own = own_cgroups(host.self_cgroup, &mounts);
    if let Some(root) = explicit_root {
        return explicit(root, &own, host);
    }
    // Where the memory controller is decides the version (hybrid hosts have v1 controllers
    // beside an empty cgroup2 tree).
    if own.v1.iter().any(|(c, _)| c == "memory") {
        let mut bases = Vec::new();
        let mut problems = Vec::new();
        for c in v1::CONTROLLERS {
            match own.v1.iter().find(|(have, _)| have == c) {
                Some((_, dir)) if (host.writable)(dir) => {
                    bases.push((c, dir.clone()));
                }
                Some((_, dir)) => problems.push(format!("{c}: {} is not writable", dir.display())),
                None => problems.push(format!("{c}: not mounted")),
            }
        }
        if v1::REQUIRED
            .iter()
            .all(|r| bases.iter().any(|(c, _)| c == r))
        {
            return Ok(Delegated {
                hierarchy: Hierarchy::V1(v1::Hierarchy::from_bases(bases)),
                move_into: None,
            });
        }
        return Err(not_delegated(format!(
            "cgroup v1: the cgroups this process runs in are not delegated to its user ({})",
            problems.join("; ")
        )));
    }
    match &own.v2 {
        Some(dir) => {
            let h = v2_usable(dir, host)?;
            Ok(Delegated {
                hierarchy: h,
                move_into: Some(dir.join(LEAF)),
            })
        }
        None => Err(not_delegated(
            "no cgroup v1 memory controller and no cgroup2 mount found".into(),
        )),
    }
}

fn explicit(root: &Path, own: &Own, host: &HostView<'_>) -> Result<Delegated> {
    if root.join("cgroup.controllers").is_file() {
        let h = v2_usable(root, host)?;
        // Sous's own cgroup given explicitly: it must leave it for a leaf, as above.
        let move_into = own
            .v2
            .as_deref()
            .filter(|d| same_dir(d, root))
            .map(|d| d.join(LEAF));
        return Ok(Delegated {
            hierarchy: h,
            move_into,
        });
    }
    if v1::REQUIRED.iter().all(|c| root.join(c).is_dir()) {
        let h = v1::Hierarchy::open(root);
        let bad: Vec<String> = h
            .bases()
            .iter()
            .filter(|(c, d)| v1::REQUIRED.contains(c) && !(host.writable)(d))
            .map(|(_, d)| d.display().to_string())
            .collect();
        if !bad.is_empty() {
            return Err(not_delegated(format!(
                "--cgroup-root {}: not writable by this user: {}",
                root.display(),
                bad.join(", ")
            )));
        }
        // An optional cpu hierarchy that is not delegated is left out.
        let bases = h
            .bases()
            .iter()
            .filter(|(c, d)| *c != "cpu" || (host.writable)(d))
            .cloned()
            .collect();
        return Ok(Delegated {
            hierarchy: Hierarchy::V1(v1::Hierarchy::from_bases(bases)),
            move_into: None,
        });
    }
    Err(not_delegated(format!(
        "--cgroup-root {} is neither a cgroup2 directory (cgroup.controllers) nor a directory \
         of cgroup v1 controllers (memory, pids, freezer)",
        root.display()
    )))
}

/// A v2 cgroup the user can manage: memory and pids available, the directory and its
/// `cgroup.procs` and `cgroup.subtree_control` writable.
fn v2_usable(dir: &Path, host: &HostView<'_>) -> Result<Hierarchy> {
    let h = v2::Hierarchy::open(dir).map_err(|e| not_delegated(e.to_string()))?;
    for f in ["", "cgroup.procs", "cgroup.subtree_control"] {
        let p = dir.join(f);
        if !(host.writable)(&p) {
            return Err(not_delegated(format!(
                "cgroup v2: {} is not writable by this user",
                p.display()
            )));
        }
    }
    Ok(Hierarchy::V2(h))
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

fn not_delegated(why: String) -> CgroupError {
    CgroupError::NotDelegated(why)
}

/// The advice shown when no delegated tree is found.
pub const HOW_TO_DELEGATE: &str = "\
delegate a cgroup tree to this user: on cgroup v2, start Sous in a unit with Delegate=yes \
(e.g. `systemd-run --user -p Delegate=yes -t sous serve ...`) or pass --cgroup-root with a \
cgroup2 directory this user owns; on cgroup v1, as root create a cgroup in each of the \
memory, pids, freezer (and cpu) hierarchies, chown it and its files to this user, and start \
Sous in them (or pass --cgroup-root with a directory holding them); or pass --isolation none";

/// A cgroup mount of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    /// v1: the controllers (and `name=` of named hierarchies); v2: empty.
    controllers: Vec<String>,
    v2: bool,
    /// The cgroup path at the mount's root (field 4; `/` unless bind-mounted from inside).
    root: String,
    point: PathBuf,
}

fn cgroup_mounts(mountinfo: &str) -> Vec<Mount> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let mut r = right.split_whitespace();
            let fstype = r.next()?;
            let super_opts = r.nth(1).unwrap_or("");
            let mut f = left.split_whitespace();
            let root = f.nth(3)?.to_string();
            let point = PathBuf::from(f.next()?);
            match fstype {
                "cgroup2" => Some(Mount {
                    controllers: Vec::new(),
                    v2: true,
                    root,
                    point,
                }),
                "cgroup" => Some(Mount {
                    controllers: super_opts
                        .split(',')
                        .filter(|o| !matches!(*o, "rw" | "ro"))
                        .map(str::to_string)
                        .collect(),
                    v2: false,
                    root,
                    point,
                }),
                _ => None,
            }
        })
        .collect()
}

/// The directories of the cgroups this process is in.
#[derive(Debug, Default)]
struct Own {
    /// v1: (controller, directory).
    v1: Vec<(String, PathBuf)>,
    v2: Option<PathBuf>,
}

fn own_cgroups(self_cgroup: &str, mounts: &[Mount]) -> Own {
    let mut own = Own::default();
    let place = |m: &Mount, path: &str| -> Option<PathBuf> {
        // The path is relative to the hierarchy's root; the mount shows `m.root` of it.
        let rel = Path::new(path).strip_prefix(&m.root).ok()?;
        Some(m.point.join(rel))
    };
    for line in self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if ctrls.is_empty() {
            if let Some(dir) = mounts.iter().find(|m| m.v2).and_then(|m| place(m, path)) {
                own.v2 = Some(dir);
            }
            continue;
        }
        for c in ctrls.split(',') {
            let m = mounts
                .iter()
                .find(|m| !m.v2 && m.controllers.iter().any(|x| x == c));
            if let Some(dir) = m.and_then(|m| place(m, path)) {
                own.v1.push((c.to_string(), dir));
            }
        }
    }
    own
}

/// Move the calling process into the v2 cgroup `leaf` (made if missing).
pub fn enter_leaf(leaf: &Path) -> Result<()> {
    super::mkdir(leaf)?;
    super::write(&leaf.join("cgroup.procs"), "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,favordynmods
";

    const SELF_V1: &str = "\
9:name=systemd:/
8:pids:/sous-rl
6:freezer:/sous-rl
4:memory:/sous-rl
1:cpu:/
0::/
";

    fn view<'a>(cg: &'a str, mi: &'a str, w: &'a dyn Fn(&Path) -> bool) -> HostView<'a> {
        HostView {
            self_cgroup: cg,
            mountinfo: mi,
            writable: w,
        }
    }

    #[test]
    fn v1_uses_the_processs_own_cgroups_when_chowned_to_it() {
        // memory, pids, freezer delegated; cpu (the root cgroup) is not: used without it.
        let w = |p: &Path| p.ends_with("sous-rl");
        let d = detect(None, &view(SELF_V1, HYBRID, &w)).unwrap();
        let Hierarchy::V1(h) = &d.hierarchy else {
            panic!("{d:?}")
        };
        assert_eq!(
            h.bases(),
            &[
                ("memory", PathBuf::from("/sys/fs/cgroup/memory/sous-rl")),
                ("pids", PathBuf::from("/sys/fs/cgroup/pids/sous-rl")),
                ("freezer", PathBuf::from("/sys/fs/cgroup/freezer/sous-rl")),
            ]
        );
        assert!(d.move_into.is_none());
        // cpu delegated too: used.
        let cg = SELF_V1.replace("1:cpu:/\n", "1:cpu:/sous-rl\n");
        let d = detect(None, &view(&cg, HYBRID, &w)).unwrap();
        let Hierarchy::V1(h) = &d.hierarchy else {
            panic!()
        };
        assert_eq!(h.bases().len(), 4);
    }

    #[test]
    fn v1_without_delegation_is_refused_naming_what_is_missing() {
        let w = |p: &Path| p.starts_with("/sys/fs/cgroup/memory");
        let err = detect(None, &view(SELF_V1, HYBRID, &w)).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("pids: /sys/fs/cgroup/pids/sous-rl is not writable"),
            "{text}"
        );
        assert!(text.contains("Delegate=yes"), "{text}");
        assert!(text.contains("--isolation none"), "{text}");
    }

    #[test]
    fn combined_v1_controllers_and_bind_mounted_roots_are_placed() {
        let mi = "\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 /inner /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";
        let cg = "3:cpu,cpuacct:/a\n2:memory:/inner/b\n";
        let own = own_cgroups(cg, &cgroup_mounts(mi));
        assert_eq!(
            own.v1,
            vec![
                ("cpu".into(), PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/a")),
                (
                    "cpuacct".into(),
                    PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/a")
                ),
                ("memory".into(), PathBuf::from("/sys/fs/cgroup/memory/b")),
            ]
        );
    }

    fn v2_tree(controllers: &str) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let me = t.path().join("user.slice/sous.service");
        std::fs::create_dir_all(&me).unwrap();
        std::fs::write(me.join("cgroup.controllers"), controllers).unwrap();
        std::fs::write(me.join("cgroup.procs"), "").unwrap();
        std::fs::write(me.join("cgroup.subtree_control"), "").unwrap();
        t
    }

    #[test]
    fn v2_uses_the_processs_own_cgroup_and_moves_into_a_leaf() {
        let t = v2_tree("cpu memory pids\n");
        let mi = format!(
            "30 1 0:26 / {} rw - cgroup2 cgroup2 rw\n",
            t.path().display()
        );
        let cg = "0::/user.slice/sous.service\n";
        let mine = t.path().join("user.slice/sous.service");
        let w = |p: &Path| p.starts_with(&mine);
        let d = detect(None, &view(cg, &mi, &w)).unwrap();
        assert_eq!(d.hierarchy.version(), super::super::Version::V2);
        assert_eq!(d.move_into, Some(mine.join(LEAF)));
        // The environments' cgroups go below it.
        let env = d
            .hierarchy
            .create("e1", &super::super::limits_for(128, 2, false))
            .unwrap();
        assert_eq!(env.procs_files(), vec![mine.join("sous/e1/cgroup.procs")]);
        assert_eq!(
            std::fs::read_to_string(mine.join("cgroup.subtree_control")).unwrap(),
            "+memory +pids +cpu"
        );
    }

    #[test]
    fn v2_needs_memory_delegated_and_a_writable_tree() {
        let t = v2_tree("cpu pids\n");
        let mi = format!(
            "30 1 0:26 / {} rw - cgroup2 cgroup2 rw\n",
            t.path().display()
        );
        let cg = "0::/user.slice/sous.service\n";
        let all = |_: &Path| true;
        let err = detect(None, &view(cg, &mi, &all)).unwrap_err().to_string();
        assert!(err.contains("memory"), "{err}");

        let t = v2_tree("memory pids\n");
        let mi = format!(
            "30 1 0:26 / {} rw - cgroup2 cgroup2 rw\n",
            t.path().display()
        );
        let no_procs = |p: &Path| !p.ends_with("cgroup.procs");
        let err = detect(None, &view(cg, &mi, &no_procs))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cgroup.procs is not writable"), "{err}");
    }

    #[test]
    fn an_explicit_root_wins_and_is_checked() {
        // v2 elsewhere than Sous's own cgroup: no move.
        let t = v2_tree("memory pids\n");
        let root = t.path().join("user.slice/sous.service");
        let all = |_: &Path| true;
        let d = detect(Some(&root), &view(SELF_V1, HYBRID, &all)).unwrap();
        assert_eq!(d.hierarchy.version(), super::super::Version::V2);
        assert!(d.move_into.is_none());
        // v1: a directory of controller directories, each writable.
        let v1root = tempfile::tempdir().unwrap();
        for c in ["memory", "pids", "freezer", "cpu"] {
            std::fs::create_dir(v1root.path().join(c)).unwrap();
        }
        let no_cpu = |p: &Path| !p.ends_with("cpu");
        let d = detect(Some(v1root.path()), &view(SELF_V1, HYBRID, &no_cpu)).unwrap();
        let Hierarchy::V1(h) = &d.hierarchy else {
            panic!()
        };
        assert_eq!(h.bases().len(), 3, "the undelegated cpu is left out");
        let no_pids = |p: &Path| !p.ends_with("pids");
        let err = detect(Some(v1root.path()), &view(SELF_V1, HYBRID, &no_pids))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not writable"), "{err}");
        // Neither.
        let empty = tempfile::tempdir().unwrap();
        assert!(detect(Some(empty.path()), &view(SELF_V1, HYBRID, &all)).is_err());
    }
}
