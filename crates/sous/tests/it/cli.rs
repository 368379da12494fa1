//! The unmodified AWS CLI (v1, from PyPI) against `sous serve` (issue 2, point 10):
//! create-function, invoke (with Tail logs), list-functions, get-function,
//! update-function-configuration, delete-function, get-account-settings.
//!
//! The CLI is `$SOUS_TEST_AWS_CLI` (`.ci/run` sets it to the venv's `aws`), else `aws` on
//! PATH. If neither runs, the tests fail: they are never skipped.

use std::path::Path;

use crate::common::*;
use serde_json::{json, Value};

fn write_zip(dir: &Path, zip: &[u8]) -> String {
    let path = dir.join("function.zip");
    std::fs::write(&path, zip).unwrap();
    format!("fileb://{}", path.display())
}

#[test]
fn aws_cli_create_invoke_list_update_delete() {
    let server = Server::start();
    let cli = AwsCli::new(&server, "lambda");
    let dir = tempfile::tempdir().unwrap();
    let name = unique("cli");
    let runtime = shell_runtime(
        "",
        r#"  echo "cli says hi $REQUEST_ID"
  if grep -q '"fail"' "$EVENT"; then fail Oops '{"errorMessage":"nope","errorType":"Oops"}'; else respond "$EVENT"; fi"#,
    );
    let zip = bootstrap_zip(runtime);
    let zip_arg = write_zip(dir.path(), &zip);

    let created = cli.json(&[
        "create-function",
        "--function-name",
        &name,
        "--runtime",
        "provided.al2023",
        "--role",
        ROLE,
        "--handler",
        "bootstrap.handler",
        "--zip-file",
        &zip_arg,
        "--environment",
        "Variables={COLOR=blue}",
        "--description",
        "made by the CLI",
    ]);
    assert_eq!(created["FunctionName"], name.as_str());
    assert_eq!(created["FunctionArn"], function_arn(&name));
    assert_eq!(created["Runtime"], "provided.al2023");
    assert_eq!(created["Role"], ROLE);
    assert_eq!(created["Handler"], "bootstrap.handler");
    assert_eq!(created["CodeSha256"], code_sha256(&zip));
    assert_eq!(created["CodeSize"], zip.len());
    assert_eq!(created["Version"], "$LATEST");
    assert_eq!(created["State"], "Active");
    assert_eq!(created["LastUpdateStatus"], "Successful");
    assert_eq!(created["MemorySize"], 128);
    assert_eq!(created["Timeout"], 3);
    assert_eq!(created["Description"], "made by the CLI");
    assert_eq!(created["PackageType"], "Zip");
    assert_eq!(created["Architectures"], json!(["x86_64"]));
    assert_eq!(created["EphemeralStorage"], json!({"Size": 512}));
    assert_eq!(
        created["Environment"]["Variables"],
        json!({"COLOR": "blue"})
    );
    assert_matches(
        LAST_MODIFIED_RE,
        created["LastModified"].as_str().unwrap_or(""),
        "LastModified",
    );

    // The CLI's own waiter polls GetFunctionConfiguration for State=Active.
    cli.json(&["wait", "function-active-v2", "--function-name", &name]);

    let outfile = dir.path().join("out.json");
    let outfile_s = outfile.display().to_string();
    let invoked = cli.json(&[
        "invoke",
        "--function-name",
        &name,
        BINARY_FORMAT[0],
        BINARY_FORMAT[1],
        "--payload",
        r#"{"from":"cli","n":7}"#,
        "--log-type",
        "Tail",
        &outfile_s,
    ]);
    assert_eq!(invoked["StatusCode"], 200, "{invoked}");
    assert_eq!(invoked["ExecutedVersion"], "$LATEST", "{invoked}");
    assert!(invoked.get("FunctionError").is_none(), "{invoked}");
    let result: Value = serde_json::from_slice(&std::fs::read(&outfile).unwrap()).unwrap();
    assert_eq!(result, json!({"from": "cli", "n": 7}));
    let log = String::from_utf8(unb64(invoked["LogResult"].as_str().expect("LogResult"))).unwrap();
    assert!(
        log.contains("START RequestId: ") && log.contains(" Version: $LATEST"),
        "{log}"
    );
    assert!(log.contains("cli says hi "), "{log}");
    assert!(log.contains("END RequestId: "), "{log}");
    assert!(
        log.contains("REPORT RequestId: ") && log.contains("\tBilled Duration: "),
        "{log}"
    );

    let failed = cli.json(&[
        "invoke",
        "--function-name",
        &name,
        BINARY_FORMAT[0],
        BINARY_FORMAT[1],
        "--payload",
        r#"{"fail":1}"#,
        &outfile_s,
    ]);
    assert_eq!(failed["StatusCode"], 200);
    assert_eq!(failed["FunctionError"], "Unhandled");
    let err: Value = serde_json::from_slice(&std::fs::read(&outfile).unwrap()).unwrap();
    assert_eq!(err, json!({"errorMessage": "nope", "errorType": "Oops"}));

    let other = unique("cli-other");
    cli.json(&[
        "create-function",
        "--function-name",
        &other,
        "--runtime",
        "provided.al2",
        "--role",
        ROLE,
        "--handler",
        "h",
        "--zip-file",
        &zip_arg,
    ]);
    let listed = cli.json(&["list-functions"]);
    let mut names: Vec<&str> = listed["Functions"]
        .as_array()
        .expect("Functions")
        .iter()
        .map(|f| f["FunctionName"].as_str().unwrap())
        .collect();
    names.sort();
    let mut expected = vec![name.as_str(), other.as_str()];
    expected.sort();
    assert_eq!(names, expected);
    // The CLI paginates by itself with --max-items / --page-size.
    let paged = cli.json(&["list-functions", "--page-size", "1"]);
    assert_eq!(paged["Functions"].as_array().unwrap().len(), 2, "{paged}");

    let got = cli.json(&["get-function", "--function-name", &name]);
    assert_eq!(got["Configuration"]["FunctionName"], name.as_str());
    assert_eq!(got["Code"]["RepositoryType"], "S3");
    assert!(got["Code"]["Location"].is_string());

    let updated = cli.json(&[
        "update-function-configuration",
        "--function-name",
        &name,
        "--timeout",
        "10",
        "--memory-size",
        "256",
    ]);
    assert_eq!(updated["Timeout"], 10);
    assert_eq!(updated["MemorySize"], 256);
    assert_ne!(updated["RevisionId"], created["RevisionId"]);
    cli.json(&["wait", "function-updated-v2", "--function-name", &name]);

    let settings = cli.json(&["get-account-settings"]);
    assert_eq!(settings["AccountUsage"]["FunctionCount"], 2);
    assert_eq!(settings["AccountLimit"]["ConcurrentExecutions"], 1000);

    // Refusals as the CLI reports them.
    cli.fails_with(
        &[
            "create-function",
            "--function-name",
            &name,
            "--runtime",
            "provided.al2023",
            "--role",
            ROLE,
            "--handler",
            "h",
            "--zip-file",
            &zip_arg,
        ],
        "ResourceConflictException",
    );
    cli.fails_with(
        &[
            "update-function-configuration",
            "--function-name",
            &name,
            "--timeout",
            "901",
        ],
        "ValidationException",
    );
    cli.fails_with(
        &[
            "create-function",
            "--function-name",
            &unique("py"),
            "--runtime",
            "python3.12",
            "--role",
            ROLE,
            "--handler",
            "h",
            "--zip-file",
            &zip_arg,
        ],
        "InvalidParameterValueException",
    );

    let deleted = cli.run(&["delete-function", "--function-name", &name]);
    assert!(
        deleted.status.success(),
        "{}",
        String::from_utf8_lossy(&deleted.stderr)
    );
    cli.fails_with(
        &["get-function", "--function-name", &name],
        "ResourceNotFoundException",
    );
    let listed = cli.json(&["list-functions"]);
    assert_eq!(listed["Functions"].as_array().unwrap().len(), 1);
}

#[test]
fn aws_cli_with_a_wrong_secret_is_refused() {
    let server = Server::start();
    let (akid, _) = server.credentials();
    let cli = AwsCli::new(&server, "lambda")
        .with_credentials(&akid, "definitely-not-the-secret-0123456789");
    cli.fails_with(&["list-functions"], "InvalidSignatureException");
    let cli = AwsCli::new(&server, "lambda").with_credentials(
        "AKIANOTAKNOWNKEY0000",
        "definitely-not-the-secret-0123456789",
    );
    cli.fails_with(&["list-functions"], "UnrecognizedClientException");
}
