//! Durable state of Sous.
//!
//! What we store, and why: function metadata (each version's `FunctionConfiguration` and the
//! SHA-256 of its code) in SQLite in WAL mode, so a restart — clean or after a crash — finds
//! every function exactly as the last committed API call left it; and code zips in a
//! content-addressed directory (`code/<sha256>.zip`) with an extraction cache
//! (`extract/<sha256>/`), so identical packages are stored once and a cold start never unzips.
//!
//! Layout of the data dir:
//! ```text
//! <data-dir>/sous.db            SQLite metadata (WAL)
//! <data-dir>/code/<hex>.zip     code blobs by SHA-256
//! <data-dir>/extract/<hex>/     extracted, validated packages (read-only once complete)
//! ```

pub mod apis;
pub mod code;
pub mod db;
pub mod rules;
pub mod urls;

pub use code::{CodeError, CodeStore, StoredCode};
pub use db::{NewEvent, QueueStats, QueueWrite, QueuedEvent, Store, StoreError, StoredFunction};
