//! Evaluating intrinsic functions on the parsed tree: `Ref`, `Fn::GetAtt`, `Fn::Sub`,
//! `Fn::Join`, `Fn::Select`, `Fn::Split`, `Fn::FindInMap`, `Fn::If`, `Fn::Base64`, and the
//! condition functions (`Fn::Equals`, `Fn::And`, `Fn::Or`, `Fn::Not`, `Condition`). Values of
//! resources stay placeholders ([`Value::Ref`], [`Value::GetAtt`], [`Value::Text`]).

use std::collections::HashMap;

use base64::Engine as _;
use indexmap::IndexMap;

use crate::error::{ErrorKind, Loc, Pos, TemplateError};
use crate::node::{Node, NodeValue};
use crate::sam_implicit::Implicit;
use crate::value::{Part, Value};

/// The intrinsics CloudFormation defines that Sous refuses, with why.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "Fn::GetAZs",
        "Sous runs in one place and has no Availability Zones",
    ),
    ("Fn::ImportValue", "Sous has no cross-stack exports"),
    ("Fn::Cidr", "Sous has no VPCs"),
    (
        "Fn::Length",
        "it needs the AWS::LanguageExtensions transform",
    ),
    (
        "Fn::ToJsonString",
        "it needs the AWS::LanguageExtensions transform",
    ),
    ("Fn::Transform", "Sous runs no macros"),
];

/// What names mean while evaluating.
pub(crate) struct Ctx<'t> {
    /// Parameters and pseudo parameters (not `AWS::NoValue`), by name.
    pub params: HashMap<String, Value>,
    pub mappings: Option<&'t Node>,
    pub conditions: HashMap<String, bool>,
    /// Every resource of the template: true when it is created (its condition holds).
    pub resources: IndexMap<String, bool>,
    /// Names the SAM transform generates (empty without the transform).
    pub implicit: IndexMap<String, Implicit>,
}

type R<T> = Result<T, TemplateError>;

impl Ctx<'_> {
    /// Evaluates `node`; `None` is `AWS::NoValue` (the key or item is removed).
    pub fn eval(&self, node: &Node, loc: &Loc) -> R<Option<Value>> {
        if let Some((name, arg)) = node.intrinsic() {
            return self.call(name, arg, node.pos, &loc.key(name));
        }
        Ok(Some(match &node.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Number(n) => Value::Number(n.clone()),
            NodeValue::String(s) => Value::String(s.clone()),
            NodeValue::List(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    out.extend(self.eval(item, &loc.index(i))?);
                }
                Value::List(out)
            }
            NodeValue::Map(m) => {
                let mut out = IndexMap::new();
                for (k, (_, v)) in m {
                    if let Some(v) = self.eval(v, &loc.key(k))? {
                        out.insert(k.clone(), v);
                    }
                }
                Value::Map(out)
            }
        }))
    }

    /// Evaluates `node`, where `AWS::NoValue` is not allowed.
    pub fn eval_some(&self, node: &Node, loc: &Loc) -> R<Value> {
        self.eval(node, loc)?.ok_or_else(|| {
            loc.err(
                node.pos,
                ErrorKind::BadArguments,
                "AWS::NoValue is not allowed here",
            )
        })
    }

    /// Evaluates `node` to a string known now (a parameter, a literal, ...).
    fn eval_text(&self, node: &Node, loc: &Loc, what: &str) -> R<String> {
        match self.eval_some(node, loc)? {
            Value::String(s) | Value::Number(s) => Ok(s),
            Value::Bool(b) => Ok(b.to_string()),
            other => Err(loc.err(
                node.pos,
                ErrorKind::BadArguments,
                format!(
                    "expected {what} as a string known before deploying, found {}",
                    describe(&other)
                ),
            )),
        }
    }

    fn call(&self, name: &str, arg: &Node, pos: Pos, loc: &Loc) -> R<Option<Value>> {
        let bad = |msg: &str| {
            loc.err(
                pos,
                ErrorKind::BadArguments,
                format!("{name} expects {msg}, found {}", arg.kind_name()),
            )
        };
        match name {
            "Ref" => {
                let target = arg.as_str().ok_or_else(|| bad("the name of a parameter or resource"))?;
                self.reference(target, pos, loc)
            }
            "Fn::GetAtt" => {
                let (res, attr) = match &arg.value {
                    NodeValue::List(items) if items.len() == 2 => {
                        let res = items[0].as_str().ok_or_else(|| bad("[LogicalName, AttributeName]"))?;
                        (res.to_string(), self.eval_text(&items[1], &loc.index(1), "the attribute name")?)
                    }
                    NodeValue::String(s) => match s.split_once('.') {
                        Some((r, a)) if !r.is_empty() && !a.is_empty() => (r.to_string(), a.to_string()),
                        _ => return Err(bad("'LogicalName.AttributeName' or [LogicalName, AttributeName]")),
                    },
                    _ => return Err(bad("[LogicalName, AttributeName]")),
                };
                self.resource(&res, "Fn::GetAtt", pos, loc)?;
                Ok(Some(Value::GetAtt(res, attr)))
            }
            "Fn::Sub" => {
                let (template, tpos, vars) = match &arg.value {
                    NodeValue::String(s) => (s.as_str(), arg.pos, None),
                    NodeValue::List(items) if items.len() == 2 => {
                        let s = items[0].as_str().ok_or_else(|| bad("a string or [String, {Var: Value}]"))?;
                        let vars = items[1].as_map().ok_or_else(|| bad("a string or [String, {Var: Value}]"))?;
                        (s, items[0].pos, Some(vars))
                    }
                    _ => return Err(bad("a string or [String, {Var: Value}]")),
                };
                let mut parts = Vec::new();
                let mut rest = template;
                while let Some(start) = rest.find("${") {
                    parts.push(Part::Lit(rest[..start].to_string()));
                    let after = &rest[start + 2..];
                    if let Some(lit) = after.strip_prefix('!') {
                        // `${!Literal}` is the text `${Literal}`.
                        parts.push(Part::Lit("${".to_string()));
                        rest = lit;
                        continue;
                    }
                    let end = after.find('}').ok_or_else(|| {
                        loc.err(tpos, ErrorKind::BadArguments, format!("Fn::Sub: '${{' without a closing '}}' in '{template}'"))
                    })?;
                    let var = after[..end].trim();
                    rest = &after[end + 1..];
                    let value = match vars.and_then(|v| v.get(var)) {
                        Some((_, n)) => self.eval_some(n, &loc.index(1).key(var))?,
                        None if self.params.contains_key(var) || var == "AWS::NoValue" => {
                            self.reference(var, tpos, loc)?.unwrap_or(Value::String(String::new()))
                        }
                        None if self.implicit.contains_key(var) => Value::Ref(var.to_string()),
                        None => match var.split_once('.') {
                            Some((res, attr)) if self.resources.contains_key(res) => {
                                self.resource(res, "Fn::Sub", tpos, loc)?;
                                Value::GetAtt(res.to_string(), attr.to_string())
                            }
                            _ => self.reference(var, tpos, loc)?.unwrap_or(Value::Null),
                        },
                    };
                    push_text(&mut parts, value).map_err(|m| loc.err(tpos, ErrorKind::BadArguments, format!("Fn::Sub: ${{{var}}} {m}")))?;
                }
                parts.push(Part::Lit(rest.to_string()));
                Ok(Some(text(parts)))
            }
            "Fn::Join" => {
                let [delim, list] = two(arg).ok_or_else(|| bad("[Delimiter, [Values]]"))?;
                let delim = delim.as_str().ok_or_else(|| bad("[Delimiter, [Values]] with a string delimiter"))?.to_string();
                match self.eval_some(list, &loc.index(1))? {
                    Value::List(items) => {
                        let mut parts = Vec::new();
                        for (i, item) in items.into_iter().enumerate() {
                            if i > 0 {
                                parts.push(Part::Lit(delim.clone()));
                            }
                            push_text(&mut parts, item).map_err(|m| loc.err(list.pos, ErrorKind::BadArguments, format!("Fn::Join: item {i} {m}")))?;
                        }
                        Ok(Some(text(parts)))
                    }
                    v if !v.is_known() => Ok(Some(Value::Deferred { function: name.into(), args: vec![Value::String(delim), v] })),
                    other => Err(loc.err(list.pos, ErrorKind::BadArguments, format!("Fn::Join expects a list of values, found {}", describe(&other)))),
                }
            }
            "Fn::Select" => {
                let [index, list] = two(arg).ok_or_else(|| bad("[Index, [Values]]"))?;
                let i = self.eval_text(index, &loc.index(0), "the index")?;
                let i: usize = i.trim().parse().map_err(|_| loc.err(index.pos, ErrorKind::BadArguments, format!("Fn::Select expects a non-negative integer index, found '{i}'")))?;
                match self.eval_some(list, &loc.index(1))? {
                    Value::List(items) => {
                        let n = items.len();
                        items.into_iter().nth(i).map(Some).ok_or_else(|| {
                            loc.err(index.pos, ErrorKind::BadArguments, format!("Fn::Select index {i} is out of range of a list of {n}"))
                        })
                    }
                    v if !v.is_known() => Ok(Some(Value::Deferred { function: name.into(), args: vec![Value::Number(i.to_string()), v] })),
                    other => Err(loc.err(list.pos, ErrorKind::BadArguments, format!("Fn::Select expects a list, found {}", describe(&other)))),
                }
            }
            "Fn::Split" => {
                let [delim, source] = two(arg).ok_or_else(|| bad("[Delimiter, String]"))?;
                let delim = delim.as_str().ok_or_else(|| bad("[Delimiter, String] with a string delimiter"))?.to_string();
                if delim.is_empty() {
                    return Err(loc.err(pos, ErrorKind::BadArguments, "Fn::Split expects a non-empty delimiter"));
                }
                match self.eval_some(source, &loc.index(1))? {
                    Value::String(s) => Ok(Some(Value::List(s.split(delim.as_str()).map(|p| Value::String(p.into())).collect()))),
                    v if !v.is_known() => Ok(Some(Value::Deferred { function: name.into(), args: vec![Value::String(delim), v] })),
                    other => Err(loc.err(source.pos, ErrorKind::BadArguments, format!("Fn::Split expects a string, found {}", describe(&other)))),
                }
            }
            "Fn::Base64" => match self.eval_some(arg, loc)? {
                Value::String(s) => Ok(Some(Value::String(base64::engine::general_purpose::STANDARD.encode(s)))),
                v if !v.is_known() => Ok(Some(Value::Deferred { function: name.into(), args: vec![v] })),
                other => Err(loc.err(arg.pos, ErrorKind::BadArguments, format!("Fn::Base64 expects a string, found {}", describe(&other)))),
            },
            "Fn::FindInMap" => {
                let NodeValue::List(items) = &arg.value else { return Err(bad("[MapName, TopLevelKey, SecondLevelKey]")) };
                if items.len() != 3 {
                    return Err(bad("[MapName, TopLevelKey, SecondLevelKey]"));
                }
                let keys = items
                    .iter()
                    .enumerate()
                    .map(|(i, n)| self.eval_text(n, &loc.index(i), "a Fn::FindInMap key"))
                    .collect::<R<Vec<_>>>()?;
                let missing = |what: String| loc.err(pos, ErrorKind::MissingReference, what);
                let map = self
                    .mappings
                    .and_then(|m| m.get(&keys[0]))
                    .ok_or_else(|| missing(format!("Fn::FindInMap: Mappings has no map '{}'", keys[0])))?;
                let top = map
                    .get(&keys[1])
                    .ok_or_else(|| missing(format!("Fn::FindInMap: map '{}' has no key '{}'", keys[0], keys[1])))?;
                let value = top.get(&keys[2]).ok_or_else(|| {
                    missing(format!("Fn::FindInMap: map '{}' key '{}' has no key '{}'", keys[0], keys[1], keys[2]))
                })?;
                self.eval(value, &Loc::root(loc.file).key("Mappings").key(&keys[0]).key(&keys[1]).key(&keys[2]))
            }
            "Fn::If" => {
                let NodeValue::List(items) = &arg.value else { return Err(bad("[ConditionName, ValueIfTrue, ValueIfFalse]")) };
                let [cond, yes, no] = items.as_slice() else { return Err(bad("[ConditionName, ValueIfTrue, ValueIfFalse]")) };
                let cname = cond.as_str().ok_or_else(|| bad("[ConditionName, ValueIfTrue, ValueIfFalse]"))?;
                let holds = *self.conditions.get(cname).ok_or_else(|| {
                    loc.err(cond.pos, ErrorKind::MissingReference, format!("Fn::If names the condition '{cname}', which is not in Conditions"))
                })?;
                if holds {
                    self.eval(yes, &loc.index(1))
                } else {
                    self.eval(no, &loc.index(2))
                }
            }
            "Fn::Equals" | "Fn::And" | "Fn::Or" | "Fn::Not" => Err(loc.err(
                pos,
                ErrorKind::BadArguments,
                format!("{name} can only be used in Conditions (or a condition function inside them)"),
            )),
            _ => match UNSUPPORTED.iter().find(|(n, _)| *n == name) {
                Some((_, why)) => Err(loc.err(pos, ErrorKind::Unsupported, format!("{name} is not supported by Sous: {why}"))),
                None => Err(loc.err(
                    pos,
                    ErrorKind::UnknownIntrinsic,
                    format!("unknown intrinsic function {name}; expected one of Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Select, Fn::Split, Fn::FindInMap, Fn::If, Fn::Base64"),
                )),
            },
        }
    }

    /// `Ref` of a name: a parameter's value, `AWS::NoValue`, or a resource's placeholder.
    fn reference(&self, target: &str, pos: Pos, loc: &Loc) -> R<Option<Value>> {
        if target == "AWS::NoValue" {
            return Ok(None);
        }
        if let Some(v) = self.params.get(target) {
            return Ok(Some(v.clone()));
        }
        self.resource(target, "Ref", pos, loc)?;
        Ok(Some(Value::Ref(target.to_string())))
    }

    /// Checks that `name` is a resource that will be created.
    fn resource(&self, name: &str, by: &str, pos: Pos, loc: &Loc) -> R<()> {
        match self.resources.get(name) {
            Some(true) => Ok(()),
            None if self.implicit.contains_key(name) => Ok(()),
            Some(false) => Err(loc.err(
                pos,
                ErrorKind::MissingReference,
                format!("{by} names the resource '{name}', which is not created because its Condition is false"),
            )),
            None if by == "Ref" || by == "Fn::Sub" => Err(loc.err(
                pos,
                ErrorKind::MissingReference,
                format!("{by} names '{name}', which is neither a parameter, a pseudo parameter nor a resource of the template"),
            )),
            None => Err(loc.err(pos, ErrorKind::MissingReference, format!("{by} names '{name}', which is not a resource of the template"))),
        }
    }

    /// Evaluates a condition expression (`Fn::Equals`, `Fn::And`, `Fn::Or`, `Fn::Not`,
    /// `Condition`); `named` answers `Condition: Name` (and detects cycles).
    pub fn condition(
        &self,
        node: &Node,
        loc: &Loc,
        named: &mut dyn FnMut(&str, Pos, &Loc) -> R<bool>,
    ) -> R<bool> {
        let m = node.as_map().filter(|m| m.len() == 1);
        let Some((name, (_, arg))) = m.and_then(|m| m.iter().next()) else {
            return Err(loc.err(node.pos, ErrorKind::BadArguments, format!("expected a condition function (Fn::Equals, Fn::And, Fn::Or, Fn::Not, Condition), found {}", node.kind_name())));
        };
        let loc = &loc.key(name);
        let items = |min: usize, max: usize| match &arg.value {
            NodeValue::List(items) if (min..=max).contains(&items.len()) => Ok(items),
            _ => Err(loc.err(
                arg.pos,
                ErrorKind::BadArguments,
                if min == max {
                    format!("{name} expects a list of {min}, found {}", arg.kind_name())
                } else {
                    format!("{name} expects a list of {min} to {max} conditions")
                },
            )),
        };
        match name.as_str() {
            "Condition" => {
                let n = arg.as_str().ok_or_else(|| loc.err(arg.pos, ErrorKind::BadArguments, "Condition expects a condition name"))?;
                named(n, arg.pos, loc)
            }
            "Fn::Equals" => {
                let items = items(2, 2)?;
                let a = self.eval_some(&items[0], &loc.index(0))?;
                let b = self.eval_some(&items[1], &loc.index(1))?;
                Ok(scalar(&a).zip(scalar(&b)).map_or(a == b, |(a, b)| a == b))
            }
            "Fn::Not" => Ok(!self.condition(&items(1, 1)?[0], &loc.index(0), named)?),
            "Fn::And" | "Fn::Or" => {
                let mut all = Vec::new();
                for (i, c) in items(2, 10)?.iter().enumerate() {
                    all.push(self.condition(c, &loc.index(i), named)?);
                }
                Ok(if name == "Fn::And" { all.iter().all(|b| *b) } else { all.iter().any(|b| *b) })
            }
            _ => Err(loc.err(node.pos, ErrorKind::BadArguments, format!("expected a condition function (Fn::Equals, Fn::And, Fn::Or, Fn::Not, Condition), found {name}"))),
        }
    }
}

fn two(arg: &Node) -> Option<[&Node; 2]> {
    match &arg.value {
        NodeValue::List(items) if items.len() == 2 => Some([&items[0], &items[1]]),
        _ => None,
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) | Value::Number(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::List(_) => "a list",
        Value::Map(_) => "a mapping",
        Value::Ref(_) | Value::GetAtt(..) | Value::Text(_) | Value::Deferred { .. } => {
            "a value known only when resources exist"
        }
    }
}

/// Appends `value` as text to a string under construction.
fn push_text(parts: &mut Vec<Part>, value: Value) -> Result<(), String> {
    match value {
        Value::String(s) | Value::Number(s) => parts.push(Part::Lit(s)),
        Value::Bool(b) => parts.push(Part::Lit(b.to_string())),
        Value::Ref(r) => parts.push(Part::Ref(r)),
        Value::GetAtt(r, a) => parts.push(Part::GetAtt(r, a)),
        Value::Text(p) => parts.extend(p),
        other => return Err(format!("must be a string, found {}", describe(&other))),
    }
    Ok(())
}

/// A string from parts: plain `String` when no placeholder is left.
fn text(parts: Vec<Part>) -> Value {
    let mut merged: Vec<Part> = Vec::new();
    for p in parts {
        match (merged.last_mut(), p) {
            (_, Part::Lit(l)) if l.is_empty() => {}
            (Some(Part::Lit(prev)), Part::Lit(l)) => prev.push_str(&l),
            (_, p) => merged.push(p),
        }
    }
    match merged.as_slice() {
        [] => Value::String(String::new()),
        [Part::Lit(s)] => Value::String(s.clone()),
        [Part::Ref(r)] => Value::Ref(r.clone()),
        [Part::GetAtt(r, a)] => Value::GetAtt(r.clone(), a.clone()),
        _ => Value::Text(merged),
    }
}
