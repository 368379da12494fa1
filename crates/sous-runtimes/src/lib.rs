//! The managed runtimes of Sous and the catalog of runtimes this host can serve.
//!
//! A managed runtime is Sous's own bootstrap, written in the runtime's language and shipped
//! inside the `sous` binary, run by the host's interpreter: it speaks the Runtime API, loads
//! the function's handler and calls it, as Lambda's runtime interface clients do. At start,
//! [`Catalog::detect`] writes each bootstrap to `<data-dir>/runtimes/<id>/` and looks for the
//! interpreter it needs; a runtime whose interpreter is missing is not offered (CreateFunction
//! names the ones that are).
//!
//! An interpreter is found by what it is, not by how the shell that started Sous was set up
//! (`host.rs`): each candidate on `PATH` (a virtualenv's, a pyenv/asdf/volta shim, an nvm or
//! SDKMAN install, a `/usr/local` build) is asked for the real interpreter behind it, which is
//! then run as a sandbox will run it, its version checked and everything it loads found visible
//! to the sandbox; otherwise it is rejected with one log line and the next is tried.
//!
//! A function sees what Lambda's runtime offers, not the host's: its code, its layers' paths
//! and the runtime's own standard library; no package of the host interpreter's site-packages
//! or global `node_modules`.
//!
//! - `python.rs` + `python/`: `python3.11` under CPython 3.11
//! - `node.rs` + `node/`: `nodejs20.x` under Node.js 20
//! - `java.rs` + `java/`: `java17` under a Java 17 JVM

use std::io;
use std::path::{Path, PathBuf};

use sous_types::runtime::{lookup, RuntimeKind, KNOWN};

mod host;
pub mod java;
pub mod node;
pub mod python;
pub mod sdk;

/// Written in a [`Launch`] argument, replaced by the function's MemorySize in MB.
pub const MEMORY_MB: &str = "{memory_mb}";

/// How to start a managed runtime's process.
///
/// Paths are host paths: inside a sandbox the runtime directory and the interpreter's
/// installation ([`Launch::host_paths`]) are shown read-only at the same paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The interpreter (absolute path).
    pub program: PathBuf,
    /// Arguments; [`MEMORY_MB`] in any of them is replaced by the function's MemorySize.
    pub args: Vec<String>,
    /// Runtime-specific environment variables (`AWS_EXECUTION_ENV`, `PYTHONPATH`, ...), set
    /// over the ones every environment gets.
    pub env: Vec<(String, String)>,
    /// `LAMBDA_RUNTIME_DIR`: where the bootstrap lives.
    pub runtime_dir: PathBuf,
    /// Host directories (real paths) the interpreter needs besides the system directories a
    /// sandbox always shows: its installation when outside them (a pyenv prefix, an nvm
    /// install, a JDK home under `$HOME`) and configuration it links to (the JDK's under
    /// `/etc`). Found at detection, by asking the interpreter.
    pub shown: Vec<PathBuf>,
    /// The SDK the runtime bundles (boto3, the AWS SDK for JavaScript v3), shown once
    /// installed (see `sdk.rs`).
    pub bundled: Option<std::sync::Arc<sdk::BundledSdk>>,
}

/// What detection found for one runtime.
enum Found {
    Custom,
    Launch(Option<Launch>),
    Java(Option<(Launch, java::Archive)>),
}

/// A runtime id this host does not serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotServed;

impl Launch {
    /// The host paths a sandboxed environment must show (read-only, at the same path) for
    /// this runtime to start: the runtime directory, then [`Launch::shown`], then the bundled
    /// SDK's directory once it is installed (the runtime directory links into it).
    pub fn host_paths(&self) -> Vec<PathBuf> {
        let mut paths = vec![self.runtime_dir.clone()];
        paths.extend(self.shown.iter().cloned());
        if let Some(dir) = self.bundled.as_ref().and_then(|b| b.ready()) {
            paths.push(dir.to_path_buf());
        }
        paths
    }

    /// The arguments for a function of `memory_mb`.
    pub fn args_for(&self, memory_mb: i64) -> Vec<String> {
        self.args
            .iter()
            .map(|a| a.replace(MEMORY_MB, &memory_mb.to_string()))
            .collect()
    }
}

/// The runtimes this host can serve.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    entries: Vec<(&'static str, Option<Launch>)>,
    /// Made when a `java17` environment first starts (see [`Catalog::launch`]).
    java_archive: Option<std::sync::Arc<java::Archive>>,
}

impl Catalog {
    /// Materialize the bootstraps under `data_dir/runtimes` and find the interpreters; the
    /// bundled SDKs are looked for under [`sdk::default_root`].
    pub fn detect(data_dir: &Path) -> io::Result<Catalog> {
        Self::detect_with_sdks(data_dir, sdk::default_root())
    }

    /// [`Catalog::detect`], with the bundled SDKs under `sdk_root`.
    pub fn detect_with_sdks(data_dir: &Path, sdk_root: Option<PathBuf>) -> io::Result<Catalog> {
        let root = data_dir.join("runtimes");
        // Each runtime's candidates are probed (interpreters started) one after another, but
        // the runtimes side by side: start-up waits for the slowest, not for the sum.
        let found: Vec<io::Result<Found>> = std::thread::scope(|s| {
            let probes: Vec<_> = KNOWN
                .iter()
                .map(|rt| {
                    let dir = root.join(rt.id);
                    s.spawn(move || match rt.kind {
                        RuntimeKind::Custom => Ok(Found::Custom),
                        RuntimeKind::Python => python::detect(rt.id, &dir).map(Found::Launch),
                        RuntimeKind::Node => node::detect(rt.id, &dir).map(Found::Launch),
                        RuntimeKind::Java => java::detect(rt.id, &dir).map(Found::Java),
                    })
                })
                .collect();
            probes
                .into_iter()
                .map(|p| {
                    p.join()
                        .unwrap_or_else(|_| Err(io::Error::other("runtime detection panicked")))
                })
                .collect()
        });
        let mut entries = Vec::new();
        let mut java_archive = None;
        for (rt, found) in KNOWN.iter().zip(found) {
            let launch = match found? {
                Found::Custom => {
                    entries.push((rt.id, None));
                    continue;
                }
                Found::Launch(launch) => launch,
                Found::Java(java) => java.map(|(launch, archive)| {
                    java_archive = Some(std::sync::Arc::new(archive));
                    launch
                }),
            };
            match launch {
                Some(mut l) => {
                    l.bundled = sdk::bundle_for(rt.id).map(|b| {
                        std::sync::Arc::new(sdk::BundledSdk::new(
                            b,
                            &l.runtime_dir,
                            sdk_root.clone(),
                        ))
                    });
                    entries.push((rt.id, Some(l)))
                }
                None => tracing::info!(runtime = rt.id, "runtime not available on this host"),
            }
        }
        Ok(Catalog {
            entries,
            java_archive,
        })
    }

    /// Custom runtimes only (no interpreter looked for): for tests of other layers.
    pub fn custom_only() -> Catalog {
        let entries = KNOWN
            .iter()
            .filter(|r| r.kind == RuntimeKind::Custom)
            .map(|r| (r.id, None))
            .collect();
        Catalog {
            entries,
            java_archive: None,
        }
    }

    /// Runtime ids this host serves, in the order Sous lists them.
    pub fn available(&self) -> Vec<&'static str> {
        self.entries.iter().map(|(id, _)| *id).collect()
    }

    /// The bundled SDKs of the runtimes this host serves (installed or not).
    pub fn bundled_sdks(&self) -> Vec<std::sync::Arc<sdk::BundledSdk>> {
        self.entries
            .iter()
            .filter_map(|(_, l)| l.as_ref()?.bundled.clone())
            .collect()
    }

    /// How to start `id`: `Ok(None)` for a custom runtime (the zip's `bootstrap`), `Err` when
    /// this host does not serve it. Asked for as an environment starts, so the first `java17`
    /// start also sets the JVM's class-data archive in the making.
    pub fn launch(&self, id: &str) -> Result<Option<&Launch>, NotServed> {
        let launch = self
            .entries
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, l)| l.as_ref())
            .ok_or(NotServed)?;
        if let (Some(archive), Some(RuntimeKind::Java)) =
            (&self.java_archive, lookup(id).map(|r| r.kind))
        {
            archive.ensure();
        }
        Ok(launch)
    }
}

/// Write `content` to `path` unless it already holds exactly that (so a running environment
/// never sees a half-written file, and restarts do no work).
pub fn materialize(path: &Path, content: &[u8], mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if std::fs::read(path).ok().as_deref() == Some(content) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, content)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_runtimes_are_always_served() {
        let c = Catalog::custom_only();
        assert_eq!(c.available(), ["provided.al2023", "provided.al2"]);
        assert_eq!(c.launch("provided.al2023"), Ok(None));
        assert_eq!(c.launch("cobol85"), Err(NotServed));
    }

    #[test]
    fn detection_keeps_the_catalog_order() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::detect(dir.path()).unwrap();
        let known: Vec<&str> = KNOWN.iter().map(|r| r.id).collect();
        let served = c.available();
        // Served runtimes are a subsequence of KNOWN, custom ones always in.
        let mut rest = known.iter();
        assert!(served.iter().all(|id| rest.any(|k| k == id)), "{served:?}");
        assert!(served.starts_with(&["provided.al2023", "provided.al2"]));
        // (Not through `launch`, which would start the java17 archive's training run.)
        for l in c.entries.iter().filter_map(|(_, l)| l.as_ref()) {
            assert!(l.host_paths()[0].starts_with(dir.path()), "{l:?}");
        }
    }

    #[test]
    fn materialize_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b.txt");
        materialize(&p, b"x", 0o644).unwrap();
        materialize(&p, b"x", 0o644).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"x");
    }
}
