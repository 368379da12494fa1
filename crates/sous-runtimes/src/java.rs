//! The `java17` managed runtime: Sous's own Java bootstrap (`java/runtime`, package
//! `dev.sous.runtime`) run by the host's Java 17 JVM.
//!
//! `build.rs` compiles two jars into the binary: the runtime jar (the
//! `com.amazonaws.services.lambda.runtime` interfaces plus the bootstrap), written to the
//! runtime directory at detection and put on the JVM's class path, and the SDK jar (the
//! interfaces alone), which `sous sdk java --out FILE` hands to users to compile against
//! ([`sdk_jar`]).
//!
//! The JVM is the real one behind `$JAVA_HOME/bin/java`, each `java` on `PATH` (an
//! alternatives link, SDKMAN's `current`, an asdf or jenv shim: a launcher that is not in a
//! JDK's `bin/` is asked for its `java.home`), SDKMAN's JDKs, then `/usr/lib/jvm`'s; it is run
//! as a sandbox will run it to check that it is a 17 (see `host.rs`). A function's classes
//! come only from the task root, its `lib/*.jar` and the layers' `/opt/java/lib/*.jar` (the
//! JVM's own class path is the runtime jar alone; `CLASSPATH` is not read).
//!
//! The JVM flags aim at Lambda's behaviour and a fast cold start: C1 only
//! (`TieredStopAtLevel=1`, Lambda's default for java17), no perf-data file, and the heap
//! sized from the environment's memory limit (the cgroup) as Lambda sizes it from the
//! function's memory. The collector stays G1, the JVM's default: on JDK 17 only G1 maps the
//! JDK archive's pre-built heap objects (the module graph), and the serial collector starts
//! about 10 ms slower for want of them. No `--add-opens`/`--add-exports` either: any of them
//! makes the JVM build its module graph at start instead of mapping it.
//!
//! Class data sharing: besides the JDK's own archive, the JVM maps a dynamic archive of the
//! classes a cold start loads (the runtime's and the JDK's it uses), which saves loading,
//! parsing and verifying them at every start. The archive is made once per runtime jar and
//! JVM, in the background after detection, by a training run: the JVM started as for a
//! function, with `-XX:ArchiveClassesAtExit`, against a scripted Runtime API served here and a
//! small training function. It is written under a temporary name, checked (`-Xshare:on`), then
//! renamed into place; until then, or when the JVM finds it unusable (another JVM, a moved
//! jar), the JVM runs without it, silently (`-Xlog:cds=off`).

use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::host::{self, Env, Rejected};
use crate::Launch;

const RUNTIME_JAR: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sous-java-runtime.jar"));
const SDK_JAR: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sous-java-sdk.jar"));
const TRAINING_HANDLER: &[u8] = include_bytes!(concat!(
    env!("OUT_DIR"),
    "/java-training-classes/sous/training/Handler.class"
));
const TRAINING_LIB_JAR: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/sous-java-training-lib.jar"));

/// The runtime jar's file name in the runtime directory.
const RUNTIME_JAR_NAME: &str = "sous-java-runtime.jar";
/// The bootstrap's main class.
const MAIN_CLASS: &str = "dev.sous.runtime.Bootstrap";
/// The Java major version the `java17` runtime needs.
const MAJOR: u32 = 17;

/// The jar of the `com.amazonaws.services.lambda.runtime` interfaces (`Context`,
/// `RequestHandler`, `RequestStreamHandler`, `LambdaLogger`, `ClientContext`,
/// `CognitoIdentity`, `Client`, `LambdaRuntime`, `logging.LogLevel`...), with the same
/// signatures as AWS's `aws-lambda-java-core`: what `sous sdk java --out FILE` writes.
pub fn sdk_jar() -> &'static [u8] {
    SDK_JAR
}

/// How long after the first `java17` start the class-data archive is made: the first seconds
/// are left to that cold start and its first invocations.
const TRAINING_DELAY: Duration = Duration::from_secs(3);
/// The longest a training run may take.
const TRAINING_LIMIT: Duration = Duration::from_secs(60);

/// The class-data archive of this jar and JVM, made once, in the background, when a `java17`
/// environment first starts: a host that never runs Java never pays the training run's
/// second of CPU.
#[derive(Debug)]
pub struct Archive {
    java: PathBuf,
    jar: PathBuf,
    dir: PathBuf,
    path: PathBuf,
    started: std::sync::Once,
}

impl Archive {
    /// Start making the archive unless it exists or is being made. Cheap after the first call.
    pub fn ensure(self: &std::sync::Arc<Self>) {
        self.started.call_once(|| {
            if self.path.is_file() {
                return;
            }
            remove_stale_archives(&self.dir, &self.path);
            let me = self.clone();
            let spawned = std::thread::Builder::new()
                .name("java-cds".into())
                .spawn(move || {
                    std::thread::sleep(TRAINING_DELAY);
                    match make_archive(&me.java, &me.jar, &me.dir, &me.path) {
                        Ok(()) => tracing::debug!(archive = %me.path.display(), "java17 class-data archive made"),
                        Err(e) => tracing::info!("java17: no class-data archive (cold starts are slower): {e}"),
                    }
                });
            if let Err(e) = spawned {
                tracing::info!(
                    "java17: no class-data archive (cold starts are slower): start thread: {e}"
                );
            }
        });
    }
}

/// Materialize the runtime jar into `dir` and find a Java 17 JVM; `None` when this host has
/// none. The launch names the class-data archive, which the JVM uses once [`Archive::ensure`]
/// has made it.
pub fn detect(id: &str, dir: &Path) -> io::Result<Option<(Launch, Archive)>> {
    let jar = dir.join(RUNTIME_JAR_NAME);
    crate::materialize(&jar, RUNTIME_JAR, 0o644)?;
    let Some(Jvm { java, home, shown }) = find_java(id, dir) else {
        return Ok(None);
    };
    let archive = dir.join(format!("sous-java-{:016x}.jsa", archive_key(&java)));
    let env = vec![
        ("AWS_EXECUTION_ENV".to_string(), format!("AWS_Lambda_{id}")),
        ("JAVA_HOME".into(), home.display().to_string()),
    ];
    let mut args = jvm_flags();
    // The JVM cannot see the environment's memory cgroup from inside the sandbox: size the
    // heap from the function's MemorySize, as the JVM on Lambda does from its cgroup.
    args.push(format!("-XX:MaxRAM={}m", crate::MEMORY_MB));
    args.push("-Xlog:cds=off,cds+dynamic=off".into());
    args.push(format!("-XX:SharedArchiveFile={}", archive.display()));
    args.extend(["-cp".into(), jar.display().to_string(), MAIN_CLASS.into()]);
    let launch = Launch {
        program: java.clone(),
        args,
        env,
        runtime_dir: dir.to_path_buf(),
        shown,
        bundled: None,
    };
    let archive = Archive {
        java,
        jar,
        dir: dir.to_path_buf(),
        path: archive,
        started: std::sync::Once::new(),
    };
    Ok(Some((launch, archive)))
}

/// The JVM flags of every start (the training run's too).
fn jvm_flags() -> Vec<String> {
    [
        "-XX:+TieredCompilation",
        "-XX:TieredStopAtLevel=1",
        "-XX:-UsePerfData",
        "-Xshare:auto",
        "-XX:MaxRAMPercentage=85",
        "-Djava.net.preferIPv4Stack=true",
        "-Dfile.encoding=UTF-8",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Identifies the archive's inputs: the runtime jar, the JVM's path and its `release` file (a
/// JVM update makes a new archive).
fn archive_key(java: &Path) -> u64 {
    let release = java
        .parent()
        .and_then(Path::parent)
        .and_then(|home| std::fs::read(home.join("release")).ok())
        .unwrap_or_default();
    let mut h = Fnv::new();
    h.write(RUNTIME_JAR);
    h.write(java.as_os_str().as_encoded_bytes());
    h.write(&release);
    h.0
}

/// FNV-1a, 64 bits: enough to tell archives apart (not a defence against anything).
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Separates consecutive writes.
        self.0 = (self.0 ^ 0xff).wrapping_mul(0x0000_0100_0000_01b3);
    }
}

/// Removes archives of earlier jars or JVMs, and leftovers of interrupted training runs.
fn remove_stale_archives(dir: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path != keep && name.starts_with("sous-java-") && name.contains(".jsa") {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// The training run: the JVM started as for a function, dumping the classes it loaded into
/// `archive`, against a scripted Runtime API.
fn make_archive(java: &Path, jar: &Path, dir: &Path, archive: &Path) -> io::Result<()> {
    let root = dir.join("cds-training");
    crate::materialize(
        &root.join("sous/training/Handler.class"),
        TRAINING_HANDLER,
        0o644,
    )?;
    crate::materialize(&root.join("lib/training.jar"), TRAINING_LIB_JAR, 0o644)?;
    let tmp = dir.join(format!("sous-java-training-{}.jsa.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);

    // The Runtime API pipes, as an environment's runtime gets them.
    let sous_sandbox::process::RuntimeApiPipes {
        requests,
        answers,
        runtime,
    } = sous_sandbox::process::RuntimeApiPipes::new()?;
    let (pipes_var, pipes_value) = sous_sandbox::process::RuntimeApiPipes::env_var();
    let mut cmd = Command::new(java);
    cmd.args(jvm_flags())
        .arg(format!("-XX:ArchiveClassesAtExit={}", tmp.display()))
        .args(["-cp", &jar.display().to_string(), MAIN_CLASS])
        .current_dir(&root)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")
        .env(pipes_var, pipes_value)
        .env("_HANDLER", "sous.training.Handler")
        .env("LAMBDA_TASK_ROOT", &root)
        .env("AWS_LAMBDA_FUNCTION_NAME", "sous-cds-training")
        .env("AWS_LAMBDA_FUNCTION_VERSION", sous_types::LATEST)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("_LAMBDA_TELEMETRY_LOG_FD", "1")
        .env("LANG", "en_US.UTF-8")
        .env("TZ", ":UTC")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    sous_sandbox::process::pass_fds(
        &mut cmd,
        runtime
            .iter()
            .map(|fd| fd.as_raw_fd())
            .zip(sous_sandbox::RUNTIME_API_FDS)
            .collect(),
    );
    let mut child = cmd.spawn()?;
    // Only the JVM holds its ends now: the requests pipe ends when it exits (or is killed).
    drop(runtime);
    let server = std::thread::spawn(move || {
        serve_training(
            &mut BufReader::new(std::fs::File::from(requests)),
            &mut std::fs::File::from(answers),
        )
    });
    let status = wait_bounded(&mut child, Instant::now() + TRAINING_LIMIT)?;
    server
        .join()
        .map_err(|_| io::Error::other("the training server panicked"))??;
    if !tmp.is_file() {
        return Err(io::Error::other(format!(
            "the training run ({status}) wrote no archive"
        )));
    }
    // The archive must map (`-Xshare:on` fails otherwise) before functions get it.
    let check = Command::new(java)
        .args(jvm_flags())
        .arg("-Xshare:on")
        .arg(format!("-XX:SharedArchiveFile={}", tmp.display()))
        .args(["-cp", &jar.display().to_string(), "-version"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if !check.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(io::Error::other(format!(
            "the archive does not map ({check})"
        )));
    }
    std::fs::rename(&tmp, archive)
}

fn wait_bounded(
    child: &mut std::process::Child,
    deadline: Instant,
) -> io::Result<std::process::ExitStatus> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return child.wait();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Serves the training run's Runtime API: two events (the second makes the training function
/// throw), then a 500 to `/next`, on which the runtime exits.
fn serve_training(reader: &mut impl BufRead, writer: &mut impl Write) -> io::Result<()> {
    const EVENTS: [&str; 2] = [
        r#"{"name":"training","numbers":[1,2.5,-3],"flag":true,"none":null,"nested":{"k":"v"}}"#,
        r#"{"fail":true}"#,
    ];
    let mut next_calls = 0;
    while let Some((method, path)) = read_request(reader)? {
        if method == "GET" && path.ends_with("/invocation/next") {
            next_calls += 1;
            match EVENTS.get(next_calls - 1) {
                Some(event) => {
                    let deadline_ms = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis() + 30_000)
                        .unwrap_or_default();
                    let id = format!("00000000-0000-4000-8000-00000000000{next_calls}");
                    let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: {id}\r\nLambda-Runtime-Deadline-Ms: {deadline_ms}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:000000000000:function:sous-cds-training\r\nLambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000;Sampled=0\r\nContent-Length: {}\r\n\r\n",
                            event.len()
                        );
                    writer.write_all(head.as_bytes())?;
                    writer.write_all(event.as_bytes())?;
                }
                None => {
                    let body =
                        r#"{"errorMessage":"training done","errorType":"Sous.TrainingDone"}"#;
                    let head = format!(
                            "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                    writer.write_all(head.as_bytes())?;
                    writer.write_all(body.as_bytes())?;
                    return Ok(());
                }
            }
        } else {
            let body = r#"{"status":"OK"}"#;
            let head = format!(
                    "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
            writer.write_all(head.as_bytes())?;
            writer.write_all(body.as_bytes())?;
        }
        writer.flush()?;
    }
    Err(io::Error::other(
        "the training run ended before its last event",
    ))
}

/// Reads one request (head and body); `None` at the end of the connection.
fn read_request(reader: &mut impl BufRead) -> io::Result<Option<(String, String)>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            return Ok(None);
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Some((method, path)))
}

/// A Java 17 JVM found on this host, as a sandbox will run it.
#[derive(Debug)]
struct Jvm {
    /// `bin/java`, by its real path.
    java: PathBuf,
    /// Its `java.home` (real path).
    home: PathBuf,
    /// Its installation when the system directories do not show it, and the configuration
    /// it links to outside it (Debian links `conf/` to `/etc/java-17-openjdk`).
    shown: Vec<PathBuf>,
}

/// The `java` to try, in order: `$JAVA_HOME/bin/java`, each `java` on `PATH`, SDKMAN's JDKs,
/// then the JDKs under `/usr/lib/jvm` (a host whose default `java` is another version may
/// still have a 17).
fn candidates() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    if let Some(home) = std::env::var_os("JAVA_HOME") {
        out.push(Path::new(&home).join("bin/java"));
    }
    out.extend(host::on_path(&["java"]));
    let sdkman = std::env::var_os("SDKMAN_CANDIDATES_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".sdkman/candidates")));
    for jdks in sdkman
        .map(|c| c.join("java"))
        .into_iter()
        .chain([PathBuf::from("/usr/lib/jvm")])
    {
        if let Ok(entries) = std::fs::read_dir(&jdks) {
            let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            dirs.sort();
            out.extend(dirs.into_iter().map(|d| d.join("bin/java")));
        }
    }
    out.retain(|c| host::is_executable(c));
    out
}

/// The first candidate that is a Java 17 JVM a sandbox can run.
fn find_java(id: &str, dir: &Path) -> Option<Jvm> {
    let data_dir = dir.parent().and_then(Path::parent);
    let found = host::first_usable(id, candidates(), |c, tried| {
        resolve(c, dir, data_dir, tried)
    });
    if found.is_none() {
        tracing::info!(runtime = id, "no usable Java {MAJOR} JVM");
    }
    found
}

/// Resolves `candidate` (a JDK's `bin/java`, a link to one, or a shim such as asdf's) to the
/// JVM a sandbox will run; `Ok(None)` when that JVM was already tried.
fn resolve(
    candidate: &Path,
    dir: &Path,
    data_dir: Option<&Path>,
    tried: &mut Vec<PathBuf>,
) -> Result<Option<Jvm>, Rejected> {
    let linked =
        std::fs::canonicalize(candidate).map_err(|e| Rejected::DoesNotRun(e.to_string()))?;
    // A JDK's own launcher sits in `<home>/bin` next to `<home>/lib/modules`; anything else
    // (a script) is asked which JVM it runs.
    let home = match linked.parent().and_then(Path::parent) {
        Some(h) if h.join("lib/modules").is_file() => h.to_path_buf(),
        _ => {
            let out = host::run(
                candidate,
                &["-XshowSettings:properties", "-version"],
                Env::Host {
                    remove: &["JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS"],
                },
                dir,
            )?;
            let home = property(&out.stderr, "java.home")
                .ok_or_else(|| Rejected::BadAnswer("no java.home in its settings".into()))?;
            host::real_path(&home)?
        }
    };
    let java = host::real_path(&home.join("bin/java").display().to_string())?;
    if tried.contains(&java) {
        return Ok(None);
    }
    tried.push(java.clone());
    // The JDK says its version in `release`: only a 17 is started.
    if let Some(found) = release_version(&home) {
        if parse_major(&found) != Some(MAJOR) {
            return Err(Rejected::WrongVersion { found, want: "17" });
        }
    }
    // As a sandbox will run it.
    let out = host::run(
        &java,
        &["-XshowSettings:properties", "-version"],
        Env::Sandbox,
        dir,
    )?;
    let spec = property(&out.stderr, "java.specification.version").unwrap_or_default();
    if parse_major(&spec) != Some(MAJOR) {
        let found = property(&out.stderr, "java.version").unwrap_or(spec);
        return Err(Rejected::WrongVersion { found, want: "17" });
    }
    let reported = property(&out.stderr, "java.home")
        .ok_or_else(|| Rejected::BadAnswer("no java.home in its settings".into()))?;
    if host::real_path(&reported)? != home {
        return Err(Rejected::BadAnswer(format!(
            "java.home is {reported}, not {}",
            home.display()
        )));
    }
    let mut dirs = vec![home.clone()];
    dirs.extend(config_links(&home));
    let shown = host::install_dirs(&dirs);
    host::check_visible(&[java.clone(), home.clone()], &shown, dir, data_dir)?;
    Ok(Some(Jvm { java, home, shown }))
}

/// `JAVA_VERSION` of the JDK's `release` file.
fn release_version(home: &Path) -> Option<String> {
    let text = std::fs::read_to_string(home.join("release")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("JAVA_VERSION="))
        .map(|v| v.trim().trim_matches('"').to_string())
}

/// A property of `java -XshowSettings:properties` output (`    name = value`).
fn property(settings: &str, name: &str) -> Option<String> {
    settings.lines().find_map(|l| {
        let (k, v) = l.trim().split_once(" = ")?;
        (k == name).then(|| v.trim().to_string())
    })
}

/// The directories outside `home` its configuration links into (e.g. Debian's
/// `/etc/java-17-openjdk`, `/etc/ssl/certs/java`): the parent directories of the targets of
/// the links in `conf/` (all of it), `lib/` and `lib/security/`. Never a top-level directory.
fn config_links(home: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, deep: bool, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.file_type().is_symlink() {
                out.push(path);
            } else if deep && meta.is_dir() {
                walk(&path, deep, out);
            }
        }
    }
    let mut links = Vec::new();
    walk(&home.join("conf"), true, &mut links);
    walk(&home.join("lib"), false, &mut links);
    walk(&home.join("lib/security"), false, &mut links);
    let mut dirs: Vec<PathBuf> = links
        .iter()
        .filter_map(|l| std::fs::canonicalize(l).ok())
        .filter(|t| !t.starts_with(home))
        .filter_map(|t| t.parent().map(Path::to_path_buf))
        .filter(|d| d.components().count() > 2)
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// `17.0.15` → 17, `1.8.0_392` → 8, `21` → 21.
fn parse_major(version: &str) -> Option<u32> {
    let mut parts = version.split(['.', '_', '-', '+']);
    let first: u32 = parts.next()?.parse().ok()?;
    if first == 1 {
        return parts.next()?.parse().ok();
    }
    Some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_java_versions() {
        assert_eq!(parse_major("17.0.15"), Some(17));
        assert_eq!(parse_major("17"), Some(17));
        assert_eq!(parse_major("1.8.0_392"), Some(8));
        assert_eq!(parse_major("21-ea"), Some(21));
        assert_eq!(parse_major("x"), None);
    }

    #[test]
    fn jars_are_zips_holding_the_interfaces() {
        for jar in [SDK_JAR, RUNTIME_JAR] {
            assert_eq!(&jar[..4], b"PK\x03\x04");
            let has = |name: &str| jar.windows(name.len()).any(|w| w == name.as_bytes());
            assert!(has("com/amazonaws/services/lambda/runtime/Context.class"));
            assert!(has(
                "com/amazonaws/services/lambda/runtime/RequestHandler.class"
            ));
        }
        let has_bootstrap = |jar: &[u8]| {
            let name = b"dev/sous/runtime/Bootstrap.class";
            jar.windows(name.len()).any(|w| w == name)
        };
        assert!(has_bootstrap(RUNTIME_JAR));
        assert!(!has_bootstrap(SDK_JAR));
    }

    #[test]
    fn writes_the_runtime_jar_and_finds_java_17_when_present() {
        let dir = tempfile::tempdir().unwrap();
        let launch = detect("java17", dir.path()).unwrap();
        let jar = dir.path().join(RUNTIME_JAR_NAME);
        assert_eq!(std::fs::read(&jar).unwrap(), RUNTIME_JAR);
        if let Some((l, archive)) = launch {
            // Named in the flags (the JVM goes without it until it is made).
            assert!(l
                .args
                .contains(&format!("-XX:SharedArchiveFile={}", archive.path.display())));
            assert!(l.program.is_absolute());
            assert_eq!(
                Some(l.program.clone()),
                std::fs::canonicalize(&l.program).ok()
            );
            let home = l.program.parent().and_then(Path::parent).unwrap();
            assert_eq!(
                release_version(home).as_deref().and_then(parse_major),
                Some(17)
            );
            assert!(l
                .env
                .contains(&("JAVA_HOME".into(), home.display().to_string())));
            assert_eq!(l.runtime_dir, dir.path());
            assert_eq!(l.args.last().map(String::as_str), Some(MAIN_CLASS));
            assert!(l.args.contains(&jar.display().to_string()));
            assert!(l
                .env
                .contains(&("AWS_EXECUTION_ENV".into(), "AWS_Lambda_java17".into())));
        }
    }

    #[test]
    fn the_training_run_makes_an_archive_the_jvm_maps() {
        let dir = tempfile::tempdir().unwrap();
        let Some(Jvm { java, .. }) = find_java("java17", dir.path()) else {
            return;
        };
        let jar = dir.path().join(RUNTIME_JAR_NAME);
        crate::materialize(&jar, RUNTIME_JAR, 0o644).unwrap();
        let archive = dir.path().join("test.jsa");
        make_archive(&java, &jar, dir.path(), &archive).unwrap();
        assert!(archive.is_file());
        // It holds the runtime's classes: the JVM loads the bootstrap from it.
        let out = Command::new(&java)
            .args(jvm_flags())
            .arg("-Xshare:on")
            .arg(format!("-XX:SharedArchiveFile={}", archive.display()))
            .arg("-Xlog:class+load=info")
            .args(["-cp", &jar.display().to_string(), MAIN_CLASS])
            .env_clear()
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.lines().any(|l| l.contains("dev.sous.runtime.Bootstrap source: shared objects file (top)")),
            "{text}"
        );
    }

    #[test]
    fn reads_settings_properties() {
        let settings = "Property settings:\n    file.encoding = UTF-8\n    java.home = /usr/lib/jvm/x\n    java.specification.version = 17\n";
        assert_eq!(
            property(settings, "java.home").as_deref(),
            Some("/usr/lib/jvm/x")
        );
        assert_eq!(
            property(settings, "java.specification.version").as_deref(),
            Some("17")
        );
        assert_eq!(property(settings, "java.version"), None);
    }

    #[test]
    fn a_shim_resolves_to_the_jvm_it_runs() {
        let dir = tempfile::tempdir().unwrap();
        let Some(real) = find_java("java17", dir.path()) else {
            return;
        };
        // As asdf's or jenv's: a shell script that execs the JDK it picks.
        let shim = dir.path().join("shims/java");
        std::fs::create_dir_all(shim.parent().unwrap()).unwrap();
        std::fs::write(
            &shim,
            format!("#!/bin/sh\nexec \"{}\" \"$@\"\n", real.java.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
        let found = resolve(&shim, dir.path(), None, &mut Vec::new())
            .unwrap()
            .unwrap();
        assert_eq!(found.java, real.java);
        assert_eq!(found.home, real.home);
        assert_eq!(found.shown, real.shown);
        // A link to the launcher (as SDKMAN's `current`) resolves without asking.
        let link = dir.path().join("current");
        std::os::unix::fs::symlink(&real.home, &link).unwrap();
        let found = resolve(&link.join("bin/java"), dir.path(), None, &mut Vec::new())
            .unwrap()
            .unwrap();
        assert_eq!(found.java, real.java);
    }

    #[test]
    fn debians_configuration_links_are_shown() {
        let home = Path::new("/usr/lib/jvm/java-17-openjdk-amd64");
        if !home.join("conf").is_symlink() && !Path::new("/etc/java-17-openjdk").is_dir() {
            return;
        }
        let dirs = crate::host::install_dirs(&config_links(home));
        assert!(
            dirs.contains(&PathBuf::from("/etc/java-17-openjdk")),
            "{dirs:?}"
        );
    }
}
