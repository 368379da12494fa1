//! One execution environment: start (init phase), invoke, stop.
//!
//! An environment is a sandbox prepared by `sous-sandbox` (cgroups, network namespace with
//! the Runtime API listener on its loopback, a new root with the code at `/var/task`, a `/tmp`
//! of its own) and the runtime process started in it through the sandbox init. The process
//! is also in its own process group with a parent-death signal, so nothing outlives Sous;
//! each live environment has a run file (`<data-dir>/run/envs/<id>`) naming that group, so a
//! restart after a crash kills what the last run left. With `--isolation none` the same
//! steps run without namespaces (the sandbox hands back a plain command).

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use sous_types::limits::SYNC_RESPONSE_MAX_BYTES;
use sous_types::{names, runtime, timefmt};

use sous_sandbox::{EnvSandboxSpec, Launch, Prepared, Sandbox};

use crate::logs::{self, LogStream, StreamTarget};
use crate::runtime_api::{InitResult, PendingEvent, RuntimeApi, RuntimePipes, RuntimeResult};
use crate::spec::{EnvSpec, Invocation, Outcome};

/// How an invocation handed to an environment ended.
pub enum Delivery {
    /// The runtime took the event: the outcome, and whether the environment can be reused.
    Done(Outcome, bool),
    /// The runtime exited before taking the event (it was on its way out after the previous
    /// invocation); the environment is stopped and the invocation may run elsewhere.
    NotDelivered,
}

/// Paths and switches shared by all environments.
#[derive(Debug, Clone)]
pub struct EnvContext {
    pub logs_dir: PathBuf,
    pub run_dir: PathBuf,
    pub echo_logs: bool,
    pub sandbox: Arc<Sandbox>,
    /// Service endpoints reachable from functions, and their credentials.
    pub services: Arc<crate::services::ServiceAccess>,
}

/// What the pool needs of one execution environment: the seam between the pool's policy
/// (`pool.rs`) and the processes. The real [`Environment`] implements it; the pool's unit
/// tests implement it with a fake. Dropping the value stops the environment.
pub trait EnvHandle: Send + 'static {
    /// The environment's id (its log stream's suffix, and the admission ledger's key).
    fn id(&self) -> &str;
    /// What it runs.
    fn spec(&self) -> &Arc<EnvSpec>;
    /// The pool generation of its function and version when it started.
    fn generation(&self) -> u64;
    /// Whether its runtime is still running.
    fn is_alive(&self) -> bool;
    /// Run one invocation.
    fn invoke(&mut self, inv: Invocation) -> impl std::future::Future<Output = Delivery> + Send;
    /// Log an invocation whose environment never became ready; returns that log.
    fn report_failed_start(
        &self,
        request_id: &str,
        error_type: &str,
        started: Instant,
    ) -> impl std::future::Future<Output = String> + Send;
}

/// Starts execution environments for the pool (the other half of the seam of [`EnvHandle`]).
pub trait Launcher: Send + Sync + 'static {
    type Env: EnvHandle;
    /// Start an environment of `spec` and run its init phase, bounded by `init_limit`
    /// (`request_id`: the invocation that caused the start; `init_type`:
    /// `AWS_LAMBDA_INITIALIZATION_TYPE`). On failure, the environment if it got far enough
    /// to have a log stream.
    fn start(
        &self,
        spec: Arc<EnvSpec>,
        generation: u64,
        request_id: &str,
        init_limit: Duration,
        init_type: &'static str,
    ) -> impl std::future::Future<Output = Result<Self::Env, (InitFailure, Option<Self::Env>)>> + Send;
    /// Stop whatever environments are still running outside the pool's lists (left by an
    /// earlier run, or busy at shutdown).
    fn clean_leftovers(&self);
}

impl Launcher for EnvContext {
    type Env = Environment;

    fn start(
        &self,
        spec: Arc<EnvSpec>,
        generation: u64,
        request_id: &str,
        init_limit: Duration,
        init_type: &'static str,
    ) -> impl std::future::Future<Output = Result<Environment, (InitFailure, Option<Environment>)>> + Send
    {
        Environment::start(spec, self, generation, request_id, init_limit, init_type)
    }

    fn clean_leftovers(&self) {
        clean_leftovers(&self.run_dir);
    }
}

impl EnvHandle for Environment {
    fn id(&self) -> &str {
        &self.id
    }

    fn spec(&self) -> &Arc<EnvSpec> {
        &self.spec
    }

    fn generation(&self) -> u64 {
        self.generation
    }

    fn is_alive(&self) -> bool {
        Environment::is_alive(self)
    }

    fn invoke(&mut self, inv: Invocation) -> impl std::future::Future<Output = Delivery> + Send {
        Environment::invoke(self, inv)
    }

    fn report_failed_start(
        &self,
        request_id: &str,
        error_type: &str,
        started: Instant,
    ) -> impl std::future::Future<Output = String> + Send {
        Environment::report_failed_start(self, request_id, error_type, started)
    }
}

/// How an init phase failed.
pub enum InitFailure {
    /// Init did not finish within its limit.
    Timeout { duration_ms: f64 },
    /// The runtime reported an init error or exited; the outcome is what the caller gets.
    Error(Outcome),
}

pub struct Environment {
    pub id: String,
    pub spec: Arc<EnvSpec>,
    /// Pool generation of the function when this environment started.
    pub generation: u64,
    api: Arc<RuntimeApi>,
    server: JoinHandle<()>,
    /// The service endpoint forwarders (`services.rs`); they end with the environment.
    forwarders: Option<crate::services::Forwarders>,
    pgid: i32,
    exited: watch::Receiver<Option<String>>,
    logs: LogStream,
    run_file: PathBuf,
    /// The sandbox; taken (and destroyed off the async threads) when the environment stops.
    sandbox: Option<Prepared>,
    isolated: bool,
    /// Init duration, reported in the REPORT line of the first invocation only.
    pending_init_ms: Option<f64>,
    stopped: bool,
}

impl Environment {
    /// Start an environment and run its init phase, bounded by `init_limit`. `request_id` is
    /// the invocation that caused the cold start (used in error messages).
    pub async fn start(
        spec: Arc<EnvSpec>,
        ctx: &EnvContext,
        generation: u64,
        request_id: &str,
        init_limit: Duration,
        init_type: &str,
    ) -> Result<Environment, (InitFailure, Option<Environment>)> {
        let started = Instant::now();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let stream = names::log_stream_name(
            &timefmt::stream_date(time::OffsetDateTime::now_utc()),
            &spec.version,
            &id,
        );
        let (read_end, write_end) = match pipe() {
            Ok(p) => p,
            Err(e) => return Err((InitFailure::Error(service_fault(request_id, &e)), None)),
        };
        let target = StreamTarget {
            path: logs::stream_path(&ctx.logs_dir, &spec.function_name, &stream),
            echo_prefix: ctx.echo_logs.then(|| format!("[{}]", spec.function_name)),
        };
        // Managed runtimes write framed records to a telemetry pipe, as Lambda's do.
        let telemetry = if spec.launch.is_some() {
            match pipe() {
                Ok(p) => Some(p),
                Err(e) => return Err((InitFailure::Error(service_fault(request_id, &e)), None)),
            }
        } else {
            None
        };
        let (telemetry_read, telemetry_write) = match telemetry {
            Some((r, w)) => (Some(r), Some(w)),
            None => (None, None),
        };
        let logs = match LogStream::start(read_end, telemetry_read, target) {
            Ok(l) => l,
            Err(e) => return Err((InitFailure::Error(service_fault(request_id, &e)), None)),
        };
        logs.platform(vec![format!(
            "INIT_START Runtime Version: {}.v1\tRuntime Version ARN: {}",
            spec.runtime.replace('.', ":"),
            runtime::version_arn(&spec.region, &spec.runtime)
        )]);

        // A custom runtime's entry point is checked on the host, so that a missing or
        // non-executable bootstrap gets Lambda's Runtime.InvalidEntrypoint.
        if spec.launch.is_none() {
            let (bootstrap, shown) = custom_bootstrap(&spec);
            if let Err(message) = check_bootstrap(&bootstrap, shown, request_id) {
                logs.platform(vec![message.clone(), "Runtime.InvalidEntrypoint".into()]);
                let outcome = Outcome::platform_error("Runtime.InvalidEntrypoint", message);
                return Err((InitFailure::Error(outcome), None));
            }
        }

        let sandbox = ctx.sandbox.clone();
        let sandbox_spec = sandbox_spec(&spec, &id);
        let mut prepared =
            match tokio::task::spawn_blocking(move || sandbox.prepare(&sandbox_spec)).await {
                Ok(Ok(p)) => p,
                Ok(Err(e)) => {
                    let e = std::io::Error::other(e.to_string());
                    return Err((InitFailure::Error(service_fault(request_id, &e)), None));
                }
                Err(e) => {
                    let e = std::io::Error::other(e.to_string());
                    return Err((InitFailure::Error(service_fault(request_id, &e)), None));
                }
            };
        let listener = match prepared
            .listener
            .try_clone()
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(TcpListener::from_std)
        {
            Ok(l) => l,
            Err(e) => return Err((InitFailure::Error(service_fault(request_id, &e)), None)),
        };
        // Managed runtimes also talk to the Runtime API over a pair of pipes (see runtime_api).
        let (pipes, runtime_pipes) = match spec.launch.is_some().then(RuntimePipes::new) {
            Some(Ok((ours, theirs))) => (Some(ours), Some(theirs)),
            Some(Err(e)) => return Err((InitFailure::Error(service_fault(request_id, &e)), None)),
            None => (None, None),
        };
        let forwarders = match ctx
            .services
            .forward(std::mem::take(&mut prepared.service_listeners))
        {
            Ok(f) => f,
            Err(e) => return Err((InitFailure::Error(service_fault(request_id, &e)), None)),
        };
        let (api, init_rx) = RuntimeApi::new();
        let server = tokio::spawn(api.clone().serve(listener, pipes));

        // Paths as the function sees them.
        let inside = |p: &Path| prepared.sandbox_path(p).unwrap_or_else(|| p.to_path_buf());
        // A managed runtime's own files are shown at their host paths (see
        // `Launch::host_paths`), so its arguments and variables need no translation.
        let (program, args) = match &spec.launch {
            Some(launch) => (launch.program.clone(), launch.args_for(spec.memory_mb)),
            None => (inside(&custom_bootstrap(&spec).0), Vec::new()),
        };
        let paths = InsidePaths {
            task_root: inside(&spec.code_dir).display().to_string(),
            runtime_dir: match &spec.launch {
                Some(launch) => inside(&launch.runtime_dir).display().to_string(),
                None => "/var/runtime".to_string(),
            },
        };
        let api_addr = prepared.runtime_api_addr().to_string();
        let mut vars = environment_variables(&spec, &paths, &api_addr, &stream, init_type);
        // Over the function's own: only the forwarders' addresses are reachable.
        vars.extend(
            ctx.services
                .variables(&spec.function_name, prepared.is_isolated()),
        );
        if let Some(launch) = &spec.launch {
            vars.extend(launch.env.iter().cloned());
        }
        if telemetry_write.is_some() {
            vars.insert(
                "_LAMBDA_TELEMETRY_LOG_FD".into(),
                sous_sandbox::TELEMETRY_FD.to_string(),
            );
        }
        if runtime_pipes.is_some() {
            let (name, value) = sous_sandbox::process::RuntimeApiPipes::env_var();
            vars.insert(name.into(), value);
        }
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        let cwd = inside(&spec.code_dir);
        let stdout = match write_end.try_clone() {
            Ok(dup) => dup,
            Err(e) => {
                server.abort();
                return Err((InitFailure::Error(service_fault(request_id, &e)), None));
            }
        };
        // The child gets its own copies; ours close when `launch` is dropped, so the pipes
        // end with the runtime.
        let child = prepared.start(Launch {
            program: &program,
            args: &args,
            env: &vars,
            cwd: &cwd,
            stdout,
            stderr: write_end,
            telemetry: telemetry_write,
            runtime_api: runtime_pipes,
        });
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                server.abort();
                let message = format!(
                    "RequestId: {request_id} Error: fork/exec {}: {e}",
                    program.display()
                );
                logs.platform(vec![message.clone(), "Runtime.InvalidEntrypoint".into()]);
                return Err((
                    InitFailure::Error(Outcome::platform_error(
                        "Runtime.InvalidEntrypoint",
                        message,
                    )),
                    None,
                ));
            }
        };
        let pgid = child.id() as i32;
        let run_file = ctx.run_dir.join(&id);
        record_run_file(&run_file, pgid);
        let (exit_tx, exited) = watch::channel(None);
        // A small thread per environment waits for its process (a child of another thread
        // when isolated: the sandbox pool's), without holding a blocking-pool thread.
        let waiter = std::thread::Builder::new()
            .name("sous-env-wait".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let text = match child.wait() {
                    Ok(s) => describe_exit(s),
                    Err(e) => format!("wait: {e}"),
                };
                let _ = exit_tx.send(Some(text));
            });
        if let Err(e) = waiter {
            warn!(error = %e, "start the environment's wait thread");
        }

        let mut env = Environment {
            id,
            spec: spec.clone(),
            generation,
            api,
            server,
            forwarders: Some(forwarders),
            pgid,
            exited,
            logs,
            run_file,
            isolated: prepared.is_isolated(),
            sandbox: Some(prepared),
            pending_init_ms: None,
            stopped: false,
        };
        debug!(function = %spec.function_name, env = %env.id, pgid, "environment starting");

        let mut exited = env.exited.clone();
        // Biased to the runtime's report: a runtime that posts /init/error and exits at once
        // has sent the report before it got its 202, so when both are ready, the report wins.
        let result = tokio::select! {
            biased;
            r = init_rx => r.ok(),
            _ = wait_exit(&mut exited) => None,
            _ = tokio::time::sleep(init_limit) => {
                let duration_ms = ms(started.elapsed());
                env.logs.platform(vec![format!(
                    "INIT_REPORT Init Duration: {duration_ms:.2} ms\tPhase: init\tStatus: timeout"
                )]);
                env.stop();
                return Err((InitFailure::Timeout { duration_ms }, Some(env)));
            }
        };
        let duration_ms = ms(started.elapsed());
        match result {
            Some(InitResult::Ready) => {
                // Lambda reports Init Duration on the first invocation of an on-demand
                // environment only: provisioned ones were initialized ahead of traffic.
                env.pending_init_ms =
                    (init_type != "provisioned-concurrency").then_some(duration_ms);
                Ok(env)
            }
            Some(InitResult::Failed { error_type, body }) => {
                let error_type = error_type.unwrap_or_else(|| "Runtime.Unknown".into());
                env.logs.platform(vec![format!(
                    "INIT_REPORT Init Duration: {duration_ms:.2} ms\tPhase: init\tStatus: error\tError Type: {error_type}"
                )]);
                env.stop();
                let outcome = Outcome {
                    body,
                    error_type: Some(error_type),
                    log: None,
                };
                Err((InitFailure::Error(outcome), Some(env)))
            }
            None => {
                let how = env.exit_description();
                let message =
                    format!("RequestId: {request_id} Error: Runtime exited with error: {how}");
                env.logs.platform(vec![
                    message.clone(),
                    "Runtime.ExitError".into(),
                    format!(
                        "INIT_REPORT Init Duration: {duration_ms:.2} ms\tPhase: init\tStatus: error\tError Type: Runtime.ExitError"
                    ),
                ]);
                env.stop();
                Err((
                    InitFailure::Error(Outcome::platform_error("Runtime.ExitError", message)),
                    Some(env),
                ))
            }
        }
    }

    /// Run one invocation. Returns the outcome and whether the environment can be reused.
    pub async fn invoke(&mut self, inv: Invocation) -> Delivery {
        let started = Instant::now();
        let timeout = Duration::from_secs(self.spec.timeout_s.max(1) as u64);
        let deadline_ms = epoch_ms() + timeout.as_millis() as u64;
        let request_id = inv.request_id.clone();
        let settle = inv.settle.clone();
        self.logs
            .begin(vec![format!(
                "START RequestId: {request_id} Version: {}",
                self.spec.version
            )])
            .await;
        let (reply, rx) = oneshot::channel();
        self.api.deliver(PendingEvent {
            request_id: request_id.clone(),
            payload: inv.payload,
            deadline_ms,
            invoked_arn: inv.invoked_arn,
            trace_id: inv.trace_id,
            client_context: inv.client_context,
            cognito_identity: inv.cognito_identity,
            reply,
        });
        let mut exited = self.exited.clone();
        let mut lines = Vec::new();
        let mut status = None;
        // Biased to the runtime's result, as at init: a runtime that posts an error and exits
        // at once is reported by that error, not as a crash.
        let (outcome, alive) = tokio::select! {
            biased;
            r = rx => match r {
                Ok(RuntimeResult::Response(body)) => {
                    (Outcome { body, error_type: None, log: None }, true)
                }
                Ok(RuntimeResult::Error { error_type, body }) => {
                    let error_type = error_type.unwrap_or_else(|| "Runtime.Unknown".into());
                    (Outcome { body, error_type: Some(error_type), log: None }, true)
                }
                Ok(RuntimeResult::ResponseTooLarge) => (
                    Outcome::platform_error(
                        "Function.ResponseSizeTooLarge",
                        format!("Response payload size exceeded maximum allowed payload size ({SYNC_RESPONSE_MAX_BYTES} bytes)."),
                    ),
                    true,
                ),
                Err(_) => self.crashed(&request_id, &mut lines, &mut status).await,
            },
            _ = wait_exit(&mut exited) => {
                // A runtime that exits right after its previous response (an uncaught
                // exception reported, then exit) never took this event: another environment
                // can run it.
                if self.api.withdraw(&request_id) {
                    self.stop();
                    return Delivery::NotDelivered;
                }
                self.crashed(&request_id, &mut lines, &mut status).await
            }
            _ = tokio::time::sleep(timeout) => {
                let secs = self.spec.timeout_s;
                let message = format!("RequestId: {request_id} Error: Task timed out after {secs}.00 seconds");
                lines.push(format!(
                    "{} {request_id} Task timed out after {secs}.00 seconds",
                    timefmt::log_time(time::OffsetDateTime::now_utc())
                ));
                status = Some("timeout");
                (Outcome::platform_error("Sandbox.Timedout", message), false)
            }
        };
        let duration = ms(started.elapsed());
        let max_memory_mb = self.max_memory_mb();
        if !alive {
            self.stop();
        }
        if let Some(settle) = &settle {
            settle.call(&outcome).await;
        }
        lines.push(format!("END RequestId: {request_id}"));
        lines.push(report_line(&Report {
            request_id: &request_id,
            duration_ms: duration,
            memory_mb: self.spec.memory_mb,
            max_memory_mb,
            init_ms: self.pending_init_ms.take(),
            status,
            error_type: outcome.error_type.as_deref(),
        }));
        if !self.isolated {
            lines.push(NOT_ISOLATED.to_string());
        }
        let log = self.logs.finish(lines).await;
        Delivery::Done(
            Outcome {
                log: inv.tail_logs.then_some(log),
                ..outcome
            },
            alive,
        )
    }

    /// Report an invocation that never reached a runtime because init failed: START, END and
    /// REPORT lines (with the error status), returning the log.
    pub async fn report_failed_start(
        &self,
        request_id: &str,
        error_type: &str,
        started: Instant,
    ) -> String {
        self.logs
            .begin(vec![format!(
                "START RequestId: {request_id} Version: {}",
                self.spec.version
            )])
            .await;
        let report = report_line(&Report {
            request_id,
            duration_ms: ms(started.elapsed()),
            memory_mb: self.spec.memory_mb,
            max_memory_mb: 0,
            init_ms: None,
            status: Some("error"),
            error_type: Some(error_type),
        });
        self.logs
            .finish(vec![format!("END RequestId: {request_id}"), report])
            .await
    }

    async fn crashed(
        &mut self,
        request_id: &str,
        lines: &mut Vec<String>,
        status: &mut Option<&'static str>,
    ) -> (Outcome, bool) {
        // The runtime is gone (or its reply channel is); wait briefly for the exit status.
        let mut exited = self.exited.clone();
        let _ = tokio::time::timeout(Duration::from_millis(200), wait_exit(&mut exited)).await;
        let how = self.exit_description();
        let message = format!("RequestId: {request_id} Error: Runtime exited with error: {how}");
        lines.push(message.clone());
        lines.push("Runtime.ExitError".into());
        *status = Some("error");
        (Outcome::platform_error("Runtime.ExitError", message), false)
    }

    /// Max Memory Used: the cgroup's peak when isolated, else the runtime's peak RSS.
    fn max_memory_mb(&self) -> u64 {
        const MIB: u64 = 1024 * 1024;
        match self.sandbox.as_ref().filter(|p| p.is_isolated()) {
            Some(p) => p.peak_memory().map(|b| b.div_ceil(MIB)).unwrap_or(0),
            None => sous_sandbox::process::peak_rss_kib(self.pgid)
                .map(|kib| kib.div_ceil(1024))
                .unwrap_or(0),
        }
    }

    fn exit_description(&self) -> String {
        self.exited
            .borrow()
            .clone()
            .unwrap_or_else(|| "signal: killed".into())
    }

    /// Whether the runtime process is still running.
    pub fn is_alive(&self) -> bool {
        !self.stopped && self.exited.borrow().is_none()
    }

    /// Kill the environment's process group and stop its Runtime API. Idempotent.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if self.pgid > 0 {
            if let Err(e) = sous_sandbox::process::kill_group(self.pgid) {
                warn!(env = %self.id, error = %e, "kill environment process group");
            }
        }
        self.server.abort();
        self.forwarders = None;
        if let Some(prepared) = self.sandbox.take() {
            // Freezing and killing the cgroup, unmounting and removing it take milliseconds
            // (and poll): off the async threads. The SIGKILL above already ends the sandbox
            // init, and with it the environment's PID namespace.
            let id = self.id.clone();
            let destroy = move || {
                if let Err(e) = prepared.kill_all() {
                    warn!(env = %id, error = %e, "kill environment processes");
                }
                if let Err(e) = prepared.destroy() {
                    warn!(error = %e, "destroy environment sandbox");
                }
            };
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    handle.spawn_blocking(destroy);
                }
                Err(_) => destroy(),
            }
        }
        let _ = std::fs::remove_file(&self.run_file);
        debug!(function = %self.spec.function_name, env = %self.id, "environment stopped");
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The line added after REPORT when Sous runs without isolation.
const NOT_ISOLATED: &str =
    "WARNING: this execution environment is not isolated (sous serve --isolation none)";

/// Where the task root and runtime directory appear to the function.
struct InsidePaths {
    task_root: String,
    runtime_dir: String,
}

/// What the sandbox is made of for `spec`.
fn sandbox_spec(spec: &EnvSpec, id: &str) -> EnvSandboxSpec {
    let host_paths = spec
        .launch
        .as_ref()
        .map(|l| l.host_paths())
        .unwrap_or_default();
    let bytes = id.as_bytes();
    EnvSandboxSpec {
        id: id.to_string(),
        memory_mb: spec.memory_mb.max(0) as u64,
        ephemeral_mb: spec.ephemeral_mb.max(0) as u64,
        task_dir: spec.code_dir.clone(),
        runtime_dir: spec.launch.as_ref().map(|l| l.runtime_dir.clone()),
        opt_dir: spec.opt_dir.clone(),
        host_paths,
        // Lambda's execution environments have link-local style hostnames.
        hostname: format!("169.254.{}.{}", bytes[0] % 200 + 1, bytes[1] % 250 + 1),
    }
}

/// A custom runtime's entry point on the host and as the function sees it:
/// `/var/task/bootstrap`, or `/opt/bootstrap` (from a layer) when the function has none, as
/// Lambda looks for them.
fn custom_bootstrap(spec: &EnvSpec) -> (PathBuf, &'static str) {
    let own = spec.code_dir.join("bootstrap");
    match &spec.opt_dir {
        Some(opt) if std::fs::symlink_metadata(&own).is_err() => {
            (opt.join("bootstrap"), "/opt/bootstrap")
        }
        _ => (own, "/var/task/bootstrap"),
    }
}

/// Lambda's entry-point checks for a custom runtime's `bootstrap`.
fn check_bootstrap(bootstrap: &Path, shown: &str, request_id: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(bootstrap) {
        Err(_) => Err(format!(
            "RequestId: {request_id} Error: Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]"
        )),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => Err(format!(
            "RequestId: {request_id} Error: fork/exec {shown}: permission denied"
        )),
        Ok(_) => Ok(()),
    }
}

/// Every variable Lambda sets for a custom runtime, over the function's own.
fn environment_variables(
    spec: &EnvSpec,
    paths: &InsidePaths,
    api_addr: &str,
    stream: &str,
    init_type: &str,
) -> BTreeMap<String, String> {
    let task_root = paths.task_root.clone();
    let runtime_dir = paths.runtime_dir.clone();
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    // Unreserved defaults the function may override.
    vars.insert(
        "PATH".into(),
        "/usr/local/bin:/usr/bin/:/bin:/opt/bin".into(),
    );
    vars.insert("LANG".into(), "en_US.UTF-8".into());
    vars.insert("TZ".into(), ":UTC".into());
    vars.insert(
        "LD_LIBRARY_PATH".into(),
        format!(
            "/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:{task_root}:{task_root}/lib:/opt/lib"
        ),
    );
    vars.extend(spec.variables.iter().map(|(k, v)| (k.clone(), v.clone())));
    // Reserved: always Lambda's values.
    let reserved = [
        ("_HANDLER", spec.handler.clone()),
        ("AWS_REGION", spec.region.clone()),
        ("AWS_DEFAULT_REGION", spec.region.clone()),
        ("AWS_LAMBDA_FUNCTION_NAME", spec.function_name.clone()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            spec.memory_mb.to_string(),
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION", spec.version.clone()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", init_type.to_string()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", spec.log_group.clone()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", stream.to_string()),
        ("AWS_LAMBDA_RUNTIME_API", api_addr.to_string()),
        ("LAMBDA_TASK_ROOT", task_root),
        ("LAMBDA_RUNTIME_DIR", runtime_dir),
    ];
    vars.extend(reserved.into_iter().map(|(k, v)| (k.to_string(), v)));
    vars
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    // Only the read end is non-blocking: the runtime writes with ordinary blocking writes.
    fcntl(&r, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    Ok((r, w))
}

fn record_run_file(path: &Path, pgid: i32) {
    let start = sous_sandbox::process::start_time(pgid).unwrap_or(0);
    if let Err(e) = std::fs::write(path, format!("{pgid} {start}\n")) {
        warn!(path = %path.display(), error = %e, "record environment run file");
    }
}

/// Kill the process groups of environments a previous run of Sous left behind.
pub fn clean_leftovers(run_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(run_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if let Ok(text) = std::fs::read_to_string(&path) {
            let mut it = text.split_whitespace();
            let pgid: Option<i32> = it.next().and_then(|v| v.parse().ok());
            let start: Option<u64> = it.next().and_then(|v| v.parse().ok());
            if let (Some(pgid), Some(start)) = (pgid, start) {
                // Only a process that is still the one we started (same start time).
                if pgid > 0 && sous_sandbox::process::start_time(pgid) == Some(start) {
                    let _ = sous_sandbox::process::kill_group(pgid);
                    tracing::info!(pgid, "killed an environment left by an earlier run");
                }
            }
        }
        let _ = std::fs::remove_file(&path);
    }
}

/// Go-style exit descriptions, as Lambda prints them (`exit status 1`, `signal: killed`).
fn describe_exit(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    match status.signal() {
        Some(9) => "signal: killed".into(),
        Some(15) => "signal: terminated".into(),
        Some(11) => "signal: segmentation fault".into(),
        Some(6) => "signal: aborted".into(),
        Some(2) => "signal: interrupt".into(),
        Some(s) => format!("signal: {s}"),
        None => "exit status unknown".into(),
    }
}

fn service_fault(request_id: &str, e: &std::io::Error) -> Outcome {
    warn!(error = %e, "start execution environment");
    Outcome::platform_error(
        "Runtime.Unknown",
        format!("RequestId: {request_id} Error: could not start the execution environment: {e}"),
    )
}

/// The figures of a REPORT line.
struct Report<'a> {
    request_id: &'a str,
    duration_ms: f64,
    memory_mb: i64,
    max_memory_mb: u64,
    /// Init duration, on the first invocation of an environment only.
    init_ms: Option<f64>,
    /// `timeout` or `error` when the invocation did not complete normally.
    status: Option<&'static str>,
    error_type: Option<&'a str>,
}

/// Lambda's REPORT line: tab-separated figures, `Init Duration` after a cold start, and
/// `Status` (with `Error Type` for errors) when the invocation failed in the platform.
fn report_line(r: &Report<'_>) -> String {
    let mut line = format!(
        "REPORT RequestId: {}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB\t",
        r.request_id,
        r.duration_ms,
        r.duration_ms.ceil() as u64,
        r.memory_mb,
        r.max_memory_mb
    );
    if let Some(init) = r.init_ms {
        line.push_str(&format!("Init Duration: {init:.2} ms\t"));
    }
    if let Some(status) = r.status {
        line.push_str(&format!("Status: {status}"));
        if let Some(t) = r.error_type.filter(|_| status == "error") {
            line.push_str(&format!("\tError Type: {t}"));
        }
    }
    line
}

/// Wait until the runtime process has exited (holding no borrow of the channel afterwards).
async fn wait_exit(rx: &mut watch::Receiver<Option<String>>) {
    let _ = rx.wait_for(Option::is_some).await;
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
