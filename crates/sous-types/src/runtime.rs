//! The runtime identifiers Sous knows. Which of them this host can serve is decided at start
//! by `sous-runtimes` (an interpreter must be present); validation takes that list.

/// How an execution environment of a runtime is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    /// `provided.*`: the zip's own `bootstrap` executable.
    Custom,
    /// Sous's Python bootstrap under the host's CPython.
    Python,
    /// Sous's Node.js bootstrap under the host's node.
    Node,
    /// Sous's Java bootstrap under the host's JVM.
    Java,
}

/// A runtime identifier Sous knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Runtime {
    pub id: &'static str,
    pub kind: RuntimeKind,
}

/// Every runtime Sous can serve on a host that has what it needs.
pub const KNOWN: &[Runtime] = &[
    Runtime {
        id: "provided.al2023",
        kind: RuntimeKind::Custom,
    },
    Runtime {
        id: "provided.al2",
        kind: RuntimeKind::Custom,
    },
    Runtime {
        id: "python3.11",
        kind: RuntimeKind::Python,
    },
    Runtime {
        id: "nodejs20.x",
        kind: RuntimeKind::Node,
    },
    Runtime {
        id: "java17",
        kind: RuntimeKind::Java,
    },
];

pub fn lookup(id: &str) -> Option<Runtime> {
    KNOWN.iter().copied().find(|r| r.id == id)
}

/// Lambda's runtime version ARN for a runtime (stable per runtime id in Sous).
pub fn version_arn(region: &str, id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("sous-runtime:{id}:1").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("arn:aws:lambda:{region}::runtime:{hex}")
}
