//! Unit tests of the serverless.yml translation: variables, then a notes API.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::resolve::{resolve, Settings};
use crate::value::Value;

fn opts(options: &[(&str, &str)], env: &[(&str, &str)]) -> ServerlessOptions {
    let m = |kv: &[(&str, &str)]| {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>()
    };
    ServerlessOptions {
        options: m(options),
        env: m(env),
    }
}

/// The configuration with its variables resolved, as JSON.
fn vars(text: &str, o: &ServerlessOptions) -> serde_json::Value {
    let raw = parse_template("serverless.yml", text).unwrap_or_else(|e| panic!("{e}"));
    node_to_json(&resolve_variables(&raw, "serverless.yml", o).unwrap_or_else(|e| panic!("{e}")))
}

fn vars_err(text: &str, o: &ServerlessOptions) -> TemplateError {
    let raw = parse_template("serverless.yml", text).unwrap_or_else(|e| panic!("{e}"));
    match resolve_variables(&raw, "serverless.yml", o) {
        Ok(n) => panic!("expected an error, resolved {}", node_to_json(&n)),
        Err(e) => e,
    }
}

fn translate_ok(text: &str, o: &ServerlessOptions) -> Translated {
    translate("serverless.yml", text, o).unwrap_or_else(|e| panic!("{e}"))
}

fn translate_err(text: &str) -> TemplateError {
    match translate("serverless.yml", text, &ServerlessOptions::default()) {
        Ok(t) => panic!("expected an error, got {}", node_to_json(&t.template)),
        Err(e) => e,
    }
}

#[test]
fn opt_variables_with_and_without_defaults() {
    let text = "service: s\nx: ${opt:stage}\ny: ${opt:region, 'eu-west-1'}\nz: ${opt:color, \"blue\"}\nn: ${opt:count, 3}\n";
    let v = vars(text, &opts(&[("stage", "prod"), ("color", "red")], &[]));
    assert_eq!(v["x"], "prod");
    assert_eq!(v["y"], "eu-west-1");
    assert_eq!(v["z"], "red");
    assert_eq!(v["n"], 3);
}

#[test]
fn env_variables_come_from_the_given_map() {
    let text = "a: ${env:TABLE}\nb: ${env:MISSING, 'none'}\n";
    let v = vars(text, &opts(&[], &[("TABLE", "notes")]));
    assert_eq!(v, json!({"a": "notes", "b": "none"}));
}

#[test]
fn self_variables_follow_paths_lists_and_other_variables() {
    let text = "\
service: notes
custom:
  table: ${self:service}-${sls:stage}
  sizes: [128, 256]
  nested: {deep: {value: 42}}
provider:
  stage: ${opt:stage, 'dev'}
  environment:
    TABLE: ${self:custom.table}
    SIZE: ${self:custom.sizes.1}
    WHOLE: ${self:custom.nested}
    DEEP: deep=${self:custom.nested.deep.value}
";
    let v = vars(text, &opts(&[], &[]));
    assert_eq!(
        v["provider"]["environment"],
        json!({"TABLE": "notes-dev", "SIZE": 256, "WHOLE": {"deep": {"value": 42}}, "DEEP": "deep=42"})
    );
    let v = vars(text, &opts(&[("stage", "prod")], &[]));
    assert_eq!(v["provider"]["environment"]["TABLE"], "notes-prod");
    assert_eq!(v["provider"]["stage"], "prod");
}

#[test]
fn sls_stage_uses_option_then_provider_then_dev() {
    assert_eq!(vars("s: ${sls:stage}\n", &opts(&[], &[]))["s"], "dev");
    assert_eq!(
        vars("provider: {stage: qa}\ns: ${sls:stage}\n", &opts(&[], &[]))["s"],
        "qa"
    );
    assert_eq!(
        vars(
            "provider: {stage: qa}\ns: ${sls:stage}\n",
            &opts(&[("stage", "prod")], &[])
        )["s"],
        "prod"
    );
}

#[test]
fn nested_fallbacks_and_addresses() {
    let text = "\
custom:
  prod: {memory: 2048}
  dev: {memory: 512}
a: ${self:custom.missing, ${env:Y}}
b: ${self:custom.missing, ${env:NOPE}, 'last'}
c: ${self:custom.${opt:stage, 'dev'}.memory}
d: ${opt:x, ${opt:y, ${env:Y}}}
";
    let v = vars(text, &opts(&[], &[("Y", "from-env")]));
    assert_eq!(v["a"], "from-env");
    assert_eq!(v["b"], "last");
    assert_eq!(v["c"], 512);
    assert_eq!(v["d"], "from-env");
    assert_eq!(
        vars(text, &opts(&[("stage", "prod")], &[("Y", "e")]))["c"],
        2048
    );
}

#[test]
fn cloudformation_substitutions_are_left_alone() {
    let text = "r: {Fn::Sub: 'arn:${AWS::Partition}:s3:::${Bucket}/${opt:stage, dev}'}\n";
    let v = vars(text, &opts(&[], &[]));
    assert_eq!(
        v["r"]["Fn::Sub"],
        "arn:${AWS::Partition}:s3:::${Bucket}/dev"
    );
}

#[test]
fn unresolved_variable_is_an_error_with_its_position() {
    let text = "service: s\nprovider:\n  name: aws\n  stage: ${opt:stage}\n";
    let e = vars_err(text, &opts(&[], &[]));
    assert_eq!(e.kind, ErrorKind::MissingReference);
    assert_eq!(e.path, "provider.stage");
    assert_eq!((e.pos.line, e.pos.column), (4, 10));
    assert!(e.message.contains("${opt:stage}"), "{}", e.message);

    let e = vars_err("a: x-${env:NOPE}\n", &opts(&[], &[]));
    assert_eq!(
        (e.kind, e.path.as_str()),
        (ErrorKind::MissingReference, "a")
    );
    let e = vars_err("a: ${self:custom.nothing}\n", &opts(&[], &[]));
    assert_eq!(e.kind, ErrorKind::MissingReference);
}

#[test]
fn unknown_source_and_bad_syntax_are_errors() {
    let e = vars_err("a: ${ssm:/path}\n", &opts(&[], &[]));
    assert_eq!((e.kind, e.path.as_str()), (ErrorKind::Unsupported, "a"));
    let e = vars_err("a: ${opt:stage\n", &opts(&[], &[]));
    assert_eq!(e.kind, ErrorKind::BadArguments);
}

#[test]
fn cycles_are_errors() {
    let e = vars_err("a: ${self:b}\nb: ${self:a}\n", &opts(&[], &[]));
    assert_eq!(e.kind, ErrorKind::Cycle);
    assert!(e.message.contains("a -> b -> a"), "{}", e.message);
    let e = vars_err("custom:\n  x: ${self:custom}\n", &opts(&[], &[]));
    assert_eq!(e.kind, ErrorKind::Cycle);
    let e = vars_err("a: ${self:a, 'x'}\n", &opts(&[], &[]));
    assert_eq!(e.kind, ErrorKind::Cycle);
}

#[test]
fn logical_id_naming_matches_the_framework() {
    assert_eq!(normalized_name("hello"), "Hello");
    assert_eq!(normalized_name("get-note_v2"), "GetDashnoteUnderscorev2");
    assert_eq!(http_api_route_logical_id("*"), "HttpApiRouteDefault");
    assert_eq!(
        http_api_route_logical_id("GET /notes/{id}"),
        "HttpApiRouteGetNotesIdVar"
    );
    assert_eq!(
        http_api_route_logical_id("POST /some-post"),
        "HttpApiRoutePostSomeDashpost"
    );
    assert_eq!(normalize_path("notes/{id}"), "NotesIdVar");
}

const NOTES: &str = r#"
service: notes
frameworkVersion: '3'

custom:
  tableName: ${self:service}-${sls:stage}-notes

provider:
  name: aws
  runtime: python3.12
  stage: ${opt:stage, 'dev'}
  region: ${opt:region, 'eu-west-1'}
  timeout: 10
  environment:
    TABLE_NAME: ${self:custom.tableName}
    LOG_LEVEL: ${env:LOG_LEVEL, 'info'}
  layers:
    - !Ref DepsLambdaLayer
  httpApi:
    cors: true
  iam:
    role:
      statements:
        - Effect: Allow
          Action: [dynamodb:GetItem, dynamodb:PutItem]
          Resource: !GetAtt NotesTable.Arn

package:
  patterns:
    - '!node_modules/**'
    - 'src/**'

layers:
  deps:
    path: layers/deps
    compatibleRuntimes: [python3.12]

functions:
  create:
    handler: src/create.handler
    memorySize: 256
    environment:
      LOG_LEVEL: debug
    events:
      - httpApi: 'POST /notes'
  get-note:
    handler: src/get.handler
    description: Gets a note
    events:
      - httpApi:
          method: get
          path: /notes/{id}
      - http: GET notes/{id}
  legacy:
    handler: src/legacy.handler
    runtime: nodejs20.x
    events:
      - http:
          method: any
          path: legacy/{proxy+}
          cors: true
      - httpApi: '*'
  cleanup:
    handler: src/cleanup.handler
    events:
      - schedule: rate(1 hour)
      - schedule:
          rate: cron(0 3 * * ? *)
          enabled: false
          input:
            mode: full

resources:
  Resources:
    NotesTable:
      Type: AWS::DynamoDB::Table
      Properties:
        TableName: ${self:custom.tableName}
        BillingMode: PAY_PER_REQUEST
        AttributeDefinitions:
          - {AttributeName: id, AttributeType: S}
        KeySchema:
          - {AttributeName: id, KeyType: HASH}
    CreateLambdaFunction:
      Properties:
        ReservedConcurrentExecutions: 5
  Outputs:
    TableName:
      Value: !Ref NotesTable
"#;

fn notes() -> (Translated, serde_json::Value) {
    let t = translate_ok(NOTES, &opts(&[("stage", "prod")], &[]));
    let j = node_to_json(&t.template);
    (t, j)
}

#[test]
fn notes_service_stage_region_and_package() {
    let (t, _) = notes();
    assert_eq!(t.service, "notes");
    assert_eq!(t.stage, "prod");
    assert_eq!(t.region, "eu-west-1");
    assert_eq!(t.stack_name, "notes-prod");
    assert_eq!(t.package.patterns, vec!["!node_modules/**", "src/**"]);
    assert_eq!(
        t.artifacts["CreateLambdaFunction"],
        Artifact::Service {
            package: t.package.clone()
        }
    );
    assert_eq!(
        t.artifacts["DepsLambdaLayer"],
        Artifact::Layer {
            path: "layers/deps".into(),
            package: Package::default()
        }
    );
}

#[test]
fn notes_functions_get_the_framework_properties() {
    let (_, j) = notes();
    let r = &j["Resources"];
    let create = &r["CreateLambdaFunction"];
    assert_eq!(create["Type"], "AWS::Lambda::Function");
    let p = &create["Properties"];
    assert_eq!(p["FunctionName"], "notes-prod-create");
    assert_eq!(p["Handler"], "src/create.handler");
    assert_eq!(p["Runtime"], "python3.12");
    assert_eq!(p["MemorySize"], 256);
    assert_eq!(p["Timeout"], 10);
    // The function's environment over the provider's; resources merged over generated.
    assert_eq!(
        p["Environment"]["Variables"],
        json!({"TABLE_NAME": "notes-prod-notes", "LOG_LEVEL": "debug"})
    );
    assert_eq!(p["ReservedConcurrentExecutions"], 5);
    assert_eq!(p["Layers"], json!([{"Ref": "DepsLambdaLayer"}]));
    assert_eq!(
        p["Role"],
        json!({"Fn::GetAtt": ["IamRoleLambdaExecution", "Arn"]})
    );

    let get = &r["GetDashnoteLambdaFunction"]["Properties"];
    assert_eq!(get["FunctionName"], "notes-prod-get-note");
    assert_eq!(get["MemorySize"], 1024);
    assert_eq!(get["Description"], "Gets a note");
    assert_eq!(get["Environment"]["Variables"]["LOG_LEVEL"], "info");
    assert_eq!(
        r["LegacyLambdaFunction"]["Properties"]["Runtime"],
        "nodejs20.x"
    );

    let layer = &r["DepsLambdaLayer"];
    assert_eq!(layer["Type"], "AWS::Lambda::LayerVersion");
    assert_eq!(layer["Properties"]["LayerName"], "deps");
    assert_eq!(
        layer["Properties"]["CompatibleRuntimes"],
        json!(["python3.12"])
    );
}

#[test]
fn notes_role_records_the_statements() {
    let (_, j) = notes();
    let role = &j["Resources"]["IamRoleLambdaExecution"];
    assert_eq!(role["Type"], "AWS::IAM::Role");
    let stmts = &role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"];
    let last = &stmts[stmts.as_array().unwrap().len() - 1];
    assert_eq!(
        last,
        &json!({"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem"],
                "Resource": {"Fn::GetAtt": ["NotesTable", "Arn"]}})
    );
    assert_eq!(
        role["Properties"]["RoleName"],
        json!({"Fn::Join": ["-", ["notes", "prod", {"Ref": "AWS::Region"}, "lambdaRole"]]})
    );
}

#[test]
fn notes_http_api_routes() {
    let (_, j) = notes();
    let r = &j["Resources"];
    assert_eq!(r["HttpApi"]["Type"], "AWS::ApiGatewayV2::Api");
    assert_eq!(r["HttpApi"]["Properties"]["Name"], "prod-notes");
    let cors = &r["HttpApi"]["Properties"]["CorsConfiguration"];
    assert_eq!(cors["AllowOrigins"], json!(["*"]));
    assert_eq!(
        cors["AllowMethods"],
        json!(["OPTIONS", "POST", "GET", "PUT", "PATCH", "HEAD", "DELETE"])
    );
    assert_eq!(cors["AllowHeaders"].as_array().unwrap().len(), 6);
    assert!(cors.get("AllowCredentials").is_none());
    assert_eq!(
        r["HttpApiStage"]["Properties"]["DefaultRouteSettings"],
        json!({"DetailedMetricsEnabled": false})
    );
    assert_eq!(r["HttpApiStage"]["Properties"]["StageName"], "$default");
    let post = &r["HttpApiRoutePostNotes"];
    assert_eq!(post["Properties"]["RouteKey"], "POST /notes");
    assert_eq!(post["DependsOn"], "HttpApiIntegrationCreate");
    assert_eq!(
        r["HttpApiRouteGetNotesIdVar"]["Properties"]["RouteKey"],
        "GET /notes/{id}"
    );
    assert_eq!(
        r["HttpApiRouteDefault"]["Properties"]["RouteKey"],
        "$default"
    );
    let integ = &r["HttpApiIntegrationGetDashnote"]["Properties"];
    assert_eq!(integ["PayloadFormatVersion"], "2.0");
    assert_eq!(integ["TimeoutInMillis"], 10500);
    assert_eq!(
        integ["IntegrationUri"],
        json!({"Fn::GetAtt": ["GetDashnoteLambdaFunction", "Arn"]})
    );
    assert_eq!(
        r["CreateLambdaPermissionHttpApi"]["Properties"]["Principal"],
        "apigateway.amazonaws.com"
    );
    assert!(j["Outputs"]["HttpApiUrl"]["Value"]["Fn::Join"].is_array());
}

#[test]
fn notes_http_events_are_an_http_api_with_payload_1() {
    let (_, j) = notes();
    let r = &j["Resources"];
    assert_eq!(r["ApiGatewayRestApi"]["Type"], "AWS::ApiGatewayV2::Api");
    assert_eq!(r["ApiGatewayStage"]["Properties"]["StageName"], "prod");
    assert_eq!(
        r["ApiGatewayMethodNotesIdVarGet"]["Properties"]["RouteKey"],
        "GET /notes/{id}"
    );
    assert_eq!(
        r["ApiGatewayMethodLegacyProxyVarAny"]["Properties"]["RouteKey"],
        "ANY /legacy/{proxy+}"
    );
    assert_eq!(
        r["ApiGatewayIntegrationLegacy"]["Properties"]["PayloadFormatVersion"],
        "1.0"
    );
    assert!(r["LegacyLambdaPermissionApiGateway"].is_object());
    assert_eq!(
        r["ApiGatewayRestApi"]["Properties"]["CorsConfiguration"]["AllowMethods"],
        json!(["OPTIONS", "GET", "POST", "PUT", "PATCH", "HEAD", "DELETE"])
    );
    assert!(j["Outputs"]["ServiceEndpoint"].is_object());
}

#[test]
fn notes_schedules() {
    let (_, j) = notes();
    let r = &j["Resources"];
    let one = &r["CleanupEventsRuleSchedule1"];
    assert_eq!(one["Type"], "AWS::Events::Rule");
    assert_eq!(one["Properties"]["ScheduleExpression"], "rate(1 hour)");
    assert_eq!(one["Properties"]["State"], "ENABLED");
    assert_eq!(one["Properties"]["Targets"][0]["Id"], "cleanupSchedule");
    let two = &r["CleanupEventsRuleSchedule2"]["Properties"];
    assert_eq!(two["ScheduleExpression"], "cron(0 3 * * ? *)");
    assert_eq!(two["State"], "DISABLED");
    assert_eq!(two["Targets"][0]["Input"], r#"{"mode":"full"}"#);
    assert_eq!(
        r["CleanupLambdaPermissionEventsRuleSchedule2"]["Properties"]["Principal"],
        "events.amazonaws.com"
    );
}

#[test]
fn notes_resources_and_outputs_are_merged_and_the_template_resolves() {
    let (t, j) = notes();
    assert_eq!(
        j["Resources"]["NotesTable"]["Properties"]["TableName"],
        "notes-prod-notes"
    );
    assert_eq!(
        j["Outputs"]["TableName"]["Value"],
        json!({"Ref": "NotesTable"})
    );
    let settings = Settings {
        region: t.region.clone(),
        account_id: "123456789012".into(),
        stack_name: t.stack_name.clone(),
        stack_id: None,
        parameters: BTreeMap::new(),
    };
    let resolved =
        resolve(&t.template, "serverless.yml", &settings).unwrap_or_else(|e| panic!("{e}"));
    let pos = |a: &str| resolved.order.iter().position(|x| x == a).unwrap();
    assert!(pos("IamRoleLambdaExecution") < pos("CreateLambdaFunction"));
    assert!(pos("DepsLambdaLayer") < pos("CreateLambdaFunction"));
    assert!(pos("HttpApiIntegrationCreate") < pos("HttpApiRoutePostNotes"));
    assert!(pos("CleanupEventsRuleSchedule1") < pos("CleanupLambdaPermissionEventsRuleSchedule1"));
    assert_eq!(
        resolved.resources["CreateLambdaFunction"].properties["FunctionName"],
        Value::String("notes-prod-create".into())
    );
    assert!(resolved.outputs.contains_key("HttpApiUrl"));
}

#[test]
fn defaults_when_the_provider_says_little() {
    let t = translate_ok(
        "service: tiny\nprovider:\n  name: aws\n  runtime: nodejs20.x\nfunctions:\n  hello:\n    handler: h.handler\n",
        &ServerlessOptions::default(),
    );
    assert_eq!((t.stage.as_str(), t.region.as_str()), ("dev", "us-east-1"));
    let j = node_to_json(&t.template);
    let p = &j["Resources"]["HelloLambdaFunction"]["Properties"];
    assert_eq!(p["FunctionName"], "tiny-dev-hello");
    assert_eq!(p["MemorySize"], 1024);
    assert_eq!(p["Timeout"], 6);
    assert!(p.get("Environment").is_none());
    assert!(j.get("Outputs").is_none());
}

#[test]
fn unknown_top_level_key_is_an_error_with_its_position() {
    let e = translate_err("service: s\nprovider: {name: aws}\nfuncions:\n  a: {handler: x}\n");
    assert_eq!(e.kind, ErrorKind::Structure);
    assert_eq!(e.path, "funcions");
    assert_eq!((e.pos.line, e.pos.column), (3, 1));
}

#[test]
fn other_providers_are_errors() {
    let e = translate_err("service: s\nprovider:\n  name: azure\n");
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert_eq!(e.path, "provider.name");
    assert_eq!((e.pos.line, e.pos.column), (3, 9));
}

#[test]
fn unknown_event_types_are_errors() {
    let e = translate_err(
        "service: s\nprovider: {name: aws}\nfunctions:\n  a:\n    handler: x.y\n    events:\n      - sqs: arn:aws:sqs:us-east-1:1:q\n",
    );
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert_eq!(e.path, "functions.a.events[0]");
    assert_eq!((e.pos.line, e.pos.column), (7, 9));
    assert!(e.message.contains("'sqs'"), "{}", e.message);
}

#[test]
fn bad_events_are_errors() {
    let base =
        "service: s\nprovider: {name: aws}\nfunctions:\n  a:\n    handler: x.y\n    events:\n";
    let e = translate_err(&format!("{base}      - schedule: every hour\n"));
    assert_eq!(e.path, "functions.a.events[0].schedule");
    let e = translate_err(&format!("{base}      - httpApi: 'GET notes'\n"));
    assert_eq!(e.path, "functions.a.events[0].httpApi");
    let e = translate_err(&format!(
        "{base}      - httpApi: 'GET /x'\n      - httpApi: 'GET /x'\n"
    ));
    assert!(e.message.contains("duplicate route"), "{}", e.message);
}

#[test]
fn plugins_are_errors() {
    let e = translate_err("service: s\nprovider: {name: aws}\nplugins:\n  - serverless-offline\n");
    assert_eq!(
        (e.kind, e.path.as_str()),
        (ErrorKind::Unsupported, "plugins")
    );
}

#[test]
fn http_api_settings_payload_name_and_cors_object() {
    let text = "\
service: svc
provider:
  name: aws
  timeout: 40
  httpApi:
    name: my-api
    payload: '1.0'
    cors:
      allowedOrigins: https://example.com
      allowedMethods: [GET]
      allowCredentials: true
      maxAge: 600
functions:
  a:
    handler: a.h
    events:
      - httpApi: {path: '*'}
  b:
    handler: b.h
    httpApi: {payload: '2.0'}
    events:
      - httpApi: {method: '*', path: /b}
";
    let j = node_to_json(&translate_ok(text, &ServerlessOptions::default()).template);
    let r = &j["Resources"];
    assert_eq!(r["HttpApi"]["Properties"]["Name"], "my-api");
    assert_eq!(
        r["HttpApi"]["Properties"]["CorsConfiguration"],
        json!({"AllowCredentials": true,
               "AllowHeaders": ["Content-Type", "X-Amz-Date", "Authorization", "X-Api-Key",
                                "X-Amz-Security-Token", "X-Amz-User-Agent"],
               "AllowMethods": ["GET"], "AllowOrigins": ["https://example.com"], "MaxAge": 600})
    );
    assert_eq!(
        r["HttpApiRouteDefault"]["Properties"]["RouteKey"],
        "$default"
    );
    assert_eq!(r["HttpApiRouteAnyB"]["Properties"]["RouteKey"], "ANY /b");
    let a = &r["HttpApiIntegrationA"]["Properties"];
    assert_eq!(a["PayloadFormatVersion"], "1.0");
    // The function's 40 s capped at API Gateway's 29 s.
    assert_eq!(a["TimeoutInMillis"], 29000);
    assert_eq!(
        r["HttpApiIntegrationB"]["Properties"]["PayloadFormatVersion"],
        "2.0"
    );
}

#[test]
fn invalid_methods_are_errors() {
    let e = translate_err(
        "service: s\nprovider: {name: aws}\nfunctions:\n  a:\n    handler: x.y\n    events:\n      - httpApi: 'FETCH /x'\n",
    );
    assert_eq!(e.path, "functions.a.events[0].httpApi");
    assert!(
        e.message.contains("invalid method 'FETCH'"),
        "{}",
        e.message
    );
}

#[test]
fn a_role_of_their_own_replaces_the_generated_one() {
    let text = "\
service: s
provider:
  name: aws
  iam:
    role: arn:aws:iam::123456789012:role/existing
functions:
  a:
    handler: a.h
  b:
    handler: b.h
    role: MyRole
";
    let j = node_to_json(&translate_ok(text, &ServerlessOptions::default()).template);
    let r = &j["Resources"];
    assert!(r.get("IamRoleLambdaExecution").is_none());
    assert_eq!(
        r["ALambdaFunction"]["Properties"]["Role"],
        "arn:aws:iam::123456789012:role/existing"
    );
    assert!(r["ALambdaFunction"].get("DependsOn").is_none());
    assert_eq!(
        r["BLambdaFunction"]["Properties"]["Role"],
        json!({"Fn::GetAtt": ["MyRole", "Arn"]})
    );
}
