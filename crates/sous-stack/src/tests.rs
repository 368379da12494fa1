//! Unit tests of the template model, one inline template each.

use std::collections::BTreeMap;

use serde_json::json;

use crate::parse::parse_template;
use crate::{
    load, ErrorKind, NodeValue, Part, Pos, ResolvedTemplate, Settings, TemplateError, Value,
};

fn settings(params: &[(&str, &str)]) -> Settings {
    Settings {
        region: "us-east-1".into(),
        account_id: "123456789012".into(),
        stack_name: "notes".into(),
        stack_id: None,
        parameters: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn ok(text: &str) -> ResolvedTemplate {
    ok_with(text, &[])
}

fn ok_with(text: &str, params: &[(&str, &str)]) -> ResolvedTemplate {
    load("template.yaml", text, &settings(params)).unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> TemplateError {
    err_with(text, &[])
}

fn err_with(text: &str, params: &[(&str, &str)]) -> TemplateError {
    match load("template.yaml", text, &settings(params)) {
        Ok(t) => panic!("expected an error, resolved {t:?}"),
        Err(e) => e,
    }
}

fn s(v: &str) -> Value {
    Value::String(v.into())
}

fn prop<'a>(t: &'a ResolvedTemplate, res: &str, key: &str) -> &'a Value {
    &t.resources[res].properties[key]
}

fn at(line: usize, column: usize) -> Pos {
    Pos { line, column }
}

// ---- parsing ----

#[test]
fn short_forms_become_long_forms() {
    let root = parse_template(
        "t.yaml",
        r#"
A: !Ref X
B: !Sub "${X}"
C: !GetAtt Fn.Arn
D: !GetAtt [Fn, Arn]
E: !Join [",", [a, b]]
F: !If [C, 1, 2]
G: !Select [0, [a]]
H: !Split [",", "a,b"]
I: !FindInMap [M, K, V]
J: !Equals [a, b]
K: !And [!Condition C1, !Not [!Condition C2]]
L: !Or [!Condition C1, !Condition C2]
N: !Base64 abc
"#,
    )
    .unwrap();
    let name = |k: &str| root.get(k).unwrap().intrinsic().unwrap().0.to_string();
    assert_eq!(name("A"), "Ref");
    for (k, f) in [
        ("B", "Sub"),
        ("C", "GetAtt"),
        ("D", "GetAtt"),
        ("E", "Join"),
        ("F", "If"),
        ("G", "Select"),
        ("H", "Split"),
        ("I", "FindInMap"),
        ("J", "Equals"),
        ("K", "And"),
        ("L", "Or"),
        ("N", "Base64"),
    ] {
        assert_eq!(name(k), format!("Fn::{f}"), "{k}");
    }
    // Both !GetAtt forms give the same list.
    let c = root.get("C").unwrap().intrinsic().unwrap().1.clone();
    let d = root.get("D").unwrap().intrinsic().unwrap().1.clone();
    let strs = |n: &crate::Node| match &n.value {
        NodeValue::List(items) => items
            .iter()
            .map(|i| i.as_str().unwrap().to_string())
            .collect::<Vec<_>>(),
        _ => panic!("not a list"),
    };
    assert_eq!(strs(&c), ["Fn", "Arn"]);
    assert_eq!(strs(&d), ["Fn", "Arn"]);
    // !Condition inside !And is the `Condition` function.
    let and = root.get("K").unwrap().intrinsic().unwrap().1;
    let NodeValue::List(items) = &and.value else {
        panic!()
    };
    assert!(items[0].get("Condition").is_some());
    assert!(items[1].get("Fn::Not").is_some());
}

#[test]
fn nodes_keep_line_and_column() {
    let root = parse_template(
        "t.yaml",
        "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      Runtime: python3.11\n      MemorySize: 128\n",
    )
    .unwrap();
    let runtime = root
        .get("Resources")
        .unwrap()
        .get("Fn")
        .unwrap()
        .get("Properties")
        .unwrap()
        .get("Runtime")
        .unwrap();
    assert_eq!(runtime.pos, at(5, 16));
    assert_eq!(runtime.value, NodeValue::String("python3.11".into()));
    let mem = root
        .get("Resources")
        .unwrap()
        .get("Fn")
        .unwrap()
        .get("Properties")
        .unwrap()
        .get("MemorySize")
        .unwrap();
    assert_eq!(mem.value, NodeValue::Number("128".into()));
}

#[test]
fn scalars_follow_the_core_schema() {
    let root = parse_template(
        "t.yaml",
        "a: 1.10\nb: 'true'\nc: true\nd: ~\ne: 0x1F\nf: inf\ng: -3\n",
    )
    .unwrap();
    assert_eq!(
        root.get("a").unwrap().value,
        NodeValue::Number("1.10".into())
    );
    assert_eq!(
        root.get("b").unwrap().value,
        NodeValue::String("true".into())
    );
    assert_eq!(root.get("c").unwrap().value, NodeValue::Bool(true));
    assert_eq!(root.get("d").unwrap().value, NodeValue::Null);
    assert_eq!(
        root.get("e").unwrap().value,
        NodeValue::String("0x1F".into())
    );
    assert_eq!(
        root.get("f").unwrap().value,
        NodeValue::String("inf".into())
    );
    assert_eq!(root.get("g").unwrap().value, NodeValue::Number("-3".into()));
}

#[test]
fn json_templates_parse_with_positions() {
    let text = "{\n  \"Resources\": {\n    \"Fn\": {\n      \"Type\": \"AWS::Lambda::Function\",\n      \"Properties\": {\"MemorySize\": 256, \"Role\": {\"Fn::GetAtt\": [\"R\", \"Arn\"]}}\n    },\n    \"R\": {\"Type\": \"AWS::IAM::Role\"}\n  }\n}\n";
    let root = parse_template("t.json", text).unwrap();
    let fnode = root.get("Resources").unwrap().get("Fn").unwrap();
    assert_eq!(fnode.get("Type").unwrap().pos.line, 4);
    let t = load("t.json", text, &settings(&[])).unwrap();
    assert_eq!(prop(&t, "Fn", "MemorySize"), &Value::Number("256".into()));
    assert_eq!(
        prop(&t, "Fn", "Role"),
        &Value::GetAtt("R".into(), "Arn".into())
    );
    assert_eq!(t.order, ["R", "Fn"]);
}

#[test]
fn malformed_yaml_names_the_position() {
    let e = err("Resources:\n  Fn:\n    Type: [a, b\n    Properties: {}\n");
    assert_eq!(e.kind, ErrorKind::Syntax);
    assert_eq!(e.file, "template.yaml");
    assert!(e.pos.line >= 3, "{e}");
    assert!(
        e.to_string().starts_with(&format!(
            "template.yaml:{}:{}: malformed YAML",
            e.pos.line, e.pos.column
        )),
        "{e}"
    );
}

#[test]
fn malformed_json_names_the_position() {
    let e = err("{\n  \"Resources\": {\n    \"Fn\": {\"Type\": \"x\",}\n  }\n}\n");
    assert_eq!(e.kind, ErrorKind::Syntax);
    assert_eq!(e.pos.line, 3, "{e}");
    assert_eq!(e.message, "malformed JSON: trailing comma");
}

#[test]
fn an_unknown_tag_is_an_error_at_its_position() {
    let e = err(
        "Resources:\n  B:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: !Reff X\n",
    );
    assert_eq!(e.kind, ErrorKind::UnknownIntrinsic);
    // A tagged node's position is its argument's.
    assert_eq!(e.pos, at(5, 25));
    assert_eq!(e.path, "Resources.B.Properties.BucketName");
    assert!(e.message.contains("!Reff"), "{e}");
}

#[test]
fn duplicate_keys_are_errors() {
    let e = err("Resources:\n  B:\n    Type: AWS::S3::Bucket\n  B:\n    Type: AWS::S3::Bucket\n");
    assert_eq!(e.kind, ErrorKind::Structure);
    assert_eq!(e.pos.line, 4);
    assert!(e.message.contains("duplicate key 'B'"), "{e}");
}

// ---- intrinsic errors ----

#[test]
fn an_unknown_intrinsic_names_its_path() {
    let e = err("Resources:\n  B:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName:\n        Fn::Concat: [a, b]\n");
    assert_eq!(e.kind, ErrorKind::UnknownIntrinsic);
    assert_eq!(e.path, "Resources.B.Properties.BucketName.Fn::Concat");
    assert_eq!(e.pos.line, 6);
}

#[test]
fn getazs_and_importvalue_are_refused_as_unsupported() {
    for f in ["!GetAZs ''", "!ImportValue SharedVpc"] {
        let e = err(&format!(
            "Resources:\n  B:\n    Type: AWS::S3::Bucket\n    Properties:\n      X: {f}\n"
        ));
        assert_eq!(e.kind, ErrorKind::Unsupported, "{e}");
        assert!(e.message.contains("not supported by Sous"), "{e}");
        assert_eq!(e.pos.line, 5);
    }
}

#[test]
fn getatt_of_a_missing_resource_is_an_error_with_its_position() {
    let e = err("Resources:\n  Fn:\n    Type: AWS::Lambda::Function\n    Properties:\n      Role: !GetAtt MissingRole.Arn\n");
    assert_eq!(e.kind, ErrorKind::MissingReference);
    assert_eq!(e.path, "Resources.Fn.Properties.Role.Fn::GetAtt");
    assert_eq!(e.pos, at(5, 21));
    assert!(e.message.contains("'MissingRole'"), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "template.yaml:5:21: Resources.Fn.Properties.Role.Fn::GetAtt: {}",
            e.message
        )
    );
}

#[test]
fn ref_of_a_missing_name_is_an_error() {
    let e = err("Resources:\n  B:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: !Ref Nope\n");
    assert_eq!(e.kind, ErrorKind::MissingReference);
    assert_eq!(e.path, "Resources.B.Properties.BucketName.Ref");
    assert!(e.message.contains("neither a parameter"), "{e}");
}

#[test]
fn wrong_argument_shapes_say_what_was_expected() {
    let e = err("Resources:\n  B:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: !Join abc\n");
    assert_eq!(e.kind, ErrorKind::BadArguments);
    assert!(
        e.message
            .contains("Fn::Join expects [Delimiter, [Values]], found a string"),
        "{e}"
    );
    let e = err("Resources:\n  B:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: !Select [5, [a, b]]\n");
    assert!(e.message.contains("out of range"), "{e}");
    let e = err("Resources:\n  B:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: !GetAtt NoDot\n");
    assert_eq!(e.kind, ErrorKind::BadArguments);
    let e = err("Resources:\n  B:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: !Sub 'a-${Unclosed'\n");
    assert!(e.message.contains("without a closing"), "{e}");
}

// ---- parameters ----

const PARAMS: &str = r#"
Parameters:
  Stage:
    Type: String
    Default: dev
    AllowedValues: [dev, prod]
  Name:
    Type: String
    AllowedPattern: "[a-z]+"
    Default: notes
  Memory:
    Type: Number
    Default: 128
    MinValue: 128
    MaxValue: 10240
  Subnets:
    Type: CommaDelimitedList
    Default: "a,b,c"
  Sizes:
    Type: List<Number>
    Default: "1,2"
Resources:
  B:
    Type: AWS::S3::Bucket
    Properties:
      Stage: !Ref Stage
      Name: !Ref Name
      Memory: !Ref Memory
      Second: !Select [1, !Ref Subnets]
      Sizes: !Ref Sizes
"#;

#[test]
fn parameters_take_defaults_and_overrides() {
    let t = ok(PARAMS);
    assert_eq!(prop(&t, "B", "Stage"), &s("dev"));
    assert_eq!(prop(&t, "B", "Memory"), &s("128"));
    assert_eq!(prop(&t, "B", "Second"), &s("b"));
    assert_eq!(prop(&t, "B", "Sizes"), &Value::List(vec![s("1"), s("2")]));
    let t = ok_with(
        PARAMS,
        &[("Stage", "prod"), ("Memory", "512"), ("Subnets", "x,y")],
    );
    assert_eq!(prop(&t, "B", "Stage"), &s("prod"));
    assert_eq!(prop(&t, "B", "Memory"), &s("512"));
    assert_eq!(prop(&t, "B", "Second"), &s("y"));
    assert_eq!(t.parameters["Subnets"], Value::List(vec![s("x"), s("y")]));
}

#[test]
fn parameter_constraints_are_checked() {
    let e = err_with(PARAMS, &[("Stage", "test")]);
    assert_eq!(e.kind, ErrorKind::InvalidParameterValue);
    assert_eq!(e.path, "Parameters.Stage");
    assert_eq!(e.pos, at(3, 3));
    assert!(
        e.message
            .contains("Parameter 'Stage' must be one of AllowedValues"),
        "{e}"
    );
    let e = err_with(PARAMS, &[("Name", "Notes1")]);
    assert!(e.message.contains("must match pattern [a-z]+"), "{e}");
    let e = err_with(PARAMS, &[("Memory", "lots")]);
    assert!(e.message.contains("must be a number"), "{e}");
    let e = err_with(PARAMS, &[("Memory", "64")]);
    assert!(e.message.contains("MinValue"), "{e}");
    let e = err_with(PARAMS, &[("Sizes", "1,x")]);
    assert!(e.message.contains("must be a number"), "{e}");
    let e = err_with(PARAMS, &[("Nope", "1")]);
    assert!(
        e.message
            .contains("Parameters: [Nope] do not exist in the template"),
        "{e}"
    );
}

#[test]
fn a_parameter_without_a_value_is_an_error() {
    let text = "Parameters:\n  TableName:\n    Type: String\nResources:\n  B:\n    Type: AWS::S3::Bucket\n";
    let e = err(text);
    assert_eq!(e.kind, ErrorKind::MissingParameterValue);
    assert_eq!(e.path, "Parameters.TableName");
    assert_eq!(e.pos, at(2, 3));
    assert!(
        e.message
            .contains("Parameters: [TableName] must have values"),
        "{e}"
    );
    assert!(ok_with(text, &[("TableName", "t")]).parameters["TableName"] == s("t"));
}

#[test]
fn pseudo_parameters_resolve() {
    let t = ok(r#"
Resources:
  B:
    Type: AWS::S3::Bucket
    Properties:
      A: !Sub "${AWS::Region}/${AWS::AccountId}/${AWS::StackName}/${AWS::Partition}/${AWS::URLSuffix}"
      Id: !Ref AWS::StackId
      Gone: !Ref AWS::NoValue
"#);
    assert_eq!(
        prop(&t, "B", "A"),
        &s("us-east-1/123456789012/notes/aws/amazonaws.com")
    );
    assert_eq!(
        prop(&t, "B", "Id"),
        &s("arn:aws:cloudformation:us-east-1:123456789012:stack/notes/00000000-0000-0000-0000-000000000000")
    );
    assert!(!t.resources["B"].properties.contains_key("Gone"));
}

// ---- mappings and conditions ----

#[test]
fn find_in_map_looks_up_mappings() {
    let text = r#"
Parameters:
  Stage: {Type: String, Default: prod}
Mappings:
  Sizes:
    dev: {Memory: 128}
    prod: {Memory: 1024}
Resources:
  B:
    Type: AWS::S3::Bucket
    Properties:
      Memory: !FindInMap [Sizes, !Ref Stage, Memory]
"#;
    assert_eq!(
        prop(&ok(text), "B", "Memory"),
        &Value::Number("1024".into())
    );
    let e = err_with(text, &[("Stage", "qa")]);
    assert_eq!(e.kind, ErrorKind::MissingReference);
    assert!(e.message.contains("map 'Sizes' has no key 'qa'"), "{e}");
    assert_eq!(e.pos.line, 12);
}

const CONDITIONS: &str = r#"
Parameters:
  Stage: {Type: String, Default: dev}
  Alarms: {Type: String, Default: "yes"}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  IsDev: !Not [!Condition IsProd]
  WantAlarms: !Equals [!Ref Alarms, "yes"]
  ProdAlarms: !And [!Condition IsProd, !Condition WantAlarms]
  AnyAlarms: !Or [!Condition ProdAlarms, !Condition IsDev]
Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      MemorySize: !If [IsProd, 1024, 128]
      ReservedConcurrentExecutions: !If [IsProd, 10, !Ref AWS::NoValue]
      Layers: [!If [IsProd, !Ref AWS::NoValue, debug-layer], base-layer]
  Alarm:
    Type: AWS::CloudWatch::Alarm
    Condition: ProdAlarms
    Properties:
      Target: !Ref Fn
Outputs:
  AlarmName:
    Condition: ProdAlarms
    Value: !Ref Alarm
  Memory:
    Value: !If [IsProd, big, small]
"#;

#[test]
fn conditions_choose_values_and_resources() {
    let t = ok(CONDITIONS);
    assert!(!t.conditions["IsProd"]);
    assert!(t.conditions["IsDev"]);
    assert!(!t.conditions["ProdAlarms"]);
    assert!(t.conditions["AnyAlarms"]);
    assert_eq!(prop(&t, "Fn", "MemorySize"), &Value::Number("128".into()));
    assert!(!t.resources["Fn"]
        .properties
        .contains_key("ReservedConcurrentExecutions"));
    assert_eq!(
        prop(&t, "Fn", "Layers"),
        &Value::List(vec![s("debug-layer"), s("base-layer")])
    );
    assert!(!t.resources.contains_key("Alarm"));
    assert_eq!(t.skipped, ["Alarm"]);
    assert!(!t.outputs.contains_key("AlarmName"));
    assert_eq!(t.outputs["Memory"].value, s("small"));

    let t = ok_with(CONDITIONS, &[("Stage", "prod")]);
    assert_eq!(prop(&t, "Fn", "MemorySize"), &Value::Number("1024".into()));
    assert_eq!(
        prop(&t, "Fn", "ReservedConcurrentExecutions"),
        &Value::Number("10".into())
    );
    assert_eq!(
        prop(&t, "Fn", "Layers"),
        &Value::List(vec![s("base-layer")])
    );
    assert_eq!(prop(&t, "Alarm", "Target"), &Value::Ref("Fn".into()));
    assert_eq!(t.outputs["AlarmName"].value, Value::Ref("Alarm".into()));
    assert_eq!(t.order, ["Fn", "Alarm"]);
}

#[test]
fn referring_to_a_resource_whose_condition_is_false_is_an_error() {
    let text = CONDITIONS.replace(
        "Value: !If [IsProd, big, small]",
        "Value: !GetAtt Alarm.Arn",
    );
    let e = err(&text);
    assert_eq!(e.kind, ErrorKind::MissingReference);
    assert_eq!(e.path, "Outputs.Memory.Value.Fn::GetAtt");
    assert!(e.message.contains("Condition is false"), "{e}");
}

#[test]
fn condition_errors() {
    let e = err("Conditions:\n  A: !Condition B\n  B: !Condition A\nResources:\n  X:\n    Type: AWS::S3::Bucket\n");
    assert_eq!(e.kind, ErrorKind::Cycle);
    let e = err("Resources:\n  X:\n    Type: AWS::S3::Bucket\n    Condition: Nope\n");
    assert_eq!(e.kind, ErrorKind::MissingReference);
    assert_eq!(e.path, "Resources.X.Condition");
    assert_eq!(e.pos, at(4, 16));
    let e = err(
        "Resources:\n  X:\n    Type: AWS::S3::Bucket\n    Properties:\n      A: !If [Nope, 1, 2]\n",
    );
    assert!(
        e.message.contains("'Nope', which is not in Conditions"),
        "{e}"
    );
    let e = err(
        "Resources:\n  X:\n    Type: AWS::S3::Bucket\n    Properties:\n      A: !Equals [1, 1]\n",
    );
    assert!(e.message.contains("can only be used in Conditions"), "{e}");
}

// ---- strings ----

#[test]
fn sub_in_both_forms() {
    let t = ok(r#"
Parameters:
  Stage: {Type: String, Default: dev}
Resources:
  Table:
    Type: AWS::DynamoDB::Table
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      A: !Sub "notes-${Stage}"
      B: !Sub "${Table.Arn}/index/*"
      C: !Sub "${!Literal}-${Table}"
      D: !Sub
        - "${Prefix}-${AWS::Region}-${Stage}"
        - Prefix: !Ref Table
          Stage: overridden
      E: !Sub "${Table}"
"#);
    assert_eq!(prop(&t, "Fn", "A"), &s("notes-dev"));
    assert_eq!(
        prop(&t, "Fn", "B"),
        &Value::Text(vec![
            Part::GetAtt("Table".into(), "Arn".into()),
            Part::Lit("/index/*".into())
        ])
    );
    assert_eq!(
        prop(&t, "Fn", "C"),
        &Value::Text(vec![
            Part::Lit("${Literal}-".into()),
            Part::Ref("Table".into())
        ])
    );
    assert_eq!(
        prop(&t, "Fn", "D"),
        &Value::Text(vec![
            Part::Ref("Table".into()),
            Part::Lit("-us-east-1-overridden".into())
        ])
    );
    assert_eq!(prop(&t, "Fn", "E"), &Value::Ref("Table".into()));
    assert_eq!(t.resources["Fn"].dependencies, ["Table"]);
}

#[test]
fn join_select_split_base64() {
    let t = ok(r#"
Resources:
  Q:
    Type: AWS::SQS::Queue
  B:
    Type: AWS::S3::Bucket
    Properties:
      Joined: !Join ["-", [a, !Ref Q, !GetAtt Q.Arn]]
      Plain: !Join [",", [a, b, 3]]
      Picked: !Select ["1", !Split [",", "x,y,z"]]
      Encoded: !Base64 "hello"
      Later: !Select [0, !GetAtt Q.Endpoints]
      LaterB64: !Base64 {"Fn::Sub": "url=${Q}"}
"#);
    assert_eq!(
        prop(&t, "B", "Joined"),
        &Value::Text(vec![
            Part::Lit("a-".into()),
            Part::Ref("Q".into()),
            Part::Lit("-".into()),
            Part::GetAtt("Q".into(), "Arn".into())
        ])
    );
    assert_eq!(prop(&t, "B", "Plain"), &s("a,b,3"));
    assert_eq!(prop(&t, "B", "Picked"), &s("y"));
    assert_eq!(prop(&t, "B", "Encoded"), &s("aGVsbG8="));
    // Filling placeholders at apply time.
    let mut lookup = |r: &str, a: Option<&str>| -> Result<serde_json::Value, String> {
        Ok(match (r, a) {
            ("Q", None) => json!("http://q"),
            ("Q", Some("Arn")) => json!("arn:q"),
            ("Q", Some("Endpoints")) => json!(["e1", "e2"]),
            _ => return Err(format!("no {r} {a:?}")),
        })
    };
    let filled = Value::Map(t.resources["B"].properties.clone())
        .fill(&mut lookup)
        .unwrap();
    assert_eq!(filled["Joined"], json!("a-http://q-arn:q"));
    assert_eq!(filled["Later"], json!("e1"));
    assert_eq!(filled["LaterB64"], json!("dXJsPWh0dHA6Ly9x"));
    assert_eq!(filled["Plain"], json!("a,b,3"));
}

// ---- dependencies ----

#[test]
fn dependencies_and_order() {
    let t = ok(r#"
Resources:
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties:
      Target: !GetAtt Fn.Arn
  Fn:
    Type: AWS::Lambda::Function
    DependsOn: [Policy]
    Properties:
      Role: !GetAtt Role.Arn
      Environment:
        Variables:
          TABLE: !Ref Table
  Role:
    Type: AWS::IAM::Role
  Policy:
    Type: AWS::IAM::Policy
    DependsOn: Role
  Table:
    Type: AWS::DynamoDB::Table
"#);
    assert_eq!(t.resources["Fn"].dependencies, ["Role", "Table", "Policy"]);
    assert_eq!(t.resources["Fn"].depends_on, ["Policy"]);
    assert_eq!(t.resources["Api"].dependencies, ["Fn"]);
    assert_eq!(t.order, ["Role", "Policy", "Table", "Fn", "Api"]);
}

#[test]
fn a_dependency_cycle_is_an_error() {
    let e = err(r#"
Resources:
  A:
    Type: AWS::SQS::Queue
    Properties:
      X: !Ref B
  B:
    Type: AWS::SQS::Queue
    Properties:
      X: !GetAtt C.Arn
  C:
    Type: AWS::SQS::Queue
    DependsOn: A
  D:
    Type: AWS::SQS::Queue
    DependsOn: C
"#);
    assert_eq!(e.kind, ErrorKind::Cycle);
    assert_eq!(
        e.message,
        "Circular dependency between resources: [A, B, C]"
    );
    assert_eq!(e.path, "Resources.A");
    assert_eq!(e.pos, at(3, 3));
}

#[test]
fn depends_on_a_missing_resource_is_an_error() {
    let e = err("Resources:\n  A:\n    Type: AWS::SQS::Queue\n    DependsOn: [Ghost]\n");
    assert_eq!(e.kind, ErrorKind::MissingReference);
    assert_eq!(e.path, "Resources.A.DependsOn");
    assert_eq!(e.pos, at(4, 17));
}

#[test]
fn template_structure_errors() {
    let e = err("Resources:\n  A:\n    Properties: {}\n");
    assert!(e.message.contains("no Type"), "{e}");
    let e = err("Resourcez:\n  A:\n    Type: X\n");
    assert!(
        e.message.contains("unknown template section 'Resourcez'"),
        "{e}"
    );
    let e = err("Resources: []\n");
    assert!(
        e.message
            .contains("expected Resources to be a mapping, found a list"),
        "{e}"
    );
}

// ---- SAM Globals ----

const SAM: &str = r#"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.11
    MemorySize: 128
    Layers: [base]
    Environment:
      Variables:
        TABLE: notes
        STAGE: dev
  HttpApi:
    CorsConfiguration: {AllowOrigins: ["*"]}
Resources:
  Plain:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
  Custom:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      MemorySize: 512
      Layers: [extra]
      Environment:
        Variables:
          STAGE: prod
          EXTRA: "1"
  Bare:
    Type: AWS::Serverless::Function
  Api:
    Type: AWS::Serverless::HttpApi
  Table:
    Type: AWS::Serverless::SimpleTable
"#;

#[test]
fn sam_globals_are_merged_into_resources() {
    let t = ok(SAM);
    assert_eq!(prop(&t, "Plain", "Runtime"), &s("python3.11"));
    assert_eq!(
        prop(&t, "Plain", "MemorySize"),
        &Value::Number("128".into())
    );
    assert_eq!(prop(&t, "Plain", "Handler"), &s("app.handler"));
    assert_eq!(
        prop(&t, "Custom", "MemorySize"),
        &Value::Number("512".into())
    );
    assert_eq!(
        prop(&t, "Custom", "Layers"),
        &Value::List(vec![s("base"), s("extra")])
    );
    let Value::Map(env) = prop(&t, "Custom", "Environment") else {
        panic!()
    };
    let Value::Map(vars) = &env["Variables"] else {
        panic!()
    };
    assert_eq!(vars.get("TABLE"), Some(&s("notes")));
    assert_eq!(vars.get("STAGE"), Some(&s("prod")));
    assert_eq!(vars.get("EXTRA"), Some(&s("1")));
    assert_eq!(prop(&t, "Bare", "Runtime"), &s("python3.11"));
    assert!(t.resources["Api"]
        .properties
        .contains_key("CorsConfiguration"));
    assert!(t.resources["Table"].properties.is_empty());
    assert_eq!(t.transforms, ["AWS::Serverless-2016-10-31"]);
}

#[test]
fn an_intrinsic_on_either_side_is_not_merged() {
    let text = r#"
Transform: [AWS::Serverless-2016-10-31]
Parameters:
  Vars: {Type: String, Default: x}
Conditions:
  C: !Equals [a, a]
Globals:
  Function:
    Environment:
      Variables:
        A: "1"
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Environment: !If [C, {Variables: {B: "2"}}, !Ref AWS::NoValue]
"#;
    let t = ok(text);
    let Value::Map(env) = prop(&t, "F", "Environment") else {
        panic!()
    };
    let Value::Map(vars) = &env["Variables"] else {
        panic!()
    };
    assert_eq!(vars.keys().collect::<Vec<_>>(), ["B"]);
}

#[test]
fn globals_errors() {
    let e = err("Globals:\n  Function: {Runtime: x}\nResources:\n  F:\n    Type: AWS::Serverless::Function\n");
    assert_eq!(e.path, "Globals");
    assert!(
        e.message.contains("Transform: AWS::Serverless-2016-10-31"),
        "{e}"
    );
    let e = err("Transform: AWS::Serverless-2016-10-31\nGlobals:\n  Queue: {X: 1}\nResources:\n  F:\n    Type: AWS::Serverless::Function\n");
    assert_eq!(e.path, "Globals.Queue");
    assert_eq!(e.pos, at(3, 3));
    assert!(
        e.message
            .contains("'Queue' is not a supported Globals section"),
        "{e}"
    );
}

// ---- SAM generated names ----

#[test]
fn sam_generated_names_can_be_referred_to() {
    let t = ok(r#"
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Description: notes API
Resources:
  NotesTable:
    Type: AWS::Serverless::SimpleTable
  NotesFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Runtime: python3.11
      AutoPublishAlias: live
      Environment:
        Variables:
          TABLE: !Ref NotesTable
      Events:
        List:
          Type: HttpApi
          Properties: {Path: /notes, Method: GET}
        Nightly:
          Type: Schedule
          Properties: {Schedule: rate(1 day)}
  Watcher:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Role: !GetAtt NotesFunctionRole.Arn
      Alias: !Ref NotesFunction.Alias
      Rule: !Ref NotesFunctionNightly
Outputs:
  ApiUrl:
    Value: !Sub "https://${ServerlessHttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/"
"#);
    assert_eq!(t.description.as_deref(), Some("notes API"));
    assert_eq!(
        t.outputs["ApiUrl"].value,
        Value::Text(vec![
            Part::Lit("https://".into()),
            Part::Ref("ServerlessHttpApi".into()),
            Part::Lit(".execute-api.us-east-1.amazonaws.com/".into()),
        ])
    );
    assert_eq!(t.implicit["ServerlessHttpApi"].owners, ["NotesFunction"]);
    assert_eq!(
        t.implicit["ServerlessHttpApi"].resource_type,
        "AWS::ApiGatewayV2::Api"
    );
    assert_eq!(
        t.implicit["NotesFunctionNightly"].resource_type,
        "AWS::Events::Rule"
    );
    assert!(t.implicit.contains_key("NotesFunctionAliaslive"));
    assert_eq!(
        prop(&t, "Watcher", "Alias"),
        &Value::Ref("NotesFunction.Alias".into())
    );
    // Generated names wait on the resource they come from.
    assert_eq!(t.resources["Watcher"].dependencies, ["NotesFunction"]);
    assert_eq!(t.order, ["NotesTable", "NotesFunction", "Watcher"]);

    // Without the transform the same names are unknown.
    let e = err("Resources:\n  A:\n    Type: AWS::SQS::Queue\n    Properties:\n      X: !Ref ServerlessHttpApi\n");
    assert_eq!(e.kind, ErrorKind::MissingReference);
}

#[test]
fn anchors_aliases_and_computed_attribute_names() {
    let t = ok(r#"
Metadata:
  Shared: &queue {Type: AWS::SQS::Queue, Properties: {DelaySeconds: 5}}
Parameters:
  Attr: {Type: String, Default: Arn}
Resources:
  Q: *queue
  R:
    Type: AWS::SQS::Queue
    Properties:
      Target: !GetAtt [Q, !Ref Attr]
      Delay: !GetAtt Q.Attributes.DelaySeconds
Outputs:
  QueueArn:
    Description: the queue
    Value: !GetAtt Q.Arn
    Export:
      Name: !Sub "${AWS::StackName}-queue"
"#);
    assert_eq!(prop(&t, "Q", "DelaySeconds"), &Value::Number("5".into()));
    assert_eq!(
        prop(&t, "R", "Target"),
        &Value::GetAtt("Q".into(), "Arn".into())
    );
    assert_eq!(
        prop(&t, "R", "Delay"),
        &Value::GetAtt("Q".into(), "Attributes.DelaySeconds".into())
    );
    assert_eq!(t.outputs["QueueArn"].export_name, Some(s("notes-queue")));
    assert_eq!(
        t.outputs["QueueArn"].description.as_deref(),
        Some("the queue")
    );
}
