//! Names, ARNs, limits and function configuration of Sous, with AWS Lambda's validation
//! rules. No I/O: everything here is a pure function of its input, so the rules are unit
//! tested directly and every other crate shares one definition of them.

pub mod alias;
pub mod concurrency;
pub mod config;
pub mod endpoints;
pub mod error;
pub mod event_invoke;
pub mod function_url;
pub mod http_api;
pub mod layers;
pub mod limits;
pub mod names;
pub mod runtime;
pub mod schedule_expr;
pub mod sigv4;
pub mod timefmt;

pub use error::{ErrorCode, LambdaError};
pub use names::LATEST;
