//! Every kernel operation the sandbox performs, each raw call wrapped exactly once.
//!
//! The setup that runs inside a new environment (mounts, pivot_root, namespaces, identity) goes
//! through the [`Kernel`] trait, so its sequence is unit-tested with [`RecordingKernel`]
//! without root. [`LinuxKernel`] is the real implementation: one raw call per method, a
//! `SAFETY:` note, a checked return and its own [`SysError`] variant.
//!
//! Operations that only the manager side performs (forking the init, creating the memfd that
//! carries the plan, bringing loopback up in a new network namespace, ...) are free functions
//! below the trait, wrapped the same way.

use std::cell::RefCell;
use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A failed kernel operation: which one, on what, and the errno.
#[derive(Debug, thiserror::Error)]
pub enum SysError {
    #[error("mount {source_path:?} on {target} (type {fstype:?}, flags {flags:#x}): {err}")]
    Mount {
        source_path: Option<PathBuf>,
        target: PathBuf,
        fstype: Option<String>,
        flags: u64,
        err: io::Error,
    },
    #[error("umount2 {target}: {err}")]
    Umount { target: PathBuf, err: io::Error },
    #[error("pivot_root {new_root} {put_old}: {err}")]
    PivotRoot {
        new_root: PathBuf,
        put_old: PathBuf,
        err: io::Error,
    },
    #[error("chdir {path}: {err}")]
    Chdir { path: PathBuf, err: io::Error },
    #[error("mkdir {path}: {err}")]
    Mkdir { path: PathBuf, err: io::Error },
    #[error("create {path}: {err}")]
    CreateFile { path: PathBuf, err: io::Error },
    #[error("write {path}: {err}")]
    WriteFile { path: PathBuf, err: io::Error },
    #[error("symlink {link} -> {target}: {err}")]
    Symlink {
        target: PathBuf,
        link: PathBuf,
        err: io::Error,
    },
    #[error("mknod {path}: {err}")]
    Mknod { path: PathBuf, err: io::Error },
    #[error("sethostname {name:?}: {err}")]
    Sethostname { name: String, err: io::Error },
    #[error("unshare {flags:#x}: {err}")]
    Unshare { flags: i32, err: io::Error },
    #[error("setns fd {fd} type {nstype:#x}: {err}")]
    Setns {
        fd: RawFd,
        nstype: i32,
        err: io::Error,
    },
    #[error("write to fd {fd}: {err}")]
    WriteFd { fd: RawFd, err: io::Error },
    #[error("setgroups: {err}")]
    Setgroups { err: io::Error },
    #[error("setresgid {gid}: {err}")]
    Setresgid { gid: u32, err: io::Error },
    #[error("setresuid {uid}: {err}")]
    Setresuid { uid: u32, err: io::Error },
    #[error("prctl({op}): {err}")]
    Prctl { op: &'static str, err: io::Error },
    #[error("seccomp: {err}")]
    Seccomp { err: String },
    #[error("setrlimit {resource}: {err}")]
    Setrlimit {
        resource: &'static str,
        err: io::Error,
    },
    #[error("reset signals: {err}")]
    Signals { err: io::Error },
    #[error("execve {program}: {err}")]
    Exec { program: PathBuf, err: io::Error },
    #[error("write {path}: {err}")]
    WriteProc { path: PathBuf, err: io::Error },
    #[error("statvfs {path}: {err}")]
    Statvfs { path: PathBuf, err: io::Error },
    #[error("capset: {err}")]
    Capset { err: io::Error },
    #[error("bring loopback up: {err}")]
    LoopbackUp { err: io::Error },
    #[error("refuse outbound destinations: {err}")]
    Blocklist { err: io::Error },
    #[error("listen on {addr}: {err}")]
    Listen {
        addr: std::net::SocketAddr,
        err: io::Error,
    },
    #[error("send on fd {fd}: {err}")]
    Send { fd: RawFd, err: io::Error },
    #[error("{what}: {err}")]
    Other { what: &'static str, err: io::Error },
    #[error("path contains a NUL byte: {0:?}")]
    Nul(String),
}

pub type SysResult<T> = Result<T, SysError>;

impl SysError {
    /// The errno of the failed call (none for a refused argument). Allocates nothing, so a
    /// `pre_exec` closure may turn a failure into `io::Error::from_raw_os_error` with it.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            SysError::Mount { err, .. }
            | SysError::Umount { err, .. }
            | SysError::PivotRoot { err, .. }
            | SysError::Chdir { err, .. }
            | SysError::Mkdir { err, .. }
            | SysError::CreateFile { err, .. }
            | SysError::WriteFile { err, .. }
            | SysError::Symlink { err, .. }
            | SysError::Mknod { err, .. }
            | SysError::Sethostname { err, .. }
            | SysError::Unshare { err, .. }
            | SysError::Setns { err, .. }
            | SysError::WriteFd { err, .. }
            | SysError::Setgroups { err }
            | SysError::Setresgid { err, .. }
            | SysError::Setresuid { err, .. }
            | SysError::Prctl { err, .. }
            | SysError::Setrlimit { err, .. }
            | SysError::Signals { err }
            | SysError::Exec { err, .. }
            | SysError::WriteProc { err, .. }
            | SysError::Statvfs { err, .. }
            | SysError::Capset { err }
            | SysError::LoopbackUp { err }
            | SysError::Blocklist { err }
            | SysError::Listen { err, .. }
            | SysError::Send { err, .. }
            | SysError::Other { err, .. } => err.raw_os_error(),
            SysError::Seccomp { .. } | SysError::Nul(_) => None,
        }
    }
}

/// The mount flags the sandbox uses, as the kernel spells them.
pub mod ms {
    pub const RDONLY: u64 = libc::MS_RDONLY;
    pub const NOSUID: u64 = libc::MS_NOSUID;
    pub const NODEV: u64 = libc::MS_NODEV;
    pub const NOEXEC: u64 = libc::MS_NOEXEC;
    pub const NOATIME: u64 = libc::MS_NOATIME;
    pub const REMOUNT: u64 = libc::MS_REMOUNT;
    pub const BIND: u64 = libc::MS_BIND;
    pub const REC: u64 = libc::MS_REC;
    pub const PRIVATE: u64 = libc::MS_PRIVATE;
    pub const SLAVE: u64 = libc::MS_SLAVE;
    pub const SHARED: u64 = libc::MS_SHARED;
}

/// The kernel operations of the environment setup (see module docs).
pub trait Kernel {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: u64,
        data: Option<&str>,
    ) -> SysResult<()>;
    fn umount2(&self, target: &Path, flags: i32) -> SysResult<()>;
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> SysResult<()>;
    fn chdir(&self, path: &Path) -> SysResult<()>;
    fn mkdir(&self, path: &Path, mode: u32) -> SysResult<()>;
    /// Create an empty file (a bind-mount target); an existing one is fine.
    fn create_file(&self, path: &Path, mode: u32) -> SysResult<()>;
    fn write_file(&self, path: &Path, contents: &[u8], mode: u32) -> SysResult<()>;
    fn symlink(&self, target: &Path, link: &Path) -> SysResult<()>;
    /// Create a character device node `path` with device number `rdev`.
    fn mknod_char(&self, path: &Path, mode: u32, rdev: u64) -> SysResult<()>;
    fn sethostname(&self, name: &str) -> SysResult<()>;
    fn unshare(&self, flags: i32) -> SysResult<()>;
    fn setns(&self, fd: RawFd, nstype: i32) -> SysResult<()>;
    /// Write `data` to an inherited descriptor (joining a cgroup through its `cgroup.procs`).
    fn write_fd(&self, fd: RawFd, data: &[u8]) -> SysResult<()>;
    fn close(&self, fd: RawFd);
    /// Make `fd` available as descriptor `target`, inheritable across exec (`dup2`, or clearing
    /// close-on-exec when it already has that number).
    fn dup_to(&self, fd: RawFd, target: RawFd) -> SysResult<()>;
    /// A close-on-exec copy of `fd` at the lowest free number ≥ `min`.
    fn dup_above(&self, fd: RawFd, min: RawFd) -> SysResult<RawFd>;
    /// Give the file behind `fd` (a pipe: its inode) to `uid`/`gid`.
    fn fchown(&self, fd: RawFd, uid: u32, gid: u32) -> SysResult<()>;
    fn setgroups(&self, groups: &[u32]) -> SysResult<()>;
    fn setresgid(&self, gid: u32) -> SysResult<()>;
    fn setresuid(&self, uid: u32) -> SysResult<()>;
    /// Remove `cap` from the capability bounding set.
    fn drop_bounding_cap(&self, cap: u32) -> SysResult<()>;
    /// Clear the ambient capability set.
    fn clear_ambient_caps(&self) -> SysResult<()>;
    fn set_no_new_privs(&self) -> SysResult<()>;
    fn set_parent_death_signal(&self, signal: i32) -> SysResult<()>;
    fn set_rlimit(&self, resource: Rlimit, soft: u64, hard: u64) -> SysResult<()>;
    /// Restore default dispositions of every catchable signal and an empty signal mask
    /// (Rust's start-up ignores SIGPIPE; an ignored signal survives exec).
    fn reset_signals(&self) -> SysResult<()>;
    fn install_seccomp(&self, program: &seccompiler::BpfProgram) -> SysResult<()>;
    /// Replace the process image. Returns only on failure (the fake returns `Ok`).
    fn execve(&self, program: &Path, args: &[String], env: &[(String, String)]) -> SysResult<()>;

    // --- rootless setup (inside a user namespace the init created) -------------------------

    /// Write `contents` in one write to an existing file, without creating or truncating it
    /// (`/proc/self/uid_map`, `gid_map`, `setgroups`).
    fn write_proc_file(&self, path: &Path, contents: &[u8]) -> SysResult<()>;
    /// The flags of the mount at `path` that a mount namespace owned by a less privileged user
    /// namespace may not clear when it remounts (read-only, nosuid, nodev, noexec), as `MS_*`
    /// bits. The fake answers 0.
    fn locked_mount_flags(&self, path: &Path) -> SysResult<u64>;
    /// Empty the permitted, effective and inheritable capability sets (`capset`).
    fn clear_caps(&self) -> SysResult<()>;
    /// Bring the loopback interface of the calling process's network namespace up.
    fn loopback_up(&self) -> SysResult<()>;
    /// Refuse the destinations of `b` in the calling thread's network namespace
    /// ([`crate::network::install_blocklist`]).
    fn block_destinations(&self, b: &crate::network::Blocklist) -> SysResult<()>;
    /// A TCP socket bound to `addr` and listening, close-on-exec; returns its descriptor.
    fn listen_tcp(&self, addr: std::net::SocketAddr) -> SysResult<RawFd>;
    /// Send `data` as one message on `sock` with the descriptors `fds` (SCM_RIGHTS).
    fn send_fds(&self, sock: RawFd, data: &[u8], fds: &[RawFd]) -> SysResult<()>;
}

/// Resource limits the init sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Rlimit {
    NoFile,
    Core,
}

fn cstr(p: &OsStr) -> SysResult<CString> {
    CString::new(p.as_bytes()).map_err(|_| SysError::Nul(p.to_string_lossy().into_owned()))
}

fn cpath(p: &Path) -> SysResult<CString> {
    cstr(p.as_os_str())
}

fn last() -> io::Error {
    io::Error::last_os_error()
}

/// The real kernel.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxKernel;

impl Kernel for LinuxKernel {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: u64,
        data: Option<&str>,
    ) -> SysResult<()> {
        let src = source.map(cpath).transpose()?;
        let tgt = cpath(target)?;
        let fs = fstype.map(|f| cstr(OsStr::new(f))).transpose()?;
        let dat = data.map(|d| cstr(OsStr::new(d))).transpose()?;
        let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
        // SAFETY: every pointer is either null or a NUL-terminated string that outlives the
        // call; the kernel copies them.
        let rc = unsafe {
            libc::mount(
                ptr(&src),
                tgt.as_ptr(),
                ptr(&fs),
                flags as libc::c_ulong,
                ptr(&dat).cast(),
            )
        };
        if rc != 0 {
            return Err(SysError::Mount {
                source_path: source.map(Path::to_path_buf),
                target: target.to_path_buf(),
                fstype: fstype.map(str::to_string),
                flags,
                err: last(),
            });
        }
        Ok(())
    }

    fn umount2(&self, target: &Path, flags: i32) -> SysResult<()> {
        let tgt = cpath(target)?;
        // SAFETY: `tgt` is a valid NUL-terminated string for the duration of the call.
        if unsafe { libc::umount2(tgt.as_ptr(), flags) } != 0 {
            return Err(SysError::Umount {
                target: target.to_path_buf(),
                err: last(),
            });
        }
        Ok(())
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> SysResult<()> {
        let n = cpath(new_root)?;
        let o = cpath(put_old)?;
        // SAFETY: pivot_root has no libc wrapper; both arguments are valid NUL-terminated
        // strings that outlive the call.
        if unsafe { libc::syscall(libc::SYS_pivot_root, n.as_ptr(), o.as_ptr()) } != 0 {
            return Err(SysError::PivotRoot {
                new_root: new_root.to_path_buf(),
                put_old: put_old.to_path_buf(),
                err: last(),
            });
        }
        Ok(())
    }

    fn chdir(&self, path: &Path) -> SysResult<()> {
        let p = cpath(path)?;
        // SAFETY: `p` is a valid NUL-terminated string for the duration of the call.
        if unsafe { libc::chdir(p.as_ptr()) } != 0 {
            return Err(SysError::Chdir {
                path: path.to_path_buf(),
                err: last(),
            });
        }
        Ok(())
    }

    fn mkdir(&self, path: &Path, mode: u32) -> SysResult<()> {
        let p = cpath(path)?;
        // SAFETY: `p` is a valid NUL-terminated string for the duration of the call.
        if unsafe { libc::mkdir(p.as_ptr(), mode as libc::mode_t) } != 0 {
            let err = last();
            if err.raw_os_error() != Some(libc::EEXIST) {
                return Err(SysError::Mkdir {
                    path: path.to_path_buf(),
                    err,
                });
            }
        }
        Ok(())
    }

    fn create_file(&self, path: &Path, mode: u32) -> SysResult<()> {
        let p = cpath(path)?;
        // SAFETY: `p` is a valid NUL-terminated string; the returned descriptor is checked and
        // closed right away.
        let fd = unsafe {
            libc::open(
                p.as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        };
        if fd < 0 {
            return Err(SysError::CreateFile {
                path: path.to_path_buf(),
                err: last(),
            });
        }
        // SAFETY: `fd` was just opened by us and is owned by nobody else.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
        Ok(())
    }

    fn write_file(&self, path: &Path, contents: &[u8], mode: u32) -> SysResult<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(path)
            .and_then(|mut f| f.write_all(contents))
            .map_err(|err| SysError::WriteFile {
                path: path.to_path_buf(),
                err,
            })
    }

    fn symlink(&self, target: &Path, link: &Path) -> SysResult<()> {
        std::os::unix::fs::symlink(target, link).map_err(|err| SysError::Symlink {
            target: target.to_path_buf(),
            link: link.to_path_buf(),
            err,
        })
    }

    fn mknod_char(&self, path: &Path, mode: u32, rdev: u64) -> SysResult<()> {
        let p = cpath(path)?;
        // SAFETY: `p` is a valid NUL-terminated string for the duration of the call.
        let rc = unsafe {
            libc::mknod(
                p.as_ptr(),
                libc::S_IFCHR | mode as libc::mode_t,
                rdev as libc::dev_t,
            )
        };
        if rc != 0 {
            return Err(SysError::Mknod {
                path: path.to_path_buf(),
                err: last(),
            });
        }
        Ok(())
    }

    fn sethostname(&self, name: &str) -> SysResult<()> {
        // SAFETY: the pointer and length describe `name`'s bytes, which outlive the call.
        if unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) } != 0 {
            return Err(SysError::Sethostname {
                name: name.to_string(),
                err: last(),
            });
        }
        Ok(())
    }

    fn unshare(&self, flags: i32) -> SysResult<()> {
        // SAFETY: unshare takes plain flags and touches no memory of ours.
        if unsafe { libc::unshare(flags) } != 0 {
            return Err(SysError::Unshare { flags, err: last() });
        }
        Ok(())
    }

    fn setns(&self, fd: RawFd, nstype: i32) -> SysResult<()> {
        // SAFETY: setns takes a descriptor and flags; an invalid descriptor is an error return.
        if unsafe { libc::setns(fd, nstype) } != 0 {
            return Err(SysError::Setns {
                fd,
                nstype,
                err: last(),
            });
        }
        Ok(())
    }

    fn write_fd(&self, fd: RawFd, data: &[u8]) -> SysResult<()> {
        // SAFETY: the pointer and length describe `data`, which outlives the call.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 || n as usize != data.len() {
            return Err(SysError::WriteFd { fd, err: last() });
        }
        Ok(())
    }

    fn close(&self, fd: RawFd) {
        // SAFETY: closing a descriptor this process inherited for the setup and no longer
        // uses; nothing else in the process refers to it.
        unsafe { libc::close(fd) };
    }

    fn dup_to(&self, fd: RawFd, target: RawFd) -> SysResult<()> {
        if fd == target {
            return clear_cloexec(fd).map_err(|err| SysError::Other {
                what: "fcntl(F_SETFD)",
                err,
            });
        }
        // SAFETY: dup2 takes two descriptor numbers; the result is checked. Whatever `target`
        // was is closed by the kernel, as intended.
        if unsafe { libc::dup2(fd, target) } < 0 {
            return Err(SysError::Other {
                what: "dup2",
                err: last(),
            });
        }
        Ok(())
    }

    fn dup_above(&self, fd: RawFd, min: RawFd) -> SysResult<RawFd> {
        // SAFETY: F_DUPFD_CLOEXEC takes a descriptor and a number; the result is checked and
        // never replaces an open descriptor.
        let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) };
        if copy < 0 {
            return Err(SysError::Other {
                what: "fcntl(F_DUPFD_CLOEXEC)",
                err: last(),
            });
        }
        Ok(copy)
    }

    fn setgroups(&self, groups: &[u32]) -> SysResult<()> {
        // SAFETY: the pointer and length describe `groups`, which outlives the call.
        if unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } != 0 {
            return Err(SysError::Setgroups { err: last() });
        }
        Ok(())
    }

    fn fchown(&self, fd: RawFd, uid: u32, gid: u32) -> SysResult<()> {
        // SAFETY: plain integer arguments; the result is checked.
        if unsafe { libc::fchown(fd, uid, gid) } != 0 {
            return Err(SysError::Other {
                what: "fchown",
                err: last(),
            });
        }
        Ok(())
    }

    fn setresgid(&self, gid: u32) -> SysResult<()> {
        // SAFETY: plain integer arguments.
        if unsafe { libc::setresgid(gid, gid, gid) } != 0 {
            return Err(SysError::Setresgid { gid, err: last() });
        }
        Ok(())
    }

    fn setresuid(&self, uid: u32) -> SysResult<()> {
        // SAFETY: plain integer arguments.
        if unsafe { libc::setresuid(uid, uid, uid) } != 0 {
            return Err(SysError::Setresuid { uid, err: last() });
        }
        Ok(())
    }

    fn drop_bounding_cap(&self, cap: u32) -> SysResult<()> {
        // SAFETY: plain integer arguments.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } != 0 {
            let err = last();
            // Capabilities above what this kernel knows are not an error.
            if err.raw_os_error() != Some(libc::EINVAL) {
                return Err(SysError::Prctl {
                    op: "PR_CAPBSET_DROP",
                    err,
                });
            }
        }
        Ok(())
    }

    fn clear_ambient_caps(&self) -> SysResult<()> {
        // SAFETY: plain integer arguments.
        let rc = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                0,
                0,
                0,
            )
        };
        if rc != 0 {
            return Err(SysError::Prctl {
                op: "PR_CAP_AMBIENT_CLEAR_ALL",
                err: last(),
            });
        }
        Ok(())
    }

    fn set_no_new_privs(&self) -> SysResult<()> {
        // SAFETY: plain integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(SysError::Prctl {
                op: "PR_SET_NO_NEW_PRIVS",
                err: last(),
            });
        }
        Ok(())
    }

    fn set_parent_death_signal(&self, signal: i32) -> SysResult<()> {
        // SAFETY: plain integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) } != 0 {
            return Err(SysError::Prctl {
                op: "PR_SET_PDEATHSIG",
                err: last(),
            });
        }
        Ok(())
    }

    fn set_rlimit(&self, resource: Rlimit, soft: u64, hard: u64) -> SysResult<()> {
        let (res, name) = match resource {
            Rlimit::NoFile => (libc::RLIMIT_NOFILE, "RLIMIT_NOFILE"),
            Rlimit::Core => (libc::RLIMIT_CORE, "RLIMIT_CORE"),
        };
        let lim = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: `lim` is a valid rlimit that outlives the call.
        if unsafe { libc::setrlimit(res, &lim) } != 0 {
            return Err(SysError::Setrlimit {
                resource: name,
                err: last(),
            });
        }
        Ok(())
    }

    fn reset_signals(&self) -> SysResult<()> {
        for sig in 1..libc::SIGRTMIN() {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            // SAFETY: installing the default disposition references no handler code.
            if unsafe { libc::signal(sig, libc::SIG_DFL) } == libc::SIG_ERR {
                let err = last();
                if err.raw_os_error() != Some(libc::EINVAL) {
                    return Err(SysError::Signals { err });
                }
            }
        }
        // SAFETY: `set` is initialised by sigemptyset before use; the old mask is not wanted.
        let rc = unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(SysError::Signals { err: last() });
        }
        Ok(())
    }

    fn install_seccomp(&self, program: &seccompiler::BpfProgram) -> SysResult<()> {
        // seccompiler performs the one `seccomp(SECCOMP_SET_MODE_FILTER)` call (after
        // PR_SET_NO_NEW_PRIVS) with its own SAFETY reasoning.
        seccompiler::apply_filter(program).map_err(|e| SysError::Seccomp { err: e.to_string() })
    }

    fn execve(&self, program: &Path, args: &[String], env: &[(String, String)]) -> SysResult<()> {
        let prog = cpath(program)?;
        let argv: Vec<CString> = args
            .iter()
            .map(|a| cstr(OsStr::new(a)))
            .collect::<SysResult<_>>()?;
        let envp: Vec<CString> = env
            .iter()
            .map(|(k, v)| cstr(OsStr::new(&format!("{k}={v}"))))
            .collect::<SysResult<_>>()?;
        let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_p.push(std::ptr::null());
        let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
        envp_p.push(std::ptr::null());
        // SAFETY: `prog`, and the NULL-terminated arrays of pointers into `argv` and `envp`, stay
        // alive for the call; execve only returns on failure.
        unsafe { libc::execve(prog.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr()) };
        Err(SysError::Exec {
            program: program.to_path_buf(),
            err: last(),
        })
    }

    fn write_proc_file(&self, path: &Path, contents: &[u8]) -> SysResult<()> {
        use std::io::Write;
        let err = |err| SysError::WriteProc {
            path: path.to_path_buf(),
            err,
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(err)?;
        // The kernel takes a map in one write(2): a short write is an error, not a retry.
        let n = f.write(contents).map_err(err)?;
        if n != contents.len() {
            return Err(err(io::Error::other(format!(
                "short write: {n} of {} bytes",
                contents.len()
            ))));
        }
        Ok(())
    }

    fn locked_mount_flags(&self, path: &Path) -> SysResult<u64> {
        use nix::sys::statvfs::{statvfs, FsFlags};
        let st = statvfs(path).map_err(|e| SysError::Statvfs {
            path: path.to_path_buf(),
            err: io::Error::from(e),
        })?;
        let f = st.flags();
        let mut out = 0;
        for (have, ms) in [
            (FsFlags::ST_RDONLY, ms::RDONLY),
            (FsFlags::ST_NOSUID, ms::NOSUID),
            (FsFlags::ST_NODEV, ms::NODEV),
            (FsFlags::ST_NOEXEC, ms::NOEXEC),
        ] {
            if f.contains(have) {
                out |= ms;
            }
        }
        Ok(out)
    }

    fn clear_caps(&self) -> SysResult<()> {
        let mut header = CapHeader {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        };
        let data = [CapData::default(); 2];
        // SAFETY: capset has no libc wrapper; `header` and the two-element `data` array are
        // the version-3 layout the kernel reads, and outlive the call.
        let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
        if rc != 0 {
            return Err(SysError::Capset { err: last() });
        }
        Ok(())
    }

    fn loopback_up(&self) -> SysResult<()> {
        set_link_up("lo").map_err(|err| SysError::LoopbackUp { err })
    }

    fn block_destinations(&self, b: &crate::network::Blocklist) -> SysResult<()> {
        crate::network::install_blocklist(b).map_err(|err| SysError::Blocklist { err })
    }

    fn listen_tcp(&self, addr: std::net::SocketAddr) -> SysResult<RawFd> {
        use std::os::fd::IntoRawFd;
        std::net::TcpListener::bind(addr)
            .map(IntoRawFd::into_raw_fd)
            .map_err(|err| SysError::Listen { addr, err })
    }

    fn send_fds(&self, sock: RawFd, data: &[u8], fds: &[RawFd]) -> SysResult<()> {
        send_with_fds(sock, data, fds).map_err(|err| SysError::Send { fd: sock, err })
    }
}

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets, two `CapData`.
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// One recorded kernel operation of [`RecordingKernel`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Mount {
        source: Option<PathBuf>,
        target: PathBuf,
        fstype: Option<String>,
        flags: u64,
        data: Option<String>,
    },
    Umount2 {
        target: PathBuf,
        flags: i32,
    },
    PivotRoot {
        new_root: PathBuf,
        put_old: PathBuf,
    },
    Chdir(PathBuf),
    Mkdir(PathBuf, u32),
    CreateFile(PathBuf),
    WriteFile(PathBuf, Vec<u8>, u32),
    Symlink {
        target: PathBuf,
        link: PathBuf,
    },
    Mknod(PathBuf, u32, u64),
    Sethostname(String),
    Unshare(i32),
    Setns(RawFd, i32),
    WriteFd(RawFd, Vec<u8>),
    Close(RawFd),
    DupTo(RawFd, RawFd),
    /// `fd`, `min`: the fake answers `min + fd`.
    DupAbove(RawFd, RawFd),
    Fchown(RawFd, u32, u32),
    Setgroups(Vec<u32>),
    Setresgid(u32),
    Setresuid(u32),
    DropBoundingCap(u32),
    ClearAmbientCaps,
    NoNewPrivs,
    ParentDeathSignal(i32),
    Rlimit(Rlimit, u64, u64),
    ResetSignals,
    Seccomp(usize),
    Execve {
        program: PathBuf,
        args: Vec<String>,
        env: Vec<(String, String)>,
    },
    WriteProc(PathBuf, Vec<u8>),
    LockedMountFlags(PathBuf),
    ClearCaps,
    LoopbackUp,
    BlockDestinations(crate::network::Blocklist),
    ListenTcp(std::net::SocketAddr),
    SendFds(RawFd, Vec<u8>, Vec<RawFd>),
}

/// A fake kernel that records every call in order, and can be told to fail one of them.
#[derive(Debug, Default)]
pub struct RecordingKernel {
    calls: RefCell<Vec<Call>>,
    fail_at: Option<usize>,
}

impl RecordingKernel {
    /// The descriptor number the fake's `listen_tcp` answers.
    pub const LISTENER_FD: RawFd = 90;

    pub fn new() -> Self {
        Self::default()
    }

    /// A fake whose `n`-th call (0-based) fails with EPERM.
    pub fn failing_at(n: usize) -> Self {
        Self {
            calls: RefCell::default(),
            fail_at: Some(n),
        }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    fn record(&self, call: Call) -> SysResult<()> {
        let mut calls = self.calls.borrow_mut();
        calls.push(call);
        if self.fail_at == Some(calls.len() - 1) {
            return Err(SysError::Other {
                what: "fake failure",
                err: io::Error::from_raw_os_error(libc::EPERM),
            });
        }
        Ok(())
    }
}

impl Kernel for RecordingKernel {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: u64,
        data: Option<&str>,
    ) -> SysResult<()> {
        self.record(Call::Mount {
            source: source.map(Path::to_path_buf),
            target: target.to_path_buf(),
            fstype: fstype.map(str::to_string),
            flags,
            data: data.map(str::to_string),
        })
    }
    fn umount2(&self, target: &Path, flags: i32) -> SysResult<()> {
        self.record(Call::Umount2 {
            target: target.to_path_buf(),
            flags,
        })
    }
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> SysResult<()> {
        self.record(Call::PivotRoot {
            new_root: new_root.to_path_buf(),
            put_old: put_old.to_path_buf(),
        })
    }
    fn chdir(&self, path: &Path) -> SysResult<()> {
        self.record(Call::Chdir(path.to_path_buf()))
    }
    fn mkdir(&self, path: &Path, mode: u32) -> SysResult<()> {
        self.record(Call::Mkdir(path.to_path_buf(), mode))
    }
    fn create_file(&self, path: &Path, _mode: u32) -> SysResult<()> {
        self.record(Call::CreateFile(path.to_path_buf()))
    }
    fn write_file(&self, path: &Path, contents: &[u8], mode: u32) -> SysResult<()> {
        self.record(Call::WriteFile(path.to_path_buf(), contents.to_vec(), mode))
    }
    fn symlink(&self, target: &Path, link: &Path) -> SysResult<()> {
        self.record(Call::Symlink {
            target: target.to_path_buf(),
            link: link.to_path_buf(),
        })
    }
    fn mknod_char(&self, path: &Path, mode: u32, rdev: u64) -> SysResult<()> {
        self.record(Call::Mknod(path.to_path_buf(), mode, rdev))
    }
    fn sethostname(&self, name: &str) -> SysResult<()> {
        self.record(Call::Sethostname(name.to_string()))
    }
    fn unshare(&self, flags: i32) -> SysResult<()> {
        self.record(Call::Unshare(flags))
    }
    fn setns(&self, fd: RawFd, nstype: i32) -> SysResult<()> {
        self.record(Call::Setns(fd, nstype))
    }
    fn write_fd(&self, fd: RawFd, data: &[u8]) -> SysResult<()> {
        self.record(Call::WriteFd(fd, data.to_vec()))
    }
    fn close(&self, fd: RawFd) {
        let _ = self.record(Call::Close(fd));
    }
    fn dup_to(&self, fd: RawFd, target: RawFd) -> SysResult<()> {
        self.record(Call::DupTo(fd, target))
    }
    fn dup_above(&self, fd: RawFd, min: RawFd) -> SysResult<RawFd> {
        self.record(Call::DupAbove(fd, min)).map(|()| min + fd)
    }
    fn setgroups(&self, groups: &[u32]) -> SysResult<()> {
        self.record(Call::Setgroups(groups.to_vec()))
    }
    fn fchown(&self, fd: RawFd, uid: u32, gid: u32) -> SysResult<()> {
        self.record(Call::Fchown(fd, uid, gid))
    }
    fn setresgid(&self, gid: u32) -> SysResult<()> {
        self.record(Call::Setresgid(gid))
    }
    fn setresuid(&self, uid: u32) -> SysResult<()> {
        self.record(Call::Setresuid(uid))
    }
    fn drop_bounding_cap(&self, cap: u32) -> SysResult<()> {
        self.record(Call::DropBoundingCap(cap))
    }
    fn clear_ambient_caps(&self) -> SysResult<()> {
        self.record(Call::ClearAmbientCaps)
    }
    fn set_no_new_privs(&self) -> SysResult<()> {
        self.record(Call::NoNewPrivs)
    }
    fn set_parent_death_signal(&self, signal: i32) -> SysResult<()> {
        self.record(Call::ParentDeathSignal(signal))
    }
    fn set_rlimit(&self, resource: Rlimit, soft: u64, hard: u64) -> SysResult<()> {
        self.record(Call::Rlimit(resource, soft, hard))
    }
    fn reset_signals(&self) -> SysResult<()> {
        self.record(Call::ResetSignals)
    }
    fn install_seccomp(&self, program: &seccompiler::BpfProgram) -> SysResult<()> {
        self.record(Call::Seccomp(program.len()))
    }
    fn execve(&self, program: &Path, args: &[String], env: &[(String, String)]) -> SysResult<()> {
        self.record(Call::Execve {
            program: program.to_path_buf(),
            args: args.to_vec(),
            env: env.to_vec(),
        })
    }
    fn write_proc_file(&self, path: &Path, contents: &[u8]) -> SysResult<()> {
        self.record(Call::WriteProc(path.to_path_buf(), contents.to_vec()))
    }
    fn locked_mount_flags(&self, path: &Path) -> SysResult<u64> {
        self.record(Call::LockedMountFlags(path.to_path_buf()))
            .map(|()| 0)
    }
    fn clear_caps(&self) -> SysResult<()> {
        self.record(Call::ClearCaps)
    }
    fn loopback_up(&self) -> SysResult<()> {
        self.record(Call::LoopbackUp)
    }
    fn block_destinations(&self, b: &crate::network::Blocklist) -> SysResult<()> {
        self.record(Call::BlockDestinations(b.clone()))
    }
    fn listen_tcp(&self, addr: std::net::SocketAddr) -> SysResult<RawFd> {
        self.record(Call::ListenTcp(addr))
            .map(|()| RecordingKernel::LISTENER_FD)
    }
    fn send_fds(&self, sock: RawFd, data: &[u8], fds: &[RawFd]) -> SysResult<()> {
        self.record(Call::SendFds(sock, data.to_vec(), fds.to_vec()))
    }
}

// ---------------------------------------------------------------------------------------------
// Manager-side and process-control operations (real kernel only).

/// Result of [`fork`].
pub enum Forked {
    Child,
    Parent(libc::pid_t),
}

/// fork(2). Only call while the process is single-threaded (the init is).
pub fn fork() -> SysResult<Forked> {
    // SAFETY: the sandbox init is single-threaded when it forks, so the child cannot inherit a
    // lock held by another thread.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(SysError::Other {
            what: "fork",
            err: last(),
        }),
        0 => Ok(Forked::Child),
        p => Ok(Forked::Parent(p)),
    }
}

/// How a waited-for child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitStatus(pub i32);

impl WaitStatus {
    pub fn exit_code(self) -> Option<i32> {
        libc::WIFEXITED(self.0).then(|| libc::WEXITSTATUS(self.0))
    }
    pub fn signal(self) -> Option<i32> {
        libc::WIFSIGNALED(self.0).then(|| libc::WTERMSIG(self.0))
    }
}

/// waitpid(2), retrying on EINTR. `pid` -1 waits for any child.
pub fn waitpid(pid: libc::pid_t) -> SysResult<(libc::pid_t, WaitStatus)> {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer for the duration of the call.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc >= 0 {
            return Ok((rc, WaitStatus(status)));
        }
        let err = last();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(SysError::Other {
                what: "waitpid",
                err,
            });
        }
    }
}

/// kill(2); a process that is already gone is not an error.
pub fn kill(pid: libc::pid_t, signal: i32) -> io::Result<()> {
    // SAFETY: plain integer arguments.
    if unsafe { libc::kill(pid, signal) } != 0 {
        let err = last();
        if err.raw_os_error() != Some(libc::ESRCH) {
            return Err(err);
        }
    }
    Ok(())
}

/// Terminate the calling process with `signal` as its wait status (after restoring the default
/// disposition and unblocking it); falls back to exit 128+signal.
pub fn die_by_signal(signal: i32) -> ! {
    // SAFETY: the default disposition references no handler code; raise delivers the signal to
    // ourselves; _exit never returns.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(signal);
        libc::_exit(128 + signal)
    }
}

/// _exit(2): leave without running destructors or flushing stdio buffers of the parent.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and is always safe to call.
    unsafe { libc::_exit(code) }
}

/// Install `handler` for each of `signals` with SA_RESTART.
pub fn set_signal_handler(signals: &[i32], handler: extern "C" fn(libc::c_int)) -> io::Result<()> {
    for &sig in signals {
        // SAFETY: `act` is fully initialised; `handler` is an `extern "C"` function that only
        // performs async-signal-safe work (an atomic load and kill(2)).
        let rc = unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = handler as *const () as libc::sighandler_t;
            act.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(sig, &act, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(last());
        }
    }
    Ok(())
}

/// A pipe whose ends are close-on-exec: (read, write).
pub fn pipe_cloexec() -> SysResult<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid two-element out-array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(SysError::Other {
            what: "pipe2",
            err: last(),
        });
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// An anonymous, close-on-exec memory file holding `contents`, positioned at its start.
pub fn memfd_with(name: &str, contents: &[u8]) -> io::Result<OwnedFd> {
    use std::io::{Seek, Write};
    let cname = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `cname` is a valid NUL-terminated string; the result is checked.
    let fd = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(last());
    }
    // SAFETY: `fd` was just created and is owned by nobody else.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    file.write_all(contents)?;
    file.seek(io::SeekFrom::Start(0))?;
    Ok(OwnedFd::from(file))
}

/// A connected pair of close-on-exec `SOCK_SEQPACKET` Unix sockets: each `send` arrives as
/// one message, with its descriptors.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(io::Error::from)
}

/// Send `data` as one message on `sock`, passing `fds` along (SCM_RIGHTS).
pub fn send_with_fds(sock: RawFd, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let iov = [io::IoSlice::new(data)];
    let cmsgs = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsgs };
    let sent = sendmsg::<()>(sock, &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None)?;
    if sent != data.len() {
        return Err(io::Error::other(format!(
            "short send: {sent} of {} bytes",
            data.len()
        )));
    }
    Ok(())
}

/// Receive one message of at most `max` bytes from `sock` with up to 8 descriptors (made
/// close-on-exec). An empty message with no descriptors means the peer closed its end.
pub fn recv_with_fds(sock: RawFd, max: usize) -> io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = vec![0u8; max];
    let mut space = nix::cmsg_space!([RawFd; 32]);
    let (len, fds) = {
        let mut iov = [io::IoSliceMut::new(&mut buf)];
        let msg = loop {
            match recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other?,
            }
        };
        if msg.flags.contains(MsgFlags::MSG_TRUNC) || msg.flags.contains(MsgFlags::MSG_CTRUNC) {
            return Err(io::Error::other("message truncated"));
        }
        let mut fds = Vec::new();
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(raw) = c {
                // SAFETY: the kernel just installed these descriptors in this process for us;
                // nothing else refers to them.
                fds.extend(
                    raw.into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
        (msg.bytes, fds)
    };
    buf.truncate(len);
    Ok((buf, fds))
}

/// Clear FD_CLOEXEC on `fd`. Async-signal-safe: used in `pre_exec` closures.
pub fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor number with integer arguments; errors are checked.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
            return Err(last());
        }
    }
    Ok(())
}

/// Have `f` called when the process exits normally (`atexit`: returning from `main` or
/// calling `exit`).
pub fn at_exit(f: extern "C" fn()) -> io::Result<()> {
    // SAFETY: atexit only records the function pointer, which stays valid for the life of the
    // process; `f` is a Rust function with no arguments, and a panic unwinding out of it
    // aborts at its `extern "C"` boundary rather than unwinding into libc.
    if unsafe { libc::atexit(f) } != 0 {
        return Err(io::Error::from(io::ErrorKind::OutOfMemory));
    }
    Ok(())
}

/// Take ownership of a descriptor this process inherited under number `fd` (checked to be
/// open).
pub fn adopt_inherited_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD only inspects the descriptor table.
    if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: the descriptor is open, was handed to this process for this purpose, and nothing
    // else in the process refers to it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Bring the network interface `name` up, in the calling thread's network namespace.
pub fn set_link_up(name: &str) -> io::Result<()> {
    // SAFETY: socket() takes integer arguments; the descriptor is owned right away.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(last());
    }
    // SAFETY: `fd` was just created and is owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: an all-zero ifreq is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= req.ifr_name.len() {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    // SAFETY: `req` is a valid ifreq naming the interface; the kernel fills ifru_flags.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(last());
    }
    // SAFETY: SIOCGIFFLAGS initialised the flags member of the union.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: `req` is a valid ifreq with the new flags.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(last());
    }
    Ok(())
}

/// Move the calling thread into a new network namespace (the thread only: the rest of the
/// process keeps its namespace).
pub fn unshare_net_thread() -> io::Result<()> {
    // SAFETY: unshare takes plain flags; CLONE_NEWNET changes only the calling thread.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(last());
    }
    Ok(())
}

/// Make `dir` a shared mount point on the host (binding it on itself first unless it already
/// is a mount point), so mounts made under it later propagate into the slave copies of
/// environments' namespaces.
pub fn make_shared_mount_point(dir: &Path) -> io::Result<()> {
    let to_io = |e: SysError| match e {
        SysError::Mount { err, .. } => err,
        other => io::Error::other(other.to_string()),
    };
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
    let canonical = dir.canonicalize()?;
    let wanted = canonical.to_string_lossy();
    // Field 5 is the mount point (spaces escaped as \040, which our paths do not contain).
    let mounted = mountinfo
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(wanted.as_ref()));
    if !mounted {
        LinuxKernel
            .mount(Some(&canonical), &canonical, None, ms::BIND, None)
            .map_err(to_io)?;
    }
    LinuxKernel
        .mount(None, &canonical, None, ms::SHARED, None)
        .map_err(to_io)
}

/// Detach a mount on the host side (storage teardown).
pub fn umount_detach(target: &Path) -> io::Result<()> {
    LinuxKernel
        .umount2(target, libc::MNT_DETACH)
        .map_err(|e| match e {
            SysError::Umount { err, .. } => err,
            other => io::Error::other(other.to_string()),
        })
}

/// The calling process's supplementary group ids.
pub fn supplementary_groups() -> Vec<u32> {
    // SAFETY: with size 0 getgroups only returns the count.
    let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    if n <= 0 {
        return Vec::new();
    }
    let mut groups = vec![0 as libc::gid_t; n as usize];
    // SAFETY: `groups` has room for `n` ids.
    let n = unsafe { libc::getgroups(n, groups.as_mut_ptr()) };
    groups.truncate(n.max(0) as usize);
    groups
}

/// The effective uid of the calling process.
pub fn geteuid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// The effective gid of the calling process.
pub fn getegid() -> u32 {
    // SAFETY: getegid cannot fail.
    unsafe { libc::getegid() }
}

/// Move the whole (still single-threaded) process into a new mount namespace in which every
/// mount is a slave of the host's: mounts made afterwards stay private to this process and
/// its children and vanish with them. Returns the host's namespace (to go back to).
pub fn unshare_mounts_as_slave() -> io::Result<OwnedFd> {
    let host = OwnedFd::from(std::fs::File::open("/proc/self/ns/mnt")?);
    // SAFETY: unshare takes plain flags; in a single-threaded process it moves the process.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(last());
    }
    let slave = LinuxKernel.mount(None, Path::new("/"), None, ms::REC | ms::SLAVE, None);
    if let Err(e) = slave {
        // Still a peer of the host's mounts: go back rather than half-isolated.
        // SAFETY: setns takes a descriptor we own and plain flags.
        unsafe { libc::setns(host.as_raw_fd(), libc::CLONE_NEWNS) };
        return Err(io::Error::other(e.to_string()));
    }
    Ok(host)
}

/// Enter the mount namespace `ns` (the calling process must be single-threaded).
pub fn enter_mount_namespace(ns: RawFd) -> io::Result<()> {
    // SAFETY: setns takes a descriptor and plain flags; a bad descriptor is an error return.
    if unsafe { libc::setns(ns, libc::CLONE_NEWNS) } != 0 {
        return Err(last());
    }
    Ok(())
}

/// Threads of the calling process.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// `flock(LOCK_EX | LOCK_NB)`: `Ok(false)` when another open file description holds it.
pub fn try_lock_exclusive(fd: RawFd) -> io::Result<bool> {
    // SAFETY: flock takes a descriptor and flags; a bad descriptor is an error return.
    if unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = last();
    match e.raw_os_error() {
        Some(libc::EWOULDBLOCK) => Ok(false),
        _ => Err(e),
    }
}

/// Start a new session (no controlling terminal: a terminal's SIGINT or SIGHUP to Sous's
/// process group does not reach the caller) and ignore SIGINT, SIGTERM, SIGHUP and SIGPIPE.
pub fn detach_from_signals() {
    // SAFETY: setsid and signal(SIG_IGN) take plain arguments and touch no memory of ours.
    unsafe {
        libc::setsid();
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGPIPE] {
            libc::signal(sig, libc::SIG_IGN);
        }
    }
}

/// Make `recv` on `sock` give up with `EAGAIN` after `timeout`.
pub fn set_recv_timeout(sock: &OwnedFd, timeout: std::time::Duration) -> io::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt::ReceiveTimeout};
    use nix::sys::time::TimeVal;
    let tv = TimeVal::new(
        timeout.as_secs() as libc::time_t,
        timeout.subsec_micros() as libc::suseconds_t,
    );
    setsockopt(sock, ReceiveTimeout, &tv).map_err(io::Error::from)
}

/// Whether the calling process (by its real uid and gids) may write `path`: `access(W_OK)`.
pub fn may_write(path: &Path) -> bool {
    use nix::unistd::{access, AccessFlags};
    access(path, AccessFlags::W_OK).is_ok()
}

/// Whether the calling process (by its real uid and gids) may open `path` for reading and
/// writing: `access(R_OK | W_OK)`.
pub fn may_read_write(path: &Path) -> bool {
    use nix::unistd::{access, AccessFlags};
    access(path, AccessFlags::R_OK | AccessFlags::W_OK).is_ok()
}

/// Number of the highest capability this kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

// ---------------------------------------------------------------------------------------
// Loop devices and sparse files (the environments' /tmp images; `storage`).

/// `<linux/loop.h>`: the ioctls and flag used here.
const LOOP_SET_FD: libc::c_ulong = 0x4C00;
const LOOP_CLR_FD: libc::c_ulong = 0x4C01;
const LOOP_SET_STATUS64: libc::c_ulong = 0x4C04;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LO_FLAGS_AUTOCLEAR: u32 = 4;

/// `struct loop_info64`.
#[repr(C)]
struct LoopInfo64 {
    device: u64,
    inode: u64,
    rdevice: u64,
    offset: u64,
    sizelimit: u64,
    number: u32,
    encrypt_type: u32,
    encrypt_key_size: u32,
    flags: u32,
    file_name: [u8; 64],
    crypt_name: [u8; 64],
    encrypt_key: [u8; 32],
    init: [u64; 2],
}

/// `struct loop_config`.
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

fn autoclear_info() -> LoopInfo64 {
    LoopInfo64 {
        device: 0,
        inode: 0,
        rdevice: 0,
        offset: 0,
        sizelimit: 0,
        number: 0,
        encrypt_type: 0,
        encrypt_key_size: 0,
        flags: LO_FLAGS_AUTOCLEAR,
        file_name: [0; 64],
        crypt_name: [0; 64],
        encrypt_key: [0; 32],
        init: [0; 2],
    }
}

/// Attach `backing` (opened read-write) to a free loop device with autoclear: the device
/// detaches itself when its last user goes away, so mount it before dropping the returned
/// descriptor. Returns the open device and its path. What `mount -o loop` does, without
/// starting mount(8).
pub fn loop_attach(backing: &std::fs::File) -> io::Result<(OwnedFd, PathBuf)> {
    use std::os::unix::fs::OpenOptionsExt;
    let ctl = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open("/dev/loop-control")?;
    let mut last_busy = None;
    // Another process may take the free device between GET_FREE and the attach (EBUSY).
    for _ in 0..64 {
        // SAFETY: LOOP_CTL_GET_FREE takes no argument; it returns a device number or -1.
        let n = unsafe { libc::ioctl(ctl.as_raw_fd(), LOOP_CTL_GET_FREE) };
        if n < 0 {
            return Err(last());
        }
        let path = PathBuf::from(format!("/dev/loop{n}"));
        let dev: OwnedFd = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)?
            .into();
        let config = LoopConfig {
            fd: u32::try_from(backing.as_raw_fd()).map_err(io::Error::other)?,
            block_size: 0,
            info: autoclear_info(),
            reserved: [0; 8],
        };
        // SAFETY: LOOP_CONFIGURE reads a `struct loop_config` (repr(C) above) that lives for
        // the call; both descriptors are open.
        let rc =
            unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_CONFIGURE, std::ptr::from_ref(&config)) };
        if rc == 0 {
            return Ok((dev, path));
        }
        let err = last();
        match err.raw_os_error() {
            Some(libc::EBUSY) => last_busy = Some(err),
            // Kernels before 5.8 have no LOOP_CONFIGURE: attach, then set the flags.
            Some(libc::EINVAL) | Some(libc::ENOTTY) => {
                // SAFETY: LOOP_SET_FD takes the backing descriptor as its argument.
                let rc = unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_SET_FD, backing.as_raw_fd()) };
                if rc != 0 {
                    let err = last();
                    if err.raw_os_error() == Some(libc::EBUSY) {
                        last_busy = Some(err);
                        continue;
                    }
                    return Err(err);
                }
                let info = autoclear_info();
                // SAFETY: LOOP_SET_STATUS64 reads a `struct loop_info64` that lives for the
                // call.
                let rc = unsafe {
                    libc::ioctl(
                        dev.as_raw_fd(),
                        LOOP_SET_STATUS64,
                        std::ptr::from_ref(&info),
                    )
                };
                if rc != 0 {
                    let err = last();
                    // SAFETY: LOOP_CLR_FD takes no argument; undoes the attach above.
                    unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_CLR_FD) };
                    return Err(err);
                }
                return Ok((dev, path));
            }
            _ => return Err(err),
        }
    }
    Err(last_busy.unwrap_or_else(|| io::Error::other("no free loop device")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_records_in_order_and_fails_on_request() {
        let k = RecordingKernel::failing_at(1);
        k.chdir(Path::new("/a")).unwrap();
        assert!(k.mkdir(Path::new("/b"), 0o755).is_err());
        assert_eq!(
            k.calls(),
            vec![Call::Chdir("/a".into()), Call::Mkdir("/b".into(), 0o755)]
        );
    }

    #[test]
    fn real_kernel_reports_the_failing_operation() {
        let err = LinuxKernel
            .chdir(Path::new("/definitely/not/here"))
            .unwrap_err();
        assert!(err.to_string().starts_with("chdir /definitely/not/here"));
    }

    #[test]
    fn memfd_round_trips() {
        use std::io::Read;
        let fd = memfd_with("t", b"hello").unwrap();
        let mut s = String::new();
        std::fs::File::from(fd).read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
    }
}
