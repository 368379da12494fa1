//! The SDKs Lambda bundles (issue 15, point 2): a `python3.11` function that does not package
//! boto3 imports it from `/var/runtime`, a `nodejs20.x` function requires the AWS SDK for
//! JavaScript v3 from `/var/runtime/node_modules`, at Sous's pinned versions
//! (`sous_runtimes::sdk`); a function's own packaged copy wins; the same holds rootless and
//! without isolation; and a server whose registries are unreachable still starts, its
//! functions simply without the SDK.
//!
//! The SDKs are installed once per test run by the harness (`common::install_bundled_sdks`,
//! through `sous sdk install`), into the cache every test server shares.

use std::time::{Duration, Instant};

use aws_sdk_lambda::types::Runtime;
use serde_json::Value;

use crate::common::*;
use sous_runtimes::sdk::{NODEJS20, PYTHON311};

/// The pinned version of a bundle's first package (`boto3==1.43.104` → `1.43.104`).
fn pinned(package: &str) -> &str {
    package
        .rsplit_once("==")
        .or_else(|| package.rsplit_once('@'))
        .map(|(_, v)| v)
        .unwrap()
}

fn require_sdks() {
    if let Err(e) = install_bundled_sdks() {
        panic!("the bundled SDKs could not be installed for the tests: {e}");
    }
}

async fn deploy(
    server: &Server,
    runtime: Runtime,
    handler: &str,
    files: &[(&str, &str)],
) -> String {
    let entries: Vec<(&str, &[u8], u32)> = files
        .iter()
        .map(|(p, d)| (*p, d.as_bytes(), 0o644))
        .collect();
    let name = unique("sdk");
    create_ok(
        server,
        create(&server.client, &name, &zip_files(&entries))
            .runtime(runtime)
            .handler(handler)
            .memory_size(512)
            .timeout(30),
    )
    .await;
    name
}

async fn ok_json(server: &Server, name: &str) -> Value {
    let out = invoke(server, name, b"{}").await;
    assert_eq!(
        out.function_error,
        None,
        "{name}: {}\nlog:\n{}\n{}",
        out.text(),
        out.log.as_deref().unwrap_or(""),
        server.output_tail(3000)
    );
    out.json()
}

const BOTO3_APP: &str = r#"import sys
import boto3, botocore

def handler(event, context):
    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )
    return {
        "boto3": boto3.__version__,
        "botocore": botocore.__version__,
        "file": boto3.__file__,
        "service": client.meta.service_model.service_name,
        "operations": len(client.meta.service_model.operation_names),
        "path": sys.path,
    }
"#;

/// The python3.11 check: the pinned boto3 from `/var/runtime` (`runtime_dir`), after the task
/// root and the layers' paths, and a DynamoDB client made with it.
fn assert_bundled_boto3(v: &Value, runtime_dir: &str) {
    let version = pinned(PYTHON311.packages[0]);
    assert_eq!(v["boto3"], version, "{v}");
    assert_eq!(v["botocore"], pinned(PYTHON311.packages[1]), "{v}");
    assert_eq!(
        v["file"],
        format!("{runtime_dir}/boto3/__init__.py"),
        "boto3 is found in the runtime directory: {v}"
    );
    assert_eq!(v["service"], "dynamodb", "{v}");
    assert!(v["operations"].as_u64().unwrap() > 30, "{v}");
    let path: Vec<&str> = v["path"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        &path[1..4],
        [
            "/opt/python/lib/python3.11/site-packages",
            "/opt/python",
            runtime_dir
        ],
        "Lambda's order: task root, layers, runtime, standard library: {path:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_imports_the_bundled_boto3_from_var_runtime() {
    require_sdks();
    let server = Server::start();
    let name = deploy(
        &server,
        Runtime::Python311,
        "app.handler",
        &[("app.py", BOTO3_APP)],
    )
    .await;
    let v = ok_json(&server, &name).await;
    assert_bundled_boto3(&v, "/var/runtime");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packaged_boto3_wins_over_the_bundled_one() {
    require_sdks();
    let server = Server::start();
    let name = deploy(
        &server,
        Runtime::Python311,
        "app.handler",
        &[
            ("boto3/__init__.py", "__version__ = '0.0.1-packaged'\n"),
            (
                "app.py",
                "import boto3\ndef handler(e, c):\n    return {'v': boto3.__version__, 'file': boto3.__file__}\n",
            ),
        ],
    )
    .await;
    let v = ok_json(&server, &name).await;
    assert_eq!(v["v"], "0.0.1-packaged", "{v}");
    assert_eq!(v["file"], "/var/task/boto3/__init__.py", "{v}");
}

/// Every v3 package Sous bundles, required; a DynamoDB client and a document client made.
const SDK_V3_APP: &str = r#"const { DynamoDBClient, ListTablesCommand } = require('@aws-sdk/client-dynamodb');
const { DynamoDBDocumentClient } = require('@aws-sdk/lib-dynamodb');

exports.handler = async () => {
  const client = new DynamoDBClient({
    region: 'us-east-1',
    endpoint: 'http://127.0.0.1:1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
  });
  const doc = DynamoDBDocumentClient.from(client);
  const names = JSON.parse(process.env.PACKAGES);
  const versions = {};
  for (const n of names) {
    require(n);
    versions[n] = require(n + '/package.json').version;
  }
  return {
    versions,
    resolved: require.resolve('@aws-sdk/client-dynamodb'),
    command: new ListTablesCommand({}).constructor.name,
    doc: typeof doc.send,
    region: await client.config.region(),
    nodePath: process.env.NODE_PATH,
  };
};
"#;

/// The package names of the nodejs20.x bundle (without their versions).
fn node_packages() -> Vec<&'static str> {
    NODEJS20
        .packages
        .iter()
        .map(|p| p.rsplit_once('@').unwrap().0)
        .collect()
}

async fn deploy_sdk_v3_app(server: &Server) -> String {
    let name = unique("sdk-node");
    let packages = serde_json::to_string(&node_packages()).unwrap();
    create_ok(
        server,
        create(
            &server.client,
            &name,
            &zip_files(&[("index.js", SDK_V3_APP.as_bytes(), 0o644)]),
        )
        .runtime(Runtime::Nodejs20x)
        .handler("index.handler")
        .memory_size(1024)
        .timeout(60)
        .environment(env_vars(&[("PACKAGES", &packages)])),
    )
    .await;
    name
}

fn assert_bundled_sdk_v3(v: &Value, runtime_dir: &str) {
    let version = pinned(NODEJS20.packages[0]);
    for p in node_packages() {
        assert_eq!(v["versions"][p], version, "{p}: {v}");
    }
    assert_eq!(v["command"], "ListTablesCommand", "{v}");
    assert_eq!(v["doc"], "function", "{v}");
    assert_eq!(v["region"], "us-east-1", "{v}");
    let node_path = v["nodePath"].as_str().unwrap();
    assert!(
        node_path.starts_with(&format!(
            "/opt/nodejs/node20/node_modules:/opt/nodejs/node_modules:{runtime_dir}/node_modules:"
        )),
        "{v}"
    );
    // Found through /var/runtime/node_modules (a link into the shared cache, shown read-only).
    let resolved = v["resolved"].as_str().unwrap();
    assert!(
        resolved.contains(NODEJS20.dir_name) && resolved.contains("/@aws-sdk/client-dynamodb/"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_requires_the_bundled_sdk_v3_from_var_runtime() {
    require_sdks();
    let server = Server::start();
    let name = deploy_sdk_v3_app(&server).await;
    let v = ok_json(&server, &name).await;
    assert_bundled_sdk_v3(&v, "/var/runtime");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packaged_sdk_module_wins_over_the_bundled_one() {
    require_sdks();
    let server = Server::start();
    let name = deploy(
        &server,
        Runtime::Nodejs20x,
        "index.handler",
        &[
            (
                "node_modules/@aws-sdk/client-dynamodb/package.json",
                r#"{"name":"@aws-sdk/client-dynamodb","version":"0.0.1-packaged","main":"index.js"}"#,
            ),
            (
                "node_modules/@aws-sdk/client-dynamodb/index.js",
                "exports.packaged = true;",
            ),
            (
                "index.js",
                "const d = require('@aws-sdk/client-dynamodb');\n\
                 const l = require('@aws-sdk/lib-dynamodb/package.json');\n\
                 exports.handler = async () => ({ packaged: d.packaged === true,\n\
                   version: require('@aws-sdk/client-dynamodb/package.json').version,\n\
                   file: require.resolve('@aws-sdk/client-dynamodb'), lib: l.version });",
            ),
        ],
    )
    .await;
    let v = ok_json(&server, &name).await;
    assert_eq!(v["packaged"], true, "{v}");
    assert_eq!(v["version"], "0.0.1-packaged", "{v}");
    assert_eq!(
        v["file"], "/var/task/node_modules/@aws-sdk/client-dynamodb/index.js",
        "{v}"
    );
    // What it does not package still comes from the runtime.
    assert_eq!(v["lib"], pinned(NODEJS20.packages[1]), "{v}");
}

/// Without isolation the runtime directory is a host path and its links lead straight to the
/// cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_isolation_the_runtime_dir_links_to_the_cache() {
    require_sdks();
    let server = Server::start_with(ServerOptions::with_args(&["--isolation", "none"]));
    let runtime_dir = server.data_dir.join("runtimes/python3.11");
    let runtime_dir = runtime_dir.to_str().unwrap();
    let name = deploy(
        &server,
        Runtime::Python311,
        "app.handler",
        &[("app.py", BOTO3_APP)],
    )
    .await;
    assert_bundled_boto3(&ok_json(&server, &name).await, runtime_dir);
    let name = deploy_sdk_v3_app(&server).await;
    let node_dir = server.data_dir.join("runtimes/nodejs20.x");
    assert_bundled_sdk_v3(&ok_json(&server, &name).await, node_dir.to_str().unwrap());
}

/// Rootless: the cache is read through the user namespace and bound like any host path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rootless_functions_see_the_bundled_sdks() {
    use crate::rootless::{require_root, start_rootless, Delegation};
    require_root();
    require_sdks();
    let cg = Delegation::new();
    let server = start_rootless(&cg, &["--function-network", "none"]);
    let name = deploy(
        &server,
        Runtime::Python311,
        "app.handler",
        &[("app.py", BOTO3_APP)],
    )
    .await;
    assert_bundled_boto3(&ok_json(&server, &name).await, "/var/runtime");
    let name = deploy_sdk_v3_app(&server).await;
    assert_bundled_sdk_v3(&ok_json(&server, &name).await, "/var/runtime");
}

/// With the registries unreachable and nothing installed, `sous serve` still starts, says
/// why the SDKs are missing, and functions run without them (an import error, as for any
/// module a function lacks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_registries_leave_functions_without_the_sdk_but_start_up_succeeds() {
    let empty = tempfile::tempdir().unwrap();
    // A closed loopback port as both registries; no retries.
    let closed = "http://127.0.0.1:9/";
    let npm_cache = empty.path().join(".npm");
    let env = [
        ("SOUS_SDK_DIR", empty.path().to_str().unwrap()),
        ("PIP_INDEX_URL", closed),
        ("PIP_FIND_LINKS", ""),
        ("PIP_RETRIES", "0"),
        ("PIP_TIMEOUT", "2"),
        ("npm_config_registry", closed),
        ("npm_config_fetch_retries", "0"),
        ("npm_config_fetch_timeout", "2000"),
        ("npm_config_cache", npm_cache.to_str().unwrap()),
        ("npm_config_offline", "false"),
    ];
    let server = Server::start_with(ServerOptions {
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..ServerOptions::default()
    });
    // Both installs fail, each with one warning naming the bundle.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = server.output();
        let failed = [&PYTHON311, &NODEJS20]
            .iter()
            .all(|b| out.contains(&format!("bundled SDK ({}) could not be installed", b.label)));
        if failed {
            break;
        }
        assert!(Instant::now() < deadline, "{}", server.output_tail(4000));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        std::fs::read_dir(empty.path())
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().starts_with(".tmp-")),
        "a failed install leaves no temporary directory"
    );
    let name = deploy(
        &server,
        Runtime::Python311,
        "app.handler",
        &[("app.py", "def handler(e, c):\n    import boto3\n")],
    )
    .await;
    let out = invoke(&server, &name, b"{}").await;
    assert_eq!(
        out.function_error.as_deref(),
        Some("Unhandled"),
        "{}",
        out.text()
    );
    let v = out.json();
    assert_eq!(v["errorType"], "ModuleNotFoundError", "{v}");
    assert_eq!(v["errorMessage"], "No module named 'boto3'", "{v}");
}

/// A handler that reports whether the bundled client loads, in an environment of its own.
const TRY_REQUIRE: &str = "exports.handler = async () => {\n\
  try { require('@aws-sdk/client-dynamodb'); return { loaded: true }; }\n\
  catch (e) { return { loaded: false, code: e.code }; }\n\
};";

/// The install at start-up runs in the background: an environment started before it is done
/// does not see the SDK, one started after does. (The npm registry is stood in for by an
/// `npm` first on `PATH` that takes a few seconds and copies the SDK the harness installed;
/// the python3.11 bundle is found already installed.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_installed_after_start_up_is_seen_by_later_environments() {
    use std::os::unix::fs::PermissionsExt;
    require_sdks();
    let cache = test_sdk_dir();
    let t = tempfile::tempdir().unwrap();
    let sdks = t.path().join("sdks");
    std::fs::create_dir(&sdks).unwrap();
    std::os::unix::fs::symlink(PYTHON311.dir(&cache), PYTHON311.dir(&sdks)).unwrap();
    let bin = t.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    // `npm install --prefix DIR ...`
    std::fs::write(
        bin.join("npm"),
        format!(
            "#!/bin/sh\n[ \"$1 $2\" = 'install --prefix' ] || exit 2\nsleep 6\ncp -R '{}' \"$3/\"\n",
            NODEJS20.dir(&cache).join("node_modules").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(bin.join("npm"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let server = Server::start_with(ServerOptions {
        env: vec![
            ("SOUS_SDK_DIR".into(), sdks.display().to_string()),
            ("PATH".into(), path),
        ],
        ..ServerOptions::default()
    });
    let ready = format!("bundled SDK ready: {}", NODEJS20.label);

    let early = deploy(
        &server,
        Runtime::Nodejs20x,
        "index.handler",
        &[("index.js", TRY_REQUIRE)],
    )
    .await;
    let v = ok_json(&server, &early).await;
    assert!(
        !server.output().contains(&ready),
        "the stand-in npm was too quick for this test"
    );
    assert_eq!(v["loaded"], false, "{v}");
    assert_eq!(v["code"], "MODULE_NOT_FOUND", "{v}");

    let deadline = Instant::now() + Duration::from_secs(60);
    while !server.output().contains(&ready) {
        assert!(Instant::now() < deadline, "{}", server.output_tail(3000));
        std::thread::sleep(Duration::from_millis(100));
    }
    let late = deploy(
        &server,
        Runtime::Nodejs20x,
        "index.handler",
        &[("index.js", TRY_REQUIRE)],
    )
    .await;
    let v = ok_json(&server, &late).await;
    assert_eq!(v["loaded"], true, "{v}");
    // The python3.11 bundle was installed already: ready from the start, no install.
    assert!(
        !server
            .output()
            .contains(&format!("installing {}", PYTHON311.label)),
        "{}",
        server.output_tail(3000)
    );
}
