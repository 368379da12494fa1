//! What an environment runs and what one invocation carries.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::Bytes;

/// Everything needed to start an execution environment of one function version.
#[derive(Debug, Clone)]
pub struct EnvSpec {
    pub function_name: String,
    /// `$LATEST` or a version number.
    pub version: String,
    /// The configuration's RevisionId: environments of an older revision are never reused.
    pub revision_id: String,
    pub memory_mb: i64,
    /// EphemeralStorage: the size of `/tmp` in MB.
    pub ephemeral_mb: i64,
    pub timeout_s: i64,
    pub handler: String,
    pub runtime: String,
    /// The extracted deployment package.
    pub code_dir: PathBuf,
    /// The function's layers merged in order (shown read-only at `/opt`), if it has any.
    pub opt_dir: Option<PathBuf>,
    /// The function's own environment variables.
    pub variables: BTreeMap<String, String>,
    pub region: String,
    pub log_group: String,
    /// How to start a managed runtime; `None` runs the zip's own `bootstrap`.
    pub launch: Option<sous_runtimes::Launch>,
}

/// One invocation handed to an environment.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub payload: Bytes,
    /// `Lambda-Runtime-Invoked-Function-Arn`: the ARN as the caller named it.
    pub invoked_arn: String,
    /// `Lambda-Runtime-Trace-Id`.
    pub trace_id: String,
    /// Decoded client context JSON (`Lambda-Runtime-Client-Context`).
    pub client_context: Option<String>,
    /// Cognito identity JSON (`Lambda-Runtime-Cognito-Identity`).
    pub cognito_identity: Option<String>,
    /// Return the invocation's log tail.
    pub tail_logs: bool,
    /// Called with the outcome once it is known, before the `END` line is written (the
    /// asynchronous queue commits the outcome there, so an `END` in the log means the event
    /// will not run again).
    pub settle: Option<Settle>,
}

/// A callback given an invocation's outcome before its `END` line (see
/// [`Invocation::settle`]); the line waits for the future it returns.
#[derive(Clone)]
pub struct Settle(pub std::sync::Arc<SettleFn>);

/// What a [`Settle`] calls: the outcome in, a future the `END` line waits for out.
pub type SettleFn = dyn Fn(&Outcome) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
    + Send
    + Sync;

impl Settle {
    /// Run the callback for `outcome`.
    pub async fn call(&self, outcome: &Outcome) {
        (self.0)(outcome).await;
    }
}

impl std::fmt::Debug for Settle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Settle")
    }
}

/// How an invocation ended, as the caller sees it.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Response payload, or the error document.
    pub body: Bytes,
    /// `Some` when the invocation failed (the body is then the error document); the value is
    /// the error type (`Sandbox.Timedout`, `Runtime.ExitError`, or what the runtime reported).
    pub error_type: Option<String>,
    /// The invocation's log (START to REPORT), when `tail_logs` was asked.
    pub log: Option<String>,
}

impl Outcome {
    /// A platform error (timeout, crash, oversize response): Lambda's `{errorType, errorMessage}`.
    pub fn platform_error(error_type: &str, message: String) -> Self {
        let body = serde_json::json!({ "errorType": error_type, "errorMessage": message });
        Self {
            body: Bytes::from(body.to_string()),
            error_type: Some(error_type.to_string()),
            log: None,
        }
    }
}
