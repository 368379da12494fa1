//! Warm environments per function.
//!
//! An invocation takes an idle environment of the same function revision, or cold-starts a
//! new one; afterwards a healthy environment goes back to the idle list. Retiring a function
//! (code or configuration update, delete) bumps its generation: idle environments are
//! stopped at once and busy ones when their invocation ends.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tracing::info;

use sous_types::limits::INIT_TIMEOUT_MS;

use crate::environment::{self, EnvContext, Environment, InitFailure};
use crate::spec::{EnvSpec, Invocation, Outcome};

/// Server settings of the pool.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub data_dir: PathBuf,
    /// Echo function logs on Sous's stdout.
    pub echo_logs: bool,
}

#[derive(Default)]
struct Inner {
    idle: HashMap<String, Vec<Environment>>,
    generations: HashMap<String, u64>,
    shutting_down: bool,
}

pub struct Pool {
    ctx: EnvContext,
    inner: Mutex<Inner>,
}

impl Pool {
    /// Create the pool, killing whatever environments an earlier run left behind.
    pub fn new(cfg: PoolConfig) -> std::io::Result<Arc<Self>> {
        let ctx = EnvContext {
            logs_dir: cfg.data_dir.join("logs"),
            run_dir: cfg.data_dir.join("run").join("envs"),
            echo_logs: cfg.echo_logs,
        };
        std::fs::create_dir_all(&ctx.logs_dir)?;
        std::fs::create_dir_all(&ctx.run_dir)?;
        environment::clean_leftovers(&ctx.run_dir);
        Ok(Arc::new(Self {
            ctx,
            inner: Mutex::new(Inner::default()),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The directory holding log streams (`<function>/<stream>`).
    pub fn logs_dir(&self) -> &std::path::Path {
        &self.ctx.logs_dir
    }

    /// Run one invocation of `spec`, in a warm environment when one is idle.
    pub async fn invoke(&self, spec: Arc<EnvSpec>, inv: Invocation) -> Outcome {
        let started = Instant::now();
        let (warm, generation) = self.take_idle(&spec);
        let mut env = match warm {
            Some(env) => env,
            None => match self.cold_start(&spec, generation, &inv, started).await {
                Ok(env) => env,
                Err(outcome) => return outcome,
            },
        };
        let (outcome, alive) = env.invoke(inv).await;
        if alive {
            let mut inner = self.lock();
            let current = inner
                .generations
                .get(&spec.function_name)
                .copied()
                .unwrap_or(0);
            if !inner.shutting_down && current == env.generation && env.is_alive() {
                inner
                    .idle
                    .entry(spec.function_name.clone())
                    .or_default()
                    .push(env);
            }
        }
        outcome
    }

    fn take_idle(&self, spec: &EnvSpec) -> (Option<Environment>, u64) {
        let mut inner = self.lock();
        let generation = inner
            .generations
            .get(&spec.function_name)
            .copied()
            .unwrap_or(0);
        let mut stale = Vec::new();
        let mut found = None;
        if let Some(list) = inner.idle.get_mut(&spec.function_name) {
            // Drop what can never be used again (retired, dead, or an older revision of this
            // version); keep the warm environments of other versions.
            let (keep, gone): (Vec<_>, Vec<_>) =
                std::mem::take(list).into_iter().partition(|env| {
                    env.generation == generation
                        && env.is_alive()
                        && (env.spec.version != spec.version
                            || env.spec.revision_id == spec.revision_id)
                });
            *list = keep;
            stale = gone;
            if let Some(i) = list
                .iter()
                .rposition(|env| env.spec.version == spec.version)
            {
                found = Some(list.remove(i));
            }
        }
        drop(inner);
        drop(stale); // stopping happens outside the lock
        (found, generation)
    }

    /// Start an environment: the init phase is bounded by 10 s; when it times out Lambda
    /// retries init once inside the invocation, bounded by the function timeout.
    async fn cold_start(
        &self,
        spec: &Arc<EnvSpec>,
        generation: u64,
        inv: &Invocation,
        started: Instant,
    ) -> Result<Environment, Outcome> {
        let limits = [
            Duration::from_millis(INIT_TIMEOUT_MS),
            Duration::from_secs(spec.timeout_s.max(1) as u64),
        ];
        let mut last_env = None;
        for limit in limits {
            match Environment::start(
                spec.clone(),
                &self.ctx,
                generation,
                &inv.request_id,
                limit,
                "on-demand",
            )
            .await
            {
                Ok(env) => return Ok(env),
                Err((InitFailure::Timeout { .. }, env)) => last_env = env,
                Err((InitFailure::Error(outcome), env)) => {
                    return Err(failed_start(env, inv, outcome, started).await);
                }
            }
        }
        let secs = spec.timeout_s;
        let outcome = Outcome::platform_error(
            "Sandbox.Timedout",
            format!(
                "RequestId: {} Error: Task timed out after {secs}.00 seconds",
                inv.request_id
            ),
        );
        Err(failed_start(last_env, inv, outcome, started).await)
    }

    /// Stop every environment of `function`: idle ones now, busy ones when they finish.
    pub fn retire(&self, function: &str) {
        let stale = {
            let mut inner = self.lock();
            *inner.generations.entry(function.to_string()).or_default() += 1;
            inner.idle.remove(function)
        };
        drop(stale);
    }

    /// Stop all environments, idle and busy. Invocations in flight end with Runtime.ExitError.
    pub fn shutdown(&self) {
        let idle = {
            let mut inner = self.lock();
            inner.shutting_down = true;
            std::mem::take(&mut inner.idle)
        };
        let count: usize = idle.values().map(Vec::len).sum();
        drop(idle);
        // Busy environments are found through their run files.
        environment::clean_leftovers(&self.ctx.run_dir);
        info!(idle = count, "execution environments stopped");
    }
}

/// The outcome of an invocation whose environment never became ready: START, END and REPORT
/// (with the error status) go to the environment's log stream, whose tail is returned when
/// asked.
async fn failed_start(
    env: Option<Environment>,
    inv: &Invocation,
    outcome: Outcome,
    started: Instant,
) -> Outcome {
    let error_type = outcome.error_type.clone().unwrap_or_default();
    let log = match &env {
        Some(env) => Some(
            env.report_failed_start(&inv.request_id, &error_type, started)
                .await,
        ),
        None => None,
    };
    Outcome {
        log: log.filter(|_| inv.tail_logs),
        ..outcome
    }
}
