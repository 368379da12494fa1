//! The metadata database: opening it, its schema migrations, its connections.
//!
//! What we store, and why: everything a restart must find exactly as the last committed API
//! call left it, in `<data-dir>/sous.db`, one module per resource:
//!
//! | module            | tables                                   | what for                                   |
//! |-------------------|------------------------------------------|--------------------------------------------|
//! | `functions.rs`    | `functions`, `versions` (`$LATEST`)      | configuration and code digest of each function |
//! | `versions.rs`     | `versions` (`N`)                         | published, immutable versions              |
//! | `aliases.rs`      | `aliases`                                | aliases and their weighted routing         |
//! | `concurrency.rs`  | `functions.reserved_concurrency`, `provisioned_concurrency` | concurrency settings to re-apply at start |
//! | `event_invoke.rs` | `event_invoke_configs`                   | retries, maximum age and destinations of async invocations |
//! | `queue.rs`        | `async_events`                           | the durable asynchronous invocation queue  |
//! | `urls.rs`         | `function_urls`                          | function URLs                              |
//! | `apis.rs`         | `http_apis`, `http_api_*`                | HTTP APIs (API Gateway v2 subset)          |
//! | `rules.rs`        | `event_rules`, `event_rule_targets`      | scheduled rules (EventBridge subset)       |
//! | `layers.rs`       | `layers`, `layer_versions`               | layer versions, their policies; merged `/opt` dirs |
//! | `usage.rs`        | (none: computed)                         | GetAccountSettings' `AccountUsage`         |
//!
//! Records are typed on both sides of the store's API; where a record is kept as JSON inside
//! a row (a configuration the API returns as is), it is encoded and decoded here, never by a
//! caller.
//!
//! SQLite runs in WAL mode with `synchronous=NORMAL`: a committed API write survives a
//! process kill (the WAL is written before `COMMIT` returns; only an OS crash or power loss
//! can lose the last transactions), and readers never block the writer. The queue has its
//! own writer connection, whose acceptances are fsynced before Invoke answers (see
//! `queue.rs`).
//!
//! Every transaction that can change what an invocation resolves (a function's configuration
//! or code, its versions, aliases, concurrency, event invoke configurations, URLs) commits
//! through [`Store::commit`], which bumps the [configuration generation](Store::generation)
//! while the transaction still holds the connection: a reader that caches what it read,
//! tagged with the generation it saw *before* reading, knows its copy is current exactly
//! while the generation is unchanged (see `sous-invoke`'s configuration cache).
//!
//! Calls are blocking (SQLite, and the code store's file system work): async code calls them
//! through [`Store::run`], which runs them on Tokio's blocking pool.
//!
//! Migrations are numbered by `PRAGMA user_version` and applied idempotently at open, so any
//! earlier data dir opens with the current schema.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, Transaction};

use crate::code::{CodeError, CodeStore};

// Paths callers have used since these lived here.
pub use crate::concurrency::{ConcurrencyView, StoredProvisioned};
pub use crate::functions::{version_order, StoredFunction, LATEST};
pub use crate::queue::{NewEvent, QueueStats, QueueWrite, QueuedEvent};
pub use crate::usage::Usage;
pub use crate::versions::Published;

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
    #[error("fsync the queue's WAL {path}: {source}")]
    Sync {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the store's blocking pool is shutting down")]
    Unavailable,
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
    // 8: layers, their versions and policies (see `layers.rs`).
    crate::layers::MIGRATION,
];

/// The metadata database and the code blob store of one data dir.
pub struct Store {
    conn: Mutex<Connection>,
    /// A second connection, the only one that writes the queue (`synchronous=NORMAL`, with an
    /// fsync of the WAL by [`Store::sync_queue`] where an acceptance needs one): the main
    /// connection goes on reading meanwhile, and the two never wait for each other's write
    /// lock over queue traffic.
    pub(crate) queue_writer: Mutex<Connection>,
    /// The WAL file the queue writer appends to, fsynced by [`Store::sync_queue`].
    pub(crate) wal_path: PathBuf,
    /// A third connection, for [`Store::checkpoint_queue`].
    pub(crate) checkpointer: Mutex<Connection>,
    code: CodeStore,
    /// Held shared while a blob is written and the row referencing it is committed; held
    /// exclusively by [`Store::gc_code`], so a blob is never removed between the two.
    pub(crate) code_gate: RwLock<()>,
    /// Bumped by [`Store::commit`] inside every configuration write (see the module docs).
    generation: AtomicU64,
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
        // `NORMAL`: a commit writes the WAL (so it survives a kill of the process) but does
        // not fsync it; the group commit fsyncs it (`Store::sync_queue`) before Invoke answers
        // an acceptance, beside the writer, which meanwhile commits delivery outcomes at once.
        writer.pragma_update(None, "synchronous", "NORMAL")?;
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
        let store = Store {
            queue_writer: Mutex::new(writer),
            wal_path: data_dir.join("sous.db-wal"),
            checkpointer: Mutex::new(checkpointer),
            conn: Mutex::new(conn),
            code,
            code_gate: RwLock::new(()),
            generation: AtomicU64::new(0),
        };
        // Merged layer dirs an interrupted run left half-made, or whose layers are gone.
        store.gc_opt_dirs()?;
        Ok(store)
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

    /// Commit a transaction that may change what an invocation resolves, bumping the
    /// configuration generation first, while the transaction still holds the connection (a
    /// commit that then fails only costs readers a needless reload).
    pub(crate) fn commit(&self, tx: Transaction<'_>) -> Result<(), StoreError> {
        self.generation.fetch_add(1, Ordering::SeqCst);
        tx.commit()?;
        Ok(())
    }

    /// The configuration generation: it changes with every committed write that can change
    /// what an invocation of any function resolves (configuration, code, versions, aliases,
    /// concurrency, event invoke configurations, URLs). Read it *before* reading what you
    /// cache; the copy is current while the generation has not changed.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Run blocking store work (`f`, given the store) on Tokio's blocking pool, so that async
    /// tasks never wait for SQLite or the file system on a worker thread:
    ///
    /// ```ignore
    /// let config = store.run(move |s| s.get_function(&name, LATEST)).await?;
    /// ```
    ///
    /// `E` is the caller's error type (anything a [`StoreError`] converts into), so a closure
    /// may do several store calls and its own checks. A panic in `f` is resumed in the caller.
    /// Must be called inside a Tokio runtime.
    pub async fn run<T, E, F>(self: &Arc<Self>, f: F) -> Result<T, E>
    where
        F: FnOnce(&Store) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let store = Arc::clone(self);
        match tokio::task::spawn_blocking(move || f(&store)).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(StoreError::Unavailable.into()),
        }
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

pub(crate) fn size_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::LATEST;
    use crate::test_support::*;

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
    fn every_configuration_write_bumps_the_generation_and_nothing_else_does() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut seen = store.generation();
        let mut bumped = |store: &Store, what: &str| {
            let now = store.generation();
            assert!(now > seen, "{what} did not bump the generation");
            seen = now;
        };
        store.insert_function(&func("a", "r1", "aa")).unwrap();
        bumped(&store, "insert_function");
        store
            .replace_function(&func("a", "r2", "aa"), "r1")
            .unwrap();
        bumped(&store, "replace_function");
        publish(&store, "a", "r3");
        bumped(&store, "publish_version");
        store.insert_alias("a", &alias("live", "1", None)).unwrap();
        bumped(&store, "insert_alias");
        let mut moved = alias("live", LATEST, None);
        moved.revision_id = "x".into();
        store.replace_alias("a", &moved, "r-live").unwrap();
        bumped(&store, "replace_alias");
        store
            .set_event_invoke_config("a", LATEST, &Default::default())
            .unwrap();
        bumped(&store, "set_event_invoke_config");
        store
            .put_reserved_concurrency::<StoreError>("a", Some(3), |_| Ok(()))
            .unwrap();
        bumped(&store, "put_reserved_concurrency");
        store.delete_alias("a", "live").unwrap();
        bumped(&store, "delete_alias");
        store.delete_version("a", "1").unwrap();
        bumped(&store, "delete_version");
        store.delete_function("a").unwrap();
        bumped(&store, "delete_function");

        // Reads, refused writes and the queue leave it alone.
        let before = store.generation();
        store.get_function("a", LATEST).unwrap();
        assert!(store
            .replace_function(&func("a", "r9", "aa"), "r1")
            .is_err());
        assert_eq!(store.generation(), before);
        store.insert_function(&func("b", "r1", "aa")).unwrap();
        let before = store.generation();
        assert!(matches!(
            store.insert_function(&func("b", "r1", "aa")),
            Err(StoreError::Exists)
        ));
        store.enqueue_event(&ev("q", 1)).unwrap();
        assert_eq!(store.generation(), before);
    }

    #[tokio::test]
    async fn run_moves_the_call_to_the_blocking_pool() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let f = func("a", "r1", "aa");
        let stored = f.clone();
        store
            .run(move |s| s.insert_function(&stored))
            .await
            .unwrap();
        let got = store.run(|s| s.get_function("a", LATEST)).await.unwrap();
        assert_eq!(got, Some(f));
        // The caller's own error type.
        #[derive(Debug)]
        struct Mine(StoreError);
        impl From<StoreError> for Mine {
            fn from(e: StoreError) -> Self {
                Mine(e)
            }
        }
        let e = store
            .run(|s| -> Result<(), Mine> {
                s.insert_function(&func("a", "r1", "aa"))?;
                Ok(())
            })
            .await
            .unwrap_err();
        assert!(matches!(e, Mine(StoreError::Exists)));
    }
}
