//! Resolving a parsed template: parameters (with overrides and constraints), pseudo
//! parameters, mappings, conditions, then every created resource's properties and the
//! outputs; resources' dependencies and an order that creates each after what it needs.

use std::collections::{BTreeMap, HashMap};

use indexmap::IndexMap;
use regex::Regex;

use crate::error::{ErrorKind, Loc, Pos, TemplateError};
use crate::intrinsics::Ctx;
use crate::node::{Node, NodeValue};
use crate::sam_implicit::{implicit_resources, Implicit};
use crate::value::Value;

/// The SAM transform's name.
pub const SAM_TRANSFORM: &str = "AWS::Serverless-2016-10-31";

/// What the template is resolved against.
#[derive(Clone, Debug)]
pub struct Settings {
    pub region: String,
    pub account_id: String,
    pub stack_name: String,
    /// The stack's ARN; made from the others with a nil id when not given.
    pub stack_id: Option<String>,
    /// Parameter values given at deploy time (`--parameter-overrides`).
    pub parameters: BTreeMap<String, String>,
}

/// A template with everything known before deploying computed.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedTemplate {
    pub description: Option<String>,
    pub transforms: Vec<String>,
    /// Every parameter's value, as `Ref` gives it.
    pub parameters: IndexMap<String, Value>,
    pub conditions: IndexMap<String, bool>,
    /// The resources that are created, in template order.
    pub resources: IndexMap<String, Resource>,
    /// Resources not created because their condition is false.
    pub skipped: Vec<String>,
    /// Names the SAM transform generates that the template may refer to.
    pub implicit: IndexMap<String, Implicit>,
    pub outputs: IndexMap<String, Output>,
    /// Resource ids in an order where each comes after all it depends on.
    pub order: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    pub logical_id: String,
    pub resource_type: String,
    /// Where the resource is declared.
    pub pos: Pos,
    pub properties: IndexMap<String, Value>,
    pub condition: Option<String>,
    /// `DependsOn` as written.
    pub depends_on: Vec<String>,
    /// Every resource this one needs: references in its properties, then `DependsOn`.
    pub dependencies: Vec<String>,
    pub deletion_policy: Option<String>,
    pub update_replace_policy: Option<String>,
    pub metadata: Option<Node>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    pub value: Value,
    pub description: Option<String>,
    pub export_name: Option<Value>,
}

type R<T> = Result<T, TemplateError>;

const TOP_LEVEL: &[&str] = &[
    "AWSTemplateFormatVersion",
    "Description",
    "Metadata",
    "Parameters",
    "Rules",
    "Mappings",
    "Conditions",
    "Transform",
    "Resources",
    "Outputs",
    "Globals",
];

/// The template's transforms (`Transform` is a name or a list of names).
pub fn transforms(root: &Node, file: &str) -> R<Vec<String>> {
    let Some(t) = root.get("Transform") else {
        return Ok(Vec::new());
    };
    let loc = Loc::root(file).key("Transform");
    let bad = || {
        loc.err(
            t.pos,
            ErrorKind::Structure,
            "expected a transform name or a list of names",
        )
    };
    match &t.value {
        NodeValue::String(s) => Ok(vec![s.clone()]),
        NodeValue::List(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string).ok_or_else(bad))
            .collect(),
        _ => Err(bad()),
    }
}

/// Resolves a parsed template (SAM `Globals` already applied).
pub fn resolve(root: &Node, file: &str, settings: &Settings) -> R<ResolvedTemplate> {
    let loc = Loc::root(file);
    let top = root.as_map().ok_or_else(|| {
        loc.err(
            root.pos,
            ErrorKind::Structure,
            "expected the template to be a mapping",
        )
    })?;
    for (k, (kpos, _)) in top {
        if !TOP_LEVEL.contains(&k.as_str()) {
            return Err(loc.key(k).err(
                *kpos,
                ErrorKind::Structure,
                format!(
                    "unknown template section '{k}'; expected one of {}",
                    TOP_LEVEL.join(", ")
                ),
            ));
        }
    }
    let transforms = transforms(root, file)?;
    if let Some((kpos, _)) = top.get("Globals") {
        if !transforms.iter().any(|t| t == SAM_TRANSFORM) {
            return Err(loc.key("Globals").err(
                *kpos,
                ErrorKind::Structure,
                format!("Globals needs 'Transform: {SAM_TRANSFORM}'"),
            ));
        }
    }
    let section = |name: &str| -> R<Option<&IndexMap<String, (Pos, Node)>>> {
        match top.get(name) {
            None => Ok(None),
            Some((_, n)) => n.as_map().map(Some).ok_or_else(|| {
                loc.key(name).err(
                    n.pos,
                    ErrorKind::Structure,
                    format!("expected {name} to be a mapping, found {}", n.kind_name()),
                )
            }),
        }
    };
    let description = top.get("Description").and_then(|(_, n)| n.scalar_text());

    let mut ctx = Ctx {
        params: pseudo_parameters(settings),
        mappings: top.get("Mappings").map(|(_, n)| n),
        conditions: HashMap::new(),
        resources: IndexMap::new(),
        implicit: IndexMap::new(),
    };

    // Parameters.
    let params = section("Parameters")?;
    let mut parameters = IndexMap::new();
    for name in settings.parameters.keys() {
        if !params.is_some_and(|p| p.contains_key(name)) {
            return Err(loc.key("Parameters").err(
                top.get("Parameters").map_or(root.pos, |(p, _)| *p),
                ErrorKind::InvalidParameterValue,
                format!("Parameters: [{name}] do not exist in the template"),
            ));
        }
    }
    for (name, (kpos, decl)) in params.into_iter().flatten() {
        let v = parameter(
            name,
            *kpos,
            decl,
            settings.parameters.get(name),
            &loc.key("Parameters").key(name),
        )?;
        ctx.params.insert(name.clone(), v.clone());
        parameters.insert(name.clone(), v);
    }

    // Conditions.
    let cond_nodes = section("Conditions")?;
    let mut conditions = IndexMap::new();
    if let Some(nodes) = cond_nodes {
        let mut memo = HashMap::new();
        for (name, (kpos, _)) in nodes {
            let v = named_condition(
                &ctx,
                nodes,
                name,
                *kpos,
                &loc.key("Conditions"),
                &mut memo,
                &mut Vec::new(),
            )?;
            conditions.insert(name.clone(), v);
        }
    }
    ctx.conditions = conditions.iter().map(|(k, v)| (k.clone(), *v)).collect();

    // Resources: which are created.
    let rloc = loc.key("Resources");
    let res_nodes = section("Resources")?.ok_or_else(|| {
        loc.err(
            root.pos,
            ErrorKind::Structure,
            "the template has no Resources section",
        )
    })?;
    if res_nodes.is_empty() {
        return Err(rloc.err(
            top["Resources"].0,
            ErrorKind::Structure,
            "expected at least one resource",
        ));
    }
    let mut skipped = Vec::new();
    for (id, (_, r)) in res_nodes {
        let created = match condition_name(r, &rloc.key(id), &ctx)? {
            Some(c) => ctx.conditions[&c],
            None => true,
        };
        if !created {
            skipped.push(id.clone());
        }
        ctx.resources.insert(id.clone(), created);
    }

    if transforms.iter().any(|t| t == SAM_TRANSFORM) {
        let created = res_nodes
            .iter()
            .filter(|(id, _)| ctx.resources[*id])
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        ctx.implicit = implicit_resources(&created);
    }

    // Resources: properties and dependencies.
    let mut resources = IndexMap::new();
    for (id, (kpos, r)) in res_nodes {
        if !ctx.resources[id] {
            continue;
        }
        let l = rloc.key(id);
        let m = r.as_map().ok_or_else(|| {
            l.err(
                r.pos,
                ErrorKind::Structure,
                format!(
                    "expected a resource (a mapping with Type), found {}",
                    r.kind_name()
                ),
            )
        })?;
        let ty = match m.get("Type") {
            Some((_, t)) => t.as_str().ok_or_else(|| {
                l.key("Type").err(
                    t.pos,
                    ErrorKind::Structure,
                    format!("expected a resource type name, found {}", t.kind_name()),
                )
            })?,
            None => return Err(l.err(*kpos, ErrorKind::Structure, "the resource has no Type")),
        };
        for (k, (p, _)) in m {
            const KEYS: &[&str] = &[
                "Type",
                "Properties",
                "DependsOn",
                "Condition",
                "Metadata",
                "DeletionPolicy",
                "UpdateReplacePolicy",
                "CreationPolicy",
                "UpdatePolicy",
            ];
            if !KEYS.contains(&k.as_str()) {
                return Err(l.key(k).err(
                    *p,
                    ErrorKind::Structure,
                    format!(
                        "unknown resource attribute '{k}'; expected one of {}",
                        KEYS.join(", ")
                    ),
                ));
            }
        }
        let properties = match m.get("Properties") {
            None => IndexMap::new(),
            Some((_, p)) => match ctx.eval(p, &l.key("Properties"))? {
                None | Some(Value::Null) => IndexMap::new(),
                Some(Value::Map(m)) => m,
                Some(_) => {
                    return Err(l.key("Properties").err(
                        p.pos,
                        ErrorKind::Structure,
                        format!(
                            "expected Properties to be a mapping, found {}",
                            p.kind_name()
                        ),
                    ))
                }
            },
        };
        let depends_on = match m.get("DependsOn") {
            None => Vec::new(),
            Some((_, d)) => {
                let dl = l.key("DependsOn");
                let names: Vec<&Node> = match &d.value {
                    NodeValue::List(items) => items.iter().collect(),
                    _ => vec![d],
                };
                let mut out = Vec::new();
                for n in names {
                    let name = n.as_str().ok_or_else(|| {
                        dl.err(
                            n.pos,
                            ErrorKind::Structure,
                            format!("expected a resource name, found {}", n.kind_name()),
                        )
                    })?;
                    match ctx.resources.get(name) {
                        Some(true) => out.push(name.to_string()),
                        Some(false) => return Err(dl.err(n.pos, ErrorKind::MissingReference, format!("DependsOn names the resource '{name}', which is not created because its Condition is false"))),
                        None => return Err(dl.err(n.pos, ErrorKind::MissingReference, format!("DependsOn names '{name}', which is not a resource of the template"))),
                    }
                }
                out
            }
        };
        let mut dependencies = Vec::new();
        for r in Value::Map(properties.clone()).references() {
            // A generated name waits on the resources it comes from.
            let on = match ctx.implicit.get(&r) {
                Some(imp) => imp.owners.iter().filter(|o| *o != id).cloned().collect(),
                None => vec![r],
            };
            for d in on {
                if !dependencies.contains(&d) {
                    dependencies.push(d);
                }
            }
        }
        for d in &depends_on {
            if !dependencies.contains(d) {
                dependencies.push(d.clone());
            }
        }
        let text = |k: &str| m.get(k).and_then(|(_, n)| n.scalar_text());
        resources.insert(
            id.clone(),
            Resource {
                logical_id: id.clone(),
                resource_type: ty.to_string(),
                pos: *kpos,
                properties,
                condition: text("Condition"),
                depends_on,
                dependencies,
                deletion_policy: text("DeletionPolicy"),
                update_replace_policy: text("UpdateReplacePolicy"),
                metadata: m.get("Metadata").map(|(_, n)| n.clone()),
            },
        );
    }
    let order = order(&resources, &rloc)?;

    // Outputs.
    let mut outputs = IndexMap::new();
    for (name, (kpos, o)) in section("Outputs")?.into_iter().flatten() {
        let l = loc.key("Outputs").key(name);
        if let Some(c) = condition_name(o, &l, &ctx)? {
            if !ctx.conditions[&c] {
                continue;
            }
        }
        let value = o
            .get("Value")
            .ok_or_else(|| l.err(*kpos, ErrorKind::Structure, "the output has no Value"))?;
        let value = ctx.eval_some(value, &l.key("Value"))?;
        let export_name = match o.get("Export").and_then(|e| e.get("Name")) {
            Some(n) => Some(ctx.eval_some(n, &l.key("Export").key("Name"))?),
            None => None,
        };
        outputs.insert(
            name.clone(),
            Output {
                value,
                description: o.get("Description").and_then(Node::scalar_text),
                export_name,
            },
        );
    }

    Ok(ResolvedTemplate {
        description,
        transforms,
        parameters,
        conditions,
        resources,
        skipped,
        implicit: ctx.implicit,
        outputs,
        order,
    })
}

/// The pseudo parameters, by name.
fn pseudo_parameters(s: &Settings) -> HashMap<String, Value> {
    let (partition, suffix) = if s.region.starts_with("cn-") {
        ("aws-cn", "amazonaws.com.cn")
    } else if s.region.starts_with("us-gov-") {
        ("aws-us-gov", "amazonaws.com")
    } else {
        ("aws", "amazonaws.com")
    };
    let stack_id = s.stack_id.clone().unwrap_or_else(|| {
        format!(
            "arn:{partition}:cloudformation:{}:{}:stack/{}/00000000-0000-0000-0000-000000000000",
            s.region, s.account_id, s.stack_name
        )
    });
    let str = |v: &str| Value::String(v.to_string());
    HashMap::from([
        ("AWS::AccountId".to_string(), str(&s.account_id)),
        ("AWS::Region".to_string(), str(&s.region)),
        ("AWS::StackName".to_string(), str(&s.stack_name)),
        ("AWS::StackId".to_string(), Value::String(stack_id)),
        ("AWS::Partition".to_string(), str(partition)),
        ("AWS::URLSuffix".to_string(), str(suffix)),
        ("AWS::NotificationARNs".to_string(), Value::List(Vec::new())),
    ])
}

/// A parameter's value from its declaration and the given override.
fn parameter(name: &str, kpos: Pos, decl: &Node, given: Option<&String>, loc: &Loc) -> R<Value> {
    let m = decl.as_map().ok_or_else(|| {
        loc.err(
            decl.pos,
            ErrorKind::Structure,
            format!(
                "expected a parameter declaration (a mapping with Type), found {}",
                decl.kind_name()
            ),
        )
    })?;
    let field = |k: &str| m.get(k).map(|(_, n)| n);
    let ty = field("Type").and_then(Node::as_str).ok_or_else(|| loc.err(kpos, ErrorKind::Structure, "the parameter has no Type (expected String, Number, CommaDelimitedList or List<Number>)"))?;
    let list = match ty {
        "String" | "Number" => false,
        "CommaDelimitedList" | "List<Number>" => true,
        t if t.starts_with("AWS::SSM::Parameter::") => {
            return Err(loc.key("Type").err(decl.pos, ErrorKind::Unsupported, format!("parameter type {t} is not supported by Sous: it has no SSM Parameter Store")));
        }
        t if t.starts_with("List<AWS::") => true,
        t if t.starts_with("AWS::") => false,
        t => return Err(loc.key("Type").err(field("Type").map_or(decl.pos, |n| n.pos), ErrorKind::Structure, format!("unknown parameter type '{t}'; expected String, Number, CommaDelimitedList, List<Number> or an AWS-specific type"))),
    };
    let raw = match given {
        Some(v) => v.clone(),
        None => match field("Default") {
            Some(d) => match &d.value {
                NodeValue::List(items) if list => items
                    .iter()
                    .filter_map(Node::scalar_text)
                    .collect::<Vec<_>>()
                    .join(","),
                _ => d.scalar_text().ok_or_else(|| {
                    loc.key("Default").err(
                        d.pos,
                        ErrorKind::Structure,
                        format!("expected a scalar Default, found {}", d.kind_name()),
                    )
                })?,
            },
            None => {
                return Err(loc.err(
                    kpos,
                    ErrorKind::MissingParameterValue,
                    format!(
                        "Parameters: [{name}] must have values (no Default and no value given)"
                    ),
                ))
            }
        },
    };
    let items: Vec<String> = if list {
        raw.split(',').map(str::to_string).collect()
    } else {
        vec![raw.clone()]
    };
    let invalid = |msg: String| loc.err(kpos, ErrorKind::InvalidParameterValue, msg);
    if let Some(allowed) = field("AllowedValues") {
        let NodeValue::List(allowed) = &allowed.value else {
            return Err(loc.key("AllowedValues").err(
                allowed.pos,
                ErrorKind::Structure,
                "expected a list of allowed values",
            ));
        };
        let allowed: Vec<String> = allowed.iter().filter_map(Node::scalar_text).collect();
        for i in &items {
            if !allowed.contains(i) {
                return Err(invalid(format!(
                    "Parameter '{name}' must be one of AllowedValues [{}], found '{i}'",
                    allowed.join(", ")
                )));
            }
        }
    }
    if let Some(p) = field("AllowedPattern") {
        let pat = p.scalar_text().unwrap_or_default();
        let re = Regex::new(&format!("^(?:{pat})$")).map_err(|e| {
            loc.key("AllowedPattern").err(
                p.pos,
                ErrorKind::Structure,
                format!("AllowedPattern is not a valid regular expression: {e}"),
            )
        })?;
        for i in &items {
            if !re.is_match(i) {
                let msg = field("ConstraintDescription")
                    .and_then(Node::scalar_text)
                    .unwrap_or_else(|| format!("must match pattern {pat}"));
                return Err(invalid(format!("Parameter '{name}' {msg}, found '{i}'")));
            }
        }
    }
    let numeric = |k: &str| {
        field(k)
            .and_then(Node::scalar_text)
            .and_then(|s| s.parse::<f64>().ok())
    };
    for i in &items {
        let len = i.chars().count() as f64;
        if numeric("MinLength").is_some_and(|m| len < m)
            || numeric("MaxLength").is_some_and(|m| len > m)
        {
            return Err(invalid(format!("Parameter '{name}' must be between MinLength and MaxLength characters long, found '{i}'")));
        }
        if ty == "Number" || ty == "List<Number>" {
            let n: f64 = i.trim().parse().map_err(|_| {
                invalid(format!("Parameter '{name}' must be a number, found '{i}'"))
            })?;
            if numeric("MinValue").is_some_and(|m| n < m)
                || numeric("MaxValue").is_some_and(|m| n > m)
            {
                return Err(invalid(format!(
                    "Parameter '{name}' must be between MinValue and MaxValue, found '{i}'"
                )));
            }
        }
    }
    Ok(if list {
        Value::List(items.into_iter().map(Value::String).collect())
    } else {
        Value::String(raw)
    })
}

/// The value of a resource's or output's `Condition` key, checked to exist.
fn condition_name(r: &Node, loc: &Loc, ctx: &Ctx) -> R<Option<String>> {
    let Some(c) = r.get("Condition") else {
        return Ok(None);
    };
    let l = loc.key("Condition");
    let name = c.as_str().ok_or_else(|| {
        l.err(
            c.pos,
            ErrorKind::Structure,
            format!("expected a condition name, found {}", c.kind_name()),
        )
    })?;
    if !ctx.conditions.contains_key(name) {
        return Err(l.err(
            c.pos,
            ErrorKind::MissingReference,
            format!("Condition names '{name}', which is not in Conditions"),
        ));
    }
    Ok(Some(name.to_string()))
}

fn named_condition(
    ctx: &Ctx,
    nodes: &IndexMap<String, (Pos, Node)>,
    name: &str,
    pos: Pos,
    loc: &Loc,
    memo: &mut HashMap<String, bool>,
    visiting: &mut Vec<String>,
) -> R<bool> {
    if let Some(b) = memo.get(name) {
        return Ok(*b);
    }
    let Some((_, node)) = nodes.get(name) else {
        return Err(loc.err(
            pos,
            ErrorKind::MissingReference,
            format!("Condition names '{name}', which is not in Conditions"),
        ));
    };
    if visiting.iter().any(|v| v == name) {
        visiting.push(name.to_string());
        return Err(loc.err(
            pos,
            ErrorKind::Cycle,
            format!(
                "circular dependency between conditions: {}",
                visiting.join(" -> ")
            ),
        ));
    }
    visiting.push(name.to_string());
    let root = Loc::root(loc.file).key("Conditions");
    let b = ctx.condition(node, &root.key(name), &mut |n, p, l| {
        named_condition(ctx, nodes, n, p, l, memo, visiting)
    })?;
    visiting.pop();
    memo.insert(name.to_string(), b);
    Ok(b)
}

/// Resources in dependency order (template order among those that are ready together).
pub(crate) fn order(resources: &IndexMap<String, Resource>, loc: &Loc) -> R<Vec<String>> {
    let mut done: Vec<String> = Vec::new();
    let mut left: Vec<&Resource> = resources.values().collect();
    while !left.is_empty() {
        let ready = left
            .iter()
            .position(|r| r.dependencies.iter().all(|d| done.contains(d)));
        match ready {
            Some(i) => done.push(left.remove(i).logical_id.clone()),
            None => {
                // Everything left waits on something left: report the resources on a cycle.
                let mut cycle: Vec<String> = left
                    .iter()
                    .filter(|r| on_cycle(resources, &r.logical_id))
                    .map(|r| r.logical_id.clone())
                    .collect();
                cycle.sort();
                let first = &resources[&cycle[0]];
                return Err(loc.key(&first.logical_id).err(
                    first.pos,
                    ErrorKind::Cycle,
                    format!(
                        "Circular dependency between resources: [{}]",
                        cycle.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(done)
}

/// True when `id` can reach itself through dependencies.
fn on_cycle(resources: &IndexMap<String, Resource>, id: &str) -> bool {
    let mut seen = Vec::new();
    let mut todo: Vec<&str> = resources[id]
        .dependencies
        .iter()
        .map(String::as_str)
        .collect();
    while let Some(n) = todo.pop() {
        if n == id {
            return true;
        }
        if seen.contains(&n) {
            continue;
        }
        seen.push(n);
        todo.extend(resources[n].dependencies.iter().map(String::as_str));
    }
    false
}
