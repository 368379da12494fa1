//! The invoker: resolves the function and qualifier, validates the payload and runs the
//! invocation in an execution environment from the worker's pool.

use bytes::Bytes;
use sous_types::LambdaError;

/// `X-Amz-Invocation-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvocationType {
    RequestResponse,
    Event,
    DryRun,
}

/// A parsed Invoke call.
#[derive(Debug, Clone)]
pub struct InvokeRequest {
    /// Bare function name (the API layer has parsed ARNs and partial ARNs).
    pub function_name: String,
    /// Qualifier from the name or `?Qualifier=`, already reconciled; `None` = `$LATEST`.
    pub qualifier: Option<String>,
    pub invocation_type: InvocationType,
    /// Raw request body (already checked against the 6 MB limit by the transport).
    pub payload: Bytes,
    /// `X-Amz-Log-Type: Tail`.
    pub tail_logs: bool,
    /// Decoded `X-Amz-Client-Context` JSON, passed to the runtime.
    pub client_context: Option<String>,
    /// `X-Amzn-Trace-Id` from the caller, if any.
    pub trace_id: Option<String>,
}

/// What Invoke answers.
#[derive(Debug, Clone)]
pub struct InvokeResponse {
    /// 200, 202 or 204.
    pub status: u16,
    /// The request id the function saw; also the response's `x-amzn-RequestId`.
    pub request_id: String,
    pub payload: Bytes,
    /// `X-Amz-Function-Error` (`Unhandled`) when the function failed.
    pub function_error: Option<String>,
    /// `X-Amz-Log-Result`: base64 of the last 4 KB of the invocation's log, when asked.
    pub log_result: Option<String>,
    /// `X-Amz-Executed-Version`.
    pub executed_version: String,
}

pub type InvokeResult = Result<InvokeResponse, LambdaError>;

use std::sync::Arc;

use base64::Engine;
use tracing::{info_span, Instrument};

use sous_runtimes::{Catalog, Launch};
use sous_store::{Store, StoredFunction};
use sous_types::alias::{is_version_number, AliasConfiguration};
use sous_types::config::FunctionConfiguration;
use sous_types::names::Scope;
use sous_types::ErrorCode;
use sous_worker::{EnvSpec, Invocation, Pool};

/// `$LATEST`, the version every function has.
pub const LATEST: &str = "$LATEST";

/// Runs invocations against the store's functions in the worker's pool.
pub struct Invoker {
    store: Arc<Store>,
    pool: Arc<Pool>,
    runtimes: Arc<Catalog>,
    scope: Scope,
}

impl Invoker {
    pub fn new(store: Arc<Store>, pool: Arc<Pool>, runtimes: Arc<Catalog>, scope: Scope) -> Self {
        Self {
            store,
            pool,
            runtimes,
            scope,
        }
    }

    /// The runtimes this host serves (for validating configurations).
    pub fn runtimes(&self) -> &Catalog {
        &self.runtimes
    }

    /// Run one invocation (RequestResponse, Event or DryRun) and build Invoke's answer.
    pub async fn invoke(&self, req: InvokeRequest) -> InvokeResult {
        let stored = self.resolve(&req.function_name, req.qualifier.as_deref())?;
        let payload = normalize_payload(req.payload.clone())?;
        let request_id = uuid::Uuid::new_v4().to_string();
        let executed_version = stored.config.version.clone();
        match req.invocation_type {
            InvocationType::DryRun => {
                return Ok(InvokeResponse {
                    status: 204,
                    request_id,
                    payload: Bytes::new(),
                    function_error: None,
                    log_result: None,
                    executed_version,
                })
            }
            InvocationType::Event | InvocationType::RequestResponse => {}
        }
        let code_dir = self
            .store
            .code()
            .extracted_dir(&stored.code_sha256_hex)
            .map_err(|e| {
                LambdaError::service(format!("load code of {}: {e}", req.function_name))
            })?;
        let runtime = stored.config.runtime.clone().unwrap_or_default();
        let launch = self.runtimes.launch(&runtime).map_err(|_| {
            LambdaError::new(
                ErrorCode::InvalidRuntimeException,
                format!("The runtime parameter of {runtime} is not supported by this Sous host any more."),
            )
        })?;
        let spec = Arc::new(env_spec(
            &stored.config,
            code_dir,
            launch.cloned(),
            &self.scope,
        ));
        let invocation = Invocation {
            request_id: request_id.clone(),
            payload,
            invoked_arn: self
                .scope
                .qualified_arn(&req.function_name, req.qualifier.as_deref()),
            trace_id: trace_id(req.trace_id.as_deref()),
            client_context: req.client_context.clone(),
            cognito_identity: None,
            tail_logs: req.tail_logs && req.invocation_type == InvocationType::RequestResponse,
        };
        let span = info_span!("invoke", function = %req.function_name, version = %executed_version, request_id = %request_id);
        if req.invocation_type == InvocationType::Event {
            // Not yet durable: the queue with retries and destinations is a later issue.
            let pool = self.pool.clone();
            tokio::spawn(async move { pool.invoke(spec, invocation).await }.instrument(span));
            return Ok(InvokeResponse {
                status: 202,
                request_id,
                payload: Bytes::new(),
                function_error: None,
                log_result: None,
                executed_version,
            });
        }
        let outcome = self.pool.invoke(spec, invocation).instrument(span).await;
        Ok(InvokeResponse {
            status: 200,
            request_id,
            payload: outcome.body,
            function_error: outcome.error_type.map(|_| "Unhandled".to_string()),
            log_result: outcome
                .log
                .map(|log| base64::engine::general_purpose::STANDARD.encode(log.as_bytes())),
            executed_version,
        })
    }

    /// The version an invocation of `name` with `qualifier` runs: `$LATEST` when unqualified,
    /// the version itself, or an alias's version (its additional version with the alias's
    /// weight). A qualifier naming nothing is Lambda's `Function not found: <ARN as named>`.
    pub fn resolve(
        &self,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<StoredFunction, LambdaError> {
        let not_found =
            || LambdaError::function_not_found(&self.scope.qualified_arn(name, qualifier));
        let load_failed =
            |e: sous_store::StoreError| LambdaError::service(format!("load function {name}: {e}"));
        let version = match qualifier {
            None => LATEST.to_string(),
            Some(q) if q == LATEST || is_version_number(q) => q.to_string(),
            Some(alias) => {
                let alias = self
                    .store
                    .get_alias(name, alias)
                    .map_err(load_failed)?
                    .ok_or_else(not_found)?;
                pick_version(&alias, uniform())
            }
        };
        self.store
            .get_function(name, &version)
            .map_err(load_failed)?
            .ok_or_else(not_found)
    }

    /// Stop every environment of `function_name` (after a code or configuration update, or
    /// a delete), so the next invocation starts from the new state.
    pub async fn retire(&self, function_name: &str) {
        self.pool.retire(function_name);
    }
}

/// The version an alias routes one invocation to, given a uniform sample `u` in `[0, 1)`:
/// the additional version when `u < weight`, else the primary.
fn pick_version(alias: &AliasConfiguration, u: f64) -> String {
    match alias.routing_config.as_ref().and_then(|r| r.additional()) {
        Some((extra, weight)) if u < weight => extra.to_string(),
        _ => alias.function_version.clone(),
    }
}

/// A uniform sample in `[0, 1)` from the OS's randomness (53 bits of a v4 UUID).
fn uniform() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() >> 75;
    bits as f64 / (1u64 << 53) as f64
}

/// The event a function receives: the payload as given, `{}` when empty. A payload that is
/// not JSON is refused as Lambda refuses it.
fn normalize_payload(payload: Bytes) -> Result<Bytes, LambdaError> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Ok(Bytes::from_static(b"{}"));
    }
    match serde_json::from_slice::<serde::de::IgnoredAny>(&payload) {
        Ok(_) => Ok(payload),
        Err(e) => Err(LambdaError::new(
            ErrorCode::InvalidRequestContentException,
            format!(
                "Could not parse request body into json: Could not parse payload into json: {e}"
            ),
        )),
    }
}

fn env_spec(
    cfg: &FunctionConfiguration,
    code_dir: std::path::PathBuf,
    launch: Option<Launch>,
    scope: &Scope,
) -> EnvSpec {
    EnvSpec {
        function_name: cfg.function_name.clone(),
        version: cfg.version.clone(),
        revision_id: cfg.revision_id.clone(),
        memory_mb: cfg.memory_size,
        timeout_s: cfg.timeout,
        handler: cfg.handler.clone().unwrap_or_default(),
        runtime: cfg.runtime.clone().unwrap_or_default(),
        code_dir,
        variables: cfg.variables(),
        region: scope.region.clone(),
        log_group: cfg
            .logging_config
            .log_group
            .clone()
            .unwrap_or_else(|| format!("/aws/lambda/{}", cfg.function_name)),
        launch,
    }
}

/// The X-Ray trace header of an invocation: the caller's when it sent one, else a new root.
fn trace_id(caller: Option<&str>) -> String {
    if let Some(t) = caller.filter(|t| t.starts_with("Root=")) {
        return t.to_string();
    }
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{secs:08x}-{};Parent={};Sampled=0",
        &a[..24],
        &b[..16]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads() {
        assert_eq!(
            normalize_payload(Bytes::new()).unwrap(),
            Bytes::from_static(b"{}")
        );
        assert_eq!(
            normalize_payload(Bytes::from_static(b"\"ok\"")).unwrap(),
            Bytes::from_static(b"\"ok\"")
        );
        let e = normalize_payload(Bytes::from_static(b"{nope")).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequestContentException);
    }

    #[test]
    fn alias_routing_picks_by_weight() {
        use sous_types::alias::AliasRoutingConfiguration;
        let mut alias = AliasConfiguration {
            alias_arn: "arn".into(),
            name: "live".into(),
            function_version: "1".into(),
            description: String::new(),
            routing_config: Some(AliasRoutingConfiguration {
                additional_version_weights: Some([("2".to_string(), 0.3)].into()),
            }),
            revision_id: "r".into(),
        };
        assert_eq!(pick_version(&alias, 0.0), "2");
        assert_eq!(pick_version(&alias, 0.29), "2");
        assert_eq!(pick_version(&alias, 0.3), "1");
        assert_eq!(pick_version(&alias, 0.99), "1");
        alias.routing_config = None;
        assert_eq!(pick_version(&alias, 0.0), "1");
        let n = 20_000;
        let hits = (0..n).filter(|_| uniform() < 0.3).count();
        assert!((5_400..6_600).contains(&hits), "{hits}");
        assert!((0..1000)
            .map(|_| uniform())
            .all(|u| (0.0..1.0).contains(&u)));
    }

    #[test]
    fn trace_ids() {
        assert!(trace_id(None).starts_with("Root=1-"));
        assert_eq!(trace_id(Some("Root=1-abc")), "Root=1-abc");
    }
}
