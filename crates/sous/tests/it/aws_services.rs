//! Functions that use an AWS service through the SDK their runtime bundles (issue 15): a
//! python3.11 function with `boto3` and a nodejs20.x function with
//! `@aws-sdk/client-dynamodb`, neither packaging its SDK, write and read a table of a real
//! DynamoDB-compatible engine (moto's server, started by the test on a loopback port) that
//! `sous serve --service-endpoint dynamodb=URL` names. The unmodified SDKs find it through
//! `AWS_ENDPOINT_URL_DYNAMODB` and sign with the credentials Sous gives the function.

use aws_sdk_lambda::types::Runtime;
use serde_json::json;

use crate::common::engines::Moto;
use crate::common::*;

const PY_HANDLER: &str = r#"import boto3

ddb = boto3.client("dynamodb")

def handler(event, context):
    ddb.put_item(
        TableName=event["table"],
        Item={"id": {"S": event["id"]}, "note": {"S": event["note"]}},
    )
    got = ddb.get_item(TableName=event["table"], Key={"id": {"S": event["id"]}})
    return {"note": got["Item"]["note"]["S"], "sdk": boto3.__version__}
"#;

const NODE_HANDLER: &str = r#"const { DynamoDBClient, PutItemCommand, GetItemCommand } = require("@aws-sdk/client-dynamodb");
const { DynamoDBDocumentClient, GetCommand } = require("@aws-sdk/lib-dynamodb");

const client = new DynamoDBClient({});
const doc = DynamoDBDocumentClient.from(client);

exports.handler = async (event) => {
  await client.send(new PutItemCommand({
    TableName: event.table,
    Item: { id: { S: event.id }, note: { S: event.note } },
  }));
  const got = await doc.send(new GetCommand({ TableName: event.table, Key: { id: event.id } }));
  return { note: got.Item.note };
};
"#;

fn create_table(moto: &Moto, table: &str) {
    moto.aws_ok(&[
        "dynamodb",
        "create-table",
        "--table-name",
        table,
        "--attribute-definitions",
        "AttributeName=id,AttributeType=S",
        "--key-schema",
        "AttributeName=id,KeyType=HASH",
        "--billing-mode",
        "PAY_PER_REQUEST",
    ]);
}

/// The item `id` of `table`, read through the AWS CLI against the engine.
fn note_in_table(moto: &Moto, table: &str, id: &str) -> String {
    let key = json!({"id": {"S": id}}).to_string();
    let out = moto.aws_ok(&["dynamodb", "get-item", "--table-name", table, "--key", &key]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("get-item JSON");
    v["Item"]["note"]["S"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn server_for(moto: &Moto) -> Server {
    Server::start_with(ServerOptions::with_args(&[
        "--service-endpoint",
        &format!("dynamodb={}", moto.url()),
    ]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_with_the_bundled_boto3_reads_and_writes_dynamodb() {
    let moto = Moto::start();
    let table = unique("notes-py");
    create_table(&moto, &table);
    let server = server_for(&moto);
    let name = unique("py-ddb");
    let zip = zip_entries(&[file("app.py", PY_HANDLER, 0o644)]);
    create_ok(
        &server,
        create(&server.client, &name, &zip)
            .runtime(Runtime::Python311)
            .handler("app.handler")
            .timeout(30),
    )
    .await;
    let event = json!({"table": table, "id": "n1", "note": "from python"}).to_string();
    let out = invoke(&server, &name, event.as_bytes()).await;
    assert_eq!(out.function_error, None, "{}", out.log());
    let got = out.json();
    assert_eq!(got["note"], "from python", "{got}");
    assert!(got["sdk"].as_str().is_some_and(|v| !v.is_empty()), "{got}");
    assert_eq!(note_in_table(&moto, &table, "n1"), "from python");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_with_the_bundled_sdk_v3_reads_and_writes_dynamodb() {
    let moto = Moto::start();
    let table = unique("notes-js");
    create_table(&moto, &table);
    let server = server_for(&moto);
    let name = unique("js-ddb");
    let zip = zip_entries(&[file("index.js", NODE_HANDLER, 0o644)]);
    create_ok(
        &server,
        create(&server.client, &name, &zip)
            .runtime(Runtime::Nodejs20x)
            .handler("index.handler")
            .timeout(30),
    )
    .await;
    let event = json!({"table": table, "id": "n2", "note": "from node"}).to_string();
    let out = invoke(&server, &name, event.as_bytes()).await;
    assert_eq!(out.function_error, None, "{}", out.log());
    assert_eq!(out.json(), json!({"note": "from node"}));
    assert_eq!(note_in_table(&moto, &table, "n2"), "from node");
}

/// A layer's copy of an SDK wins over the bundled one (Lambda's search order: the function's
/// own files, then the layers' `/opt/python` and `/opt/nodejs/node_modules`, then
/// `/var/runtime`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layers_sdk_wins_over_the_bundled_one() {
    let server = Server::start();
    let c = &server.client;
    let layer = zip_entries(&[
        file(
            "python/boto3/__init__.py",
            "__version__ = '0.0-layer'\n",
            0o644,
        ),
        file(
            "nodejs/node_modules/@aws-sdk/client-dynamodb/package.json",
            r#"{"name":"@aws-sdk/client-dynamodb","version":"0.0.0-layer","main":"index.js"}"#,
            0o644,
        ),
        file(
            "nodejs/node_modules/@aws-sdk/client-dynamodb/index.js",
            "exports.fromLayer = true;\n",
            0o644,
        ),
    ]);
    let published = c
        .publish_layer_version()
        .layer_name("sdk-override")
        .content(
            aws_sdk_lambda::types::LayerVersionContentInput::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(layer))
                .build(),
        )
        .send()
        .await
        .expect("PublishLayerVersion");
    let arn = published.layer_version_arn().unwrap();

    let py = unique("py-layer-sdk");
    let code = "import boto3\ndef handler(e, c):\n    return {'sdk': boto3.__version__, 'file': boto3.__file__}\n";
    create_ok(
        &server,
        create(c, &py, &zip_entries(&[file("app.py", code, 0o644)]))
            .runtime(Runtime::Python311)
            .handler("app.handler")
            .layers(arn),
    )
    .await;
    let out = invoke(&server, &py, b"{}").await;
    assert_eq!(out.function_error, None, "{}", out.log());
    assert_eq!(
        out.json(),
        json!({"sdk": "0.0-layer", "file": "/opt/python/boto3/__init__.py"})
    );

    let js = unique("js-layer-sdk");
    let code = "exports.handler = async () => ({ fromLayer: require('@aws-sdk/client-dynamodb').fromLayer === true });\n";
    create_ok(
        &server,
        create(c, &js, &zip_entries(&[file("index.js", code, 0o644)]))
            .runtime(Runtime::Nodejs20x)
            .handler("index.handler")
            .layers(arn),
    )
    .await;
    let out = invoke(&server, &js, b"{}").await;
    assert_eq!(out.function_error, None, "{}", out.log());
    assert_eq!(out.json(), json!({"fromLayer": true}));
}
