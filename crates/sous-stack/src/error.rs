//! Template errors: every one names the file, the line and column (1-based) and the path in
//! the template (`Resources.NotesFunction.Properties.Runtime`), and says what was expected.

use std::fmt;

/// A position in the template's text; line and column count from 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// What kind of mistake the template makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Not well-formed YAML or JSON.
    Syntax,
    /// A section, key or value of the wrong shape (e.g. `Resources` not a mapping).
    Structure,
    /// `Fn::Something` or `!Something` that CloudFormation does not define.
    UnknownIntrinsic,
    /// An intrinsic CloudFormation defines but Sous does not resolve (`Fn::GetAZs`, ...).
    Unsupported,
    /// An intrinsic's arguments have the wrong shape.
    BadArguments,
    /// `Ref`, `Fn::GetAtt`, `Fn::Sub`, `DependsOn`, `Fn::FindInMap` or a condition naming
    /// something the template does not declare.
    MissingReference,
    /// A parameter with neither a default nor a value given.
    MissingParameterValue,
    /// A parameter value that breaks the parameter's constraints (AllowedValues, ...).
    InvalidParameterValue,
    /// Resources (or conditions) that depend on each other in a circle.
    Cycle,
}

/// One template error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    pub kind: ErrorKind,
    pub file: String,
    pub pos: Pos,
    /// Dotted path from the template's root, empty for the root itself.
    pub path: String,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.pos.line, self.pos.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for TemplateError {}

/// Where an error is: the file, a position and a path. Cheap to extend while walking.
#[derive(Clone, Debug)]
pub(crate) struct Loc<'a> {
    pub file: &'a str,
    pub path: String,
}

impl<'a> Loc<'a> {
    pub fn root(file: &'a str) -> Self {
        Loc {
            file,
            path: String::new(),
        }
    }
    pub fn key(&self, key: &str) -> Self {
        let path = if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        };
        Loc {
            file: self.file,
            path,
        }
    }
    pub fn index(&self, i: usize) -> Self {
        Loc {
            file: self.file,
            path: format!("{}[{i}]", self.path),
        }
    }
    pub fn err(&self, pos: Pos, kind: ErrorKind, message: impl Into<String>) -> TemplateError {
        TemplateError {
            kind,
            file: self.file.to_string(),
            pos,
            path: self.path.clone(),
            message: message.into(),
        }
    }
}
