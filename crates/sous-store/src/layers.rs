//! Lambda layers: their versions, their policies, and the `/opt` a function's layers make.
//!
//! What we store, and why: each published layer version's metadata (description, license,
//! compatible runtimes and architectures, creation date) and the SHA-256 of its zip, whose
//! blob and extraction live in the [`CodeStore`](crate::CodeStore) beside function code (one
//! blob for identical bytes, whoever uploaded them); its resource-based policy (statements and
//! the policy's RevisionId); and, per layer, the next version number, so that a number is
//! never given twice, even after every version was deleted.
//!
//! A layer version is immutable. Deleting one hides it from the layer operations and from new
//! function configurations, but functions that use it keep running: the row stays as a
//! tombstone (`deleted = 1`) while any function version's configuration names its ARN, and
//! its blob stays while any row (function version or layer version, tombstones included)
//! references it. [`Store::purge_deleted_layer_versions`] drops the tombstones no function
//! version names any more; [`Store::gc_code`] then removes their blobs.
//!
//! An environment's `/opt` is one merged directory per ordered list of layer shas,
//! `<data-dir>/opt/<key>/` ([`Store::opt_dir`]), made once by hard-linking each layer's
//! extracted files in order, so a later layer's file replaces an earlier one's, as Lambda
//! extracts layers into `/opt`. `<data-dir>/opt/<key>.layers` lists its shas; a merged
//! directory one of whose layer blobs is gone is removed by [`Store::gc_opt_dirs`].

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use rusqlite::{params, OptionalExtension, TransactionBehavior};
use sha2::{Digest, Sha256};
use sous_types::layers::LayerStatement;

use crate::code::{CodeError, StoredCode};
use crate::db::{size_i64, Store, StoreError};

/// Schema of the layer tables (migration 8).
pub const MIGRATION: &str = "CREATE TABLE layers (
        name          TEXT PRIMARY KEY NOT NULL,
        next_version  INTEGER NOT NULL DEFAULT 1
    );
    CREATE TABLE layer_versions (
        layer_name                     TEXT NOT NULL REFERENCES layers(name),
        version                        INTEGER NOT NULL,
        description                    TEXT NOT NULL,
        license_info                   TEXT,
        compatible_runtimes_json       TEXT NOT NULL,
        compatible_architectures_json  TEXT NOT NULL,
        created_date                   TEXT NOT NULL,
        code_sha256_hex                TEXT NOT NULL,
        code_sha256_b64                TEXT NOT NULL,
        code_size                      INTEGER NOT NULL,
        unzipped_size                  INTEGER NOT NULL,
        policy_json                    TEXT NOT NULL DEFAULT '[]',
        policy_revision                TEXT,
        deleted                        INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (layer_name, version)
    );
    CREATE INDEX layer_versions_by_code ON layer_versions(code_sha256_hex);";

/// What PublishLayerVersion stores (the code already in the code store).
#[derive(Debug, Clone)]
pub struct NewLayerVersion {
    pub description: String,
    pub license_info: Option<String>,
    pub compatible_runtimes: Vec<String>,
    pub compatible_architectures: Vec<String>,
    /// Lambda's `CreatedDate` format.
    pub created_date: String,
    pub code: StoredCode,
}

/// One layer version as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLayerVersion {
    pub layer_name: String,
    pub version: u64,
    pub description: String,
    pub license_info: Option<String>,
    pub compatible_runtimes: Vec<String>,
    pub compatible_architectures: Vec<String>,
    pub created_date: String,
    pub code_sha256_hex: String,
    pub code_sha256_b64: String,
    pub code_size: u64,
    pub unzipped_size: u64,
    /// Deleted by DeleteLayerVersion, kept while functions use it.
    pub deleted: bool,
}

/// A layer version's policy: its statements and RevisionId (`None` before the first
/// statement was ever added).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerPolicy {
    pub statements: Vec<LayerStatement>,
    pub revision_id: Option<String>,
}

const COLUMNS: &str = "layer_name, version, description, license_info, compatible_runtimes_json,
    compatible_architectures_json, created_date, code_sha256_hex, code_sha256_b64, code_size,
    unzipped_size, deleted";

type Row = (
    String,
    i64,
    String,
    Option<String>,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    bool,
);

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
    ))
}

fn decode(row: Row) -> Result<StoredLayerVersion, StoreError> {
    let (name, version, description, license_info, rt, arch, created, hex, b64, size, unz, del) =
        row;
    let list = |j: &str, what: &str| -> Result<Vec<String>, StoreError> {
        serde_json::from_str(j)
            .map_err(|e| StoreError::Corrupt(format!("{what} of layer {name}:{version}: {e}")))
    };
    Ok(StoredLayerVersion {
        compatible_runtimes: list(&rt, "compatible runtimes")?,
        compatible_architectures: list(&arch, "compatible architectures")?,
        layer_name: name,
        version: u64::try_from(version).unwrap_or(0),
        description,
        license_info,
        created_date: created,
        code_sha256_hex: hex,
        code_sha256_b64: b64,
        code_size: u64::try_from(size).unwrap_or(0),
        unzipped_size: u64::try_from(unz).unwrap_or(0),
        deleted: del,
    })
}

fn version_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_json<T: serde::Serialize>(v: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(format!("serialize {what}: {e}")))
}

impl Store {
    /// Publish the next version of layer `name` (creating the layer), numbered after every
    /// version the layer ever had.
    pub fn publish_layer_version(
        &self,
        name: &str,
        new: &NewLayerVersion,
    ) -> Result<StoredLayerVersion, StoreError> {
        let runtimes = to_json(&new.compatible_runtimes, "compatible runtimes")?;
        let archs = to_json(&new.compatible_architectures, "compatible architectures")?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT OR IGNORE INTO layers (name, next_version) VALUES (?1, 1)",
            params![name],
        )?;
        let version: i64 = tx.query_row(
            "SELECT next_version FROM layers WHERE name = ?1",
            params![name],
            |r| r.get(0),
        )?;
        tx.execute(
            "UPDATE layers SET next_version = ?2 WHERE name = ?1",
            params![name, version + 1],
        )?;
        tx.execute(
            &format!("INSERT INTO layer_versions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0)"),
            params![
                name,
                version,
                new.description,
                new.license_info,
                runtimes,
                archs,
                new.created_date,
                new.code.sha256_hex,
                new.code.sha256_b64,
                size_i64(new.code.size),
                size_i64(new.code.unzipped_size),
            ],
        )?;
        tx.commit()?;
        Ok(StoredLayerVersion {
            layer_name: name.to_string(),
            version: u64::try_from(version).unwrap_or(0),
            description: new.description.clone(),
            license_info: new.license_info.clone(),
            compatible_runtimes: new.compatible_runtimes.clone(),
            compatible_architectures: new.compatible_architectures.clone(),
            created_date: new.created_date.clone(),
            code_sha256_hex: new.code.sha256_hex.clone(),
            code_sha256_b64: new.code.sha256_b64.clone(),
            code_size: new.code.size,
            unzipped_size: new.code.unzipped_size,
            deleted: false,
        })
    }

    /// A layer version that exists (not deleted).
    pub fn get_layer_version(
        &self,
        name: &str,
        version: u64,
    ) -> Result<Option<StoredLayerVersion>, StoreError> {
        Ok(self
            .layer_version_any(name, version)?
            .filter(|l| !l.deleted))
    }

    /// A layer version, deleted or not: what a function that was configured with it runs.
    pub fn layer_version_any(
        &self,
        name: &str,
        version: u64,
    ) -> Result<Option<StoredLayerVersion>, StoreError> {
        let conn = self.conn();
        let row = conn
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM layer_versions WHERE layer_name = ?1 AND version = ?2"
                ),
                params![name, version_i64(version)],
                read_row,
            )
            .optional()?;
        drop(conn);
        row.map(decode).transpose()
    }

    /// The versions of a layer that exist, newest first.
    pub fn list_layer_versions(&self, name: &str) -> Result<Vec<StoredLayerVersion>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM layer_versions WHERE layer_name = ?1 AND deleted = 0
             ORDER BY version DESC"
        ))?;
        let rows = stmt
            .query_map(params![name], read_row)?
            .collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        drop(conn);
        rows.into_iter().map(decode).collect()
    }

    /// Every existing version of every layer, by layer name and then newest first.
    pub fn list_all_layer_versions(&self) -> Result<Vec<StoredLayerVersion>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM layer_versions WHERE deleted = 0
             ORDER BY layer_name, version DESC"
        ))?;
        let rows = stmt
            .query_map([], read_row)?
            .collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        drop(conn);
        rows.into_iter().map(decode).collect()
    }

    /// Delete a layer version (nothing happens when it does not exist). Returns the code
    /// digests no row references any more, for [`Store::gc_code`].
    pub fn delete_layer_version(
        &self,
        name: &str,
        version: u64,
    ) -> Result<Vec<String>, StoreError> {
        {
            let conn = self.conn();
            conn.execute(
                "UPDATE layer_versions SET deleted = 1 WHERE layer_name = ?1 AND version = ?2",
                params![name, version_i64(version)],
            )?;
        }
        self.purge_deleted_layer_versions()
    }

    /// Drop the deleted layer versions no function version's configuration names any more.
    /// Returns the code digests no row references any more, for [`Store::gc_code`]. Holds the
    /// code gate exclusively, so a function being configured with a layer version (which
    /// holds [`Store::pin_code`] from the version's lookup to its commit) never loses it.
    pub fn purge_deleted_layer_versions(&self) -> Result<Vec<String>, StoreError> {
        let _gate = self.code_gate.write().unwrap_or_else(|p| p.into_inner());
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let tombstones: Vec<(String, i64, String)> = {
            let mut stmt = tx.prepare(
                "SELECT layer_name, version, code_sha256_hex FROM layer_versions WHERE deleted = 1",
            )?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            rows
        };
        let mut freed = Vec::new();
        for (name, version, hex) in tombstones {
            let suffix = format!(":layer:{name}:{version}");
            let used: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM versions v, json_each(v.config_json, '$.Layers') j
                 WHERE substr(json_extract(j.value, '$.Arn'), -length(?1)) = ?1)",
                params![suffix],
                |r| r.get(0),
            )?;
            if !used {
                tx.execute(
                    "DELETE FROM layer_versions WHERE layer_name = ?1 AND version = ?2",
                    params![name, version],
                )?;
                freed.push(hex);
            }
        }
        let orphans = crate::functions::unreferenced(&tx, freed)?;
        tx.commit()?;
        Ok(orphans)
    }

    /// A layer version's policy (`None` when the version does not exist).
    pub fn layer_policy(
        &self,
        name: &str,
        version: u64,
    ) -> Result<Option<LayerPolicy>, StoreError> {
        let conn = self.conn();
        let row: Option<(String, Option<String>)> = conn
            .query_row(
                "SELECT policy_json, policy_revision FROM layer_versions
                 WHERE layer_name = ?1 AND version = ?2 AND deleted = 0",
                params![name, version_i64(version)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        drop(conn);
        row.map(|(json, revision_id)| {
            let statements = serde_json::from_str(&json).map_err(|e| {
                StoreError::Corrupt(format!("policy of layer {name}:{version}: {e}"))
            })?;
            Ok(LayerPolicy {
                statements,
                revision_id,
            })
        })
        .transpose()
    }

    /// Replace a layer version's statements if its policy's RevisionId is still `expected`
    /// (compare-and-swap); the policy then has RevisionId `new_revision`.
    pub fn set_layer_policy(
        &self,
        name: &str,
        version: u64,
        statements: &[LayerStatement],
        expected: Option<&str>,
        new_revision: &str,
    ) -> Result<(), StoreError> {
        let json = to_json(&statements, "layer policy")?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: Option<Option<String>> = tx
            .query_row(
                "SELECT policy_revision FROM layer_versions
                 WHERE layer_name = ?1 AND version = ?2 AND deleted = 0",
                params![name, version_i64(version)],
                |r| r.get(0),
            )
            .optional()?;
        let Some(current) = current else {
            return Err(StoreError::NotFound);
        };
        if current.as_deref() != expected {
            return Err(StoreError::RevisionMismatch);
        }
        tx.execute(
            "UPDATE layer_versions SET policy_json = ?3, policy_revision = ?4
             WHERE layer_name = ?1 AND version = ?2",
            params![name, version_i64(version), json, new_revision],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn opt_root(&self) -> PathBuf {
        self.wal_path
            .parent()
            .map(|d| d.join("opt"))
            .unwrap_or_else(|| PathBuf::from("opt"))
    }

    /// The merged `/opt` of layers `shas` (in order; later files replace earlier ones), made
    /// on first use. Blocking: extracts a layer whose extraction is missing from the cache.
    pub fn opt_dir(&self, shas: &[String]) -> Result<PathBuf, CodeError> {
        let root = self.opt_root();
        let key = hex::encode(Sha256::digest(shas.join(",").as_bytes()));
        let dir = root.join(&key);
        if dir.is_dir() {
            return Ok(dir);
        }
        let io = |what: String| {
            move |source: io::Error| CodeError::Io {
                context: what,
                source,
            }
        };
        fs::create_dir_all(&root).map_err(io(format!("create {}", root.display())))?;
        let sources = shas
            .iter()
            .map(|s| self.code().extracted_dir(s))
            .collect::<Result<Vec<_>, _>>()?;
        let tmp = root.join(format!(".tmp-{key}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        let built = (|| -> io::Result<()> {
            fs::DirBuilder::new().mode(0o755).create(&tmp)?;
            for src in &sources {
                merge_into(src, &tmp)?;
            }
            fs::write(root.join(format!("{key}.layers")), shas.join("\n") + "\n")?;
            match fs::rename(&tmp, &dir) {
                Ok(()) => Ok(()),
                // Another environment made it first.
                Err(_) if dir.is_dir() => fs::remove_dir_all(&tmp),
                Err(e) => Err(e),
            }
        })();
        if let Err(e) = built {
            let _ = fs::remove_dir_all(&tmp);
            return Err(io(format!("merge layers into {}", dir.display()))(e));
        }
        tracing::info!(layers = shas.len(), dir = %dir.display(), "layers merged for /opt");
        Ok(dir)
    }

    /// Remove merged `/opt` directories one of whose layers' blobs is gone, and temp
    /// leftovers of an interrupted merge.
    pub fn gc_opt_dirs(&self) -> Result<(), CodeError> {
        let root = self.opt_root();
        let Ok(entries) = fs::read_dir(&root) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp-") {
                let _ = fs::remove_dir_all(entry.path());
                continue;
            }
            let Some(key) = name.strip_suffix(".layers") else {
                continue;
            };
            let list = fs::read_to_string(entry.path()).unwrap_or_default();
            let gone = list.lines().any(|sha| !self.code().zip_path(sha).is_file());
            if gone {
                let dir = root.join(key);
                if let Err(e) = fs::remove_dir_all(&dir) {
                    if e.kind() != io::ErrorKind::NotFound {
                        return Err(CodeError::Io {
                            context: format!("remove {}", dir.display()),
                            source: e,
                        });
                    }
                }
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(())
    }
}

/// Put `src`'s tree over `dst`'s: files and symlinks replace what is at their path (a
/// directory there included), directories merge.
fn merge_into(src: &Path, dst: &Path) -> io::Result<()> {
    let mut stack = vec![(src.to_path_buf(), dst.to_path_buf())];
    while let Some((from, to)) = stack.pop() {
        for entry in fs::read_dir(&from)? {
            let entry = entry?;
            let s = entry.path();
            let d = to.join(entry.file_name());
            let kind = entry.file_type()?;
            let existing = fs::symlink_metadata(&d).ok();
            if kind.is_dir() {
                match existing {
                    Some(m) if m.is_dir() => {}
                    Some(_) => {
                        fs::remove_file(&d)?;
                        fs::DirBuilder::new().mode(0o755).create(&d)?;
                    }
                    None => fs::DirBuilder::new()
                        .mode(fs::metadata(&s)?.mode() & 0o7777)
                        .create(&d)?,
                }
                stack.push((s, d));
                continue;
            }
            match existing {
                Some(m) if m.is_dir() => fs::remove_dir_all(&d)?,
                Some(_) => fs::remove_file(&d)?,
                None => {}
            }
            if kind.is_symlink() {
                std::os::unix::fs::symlink(fs::read_link(&s)?, &d)?;
            } else if fs::hard_link(&s, &d).is_err() {
                fs::copy(&s, &d)?;
            }
        }
    }
    Ok(())
}

/// The bytes Lambda's 250 MB limit counts for an extracted package: its regular files'
/// lengths plus its symlinks' target lengths.
pub fn unzipped_bytes(dir: &Path) -> io::Result<u64> {
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_symlink() {
                total += fs::read_link(entry.path())?.as_os_str().len() as u64;
            } else {
                total += entry.metadata()?.len();
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

    fn layer_zip(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut buf);
            for (name, data) in files {
                w.start_file(*name, zip::write::SimpleFileOptions::default())
                    .unwrap();
                std::io::Write::write_all(&mut w, data).unwrap();
            }
            w.finish().unwrap();
        }
        buf.into_inner()
    }

    fn new(code: StoredCode) -> NewLayerVersion {
        NewLayerVersion {
            description: String::new(),
            license_info: None,
            compatible_runtimes: vec!["python3.11".into()],
            compatible_architectures: vec![],
            created_date: "2024-01-01T00:00:00.000+0000".into(),
            code,
        }
    }

    #[test]
    fn versions_are_never_reused_and_tombstones_keep_used_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let code = store.code().put_zip(&layer_zip(&[("a", b"1")])).unwrap();
        let v1 = store
            .publish_layer_version("l", &new(code.clone()))
            .unwrap();
        let v2 = store
            .publish_layer_version("l", &new(code.clone()))
            .unwrap();
        assert_eq!((v1.version, v2.version), (1, 2));
        assert_eq!(store.list_layer_versions("l").unwrap().len(), 2);
        // A function uses version 2.
        let mut f = func("f", "r", "aa");
        f.config.layers = Some(vec![sous_types::layers::FunctionLayer {
            arn: "arn:aws:lambda:us-east-1:000000000000:layer:l:2".into(),
            code_size: 1,
        }]);
        store.insert_function(&f).unwrap();
        assert!(
            store.delete_layer_version("l", 1).unwrap().is_empty(),
            "v2 shares the blob"
        );
        assert!(
            store.delete_layer_version("l", 2).unwrap().is_empty(),
            "f uses v2"
        );
        assert!(store.get_layer_version("l", 2).unwrap().is_none());
        assert!(store.layer_version_any("l", 2).unwrap().unwrap().deleted);
        assert!(store.layer_version_any("l", 1).unwrap().is_none());
        let v3 = store
            .publish_layer_version("l", &new(code.clone()))
            .unwrap();
        assert_eq!(v3.version, 3);
        store.delete_layer_version("l", 3).unwrap();
        store.delete_function("f").unwrap();
        assert_eq!(
            store.purge_deleted_layer_versions().unwrap(),
            vec![code.sha256_hex.clone()]
        );
    }

    #[test]
    fn policies_are_compare_and_swap() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let code = store.code().put_zip(&layer_zip(&[("a", b"1")])).unwrap();
        store.publish_layer_version("l", &new(code)).unwrap();
        let p = store.layer_policy("l", 1).unwrap().unwrap();
        assert!(p.statements.is_empty() && p.revision_id.is_none());
        let s = LayerStatement {
            sid: "s".into(),
            action: "lambda:GetLayerVersion".into(),
            principal: "*".into(),
            organization_id: None,
        };
        store
            .set_layer_policy("l", 1, std::slice::from_ref(&s), None, "r1")
            .unwrap();
        assert!(matches!(
            store.set_layer_policy("l", 1, &[], Some("r0"), "r2"),
            Err(StoreError::RevisionMismatch)
        ));
        store
            .set_layer_policy("l", 1, &[], Some("r1"), "r2")
            .unwrap();
        assert!(matches!(
            store.set_layer_policy("l", 9, &[], None, "r"),
            Err(StoreError::NotFound)
        ));
    }

    #[test]
    fn opt_dirs_merge_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = store
            .code()
            .put_zip(&layer_zip(&[
                ("bin/x", b"a"),
                ("only-a", b"a"),
                ("d/f", b"a"),
            ]))
            .unwrap();
        let b = store
            .code()
            .put_zip(&layer_zip(&[("bin/x", b"b"), ("d", b"file now")]))
            .unwrap();
        let opt = store
            .opt_dir(&[a.sha256_hex.clone(), b.sha256_hex.clone()])
            .unwrap();
        assert_eq!(fs::read(opt.join("bin/x")).unwrap(), b"b");
        assert_eq!(fs::read(opt.join("only-a")).unwrap(), b"a");
        assert_eq!(fs::read(opt.join("d")).unwrap(), b"file now");
        assert_eq!(unzipped_bytes(&opt).unwrap(), 1 + 1 + 8);
        // Same list: same dir; the other order: another.
        assert_eq!(
            store
                .opt_dir(&[a.sha256_hex.clone(), b.sha256_hex.clone()])
                .unwrap(),
            opt
        );
        let other = store
            .opt_dir(&[b.sha256_hex.clone(), a.sha256_hex.clone()])
            .unwrap();
        assert_eq!(fs::read(other.join("bin/x")).unwrap(), b"a");
        store.code().remove(&b.sha256_hex).unwrap();
        store.gc_opt_dirs().unwrap();
        assert!(!opt.exists() && !other.exists());
    }
}
