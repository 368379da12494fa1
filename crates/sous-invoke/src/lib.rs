//! The invoker: resolves the function and qualifier, validates the payload and runs the
//! invocation in an execution environment from the worker's pool. Asynchronous invocations
//! are committed to the durable queue and delivered by [`queue::run`].

mod commit;
pub mod queue;

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
use sous_types::event_invoke::{FunctionEventInvokeConfig, ASYNC_REQUEST_MAX_BYTES};
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
    async_state: Arc<queue::AsyncState>,
    commits: commit::GroupCommit,
}

impl Invoker {
    pub fn new(store: Arc<Store>, pool: Arc<Pool>, runtimes: Arc<Catalog>, scope: Scope) -> Self {
        Self {
            commits: commit::GroupCommit::start(store.clone()),
            store,
            pool,
            runtimes,
            scope,
            async_state: Arc::default(),
        }
    }

    /// The event invoke configuration of `(name, qualifier)` (unqualified = `$LATEST`), or
    /// the defaults when there is none (or it cannot be read).
    pub fn event_config_or_default(
        &self,
        name: &str,
        qualifier: Option<&str>,
    ) -> FunctionEventInvokeConfig {
        match self
            .store
            .get_event_invoke_config(name, qualifier.unwrap_or(LATEST))
        {
            Ok(Some(json)) => serde_json::from_str(&json).unwrap_or_else(|e| {
                tracing::error!(function = name, error = %e, "corrupt event invoke configuration; using the defaults");
                FunctionEventInvokeConfig::default()
            }),
            Ok(None) => FunctionEventInvokeConfig::default(),
            Err(e) => {
                tracing::error!(function = name, error = %e, "read event invoke configuration; using the defaults");
                FunctionEventInvokeConfig::default()
            }
        }
    }

    /// The asynchronous path's figures for the status endpoint: queue depth, age of the
    /// oldest event, and the delivery counters.
    pub fn async_status(&self) -> serde_json::Value {
        use std::sync::atomic::Ordering::Relaxed;
        let c = &self.async_state.counters;
        let (depth, oldest_age_ms) = match self.store.queue_stats() {
            Ok(s) => (
                s.depth,
                s.oldest_received_ms.map(|t| (queue::now_ms() - t).max(0)),
            ),
            Err(e) => {
                tracing::error!(error = %e, "read queue statistics");
                (0, None)
            }
        };
        serde_json::json!({
            "queue_depth": depth,
            "oldest_event_age_ms": oldest_age_ms,
            "accepted": c.accepted.load(Relaxed),
            "deliveries": c.deliveries.load(Relaxed),
            "successes": c.successes.load(Relaxed),
            "function_errors": c.function_errors.load(Relaxed),
            "retries": c.retries.load(Relaxed),
            "throttles": c.throttles.load(Relaxed),
            "expirations": c.expirations.load(Relaxed),
            "retries_exhausted": c.retries_exhausted.load(Relaxed),
            "destination_deliveries": c.destination_deliveries.load(Relaxed),
            "dead_letters": c.dead_letters.load(Relaxed),
            "dropped": c.dropped.load(Relaxed),
        })
    }

    /// The runtimes this host serves (for validating configurations).
    pub fn runtimes(&self) -> &Catalog {
        &self.runtimes
    }

    /// Run one invocation (RequestResponse, Event or DryRun) and build Invoke's answer.
    pub async fn invoke(&self, req: InvokeRequest) -> InvokeResult {
        self.invoke_as(req, uuid::Uuid::new_v4().to_string()).await
    }

    /// [`Invoker::invoke`] under the caller's request id (the control API's
    /// `x-amzn-RequestId`, so the answer, the function's context and the logs share it).
    pub async fn invoke_as(&self, req: InvokeRequest, request_id: String) -> InvokeResult {
        if req.invocation_type == InvocationType::Event
            && req.payload.len() > ASYNC_REQUEST_MAX_BYTES
        {
            return Err(LambdaError::new(
                ErrorCode::RequestEntityTooLargeException,
                format!(
                    "{} byte payload is too large for the Event invocation type (limit {ASYNC_REQUEST_MAX_BYTES} bytes)",
                    req.payload.len()
                ),
            ));
        }
        let stored = self.resolve(&req.function_name, req.qualifier.as_deref())?;
        let payload = normalize_payload(req.payload.clone())?;
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
        if req.invocation_type == InvocationType::Event {
            self.enqueue(&req, &request_id, payload).await?;
            return Ok(InvokeResponse {
                status: 202,
                request_id,
                payload: Bytes::new(),
                function_error: None,
                log_result: None,
                executed_version,
            });
        }
        let spec = self.spec_for(&stored)?;
        let invocation = Invocation {
            request_id: request_id.clone(),
            payload,
            invoked_arn: self
                .scope
                .qualified_arn(&req.function_name, req.qualifier.as_deref()),
            trace_id: trace_id(req.trace_id.as_deref()),
            client_context: req.client_context.clone(),
            cognito_identity: None,
            tail_logs: req.tail_logs,
        };
        let span = info_span!("invoke", function = %req.function_name, version = %executed_version, request_id = %request_id);
        let outcome = self
            .pool
            .invoke(spec, invocation)
            .instrument(span)
            .await
            .map_err(|refusal| {
                tracing::debug!(function = %req.function_name, ?refusal, "invocation throttled");
                LambdaError::throttled(refusal.reason())
            })?;
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

    /// Commit an asynchronous invocation to the queue (durably: it survives a kill of the
    /// process the moment this returns) and wake the delivery task.
    async fn enqueue(
        &self,
        req: &InvokeRequest,
        request_id: &str,
        payload: Bytes,
    ) -> Result<(), LambdaError> {
        let event = sous_store::NewEvent {
            request_id: request_id.to_string(),
            function_name: req.function_name.clone(),
            qualifier: req.qualifier.clone(),
            payload: payload.to_vec(),
            received_ms: queue::now_ms(),
            trace_id: req.trace_id.clone(),
        };
        self.commits
            .enqueue(event)
            .await
            .map_err(|e| LambdaError::service(format!("enqueue event: {e}")))?;
        self.async_state
            .counters
            .accepted
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.async_state.wake.notify_one();
        Ok(())
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

    /// Stop every environment of `function_name`, so the next invocation starts from the
    /// new state.
    pub async fn retire(&self, function_name: &str) {
        self.pool.retire(function_name);
    }

    /// Stop the environments of one version (after an update of `$LATEST`, or a version
    /// deleted); other versions, and their provisioned concurrency, are untouched.
    pub async fn retire_version(&self, function_name: &str, version: &str) {
        self.pool.retire_version(function_name, version);
    }

    /// A function was deleted: drop its environments, reservation and provisioned
    /// concurrency.
    pub async fn forget_function(&self, function_name: &str) {
        self.pool.forget_function(function_name);
    }

    /// The worker's pool (capacity and status figures).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Apply a function's reserved concurrency (`None` = unreserved) to admission.
    pub fn set_reserved(&self, function_name: &str, value: Option<u64>) {
        self.pool.set_reserved(function_name, value);
    }

    /// Keep `requested` environments initialized for the provisioned concurrency
    /// configuration `qualifier` (a version, or an alias: its primary version) of `function`.
    pub fn provision(
        &self,
        function_name: &str,
        qualifier: &str,
        requested: u64,
    ) -> Result<(), LambdaError> {
        let version = if is_version_number(qualifier) {
            qualifier.to_string()
        } else {
            let alias = self
                .store
                .get_alias(function_name, qualifier)
                .map_err(|e| LambdaError::service(format!("load alias {qualifier}: {e}")))?
                .ok_or_else(|| {
                    LambdaError::function_not_found(
                        &self.scope.qualified_arn(function_name, Some(qualifier)),
                    )
                })?;
            alias.function_version
        };
        let stored = self
            .store
            .get_function(function_name, &version)
            .map_err(|e| LambdaError::service(format!("load function {function_name}: {e}")))?
            .ok_or_else(|| {
                LambdaError::function_not_found(
                    &self.scope.qualified_arn(function_name, Some(&version)),
                )
            })?;
        let spec = self.spec_for(&stored)?;
        self.pool
            .provision(function_name, qualifier, spec, requested);
        Ok(())
    }

    /// Stop keeping environments for a provisioned concurrency configuration.
    pub fn unprovision(&self, function_name: &str, qualifier: &str) {
        self.pool.unprovision(function_name, qualifier);
    }

    /// Re-apply a function's provisioned concurrency configurations (after an alias moved
    /// to another version).
    pub fn refresh_provisioned(&self, function_name: &str) -> Result<(), LambdaError> {
        let configs = self
            .store
            .list_provisioned(Some(function_name))
            .map_err(|e| LambdaError::service(format!("load provisioned concurrency: {e}")))?;
        for c in configs {
            self.provision(&c.function_name, &c.qualifier, c.requested)?;
        }
        Ok(())
    }

    /// At start-up: apply every stored reservation and re-provision every stored provisioned
    /// concurrency configuration. Returns how many configurations were re-provisioned.
    pub fn restore(&self) -> Result<usize, LambdaError> {
        let load = |e: sous_store::StoreError| {
            LambdaError::service(format!("load concurrency settings: {e}"))
        };
        for (name, value) in self.store.all_reserved_concurrency().map_err(load)? {
            self.pool.set_reserved(&name, Some(value));
        }
        let configs = self.store.list_provisioned(None).map_err(load)?;
        let mut count = 0;
        for c in configs {
            match self.provision(&c.function_name, &c.qualifier, c.requested) {
                Ok(()) => count += 1,
                Err(e) => {
                    tracing::warn!(function = %c.function_name, qualifier = %c.qualifier, error = %e, "cannot re-provision concurrency")
                }
            }
        }
        Ok(count)
    }

    /// What an environment of a stored version runs.
    fn spec_for(&self, stored: &StoredFunction) -> Result<Arc<EnvSpec>, LambdaError> {
        let name = &stored.config.function_name;
        let code_dir = self
            .store
            .code()
            .extracted_dir(&stored.code_sha256_hex)
            .map_err(|e| LambdaError::service(format!("load code of {name}: {e}")))?;
        let runtime = stored.config.runtime.clone().unwrap_or_default();
        let launch = self.runtimes.launch(&runtime).map_err(|_| {
            LambdaError::new(
                ErrorCode::InvalidRuntimeException,
                format!("The runtime parameter of {runtime} is not supported by this Sous host any more."),
            )
        })?;
        Ok(Arc::new(env_spec(
            &stored.config,
            code_dir,
            launch.cloned(),
            &self.scope,
        )))
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
        ephemeral_mb: cfg.ephemeral_storage.size,
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
