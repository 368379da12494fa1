//! Test harness shared by the integration tests: starts the real `sous` binary on loopback
//! ports it picks itself, with a temporary data dir and fixed credentials, builds an
//! `aws_sdk_lambda::Client` pointed at it, and stops the server (SIGTERM, then SIGKILL) when
//! dropped. Also: in-memory zips, shell-script custom runtimes, fixture lookup, a raw HTTP
//! client for unsigned requests, and a `/proc` scan for processes left behind.

#![allow(dead_code)]

pub mod attack;
pub mod engines;

use std::fs::{self, File};
use std::io::{Cursor, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_lambda::config::retry::RetryConfig;
use aws_sdk_lambda::config::timeout::TimeoutConfig;
use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region, StalledStreamProtectionConfig};
use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::operation::create_function::builders::CreateFunctionFluentBuilder;
use aws_sdk_lambda::operation::invoke::builders::InvokeFluentBuilder;
use aws_sdk_lambda::operation::RequestId;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, FunctionCode, LogType, Runtime};
use aws_sdk_lambda::Client;
use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub const ACCESS_KEY: &str = "AKIASOUSTEST0000KEY1";
/// Distinctive, so that a grep of the server's output for it cannot match by accident.
pub const SECRET_KEY: &str = "sousTestSecret/Zq8xW3vNp+Lm5Kd7Rt9Yb2Hc4Jf6Gs1Aa0";
pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "000000000000";
pub const ROLE: &str = "arn:aws:iam::000000000000:role/sous-test";

/// How long the server gets to say it is listening after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the server gets to exit after SIGTERM before it is SIGKILLed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A name unique to this test process and call: usable as a function name (≤ 64 chars,
/// `[a-zA-Z0-9-_]`) and as a marker to look for in `/proc`.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{:x}-{:x}-{n}", std::process::id(), nanos)
}

pub fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// The address `sous serve` printed it listens on after `prefix` (`http://ADDR ...`).
fn listening_addr(stdout: &str, prefix: &str) -> Option<SocketAddr> {
    let line = stdout.lines().find_map(|l| l.strip_prefix(prefix))?;
    line.strip_prefix("http://")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The bundled SDKs' cache of every test server (`SOUS_SDK_DIR`): one per machine and user,
/// outside any data dir and any home (a rootless server runs as another user and must read
/// it), so that the SDKs are installed once, not per server.
pub fn test_sdk_dir() -> PathBuf {
    let uid = sous_sandbox::syscalls::geteuid();
    std::env::temp_dir().join(format!("sous-test-sdks-{uid}"))
}

/// Installs the bundled SDKs (`sous sdk install`, through the built binary) once per test
/// process, before the first server starts, so that no server installs them in the
/// background during a test. The binary locks each install, so test processes running side
/// by side install once between them; already installed, it only checks. `Err`: the output
/// of a failed install (a host without pip or npm, or without the registries).
pub fn install_bundled_sdks() -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    use std::sync::OnceLock;
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = test_sdk_dir();
        let _ = fs::DirBuilder::new().mode(0o755).create(&dir);
        // In the shared temp dir: someone else's directory there would be trusted code.
        let meta = fs::symlink_metadata(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if !meta.is_dir()
            || meta.uid() != sous_sandbox::syscalls::geteuid()
            || meta.mode() & 0o022 != 0
        {
            return Err(format!(
                "{} is not a directory of this user writable only by it",
                dir.display()
            ));
        }
        let out = Command::new(Server::binary())
            .args(["sdk", "install", "--dir"])
            .arg(&dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("run sous sdk install: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`sous sdk install --dir {}` failed ({}):\n{}{}",
                dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    })
    .clone()
}

/// Options for starting a server.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// `SOUS_ACCESS_KEY_ID` / `SOUS_SECRET_ACCESS_KEY`; `None` leaves them unset so the server
    /// generates a pair into `<data-dir>/credentials`.
    pub credentials: Option<(String, String)>,
    pub no_echo_logs: bool,
    /// More `sous serve` flags (e.g. `--account-concurrency 10`).
    pub extra_args: Vec<String>,
    /// Run the server as another user (the test must be root).
    pub run_as: Option<RunAs>,
    /// More environment variables for `sous serve` (e.g. a `PATH` with a virtualenv first).
    pub env: Vec<(String, String)>,
}

/// Who runs the server, and in which cgroups it starts: a shell (as root) moves itself into
/// `cgroup_procs` (each a `cgroup.procs` file), then `setpriv` becomes `uid`/`gid` with no
/// supplementary groups and runs `sous serve`, which so starts inside that (delegated) tree.
/// The data dir is given to the user, and its parent made traversable.
#[derive(Clone, Debug)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
    pub cgroup_procs: Vec<PathBuf>,
    /// The `sous` binary to run, when the one under test is not reachable by the user.
    pub program: Option<PathBuf>,
}

/// What the shell before `setpriv` runs: `sh -c MOVE sh UID GID PROCS... -- PROGRAM ARGS...`.
const MOVE_AND_BECOME: &str = r#"u=$1; g=$2; shift 2
while [ "$1" != "--" ]; do echo $$ > "$1" || exit 125; shift; done
shift
exec setpriv --reuid="$u" --regid="$g" --clear-groups -- "$@""#;

impl ServerOptions {
    /// The defaults plus `args` as extra `sous serve` flags.
    pub fn with_args(args: &[&str]) -> Self {
        Self {
            extra_args: args.iter().map(|a| a.to_string()).collect(),
            ..Self::default()
        }
    }
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            credentials: Some((ACCESS_KEY.to_string(), SECRET_KEY.to_string())),
            no_echo_logs: false,
            extra_args: Vec::new(),
            run_as: None,
            env: Vec::new(),
        }
    }
}

/// A running `sous serve`.
pub struct Server {
    root: tempfile::TempDir,
    pub data_dir: PathBuf,
    pub api_addr: SocketAddr,
    pub gateway_addr: SocketAddr,
    pub options: ServerOptions,
    pub client: Client,
    child: Option<Child>,
    runs: u32,
}

impl Server {
    pub fn start() -> Self {
        Self::start_with(ServerOptions::default())
    }

    pub fn start_with(options: ServerOptions) -> Self {
        if let Err(e) = install_bundled_sdks() {
            eprintln!("warning: servers start without the bundled SDKs: {e}");
        }
        let root = tempfile::Builder::new()
            .prefix("sous-it-")
            .tempdir()
            .expect("create temp dir");
        let data_dir = root.path().join("data");
        fs::create_dir_all(&data_dir).unwrap();
        if let Some(r) = &options.run_as {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
            std::os::unix::fs::chown(&data_dir, Some(r.uid), Some(r.gid)).unwrap();
        }
        let placeholder: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut server = Server {
            root,
            data_dir,
            api_addr: placeholder,
            gateway_addr: placeholder,
            client: client_for(placeholder, ACCESS_KEY, SECRET_KEY),
            options,
            child: None,
            runs: 0,
        };
        server.spawn();
        server
    }

    /// The sous binary under test.
    pub fn binary() -> PathBuf {
        PathBuf::from(env!("CARGO_BIN_EXE_sous"))
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "server already running");
        self.runs += 1;
        // The server picks both ports (port 0) and prints them: a port found free here could
        // be taken by a parallel test before the server binds it.
        let out = File::create(self.stdout_path(self.runs)).unwrap();
        let err = File::create(self.stderr_path(self.runs)).unwrap();
        let mut cmd = match &self.options.run_as {
            None => Command::new(Self::binary()),
            Some(r) => {
                assert!(
                    Command::new("setpriv").arg("--version").output().is_ok(),
                    "running sous as another user needs setpriv (util-linux): run `cargo xtask setup`"
                );
                let mut c = Command::new("/bin/sh");
                c.args(["-c", MOVE_AND_BECOME, "sh"])
                    .args([r.uid.to_string(), r.gid.to_string()])
                    .args(&r.cgroup_procs)
                    .arg("--")
                    .arg(r.program.clone().unwrap_or_else(Self::binary));
                c
            }
        };
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--api-addr", "127.0.0.1:0", "--gateway-addr", "127.0.0.1:0"])
            .arg("--region")
            .arg(REGION)
            .arg("--account-id")
            .arg(ACCOUNT)
            .env_remove("SOUS_ACCESS_KEY_ID")
            .env_remove("SOUS_SECRET_ACCESS_KEY")
            .env_remove("SOUS_DATA_DIR")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        if self.options.no_echo_logs {
            cmd.arg("--no-echo-logs");
        }
        cmd.args(&self.options.extra_args);
        cmd.env("SOUS_SDK_DIR", test_sdk_dir());
        cmd.envs(self.options.env.iter().map(|(k, v)| (k, v)));
        if let Some((akid, secret)) = &self.options.credentials {
            cmd.env("SOUS_ACCESS_KEY_ID", akid)
                .env("SOUS_SECRET_ACCESS_KEY", secret);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "spawn {}: {e} (is the binary built?)",
                Self::binary().display()
            )
        });
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "sous serve exited before accepting connections ({status}); if it names a \
                     missing host program, `cargo xtask setup` installs what the tests need.\n{}",
                    self.output()
                );
            }
            let stdout = fs::read_to_string(self.stdout_path(self.runs)).unwrap_or_default();
            if let (Some(api), Some(gateway)) = (
                listening_addr(&stdout, "sous: Lambda API listening on "),
                listening_addr(&stdout, "sous: HTTP front door listening on "),
            ) {
                self.api_addr = api;
                self.gateway_addr = gateway;
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "sous serve did not say it was listening within {:?}.\n{}",
                    START_TIMEOUT,
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
        let (akid, secret) = self.credentials();
        self.client = client_for(self.api_addr, &akid, &secret);
    }

    /// The key pair the server accepts: the configured one, or the one it generated.
    pub fn credentials(&self) -> (String, String) {
        match &self.options.credentials {
            Some(pair) => pair.clone(),
            None => {
                let (akid, secret) = read_credentials_file(&self.data_dir.join("credentials"));
                (akid, secret)
            }
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// `GET /_sous/status`, SigV4-signed by the SDK (a GetAccountSettings call whose path is
    /// changed before signing).
    pub async fn status(&self) -> serde_json::Value {
        let rec = Recorder::default();
        self.client
            .get_account_settings()
            .customize()
            .interceptor(StatusPath)
            .interceptor(rec.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("status: {:#?}", api_error(e)));
        let seen = rec.seen();
        assert_eq!(seen.status, 200);
        seen.json()
    }

    /// Polls the status endpoint until `ready` holds (for at most `secs`); returns that status.
    pub async fn wait_status(
        &self,
        what: &str,
        secs: u64,
        ready: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.status().await;
            if ready(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; status {s:#}\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn stdout_path(&self, run: u32) -> PathBuf {
        self.root.path().join(format!("server-{run}.stdout"))
    }

    fn stderr_path(&self, run: u32) -> PathBuf {
        self.root.path().join(format!("server-{run}.stderr"))
    }

    /// Every log event `function` has written so far, from the stored log streams of all its
    /// environments (`<data-dir>/logs/<function>/...`, lines of `epoch-ms\tmessage`), in order
    /// of time (ties: stream, then line), with the streams' escaping (`\\`, `\n`) undone, so
    /// a multi-line event is one string.
    pub fn log_events(&self, function: &str) -> Vec<String> {
        let mut files = Vec::new();
        files_under(&self.data_dir.join("logs").join(function), &mut files);
        files.sort();
        let mut events: Vec<(u128, usize, String)> = Vec::new();
        for (n, path) in files.iter().enumerate() {
            let text = fs::read_to_string(path).unwrap_or_default();
            let mut ms = 0;
            for line in text.lines() {
                let msg = match line.split_once('\t') {
                    Some((t, m)) => {
                        ms = t.parse().unwrap_or(ms);
                        m
                    }
                    None => line,
                };
                events.push((ms, n, sous_worker::logs::unescape(msg)));
            }
        }
        // Stable: lines of one stream keep their order.
        events.sort_by_key(|(ms, n, _)| (*ms, *n));
        events.into_iter().map(|(_, _, m)| m).collect()
    }

    /// Everything the server printed so far, in all its runs.
    pub fn output(&self) -> String {
        let mut all = String::new();
        for run in 1..=self.runs {
            for (what, path) in [
                ("stdout", self.stdout_path(run)),
                ("stderr", self.stderr_path(run)),
            ] {
                let text = fs::read(&path).map(|b| String::from_utf8_lossy(&b).into_owned());
                all.push_str(&format!(
                    "----- server run {run} {what} -----\n{}\n",
                    text.unwrap_or_default()
                ));
            }
        }
        all
    }

    /// The last `n` bytes of the server's output, for panic messages.
    pub fn output_tail(&self, n: usize) -> String {
        let all = self.output();
        if all.len() <= n {
            return all;
        }
        let mut start = all.len() - n;
        while !all.is_char_boundary(start) {
            start += 1;
        }
        format!("...{}", &all[start..])
    }

    /// SIGTERM, then wait (SIGKILL after a bound). Returns the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.stop_with(Signal::SIGTERM)
    }

    /// Sends `signal`, then waits (SIGKILL after a bound). Returns the exit status.
    pub fn stop_with(&mut self, signal: Signal) -> ExitStatus {
        let mut child = self.child.take().expect("server not running");
        stop_child_with(&mut child, signal)
    }

    /// SIGKILL the server (a crash): its function processes are left to the next start.
    pub fn kill_hard(&mut self) {
        let mut child = self.child.take().expect("server not running");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Start again on the same data dir (new ports; `self.client` is rebuilt).
    pub fn restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child);
        }
        self.spawn();
    }

    /// Entries (recursively, relative paths) under a directory of the data dir; empty when
    /// the directory does not exist.
    pub fn tree(&self, sub: &str) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.data_dir.join(sub), Path::new(""), &mut out);
        out.sort();
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child);
        }
    }
}

fn walk(dir: &Path, rel: &Path, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let rel = rel.join(entry.file_name());
        out.push(rel.display().to_string());
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            walk(&entry.path(), &rel, out);
        }
    }
}

fn stop_child(child: &mut Child) -> ExitStatus {
    stop_child_with(child, Signal::SIGTERM)
}

fn stop_child_with(child: &mut Child, signal: Signal) -> ExitStatus {
    let _ = kill(Pid::from_raw(child.id() as i32), signal);
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            eprintln!("sous serve did not exit within {STOP_TIMEOUT:?} of {signal}; killing it");
            let _ = child.kill();
            return child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads `[sous]` `aws_access_key_id` / `aws_secret_access_key` from an AWS credentials file.
pub fn read_credentials_file(path: &Path) -> (String, String) {
    let text = fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read credentials file {}: {e}", path.display()));
    let mut section = String::new();
    let (mut akid, mut secret) = (None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') && line.ends_with(']') {
            section = line[1..line.len() - 1].trim().to_string();
        } else if section == "sous" {
            if let Some((k, v)) = line.split_once('=') {
                match k.trim() {
                    "aws_access_key_id" => akid = Some(v.trim().to_string()),
                    "aws_secret_access_key" => secret = Some(v.trim().to_string()),
                    _ => {}
                }
            }
        }
    }
    match (akid, secret) {
        (Some(a), Some(s)) => (a, s),
        _ => panic!("no [sous] key pair in {}:\n{text}", path.display()),
    }
}

/// An SDK client for an endpoint with a static key pair; no retries (tests see the first
/// answer), a generous read timeout.
pub fn client_for(addr: SocketAddr, akid: &str, secret: &str) -> Client {
    let conf = aws_sdk_lambda::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(akid, secret, None, None, "sous-tests"))
        .endpoint_url(format!("http://{addr}"))
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .read_timeout(Duration::from_secs(120))
                .build(),
        )
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .build();
    Client::from_conf(conf)
}

// ---------------------------------------------------------------------------------------
// Errors

/// What a failed API call looked like on the wire.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: Option<u16>,
    /// The `x-amzn-ErrorType` header as sent.
    pub error_type_header: Option<String>,
    /// The code the SDK derived.
    pub code: Option<String>,
    pub message: Option<String>,
    pub body: String,
    pub debug: String,
}

impl ApiError {
    pub fn assert(&self, status: u16, code: &str) {
        assert_eq!(self.status, Some(status), "HTTP status of {self:#?}");
        assert_eq!(self.code.as_deref(), Some(code), "error code of {self:#?}");
        let header = self.error_type_header.as_deref().unwrap_or("");
        assert_eq!(
            header.split(':').next().unwrap_or(""),
            code,
            "x-amzn-ErrorType header of {self:#?}"
        );
    }

    pub fn message(&self) -> &str {
        self.message.as_deref().unwrap_or("")
    }
}

pub fn api_error<E>(err: SdkError<E, aws_sdk_lambda::config::http::HttpResponse>) -> ApiError
where
    E: ProvideErrorMetadata + std::fmt::Debug,
{
    let debug = format!("{err:?}");
    let (status, error_type_header, body) = match err.raw_response() {
        Some(raw) => (
            Some(raw.status().as_u16()),
            raw.headers().get("x-amzn-ErrorType").map(str::to_string),
            raw.body()
                .bytes()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default(),
        ),
        None => (None, None, String::new()),
    };
    ApiError {
        status,
        error_type_header,
        code: err.code().map(str::to_string),
        message: err.message().map(str::to_string),
        body,
        debug,
    }
}

/// Unwraps the error of a call that must fail.
pub fn expect_err<T: std::fmt::Debug, E>(
    result: Result<T, SdkError<E, aws_sdk_lambda::config::http::HttpResponse>>,
) -> ApiError
where
    E: ProvideErrorMetadata + std::fmt::Debug,
{
    match result {
        Ok(v) => panic!("call succeeded but must fail: {v:#?}"),
        Err(e) => api_error(e),
    }
}

// ---------------------------------------------------------------------------------------
// Zips

/// One entry of a test zip.
#[derive(Clone, Debug)]
pub enum Entry {
    File {
        path: String,
        data: Vec<u8>,
        mode: u32,
    },
    Symlink {
        path: String,
        target: String,
    },
    Dir {
        path: String,
    },
}

pub fn file(path: &str, data: impl Into<Vec<u8>>, mode: u32) -> Entry {
    Entry::File {
        path: path.to_string(),
        data: data.into(),
        mode,
    }
}

/// Builds a zip in memory (deflated files, unix modes).
pub fn zip_entries(entries: &[Entry]) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for entry in entries {
        match entry {
            Entry::File { path, data, mode } => {
                let opts = SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated)
                    .unix_permissions(*mode);
                w.start_file(path.as_str(), opts).unwrap();
                w.write_all(data).unwrap();
            }
            Entry::Symlink { path, target } => {
                let opts = SimpleFileOptions::default().unix_permissions(0o777);
                w.add_symlink(path.as_str(), target.as_str(), opts).unwrap();
            }
            Entry::Dir { path } => {
                let opts = SimpleFileOptions::default().unix_permissions(0o755);
                w.add_directory(path.as_str(), opts).unwrap();
            }
        }
    }
    w.finish().unwrap().into_inner()
}

/// Builds a zip from (path, bytes, unix mode) triples.
pub fn zip_files(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let entries: Vec<Entry> = files
        .iter()
        .map(|(p, d, m)| file(p, d.to_vec(), *m))
        .collect();
    zip_entries(&entries)
}

/// A zip holding a directory tree as it is on disk (modes kept).
pub fn zip_dir(dir: &Path) -> Vec<u8> {
    fn collect(base: &Path, dir: &Path, out: &mut Vec<Entry>) {
        let mut entries: Vec<_> = fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let rel = path
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&path).unwrap().to_string_lossy().into_owned();
                out.push(Entry::Symlink { path: rel, target });
            } else if meta.is_dir() {
                out.push(Entry::Dir {
                    path: format!("{rel}/"),
                });
                collect(base, &path, out);
            } else {
                use std::os::unix::fs::PermissionsExt;
                let mode = meta.permissions().mode() & 0o7777;
                out.push(file(&rel, fs::read(&path).unwrap(), mode));
            }
        }
    }
    let mut entries = Vec::new();
    collect(dir, dir, &mut entries);
    zip_entries(&entries)
}

/// A zip whose entries unpack to `total_mib` MiB of zeros (1 MiB per entry), built by
/// compressing one entry and copying its compressed bytes, so that it stays small and fast.
pub fn zip_bomb(total_mib: usize) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let one = {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(0o644);
        w.start_file("zeros-0", opts).unwrap();
        w.write_all(&vec![0u8; 1 << 20]).unwrap();
        w.finish().unwrap().into_inner()
    };
    let mut src = zip::ZipArchive::new(Cursor::new(one)).unwrap();
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for i in 0..total_mib {
        let f = src.by_index(0).unwrap();
        w.raw_copy_file_rename(f, format!("zeros-{i}")).unwrap();
    }
    w.finish().unwrap().into_inner()
}

pub fn code_sha256(zip: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(zip))
}

pub fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

pub fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_else(|e| panic!("not base64 ({e}): {text}"))
}

// ---------------------------------------------------------------------------------------
// Fixtures

/// Path of a fixture binary built from `crates/sous/examples/NAME.rs`. `cargo test` builds
/// the examples; when a single test target was selected it may not have, so build it then.
pub fn example_binary(name: &str) -> PathBuf {
    let bin = Server::binary();
    let profile_dir = bin.parent().expect("binary has a directory");
    let path = profile_dir.join("examples").join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "sous", "--example", name]);
        if profile_dir.file_name().and_then(|n| n.to_str()) == Some("release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build --example");
        assert!(status.success(), "cargo build --example {name} failed");
    }
    assert!(path.exists(), "fixture binary {} missing", path.display());
    path
}

/// The repo root (`crates/sous/../..`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A zip with one executable `bootstrap`.
pub fn bootstrap_zip(bootstrap: impl Into<Vec<u8>>) -> Vec<u8> {
    zip_entries(&[file("bootstrap", bootstrap, 0o755)])
}

/// A shell-script custom runtime: a loop over `/next` that runs `handler` for each event.
///
/// Inside `handler`: `$REQUEST_ID`, `$EVENT` (file holding the event), `$HEADERS` (file
/// holding the `/next` response headers), `header NAME` prints a `/next` header's value,
/// `respond FILE` / `respond_text TEXT` post the response, `fail TYPE JSON` posts an error.
/// `init` runs once before the loop.
pub fn shell_runtime(init: &str, handler: &str) -> String {
    // The sandbox shows the host's /usr to custom runtimes.
    assert!(
        Path::new("/usr/bin/curl").exists(),
        "the shell-script runtimes of the tests need /usr/bin/curl: run `cargo xtask setup`"
    );
    format!(
        r#"#!/bin/sh
API="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
WORK=$(mktemp -d)
HEADERS="$WORK/headers"
EVENT="$WORK/event"
header() {{ grep -i "^$1:" "$HEADERS" | head -n 1 | sed 's/^[^:]*: *//' | tr -d '\r\n'; }}
respond() {{ curl -sS -H 'Expect:' -X POST --data-binary "@$1" "$API/invocation/$REQUEST_ID/response" >/dev/null; }}
respond_text() {{ printf '%s' "$1" > "$WORK/out"; respond "$WORK/out"; }}
fail() {{ printf '%s' "$2" > "$WORK/err"; curl -sS -H 'Expect:' -X POST -H "Lambda-Runtime-Function-Error-Type: $1" --data-binary "@$WORK/err" "$API/invocation/$REQUEST_ID/error" >/dev/null; }}
{init}
while true; do
  curl -sS -D "$HEADERS" -o "$EVENT" "$API/invocation/next" || exit 1
  REQUEST_ID=$(header Lambda-Runtime-Aws-Request-Id)
{handler}
done
"#
    )
}

/// A shell runtime that echoes the event back.
pub fn echo_runtime() -> String {
    shell_runtime("", r#"  respond "$EVENT""#)
}

// ---------------------------------------------------------------------------------------
// Lambda calls

/// CreateFunction with Sous's test defaults (provided.al2023, handler `handler`, test role).
pub fn create(client: &Client, name: &str, zip: &[u8]) -> CreateFunctionFluentBuilder {
    client
        .create_function()
        .function_name(name)
        .runtime(Runtime::Providedal2023)
        .role(ROLE)
        .handler("handler")
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(zip.to_vec()))
                .build(),
        )
}

pub fn env_vars(pairs: &[(&str, &str)]) -> Environment {
    let mut b = Environment::builder();
    for (k, v) in pairs {
        b = b.variables(*k, *v);
    }
    b.build()
}

/// Creates a function from a zip and panics (with the server's output) if that fails.
pub async fn create_ok(
    server: &Server,
    builder: CreateFunctionFluentBuilder,
) -> aws_sdk_lambda::operation::create_function::CreateFunctionOutput {
    match builder.send().await {
        Ok(out) => out,
        Err(e) => panic!(
            "CreateFunction failed: {:#?}\n{}",
            api_error(e),
            server.output_tail(4000)
        ),
    }
}

/// What an Invoke returned.
#[derive(Debug, Clone)]
pub struct Invoked {
    pub status: i32,
    pub payload: Vec<u8>,
    pub function_error: Option<String>,
    /// Decoded `X-Amz-Log-Result`.
    pub log: Option<String>,
    pub executed_version: Option<String>,
    pub request_id: Option<String>,
    pub elapsed: Duration,
}

impl Invoked {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap_or_else(|e| {
            panic!(
                "payload is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.payload)
            )
        })
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
    pub fn log(&self) -> &str {
        self.log.as_deref().expect("no X-Amz-Log-Result")
    }
}

/// An Invoke builder with LogType=Tail and the payload set.
pub fn invoke_req(client: &Client, name: &str, payload: &[u8]) -> InvokeFluentBuilder {
    client
        .invoke()
        .function_name(name)
        .log_type(LogType::Tail)
        .payload(Blob::new(payload.to_vec()))
}

pub async fn send_invoke(server: &Server, req: InvokeFluentBuilder) -> Invoked {
    finish_invoke(server, req.send()).await
}

type InvokeResult = Result<
    aws_sdk_lambda::operation::invoke::InvokeOutput,
    SdkError<
        aws_sdk_lambda::operation::invoke::InvokeError,
        aws_sdk_lambda::config::http::HttpResponse,
    >,
>;

/// Awaits an Invoke sent any way (e.g. through `.customize()`), panicking on an API error.
pub async fn finish_invoke(
    server: &Server,
    fut: impl std::future::Future<Output = InvokeResult>,
) -> Invoked {
    let start = Instant::now();
    match fut.await {
        Ok(out) => Invoked {
            status: out.status_code(),
            request_id: out.request_id().map(str::to_string),
            payload: out
                .payload()
                .map(|b| b.as_ref().to_vec())
                .unwrap_or_default(),
            function_error: out.function_error().map(str::to_string),
            log: out
                .log_result()
                .map(|l| String::from_utf8_lossy(&unb64(l)).into_owned()),
            executed_version: out.executed_version().map(str::to_string),
            elapsed: start.elapsed(),
        },
        Err(e) => panic!(
            "Invoke failed: {:#?}\n{}",
            api_error(e),
            server.output_tail(4000)
        ),
    }
}

/// Invoke (RequestResponse, LogType=Tail) and panic on an API error.
pub async fn invoke(server: &Server, name: &str, payload: &[u8]) -> Invoked {
    send_invoke(server, invoke_req(&server.client, name, payload)).await
}

// ---------------------------------------------------------------------------------------
// Raw HTTP

#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Sends one plain HTTP/1.1 request (no signing; headers as given).
pub async fn raw_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> RawResponse {
    use hyper_util::client::legacy::Client as HttpClient;
    use hyper_util::rt::TokioExecutor;
    let client: HttpClient<_, Full<bytes::Bytes>> =
        HttpClient::builder(TokioExecutor::new()).build_http();
    let mut req = hyper::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(bytes::Bytes::from(body))).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(30), client.request(req))
        .await
        .unwrap_or_else(|_| panic!("{method} {url}: no answer within 30 s"))
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    RawResponse {
        status,
        headers,
        body,
    }
}

// ---------------------------------------------------------------------------------------
// Processes

/// Processes whose command line or environment contains `marker` (excluding this one).
pub fn processes_with(marker: &str) -> Vec<(u32, String)> {
    let me = std::process::id();
    let mut found = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let read = |what: &str| {
            let mut buf = Vec::new();
            File::open(entry.path().join(what))
                .and_then(|mut f| f.read_to_end(&mut buf))
                .map(|_| buf)
                .unwrap_or_default()
        };
        let cmdline = read("cmdline");
        let environ = read("environ");
        let m = marker.as_bytes();
        let hit = |hay: &[u8]| hay.windows(m.len()).any(|w| w == m);
        if hit(&cmdline) || hit(&environ) {
            // A zombie has an empty cmdline and is already gone for our purposes.
            if cmdline.is_empty() {
                continue;
            }
            let stat = String::from_utf8_lossy(&read("stat")).into_owned();
            // Fields after the command's closing parenthesis: state ppid pgrp ...
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            let cmd = format!(
                "{} [state {} ppid {} pgid {}]",
                String::from_utf8_lossy(&cmdline)
                    .replace('\0', " ")
                    .trim_end(),
                fields.first().unwrap_or(&"?"),
                fields.get(1).unwrap_or(&"?"),
                fields.get(2).unwrap_or(&"?"),
            );
            found.push((pid, cmd));
        }
    }
    found
}

/// Waits (bounded) until no process carries `marker`; returns what is left otherwise.
pub fn wait_processes_gone(marker: &str, timeout: Duration) -> Vec<(u32, String)> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = processes_with(marker);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (bounded) until none of `pids` is running (a zombie counts as gone); returns the
/// ones still running otherwise.
pub fn wait_pids_gone(pids: &[u32], timeout: Duration) -> Vec<(u32, String)> {
    let deadline = Instant::now() + timeout;
    loop {
        let left: Vec<(u32, String)> = pids
            .iter()
            .filter_map(|pid| {
                let cmd = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                (!cmd.is_empty()).then(|| (*pid, String::from_utf8_lossy(&cmd).replace('\0', " ")))
            })
            .collect();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills processes left by a failed test, so that they do not pile up.
pub fn reap(marker: &str) {
    for (pid, _) in processes_with(marker) {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
}

/// A shell runtime that records `marker` in the command line of a background grandchild
/// (`sh -c 'sleep 600; true' MARKER`, with `SOUS_TEST_MARKER=MARKER` in its environment), then echoes events. The function's environment should also
/// carry `SOUS_TEST_MARKER=marker` so that the runtime process itself is found.
pub fn marked_runtime(marker: &str) -> String {
    shell_runtime(
        &format!("SOUS_TEST_MARKER={marker} sh -c 'sleep 600; true' {marker} </dev/null >/dev/null 2>&1 &"),
        r#"  respond "$EVENT""#,
    )
}

/// Asserts that `text` matches `re`.
pub fn assert_matches(re: &str, text: &str, what: &str) {
    let r = regex::Regex::new(re).unwrap();
    assert!(r.is_match(text), "{what} {text:?} does not match {re}");
}

// ---------------------------------------------------------------------------------------
// Recording what the SDK saw on the wire for successful calls

use aws_sdk_lambda::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeDeserializationInterceptorContextRef,
};
use aws_sdk_lambda::config::{ConfigBag, Intercept, RuntimeComponents};
use std::sync::{Arc, Mutex};

/// The HTTP status, headers and body of the last response an operation received.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// An interceptor that records the raw response: `builder.customize().interceptor(rec.clone())`.
#[derive(Debug, Default, Clone)]
pub struct Recorder(Arc<Mutex<Seen>>);

impl Recorder {
    pub fn seen(&self) -> Seen {
        self.0.lock().unwrap().clone()
    }
}

type InterceptResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "sous-tests-recorder"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> InterceptResult {
        let resp = context.response();
        let mut seen = self.0.lock().unwrap();
        seen.status = resp.status().as_u16();
        seen.headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(b) = resp.body().bytes() {
            seen.body = b.to_vec();
        }
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> InterceptResult {
        if let Some(b) = context.response().body().bytes() {
            self.0.lock().unwrap().body = b.to_vec();
        }
        Ok(())
    }
}

/// The FunctionConfiguration fields the tests compare, from any output that carries them.
#[derive(Debug, Clone, PartialEq)]
pub struct Conf {
    pub function_name: Option<String>,
    pub function_arn: Option<String>,
    pub runtime: Option<String>,
    pub role: Option<String>,
    pub handler: Option<String>,
    pub code_size: i64,
    pub description: Option<String>,
    pub timeout: Option<i32>,
    pub memory_size: Option<i32>,
    pub last_modified: Option<String>,
    pub code_sha256: Option<String>,
    pub version: Option<String>,
    pub environment: Option<std::collections::BTreeMap<String, String>>,
    pub revision_id: Option<String>,
    pub state: Option<String>,
    pub last_update_status: Option<String>,
    pub package_type: Option<String>,
    pub architectures: Vec<String>,
    pub ephemeral_storage: Option<i32>,
}

#[macro_export]
macro_rules! conf {
    ($o:expr) => {{
        let o = &$o;
        $crate::common::Conf {
            function_name: o.function_name().map(str::to_string),
            function_arn: o.function_arn().map(str::to_string),
            runtime: o.runtime().map(|r| r.as_str().to_string()),
            role: o.role().map(str::to_string),
            handler: o.handler().map(str::to_string),
            code_size: o.code_size(),
            description: o.description().map(str::to_string),
            timeout: o.timeout(),
            memory_size: o.memory_size(),
            last_modified: o.last_modified().map(str::to_string),
            code_sha256: o.code_sha256().map(str::to_string),
            version: o.version().map(str::to_string),
            environment: o
                .environment()
                .and_then(|e| e.variables())
                .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            revision_id: o.revision_id().map(str::to_string),
            state: o.state().map(|s| s.as_str().to_string()),
            last_update_status: o.last_update_status().map(|s| s.as_str().to_string()),
            package_type: o.package_type().map(|s| s.as_str().to_string()),
            architectures: o
                .architectures()
                .iter()
                .map(|a| a.as_str().to_string())
                .collect(),
            ephemeral_storage: o.ephemeral_storage().map(|e| e.size()),
        }
    }};
}

pub const LAST_MODIFIED_RE: &str = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$";
pub const UUID_RE: &str = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

pub fn function_arn(name: &str) -> String {
    format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}")
}

/// Rewrites GetAccountSettings' path to Sous's status endpoint before the request is signed,
/// so the SDK signs `GET /_sous/status` (use with `.customize().interceptor(StatusPath)`).
#[derive(Debug)]
pub struct StatusPath;

impl aws_sdk_lambda::config::Intercept for StatusPath {
    fn name(&self) -> &'static str {
        "sous-status-path"
    }

    fn modify_before_signing(
        &self,
        context: &mut aws_sdk_lambda::config::interceptors::BeforeTransmitInterceptorContextMut<'_>,
        _rc: &aws_sdk_lambda::config::RuntimeComponents,
        _cfg: &mut aws_sdk_lambda::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let req = context.request_mut();
        let uri = req
            .uri()
            .replace("/2016-08-19/account-settings", "/_sous/status");
        req.set_uri(uri)?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// The unmodified AWS CLI and boto3, as the tests that drive Sous through them use them.

/// `--cli-binary-format raw-in-base64-out`: how CLI v2 takes a raw JSON payload; v1 takes it
/// raw already and does not know the option, so [`AwsCli::run`] drops it for v1.
pub const BINARY_FORMAT: [&str; 2] = ["--cli-binary-format", "raw-in-base64-out"];

/// The AWS CLI ([`aws_cli`]) for one service of one server,
/// with the server's key pair and a throwaway home, so nothing of the machine's AWS
/// configuration takes part. A CLI that does not run fails the test: it is never skipped.
pub struct AwsCli {
    bin: PathBuf,
    v2: bool,
    service: &'static str,
    endpoint: String,
    akid: String,
    secret: String,
    /// `AWS_MAX_ATTEMPTS`, when set: 1 makes an error answer at once instead of retried.
    max_attempts: Option<&'static str>,
    home: tempfile::TempDir,
}

impl AwsCli {
    /// `aws <service> ...` against `server`.
    pub fn new(server: &Server, service: &'static str) -> Self {
        let cli = aws_cli();
        let v2 = match Command::new(&cli).arg("--version").output() {
            Ok(out) if out.status.success() => {
                let version = String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr);
                version.contains("aws-cli/2.")
            }
            Ok(out) => panic!(
                "the AWS CLI at {} does not run ({}): {}{}\nRun `cargo xtask setup` (it makes .venv with the AWS CLI), or set SOUS_TEST_AWS_CLI.",
                cli.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => panic!(
                "the AWS CLI ({}) is not available: {e}. Run `cargo xtask setup` (it makes .venv with the AWS CLI), or set SOUS_TEST_AWS_CLI.",
                cli.display()
            ),
        };
        let (akid, secret) = server.credentials();
        AwsCli {
            bin: cli,
            v2,
            service,
            endpoint: server.endpoint(),
            akid,
            secret,
            max_attempts: None,
            home: tempfile::tempdir().unwrap(),
        }
    }

    /// Sign with another key pair (to test refusals).
    pub fn with_credentials(mut self, akid: &str, secret: &str) -> Self {
        self.akid = akid.into();
        self.secret = secret.into();
        self
    }

    /// One attempt per command: an error is answered, not retried.
    pub fn single_attempt(mut self) -> Self {
        self.max_attempts = Some("1");
        self
    }

    /// Run `aws <service> <args>` (with `--endpoint-url` and `--output json`).
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        let args: Vec<&str> = if self.v2 {
            args.to_vec()
        } else {
            args.iter()
                .copied()
                .filter(|a| !BINARY_FORMAT.contains(a))
                .collect()
        };
        let mut cmd = Command::new(&self.bin);
        cmd.arg(self.service)
            .args(&args)
            .args(["--endpoint-url", &self.endpoint, "--output", "json"])
            .env("AWS_ACCESS_KEY_ID", &self.akid)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_CONFIG_FILE", self.home.path().join("config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.home.path().join("credentials"),
            )
            .env("HOME", self.home.path())
            .env("AWS_PAGER", "")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_ENDPOINT_URL");
        if let Some(n) = self.max_attempts {
            cmd.env("AWS_MAX_ATTEMPTS", n);
        }
        cmd.output()
            .unwrap_or_else(|e| panic!("run aws {} {args:?}: {e}", self.service))
    }

    /// Run and parse stdout as JSON (`Null` when empty); panics with the CLI's output when it
    /// fails.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "aws {} {args:?} failed ({}):\n{}{}",
            self.service,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return serde_json::Value::Null;
        }
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "aws {} {args:?}: stdout is not JSON ({e}):\n{}",
                self.service,
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Assert the command fails with AWS error `code` (as the CLI prints it: `(Code)`);
    /// returns the CLI's stderr.
    pub fn fails_with(&self, args: &[&str], code: &str) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "aws {} {args:?} should fail",
            self.service
        );
        assert!(
            stderr.contains(&format!("({code})")),
            "aws {} {args:?}: expected {code}, got:\n{stderr}",
            self.service
        );
        stderr
    }
}

/// The AWS CLI: `$SOUS_TEST_AWS_CLI`, else the checkout's `.venv/bin/aws` (`cargo xtask
/// setup` makes it), else `aws` on PATH.
pub fn aws_cli() -> PathBuf {
    if let Some(cli) = std::env::var_os("SOUS_TEST_AWS_CLI") {
        return PathBuf::from(cli);
    }
    let venv = repo_root().join(".venv/bin/aws");
    if venv.is_file() {
        return venv;
    }
    "aws".into()
}

/// The venv's python with boto3 (`$SOUS_TEST_PYTHON`, else `.venv/bin/python`), which must
/// exist: `cargo xtask setup` makes it.
pub fn venv_python() -> PathBuf {
    let python = std::env::var_os("SOUS_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    assert!(
        python.exists(),
        "no Python with boto3 at {}: run `cargo xtask setup` (it makes .venv with the AWS CLI \
         and boto3), or set SOUS_TEST_PYTHON",
        python.display()
    );
    python
}

/// Every file below `dir` (none when it does not exist).
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}
