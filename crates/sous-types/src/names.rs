//! Function names, qualifiers and ARNs, parsed and validated as Lambda does.
//!
//! Every operation that takes a `FunctionName` accepts four forms: `my-fn`, `my-fn:qual`,
//! `123456789012:function:my-fn[:qual]` and `arn:aws:lambda:us-east-1:123456789012:function:my-fn[:qual]`.

use std::sync::OnceLock;

use regex::Regex;

use crate::error::{LambdaError, Violations};

/// The pattern botocore's model gives for `FunctionName`, quoted in validation messages.
pub const FUNCTION_NAME_PATTERN: &str = r"(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?";
pub const QUALIFIER_PATTERN: &str = r"(|[a-zA-Z0-9$_-]+)";
pub const ROLE_PATTERN: &str = r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+";
/// Longest bare function name.
/// The unpublished version of every function: the one qualifier that names no number.
/// The one definition of the string; every crate uses this constant.
pub const LATEST: &str = "$LATEST";

pub const NAME_MAX: usize = 64;

fn name_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^(arn:(aws[a-zA-Z-]*)?:lambda:)?(?P<region>[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(?P<account>\d{12}:)?(function:)?(?P<name>[a-zA-Z0-9-_]+)(:(?P<qualifier>\$LATEST|[a-zA-Z0-9-_]+))?$")
            .expect("static regex")
    })
}

fn qualifier_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^[a-zA-Z0-9$_-]+$").expect("static regex"))
}

fn role_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")
            .expect("static regex")
    })
}

/// Where Sous runs: the region and account that ARNs name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub region: String,
    pub account: String,
}

impl Scope {
    pub fn new(region: impl Into<String>, account: impl Into<String>) -> Self {
        Self {
            region: region.into(),
            account: account.into(),
        }
    }

    /// `arn:aws:lambda:REGION:ACCOUNT:function:NAME`
    pub fn function_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.region, self.account, name
        )
    }

    /// The ARN with a `:QUALIFIER` suffix when a qualifier is given.
    pub fn qualified_arn(&self, name: &str, qualifier: Option<&str>) -> String {
        match qualifier {
            Some(q) => format!("{}:{q}", self.function_arn(name)),
            None => self.function_arn(name),
        }
    }
}

/// A parsed `FunctionName` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef {
    pub name: String,
    /// A qualifier embedded in the name (`my-fn:3`), if any.
    pub qualifier: Option<String>,
}

/// Parse and validate a `FunctionName` parameter. `max_len` is the model's length limit for
/// the operation (140 for Create/Update, 256 for the rest).
pub fn parse_function_name(
    raw: &str,
    scope: &Scope,
    max_len: usize,
) -> Result<FunctionRef, LambdaError> {
    let mut v = Violations::default();
    if raw.is_empty() {
        v.push(
            raw,
            "functionName",
            "Member must have length greater than or equal to 1",
        );
    } else if raw.len() > max_len {
        v.push(
            raw,
            "functionName",
            &format!("Member must have length less than or equal to {max_len}"),
        );
    }
    let caps = name_re().captures(raw);
    if caps.is_none() && !raw.is_empty() {
        v.push(
            raw,
            "functionName",
            &format!("Member must satisfy regular expression pattern: {FUNCTION_NAME_PATTERN}"),
        );
    }
    v.into_result()?;
    let caps = caps.expect("validated above");
    let name = caps.name("name").map(|m| m.as_str()).unwrap_or_default();
    if let Some(region) = caps.name("region") {
        let region = region.as_str().trim_end_matches(':');
        if region != scope.region {
            return Err(LambdaError::invalid_parameter(format!(
                "Functions from '{region}' are not reachable in this region ('{}')",
                scope.region
            )));
        }
    }
    if let Some(account) = caps.name("account") {
        let account = account.as_str().trim_end_matches(':');
        if account != scope.account {
            return Err(LambdaError::function_not_found(&format!(
                "arn:aws:lambda:{}:{account}:function:{name}",
                scope.region
            )));
        }
    }
    if name.len() > NAME_MAX {
        let mut v = Violations::default();
        v.push(
            name,
            "functionName",
            &format!("Member must have length less than or equal to {NAME_MAX}"),
        );
        v.into_result()?;
    }
    Ok(FunctionRef {
        name: name.to_string(),
        qualifier: caps.name("qualifier").map(|m| m.as_str().to_string()),
    })
}

/// Combine a qualifier embedded in the name with the `Qualifier` query parameter, as Lambda
/// does: both present and different is an error.
pub fn resolve_qualifier(
    embedded: Option<String>,
    query: Option<&str>,
) -> Result<Option<String>, LambdaError> {
    if let Some(q) = query {
        let mut v = Violations::default();
        if q.is_empty() || q.len() > 128 {
            v.push(q, "qualifier", "Member must have length between 1 and 128");
        } else if !qualifier_re().is_match(q) {
            v.push(
                q,
                "qualifier",
                &format!("Member must satisfy regular expression pattern: {QUALIFIER_PATTERN}"),
            );
        }
        v.into_result()?;
    }
    match (embedded, query) {
        (Some(e), Some(q)) if e != q => Err(LambdaError::invalid_parameter(
            "The derived qualifier from the function name does not match the specified qualifier.",
        )),
        (Some(e), _) => Ok(Some(e)),
        (None, q) => Ok(q.map(str::to_string)),
    }
}

/// Whether `role` is an IAM role ARN.
pub fn is_role_arn(role: &str) -> bool {
    role_re().is_match(role)
}

/// Lambda's log stream name for a new environment: `YYYY/MM/DD/[VERSION]32hex`.
pub fn log_stream_name(date: &str, version: &str, id_hex: &str) -> String {
    format!("{date}/[{version}]{id_hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn scope() -> Scope {
        Scope::new("us-east-1", "000000000000")
    }

    #[test]
    fn parses_all_four_forms() {
        let s = scope();
        for (raw, q) in [
            ("my-fn", None),
            ("my-fn:prod", Some("prod")),
            ("000000000000:function:my-fn", None),
            (
                "arn:aws:lambda:us-east-1:000000000000:function:my-fn:$LATEST",
                Some("$LATEST"),
            ),
        ] {
            let r = parse_function_name(raw, &s, 256).unwrap();
            assert_eq!(r.name, "my-fn", "{raw}");
            assert_eq!(r.qualifier.as_deref(), q, "{raw}");
        }
    }

    #[test]
    fn rejects_bad_names() {
        let s = scope();
        let e = parse_function_name("bad name", &s, 140).unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationException);
        assert!(
            e.message.contains("regular expression pattern"),
            "{}",
            e.message
        );
        let e = parse_function_name(&"a".repeat(65), &s, 140).unwrap_err();
        assert!(
            e.message.contains("less than or equal to 64"),
            "{}",
            e.message
        );
        let e = parse_function_name("arn:aws:lambda:eu-west-1:000000000000:function:f", &s, 140)
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterValueException);
    }

    #[test]
    fn qualifier_clash() {
        assert!(resolve_qualifier(Some("1".into()), Some("2")).is_err());
        assert_eq!(
            resolve_qualifier(Some("1".into()), Some("1"))
                .unwrap()
                .as_deref(),
            Some("1")
        );
        assert_eq!(
            resolve_qualifier(None, Some("$LATEST")).unwrap().as_deref(),
            Some("$LATEST")
        );
    }

    #[test]
    fn roles() {
        assert!(is_role_arn("arn:aws:iam::123456789012:role/lambda-role"));
        assert!(!is_role_arn("not-a-role"));
    }
}
