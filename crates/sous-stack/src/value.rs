//! The resolved template's values. Everything the template can know before deploying is
//! computed; what only exists once resources do (`Ref` / `Fn::GetAtt` of a resource) stays a
//! typed placeholder that [`Value::fill`] replaces when the engine knows it.

use base64::Engine as _;
use indexmap::IndexMap;

/// A resolved value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// A number as written in the template.
    Number(String),
    String(String),
    List(Vec<Value>),
    Map(IndexMap<String, Value>),
    /// `Ref` of a resource: its physical id, known at apply time.
    Ref(String),
    /// `Fn::GetAtt` of a resource's attribute, known at apply time.
    GetAtt(String, String),
    /// A string built from literal text and placeholders (`Fn::Sub`, `Fn::Join`).
    Text(Vec<Part>),
    /// An intrinsic whose argument holds a placeholder that is not a plain string (e.g.
    /// `Fn::Select` of a list attribute): evaluated by [`Value::fill`].
    Deferred {
        function: String,
        args: Vec<Value>,
    },
}

/// What [`Value::fill`] asks: the value of `Ref` (attribute `None`) or `Fn::GetAtt` of a
/// resource.
pub type Lookup<'a> = dyn FnMut(&str, Option<&str>) -> Result<serde_json::Value, String> + 'a;

/// One piece of a [`Value::Text`].
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    Lit(String),
    Ref(String),
    GetAtt(String, String),
}

impl Value {
    /// The resources this value needs (Ref, GetAtt, Sub references), in order of appearance,
    /// each once.
    pub fn references(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect(&self, out: &mut Vec<String>) {
        let mut add = |r: &String| {
            if !out.contains(r) {
                out.push(r.clone());
            }
        };
        match self {
            Value::Ref(r) | Value::GetAtt(r, _) => add(r),
            Value::Text(parts) => {
                for p in parts {
                    if let Part::Ref(r) | Part::GetAtt(r, _) = p {
                        add(r);
                    }
                }
            }
            Value::List(items) | Value::Deferred { args: items, .. } => {
                items.iter().for_each(|v| v.collect(out))
            }
            Value::Map(m) => m.values().for_each(|v| v.collect(out)),
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
        }
    }

    /// True when the value holds no placeholder.
    pub fn is_known(&self) -> bool {
        self.references().is_empty()
    }

    /// The value with every placeholder filled in by `lookup(resource, attribute)` (attribute
    /// `None` for `Ref`), as JSON. Numbers become JSON numbers.
    pub fn fill(&self, lookup: &mut Lookup<'_>) -> Result<serde_json::Value, String> {
        use serde_json::Value as J;
        Ok(match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Number(n) => number_json(n),
            Value::String(s) => J::String(s.clone()),
            Value::List(items) => J::Array(
                items
                    .iter()
                    .map(|v| v.fill(lookup))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Map(m) => J::Object(
                m.iter()
                    .map(|(k, v)| Ok((k.clone(), v.fill(lookup)?)))
                    .collect::<Result<_, String>>()?,
            ),
            Value::Ref(r) => lookup(r, None)?,
            Value::GetAtt(r, a) => lookup(r, Some(a))?,
            Value::Text(parts) => {
                let mut s = String::new();
                for p in parts {
                    match p {
                        Part::Lit(l) => s.push_str(l),
                        Part::Ref(r) => s.push_str(&json_text(&lookup(r, None)?)?),
                        Part::GetAtt(r, a) => s.push_str(&json_text(&lookup(r, Some(a))?)?),
                    }
                }
                J::String(s)
            }
            Value::Deferred { function, args } => {
                let args = args
                    .iter()
                    .map(|v| v.fill(lookup))
                    .collect::<Result<Vec<_>, _>>()?;
                eval_deferred(function, &args)?
            }
        })
    }
}

fn number_json(n: &str) -> serde_json::Value {
    if let Ok(i) = n.parse::<i64>() {
        return i.into();
    }
    n.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or_else(
            || serde_json::Value::String(n.to_string()),
            serde_json::Value::Number,
        )
}

fn json_text(v: &serde_json::Value) -> Result<String, String> {
    match v {
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("expected a string, found {other}")),
    }
}

/// Fn::Select / Fn::Split / Fn::Join / Fn::Base64 on values known at apply time.
fn eval_deferred(function: &str, args: &[serde_json::Value]) -> Result<serde_json::Value, String> {
    use serde_json::Value as J;
    match (function, args) {
        ("Fn::Select", [index, J::Array(items)]) => {
            let i: usize = json_text(index)?
                .parse()
                .map_err(|_| format!("Fn::Select index {index} is not a number"))?;
            items.get(i).cloned().ok_or_else(|| {
                format!(
                    "Fn::Select index {i} is out of range of a list of {}",
                    items.len()
                )
            })
        }
        ("Fn::Split", [delim, s]) => {
            let d = json_text(delim)?;
            Ok(J::Array(
                json_text(s)?
                    .split(d.as_str())
                    .map(|p| J::String(p.to_string()))
                    .collect(),
            ))
        }
        ("Fn::Join", [delim, J::Array(items)]) => {
            let parts = items.iter().map(json_text).collect::<Result<Vec<_>, _>>()?;
            Ok(J::String(parts.join(&json_text(delim)?)))
        }
        ("Fn::Base64", [s]) => Ok(J::String(
            base64::engine::general_purpose::STANDARD.encode(json_text(s)?),
        )),
        _ => Err(format!("{function} cannot be applied to {args:?}")),
    }
}
