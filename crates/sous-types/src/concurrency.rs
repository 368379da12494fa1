//! Lambda's concurrency controls: reserved concurrency per function, provisioned concurrency
//! per version or alias, the account limit, and the throttling errors they cause. Only shapes,
//! rules and messages live here; counting in-flight invocations is the worker's job.

use serde::{Deserialize, Serialize};

use crate::{ErrorCode, LambdaError};

/// The unreserved concurrency an account must keep: 100, or the whole account limit when
/// that is smaller (AWS answers accounts with a limit of 10 or 50 with "minimum value of [10]"
/// or "[50]", so such accounts cannot reserve anything).
pub fn min_unreserved(account_limit: u64) -> u64 {
    account_limit.min(crate::limits::MIN_UNRESERVED_CONCURRENCY)
}

/// The `Reason` of a throttled invocation (`TooManyRequestsException`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleReason {
    /// The account's unreserved pool is exhausted.
    ConcurrentInvocationLimitExceeded,
    /// The function's reserved concurrency is exhausted (or is 0).
    ReservedFunctionConcurrentInvocationLimitExceeded,
}

impl ThrottleReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConcurrentInvocationLimitExceeded => "ConcurrentInvocationLimitExceeded",
            Self::ReservedFunctionConcurrentInvocationLimitExceeded => {
                "ReservedFunctionConcurrentInvocationLimitExceeded"
            }
        }
    }
}

impl LambdaError {
    /// AWS's throttle: 429 `{"Reason":..., "Type":"User", "message":"Rate Exceeded."}`.
    pub fn throttled(reason: ThrottleReason) -> Self {
        Self {
            code: ErrorCode::TooManyRequestsException,
            message: "Rate Exceeded.".into(),
            reason: Some(reason.as_str().into()),
        }
    }
}

/// PutFunctionConcurrency's body, and Get/PutFunctionConcurrency's answer (GetFunction's
/// `Concurrency` member too).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Concurrency {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserved_concurrent_executions: Option<i64>,
}

/// PutProvisionedConcurrencyConfig's body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutProvisionedInput {
    pub provisioned_concurrent_executions: Option<i64>,
}

/// Status of a provisioned concurrency configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProvisionedStatus {
    InProgress,
    Ready,
    Failed,
}

/// Get/PutProvisionedConcurrencyConfig's answer; with `FunctionArn`, an item of
/// ListProvisionedConcurrencyConfigs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProvisionedConcurrencyConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_arn: Option<String>,
    pub requested_provisioned_concurrent_executions: u64,
    pub available_provisioned_concurrent_executions: u64,
    pub allocated_provisioned_concurrent_executions: u64,
    pub status: ProvisionedStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// `Timestamp` string (`2020-04-10T19:06:32.563+0000`).
    pub last_modified: String,
}

/// AWS's refusal of a reservation that would leave the account less than its minimum
/// unreserved concurrency.
pub fn reserved_below_minimum(minimum: u64) -> LambdaError {
    LambdaError::invalid_parameter(format!(
        "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [{minimum}]."
    ))
}

/// AWS's refusal of provisioned concurrency that would leave the account less than its
/// minimum unreserved concurrency.
pub fn provisioned_below_minimum(minimum: u64) -> LambdaError {
    LambdaError::invalid_parameter(format!(
        "Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [{minimum}]."
    ))
}

/// AWS's refusal of provisioned concurrency above the function's reserved concurrency.
pub fn provisioned_above_reserved() -> LambdaError {
    LambdaError::invalid_parameter(
        "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function",
    )
}

/// AWS's refusal of provisioned concurrency on `$LATEST`.
pub fn provisioned_on_latest() -> LambdaError {
    LambdaError::invalid_parameter(
        "Provisioned Concurrency Configs cannot be applied to unpublished function versions.",
    )
}

/// AWS's answer to Get/Delete of provisioned concurrency naming `$LATEST`.
pub fn provisioned_needs_published() -> LambdaError {
    LambdaError::invalid_parameter(
        "The function resource provided must be an alias or a published version.",
    )
}

/// AWS's 404 when a version or alias has no provisioned concurrency configuration.
pub fn provisioned_not_found() -> LambdaError {
    LambdaError::new(
        ErrorCode::ProvisionedConcurrencyConfigNotFoundException,
        "No Provisioned Concurrency Config found for this function",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_body_is_aws() {
        let e = LambdaError::throttled(
            ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded,
        );
        let b = e.body();
        assert_eq!(b["message"], "Rate Exceeded.");
        assert_eq!(b["Type"], "User");
        assert_eq!(
            b["Reason"],
            "ReservedFunctionConcurrentInvocationLimitExceeded"
        );
        assert_eq!(e.code.status(), 429);
    }

    #[test]
    fn minimum_unreserved() {
        assert_eq!(min_unreserved(1000), 100);
        assert_eq!(min_unreserved(50), 50);
        assert_eq!(min_unreserved(3), 3);
    }

    #[test]
    fn provisioned_shape() {
        let c = ProvisionedConcurrencyConfig {
            function_arn: None,
            requested_provisioned_concurrent_executions: 2,
            available_provisioned_concurrent_executions: 0,
            allocated_provisioned_concurrent_executions: 0,
            status: ProvisionedStatus::InProgress,
            status_reason: None,
            last_modified: "2020-04-10T19:06:32.563+0000".into(),
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["Status"], "IN_PROGRESS");
        assert_eq!(v["RequestedProvisionedConcurrentExecutions"], 2);
        assert!(v.get("FunctionArn").is_none());
        assert!(v.get("StatusReason").is_none());
        assert_eq!(
            provisioned_not_found().code.status(),
            404,
            "ProvisionedConcurrencyConfigNotFoundException is a 404"
        );
    }
}
