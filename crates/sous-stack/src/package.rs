//! The local packager: what `sous deploy` does to a function's `CodeUri` / a layer's
//! `ContentUri` (SAM) or to a serverless.yml service's code before anything is sent to the
//! server.
//!
//! - a folder becomes a zip built in memory, deterministic: entries sorted by path, every
//!   timestamp 1980-01-01 00:00:00, unix modes kept as Lambda needs them (0755 for files with
//!   an execute bit, 0644 for the others), no directory entries, deflated; a symlink inside
//!   the folder is stored as a symlink when what it points to stays inside the folder, and is
//!   an error naming the link otherwise. The same folder always gives the same bytes, hence
//!   the same SHA-256 ([`Zip::sha256_base64`] is Lambda's `CodeSha256`), so an unchanged
//!   function is not uploaded again;
//! - a `.zip` or `.jar` file is taken as it is (its central directory is read to know its
//!   unzipped size); any other single file is zipped alone, as `aws cloudformation package`
//!   does;
//! - `s3://bucket/key` and `{Bucket, Key, Version}` stay an S3 location (no I/O);
//! - relative paths resolve against the template's directory; a missing path is an error
//!   naming the path and the template position the caller gives ([`Site`]);
//! - serverless.yml: [`package_serverless`] selects the files of the service folder as the
//!   Framework v3 does (`patterns` with `!` exclusions applied in order, v1/v2
//!   `include`/`exclude`, `individually`, `artifact`, the Framework's default exclusions
//!   such as `.serverless/**` and `.git/**`, the configuration file, the layers' folders, and
//!   dev-only `node_modules` packages);
//! - Lambda's size limits are checked before upload ([`Limits`]): 262144000 bytes (250 MB)
//!   unzipped, 52428800 bytes (50 MB) zipped unless the code goes through S3.

use std::fmt;
use std::fs;
use std::io::{Cursor, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use globset::{GlobBuilder, GlobMatcher};
use indexmap::IndexMap;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

use crate::error::Pos;
use crate::serverless::{Artifact, Package, Translated};
use crate::value::Value;

/// Lambda's limit on a function's unzipped code (and layers), in bytes: 250 MB.
pub const MAX_UNZIPPED: u64 = 262_144_000;
/// Lambda's limit on a zip uploaded directly (not through S3), in bytes: 50 MB.
pub const MAX_ZIPPED_DIRECT: u64 = 52_428_800;

/// The size limits the packager enforces; [`Limits::default`] is Lambda's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_unzipped: u64,
    pub max_zipped_direct: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_unzipped: MAX_UNZIPPED,
            max_zipped_direct: MAX_ZIPPED_DIRECT,
        }
    }
}

/// Where in the template the code is named, for errors: the template file, the position
/// when the caller knows it, and the path (`Resources.Fn.Properties.CodeUri`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Site {
    pub file: String,
    pub pos: Option<Pos>,
    pub path: String,
}

/// A packaging error, naming the template position and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageError {
    pub site: Site,
    pub message: String,
}

impl fmt::Display for PackageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.site.file)?;
        if let Some(p) = self.site.pos {
            write!(f, ":{}:{}", p.line, p.column)?;
        }
        f.write_str(": ")?;
        if !self.site.path.is_empty() {
            write!(f, "{}: ", self.site.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for PackageError {}

type R<T> = Result<T, PackageError>;

fn err(site: &Site, message: impl Into<String>) -> PackageError {
    PackageError {
        site: site.clone(),
        message: message.into(),
    }
}

/// A zip ready to upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zip {
    pub bytes: Arc<[u8]>,
    /// SHA-256 of the bytes, lowercase hex.
    pub sha256_hex: String,
    /// SHA-256 of the bytes, base64: Lambda's `CodeSha256`.
    pub sha256_base64: String,
    /// The sum of the sizes of the files inside.
    pub unzipped_size: u64,
    /// The folder or file it was made from.
    pub source: PathBuf,
    /// True when Sous built the zip (a folder or a single file), false for a zip or jar
    /// taken as it is.
    pub built: bool,
}

impl Zip {
    fn new(bytes: Vec<u8>, unzipped_size: u64, source: PathBuf, built: bool) -> Zip {
        let digest = Sha256::digest(&bytes);
        Zip {
            sha256_hex: hex::encode(digest),
            sha256_base64: base64::engine::general_purpose::STANDARD.encode(digest),
            bytes: bytes.into(),
            unzipped_size,
            source,
            built,
        }
    }
}

/// What a code location became.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packaged {
    Zip(Zip),
    /// Code already in S3: passed on as it is.
    S3 {
        bucket: String,
        key: String,
        version: Option<String>,
    },
}

/// Parses `s3://bucket/key`.
pub fn parse_s3_uri(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/')?;
    if bucket.is_empty() || key.is_empty() {
        return None;
    }
    Some((bucket.to_string(), key.to_string()))
}

/// Packages a SAM `CodeUri` / `ContentUri` (or a plain `Code` location) as resolved:
/// a string (a path, or `s3://bucket/key`) or a `{Bucket, Key, Version}` map. Relative
/// paths resolve against `template_dir`. `via_s3` says the zip will be uploaded through S3,
/// so only the unzipped limit applies.
pub fn package_code_uri(
    value: &Value,
    template_dir: &Path,
    site: &Site,
    limits: &Limits,
    via_s3: bool,
) -> R<Packaged> {
    match value {
        Value::String(s) => {
            if s.starts_with("s3://") {
                let (bucket, key) = parse_s3_uri(s).ok_or_else(|| {
                    err(
                        site,
                        format!("expected an S3 URI s3://bucket/key, found '{s}'"),
                    )
                })?;
                return Ok(Packaged::S3 {
                    bucket,
                    key,
                    version: None,
                });
            }
            package_path(&template_dir.join(s), site, limits, via_s3)
        }
        Value::Map(m) => {
            let text = |k: &str| match m.get(k) {
                Some(Value::String(s)) => Some(Ok(s.clone())),
                Some(Value::Number(n)) => Some(Ok(n.clone())),
                Some(_) => Some(Err(err(site, format!("expected {k} to be a string")))),
                None => None,
            };
            let bucket = text("Bucket").ok_or_else(|| err(site, "expected Bucket and Key"))??;
            let key = text("Key").ok_or_else(|| err(site, "expected Bucket and Key"))??;
            let version = text("Version").transpose()?;
            Ok(Packaged::S3 {
                bucket,
                key,
                version,
            })
        }
        other => Err(err(
            site,
            format!("expected a path, an s3:// URI or {{Bucket, Key, Version}}, found {other:?}"),
        )),
    }
}

/// Packages a local path: a folder is zipped, a `.zip` / `.jar` taken as it is, any other
/// file zipped alone.
pub fn package_path(path: &Path, site: &Site, limits: &Limits, via_s3: bool) -> R<Packaged> {
    let meta = fs::metadata(path).map_err(|e| {
        err(
            site,
            format!("code path {} cannot be read: {e}", path.display()),
        )
    })?;
    let zip = if meta.is_dir() {
        let files = walk(path, site)?;
        build_zip(path, files, site, limits)?
    } else if is_archive(path) {
        let bytes = fs::read(path)
            .map_err(|e| err(site, format!("cannot read {}: {e}", path.display())))?;
        let unzipped = archive_unzipped_size(&bytes).map_err(|e| {
            err(
                site,
                format!("{} is not a valid zip file: {e}", path.display()),
            )
        })?;
        Zip::new(bytes, unzipped, path.to_path_buf(), false)
    } else {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = path.parent().unwrap_or(Path::new("/"));
        let entry = entry_for(parent, path, &name, site)?;
        build_zip(parent, vec![entry], site, limits)?
    };
    check_limits(&zip, site, limits, via_s3)?;
    Ok(Packaged::Zip(zip))
}

fn is_archive(path: &Path) -> bool {
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref(),
        Some("zip") | Some("jar")
    )
}

fn archive_unzipped_size(bytes: &[u8]) -> Result<u64, zip::result::ZipError> {
    let mut a = ZipArchive::new(Cursor::new(bytes))?;
    let mut total = 0u64;
    for i in 0..a.len() {
        total = total.saturating_add(a.by_index_raw(i)?.size());
    }
    Ok(total)
}

fn check_limits(zip: &Zip, site: &Site, limits: &Limits, via_s3: bool) -> R<()> {
    if zip.unzipped_size > limits.max_unzipped {
        return Err(err(
            site,
            format!(
                "{}: unzipped size {} bytes is over Lambda's limit: unzipped size must be smaller than {} bytes",
                zip.source.display(),
                zip.unzipped_size,
                limits.max_unzipped
            ),
        ));
    }
    let zipped = zip.bytes.len() as u64;
    if !via_s3 && zipped > limits.max_zipped_direct {
        return Err(err(
            site,
            format!(
                "{}: zipped size {zipped} bytes is over Lambda's limit of {} bytes for a direct upload; upload it through S3",
                zip.source.display(),
                limits.max_zipped_direct
            ),
        ));
    }
    Ok(())
}

/// One file of a folder to zip.
#[derive(Clone, Debug)]
struct Entry {
    /// Path inside the zip, `/`-separated.
    name: String,
    kind: EntryKind,
}

#[derive(Clone, Debug)]
enum EntryKind {
    File {
        path: PathBuf,
        size: u64,
        exec: bool,
    },
    Symlink {
        target: String,
    },
}

/// Every file and symlink under `root` (directories are walked, not listed), sorted by name.
fn walk(root: &Path, site: &Site) -> R<Vec<Entry>> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let rd = fs::read_dir(&dir)
            .map_err(|e| err(site, format!("cannot read folder {}: {e}", dir.display())))?;
        for de in rd {
            let de =
                de.map_err(|e| err(site, format!("cannot read folder {}: {e}", dir.display())))?;
            let name = de.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let path = de.path();
            let ft = de
                .file_type()
                .map_err(|e| err(site, format!("cannot read {}: {e}", path.display())))?;
            if ft.is_dir() {
                stack.push((path, rel));
            } else {
                out.push(entry_for(root, &path, &rel, site)?);
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The entry for `path` (a file or a symlink under `root`), named `rel` in the zip.
fn entry_for(root: &Path, path: &Path, rel: &str, site: &Site) -> R<Entry> {
    let lmeta = fs::symlink_metadata(path)
        .map_err(|e| err(site, format!("cannot read {}: {e}", path.display())))?;
    if lmeta.file_type().is_symlink() {
        let target = fs::read_link(path)
            .map_err(|e| err(site, format!("cannot read link {}: {e}", path.display())))?;
        let escapes = || {
            err(
                site,
                format!(
                    "symlink {} points to {}, outside the folder {}",
                    path.display(),
                    target.display(),
                    root.display()
                ),
            )
        };
        if target.is_absolute() {
            return Err(escapes());
        }
        let croot = fs::canonicalize(root)
            .map_err(|e| err(site, format!("cannot read {}: {e}", root.display())))?;
        // Lexically (the link as stored must not climb out) and as resolved (through other
        // links).
        let mut depth: i64 = rel.matches('/').count() as i64;
        for c in target.components() {
            match c {
                Component::ParentDir => depth -= 1,
                Component::Normal(_) => depth += 1,
                _ => {}
            }
            if depth < 0 {
                return Err(escapes());
            }
        }
        let resolved = fs::canonicalize(path).map_err(|e| {
            err(
                site,
                format!(
                    "symlink {} points to {}, which cannot be read: {e}",
                    path.display(),
                    target.display()
                ),
            )
        })?;
        if !resolved.starts_with(&croot) {
            return Err(escapes());
        }
        return Ok(Entry {
            name: rel.to_string(),
            kind: EntryKind::Symlink {
                target: target.to_string_lossy().replace('\\', "/"),
            },
        });
    }
    if !lmeta.is_file() {
        return Err(err(
            site,
            format!(
                "{} is not a regular file, folder or symlink",
                path.display()
            ),
        ));
    }
    Ok(Entry {
        name: rel.to_string(),
        kind: EntryKind::File {
            path: path.to_path_buf(),
            size: lmeta.len(),
            exec: lmeta.permissions().mode() & 0o111 != 0,
        },
    })
}

/// Zips `entries` (already sorted) deterministically; checks the unzipped limit first, so a
/// folder that is too large is not read.
fn build_zip(source: &Path, entries: Vec<Entry>, site: &Site, limits: &Limits) -> R<Zip> {
    let unzipped: u64 = entries
        .iter()
        .map(|e| match &e.kind {
            EntryKind::File { size, .. } => *size,
            EntryKind::Symlink { target } => target.len() as u64,
        })
        .sum();
    if unzipped > limits.max_unzipped {
        return Err(err(
            site,
            format!(
                "{}: unzipped size {unzipped} bytes is over Lambda's limit: unzipped size must be smaller than {} bytes",
                source.display(),
                limits.max_unzipped
            ),
        ));
    }
    let zerr = |e: zip::result::ZipError| {
        err(
            site,
            format!("cannot build the zip of {}: {e}", source.display()),
        )
    };
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    let base = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(6))
        .last_modified_time(DateTime::default());
    for e in &entries {
        match &e.kind {
            EntryKind::File { path, exec, .. } => {
                let data = fs::read(path)
                    .map_err(|er| err(site, format!("cannot read {}: {er}", path.display())))?;
                let mode = if *exec { 0o755 } else { 0o644 };
                let opts = base
                    .unix_permissions(mode)
                    .large_file(data.len() as u64 >= u32::MAX as u64);
                w.start_file(e.name.as_str(), opts).map_err(zerr)?;
                w.write_all(&data).map_err(|er| {
                    err(
                        site,
                        format!("cannot build the zip of {}: {er}", source.display()),
                    )
                })?;
            }
            EntryKind::Symlink { target } => {
                w.add_symlink(
                    e.name.as_str(),
                    target.as_str(),
                    base.unix_permissions(0o777),
                )
                .map_err(zerr)?;
            }
        }
    }
    let bytes = w.finish().map_err(zerr)?.into_inner();
    Ok(Zip::new(bytes, unzipped, source.to_path_buf(), true))
}

/// The Framework's default exclusions (v3 `packageService.defaultExcludes`).
pub const SERVERLESS_DEFAULT_EXCLUDES: &[&str] = &[
    ".git/**",
    ".gitignore",
    ".DS_Store",
    "npm-debug.log",
    "yarn-*.log",
    ".serverless/**",
    ".serverless_plugins/**",
];

/// How a serverless.yml service is laid out, for [`package_serverless`].
#[derive(Clone, Debug)]
pub struct ServerlessDir<'a> {
    /// The service folder (where serverless.yml is).
    pub dir: &'a Path,
    /// The configuration file's name relative to `dir` (`serverless.yml`), excluded from
    /// the packages as the Framework does.
    pub config_file: &'a str,
    /// `useDotenv: true`: `.env*` files are excluded too.
    pub use_dotenv: bool,
}

/// Packages every function and layer of a translated serverless.yml: per logical id (as in
/// [`Translated::artifacts`]) its code. Functions not packaged `individually` share one
/// service zip (built once); an `artifact` (a zip, or an `s3://` URI) is used as it is.
pub fn package_serverless(
    t: &Translated,
    sd: &ServerlessDir<'_>,
    limits: &Limits,
    via_s3: bool,
) -> R<IndexMap<String, Packaged>> {
    let layer_paths: Vec<&str> = t
        .artifacts
        .values()
        .filter_map(|a| match a {
            Artifact::Layer { path, .. } => Some(path.as_str()),
            Artifact::Service { .. } => None,
        })
        .collect();
    let mut service_zip: Option<Packaged> = None;
    let mut out = IndexMap::new();
    for (id, artifact) in &t.artifacts {
        let site = Site {
            file: sd.config_file.to_string(),
            pos: None,
            path: format!("Resources.{id}"),
        };
        let packaged = match artifact {
            Artifact::Layer { path, package } => {
                if let Some(a) = &package.artifact {
                    packaged_artifact(a, sd.dir, &site, limits, via_s3)?
                } else {
                    let root = sd.dir.join(path);
                    let selection = Selection::new(&t.package, Some(package), sd, &[], &site)?;
                    package_selected(&root, &selection, &site, limits, via_s3)?
                }
            }
            Artifact::Service { package } => {
                if let Some(a) = &package.artifact {
                    packaged_artifact(a, sd.dir, &site, limits, via_s3)?
                } else if package.individually {
                    let own = own_settings(&t.package, package);
                    let selection =
                        Selection::new(&t.package, Some(&own), sd, &layer_paths, &site)?;
                    package_selected(sd.dir, &selection, &site, limits, via_s3)?
                } else {
                    if service_zip.is_none() {
                        let selection = Selection::new(&t.package, None, sd, &layer_paths, &site)?;
                        service_zip =
                            Some(package_selected(sd.dir, &selection, &site, limits, via_s3)?);
                    }
                    service_zip.clone().expect("built above")
                }
            }
        };
        out.insert(id.clone(), packaged);
    }
    Ok(out)
}

/// A function's own `package` settings, from the merged ones [`Translated::artifacts`]
/// records (the service's lists followed by the function's).
fn own_settings(service: &Package, merged: &Package) -> Package {
    let rest = |m: &[String], s: &[String]| {
        if m.starts_with(s) {
            m[s.len()..].to_vec()
        } else {
            m.to_vec()
        }
    };
    Package {
        patterns: rest(&merged.patterns, &service.patterns),
        include: rest(&merged.include, &service.include),
        exclude: rest(&merged.exclude, &service.exclude),
        individually: merged.individually,
        artifact: merged.artifact.clone(),
    }
}

fn packaged_artifact(
    a: &str,
    dir: &Path,
    site: &Site,
    limits: &Limits,
    via_s3: bool,
) -> R<Packaged> {
    if a.starts_with("s3://") {
        let (bucket, key) = parse_s3_uri(a).ok_or_else(|| {
            err(
                site,
                format!("expected an S3 URI s3://bucket/key, found '{a}'"),
            )
        })?;
        return Ok(Packaged::S3 {
            bucket,
            key,
            version: None,
        });
    }
    let p = dir.join(a);
    if !p.exists() {
        return Err(err(
            site,
            format!(
                "Cannot access package artifact at \"{a}\": {} does not exist",
                p.display()
            ),
        ));
    }
    package_path(&p, site, limits, via_s3)
}

/// One pattern of the Framework's ordered list: a glob that includes or excludes.
struct Rule {
    exclude: bool,
    glob: GlobMatcher,
}

/// The Framework v3 selection (`resolveFilePathsFromPatterns`): every file starts included;
/// the exclusions (defaults, the configuration file, `exclude`, the layers' folders, each
/// as `!pattern`, or re-included when written `!pattern`) then the inclusions (`include`
/// and `patterns`, in order, a leading `!` excluding) are applied in order, each setting the
/// state of the files it matches; dev-only `node_modules` packages are excluded last.
struct Selection {
    rules: Vec<Rule>,
}

impl Selection {
    /// `service` is the service's `package`, `own` the function's or layer's own settings
    /// (applied after the service's, as the Framework's `getExcludes` / `getIncludes` do).
    fn new(
        service: &Package,
        own: Option<&Package>,
        sd: &ServerlessDir<'_>,
        layer_paths: &[&str],
        site: &Site,
    ) -> R<Selection> {
        fn push_unique(list: &mut Vec<String>, p: &str) {
            if !list.iter().any(|x| x == p) {
                list.push(p.to_string());
            }
        }
        let own_exclude = own.map(|o| o.exclude.as_slice()).unwrap_or_default();
        let own_include = own.map(|o| o.include.as_slice()).unwrap_or_default();
        let own_patterns = own.map(|o| o.patterns.as_slice()).unwrap_or_default();
        let mut excludes: Vec<String> = Vec::new();
        for e in SERVERLESS_DEFAULT_EXCLUDES {
            push_unique(&mut excludes, e);
        }
        push_unique(&mut excludes, sd.config_file);
        for e in &service.exclude {
            push_unique(&mut excludes, e);
        }
        for p in layer_paths {
            push_unique(&mut excludes, &format!("{}/**", p.trim_end_matches('/')));
        }
        if sd.use_dotenv {
            push_unique(&mut excludes, ".env*");
        }
        for e in own_exclude {
            push_unique(&mut excludes, e);
        }
        let mut includes: Vec<String> = Vec::new();
        for i in service
            .include
            .iter()
            .chain(&service.patterns)
            .chain(own_include)
            .chain(own_patterns)
        {
            push_unique(&mut includes, i);
        }
        let mut ordered: Vec<String> = excludes
            .iter()
            .map(|e| match e.strip_prefix('!') {
                Some(inc) => inc.to_string(),
                None => format!("!{e}"),
            })
            .collect();
        ordered.extend(includes);
        let mut rules = Vec::new();
        for p in ordered {
            let (exclude, pat) = match p.strip_prefix('!') {
                Some(x) => (true, x),
                None => (false, p.as_str()),
            };
            let pat = pat.trim_start_matches("./");
            let glob = GlobBuilder::new(pat)
                .literal_separator(true)
                .build()
                .map_err(|e| err(site, format!("invalid package pattern '{p}': {e}")))?
                .compile_matcher();
            rules.push(Rule { exclude, glob });
        }
        Ok(Selection { rules })
    }

    fn selects(&self, rel: &str, dev_only: &[String]) -> bool {
        let mut state = true;
        for r in &self.rules {
            if r.glob.is_match(rel) {
                state = !r.exclude;
            }
        }
        if state && dev_only.iter().any(|d| rel.starts_with(d.as_str())) {
            state = false;
        }
        state
    }
}

/// `node_modules/<pkg>/` prefixes of packages only development needs, from the folder's
/// `package-lock.json` (lockfile v2/v3 marks them `"dev": true`), as the Framework's
/// `excludeDevDependencies` (which asks `npm ls`) leaves them out. No lock file: nothing is
/// excluded.
fn dev_only_modules(root: &Path) -> Vec<String> {
    let Ok(text) = fs::read_to_string(root.join("package-lock.json")) else {
        return Vec::new();
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    let mut out: Vec<String> = json
        .get("packages")
        .and_then(|p| p.as_object())
        .map(|m| {
            m.iter()
                .filter(|(k, v)| {
                    k.starts_with("node_modules/")
                        && v.get("dev").and_then(|d| d.as_bool()) == Some(true)
                })
                .map(|(k, _)| format!("{k}/"))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn package_selected(
    root: &Path,
    sel: &Selection,
    site: &Site,
    limits: &Limits,
    via_s3: bool,
) -> R<Packaged> {
    if !root.is_dir() {
        return Err(err(
            site,
            format!("folder {} does not exist", root.display()),
        ));
    }
    let dev_only = dev_only_modules(root);
    let files: Vec<Entry> = walk(root, site)?
        .into_iter()
        .filter(|e| sel.selects(&e.name, &dev_only))
        .collect();
    if files.is_empty() {
        return Err(err(site, "No file matches include / exclude patterns"));
    }
    let zip = build_zip(root, files, site, limits)?;
    check_limits(&zip, site, limits, via_s3)?;
    Ok(Packaged::Zip(zip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::symlink;

    fn site() -> Site {
        Site {
            file: "template.yaml".into(),
            pos: Some(Pos {
                line: 7,
                column: 15,
            }),
            path: "Resources.Fn.Properties.CodeUri".into(),
        }
    }

    fn write(root: &Path, rel: &str, text: &str, mode: u32) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn zip_of(p: &Packaged) -> &Zip {
        match p {
            Packaged::Zip(z) => z,
            other => panic!("expected a zip, got {other:?}"),
        }
    }

    /// (name, unix mode, content) of every entry, in the archive's order.
    fn entries(z: &Zip) -> Vec<(String, u32, String)> {
        let mut a = ZipArchive::new(Cursor::new(z.bytes.to_vec())).unwrap();
        (0..a.len())
            .map(|i| {
                let mut f = a.by_index(i).unwrap();
                let mut b = Vec::new();
                f.read_to_end(&mut b).unwrap();
                let s = String::from_utf8_lossy(&b).into_owned();
                assert_eq!(f.last_modified(), Some(DateTime::default()));
                (f.name().to_string(), f.unix_mode().unwrap(), s)
            })
            .collect()
    }

    fn names(p: &Packaged) -> Vec<String> {
        entries(zip_of(p)).into_iter().map(|e| e.0).collect()
    }

    fn dir_value(p: &str) -> Value {
        Value::String(p.to_string())
    }

    #[test]
    fn folder_zip_is_deterministic_and_sorted() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "src/b.py", "b", 0o644);
        write(t.path(), "src/a.py", "a", 0o600);
        write(t.path(), "src/sub/c.py", "c", 0o644);
        let l = Limits::default();
        let one = package_code_uri(&dir_value("src"), t.path(), &site(), &l, false).unwrap();
        let two = package_code_uri(&dir_value("src"), t.path(), &site(), &l, false).unwrap();
        assert_eq!(one, two);
        let z = zip_of(&one);
        assert!(z.built);
        assert_eq!(z.unzipped_size, 3);
        assert_eq!(z.sha256_hex.len(), 64);
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(&z.sha256_base64)
                .unwrap(),
            hex::decode(&z.sha256_hex).unwrap()
        );
        assert_eq!(names(&one), ["a.py", "b.py", "sub/c.py"]);
        // Touching the files (new mtimes) changes nothing.
        std::thread::sleep(std::time::Duration::from_millis(20));
        write(t.path(), "src/a.py", "a", 0o600);
        let f = fs::File::options()
            .write(true)
            .open(t.path().join("src/b.py"))
            .unwrap();
        f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(3600))
            .unwrap();
        let three = package_code_uri(&dir_value("src"), t.path(), &site(), &l, false).unwrap();
        assert_eq!(zip_of(&three).sha256_hex, z.sha256_hex);
        // A changed file changes the hash.
        write(t.path(), "src/a.py", "A", 0o600);
        let four = package_code_uri(&dir_value("src"), t.path(), &site(), &l, false).unwrap();
        assert_ne!(zip_of(&four).sha256_hex, z.sha256_hex);
    }

    #[test]
    fn modes_are_kept_as_lambda_needs_them() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "bootstrap", "#!/bin/sh\n", 0o700);
        write(t.path(), "lib.py", "x", 0o600);
        write(t.path(), "tool", "y", 0o755);
        let p = package_path(t.path(), &site(), &Limits::default(), false).unwrap();
        let modes: Vec<(String, u32)> = entries(zip_of(&p))
            .into_iter()
            .map(|(n, m, _)| (n, m & 0o7777))
            .collect();
        assert_eq!(
            modes,
            [
                ("bootstrap".to_string(), 0o755),
                ("lib.py".to_string(), 0o644),
                ("tool".to_string(), 0o755)
            ]
        );
        let a = ZipArchive::new(Cursor::new(zip_of(&p).bytes.to_vec())).unwrap();
        assert!(
            a.file_names().all(|n| !n.ends_with('/')),
            "no directory entries"
        );
    }

    #[test]
    fn symlinks_inside_are_kept_and_escaping_ones_refused() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("code");
        write(&root, "lib/real.py", "r", 0o644);
        symlink("lib/real.py", root.join("alias.py")).unwrap();
        let p = package_path(&root, &site(), &Limits::default(), false).unwrap();
        let e = entries(zip_of(&p));
        assert_eq!(e[0].0, "alias.py");
        assert_eq!(e[0].1 & 0o170000, 0o120000, "stored as a symlink");
        assert_eq!(e[0].2, "lib/real.py");

        write(t.path(), "secret.txt", "s", 0o644);
        symlink("../../secret.txt", root.join("lib/leak")).unwrap();
        let e = package_path(&root, &site(), &Limits::default(), false).unwrap_err();
        assert!(e.message.contains("lib/leak"), "{e}");
        assert!(e.message.contains("outside the folder"), "{e}");
        fs::remove_file(root.join("lib/leak")).unwrap();

        symlink(t.path().join("secret.txt"), root.join("abs")).unwrap();
        let e = package_path(&root, &site(), &Limits::default(), false).unwrap_err();
        assert!(e.message.contains("abs"), "{e}");
    }

    #[test]
    fn dangling_links_and_links_escaping_through_other_links_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("code");
        write(&root, "a.py", "a", 0o644);
        write(t.path(), "outside/x.py", "x", 0o644);
        // A folder link inside is kept as a link, not followed.
        fs::create_dir_all(root.join("pkg")).unwrap();
        write(&root, "pkg/m.py", "m", 0o644);
        symlink("pkg", root.join("pkg2")).unwrap();
        let p = package_path(&root, &site(), &Limits::default(), false).unwrap();
        assert_eq!(names(&p), ["a.py", "pkg/m.py", "pkg2"]);
        // A relative link climbing out.
        symlink("../../outside", root.join("pkg/out")).unwrap();
        let e = package_path(&root, &site(), &Limits::default(), false).unwrap_err();
        assert!(e.message.contains("pkg/out"), "{e}");
        fs::remove_file(root.join("pkg/out")).unwrap();
        // A link whose stored target stays inside but reaches a link that leaves.
        fs::create_dir_all(root.join("pkg/deep")).unwrap();
        symlink("../../../outside", root.join("pkg/deep/l")).unwrap();
        symlink("deep/l", root.join("pkg/chain")).unwrap();
        let e = package_path(&root, &site(), &Limits::default(), false).unwrap_err();
        assert!(e.message.contains("outside the folder"), "{e}");
        fs::remove_file(root.join("pkg/deep/l")).unwrap();
        fs::remove_file(root.join("pkg/chain")).unwrap();
        symlink("missing.py", root.join("gone")).unwrap();
        let e = package_path(&root, &site(), &Limits::default(), false).unwrap_err();
        assert!(
            e.message.contains("gone") && e.message.contains("cannot be read"),
            "{e}"
        );
    }

    #[test]
    fn serverless_layers_get_the_service_patterns_and_their_own() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "handler.py", "h", 0o644);
        write(t.path(), "notes.md", "n", 0o644);
        write(t.path(), ".env.dev", "SECRET=1", 0o644);
        write(t.path(), "layer/python/mod.py", "m", 0o644);
        write(t.path(), "layer/python/mod_test.py", "t", 0o644);
        write(t.path(), "layer/README.md", "r", 0o644);
        write(t.path(), "layer/python/__pycache__/mod.pyc", "c", 0o644);
        let tr = translated(
            "service: svc\nprovider:\n  name: aws\n  runtime: python3.12\npackage:\n  patterns:\n    - '!**/*.md'\nfunctions:\n  a:\n    handler: handler.a\nlayers:\n  deps:\n    path: layer\n    package:\n      exclude:\n        - '**/__pycache__/**'\n      patterns:\n        - '!**/*_test.py'\n",
        );
        let sd = ServerlessDir {
            dir: t.path(),
            config_file: "serverless.yml",
            use_dotenv: true,
        };
        let out = package_serverless(&tr, &sd, &Limits::default(), false).unwrap();
        assert_eq!(names(&out["ALambdaFunction"]), ["handler.py"]);
        let layer = out
            .iter()
            .find(|(k, _)| k.as_str() != "ALambdaFunction")
            .unwrap()
            .1;
        assert_eq!(names(layer), ["python/mod.py"]);
    }

    #[test]
    fn zip_and_jar_files_pass_through() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "src/index.js", "exports.handler = 1", 0o644);
        let built =
            package_path(&t.path().join("src"), &site(), &Limits::default(), false).unwrap();
        let bytes = zip_of(&built).bytes.to_vec();
        for name in ["code.zip", "app.jar"] {
            fs::write(t.path().join(name), &bytes).unwrap();
            let p = package_code_uri(
                &dir_value(name),
                t.path(),
                &site(),
                &Limits::default(),
                false,
            )
            .unwrap();
            let z = zip_of(&p);
            assert!(!z.built);
            assert_eq!(&z.bytes[..], &bytes[..]);
            assert_eq!(z.sha256_hex, zip_of(&built).sha256_hex);
            assert_eq!(z.unzipped_size, 19);
        }
        fs::write(t.path().join("bad.zip"), "not a zip").unwrap();
        let e = package_code_uri(
            &dir_value("bad.zip"),
            t.path(),
            &site(),
            &Limits::default(),
            false,
        )
        .unwrap_err();
        assert!(e.message.contains("not a valid zip"), "{e}");
        // A single other file is zipped alone.
        let p = package_code_uri(
            &dir_value("src/index.js"),
            t.path(),
            &site(),
            &Limits::default(),
            false,
        )
        .unwrap();
        assert_eq!(names(&p), ["index.js"]);
    }

    #[test]
    fn s3_locations_stay_s3() {
        let none = Path::new("/nonexistent");
        let l = Limits::default();
        assert_eq!(
            package_code_uri(
                &dir_value("s3://bkt/path/code.zip"),
                none,
                &site(),
                &l,
                false
            )
            .unwrap(),
            Packaged::S3 {
                bucket: "bkt".into(),
                key: "path/code.zip".into(),
                version: None
            }
        );
        let mut m = IndexMap::new();
        m.insert("Bucket".to_string(), dir_value("b"));
        m.insert("Key".to_string(), dir_value("k.zip"));
        m.insert("Version".to_string(), dir_value("3"));
        assert_eq!(
            package_code_uri(&Value::Map(m), none, &site(), &l, false).unwrap(),
            Packaged::S3 {
                bucket: "b".into(),
                key: "k.zip".into(),
                version: Some("3".into())
            }
        );
        assert!(
            package_code_uri(&dir_value("s3://bucket-only"), none, &site(), &l, false).is_err()
        );
    }

    #[test]
    fn missing_path_names_path_and_position() {
        let t = tempfile::tempdir().unwrap();
        let e = package_code_uri(
            &dir_value("nope/src"),
            t.path(),
            &site(),
            &Limits::default(),
            false,
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("template.yaml:7:15: Resources.Fn.Properties.CodeUri: "),
            "{text}"
        );
        assert!(text.contains("nope/src"), "{text}");
    }

    #[test]
    fn size_limits() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "src/big.txt", &"x".repeat(1000), 0o644);
        let tiny_unzipped = Limits {
            max_unzipped: 999,
            max_zipped_direct: MAX_ZIPPED_DIRECT,
        };
        let e = package_code_uri(&dir_value("src"), t.path(), &site(), &tiny_unzipped, true)
            .unwrap_err();
        assert!(e.message.contains("unzipped size 1000 bytes"), "{e}");
        assert!(e.message.contains("smaller than 999 bytes"), "{e}");
        let tiny_zipped = Limits {
            max_unzipped: MAX_UNZIPPED,
            max_zipped_direct: 10,
        };
        let e = package_code_uri(&dir_value("src"), t.path(), &site(), &tiny_zipped, false)
            .unwrap_err();
        assert!(e.message.contains("through S3"), "{e}");
        // Through S3 only the unzipped limit applies.
        assert!(package_code_uri(&dir_value("src"), t.path(), &site(), &tiny_zipped, true).is_ok());
        assert_eq!(Limits::default().max_unzipped, 262_144_000);
        assert_eq!(Limits::default().max_zipped_direct, 52_428_800);
    }

    fn translated(yml: &str) -> Translated {
        crate::serverless::translate("serverless.yml", yml, &Default::default()).unwrap()
    }

    fn service_tree(root: &Path) {
        write(root, "serverless.yml", "service: x", 0o644);
        write(root, "handler.js", "h", 0o644);
        write(root, "other.js", "o", 0o644);
        write(root, "test/a.test.js", "t", 0o644);
        write(root, "test/keep.js", "k", 0o644);
        write(root, ".serverless/old.zip", "z", 0o644);
        write(root, ".git/HEAD", "g", 0o644);
        write(root, "node_modules/dep/index.js", "d", 0o644);
        write(root, "node_modules/jest/index.js", "j", 0o644);
        write(root, "layer/python/mod.py", "m", 0o644);
        write(
            root,
            "package-lock.json",
            r#"{"lockfileVersion":3,"packages":{"":{},"node_modules/dep":{"version":"1.0.0"},"node_modules/jest":{"version":"29.0.0","dev":true}}}"#,
            0o644,
        );
    }

    #[test]
    fn serverless_patterns_apply_in_order() {
        let t = tempfile::tempdir().unwrap();
        service_tree(t.path());
        let tr = translated(
            "service: svc\nprovider:\n  name: aws\n  runtime: nodejs20.x\npackage:\n  patterns:\n    - '!test/**'\n    - 'test/keep.js'\n    - '!other.js'\nfunctions:\n  a:\n    handler: handler.a\n  b:\n    handler: handler.b\nlayers:\n  deps:\n    path: layer\n",
        );
        let sd = ServerlessDir {
            dir: t.path(),
            config_file: "serverless.yml",
            use_dotenv: false,
        };
        let out = package_serverless(&tr, &sd, &Limits::default(), false).unwrap();
        let ids: Vec<&String> = out.keys().collect();
        assert_eq!(ids.len(), 3, "{ids:?}");
        let fa = &out["ALambdaFunction"];
        assert_eq!(
            names(fa),
            [
                "handler.js",
                "node_modules/dep/index.js",
                "package-lock.json",
                "test/keep.js"
            ]
        );
        assert_eq!(fa, &out["BLambdaFunction"], "one shared service package");
        let layer = out.values().find(|p| names(p) == ["python/mod.py"]);
        assert!(layer.is_some(), "the layer is zipped from its own folder");
    }

    #[test]
    fn serverless_individually_include_exclude_and_artifact() {
        let t = tempfile::tempdir().unwrap();
        service_tree(t.path());
        let built =
            package_path(&t.path().join("layer"), &site(), &Limits::default(), false).unwrap();
        fs::write(t.path().join("prebuilt.zip"), &zip_of(&built).bytes[..]).unwrap();
        let tr = translated(
            "service: svc\nprovider:\n  name: aws\n  runtime: nodejs20.x\npackage:\n  individually: true\n  exclude:\n    - 'test/**'\n    - 'node_modules/**'\nfunctions:\n  a:\n    handler: handler.a\n    package:\n      patterns:\n        - '!**'\n        - 'handler.js'\n  b:\n    handler: other.b\n    package:\n      include:\n        - 'test/a.test.js'\n  c:\n    handler: x.c\n    package:\n      artifact: prebuilt.zip\n  d:\n    handler: x.d\n    package:\n      artifact: s3://bkt/d.zip\n",
        );
        let sd = ServerlessDir {
            dir: t.path(),
            config_file: "serverless.yml",
            use_dotenv: false,
        };
        let out = package_serverless(&tr, &sd, &Limits::default(), false).unwrap();
        assert_eq!(names(&out["ALambdaFunction"]), ["handler.js"]);
        assert_eq!(
            names(&out["BLambdaFunction"]),
            [
                "handler.js",
                "layer/python/mod.py",
                "other.js",
                "package-lock.json",
                "prebuilt.zip",
                "test/a.test.js"
            ]
        );
        assert!(!zip_of(&out["CLambdaFunction"]).built);
        assert_eq!(
            out["DLambdaFunction"],
            Packaged::S3 {
                bucket: "bkt".into(),
                key: "d.zip".into(),
                version: None
            }
        );
        // Nothing left: the Framework's error.
        let tr = translated(
            "service: svc\nprovider:\n  name: aws\n  runtime: nodejs20.x\npackage:\n  patterns: ['!**']\nfunctions:\n  a:\n    handler: handler.a\n",
        );
        let e = package_serverless(&tr, &sd, &Limits::default(), false).unwrap_err();
        assert!(
            e.message
                .contains("No file matches include / exclude patterns"),
            "{e}"
        );
    }
}
