//! Concurrency: reserved (Put/Get/DeleteFunctionConcurrency) and provisioned
//! (Put/Get/Delete/ListProvisionedConcurrencyConfig(s)), checked against the account's
//! limits as Lambda checks them.

use serde::Serialize;
use sous_store::db::{ConcurrencyView, StoredProvisioned, LATEST};
use sous_store::StoreError;
use sous_types::alias::is_version_number;
use sous_types::concurrency::{
    self as cc, Concurrency, ProvisionedConcurrencyConfig, ProvisionedStatus,
};
use sous_types::{timefmt, LambdaError};
use time::OffsetDateTime;

use super::{paginate, require_function, saturating_i64, Reply};
use crate::error::{store_error, ApiError};
use crate::routes::Target;
use crate::ApiState;

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListProvisionedOutput {
    pub provisioned_concurrency_configs: Vec<ProvisionedConcurrencyConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

/// A function's reserved concurrency; 404 when the function does not exist.
fn reserved_of(state: &ApiState, function: &str) -> Result<Option<u64>, ApiError> {
    let arn = state.scope.function_arn(function);
    state
        .store
        .reserved_concurrency(function)
        .map_err(|e| store_error(e, &arn))?
        .ok_or_else(|| LambdaError::function_not_found(&arn).into())
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

fn concurrency_error(e: ConcurrencyError, arn: &str) -> ApiError {
    match e {
        ConcurrencyError::Refused(e) => e.into(),
        ConcurrencyError::Store(e) => store_error(e, arn),
    }
}

/// PutFunctionConcurrency: the reservation must leave the account its minimum unreserved
/// concurrency (100, or the whole limit when smaller) and cover the function's provisioned
/// concurrency.
pub(super) fn put_reserved(
    state: &ApiState,
    function: &str,
    reserved: u64,
) -> Result<Reply, ApiError> {
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

pub(super) fn delete_reserved(state: &ApiState, function: &str) -> Result<Reply, ApiError> {
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
fn provisioned_qualifier<'t>(state: &ApiState, t: &'t Target) -> Result<&'t str, ApiError> {
    let qualifier = t.qualifier.as_deref().unwrap_or_default();
    if qualifier == LATEST {
        return Err(cc::provisioned_needs_published().into());
    }
    provisioned_target_exists(state, &t.name, qualifier)?;
    Ok(qualifier)
}

/// The function, and the version or alias `qualifier` names, must exist.
fn provisioned_target_exists(
    state: &ApiState,
    function: &str,
    qualifier: &str,
) -> Result<(), ApiError> {
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

pub(super) fn put_provisioned(
    state: &ApiState,
    t: &Target,
    requested: u64,
    now: OffsetDateTime,
) -> Result<Reply, ApiError> {
    let qualifier = t.qualifier.as_deref().unwrap_or_default();
    if qualifier == LATEST {
        return Err(cc::provisioned_on_latest().into());
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
            return Err(LambdaError::conflict(message).into());
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

/// GetFunctionConcurrency.
pub(super) fn get_reserved(state: &ApiState, function: &str) -> Result<Reply, ApiError> {
    let reserved = reserved_of(state, function)?;
    Ok(Reply::Concurrency(Concurrency {
        reserved_concurrent_executions: reserved.map(saturating_i64),
    }))
}

/// GetProvisionedConcurrencyConfig.
pub(super) fn get_provisioned(state: &ApiState, t: &Target) -> Result<Reply, ApiError> {
    let qualifier = provisioned_qualifier(state, t)?;
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

/// DeleteProvisionedConcurrencyConfig.
pub(super) fn delete_provisioned(state: &ApiState, t: &Target) -> Result<Reply, ApiError> {
    let qualifier = provisioned_qualifier(state, t)?;
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

/// ListProvisionedConcurrencyConfigs.
pub(super) fn list_provisioned(
    state: &ApiState,
    function: &str,
    marker: Option<String>,
    max_items: Option<usize>,
) -> Result<Reply, ApiError> {
    require_function(state, function)?;
    let configs: Vec<ProvisionedConcurrencyConfig> = state
        .store
        .list_provisioned(Some(function))
        .map_err(|e| store_error(e, &state.scope.function_arn(function)))?
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
