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

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::Launch;

/// The bootstrap, as shipped in the binary.
const BOOTSTRAP: &str = include_str!("../node/bootstrap.cjs");
/// Its file name under the runtime directory (`.cjs`: CommonJS whatever `package.json` is
/// above the data dir).
pub const BOOTSTRAP_FILE: &str = "bootstrap.cjs";
/// The Node.js major version `nodejs20.x` runs on.
pub const MAJOR: u32 = 20;

/// Materialize the bootstrap into `dir` and find the interpreter; `None` when this host
/// cannot serve the runtime (no `node` on `PATH`, or not Node.js 20).
pub fn detect(id: &str, dir: &Path) -> io::Result<Option<Launch>> {
    let bootstrap = dir.join(BOOTSTRAP_FILE);
    crate::materialize(&bootstrap, BOOTSTRAP.as_bytes(), 0o644)?;
    let Some(node) = crate::which("node") else {
        tracing::info!(runtime = id, "no `node` on PATH");
        return Ok(None);
    };
    let version = node_version(&node);
    if version.as_deref().and_then(major) != Some(MAJOR) {
        tracing::info!(
            runtime = id,
            node = %node.display(),
            version = version.as_deref().unwrap_or("unknown"),
            "`node` on PATH is not Node.js {MAJOR}"
        );
        return Ok(None);
    }
    Ok(Some(launch(id, node, dir)))
}

/// How `nodejs20.x` starts: Lambda's Node.js options, then the bootstrap. Not `--expose-gc`,
/// which Lambda passes: any V8 flag makes node discard its built-in code cache (about 10 ms
/// more per cold start here), so the bootstrap provides `global.gc` on first use instead.
fn launch(id: &str, node: PathBuf, dir: &Path) -> Launch {
    Launch {
        program: node,
        args: vec![
            "--max-http-header-size=81920".into(),
            dir.join(BOOTSTRAP_FILE).display().to_string(),
        ],
        env: vec![("AWS_EXECUTION_ENV".into(), format!("AWS_Lambda_{id}"))],
        runtime_dir: dir.to_path_buf(),
    }
}

/// `node --version` (e.g. `v20.11.1`), or `None` when it cannot be run.
fn node_version(node: &Path) -> Option<String> {
    let out = Command::new(node)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
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
        let l = launch("nodejs20.x", "/usr/bin/node".into(), Path::new("/rt"));
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
    }

    #[test]
    fn detect_writes_the_bootstrap() {
        let dir = tempfile::tempdir().unwrap();
        let rt = dir.path().join("nodejs20.x");
        let found = detect("nodejs20.x", &rt).unwrap();
        let written = std::fs::read_to_string(rt.join(BOOTSTRAP_FILE)).unwrap();
        assert_eq!(written, BOOTSTRAP);
        // Served exactly when this host has Node.js 20.
        let host_major = crate::which("node")
            .and_then(|n| node_version(&n))
            .as_deref()
            .and_then(major);
        assert_eq!(found.is_some(), host_major == Some(MAJOR));
    }
}
