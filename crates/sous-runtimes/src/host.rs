//! Finding a host interpreter as a sandbox will see it.
//!
//! What `PATH` names is often not the interpreter: a virtualenv's `python3` (a link or a copy
//! whose standard library is elsewhere), a pyenv, asdf or volta shim (a script or a small
//! program that picks a version and execs it), SDKMAN's `current` link. None of these exist
//! inside a sandbox, which shows the host's system directories and nothing of the shell that
//! started Sous. So each runtime resolves a candidate in two steps:
//!
//! 1. it asks the candidate, run as the shell would (its environment), which interpreter it
//!    really is (`sys._base_executable`, `process.execPath`, `java.home`), by real path;
//! 2. it runs that real path as a sandbox will (the environment cleared to the one every
//!    function gets: no `PYTHONHOME`, no `LD_LIBRARY_PATH` of the host's), checks its version
//!    and asks what it needs (its standard library, the shared libraries it maps), which must
//!    all be under the system directories the sandbox shows or the interpreter's own
//!    installation, shown read-only at the same path ([`crate::Launch::host_paths`]).
//!
//! A candidate that fails either step is rejected with one log line saying why, and the next
//! one is tried.

use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sous_sandbox::mounts::{ETC_ENTRIES, SYSTEM_DIRS};

/// The longest a probe may take (a shim may be slow to pick its version; a JVM starts).
const PROBE_LIMIT: Duration = Duration::from_secs(20);

/// The environment every function's process gets before its own variables (as Lambda sets
/// them): what a probe of the real interpreter runs with, instead of the host's.
pub(crate) const SANDBOX_ENV: &[(&str, &str)] = &[
    ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin"),
    ("LANG", "en_US.UTF-8"),
    ("TZ", ":UTC"),
    ("LD_LIBRARY_PATH", "/lib64:/usr/lib64"),
];

/// Why an interpreter found on this host is not used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Rejected {
    #[error("does not run ({0})")]
    DoesNotRun(String),
    #[error("is version {found}, not {want}")]
    WrongVersion { found: String, want: &'static str },
    #[error("gave an answer Sous cannot read: {0}")]
    BadAnswer(String),
    #[error(
        "is a virtual environment's interpreter whose base interpreter was not found \
         (sys.prefix {prefix}, sys.base_prefix {base})"
    )]
    Virtualenv { prefix: PathBuf, base: PathBuf },
    #[error(
        "needs {0}, which functions cannot see (outside the host's system directories and \
         the interpreter's installation)"
    )]
    NotVisible(PathBuf),
    #[error(
        "is installed in {install}, which holds Sous's data directory {data_dir}: showing it \
         to functions would expose the data directory"
    )]
    ExposesDataDir { install: PathBuf, data_dir: PathBuf },
}

/// Whether a rejection is worth a warning (an interpreter of the right kind that cannot work
/// in a sandbox) rather than a note (another version, which is common and expected).
impl Rejected {
    pub fn is_expected(&self) -> bool {
        matches!(self, Rejected::WrongVersion { .. })
    }
}

/// Logs one line for a rejected candidate.
pub(crate) fn log_rejected(runtime: &str, candidate: &Path, why: &Rejected) {
    if why.is_expected() {
        tracing::info!(
            runtime,
            interpreter = %candidate.display(),
            "not used: {why}; trying the next"
        );
    } else {
        tracing::warn!(
            runtime,
            interpreter = %candidate.display(),
            "not used: {why}; trying the next"
        );
    }
}

/// The first of `candidates` that `resolve` turns into a runtime a sandbox can run, tried in
/// order. `resolve` is given the real interpreters already tried, so one reached through
/// two names (a shim and its target, `python3.11` and `python3`) is tried once; it answers
/// `Ok(None)` for those. Each rejection is logged once ([`log_rejected`]).
pub(crate) fn first_usable<T>(
    runtime: &str,
    candidates: impl IntoIterator<Item = PathBuf>,
    mut resolve: impl FnMut(&Path, &mut Vec<PathBuf>) -> Result<Option<T>, Rejected>,
) -> Option<T> {
    let mut tried = Vec::new();
    for candidate in candidates {
        match resolve(&candidate, &mut tried) {
            Ok(Some(found)) => return Some(found),
            Ok(None) => {}
            Err(why) => log_rejected(runtime, &candidate, &why),
        }
    }
    None
}

/// Every executable file named one of `names` on `PATH`: for each name in order, each `PATH`
/// directory in order (the first is what a shell would run; the others are what to try when
/// it is rejected). Each path once.
pub fn on_path(names: &[&str]) -> Vec<PathBuf> {
    on_path_in(&std::env::var_os("PATH").unwrap_or_default(), names)
}

/// [`on_path`] for a given `PATH` value.
fn on_path_in(path: &std::ffi::OsStr, names: &[&str]) -> Vec<PathBuf> {
    let dirs: Vec<PathBuf> = std::env::split_paths(path).collect();
    let mut found: Vec<PathBuf> = Vec::new();
    for name in names {
        for d in &dirs {
            let p = d.join(name);
            if is_executable(&p) && !found.contains(&p) {
                found.push(p);
            }
        }
    }
    found
}

/// A regular file (through links) with an execute bit.
pub(crate) fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Whether the sandbox shows `p` through the host's system directories (or it is the root,
/// which a prefix of `/bin/x` is: nothing to add then).
pub(crate) fn shown_by_system(p: &Path) -> bool {
    p == Path::new("/") || SYSTEM_DIRS.iter().any(|d| p.starts_with(d))
}

fn shown_etc(p: &Path) -> bool {
    ETC_ENTRIES.iter().any(|e| p.starts_with(e))
}

/// `p` absolute and normalised (no `.`, `..`): what a host path shown to a sandbox must be.
fn normalised(p: &Path) -> bool {
    p.is_absolute()
        && p.components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
}

/// The installation directories (real paths) the sandbox must show besides its system
/// directories: `dirs` canonicalized, without those the system directories already show and
/// those inside another one.
pub(crate) fn install_dirs(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut real: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|d| std::fs::canonicalize(d).ok())
        .filter(|d| normalised(d) && !shown_by_system(d))
        .collect();
    real.sort();
    real.dedup();
    let outer: Vec<PathBuf> = real
        .iter()
        .filter(|d| !real.iter().any(|o| o != *d && d.starts_with(o)))
        .cloned()
        .collect();
    outer
}

/// Checks that a sandbox showing `install` (and `runtime_dir`) at the same paths sees every
/// one of `needed` (real paths; those that no longer exist, and kernel files, are skipped),
/// and that `install` does not expose the data directory (`data_dir`, when known).
pub(crate) fn check_visible(
    needed: &[PathBuf],
    install: &[PathBuf],
    runtime_dir: &Path,
    data_dir: Option<&Path>,
) -> Result<(), Rejected> {
    if let Some(data) = data_dir.and_then(|d| std::fs::canonicalize(d).ok()) {
        if let Some(i) = install.iter().find(|i| data.starts_with(i)) {
            return Err(Rejected::ExposesDataDir {
                install: i.clone(),
                data_dir: data,
            });
        }
    }
    let runtime_dir = std::fs::canonicalize(runtime_dir).unwrap_or_else(|_| runtime_dir.into());
    for p in needed {
        let kernel = ["/proc", "/sys", "/dev"].iter().any(|k| p.starts_with(k));
        if kernel || !p.is_absolute() || std::fs::symlink_metadata(p).is_err() {
            continue;
        }
        let visible = shown_by_system(p)
            || shown_etc(p)
            || p.starts_with(&runtime_dir)
            || install.iter().any(|i| p.starts_with(i));
        if !visible {
            return Err(Rejected::NotVisible(p.clone()));
        }
    }
    Ok(())
}

/// How a probe runs its program.
pub(crate) enum Env<'a> {
    /// As the shell that started Sous would (to ask a shim or a virtualenv's interpreter what
    /// it is), less these variables.
    Host { remove: &'a [&'a str] },
    /// As a sandbox will: only [`SANDBOX_ENV`].
    Sandbox,
}

/// What a probe printed.
pub(crate) struct Output {
    pub stdout: String,
    pub stderr: String,
}

/// Runs `program args` in `cwd` (bounded by [`PROBE_LIMIT`]); its output when it exits 0,
/// else why not.
pub(crate) fn run(
    program: &Path,
    args: &[&str],
    env: Env<'_>,
    cwd: &Path,
) -> Result<Output, Rejected> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match env {
        Env::Host { remove } => {
            for v in remove {
                cmd.env_remove(v);
            }
        }
        Env::Sandbox => {
            cmd.env_clear().envs(SANDBOX_ENV.iter().copied());
        }
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| Rejected::DoesNotRun(e.to_string()))?;
    let reader = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + PROBE_LIMIT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Rejected::DoesNotRun(format!(
                    "no answer within {} s",
                    PROBE_LIMIT.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(Rejected::DoesNotRun(e.to_string())),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        let first = stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("no message");
        return Err(Rejected::DoesNotRun(format!("{status}: {first}")));
    }
    Ok(Output { stdout, stderr })
}

/// The real path of what `answer` (a path an interpreter printed) names.
pub(crate) fn real_path(answer: &str) -> Result<PathBuf, Rejected> {
    let p = Path::new(answer.trim());
    if !p.is_absolute() {
        return Err(Rejected::BadAnswer(format!(
            "{:?} is not an absolute path",
            answer.trim()
        )));
    }
    std::fs::canonicalize(p).map_err(|e| Rejected::BadAnswer(format!("{}: {e}", p.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_dirs_drop_system_and_nested_directories() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a");
        let b = a.join("b");
        std::fs::create_dir_all(&b).unwrap();
        let got = install_dirs(&[b.clone(), "/usr/local".into(), "/".into(), a.clone()]);
        assert_eq!(got, [std::fs::canonicalize(&a).unwrap()]);
        // Missing directories are not shown.
        assert!(install_dirs(&[t.path().join("missing")]).is_empty());
    }

    #[test]
    fn visibility_is_system_etc_runtime_or_install() {
        let t = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(t.path()).unwrap();
        let install = root.join("py");
        let runtime = root.join("data/runtimes/python3.11");
        let elsewhere = root.join("lib/libpython3.11.so");
        for d in [&install, &runtime] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::create_dir_all(elsewhere.parent().unwrap()).unwrap();
        std::fs::write(&elsewhere, b"").unwrap();
        let ok = [
            PathBuf::from("/bin/sh"),
            install.clone(),
            runtime.clone(),
            PathBuf::from("/proc/self/maps"),
            root.join("gone"),
        ];
        let installs = vec![install];
        assert_eq!(check_visible(&ok, &installs, &runtime, None), Ok(()));
        let needed = vec![elsewhere];
        assert_eq!(
            check_visible(&needed, &installs, &runtime, None),
            Err(Rejected::NotVisible(needed[0].clone()))
        );
        // An installation holding the data directory is refused.
        let data = root.join("data");
        assert!(matches!(
            check_visible(&[], &[root], &runtime, Some(&data)),
            Err(Rejected::ExposesDataDir { .. })
        ));
    }

    #[test]
    fn candidates_are_every_match_on_path_in_order() {
        let t = tempfile::tempdir().unwrap();
        let (one, two) = (t.path().join("one"), t.path().join("two"));
        for d in [&one, &two] {
            std::fs::create_dir_all(d).unwrap();
            let f = d.join("tool");
            std::fs::write(&f, "#!/bin/sh\n").unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(one.join("plain"), "").unwrap();
        let path = std::env::join_paths([&one, &two, &one]).unwrap();
        let found = on_path_in(&path, &["tool", "plain"]);
        assert_eq!(found, [one.join("tool"), two.join("tool")]);
    }

    #[test]
    fn a_failing_probe_says_why() {
        let t = tempfile::tempdir().unwrap();
        let err = run(
            Path::new("/bin/sh"),
            &[
                "-c",
                "echo 'pyenv: python3.11: command not found' >&2; exit 127",
            ],
            Env::Sandbox,
            t.path(),
        )
        .err()
        .unwrap();
        let text = err.to_string();
        assert!(
            text.contains("127") && text.contains("command not found"),
            "{text}"
        );
        let ok = run(
            Path::new("/bin/sh"),
            &["-c", "echo $PATH; echo ${HOME:-nohome}"],
            Env::Sandbox,
            t.path(),
        )
        .ok()
        .unwrap();
        assert_eq!(
            ok.stdout,
            "/usr/local/bin:/usr/bin/:/bin:/opt/bin\nnohome\n"
        );
        assert!(real_path("relative/python").is_err());
    }
}
