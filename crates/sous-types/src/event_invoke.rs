//! Asynchronous invocation settings: `FunctionEventInvokeConfig` (retries, maximum event age,
//! destinations) with Lambda's validation, and the destination record Lambda sends.

use serde::{Deserialize, Serialize};

use crate::error::Violations;
use crate::names::Scope;
use crate::LambdaError;

/// Default `MaximumRetryAttempts` of an asynchronous invocation.
pub const RETRY_ATTEMPTS_DEFAULT: u32 = 2;
/// Largest `MaximumRetryAttempts`.
pub const RETRY_ATTEMPTS_MAX: i64 = 2;
/// Default (and largest) `MaximumEventAgeInSeconds`: six hours.
pub const EVENT_AGE_DEFAULT_S: u64 = 21_600;
/// Smallest `MaximumEventAgeInSeconds`.
pub const EVENT_AGE_MIN_S: i64 = 60;
/// Largest payload of an asynchronous invocation: 1 MB (Lambda raised it from 256 KB).
pub const ASYNC_REQUEST_MAX_BYTES: usize = 1_048_576;

/// `{Destination}`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Destination {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
}

/// `{OnSuccess, OnFailure}`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DestinationConfig {
    #[serde(default)]
    pub on_success: Destination,
    #[serde(default)]
    pub on_failure: Destination,
}

/// The body of Put/UpdateFunctionEventInvokeConfig.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventInvokeConfigInput {
    #[serde(default)]
    pub maximum_retry_attempts: Option<i64>,
    #[serde(default)]
    pub maximum_event_age_in_seconds: Option<i64>,
    #[serde(default)]
    pub destination_config: Option<DestinationInput>,
}

/// `DestinationConfig` as a request gives it (members may be absent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DestinationInput {
    #[serde(default)]
    pub on_success: Option<Destination>,
    #[serde(default)]
    pub on_failure: Option<Destination>,
}

/// A stored `FunctionEventInvokeConfig` (what Get returns, less `FunctionArn`, which the
/// service derives from the function and qualifier).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionEventInvokeConfig {
    /// Epoch seconds (a JSON number, as Lambda sends it).
    pub last_modified: f64,
    pub function_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_retry_attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_event_age_in_seconds: Option<u64>,
    #[serde(default)]
    pub destination_config: DestinationConfig,
}

impl FunctionEventInvokeConfig {
    /// Retries after the first attempt on a function error.
    pub fn retries(&self) -> u32 {
        self.maximum_retry_attempts
            .unwrap_or(RETRY_ATTEMPTS_DEFAULT)
    }

    /// Age after which an event is discarded, in seconds.
    pub fn max_age_s(&self) -> u64 {
        self.maximum_event_age_in_seconds
            .unwrap_or(EVENT_AGE_DEFAULT_S)
    }

    /// Put: replace everything with `input`.
    pub fn replace(&mut self, input: &EventInvokeConfigInput) {
        self.maximum_retry_attempts = input.maximum_retry_attempts.map(|n| n as u32);
        self.maximum_event_age_in_seconds = input.maximum_event_age_in_seconds.map(|n| n as u64);
        self.destination_config = DestinationConfig::default();
        self.merge_destinations(input);
    }

    /// Update: change only what `input` names.
    pub fn merge(&mut self, input: &EventInvokeConfigInput) {
        if let Some(n) = input.maximum_retry_attempts {
            self.maximum_retry_attempts = Some(n as u32);
        }
        if let Some(n) = input.maximum_event_age_in_seconds {
            self.maximum_event_age_in_seconds = Some(n as u64);
        }
        self.merge_destinations(input);
    }

    fn merge_destinations(&mut self, input: &EventInvokeConfigInput) {
        let Some(d) = &input.destination_config else {
            return;
        };
        if let Some(s) = &d.on_success {
            self.destination_config.on_success = s.clone();
        }
        if let Some(f) = &d.on_failure {
            self.destination_config.on_failure = f.clone();
        }
    }
}

/// The request's constraints (ranges), as AWS's front end checks them.
pub fn check_input(input: &EventInvokeConfigInput) -> Result<(), LambdaError> {
    let mut v = Violations::default();
    if let Some(n) = input.maximum_retry_attempts {
        if n < 0 {
            v.push(
                &n.to_string(),
                "maximumRetryAttempts",
                "Member must have value greater than or equal to 0",
            );
        } else if n > RETRY_ATTEMPTS_MAX {
            v.push(
                &n.to_string(),
                "maximumRetryAttempts",
                "Member must have value less than or equal to 2",
            );
        }
    }
    if let Some(n) = input.maximum_event_age_in_seconds {
        if n < EVENT_AGE_MIN_S {
            v.push(
                &n.to_string(),
                "maximumEventAgeInSeconds",
                "Member must have value greater than or equal to 60",
            );
        } else if n > EVENT_AGE_DEFAULT_S as i64 {
            v.push(
                &n.to_string(),
                "maximumEventAgeInSeconds",
                "Member must have value less than or equal to 21600",
            );
        }
    }
    v.into_result()
}

/// A destination or dead-letter target Sous can deliver to: a Lambda function of this
/// region and account, as `(name, qualifier)`.
pub fn function_target(arn: &str, scope: &Scope) -> Option<(String, Option<String>)> {
    let rest = arn.strip_prefix("arn:aws:lambda:")?;
    let mut parts = rest.splitn(5, ':');
    let region = parts.next()?;
    let account = parts.next()?;
    if parts.next()? != "function" || region != scope.region || account != scope.account {
        return None;
    }
    let name = parts.next()?;
    let qualifier = parts.next().map(str::to_string);
    if name.is_empty() || qualifier.as_deref() == Some("") {
        return None;
    }
    Some((name.to_string(), qualifier))
}

/// Check a destination ARN at configuration time: only Sous functions of this region and
/// account are reachable; SQS, SNS, EventBridge and S3 targets need an endpoint Sous does not
/// have, and are refused rather than silently dropped.
pub fn check_destination(arn: &str, scope: &Scope) -> Result<(), LambdaError> {
    if function_target(arn, scope).is_some() {
        return Ok(());
    }
    let service = arn.split(':').nth(2).unwrap_or_default();
    match service {
        "sqs" | "sns" | "events" | "s3" => Err(LambdaError::invalid_parameter(format!(
            "The destination ARN {arn} is invalid: no {service} endpoint is configured on this Sous host; only Lambda functions of region {} and account {} are supported destinations.",
            scope.region, scope.account
        ))),
        _ => Err(LambdaError::invalid_parameter(format!(
            "The destination ARN {arn} is invalid."
        ))),
    }
}

/// Check every destination of a configuration.
pub fn check_destinations(cfg: &DestinationConfig, scope: &Scope) -> Result<(), LambdaError> {
    for d in [&cfg.on_success, &cfg.on_failure] {
        if let Some(arn) = d.destination.as_deref() {
            check_destination(arn, scope)?;
        }
    }
    Ok(())
}

/// Check a `DeadLetterConfig.TargetArn`: a Sous function of this region and account.
pub fn check_dead_letter(arn: &str, scope: &Scope) -> Result<(), LambdaError> {
    if function_target(arn, scope).is_some() {
        return Ok(());
    }
    let service = arn.split(':').nth(2).unwrap_or_default();
    match service {
        "sqs" | "sns" => Err(LambdaError::invalid_parameter(format!(
            "The dead-letter target {arn} is not reachable: no {service} endpoint is configured on this Sous host; use a Lambda function of region {} and account {}.",
            scope.region, scope.account
        ))),
        _ => Err(LambdaError::invalid_parameter(format!(
            "The provided target {arn} is not a valid dead-letter target ARN."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope::new("us-east-1", "000000000000")
    }

    #[test]
    fn ranges() {
        let ok = EventInvokeConfigInput {
            maximum_retry_attempts: Some(0),
            maximum_event_age_in_seconds: Some(60),
            destination_config: None,
        };
        check_input(&ok).unwrap();
        let bad = EventInvokeConfigInput {
            maximum_retry_attempts: Some(3),
            maximum_event_age_in_seconds: Some(59),
            destination_config: None,
        };
        let e = check_input(&bad).unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::ValidationException);
        assert!(
            e.message.starts_with("2 validation errors detected"),
            "{}",
            e.message
        );
        assert!(e.message.contains("Value '3' at 'maximumRetryAttempts' failed to satisfy constraint: Member must have value less than or equal to 2"), "{}", e.message);
    }

    #[test]
    fn targets() {
        let s = scope();
        assert_eq!(
            function_target("arn:aws:lambda:us-east-1:000000000000:function:f", &s),
            Some(("f".into(), None))
        );
        assert_eq!(
            function_target("arn:aws:lambda:us-east-1:000000000000:function:f:live", &s),
            Some(("f".into(), Some("live".into())))
        );
        assert!(function_target("arn:aws:lambda:eu-west-1:000000000000:function:f", &s).is_none());
        let e = check_destination("arn:aws:sqs:us-east-1:000000000000:q", &s).unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::InvalidParameterValueException);
        assert!(e.message.contains("no sqs endpoint"));
        check_dead_letter("arn:aws:lambda:us-east-1:000000000000:function:dlq", &s).unwrap();
        assert!(check_dead_letter("arn:aws:sns:us-east-1:000000000000:t", &s).is_err());
    }

    #[test]
    fn put_replaces_update_merges() {
        let mut c = FunctionEventInvokeConfig::default();
        c.replace(&EventInvokeConfigInput {
            maximum_retry_attempts: Some(1),
            maximum_event_age_in_seconds: None,
            destination_config: Some(DestinationInput {
                on_success: Some(Destination {
                    destination: Some("a".into()),
                }),
                on_failure: None,
            }),
        });
        c.merge(&EventInvokeConfigInput {
            maximum_event_age_in_seconds: Some(100),
            ..Default::default()
        });
        assert_eq!(c.retries(), 1);
        assert_eq!(c.max_age_s(), 100);
        assert_eq!(
            c.destination_config.on_success.destination.as_deref(),
            Some("a")
        );
        c.replace(&EventInvokeConfigInput::default());
        assert_eq!(c.retries(), 2);
        assert_eq!(c.max_age_s(), 21_600);
        assert_eq!(c.destination_config, DestinationConfig::default());
    }
}
