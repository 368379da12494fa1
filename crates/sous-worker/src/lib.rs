//! Execution environments of Sous.
//!
//! An environment is one runtime process (the zip's `bootstrap`, or a managed runtime's) with
//! its own Runtime API listener, its own log stream and a lifecycle Lambda defines: init (up
//! to 10 s), then one invocation at a time until it is retired, times out or crashes. The
//! [`Pool`] keeps warm environments per function and starts new ones when none is idle.
//!
//! - `spec.rs`: what an environment runs (`EnvSpec`) and what one invocation carries.
//! - `runtime_api.rs`: the Lambda Runtime API (2018-06-01) server of one environment.
//! - `logs.rs`: the environment's output pipe, platform lines (START/END/REPORT) and the log
//!   stream on disk.
//! - `environment.rs`: start, invoke, stop one environment.
//! - `services.rs`: `--service-endpoint`s reachable from functions (forwarders from each
//!   environment's loopback to the endpoints) and the credential variables.
//! - `admission.rs`: concurrency (reserved, provisioned, account) and host memory admission.
//! - `pool.rs`: warm environments per function, scale-out and idle scale-down, provisioned
//!   concurrency, retirement, shutdown and crash cleanup.

pub mod admission;
pub mod environment;
pub mod logs;
pub mod pool;
pub mod runtime_api;
pub mod services;
pub mod spec;

pub use admission::{MemoryBudget, Refusal};
pub use pool::{Pool, PoolConfig};
pub use spec::{EnvSpec, Invocation, Outcome, Settle};
