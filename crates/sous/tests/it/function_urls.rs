//! Function URLs (issue 7, points 1, 2, 4 and 6) through the real binary: the control plane
//! (Create/Get/Update/Delete/ListFunctionUrlConfigs with aws-sdk-lambda and once with the AWS
//! CLI), and requests through the front door on `--gateway-addr`: the payload format 2.0
//! event, response mapping, binary bodies, cookies, query strings, AWS_IAM signatures, CORS,
//! and the door's own errors (404, 413, 502).

use crate::common::*;
use aws_sdk_lambda::types::{Cors, FunctionUrlAuthType, InvokeMode, Runtime};

/// The test function: behaviour chosen by the request path.
const HANDLER: &str = r#"
import base64, json, time

def handler(event, context):
    path = event.get("rawPath", "")
    if path == "/echo":
        return {"statusCode": 200, "headers": {"content-type": "application/json", "x-fn": "yes"}, "body": json.dumps(event)}
    if path == "/binary":
        return {"statusCode": 200, "headers": {"content-type": "application/octet-stream"},
                "body": base64.b64encode(bytes(range(256))).decode(), "isBase64Encoded": True}
    if path == "/cookies":
        return {"statusCode": 201, "headers": {"content-type": "text/plain"}, "cookies": ["a=1; Path=/", "b=2"], "body": "cookies set"}
    if path == "/string":
        return "Hello, world!"
    if path == "/object":
        return {"message": "hi"}
    if path == "/fail":
        raise RuntimeError("boom")
    if path == "/sleep":
        time.sleep(10)
    if path == "/cors":
        return {"statusCode": 200, "headers": {"access-control-allow-origin": "https://mine.example"}, "body": "x"}
    if path == "/malformed":
        return {"statusCode": "teapot"}
    return {"statusCode": 404, "body": "no route " + path}
"#;

async fn deploy(server: &Server) -> String {
    let name = unique("url");
    let zip = zip_entries(&[file("app.py", HANDLER.as_bytes().to_vec(), 0o644)]);
    create_ok(
        server,
        create(&server.client, &name, &zip)
            .runtime(Runtime::Python311)
            .handler("app.handler")
            .timeout(2),
    )
    .await;
    name
}

async fn url_for(
    server: &Server,
    name: &str,
    auth: FunctionUrlAuthType,
    cors: Option<Cors>,
) -> String {
    let out = server
        .client
        .create_function_url_config()
        .function_name(name)
        .auth_type(auth)
        .set_cors(cors)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateFunctionUrlConfig: {:#?}", api_error(e)));
    out.function_url().to_string()
}

async fn get(url: &str) -> RawResponse {
    raw_request("GET", url, &[], Vec::new()).await
}

fn text(r: &RawResponse) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

#[tokio::test]
async fn control_plane_matches_lambda() {
    let server = Server::start();
    let name = deploy(&server).await;
    let c = &server.client;

    let created = c
        .create_function_url_config()
        .function_name(&name)
        .auth_type(FunctionUrlAuthType::None)
        .send()
        .await
        .unwrap();
    let url = created.function_url();
    let prefix = format!("http://{}/lambda-url/", server.gateway_addr);
    assert!(url.starts_with(&prefix), "{url}");
    let id = url[prefix.len()..].trim_end_matches('/');
    assert_eq!(id.len(), 32, "{url}");
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    assert_eq!(
        created.function_arn(),
        format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}")
    );
    assert_eq!(created.auth_type(), &FunctionUrlAuthType::None);
    assert_eq!(created.invoke_mode(), Some(&InvokeMode::Buffered));
    assert!(
        regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
            .unwrap()
            .is_match(created.creation_time())
    );

    // One URL per function (or alias).
    let e = api_error(
        c.create_function_url_config()
            .function_name(&name)
            .auth_type(FunctionUrlAuthType::AwsIam)
            .send()
            .await
            .unwrap_err(),
    );
    e.assert(409, "ResourceConflictException");

    let got = c
        .get_function_url_config()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(got.function_url(), url);
    assert!(!got.last_modified_time().is_empty());

    let updated = c
        .update_function_url_config()
        .function_name(&name)
        .auth_type(FunctionUrlAuthType::AwsIam)
        .cors(
            Cors::builder()
                .allow_origins("https://a.example")
                .max_age(60)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(updated.function_url(), url, "the URL never changes");
    assert_eq!(updated.auth_type(), &FunctionUrlAuthType::AwsIam);
    assert_eq!(
        updated.cors().unwrap().allow_origins(),
        ["https://a.example"]
    );
    assert_eq!(updated.cors().unwrap().max_age(), Some(60));

    // Qualifiers are alias names: $LATEST and version numbers fail the model's pattern.
    for q in ["$LATEST", "1"] {
        let e = api_error(
            c.get_function_url_config()
                .function_name(&name)
                .qualifier(q)
                .send()
                .await
                .unwrap_err(),
        );
        e.assert(400, "ValidationException");
    }
    // An alias that does not exist, and a function that does not exist.
    let e = api_error(
        c.create_function_url_config()
            .function_name(&name)
            .qualifier("live")
            .auth_type(FunctionUrlAuthType::None)
            .send()
            .await
            .unwrap_err(),
    );
    e.assert(404, "ResourceNotFoundException");
    let e = api_error(
        c.get_function_url_config()
            .function_name("no-such-function")
            .send()
            .await
            .unwrap_err(),
    );
    e.assert(404, "ResourceNotFoundException");
    // Streaming responses are not served.
    let e = api_error(
        c.create_function_url_config()
            .function_name(&name)
            .qualifier("other")
            .auth_type(FunctionUrlAuthType::None)
            .invoke_mode(InvokeMode::ResponseStream)
            .send()
            .await
            .unwrap_err(),
    );
    e.assert(400, "InvalidParameterValueException");

    // An alias gets its own URL, and loses it with the alias.
    c.publish_version()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    c.create_alias()
        .function_name(&name)
        .name("live")
        .function_version("1")
        .send()
        .await
        .unwrap();
    let alias_url = c
        .create_function_url_config()
        .function_name(&name)
        .qualifier("live")
        .auth_type(FunctionUrlAuthType::None)
        .send()
        .await
        .unwrap();
    assert_ne!(alias_url.function_url(), url);
    assert!(alias_url.function_arn().ends_with(":live"));
    let r = get(&format!("{}string", alias_url.function_url())).await;
    assert_eq!(r.status, 200, "{}", text(&r));
    let list = c
        .list_function_url_configs()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(list.function_url_configs().len(), 2);
    let page = c
        .list_function_url_configs()
        .function_name(&name)
        .max_items(1)
        .send()
        .await
        .unwrap();
    assert_eq!(page.function_url_configs().len(), 1);
    let rest = c
        .list_function_url_configs()
        .function_name(&name)
        .marker(page.next_marker().expect("a second page"))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.function_url_configs().len(), 1);
    assert_ne!(
        rest.function_url_configs()[0].function_url(),
        page.function_url_configs()[0].function_url()
    );
    c.delete_alias()
        .function_name(&name)
        .name("live")
        .send()
        .await
        .unwrap();
    let r = get(&format!("{}string", alias_url.function_url())).await;
    assert_eq!(r.status, 404, "the alias's URL went with it");
    let list = c
        .list_function_url_configs()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(list.function_url_configs().len(), 1);

    c.delete_function_url_config()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    let e = api_error(
        c.get_function_url_config()
            .function_name(&name)
            .send()
            .await
            .unwrap_err(),
    );
    e.assert(404, "ResourceNotFoundException");
    let e = api_error(
        c.delete_function_url_config()
            .function_name(&name)
            .send()
            .await
            .unwrap_err(),
    );
    e.assert(404, "ResourceNotFoundException");
    let r = get(&format!("{url}string")).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), serde_json::json!({"message": "Not Found"}));
}

#[tokio::test]
async fn requests_become_payload_2_0_events() {
    let server = Server::start();
    let name = deploy(&server).await;
    let url = url_for(&server, &name, FunctionUrlAuthType::None, None).await;
    let id = url
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();

    let r = raw_request(
        "POST",
        &format!("{url}echo?a=1&a=2&b=x%20y"),
        &[
            ("content-type", "text/plain"),
            ("cookie", "c1=v1; c2=v2"),
            ("x-multi", "one"),
            ("user-agent", "sous-test/1"),
        ],
        b"hello body".to_vec(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(r.header("x-fn").as_deref(), Some("yes"));
    assert!(r.header("x-amzn-requestid").is_some());
    let ev = r.json();
    assert_eq!(ev["version"], "2.0");
    assert_eq!(ev["routeKey"], "$default");
    assert_eq!(ev["rawPath"], "/echo");
    assert_eq!(ev["rawQueryString"], "a=1&a=2&b=x%20y");
    assert_eq!(ev["cookies"], serde_json::json!(["c1=v1", "c2=v2"]));
    assert!(ev["headers"].get("cookie").is_none());
    assert_eq!(ev["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(ev["headers"]["x-multi"], "one");
    assert_eq!(ev["queryStringParameters"]["a"], "1,2");
    assert_eq!(ev["queryStringParameters"]["b"], "x y");
    assert_eq!(ev["body"], "hello body");
    assert_eq!(ev["isBase64Encoded"], false);
    let ctx = &ev["requestContext"];
    assert_eq!(ctx["accountId"], "anonymous");
    assert_eq!(ctx["apiId"], id.as_str());
    assert_eq!(ctx["domainPrefix"], id.as_str());
    assert_eq!(
        ctx["domainName"],
        format!("{id}.lambda-url.{REGION}.localhost")
    );
    assert_eq!(ctx["http"]["method"], "POST");
    assert_eq!(ctx["http"]["path"], "/echo");
    assert_eq!(ctx["http"]["protocol"], "HTTP/1.1");
    assert_eq!(ctx["http"]["sourceIp"], "127.0.0.1");
    assert_eq!(ctx["http"]["userAgent"], "sous-test/1");
    assert!(
        regex::Regex::new(r"^\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000$")
            .unwrap()
            .is_match(ctx["time"].as_str().unwrap())
    );
    assert!(ctx["timeEpoch"].as_i64().unwrap() > 1_700_000_000_000);
    assert!(ctx.get("authorizer").is_none());

    // Binary in: base64 in the event. Binary out: decoded by the door.
    let blob: Vec<u8> = (0u8..=255).rev().collect();
    let r = raw_request(
        "PUT",
        &format!("{url}echo"),
        &[("content-type", "application/octet-stream")],
        blob.clone(),
    )
    .await;
    let ev = r.json();
    assert_eq!(ev["isBase64Encoded"], true);
    assert_eq!(unb64(ev["body"].as_str().unwrap()), blob);
    let r = get(&format!("{url}binary")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(r.body, (0u8..=255).collect::<Vec<u8>>());

    // Cookies become one Set-Cookie each.
    let r = get(&format!("{url}cookies")).await;
    assert_eq!(r.status, 201);
    let set: Vec<&str> = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(set, ["a=1; Path=/", "b=2"]);
    assert_eq!(text(&r), "cookies set");

    // Answers without statusCode are the JSON body of a 200.
    let r = get(&format!("{url}string")).await;
    assert_eq!((r.status, text(&r).as_str()), (200, r#""Hello, world!""#));
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    let r = get(&format!("{url}object")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), serde_json::json!({"message": "hi"}));
    let r = get(&format!("{url}elsewhere")).await;
    assert_eq!((r.status, text(&r).as_str()), (404, "no route /elsewhere"));

    // Host-based addressing reaches the same function.
    let r = raw_request(
        "GET",
        &format!("http://{}/object", server.gateway_addr),
        &[("host", &format!("{id}.lambda-url.{REGION}.localhost"))],
        Vec::new(),
    )
    .await;
    assert_eq!(r.json(), serde_json::json!({"message": "hi"}));

    // Unknown URL ids and addresses: 404.
    for path in [
        "lambda-url/0123456789abcdef0123456789abcdef/".to_string(),
        "lambda-url/not-an-id/".to_string(),
        "nothing/here".to_string(),
    ] {
        let r = get(&format!("http://{}/{path}", server.gateway_addr)).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.json(), serde_json::json!({"message": "Not Found"}));
    }
}

#[tokio::test]
async fn errors_at_the_door() {
    let server = Server::start();
    let name = deploy(&server).await;
    let url = url_for(&server, &name, FunctionUrlAuthType::None, None).await;

    let r = get(&format!("{url}fail")).await;
    assert_eq!(
        (r.status, text(&r).as_str()),
        (502, "Internal Server Error")
    );
    let r = get(&format!("{url}malformed")).await;
    assert_eq!(r.status, 502, "{}", text(&r));
    // The function's own timeout (2 s) is a function error: 502.
    let r = get(&format!("{url}sleep")).await;
    assert_eq!(r.status, 502, "{}", text(&r));
    // Above Lambda's 6 MB synchronous payload: 413, the function is not invoked.
    let r = raw_request(
        "POST",
        &format!("{url}echo"),
        &[("content-type", "text/plain")],
        vec![b'a'; 6 * 1024 * 1024 + 1],
    )
    .await;
    assert_eq!(r.status, 413, "{}", text(&r));
    // A throttled function: 429.
    server
        .client
        .put_function_concurrency()
        .function_name(&name)
        .reserved_concurrent_executions(0)
        .send()
        .await
        .unwrap();
    let r = get(&format!("{url}string")).await;
    assert_eq!(r.status, 429, "{}", text(&r));
}

/// The headers of a request to `url` signed (SigV4, service `lambda`) by the `aws-sigv4`
/// crate, the AWS SDKs' signer, with the test key id and `secret`.
fn signed_headers(method: &str, url: &str, body: &[u8], secret: &str) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;
    let host = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap();
    let identity =
        aws_credential_types::Credentials::new(ACCESS_KEY, secret, None, None, "sous-tests").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("lambda")
        .time(std::time::SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let request = SignableRequest::new(
        method,
        url,
        [("host", host)].into_iter(),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _signature) = sign(request, &params).unwrap().into_parts();
    std::iter::once(("host".to_string(), host.to_string()))
        .chain(
            instructions
                .headers()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        )
        .collect()
}

#[tokio::test]
async fn aws_iam_urls_need_a_valid_signature() {
    let server = Server::start();
    let name = deploy(&server).await;
    let url = url_for(&server, &name, FunctionUrlAuthType::AwsIam, None).await;
    let target = format!("{url}echo?x=1");
    let forbidden = |r: &RawResponse| {
        assert_eq!(r.status, 403, "{}", text(r));
        assert!(r.json()["Message"]
            .as_str()
            .unwrap()
            .starts_with("Forbidden"));
    };

    let r = raw_request(
        "POST",
        &target,
        &[("content-type", "application/json")],
        b"{}".to_vec(),
    )
    .await;
    forbidden(&r);

    let body = br#"{"k":"v"}"#.to_vec();
    let bad = signed_headers("POST", &target, &body, "not-the-secret");
    let bad: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = raw_request("POST", &target, &bad, body.clone()).await;
    forbidden(&r);

    let good = signed_headers("POST", &target, &body, SECRET_KEY);
    let good: Vec<(&str, &str)> = good.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // A signature covers the body: another body with the same headers is refused.
    let r = raw_request("POST", &target, &good, b"{}".to_vec()).await;
    forbidden(&r);
    let r = raw_request("POST", &target, &good, body.clone()).await;
    assert_eq!(r.status, 200, "{}", text(&r));
    let ev = r.json();
    assert_eq!(ev["requestContext"]["accountId"], ACCOUNT);
    let iam = &ev["requestContext"]["authorizer"]["iam"];
    assert_eq!(iam["accessKey"], ACCESS_KEY);
    assert_eq!(iam["accountId"], ACCOUNT);
    assert_eq!(iam["userArn"], format!("arn:aws:iam::{ACCOUNT}:root"));
}

#[tokio::test]
async fn cors_is_applied_as_lambda_applies_it() {
    let server = Server::start();
    let name = deploy(&server).await;
    let cors = Cors::builder()
        .allow_origins("https://app.example")
        .allow_methods("GET")
        .allow_methods("POST")
        .allow_headers("x-custom")
        .expose_headers("x-fn")
        .max_age(300)
        .allow_credentials(true)
        .build();
    let url = url_for(&server, &name, FunctionUrlAuthType::None, Some(cors)).await;

    // Preflight: answered by the door, the function is not invoked (it would answer 404).
    let r = raw_request(
        "OPTIONS",
        &format!("{url}anything"),
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "x-custom"),
        ],
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert!(r.body.is_empty());
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("https://app.example")
    );
    assert_eq!(
        r.header("access-control-allow-methods").as_deref(),
        Some("GET,POST")
    );
    assert_eq!(
        r.header("access-control-allow-headers").as_deref(),
        Some("x-custom")
    );
    assert_eq!(r.header("access-control-max-age").as_deref(), Some("300"));
    assert_eq!(
        r.header("access-control-allow-credentials").as_deref(),
        Some("true")
    );
    // A preflight from another origin gets no CORS headers.
    let r = raw_request(
        "OPTIONS",
        &format!("{url}anything"),
        &[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "GET"),
        ],
        Vec::new(),
    )
    .await;
    assert!(r.header("access-control-allow-origin").is_none());

    // Responses: the configuration's headers replace the function's.
    let r = raw_request(
        "GET",
        &format!("{url}cors"),
        &[("origin", "https://app.example")],
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("https://app.example")
    );
    assert_eq!(
        r.header("access-control-expose-headers").as_deref(),
        Some("x-fn")
    );
    let r = raw_request(
        "GET",
        &format!("{url}cors"),
        &[("origin", "https://evil.example")],
        Vec::new(),
    )
    .await;
    assert!(
        r.header("access-control-allow-origin").is_none(),
        "{:?}",
        r.headers
    );
}

// ---------------------------------------------------------------------------------------
// The AWS CLI, once.

#[tokio::test]
async fn aws_cli_creates_a_function_url() {
    let server = Server::start();
    let name = deploy(&server).await;
    let v = AwsCli::new(&server, "lambda").json(&[
        "create-function-url-config",
        "--function-name",
        &name,
        "--auth-type",
        "NONE",
        "--cors",
        "AllowOrigins=*,AllowMethods=GET",
    ]);
    assert_eq!(v["AuthType"], "NONE");
    assert_eq!(v["Cors"]["AllowOrigins"], serde_json::json!(["*"]));
    let url = v["FunctionUrl"].as_str().unwrap();
    // ... and curl-like plain HTTP reaches the function.
    let r = get(&format!("{url}object")).await;
    assert_eq!(r.json(), serde_json::json!({"message": "hi"}));
}
