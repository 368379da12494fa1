//! The AWS SDKs Lambda bundles with its runtimes: boto3 in `python3.11`, the AWS SDK for
//! JavaScript v3 in `nodejs20.x`, so that a function that does not package them can still
//! `import boto3` or `require("@aws-sdk/client-dynamodb")`.
//!
//! Each [`Bundle`] is a pinned set of packages, installed once per host (not per data dir:
//! tests start hundreds of servers, each with a fresh data dir) from PyPI with the host's
//! CPython 3.11's pip (`--target`) or from the npm registry with `npm install --prefix`, into
//! a shared cache: `$SOUS_SDK_DIR`, else `$XDG_CACHE_HOME/sous/sdks`, else
//! `~/.cache/sous/sdks`, one directory per bundle named by runtime and version
//! (`python3.11-boto3-1.43.104`). An install is atomic: it fills `.tmp-<name>-<pid>` under an
//! exclusive lock (`.<name>.lock`, so concurrent servers install once between them), writes a
//! marker, makes everything readable by others (the sandbox user) and renames the directory
//! into place. A bundle whose directory exists is installed; nothing in it is changed after.
//!
//! How a function sees it ([`BundledSdk`]): Lambda puts boto3 in `/var/runtime` (Python's
//! `sys.path`: the task root, the layers' paths, `/var/runtime`, then the standard library)
//! and the v3 SDK in `/var/runtime/node_modules` (on `NODE_PATH` after the layers' paths).
//! `/var/runtime` is the runtime directory (`<data-dir>/runtimes/<id>/`), so once the bundle
//! is installed each of its top-level entries gets a symbolic link there (`boto3 ->
//! <cache>/python3.11-boto3-1.43.104/boto3`, `node_modules -> <cache>/.../node_modules`)
//! and the bundle's directory is shown read-only at its own path in every new environment
//! (`Launch::host_paths`). One bind per environment, whatever the number of packages, and the
//! same links work without isolation. A function's own copy (in `/var/task`) and a layer's
//! (in `/opt`) come first on both search paths, so they win, as on Lambda. An environment
//! started before the bundle is ready does not have its directory bound: the links dangle
//! there and the import fails as if the SDK were absent.

use std::ffi::OsString;
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The installer a bundle is installed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installer {
    /// `python3.11 -m pip install --target DIR PACKAGES`
    Pip,
    /// `npm install --prefix DIR PACKAGES`
    Npm,
}

/// A pinned set of packages a runtime bundles.
#[derive(Debug, PartialEq, Eq)]
pub struct Bundle {
    /// The runtime id (`python3.11`).
    pub runtime: &'static str,
    /// What it is, as docs and logs name it (`boto3 1.43.104`).
    pub label: &'static str,
    /// Its directory's name under the cache root: runtime and pinned version.
    pub dir_name: &'static str,
    pub installer: Installer,
    /// Exact requirements (`boto3==1.43.104`, `@aws-sdk/client-s3@3.1142.0`).
    pub packages: &'static [&'static str],
    /// The top-level entries linked into the runtime directory: `None`, every entry but
    /// [`NOT_LINKED`]; otherwise exactly these.
    pub linked: Option<&'static [&'static str]>,
}

/// Top-level entries of an installed bundle never linked into `/var/runtime`: pip's console
/// scripts, and the marker. (A top-level `__pycache__` is linked file by file, see
/// [`BundledSdk::link`].)
const NOT_LINKED: &[&str] = &["bin", MARKER];

/// Written last into a bundle's directory before it is renamed into place.
const MARKER: &str = ".sous-sdk";

/// boto3 for `python3.11`: boto3 and botocore of the same release, and the versions of their
/// dependencies pip resolved for it (pinned too, so every host gets the same files).
pub const PYTHON311: Bundle = Bundle {
    runtime: "python3.11",
    label: "boto3 1.43.104",
    dir_name: "python3.11-boto3-1.43.104",
    installer: Installer::Pip,
    packages: &[
        "boto3==1.43.104",
        "botocore==1.43.104",
        "s3transfer==0.19.3",
        "jmespath==1.1.0",
        "python-dateutil==2.9.0.post0",
        "urllib3==2.8.0",
        "six==1.17.0",
    ],
    linked: None,
};

/// The AWS SDK for JavaScript v3 for `nodejs20.x`: the clients functions use most, all of one
/// release (the newest that all of them were published at when it was pinned).
pub const NODEJS20: Bundle = Bundle {
    runtime: "nodejs20.x",
    label: "AWS SDK for JavaScript v3 3.1142.0",
    dir_name: "nodejs20.x-aws-sdk-js-3.1142.0",
    installer: Installer::Npm,
    packages: &[
        "@aws-sdk/client-dynamodb@3.1142.0",
        "@aws-sdk/lib-dynamodb@3.1142.0",
        "@aws-sdk/client-s3@3.1142.0",
        "@aws-sdk/client-sqs@3.1142.0",
        "@aws-sdk/client-sns@3.1142.0",
        "@aws-sdk/client-lambda@3.1142.0",
        "@aws-sdk/client-eventbridge@3.1142.0",
        "@aws-sdk/client-kinesis@3.1142.0",
        "@aws-sdk/client-secrets-manager@3.1142.0",
        "@aws-sdk/client-ssm@3.1142.0",
        "@aws-sdk/client-sts@3.1142.0",
        "@aws-sdk/credential-providers@3.1142.0",
    ],
    linked: Some(&["node_modules"]),
};

/// Every bundle, in the order `sous sdk install` installs them.
pub const BUNDLES: &[&Bundle] = &[&PYTHON311, &NODEJS20];

/// The bundle of runtime `id`, if it has one.
pub fn bundle_for(id: &str) -> Option<&'static Bundle> {
    BUNDLES.iter().copied().find(|b| b.runtime == id)
}

/// The cache root from the environment: `$SOUS_SDK_DIR`, `$XDG_CACHE_HOME/sous/sdks`,
/// `$HOME/.cache/sous/sdks` (the first set and absolute).
pub fn default_root() -> Option<PathBuf> {
    root_from(|k| std::env::var_os(k))
}

fn root_from(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let abs = |k: &str| var(k).map(PathBuf::from).filter(|p| p.is_absolute());
    abs("SOUS_SDK_DIR")
        .or_else(|| abs("XDG_CACHE_HOME").map(|c| c.join("sous/sdks")))
        .or_else(|| abs("HOME").map(|h| h.join(".cache/sous/sdks")))
}

impl Bundle {
    /// Where this bundle lives under `root`.
    pub fn dir(&self, root: &Path) -> PathBuf {
        root.join(self.dir_name)
    }

    /// Its directory under `root` when it is installed (complete).
    pub fn installed(&self, root: &Path) -> Option<PathBuf> {
        let dir = self.dir(root);
        dir.join(MARKER).is_file().then_some(dir)
    }
}

/// Where an installer's output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// To this process's stdout and stderr (progress bars when they are a terminal).
    Inherit,
    /// Line by line to the log (`sous serve`).
    Log,
}

/// Why an install failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("no installer: {0}")]
    NoInstaller(String),
    #[error("{what}: {err}")]
    Io {
        what: String,
        #[source]
        err: io::Error,
    },
    #[error("`{command}` failed ({status})")]
    Failed { command: String, status: String },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> InstallError {
    let what = what.into();
    move |err| InstallError::Io { what, err }
}

/// Install `bundle` under `root` unless it already is; its directory. Blocks while another
/// process installs the same bundle, then finds it installed.
pub fn install(bundle: &Bundle, root: &Path, output: Output) -> Result<PathBuf, InstallError> {
    if let Some(dir) = bundle.installed(root) {
        return Ok(dir);
    }
    create_readable_dirs(root)?;
    let lock_path = root.join(format!(".{}.lock", bundle.dir_name));
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_err(format!("open {}", lock_path.display())))?;
    let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive).map_err(
        |(_, e)| InstallError::Io {
            what: format!("lock {}", lock_path.display()),
            err: e.into(),
        },
    )?;
    if let Some(dir) = bundle.installed(root) {
        return Ok(dir);
    }
    // Leftovers of an install that was killed (the lock is ours: nobody fills them now).
    let prefix = format!(".tmp-{}-", bundle.dir_name);
    for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    let dir = bundle.dir(root);
    if dir.exists() {
        // Made by something else than a complete install: replaced.
        std::fs::remove_dir_all(&dir).map_err(io_err(format!("remove {}", dir.display())))?;
    }
    let tmp = root.join(format!("{prefix}{}", std::process::id()));
    std::fs::create_dir(&tmp).map_err(io_err(format!("create {}", tmp.display())))?;
    let result = fill(bundle, &tmp, output).and_then(|()| {
        std::fs::write(tmp.join(MARKER), marker_text(bundle))
            .map_err(io_err(format!("write {}", tmp.join(MARKER).display())))?;
        readable_by_all(&tmp)?;
        std::fs::rename(&tmp, &dir).map_err(io_err(format!("rename to {}", dir.display())))
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result.map(|()| dir)
}

fn marker_text(bundle: &Bundle) -> String {
    let mut s = format!("{} for {}\n", bundle.label, bundle.runtime);
    for p in bundle.packages {
        s.push_str(p);
        s.push('\n');
    }
    s
}

/// `root` and its missing parents, each made `0755` (the sandbox user reads the bundles).
fn create_readable_dirs(root: &Path) -> Result<(), InstallError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(root)
        .map_err(io_err(format!("create {}", root.display())))
}

/// Run the installer of `bundle` into the (empty) directory `into`.
fn fill(bundle: &Bundle, into: &Path, output: Output) -> Result<(), InstallError> {
    let mut cmd = match bundle.installer {
        Installer::Pip => {
            let python = python_with_pip()?;
            let mut c = Command::new(python);
            // -I: none of the operator's PYTHON* variables nor user site-packages.
            c.args(["-I", "-m", "pip", "install", "--no-input"])
                .args(["--disable-pip-version-check", "--no-warn-script-location"])
                .args(["--no-warn-conflicts", "--root-user-action", "ignore"])
                .args(["--only-binary", ":all:", "--target"])
                .arg(into);
            if output == Output::Log {
                c.args(["--progress-bar", "off"]);
            }
            c.args(bundle.packages);
            c
        }
        Installer::Npm => {
            let npm = crate::host::on_path(&["npm"])
                .into_iter()
                .next()
                .ok_or_else(|| {
                    InstallError::NoInstaller(format!(
                        "{} needs npm (it comes with Node.js) on PATH",
                        bundle.runtime
                    ))
                })?;
            let mut c = Command::new(npm);
            c.args(["install", "--prefix"]).arg(into).args([
                "--no-audit",
                "--no-fund",
                "--ignore-scripts",
            ]);
            if output == Output::Log {
                c.arg("--progress=false");
            }
            c.args(bundle.packages);
            c
        }
    };
    cmd.stdin(Stdio::null()).current_dir(into);
    let command = format!("{cmd:?}");
    tracing::info!(
        runtime = bundle.runtime,
        "installing {} into {}: {command}",
        bundle.label,
        into.display()
    );
    let status = match output {
        Output::Inherit => cmd.status(),
        Output::Log => run_logged(cmd, bundle.runtime),
    }
    .map_err(io_err(format!("run {command}")))?;
    if !status.success() {
        return Err(InstallError::Failed {
            command,
            status: status.to_string(),
        });
    }
    Ok(())
}

/// Run `cmd` with its stdout and stderr logged line by line.
fn run_logged(mut cmd: Command, runtime: &str) -> io::Result<std::process::ExitStatus> {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let out = child.stdout.take();
    let err = child.stderr.take();
    std::thread::scope(|s| {
        let log = |r: Box<dyn io::Read + Send>| {
            for line in io::BufReader::new(r).lines().map_while(Result::ok) {
                let line = line.trim_end();
                if !line.is_empty() {
                    tracing::info!(runtime, "sdk install: {line}");
                }
            }
        };
        if let Some(o) = out {
            s.spawn(move || log(Box::new(o)));
        }
        if let Some(e) = err {
            s.spawn(move || log(Box::new(e)));
        }
    });
    child.wait()
}

/// Asked of a Python candidate: whether it is a CPython 3.11 with pip.
const HAS_PIP: &str = "import sys, pip; sys.exit(0 if sys.version_info[:2] == (3, 11) else 3)";

/// The first `python3.11`, `python3` on `PATH` that is a CPython 3.11 with pip (wheels of
/// pure-Python packages and their bytecode are the same for every 3.11).
fn python_with_pip() -> Result<PathBuf, InstallError> {
    for candidate in crate::host::on_path(&["python3.11", "python3"]) {
        let ok = Command::new(&candidate)
            .args(["-I", "-c", HAS_PIP])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Ok(candidate);
        }
    }
    Err(InstallError::NoInstaller(
        "python3.11 needs a CPython 3.11 with pip on PATH (python3.11 or python3; on Debian: \
         apt-get install python3-pip)"
            .into(),
    ))
}

/// Gives others read access to every file and directory under `dir` (and search access to
/// directories and executables), whatever the umask the installer ran with.
fn readable_by_all(dir: &Path) -> Result<(), InstallError> {
    use std::os::unix::fs::PermissionsExt;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(io_err(format!("read {}", d.display())))?;
        for e in entries {
            let e = e.map_err(io_err(format!("read {}", d.display())))?;
            let meta = std::fs::symlink_metadata(e.path())
                .map_err(io_err(format!("stat {}", e.path().display())))?;
            if meta.file_type().is_symlink() {
                continue;
            }
            let mode = meta.permissions().mode();
            let want = if meta.is_dir() || mode & 0o100 != 0 {
                mode | 0o555
            } else {
                mode | 0o444
            };
            if want != mode {
                std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(want))
                    .map_err(io_err(format!("chmod {}", e.path().display())))?;
            }
            if meta.is_dir() {
                stack.push(e.path());
            }
        }
    }
    let mode = std::fs::metadata(dir)
        .map_err(io_err(format!("stat {}", dir.display())))?
        .permissions()
        .mode();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o555))
        .map_err(io_err(format!("chmod {}", dir.display())))
}

/// One runtime's bundled SDK as its environments see it: the bundle, the runtime directory
/// its links are made in, and, once installed, the bundle's directory.
#[derive(Debug, PartialEq, Eq)]
pub struct BundledSdk {
    pub bundle: &'static Bundle,
    /// The cache root it is installed under (`None`: no home, no `SOUS_SDK_DIR`).
    pub root: Option<PathBuf>,
    runtime_dir: PathBuf,
    ready: OnceLock<PathBuf>,
}

impl BundledSdk {
    /// The SDK of the runtime whose directory is `runtime_dir`, ready at once when already
    /// installed under `root`. Links of an earlier run are removed first: they may name
    /// another version.
    pub fn new(bundle: &'static Bundle, runtime_dir: &Path, root: Option<PathBuf>) -> BundledSdk {
        remove_links(runtime_dir);
        let sdk = BundledSdk {
            bundle,
            root,
            runtime_dir: runtime_dir.to_path_buf(),
            ready: OnceLock::new(),
        };
        if let Some(dir) = sdk.root.as_deref().and_then(|r| bundle.installed(r)) {
            if let Err(e) = sdk.set_ready(dir) {
                tracing::warn!(runtime = bundle.runtime, "bundled SDK not shown: {e}");
            }
        }
        sdk
    }

    /// The bundle's directory, once it is installed and linked.
    pub fn ready(&self) -> Option<&Path> {
        self.ready.get().map(PathBuf::as_path)
    }

    /// Links the installed bundle at `dir` into the runtime directory, then shows it to the
    /// environments started from now on.
    pub fn set_ready(&self, dir: PathBuf) -> io::Result<()> {
        if self.ready.get().is_some() {
            return Ok(());
        }
        self.link(&dir)?;
        let _ = self.ready.set(dir);
        Ok(())
    }

    /// Installs the bundle (blocking: a thread of its own) and makes it ready; logs what
    /// happened. Never fails the caller: without the SDK, functions run as before.
    pub fn install_and_show(&self, output: Output) {
        let rt = self.bundle.runtime;
        let Some(root) = &self.root else {
            tracing::warn!(
                runtime = rt,
                "bundled SDK ({}) not installed: no cache directory (set SOUS_SDK_DIR or HOME)",
                self.bundle.label
            );
            return;
        };
        match install(self.bundle, root, output).map(|dir| self.set_ready(dir)) {
            Ok(Ok(())) => tracing::info!(
                runtime = rt,
                "bundled SDK ready: {}; environments started from now on see it",
                self.bundle.label
            ),
            Ok(Err(e)) => tracing::warn!(runtime = rt, "bundled SDK not shown: {e}"),
            Err(e) => tracing::warn!(
                runtime = rt,
                "bundled SDK ({}) could not be installed: {e}; {rt} functions run without it \
                 (`sous sdk install` installs it)",
                self.bundle.label
            ),
        }
    }

    /// A symbolic link in the runtime directory for each linked top-level entry of `dir`;
    /// the files of a top-level `__pycache__` (a module's bytecode, such as `six.py`'s) are
    /// linked one by one into the runtime directory's own `__pycache__`.
    fn link(&self, dir: &Path) -> io::Result<()> {
        let rt = &self.runtime_dir;
        for name in entries(self.bundle, dir)? {
            if name == "__pycache__" {
                let cache = rt.join("__pycache__");
                std::fs::create_dir_all(&cache)?;
                for f in std::fs::read_dir(dir.join("__pycache__"))? {
                    let f = f?;
                    replace_link(&cache.join(f.file_name()), &f.path())?;
                }
                continue;
            }
            let at = rt.join(&name);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if !m.file_type().is_symlink() => {
                    tracing::warn!(
                        runtime = self.bundle.runtime,
                        "bundled SDK entry {} not linked: the runtime has its own",
                        Path::new(&name).display()
                    );
                    continue;
                }
                _ => replace_link(&at, &dir.join(&name))?,
            }
        }
        Ok(())
    }
}

/// The top-level entries of the installed `bundle` at `dir` that are linked.
fn entries(bundle: &Bundle, dir: &Path) -> io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let name = e?.file_name();
        let keep = match bundle.linked {
            Some(only) => only.iter().any(|o| name == *o),
            None => !NOT_LINKED.iter().any(|n| name == *n),
        };
        if keep {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Makes `at` a symbolic link to `target`, atomically (a new link renamed over it).
fn replace_link(at: &Path, target: &Path) -> io::Result<()> {
    if std::fs::read_link(at).ok().as_deref() == Some(target) {
        return Ok(());
    }
    let mut tmp = at.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    std::fs::rename(&tmp, at)
}

/// Removes the symbolic links in `dir` and in its `__pycache__` (Sous's bootstraps are
/// regular files: every link there is a bundled SDK's).
fn remove_links(dir: &Path) {
    for d in [dir.to_path_buf(), dir.join("__pycache__")] {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_symlink()) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_root_follows_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        assert_eq!(
            root_from(env(&[("SOUS_SDK_DIR", "/s"), ("HOME", "/h")])),
            Some(PathBuf::from("/s"))
        );
        assert_eq!(
            root_from(env(&[("XDG_CACHE_HOME", "/c"), ("HOME", "/h")])),
            Some(PathBuf::from("/c/sous/sdks"))
        );
        assert_eq!(
            root_from(env(&[("XDG_CACHE_HOME", "rel"), ("HOME", "/h")])),
            Some(PathBuf::from("/h/.cache/sous/sdks"))
        );
        assert_eq!(root_from(env(&[])), None);
    }

    #[test]
    fn bundles_are_pinned_exactly() {
        for b in BUNDLES {
            assert_eq!(bundle_for(b.runtime), Some(*b));
            for p in b.packages {
                let pinned = match b.installer {
                    Installer::Pip => p.contains("=="),
                    Installer::Npm => p.rsplit_once('@').is_some_and(|(n, v)| {
                        !n.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.')
                    }),
                };
                assert!(pinned, "{p}");
            }
        }
        assert_eq!(bundle_for("java17"), None);
    }

    /// A fake installed bundle: what pip --target leaves.
    fn fake_install(root: &Path) -> PathBuf {
        let dir = PYTHON311.dir(root);
        for d in ["boto3", "botocore", "bin", "__pycache__"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::write(dir.join("boto3/__init__.py"), "__version__ = '1'\n").unwrap();
        std::fs::write(dir.join("six.py"), "").unwrap();
        std::fs::write(dir.join("__pycache__/six.cpython-311.pyc"), "").unwrap();
        std::fs::write(dir.join(MARKER), "").unwrap();
        dir
    }

    #[test]
    fn an_installed_bundle_is_linked_into_the_runtime_dir() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("sdks");
        let rt = t.path().join("runtimes/python3.11");
        std::fs::create_dir_all(rt.join("__pycache__")).unwrap();
        std::fs::write(rt.join("bootstrap.py"), "").unwrap();
        // Not installed yet: nothing is linked or shown.
        let sdk = BundledSdk::new(&PYTHON311, &rt, Some(root.clone()));
        assert_eq!(sdk.ready(), None);
        let dir = fake_install(&root);
        // Installed: ready at once, each entry linked (not bin, not the marker).
        let sdk = BundledSdk::new(&PYTHON311, &rt, Some(root.clone()));
        assert_eq!(sdk.ready(), Some(dir.as_path()));
        assert_eq!(
            std::fs::read_link(rt.join("boto3")).unwrap(),
            dir.join("boto3")
        );
        assert_eq!(
            std::fs::read_link(rt.join("six.py")).unwrap(),
            dir.join("six.py")
        );
        assert_eq!(
            std::fs::read_link(rt.join("__pycache__/six.cpython-311.pyc")).unwrap(),
            dir.join("__pycache__/six.cpython-311.pyc")
        );
        assert!(!rt.join("bin").exists());
        assert!(!rt.join(MARKER).exists());
        assert!(rt.join("bootstrap.py").is_file());
        // A later run without the bundle removes the links.
        std::fs::remove_dir_all(&root).unwrap();
        let sdk = BundledSdk::new(&PYTHON311, &rt, Some(root));
        assert_eq!(sdk.ready(), None);
        assert!(std::fs::symlink_metadata(rt.join("boto3")).is_err());
        assert!(rt.join("bootstrap.py").is_file());
    }

    #[test]
    fn environments_show_the_bundle_once_it_is_ready() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("sdks");
        let rt = t.path().join("runtimes/python3.11");
        std::fs::create_dir_all(&rt).unwrap();
        let sdk = std::sync::Arc::new(BundledSdk::new(&PYTHON311, &rt, Some(root.clone())));
        let launch = crate::Launch {
            program: "/usr/bin/python3.11".into(),
            args: Vec::new(),
            env: Vec::new(),
            runtime_dir: rt.clone(),
            shown: vec!["/opt/py".into()],
            bundled: Some(sdk.clone()),
        };
        assert_eq!(launch.host_paths(), [rt.clone(), "/opt/py".into()]);
        // As the background install does when it is done.
        let dir = fake_install(&root);
        sdk.set_ready(dir.clone()).unwrap();
        assert_eq!(
            launch.clone().host_paths(),
            [rt.clone(), "/opt/py".into(), dir]
        );
        assert!(std::fs::symlink_metadata(rt.join("boto3"))
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn install_leaves_an_installed_bundle_alone() {
        let t = tempfile::tempdir().unwrap();
        let dir = fake_install(t.path());
        assert_eq!(install(&PYTHON311, t.path(), Output::Log).unwrap(), dir);
    }

    #[test]
    fn readable_by_all_opens_files_and_dirs() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("f"), "").unwrap();
        std::fs::set_permissions(d.join("f"), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        readable_by_all(t.path()).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&d), 0o755);
        assert_eq!(mode(&d.join("f")), 0o644);
    }
}
