//! Layers: PublishLayerVersion, GetLayerVersion[ByArn], ListLayers, ListLayerVersions,
//! DeleteLayerVersion, Add/RemoveLayerVersionPermission, GetLayerVersionPolicy; and what a
//! function's `Layers` need (each version resolved, the 250 MB limit of code plus layers).
//!
//! Layer versions are immutable and numbered from 1 per layer, never reused. Their policies
//! are stored and returned as Lambda does; nothing enforces them yet (cross-account use
//! waits for the IAM issue).

use std::sync::Arc;

use sous_store::layers::{NewLayerVersion, StoredLayerVersion};
use sous_store::StoreError;
use sous_types::layers::{
    layer_arn, layer_version_arn, parse_layer_version_arn, policy_document,
    AddLayerVersionPermissionInput, AddLayerVersionPermissionOutput, FunctionLayer, LayerStatement,
    LayerVersion, LayerVersionContentInput, LayerVersionContentOutput, LayerVersionPolicy,
    LayerVersionsListItem, LayersListItem, ListLayerVersionsOutput, ListLayersOutput,
    PublishLayerVersionInput, LIST_LAYERS_PAGE,
};
use sous_types::limits::{UNZIPPED_MAX_BYTES, ZIPPED_MAX_BYTES};
use sous_types::{timefmt, ErrorCode, LambdaError};
use time::OffsetDateTime;

use super::{blocking, new_revision, Reply};
use crate::blocking::on_pool;
use crate::error::{store_error, ApiError};
use crate::routes::{LayerCommand, LayerFilter};
use crate::s3_code::{self, code_source, CodeSource, S3_ZIPPED_MAX_BYTES};
use crate::{code_url, ApiState};

/// Execute one layer command.
pub(super) async fn execute(
    state: &Arc<ApiState>,
    cmd: LayerCommand,
    now: OffsetDateTime,
) -> Result<Reply, ApiError> {
    match cmd {
        LayerCommand::Publish { layer, input } => publish(state, layer, *input, now).await,
        LayerCommand::Get { layer, version } => {
            on_pool(state, move |st| {
                let found = match layer {
                    Some(name) => get_live(st, &name, version)?,
                    None => None,
                };
                let l = found.ok_or_else(not_found)?;
                json(200, &layer_version(st, &l, now))
            })
            .await
        }
        LayerCommand::GetByArn { arn } => {
            on_pool(state, move |st| {
                let found = match ours(st, &arn) {
                    Some((name, version)) => get_live(st, &name, version)?,
                    None => None,
                };
                let l = found.ok_or_else(not_found)?;
                json(200, &layer_version(st, &l, now))
            })
            .await
        }
        LayerCommand::List(filter) => on_pool(state, move |st| list_layers(st, &filter)).await,
        LayerCommand::ListVersions { layer, filter } => {
            on_pool(state, move |st| list_versions(st, layer.as_deref(), &filter)).await
        }
        LayerCommand::Delete { layer, version } => {
            on_pool(state, move |st| {
                let Some(name) = layer else {
                    return Ok(Reply::NoContent);
                };
                let orphans = st
                    .store
                    .delete_layer_version(&name, version)
                    .map_err(|e| store_error(e, "DeleteLayerVersion"))?;
                tracing::info!(layer = %name, version, "layer version deleted");
                if let Err(e) = st.store.gc_code(&orphans) {
                    tracing::warn!(error = %e, "garbage-collect layer blobs (will be retried at the next delete)");
                }
                Ok(Reply::NoContent)
            })
            .await
        }
        LayerCommand::AddPermission {
            layer,
            version,
            input,
            revision_id,
        } => {
            on_pool(state, move |st| {
                add_permission(st, layer, version, input, revision_id)
            })
            .await
        }
        LayerCommand::RemovePermission {
            layer,
            version,
            statement_id,
            revision_id,
        } => {
            on_pool(state, move |st| {
                let name = layer.ok_or_else(not_found)?;
                let policy = st
                    .store
                    .layer_policy(&name, version)
                    .map_err(|e| store_error(e, "RemoveLayerVersionPermission"))?
                    .ok_or_else(not_found)?;
                check_revision(revision_id.as_deref(), policy.revision_id.as_deref())?;
                let mut statements = policy.statements;
                let before = statements.len();
                statements.retain(|s| s.sid != statement_id);
                if statements.len() == before {
                    return Err(LambdaError::not_found(format!(
                        "Statement {statement_id} is not found in resource policy."
                    ))
                    .into());
                }
                set_policy(st, &name, version, &statements, policy.revision_id)?;
                Ok(Reply::NoContent)
            })
            .await
        }
        LayerCommand::GetPolicy { layer, version } => {
            on_pool(state, move |st| {
                let name = layer.ok_or_else(not_found)?;
                let policy = st
                    .store
                    .layer_policy(&name, version)
                    .map_err(|e| store_error(e, "GetLayerVersionPolicy"))?
                    .ok_or_else(not_found)?;
                let (false, Some(revision_id)) =
                    (policy.statements.is_empty(), policy.revision_id)
                else {
                    return Err(LambdaError::not_found(
                        "No policy is associated with the given resource.",
                    )
                    .into());
                };
                let resource = layer_version_arn(&st.scope, &name, version);
                json(
                    200,
                    &LayerVersionPolicy {
                        policy: policy_document(&policy.statements, &resource),
                        revision_id,
                    },
                )
            })
            .await
        }
    }
}

/// Lambda's answer for a layer, layer version or policy that does not exist.
fn not_found() -> LambdaError {
    LambdaError::not_found("The resource you requested does not exist.")
}

fn json<T: serde::Serialize>(status: u16, body: &T) -> Result<Reply, ApiError> {
    let body = serde_json::to_value(body)
        .map_err(|e| ApiError::internal("serialize the layer response", e))?;
    Ok(Reply::Json { status, body })
}

fn get_live(
    state: &ApiState,
    name: &str,
    version: u64,
) -> Result<Option<StoredLayerVersion>, ApiError> {
    state
        .store
        .get_layer_version(name, version)
        .map_err(|e| store_error(e, "GetLayerVersion"))
}

/// The layer name and version of an ARN of this region and account.
fn ours(state: &ApiState, arn: &str) -> Option<(String, u64)> {
    let r = parse_layer_version_arn(arn)?;
    (r.region == state.scope.region && r.account == state.scope.account)
        .then_some((r.name, r.version))
}

/// A layer's zip bytes and the cap on their zipped size: `Content.ZipFile` inline (50 MB), or
/// the object `Content.S3Bucket`/`S3Key`/`S3ObjectVersion` names, fetched from the
/// configured S3 endpoint as CreateFunction fetches code (`s3_code.rs`).
async fn layer_zip(
    state: &Arc<ApiState>,
    content: &LayerVersionContentInput,
) -> Result<(Vec<u8>, u64), ApiError> {
    if content.zip_file.is_none() && content.s3_bucket.is_none() && content.s3_key.is_none() {
        return Err(LambdaError::invalid_parameter(
            "Please provide a source for layer code: Content.ZipFile or Content.S3Bucket and Content.S3Key.",
        )
        .into());
    }
    let source = code_source(
        content.zip_file.clone(),
        content.s3_bucket.clone(),
        content.s3_key.clone(),
        content.s3_object_version.clone(),
        "content.",
    )?;
    match source {
        CodeSource::Inline(b64) => Ok((
            super::functions::decode_zip(&b64, "PublishLayerVersion")?,
            ZIPPED_MAX_BYTES,
        )),
        CodeSource::S3(object) => Ok((
            s3_code::fetch_zip(state, &object).await?,
            S3_ZIPPED_MAX_BYTES,
        )),
    }
}

async fn publish(
    state: &Arc<ApiState>,
    layer: Option<String>,
    input: PublishLayerVersionInput,
    now: OffsetDateTime,
) -> Result<Reply, ApiError> {
    let name = layer.ok_or_else(not_found)?;
    let content = input.content.clone().unwrap_or_default();
    let (zip, max) = layer_zip(state, &content).await?;
    let st = state.clone();
    blocking(move || {
        let _pin = st.store.pin_code();
        let code = st.store.code().put_zip_max(&zip, max)?;
        let new = NewLayerVersion {
            description: input.description.unwrap_or_default(),
            license_info: input.license_info,
            compatible_runtimes: input.compatible_runtimes.unwrap_or_default(),
            compatible_architectures: input.compatible_architectures.unwrap_or_default(),
            created_date: timefmt::last_modified(now),
            code,
        };
        let stored = st
            .store
            .publish_layer_version(&name, &new)
            .map_err(|e| store_error(e, "PublishLayerVersion"))?;
        tracing::info!(layer = %name, version = stored.version, code_sha256 = %stored.code_sha256_b64, "layer version published");
        json(201, &layer_version(&st, &stored, now))
    })
    .await
}

fn layer_version(state: &ApiState, l: &StoredLayerVersion, now: OffsetDateTime) -> LayerVersion {
    LayerVersion {
        content: LayerVersionContentOutput {
            location: code_url::sign(
                &state.public_url,
                &state.credentials.secret_access_key,
                &l.code_sha256_hex,
                now.unix_timestamp(),
            ),
            code_sha256: l.code_sha256_b64.clone(),
            code_size: l.code_size,
        },
        layer_arn: layer_arn(&state.scope, &l.layer_name),
        layer_version_arn: layer_version_arn(&state.scope, &l.layer_name, l.version),
        description: l.description.clone(),
        created_date: l.created_date.clone(),
        version: l.version,
        compatible_runtimes: l.compatible_runtimes.clone(),
        license_info: l.license_info.clone(),
        compatible_architectures: l.compatible_architectures.clone(),
    }
}

fn list_item(state: &ApiState, l: &StoredLayerVersion) -> LayerVersionsListItem {
    LayerVersionsListItem {
        layer_version_arn: layer_version_arn(&state.scope, &l.layer_name, l.version),
        version: l.version,
        description: l.description.clone(),
        created_date: l.created_date.clone(),
        compatible_runtimes: l.compatible_runtimes.clone(),
        license_info: l.license_info.clone(),
        compatible_architectures: l.compatible_architectures.clone(),
    }
}

fn matches(l: &StoredLayerVersion, f: &LayerFilter) -> bool {
    f.runtime
        .as_ref()
        .is_none_or(|r| l.compatible_runtimes.contains(r))
        && f.architecture
            .as_ref()
            .is_none_or(|a| l.compatible_architectures.contains(a))
}

/// The items after `marker` (the key of the last item of the previous page) and the next
/// page's marker: [`super::paginate`] with a computed key and ListLayers' page size.
fn page<T>(
    items: Vec<T>,
    f: &LayerFilter,
    key: impl Fn(&T) -> String,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let size = f
        .max_items
        .unwrap_or(LIST_LAYERS_PAGE)
        .min(LIST_LAYERS_PAGE);
    let keyed: Vec<(String, T)> = items.into_iter().map(|i| (key(&i), i)).collect();
    let (page, next) = super::paginate(keyed, f.marker.as_deref(), size, |(k, _)| k.as_str())?;
    Ok((page.into_iter().map(|(_, i)| i).collect(), next))
}

fn list_versions(
    state: &ApiState,
    layer: Option<&str>,
    f: &LayerFilter,
) -> Result<Reply, ApiError> {
    let versions = match layer {
        Some(name) => state
            .store
            .list_layer_versions(name)
            .map_err(|e| store_error(e, "ListLayerVersions"))?,
        None => Vec::new(),
    };
    let matching: Vec<StoredLayerVersion> =
        versions.into_iter().filter(|l| matches(l, f)).collect();
    let (items, next_marker) = page(matching, f, |l| l.version.to_string())?;
    json(
        200,
        &ListLayerVersionsOutput {
            next_marker,
            layer_versions: items.iter().map(|l| list_item(state, l)).collect(),
        },
    )
}

fn list_layers(state: &ApiState, f: &LayerFilter) -> Result<Reply, ApiError> {
    let all = state
        .store
        .list_all_layer_versions()
        .map_err(|e| store_error(e, "ListLayers"))?;
    // By name, newest first: the first matching version of each layer is its latest.
    let mut latest: Vec<StoredLayerVersion> = Vec::new();
    for l in all.into_iter().filter(|l| matches(l, f)) {
        if latest.last().map(|p| &p.layer_name) != Some(&l.layer_name) {
            latest.push(l);
        }
    }
    let (items, next_marker) = page(latest, f, |l| l.layer_name.clone())?;
    json(
        200,
        &ListLayersOutput {
            next_marker,
            layers: items
                .iter()
                .map(|l| LayersListItem {
                    layer_name: l.layer_name.clone(),
                    layer_arn: layer_arn(&state.scope, &l.layer_name),
                    latest_matching_version: list_item(state, l),
                })
                .collect(),
        },
    )
}

fn add_permission(
    state: &ApiState,
    layer: Option<String>,
    version: u64,
    input: AddLayerVersionPermissionInput,
    revision_id: Option<String>,
) -> Result<Reply, ApiError> {
    let name = layer.ok_or_else(not_found)?;
    let policy = state
        .store
        .layer_policy(&name, version)
        .map_err(|e| store_error(e, "AddLayerVersionPermission"))?
        .ok_or_else(not_found)?;
    check_revision(revision_id.as_deref(), policy.revision_id.as_deref())?;
    // The model made these required: checked in routes.
    let statement = LayerStatement {
        sid: input.statement_id.unwrap_or_default(),
        action: input.action.unwrap_or_default(),
        principal: input.principal.unwrap_or_default(),
        organization_id: input.organization_id,
    };
    if policy.statements.iter().any(|s| s.sid == statement.sid) {
        return Err(LambdaError::conflict(format!(
            "The statement id ({}) provided already exists. Please provide a new statement id, or remove the existing statement.",
            statement.sid
        ))
        .into());
    }
    let mut statements = policy.statements;
    statements.push(statement.clone());
    let revision = set_policy(state, &name, version, &statements, policy.revision_id)?;
    json(
        201,
        &AddLayerVersionPermissionOutput {
            statement: statement.to_json(&layer_version_arn(&state.scope, &name, version)),
            revision_id: revision,
        },
    )
}

fn check_revision(given: Option<&str>, current: Option<&str>) -> Result<(), LambdaError> {
    match given {
        Some(g) if Some(g) != current => Err(LambdaError::new(
            ErrorCode::PreconditionFailedException,
            "The Revision Id provided does not match the latest Revision Id. Call the GetLayerVersionPolicy API to retrieve the latest Revision Id",
        )),
        _ => Ok(()),
    }
}

/// Store the statements (compare-and-swap on the revision read); the new RevisionId.
fn set_policy(
    state: &ApiState,
    name: &str,
    version: u64,
    statements: &[LayerStatement],
    read_revision: Option<String>,
) -> Result<String, ApiError> {
    let revision = new_revision();
    match state.store.set_layer_policy(
        name,
        version,
        statements,
        read_revision.as_deref(),
        &revision,
    ) {
        Ok(()) => Ok(revision),
        Err(StoreError::NotFound) => Err(not_found().into()),
        Err(StoreError::RevisionMismatch) => Err(LambdaError::conflict(
            "The policy of this layer version is being changed by another request. Try again.",
        )
        .into()),
        Err(e) => Err(store_error(e, "layer version policy")),
    }
}

/// A function's `Layers`, resolved: each version must exist in this region and account
/// (InvalidParameterValueException otherwise, as Lambda answers). Returns the configuration's
/// `Layers` and the layers' unzipped bytes. Call it holding [`sous_store::Store::pin_code`]
/// until the configuration is committed, so that a deleted version cannot vanish meanwhile.
pub(super) fn resolve_function_layers(
    state: &ApiState,
    arns: &[String],
) -> Result<(Option<Vec<FunctionLayer>>, u64), ApiError> {
    let mut layers = Vec::new();
    let mut unzipped = 0u64;
    for arn in arns {
        let found = match ours(state, arn) {
            Some((name, version)) => state
                .store
                .get_layer_version(&name, version)
                .map_err(|e| store_error(e, arn))?,
            None => None,
        };
        let l = found.ok_or_else(|| {
            LambdaError::invalid_parameter(format!("Layer version {arn} does not exist."))
        })?;
        unzipped += l.unzipped_size;
        layers.push(FunctionLayer {
            arn: arn.clone(),
            code_size: l.code_size,
        });
    }
    Ok(((!layers.is_empty()).then_some(layers), unzipped))
}

/// The unzipped bytes of the layers a configuration already has (deleted versions still
/// count: the function still runs them).
pub(super) fn configured_layers_size(
    state: &ApiState,
    layers: Option<&[FunctionLayer]>,
) -> Result<u64, ApiError> {
    let mut total = 0;
    for l in layers.unwrap_or_default() {
        if let Some((name, version)) = ours(state, &l.arn) {
            if let Some(v) = state
                .store
                .layer_version_any(&name, version)
                .map_err(|e| store_error(e, &l.arn))?
            {
                total += v.unzipped_size;
            }
        }
    }
    Ok(total)
}

/// Function code plus its layers must stay within 250 MB unzipped.
pub(super) fn check_total_size(
    code_unzipped: u64,
    layers_unzipped: u64,
) -> Result<(), LambdaError> {
    let total = code_unzipped.saturating_add(layers_unzipped);
    if total > UNZIPPED_MAX_BYTES {
        return Err(LambdaError::invalid_parameter(format!(
            "Function code combined with layers exceeds the maximum allowed size of {UNZIPPED_MAX_BYTES} bytes. The actual size is {total} bytes."
        )));
    }
    Ok(())
}

/// The unzipped bytes of a function's stored code package.
pub(super) fn code_unzipped_size(state: &ApiState, code_sha256_hex: &str) -> Result<u64, ApiError> {
    let dir = state.store.code().extracted_dir(code_sha256_hex)?;
    sous_store::layers::unzipped_bytes(&dir)
        .map_err(|e| ApiError::internal("measure the function's code package", e))
}
