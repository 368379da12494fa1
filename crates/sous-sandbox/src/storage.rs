//! The environment's `/tmp`: storage, not memory.
//!
//! Each environment gets its own ext4 filesystem of exactly EphemeralStorage megabytes, in a
//! sparse image file under `<state_dir>/tmp/` loop-mounted (with autoclear) on a directory
//! beside it; the init bind-mounts that directory on the environment's `/tmp`. Writes to it
//! are disk blocks of the image, so a 128 MB function can fill a 1 GB `/tmp`, and nothing can
//! write beyond the image's size (ENOSPC). The image is deleted with its environment (never
//! reused, so nothing leaks between environments).
//!
//! Making one is cheap: Sous formats the filesystem itself ([`mkfs`], no host program), once
//! per size, into a [`Template`] (the formatted filesystem's few hundred kilobytes of
//! metadata, kept in memory); an image is a sparse file with the template's extents written
//! in, attached to a loop device and mounted by direct system calls. Images of the default
//! size are also prepared ahead by the manager's pool.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::syscalls::{self, Kernel};

pub mod mkfs;

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
    #[error("format the /tmp filesystem: {0}")]
    Format(#[from] mkfs::MkfsError),
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

/// An empty filesystem of one size, as its data extents: what [`mkfs::format`] makes (ext4
/// without journal nor reserved blocks: a scratch filesystem, all of it the function's), its
/// root directory world-writable and sticky (1777), without `lost+found`.
#[derive(Debug)]
pub struct Template {
    size_mb: u64,
    extents: Vec<(u64, Vec<u8>)>,
}

impl Template {
    /// Format a filesystem of `size_mb` in memory.
    pub fn make(size_mb: u64) -> Result<Template, StorageError> {
        let mut random = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| io::Read::read_exact(&mut f, &mut random))
            .map_err(io_err("read", Path::new("/dev/urandom")))?;
        // A random (version 4) UUID.
        random[6] = (random[6] & 0x0f) | 0x40;
        random[8] = (random[8] & 0x3f) | 0x80;
        let (uuid, hash_seed) = random.split_at(16);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
        let formatted = mkfs::format(&mkfs::Options {
            bytes: size_mb << 20,
            root_mode: 0o1777,
            lost_found: false,
            now,
            uuid: uuid.try_into().expect("16 bytes"),
            hash_seed: hash_seed.try_into().expect("16 bytes"),
        })?;
        Ok(Template {
            size_mb,
            extents: formatted.extents,
        })
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
    /// The template of `size_mb` (formatting it the first time).
    pub fn get(&self, size_mb: u64) -> Result<Arc<Template>, StorageError> {
        if let Some(t) = self.by_size.lock().unwrap().get(&size_mb) {
            return Ok(t.clone());
        }
        // Two first uses of a size may both format; the result is the same.
        let t = Arc::new(Template::make(size_mb)?);
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
        nix::fcntl::AT_FDCWD,
        &tree::cstring(parent.as_os_str().as_bytes())?,
        true,
    ) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    tree::remove_at(&parent, &tree::cstring(name.as_bytes())?)
}

/// The walk's steps, each one call relative to an open directory, through nix's safe
/// wrappers (its directory stream reports a failed `readdir` apart from the end of the
/// directory).
mod tree {
    use std::ffi::{CStr, CString};
    use std::io;
    use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
    use std::os::unix::fs::PermissionsExt;

    use nix::fcntl::{AtFlags, OFlag};
    use nix::sys::stat::{FileStat, Mode};
    use nix::unistd::UnlinkatFlags;

    pub fn cstring(b: &[u8]) -> io::Result<CString> {
        CString::new(b).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
    }

    /// Open directory `name` of `dir` (`follow`: the last component may be a symlink, only
    /// for the caller's own starting point).
    pub fn open_dir(dir: BorrowedFd<'_>, name: &CStr, follow: bool) -> io::Result<OwnedFd> {
        let mut flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        if !follow {
            flags |= OFlag::O_NOFOLLOW;
        }
        Ok(nix::fcntl::openat(dir, name, flags, Mode::empty())?)
    }

    fn stat_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<FileStat> {
        Ok(nix::sys::stat::fstatat(
            dir,
            name,
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )?)
    }

    fn stat_fd(fd: &OwnedFd) -> io::Result<FileStat> {
        Ok(nix::sys::stat::fstat(fd)?)
    }

    fn is_dir(st: &FileStat) -> bool {
        st.st_mode & libc::S_IFMT == libc::S_IFDIR
    }

    fn same(st: &FileStat, dev: u64, ino: u64) -> bool {
        st.st_dev == dev && st.st_ino == ino
    }

    fn unlink_at(dir: BorrowedFd<'_>, name: &CStr, flags: UnlinkatFlags) -> io::Result<()> {
        match nix::unistd::unlinkat(dir, name, flags) {
            Err(nix::errno::Errno::ENOENT) => Ok(()),
            r => Ok(r?),
        }
    }

    /// Open subdirectory `name` of `dir`, the directory `st` describes, giving its owner
    /// rwx first when it lacks them: through an `O_PATH | O_NOFOLLOW` descriptor of that
    /// very directory (a symlink is never opened, so never followed).
    fn enter(dir: BorrowedFd<'_>, name: &CStr, st: &FileStat) -> io::Result<OwnedFd> {
        let (dev, ino) = (st.st_dev, st.st_ino);
        if st.st_mode & 0o700 != 0o700 {
            let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
            let handle = nix::fcntl::openat(dir, name, flags, Mode::empty())?;
            if !same(&stat_fd(&handle)?, dev, ino) {
                return Err(io::Error::other("the tree changed during removal"));
            }
            // The directory `handle` holds, named through this process's descriptor table.
            std::fs::set_permissions(
                format!("/proc/self/fd/{}", handle.as_raw_fd()),
                std::fs::Permissions::from_mode(0o700),
            )?;
        }
        let fd = open_dir(dir, name, false)?;
        if !same(&stat_fd(&fd)?, dev, ino) {
            return Err(io::Error::other("the tree changed during removal"));
        }
        Ok(fd)
    }

    /// Read all of directory `fd`: unlink what is not a directory, return the names of the
    /// subdirectories. A failed read of the directory is an error, not its end.
    fn scan(fd: &OwnedFd) -> io::Result<Vec<CString>> {
        // The stream reads through its own copy of the descriptor (closed with it).
        let mut stream = nix::dir::Dir::from_fd(fd.try_clone()?)?;
        let mut dirs = Vec::new();
        for entry in stream.iter() {
            let entry = entry?;
            let name = entry.file_name();
            if name.to_bytes() == b"." || name.to_bytes() == b".." {
                continue;
            }
            let st = match stat_at(fd.as_fd(), name) {
                Ok(st) => st,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if is_dir(&st) {
                dirs.push(name.to_owned());
            } else {
                unlink_at(fd.as_fd(), name, UnlinkatFlags::NoRemoveDir)?;
            }
        }
        Ok(dirs)
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
        let st = match stat_at(parent.as_fd(), name) {
            Ok(st) => st,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if !is_dir(&st) {
            return unlink_at(parent.as_fd(), name, UnlinkatFlags::NoRemoveDir);
        }
        let mut cur = enter(parent.as_fd(), name, &st)?;
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
                let st = match stat_at(cur.as_fd(), &child) {
                    Ok(st) => st,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                if !is_dir(&st) {
                    unlink_at(cur.as_fd(), &child, UnlinkatFlags::NoRemoveDir)?;
                    continue;
                }
                let fd = enter(cur.as_fd(), &child, &st)?;
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
                return unlink_at(parent.as_fd(), &done.name, UnlinkatFlags::RemoveDir);
            };
            let up_fd = open_dir(cur.as_fd(), c"..", false)?;
            if !same(&stat_fd(&up_fd)?, up.dev, up.ino) {
                return Err(io::Error::other("the tree changed during removal"));
            }
            drop(cur);
            unlink_at(up_fd.as_fd(), &done.name, UnlinkatFlags::RemoveDir)?;
            cur = up_fd;
        }
    }
}

/// Remove every rootless `/tmp` directory under `dir` (leftovers of a crashed run); returns
/// how many were removed and what could not be.
pub fn cleanup_dirs(dir: &Path) -> (usize, Vec<String>) {
    let mut removed = 0;
    let mut failed = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return (0, failed),
        Err(e) => return (0, vec![format!("{}: {e}", dir.display())]),
    };
    for e in entries {
        // A failed read of the directory is reported, not taken for its end.
        let e = match e {
            Ok(e) => e,
            Err(err) => {
                failed.push(format!("{}: {err}", dir.display()));
                break;
            }
        };
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

    /// As root: an image made from a template mounts, is empty, world-writable and sticky,
    /// holds what is written to it up to its size (statfs), and `e2fsck -fn` (where the
    /// machine has it) finds it clean before and after the kernel wrote to it.
    /// Write everything of the filesystem at `mountpoint` to its image before e2fsck reads
    /// the file. Unmounting alone is not enough when a test running beside this one made a
    /// mount namespace while the image was mounted: the copy of the mount there keeps the
    /// filesystem alive, unflushed, after this namespace's unmount.
    fn flush(mountpoint: &Path) {
        let dir = std::fs::File::open(mountpoint).unwrap();
        nix::unistd::syncfs(&dir).unwrap();
    }

    #[test]
    fn formatted_images_mount_writable_and_sized() {
        if syscalls::geteuid() != 0 {
            eprintln!("skipped: mounting an image needs root");
            return;
        }
        let e2fsck = mkfs::tests::e2fsck();
        let t = tempfile::tempdir().unwrap();
        for size_mb in [512u64, 1024] {
            let template = Template::make(size_mb).unwrap();
            assert!(template.data_bytes() < 1 << 20, "{}", template.data_bytes());
            let img = create(t.path(), &format!("img-{size_mb}"), &template).unwrap();
            let entries: Vec<_> = std::fs::read_dir(&img.mountpoint).unwrap().collect();
            assert!(entries.is_empty(), "{entries:?}");
            let mode = std::fs::metadata(&img.mountpoint)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o7777, 0o1777);
            let st = nix::sys::statvfs::statvfs(&img.mountpoint).unwrap();
            let size = st.blocks() * st.fragment_size();
            let free = st.blocks_available() * st.fragment_size();
            let bytes = size_mb << 20;
            // The metadata (mostly inode tables) takes under 2%; no block is reserved for
            // root, only the kernel's own reserve (2%, at most 16 MiB) is not available.
            assert!(
                size <= bytes && size > bytes / 100 * 98,
                "{size} of {bytes}"
            );
            assert!(free > bytes / 100 * 96, "{free} of {bytes}");
            // Writable: a large file, and a directory of many entries (an indexed one).
            let chunk = vec![0x5au8; 1 << 20];
            let big = img.mountpoint.join("big");
            let mut f = std::fs::File::create(&big).unwrap();
            for _ in 0..64 {
                io::Write::write_all(&mut f, &chunk).unwrap();
            }
            f.sync_all().unwrap();
            drop(f);
            let many = img.mountpoint.join("many");
            std::fs::create_dir(&many).unwrap();
            for i in 0..2000 {
                std::fs::write(many.join(format!("file-{i}")), i.to_string()).unwrap();
            }
            assert_eq!(std::fs::read(many.join("file-1999")).unwrap(), b"1999");
            assert_eq!(std::fs::metadata(&big).unwrap().len(), 64 << 20);
            // Full: ENOSPC once the space is used, not before (once: it writes the size).
            if size_mb != 512 {
                flush(&img.mountpoint);
                syscalls::LinuxKernel.umount2(&img.mountpoint, 0).unwrap();
                if let Some(e2fsck) = &e2fsck {
                    mkfs::tests::assert_fsck_clean(e2fsck, &img.file);
                }
                release(&img).unwrap();
                continue;
            }
            let mut f = std::fs::File::create(img.mountpoint.join("fill")).unwrap();
            let mut written = 0u64;
            let err = loop {
                match io::Write::write_all(&mut f, &chunk).and_then(|()| f.sync_data()) {
                    Ok(()) => written += chunk.len() as u64,
                    Err(e) => break e,
                }
            };
            assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
            assert!(
                written + (64 << 20) > free / 100 * 98,
                "{written} of {free}"
            );
            drop(f);
            std::fs::remove_file(img.mountpoint.join("fill")).unwrap();
            flush(&img.mountpoint);
            syscalls::LinuxKernel.umount2(&img.mountpoint, 0).unwrap();
            if let Some(e2fsck) = &e2fsck {
                mkfs::tests::assert_fsck_clean(e2fsck, &img.file);
            }
            release(&img).unwrap();
            assert!(!img.file.exists() && !img.mountpoint.exists());
        }
    }

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
        use std::os::fd::AsFd;
        let c = std::ffi::CString::new(name).unwrap();
        nix::sys::stat::mkdirat(
            dir,
            c.as_c_str(),
            nix::sys::stat::Mode::from_bits_truncate(0o755),
        )
        .unwrap();
        tree::open_dir(dir.as_fd(), &c, false).unwrap()
    }

    #[test]
    fn a_deep_tree_with_locked_dirs_and_links_out_goes_without_following_a_link() {
        use std::os::fd::{AsFd, AsRawFd};
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), "k").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o500)).unwrap();
        let d = create_dir(t.path(), "env-deep").unwrap();
        // 5000 levels (far past PATH_MAX and any recursion a stack allows), built with
        // *at calls; every 500th level locked (mode 0), links out of the tree on the way.
        let mut fd = tree::open_dir(
            nix::fcntl::AT_FDCWD,
            &tree::cstring(d.path.as_os_str().as_encoded_bytes()).unwrap(),
            false,
        )
        .unwrap();
        let target = std::ffi::CString::new(outside.as_os_str().as_encoded_bytes()).unwrap();
        let mut locked = Vec::new();
        for depth in 0..5000 {
            if depth % 250 == 0 {
                for link in [c"link", c"dir-link"] {
                    nix::unistd::symlinkat(target.as_c_str(), &fd, link).unwrap();
                }
                std::fs::write(format!("/proc/self/fd/{}/f", fd.as_raw_fd()), "x").unwrap();
            }
            let next = mkdir_at(&fd, "d");
            if depth % 500 == 499 {
                locked.push(tree::open_dir(next.as_fd(), c".", false).unwrap());
            }
            fd = next;
        }
        // Locked once built (a locked directory would refuse the next level to its owner).
        for l in &locked {
            let through = format!("/proc/self/fd/{}", l.as_raw_fd());
            std::fs::set_permissions(through, std::fs::Permissions::from_mode(0o000)).unwrap();
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
