//! CloudFormation / SAM templates (`sous_stack::load`: YAML or JSON with the short-form tags,
//! SAM `Globals`, parameters, conditions, mappings and intrinsics). The input is the
//! template's text, as `sous deploy` reads a template file.
//!
//! Properties: no panic, no endless loop (anchors and aliases, condition and dependency
//! cycles); an error names a line and column inside the text; a resolved template orders
//! every resource exactly once, each after everything it depends on.
#![no_main]

use std::collections::{BTreeMap, HashSet};

use libfuzzer_sys::fuzz_target;
use sous_stack::Settings;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let settings = Settings {
        region: "us-east-1".into(),
        account_id: "000000000000".into(),
        stack_name: "fuzz".into(),
        stack_id: None,
        parameters: BTreeMap::new(),
    };
    let resolved = match sous_stack::load("template.yaml", text, &settings) {
        Ok(r) => r,
        Err(_) => return,
    };
    assert_eq!(resolved.order.len(), resolved.resources.len());
    let mut placed: HashSet<&str> = HashSet::new();
    for id in &resolved.order {
        let resource = &resolved.resources[id.as_str()];
        for dep in &resource.dependencies {
            if resolved.resources.contains_key(dep.as_str()) {
                assert!(placed.contains(dep.as_str()), "{id} ordered before {dep}");
            }
        }
        assert!(placed.insert(id.as_str()), "{id} ordered twice");
    }
});
