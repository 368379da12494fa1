//! Admission: who may run now, counted in one ledger.
//!
//! The ledger counts what Lambda's concurrency controls and the host's memory limit need:
//! invocations in flight per function (on-demand ones separately, since provisioned
//! environments are capacity already allocated), each function's reserved and provisioned
//! concurrency, and the configured memory of every live environment. Admission decisions are
//! pure functions of the ledger, so the rules are unit-tested without starting anything.
//!
//! The rules, as Lambda's:
//! - a function with reserved concurrency `R` and provisioned concurrency `P` (all its
//!   versions and aliases) runs at most `R - P` on-demand invocations at once; beyond that
//!   (and always when `R = 0`) it is throttled with `ReservedFunctionConcurrentInvocationLimitExceeded`;
//! - functions without reserved concurrency share the unreserved pool: the account limit
//!   minus every reservation minus the provisioned concurrency of unreserved functions; when
//!   their on-demand invocations fill it, they are throttled with `ConcurrentInvocationLimitExceeded`;
//! - an environment starts only if its `MemorySize` fits in the host's memory budget (the
//!   pool first stops idle environments to make room); otherwise the invocation is throttled.
//!   Lambda has no such limit, so Sous answers it as the account-level throttle
//!   (`ConcurrentInvocationLimitExceeded`): the host is full, as an account would be.
//!
//! Counts are held by guards ([`Ticket`] for an invocation, [`EnvLease`] for an environment)
//! that give back what they hold when dropped, so a cancelled invocation or a crashed
//! environment can never leak capacity.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde::Serialize;
use sous_types::concurrency::ThrottleReason;

/// Why an invocation was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A concurrency limit (reserved or account).
    Concurrency(ThrottleReason),
    /// The host's memory budget cannot hold another environment of this size.
    Memory,
}

impl Refusal {
    /// The `Reason` of the 429 this refusal becomes.
    pub fn reason(self) -> ThrottleReason {
        match self {
            Refusal::Concurrency(r) => r,
            Refusal::Memory => ThrottleReason::ConcurrentInvocationLimitExceeded,
        }
    }
}

/// The host's memory as Sous budgets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MemoryBudget {
    /// Host memory (MemTotal, or the `--host-memory-mb` override), MB.
    pub host_mb: u64,
    /// Kept free for the OS, Sous and everything else, MB.
    pub headroom_mb: u64,
}

impl MemoryBudget {
    /// What environments may use: host memory less the headroom.
    pub fn capacity_mb(&self) -> u64 {
        self.host_mb.saturating_sub(self.headroom_mb)
    }

    /// The budget from the server settings: `host_mb` overrides detection; the headroom
    /// defaults to 10% of host memory, at least 512 MB.
    pub fn from_settings(host_mb: Option<u64>, headroom_mb: Option<u64>) -> std::io::Result<Self> {
        let host_mb = match host_mb {
            Some(h) => h,
            None => host_memory_mb()?,
        };
        let headroom_mb = headroom_mb.unwrap_or_else(|| (host_mb / 10).max(512));
        Ok(Self {
            host_mb,
            headroom_mb,
        })
    }
}

/// `MemTotal` of `/proc/meminfo`, in MB.
///
/// MemTotal rather than MemAvailable: the budget must be stable. MemAvailable moves with the
/// page cache and with the environments Sous itself runs (counting them twice), so admission
/// would flap; a fixed budget with explicit headroom is predictable and testable.
pub fn host_memory_mb() -> std::io::Result<u64> {
    let text = std::fs::read_to_string("/proc/meminfo")?;
    parse_mem_total_mb(&text).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "no MemTotal line in /proc/meminfo",
        )
    })
}

fn parse_mem_total_mb(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line
        .trim_start_matches("MemTotal:")
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib / 1024)
}

/// What an environment is doing, for the status endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvState {
    Starting,
    Idle,
    Busy,
}

/// One live environment, as the status endpoint shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnvRecord {
    pub function: String,
    pub version: String,
    pub state: EnvState,
    /// The provisioned concurrency configuration (version or alias) it serves, if any.
    pub provisioned_for: Option<String>,
    pub memory_mb: u64,
    /// Set once the environment has started.
    pub environment_id: Option<String>,
    #[serde(skip)]
    pub since: Option<Instant>,
}

/// The counts behind admission.
#[derive(Debug)]
pub struct Ledger {
    account_limit: u64,
    memory: MemoryBudget,
    memory_used_mb: u64,
    reserved: HashMap<String, u64>,
    /// Provisioned concurrency per function (sum over its configurations).
    provisioned: HashMap<String, u64>,
    /// On-demand invocations in flight per function.
    on_demand: HashMap<String, u64>,
    /// All invocations in flight per function.
    in_flight: HashMap<String, u64>,
    /// Live environments by slot id.
    envs: BTreeMap<u64, EnvRecord>,
    next_slot: u64,
}

impl Ledger {
    pub fn new(account_limit: u64, memory: MemoryBudget) -> Self {
        Self {
            account_limit,
            memory,
            memory_used_mb: 0,
            reserved: HashMap::new(),
            provisioned: HashMap::new(),
            on_demand: HashMap::new(),
            in_flight: HashMap::new(),
            envs: BTreeMap::new(),
            next_slot: 0,
        }
    }

    pub fn account_limit(&self) -> u64 {
        self.account_limit
    }

    pub fn memory(&self) -> MemoryBudget {
        self.memory
    }

    pub fn memory_used_mb(&self) -> u64 {
        self.memory_used_mb
    }

    pub fn set_reserved(&mut self, function: &str, value: Option<u64>) {
        match value {
            Some(v) => self.reserved.insert(function.to_string(), v),
            None => self.reserved.remove(function),
        };
    }

    pub fn reserved(&self, function: &str) -> Option<u64> {
        self.reserved.get(function).copied()
    }

    pub fn set_provisioned(&mut self, function: &str, total: u64) {
        if total == 0 {
            self.provisioned.remove(function);
        } else {
            self.provisioned.insert(function.to_string(), total);
        }
    }

    /// The account limit less every reservation: GetAccountSettings'
    /// `UnreservedConcurrentExecutions` ("minus the capacity reserved for individual
    /// functions with PutFunctionConcurrency").
    pub fn unreserved_setting(&self) -> u64 {
        self.account_limit
            .saturating_sub(self.reserved.values().sum::<u64>())
    }

    /// The account limit less every reservation and the provisioned concurrency of
    /// unreserved functions: what functions without reserved concurrency share.
    pub fn unreserved_pool(&self) -> u64 {
        let reserved: u64 = self.reserved.values().sum();
        let provisioned: u64 = self
            .provisioned
            .iter()
            .filter(|(f, _)| !self.reserved.contains_key(*f))
            .map(|(_, n)| n)
            .sum();
        self.account_limit
            .saturating_sub(reserved)
            .saturating_sub(provisioned)
    }

    /// Whether one more on-demand invocation of `function` may run.
    pub fn check_on_demand(&self, function: &str) -> Result<(), ThrottleReason> {
        let running = self.on_demand.get(function).copied().unwrap_or(0);
        match self.reserved.get(function) {
            Some(&r) => {
                let own_provisioned = self.provisioned.get(function).copied().unwrap_or(0);
                if running >= r.saturating_sub(own_provisioned) {
                    return Err(ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded);
                }
            }
            None => {
                let used: u64 = self
                    .on_demand
                    .iter()
                    .filter(|(f, _)| !self.reserved.contains_key(*f))
                    .map(|(_, n)| n)
                    .sum();
                if used >= self.unreserved_pool() {
                    return Err(ThrottleReason::ConcurrentInvocationLimitExceeded);
                }
            }
        }
        Ok(())
    }

    /// Take `mb` of the memory budget if it fits.
    pub fn try_reserve_memory(&mut self, mb: u64) -> bool {
        if self.memory_used_mb + mb > self.memory.capacity_mb() {
            return false;
        }
        self.memory_used_mb += mb;
        true
    }

    pub fn in_flight(&self, function: &str) -> u64 {
        self.in_flight.get(function).copied().unwrap_or(0)
    }

    pub fn on_demand_in_flight(&self, function: &str) -> u64 {
        self.on_demand.get(function).copied().unwrap_or(0)
    }

    pub fn environments(&self) -> impl Iterator<Item = &EnvRecord> {
        self.envs.values()
    }

    /// Functions with anything to report (reserved, provisioned or running).
    pub fn functions(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .reserved
            .keys()
            .chain(self.provisioned.keys())
            .chain(self.in_flight.keys())
            .chain(self.envs.values().map(|e| &e.function))
            .cloned()
            .collect();
        names.sort();
        names.dedup();
        names
    }

    pub fn provisioned(&self, function: &str) -> u64 {
        self.provisioned.get(function).copied().unwrap_or(0)
    }

    fn add(map: &mut HashMap<String, u64>, key: &str) {
        *map.entry(key.to_string()).or_default() += 1;
    }

    fn sub(map: &mut HashMap<String, u64>, key: &str) {
        if let Some(n) = map.get_mut(key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(key);
            }
        }
    }
}

/// The ledger, shared by the pool and the guards.
pub type SharedLedger = Arc<Mutex<Ledger>>;

pub fn lock(ledger: &SharedLedger) -> MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(|e| e.into_inner())
}

/// One admitted invocation: counted in flight until dropped.
pub struct Ticket {
    ledger: SharedLedger,
    function: String,
    on_demand: bool,
}

impl Ticket {
    /// Admit an on-demand invocation of `function`, or say why not.
    pub fn on_demand(ledger: &SharedLedger, function: &str) -> Result<Ticket, ThrottleReason> {
        let mut l = lock(ledger);
        l.check_on_demand(function)?;
        Ledger::add(&mut l.on_demand, function);
        Ledger::add(&mut l.in_flight, function);
        Ok(Ticket {
            ledger: ledger.clone(),
            function: function.to_string(),
            on_demand: true,
        })
    }

    /// An invocation served by a provisioned environment: always admitted.
    pub fn provisioned(ledger: &SharedLedger, function: &str) -> Ticket {
        Ledger::add(&mut lock(ledger).in_flight, function);
        Ticket {
            ledger: ledger.clone(),
            function: function.to_string(),
            on_demand: false,
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut l = lock(&self.ledger);
        Ledger::sub(&mut l.in_flight, &self.function);
        if self.on_demand {
            Ledger::sub(&mut l.on_demand, &self.function);
        }
    }
}

/// An environment's share of the memory budget and its status record, held from before it
/// starts until it is stopped.
pub struct EnvLease {
    ledger: SharedLedger,
    slot: u64,
    memory_mb: u64,
    released: bool,
}

impl EnvLease {
    /// Reserve `memory_mb` for an environment of `function`/`version`, if it fits.
    pub fn reserve(
        ledger: &SharedLedger,
        function: &str,
        version: &str,
        memory_mb: u64,
        provisioned_for: Option<String>,
    ) -> Option<EnvLease> {
        let mut l = lock(ledger);
        if !l.try_reserve_memory(memory_mb) {
            return None;
        }
        l.next_slot += 1;
        let slot = l.next_slot;
        l.envs.insert(
            slot,
            EnvRecord {
                function: function.to_string(),
                version: version.to_string(),
                state: EnvState::Starting,
                provisioned_for,
                memory_mb,
                environment_id: None,
                since: Some(Instant::now()),
            },
        );
        Some(EnvLease {
            ledger: ledger.clone(),
            slot,
            memory_mb,
            released: false,
        })
    }

    pub fn set_state(&self, state: EnvState) {
        if let Some(r) = lock(&self.ledger).envs.get_mut(&self.slot) {
            r.state = state;
            r.since = Some(Instant::now());
        }
    }

    pub fn set_environment_id(&self, id: &str) {
        if let Some(r) = lock(&self.ledger).envs.get_mut(&self.slot) {
            r.environment_id = Some(id.to_string());
        }
    }

    /// Give the memory back now (the environment is about to be stopped). Idempotent.
    pub fn release(&mut self) {
        if self.released {
            return;
        }
        self.released = true;
        let mut l = lock(&self.ledger);
        l.memory_used_mb = l.memory_used_mb.saturating_sub(self.memory_mb);
        l.envs.remove(&self.slot);
    }
}

impl Drop for EnvLease {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(account: u64, memory: u64) -> SharedLedger {
        Arc::new(Mutex::new(Ledger::new(
            account,
            MemoryBudget {
                host_mb: memory,
                headroom_mb: 0,
            },
        )))
    }

    #[test]
    fn reserved_caps_a_function_and_zero_throttles_all() {
        let l = ledger(1000, 1 << 20);
        lock(&l).set_reserved("f", Some(2));
        let a = Ticket::on_demand(&l, "f").unwrap();
        let _b = Ticket::on_demand(&l, "f").unwrap();
        assert_eq!(
            Ticket::on_demand(&l, "f").err(),
            Some(ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded)
        );
        drop(a);
        let _c = Ticket::on_demand(&l, "f").unwrap();
        lock(&l).set_reserved("z", Some(0));
        assert_eq!(
            Ticket::on_demand(&l, "z").err(),
            Some(ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded)
        );
        assert_eq!(lock(&l).unreserved_pool(), 998);
        assert_eq!(lock(&l).in_flight("f"), 2);
    }

    #[test]
    fn unreserved_functions_share_the_rest() {
        let l = ledger(3, 1 << 20);
        let _a = Ticket::on_demand(&l, "a").unwrap();
        let _b = Ticket::on_demand(&l, "b").unwrap();
        let c = Ticket::on_demand(&l, "b").unwrap();
        assert_eq!(
            Ticket::on_demand(&l, "a").err(),
            Some(ThrottleReason::ConcurrentInvocationLimitExceeded)
        );
        drop(c);
        let _d = Ticket::on_demand(&l, "a").unwrap();
        // Provisioned invocations are never refused and do not use the pool.
        let _p = Ticket::provisioned(&l, "a");
        assert_eq!(lock(&l).in_flight("a"), 3);
        assert_eq!(lock(&l).on_demand_in_flight("a"), 2);
    }

    #[test]
    fn provisioned_counts_against_reserved_and_the_pool() {
        let l = ledger(1000, 1 << 20);
        lock(&l).set_reserved("f", Some(3));
        lock(&l).set_provisioned("f", 2);
        let _a = Ticket::on_demand(&l, "f").unwrap();
        assert!(Ticket::on_demand(&l, "f").is_err());
        lock(&l).set_provisioned("g", 5);
        assert_eq!(lock(&l).unreserved_pool(), 1000 - 3 - 5);
    }

    #[test]
    fn memory_leases_fit_the_budget_and_come_back() {
        let l = ledger(1000, 256);
        let a = EnvLease::reserve(&l, "f", "$LATEST", 128, None).unwrap();
        let _b = EnvLease::reserve(&l, "f", "$LATEST", 128, None).unwrap();
        assert!(EnvLease::reserve(&l, "f", "$LATEST", 128, None).is_none());
        assert_eq!(lock(&l).environments().count(), 2);
        a.set_state(EnvState::Busy);
        drop(a);
        assert_eq!(lock(&l).memory_used_mb(), 128);
        let mut c = EnvLease::reserve(&l, "f", "1", 128, Some("1".into())).unwrap();
        c.release();
        c.release();
        assert_eq!(lock(&l).memory_used_mb(), 128);
    }

    #[test]
    fn budget_settings() {
        assert_eq!(
            parse_mem_total_mb("MemTotal:       24684084 kB\nMemFree: 1 kB\n"),
            Some(24105)
        );
        assert_eq!(parse_mem_total_mb("nothing"), None);
        let b = MemoryBudget::from_settings(Some(2048), None).unwrap();
        assert_eq!(b.headroom_mb, 512);
        assert_eq!(b.capacity_mb(), 1536);
        let b = MemoryBudget::from_settings(Some(20_000), None).unwrap();
        assert_eq!(b.headroom_mb, 2000);
        let b = MemoryBudget::from_settings(Some(256), Some(0)).unwrap();
        assert_eq!(b.capacity_mb(), 256);
        let b = MemoryBudget::from_settings(Some(100), Some(512)).unwrap();
        assert_eq!(b.capacity_mb(), 0);
        assert!(host_memory_mb().unwrap() > 0);
    }
}
