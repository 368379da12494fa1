//! The `python3.11` managed runtime: Sous's own bootstrap (`python/`, stdlib only) run by the
//! host's CPython 3.11.
//!
//! The bootstrap is two files: `bootstrap.py`, the script the interpreter is started with,
//! and `_sous_runtime.py`, the runtime itself, imported by it so that its bytecode is cached
//! (`__pycache__`, written once here at detection) instead of compiled at every cold start.
//! The interpreter is started with `-u` (unbuffered stdout/stderr, as Lambda's runtime makes
//! them, so output reaches the log before the response does), `-B` (no bytecode written
//! into the function's code, which is read-only on Lambda) and `-S`: `site` is not imported,
//! so none of the host interpreter's site-packages is importable (on Lambda only the
//! function's code, its layers and the runtime's own library are) and no `.pth` file of the
//! host's runs at each start. `sys.path` is Lambda's: the task root, the layers' directories
//! (`PYTHONPATH`), then the standard library.
//!
//! The interpreter is the real one behind what `PATH` names (see `host.rs`): `python3.11`
//! then `python3`, each asked for its base interpreter (`sys._base_executable`: a virtualenv's
//! `home`, a pyenv or asdf shim's target), which is then run as a sandbox will run it.

use std::io;
use std::path::{Path, PathBuf};

use crate::host::{self, Env, Rejected};
use crate::Launch;

const BOOTSTRAP: &str = include_str!("../python/bootstrap.py");
const RUNTIME: &str = include_str!("../python/_sous_runtime.py");

/// Lambda's `PYTHONPATH` entries for layers, in its order.
const LAYER_PATHS: &str = "/opt/python/lib/python3.11/site-packages:/opt/python";

/// Materialize the bootstrap into `dir` and find the interpreter; `None` when this host
/// cannot serve the runtime.
pub fn detect(id: &str, dir: &Path) -> io::Result<Option<Launch>> {
    crate::materialize(&dir.join("_sous_runtime.py"), RUNTIME.as_bytes(), 0o644)?;
    let bootstrap = dir.join("bootstrap.py");
    crate::materialize(&bootstrap, BOOTSTRAP.as_bytes(), 0o644)?;
    let Some(Interpreter { program, shown }) = find_interpreter(id, dir) else {
        return Ok(None);
    };
    Ok(Some(Launch {
        program,
        args: vec![
            "-u".into(),
            "-B".into(),
            "-S".into(),
            bootstrap.display().to_string(),
        ],
        env: vec![
            ("AWS_EXECUTION_ENV".into(), format!("AWS_Lambda_{id}")),
            ("PYTHONPATH".into(), LAYER_PATHS.into()),
        ],
        runtime_dir: dir.to_path_buf(),
        shown,
        bundled: None,
    }))
}

/// A CPython 3.11 found on this host, as a sandbox will run it.
#[derive(Debug)]
struct Interpreter {
    /// Its real path (not a shim's, not a virtualenv's).
    program: PathBuf,
    /// Its installation, when the system directories do not already show it.
    shown: Vec<PathBuf>,
}

/// Asked of a candidate, run as the shell would run it: the real path of the interpreter it
/// runs. A virtualenv's interpreter names its base (`_base_executable`, from `pyvenv.cfg`'s
/// `home`); a shim has exec'd the real one, whose `sys.executable` is itself.
const ASK_BASE: &str = "import os, sys\n\
e = getattr(sys, '_base_executable', '') or ''\n\
if not (e and os.path.isfile(e)): e = sys.executable\n\
print(os.path.realpath(e) if e else '')";

/// Run by the real interpreter as a sandbox will run it: imports the runtime once (which
/// writes its bytecode next to it) and the standard library's extension modules, then prints
/// (JSON) its version, prefixes, import path and every file it has mapped (its shared
/// libraries), as real paths.
const PROBE: &str = r#"import sys, os, json
sys.dont_write_bytecode = False
sys.path.insert(0, sys.argv[1])
import _sous_runtime
missing = []
for m in ("json", "sqlite3", "ctypes", "ssl", "decimal", "hashlib", "zlib", "lzma", "bz2", "uuid", "socket", "select", "zoneinfo"):
    try:
        __import__(m)
    except ImportError:
        missing.append(m)
files = set()
with open("/proc/self/maps") as f:
    for line in f:
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[5].startswith("/"):
            files.add(parts[5].rstrip("\n"))
r = os.path.realpath
print(json.dumps({
    "executable": sys.executable,
    "version": list(sys.version_info[:3]),
    "prefix": r(sys.prefix),
    "base_prefix": r(sys.base_prefix),
    "exec_prefix": r(sys.exec_prefix),
    "path": [r(p) for p in sys.path[1:] if p and os.path.exists(p)],
    "files": sorted(r(f) for f in files),
    "missing": missing,
}))
"#;

/// The first of `python3.11`, `python3` on `PATH` whose real interpreter is a CPython 3.11
/// a sandbox can run.
fn find_interpreter(id: &str, dir: &Path) -> Option<Interpreter> {
    let data_dir = dir.parent().and_then(Path::parent);
    let found = host::first_usable(id, host::on_path(&["python3.11", "python3"]), |c, tried| {
        resolve(c, dir, data_dir, tried)
    });
    if found.is_none() {
        tracing::info!(runtime = id, "no usable CPython 3.11 on PATH");
    }
    found
}

/// Resolves `candidate` to the interpreter a sandbox will run; `Ok(None)` when its real
/// interpreter was already tried (through another name).
fn resolve(
    candidate: &Path,
    dir: &Path,
    data_dir: Option<&Path>,
    tried: &mut Vec<PathBuf>,
) -> Result<Option<Interpreter>, Rejected> {
    let asked = host::run(
        candidate,
        &["-I", "-c", ASK_BASE],
        Env::Host {
            remove: &["PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP"],
        },
        dir,
    )?;
    let real = host::real_path(asked.stdout.lines().next().unwrap_or_default())?;
    if tried.contains(&real) {
        return Ok(None);
    }
    tried.push(real.clone());
    check_real(&real, dir, data_dir).map(Some)
}

/// Runs the real interpreter as a sandbox will (cleared environment, `-S`) and checks it.
fn check_real(real: &Path, dir: &Path, data_dir: Option<&Path>) -> Result<Interpreter, Rejected> {
    let dir_arg = dir.display().to_string();
    let out = host::run(
        real,
        &["-B", "-S", "-c", PROBE, &dir_arg],
        Env::Sandbox,
        dir,
    )?;
    let probe: Probe = serde_json::from_str(out.stdout.trim())
        .map_err(|e| Rejected::BadAnswer(format!("probe output: {e}")))?;
    if probe.version.get(..2) != Some(&[3, 11]) {
        let found = probe
            .version
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(".");
        return Err(Rejected::WrongVersion {
            found,
            want: "3.11",
        });
    }
    if probe.prefix != probe.base_prefix {
        return Err(Rejected::Virtualenv {
            prefix: probe.prefix,
            base: probe.base_prefix,
        });
    }
    let mut dirs = vec![probe.prefix.clone(), probe.exec_prefix.clone()];
    if let Some(p) = real.parent().and_then(Path::parent) {
        dirs.push(p.to_path_buf());
    }
    let shown = host::install_dirs(&dirs);
    let mut needed = vec![real.to_path_buf()];
    needed.extend(probe.path.iter().cloned());
    needed.extend(probe.files.iter().cloned());
    host::check_visible(&needed, &shown, dir, data_dir)?;
    if !probe.missing.is_empty() {
        tracing::info!(
            interpreter = %real.display(),
            "python3.11: this interpreter lacks standard modules functions may import: {}",
            probe.missing.join(", ")
        );
    }
    Ok(Interpreter {
        program: real.to_path_buf(),
        shown,
    })
}

/// What [`PROBE`] prints.
#[derive(Debug, serde::Deserialize)]
struct Probe {
    version: Vec<u32>,
    prefix: PathBuf,
    base_prefix: PathBuf,
    exec_prefix: PathBuf,
    path: Vec<PathBuf>,
    files: Vec<PathBuf>,
    missing: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// The host's CPython 3.11, resolved as `sous serve` would; `None` without one (a host
    /// with a `python3.11` on `PATH` must have one).
    fn host_python() -> Option<Interpreter> {
        let dir = tempfile::tempdir().unwrap();
        crate::materialize(
            &dir.path().join("_sous_runtime.py"),
            RUNTIME.as_bytes(),
            0o644,
        )
        .unwrap();
        let found = find_interpreter("python3.11", dir.path());
        if !host::on_path(&["python3.11"]).is_empty() {
            assert!(
                found.is_some(),
                "python3.11 is on PATH but was not resolved"
            );
        }
        found
    }

    fn runtime_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        crate::materialize(
            &dir.path().join("_sous_runtime.py"),
            RUNTIME.as_bytes(),
            0o644,
        )
        .unwrap();
        dir
    }

    #[test]
    fn writes_the_bootstrap_and_finds_python_when_present() {
        let dir = tempfile::tempdir().unwrap();
        let launch = detect("python3.11", dir.path()).unwrap();
        assert!(dir.path().join("bootstrap.py").is_file());
        assert!(dir.path().join("_sous_runtime.py").is_file());
        if let Some(l) = launch {
            assert!(l.program.is_absolute());
            assert_eq!(
                Some(l.program.clone()),
                std::fs::canonicalize(&l.program).ok()
            );
            assert_eq!(l.runtime_dir, dir.path());
            assert!(l
                .env
                .contains(&("AWS_EXECUTION_ENV".into(), "AWS_Lambda_python3.11".into())));
            assert!(dir.path().join("__pycache__").is_dir());
            assert!(l.args.contains(&"-S".to_string()));
            // No host site-packages are written into the bootstrap.
            let script = std::fs::read_to_string(dir.path().join("bootstrap.py")).unwrap();
            assert!(!script.contains("site-packages\""), "{script}");
        }
    }

    #[test]
    fn a_virtualenv_resolves_to_its_base_interpreter() {
        let Some(base) = host_python() else {
            return;
        };
        let t = tempfile::tempdir().unwrap();
        let venv = t.path().join("venv");
        for copies in [false, true] {
            let _ = std::fs::remove_dir_all(&venv);
            let mut cmd = std::process::Command::new(&base.program);
            cmd.args(["-m", "venv", "--without-pip"]);
            if copies {
                cmd.arg("--copies");
            }
            assert!(cmd.arg(&venv).status().unwrap().success());
            let rt = runtime_dir();
            let mut tried = Vec::new();
            let found = resolve(&venv.join("bin/python3"), rt.path(), None, &mut tried)
                .unwrap()
                .unwrap();
            assert_eq!(found.program, base.program, "copies: {copies}");
            assert_eq!(found.shown, base.shown);
            assert!(found.shown.iter().all(|s| !s.starts_with(t.path())));
            // The same interpreter through another name is not probed twice.
            let again = resolve(&venv.join("bin/python"), rt.path(), None, &mut tried).unwrap();
            assert!(again.is_none());
        }
    }

    #[test]
    fn a_shim_resolves_to_the_interpreter_it_runs() {
        let Some(base) = host_python() else {
            return;
        };
        let t = tempfile::tempdir().unwrap();
        let shim = t.path().join("python3.11");
        // As pyenv's: a shell script that execs the version it picks.
        std::fs::write(
            &shim,
            format!("#!/bin/sh\nexec \"{}\" \"$@\"\n", base.program.display()),
        )
        .unwrap();
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
        let rt = runtime_dir();
        let found = resolve(&shim, rt.path(), None, &mut Vec::new())
            .unwrap()
            .unwrap();
        assert_eq!(found.program, base.program);

        // A shim that cannot run its interpreter is rejected, saying why.
        std::fs::write(
            &shim,
            "#!/bin/sh\necho 'pyenv: python3.11: command not found' >&2\nexit 127\n",
        )
        .unwrap();
        let err = resolve(&shim, rt.path(), None, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("command not found"), "{err}");
    }

    #[test]
    fn other_versions_are_rejected_by_version() {
        let t = tempfile::tempdir().unwrap();
        // A stand-in interpreter answering like a CPython 3.12 would.
        let fake = t.path().join("python3");
        std::fs::write(
            &fake,
            "#!/bin/sh\nif [ \"$1\" = -I ]; then echo \"$0\"; exit 0; fi\n\
             echo '{\"version\":[3,12,1],\"prefix\":\"/usr\",\"base_prefix\":\"/usr\",\
             \"exec_prefix\":\"/usr\",\"path\":[],\"files\":[],\"missing\":[]}'\n",
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let rt = runtime_dir();
        let err = resolve(&fake, rt.path(), None, &mut Vec::new()).unwrap_err();
        assert_eq!(
            err,
            Rejected::WrongVersion {
                found: "3.12.1".into(),
                want: "3.11"
            }
        );
        assert!(err.is_expected());
    }

    #[test]
    fn an_interpreter_needing_a_hidden_library_is_rejected() {
        let t = tempfile::tempdir().unwrap();
        let home = std::fs::canonicalize(t.path()).unwrap();
        let hidden = home.join("elsewhere/libpython3.11.so.1.0");
        std::fs::create_dir_all(hidden.parent().unwrap()).unwrap();
        std::fs::write(&hidden, b"").unwrap();
        let fake = home.join("py/bin/python3.11");
        std::fs::create_dir_all(fake.parent().unwrap()).unwrap();
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\nif [ \"$1\" = -I ]; then echo \"$0\"; exit 0; fi\n\
                 echo '{{\"version\":[3,11,9],\"prefix\":\"{p}\",\"base_prefix\":\"{p}\",\
                 \"exec_prefix\":\"{p}\",\"path\":[],\"files\":[\"{h}\"],\"missing\":[]}}'\n",
                p = home.join("py").display(),
                h = hidden.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let rt = runtime_dir();
        let err = resolve(&fake, rt.path(), None, &mut Vec::new()).unwrap_err();
        assert_eq!(err, Rejected::NotVisible(hidden));
    }
}
