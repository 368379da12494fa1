//! The `nodejs20.x` managed runtime (issue 3), driven through the Lambda API of the real
//! binary: handler forms (CommonJS, ES modules, `.cjs`, nested paths, async, callback, legacy
//! `context.succeed`), `callbackWaitsForEmptyEventLoop`, the context object, handler and init
//! errors in Lambda's Node.js shapes, console logging, process-ending failures, and Node.js
//! handlers of the kind the seed document shows (API Gateway, S3, structured logging, the
//! remaining-time loop). Needs Node.js 20 on `PATH`, as the machine kind has.

use std::time::{Duration, Instant};

use crate::common::*;
use aws_sdk_lambda::types::Runtime;
use serde_json::{json, Value};

/// A function's files: (path in the zip, content).
type Files = Vec<(&'static str, &'static str)>;

const TS: &str = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z";

fn js_zip(files: &[(&str, &str)]) -> Vec<u8> {
    let entries: Vec<(&str, &[u8], u32)> = files
        .iter()
        .map(|(p, d)| (*p, d.as_bytes(), 0o644))
        .collect();
    zip_files(&entries)
}

/// Creates a `nodejs20.x` function (timeout 10 s, 256 MB) and returns its name.
async fn node_fn(server: &Server, prefix: &str, handler: &str, files: &[(&str, &str)]) -> String {
    node_fn_with(server, prefix, handler, files, 10).await
}

async fn node_fn_with(
    server: &Server,
    prefix: &str,
    handler: &str,
    files: &[(&str, &str)],
    timeout: i32,
) -> String {
    let name = unique(prefix);
    create_ok(
        server,
        create(&server.client, &name, &js_zip(files))
            .runtime(Runtime::Nodejs20x)
            .handler(handler)
            .memory_size(256)
            .timeout(timeout),
    )
    .await;
    name
}

/// Invokes and asserts success, returning the JSON payload.
async fn ok_json(server: &Server, name: &str, payload: &[u8]) -> (Value, Invoked) {
    let out = invoke(server, name, payload).await;
    assert_eq!(
        out.function_error,
        None,
        "{name}: {}\nlog:\n{}\n{}",
        out.text(),
        out.log.as_deref().unwrap_or(""),
        server.output_tail(3000)
    );
    (out.json(), out)
}

/// Invokes and asserts a function error (`X-Amz-Function-Error: Unhandled`), returning the body.
async fn err_json(server: &Server, name: &str, payload: &[u8]) -> (Value, Invoked) {
    let out = invoke(server, name, payload).await;
    assert_eq!(
        out.function_error.as_deref(),
        Some("Unhandled"),
        "{name}: {}\n{}",
        out.text(),
        out.log.as_deref().unwrap_or("")
    );
    (out.json(), out)
}

/// The Tail log's line that carries `needle`, split into its tab-separated fields.
fn log_line<'a>(log: &'a str, needle: &str) -> Vec<&'a str> {
    let line = log
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no log line with {needle:?} in:\n{log}"));
    line.splitn(4, '\t').collect()
}

/// The error body has exactly Lambda's Node.js keys, in Lambda's order (checked on the raw text:
/// `serde_json::Value` sorts keys).
fn assert_error_keys(out: &Invoked, what: &str) {
    let v = out.json();
    let mut keys: Vec<&String> = v
        .as_object()
        .expect("error body is an object")
        .keys()
        .collect();
    keys.sort();
    assert_eq!(keys, ["errorMessage", "errorType", "trace"], "{what}: {v}");
    let text = out.text();
    let at = |k: &str| text.find(&format!("\"{k}\":")).unwrap();
    assert!(
        text.starts_with("{\"errorType\":")
            && at("errorType") < at("errorMessage")
            && at("errorMessage") < at("trace"),
        "{what}: key order of {text}"
    );
}

fn has_init_duration(out: &Invoked) -> bool {
    out.log().contains("Init Duration: ")
}

// ---------------------------------------------------------------------------------------------
// Handler forms

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_forms_resolve_as_on_lambda() {
    let server = Server::start();
    let cases: Vec<(&str, Files, Value)> = vec![
        (
            "index.handler",
            vec![(
                "index.js",
                "exports.handler = async (event) => ({ form: 'cjs', got: event });",
            )],
            json!({"form": "cjs", "got": {"k": 1}}),
        ),
        (
            "app.handler",
            vec![(
                "app.mjs",
                "import { basename } from 'node:path';\n\
                 export const handler = async (event) => ({ form: 'mjs', file: basename(import.meta.url), got: event });",
            )],
            json!({"form": "mjs", "file": "app.mjs", "got": {"k": 1}}),
        ),
        (
            "main.handler",
            vec![
                ("package.json", r#"{"name":"esm-pkg","type":"module"}"#),
                (
                    "main.js",
                    "export async function handler(event) { return { form: 'type-module', cjs: typeof require }; }",
                ),
            ],
            json!({"form": "type-module", "cjs": "undefined"}),
        ),
        (
            "legacy.handler",
            vec![(
                "legacy.cjs",
                "module.exports.handler = async () => ({ form: 'cjs-ext', cjs: typeof require });",
            )],
            json!({"form": "cjs-ext", "cjs": "function"}),
        ),
        (
            "src/lib/deep.handler",
            vec![
                ("src/lib/deep.js", "const h = require('helper');\nexports.handler = async () => ({ form: 'nested', helper: h.name });"),
                // Bare `require('helper')` from a nested file finds the task root on NODE_PATH.
                ("helper.js", "exports.name = 'task-root-helper';"),
            ],
            json!({"form": "nested", "helper": "task-root-helper"}),
        ),
        (
            "index.handlers.v2.main",
            vec![(
                "index.js",
                "exports.handlers = { v2: { main: async () => ({ form: 'nested-export' }) } };",
            )],
            json!({"form": "nested-export"}),
        ),
        (
            "index.handler",
            vec![(
                "index.js",
                "exports.handler = (event, context, callback) => { setImmediate(() => callback(null, { form: 'callback', got: event })); };",
            )],
            json!({"form": "callback", "got": {"k": 1}}),
        ),
        (
            "index.handler",
            vec![(
                "index.js",
                "exports.handler = (event, context) => { context.succeed({ form: 'succeed' }); };",
            )],
            json!({"form": "succeed"}),
        ),
        (
            "index.handler",
            vec![(
                "index.js",
                "exports.handler = (event, context) => { context.done(null, { form: 'done' }); };",
            )],
            json!({"form": "done"}),
        ),
        (
            "index.handler",
            vec![(
                "index.js",
                "exports.handler = () => Promise.resolve({ form: 'thenable' });",
            )],
            json!({"form": "thenable"}),
        ),
        (
            // A non-async handler that neither returns a promise nor calls back: Lambda answers
            // null once the event loop is empty.
            "index.handler",
            vec![("index.js", "exports.handler = () => 42;")],
            Value::Null,
        ),
        (
            "index.handler",
            vec![(
                "index.js",
                "exports.handler = async () => ({\n\
                   execEnv: process.env.AWS_EXECUTION_ENV,\n\
                   nodePath: process.env.NODE_PATH,\n\
                   taskRoot: process.env.LAMBDA_TASK_ROOT,\n\
                   runtimeDir: process.env.LAMBDA_RUNTIME_DIR,\n\
                   cwd: process.cwd(),\n\
                   major: process.versions.node.split('.')[0],\n\
                   searched: require.resolve.paths('some-layer-package'),\n\
                   gc: (global.gc(), typeof global.gc),\n\
                   execArgv: process.execArgv,\n\
                   platformVars: Object.keys(process.env).filter((k) =>\n\
                     k.startsWith('_SOUS') || k.startsWith('_LAMBDA_TELEMETRY')),\n\
                   childSeesApiFds: require('child_process').execSync(\n\
                     'for f in 4 5; do [ -e /proc/$$/fd/$f ] && echo $f; done; true').toString(),\n\
                 });",
            )],
            Value::Null, // checked below
        ),
    ];
    let mut last = Value::Null;
    let mut last_log = String::new();
    for (i, (handler, files, want)) in cases.iter().enumerate() {
        let name = node_fn(&server, &format!("form{i}"), handler, files).await;
        let (got, out) = ok_json(&server, &name, br#"{"k":1}"#).await;
        if i + 1 < cases.len() {
            assert_eq!(&got, want, "handler {handler} (case {i})");
        }
        last = got;
        last_log = out.log.unwrap_or_default();
    }

    // Max Memory Used counts what the runtime holds, its interpreter's code included (a cgroup
    // alone is not charged for pages the host had cached: it said 7 MB for Node.js).
    let used = crate::common::attack::max_memory_used(&last_log);
    assert!(
        (20..=256).contains(&used),
        "Max Memory Used: {used} MB for Node.js: {last_log}"
    );

    // The environment Lambda's Node.js runtime gives.
    assert_eq!(last["execEnv"], "AWS_Lambda_nodejs20.x");
    assert_eq!(last["major"], "20");
    assert_eq!(
        last["gc"], "function",
        "global.gc() as with Lambda's --expose-gc"
    );
    // No V8 flag on the command line: one would make node drop its code cache (slow starts).
    assert_eq!(last["execArgv"], json!(["--max-http-header-size=81920"]));
    // The runtime's own descriptors (telemetry, Runtime API pipes) are not the function's
    // business, as on Lambda.
    assert_eq!(last["platformVars"], json!([]));
    assert_eq!(
        last["childSeesApiFds"], "",
        "the Runtime API pipes are not inherited by the function's child processes"
    );
    let task_root = last["taskRoot"].as_str().unwrap().trim_end_matches('/');
    let runtime_dir = last["runtimeDir"].as_str().unwrap().trim_end_matches('/');
    assert_eq!(
        last["cwd"].as_str().unwrap().trim_end_matches('/'),
        task_root,
        "the runtime runs in the task root"
    );
    // Lambda's NODE_PATH for nodejs20.x, with this environment's runtime dir and task root
    // (`/var/runtime` and `/var/task` in a sandbox).
    assert_eq!(
        last["nodePath"],
        format!(
            "/opt/nodejs/node20/node_modules:/opt/nodejs/node_modules:{runtime_dir}/node_modules:{runtime_dir}:{task_root}"
        )
    );
    let searched: Vec<&str> = last["searched"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        searched.contains(&"/opt/nodejs/node_modules")
            && searched.contains(&"/opt/nodejs/node20/node_modules"),
        "layer paths are on the module path: {searched:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_waits_for_the_event_loop_unless_told_not_to() {
    let server = Server::start();
    // The timer mutates the result after the callback: the response shows whether it was
    // serialized before or after the event loop emptied.
    let name = node_fn(
        &server,
        "cbwait",
        "index.handler",
        &[(
            "index.js",
            "exports.handler = (event, context, callback) => {\n\
               const out = { timerRan: false, defaultWaits: context.callbackWaitsForEmptyEventLoop };\n\
               if (event.wait === false) context.callbackWaitsForEmptyEventLoop = false;\n\
               setTimeout(() => { out.timerRan = true; }, 300);\n\
               callback(null, out);\n\
             };",
        )],
    )
    .await;
    let t = Instant::now();
    let (waited, _) = ok_json(&server, &name, br#"{"wait":true}"#).await;
    let waited_for = t.elapsed();
    assert_eq!(waited, json!({"timerRan": true, "defaultWaits": true}));
    assert!(waited_for >= Duration::from_millis(300), "{waited_for:?}");

    let (immediate, _) = ok_json(&server, &name, br#"{"wait":false}"#).await;
    assert_eq!(immediate, json!({"timerRan": false, "defaultWaits": true}));

    // An async handler's result is sent when its promise settles, pending timers or not.
    let name = node_fn(
        &server,
        "asyncnowait",
        "index.handler",
        &[(
            "index.js",
            "exports.handler = async () => { const out = { timerRan: false }; setTimeout(() => { out.timerRan = true; }, 300); return out; };",
        )],
    )
    .await;
    let (v, _) = ok_json(&server, &name, b"{}").await;
    assert_eq!(v, json!({"timerRan": false}));

    // An async handler whose promise never settles, with nothing left to run: Runtime.NodeJsExit.
    let name = node_fn(
        &server,
        "nodeexit",
        "index.handler",
        &[(
            "index.js",
            "exports.handler = async () => new Promise(() => {});",
        )],
    )
    .await;
    let (e, _) = err_json(&server, &name, b"{}").await;
    assert_eq!(e["errorType"], "Runtime.NodeJsExit");
    assert!(e["errorMessage"]
        .as_str()
        .unwrap()
        .contains("Promise that was never settled"));
}

// ---------------------------------------------------------------------------------------------
// Context

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_object_has_every_field() {
    let server = Server::start();
    let name = node_fn_with(
        &server,
        "ctx",
        "index.handler",
        &[(
            "index.js",
            "exports.handler = async (event, context) => ({\n\
               awsRequestId: context.awsRequestId,\n\
               functionName: context.functionName,\n\
               functionVersion: context.functionVersion,\n\
               invokedFunctionArn: context.invokedFunctionArn,\n\
               memoryLimitInMB: context.memoryLimitInMB,\n\
               logGroupName: context.logGroupName,\n\
               logStreamName: context.logStreamName,\n\
               identity: context.identity === undefined ? 'undefined' : context.identity,\n\
               clientContext: context.clientContext,\n\
               remaining: context.getRemainingTimeInMillis(),\n\
               waits: context.callbackWaitsForEmptyEventLoop,\n\
               methods: ['succeed', 'fail', 'done', 'getRemainingTimeInMillis'].map((m) => typeof context[m]),\n\
               stringified: Object.keys(JSON.parse(JSON.stringify(context))),\n\
               traceEnv: process.env._X_AMZN_TRACE_ID,\n\
             });",
        )],
        20,
    )
    .await;
    let ctx = r#"{"client":{"installation_id":"inst-1","app_title":"Sous tests"},"custom":{"k":"v"},"env":{"platform":"linux"}}"#;
    let out = send_invoke(
        &server,
        invoke_req(&server.client, &name, b"{}").client_context(b64(ctx.as_bytes())),
    )
    .await;
    assert_eq!(out.function_error, None, "{}", out.text());
    let v = out.json();
    assert_eq!(v["awsRequestId"].as_str(), out.request_id.as_deref());
    assert_eq!(v["functionName"], name.as_str());
    assert_eq!(v["functionVersion"], "$LATEST");
    assert_eq!(v["invokedFunctionArn"], function_arn(&name));
    assert_eq!(v["memoryLimitInMB"], "256", "a string, as on Lambda");
    assert_eq!(v["logGroupName"], format!("/aws/lambda/{name}"));
    assert_matches(
        r"^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$",
        v["logStreamName"].as_str().unwrap_or(""),
        "log stream",
    );
    assert_eq!(v["identity"], "undefined");
    assert_eq!(
        v["clientContext"],
        serde_json::from_str::<Value>(ctx).unwrap()
    );
    let remaining = v["remaining"].as_i64().unwrap();
    assert!(
        (10_000..=20_000).contains(&remaining),
        "remaining {remaining} ms of a 20 s timeout"
    );
    assert_eq!(v["waits"], true);
    assert_eq!(
        v["methods"],
        json!(["function", "function", "function", "function"])
    );
    assert_eq!(
        v["stringified"],
        json!([
            "callbackWaitsForEmptyEventLoop",
            "functionVersion",
            "functionName",
            "memoryLimitInMB",
            "logGroupName",
            "logStreamName",
            "clientContext",
            "invokedFunctionArn",
            "awsRequestId"
        ])
    );
    assert_matches(
        r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24}",
        v["traceEnv"].as_str().unwrap_or(""),
        "_X_AMZN_TRACE_ID",
    );

    // Per invocation: a new request id and trace id, no client context this time.
    let (w, second) = ok_json(&server, &name, b"{}").await;
    assert_eq!(w["awsRequestId"].as_str(), second.request_id.as_deref());
    assert_ne!(w["awsRequestId"], v["awsRequestId"]);
    assert_ne!(w["traceEnv"], v["traceEnv"]);
    assert!(w.get("clientContext").is_none());
}

// ---------------------------------------------------------------------------------------------
// Errors

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_errors_are_reported_in_lambdas_node_shape() {
    let server = Server::start();
    let name = node_fn(
        &server,
        "errs",
        "index.handler",
        &[(
            "index.js",
            "class ValidationError extends Error {\n\
               constructor(m) { super(m); this.name = 'ValidationError'; this.field = 'email'; }\n\
             }\n\
             let calls = 0;\n\
             exports.handler = async (event, context) => {\n\
               calls += 1;\n\
               switch (event.mode) {\n\
                 case 'custom': throw new ValidationError('bad input');\n\
                 case 'string': throw 'plain string';\n\
                 case 'object': throw { code: 42 };\n\
                 case 'fail-empty': return new Promise(() => context.fail());\n\
                 case 'callback': return new Promise(() => {});\n\
                 default: return { calls };\n\
               }\n\
             };",
        )],
    )
    .await;

    let (e, out) = err_json(&server, &name, br#"{"mode":"custom"}"#).await;
    assert_error_keys(&out, "custom error");
    assert_eq!(e["errorType"], "ValidationError");
    assert_eq!(e["errorMessage"], "bad input");
    let trace: Vec<&str> = e["trace"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(trace[0], "ValidationError: bad input");
    assert!(
        trace.iter().any(|l| l.contains("index.js")),
        "stack frames: {trace:?}"
    );
    // Logged as one ERROR record: `Invoke Error` and the error as JSON with its own properties.
    let rid = out.request_id.clone().unwrap();
    let fields = log_line(out.log(), "Invoke Error");
    assert_matches(&format!("^{TS}$"), fields[0], "timestamp");
    assert_eq!(fields[1], rid);
    assert_eq!(fields[2], "ERROR");
    let (label, json_text) = fields[3].split_once('\t').expect("tab before the JSON");
    assert_eq!(label, "Invoke Error ");
    let logged: Value = serde_json::from_str(json_text).unwrap();
    assert_eq!(logged["errorType"], "ValidationError");
    assert_eq!(logged["errorMessage"], "bad input");
    assert_eq!(logged["field"], "email");
    assert_eq!(logged["stack"][0], "ValidationError: bad input");

    let (e, _) = err_json(&server, &name, br#"{"mode":"string"}"#).await;
    assert_eq!(
        e,
        json!({"errorType": "string", "errorMessage": "plain string", "trace": []})
    );
    let (e, _) = err_json(&server, &name, br#"{"mode":"object"}"#).await;
    assert_eq!(
        e,
        json!({"errorType": "object", "errorMessage": "[object Object]", "trace": []})
    );
    let (e, _) = err_json(&server, &name, br#"{"mode":"fail-empty"}"#).await;
    assert_eq!(
        e,
        json!({"errorType": "string", "errorMessage": "handled", "trace": []})
    );

    // Handled errors keep the environment: same module state, no new init.
    let (v, warm) = ok_json(&server, &name, b"{}").await;
    assert_eq!(v["calls"], 5);
    assert!(!has_init_duration(&warm), "{}", warm.log());

    // Callback-style errors.
    let name = node_fn(
        &server,
        "cberr",
        "index.handler",
        &[(
            "index.js",
            "exports.handler = (event, context, callback) => {\n\
               if (event.sync) throw new RangeError('thrown synchronously');\n\
               callback(new TypeError('passed to the callback'), { ignored: true });\n\
             };",
        )],
    )
    .await;
    let (e, _) = err_json(&server, &name, b"{}").await;
    assert_eq!(e["errorType"], "TypeError");
    assert_eq!(e["errorMessage"], "passed to the callback");
    let (e, _) = err_json(&server, &name, br#"{"sync":true}"#).await;
    assert_eq!(e["errorType"], "RangeError");
    assert_eq!(e["errorMessage"], "thrown synchronously");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_errors_are_lambdas() {
    let server = Server::start();
    struct Case {
        handler: &'static str,
        files: Files,
        error_type: &'static str,
        message_starts: String,
        trace0_starts: &'static str,
    }
    let cases = [
        Case {
            handler: "missing.handler",
            files: vec![("index.js", "exports.handler = async () => 1;")],
            error_type: "Runtime.ImportModuleError",
            message_starts: "Error: Cannot find module 'missing'\nRequire stack:\n- ".into(),
            trace0_starts: "Runtime.ImportModuleError: Error: Cannot find module 'missing'",
        },
        Case {
            handler: "index.handler",
            files: vec![(
                "index.js",
                "const dep = require('no-such-package');\nexports.handler = async () => dep;",
            )],
            error_type: "Runtime.ImportModuleError",
            message_starts: "Error: Cannot find module 'no-such-package'\nRequire stack:\n- "
                .into(),
            trace0_starts: "Runtime.ImportModuleError: Error: Cannot find module 'no-such-package'",
        },
        Case {
            handler: "index.nothere",
            files: vec![("index.js", "exports.handler = async () => 1;")],
            error_type: "Runtime.HandlerNotFound",
            message_starts: "index.nothere is undefined or not exported".into(),
            trace0_starts: "Runtime.HandlerNotFound: index.nothere is undefined or not exported",
        },
        Case {
            handler: "index.value",
            files: vec![("index.js", "exports.value = 3;")],
            error_type: "Runtime.HandlerNotFound",
            message_starts: "index.value is not a function".into(),
            trace0_starts: "Runtime.HandlerNotFound: index.value is not a function",
        },
        Case {
            handler: "index",
            files: vec![("index.js", "exports.handler = async () => 1;")],
            error_type: "Runtime.MalformedHandlerName",
            message_starts: "Bad handler".into(),
            trace0_starts: "Runtime.MalformedHandlerName: Bad handler",
        },
        Case {
            handler: "index.handler",
            files: vec![("index.js", "exports.handler = async () => {\n  return 1;\n")],
            error_type: "Runtime.UserCodeSyntaxError",
            message_starts: "SyntaxError: ".into(),
            trace0_starts: "Runtime.UserCodeSyntaxError: SyntaxError: ",
        },
        Case {
            handler: "index.handler",
            files: vec![("index.mjs", "export const handler = async () => {{;\n")],
            error_type: "Runtime.UserCodeSyntaxError",
            message_starts: "SyntaxError: ".into(),
            trace0_starts: "Runtime.UserCodeSyntaxError: SyntaxError: ",
        },
        Case {
            handler: "index.handler",
            files: vec![(
                "index.js",
                "throw new TypeError('config missing');\nexports.handler = async () => 1;",
            )],
            error_type: "TypeError",
            message_starts: "config missing".into(),
            trace0_starts: "TypeError: config missing",
        },
    ];
    for (i, c) in cases.iter().enumerate() {
        let name = node_fn(&server, &format!("init{i}"), c.handler, &c.files).await;
        let (e, out) = err_json(&server, &name, b"{}").await;
        assert_error_keys(&out, &format!("case {i}"));
        assert_eq!(e["errorType"], c.error_type, "case {i}: {e}");
        let msg = e["errorMessage"].as_str().unwrap();
        assert!(
            msg.starts_with(&c.message_starts),
            "case {i}: message {msg:?} does not start with {:?}",
            c.message_starts
        );
        let trace0 = e["trace"][0].as_str().unwrap_or("");
        assert!(
            trace0.starts_with(c.trace0_starts),
            "case {i}: trace[0] {trace0:?}"
        );
        // The platform reports the init failure with the runtime's error type.
        let events = server.log_events(&name);
        assert!(
            events.iter().any(|ev| ev.contains(&format!(
                "Phase: init\tStatus: error\tError Type: {}",
                c.error_type
            ))),
            "case {i}: INIT_REPORT in {events:#?}\n(tail: {})",
            out.log.as_deref().unwrap_or("")
        );
        // And the runtime logged it, before any request id existed, as one record.
        let logged = events
            .iter()
            .find(|ev| ev.contains("\tERROR\tUncaught Exception \t{"))
            .unwrap_or_else(|| panic!("case {i}: no Uncaught Exception record in {events:#?}"));
        let fields: Vec<&str> = logged.splitn(4, '\t').collect();
        assert_matches(&format!("^{TS}$"), fields[0], "timestamp");
        assert_eq!(fields[1], "undefined");
        let json_text = fields[3].split_once('\t').unwrap().1;
        let v: Value = serde_json::from_str(json_text).unwrap();
        assert_eq!(v["errorType"], c.error_type);
    }

    // A missing module names the files that asked for it.
    let name = node_fn(
        &server,
        "initstack",
        "index.handler",
        &[(
            "index.js",
            "require('./lib/absent');\nexports.handler = async () => 1;",
        )],
    )
    .await;
    let (e, _) = err_json(&server, &name, b"{}").await;
    let msg = e["errorMessage"].as_str().unwrap();
    assert!(
        msg.starts_with("Error: Cannot find module './lib/absent'\nRequire stack:\n- /")
            && msg.contains("/index.js\n- /"),
        "{msg:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Logging

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_output_carries_lambdas_prefix_and_stays_whole() {
    let server = Server::start();
    let name = node_fn(
        &server,
        "logs",
        "index.handler",
        &[(
            "index.js",
            "console.log('loading module');\n\
             exports.handler = async (event) => {\n\
               console.log('hello %s', 'world', { n: 1 });\n\
               console.info('an info');\n\
               console.warn('a warning');\n\
               console.error('an error');\n\
               console.debug('a debug');\n\
               console.trace('a trace');\n\
               console.log('first line\\nsecond line\\nthird line');\n\
               console.error('caught:', new Error('kaboom'));\n\
               process.stdout.write('plain stdout\\n');\n\
               process.stderr.write('plain stderr\\n');\n\
               return 'logged';\n\
             };",
        )],
    )
    .await;
    let (v, out) = ok_json(&server, &name, b"{}").await;
    assert_eq!(v, "logged");
    let rid = out.request_id.clone().unwrap();
    let log = out.log();
    for (level, message) in [
        ("INFO", "hello world { n: 1 }"),
        ("INFO", "an info"),
        ("WARN", "a warning"),
        ("ERROR", "an error"),
        ("DEBUG", "a debug"),
        ("TRACE", "a trace"),
    ] {
        let re = format!(
            "(?m)^{TS}\t{}\t{level}\t{}$",
            regex::escape(&rid),
            regex::escape(message)
        );
        assert_matches(&re, log, "console line");
    }
    assert!(log.contains("\nplain stdout\n"), "{log}");
    assert!(log.contains("\nplain stderr\n"), "{log}");

    // Multi-line messages are one log event each; init-time output has no request id.
    let events = server.log_events(&name);
    let multi = events
        .iter()
        .find(|e| e.contains("first line"))
        .expect("multi-line event");
    assert!(
        multi.ends_with(&format!(
            "\t{rid}\tINFO\tfirst line\nsecond line\nthird line"
        )),
        "{multi:?}"
    );
    let err = events
        .iter()
        .find(|e| e.contains("caught: Error: kaboom"))
        .expect("error event");
    assert!(
        err.contains("\n    at "),
        "the stack stays in the same event: {err:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.contains("\tundefined\tINFO\tloading module"))
            .count(),
        1,
        "{events:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Process-ending failures, module reuse

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unhandled_rejections_and_uncaught_exceptions_end_the_environment() {
    let server = Server::start();
    let name = node_fn(
        &server,
        "unhandled",
        "index.handler",
        &[(
            "index.js",
            "let invocations = 0;\n\
             exports.handler = async (event) => {\n\
               invocations += 1;\n\
               if (event.mode === 'reject') {\n\
                 Promise.reject(new Error('nobody catches me'));\n\
                 await new Promise((r) => setTimeout(r, 200));\n\
               }\n\
               if (event.mode === 'throw') {\n\
                 setTimeout(() => { throw new Error('thrown from a timer'); }, 10);\n\
                 await new Promise((r) => setTimeout(r, 200));\n\
               }\n\
               return { invocations };\n\
             };",
        )],
    )
    .await;
    let (v, first) = ok_json(&server, &name, b"{}").await;
    assert_eq!(v["invocations"], 1);
    assert!(has_init_duration(&first));

    let (e, out) = err_json(&server, &name, br#"{"mode":"reject"}"#).await;
    assert_eq!(e["errorType"], "Runtime.UnhandledPromiseRejection");
    assert_eq!(e["errorMessage"], "Error: nobody catches me");
    assert_eq!(
        e["trace"][0],
        "Runtime.UnhandledPromiseRejection: Error: nobody catches me"
    );
    let fields = log_line(out.log(), "Unhandled Promise Rejection");
    assert_eq!(fields[1], out.request_id.as_deref().unwrap());
    assert_eq!(fields[2], "ERROR");
    let logged: Value = serde_json::from_str(fields[3].split_once('\t').unwrap().1).unwrap();
    assert_eq!(logged["errorType"], "Runtime.UnhandledPromiseRejection");
    assert_eq!(logged["reason"]["errorType"], "Error");
    assert_eq!(logged["reason"]["errorMessage"], "nobody catches me");

    // The process exited: the next invocation is a cold start with fresh module state.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (v, cold) = ok_json(&server, &name, b"{}").await;
    assert_eq!(v["invocations"], 1, "module state is new");
    assert!(has_init_duration(&cold), "{}", cold.log());

    let (e, out) = err_json(&server, &name, br#"{"mode":"throw"}"#).await;
    assert_eq!(e["errorType"], "Error");
    assert_eq!(e["errorMessage"], "thrown from a timer");
    assert!(out.log().contains("\tERROR\tUncaught Exception \t{"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (v, cold) = ok_json(&server, &name, b"{}").await;
    assert_eq!(v["invocations"], 1);
    assert!(has_init_duration(&cold), "{}", cold.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn module_is_loaded_once_per_environment() {
    let server = Server::start();
    let name = node_fn(
        &server,
        "once",
        "index.handler",
        &[(
            "index.js",
            "let loads = (globalThis.__loads = (globalThis.__loads || 0) + 1);\n\
             let count = 0;\n\
             exports.handler = async () => ({ loads, count: ++count, pid: process.pid });",
        )],
    )
    .await;
    let (a, first) = ok_json(&server, &name, b"{}").await;
    let (b, second) = ok_json(&server, &name, b"{}").await;
    let (c, _) = ok_json(&server, &name, b"{}").await;
    assert_eq!(
        [&a["count"], &b["count"], &c["count"]],
        [&json!(1), &json!(2), &json!(3)]
    );
    assert_eq!([&a["loads"], &c["loads"]], [&json!(1), &json!(1)]);
    assert_eq!(a["pid"], c["pid"]);
    assert!(has_init_duration(&first));
    assert!(!has_init_duration(&second));
}

// ---------------------------------------------------------------------------------------------
// Handlers of the kind the seed document shows

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_style_handlers_run_unchanged() {
    let server = Server::start();

    // A basic async handler that logs its event and context and echoes the input.
    let basic = node_fn(
        &server,
        "basic",
        "index.handler",
        &[(
            "index.js",
            "exports.handler = async (event, context) => {\n\
               console.log('Incoming event:', JSON.stringify(event, null, 2));\n\
               console.log('Invocation context:', JSON.stringify(context, null, 2));\n\
               return { statusCode: 200, body: JSON.stringify({ greeting: 'Hi from Sous', echo: event }) };\n\
             };",
        )],
    )
    .await;
    let (v, out) = ok_json(&server, &basic, br#"{"user":"ada"}"#).await;
    assert_eq!(v["statusCode"], 200);
    let body: Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"greeting": "Hi from Sous", "echo": {"user": "ada"}})
    );
    let events = server.log_events(&basic);
    let ctx_event = events
        .iter()
        .find(|e| e.contains("Invocation context:"))
        .expect("context logged");
    assert!(
        ctx_event.contains(&format!("\"functionName\": \"{basic}\""))
            && ctx_event.contains("\"memoryLimitInMB\": \"256\"")
            && ctx_event.contains(&format!(
                "\"awsRequestId\": \"{}\"",
                out.request_id.as_deref().unwrap()
            )),
        "{ctx_event}"
    );

    // Work in a loop while the remaining time allows, returning partial results when it runs low.
    let looping = node_fn_with(
        &server,
        "remaining",
        "index.handler",
        &[(
            "index.js",
            "const work = (item) => new Promise((r) => setTimeout(() => r({ id: item.id, done: true }), 150));\n\
             exports.handler = async (event, context) => {\n\
               const budget = context.getRemainingTimeInMillis() - 1000;\n\
               const began = Date.now();\n\
               const results = [];\n\
               for (const item of event.items || []) {\n\
                 const left = budget - (Date.now() - began);\n\
                 if (left <= 0) {\n\
                   console.log('Running out of time, returning what is done');\n\
                   return { statusCode: 206, body: JSON.stringify({ processed: results.length, total: event.items.length }) };\n\
                 }\n\
                 console.log(`Item ${item.id}, ${left} ms left`);\n\
                 results.push(await work(item));\n\
               }\n\
               return { statusCode: 200, body: JSON.stringify({ processed: results.length, total: results.length }) };\n\
             };",
        )],
        6,
    )
    .await;
    let items: Vec<Value> = (0..40).map(|i| json!({"id": i})).collect();
    let (v, out) = ok_json(
        &server,
        &looping,
        json!({ "items": items }).to_string().as_bytes(),
    )
    .await;
    assert_eq!(v["statusCode"], 206, "{v}");
    let body: Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
    let processed = body["processed"].as_u64().unwrap();
    assert!(
        (5..40).contains(&processed),
        "processed {processed} of 40 in ~5 s"
    );
    assert!(out.log().contains("Running out of time"));
    let (v, _) = ok_json(&server, &looping, br#"{"items":[{"id":1},{"id":2}]}"#).await;
    assert_eq!(v["statusCode"], 200);

    // An API Gateway (REST, proxy) handler given an API Gateway event.
    let api = node_fn(
        &server,
        "apigw",
        "index.handler",
        &[(
            "index.js",
            "exports.handler = async (event) => {\n\
               const id = (event.pathParameters || {}).id;\n\
               const filter = (event.queryStringParameters || {}).filter;\n\
               let body = {};\n\
               if (event.body) {\n\
                 try { body = JSON.parse(event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString() : event.body); }\n\
                 catch (e) { return { statusCode: 400, body: JSON.stringify({ message: 'Invalid JSON' }) }; }\n\
               }\n\
               if (event.httpMethod !== 'PUT') return { statusCode: 405, body: JSON.stringify({ message: 'Method not allowed' }) };\n\
               return {\n\
                 statusCode: 200,\n\
                 headers: { 'Content-Type': 'application/json', 'X-Request-Id': event.requestContext.requestId },\n\
                 body: JSON.stringify({ id, filter, updated: body, caller: event.headers['User-Agent'] }),\n\
               };\n\
             };",
        )],
    )
    .await;
    let event = json!({
        "resource": "/items/{id}",
        "path": "/items/42",
        "httpMethod": "PUT",
        "headers": {"Content-Type": "application/json", "User-Agent": "curl/8.5.0"},
        "multiValueHeaders": {"Content-Type": ["application/json"], "User-Agent": ["curl/8.5.0"]},
        "queryStringParameters": {"filter": "recent"},
        "multiValueQueryStringParameters": {"filter": ["recent"]},
        "pathParameters": {"id": "42"},
        "stageVariables": null,
        "requestContext": {
            "resourcePath": "/items/{id}",
            "httpMethod": "PUT",
            "path": "/prod/items/42",
            "stage": "prod",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {"sourceIp": "203.0.113.10", "userAgent": "curl/8.5.0"},
            "accountId": "000000000000",
            "apiId": "abc123defg"
        },
        "body": "{\"name\":\"widget\",\"qty\":3}",
        "isBase64Encoded": false
    });
    let (v, _) = ok_json(&server, &api, event.to_string().as_bytes()).await;
    assert_eq!(v["statusCode"], 200);
    assert_eq!(
        v["headers"]["X-Request-Id"],
        "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    );
    let body: Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"id": "42", "filter": "recent", "updated": {"name": "widget", "qty": 3}, "caller": "curl/8.5.0"})
    );
    let mut bad = event.clone();
    bad["body"] = json!("{not json");
    let (v, _) = ok_json(&server, &api, bad.to_string().as_bytes()).await;
    assert_eq!(v["statusCode"], 400);

    // An S3 notification handler given an S3 event.
    let s3 = node_fn(
        &server,
        "s3",
        "index.handler",
        &[(
            "index.js",
            "exports.handler = async (event) => {\n\
               const rec = event.Records[0];\n\
               const bucket = rec.s3.bucket.name;\n\
               const key = decodeURIComponent(rec.s3.object.key.replace(/\\+/g, ' '));\n\
               const size = rec.s3.object.size;\n\
               console.log(`New object ${key} (${size} bytes) in ${bucket}`);\n\
               const kind = /\\.(jpe?g|png)$/.test(key) ? 'image' : key.endsWith('.csv') ? 'table' : 'other';\n\
               if (kind === 'other') throw new Error(`Unsupported file type: ${key}`);\n\
               return { status: 'success', bucket, key, size, kind, event: rec.eventName };\n\
             };",
        )],
    )
    .await;
    let s3_event = |key: &str| {
        json!({"Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-east-1",
            "eventTime": "2024-05-01T12:00:00.000Z",
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:EXAMPLE"},
            "requestParameters": {"sourceIPAddress": "203.0.113.10"},
            "responseElements": {"x-amz-request-id": "EXAMPLE123456789", "x-amz-id-2": "EXAMPLE/abc"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "on-upload",
                "bucket": {"name": "sous-uploads", "ownerIdentity": {"principalId": "EXAMPLE"}, "arn": "arn:aws:s3:::sous-uploads"},
                "object": {"key": key, "size": 1024, "eTag": "0123456789abcdef0123456789abcdef", "sequencer": "0A1B2C3D4E5F678901"}
            }
        }]})
        .to_string()
    };
    let (v, out) = ok_json(
        &server,
        &s3,
        s3_event("photos/summer+trip%282024%29.jpg").as_bytes(),
    )
    .await;
    assert_eq!(
        v,
        json!({"status": "success", "bucket": "sous-uploads", "key": "photos/summer trip(2024).jpg", "size": 1024, "kind": "image", "event": "ObjectCreated:Put"})
    );
    assert!(out
        .log()
        .contains("New object photos/summer trip(2024).jpg (1024 bytes) in sous-uploads"));
    let (e, _) = err_json(&server, &s3, s3_event("docs/readme.txt").as_bytes()).await;
    assert_eq!(e["errorType"], "Error");
    assert_eq!(e["errorMessage"], "Unsupported file type: docs/readme.txt");

    // Structured JSON logging with a correlation id.
    let structured = node_fn(
        &server,
        "structured",
        "index.handler",
        &[(
            "index.js",
            "const emit = (level, message, extra = {}) =>\n\
               console.log(JSON.stringify({ level, message, timestamp: new Date().toISOString(), ...extra }));\n\
             exports.handler = async (event, context) => {\n\
               const correlationId = (event.headers && event.headers['x-correlation-id']) || context.awsRequestId;\n\
               emit('info', 'Function invoked', { correlationId, functionName: context.functionName, functionVersion: context.functionVersion, source: (event.requestContext && event.requestContext.eventSource) || 'direct' });\n\
               const result = { ok: true };\n\
               emit('info', 'Request processed', { correlationId, responseSize: JSON.stringify(result).length });\n\
               return { statusCode: 200, body: JSON.stringify(result) };\n\
             };",
        )],
    )
    .await;
    for (payload, want_correlation) in [
        (
            json!({"headers": {"x-correlation-id": "corr-123"}}),
            Some("corr-123"),
        ),
        (json!({}), None),
    ] {
        let (v, out) = ok_json(&server, &structured, payload.to_string().as_bytes()).await;
        assert_eq!(v["statusCode"], 200);
        let rid = out.request_id.clone().unwrap();
        let want_correlation = want_correlation.unwrap_or(&rid);
        let records: Vec<Value> = out
            .log()
            .lines()
            .filter(|l| l.contains("\tINFO\t{"))
            .map(|l| {
                let fields: Vec<&str> = l.splitn(4, '\t').collect();
                assert_eq!(fields[1], rid);
                serde_json::from_str(fields[3]).unwrap()
            })
            .collect();
        assert_eq!(records.len(), 2, "{}", out.log());
        assert_eq!(records[0]["message"], "Function invoked");
        assert_eq!(records[0]["level"], "info");
        assert_eq!(records[0]["correlationId"], want_correlation);
        assert_eq!(records[0]["functionName"], structured.as_str());
        assert_eq!(records[0]["functionVersion"], "$LATEST");
        assert_eq!(records[0]["source"], "direct");
        assert_eq!(records[1]["message"], "Request processed");
        assert_eq!(records[1]["responseSize"], 11);
    }
}

// ---------------------------------------------------------------------------------------------
// Cold start (a measurement, not a check: `cargo test -p sous --test it --
// --ignored --nocapture runtime_node::cold_start`)

/// Memory for the measured functions: two vCPUs' worth (CPU is given in proportion to
/// memory, 1769 MB a vCPU), so that the runtime gets the CPU the bare `node -e 0` gets.
const MEASURE_MB: i32 = 3538;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run by hand"]
async fn cold_start_overhead_over_bare_node() {
    let server = Server::start();
    let runs = 21;
    let (mut bare, mut init, mut added, mut cold, mut warm, mut native) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    // Sous's own share: the Init Duration of a native custom runtime (the `lambda_runtime`
    // example binary), which starts in about a millisecond.
    let native_zip = zip_entries(&[file(
        "bootstrap",
        std::fs::read(example_binary("rust_runtime_hello")).unwrap(),
        0o755,
    )]);
    for i in 0..runs {
        let name = unique(&format!("native{i}"));
        create_ok(
            &server,
            create(&server.client, &name, &native_zip).memory_size(MEASURE_MB),
        )
        .await;
        let (_, out) = ok_json(&server, &name, b"{}").await;
        native.push(init_duration(&out));
        // The baseline, spawned as Sous spawns runtimes (cleared environment), next to each
        // cold start so that both see the same machine load.
        let t = Instant::now();
        let status = std::process::Command::new("node")
            .args(["-e", "0"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .status()
            .unwrap();
        assert!(status.success());
        let b = t.elapsed().as_secs_f64() * 1000.0;

        let name = unique(&format!("cold{i}"));
        create_ok(
            &server,
            create(
                &server.client,
                &name,
                &js_zip(&[("index.js", "exports.handler = async () => 'hello';")]),
            )
            .runtime(Runtime::Nodejs20x)
            .handler("index.handler")
            .memory_size(MEASURE_MB),
        )
        .await;
        let (_, out) = ok_json(&server, &name, b"{}").await;
        let ms = init_duration(&out);
        bare.push(b);
        init.push(ms);
        added.push(ms - b);
        cold.push(out.elapsed.as_secs_f64() * 1000.0);
        let (_, w) = ok_json(&server, &name, b"{}").await;
        warm.push(w.elapsed.as_secs_f64() * 1000.0);
    }
    let p = |v: &mut Vec<f64>, q: f64| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[((v.len() - 1) as f64 * q).round() as usize]
    };
    println!(
        "{runs} runs at {MEASURE_MB} MB: `node -e 0` p50 {:.1} ms; Init Duration p50 {:.1} ms; \
         Init Duration - node -e 0 (paired) p50 {:.1} ms p90 {:.1} ms; \
         cold Invoke p50 {:.1} ms; warm Invoke p50 {:.2} ms; \
         native custom runtime Init Duration p50 {:.1} ms",
        p(&mut bare, 0.5),
        p(&mut init, 0.5),
        p(&mut added, 0.5),
        p(&mut added, 0.9),
        p(&mut cold, 0.5),
        p(&mut warm, 0.5),
        p(&mut native, 0.5),
    );
}

fn init_duration(out: &Invoked) -> f64 {
    out.log()
        .split("Init Duration: ")
        .nth(1)
        .and_then(|r| r.split(" ms").next())
        .and_then(|v| v.parse().ok())
        .expect("Init Duration in REPORT")
}
