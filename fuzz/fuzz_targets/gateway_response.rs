//! The front door's response mapping: a function's answer (any bytes) into the HTTP response
//! of a function URL or an HTTP API route (`payload_v2::response`, `payload_v1::response`).
//!
//! Properties: no panic; a mapped status is a valid HTTP status (100..=599); 2.0 maps any
//! JSON that is not an object with `statusCode` to a 200 whose body is the answer as
//! returned; an answer that is not JSON is malformed (502) in both formats; a 2.0 mapping
//! always has a content type.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sous_events::gateway::payload_v2::MappedResponse;
use sous_events::gateway::{payload_v1, payload_v2};

fn check(m: &MappedResponse) {
    assert!((100..=599).contains(&m.status), "{}", m.status);
    assert!(http::StatusCode::from_u16(m.status).is_ok());
}

fuzz_target!(|data: &[u8]| {
    let json: Option<Value> = serde_json::from_slice(data).ok();
    let v2 = payload_v2::response(Bytes::copy_from_slice(data));
    let v1 = payload_v1::response(data);
    match &json {
        None => {
            assert!(v2.is_err());
            assert!(v1.is_err());
        }
        Some(value) => {
            let has_status = value.get("statusCode").is_some();
            if !has_status {
                let m = v2
                    .as_ref()
                    .expect("any JSON without statusCode maps in 2.0");
                assert_eq!(m.status, 200);
                assert_eq!(m.body, data);
                assert!(v1.is_err(), "1.0 requires statusCode");
            }
        }
    }
    if let Ok(m) = &v1 {
        check(m);
    }
    if let Ok(m) = &v2 {
        check(m);
        assert!(m
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type")));
    }
});
