//! Function names, qualifiers and ARNs (`sous_types::names`): the four forms of
//! `FunctionName`, the `Qualifier` parameter, role ARNs. The input is the FunctionName, then
//! optionally a newline and a Qualifier query value.
//!
//! Properties: no panic; a parsed name is a bare name (1 to 64 of `[a-zA-Z0-9-_]`); the
//! function's ARN (with the qualifier) parses back to the same name and qualifier; the
//! qualifier resolved from the name and the query is one of them, and they agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sous_types::names::{is_role_arn, parse_function_name, resolve_qualifier, Scope, NAME_MAX};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (raw, query) = match text.split_once('\n') {
        Some((name, q)) => (name, Some(q)),
        None => (text, None),
    };
    let _ = is_role_arn(raw);
    let scope = Scope::new("us-east-1", "000000000000");
    let Ok(f) = parse_function_name(raw, &scope, 256) else {
        return;
    };
    assert!(!f.name.is_empty() && f.name.len() <= NAME_MAX, "{raw:?}");
    assert!(
        f.name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{raw:?} → {f:?}"
    );
    let arn = scope.qualified_arn(&f.name, f.qualifier.as_deref());
    let again = parse_function_name(&arn, &scope, usize::MAX)
        .unwrap_or_else(|e| panic!("{raw:?} → {arn:?}: {e:?}"));
    assert_eq!(again, f, "{raw:?} → {arn:?}");

    if let Ok(q) = resolve_qualifier(f.qualifier.clone(), query) {
        match (&f.qualifier, query) {
            (Some(e), Some(q2)) => {
                assert_eq!(e, q2);
                assert_eq!(q.as_deref(), Some(q2));
            }
            (Some(e), None) => assert_eq!(q.as_ref(), Some(e)),
            (None, q2) => assert_eq!(q.as_deref(), q2),
        }
    }
});
