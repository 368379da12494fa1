//! AWS services reachable from functions (issue 15, point 3): `sous serve --service-endpoint
//! dynamodb=<moto>` gives each function `AWS_ENDPOINT_URL_DYNAMODB` and Lambda's credential
//! variables, and makes exactly that endpoint reachable from the sandbox (a forwarder per
//! endpoint on the environment's own loopback): not another port of the host, on its loopback
//! or its other addresses, and not Sous's own API. As root, and rootless (the test plays the
//! administrator, as `rootless.rs` does).
//!
//! The function is python3.11 with the standard library only: it signs DynamoDB JSON requests
//! with SigV4 itself (hashlib, hmac) and posts them with urllib, as an SDK would. The item it
//! writes is then read back through the AWS CLI against moto.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use aws_sdk_lambda::types::Runtime;
use serde_json::{json, Value};

use crate::common::engines::Moto;
use crate::common::*;

/// The function: `{"op": "dynamodb", "table", "id", "value"}` creates the table, puts an item
/// and gets it back; `{"op": "connect", "targets": [[host, port], ...]}` tries a TCP connection
/// to each; `{"op": "env"}` returns the `AWS_*` variables.
const HANDLER: &str = r#"
import datetime, hashlib, hmac, json, os, socket, urllib.request

def _sign(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()

def dynamodb(target, body):
    url = os.environ["AWS_ENDPOINT_URL_DYNAMODB"]
    region = os.environ["AWS_REGION"]
    payload = json.dumps(body).encode()
    host = url.split("://", 1)[1].rstrip("/")
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    headers = {
        "content-type": "application/x-amz-json-1.0",
        "host": host,
        "x-amz-date": amz_date,
        "x-amz-security-token": os.environ["AWS_SESSION_TOKEN"],
        "x-amz-target": "DynamoDB_20120810." + target,
    }
    signed = ";".join(sorted(headers))
    canonical = "\n".join([
        "POST", "/", "",
        "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
        signed, hashlib.sha256(payload).hexdigest(),
    ])
    scope = f"{day}/{region}/dynamodb/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    k = _sign(("AWS4" + os.environ["AWS_SECRET_ACCESS_KEY"]).encode(), day)
    for part in (region, "dynamodb", "aws4_request"):
        k = _sign(k, part)
    signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={os.environ['AWS_ACCESS_KEY_ID']}/{scope}, "
        f"SignedHeaders={signed}, Signature={signature}")
    del headers["host"]
    req = urllib.request.Request(url + "/", data=payload, method="POST", headers=headers)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"{}")

def handler(event, context):
    op = event["op"]
    if op == "env":
        return {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    if op == "connect":
        out = {}
        for host, port in event["targets"]:
            try:
                socket.create_connection((host, port), timeout=3).close()
                out[f"{host}:{port}"] = "connected"
            except OSError as e:
                out[f"{host}:{port}"] = f"failed: {e}"
        return out
    table = event["table"]
    dynamodb("CreateTable", {
        "TableName": table,
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    })
    dynamodb("PutItem", {"TableName": table, "Item": {
        "id": {"S": event["id"]}, "value": {"S": event["value"]}}})
    got = dynamodb("GetItem", {"TableName": table, "Key": {"id": {"S": event["id"]}},
                               "ConsistentRead": True})
    return {"endpoint": os.environ["AWS_ENDPOINT_URL_DYNAMODB"], "item": got.get("Item")}
"#;

async fn deploy_probe(server: &Server) -> String {
    let name = unique("svc-probe");
    let zip = zip_entries(&[file("probe.py", HANDLER.as_bytes().to_vec(), 0o644)]);
    create_ok(
        server,
        create(&server.client, &name, &zip)
            .runtime(Runtime::Python311)
            .handler("probe.handler")
            .timeout(30),
    )
    .await;
    name
}

async fn call(server: &Server, name: &str, event: Value) -> Value {
    let out = invoke(server, name, event.to_string().as_bytes()).await;
    assert_eq!(
        out.function_error,
        None,
        "{name} failed: {}\nlog: {:?}\n{}",
        out.text(),
        out.log,
        server.output_tail(3000)
    );
    out.json()
}

fn endpoint_arg(moto: &Moto) -> String {
    format!("dynamodb={}", moto.url())
}

/// The function writes and reads an item through the forwarder; the AWS CLI finds the item in
/// moto.
async fn writes_and_reads_through_the_endpoint(server: &Server, moto: &Moto, name: &str) {
    let table = unique("svc-table");
    let v = call(
        server,
        name,
        json!({"op": "dynamodb", "table": table, "id": "k1", "value": "written by a function"}),
    )
    .await;
    // A 127.0.0.1 endpoint keeps its URL inside: the Host the SDK signs is the endpoint's.
    assert_eq!(v["endpoint"], moto.url(), "{v}");
    assert_eq!(
        v["item"],
        json!({"id": {"S": "k1"}, "value": {"S": "written by a function"}}),
        "{v}"
    );
    let out = moto.aws_ok(&[
        "dynamodb",
        "get-item",
        "--table-name",
        &table,
        "--key",
        r#"{"id": {"S": "k1"}}"#,
        "--output",
        "json",
    ]);
    let got: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(got["Item"]["value"]["S"], "written by a function", "{out}");
}

/// Listeners the function must not reach: one on 127.0.0.1 and one on each of the host's
/// other IPv4 addresses, all on one port.
struct HostListeners {
    port: u16,
    listeners: Vec<TcpListener>,
    addrs: Vec<Ipv4Addr>,
}

impl HostListeners {
    fn open() -> HostListeners {
        let first = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        let mut listeners = vec![first];
        let mut addrs = vec![Ipv4Addr::LOCALHOST];
        for a in sous_sandbox::network::host_addresses() {
            if let Ok(l) = TcpListener::bind(SocketAddr::from((a, port))) {
                listeners.push(l);
                addrs.push(a);
            }
        }
        for l in &listeners {
            l.set_nonblocking(true).unwrap();
        }
        HostListeners {
            port,
            listeners,
            addrs,
        }
    }

    /// None of them accepted a connection.
    fn assert_untouched(&self) {
        for l in &self.listeners {
            assert!(
                l.accept().is_err(),
                "a connection from the function reached {}",
                l.local_addr().unwrap()
            );
        }
    }
}

/// The function reaches the endpoint and nothing else of the host: not the test's listeners
/// (loopback and other addresses), not Sous's API, not its front door.
async fn reaches_exactly_the_endpoint(server: &Server, moto: &Moto, name: &str) {
    let host = HostListeners::open();
    let mut targets = vec![json!(["127.0.0.1", moto.addr.port()])];
    for a in &host.addrs {
        targets.push(json!([a.to_string(), host.port]));
        targets.push(json!([a.to_string(), server.api_addr.port()]));
        targets.push(json!([a.to_string(), server.gateway_addr.port()]));
    }
    let v = call(server, name, json!({"op": "connect", "targets": targets})).await;
    eprintln!("connections from the function: {v:#}");
    let moto_key = format!("127.0.0.1:{}", moto.addr.port());
    assert_eq!(v[&moto_key], "connected", "{v}");
    for (k, r) in v.as_object().unwrap() {
        if *k != moto_key {
            assert!(
                r.as_str().unwrap().starts_with("failed"),
                "{k} was reachable from a function: {v}"
            );
        }
    }
    assert!(!host.addrs.is_empty());
    host.assert_untouched();
}

/// The credentials as documented (docs/SECURITY.md, "Service endpoints").
fn assert_credentials(env: &Value) {
    let akid = env["AWS_ACCESS_KEY_ID"].as_str().unwrap_or_default();
    assert!(akid.starts_with("ASIA") && akid.len() == 20, "{env}");
    assert!(
        akid[4..]
            .chars()
            .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c)),
        "{env}"
    );
    assert_eq!(
        env["AWS_SECRET_ACCESS_KEY"]
            .as_str()
            .unwrap_or_default()
            .len(),
        40,
        "{env}"
    );
    assert!(
        !env["AWS_SESSION_TOKEN"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{env}"
    );
    // Not Sous's own key pair.
    assert_ne!(env["AWS_ACCESS_KEY_ID"], ACCESS_KEY, "{env}");
}

// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_writes_and_reads_dynamodb_through_the_configured_endpoint() {
    let moto = Moto::start();
    let server = Server::start_with(ServerOptions::with_args(&[
        "--service-endpoint",
        &endpoint_arg(&moto),
    ]));
    let name = deploy_probe(&server).await;
    writes_and_reads_through_the_endpoint(&server, &moto, &name).await;
    let env = call(&server, &name, json!({"op": "env"})).await;
    assert_eq!(env["AWS_ENDPOINT_URL_DYNAMODB"], moto.url(), "{env}");
    assert_credentials(&env);
    // The same credentials for every environment of the function in this run; another
    // function gets others.
    let other = deploy_probe(&server).await;
    let env2 = call(&server, &other, json!({"op": "env"})).await;
    assert_ne!(env["AWS_ACCESS_KEY_ID"], env2["AWS_ACCESS_KEY_ID"]);
    assert_ne!(env["AWS_SECRET_ACCESS_KEY"], env2["AWS_SECRET_ACCESS_KEY"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_reaches_the_endpoint_and_nothing_else_of_the_host() {
    let moto = Moto::start();
    // With outbound networking (refused at start when it cannot be set up): the host stays
    // unreachable through the environment's route out too.
    let server = Server::start_with(ServerOptions::with_args(&[
        "--function-network",
        "outbound",
        "--service-endpoint",
        &endpoint_arg(&moto),
    ]));
    let name = deploy_probe(&server).await;
    reaches_exactly_the_endpoint(&server, &moto, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_function_network_none_the_endpoint_is_still_reachable_and_nothing_else() {
    let moto = Moto::start();
    let server = Server::start_with(ServerOptions::with_args(&[
        "--function-network",
        "none",
        "--service-endpoint",
        &endpoint_arg(&moto),
    ]));
    let name = deploy_probe(&server).await;
    writes_and_reads_through_the_endpoint(&server, &moto, &name).await;
    reaches_exactly_the_endpoint(&server, &moto, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_service_endpoints_no_endpoint_variable_is_set_and_credentials_are() {
    let server = Server::start();
    let name = deploy_probe(&server).await;
    let env = call(&server, &name, json!({"op": "env"})).await;
    let endpoints: Vec<&String> = env
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("AWS_ENDPOINT_URL"))
        .collect();
    assert!(endpoints.is_empty(), "{env}");
    assert_credentials(&env);
}

#[test]
fn an_endpoint_that_is_sous_s_own_api_is_refused() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(Server::binary())
        .args(["serve", "--isolation", "none", "--data-dir"])
        .arg(dir.path())
        .args(["--api-addr", &format!("127.0.0.1:{port}")])
        .args(["--gateway-addr", "127.0.0.1:0"])
        .args([
            "--service-endpoint",
            &format!("lambda=http://localhost:{port}"),
        ])
        .env("SOUS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("SOUS_SECRET_ACCESS_KEY", SECRET_KEY)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("Sous's own API"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rootless_a_function_reaches_the_endpoint_and_nothing_else_of_the_host() {
    crate::rootless::require_root();
    let moto = Moto::start();
    let cg = crate::rootless::Delegation::new();
    // With outbound networking through slirp4netns (refused at start when it cannot be set
    // up): the host stays unreachable through it too.
    let server = crate::rootless::start_rootless(
        &cg,
        &[
            "--function-network",
            "outbound",
            "--service-endpoint",
            &endpoint_arg(&moto),
        ],
    );
    let name = deploy_probe(&server).await;
    writes_and_reads_through_the_endpoint(&server, &moto, &name).await;
    reaches_exactly_the_endpoint(&server, &moto, &name).await;
    let env = call(&server, &name, json!({"op": "env"})).await;
    assert_credentials(&env);
}
