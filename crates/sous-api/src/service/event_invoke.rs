//! Event invoke configurations: Put/Update/Get/Delete/ListFunctionEventInvokeConfig(s),
//! the retry and destination settings of asynchronous invocation.

use serde::Serialize;
use sous_store::db::LATEST;
use sous_store::StoreError;
use sous_types::config::FunctionConfiguration;
use sous_types::event_invoke::{
    check_destinations, EventInvokeConfigInput, FunctionEventInvokeConfig,
};
use sous_types::LambdaError;
use time::OffsetDateTime;

use super::functions::lookup;
use super::{paginate, require_function, Reply};
use crate::error::{store_error, ApiError};
use crate::routes::Target;
use crate::ApiState;

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListEventInvokeConfigsOutput {
    pub function_event_invoke_configs: Vec<FunctionEventInvokeConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

/// The function (and version or alias) an event invoke configuration is about must exist;
/// returns its configuration and its qualified ARN (`$LATEST` when unqualified).
fn event_invoke_target(
    state: &ApiState,
    t: &Target,
) -> Result<(FunctionConfiguration, String), ApiError> {
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

/// Put (replace) or Update (merge) the event invoke configuration of a function, version or
/// alias.
pub(super) fn put(
    state: &ApiState,
    t: &Target,
    input: &EventInvokeConfigInput,
    merge: bool,
    now: OffsetDateTime,
) -> Result<Reply, ApiError> {
    let (_, arn) = event_invoke_target(state, t)?;
    let qualifier = t.qualifier.as_deref().unwrap_or(LATEST);
    // Put replaces whatever is stored without reading it; Update merges onto it.
    let stored = if merge {
        state
            .store
            .event_invoke_config(&t.name, qualifier)
            .map_err(|e| store_error(e, &arn))?
    } else {
        None
    };
    let mut config = stored.unwrap_or_default();
    if merge {
        config.merge(input);
    } else {
        config.replace(input);
    }
    check_destinations(&config.destination_config, &state.scope)?;
    config.function_arn = arn.clone();
    config.last_modified = (now.unix_timestamp_nanos() / 1_000_000) as f64 / 1000.0;
    state
        .store
        .set_event_invoke_config(&t.name, qualifier, &config)
        .map_err(|e| match e {
            StoreError::NotFound => LambdaError::function_not_found(&arn).into(),
            e => store_error(e, &arn),
        })?;
    Ok(Reply::EventInvokeConfig(Box::new(config)))
}

pub(super) fn get(state: &ApiState, t: &Target) -> Result<Reply, ApiError> {
    let (_, arn) = event_invoke_target(state, t)?;
    let qualifier = t.qualifier.as_deref().unwrap_or(LATEST);
    let config = state
        .store
        .event_invoke_config(&t.name, qualifier)
        .map_err(|e| store_error(e, &arn))?
        .ok_or_else(|| no_event_invoke_config(&arn))?;
    Ok(Reply::EventInvokeConfig(Box::new(config)))
}

/// DeleteFunctionEventInvokeConfig.
pub(super) fn delete(state: &ApiState, t: &Target) -> Result<Reply, ApiError> {
    let (_, arn) = event_invoke_target(state, t)?;
    let qualifier = t.qualifier.as_deref().unwrap_or(LATEST);
    let removed = state
        .store
        .delete_event_invoke_config(&t.name, qualifier)
        .map_err(|e| store_error(e, &arn))?;
    if !removed {
        return Err(no_event_invoke_config(&arn).into());
    }
    Ok(Reply::NoContent)
}

/// ListFunctionEventInvokeConfigs.
pub(super) fn list(
    state: &ApiState,
    function: &str,
    marker: Option<String>,
    max_items: Option<usize>,
) -> Result<Reply, ApiError> {
    require_function(state, function)?;
    let arn = state.scope.function_arn(function);
    let configs = state
        .store
        .event_invoke_configs(function)
        .map_err(|e| store_error(e, &arn))?;
    let (page, next_marker) = paginate(configs, marker.as_deref(), max_items.unwrap_or(50), |c| {
        c.function_arn.as_str()
    })?;
    Ok(Reply::ListEventInvokeConfigs(
        ListEventInvokeConfigsOutput {
            function_event_invoke_configs: page,
            next_marker,
        },
    ))
}
