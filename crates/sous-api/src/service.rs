//! The control plane's decisions: executes one [`Command`] against the store and the invoker
//! and answers with a typed [`Reply`]. Everything Lambda decides about a request that is not
//! the request's shape (defaults, semantic checks, preconditions, what is stored) lives here.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use serde::Serialize;
use sous_invoke::InvokeResponse;
use sous_store::db::LATEST;
use sous_store::db::{ConcurrencyView, StoredProvisioned};
use sous_store::{StoreError, StoredFunction};
use sous_types::alias::{
    check_routing_semantics, is_version_number, normalize_routing, AliasConfiguration,
    CreateAliasInput, UpdateAliasInput,
};
use sous_types::concurrency::{
    self as cc, Concurrency, ProvisionedConcurrencyConfig, ProvisionedStatus,
};
use sous_types::config::{
    host_architecture, validate_architectures, validate_settings, CreateFunctionInput,
    EphemeralStorage, FunctionConfiguration, LoggingConfig, SettingsInput, TracingConfig,
    UpdateCodeInput,
};
use sous_types::event_invoke::{
    check_destinations, EventInvokeConfigInput, FunctionEventInvokeConfig,
};
use sous_types::limits::*;
use sous_types::names::Scope;
use sous_types::{timefmt, ErrorCode, LambdaError};
use time::OffsetDateTime;

use crate::routes::{Command, Target};
use crate::{code_url, ApiState};

/// What an operation answers, before it becomes HTTP.
#[derive(Debug)]
pub enum Reply {
    /// A `FunctionConfiguration` with status 200 or 201.
    Function {
        status: u16,
        config: Box<FunctionConfiguration>,
    },
    GetFunction(Box<GetFunctionOutput>),
    ListFunctions(ListFunctionsOutput),
    AccountSettings(AccountSettings),
    /// 204, empty body.
    NoContent,
    Invoke(InvokeResponse),
    /// An `AliasConfiguration` with status 200 or 201.
    Alias {
        status: u16,
        alias: Box<AliasConfiguration>,
    },
    ListVersions(ListVersionsOutput),
    ListAliases(ListAliasesOutput),
    /// 200 with a `Concurrency` (Put/GetFunctionConcurrency).
    Concurrency(Concurrency),
    /// A provisioned concurrency configuration, with status 200 or 202.
    Provisioned {
        status: u16,
        config: ProvisionedConcurrencyConfig,
    },
    ListProvisioned(ListProvisionedOutput),
    /// A `FunctionEventInvokeConfig` (200).
    EventInvokeConfig(Box<FunctionEventInvokeConfig>),
    ListEventInvokeConfigs(ListEventInvokeConfigsOutput),
    /// Sous's status document.
    Status(serde_json::Value),
    /// A `FunctionUrlConfig` with status 200 or 201.
    FunctionUrl {
        status: u16,
        config: Box<sous_types::function_url::FunctionUrlConfig>,
    },
    ListFunctionUrls(sous_types::function_url::ListFunctionUrlConfigsOutput),
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListEventInvokeConfigsOutput {
    pub function_event_invoke_configs: Vec<FunctionEventInvokeConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListProvisionedOutput {
    pub provisioned_concurrency_configs: Vec<ProvisionedConcurrencyConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListVersionsOutput {
    pub versions: Vec<FunctionConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListAliasesOutput {
    pub aliases: Vec<AliasConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

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

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountSettings {
    pub account_limit: AccountLimit,
    pub account_usage: AccountUsage,
    /// Sous's host capacity (not an AWS member; SDKs ignore members they do not model).
    pub sous: SousCapacity,
}

/// The host's memory budget as Sous admits environments against it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SousCapacity {
    #[serde(rename = "HostMemoryMB")]
    pub host_memory_mb: u64,
    #[serde(rename = "MemoryHeadroomMB")]
    pub memory_headroom_mb: u64,
    #[serde(rename = "MemoryCapacityMB")]
    pub memory_capacity_mb: u64,
    #[serde(rename = "MemoryReservedMB")]
    pub memory_reserved_mb: u64,
    #[serde(rename = "MemoryAvailableMB")]
    pub memory_available_mb: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountLimit {
    pub total_code_size: u64,
    pub code_size_unzipped: u64,
    pub code_size_zipped: u64,
    pub concurrent_executions: u64,
    pub unreserved_concurrent_executions: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountUsage {
    pub total_code_size: u64,
    pub function_count: u64,
}

/// Execute one command. `now` is the request's clock reading (injected for tests).
pub async fn execute(
    state: &Arc<ApiState>,
    cmd: Command,
    now: OffsetDateTime,
) -> Result<Reply, LambdaError> {
    match cmd {
        Command::Invoke(req) => state.invoker.invoke(req).await.map(Reply::Invoke),
        Command::FunctionUrl(c) => crate::function_urls::execute(state, c, now),
        Command::CreateFunction { name, input } => create_function(state, name, *input, now).await,
        Command::GetFunction(t) => get_function(state, &t, now),
        Command::GetFunctionConfiguration(t) => {
            let (config, _) = lookup(state, &t)?;
            Ok(Reply::Function {
                status: 200,
                config: Box::new(config),
            })
        }
        Command::ListFunctions {
            marker,
            max_items,
            all_versions,
        } => list_functions(state, marker, max_items, all_versions),
        Command::UpdateFunctionCode { target, input } => {
            update_code(state, &target, *input, now).await
        }
        Command::UpdateFunctionConfiguration { target, input } => {
            update_configuration(state, &target, *input, now).await
        }
        Command::DeleteFunction(t) => delete_function(state, &t).await,
        Command::GetAccountSettings => account_settings(state),
        Command::PublishVersion { function, input } => {
            let st = state.clone();
            let config = blocking(move || {
                publish(
                    &st,
                    &function,
                    input.code_sha256.as_deref(),
                    input.revision_id.as_deref(),
                    input.description,
                )
            })
            .await?;
            Ok(Reply::Function {
                status: 201,
                config: Box::new(config),
            })
        }
        Command::ListVersionsByFunction {
            function,
            marker,
            max_items,
        } => list_versions(state, &function, marker, max_items),
        Command::CreateAlias { function, input } => create_alias(state, &function, input),
        Command::GetAlias { function, name } => get_alias(state, &function, &name),
        Command::UpdateAlias {
            function,
            name,
            input,
        } => update_alias(state, &function, &name, input),
        Command::DeleteAlias { function, name } => delete_alias(state, &function, &name),
        Command::ListAliases {
            function,
            function_version,
            marker,
            max_items,
        } => list_aliases(state, &function, function_version, marker, max_items),
        Command::PutFunctionConcurrency { function, reserved } => {
            put_function_concurrency(state, &function, reserved)
        }
        Command::GetFunctionConcurrency { function } => {
            let reserved = reserved_of(state, &function)?;
            Ok(Reply::Concurrency(Concurrency {
                reserved_concurrent_executions: reserved.map(saturating_i64),
            }))
        }
        Command::DeleteFunctionConcurrency { function } => {
            delete_function_concurrency(state, &function)
        }
        Command::PutProvisionedConcurrencyConfig { target, requested } => {
            put_provisioned(state, &target, requested, now)
        }
        Command::GetProvisionedConcurrencyConfig(t) => {
            let qualifier = provisioned_qualifier(state, &t)?;
            let stored = state
                .store
                .get_provisioned(&t.name, qualifier)
                .map_err(|e| store_error(e, &state.scope.function_arn(&t.name)))?
                .ok_or_else(cc::provisioned_not_found)?;
            Ok(Reply::Provisioned {
                status: 200,
                config: provisioned_config(state, &stored, false),
            })
        }
        Command::DeleteProvisionedConcurrencyConfig(t) => {
            let qualifier = provisioned_qualifier(state, &t)?;
            let deleted = state
                .store
                .delete_provisioned(&t.name, qualifier)
                .map_err(|e| store_error(e, &state.scope.function_arn(&t.name)))?;
            state.invoker.unprovision(&t.name, qualifier);
            if deleted {
                tracing::info!(function = %t.name, qualifier, "provisioned concurrency deleted");
            }
            Ok(Reply::NoContent)
        }
        Command::ListProvisionedConcurrencyConfigs {
            function,
            marker,
            max_items,
        } => {
            require_function(state, &function)?;
            let configs: Vec<ProvisionedConcurrencyConfig> = state
                .store
                .list_provisioned(Some(&function))
                .map_err(|e| store_error(e, &state.scope.function_arn(&function)))?
                .iter()
                .map(|p| provisioned_config(state, p, true))
                .collect();
            let page = max_items.unwrap_or(50).min(50);
            let (configs, next_marker) = paginate(configs, marker.as_deref(), page, |c| {
                c.function_arn.as_deref().unwrap_or_default()
            })?;
            Ok(Reply::ListProvisioned(ListProvisionedOutput {
                provisioned_concurrency_configs: configs,
                next_marker,
            }))
        }
        Command::PutFunctionEventInvokeConfig {
            target,
            input,
            merge,
        } => put_event_invoke_config(state, &target, &input, merge, now),
        Command::GetFunctionEventInvokeConfig(t) => get_event_invoke_config(state, &t),
        Command::DeleteFunctionEventInvokeConfig(t) => {
            let (_, arn) = event_invoke_target(state, &t)?;
            let qualifier = t.qualifier.as_deref().unwrap_or(LATEST);
            let removed = state
                .store
                .delete_event_invoke_config(&t.name, qualifier)
                .map_err(|e| store_error(e, &arn))?;
            if !removed {
                return Err(no_event_invoke_config(&arn));
            }
            Ok(Reply::NoContent)
        }
        Command::ListFunctionEventInvokeConfigs {
            function,
            marker,
            max_items,
        } => {
            require_function(state, &function)?;
            let arn = state.scope.function_arn(&function);
            let configs = state
                .store
                .list_event_invoke_configs(&function)
                .map_err(|e| store_error(e, &arn))?
                .iter()
                .map(|j| parse_event_invoke_config(j))
                .collect::<Result<Vec<_>, _>>()?;
            let (page, next_marker) =
                paginate(configs, marker.as_deref(), max_items.unwrap_or(50), |c| {
                    c.function_arn.as_str()
                })?;
            Ok(Reply::ListEventInvokeConfigs(
                ListEventInvokeConfigsOutput {
                    function_event_invoke_configs: page,
                    next_marker,
                },
            ))
        }
        Command::Status => {
            let mut status = state.invoker.pool().status();
            if let Some(obj) = status.as_object_mut() {
                obj.insert("async".into(), state.invoker.async_status());
            }
            Ok(Reply::Status(status))
        }
    }
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A function's reserved concurrency; 404 when the function does not exist.
fn reserved_of(state: &ApiState, function: &str) -> Result<Option<u64>, LambdaError> {
    let arn = state.scope.function_arn(function);
    state
        .store
        .reserved_concurrency(function)
        .map_err(|e| store_error(e, &arn))?
        .ok_or_else(|| LambdaError::function_not_found(&arn))
}

/// Map a failure of a concurrency write: the caller's refusal, or the store's.
enum ConcurrencyError {
    Refused(LambdaError),
    Store(StoreError),
}

impl From<StoreError> for ConcurrencyError {
    fn from(e: StoreError) -> Self {
        ConcurrencyError::Store(e)
    }
}

fn concurrency_error(e: ConcurrencyError, arn: &str) -> LambdaError {
    match e {
        ConcurrencyError::Refused(e) => e,
        ConcurrencyError::Store(e) => store_error(e, arn),
    }
}

/// PutFunctionConcurrency: the reservation must leave the account its minimum unreserved
/// concurrency (100, or the whole limit when smaller) and cover the function's provisioned
/// concurrency.
fn put_function_concurrency(
    state: &ApiState,
    function: &str,
    reserved: u64,
) -> Result<Reply, LambdaError> {
    let arn = state.scope.function_arn(function);
    let (account, ..) = state.invoker.pool().capacity();
    let minimum = cc::min_unreserved(account);
    state
        .store
        .put_reserved_concurrency(function, Some(reserved), |v: &ConcurrencyView| {
            let unreserved = account
                .saturating_sub(v.others_reserved)
                .saturating_sub(v.others_unreserved_provisioned);
            if unreserved < reserved.saturating_add(minimum) {
                return Err(ConcurrencyError::Refused(cc::reserved_below_minimum(minimum)));
            }
            if reserved < v.own_provisioned {
                return Err(ConcurrencyError::Refused(LambdaError::invalid_parameter(format!(
                    "ReservedConcurrentExecutions ({reserved}) cannot be less than the function's provisioned concurrency ({}).",
                    v.own_provisioned
                ))));
            }
            Ok(())
        })
        .map_err(|e| concurrency_error(e, &arn))?;
    state.invoker.set_reserved(function, Some(reserved));
    tracing::info!(function, reserved, "reserved concurrency set");
    Ok(Reply::Concurrency(Concurrency {
        reserved_concurrent_executions: Some(saturating_i64(reserved)),
    }))
}

fn delete_function_concurrency(state: &ApiState, function: &str) -> Result<Reply, LambdaError> {
    let arn = state.scope.function_arn(function);
    state
        .store
        .put_reserved_concurrency::<StoreError>(function, None, |_| Ok(()))
        .map_err(|e| store_error(e, &arn))?;
    state.invoker.set_reserved(function, None);
    tracing::info!(function, "reserved concurrency removed");
    Ok(Reply::NoContent)
}

/// The qualifier of a provisioned concurrency request, checked as AWS checks it: a
/// published version or an alias of an existing function.
fn provisioned_qualifier<'t>(state: &ApiState, t: &'t Target) -> Result<&'t str, LambdaError> {
    let qualifier = t.qualifier.as_deref().unwrap_or_default();
    if qualifier == LATEST {
        return Err(cc::provisioned_needs_published());
    }
    provisioned_target_exists(state, &t.name, qualifier)?;
    Ok(qualifier)
}

/// The function, and the version or alias `qualifier` names, must exist.
fn provisioned_target_exists(
    state: &ApiState,
    function: &str,
    qualifier: &str,
) -> Result<(), LambdaError> {
    require_function(state, function)?;
    let arn = state.scope.qualified_arn(function, Some(qualifier));
    if is_version_number(qualifier) {
        state
            .store
            .get_function(function, qualifier)
            .map_err(|e| store_error(e, &arn))?
            .ok_or_else(|| LambdaError::function_not_found(&arn))?;
    } else {
        state
            .store
            .get_alias(function, qualifier)
            .map_err(|e| store_error(e, &arn))?
            .ok_or_else(|| LambdaError::not_found(format!("Cannot find alias arn: {arn}")))?;
    }
    Ok(())
}

fn put_provisioned(
    state: &ApiState,
    t: &Target,
    requested: u64,
    now: OffsetDateTime,
) -> Result<Reply, LambdaError> {
    let qualifier = t.qualifier.as_deref().unwrap_or_default();
    if qualifier == LATEST {
        return Err(cc::provisioned_on_latest());
    }
    provisioned_target_exists(state, &t.name, qualifier)?;
    let arn = state.scope.function_arn(&t.name);
    // A version and an alias routing to it cannot both be provisioned.
    let configs = state
        .store
        .list_provisioned(Some(&t.name))
        .map_err(|e| store_error(e, &arn))?;
    let aliases = state
        .store
        .list_aliases(&t.name)
        .map_err(|e| store_error(e, &arn))?
        .unwrap_or_default();
    let version_of = |q: &str| -> String {
        aliases
            .iter()
            .find(|a| a.name == q)
            .map(|a| a.function_version.clone())
            .unwrap_or_else(|| q.to_string())
    };
    for c in configs.iter().filter(|c| c.qualifier != qualifier) {
        if version_of(&c.qualifier) == version_of(qualifier) {
            let message = if is_version_number(qualifier) {
                "Version is pointed by a Provisioned Concurrency alias"
            } else {
                "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version"
            };
            return Err(LambdaError::conflict(message));
        }
    }
    let (account, ..) = state.invoker.pool().capacity();
    let minimum = cc::min_unreserved(account);
    let stored = StoredProvisioned {
        function_name: t.name.clone(),
        qualifier: qualifier.to_string(),
        requested,
        last_modified: timefmt::last_modified(now),
    };
    state
        .store
        .put_provisioned(&stored, |v: &ConcurrencyView| {
            let total = v.own_provisioned.saturating_add(requested);
            match v.current {
                Some(reserved) if total > reserved => {
                    Err(ConcurrencyError::Refused(cc::provisioned_above_reserved()))
                }
                Some(_) => Ok(()),
                None => {
                    let unreserved = account
                        .saturating_sub(v.others_reserved)
                        .saturating_sub(v.others_unreserved_provisioned);
                    if unreserved < total.saturating_add(minimum) {
                        Err(ConcurrencyError::Refused(cc::provisioned_below_minimum(
                            minimum,
                        )))
                    } else {
                        Ok(())
                    }
                }
            }
        })
        .map_err(|e| concurrency_error(e, &arn))?;
    state.invoker.provision(&t.name, qualifier, requested)?;
    tracing::info!(function = %t.name, qualifier, requested, "provisioned concurrency set");
    Ok(Reply::Provisioned {
        status: 202,
        config: provisioned_config(state, &stored, false),
    })
}

/// A stored configuration with the pool's live allocation.
fn provisioned_config(
    state: &ApiState,
    p: &StoredProvisioned,
    with_arn: bool,
) -> ProvisionedConcurrencyConfig {
    let (allocated, status, reason) = state
        .invoker
        .pool()
        .provisioned_state(&p.function_name, &p.qualifier)
        .unwrap_or((0, ProvisionedStatus::InProgress, None));
    ProvisionedConcurrencyConfig {
        function_arn: with_arn.then(|| {
            state
                .scope
                .qualified_arn(&p.function_name, Some(&p.qualifier))
        }),
        requested_provisioned_concurrent_executions: p.requested,
        available_provisioned_concurrent_executions: allocated,
        allocated_provisioned_concurrent_executions: allocated,
        status,
        status_reason: reason,
        last_modified: p.last_modified.clone(),
    }
}

async fn create_function(
    state: &Arc<ApiState>,
    name: String,
    input: CreateFunctionInput,
    now: OffsetDateTime,
) -> Result<Reply, LambdaError> {
    let code = input.code.unwrap_or_default();
    if input.package_type.as_deref() == Some("Image") || code.image_uri.is_some() {
        return Err(zip_only());
    }
    if code.s3_bucket.is_some() || code.s3_key.is_some() || code.s3_object_version.is_some() {
        return Err(zip_only());
    }
    let Some(zip_b64) = code.zip_file else {
        return Err(LambdaError::invalid_parameter(
            "Please provide a source for function code.",
        ));
    };
    let settings = input.settings;
    if settings.runtime.is_none() || settings.handler.is_none() {
        return Err(LambdaError::invalid_parameter(
            "Runtime and Handler are mandatory parameters for functions created with deployment packages.",
        ));
    }
    validate_settings(&settings, &state.invoker.runtimes().available())?;
    check_dead_letter_config(&settings, &state.scope)?;
    let architecture = match &input.architectures {
        Some(a) => validate_architectures(a)?,
        None => host_architecture().to_string(),
    };
    let arn = state.scope.function_arn(&name);
    // Refuse a duplicate before the (possibly large) zip is hashed and stored.
    if state
        .store
        .get_function(&name, LATEST)
        .map_err(|e| store_error(e, &arn))?
        .is_some()
    {
        return Err(already_exists(&name));
    }
    let tags = input.tags.unwrap_or_default();
    let publish_too = input.publish.unwrap_or(false);
    let st = state.clone();
    let created = blocking(move || {
        let zip = decode_zip(&zip_b64, "CreateFunction")?;
        let pin = st.store.pin_code();
        let code = st
            .store
            .code()
            .put_zip(&zip)
            .map_err(|e| e.to_lambda_error())?;
        let config = new_configuration(&st, &name, &settings, architecture, &code, now);
        let stored = StoredFunction {
            config,
            code_sha256_hex: code.sha256_hex.clone(),
        };
        match st.store.insert_function_with_tags(&stored, &tags) {
            Ok(()) => Ok(stored.config),
            Err(StoreError::Exists) => {
                drop(pin);
                gc(&st, &[code.sha256_hex]);
                Err(already_exists(&name))
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

/// The `$LATEST` configuration of a new function: the request's settings over Lambda's
/// defaults.
/// The function (and version or alias) an event invoke configuration is about must exist;
/// returns its configuration and its qualified ARN (`$LATEST` when unqualified).
fn event_invoke_target(
    state: &ApiState,
    t: &Target,
) -> Result<(FunctionConfiguration, String), LambdaError> {
    let (config, _) = lookup(state, t)?;
    let arn = state
        .scope
        .qualified_arn(&t.name, Some(t.qualifier.as_deref().unwrap_or(LATEST)));
    Ok((config, arn))
}

fn no_event_invoke_config(arn: &str) -> LambdaError {
    LambdaError::not_found(format!(
        "The function {arn} doesn't have an EventInvokeConfig"
    ))
}

fn parse_event_invoke_config(json: &str) -> Result<FunctionEventInvokeConfig, LambdaError> {
    serde_json::from_str(json)
        .map_err(|e| LambdaError::service(format!("corrupt event invoke configuration: {e}")))
}

/// Put (replace) or Update (merge) the event invoke configuration of a function, version or
/// alias.
fn put_event_invoke_config(
    state: &ApiState,
    t: &Target,
    input: &EventInvokeConfigInput,
    merge: bool,
    now: OffsetDateTime,
) -> Result<Reply, LambdaError> {
    let (_, arn) = event_invoke_target(state, t)?;
    let qualifier = t.qualifier.as_deref().unwrap_or(LATEST);
    let mut config = match state
        .store
        .get_event_invoke_config(&t.name, qualifier)
        .map_err(|e| store_error(e, &arn))?
    {
        Some(json) if merge => parse_event_invoke_config(&json)?,
        _ => FunctionEventInvokeConfig::default(),
    };
    if merge {
        config.merge(input);
    } else {
        config.replace(input);
    }
    check_destinations(&config.destination_config, &state.scope)?;
    config.function_arn = arn.clone();
    config.last_modified = (now.unix_timestamp_nanos() / 1_000_000) as f64 / 1000.0;
    let json = serde_json::to_string(&config)
        .map_err(|e| LambdaError::service(format!("serialize event invoke configuration: {e}")))?;
    state
        .store
        .put_event_invoke_config(&t.name, qualifier, &json)
        .map_err(|e| match e {
            StoreError::NotFound => LambdaError::function_not_found(&arn),
            e => store_error(e, &arn),
        })?;
    Ok(Reply::EventInvokeConfig(Box::new(config)))
}

fn get_event_invoke_config(state: &ApiState, t: &Target) -> Result<Reply, LambdaError> {
    let (_, arn) = event_invoke_target(state, t)?;
    let qualifier = t.qualifier.as_deref().unwrap_or(LATEST);
    let json = state
        .store
        .get_event_invoke_config(&t.name, qualifier)
        .map_err(|e| store_error(e, &arn))?
        .ok_or_else(|| no_event_invoke_config(&arn))?;
    Ok(Reply::EventInvokeConfig(Box::new(
        parse_event_invoke_config(&json)?,
    )))
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
    };
    // Runtime (required for Zip) also sets RuntimeVersionConfig.
    config.apply(s, region);
    config
}

fn get_function(state: &ApiState, t: &Target, now: OffsetDateTime) -> Result<Reply, LambdaError> {
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

/// The stored version a target names (an alias names its primary version), with the ARN
/// as the caller named it.
fn lookup(state: &ApiState, t: &Target) -> Result<(FunctionConfiguration, String), LambdaError> {
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
        return Err(LambdaError::function_not_found(&arn));
    };
    if t.qualifier.is_some() {
        config.function_arn = arn;
    }
    Ok((config, code_sha256_hex))
}

fn list_functions(
    state: &ApiState,
    marker: Option<String>,
    max_items: Option<usize>,
    all_versions: bool,
) -> Result<Reply, LambdaError> {
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

fn encode_marker(name: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(name)
}

fn decode_marker(marker: &str) -> Result<String, LambdaError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(marker)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| LambdaError::invalid_parameter(format!("Invalid marker: {marker}")))
}

async fn update_code(
    state: &Arc<ApiState>,
    t: &Target,
    input: UpdateCodeInput,
    now: OffsetDateTime,
) -> Result<Reply, LambdaError> {
    unqualified_for_update(t)?;
    if input.image_uri.is_some()
        || input.s3_bucket.is_some()
        || input.s3_key.is_some()
        || input.s3_object_version.is_some()
    {
        return Err(zip_only());
    }
    let Some(zip_b64) = input.zip_file else {
        return Err(LambdaError::invalid_parameter(
            "Please provide a source for function code.",
        ));
    };
    let architecture = input
        .architectures
        .as_deref()
        .map(validate_architectures)
        .transpose()?;
    let current = current_latest(state, t, input.revision_id.as_deref())?;
    let dry_run = input.dry_run.unwrap_or(false);
    let publish_too = input.publish.unwrap_or(false);
    let user_revision = input.revision_id.is_some();
    let st = state.clone();
    let (config, orphans) = blocking(move || {
        let zip = decode_zip(&zip_b64, "UpdateFunctionCode")?;
        let _pin = st.store.pin_code();
        let code = st
            .store
            .code()
            .put_zip(&zip)
            .map_err(|e| e.to_lambda_error())?;
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

async fn update_configuration(
    state: &Arc<ApiState>,
    t: &Target,
    input: SettingsInput,
    now: OffsetDateTime,
) -> Result<Reply, LambdaError> {
    unqualified_for_update(t)?;
    validate_settings(&input, &state.invoker.runtimes().available())?;
    check_dead_letter_config(&input, &state.scope)?;
    let current = current_latest(state, t, input.revision_id.as_deref())?;
    let mut config = current.config.clone();
    config.apply(&input, &state.scope.region);
    config.last_modified = timefmt::last_modified(now);
    config.revision_id = new_revision();
    config.last_update_status = Some("Successful".into());
    let stored = StoredFunction {
        config,
        code_sha256_hex: current.code_sha256_hex,
    };
    let orphans = state
        .store
        .replace_function(&stored, &current.config.revision_id)
        .map_err(|e| update_error(e, state, &t.name, input.revision_id.is_some()))?;
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
) -> Result<StoredFunction, LambdaError> {
    let arn = state.scope.function_arn(&t.name);
    let current = state
        .store
        .get_function(&t.name, LATEST)
        .map_err(|e| store_error(e, &arn))?
        .ok_or_else(|| LambdaError::function_not_found(&arn))?;
    if let Some(r) = revision_id {
        if r != current.config.revision_id {
            return Err(precondition_failed());
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

async fn delete_function(state: &Arc<ApiState>, t: &Target) -> Result<Reply, LambdaError> {
    let arn = state.scope.function_arn(&t.name);
    match t.qualifier.as_deref() {
        None => {}
        Some(LATEST) => {
            return Err(LambdaError::invalid_parameter(
                "$LATEST version cannot be deleted without deleting the function.",
            ))
        }
        Some(q) if !is_version_number(q) => {
            return Err(LambdaError::invalid_parameter(
                "Deletion of aliases is not currently supported.",
            ))
        }
        Some(version) => {
            // A version that does not exist is no error: Lambda answers 204 and does nothing.
            let deleted = match state.store.delete_version(&t.name, version) {
                Ok(d) => d,
                Err(StoreError::VersionInUse(aliases)) => {
                    return Err(LambdaError::conflict(format!(
                        "Unable to delete version because the following aliases reference it: [{}]",
                        aliases.join(", ")
                    )))
                }
                Err(e) => return Err(store_error(e, &arn)),
            };
            if let Some(orphans) = deleted {
                state.invoker.unprovision(&t.name, version);
                state.invoker.retire_version(&t.name, version).await;
                tracing::info!(function = %t.name, version, "function version deleted");
                gc_async(state, orphans);
            }
            return Ok(Reply::NoContent);
        }
    }
    let orphans = state
        .store
        .delete_function(&t.name)
        .map_err(|e| store_error(e, &arn))?;
    state.invoker.forget_function(&t.name).await;
    tracing::info!(function = %t.name, "function deleted");
    gc_async(state, orphans);
    Ok(Reply::NoContent)
}

/// A failure of [`publish`]: the caller's preconditions, or the store.
enum PublishError {
    Refused(LambdaError),
    Store(StoreError),
}

impl From<StoreError> for PublishError {
    fn from(e: StoreError) -> Self {
        PublishError::Store(e)
    }
}

/// Publish `$LATEST` of `name` as a new version (or return the last one if nothing changed
/// since it was published), honouring the caller's CodeSha256 and RevisionId preconditions.
/// Answers the version's configuration, FunctionArn qualified with its number.
fn publish(
    state: &ApiState,
    name: &str,
    code_sha256: Option<&str>,
    revision_id: Option<&str>,
    description: Option<String>,
) -> Result<FunctionConfiguration, LambdaError> {
    let arn = state.scope.function_arn(name);
    let result = state.store.publish_version(
        name,
        &new_revision(),
        |latest| {
            if revision_id.is_some_and(|r| r != latest.config.revision_id) {
                return Err(PublishError::Refused(precondition_failed()));
            }
            match code_sha256 {
                Some(sha) if sha != latest.config.code_sha256 => {
                    Err(PublishError::Refused(LambdaError::invalid_parameter(format!(
                        "CodeSHA256 ({sha}) is different from current CodeSHA256 in $LATEST ({}). Please try again with the CodeSHA256 in $LATEST.",
                        latest.config.code_sha256
                    ))))
                }
                _ => Ok(()),
            }
        },
        |latest, number| {
            let number = number.to_string();
            let mut config = latest.config.clone();
            config.function_arn = state.scope.qualified_arn(name, Some(&number));
            config.version = number;
            config.revision_id = new_revision();
            // Published versions have no update status: they never change.
            config.last_update_status = None;
            if let Some(d) = description {
                config.description = d;
            }
            StoredFunction {
                config,
                code_sha256_hex: latest.code_sha256_hex.clone(),
            }
        },
    );
    match result {
        Ok(p) => {
            if p.created {
                tracing::info!(function = %name, version = %p.version.config.version, "version published");
            }
            Ok(p.version.config)
        }
        Err(PublishError::Refused(e)) => Err(e),
        Err(PublishError::Store(e)) => Err(store_error(e, &arn)),
    }
}

fn list_versions(
    state: &ApiState,
    function: &str,
    marker: Option<String>,
    max_items: Option<usize>,
) -> Result<Reply, LambdaError> {
    let arn = state.scope.function_arn(function);
    let versions = state
        .store
        .list_versions(function)
        .map_err(|e| store_error(e, &arn))?
        .ok_or_else(|| LambdaError::function_not_found(&arn))?;
    let items: Vec<FunctionConfiguration> = versions
        .into_iter()
        .map(|v| {
            let mut c = v.config.for_listing();
            // Every entry carries its qualified ARN, `$LATEST` included.
            c.function_arn = state.scope.qualified_arn(function, Some(&c.version));
            c
        })
        .collect();
    let page = max_items
        .unwrap_or(LIST_FUNCTIONS_PAGE)
        .min(LIST_FUNCTIONS_PAGE);
    let (versions, next_marker) = paginate(items, marker.as_deref(), page, |c| &c.version)?;
    Ok(Reply::ListVersions(ListVersionsOutput {
        versions,
        next_marker,
    }))
}

/// One page of `items` (in their order) after the item whose key `marker` encodes, and the
/// marker of the next page.
fn paginate<T>(
    items: Vec<T>,
    marker: Option<&str>,
    page: usize,
    key: impl Fn(&T) -> &str,
) -> Result<(Vec<T>, Option<String>), LambdaError> {
    let start = match marker {
        None | Some("") => 0,
        Some(m) => {
            let after = decode_marker(m)?;
            items
                .iter()
                .position(|i| key(i) == after)
                .map(|p| p + 1)
                .ok_or_else(|| LambdaError::invalid_parameter(format!("Invalid marker: {m}")))?
        }
    };
    let mut rest: Vec<T> = items.into_iter().skip(start).collect();
    let more = rest.len() > page;
    rest.truncate(page);
    let next = more
        .then(|| rest.last().map(|i| encode_marker(key(i))))
        .flatten();
    Ok((rest, next))
}

/// The function must exist before its aliases are touched.
fn require_function(state: &ApiState, function: &str) -> Result<(), LambdaError> {
    let arn = state.scope.function_arn(function);
    match state.store.get_function(function, LATEST) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(LambdaError::function_not_found(&arn)),
        Err(e) => Err(store_error(e, &arn)),
    }
}

/// Map a store failure of an alias write.
fn alias_store_error(e: StoreError, state: &ApiState, function: &str, alias: &str) -> LambdaError {
    match e {
        StoreError::VersionNotFound(v) => {
            LambdaError::function_not_found(&state.scope.qualified_arn(function, Some(&v)))
        }
        StoreError::NotFound => {
            LambdaError::function_not_found(&state.scope.function_arn(function))
        }
        StoreError::Exists => LambdaError::conflict(format!(
            "Alias already exists: {}",
            state.scope.qualified_arn(function, Some(alias))
        )),
        other => store_error(other, &state.scope.qualified_arn(function, Some(alias))),
    }
}

fn create_alias(
    state: &ApiState,
    function: &str,
    input: CreateAliasInput,
) -> Result<Reply, LambdaError> {
    let name = input.name.unwrap_or_default();
    let function_version = input.function_version.unwrap_or_default();
    require_function(state, function)?;
    let routing = normalize_routing(input.routing_config);
    check_routing_semantics(&function_version, routing.as_ref())?;
    let alias = AliasConfiguration {
        alias_arn: state.scope.qualified_arn(function, Some(&name)),
        name: name.clone(),
        function_version,
        description: input.description.unwrap_or_default(),
        routing_config: routing,
        revision_id: new_revision(),
    };
    state
        .store
        .insert_alias(function, &alias)
        .map_err(|e| alias_store_error(e, state, function, &name))?;
    tracing::info!(function, alias = %name, version = %alias.function_version, "alias created");
    Ok(Reply::Alias {
        status: 201,
        alias: Box::new(alias),
    })
}

fn get_alias(state: &ApiState, function: &str, name: &str) -> Result<Reply, LambdaError> {
    require_function(state, function)?;
    let arn = state.scope.qualified_arn(function, Some(name));
    let alias = state
        .store
        .get_alias(function, name)
        .map_err(|e| store_error(e, &arn))?
        .ok_or_else(|| LambdaError::not_found(format!("Cannot find alias arn: {arn}")))?;
    Ok(Reply::Alias {
        status: 200,
        alias: Box::new(alias),
    })
}

fn update_alias(
    state: &ApiState,
    function: &str,
    name: &str,
    input: UpdateAliasInput,
) -> Result<Reply, LambdaError> {
    require_function(state, function)?;
    let arn = state.scope.qualified_arn(function, Some(name));
    let not_found = || LambdaError::not_found(format!("Alias not found: {arn}"));
    let current = state
        .store
        .get_alias(function, name)
        .map_err(|e| store_error(e, &arn))?
        .ok_or_else(not_found)?;
    if input
        .revision_id
        .as_deref()
        .is_some_and(|r| r != current.revision_id)
    {
        return Err(precondition_failed());
    }
    let mut alias = current.clone();
    if let Some(v) = input.function_version {
        alias.function_version = v;
    }
    if let Some(d) = input.description {
        alias.description = d;
    }
    if let Some(r) = input.routing_config {
        alias.routing_config = normalize_routing(Some(r));
    }
    check_routing_semantics(&alias.function_version, alias.routing_config.as_ref())?;
    alias.revision_id = new_revision();
    match state
        .store
        .replace_alias(function, &alias, &current.revision_id)
    {
        Ok(()) => {}
        Err(StoreError::NotFound) => return Err(not_found()),
        Err(StoreError::RevisionMismatch) if input.revision_id.is_some() => {
            return Err(precondition_failed())
        }
        Err(StoreError::RevisionMismatch) => {
            return Err(LambdaError::conflict(format!(
                "The operation cannot be performed at this time. An update is in progress for resource: {arn}"
            )))
        }
        Err(e) => return Err(alias_store_error(e, state, function, name)),
    }
    if let Err(e) = state.invoker.refresh_provisioned(function) {
        tracing::warn!(function, alias = %name, error = %e, "re-provision concurrency after an alias update");
    }
    tracing::info!(function, alias = %name, version = %alias.function_version, "alias updated");
    Ok(Reply::Alias {
        status: 200,
        alias: Box::new(alias),
    })
}

fn delete_alias(state: &ApiState, function: &str, name: &str) -> Result<Reply, LambdaError> {
    // Lambda answers 204 whether or not the alias (or its function) exists.
    let deleted = state
        .store
        .delete_alias(function, name)
        .map_err(|e| store_error(e, &state.scope.qualified_arn(function, Some(name))))?;
    if deleted {
        state.invoker.unprovision(function, name);
        tracing::info!(function, alias = %name, "alias deleted");
    }
    Ok(Reply::NoContent)
}

fn list_aliases(
    state: &ApiState,
    function: &str,
    function_version: Option<String>,
    marker: Option<String>,
    max_items: Option<usize>,
) -> Result<Reply, LambdaError> {
    let arn = state.scope.function_arn(function);
    let aliases: Vec<AliasConfiguration> = state
        .store
        .list_aliases(function)
        .map_err(|e| store_error(e, &arn))?
        .ok_or_else(|| LambdaError::function_not_found(&arn))?
        .into_iter()
        .filter(|a| {
            function_version
                .as_deref()
                .is_none_or(|v| a.function_version == v)
        })
        .collect();
    let page = max_items.unwrap_or(LIST_FUNCTIONS_PAGE);
    let (aliases, next_marker) = paginate(aliases, marker.as_deref(), page, |a| &a.name)?;
    Ok(Reply::ListAliases(ListAliasesOutput {
        aliases,
        next_marker,
    }))
}

fn account_settings(state: &ApiState) -> Result<Reply, LambdaError> {
    let usage = state
        .store
        .usage()
        .map_err(|e| store_error(e, "GetAccountSettings"))?;
    let (account, unreserved, memory, reserved_mb) = state.invoker.pool().capacity();
    Ok(Reply::AccountSettings(AccountSettings {
        account_limit: AccountLimit {
            total_code_size: TOTAL_CODE_SIZE_BYTES,
            code_size_unzipped: UNZIPPED_MAX_BYTES,
            code_size_zipped: ZIPPED_MAX_BYTES,
            concurrent_executions: account,
            unreserved_concurrent_executions: unreserved,
        },
        account_usage: AccountUsage {
            total_code_size: usage.total_code_size,
            function_count: usage.function_count,
        },
        sous: SousCapacity {
            host_memory_mb: memory.host_mb,
            memory_headroom_mb: memory.headroom_mb,
            memory_capacity_mb: memory.capacity_mb(),
            memory_reserved_mb: reserved_mb,
            memory_available_mb: memory.capacity_mb().saturating_sub(reserved_mb),
        },
    }))
}

fn decode_zip(b64: &str, operation: &str) -> Result<Vec<u8>, LambdaError> {
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

fn new_revision() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn zip_only() -> LambdaError {
    LambdaError::invalid_parameter(
        "Sous takes function code as a .zip deployment package in Code.ZipFile only: S3Bucket/S3Key and container images (ImageUri, PackageType Image) are not supported.",
    )
}

fn already_exists(name: &str) -> LambdaError {
    LambdaError::conflict(format!("Function already exist: {name}"))
}

fn precondition_failed() -> LambdaError {
    LambdaError::new(
        ErrorCode::PreconditionFailedException,
        "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
    )
}

/// A lost compare-and-swap: the caller's RevisionId is stale (412), or another update won the
/// race while this one ran (409, as Lambda answers for an update in progress).
fn update_error(e: StoreError, state: &ApiState, name: &str, user_revision: bool) -> LambdaError {
    let arn = state.scope.function_arn(name);
    match e {
        StoreError::RevisionMismatch if user_revision => precondition_failed(),
        StoreError::RevisionMismatch => LambdaError::conflict(format!(
            "The operation cannot be performed at this time. An update is in progress for resource: {arn}"
        )),
        other => store_error(other, &arn),
    }
}

/// Map a store failure; `what` is the ARN (for not-found) or the operation.
fn store_error(e: StoreError, what: &str) -> LambdaError {
    match e {
        StoreError::Exists => LambdaError::conflict(format!("Resource already exists: {what}")),
        StoreError::NotFound => LambdaError::function_not_found(what),
        StoreError::RevisionMismatch => precondition_failed(),
        StoreError::Code(c) => c.to_lambda_error(),
        other => {
            tracing::error!(error = %other, %what, "metadata store failed");
            LambdaError::service(
                "Sous could not read or write its metadata store; see the server log.",
            )
        }
    }
}

/// Run store/zip work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LambdaError> + Send + 'static,
) -> Result<T, LambdaError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "blocking task failed");
        Err(LambdaError::service("internal error"))
    })
}

fn gc(state: &ApiState, hexes: &[String]) {
    if let Err(e) = state.store.gc_code(hexes) {
        tracing::warn!(error = %e, "garbage-collect code blobs (will be retried at the next delete)");
    }
}

/// Remove unreferenced blobs in the background (after environments using them are retired).
fn gc_async(state: &Arc<ApiState>, orphans: Vec<String>) {
    if orphans.is_empty() {
        return;
    }
    let st = state.clone();
    tokio::task::spawn_blocking(move || gc(&st, &orphans));
}
