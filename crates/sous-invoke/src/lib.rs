//! The invoker: resolves the function and qualifier, validates the payload and runs the
//! invocation in an execution environment from the worker's pool. Asynchronous invocations
//! are committed to the durable queue and delivered by [`queue::run`].

mod cache;
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
use sous_store::{Store, StoreError, StoredFunction};

use cache::{ConfigCache, Resolved};
use sous_types::alias::{is_version_number, AliasConfiguration};
use sous_types::config::FunctionConfiguration;
use sous_types::event_invoke::{FunctionEventInvokeConfig, ASYNC_REQUEST_MAX_BYTES};
use sous_types::names::Scope;
use sous_types::ErrorCode;
use sous_worker::{EnvSpec, Invocation, Pool};

pub use sous_store::LATEST;

/// Runs invocations against the store's functions in the worker's pool.
pub struct Invoker {
    store: Arc<Store>,
    pool: Arc<Pool>,
    runtimes: Arc<Catalog>,
    scope: Scope,
    async_state: Arc<queue::AsyncState>,
    commits: commit::GroupCommit,
    /// What invocations resolve, kept while the store's configuration is unchanged.
    cache: ConfigCache,
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
            cache: ConfigCache::default(),
        }
    }

    /// The event invoke configuration of `(name, qualifier)` (unqualified = `$LATEST`), or
    /// the defaults when there is none (or it cannot be read).
    pub async fn event_config_or_default(
        &self,
        name: &str,
        qualifier: Option<&str>,
    ) -> Arc<FunctionEventInvokeConfig> {
        let qualifier = qualifier.unwrap_or(LATEST);
        let generation = self.store.generation();
        if let Some(c) = self.cache.event_config(generation, name, qualifier) {
            return c;
        }
        let (n, q) = (name.to_string(), qualifier.to_string());
        match self.store.run(move |s| s.event_invoke_config(&n, &q)).await {
            Ok(found) => {
                let config = Arc::new(found.unwrap_or_default());
                self.cache
                    .put_event_config(generation, name, qualifier, config.clone());
                config
            }
            Err(e) => {
                tracing::error!(function = name, error = %e, "read event invoke configuration; using the defaults");
                Arc::default()
            }
        }
    }

    /// The asynchronous path's figures for the status endpoint: queue depth, age of the
    /// oldest event, and the delivery counters.
    ///
    /// Blocking (it reads the queue's figures from SQLite): call it off the async threads.
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
        let resolved = self
            .resolve(&req.function_name, req.qualifier.as_deref())
            .await?;
        resolved.stored.config.check_invocable()?;
        let payload = normalize_payload(req.payload.clone())?;
        let executed_version = resolved.stored.config.version.clone();
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
        let spec = self.spec_for(&resolved).await?;
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
            settle: None,
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
    /// Served from the configuration cache while the store's configuration is unchanged;
    /// store reads run on the blocking pool.
    pub async fn resolve(
        &self,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<Arc<Resolved>, LambdaError> {
        let not_found =
            || LambdaError::function_not_found(&self.scope.qualified_arn(name, qualifier));
        let load_failed =
            |e: StoreError| LambdaError::service(format!("load function {name}: {e}"));
        // Read before the store: what is read is kept under this generation (see `cache`).
        let generation = self.store.generation();
        let version = match qualifier {
            None => LATEST.to_string(),
            Some(q) if q == LATEST || is_version_number(q) => q.to_string(),
            Some(alias) => {
                let config = match self.cache.alias(generation, name, alias) {
                    Some(a) => a,
                    None => {
                        let (n, a) = (name.to_string(), alias.to_string());
                        let loaded = self
                            .store
                            .run(move |s| s.get_alias(&n, &a))
                            .await
                            .map_err(load_failed)?
                            .ok_or_else(not_found)?;
                        let loaded = Arc::new(loaded);
                        self.cache.put_alias(generation, name, loaded.clone());
                        loaded
                    }
                };
                pick_version(&config, uniform())
            }
        };
        if let Some(r) = self.cache.version(generation, name, &version) {
            return Ok(r);
        }
        let n = name.to_string();
        let stored = self
            .store
            .run(move |s| s.get_function(&n, &version))
            .await
            .map_err(load_failed)?
            .ok_or_else(not_found)?;
        let resolved = Arc::new(Resolved {
            stored,
            spec: std::sync::OnceLock::new(),
        });
        self.cache.put_version(generation, resolved.clone());
        Ok(resolved)
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
    ///
    /// Blocking (store reads, code extraction): call it off the async threads.
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
        let spec = build_spec(&self.store, &self.runtimes, &self.scope, &stored)?;
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
    ///
    /// Blocking (store reads, code extraction): call it off the async threads.
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
    ///
    /// Blocking (store reads, code extraction): call it off the async threads.
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

    /// What an environment of a resolved version runs: built (the code extracted, on the
    /// blocking pool) by the first invocation that needs it, then kept with the version.
    async fn spec_for(&self, resolved: &Arc<Resolved>) -> Result<Arc<EnvSpec>, LambdaError> {
        if let Some(spec) = resolved.spec.get() {
            return Ok(spec.clone());
        }
        let store = self.store.clone();
        let runtimes = self.runtimes.clone();
        let scope = self.scope.clone();
        let r = resolved.clone();
        let spec =
            tokio::task::spawn_blocking(move || build_spec(&store, &runtimes, &scope, &r.stored))
                .await
                .map_err(|e| {
                    LambdaError::service(format!("prepare the environment spec: {e}"))
                })??;
        Ok(resolved.spec.get_or_init(|| spec).clone())
    }
}

/// What an environment of a stored version runs. Blocking: extracts the code if its
/// extraction is missing from the cache.
fn build_spec(
    store: &Store,
    runtimes: &Catalog,
    scope: &Scope,
    stored: &StoredFunction,
) -> Result<Arc<EnvSpec>, LambdaError> {
    let name = &stored.config.function_name;
    let code_dir = store
        .code()
        .extracted_dir(&stored.code_sha256_hex)
        .map_err(|e| LambdaError::service(format!("load code of {name}: {e}")))?;
    let opt_dir = layers_dir(store, &stored.config)?;
    let runtime = stored.config.runtime.clone().unwrap_or_default();
    let launch = runtimes.launch(&runtime).map_err(|_| {
        LambdaError::new(
            ErrorCode::InvalidRuntimeException,
            format!(
                "The runtime parameter of {runtime} is not supported by this Sous host any more."
            ),
        )
    })?;
    let mut spec = env_spec(&stored.config, code_dir, launch.cloned(), scope);
    spec.opt_dir = opt_dir;
    Ok(Arc::new(spec))
}

/// The function's layers merged in order for `/opt` (`None` without layers). A layer version
/// deleted since the function was configured still resolves: its row and blob stay while a
/// function version names it (see `sous_store::layers`).
fn layers_dir(
    store: &Store,
    config: &FunctionConfiguration,
) -> Result<Option<std::path::PathBuf>, LambdaError> {
    let Some(layers) = config.layers.as_ref().filter(|l| !l.is_empty()) else {
        return Ok(None);
    };
    let name = &config.function_name;
    let mut shas = Vec::with_capacity(layers.len());
    for layer in layers {
        let found = sous_types::layers::parse_layer_version_arn(&layer.arn)
            .map(|r| store.layer_version_any(&r.name, r.version))
            .transpose()
            .map_err(|e| LambdaError::service(format!("load layers of {name}: {e}")))?
            .flatten();
        let Some(version) = found else {
            return Err(LambdaError::service(format!(
                "load layers of {name}: layer version {} is missing from the store",
                layer.arn
            )));
        };
        shas.push(version.code_sha256_hex);
    }
    store
        .opt_dir(&shas)
        .map(Some)
        .map_err(|e| LambdaError::service(format!("merge layers of {name}: {e}")))
}

/// The version an alias routes one invocation to, given a uniform sample `u` in `[0, 1)`:
/// the additional version when `u < weight`, else the primary.
fn pick_version(alias: &AliasConfiguration, u: f64) -> String {
    match alias.routing_config.as_ref().and_then(|r| r.additional()) {
        Some((extra, weight)) if u < weight => extra.to_string(),
        _ => alias.function_version.clone(),
    }
}

/// A uniform sample in `[0, 1)` (`rand`'s thread-local generator).
fn uniform() -> f64 {
    rand::random::<f64>()
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
        opt_dir: None,
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

    mod cache {
        //! The configuration cache serves what the store holds now: a write committed
        //! before an invocation starts is seen by it, whichever task wrote.

        use super::*;
        use sous_store::StoreError;
        use sous_types::config::{EphemeralStorage, LoggingConfig, TracingConfig};
        use sous_worker::PoolConfig;

        fn config(name: &str, revision: &str, memory: i64) -> FunctionConfiguration {
            FunctionConfiguration {
                function_name: name.into(),
                function_arn: format!("arn:aws:lambda:us-east-1:000000000000:function:{name}"),
                runtime: Some("provided.al2023".into()),
                role: "arn:aws:iam::000000000000:role/r".into(),
                handler: Some("bootstrap".into()),
                code_size: 10,
                description: String::new(),
                timeout: 3,
                memory_size: memory,
                last_modified: "2020-04-10T19:06:32.563+0000".into(),
                code_sha256: "x".into(),
                version: LATEST.into(),
                environment: None,
                tracing_config: TracingConfig {
                    mode: Some("PassThrough".into()),
                },
                revision_id: revision.into(),
                dead_letter_config: None,
                state: Some("Active".into()),
                state_reason: None,
                state_reason_code: None,
                last_update_status: Some("Successful".into()),
                package_type: "Zip".into(),
                architectures: vec!["x86_64".into()],
                ephemeral_storage: EphemeralStorage { size: 512 },
                snap_start: serde_json::json!({"ApplyOn": "None", "OptimizationStatus": "Off"}),
                runtime_version_config: None,
                logging_config: LoggingConfig::default(),
                layers: None,
            }
        }

        fn stored(revision: &str, memory: i64) -> StoredFunction {
            StoredFunction {
                config: config("f", revision, memory),
                code_sha256_hex: "aa".into(),
            }
        }

        fn invoker() -> (Invoker, Arc<Store>, tempfile::TempDir) {
            let dir = tempfile::tempdir().unwrap();
            let store = Arc::new(Store::open(dir.path()).unwrap());
            let pool = Pool::new(PoolConfig::new(dir.path().to_path_buf(), false)).unwrap();
            let invoker = Invoker::new(
                store.clone(),
                pool,
                Arc::new(Catalog::custom_only()),
                Scope::new("us-east-1", "000000000000"),
            );
            (invoker, store, dir)
        }

        /// Replace `$LATEST` from another task (through the blocking pool, as the API does).
        async fn update_elsewhere(store: &Arc<Store>, from: &str, to: &str, memory: i64) {
            let (store, from, to) = (store.clone(), from.to_string(), to.to_string());
            tokio::spawn(async move {
                store
                    .run(move |s| s.replace_function(&stored(&to, memory), &from))
                    .await
                    .unwrap();
            })
            .await
            .unwrap();
        }

        #[tokio::test]
        async fn an_update_is_seen_by_the_next_invocation_and_reads_are_cached_meanwhile() {
            let (invoker, store, _dir) = invoker();
            store.insert_function(&stored("r1", 128)).unwrap();
            let first = invoker.resolve("f", None).await.unwrap();
            assert_eq!(first.stored.config.memory_size, 128);
            let again = invoker.resolve("f", None).await.unwrap();
            assert!(
                Arc::ptr_eq(&first, &again),
                "the second read was not cached"
            );
            update_elsewhere(&store, "r1", "r2", 256).await;
            let after = invoker.resolve("f", None).await.unwrap();
            assert_eq!(after.stored.config.revision_id, "r2");
            assert_eq!(after.stored.config.memory_size, 256);
            // A function deleted is not found any more.
            store.delete_function("f").unwrap();
            let e = invoker.resolve("f", None).await.unwrap_err();
            assert_eq!(e.code, ErrorCode::ResourceNotFoundException);
        }

        #[tokio::test]
        async fn alias_moves_and_event_configurations_are_seen_at_once() {
            let (invoker, store, _dir) = invoker();
            store.insert_function(&stored("r1", 128)).unwrap();
            for n in 1..=2u64 {
                store
                    .publish_version::<StoreError>(
                        "f",
                        &format!("l{n}"),
                        |_| Ok(()),
                        |latest, n| {
                            let mut v = latest.clone();
                            v.config.version = n.to_string();
                            v.config.memory_size = 128 * i64::try_from(n).unwrap();
                            v
                        },
                    )
                    .unwrap();
                let latest = store.get_function("f", LATEST).unwrap().unwrap();
                let mut next = stored(&format!("m{n}"), 128);
                next.config.description = format!("change {n}");
                store
                    .replace_function(&next, &latest.config.revision_id)
                    .unwrap();
            }
            let mut alias = AliasConfiguration {
                alias_arn: "arn".into(),
                name: "live".into(),
                function_version: "1".into(),
                description: String::new(),
                routing_config: None,
                revision_id: "a1".into(),
            };
            store.insert_alias("f", &alias).unwrap();
            let v = invoker.resolve("f", Some("live")).await.unwrap();
            assert_eq!(v.stored.config.version, "1");
            alias.function_version = "2".into();
            alias.revision_id = "a2".into();
            let (s, a) = (store.clone(), alias.clone());
            store
                .run(move |_| s.replace_alias("f", &a, "a1"))
                .await
                .unwrap();
            let v = invoker.resolve("f", Some("live")).await.unwrap();
            assert_eq!(v.stored.config.version, "2");

            assert_eq!(
                invoker.event_config_or_default("f", None).await.retries(),
                2
            );
            let cfg = FunctionEventInvokeConfig {
                maximum_retry_attempts: Some(0),
                ..FunctionEventInvokeConfig::default()
            };
            store.set_event_invoke_config("f", LATEST, &cfg).unwrap();
            assert_eq!(
                invoker.event_config_or_default("f", None).await.retries(),
                0
            );
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn concurrent_writers_never_leave_an_invocation_behind() {
            let (invoker, store, _dir) = invoker();
            store.insert_function(&stored("0", 128)).unwrap();
            let invoker = Arc::new(invoker);
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
            // Readers hammer the cache meanwhile, so that stale entries would be there.
            let readers: Vec<_> = (0..3)
                .map(|_| {
                    let invoker = invoker.clone();
                    tokio::spawn(async move {
                        for _ in 0..300 {
                            invoker.resolve("f", None).await.unwrap();
                        }
                    })
                })
                .collect();
            let writer = tokio::spawn({
                let store = store.clone();
                async move {
                    for n in 1..=100u64 {
                        update_elsewhere(&store, &(n - 1).to_string(), &n.to_string(), 128).await;
                        tx.send(n).unwrap();
                    }
                }
            });
            while let Some(n) = rx.recv().await {
                let seen: u64 = invoker
                    .resolve("f", None)
                    .await
                    .unwrap()
                    .stored
                    .config
                    .revision_id
                    .parse()
                    .unwrap();
                assert!(
                    seen >= n,
                    "write {n} had returned, the invocation saw {seen}"
                );
            }
            writer.await.unwrap();
            for r in readers {
                r.await.unwrap();
            }
        }
    }
}
