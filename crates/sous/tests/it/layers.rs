//! Layers (issue 15, point 1) through the real binary: the layer operations with the Rust
//! SDK, the AWS CLI and boto3; functions that use layers (ordering and overwrite in `/opt`,
//! a Python module, a Node.js module, a binary in `/opt/bin`, a custom runtime's
//! `/opt/bootstrap`); the 250 MB limit; a function moved to a new layer version; a layer
//! version deleted while in use.

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, LayerVersionContentInput, Runtime};
use serde_json::{json, Value};

use crate::common::*;

fn content(zip: &[u8]) -> LayerVersionContentInput {
    LayerVersionContentInput::builder()
        .zip_file(Blob::new(zip.to_vec()))
        .build()
}

/// Publishes a layer version of `name` from `files` (path, data, mode); its ARN.
async fn publish(server: &Server, name: &str, files: &[(&str, &[u8], u32)]) -> String {
    let out = server
        .client
        .publish_layer_version()
        .layer_name(name)
        .content(content(&zip_files(files)))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PublishLayerVersion: {:#?}", api_error(e)));
    out.layer_version_arn.expect("LayerVersionArn")
}

fn layer_arn(name: &str, version: i64) -> String {
    format!("arn:aws:lambda:{REGION}:000000000000:layer:{name}:{version}")
}

/// A shell custom runtime that answers with the output of `script`.
fn shell_fn(script: &str) -> Vec<u8> {
    bootstrap_zip(shell_runtime(
        "",
        &format!("  ( {script} ) > \"$WORK/out\" 2>&1; respond \"$WORK/out\""),
    ))
}

async fn text(server: &Server, name: &str) -> String {
    let out = invoke(server, name, b"{}").await;
    assert_eq!(
        out.function_error,
        None,
        "{name}: {}\n{:?}\n{}",
        out.text(),
        out.log,
        server.output_tail(3000)
    );
    out.text()
}

#[tokio::test]
async fn layers_are_merged_into_opt_in_order_read_only() {
    let server = Server::start();
    let a = unique("la");
    let b = unique("lb");
    let tool = b"#!/bin/sh\necho tool-from-a\n";
    let arn_a = publish(
        &server,
        &a,
        &[
            ("shared.txt", b"A", 0o644),
            ("only-a.txt", b"a", 0o644),
            ("bin/tool", tool, 0o755),
        ],
    )
    .await;
    let arn_b = publish(&server, &b, &[("shared.txt", b"B", 0o644)]).await;
    assert_eq!(arn_a, layer_arn(&a, 1));

    let script = r#"cat /opt/shared.txt; echo; cat /opt/only-a.txt; echo; tool; touch /opt/x 2>/dev/null && echo writable || echo read-only"#;
    let name = unique("opt");
    let created = create_ok(
        &server,
        create(&server.client, &name, &shell_fn(script))
            .layers(&arn_a)
            .layers(&arn_b),
    )
    .await;
    let layers = created.layers.expect("Layers in the configuration");
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0].arn.as_deref(), Some(arn_a.as_str()));
    assert!(layers[0].code_size > 0);
    assert_eq!(
        text(&server, &name).await,
        "B\na\ntool-from-a\nread-only\n",
        "later layers win; /opt/bin is on PATH; /opt is read-only"
    );

    // The other order: A's file wins.
    server
        .client
        .update_function_configuration()
        .function_name(&name)
        .layers(&arn_b)
        .layers(&arn_a)
        .send()
        .await
        .unwrap();
    assert!(text(&server, &name).await.starts_with("A\n"));

    // Layers: [] removes them.
    let out = server
        .client
        .update_function_configuration()
        .function_name(&name)
        .set_layers(Some(vec![]))
        .send()
        .await
        .unwrap();
    assert!(out.layers.is_none(), "{:?}", out.layers);
    assert!(text(&server, &name).await.contains("No such file"));
}

#[tokio::test]
async fn custom_runtime_bootstrap_from_a_layer() {
    let server = Server::start();
    let layer = unique("rt");
    let runtime = shell_runtime("", r#"  respond_text "bootstrap from /opt""#);
    let arn = publish(&server, &layer, &[("bootstrap", runtime.as_bytes(), 0o755)]).await;
    let name = unique("optboot");
    // The function's own zip has no bootstrap.
    let zip = zip_files(&[("handler.txt", b"x", 0o644)]);
    create_ok(&server, create(&server.client, &name, &zip).layers(&arn)).await;
    assert_eq!(text(&server, &name).await, "bootstrap from /opt");
}

#[tokio::test]
async fn python_imports_a_module_only_a_layer_has() {
    let server = Server::start();
    let layer = unique("pylayer");
    let arn = publish(
        &server,
        &layer,
        &[
            (
                "python/layermod.py",
                b"def greet(n):\n    return 'hello ' + n\n",
                0o644,
            ),
            (
                "python/lib/python3.11/site-packages/sitemod/__init__.py",
                b"VALUE = 42\n",
                0o644,
            ),
        ],
    )
    .await;
    let app = "import os, layermod, sitemod\n\ndef handler(event, context):\n    return {'greeting': layermod.greet('layer'), 'value': sitemod.VALUE, 'file': layermod.__file__,\n            'opt_lib': '/opt/lib' in os.environ['LD_LIBRARY_PATH'].split(':'),\n            'opt_bin': '/opt/bin' in os.environ['PATH'].split(':')}\n";
    let name = unique("pyl");
    create_ok(
        &server,
        create(
            &server.client,
            &name,
            &zip_files(&[("app.py", app.as_bytes(), 0o644)]),
        )
        .runtime(Runtime::Python311)
        .handler("app.handler")
        .timeout(10)
        .layers(&arn),
    )
    .await;
    let out = invoke(&server, &name, b"{}").await;
    assert_eq!(out.function_error, None, "{}\n{:?}", out.text(), out.log);
    assert_eq!(
        out.json(),
        json!({"greeting": "hello layer", "value": 42, "file": "/opt/python/layermod.py",
               "opt_lib": true, "opt_bin": true})
    );
}

#[tokio::test]
async fn node_requires_a_module_only_a_layer_has() {
    let server = Server::start();
    let layer = unique("nodelayer");
    let arn = publish(
        &server,
        &layer,
        &[
            (
                "nodejs/node_modules/greeter/index.js",
                b"exports.greet = (n) => 'hi ' + n;\n",
                0o644,
            ),
            (
                "nodejs/node20/node_modules/versioned/index.js",
                b"module.exports = 20;\n",
                0o644,
            ),
        ],
    )
    .await;
    let app = "const g = require('greeter');\nconst v = require('versioned');\nexports.handler = async () => ({ msg: g.greet('layer'), v, path: require.resolve('greeter') });\n";
    let name = unique("nodel");
    create_ok(
        &server,
        create(
            &server.client,
            &name,
            &zip_files(&[("index.js", app.as_bytes(), 0o644)]),
        )
        .runtime(Runtime::Nodejs20x)
        .handler("index.handler")
        .memory_size(256)
        .timeout(10)
        .layers(&arn),
    )
    .await;
    let out = invoke(&server, &name, b"{}").await;
    assert_eq!(out.function_error, None, "{}\n{:?}", out.text(), out.log);
    assert_eq!(
        out.json(),
        json!({"msg": "hi layer", "v": 20, "path": "/opt/nodejs/node_modules/greeter/index.js"})
    );
}

#[tokio::test]
async fn code_plus_layers_stay_within_250_mb_unzipped() {
    let server = Server::start();
    // 130 MiB of zeros each (small zips): two layers are 272,629,760 bytes unzipped.
    let bomb = zip_bomb(130);
    let big = |n: &str| {
        let (client, bomb) = (server.client.clone(), bomb.clone());
        let n = n.to_string();
        async move {
            client
                .publish_layer_version()
                .layer_name(&n)
                .content(content(&bomb))
                .send()
                .await
                .unwrap()
                .layer_version_arn
                .unwrap()
        }
    };
    let arn1 = big(&unique("big1")).await;
    let arn2 = big(&unique("big2")).await;
    let zip = shell_fn("echo ok");
    let code_len = {
        // The shell runtime's bootstrap, unzipped.
        shell_runtime(
            "",
            "  ( echo ok ) > \"$WORK/out\" 2>&1; respond \"$WORK/out\"",
        )
        .len() as u64
    };
    let name = unique("big");
    let err = expect_err(
        create(&server.client, &name, &zip)
            .layers(&arn1)
            .layers(&arn2)
            .send()
            .await,
    );
    err.assert(400, "InvalidParameterValueException");
    assert_eq!(
        err.message(),
        format!(
            "Function code combined with layers exceeds the maximum allowed size of 262144000 bytes. The actual size is {} bytes.",
            2 * 130 * 1024 * 1024 + code_len
        )
    );
    // One of them fits; adding the second through an update is refused too.
    create_ok(&server, create(&server.client, &name, &zip).layers(&arn1)).await;
    let err = expect_err(
        server
            .client
            .update_function_configuration()
            .function_name(&name)
            .layers(&arn1)
            .layers(&arn2)
            .send()
            .await,
    );
    err.assert(400, "InvalidParameterValueException");
    assert!(err
        .message()
        .starts_with("Function code combined with layers exceeds"));
    assert_eq!(text(&server, &name).await, "ok\n");
}

#[tokio::test]
async fn function_moves_to_a_new_layer_version_and_versions_keep_theirs() {
    let server = Server::start();
    let layer = unique("lv");
    let v1 = publish(&server, &layer, &[("value.txt", b"one", 0o644)]).await;
    let v2 = publish(&server, &layer, &[("value.txt", b"two", 0o644)]).await;
    assert_eq!(
        (v1.as_str(), v2.as_str()),
        (layer_arn(&layer, 1).as_str(), layer_arn(&layer, 2).as_str())
    );
    let name = unique("moves");
    create_ok(
        &server,
        create(&server.client, &name, &shell_fn("cat /opt/value.txt")).layers(&v1),
    )
    .await;
    assert_eq!(text(&server, &name).await, "one");
    let published = server
        .client
        .publish_version()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(
        published.layers.unwrap()[0].arn.as_deref(),
        Some(v1.as_str())
    );
    let updated = server
        .client
        .update_function_configuration()
        .function_name(&name)
        .layers(&v2)
        .send()
        .await
        .unwrap();
    assert_eq!(updated.layers.unwrap()[0].arn.as_deref(), Some(v2.as_str()));
    assert_eq!(text(&server, &name).await, "two");
    let pinned = send_invoke(
        &server,
        invoke_req(&server.client, &name, b"{}").qualifier("1"),
    )
    .await;
    assert_eq!(pinned.text(), "one", "version 1 keeps layer version 1");
    let got = server
        .client
        .get_function_configuration()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(got.layers.unwrap()[0].arn.as_deref(), Some(v2.as_str()));
}

#[tokio::test]
async fn deleting_a_layer_version_in_use_keeps_the_function_running() {
    let server = Server::start();
    let layer = unique("del");
    let v1 = publish(&server, &layer, &[("value.txt", b"still here", 0o644)]).await;
    let name = unique("deluse");
    create_ok(
        &server,
        create(&server.client, &name, &shell_fn("cat /opt/value.txt")).layers(&v1),
    )
    .await;
    server
        .client
        .delete_layer_version()
        .layer_name(&layer)
        .version_number(1)
        .send()
        .await
        .unwrap();
    let err = expect_err(
        server
            .client
            .get_layer_version()
            .layer_name(&layer)
            .version_number(1)
            .send()
            .await,
    );
    err.assert(404, "ResourceNotFoundException");
    assert_eq!(err.message(), "The resource you requested does not exist.");
    // A new environment (the configuration changed) still gets the deleted version.
    server
        .client
        .update_function_configuration()
        .function_name(&name)
        .environment(env_vars(&[("FRESH", "1")]))
        .send()
        .await
        .unwrap();
    assert_eq!(text(&server, &name).await, "still here");
    // New configurations cannot name it.
    let err = expect_err(
        create(&server.client, &unique("late"), &shell_fn("true"))
            .layers(&v1)
            .send()
            .await,
    );
    err.assert(400, "InvalidParameterValueException");
    assert_eq!(err.message(), format!("Layer version {v1} does not exist."));
    // The number is never given again.
    let v2 = publish(&server, &layer, &[("value.txt", b"new", 0o644)]).await;
    assert_eq!(v2, layer_arn(&layer, 2));
    // After a restart too.
    let mut server = server;
    server.restart();
    assert_eq!(text(&server, &name).await, "still here");
}

#[tokio::test]
async fn function_layer_validation() {
    let server = Server::start();
    let zip = shell_fn("true");
    let err = expect_err(
        create(&server.client, &unique("v"), &zip)
            .layers("not-an-arn")
            .send()
            .await,
    );
    err.assert(400, "ValidationException");
    assert!(
        err.message().starts_with(
            "1 validation error detected: Value '[not-an-arn]' at 'layers' failed to satisfy constraint"
        ),
        "{}",
        err.message()
    );
    let mut six = create(&server.client, &unique("v"), &zip);
    for i in 1..=6 {
        six = six.layers(layer_arn(&format!("l{i}"), 1));
    }
    let err = expect_err(six.send().await);
    err.assert(400, "InvalidParameterValueException");
    assert_eq!(err.message(), "Cannot reference more than 5 layers.");
    let missing = layer_arn("nosuchlayer", 3);
    let err = expect_err(
        create(&server.client, &unique("v"), &zip)
            .layers(&missing)
            .send()
            .await,
    );
    err.assert(400, "InvalidParameterValueException");
    assert_eq!(
        err.message(),
        format!("Layer version {missing} does not exist.")
    );
}

#[tokio::test]
async fn layer_operations_filters_pagination_and_policies() {
    let server = Server::start();
    let c = &server.client;
    let layer = unique("ops");
    let zip = zip_files(&[("f.txt", b"data", 0o644)]);
    let mut arns = Vec::new();
    let created_date =
        regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$").unwrap();
    for (runtimes, archs) in [
        (vec![Runtime::Python311], vec![Architecture::X8664]),
        (vec![Runtime::Nodejs20x], vec![Architecture::Arm64]),
        (
            vec![Runtime::Python311, Runtime::Nodejs20x],
            vec![Architecture::X8664],
        ),
    ] {
        let out = c
            .publish_layer_version()
            .layer_name(&layer)
            .description("d")
            .license_info("MIT")
            .content(content(&zip))
            .set_compatible_runtimes(Some(runtimes))
            .set_compatible_architectures(Some(archs))
            .send()
            .await
            .unwrap();
        assert_eq!(out.content.as_ref().unwrap().code_size, zip.len() as i64);
        assert_eq!(
            out.content.as_ref().unwrap().code_sha256.as_deref(),
            Some(code_sha256(&zip).as_str())
        );
        assert!(created_date.is_match(out.created_date.as_deref().unwrap()));
        arns.push(out.layer_version_arn.unwrap());
    }
    // Get by name and by ARN; the Location downloads the zip.
    let got = c
        .get_layer_version()
        .layer_name(&layer)
        .version_number(2)
        .send()
        .await
        .unwrap();
    assert_eq!(got.version, 2);
    assert_eq!(got.license_info.as_deref(), Some("MIT"));
    let location = got.content.unwrap().location.unwrap();
    let download = raw_request("GET", &location, &[], Vec::new()).await;
    assert_eq!(download.status, 200);
    assert_eq!(download.body, zip);
    let by_arn = c
        .get_layer_version_by_arn()
        .arn(&arns[0])
        .send()
        .await
        .unwrap();
    assert_eq!(by_arn.version, 1);

    // Newest first; filters; pages of one.
    let versions =
        |out: aws_sdk_lambda::operation::list_layer_versions::ListLayerVersionsOutput| {
            out.layer_versions
                .unwrap_or_default()
                .iter()
                .map(|v| v.version)
                .collect::<Vec<_>>()
        };
    let all = c
        .list_layer_versions()
        .layer_name(&layer)
        .send()
        .await
        .unwrap();
    assert_eq!(versions(all), [3, 2, 1]);
    let py = c
        .list_layer_versions()
        .layer_name(&layer)
        .compatible_runtime(Runtime::Python311)
        .send()
        .await
        .unwrap();
    assert_eq!(versions(py), [3, 1]);
    let arm = c
        .list_layer_versions()
        .layer_name(&layer)
        .compatible_architecture(Architecture::Arm64)
        .send()
        .await
        .unwrap();
    assert_eq!(versions(arm), [2]);
    let mut marker = None;
    let mut paged = Vec::new();
    loop {
        let out = c
            .list_layer_versions()
            .layer_name(&layer)
            .max_items(1)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        marker = out.next_marker.clone();
        paged.extend(versions(out));
        if marker.is_none() {
            break;
        }
    }
    assert_eq!(paged, [3, 2, 1]);
    let err = expect_err(
        c.list_layer_versions()
            .layer_name(&layer)
            .max_items(51)
            .send()
            .await,
    );
    err.assert(400, "ValidationException");

    // ListLayers: the latest matching version of each layer.
    let layers = c.list_layers().send().await.unwrap().layers.unwrap();
    let mine = layers
        .iter()
        .find(|l| l.layer_name.as_deref() == Some(layer.as_str()))
        .unwrap();
    assert_eq!(mine.latest_matching_version.as_ref().unwrap().version, 3);
    let layers = c
        .list_layers()
        .compatible_architecture(Architecture::Arm64)
        .send()
        .await
        .unwrap()
        .layers
        .unwrap();
    let mine = layers
        .iter()
        .find(|l| l.layer_name.as_deref() == Some(layer.as_str()))
        .unwrap();
    assert_eq!(mine.latest_matching_version.as_ref().unwrap().version, 2);

    // Policies: stored and returned as Lambda does, with a RevisionId.
    let err = expect_err(
        c.get_layer_version_policy()
            .layer_name(&layer)
            .version_number(1)
            .send()
            .await,
    );
    err.assert(404, "ResourceNotFoundException");
    assert_eq!(
        err.message(),
        "No policy is associated with the given resource."
    );
    let added = c
        .add_layer_version_permission()
        .layer_name(&layer)
        .version_number(1)
        .statement_id("xaccount")
        .action("lambda:GetLayerVersion")
        .principal("210987654321")
        .send()
        .await
        .unwrap();
    let statement: Value = serde_json::from_str(added.statement.as_deref().unwrap()).unwrap();
    assert_eq!(
        statement,
        json!({"Sid": "xaccount", "Effect": "Allow",
               "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
               "Action": "lambda:GetLayerVersion", "Resource": arns[0]})
    );
    let revision = added.revision_id.unwrap();
    let err = expect_err(
        c.add_layer_version_permission()
            .layer_name(&layer)
            .version_number(1)
            .statement_id("xaccount")
            .action("lambda:GetLayerVersion")
            .principal("*")
            .send()
            .await,
    );
    err.assert(409, "ResourceConflictException");
    let err = expect_err(
        c.add_layer_version_permission()
            .layer_name(&layer)
            .version_number(1)
            .statement_id("all")
            .action("lambda:GetLayerVersion")
            .principal("*")
            .revision_id("stale")
            .send()
            .await,
    );
    err.assert(412, "PreconditionFailedException");
    let policy = c
        .get_layer_version_policy()
        .layer_name(&layer)
        .version_number(1)
        .send()
        .await
        .unwrap();
    assert_eq!(policy.revision_id.as_deref(), Some(revision.as_str()));
    let doc: Value = serde_json::from_str(policy.policy.as_deref().unwrap()).unwrap();
    assert_eq!(doc["Version"], "2012-10-17");
    assert_eq!(doc["Statement"][0], statement);
    c.remove_layer_version_permission()
        .layer_name(&layer)
        .version_number(1)
        .statement_id("xaccount")
        .revision_id(&revision)
        .send()
        .await
        .unwrap();
    let err = expect_err(
        c.remove_layer_version_permission()
            .layer_name(&layer)
            .version_number(1)
            .statement_id("xaccount")
            .send()
            .await,
    );
    err.assert(404, "ResourceNotFoundException");
    assert_eq!(
        err.message(),
        "Statement xaccount is not found in resource policy."
    );

    // Delete: gone from gets and lists; deleting again is no error.
    for _ in 0..2 {
        c.delete_layer_version()
            .layer_name(&layer)
            .version_number(3)
            .send()
            .await
            .unwrap();
    }
    let all = c
        .list_layer_versions()
        .layer_name(&layer)
        .send()
        .await
        .unwrap();
    assert_eq!(versions(all), [2, 1]);
    let err = expect_err(c.get_layer_version_by_arn().arn(&arns[2]).send().await);
    err.assert(404, "ResourceNotFoundException");
    let err = expect_err(
        c.get_layer_version_by_arn()
            .arn("arn:aws:lambda:us-east-1:000000000000:layer:x")
            .send()
            .await,
    );
    err.assert(400, "ValidationException");
}

#[test]
fn aws_cli_publishes_lists_and_gets_layers() {
    let server = Server::start();
    let cli = AwsCli::new(&server, "lambda");
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("layer.zip");
    std::fs::write(
        &zip_path,
        zip_files(&[("python/clilayer.py", b"X = 1\n", 0o644)]),
    )
    .unwrap();
    let layer = unique("cli");
    let published = cli.json(&[
        "publish-layer-version",
        "--layer-name",
        &layer,
        "--description",
        "from the cli",
        "--zip-file",
        &format!("fileb://{}", zip_path.display()),
        "--compatible-runtimes",
        "python3.11",
        "--compatible-architectures",
        "x86_64",
    ]);
    let arn = layer_arn(&layer, 1);
    assert_eq!(published["LayerVersionArn"], arn);
    assert_eq!(
        published["LayerArn"],
        format!("arn:aws:lambda:{REGION}:000000000000:layer:{layer}")
    );
    assert_eq!(published["Version"], 1);
    assert_eq!(published["CompatibleRuntimes"], json!(["python3.11"]));
    let listed = cli.json(&["list-layer-versions", "--layer-name", &layer]);
    assert_eq!(listed["LayerVersions"][0]["LayerVersionArn"], arn);
    assert_eq!(listed["LayerVersions"][0]["Description"], "from the cli");
    let got = cli.json(&["get-layer-version-by-arn", "--arn", &arn]);
    assert_eq!(got["Version"], 1);
    assert_eq!(
        got["Content"]["CodeSha256"],
        published["Content"]["CodeSha256"]
    );
    cli.fails_with(
        &["get-layer-version-by-arn", "--arn", &layer_arn(&layer, 9)],
        "ResourceNotFoundException",
    );
}

#[test]
fn boto3_publishes_layers_and_functions_use_them() {
    let server = Server::start();
    let (akid, secret) = server.credentials();
    let script = r#"
import io, json, sys, zipfile, boto3, botocore
c = boto3.client("lambda", endpoint_url=sys.argv[1], region_name="us-east-1",
                 aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3],
                 config=botocore.config.Config(retries={"max_attempts": 1}))
name = sys.argv[4]
def zipped(files):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        for n, d in files.items():
            z.writestr(n, d)
    return b.getvalue()
out = {}
p = c.publish_layer_version(LayerName=name, Content={"ZipFile": zipped({"python/botolayer.py": "WHO = 'boto3 layer'\n"})},
                            CompatibleRuntimes=["python3.11"])
out["version"] = p["Version"]
out["created_type"] = type(p["CreatedDate"]).__name__
out["layers"] = [l["LayerName"] for l in c.list_layers(CompatibleRuntime="python3.11")["Layers"]]
g = c.get_layer_version(LayerName=name, VersionNumber=1)
out["same_arn"] = g["LayerVersionArn"] == p["LayerVersionArn"]
perm = c.add_layer_version_permission(LayerName=name, VersionNumber=1, StatementId="everyone",
                                      Action="lambda:GetLayerVersion", Principal="*")
out["policy"] = json.loads(c.get_layer_version_policy(LayerName=name, VersionNumber=1)["Policy"])["Statement"][0]["Principal"]
app = "import botolayer\ndef handler(e, c):\n    return {'who': botolayer.WHO}\n"
f = c.create_function(FunctionName=name + "-fn", Runtime="python3.11", Role="arn:aws:iam::000000000000:role/r",
                      Handler="app.handler", Code={"ZipFile": zipped({"app.py": app})}, Layers=[p["LayerVersionArn"]])
out["config_layers"] = f["Layers"]
r = c.invoke(FunctionName=name + "-fn", Payload=b"{}")
out["invoke"] = json.loads(r["Payload"].read())
try:
    c.get_layer_version(LayerName=name, VersionNumber=7)
except botocore.exceptions.ClientError as e:
    out["missing"] = e.response["Error"]["Code"]
print(json.dumps(out))
"#;
    let name = unique("boto");
    let out = std::process::Command::new(venv_python())
        .args(["-c", script, &server.endpoint(), &akid, &secret, &name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.output_tail(3000)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["version"], 1);
    assert_eq!(got["created_type"], "str");
    assert!(got["layers"].as_array().unwrap().contains(&json!(name)));
    assert_eq!(got["same_arn"], true);
    assert_eq!(got["policy"], "*");
    assert_eq!(got["config_layers"][0]["Arn"], layer_arn(&name, 1));
    assert!(got["config_layers"][0]["CodeSize"].as_u64().unwrap() > 0);
    assert_eq!(got["invoke"], json!({"who": "boto3 layer"}));
    assert_eq!(got["missing"], "ResourceNotFoundException");
}
