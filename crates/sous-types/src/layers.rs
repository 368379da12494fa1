//! Lambda layers: the wire shapes of the layer operations (PublishLayerVersion,
//! GetLayerVersion[ByArn], ListLayers, ListLayerVersions, the layer version policy) and of
//! `Layers` in a function's configuration, with the model's constraints as Lambda's front end
//! checks them. No I/O.

use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::{LambdaError, Violations};
use crate::names::Scope;

/// Most layers a function may reference.
pub const FUNCTION_LAYERS_MAX: usize = 5;
/// Page size of ListLayers / ListLayerVersions when MaxItems is not given, and its maximum.
pub const LIST_LAYERS_PAGE: usize = 50;

/// The `Runtime` enum of Lambda's model (what CompatibleRuntimes may name).
pub const RUNTIME_ENUM: &[&str] = &[
    "nodejs",
    "nodejs4.3",
    "nodejs6.10",
    "nodejs8.10",
    "nodejs10.x",
    "nodejs12.x",
    "nodejs14.x",
    "nodejs16.x",
    "nodejs18.x",
    "nodejs20.x",
    "nodejs22.x",
    "nodejs24.x",
    "java8",
    "java8.al2",
    "java11",
    "java17",
    "java21",
    "java25",
    "python2.7",
    "python3.6",
    "python3.7",
    "python3.8",
    "python3.9",
    "python3.10",
    "python3.11",
    "python3.12",
    "python3.13",
    "python3.14",
    "dotnetcore1.0",
    "dotnetcore2.0",
    "dotnetcore2.1",
    "dotnetcore3.1",
    "dotnet6",
    "dotnet8",
    "dotnet10",
    "nodejs4.3-edge",
    "go1.x",
    "ruby2.5",
    "ruby2.7",
    "ruby3.2",
    "ruby3.3",
    "ruby3.4",
    "ruby4.0",
    "provided",
    "provided.al2",
    "provided.al2023",
    "nodejs26.x",
    "python3.15",
    "java8.al2023",
    "java11.al2023",
    "java17.al2023",
    "custom",
];
/// The `Architecture` enum.
pub const ARCHITECTURE_ENUM: &[&str] = &["x86_64", "arm64"];

/// The pattern Lambda's front end checks each `Layers` entry of a function against (as its
/// ValidationException prints it).
pub const FUNCTION_LAYER_PATTERN: &str = r"(arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)";
/// `LayerNameOrArn` (the `{LayerName}` path label).
pub const LAYER_NAME_PATTERN: &str = r"(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:layer:[a-zA-Z0-9-_]{1,140}|[a-zA-Z0-9-_]{1,140})";
/// `LayerVersionArn` (GetLayerVersionByArn's `Arn`).
pub const LAYER_VERSION_ARN_PATTERN: &str = r"((arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+))";
const STATEMENT_ID_PATTERN: &str = "([a-zA-Z0-9-_]+)";
const ACTION_PATTERN: &str = "lambda:GetLayerVersion";
const PRINCIPAL_PATTERN: &str = r"\d{12}|\*|arn:(aws[a-zA-Z-]*):iam::\d{12}:root";
const ORGANIZATION_PATTERN: &str = "o-[a-z0-9]{10,32}";

fn full(pattern: &str) -> Regex {
    Regex::new(&format!("^(?:{pattern})$")).expect("static regex")
}

macro_rules! cached_re {
    ($name:ident, $pattern:expr) => {
        fn $name() -> &'static Regex {
            static RE: OnceLock<Regex> = OnceLock::new();
            RE.get_or_init(|| full($pattern))
        }
    };
}
cached_re!(function_layer_re, FUNCTION_LAYER_PATTERN);
cached_re!(layer_name_re, LAYER_NAME_PATTERN);
cached_re!(layer_version_arn_re, LAYER_VERSION_ARN_PATTERN);
cached_re!(statement_id_re, STATEMENT_ID_PATTERN);
cached_re!(action_re, ACTION_PATTERN);
cached_re!(principal_re, PRINCIPAL_PATTERN);
cached_re!(organization_re, ORGANIZATION_PATTERN);

/// `Content` of PublishLayerVersion.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LayerVersionContentInput {
    pub zip_file: Option<String>,
    pub s3_bucket: Option<String>,
    pub s3_key: Option<String>,
    pub s3_object_version: Option<String>,
}

/// PublishLayerVersion's body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublishLayerVersionInput {
    pub description: Option<String>,
    pub content: Option<LayerVersionContentInput>,
    pub compatible_runtimes: Option<Vec<String>>,
    pub compatible_architectures: Option<Vec<String>>,
    pub license_info: Option<String>,
}

/// AddLayerVersionPermission's body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddLayerVersionPermissionInput {
    pub statement_id: Option<String>,
    pub action: Option<String>,
    pub principal: Option<String>,
    pub organization_id: Option<String>,
}

/// `Content` of a layer version as Lambda returns it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct LayerVersionContentOutput {
    pub location: String,
    pub code_sha256: String,
    pub code_size: u64,
}

/// GetLayerVersion's (and PublishLayerVersion's) response.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct LayerVersion {
    pub content: LayerVersionContentOutput,
    pub layer_arn: String,
    pub layer_version_arn: String,
    pub description: String,
    pub created_date: String,
    pub version: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub compatible_runtimes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license_info: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub compatible_architectures: Vec<String>,
}

/// One version in ListLayerVersions (and ListLayers' `LatestMatchingVersion`).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct LayerVersionsListItem {
    pub layer_version_arn: String,
    pub version: u64,
    pub description: String,
    pub created_date: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub compatible_runtimes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license_info: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub compatible_architectures: Vec<String>,
}

/// One layer in ListLayers.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct LayersListItem {
    pub layer_name: String,
    pub layer_arn: String,
    pub latest_matching_version: LayerVersionsListItem,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ListLayersOutput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    pub layers: Vec<LayersListItem>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ListLayerVersionsOutput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    pub layer_versions: Vec<LayerVersionsListItem>,
}

/// AddLayerVersionPermission's response.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct AddLayerVersionPermissionOutput {
    pub statement: String,
    pub revision_id: String,
}

/// GetLayerVersionPolicy's response.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct LayerVersionPolicy {
    pub policy: String,
    pub revision_id: String,
}

/// One statement of a layer version's resource-based policy, as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LayerStatement {
    pub sid: String,
    pub action: String,
    pub principal: String,
    pub organization_id: Option<String>,
}

impl LayerStatement {
    /// The statement as IAM JSON, in Lambda's member order (`Principal` `*` or
    /// `{"AWS":"arn:aws:iam::ACCOUNT:root"}`; an organization as a `Condition`).
    pub fn to_json(&self, resource: &str) -> String {
        let q = |s: &str| serde_json::Value::from(s).to_string();
        let principal = if self.principal == "*" {
            q("*")
        } else if self.principal.len() == 12 && self.principal.bytes().all(|b| b.is_ascii_digit()) {
            format!(
                r#"{{"AWS":{}}}"#,
                q(&format!("arn:aws:iam::{}:root", self.principal))
            )
        } else {
            format!(r#"{{"AWS":{}}}"#, q(&self.principal))
        };
        let condition = match &self.organization_id {
            Some(org) => format!(
                r#","Condition":{{"StringEquals":{{"aws:PrincipalOrgID":{}}}}}"#,
                q(org)
            ),
            None => String::new(),
        };
        format!(
            r#"{{"Sid":{},"Effect":"Allow","Principal":{principal},"Action":{},"Resource":{}{condition}}}"#,
            q(&self.sid),
            q(&self.action),
            q(resource)
        )
    }
}

/// The policy document of a layer version: `{"Version","Id":"default","Statement":[...]}`.
pub fn policy_document(statements: &[LayerStatement], resource: &str) -> String {
    let list: Vec<String> = statements.iter().map(|s| s.to_json(resource)).collect();
    format!(
        r#"{{"Version":"2012-10-17","Id":"default","Statement":[{}]}}"#,
        list.join(",")
    )
}

/// A layer as a function's configuration shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionLayer {
    pub arn: String,
    pub code_size: u64,
}

/// A parsed layer version ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerVersionRef {
    pub region: String,
    pub account: String,
    pub name: String,
    pub version: u64,
}

/// `arn:aws:lambda:REGION:ACCOUNT:layer:NAME`
pub fn layer_arn(scope: &Scope, name: &str) -> String {
    format!(
        "arn:aws:lambda:{}:{}:layer:{name}",
        scope.region, scope.account
    )
}

/// `arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION`
pub fn layer_version_arn(scope: &Scope, name: &str, version: u64) -> String {
    format!("{}:{version}", layer_arn(scope, name))
}

/// Split a layer version ARN that matched its pattern. `None` for the `awslayer` form (no
/// such layers on Sous) or a version number too large.
pub fn parse_layer_version_arn(arn: &str) -> Option<LayerVersionRef> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "lambda", region, account, "layer", name, version] => Some(LayerVersionRef {
            region: region.to_string(),
            account: account.to_string(),
            name: name.to_string(),
            version: version.parse().ok()?,
        }),
        _ => None,
    }
}

/// The `{LayerName}` label: checked against the model (ValidationException, member
/// `layerName`); an ARN is reduced to the name when it names this region and account.
/// `Ok(None)`: a well-formed ARN of another region or account (no such layer here).
pub fn check_layer_name(label: &str, scope: &Scope) -> Result<Option<String>, LambdaError> {
    let mut v = Violations::default();
    if label.len() > 2048 {
        v.push(
            label,
            "layerName",
            "Member must have length less than or equal to 2048",
        );
    } else if !layer_name_re().is_match(label) {
        v.push(
            label,
            "layerName",
            &format!("Member must satisfy regular expression pattern: {LAYER_NAME_PATTERN}"),
        );
    }
    v.into_result()?;
    match label.strip_prefix("arn:") {
        None => Ok(Some(label.to_string())),
        Some(_) => {
            let parts: Vec<&str> = label.split(':').collect();
            // arn:PARTITION:lambda:REGION:ACCOUNT:layer:NAME
            let ours = parts.get(3) == Some(&scope.region.as_str())
                && parts.get(4) == Some(&scope.account.as_str());
            Ok(ours.then(|| parts[6].to_string()))
        }
    }
}

/// GetLayerVersionByArn's `Arn` against the model (member `arn`).
pub fn check_layer_version_arn(arn: &str) -> Result<(), LambdaError> {
    let mut v = Violations::default();
    if arn.len() > 2048 {
        v.push(
            arn,
            "arn",
            "Member must have length less than or equal to 2048",
        );
    } else if !layer_version_arn_re().is_match(arn) {
        v.push(
            arn,
            "arn",
            &format!("Member must satisfy regular expression pattern: {LAYER_VERSION_ARN_PATTERN}"),
        );
    }
    v.into_result()
}

/// A function's `Layers` against the model: each entry's length and pattern
/// (ValidationException, member `layers`, the whole list as the value), as Lambda prints it.
pub fn check_function_layers(layers: &[String], v: &mut Violations) {
    let bad = layers
        .iter()
        .any(|l| l.is_empty() || l.len() > 140 || !function_layer_re().is_match(l));
    if bad {
        v.push(
            &format!("[{}]", layers.join(", ")),
            "layers",
            &format!(
                "Member must satisfy constraint: [Member must have length less than or equal to 140, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: {FUNCTION_LAYER_PATTERN}]"
            ),
        );
    }
}

/// The semantic checks of a function's `Layers` that need no store: at most five, and no
/// two versions of one layer (InvalidParameterValueException).
pub fn check_function_layer_list(layers: &[String]) -> Result<(), LambdaError> {
    if layers.len() > FUNCTION_LAYERS_MAX {
        return Err(LambdaError::invalid_parameter(
            "Cannot reference more than 5 layers.",
        ));
    }
    for (i, a) in layers.iter().enumerate() {
        for b in &layers[i + 1..] {
            let base = |s: &str| s.rsplit_once(':').map(|(l, _)| l.to_string());
            if base(a) == base(b) {
                return Err(LambdaError::invalid_parameter(format!(
                    "Two different versions of the same layer are not allowed to be referenced in the same function. {a} and {b} are versions of the same layer."
                )));
            }
        }
    }
    Ok(())
}

/// PublishLayerVersion's body against the model.
pub fn check_publish_input(input: &PublishLayerVersionInput) -> Result<(), LambdaError> {
    let mut v = Violations::default();
    if input.content.is_none() {
        v.push_null("content");
    }
    if let Some(d) = &input.description {
        if d.chars().count() > 256 {
            v.push(
                d,
                "description",
                "Member must have length less than or equal to 256",
            );
        }
    }
    if let Some(l) = &input.license_info {
        if l.chars().count() > 512 {
            v.push(
                l,
                "licenseInfo",
                "Member must have length less than or equal to 512",
            );
        }
    }
    if let Some(r) = &input.compatible_runtimes {
        check_enum_list(r, "compatibleRuntimes", 15, RUNTIME_ENUM, &mut v);
    }
    if let Some(a) = &input.compatible_architectures {
        check_enum_list(a, "compatibleArchitectures", 2, ARCHITECTURE_ENUM, &mut v);
    }
    v.into_result()
}

fn check_enum_list(
    list: &[String],
    member: &str,
    max: usize,
    allowed: &[&str],
    v: &mut Violations,
) {
    let shown = format!("[{}]", list.join(", "));
    if list.len() > max {
        v.push(
            &shown,
            member,
            &format!("Member must have length less than or equal to {max}"),
        );
    }
    if list.iter().any(|x| !allowed.contains(&x.as_str())) {
        v.push(
            &shown,
            member,
            &format!(
                "Member must satisfy constraint: [Member must satisfy enum value set: [{}]]",
                allowed.join(", ")
            ),
        );
    }
}

/// A `CompatibleRuntime` / `CompatibleArchitecture` filter of the list operations.
pub fn check_filter(value: &str, member: &str, allowed: &[&str], v: &mut Violations) {
    if !allowed.contains(&value) {
        v.push(
            value,
            member,
            &format!(
                "Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            ),
        );
    }
}

/// AddLayerVersionPermission's body against the model.
pub fn check_permission_input(input: &AddLayerVersionPermissionInput) -> Result<(), LambdaError> {
    let mut v = Violations::default();
    match input.statement_id.as_deref() {
        None => v.push_null("statementId"),
        Some(s) => check_statement_id(s, &mut v),
    }
    match input.action.as_deref() {
        None => v.push_null("action"),
        Some(a) if a.len() > 22 || !action_re().is_match(a) => v.push(
            a,
            "action",
            &format!("Member must satisfy regular expression pattern: {ACTION_PATTERN}"),
        ),
        Some(_) => {}
    }
    match input.principal.as_deref() {
        None => v.push_null("principal"),
        Some(p) if !principal_re().is_match(p) => v.push(
            p,
            "principal",
            &format!("Member must satisfy regular expression pattern: {PRINCIPAL_PATTERN}"),
        ),
        Some(_) => {}
    }
    if let Some(o) = input.organization_id.as_deref() {
        if o.len() > 34 || !organization_re().is_match(o) {
            v.push(
                o,
                "organizationId",
                &format!("Member must satisfy regular expression pattern: {ORGANIZATION_PATTERN}"),
            );
        }
    }
    v.into_result()
}

/// `StatementId` (body or path label).
pub fn check_statement_id(s: &str, v: &mut Violations) {
    if s.is_empty() || s.len() > 100 {
        v.push(
            s,
            "statementId",
            "Member must have length less than or equal to 100",
        );
    } else if !statement_id_re().is_match(s) {
        v.push(
            s,
            "statementId",
            &format!("Member must satisfy regular expression pattern: {STATEMENT_ID_PATTERN}"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn scope() -> Scope {
        Scope::new("us-east-1", "000000000000")
    }

    #[test]
    fn layer_names_and_arns() {
        assert_eq!(
            check_layer_name("my-layer", &scope()).unwrap().as_deref(),
            Some("my-layer")
        );
        assert_eq!(
            check_layer_name("arn:aws:lambda:us-east-1:000000000000:layer:x", &scope())
                .unwrap()
                .as_deref(),
            Some("x")
        );
        assert_eq!(
            check_layer_name("arn:aws:lambda:us-west-2:000000000000:layer:x", &scope()).unwrap(),
            None
        );
        let e = check_layer_name("bad name", &scope()).unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationException);
        assert!(e.message.contains("'layerName'"), "{}", e.message);
        let r = parse_layer_version_arn("arn:aws:lambda:us-east-1:000000000000:layer:x:3").unwrap();
        assert_eq!((r.name.as_str(), r.version), ("x", 3));
        assert_eq!(
            layer_version_arn(&scope(), "x", 3),
            "arn:aws:lambda:us-east-1:000000000000:layer:x:3"
        );
        check_layer_version_arn("arn:aws:lambda:us-east-1:000000000000:layer:x:3").unwrap();
        assert!(check_layer_version_arn("arn:aws:lambda:us-east-1:000000000000:layer:x").is_err());
    }

    #[test]
    fn function_layer_lists() {
        let mut v = Violations::default();
        check_function_layers(&["nope".into()], &mut v);
        let e = v.into_result().unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationException);
        assert!(
            e.message.contains("Value '[nope]' at 'layers'"),
            "{}",
            e.message
        );
        let arns: Vec<String> = (1..=6)
            .map(|i| format!("arn:aws:lambda:us-east-1:000000000000:layer:l{i}:1"))
            .collect();
        assert_eq!(
            check_function_layer_list(&arns).unwrap_err().message,
            "Cannot reference more than 5 layers."
        );
        check_function_layer_list(&arns[..5]).unwrap();
        let same = [
            "arn:aws:lambda:us-east-1:000000000000:layer:a:1".to_string(),
            "arn:aws:lambda:us-east-1:000000000000:layer:a:2".to_string(),
        ];
        assert!(check_function_layer_list(&same)
            .unwrap_err()
            .message
            .starts_with("Two different versions of the same layer"));
    }

    #[test]
    fn publish_and_permission_inputs() {
        let e = check_publish_input(&PublishLayerVersionInput {
            compatible_runtimes: Some(vec!["cobol".into()]),
            compatible_architectures: Some(vec!["x86_64".into(), "arm64".into(), "mips".into()]),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            e.message.starts_with("4 validation errors"),
            "{}",
            e.message
        );
        let ok = AddLayerVersionPermissionInput {
            statement_id: Some("xaccount".into()),
            action: Some("lambda:GetLayerVersion".into()),
            principal: Some("123456789012".into()),
            organization_id: None,
        };
        check_permission_input(&ok).unwrap();
        let bad = AddLayerVersionPermissionInput {
            action: Some("lambda:InvokeFunction".into()),
            ..ok.clone()
        };
        assert!(check_permission_input(&bad).is_err());
        let s = LayerStatement {
            sid: "xaccount".into(),
            action: "lambda:GetLayerVersion".into(),
            principal: "123456789012".into(),
            organization_id: None,
        };
        assert_eq!(
            s.to_json("arn:r"),
            r#"{"Sid":"xaccount","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"lambda:GetLayerVersion","Resource":"arn:r"}"#
        );
    }
}
