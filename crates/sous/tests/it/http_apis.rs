//! HTTP APIs (issue 7, point 3) through the real binary: the API Gateway v2 control plane
//! driven by the unmodified AWS CLI (`aws apigatewayv2 ...`) and by boto3, then plain HTTP
//! requests to the `ApiEndpoint` it returns, reaching a `nodejs20.x` CRUD handler (our own,
//! of the kind the seed's "API Gateway Integration" section shows) through payload formats
//! 1.0 (REST shape) and 2.0 (HTTP API shape).
//!
//! The CLI is `$SOUS_TEST_AWS_CLI` (`.ci/run` sets it to the venv's `aws`), else `aws` on
//! PATH; boto3 is the venv's python (`$SOUS_TEST_PYTHON`, else `.venv/bin/python`). If they
//! do not run, the tests fail: they are never skipped.

use std::process::Command;

use crate::common::*;
use aws_sdk_lambda::types::Runtime;
use serde_json::{json, Value};

fn s(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
}

fn find<'a>(items: &'a Value, member: &str, value: &str) -> &'a Value {
    items["Items"]
        .as_array()
        .unwrap_or_else(|| panic!("no Items in {items}"))
        .iter()
        .find(|i| i[member] == value)
        .unwrap_or_else(|| panic!("no item with {member} = {value} in {items}"))
}

fn is_api_id(id: &str) -> bool {
    id.len() == 10
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

#[test]
fn aws_cli_manages_http_apis() {
    let server = Server::start();
    let cli = AwsCli::new(&server, "apigatewayv2").single_attempt();
    let fn_arn = function_arn("api-target");

    // Quick create: integration (2.0), $default route and auto-deployed $default stage.
    let quick = cli.json(&[
        "create-api",
        "--name",
        "quick",
        "--protocol-type",
        "HTTP",
        "--target",
        &fn_arn,
    ]);
    let quick_id = s(&quick["ApiId"]).to_string();
    assert!(is_api_id(&quick_id), "{quick}");
    assert_eq!(quick["ProtocolType"], "HTTP");
    assert_eq!(quick["Name"], "quick");
    assert_eq!(
        quick["RouteSelectionExpression"],
        "$request.method $request.path"
    );
    assert_eq!(
        s(&quick["ApiEndpoint"]),
        format!("http://{}/execute-api/{quick_id}", server.gateway_addr)
    );
    assert!(quick["CreatedDate"].is_string(), "{quick}");
    let routes = cli.json(&["get-routes", "--api-id", &quick_id]);
    let route = find(&routes, "RouteKey", "$default");
    assert_eq!(route["ApiGatewayManaged"], true);
    let target = s(&route["Target"]);
    let integration_id = target.strip_prefix("integrations/").expect(target);
    assert_eq!(integration_id.len(), 7, "{routes}");
    let integration = cli.json(&[
        "get-integration",
        "--api-id",
        &quick_id,
        "--integration-id",
        integration_id,
    ]);
    assert_eq!(integration["IntegrationType"], "AWS_PROXY");
    assert_eq!(integration["IntegrationUri"], fn_arn.as_str());
    assert_eq!(integration["PayloadFormatVersion"], "2.0");
    assert_eq!(integration["TimeoutInMillis"], 30000);
    let stages = cli.json(&["get-stages", "--api-id", &quick_id]);
    assert_eq!(find(&stages, "StageName", "$default")["AutoDeploy"], true);

    // Step by step.
    let api = cli.json(&["create-api", "--name", "items", "--protocol-type", "HTTP"]);
    let api_id = s(&api["ApiId"]).to_string();
    assert!(is_api_id(&api_id));
    assert_ne!(api_id, quick_id);
    let wrapped = format!(
        "arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{fn_arn}/invocations"
    );
    let integ = cli.json(&[
        "create-integration",
        "--api-id",
        &api_id,
        "--integration-type",
        "AWS_PROXY",
        "--integration-uri",
        &wrapped,
        "--payload-format-version",
        "1.0",
        "--timeout-in-millis",
        "5000",
    ]);
    let integ_id = s(&integ["IntegrationId"]).to_string();
    assert_eq!(integ["PayloadFormatVersion"], "1.0");
    assert_eq!(integ["TimeoutInMillis"], 5000);
    assert_eq!(integ["IntegrationMethod"], "POST");
    let target = format!("integrations/{integ_id}");
    let route = cli.json(&[
        "create-route",
        "--api-id",
        &api_id,
        "--route-key",
        "GET /items/{id}",
        "--target",
        &target,
    ]);
    let route_id = s(&route["RouteId"]).to_string();
    assert_eq!(route["RouteKey"], "GET /items/{id}");
    assert_eq!(route["Target"], target.as_str());
    assert_eq!(route["AuthorizationType"], "NONE");
    cli.json(&[
        "create-route",
        "--api-id",
        &api_id,
        "--route-key",
        "ANY /{proxy+}",
        "--target",
        &target,
    ]);
    let stage = cli.json(&[
        "create-stage",
        "--api-id",
        &api_id,
        "--stage-name",
        "prod",
        "--auto-deploy",
    ]);
    assert_eq!(stage["StageName"], "prod");
    assert_eq!(stage["AutoDeploy"], true);

    let routes = cli.json(&["get-routes", "--api-id", &api_id]);
    assert_eq!(routes["Items"].as_array().unwrap().len(), 2, "{routes}");
    find(&routes, "RouteKey", "ANY /{proxy+}");
    let got = cli.json(&["get-route", "--api-id", &api_id, "--route-id", &route_id]);
    assert_eq!(got["RouteKey"], "GET /items/{id}");
    assert_eq!(
        cli.json(&["get-stage", "--api-id", &api_id, "--stage-name", "prod"])["AutoDeploy"],
        true
    );
    let apis = cli.json(&["get-apis"]);
    find(&apis, "ApiId", &api_id);
    find(&apis, "ApiId", &quick_id);
    assert_eq!(cli.json(&["get-api", "--api-id", &api_id])["Name"], "items");
    let updated = cli.json(&["update-api", "--api-id", &api_id, "--name", "renamed"]);
    assert_eq!(updated["Name"], "renamed");

    // Errors, with API Gateway's types.
    let msg = cli.fails_with(&["get-api", "--api-id", "nosuchapi0"], "NotFoundException");
    assert!(msg.contains("Invalid API identifier specified"), "{msg}");
    cli.fails_with(
        &["get-route", "--api-id", &api_id, "--route-id", "nosuchr"],
        "NotFoundException",
    );
    for bad in [
        "FETCH /items",
        "GET items",
        "GET /{proxy+}/more",
        "GET /a//b",
    ] {
        cli.fails_with(
            &["create-route", "--api-id", &api_id, "--route-key", bad],
            "BadRequestException",
        );
    }
    cli.fails_with(
        &[
            "create-route",
            "--api-id",
            &api_id,
            "--route-key",
            "GET /items/{id}",
        ],
        "ConflictException",
    );
    cli.fails_with(
        &[
            "create-route",
            "--api-id",
            &api_id,
            "--route-key",
            "GET /x",
            "--target",
            "integrations/nosuchi",
        ],
        "NotFoundException",
    );
    cli.fails_with(
        &[
            "create-api",
            "--name",
            "ws",
            "--protocol-type",
            "WEBSOCKET",
            "--route-selection-expression",
            "$request.body.action",
        ],
        "BadRequestException",
    );
    cli.fails_with(
        &[
            "create-integration",
            "--api-id",
            &api_id,
            "--integration-type",
            "AWS_PROXY",
            "--integration-uri",
            &fn_arn,
        ],
        "BadRequestException",
    );
    cli.fails_with(
        &[
            "create-integration",
            "--api-id",
            &api_id,
            "--integration-type",
            "HTTP_PROXY",
            "--integration-uri",
            "http://127.0.0.1:9/",
            "--payload-format-version",
            "1.0",
        ],
        "BadRequestException",
    );
    cli.fails_with(
        &[
            "create-integration",
            "--api-id",
            &api_id,
            "--integration-type",
            "AWS_PROXY",
            "--integration-uri",
            &fn_arn,
            "--payload-format-version",
            "3.0",
        ],
        "BadRequestException",
    );
    cli.fails_with(
        &["create-stage", "--api-id", &api_id, "--stage-name", "prod"],
        "ConflictException",
    );

    // Deletes.
    cli.json(&["delete-route", "--api-id", &api_id, "--route-id", &route_id]);
    cli.fails_with(
        &["get-route", "--api-id", &api_id, "--route-id", &route_id],
        "NotFoundException",
    );
    cli.json(&["delete-stage", "--api-id", &api_id, "--stage-name", "prod"]);
    cli.json(&[
        "delete-integration",
        "--api-id",
        &api_id,
        "--integration-id",
        &integ_id,
    ]);
    cli.json(&["delete-api", "--api-id", &api_id]);
    cli.fails_with(&["get-api", "--api-id", &api_id], "NotFoundException");
    cli.fails_with(&["get-routes", "--api-id", &api_id], "NotFoundException");
    let apis = cli.json(&["get-apis"]);
    assert_eq!(apis["Items"].as_array().unwrap().len(), 1, "{apis}");

    // What the control plane stored survives a restart.
    let mut server = server;
    server.restart();
    let cli = AwsCli::new(&server, "apigatewayv2").single_attempt();
    let stages = cli.json(&["get-stages", "--api-id", &quick_id]);
    find(&stages, "StageName", "$default");
}

/// boto3's `apigatewayv2` client: the same operations, the error codes boto3 reports.
#[test]
fn boto3_manages_http_apis() {
    let server = Server::start();
    let (akid, secret) = server.credentials();
    let script = r#"
import json, sys, boto3, botocore
c = boto3.client("apigatewayv2", endpoint_url=sys.argv[1], region_name="us-east-1",
                 aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3],
                 config=botocore.config.Config(retries={"max_attempts": 1}))
fn = "arn:aws:lambda:us-east-1:000000000000:function:boto-target"
out = {}
api = c.create_api(Name="b", ProtocolType="HTTP")
out["api"] = {k: api[k] for k in ("ApiId", "ApiEndpoint", "ProtocolType")}
i = c.create_integration(ApiId=api["ApiId"], IntegrationType="AWS_PROXY", IntegrationUri=fn,
                         PayloadFormatVersion="2.0")
r = c.create_route(ApiId=api["ApiId"], RouteKey="POST /things", Target="integrations/" + i["IntegrationId"])
st = c.create_stage(ApiId=api["ApiId"], StageName="$default", AutoDeploy=True)
out["created_date_type"] = type(st["CreatedDate"]).__name__
out["routes"] = [x["RouteKey"] for x in c.get_routes(ApiId=api["ApiId"])["Items"]]
out["integrations"] = [x["PayloadFormatVersion"] for x in c.get_integrations(ApiId=api["ApiId"])["Items"]]
out["stages"] = [x["StageName"] for x in c.get_stages(ApiId=api["ApiId"])["Items"]]
out["apis"] = [x["ApiId"] for x in c.get_apis()["Items"]]
def code(f, **kw):
    try:
        f(**kw)
    except botocore.exceptions.ClientError as e:
        return [e.response["Error"]["Code"], e.response["Error"]["Message"],
                e.response["ResponseMetadata"]["HTTPStatusCode"]]
    return None
out["missing"] = code(c.get_api, ApiId="zzzzzzzzzz")
out["bad_key"] = code(c.create_route, ApiId=api["ApiId"], RouteKey="GET nothing")
out["dup_key"] = code(c.create_route, ApiId=api["ApiId"], RouteKey="POST /things")
out["modeled"] = code(c.get_stage, ApiId=api["ApiId"], StageName="nope") is not None
try:
    c.get_api(ApiId="zzzzzzzzzz")
except c.exceptions.NotFoundException:
    out["typed"] = True
bad = boto3.client("apigatewayv2", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id=sys.argv[2], aws_secret_access_key="wrong" + sys.argv[3],
                   config=botocore.config.Config(retries={"max_attempts": 1}))
out["bad_secret"] = code(bad.get_apis)
c.delete_api(ApiId=api["ApiId"])
out["after_delete"] = code(c.get_routes, ApiId=api["ApiId"])
print(json.dumps(out))
"#;
    let out = Command::new(venv_python())
        .arg("-c")
        .arg(script)
        .args([server.endpoint(), akid, secret])
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("run the venv's python");
    assert!(
        out.status.success(),
        "boto3 script failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let api_id = s(&v["api"]["ApiId"]).to_string();
    assert!(is_api_id(&api_id), "{v}");
    assert_eq!(
        s(&v["api"]["ApiEndpoint"]),
        format!("http://{}/execute-api/{api_id}", server.gateway_addr)
    );
    assert_eq!(v["created_date_type"], "datetime");
    assert_eq!(v["routes"], json!(["POST /things"]));
    assert_eq!(v["integrations"], json!(["2.0"]));
    assert_eq!(v["stages"], json!(["$default"]));
    assert_eq!(v["apis"], json!([api_id]));
    assert_eq!(v["missing"][0], "NotFoundException");
    assert_eq!(
        v["missing"][1],
        format!("Invalid API identifier specified {ACCOUNT}:zzzzzzzzzz")
    );
    assert_eq!(v["missing"][2], 404);
    assert_eq!(v["bad_key"][0], "BadRequestException");
    assert_eq!(v["bad_key"][2], 400);
    assert_eq!(v["dup_key"][0], "ConflictException");
    assert_eq!(v["dup_key"][2], 409);
    assert_eq!(v["modeled"], true);
    assert_eq!(v["typed"], true);
    assert_eq!(v["after_delete"][0], "NotFoundException");
    assert_eq!(v["bad_secret"][0], "InvalidSignatureException", "{v}");
    assert_eq!(v["bad_secret"][2], 403);
}

// ---------------------------------------------------------------------------------------
// Data plane: requests to the ApiEndpoint (served by the gateway on --gateway-addr).

/// Our CRUD handler: works with both payload formats (the method comes from `httpMethod` in
/// 1.0 and `requestContext.http.method` in 2.0) and says which one it saw.
const ITEMS_JS: &str = r#"
const store = new Map([
  ["1", { id: "1", name: "apple", kind: "fruit" }],
  ["2", { id: "2", name: "kale", kind: "vegetable" }],
  ["3", { id: "3", name: "pear", kind: "fruit" }],
]);

function answer(statusCode, payload) {
  return {
    statusCode,
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(payload),
  };
}

exports.handler = async (event) => {
  const format = event.version === "2.0" ? "2.0" : "1.0";
  const method = format === "2.0" ? event.requestContext.http.method : event.httpMethod;
  const context = event.requestContext || {};
  const seen = { format, method, routeKey: event.routeKey || context.routeKey,
                 resource: event.resource, stage: context.stage };
  const id = event.pathParameters ? event.pathParameters.id : undefined;
  if (method === "GET" && id !== undefined) {
    const item = store.get(id);
    return item ? answer(200, { ...seen, item }) : answer(404, { ...seen, error: `no item ${id}` });
  }
  if (method === "GET") {
    const filter = event.queryStringParameters ? event.queryStringParameters.filter : undefined;
    const items = [...store.values()].filter((i) => filter === undefined || i.kind === filter);
    return answer(200, { ...seen, items });
  }
  if (method === "POST") {
    const text = event.isBase64Encoded
      ? Buffer.from(event.body || "", "base64").toString("utf8")
      : event.body || "";
    let input;
    try {
      input = JSON.parse(text);
    } catch (e) {
      return answer(400, { ...seen, error: "body is not valid JSON" });
    }
    const created = { id: String(store.size + 1), ...input };
    store.set(created.id, created);
    return answer(201, { ...seen, item: created });
  }
  return answer(405, { ...seen, error: `method ${method} is not supported` });
};
"#;

async fn items_function(server: &Server) -> String {
    let name = unique("items");
    let zip = zip_files(&[("index.js", ITEMS_JS.as_bytes(), 0o644)]);
    create_ok(
        server,
        create(&server.client, &name, &zip)
            .runtime(Runtime::Nodejs20x)
            .handler("index.handler")
            .memory_size(256)
            .timeout(10),
    )
    .await;
    name
}

/// One request to the gateway: status and JSON body (panics with the server's log tail when
/// the body is not JSON).
async fn call(server: &Server, method: &str, url: &str, body: &str) -> (u16, Value) {
    let headers: &[(&str, &str)] = if body.is_empty() {
        &[]
    } else {
        &[("content-type", "application/json")]
    };
    let resp = raw_request(method, url, headers, body.as_bytes().to_vec()).await;
    let v = serde_json::from_slice(&resp.body).unwrap_or_else(|e| {
        panic!(
            "{method} {url}: {} body is not JSON ({e}): {}\n{}",
            resp.status,
            String::from_utf8_lossy(&resp.body),
            server.output_tail(3000)
        )
    });
    (resp.status, v)
}

/// The seed's API Gateway handler scenarios through both payload formats, a named stage,
/// quick create, host-based addressing and the gateway's 404s. Needs the gateway (helper A's
/// `sous_events::gateway`) to serve `/execute-api/{apiId}/...`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_and_http_api_events_reach_the_handler() {
    let server = Server::start();
    let name = items_function(&server).await;
    let fn_arn = function_arn(&name);
    let cli = AwsCli::new(&server, "apigatewayv2").single_attempt();

    let api = cli.json(&["create-api", "--name", "items", "--protocol-type", "HTTP"]);
    let api_id = s(&api["ApiId"]).to_string();
    let endpoint = s(&api["ApiEndpoint"]).to_string();
    let integration = |version: &str| -> String {
        let out = cli.json(&[
            "create-integration",
            "--api-id",
            &api_id,
            "--integration-type",
            "AWS_PROXY",
            "--integration-uri",
            &fn_arn,
            "--payload-format-version",
            version,
        ]);
        format!("integrations/{}", s(&out["IntegrationId"]))
    };
    let v1 = integration("1.0");
    let v2 = integration("2.0");
    for (key, target) in [
        ("GET /items/{id}", &v1),
        ("GET /items", &v1),
        ("POST /items", &v1),
        ("ANY /items/{id}", &v1),
        ("GET /v2/items/{id}", &v2),
        ("GET /v2/items", &v2),
        ("POST /v2/items", &v2),
        ("ANY /v2/items/{id}", &v2),
    ] {
        cli.json(&[
            "create-route",
            "--api-id",
            &api_id,
            "--route-key",
            key,
            "--target",
            target,
        ]);
    }
    cli.json(&[
        "create-stage",
        "--api-id",
        &api_id,
        "--stage-name",
        "$default",
        "--auto-deploy",
    ]);
    cli.json(&[
        "create-stage",
        "--api-id",
        &api_id,
        "--stage-name",
        "prod",
        "--auto-deploy",
    ]);

    for (prefix, format) in [("", "1.0"), ("/v2", "2.0")] {
        let base = format!("{endpoint}{prefix}/items");
        // GET by id.
        let (status, v) = call(&server, "GET", &format!("{base}/1"), "").await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["format"], format, "{v}");
        assert_eq!(v["method"], "GET");
        assert_eq!(v["item"]["name"], "apple");
        if format == "1.0" {
            assert_eq!(v["resource"], "/items/{id}", "{v}");
        } else {
            assert_eq!(v["routeKey"], "GET /v2/items/{id}", "{v}");
        }
        // List with a filter.
        let (status, v) = call(&server, "GET", &format!("{base}?filter=fruit"), "").await;
        assert_eq!(status, 200, "{v}");
        let names: Vec<&str> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| s(&i["name"]))
            .collect();
        assert!(names.contains(&"apple") && names.contains(&"pear"), "{v}");
        assert!(!names.contains(&"kale"), "{v}");
        // POST with a JSON body.
        let (status, v) = call(&server, "POST", &base, r#"{"name":"plum","kind":"fruit"}"#).await;
        assert_eq!(status, 201, "{v}");
        assert_eq!(v["item"]["name"], "plum");
        assert_eq!(v["format"], format);
        // Invalid JSON body → 400 from the handler.
        let (status, v) = call(&server, "POST", &base, "{not json").await;
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["error"], "body is not valid JSON");
        // Unknown method (through `ANY /items/{id}`) → 405.
        let (status, v) = call(&server, "PATCH", &format!("{base}/1"), r#"{"a":1}"#).await;
        assert_eq!(status, 405, "{v}");
        assert_eq!(v["method"], "PATCH");
        if format == "2.0" {
            assert_eq!(v["routeKey"], "ANY /v2/items/{id}", "{v}");
        }
    }

    // A named stage: the stage name is the first path segment.
    let (status, v) = call(&server, "GET", &format!("{endpoint}/prod/items/2"), "").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["item"]["name"], "kale");
    assert_eq!(v["stage"], "prod");
    let (status, v) = call(&server, "GET", &format!("{endpoint}/items/2"), "").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["stage"], "$default");

    // No route → API Gateway's 404.
    let (status, v) = call(&server, "GET", &format!("{endpoint}/nothing/here"), "").await;
    assert_eq!((status, v), (404, json!({"message": "Not Found"})));
    let (status, v) = call(&server, "DELETE", &format!("{endpoint}/items"), "").await;
    assert_eq!((status, v), (404, json!({"message": "Not Found"})));
    // No such API → 404 too.
    let gateway = format!("http://{}", server.gateway_addr);
    let (status, v) = call(
        &server,
        "GET",
        &format!("{gateway}/execute-api/nosuchapi0/items/1"),
        "",
    )
    .await;
    assert_eq!((status, v), (404, json!({"message": "Not Found"})));

    // Host-based addressing reaches the same API.
    let resp = raw_request(
        "GET",
        &format!("{gateway}/items/3"),
        &[("host", &format!("{api_id}.execute-api.localhost"))],
        Vec::new(),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    let v: Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(v["item"]["name"], "pear");

    // A route removed through the control plane stops answering at once.
    let routes = cli.json(&["get-routes", "--api-id", &api_id]);
    let route_id = s(&find(&routes, "RouteKey", "GET /items")["RouteId"]).to_string();
    cli.json(&["delete-route", "--api-id", &api_id, "--route-id", &route_id]);
    let (status, v) = call(&server, "GET", &format!("{endpoint}/items"), "").await;
    assert_eq!((status, v), (404, json!({"message": "Not Found"})));

    // Quick create: one command, then the function answers any path (payload 2.0).
    let quick = cli.json(&[
        "create-api",
        "--name",
        "quick",
        "--protocol-type",
        "HTTP",
        "--target",
        &fn_arn,
    ]);
    let quick_endpoint = s(&quick["ApiEndpoint"]).to_string();
    let (status, v) = call(
        &server,
        "GET",
        &format!("{quick_endpoint}/anything?filter=vegetable"),
        "",
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["format"], "2.0");
    assert_eq!(v["routeKey"], "$default");
    assert_eq!(v["items"][0]["name"], "kale");
}
