//! Versions: PublishVersion (and CreateFunction/UpdateFunctionCode with `Publish`),
//! ListVersionsByFunction.

use std::sync::Arc;

use serde::Serialize;
use sous_store::{StoreError, StoredFunction};
use sous_types::alias::PublishVersionInput;
use sous_types::config::FunctionConfiguration;
use sous_types::limits::LIST_FUNCTIONS_PAGE;
use sous_types::LambdaError;

use super::{blocking, new_revision, paginate, Reply};
use crate::error::{precondition_failed, store_error, ApiError};
use crate::ApiState;

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListVersionsOutput {
    pub versions: Vec<FunctionConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

/// PublishVersion.
pub(super) async fn publish_version(
    state: &Arc<ApiState>,
    function: String,
    input: PublishVersionInput,
) -> Result<Reply, ApiError> {
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
pub(super) fn publish(
    state: &ApiState,
    name: &str,
    code_sha256: Option<&str>,
    revision_id: Option<&str>,
    description: Option<String>,
) -> Result<FunctionConfiguration, ApiError> {
    let arn = state.scope.function_arn(name);
    let result = state.store.publish_version(
        name,
        &new_revision(),
        |latest| {
            latest
                .config
                .check_modifiable(&arn)
                .map_err(PublishError::Refused)?;
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
        Err(PublishError::Refused(e)) => Err(e.into()),
        Err(PublishError::Store(e)) => Err(store_error(e, &arn)),
    }
}

pub(super) fn list(
    state: &ApiState,
    function: &str,
    marker: Option<String>,
    max_items: Option<usize>,
) -> Result<Reply, ApiError> {
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
