//! Code from S3 (issue 15, point 4), through the real `sous serve` with
//! `--service-endpoint s3=URL` pointing at a moto server the test starts: CreateFunction and
//! UpdateFunctionCode with `S3Bucket`/`S3Key` (aws-sdk-lambda and the AWS CLI), then the
//! function runs the fetched code; `S3ObjectVersion` on a versioned bucket deploys that
//! version; AWS's errors for a missing bucket, key or version, for both sources at once and
//! for a bucket without a key; no S3 endpoint, and one that does not answer; a package larger
//! than the 50 MB inline limit deploys from S3 (51 MB, stored and incompressible, put with one
//! unsigned PUT, which moto takes, while the CLI would spend seconds hashing it).

use std::io::{Cursor, Write};
use std::path::Path;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, Runtime};
use aws_sdk_lambda::Client;

use crate::common::engines::Moto;
use crate::common::*;

/// A custom runtime that answers every event with `text`.
fn answering(text: &str) -> Vec<u8> {
    bootstrap_zip(shell_runtime("", &format!(r#"  respond_text "{text}""#)))
}

/// A sous server whose `s3` endpoint is `moto`.
fn server_for(moto: &Moto) -> Server {
    let endpoint = format!("s3={}", moto.url());
    Server::start_with(ServerOptions::with_args(&["--service-endpoint", &endpoint]))
}

/// Put `data` at `bucket`/`key` in moto; returns put-object's answer (with `VersionId` on a
/// versioned bucket).
fn put_object(moto: &Moto, dir: &Path, bucket: &str, key: &str, data: &[u8]) -> serde_json::Value {
    let file = dir.join("object.zip");
    std::fs::write(&file, data).unwrap();
    let out = moto.aws_ok(&[
        "s3api",
        "put-object",
        "--bucket",
        bucket,
        "--key",
        key,
        "--body",
        file.to_str().unwrap(),
        "--output",
        "json",
    ]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("put-object answered {out:?}: {e}"))
}

fn create_bucket(moto: &Moto, bucket: &str) {
    moto.aws_ok(&["s3api", "create-bucket", "--bucket", bucket]);
}

/// CreateFunction (provided.al2023, handler `handler`) with its code in S3.
async fn create_from_s3(
    client: &Client,
    name: &str,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> Result<aws_sdk_lambda::operation::create_function::CreateFunctionOutput, ApiError> {
    client
        .create_function()
        .function_name(name)
        .runtime(Runtime::Providedal2023)
        .role(ROLE)
        .handler("handler")
        .code(
            FunctionCode::builder()
                .s3_bucket(bucket)
                .s3_key(key)
                .set_s3_object_version(version.map(str::to_string))
                .build(),
        )
        .send()
        .await
        .map_err(api_error)
}

async fn update_from_s3(
    client: &Client,
    name: &str,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> Result<aws_sdk_lambda::operation::update_function_code::UpdateFunctionCodeOutput, ApiError> {
    client
        .update_function_code()
        .function_name(name)
        .s3_bucket(bucket)
        .s3_key(key)
        .set_s3_object_version(version.map(str::to_string))
        .send()
        .await
        .map_err(api_error)
}

async fn assert_answers(server: &Server, name: &str, text: &str) {
    let out = invoke(server, name, b"{}").await;
    assert_eq!(out.function_error, None, "{}", out.log());
    assert_eq!(out.text(), text);
}

async fn assert_no_function(client: &Client, name: &str) {
    let err = client
        .get_function()
        .function_name(name)
        .send()
        .await
        .map_err(api_error)
        .expect_err("no function should have been created");
    err.assert(404, "ResourceNotFoundException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_update_from_s3_then_invoke() {
    let moto = Moto::start();
    let server = server_for(&moto);
    let dir = tempfile::tempdir().unwrap();
    let bucket = "sous-code";
    create_bucket(&moto, bucket);
    let v1 = answering("from s3 v1");
    // A key with characters S3 wants encoded, in a "directory".
    let key1 = "releases/fn v1+(a)=b.zip";
    put_object(&moto, dir.path(), bucket, key1, &v1);
    let name = unique("s3fn");

    let created = create_from_s3(&server.client, &name, bucket, key1, None)
        .await
        .unwrap_or_else(|e| panic!("{e:#?}\n{}", server.output_tail(4000)));
    assert_eq!(created.code_sha256(), Some(code_sha256(&v1).as_str()));
    assert_eq!(created.code_size(), v1.len() as i64);
    assert_answers(&server, &name, "from s3 v1").await;

    let v2 = answering("from s3 v2");
    put_object(&moto, dir.path(), bucket, "releases/v2.zip", &v2);
    let updated = update_from_s3(&server.client, &name, bucket, "releases/v2.zip", None)
        .await
        .unwrap_or_else(|e| panic!("{e:#?}\n{}", server.output_tail(4000)));
    assert_eq!(updated.code_sha256(), Some(code_sha256(&v2).as_str()));
    assert_answers(&server, &name, "from s3 v2").await;

    // UpdateFunctionCode of a function that does not exist: Lambda's not-found, before any
    // fetch.
    let err = update_from_s3(
        &server.client,
        &unique("none"),
        bucket,
        "releases/v2.zip",
        None,
    )
    .await
    .unwrap_err();
    err.assert(404, "ResourceNotFoundException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_errors_for_missing_objects_and_bad_sources() {
    let moto = Moto::start();
    let server = server_for(&moto);
    let dir = tempfile::tempdir().unwrap();
    let bucket = "sous-errors";
    create_bucket(&moto, bucket);
    let zip = answering("x");
    put_object(&moto, dir.path(), bucket, "ok.zip", &zip);
    let name = unique("s3err");

    let err = create_from_s3(&server.client, &name, "no-such-bucket", "ok.zip", None)
        .await
        .unwrap_err();
    err.assert(400, "InvalidParameterValueException");
    assert_eq!(
        err.message(),
        "Error occurred while GetObject. S3 Error Code: NoSuchBucket. S3 Error Message: The specified bucket does not exist"
    );

    let err = create_from_s3(&server.client, &name, bucket, "missing.zip", None)
        .await
        .unwrap_err();
    err.assert(400, "InvalidParameterValueException");
    assert_eq!(
        err.message(),
        "Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: The specified key does not exist."
    );
    assert_no_function(&server.client, &name).await;

    // ZipFile and S3 at once.
    let err = server
        .client
        .create_function()
        .function_name(&name)
        .runtime(Runtime::Providedal2023)
        .role(ROLE)
        .handler("handler")
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(zip.clone()))
                .s3_bucket(bucket)
                .s3_key("ok.zip")
                .build(),
        )
        .send()
        .await
        .map_err(api_error)
        .unwrap_err();
    err.assert(400, "InvalidParameterValueException");
    assert_eq!(
        err.message(),
        "Please do not provide other FunctionCode parameters when providing a ZipFile."
    );

    // A bucket without a key.
    let err = server
        .client
        .create_function()
        .function_name(&name)
        .runtime(Runtime::Providedal2023)
        .role(ROLE)
        .handler("handler")
        .code(FunctionCode::builder().s3_bucket(bucket).build())
        .send()
        .await
        .map_err(api_error)
        .unwrap_err();
    err.assert(400, "InvalidParameterValueException");
    assert_eq!(err.message(), "Please provide a source for function code.");
    assert_no_function(&server.client, &name).await;

    // UpdateFunctionCode reports the same, and leaves the code as it was.
    create_ok(&server, create(&server.client, &name, &zip)).await;
    let err = update_from_s3(&server.client, &name, bucket, "missing.zip", None)
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: The specified key does not exist."
    );
    let err = server
        .client
        .update_function_code()
        .function_name(&name)
        .zip_file(Blob::new(zip.clone()))
        .s3_bucket(bucket)
        .s3_key("ok.zip")
        .send()
        .await
        .map_err(api_error)
        .unwrap_err();
    err.assert(400, "InvalidParameterValueException");
    assert_eq!(
        err.message(),
        "Please do not provide other FunctionCode parameters when providing a ZipFile."
    );
    assert_answers(&server, &name, "x").await;

    // The AWS CLI's shorthand for the same create.
    let cli = AwsCli::new(&server, "lambda").single_attempt();
    let cli_name = unique("s3cli");
    let out = cli.json(&[
        "create-function",
        "--function-name",
        &cli_name,
        "--runtime",
        "provided.al2023",
        "--role",
        ROLE,
        "--handler",
        "handler",
        "--code",
        &format!("S3Bucket={bucket},S3Key=ok.zip"),
    ]);
    assert_eq!(out["FunctionName"], cli_name.as_str());
    assert_eq!(out["CodeSha256"], code_sha256(&zip).as_str());
    assert_answers(&server, &cli_name, "x").await;
    let stderr = cli.fails_with(
        &[
            "create-function",
            "--function-name",
            &unique("s3cli"),
            "--runtime",
            "provided.al2023",
            "--role",
            ROLE,
            "--handler",
            "handler",
            "--code",
            &format!("S3Bucket={bucket},S3Key=absent.zip"),
        ],
        "InvalidParameterValueException",
    );
    assert!(
        stderr.contains("S3 Error Code: NoSuchKey"),
        "the CLI printed: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_versions_deploy_the_version_named() {
    let moto = Moto::start();
    let server = server_for(&moto);
    let dir = tempfile::tempdir().unwrap();
    let bucket = "sous-versioned";
    create_bucket(&moto, bucket);
    moto.aws_ok(&[
        "s3api",
        "put-bucket-versioning",
        "--bucket",
        bucket,
        "--versioning-configuration",
        "Status=Enabled",
    ]);
    let key = "fn.zip";
    let old = put_object(&moto, dir.path(), bucket, key, &answering("old"));
    let new = put_object(&moto, dir.path(), bucket, key, &answering("new"));
    let old_version = old["VersionId"].as_str().expect("VersionId").to_string();
    let new_version = new["VersionId"].as_str().expect("VersionId").to_string();
    assert_ne!(old_version, new_version);
    let name = unique("s3ver");

    create_from_s3(&server.client, &name, bucket, key, Some(&old_version))
        .await
        .unwrap_or_else(|e| panic!("{e:#?}\n{}", server.output_tail(4000)));
    assert_answers(&server, &name, "old").await;
    // Without a version: the newest.
    update_from_s3(&server.client, &name, bucket, key, None)
        .await
        .unwrap();
    assert_answers(&server, &name, "new").await;
    update_from_s3(&server.client, &name, bucket, key, Some(&old_version))
        .await
        .unwrap();
    assert_answers(&server, &name, "old").await;

    // A version the object does not have.
    let missing = "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY";
    let err = update_from_s3(&server.client, &name, bucket, key, Some(missing))
        .await
        .unwrap_err();
    err.assert(400, "InvalidParameterValueException");
    assert!(
        err.message().starts_with(
            "Error occurred while GetObject. S3 Error Code: NoSuchVersion. S3 Error Message: "
        ),
        "{}",
        err.message()
    );
    assert_answers(&server, &name, "old").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_s3_endpoint_or_with_one_that_does_not_answer() {
    let server = Server::start();
    let name = unique("nos3");
    let err = create_from_s3(&server.client, &name, "bucket", "key.zip", None)
        .await
        .unwrap_err();
    err.assert(400, "InvalidParameterValueException");
    assert_eq!(
        err.message(),
        "Code from S3 (S3Bucket/S3Key) is not available: this server has no S3 endpoint: start `sous serve` with --service-endpoint s3=URL."
    );
    drop(server);

    // A port nothing listens on: Sous's dependency failed, the client gets ServiceException
    // naming the request id (the cause goes to the server's log).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("s3=http://127.0.0.1:{port}");
    let server = Server::start_with(ServerOptions::with_args(&["--service-endpoint", &endpoint]));
    let err = create_from_s3(&server.client, &name, "bucket", "key.zip", None)
        .await
        .unwrap_err();
    err.assert(500, "ServiceException");
    assert!(
        err.message()
            .starts_with("An internal error occurred. Request ID: "),
        "{}",
        err.message()
    );
    assert!(
        server
            .output()
            .contains("fetch the code package s3://bucket/key.zip"),
        "{}",
        server.output_tail(3000)
    );
    assert_no_function(&server.client, &name).await;
}

/// `len` bytes no compressor can shrink (xorshift64).
fn incompressible(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A zip of a `bootstrap` that answers with the size of `big.bin`, and `big.bin`: `len`
/// incompressible bytes, stored.
fn big_package(len: usize) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::with_capacity(len + 4096)));
    w.start_file("bootstrap", stored.unix_permissions(0o755))
        .unwrap();
    w.write_all(shell_runtime("", r#"  respond_text "$(wc -c < /var/task/big.bin)""#).as_bytes())
        .unwrap();
    w.start_file("big.bin", stored.unix_permissions(0o644))
        .unwrap();
    w.write_all(&incompressible(len)).unwrap();
    w.finish().unwrap().into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_over_the_inline_limit_deploys_from_s3() {
    const BIG: usize = 51 * 1024 * 1024;
    // The package is made while the engines start.
    let package = std::thread::spawn(|| big_package(BIG));
    let moto = Moto::start();
    let server = server_for(&moto);
    let bucket = "sous-big";
    create_bucket(&moto, bucket);
    let zip = package.join().unwrap();
    assert!(zip.len() as u64 > sous_types::limits::ZIPPED_MAX_BYTES);
    // One plain PUT (moto takes it unsigned): the CLI would spend seconds hashing 51 MB.
    let put = raw_request(
        "PUT",
        &format!("{}/{bucket}/big.zip", moto.url()),
        &[],
        zip.clone(),
    )
    .await;
    assert_eq!(put.status, 200, "{}", String::from_utf8_lossy(&put.body));

    let name = unique("s3big");
    let created = create_from_s3(&server.client, &name, bucket, "big.zip", None)
        .await
        .unwrap_or_else(|e| panic!("{e:#?}\n{}", server.output_tail(4000)));
    assert_eq!(created.code_size(), zip.len() as i64);
    assert_eq!(created.code_sha256(), Some(code_sha256(&zip).as_str()));
    // A package that takes over 2 s to extract leaves the function Pending for a while.
    use aws_sdk_lambda::client::Waiters;
    server
        .client
        .wait_until_function_active_v2()
        .function_name(&name)
        .wait(std::time::Duration::from_secs(120))
        .await
        .unwrap_or_else(|e| panic!("{name} did not become Active: {e:?}"));
    assert_answers(&server, &name, &BIG.to_string()).await;
}

/// PublishLayerVersion with `Content.S3Bucket`/`S3Key` fetches the layer from S3 as
/// CreateFunction fetches code; a function using it finds its files in /opt; a missing key is
/// refused with S3's error in Lambda's words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layer_is_published_from_s3() {
    use aws_sdk_lambda::types::LayerVersionContentInput;
    let moto = Moto::start();
    let server = server_for(&moto);
    let c = &server.client;
    let dir = tempfile::tempdir().unwrap();
    let bucket = unique("layers").to_lowercase();
    create_bucket(&moto, &bucket);
    let layer = zip_entries(&[file("share/greeting.txt", "hello from an S3 layer", 0o644)]);
    put_object(&moto, dir.path(), &bucket, "layers/greeting.zip", &layer);

    let published = c
        .publish_layer_version()
        .layer_name("greeting")
        .content(
            LayerVersionContentInput::builder()
                .s3_bucket(&bucket)
                .s3_key("layers/greeting.zip")
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("PublishLayerVersion from S3: {:?}", api_error(e)));
    let content = published.content().expect("Content");
    assert_eq!(content.code_size(), layer.len() as i64);
    assert_eq!(content.code_sha256(), Some(code_sha256(&layer).as_str()));

    let name = unique("uses-s3-layer");
    let bootstrap = shell_runtime("", r#"  respond_text "$(cat /opt/share/greeting.txt)""#);
    create_ok(
        &server,
        create(c, &name, &bootstrap_zip(bootstrap)).layers(published.layer_version_arn().unwrap()),
    )
    .await;
    let out = invoke(&server, &name, b"{}").await;
    assert_eq!(out.function_error, None, "{}", out.log());
    assert_eq!(out.text(), "hello from an S3 layer");

    let err = expect_err(
        c.publish_layer_version()
            .layer_name("greeting")
            .content(
                LayerVersionContentInput::builder()
                    .s3_bucket(&bucket)
                    .s3_key("layers/missing.zip")
                    .build(),
            )
            .send()
            .await,
    );
    err.assert(400, "InvalidParameterValueException");
    assert!(
        err.message()
            .starts_with("Error occurred while GetObject. S3 Error Code: NoSuchKey."),
        "{}",
        err.message()
    );
}
