//! Execute API Gateway v2 commands against the store: every rule about HTTP APIs that the
//! control plane enforces (protocol, route keys, integration types and URIs, payload format
//! versions, timeouts, stage names, quick create) is decided here.

use sous_store::StoreError;
use sous_types::http_api::{
    self, Api, Integration, Route, RouteKey, RouteSettings, Stage, DEFAULT, DEFAULT_TIMEOUT_MS,
    MIN_TIMEOUT_MS,
};
use sous_types::timefmt;
use time::OffsetDateTime;

use super::routes::{self as parse, Command};
use super::{ApigwError, Reply};
use crate::error::InternalError;
use crate::ApiState;

/// Run one command.
pub fn execute(state: &ApiState, cmd: Command, now: OffsetDateTime) -> Result<Reply, ApigwError> {
    let store = &state.store;
    match cmd {
        Command::CreateApi(input) => create_api(state, input, now),
        Command::GetApi { api_id } => ok(&api_or_404(state, &api_id)?),
        Command::GetApis => items(&store.list_http_apis()?),
        Command::UpdateApi { api_id, input } => update_api(state, &api_id, input),
        Command::DeleteApi { api_id } => {
            if !store.delete_http_api(&api_id)? {
                return Err(no_api(state, &api_id));
            }
            Ok(Reply::NoContent)
        }
        Command::CreateRoute { api_id, input } => create_route(state, &api_id, input),
        Command::GetRoutes { api_id } => items(
            &store
                .list_http_api_routes(&api_id)?
                .ok_or_else(|| no_api(state, &api_id))?,
        ),
        Command::GetRoute { api_id, route_id } => {
            api_or_404(state, &api_id)?;
            ok(&store
                .get_http_api_route(&api_id, &route_id)?
                .ok_or_else(no_route)?)
        }
        Command::DeleteRoute { api_id, route_id } => {
            api_or_404(state, &api_id)?;
            if !store.delete_http_api_route(&api_id, &route_id)? {
                return Err(no_route());
            }
            Ok(Reply::NoContent)
        }
        Command::CreateIntegration { api_id, input } => create_integration(state, &api_id, input),
        Command::GetIntegrations { api_id } => items(
            &store
                .list_http_api_integrations(&api_id)?
                .ok_or_else(|| no_api(state, &api_id))?,
        ),
        Command::GetIntegration {
            api_id,
            integration_id,
        } => {
            api_or_404(state, &api_id)?;
            ok(&store
                .get_http_api_integration(&api_id, &integration_id)?
                .ok_or_else(no_integration)?)
        }
        Command::DeleteIntegration {
            api_id,
            integration_id,
        } => {
            api_or_404(state, &api_id)?;
            if !store.delete_http_api_integration(&api_id, &integration_id)? {
                return Err(no_integration());
            }
            Ok(Reply::NoContent)
        }
        Command::CreateStage { api_id, input } => create_stage(state, &api_id, input, now),
        Command::GetStages { api_id } => items(
            &store
                .list_http_api_stages(&api_id)?
                .ok_or_else(|| no_api(state, &api_id))?,
        ),
        Command::GetStage { api_id, stage_name } => {
            api_or_404(state, &api_id)?;
            ok(&store
                .get_http_api_stage(&api_id, &stage_name)?
                .ok_or_else(no_stage)?)
        }
        Command::DeleteStage { api_id, stage_name } => {
            api_or_404(state, &api_id)?;
            if !store.delete_http_api_stage(&api_id, &stage_name)? {
                return Err(no_stage());
            }
            Ok(Reply::NoContent)
        }
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, ApigwError> {
    serde_json::to_value(v)
        .map_err(|e| InternalError::new("serialize the API Gateway resource", e).into())
}

fn ok<T: serde::Serialize>(v: &T) -> Result<Reply, ApigwError> {
    Ok(Reply::Json(200, to_value(v)?))
}

fn created<T: serde::Serialize>(v: &T) -> Result<Reply, ApigwError> {
    Ok(Reply::Json(201, to_value(v)?))
}

/// A list output: `{"items": [...]}` (everything in one page: no `nextToken`).
fn items<T: serde::Serialize>(list: &[T]) -> Result<Reply, ApigwError> {
    Ok(Reply::Json(
        200,
        serde_json::json!({ "items": to_value(&list)? }),
    ))
}

fn no_api(state: &ApiState, api_id: &str) -> ApigwError {
    ApigwError::NotFound(format!(
        "Invalid API identifier specified {}:{api_id}",
        state.scope.account
    ))
}

fn no_route() -> ApigwError {
    ApigwError::NotFound("Invalid Route identifier specified".into())
}

fn no_integration() -> ApigwError {
    ApigwError::NotFound("Invalid Integration identifier specified".into())
}

fn no_stage() -> ApigwError {
    ApigwError::NotFound("Invalid stage identifier specified".into())
}

fn bad(message: impl Into<String>) -> ApigwError {
    ApigwError::BadRequest(message.into())
}

fn api_or_404(state: &ApiState, api_id: &str) -> Result<Api, ApigwError> {
    state
        .store
        .get_http_api(api_id)?
        .ok_or_else(|| no_api(state, api_id))
}

fn check_name(name: Option<&str>) -> Result<(), ApigwError> {
    match name {
        Some(n) if !n.is_empty() && n.chars().count() <= 128 => Ok(()),
        Some(_) => Err(bad("Name must be between 1 and 128 characters long")),
        None => Err(bad("Name is required")),
    }
}

/// The gateway always serves the `ApiEndpoint` (custom domains, the only other way in, are
/// not modelled), so disabling it is refused rather than ignored.
fn check_endpoint_enabled(disable: Option<bool>) -> Result<(), ApigwError> {
    if disable == Some(true) {
        return Err(bad(
            "DisableExecuteApiEndpoint is not supported by Sous: the ApiEndpoint is the only way to reach an API",
        ));
    }
    Ok(())
}

fn check_route_key(key: &str) -> Result<(), ApigwError> {
    RouteKey::parse(key)
        .map(|_| ())
        .map_err(|e| bad(e.to_string()))
}

/// The function of a quick create's `Target`.
fn check_lambda_uri(uri: &str) -> Result<(), ApigwError> {
    http_api::lambda_function_of(uri)
        .map(|_| ())
        .ok_or_else(|| {
            bad(format!(
                "Invalid integration URI specified: {uri}. Sous integrates Lambda functions: \
                 give a function ARN or arn:aws:apigateway:{{region}}:lambda:path/2015-03-31/functions/{{functionArn}}/invocations"
            ))
        })
}

fn create_api(
    state: &ApiState,
    input: parse::CreateApi,
    now: OffsetDateTime,
) -> Result<Reply, ApigwError> {
    check_name(input.name.as_deref())?;
    match input.protocol_type.as_deref() {
        Some("HTTP") => {}
        Some("WEBSOCKET") => {
            return Err(bad(
                "WEBSOCKET APIs are not supported by Sous; use ProtocolType HTTP",
            ))
        }
        Some(other) => return Err(bad(format!("Invalid protocol type: {other}"))),
        None => return Err(bad("ProtocolType is required")),
    }
    if input.cors_configuration.is_some() {
        return Err(bad(
            "CorsConfiguration is not supported by Sous for HTTP APIs",
        ));
    }
    if input.credentials_arn.is_some() {
        return Err(bad("CredentialsArn is not supported by Sous"));
    }
    check_endpoint_enabled(input.disable_execute_api_endpoint)?;
    if input.route_key.is_some() && input.target.is_none() {
        return Err(bad(
            "RouteKey can only be specified together with Target (quick create)",
        ));
    }
    if let Some(target) = &input.target {
        check_lambda_uri(target)?;
    }
    let route_key = input.route_key.clone().unwrap_or_else(|| DEFAULT.into());
    check_route_key(&route_key)?;

    let api_id = http_api::new_api_id();
    let created_date = timefmt::iso8601_seconds(now);
    let api = Api {
        api_endpoint: format!(
            "{}/execute-api/{api_id}",
            state.gateway_url.trim_end_matches('/')
        ),
        api_id: api_id.clone(),
        api_key_selection_expression: http_api::API_KEY_SELECTION_EXPRESSION.into(),
        created_date: created_date.clone(),
        description: input.description,
        disable_execute_api_endpoint: false,
        name: input.name.unwrap_or_default(),
        protocol_type: "HTTP".into(),
        route_selection_expression: http_api::ROUTE_SELECTION_EXPRESSION.into(),
        tags: input.tags.unwrap_or_default(),
        version: input.version,
    };
    let (integrations, routes, stages) = match input.target {
        None => (Vec::new(), Vec::new(), Vec::new()),
        Some(target) => {
            let integration = Integration {
                api_gateway_managed: true,
                connection_type: "INTERNET".into(),
                description: None,
                integration_id: http_api::new_resource_id(),
                integration_method: "POST".into(),
                integration_type: "AWS_PROXY".into(),
                integration_uri: target,
                payload_format_version: "2.0".into(),
                timeout_in_millis: DEFAULT_TIMEOUT_MS,
            };
            let route = Route {
                api_gateway_managed: true,
                api_key_required: false,
                authorization_type: "NONE".into(),
                route_id: http_api::new_resource_id(),
                route_key,
                target: Some(format!("integrations/{}", integration.integration_id)),
            };
            let stage = new_stage(DEFAULT, true, &created_date, true);
            (vec![integration], vec![route], vec![stage])
        }
    };
    match state
        .store
        .create_http_api(&api, &integrations, &routes, &stages)
    {
        Ok(()) => {}
        // A 36^10 id space: a collision is a bug worth a retry by the client.
        Err(StoreError::Exists) => {
            return Err(ApigwError::Conflict(
                "API identifier collision; retry".into(),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(
        api_id,
        name = api.name,
        quick = !routes.is_empty(),
        "created HTTP API"
    );
    created(&api)
}

fn update_api(
    state: &ApiState,
    api_id: &str,
    input: parse::UpdateApi,
) -> Result<Reply, ApigwError> {
    let mut api = api_or_404(state, api_id)?;
    if input.target.is_some() || input.route_key.is_some() {
        return Err(bad("Sous does not support Target or RouteKey in UpdateApi"));
    }
    if let Some(name) = input.name {
        check_name(Some(&name))?;
        api.name = name;
    }
    if let Some(d) = input.description {
        api.description = Some(d);
    }
    if let Some(v) = input.version {
        api.version = Some(v);
    }
    check_endpoint_enabled(input.disable_execute_api_endpoint)?;
    if !state.store.update_http_api(&api)? {
        return Err(no_api(state, api_id));
    }
    ok(&api)
}

fn create_route(
    state: &ApiState,
    api_id: &str,
    input: parse::CreateRoute,
) -> Result<Reply, ApigwError> {
    api_or_404(state, api_id)?;
    let route_key = input.route_key.unwrap_or_default();
    check_route_key(&route_key)?;
    match input.authorization_type.as_deref() {
        None | Some("NONE") => {}
        Some(other) => {
            return Err(bad(format!(
                "AuthorizationType {other} is not supported by Sous; use NONE"
            )))
        }
    }
    if input.api_key_required == Some(true) {
        return Err(bad("API keys are not supported for HTTP APIs"));
    }
    if let Some(target) = &input.target {
        let id = http_api::integration_of_target(target).ok_or_else(|| {
            bad(format!(
                "Invalid target specified: {target}. A route target must be integrations/{{integrationId}}"
            ))
        })?;
        if state.store.get_http_api_integration(api_id, id)?.is_none() {
            return Err(no_integration());
        }
    }
    let route = Route {
        api_gateway_managed: false,
        api_key_required: false,
        authorization_type: "NONE".into(),
        route_id: http_api::new_resource_id(),
        route_key,
        target: input.target,
    };
    match state.store.insert_http_api_route(api_id, &route) {
        Ok(()) => created(&route),
        Err(StoreError::NotFound) => Err(no_api(state, api_id)),
        Err(StoreError::Exists) => Err(ApigwError::Conflict(format!(
            "Route with key {} already exists for this API",
            route.route_key
        ))),
        Err(e) => Err(e.into()),
    }
}

fn create_integration(
    state: &ApiState,
    api_id: &str,
    input: parse::CreateIntegration,
) -> Result<Reply, ApigwError> {
    api_or_404(state, api_id)?;
    match input.integration_type.as_deref() {
        Some("AWS_PROXY") => {}
        Some(other) => {
            return Err(bad(format!(
                "IntegrationType {other} is not supported by Sous; use AWS_PROXY with a Lambda function"
            )))
        }
        None => return Err(bad("IntegrationType is required")),
    }
    let uri = input
        .integration_uri
        .ok_or_else(|| bad("IntegrationUri is required for AWS_PROXY integrations"))?;
    check_lambda_uri(&uri)?;
    let version = match input.payload_format_version.as_deref() {
        Some(v @ ("1.0" | "2.0")) => v.to_string(),
        Some(other) => {
            return Err(bad(format!(
                "Unsupported payload format version: {other}. Supported values for Lambda proxy integrations are 1.0 and 2.0"
            )))
        }
        None => {
            return Err(bad(
                "PayloadFormatVersion is required for Lambda proxy integrations of HTTP APIs: 1.0 or 2.0",
            ))
        }
    };
    let timeout = match input.timeout_in_millis {
        None => DEFAULT_TIMEOUT_MS,
        Some(t) if (MIN_TIMEOUT_MS as i64..=DEFAULT_TIMEOUT_MS as i64).contains(&t) => t as u64,
        Some(_) => {
            return Err(bad(
                "Timeout must be between 50 milliseconds and 30000 milliseconds",
            ))
        }
    };
    match input.integration_method.as_deref() {
        None | Some("POST") => {}
        Some(_) => {
            return Err(bad(
                "Lambda proxy integrations must use IntegrationMethod POST",
            ))
        }
    }
    match input.connection_type.as_deref() {
        None | Some("INTERNET") => {}
        Some(other) => {
            return Err(bad(format!(
                "ConnectionType {other} is not supported by Sous"
            )))
        }
    }
    let integration = Integration {
        api_gateway_managed: false,
        connection_type: "INTERNET".into(),
        description: input.description,
        integration_id: http_api::new_resource_id(),
        integration_method: "POST".into(),
        integration_type: "AWS_PROXY".into(),
        integration_uri: uri,
        payload_format_version: version,
        timeout_in_millis: timeout,
    };
    match state
        .store
        .insert_http_api_integration(api_id, &integration)
    {
        Ok(()) => created(&integration),
        Err(StoreError::NotFound) => Err(no_api(state, api_id)),
        Err(StoreError::Exists) => Err(ApigwError::Conflict(
            "Integration identifier collision; retry".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

fn new_stage(name: &str, auto_deploy: bool, now: &str, managed: bool) -> Stage {
    Stage {
        api_gateway_managed: managed,
        auto_deploy,
        created_date: now.to_string(),
        default_route_settings: RouteSettings::default(),
        description: None,
        last_updated_date: now.to_string(),
        route_settings: Default::default(),
        stage_name: name.to_string(),
        stage_variables: Default::default(),
        tags: Default::default(),
    }
}

fn create_stage(
    state: &ApiState,
    api_id: &str,
    input: parse::CreateStage,
    now: OffsetDateTime,
) -> Result<Reply, ApigwError> {
    api_or_404(state, api_id)?;
    let name = input.stage_name.unwrap_or_default();
    if name.is_empty() {
        return Err(bad("StageName is required"));
    }
    if !http_api::valid_stage_name(&name) {
        return Err(bad(format!(
            "Stage name {name} is invalid: use 1 to 128 letters, digits, hyphens and underscores, or $default"
        )));
    }
    let mut stage = new_stage(
        &name,
        input.auto_deploy.unwrap_or(false),
        &timefmt::iso8601_seconds(now),
        false,
    );
    stage.description = input.description;
    stage.stage_variables = input.stage_variables.unwrap_or_default();
    stage.tags = input.tags.unwrap_or_default();
    match state.store.insert_http_api_stage(api_id, &stage) {
        Ok(()) => created(&stage),
        Err(StoreError::NotFound) => Err(no_api(state, api_id)),
        Err(StoreError::Exists) => {
            Err(ApigwError::Conflict(format!("Stage {name} already exists")))
        }
        Err(e) => Err(e.into()),
    }
}
