//! The Lambda API's decisions: executes one [`Command`] against the store and the invoker
//! and answers with a typed [`Reply`]. Everything Lambda decides about a request that is not
//! the request's shape (defaults, semantic checks, preconditions, what is stored) lives here,
//! one file per resource; [`execute`] only dispatches.
//!
//! Errors are [`ApiError`]s: a refusal in Lambda's terms, or Sous's own failure with its
//! source chain (rendered as `ServiceException`, logged once; see `crate::error`).

mod account;
mod aliases;
mod concurrency;
mod event_invoke;
mod functions;
mod layers;
mod versions;

use std::sync::Arc;

use base64::Engine as _;
use sous_invoke::InvokeResponse;
use sous_store::db::LATEST;
use sous_types::alias::AliasConfiguration;
use sous_types::concurrency::{Concurrency, ProvisionedConcurrencyConfig};
use sous_types::config::FunctionConfiguration;
use sous_types::event_invoke::FunctionEventInvokeConfig;
use sous_types::LambdaError;
use time::OffsetDateTime;

use crate::blocking::on_pool;
use crate::error::{store_error, ApiError};
use crate::routes::Command;
use crate::ApiState;

pub use account::{AccountLimit, AccountSettings, AccountUsage, SousCapacity};
pub use aliases::ListAliasesOutput;
pub use concurrency::ListProvisionedOutput;
pub use event_invoke::ListEventInvokeConfigsOutput;
pub use functions::resume_pending_creations;
pub use functions::{CodeLocation, GetFunctionOutput, ListFunctionsOutput};
pub use versions::ListVersionsOutput;

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
    /// A JSON document with its status (the layer operations' typed outputs).
    Json {
        status: u16,
        body: serde_json::Value,
    },
}

/// Execute one command: one function per command, in its resource's module. `now` is the
/// request's clock reading (injected for tests); `request_id` is the request's id (an
/// invocation runs under it).
///
/// A command that awaits the invoker is an `async fn` and moves its store work to the
/// blocking pool itself, step by step; every other command is a plain function that runs
/// whole on the blocking pool (see `crate::blocking`).
pub async fn execute(
    state: &Arc<ApiState>,
    cmd: Command,
    now: OffsetDateTime,
    request_id: &str,
) -> Result<Reply, ApiError> {
    match cmd {
        Command::Invoke(req) => Ok(Reply::Invoke(
            state.invoker.invoke_as(req, request_id.to_string()).await?,
        )),
        Command::CreateFunction { name, input } => {
            functions::create(state, name, *input, now).await
        }
        Command::UpdateFunctionCode { target, input } => {
            functions::update_code(state, &target, *input, now).await
        }
        Command::UpdateFunctionConfiguration { target, input } => {
            functions::update_configuration(state, &target, *input, now).await
        }
        Command::DeleteFunction(t) => functions::delete(state, &t).await,
        Command::PublishVersion { function, input } => {
            versions::publish_version(state, function, input).await
        }
        Command::Layer(c) => layers::execute(state, c, now).await,
        Command::FunctionUrl(c) => {
            on_pool(state, move |st| crate::function_urls::execute(st, c, now)).await
        }
        Command::GetFunction(t) => on_pool(state, move |st| functions::get(st, &t, now)).await,
        Command::GetFunctionConfiguration(t) => {
            on_pool(state, move |st| functions::get_configuration(st, &t)).await
        }
        Command::ListFunctions {
            marker,
            max_items,
            all_versions,
        } => {
            on_pool(state, move |st| {
                functions::list(st, marker, max_items, all_versions)
            })
            .await
        }
        Command::GetAccountSettings => on_pool(state, |st| account::settings(st)).await,
        Command::Status => on_pool(state, |st| Ok(account::status(st))).await,
        Command::ListVersionsByFunction {
            function,
            marker,
            max_items,
        } => {
            on_pool(state, move |st| {
                versions::list(st, &function, marker, max_items)
            })
            .await
        }
        Command::CreateAlias { function, input } => {
            on_pool(state, move |st| aliases::create(st, &function, input)).await
        }
        Command::GetAlias { function, name } => {
            on_pool(state, move |st| aliases::get(st, &function, &name)).await
        }
        Command::UpdateAlias {
            function,
            name,
            input,
        } => {
            on_pool(state, move |st| {
                aliases::update(st, &function, &name, input)
            })
            .await
        }
        Command::DeleteAlias { function, name } => {
            on_pool(state, move |st| aliases::delete(st, &function, &name)).await
        }
        Command::ListAliases {
            function,
            function_version,
            marker,
            max_items,
        } => {
            on_pool(state, move |st| {
                aliases::list(st, &function, function_version, marker, max_items)
            })
            .await
        }
        Command::PutFunctionConcurrency { function, reserved } => {
            on_pool(state, move |st| {
                concurrency::put_reserved(st, &function, reserved)
            })
            .await
        }
        Command::GetFunctionConcurrency { function } => {
            on_pool(state, move |st| concurrency::get_reserved(st, &function)).await
        }
        Command::DeleteFunctionConcurrency { function } => {
            on_pool(state, move |st| concurrency::delete_reserved(st, &function)).await
        }
        Command::PutProvisionedConcurrencyConfig { target, requested } => {
            on_pool(state, move |st| {
                concurrency::put_provisioned(st, &target, requested, now)
            })
            .await
        }
        Command::GetProvisionedConcurrencyConfig(t) => {
            on_pool(state, move |st| concurrency::get_provisioned(st, &t)).await
        }
        Command::DeleteProvisionedConcurrencyConfig(t) => {
            on_pool(state, move |st| concurrency::delete_provisioned(st, &t)).await
        }
        Command::ListProvisionedConcurrencyConfigs {
            function,
            marker,
            max_items,
        } => {
            on_pool(state, move |st| {
                concurrency::list_provisioned(st, &function, marker, max_items)
            })
            .await
        }
        Command::PutFunctionEventInvokeConfig {
            target,
            input,
            merge,
        } => {
            on_pool(state, move |st| {
                event_invoke::put(st, &target, &input, merge, now)
            })
            .await
        }
        Command::GetFunctionEventInvokeConfig(t) => {
            on_pool(state, move |st| event_invoke::get(st, &t)).await
        }
        Command::DeleteFunctionEventInvokeConfig(t) => {
            on_pool(state, move |st| event_invoke::delete(st, &t)).await
        }
        Command::ListFunctionEventInvokeConfigs {
            function,
            marker,
            max_items,
        } => {
            on_pool(state, move |st| {
                event_invoke::list(st, &function, marker, max_items)
            })
            .await
        }
    }
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
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

/// The function must exist before its aliases, concurrency or configurations are touched.
fn require_function(state: &ApiState, function: &str) -> Result<(), ApiError> {
    let arn = state.scope.function_arn(function);
    match state.store.get_function(function, LATEST) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(LambdaError::function_not_found(&arn).into()),
        Err(e) => Err(store_error(e, &arn)),
    }
}

fn new_revision() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Run store and zip work off the async workers ([`crate::blocking::blocking`], typed for the
/// Lambda API's errors).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    crate::blocking::blocking(f).await
}
