//! The parsed template: one tree for YAML and JSON in which every node keeps its position.
//! Short-form YAML tags are already rewritten to their long forms (`!Ref X` is the mapping
//! `{Ref: X}`, `!GetAtt A.B` is `{Fn::GetAtt: [A, B]}`), so later stages see one shape.

use indexmap::IndexMap;

use crate::error::Pos;

/// A value of the template with the position where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: NodeValue,
}

#[derive(Clone, Debug, PartialEq)]
pub enum NodeValue {
    Null,
    Bool(bool),
    /// A number as written (`1.10` stays `1.10` when used as a string).
    Number(String),
    String(String),
    List(Vec<Node>),
    /// Keys in template order; each key keeps its own position.
    Map(IndexMap<String, (Pos, Node)>),
}

impl Node {
    pub fn new(pos: Pos, value: NodeValue) -> Self {
        Node { pos, value }
    }

    pub fn as_map(&self) -> Option<&IndexMap<String, (Pos, Node)>> {
        match &self.value {
            NodeValue::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            NodeValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value of `key` when this node is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map().and_then(|m| m.get(key)).map(|(_, n)| n)
    }

    /// A scalar as a string (strings, numbers and booleans), as CloudFormation reads them.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            NodeValue::String(s) | NodeValue::Number(s) => Some(s.clone()),
            NodeValue::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// If this node is an intrinsic function call (a mapping with the single key `Ref` or
    /// `Fn::*`), its name and argument.
    pub fn intrinsic(&self) -> Option<(&str, &Node)> {
        let m = self.as_map()?;
        if m.len() != 1 {
            return None;
        }
        let (k, (_, v)) = m.iter().next()?;
        (k == "Ref" || k.starts_with("Fn::")).then_some((k.as_str(), v))
    }

    /// A short description of the node's type for error messages.
    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "a boolean",
            NodeValue::Number(_) => "a number",
            NodeValue::String(_) => "a string",
            NodeValue::List(_) => "a list",
            NodeValue::Map(_) => "a mapping",
        }
    }
}
