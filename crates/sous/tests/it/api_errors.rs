//! How the API address fails: a request for a service Sous does not serve is told so, in
//! its protocol, as the AWS CLI prints it; and an internal failure gives the client only
//! `ServiceException` and the request id, while the log gets the cause (docs/ERROR-HANDLING.md).

use std::process::Command;

use crate::common::*;
use aws_sdk_lambda::operation::RequestId as _;

/// These tests need no function networking: they run on hosts without NAT tooling too.
fn server() -> Server {
    Server::start_with(ServerOptions::with_args(&["--function-network", "none"]))
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn unserved_services_say_so_through_the_cli() {
    let server = server();

    // JSON 1.1 (`X-Amz-Target: Logs_20140328.DescribeLogGroups`, scope `logs`).
    let out = AwsCli::new(&server, "logs")
        .single_attempt()
        .run(&["describe-log-groups"]);
    let stderr = stderr_of(&out);
    assert!(!out.status.success(), "aws logs succeeded:\n{stderr}");
    assert!(
        stderr.contains("(UnknownOperationException)")
            && stderr.contains(
                "Sous does not serve the logs service (served: lambda, apigatewayv2, events)"
            ),
        "aws logs describe-log-groups:\n{stderr}"
    );
    assert!(!stderr.contains("credential"), "{stderr}");

    // Query protocol (`Action=GetCallerIdentity`, scope `sts`).
    let out = AwsCli::new(&server, "sts")
        .single_attempt()
        .run(&["get-caller-identity"]);
    let stderr = stderr_of(&out);
    assert!(!out.status.success(), "aws sts succeeded:\n{stderr}");
    assert!(
        stderr.contains("(InvalidAction)")
            && stderr.contains("Sous does not serve the sts service"),
        "aws sts get-caller-identity:\n{stderr}"
    );

    // The served services still answer on the same address.
    let functions = AwsCli::new(&server, "lambda").json(&["list-functions"]);
    assert_eq!(functions["Functions"], serde_json::json!([]));
}

#[tokio::test]
async fn internal_errors_name_only_the_request_id() {
    let server = server();
    create_ok(
        &server,
        create(&server.client, "broken", &bootstrap_zip(echo_runtime())),
    )
    .await;

    // Break the metadata store under the running server.
    let db = server.data_dir.join("sous.db");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let dropped = Command::new(&python)
        .args([
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('DROP TABLE aliases'); c.commit()",
        ])
        .arg(&db)
        .output()
        .unwrap_or_else(|e| panic!("run {python} (set PYTHON to a Python 3 with sqlite3): {e}"));
    assert!(
        dropped.status.success(),
        "drop the aliases table: {}",
        String::from_utf8_lossy(&dropped.stderr)
    );

    let result = server
        .client
        .get_alias()
        .function_name("broken")
        .name("live")
        .send()
        .await;
    let Err(sdk_err) = result else {
        panic!("GetAlias succeeded on a broken store: {result:?}")
    };
    let request_id = sdk_err
        .request_id()
        .expect("the error carries x-amzn-RequestId")
        .to_string();
    let err = api_error(sdk_err);
    err.assert(500, "ServiceException");
    let message = err.message().to_string();
    assert_eq!(
        message,
        format!("An internal error occurred. Request ID: {request_id}")
    );
    let body = err.body.to_lowercase();
    let data_dir = server.data_dir.to_string_lossy().to_lowercase();
    for leak in [
        "sqlite",
        "no such table",
        "aliases",
        "sous.db",
        data_dir.as_str(),
    ] {
        assert!(!body.contains(leak), "{leak:?} leaked into {body}");
    }

    // The log has the cause, at ERROR, on the line naming the request id.
    let output = server.output();
    let line = output
        .lines()
        .find(|l| l.contains(&request_id) && l.contains("no such table: aliases"))
        .unwrap_or_else(|| panic!("no log line with {request_id} and the cause:\n{output}"));
    assert!(line.contains("ERROR"), "{line}");
}
