//! Aliases: CreateAlias, GetAlias, UpdateAlias, DeleteAlias, ListAliases.

use serde::Serialize;
use sous_store::StoreError;
use sous_types::alias::{
    check_routing_semantics, normalize_routing, AliasConfiguration, CreateAliasInput,
    UpdateAliasInput,
};
use sous_types::limits::LIST_FUNCTIONS_PAGE;
use sous_types::LambdaError;

use super::{new_revision, paginate, require_function, Reply};
use crate::error::{precondition_failed, store_error, ApiError};
use crate::ApiState;

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListAliasesOutput {
    pub aliases: Vec<AliasConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

/// Map a store failure of an alias write.
fn alias_store_error(e: StoreError, state: &ApiState, function: &str, alias: &str) -> ApiError {
    match e {
        StoreError::VersionNotFound(v) => {
            LambdaError::function_not_found(&state.scope.qualified_arn(function, Some(&v))).into()
        }
        StoreError::NotFound => {
            LambdaError::function_not_found(&state.scope.function_arn(function)).into()
        }
        StoreError::Exists => LambdaError::conflict(format!(
            "Alias already exists: {}",
            state.scope.qualified_arn(function, Some(alias))
        ))
        .into(),
        other => store_error(other, &state.scope.qualified_arn(function, Some(alias))),
    }
}

pub(super) fn create(
    state: &ApiState,
    function: &str,
    input: CreateAliasInput,
) -> Result<Reply, ApiError> {
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

pub(super) fn get(state: &ApiState, function: &str, name: &str) -> Result<Reply, ApiError> {
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

pub(super) fn update(
    state: &ApiState,
    function: &str,
    name: &str,
    input: UpdateAliasInput,
) -> Result<Reply, ApiError> {
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
        return Err(precondition_failed().into());
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
        Err(StoreError::NotFound) => return Err(not_found().into()),
        Err(StoreError::RevisionMismatch) if input.revision_id.is_some() => {
            return Err(precondition_failed().into())
        }
        Err(StoreError::RevisionMismatch) => {
            return Err(LambdaError::conflict(format!(
                "The operation cannot be performed at this time. An update is in progress for resource: {arn}"
            )).into())
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

pub(super) fn delete(state: &ApiState, function: &str, name: &str) -> Result<Reply, ApiError> {
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

pub(super) fn list(
    state: &ApiState,
    function: &str,
    function_version: Option<String>,
    marker: Option<String>,
    max_items: Option<usize>,
) -> Result<Reply, ApiError> {
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
