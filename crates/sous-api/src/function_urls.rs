//! Function URL configurations in the Lambda API (`/2021-10-31/functions/{name}/url[s]`):
//! the parsed commands and their execution. The front door that serves the URLs is
//! `sous_events::gateway`; it reads what these operations store.
//!
//! A function URL addresses `$LATEST` (no qualifier) or an alias; its `FunctionUrl` is
//! path-based on the gateway address (`{gateway_url}/lambda-url/{url-id}/`), so any HTTP
//! client on this machine reaches it; the gateway also accepts the host-based form
//! `{url-id}.lambda-url.{region}.localhost`.

use http::Method;
use sous_store::db::LATEST;
use sous_store::urls::FunctionUrl;
use sous_store::StoreError;
use sous_types::error::Violations;
use sous_types::function_url::{
    check_input, check_qualifier, new_url_id, AuthType, FunctionUrlConfig, FunctionUrlConfigInput,
    ListFunctionUrlConfigsOutput, INVOKE_MODE_BUFFERED,
};
use sous_types::timefmt;
use sous_types::LambdaError;
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::routes::Target;
use crate::service::Reply;
use crate::ApiState;

/// One function URL operation, fully parsed.
#[derive(Debug)]
pub enum UrlCommand {
    /// `POST /2021-10-31/functions/{FunctionName}/url[?Qualifier=]`
    Create {
        target: Target,
        input: FunctionUrlConfigInput,
    },
    /// `GET /2021-10-31/functions/{FunctionName}/url[?Qualifier=]`
    Get(Target),
    /// `PUT /2021-10-31/functions/{FunctionName}/url[?Qualifier=]`
    Update {
        target: Target,
        input: FunctionUrlConfigInput,
    },
    /// `DELETE /2021-10-31/functions/{FunctionName}/url[?Qualifier=]`
    Delete(Target),
    /// `GET /2021-10-31/functions/{FunctionName}/urls[?Marker=&MaxItems=]`
    List {
        function: String,
        marker: Option<String>,
        max_items: Option<usize>,
    },
}

impl UrlCommand {
    /// The AWS operation name.
    pub fn operation(&self) -> &'static str {
        match self {
            UrlCommand::Create { .. } => "CreateFunctionUrlConfig",
            UrlCommand::Get(_) => "GetFunctionUrlConfig",
            UrlCommand::Update { .. } => "UpdateFunctionUrlConfig",
            UrlCommand::Delete(_) => "DeleteFunctionUrlConfig",
            UrlCommand::List { .. } => "ListFunctionUrlConfigs",
        }
    }

    /// The function the operation is about.
    pub fn function(&self) -> &str {
        match self {
            UrlCommand::Create { target, .. }
            | UrlCommand::Update { target, .. }
            | UrlCommand::Get(target)
            | UrlCommand::Delete(target) => &target.name,
            UrlCommand::List { function, .. } => function,
        }
    }
}

/// Parse `/url` requests: `input` is the JSON body for POST and PUT.
pub fn parse(
    method: &Method,
    target: Target,
    input: Option<FunctionUrlConfigInput>,
) -> Result<UrlCommand, LambdaError> {
    match *method {
        Method::POST => {
            let input = input.unwrap_or_default();
            check_input(&input, target.qualifier.as_deref(), true)?;
            Ok(UrlCommand::Create { target, input })
        }
        Method::PUT => {
            let input = input.unwrap_or_default();
            check_input(&input, target.qualifier.as_deref(), false)?;
            Ok(UrlCommand::Update { target, input })
        }
        Method::GET | Method::DELETE => {
            if let Some(q) = target.qualifier.as_deref() {
                let mut v = Violations::default();
                check_qualifier(q, &mut v);
                v.into_result()?;
            }
            Ok(if *method == Method::GET {
                UrlCommand::Get(target)
            } else {
                UrlCommand::Delete(target)
            })
        }
        _ => Err(crate::routes::unknown_operation()),
    }
}

/// Execute one function URL operation.
pub fn execute(state: &ApiState, cmd: UrlCommand, now: OffsetDateTime) -> Result<Reply, ApiError> {
    match cmd {
        UrlCommand::Create { target, input } => create(state, &target, input, now),
        UrlCommand::Get(target) => {
            let config = existing(state, &target)?;
            Ok(Reply::FunctionUrl {
                status: 200,
                config: Box::new(config),
            })
        }
        UrlCommand::Update { target, input } => update(state, &target, input, now),
        UrlCommand::Delete(target) => {
            require_target(state, &target)?;
            let deleted = state
                .store
                .delete_function_url(&target.name, qualifier_of(&target))
                .map_err(|e| store_error(e, state, &target))?;
            if !deleted {
                return Err(no_url().into());
            }
            tracing::info!(function = %target.name, qualifier = qualifier_of(&target), "function URL deleted");
            Ok(Reply::NoContent)
        }
        UrlCommand::List {
            function,
            marker,
            max_items,
        } => {
            let target = Target {
                name: function,
                qualifier: None,
            };
            require_target(state, &target)?;
            let rows = state
                .store
                .urls(&target.name)
                .map_err(|e| store_error(e, state, &target))?;
            let start = match marker.as_deref() {
                None => 0,
                Some(m) => rows
                    .iter()
                    .position(|r| r.qualifier.as_str() > m)
                    .unwrap_or(rows.len()),
            };
            let limit = max_items.unwrap_or(50);
            let total = rows.len();
            let page: Vec<FunctionUrl> = rows.into_iter().skip(start).take(limit).collect();
            let next_marker = if start + page.len() < total {
                page.last().map(|r| r.qualifier.clone())
            } else {
                None
            };
            let configs = page.into_iter().map(|r| r.config).collect();
            Ok(Reply::ListFunctionUrls(ListFunctionUrlConfigsOutput {
                function_url_configs: configs,
                next_marker,
            }))
        }
    }
}

fn qualifier_of(t: &Target) -> &str {
    t.qualifier.as_deref().unwrap_or(LATEST)
}

/// The ARN a URL configuration names: the function's for `$LATEST`, the alias's otherwise.
fn arn_of(state: &ApiState, t: &Target) -> String {
    match t.qualifier.as_deref() {
        None => state.scope.function_arn(&t.name),
        Some(q) => state.scope.qualified_arn(&t.name, Some(q)),
    }
}

/// The function (and alias) must exist: Lambda's `Function not found: <arn>` otherwise.
fn require_target(state: &ApiState, t: &Target) -> Result<(), ApiError> {
    let arn = arn_of(state, t);
    match state.store.get_function(&t.name, LATEST) {
        Ok(Some(_)) => {}
        Ok(None) => {
            return Err(LambdaError::function_not_found(&state.scope.function_arn(&t.name)).into())
        }
        Err(e) => return Err(store_error(e, state, t)),
    }
    if let Some(alias) = t.qualifier.as_deref() {
        match state.store.get_alias(&t.name, alias) {
            Ok(Some(_)) => {}
            Ok(None) => return Err(LambdaError::function_not_found(&arn).into()),
            Err(e) => return Err(store_error(e, state, t)),
        }
    }
    Ok(())
}

fn no_url() -> LambdaError {
    LambdaError::not_found("The resource you requested does not exist.")
}

/// The URL configuration of an existing target.
fn existing(state: &ApiState, t: &Target) -> Result<FunctionUrlConfig, ApiError> {
    require_target(state, t)?;
    let url = state
        .store
        .url(&t.name, qualifier_of(t))
        .map_err(|e| store_error(e, state, t))?
        .ok_or_else(no_url)?;
    Ok(url.config)
}

fn create(
    state: &ApiState,
    t: &Target,
    input: FunctionUrlConfigInput,
    now: OffsetDateTime,
) -> Result<Reply, ApiError> {
    require_target(state, t)?;
    let url_id = new_url_id();
    let stamp = timefmt::iso8601_micros(now);
    let config = FunctionUrlConfig {
        function_url: format!("{}/lambda-url/{url_id}/", state.gateway_url),
        function_arn: arn_of(state, t),
        auth_type: if input.auth_type.as_deref() == Some("AWS_IAM") {
            AuthType::AwsIam
        } else {
            AuthType::None
        },
        cors: input.cors,
        creation_time: stamp.clone(),
        last_modified_time: Some(stamp),
        invoke_mode: input
            .invoke_mode
            .unwrap_or_else(|| INVOKE_MODE_BUFFERED.to_string()),
    };
    let url = FunctionUrl {
        url_id: url_id.clone(),
        function_name: t.name.clone(),
        qualifier: qualifier_of(t).to_string(),
        config,
    };
    state.store.insert_url(&url).map_err(|e| match e {
        StoreError::Exists => LambdaError::conflict(format!(
            "Failed to create function url config for [functionArn = {}]. Error message:  FunctionUrlConfig exists for this Lambda function",
            url.config.function_arn
        ))
        .into(),
        e => store_error(e, state, t),
    })?;
    let mut config = url.config;
    tracing::info!(function = %t.name, qualifier = qualifier_of(t), url_id, "function URL created");
    // CreateFunctionUrlConfig's answer has no LastModifiedTime.
    config.last_modified_time = None;
    Ok(Reply::FunctionUrl {
        status: 201,
        config: Box::new(config),
    })
}

fn update(
    state: &ApiState,
    t: &Target,
    input: FunctionUrlConfigInput,
    now: OffsetDateTime,
) -> Result<Reply, ApiError> {
    let mut config = existing(state, t)?;
    match input.auth_type.as_deref() {
        Some("AWS_IAM") => config.auth_type = AuthType::AwsIam,
        Some("NONE") => config.auth_type = AuthType::None,
        _ => {}
    }
    if let Some(cors) = input.cors {
        config.cors = Some(cors);
    }
    if let Some(mode) = input.invoke_mode {
        config.invoke_mode = mode;
    }
    config.last_modified_time = Some(timefmt::iso8601_micros(now));
    let updated = state
        .store
        .update_url(&t.name, qualifier_of(t), &config)
        .map_err(|e| store_error(e, state, t))?;
    if !updated {
        return Err(no_url().into());
    }
    tracing::info!(function = %t.name, qualifier = qualifier_of(t), "function URL updated");
    Ok(Reply::FunctionUrl {
        status: 200,
        config: Box::new(config),
    })
}

fn store_error(e: StoreError, state: &ApiState, t: &Target) -> ApiError {
    match e {
        StoreError::NotFound => LambdaError::function_not_found(&arn_of(state, t)).into(),
        other => ApiError::internal("use the metadata store for the function URL", other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn timestamps_are_iso8601_with_microseconds() {
        assert_eq!(
            timefmt::iso8601_micros(datetime!(2026-11-28 22:52:53.123456 UTC)),
            "2026-11-28T22:52:53.123456Z"
        );
    }
}
