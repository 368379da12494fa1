//! The runtime catalog: which runtime identifiers Sous knows and which this host can serve.

/// How an execution environment of a runtime is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    /// `provided.*`: the zip's own `bootstrap` executable.
    Custom,
}

/// A runtime this build of Sous can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Runtime {
    pub id: &'static str,
    pub kind: RuntimeKind,
}

/// Runtimes served today. The managed runtimes (python3.11, nodejs20.x, java17) join this
/// list with their bootstraps.
pub const SUPPORTED: &[Runtime] = &[
    Runtime {
        id: "provided.al2023",
        kind: RuntimeKind::Custom,
    },
    Runtime {
        id: "provided.al2",
        kind: RuntimeKind::Custom,
    },
];

pub fn lookup(id: &str) -> Option<Runtime> {
    SUPPORTED.iter().copied().find(|r| r.id == id)
}

/// The comma-separated list used in error messages.
pub fn supported_list() -> String {
    SUPPORTED
        .iter()
        .map(|r| r.id)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Lambda's runtime version ARN for a runtime (stable per runtime id in Sous).
pub fn version_arn(region: &str, id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("sous-runtime:{id}:1").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("arn:aws:lambda:{region}::runtime:{hex}")
}
