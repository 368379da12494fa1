//! The `python3.11` managed runtime (issue 3), deployed and invoked through the Lambda API of
//! the real binary: handler forms, the context object, errors (handled, init), logging,
//! warm reuse, and Python equivalents of the seed document's handlers that need no AWS
//! service. CPython 3.11 must be on the host (it is on every machine of this project's kind);
//! without it every test fails loudly rather than pass without running.

use std::time::Duration;

use crate::common::*;
use aws_sdk_lambda::operation::create_function::builders::CreateFunctionFluentBuilder;
use aws_sdk_lambda::types::Runtime;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------
// Helpers

/// Whether this host has CPython 3.11 (what `sous serve` looks for).
fn have_python311() -> bool {
    let ok = |cmd: &str| {
        std::process::Command::new(cmd)
            .args(["-c", "import sys; assert sys.version_info[:2] == (3, 11)"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    ok("python3.11") || ok("python3")
}

macro_rules! require_python {
    () => {
        assert!(
            have_python311(),
            "CPython 3.11 (python3.11 or python3) must be on PATH to test the python3.11 runtime"
        );
    };
}

fn py_zip(files: &[(&str, &str)]) -> Vec<u8> {
    let entries: Vec<Entry> = files
        .iter()
        .map(|(p, d)| file(p, d.as_bytes().to_vec(), 0o644))
        .collect();
    zip_entries(&entries)
}

fn create_py(
    server: &Server,
    name: &str,
    zip: &[u8],
    handler: &str,
) -> CreateFunctionFluentBuilder {
    create(&server.client, name, zip)
        .runtime(Runtime::Python311)
        .handler(handler)
        .timeout(10)
}

/// Creates a python3.11 function (panicking with the server's output on failure).
async fn deploy(server: &Server, files: &[(&str, &str)], handler: &str) -> String {
    let name = unique("py");
    create_ok(server, create_py(server, &name, &py_zip(files), handler)).await;
    name
}

/// Waits (bounded) until some log event of the function satisfies `pred`.
fn wait_event(server: &Server, name: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let events = server.log_events(name);
        if let Some(e) = events.iter().find(|e| pred(e)) {
            return e.clone();
        }
        if std::time::Instant::now() > deadline {
            panic!("no such log event; events: {events:#?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ok_json(server: &Server, inv: &Invoked) -> Value {
    assert_eq!(
        inv.function_error,
        None,
        "function failed: {}\nlog: {:?}\n{}",
        inv.text(),
        inv.log,
        server.output_tail(3000)
    );
    inv.json()
}

const TS: &str = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z";

// ---------------------------------------------------------------------------------------
// Handler forms, context, warm reuse

const CONTEXT_APP: &str = r#"import os
import sys
import time

COUNT = 0


def handler(event, context):
    global COUNT
    COUNT += 1
    first = context.get_remaining_time_in_millis()
    time.sleep(0.06)
    second = context.get_remaining_time_in_millis()
    cc = context.client_context
    client = None
    if cc is not None and cc.client is not None:
        c = cc.client
        client = {
            "installation_id": c.installation_id,
            "app_title": c.app_title,
            "app_version_name": c.app_version_name,
            "app_version_code": c.app_version_code,
            "app_package_name": c.app_package_name,
        }
    return {
        "count": COUNT,
        "pid": os.getpid(),
        "event": event,
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "identity": [
            context.identity.cognito_identity_id,
            context.identity.cognito_identity_pool_id,
        ],
        "client_context": None
        if cc is None
        else {"custom": cc.custom, "env": cc.env, "client": client},
        "remaining": [first, second],
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
        "execution_env": os.environ.get("AWS_EXECUTION_ENV"),
        "task_root": os.environ.get("LAMBDA_TASK_ROOT"),
        "cwd": os.getcwd(),
        "sys_path": sys.path,
        "telemetry_fd_visible": "_LAMBDA_TELEMETRY_LOG_FD" in os.environ,
        "api_pipes_visible": "_SOUS_RUNTIME_API_PIPES" in os.environ,
        "repr": repr(context),
    }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_object_has_every_field_and_the_module_is_imported_once() {
    require_python!();
    let server = Server::start();
    let name = unique("py");
    create_ok(
        &server,
        create_py(
            &server,
            &name,
            &py_zip(&[("app.py", CONTEXT_APP)]),
            "app.handler",
        )
        .memory_size(256)
        .timeout(20),
    )
    .await;

    let client_context = json!({
        "client": {
            "installation_id": "inst-1",
            "app_title": "Sous Test",
            "app_version_name": "1.0",
            "app_version_code": "100",
            "app_package_name": "com.example.sous"
        },
        "custom": {"tenant": "blue"},
        "env": {"platform": "Linux"}
    });
    let req = invoke_req(&server.client, &name, br#"{"hello":"python"}"#)
        .client_context(b64(client_context.to_string().as_bytes()));
    let first = send_invoke(&server, req).await;
    let v = ok_json(&server, &first);

    assert_eq!(v["count"], 1);
    assert_eq!(v["event"], json!({"hello": "python"}));
    assert_eq!(v["aws_request_id"].as_str(), first.request_id.as_deref());
    assert_eq!(v["function_name"], name.as_str());
    assert_eq!(v["function_version"], "$LATEST");
    assert_eq!(v["invoked_function_arn"], function_arn(&name));
    assert_eq!(v["memory_limit_in_mb"], "256", "a str, as on Lambda");
    assert_eq!(v["log_group_name"], format!("/aws/lambda/{name}"));
    assert_matches(
        r"^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$",
        v["log_stream_name"].as_str().unwrap_or(""),
        "log stream",
    );
    assert_eq!(v["identity"], json!([null, null]));
    assert_eq!(
        v["client_context"],
        json!({
            "custom": {"tenant": "blue"},
            "env": {"platform": "Linux"},
            "client": {
                "installation_id": "inst-1",
                "app_title": "Sous Test",
                "app_version_name": "1.0",
                "app_version_code": "100",
                "app_package_name": "com.example.sous"
            }
        })
    );
    let r1 = v["remaining"][0].as_i64().unwrap();
    let r2 = v["remaining"][1].as_i64().unwrap();
    assert!(
        r1 <= 20_000 && r1 > 10_000,
        "remaining {r1} of a 20 s timeout"
    );
    assert!(r1 - r2 >= 50, "remaining time decreases: {r1} then {r2}");
    assert_matches(
        r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24}",
        v["trace"].as_str().unwrap_or(""),
        "_X_AMZN_TRACE_ID",
    );
    assert_eq!(v["execution_env"], "AWS_Lambda_python3.11");
    let task_root = v["task_root"].as_str().unwrap().to_string();
    assert_eq!(v["cwd"], task_root.as_str());
    let path: Vec<&str> = v["sys_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(path[0], task_root, "the code first on sys.path: {path:?}");
    assert_eq!(
        &path[1..3],
        ["/opt/python/lib/python3.11/site-packages", "/opt/python"],
        "then the layers' paths: {path:?}"
    );
    assert!(
        !path.iter().any(|p| p.contains("runtimes/python3.11")),
        "the runtime's own directory is not on sys.path: {path:?}"
    );
    assert_eq!(v["telemetry_fd_visible"], false);
    assert_eq!(v["api_pipes_visible"], false);
    let repr = v["repr"].as_str().unwrap();
    assert!(
        repr.starts_with(&format!(
            "LambdaContext([aws_request_id={},log_group_name=/aws/lambda/{name},",
            first.request_id.as_deref().unwrap()
        )),
        "{repr}"
    );
    assert!(repr.contains(",memory_limit_in_mb=256,"), "{repr}");
    assert!(
        repr.contains(
            "identity=CognitoIdentity([cognito_identity_id=None,cognito_identity_pool_id=None])"
        ),
        "{repr}"
    );

    // Warm: the same process, the module not imported again, a new request and trace.
    let second = invoke(&server, &name, b"").await;
    let w = ok_json(&server, &second);
    assert_eq!(w["count"], 2, "module-level state survives: imported once");
    assert_eq!(w["pid"], v["pid"]);
    assert_eq!(w["event"], json!({}), "an empty payload is {{}}");
    assert_eq!(w["client_context"], Value::Null);
    assert_ne!(w["aws_request_id"], v["aws_request_id"]);
    assert_ne!(w["trace"], v["trace"]);
    assert!(first.log().contains("Init Duration: "));
    assert!(!second.log().contains("Init Duration: "));
    let third = ok_json(&server, &invoke(&server, &name, b"[1, 2]").await);
    assert_eq!(third["count"], 3);
    assert_eq!(third["event"], json!([1, 2]));
}

const RETURN_NAME: &str = r#"def handler(event, context):
    return {"module": __name__, "event": event}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_forms_module_path_and_dotted_package() {
    require_python!();
    let server = Server::start();
    let files = [
        ("app.py", RETURN_NAME),
        ("pkg/__init__.py", ""),
        ("pkg/sub/__init__.py", ""),
        ("pkg/sub/mod.py", RETURN_NAME),
        // A namespace package (no __init__.py), reached with the slash form.
        ("handlers/deep/fn.py", RETURN_NAME),
    ];
    for (handler, module) in [
        ("app.handler", "app"),
        ("pkg/sub/mod.handler", "pkg.sub.mod"),
        ("pkg.sub.mod.handler", "pkg.sub.mod"),
        ("handlers/deep/fn.handler", "handlers.deep.fn"),
    ] {
        let name = deploy(&server, &files, handler).await;
        let v = ok_json(&server, &invoke(&server, &name, br#"{"n":1}"#).await);
        assert_eq!(v, json!({"module": module, "event": {"n": 1}}), "{handler}");
    }
}

// ---------------------------------------------------------------------------------------
// Errors

const RAISING_APP: &str = r#"def check(why):
    raise ValueError("bad thing: " + why)


def handler(event, context):
    if event.get("quiet"):
        raise KeyError()
    check(event["why"])
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_exception_is_reported_and_logged_as_lambda_does() {
    require_python!();
    let server = Server::start();
    let name = deploy(&server, &[("app.py", RAISING_APP)], "app.handler").await;
    let inv = invoke(&server, &name, br#"{"why":"it broke"}"#).await;
    assert_eq!(inv.status, 200);
    assert_eq!(inv.function_error.as_deref(), Some("Unhandled"));
    let v = inv.json();
    let rid = inv.request_id.clone().unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["errorMessage", "errorType", "requestId", "stackTrace"],
        "{v}"
    );
    assert_eq!(v["errorMessage"], "bad thing: it broke");
    assert_eq!(v["errorType"], "ValueError");
    assert_eq!(v["requestId"], rid.as_str());
    let trace: Vec<&str> = v["stackTrace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(trace.len(), 2, "the user's frames only: {trace:#?}");
    assert_matches(
        r#"^  File ".+/app\.py", line 8, in handler\n    check\(event\["why"\]\)\n$"#,
        trace[0],
        "first frame",
    );
    assert_matches(
        r#"^  File ".+/app\.py", line 2, in check\n    raise ValueError\("bad thing: " \+ why\)\n$"#,
        trace[1],
        "second frame",
    );

    // The log: the error as one record, frames indented with no-break spaces.
    let log = inv.log();
    assert!(
        log.contains("[ERROR] ValueError: bad thing: it broke\nTraceback (most recent call last):\n\u{a0}\u{a0}File \""),
        "{log}"
    );
    let event = wait_event(&server, &name, |e| e.starts_with("[ERROR] ValueError"));
    assert!(
        event.contains("Traceback (most recent call last):\n")
            && event.contains("\u{a0}\u{a0}\u{a0}\u{a0}raise ValueError(\"bad thing: \" + why)"),
        "one event holds the whole trace: {event:?}"
    );

    // The environment survives a handled error; an empty message reads as Lambda's.
    let quiet = invoke(&server, &name, br#"{"quiet":true}"#).await;
    assert_eq!(quiet.function_error.as_deref(), Some("Unhandled"));
    let q = quiet.json();
    assert_eq!(q["errorType"], "KeyError");
    assert_eq!(q["errorMessage"], "");
    assert!(
        quiet.log().contains("[ERROR] KeyError\nTraceback"),
        "{}",
        quiet.log()
    );
    assert!(
        !quiet.log().contains("Init Duration"),
        "warm after an error"
    );
}

const MARSHAL_APP: &str = r#"import decimal


def handler(event, context):
    kind = event["kind"]
    if kind == "set":
        return {"s": {1, 2}}
    if kind == "decimal":
        return {"price": decimal.Decimal("1.10"), "n": decimal.Decimal("12345678901234567890")}
    if kind == "bytes":
        return b"raw \x00 bytes"
    if kind == "str":
        return "caf\u00e9"
    return None
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_are_marshalled_as_lambda_does() {
    require_python!();
    let server = Server::start();
    let name = deploy(&server, &[("app.py", MARSHAL_APP)], "app.handler").await;

    let inv = invoke(&server, &name, br#"{"kind":"set"}"#).await;
    assert_eq!(inv.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(
        inv.json(),
        json!({
            "errorMessage": "Unable to marshal response: Object of type set is not JSON serializable",
            "errorType": "Runtime.MarshalError",
            "requestId": inv.request_id.clone().unwrap(),
            "stackTrace": []
        })
    );
    assert!(inv.log().contains(
        "[ERROR] Runtime.MarshalError: Unable to marshal response: Object of type set is not JSON serializable\nTraceback (most recent call last):"
    ));

    let inv = invoke(&server, &name, br#"{"kind":"decimal"}"#).await;
    assert_eq!(inv.function_error, None, "{}", inv.text());
    assert_eq!(inv.text(), r#"{"price": 1.10, "n": 12345678901234567890}"#);

    let inv = invoke(&server, &name, br#"{"kind":"bytes"}"#).await;
    assert_eq!(inv.payload, b"raw \x00 bytes");

    let inv = invoke(&server, &name, br#"{"kind":"str"}"#).await;
    assert_eq!(inv.text(), r#""caf\u00e9""#);

    let inv = invoke(&server, &name, br#"{"kind":"none"}"#).await;
    assert_eq!(inv.text(), "null");
}

/// Invokes a function whose init fails and returns the error body, checking that the
/// environment is gone (the same error again on the next invoke).
async fn init_error(server: &Server, files: &[(&str, &str)], handler: &str) -> Value {
    let name = deploy(server, files, handler).await;
    let inv = invoke(server, &name, b"{}").await;
    assert_eq!(inv.status, 200);
    assert_eq!(
        inv.function_error.as_deref(),
        Some("Unhandled"),
        "{}",
        inv.text()
    );
    let v = inv.json();
    let again = invoke(server, &name, b"{}").await;
    assert_eq!(again.json(), v, "init is retried, and fails the same way");
    let error_type = v["errorType"].as_str().unwrap().to_string();
    let logged = wait_event(server, &name, |e| {
        e.starts_with(&format!("[ERROR] {error_type}"))
    });
    assert!(
        logged.contains("\nTraceback (most recent call last):"),
        "{logged:?}"
    );
    wait_event(server, &name, |e| {
        e.starts_with("[WARNING]\t") && e.contains("\t\tLAMBDA_WARNING: Unhandled exception.")
    });
    wait_event(server, &name, |e| {
        e.starts_with("INIT_REPORT Init Duration: ")
            && e.ends_with(&format!("Status: error\tError Type: {error_type}"))
    });
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_errors_have_lambdas_types_and_messages() {
    require_python!();
    let server = Server::start();
    let app = ("app.py", RETURN_NAME);

    let v = init_error(&server, &[app], "missing.handler").await;
    assert_eq!(
        v,
        json!({
            "errorMessage": "Unable to import module 'missing': No module named 'missing'",
            "errorType": "Runtime.ImportModuleError",
            "requestId": "",
            "stackTrace": []
        })
    );

    let v = init_error(&server, &[("app.py", "import notamodule\n")], "app.handler").await;
    assert_eq!(v["errorType"], "Runtime.ImportModuleError");
    assert_eq!(
        v["errorMessage"],
        "Unable to import module 'app': No module named 'notamodule'"
    );

    let v = init_error(&server, &[("lib/app.py", RETURN_NAME)], "lib/app.nope").await;
    assert_eq!(v["errorType"], "Runtime.HandlerNotFound");
    assert_eq!(
        v["errorMessage"],
        "Handler 'nope' missing on module 'lib/app'"
    );
    assert_eq!(v["stackTrace"], json!([]));

    let v = init_error(
        &server,
        &[("app.py", "def handler(event, context)\n    return 1\n")],
        "app.handler",
    )
    .await;
    assert_eq!(v["errorType"], "Runtime.UserCodeSyntaxError");
    assert_eq!(
        v["errorMessage"],
        "Syntax error in module 'app': expected ':' (app.py, line 1)"
    );
    let trace = v["stackTrace"][0].as_str().unwrap();
    assert_matches(
        r#"^  File ".+/app\.py" Line 1\n    def handler\(event, context\)\n$"#,
        trace,
        "syntax error trace",
    );

    let v = init_error(&server, &[app], "nodot").await;
    assert_eq!(v["errorType"], "Runtime.MalformedHandlerName");
    assert_eq!(
        v["errorMessage"],
        "Bad handler 'nodot': not enough values to unpack (expected 2, got 1)"
    );

    let v = init_error(&server, &[app], "sys.handler").await;
    assert_eq!(v["errorType"], "Runtime.BuiltInModuleConflict");
    assert_eq!(
        v["errorMessage"],
        "Cannot use built-in module sys as a handler module"
    );

    // An exception raised while importing: its own type, message and frames.
    let v = init_error(
        &server,
        &[(
            "app.py",
            "import os\nraise RuntimeError('no config: ' + os.environ.get('CFG', 'unset'))\n",
        )],
        "app.handler",
    )
    .await;
    assert_eq!(v["errorType"], "RuntimeError");
    assert_eq!(v["errorMessage"], "no config: unset");
    assert_eq!(v["requestId"], "");
    let frames = v["stackTrace"].as_array().unwrap();
    let last = frames.last().unwrap().as_str().unwrap();
    assert_matches(
        r#"^  File ".+/app\.py", line 2, in <module>\n    raise RuntimeError"#,
        last,
        "the failing frame",
    );
    assert!(
        !frames
            .iter()
            .any(|f| f.as_str().unwrap().contains("_sous_runtime")),
        "no runtime frames: {frames:#?}"
    );
}

const EXIT_APP: &str = r#"import os
import sys

COUNT = 0


def handler(event, context):
    global COUNT
    COUNT += 1
    if event.get("exit"):
        print("leaving")
        sys.exit(3)
    return {"count": COUNT, "env": context.log_stream_name}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sys_exit_in_the_handler_ends_the_environment() {
    require_python!();
    let server = Server::start();
    let name = deploy(&server, &[("app.py", EXIT_APP)], "app.handler").await;
    let a = ok_json(&server, &invoke(&server, &name, b"{}").await);
    assert_eq!(a["count"], 1);
    let inv = invoke(&server, &name, br#"{"exit":true}"#).await;
    assert_eq!(inv.function_error.as_deref(), Some("Unhandled"));
    let v = inv.json();
    assert_eq!(v["errorType"], "Runtime.ExitError", "{v}");
    assert!(
        v["errorMessage"]
            .as_str()
            .unwrap()
            .ends_with("Error: Runtime exited with error: exit status 3"),
        "{v}"
    );
    assert!(inv.log().contains("leaving\n"), "{}", inv.log());
    let b = ok_json(&server, &invoke(&server, &name, b"{}").await);
    assert_eq!(b["count"], 1, "a new environment imports the module again");
    // Environments are told apart by their log stream (a PID is 2 in every sandbox).
    assert_ne!(b["env"], a["env"]);
}

// ---------------------------------------------------------------------------------------
// Logging

const LOGGING_APP: &str = r#"import logging
import sys

logger = logging.getLogger()
logger.setLevel(logging.INFO)
# A no-op on Lambda: the root logger already has the runtime's handler.
logging.basicConfig(format="IGNORED %(message)s", level=logging.DEBUG)
logger.info("loaded at init")


def handler(event, context):
    logger.info("info %s", event["word"])
    logger.debug("debug is below the level")
    logging.getLogger("child").warning("two\nlines")
    print("printed", event["word"])
    print("to stderr", file=sys.stderr)
    context.log("from context.log\n")
    return "ok"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_root_logger_is_set_up_as_lambda_does() {
    require_python!();
    let server = Server::start();
    let name = deploy(&server, &[("app.py", LOGGING_APP)], "app.handler").await;
    let inv = invoke(&server, &name, br#"{"word":"hello"}"#).await;
    assert_eq!(ok_json(&server, &inv), json!("ok"));
    let rid = inv.request_id.clone().unwrap();
    let log = inv.log();
    assert_matches(
        &format!(r"(?m)^\[INFO\]\t{TS}\t{rid}\tinfo hello$"),
        log,
        "logger.info line",
    );
    assert_matches(
        &format!(r"(?m)^\[WARNING\]\t{TS}\t{rid}\ttwo\nlines$"),
        log,
        "child logger warning",
    );
    assert!(!log.contains("debug is below"), "{log}");
    assert!(!log.contains("IGNORED"), "basicConfig is a no-op: {log}");
    assert!(log.contains("\nprinted hello\n"), "{log}");
    assert!(log.contains("\nto stderr\n"), "{log}");
    assert!(log.contains("\nfrom context.log\n"), "{log}");

    // Each record is one event; the init-time record has no request id.
    let event = wait_event(&server, &name, |e| e.contains("\ttwo\nlines"));
    assert!(event.starts_with("[WARNING]\t"), "{event:?}");
    let init = wait_event(&server, &name, |e| e.ends_with("\tloaded at init"));
    assert_matches(
        &format!(r"^\[INFO\]\t{TS}\t\tloaded at init$"),
        &init,
        "init log",
    );
}

const DEFAULT_LEVEL_APP: &str = r#"import logging

logger = logging.getLogger(__name__)


def handler(event, context):
    logger.info("info is below the default level")
    logger.warning("a warning")
    return {"root_level": logging.getLogger().level, "handlers": len(logging.getLogger().handlers)}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_default_level_is_warning() {
    require_python!();
    let server = Server::start();
    let name = deploy(&server, &[("app.py", DEFAULT_LEVEL_APP)], "app.handler").await;
    let inv = invoke(&server, &name, b"{}").await;
    let v = ok_json(&server, &inv);
    assert_eq!(v, json!({"root_level": 30, "handlers": 1}));
    let rid = inv.request_id.clone().unwrap();
    assert_matches(
        &format!(r"(?m)^\[WARNING\]\t{TS}\t{rid}\ta warning$"),
        inv.log(),
        "warning line",
    );
    assert!(!inv.log().contains("below the default"), "{}", inv.log());
}

// ---------------------------------------------------------------------------------------
// The seed document's handlers, in Python

const BASIC_APP: &str = r#"def lambda_handler(event, context):
    print("Event:", event)
    print("Context:", context)
    return {
        "statusCode": 200,
        "body": {"message": "Hello from Lambda!", "input": event},
    }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_basic_handler() {
    require_python!();
    let server = Server::start();
    let name = deploy(
        &server,
        &[("lambda_function.py", BASIC_APP)],
        "lambda_function.lambda_handler",
    )
    .await;
    let inv = invoke(&server, &name, br#"{"key1":"value1"}"#).await;
    assert_eq!(
        ok_json(&server, &inv),
        json!({"statusCode": 200, "body": {"message": "Hello from Lambda!", "input": {"key1": "value1"}}})
    );
    let rid = inv.request_id.clone().unwrap();
    let log = inv.log();
    assert!(log.contains("\nEvent: {'key1': 'value1'}\n"), "{log}");
    assert!(
        log.contains(&format!("\nContext: LambdaContext([aws_request_id={rid},")),
        "{log}"
    );
}

const REMAINING_APP: &str = r#"import time


def handler(event, context):
    # Stop with a safety margin before the timeout, reporting partial progress.
    margin_ms = event.get("margin_ms", 1000)
    processed = []
    for item in event["items"]:
        if context.get_remaining_time_in_millis() < margin_ms:
            return {
                "statusCode": 206,
                "body": {"processed": processed, "remaining": len(event["items"]) - len(processed)},
            }
        time.sleep(item.get("work_s", 0))
        print("processed item %s, %d ms left" % (item["id"], context.get_remaining_time_in_millis()))
        processed.append(item["id"])
    return {"statusCode": 200, "body": {"processed": processed, "remaining": 0}}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_remaining_time_loop() {
    require_python!();
    let server = Server::start();
    let name = unique("py");
    create_ok(
        &server,
        create_py(
            &server,
            &name,
            &py_zip(&[("app.py", REMAINING_APP)]),
            "app.handler",
        )
        .timeout(10),
    )
    .await;
    let all = ok_json(
        &server,
        &invoke(&server, &name, br#"{"items":[{"id":1},{"id":2}]}"#).await,
    );
    assert_eq!(
        all,
        json!({"statusCode": 200, "body": {"processed": [1, 2], "remaining": 0}})
    );

    // 10 s timeout, 1 s of work per item, stop at 7 s left: some, not all, are done (up to
    // 2 s of a busy machine's delay before the first check still leaves one).
    let items: Vec<Value> = (1..=10).map(|i| json!({"id": i, "work_s": 1.0})).collect();
    let payload = json!({"items": items, "margin_ms": 7000}).to_string();
    let inv = invoke(&server, &name, payload.as_bytes()).await;
    let v = ok_json(&server, &inv);
    assert_eq!(v["statusCode"], 206, "{v}");
    let done = v["body"]["processed"].as_array().unwrap().len();
    assert!((1..=4).contains(&done), "{v}");
    assert_eq!(v["body"]["remaining"], 10 - done);
    assert!(inv.log().contains("processed item 1, "), "{}", inv.log());
}

const API_APP: &str = r#"import json

ITEMS = {"42": {"id": "42", "name": "Example Item"}}


def respond(status, body):
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }


def handler(event, context):
    method = event["httpMethod"]
    params = event.get("pathParameters") or {}
    if method == "GET":
        item = ITEMS.get(params.get("id"))
        if item is None:
            return respond(404, {"message": "Item not found"})
        return respond(200, item)
    if method == "POST":
        try:
            data = json.loads(event["body"] or "")
        except ValueError:
            return respond(400, {"message": "Invalid JSON body"})
        ITEMS[data["id"]] = data
        return respond(201, {"created": data, "by": event["requestContext"]["identity"]["sourceIp"]})
    return respond(405, {"message": "Method %s not allowed" % method})
"#;

fn api_gateway_event(method: &str, id: Option<&str>, body: Option<&str>) -> Value {
    json!({
        "resource": "/items/{id}",
        "path": format!("/items/{}", id.unwrap_or("")),
        "httpMethod": method,
        "headers": {"Accept": "application/json", "Host": "abc123.execute-api.us-east-1.amazonaws.com"},
        "multiValueHeaders": {"Accept": ["application/json"]},
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": id.map(|i| json!({"id": i})),
        "stageVariables": null,
        "requestContext": {
            "resourceId": "abc123",
            "resourcePath": "/items/{id}",
            "httpMethod": method,
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "accountId": "123456789012",
            "stage": "prod",
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "curl/8.0"},
            "apiId": "abc123"
        },
        "body": body,
        "isBase64Encoded": false
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_api_gateway_handler() {
    require_python!();
    let server = Server::start();
    let name = deploy(&server, &[("api.py", API_APP)], "api.handler").await;
    let call = |method: &'static str, id: Option<&'static str>, body: Option<&'static str>| {
        let payload = api_gateway_event(method, id, body).to_string();
        let server = &server;
        let name = name.clone();
        async move {
            let v = ok_json(server, &invoke(server, &name, payload.as_bytes()).await);
            assert_eq!(v["headers"]["Content-Type"], "application/json");
            let body: Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
            (v["statusCode"].as_i64().unwrap(), body)
        }
    };
    assert_eq!(
        call("GET", Some("42"), None).await,
        (200, json!({"id": "42", "name": "Example Item"}))
    );
    assert_eq!(
        call("GET", Some("7"), None).await,
        (404, json!({"message": "Item not found"}))
    );
    assert_eq!(
        call("POST", None, Some(r#"{"id":"7","name":"New"}"#)).await,
        (
            201,
            json!({"created": {"id": "7", "name": "New"}, "by": "203.0.113.7"})
        )
    );
    assert_eq!(
        call("GET", Some("7"), None).await,
        (200, json!({"id": "7", "name": "New"})),
        "state kept in the warm environment"
    );
    assert_eq!(
        call("POST", None, Some("{not json")).await,
        (400, json!({"message": "Invalid JSON body"}))
    );
    assert_eq!(
        call("DELETE", Some("7"), None).await,
        (405, json!({"message": "Method DELETE not allowed"}))
    );
}

const S3_APP: &str = r#"import urllib.parse


def handler(event, context):
    record = event["Records"][0]
    s3 = record["s3"]
    bucket = s3["bucket"]["name"]
    key = urllib.parse.unquote_plus(s3["object"]["key"])
    size = s3["object"].get("size", 0)
    print("New object %s/%s (%d bytes) from %s" % (bucket, key, size, record["eventName"]))
    return {"bucket": bucket, "key": key, "size": size, "region": record["awsRegion"]}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_s3_event_handler() {
    require_python!();
    let server = Server::start();
    let name = deploy(&server, &[("s3handler.py", S3_APP)], "s3handler.handler").await;
    let event = json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-east-1",
            "eventTime": "2024-01-01T12:00:00.000Z",
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "EXAMPLE"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {"x-amz-request-id": "EXAMPLE123456789", "x-amz-id-2": "EXAMPLE123/abc"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "testConfigRule",
                "bucket": {"name": "photo-bucket", "ownerIdentity": {"principalId": "EXAMPLE"}, "arn": "arn:aws:s3:::photo-bucket"},
                "object": {"key": "uploads/my+photo%281%29.jpg", "size": 1024, "eTag": "0123456789abcdef0123456789abcdef", "sequencer": "0A1B2C3D4E5F678901"}
            }
        }]
    });
    let inv = invoke(&server, &name, event.to_string().as_bytes()).await;
    assert_eq!(
        ok_json(&server, &inv),
        json!({"bucket": "photo-bucket", "key": "uploads/my photo(1).jpg", "size": 1024, "region": "us-east-1"})
    );
    assert!(
        inv.log().contains("\nNew object photo-bucket/uploads/my photo(1).jpg (1024 bytes) from ObjectCreated:Put\n"),
        "{}",
        inv.log()
    );
}

const STRUCTURED_APP: &str = r#"import json
import logging
import time


class JsonFormatter(logging.Formatter):
    def format(self, record):
        entry = {
            "level": record.levelname,
            "message": record.getMessage(),
            "requestId": getattr(record, "aws_request_id", None),
            "function": record.funcName,
        }
        entry.update(getattr(record, "extra_fields", {}))
        return json.dumps(entry)


root = logging.getLogger()
root.setLevel(logging.INFO)
for h in root.handlers:
    h.setFormatter(JsonFormatter())
log = logging.getLogger("orders")


def handler(event, context):
    start = time.time()
    log.info("processing order", extra={"extra_fields": {"orderId": event["orderId"]}})
    result = {"orderId": event["orderId"], "status": "done"}
    log.info("order processed", extra={"extra_fields": {"durationMs": int((time.time() - start) * 1000)}})
    return result
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_structured_logging_handler() {
    require_python!();
    let server = Server::start();
    let name = deploy(&server, &[("app.py", STRUCTURED_APP)], "app.handler").await;
    let inv = invoke(&server, &name, br#"{"orderId":"o-17"}"#).await;
    assert_eq!(
        ok_json(&server, &inv),
        json!({"orderId": "o-17", "status": "done"})
    );
    let rid = inv.request_id.clone().unwrap();
    let records: Vec<Value> = inv
        .log()
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(records.len(), 2, "{}", inv.log());
    assert_eq!(
        records[0],
        json!({"level": "INFO", "message": "processing order", "requestId": rid, "function": "handler", "orderId": "o-17"})
    );
    assert_eq!(records[1]["message"], "order processed");
    assert_eq!(records[1]["requestId"], rid.as_str());
    assert!(records[1]["durationMs"].is_number());
}

// ---------------------------------------------------------------------------------------
// Cold start (a measurement, not a check: `cargo test -p sous --test it --
// --ignored --nocapture runtime_python::cold_start`)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn cold_start_overhead_over_bare_python() {
    require_python!();
    let runs = 41;
    let python = std::process::Command::new("python3.11")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap();
    let mut bare = Vec::new();
    let server = Server::start_with(ServerOptions {
        no_echo_logs: true,
        ..Default::default()
    });
    let zip = py_zip(&[(
        "app.py",
        "def handler(event, context):\n    return {'ok': True}\n",
    )]);
    let mut init = Vec::new();
    let mut cold = Vec::new();
    for _ in 0..runs {
        let t = std::time::Instant::now();
        std::process::Command::new(&python)
            .args(["-c", "pass"])
            .env_clear()
            .status()
            .unwrap();
        bare.push(t.elapsed().as_secs_f64() * 1000.0);
        let name = unique("cold");
        create_ok(&server, create_py(&server, &name, &zip, "app.handler")).await;
        let inv = invoke(&server, &name, b"{}").await;
        ok_json(&server, &inv);
        cold.push(inv.elapsed.as_secs_f64() * 1000.0);
        let log = inv.log();
        let init_ms: f64 = log
            .split("Init Duration: ")
            .nth(1)
            .and_then(|s| s.split(" ms").next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no Init Duration in {log}"));
        init.push(init_ms);
    }
    let p50 = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let (b, i, c) = (p50(&mut bare), p50(&mut init), p50(&mut cold));
    println!(
        "python3 -c pass p50 {b:.2} ms; Init Duration p50 {i:.2} ms (+{:.2}); cold Invoke p50 {c:.2} ms (+{:.2})",
        i - b,
        c - b
    );
}

const SYS_PATH_APP: &str = r#"import sys

def handler(event, context):
    import json  # the standard library
    try:
        import pip  # a package of the host interpreter's site-packages: not Lambda's
        pip_found = pip.__file__
    except ImportError:
        pip_found = None
    return {"path": sys.path, "pip": pip_found, "exit": callable(exit) and callable(quit)}
"#;

/// The import path is Lambda's order: the function's code, the layers' directories, then the
/// interpreter's standard library. The host interpreter's site-packages are not on it (issue
/// 13: on Lambda, a package the function did not bring is not importable).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_path_is_task_layers_then_the_standard_library() {
    require_python!();
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import site, json; print(json.dumps(site.getsitepackages()))",
        ])
        .output()
        .unwrap();
    let host_site: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    let server = Server::start();
    let name = deploy(&server, &[("app.py", SYS_PATH_APP)], "app.handler").await;
    let inv = invoke(&server, &name, b"{}").await;
    let v = ok_json(&server, &inv);
    let path: Vec<String> = serde_json::from_value(v["path"].clone()).unwrap();
    assert_eq!(path[0], "/var/task", "{path:?}");
    assert_eq!(
        &path[1..3],
        ["/opt/python/lib/python3.11/site-packages", "/opt/python"],
        "{path:?}"
    );
    assert!(
        !path.iter().any(|p| host_site.contains(p)
            || p.ends_with("site-packages") && !p.starts_with("/opt/")
            || p.ends_with("dist-packages")),
        "no host site-packages: {path:?}"
    );
    assert!(v["pip"].is_null(), "{v}");
    assert_eq!(v["exit"], true, "{v}");
}
