//! The filesystem view of an execution environment, as data.
//!
//! Two halves, so a cold start mounts as little as possible:
//!
//! * [`build_template`] runs once per `Sandbox::new`, on the host: it lays out the new root in
//!   `<state_dir>/root` (the mount points `usr`, `var/task`, `var/runtime`, `opt`, `tmp`,
//!   `proc`; the merged-/usr symlinks `bin`, `lib`, ...; copies of the selected `/etc` entries
//!   and a generated `passwd`/`group` naming the sandbox user; `/dev` with the usual character
//!   devices). Nothing in it is a secret of the host.
//! * [`build_plan`] gives, per environment, the [`Step`]s the init performs through the
//!   [`Kernel`] trait inside the environment's fresh mount namespace: bind the template on
//!   itself, bind the host's system directories, `/var/task`, `/var/runtime`, `/opt` and extra
//!   host paths read-only, the environment's own `/tmp` image read-write, `/dev` (devices
//!   allowed, read-only), a fresh `/proc`, then `pivot_root`, detach the old root and make the
//!   root read-only. Nothing else of the host (the data dir, `/root`, `/home`, other functions,
//!   `/sys`) is reachable.
//!
//! Tests assert the plan and its execution with the recording fake, without root.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::syscalls::{ms, Kernel, SysResult};

/// One mount operation of an environment. Paths are absolute host paths (before the pivot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    /// Make every mount of the (copied) namespace a slave: nothing done in it propagates to
    /// the host, while mounts the host makes later under a shared mount (the `/tmp` images,
    /// under the shared `<state>/tmp`) still appear in it — pooled inits copy the mount table
    /// before their environment's image exists.
    MakeRootSlave,
    /// Bind the template on itself: pivot_root needs a mount point.
    BindSelf {
        path: PathBuf,
    },
    /// Bind `source` on `target`, then make the bind read-only, nosuid, nodev.
    BindReadOnly {
        source: PathBuf,
        target: PathBuf,
    },
    /// Bind `source` on `target` read-write (nosuid, nodev).
    BindWritable {
        source: PathBuf,
        target: PathBuf,
    },
    /// Bind a directory of device nodes on itself: read-only, nosuid, noexec, devices allowed
    /// (writing to a device node does not need a writable mount).
    BindDevices {
        path: PathBuf,
    },
    /// Bind one host device node on an empty file of the template, then make the bind
    /// read-only, nosuid, noexec (rootless: a user namespace cannot `mknod`; a bind of the
    /// host's node works, as its filesystem was mounted by the host).
    BindDevice {
        source: PathBuf,
        target: PathBuf,
    },
    MountProc {
        target: PathBuf,
    },
    /// chdir(new_root); pivot_root(".", "."); umount2(".", MNT_DETACH); chdir("/").
    PivotRoot {
        new_root: PathBuf,
    },
    /// Make the root read-only once everything is mounted on it.
    RemountRootReadOnly,
    /// Create `target` (a directory, or an empty file when `file`) and its missing parents,
    /// walking down from `from`: a mount point inside a filesystem mounted over the template
    /// (a host path under `/tmp`, which the environment's image covers).
    MakeMountPoint {
        from: PathBuf,
        target: PathBuf,
        file: bool,
    },
}

/// What is at a host path (following symlinks for `kind`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    pub kind: Kind,
    /// The raw target when the path itself is a symlink.
    pub link: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Missing,
    File,
    Dir,
}

/// Inspect a host path (the real probe used by the manager).
pub fn probe_host(path: &Path) -> HostEntry {
    let link = std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.file_type().is_symlink())
        .and_then(|_| std::fs::read_link(path).ok());
    let kind = match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Kind::Dir,
        Ok(_) => Kind::File,
        Err(_) => Kind::Missing,
    };
    HostEntry { kind, link }
}

/// Host system directories shared read-only (or recreated as symlinks).
pub const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// The `/etc` entries a runtime needs: name resolution, TLS roots, time zones, the dynamic
/// loader's cache, Debian's alternatives (e.g. `java`), MIME types. Not the host's `/etc` as a
/// whole (no shadow, no `ssl/private`, no credentials, no machine configuration).
pub const ETC_ENTRIES: &[&str] = &[
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/protocols",
    "/etc/services",
    "/etc/ssl/certs",
    "/etc/ssl/openssl.cnf",
    "/etc/ca-certificates",
    "/etc/ca-certificates.conf",
    "/etc/pki/tls/certs",
    "/etc/pki/ca-trust",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/mime.types",
    "/etc/os-release",
];

/// The devices of the minimal `/dev` (mode 0666).
pub const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// Mount points every template has.
const MOUNT_POINTS: &[&str] = &["/usr", "/var/task", "/var/runtime", "/opt", "/tmp", "/proc"];

/// The sandbox user named in the generated passwd/group.
#[derive(Debug, Clone)]
pub struct SandboxUser {
    pub uid: u32,
    pub gid: u32,
    pub name: String,
}

/// Inputs of one environment's plan.
#[derive(Debug, Clone)]
pub struct RootInputs {
    /// The template built by [`build_template`] (mounted only inside the environment's private
    /// mount namespace, so all environments share it).
    pub new_root: PathBuf,
    pub task_dir: PathBuf,
    pub runtime_dir: Option<PathBuf>,
    pub opt_dir: Option<PathBuf>,
    pub host_paths: Vec<PathBuf>,
    /// The mounted /tmp image (host path); `None` leaves /tmp an empty read-only directory.
    pub tmp_source: Option<PathBuf>,
}

/// Errors in the inputs of a plan.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("host path {0} must be absolute, normalised and not the root")]
    BadHostPath(PathBuf),
    #[error("{what} {path} does not exist or is not a directory")]
    MissingDir { what: &'static str, path: PathBuf },
    #[error("prepare the root template: {0}")]
    Template(#[from] crate::syscalls::SysError),
    #[error("prepare the root template: {what} {path}: {err}")]
    Io {
        what: &'static str,
        path: PathBuf,
        err: std::io::Error,
    },
}

/// `abs` (an absolute path) re-rooted under `root`.
pub fn under(root: &Path, abs: &Path) -> PathBuf {
    root.join(abs.strip_prefix("/").unwrap_or(abs))
}

fn check_host_path(p: &Path) -> Result<(), PlanError> {
    let ok = p.is_absolute()
        && p.components().count() > 1
        && p.components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if ok {
        Ok(())
    } else {
        Err(PlanError::BadHostPath(p.to_path_buf()))
    }
}

/// Whether every `nameserver` of a resolv.conf is on loopback (and there is at least one).
fn only_loopback_nameservers(text: &str) -> bool {
    let servers: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(str::trim)
        .collect();
    !servers.is_empty() && servers.iter().all(|s| s.starts_with("127.") || *s == "::1")
}

/// Whether a symlink target stays meaningful inside the new root (resolves into a shared dir).
fn link_resolves_inside(link_dir: &Path, target: &Path) -> bool {
    let abs = if target.is_absolute() {
        target.to_path_buf()
    } else {
        link_dir.join(target)
    };
    let mut norm = PathBuf::from("/");
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                norm.pop();
            }
            Component::Normal(n) => norm.push(n),
            _ => {}
        }
    }
    ["/usr", "/etc", "/bin", "/lib", "/lib64", "/sbin"]
        .iter()
        .any(|d| norm.starts_with(d))
}

fn tio<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> PlanError + 'a {
    move |err| PlanError::Io {
        what,
        path: path.to_path_buf(),
        err,
    }
}

/// mkdir -p of `abs` under `root` through `k`.
fn mkdirs(k: &dyn Kernel, root: &Path, abs: &Path) -> SysResult<()> {
    let mut cur = root.to_path_buf();
    for c in abs.components() {
        if let Component::Normal(n) = c {
            cur.push(n);
            k.mkdir(&cur, 0o755)?;
        }
    }
    Ok(())
}

/// Copy a host file, directory tree or symlink (links are copied as links).
fn copy_tree(src: &Path, dst: &Path) -> Result<(), PlanError> {
    let meta = std::fs::symlink_metadata(src).map_err(tio("stat", src))?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        let t = std::fs::read_link(src).map_err(tio("readlink", src))?;
        std::os::unix::fs::symlink(t, dst).map_err(tio("symlink", dst))?;
    } else if ft.is_dir() {
        std::fs::create_dir_all(dst).map_err(tio("mkdir", dst))?;
        for e in std::fs::read_dir(src).map_err(tio("list", src))? {
            let e = e.map_err(tio("list", src))?;
            copy_tree(&e.path(), &dst.join(e.file_name()))?;
        }
    } else if ft.is_file() {
        std::fs::copy(src, dst).map_err(tio("copy", src))?;
    }
    Ok(())
}

/// Lay out the root template in `root` (which must not exist yet or be empty): see the module
/// docs. `make_devices` creates the device nodes (needs CAP_MKNOD; tests pass false).
pub fn build_template(
    k: &dyn Kernel,
    root: &Path,
    user: &SandboxUser,
    probe: &dyn Fn(&Path) -> HostEntry,
    make_devices: bool,
) -> Result<(), PlanError> {
    k.mkdir(root, 0o755)?;
    for d in SYSTEM_DIRS {
        let d = Path::new(d);
        let e = probe(d);
        match (&e.link, e.kind) {
            (_, Kind::Missing) => {}
            (Some(t), _) => k.symlink(t, &under(root, d))?,
            (None, _) => mkdirs(k, root, d)?,
        }
    }
    for m in MOUNT_POINTS {
        mkdirs(k, root, Path::new(m))?;
    }
    let etc = under(root, Path::new("/etc"));
    k.mkdir(&etc, 0o755)?;
    for e in ETC_ENTRIES {
        let p = Path::new(e);
        let entry = probe(p);
        if entry.kind == Kind::Missing {
            continue;
        }
        let dst = under(root, p);
        if let Some(parent) = p.parent() {
            mkdirs(k, root, parent)?;
        }
        match &entry.link {
            Some(t) if link_resolves_inside(p.parent().unwrap_or(p), t) => k.symlink(t, &dst)?,
            // A link elsewhere (e.g. resolv.conf -> /run/...): copy what it points to.
            Some(_) => {
                let real = std::fs::canonicalize(p).map_err(tio("resolve", p))?;
                copy_tree(&real, &dst)?
            }
            None => copy_tree(p, &dst)?,
        }
    }
    // A resolver on the host's loopback (systemd-resolved's 127.0.0.53) is unreachable from
    // an environment's network namespace: give functions the upstream servers instead.
    let resolv = etc.join("resolv.conf");
    if only_loopback_nameservers(&std::fs::read_to_string(&resolv).unwrap_or_default()) {
        let upstream = Path::new("/run/systemd/resolve/resolv.conf");
        if let Ok(text) = std::fs::read_to_string(upstream) {
            k.write_file(&resolv, text.as_bytes(), 0o644)?;
        }
    }
    k.write_file(
        &etc.join("passwd"),
        format!(
            "root:x:0:0:root:/root:/sbin/nologin\n{u}:x:{uid}:{gid}::/tmp:/sbin/nologin\n",
            u = user.name,
            uid = user.uid,
            gid = user.gid
        )
        .as_bytes(),
        0o644,
    )?;
    k.write_file(
        &etc.join("group"),
        format!("root:x:0:\n{u}:x:{gid}:\n", u = user.name, gid = user.gid).as_bytes(),
        0o644,
    )?;
    let dev = under(root, Path::new("/dev"));
    k.mkdir(&dev, 0o755)?;
    if make_devices {
        use std::os::unix::fs::MetadataExt;
        for d in DEVICES {
            let host = Path::new("/dev").join(d);
            if let Ok(m) = std::fs::metadata(&host) {
                k.mknod_char(&dev.join(d), 0o666, m.rdev())?;
                // mknod honours the umask; devices must be usable by the sandbox user.
                std::fs::set_permissions(
                    dev.join(d),
                    std::os::unix::fs::PermissionsExt::from_mode(0o666),
                )
                .map_err(tio("chmod", &dev.join(d)))?;
            }
        }
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        k.symlink(Path::new(target), &dev.join(name))?;
    }
    Ok(())
}

/// Rootless: empty files in the template's `/dev` for the host devices [`BindDevice`] binds
/// there (instead of the nodes `build_template` makes with `make_devices`).
///
/// [`BindDevice`]: Step::BindDevice
pub fn add_device_mount_points(k: &dyn Kernel, root: &Path) -> SysResult<()> {
    let dev = under(root, Path::new("/dev"));
    for d in DEVICES {
        if Path::new("/dev").join(d).exists() {
            // Only a mount point: what the function uses is the host device bound on it. Not
            // usable by anyone (another user reaching the template must not get a 0666 file).
            k.create_file(&dev.join(d), 0o600)?;
        }
    }
    Ok(())
}

/// Make sure the template has a mount point for each extra host path (host side, at prepare;
/// idempotent, harmless to other environments: an empty directory or file).
pub fn ensure_mount_points(root: &Path, host_paths: &[PathBuf]) -> Result<(), PlanError> {
    for p in host_paths {
        check_host_path(p)?;
        let at = under(root, p);
        if std::fs::symlink_metadata(&at).is_ok() {
            continue;
        }
        if probe_host(p).kind == Kind::File {
            if let Some(parent) = at.parent() {
                std::fs::create_dir_all(parent).map_err(tio("mkdir", parent))?;
            }
            std::fs::File::create(&at).map_err(tio("create", &at))?;
        } else {
            std::fs::create_dir_all(&at).map_err(tio("mkdir", &at))?;
        }
    }
    Ok(())
}

/// Build one environment's whole mount plan: [`common_plan`] then [`function_plan`]. `probe`
/// tells what is at a host path.
pub fn build_plan(
    inputs: &RootInputs,
    probe: &dyn Fn(&Path) -> HostEntry,
) -> Result<Vec<Step>, PlanError> {
    let mut s = common_plan(&inputs.new_root, probe);
    s.extend(function_plan(inputs, probe)?);
    Ok(s)
}

/// The steps every environment shares, done by a pooled init before it knows its function:
/// a private copy of the mounts, the template bound on itself, the host's system
/// directories read-only, `/dev` and a fresh `/proc`.
pub fn common_plan(root: &Path, probe: &dyn Fn(&Path) -> HostEntry) -> Vec<Step> {
    common_plan_for(root, probe, false)
}

/// [`common_plan`], and rootless (`bind_devices`) the host's device nodes bound on the
/// template's empty files (see [`add_device_mount_points`]).
pub fn common_plan_for(
    root: &Path,
    probe: &dyn Fn(&Path) -> HostEntry,
    bind_devices: bool,
) -> Vec<Step> {
    let mut s = vec![
        Step::MakeRootSlave,
        Step::BindSelf {
            path: root.to_path_buf(),
        },
    ];
    // System directories that are directories (symlinks are in the template).
    for d in SYSTEM_DIRS {
        let e = probe(Path::new(d));
        if e.link.is_none() && e.kind == Kind::Dir {
            s.push(Step::BindReadOnly {
                source: PathBuf::from(d),
                target: under(root, Path::new(d)),
            });
        }
    }
    s.push(Step::BindDevices {
        path: under(root, Path::new("/dev")),
    });
    if bind_devices {
        for d in DEVICES {
            let source = Path::new("/dev").join(d);
            if probe(&source).kind != Kind::Missing {
                s.push(Step::BindDevice {
                    target: under(root, &source),
                    source,
                });
            }
        }
    }
    s.push(Step::MountProc {
        target: under(root, Path::new("/proc")),
    });
    s
}

/// The steps that depend on the function, done when an init is claimed for it: its code,
/// runtime and layers read-only, its `/tmp`, the extra host paths, then `pivot_root` and the
/// read-only root.
pub fn function_plan(
    inputs: &RootInputs,
    probe: &dyn Fn(&Path) -> HostEntry,
) -> Result<Vec<Step>, PlanError> {
    let root = inputs.new_root.as_path();
    for p in &inputs.host_paths {
        check_host_path(p)?;
    }
    let need_dir = |what, p: &Path| -> Result<(), PlanError> {
        if probe(p).kind == Kind::Dir {
            Ok(())
        } else {
            Err(PlanError::MissingDir {
                what,
                path: p.to_path_buf(),
            })
        }
    };
    need_dir("task dir", &inputs.task_dir)?;
    if let Some(d) = &inputs.runtime_dir {
        need_dir("runtime dir", d)?;
    }
    if let Some(d) = &inputs.opt_dir {
        need_dir("layers dir", d)?;
    }
    let ro = |source: &Path, at: &str| Step::BindReadOnly {
        source: source.to_path_buf(),
        target: under(root, Path::new(at)),
    };

    let mut s = vec![ro(&inputs.task_dir, "/var/task")];
    if let Some(d) = &inputs.runtime_dir {
        s.push(ro(d, "/var/runtime"));
    }
    if let Some(d) = &inputs.opt_dir {
        s.push(ro(d, "/opt"));
    }
    // /tmp before the host paths, so that a host path under /tmp (say, a data dir there)
    // is bound on top of the image instead of being hidden by it.
    if let Some(src) = &inputs.tmp_source {
        s.push(Step::BindWritable {
            source: src.clone(),
            target: under(root, Path::new("/tmp")),
        });
    }
    for p in &inputs.host_paths {
        let kind = probe(p).kind;
        if kind == Kind::Missing {
            continue;
        }
        if inputs.tmp_source.is_some() && p.starts_with("/tmp") {
            s.push(Step::MakeMountPoint {
                from: under(root, Path::new("/tmp")),
                target: under(root, p),
                file: kind == Kind::File,
            });
        }
        s.push(Step::BindReadOnly {
            source: p.clone(),
            target: under(root, p),
        });
    }
    s.push(Step::PivotRoot {
        new_root: root.to_path_buf(),
    });
    s.push(Step::RemountRootReadOnly);
    Ok(s)
}

/// Perform the plan through `k`. Stops at the first failure.
pub fn apply(k: &dyn Kernel, steps: &[Step]) -> SysResult<()> {
    for step in steps {
        apply_one(k, step, false)?;
    }
    Ok(())
}

/// [`apply`] in a mount namespace owned by a user namespace Sous created without root: the
/// kernel locks the read-only, nosuid, nodev and noexec flags of the mounts copied from the
/// host, and refuses a remount that would clear one. Each remount keeps them (asking the
/// kernel what the bind has), adding its own.
pub fn apply_in_user_namespace(k: &dyn Kernel, steps: &[Step]) -> SysResult<()> {
    for step in steps {
        apply_one(k, step, true)?;
    }
    Ok(())
}

fn apply_one(k: &dyn Kernel, step: &Step, keep_locked: bool) -> SysResult<()> {
    let root = Path::new("/");
    // Remount `target` (already a bind) with `flags`, plus its locked ones when asked.
    let remount = |target: &Path, flags: u64| -> SysResult<()> {
        let locked = match keep_locked {
            true => k.locked_mount_flags(target)?,
            false => 0,
        };
        k.mount(None, target, None, flags | locked, None)
    };
    match step {
        Step::MakeRootSlave => k.mount(None, root, None, ms::REC | ms::SLAVE, None),
        Step::MakeMountPoint { from, target, file } => {
            let rest = target.strip_prefix(from).unwrap_or(target);
            let mut at = from.clone();
            let parts: Vec<_> = rest.components().collect();
            for (i, part) in parts.iter().enumerate() {
                at.push(part);
                if i + 1 == parts.len() && *file {
                    k.create_file(&at, 0o644)?;
                } else {
                    k.mkdir(&at, 0o755)?;
                }
            }
            Ok(())
        }
        Step::BindSelf { path } => k.mount(Some(path), path, None, ms::BIND, None),
        Step::BindReadOnly { source, target } => {
            k.mount(Some(source), target, None, ms::BIND, None)?;
            remount(
                target,
                ms::BIND | ms::REMOUNT | ms::RDONLY | ms::NOSUID | ms::NODEV,
            )
        }
        Step::BindWritable { source, target } => {
            k.mount(Some(source), target, None, ms::BIND, None)?;
            remount(target, ms::BIND | ms::REMOUNT | ms::NOSUID | ms::NODEV)
        }
        Step::BindDevices { path } => {
            k.mount(Some(path), path, None, ms::BIND, None)?;
            remount(
                path,
                ms::BIND | ms::REMOUNT | ms::RDONLY | ms::NOSUID | ms::NOEXEC,
            )
        }
        Step::BindDevice { source, target } => {
            k.mount(Some(source), target, None, ms::BIND, None)?;
            remount(
                target,
                ms::BIND | ms::REMOUNT | ms::RDONLY | ms::NOSUID | ms::NOEXEC,
            )
        }
        Step::MountProc { target } => k.mount(
            Some(Path::new("proc")),
            target,
            Some("proc"),
            ms::NOSUID | ms::NODEV | ms::NOEXEC,
            None,
        ),
        Step::PivotRoot { new_root } => {
            let dot = Path::new(".");
            k.chdir(new_root)?;
            k.pivot_root(dot, dot)?;
            k.umount2(dot, libc::MNT_DETACH)?;
            k.chdir(root)
        }
        Step::RemountRootReadOnly => remount(
            root,
            ms::BIND | ms::REMOUNT | ms::RDONLY | ms::NOSUID | ms::NODEV,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscalls::{Call, LinuxKernel, RecordingKernel};

    /// A merged-/usr host.
    fn fake_host(p: &Path) -> HostEntry {
        let s = p.to_str().unwrap();
        let (kind, link) = match s {
            "/usr" => (Kind::Dir, None),
            "/bin" => (Kind::Dir, Some("usr/bin".into())),
            "/lib" => (Kind::Dir, Some("usr/lib".into())),
            "/lib64" => (Kind::Dir, Some("usr/lib64".into())),
            s if s.starts_with("/data/")
                || s.starts_with("/root/.pyenv")
                || s.starts_with("/tmp/data") =>
            {
                (Kind::Dir, None)
            }
            _ => (Kind::Missing, None),
        };
        HostEntry { kind, link }
    }

    fn inputs() -> RootInputs {
        RootInputs {
            new_root: "/data/sandbox/root".into(),
            task_dir: "/data/code/fn1".into(),
            runtime_dir: Some("/data/runtimes/python".into()),
            opt_dir: None,
            host_paths: vec!["/root/.pyenv/versions/3.11.7".into()],
            tmp_source: Some("/data/sandbox/tmp/7".into()),
        }
    }

    fn plan() -> Vec<Step> {
        build_plan(&inputs(), &fake_host).unwrap()
    }

    fn ro(src: &str, dst: &str) -> Step {
        Step::BindReadOnly {
            source: src.into(),
            target: dst.into(),
        }
    }

    #[test]
    fn code_runtime_and_system_dirs_are_read_only() {
        let p = plan();
        assert!(p.contains(&ro("/data/code/fn1", "/data/sandbox/root/var/task")));
        assert!(p.contains(&ro(
            "/data/runtimes/python",
            "/data/sandbox/root/var/runtime"
        )));
        assert!(p.contains(&ro("/usr", "/data/sandbox/root/usr")));
        assert!(p.contains(&ro(
            "/root/.pyenv/versions/3.11.7",
            "/data/sandbox/root/root/.pyenv/versions/3.11.7"
        )));
        // Symlinked system dirs are not bound (the template has the links).
        assert!(!p.iter().any(
            |s| matches!(s, Step::BindReadOnly { source, .. } if source == Path::new("/bin"))
        ));
        // The only writable bind is /tmp, from the environment's image.
        let writable: Vec<_> = p
            .iter()
            .filter(|s| matches!(s, Step::BindWritable { .. }))
            .collect();
        assert_eq!(
            writable,
            vec![&Step::BindWritable {
                source: "/data/sandbox/tmp/7".into(),
                target: "/data/sandbox/root/tmp".into()
            }]
        );
    }

    #[test]
    fn nothing_else_of_the_host_is_bound() {
        for s in &plan() {
            if let Step::BindReadOnly { source, .. } | Step::BindWritable { source, .. } = s {
                for forbidden in [
                    "/",
                    "/root",
                    "/home",
                    "/etc",
                    "/data",
                    "/data/sandbox",
                    "/sys",
                ] {
                    assert_ne!(source, Path::new(forbidden));
                }
            }
        }
    }

    #[test]
    fn pivot_comes_after_every_mount_and_the_root_ends_read_only() {
        let p = plan();
        assert_eq!(p[0], Step::MakeRootSlave);
        assert_eq!(
            p[1],
            Step::BindSelf {
                path: "/data/sandbox/root".into()
            }
        );
        let pivot = p
            .iter()
            .position(|s| matches!(s, Step::PivotRoot { .. }))
            .unwrap();
        assert_eq!(pivot, p.len() - 2);
        assert_eq!(p.last(), Some(&Step::RemountRootReadOnly));
        assert!(p[..pivot]
            .iter()
            .any(|s| matches!(s, Step::MountProc { .. })));
    }

    #[test]
    fn host_paths_under_tmp_are_bound_over_the_tmp_image() {
        let mut i = inputs();
        i.host_paths = vec!["/tmp/data/runtimes/java17".into()];
        let p = build_plan(&i, &fake_host).unwrap();
        let pos = |pred: &dyn Fn(&Step) -> bool| p.iter().position(pred).unwrap();
        let tmp = pos(&|s| matches!(s, Step::BindWritable { .. }));
        let make = pos(&|s| matches!(s, Step::MakeMountPoint { .. }));
        let bind = pos(
            &|s| matches!(s, Step::BindReadOnly { source, .. } if source == Path::new("/tmp/data/runtimes/java17")),
        );
        assert!(tmp < make && make < bind, "{p:#?}");
    }

    #[test]
    fn loopback_resolvers_are_recognised() {
        assert!(only_loopback_nameservers(
            "nameserver 127.0.0.53\noptions edns0\n"
        ));
        assert!(!only_loopback_nameservers(
            "nameserver 127.0.0.53\nnameserver 10.0.0.2\n"
        ));
        assert!(!only_loopback_nameservers("search x\n"));
    }

    #[test]
    fn bad_host_paths_are_refused() {
        for bad in ["/", "relative", "/usr/../root"] {
            let mut i = inputs();
            i.host_paths = vec![bad.into()];
            assert!(
                matches!(build_plan(&i, &fake_host), Err(PlanError::BadHostPath(_))),
                "{bad}"
            );
        }
        let mut i = inputs();
        i.task_dir = "/nope".into();
        assert!(build_plan(&i, &fake_host).is_err());
    }

    #[test]
    fn applying_the_plan_binds_then_remounts_read_only_and_detaches_the_old_root() {
        let k = RecordingKernel::new();
        apply(&k, &plan()).unwrap();
        let calls = k.calls();
        let i = calls
            .iter()
            .position(|c| {
                matches!(c, Call::Mount { source: Some(s), .. } if s == Path::new("/data/code/fn1"))
            })
            .unwrap();
        assert_eq!(
            calls[i + 1],
            Call::Mount {
                source: None,
                target: "/data/sandbox/root/var/task".into(),
                fstype: None,
                flags: ms::BIND | ms::REMOUNT | ms::RDONLY | ms::NOSUID | ms::NODEV,
                data: None
            }
        );
        let j = calls
            .iter()
            .position(|c| matches!(c, Call::PivotRoot { .. }))
            .unwrap();
        assert_eq!(calls[j - 1], Call::Chdir("/data/sandbox/root".into()));
        assert_eq!(
            calls[j + 1],
            Call::Umount2 {
                target: ".".into(),
                flags: libc::MNT_DETACH
            }
        );
        assert_eq!(calls[j + 2], Call::Chdir("/".into()));
        assert!(calls
            .iter()
            .any(|c| matches!(c, Call::Mount { fstype: Some(f), .. } if f == "proc")));
        // /dev keeps devices usable but is read-only.
        assert!(calls.contains(&Call::Mount {
            source: None,
            target: "/data/sandbox/root/dev".into(),
            fstype: None,
            flags: ms::BIND | ms::REMOUNT | ms::RDONLY | ms::NOSUID | ms::NOEXEC,
            data: None
        }));
    }

    #[test]
    fn rootless_plan_binds_host_devices_and_remounts_keep_locked_flags() {
        let probe = |p: &Path| match p.to_str().unwrap() {
            "/dev/null" | "/dev/urandom" => HostEntry {
                kind: Kind::File,
                link: None,
            },
            _ => fake_host(p),
        };
        let root = Path::new("/data/sandbox/root");
        assert!(!common_plan(root, &probe)
            .iter()
            .any(|s| matches!(s, Step::BindDevice { .. })));
        let plan = common_plan_for(root, &probe, true);
        let devices: Vec<_> = plan
            .iter()
            .filter(|s| matches!(s, Step::BindDevice { .. }))
            .collect();
        assert_eq!(
            devices,
            vec![
                &Step::BindDevice {
                    source: "/dev/null".into(),
                    target: "/data/sandbox/root/dev/null".into()
                },
                &Step::BindDevice {
                    source: "/dev/urandom".into(),
                    target: "/data/sandbox/root/dev/urandom".into()
                },
            ]
        );
        // Every remount asks for the locked flags of the bind it changes, right before.
        let k = RecordingKernel::new();
        apply_in_user_namespace(&k, &plan).unwrap();
        let c = k.calls();
        for (i, call) in c.iter().enumerate() {
            if let Call::Mount { target, flags, .. } = call {
                if flags & ms::REMOUNT != 0 {
                    assert_eq!(c[i - 1], Call::LockedMountFlags(target.clone()), "{c:?}");
                }
            }
        }
        let k = RecordingKernel::new();
        apply_in_user_namespace(&k, &[Step::RemountRootReadOnly]).unwrap();
        assert_eq!(k.calls()[0], Call::LockedMountFlags("/".into()));
        // As root nothing is asked.
        let k = RecordingKernel::new();
        apply(&k, &plan).unwrap();
        assert!(!k
            .calls()
            .iter()
            .any(|c| matches!(c, Call::LockedMountFlags(_))));
    }

    #[test]
    fn a_failing_step_stops_the_plan() {
        let k = RecordingKernel::failing_at(1);
        assert!(apply(&k, &plan()).is_err());
        assert_eq!(k.calls().len(), 2);
    }

    fn user() -> SandboxUser {
        SandboxUser {
            uid: 993,
            gid: 990,
            name: "sbx_user1051".into(),
        }
    }

    #[test]
    fn template_has_mount_points_links_and_selected_etc_only() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        build_template(&LinuxKernel, &root, &user(), &probe_host, false).unwrap();
        for m in MOUNT_POINTS {
            assert!(under(&root, Path::new(m)).is_dir(), "{m}");
        }
        let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
        assert!(passwd.contains("sbx_user1051:x:993:990:"));
        for secret in [
            "etc/shadow",
            "etc/gshadow",
            "etc/ssl/private",
            "etc/sudoers",
        ] {
            assert!(
                std::fs::symlink_metadata(root.join(secret)).is_err(),
                "{secret}"
            );
        }
        let names: Vec<String> = std::fs::read_dir(root.join("etc"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        for n in &names {
            let host = format!("/etc/{n}");
            assert!(
                n == "passwd" || n == "group" || ETC_ENTRIES.iter().any(|e| e.starts_with(&host)),
                "unexpected /etc entry {n}"
            );
        }
        if Path::new("/etc/hosts").exists() {
            assert!(root.join("etc/hosts").exists());
        }
        if probe_host(Path::new("/bin")).link.is_some() {
            assert!(std::fs::symlink_metadata(root.join("bin"))
                .unwrap()
                .file_type()
                .is_symlink());
        }
        assert_eq!(
            std::fs::read_link(root.join("dev/fd")).unwrap(),
            Path::new("/proc/self/fd")
        );
    }

    #[test]
    fn template_recreates_merged_usr_links_through_the_kernel() {
        let k = RecordingKernel::new();
        let _ = build_template(&k, Path::new("/r"), &user(), &fake_host, true);
        assert!(k.calls().contains(&Call::Symlink {
            target: "usr/bin".into(),
            link: "/r/bin".into()
        }));
        assert!(k.calls().contains(&Call::Mkdir("/r/usr".into(), 0o755)));
    }

    #[test]
    fn host_path_mount_points_are_created_in_the_template() {
        let t = tempfile::tempdir().unwrap();
        ensure_mount_points(t.path(), &["/usr/share".into()]).unwrap();
        assert!(t.path().join("usr/share").is_dir());
        assert!(ensure_mount_points(t.path(), &["/usr/../etc".into()]).is_err());
    }
}
