//! The HTTP front door with HTTP API routes (issue 7, point 4) through the real binary: an
//! API made with the unmodified AWS CLI (`aws apigatewayv2`, quick create plus a route with
//! its own integration timeout), then plain HTTP: path- and host-based addressing, the 2.0
//! event of a route, and the door's errors as API Gateway gives them — function error and
//! malformed answer 502, integration timeout 504, unknown API or route 404, body above the
//! limit 413.

use crate::common::*;
use aws_sdk_lambda::types::Runtime;
use serde_json::{json, Value};

const HANDLER: &str = r#"
import json, time

def handler(event, context):
    path = event.get("rawPath", "")
    if path == "/fail":
        raise RuntimeError("boom")
    if path == "/slow":
        time.sleep(3)
    if path == "/malformed":
        return {"statusCode": {"not": "a number"}}
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(event)}
"#;

/// `aws apigatewayv2 <args>`; stdout as JSON, panicking (with the server's output) on
/// failure.
fn apigw(cli: &AwsCli, server: &Server, args: &[&str]) -> Value {
    let out = cli.run(args);
    assert!(
        out.status.success(),
        "aws apigatewayv2 {args:?}: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.output_tail(3000)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn text(r: &RawResponse) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

#[tokio::test]
async fn http_api_requests_and_errors_at_the_door() {
    let server = Server::start();
    let name = unique("door");
    let zip = zip_entries(&[file("app.py", HANDLER.as_bytes().to_vec(), 0o644)]);
    create_ok(
        &server,
        create(&server.client, &name, &zip)
            .runtime(Runtime::Python311)
            .handler("app.handler")
            .timeout(10),
    )
    .await;
    let arn = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}");
    let cli = AwsCli::new(&server, "apigatewayv2");
    let api = apigw(
        &cli,
        &server,
        &[
            "create-api",
            "--name",
            &name,
            "--protocol-type",
            "HTTP",
            "--target",
            &arn,
        ],
    );
    let api_id = api["ApiId"].as_str().unwrap().to_string();
    let endpoint = api["ApiEndpoint"].as_str().unwrap().to_string();
    assert!(
        endpoint.starts_with(&format!("http://{}", server.gateway_addr)),
        "{endpoint}"
    );
    // A route of its own with a 500 ms integration timeout.
    let integration = apigw(
        &cli,
        &server,
        &[
            "create-integration",
            "--api-id",
            &api_id,
            "--integration-type",
            "AWS_PROXY",
            "--integration-uri",
            &arn,
            "--payload-format-version",
            "2.0",
            "--timeout-in-millis",
            "500",
        ],
    );
    let target = format!(
        "integrations/{}",
        integration["IntegrationId"].as_str().unwrap()
    );
    apigw(
        &cli,
        &server,
        &[
            "create-route",
            "--api-id",
            &api_id,
            "--route-key",
            "GET /slow",
            "--target",
            &target,
        ],
    );

    // Path-based addressing (the ApiEndpoint) and host-based addressing reach the route.
    let r = raw_request("GET", &format!("{endpoint}/items/7?q=1"), &[], Vec::new()).await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert!(r.header("apigw-requestid").is_some());
    let ev = r.json();
    assert_eq!(ev["version"], "2.0");
    assert_eq!(ev["routeKey"], "$default");
    assert_eq!(ev["rawPath"], "/items/7");
    assert_eq!(ev["queryStringParameters"], json!({"q": "1"}));
    assert_eq!(ev["requestContext"]["apiId"], api_id.as_str());
    assert_eq!(ev["requestContext"]["stage"], "$default");
    assert_eq!(ev["requestContext"]["accountId"], ACCOUNT);
    let r = raw_request(
        "GET",
        &format!("http://{}/items/8", server.gateway_addr),
        &[("host", &format!("{api_id}.execute-api.{REGION}.localhost"))],
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(r.json()["rawPath"], "/items/8");

    // Errors as API Gateway gives them.
    let r = raw_request("GET", &format!("{endpoint}/fail"), &[], Vec::new()).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.json(), json!({"message": "Internal Server Error"}));
    let r = raw_request("GET", &format!("{endpoint}/malformed"), &[], Vec::new()).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.json(), json!({"message": "Internal Server Error"}));
    let r = raw_request("GET", &format!("{endpoint}/slow"), &[], Vec::new()).await;
    assert_eq!(r.status, 504, "{}", text(&r));
    assert_eq!(r.json(), json!({"message": "Endpoint request timed out"}));
    let r = raw_request(
        "POST",
        &format!("{endpoint}/items"),
        &[("content-type", "application/json")],
        vec![b' '; 6 * 1024 * 1024 + 1],
    )
    .await;
    assert_eq!(r.status, 413, "{}", text(&r));
    let r = raw_request(
        "GET",
        &format!("http://{}/execute-api/nosuchapi/items", server.gateway_addr),
        &[],
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), json!({"message": "Not Found"}));
    let r = raw_request(
        "GET",
        &format!("http://{}/", server.gateway_addr),
        &[],
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), json!({"message": "Not Found"}));
}
