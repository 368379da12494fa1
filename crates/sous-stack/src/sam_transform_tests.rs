//! Unit tests of the SAM transform, one inline template each.

use std::collections::BTreeMap;

use super::transform;
use crate::{load, ErrorKind, Part, Pos, ResolvedTemplate, Settings, TemplateError, Value};

fn settings() -> Settings {
    Settings {
        region: "us-east-1".into(),
        account_id: "123456789012".into(),
        stack_name: "notes".into(),
        stack_id: None,
        parameters: BTreeMap::new(),
    }
}

const HEAD: &str = "Transform: AWS::Serverless-2016-10-31\nResources:\n";

fn sam(resources: &str) -> ResolvedTemplate {
    let text = format!("{HEAD}{resources}");
    let t = load("template.yaml", &text, &settings()).unwrap_or_else(|e| panic!("{e}"));
    transform(&t, "template.yaml", &settings()).unwrap_or_else(|e| panic!("{e}"))
}

fn sam_err(resources: &str) -> TemplateError {
    let text = format!("{HEAD}{resources}");
    let t = load("template.yaml", &text, &settings()).unwrap_or_else(|e| panic!("{e}"));
    match transform(&t, "template.yaml", &settings()) {
        Ok(t) => panic!("expected an error, transformed {:?}", t.resources.keys()),
        Err(e) => e,
    }
}

fn s(v: &str) -> Value {
    Value::String(v.into())
}

fn prop<'a>(t: &'a ResolvedTemplate, res: &str, key: &str) -> &'a Value {
    t.resources[res]
        .properties
        .get(key)
        .unwrap_or_else(|| panic!("{res} has no {key}: {:?}", t.resources[res].properties))
}

fn get<'a>(v: &'a Value, key: &str) -> &'a Value {
    match v {
        Value::Map(m) => &m[key],
        other => panic!("not a map: {other:?}"),
    }
}

fn types(t: &ResolvedTemplate) -> Vec<(String, String)> {
    t.resources
        .values()
        .map(|r| (r.logical_id.clone(), r.resource_type.clone()))
        .collect()
}

fn ids(t: &ResolvedTemplate) -> Vec<&str> {
    t.resources.keys().map(String::as_str).collect()
}

#[test]
fn a_function_becomes_a_lambda_function_and_its_role() {
    let t = sam(r#"
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Runtime: python3.12
      MemorySize: 256
      Timeout: 10
      Description: notes
      Architectures: [arm64]
      EphemeralStorage: {Size: 1024}
      ReservedConcurrentExecutions: 5
      Layers: [arn:aws:lambda:us-east-1:123456789012:layer:x:1]
      Environment: {Variables: {A: b}}
      DeadLetterQueue: {Type: SQS, TargetArn: arn:aws:sqs:us-east-1:123456789012:dlq}
      Tags: {team: a}
      Policies:
        - AmazonDynamoDBReadOnlyAccess
        - DynamoDBCrudPolicy: {TableName: notes}
        - Statement: [{Effect: Allow, Action: s3:GetObject, Resource: "*"}]
"#);
    assert_eq!(
        types(&t),
        [
            ("Fn".to_string(), "AWS::Lambda::Function".to_string()),
            ("FnRole".to_string(), "AWS::IAM::Role".to_string()),
        ]
    );
    assert_eq!(prop(&t, "Fn", "CodeUri"), &s("src/"));
    assert!(!t.resources["Fn"].properties.contains_key("Code"));
    for (k, v) in [
        ("Handler", s("app.handler")),
        ("Runtime", s("python3.12")),
        ("MemorySize", Value::Number("256".into())),
        ("Timeout", Value::Number("10".into())),
        ("Description", s("notes")),
        ("ReservedConcurrentExecutions", Value::Number("5".into())),
    ] {
        assert_eq!(prop(&t, "Fn", k), &v, "{k}");
    }
    assert_eq!(
        prop(&t, "Fn", "Architectures"),
        &Value::List(vec![s("arm64")])
    );
    assert_eq!(
        get(prop(&t, "Fn", "EphemeralStorage"), "Size"),
        &Value::Number("1024".into())
    );
    assert_eq!(
        get(get(prop(&t, "Fn", "Environment"), "Variables"), "A"),
        &s("b")
    );
    assert_eq!(
        get(prop(&t, "Fn", "DeadLetterConfig"), "TargetArn"),
        &s("arn:aws:sqs:us-east-1:123456789012:dlq")
    );
    assert!(!t.resources["Fn"].properties.contains_key("DeadLetterQueue"));
    assert_eq!(
        prop(&t, "Fn", "Role"),
        &Value::GetAtt("FnRole".into(), "Arn".into())
    );
    let Value::List(tags) = prop(&t, "Fn", "Tags") else {
        panic!()
    };
    assert_eq!(get(&tags[0], "Key"), &s("lambda:createdBy"));
    assert_eq!(get(&tags[1], "Key"), &s("team"));
    assert_eq!(get(&tags[1], "Value"), &s("a"));

    let Value::List(managed) = prop(&t, "FnRole", "ManagedPolicyArns") else {
        panic!()
    };
    assert_eq!(
        managed,
        &[
            s("arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"),
            s("arn:aws:iam::aws:policy/AmazonDynamoDBReadOnlyAccess"),
        ]
    );
    let Value::List(inline) = prop(&t, "FnRole", "Policies") else {
        panic!()
    };
    assert_eq!(get(&inline[0], "PolicyName"), &s("FnRolePolicy1"));
    assert!(matches!(
        get(&inline[0], "SamPolicyTemplate"),
        Value::Map(_)
    ));
    assert_eq!(get(&inline[1], "PolicyName"), &s("FnRolePolicy2"));
    assert!(matches!(get(&inline[1], "PolicyDocument"), Value::Map(_)));
    assert_eq!(t.resources["Fn"].dependencies, ["FnRole"]);
    assert_eq!(t.order, ["FnRole", "Fn"]);
    assert!(t.implicit.is_empty());
}

#[test]
fn code_locations() {
    let t = sam(r#"
  Inline:
    Type: AWS::Serverless::Function
    Properties: {InlineCode: "def handler(e, c): return 1", Handler: index.handler, Runtime: python3.12, Role: arn:aws:iam::123456789012:role/r}
  S3:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: s3://bucket/path/code.zip, Handler: a.b, Runtime: python3.12}
  Obj:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: {Bucket: b, Key: k.zip, Version: "3"}
      Handler: a.b
      Runtime: python3.12
"#);
    assert_eq!(
        get(prop(&t, "Inline", "Code"), "ZipFile"),
        &s("def handler(e, c): return 1")
    );
    // A given Role: no generated role.
    assert!(!t.resources.contains_key("InlineRole"));
    assert_eq!(
        prop(&t, "Inline", "Role"),
        &s("arn:aws:iam::123456789012:role/r")
    );
    assert_eq!(get(prop(&t, "S3", "Code"), "S3Bucket"), &s("bucket"));
    assert_eq!(get(prop(&t, "S3", "Code"), "S3Key"), &s("path/code.zip"));
    assert_eq!(get(prop(&t, "Obj", "Code"), "S3Bucket"), &s("b"));
    assert_eq!(get(prop(&t, "Obj", "Code"), "S3Key"), &s("k.zip"));
    assert_eq!(get(prop(&t, "Obj", "Code"), "S3ObjectVersion"), &s("3"));

    let e = sam_err("  F:\n    Type: AWS::Serverless::Function\n    Properties: {Handler: a.b, Runtime: python3.12}\n");
    assert_eq!(e.path, "Resources.F.Properties");
    assert!(e.message.contains("CodeUri"), "{e}");
}

#[test]
fn auto_publish_alias_makes_a_version_and_an_alias() {
    let text = r#"
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Runtime: python3.12
      AutoPublishAlias: live
      VersionDescription: v
      ProvisionedConcurrencyConfig: {ProvisionedConcurrentExecutions: 2}
  Other:
    Type: AWS::SQS::Queue
    Properties:
      Tags:
        - {Key: alias, Value: !Ref Fn.Alias}
        - {Key: version, Value: !Ref Fn.Version}
"#;
    let t = sam(text);
    let version = ids(&t)
        .into_iter()
        .find(|id| id.starts_with("FnVersion"))
        .expect("a version")
        .to_string();
    let hash = &version["FnVersion".len()..];
    assert_eq!(hash.len(), 10);
    assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(t.resources[&version].resource_type, "AWS::Lambda::Version");
    assert_eq!(prop(&t, &version, "FunctionName"), &Value::Ref("Fn".into()));
    assert_eq!(prop(&t, &version, "Description"), &s("v"));
    assert_eq!(
        t.resources["FnAliaslive"].resource_type,
        "AWS::Lambda::Alias"
    );
    assert_eq!(prop(&t, "FnAliaslive", "Name"), &s("live"));
    assert_eq!(
        prop(&t, "FnAliaslive", "FunctionVersion"),
        &Value::GetAtt(version.clone(), "Version".into())
    );
    assert_eq!(
        get(
            prop(&t, "FnAliaslive", "ProvisionedConcurrencyConfig"),
            "ProvisionedConcurrentExecutions"
        ),
        &Value::Number("2".into())
    );
    // References to the referenceable properties name the generated resources.
    assert_eq!(
        t.resources["Other"].dependencies,
        ["FnAliaslive".to_string(), version.clone()]
    );
    let pos = |id: &str| t.order.iter().position(|x| x == id).unwrap();
    assert!(pos("Fn") < pos(&version));
    assert!(pos(&version) < pos("FnAliaslive"));
    assert!(pos("FnAliaslive") < pos("Other"));

    // The hash is stable, and follows the code location.
    assert!(sam(text).resources.contains_key(&version));
    let moved = sam(&text.replace("CodeUri: src/", "CodeUri: s3://b/k.zip"));
    assert!(!moved.resources.contains_key(&version));

    let e = sam_err("  F:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: x, Handler: a.b, Runtime: python3.12, ProvisionedConcurrencyConfig: {ProvisionedConcurrentExecutions: 1}}\n");
    assert!(e.message.contains("AutoPublishAlias"), "{e}");
}

#[test]
fn event_invoke_config_and_function_url() {
    let t = sam(r#"
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Runtime: python3.12
      AutoPublishAlias: live
      EventInvokeConfig:
        MaximumEventAgeInSeconds: 60
        MaximumRetryAttempts: 1
        DestinationConfig:
          OnFailure: {Type: SQS, Destination: arn:aws:sqs:us-east-1:123456789012:q}
      FunctionUrlConfig: {AuthType: NONE, InvokeMode: BUFFERED}
  Plain:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Runtime: python3.12
      EventInvokeConfig: {MaximumRetryAttempts: 0}
      FunctionUrlConfig: {AuthType: AWS_IAM}
"#);
    let c = "FnEventInvokeConfig";
    assert_eq!(
        t.resources[c].resource_type,
        "AWS::Lambda::EventInvokeConfig"
    );
    assert_eq!(prop(&t, c, "FunctionName"), &Value::Ref("Fn".into()));
    assert_eq!(prop(&t, c, "Qualifier"), &s("live"));
    assert_eq!(
        get(
            get(prop(&t, c, "DestinationConfig"), "OnFailure"),
            "Destination"
        ),
        &s("arn:aws:sqs:us-east-1:123456789012:q")
    );
    assert_eq!(
        prop(&t, "PlainEventInvokeConfig", "Qualifier"),
        &s("$LATEST")
    );
    assert_eq!(t.resources["FnUrl"].resource_type, "AWS::Lambda::Url");
    assert_eq!(prop(&t, "FnUrl", "AuthType"), &s("NONE"));
    assert_eq!(prop(&t, "FnUrl", "Qualifier"), &s("live"));
    assert_eq!(
        prop(&t, "FnUrl", "TargetFunctionArn"),
        &Value::Ref("Fn".into())
    );
    assert!(t.resources["FnUrl"]
        .dependencies
        .contains(&"FnAliaslive".into()));
    let p = "FnUrlPublicPermissions";
    assert_eq!(t.resources[p].resource_type, "AWS::Lambda::Permission");
    assert_eq!(prop(&t, p, "Action"), &s("lambda:InvokeFunctionUrl"));
    assert_eq!(prop(&t, p, "Principal"), &s("*"));
    assert_eq!(prop(&t, p, "FunctionUrlAuthType"), &s("NONE"));
    // AWS_IAM: no public permission.
    assert!(t.resources.contains_key("PlainUrl"));
    assert!(!t.resources.contains_key("PlainUrlPublicPermissions"));
}

#[test]
fn http_api_events_use_the_implicit_api_once() {
    let t = sam(r#"
  List:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.list
      Runtime: python3.12
      Events:
        Get: {Type: HttpApi, Properties: {Path: /notes, Method: get}}
  Catch:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.all
      Runtime: python3.12
      Events:
        All: {Type: HttpApi}
Outputs:
  Url:
    Value: !Sub "https://${ServerlessHttpApi}.execute-api.${AWS::Region}.amazonaws.com/"
  Stage:
    Value: !Ref ServerlessHttpApi.Stage
"#);
    assert_eq!(
        t.resources["ServerlessHttpApi"].resource_type,
        "AWS::ApiGatewayV2::Api"
    );
    assert_eq!(prop(&t, "ServerlessHttpApi", "ProtocolType"), &s("HTTP"));
    let stage = "ServerlessHttpApiApiGatewayDefaultStage";
    assert_eq!(t.resources[stage].resource_type, "AWS::ApiGatewayV2::Stage");
    assert_eq!(prop(&t, stage, "StageName"), &s("$default"));
    assert_eq!(prop(&t, stage, "AutoDeploy"), &Value::Bool(true));
    assert_eq!(
        t.resources
            .values()
            .filter(|r| r.resource_type == "AWS::ApiGatewayV2::Api")
            .count(),
        1
    );
    assert_eq!(
        t.resources["ListGetIntegration"].resource_type,
        "AWS::ApiGatewayV2::Integration"
    );
    assert_eq!(
        prop(&t, "ListGetIntegration", "IntegrationUri"),
        &Value::GetAtt("List".into(), "Arn".into())
    );
    assert_eq!(
        prop(&t, "ListGetIntegration", "PayloadFormatVersion"),
        &s("2.0")
    );
    assert_eq!(prop(&t, "ListGetRoute", "RouteKey"), &s("GET /notes"));
    assert_eq!(
        prop(&t, "ListGetRoute", "Target"),
        &Value::Text(vec![
            Part::Lit("integrations/".into()),
            Part::Ref("ListGetIntegration".into())
        ])
    );
    assert_eq!(prop(&t, "CatchAllRoute", "RouteKey"), &s("$default"));
    let perm = "ListGetPermission";
    assert_eq!(t.resources[perm].resource_type, "AWS::Lambda::Permission");
    assert_eq!(prop(&t, perm, "Principal"), &s("apigateway.amazonaws.com"));
    assert_eq!(prop(&t, perm, "FunctionName"), &Value::Ref("List".into()));
    assert_eq!(
        prop(&t, perm, "SourceArn"),
        &Value::Text(vec![
            Part::Lit("arn:aws:execute-api:us-east-1:123456789012:".into()),
            Part::Ref("ServerlessHttpApi".into()),
            Part::Lit("/*".into())
        ])
    );
    assert_eq!(
        t.resources["ListGetRoute"].dependencies,
        ["ServerlessHttpApi", "ListGetIntegration"]
    );
    assert_eq!(t.outputs["Stage"].value, Value::Ref(stage.into()));
    assert_eq!(
        t.outputs["Url"].value.references(),
        ["ServerlessHttpApi".to_string()]
    );
}

#[test]
fn http_api_resources_and_events_naming_them() {
    let t = sam(r#"
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      StageName: v1
      CorsConfiguration: true
      Tags: {a: b}
  Default:
    Type: AWS::Serverless::HttpApi
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Runtime: python3.12
      AutoPublishAlias: live
      Events:
        Get:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Path: "/notes/{id}", Method: GET, PayloadFormatVersion: "1.0", TimeoutInMillis: 5000}
"#);
    assert_eq!(t.resources["Api"].resource_type, "AWS::ApiGatewayV2::Api");
    assert_eq!(
        get(prop(&t, "Api", "CorsConfiguration"), "AllowOrigins"),
        &Value::List(vec![s("*")])
    );
    assert_eq!(get(prop(&t, "Api", "Tags"), "a"), &s("b"));
    assert_eq!(prop(&t, "Apiv1Stage", "StageName"), &s("v1"));
    assert_eq!(prop(&t, "Apiv1Stage", "ApiId"), &Value::Ref("Api".into()));
    assert_eq!(
        prop(&t, "DefaultApiGatewayDefaultStage", "StageName"),
        &s("$default")
    );
    assert!(!t.resources.contains_key("ServerlessHttpApi"));
    assert_eq!(prop(&t, "FnGetRoute", "ApiId"), &Value::Ref("Api".into()));
    assert_eq!(prop(&t, "FnGetRoute", "RouteKey"), &s("GET /notes/{id}"));
    assert_eq!(
        prop(&t, "FnGetIntegration", "PayloadFormatVersion"),
        &s("1.0")
    );
    assert_eq!(
        prop(&t, "FnGetIntegration", "TimeoutInMillis"),
        &Value::Number("5000".into())
    );
    // With an alias, events invoke the alias.
    assert_eq!(
        prop(&t, "FnGetIntegration", "IntegrationUri"),
        &Value::Ref("FnAliaslive".into())
    );
    assert_eq!(
        prop(&t, "FnGetPermission", "FunctionName"),
        &Value::Ref("FnAliaslive".into())
    );
}

#[test]
fn rest_apis_are_served_as_http_apis_with_payload_1_0() {
    let t = sam(r#"
  Rest:
    Type: AWS::Serverless::Api
    Properties:
      StageName: dev
      Cors: "'*'"
      Variables: {a: b}
      BinaryMediaTypes: [image/png]
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Runtime: python3.12
      Events:
        Implicit: {Type: Api, Properties: {Path: /notes, Method: any, Auth: {Authorizer: NONE}}}
        Explicit: {Type: Api, Properties: {RestApiId: !Ref Rest, Path: /x, Method: post}}
Outputs:
  Url:
    Value: !Sub "https://${ServerlessRestApi}.execute-api.${AWS::Region}.amazonaws.com/Prod/"
"#);
    for api in ["Rest", "ServerlessRestApi"] {
        assert_eq!(t.resources[api].resource_type, "AWS::ApiGatewayV2::Api");
        assert_eq!(prop(&t, api, "ProtocolType"), &s("HTTP"));
        assert_eq!(prop(&t, api, "SousServedAs"), &s("AWS::Serverless::Api"));
        assert_eq!(prop(&t, api, "SousPayloadFormatVersion"), &s("1.0"));
    }
    assert_eq!(
        get(prop(&t, "Rest", "CorsConfiguration"), "AllowOrigins"),
        &Value::List(vec![s("*")])
    );
    assert_eq!(
        get(prop(&t, "Rest", "SousRestProperties"), "BinaryMediaTypes"),
        &Value::List(vec![s("image/png")])
    );
    assert_eq!(prop(&t, "RestdevStage", "StageName"), &s("dev"));
    assert_eq!(
        get(prop(&t, "RestdevStage", "StageVariables"), "a"),
        &s("b")
    );
    assert_eq!(
        prop(&t, "ServerlessRestApiProdStage", "StageName"),
        &s("Prod")
    );
    assert_eq!(prop(&t, "FnImplicitRoute", "RouteKey"), &s("ANY /notes"));
    assert_eq!(
        prop(&t, "FnImplicitRoute", "ApiId"),
        &Value::Ref("ServerlessRestApi".into())
    );
    assert_eq!(prop(&t, "FnExplicitRoute", "RouteKey"), &s("POST /x"));
    assert_eq!(
        prop(&t, "FnExplicitRoute", "ApiId"),
        &Value::Ref("Rest".into())
    );
    for i in ["FnImplicitIntegration", "FnExplicitIntegration"] {
        assert_eq!(prop(&t, i, "PayloadFormatVersion"), &s("1.0"));
    }

    let e = sam_err("  Rest:\n    Type: AWS::Serverless::Api\n    Properties: {StageName: a, DefinitionBody: {}}\n");
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert_eq!(e.path, "Resources.Rest.Properties.DefinitionBody");
    // The deployment SAM generates for a REST API does not exist in the HTTP API form.
    let e = sam_err("  Rest:\n    Type: AWS::Serverless::Api\n    Properties: {StageName: a}\n  Q:\n    Type: AWS::SQS::Queue\n    Properties: {QueueName: !Ref Rest.Deployment}\n");
    assert_eq!(e.kind, ErrorKind::MissingReference);
    assert_eq!(e.path, "Resources.Q");
    assert!(e.message.contains("deployment"), "{e}");
}

#[test]
fn schedule_events_become_rules_with_permissions() {
    let t = sam(r#"
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Runtime: python3.12
      Events:
        Nightly:
          Type: Schedule
          Properties: {Schedule: rate(1 day), Input: '{"a": 1}', Enabled: false}
        Hourly:
          Type: ScheduleV2
          Properties: {ScheduleExpression: rate(1 hour), ScheduleExpressionTimezone: UTC}
"#);
    let rule = "FnNightly";
    assert_eq!(t.resources[rule].resource_type, "AWS::Events::Rule");
    assert_eq!(prop(&t, rule, "ScheduleExpression"), &s("rate(1 day)"));
    assert_eq!(prop(&t, rule, "State"), &s("DISABLED"));
    let Value::List(targets) = prop(&t, rule, "Targets") else {
        panic!()
    };
    assert_eq!(get(&targets[0], "Id"), &s("FnNightlyLambdaTarget"));
    assert_eq!(
        get(&targets[0], "Arn"),
        &Value::GetAtt("Fn".into(), "Arn".into())
    );
    assert_eq!(get(&targets[0], "Input"), &s(r#"{"a": 1}"#));
    let perm = "FnNightlyPermission";
    assert_eq!(prop(&t, perm, "Principal"), &s("events.amazonaws.com"));
    assert_eq!(
        prop(&t, perm, "SourceArn"),
        &Value::GetAtt(rule.into(), "Arn".into())
    );
    assert_eq!(t.resources["FnHourly"].resource_type, "AWS::Events::Rule");
    assert_eq!(prop(&t, "FnHourly", "State"), &s("ENABLED"));
    assert_eq!(
        prop(&t, "FnHourly", "ScheduleExpressionTimezone"),
        &s("UTC")
    );
    assert!(t.resources.contains_key("FnHourlyPermission"));
    let pos = |id: &str| t.order.iter().position(|x| x == id).unwrap();
    assert!(pos("Fn") < pos(rule) && pos(rule) < pos(perm));
}

#[test]
fn layers_and_simple_tables() {
    let t = sam(r#"
  Deps:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layer/
      CompatibleRuntimes: [python3.12]
      RetentionPolicy: Retain
  S3Layer:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: {Bucket: b, Key: l.zip}, LayerName: named}
  Notes:
    Type: AWS::Serverless::SimpleTable
  Counted:
    Type: AWS::Serverless::SimpleTable
    Properties:
      TableName: counted
      PrimaryKey: {Name: n, Type: Number}
      ProvisionedThroughput: {ReadCapacityUnits: 5, WriteCapacityUnits: 5}
      Tags: {a: b}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Runtime: python3.12
      Layers: [!Ref Deps]
      Environment: {Variables: {TABLE: !Ref Notes}}
"#);
    assert_eq!(
        t.resources["Deps"].resource_type,
        "AWS::Lambda::LayerVersion"
    );
    assert_eq!(prop(&t, "Deps", "ContentUri"), &s("layer/"));
    assert_eq!(prop(&t, "Deps", "LayerName"), &s("Deps"));
    assert_eq!(
        t.resources["Deps"].deletion_policy.as_deref(),
        Some("Retain")
    );
    assert_eq!(get(prop(&t, "S3Layer", "Content"), "S3Key"), &s("l.zip"));
    assert_eq!(prop(&t, "S3Layer", "LayerName"), &s("named"));

    assert_eq!(t.resources["Notes"].resource_type, "AWS::DynamoDB::Table");
    assert_eq!(prop(&t, "Notes", "BillingMode"), &s("PAY_PER_REQUEST"));
    let Value::List(attrs) = prop(&t, "Notes", "AttributeDefinitions") else {
        panic!()
    };
    assert_eq!(get(&attrs[0], "AttributeName"), &s("id"));
    assert_eq!(get(&attrs[0], "AttributeType"), &s("S"));
    let Value::List(keys) = prop(&t, "Notes", "KeySchema") else {
        panic!()
    };
    assert_eq!(get(&keys[0], "KeyType"), &s("HASH"));
    assert_eq!(prop(&t, "Counted", "BillingMode"), &s("PROVISIONED"));
    assert_eq!(prop(&t, "Counted", "TableName"), &s("counted"));
    let Value::List(attrs) = prop(&t, "Counted", "AttributeDefinitions") else {
        panic!()
    };
    assert_eq!(get(&attrs[0], "AttributeType"), &s("N"));
    assert!(matches!(prop(&t, "Counted", "Tags"), Value::List(l) if l.len() == 1));
    // Refs to SAM resources keep naming them.
    assert_eq!(t.resources["Fn"].dependencies, ["Notes", "Deps", "FnRole"]);
}

#[test]
fn unknown_types_properties_and_events_are_errors_with_positions() {
    let e = sam_err("  M:\n    Type: AWS::Serverless::StateMachine\n    Properties: {}\n");
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert_eq!(e.path, "Resources.M.Type");
    assert_eq!(e.pos, Pos { line: 3, column: 3 });
    assert_eq!(e.file, "template.yaml");

    let e = sam_err("  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: x\n      Handler: a.b\n      Runtime: python3.12\n      Events:\n        Q: {Type: SQS, Properties: {Queue: arn}}\n");
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert_eq!(e.path, "Resources.F.Properties.Events.Q.Type");
    assert!(e.message.contains("'SQS'"), "{e}");
    assert_eq!(e.pos, Pos { line: 3, column: 3 });

    let e = sam_err("  F:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: x, Handler: a.b, Runtime: python3.12, Colour: red}\n");
    assert_eq!(e.kind, ErrorKind::Structure);
    assert_eq!(e.path, "Resources.F.Properties.Colour");

    let e = sam_err("  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: x\n      Handler: a.b\n      Runtime: python3.12\n      Events:\n        G: {Type: HttpApi, Properties: {Path: /a}}\n");
    assert_eq!(e.path, "Resources.F.Properties.Events.G.Properties");

    // Authorizers are refused, never dropped.
    let e = sam_err("  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: x\n      Handler: a.b\n      Runtime: python3.12\n      Events:\n        G: {Type: HttpApi, Properties: {Path: /a, Method: get, Auth: {Authorizer: MyJwt}}}\n");
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert_eq!(e.path, "Resources.F.Properties.Events.G.Properties.Auth");
    let e = sam_err("  A:\n    Type: AWS::Serverless::HttpApi\n    Properties: {Auth: {DefaultAuthorizer: MyJwt}}\n");
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert_eq!(e.path, "Resources.A.Properties.Auth");

    // A generated id that the template declares too.
    let e = sam_err("  F:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: x, Handler: a.b, Runtime: python3.12, FunctionUrlConfig: {AuthType: NONE}}\n  FUrl:\n    Type: AWS::SQS::Queue\n");
    assert!(e.message.contains("'FUrl'"), "{e}");

    // Serverless types without the transform.
    let t = load(
        "template.yaml",
        "Resources:\n  T:\n    Type: AWS::Serverless::SimpleTable\n",
        &settings(),
    )
    .unwrap();
    let e = transform(&t, "template.yaml", &settings()).unwrap_err();
    assert!(e.message.contains("Transform"), "{e}");
}

#[test]
fn plain_resources_pass_through_and_conditions_carry_over() {
    let t = sam(r#"
  Q:
    Type: AWS::SQS::Queue
    DependsOn: Fn
    Properties: {QueueName: !GetAtt Fn.Arn}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Runtime: python3.12
      Events:
        E: {Type: Schedule, Properties: {Schedule: rate(1 day)}}
"#);
    assert_eq!(t.resources["Q"].resource_type, "AWS::SQS::Queue");
    assert_eq!(t.resources["Q"].dependencies, ["Fn"]);
    assert_eq!(t.order, ["FnRole", "Fn", "Q", "FnE", "FnEPermission"]);

    // Generated resources carry their function's condition.
    let text = format!(
        "Conditions:\n  On: !Equals [a, a]\n{HEAD}  Fn:\n    Type: AWS::Serverless::Function\n    Condition: On\n    Properties: {{CodeUri: x, Handler: a.b, Runtime: python3.12}}\n"
    );
    let t = load("template.yaml", &text, &settings()).unwrap();
    let t = transform(&t, "template.yaml", &settings()).unwrap();
    assert_eq!(t.resources["FnRole"].condition.as_deref(), Some("On"));
}
