//! The `nodejs20.x` managed runtime: Sous's own bootstrap (`node/bootstrap.cjs`, plain
//! JavaScript with no dependencies) run by the host's Node.js 20.
//!
//! The bootstrap loads the handler named by `_HANDLER` (CommonJS, ES modules, `.cjs`; nested
//! directories), loops on the Runtime API (over the pipes Sous gives managed runtimes,
//! `_SOUS_RUNTIME_API_PIPES`, with blocking reads and writes: no `net`, no streams), gives the handler Lambda's event, context object and
//! callback (with `callbackWaitsForEmptyEventLoop`), reports errors in Lambda's Node.js shape
//! (`errorType`, `errorMessage`, `trace`), patches `console` to write Lambda's
//! `time\trequest id\tLEVEL\tmessage` records as frames on the telemetry fd, and ends the process
//! on uncaught exceptions and unhandled rejections, as Lambda's Node.js runtime does. When the
//! function does not set `NODE_PATH`, it sets Lambda's (layers' `/opt/nodejs/...` first, then the
//! runtime and the task root).
//!
//! The interpreter is the real one behind a `node` on `PATH` (see `host.rs`): an nvm or volta
//! install, an asdf shim, a `/usr/local` build, each asked for `process.execPath`, which is
//! then run as a sandbox will run it. Node's own global folders are not importable: a sandbox
//! has no `HOME` (so no `~/.node_modules`), and npm's global `node_modules` is not on any
//! search path.

use std::io;
use std::path::{Path, PathBuf};

use crate::host::{self, Env, Rejected};
use crate::Launch;

/// The bootstrap, as shipped in the binary.
const BOOTSTRAP: &str = include_str!("../node/bootstrap.cjs");
/// Its file name under the runtime directory (`.cjs`: CommonJS whatever `package.json` is
/// above the data dir).
pub const BOOTSTRAP_FILE: &str = "bootstrap.cjs";
/// The Node.js major version `nodejs20.x` runs on.
pub const MAJOR: u32 = 20;

/// Materialize the bootstrap into `dir` and find the interpreter; `None` when this host
/// cannot serve the runtime (no usable Node.js 20 behind any `node` on `PATH`).
pub fn detect(id: &str, dir: &Path) -> io::Result<Option<Launch>> {
    let bootstrap = dir.join(BOOTSTRAP_FILE);
    crate::materialize(&bootstrap, BOOTSTRAP.as_bytes(), 0o644)?;
    let data_dir = dir.parent().and_then(Path::parent);
    let found = host::first_usable(id, host::on_path(&["node"]), |c, tried| {
        resolve(c, dir, data_dir, tried)
    });
    let Some((node, shown)) = found else {
        tracing::info!(runtime = id, "no usable Node.js {MAJOR} on PATH");
        return Ok(None);
    };
    Ok(Some(launch(id, node, shown, dir)))
}

/// Asked of a candidate, run as the shell would: the real path of the node it is.
const ASK_EXEC_PATH: &str = "process.stdout.write(require('fs').realpathSync(process.execPath))";

/// Run by the real node as a sandbox will: its version, and every file it has mapped (its
/// shared libraries, ICU data) once the modules a function commonly uses are loaded.
const PROBE: &str = r#"for (const m of ['crypto', 'zlib', 'https', 'dns', 'worker_threads']) require(m);
new Intl.DateTimeFormat('en-US', { timeZone: 'UTC' }).format(0);
const fs = require('fs');
const files = new Set();
for (const line of fs.readFileSync('/proc/self/maps', 'utf8').split('\n')) {
  const i = line.indexOf('/');
  if (i > 0 && line.slice(0, i).trim().split(/\s+/).length === 5) files.add(line.slice(i));
}
const real = (f) => { try { return fs.realpathSync(f); } catch { return f; } };
process.stdout.write(JSON.stringify({
  version: process.version,
  execPath: real(process.execPath),
  files: [...files].map(real).sort(),
}));
"#;

/// Resolves `candidate` to the node a sandbox will run and what it needs shown; `Ok(None)`
/// when that node was already tried (through another name).
fn resolve(
    candidate: &Path,
    dir: &Path,
    data_dir: Option<&Path>,
    tried: &mut Vec<PathBuf>,
) -> Result<Option<(PathBuf, Vec<PathBuf>)>, Rejected> {
    let asked = host::run(
        candidate,
        &["-e", ASK_EXEC_PATH],
        Env::Host {
            remove: &["NODE_OPTIONS", "NODE_PATH"],
        },
        dir,
    )?;
    let real = host::real_path(&asked.stdout)?;
    if tried.contains(&real) {
        return Ok(None);
    }
    tried.push(real.clone());
    let out = host::run(&real, &["-e", PROBE], Env::Sandbox, dir)?;
    let probe: serde_json::Value = serde_json::from_str(out.stdout.trim())
        .map_err(|e| Rejected::BadAnswer(format!("probe output: {e}")))?;
    let version = probe["version"].as_str().unwrap_or_default();
    if major(version) != Some(MAJOR) {
        return Err(Rejected::WrongVersion {
            found: version.to_string(),
            want: "20.x",
        });
    }
    let shown = host::install_dirs(
        &real
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .into_iter()
            .collect::<Vec<_>>(),
    );
    let mut needed = vec![real.clone()];
    needed.extend(
        probe["files"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str())
            .map(PathBuf::from),
    );
    host::check_visible(&needed, &shown, dir, data_dir)?;
    Ok(Some((real, shown)))
}

/// How `nodejs20.x` starts: Lambda's Node.js options, then the bootstrap. Not `--expose-gc`,
/// which Lambda passes: any V8 flag makes node discard its built-in code cache (about 10 ms
/// more per cold start here), so the bootstrap provides `global.gc` on first use instead.
fn launch(id: &str, node: PathBuf, shown: Vec<PathBuf>, dir: &Path) -> Launch {
    Launch {
        program: node,
        args: vec![
            "--max-http-header-size=81920".into(),
            dir.join(BOOTSTRAP_FILE).display().to_string(),
        ],
        env: vec![("AWS_EXECUTION_ENV".into(), format!("AWS_Lambda_{id}"))],
        runtime_dir: dir.to_path_buf(),
        shown,
        bundled: None,
    }
}

/// The major version of a `node --version` string.
fn major(version: &str) -> Option<u32> {
    version
        .strip_prefix('v')
        .unwrap_or(version)
        .split('.')
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_major_versions() {
        assert_eq!(major("v20.11.1"), Some(20));
        assert_eq!(major("20.0.0"), Some(20));
        assert_eq!(major("v18.19.0"), Some(18));
        assert_eq!(major("node"), None);
        assert_eq!(major(""), None);
    }

    #[test]
    fn launch_runs_the_bootstrap_with_lambdas_flags() {
        let l = launch(
            "nodejs20.x",
            "/usr/bin/node".into(),
            vec!["/root/.nvm/versions/node/v20.11.1".into()],
            Path::new("/rt"),
        );
        assert_eq!(l.program, Path::new("/usr/bin/node"));
        assert_eq!(l.args.last().map(String::as_str), Some("/rt/bootstrap.cjs"));
        assert_eq!(
            l.env,
            [(
                "AWS_EXECUTION_ENV".to_string(),
                "AWS_Lambda_nodejs20.x".to_string()
            )]
        );
        assert_eq!(l.runtime_dir, Path::new("/rt"));
        assert_eq!(
            l.host_paths(),
            [
                PathBuf::from("/rt"),
                PathBuf::from("/root/.nvm/versions/node/v20.11.1")
            ]
        );
    }

    /// `node --version` of the first `node` on `PATH`, run directly.
    fn host_node_major() -> Option<u32> {
        let node = host::on_path(&["node"]).into_iter().next()?;
        let out = std::process::Command::new(node)
            .arg("--version")
            .output()
            .ok()?;
        major(String::from_utf8_lossy(&out.stdout).trim())
    }

    #[test]
    fn detect_writes_the_bootstrap() {
        let dir = tempfile::tempdir().unwrap();
        let rt = dir.path().join("nodejs20.x");
        let found = detect("nodejs20.x", &rt).unwrap();
        let written = std::fs::read_to_string(rt.join(BOOTSTRAP_FILE)).unwrap();
        assert_eq!(written, BOOTSTRAP);
        // Served when this host's node is Node.js 20, by its real path.
        if host_node_major() == Some(MAJOR) {
            let l = found.expect("Node.js 20 on PATH is served");
            assert_eq!(
                Some(l.program.clone()),
                std::fs::canonicalize(&l.program).ok()
            );
        }
    }

    fn script(path: &Path, text: &str) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn a_shim_resolves_to_the_node_it_runs() {
        let dir = tempfile::tempdir().unwrap();
        let rt = dir.path().join("nodejs20.x");
        let Some(real) = detect("nodejs20.x", &rt).unwrap() else {
            return;
        };
        // As asdf's: a shell script that execs the version it picks.
        let shim = dir.path().join("shims/node");
        script(
            &shim,
            &format!("#!/bin/sh\nexec \"{}\" \"$@\"\n", real.program.display()),
        );
        let (node, shown) = resolve(&shim, &rt, None, &mut Vec::new()).unwrap().unwrap();
        assert_eq!(node, real.program);
        assert_eq!(shown, real.shown);
        // Tried once, whatever the name.
        assert!(resolve(&shim, &rt, None, &mut vec![node])
            .unwrap()
            .is_none());
    }

    #[test]
    fn other_versions_are_rejected_by_version() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("bin/node");
        script(
            &fake,
            "#!/bin/sh\ncase \"$2\" in process.stdout.write*) printf %s \"$0\"; exit 0;; esac\n\
             printf '{\"version\":\"v18.19.0\",\"files\":[]}'\n",
        );
        let err = resolve(&fake, dir.path(), None, &mut Vec::new()).unwrap_err();
        assert_eq!(
            err,
            Rejected::WrongVersion {
                found: "v18.19.0".into(),
                want: "20.x"
            }
        );
    }
}
