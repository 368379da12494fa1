//! Managed runtimes do not depend on how the shell that started Sous was set up (issue 13,
//! points 4 and 5): a virtualenv or a shim first on `PATH` still gives python3.11 functions
//! that run (the real interpreter is found and shown to the sandbox), a broken candidate is
//! named once at start-up and skipped, and a function imports only what Lambda's runtime
//! offers: its code, its layers and the standard library, not the host interpreter's
//! site-packages nor Node.js's global modules.
//!
//! CPython 3.11 (`python3.11` or `python3`) and Node.js 20 must be on the host (they are on
//! every machine of this project's kind): without them these tests fail loudly.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use aws_sdk_lambda::types::Runtime;
use serde_json::Value;

// ---------------------------------------------------------------------------------------
// Helpers

/// The host's CPython 3.11 as `python3.11` (else `python3`) on `PATH` runs it, and the real
/// interpreter behind it (`sys._base_executable`, links resolved).
fn host_python() -> (String, PathBuf) {
    for name in ["python3.11", "python3"] {
        let out = Command::new(name)
            .args([
                "-I",
                "-c",
                "import os, sys; assert sys.version_info[:2] == (3, 11); \
                 print(os.path.realpath(sys._base_executable))",
            ])
            .output();
        if let Ok(out) = out {
            if out.status.success() {
                let real = String::from_utf8_lossy(&out.stdout).trim().to_string();
                return (name.to_string(), PathBuf::from(real));
            }
        }
    }
    panic!("CPython 3.11 (python3.11 or python3) must be on PATH to test the python3.11 runtime");
}

/// `PATH` with `dirs` first.
fn path_with(dirs: &[&Path]) -> String {
    let mut all: Vec<PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
    if let Some(p) = std::env::var_os("PATH") {
        all.extend(std::env::split_paths(&p));
    }
    std::env::join_paths(all)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn script(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A server started with `path` as its `PATH` (else the test's). Functions here need no
/// network beyond their loopback, so none is asked for (a host without iptables serves too).
fn server_with_path(path: Option<String>) -> Server {
    Server::start_with(ServerOptions {
        env: path.map(|p| ("PATH".to_string(), p)).into_iter().collect(),
        ..ServerOptions::with_args(&["--function-network", "none"])
    })
}

fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    let entries: Vec<Entry> = files
        .iter()
        .map(|(p, d)| file(p, d.as_bytes().to_vec(), 0o644))
        .collect();
    zip_entries(&entries)
}

async fn deploy(
    server: &Server,
    runtime: Runtime,
    files: &[(&str, &str)],
    handler: &str,
) -> String {
    let name = unique("rt");
    create_ok(
        server,
        create(&server.client, &name, &zip_of(files))
            .runtime(runtime)
            .handler(handler)
            .timeout(15),
    )
    .await;
    name
}

/// Invokes and returns the function's result, panicking (with the server's output) when the
/// function failed.
async fn ok_result(server: &Server, name: &str) -> Value {
    let inv = invoke(server, name, b"{}").await;
    assert_eq!(
        inv.function_error,
        None,
        "function failed: {}\nlog: {:?}\n{}",
        inv.text(),
        inv.log,
        server.output_tail(3000)
    );
    inv.json()
}

/// Invokes a function whose init must fail; returns its error body.
async fn init_error(server: &Server, name: &str) -> Value {
    let inv = invoke(server, name, b"{}").await;
    assert_eq!(
        inv.function_error.as_deref(),
        Some("Unhandled"),
        "{}\n{}",
        inv.text(),
        server.output_tail(3000)
    );
    inv.json()
}

/// A python3.11 handler reporting the interpreter it runs on and its import path, after
/// importing the standard library modules functions commonly use (C extensions included).
const WHERE_AM_I: &str = r#"import sys, json, sqlite3, ctypes, ssl, decimal, hashlib, zlib

def handler(event, context):
    sqlite3.connect(":memory:").execute("select 1")
    return {
        "executable": sys.executable,
        "version": list(sys.version_info[:2]),
        "prefix": sys.prefix,
        "path": sys.path,
        "ssl": ssl.OPENSSL_VERSION,
    }
"#;

/// Checks a [`WHERE_AM_I`] result: CPython 3.11, run by `real`, with Lambda's import path and
/// nothing of any site-packages but the layers'.
fn assert_runs_on(v: &Value, real: &Path) {
    assert_eq!(v["version"], serde_json::json!([3, 11]), "{v}");
    assert_eq!(v["executable"], real.display().to_string(), "{v}");
    let path: Vec<String> = serde_json::from_value(v["path"].clone()).unwrap();
    assert_eq!(path[0], "/var/task", "{path:?}");
    assert_eq!(
        &path[1..3],
        ["/opt/python/lib/python3.11/site-packages", "/opt/python"],
        "{path:?}"
    );
    for p in &path[3..] {
        assert!(
            !p.contains("site-packages") && !p.contains("dist-packages"),
            "a host package directory is importable: {p} in {path:?}"
        );
    }
}

/// Makes a virtualenv (with the host's python3.11) at `dir`, with a package installed only
/// there, `sous_venv_only`.
fn make_venv(python: &str, dir: &Path) {
    let status = Command::new(python)
        .args(["-m", "venv", "--without-pip"])
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success(), "{python} -m venv {}", dir.display());
    let pkg = dir.join("lib/python3.11/site-packages/sous_venv_only");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("__init__.py"), "VALUE = 1\n").unwrap();
}

// ---------------------------------------------------------------------------------------
// Point 4: the interpreter behind PATH

/// The reported case: a virtualenv first on `PATH` (its `python3` is a link outside anything
/// a sandbox shows). Functions still run, on the virtualenv's base interpreter; the package
/// installed in the virtualenv is not importable (Lambda's ImportModuleError), the standard
/// library is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_virtualenv_first_on_path_gives_its_base_interpreter_and_not_its_packages() {
    let (python, real) = host_python();
    let tmp = tempfile::tempdir().unwrap();
    let venv = tmp.path().join("venv");
    make_venv(&python, &venv);
    // The virtualenv's python3 really is first (as `source venv/bin/activate` makes it).
    let server = server_with_path(Some(path_with(&[&venv.join("bin")])));

    let name = deploy(
        &server,
        Runtime::Python311,
        &[("app.py", WHERE_AM_I)],
        "app.handler",
    )
    .await;
    let v = ok_result(&server, &name).await;
    assert_runs_on(&v, &real);
    assert!(
        !v["executable"]
            .as_str()
            .unwrap()
            .starts_with(tmp.path().to_str().unwrap()),
        "{v}"
    );

    let name = deploy(
        &server,
        Runtime::Python311,
        &[(
            "app.py",
            "import sous_venv_only\n\ndef handler(e, c):\n    return 1\n",
        )],
        "app.handler",
    )
    .await;
    let v = init_error(&server, &name).await;
    assert_eq!(v["errorType"], "Runtime.ImportModuleError", "{v}");
    assert_eq!(
        v["errorMessage"], "Unable to import module 'app': No module named 'sous_venv_only'",
        "{v}"
    );
}

/// A shim first on `PATH` (a script named `python3.11`/`python3` that execs the interpreter,
/// as pyenv's and asdf's do), after a broken one (a shim whose version is not installed):
/// the broken one is named once at start-up and skipped, and functions run on the real
/// interpreter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shim_first_on_path_gives_the_interpreter_it_runs_and_a_broken_one_is_skipped() {
    let (_, real) = host_python();
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("broken");
    let shims = tmp.path().join("shims");
    script(
        &broken.join("python3.11"),
        "#!/bin/sh\necho 'pyenv: python3.11: command not found' >&2\nexit 127\n",
    );
    for name in ["python3.11", "python3"] {
        script(
            &shims.join(name),
            &format!("#!/bin/sh\nexec \"{}\" \"$@\"\n", real.display()),
        );
    }
    let server = server_with_path(Some(path_with(&[&broken, &shims])));

    let name = deploy(
        &server,
        Runtime::Python311,
        &[("app.py", WHERE_AM_I)],
        "app.handler",
    )
    .await;
    let v = ok_result(&server, &name).await;
    assert_runs_on(&v, &real);

    let out = server.output();
    let rejected: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(&broken.join("python3.11").display().to_string()))
        .collect();
    assert_eq!(rejected.len(), 1, "one line names the broken shim:\n{out}");
    assert!(
        rejected[0].contains("command not found") && rejected[0].contains("127"),
        "it says why: {}",
        rejected[0]
    );
}

/// A shim that execs a virtualenv's interpreter (as pyenv-virtualenv's do): the virtualenv's
/// base interpreter runs functions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shim_into_a_virtualenv_gives_its_base_interpreter() {
    let (python, real) = host_python();
    let tmp = tempfile::tempdir().unwrap();
    let venv = tmp.path().join("venv");
    make_venv(&python, &venv);
    let shims = tmp.path().join("shims");
    for name in ["python3.11", "python3"] {
        script(
            &shims.join(name),
            &format!(
                "#!/bin/sh\nexec \"{}\" \"$@\"\n",
                venv.join("bin/python3").display()
            ),
        );
    }
    let server = server_with_path(Some(path_with(&[&shims])));
    let name = deploy(
        &server,
        Runtime::Python311,
        &[("app.py", WHERE_AM_I)],
        "app.handler",
    )
    .await;
    let v = ok_result(&server, &name).await;
    assert_runs_on(&v, &real);
}

// ---------------------------------------------------------------------------------------
// Point 5: what a function can import

/// A package of the host interpreter's own site-packages is not importable (on Lambda it is
/// not there), whatever `PATH` is; the standard library is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_site_packages_are_not_importable() {
    let (_, real) = host_python();
    // Packages the interpreter functions run on has in its site-packages (pip is in nearly
    // every one; the issue's example, requests, when installed).
    let out = Command::new(&real)
        .args([
            "-c",
            "import importlib.util as u\n\
             for m in ('pip', 'requests', 'setuptools'):\n\
             \x20   s = u.find_spec(m)\n\
             \x20   if s and s.origin and 'site-packages' in s.origin: print(m)",
        ])
        .output()
        .unwrap();
    let host_only: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert!(
        !host_only.is_empty(),
        "{} has none of pip, requests, setuptools in its site-packages: nothing to test with",
        real.display()
    );
    let server = server_with_path(None);
    let name = deploy(
        &server,
        Runtime::Python311,
        &[("app.py", WHERE_AM_I)],
        "app.handler",
    )
    .await;
    let v = ok_result(&server, &name).await;
    assert_runs_on(&v, &real);
    for module in &host_only {
        let code = format!("import {module}\n\ndef handler(e, c):\n    return 1\n");
        let name = deploy(
            &server,
            Runtime::Python311,
            &[("app.py", &code)],
            "app.handler",
        )
        .await;
        let v = init_error(&server, &name).await;
        assert_eq!(v["errorType"], "Runtime.ImportModuleError", "{v}");
        assert_eq!(
            v["errorMessage"],
            format!("Unable to import module 'app': No module named '{module}'"),
            "{v}"
        );
    }
}

/// Node.js: a module installed globally on the host (npm itself, in node's global
/// `node_modules`) is not found by `require`, as on Lambda; Node's own modules are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_global_node_modules_are_not_importable() {
    let out = Command::new("node")
        .args([
            "-e",
            "const p = require('path'); \
             const g = p.join(p.dirname(p.dirname(require('fs').realpathSync(process.execPath))), 'lib', 'node_modules', 'npm'); \
             process.stdout.write(process.version + ' ' + require('fs').existsSync(g))",
        ])
        .output()
        .expect("Node.js 20 must be on PATH to test the nodejs20.x runtime");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.starts_with("v20."),
        "node on PATH is not Node.js 20: {text}"
    );
    assert!(
        text.ends_with("true"),
        "npm is not in node's global node_modules here: nothing to test with ({text})"
    );
    let server = server_with_path(None);
    let ok = deploy(
        &server,
        Runtime::Nodejs20x,
        &[(
            "index.js",
            "const crypto = require('crypto');\nexports.handler = async () => ({ paths: module.paths.concat(require.resolve.paths('npm') || []), sha: crypto.createHash('sha256').update('x').digest('hex').length });",
        )],
        "index.handler",
    )
    .await;
    let v = ok_result(&server, &ok).await;
    assert_eq!(v["sha"], 64, "{v}");
    let paths: Vec<String> = serde_json::from_value(v["paths"].clone()).unwrap();
    assert!(
        paths.iter().all(|p| !p.ends_with("lib/node_modules")),
        "a global node_modules is searched: {paths:?}"
    );

    let name = deploy(
        &server,
        Runtime::Nodejs20x,
        &[(
            "index.js",
            "const npm = require('npm');\nexports.handler = async () => npm.version;",
        )],
        "index.handler",
    )
    .await;
    let v = init_error(&server, &name).await;
    assert_eq!(v["errorType"], "Runtime.ImportModuleError", "{v}");
    let message = v["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("Error: Cannot find module 'npm'\nRequire stack:\n- "),
        "{v}"
    );
}
