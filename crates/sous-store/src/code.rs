//! The content-addressed code blob store and its extraction cache.
//!
//! What we store, and why: every uploaded deployment package once, as `code/<sha256>.zip`, so
//! identical packages share one blob and `CodeSha256` is the file's name; and each package
//! extracted once, as `extract/<sha256>/`, so a cold start never unzips.
//!
//! A package is validated completely while it is extracted, before anything becomes visible:
//! names that are absolute or contain `..`, special files, symlinks that resolve outside the
//! package (following other symlinks of the package) and more than 250 MB of actually
//! decompressed bytes are all refused with Lambda's `InvalidParameterValueException`.
//! Extraction writes into `extract/.tmp-*` and renames the finished tree into place; the blob
//! is written to `code/.tmp-*`, fsynced and renamed. A failed upload leaves nothing behind, and
//! [`CodeStore::open`] removes temp entries an interrupted run left.
//!
//! Inside the temp tree, regular files and directories are written first and symlinks are
//! created last, so no write can ever pass through a symlink; an entry below a symlink entry is
//! refused.
//!
//! Extraction costs what the package holds, not a fixed price per file (issue 14): a file is
//! one `open` (with its final mode), its writes and a `close`, written by several threads
//! from a plan made of the central directory; each directory is created once; nothing is
//! fsynced file by file. [`CodeStore::put_zip_within`] validates a package without writing
//! it, stores the blob, and answers when the extraction is done or a wait has passed (the
//! API then shows the function `Pending`). The blob is the durable copy; the extraction is a cache
//! of it, flushed in the background by one `syncfs` after it is published (flushing 100,000
//! small files costs seconds the client need not wait for). Until that flush is done a marker,
//! `extract-unsynced/<sha>-<n>`, made durable before the rename, says the extraction may be
//! incomplete after a crash: [`CodeStore::open`] deletes such extractions, and
//! [`CodeStore::extracted_dir`] extracts them again from the blob when they are next needed.
//! A package of more than [`PACKAGE_ENTRIES_MAX`] entries (a Sous limit: Lambda documents
//! none) is refused before anything is written. The disk an extraction really takes (its
//! blocks and inodes, which for many small files far exceed the bytes Lambda counts) is logged
//! and reported in [`StoredCode`]; the 250 MB limit counts decompressed bytes, as Lambda's does.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Cursor, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use sous_types::limits::{PACKAGE_ENTRIES_MAX, UNZIPPED_MAX_BYTES, ZIPPED_MAX_BYTES};
use sous_types::{ErrorCode, LambdaError};

/// AWS's message for bytes that are not a readable zip.
const NOT_A_ZIP: &str =
    "Could not unzip uploaded file. Please check your file, then try to upload again.";
/// AWS's message for a zip without entries.
const EMPTY_ZIP: &str = "Uploaded file must be a non-empty zip";
/// Prefix of every temp entry in `code/` and `extract/`.
const TMP_PREFIX: &str = ".tmp-";
/// Longest symlink target we accept (Linux `PATH_MAX`).
const SYMLINK_TARGET_MAX: u64 = 4096;
/// Symlinks followed while resolving one target before we call it a loop (Linux's limit).
const SYMLINK_HOPS_MAX: usize = 40;

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

/// A package in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCode {
    /// Lowercase hex of the zip's SHA-256: the blob's and the extraction's name.
    pub sha256_hex: String,
    /// base64 (standard, padded) of the raw SHA-256 digest: Lambda's `CodeSha256`.
    pub sha256_b64: String,
    /// Size of the zip in bytes: Lambda's `CodeSize`.
    pub size: u64,
    /// Bytes of the extracted package: regular files' lengths plus symlinks' target lengths
    /// (what Lambda's 250 MB limit counts).
    pub unzipped_size: u64,
    /// Disk the extraction takes: its files', directories' and symlinks' allocated blocks
    /// (`st_blocks` × 512). Each non-empty file takes at least one block.
    pub disk_bytes: u64,
    /// Inodes of the extraction (its files, directories and symlinks, the root included).
    pub inodes: u64,
}

/// What one extraction wrote, as counted while writing it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extracted {
    /// Entries of the zip (files, directories, symlinks; duplicates counted each time).
    pub entries: u64,
    /// Decompressed bytes: regular files' lengths plus symlinks' target lengths.
    pub unzipped_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    /// The bytes are not a zip we can read (or an entry's data is corrupt or encrypted).
    #[error("not a zip: {reason}")]
    NotAZip { reason: String },
    /// A zip without a single entry.
    #[error("empty zip")]
    EmptyZip,
    /// An entry that would write outside the package, or one we do not create.
    #[error("unsafe zip entry {name:?}: {reason}")]
    UnsafeEntry { name: String, reason: &'static str },
    /// More than [`PACKAGE_ENTRIES_MAX`] entries in the zip's central directory.
    #[error("{entries} entries exceed the limit of {PACKAGE_ENTRIES_MAX}")]
    TooManyEntries { entries: u64 },
    /// More than [`UNZIPPED_MAX_BYTES`] decompressed (counted, not declared).
    #[error("unzipped size exceeds {UNZIPPED_MAX_BYTES} bytes")]
    UnzippedTooLarge,
    /// A zip of more than [`ZIPPED_MAX_BYTES`].
    #[error("zipped size {size} exceeds {ZIPPED_MAX_BYTES} bytes")]
    ZippedTooLarge { size: u64 },
    /// A malformed sha256 hex handed to the store (a caller bug, never user input).
    #[error("invalid code sha256 {0:?}")]
    InvalidSha(String),
    /// The blob for a sha is not in the store.
    #[error("code blob {0} is missing")]
    MissingBlob(String),
    /// The blob on disk no longer hashes to its name.
    #[error("code blob {0} is corrupt: its content hashes to {1}")]
    CorruptBlob(String, String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

impl CodeError {
    /// The error a Lambda client sees.
    pub fn to_lambda_error(&self) -> LambdaError {
        match self {
            Self::NotAZip { .. } => LambdaError::invalid_parameter(NOT_A_ZIP),
            Self::EmptyZip => LambdaError::invalid_parameter(EMPTY_ZIP),
            Self::UnsafeEntry { name, reason } => LambdaError::invalid_parameter(format!(
                "Could not unzip uploaded file. Entry {name:?} is not allowed: {reason}."
            )),
            Self::TooManyEntries { entries } => LambdaError::invalid_parameter(format!(
                "Could not unzip uploaded file. The package has {entries} entries; \
                 this server accepts at most {PACKAGE_ENTRIES_MAX}."
            )),
            Self::UnzippedTooLarge => LambdaError::invalid_parameter(format!(
                "Unzipped size must be smaller than {UNZIPPED_MAX_BYTES} bytes"
            )),
            Self::ZippedTooLarge { .. } => LambdaError::new(
                ErrorCode::RequestEntityTooLargeException,
                format!("Zipped size must be smaller than {ZIPPED_MAX_BYTES} bytes"),
            ),
            Self::InvalidSha(_)
            | Self::MissingBlob(_)
            | Self::CorruptBlob(..)
            | Self::Io { .. } => LambdaError::service(format!("code store: {self}")),
        }
    }
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> CodeError {
    let context = context.into();
    move |source| CodeError::Io { context, source }
}

fn unsafe_entry(name: &str, reason: &'static str) -> CodeError {
    CodeError::UnsafeEntry {
        name: name.to_owned(),
        reason,
    }
}

/// What [`CodeStore::put_zip_within`] did with a package.
#[derive(Debug)]
pub enum Put {
    /// Validated, stored and extracted.
    Ready(StoredCode),
    /// Validated and stored; its extraction goes on (`disk_bytes` and `inodes` are 0 until
    /// it is done).
    Extracting(StoredCode, Extraction),
}

/// An extraction going on in the background.
#[derive(Debug)]
pub struct Extraction {
    outcome: mpsc::Receiver<Result<Usage, CodeError>>,
}

impl Extraction {
    /// Block until the extraction is done; its error, if it failed.
    pub fn wait(self) -> Result<(), CodeError> {
        match self.outcome.recv() {
            Ok(result) => result.map(|_| ()),
            Err(_) => Err(Self::vanished()),
        }
    }

    fn vanished() -> CodeError {
        io_err("extract code")(io::Error::other(
            "the extraction thread ended without an answer",
        ))
    }
}

/// The code blob store and extraction cache under one data dir.
#[derive(Debug, Clone)]
pub struct CodeStore {
    code_dir: PathBuf,
    extract_dir: PathBuf,
    /// Markers of extractions whose flush has not finished (see the module docs).
    unsynced_dir: PathBuf,
}

impl CodeStore {
    /// `data_dir/code/<hex>.zip` blobs, `data_dir/extract/<hex>/` extracted packages; creates
    /// the dirs; removes leftover temp entries from an interrupted earlier run, and the
    /// extractions that run had not flushed yet (they are extracted again when needed).
    pub fn open(data_dir: &Path) -> Result<CodeStore, CodeError> {
        let store = CodeStore {
            code_dir: data_dir.join("code"),
            extract_dir: data_dir.join("extract"),
            unsynced_dir: data_dir.join("extract-unsynced"),
        };
        for dir in [&store.code_dir, &store.extract_dir, &store.unsynced_dir] {
            fs::create_dir_all(dir)
                .map_err(io_err(format!("open code store: create {}", dir.display())))?;
            remove_leftover_temps(dir)?;
        }
        store.discard_unsynced()?;
        Ok(store)
    }

    /// Delete every extraction with a marker: its contents may not have reached the disk.
    fn discard_unsynced(&self) -> Result<(), CodeError> {
        let context = || format!("open code store: read {}", self.unsynced_dir.display());
        for entry in fs::read_dir(&self.unsynced_dir).map_err(io_err(context()))? {
            let entry = entry.map_err(io_err(context()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(sha) = name.get(..64).filter(|sha| check_sha(sha).is_ok()) {
                tracing::warn!(sha256 = %sha,
                    "discarding a code extraction an interrupted run had not flushed; it is extracted again when needed");
                self.remove_extraction(&self.extract_dir.join(sha))?;
            }
            fs::remove_file(entry.path()).map_err(io_err(format!(
                "open code store: remove {}",
                entry.path().display()
            )))?;
        }
        Ok(())
    }

    /// Validate the zip fully and extract it into the cache, then store the blob; idempotent
    /// for identical bytes (same sha → reuse). On any failure nothing is left behind: no
    /// blob, no extract dir, no temp dir, nothing written outside the temp extraction dir.
    pub fn put_zip(&self, bytes: &[u8]) -> Result<StoredCode, CodeError> {
        self.put_zip_max(bytes, ZIPPED_MAX_BYTES)
    }

    /// [`CodeStore::put_zip`] with another cap on the zipped size: a package fetched from S3
    /// is not bound by the 50 MB of a direct upload (its fetch has its own cap), only by
    /// everything else `put_zip` checks (the unzipped size above all).
    pub fn put_zip_max(&self, bytes: &[u8], max_zipped: u64) -> Result<StoredCode, CodeError> {
        let size = bytes.len() as u64;
        if size > max_zipped {
            return Err(CodeError::ZippedTooLarge { size });
        }
        self.put_hashed(bytes, &Sha256::digest(bytes))
    }

    /// [`CodeStore::put_zip_max`] after the size check, for bytes whose SHA-256 is `digest`.
    fn put_hashed(&self, bytes: &[u8], digest: &[u8]) -> Result<StoredCode, CodeError> {
        let size = bytes.len() as u64;
        let sha256_hex = hex::encode(digest);
        let sha256_b64 = base64_standard(digest);
        let blob = self.zip_path(&sha256_hex);
        let dir = self.extract_dir.join(&sha256_hex);

        // Identical bytes were validated when they were first stored: reuse what is there.
        let (created_dir, usage) = if dir.is_dir() {
            (None, None)
        } else {
            let (created, usage) = self.extract_into_cache(bytes, &sha256_hex)?;
            (created, Some(usage))
        };
        let finish = || -> Result<Usage, CodeError> {
            let usage = match usage {
                Some(usage) => usage,
                None => tree_usage(&dir)?,
            };
            if !blob.is_file() {
                self.write_blob(bytes, &sha256_hex)?;
            }
            Ok(usage)
        };
        match finish() {
            Ok(usage) => Ok(StoredCode {
                sha256_hex,
                sha256_b64,
                size,
                unzipped_size: usage.unzipped_bytes,
                disk_bytes: usage.disk_bytes,
                inodes: usage.inodes,
            }),
            Err(e) => {
                if let Some(created) = created_dir {
                    // Leave nothing behind: the extraction has no blob to back it.
                    if let Err(cleanup) = self.remove_extraction(&created) {
                        tracing::warn!(sha256 = %sha256_hex, error = %cleanup,
                            "put code: remove extraction after failed blob write");
                    }
                }
                Err(e)
            }
        }
    }

    /// [`CodeStore::put_zip`], answering within about `wait`: the package is validated
    /// completely (every entry decompressed and counted, nothing written) and its blob stored
    /// first; then it is extracted on a thread of its own. When that takes longer than
    /// `wait` (a package of very many files on a slow file system), the answer is
    /// [`Put::Extracting`] and the extraction goes on; its outcome is [`Extraction::wait`]. A
    /// zero `wait` always answers `Extracting`.
    /// Validation errors are answered before anything is stored, as with `put_zip`.
    pub fn put_zip_within(&self, bytes: &[u8], wait: Duration) -> Result<Put, CodeError> {
        self.put_zip_within_max(bytes, wait, ZIPPED_MAX_BYTES)
    }

    /// [`CodeStore::put_zip_within`] with another cap on the zipped size (see
    /// [`CodeStore::put_zip_max`]).
    pub fn put_zip_within_max(
        &self,
        bytes: &[u8],
        wait: Duration,
        max_zipped: u64,
    ) -> Result<Put, CodeError> {
        let size = bytes.len() as u64;
        if size > max_zipped {
            return Err(CodeError::ZippedTooLarge { size });
        }
        let digest = Sha256::digest(bytes);
        let sha256_hex = hex::encode(digest);
        if self.extract_dir.join(&sha256_hex).is_dir() {
            return self.put_hashed(bytes, &digest).map(Put::Ready);
        }
        let checked = validate_zip(bytes)?;
        let blob = self.zip_path(&sha256_hex);
        let wrote_blob = !blob.is_file();
        if wrote_blob {
            self.write_blob(bytes, &sha256_hex)?;
        }
        let (done, outcome) = mpsc::channel();
        let store = self.clone();
        let owned = bytes.to_vec();
        let hex_owned = sha256_hex.clone();
        let extract = move || {
            let result = store
                .extract_into_cache(&owned, &hex_owned)
                .map(|(_, usage)| usage);
            let _ = done.send(result);
        };
        let spawned = std::thread::Builder::new()
            .name("sous-extract".into())
            .spawn(extract);
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "start an extraction thread; extracting on this one");
            return self.put_hashed(bytes, &digest).map(Put::Ready);
        }
        let stored = |usage: Usage| StoredCode {
            sha256_b64: base64_standard(&digest),
            sha256_hex: sha256_hex.clone(),
            size,
            unzipped_size: usage.unzipped_bytes,
            disk_bytes: usage.disk_bytes,
            inodes: usage.inodes,
        };
        // A zero wait never waits (and so always answers `Extracting`).
        let answer = if wait.is_zero() {
            Err(mpsc::RecvTimeoutError::Timeout)
        } else {
            outcome.recv_timeout(wait)
        };
        match answer {
            Ok(Ok(usage)) => Ok(Put::Ready(stored(usage))),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                tracing::info!(sha256 = %sha256_hex, entries = checked.entries,
                    "code package validated and stored; its extraction goes on in the background");
                let usage = Usage {
                    unzipped_bytes: checked.unzipped_bytes,
                    ..Usage::default()
                };
                Ok(Put::Extracting(stored(usage), Extraction { outcome }))
            }
            Ok(Err(e)) => {
                if wrote_blob {
                    if let Err(cleanup) = self.remove(&sha256_hex) {
                        tracing::warn!(sha256 = %sha256_hex, error = %cleanup,
                            "put code: remove the blob after a failed extraction");
                    }
                }
                Err(e)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(Extraction::vanished()),
        }
    }

    /// Where the blob of `sha256_hex` lives (whether or not it exists).
    pub fn zip_path(&self, sha256_hex: &str) -> PathBuf {
        self.code_dir.join(format!("{sha256_hex}.zip"))
    }

    /// The extracted package dir; re-extracts from the blob if the cache entry is missing
    /// (e.g. deleted by an operator).
    pub fn extracted_dir(&self, sha256_hex: &str) -> Result<PathBuf, CodeError> {
        check_sha(sha256_hex)?;
        let dir = self.extract_dir.join(sha256_hex);
        if dir.is_dir() {
            return Ok(dir);
        }
        let blob = self.zip_path(sha256_hex);
        let bytes = match fs::read(&blob) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(CodeError::MissingBlob(sha256_hex.to_owned()))
            }
            Err(e) => {
                return Err(io_err(format!("re-extract code: read {}", blob.display()))(
                    e,
                ))
            }
        };
        let actual = hex::encode(Sha256::digest(&bytes));
        if actual != sha256_hex {
            return Err(CodeError::CorruptBlob(sha256_hex.to_owned(), actual));
        }
        tracing::info!(sha256 = %sha256_hex, "re-extracting code package missing from the cache");
        self.extract_into_cache(&bytes, sha256_hex)?;
        Ok(dir)
    }

    /// Delete blob and extraction (called when no function version references it any more).
    /// Removing what is already gone is not an error.
    pub fn remove(&self, sha256_hex: &str) -> Result<(), CodeError> {
        check_sha(sha256_hex)?;
        let blob = self.zip_path(sha256_hex);
        match fs::remove_file(&blob) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(format!("remove code: delete {}", blob.display()))(e)),
        }
        self.remove_extraction(&self.extract_dir.join(sha256_hex))
    }

    /// Extract `bytes` into `extract/<sha>/`. Returns the dir if this call created it, `None`
    /// if a concurrent call got there first, and what the extraction takes.
    fn extract_into_cache(
        &self,
        bytes: &[u8],
        sha256_hex: &str,
    ) -> Result<(Option<PathBuf>, Usage), CodeError> {
        let started = Instant::now();
        let tmp = TempPath::create_dir(&self.extract_dir)?;
        let extracted = extract_zip(bytes, tmp.path())?;
        let written = started.elapsed();
        let usage = tree_usage(tmp.path())?;
        tracing::info!(
            sha256 = %sha256_hex,
            entries = extracted.entries,
            unzipped_bytes = usage.unzipped_bytes,
            disk_bytes = usage.disk_bytes,
            inodes = usage.inodes,
            zipped_bytes = bytes.len(),
            write_ms = written.as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            "extracted code package"
        );
        // The marker is durable before the extraction is published, and removed once the
        // extraction is flushed.
        let marker = self
            .unsynced_dir
            .join(format!("{sha256_hex}-{}", temp_name()));
        File::create(&marker)
            .map_err(io_err(format!("extract code: create {}", marker.display())))?;
        let marker = TempPath {
            path: marker,
            armed: true,
        };
        sync_dir(&self.unsynced_dir)?;
        let dir = self.extract_dir.join(sha256_hex);
        match fs::rename(tmp.path(), &dir) {
            Ok(()) => {}
            // Another put of the same bytes finished first; ours (and its marker) is dropped.
            Err(_) if dir.is_dir() => return Ok((None, usage)),
            Err(e) => {
                return Err(io_err(format!(
                    "extract code: rename into {}",
                    dir.display()
                ))(e))
            }
        }
        tmp.disarm();
        sync_dir(&self.extract_dir)?;
        let marker_path = marker.path.clone();
        marker.disarm();
        flush_in_background(self.extract_dir.clone(), marker_path);
        Ok((Some(dir), usage))
    }

    fn write_blob(&self, bytes: &[u8], sha256_hex: &str) -> Result<(), CodeError> {
        let (tmp, mut file) = TempPath::create_file(&self.code_dir)?;
        file.write_all(bytes)
            .map_err(io_err("store code: write blob"))?;
        file.sync_all().map_err(io_err("store code: fsync blob"))?;
        drop(file);
        let blob = self.zip_path(sha256_hex);
        fs::rename(tmp.path(), &blob).map_err(io_err(format!(
            "store code: rename blob to {}",
            blob.display()
        )))?;
        tmp.disarm();
        sync_dir(&self.code_dir)
    }

    /// Remove an extraction: first renamed away, so a half-deleted tree is never mistaken for
    /// a complete one.
    fn remove_extraction(&self, dir: &Path) -> Result<(), CodeError> {
        let doomed = self.extract_dir.join(temp_name());
        match fs::rename(dir, &doomed) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(io_err(format!(
                    "remove code: rename {} away",
                    dir.display()
                ))(e))
            }
        }
        fs::remove_dir_all(&doomed)
            .map_err(io_err(format!("remove code: delete {}", doomed.display())))
    }
}

/// A temp file or dir that is removed when dropped, unless disarmed after its rename.
struct TempPath {
    path: PathBuf,
    armed: bool,
}

impl TempPath {
    fn create_dir(parent: &Path) -> Result<TempPath, CodeError> {
        loop {
            let path = parent.join(temp_name());
            match fs::DirBuilder::new().mode(0o755).create(&path) {
                Ok(()) => {
                    let tmp = TempPath { path, armed: true };
                    set_mode(tmp.path(), 0o755, "extract code: chmod package root")?;
                    return Ok(tmp);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(io_err(format!(
                        "extract code: create temp dir in {}",
                        parent.display()
                    ))(e))
                }
            }
        }
    }

    fn create_file(parent: &Path) -> Result<(TempPath, File), CodeError> {
        loop {
            let path = parent.join(temp_name());
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&path)
            {
                Ok(file) => return Ok((TempPath { path, armed: true }, file)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(io_err(format!(
                        "store code: create temp file in {}",
                        parent.display()
                    ))(e))
                }
            }
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let result = match fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.is_dir() => fs::remove_dir_all(&self.path),
            Ok(_) => fs::remove_file(&self.path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(path = %self.path.display(), error = %e, "remove temp code entry");
        }
    }
}

/// `.tmp-<pid>-<nanos>-<counter>`: unique within this process, unlikely across processes, and
/// `create_new` / `create_dir` retry on the rare collision.
fn temp_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{TMP_PREFIX}{}-{nanos:x}-{n}", std::process::id())
}

fn remove_leftover_temps(dir: &Path) -> Result<(), CodeError> {
    let context = || format!("open code store: clean temp entries in {}", dir.display());
    for entry in fs::read_dir(dir).map_err(io_err(context()))? {
        let entry = entry.map_err(io_err(context()))?;
        if !entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(io_err(context()))?;
        let removed = if kind.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        removed.map_err(io_err(format!(
            "open code store: remove {}",
            path.display()
        )))?;
        tracing::info!(path = %path.display(), "removed temp entry left by an interrupted run");
    }
    Ok(())
}

fn check_sha(sha256_hex: &str) -> Result<(), CodeError> {
    let ok = sha256_hex.len() == 64
        && sha256_hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(CodeError::InvalidSha(sha256_hex.to_owned()))
    }
}

fn sync_dir(dir: &Path) -> Result<(), CodeError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(format!("fsync {}", dir.display())))
}

/// Flush the file system holding `dir` (all of it: one `syncfs`, instead of an fsync per
/// file of a package).
fn sync_filesystem(dir: &Path) -> Result<(), CodeError> {
    let context = || format!("extract code: syncfs {}", dir.display());
    let d = File::open(dir).map_err(io_err(context()))?;
    nix::unistd::syncfs(&d).map_err(|e| io_err(context())(e.into()))
}

/// Flush the extractions on a thread of its own, then remove `marker`. If the flush fails
/// (or the thread cannot start) the marker stays, and the next start extracts the package
/// again.
fn flush_in_background(extract_dir: PathBuf, marker: PathBuf) {
    let flush = move || {
        let started = Instant::now();
        let flushed = sync_filesystem(&extract_dir).and_then(|()| {
            fs::remove_file(&marker).map_err(io_err(format!("remove {}", marker.display())))
        });
        match flushed {
            Ok(()) => tracing::debug!(
                ms = started.elapsed().as_millis() as u64,
                "flushed code extraction"
            ),
            Err(e) => tracing::warn!(error = %e,
                "flush code extraction; it is extracted again at the next start"),
        }
    };
    let spawned = std::thread::Builder::new()
        .name("sous-code-flush".into())
        .spawn(flush);
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "start the code flush thread; the extraction is extracted again at the next start");
    }
}

fn set_mode(path: &Path, mode: u32, context: &str) -> Result<(), CodeError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err(context))
}

/// The process's umask, from `/proc/self/status` (Linux 4.7 and later: reading it this way
/// does not change it, unlike `umask(2)`); `None` when unknown.
fn current_umask() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let value = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(value.trim(), 8).ok()
}

/// What an extracted tree takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Usage {
    /// Regular files' lengths plus symlinks' target lengths.
    unzipped_bytes: u64,
    /// Allocated blocks of every inode below the root and of the root, in bytes.
    disk_bytes: u64,
    /// Inodes, the root included.
    inodes: u64,
}

/// Measure an extracted tree (one `lstat` per entry; the directory listing's types tell
/// directories apart).
fn tree_usage(dir: &Path) -> Result<Usage, CodeError> {
    let root = fs::symlink_metadata(dir)
        .map_err(io_err(format!("measure code: stat {}", dir.display())))?;
    let mut usage = Usage {
        unzipped_bytes: 0,
        disk_bytes: root.blocks().saturating_mul(512),
        inodes: 1,
    };
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let context = || format!("measure code: read {}", d.display());
        for entry in fs::read_dir(&d).map_err(io_err(context()))? {
            let entry = entry.map_err(io_err(context()))?;
            let meta = entry.metadata().map_err(io_err(context()))?;
            usage.inodes += 1;
            usage.disk_bytes = usage
                .disk_bytes
                .saturating_add(meta.blocks().saturating_mul(512));
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                usage.unzipped_bytes = usage.unzipped_bytes.saturating_add(meta.len());
            }
        }
    }
    Ok(usage)
}

/// What a zip entry becomes on disk.
enum Kind {
    Dir,
    File { executable: bool },
    Symlink,
}

/// Classify by the unix mode in the external attributes (absent for zips from tools that do
/// not record one: then a trailing `/` means a directory, anything else a file).
fn classify(name: &str, mode: Option<u32>) -> Result<Kind, CodeError> {
    let name_is_dir = name.ends_with('/') || name.ends_with('\\');
    let Some(mode) = mode else {
        return Ok(if name_is_dir {
            Kind::Dir
        } else {
            Kind::File { executable: false }
        });
    };
    match mode & S_IFMT {
        S_IFDIR => Ok(Kind::Dir),
        S_IFLNK => Ok(Kind::Symlink),
        // No type bits (0): some tools record only the permissions.
        S_IFREG | 0 if name_is_dir => Ok(Kind::Dir),
        S_IFREG | 0 => Ok(Kind::File {
            executable: mode & 0o111 != 0,
        }),
        _ => Err(unsafe_entry(
            name,
            "devices, fifos, sockets and hard links are not allowed",
        )),
    }
}

/// The entry's path as components below the package root: backslashes count as separators,
/// empty and `.` components are dropped; absolute paths, drive prefixes, `..` and NUL are
/// refused. Empty for a name that denotes the root itself (`./`).
fn entry_components(name: &str) -> Result<Vec<String>, CodeError> {
    let normalized = name.replace('\\', "/");
    if normalized.starts_with('/') {
        return Err(unsafe_entry(name, "absolute path"));
    }
    if normalized.contains('\0') {
        return Err(unsafe_entry(name, "NUL in name"));
    }
    let mut components = Vec::new();
    for (i, c) in normalized.split('/').enumerate() {
        match c {
            "" | "." => {}
            ".." => return Err(unsafe_entry(name, "path contains '..'")),
            c if i == 0 && is_drive(c) => return Err(unsafe_entry(name, "absolute path")),
            c => components.push(c.to_owned()),
        }
    }
    Ok(components)
}

fn is_drive(c: &str) -> bool {
    let b = c.as_bytes();
    b.len() == 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
}

fn join(root: &Path, components: &[String]) -> PathBuf {
    let mut p = root.to_path_buf();
    p.extend(components);
    p
}

/// Validate `bytes` as a deployment package and extract it under `root` (an existing, empty
/// dir), with every check [`CodeStore::put_zip`] makes: Lambda's refusals (not a zip, empty,
/// unsafe names, special files, escaping symlinks, more than 250 MB decompressed) and Sous's
/// entry cap. Nothing is fsynced. On error `root` may hold a partial tree: the caller removes
/// it.
///
/// Three steps: the central directory is read in entry order and every name decided (each
/// directory created once, later entries of a path superseding earlier ones, conflicts
/// refused); the regular files are then written by up to [`EXTRACT_THREADS_MAX`] threads
/// (a package of many small files costs one `open` and `close` each, which threads overlap);
/// symlinks are checked against each other and created last, so no write passes through one.
pub fn extract_zip(bytes: &[u8], root: &Path) -> Result<Extracted, CodeError> {
    check_package(bytes, Some(root))
}

/// Every check of [`extract_zip`] (each entry decompressed and counted), writing nothing.
pub fn validate_zip(bytes: &[u8]) -> Result<Extracted, CodeError> {
    check_package(bytes, None)
}

/// [`extract_zip`] under `root`, or only its checks without one.
fn check_package(bytes: &[u8], root: Option<&Path>) -> Result<Extracted, CodeError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(not_a_zip)?;
    if archive.is_empty() {
        return Err(CodeError::EmptyZip);
    }
    let entries = archive.len() as u64;
    if entries > PACKAGE_ENTRIES_MAX {
        return Err(CodeError::TooManyEntries { entries });
    }
    // Honest headers fail fast; lying ones are caught by counting below.
    if archive
        .decompressed_size()
        .is_some_and(|declared| declared > u128::from(UNZIPPED_MAX_BYTES))
    {
        return Err(CodeError::UnzippedTooLarge);
    }

    let plan = Plan::make(&mut archive, root)?;
    let budget = Budget::default();
    write_files(&archive, root, &plan.files, &budget)?;

    let targets: BTreeMap<&[String], &str> = plan
        .links
        .iter()
        .map(|(k, (_, t))| (k.as_slice(), t.as_str()))
        .collect();
    for (components, (name, target)) in &plan.links {
        if symlink_escapes(&targets, components, target) {
            return Err(unsafe_entry(name, "symlink points outside the package"));
        }
        budget.take(target.len() as u64)?;
        if let Some(root) = root {
            let context = || format!("extract code: symlink {}", components.join("/"));
            std::os::unix::fs::symlink(target, join(root, components))
                .map_err(io_err(context()))?;
        }
    }
    Ok(Extracted {
        entries,
        unzipped_bytes: budget.used.load(Ordering::Relaxed),
    })
}

fn not_a_zip(e: zip::result::ZipError) -> CodeError {
    CodeError::NotAZip {
        reason: e.to_string(),
    }
}

/// Threads that write one package's files at most.
pub const EXTRACT_THREADS_MAX: usize = 8;
/// Files a writing thread takes at a time.
const EXTRACT_BATCH: usize = 64;

/// A regular-file entry to decompress.
struct PlannedFile {
    index: usize,
    /// Path below the root, for messages.
    components: Vec<String>,
    mode: u32,
    /// False when a later entry of the same path supersedes this one: its data is still
    /// decompressed (and counted, and checked) but not written.
    write: bool,
}

/// What the central directory says the tree will be, decided before any file is written.
struct Plan {
    files: Vec<PlannedFile>,
    /// Symlink entries by path (the last entry for a path wins): name and target.
    links: BTreeMap<Vec<String>, (String, String)>,
}

impl Plan {
    /// Read every entry in order, decide what each becomes and create the directories.
    fn make(
        archive: &mut zip::ZipArchive<Cursor<&[u8]>>,
        root: Option<&Path>,
    ) -> Result<Plan, CodeError> {
        let mut dirs: HashSet<Vec<String>> = HashSet::new();
        // The file each path will hold: its position in `files`.
        let mut file_at: HashMap<Vec<String>, usize> = HashMap::new();
        let mut files: Vec<PlannedFile> = Vec::new();
        let mut links: BTreeMap<Vec<String>, (String, String)> = BTreeMap::new();
        for index in 0..archive.len() {
            let mut entry = archive.by_index(index).map_err(not_a_zip)?;
            let name = entry.name().to_owned();
            let components = entry_components(&name)?;
            let kind = classify(&name, entry.unix_mode())?;
            if components.is_empty() {
                // `./` and the like: the root itself.
                continue;
            }
            // Nothing may be written below a symlink entry: it would go through the link.
            if (1..components.len()).any(|n| links.contains_key(&components[..n])) {
                return Err(unsafe_entry(&name, "path goes through a symlink entry"));
            }
            let parent = &components[..components.len() - 1];
            for n in 1..=parent.len() {
                make_dir(root, &parent[..n], &mut dirs, &file_at, &name)?;
            }
            match kind {
                Kind::Dir => {
                    links.remove(&components);
                    make_dir(root, &components, &mut dirs, &file_at, &name)?;
                }
                Kind::File { executable } => {
                    if dirs.contains(&components) {
                        return Err(unsafe_entry(&name, "a directory of the same name exists"));
                    }
                    links.remove(&components);
                    // The last entry wins, its contents and its mode.
                    if let Some(earlier) = file_at.insert(components.clone(), files.len()) {
                        files[earlier].write = false;
                    }
                    files.push(PlannedFile {
                        index,
                        components,
                        mode: if executable { 0o755 } else { 0o644 },
                        write: true,
                    });
                }
                Kind::Symlink => {
                    if dirs.contains(&components) {
                        return Err(unsafe_entry(&name, "a directory of the same name exists"));
                    }
                    // A regular file entry of the same name came earlier: the symlink wins.
                    if let Some(earlier) = file_at.remove(&components) {
                        files[earlier].write = false;
                    }
                    let target = read_link_target(&mut entry, &name)?;
                    links.insert(components, (name, target));
                }
            }
        }
        Ok(Plan { files, links })
    }
}

/// A symlink entry's target: at most Linux's `PATH_MAX`, UTF-8, not empty, no NUL.
fn read_link_target(
    entry: &mut zip::read::ZipFile<'_, Cursor<&[u8]>>,
    name: &str,
) -> Result<String, CodeError> {
    let mut target = Vec::new();
    entry
        .take(SYMLINK_TARGET_MAX + 1)
        .read_to_end(&mut target)
        .map_err(|e| CodeError::NotAZip {
            reason: format!("{name}: {e}"),
        })?;
    if target.len() as u64 > SYMLINK_TARGET_MAX {
        return Err(unsafe_entry(name, "symlink target too long"));
    }
    let Ok(target) = String::from_utf8(target) else {
        return Err(unsafe_entry(name, "symlink target is not UTF-8"));
    };
    if target.is_empty() || target.contains('\0') {
        return Err(unsafe_entry(name, "empty symlink target"));
    }
    Ok(target)
}

/// Decompress every planned file, writing those that are not superseded, on up to
/// [`EXTRACT_THREADS_MAX`] threads (each with its own handle on the archive) taking batches
/// of [`EXTRACT_BATCH`] in entry order. The first error stops them all; the one of the
/// earliest entry is returned.
fn write_files(
    archive: &zip::ZipArchive<Cursor<&[u8]>>,
    root: Option<&Path>,
    files: &[PlannedFile],
    budget: &Budget,
) -> Result<(), CodeError> {
    // Files are created with their final mode; a chmod is needed only when the umask would
    // take bits of 0755 away.
    let chmod_needed = current_umask().is_none_or(|umask| umask & 0o755 != 0);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(EXTRACT_THREADS_MAX)
        .min(files.len().div_ceil(EXTRACT_BATCH))
        .max(1);
    let next = AtomicUsize::new(0);
    let failed: Mutex<Option<(usize, CodeError)>> = Mutex::new(None);
    let stop = AtomicBool::new(false);
    let work = |mut archive: zip::ZipArchive<Cursor<&[u8]>>| {
        let mut buf = vec![0u8; 64 * 1024];
        while !stop.load(Ordering::Relaxed) {
            let start = next.fetch_add(EXTRACT_BATCH, Ordering::Relaxed);
            if start >= files.len() {
                return;
            }
            for planned in &files[start..files.len().min(start + EXTRACT_BATCH)] {
                if let Err(e) =
                    write_file(&mut archive, root, planned, budget, chmod_needed, &mut buf)
                {
                    stop.store(true, Ordering::Relaxed);
                    let mut failed = failed.lock().unwrap_or_else(|p| p.into_inner());
                    if failed
                        .as_ref()
                        .is_none_or(|(index, _)| planned.index < *index)
                    {
                        *failed = Some((planned.index, e));
                    }
                    return;
                }
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 1..threads {
            let archive = archive.clone();
            s.spawn(|| work(archive));
        }
        work(archive.clone());
    });
    match failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

/// Decompress one file entry, counting its bytes, into its path (or nowhere when superseded).
fn write_file(
    archive: &mut zip::ZipArchive<Cursor<&[u8]>>,
    root: Option<&Path>,
    planned: &PlannedFile,
    budget: &Budget,
    chmod_needed: bool,
    buf: &mut [u8],
) -> Result<(), CodeError> {
    let mut entry = archive.by_index(planned.index).map_err(not_a_zip)?;
    let context = || format!("extract code: write {}", planned.components.join("/"));
    let mut file = match root {
        Some(root) if planned.write => {
            let path = join(root, &planned.components);
            Some(create_file(&path, planned.mode, chmod_needed).map_err(io_err(context()))?)
        }
        _ => None,
    };
    loop {
        let n = match entry.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(CodeError::NotAZip {
                    reason: format!("{}: {e}", entry.name()),
                })
            }
        };
        budget.take(n as u64)?;
        if let Some(file) = file.as_mut() {
            file.write_all(&buf[..n]).map_err(io_err(context()))?;
        }
    }
}

/// Create a package file with `mode` (each path is written once: the plan keeps only the last
/// entry of a path).
fn create_file(path: &Path, mode: u32, chmod_needed: bool) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    if chmod_needed {
        file.set_permissions(fs::Permissions::from_mode(mode))?;
    }
    Ok(file)
}

/// Counts decompressed bytes against [`UNZIPPED_MAX_BYTES`], across the writing threads.
#[derive(Default)]
struct Budget {
    used: AtomicU64,
}

impl Budget {
    fn take(&self, n: u64) -> Result<(), CodeError> {
        let used = self.used.fetch_add(n, Ordering::Relaxed).saturating_add(n);
        if used > UNZIPPED_MAX_BYTES {
            Err(CodeError::UnzippedTooLarge)
        } else {
            Ok(())
        }
    }
}

/// Create the package directory `components` (mode 0755) unless it exists already; a file
/// entry of that path is a conflict between entries.
fn make_dir(
    root: Option<&Path>,
    components: &[String],
    dirs: &mut HashSet<Vec<String>>,
    file_at: &HashMap<Vec<String>, usize>,
    name: &str,
) -> Result<(), CodeError> {
    if dirs.contains(components) {
        return Ok(());
    }
    if file_at.contains_key(components) {
        return Err(unsafe_entry(
            name,
            "a file of the same name as its directory exists",
        ));
    }
    if let Some(root) = root {
        let path = join(root, components);
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&path)
            .map_err(io_err(format!("extract code: create directory for {name}")))?;
        set_mode(
            &path,
            0o755,
            &format!("extract code: chmod directory of {name}"),
        )?;
    }
    dirs.insert(components.to_vec());
    Ok(())
}

/// Whether the symlink at `link` (components below the root) resolves outside the package,
/// resolving like the kernel does: relative to the link's own directory, following the
/// package's other symlinks. Absolute targets and loops count as escapes.
fn symlink_escapes(links: &BTreeMap<&[String], &str>, link: &[String], target: &str) -> bool {
    let mut dir: Vec<String> = link[..link.len() - 1].to_vec();
    let mut pending: VecDeque<String> = VecDeque::new();
    let mut hops = 0;
    if push_target(&mut pending, target) {
        return true;
    }
    while let Some(c) = pending.pop_front() {
        match c.as_str() {
            "" | "." => {}
            ".." => {
                if dir.pop().is_none() {
                    return true;
                }
            }
            _ => {
                dir.push(c);
                if let Some(next) = links.get(dir.as_slice()) {
                    hops += 1;
                    if hops > SYMLINK_HOPS_MAX {
                        return true;
                    }
                    dir.pop();
                    if push_target(&mut pending, next) {
                        return true;
                    }
                }
            }
        }
    }
    false
}

/// Put `target`'s components in front of `pending`. Backslashes count as separators, which
/// only ever makes the check stricter. Returns true for an absolute target.
fn push_target(pending: &mut VecDeque<String>, target: &str) -> bool {
    let normalized = target.replace('\\', "/");
    if normalized.starts_with('/') {
        return true;
    }
    let parts: Vec<&str> = normalized.split('/').collect();
    if parts.first().is_some_and(|p| is_drive(p)) {
        return true;
    }
    for part in parts.into_iter().rev() {
        pending.push_front(part.to_owned());
    }
    false
}

/// Standard, padded base64 (RFC 4648 §4), as Lambda prints `CodeSha256`.
fn base64_standard(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Seek;
    use std::os::unix::fs::MetadataExt;
    use zip::write::SimpleFileOptions;
    use zip::ZipWriter;

    type Writer = ZipWriter<Cursor<Vec<u8>>>;

    fn writer() -> Writer {
        ZipWriter::new(Cursor::new(Vec::new()))
    }

    fn file(w: &mut Writer, name: &str, mode: u32, content: &[u8]) {
        w.start_file(name, SimpleFileOptions::default().unix_permissions(mode))
            .unwrap();
        w.write_all(content).unwrap();
    }

    fn link(w: &mut Writer, name: &str, target: &str) {
        w.add_symlink(name, target, SimpleFileOptions::default())
            .unwrap();
    }

    fn finish(w: Writer) -> Vec<u8> {
        w.finish().unwrap().into_inner()
    }

    /// Wait until the background flushes are done (their markers gone).
    fn wait_flushed(data: &Path) {
        for _ in 0..6000 {
            if entries(&data.join("extract-unsynced")).is_empty() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("background flush still pending after a minute");
    }

    #[test]
    fn open_discards_extractions_not_flushed() {
        let (data, store) = store();
        let mut w = writer();
        file(&mut w, "bootstrap", 0o755, b"#!/bin/sh\n");
        let stored = store.put_zip(&finish(w)).unwrap();
        wait_flushed(data.path());
        let dir = data.path().join("extract").join(&stored.sha256_hex);
        assert!(dir.is_dir());

        // As if the process died before its flush finished: the marker is still there.
        let marker = data
            .path()
            .join("extract-unsynced")
            .join(format!("{}-1-2-3", stored.sha256_hex));
        fs::write(&marker, b"").unwrap();
        drop(store);
        let store = CodeStore::open(data.path()).unwrap();
        assert!(!dir.exists(), "an unflushed extraction is not trusted");
        assert!(!marker.exists());
        // The blob is the durable copy: the package is extracted again when needed.
        assert_eq!(store.extracted_dir(&stored.sha256_hex).unwrap(), dir);
        assert_eq!(fs::read(dir.join("bootstrap")).unwrap(), b"#!/bin/sh\n");
        wait_flushed(data.path());
    }

    fn store() -> (tempfile::TempDir, CodeStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = CodeStore::open(dir.path()).unwrap();
        (dir, store)
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// The store holds nothing: no blob, no extraction, no temp entry.
    fn assert_empty(data: &Path) {
        assert_eq!(entries(&data.join("code")), Vec::<String>::new());
        assert_eq!(entries(&data.join("extract")), Vec::<String>::new());
        assert_eq!(
            entries(&data.join("extract-unsynced")),
            Vec::<String>::new()
        );
    }

    fn refused(bytes: &[u8], want: &str) {
        let (data, store) = store();
        let err = store.put_zip(bytes).unwrap_err();
        let lambda = err.to_lambda_error();
        assert_eq!(
            lambda.code,
            ErrorCode::InvalidParameterValueException,
            "{err}"
        );
        assert!(
            lambda.message.contains(want),
            "{:?} should contain {want:?}",
            lambda.message
        );
        assert_empty(data.path());
    }

    fn unsafe_zip(build: impl FnOnce(&mut Writer)) -> Vec<u8> {
        let mut w = writer();
        file(&mut w, "ok.txt", 0o644, b"fine");
        build(&mut w);
        finish(w)
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_standard(input.as_bytes()), want);
        }
        assert_eq!(base64_standard(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn stores_valid_zip_with_executable_bootstrap() {
        let (data, store) = store();
        let mut w = writer();
        file(&mut w, "bootstrap", 0o755, b"#!/bin/sh\necho hi\n");
        file(
            &mut w,
            "lib/handler.py",
            0o600,
            b"def handler(e, c): pass\n",
        );
        w.add_directory("empty/", SimpleFileOptions::default())
            .unwrap();
        link(&mut w, "lib/current", "handler.py");
        link(&mut w, "lib/up", "../bootstrap");
        let bytes = finish(w);

        let stored = store.put_zip(&bytes).unwrap();
        let digest = Sha256::digest(&bytes);
        assert_eq!(stored.sha256_hex, hex::encode(digest));
        assert_eq!(stored.sha256_b64, base64_standard(&digest));
        assert_eq!(stored.sha256_b64.len(), 44);
        assert_eq!(stored.size, bytes.len() as u64);
        let want_unzipped = 18 + 24 + "handler.py".len() + "../bootstrap".len();
        assert_eq!(stored.unzipped_size, want_unzipped as u64);

        assert_eq!(fs::read(store.zip_path(&stored.sha256_hex)).unwrap(), bytes);
        let dir = store.extracted_dir(&stored.sha256_hex).unwrap();
        assert_eq!(dir, data.path().join("extract").join(&stored.sha256_hex));
        let mode = |p: &str| fs::symlink_metadata(dir.join(p)).unwrap().mode() & 0o7777;
        assert_eq!(mode("bootstrap"), 0o755);
        assert_eq!(mode("lib/handler.py"), 0o644);
        assert_eq!(mode("lib"), 0o755);
        assert_eq!(mode("empty"), 0o755);
        assert_eq!(
            fs::read_link(dir.join("lib/current")).unwrap(),
            Path::new("handler.py")
        );
        assert_eq!(
            fs::read(dir.join("lib/up")).unwrap(),
            b"#!/bin/sh\necho hi\n"
        );
        assert_eq!(
            entries(&data.path().join("code")),
            vec![format!("{}.zip", stored.sha256_hex)]
        );
        assert_eq!(
            entries(&data.path().join("extract")),
            vec![stored.sha256_hex.clone()]
        );
    }

    #[test]
    fn put_is_idempotent() {
        let (data, store) = store();
        let mut w = writer();
        file(
            &mut w,
            "index.js",
            0o644,
            b"exports.handler = async () => 1;",
        );
        let bytes = finish(w);
        let first = store.put_zip(&bytes).unwrap();
        let second = store.put_zip(&bytes).unwrap();
        assert_eq!(first, second);
        assert_eq!(entries(&data.path().join("code")).len(), 1);
        assert_eq!(entries(&data.path().join("extract")).len(), 1);

        // A blob whose extraction vanished, or the reverse, is completed by the next put.
        fs::remove_file(store.zip_path(&first.sha256_hex)).unwrap();
        assert_eq!(store.put_zip(&bytes).unwrap(), first);
        assert!(store.zip_path(&first.sha256_hex).is_file());
        fs::remove_dir_all(data.path().join("extract").join(&first.sha256_hex)).unwrap();
        assert_eq!(store.put_zip(&bytes).unwrap(), first);
        assert_eq!(
            entries(&data.path().join("extract")),
            vec![first.sha256_hex]
        );
    }

    #[test]
    fn refuses_non_zip() {
        refused(b"this is not a zip file at all", NOT_A_ZIP);
        refused(b"", NOT_A_ZIP);
        // A truncated zip.
        let mut w = writer();
        file(&mut w, "a", 0o644, &[7u8; 1000]);
        let bytes = finish(w);
        refused(&bytes[..bytes.len() / 2], NOT_A_ZIP);
    }

    #[test]
    fn refuses_empty_zip() {
        refused(&finish(writer()), EMPTY_ZIP);
    }

    #[test]
    fn refuses_corrupt_entry_data() {
        let mut w = writer();
        w.start_file(
            "a",
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored),
        )
        .unwrap();
        w.write_all(b"AAAAAAAAAAAAAAAA").unwrap();
        let mut bytes = finish(w);
        let at = bytes
            .windows(16)
            .position(|w| w == b"AAAAAAAAAAAAAAAA")
            .unwrap();
        bytes[at] = b'B'; // CRC mismatch
        refused(&bytes, NOT_A_ZIP);
    }

    #[test]
    fn refuses_dot_dot() {
        refused(&unsafe_zip(|w| file(w, "../evil", 0o644, b"x")), "'..'");
        refused(&unsafe_zip(|w| file(w, "a/../../b", 0o644, b"x")), "'..'");
        refused(
            &unsafe_zip(|w| file(w, "a\\..\\..\\b", 0o644, b"x")),
            "'..'",
        );
        refused(&unsafe_zip(|w| file(w, "a/..", 0o644, b"x")), "'..'");
    }

    #[test]
    fn refuses_absolute_paths() {
        refused(
            &unsafe_zip(|w| file(w, "/abs", 0o644, b"x")),
            "absolute path",
        );
        refused(
            &unsafe_zip(|w| file(w, "\\abs", 0o644, b"x")),
            "absolute path",
        );
        refused(
            &unsafe_zip(|w| file(w, "C:/abs", 0o644, b"x")),
            "absolute path",
        );
    }

    #[test]
    fn refuses_escaping_symlinks() {
        let outside = "points outside the package";
        refused(&unsafe_zip(|w| link(w, "link", "../../etc")), outside);
        refused(&unsafe_zip(|w| link(w, "a/b/link", "../../..")), outside);
        refused(&unsafe_zip(|w| link(w, "abs", "/etc/passwd")), outside);
        refused(&unsafe_zip(|w| link(w, "win", "..\\..\\x")), outside);
        // Each lexically inside, together outside: `l2` goes through `a/l1` (the root) to `..`.
        refused(
            &unsafe_zip(|w| {
                link(w, "l2", "a/l1/..");
                link(w, "a/l1", "..");
            }),
            outside,
        );
        refused(
            &unsafe_zip(|w| {
                link(w, "loop1", "loop2");
                link(w, "loop2", "loop1");
            }),
            outside,
        );
    }

    #[test]
    fn refuses_writes_through_symlinks() {
        let through = "goes through a symlink";
        refused(
            &unsafe_zip(|w| {
                link(w, "a", ".");
                file(w, "a/x", 0o644, b"x");
            }),
            through,
        );
        refused(
            &unsafe_zip(|w| {
                w.add_directory("sub/", SimpleFileOptions::default())
                    .unwrap();
                link(w, "a", "sub");
                file(w, "a/b/x", 0o644, b"x");
            }),
            through,
        );
        refused(
            &unsafe_zip(|w| {
                link(w, "a", ".");
                file(w, "a/../../x", 0o644, b"x");
            }),
            "'..'",
        );
        // A symlink replacing a directory that already has content.
        refused(
            &unsafe_zip(|w| {
                file(w, "d/x", 0o644, b"x");
                link(w, "d", "/etc");
            }),
            "same name",
        );
    }

    /// A zip whose one entry has its external attributes (unix mode) patched to `mode`.
    fn with_mode(mode: u32) -> Vec<u8> {
        let mut w = writer();
        file(&mut w, "special", 0o644, b"");
        let mut bytes = finish(w);
        let central = bytes.windows(4).rposition(|w| w == b"PK\x01\x02").unwrap();
        let attrs = central + 38;
        bytes[attrs..attrs + 4].copy_from_slice(&(mode << 16).to_le_bytes());
        bytes
    }

    #[test]
    fn refuses_special_files() {
        assert!(store().1.put_zip(&with_mode(S_IFREG | 0o644)).is_ok());
        for mode in [0o020_644, 0o060_644, 0o010_644, 0o140_644] {
            refused(&with_mode(mode), "devices, fifos");
        }
    }

    #[test]
    fn refuses_zip_bomb_by_counting() {
        // 300 MB of zeros deflate to ~300 KB; the header even claims the truth here, so lie
        // about it to prove the count, not the header, stops it.
        const SIZE: usize = 300 * 1024 * 1024;
        let mut w = writer();
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(1))
            .large_file(false);
        w.start_file("zeros", options).unwrap();
        let chunk = vec![0u8; 1024 * 1024];
        for _ in 0..SIZE / chunk.len() {
            w.write_all(&chunk).unwrap();
        }
        let mut bytes = finish(w);
        assert!(bytes.len() < 2 * 1024 * 1024);
        // Patch both headers' uncompressed size to 1 byte.
        for (sig, offset) in [(b"PK\x03\x04", 22), (b"PK\x01\x02", 24)] {
            let at = bytes.windows(4).position(|w| w == sig).unwrap() + offset;
            bytes[at..at + 4].copy_from_slice(&1u32.to_le_bytes());
        }
        refused(&bytes, "Unzipped size must be smaller than 262144000 bytes");
    }

    #[test]
    fn refuses_oversized_zip() {
        let (data, store) = store();
        let err = store
            .put_zip(&vec![0u8; ZIPPED_MAX_BYTES as usize + 1])
            .unwrap_err();
        let lambda = err.to_lambda_error();
        assert_eq!(lambda.code, ErrorCode::RequestEntityTooLargeException);
        assert_eq!(
            lambda.message,
            "Zipped size must be smaller than 52428800 bytes"
        );
        assert_empty(data.path());
    }

    #[test]
    fn duplicate_entries_last_wins() {
        let (_data, store) = store();
        // The writer refuses duplicate names: write `a` and `b`, then rename `b` to `a`.
        let mut w = writer();
        file(&mut w, "a", 0o644, b"first");
        file(&mut w, "b", 0o755, b"second");
        let mut bytes = finish(w);
        for (sig, name_at) in [(b"PK\x03\x04", 30), (b"PK\x01\x02", 46)] {
            let header = bytes
                .windows(4)
                .enumerate()
                .filter(|(_, w)| w == sig)
                .map(|(i, _)| i)
                .nth(1)
                .unwrap();
            assert_eq!(bytes[header + name_at], b'b');
            bytes[header + name_at] = b'a';
        }
        let stored = store.put_zip(&bytes).unwrap();
        let dir = store.extracted_dir(&stored.sha256_hex).unwrap();
        assert_eq!(fs::read(dir.join("a")).unwrap(), b"second");
        // The last entry's mode too, though the file already existed.
        assert_eq!(fs::metadata(dir.join("a")).unwrap().mode() & 0o777, 0o755);
    }

    #[test]
    fn refuses_more_entries_than_the_cap_before_writing() {
        let mut w = writer();
        let stored = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .unix_permissions(0o644);
        for i in 0..=PACKAGE_ENTRIES_MAX {
            w.start_file(format!("{i:x}"), stored).unwrap();
        }
        let bytes = finish(w);
        let root = tempfile::tempdir().unwrap();
        assert!(matches!(
            extract_zip(&bytes, root.path()),
            Err(CodeError::TooManyEntries { entries }) if entries == PACKAGE_ENTRIES_MAX + 1
        ));
        assert_eq!(
            entries(root.path()),
            Vec::<String>::new(),
            "nothing written"
        );
        refused(
            &bytes,
            &format!(
                "The package has {} entries; this server accepts at most {PACKAGE_ENTRIES_MAX}.",
                PACKAGE_ENTRIES_MAX + 1
            ),
        );
    }

    #[test]
    fn reports_entries_bytes_and_disk_use() {
        let mut w = writer();
        file(&mut w, "bootstrap", 0o755, b"#!/bin/sh\n");
        for i in 0..50 {
            file(&mut w, &format!("lib/d{}/f{i}", i % 5), 0o644, b"x");
        }
        link(&mut w, "lib/current", "d0");
        let bytes = finish(w);

        let root = tempfile::tempdir().unwrap();
        let extracted = extract_zip(&bytes, root.path()).unwrap();
        assert_eq!(
            extracted,
            Extracted {
                entries: 52,
                unzipped_bytes: 10 + 50 + 2,
            }
        );

        let (_data, store) = store();
        let stored = store.put_zip(&bytes).unwrap();
        assert_eq!(stored.unzipped_size, 62);
        // The root, `lib`, its 5 directories, 51 files and a symlink.
        assert_eq!(stored.inodes, 1 + 1 + 5 + 51 + 1);
        // Every non-empty file takes at least one block of its own, whatever its length.
        assert!(
            stored.disk_bytes >= 51 * 512,
            "disk_bytes {} for 51 non-empty files",
            stored.disk_bytes
        );
        // The same measure when identical bytes find the extraction already there.
        assert_eq!(store.put_zip(&bytes).unwrap(), stored);
    }

    #[test]
    fn extracted_dir_re_extracts_missing_cache() {
        let (data, store) = store();
        let mut w = writer();
        file(&mut w, "bootstrap", 0o755, b"#!/bin/sh\n");
        let stored = store.put_zip(&finish(w)).unwrap();
        let dir = store.extracted_dir(&stored.sha256_hex).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(store.extracted_dir(&stored.sha256_hex).unwrap(), dir);
        assert_eq!(fs::read(dir.join("bootstrap")).unwrap(), b"#!/bin/sh\n");
        assert_eq!(
            fs::metadata(dir.join("bootstrap")).unwrap().mode() & 0o777,
            0o755
        );
        assert_eq!(
            entries(&data.path().join("extract")),
            vec![stored.sha256_hex.clone()]
        );

        // Without the blob there is nothing to re-extract from.
        fs::remove_dir_all(&dir).unwrap();
        fs::remove_file(store.zip_path(&stored.sha256_hex)).unwrap();
        assert!(matches!(
            store.extracted_dir(&stored.sha256_hex),
            Err(CodeError::MissingBlob(_))
        ));
        assert!(matches!(
            store.extracted_dir("../x"),
            Err(CodeError::InvalidSha(_))
        ));
    }

    #[test]
    fn extracted_dir_refuses_corrupt_blob() {
        let (_data, store) = store();
        let mut w = writer();
        file(&mut w, "a", 0o644, b"a");
        let stored = store.put_zip(&finish(w)).unwrap();
        fs::remove_dir_all(store.extracted_dir(&stored.sha256_hex).unwrap()).unwrap();
        let mut blob = OpenOptions::new()
            .write(true)
            .open(store.zip_path(&stored.sha256_hex))
            .unwrap();
        blob.seek(io::SeekFrom::End(0)).unwrap();
        blob.write_all(b"junk").unwrap();
        assert!(matches!(
            store.extracted_dir(&stored.sha256_hex),
            Err(CodeError::CorruptBlob(..))
        ));
    }

    #[test]
    fn remove_deletes_blob_and_extraction() {
        let (data, store) = store();
        let mut w = writer();
        file(&mut w, "a/b/c", 0o644, b"c");
        let stored = store.put_zip(&finish(w)).unwrap();
        store.remove(&stored.sha256_hex).unwrap();
        wait_flushed(data.path());
        assert_empty(data.path());
        // Already gone is fine.
        store.remove(&stored.sha256_hex).unwrap();
    }

    #[test]
    fn open_removes_leftover_temps() {
        let (data, store) = store();
        wait_flushed(data.path());
        fs::create_dir_all(data.path().join("extract/.tmp-1-2-3/sub")).unwrap();
        fs::write(data.path().join("extract/.tmp-1-2-3/sub/f"), b"x").unwrap();
        fs::write(data.path().join("code/.tmp-4-5-6"), b"partial").unwrap();
        let mut w = writer();
        file(&mut w, "a", 0o644, b"a");
        let stored = store.put_zip(&finish(w)).unwrap();
        // Flushed: the next open keeps the extraction (it discards unflushed ones).
        wait_flushed(data.path());
        drop(store);
        let store = CodeStore::open(data.path()).unwrap();
        assert_eq!(
            entries(&data.path().join("extract")),
            vec![stored.sha256_hex.clone()]
        );
        assert_eq!(
            entries(&data.path().join("code")),
            vec![format!("{}.zip", stored.sha256_hex)]
        );
        assert!(store.extracted_dir(&stored.sha256_hex).is_ok());
    }
}
