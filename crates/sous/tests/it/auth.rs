//! SigV4 authentication of the Lambda API (issue 2, point 5): unsigned, wrongly signed,
//! tampered and expired requests get AWS's 403 errors, and the secret never reaches a log.

use std::time::{Duration, SystemTime};

use crate::common::*;
use aws_sdk_lambda::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_lambda::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_types::body::SdkBody;

const BAD_SIGNATURE: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
const BAD_TOKEN: &str = "The security token included in the request is invalid.";

fn error_type(resp: &RawResponse) -> String {
    resp.header("x-amzn-ErrorType")
        .unwrap_or_default()
        .split(':')
        .next()
        .unwrap_or("")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_requests_are_403_and_do_nothing() {
    let server = Server::start();
    let marker = unique("unsigned-marker");
    let name = unique("unsigned");
    create_ok(
        &server,
        create(
            &server.client,
            &name,
            &bootstrap_zip(marked_runtime(&marker)),
        )
        .environment(env_vars(&[("SOUS_TEST_MARKER", &marker)])),
    )
    .await;
    let base = server.endpoint();

    let resp = raw_request(
        "GET",
        &format!("{base}/2015-03-31/functions/"),
        &[],
        Vec::new(),
    )
    .await;
    assert_eq!(resp.status, 403, "unsigned ListFunctions: {resp:?}");
    let code = error_type(&resp);
    assert!(
        code == "MissingAuthenticationTokenException" || code == "UnrecognizedClientException",
        "x-amzn-ErrorType of an unsigned request: {resp:?}"
    );
    let body = resp.json();
    assert!(
        body.get("message")
            .or(body.get("Message"))
            .is_some_and(|m| m.is_string()),
        "{body}"
    );

    let resp = raw_request(
        "POST",
        &format!("{base}/2015-03-31/functions/{name}/invocations"),
        &[],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(resp.status, 403, "unsigned Invoke: {resp:?}");
    assert!(
        !error_type(&resp).is_empty(),
        "x-amzn-ErrorType present: {resp:?}"
    );
    assert!(
        processes_with(&marker).is_empty(),
        "an unsigned Invoke ran the function"
    );

    let zip = b64(&bootstrap_zip(echo_runtime()));
    let create_body = format!(
        r#"{{"FunctionName":"{}","Runtime":"provided.al2023","Role":"{ROLE}","Handler":"h","Code":{{"ZipFile":"{zip}"}}}}"#,
        unique("sneaky")
    );
    let resp = raw_request(
        "POST",
        &format!("{base}/2015-03-31/functions"),
        &[("content-type", "application/json")],
        create_body.into_bytes(),
    )
    .await;
    assert_eq!(resp.status, 403, "unsigned CreateFunction: {resp:?}");

    // A malformed Authorization header.
    let resp = raw_request(
        "GET",
        &format!("{base}/2015-03-31/functions/"),
        &[
            ("authorization", "AWS4-HMAC-SHA256 Credential=garbage"),
            ("x-amz-date", "20260101T000000Z"),
        ],
        Vec::new(),
    )
    .await;
    assert_eq!(resp.status, 403, "malformed Authorization: {resp:?}");
    assert!(
        !error_type(&resp).is_empty(),
        "x-amzn-ErrorType present: {resp:?}"
    );

    let list = server.client.list_functions().send().await.unwrap();
    assert_eq!(
        list.functions().len(),
        1,
        "nothing was created without a signature"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_is_invalid_signature_and_unknown_key_is_unrecognized_client() {
    let server = Server::start();
    let wrong_secret = client_for(
        server.api_addr,
        ACCESS_KEY,
        "not-the-secret-at-all-0123456789abcdef",
    );
    let err = expect_err(wrong_secret.list_functions().send().await);
    err.assert(403, "InvalidSignatureException");
    assert_eq!(err.message(), BAD_SIGNATURE);
    let err = expect_err(
        create(
            &wrong_secret,
            &unique("nope"),
            &bootstrap_zip(echo_runtime()),
        )
        .send()
        .await,
    );
    err.assert(403, "InvalidSignatureException");

    let unknown = client_for(server.api_addr, "AKIAUNKNOWNKEY000000", SECRET_KEY);
    let err = expect_err(unknown.list_functions().send().await);
    err.assert(403, "UnrecognizedClientException");
    assert_eq!(err.message(), BAD_TOKEN);
    let err = expect_err(unknown.get_account_settings().send().await);
    err.assert(403, "UnrecognizedClientException");

    let list = server.client.list_functions().send().await.unwrap();
    assert!(
        list.functions().is_empty(),
        "nothing was created with a wrong signature"
    );
}

/// Changes the request after it was signed.
#[derive(Debug, Clone)]
enum Tamper {
    Query,
    Body,
}

impl Intercept for Tamper {
    fn name(&self) -> &'static str {
        "tamper"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let req = context.request_mut();
        match self {
            Tamper::Query => {
                let uri = req.uri().replace("MaxItems=2", "MaxItems=3");
                assert_ne!(uri, req.uri(), "query to tamper with");
                req.set_uri(uri)?;
            }
            Tamper::Body => {
                *req.body_mut() = SdkBody::from(&b"{\"a\":2}"[..]);
            }
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_and_expired_requests_are_invalid_signature() {
    let server = Server::start();
    let name = unique("tamper");
    let marker = unique("tamper-marker");
    create_ok(
        &server,
        create(
            &server.client,
            &name,
            &bootstrap_zip(marked_runtime(&marker)),
        )
        .environment(env_vars(&[("SOUS_TEST_MARKER", &marker)])),
    )
    .await;

    let err = expect_err(
        server
            .client
            .list_functions()
            .max_items(2)
            .customize()
            .interceptor(Tamper::Query)
            .send()
            .await,
    );
    err.assert(403, "InvalidSignatureException");

    let err = expect_err(
        invoke_req(&server.client, &name, b"{\"a\":1}")
            .customize()
            .interceptor(Tamper::Body)
            .send()
            .await,
    );
    err.assert(403, "InvalidSignatureException");
    assert!(
        processes_with(&marker).is_empty(),
        "a tampered Invoke ran the function"
    );

    // Signed 20 minutes ago: outside the 15-minute window.
    let conf = server
        .client
        .config()
        .to_builder()
        .time_source(aws_smithy_async::time::StaticTimeSource::new(
            SystemTime::now() - Duration::from_secs(20 * 60),
        ))
        .build();
    let stale = aws_sdk_lambda::Client::from_conf(conf);
    let err = expect_err(stale.list_functions().send().await);
    err.assert(403, "InvalidSignatureException");
    assert!(
        err.message().starts_with("Signature expired: "),
        "{:?}",
        err.message()
    );

    // Signed 20 minutes in the future.
    let conf = server
        .client
        .config()
        .to_builder()
        .time_source(aws_smithy_async::time::StaticTimeSource::new(
            SystemTime::now() + Duration::from_secs(20 * 60),
        ))
        .build();
    let future = aws_sdk_lambda::Client::from_conf(conf);
    let err = expect_err(future.list_functions().send().await);
    err.assert(403, "InvalidSignatureException");
    assert!(
        err.message().starts_with("Signature not yet current: "),
        "{:?}",
        err.message()
    );

    // Properly signed requests still pass, including ARN paths that need double encoding.
    let ok = invoke(&server, &function_arn(&name), br#"{"fine":true}"#).await;
    assert_eq!(ok.json(), serde_json::json!({"fine": true}));
    reap(&marker);
}

fn files_containing(dir: &std::path::Path, needle: &[u8], out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            files_containing(&path, needle, out);
        } else if ft.is_file() {
            if let Ok(data) = std::fs::read(&path) {
                if data.windows(needle.len()).any(|w| w == needle) {
                    out.push(path.display().to_string());
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_never_appears_in_logs() {
    let mut server = Server::start();
    // Exercise success, failure and function output paths.
    let name = unique("secretlog");
    let runtime = shell_runtime(
        "echo init-output",
        r#"  echo "handling $REQUEST_ID"; respond "$EVENT""#,
    );
    create_ok(
        &server,
        create(&server.client, &name, &bootstrap_zip(runtime)),
    )
    .await;
    invoke(&server, &name, b"{}").await;
    let wrong = client_for(
        server.api_addr,
        ACCESS_KEY,
        "wrong-secret-wrong-secret-wrong-secret",
    );
    let _ = wrong.list_functions().send().await;
    let _ = raw_request(
        "GET",
        &format!("{}/2015-03-31/functions/", server.endpoint()),
        &[],
        Vec::new(),
    )
    .await;
    let status = server.stop();
    assert!(status.success(), "{status}");

    let output = server.output();
    assert!(
        output.contains("listening"),
        "the server says when it listens:\n{output}"
    );
    assert!(
        !output.contains(SECRET_KEY),
        "the secret appears in the server's output"
    );
    let mut hits = Vec::new();
    files_containing(
        &server.data_dir.join("logs"),
        SECRET_KEY.as_bytes(),
        &mut hits,
    );
    assert!(
        hits.is_empty(),
        "the secret appears in stored logs: {hits:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_configured_keys_a_pair_is_generated_into_the_data_dir() {
    let mut server = Server::start_with(ServerOptions {
        credentials: None,
        ..Default::default()
    });
    let path = server.data_dir.join("credentials");
    assert!(path.exists(), "{} was not written", path.display());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "credentials file mode");
    let (akid, secret) = read_credentials_file(&path);
    assert!(
        !akid.is_empty() && secret.len() >= 20,
        "a real key pair: {akid}"
    );
    assert_ne!(secret, SECRET_KEY);

    // server.client was built from the generated pair.
    let list = server.client.list_functions().send().await;
    assert!(
        list.is_ok(),
        "the generated pair works: {:#?}",
        list.err().map(api_error)
    );
    let wrong = client_for(server.api_addr, ACCESS_KEY, SECRET_KEY);
    expect_err(wrong.list_functions().send().await).assert(403, "UnrecognizedClientException");

    let output = server.output();
    assert!(
        output.contains("credentials"),
        "start-up says where the generated key pair is:\n{output}"
    );
    assert!(
        !output.contains(&secret),
        "the generated secret appears in the server's output"
    );

    // The pair is generated once: a restart keeps it.
    server.restart();
    assert_eq!(read_credentials_file(&path), (akid, secret.clone()));
    assert!(server.client.list_functions().send().await.is_ok());
    assert!(!server.output().contains(&secret));
}
