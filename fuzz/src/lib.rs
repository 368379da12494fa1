//! What the fuzz targets share: the input format of the request targets, the clock, and the
//! code store of the zip targets with its on-disk checks.
//!
//! A request target's input is an HTTP/1.1 request as text, so the committed corpus reads as
//! the requests it holds and a crash is a request one can replay with curl:
//!
//! ```text
//! POST /2015-03-31/functions/my-fn/invocations?Qualifier=%24LATEST HTTP/1.1
//! host: 127.0.0.1:3001
//! x-amz-invocation-type: Event
//!
//! {"key": "value"}
//! ```
//!
//! The request line and the headers end at the first empty line (`\n` or `\r\n`); the rest is
//! the body, byte for byte. Header lines that HTTP would refuse are dropped (hyper refuses
//! them before Sous sees them); an input whose request line hyper would refuse is no request.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use http::request::Parts;
use http::{HeaderName, HeaderValue, Method, Request, Uri};
use sous_store::CodeStore;

/// One request, as Sous's handlers receive it from hyper.
pub struct RawRequest<'a> {
    pub parts: Parts,
    pub body: &'a [u8],
}

impl RawRequest<'_> {
    /// The path as received, still percent-encoded.
    pub fn raw_path(&self) -> &str {
        self.parts.uri.path()
    }

    /// The query without `?`, still percent-encoded; `None` when the URI has none.
    pub fn raw_query(&self) -> Option<&str> {
        self.parts.uri.query()
    }

    /// The headers without those a signer adds (`authorization`, `x-amz-date`, `date`,
    /// `x-amz-content-sha256`): what a client hands its SigV4 signer.
    pub fn unsigned_headers(&self) -> http::HeaderMap {
        let mut headers = self.parts.headers.clone();
        for name in [
            "authorization",
            "x-amz-date",
            "date",
            "x-amz-content-sha256",
        ] {
            headers.remove(name);
        }
        headers
    }
}

/// Parse `data` as described in the module docs; `None` when it is not a request hyper would
/// pass on (no request line, a bad method or URI).
pub fn parse_request(data: &[u8]) -> Option<RawRequest<'_>> {
    let (head, body) = split_head(data);
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.lines();
    let request_line = lines.next()?;
    let mut words = request_line.split(' ');
    let method = Method::from_bytes(words.next()?.as_bytes()).ok()?;
    let uri: Uri = words.next()?.parse().ok()?;
    // Sous's servers see origin-form targets (`/path?query`); hyper turns the rest away.
    if uri.scheme().is_some() || !uri.path().starts_with('/') {
        return None;
    }
    let mut builder = Request::builder().method(method).uri(uri);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value.trim()),
        ) else {
            continue;
        };
        builder = builder.header(name, value);
    }
    let (parts, ()) = builder.body(()).ok()?.into_parts();
    Some(RawRequest { parts, body })
}

/// The head (request line and headers) and the body.
fn split_head(data: &[u8]) -> (&[u8], &[u8]) {
    for (i, w) in data.windows(2).enumerate() {
        if w == b"\n\n" {
            return (&data[..i], &data[i + 2..]);
        }
        if w == b"\n\r" && data.get(i + 2) == Some(&b'\n') {
            return (&data[..i], &data[i + 3..]);
        }
    }
    (data, &[])
}

/// The clock the targets run at: the corpus's signed requests are dated near it, so they stay
/// valid (and exercise the whole of SigV4 verification) whatever day the fuzzer runs.
pub fn fixed_now() -> time::OffsetDateTime {
    time::macros::datetime!(2026-12-01 12:00:00 UTC)
}

/// A code store in a temp dir (on tmpfs when there is one, since the store syncs every file),
/// shared by the iterations of one fuzzing process.
struct Scratch {
    _dir: tempfile::TempDir,
    top: PathBuf,
    data: PathBuf,
    store: CodeStore,
}

fn scratch() -> &'static Mutex<Scratch> {
    static SCRATCH: OnceLock<Mutex<Scratch>> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::Builder::new().prefix("sous-fuzz").tempdir_in(shm)
        } else {
            tempfile::Builder::new().prefix("sous-fuzz").tempdir()
        }
        .expect("create a temp dir");
        let top = dir.path().join("top");
        let data = top.join("data");
        std::fs::create_dir_all(&data).expect("create the data dir");
        let store = CodeStore::open(&data).expect("open the code store");
        Mutex::new(Scratch {
            _dir: dir,
            top,
            data,
            store,
        })
    })
}

/// The names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|e| {
            e.expect("read a dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Store `bytes` as a deployment package (`CodeStore::put_zip`, what CreateFunction and
/// UpdateFunctionCode run), and check what it did on disk:
/// - nothing is ever written outside the store's data dir;
/// - a refused package leaves nothing behind (no blob, no extraction, no temp entry);
/// - an accepted one is one blob and one extraction, whose symlinks all resolve inside it,
///   which holds only files, dirs and symlinks.
///
/// The package is removed again after the checks, so the store starts empty every time.
pub fn check_put_zip(bytes: &[u8]) {
    let scratch = scratch().lock().unwrap_or_else(|p| p.into_inner());
    let result = scratch.store.put_zip(bytes);
    assert_eq!(
        names_in(&scratch.top),
        ["data"],
        "wrote outside the data dir"
    );
    let (code, extract) = (scratch.data.join("code"), scratch.data.join("extract"));
    match result {
        Err(e) => {
            assert!(
                !matches!(e, sous_store::CodeError::Io { .. }),
                "a package is refused for what it is, not for an I/O error: {e}"
            );
            assert_eq!(names_in(&code), Vec::<String>::new(), "left a blob: {e}");
            assert_eq!(
                names_in(&extract),
                Vec::<String>::new(),
                "left an extraction: {e}"
            );
        }
        Ok(stored) => {
            assert_eq!(names_in(&code), [format!("{}.zip", stored.sha256_hex)]);
            assert_eq!(names_in(&extract), [stored.sha256_hex.clone()]);
            let root = extract
                .join(&stored.sha256_hex)
                .canonicalize()
                .expect("canonical extraction dir");
            check_tree(&root, &root);
            scratch
                .store
                .remove(&stored.sha256_hex)
                .expect("remove the package");
            assert_eq!(names_in(&code), Vec::<String>::new());
            assert_eq!(names_in(&extract), Vec::<String>::new());
        }
    }
}

fn check_tree(root: &Path, dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("list the extraction") {
        let path = entry.expect("read a dir entry").path();
        let meta = std::fs::symlink_metadata(&path).expect("stat an extracted entry");
        let kind = meta.file_type();
        if kind.is_symlink() {
            let target = std::fs::read_link(&path).expect("read a symlink");
            // A link that resolves must resolve inside; a dangling one must not name an
            // absolute path (it would resolve outside once that path exists).
            assert!(
                !target.is_absolute(),
                "{} -> {}",
                path.display(),
                target.display()
            );
            if let Ok(resolved) = path.canonicalize() {
                assert!(
                    resolved.starts_with(root),
                    "{} -> {} resolves to {}",
                    path.display(),
                    target.display(),
                    resolved.display()
                );
            }
        } else if kind.is_dir() {
            check_tree(root, &path);
        } else {
            assert!(kind.is_file(), "{}: {kind:?}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_request_with_a_body() {
        let r = parse_request(
            b"POST /a%20b?x=1 HTTP/1.1\r\nhost: h\r\nbad header\r\nx-y: z \r\n\r\n{\"k\":1}\n",
        )
        .unwrap();
        assert_eq!(r.parts.method, Method::POST);
        assert_eq!(r.raw_path(), "/a%20b");
        assert_eq!(r.raw_query(), Some("x=1"));
        assert_eq!(r.parts.headers["host"], "h");
        assert_eq!(r.parts.headers["x-y"], "z");
        assert_eq!(r.parts.headers.len(), 2);
        assert_eq!(r.body, b"{\"k\":1}\n");
    }

    #[test]
    fn refuses_what_hyper_refuses() {
        assert!(parse_request(b"").is_none());
        assert!(parse_request(b"GET http://x/ HTTP/1.1\n\n").is_none());
        assert!(parse_request(b"G(T / HTTP/1.1\n\n").is_none());
        assert!(parse_request(b"GET\n\n").is_none());
    }
}

/// Whether percent-decoding `s` (each `%XX` with two hex digits; anything else kept as it is)
/// gives bytes that are not UTF-8.
pub fn decodes_to_invalid_utf8(s: &str) -> bool {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied(), b.get(i + 2).copied()) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    std::str::from_utf8(&out).is_err()
}
