//! The `python3.11` managed runtime: Sous's own bootstrap (`python/`, stdlib only) run by the
//! host's CPython 3.11.
//!
//! The bootstrap is two files: `bootstrap.py`, the script the interpreter is started with,
//! and `_sous_runtime.py`, the runtime itself, imported by it so that its bytecode is cached
//! (`__pycache__`, written once here at detection) instead of compiled at every cold start.
//! The interpreter is started with `-u` (unbuffered stdout/stderr, as Lambda's runtime makes
//! them, so output reaches the log before the response does), `-B` (no bytecode written
//! into the function's code, which is read-only on Lambda) and `-S`: `site` is not imported,
//! because it runs every `.pth` file of the host's site-packages at each start (on some hosts
//! that imports half the standard library: +30 ms). The host's site-packages directories stay
//! importable (boto3 is importable on Lambda): found once at detection, they are written into
//! `bootstrap.py`, which appends them to `sys.path` where `site` would.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::Launch;

const BOOTSTRAP: &str = include_str!("../python/bootstrap.py");
const RUNTIME: &str = include_str!("../python/_sous_runtime.py");

/// Materialize the bootstrap into `dir` and find the interpreter; `None` when this host
/// cannot serve the runtime.
pub fn detect(id: &str, dir: &Path) -> io::Result<Option<Launch>> {
    crate::materialize(&dir.join("_sous_runtime.py"), RUNTIME.as_bytes(), 0o644)?;
    let Some(Interpreter {
        program,
        site_packages,
    }) = find_interpreter(dir)
    else {
        return Ok(None);
    };
    let bootstrap = dir.join("bootstrap.py");
    crate::materialize(&bootstrap, bootstrap_for(&site_packages).as_bytes(), 0o644)?;
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
            (
                "PYTHONPATH".into(),
                "/opt/python/lib/python3.11/site-packages:/opt/python".into(),
            ),
        ],
        runtime_dir: dir.to_path_buf(),
    }))
}

/// The bootstrap script, with the interpreter's site-packages directories written in (a JSON
/// list of strings is a Python list literal).
fn bootstrap_for(site_packages: &[String]) -> String {
    let list = serde_json::to_string(site_packages).expect("a list of strings encodes");
    BOOTSTRAP.replace("__SITE_PACKAGES__", &list)
}

/// A CPython 3.11 found on this host.
struct Interpreter {
    /// Its real path (not a shim's).
    program: PathBuf,
    /// The site-packages directories `site` would add (those that exist).
    site_packages: Vec<String>,
}

/// What the probe prints: the interpreter's real path, its version and its site-packages
/// directories (a JSON list). It also imports the runtime module once, which writes its
/// bytecode next to it.
const PROBE: &str =
    "import sys, os, json, site; sys.dont_write_bytecode = False; sys.path.insert(0, sys.argv[1]); \
import _sous_runtime; print(sys.executable); print('%d.%d' % sys.version_info[:2]); \
print(json.dumps([d for d in site.getsitepackages() if os.path.isdir(d)]))";

/// The first of `python3.11`, `python3` on `PATH` that is CPython 3.11.
fn find_interpreter(dir: &Path) -> Option<Interpreter> {
    for name in ["python3.11", "python3"] {
        let Some(candidate) = crate::which(name) else {
            continue;
        };
        if let Some(real) = probe(&candidate, dir) {
            return Some(real);
        }
    }
    None
}

fn probe(candidate: &Path, dir: &Path) -> Option<Interpreter> {
    let out = Command::new(candidate)
        .args(["-s", "-c", PROBE])
        .arg(dir)
        .env_remove("PYTHONPATH")
        .env_remove("PYTHONHOME")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        tracing::debug!(interpreter = %candidate.display(), "python probe failed");
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let program = PathBuf::from(lines.next()?.trim());
    let version = lines.next()?.trim();
    let site_packages = serde_json::from_str(lines.next()?.trim()).ok()?;
    (version == "3.11" && program.is_absolute()).then_some(Interpreter {
        program,
        site_packages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_bootstrap_and_finds_python_when_present() {
        let dir = tempfile::tempdir().unwrap();
        let launch = detect("python3.11", dir.path()).unwrap();
        assert!(dir.path().join("bootstrap.py").is_file());
        assert!(dir.path().join("_sous_runtime.py").is_file());
        if let Some(l) = launch {
            assert!(l.program.is_absolute());
            assert_eq!(l.runtime_dir, dir.path());
            assert!(l
                .env
                .contains(&("AWS_EXECUTION_ENV".into(), "AWS_Lambda_python3.11".into())));
            assert!(dir.path().join("__pycache__").is_dir());
            let script = std::fs::read_to_string(dir.path().join("bootstrap.py")).unwrap();
            assert!(!script.contains("__SITE_PACKAGES__"), "{script}");
            assert!(l.args.contains(&"-S".to_string()));
        }
    }

    #[test]
    fn the_site_packages_list_is_a_python_literal() {
        let script = bootstrap_for(&["/usr/lib/python3/dist-packages".into(), "/a\"b".into()]);
        assert!(
            script.contains(r#"sys.path.extend(["/usr/lib/python3/dist-packages","/a\"b"])"#),
            "{script}"
        );
    }
}
