//! Versions and aliases: the wire shapes of PublishVersion, CreateAlias, UpdateAlias and
//! `AliasConfiguration`, and the model's constraints on them (checked before any semantic
//! rule, as AWS's front end does).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::{LambdaError, Violations};
use crate::limits::DESCRIPTION_MAX;

/// The model's pattern for alias names: not all digits.
pub const ALIAS_NAME_PATTERN: &str = "(?!^[0-9]+$)([a-zA-Z0-9-_]+)";
/// The model's pattern for `FunctionVersion` (CreateAlias, UpdateAlias, ListAliases).
pub const VERSION_PATTERN: &str = r"(\$LATEST|[0-9]+)";
/// Longest alias name.
pub const ALIAS_NAME_MAX: usize = 128;

/// `AliasRoutingConfiguration`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct AliasRoutingConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_version_weights: Option<BTreeMap<String, f64>>,
}

impl AliasRoutingConfiguration {
    /// The one additional version and its weight, if any.
    pub fn additional(&self) -> Option<(&str, f64)> {
        self.additional_version_weights
            .as_ref()
            .and_then(|m| m.iter().next())
            .map(|(k, w)| (k.as_str(), *w))
    }
}

/// `AliasConfiguration` exactly as Lambda returns it. Sous stores this shape too.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct AliasConfiguration {
    pub alias_arn: String,
    pub name: String,
    pub function_version: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_config: Option<AliasRoutingConfiguration>,
    pub revision_id: String,
}

impl AliasConfiguration {
    /// The versions this alias routes to: the primary, then the additional one.
    pub fn versions(&self) -> Vec<&str> {
        let mut v = vec![self.function_version.as_str()];
        if let Some((extra, _)) = self.routing_config.as_ref().and_then(|r| r.additional()) {
            v.push(extra);
        }
        v
    }
}

/// PublishVersion's body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublishVersionInput {
    pub code_sha256: Option<String>,
    pub description: Option<String>,
    pub revision_id: Option<String>,
}

/// CreateAlias's body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateAliasInput {
    pub name: Option<String>,
    pub function_version: Option<String>,
    pub description: Option<String>,
    pub routing_config: Option<AliasRoutingConfiguration>,
}

/// UpdateAlias's body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateAliasInput {
    pub function_version: Option<String>,
    pub description: Option<String>,
    pub routing_config: Option<AliasRoutingConfiguration>,
    pub revision_id: Option<String>,
}

fn alias_name_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^[a-zA-Z0-9_-]+$").expect("static regex"))
}

fn version_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^(\$LATEST|[0-9]+)$").expect("static regex"))
}

/// Whether `q` names a published version (`1`, `2`, ...), not `$LATEST` or an alias.
pub fn is_version_number(q: &str) -> bool {
    !q.is_empty() && q.bytes().all(|b| b.is_ascii_digit())
}

/// The model's constraints on an alias name (member `name`).
pub fn check_alias_name(name: &str, v: &mut Violations) {
    if name.is_empty() || name.len() > ALIAS_NAME_MAX {
        v.push(name, "name", "Member must have length between 1 and 128");
    } else if !alias_name_re().is_match(name) || is_version_number(name) {
        v.push(
            name,
            "name",
            &format!("Member must satisfy regular expression pattern: {ALIAS_NAME_PATTERN}"),
        );
    }
}

/// The model's constraints on a `FunctionVersion` member.
pub fn check_function_version(version: &str, v: &mut Violations) {
    if version.is_empty() || version.len() > 1024 {
        v.push(
            version,
            "functionVersion",
            "Member must have length between 1 and 1024",
        );
    } else if !version_re().is_match(version) {
        v.push(
            version,
            "functionVersion",
            &format!("Member must satisfy regular expression pattern: {VERSION_PATTERN}"),
        );
    }
}

/// The model's constraints on a `Description` member.
pub fn check_description(d: Option<&str>, v: &mut Violations) {
    if let Some(d) = d {
        if d.chars().count() > DESCRIPTION_MAX {
            v.push(
                d,
                "description",
                "Member must have length less than or equal to 256",
            );
        }
    }
}

/// The model's constraints on `RoutingConfig.AdditionalVersionWeights`: keys are version
/// numbers, weights lie in 0.0..=1.0. Rendered as AWS renders the map (`{2=1.5}`).
pub fn check_routing_config(r: Option<&AliasRoutingConfiguration>, v: &mut Violations) {
    let Some(weights) = r.and_then(|r| r.additional_version_weights.as_ref()) else {
        return;
    };
    let rendered = format!(
        "{{{}}}",
        weights
            .iter()
            .map(|(k, w)| format!("{k}={w:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if weights.values().any(|w| !(0.0..=1.0).contains(w)) {
        v.push(
            &rendered,
            "routingConfig.additionalVersionWeights",
            "Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0, Member must not be null]",
        );
    }
    if weights
        .keys()
        .any(|k| !is_version_number(k) || k.len() > 1024)
    {
        v.push(
            &rendered,
            "routingConfig.additionalVersionWeights",
            "Map keys must satisfy constraint: [Member must have length less than or equal to 1024, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: [0-9]+, Member must not be null]",
        );
    }
}

/// Lambda's semantic rules for an alias's routing (after the model's constraints): at most
/// one additional version, different from the primary, and no weights on `$LATEST`.
pub fn check_routing_semantics(
    primary: &str,
    routing: Option<&AliasRoutingConfiguration>,
) -> Result<(), LambdaError> {
    let Some(weights) = routing.and_then(|r| r.additional_version_weights.as_ref()) else {
        return Ok(());
    };
    if weights.len() > 1 {
        return Err(LambdaError::invalid_parameter(
            "Number of items in AdditionalVersionWeights cannot be greater than 1",
        ));
    }
    if weights.contains_key(primary) {
        return Err(LambdaError::invalid_parameter(format!(
            "Invalid function version {primary}. Function version {primary} is already included in routing configuration."
        )));
    }
    if !weights.is_empty() && !is_version_number(primary) {
        return Err(LambdaError::invalid_parameter(
            "$LATEST is not supported for an alias pointing to more than 1 version",
        ));
    }
    Ok(())
}

/// A routing configuration with no weights is no routing configuration (`{}` clears it).
pub fn normalize_routing(
    r: Option<AliasRoutingConfiguration>,
) -> Option<AliasRoutingConfiguration> {
    r.filter(|r| {
        r.additional_version_weights
            .as_ref()
            .is_some_and(|m| !m.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn weights(pairs: &[(&str, f64)]) -> AliasRoutingConfiguration {
        AliasRoutingConfiguration {
            additional_version_weights: Some(
                pairs.iter().map(|(k, w)| (k.to_string(), *w)).collect(),
            ),
        }
    }

    fn violations(f: impl FnOnce(&mut Violations)) -> Option<LambdaError> {
        let mut v = Violations::default();
        f(&mut v);
        v.into_result().err()
    }

    #[test]
    fn alias_names() {
        for ok in ["live", "v1", "a-b_c", "1a"] {
            assert!(violations(|v| check_alias_name(ok, v)).is_none(), "{ok}");
        }
        for bad in ["123", "", "a b", "a:b", &"a".repeat(129)] {
            let e = violations(|v| check_alias_name(bad, v)).expect(bad);
            assert_eq!(e.code, ErrorCode::ValidationException);
            assert!(e.message.contains("at 'name'"), "{}", e.message);
        }
    }

    #[test]
    fn function_versions() {
        for ok in ["$LATEST", "1", "42"] {
            assert!(violations(|v| check_function_version(ok, v)).is_none());
        }
        let e = violations(|v| check_function_version("live", v)).unwrap();
        assert!(e.message.contains("'functionVersion'"), "{}", e.message);
    }

    #[test]
    fn routing_shapes() {
        let e = violations(|v| check_routing_config(Some(&weights(&[("2", 1.5)])), v)).unwrap();
        assert_eq!(
            e.message,
            "1 validation error detected: Value '{2=1.5}' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0, Member must not be null]"
        );
        assert!(violations(|v| check_routing_config(Some(&weights(&[("x", 0.5)])), v)).is_some());
        assert!(violations(|v| check_routing_config(Some(&weights(&[("2", 1.0)])), v)).is_none());
        assert!(violations(|v| check_routing_config(Some(&weights(&[("2", 0.0)])), v)).is_none());
    }

    #[test]
    fn routing_rules() {
        check_routing_semantics("1", Some(&weights(&[("2", 0.5)]))).unwrap();
        check_routing_semantics("$LATEST", None).unwrap();
        check_routing_semantics("$LATEST", Some(&weights(&[]))).unwrap();
        let e =
            check_routing_semantics("1", Some(&weights(&[("2", 0.1), ("3", 0.1)]))).unwrap_err();
        assert!(e.message.contains("cannot be greater than 1"));
        let e = check_routing_semantics("2", Some(&weights(&[("2", 0.1)]))).unwrap_err();
        assert_eq!(
            e.message,
            "Invalid function version 2. Function version 2 is already included in routing configuration."
        );
        let e = check_routing_semantics("$LATEST", Some(&weights(&[("2", 0.1)]))).unwrap_err();
        assert!(e.message.starts_with("$LATEST is not supported"));
        assert_eq!(normalize_routing(Some(weights(&[]))), None);
        assert_eq!(
            normalize_routing(Some(AliasRoutingConfiguration::default())),
            None
        );
        assert!(normalize_routing(Some(weights(&[("2", 0.1)]))).is_some());
    }
}
