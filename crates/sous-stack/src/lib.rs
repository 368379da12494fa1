//! CloudFormation and SAM templates for Sous, parsed and resolved from the string it is
//! given (no I/O), and the local packager ([`package`]: the one module that reads files, a
//! function's code folder, to zip it). The foundation of the stack engine of issue 16
//! (`sous deploy`); nothing uses it yet.
//!
//! [`load`] runs the stages in order:
//! 1. [`parse::parse_template`] reads YAML (with the short-form tags `!Ref`, `!Sub`, `!GetAtt`, ...)
//!    or JSON into one [`Node`] tree whose nodes keep their line and column;
//! 2. [`sam_globals::apply`] runs when `Transform: AWS::Serverless-2016-10-31` is present: the
//!    `Globals` merged into each SAM resource;
//! 3. [`resolve::resolve`] computes parameters (defaults, overrides, AllowedValues, AllowedPattern, ...),
//!    pseudo parameters, `Mappings`, `Conditions`, the intrinsics; `Ref` / `Fn::GetAtt` of
//!    resources stay placeholders ([`Value::Ref`], [`Value::GetAtt`], [`Value::Text`]) that the
//!    engine fills in at apply time with [`Value::fill`]; each resource's dependencies and an
//!    order that creates each after what it needs. In SAM templates the names the transform
//!    generates (`ServerlessHttpApi`, `<Function>Role`, `<Function>.Alias`, ...) can be named
//!    too ([`sam_implicit`]).
//!
//! Every error is a [`TemplateError`] naming the file, line, column and the path in the
//! template, and what was expected.

pub mod error;
mod intrinsics;
pub mod node;
pub mod package;
pub mod parse;
pub mod resolve;
pub mod sam_globals;
pub mod sam_implicit;
pub mod sam_transform;
pub mod serverless;
pub mod value;

pub use error::{ErrorKind, Pos, TemplateError};
pub use node::{Node, NodeValue};
pub use resolve::{Output, ResolvedTemplate, Resource, Settings, SAM_TRANSFORM};
pub use sam_implicit::Implicit;
pub use value::{Part, Value};

/// Parses `text` (the template named `file` in errors), applies SAM's `Globals` when the
/// template uses the SAM transform, and resolves it against `settings`.
pub fn load(
    file: &str,
    text: &str,
    settings: &Settings,
) -> Result<ResolvedTemplate, TemplateError> {
    let mut root = parse::parse_template(file, text)?;
    if resolve::transforms(&root, file)?
        .iter()
        .any(|t| t == SAM_TRANSFORM)
    {
        sam_globals::apply(&mut root, file)?;
    }
    resolve::resolve(&root, file, settings)
}

#[cfg(test)]
mod tests;
