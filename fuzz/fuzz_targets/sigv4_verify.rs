//! SigV4 verification (`sous_types::sigv4::verify`) of arbitrary requests: any method, path,
//! query, headers (`Authorization`, `X-Amz-Date`, `Date`, `X-Amz-Content-Sha256`, a
//! presigned query) and body, at a fixed clock.
//!
//! Properties: no panic; a refusal is a 4xx error, never a 5xx; and a round trip: the same
//! request, signed by Sous's own signer (`sigv4::sign`, which Sous's clients use) after its
//! auth headers are taken off, verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sous_types::sigv4::{self, Credentials, SignedRequest, SigningInput};

fuzz_target!(|data: &[u8]| {
    let Some(req) = sous_fuzz::parse_request(data) else {
        return;
    };
    let creds = Credentials {
        access_key_id: "AKIDSOUSFUZZ".into(),
        secret_access_key: "sous-fuzz-secret".into(),
    };
    let now = sous_fuzz::fixed_now();
    let signed = SignedRequest::from_parts(&req.parts, req.body);
    if let Err(e) = sigv4::verify(&signed, &creds, "lambda", now) {
        assert!((400..500).contains(&e.code.status()), "{e:?}");
    }

    // Round trip through Sous's own signer.
    let mut headers = req.unsigned_headers();
    if !headers.contains_key("host") {
        headers.insert("host", http::HeaderValue::from_static("127.0.0.1:3001"));
    }
    let raw_query = req.raw_query().unwrap_or("");
    sigv4::sign(
        &mut SigningInput {
            method: req.parts.method.as_str(),
            raw_path: req.raw_path(),
            raw_query,
            headers: &mut headers,
            body: req.body,
        },
        &creds,
        "us-east-1",
        "lambda",
        now,
    );
    let resigned = SignedRequest {
        method: req.parts.method.as_str(),
        raw_path: req.raw_path(),
        raw_query,
        headers: &headers,
        body: req.body,
    };
    if let Err(e) = sigv4::verify(&resigned, &creds, "lambda", now) {
        panic!("a request Sous signed does not verify: {e:?}\nheaders: {headers:?}");
    }
});
