//! Reading a template's text: YAML (with CloudFormation's short-form tags) and JSON, through
//! the `yaml-rust2` event parser, into a [`Node`] tree that keeps positions. JSON goes through
//! `serde_json` first so a malformed JSON template gets JSON's error, then through the same
//! event parser (JSON is YAML's flow style), which gives the positions.

use std::collections::HashMap;

use indexmap::IndexMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::error::{ErrorKind, Loc, Pos, TemplateError};
use crate::node::{Node, NodeValue};

/// Parses a template (YAML or JSON, told apart by its first character, as CloudFormation
/// does) named `file` in errors.
pub fn parse_template(file: &str, text: &str) -> Result<Node, TemplateError> {
    let loc = Loc::root(file);
    if text.trim_start().starts_with('{') {
        if let Err(e) = serde_json::from_str::<serde_json::Value>(text) {
            return Err(loc.err(
                Pos {
                    line: e.line(),
                    column: e.column(),
                },
                ErrorKind::Syntax,
                format!(
                    "malformed JSON: {}",
                    e.to_string().split(" at line ").next().unwrap_or_default()
                ),
            ));
        }
    }
    let mut builder = Builder {
        file,
        stack: Vec::new(),
        anchors: HashMap::new(),
        docs: Vec::new(),
        error: None,
    };
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, true) {
        let m = e.marker();
        return Err(loc.err(
            pos(m),
            ErrorKind::Syntax,
            format!("malformed YAML: {}", e.info()),
        ));
    }
    if let Some(e) = builder.error {
        return Err(e);
    }
    let mut docs = builder.docs;
    match docs.len() {
        0 => Err(loc.err(
            Pos { line: 1, column: 1 },
            ErrorKind::Structure,
            "the template is empty; expected a mapping",
        )),
        1 => {
            let root = docs.remove(0);
            if root.as_map().is_none() {
                return Err(loc.err(
                    root.pos,
                    ErrorKind::Structure,
                    format!(
                        "expected the template to be a mapping, found {}",
                        root.kind_name()
                    ),
                ));
            }
            Ok(root)
        }
        _ => Err(loc.err(
            docs[1].pos,
            ErrorKind::Syntax,
            "expected one YAML document, found several",
        )),
    }
}

fn pos(m: &Marker) -> Pos {
    Pos {
        line: m.line(),
        column: m.col() + 1,
    }
}

enum Frame {
    List {
        pos: Pos,
        tag: Option<Tag>,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        tag: Option<Tag>,
        anchor: usize,
        entries: IndexMap<String, (Pos, Node)>,
        key: Option<(String, Pos)>,
    },
}

struct Builder<'a> {
    file: &'a str,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    docs: Vec<Node>,
    error: Option<TemplateError>,
}

impl Builder<'_> {
    fn path(&self) -> String {
        let mut path = String::new();
        for f in &self.stack {
            match f {
                Frame::List { items, .. } => path.push_str(&format!("[{}]", items.len())),
                Frame::Map {
                    key: Some((k, _)), ..
                } => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                }
                Frame::Map { .. } => {}
            }
        }
        path
    }

    fn fail(&mut self, pos: Pos, kind: ErrorKind, message: String) {
        if self.error.is_none() {
            let loc = Loc {
                file: self.file,
                path: self.path(),
            };
            self.error = Some(loc.err(pos, kind, message));
        }
    }

    /// Places a finished node into its parent (or as a document).
    fn push(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::List { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => {
                    let key_text = match node.scalar_text() {
                        Some(k) => k,
                        None if node.value == NodeValue::Null => String::new(),
                        None => {
                            let p = node.pos;
                            self.fail(
                                p,
                                ErrorKind::Structure,
                                format!(
                                    "expected a scalar mapping key, found {}",
                                    node.kind_name()
                                ),
                            );
                            return;
                        }
                    };
                    if entries.contains_key(&key_text) {
                        let p = node.pos;
                        self.fail(
                            p,
                            ErrorKind::Structure,
                            format!("duplicate key '{key_text}'"),
                        );
                        return;
                    }
                    *key = Some((key_text, node.pos));
                }
                Some((k, kpos)) => {
                    entries.insert(k, (kpos, node));
                }
            },
        }
    }

    fn tagged(&mut self, node: Node, tag: Option<Tag>) -> Option<Node> {
        let Some(tag) = tag else { return Some(node) };
        if tag.handle != "!" {
            // `!!str` and friends: the core schema's own tags.
            return Some(match (tag.suffix.as_str(), node.value) {
                ("str", NodeValue::Number(s)) => Node::new(node.pos, NodeValue::String(s)),
                ("str", NodeValue::Bool(b)) => {
                    Node::new(node.pos, NodeValue::String(b.to_string()))
                }
                ("str", NodeValue::Null) => Node::new(node.pos, NodeValue::String(String::new())),
                (_, value) => Node::new(node.pos, value),
            });
        }
        match short_form(&tag.suffix, node) {
            Ok(n) => Some(n),
            Err((p, kind, msg)) => {
                self.fail(p, kind, msg);
                None
            }
        }
    }
}

/// The long form of a short-form tag applied to `arg`.
fn short_form(tag: &str, arg: Node) -> Result<Node, (Pos, ErrorKind, String)> {
    let p = arg.pos;
    let name = match tag {
        "Ref" => "Ref".to_string(),
        "Condition" => "Condition".to_string(),
        "GetAtt" => {
            let arg = match arg.value {
                NodeValue::String(s) => match s.split_once('.') {
                    Some((res, attr)) if !res.is_empty() && !attr.is_empty() => Node::new(
                        p,
                        NodeValue::List(vec![
                            Node::new(p, NodeValue::String(res.to_string())),
                            Node::new(p, NodeValue::String(attr.to_string())),
                        ]),
                    ),
                    _ => {
                        return Err((p, ErrorKind::BadArguments, format!("!GetAtt expects 'LogicalName.AttributeName', found '{s}'")));
                    }
                },
                other => Node::new(p, other),
            };
            return Ok(wrap("Fn::GetAtt", arg));
        }
        "Sub" | "Join" | "If" | "Select" | "Split" | "FindInMap" | "Equals" | "And" | "Or" | "Not"
        | "Base64" | "GetAZs" | "ImportValue" | "Cidr" | "Length" | "ToJsonString" | "Transform" => {
            format!("Fn::{tag}")
        }
        _ => return Err((p, ErrorKind::UnknownIntrinsic, format!("unknown tag '!{tag}'; expected a CloudFormation intrinsic such as !Ref, !Sub or !GetAtt"))),
    };
    Ok(wrap(&name, arg))
}

fn wrap(name: &str, arg: Node) -> Node {
    let p = arg.pos;
    let mut m = IndexMap::new();
    m.insert(name.to_string(), (p, arg));
    Node::new(p, NodeValue::Map(m))
}

/// The YAML 1.2 core schema's reading of a plain scalar.
fn plain_scalar(s: String) -> NodeValue {
    match s.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => NodeValue::Null,
        "true" | "True" | "TRUE" => NodeValue::Bool(true),
        "false" | "False" | "FALSE" => NodeValue::Bool(false),
        _ if is_number(&s) => NodeValue::Number(s),
        _ => NodeValue::String(s),
    }
}

fn is_number(s: &str) -> bool {
    let d = s.strip_prefix(['-', '+']).unwrap_or(s);
    let d = d.strip_prefix('.').unwrap_or(d);
    d.starts_with(|c: char| c.is_ascii_digit()) && s.parse::<f64>().is_ok()
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let p = pos(&mark);
        match ev {
            Event::Scalar(s, style, anchor, tag) => {
                let value = if style == TScalarStyle::Plain
                    && tag.as_ref().is_none_or(|t| t.handle == "!")
                {
                    plain_scalar(s)
                } else {
                    NodeValue::String(s)
                };
                // A tagged plain scalar given an empty value (`!Ref`) stays a string.
                if let Some(node) = self.tagged(Node::new(p, value), tag) {
                    self.push(node, anchor);
                }
            }
            Event::SequenceStart(anchor, tag) => self.stack.push(Frame::List {
                pos: p,
                tag,
                anchor,
                items: Vec::new(),
            }),
            Event::MappingStart(anchor, tag) => self.stack.push(Frame::Map {
                pos: p,
                tag,
                anchor,
                entries: IndexMap::new(),
                key: None,
            }),
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, tag, anchor) = match self.stack.pop() {
                    Some(Frame::List {
                        pos,
                        tag,
                        anchor,
                        items,
                    }) => (Node::new(pos, NodeValue::List(items)), tag, anchor),
                    Some(Frame::Map {
                        pos,
                        tag,
                        anchor,
                        entries,
                        ..
                    }) => (Node::new(pos, NodeValue::Map(entries)), tag, anchor),
                    None => return,
                };
                if let Some(node) = self.tagged(node, tag) {
                    self.push(node, anchor);
                }
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(mut node) => {
                    node.pos = p;
                    self.push(node, 0);
                }
                None => self.fail(
                    p,
                    ErrorKind::Syntax,
                    "alias to an unknown anchor".to_string(),
                ),
            },
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}
