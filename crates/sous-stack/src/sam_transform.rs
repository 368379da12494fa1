//! The SAM transform: the `AWS::Serverless::*` resources of a resolved template become the
//! plain CloudFormation resources SAM generates for them, with the logical ids SAM gives them
//! (the SAM developer guide's "Generated CloudFormation resources" pages), so the engine only
//! ever creates plain resources. Pure translation, no I/O.
//!
//! What is generated:
//! - `AWS::Serverless::Function` → `AWS::Lambda::Function` (same id); `<Fn>Role`
//!   (`AWS::IAM::Role`, with the function's `Policies` recorded) when no `Role` is given;
//!   with `AutoPublishAlias`, `<Fn>Version<sha>` (`AWS::Lambda::Version`, `<sha>` the first
//!   10 hex digits of the SHA-256 of the function's code location and properties) and
//!   `<Fn>Alias<alias>` (`AWS::Lambda::Alias`); `<Fn>EventInvokeConfig`; `<Fn>Url` (+
//!   `<Fn>UrlPublicPermissions` when its AuthType is NONE); per event `<Fn><Event>...`.
//!   A local `CodeUri` stays a `CodeUri` property of the function for the packager to turn
//!   into `Code`; an `s3://bucket/key` URI or a `{Bucket, Key, Version}` object becomes `Code`.
//!   The version's hash follows the code location, so a packager that rewrites `CodeUri` to
//!   a content-addressed location before the transform (as `sam package` does) gets a new
//!   version id when the code changes.
//! - Events `HttpApi` and `Api` add routes to the implicit `ServerlessHttpApi` /
//!   `ServerlessRestApi` (created once for all functions) or to the API named by
//!   `ApiId` / `RestApiId`. SAM writes routes into the API's OpenAPI body; Sous generates
//!   them as resources so a plan can change one route: `<Fn><Event>Integration`
//!   (`AWS::ApiGatewayV2::Integration`), `<Fn><Event>Route` (`AWS::ApiGatewayV2::Route`) and,
//!   as SAM does, `<Fn><Event>Permission` (`AWS::Lambda::Permission`, SourceArn
//!   `arn:aws:execute-api:<region>:<account>:<api>/*`).
//! - REST APIs (`AWS::Serverless::Api` and the implicit `ServerlessRestApi`) are served as
//!   HTTP APIs with payload format 1.0, as `sam local start-api` does: the generated
//!   `AWS::ApiGatewayV2::Api` records it in `SousServedAs` (the SAM type it comes from) and
//!   `SousPayloadFormatVersion: "1.0"`, and its integrations use payload format 1.0.
//! - `Schedule` and `ScheduleV2` events → `<Fn><Event>` (`AWS::Events::Rule`, target
//!   `<Fn><Event>LambdaTarget`) + `<Fn><Event>Permission`.
//! - `AWS::Serverless::LayerVersion` → `AWS::Lambda::LayerVersion` (same id);
//!   `AWS::Serverless::HttpApi` / `Api` → `AWS::ApiGatewayV2::Api` (same id) + a stage
//!   (`<Api>ApiGatewayDefaultStage` for `$default`, else `<Api><StageName>Stage`);
//!   `AWS::Serverless::SimpleTable` → `AWS::DynamoDB::Table` (same id).
//!
//! - API Gateway authorizers are not run: an event's `Auth` other than `{Authorizer: NONE}`
//!   and an API's `Auth` are errors, so a protected route is never served open. REST-only
//!   API settings (BinaryMediaTypes, EndpointConfiguration, ...) are kept in
//!   `SousRestProperties`, not applied.
//!
//! References to SAM's referenceable properties (`Fn.Alias`, `Fn.Version`, `Api.Stage`) are
//! rewritten to the generated ids; every reference must name a resource of the result.
//! Unknown `AWS::Serverless::*` types, unknown properties and unsupported event types are
//! errors at the resource's position.

use indexmap::IndexMap;
use sha2::{Digest, Sha256};

use crate::error::{ErrorKind, Loc, TemplateError};
use crate::resolve::{order, ResolvedTemplate, Resource, Settings, SAM_TRANSFORM};
use crate::value::{Part, Value};

type R<T> = Result<T, TemplateError>;

/// Properties of `AWS::Serverless::Api` that only a REST API has: recorded on the HTTP API
/// Sous serves instead, in `SousRestProperties`.
const REST_ONLY: &[&str] = &[
    "EndpointConfiguration",
    "BinaryMediaTypes",
    "OpenApiVersion",
    "MinimumCompressionSize",
    "TracingEnabled",
    "MethodSettings",
    "AccessLogSetting",
    "CacheClusterEnabled",
    "CacheClusterSize",
];
const IMPLICIT_HTTP_API: &str = "ServerlessHttpApi";
const IMPLICIT_REST_API: &str = "ServerlessRestApi";

/// `t` with its SAM resources replaced by the plain resources SAM generates, references to
/// SAM's generated names rewritten, dependencies and order recomputed, and `implicit`
/// emptied (every generated name is now a resource). A template without SAM resources
/// comes back unchanged (apart from that recomputation).
pub fn transform(t: &ResolvedTemplate, file: &str, settings: &Settings) -> R<ResolvedTemplate> {
    let sam = t.transforms.iter().any(|x| x == SAM_TRANSFORM);
    let mut tx = Tx {
        file,
        out: IndexMap::new(),
        renames: IndexMap::new(),
        sam_ids: t.resources.keys().cloned().collect(),
        template: t,
        settings,
    };
    for r in t.resources.values() {
        if r.resource_type.starts_with("AWS::Serverless::") {
            if !sam {
                return Err(tx.err(
                    r,
                    "Type",
                    ErrorKind::Structure,
                    format!("{} needs 'Transform: {SAM_TRANSFORM}'", r.resource_type),
                ));
            }
            tx.serverless(r)?;
        } else {
            tx.add(r, r.clone())?;
        }
    }
    let Tx {
        mut out, renames, ..
    } = tx;

    // Rewrite references and recompute dependencies.
    let ids: Vec<String> = out.keys().cloned().collect();
    for r in out.values_mut() {
        let mut props = Value::Map(std::mem::take(&mut r.properties));
        rename(&mut props, &renames);
        let Value::Map(props) = props else {
            unreachable!("a map stays a map")
        };
        r.properties = props;
        let mut deps = Vec::new();
        for d in Value::Map(r.properties.clone())
            .references()
            .into_iter()
            .chain(r.depends_on.iter().cloned())
        {
            if !ids.contains(&d) {
                return Err(missing(file, r, &d));
            }
            if d != r.logical_id && !deps.contains(&d) {
                deps.push(d);
            }
        }
        r.dependencies = deps;
    }
    let mut outputs = t.outputs.clone();
    for (name, o) in outputs.iter_mut() {
        rename(&mut o.value, &renames);
        if let Some(e) = o.export_name.as_mut() {
            rename(e, &renames);
        }
        let mut refs = o.value.references();
        refs.extend(o.export_name.iter().flat_map(Value::references));
        if let Some(d) = refs.into_iter().find(|d| !ids.contains(d)) {
            let pos = t
                .resources
                .values()
                .next()
                .map(|r| r.pos)
                .unwrap_or_default();
            return Err(Loc::root(file).key("Outputs").key(name).err(
                pos,
                ErrorKind::MissingReference,
                not_generated(&d),
            ));
        }
    }
    let order = order(&out, &Loc::root(file).key("Resources"))?;
    Ok(ResolvedTemplate {
        resources: out,
        outputs,
        order,
        implicit: IndexMap::new(),
        ..t.clone()
    })
}

fn not_generated(name: &str) -> String {
    if name.ends_with(".Deployment") {
        format!("'{name}' does not exist: Sous serves SAM REST APIs as HTTP APIs, which have no deployment resource")
    } else {
        format!("'{name}' is not a resource of the template after the SAM transform")
    }
}

fn missing(file: &str, r: &Resource, name: &str) -> TemplateError {
    Loc::root(file).key("Resources").key(&r.logical_id).err(
        r.pos,
        ErrorKind::MissingReference,
        not_generated(name),
    )
}

/// Replaces references to SAM's referenceable names by the generated ids.
fn rename(v: &mut Value, renames: &IndexMap<String, String>) {
    let re = |s: &mut String| {
        if let Some(n) = renames.get(s.as_str()) {
            *s = n.clone();
        }
    };
    match v {
        Value::Ref(r) | Value::GetAtt(r, _) => re(r),
        Value::Text(parts) => {
            for p in parts {
                if let Part::Ref(r) | Part::GetAtt(r, _) = p {
                    re(r);
                }
            }
        }
        Value::List(items) | Value::Deferred { args: items, .. } => {
            items.iter_mut().for_each(|i| rename(i, renames))
        }
        Value::Map(m) => m.values_mut().for_each(|i| rename(i, renames)),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

// ---- value helpers ----

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

fn getatt(id: &str, attr: &str) -> Value {
    Value::GetAtt(id.to_string(), attr.to_string())
}

fn reference(id: &str) -> Value {
    Value::Ref(id.to_string())
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) | Value::Number(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// SAM's `Tags` mapping as CloudFormation's list of `{Key, Value}`, with SAM's own tag first.
fn tag_list(tags: Option<&Value>, sam_tag: bool) -> Option<Value> {
    let mut out = Vec::new();
    if sam_tag {
        out.push(map([("Key", s("lambda:createdBy")), ("Value", s("SAM"))]));
    }
    if let Some(Value::Map(m)) = tags {
        for (k, v) in m {
            out.push(map([("Key", s(k)), ("Value", v.clone())]));
        }
    }
    (!out.is_empty()).then_some(Value::List(out))
}

/// The name of the resource `v` refers to with `Ref`, if it is one.
fn ref_target(v: &Value) -> Option<&str> {
    match v {
        Value::Ref(r) => Some(r),
        _ => None,
    }
}

struct Tx<'a> {
    file: &'a str,
    out: IndexMap<String, Resource>,
    /// Referenceable names (`Fn.Alias`) → generated ids.
    renames: IndexMap<String, String>,
    /// The template's own resource ids.
    sam_ids: Vec<String>,
    template: &'a ResolvedTemplate,
    settings: &'a Settings,
}

/// What the events of one function need to know about it.
struct FnInfo<'a> {
    id: &'a str,
    /// The ARN to invoke: the alias when AutoPublishAlias is set, else the function's Arn.
    arn: Value,
    /// `FunctionName` for permissions: the alias ARN or the function's name.
    name: Value,
}

impl<'a> Tx<'a> {
    fn loc(&self, r: &Resource, suffix: &str) -> Loc<'a> {
        let l = Loc::root(self.file).key("Resources").key(&r.logical_id);
        if suffix.is_empty() {
            l
        } else {
            suffix.split('.').fold(l, |l, k| l.key(k))
        }
    }

    fn err(
        &self,
        r: &Resource,
        suffix: &str,
        kind: ErrorKind,
        msg: impl Into<String>,
    ) -> TemplateError {
        self.loc(r, suffix).err(r.pos, kind, msg)
    }

    fn add(&mut self, owner: &Resource, r: Resource) -> R<()> {
        if self.out.contains_key(&r.logical_id)
            || (r.logical_id != owner.logical_id && self.sam_ids.contains(&r.logical_id))
        {
            return Err(self.err(
                owner,
                "",
                ErrorKind::Structure,
                format!(
                    "the SAM transform of '{}' generates the resource '{}', which already exists",
                    owner.logical_id, r.logical_id
                ),
            ));
        }
        self.out.insert(r.logical_id.clone(), r);
        Ok(())
    }

    /// A generated resource belonging to `owner`.
    fn generated(owner: &Resource, id: &str, ty: &str, props: Value) -> Resource {
        let Value::Map(properties) = props else {
            unreachable!("properties are built as a map")
        };
        Resource {
            logical_id: id.to_string(),
            resource_type: ty.to_string(),
            pos: owner.pos,
            properties,
            condition: owner.condition.clone(),
            depends_on: Vec::new(),
            dependencies: Vec::new(),
            deletion_policy: None,
            update_replace_policy: None,
            metadata: None,
        }
    }

    fn check_keys(
        &self,
        r: &Resource,
        prefix: &str,
        props: &IndexMap<String, Value>,
        known: &[&str],
    ) -> R<()> {
        for k in props.keys() {
            if !known.contains(&k.as_str()) {
                let path = if prefix.is_empty() {
                    format!("Properties.{k}")
                } else {
                    format!("Properties.{prefix}.{k}")
                };
                return Err(self.err(
                    r,
                    &path,
                    ErrorKind::Structure,
                    format!(
                        "'{k}' is not a property of {} that Sous supports; expected one of {}",
                        if prefix.is_empty() {
                            r.resource_type.clone()
                        } else {
                            format!("{} {prefix}", r.resource_type)
                        },
                        known.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    fn serverless(&mut self, r: &Resource) -> R<()> {
        match r.resource_type.as_str() {
            "AWS::Serverless::Function" => self.function(r),
            "AWS::Serverless::LayerVersion" => self.layer(r),
            "AWS::Serverless::HttpApi" => self.http_api(r, false),
            "AWS::Serverless::Api" => self.http_api(r, true),
            "AWS::Serverless::SimpleTable" => self.simple_table(r),
            other => Err(self.err(
                r,
                "Type",
                ErrorKind::Unsupported,
                format!("Sous does not support the resource type {other}; supported SAM types are AWS::Serverless::Function, LayerVersion, HttpApi, Api and SimpleTable"),
            )),
        }
    }

    // ---- AWS::Serverless::Function ----

    fn function(&mut self, r: &Resource) -> R<()> {
        const KNOWN: &[&str] = &[
            "FunctionName",
            "Handler",
            "Runtime",
            "CodeUri",
            "InlineCode",
            "ImageUri",
            "PackageType",
            "ImageConfig",
            "MemorySize",
            "Timeout",
            "Environment",
            "Layers",
            "Description",
            "Architectures",
            "EphemeralStorage",
            "ReservedConcurrentExecutions",
            "DeadLetterQueue",
            "Tags",
            "Role",
            "Policies",
            "PermissionsBoundary",
            "RolePath",
            "AssumeRolePolicyDocument",
            "AutoPublishAlias",
            "AutoPublishAliasAllProperties",
            "AutoPublishCodeSha256",
            "VersionDescription",
            "ProvisionedConcurrencyConfig",
            "EventInvokeConfig",
            "FunctionUrlConfig",
            "Events",
            "KmsKeyArn",
            "VpcConfig",
            "Tracing",
            "FileSystemConfigs",
            "LoggingConfig",
            "RuntimeManagementConfig",
            "SnapStart",
            "CodeSigningConfigArn",
            "PropagateTags",
        ];
        let p = &r.properties;
        self.check_keys(r, "", p, KNOWN)?;
        let id = r.logical_id.as_str();
        let mut f: IndexMap<String, Value> = IndexMap::new();

        // Code.
        match (p.get("CodeUri"), p.get("InlineCode"), p.get("ImageUri")) {
            (Some(c), None, None) => match c {
                Value::String(uri) if uri.starts_with("s3://") => {
                    let (bucket, key) = uri["s3://".len()..].split_once('/').ok_or_else(|| {
                        self.err(r, "Properties.CodeUri", ErrorKind::Structure, format!("expected an S3 URI s3://bucket/key, found '{uri}'"))
                    })?;
                    f.insert("Code".into(), map([("S3Bucket", s(bucket)), ("S3Key", s(key))]));
                }
                Value::Map(m) => {
                    self.check_keys(r, "CodeUri", m, &["Bucket", "Key", "Version"])?;
                    let (Some(b), Some(k)) = (m.get("Bucket"), m.get("Key")) else {
                        return Err(self.err(r, "Properties.CodeUri", ErrorKind::Structure, "expected CodeUri to have Bucket and Key"));
                    };
                    let mut code = IndexMap::new();
                    code.insert("S3Bucket".to_string(), b.clone());
                    code.insert("S3Key".to_string(), k.clone());
                    if let Some(v) = m.get("Version") {
                        code.insert("S3ObjectVersion".to_string(), v.clone());
                    }
                    f.insert("Code".into(), Value::Map(code));
                }
                Value::String(_) | Value::Text(_) | Value::Ref(_) => {
                    // A local path: the packager zips it and replaces it by Code.
                    f.insert("CodeUri".into(), c.clone());
                }
                other => {
                    return Err(self.err(r, "Properties.CodeUri", ErrorKind::Structure, format!("expected CodeUri to be a path, an s3:// URI or {{Bucket, Key, Version}}, found {other:?}")))
                }
            },
            (None, Some(code), None) => {
                f.insert("Code".into(), map([("ZipFile", code.clone())]));
            }
            (None, None, Some(image)) => {
                f.insert("Code".into(), map([("ImageUri", image.clone())]));
                f.insert("PackageType".into(), s("Image"));
            }
            (None, None, None) => {
                return Err(self.err(r, "Properties", ErrorKind::Structure, "a function needs one of CodeUri, InlineCode or ImageUri"))
            }
            _ => {
                return Err(self.err(r, "Properties", ErrorKind::Structure, "a function takes only one of CodeUri, InlineCode and ImageUri"))
            }
        }
        for k in [
            "FunctionName",
            "Handler",
            "Runtime",
            "PackageType",
            "ImageConfig",
            "MemorySize",
            "Timeout",
            "Environment",
            "Layers",
            "Description",
            "Architectures",
            "EphemeralStorage",
            "ReservedConcurrentExecutions",
            "KmsKeyArn",
            "VpcConfig",
            "FileSystemConfigs",
            "LoggingConfig",
            "RuntimeManagementConfig",
            "SnapStart",
            "CodeSigningConfigArn",
        ] {
            if let Some(v) = p.get(k) {
                f.insert(k.into(), v.clone());
            }
        }
        if let Some(dlq) = p.get("DeadLetterQueue") {
            let target =
                match dlq {
                    Value::Map(m) => {
                        self.check_keys(r, "DeadLetterQueue", m, &["Type", "TargetArn"])?;
                        match (m.get("Type").and_then(text).as_deref(), m.get("TargetArn")) {
                            (Some("SQS" | "SNS"), Some(t)) => t.clone(),
                            _ => return Err(self.err(
                                r,
                                "Properties.DeadLetterQueue",
                                ErrorKind::Structure,
                                "expected DeadLetterQueue to have Type (SQS or SNS) and TargetArn",
                            )),
                        }
                    }
                    _ => {
                        return Err(self.err(
                            r,
                            "Properties.DeadLetterQueue",
                            ErrorKind::Structure,
                            "expected DeadLetterQueue to be a mapping",
                        ))
                    }
                };
            f.insert("DeadLetterConfig".into(), map([("TargetArn", target)]));
        }
        if let Some(t) = p.get("Tracing") {
            f.insert("TracingConfig".into(), map([("Mode", t.clone())]));
        }
        if let Some(tags) = p.get("Tags") {
            if !matches!(tags, Value::Map(_)) {
                return Err(self.err(
                    r,
                    "Properties.Tags",
                    ErrorKind::Structure,
                    "expected Tags to be a mapping of names to values",
                ));
            }
        }
        if let Some(tags) = tag_list(p.get("Tags"), true) {
            f.insert("Tags".into(), tags);
        }

        // Role.
        let role_id = format!("{id}Role");
        match p.get("Role") {
            Some(role) => {
                f.insert("Role".into(), role.clone());
            }
            None => {
                f.insert("Role".into(), getatt(&role_id, "Arn"));
            }
        }
        let mut main = r.clone();
        main.resource_type = "AWS::Lambda::Function".into();
        main.properties = f;
        self.add(r, main)?;
        if p.get("Role").is_none() {
            let role = self.role(r, &role_id)?;
            self.add(r, role)?;
        } else {
            for k in [
                "Policies",
                "PermissionsBoundary",
                "RolePath",
                "AssumeRolePolicyDocument",
            ] {
                if p.contains_key(k) {
                    return Err(self.err(r, &format!("Properties.{k}"), ErrorKind::Structure, format!("{k} cannot be used with Role: SAM generates a role only when Role is not given")));
                }
            }
        }

        // Versions and aliases.
        let mut alias_name = None;
        if let Some(a) = p.get("AutoPublishAlias") {
            let alias = text(a).ok_or_else(|| {
                self.err(
                    r,
                    "Properties.AutoPublishAlias",
                    ErrorKind::Structure,
                    "expected AutoPublishAlias to be an alias name",
                )
            })?;
            let version_id = format!("{id}Version{}", version_hash(r));
            let alias_id = format!("{id}Alias{alias}");
            let mut v = map([("FunctionName", reference(id))]);
            if let (Value::Map(m), Some(d)) = (&mut v, p.get("VersionDescription")) {
                m.insert("Description".into(), d.clone());
            }
            self.add(
                r,
                Self::generated(r, &version_id, "AWS::Lambda::Version", v),
            )?;
            let mut al = map([
                ("Name", s(&alias)),
                ("FunctionName", reference(id)),
                ("FunctionVersion", getatt(&version_id, "Version")),
            ]);
            if let (Value::Map(m), Some(pc)) = (&mut al, p.get("ProvisionedConcurrencyConfig")) {
                m.insert("ProvisionedConcurrencyConfig".into(), pc.clone());
            }
            self.add(r, Self::generated(r, &alias_id, "AWS::Lambda::Alias", al))?;
            self.renames.insert(format!("{id}.Alias"), alias_id.clone());
            self.renames.insert(format!("{id}.Version"), version_id);
            alias_name = Some((alias, alias_id));
        } else {
            for k in ["ProvisionedConcurrencyConfig", "VersionDescription"] {
                if p.contains_key(k) {
                    return Err(self.err(
                        r,
                        &format!("Properties.{k}"),
                        ErrorKind::Structure,
                        format!("{k} needs AutoPublishAlias"),
                    ));
                }
            }
        }
        let info = FnInfo {
            id,
            arn: alias_name
                .as_ref()
                .map_or_else(|| getatt(id, "Arn"), |(_, a)| reference(a)),
            name: alias_name
                .as_ref()
                .map_or_else(|| reference(id), |(_, a)| reference(a)),
        };
        let qualifier = alias_name.as_ref().map(|(a, _)| a.clone());

        // EventInvokeConfig.
        if let Some(c) = p.get("EventInvokeConfig") {
            let Value::Map(m) = c else {
                return Err(self.err(
                    r,
                    "Properties.EventInvokeConfig",
                    ErrorKind::Structure,
                    "expected EventInvokeConfig to be a mapping",
                ));
            };
            self.check_keys(
                r,
                "EventInvokeConfig",
                m,
                &[
                    "MaximumEventAgeInSeconds",
                    "MaximumRetryAttempts",
                    "DestinationConfig",
                ],
            )?;
            let mut out = IndexMap::new();
            out.insert("FunctionName".to_string(), reference(id));
            out.insert(
                "Qualifier".to_string(),
                s(qualifier.as_deref().unwrap_or("$LATEST")),
            );
            for k in ["MaximumEventAgeInSeconds", "MaximumRetryAttempts"] {
                if let Some(v) = m.get(k) {
                    out.insert(k.to_string(), v.clone());
                }
            }
            if let Some(d) = m.get("DestinationConfig") {
                let Value::Map(d) = d else {
                    return Err(self.err(
                        r,
                        "Properties.EventInvokeConfig.DestinationConfig",
                        ErrorKind::Structure,
                        "expected a mapping",
                    ));
                };
                self.check_keys(
                    r,
                    "EventInvokeConfig.DestinationConfig",
                    d,
                    &["OnSuccess", "OnFailure"],
                )?;
                let mut dc = IndexMap::new();
                for (k, v) in d {
                    let dest = match v {
                        Value::Map(x) => x.get("Destination").cloned(),
                        _ => None,
                    }
                    .ok_or_else(|| {
                        self.err(
                            r,
                            &format!("Properties.EventInvokeConfig.DestinationConfig.{k}"),
                            ErrorKind::Structure,
                            format!("expected {k} to have a Destination (an ARN)"),
                        )
                    })?;
                    dc.insert(k.clone(), map([("Destination", dest)]));
                }
                out.insert("DestinationConfig".to_string(), Value::Map(dc));
            }
            let id2 = format!("{id}EventInvokeConfig");
            self.add(
                r,
                Self::generated(r, &id2, "AWS::Lambda::EventInvokeConfig", Value::Map(out)),
            )?;
        }

        // FunctionUrlConfig.
        if let Some(c) = p.get("FunctionUrlConfig") {
            let Value::Map(m) = c else {
                return Err(self.err(
                    r,
                    "Properties.FunctionUrlConfig",
                    ErrorKind::Structure,
                    "expected FunctionUrlConfig to be a mapping",
                ));
            };
            self.check_keys(
                r,
                "FunctionUrlConfig",
                m,
                &["AuthType", "Cors", "InvokeMode"],
            )?;
            let auth = m.get("AuthType").and_then(text).ok_or_else(|| {
                self.err(
                    r,
                    "Properties.FunctionUrlConfig.AuthType",
                    ErrorKind::Structure,
                    "FunctionUrlConfig needs AuthType (AWS_IAM or NONE)",
                )
            })?;
            let mut out = IndexMap::new();
            out.insert("TargetFunctionArn".to_string(), reference(id));
            out.insert("AuthType".to_string(), s(&auth));
            if let Some(q) = &qualifier {
                out.insert("Qualifier".to_string(), s(q));
            }
            for k in ["Cors", "InvokeMode"] {
                if let Some(v) = m.get(k) {
                    out.insert(k.to_string(), v.clone());
                }
            }
            let url_id = format!("{id}Url");
            let mut url = Self::generated(r, &url_id, "AWS::Lambda::Url", Value::Map(out));
            if let Some((_, a)) = &alias_name {
                url.depends_on.push(a.clone());
            }
            self.add(r, url)?;
            if auth == "NONE" {
                let perm = map([
                    ("Action", s("lambda:InvokeFunctionUrl")),
                    ("FunctionName", reference(id)),
                    ("Principal", s("*")),
                    ("FunctionUrlAuthType", s("NONE")),
                ]);
                let pid = format!("{id}UrlPublicPermissions");
                let mut pr = Self::generated(r, &pid, "AWS::Lambda::Permission", perm);
                if let Some((_, a)) = &alias_name {
                    pr.depends_on.push(a.clone());
                }
                self.add(r, pr)?;
            }
        }

        // Events.
        if let Some(events) = p.get("Events") {
            let Value::Map(events) = events else {
                return Err(self.err(
                    r,
                    "Properties.Events",
                    ErrorKind::Structure,
                    "expected Events to be a mapping of event names to events",
                ));
            };
            for (name, e) in events {
                self.event(r, &info, name, e)?;
            }
        }
        Ok(())
    }

    fn role(&self, r: &Resource, role_id: &str) -> R<Resource> {
        let p = &r.properties;
        let assume = p
            .get("AssumeRolePolicyDocument")
            .cloned()
            .unwrap_or_else(|| {
                map([
                    ("Version", s("2012-10-17")),
                    (
                        "Statement",
                        Value::List(vec![map([
                            ("Effect", s("Allow")),
                            ("Action", Value::List(vec![s("sts:AssumeRole")])),
                            (
                                "Principal",
                                map([("Service", Value::List(vec![s("lambda.amazonaws.com")]))]),
                            ),
                        ])]),
                    ),
                ])
            });
        let partition = self.partition();
        let mut managed = vec![s(&format!(
            "arn:{partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
        ))];
        let mut inline = Vec::new();
        let items: Vec<&Value> = match p.get("Policies") {
            None => Vec::new(),
            Some(Value::List(items)) => items.iter().collect(),
            Some(one) => vec![one],
        };
        for (i, item) in items.into_iter().enumerate() {
            let name = format!("{role_id}Policy{i}");
            match item {
                Value::String(n) if n.starts_with("arn:") => managed.push(item.clone()),
                Value::String(n) => managed.push(s(&format!("arn:{partition}:iam::aws:policy/{n}"))),
                Value::Map(m) if m.contains_key("Statement") => inline.push(map([
                    ("PolicyName", s(&name)),
                    ("PolicyDocument", item.clone()),
                ])),
                // A SAM policy template ({DynamoDBCrudPolicy: {TableName: ...}}): recorded.
                Value::Map(m) if m.len() == 1 => inline.push(map([
                    ("PolicyName", s(&name)),
                    ("SamPolicyTemplate", item.clone()),
                ])),
                Value::Ref(_) | Value::Text(_) | Value::GetAtt(_, _) => managed.push(item.clone()),
                _ => {
                    return Err(self.err(r, "Properties.Policies", ErrorKind::Structure, "expected each policy to be a managed policy name or ARN, a policy document or a SAM policy template"))
                }
            }
        }
        let mut props = IndexMap::new();
        props.insert("AssumeRolePolicyDocument".to_string(), assume);
        props.insert("ManagedPolicyArns".to_string(), Value::List(managed));
        if !inline.is_empty() {
            props.insert("Policies".to_string(), Value::List(inline));
        }
        if let Some(b) = p.get("PermissionsBoundary") {
            props.insert("PermissionsBoundary".to_string(), b.clone());
        }
        if let Some(path) = p.get("RolePath") {
            props.insert("Path".to_string(), path.clone());
        }
        let tags = if p.get("PropagateTags") == Some(&Value::Bool(true)) {
            p.get("Tags")
        } else {
            None
        };
        if let Some(t) = tag_list(tags, true) {
            props.insert("Tags".to_string(), t);
        }
        Ok(Self::generated(
            r,
            role_id,
            "AWS::IAM::Role",
            Value::Map(props),
        ))
    }

    fn event(&mut self, r: &Resource, f: &FnInfo<'_>, name: &str, e: &Value) -> R<()> {
        let path = format!("Properties.Events.{name}");
        let Value::Map(e) = e else {
            return Err(self.err(
                r,
                &path,
                ErrorKind::Structure,
                "expected an event (a mapping with Type and Properties)",
            ));
        };
        self.check_keys(r, &format!("Events.{name}"), e, &["Type", "Properties"])?;
        let ty = e.get("Type").and_then(text).ok_or_else(|| {
            self.err(
                r,
                &format!("{path}.Type"),
                ErrorKind::Structure,
                "the event has no Type",
            )
        })?;
        let empty = IndexMap::new();
        let props = match e.get("Properties") {
            None | Some(Value::Null) => &empty,
            Some(Value::Map(m)) => m,
            Some(_) => {
                return Err(self.err(
                    r,
                    &format!("{path}.Properties"),
                    ErrorKind::Structure,
                    "expected the event's Properties to be a mapping",
                ))
            }
        };
        let prefix = format!("Events.{name}.Properties");
        let event_id = format!("{}{name}", f.id);
        match ty.as_str() {
            "HttpApi" => {
                self.check_keys(r, &prefix, props, &["Path", "Method", "ApiId", "PayloadFormatVersion", "TimeoutInMillis", "Auth"])?;
                self.no_authorizer(r, &path, props)?;
                let api = match props.get("ApiId") {
                    Some(a) => a.clone(),
                    None => {
                        self.implicit_api(r, false)?;
                        reference(IMPLICIT_HTTP_API)
                    }
                };
                let format = props.get("PayloadFormatVersion").cloned().unwrap_or_else(|| s("2.0"));
                let route_key = match (props.get("Method").and_then(text), props.get("Path").and_then(text)) {
                    (None, None) => "$default".to_string(),
                    (Some(m), Some(p)) => format!("{} {p}", method(&m)),
                    _ => return Err(self.err(r, &format!("{path}.Properties"), ErrorKind::Structure, "an HttpApi event needs both Path and Method, or neither (the $default route)")),
                };
                self.route(r, f, &event_id, api, route_key, format, props.get("TimeoutInMillis"))
            }
            "Api" => {
                self.check_keys(r, &prefix, props, &["Path", "Method", "RestApiId", "Auth", "TimeoutInMillis"])?;
                self.no_authorizer(r, &path, props)?;
                let api = match props.get("RestApiId") {
                    Some(a) => {
                        if let Some(t) = ref_target(a) {
                            if self.template.resources.get(t).is_some_and(|x| x.resource_type != "AWS::Serverless::Api") {
                                return Err(self.err(r, &format!("{path}.Properties.RestApiId"), ErrorKind::Unsupported, format!("RestApiId names '{t}', which is not an AWS::Serverless::Api; Sous serves only SAM REST APIs (as HTTP APIs)")));
                            }
                        }
                        a.clone()
                    }
                    None => {
                        self.implicit_api(r, true)?;
                        reference(IMPLICIT_REST_API)
                    }
                };
                let (Some(m), Some(p)) = (props.get("Method").and_then(text), props.get("Path").and_then(text)) else {
                    return Err(self.err(r, &format!("{path}.Properties"), ErrorKind::Structure, "an Api event needs Path and Method"));
                };
                self.route(r, f, &event_id, api, format!("{} {p}", method(&m)), s("1.0"), props.get("TimeoutInMillis"))
            }
            "Schedule" | "ScheduleV2" => {
                let v2 = ty == "ScheduleV2";
                let known: &[&str] = if v2 {
                    &["ScheduleExpression", "ScheduleExpressionTimezone", "Input", "Name", "Description", "State", "FlexibleTimeWindow", "StartDate", "EndDate", "RetryPolicy", "DeadLetterConfig", "GroupName", "KmsKeyArn", "RoleArn", "OmitName", "PermissionsBoundary"]
                } else {
                    &["Schedule", "Input", "Name", "Description", "Enabled", "State", "RetryPolicy", "DeadLetterConfig"]
                };
                self.check_keys(r, &prefix, props, known)?;
                let expr_key = if v2 { "ScheduleExpression" } else { "Schedule" };
                let expr = props.get(expr_key).cloned().ok_or_else(|| self.err(r, &format!("{path}.Properties"), ErrorKind::Structure, format!("a {ty} event needs {expr_key}")))?;
                let state = match (props.get("State"), props.get("Enabled")) {
                    (Some(st), _) => st.clone(),
                    (None, Some(Value::Bool(false))) => s("DISABLED"),
                    _ => s("ENABLED"),
                };
                let mut target = IndexMap::new();
                target.insert("Arn".to_string(), f.arn.clone());
                target.insert("Id".to_string(), s(&format!("{event_id}LambdaTarget")));
                for k in ["Input", "RetryPolicy", "DeadLetterConfig"] {
                    if let Some(v) = props.get(k) {
                        target.insert(k.to_string(), v.clone());
                    }
                }
                let mut rule = IndexMap::new();
                rule.insert("ScheduleExpression".to_string(), expr);
                rule.insert("State".to_string(), state);
                for k in ["Name", "Description", "ScheduleExpressionTimezone", "FlexibleTimeWindow", "StartDate", "EndDate"] {
                    if let Some(v) = props.get(k) {
                        rule.insert(k.to_string(), v.clone());
                    }
                }
                rule.insert("Targets".to_string(), Value::List(vec![Value::Map(target)]));
                self.add(r, Self::generated(r, &event_id, "AWS::Events::Rule", Value::Map(rule)))?;
                let perm = map([
                    ("Action", s("lambda:InvokeFunction")),
                    ("FunctionName", f.name.clone()),
                    ("Principal", s("events.amazonaws.com")),
                    ("SourceArn", getatt(&event_id, "Arn")),
                ]);
                self.add(r, Self::generated(r, &format!("{event_id}Permission"), "AWS::Lambda::Permission", perm))
            }
            other => Err(self.err(
                r,
                &format!("{path}.Type"),
                ErrorKind::Unsupported,
                format!("Sous does not support the event type '{other}'; supported event types are Api, HttpApi, Schedule and ScheduleV2"),
            )),
        }
    }

    /// An event's `Auth` may only say that the route has no authorizer: Sous runs no
    /// authorizers, and a route must not be served open when the template protects it.
    fn no_authorizer(&self, r: &Resource, path: &str, props: &IndexMap<String, Value>) -> R<()> {
        let Some(auth) = props.get("Auth") else {
            return Ok(());
        };
        let open = matches!(auth, Value::Map(m) if m.len() == 1
            && m.get("Authorizer").and_then(text).as_deref() == Some("NONE"));
        if open {
            return Ok(());
        }
        Err(self.err(
            r,
            &format!("{path}.Properties.Auth"),
            ErrorKind::Unsupported,
            "Sous does not run API authorizers; only 'Auth: {Authorizer: NONE}' is supported",
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn route(
        &mut self,
        r: &Resource,
        f: &FnInfo<'_>,
        event_id: &str,
        api: Value,
        route_key: String,
        format: Value,
        timeout: Option<&Value>,
    ) -> R<()> {
        let integration_id = format!("{event_id}Integration");
        let mut integ = IndexMap::new();
        integ.insert("ApiId".to_string(), api.clone());
        integ.insert("IntegrationType".to_string(), s("AWS_PROXY"));
        integ.insert("IntegrationUri".to_string(), f.arn.clone());
        integ.insert("PayloadFormatVersion".to_string(), format);
        if let Some(t) = timeout {
            integ.insert("TimeoutInMillis".to_string(), t.clone());
        }
        self.add(
            r,
            Self::generated(
                r,
                &integration_id,
                "AWS::ApiGatewayV2::Integration",
                Value::Map(integ),
            ),
        )?;
        let route = map([
            ("ApiId", api.clone()),
            ("RouteKey", s(&route_key)),
            (
                "Target",
                Value::Text(vec![
                    Part::Lit("integrations/".into()),
                    Part::Ref(integration_id),
                ]),
            ),
        ]);
        self.add(
            r,
            Self::generated(
                r,
                &format!("{event_id}Route"),
                "AWS::ApiGatewayV2::Route",
                route,
            ),
        )?;
        let perm = map([
            ("Action", s("lambda:InvokeFunction")),
            ("FunctionName", f.name.clone()),
            ("Principal", s("apigateway.amazonaws.com")),
        ]);
        let mut perm = perm;
        if let (Value::Map(m), Some(arn)) = (&mut perm, self.execute_api_arn(&api)) {
            m.insert("SourceArn".into(), arn);
        }
        self.add(
            r,
            Self::generated(
                r,
                &format!("{event_id}Permission"),
                "AWS::Lambda::Permission",
                perm,
            ),
        )
    }

    fn partition(&self) -> &'static str {
        let region = self.settings.region.as_str();
        if region.starts_with("cn-") {
            "aws-cn"
        } else if region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        }
    }

    /// `arn:aws:execute-api:<region>:<account>:<api>/*`, when the API is a name or a Ref.
    fn execute_api_arn(&self, api: &Value) -> Option<Value> {
        let head = format!(
            "arn:{}:execute-api:{}:{}:",
            self.partition(),
            self.settings.region,
            self.settings.account_id
        );
        let api = match api {
            Value::Ref(r) => Part::Ref(r.clone()),
            Value::String(x) => Part::Lit(x.clone()),
            _ => return None,
        };
        Some(Value::Text(vec![
            Part::Lit(head),
            api,
            Part::Lit("/*".into()),
        ]))
    }

    /// Creates the implicit API on the first event that needs it.
    fn implicit_api(&mut self, r: &Resource, rest: bool) -> R<()> {
        let (id, stage_name, stage_id) = if rest {
            (
                IMPLICIT_REST_API,
                "Prod",
                format!("{IMPLICIT_REST_API}ProdStage"),
            )
        } else {
            (
                IMPLICIT_HTTP_API,
                "$default",
                format!("{IMPLICIT_HTTP_API}ApiGatewayDefaultStage"),
            )
        };
        if let Some(existing) = self.out.get_mut(id) {
            if existing.condition != r.condition {
                existing.condition = None;
                if let Some(st) = self.out.get_mut(&stage_id) {
                    st.condition = None;
                }
            }
            return Ok(());
        }
        let mut api = IndexMap::new();
        // SAM names implicit APIs after the stack; the engine names it when it creates it.
        api.insert(
            "Name".to_string(),
            s(&format!("{}-{id}", self.settings.stack_name)),
        );
        api.insert("ProtocolType".to_string(), s("HTTP"));
        if rest {
            api.insert("SousServedAs".to_string(), s("AWS::Serverless::Api"));
            api.insert("SousPayloadFormatVersion".to_string(), s("1.0"));
        }
        api.insert(
            "Tags".to_string(),
            map([(
                if rest {
                    "restapi:createdBy"
                } else {
                    "httpapi:createdBy"
                },
                s("SAM"),
            )]),
        );
        self.add(
            r,
            Self::generated(r, id, "AWS::ApiGatewayV2::Api", Value::Map(api)),
        )?;
        let stage = map([
            ("ApiId", reference(id)),
            ("StageName", s(stage_name)),
            ("AutoDeploy", Value::Bool(true)),
        ]);
        self.add(
            r,
            Self::generated(r, &stage_id, "AWS::ApiGatewayV2::Stage", stage),
        )?;
        self.renames.insert(format!("{id}.Stage"), stage_id);
        Ok(())
    }

    // ---- AWS::Serverless::HttpApi / Api ----

    fn http_api(&mut self, r: &Resource, rest: bool) -> R<()> {
        let p = &r.properties;
        let known: &[&str] = if rest {
            &[
                "StageName",
                "Name",
                "Description",
                "Cors",
                "Variables",
                "Tags",
                "EndpointConfiguration",
                "BinaryMediaTypes",
                "OpenApiVersion",
                "MinimumCompressionSize",
                "TracingEnabled",
                "MethodSettings",
                "AccessLogSetting",
                "CacheClusterEnabled",
                "CacheClusterSize",
                "DisableExecuteApiEndpoint",
            ]
        } else {
            &[
                "StageName",
                "Name",
                "Description",
                "CorsConfiguration",
                "StageVariables",
                "Tags",
                "AccessLogSettings",
                "DefaultRouteSettings",
                "RouteSettings",
                "DisableExecuteApiEndpoint",
                "FailOnWarnings",
            ]
        };
        for k in [
            "DefinitionBody",
            "DefinitionUri",
            "Domain",
            "Models",
            "GatewayResponses",
            "Auth",
        ] {
            if p.contains_key(k) {
                return Err(self.err(
                    r,
                    &format!("Properties.{k}"),
                    ErrorKind::Unsupported,
                    format!(
                        "Sous does not support {k} on {}: routes come from the functions' events, without authorizers",
                        r.resource_type
                    ),
                ));
            }
        }
        self.check_keys(r, "", p, known)?;
        let id = r.logical_id.as_str();
        let stage_name = match p.get("StageName") {
            Some(v) => text(v).ok_or_else(|| {
                self.err(
                    r,
                    "Properties.StageName",
                    ErrorKind::Structure,
                    "expected StageName to be a name",
                )
            })?,
            None if rest => {
                return Err(self.err(
                    r,
                    "Properties",
                    ErrorKind::Structure,
                    "an AWS::Serverless::Api needs StageName",
                ))
            }
            None => "$default".to_string(),
        };
        let mut api = IndexMap::new();
        if let Some(n) = p.get("Name") {
            api.insert("Name".to_string(), n.clone());
        } else {
            api.insert("Name".to_string(), s(id));
        }
        api.insert("ProtocolType".to_string(), s("HTTP"));
        if let Some(d) = p.get("Description") {
            api.insert("Description".to_string(), d.clone());
        }
        if rest {
            api.insert("SousServedAs".to_string(), s("AWS::Serverless::Api"));
            api.insert("SousPayloadFormatVersion".to_string(), s("1.0"));
            // REST-only settings an HTTP API has no place for: kept, not applied.
            let recorded: IndexMap<String, Value> = p
                .iter()
                .filter(|(k, _)| REST_ONLY.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if !recorded.is_empty() {
                api.insert("SousRestProperties".to_string(), Value::Map(recorded));
            }
            if let Some(c) = p.get("Cors") {
                api.insert(
                    "CorsConfiguration".to_string(),
                    rest_cors(c).ok_or_else(|| {
                        self.err(
                            r,
                            "Properties.Cors",
                            ErrorKind::Structure,
                            "expected Cors to be an origin string or a mapping with AllowOrigin",
                        )
                    })?,
                );
            }
        } else if let Some(c) = p.get("CorsConfiguration") {
            let cors = match c {
                Value::Bool(true) => map([("AllowOrigins", Value::List(vec![s("*")]))]),
                Value::Map(_) => c.clone(),
                _ => {
                    return Err(self.err(
                        r,
                        "Properties.CorsConfiguration",
                        ErrorKind::Structure,
                        "expected CorsConfiguration to be true or a mapping",
                    ))
                }
            };
            api.insert("CorsConfiguration".to_string(), cors);
        }
        if let Some(d) = p.get("DisableExecuteApiEndpoint") {
            api.insert("DisableExecuteApiEndpoint".to_string(), d.clone());
        }
        let mut tags = match p.get("Tags") {
            None => IndexMap::new(),
            Some(Value::Map(m)) => m.clone(),
            Some(_) => {
                return Err(self.err(
                    r,
                    "Properties.Tags",
                    ErrorKind::Structure,
                    "expected Tags to be a mapping of names to values",
                ))
            }
        };
        tags.insert(
            if rest {
                "restapi:createdBy"
            } else {
                "httpapi:createdBy"
            }
            .to_string(),
            s("SAM"),
        );
        api.insert("Tags".to_string(), Value::Map(tags));
        let mut main = r.clone();
        main.resource_type = "AWS::ApiGatewayV2::Api".into();
        main.properties = api;
        self.add(r, main)?;

        let stage_id = if stage_name == "$default" {
            format!("{id}ApiGatewayDefaultStage")
        } else {
            format!("{id}{stage_name}Stage")
        };
        let mut stage = IndexMap::new();
        stage.insert("ApiId".to_string(), reference(id));
        stage.insert("StageName".to_string(), s(&stage_name));
        stage.insert("AutoDeploy".to_string(), Value::Bool(true));
        let vars = if rest { "Variables" } else { "StageVariables" };
        if let Some(v) = p.get(vars) {
            stage.insert("StageVariables".to_string(), v.clone());
        }
        for k in ["AccessLogSettings", "DefaultRouteSettings", "RouteSettings"] {
            if let Some(v) = p.get(k) {
                stage.insert(k.to_string(), v.clone());
            }
        }
        self.add(
            r,
            Self::generated(r, &stage_id, "AWS::ApiGatewayV2::Stage", Value::Map(stage)),
        )?;
        self.renames.insert(format!("{id}.Stage"), stage_id);
        Ok(())
    }

    // ---- AWS::Serverless::LayerVersion ----

    fn layer(&mut self, r: &Resource) -> R<()> {
        let p = &r.properties;
        self.check_keys(
            r,
            "",
            p,
            &[
                "ContentUri",
                "LayerName",
                "Description",
                "CompatibleRuntimes",
                "CompatibleArchitectures",
                "LicenseInfo",
                "RetentionPolicy",
            ],
        )?;
        let mut l = IndexMap::new();
        match p.get("ContentUri") {
            Some(Value::String(uri)) if uri.starts_with("s3://") => {
                let (b, k) = uri["s3://".len()..].split_once('/').ok_or_else(|| {
                    self.err(
                        r,
                        "Properties.ContentUri",
                        ErrorKind::Structure,
                        format!("expected an S3 URI s3://bucket/key, found '{uri}'"),
                    )
                })?;
                l.insert(
                    "Content".to_string(),
                    map([("S3Bucket", s(b)), ("S3Key", s(k))]),
                );
            }
            Some(Value::Map(m)) => {
                self.check_keys(r, "ContentUri", m, &["Bucket", "Key", "Version"])?;
                let (Some(b), Some(k)) = (m.get("Bucket"), m.get("Key")) else {
                    return Err(self.err(
                        r,
                        "Properties.ContentUri",
                        ErrorKind::Structure,
                        "expected ContentUri to have Bucket and Key",
                    ));
                };
                let mut c = IndexMap::new();
                c.insert("S3Bucket".to_string(), b.clone());
                c.insert("S3Key".to_string(), k.clone());
                if let Some(v) = m.get("Version") {
                    c.insert("S3ObjectVersion".to_string(), v.clone());
                }
                l.insert("Content".to_string(), Value::Map(c));
            }
            Some(c @ (Value::String(_) | Value::Text(_) | Value::Ref(_))) => {
                // A local folder or zip: the packager replaces it by Content.
                l.insert("ContentUri".to_string(), c.clone());
            }
            Some(_) => {
                return Err(self.err(
                    r,
                    "Properties.ContentUri",
                    ErrorKind::Structure,
                    "expected ContentUri to be a path, an s3:// URI or {Bucket, Key, Version}",
                ))
            }
            None => {
                return Err(self.err(
                    r,
                    "Properties",
                    ErrorKind::Structure,
                    "a layer needs ContentUri",
                ))
            }
        }
        l.insert(
            "LayerName".to_string(),
            p.get("LayerName")
                .cloned()
                .unwrap_or_else(|| s(&r.logical_id)),
        );
        for k in [
            "Description",
            "CompatibleRuntimes",
            "CompatibleArchitectures",
            "LicenseInfo",
        ] {
            if let Some(v) = p.get(k) {
                l.insert(k.to_string(), v.clone());
            }
        }
        let mut main = r.clone();
        main.resource_type = "AWS::Lambda::LayerVersion".into();
        main.properties = l;
        match p.get("RetentionPolicy").and_then(text).as_deref() {
            None => {}
            Some(x) if x.eq_ignore_ascii_case("retain") => {
                main.deletion_policy = Some("Retain".into())
            }
            Some(x) if x.eq_ignore_ascii_case("delete") => {
                main.deletion_policy = Some("Delete".into())
            }
            Some(x) => {
                return Err(self.err(
                    r,
                    "Properties.RetentionPolicy",
                    ErrorKind::Structure,
                    format!("expected RetentionPolicy to be Retain or Delete, found '{x}'"),
                ))
            }
        }
        self.add(r, main)
    }

    // ---- AWS::Serverless::SimpleTable ----

    fn simple_table(&mut self, r: &Resource) -> R<()> {
        let p = &r.properties;
        self.check_keys(
            r,
            "",
            p,
            &[
                "PrimaryKey",
                "ProvisionedThroughput",
                "TableName",
                "Tags",
                "SSESpecification",
                "PointInTimeRecoverySpecification",
            ],
        )?;
        let (name, ty) = match p.get("PrimaryKey") {
            None => (s("id"), "S".to_string()),
            Some(Value::Map(m)) => {
                self.check_keys(r, "PrimaryKey", m, &["Name", "Type"])?;
                let name = m.get("Name").cloned().ok_or_else(|| {
                    self.err(
                        r,
                        "Properties.PrimaryKey",
                        ErrorKind::Structure,
                        "PrimaryKey needs Name",
                    )
                })?;
                let ty = match m.get("Type").and_then(text).as_deref() {
                    Some("String") => "S",
                    Some("Number") => "N",
                    Some("Binary") => "B",
                    other => return Err(self.err(r, "Properties.PrimaryKey.Type", ErrorKind::Structure, format!("expected PrimaryKey Type to be String, Number or Binary, found {other:?}"))),
                };
                (name, ty.to_string())
            }
            Some(_) => {
                return Err(self.err(
                    r,
                    "Properties.PrimaryKey",
                    ErrorKind::Structure,
                    "expected PrimaryKey to be a mapping with Name and Type",
                ))
            }
        };
        let mut t = IndexMap::new();
        if let Some(n) = p.get("TableName") {
            t.insert("TableName".to_string(), n.clone());
        }
        t.insert(
            "AttributeDefinitions".to_string(),
            Value::List(vec![map([
                ("AttributeName", name.clone()),
                ("AttributeType", s(&ty)),
            ])]),
        );
        t.insert(
            "KeySchema".to_string(),
            Value::List(vec![map([("AttributeName", name), ("KeyType", s("HASH"))])]),
        );
        match p.get("ProvisionedThroughput") {
            Some(pt) => {
                t.insert("BillingMode".to_string(), s("PROVISIONED"));
                t.insert("ProvisionedThroughput".to_string(), pt.clone());
            }
            None => {
                t.insert("BillingMode".to_string(), s("PAY_PER_REQUEST"));
            }
        }
        for k in ["SSESpecification", "PointInTimeRecoverySpecification"] {
            if let Some(v) = p.get(k) {
                t.insert(k.to_string(), v.clone());
            }
        }
        if let Some(tags) = p.get("Tags") {
            if !matches!(tags, Value::Map(_)) {
                return Err(self.err(
                    r,
                    "Properties.Tags",
                    ErrorKind::Structure,
                    "expected Tags to be a mapping of names to values",
                ));
            }
            if let Some(list) = tag_list(Some(tags), false) {
                t.insert("Tags".to_string(), list);
            }
        }
        let mut main = r.clone();
        main.resource_type = "AWS::DynamoDB::Table".into();
        main.properties = t;
        self.add(r, main)
    }
}

/// An HTTP method as API Gateway route keys write it (`any` → `ANY`).
fn method(m: &str) -> String {
    m.to_ascii_uppercase()
}

/// SAM REST `Cors` (`"'*'"` or `{AllowOrigin, AllowMethods, AllowHeaders, MaxAge,
/// AllowCredentials}`, values in single quotes) as an HTTP API `CorsConfiguration`.
fn rest_cors(c: &Value) -> Option<Value> {
    let unquote = |v: &Value| -> Option<Vec<Value>> {
        let t = text(v)?;
        Some(
            t.trim_matches('\'')
                .split(',')
                .map(|x| s(x.trim()))
                .filter(|x| x != &s(""))
                .collect(),
        )
    };
    match c {
        Value::String(_) => Some(map([("AllowOrigins", Value::List(unquote(c)?))])),
        Value::Map(m) => {
            let mut out = IndexMap::new();
            out.insert(
                "AllowOrigins".to_string(),
                Value::List(unquote(m.get("AllowOrigin")?)?),
            );
            for (from, to) in [
                ("AllowMethods", "AllowMethods"),
                ("AllowHeaders", "AllowHeaders"),
            ] {
                if let Some(v) = m.get(from) {
                    out.insert(to.to_string(), Value::List(unquote(v)?));
                }
            }
            if let Some(v) = m.get("MaxAge") {
                let n = text(v)?.trim_matches('\'').to_string();
                out.insert("MaxAge".to_string(), Value::Number(n));
            }
            if let Some(v) = m.get("AllowCredentials") {
                out.insert("AllowCredentials".to_string(), v.clone());
            }
            Some(Value::Map(out))
        }
        _ => None,
    }
}

/// The 10 hex digits SAM appends to a version's id: here the SHA-256 of the function's
/// resolved properties (its code location among them).
fn version_hash(r: &Resource) -> String {
    let mut h = Sha256::new();
    h.update(format!("{:?}", r.properties).as_bytes());
    let digest = h.finalize();
    digest.iter().take(5).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[path = "sam_transform_tests.rs"]
mod tests;
