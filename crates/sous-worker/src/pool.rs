//! Environments per function: warm reuse, scale-out, scale-down, provisioned concurrency.
//!
//! An invocation takes, in this order: an idle provisioned environment of its version (no
//! admission needed: that capacity is allocated already); else, once admitted as on-demand
//! under the concurrency limits ([`crate::admission`]), an idle on-demand environment of its
//! version and revision; else a new environment, if its memory fits the host's budget (idle
//! environments of any function are stopped, least recently used first, to make room). So N
//! concurrent invocations run in N environments, up to the limits; beyond them the invocation
//! is refused with a [`Refusal`] and nothing starts.
//!
//! A background task stops on-demand environments idle longer than the idle timeout (down to
//! zero) and keeps provisioned concurrency allocated: it starts the missing environments of
//! every configuration (init type `provisioned-concurrency`), replaces ones that died, and
//! stops ones no configuration wants any more.
//!
//! Retiring bumps a generation, per function (delete) or per version (an update of `$LATEST`,
//! a version deleted): idle environments of what was retired are stopped at once and busy ones
//! when their invocation ends; other versions, and their provisioned environments, go on.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use sous_types::concurrency::ProvisionedStatus;
use sous_types::limits::INIT_TIMEOUT_MS;

use crate::admission::{
    self, EnvLease, EnvState, Ledger, MemoryBudget, Refusal, SharedLedger, Ticket,
};
use crate::environment::{Delivery, EnvContext, EnvHandle, InitFailure, Launcher};
use crate::spec::{EnvSpec, Invocation, Outcome};

/// `AWS_LAMBDA_INITIALIZATION_TYPE` of environments started for an invocation.
const ON_DEMAND: &str = "on-demand";
/// `AWS_LAMBDA_INITIALIZATION_TYPE` of environments started ahead of traffic.
const PROVISIONED: &str = "provisioned-concurrency";
/// How often the background task looks for idle environments and missing provisioned ones.
const TICK: Duration = Duration::from_millis(250);

/// Server settings of the pool.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub data_dir: PathBuf,
    /// Echo function logs on Sous's stdout.
    pub echo_logs: bool,
    /// Stop on-demand environments idle for longer than this.
    pub idle_timeout: Duration,
    /// The account's concurrency limit (`ConcurrentExecutions`).
    pub account_concurrency: u64,
    /// What environments' configured memory may add up to.
    pub memory: MemoryBudget,
    /// Isolation of every environment (`sous-sandbox`).
    pub sandbox: Arc<sous_sandbox::Sandbox>,
    /// `--service-endpoint`s and functions' credentials (`services.rs`). The sandbox must
    /// listen on its [`crate::services::ServiceAccess::listen_addrs`].
    pub services: Arc<crate::services::ServiceAccess>,
}

impl PoolConfig {
    /// Lambda's defaults (account limit 1000, 300 s idle timeout) and an effectively
    /// unlimited memory budget: for tests and embedding.
    pub fn new(data_dir: PathBuf, echo_logs: bool) -> Self {
        let data_dir_for_sandbox = data_dir.clone();
        Self {
            data_dir,
            echo_logs,
            idle_timeout: Duration::from_secs(sous_types::limits::IDLE_TIMEOUT_DEFAULT_S),
            account_concurrency: sous_types::limits::ACCOUNT_CONCURRENCY,
            memory: MemoryBudget {
                host_mb: u64::MAX / 2,
                headroom_mb: 0,
            },
            sandbox: Arc::new(unisolated_sandbox(&data_dir_for_sandbox)),
            services: Arc::default(),
        }
    }
}

/// A provisioned concurrency configuration, keyed by function and qualifier (version or
/// alias), running the version the qualifier named when it was (re)configured.
type TargetKey = (String, String);

struct Target {
    spec: Arc<EnvSpec>,
    requested: u64,
    /// Environments being started for it.
    starting: u64,
    /// Why init failed (the configuration is then FAILED and nothing more is started).
    failed: Option<String>,
    /// Bumped on every reconfiguration: environments of an older epoch are not its own.
    epoch: u64,
}

/// A live environment and what it holds.
struct Slot<E> {
    env: E,
    lease: EnvLease,
    last_used: Instant,
    /// The provisioned configuration (and its epoch) this environment belongs to.
    provisioned: Option<(TargetKey, u64)>,
}

struct Inner<E> {
    idle: HashMap<String, Vec<Slot<E>>>,
    function_generations: HashMap<String, u64>,
    version_generations: HashMap<(String, String), u64>,
    targets: BTreeMap<TargetKey, Target>,
    /// Live provisioned environments per configuration and epoch (idle and busy).
    allocated: HashMap<(TargetKey, u64), u64>,
    next_epoch: u64,
    shutting_down: bool,
}

impl<E> Default for Inner<E> {
    fn default() -> Self {
        Self {
            idle: HashMap::new(),
            function_generations: HashMap::new(),
            version_generations: HashMap::new(),
            targets: BTreeMap::new(),
            allocated: HashMap::new(),
            next_epoch: 0,
            shutting_down: false,
        }
    }
}

impl<E: EnvHandle> Inner<E> {
    fn generation(&self, function: &str, version: &str) -> u64 {
        self.function_generations
            .get(function)
            .copied()
            .unwrap_or(0)
            + self
                .version_generations
                .get(&(function.to_string(), version.to_string()))
                .copied()
                .unwrap_or(0)
    }

    /// Whether an environment of `target` (at `epoch`) still belongs to it.
    fn current_target(&self, target: &(TargetKey, u64)) -> bool {
        self.targets
            .get(&target.0)
            .is_some_and(|t| t.epoch == target.1)
    }

    /// Whether an idle slot may ever serve again.
    fn usable(&self, slot: &Slot<E>) -> bool {
        slot.env.is_alive()
            && slot.env.generation()
                == self.generation(&slot.env.spec().function_name, &slot.env.spec().version)
            && slot
                .provisioned
                .as_ref()
                .is_none_or(|t| self.current_target(t))
    }

    fn provisioned_total(&self, function: &str) -> u64 {
        self.targets
            .iter()
            .filter(|((f, _), _)| f == function)
            .map(|(_, t)| t.requested)
            .sum()
    }
}

/// What the pool reads the time from for its idle bookkeeping (injected by tests).
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// The pool's limits.
#[derive(Debug, Clone, Copy)]
pub struct PoolLimits {
    /// Stop on-demand environments idle for longer than this.
    pub idle_timeout: Duration,
    /// The account's concurrency limit (`ConcurrentExecutions`).
    pub account_concurrency: u64,
    /// What environments' configured memory may add up to.
    pub memory: MemoryBudget,
}

/// The environments of every function, started through `L` (the real [`EnvContext`] unless a
/// test gives a fake).
pub struct Pool<L: Launcher = EnvContext> {
    launcher: L,
    clock: Clock,
    inner: Mutex<Inner<L::Env>>,
    ledger: SharedLedger,
    idle_timeout: Duration,
    wake: Notify,
}

/// How an invocation gets its environment.
enum Claim<E> {
    Warm(Box<Slot<E>>, Ticket),
    Cold(EnvLease, Ticket, u64),
}

impl Pool {
    /// Create the pool, killing whatever environments an earlier run left behind, and start
    /// its background task (when called inside a Tokio runtime).
    pub fn new(cfg: PoolConfig) -> std::io::Result<Arc<Self>> {
        let ctx = EnvContext {
            logs_dir: cfg.data_dir.join("logs"),
            run_dir: cfg.data_dir.join("run").join("envs"),
            echo_logs: cfg.echo_logs,
            sandbox: cfg.sandbox.clone(),
            services: cfg.services.clone(),
        };
        std::fs::create_dir_all(&ctx.logs_dir)?;
        std::fs::create_dir_all(&ctx.run_dir)?;
        let limits = PoolLimits {
            idle_timeout: cfg.idle_timeout,
            account_concurrency: cfg.account_concurrency,
            memory: cfg.memory,
        };
        Ok(Self::with_launcher(ctx, limits, Arc::new(Instant::now)))
    }

    /// The directory holding log streams (`<function>/<stream>`).
    pub fn logs_dir(&self) -> &std::path::Path {
        &self.launcher.logs_dir
    }
}

impl<L: Launcher> Pool<L> {
    /// A pool starting its environments through `launcher`, reading the time for its idle
    /// bookkeeping from `clock`: kills what the launcher reports left behind, and starts the
    /// background task (when called inside a Tokio runtime).
    pub fn with_launcher(launcher: L, limits: PoolLimits, clock: Clock) -> Arc<Self> {
        let pool = Self::without_background(launcher, limits, clock);
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(background(Arc::downgrade(&pool)));
        }
        pool
    }

    /// [`Pool::with_launcher`] without the background task (tests drive [`Pool::reap`] and
    /// [`Pool::reconcile`] themselves).
    fn without_background(launcher: L, limits: PoolLimits, clock: Clock) -> Arc<Self> {
        launcher.clean_leftovers();
        Arc::new(Self {
            launcher,
            clock,
            inner: Mutex::new(Inner::default()),
            ledger: Arc::new(Mutex::new(Ledger::new(
                limits.account_concurrency,
                limits.memory,
            ))),
            idle_timeout: limits.idle_timeout,
            wake: Notify::new(),
        })
    }

    fn now(&self) -> Instant {
        (self.clock)()
    }

    fn lock(&self) -> MutexGuard<'_, Inner<L::Env>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run one invocation of `spec`, or refuse it when it cannot be admitted now.
    pub async fn invoke(&self, spec: Arc<EnvSpec>, inv: Invocation) -> Result<Outcome, Refusal> {
        let started = Instant::now();
        // An environment whose runtime was already exiting never takes the event; the
        // invocation then goes to another one (a bounded number of times).
        for _ in 0..3 {
            if let Some(outcome) = self.try_invoke(&spec, &inv, started).await? {
                return Ok(outcome);
            }
        }
        Ok(Outcome::platform_error(
            "Runtime.ExitError",
            format!(
                "RequestId: {} Error: Runtime exited before it took the event",
                inv.request_id
            ),
        ))
    }

    /// One attempt of [`Pool::invoke`]; `None` when the environment's runtime exited before
    /// it took the event.
    async fn try_invoke(
        &self,
        spec: &Arc<EnvSpec>,
        inv: &Invocation,
        started: Instant,
    ) -> Result<Option<Outcome>, Refusal> {
        let spec = spec.clone();
        let inv = inv.clone();
        let (mut slot, ticket) = match self.claim(&spec)? {
            Claim::Warm(slot, ticket) => (*slot, ticket),
            Claim::Cold(lease, ticket, generation) => {
                match cold_start(&self.launcher, &spec, generation, &inv, started).await {
                    Ok(env) => {
                        lease.set_environment_id(env.id());
                        lease.set_state(EnvState::Busy);
                        let slot = Slot {
                            env,
                            lease,
                            last_used: self.now(),
                            provisioned: None,
                        };
                        (slot, ticket)
                    }
                    Err(outcome) => return Ok(Some(outcome)),
                }
            }
        };
        match slot.env.invoke(inv).await {
            Delivery::Done(outcome, alive) => {
                drop(ticket);
                self.give_back(slot, alive);
                Ok(Some(outcome))
            }
            Delivery::NotDelivered => {
                drop(ticket);
                self.give_back(slot, false);
                Ok(None)
            }
        }
    }

    /// Pick or reserve an environment for one invocation of `spec`.
    fn claim(&self, spec: &EnvSpec) -> Result<Claim<L::Env>, Refusal> {
        let mut inner = self.lock();
        let generation = inner.generation(&spec.function_name, &spec.version);
        let mut stale = Vec::new();
        let mut list = inner.idle.remove(&spec.function_name).unwrap_or_default();
        // Drop what can never serve again (retired, dead, older revision of this version,
        // provisioned for a configuration that changed).
        let (keep, gone): (Vec<_>, Vec<_>) = list.drain(..).partition(|s| {
            inner.usable(s)
                && (s.env.spec().version != spec.version
                    || s.env.spec().revision_id == spec.revision_id)
        });
        list = keep;
        for s in &gone {
            if let Some(t) = &s.provisioned {
                release_allocation(&mut inner, t);
            }
        }
        stale.extend(gone);
        let same_version = |s: &Slot<L::Env>, provisioned: bool| {
            s.env.spec().version == spec.version && s.provisioned.is_some() == provisioned
        };
        let claim = if let Some(i) = list.iter().rposition(|s| same_version(s, true)) {
            let slot = list.remove(i);
            Ok(Claim::Warm(
                Box::new(slot),
                Ticket::provisioned(&self.ledger, &spec.function_name),
            ))
        } else {
            match Ticket::on_demand(&self.ledger, &spec.function_name) {
                Err(reason) => Err(Refusal::Concurrency(reason)),
                Ok(ticket) => {
                    if let Some(i) = list.iter().rposition(|s| same_version(s, false)) {
                        Ok(Claim::Warm(Box::new(list.remove(i)), ticket))
                    } else {
                        inner
                            .idle
                            .insert(spec.function_name.clone(), std::mem::take(&mut list));
                        match self.reserve_memory(&mut inner, spec, None, &mut stale) {
                            Some(lease) => Ok(Claim::Cold(lease, ticket, generation)),
                            None => Err(Refusal::Memory),
                        }
                    }
                }
            }
        };
        if !list.is_empty() {
            inner
                .idle
                .entry(spec.function_name.clone())
                .or_default()
                .extend(list);
        }
        drop(inner);
        if let Ok(Claim::Warm(slot, _)) = &claim {
            slot.lease.set_state(EnvState::Busy);
        }
        drop(stale); // stopping happens outside the lock
        claim
    }

    /// Reserve memory for a new environment of `spec`, stopping idle on-demand environments
    /// (least recently used first, any function) when that makes it fit. The stopped ones go
    /// to `stale`, to be dropped outside the lock.
    fn reserve_memory(
        &self,
        inner: &mut Inner<L::Env>,
        spec: &EnvSpec,
        provisioned_for: Option<String>,
        stale: &mut Vec<Slot<L::Env>>,
    ) -> Option<EnvLease> {
        let mb = u64::try_from(spec.memory_mb).unwrap_or(0);
        loop {
            if let Some(lease) = EnvLease::reserve(
                &self.ledger,
                &spec.function_name,
                &spec.version,
                mb,
                provisioned_for.clone(),
            ) {
                return Some(lease);
            }
            // The least recently used idle on-demand environment, anywhere.
            let victim = inner
                .idle
                .iter()
                .flat_map(|(f, list)| {
                    list.iter()
                        .enumerate()
                        .filter(|(_, s)| s.provisioned.is_none())
                        .map(move |(i, s)| (s.last_used, f.clone(), i))
                })
                .min();
            let (_, function, i) = victim?;
            let list = inner.idle.get_mut(&function)?;
            let mut slot = list.remove(i);
            slot.lease.release();
            debug!(function = %function, env = %slot.env.id(), "stopping an idle environment to make room");
            stale.push(slot);
        }
    }

    /// After an invocation: a healthy environment that still belongs goes back to the idle
    /// list, any other is stopped.
    fn give_back(&self, slot: Slot<L::Env>, alive: bool) {
        let mut inner = self.lock();
        let keep = alive && !inner.shutting_down && inner.usable(&slot);
        if keep {
            let mut slot = slot;
            slot.last_used = self.now();
            slot.lease.set_state(EnvState::Idle);
            inner
                .idle
                .entry(slot.env.spec().function_name.clone())
                .or_default()
                .push(slot);
            return;
        }
        if let Some(t) = &slot.provisioned {
            release_allocation(&mut inner, t);
            self.wake.notify_one();
        }
        drop(inner);
        drop(slot);
    }

    /// Stop every environment of `function`: idle ones now, busy ones when they finish.
    pub fn retire(&self, function: &str) {
        let stale = {
            let mut inner = self.lock();
            *inner
                .function_generations
                .entry(function.to_string())
                .or_default() += 1;
            let stale = inner.idle.remove(function);
            for s in stale.iter().flatten() {
                if let Some(t) = &s.provisioned {
                    release_allocation(&mut inner, t);
                }
            }
            stale
        };
        drop(stale);
        self.wake.notify_one();
    }

    /// Stop the environments of one version of `function` (idle now, busy when they finish);
    /// the other versions keep theirs.
    pub fn retire_version(&self, function: &str, version: &str) {
        let stale = {
            let mut inner = self.lock();
            *inner
                .version_generations
                .entry((function.to_string(), version.to_string()))
                .or_default() += 1;
            let mut stale = Vec::new();
            if let Some(list) = inner.idle.get_mut(function) {
                let (keep, gone): (Vec<_>, Vec<_>) = list
                    .drain(..)
                    .partition(|s| s.env.spec().version != version);
                *list = keep;
                stale = gone;
            }
            for s in &stale {
                if let Some(t) = &s.provisioned {
                    release_allocation(&mut inner, t);
                }
            }
            stale
        };
        drop(stale);
        self.wake.notify_one();
    }

    /// Set a function's reserved concurrency (`None` = unreserved).
    pub fn set_reserved(&self, function: &str, value: Option<u64>) {
        admission::lock(&self.ledger).set_reserved(function, value);
    }

    /// Keep `requested` environments of `spec` initialized for the provisioned concurrency
    /// configuration `qualifier` of `function`. A configuration that now runs another
    /// version or revision, or that had failed, starts over.
    pub fn provision(&self, function: &str, qualifier: &str, spec: Arc<EnvSpec>, requested: u64) {
        let mut inner = self.lock();
        let key = (function.to_string(), qualifier.to_string());
        let same = inner.targets.get(&key).is_some_and(|t| {
            t.spec.version == spec.version
                && t.spec.revision_id == spec.revision_id
                && t.failed.is_none()
        });
        if same {
            if let Some(t) = inner.targets.get_mut(&key) {
                t.requested = requested;
            }
        } else {
            inner.next_epoch += 1;
            let epoch = inner.next_epoch;
            inner.targets.insert(
                key,
                Target {
                    spec,
                    requested,
                    starting: 0,
                    failed: None,
                    epoch,
                },
            );
        }
        let total = inner.provisioned_total(function);
        admission::lock(&self.ledger).set_provisioned(function, total);
        drop(inner);
        self.wake.notify_one();
    }

    /// Forget a provisioned concurrency configuration; its environments are stopped.
    pub fn unprovision(&self, function: &str, qualifier: &str) {
        let mut inner = self.lock();
        inner
            .targets
            .remove(&(function.to_string(), qualifier.to_string()));
        let total = inner.provisioned_total(function);
        admission::lock(&self.ledger).set_provisioned(function, total);
        drop(inner);
        self.wake.notify_one();
    }

    /// Forget everything about a deleted function: its configurations, its reservation, its
    /// environments.
    pub fn forget_function(&self, function: &str) {
        {
            let mut inner = self.lock();
            inner.targets.retain(|(f, _), _| f != function);
            let mut l = admission::lock(&self.ledger);
            l.set_provisioned(function, 0);
            l.set_reserved(function, None);
        }
        self.retire(function);
    }

    /// The live state of a provisioned concurrency configuration: (allocated, status,
    /// status reason); `None` when the pool has no such configuration.
    pub fn provisioned_state(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Option<(u64, ProvisionedStatus, Option<String>)> {
        let inner = self.lock();
        let key = (function.to_string(), qualifier.to_string());
        let t = inner.targets.get(&key)?;
        let allocated = inner.allocated.get(&(key, t.epoch)).copied().unwrap_or(0);
        let status = if t.failed.is_some() {
            ProvisionedStatus::Failed
        } else if allocated >= t.requested {
            ProvisionedStatus::Ready
        } else {
            ProvisionedStatus::InProgress
        };
        Some((allocated.min(t.requested), status, t.failed.clone()))
    }

    /// Concurrency and memory figures for GetAccountSettings: (account limit, unreserved
    /// concurrency (the limit less reservations), memory budget, memory reserved by live
    /// environments).
    pub fn capacity(&self) -> (u64, u64, MemoryBudget, u64) {
        let l = admission::lock(&self.ledger);
        (
            l.account_limit(),
            l.unreserved_setting(),
            l.memory(),
            l.memory_used_mb(),
        )
    }

    /// Everything the status endpoint shows: memory, concurrency, and environments per
    /// function and version with their state.
    pub fn status(&self) -> serde_json::Value {
        let configurations: Vec<serde_json::Value> = {
            let inner = self.lock();
            inner
                .targets
                .iter()
                .map(|((f, q), t)| {
                    let allocated = inner
                        .allocated
                        .get(&((f.clone(), q.clone()), t.epoch))
                        .copied()
                        .unwrap_or(0);
                    json!({
                        "Function": f, "Qualifier": q, "Version": t.spec.version,
                        "Requested": t.requested, "Allocated": allocated,
                        "Starting": t.starting, "Failed": t.failed,
                    })
                })
                .collect()
        };
        let l = admission::lock(&self.ledger);
        let memory = l.memory();
        let mut functions = serde_json::Map::new();
        for f in l.functions() {
            let mut versions: BTreeMap<String, BTreeMap<&'static str, u64>> = BTreeMap::new();
            for e in l.environments().filter(|e| e.function == f) {
                let counts = versions.entry(e.version.clone()).or_default();
                let state = match e.state {
                    EnvState::Starting => "Starting",
                    EnvState::Idle => "Idle",
                    EnvState::Busy => "Busy",
                };
                *counts.entry(state).or_default() += 1;
                if e.provisioned_for.is_some() {
                    *counts.entry("Provisioned").or_default() += 1;
                }
            }
            functions.insert(
                f.clone(),
                json!({
                    "InFlight": l.in_flight(&f),
                    "OnDemandInFlight": l.on_demand_in_flight(&f),
                    "ReservedConcurrentExecutions": l.reserved(&f),
                    "ProvisionedConcurrentExecutions": l.provisioned(&f),
                    "Versions": versions,
                }),
            );
        }
        let environments: Vec<&admission::EnvRecord> = l.environments().collect();
        json!({
            "Memory": {
                "HostMB": memory.host_mb,
                "HeadroomMB": memory.headroom_mb,
                "CapacityMB": memory.capacity_mb(),
                "ReservedMB": l.memory_used_mb(),
                "AvailableMB": memory.capacity_mb().saturating_sub(l.memory_used_mb()),
            },
            "Concurrency": {
                "ConcurrentExecutions": l.account_limit(),
                "UnreservedConcurrentExecutions": l.unreserved_setting(),
                "OnDemandPool": l.unreserved_pool(),
                "InFlight": l.functions().iter().map(|f| l.in_flight(f)).sum::<u64>(),
            },
            "IdleTimeoutSeconds": self.idle_timeout.as_secs_f64(),
            "Functions": functions,
            "ProvisionedConcurrency": configurations,
            "Environments": environments,
        })
    }

    /// Stop on-demand environments idle for longer than the idle timeout, and provisioned
    /// ones no configuration wants.
    fn reap(&self) {
        let now = self.now();
        let stale = {
            let mut inner = self.lock();
            let mut stale = Vec::new();
            let functions: Vec<String> = inner.idle.keys().cloned().collect();
            for f in functions {
                let list = inner.idle.remove(&f).unwrap_or_default();
                let mut keep = Vec::new();
                for s in list {
                    let expired = s.provisioned.is_none()
                        && now.saturating_duration_since(s.last_used) >= self.idle_timeout;
                    if expired || !inner.usable(&s) {
                        stale.push(s);
                    } else {
                        keep.push(s);
                    }
                }
                if !keep.is_empty() {
                    inner.idle.insert(f, keep);
                }
            }
            // Provisioned environments above what their configuration requests.
            let mut over: HashMap<(TargetKey, u64), u64> = HashMap::new();
            for (key, t) in &inner.targets {
                let k = (key.clone(), t.epoch);
                let n = inner.allocated.get(&k).copied().unwrap_or(0);
                if n > t.requested {
                    over.insert(k, n - t.requested);
                }
            }
            for list in inner.idle.values_mut() {
                let mut i = 0;
                while i < list.len() {
                    let excess = list[i]
                        .provisioned
                        .as_ref()
                        .and_then(|t| over.get_mut(t))
                        .filter(|n| **n > 0);
                    if let Some(n) = excess {
                        *n -= 1;
                        stale.push(list.remove(i));
                    } else {
                        i += 1;
                    }
                }
            }
            for s in &stale {
                if let Some(t) = &s.provisioned {
                    release_allocation(&mut inner, t);
                }
            }
            inner.idle.retain(|_, l| !l.is_empty());
            stale
        };
        if !stale.is_empty() {
            debug!(count = stale.len(), "stopping idle environments");
        }
        drop(stale);
    }

    /// Start the environments provisioned concurrency configurations lack.
    fn reconcile(self: &Arc<Self>) {
        let mut inner = self.lock();
        if inner.shutting_down {
            return;
        }
        let mut stale = Vec::new();
        let mut starts = Vec::new();
        let keys: Vec<TargetKey> = inner.targets.keys().cloned().collect();
        for key in keys {
            let (spec, epoch, missing) = {
                let Some(t) = inner.targets.get(&key) else {
                    continue;
                };
                if t.failed.is_some() {
                    continue;
                }
                let allocated = inner
                    .allocated
                    .get(&(key.clone(), t.epoch))
                    .copied()
                    .unwrap_or(0);
                (
                    t.spec.clone(),
                    t.epoch,
                    t.requested.saturating_sub(allocated + t.starting),
                )
            };
            for _ in 0..missing {
                let Some(lease) =
                    self.reserve_memory(&mut inner, &spec, Some(key.1.clone()), &mut stale)
                else {
                    debug!(function = %key.0, qualifier = %key.1, "no memory for provisioned concurrency yet");
                    break;
                };
                if let Some(t) = inner.targets.get_mut(&key) {
                    t.starting += 1;
                }
                let generation = inner.generation(&spec.function_name, &spec.version);
                starts.push((key.clone(), epoch, spec.clone(), lease, generation));
            }
        }
        drop(inner);
        drop(stale);
        for (key, epoch, spec, lease, generation) in starts {
            let pool = self.clone();
            tokio::spawn(async move {
                pool.start_provisioned(key, epoch, spec, lease, generation)
                    .await
            });
        }
    }

    async fn start_provisioned(
        self: Arc<Self>,
        key: TargetKey,
        epoch: u64,
        spec: Arc<EnvSpec>,
        lease: EnvLease,
        generation: u64,
    ) {
        let request_id = uuid::Uuid::new_v4().to_string();
        let limit = Duration::from_millis(INIT_TIMEOUT_MS)
            .max(Duration::from_secs(spec.timeout_s.max(1) as u64));
        let started = self
            .launcher
            .start(spec.clone(), generation, &request_id, limit, PROVISIONED)
            .await;
        let mut inner = self.lock();
        let current = inner.targets.get(&key).is_some_and(|t| t.epoch == epoch);
        if current {
            if let Some(t) = inner.targets.get_mut(&key) {
                t.starting = t.starting.saturating_sub(1);
            }
        }
        match started {
            Ok(env) if current && !inner.shutting_down => {
                lease.set_environment_id(env.id());
                lease.set_state(EnvState::Idle);
                *inner.allocated.entry((key.clone(), epoch)).or_default() += 1;
                info!(function = %key.0, qualifier = %key.1, env = %env.id(), "provisioned environment ready");
                inner.idle.entry(key.0.clone()).or_default().push(Slot {
                    env,
                    lease,
                    last_used: self.now(),
                    provisioned: Some((key, epoch)),
                });
            }
            Ok(env) => {
                drop(inner);
                drop(env);
            }
            Err((failure, env)) => {
                let reason = match failure {
                    InitFailure::Timeout { .. } | InitFailure::Error(_) => {
                        "FUNCTION_ERROR_INIT_FAILURE"
                    }
                };
                if current {
                    if let Some(t) = inner.targets.get_mut(&key) {
                        t.failed = Some(reason.to_string());
                    }
                }
                drop(inner);
                warn!(function = %key.0, qualifier = %key.1, "provisioned concurrency: init failed");
                drop(env);
            }
        }
    }

    /// Stop all environments, idle and busy. Invocations in flight end with Runtime.ExitError.
    pub fn shutdown(&self) {
        let idle = {
            let mut inner = self.lock();
            inner.shutting_down = true;
            inner.targets.clear();
            std::mem::take(&mut inner.idle)
        };
        let count: usize = idle.values().map(Vec::len).sum();
        drop(idle);
        // Busy environments are found through their run files.
        self.launcher.clean_leftovers();
        info!(idle = count, "execution environments stopped");
    }
}

fn release_allocation<E>(inner: &mut Inner<E>, target: &(TargetKey, u64)) {
    if let Some(n) = inner.allocated.get_mut(target) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            inner.allocated.remove(target);
        }
    }
}

/// The pool's background task: reap idle environments and keep provisioned concurrency
/// allocated, until the pool is dropped.
async fn background<L: Launcher>(pool: Weak<Pool<L>>) {
    loop {
        let Some(p) = pool.upgrade() else { return };
        p.reap();
        p.reconcile();
        let wake = async {
            tokio::select! {
                _ = p.wake.notified() => {}
                _ = tokio::time::sleep(TICK) => {}
            }
        };
        wake.await;
    }
}

/// Start an environment for an invocation: the init phase is bounded by 10 s; when it times
/// out Lambda retries init once inside the invocation, bounded by the function timeout.
async fn cold_start<L: Launcher>(
    launcher: &L,
    spec: &Arc<EnvSpec>,
    generation: u64,
    inv: &Invocation,
    started: Instant,
) -> Result<L::Env, Outcome> {
    let limits = [
        Duration::from_millis(INIT_TIMEOUT_MS),
        Duration::from_secs(spec.timeout_s.max(1) as u64),
    ];
    let mut last_env = None;
    for limit in limits {
        match launcher
            .start(spec.clone(), generation, &inv.request_id, limit, ON_DEMAND)
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

/// The outcome of an invocation whose environment never became ready: START, END and REPORT
/// (with the error status) go to the environment's log stream, whose tail is returned when
/// asked.
async fn failed_start<E: EnvHandle>(
    env: Option<E>,
    inv: &Invocation,
    outcome: Outcome,
    started: Instant,
) -> Outcome {
    let error_type = outcome.error_type.clone().unwrap_or_default();
    if let Some(settle) = &inv.settle {
        settle.call(&outcome).await;
    }
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

/// A sandbox manager that isolates nothing (`Isolation::None` checks and prepares nothing
/// that can fail), for `PoolConfig::new`'s embedding and test defaults.
fn unisolated_sandbox(data_dir: &std::path::Path) -> sous_sandbox::Sandbox {
    let cfg = sous_sandbox::SandboxConfig {
        isolation: sous_sandbox::Isolation::None,
        ..sous_sandbox::SandboxConfig::new(data_dir.join("sandbox"))
    };
    sous_sandbox::Sandbox::new(cfg).expect("a sandbox without isolation needs nothing of the host")
}

#[cfg(test)]
mod tests {
    //! The pool's policy against a fake environment: no processes, no root, no sleeps (the
    //! idle clock is injected, the background task is driven by hand).

    use std::collections::HashSet;
    use std::sync::atomic::{AtomicBool, Ordering};

    use bytes::Bytes;
    use tokio::sync::Semaphore;

    use super::*;

    /// What the fake environments did, shared by the launcher and its environments.
    #[derive(Default)]
    struct Record {
        next: u64,
        /// (environment id, init type) in start order.
        started: Vec<(String, &'static str)>,
        stopped: Vec<String>,
        /// Invocations waiting in an environment (taken, not finished).
        waiting: usize,
        /// Environments whose runtime exits before taking their next event.
        doomed: HashSet<String>,
    }

    #[derive(Clone)]
    struct Fake {
        rec: Arc<Mutex<Record>>,
        /// Invocations hold a permit while they run: zero permits keeps them busy.
        gate: Arc<Semaphore>,
    }

    impl Fake {
        fn new() -> Self {
            Self {
                rec: Arc::default(),
                gate: Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)),
            }
        }

        fn rec(&self) -> MutexGuard<'_, Record> {
            self.rec.lock().unwrap()
        }

        fn started(&self) -> Vec<String> {
            self.rec()
                .started
                .iter()
                .map(|(id, _)| id.clone())
                .collect()
        }

        fn stopped(&self) -> Vec<String> {
            self.rec().stopped.clone()
        }
    }

    struct FakeEnv {
        id: String,
        spec: Arc<EnvSpec>,
        generation: u64,
        alive: Arc<AtomicBool>,
        fake: Fake,
    }

    impl Drop for FakeEnv {
        fn drop(&mut self) {
            self.fake.rec().stopped.push(self.id.clone());
        }
    }

    impl EnvHandle for FakeEnv {
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
            self.alive.load(Ordering::SeqCst)
        }

        async fn invoke(&mut self, _inv: Invocation) -> Delivery {
            if self.fake.rec().doomed.remove(&self.id) {
                self.alive.store(false, Ordering::SeqCst);
                return Delivery::NotDelivered;
            }
            self.fake.rec().waiting += 1;
            let permit = self.fake.gate.acquire().await;
            drop(permit);
            self.fake.rec().waiting -= 1;
            let outcome = Outcome {
                body: Bytes::from(self.id.clone()),
                error_type: None,
                log: None,
            };
            Delivery::Done(outcome, true)
        }

        async fn report_failed_start(
            &self,
            _request_id: &str,
            _error_type: &str,
            _started: Instant,
        ) -> String {
            String::new()
        }
    }

    impl Launcher for Fake {
        type Env = FakeEnv;

        fn start(
            &self,
            spec: Arc<EnvSpec>,
            generation: u64,
            _request_id: &str,
            _init_limit: Duration,
            init_type: &'static str,
        ) -> impl std::future::Future<Output = Result<FakeEnv, (InitFailure, Option<FakeEnv>)>> + Send
        {
            let fake = self.clone();
            async move {
                let id = {
                    let mut r = fake.rec();
                    r.next += 1;
                    let id = format!("env{}", r.next);
                    r.started.push((id.clone(), init_type));
                    id
                };
                Ok(FakeEnv {
                    id,
                    spec,
                    generation,
                    alive: Arc::new(AtomicBool::new(true)),
                    fake,
                })
            }
        }

        fn clean_leftovers(&self) {}
    }

    const IDLE: Duration = Duration::from_secs(300);

    /// A pool of fakes and the hand that moves its clock.
    fn pool() -> (Arc<Pool<Fake>>, Fake, Arc<Mutex<Duration>>) {
        let fake = Fake::new();
        let t0 = Instant::now();
        let offset = Arc::new(Mutex::new(Duration::ZERO));
        let hand = offset.clone();
        let clock: Clock = Arc::new(move || t0 + *hand.lock().unwrap());
        let limits = PoolLimits {
            idle_timeout: IDLE,
            account_concurrency: 1000,
            memory: MemoryBudget {
                host_mb: 1 << 20,
                headroom_mb: 0,
            },
        };
        let pool = Pool::without_background(fake.clone(), limits, clock);
        (pool, fake, offset)
    }

    fn spec(version: &str, revision: &str) -> Arc<EnvSpec> {
        Arc::new(EnvSpec {
            function_name: "f".into(),
            version: version.into(),
            revision_id: revision.into(),
            memory_mb: 128,
            ephemeral_mb: 512,
            timeout_s: 3,
            handler: "h".into(),
            runtime: "provided.al2023".into(),
            code_dir: PathBuf::from("/nonexistent"),
            opt_dir: None,
            variables: BTreeMap::new(),
            region: "us-east-1".into(),
            log_group: "/aws/lambda/f".into(),
            launch: None,
        })
    }

    fn invocation(id: &str) -> Invocation {
        Invocation {
            request_id: id.into(),
            payload: Bytes::from_static(b"{}"),
            invoked_arn: "arn".into(),
            trace_id: "Root=1-0-0".into(),
            client_context: None,
            cognito_identity: None,
            tail_logs: false,
            settle: None,
        }
    }

    /// The environment an invocation ran in (the fake answers with its id).
    async fn run(pool: &Pool<Fake>, spec: &Arc<EnvSpec>, id: &str) -> String {
        let outcome = pool.invoke(spec.clone(), invocation(id)).await.unwrap();
        assert_eq!(outcome.error_type, None, "{outcome:?}");
        String::from_utf8(outcome.body.to_vec()).unwrap()
    }

    /// Let spawned tasks run until `cond` holds.
    async fn until(mut cond: impl FnMut() -> bool) {
        for _ in 0..10_000 {
            if cond() {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the condition never held");
    }

    #[tokio::test]
    async fn an_idle_environment_of_the_same_version_and_revision_is_reused() {
        let (pool, fake, _) = pool();
        let s = spec("$LATEST", "r1");
        let first = run(&pool, &s, "a").await;
        assert_eq!(run(&pool, &s, "b").await, first);
        assert_eq!(run(&pool, &spec("$LATEST", "r1"), "c").await, first);
        assert_eq!(fake.started(), [first.as_str()]);
        // Another version of the same function does not take it.
        let other = run(&pool, &spec("1", "v1"), "d").await;
        assert_ne!(other, first);
        assert!(fake.stopped().is_empty());
    }

    #[tokio::test]
    async fn a_new_environment_starts_when_all_are_busy() {
        let (pool, fake, _) = pool();
        let s = spec("$LATEST", "r1");
        fake.gate.forget_permits(Semaphore::MAX_PERMITS);
        let a = tokio::spawn({
            let (pool, s) = (pool.clone(), s.clone());
            async move { run(&pool, &s, "a").await }
        });
        until(|| fake.rec().waiting == 1).await;
        let b = tokio::spawn({
            let (pool, s) = (pool.clone(), s.clone());
            async move { run(&pool, &s, "b").await }
        });
        until(|| fake.rec().waiting == 2).await;
        assert_eq!(
            fake.started().len(),
            2,
            "the busy environment was not shared"
        );
        fake.gate.add_permits(2);
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        assert_ne!(a, b);
        // Both are idle now: the next invocation takes one of them.
        let c = run(&pool, &s, "c").await;
        assert!(c == a || c == b);
        assert_eq!(fake.started().len(), 2);
    }

    #[tokio::test]
    async fn a_new_revision_retires_the_old_environments() {
        let (pool, fake, _) = pool();
        let old = run(&pool, &spec("$LATEST", "r1"), "a").await;
        let new = run(&pool, &spec("$LATEST", "r2"), "b").await;
        assert_ne!(old, new);
        assert_eq!(fake.stopped(), [old]);
        assert_eq!(run(&pool, &spec("$LATEST", "r2"), "c").await, new);
        // Retiring the version stops the idle one; the next invocation starts afresh.
        pool.retire_version("f", "$LATEST");
        assert!(fake.stopped().contains(&new));
        let after = run(&pool, &spec("$LATEST", "r2"), "d").await;
        assert_ne!(after, new);
    }

    #[tokio::test]
    async fn the_reaper_stops_environments_idle_past_the_timeout() {
        let (pool, fake, hand) = pool();
        let s = spec("$LATEST", "r1");
        let first = run(&pool, &s, "a").await;
        *hand.lock().unwrap() = IDLE - Duration::from_millis(1);
        pool.reap();
        assert!(fake.stopped().is_empty(), "stopped before the idle timeout");
        assert_eq!(run(&pool, &s, "b").await, first);
        // Idle time counts from the end of the last invocation.
        *hand.lock().unwrap() = 2 * IDLE - Duration::from_millis(2);
        pool.reap();
        assert!(fake.stopped().is_empty());
        *hand.lock().unwrap() = 2 * IDLE;
        pool.reap();
        assert_eq!(fake.stopped(), [first.as_str()]);
        assert_ne!(run(&pool, &s, "c").await, first);
    }

    #[tokio::test]
    async fn provisioned_environments_are_kept_and_used_first() {
        let (pool, fake, hand) = pool();
        let s = spec("1", "v1");
        pool.provision("f", "1", s.clone(), 2);
        pool.reconcile();
        until(|| {
            pool.provisioned_state("f", "1")
                .is_some_and(|(n, _, _)| n == 2)
        })
        .await;
        let (_, status, _) = pool.provisioned_state("f", "1").unwrap();
        assert_eq!(status, ProvisionedStatus::Ready);
        assert!(fake.rec().started.iter().all(|(_, t)| *t == PROVISIONED));
        *hand.lock().unwrap() = 10 * IDLE;
        pool.reap();
        pool.reconcile();
        assert!(
            fake.stopped().is_empty(),
            "the reaper stopped provisioned ones"
        );
        let ran = run(&pool, &s, "a").await;
        assert!(fake.started().contains(&ran));
        assert_eq!(
            fake.started().len(),
            2,
            "an on-demand start despite idle provisioned ones"
        );
        // Asking for fewer stops the excess.
        pool.provision("f", "1", s.clone(), 1);
        pool.reap();
        assert_eq!(fake.stopped().len(), 1);
    }

    #[tokio::test]
    async fn an_environment_that_exits_before_taking_the_event_hands_it_to_another() {
        let (pool, fake, _) = pool();
        let s = spec("$LATEST", "r1");
        let first = run(&pool, &s, "a").await;
        fake.rec().doomed.insert(first.clone());
        let second = run(&pool, &s, "b").await;
        assert_ne!(second, first);
        assert_eq!(fake.stopped(), [first]);
        assert_eq!(fake.started().len(), 2);
    }
}
