//! SigV4 against the AWS SDKs' own signer: a request (any method, path, query, headers and
//! body a client can send) signed by the `aws-sigv4` crate (what the Rust SDK uses: double-
//! encoded, normalized path; sorted, re-encoded query) must verify with Sous's
//! `sigv4::verify`. The same input is the request of `sigv4_verify`'s format.
//!
//! Property: every request the SDK's signer signs, Sous accepts, but for a raw `+` in the
//! query and query escapes that decode to bytes that are not UTF-8, which Sous refuses on
//! purpose (see below) (a refusal is a client signed correctly being told
//! InvalidSignatureException).
#![no_main]

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use libfuzzer_sys::fuzz_target;
use sous_types::sigv4::{self, Credentials, SignedRequest};

const KEY_ID: &str = "AKIDSOUSFUZZ";
const SECRET: &str = "sous-fuzz-secret";

fuzz_target!(|data: &[u8]| {
    let Some(req) = sous_fuzz::parse_request(data) else {
        return;
    };
    if req.raw_query().is_some_and(|q| q.contains('+')) {
        // A raw `+` is a plus to the Lambda router and a space to the function URL router,
        // so Sous verifies it only as signed verbatim; the SDK's signer reads it as a space
        // (docs/COMPATIBILITY.md, SigV4). The SDK itself never sends one: it encodes `%2B`.
        return;
    }
    if req
        .raw_query()
        .is_some_and(sous_fuzz::decodes_to_invalid_utf8)
    {
        // Escapes that decode to bytes that are not UTF-8 (`%94`): the SDK's signer decodes
        // the query lossily (each bad byte becomes U+FFFD, `%EF%BF%BD`) and signs that, so
        // one signature would cover every such byte. Sous verifies the bytes as sent, and
        // refuses it (docs/COMPATIBILITY.md, SigV4). The SDK builds queries from UTF-8
        // strings, so it never sends one.
        return;
    }
    let mut headers = req.unsigned_headers();
    headers.insert("host", http::HeaderValue::from_static("127.0.0.1:3001"));
    let now: std::time::SystemTime = sous_fuzz::fixed_now().into();
    let identity =
        aws_credential_types::Credentials::new(KEY_ID, SECRET, None, None, "sous-fuzz").into();
    let Ok(params) = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("lambda")
        .time(now)
        .settings(SigningSettings::default())
        .build()
    else {
        return;
    };
    let url = format!("http://127.0.0.1:3001{}", req.parts.uri);
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .collect();
    if pairs.len() != headers.len() {
        return; // the SDK takes header values as text
    }
    let Ok(signable) = SignableRequest::new(
        req.parts.method.as_str(),
        &url,
        pairs.iter().copied(),
        SignableBody::Bytes(req.body),
    ) else {
        return; // not a request the SDK signs
    };
    let Ok(output) = sign(signable, &params.into()) else {
        return;
    };
    let (instructions, _) = output.into_parts();
    for (k, v) in instructions.headers() {
        headers.insert(
            http::HeaderName::from_bytes(k.as_bytes()).expect("the SDK's header name"),
            http::HeaderValue::from_str(v).expect("the SDK's header value"),
        );
    }
    let creds = Credentials {
        access_key_id: KEY_ID.into(),
        secret_access_key: SECRET.into(),
    };
    let signed = SignedRequest {
        method: req.parts.method.as_str(),
        raw_path: req.raw_path(),
        raw_query: req.raw_query().unwrap_or(""),
        headers: &headers,
        body: req.body,
    };
    if let Err(e) = sigv4::verify(&signed, &creds, "lambda", sous_fuzz::fixed_now()) {
        panic!(
            "a request the SDK signed is refused: {e:?}\n{} {}",
            req.parts.method, req.parts.uri
        );
    }
});
