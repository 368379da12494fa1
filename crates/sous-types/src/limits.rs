//! Lambda's quotas, as numbers Sous enforces.

pub const MEMORY_MIN_MB: i64 = 128;
pub const MEMORY_MAX_MB: i64 = 10_240;
pub const MEMORY_DEFAULT_MB: i64 = 128;
pub const TIMEOUT_MIN_S: i64 = 1;
pub const TIMEOUT_MAX_S: i64 = 900;
pub const TIMEOUT_DEFAULT_S: i64 = 3;
pub const EPHEMERAL_MIN_MB: i64 = 512;
pub const EPHEMERAL_MAX_MB: i64 = 10_240;
pub const EPHEMERAL_DEFAULT_MB: i64 = 512;
pub const DESCRIPTION_MAX: usize = 256;
pub const HANDLER_MAX: usize = 128;
/// Total size of a function's environment variables, measured as their JSON serialization.
pub const ENVIRONMENT_MAX_BYTES: usize = 4 * 1024;
/// Synchronous invocation request payload.
pub const SYNC_REQUEST_MAX_BYTES: usize = 6 * 1024 * 1024;
/// Synchronous invocation response payload, as the Runtime API enforces it (6 MiB + 100 B).
pub const SYNC_RESPONSE_MAX_BYTES: usize = 6 * 1024 * 1024 + 100;
/// Deployment package, unzipped (function and layers).
pub const UNZIPPED_MAX_BYTES: u64 = 262_144_000;
/// Entries (files, directories and symlinks) of one deployment package: a Sous limit, not
/// Lambda's (Lambda documents no entry count). It bounds the work and the disk (one inode and
/// usually one block per file) of one upload: 2.5 times the 100,000 files of the largest
/// packages seen in practice, and more than a 50 MB zip of small files can hold at 200 bytes an
/// entry.
pub const PACKAGE_ENTRIES_MAX: u64 = 250_000;
/// Deployment package, zipped, for a direct upload.
pub const ZIPPED_MAX_BYTES: u64 = 52_428_800;
/// Total code storage per region.
pub const TOTAL_CODE_SIZE_BYTES: u64 = 80_530_636_800;
/// Default account concurrency.
pub const ACCOUNT_CONCURRENCY: u64 = 1000;
/// Unreserved concurrency an account must keep (or its whole limit, when smaller).
pub const MIN_UNRESERVED_CONCURRENCY: u64 = 100;
/// Default idle period after which a warm on-demand environment is stopped (Sous's reuse
/// window; Lambda does not publish one, observed reuse lasts minutes).
pub const IDLE_TIMEOUT_DEFAULT_S: u64 = 300;
/// Init phase limit for on-demand environments.
pub const INIT_TIMEOUT_MS: u64 = 10_000;
/// Bytes of log returned in `X-Amz-Log-Result`.
pub const LOG_TAIL_BYTES: usize = 4 * 1024;
/// Client context (`X-Amz-Client-Context`), base64.
pub const CLIENT_CONTEXT_MAX_BYTES: usize = 3583;
/// Page size of ListFunctions, whatever MaxItems asks.
pub const LIST_FUNCTIONS_PAGE: usize = 50;
