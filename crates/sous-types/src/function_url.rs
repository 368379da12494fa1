//! Function URL configurations (`CreateFunctionUrlConfig` and friends): the wire shapes of
//! the Lambda API, the model's constraints on them (botocore's `lambda` service model), the
//! URL id and the CORS rules the HTTP front door applies. No I/O.

use serde::{Deserialize, Serialize};

use crate::error::Violations;
use crate::LambdaError;

/// `AuthType` of a function URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthType {
    /// Public: anyone who knows the URL can invoke the function.
    #[serde(rename = "NONE")]
    None,
    /// Requests must carry a SigV4 signature (service `lambda`) of a known key pair.
    #[serde(rename = "AWS_IAM")]
    AwsIam,
}

/// `InvokeMode` of a function URL. Sous serves `BUFFERED` only.
pub const INVOKE_MODE_BUFFERED: &str = "BUFFERED";

/// `Cors`: the cross-origin settings the front door applies to a function URL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Cors {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_credentials: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_headers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_methods: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_origins: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expose_headers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
}

/// The body of `CreateFunctionUrlConfig` and `UpdateFunctionUrlConfig`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionUrlConfigInput {
    pub auth_type: Option<String>,
    pub cors: Option<Cors>,
    pub invoke_mode: Option<String>,
}

/// A stored function URL configuration, as `GetFunctionUrlConfig` answers it.
/// `CreateFunctionUrlConfig` answers the same without `LastModifiedTime`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionUrlConfig {
    pub function_url: String,
    pub function_arn: String,
    pub auth_type: AuthType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors: Option<Cors>,
    pub creation_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_modified_time: Option<String>,
    pub invoke_mode: String,
}

/// `ListFunctionUrlConfigs`' answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListFunctionUrlConfigsOutput {
    pub function_url_configs: Vec<FunctionUrlConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

/// A new URL id: 32 lowercase alphanumerics, as Lambda's `<url-id>`.
pub fn new_url_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Whether `s` has the shape of a URL id (32 lowercase alphanumerics).
pub fn is_url_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// `FunctionUrlQualifier`: 1..=128 of `[0-9a-zA-Z-_]`, not all digits — an alias name
/// (`$LATEST` and version numbers do not match, as on Lambda).
pub fn check_qualifier(q: &str, v: &mut Violations) {
    let ok = (1..=128).contains(&q.len())
        && q.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !q.bytes().all(|b| b.is_ascii_digit());
    if !ok {
        v.push(
            q,
            "qualifier",
            r"Member must satisfy regular expression pattern: ((?!^\d+$)^[0-9a-zA-Z-_]+$)",
        );
    }
}

/// The model's constraints on a Create/Update body. `create`: `AuthType` is required.
/// Returns the parsed auth type (if given) and invoke mode (if given).
pub fn check_input(
    input: &FunctionUrlConfigInput,
    qualifier: Option<&str>,
    create: bool,
) -> Result<(Option<AuthType>, Option<String>), LambdaError> {
    let mut v = Violations::default();
    if let Some(q) = qualifier {
        check_qualifier(q, &mut v);
    }
    let auth = match input.auth_type.as_deref() {
        None => {
            if create {
                v.push_null("authType");
            }
            None
        }
        Some("NONE") => Some(AuthType::None),
        Some("AWS_IAM") => Some(AuthType::AwsIam),
        Some(other) => {
            v.push(
                other,
                "authType",
                "Member must satisfy enum value set: [AWS_IAM, NONE]",
            );
            None
        }
    };
    let mode = match input.invoke_mode.as_deref() {
        None => None,
        Some(m @ ("BUFFERED" | "RESPONSE_STREAM")) => Some(m.to_string()),
        Some(other) => {
            v.push(
                other,
                "invokeMode",
                "Member must satisfy enum value set: [RESPONSE_STREAM, BUFFERED]",
            );
            None
        }
    };
    if let Some(c) = &input.cors {
        check_cors(c, &mut v);
    }
    v.into_result()?;
    if mode.as_deref() == Some("RESPONSE_STREAM") {
        return Err(LambdaError::invalid_parameter(
            "InvokeMode RESPONSE_STREAM is not supported by Sous: function URLs answer with buffered responses only (InvokeMode BUFFERED).",
        ));
    }
    Ok((auth, mode))
}

fn check_cors(c: &Cors, v: &mut Violations) {
    let list = |v: &mut Violations,
                items: &Option<Vec<String>>,
                member: &str,
                max: usize,
                item_max: usize,
                item_min: usize| {
        if let Some(items) = items {
            if items.len() > max {
                v.push(
                    &format!("[{}]", items.join(", ")),
                    member,
                    &format!("Member must have length less than or equal to {max}"),
                );
            }
            for (i, it) in items.iter().enumerate() {
                if it.len() > item_max {
                    v.push(
                        it,
                        &format!("{member}.{}", i + 1),
                        &format!("Member must have length less than or equal to {item_max}"),
                    );
                } else if it.len() < item_min {
                    v.push(
                        it,
                        &format!("{member}.{}", i + 1),
                        &format!("Member must have length greater than or equal to {item_min}"),
                    );
                }
            }
        }
    };
    list(v, &c.allow_headers, "cors.allowHeaders", 100, 1024, 0);
    list(v, &c.allow_methods, "cors.allowMethods", 6, 6, 0);
    list(v, &c.allow_origins, "cors.allowOrigins", 100, 253, 1);
    list(v, &c.expose_headers, "cors.exposeHeaders", 100, 1024, 0);
    if let Some(age) = c.max_age {
        if age < 0 {
            v.push(
                &age.to_string(),
                "cors.maxAge",
                "Member must have value greater than or equal to 0",
            );
        } else if age > 86_400 {
            v.push(
                &age.to_string(),
                "cors.maxAge",
                "Member must have value less than or equal to 86400",
            );
        }
    }
}

impl Cors {
    /// The `Access-Control-Allow-Origin` value for a request from `origin`, or `None` when
    /// the origin is not allowed (no CORS headers are sent then).
    pub fn allowed_origin(&self, origin: &str) -> Option<String> {
        let origins = self.allow_origins.as_deref().unwrap_or_default();
        if origins.iter().any(|o| o == "*") {
            // With credentials a browser refuses `*`: echo the origin instead.
            return Some(if self.allow_credentials == Some(true) {
                origin.to_string()
            } else {
                "*".to_string()
            });
        }
        origins
            .iter()
            .find(|o| o.eq_ignore_ascii_case(origin))
            .map(|_| origin.to_string())
    }

    /// Whether a preflight for `method` is allowed.
    pub fn allows_method(&self, method: &str) -> bool {
        self.allow_methods
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|m| m == "*" || m.eq_ignore_ascii_case(method))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_ids_are_32_lowercase_alphanumerics() {
        let id = new_url_id();
        assert!(is_url_id(&id), "{id}");
        assert!(!is_url_id("ABCDEF0123456789abcdef0123456789"));
        assert!(!is_url_id("abc"));
    }

    #[test]
    fn qualifier_must_be_an_alias_name() {
        for ok in ["live", "prod-1", "a_b"] {
            let mut v = Violations::default();
            check_qualifier(ok, &mut v);
            assert!(v.into_result().is_ok(), "{ok}");
        }
        for bad in ["$LATEST", "1", "42", "a b", ""] {
            let mut v = Violations::default();
            check_qualifier(bad, &mut v);
            assert!(v.into_result().is_err(), "{bad}");
        }
    }

    #[test]
    fn input_rules() {
        let input = FunctionUrlConfigInput::default();
        let e = check_input(&input, None, true).unwrap_err();
        assert!(e.message.contains("authType"), "{}", e.message);
        assert!(check_input(&input, None, false).is_ok());
        let input = FunctionUrlConfigInput {
            auth_type: Some("IAM".into()),
            ..Default::default()
        };
        let e = check_input(&input, None, true).unwrap_err();
        assert!(e.message.contains("[AWS_IAM, NONE]"), "{}", e.message);
        let input = FunctionUrlConfigInput {
            auth_type: Some("NONE".into()),
            invoke_mode: Some("RESPONSE_STREAM".into()),
            ..Default::default()
        };
        let e = check_input(&input, None, true).unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::InvalidParameterValueException);
        let input = FunctionUrlConfigInput {
            auth_type: Some("NONE".into()),
            cors: Some(Cors {
                max_age: Some(86_401),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(check_input(&input, None, true).is_err());
    }

    #[test]
    fn cors_origins() {
        let c = Cors {
            allow_origins: Some(vec!["https://a.example".into()]),
            allow_methods: Some(vec!["GET".into()]),
            ..Default::default()
        };
        assert_eq!(
            c.allowed_origin("https://a.example").as_deref(),
            Some("https://a.example")
        );
        assert_eq!(c.allowed_origin("https://b.example"), None);
        assert!(c.allows_method("get"));
        assert!(!c.allows_method("POST"));
        let any = Cors {
            allow_origins: Some(vec!["*".into()]),
            ..Default::default()
        };
        assert_eq!(any.allowed_origin("https://x").as_deref(), Some("*"));
    }
}
