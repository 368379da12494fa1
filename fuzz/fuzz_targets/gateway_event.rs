//! The front door's request mapping: an HTTP request (function URL or HTTP API route) into
//! the payload format 2.0 and 1.0 events (`sous_events::gateway::payload_v2::event`,
//! `payload_v1::event`, built on `gateway::request::HttpRequest`).
//!
//! Properties: no panic; each event is a JSON object; the request survives the trip: 2.0's
//! `rawPath` and `rawQueryString` are the request's as sent, both formats' `body` (base64-
//! decoded when `isBase64Encoded`) is the request body byte for byte, the method is the
//! request's, every query parameter is in 1.0's multi-value map with all its values, and in 2.0's map
//! with its values comma-joined.
#![no_main]

use std::collections::BTreeMap;

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sous_events::gateway::payload_v2::Route;
use sous_events::gateway::request::HttpRequest;
use sous_events::gateway::{payload_v1, payload_v2};
use sous_events::routing::{PayloadFormat, RouteMatch};

fn body_of(event: &Value) -> Vec<u8> {
    match &event["body"] {
        Value::Null => Vec::new(),
        Value::String(s) if event["isBase64Encoded"] == Value::Bool(true) => {
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .expect("a base64 body decodes")
        }
        Value::String(s) => s.as_bytes().to_vec(),
        other => panic!("body is {other}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(raw) = sous_fuzz::parse_request(data) else {
        return;
    };
    let req = HttpRequest {
        method: raw.parts.method.as_str(),
        raw_path: raw.raw_path(),
        raw_query: raw.raw_query().unwrap_or(""),
        headers: &raw.parts.headers,
        body: raw.body,
        source_ip: "127.0.0.1".into(),
        protocol: "HTTP/1.1",
        request_id: "fuzz-request-id".into(),
        now: sous_fuzz::fixed_now(),
        domain_name: "abc.lambda-url.us-east-1.localhost".into(),
        domain_prefix: "abc".into(),
    };
    let params: BTreeMap<String, String> = [("proxy".to_string(), req.path().into_owned())].into();

    let v2 = payload_v2::event(
        &req,
        Route {
            route_key: "$default",
            stage: "$default",
            api_id: "abc",
            account_id: "000000000000",
            authorizer: None,
            path_parameters: Some(&params),
        },
    )
    .expect("the 2.0 event serializes");
    let v2: Value = serde_json::from_slice(&v2).expect("the 2.0 event is JSON");
    assert_eq!(v2["rawPath"], req.raw_path);
    assert_eq!(v2["rawQueryString"], req.raw_query);
    assert_eq!(v2["requestContext"]["http"]["method"], req.method);
    assert_eq!(body_of(&v2), req.body);

    let route = RouteMatch {
        api_id: "abc".into(),
        stage: "$default".into(),
        route_key: "ANY /{proxy+}".into(),
        resource: "/{proxy+}".into(),
        path: req.path().into_owned(),
        path_parameters: params,
        function: "my-fn".into(),
        payload_format: PayloadFormat::V1,
        timeout_ms: 30_000,
    };
    let v1 = payload_v1::event(&req, &route, "000000000000").expect("the 1.0 event serializes");
    let v1: Value = serde_json::from_slice(&v1).expect("the 1.0 event is JSON");
    assert_eq!(v1["httpMethod"], req.method);
    assert_eq!(body_of(&v1), req.body);
    let multi = &v1["multiValueQueryStringParameters"];
    for (name, values) in req.query_multi() {
        assert_eq!(multi[&name], serde_json::json!(values), "{name:?}");
        assert_eq!(
            v2["queryStringParameters"][&name],
            values.join(","),
            "{name:?}"
        );
    }
});
