//! The environment's `/tmp`: storage, not memory.
//!
//! Each environment gets its own ext4 filesystem of exactly EphemeralStorage megabytes, in a
//! sparse image file under `<state_dir>/tmp/` loop-mounted (with autoclear) on a directory
//! beside it; the init bind-mounts that directory on the environment's `/tmp`. Writes to it
//! are disk blocks of the image, so a 128 MB function can fill a 1 GB `/tmp`, and nothing can
//! write beyond the image's size (ENOSPC). The image is deleted with its environment (never
//! reused, so nothing leaks between environments).
//!
//! Making one is cheap: `mkfs.ext4` runs once per size, for a [`Template`] (the formatted
//! filesystem's few hundred kilobytes of metadata, kept in memory); an image is a sparse file
//! with the template's extents written in, attached to a loop device and mounted by direct
//! system calls. Images of the default size are also prepared ahead by the manager's pool.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use crate::syscalls::{self, Kernel};

/// Lambda's default EphemeralStorage.
pub const DEFAULT_EPHEMERAL_MB: u64 = 512;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{what} {path}: {err}")]
    Io {
        what: &'static str,
        path: PathBuf,
        err: io::Error,
    },
    #[error("{cmd} failed ({status}): {stderr}")]
    Command {
        cmd: String,
        status: String,
        stderr: String,
    },
}

/// A mounted, empty, world-writable (1777) ext4 filesystem.
#[derive(Debug)]
pub struct TmpImage {
    pub size_mb: u64,
    pub file: PathBuf,
    pub mountpoint: PathBuf,
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StorageError + 'a {
    move |err| StorageError::Io {
        what,
        path: path.to_path_buf(),
        err,
    }
}

/// [`io_err`] for a failed kernel operation (its message already names the call and path).
fn sys_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(syscalls::SysError) -> StorageError + 'a {
    move |e| StorageError::Io {
        what,
        path: path.to_path_buf(),
        err: io::Error::other(e.to_string()),
    }
}

fn run(cmd: &mut Command) -> Result<(), StorageError> {
    let out = cmd.output().map_err(|e| StorageError::Command {
        cmd: format!("{cmd:?}"),
        status: "not started".into(),
        stderr: e.to_string(),
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(StorageError::Command {
        cmd: format!("{cmd:?}"),
        status: out.status.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

/// An empty filesystem of one size, as its data extents: what `mkfs.ext4` wrote (without
/// journal nor reserved blocks: a scratch filesystem, all of it the function's), with the root
/// directory made world-writable and sticky (1777) and `lost+found` removed.
#[derive(Debug)]
pub struct Template {
    size_mb: u64,
    extents: Vec<(u64, Vec<u8>)>,
}

impl Template {
    /// Format a filesystem of `size_mb` in a scratch file under `dir` and keep its extents.
    pub fn make(dir: &Path, size_mb: u64) -> Result<Template, StorageError> {
        let file = dir.join(format!("template-{size_mb}-{}.img", std::process::id()));
        let made = Self::make_at(&file, size_mb);
        let _ = std::fs::remove_file(&file);
        let _ = std::fs::remove_dir(file.with_extension(""));
        made
    }

    fn make_at(file: &Path, size_mb: u64) -> Result<Template, StorageError> {
        // Kept open across mkfs (which writes the same file) for the mount and the read back.
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(file)
            .map_err(io_err("create", file))?;
        f.set_len(size_mb << 20).map_err(io_err("size", file))?;
        run(Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", "0", "-O", "^has_journal"])
            .args(["-E", "lazy_itable_init=1,nodiscard"])
            .arg(file))?;
        // Mounted once to shape the root directory as every image's should be.
        let mountpoint = file.with_extension("");
        mount_image(&f, &mountpoint)?;
        let _ = std::fs::remove_dir(mountpoint.join("lost+found"));
        let shaped = std::fs::set_permissions(&mountpoint, std::fs::Permissions::from_mode(0o1777))
            .map_err(io_err("chmod", &mountpoint));
        // Written back before the unmount: a sandbox starting meanwhile copies this mount
        // into its own namespace, and then the unmount here does not end the filesystem,
        // so it would not write it back before the file is read.
        let synced = std::fs::File::open(&mountpoint)
            .and_then(|root| nix::unistd::syncfs(&root).map_err(io::Error::from))
            .map_err(io_err("syncfs", &mountpoint));
        unmount_when_free(&mountpoint).map_err(sys_err("umount", &mountpoint))?;
        shaped?;
        synced?;
        let mut extents = Vec::new();
        for (offset, len) in syscalls::data_extents(&f).map_err(io_err("read extents", file))? {
            let mut data = vec![
                0;
                usize::try_from(len).map_err(|e| StorageError::Io {
                    what: "read extents",
                    path: file.to_path_buf(),
                    err: io::Error::other(e),
                })?
            ];
            f.read_exact_at(&mut data, offset)
                .map_err(io_err("read", file))?;
            extents.push((offset, data));
        }
        Ok(Template { size_mb, extents })
    }

    /// Bytes of data an image made from this template starts with.
    pub fn data_bytes(&self) -> usize {
        self.extents.iter().map(|(_, d)| d.len()).sum()
    }
}

/// One template per size, made on first use.
#[derive(Debug, Default)]
pub struct Templates {
    by_size: Mutex<HashMap<u64, Arc<Template>>>,
}

impl Templates {
    /// The template of `size_mb` (formatting it in `dir` the first time).
    pub fn get(&self, dir: &Path, size_mb: u64) -> Result<Arc<Template>, StorageError> {
        if let Some(t) = self.by_size.lock().unwrap().get(&size_mb) {
            return Ok(t.clone());
        }
        // Two first uses of a size may both format; the result is the same.
        let t = Arc::new(Template::make(dir, size_mb)?);
        Ok(self
            .by_size
            .lock()
            .unwrap()
            .entry(size_mb)
            .or_insert(t)
            .clone())
    }
}

/// Attach `f` to a loop device (autoclear: it goes away with the mount) and mount its ext4 on
/// `mountpoint`. `noinit_itable`: no background zeroing of inode tables (it would turn the
/// sparse image into real disk writes and compete with starts).
fn mount_image(f: &std::fs::File, mountpoint: &Path) -> Result<(), StorageError> {
    std::fs::create_dir_all(mountpoint).map_err(io_err("mkdir", mountpoint))?;
    let (_device, device_path) =
        syscalls::loop_attach(f).map_err(io_err("attach a loop device", mountpoint))?;
    syscalls::LinuxKernel
        .mount(
            Some(&device_path),
            mountpoint,
            Some("ext4"),
            syscalls::ms::NOSUID | syscalls::ms::NODEV | syscalls::ms::NOATIME,
            Some("noinit_itable"),
        )
        .map_err(sys_err("mount", mountpoint))
}

/// Unmount `mountpoint`, waiting out a busy mount for a moment: a child forked meanwhile by
/// another thread of this process holds copies of our descriptors on it (the template's
/// syncfs one) until it execs, which closes them.
fn unmount_when_free(mountpoint: &Path) -> syscalls::SysResult<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match syscalls::LinuxKernel.umount2(mountpoint, 0) {
            Err(syscalls::SysError::Umount { err, .. })
                if err.raw_os_error() == Some(libc::EBUSY)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            done => return done,
        }
    }
}

/// Create image `name` from `template` in `dir` and mount it.
pub fn create(dir: &Path, name: &str, template: &Template) -> Result<TmpImage, StorageError> {
    let file = dir.join(format!("{name}.img"));
    let mountpoint = dir.join(name);
    let img = TmpImage {
        size_mb: template.size_mb,
        file: file.clone(),
        mountpoint: mountpoint.clone(),
    };
    let made = (|| {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&file)
            .map_err(io_err("create", &file))?;
        f.set_len(template.size_mb << 20)
            .map_err(io_err("size", &file))?;
        for (offset, data) in &template.extents {
            f.write_all_at(data, *offset)
                .map_err(io_err("write", &file))?;
        }
        mount_image(&f, &mountpoint)
    })();
    match made {
        Ok(()) => Ok(img),
        Err(e) => {
            let _ = release(&img);
            Err(e)
        }
    }
}

/// Unmount (lazily: a still-running process keeps its view until it dies) and delete.
pub fn release(img: &TmpImage) -> io::Result<()> {
    match syscalls::umount_detach(&img.mountpoint) {
        Ok(()) => {}
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOENT)) => {}
        Err(e) => return Err(e),
    }
    let _ = std::fs::remove_dir(&img.mountpoint);
    match std::fs::remove_file(&img.file) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Remove every image under `dir` (leftovers of a crashed run); returns how many.
pub fn cleanup_dir(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "img") {
            let img = TmpImage {
                size_mb: 0,
                mountpoint: p.with_extension(""),
                file: p,
            };
            if release(&img).is_ok() {
                n += 1;
            }
        } else if p.is_dir() {
            let _ = syscalls::umount_detach(&p);
            let _ = std::fs::remove_dir(&p);
        }
    }
    n
}

/// Make `dir` (and its missing parents) a directory owned by this process's user with mode
/// exactly 0700, and prove it: not a symlink, the right owner, no bit for anyone else.
/// Rootless, every environment's `/tmp` is a directory below the state dir owned by Sous's
/// user outside (the function's user inside): a function may chmod its `/tmp` and plant
/// set-user-id files, so no other host user may reach anything below.
pub fn ensure_private_dir(dir: &Path) -> Result<(), StorageError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(io_err("mkdir", parent))?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
            return Err(StorageError::Io {
                what: "mkdir",
                path: dir.to_path_buf(),
                err: e,
            })
        }
        _ => {}
    }
    let bad = |why: String| StorageError::Io {
        what: "check",
        path: dir.to_path_buf(),
        err: io::Error::other(why),
    };
    let meta = std::fs::symlink_metadata(dir).map_err(io_err("stat", dir))?;
    if !meta.file_type().is_dir() {
        return Err(bad("not a directory (a symlink is refused)".into()));
    }
    let me = syscalls::geteuid();
    if meta.uid() != me {
        return Err(bad(format!(
            "owned by uid {}, not by this user ({me}): chown it or pick another data dir",
            meta.uid()
        )));
    }
    if meta.mode() & 0o7777 != 0o700 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_err("chmod", dir))?;
    }
    let mode = std::fs::symlink_metadata(dir)
        .map_err(io_err("stat", dir))?
        .mode();
    if mode & 0o7777 != 0o700 {
        return Err(bad(format!("mode {:o} after chmod 0700", mode & 0o7777)));
    }
    Ok(())
}

/// Rootless `/tmp`: a private directory per environment (loop-mounting an image needs root).
/// Disk, not memory, and removed with the environment, but its size is not limited:
/// EphemeralStorage is not enforced.
#[derive(Debug)]
pub struct TmpDir {
    pub path: PathBuf,
}

/// Create the empty directory `name` in `dir`, mode 0700: inside, its owner is the function's
/// user (the user namespace maps it onto Sous's user), and no other host user may enter it.
pub fn create_dir(dir: &Path, name: &str) -> Result<TmpDir, StorageError> {
    use std::os::unix::fs::DirBuilderExt;
    let path = dir.join(name);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&path)
        .map_err(io_err("mkdir", &path))?;
    // The umask may have taken bits away; the mode is exact.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))
        .map_err(io_err("chmod", &path))?;
    Ok(TmpDir { path })
}

/// Delete a rootless `/tmp` and everything the function left in it. Only once the
/// environment's processes are all dead: nothing may change the tree while it goes.
pub fn release_dir(d: &TmpDir) -> io::Result<()> {
    remove_tree(&d.path)
}

/// `rm -rf` of a tree a function built, also through directories it made unwritable or
/// unreadable (they are Sous's user's outside, so it may give itself the permission back).
/// Iterative, whatever the depth: one directory descriptor open at a time (its parent is
/// reached again through `..`, checked to be the same directory), the names of
/// subdirectories still to visit kept in memory. Every step is relative to an open
/// directory, with `O_NOFOLLOW` / `AT_SYMLINK_NOFOLLOW`: a symlink is removed, never
/// followed, and a permission is only fixed on the very directory just opened.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let parent = match tree::open_dir(
        libc::AT_FDCWD,
        &tree::cstring(parent.as_os_str().as_bytes())?,
        true,
    ) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    tree::remove_at(&parent, &tree::cstring(name.as_bytes())?)
}

mod tree {
    use std::ffi::{CStr, CString};
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

    pub fn cstring(b: &[u8]) -> io::Result<CString> {
        CString::new(b).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
    }

    fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }

    /// Open directory `name` of `dir` (`follow`: the last component may be a symlink, only
    /// for the caller's own starting point).
    pub fn open_dir(dir: RawFd, name: &CStr, follow: bool) -> io::Result<OwnedFd> {
        let mut flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
        if !follow {
            flags |= libc::O_NOFOLLOW;
        }
        // SAFETY: `name` is NUL-terminated; the descriptor returned is owned at once.
        let fd = cvt(unsafe { libc::openat(dir, name.as_ptr(), flags) })?;
        // SAFETY: `fd` was just opened and is owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn stat_at(dir: RawFd, name: &CStr) -> io::Result<libc::stat> {
        // SAFETY: a zeroed `stat` is a valid value to be overwritten by fstatat.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `name` is NUL-terminated and `st` is a writable stat buffer.
        cvt(unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
        Ok(st)
    }

    fn stat_fd(fd: &OwnedFd) -> io::Result<libc::stat> {
        stat_at(fd.as_raw_fd(), c"").or_else(|_| {
            // SAFETY: as above; fstat on an open descriptor.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: `st` is a writable stat buffer.
            cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) }).map(|_| st)
        })
    }

    fn is_dir(st: &libc::stat) -> bool {
        st.st_mode & libc::S_IFMT == libc::S_IFDIR
    }

    fn same(st: &libc::stat, dev: u64, ino: u64) -> bool {
        st.st_dev == dev && st.st_ino == ino
    }

    fn unlink_at(dir: RawFd, name: &CStr, flags: libc::c_int) -> io::Result<()> {
        // SAFETY: `name` is NUL-terminated.
        match cvt(unsafe { libc::unlinkat(dir, name.as_ptr(), flags) }) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            r => r.map(|_| ()),
        }
    }

    /// Open subdirectory `name` of `dir`, the directory `st` describes, giving its owner
    /// rwx first when it lacks them: through an `O_PATH | O_NOFOLLOW` descriptor of that
    /// very directory (a symlink is never opened, so never followed).
    fn enter(dir: RawFd, name: &CStr, st: &libc::stat) -> io::Result<OwnedFd> {
        let (dev, ino) = (st.st_dev, st.st_ino);
        if st.st_mode & 0o700 != 0o700 {
            let flags = libc::O_PATH | libc::O_NOFOLLOW | libc::O_DIRECTORY | libc::O_CLOEXEC;
            // SAFETY: `name` is NUL-terminated; the descriptor is owned at once.
            let raw = cvt(unsafe { libc::openat(dir, name.as_ptr(), flags) })?;
            // SAFETY: `raw` was just opened and is owned by nobody else.
            let handle = unsafe { OwnedFd::from_raw_fd(raw) };
            if !same(&stat_fd(&handle)?, dev, ino) {
                return Err(io::Error::other("the tree changed during removal"));
            }
            let proc_path = cstring(format!("/proc/self/fd/{raw}").as_bytes())?;
            // SAFETY: `proc_path` is NUL-terminated; it names the directory `handle` holds.
            cvt(unsafe { libc::chmod(proc_path.as_ptr(), 0o700) })?;
        }
        let fd = open_dir(dir, name, false)?;
        if !same(&stat_fd(&fd)?, dev, ino) {
            return Err(io::Error::other("the tree changed during removal"));
        }
        Ok(fd)
    }

    /// Read all of directory `fd`: unlink what is not a directory, return the names of the
    /// subdirectories.
    fn scan(fd: &OwnedFd) -> io::Result<Vec<CString>> {
        // SAFETY: dup of an open descriptor; fdopendir takes the copy (closed by closedir).
        let copy = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) })?;
        // SAFETY: `copy` is an open directory descriptor nobody else owns.
        let d = unsafe { libc::fdopendir(copy) };
        if d.is_null() {
            let e = io::Error::last_os_error();
            // SAFETY: fdopendir failed, so `copy` is still ours to close.
            unsafe { libc::close(copy) };
            return Err(e);
        }
        let mut dirs = Vec::new();
        let result = loop {
            // SAFETY: `d` is an open DIR stream until closedir below.
            let e = unsafe { libc::readdir(d) };
            if e.is_null() {
                break Ok(());
            }
            // SAFETY: readdir returned a valid entry whose d_name is NUL-terminated, valid
            // until the next readdir on `d`; it is copied at once.
            let name = unsafe { CStr::from_ptr((*e).d_name.as_ptr()) }.to_owned();
            if name.as_bytes() == b"." || name.as_bytes() == b".." {
                continue;
            }
            let st = match stat_at(fd.as_raw_fd(), &name) {
                Ok(st) => st,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => break Err(e),
            };
            if is_dir(&st) {
                dirs.push(name);
            } else if let Err(e) = unlink_at(fd.as_raw_fd(), &name, 0) {
                break Err(e);
            }
        };
        // SAFETY: `d` came from fdopendir and is closed once.
        unsafe { libc::closedir(d) };
        result.map(|()| dirs)
    }

    /// One directory of the walk: its name in its parent, its identity, the subdirectories
    /// left to visit.
    struct Level {
        name: CString,
        dev: u64,
        ino: u64,
        pending: Vec<CString>,
    }

    /// Remove `name` of directory `parent` and, if it is a directory, all below it.
    pub fn remove_at(parent: &OwnedFd, name: &CStr) -> io::Result<()> {
        let st = match stat_at(parent.as_raw_fd(), name) {
            Ok(st) => st,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if !is_dir(&st) {
            return unlink_at(parent.as_raw_fd(), name, 0);
        }
        let mut cur = enter(parent.as_raw_fd(), name, &st)?;
        let mut chain = vec![Level {
            name: name.to_owned(),
            dev: st.st_dev,
            ino: st.st_ino,
            pending: scan(&cur)?,
        }];
        loop {
            let top = chain
                .last_mut()
                .expect("the chain holds the current directory");
            if let Some(child) = top.pending.pop() {
                let st = match stat_at(cur.as_raw_fd(), &child) {
                    Ok(st) => st,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                if !is_dir(&st) {
                    unlink_at(cur.as_raw_fd(), &child, 0)?;
                    continue;
                }
                let fd = enter(cur.as_raw_fd(), &child, &st)?;
                let pending = scan(&fd)?;
                chain.push(Level {
                    name: child,
                    dev: st.st_dev,
                    ino: st.st_ino,
                    pending,
                });
                cur = fd;
                continue;
            }
            let done = chain.pop().expect("the chain holds the current directory");
            let Some(up) = chain.last() else {
                drop(cur);
                return unlink_at(parent.as_raw_fd(), &done.name, libc::AT_REMOVEDIR);
            };
            let up_fd = open_dir(cur.as_raw_fd(), c"..", false)?;
            if !same(&stat_fd(&up_fd)?, up.dev, up.ino) {
                return Err(io::Error::other("the tree changed during removal"));
            }
            drop(cur);
            unlink_at(up_fd.as_raw_fd(), &done.name, libc::AT_REMOVEDIR)?;
            cur = up_fd;
        }
    }
}

/// Remove every rootless `/tmp` directory under `dir` (leftovers of a crashed run); returns
/// how many were removed and what could not be.
pub fn cleanup_dirs(dir: &Path) -> (usize, Vec<String>) {
    let mut removed = 0;
    let mut failed = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        match remove_tree(&e.path()) {
            Ok(()) => removed += 1,
            Err(err) => failed.push(format!("{}: {err}", e.path().display())),
        }
    }
    (removed, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_dirs_are_made_or_fixed_to_0700_and_symlinks_refused() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("state/tmp");
        ensure_private_dir(&d).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&d), 0o700);
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o4755)).unwrap();
        ensure_private_dir(&d).unwrap();
        assert_eq!(mode(&d), 0o700);
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&d, &link).unwrap();
        assert!(ensure_private_dir(&link).is_err());
    }

    /// `mkdirat` + open, relative to `dir`.
    fn mkdir_at(dir: &std::os::fd::OwnedFd, name: &str) -> std::os::fd::OwnedFd {
        use std::os::fd::AsRawFd;
        let c = std::ffi::CString::new(name).unwrap();
        // SAFETY: `c` is NUL-terminated.
        assert_eq!(
            unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o755) },
            0
        );
        tree::open_dir(dir.as_raw_fd(), &c, false).unwrap()
    }

    #[test]
    fn a_deep_tree_with_locked_dirs_and_links_out_goes_without_following_a_link() {
        use std::os::fd::AsRawFd;
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), "k").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o500)).unwrap();
        let d = create_dir(t.path(), "env-deep").unwrap();
        // 5000 levels (far past PATH_MAX and any recursion a stack allows), built with
        // *at calls; every 500th level locked (mode 0), links out of the tree on the way.
        let mut fd = tree::open_dir(
            libc::AT_FDCWD,
            &tree::cstring(d.path.as_os_str().as_encoded_bytes()).unwrap(),
            false,
        )
        .unwrap();
        let target = std::ffi::CString::new(outside.as_os_str().as_encoded_bytes()).unwrap();
        let mut locked = Vec::new();
        for depth in 0..5000 {
            if depth % 250 == 0 {
                for link in [c"link", c"dir-link"] {
                    // SAFETY: both strings are NUL-terminated.
                    assert_eq!(
                        unsafe { libc::symlinkat(target.as_ptr(), fd.as_raw_fd(), link.as_ptr()) },
                        0
                    );
                }
                std::fs::write(format!("/proc/self/fd/{}/f", fd.as_raw_fd()), "x").unwrap();
            }
            let next = mkdir_at(&fd, "d");
            if depth % 500 == 499 {
                locked.push(tree::open_dir(next.as_raw_fd(), c".", false).unwrap());
            }
            fd = next;
        }
        // Locked once built (a locked directory would refuse the next level to its owner).
        for l in &locked {
            let c = std::ffi::CString::new(format!("/proc/self/fd/{}", l.as_raw_fd())).unwrap();
            // SAFETY: `c` is NUL-terminated.
            assert_eq!(unsafe { libc::chmod(c.as_ptr(), 0) }, 0);
        }
        drop(locked);
        drop(fd);
        release_dir(&d).unwrap();
        assert!(!d.path.exists());
        assert!(outside.join("keep").exists(), "a symlink was followed");
        assert_eq!(
            std::fs::metadata(&outside).unwrap().permissions().mode() & 0o777,
            0o500,
            "permissions were changed through a symlink"
        );
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[test]
    fn rootless_tmp_dirs_are_private_and_removed_whatever_the_function_did() {
        let t = tempfile::tempdir().unwrap();
        let d = create_dir(t.path(), "env-1").unwrap();
        let mode = std::fs::metadata(&d.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o700);
        // What a function may leave: a locked directory with files, a link out of /tmp.
        let locked = d.path.join("a/b");
        std::fs::create_dir_all(&locked).unwrap();
        std::fs::write(locked.join("f"), "x").unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), "k").unwrap();
        std::os::unix::fs::symlink(&outside, d.path.join("link")).unwrap();
        std::fs::set_permissions(d.path.join("a"), std::fs::Permissions::from_mode(0o000)).unwrap();
        release_dir(&d).unwrap();
        assert!(!d.path.exists());
        assert!(outside.join("keep").exists(), "a symlink was followed");
        // Leftovers of a crash go at the next start.
        create_dir(t.path(), "env-2").unwrap();
        assert_eq!(
            cleanup_dirs(t.path()),
            (2, vec![]),
            "env-2 and the outside dir"
        );
    }
}
