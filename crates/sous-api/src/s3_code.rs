//! Code from S3: the deployment package that CreateFunction and UpdateFunctionCode (and
//! PublishLayerVersion) name with `S3Bucket`/`S3Key`/`S3ObjectVersion`, fetched from the
//! S3-compatible endpoint of `sous serve --service-endpoint s3=URL`.
//!
//! One function for every caller, [`fetch_zip`]: a path-style GetObject
//! (`GET {url}/{bucket}/{key}[?versionId=]`, the key URI-encoded as S3 requires), signed with
//! SigV4 for `s3` ([`sigv4::sign_s3`]) with the key pair of [`S3Code`] (docs/SECURITY.md,
//! "Code from S3"), over hyper's client. Bounded: one connection attempt of
//! [`CONNECT_TIMEOUT`], the answer's head within [`HEAD_TIMEOUT`], no pause of more than
//! [`STALL_TIMEOUT`] in the body and the whole fetch within [`TOTAL_TIMEOUT`]; the body is
//! counted as it streams and refused past [`S3_ZIPPED_MAX_BYTES`]; at most
//! [`CONCURRENT_FETCHES`] fetches hold a package in memory at once.
//!
//! What the caller sees, as Lambda answers (docs/COMPATIBILITY.md, "Code from S3"):
//!
//! - S3's refusals (4xx: `NoSuchBucket`, `NoSuchKey`, `NoSuchVersion`, a bad signature...)
//!   are `InvalidParameterValueException`: "Error occurred while GetObject. S3 Error Code:
//!   {code}. S3 Error Message: {message}", S3's own code and message passed through;
//!   `AccessDenied` in Lambda's own words for it;
//! - no `s3` endpoint configured (or one Sous cannot fetch from: `https://`) is
//!   `InvalidParameterValueException` too: the request cannot succeed on this server, and
//!   Lambda's model has no error of its own for S3;
//! - an endpoint that does not answer, answers 5xx or breaks off is Sous's dependency
//!   failing: an internal error (`ServiceException` naming the request id, the cause logged
//!   at ERROR), which the SDKs retry.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sous_types::endpoints::ServiceEndpoint;
use sous_types::error::Violations;
use sous_types::limits::UNZIPPED_MAX_BYTES;
use sous_types::{ErrorCode, LambdaError};
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tokio::time::{timeout, Instant};

use crate::error::ApiError;
use crate::{sigv4, ApiState};

/// The largest package Sous fetches from S3. Lambda documents no zipped limit for packages
/// from S3 (the 50 MB one is for direct uploads); what bounds them is the 250 MB unzipped
/// limit, and Sous caps the download at the same size (so a package stored without
/// compression right at the unzipped limit, plus its zip headers, is refused: Sous's bound).
pub const S3_ZIPPED_MAX_BYTES: u64 = UNZIPPED_MAX_BYTES;
/// Connecting to the endpoint.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// From the request to the answer's status and headers.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest pause between two pieces of the body.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The whole fetch (250 MB at under 0.5 MB/s would not make it).
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(600);
/// Packages held in memory at once (each up to [`S3_ZIPPED_MAX_BYTES`]); more fetches wait.
pub const CONCURRENT_FETCHES: usize = 2;
/// The most of an error answer's body read for its code and message.
const ERROR_BODY_MAX: usize = 64 * 1024;

/// What S3 keeps unencoded in a path: RFC 3986's unreserved characters (and `/` between key
/// segments, handled by the caller).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Where code from S3 comes from: the `s3` service endpoint and the key pair Sous signs its
/// GetObject requests with.
pub struct S3Code {
    endpoint: ServiceEndpoint,
    credentials: sigv4::Credentials,
    region: String,
    client: Client<HttpConnector, Empty<Bytes>>,
    fetches: Semaphore,
    /// [`S3_ZIPPED_MAX_BYTES`] (smaller in unit tests).
    max_bytes: u64,
}

impl S3Code {
    /// Fetch from `endpoint`, signing for `region` with `credentials`.
    pub fn new(endpoint: ServiceEndpoint, credentials: sigv4::Credentials, region: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        S3Code {
            endpoint,
            credentials,
            region: region.to_string(),
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
            fetches: Semaphore::new(CONCURRENT_FETCHES),
            max_bytes: S3_ZIPPED_MAX_BYTES,
        }
    }

    /// `scheme://host:port` of the endpoint.
    pub fn url(&self) -> String {
        self.endpoint.url()
    }

    /// Why this endpoint cannot serve code, if it cannot: Sous's client speaks plain HTTP.
    pub fn unusable(&self) -> Option<&'static str> {
        (self.endpoint.scheme != "http")
            .then_some("Sous fetches code from S3 over http:// only (no TLS client)")
    }
}

/// Where a request's code is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CodeSource {
    /// `ZipFile`: the package, base64.
    Inline(String),
    S3(S3Object),
}

/// An object named by `S3Bucket`, `S3Key` and `S3ObjectVersion`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct S3Object {
    pub bucket: String,
    pub key: String,
    pub version: Option<String>,
}

/// The code source of a request, checked as Lambda checks it: `ZipFile` alone, or
/// `S3Bucket` and `S3Key` (and optionally `S3ObjectVersion`). `member` prefixes the model's
/// member names in a ValidationException (`code.` for CreateFunction's `Code`, empty for
/// UpdateFunctionCode).
pub(crate) fn code_source(
    zip_file: Option<String>,
    bucket: Option<String>,
    key: Option<String>,
    version: Option<String>,
    member: &str,
) -> Result<CodeSource, LambdaError> {
    let s3_given = bucket.is_some() || key.is_some() || version.is_some();
    if let Some(zip) = zip_file {
        if s3_given {
            return Err(LambdaError::invalid_parameter(
                "Please do not provide other FunctionCode parameters when providing a ZipFile.",
            ));
        }
        return Ok(CodeSource::Inline(zip));
    }
    let mut v = Violations::default();
    if let Some(b) = &bucket {
        if !(3..=63).contains(&b.len()) {
            v.push(
                b,
                &format!("{member}s3Bucket"),
                "Member must have length less than or equal to 63, Member must have length greater than or equal to 3",
            );
        } else if !bucket_pattern_ok(b) {
            v.push(
                b,
                &format!("{member}s3Bucket"),
                r"Member must satisfy regular expression pattern: ^[0-9A-Za-z\.\-_]*(?<!\.)$",
            );
        }
    }
    if let Some(k) = &key {
        if !(1..=1024).contains(&k.len()) {
            v.push(
                k,
                &format!("{member}s3Key"),
                "Member must have length less than or equal to 1024, Member must have length greater than or equal to 1",
            );
        }
    }
    if let Some(ver) = &version {
        if !(1..=1024).contains(&ver.len()) {
            v.push(
                ver,
                &format!("{member}s3ObjectVersion"),
                "Member must have length less than or equal to 1024, Member must have length greater than or equal to 1",
            );
        }
    }
    v.into_result()?;
    match (bucket, key) {
        (Some(bucket), Some(key)) => Ok(CodeSource::S3(S3Object {
            bucket,
            key,
            version,
        })),
        _ => Err(LambdaError::invalid_parameter(
            "Please provide a source for function code.",
        )),
    }
}

/// `^[0-9A-Za-z\.\-_]*(?<!\.)$`: the model's pattern for `S3Bucket`.
fn bucket_pattern_ok(b: &str) -> bool {
    b.bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
        && !b.ends_with('.')
}

/// Fetch the zip `object` names from the configured S3 endpoint (see the module docs for the
/// bounds and the errors).
pub(crate) async fn fetch_zip(state: &ApiState, object: &S3Object) -> Result<Vec<u8>, ApiError> {
    let Some(s3) = state.s3_code.as_ref() else {
        return Err(not_available(
            "this server has no S3 endpoint: start `sous serve` with --service-endpoint s3=URL",
        )
        .into());
    };
    s3.get(object).await
}

impl S3Code {
    /// GetObject `object` (the body of [`fetch_zip`], once an endpoint is configured).
    async fn get(&self, object: &S3Object) -> Result<Vec<u8>, ApiError> {
        if let Some(why) = self.unusable() {
            return Err(not_available(why).into());
        }
        let _permit = self
            .fetches
            .acquire()
            .await
            .map_err(|e| ApiError::internal("wait for a code fetch slot", e))?;
        let started = Instant::now();
        let (path, query) = object_path(object);
        let uri = format!(
            "{}{path}{}",
            self.url(),
            if query.is_empty() {
                String::new()
            } else {
                format!("?{query}")
            }
        );
        let mut headers = http::HeaderMap::new();
        let host = format!("{}:{}", self.endpoint.host, self.endpoint.port);
        headers.insert(
            http::header::HOST,
            http::HeaderValue::from_str(&host)
                .map_err(|e| ApiError::internal("the S3 endpoint's host header", e))?,
        );
        sigv4::sign_s3(
            &mut sigv4::SigningInput {
                method: "GET",
                raw_path: &path,
                raw_query: &query,
                headers: &mut headers,
                body: b"",
            },
            &self.credentials,
            &self.region,
            OffsetDateTime::now_utc(),
        );
        let mut req = http::Request::builder()
            .method(http::Method::GET)
            .uri(&uri)
            .body(Empty::<Bytes>::new())
            .map_err(|e| ApiError::internal(format!("build the GetObject request {uri}"), e))?;
        *req.headers_mut() = headers;
        let action = || {
            format!(
                "fetch the code package s3://{}/{} from {}",
                object.bucket,
                object.key,
                self.url()
            )
        };
        let resp = match timeout(HEAD_TIMEOUT, self.client.request(req)).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => return Err(ApiError::internal(action(), e)),
            Err(_) => {
                return Err(ApiError::internal(
                    action(),
                    format!("no answer within {HEAD_TIMEOUT:?}"),
                ))
            }
        };
        let status = resp.status();
        if !status.is_success() {
            let body = read_capped(resp.into_body(), ERROR_BODY_MAX, started, true)
                .await
                .unwrap_or_default();
            let failure = S3Failure::from_answer(status.as_u16(), &body);
            if status.is_server_error() {
                return Err(ApiError::internal(action(), failure));
            }
            return Err(failure.to_lambda_error(object).into());
        }
        if let Some(len) = resp
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            if len > self.max_bytes {
                return Err(too_large().into());
            }
        }
        match read_capped(
            resp.into_body(),
            usize::try_from(self.max_bytes).unwrap_or(usize::MAX),
            started,
            false,
        )
        .await
        {
            Ok(zip) => {
                tracing::debug!(bucket = %object.bucket, key = %object.key, bytes = zip.len(),
                elapsed_ms = started.elapsed().as_millis() as u64, "code fetched from S3");
                Ok(zip)
            }
            Err(ReadError::TooLarge) => Err(too_large().into()),
            Err(ReadError::Broken(why)) => Err(ApiError::internal(action(), why)),
        }
    }
}

/// The path (`/bucket/key`, each byte of the key but unreserved characters and `/`
/// percent-encoded once, as S3 wants and signs it) and the query (`versionId=...`, or empty).
fn object_path(object: &S3Object) -> (String, String) {
    let key: Vec<String> = object
        .key
        .split('/')
        .map(|segment| utf8_percent_encode(segment, UNRESERVED).to_string())
        .collect();
    let path = format!(
        "/{}/{}",
        utf8_percent_encode(&object.bucket, UNRESERVED),
        key.join("/")
    );
    let query = object
        .version
        .as_deref()
        .map(|v| format!("versionId={}", utf8_percent_encode(v, UNRESERVED)))
        .unwrap_or_default();
    (path, query)
}

enum ReadError {
    TooLarge,
    Broken(String),
}

/// The body, at most `max` bytes (`truncate`: keep the first `max`; otherwise more is
/// [`ReadError::TooLarge`]), within the stall and total timeouts.
async fn read_capped(
    mut body: hyper::body::Incoming,
    max: usize,
    started: Instant,
    truncate: bool,
) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::new();
    loop {
        let left = TOTAL_TIMEOUT.saturating_sub(started.elapsed());
        let wait = STALL_TIMEOUT.min(left);
        let frame = match timeout(wait, body.frame()).await {
            Err(_) if left <= STALL_TIMEOUT => {
                return Err(ReadError::Broken(format!(
                    "the body did not arrive within {TOTAL_TIMEOUT:?}"
                )))
            }
            Err(_) => {
                return Err(ReadError::Broken(format!(
                    "the body stalled for {STALL_TIMEOUT:?}"
                )))
            }
            Ok(None) => return Ok(out),
            Ok(Some(Err(e))) => return Err(ReadError::Broken(format!("the body broke off: {e}"))),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if out.len() + data.len() > max {
            if truncate {
                out.extend_from_slice(&data[..max - out.len()]);
                return Ok(out);
            }
            return Err(ReadError::TooLarge);
        }
        out.extend_from_slice(&data);
    }
}

/// S3's answer to a GetObject that failed: its error code and message (from the XML body,
/// or from the status when the body has none).
#[derive(Debug, Clone, PartialEq, Eq)]
struct S3Failure {
    status: u16,
    code: String,
    message: String,
}

impl std::fmt::Display for S3Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "S3 answered {}: {}: {}",
            self.status, self.code, self.message
        )
    }
}

impl std::error::Error for S3Failure {}

impl S3Failure {
    fn from_answer(status: u16, body: &[u8]) -> Self {
        let text = String::from_utf8_lossy(body);
        let code = xml_element(&text, "Code");
        let message = xml_element(&text, "Message");
        let (default_code, default_message) = match status {
            403 => ("AccessDenied", "Access Denied"),
            404 => ("NoSuchKey", "The specified key does not exist."),
            s if s >= 500 => (
                "InternalError",
                "We encountered an internal error. Please try again.",
            ),
            _ => ("InvalidRequest", "The request was refused."),
        };
        S3Failure {
            status,
            code: code.unwrap_or_else(|| default_code.to_string()),
            message: message.unwrap_or_else(|| default_message.to_string()),
        }
    }

    /// Lambda's answer for it.
    fn to_lambda_error(&self, object: &S3Object) -> LambdaError {
        if self.code == "AccessDenied" {
            return LambdaError::invalid_parameter(format!(
                "Your access has been denied by S3, please make sure your request credentials have permission to GetObject for {}/{}. S3 Error Code: AccessDenied. S3 Error Message: {}",
                object.bucket, object.key, self.message
            ));
        }
        LambdaError::invalid_parameter(format!(
            "Error occurred while GetObject. S3 Error Code: {}. S3 Error Message: {}",
            self.code, self.message
        ))
    }
}

/// The text of the first `<name>...</name>` in `xml`, entities decoded.
fn xml_element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&close)?;
    let raw = &xml[start..start + len];
    Some(
        raw.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

fn not_available(why: &str) -> LambdaError {
    LambdaError::invalid_parameter(format!(
        "Code from S3 (S3Bucket/S3Key) is not available: {why}."
    ))
}

fn too_large() -> LambdaError {
    LambdaError::new(
        ErrorCode::InvalidParameterValueException,
        format!("Unzipped size must be smaller than {UNZIPPED_MAX_BYTES} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Option<String> {
        Some(x.to_string())
    }

    #[test]
    fn a_source_is_zip_alone_or_bucket_and_key() {
        assert_eq!(
            code_source(s("UEsF"), None, None, None, "code."),
            Ok(CodeSource::Inline("UEsF".into()))
        );
        assert_eq!(
            code_source(None, s("bkt"), s("a/b.zip"), s("v1"), "code."),
            Ok(CodeSource::S3(S3Object {
                bucket: "bkt".into(),
                key: "a/b.zip".into(),
                version: s("v1"),
            }))
        );
        let both = code_source(s("UEsF"), s("bkt"), s("k"), None, "code.").unwrap_err();
        assert_eq!(both.code, ErrorCode::InvalidParameterValueException);
        assert_eq!(
            both.message,
            "Please do not provide other FunctionCode parameters when providing a ZipFile."
        );
        for (b, k) in [(s("bkt"), None), (None, s("k")), (None, None)] {
            let e = code_source(None, b, k, None, "code.").unwrap_err();
            assert_eq!(e.message, "Please provide a source for function code.");
        }
    }

    #[test]
    fn bucket_and_key_follow_the_model() {
        let e = code_source(None, s("s3://bucket"), s("k"), None, "code.").unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationException);
        assert_eq!(
            e.message,
            r"1 validation error detected: Value 's3://bucket' at 'code.s3Bucket' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[0-9A-Za-z\.\-_]*(?<!\.)$"
        );
        let e = code_source(None, s("ab"), s(""), None, "").unwrap_err();
        assert!(
            e.message.starts_with("2 validation errors detected"),
            "{}",
            e.message
        );
        assert!(e.message.contains("at 's3Bucket'") && e.message.contains("at 's3Key'"));
    }

    #[test]
    fn keys_are_encoded_once_segment_by_segment() {
        let (path, query) = object_path(&S3Object {
            bucket: "my.bucket".into(),
            key: "dir/a b+c=d~é//x.zip".into(),
            version: s("3/L4kqtJl+cw=="),
        });
        assert_eq!(path, "/my.bucket/dir/a%20b%2Bc%3Dd~%C3%A9//x.zip");
        assert_eq!(query, "versionId=3%2FL4kqtJl%2Bcw%3D%3D");
    }

    #[test]
    fn s3_errors_read_as_lambda_reports_them() {
        let object = S3Object {
            bucket: "bkt".into(),
            key: "f.zip".into(),
            version: None,
        };
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>f.zip</Key></Error>"#;
        let e = S3Failure::from_answer(404, body).to_lambda_error(&object);
        assert_eq!(e.code, ErrorCode::InvalidParameterValueException);
        assert_eq!(
            e.message,
            "Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: The specified key does not exist."
        );
        let body = b"<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>";
        assert_eq!(
            S3Failure::from_answer(404, body).to_lambda_error(&object).message,
            "Error occurred while GetObject. S3 Error Code: NoSuchBucket. S3 Error Message: The specified bucket does not exist"
        );
        let e = S3Failure::from_answer(403, b"").to_lambda_error(&object);
        assert_eq!(
            e.message,
            "Your access has been denied by S3, please make sure your request credentials have permission to GetObject for bkt/f.zip. S3 Error Code: AccessDenied. S3 Error Message: Access Denied"
        );
        let f = S3Failure::from_answer(
            400,
            b"<Error><Code>A&amp;B</Code><Message>x &lt; y</Message></Error>",
        );
        assert_eq!((f.code.as_str(), f.message.as_str()), ("A&B", "x < y"));
    }

    /// A one-shot HTTP server on loopback: answers the first request with `answer` and hands
    /// back the request's head.
    async fn answering(answer: Vec<u8>) -> (S3Code, tokio::task::JoinHandle<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let head = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = conn.read(&mut chunk).await.unwrap();
                assert!(n > 0, "the client closed before its request head ended");
                buf.extend_from_slice(&chunk[..n]);
            }
            let _ = conn.write_all(&answer).await;
            let _ = conn.shutdown().await;
            String::from_utf8_lossy(&buf).into_owned()
        });
        let endpoint = format!("s3=http://127.0.0.1:{port}").parse().unwrap();
        let creds = sigv4::Credentials {
            access_key_id: "AKIDS3".into(),
            secret_access_key: "secret".into(),
        };
        (S3Code::new(endpoint, creds, "eu-west-1"), head)
    }

    fn object(version: Option<&str>) -> S3Object {
        S3Object {
            bucket: "bkt".into(),
            key: "dir/f 1.zip".into(),
            version: version.map(str::to_string),
        }
    }

    #[tokio::test]
    async fn get_object_is_path_style_and_signed_for_s3() {
        let (s3, head) =
            answering(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nzip".to_vec()).await;
        assert_eq!(s3.get(&object(Some("v+1"))).await.unwrap(), b"zip");
        let head = head.await.unwrap().to_ascii_lowercase();
        assert!(
            head.starts_with("get /bkt/dir/f%201.zip?versionid=v%2b1 http/1.1\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nx-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\r\n"), "{head}");
        assert!(
            head.contains("credential=akids3/") && head.contains("/eu-west-1/s3/aws4_request"),
            "{head}"
        );
    }

    #[tokio::test]
    async fn refusals_failures_and_the_size_cap() {
        let (s3, _) =
            answering(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".to_vec()).await;
        match s3.get(&object(None)).await {
            Err(ApiError::Refused(e)) => assert!(
                e.message.starts_with("Your access has been denied by S3")
                    && e.message.contains("bkt/dir/f 1.zip"),
                "{}",
                e.message
            ),
            other => panic!("{other:?}"),
        }
        let (s3, _) =
            answering(b"HTTP/1.1 503 Slow Down\r\nContent-Length: 0\r\n\r\n".to_vec()).await;
        assert!(matches!(
            s3.get(&object(None)).await,
            Err(ApiError::Internal(_))
        ));
        // Refused on Content-Length, before the body.
        let (mut s3, _) =
            answering(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n".to_vec()).await;
        s3.max_bytes = 10;
        match s3.get(&object(None)).await {
            Err(ApiError::Refused(e)) => {
                assert_eq!(
                    e.message,
                    "Unzipped size must be smaller than 262144000 bytes"
                )
            }
            other => panic!("{other:?}"),
        }
        // Counted while it streams (chunked: no length announced).
        let (mut s3, _) = answering(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n"
                .to_vec(),
        )
        .await;
        s3.max_bytes = 10;
        assert!(matches!(
            s3.get(&object(None)).await,
            Err(ApiError::Refused(_))
        ));
        // A body cut short is a broken fetch, not a package.
        let (s3, _) =
            answering(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort".to_vec()).await;
        assert!(matches!(
            s3.get(&object(None)).await,
            Err(ApiError::Internal(_))
        ));
    }

    /// Sous's S3 signature equals the AWS SDKs' own signer's (aws-sigv4 with S3's settings:
    /// no path normalization, single encoding, `x-amz-content-sha256`).
    #[test]
    fn s3_signature_matches_aws_sigv4() {
        use aws_sigv4::http_request::{
            sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
            SigningSettings, UriPathNormalizationMode,
        };
        use aws_sigv4::sign::v4;
        let creds = sigv4::Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        };
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let (path, query) = object_path(&S3Object {
            bucket: "code-bucket".into(),
            key: "releases/v1/my fn+(x).zip".into(),
            version: s("3/L4kqtJl+cw=="),
        });
        let mut headers = http::HeaderMap::new();
        headers.insert("host", "127.0.0.1:9000".parse().unwrap());
        sigv4::sign_s3(
            &mut sigv4::SigningInput {
                method: "GET",
                raw_path: &path,
                raw_query: &query,
                headers: &mut headers,
                body: b"",
            },
            &creds,
            "us-east-1",
            now,
        );

        let identity = aws_credential_types::Credentials::new(
            &creds.access_key_id,
            &creds.secret_access_key,
            None,
            None,
            "test",
        )
        .into();
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("s3")
            .time(std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let url = format!("http://127.0.0.1:9000{path}?{query}");
        let signable = SignableRequest::new(
            "GET",
            &url,
            [("host", "127.0.0.1:9000")].into_iter(),
            SignableBody::Bytes(b""),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let theirs: std::collections::HashMap<_, _> = instructions
            .headers()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        assert_eq!(
            headers["authorization"].to_str().unwrap(),
            theirs["authorization"]
        );
        assert_eq!(
            headers["x-amz-content-sha256"].to_str().unwrap(),
            theirs["x-amz-content-sha256"]
        );
    }
}
