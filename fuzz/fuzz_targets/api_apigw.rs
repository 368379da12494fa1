//! API Gateway v2 request parsing (`/v2/...`): `apigw::parse` (path labels and JSON body into
//! one typed command), as `sous_api::apigw::handle` runs it after SigV4.
//!
//! Properties: no panic; a refusal renders as a 4xx, never a 5xx.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sous_api::apigw;
use sous_api::protocol::{self, Service};

fuzz_target!(|data: &[u8]| {
    let Some(req) = sous_fuzz::parse_request(data) else {
        return;
    };
    if req.body.len() > apigw::BODY_LIMIT {
        return;
    }
    // What `identify` sends here, and only that, is API Gateway's.
    let for_apigw = matches!(protocol::identify(&req.parts), Service::ApiGatewayV2);
    assert_eq!(for_apigw, req.raw_path().starts_with("/v2/"));
    match apigw::parse(&req.parts.method, req.raw_path(), req.body) {
        Ok(cmd) => {
            let _ = (cmd.operation(), cmd.api_id());
        }
        Err(e) => {
            let resp = apigw::error_response(&e, "fuzz-request-id");
            assert!(
                resp.status().is_client_error(),
                "{e:?}: {:?}",
                resp.status()
            );
        }
    }
});
