//! The SAM transform's `Globals`: each section's properties are merged into the properties of
//! every resource of its type, as the SAM translator does: mappings are merged key by key
//! (recursively), lists are appended (the global items first), and for anything else, or
//! when either side is an intrinsic function, the resource's own value wins.

use crate::error::{ErrorKind, Loc, TemplateError};
use crate::node::{Node, NodeValue};

/// The sections of `Globals` and the resource type each applies to.
pub const SECTIONS: &[(&str, &str)] = &[
    ("Function", "AWS::Serverless::Function"),
    ("Api", "AWS::Serverless::Api"),
    ("HttpApi", "AWS::Serverless::HttpApi"),
    ("SimpleTable", "AWS::Serverless::SimpleTable"),
    ("StateMachine", "AWS::Serverless::StateMachine"),
];

/// Applies the template's `Globals` to its resources and removes the `Globals` section.
pub fn apply(root: &mut Node, file: &str) -> Result<(), TemplateError> {
    let loc = Loc::root(file);
    let NodeValue::Map(top) = &mut root.value else {
        return Ok(());
    };
    let Some((_, globals)) = top.shift_remove("Globals") else {
        return Ok(());
    };
    let gloc = loc.key("Globals");
    let sections = globals.as_map().ok_or_else(|| {
        gloc.err(
            globals.pos,
            ErrorKind::Structure,
            format!(
                "expected Globals to be a mapping, found {}",
                globals.kind_name()
            ),
        )
    })?;
    let mut by_type = Vec::new();
    for (name, (kpos, section)) in sections {
        let Some((_, ty)) = SECTIONS.iter().find(|(n, _)| n == name) else {
            let names: Vec<&str> = SECTIONS.iter().map(|(n, _)| *n).collect();
            return Err(gloc.key(name).err(
                *kpos,
                ErrorKind::Structure,
                format!(
                    "'{name}' is not a supported Globals section; expected one of {}",
                    names.join(", ")
                ),
            ));
        };
        if section.as_map().is_none() {
            return Err(gloc.key(name).err(
                section.pos,
                ErrorKind::Structure,
                format!(
                    "expected a mapping of properties, found {}",
                    section.kind_name()
                ),
            ));
        }
        by_type.push((*ty, section));
    }
    let Some((_, resources)) = top.get_mut("Resources") else {
        return Ok(());
    };
    let NodeValue::Map(resources) = &mut resources.value else {
        return Ok(());
    };
    for (_, (_, resource)) in resources.iter_mut() {
        let Some(ty) = resource
            .get("Type")
            .and_then(Node::as_str)
            .map(str::to_string)
        else {
            continue;
        };
        let Some((_, global)) = by_type.iter().find(|(t, _)| *t == ty) else {
            continue;
        };
        let NodeValue::Map(r) = &mut resource.value else {
            continue;
        };
        match r.get_mut("Properties") {
            Some((_, props)) => *props = merge(global, props),
            None => {
                r.insert("Properties".to_string(), (global.pos, (*global).clone()));
            }
        }
    }
    Ok(())
}

/// SAM's merge of a global value with a resource's own.
pub fn merge(global: &Node, local: &Node) -> Node {
    if global.intrinsic().is_some() || local.intrinsic().is_some() {
        return local.clone();
    }
    match (&global.value, &local.value) {
        (NodeValue::Map(g), NodeValue::Map(l)) => {
            let mut out = g.clone();
            for (k, (kpos, lv)) in l {
                let merged = match g.get(k) {
                    Some((_, gv)) => merge(gv, lv),
                    None => lv.clone(),
                };
                out.insert(k.clone(), (*kpos, merged));
            }
            Node::new(local.pos, NodeValue::Map(out))
        }
        (NodeValue::List(g), NodeValue::List(l)) => Node::new(
            local.pos,
            NodeValue::List(g.iter().chain(l).cloned().collect()),
        ),
        _ => local.clone(),
    }
}
