//! EventBridge request parsing (AWS JSON 1.1: `X-Amz-Target: AWSEvents.<Operation>` and a
//! JSON body): `eventbridge::parse`, as `sous_api::eventbridge::handle` runs it after SigV4;
//! then the targets' function ARNs, as PutTargets' execution reads them.
//!
//! Properties: no panic; a refusal renders as a 4xx, never a 5xx; a function ARN that
//! parses names the function (and qualifier) Lambda's FunctionName rules find in it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sous_api::eventbridge::{self, Command, ServiceError};
use sous_types::names::{parse_function_name, Scope};

fuzz_target!(|data: &[u8]| {
    let Some(req) = sous_fuzz::parse_request(data) else {
        return;
    };
    let target = req
        .parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match eventbridge::parse(target, req.body) {
        Ok(cmd) => {
            let _ = cmd.operation();
            if let Command::PutTargets { targets, .. } = &cmd {
                let scope = Scope::new("us-east-1", "000000000000");
                for t in targets {
                    let Some(arn) = t.arn.as_deref() else {
                        continue;
                    };
                    if let Some((name, qualifier)) = eventbridge::parse_function_arn(&scope, arn) {
                        // The same ARN as a Lambda FunctionName: the same function.
                        let f = parse_function_name(arn, &scope, 256).unwrap_or_else(|e| {
                            panic!("ARN {arn:?} ({name:?}) is no FunctionName: {e:?}")
                        });
                        assert_eq!(f.name, name, "{arn:?}");
                        assert_eq!(f.qualifier.as_deref(), qualifier, "{arn:?}");
                    }
                }
            }
        }
        Err(e) => {
            let resp = eventbridge::error_response(&ServiceError::from(e), "fuzz-request-id");
            assert!(resp.status().is_client_error(), "{:?}", resp.status());
        }
    }
});
