//! Event sources of Sous. Each one turns something outside Lambda's API into an invocation
//! through the invoker, as Lambda's own event sources do:
//! - [`gateway`]: the HTTP front door on `--gateway-addr` (function URLs and HTTP API routes,
//!   payload formats 1.0 and 2.0);
//! - [`routing`]: which function an HTTP API request goes to (routes, stages, integrations
//!   managed through the API Gateway v2 subset of the control plane);
//! - [`schedule`]: EventBridge-style scheduled rules (`rate(...)`, `cron(...)`).

pub mod gateway;
pub mod routing;
pub mod schedule;
