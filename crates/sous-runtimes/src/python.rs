//! The `python` managed runtime: not built yet, so never offered.

use std::io;
use std::path::Path;

use crate::Launch;

/// Materialize the bootstrap into `dir` and find the interpreter; `None` when this host
/// cannot serve the runtime.
pub fn detect(_id: &str, _dir: &Path) -> io::Result<Option<Launch>> {
    Ok(None)
}
