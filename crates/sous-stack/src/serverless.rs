//! Serverless Framework v3 configurations (`serverless.yml`) for AWS, translated into the
//! CloudFormation template the Framework would deploy, as a [`Node`] tree that
//! [`crate::resolve::resolve`] takes next. Pure translation: the text and the options and
//! environment it is given, no I/O.
//!
//! Two stages:
//! 1. variables: `${opt:NAME}`, `${self:path.to.value}`, `${env:NAME}`, `${sls:stage}`, with
//!    fallbacks (`${opt:stage, 'dev'}`, `${self:custom.x, ${env:Y}}`), as whole values or
//!    inside strings; `${Foo}` and `${AWS::Region}` (no lowercase `source:`) are left for
//!    CloudFormation's `Fn::Sub`;
//! 2. the Framework's compilation: one `AWS::Lambda::Function` per function
//!    (`<Name>LambdaFunction`, named `<service>-<stage>-<function>`), the shared role
//!    `IamRoleLambdaExecution` with the configured statements, `AWS::Lambda::LayerVersion`s
//!    (`<Name>LambdaLayer`), the HTTP API of `httpApi` events (`HttpApi`, `HttpApiStage`,
//!    `HttpApiIntegration<Function>`, `HttpApiRoute<Path><Method>`,
//!    `<Function>LambdaPermissionHttpApi`, outputs `HttpApiId` and `HttpApiUrl`), `http`
//!    events served as an HTTP API with payload format 1.0 under the REST API's names
//!    (`ApiGatewayRestApi`, `ApiGatewayStage`, `ApiGatewayMethod<Path><Method>`,
//!    `<Function>LambdaPermissionApiGateway`, output `ServiceEndpoint`), `schedule` events
//!    (`<Function>EventsRuleSchedule<N>` and `<Function>LambdaPermissionEventsRuleSchedule<N>`),
//!    then `resources.Resources` / `resources.Outputs` merged over what was generated.
//!
//! Code is not part of the template: functions and layers get no `Code` / `Content`; the
//! packager reads [`Translated::artifacts`] and [`Translated::package`] and fills them in.
//! Not generated (Sous has no use for them): the deployment bucket, log groups and the
//! per-deploy `AWS::Lambda::Version` resources.

use std::collections::{BTreeMap, HashMap};

use indexmap::IndexMap;

use crate::error::{ErrorKind, Loc, Pos, TemplateError};
use crate::node::{Node, NodeValue};
use crate::parse::parse_template;

type R<T> = Result<T, TemplateError>;

/// What the configuration is translated with: the command line options (`--stage`,
/// `--region`, any `--NAME value`, read by `${opt:NAME}`) and the environment
/// (`${env:NAME}`).
#[derive(Clone, Debug, Default)]
pub struct ServerlessOptions {
    pub options: BTreeMap<String, String>,
    pub env: BTreeMap<String, String>,
}

/// The packaging settings of the service or of one function, as written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Package {
    pub patterns: Vec<String>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub individually: bool,
    /// A prebuilt zip to deploy instead of packaging.
    pub artifact: Option<String>,
}

/// What code a function or layer needs: the packager builds it and sets the resource's
/// `Code` (functions) or `Content` (layers).
#[derive(Clone, Debug, PartialEq)]
pub enum Artifact {
    /// The service's directory, packaged with the service's [`Package`] settings (and the
    /// function's own, when it has any).
    Service { package: Package },
    /// A layer's directory (`layers.<name>.path`), packaged with the layer's settings.
    Layer { path: String, package: Package },
}

/// A translated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Translated {
    /// The CloudFormation template (a mapping with `AWSTemplateFormatVersion`, `Resources`,
    /// `Outputs`), for [`crate::resolve::resolve`].
    pub template: Node,
    pub service: String,
    pub stage: String,
    pub region: String,
    /// `<service>-<stage>`, or `provider.stackName`.
    pub stack_name: String,
    /// The service's `package` settings.
    pub package: Package,
    /// Per function and layer logical id, the code it needs.
    pub artifacts: IndexMap<String, Artifact>,
}

const TOP_LEVEL: &[&str] = &[
    "service",
    "frameworkVersion",
    "configValidationMode",
    "variablesResolutionMode",
    "useDotenv",
    "disabledDeprecations",
    "deprecationNotificationMode",
    "unresolvedVariablesNotificationMode",
    "custom",
    "plugins",
    "provider",
    "package",
    "functions",
    "layers",
    "resources",
];

/// The methods of `http` and `httpApi` events, in the Framework's order.
const ALLOWED_METHODS: &[&str] = &[
    "ANY", "GET", "POST", "PUT", "PATCH", "OPTIONS", "HEAD", "DELETE",
];

const EVENT_TYPES: &[&str] = &["http", "httpApi", "schedule"];

/// Reads `serverless.yml` (named `file` in errors) and translates it.
pub fn translate(file: &str, text: &str, opts: &ServerlessOptions) -> R<Translated> {
    let raw = parse_template(file, text)?;
    let root = resolve_variables(&raw, file, opts)?;
    Compiler::new(&root, file, opts)?.compile()
}

// ---------------------------------------------------------------------------------------
// Variables

/// Resolves every variable of the configuration.
pub fn resolve_variables(raw: &Node, file: &str, opts: &ServerlessOptions) -> R<Node> {
    let mut vars = Vars {
        raw,
        file,
        opts,
        stack: Vec::new(),
        memo: HashMap::new(),
    };
    vars.node(raw, &Loc::root(file))
}

struct Vars<'a> {
    raw: &'a Node,
    file: &'a str,
    opts: &'a ServerlessOptions,
    /// Paths of the strings being resolved, innermost last.
    stack: Vec<String>,
    memo: HashMap<String, Node>,
}

/// One piece of a string: literal text or a variable `${...}` (its inner text).
enum Piece {
    Lit(String),
    Var(String),
}

/// True when `inner` (the text between `${` and `}`) is a Framework variable: it starts with
/// a lowercase source name and a colon. `${AWS::Region}` and `${Name}` belong to `Fn::Sub`.
fn is_variable(inner: &str) -> bool {
    let inner = inner.trim_start();
    let Some((source, _)) = inner.split_once(':') else {
        return false;
    };
    let mut chars = source.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase()) && chars.all(|c| c.is_ascii_alphanumeric())
}

/// Splits a string into literal text and variables; `Ok(None)` when it has none.
fn pieces(s: &str) -> Result<Option<Vec<Piece>>, String> {
    if !s.contains("${") {
        return Ok(None);
    }
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    let mut any = false;
    while i < b.len() {
        if b[i] == b'$' && b.get(i + 1) == Some(&b'{') {
            let start = i + 2;
            let mut depth = 1;
            let mut j = start;
            let mut quote: Option<u8> = None;
            while j < b.len() {
                match (quote, b[j]) {
                    (Some(q), c) if c == q => quote = None,
                    (Some(_), _) => {}
                    (None, b'\'' | b'"') => quote = Some(b[j]),
                    (None, b'$') if b.get(j + 1) == Some(&b'{') => {
                        depth += 1;
                        j += 1;
                    }
                    (None, b'}') => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            if j >= b.len() {
                return Err(format!(
                    "unterminated variable in '{s}': expected a closing '}}'"
                ));
            }
            let inner = &s[start..j];
            if is_variable(inner) {
                if !lit.is_empty() {
                    out.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                out.push(Piece::Var(inner.to_string()));
                any = true;
            } else {
                lit.push_str(&s[i..=j]);
            }
            i = j + 1;
        } else {
            let c = s[i..].chars().next().unwrap_or_default();
            lit.push(c);
            i += c.len_utf8().max(1);
        }
    }
    if !lit.is_empty() {
        out.push(Piece::Lit(lit));
    }
    Ok(any.then_some(out))
}

/// Splits a variable's inner text at its top-level commas: the address, then the fallbacks.
fn split_fallbacks(inner: &str) -> Vec<&str> {
    let b = inner.as_bytes();
    let mut parts = Vec::new();
    let (mut depth, mut quote, mut start) = (0usize, None::<u8>, 0);
    let mut i = 0;
    while i < b.len() {
        match (quote, b[i]) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, b'\'' | b'"') => quote = Some(b[i]),
            (None, b'$') if b.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            (None, b'}') => depth = depth.saturating_sub(1),
            (None, b',') if depth == 0 => {
                parts.push(inner[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(inner[start..].trim());
    parts
}

fn text_node(pos: Pos, s: String) -> Node {
    Node::new(pos, NodeValue::String(s))
}

impl Vars<'_> {
    fn node(&mut self, n: &Node, loc: &Loc) -> R<Node> {
        match &n.value {
            NodeValue::String(s) => self.string(s, n.pos, loc),
            NodeValue::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push(self.node(item, &loc.index(i))?);
                }
                Ok(Node::new(n.pos, NodeValue::List(out)))
            }
            NodeValue::Map(m) => {
                let mut out = IndexMap::with_capacity(m.len());
                for (k, (kpos, v)) in m {
                    out.insert(k.clone(), (*kpos, self.node(v, &loc.key(k))?));
                }
                Ok(Node::new(n.pos, NodeValue::Map(out)))
            }
            _ => Ok(n.clone()),
        }
    }

    fn string(&mut self, s: &str, pos: Pos, loc: &Loc) -> R<Node> {
        let pieces = match pieces(s) {
            Ok(None) => return Ok(text_node(pos, s.to_string())),
            Ok(Some(p)) => p,
            Err(msg) => return Err(loc.err(pos, ErrorKind::BadArguments, msg)),
        };
        if let Some(done) = self.memo.get(&loc.path) {
            return Ok(done.clone());
        }
        if self.stack.contains(&loc.path) {
            return Err(self.cycle(pos, loc, &loc.path));
        }
        self.stack.push(loc.path.clone());
        let result = self.interpolate(&pieces, pos, loc);
        self.stack.pop();
        let result = result?;
        self.memo.insert(loc.path.clone(), result.clone());
        Ok(result)
    }

    fn interpolate(&mut self, pieces: &[Piece], pos: Pos, loc: &Loc) -> R<Node> {
        if let [Piece::Var(v)] = pieces {
            let mut n = self.variable(v, pos, loc)?;
            n.pos = pos;
            return Ok(n);
        }
        let mut out = String::new();
        for p in pieces {
            match p {
                Piece::Lit(l) => out.push_str(l),
                Piece::Var(v) => {
                    let n = self.variable(v, pos, loc)?;
                    match n.scalar_text() {
                        Some(t) => out.push_str(&t),
                        None if n.value == NodeValue::Null => {}
                        None => {
                            return Err(loc.err(
                                pos,
                                ErrorKind::BadArguments,
                                format!(
                                    "the variable '${{{v}}}' is {} and cannot be part of a string",
                                    n.kind_name()
                                ),
                            ))
                        }
                    }
                }
            }
        }
        Ok(text_node(pos, out))
    }

    /// Resolves one variable with its fallbacks.
    fn variable(&mut self, inner: &str, pos: Pos, loc: &Loc) -> R<Node> {
        let parts = split_fallbacks(inner);
        for (i, part) in parts.iter().enumerate() {
            let found = if i == 0 {
                self.address(part, pos, loc)?
            } else {
                Some(self.fallback(part, pos, loc)?)
            };
            match found {
                Some(n) if n.value != NodeValue::Null => return Ok(n),
                // A fallback that resolves to nothing moves on to the next one.
                _ => {}
            }
        }
        Err(loc.err(
            pos,
            ErrorKind::MissingReference,
            format!("cannot resolve variable '${{{inner}}}': no value found and no fallback"),
        ))
    }

    /// A fallback: a quoted string, a number, a boolean, or a variable (which may itself
    /// resolve to nothing, then the next fallback is tried).
    fn fallback(&mut self, part: &str, pos: Pos, loc: &Loc) -> R<Node> {
        for q in ['\'', '"'] {
            if let Some(s) = part.strip_prefix(q).and_then(|p| p.strip_suffix(q)) {
                return Ok(text_node(pos, s.to_string()));
            }
        }
        if let Some(inner) = part.strip_prefix("${").and_then(|p| p.strip_suffix('}')) {
            if is_variable(inner) {
                let parts = split_fallbacks(inner);
                if parts.len() == 1 {
                    return Ok(self
                        .address(parts[0], pos, loc)?
                        .unwrap_or_else(|| Node::new(pos, NodeValue::Null)));
                }
                return self.variable(inner, pos, loc);
            }
        }
        if part.is_empty() {
            return Err(loc.err(
                pos,
                ErrorKind::BadArguments,
                "empty fallback in a variable; expected a quoted string, a number or a variable",
            ));
        }
        Ok(Node::new(
            pos,
            match part {
                "true" => NodeValue::Bool(true),
                "false" => NodeValue::Bool(false),
                "null" => NodeValue::Null,
                p if p.parse::<f64>().is_ok() => NodeValue::Number(p.to_string()),
                p => NodeValue::String(p.to_string()),
            },
        ))
    }

    /// The value at `source:address`, `None` when the source has none.
    fn address(&mut self, addr: &str, pos: Pos, loc: &Loc) -> R<Option<Node>> {
        // The address may itself hold variables (`${self:custom.${opt:stage}}`).
        let addr = if addr.contains("${") {
            let pieces = match pieces(addr) {
                Ok(Some(p)) => p,
                Ok(None) => vec![Piece::Lit(addr.to_string())],
                Err(msg) => return Err(loc.err(pos, ErrorKind::BadArguments, msg)),
            };
            match self.interpolate(&pieces, pos, loc)?.scalar_text() {
                Some(a) => a,
                None => {
                    return Err(loc.err(
                        pos,
                        ErrorKind::BadArguments,
                        format!("the variable address '{addr}' does not resolve to a string"),
                    ))
                }
            }
        } else {
            addr.to_string()
        };
        let Some((source, path)) = addr.split_once(':') else {
            return Err(loc.err(
                pos,
                ErrorKind::BadArguments,
                format!("'{addr}' is not a variable address; expected source:address"),
            ));
        };
        let path = path.trim();
        match source.trim() {
            "opt" => Ok(self
                .opts
                .options
                .get(path)
                .map(|v| text_node(pos, v.clone()))),
            "env" => Ok(self.opts.env.get(path).map(|v| text_node(pos, v.clone()))),
            "sls" => match path {
                "stage" => Ok(Some(text_node(pos, self.stage(pos, loc)?))),
                _ => Err(loc.err(
                    pos,
                    ErrorKind::Unsupported,
                    format!(
                        "'${{sls:{path}}}' is not supported; Sous resolves only ${{sls:stage}}"
                    ),
                )),
            },
            "self" => self.self_ref(path, pos, loc),
            other => Err(loc.err(
                pos,
                ErrorKind::Unsupported,
                format!(
                    "variable source '{other}' is not supported; expected opt, self, env or sls"
                ),
            )),
        }
    }

    /// The stage, as `${sls:stage}` gives it: `--stage`, else `provider.stage`, else dev.
    fn stage(&mut self, pos: Pos, loc: &Loc) -> R<String> {
        if let Some(s) = self.opts.options.get("stage") {
            return Ok(s.clone());
        }
        match self.self_ref("provider.stage", pos, loc)? {
            Some(n) => n.scalar_text().ok_or_else(|| {
                loc.err(
                    pos,
                    ErrorKind::Structure,
                    format!("provider.stage must be a string, found {}", n.kind_name()),
                )
            }),
            None => Ok("dev".to_string()),
        }
    }

    /// `${self:a.b.0.c}`: the configuration's value at the path, resolved.
    fn self_ref(&mut self, path: &str, pos: Pos, loc: &Loc) -> R<Option<Node>> {
        let segments: Vec<&str> = if path.is_empty() {
            Vec::new()
        } else {
            path.split('.').collect()
        };
        let req = segments.join(".");
        // Asking for a value that contains (or is) one being resolved is a cycle.
        if self
            .stack
            .iter()
            .any(|p| *p == req || req.is_empty() || p.starts_with(&format!("{req}.")))
        {
            return Err(self.cycle(pos, loc, &req));
        }
        let raw = self.raw;
        let mut cur: Node = raw.clone();
        let mut cur_loc = Loc::root(self.file);
        for seg in segments {
            if let NodeValue::String(s) = &cur.value {
                cur = self.string(&s.clone(), cur.pos, &cur_loc)?;
            }
            let next = match &cur.value {
                NodeValue::Map(m) => m.get(seg).map(|(_, n)| n.clone()),
                NodeValue::List(items) => seg
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| items.get(i))
                    .cloned(),
                _ => None,
            };
            let Some(next) = next else { return Ok(None) };
            cur_loc = match &cur.value {
                NodeValue::List(_) => cur_loc.index(seg.parse().unwrap_or_default()),
                _ => cur_loc.key(seg),
            };
            cur = next;
        }
        let resolved = self.node(&cur, &cur_loc)?;
        Ok(Some(resolved))
    }

    fn cycle(&self, pos: Pos, loc: &Loc, path: &str) -> TemplateError {
        let mut chain: Vec<String> = self.stack.clone();
        chain.push(path.to_string());
        loc.err(
            pos,
            ErrorKind::Cycle,
            format!(
                "variables refer to each other in a circle: {}",
                chain.join(" -> ")
            ),
        )
    }
}

// ---------------------------------------------------------------------------------------
// Compilation

/// Node builders: generated nodes carry the position of the declaration they come from.
fn s(pos: Pos, v: &str) -> Node {
    text_node(pos, v.to_string())
}

fn num(pos: Pos, v: impl ToString) -> Node {
    Node::new(pos, NodeValue::Number(v.to_string()))
}

fn list(pos: Pos, items: Vec<Node>) -> Node {
    Node::new(pos, NodeValue::List(items))
}

fn map(pos: Pos, entries: Vec<(&str, Node)>) -> Node {
    Node::new(
        pos,
        NodeValue::Map(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), (pos, v)))
                .collect(),
        ),
    )
}

fn reference(pos: Pos, id: &str) -> Node {
    map(pos, vec![("Ref", s(pos, id))])
}

fn get_att(pos: Pos, id: &str, attr: &str) -> Node {
    map(
        pos,
        vec![("Fn::GetAtt", list(pos, vec![s(pos, id), s(pos, attr)]))],
    )
}

fn join(pos: Pos, sep: &str, parts: Vec<Node>) -> Node {
    map(
        pos,
        vec![("Fn::Join", list(pos, vec![s(pos, sep), list(pos, parts)]))],
    )
}

fn resource(pos: Pos, ty: &str, props: Node) -> Node {
    map(pos, vec![("Type", s(pos, ty)), ("Properties", props)])
}

/// lodash's `upperFirst`.
fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// `naming.getNormalizedFunctionName`: `-` → `Dash`, `_` → `Underscore`, first letter up.
pub fn normalized_name(name: &str) -> String {
    upper_first(&name.replace('-', "Dash").replace('_', "Underscore"))
}

/// `naming.normalizePathPart`: lodash `capitalize`, `-` → `Dash`, `{x}` → `xVar`, then only
/// letters and digits.
fn normalize_path_part(part: &str) -> String {
    let mut cap = String::new();
    let mut chars = part.chars();
    if let Some(f) = chars.next() {
        cap.extend(f.to_uppercase());
        cap.push_str(&chars.as_str().to_lowercase());
    }
    let mut s = cap.replace('-', "Dash");
    // `/\{(.*)\}/` is greedy: from the first `{` to the last `}`.
    if let (Some(a), Some(b)) = (s.find('{'), s.rfind('}')) {
        if a < b {
            s = format!("{}{}Var{}", &s[..a], &s[a + 1..b], &s[b + 1..]);
        }
    }
    upper_first(
        &s.chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>(),
    )
}

/// `naming.normalizePath`.
pub fn normalize_path(path: &str) -> String {
    path.split('/').map(normalize_path_part).collect()
}

/// `naming.getHttpApiRouteLogicalId`.
pub fn http_api_route_logical_id(route_key: &str) -> String {
    if route_key == "*" {
        return "HttpApiRouteDefault".into();
    }
    format!("HttpApiRoute{}", normalize_path(route_key))
}

struct Compiler<'a> {
    root: &'a Node,
    file: &'a str,
    service: String,
    stage: String,
    region: String,
    resources: IndexMap<String, (Pos, Node)>,
    outputs: IndexMap<String, (Pos, Node)>,
    artifacts: IndexMap<String, Artifact>,
    package: Package,
    /// Methods of the `http` events that asked for CORS.
    rest_cors: Vec<String>,
}

fn field<'n>(n: &'n Node, key: &str) -> Option<&'n Node> {
    n.get(key).filter(|v| v.value != NodeValue::Null)
}

impl<'a> Compiler<'a> {
    fn new(root: &'a Node, file: &'a str, opts: &ServerlessOptions) -> R<Self> {
        let loc = Loc::root(file);
        let top = root.as_map().expect("parse_template returns a mapping");
        for (k, (kpos, v)) in top {
            if !TOP_LEVEL.contains(&k.as_str()) {
                return Err(loc.key(k).err(
                    *kpos,
                    ErrorKind::Structure,
                    format!(
                        "unknown top-level key '{k}'; expected one of {}",
                        TOP_LEVEL.join(", ")
                    ),
                ));
            }
            if k == "plugins"
                && !matches!(&v.value, NodeValue::Null)
                && v.as_map().is_none_or(|m| !m.is_empty())
                && !matches!(&v.value, NodeValue::List(l) if l.is_empty())
            {
                return Err(loc.key(k).err(
                    v.pos,
                    ErrorKind::Unsupported,
                    "plugins are not supported: Sous translates serverless.yml itself and cannot run Framework plugins",
                ));
            }
        }
        let service_node = field(root, "service").ok_or_else(|| {
            loc.err(
                root.pos,
                ErrorKind::Structure,
                "the configuration has no 'service'",
            )
        })?;
        let service = match &service_node.value {
            // v1's `service: {name: ...}` is still read by v3.
            NodeValue::Map(_) => field(service_node, "name").and_then(Node::scalar_text),
            _ => service_node.scalar_text(),
        }
        .ok_or_else(|| {
            loc.key("service").err(
                service_node.pos,
                ErrorKind::Structure,
                format!(
                    "expected the service name, found {}",
                    service_node.kind_name()
                ),
            )
        })?;
        let provider = field(root, "provider").ok_or_else(|| {
            loc.err(
                root.pos,
                ErrorKind::Structure,
                "the configuration has no 'provider'",
            )
        })?;
        let ploc = loc.key("provider");
        let name = match &provider.value {
            NodeValue::String(s) => (s.clone(), provider.pos, ploc.clone()),
            NodeValue::Map(_) => {
                let n = field(provider, "name").ok_or_else(|| {
                    ploc.err(
                        provider.pos,
                        ErrorKind::Structure,
                        "provider has no 'name'; expected aws",
                    )
                })?;
                (n.scalar_text().unwrap_or_default(), n.pos, ploc.key("name"))
            }
            _ => {
                return Err(ploc.err(
                    provider.pos,
                    ErrorKind::Structure,
                    format!("expected a mapping, found {}", provider.kind_name()),
                ))
            }
        };
        if name.0 != "aws" {
            return Err(name.2.err(
                name.1,
                ErrorKind::Unsupported,
                format!("provider '{}' is not supported; expected aws", name.0),
            ));
        }
        let pick = |opt: &str, key: &str, default: &str| -> String {
            opts.options
                .get(opt)
                .cloned()
                .or_else(|| field(provider, key).and_then(Node::scalar_text))
                .unwrap_or_else(|| default.to_string())
        };
        let stage = pick("stage", "stage", "dev");
        let region = pick("region", "region", "us-east-1");
        let package = match field(root, "package") {
            Some(p) => read_package(p, &loc.key("package"))?,
            None => Package::default(),
        };
        Ok(Compiler {
            root,
            file,
            service,
            stage,
            region,
            resources: IndexMap::new(),
            outputs: IndexMap::new(),
            artifacts: IndexMap::new(),
            package,
            rest_cors: Vec::new(),
        })
    }

    fn loc(&self) -> Loc<'a> {
        Loc::root(self.file)
    }

    fn provider(&self) -> &'a Node {
        field(self.root, "provider").expect("checked in new")
    }

    fn add(&mut self, id: String, pos: Pos, node: Node) {
        self.resources.insert(id, (pos, node));
    }

    fn compile(mut self) -> R<Translated> {
        self.compile_layers()?;
        let functions = self.functions()?;
        // The shared role, unless every function names a role of its own.
        if functions
            .iter()
            .any(|(_, _, f)| self.custom_role(f).is_none())
        {
            self.compile_role(self.root.pos)?;
        }
        let mut http_api_methods = Vec::new();
        for (name, pos, f) in &functions {
            self.compile_function(name, *pos, f, &mut http_api_methods)?;
        }
        self.finish_http_api(&http_api_methods)?;
        self.merge_resources()?;
        let p = self.root.pos;
        let stack_name = field(self.provider(), "stackName")
            .and_then(Node::scalar_text)
            .unwrap_or_else(|| format!("{}-{}", self.service, self.stage));
        let mut top = vec![
            ("AWSTemplateFormatVersion", s(p, "2010-09-09")),
            (
                "Description",
                s(
                    p,
                    "The AWS CloudFormation template for this Serverless application",
                ),
            ),
            ("Resources", Node::new(p, NodeValue::Map(self.resources))),
        ];
        if !self.outputs.is_empty() {
            top.push(("Outputs", Node::new(p, NodeValue::Map(self.outputs))));
        }
        Ok(Translated {
            template: map(p, top),
            service: self.service,
            stage: self.stage,
            region: self.region,
            stack_name,
            package: self.package,
            artifacts: self.artifacts,
        })
    }

    fn functions(&self) -> R<Vec<(String, Pos, &'a Node)>> {
        let Some(fs) = field(self.root, "functions") else {
            return Ok(Vec::new());
        };
        let floc = self.loc().key("functions");
        let m = fs.as_map().ok_or_else(|| {
            floc.err(
                fs.pos,
                ErrorKind::Structure,
                format!("expected a mapping of functions, found {}", fs.kind_name()),
            )
        })?;
        let mut out = Vec::new();
        for (name, (kpos, f)) in m {
            if f.as_map().is_none() {
                return Err(floc.key(name).err(
                    f.pos,
                    ErrorKind::Structure,
                    format!(
                        "expected a function (a mapping with handler), found {}",
                        f.kind_name()
                    ),
                ));
            }
            out.push((name.clone(), *kpos, f));
        }
        Ok(out)
    }

    /// A setting of the function, else of the provider.
    fn setting(&self, f: &'a Node, key: &str) -> Option<&'a Node> {
        field(f, key).or_else(|| field(self.provider(), key))
    }

    fn compile_layers(&mut self) -> R<()> {
        let Some(ls) = field(self.root, "layers") else {
            return Ok(());
        };
        let lloc = self.loc().key("layers");
        let m = ls.as_map().ok_or_else(|| {
            lloc.err(
                ls.pos,
                ErrorKind::Structure,
                format!("expected a mapping of layers, found {}", ls.kind_name()),
            )
        })?;
        for (name, (kpos, l)) in m {
            let loc = lloc.key(name);
            let path = field(l, "path")
                .and_then(Node::scalar_text)
                .ok_or_else(|| {
                    loc.err(
                        l.pos,
                        ErrorKind::Structure,
                        "the layer has no 'path'; expected the layer's directory",
                    )
                })?;
            let p = *kpos;
            let mut props = vec![(
                "LayerName",
                s(
                    p,
                    &field(l, "name")
                        .and_then(Node::scalar_text)
                        .unwrap_or_else(|| name.clone()),
                ),
            )];
            if let Some(d) = field(l, "description") {
                props.push(("Description", d.clone()));
            }
            let runtimes = field(l, "compatibleRuntimes");
            if let Some(r) = runtimes {
                props.push(("CompatibleRuntimes", r.clone()));
            }
            if let Some(a) = field(l, "compatibleArchitectures") {
                props.push(("CompatibleArchitectures", a.clone()));
            }
            if let Some(lic) = field(l, "licenseInfo") {
                props.push(("LicenseInfo", lic.clone()));
            }
            let id = format!("{}LambdaLayer", normalized_name(name));
            self.add(
                id.clone(),
                p,
                resource(p, "AWS::Lambda::LayerVersion", map(p, props)),
            );
            let package = match field(l, "package") {
                Some(pk) => read_package(pk, &loc.key("package"))?,
                None => Package::default(),
            };
            self.artifacts
                .insert(id.clone(), Artifact::Layer { path, package });
            self.outputs.insert(
                format!("{id}QualifiedArn"),
                (
                    p,
                    map(
                        p,
                        vec![
                            ("Description", s(p, "Current Lambda layer version")),
                            ("Value", reference(p, &id)),
                        ],
                    ),
                ),
            );
        }
        Ok(())
    }

    /// The role a function names: its own `role`, else `provider.iam.role` when that is
    /// not a mapping of settings, else `provider.role` (v2).
    fn custom_role(&self, f: &'a Node) -> Option<&'a Node> {
        let provider = self.provider();
        field(f, "role")
            .or_else(|| {
                field(provider, "iam")
                    .and_then(|i| field(i, "role"))
                    .filter(|r| r.as_map().is_none() || r.intrinsic().is_some())
            })
            .or_else(|| field(provider, "role"))
    }

    fn compile_role(&mut self, p: Pos) -> R<()> {
        let provider = self.provider();
        let ploc = self.loc().key("provider");
        // `provider.iam.role.statements` (v3) or `provider.iamRoleStatements` (v2, still read).
        let (statements, sloc) = match field(provider, "iam")
            .and_then(|i| field(i, "role"))
            .and_then(|r| field(r, "statements"))
        {
            Some(st) => (Some(st), ploc.key("iam").key("role").key("statements")),
            None => (
                field(provider, "iamRoleStatements"),
                ploc.key("iamRoleStatements"),
            ),
        };
        if let Some(st) = statements {
            if !matches!(st.value, NodeValue::List(_)) {
                return Err(sloc.err(
                    st.pos,
                    ErrorKind::Structure,
                    format!(
                        "expected a list of IAM statements, found {}",
                        st.kind_name()
                    ),
                ));
            }
        }
        let log_arn = |suffix: &str| {
            map(p, vec![("Fn::Sub", s(p, &format!("arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:/aws/lambda/{}-{}*{suffix}", self.service, self.stage)))])
        };
        let mut stmts = vec![
            map(
                p,
                vec![
                    ("Effect", s(p, "Allow")),
                    (
                        "Action",
                        list(
                            p,
                            vec![
                                s(p, "logs:CreateLogStream"),
                                s(p, "logs:CreateLogGroup"),
                                s(p, "logs:TagResource"),
                            ],
                        ),
                    ),
                    ("Resource", list(p, vec![log_arn(":*")])),
                ],
            ),
            map(
                p,
                vec![
                    ("Effect", s(p, "Allow")),
                    ("Action", list(p, vec![s(p, "logs:PutLogEvents")])),
                    ("Resource", list(p, vec![log_arn(":*:*")])),
                ],
            ),
        ];
        if let Some(NodeValue::List(extra)) = statements.map(|n| &n.value) {
            stmts.extend(extra.iter().cloned());
        }
        let role_name = field(provider, "iam")
            .and_then(|i| field(i, "role"))
            .and_then(|r| field(r, "name"))
            .cloned()
            .unwrap_or_else(|| {
                join(
                    p,
                    "-",
                    vec![
                        s(p, &self.service),
                        s(p, &self.stage),
                        reference(p, "AWS::Region"),
                        s(p, "lambdaRole"),
                    ],
                )
            });
        let assume = map(
            p,
            vec![
                ("Version", s(p, "2012-10-17")),
                (
                    "Statement",
                    list(
                        p,
                        vec![map(
                            p,
                            vec![
                                ("Effect", s(p, "Allow")),
                                (
                                    "Principal",
                                    map(
                                        p,
                                        vec![(
                                            "Service",
                                            list(p, vec![s(p, "lambda.amazonaws.com")]),
                                        )],
                                    ),
                                ),
                                ("Action", list(p, vec![s(p, "sts:AssumeRole")])),
                            ],
                        )],
                    ),
                ),
            ],
        );
        let props = map(
            p,
            vec![
                ("AssumeRolePolicyDocument", assume),
                (
                    "Policies",
                    list(
                        p,
                        vec![map(
                            p,
                            vec![
                                (
                                    "PolicyName",
                                    join(
                                        p,
                                        "-",
                                        vec![
                                            s(p, &self.service),
                                            s(p, &self.stage),
                                            s(p, "lambda"),
                                        ],
                                    ),
                                ),
                                (
                                    "PolicyDocument",
                                    map(
                                        p,
                                        vec![
                                            ("Version", s(p, "2012-10-17")),
                                            ("Statement", list(p, stmts)),
                                        ],
                                    ),
                                ),
                            ],
                        )],
                    ),
                ),
                ("Path", s(p, "/")),
                ("RoleName", role_name),
            ],
        );
        self.add(
            "IamRoleLambdaExecution".into(),
            p,
            resource(p, "AWS::IAM::Role", props),
        );
        Ok(())
    }

    fn compile_function(
        &mut self,
        name: &str,
        p: Pos,
        f: &'a Node,
        http_api_methods: &mut Vec<String>,
    ) -> R<()> {
        let loc = self.loc().key("functions").key(name);
        let handler = field(f, "handler").ok_or_else(|| {
            loc.err(f.pos, ErrorKind::Structure, "the function has no 'handler' (Sous does not deploy container image functions from serverless.yml)")
        })?;
        let id = format!("{}LambdaFunction", normalized_name(name));
        let fname = field(f, "name")
            .and_then(Node::scalar_text)
            .unwrap_or_else(|| format!("{}-{}-{}", self.service, self.stage, name));
        let memory = self
            .setting(f, "memorySize")
            .cloned()
            .unwrap_or_else(|| num(p, 1024));
        let timeout = self
            .setting(f, "timeout")
            .cloned()
            .unwrap_or_else(|| num(p, 6));
        let timeout_secs: f64 = timeout
            .scalar_text()
            .and_then(|t| t.parse().ok())
            .unwrap_or(6.0);
        // v3.0's default runtime; later v3 releases moved it to newer Node.js versions.
        let runtime = self
            .setting(f, "runtime")
            .cloned()
            .unwrap_or_else(|| s(p, "nodejs14.x"));
        let mut props = vec![
            ("Handler", handler.clone()),
            ("Runtime", runtime),
            ("FunctionName", s(p, &fname)),
            ("MemorySize", memory),
            ("Timeout", timeout),
        ];
        if let Some(d) = field(f, "description") {
            props.push(("Description", d.clone()));
        }
        // Environment: the function's variables over the provider's.
        let mut vars: IndexMap<String, (Pos, Node)> = IndexMap::new();
        for (src, sloc) in [
            (
                field(self.provider(), "environment"),
                self.loc().key("provider").key("environment"),
            ),
            (field(f, "environment"), loc.key("environment")),
        ] {
            if let Some(env) = src {
                let m = env.as_map().ok_or_else(|| {
                    sloc.err(
                        env.pos,
                        ErrorKind::Structure,
                        format!(
                            "expected a mapping of environment variables, found {}",
                            env.kind_name()
                        ),
                    )
                })?;
                for (k, v) in m {
                    vars.insert(k.clone(), v.clone());
                }
            }
        }
        if !vars.is_empty() {
            props.push((
                "Environment",
                map(p, vec![("Variables", Node::new(p, NodeValue::Map(vars)))]),
            ));
        }
        if let Some(layers) = self.setting(f, "layers") {
            props.push(("Layers", layers.clone()));
        }
        let custom_role = self.custom_role(f);
        let role = match custom_role {
            // An ARN as is, a name of a role in `resources` as its Arn, an intrinsic as is.
            Some(r) => match r.as_str() {
                Some(arn) if arn.starts_with("arn:") => r.clone(),
                Some(id) => get_att(r.pos, id, "Arn"),
                None => r.clone(),
            },
            None => get_att(p, "IamRoleLambdaExecution", "Arn"),
        };
        props.push(("Role", role));
        let mut res = resource(p, "AWS::Lambda::Function", map(p, props));
        if custom_role.is_none() {
            if let NodeValue::Map(m) = &mut res.value {
                m.insert(
                    "DependsOn".into(),
                    (p, list(p, vec![s(p, "IamRoleLambdaExecution")])),
                );
            }
        }
        self.add(id.clone(), p, res);
        let mut package = self.package.clone();
        if let Some(pk) = field(f, "package") {
            let own = read_package(pk, &loc.key("package"))?;
            package.patterns.extend(own.patterns);
            package.include.extend(own.include);
            package.exclude.extend(own.exclude);
            package.individually |= own.individually;
            package.artifact = own.artifact.or(package.artifact);
        }
        self.artifacts
            .insert(id.clone(), Artifact::Service { package });

        let Some(events) = field(f, "events") else {
            return Ok(());
        };
        let eloc = loc.key("events");
        let NodeValue::List(events) = &events.value else {
            return Err(eloc.err(
                events.pos,
                ErrorKind::Structure,
                format!("expected a list of events, found {}", events.kind_name()),
            ));
        };
        let mut schedule_index = 0;
        for (i, ev) in events.iter().enumerate() {
            let el = eloc.index(i);
            let (ty, body) = match ev.as_map() {
                Some(m) if m.len() == 1 => {
                    let (k, (_, v)) = m.iter().next().expect("one entry");
                    (k.as_str(), v)
                }
                _ => {
                    return Err(el.err(
                        ev.pos,
                        ErrorKind::Structure,
                        "expected an event: a mapping with one key, the event type",
                    ))
                }
            };
            let bl = el.key(ty);
            match ty {
                "httpApi" => {
                    self.http_api_event(name, &id, body, &bl, timeout_secs, http_api_methods)?
                }
                "http" => self.http_event(name, &id, body, &bl, timeout_secs)?,
                "schedule" => self.schedule_event(name, &id, body, &bl, &mut schedule_index)?,
                other => {
                    let kpos = ev
                        .as_map()
                        .and_then(|m| m.get(other))
                        .map_or(ev.pos, |(k, _)| *k);
                    return Err(el.err(
                        kpos,
                        ErrorKind::Unsupported,
                        format!(
                            "event type '{other}' is not supported; expected one of {}",
                            EVENT_TYPES.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// `(method, path)` of an `http` / `httpApi` event: `'GET /x'`, `'*'` or `{method, path}`.
    fn method_path(body: &Node, loc: &Loc) -> R<(String, String, Pos)> {
        let (method, path, p) = Self::method_path_raw(body, loc)?;
        if method == "*" || ALLOWED_METHODS.contains(&method.to_uppercase().as_str()) {
            return Ok((method, path, p));
        }
        Err(loc.err(
            p,
            ErrorKind::Structure,
            format!(
                "invalid method '{method}'; expected *, {}",
                ALLOWED_METHODS.join(", ")
            ),
        ))
    }

    fn method_path_raw(body: &Node, loc: &Loc) -> R<(String, String, Pos)> {
        let p = body.pos;
        match &body.value {
            NodeValue::String(s) if s.trim() == "*" => Ok(("*".into(), String::new(), p)),
            NodeValue::String(s) => match s.trim().split_once(char::is_whitespace) {
                Some((m, path)) => Ok((m.to_string(), path.trim().to_string(), p)),
                None => Err(loc.err(
                    p,
                    ErrorKind::Structure,
                    format!("expected 'METHOD path' or '*', found '{s}'"),
                )),
            },
            NodeValue::Map(_) => {
                let method = field(body, "method").and_then(Node::scalar_text);
                let path = field(body, "path").and_then(Node::scalar_text);
                match (method, path) {
                    (None | Some(_), Some(path)) if path == "*" => {
                        Ok(("*".into(), String::new(), p))
                    }
                    (Some(m), Some(path)) => Ok((m, path, p)),
                    (None, _) => Err(loc.err(p, ErrorKind::Structure, "the event has no 'method'")),
                    (_, None) => Err(loc.err(p, ErrorKind::Structure, "the event has no 'path'")),
                }
            }
            _ => Err(loc.err(
                p,
                ErrorKind::Structure,
                format!(
                    "expected 'METHOD path' or a mapping with method and path, found {}",
                    body.kind_name()
                ),
            )),
        }
    }

    fn permission(
        &mut self,
        id: String,
        p: Pos,
        function_id: &str,
        principal: &str,
        source_arn: Node,
    ) {
        let props = map(
            p,
            vec![
                ("FunctionName", get_att(p, function_id, "Arn")),
                ("Action", s(p, "lambda:InvokeFunction")),
                ("Principal", s(p, principal)),
                ("SourceArn", source_arn),
            ],
        );
        self.add(id, p, resource(p, "AWS::Lambda::Permission", props));
    }

    fn execute_api_arn(p: Pos, api: &str) -> Node {
        join(
            p,
            "",
            vec![
                s(p, "arn:"),
                reference(p, "AWS::Partition"),
                s(p, ":execute-api:"),
                reference(p, "AWS::Region"),
                s(p, ":"),
                reference(p, "AWS::AccountId"),
                s(p, ":"),
                reference(p, api),
                s(p, "/*"),
            ],
        )
    }

    fn integration(p: Pos, api: &str, function_id: &str, payload: &str, timeout_secs: f64) -> Node {
        // The Framework gives the integration the function's timeout plus half a second,
        // at most 29 s.
        let millis = ((timeout_secs + 0.5).min(29.0) * 1000.0).round() as u64;
        resource(
            p,
            "AWS::ApiGatewayV2::Integration",
            map(
                p,
                vec![
                    ("ApiId", reference(p, api)),
                    ("IntegrationType", s(p, "AWS_PROXY")),
                    ("IntegrationUri", get_att(p, function_id, "Arn")),
                    ("PayloadFormatVersion", s(p, payload)),
                    ("TimeoutInMillis", num(p, millis)),
                ],
            ),
        )
    }

    fn route(p: Pos, api: &str, route_key: &str, integration: &str) -> Node {
        let mut r = resource(
            p,
            "AWS::ApiGatewayV2::Route",
            map(
                p,
                vec![
                    ("ApiId", reference(p, api)),
                    ("RouteKey", s(p, route_key)),
                    (
                        "Target",
                        join(
                            p,
                            "/",
                            vec![s(p, "integrations"), reference(p, integration)],
                        ),
                    ),
                ],
            ),
        );
        if let NodeValue::Map(m) = &mut r.value {
            m.insert("DependsOn".into(), (p, s(p, integration)));
        }
        r
    }

    /// The API's name as `naming.getHttpApiName` / `getApiGatewayName` give it: the
    /// configured name, else `<stage>-<service>` (or `<service>-<stage>` with
    /// `shouldStartNameWithService`).
    fn api_name(&self, section: &str, name_key: Option<&str>) -> String {
        let provider = self.provider();
        let sec = field(provider, section);
        let configured = match name_key {
            Some(k) => field(provider, k),
            None => sec.and_then(|h| field(h, "name")),
        };
        if let Some(n) = configured.and_then(Node::scalar_text) {
            return n;
        }
        if matches!(
            sec.and_then(|h| field(h, "shouldStartNameWithService"))
                .map(|n| &n.value),
            Some(NodeValue::Bool(true))
        ) {
            format!("{}-{}", self.service, self.stage)
        } else {
            format!("{}-{}", self.stage, self.service)
        }
    }

    fn ensure_api(&mut self, api: &str, stage_id: &str, stage_name: &str, p: Pos) {
        if self.resources.contains_key(api) {
            return;
        }
        let (name, metrics) = if api == "HttpApi" {
            let metrics = matches!(
                field(self.provider(), "httpApi")
                    .and_then(|h| field(h, "metrics"))
                    .map(|n| &n.value),
                Some(NodeValue::Bool(true))
            );
            (self.api_name("httpApi", None), Some(metrics))
        } else {
            (self.api_name("apiGateway", Some("apiName")), None)
        };
        self.add(
            api.into(),
            p,
            resource(
                p,
                "AWS::ApiGatewayV2::Api",
                map(
                    p,
                    vec![("Name", s(p, &name)), ("ProtocolType", s(p, "HTTP"))],
                ),
            ),
        );
        let mut stage = vec![
            ("ApiId", reference(p, api)),
            ("StageName", s(p, stage_name)),
            ("AutoDeploy", Node::new(p, NodeValue::Bool(true))),
        ];
        if let Some(m) = metrics {
            stage.push((
                "DefaultRouteSettings",
                map(
                    p,
                    vec![("DetailedMetricsEnabled", Node::new(p, NodeValue::Bool(m)))],
                ),
            ));
        }
        self.add(
            stage_id.into(),
            p,
            resource(p, "AWS::ApiGatewayV2::Stage", map(p, stage)),
        );
    }

    fn http_api_event(
        &mut self,
        name: &str,
        function_id: &str,
        body: &Node,
        loc: &Loc,
        timeout: f64,
        methods: &mut Vec<String>,
    ) -> R<()> {
        let (method, path, p) = Self::method_path(body, loc)?;
        let route_key = if method == "*" && path.is_empty() {
            "*".to_string()
        } else {
            if !path.starts_with('/') {
                return Err(loc.err(
                    p,
                    ErrorKind::Structure,
                    format!("the path '{path}' must start with '/'"),
                ));
            }
            let m = if method == "*" {
                "ANY".to_string()
            } else {
                method.to_uppercase()
            };
            format!("{m} {path}")
        };
        let m = route_key.split(' ').next().unwrap_or("*").to_string();
        if !methods.contains(&m) {
            methods.push(m);
        }
        self.ensure_api("HttpApi", "HttpApiStage", "$default", p);
        // `functions.<f>.httpApi.payload`, else `provider.httpApi.payload`, else 2.0.
        let fdecl = field(self.root, "functions").and_then(|fs| field(fs, name));
        let payload = [fdecl, Some(self.provider())]
            .into_iter()
            .flatten()
            .find_map(|n| field(n, "httpApi").and_then(|h| field(h, "payload")))
            .and_then(Node::scalar_text)
            .unwrap_or_else(|| "2.0".to_string());
        let norm = normalized_name(name);
        let integ = format!("HttpApiIntegration{norm}");
        if !self.resources.contains_key(&integ) {
            self.add(
                integ.clone(),
                p,
                Self::integration(p, "HttpApi", function_id, &payload, timeout),
            );
            self.permission(
                format!("{norm}LambdaPermissionHttpApi"),
                p,
                function_id,
                "apigateway.amazonaws.com",
                Self::execute_api_arn(p, "HttpApi"),
            );
        }
        let rid = http_api_route_logical_id(&route_key);
        if self.resources.contains_key(&rid) {
            return Err(loc.err(
                p,
                ErrorKind::Structure,
                format!("duplicate route '{route_key}' (another httpApi event declares it)"),
            ));
        }
        let key = if route_key == "*" {
            "$default"
        } else {
            route_key.as_str()
        };
        self.add(rid, p, Self::route(p, "HttpApi", key, &integ));
        Ok(())
    }

    fn http_event(
        &mut self,
        name: &str,
        function_id: &str,
        body: &Node,
        loc: &Loc,
        timeout: f64,
    ) -> R<()> {
        let (method, path, p) = Self::method_path(body, loc)?;
        if method == "*" && path.is_empty() {
            return Err(loc.err(p, ErrorKind::Structure, "an http event needs 'METHOD path'"));
        }
        let path = path.trim_start_matches('/').to_string();
        let method = if method == "*" {
            "ANY".to_string()
        } else {
            method.to_uppercase()
        };
        self.ensure_api(
            "ApiGatewayRestApi",
            "ApiGatewayStage",
            &self.stage.clone(),
            p,
        );
        let norm = normalized_name(name);
        let integ = format!("ApiGatewayIntegration{norm}");
        if !self.resources.contains_key(&integ) {
            self.add(
                integ.clone(),
                p,
                Self::integration(p, "ApiGatewayRestApi", function_id, "1.0", timeout),
            );
            self.permission(
                format!("{norm}LambdaPermissionApiGateway"),
                p,
                function_id,
                "apigateway.amazonaws.com",
                Self::execute_api_arn(p, "ApiGatewayRestApi"),
            );
        }
        let rid = format!(
            "ApiGatewayMethod{}{}",
            normalize_path(&path),
            upper_first(&method.to_lowercase())
        );
        if self.resources.contains_key(&rid) {
            return Err(loc.err(
                p,
                ErrorKind::Structure,
                format!("duplicate http endpoint '{method} /{path}'"),
            ));
        }
        let key = format!("{method} /{path}");
        self.add(rid, p, Self::route(p, "ApiGatewayRestApi", &key, &integ));
        if let Some(NodeValue::Bool(true)) | Some(NodeValue::Map(_)) =
            body.get("cors").map(|c| &c.value)
        {
            // Recorded as the API's CORS configuration.
            if !self.rest_cors.contains(&method) {
                self.rest_cors.push(method.clone());
            }
        }
        Ok(())
    }

    fn schedule_event(
        &mut self,
        name: &str,
        function_id: &str,
        body: &Node,
        loc: &Loc,
        index: &mut usize,
    ) -> R<()> {
        let p = body.pos;
        let (rates, enabled, input) = match &body.value {
            NodeValue::String(r) => (vec![r.clone()], true, None),
            NodeValue::Map(_) => {
                let rate = field(body, "rate").ok_or_else(|| {
                    loc.err(p, ErrorKind::Structure, "the schedule has no 'rate'")
                })?;
                let rates = match &rate.value {
                    NodeValue::String(r) => vec![r.clone()],
                    NodeValue::List(items) => items
                        .iter()
                        .map(|i| {
                            i.scalar_text().ok_or_else(|| {
                                loc.key("rate").err(
                                    i.pos,
                                    ErrorKind::Structure,
                                    "expected a rate or cron expression",
                                )
                            })
                        })
                        .collect::<R<_>>()?,
                    _ => {
                        return Err(loc.key("rate").err(
                            rate.pos,
                            ErrorKind::Structure,
                            format!(
                                "expected a rate or cron expression, found {}",
                                rate.kind_name()
                            ),
                        ))
                    }
                };
                let enabled = !matches!(
                    field(body, "enabled").map(|e| &e.value),
                    Some(NodeValue::Bool(false))
                );
                (rates, enabled, field(body, "input"))
            }
            _ => {
                return Err(loc.err(
                    p,
                    ErrorKind::Structure,
                    format!(
                        "expected a rate or cron expression or a mapping with rate, found {}",
                        body.kind_name()
                    ),
                ))
            }
        };
        for rate in rates {
            if !(rate.starts_with("rate(") || rate.starts_with("cron(")) || !rate.ends_with(')') {
                return Err(loc.err(
                    p,
                    ErrorKind::Structure,
                    format!("invalid schedule '{rate}'; expected rate(...) or cron(...)"),
                ));
            }
            *index += 1;
            let norm = normalized_name(name);
            let mut target = vec![
                ("Arn", get_att(p, function_id, "Arn")),
                ("Id", s(p, &format!("{name}Schedule"))),
            ];
            if let Some(input) = input {
                let text = match &input.value {
                    NodeValue::String(t) => t.clone(),
                    _ => node_to_json(input).to_string(),
                };
                target.push(("Input", s(input.pos, &text)));
            }
            let rule = resource(
                p,
                "AWS::Events::Rule",
                map(
                    p,
                    [
                        ("ScheduleExpression", Some(s(p, &rate))),
                        (
                            "State",
                            Some(s(p, if enabled { "ENABLED" } else { "DISABLED" })),
                        ),
                        ("Name", field(body, "name").cloned()),
                        ("Description", field(body, "description").cloned()),
                        ("Targets", Some(list(p, vec![map(p, target)]))),
                    ]
                    .into_iter()
                    .filter_map(|(k, v)| v.map(|v| (k, v)))
                    .collect(),
                ),
            );
            let rule_id = format!("{norm}EventsRuleSchedule{index}");
            self.add(rule_id.clone(), p, rule);
            self.permission(
                format!("{norm}LambdaPermissionEventsRuleSchedule{index}"),
                p,
                function_id,
                "events.amazonaws.com",
                get_att(p, &rule_id, "Arn"),
            );
        }
        Ok(())
    }
}

/// The headers an HTTP API allows with `cors: true` (the Framework's `defaultCors`).
const HTTP_API_CORS_HEADERS: &[&str] = &[
    "Content-Type",
    "X-Amz-Date",
    "Authorization",
    "X-Api-Key",
    "X-Amz-Security-Token",
    "X-Amz-User-Agent",
];

/// The headers a REST endpoint allows with `cors: true`.
const REST_CORS_HEADERS: &[&str] = &[
    "Content-Type",
    "X-Amz-Date",
    "Authorization",
    "X-Api-Key",
    "X-Amz-Security-Token",
    "X-Amz-User-Agent",
    "X-Amzn-Trace-Id",
];

/// OPTIONS, then the routes' methods in order, `ANY` standing for every method.
fn cors_methods(methods: &[String]) -> Vec<String> {
    let mut out = vec!["OPTIONS".to_string()];
    for m in methods {
        let expanded: Vec<&str> = if m == "ANY" || m == "*" {
            ALLOWED_METHODS
                .iter()
                .copied()
                .filter(|a| *a != "ANY")
                .collect()
        } else {
            vec![m.as_str()]
        };
        for e in expanded {
            if !out.iter().any(|o| o == e) {
                out.push(e.to_string());
            }
        }
    }
    out
}

fn strs(p: Pos, items: &[&str]) -> Node {
    list(p, items.iter().map(|h| s(p, h)).collect())
}

/// A `CorsConfiguration` in the Framework's key order.
fn cors_config(
    p: Pos,
    credentials: bool,
    headers: Node,
    methods: Node,
    origins: Node,
    expose: Option<Node>,
    max_age: Option<Node>,
) -> Node {
    let mut out = Vec::new();
    if credentials {
        out.push(("AllowCredentials", Node::new(p, NodeValue::Bool(true))));
    }
    out.push(("AllowHeaders", headers));
    out.push(("AllowMethods", methods));
    out.push(("AllowOrigins", origins));
    if let Some(e) = expose {
        out.push(("ExposeHeaders", e));
    }
    if let Some(m) = max_age {
        out.push(("MaxAge", m));
    }
    map(p, out)
}

/// A string or a list of strings as a list (the Framework's `toSet`).
fn as_list(n: &Node) -> Node {
    match n.value {
        NodeValue::List(_) => n.clone(),
        _ => list(n.pos, vec![n.clone()]),
    }
}

/// `provider.httpApi.cors` as an `AWS::ApiGatewayV2::Api` `CorsConfiguration`.
fn http_api_cors(cors: &Node, loc: &Loc, methods: &[String]) -> R<Option<Node>> {
    let p = cors.pos;
    let filled = || {
        let ms = cors_methods(methods);
        list(p, ms.iter().map(|m| s(p, m)).collect())
    };
    match &cors.value {
        NodeValue::Bool(false) | NodeValue::Null => Ok(None),
        NodeValue::Bool(true) => Ok(Some(cors_config(
            p,
            false,
            strs(p, HTTP_API_CORS_HEADERS),
            filled(),
            strs(p, &["*"]),
            None,
            None,
        ))),
        NodeValue::Map(m) => {
            const KEYS: &[&str] = &[
                "allowedOrigins",
                "allowedHeaders",
                "allowedMethods",
                "allowCredentials",
                "exposedResponseHeaders",
                "maxAge",
            ];
            for (k, (kpos, _)) in m {
                if !KEYS.contains(&k.as_str()) {
                    return Err(loc.key(k).err(
                        *kpos,
                        ErrorKind::Structure,
                        format!("unknown cors setting '{k}'; expected {}", KEYS.join(", ")),
                    ));
                }
            }
            let get = |k: &str| field(cors, k);
            Ok(Some(cors_config(
                p,
                matches!(
                    get("allowCredentials").map(|n| &n.value),
                    Some(NodeValue::Bool(true))
                ),
                get("allowedHeaders")
                    .map(as_list)
                    .unwrap_or_else(|| strs(p, HTTP_API_CORS_HEADERS)),
                get("allowedMethods").map(as_list).unwrap_or_else(filled),
                get("allowedOrigins")
                    .map(as_list)
                    .unwrap_or_else(|| strs(p, &["*"])),
                get("exposedResponseHeaders").map(as_list),
                get("maxAge").cloned(),
            )))
        }
        _ => Err(loc.err(
            p,
            ErrorKind::Structure,
            format!(
                "expected true or a mapping of CORS settings, found {}",
                cors.kind_name()
            ),
        )),
    }
}

fn strings(n: &Node, loc: &Loc) -> R<Vec<String>> {
    match &n.value {
        NodeValue::List(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.scalar_text().ok_or_else(|| {
                    loc.index(i).err(
                        item.pos,
                        ErrorKind::Structure,
                        format!("expected a string, found {}", item.kind_name()),
                    )
                })
            })
            .collect(),
        NodeValue::Null => Ok(Vec::new()),
        _ => Err(loc.err(
            n.pos,
            ErrorKind::Structure,
            format!("expected a list of strings, found {}", n.kind_name()),
        )),
    }
}

/// A `package` section: patterns (v3), include / exclude (v2, still read), individually,
/// artifact.
fn read_package(n: &Node, loc: &Loc) -> R<Package> {
    let m = n.as_map().ok_or_else(|| {
        loc.err(
            n.pos,
            ErrorKind::Structure,
            format!("expected a mapping, found {}", n.kind_name()),
        )
    })?;
    let mut p = Package::default();
    for (k, (kpos, v)) in m {
        let l = loc.key(k);
        match k.as_str() {
            "patterns" => p.patterns = strings(v, &l)?,
            "include" => p.include = strings(v, &l)?,
            "exclude" => p.exclude = strings(v, &l)?,
            "individually" => p.individually = matches!(v.value, NodeValue::Bool(true)),
            "artifact" => p.artifact = v.scalar_text(),
            "excludeDevDependencies" => {}
            _ => return Err(l.err(*kpos, ErrorKind::Structure, format!("unknown package setting '{k}'; expected patterns, include, exclude, individually, artifact or excludeDevDependencies"))),
        }
    }
    Ok(p)
}

/// A node as JSON (numbers as numbers when they read as one).
fn node_to_json(n: &Node) -> serde_json::Value {
    use serde_json::Value as J;
    match &n.value {
        NodeValue::Null => J::Null,
        NodeValue::Bool(b) => J::Bool(*b),
        NodeValue::Number(s) => {
            serde_json::from_str::<J>(s).unwrap_or_else(|_| J::String(s.clone()))
        }
        NodeValue::String(s) => J::String(s.clone()),
        NodeValue::List(items) => J::Array(items.iter().map(node_to_json).collect()),
        NodeValue::Map(m) => J::Object(
            m.iter()
                .map(|(k, (_, v))| (k.clone(), node_to_json(v)))
                .collect(),
        ),
    }
}

/// Lodash-style deep merge of `over` into `base` (mappings merge key by key, anything else
/// replaces), as the Framework merges `resources` into what it generated.
fn deep_merge(base: &mut Node, over: Node) {
    match (&mut base.value, over.value) {
        (NodeValue::Map(b), NodeValue::Map(o)) => {
            for (k, (kpos, v)) in o {
                match b.get_mut(&k) {
                    Some((_, existing)) => deep_merge(existing, v),
                    None => {
                        b.insert(k, (kpos, v));
                    }
                }
            }
        }
        (_, value) => {
            base.pos = over.pos;
            base.value = value;
        }
    }
}

impl Compiler<'_> {
    fn finish_http_api(&mut self, methods: &[String]) -> R<()> {
        if let Some((p, _)) = self.resources.get("HttpApi").map(|(p, n)| (*p, n.clone())) {
            let cors = field(self.provider(), "httpApi").and_then(|h| field(h, "cors"));
            if let Some(c) = cors {
                let loc = self.loc().key("provider").key("httpApi").key("cors");
                if let Some(conf) = http_api_cors(c, &loc, methods)? {
                    if let Some((_, api)) = self.resources.get_mut("HttpApi") {
                        deep_merge(
                            api,
                            map(
                                p,
                                vec![("Properties", map(p, vec![("CorsConfiguration", conf)]))],
                            ),
                        );
                    }
                }
            }
            self.outputs.insert(
                "HttpApiId".into(),
                (
                    p,
                    map(
                        p,
                        vec![
                            ("Description", s(p, "Id of the HTTP API")),
                            ("Value", reference(p, "HttpApi")),
                        ],
                    ),
                ),
            );
            self.outputs.insert(
                "HttpApiUrl".into(),
                (
                    p,
                    map(
                        p,
                        vec![
                            ("Description", s(p, "URL of the HTTP API")),
                            (
                                "Value",
                                join(
                                    p,
                                    "",
                                    vec![
                                        s(p, "https://"),
                                        reference(p, "HttpApi"),
                                        s(p, ".execute-api."),
                                        reference(p, "AWS::Region"),
                                        s(p, "."),
                                        reference(p, "AWS::URLSuffix"),
                                    ],
                                ),
                            ),
                        ],
                    ),
                ),
            );
        }
        if let Some(p) = self.resources.get("ApiGatewayRestApi").map(|(p, _)| *p) {
            if !self.rest_cors.is_empty() {
                let ms = cors_methods(&self.rest_cors);
                let conf = cors_config(
                    p,
                    false,
                    strs(p, REST_CORS_HEADERS),
                    list(p, ms.iter().map(|m| s(p, m)).collect()),
                    strs(p, &["*"]),
                    None,
                    None,
                );
                if let Some((_, api)) = self.resources.get_mut("ApiGatewayRestApi") {
                    deep_merge(
                        api,
                        map(
                            p,
                            vec![("Properties", map(p, vec![("CorsConfiguration", conf)]))],
                        ),
                    );
                }
            }
            self.outputs.insert(
                "ServiceEndpoint".into(),
                (
                    p,
                    map(
                        p,
                        vec![
                            ("Description", s(p, "URL of the service endpoint")),
                            (
                                "Value",
                                join(
                                    p,
                                    "",
                                    vec![
                                        s(p, "https://"),
                                        reference(p, "ApiGatewayRestApi"),
                                        s(p, ".execute-api."),
                                        reference(p, "AWS::Region"),
                                        s(p, "."),
                                        reference(p, "AWS::URLSuffix"),
                                        s(p, &format!("/{}", self.stage)),
                                    ],
                                ),
                            ),
                        ],
                    ),
                ),
            );
        }
        Ok(())
    }

    /// `resources`: `Resources` and `Outputs` merged over the generated ones.
    fn merge_resources(&mut self) -> R<()> {
        let Some(res) = field(self.root, "resources") else {
            return Ok(());
        };
        let loc = self.loc().key("resources");
        let m = res.as_map().ok_or_else(|| {
            loc.err(
                res.pos,
                ErrorKind::Structure,
                format!(
                    "expected a mapping with Resources and Outputs, found {}",
                    res.kind_name()
                ),
            )
        })?;
        for (k, (kpos, v)) in m {
            let target = match k.as_str() {
                "Resources" => &mut self.resources,
                "Outputs" => &mut self.outputs,
                "Description" | "AWSTemplateFormatVersion" => continue,
                _ => {
                    return Err(loc.key(k).err(
                        *kpos,
                        ErrorKind::Structure,
                        format!("unknown resources section '{k}'; expected Resources or Outputs"),
                    ))
                }
            };
            if v.value == NodeValue::Null {
                continue;
            }
            let entries = v.as_map().ok_or_else(|| {
                loc.key(k).err(
                    v.pos,
                    ErrorKind::Structure,
                    format!("expected a mapping, found {}", v.kind_name()),
                )
            })?;
            for (id, (ipos, node)) in entries {
                match target.get_mut(id) {
                    Some((_, existing)) => deep_merge(existing, node.clone()),
                    None => {
                        target.insert(id.clone(), (*ipos, node.clone()));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "serverless_tests.rs"]
mod tests;
