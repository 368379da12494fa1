//! The AWS Lambda error model: every error Sous returns to a client is a [`LambdaError`]
//! carrying one of AWS's error codes. The HTTP status and the body's member casing for each
//! code live here, in one table, so that transport layers only serialize.

use std::fmt;

/// The AWS error codes Sous emits (`x-amzn-ErrorType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    ValidationException,
    InvalidParameterValueException,
    InvalidRequestContentException,
    ResourceNotFoundException,
    ResourceConflictException,
    PreconditionFailedException,
    RequestTooLargeException,
    RequestEntityTooLargeException,
    UnsupportedMediaTypeException,
    TooManyRequestsException,
    ServiceException,
    UnrecognizedClientException,
    InvalidSignatureException,
    IncompleteSignatureException,
    MissingAuthenticationTokenException,
    AccessDeniedException,
    UnknownOperationException,
    SerializationException,
    InvalidRuntimeException,
    ProvisionedConcurrencyConfigNotFoundException,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ValidationException => "ValidationException",
            Self::InvalidParameterValueException => "InvalidParameterValueException",
            Self::InvalidRequestContentException => "InvalidRequestContentException",
            Self::ResourceNotFoundException => "ResourceNotFoundException",
            Self::ResourceConflictException => "ResourceConflictException",
            Self::PreconditionFailedException => "PreconditionFailedException",
            Self::RequestTooLargeException => "RequestTooLargeException",
            Self::RequestEntityTooLargeException => "RequestEntityTooLargeException",
            Self::UnsupportedMediaTypeException => "UnsupportedMediaTypeException",
            Self::TooManyRequestsException => "TooManyRequestsException",
            Self::ServiceException => "ServiceException",
            Self::UnrecognizedClientException => "UnrecognizedClientException",
            Self::InvalidSignatureException => "InvalidSignatureException",
            Self::IncompleteSignatureException => "IncompleteSignatureException",
            Self::MissingAuthenticationTokenException => "MissingAuthenticationTokenException",
            Self::AccessDeniedException => "AccessDeniedException",
            Self::UnknownOperationException => "UnknownOperationException",
            Self::SerializationException => "SerializationException",
            Self::InvalidRuntimeException => "InvalidRuntimeException",
            Self::ProvisionedConcurrencyConfigNotFoundException => {
                "ProvisionedConcurrencyConfigNotFoundException"
            }
        }
    }

    /// The HTTP status AWS answers with for this code.
    pub fn status(self) -> u16 {
        match self {
            Self::ValidationException
            | Self::InvalidParameterValueException
            | Self::InvalidRequestContentException
            | Self::UnknownOperationException
            | Self::SerializationException => 400,
            Self::UnrecognizedClientException
            | Self::InvalidSignatureException
            | Self::IncompleteSignatureException
            | Self::MissingAuthenticationTokenException
            | Self::AccessDeniedException => 403,
            Self::ResourceNotFoundException
            | Self::ProvisionedConcurrencyConfigNotFoundException => 404,
            Self::ResourceConflictException => 409,
            Self::PreconditionFailedException => 412,
            Self::RequestTooLargeException | Self::RequestEntityTooLargeException => 413,
            Self::UnsupportedMediaTypeException => 415,
            Self::TooManyRequestsException => 429,
            Self::ServiceException => 500,
            Self::InvalidRuntimeException => 502,
        }
    }

    /// The member name of the message in the JSON body: botocore's model spells it `Message`
    /// for some shapes and `message` for others, and AWS follows the model.
    pub fn message_member(self) -> &'static str {
        match self {
            Self::InvalidParameterValueException
            | Self::InvalidRequestContentException
            | Self::ResourceConflictException
            | Self::PreconditionFailedException
            | Self::RequestTooLargeException
            | Self::UnsupportedMediaTypeException
            | Self::TooManyRequestsException
            | Self::ProvisionedConcurrencyConfigNotFoundException
            | Self::ValidationException => "message",
            _ => "Message",
        }
    }

    /// `User` for errors the caller caused, `Service` for Sous's own faults.
    pub fn fault(self) -> &'static str {
        if self.status() >= 500 {
            "Service"
        } else {
            "User"
        }
    }
}

/// An error in AWS Lambda's own terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaError {
    pub code: ErrorCode,
    pub message: String,
    /// `Reason` member (TooManyRequestsException).
    pub reason: Option<String>,
}

impl LambdaError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            reason: None,
        }
    }
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameterValueException, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceNotFoundException, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceConflictException, message)
    }
    pub fn service(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ServiceException, message)
    }
    /// `Function not found: ARN`, AWS's message for a missing function or version.
    pub fn function_not_found(arn: &str) -> Self {
        Self::not_found(format!("Function not found: {arn}"))
    }

    /// The JSON body AWS sends with this error.
    pub fn body(&self) -> serde_json::Value {
        let mut body = serde_json::Map::new();
        body.insert("Type".into(), self.code.fault().into());
        body.insert(
            self.code.message_member().into(),
            self.message.clone().into(),
        );
        if let Some(reason) = &self.reason {
            body.insert("Reason".into(), reason.clone().into());
        }
        body.into()
    }
}

impl fmt::Display for LambdaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for LambdaError {}

/// Collects model-constraint violations and renders them as AWS's ValidationException:
/// `N validation error(s) detected: Value 'X' at 'member' failed to satisfy constraint: ...`.
#[derive(Debug, Default)]
pub struct Violations(Vec<String>);

impl Violations {
    pub fn push(&mut self, value: &str, member: &str, constraint: &str) {
        self.0.push(format!(
            "Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
        ));
    }
    pub fn push_null(&mut self, member: &str) {
        self.0.push(format!(
            "Value null at '{member}' failed to satisfy constraint: Member must not be null"
        ));
    }
    pub fn into_result(self) -> Result<(), LambdaError> {
        match self.0.len() {
            0 => Ok(()),
            n => {
                let noun = if n == 1 { "error" } else { "errors" };
                Err(LambdaError::new(
                    ErrorCode::ValidationException,
                    format!("{n} validation {noun} detected: {}", self.0.join("; ")),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_render_as_aws() {
        let mut v = Violations::default();
        v.push(
            "901",
            "timeout",
            "Member must have value less than or equal to 900",
        );
        let e = v.into_result().unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationException);
        assert_eq!(
            e.message,
            "1 validation error detected: Value '901' at 'timeout' failed to satisfy constraint: Member must have value less than or equal to 900"
        );
    }

    #[test]
    fn body_uses_model_casing() {
        let nf = LambdaError::function_not_found("arn:x").body();
        assert_eq!(nf["Message"], "Function not found: arn:x");
        assert_eq!(nf["Type"], "User");
        let ip = LambdaError::invalid_parameter("bad").body();
        assert_eq!(ip["message"], "bad");
    }
}
