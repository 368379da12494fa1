//! Function metadata in SQLite.
//!
//! What we store, and why: every function version's `FunctionConfiguration` (exactly the JSON
//! shape the API returns, so a read never re-derives it) and the SHA-256 of the code zip it
//! runs, in `<data-dir>/sous.db`. SQLite runs in WAL mode with `synchronous=NORMAL`: a committed
//! API write survives a process kill (the WAL is written before `COMMIT` returns; only an OS
//! crash or power loss can lose the last transactions), and readers never block the writer.
//! The `functions` table holds what belongs to the function rather than to a version (its
//! creation time and the next version number to publish); `versions` holds `$LATEST` and, once
//! versions are published, each immutable `N`. The code blobs themselves live in the
//! [`CodeStore`] beside the database; rows reference them by hex digest, and a blob no row
//! references any more is garbage-collected through [`Store::gc_code`].
//!
//! Published versions carry `source_fingerprint`, the fingerprint of the `$LATEST` they were
//! published from, so that publishing an unchanged `$LATEST` again returns the existing
//! version as Lambda does. `aliases` holds each alias's `AliasConfiguration` JSON with its
//! primary and additional version in columns, so a version an alias routes to is never deleted
//! (both checks run inside the same transaction as the write they guard).
//!
//! Concurrency settings are stored too, because a restart must enforce and re-provision them:
//! `functions.reserved_concurrency` (NULL = unreserved) and `provisioned_concurrency`, one row
//! per version or alias with the requested amount. Their checks against the account's limits
//! run inside the transaction that writes them.
//!
//! Migrations are numbered by `PRAGMA user_version` and applied idempotently at open, so any
//! earlier data dir opens with the current schema.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use sous_types::alias::AliasConfiguration;
use sous_types::config::FunctionConfiguration;

use crate::code::{CodeError, CodeStore};

/// `$LATEST`, the version every function has.
pub const LATEST: &str = "$LATEST";

/// One function version as stored: its configuration and the digest of its code zip.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFunction {
    pub config: FunctionConfiguration,
    /// Hex SHA-256 of the code zip in the [`CodeStore`].
    pub code_sha256_hex: String,
}

/// Totals for GetAccountSettings' `AccountUsage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Sum of `CodeSize` over every stored version.
    pub total_code_size: u64,
    pub function_count: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("function already exists")]
    Exists,
    #[error("function not found")]
    NotFound,
    #[error("revision id does not match the stored revision")]
    RevisionMismatch,
    #[error("function version {0} not found")]
    VersionNotFound(String),
    #[error("version is referenced by aliases {0:?}")]
    VersionInUse(Vec<String>),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("code store: {0}")]
    Code(#[from] CodeError),
    #[error("corrupt metadata: {0}")]
    Corrupt(String),
    #[error("open metadata database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

/// Schema migrations; `user_version` = number applied.
const MIGRATIONS: &[&str] = &[
    // 1: functions and their versions.
    "CREATE TABLE functions (
        name          TEXT PRIMARY KEY NOT NULL,
        created_at    INTEGER NOT NULL,
        next_version  INTEGER NOT NULL DEFAULT 1,
        tags_json     TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE versions (
        function_name    TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
        version          TEXT NOT NULL,
        config_json      TEXT NOT NULL,
        code_sha256_hex  TEXT NOT NULL,
        revision_id      TEXT NOT NULL,
        code_size        INTEGER NOT NULL,
        PRIMARY KEY (function_name, version)
    );
    CREATE INDEX versions_by_code ON versions(code_sha256_hex);",
    // 2: published versions remember what they were published from; aliases.
    "ALTER TABLE versions ADD COLUMN source_fingerprint TEXT;
    CREATE TABLE aliases (
        function_name       TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
        name                TEXT NOT NULL,
        function_version    TEXT NOT NULL,
        additional_version  TEXT,
        config_json         TEXT NOT NULL,
        revision_id         TEXT NOT NULL,
        PRIMARY KEY (function_name, name)
    );",
    // 3: reserved concurrency per function; provisioned concurrency per version or alias.
    "ALTER TABLE functions ADD COLUMN reserved_concurrency INTEGER;
    CREATE TABLE provisioned_concurrency (
        function_name  TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
        qualifier      TEXT NOT NULL,
        requested      INTEGER NOT NULL,
        last_modified  TEXT NOT NULL,
        PRIMARY KEY (function_name, qualifier)
    );",
    // 4: the asynchronous invocation queue; event invoke configurations per qualifier.
    "CREATE TABLE async_events (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id       TEXT NOT NULL,
        function_name    TEXT NOT NULL,
        qualifier        TEXT,
        payload          BLOB NOT NULL,
        received_ms      INTEGER NOT NULL,
        attempts         INTEGER NOT NULL DEFAULT 0,
        throttles        INTEGER NOT NULL DEFAULT 0,
        next_attempt_ms  INTEGER NOT NULL,
        trace_id         TEXT
    );
    CREATE INDEX async_events_due ON async_events(next_attempt_ms);
    CREATE TABLE event_invoke_configs (
        function_name  TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
        qualifier      TEXT NOT NULL,
        config_json    TEXT NOT NULL,
        PRIMARY KEY (function_name, qualifier)
    );",
    // 5: function URL configurations (see `urls.rs`).
    crate::urls::MIGRATION,
    // 6: HTTP APIs, their routes, integrations and stages (see `apis.rs`).
    crate::apis::MIGRATION,
    // 7: scheduled rules and their targets (see `rules.rs`).
    crate::rules::MIGRATION,
];

/// An asynchronous invocation to put on the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub request_id: String,
    pub function_name: String,
    /// `None` = unqualified (`$LATEST`).
    pub qualifier: Option<String>,
    pub payload: Vec<u8>,
    /// When the event was accepted (epoch ms).
    pub received_ms: i64,
    pub trace_id: Option<String>,
}

/// An asynchronous invocation on the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEvent {
    pub id: i64,
    pub event: NewEvent,
    /// Attempts that ran the function (throttled attempts are not counted).
    pub attempts: u32,
    /// Consecutive throttled or failed-to-start attempts (for the backoff).
    pub throttles: u32,
    pub next_attempt_ms: i64,
}

/// One change to the asynchronous invocation queue, for [`Store::write_queue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueWrite {
    /// Put an accepted event on the queue.
    Enqueue(NewEvent),
    /// Finish an event: remove it and enqueue what its outcome sends on (destination
    /// records, the dead-letter copy).
    Complete { id: i64, follow_ups: Vec<NewEvent> },
    /// Put an event back for a later attempt.
    Reschedule {
        id: i64,
        attempts: u32,
        throttles: u32,
        next_attempt_ms: i64,
    },
}

/// Size and age of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    pub depth: u64,
    /// Acceptance time of the oldest queued event (epoch ms).
    pub oldest_received_ms: Option<i64>,
}

/// A stored provisioned concurrency configuration (what was asked; what is allocated is the
/// worker's live state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredProvisioned {
    pub function_name: String,
    /// A version number or an alias name.
    pub qualifier: String,
    pub requested: u64,
    /// `Timestamp` string of the last Put.
    pub last_modified: String,
}

/// The account's concurrency bookkeeping, as a reservation check sees it inside the
/// transaction that writes the reservation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConcurrencyView {
    /// Reserved concurrency of the function being changed (`None` = unreserved).
    pub current: Option<u64>,
    /// Sum of the reserved concurrency of every other function.
    pub others_reserved: u64,
    /// Sum of provisioned concurrency of functions without reserved concurrency, this one
    /// excluded (it counts against the unreserved pool).
    pub others_unreserved_provisioned: u64,
    /// Provisioned concurrency of this function: all its configurations but the one being
    /// written (by a provisioned Put), or all of them (by a reservation).
    pub own_provisioned: u64,
}

/// What [`Store::publish_version`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub version: StoredFunction,
    /// `false` when `$LATEST` had not changed since the last published version, which is
    /// returned instead of a new one.
    pub created: bool,
}

/// The metadata database and the code blob store of one data dir.
pub struct Store {
    conn: Mutex<Connection>,
    /// A second connection, the only one that writes the queue (`synchronous=FULL`): WAL lets
    /// the main connection go on reading while the writer waits for its fsync, and the two
    /// never wait for each other's write lock over queue traffic.
    queue_writer: Mutex<Connection>,
    /// A third connection, for [`Store::checkpoint_queue`].
    checkpointer: Mutex<Connection>,
    code: CodeStore,
    /// Held shared while a blob is written and the row referencing it is committed; held
    /// exclusively by [`Store::gc_code`], so a blob is never removed between the two.
    code_gate: RwLock<()>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Open (creating if needed) `<data_dir>/sous.db` and the code store under `data_dir`,
    /// and bring the schema up to date.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Corrupt(format!("create data dir {}: {e}", data_dir.display()))
        })?;
        let path = data_dir.join("sous.db");
        let conn = Connection::open(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrate(&conn)?;
        let writer = Connection::open(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        writer.busy_timeout(std::time::Duration::from_secs(5))?;
        writer.pragma_update(None, "synchronous", "FULL")?;
        // The queue writer never checkpoints: a checkpoint inside one of its commits (copying
        // the WAL into the database and syncing it) would hold up every Invoke of that batch.
        // `checkpoint_queue` does it from its own connection, beside the writer.
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpointer = Connection::open(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        checkpointer.busy_timeout(std::time::Duration::from_secs(5))?;
        let code = CodeStore::open(data_dir)?;
        Ok(Store {
            queue_writer: Mutex::new(writer),
            checkpointer: Mutex::new(checkpointer),
            conn: Mutex::new(conn),
            code,
            code_gate: RwLock::new(()),
        })
    }

    /// The code blob store.
    pub fn code(&self) -> &CodeStore {
        &self.code
    }

    /// Hold the returned guard while writing a blob with [`CodeStore::put_zip`] and committing
    /// the row that references it; garbage collection waits for it.
    pub fn pin_code(&self) -> RwLockReadGuard<'_, ()> {
        self.code_gate.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll
        // back on drop), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Create a function: its `functions` row and its `$LATEST` version, atomically.
    pub fn insert_function(&self, f: &StoredFunction) -> Result<(), StoreError> {
        self.insert_function_with_tags(f, &BTreeMap::new())
    }

    /// [`Store::insert_function`] with the function's tags.
    pub fn insert_function_with_tags(
        &self,
        f: &StoredFunction,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let json = to_json(&f.config)?;
        let tags_json = serde_json::to_string(tags).map_err(|e| {
            StoreError::Corrupt(format!("serialize tags of {}: {e}", f.config.function_name))
        })?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO functions (name, created_at, next_version, tags_json) VALUES (?1, ?2, 1, ?3)",
            params![f.config.function_name, now_ms(), tags_json],
        )?;
        if inserted == 0 {
            return Err(StoreError::Exists);
        }
        tx.execute(
            "INSERT INTO versions (function_name, version, config_json, code_sha256_hex, revision_id, code_size)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                f.config.function_name,
                LATEST,
                json,
                f.code_sha256_hex,
                f.config.revision_id,
                size_i64(f.config.code_size)
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// One version of a function (`$LATEST` or `N`), if it exists.
    pub fn get_function(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Option<StoredFunction>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT config_json, code_sha256_hex FROM versions WHERE function_name = ?1 AND version = ?2",
        )?;
        let row = stmt
            .query_row(params![name, version], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .optional()?;
        drop(stmt);
        drop(conn);
        row.map(|(json, hex)| decode(name, &json, hex)).transpose()
    }

    /// A function's tags (`None` if the function does not exist).
    pub fn get_tags(&self, name: &str) -> Result<Option<BTreeMap<String, String>>, StoreError> {
        let conn = self.conn();
        let json: Option<String> = conn
            .query_row(
                "SELECT tags_json FROM functions WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?;
        drop(conn);
        json.map(|j| {
            serde_json::from_str(&j)
                .map_err(|e| StoreError::Corrupt(format!("tags of function {name}: {e}")))
        })
        .transpose()
    }

    /// Replace a version's configuration (`f.config.function_name` / `f.config.version`) if
    /// its stored RevisionId is still `expected_revision_id`. Returns the code digests no row
    /// references any more (the replaced code, when the code changed), for [`Store::gc_code`].
    pub fn replace_function(
        &self,
        f: &StoredFunction,
        expected_revision_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let json = to_json(&f.config)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: Option<(String, String)> = tx
            .query_row(
                "SELECT revision_id, code_sha256_hex FROM versions WHERE function_name = ?1 AND version = ?2",
                params![f.config.function_name, f.config.version],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((revision, old_hex)) = current else {
            return Err(StoreError::NotFound);
        };
        if revision != expected_revision_id {
            return Err(StoreError::RevisionMismatch);
        }
        tx.execute(
            "UPDATE versions SET config_json = ?3, code_sha256_hex = ?4, revision_id = ?5, code_size = ?6
             WHERE function_name = ?1 AND version = ?2",
            params![
                f.config.function_name,
                f.config.version,
                json,
                f.code_sha256_hex,
                f.config.revision_id,
                size_i64(f.config.code_size)
            ],
        )?;
        let orphans = unreferenced(&tx, std::iter::once(old_hex))?;
        tx.commit()?;
        Ok(orphans)
    }

    /// `$LATEST` of up to `limit` functions whose names sort after `after`, by name.
    pub fn list_functions(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredFunction>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT function_name, config_json, code_sha256_hex FROM versions
             WHERE version = ?1 AND function_name > ?2 ORDER BY function_name LIMIT ?3",
        )?;
        let rows = stmt
            .query_map(
                params![
                    LATEST,
                    after.unwrap_or(""),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                },
            )?
            .collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        drop(conn);
        rows.into_iter()
            .map(|(name, json, hex)| decode(&name, &json, hex))
            .collect()
    }

    /// Up to `limit` versions of all functions, by function name and then `$LATEST` first and
    /// by number, starting after `after` (a function name and a [`version_order`]).
    pub fn list_all_versions(
        &self,
        after: Option<(&str, i64)>,
        limit: usize,
    ) -> Result<Vec<StoredFunction>, StoreError> {
        let (after_name, after_order) = after.unwrap_or(("", i64::MIN));
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT function_name, config_json, code_sha256_hex,
                    CASE WHEN version = ?1 THEN -1 ELSE CAST(version AS INTEGER) END AS ord
             FROM versions
             WHERE function_name > ?2 OR (function_name = ?2 AND ord > ?3)
             ORDER BY function_name, ord LIMIT ?4",
        )?;
        let rows = stmt
            .query_map(
                params![
                    LATEST,
                    after_name,
                    after_order,
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                },
            )?
            .collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        drop(conn);
        rows.into_iter()
            .map(|(name, json, hex)| decode(&name, &json, hex))
            .collect()
    }

    /// Delete a function and all its versions. Returns the code digests no row references any
    /// more, for [`Store::gc_code`].
    pub fn delete_function(&self, name: &str) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let hexes: Vec<String> = {
            let mut stmt = tx.prepare(
                "SELECT DISTINCT code_sha256_hex FROM versions WHERE function_name = ?1",
            )?;
            let rows = stmt
                .query_map(params![name], |r| r.get(0))?
                .collect::<Result<Vec<_>, _>>()?;
            rows
        };
        tx.execute(
            "DELETE FROM aliases WHERE function_name = ?1",
            params![name],
        )?;
        tx.execute(
            "DELETE FROM provisioned_concurrency WHERE function_name = ?1",
            params![name],
        )?;
        tx.execute(
            "DELETE FROM versions WHERE function_name = ?1",
            params![name],
        )?;
        let deleted = tx.execute("DELETE FROM functions WHERE name = ?1", params![name])?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        let orphans = unreferenced(&tx, hexes)?;
        tx.commit()?;
        Ok(orphans)
    }

    /// Publish `$LATEST` of `name` as the next version, atomically. `check` sees `$LATEST`
    /// first (the caller's preconditions); when `$LATEST` has not changed since the last
    /// published version, that version is returned (`created: false`). Otherwise `make` builds
    /// version `N` (the function's next number, never reused) from `$LATEST`, it is stored,
    /// and `$LATEST` takes `new_latest_revision` as its RevisionId, as Lambda's does.
    pub fn publish_version<E: From<StoreError>>(
        &self,
        name: &str,
        new_latest_revision: &str,
        check: impl FnOnce(&StoredFunction) -> Result<(), E>,
        make: impl FnOnce(&StoredFunction, u64) -> StoredFunction,
    ) -> Result<Published, E> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let latest = read_version(&tx, name, LATEST)?.ok_or(StoreError::NotFound)?;
        check(&latest)?;
        let fingerprint = fingerprint(&latest)?;
        let next: i64 = tx
            .query_row(
                "SELECT next_version FROM functions WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .map_err(StoreError::from)?;
        if next > 1 {
            let previous: Option<(String, String, Option<String>)> = tx
                .query_row(
                    "SELECT config_json, code_sha256_hex, source_fingerprint FROM versions
                     WHERE function_name = ?1 AND version = ?2",
                    params![name, (next - 1).to_string()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(StoreError::from)?;
            if let Some((json, hex, Some(source))) = previous {
                if source == fingerprint {
                    return Ok(Published {
                        version: decode(name, &json, hex)?,
                        created: false,
                    });
                }
            }
        }
        let number = u64::try_from(next)
            .map_err(|_| StoreError::Corrupt(format!("next version {next} of {name}")))?;
        let version = make(&latest, number);
        let json = to_json(&version.config)?;
        tx.execute(
            "INSERT INTO versions (function_name, version, config_json, code_sha256_hex, revision_id, code_size, source_fingerprint)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                name,
                number.to_string(),
                json,
                version.code_sha256_hex,
                version.config.revision_id,
                size_i64(version.config.code_size),
                fingerprint
            ],
        )
        .map_err(StoreError::from)?;
        tx.execute(
            "UPDATE functions SET next_version = ?2 WHERE name = ?1",
            params![name, next + 1],
        )
        .map_err(StoreError::from)?;
        let mut latest_config = latest.config;
        latest_config.revision_id = new_latest_revision.to_string();
        tx.execute(
            "UPDATE versions SET config_json = ?3, revision_id = ?4 WHERE function_name = ?1 AND version = ?2",
            params![name, LATEST, to_json(&latest_config)?, new_latest_revision],
        )
        .map_err(StoreError::from)?;
        tx.commit().map_err(StoreError::from)?;
        Ok(Published {
            version,
            created: true,
        })
    }

    /// Every version of a function, `$LATEST` first and then by number (`None` if the
    /// function does not exist).
    pub fn list_versions(&self, name: &str) -> Result<Option<Vec<StoredFunction>>, StoreError> {
        let conn = self.conn();
        let exists: bool = conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM functions WHERE name = ?1)",
            params![name],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(None);
        }
        let mut stmt = conn.prepare_cached(
            "SELECT config_json, code_sha256_hex FROM versions WHERE function_name = ?1
             ORDER BY CASE WHEN version = ?2 THEN -1 ELSE CAST(version AS INTEGER) END",
        )?;
        let rows = stmt
            .query_map(params![name, LATEST], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        drop(conn);
        rows.into_iter()
            .map(|(json, hex)| decode(name, &json, hex))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Delete one published version. `NotFound` if the function does not exist,
    /// `VersionInUse` if an alias routes to it; a version that does not exist is no error
    /// (`Ok(None)`). Returns the code digests no row references any more.
    pub fn delete_version(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists: bool = tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM functions WHERE name = ?1)",
            params![name],
            |r| r.get(0),
        )?;
        if !exists {
            return Err(StoreError::NotFound);
        }
        let referencing: Vec<String> = {
            let mut stmt = tx.prepare(
                "SELECT name FROM aliases WHERE function_name = ?1
                 AND (function_version = ?2 OR additional_version = ?2) ORDER BY name",
            )?;
            let rows = stmt
                .query_map(params![name, version], |r| r.get(0))?
                .collect::<Result<Vec<_>, _>>()?;
            rows
        };
        if !referencing.is_empty() {
            return Err(StoreError::VersionInUse(referencing));
        }
        let hex: Option<String> = tx
            .query_row(
                "SELECT code_sha256_hex FROM versions WHERE function_name = ?1 AND version = ?2",
                params![name, version],
                |r| r.get(0),
            )
            .optional()?;
        let Some(hex) = hex else {
            return Ok(None);
        };
        tx.execute(
            "DELETE FROM versions WHERE function_name = ?1 AND version = ?2",
            params![name, version],
        )?;
        tx.execute(
            "DELETE FROM provisioned_concurrency WHERE function_name = ?1 AND qualifier = ?2",
            params![name, version],
        )?;
        let orphans = unreferenced(&tx, std::iter::once(hex))?;
        tx.commit()?;
        Ok(Some(orphans))
    }

    /// Create an alias of `function`. `NotFound` if the function does not exist,
    /// `VersionNotFound` if a version it routes to does not, `Exists` if the name is taken.
    pub fn insert_alias(
        &self,
        function: &str,
        alias: &AliasConfiguration,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        require_versions(&tx, function, alias)?;
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO aliases (function_name, name, function_version, additional_version, config_json, revision_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                function,
                alias.name,
                alias.function_version,
                additional_version(alias),
                alias_json(alias)?,
                alias.revision_id
            ],
        )?;
        if inserted == 0 {
            return Err(StoreError::Exists);
        }
        tx.commit()?;
        Ok(())
    }

    /// Replace an alias if its stored RevisionId is still `expected_revision_id`:
    /// `NotFound` if the alias does not exist, `RevisionMismatch`, or `VersionNotFound`.
    pub fn replace_alias(
        &self,
        function: &str,
        alias: &AliasConfiguration,
        expected_revision_id: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: Option<String> = tx
            .query_row(
                "SELECT revision_id FROM aliases WHERE function_name = ?1 AND name = ?2",
                params![function, alias.name],
                |r| r.get(0),
            )
            .optional()?;
        match current {
            None => return Err(StoreError::NotFound),
            Some(r) if r != expected_revision_id => return Err(StoreError::RevisionMismatch),
            Some(_) => {}
        }
        require_versions(&tx, function, alias)?;
        tx.execute(
            "UPDATE aliases SET function_version = ?3, additional_version = ?4, config_json = ?5, revision_id = ?6
             WHERE function_name = ?1 AND name = ?2",
            params![
                function,
                alias.name,
                alias.function_version,
                additional_version(alias),
                alias_json(alias)?,
                alias.revision_id
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// One alias of a function, if it exists.
    pub fn get_alias(
        &self,
        function: &str,
        name: &str,
    ) -> Result<Option<AliasConfiguration>, StoreError> {
        let conn = self.conn();
        let json: Option<String> = conn
            .query_row(
                "SELECT config_json FROM aliases WHERE function_name = ?1 AND name = ?2",
                params![function, name],
                |r| r.get(0),
            )
            .optional()?;
        drop(conn);
        json.map(|j| decode_alias(function, &j)).transpose()
    }

    /// Every alias of a function, by name (`None` if the function does not exist).
    pub fn list_aliases(
        &self,
        function: &str,
    ) -> Result<Option<Vec<AliasConfiguration>>, StoreError> {
        let conn = self.conn();
        let exists: bool = conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM functions WHERE name = ?1)",
            params![function],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(None);
        }
        let mut stmt = conn.prepare_cached(
            "SELECT config_json FROM aliases WHERE function_name = ?1 ORDER BY name",
        )?;
        let rows = stmt
            .query_map(params![function], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        drop(conn);
        rows.iter()
            .map(|j| decode_alias(function, j))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Delete an alias (and its provisioned concurrency configuration); whether it existed.
    pub fn delete_alias(&self, function: &str, name: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "DELETE FROM aliases WHERE function_name = ?1 AND name = ?2",
            params![function, name],
        )?;
        tx.execute(
            "DELETE FROM provisioned_concurrency WHERE function_name = ?1 AND qualifier = ?2",
            params![function, name],
        )?;
        tx.commit()?;
        Ok(n > 0)
    }

    /// A function's reserved concurrency: `None` if the function does not exist,
    /// `Some(None)` if it has none.
    pub fn reserved_concurrency(&self, name: &str) -> Result<Option<Option<u64>>, StoreError> {
        let conn = self.conn();
        let row: Option<Option<i64>> = conn
            .query_row(
                "SELECT reserved_concurrency FROM functions WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?;
        Ok(row.map(|r| r.and_then(|v| u64::try_from(v).ok())))
    }

    /// Every function's reserved concurrency (functions without one are left out).
    pub fn all_reserved_concurrency(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT name, reserved_concurrency FROM functions WHERE reserved_concurrency IS NOT NULL",
        )?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows
            .into_iter()
            .map(|(n, v)| (n, u64::try_from(v).unwrap_or(0)))
            .collect())
    }

    /// Set (`Some`) or remove (`None`) a function's reserved concurrency, atomically with
    /// `check`, which sees the account's bookkeeping. `NotFound` if the function does not
    /// exist.
    pub fn put_reserved_concurrency<E: From<StoreError>>(
        &self,
        name: &str,
        value: Option<u64>,
        check: impl FnOnce(&ConcurrencyView) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let view = concurrency_view(&tx, name, None)?;
        check(&view)?;
        tx.execute(
            "UPDATE functions SET reserved_concurrency = ?2 WHERE name = ?1",
            params![name, value.map(|v| i64::try_from(v).unwrap_or(i64::MAX))],
        )
        .map_err(StoreError::from)?;
        tx.commit().map_err(StoreError::from)?;
        Ok(())
    }

    /// Store a provisioned concurrency configuration (replacing the qualifier's previous one),
    /// atomically with `check`. `NotFound` if the function does not exist.
    pub fn put_provisioned<E: From<StoreError>>(
        &self,
        p: &StoredProvisioned,
        check: impl FnOnce(&ConcurrencyView) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let view = concurrency_view(&tx, &p.function_name, Some(&p.qualifier))?;
        check(&view)?;
        tx.execute(
            "INSERT INTO provisioned_concurrency (function_name, qualifier, requested, last_modified)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (function_name, qualifier) DO UPDATE SET requested = ?3, last_modified = ?4",
            params![
                p.function_name,
                p.qualifier,
                i64::try_from(p.requested).unwrap_or(i64::MAX),
                p.last_modified
            ],
        )
        .map_err(StoreError::from)?;
        tx.commit().map_err(StoreError::from)?;
        Ok(())
    }

    /// One provisioned concurrency configuration, if stored.
    pub fn get_provisioned(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<Option<StoredProvisioned>, StoreError> {
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT requested, last_modified FROM provisioned_concurrency
                 WHERE function_name = ?1 AND qualifier = ?2",
                params![function, qualifier],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
            )
            .optional()?;
        Ok(row.map(|(requested, last_modified)| StoredProvisioned {
            function_name: function.to_string(),
            qualifier: qualifier.to_string(),
            requested: u64::try_from(requested).unwrap_or(0),
            last_modified,
        }))
    }

    /// Provisioned concurrency configurations of one function (`Some(function)`, by
    /// qualifier) or of all functions.
    pub fn list_provisioned(
        &self,
        function: Option<&str>,
    ) -> Result<Vec<StoredProvisioned>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT function_name, qualifier, requested, last_modified FROM provisioned_concurrency
             WHERE ?1 IS NULL OR function_name = ?1 ORDER BY function_name, qualifier",
        )?;
        let rows = stmt
            .query_map(params![function], |r| {
                Ok(StoredProvisioned {
                    function_name: r.get(0)?,
                    qualifier: r.get(1)?,
                    requested: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                    last_modified: r.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Delete a provisioned concurrency configuration; whether it existed.
    pub fn delete_provisioned(&self, function: &str, qualifier: &str) -> Result<bool, StoreError> {
        let conn = self.conn();
        let n = conn.execute(
            "DELETE FROM provisioned_concurrency WHERE function_name = ?1 AND qualifier = ?2",
            params![function, qualifier],
        )?;
        Ok(n > 0)
    }

    /// Remove the blobs (zip and extraction) of `hexes` that no row references. Safe against
    /// a concurrent create that is storing the same blob (see [`Store::pin_code`]).
    pub fn gc_code(&self, hexes: &[String]) -> Result<(), StoreError> {
        if hexes.is_empty() {
            return Ok(());
        }
        let _gate = self.code_gate.write().unwrap_or_else(|p| p.into_inner());
        let still_orphans = {
            let conn = self.conn();
            unreferenced(&conn, hexes.iter().cloned())?
        };
        for hex in still_orphans {
            self.code.remove(&hex)?;
        }
        Ok(())
    }

    /// Code size over all versions and the number of functions.
    pub fn usage(&self) -> Result<Usage, StoreError> {
        let conn = self.conn();
        let (size, count): (i64, i64) = conn.query_row(
            "SELECT (SELECT COALESCE(SUM(code_size), 0) FROM versions), (SELECT COUNT(*) FROM functions)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(Usage {
            total_code_size: u64::try_from(size).unwrap_or(0),
            function_count: u64::try_from(count).unwrap_or(0),
        })
    }

    /// Sum of `CodeSize` over every stored version.
    pub fn code_size_total(&self) -> Result<u64, StoreError> {
        Ok(self.usage()?.total_code_size)
    }

    /// Number of functions.
    pub fn function_count(&self) -> Result<u64, StoreError> {
        Ok(self.usage()?.function_count)
    }
}

/// The asynchronous invocation queue and event invoke configurations.
///
/// What we store, and why: every accepted `Event` invocation, from the moment Invoke answers
/// 202 until its delivery is finished (succeeded, or failed for good with its destinations
/// and dead-letter target enqueued in the same transaction that removes it). The insert runs
/// with `synchronous=FULL`, so an accepted event survives even an OS crash, not only a kill of
/// the process. Nothing marks an event as in flight on disk: after a restart every remaining
/// event is simply due again, which is where duplicates (at-least-once) arise.
///
/// Every write of the queue goes through [`Store::write_queue`] on the queue writer
/// connection, so that one thread (the group commit of `sous-invoke`) can apply the
/// acceptances and the outcomes of deliveries waiting at one moment in one transaction.
impl Store {
    /// Commit an event to the queue, durably.
    pub fn enqueue_event(&self, e: &NewEvent) -> Result<(), StoreError> {
        self.write_queue(&[QueueWrite::Enqueue(e.clone())])
    }

    /// Apply `writes` in one durable transaction (`synchronous=FULL`: one fsync for all of
    /// them) on the queue writer connection, while the main connection keeps serving reads.
    pub fn write_queue(&self, writes: &[QueueWrite]) -> Result<(), StoreError> {
        let mut conn = self.queue_writer.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO async_events (request_id, function_name, qualifier, payload, received_ms, next_attempt_ms, trace_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
            )?;
            let mut delete = tx.prepare_cached("DELETE FROM async_events WHERE id = ?1")?;
            let mut reschedule = tx.prepare_cached(
                "UPDATE async_events SET attempts = ?2, throttles = ?3, next_attempt_ms = ?4 WHERE id = ?1",
            )?;
            let mut enqueue = |e: &NewEvent| {
                insert.execute(params![
                    e.request_id,
                    e.function_name,
                    e.qualifier,
                    e.payload,
                    e.received_ms,
                    e.trace_id
                ])
            };
            for w in writes {
                match w {
                    QueueWrite::Enqueue(e) => {
                        enqueue(e)?;
                    }
                    QueueWrite::Complete { id, follow_ups } => {
                        delete.execute(params![id])?;
                        for e in follow_ups {
                            enqueue(e)?;
                        }
                    }
                    QueueWrite::Reschedule {
                        id,
                        attempts,
                        throttles,
                        next_attempt_ms,
                    } => {
                        reschedule.execute(params![
                            id,
                            i64::from(*attempts),
                            i64::from(*throttles),
                            next_attempt_ms
                        ])?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Copy what the WAL holds into the database without blocking the queue writer
    /// (a passive checkpoint); returns the WAL's size in pages and how many were copied. The
    /// queue writer does not checkpoint on its own, so call this regularly while it writes.
    pub fn checkpoint_queue(&self) -> Result<(i64, i64), StoreError> {
        let conn = self.checkpointer.lock().unwrap_or_else(|p| p.into_inner());
        Ok(conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get(1)?, r.get(2)?))
        })?)
    }

    /// Up to `limit` events due at `now_ms` (oldest due first), leaving out `skip` (events
    /// being delivered).
    pub fn due_events(
        &self,
        now_ms: i64,
        limit: usize,
        skip: &std::collections::HashSet<i64>,
    ) -> Result<Vec<QueuedEvent>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, request_id, function_name, qualifier, payload, received_ms, attempts, throttles, next_attempt_ms, trace_id
             FROM async_events WHERE next_attempt_ms <= ?1 ORDER BY next_attempt_ms, id LIMIT ?2",
        )?;
        let want = i64::try_from(limit + skip.len()).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![now_ms, want], |r| {
                Ok(QueuedEvent {
                    id: r.get(0)?,
                    event: NewEvent {
                        request_id: r.get(1)?,
                        function_name: r.get(2)?,
                        qualifier: r.get(3)?,
                        payload: r.get(4)?,
                        received_ms: r.get(5)?,
                        trace_id: r.get(9)?,
                    },
                    attempts: u32::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
                    throttles: u32::try_from(r.get::<_, i64>(7)?).unwrap_or(0),
                    next_attempt_ms: r.get(8)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows
            .into_iter()
            .filter(|e| !skip.contains(&e.id))
            .take(limit)
            .collect())
    }

    /// The earliest next attempt time of the queue's events, if any.
    pub fn next_due_ms(&self) -> Result<Option<i64>, StoreError> {
        let conn = self.conn();
        Ok(
            conn.query_row("SELECT MIN(next_attempt_ms) FROM async_events", [], |r| {
                r.get(0)
            })?,
        )
    }

    /// Depth of the queue and the age of its oldest event.
    pub fn queue_stats(&self) -> Result<QueueStats, StoreError> {
        let conn = self.conn();
        let (depth, oldest): (i64, Option<i64>) = conn.query_row(
            "SELECT COUNT(*), MIN(received_ms) FROM async_events",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(QueueStats {
            depth: u64::try_from(depth).unwrap_or(0),
            oldest_received_ms: oldest,
        })
    }

    /// Store the event invoke configuration of `(function, qualifier)` (`$LATEST` for an
    /// unqualified one) as JSON. `NotFound` if the function does not exist.
    pub fn put_event_invoke_config(
        &self,
        function: &str,
        qualifier: &str,
        config_json: &str,
    ) -> Result<(), StoreError> {
        let conn = self.conn();
        let changed = conn.execute(
            "INSERT INTO event_invoke_configs (function_name, qualifier, config_json)
             SELECT ?1, ?2, ?3 WHERE EXISTS(SELECT 1 FROM functions WHERE name = ?1)
             ON CONFLICT (function_name, qualifier) DO UPDATE SET config_json = excluded.config_json",
            params![function, qualifier, config_json],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// The stored JSON of an event invoke configuration.
    pub fn get_event_invoke_config(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<Option<String>, StoreError> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                "SELECT config_json FROM event_invoke_configs WHERE function_name = ?1 AND qualifier = ?2",
                params![function, qualifier],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Every event invoke configuration of a function, by qualifier.
    pub fn list_event_invoke_configs(&self, function: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT config_json FROM event_invoke_configs WHERE function_name = ?1 ORDER BY qualifier",
        )?;
        let rows = stmt
            .query_map(params![function], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(rows)
    }

    /// Remove an event invoke configuration; `false` if there was none.
    pub fn delete_event_invoke_config(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<bool, StoreError> {
        let conn = self.conn();
        Ok(conn.execute(
            "DELETE FROM event_invoke_configs WHERE function_name = ?1 AND qualifier = ?2",
            params![function, qualifier],
        )? > 0)
    }
}

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let current = usize::try_from(current)
        .map_err(|_| StoreError::Corrupt(format!("negative schema version {current}")))?;
    if current > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "schema version {current} is newer than this Sous ({}); refusing to open",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(i + 1).unwrap_or(i64::MAX),
        )?;
        tx.commit()?;
        tracing::info!(version = i + 1, "metadata schema migrated");
    }
    Ok(())
}

/// The concurrency bookkeeping around `name`, inside a transaction; `excluded` is a
/// provisioned configuration of `name` left out of `own_provisioned`. `NotFound` if the
/// function does not exist.
fn concurrency_view(
    conn: &Connection,
    name: &str,
    excluded: Option<&str>,
) -> Result<ConcurrencyView, StoreError> {
    let current: Option<Option<i64>> = conn
        .query_row(
            "SELECT reserved_concurrency FROM functions WHERE name = ?1",
            params![name],
            |r| r.get(0),
        )
        .optional()?;
    let Some(current) = current else {
        return Err(StoreError::NotFound);
    };
    let (others_reserved, others_unreserved_provisioned, own_provisioned): (i64, i64, i64) = conn
        .query_row(
        "SELECT
                (SELECT COALESCE(SUM(reserved_concurrency), 0) FROM functions
                  WHERE name <> ?1 AND reserved_concurrency IS NOT NULL),
                (SELECT COALESCE(SUM(p.requested), 0) FROM provisioned_concurrency p
                  JOIN functions f ON f.name = p.function_name
                  WHERE p.function_name <> ?1 AND f.reserved_concurrency IS NULL),
                (SELECT COALESCE(SUM(requested), 0) FROM provisioned_concurrency
                  WHERE function_name = ?1 AND (?2 IS NULL OR qualifier <> ?2))",
        params![name, excluded],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let u = |v: i64| u64::try_from(v).unwrap_or(0);
    Ok(ConcurrencyView {
        current: current.map(u),
        others_reserved: u(others_reserved),
        others_unreserved_provisioned: u(others_unreserved_provisioned),
        own_provisioned: u(own_provisioned),
    })
}

/// Those of `hexes` that no version row references.
fn unreferenced(
    conn: &Connection,
    hexes: impl IntoIterator<Item = String>,
) -> Result<Vec<String>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT EXISTS(SELECT 1 FROM versions WHERE code_sha256_hex = ?1)")?;
    let mut out = Vec::new();
    for hex in hexes {
        let used: bool = stmt.query_row(params![hex], |r| r.get(0))?;
        if !used && !out.contains(&hex) {
            out.push(hex);
        }
    }
    Ok(out)
}

/// Where a version sorts among its function's versions: `$LATEST` first (-1), then by number.
pub fn version_order(version: &str) -> i64 {
    if version == LATEST {
        -1
    } else {
        version.parse().unwrap_or(i64::MAX)
    }
}

/// One version row, read inside a transaction.
fn read_version(
    conn: &Connection,
    name: &str,
    version: &str,
) -> Result<Option<StoredFunction>, StoreError> {
    let row: Option<(String, String)> = conn
        .query_row(
            "SELECT config_json, code_sha256_hex FROM versions WHERE function_name = ?1 AND version = ?2",
            params![name, version],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    row.map(|(json, hex)| decode(name, &json, hex)).transpose()
}

/// What identifies the content of `$LATEST` for publishing: its code and configuration, less
/// the RevisionId (which publishing itself changes).
fn fingerprint(latest: &StoredFunction) -> Result<String, StoreError> {
    let mut config = latest.config.clone();
    config.revision_id = String::new();
    Ok(format!("{}\n{}", latest.code_sha256_hex, to_json(&config)?))
}

/// Fail with `VersionNotFound` unless every version `alias` routes to exists (and `NotFound`
/// unless the function does).
fn require_versions(
    conn: &Connection,
    function: &str,
    alias: &AliasConfiguration,
) -> Result<(), StoreError> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM functions WHERE name = ?1)",
        params![function],
        |r| r.get(0),
    )?;
    if !exists {
        return Err(StoreError::NotFound);
    }
    let mut stmt = conn.prepare_cached(
        "SELECT EXISTS(SELECT 1 FROM versions WHERE function_name = ?1 AND version = ?2)",
    )?;
    for v in alias.versions() {
        let found: bool = stmt.query_row(params![function, v], |r| r.get(0))?;
        if !found {
            return Err(StoreError::VersionNotFound(v.to_string()));
        }
    }
    Ok(())
}

fn additional_version(alias: &AliasConfiguration) -> Option<&str> {
    alias
        .routing_config
        .as_ref()
        .and_then(|r| r.additional())
        .map(|(v, _)| v)
}

fn alias_json(alias: &AliasConfiguration) -> Result<String, StoreError> {
    serde_json::to_string(alias)
        .map_err(|e| StoreError::Corrupt(format!("serialize alias {}: {e}", alias.alias_arn)))
}

fn decode_alias(function: &str, json: &str) -> Result<AliasConfiguration, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("alias of function {function}: {e}")))
}

fn decode(name: &str, json: &str, code_sha256_hex: String) -> Result<StoredFunction, StoreError> {
    let config = serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("configuration of function {name}: {e}")))?;
    Ok(StoredFunction {
        config,
        code_sha256_hex,
    })
}

fn to_json(config: &FunctionConfiguration) -> Result<String, StoreError> {
    serde_json::to_string(config).map_err(|e| {
        StoreError::Corrupt(format!(
            "serialize configuration of {}: {e}",
            config.function_name
        ))
    })
}

fn size_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sous_types::config::{EphemeralStorage, LoggingConfig, TracingConfig};

    fn config(name: &str, revision: &str, size: u64) -> FunctionConfiguration {
        FunctionConfiguration {
            function_name: name.into(),
            function_arn: format!("arn:aws:lambda:us-east-1:000000000000:function:{name}"),
            runtime: Some("provided.al2023".into()),
            role: "arn:aws:iam::000000000000:role/r".into(),
            handler: Some("bootstrap".into()),
            code_size: size,
            description: String::new(),
            timeout: 3,
            memory_size: 128,
            last_modified: "2020-04-10T19:06:32.563+0000".into(),
            code_sha256: "x".into(),
            version: LATEST.into(),
            environment: None,
            tracing_config: TracingConfig {
                mode: Some("PassThrough".into()),
            },
            revision_id: revision.into(),
            dead_letter_config: None,
            state: Some("Active".into()),
            last_update_status: Some("Successful".into()),
            package_type: "Zip".into(),
            architectures: vec!["x86_64".into()],
            ephemeral_storage: EphemeralStorage { size: 512 },
            snap_start: serde_json::json!({"ApplyOn": "None", "OptimizationStatus": "Off"}),
            runtime_version_config: None,
            logging_config: LoggingConfig::default(),
        }
    }

    fn func(name: &str, revision: &str, hex: &str) -> StoredFunction {
        StoredFunction {
            config: config(name, revision, 10),
            code_sha256_hex: hex.into(),
        }
    }

    #[test]
    fn insert_get_and_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let f = func("a", "r1", "aa");
        store.insert_function(&f).unwrap();
        assert!(matches!(store.insert_function(&f), Err(StoreError::Exists)));
        assert_eq!(store.get_function("a", LATEST).unwrap(), Some(f));
        assert_eq!(store.get_function("a", "1").unwrap(), None);
        assert_eq!(store.get_function("b", LATEST).unwrap(), None);
        assert_eq!(store.get_tags("a").unwrap(), Some(BTreeMap::new()));
        assert_eq!(store.get_tags("b").unwrap(), None);
        let tags: BTreeMap<String, String> = [("k".to_string(), "v".to_string())].into();
        store
            .insert_function_with_tags(&func("t", "r", "aa"), &tags)
            .unwrap();
        assert_eq!(store.get_tags("t").unwrap(), Some(tags));
    }

    #[test]
    fn replace_is_compare_and_swap() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.insert_function(&func("a", "r1", "aa")).unwrap();
        store.insert_function(&func("b", "r1", "bb")).unwrap();
        let next = func("a", "r2", "bb");
        assert!(matches!(
            store.replace_function(&next, "r0"),
            Err(StoreError::RevisionMismatch)
        ));
        // "aa" is no longer referenced; "bb" still is.
        assert_eq!(
            store.replace_function(&next, "r1").unwrap(),
            vec!["aa".to_string()]
        );
        assert_eq!(
            store
                .get_function("a", LATEST)
                .unwrap()
                .unwrap()
                .config
                .revision_id,
            "r2"
        );
        assert!(matches!(
            store.replace_function(&func("zz", "r", "x"), "r"),
            Err(StoreError::NotFound)
        ));
    }

    #[test]
    fn list_pages_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for n in ["c", "a", "b", "d"] {
            store.insert_function(&func(n, "r", "h")).unwrap();
        }
        let names = |v: Vec<StoredFunction>| {
            v.into_iter()
                .map(|f| f.config.function_name)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(store.list_functions(None, 2).unwrap()), ["a", "b"]);
        assert_eq!(
            names(store.list_functions(Some("b"), 10).unwrap()),
            ["c", "d"]
        );
        assert!(store.list_functions(Some("d"), 10).unwrap().is_empty());
    }

    #[test]
    fn delete_returns_orphans_and_usage() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.insert_function(&func("a", "r", "shared")).unwrap();
        store.insert_function(&func("b", "r", "shared")).unwrap();
        store.insert_function(&func("c", "r", "own")).unwrap();
        assert_eq!(
            store.usage().unwrap(),
            Usage {
                total_code_size: 30,
                function_count: 3
            }
        );
        assert!(store.delete_function("a").unwrap().is_empty());
        assert_eq!(
            store.delete_function("b").unwrap(),
            vec!["shared".to_string()]
        );
        assert!(matches!(
            store.delete_function("b"),
            Err(StoreError::NotFound)
        ));
        assert_eq!(
            store.usage().unwrap(),
            Usage {
                total_code_size: 10,
                function_count: 1
            }
        );
        assert_eq!(store.function_count().unwrap(), 1);
        assert_eq!(store.code_size_total().unwrap(), 10);
    }

    #[test]
    fn data_persists_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store.insert_function(&func("a", "r1", "aa")).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store
                .get_function("a", LATEST)
                .unwrap()
                .unwrap()
                .config
                .revision_id,
            "r1"
        );
        // Migrations are idempotent.
        drop(store);
        Store::open(dir.path()).unwrap();
    }

    #[test]
    fn corrupt_rows_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.insert_function(&func("a", "r1", "aa")).unwrap();
        store
            .conn()
            .execute("UPDATE versions SET config_json = '{not json'", [])
            .unwrap();
        assert!(matches!(
            store.get_function("a", LATEST),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            store.list_functions(None, 10),
            Err(StoreError::Corrupt(_))
        ));
    }

    fn publish(store: &Store, name: &str, rev: &str) -> Published {
        store
            .publish_version::<StoreError>(
                name,
                rev,
                |_| Ok(()),
                |latest, n| {
                    let mut v = latest.clone();
                    v.config.version = n.to_string();
                    v.config.revision_id = format!("v{n}");
                    v
                },
            )
            .unwrap()
    }

    fn alias(name: &str, primary: &str, extra: Option<&str>) -> AliasConfiguration {
        AliasConfiguration {
            alias_arn: format!("arn:{name}"),
            name: name.into(),
            function_version: primary.into(),
            description: String::new(),
            routing_config: extra.map(|e| sous_types::alias::AliasRoutingConfiguration {
                additional_version_weights: Some([(e.to_string(), 0.5)].into()),
            }),
            revision_id: format!("r-{name}"),
        }
    }

    #[test]
    fn publish_numbers_dedups_and_keeps_code() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.insert_function(&func("a", "r1", "aa")).unwrap();
        let p1 = publish(&store, "a", "l2");
        assert!(p1.created);
        assert_eq!(p1.version.config.version, "1");
        // $LATEST took the new RevisionId; nothing else of it changed.
        let latest = store.get_function("a", LATEST).unwrap().unwrap();
        assert_eq!(latest.config.revision_id, "l2");
        // Unchanged: the same version, and $LATEST keeps its RevisionId.
        let again = publish(&store, "a", "l3");
        assert!(!again.created);
        assert_eq!(again.version.config.version, "1");
        assert_eq!(
            store
                .get_function("a", LATEST)
                .unwrap()
                .unwrap()
                .config
                .revision_id,
            "l2"
        );
        // New code: version 2; the old code stays referenced by version 1.
        let mut next = func("a", "l4", "bb");
        next.config.code_sha256 = "y".into();
        assert!(store.replace_function(&next, "l2").unwrap().is_empty());
        assert_eq!(publish(&store, "a", "l5").version.config.version, "2");
        let listed: Vec<_> = store
            .list_versions("a")
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|v| (v.config.version, v.code_sha256_hex))
            .collect();
        assert_eq!(
            listed,
            [
                ("$LATEST".to_string(), "bb".to_string()),
                ("1".into(), "aa".into()),
                ("2".into(), "bb".into())
            ]
        );
        assert_eq!(store.list_versions("zz").unwrap(), None);
        // A refused precondition publishes nothing.
        let refused = store.publish_version::<StoreError>(
            "a",
            "x",
            |_| Err(StoreError::RevisionMismatch),
            |_, _| unreachable!(),
        );
        assert!(matches!(refused, Err(StoreError::RevisionMismatch)));
        assert!(matches!(
            store.publish_version::<StoreError>("zz", "x", |_| Ok(()), |l, _| l.clone()),
            Err(StoreError::NotFound)
        ));
        // ALL lists every version, by function then version.
        store.insert_function(&func("b", "r", "cc")).unwrap();
        let all: Vec<_> = store
            .list_all_versions(None, 10)
            .unwrap()
            .into_iter()
            .map(|v| format!("{}:{}", v.config.function_name, v.config.version))
            .collect();
        assert_eq!(all, ["a:$LATEST", "a:1", "a:2", "b:$LATEST"]);
        let rest: Vec<_> = store
            .list_all_versions(Some(("a", 1)), 10)
            .unwrap()
            .into_iter()
            .map(|v| format!("{}:{}", v.config.function_name, v.config.version))
            .collect();
        assert_eq!(rest, ["a:2", "b:$LATEST"]);
    }

    #[test]
    fn versions_in_use_by_aliases_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.insert_function(&func("a", "r1", "aa")).unwrap();
        publish(&store, "a", "l2");
        let mut next = func("a", "l3", "bb");
        next.config.code_sha256 = "y".into();
        store.replace_function(&next, "l2").unwrap();
        publish(&store, "a", "l4");

        assert!(matches!(
            store.insert_alias("a", &alias("x", "9", None)),
            Err(StoreError::VersionNotFound(v)) if v == "9"
        ));
        assert!(matches!(
            store.insert_alias("a", &alias("x", "1", Some("9"))),
            Err(StoreError::VersionNotFound(v)) if v == "9"
        ));
        assert!(matches!(
            store.insert_alias("zz", &alias("x", "1", None)),
            Err(StoreError::NotFound)
        ));
        store.insert_alias("a", &alias("live", "1", None)).unwrap();
        store
            .insert_alias("a", &alias("canary", "2", Some("1")))
            .unwrap();
        assert!(matches!(
            store.insert_alias("a", &alias("live", "2", None)),
            Err(StoreError::Exists)
        ));
        match store.delete_version("a", "1") {
            Err(StoreError::VersionInUse(a)) => assert_eq!(a, ["canary", "live"]),
            other => panic!("{other:?}"),
        }
        // Moving the aliases frees version 1; its code "aa" is then unreferenced.
        let mut moved = alias("live", "2", None);
        moved.revision_id = "r2".into();
        assert!(matches!(
            store.replace_alias("a", &moved, "stale"),
            Err(StoreError::RevisionMismatch)
        ));
        store.replace_alias("a", &moved, "r-live").unwrap();
        assert!(store.delete_alias("a", "canary").unwrap());
        assert!(!store.delete_alias("a", "canary").unwrap());
        assert_eq!(
            store.delete_version("a", "1").unwrap(),
            Some(vec!["aa".to_string()])
        );
        assert_eq!(store.delete_version("a", "1").unwrap(), None);
        assert!(matches!(
            store.delete_version("zz", "1"),
            Err(StoreError::NotFound)
        ));
        assert_eq!(store.get_alias("a", "live").unwrap(), Some(moved.clone()));
        assert_eq!(store.list_aliases("a").unwrap(), Some(vec![moved]));
        assert_eq!(store.list_aliases("zz").unwrap(), None);
        // Numbers are never reused.
        let mut next = func("a", "l6", "cc");
        next.config.code_sha256 = "z".into();
        let current = store.get_function("a", LATEST).unwrap().unwrap();
        store
            .replace_function(&next, &current.config.revision_id)
            .unwrap();
        assert_eq!(publish(&store, "a", "l7").version.config.version, "3");
        // Deleting the function deletes its versions and aliases.
        let orphans = store.delete_function("a").unwrap();
        assert_eq!(orphans.len(), 2, "{orphans:?}");
        store.insert_function(&func("a", "r1", "aa")).unwrap();
        assert_eq!(store.list_aliases("a").unwrap(), Some(vec![]));
        assert_eq!(store.list_versions("a").unwrap().unwrap().len(), 1);
    }

    fn ev(rid: &str, at: i64) -> NewEvent {
        NewEvent {
            request_id: rid.into(),
            function_name: "f".into(),
            qualifier: None,
            payload: b"{}".to_vec(),
            received_ms: at,
            trace_id: None,
        }
    }

    #[test]
    fn queue_survives_reopen_and_completes_atomically() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store.enqueue_event(&ev("a", 10)).unwrap();
            store.enqueue_event(&ev("b", 20)).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let none = std::collections::HashSet::new();
        assert!(store.due_events(5, 10, &none).unwrap().is_empty());
        let due = store.due_events(100, 10, &none).unwrap();
        assert_eq!(due.len(), 2);
        assert_eq!(due[0].event.request_id, "a");
        let skip: std::collections::HashSet<i64> = [due[0].id].into();
        let rest = store.due_events(100, 10, &skip).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].event.request_id, "b");
        store
            .write_queue(&[QueueWrite::Reschedule {
                id: due[0].id,
                attempts: 1,
                throttles: 0,
                next_attempt_ms: 500,
            }])
            .unwrap();
        assert_eq!(store.next_due_ms().unwrap(), Some(20));
        let stats = store.queue_stats().unwrap();
        assert_eq!(stats.depth, 2);
        assert_eq!(stats.oldest_received_ms, Some(10));
        store
            .write_queue(&[QueueWrite::Complete {
                id: rest[0].id,
                follow_ups: vec![ev("c", 30)],
            }])
            .unwrap();
        let due = store.due_events(1000, 10, &none).unwrap();
        let ids: Vec<_> = due.iter().map(|e| e.event.request_id.as_str()).collect();
        assert_eq!(ids, ["c", "a"]);
        assert_eq!(due[1].attempts, 1);
    }

    #[test]
    fn checkpoint_queue_copies_what_the_queue_writer_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let events: Vec<_> = (0..2000)
            .map(|i| QueueWrite::Enqueue(ev(&format!("r{i}"), i)))
            .collect();
        store.write_queue(&events).unwrap();
        let (wal, copied) = store.checkpoint_queue().unwrap();
        assert!(wal > 0 && copied == wal, "{wal} {copied}");
        assert_eq!(store.queue_stats().unwrap().depth, 2000);
    }

    #[test]
    fn one_queue_write_batch_mixes_acceptances_and_outcomes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.enqueue_event(&ev("a", 10)).unwrap();
        store.enqueue_event(&ev("b", 10)).unwrap();
        let due = store.due_events(100, 10, &Default::default()).unwrap();
        store
            .write_queue(&[
                QueueWrite::Complete {
                    id: due[0].id,
                    follow_ups: vec![ev("a-destination", 15)],
                },
                QueueWrite::Enqueue(ev("c", 20)),
                QueueWrite::Reschedule {
                    id: due[1].id,
                    attempts: 1,
                    throttles: 0,
                    next_attempt_ms: 30,
                },
            ])
            .unwrap();
        let left = store.due_events(100, 10, &Default::default()).unwrap();
        let ids: Vec<_> = left.iter().map(|e| e.event.request_id.as_str()).collect();
        assert_eq!(ids, ["a-destination", "c", "b"]);
    }

    #[test]
    fn event_invoke_configs_per_qualifier() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(matches!(
            store.put_event_invoke_config("f", LATEST, "{}"),
            Err(StoreError::NotFound)
        ));
        store.insert_function(&func("f", "r1", "aa")).unwrap();
        store
            .put_event_invoke_config("f", LATEST, "{\"a\":1}")
            .unwrap();
        store
            .put_event_invoke_config("f", LATEST, "{\"a\":2}")
            .unwrap();
        store.put_event_invoke_config("f", "live", "{}").unwrap();
        assert_eq!(
            store
                .get_event_invoke_config("f", LATEST)
                .unwrap()
                .as_deref(),
            Some("{\"a\":2}")
        );
        assert_eq!(store.list_event_invoke_configs("f").unwrap().len(), 2);
        assert!(store.delete_event_invoke_config("f", "live").unwrap());
        assert!(!store.delete_event_invoke_config("f", "live").unwrap());
        store.delete_function("f").unwrap();
        assert!(store
            .get_event_invoke_config("f", LATEST)
            .unwrap()
            .is_none());
    }

    #[test]
    fn refuses_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join("sous.db")).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn concurrency_settings_persist_and_see_the_account() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.insert_function(&func("a", "r1", "aa")).unwrap();
        store.insert_function(&func("b", "r1", "bb")).unwrap();
        assert_eq!(store.reserved_concurrency("a").unwrap(), Some(None));
        assert_eq!(store.reserved_concurrency("zz").unwrap(), None);
        store
            .put_reserved_concurrency::<StoreError>("a", Some(7), |v| {
                assert_eq!(v, &ConcurrencyView::default());
                Ok(())
            })
            .unwrap();
        let p = |q: &str, n: u64| StoredProvisioned {
            function_name: "b".into(),
            qualifier: q.into(),
            requested: n,
            last_modified: "t".into(),
        };
        store
            .put_provisioned::<StoreError>(&p("1", 2), |_| Ok(()))
            .unwrap();
        store
            .put_provisioned::<StoreError>(&p("live", 3), |v| {
                assert_eq!(v.own_provisioned, 2);
                assert_eq!(v.others_reserved, 7);
                Ok(())
            })
            .unwrap();
        store
            .put_reserved_concurrency::<StoreError>("a", Some(1), |v| {
                assert_eq!(v.current, Some(7));
                assert_eq!(v.others_unreserved_provisioned, 5);
                Ok(())
            })
            .unwrap();
        assert!(matches!(
            store.put_reserved_concurrency::<StoreError>("zz", Some(1), |_| Ok(())),
            Err(StoreError::NotFound)
        ));
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.reserved_concurrency("a").unwrap(), Some(Some(1)));
        assert_eq!(
            store.all_reserved_concurrency().unwrap(),
            [("a".to_string(), 1)].into()
        );
        assert_eq!(
            store.get_provisioned("b", "live").unwrap(),
            Some(p("live", 3))
        );
        assert_eq!(store.list_provisioned(Some("b")).unwrap().len(), 2);
        assert_eq!(store.list_provisioned(None).unwrap().len(), 2);
        assert!(store.delete_provisioned("b", "1").unwrap());
        assert!(!store.delete_provisioned("b", "1").unwrap());
        store.delete_alias("b", "live").unwrap();
        assert_eq!(store.get_provisioned("b", "live").unwrap(), None);
        store
            .put_provisioned::<StoreError>(&p("1", 2), |_| Ok(()))
            .unwrap();
        store.delete_function("b").unwrap();
        assert!(store.list_provisioned(None).unwrap().is_empty());
    }
}
