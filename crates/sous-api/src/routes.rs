//! The HTTP surface of the control plane: turns one request (method, raw URI, headers, body)
//! into one [`Command`]. Nothing here decides anything about functions; it only parses, and
//! enforces the model's constraints on the request's shape (names, qualifiers, enums, ranges,
//! required members), as AWS's front end does before an operation runs.

use std::borrow::Cow;

use bytes::Bytes;
use http::{HeaderMap, Method};
use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;
use sous_invoke::{InvocationType, InvokeRequest};
use sous_types::alias::{
    check_alias_name, check_description, check_function_version, check_routing_config,
    CreateAliasInput, PublishVersionInput, UpdateAliasInput,
};
use sous_types::concurrency::{Concurrency, PutProvisionedInput};
use sous_types::config::{CreateFunctionInput, SettingsInput, UpdateCodeInput};
use sous_types::error::Violations;
use sous_types::event_invoke::{check_input as check_event_invoke_input, EventInvokeConfigInput};
use sous_types::layers::{AddLayerVersionPermissionInput, PublishLayerVersionInput};
use sous_types::limits::{CLIENT_CONTEXT_MAX_BYTES, SYNC_REQUEST_MAX_BYTES};
use sous_types::names::{parse_function_name, resolve_qualifier, Scope};
use sous_types::{ErrorCode, LambdaError};

/// Length limit of `FunctionName` for CreateFunction and Update*.
const NAME_MAX_WRITE: usize = 140;
/// Length limit of `FunctionName` for the other operations.
const NAME_MAX_READ: usize = 256;
/// AWS's front-door limit on CreateFunction / UpdateFunctionCode request bodies (JSON with a
/// base64 `ZipFile`): 4/3 of 50 MiB. AWS answers larger ones with 413
/// `RequestEntityTooLargeException` "Request must be smaller than 69905067 bytes for the
/// CreateFunction operation" (as reported by many real-AWS transcripts).
pub const CODE_REQUEST_MAX_BYTES: usize = 69_905_067;

/// A function named by a request: bare name plus the qualifier reconciled from the name and
/// `?Qualifier=` (`None` = unqualified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub qualifier: Option<String>,
}

/// One control-plane operation, fully parsed.
#[derive(Debug)]
pub enum Command {
    /// `POST /2015-03-31/functions`
    CreateFunction {
        name: String,
        input: Box<CreateFunctionInput>,
    },
    /// `GET /2015-03-31/functions/{FunctionName}[?Qualifier=]`
    GetFunction(Target),
    /// `GET /2015-03-31/functions/{FunctionName}/configuration[?Qualifier=]`
    GetFunctionConfiguration(Target),
    /// `GET /2015-03-31/functions/[?Marker=&MaxItems=&FunctionVersion=ALL]`
    ListFunctions {
        marker: Option<String>,
        max_items: Option<usize>,
        all_versions: bool,
    },
    /// `PUT /2015-03-31/functions/{FunctionName}/code`
    UpdateFunctionCode {
        target: Target,
        input: Box<UpdateCodeInput>,
    },
    /// `PUT /2015-03-31/functions/{FunctionName}/configuration`
    UpdateFunctionConfiguration {
        target: Target,
        input: Box<SettingsInput>,
    },
    /// `DELETE /2015-03-31/functions/{FunctionName}[?Qualifier=]`
    DeleteFunction(Target),
    /// `GET /2016-08-19/account-settings/`
    GetAccountSettings,
    /// `POST /2015-03-31/functions/{FunctionName}/invocations[?Qualifier=]`
    Invoke(InvokeRequest),
    /// `POST /2015-03-31/functions/{FunctionName}/versions`
    PublishVersion {
        function: String,
        input: PublishVersionInput,
    },
    /// `GET /2015-03-31/functions/{FunctionName}/versions[?Marker=&MaxItems=]`
    ListVersionsByFunction {
        function: String,
        marker: Option<String>,
        max_items: Option<usize>,
    },
    /// `POST /2015-03-31/functions/{FunctionName}/aliases`
    CreateAlias {
        function: String,
        input: CreateAliasInput,
    },
    /// `GET /2015-03-31/functions/{FunctionName}/aliases/{Name}`
    GetAlias { function: String, name: String },
    /// `PUT /2015-03-31/functions/{FunctionName}/aliases/{Name}`
    UpdateAlias {
        function: String,
        name: String,
        input: UpdateAliasInput,
    },
    /// `DELETE /2015-03-31/functions/{FunctionName}/aliases/{Name}`
    DeleteAlias { function: String, name: String },
    /// `GET /2015-03-31/functions/{FunctionName}/aliases[?FunctionVersion=&Marker=&MaxItems=]`
    ListAliases {
        function: String,
        function_version: Option<String>,
        marker: Option<String>,
        max_items: Option<usize>,
    },
    /// `PUT /2017-10-31/functions/{FunctionName}/concurrency`
    PutFunctionConcurrency { function: String, reserved: u64 },
    /// `GET /2019-09-30/functions/{FunctionName}/concurrency`
    GetFunctionConcurrency { function: String },
    /// `DELETE /2017-10-31/functions/{FunctionName}/concurrency`
    DeleteFunctionConcurrency { function: String },
    /// `PUT /2019-09-30/functions/{FunctionName}/provisioned-concurrency?Qualifier=`
    PutProvisionedConcurrencyConfig { target: Target, requested: u64 },
    /// `GET /2019-09-30/functions/{FunctionName}/provisioned-concurrency?Qualifier=`
    GetProvisionedConcurrencyConfig(Target),
    /// `DELETE /2019-09-30/functions/{FunctionName}/provisioned-concurrency?Qualifier=`
    DeleteProvisionedConcurrencyConfig(Target),
    /// `GET /2019-09-30/functions/{FunctionName}/provisioned-concurrency?List=ALL[&Marker=&MaxItems=]`
    ListProvisionedConcurrencyConfigs {
        function: String,
        marker: Option<String>,
        max_items: Option<usize>,
    },
    /// `PUT /2019-09-25/functions/{FunctionName}/event-invoke-config[?Qualifier=]` (replace)
    /// or `POST` (merge into the current one).
    PutFunctionEventInvokeConfig {
        target: Target,
        input: EventInvokeConfigInput,
        merge: bool,
    },
    /// `GET /2019-09-25/functions/{FunctionName}/event-invoke-config[?Qualifier=]`
    GetFunctionEventInvokeConfig(Target),
    /// `DELETE /2019-09-25/functions/{FunctionName}/event-invoke-config[?Qualifier=]`
    DeleteFunctionEventInvokeConfig(Target),
    /// `GET /2019-09-25/functions/{FunctionName}/event-invoke-config/list[?Marker=&MaxItems=]`
    ListFunctionEventInvokeConfigs {
        function: String,
        marker: Option<String>,
        max_items: Option<usize>,
    },
    /// `GET /_sous/status`: Sous's own view of environments, concurrency and memory.
    Status,
    /// The function URL operations (`/2021-10-31/functions/{FunctionName}/url[s]`).
    FunctionUrl(crate::function_urls::UrlCommand),
    /// The layer operations (`/2018-10-31/layers...`).
    Layer(LayerCommand),
}

/// One layer operation. `layer` is the `{LayerName}` label reduced to a name; `None` when it
/// was the ARN of a layer in another region or account (none exist on this host).
#[derive(Debug)]
pub enum LayerCommand {
    /// `POST /2018-10-31/layers/{LayerName}/versions`
    Publish {
        layer: Option<String>,
        input: Box<PublishLayerVersionInput>,
    },
    /// `GET /2018-10-31/layers/{LayerName}/versions/{VersionNumber}`
    Get { layer: Option<String>, version: u64 },
    /// `GET /2018-10-31/layers?find=LayerVersion&Arn=`
    GetByArn { arn: String },
    /// `GET /2018-10-31/layers[?CompatibleRuntime=&CompatibleArchitecture=&Marker=&MaxItems=]`
    List(LayerFilter),
    /// `GET /2018-10-31/layers/{LayerName}/versions[?CompatibleRuntime=&...]`
    ListVersions {
        layer: Option<String>,
        filter: LayerFilter,
    },
    /// `DELETE /2018-10-31/layers/{LayerName}/versions/{VersionNumber}`
    Delete { layer: Option<String>, version: u64 },
    /// `POST /2018-10-31/layers/{LayerName}/versions/{VersionNumber}/policy[?RevisionId=]`
    AddPermission {
        layer: Option<String>,
        version: u64,
        input: AddLayerVersionPermissionInput,
        revision_id: Option<String>,
    },
    /// `DELETE /2018-10-31/layers/{LayerName}/versions/{VersionNumber}/policy/{StatementId}[?RevisionId=]`
    RemovePermission {
        layer: Option<String>,
        version: u64,
        statement_id: String,
        revision_id: Option<String>,
    },
    /// `GET /2018-10-31/layers/{LayerName}/versions/{VersionNumber}/policy`
    GetPolicy { layer: Option<String>, version: u64 },
}

/// The filters and page of ListLayers / ListLayerVersions.
#[derive(Debug, Default)]
pub struct LayerFilter {
    pub runtime: Option<String>,
    pub architecture: Option<String>,
    pub marker: Option<String>,
    pub max_items: Option<usize>,
}

impl LayerCommand {
    pub fn operation(&self) -> &'static str {
        match self {
            LayerCommand::Publish { .. } => "PublishLayerVersion",
            LayerCommand::Get { .. } => "GetLayerVersion",
            LayerCommand::GetByArn { .. } => "GetLayerVersionByArn",
            LayerCommand::List(_) => "ListLayers",
            LayerCommand::ListVersions { .. } => "ListLayerVersions",
            LayerCommand::Delete { .. } => "DeleteLayerVersion",
            LayerCommand::AddPermission { .. } => "AddLayerVersionPermission",
            LayerCommand::RemovePermission { .. } => "RemoveLayerVersionPermission",
            LayerCommand::GetPolicy { .. } => "GetLayerVersionPolicy",
        }
    }
}

impl Command {
    /// The AWS operation name, for spans and logs.
    pub fn operation(&self) -> &'static str {
        match self {
            Command::CreateFunction { .. } => "CreateFunction",
            Command::GetFunction(_) => "GetFunction",
            Command::GetFunctionConfiguration(_) => "GetFunctionConfiguration",
            Command::ListFunctions { .. } => "ListFunctions",
            Command::UpdateFunctionCode { .. } => "UpdateFunctionCode",
            Command::UpdateFunctionConfiguration { .. } => "UpdateFunctionConfiguration",
            Command::DeleteFunction(_) => "DeleteFunction",
            Command::GetAccountSettings => "GetAccountSettings",
            Command::Invoke(_) => "Invoke",
            Command::PublishVersion { .. } => "PublishVersion",
            Command::ListVersionsByFunction { .. } => "ListVersionsByFunction",
            Command::CreateAlias { .. } => "CreateAlias",
            Command::GetAlias { .. } => "GetAlias",
            Command::UpdateAlias { .. } => "UpdateAlias",
            Command::DeleteAlias { .. } => "DeleteAlias",
            Command::ListAliases { .. } => "ListAliases",
            Command::PutFunctionConcurrency { .. } => "PutFunctionConcurrency",
            Command::GetFunctionConcurrency { .. } => "GetFunctionConcurrency",
            Command::DeleteFunctionConcurrency { .. } => "DeleteFunctionConcurrency",
            Command::PutProvisionedConcurrencyConfig { .. } => "PutProvisionedConcurrencyConfig",
            Command::GetProvisionedConcurrencyConfig(_) => "GetProvisionedConcurrencyConfig",
            Command::DeleteProvisionedConcurrencyConfig(_) => "DeleteProvisionedConcurrencyConfig",
            Command::ListProvisionedConcurrencyConfigs { .. } => {
                "ListProvisionedConcurrencyConfigs"
            }
            Command::PutFunctionEventInvokeConfig { merge: false, .. } => {
                "PutFunctionEventInvokeConfig"
            }
            Command::PutFunctionEventInvokeConfig { merge: true, .. } => {
                "UpdateFunctionEventInvokeConfig"
            }
            Command::GetFunctionEventInvokeConfig(_) => "GetFunctionEventInvokeConfig",
            Command::DeleteFunctionEventInvokeConfig(_) => "DeleteFunctionEventInvokeConfig",
            Command::ListFunctionEventInvokeConfigs { .. } => "ListFunctionEventInvokeConfigs",
            Command::Status => "SousStatus",
            Command::FunctionUrl(c) => c.operation(),
            Command::Layer(c) => c.operation(),
        }
    }

    /// The function the command is about, if any.
    pub fn function_name(&self) -> Option<&str> {
        match self {
            Command::CreateFunction { name, .. } => Some(name),
            Command::GetFunction(t)
            | Command::GetFunctionConfiguration(t)
            | Command::DeleteFunction(t)
            | Command::UpdateFunctionCode { target: t, .. }
            | Command::UpdateFunctionConfiguration { target: t, .. } => Some(&t.name),
            Command::Invoke(r) => Some(&r.function_name),
            Command::PublishVersion { function, .. }
            | Command::ListVersionsByFunction { function, .. }
            | Command::CreateAlias { function, .. }
            | Command::GetAlias { function, .. }
            | Command::UpdateAlias { function, .. }
            | Command::DeleteAlias { function, .. }
            | Command::ListAliases { function, .. }
            | Command::PutFunctionConcurrency { function, .. }
            | Command::GetFunctionConcurrency { function }
            | Command::DeleteFunctionConcurrency { function }
            | Command::ListProvisionedConcurrencyConfigs { function, .. }
            | Command::ListFunctionEventInvokeConfigs { function, .. } => Some(function),
            Command::PutFunctionEventInvokeConfig { target: t, .. }
            | Command::GetFunctionEventInvokeConfig(t)
            | Command::DeleteFunctionEventInvokeConfig(t) => Some(&t.name),
            Command::PutProvisionedConcurrencyConfig { target: t, .. }
            | Command::GetProvisionedConcurrencyConfig(t)
            | Command::DeleteProvisionedConcurrencyConfig(t) => Some(&t.name),
            Command::ListFunctions { .. }
            | Command::GetAccountSettings
            | Command::Status
            | Command::Layer(_) => None,
            Command::FunctionUrl(c) => Some(c.function()),
        }
    }
}

/// The largest body accepted for a request to `raw_path`, and the operation name AWS puts in
/// the 413 message.
pub fn body_limit(method: &Method, raw_path: &str) -> (usize, &'static str) {
    if *method == Method::POST && raw_path.ends_with("/invocations") {
        (SYNC_REQUEST_MAX_BYTES, "InvokeFunction")
    } else if *method == Method::PUT && raw_path.ends_with("/code") {
        (CODE_REQUEST_MAX_BYTES, "UpdateFunctionCode")
    } else if *method == Method::POST && raw_path.starts_with("/2018-10-31/layers/") {
        (CODE_REQUEST_MAX_BYTES, "PublishLayerVersion")
    } else {
        (CODE_REQUEST_MAX_BYTES, "CreateFunction")
    }
}

/// AWS's front-door answer to an oversized request.
pub fn too_large(limit: usize, operation: &str) -> LambdaError {
    LambdaError::new(
        ErrorCode::RequestEntityTooLargeException,
        format!("Request must be smaller than {limit} bytes for the {operation} operation"),
    )
}

/// Parse a request into a [`Command`]. `raw_path` and `raw_query` are as sent on the wire
/// (still percent-encoded).
pub fn parse(
    method: &Method,
    raw_path: &str,
    raw_query: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
    scope: &Scope,
) -> Result<Command, LambdaError> {
    let query = Query::parse(raw_query.unwrap_or(""))?;
    let path = raw_path.strip_suffix('/').unwrap_or(raw_path);
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    match (method, segments.as_slice()) {
        (&Method::POST, ["2015-03-31", "functions"]) => create_function(&body, scope),
        (&Method::GET, ["2015-03-31", "functions"]) => list_functions(&query),
        (&Method::GET, ["2015-03-31", "functions", name]) => Ok(Command::GetFunction(target(
            name,
            &query,
            scope,
            NAME_MAX_READ,
        )?)),
        (&Method::DELETE, ["2015-03-31", "functions", name]) => Ok(Command::DeleteFunction(
            target(name, &query, scope, NAME_MAX_READ)?,
        )),
        (&Method::GET, ["2015-03-31", "functions", name, "configuration"]) => Ok(
            Command::GetFunctionConfiguration(target(name, &query, scope, NAME_MAX_READ)?),
        ),
        (&Method::PUT, ["2015-03-31", "functions", name, "configuration"]) => {
            let target = target(name, &query, scope, NAME_MAX_WRITE)?;
            Ok(Command::UpdateFunctionConfiguration {
                target,
                input: Box::new(json(&body)?),
            })
        }
        (&Method::PUT, ["2015-03-31", "functions", name, "code"]) => {
            let target = target(name, &query, scope, NAME_MAX_WRITE)?;
            Ok(Command::UpdateFunctionCode {
                target,
                input: Box::new(json(&body)?),
            })
        }
        (&Method::POST, ["2015-03-31", "functions", name, "invocations"]) => {
            invoke(name, &query, headers, body, scope)
        }
        (&Method::POST, ["2015-03-31", "functions", name, "versions"]) => {
            let function = function_of(name, scope, NAME_MAX_WRITE)?;
            let input: PublishVersionInput = json(&body)?;
            let mut v = Violations::default();
            check_description(input.description.as_deref(), &mut v);
            v.into_result()?;
            Ok(Command::PublishVersion { function, input })
        }
        (&Method::GET, ["2015-03-31", "functions", name, "versions"]) => {
            let function = function_of(name, scope, NAME_MAX_READ)?;
            let mut v = Violations::default();
            let max_items = max_items(&query, &mut v)?;
            v.into_result()?;
            Ok(Command::ListVersionsByFunction {
                function,
                marker: query.get("Marker").map(|m| m.into_owned()),
                max_items,
            })
        }
        (&Method::POST, ["2015-03-31", "functions", name, "aliases"]) => {
            let function = function_of(name, scope, NAME_MAX_WRITE)?;
            create_alias(function, &body)
        }
        (&Method::GET, ["2015-03-31", "functions", name, "aliases"]) => {
            let function = function_of(name, scope, NAME_MAX_WRITE)?;
            let mut v = Violations::default();
            let max_items = max_items(&query, &mut v)?;
            let function_version = query.get("FunctionVersion").map(|f| f.into_owned());
            if let Some(fv) = &function_version {
                check_function_version(fv, &mut v);
            }
            v.into_result()?;
            Ok(Command::ListAliases {
                function,
                function_version,
                marker: query.get("Marker").map(|m| m.into_owned()),
                max_items,
            })
        }
        (method, ["2015-03-31", "functions", name, "aliases", alias]) => {
            let function = function_of(name, scope, NAME_MAX_WRITE)?;
            let alias = decode(alias)?.into_owned();
            let mut v = Violations::default();
            check_alias_name(&alias, &mut v);
            v.into_result()?;
            match *method {
                Method::GET => Ok(Command::GetAlias {
                    function,
                    name: alias,
                }),
                Method::DELETE => Ok(Command::DeleteAlias {
                    function,
                    name: alias,
                }),
                Method::PUT => {
                    let input: UpdateAliasInput = json(&body)?;
                    let mut v = Violations::default();
                    if let Some(fv) = &input.function_version {
                        check_function_version(fv, &mut v);
                    }
                    check_description(input.description.as_deref(), &mut v);
                    check_routing_config(input.routing_config.as_ref(), &mut v);
                    v.into_result()?;
                    Ok(Command::UpdateAlias {
                        function,
                        name: alias,
                        input,
                    })
                }
                _ => Err(unknown_operation()),
            }
        }
        (&Method::GET, ["2016-08-19", "account-settings"]) => Ok(Command::GetAccountSettings),
        (&Method::PUT, ["2017-10-31", "functions", name, "concurrency"]) => {
            let function = function_of(name, scope, NAME_MAX_WRITE)?;
            let input: Concurrency = json(&body)?;
            let mut v = Violations::default();
            let reserved = match input.reserved_concurrent_executions {
                None => {
                    v.push_null("reservedConcurrentExecutions");
                    0
                }
                Some(n) if n < 0 => {
                    v.push(
                        &n.to_string(),
                        "reservedConcurrentExecutions",
                        "Member must have value greater than or equal to 0",
                    );
                    0
                }
                Some(n) => n.unsigned_abs(),
            };
            v.into_result()?;
            Ok(Command::PutFunctionConcurrency { function, reserved })
        }
        (&Method::GET, ["2019-09-30", "functions", name, "concurrency"]) => {
            Ok(Command::GetFunctionConcurrency {
                function: function_of(name, scope, NAME_MAX_WRITE)?,
            })
        }
        (&Method::DELETE, ["2017-10-31", "functions", name, "concurrency"]) => {
            Ok(Command::DeleteFunctionConcurrency {
                function: function_of(name, scope, NAME_MAX_WRITE)?,
            })
        }
        (method, ["2019-09-30", "functions", name, "provisioned-concurrency"]) => {
            provisioned_concurrency(method, name, &query, &body, scope)
        }
        (&Method::GET, ["2019-09-25", "functions", name, "event-invoke-config", "list"]) => {
            let function = function_of(name, scope, NAME_MAX_READ)?;
            let mut v = Violations::default();
            let max_items = max_items(&query, &mut v)?;
            if let Some(n) = max_items.filter(|n| *n > 50) {
                v.push(
                    &n.to_string(),
                    "maxItems",
                    "Member must have value less than or equal to 50",
                );
            }
            v.into_result()?;
            Ok(Command::ListFunctionEventInvokeConfigs {
                function,
                marker: query.get("Marker").map(|m| m.into_owned()),
                max_items,
            })
        }
        (method, ["2019-09-25", "functions", name, "event-invoke-config"]) => {
            let target = target(name, &query, scope, NAME_MAX_READ)?;
            match *method {
                Method::PUT | Method::POST => {
                    let input: EventInvokeConfigInput = json(&body)?;
                    check_event_invoke_input(&input)?;
                    Ok(Command::PutFunctionEventInvokeConfig {
                        target,
                        input,
                        merge: *method == Method::POST,
                    })
                }
                Method::GET => Ok(Command::GetFunctionEventInvokeConfig(target)),
                Method::DELETE => Ok(Command::DeleteFunctionEventInvokeConfig(target)),
                _ => Err(unknown_operation()),
            }
        }
        (&Method::GET, ["_sous", "status"]) => Ok(Command::Status),
        (method, ["2018-10-31", "layers", rest @ ..]) => {
            layer_command(method, rest, &query, &body, scope).map(Command::Layer)
        }
        (method, ["2021-10-31", "functions", name, "url"]) => {
            let target = target(name, &query, scope, NAME_MAX_READ)?;
            let input = match *method {
                Method::POST | Method::PUT => Some(json(&body)?),
                _ => None,
            };
            Ok(Command::FunctionUrl(crate::function_urls::parse(
                method, target, input,
            )?))
        }
        (&Method::GET, ["2021-10-31", "functions", name, "urls"]) => {
            let function = function_of(name, scope, NAME_MAX_READ)?;
            let mut v = Violations::default();
            let max_items = max_items(&query, &mut v)?;
            if let Some(n) = max_items.filter(|n| *n > 50) {
                v.push(
                    &n.to_string(),
                    "maxItems",
                    "Member must have value less than or equal to 50",
                );
            }
            v.into_result()?;
            Ok(Command::FunctionUrl(
                crate::function_urls::UrlCommand::List {
                    function,
                    marker: query.get("Marker").map(|m| m.into_owned()),
                    max_items,
                },
            ))
        }
        _ => Err(unknown_operation()),
    }
}

/// The provisioned concurrency operations, which share one path.
fn provisioned_concurrency(
    method: &Method,
    name: &str,
    query: &Query<'_>,
    body: &[u8],
    scope: &Scope,
) -> Result<Command, LambdaError> {
    if *method == Method::GET && query.get("List").is_some() {
        let function = function_of(name, scope, NAME_MAX_WRITE)?;
        let mut v = Violations::default();
        if let Some(list) = query.get("List") {
            if list != "ALL" {
                v.push(&list, "list", "Member must satisfy enum value set: [ALL]");
            }
        }
        let max_items = max_items(query, &mut v)?;
        if let Some(n) = max_items.filter(|n| *n > 50) {
            v.push(
                &n.to_string(),
                "maxItems",
                "Member must have value less than or equal to 50",
            );
        }
        v.into_result()?;
        return Ok(Command::ListProvisionedConcurrencyConfigs {
            function,
            marker: query.get("Marker").map(|m| m.into_owned()),
            max_items,
        });
    }
    let target = target(name, query, scope, NAME_MAX_WRITE)?;
    let mut v = Violations::default();
    if target.qualifier.is_none() {
        v.push_null("qualifier");
    }
    match *method {
        Method::PUT => {
            let input: PutProvisionedInput = json(body)?;
            let requested = match input.provisioned_concurrent_executions {
                None => {
                    v.push_null("provisionedConcurrentExecutions");
                    0
                }
                Some(n) if n < 1 => {
                    v.push(
                        &n.to_string(),
                        "provisionedConcurrentExecutions",
                        "Member must have value greater than or equal to 1",
                    );
                    0
                }
                Some(n) => n.unsigned_abs(),
            };
            v.into_result()?;
            Ok(Command::PutProvisionedConcurrencyConfig { target, requested })
        }
        Method::GET => {
            v.into_result()?;
            Ok(Command::GetProvisionedConcurrencyConfig(target))
        }
        Method::DELETE => {
            v.into_result()?;
            Ok(Command::DeleteProvisionedConcurrencyConfig(target))
        }
        _ => Err(unknown_operation()),
    }
}

/// The layer operations, below `/2018-10-31/layers`.
fn layer_command(
    method: &Method,
    rest: &[&str],
    query: &Query<'_>,
    body: &[u8],
    scope: &Scope,
) -> Result<LayerCommand, LambdaError> {
    let name = |raw: &str| -> Result<Option<String>, LambdaError> {
        sous_types::layers::check_layer_name(&decode(raw)?, scope)
    };
    let number = |raw: &str| -> Result<u64, LambdaError> {
        let raw = decode(raw)?;
        raw.parse::<u64>().map_err(|_| {
            LambdaError::new(
                ErrorCode::SerializationException,
                format!("Value '{raw}' for VersionNumber is not a valid long"),
            )
        })
    };
    let revision = || query.get("RevisionId").map(|r| r.into_owned());
    match (method, rest) {
        (&Method::GET, []) => {
            if let Some(find) = query.get("find") {
                if find != "LayerVersion" {
                    return Err(unknown_operation());
                }
                let Some(arn) = query.get("Arn") else {
                    let mut v = Violations::default();
                    v.push_null("arn");
                    return Err(v.into_result().unwrap_err());
                };
                sous_types::layers::check_layer_version_arn(&arn)?;
                return Ok(LayerCommand::GetByArn {
                    arn: arn.into_owned(),
                });
            }
            Ok(LayerCommand::List(layer_filter(query)?))
        }
        (&Method::POST, [layer, "versions"]) => {
            let layer = name(layer)?;
            let input: PublishLayerVersionInput = json(body)?;
            sous_types::layers::check_publish_input(&input)?;
            Ok(LayerCommand::Publish {
                layer,
                input: Box::new(input),
            })
        }
        (&Method::GET, [layer, "versions"]) => Ok(LayerCommand::ListVersions {
            layer: name(layer)?,
            filter: layer_filter(query)?,
        }),
        (&Method::GET, [layer, "versions", n]) => Ok(LayerCommand::Get {
            layer: name(layer)?,
            version: number(n)?,
        }),
        (&Method::DELETE, [layer, "versions", n]) => Ok(LayerCommand::Delete {
            layer: name(layer)?,
            version: number(n)?,
        }),
        (&Method::GET, [layer, "versions", n, "policy"]) => Ok(LayerCommand::GetPolicy {
            layer: name(layer)?,
            version: number(n)?,
        }),
        (&Method::POST, [layer, "versions", n, "policy"]) => {
            let (layer, version) = (name(layer)?, number(n)?);
            let input: AddLayerVersionPermissionInput = json(body)?;
            sous_types::layers::check_permission_input(&input)?;
            Ok(LayerCommand::AddPermission {
                layer,
                version,
                input,
                revision_id: revision(),
            })
        }
        (&Method::DELETE, [layer, "versions", n, "policy", sid]) => {
            let (layer, version) = (name(layer)?, number(n)?);
            let statement_id = decode(sid)?.into_owned();
            let mut v = Violations::default();
            sous_types::layers::check_statement_id(&statement_id, &mut v);
            v.into_result()?;
            Ok(LayerCommand::RemovePermission {
                layer,
                version,
                statement_id,
                revision_id: revision(),
            })
        }
        _ => Err(unknown_operation()),
    }
}

/// `CompatibleRuntime`, `CompatibleArchitecture`, `Marker` and `MaxItems` (1 to 50).
fn layer_filter(query: &Query<'_>) -> Result<LayerFilter, LambdaError> {
    use sous_types::layers::{check_filter, ARCHITECTURE_ENUM, RUNTIME_ENUM};
    let mut v = Violations::default();
    let max_items = max_items(query, &mut v)?;
    if let Some(n) = max_items.filter(|n| *n > 50) {
        v.push(
            &n.to_string(),
            "maxItems",
            "Member must have value less than or equal to 50",
        );
    }
    let runtime = query.get("CompatibleRuntime").map(|r| r.into_owned());
    if let Some(r) = &runtime {
        check_filter(r, "compatibleRuntime", RUNTIME_ENUM, &mut v);
    }
    let architecture = query.get("CompatibleArchitecture").map(|a| a.into_owned());
    if let Some(a) = &architecture {
        check_filter(a, "compatibleArchitecture", ARCHITECTURE_ENUM, &mut v);
    }
    v.into_result()?;
    Ok(LayerFilter {
        runtime,
        architecture,
        marker: query.get("Marker").map(|m| m.into_owned()),
        max_items,
    })
}

/// What AWS answers for a path or method it has no operation for.
pub fn unknown_operation() -> LambdaError {
    LambdaError::new(ErrorCode::UnknownOperationException, "Unknown operation")
}

fn create_function(body: &[u8], scope: &Scope) -> Result<Command, LambdaError> {
    let input: CreateFunctionInput = json(body)?;
    let mut v = Violations::default();
    if input.code.is_none() {
        v.push_null("code");
    }
    if input.function_name.is_none() {
        v.push_null("functionName");
    }
    if input.settings.role.is_none() {
        v.push_null("role");
    }
    if let Some(p) = input.package_type.as_deref() {
        if p != "Zip" && p != "Image" {
            v.push(
                p,
                "packageType",
                "Member must satisfy enum value set: [Image, Zip]",
            );
        }
    }
    v.into_result()?;
    let raw = input.function_name.as_deref().unwrap_or_default();
    let fref = parse_function_name(raw, scope, NAME_MAX_WRITE)?;
    if let Some(q) = fref.qualifier {
        return Err(LambdaError::invalid_parameter(format!(
            "The function name {raw} carries the qualifier {q}; CreateFunction takes an unqualified name."
        )));
    }
    Ok(Command::CreateFunction {
        name: fref.name,
        input: Box::new(input),
    })
}

/// `?MaxItems=` (1..=10000), its violations added to `v`.
fn max_items(query: &Query<'_>, v: &mut Violations) -> Result<Option<usize>, LambdaError> {
    let Some(raw) = query.get("MaxItems") else {
        return Ok(None);
    };
    match raw.parse::<i64>() {
        Ok(n) if n < 1 => v.push(
            &raw,
            "maxItems",
            "Member must have value greater than or equal to 1",
        ),
        Ok(n) if n > 10_000 => v.push(
            &raw,
            "maxItems",
            "Member must have value less than or equal to 10000",
        ),
        Ok(n) => return Ok(usize::try_from(n).ok()),
        Err(_) => {
            return Err(LambdaError::new(
                ErrorCode::SerializationException,
                format!("Value '{raw}' for MaxItems is not a valid integer"),
            ))
        }
    }
    Ok(None)
}

/// The bare function name of a `{FunctionName}` label for operations on the function itself
/// (versions, aliases); a qualifier in the name is ignored, as Lambda ignores it there.
fn function_of(raw_label: &str, scope: &Scope, max_len: usize) -> Result<String, LambdaError> {
    let label = decode(raw_label)?;
    Ok(parse_function_name(&label, scope, max_len)?.name)
}

fn create_alias(function: String, body: &[u8]) -> Result<Command, LambdaError> {
    let input: CreateAliasInput = json(body)?;
    let mut v = Violations::default();
    match input.name.as_deref() {
        None => v.push_null("name"),
        Some(n) => check_alias_name(n, &mut v),
    }
    match input.function_version.as_deref() {
        None => v.push_null("functionVersion"),
        Some(fv) => check_function_version(fv, &mut v),
    }
    check_description(input.description.as_deref(), &mut v);
    check_routing_config(input.routing_config.as_ref(), &mut v);
    v.into_result()?;
    Ok(Command::CreateAlias { function, input })
}

fn list_functions(query: &Query<'_>) -> Result<Command, LambdaError> {
    let mut v = Violations::default();
    let max_items = max_items(query, &mut v)?;
    let mut all_versions = false;
    if let Some(fv) = query.get("FunctionVersion") {
        if fv == "ALL" {
            all_versions = true;
        } else {
            v.push(
                &fv,
                "functionVersion",
                "Member must satisfy enum value set: [ALL]",
            );
        }
    }
    v.into_result()?;
    Ok(Command::ListFunctions {
        marker: query.get("Marker").map(|m| m.into_owned()),
        max_items,
        all_versions,
    })
}

fn invoke(
    raw_name: &str,
    query: &Query<'_>,
    headers: &HeaderMap,
    body: Bytes,
    scope: &Scope,
) -> Result<Command, LambdaError> {
    let t = target(raw_name, query, scope, NAME_MAX_READ)?;
    let mut v = Violations::default();
    let invocation_type = match header(headers, "x-amz-invocation-type")? {
        None | Some("RequestResponse") => InvocationType::RequestResponse,
        Some("Event") => InvocationType::Event,
        Some("DryRun") => InvocationType::DryRun,
        Some(other) => {
            v.push(
                other,
                "invocationType",
                "Member must satisfy enum value set: [DryRun, RequestResponse, Event]",
            );
            InvocationType::RequestResponse
        }
    };
    let tail_logs = match header(headers, "x-amz-log-type")? {
        None | Some("None") => false,
        Some("Tail") => true,
        Some(other) => {
            v.push(
                other,
                "logType",
                "Member must satisfy enum value set: [Tail, None]",
            );
            false
        }
    };
    v.into_result()?;
    let client_context = header(headers, "x-amz-client-context")?
        .map(decode_client_context)
        .transpose()?;
    let trace_id = header(headers, "x-amzn-trace-id")?.map(str::to_string);
    Ok(Command::Invoke(InvokeRequest {
        function_name: t.name,
        qualifier: t.qualifier,
        invocation_type,
        payload: body,
        tail_logs,
        client_context,
        trace_id,
    }))
}

/// `X-Amz-Client-Context`: at most 3583 bytes of base64 of a JSON object; the runtime gets the
/// decoded JSON.
fn decode_client_context(raw: &str) -> Result<String, LambdaError> {
    use base64::Engine as _;
    if raw.len() > CLIENT_CONTEXT_MAX_BYTES {
        return Err(LambdaError::invalid_parameter(format!(
            "Client context must be at most {CLIENT_CONTEXT_MAX_BYTES} bytes of base64-encoded JSON."
        )));
    }
    let invalid = || {
        LambdaError::new(
            ErrorCode::InvalidRequestContentException,
            "Client context must be a valid Base64-encoded JSON object.",
        )
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .map_err(|_| invalid())?;
    let text = String::from_utf8(decoded).map_err(|_| invalid())?;
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(_)) => Ok(text),
        _ => Err(invalid()),
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, LambdaError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|_| {
            LambdaError::new(
                ErrorCode::InvalidRequestContentException,
                format!("Header {name} is not valid ASCII"),
            )
        }),
    }
}

/// Parse the `{FunctionName}` path label and reconcile it with `?Qualifier=`.
fn target(
    raw_label: &str,
    query: &Query<'_>,
    scope: &Scope,
    max_len: usize,
) -> Result<Target, LambdaError> {
    let label = decode(raw_label)?;
    let fref = parse_function_name(&label, scope, max_len)?;
    let qualifier = resolve_qualifier(fref.qualifier, query.get("Qualifier").as_deref())?;
    Ok(Target {
        name: fref.name,
        qualifier,
    })
}

fn json<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, LambdaError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        LambdaError::new(
            ErrorCode::SerializationException,
            format!("Could not parse request body: {e}"),
        )
    })
}

fn decode(raw: &str) -> Result<Cow<'_, str>, LambdaError> {
    percent_decode_str(raw).decode_utf8().map_err(|_| {
        LambdaError::new(
            ErrorCode::SerializationException,
            "Request URI is not valid percent-encoded UTF-8",
        )
    })
}

/// The decoded query string. Small: a linear scan beats a map.
struct Query<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> Query<'a> {
    fn parse(raw: &'a str) -> Result<Self, LambdaError> {
        let mut pairs = Vec::new();
        for part in raw.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            pairs.push((decode(k)?, decode(v)?));
        }
        Ok(Query(pairs))
    }

    fn get(&self, key: &str) -> Option<Cow<'a, str>> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope::new("us-east-1", "000000000000")
    }

    fn p(method: Method, path_and_query: &str) -> Result<Command, LambdaError> {
        p_with(method, path_and_query, HeaderMap::new(), "")
    }

    fn p_with(
        method: Method,
        pq: &str,
        headers: HeaderMap,
        body: &'static str,
    ) -> Result<Command, LambdaError> {
        let (path, query) = match pq.split_once('?') {
            Some((a, b)) => (a, Some(b)),
            None => (pq, None),
        };
        parse(
            &method,
            path,
            query,
            &headers,
            Bytes::from_static(body.as_bytes()),
            &scope(),
        )
    }

    #[test]
    fn arn_paths_are_decoded() {
        let cmd = p(
            Method::GET,
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Amy-fn%3A%24LATEST/configuration",
        )
        .unwrap();
        let Command::GetFunctionConfiguration(t) = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!(
            t,
            Target {
                name: "my-fn".into(),
                qualifier: Some("$LATEST".into())
            }
        );

        let cmd = p(
            Method::GET,
            "/2015-03-31/functions/my-fn?Qualifier=%24LATEST",
        )
        .unwrap();
        let Command::GetFunction(t) = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!(t.qualifier.as_deref(), Some("$LATEST"));
    }

    #[test]
    fn qualifier_clash_is_refused() {
        let e = p(Method::GET, "/2015-03-31/functions/my-fn%3A1?Qualifier=2").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterValueException);
        assert!(e.message.contains("derived qualifier"), "{}", e.message);
    }

    #[test]
    fn trailing_slashes_are_accepted() {
        assert!(matches!(
            p(Method::GET, "/2015-03-31/functions/"),
            Ok(Command::ListFunctions { .. })
        ));
        assert!(matches!(
            p(Method::GET, "/2015-03-31/functions"),
            Ok(Command::ListFunctions { .. })
        ));
        assert!(matches!(
            p(Method::GET, "/2016-08-19/account-settings/"),
            Ok(Command::GetAccountSettings)
        ));
        assert!(matches!(
            p(Method::GET, "/2016-08-19/account-settings"),
            Ok(Command::GetAccountSettings)
        ));
    }

    #[test]
    fn unknown_routes() {
        for (m, path) in [
            (Method::PATCH, "/2015-03-31/functions/f"),
            (Method::GET, "/2015-03-31/nope"),
            (Method::GET, "/"),
            (Method::GET, "/2015-03-31/functions/f/code"),
        ] {
            assert_eq!(
                p(m, path).unwrap_err().code,
                ErrorCode::UnknownOperationException,
                "{path}"
            );
        }
    }

    #[test]
    fn list_parameters() {
        let cmd = p(
            Method::GET,
            "/2015-03-31/functions/?FunctionVersion=ALL&Marker=abc%3D&MaxItems=10",
        )
        .unwrap();
        let Command::ListFunctions {
            marker,
            max_items,
            all_versions,
        } = cmd
        else {
            panic!()
        };
        assert_eq!(marker.as_deref(), Some("abc="));
        assert_eq!(max_items, Some(10));
        assert!(all_versions);
        for bad in ["MaxItems=0", "MaxItems=10001", "FunctionVersion=SOME"] {
            let e = p(Method::GET, &format!("/2015-03-31/functions/?{bad}")).unwrap_err();
            assert_eq!(e.code, ErrorCode::ValidationException, "{bad}");
        }
    }

    #[test]
    fn create_requires_members_and_parses_name() {
        let e = p_with(
            Method::POST,
            "/2015-03-31/functions",
            HeaderMap::new(),
            r#"{"FunctionName":"f"}"#,
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationException);
        assert!(
            e.message.starts_with("2 validation errors detected"),
            "{}",
            e.message
        );
        assert!(e.message.contains("Value null at 'role'"), "{}", e.message);

        let body = r#"{"FunctionName":"arn:aws:lambda:us-east-1:000000000000:function:f","Role":"arn:aws:iam::000000000000:role/r","Code":{"ZipFile":"UEs="},"Runtime":"provided.al2023","Handler":"h"}"#;
        let cmd = p_with(
            Method::POST,
            "/2015-03-31/functions",
            HeaderMap::new(),
            body,
        )
        .unwrap();
        let Command::CreateFunction { name, input } = cmd else {
            panic!()
        };
        assert_eq!(name, "f");
        assert_eq!(input.settings.runtime.as_deref(), Some("provided.al2023"));

        let e = p_with(
            Method::POST,
            "/2015-03-31/functions",
            HeaderMap::new(),
            "{not json",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::SerializationException);
        let name141 = format!(
            r#"{{"FunctionName":"{}","Role":"r","Code":{{}}}}"#,
            "a".repeat(141)
        );
        let e = parse(
            &Method::POST,
            "/2015-03-31/functions",
            None,
            &HeaderMap::new(),
            Bytes::from(name141),
            &scope(),
        )
        .unwrap_err();
        assert!(
            e.message.contains("less than or equal to 140"),
            "{}",
            e.message
        );
    }

    #[test]
    fn invoke_headers() {
        let mut h = HeaderMap::new();
        h.insert("x-amz-invocation-type", "DryRun".parse().unwrap());
        h.insert("x-amz-log-type", "Tail".parse().unwrap());
        h.insert("x-amz-client-context", "eyJhIjoxfQ==".parse().unwrap());
        let cmd = p_with(
            Method::POST,
            "/2015-03-31/functions/f/invocations?Qualifier=%24LATEST",
            h,
            "{}",
        )
        .unwrap();
        let Command::Invoke(r) = cmd else { panic!() };
        assert_eq!(r.invocation_type, InvocationType::DryRun);
        assert!(r.tail_logs);
        assert_eq!(r.client_context.as_deref(), Some(r#"{"a":1}"#));
        assert_eq!(r.qualifier.as_deref(), Some("$LATEST"));
        assert_eq!(&r.payload[..], b"{}");

        let mut h = HeaderMap::new();
        h.insert("x-amz-invocation-type", "Sync".parse().unwrap());
        let e = p_with(Method::POST, "/2015-03-31/functions/f/invocations", h, "").unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationException);
        assert!(e.message.contains("'invocationType'"), "{}", e.message);

        let mut h = HeaderMap::new();
        h.insert("x-amz-client-context", "not base64!".parse().unwrap());
        let e = p_with(Method::POST, "/2015-03-31/functions/f/invocations", h, "").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequestContentException);

        // Name length for Invoke is 256, and a bad name is a ValidationException.
        let e = p(Method::POST, "/2015-03-31/functions/bad%20name/invocations").unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationException);
    }

    #[test]
    fn concurrency_routes() {
        let cmd = p_with(
            Method::PUT,
            "/2017-10-31/functions/f/concurrency",
            HeaderMap::new(),
            r#"{"ReservedConcurrentExecutions":0}"#,
        )
        .unwrap();
        assert!(matches!(
            cmd,
            Command::PutFunctionConcurrency { reserved: 0, .. }
        ));
        let e = p_with(
            Method::PUT,
            "/2017-10-31/functions/f/concurrency",
            HeaderMap::new(),
            r#"{"ReservedConcurrentExecutions":-1}"#,
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationException);
        assert!(matches!(
            p(Method::GET, "/2019-09-30/functions/f/concurrency"),
            Ok(Command::GetFunctionConcurrency { .. })
        ));
        assert!(matches!(
            p(Method::DELETE, "/2017-10-31/functions/f/concurrency"),
            Ok(Command::DeleteFunctionConcurrency { .. })
        ));
        // GetFunctionConcurrency lives under 2019-09-30 only.
        assert_eq!(
            p(Method::GET, "/2017-10-31/functions/f/concurrency")
                .unwrap_err()
                .code,
            ErrorCode::UnknownOperationException
        );
        let cmd = p_with(
            Method::PUT,
            "/2019-09-30/functions/f/provisioned-concurrency?Qualifier=live",
            HeaderMap::new(),
            r#"{"ProvisionedConcurrentExecutions":2}"#,
        )
        .unwrap();
        let Command::PutProvisionedConcurrencyConfig { target, requested } = cmd else {
            panic!()
        };
        assert_eq!(target.qualifier.as_deref(), Some("live"));
        assert_eq!(requested, 2);
        let e = p_with(
            Method::PUT,
            "/2019-09-30/functions/f/provisioned-concurrency?Qualifier=1",
            HeaderMap::new(),
            r#"{"ProvisionedConcurrentExecutions":0}"#,
        )
        .unwrap_err();
        assert!(
            e.message.contains("greater than or equal to 1"),
            "{}",
            e.message
        );
        let e = p(
            Method::GET,
            "/2019-09-30/functions/f/provisioned-concurrency",
        )
        .unwrap_err();
        assert!(
            e.message.contains("Value null at 'qualifier'"),
            "{}",
            e.message
        );
        assert!(matches!(
            p(
                Method::GET,
                "/2019-09-30/functions/f/provisioned-concurrency?List=ALL&MaxItems=5"
            ),
            Ok(Command::ListProvisionedConcurrencyConfigs {
                max_items: Some(5),
                ..
            })
        ));
        assert!(matches!(
            p(
                Method::DELETE,
                "/2019-09-30/functions/f:1/provisioned-concurrency"
            ),
            Ok(Command::DeleteProvisionedConcurrencyConfig(_))
        ));
        assert!(matches!(
            p(Method::GET, "/_sous/status"),
            Ok(Command::Status)
        ));
    }

    #[test]
    fn layer_routes() {
        let cmd = p_with(
            Method::POST,
            "/2018-10-31/layers/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Alayer%3Amy-layer/versions",
            HeaderMap::new(),
            r#"{"Content":{"ZipFile":"UEs="},"CompatibleRuntimes":["python3.11"]}"#,
        )
        .unwrap();
        let Command::Layer(LayerCommand::Publish { layer, input }) = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!(layer.as_deref(), Some("my-layer"));
        assert_eq!(input.compatible_runtimes.unwrap(), ["python3.11"]);
        assert!(matches!(
            p(Method::GET, "/2018-10-31/layers/l/versions/3"),
            Ok(Command::Layer(LayerCommand::Get { version: 3, .. }))
        ));
        assert!(matches!(
            p(Method::DELETE, "/2018-10-31/layers/l/versions/3"),
            Ok(Command::Layer(LayerCommand::Delete { version: 3, .. }))
        ));
        assert!(matches!(
            p(
                Method::GET,
                "/2018-10-31/layers?find=LayerVersion&Arn=arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Alayer%3Al%3A2"
            ),
            Ok(Command::Layer(LayerCommand::GetByArn { .. }))
        ));
        let cmd = p(
            Method::GET,
            "/2018-10-31/layers/l/versions?CompatibleRuntime=python3.11&CompatibleArchitecture=arm64&MaxItems=2&Marker=m",
        )
        .unwrap();
        let Command::Layer(LayerCommand::ListVersions { filter, .. }) = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!(filter.runtime.as_deref(), Some("python3.11"));
        assert_eq!(filter.architecture.as_deref(), Some("arm64"));
        assert_eq!(
            (filter.max_items, filter.marker.as_deref()),
            (Some(2), Some("m"))
        );
        for bad in [
            "/2018-10-31/layers?MaxItems=51",
            "/2018-10-31/layers?CompatibleRuntime=cobol",
            "/2018-10-31/layers?CompatibleArchitecture=mips",
            "/2018-10-31/layers/bad%20name/versions",
        ] {
            assert_eq!(
                p(Method::GET, bad).unwrap_err().code,
                ErrorCode::ValidationException,
                "{bad}"
            );
        }
        assert!(matches!(
            p(
                Method::DELETE,
                "/2018-10-31/layers/l/versions/1/policy/sid?RevisionId=r"
            ),
            Ok(Command::Layer(LayerCommand::RemovePermission {
                revision_id: Some(_),
                ..
            }))
        ));
        let e = p_with(
            Method::POST,
            "/2018-10-31/layers/l/versions/1/policy",
            HeaderMap::new(),
            r#"{"StatementId":"s","Action":"lambda:InvokeFunction","Principal":"*"}"#,
        )
        .unwrap_err();
        assert!(e.message.contains("'action'"), "{}", e.message);
        assert_eq!(
            body_limit(&Method::POST, "/2018-10-31/layers/l/versions").1,
            "PublishLayerVersion"
        );
    }

    #[test]
    fn body_limits() {
        assert_eq!(
            body_limit(&Method::POST, "/2015-03-31/functions/f/invocations").0,
            6_291_456
        );
        assert_eq!(
            body_limit(&Method::POST, "/2015-03-31/functions").0,
            CODE_REQUEST_MAX_BYTES
        );
        assert_eq!(
            too_large(6_291_456, "InvokeFunction").message,
            "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
        );
    }
}
