//! Functions: CreateFunction, GetFunction(Configuration), ListFunctions, UpdateFunctionCode,
//! UpdateFunctionConfiguration, DeleteFunction; and the code blobs they leave behind.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde::Serialize;
use sous_store::db::LATEST;
use sous_store::{Put, StoreError, StoredFunction};
use sous_types::alias::is_version_number;
use sous_types::concurrency::Concurrency;
use sous_types::config::{
    host_architecture, validate_architectures, validate_settings, CreateFunctionInput,
    EphemeralStorage, FunctionConfiguration, LoggingConfig, SettingsInput, TracingConfig,
    UpdateCodeInput,
};
use sous_types::limits::*;
use sous_types::names::Scope;
use sous_types::{timefmt, ErrorCode, LambdaError};
use time::OffsetDateTime;

use super::versions::publish;
use super::{blocking, decode_marker, encode_marker, new_revision, saturating_i64, Reply};
use crate::error::{precondition_failed, store_error, ApiError};
use crate::routes::Target;
use crate::s3_code::{self, code_source, CodeSource, S3_ZIPPED_MAX_BYTES};
use crate::{code_url, ApiState};

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetFunctionOutput {
    pub configuration: FunctionConfiguration,
    pub code: CodeLocation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CodeLocation {
    pub repository_type: &'static str,
    pub location: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListFunctionsOutput {
    pub functions: Vec<FunctionConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

pub(super) async fn create(
    state: &Arc<ApiState>,
    name: String,
    input: CreateFunctionInput,
    now: OffsetDateTime,
) -> Result<Reply, ApiError> {
    let code = input.code.unwrap_or_default();
    if input.package_type.as_deref() == Some("Image") || code.image_uri.is_some() {
        return Err(zip_only().into());
    }
    let source = code_source(
        code.zip_file,
        code.s3_bucket,
        code.s3_key,
        code.s3_object_version,
        "code.",
    )?;
    let settings = input.settings;
    if settings.runtime.is_none() || settings.handler.is_none() {
        return Err(LambdaError::invalid_parameter(
            "Runtime and Handler are mandatory parameters for functions created with deployment packages.",
        ).into());
    }
    validate_settings(&settings, &state.invoker.runtimes().available())?;
    check_dead_letter_config(&settings, &state.scope)?;
    let architecture = match &input.architectures {
        Some(a) => validate_architectures(a)?,
        None => host_architecture().to_string(),
    };
    let arn = state.scope.function_arn(&name);
    let tags = input.tags.unwrap_or_default();
    let publish_too = input.publish.unwrap_or(false);
    let package = match source {
        CodeSource::Inline(b64) => Package::Inline(b64),
        CodeSource::S3(object) => {
            // Refuse a duplicate before the package is fetched.
            let (st, name, arn) = (state.clone(), name.clone(), arn.clone());
            blocking(move || refuse_duplicate(&st, &name, &arn)).await?;
            Package::Fetched(s3_code::fetch_zip(state, &object).await?)
        }
    };
    let st = state.clone();
    let (wait, hold) = create_wait();
    let created = blocking(move || {
        // Refuse a duplicate before the (possibly large) zip is hashed and stored.
        refuse_duplicate(&st, &name, &arn)?;
        let pin = st.store.pin_code();
        let (layers, layers_size) = super::layers::resolve_function_layers(
            &st,
            settings.layers.as_deref().unwrap_or_default(),
        )?;
        // A package whose extraction takes long leaves the function Pending (Lambda's state
        // while it prepares a function), unless a version is published at once.
        let (code, extraction) = if publish_too {
            (package.store(&st, "CreateFunction")?, None)
        } else {
            match package.store_within(&st, "CreateFunction", wait)? {
                Put::Ready(code) => (code, None),
                Put::Extracting(code, extraction) => (code, Some(extraction)),
            }
        };
        // Code plus layers within 250 MB unzipped (the package's bytes are counted while it
        // is validated, before its extraction ends).
        if let Err(e) = super::layers::check_total_size(code.unzipped_size, layers_size) {
            if let Some(extraction) = extraction {
                // Collected below: first let it finish, so nothing is renamed in after.
                let _ = extraction.wait();
            }
            drop(pin);
            gc(&st, &[code.sha256_hex]);
            return Err(e.into());
        }
        let mut config = new_configuration(&st, &name, &settings, architecture, &code, now);
        config.layers = layers;
        if extraction.is_some() {
            config.set_creating();
        }
        let stored = StoredFunction {
            config,
            code_sha256_hex: code.sha256_hex.clone(),
        };
        match st.store.insert_function_with_tags(&stored, &tags) {
            Ok(()) => {
                drop(pin);
                if let Some(extraction) = extraction {
                    finish_creation(&st, &name, &code.sha256_hex, extraction, hold);
                }
                Ok(stored.config)
            }
            Err(StoreError::Exists) => {
                drop(pin);
                if let Some(extraction) = extraction {
                    // Collected below: first let it finish, so nothing is renamed in after.
                    let _ = extraction.wait();
                }
                gc(&st, &[code.sha256_hex]);
                Err(already_exists(&name).into())
            }
            Err(e) => Err(store_error(e, &arn)),
        }
    })
    .await?;
    tracing::info!(function = %created.function_name, code_sha256 = %created.code_sha256, "function created");
    let created = if publish_too {
        // CreateFunction with Publish answers with the new version (its FunctionArn
        // unqualified, as Lambda shows it there).
        let st = state.clone();
        let name = created.function_name.clone();
        let mut version = blocking(move || publish(&st, &name, None, None, None)).await?;
        version.function_arn = state.scope.function_arn(&version.function_name);
        version
    } else {
        created
    };
    Ok(Reply::Function {
        status: 201,
        config: Box::new(created),
    })
}

/// How long CreateFunction waits for its package's extraction before it answers with the
/// function `Pending` (the extraction then goes on; see [`finish_creation`]).
const CREATE_EXTRACT_WAIT: Duration = Duration::from_secs(2);

/// How long CreateFunction waits for an extraction, and how long a `Pending` function stays
/// `Pending` at least. For tests (hidden): `SOUS_TEST_CREATE_PENDING_MS=N` answers `Pending`
/// at once for every package not extracted yet and keeps it `Pending` N ms longer.
fn create_wait() -> (Duration, Duration) {
    let forced = std::env::var("SOUS_TEST_CREATE_PENDING_MS")
        .ok()
        .and_then(|v| v.parse().ok());
    match forced {
        Some(ms) => (Duration::ZERO, Duration::from_millis(ms)),
        None => (CREATE_EXTRACT_WAIT, Duration::ZERO),
    }
}

/// Wait, on a thread of the blocking pool, for the extraction of a `Pending` function's code,
/// then make it `Active` (or `Failed`). Code is pinned meanwhile, so a delete waits for it
/// before collecting the blob.
pub(super) fn finish_creation(
    state: &Arc<ApiState>,
    name: &str,
    code_hex: &str,
    extraction: sous_store::Extraction,
    hold: Duration,
) {
    let (st, name, hex) = (state.clone(), name.to_string(), code_hex.to_string());
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        span.in_scope(|| {
            let pin = st.store.pin_code();
            let extracted = match extraction.wait() {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!(function = %name, error = %e, "extracting the code of a new function failed; the function is Failed");
                    false
                }
            };
            drop(pin);
            std::thread::sleep(hold);
            settle(&st, &name, &hex, extracted);
        })
    });
}

/// After a restart: finish the creations a stop interrupted (their code is extracted again
/// from its blob).
pub fn resume_pending_creations(state: &Arc<ApiState>) {
    let st = state.clone();
    tokio::task::spawn_blocking(move || {
        let pending = match st.store.pending_creations() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "list functions still being created");
                return;
            }
        };
        for (name, hex) in pending {
            tracing::info!(function = %name, "finishing the creation a stop interrupted");
            let extracted = match st.store.code().extracted_dir(&hex) {
                Ok(_) => true,
                Err(e) => {
                    tracing::error!(function = %name, error = %e, "extracting the code of a new function failed; the function is Failed");
                    false
                }
            };
            settle(&st, &name, &hex, extracted);
        }
    });
}

fn settle(state: &ApiState, name: &str, hex: &str, extracted: bool) {
    match state.store.settle_creation(name, hex, extracted) {
        Ok(true) if extracted => tracing::info!(function = %name, "function Active"),
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!(function = %name, "creation settled: the function changed or went meanwhile")
        }
        Err(e) => {
            tracing::error!(function = %name, error = %e, "record the state of a new function")
        }
    }
}

/// Lambda's conflict when a function `name` exists already.
fn refuse_duplicate(st: &ApiState, name: &str, arn: &str) -> Result<(), ApiError> {
    if st
        .store
        .get_function(name, LATEST)
        .map_err(|e| store_error(e, arn))?
        .is_some()
    {
        return Err(already_exists(name).into());
    }
    Ok(())
}

/// A deployment package on its way to the code store: `ZipFile` (base64, within the
/// direct-upload limit) or the bytes of an S3 object (within the S3 cap).
enum Package {
    Inline(String),
    Fetched(Vec<u8>),
}

impl Package {
    /// The zip's bytes and the cap on its zipped size.
    fn into_zip(self, operation: &str) -> Result<(Vec<u8>, u64), ApiError> {
        match self {
            Package::Inline(b64) => Ok((decode_zip(&b64, operation)?, ZIPPED_MAX_BYTES)),
            Package::Fetched(zip) => Ok((zip, S3_ZIPPED_MAX_BYTES)),
        }
    }

    /// Validate, extract and store it (blocking: call from the blocking pool).
    fn store(self, st: &ApiState, operation: &str) -> Result<sous_store::StoredCode, ApiError> {
        let (zip, max) = self.into_zip(operation)?;
        Ok(st.store.code().put_zip_max(&zip, max)?)
    }

    /// [`Package::store`], answering after `wait` while the extraction goes on.
    fn store_within(self, st: &ApiState, operation: &str, wait: Duration) -> Result<Put, ApiError> {
        let (zip, max) = self.into_zip(operation)?;
        Ok(st.store.code().put_zip_within_max(&zip, wait, max)?)
    }
}

/// A dead-letter target must be a Sous function of this region and account (SQS and SNS
/// need an endpoint this host does not have).
fn check_dead_letter_config(s: &SettingsInput, scope: &Scope) -> Result<(), LambdaError> {
    match s
        .dead_letter_config
        .as_ref()
        .and_then(|d| d.target_arn.as_deref())
    {
        Some(target) if !target.is_empty() => {
            sous_types::event_invoke::check_dead_letter(target, scope)
        }
        _ => Ok(()),
    }
}

/// The `$LATEST` configuration of a new function: the request's settings over Lambda's
/// defaults.
fn new_configuration(
    state: &ApiState,
    name: &str,
    s: &SettingsInput,
    architecture: String,
    code: &sous_store::StoredCode,
    now: OffsetDateTime,
) -> FunctionConfiguration {
    let region = &state.scope.region;
    let mut config = FunctionConfiguration {
        function_name: name.to_string(),
        function_arn: state.scope.function_arn(name),
        runtime: None,
        role: String::new(),
        handler: None,
        code_size: code.size,
        description: String::new(),
        timeout: TIMEOUT_DEFAULT_S,
        memory_size: MEMORY_DEFAULT_MB,
        last_modified: timefmt::last_modified(now),
        code_sha256: code.sha256_b64.clone(),
        version: LATEST.to_string(),
        environment: None,
        tracing_config: TracingConfig {
            mode: Some("PassThrough".into()),
        },
        revision_id: new_revision(),
        dead_letter_config: None,
        state: Some("Active".into()),
        state_reason: None,
        state_reason_code: None,
        last_update_status: Some("Successful".into()),
        package_type: "Zip".into(),
        architectures: vec![architecture],
        ephemeral_storage: EphemeralStorage {
            size: EPHEMERAL_DEFAULT_MB,
        },
        snap_start: serde_json::json!({ "ApplyOn": "None", "OptimizationStatus": "Off" }),
        runtime_version_config: None,
        logging_config: LoggingConfig {
            log_format: Some("Text".into()),
            log_group: Some(format!("/aws/lambda/{name}")),
            ..LoggingConfig::default()
        },
        layers: None,
    };
    // Runtime (required for Zip) also sets RuntimeVersionConfig.
    config.apply(s, region);
    config
}

pub(super) fn get(state: &ApiState, t: &Target, now: OffsetDateTime) -> Result<Reply, ApiError> {
    let (configuration, hex) = lookup(state, t)?;
    let arn = state.scope.function_arn(&t.name);
    let tags = state
        .store
        .get_tags(&t.name)
        .map_err(|e| store_error(e, &arn))?
        .filter(|t| !t.is_empty());
    let concurrency = state
        .store
        .reserved_concurrency(&t.name)
        .map_err(|e| store_error(e, &arn))?
        .flatten()
        .map(|r| Concurrency {
            reserved_concurrent_executions: Some(saturating_i64(r)),
        });
    let location = code_url::sign(
        &state.public_url,
        &state.credentials.secret_access_key,
        &hex,
        now.unix_timestamp(),
    );
    Ok(Reply::GetFunction(Box::new(GetFunctionOutput {
        configuration,
        code: CodeLocation {
            repository_type: "S3",
            location,
        },
        tags,
        concurrency,
    })))
}

/// GetFunctionConfiguration.
pub(super) fn get_configuration(state: &ApiState, t: &Target) -> Result<Reply, ApiError> {
    let (config, _) = lookup(state, t)?;
    Ok(Reply::Function {
        status: 200,
        config: Box::new(config),
    })
}

/// The stored version a target names (an alias names its primary version), with the ARN
/// as the caller named it.
pub(super) fn lookup(
    state: &ApiState,
    t: &Target,
) -> Result<(FunctionConfiguration, String), ApiError> {
    let arn = state.scope.qualified_arn(&t.name, t.qualifier.as_deref());
    let version = match t.qualifier.as_deref() {
        None => LATEST.to_string(),
        Some(q) if q == LATEST || is_version_number(q) => q.to_string(),
        Some(alias) => {
            state
                .store
                .get_alias(&t.name, alias)
                .map_err(|e| store_error(e, &arn))?
                .ok_or_else(|| LambdaError::function_not_found(&arn))?
                .function_version
        }
    };
    let found = state
        .store
        .get_function(&t.name, &version)
        .map_err(|e| store_error(e, &arn))?;
    let Some(StoredFunction {
        mut config,
        code_sha256_hex,
    }) = found
    else {
        return Err(LambdaError::function_not_found(&arn).into());
    };
    if t.qualifier.is_some() {
        config.function_arn = arn;
    }
    Ok((config, code_sha256_hex))
}

pub(super) fn list(
    state: &ApiState,
    marker: Option<String>,
    max_items: Option<usize>,
    all_versions: bool,
) -> Result<Reply, ApiError> {
    let after = match marker.as_deref() {
        None | Some("") => None,
        Some(m) => Some(decode_marker(m)?),
    };
    let page = max_items
        .unwrap_or(LIST_FUNCTIONS_PAGE)
        .min(LIST_FUNCTIONS_PAGE);
    let (functions, next_marker) = if all_versions {
        // Every version of every function, each with its qualified ARN. The marker is
        // `name:version` of the last item.
        let after = after.as_deref().map(|m| {
            let (name, version) = m.rsplit_once(':').unwrap_or((m, LATEST));
            (name, sous_store::db::version_order(version))
        });
        let mut rows = state
            .store
            .list_all_versions(after, page + 1)
            .map_err(|e| store_error(e, "ListFunctions"))?;
        let more = rows.len() > page;
        rows.truncate(page);
        let next_marker = more
            .then(|| {
                rows.last().map(|f| {
                    encode_marker(&format!("{}:{}", f.config.function_name, f.config.version))
                })
            })
            .flatten();
        let functions = rows
            .into_iter()
            .map(|f| {
                let mut c = f.config.for_listing();
                c.function_arn = state
                    .scope
                    .qualified_arn(&c.function_name, Some(&c.version));
                c
            })
            .collect();
        (functions, next_marker)
    } else {
        let mut rows = state
            .store
            .list_functions(after.as_deref(), page + 1)
            .map_err(|e| store_error(e, "ListFunctions"))?;
        let more = rows.len() > page;
        rows.truncate(page);
        let next_marker = more
            .then(|| rows.last().map(|f| encode_marker(&f.config.function_name)))
            .flatten();
        (
            rows.into_iter().map(|f| f.config.for_listing()).collect(),
            next_marker,
        )
    };
    Ok(Reply::ListFunctions(ListFunctionsOutput {
        functions,
        next_marker,
    }))
}

pub(super) async fn update_code(
    state: &Arc<ApiState>,
    t: &Target,
    input: UpdateCodeInput,
    now: OffsetDateTime,
) -> Result<Reply, ApiError> {
    unqualified_for_update(t)?;
    if input.image_uri.is_some() {
        return Err(zip_only().into());
    }
    let source = code_source(
        input.zip_file,
        input.s3_bucket,
        input.s3_key,
        input.s3_object_version,
        "",
    )?;
    let architecture = input
        .architectures
        .as_deref()
        .map(validate_architectures)
        .transpose()?;
    let dry_run = input.dry_run.unwrap_or(false);
    let publish_too = input.publish.unwrap_or(false);
    let revision_id = input.revision_id;
    let user_revision = revision_id.is_some();
    let package = match source {
        CodeSource::Inline(b64) => Package::Inline(b64),
        CodeSource::S3(object) => {
            // The function and the RevisionId are checked before the package is fetched.
            let (st, target, revision) = (state.clone(), t.clone(), revision_id.clone());
            blocking(move || current_latest(&st, &target, revision.as_deref()).map(|_| ())).await?;
            Package::Fetched(s3_code::fetch_zip(state, &object).await?)
        }
    };
    let st = state.clone();
    let target = t.clone();
    let (config, orphans) = blocking(move || {
        let current = current_latest(&st, &target, revision_id.as_deref())?;
        let pin = st.store.pin_code();
        let code = package.store(&st, "UpdateFunctionCode")?;
        let layers_size =
            super::layers::configured_layers_size(&st, current.config.layers.as_deref())?;
        if let Err(e) = super::layers::check_total_size(code.unzipped_size, layers_size) {
            drop(pin);
            if code.sha256_hex != current.code_sha256_hex {
                gc(&st, &[code.sha256_hex]);
            }
            return Err(e.into());
        }
        let mut config = current.config.clone();
        config.code_sha256 = code.sha256_b64.clone();
        config.code_size = code.size;
        if let Some(a) = architecture {
            config.architectures = vec![a];
        }
        if dry_run {
            // Validated and hashed; nothing changes. The blob goes again unless referenced.
            return Ok((config, vec![code.sha256_hex]));
        }
        config.last_modified = timefmt::last_modified(now);
        config.revision_id = new_revision();
        config.last_update_status = Some("Successful".into());
        let stored = StoredFunction {
            config,
            code_sha256_hex: code.sha256_hex,
        };
        let orphans = st
            .store
            .replace_function(&stored, &current.config.revision_id)
            .map_err(|e| update_error(e, &st, &stored.config.function_name, user_revision))?;
        Ok((stored.config, orphans))
    })
    .await?;
    if !dry_run {
        state.invoker.retire_version(&t.name, LATEST).await;
        tracing::info!(function = %t.name, code_sha256 = %config.code_sha256, "function code updated");
    }
    gc_async(state, orphans);
    let config = if publish_too && !dry_run {
        let st = state.clone();
        let name = t.name.clone();
        blocking(move || publish(&st, &name, None, None, None)).await?
    } else {
        config
    };
    Ok(Reply::Function {
        status: 200,
        config: Box::new(config),
    })
}

pub(super) async fn update_configuration(
    state: &Arc<ApiState>,
    t: &Target,
    input: SettingsInput,
    now: OffsetDateTime,
) -> Result<Reply, ApiError> {
    unqualified_for_update(t)?;
    validate_settings(&input, &state.invoker.runtimes().available())?;
    check_dead_letter_config(&input, &state.scope)?;
    let st = state.clone();
    let target = t.clone();
    let (stored, orphans) = blocking(move || {
        let current = current_latest(&st, &target, input.revision_id.as_deref())?;
        let _pin = st.store.pin_code();
        let mut config = current.config.clone();
        config.apply(&input, &st.scope.region);
        if let Some(arns) = &input.layers {
            let (layers, layers_size) = super::layers::resolve_function_layers(&st, arns)?;
            if layers.is_some() {
                let code_size = super::layers::code_unzipped_size(&st, &current.code_sha256_hex)?;
                super::layers::check_total_size(code_size, layers_size)?;
            }
            config.layers = layers;
        }
        config.last_modified = timefmt::last_modified(now);
        config.revision_id = new_revision();
        config.last_update_status = Some("Successful".into());
        let stored = StoredFunction {
            config,
            code_sha256_hex: current.code_sha256_hex,
        };
        let orphans = st
            .store
            .replace_function(&stored, &current.config.revision_id)
            .map_err(|e| update_error(e, &st, &target.name, input.revision_id.is_some()))?;
        Ok((stored, orphans))
    })
    .await?;
    state.invoker.retire_version(&t.name, LATEST).await;
    tracing::info!(function = %t.name, "function configuration updated");
    gc_async(state, orphans);
    Ok(Reply::Function {
        status: 200,
        config: Box::new(stored.config),
    })
}

/// `$LATEST` of the target, checked against the caller's RevisionId precondition.
fn current_latest(
    state: &ApiState,
    t: &Target,
    revision_id: Option<&str>,
) -> Result<StoredFunction, ApiError> {
    let arn = state.scope.function_arn(&t.name);
    let current = state
        .store
        .get_function(&t.name, LATEST)
        .map_err(|e| store_error(e, &arn))?
        .ok_or_else(|| LambdaError::function_not_found(&arn))?;
    current.config.check_modifiable(&arn)?;
    if let Some(r) = revision_id {
        if r != current.config.revision_id {
            return Err(precondition_failed().into());
        }
    }
    Ok(current)
}

fn unqualified_for_update(t: &Target) -> Result<(), LambdaError> {
    match t.qualifier.as_deref() {
        None | Some(LATEST) => Ok(()),
        Some(q) => Err(LambdaError::invalid_parameter(format!(
            "Only $LATEST can be updated; published versions are immutable (qualifier {q})."
        ))),
    }
}

pub(super) async fn delete(state: &Arc<ApiState>, t: &Target) -> Result<Reply, ApiError> {
    let arn = state.scope.function_arn(&t.name);
    match t.qualifier.as_deref() {
        None => {}
        Some(LATEST) => {
            return Err(LambdaError::invalid_parameter(
                "$LATEST version cannot be deleted without deleting the function.",
            )
            .into())
        }
        Some(q) if !is_version_number(q) => {
            return Err(LambdaError::invalid_parameter(
                "Deletion of aliases is not currently supported.",
            )
            .into())
        }
        Some(version) => {
            // A version that does not exist is no error: Lambda answers 204 and does nothing.
            let st = state.clone();
            let (name, number) = (t.name.clone(), version.to_string());
            let deleted = blocking(move || match st.store.delete_version(&name, &number) {
                Ok(d) => Ok(d),
                Err(StoreError::VersionInUse(aliases)) => Err(LambdaError::conflict(format!(
                    "Unable to delete version because the following aliases reference it: [{}]",
                    aliases.join(", ")
                ))
                .into()),
                Err(e) => Err(store_error(e, &arn)),
            })
            .await?;
            if let Some(orphans) = deleted {
                state.invoker.unprovision(&t.name, version);
                state.invoker.retire_version(&t.name, version).await;
                tracing::info!(function = %t.name, version, "function version deleted");
                gc_async(state, orphans);
            }
            return Ok(Reply::NoContent);
        }
    }
    let st = state.clone();
    let name = t.name.clone();
    let orphans = blocking(move || {
        st.store
            .delete_function(&name)
            .map_err(|e| store_error(e, &arn))
    })
    .await?;
    state.invoker.forget_function(&t.name).await;
    tracing::info!(function = %t.name, "function deleted");
    gc_async(state, orphans);
    Ok(Reply::NoContent)
}

pub(super) fn decode_zip(b64: &str, operation: &str) -> Result<Vec<u8>, LambdaError> {
    let zip = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| {
            LambdaError::new(
                ErrorCode::SerializationException,
                "ZipFile is not valid base64",
            )
        })?;
    if zip.len() as u64 > ZIPPED_MAX_BYTES {
        return Err(LambdaError::new(
            ErrorCode::RequestEntityTooLargeException,
            format!(
                "Request must be smaller than {} bytes for the {operation} operation",
                crate::routes::CODE_REQUEST_MAX_BYTES
            ),
        ));
    }
    Ok(zip)
}

pub(super) fn zip_only() -> LambdaError {
    LambdaError::invalid_parameter(
        "Sous takes function code as a .zip deployment package (ZipFile, or S3Bucket and S3Key): container images (ImageUri, PackageType Image) are not supported.",
    )
}

fn already_exists(name: &str) -> LambdaError {
    LambdaError::conflict(format!("Function already exist: {name}"))
}

/// A lost compare-and-swap: the caller's RevisionId is stale (412), or another update won the
/// race while this one ran (409, as Lambda answers for an update in progress).
fn update_error(e: StoreError, state: &ApiState, name: &str, user_revision: bool) -> ApiError {
    let arn = state.scope.function_arn(name);
    match e {
        StoreError::RevisionMismatch if user_revision => precondition_failed().into(),
        StoreError::RevisionMismatch => LambdaError::conflict(format!(
            "The operation cannot be performed at this time. An update is in progress for resource: {arn}"
        ))
        .into(),
        other => store_error(other, &arn),
    }
}

fn gc(state: &ApiState, hexes: &[String]) {
    if let Err(e) = state.store.gc_code(hexes) {
        tracing::warn!(error = %e, "garbage-collect code blobs (will be retried at the next delete)");
    }
}

/// Remove unreferenced blobs in the background (after environments using them are retired).
/// Deleted layer versions no function version uses any more go too (with their blobs).
fn gc_async(state: &Arc<ApiState>, orphans: Vec<String>) {
    let st = state.clone();
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        span.in_scope(|| {
            let mut orphans = orphans;
            match st.store.purge_deleted_layer_versions() {
                Ok(freed) => orphans.extend(freed),
                Err(e) => tracing::warn!(error = %e, "purge deleted layer versions (will be retried at the next change)"),
            }
            if !orphans.is_empty() {
                gc(&st, &orphans);
            }
        })
    });
}
