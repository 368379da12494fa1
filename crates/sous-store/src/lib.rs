//! Durable state of Sous.
//!
//! What we store, and why: function metadata (each version's `FunctionConfiguration` and the
//! SHA-256 of its code), aliases, concurrency settings, event invoke configurations, the
//! asynchronous invocation queue, function URLs, HTTP APIs and scheduled rules in SQLite in
//! WAL mode, so a restart — clean or after a crash — finds everything exactly as the last
//! committed API call left it (one module per resource: see [`db`]); and code zips in a
//! content-addressed directory (`code/<sha256>.zip`) with an extraction cache
//! (`extract/<sha256>/`), so identical packages are stored once and a cold start never unzips.
//!
//! Every call is blocking (SQLite or the file system): async code goes through
//! [`Store::run`], which runs the call on Tokio's blocking pool.
//!
//! Layout of the data dir:
//! ```text
//! <data-dir>/sous.db            SQLite metadata (WAL)
//! <data-dir>/code/<hex>.zip     code blobs by SHA-256
//! <data-dir>/extract/<hex>/     extracted, validated packages (read-only once complete)
//! <data-dir>/opt/<key>/         merged layers of one ordered list of layer shas (an environment's /opt)
//! ```

pub mod aliases;
pub mod apis;
pub mod code;
pub mod concurrency;
pub mod db;
pub mod event_invoke;
pub mod functions;
pub mod layers;
pub mod queue;
pub mod rules;
pub mod urls;
pub mod usage;
pub mod versions;

#[cfg(test)]
mod test_support;

pub use code::{CodeError, CodeStore, Extraction, Put, StoredCode};
pub use db::{Store, StoreError};
pub use functions::{StoredFunction, LATEST};
pub use queue::{NewEvent, QueueStats, QueueWrite, QueuedEvent};
