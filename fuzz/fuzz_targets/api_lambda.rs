//! The Lambda API's request parsing: service identification, then `routes::parse` (route,
//! labels, query, headers and JSON body into one typed command), as `sous_api::lambda` runs it
//! after SigV4.
//!
//! Properties: no panic; a refusal renders as a 4xx (never a 5xx: a bad request is the
//! client's fault); a parsed command names its function by a bare name that parses again as
//! itself.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sous_api::error::{error_response, ApiError};
use sous_api::protocol::{self, Service};
use sous_api::routes;
use sous_types::names::{parse_function_name, Scope};

fuzz_target!(|data: &[u8]| {
    let Some(req) = sous_fuzz::parse_request(data) else {
        return;
    };
    let service = protocol::identify(&req.parts);
    if let Service::Unserved(u) = &service {
        let resp = protocol::unserved(u, "fuzz-request-id");
        assert!(resp.status().is_client_error(), "{:?}", resp.status());
    }
    let (limit, _operation) = routes::body_limit(&req.parts.method, req.raw_path());
    if req.body.len() > limit {
        return; // refused before parsing (protocol::body)
    }
    let scope = Scope::new("us-east-1", "000000000000");
    let parsed = routes::parse(
        &req.parts.method,
        req.raw_path(),
        req.raw_query(),
        &req.parts.headers,
        Bytes::copy_from_slice(req.body),
        &scope,
    );
    match parsed {
        Ok(cmd) => {
            let _ = cmd.operation();
            if let Some(name) = cmd.function_name() {
                let again = parse_function_name(name, &scope, 256)
                    .unwrap_or_else(|e| panic!("parsed name {name:?} does not parse again: {e:?}"));
                assert_eq!(again.name, name);
                assert_eq!(again.qualifier, None, "{name:?}");
            }
        }
        Err(e) => {
            let resp = error_response(&ApiError::from(e), "fuzz-request-id");
            assert!(resp.status().is_client_error(), "{:?}", resp.status());
        }
    }
});
