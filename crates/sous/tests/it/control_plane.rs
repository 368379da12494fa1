//! The Lambda control plane over the wire (issue 2, points 3 and 4): CreateFunction,
//! GetFunction (+ Code.Location), GetFunctionConfiguration, ListFunctions, UpdateFunctionCode,
//! UpdateFunctionConfiguration, DeleteFunction, GetAccountSettings, and every refusal,
//! driven through `aws-sdk-lambda` against the real `sous serve`.

use std::collections::BTreeMap;

use crate::common::*;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, EphemeralStorage, FunctionCode, Runtime};

fn v1_zip() -> Vec<u8> {
    bootstrap_zip(shell_runtime("", r#"  respond_text "\"v1:$GREETING\"""#))
}

fn v2_zip() -> Vec<u8> {
    bootstrap_zip(shell_runtime("", r#"  respond_text "\"v2:$GREETING\"""#))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_returns_the_full_configuration_with_201() {
    let server = Server::start();
    let name = unique("create");
    let zip = v1_zip();
    let out = create_ok(
        &server,
        create(&server.client, &name, &zip)
            .description("a test function")
            .environment(env_vars(&[("GREETING", "hello"), ("OTHER", "x y z")])),
    )
    .await;
    let c = conf!(out);
    assert_eq!(c.function_name.as_deref(), Some(name.as_str()));
    assert_eq!(c.function_arn, Some(function_arn(&name)));
    assert_eq!(c.runtime.as_deref(), Some("provided.al2023"));
    assert_eq!(c.role.as_deref(), Some(ROLE));
    assert_eq!(c.handler.as_deref(), Some("handler"));
    assert_eq!(c.code_size, zip.len() as i64);
    assert_eq!(c.code_sha256, Some(code_sha256(&zip)));
    assert_eq!(c.description.as_deref(), Some("a test function"));
    assert_eq!(c.timeout, Some(3));
    assert_eq!(c.memory_size, Some(128));
    assert_eq!(c.ephemeral_storage, Some(512));
    assert_eq!(c.version.as_deref(), Some("$LATEST"));
    assert_eq!(c.state.as_deref(), Some("Active"));
    assert_eq!(c.last_update_status.as_deref(), Some("Successful"));
    assert_eq!(c.package_type.as_deref(), Some("Zip"));
    assert_eq!(c.architectures, vec!["x86_64".to_string()]);
    assert_matches(
        LAST_MODIFIED_RE,
        c.last_modified.as_deref().unwrap_or(""),
        "LastModified",
    );
    assert_matches(
        UUID_RE,
        c.revision_id.as_deref().unwrap_or(""),
        "RevisionId",
    );
    let env: BTreeMap<String, String> = [("GREETING", "hello"), ("OTHER", "x y z")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(c.environment, Some(env));

    // The status code and the request id header, seen on the wire.
    let name2 = unique("create201");
    let rec = Recorder::default();
    let out2 = create(&server.client, &name2, &zip)
        .customize()
        .interceptor(rec.clone())
        .send()
        .await
        .expect("second create");
    let seen = rec.seen();
    assert_eq!(seen.status, 201, "CreateFunction status");
    assert_matches(
        UUID_RE,
        seen.header("x-amzn-RequestId").unwrap_or(""),
        "x-amzn-RequestId",
    );
    // No description given: AWS answers with an empty string.
    assert_eq!(out2.description(), Some(""));
    // Each function has its own RevisionId.
    assert_ne!(out2.revision_id(), out.revision_id());

    // Explicit settings come back as given.
    let name3 = unique("create-settings");
    let out3 = create_ok(
        &server,
        create(&server.client, &name3, &zip)
            .runtime(Runtime::Providedal2)
            .handler("my.handler")
            .memory_size(1024)
            .timeout(900)
            .ephemeral_storage(EphemeralStorage::builder().size(10240).build().unwrap())
            .architectures(Architecture::X8664),
    )
    .await;
    let c3 = conf!(out3);
    assert_eq!(c3.runtime.as_deref(), Some("provided.al2"));
    assert_eq!(c3.handler.as_deref(), Some("my.handler"));
    assert_eq!(c3.memory_size, Some(1024));
    assert_eq!(c3.timeout, Some(900));
    assert_eq!(c3.ephemeral_storage, Some(10240));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_function_and_configuration_match_create_and_code_location_serves_the_zip() {
    let server = Server::start();
    let name = unique("get");
    let zip = v1_zip();
    let created = conf!(
        create_ok(
            &server,
            create(&server.client, &name, &zip).environment(env_vars(&[("GREETING", "hi")])),
        )
        .await
    );

    let got = server
        .client
        .get_function()
        .function_name(&name)
        .send()
        .await;
    let got = got.unwrap_or_else(|e| panic!("GetFunction: {:#?}", api_error(e)));
    let cfg = got.configuration().expect("GetFunction has Configuration");
    assert_eq!(
        conf!(cfg),
        created,
        "GetFunction.Configuration equals CreateFunction's answer"
    );
    let code = got.code().expect("GetFunction has Code");
    assert_eq!(code.repository_type(), Some("S3"));
    let location = code.location().expect("Code.Location");
    assert!(
        location.starts_with("http://") || location.starts_with("https://"),
        "{location}"
    );
    let resp = raw_request("GET", location, &[], Vec::new()).await;
    assert_eq!(resp.status, 200, "GET Code.Location {location}");
    assert_eq!(
        resp.body.len(),
        zip.len(),
        "Code.Location serves the zip's bytes"
    );
    assert!(resp.body == zip, "Code.Location serves exactly the zip");

    let cfg = server
        .client
        .get_function_configuration()
        .function_name(&name)
        .send()
        .await;
    let cfg = cfg.unwrap_or_else(|e| panic!("GetFunctionConfiguration: {:#?}", api_error(e)));
    assert_eq!(
        conf!(cfg),
        created,
        "GetFunctionConfiguration equals CreateFunction's answer"
    );

    // By ARN, and with Qualifier=$LATEST, too.
    let by_arn = server
        .client
        .get_function_configuration()
        .function_name(function_arn(&name))
        .qualifier("$LATEST")
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetFunctionConfiguration by ARN: {:#?}", api_error(e)));
    assert_eq!(by_arn.function_name(), Some(name.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_functions_paginates_with_max_items() {
    let server = Server::start();
    let zip = v1_zip();
    let mut names = Vec::new();
    for i in 0..5 {
        let name = unique(&format!("list{i}"));
        create_ok(&server, create(&server.client, &name, &zip)).await;
        names.push(name);
    }
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages <= 5, "pagination does not end: {seen:?}");
        let mut req = server.client.list_functions().max_items(2);
        if let Some(m) = &marker {
            req = req.marker(m);
        }
        let page = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListFunctions: {:#?}", api_error(e)));
        let fns = page.functions();
        assert!(fns.len() <= 2, "MaxItems=2 but the page has {}", fns.len());
        for f in fns {
            seen.push(f.function_name().unwrap_or("").to_string());
            assert_eq!(
                f.function_arn(),
                Some(function_arn(f.function_name().unwrap()).as_str())
            );
            assert_eq!(f.version(), Some("$LATEST"));
            assert_eq!(f.code_sha256(), Some(code_sha256(&zip).as_str()));
        }
        match page.next_marker() {
            Some(m) => {
                assert!(!m.is_empty(), "an empty NextMarker must be absent instead");
                assert_eq!(fns.len(), 2, "a page before the last is full");
                marker = Some(m.to_string());
            }
            None => break,
        }
    }
    assert_eq!(pages, 3, "5 functions at 2 per page");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        seen.len(),
        "every function exactly once: {seen:?}"
    );
    let mut expected = names.clone();
    expected.sort();
    assert_eq!(sorted, expected);

    // Without MaxItems all five come in one page, with no NextMarker.
    let all = server.client.list_functions().send().await.unwrap();
    assert_eq!(all.functions().len(), 5);
    assert_eq!(all.next_marker(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_code_changes_sha_and_revision_and_the_next_invoke_runs_new_code() {
    let server = Server::start();
    let name = unique("upcode");
    let v1 = v1_zip();
    let created = create_ok(
        &server,
        create(&server.client, &name, &v1).environment(env_vars(&[("GREETING", "hi")])),
    )
    .await;
    let first = invoke(&server, &name, b"{}").await;
    assert_eq!(first.function_error, None, "{}", first.text());
    assert_eq!(first.json(), serde_json::json!("v1:hi"));

    let v2 = v2_zip();
    let updated = server
        .client
        .update_function_code()
        .function_name(&name)
        .zip_file(Blob::new(v2.clone()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("UpdateFunctionCode: {:#?}", api_error(e)));
    assert_eq!(updated.code_sha256(), Some(code_sha256(&v2).as_str()));
    assert_ne!(updated.code_sha256(), created.code_sha256());
    assert_eq!(updated.code_size(), v2.len() as i64);
    assert_ne!(
        updated.revision_id(),
        created.revision_id(),
        "new RevisionId"
    );
    assert_matches(UUID_RE, updated.revision_id().unwrap_or(""), "RevisionId");
    assert_eq!(
        updated.last_update_status().map(|s| s.as_str()),
        Some("Successful")
    );
    assert_eq!(updated.version(), Some("$LATEST"));

    let second = invoke(&server, &name, b"{}").await;
    assert_eq!(
        second.json(),
        serde_json::json!("v2:hi"),
        "the next invoke runs the new code"
    );
    let log = second.log();
    assert!(
        log.contains("Init Duration: "),
        "new code means a new environment: {log}"
    );

    // GetFunction's Code.Location now serves the new zip.
    let got = server
        .client
        .get_function()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    let loc = got.code().and_then(|c| c.location()).unwrap().to_string();
    assert!(raw_request("GET", &loc, &[], Vec::new()).await.body == v2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_configuration_takes_effect_and_honours_revision_id() {
    let server = Server::start();
    let name = unique("upconf");
    let created = create_ok(
        &server,
        create(&server.client, &name, &v1_zip()).environment(env_vars(&[("GREETING", "hi")])),
    )
    .await;
    assert_eq!(
        invoke(&server, &name, b"{}").await.json(),
        serde_json::json!("v1:hi")
    );

    // A stale RevisionId is refused with 412.
    let err = expect_err(
        server
            .client
            .update_function_configuration()
            .function_name(&name)
            .revision_id("00000000-0000-0000-0000-000000000000")
            .environment(env_vars(&[("GREETING", "stale")]))
            .send()
            .await,
    );
    err.assert(412, "PreconditionFailedException");

    let updated = server
        .client
        .update_function_configuration()
        .function_name(&name)
        .revision_id(created.revision_id().unwrap())
        .environment(env_vars(&[("GREETING", "bye")]))
        .memory_size(256)
        .timeout(10)
        .description("changed")
        .send()
        .await
        .unwrap_or_else(|e| panic!("UpdateFunctionConfiguration: {:#?}", api_error(e)));
    let u = conf!(updated);
    assert_ne!(u.revision_id.as_deref(), created.revision_id());
    assert_eq!(u.memory_size, Some(256));
    assert_eq!(u.timeout, Some(10));
    assert_eq!(u.description.as_deref(), Some("changed"));
    assert_eq!(
        u.code_sha256.as_deref(),
        created.code_sha256(),
        "code unchanged"
    );
    assert_eq!(u.last_update_status.as_deref(), Some("Successful"));
    let env: BTreeMap<String, String> = [("GREETING".to_string(), "bye".to_string())].into();
    assert_eq!(u.environment, Some(env));
    assert_matches(
        LAST_MODIFIED_RE,
        u.last_modified.as_deref().unwrap_or(""),
        "LastModified",
    );

    let after = invoke(&server, &name, b"{}").await;
    assert_eq!(
        after.json(),
        serde_json::json!("v1:bye"),
        "env change visible in the next invoke"
    );
    assert!(
        after.log().contains("Memory Size: 256 MB"),
        "{}",
        after.log()
    );

    // The old RevisionId is now stale too.
    let err = expect_err(
        server
            .client
            .update_function_configuration()
            .function_name(&name)
            .revision_id(created.revision_id().unwrap())
            .timeout(5)
            .send()
            .await,
    );
    err.assert(412, "PreconditionFailedException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_then_everything_is_404() {
    let server = Server::start();
    let name = unique("delete");
    create_ok(&server, create(&server.client, &name, &v1_zip())).await;
    let rec = Recorder::default();
    server
        .client
        .delete_function()
        .function_name(&name)
        .customize()
        .interceptor(rec.clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteFunction: {:#?}", api_error(e)));
    assert_eq!(rec.seen().status, 204, "DeleteFunction answers 204");

    let err = expect_err(
        server
            .client
            .get_function()
            .function_name(&name)
            .send()
            .await,
    );
    err.assert(404, "ResourceNotFoundException");
    assert_eq!(
        err.message(),
        format!("Function not found: {}", function_arn(&name))
    );
    let body = serde_json::from_str::<serde_json::Value>(&err.body).expect("JSON error body");
    assert_eq!(body["Type"], "User", "{}", err.body);
    assert_eq!(
        body["Message"],
        format!("Function not found: {}", function_arn(&name))
    );

    let err = expect_err(
        server
            .client
            .get_function_configuration()
            .function_name(&name)
            .send()
            .await,
    );
    err.assert(404, "ResourceNotFoundException");
    let err = expect_err(invoke_req(&server.client, &name, b"{}").send().await);
    err.assert(404, "ResourceNotFoundException");
    let err = expect_err(
        server
            .client
            .delete_function()
            .function_name(&name)
            .send()
            .await,
    );
    err.assert(404, "ResourceNotFoundException");
    let err = expect_err(
        server
            .client
            .update_function_code()
            .function_name(&name)
            .zip_file(Blob::new(v1_zip()))
            .send()
            .await,
    );
    err.assert(404, "ResourceNotFoundException");
    let list = server.client.list_functions().send().await.unwrap();
    assert!(list.functions().is_empty());

    // The name is free again.
    create_ok(&server, create(&server.client, &name, &v1_zip())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_settings_report_limits_and_usage() {
    let server = Server::start();
    let zip = v1_zip();
    create_ok(&server, create(&server.client, &unique("acct"), &zip)).await;
    let out = server
        .client
        .get_account_settings()
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetAccountSettings: {:#?}", api_error(e)));
    let limit = out.account_limit().expect("AccountLimit");
    assert_eq!(limit.total_code_size(), 80_530_636_800);
    assert_eq!(limit.code_size_unzipped(), 262_144_000);
    assert_eq!(limit.code_size_zipped(), 52_428_800);
    assert_eq!(limit.concurrent_executions(), 1000);
    assert_eq!(limit.unreserved_concurrent_executions(), Some(1000));
    let usage = out.account_usage().expect("AccountUsage");
    assert_eq!(usage.function_count(), 1);
    assert_eq!(usage.total_code_size(), zip.len() as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_constraints_are_validation_exceptions() {
    let server = Server::start();
    let zip = v1_zip();
    let c = &server.client;
    let cases: Vec<(&str, aws_sdk_lambda::operation::create_function::builders::CreateFunctionFluentBuilder, &str)> = vec![
        (
            "memory 127",
            create(c, &unique("m"), &zip).memory_size(127),
            "1 validation error detected: Value '127' at 'memorySize' failed to satisfy constraint: Member must have value greater than or equal to 128",
        ),
        ("memory 10241", create(c, &unique("m"), &zip).memory_size(10241), "'memorySize'"),
        (
            "timeout 0",
            create(c, &unique("t"), &zip).timeout(0),
            "1 validation error detected: Value '0' at 'timeout' failed to satisfy constraint: Member must have value greater than or equal to 1",
        ),
        (
            "timeout 901",
            create(c, &unique("t"), &zip).timeout(901),
            "1 validation error detected: Value '901' at 'timeout' failed to satisfy constraint: Member must have value less than or equal to 900",
        ),
        (
            "ephemeral 511",
            create(c, &unique("e"), &zip).ephemeral_storage(EphemeralStorage::builder().size(511).build().unwrap()),
            "'ephemeralStorage.size'",
        ),
        (
            "ephemeral 10241",
            create(c, &unique("e"), &zip).ephemeral_storage(EphemeralStorage::builder().size(10241).build().unwrap()),
            "'ephemeralStorage.size'",
        ),
        ("bad name", create(c, "bad name!", &zip), "'functionName'"),
        ("name of 65 chars", create(c, &"a".repeat(65), &zip), "'functionName'"),
    ];
    for (what, req, message) in cases {
        let err = expect_err(req.send().await);
        assert_eq!(err.status, Some(400), "{what}: {err:#?}");
        assert_eq!(
            err.code.as_deref(),
            Some("ValidationException"),
            "{what}: {err:#?}"
        );
        assert_eq!(
            err.error_type_header
                .as_deref()
                .map(|h| h.split(':').next().unwrap()),
            Some("ValidationException"),
            "{what}"
        );
        assert!(
            err.message().contains(message),
            "{what}: message {:?} lacks {message:?}",
            err.message()
        );
        assert!(
            err.message().starts_with("1 validation error detected: "),
            "{what}: {:?}",
            err.message()
        );
    }
    // A 64-character name is fine.
    create_ok(&server, create(c, &"a".repeat(64), &zip)).await;

    // The same limits on UpdateFunctionConfiguration.
    let name = "a".repeat(64);
    for (what, req) in [
        (
            "memory 127",
            c.update_function_configuration()
                .function_name(&name)
                .memory_size(127),
        ),
        (
            "timeout 901",
            c.update_function_configuration()
                .function_name(&name)
                .timeout(901),
        ),
        (
            "ephemeral 511",
            c.update_function_configuration()
                .function_name(&name)
                .ephemeral_storage(EphemeralStorage::builder().size(511).build().unwrap()),
        ),
    ] {
        let err = expect_err(req.send().await);
        assert_eq!(err.status, Some(400), "update {what}: {err:#?}");
        assert_eq!(
            err.code.as_deref(),
            Some("ValidationException"),
            "update {what}: {err:#?}"
        );
    }

    // Nothing refused was created.
    let list = c.list_functions().send().await.unwrap();
    let names: Vec<_> = list
        .functions()
        .iter()
        .filter_map(|f| f.function_name())
        .collect();
    assert_eq!(names, vec![name.as_str()]);
    let cfg = c
        .get_function_configuration()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (cfg.memory_size(), cfg.timeout()),
        (Some(128), Some(3)),
        "refused updates changed nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semantic_refusals_are_invalid_parameter_value_and_conflicts_are_409() {
    let server = Server::start();
    let zip = v1_zip();
    let c = &server.client;

    // Reserved environment key.
    let err = expect_err(
        create(c, &unique("reserved"), &zip)
            .environment(env_vars(&[("AWS_REGION", "eu-west-1")]))
            .send()
            .await,
    );
    err.assert(400, "InvalidParameterValueException");
    assert!(err.message().contains("reserved keys"), "{}", err.message());
    assert!(
        err.message()
            .ends_with("Reserved keys used in this request: AWS_REGION"),
        "{}",
        err.message()
    );
    let body: serde_json::Value = serde_json::from_str(&err.body).expect("JSON error body");
    assert_eq!(body["Type"], "User");
    assert!(
        body["message"].is_string(),
        "InvalidParameterValueException uses `message`: {}",
        err.body
    );

    // More than 4 KB of environment.
    let big = "x".repeat(4200);
    let err = expect_err(
        create(c, &unique("bigenv"), &zip)
            .environment(env_vars(&[("BIG", &big)]))
            .send()
            .await,
    );
    err.assert(400, "InvalidParameterValueException");
    assert!(err.message().contains("4KB"), "{}", err.message());

    // Runtimes Lambda knows that Sous does not serve.
    for runtime in [
        Runtime::Python312,
        Runtime::Nodejs22x,
        Runtime::Dotnet8,
        Runtime::Ruby33,
    ] {
        let err = expect_err(
            create(c, &unique("rt"), &zip)
                .runtime(runtime.clone())
                .send()
                .await,
        );
        err.assert(400, "InvalidParameterValueException");
        assert!(
            err.message().contains("provided.al2023"),
            "{runtime:?}: {}",
            err.message()
        );
        assert!(
            err.message().contains("provided.al2"),
            "{runtime:?}: {}",
            err.message()
        );
    }

    // Duplicate.
    let name = unique("dup");
    create_ok(&server, create(c, &name, &zip)).await;
    let err = expect_err(create(c, &name, &zip).send().await);
    err.assert(409, "ResourceConflictException");
    assert!(err.message().contains(&name), "{}", err.message());

    // The same semantic checks on UpdateFunctionConfiguration.
    let err = expect_err(
        c.update_function_configuration()
            .function_name(&name)
            .environment(env_vars(&[("AWS_LAMBDA_FUNCTION_NAME", "x")]))
            .send()
            .await,
    );
    err.assert(400, "InvalidParameterValueException");
    let err = expect_err(
        c.update_function_configuration()
            .function_name(&name)
            .runtime(Runtime::Python312)
            .send()
            .await,
    );
    err.assert(400, "InvalidParameterValueException");
    assert!(
        err.message().contains("provided.al2023"),
        "{}",
        err.message()
    );

    let list = c.list_functions().send().await.unwrap();
    assert_eq!(
        list.functions().len(),
        1,
        "only the first create of `dup` exists"
    );
}

/// A zip the server must refuse, and a file it must not have written anywhere.
struct BadZip {
    what: &'static str,
    zip: Vec<u8>,
    must_not_exist: Vec<std::path::PathBuf>,
}

fn bad_zips(server: &Server) -> Vec<BadZip> {
    let marker = unique("escape");
    let tmp_abs = std::path::PathBuf::from(format!("/tmp/{marker}-abs"));
    let tmp_dots = std::path::PathBuf::from(format!("/tmp/{marker}-dots"));
    let root = server.data_dir.parent().unwrap().to_path_buf();
    let boot = shell_runtime("", r#"  respond "$EVENT""#);
    vec![
        BadZip {
            what: "not a zip",
            zip: b"this is not a zip file at all".to_vec(),
            must_not_exist: vec![],
        },
        BadZip {
            what: "../ entry",
            zip: zip_entries(&[
                file("bootstrap", boot.clone(), 0o755),
                file(&format!("../{marker}-up"), "x", 0o644),
            ]),
            must_not_exist: vec![
                server.data_dir.join(format!("{marker}-up")),
                root.join(format!("{marker}-up")),
            ],
        },
        BadZip {
            what: "deep ../ entry",
            zip: zip_entries(&[
                file("bootstrap", boot.clone(), 0o755),
                file(
                    &format!("a/../../../../../../../../../../tmp/{marker}-dots"),
                    "x",
                    0o644,
                ),
            ]),
            must_not_exist: vec![tmp_dots],
        },
        BadZip {
            what: "absolute entry",
            zip: zip_entries(&[
                file("bootstrap", boot.clone(), 0o755),
                file(tmp_abs.to_str().unwrap(), "x", 0o644),
            ]),
            must_not_exist: vec![tmp_abs],
        },
        BadZip {
            what: "escaping symlink",
            zip: zip_entries(&[
                file("bootstrap", boot.clone(), 0o755),
                Entry::Symlink {
                    path: "link".into(),
                    target: "../../../../../../../../etc".into(),
                },
            ]),
            must_not_exist: vec![],
        },
        BadZip {
            what: "absolute symlink",
            zip: zip_entries(&[
                file("bootstrap", boot.clone(), 0o755),
                Entry::Symlink {
                    path: "etc".into(),
                    target: "/etc".into(),
                },
            ]),
            must_not_exist: vec![],
        },
        BadZip {
            what: "write through a symlink",
            zip: zip_entries(&[
                file("bootstrap", boot.clone(), 0o755),
                Entry::Symlink {
                    path: "out".into(),
                    target: "/tmp".into(),
                },
                file(&format!("out/{marker}-via-link"), "x", 0o644),
            ]),
            must_not_exist: vec![std::path::PathBuf::from(format!("/tmp/{marker}-via-link"))],
        },
        BadZip {
            what: "more than 250 MB unzipped",
            zip: zip_bomb(260),
            must_not_exist: vec![],
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsafe_zips_are_refused_and_leave_nothing_behind() {
    let server = Server::start();
    let c = &server.client;
    // One good function first, so the store's directories exist and hold something.
    let good = unique("good");
    let good_zip = v1_zip();
    create_ok(
        &server,
        create(c, &good, &good_zip).environment(env_vars(&[("GREETING", "g")])),
    )
    .await;
    assert_eq!(
        invoke(&server, &good, b"{}").await.json(),
        serde_json::json!("v1:g")
    );
    let code_before = server.tree("code");
    let extract_before = server.tree("extract");
    assert!(
        !code_before.is_empty(),
        "the good function's zip is stored under code/"
    );
    assert!(
        !extract_before.is_empty(),
        "the good function's code is extracted under extract/"
    );
    let root_before = {
        let mut v: Vec<_> = std::fs::read_dir(server.data_dir.parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };

    for bad in bad_zips(&server) {
        let name = unique("bad");
        let err = expect_err(create(c, &name, &bad.zip).send().await);
        assert_eq!(err.status, Some(400), "create with {}: {err:#?}", bad.what);
        assert_eq!(
            err.code.as_deref(),
            Some("InvalidParameterValueException"),
            "create with {}: {err:#?}",
            bad.what
        );

        let err = expect_err(
            c.update_function_code()
                .function_name(&good)
                .zip_file(Blob::new(bad.zip.clone()))
                .send()
                .await,
        );
        assert_eq!(err.status, Some(400), "update with {}: {err:#?}", bad.what);
        assert_eq!(
            err.code.as_deref(),
            Some("InvalidParameterValueException"),
            "update with {}: {err:#?}",
            bad.what
        );

        let err = expect_err(c.get_function().function_name(&name).send().await);
        err.assert(404, "ResourceNotFoundException");
        for p in &bad.must_not_exist {
            assert!(!p.exists(), "{}: {} was written", bad.what, p.display());
        }
        assert_eq!(
            server.tree("code"),
            code_before,
            "{}: code/ changed",
            bad.what
        );
        assert_eq!(
            server.tree("extract"),
            extract_before,
            "{}: extract/ changed",
            bad.what
        );
    }
    let mut root_after: Vec<_> = std::fs::read_dir(server.data_dir.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    root_after.sort();
    assert_eq!(
        root_after, root_before,
        "nothing written beside the data dir"
    );

    // The good function is untouched and still runs its code.
    let cfg = c
        .get_function_configuration()
        .function_name(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(cfg.code_sha256(), Some(code_sha256(&good_zip).as_str()));
    assert_eq!(
        invoke(&server, &good, b"{}").await.json(),
        serde_json::json!("v1:g")
    );
    let list = c.list_functions().send().await.unwrap();
    assert_eq!(list.functions().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_without_code_or_with_empty_zip_is_refused() {
    let server = Server::start();
    let c = &server.client;
    let err = expect_err(
        c.create_function()
            .function_name(unique("nocode"))
            .runtime(Runtime::Providedal2023)
            .role(ROLE)
            .handler("h")
            .code(FunctionCode::builder().build())
            .send()
            .await,
    );
    assert_eq!(err.status, Some(400), "{err:#?}");
    assert_eq!(
        err.code.as_deref(),
        Some("InvalidParameterValueException"),
        "{err:#?}"
    );
}
