//! Router-level tests: signed requests through the whole stack (transport, SigV4, routes,
//! service, error mapping) against a temp-dir store and the invoker.

use std::io::Write as _;
use std::sync::Arc;

use axum::body::Body;
use base64::Engine as _;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sous_invoke::Invoker;
use sous_store::Store;
use sous_types::names::Scope;
use sous_worker::{Pool, PoolConfig};
use tower::ServiceExt as _;

use crate::{router, sigv4, ApiState};

const KEY_ID: &str = "AKIDSOUSTEST";
const SECRET: &str = "sous-test-secret";
const ROLE: &str = "arn:aws:iam::000000000000:role/lambda-role";

struct Api {
    router: axum::Router,
    _dir: tempfile::TempDir,
}

fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let scope = Scope::new("us-east-1", "000000000000");
    let pool = Pool::new(PoolConfig::new(dir.path().to_path_buf(), false)).unwrap();
    let state = Arc::new(ApiState {
        invoker: Arc::new(Invoker::new(
            store.clone(),
            pool,
            Arc::new(sous_runtimes::Catalog::custom_only()),
            scope.clone(),
        )),
        store,
        scope,
        credentials: sigv4::Credentials {
            access_key_id: KEY_ID.into(),
            secret_access_key: SECRET.into(),
        },
        public_url: "http://127.0.0.1:3001".into(),
        gateway_url: "http://127.0.0.1:3000".into(),
        schedule_seconds: false,
        s3_code: None,
    });
    Api {
        router: router(state),
        _dir: dir,
    }
}

/// A request signed (SigV4, service `lambda`) by the `aws-sigv4` crate, the AWS SDKs' own
/// signer (double-encoded path, sorted query, every given header signed), so a mistake in
/// Sous's verifier cannot hide behind the same mistake in a test's signer.
fn signed(
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Request<Body> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;
    let url = format!("http://127.0.0.1:3001{path_and_query}");
    let identity =
        aws_credential_types::Credentials::new(KEY_ID, SECRET, None, None, "sous-api-tests").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("lambda")
        .time(std::time::SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let mut all: Vec<(&str, &str)> = vec![("host", "127.0.0.1:3001")];
    all.extend(headers.iter().copied());
    let signable = SignableRequest::new(
        method,
        &url,
        all.iter().copied(),
        SignableBody::Bytes(&body),
    )
    .unwrap();
    let (instructions, _signature) = sign(signable, &params).unwrap().into_parts();
    let mut req = Request::builder().method(method).uri(path_and_query);
    for (k, v) in &all {
        req = req.header(*k, *v);
    }
    for (k, v) in instructions.headers() {
        req = req.header(k, v);
    }
    req.body(Body::from(body)).unwrap()
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn error_type(&self) -> &str {
        self.headers
            .get("x-amzn-ErrorType")
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

impl Api {
    async fn send(&self, req: Request<Body>) -> Resp {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        assert!(
            headers.contains_key("x-amzn-RequestId"),
            "every response carries a request id"
        );
        Resp {
            status,
            headers,
            body,
        }
    }

    async fn call(&self, method: &str, pq: &str, body: Option<Value>) -> Resp {
        let (headers, bytes): (&[(&str, &str)], Vec<u8>) = match &body {
            Some(b) => (
                &[("content-type", "application/json")],
                serde_json::to_vec(b).unwrap(),
            ),
            None => (&[], Vec::new()),
        };
        self.send(signed(method, pq, headers, bytes)).await
    }

    async fn create(&self, name: &str, zip: &[u8]) -> Resp {
        self.call(
            "POST",
            "/2015-03-31/functions",
            Some(create_body(name, zip)),
        )
        .await
    }
}

fn zip_with(content: &[u8]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
    w.start_file("bootstrap", opts).unwrap();
    w.write_all(content).unwrap();
    w.finish().unwrap().into_inner()
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn create_body(name: &str, zip: &[u8]) -> Value {
    json!({
        "FunctionName": name,
        "Role": ROLE,
        "Runtime": "provided.al2023",
        "Handler": "bootstrap",
        "Code": {"ZipFile": b64(zip)},
        "Tags": {"team": "sous"},
    })
}

#[tokio::test]
async fn create_get_update_delete() {
    let api = api();
    let zip = zip_with(b"#!/bin/sh\necho hi\n");
    let r = api.create("hello", &zip).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let c = r.json();
    assert_eq!(c["FunctionName"], "hello");
    assert_eq!(
        c["FunctionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:hello"
    );
    assert_eq!(c["Version"], "$LATEST");
    assert_eq!(c["State"], "Active");
    assert_eq!(c["LastUpdateStatus"], "Successful");
    assert_eq!(c["CodeSize"], zip.len());
    assert_eq!(c["CodeSha256"], b64(&Sha256::digest(&zip)));
    assert_eq!(c["Timeout"], 3);
    assert_eq!(c["MemorySize"], 128);
    assert_eq!(c["Description"], "");
    assert_eq!(c["PackageType"], "Zip");
    assert_eq!(c["EphemeralStorage"]["Size"], 512);
    assert_eq!(c["TracingConfig"]["Mode"], "PassThrough");
    assert_eq!(c["LoggingConfig"]["LogGroup"], "/aws/lambda/hello");
    assert_eq!(c["LoggingConfig"]["LogFormat"], "Text");
    assert_eq!(c["SnapStart"]["ApplyOn"], "None");
    assert!(c["RuntimeVersionConfig"]["RuntimeVersionArn"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws:lambda:us-east-1::runtime:"));
    assert!(c["LastModified"].as_str().unwrap().ends_with("+0000"));
    let rev1 = c["RevisionId"].as_str().unwrap().to_string();

    // Duplicate.
    let r = api.create("hello", &zip).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.error_type(), "ResourceConflictException");
    assert_eq!(r.json()["message"], "Function already exist: hello");

    // GetFunction by ARN, with the code URL.
    let r = api
        .call("GET", "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Ahello", None)
        .await;
    assert_eq!(r.status, 200);
    let g = r.json();
    assert_eq!(g["Configuration"]["RevisionId"], rev1.as_str());
    assert_eq!(g["Code"]["RepositoryType"], "S3");
    assert_eq!(g["Tags"]["team"], "sous");
    let location = g["Code"]["Location"].as_str().unwrap();
    let path = location.strip_prefix("http://127.0.0.1:3001").unwrap();
    let dl = api
        .send(Request::get(path).body(Body::empty()).unwrap())
        .await;
    assert_eq!(dl.status, 200);
    assert_eq!(dl.headers["content-type"], "application/zip");
    assert_eq!(dl.body, zip);
    let tampered = path.replace("signature=", "signature=00");
    let dl = api
        .send(Request::get(tampered).body(Body::empty()).unwrap())
        .await;
    assert_eq!(dl.status, 403);

    // GetFunctionConfiguration with an explicit $LATEST: qualified ARN.
    let r = api
        .call(
            "GET",
            "/2015-03-31/functions/hello/configuration?Qualifier=%24LATEST",
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["FunctionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:hello:$LATEST"
    );
    let r = api
        .call(
            "GET",
            "/2015-03-31/functions/hello/configuration?Qualifier=7",
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json()["Message"],
        "Function not found: arn:aws:lambda:us-east-1:000000000000:function:hello:7"
    );

    // UpdateFunctionConfiguration: stale revision, validation, success.
    let r = api
        .call(
            "PUT",
            "/2015-03-31/functions/hello/configuration",
            Some(json!({"Timeout": 10, "RevisionId": "stale"})),
        )
        .await;
    assert_eq!(r.status, 412);
    assert_eq!(r.error_type(), "PreconditionFailedException");
    let r = api
        .call(
            "PUT",
            "/2015-03-31/functions/hello/configuration",
            Some(json!({"Timeout": 901})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type(), "ValidationException");
    let r = api
        .call(
            "PUT",
            "/2015-03-31/functions/hello/configuration",
            Some(json!({"Timeout": 10, "MemorySize": 256, "Environment": {"Variables": {"AB": "1"}}, "RevisionId": rev1})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let u = r.json();
    assert_eq!(u["Timeout"], 10);
    assert_eq!(u["MemorySize"], 256);
    assert_eq!(u["Environment"]["Variables"]["AB"], "1");
    assert_ne!(u["RevisionId"], rev1.as_str());

    // UpdateFunctionCode: dry run changes nothing; a real one changes sha, size, revision.
    let zip2 = zip_with(b"#!/bin/sh\necho bye\n");
    let r = api
        .call(
            "PUT",
            "/2015-03-31/functions/hello/code",
            Some(json!({"ZipFile": b64(&zip2), "DryRun": true})),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = api
        .call("GET", "/2015-03-31/functions/hello/configuration", None)
        .await;
    assert_eq!(r.json()["CodeSha256"], b64(&Sha256::digest(&zip)));
    let r = api
        .call(
            "PUT",
            "/2015-03-31/functions/hello/code",
            Some(json!({"ZipFile": b64(&zip2)})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let u2 = r.json();
    assert_eq!(u2["CodeSha256"], b64(&Sha256::digest(&zip2)));
    assert_eq!(u2["CodeSize"], zip2.len());
    assert_eq!(u2["Timeout"], 10);
    assert_ne!(u2["RevisionId"], u["RevisionId"]);
    let r = api
        .call(
            "PUT",
            "/2015-03-31/functions/hello/code",
            Some(json!({"ZipFile": b64(b"not a zip")})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type(), "InvalidParameterValueException");

    // Account settings count it.
    let r = api.call("GET", "/2016-08-19/account-settings/", None).await;
    assert_eq!(r.status, 200);
    let a = r.json();
    assert_eq!(a["AccountLimit"]["CodeSizeZipped"], 52_428_800);
    assert_eq!(a["AccountLimit"]["UnreservedConcurrentExecutions"], 1000);
    assert_eq!(a["AccountUsage"]["FunctionCount"], 1);
    assert_eq!(a["AccountUsage"]["TotalCodeSize"], zip2.len());

    // Deleting a version that does not exist changes nothing (204, as Lambda); $LATEST alone
    // cannot be deleted.
    let r = api
        .call("DELETE", "/2015-03-31/functions/hello?Qualifier=3", None)
        .await;
    assert_eq!(r.status, 204);
    let r = api
        .call(
            "DELETE",
            "/2015-03-31/functions/hello?Qualifier=%24LATEST",
            None,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type(), "InvalidParameterValueException");
    // Delete, then it is gone.
    let r = api
        .call("DELETE", "/2015-03-31/functions/hello", None)
        .await;
    assert_eq!(r.status, 204);
    let r = api
        .call("DELETE", "/2015-03-31/functions/hello", None)
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error_type(), "ResourceNotFoundException");
    let r = api.call("GET", "/2015-03-31/functions/hello", None).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn list_paginates() {
    let api = api();
    let zip = zip_with(b"x");
    for i in 0..55 {
        assert_eq!(api.create(&format!("f{i:02}"), &zip).await.status, 201);
    }
    let r = api.call("GET", "/2015-03-31/functions/", None).await;
    let page = r.json();
    assert_eq!(page["Functions"].as_array().unwrap().len(), 50);
    assert!(
        page["Functions"][0].get("State").is_none(),
        "listing omits State"
    );
    let marker = page["NextMarker"].as_str().unwrap().to_string();
    let r = api
        .call(
            "GET",
            &format!("/2015-03-31/functions/?Marker={marker}&MaxItems=100"),
            None,
        )
        .await;
    let page = r.json();
    assert_eq!(page["Functions"].as_array().unwrap().len(), 5);
    assert_eq!(page["Functions"][0]["FunctionName"], "f50");
    assert!(page.get("NextMarker").is_none());
    let r = api
        .call(
            "GET",
            "/2015-03-31/functions?MaxItems=2&FunctionVersion=ALL",
            None,
        )
        .await;
    assert_eq!(r.json()["Functions"].as_array().unwrap().len(), 2);
    let r = api
        .call("GET", "/2015-03-31/functions?MaxItems=0", None)
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type(), "ValidationException");
}

#[tokio::test]
async fn create_refusals() {
    let api = api();
    let zip = zip_with(b"x");
    let mut body = create_body("f", &zip);
    body.as_object_mut().unwrap().remove("Runtime");
    let r = api.call("POST", "/2015-03-31/functions", Some(body)).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "Runtime and Handler are mandatory parameters for functions created with deployment packages."
    );

    let mut body = create_body("f", &zip);
    body["Code"] = json!({"S3Bucket": "bkt", "S3Key": "k"});
    let r = api.call("POST", "/2015-03-31/functions", Some(body)).await;
    assert_eq!(r.error_type(), "InvalidParameterValueException");
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("this server has no S3 endpoint"));

    let mut body = create_body("f", &zip);
    body["Code"] = json!({"S3Bucket": "b", "S3Key": "k"});
    let r = api.call("POST", "/2015-03-31/functions", Some(body)).await;
    assert_eq!(r.error_type(), "ValidationException");

    let mut body = create_body("f", &zip);
    body["Runtime"] = json!("python2.7");
    let r = api.call("POST", "/2015-03-31/functions", Some(body)).await;
    assert_eq!(r.error_type(), "InvalidParameterValueException");
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("provided.al2023"));

    let mut body = create_body("f", &zip);
    body.as_object_mut().unwrap().remove("Role");
    let r = api.call("POST", "/2015-03-31/functions", Some(body)).await;
    assert_eq!(r.error_type(), "ValidationException");
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("Value null at 'role'"));

    let r = api
        .send(signed(
            "POST",
            "/2015-03-31/functions",
            &[],
            b"{oops".to_vec(),
        ))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type(), "SerializationException");

    let r = api.create("f", b"PK not really").await;
    assert_eq!(r.error_type(), "InvalidParameterValueException");
    // Nothing was stored.
    let r = api.call("GET", "/2015-03-31/functions/f", None).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn authentication_and_front_door() {
    let api = api();
    // No signature at all.
    let r = api
        .send(
            Request::get("/2015-03-31/functions/")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 403);
    // A body changed after signing.
    let mut req = signed(
        "POST",
        "/2015-03-31/functions/f/invocations",
        &[],
        b"{}".to_vec(),
    );
    *req.body_mut() = Body::from("{\"x\":1}");
    let r = api.send(req).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.error_type(), "InvalidSignatureException");

    // Oversized invoke payload: 413 before anything else.
    let big = vec![b' '; 6_291_457];
    let r = api
        .send(signed(
            "POST",
            "/2015-03-31/functions/f/invocations",
            &[],
            big,
        ))
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.error_type(), "RequestEntityTooLargeException");
    assert_eq!(
        r.json()["Message"],
        "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
    );

    // A header value with a tab: the Rust SDK's signer keeps it, botocore folds it to a space
    // (found by the sigv4_sdk fuzz target); both verify.
    let r = api
        .send(signed(
            "GET",
            "/2015-03-31/functions/",
            &[("x-custom", "a\tb  c")],
            vec![],
        ))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    // Unknown operation.
    let r = api.call("GET", "/2015-03-31/nothing-here", None).await;
    assert_eq!(r.error_type(), "UnknownOperationException");

    // Bad invocation type.
    let req = signed(
        "POST",
        "/2015-03-31/functions/f/invocations",
        &[("x-amz-invocation-type", "Later")],
        vec![],
    );
    let r = api.send(req).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type(), "ValidationException");
}

#[tokio::test]
async fn versions_and_aliases_on_the_wire() {
    let api = api();
    let zip = zip_with(b"#!/bin/sh\necho v\n");
    let mut body = create_body("fn", &zip);
    body["Publish"] = json!(true);
    let r = api.call("POST", "/2015-03-31/functions", Some(body)).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let v1 = r.json();
    assert_eq!(v1["Version"], "1");
    assert!(v1.get("LastUpdateStatus").is_none(), "{v1}");

    // PublishVersion answers 201 with the version's own ARN.
    let r = api
        .call(
            "POST",
            "/2015-03-31/functions/fn/versions",
            Some(json!({"Description": "same"})),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["Version"], "1");
    assert_eq!(
        r.json()["FunctionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:fn:1"
    );

    // ListFunctions with FunctionVersion=ALL lists every version, qualified.
    let r = api
        .call("GET", "/2015-03-31/functions?FunctionVersion=ALL", None)
        .await;
    let arns: Vec<_> = r.json()["Functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["FunctionArn"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        arns,
        [
            "arn:aws:lambda:us-east-1:000000000000:function:fn:$LATEST",
            "arn:aws:lambda:us-east-1:000000000000:function:fn:1"
        ]
    );
    let r = api
        .call(
            "GET",
            "/2015-03-31/functions?FunctionVersion=ALL&MaxItems=1",
            None,
        )
        .await;
    let marker = r.json()["NextMarker"].as_str().unwrap().to_string();
    let r = api
        .call(
            "GET",
            &format!("/2015-03-31/functions?FunctionVersion=ALL&Marker={marker}"),
            None,
        )
        .await;
    assert_eq!(r.json()["Functions"][0]["Version"], "1");
    assert!(r.json().get("NextMarker").is_none());

    // Aliases: 201, the AliasConfiguration shape (no RoutingConfig without weights).
    let r = api
        .call(
            "POST",
            "/2015-03-31/functions/fn/aliases",
            Some(json!({"Name": "live", "FunctionVersion": "1"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let a = r.json();
    assert_eq!(
        a["AliasArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:fn:live"
    );
    assert_eq!(a["Description"], "");
    assert!(a.get("RoutingConfig").is_none(), "{a}");
    let r = api
        .call(
            "PUT",
            "/2015-03-31/functions/fn/aliases/live",
            Some(json!({"RoutingConfig": {"AdditionalVersionWeights": {"1": 0.5}}})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"], "Invalid function version 1. Function version 1 is already included in routing configuration.");
    let r = api
        .call(
            "POST",
            "/2015-03-31/functions/fn/aliases",
            Some(json!({"Name": "live"})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type(), "ValidationException");
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("Value null at 'functionVersion'"));
    let r = api
        .call("GET", "/2015-03-31/functions/fn/aliases/123", None)
        .await;
    assert_eq!(r.error_type(), "ValidationException");
    let r = api
        .call("POST", "/2015-03-31/functions/fn/aliases/live", None)
        .await;
    assert_eq!(r.error_type(), "UnknownOperationException");
    let r = api
        .call("DELETE", "/2015-03-31/functions/fn/aliases/live", None)
        .await;
    assert_eq!(r.status, 204);
    let r = api
        .call("GET", "/2015-03-31/functions/fn/aliases?MaxItems=0", None)
        .await;
    assert_eq!(r.error_type(), "ValidationException");
    let r = api
        .call(
            "GET",
            "/2015-03-31/functions/fn/aliases?FunctionVersion=x",
            None,
        )
        .await;
    assert_eq!(r.error_type(), "ValidationException");
    let r = api
        .call(
            "GET",
            "/2015-03-31/functions/fn/versions?Marker=bm9wZQ",
            None,
        )
        .await;
    assert_eq!(r.error_type(), "InvalidParameterValueException");
}

#[tokio::test]
async fn event_invoke_configs_on_the_wire() {
    let api = api();
    let zip = zip_with(b"#!/bin/sh\necho hi\n");
    assert_eq!(api.create("async", &zip).await.status, 201);
    let base = "/2019-09-25/functions/async/event-invoke-config";
    let arn = "arn:aws:lambda:us-east-1:000000000000:function:async:$LATEST";

    let r = api.call("GET", base, None).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error_type(), "ResourceNotFoundException");
    assert_eq!(
        r.json()["Message"]
            .as_str()
            .or(r.json()["message"].as_str()),
        Some(format!("The function {arn} doesn't have an EventInvokeConfig").as_str())
    );

    let r = api
        .call(
            "PUT",
            base,
            Some(json!({"MaximumRetryAttempts": 1, "DestinationConfig": {"OnFailure": {"Destination": "arn:aws:lambda:us-east-1:000000000000:function:dlq"}}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let c = r.json();
    assert_eq!(c["FunctionArn"], arn);
    assert_eq!(c["MaximumRetryAttempts"], 1);
    assert!(c.get("MaximumEventAgeInSeconds").is_none());
    assert!(c["LastModified"].is_number());
    assert_eq!(
        c["DestinationConfig"],
        json!({"OnSuccess": {}, "OnFailure": {"Destination": "arn:aws:lambda:us-east-1:000000000000:function:dlq"}})
    );

    // Update merges; Put replaces.
    let r = api
        .call("POST", base, Some(json!({"MaximumEventAgeInSeconds": 120})))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["MaximumRetryAttempts"], 1);
    assert_eq!(r.json()["MaximumEventAgeInSeconds"], 120);
    let r = api
        .call("PUT", base, Some(json!({"MaximumEventAgeInSeconds": 60})))
        .await;
    assert!(r.json().get("MaximumRetryAttempts").is_none());
    assert_eq!(
        r.json()["DestinationConfig"],
        json!({"OnSuccess": {}, "OnFailure": {}})
    );

    // Validation and refused destinations.
    let r = api
        .call(
            "PUT",
            base,
            Some(json!({"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 30})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type(), "ValidationException");
    let r = api
        .call(
            "PUT",
            base,
            Some(json!({"DestinationConfig": {"OnSuccess": {"Destination": "arn:aws:sqs:us-east-1:000000000000:q"}}})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type(), "InvalidParameterValueException");

    // List, per qualifier; Delete.
    let r = api.call("GET", &format!("{base}/list"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["FunctionEventInvokeConfigs"][0]["FunctionArn"],
        arn
    );
    let r = api.call("DELETE", base, None).await;
    assert_eq!(r.status, 204);
    let r = api.call("DELETE", base, None).await;
    assert_eq!(r.status, 404);
    let r = api
        .call(
            "GET",
            "/2019-09-25/functions/nope/event-invoke-config",
            None,
        )
        .await;
    assert_eq!(r.status, 404);

    // A dead-letter target: a Sous function yes, SQS no.
    let r = api
        .call(
            "PUT",
            "/2015-03-31/functions/async/configuration",
            Some(
                json!({"DeadLetterConfig": {"TargetArn": "arn:aws:sqs:us-east-1:000000000000:q"}}),
            ),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type(), "InvalidParameterValueException");
    let r = api
        .call(
            "PUT",
            "/2015-03-31/functions/async/configuration",
            Some(json!({"DeadLetterConfig": {"TargetArn": "arn:aws:lambda:us-east-1:000000000000:function:dlq"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.json()["DeadLetterConfig"]["TargetArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:dlq"
    );
}

#[tokio::test]
async fn event_invocations_are_queued_durably() {
    let api = api();
    let zip = zip_with(b"#!/bin/sh\necho hi\n");
    assert_eq!(api.create("queued", &zip).await.status, 201);
    let path = "/2015-03-31/functions/queued/invocations";
    let r = api
        .send(signed(
            "POST",
            path,
            &[("x-amz-invocation-type", "Event")],
            b"{\"n\":1}".to_vec(),
        ))
        .await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let big = format!("\"{}\"", "x".repeat(1_048_576));
    let r = api
        .send(signed(
            "POST",
            path,
            &[("x-amz-invocation-type", "Event")],
            big.clone().into_bytes(),
        ))
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.error_type(), "RequestEntityTooLargeException");
    assert_eq!(
        r.json()["message"]
            .as_str()
            .or(r.json()["Message"].as_str()),
        Some(
            format!(
                "{} byte payload is too large for the Event invocation type (limit 1048576 bytes)",
                big.len()
            )
            .as_str()
        )
    );
    let r = api.call("GET", "/_sous/status", None).await;
    assert_eq!(r.status, 200);
    let s = r.json();
    assert_eq!(s["async"]["queue_depth"], 1, "{s:#}");
    assert_eq!(s["async"]["accepted"], 1);
}

/// A `MakeWriter` collecting the log in memory.
#[derive(Clone, Default)]
struct LogBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The log of this test binary: one global subscriber (a scoped one loses spans whose
/// callsites other tests' threads registered first), read by request id.
fn captured_log() -> &'static LogBuffer {
    static LOG: std::sync::OnceLock<LogBuffer> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let log = LogBuffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(log.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        tracing::callsite::rebuild_interest_cache();
        log
    })
}

#[tokio::test]
async fn internal_errors_reach_the_log_not_the_client() {
    let log = captured_log();
    let api = api();
    let r = api.create("broken", &zip_with(b"x")).await;
    assert_eq!(r.status, 201);

    // Break the metadata store under the running API.
    let db = rusqlite::Connection::open(api._dir.path().join("sous.db")).unwrap();
    db.execute_batch("DROP TABLE aliases").unwrap();
    let r = api
        .call("GET", "/2015-03-31/functions/broken/aliases/live", None)
        .await;
    assert_eq!(r.status, 500);
    assert_eq!(r.error_type(), "ServiceException");
    let request_id = r.headers["x-amzn-RequestId"].to_str().unwrap().to_string();
    assert_eq!(
        r.json(),
        json!({
            "Type": "Service",
            "Message": format!("An internal error occurred. Request ID: {request_id}")
        })
    );
    let body = String::from_utf8_lossy(&r.body).to_lowercase();
    let dir = api._dir.path().to_string_lossy().to_lowercase();
    for leak in [
        "sqlite",
        "no such table",
        "aliases",
        "sous.db",
        dir.as_str(),
    ] {
        assert!(!body.contains(leak), "{leak:?} leaked into {body}");
    }

    // The detail is in the log, once, at ERROR, with the request id.
    let text = String::from_utf8_lossy(&log.0.lock().unwrap()).into_owned();
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(&request_id) && l.contains("no such table: aliases"))
        .collect();
    assert_eq!(errors.len(), 1, "one line with the cause in:\n{text}");
    assert!(errors[0].contains(" ERROR "), "{}", errors[0]);
    assert!(
        errors[0].contains(&format!("api{{request_id={request_id} service=lambda")),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains("op=GetAlias"), "{}", errors[0]);
    assert!(errors[0].contains("function=broken"), "{}", errors[0]);

    // A later request gets its own id, in its span and its header alike.
    let r = api.call("GET", "/2015-03-31/functions/broken", None).await;
    assert_eq!(r.status, 200);
    let id = r.headers["x-amzn-RequestId"].to_str().unwrap();
    assert_ne!(id, request_id);
}

#[tokio::test]
async fn unserved_services_are_named() {
    let api = api();
    let mut req = signed("POST", "/", &[], b"{}".to_vec());
    // The same request, signed for CloudWatch Logs (scope service `logs`).
    let auth = req.headers()["authorization"]
        .to_str()
        .unwrap()
        .replace("/lambda/aws4_request", "/logs/aws4_request");
    req.headers_mut()
        .insert("authorization", auth.parse().unwrap());
    req.headers_mut().insert(
        "x-amz-target",
        "Logs_20140328.DescribeLogGroups".parse().unwrap(),
    );
    req.headers_mut().insert(
        "content-type",
        "application/x-amz-json-1.1".parse().unwrap(),
    );
    let r = api.send(req).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({
            "__type": "UnknownOperationException",
            "message": "Sous does not serve the logs service (served: lambda, apigatewayv2, events)"
        })
    );
    assert_eq!(r.headers["content-type"], "application/x-amz-json-1.1");
}
