//! AWS Signature Version 4 verification, server side: rebuilds the canonical request from the
//! request exactly as received (botocore's signer rules: double-encoded path, sorted query, trimmed header values) and checks the
//! `Authorization` header or a presigned query string against the one key pair Sous knows.
//! Pure: no I/O, and the clock is a parameter.

use std::fmt;

use crate::{ErrorCode, LambdaError};
use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
const MAX_SKEW_MINUTES: i64 = 15;
/// The longest `X-Amz-Expires` AWS accepts: one week.
const MAX_EXPIRES_SECONDS: i64 = 604_800;
const MISMATCH: &str = "The request signature we calculated does not match the signature you \
    provided. Check your AWS Secret Access Key and signing method. Consult the service \
    documentation for details.";
/// RFC 3986 unreserved characters stay as they are; everything else is percent-encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
const PATH_SAFE: &AsciiSet = &UNRESERVED.remove(b'/');

/// The key pair requests must be signed with.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// The parts of a received request that the signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The path exactly as received on the wire, still percent-encoded (e.g. "/2015-03-31/functions/arn%3Aaws%3A.../invocations").
    pub raw_path: &'a str,
    /// The raw query string without '?', still encoded ("" when none).
    pub raw_query: &'a str,
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
}

impl<'a> SignedRequest<'a> {
    /// The request as received: method, raw path and query, headers, and its whole body.
    pub fn from_parts(parts: &'a http::request::Parts, body: &'a [u8]) -> Self {
        SignedRequest {
            method: parts.method.as_str(),
            raw_path: parts.uri.path(),
            raw_query: parts.uri.query().unwrap_or(""),
            headers: &parts.headers,
            body,
        }
    }
}

/// Verify the request's SigV4 Authorization header (and also query-string presigned requests: X-Amz-Algorithm/X-Amz-Credential/X-Amz-Date/X-Amz-Expires/X-Amz-SignedHeaders/X-Amz-Signature) for `service` (e.g. "lambda", "events", "apigateway") against the single known key pair `creds`, at time `now`.
/// Region in the credential scope: accept any region (record nothing).
pub fn verify(
    req: &SignedRequest<'_>,
    creds: &Credentials,
    service: &str,
    now: OffsetDateTime,
) -> Result<(), LambdaError> {
    let query = query_pairs(req.raw_query);
    let auth = parse_auth(req.headers, &query)?;
    let scope: Vec<&str> = auth.credential.split('/').collect();
    let [access_key_id, scope_date, region, scope_service, terminator] = scope[..] else {
        return Err(incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. \
             keyid/date/region/service/term, got '{}'",
            auth.credential
        )));
    };
    let time = parse_basic(&auth.date).ok_or_else(|| {
        incomplete(format!(
            "Date must be in ISO-8601 'basic format'. Got '{}'. \
             See http://en.wikipedia.org/wiki/ISO_8601",
            auth.date
        ))
    })?;
    if access_key_id != creds.access_key_id {
        return Err(LambdaError::new(
            ErrorCode::UnrecognizedClientException,
            "The security token included in the request is invalid.",
        ));
    }
    if terminator != "aws4_request" {
        return Err(invalid(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'. "
        )));
    }
    if scope_service != service {
        return Err(invalid(format!(
            "Credential should be scoped to correct service: '{service}'. "
        )));
    }
    if scope_date != &auth.date[..8] {
        return Err(invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
             HTTP: '{scope_date}' != '{}', from '{}'.",
            &auth.date[..8],
            auth.date
        )));
    }
    check_time(time, &auth.date, auth.expires, now)?;
    if !auth.signed_headers.split(';').any(|name| name == "host") {
        return Err(invalid(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }

    let headers =
        canonical_headers(req.headers, &auth.signed_headers).ok_or_else(|| invalid(MISMATCH))?;
    let body_hash = hex::encode(Sha256::digest(req.body));
    let payload_hash = match req.headers.get("x-amz-content-sha256") {
        None => body_hash,
        Some(claimed) => {
            let claimed = claimed.to_str().map_err(|_| invalid(MISMATCH))?;
            if claimed != UNSIGNED_PAYLOAD && !claimed.eq_ignore_ascii_case(&body_hash) {
                return Err(invalid(
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                ));
            }
            claimed.to_string()
        }
    };
    let canonical = format!(
        "{}\n{}\n{}\n{headers}\n{}\n{payload_hash}",
        req.method,
        canonical_uri(req.raw_path),
        canonical_query(&query, auth.presigned.then_some("X-Amz-Signature")),
        auth.signed_headers,
    );
    let expected = signature(
        &creds.secret_access_key,
        &auth.date,
        [scope_date, region, scope_service],
        &canonical,
    );
    if constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
        Ok(())
    } else {
        Err(invalid(MISMATCH))
    }
}

/// The hex signature of a canonical request for the scope `[date, region, service]`.
fn signature(secret: &str, date: &str, scope: [&str; 3], canonical: &str) -> String {
    let [scope_date, region, service] = scope;
    let string_to_sign = format!(
        "{ALGORITHM}\n{date}\n{scope_date}/{region}/{service}/aws4_request\n{}",
        hex::encode(Sha256::digest(canonical))
    );
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), scope_date.as_bytes());
    for part in [region, service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    hex::encode(hmac(&key, string_to_sign.as_bytes()))
}

/// Sign a request as an AWS SDK would: add `x-amz-date` and `authorization` headers, signing
/// every header present (which must include `host`). Used by Sous's own clients (tests,
/// benchmarks) that speak raw HTTP.
pub fn sign(
    req: &mut SigningInput<'_>,
    creds: &Credentials,
    region: &str,
    service: &str,
    now: OffsetDateTime,
) {
    let date = format_basic(now);
    if let Ok(v) = http::HeaderValue::from_str(&date) {
        req.headers.insert("x-amz-date", v);
    }
    let mut names: Vec<String> = req.headers.keys().map(|k| k.as_str().to_string()).collect();
    names.sort();
    names.dedup();
    let signed_headers = names.join(";");
    let headers = canonical_headers(req.headers, &signed_headers).unwrap_or_default();
    let canonical = format!(
        "{}\n{}\n{}\n{headers}\n{signed_headers}\n{}",
        req.method,
        canonical_uri(req.raw_path),
        canonical_query(&query_pairs(req.raw_query), None),
        hex::encode(Sha256::digest(req.body))
    );
    let sig = signature(
        &creds.secret_access_key,
        &date,
        [&date[..8], region, service],
        &canonical,
    );
    let auth = format!(
        "{ALGORITHM} Credential={}/{}/{region}/{service}/aws4_request, SignedHeaders={signed_headers}, Signature={sig}",
        creds.access_key_id,
        &date[..8]
    );
    if let Ok(v) = http::HeaderValue::from_str(&auth) {
        req.headers.insert("authorization", v);
    }
}

/// A request to sign in place (see [`sign`]).
pub struct SigningInput<'a> {
    pub method: &'a str,
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    pub headers: &'a mut http::HeaderMap,
    pub body: &'a [u8],
}

/// What the client claims, from the `Authorization` header or the presigned query.
struct Auth {
    credential: String,
    signed_headers: String,
    signature: String,
    /// `YYYYMMDDTHHMMSSZ`, exactly as it goes into the string to sign.
    date: String,
    /// Presigned requests carry their own validity window (`X-Amz-Expires`, seconds).
    expires: Option<i64>,
    presigned: bool,
}

fn parse_auth(headers: &http::HeaderMap, query: &[(String, String)]) -> Result<Auth, LambdaError> {
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let Some(header) = headers.get(http::header::AUTHORIZATION) else {
        let presign = ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"];
        if presign.iter().all(|name| param(name).is_none()) {
            return Err(LambdaError::new(
                ErrorCode::MissingAuthenticationTokenException,
                "Missing Authentication Token",
            ));
        }
        return parse_presigned(param);
    };
    let header = header
        .to_str()
        .map_err(|_| incomplete("Authorization header is not valid ASCII."))?;
    let (algorithm, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if algorithm != ALGORITHM {
        return Err(incomplete(format!(
            "Unsupported authorization algorithm '{algorithm}': only {ALGORITHM} is accepted. \
             Authorization={header}"
        )));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let Some((name, value)) = part.trim().split_once('=') else {
            continue;
        };
        let value = Some(value.trim().to_string()).filter(|v| !v.is_empty());
        match name.trim() {
            "Credential" => credential = value,
            "SignedHeaders" => signed_headers = value,
            "Signature" => signature = value,
            _ => {}
        }
    }
    let date = match headers.get("x-amz-date") {
        Some(value) => value.to_str().ok().map(str::to_string),
        None => headers
            .get(http::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_http_date),
    };
    let mut problems = String::new();
    for (missing, what) in [
        (credential.is_none(), "requires 'Credential' parameter"),
        (signature.is_none(), "requires 'Signature' parameter"),
        (
            signed_headers.is_none(),
            "requires 'SignedHeaders' parameter",
        ),
        (
            date.is_none(),
            "requires existence of either a 'X-Amz-Date' or a 'Date' header",
        ),
    ] {
        if missing {
            problems.push_str(&format!("Authorization header {what}. "));
        }
    }
    match (credential, signed_headers, signature, date) {
        (Some(credential), Some(signed_headers), Some(signature), Some(date)) => Ok(Auth {
            credential,
            signed_headers,
            signature,
            date,
            expires: None,
            presigned: false,
        }),
        _ => Err(incomplete(format!("{problems}Authorization={header}"))),
    }
}

fn parse_presigned(param: impl Fn(&str) -> Option<String>) -> Result<Auth, LambdaError> {
    let names = [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Signature",
        "X-Amz-Date",
        "X-Amz-SignedHeaders",
    ];
    let [Some(algorithm), Some(credential), Some(signature), Some(date), Some(signed_headers)] =
        names.map(&param)
    else {
        let missing: Vec<String> = names
            .iter()
            .filter(|name| param(name).is_none())
            .map(|name| format!("'{name}'"))
            .collect();
        return Err(incomplete(format!(
            "AWS query-string parameters must include {}. Re-examine the query-string parameters.",
            missing.join(", ")
        )));
    };
    if algorithm != ALGORITHM {
        return Err(incomplete(format!(
            "X-Amz-Algorithm only supports '{ALGORITHM}'."
        )));
    }
    let expires = match param("X-Amz-Expires") {
        None => None,
        Some(raw) => match raw.parse::<i64>() {
            Ok(seconds) if (1..=MAX_EXPIRES_SECONDS).contains(&seconds) => Some(seconds),
            _ => {
                return Err(incomplete(format!(
                    "X-Amz-Expires must be a number of seconds between 1 and {MAX_EXPIRES_SECONDS}, got '{raw}'."
                )))
            }
        },
    };
    Ok(Auth {
        credential,
        signed_headers,
        signature,
        date,
        expires,
        presigned: true,
    })
}

/// Requests signed more than 15 minutes away from `now` are refused, in AWS's words;
/// a presigned request is also refused once its own `X-Amz-Expires` window has passed.
fn check_time(
    time: OffsetDateTime,
    date: &str,
    expires: Option<i64>,
    now: OffsetDateTime,
) -> Result<(), LambdaError> {
    let skew = Duration::minutes(MAX_SKEW_MINUTES);
    let now_basic = format_basic(now);
    if time > now + skew {
        return Err(invalid(format!(
            "Signature not yet current: {date} is still later than {} ({now_basic} + {MAX_SKEW_MINUTES} min.)",
            format_basic(now + skew)
        )));
    }
    let (window, label) = match expires {
        Some(seconds) => (Duration::seconds(seconds), format!("{seconds} sec.")),
        None => (skew, format!("{MAX_SKEW_MINUTES} min.")),
    };
    if time < now - window {
        return Err(invalid(format!(
            "Signature expired: {date} is now earlier than {} ({now_basic} - {label})",
            format_basic(now - window)
        )));
    }
    Ok(())
}

/// The canonical URI of a non-S3 request: the wire path with dot segments and empty segments
/// removed (as botocore and aws-sigv4 do), then percent-encoded a second time.
fn canonical_uri(raw_path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in raw_path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut path = format!("/{}", segments.join("/"));
    if raw_path.ends_with('/') && !segments.is_empty() {
        path.push('/');
    }
    percent_encode(path.as_bytes(), PATH_SAFE).to_string()
}

/// The query's pairs, percent-decoded ('+' stays a literal plus), in wire order.
fn query_pairs(raw_query: &str) -> Vec<(String, String)> {
    let decode =
        |s: &str| String::from_utf8_lossy(&percent_decode_str(s).collect::<Vec<u8>>()).into_owned();
    raw_query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

/// Pairs re-encoded with the unreserved set, sorted by key then value, joined with '&'.
fn canonical_query(pairs: &[(String, String)], exclude: Option<&str>) -> String {
    let encode = |s: &str| percent_encode(s.as_bytes(), UNRESERVED).to_string();
    let mut encoded: Vec<(String, String)> = pairs
        .iter()
        .filter(|(key, _)| Some(key.as_str()) != exclude)
        .map(|(key, value)| (encode(key), encode(value)))
        .collect();
    encoded.sort();
    encoded
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// `name:value\n` for each signed header, from the received values (whitespace runs collapsed,
/// repeats joined by ','); `None` when a signed header is absent or not text: no match then.
fn canonical_headers(headers: &http::HeaderMap, signed_headers: &str) -> Option<String> {
    let mut out = String::new();
    for name in signed_headers.split(';').map(str::to_ascii_lowercase) {
        let mut values = Vec::new();
        for value in headers.get_all(name.as_str()) {
            values.push(
                value
                    .to_str()
                    .ok()?
                    .split_ascii_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
        if values.is_empty() {
            return None;
        }
        out.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    Some(out)
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key).expect("HMAC-SHA256 accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Equality whose running time does not depend on where the inputs first differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

/// Parses `YYYYMMDDTHHMMSSZ`.
fn parse_basic(date: &str) -> Option<OffsetDateTime> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    Some(PrimitiveDateTime::parse(date, format).ok()?.assume_utc())
}

/// Converts an HTTP `Date` header (`Thu, 26 Nov 2026 15:47:30 GMT`) to `YYYYMMDDTHHMMSSZ`.
fn parse_http_date(date: &str) -> Option<String> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    Some(format_basic(
        PrimitiveDateTime::parse(date, format).ok()?.assume_utc(),
    ))
}

fn format_basic(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn incomplete(message: impl Into<String>) -> LambdaError {
    LambdaError::new(ErrorCode::IncompleteSignatureException, message)
}

fn invalid(message: impl Into<String>) -> LambdaError {
    LambdaError::new(ErrorCode::InvalidSignatureException, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderName, HeaderValue};
    use time::macros::datetime;
    use ErrorCode::{
        IncompleteSignatureException as Incomplete, InvalidSignatureException as Invalid,
    };

    // Vectors generated with botocore 1.43.11 (`SigV4Auth`, `SigV4QueryAuth`), clock pinned to
    // 2026-11-26T15:47:30Z, endpoint http://127.0.0.1:9001, key pair `creds()`.
    const SIGNED_AT: OffsetDateTime = datetime!(2026-11-26 15:47:30 UTC);
    const SCOPE: &str = "AKIDEXAMPLE/20261126/us-east-1/lambda/aws4_request";
    const PRESIGNED: &str = "MaxItems=5&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261126%2Fus-east-1%2Flambda%2Faws4_request&X-Amz-Date=20261126T154730Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature=4f55248d5f762a6f766307f4db1d7b68a6e42079d8b2074a920e7102267c5a64";

    #[test]
    fn sign_then_verify_round_trips() {
        let creds = creds();
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("127.0.0.1:3001"));
        let path = "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af/invocations";
        let body = br#"{"a":1}"#;
        sign(
            &mut SigningInput {
                method: "POST",
                raw_path: path,
                raw_query: "Qualifier=%24LATEST",
                headers: &mut headers,
                body,
            },
            &creds,
            "us-east-1",
            "lambda",
            SIGNED_AT,
        );
        let req = SignedRequest {
            method: "POST",
            raw_path: path,
            raw_query: "Qualifier=%24LATEST",
            headers: &headers,
            body,
        };
        verify(&req, &creds, "lambda", SIGNED_AT).unwrap();
        let tampered = SignedRequest { body: b"{}", ..req };
        assert!(verify(&tampered, &creds, "lambda", SIGNED_AT).is_err());
    }

    #[derive(Clone)]
    struct Vector {
        method: &'static str,
        path: &'static str,
        query: &'static str,
        headers: Vec<(&'static str, String)>,
        body: &'static [u8],
    }

    impl Vector {
        fn new(
            method: &'static str,
            path: &'static str,
            query: &'static str,
            body: &'static [u8],
        ) -> Self {
            let headers = vec![
                ("host", "127.0.0.1:9001".into()),
                ("x-amz-date", "20261126T154730Z".into()),
            ];
            Self {
                method,
                path,
                query,
                headers,
                body,
            }
        }
        /// Sets a header; an empty value removes it.
        fn header(mut self, name: &'static str, value: &str) -> Self {
            self.headers.retain(|(n, _)| *n != name);
            if !value.is_empty() {
                self.headers.push((name, value.into()));
            }
            self
        }
        fn signed(self, scope: &str, signed_headers: &str, signature: &str) -> Self {
            let auth = format!(
                "AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders={signed_headers}, Signature={signature}"
            );
            self.header("authorization", &auth)
        }
        fn check(
            &self,
            creds: &Credentials,
            service: &str,
            now: OffsetDateTime,
        ) -> Result<(), LambdaError> {
            let mut headers = HeaderMap::new();
            for (name, value) in &self.headers {
                headers.append(
                    HeaderName::from_static(name),
                    HeaderValue::from_str(value).unwrap(),
                );
            }
            let req = SignedRequest {
                method: self.method,
                raw_path: self.path,
                raw_query: self.query,
                headers: &headers,
                body: self.body,
            };
            verify(&req, creds, service, now)
        }
        fn verify(&self) -> Result<(), LambdaError> {
            self.check(&creds(), "lambda", SIGNED_AT + Duration::minutes(2))
        }
    }

    fn creds() -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        }
    }

    fn list() -> Vector {
        let signature = "385ea964b8170cff3aca110ba49328fd50ebe667e5abb6e4a1eba83b0a47a35d";
        Vector::new("GET", "/2015-03-31/functions/", "", b"").signed(
            SCOPE,
            "host;x-amz-date",
            signature,
        )
    }

    fn invoke() -> Vector {
        let path = "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-fn/invocations";
        let signed = "host;x-amz-client-context;x-amz-date;x-amz-invocation-type;x-amz-log-type;x-amz-security-token";
        let signature = "096ac21fe457bffea8468e9f4f9978c28e3a3327978496173c4b7e98b22912cb";
        let v = Vector::new("POST", path, "Qualifier=%24LATEST", br#"{"hello":"world"}"#);
        v.header("x-amz-invocation-type", "RequestResponse")
            .header("x-amz-log-type", "Tail")
            .header("x-amz-client-context", "eyJhIjoxfQ==")
            .header("x-amz-security-token", "SESSIONTOKEN")
            .signed(SCOPE, signed, signature)
    }

    fn presigned(query: &'static str) -> Vector {
        Vector::new("GET", "/2015-03-31/functions/", query, b"").header("x-amz-date", "")
    }

    /// Asserts the error's code and that its message contains `text`.
    fn assert_err(result: Result<(), LambdaError>, code: ErrorCode, text: &str) {
        let e = result.expect_err("verification should fail");
        assert_eq!(e.code, code, "{}", e.message);
        assert!(
            e.message.contains(text),
            "{:?} does not contain {text:?}",
            e.message
        );
        assert!(
            !e.message.contains("wJalrXUtnFEMI"),
            "the secret leaked: {}",
            e.message
        );
    }

    fn assert_mismatch(result: Result<(), LambdaError>) {
        assert_err(result, Invalid, MISMATCH);
    }

    #[test]
    fn botocore_vectors_verify() {
        list().verify().unwrap();
        invoke().verify().unwrap(); // ARN path double-encoded, query, session token.
        let put = "/2015-03-31/functions/my-fn/configuration";
        Vector::new("PUT", put, "", br#"{"Timeout": 30}"#)
            .header("content-type", "application/json")
            .header("x-custom", "a   b")
            .signed(
                SCOPE,
                "content-type;host;x-amz-date;x-custom",
                "7188bdcb08e4f82bd596d767ac9da8dca19f89c501d276de24f637b6859b2af0",
            )
            .verify()
            .unwrap();
        // Repeated keys and encoded values in the query, another region.
        let tags =
            "/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-fn";
        Vector::new("GET", tags, "tagKeys=b&tagKeys=a&Marker=a%2Fb%20c", b"")
            .signed(
                "AKIDEXAMPLE/20261126/eu-west-3/lambda/aws4_request",
                "host;x-amz-date",
                "4406f1d8887660912b984dab0882fea01b7d31baf146f6493295bbf53820e351",
            )
            .verify()
            .unwrap();
        // Another service.
        let events = Vector::new("POST", "/", "", br#"{"Entries":[]}"#)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", "AWSEvents.PutEvents")
            .signed(
                "AKIDEXAMPLE/20261126/us-east-1/events/aws4_request",
                "content-type;host;x-amz-date;x-amz-target",
                "61608c8e98c3a0c6ba27996100f0ce2513c28b09a4ce19c3152bcb26dabacb8b",
            );
        events.check(&creds(), "events", SIGNED_AT).unwrap();
        assert_err(
            events.verify(),
            Invalid,
            "Credential should be scoped to correct service: 'lambda'. ",
        );
        // `Date` instead of `X-Amz-Date` (botocore's canonical request and signature functions).
        let signature = "843cffb09403fae88e406dfd0c7aec3ef196fb4a96ef1a5cded8c139fa6fd0d4";
        list()
            .header("x-amz-date", "")
            .header("date", "Thu, 26 Nov 2026 15:47:30 GMT")
            .signed(SCOPE, "date;host", signature)
            .verify()
            .unwrap();
    }

    #[test]
    fn content_sha256_header_is_used_and_checked() {
        let code = Vector::new("PUT", "/2015-03-31/functions/my-fn/code", "", b"anything");
        let signed = "host;x-amz-content-sha256;x-amz-date";
        let unsigned = code
            .clone()
            .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
            .signed(
                SCOPE,
                signed,
                "02364db3e3fdb121677319825392a3da5d83498612e61dc79467f8775a3a438e",
            );
        unsigned.verify().unwrap();
        Vector {
            body: b"something else",
            ..unsigned
        }
        .verify()
        .unwrap();
        // Correctly signed, but the claimed hash (of "x") is not the body's ("y").
        let lying = Vector { body: b"y", ..code }
            .header(
                "x-amz-content-sha256",
                "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881",
            )
            .signed(
                SCOPE,
                signed,
                "1ee8d7aece2d66b449dbfb411b93c29baf3f67baf52288e5451cc3126d2570d4",
            );
        assert_err(
            lying.verify(),
            Invalid,
            "'x-amz-content-sha256' header does not match",
        );
    }

    #[test]
    fn presigned_query() {
        presigned(PRESIGNED).verify().unwrap();
        let late =
            presigned(PRESIGNED).check(&creds(), "lambda", SIGNED_AT + Duration::seconds(301));
        let expired = "Signature expired: 20261126T154730Z is now earlier than 20261126T154731Z \
                       (20261126T155231Z - 300 sec.)";
        assert_err(late, Invalid, expired);
        assert_mismatch(presigned(&PRESIGNED[1..]).verify()); // MaxItems=5 -> axItems=5
        let partial = presigned("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20261126T154730Z");
        let missing = "'X-Amz-Credential', 'X-Amz-Signature', 'X-Amz-SignedHeaders'";
        assert_err(partial.verify(), Incomplete, missing);
    }

    #[test]
    fn wrong_secret_or_unknown_key() {
        let wrong = Credentials {
            secret_access_key: "not-the-secret".into(),
            ..creds()
        };
        assert_mismatch(list().check(&wrong, "lambda", SIGNED_AT));
        let other = Credentials {
            access_key_id: "AKIDOTHER".into(),
            ..creds()
        };
        let unknown = "The security token included in the request is invalid.";
        assert_err(
            list().check(&other, "lambda", SIGNED_AT),
            ErrorCode::UnrecognizedClientException,
            unknown,
        );
    }

    #[test]
    fn missing_or_malformed_authorization() {
        let bare = Vector::new("GET", "/2015-03-31/functions/", "", b"");
        let missing = ErrorCode::MissingAuthenticationTokenException;
        assert_err(bare.verify(), missing, "Missing Authentication Token");
        let header = format!("AWS4-HMAC-SHA256 Credential={SCOPE}");
        let partial = list()
            .header("x-amz-date", "")
            .header("authorization", &header);
        let expected = format!(
            "Authorization header requires 'Signature' parameter. Authorization header requires \
             'SignedHeaders' parameter. Authorization header requires existence of either a \
             'X-Amz-Date' or a 'Date' header. Authorization={header}"
        );
        assert_eq!(partial.verify().unwrap_err().message, expected);
        assert_err(
            list()
                .header("authorization", "AWS AKIDEXAMPLE:c2ln")
                .verify(),
            Incomplete,
            "AWS4-HMAC-SHA256",
        );
        let short_scope = list().signed("AKIDEXAMPLE/20261126/lambda", "host", "00");
        assert_err(
            short_scope.verify(),
            Incomplete,
            "exactly 5 slash-delimited elements",
        );
        let terminator = list().signed("AKIDEXAMPLE/20261126/us-east-1/lambda/aws5", "host", "00");
        assert_err(terminator.verify(), Invalid, "valid terminator");
        let extended = list().header("x-amz-date", "2026-11-26T15:47:30Z");
        assert_err(extended.verify(), Incomplete, "ISO-8601 'basic format'");
    }

    #[test]
    fn clock_skew_in_aws_words() {
        let late = list().check(&creds(), "lambda", datetime!(2026-11-26 16:05:00 UTC));
        let expired = "Signature expired: 20261126T154730Z is now earlier than 20261126T155000Z \
                       (20261126T160500Z - 15 min.)";
        assert_eq!(late.unwrap_err(), invalid(expired));
        let early = list().check(&creds(), "lambda", datetime!(2026-11-26 15:30:00 UTC));
        let not_yet = "Signature not yet current: 20261126T154730Z is still later than \
                       20261126T154500Z (20261126T153000Z + 15 min.)";
        assert_eq!(early.unwrap_err(), invalid(not_yet));
        list()
            .check(&creds(), "lambda", SIGNED_AT + Duration::minutes(15))
            .unwrap();
        list()
            .check(&creds(), "lambda", SIGNED_AT - Duration::minutes(15))
            .unwrap();
    }

    #[test]
    fn tampering_is_detected() {
        assert_mismatch(
            Vector {
                body: br#"{"hello":"there"}"#,
                ..invoke()
            }
            .verify(),
        );
        assert_mismatch(
            Vector {
                query: "Qualifier=1",
                ..invoke()
            }
            .verify(),
        );
        assert_mismatch(
            Vector {
                path: "/2015-03-31/functions/f/invocations",
                ..invoke()
            }
            .verify(),
        );
        assert_mismatch(
            Vector {
                method: "PUT",
                ..invoke()
            }
            .verify(),
        );
        assert_mismatch(invoke().header("x-amz-log-type", "None").verify());
        assert_mismatch(invoke().header("x-amz-log-type", "").verify()); // signed but absent
        invoke().header("user-agent", "anything").verify().unwrap(); // not signed
        let next_day = list().header("x-amz-date", "20261127T000000Z");
        let scope_date = "Date in Credential scope does not match YYYYMMDD from ISO-8601 version";
        assert_err(
            next_day.check(&creds(), "lambda", datetime!(2026-11-27 00:00 UTC)),
            Invalid,
            scope_date,
        );
        let no_host = list().signed(SCOPE, "x-amz-date", "00");
        assert_err(
            no_host.verify(),
            Invalid,
            "'Host' or ':authority' must be a 'SignedHeader'",
        );
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri("/a/./b/../c//d/"), "/a/c/d/");
        assert_eq!(canonical_uri("/f/arn%3Aaws/x y~"), "/f/arn%253Aaws/x%20y~");
        let pairs = query_pairs("b=2&a=x+y&a=%41%2f&flag&&c=%7E");
        assert_eq!(
            canonical_query(&pairs, None),
            "a=A%2F&a=x%2By&b=2&c=~&flag="
        );
        assert_eq!(
            canonical_query(&pairs, Some("b")),
            "a=A%2F&a=x%2By&c=~&flag="
        );
        let mut headers = HeaderMap::new();
        headers.append("x-multi", HeaderValue::from_static(" one  two "));
        headers.append("x-multi", HeaderValue::from_static("three\tfour"));
        headers.append("host", HeaderValue::from_static("h"));
        let canonical = canonical_headers(&headers, "host;X-Multi").unwrap();
        assert_eq!(canonical, "host:h\nx-multi:one two,three four\n");
        assert_eq!(canonical_headers(&headers, "host;x-absent;bad name"), None);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd") && !constant_time_eq(b"abc", b"ab"));
        assert!(!format!("{:?}", creds()).contains("wJalr"));
    }
}
