//! Function configuration: the wire shapes of the control plane's requests and of
//! `FunctionConfiguration`, and Lambda's validation of each setting.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::{LambdaError, Violations};
use crate::limits::*;
use crate::names;
use crate::runtime;

/// `Environment` in requests.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Environment {
    #[serde(default)]
    pub variables: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct EphemeralStorage {
    pub size: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct TracingConfig {
    #[serde(default)]
    pub mode: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DeadLetterConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_arn: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct LoggingConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_log_level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_log_level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_group: Option<String>,
}

/// `Code` of CreateFunction. Only `ZipFile` is served; the other sources are refused.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionCode {
    pub zip_file: Option<String>,
    pub s3_bucket: Option<String>,
    pub s3_key: Option<String>,
    pub s3_object_version: Option<String>,
    pub image_uri: Option<String>,
}

/// The settings shared by CreateFunction and UpdateFunctionConfiguration. `None` = not given.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SettingsInput {
    pub runtime: Option<String>,
    pub role: Option<String>,
    pub handler: Option<String>,
    pub description: Option<String>,
    pub timeout: Option<i64>,
    pub memory_size: Option<i64>,
    pub environment: Option<Environment>,
    pub ephemeral_storage: Option<EphemeralStorage>,
    pub tracing_config: Option<TracingConfig>,
    pub dead_letter_config: Option<DeadLetterConfig>,
    pub logging_config: Option<LoggingConfig>,
    pub layers: Option<Vec<String>>,
    pub revision_id: Option<String>,
}

/// CreateFunction's body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateFunctionInput {
    pub function_name: Option<String>,
    pub code: Option<FunctionCode>,
    pub package_type: Option<String>,
    pub architectures: Option<Vec<String>>,
    pub publish: Option<bool>,
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub settings: SettingsInput,
}

/// UpdateFunctionCode's body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateCodeInput {
    pub zip_file: Option<String>,
    pub s3_bucket: Option<String>,
    pub s3_key: Option<String>,
    pub s3_object_version: Option<String>,
    pub image_uri: Option<String>,
    pub publish: Option<bool>,
    pub dry_run: Option<bool>,
    pub revision_id: Option<String>,
    pub architectures: Option<Vec<String>>,
}

/// `FunctionConfiguration` exactly as Lambda returns it. Sous stores this shape too.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionConfiguration {
    pub function_name: String,
    pub function_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    pub code_size: u64,
    pub description: String,
    pub timeout: i64,
    pub memory_size: i64,
    pub last_modified: String,
    pub code_sha256: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    pub tracing_config: TracingConfig,
    pub revision_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter_config: Option<DeadLetterConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Why the function is in `state` (only while it is not `Active`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_reason_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_update_status: Option<String>,
    pub package_type: String,
    pub architectures: Vec<String>,
    pub ephemeral_storage: EphemeralStorage,
    pub snap_start: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_version_config: Option<serde_json::Value>,
    pub logging_config: LoggingConfig,
    /// `Layers`: the layer versions the function uses, in order (absent when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<crate::layers::FunctionLayer>>,
}

/// Lambda's function states (`State`), as far as Sous has them: a function is `Pending` while
/// a package too large to extract at once is extracted after CreateFunction answered (Lambda
/// neither invokes nor modifies it then), `Failed` when that extraction failed, and `Active`.
pub mod function_state {
    pub const ACTIVE: &str = "Active";
    pub const PENDING: &str = "Pending";
    pub const FAILED: &str = "Failed";
    /// `StateReason` / `StateReasonCode` while a function is being created.
    pub const CREATING_REASON: &str = "The function is being created.";
    pub const CREATING_CODE: &str = "Creating";
    /// After a failed extraction (Lambda's code for a failure of its own).
    pub const FAILED_REASON: &str = "The function could not be created: Lambda could not prepare its code. Delete and create it again.";
    pub const FAILED_CODE: &str = "InternalError";
}

impl FunctionConfiguration {
    /// `Pending` (StateReasonCode `Creating`): created, its code still being extracted. No
    /// `LastUpdateStatus` until it is `Active`, as Lambda answers CreateFunction.
    pub fn set_creating(&mut self) {
        self.state = Some(function_state::PENDING.into());
        self.state_reason = Some(function_state::CREATING_REASON.into());
        self.state_reason_code = Some(function_state::CREATING_CODE.into());
        self.last_update_status = None;
    }

    /// `Active`, its last update `Successful`.
    pub fn set_active(&mut self) {
        self.state = Some(function_state::ACTIVE.into());
        self.state_reason = None;
        self.state_reason_code = None;
        self.last_update_status = Some("Successful".into());
    }

    /// `Failed`: its code could not be prepared.
    pub fn set_failed(&mut self) {
        self.state = Some(function_state::FAILED.into());
        self.state_reason = Some(function_state::FAILED_REASON.into());
        self.state_reason_code = Some(function_state::FAILED_CODE.into());
        self.last_update_status = None;
    }

    /// Refuse an invocation unless the function is `Active` (Lambda's answer to an Invoke of
    /// a `Pending` or `Failed` function).
    pub fn check_invocable(&self) -> Result<(), crate::LambdaError> {
        match self.state.as_deref() {
            None | Some(function_state::ACTIVE) => Ok(()),
            Some(state) => Err(crate::LambdaError::conflict(format!(
                "The operation cannot be performed at this time. The function is currently in the following state: {state}"
            ))),
        }
    }

    /// Refuse a change to a function that is `Pending` (Lambda's answer to an update or a
    /// publish while the function is being created).
    pub fn check_modifiable(&self, arn: &str) -> Result<(), crate::LambdaError> {
        match self.state.as_deref() {
            Some(state @ function_state::PENDING) => Err(crate::LambdaError::conflict(format!(
                "The operation cannot be performed at this time. The resource {arn} is currently in the following state: '{state}'. StateReasonCode: '{}'",
                self.state_reason_code.as_deref().unwrap_or(function_state::CREATING_CODE)
            ))),
            _ => Ok(()),
        }
    }
    /// The form ListFunctions returns: without State and LastUpdateStatus.
    pub fn for_listing(mut self) -> Self {
        self.state = None;
        self.state_reason = None;
        self.state_reason_code = None;
        self.last_update_status = None;
        self.runtime_version_config = None;
        self
    }

    /// The user's environment variables (empty when none are set).
    pub fn variables(&self) -> BTreeMap<String, String> {
        self.environment
            .as_ref()
            .and_then(|e| e.variables.clone())
            .unwrap_or_default()
    }

    /// Apply validated settings over this configuration (UpdateFunctionConfiguration).
    pub fn apply(&mut self, s: &SettingsInput, region: &str) {
        if let Some(r) = &s.runtime {
            self.runtime = Some(r.clone());
            self.runtime_version_config =
                Some(serde_json::json!({ "RuntimeVersionArn": runtime::version_arn(region, r) }));
        }
        if let Some(r) = &s.role {
            self.role = r.clone();
        }
        if let Some(h) = &s.handler {
            self.handler = Some(h.clone());
        }
        if let Some(d) = &s.description {
            self.description = d.clone();
        }
        if let Some(t) = s.timeout {
            self.timeout = t;
        }
        if let Some(m) = s.memory_size {
            self.memory_size = m;
        }
        if let Some(env) = &s.environment {
            // Environment replaces the whole map; an empty map removes it.
            let vars = env.variables.clone().unwrap_or_default();
            self.environment = (!vars.is_empty()).then_some(Environment {
                variables: Some(vars),
            });
        }
        if let Some(e) = &s.ephemeral_storage {
            self.ephemeral_storage = e.clone();
        }
        if let Some(t) = &s.tracing_config {
            self.tracing_config = TracingConfig {
                mode: Some(t.mode.clone().unwrap_or_else(|| "PassThrough".into())),
            };
        }
        if let Some(d) = &s.dead_letter_config {
            self.dead_letter_config = d
                .target_arn
                .as_ref()
                .filter(|a| !a.is_empty())
                .map(|_| d.clone());
        }
        if let Some(l) = &s.logging_config {
            if let Some(f) = &l.log_format {
                self.logging_config.log_format = Some(f.clone());
            }
            if let Some(g) = &l.log_group {
                self.logging_config.log_group = Some(g.clone());
            }
            self.logging_config.application_log_level = l.application_log_level.clone();
            self.logging_config.system_log_level = l.system_log_level.clone();
        }
    }
}

/// Environment variable names Lambda reserves for itself.
pub const RESERVED_ENV_KEYS: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_DEFAULT_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_REGION",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "LAMBDA_RUNTIME_DIR",
    "LAMBDA_TASK_ROOT",
];

fn env_key_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^[a-zA-Z]([a-zA-Z0-9_])+$").expect("static regex"))
}

fn handler_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^[^\s]+$").expect("static regex"))
}

/// Validate settings as Lambda does: model constraints first (ValidationException, all
/// violations in one message), then semantic checks (InvalidParameterValueException).
/// `runtimes` lists the runtime ids this host can serve.
pub fn validate_settings(s: &SettingsInput, runtimes: &[&str]) -> Result<(), LambdaError> {
    let mut v = Violations::default();
    if let Some(t) = s.timeout {
        if t < TIMEOUT_MIN_S {
            v.push(
                &t.to_string(),
                "timeout",
                "Member must have value greater than or equal to 1",
            );
        } else if t > TIMEOUT_MAX_S {
            v.push(
                &t.to_string(),
                "timeout",
                "Member must have value less than or equal to 900",
            );
        }
    }
    if let Some(m) = s.memory_size {
        if m < MEMORY_MIN_MB {
            v.push(
                &m.to_string(),
                "memorySize",
                "Member must have value greater than or equal to 128",
            );
        } else if m > MEMORY_MAX_MB {
            v.push(
                &m.to_string(),
                "memorySize",
                "Member must have value less than or equal to 10240",
            );
        }
    }
    if let Some(e) = &s.ephemeral_storage {
        if e.size < EPHEMERAL_MIN_MB {
            v.push(
                &e.size.to_string(),
                "ephemeralStorage.size",
                "Member must have value greater than or equal to 512",
            );
        } else if e.size > EPHEMERAL_MAX_MB {
            v.push(
                &e.size.to_string(),
                "ephemeralStorage.size",
                "Member must have value less than or equal to 10240",
            );
        }
    }
    if let Some(d) = &s.description {
        if d.chars().count() > DESCRIPTION_MAX {
            v.push(
                d,
                "description",
                "Member must have length less than or equal to 256",
            );
        }
    }
    if let Some(h) = &s.handler {
        if h.len() > HANDLER_MAX {
            v.push(
                h,
                "handler",
                "Member must have length less than or equal to 128",
            );
        } else if !h.is_empty() && !handler_re().is_match(h) {
            v.push(
                h,
                "handler",
                r"Member must satisfy regular expression pattern: [^\s]+",
            );
        }
    }
    if let Some(r) = &s.role {
        if !names::is_role_arn(r) {
            v.push(
                r,
                "role",
                &format!(
                    "Member must satisfy regular expression pattern: {}",
                    names::ROLE_PATTERN
                ),
            );
        }
    }
    if let Some(vars) = s.environment.as_ref().and_then(|e| e.variables.as_ref()) {
        if let Some(bad) = vars.keys().find(|k| !env_key_re().is_match(k)) {
            v.push(
                bad,
                "environment.variables",
                "Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]",
            );
        }
    }
    if let Some(mode) = s.tracing_config.as_ref().and_then(|t| t.mode.as_deref()) {
        if mode != "Active" && mode != "PassThrough" {
            v.push(
                mode,
                "tracingConfig.mode",
                "Member must satisfy enum value set: [Active, PassThrough]",
            );
        }
    }
    if let Some(layers) = &s.layers {
        crate::layers::check_function_layers(layers, &mut v);
    }
    v.into_result()?;

    if let Some(r) = &s.runtime {
        if !runtimes.contains(&r.as_str()) {
            return Err(LambdaError::invalid_parameter(format!(
                "The runtime parameter of {r} is not supported by this Sous host. Supported runtimes: {}",
                runtimes.join(", ")
            )));
        }
    }
    if let Some(vars) = s.environment.as_ref().and_then(|e| e.variables.as_ref()) {
        let reserved: Vec<&str> = vars
            .keys()
            .filter(|k| RESERVED_ENV_KEYS.contains(&k.as_str()))
            .map(String::as_str)
            .collect();
        if !reserved.is_empty() {
            return Err(LambdaError::invalid_parameter(format!(
                "Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: {}",
                reserved.join(", ")
            )));
        }
        let measured = serde_json::to_string(vars).unwrap_or_default();
        if measured.len() > ENVIRONMENT_MAX_BYTES {
            return Err(LambdaError::invalid_parameter(format!(
                "Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: {measured}"
            )));
        }
    }
    if let Some(layers) = &s.layers {
        // Whether each version exists is the service's check (it needs the store).
        crate::layers::check_function_layer_list(layers)?;
    }
    if let Some(fmt) = s
        .logging_config
        .as_ref()
        .and_then(|l| l.log_format.as_deref())
    {
        if fmt != "Text" {
            return Err(LambdaError::invalid_parameter(format!(
                "LogFormat {fmt} is not yet supported by this Sous host; use Text."
            )));
        }
    }
    Ok(())
}

/// Validate `Architectures` against what this host can execute.
pub fn validate_architectures(archs: &[String]) -> Result<String, LambdaError> {
    let mut v = Violations::default();
    if archs.len() != 1 {
        v.push(
            &format!("{archs:?}"),
            "architectures",
            "Member must have length less than or equal to 1",
        );
    }
    if let Some(a) = archs.iter().find(|a| *a != "x86_64" && *a != "arm64") {
        v.push(
            a,
            "architectures",
            "Member must satisfy enum value set: [x86_64, arm64]",
        );
    }
    v.into_result()?;
    let host = host_architecture();
    if archs[0] != host {
        return Err(LambdaError::invalid_parameter(format!(
            "Architecture {} is not available on this Sous host; available: {host}",
            archs[0]
        )));
    }
    Ok(host.to_string())
}

/// Lambda's name for the architecture of this host.
pub fn host_architecture() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "x86_64"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    const HOST: &[&str] = &["provided.al2023", "provided.al2"];

    fn settings() -> SettingsInput {
        SettingsInput::default()
    }

    #[test]
    fn limits_are_validation_errors() {
        for (s, member) in [
            (
                SettingsInput {
                    timeout: Some(901),
                    ..settings()
                },
                "'timeout'",
            ),
            (
                SettingsInput {
                    timeout: Some(0),
                    ..settings()
                },
                "'timeout'",
            ),
            (
                SettingsInput {
                    memory_size: Some(127),
                    ..settings()
                },
                "'memorySize'",
            ),
            (
                SettingsInput {
                    memory_size: Some(10241),
                    ..settings()
                },
                "'memorySize'",
            ),
            (
                SettingsInput {
                    ephemeral_storage: Some(EphemeralStorage { size: 511 }),
                    ..settings()
                },
                "'ephemeralStorage.size'",
            ),
        ] {
            let e = validate_settings(&s, HOST).unwrap_err();
            assert_eq!(e.code, ErrorCode::ValidationException);
            assert!(e.message.contains(member), "{}", e.message);
        }
        let ok = SettingsInput {
            timeout: Some(900),
            memory_size: Some(10240),
            ..settings()
        };
        validate_settings(&ok, HOST).unwrap();
    }

    #[test]
    fn reserved_and_oversized_environments() {
        let vars = |pairs: &[(&str, String)]| Environment {
            variables: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            ),
        };
        let e = validate_settings(
            &SettingsInput {
                environment: Some(vars(&[("AWS_REGION", "x".into())])),
                ..settings()
            },
            HOST,
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterValueException);
        assert!(e
            .message
            .ends_with("Reserved keys used in this request: AWS_REGION"));
        let e = validate_settings(
            &SettingsInput {
                environment: Some(vars(&[("BIG", "x".repeat(4100))])),
                ..settings()
            },
            HOST,
        )
        .unwrap_err();
        assert!(e.message.contains("exceeded the 4KB limit"));
    }

    #[test]
    fn unknown_runtime_names_the_available_ones() {
        let e = validate_settings(
            &SettingsInput {
                runtime: Some("cobol85".into()),
                ..settings()
            },
            HOST,
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterValueException);
        assert!(e.message.contains("provided.al2023"), "{}", e.message);
    }
}
