//! The `java17` managed runtime (issue 3, Java parts): handlers compiled at test time against
//! the jar `sous sdk java --out FILE` writes, zipped, deployed through the Lambda API of the
//! real binary and invoked with the AWS SDK.
//!
//! Fixtures: `tests/fixtures/java/handlers` (package `example`, compiled in one `javac` call)
//! and `tests/fixtures/java/awscore` (stand-ins for aws-lambda-java-core's interfaces plus a
//! handler compiled against them, shipped together in the zip's `lib/`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::*;
use aws_sdk_lambda::types::Runtime;
use serde_json::{json, Value};

/// The compiled fixtures, shared by the tests of this process.
struct Fixtures {
    /// Every class of `handlers/` at the zip's root.
    handlers_zip: Vec<u8>,
    /// `lib/aws-lambda-java-core-1.2.3.jar` (stand-ins) and `lib/app.jar` (the handler).
    core_zip: Vec<u8>,
}

static FIXTURES: OnceLock<Fixtures> = OnceLock::new();

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/java")
}

fn java_sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(java_sources(&p));
        } else if p.extension().is_some_and(|x| x == "java") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Files under `dir` whose relative path starts with `prefix`, as zip entries.
fn class_entries(dir: &Path, prefix: &str) -> Vec<Entry> {
    fn walk(base: &Path, dir: &Path, prefix: &str, out: &mut Vec<Entry>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, prefix, out);
                continue;
            }
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            if rel.starts_with(prefix) {
                out.push(file(&rel, std::fs::read(&p).unwrap(), 0o644));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, prefix, &mut out);
    out
}

fn javac(classpath: Option<&Path>, out: &Path, sources: &[PathBuf]) {
    let mut cmd = Command::new("javac");
    cmd.args(["--release", "17", "-nowarn", "-d"]).arg(out);
    if let Some(cp) = classpath {
        cmd.arg("-cp").arg(cp);
    }
    let result = cmd
        .args(sources)
        .output()
        .expect("run javac (JDK 17; `cargo xtask setup` installs one)");
    assert!(
        result.status.success(),
        "javac failed:\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
}

/// Writes the SDK jar with `sous sdk java --out FILE`.
fn write_sdk_jar(path: &Path) -> Result<(), String> {
    let out = Command::new(Server::binary())
        .args(["sdk", "java", "--out"])
        .arg(path)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() && path.is_file() {
        Ok(())
    } else {
        Err(format!(
            "{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn fixtures(server: &Server) -> &'static Fixtures {
    FIXTURES.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let sdk = tmp.path().join("sdk.jar");
        if let Err(e) = write_sdk_jar(&sdk) {
            // Until `sous sdk java` is wired (see `sdk_subcommand_writes_the_interfaces_jar`),
            // compile against the runtime jar the server wrote: it holds the same interfaces.
            eprintln!("`sous sdk java --out` failed ({e}); compiling against the runtime jar");
            let runtime_jar = server
                .data_dir
                .join("runtimes/java17/sous-java-runtime.jar");
            std::fs::copy(&runtime_jar, &sdk).unwrap_or_else(|e| {
                panic!("copy {}: {e}", runtime_jar.display());
            });
        }
        let handlers = tmp.path().join("handlers");
        javac(
            Some(&sdk),
            &handlers,
            &java_sources(&fixture_dir().join("handlers")),
        );
        let core = tmp.path().join("core");
        javac(None, &core, &java_sources(&fixture_dir().join("awscore")));
        let core_jar = zip_entries(&class_entries(&core, "com/"));
        let app_jar = zip_entries(&class_entries(&core, "coreapp/"));
        Fixtures {
            handlers_zip: zip_entries(&class_entries(&handlers, "")),
            core_zip: zip_entries(&[
                file("lib/aws-lambda-java-core-1.2.3.jar", core_jar, 0o644),
                file("lib/app.jar", app_jar, 0o644),
            ]),
        }
    })
}

/// Memory of the test functions: one full vCPU's worth (1769 MB, as on Lambda), so that the
/// JVM's cold starts stay quick where the sandbox limits CPU by memory.
const MEMORY_MB: i32 = 1769;

/// Deploys `zip` as a java17 function with `handler`; returns its name.
async fn deploy(server: &Server, zip: &[u8], handler: &str) -> String {
    let name = unique("java");
    create_ok(
        server,
        create(&server.client, &name, zip)
            .runtime(Runtime::Java17)
            .handler(handler)
            .memory_size(MEMORY_MB)
            .timeout(20),
    )
    .await;
    name
}

async fn deploy_handler(server: &Server, handler: &str) -> String {
    let zip = fixtures(server).handlers_zip.clone();
    deploy(server, &zip, handler).await
}

fn assert_ok(server: &Server, r: &Invoked) {
    assert_eq!(
        r.function_error,
        None,
        "payload {}\nlog {:?}\n{}",
        r.text(),
        r.log,
        server.output_tail(3000)
    );
    assert_eq!(r.status, 200);
}

fn assert_unhandled(server: &Server, r: &Invoked) {
    assert_eq!(
        r.function_error.as_deref(),
        Some("Unhandled"),
        "payload {}\nlog {:?}\n{}",
        r.text(),
        r.log,
        server.output_tail(3000)
    );
    assert_eq!(r.status, 200);
}

fn init_duration(log: &str) -> Option<f64> {
    let rest = log.split("Init Duration: ").nth(1)?;
    rest.split(' ').next()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_handler_runs_in_class_and_method_forms() {
    let server = Server::start();
    let text = r#"{"name": "sous", "list": [1, 2.5, true, null], "nested": {"k": "v"}}"#;
    let event: Value = serde_json::from_str(text).unwrap();
    for handler in ["example.Hello", "example.Hello::handleRequest"] {
        let name = deploy_handler(&server, handler).await;
        let first = invoke(&server, &name, text.as_bytes()).await;
        assert_ok(&server, &first);
        assert_eq!(
            first.json(),
            json!({"statusCode": 200, "body": {"greeting": "Hello from Sous!", "echo": event}}),
            "{handler}"
        );
        let log = first.log();
        assert!(
            log.contains("Event: {name=sous, list=[1, 2.5, true, null], nested={k=v}}"),
            "{handler}: the logger line is in the log: {log}"
        );
        assert!(
            init_duration(log).is_some(),
            "cold start reports Init Duration: {log}"
        );
        let second = invoke(&server, &name, b"{}").await;
        assert_ok(&server, &second);
        assert_eq!(second.json()["body"]["echo"], json!({}));
        assert_eq!(
            init_duration(second.log()),
            None,
            "the warm environment is reused: {}",
            second.log()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn string_handler_is_instantiated_once_per_environment() {
    let server = Server::start();
    let name = deploy_handler(&server, "example.Upper").await;
    let first = invoke(&server, &name, br#""abc""#).await;
    assert_ok(&server, &first);
    assert_eq!(first.json(), json!("ABC calls=1 instances=1"));
    let second = invoke(&server, &name, "\"dé\"".as_bytes()).await;
    assert_ok(&server, &second);
    assert_eq!(second.json(), json!("DÉ calls=2 instances=1"));

    // An object where a String is expected: Lambda's JSON parsing error.
    let bad = invoke(&server, &name, br#"{"not":"a string"}"#).await;
    assert_unhandled(&server, &bad);
    let body = bad.json();
    assert_eq!(body["errorType"], "java.lang.RuntimeException");
    assert_eq!(
        body["errorMessage"],
        "An error occurred during JSON parsing"
    );
    assert_eq!(body["stackTrace"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primitive_list_and_void_method_handlers() {
    let server = Server::start();
    let cases: &[(&str, &str, Value)] = &[
        ("example.Numbers::square", "7", json!(49)),
        ("example.Numbers::sum", "[1, 2, 3, 4]", json!(10)),
        (
            "example.Numbers::words",
            r#""a b c""#,
            json!(["a", "b", "c"]),
        ),
        ("example.Numbers::half", "5", json!(2.5)),
        ("example.Numbers::negate", "true", json!(false)),
        ("example.Numbers::nothing", r#"{"x":1}"#, Value::Null),
    ];
    for (handler, input, want) in cases {
        let name = deploy_handler(&server, handler).await;
        let r = invoke(&server, &name, input.as_bytes()).await;
        assert_ok(&server, &r);
        assert_eq!(&r.json(), want, "{handler}({input})");
        if *handler == "example.Numbers::square" {
            // Scalars are coerced as Lambda's serializer does: a numeric string for an int.
            let r = invoke(&server, &name, br#""8""#).await;
            assert_ok(&server, &r);
            assert_eq!(r.json(), json!(64));
        }
        if *handler == "example.Numbers::sum" {
            // A single value where a list is expected is a one-element list.
            let r = invoke(&server, &name, b"5").await;
            assert_ok(&server, &r);
            assert_eq!(r.json(), json!(5));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pojo_input_and_output() {
    let server = Server::start();
    let name = deploy_handler(&server, "example.Pojos::greet").await;
    let event = json!({
        "firstName": "Ada",
        "age": 36,
        "tags": "solo",
        "FirstName": "property names are case-sensitive",
        "unknown": {"ignored": true}
    });
    let r = invoke(&server, &name, event.to_string().as_bytes()).await;
    assert_ok(&server, &r);
    assert_eq!(
        r.json(),
        json!({
            "message": "Hello Ada (36)",
            "person": {"firstName": "Ada", "age": 36, "tags": ["solo"]},
            "URL": "https://example.com/Ada",
            "adult": true
        }),
        "null properties are left out, getURL is \"URL\", isAdult is \"adult\""
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_handlers_get_and_give_raw_bytes() {
    let server = Server::start();
    let name = deploy_handler(&server, "example.Echo").await;
    let r = invoke(&server, &name, br#"{"a": 1}"#).await;
    assert_ok(&server, &r);
    assert_eq!(r.payload, br#"raw[{"a": 1}]"#);

    let name = deploy_handler(&server, "example.Echo::shout").await;
    let r = invoke(&server, &name, br#""quiet""#).await;
    assert_ok(&server, &r);
    assert_eq!(r.payload, br#""QUIET""#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_fields_and_logging() {
    let server = Server::start();
    let name = deploy_handler(&server, "example.Ctx").await;
    let r = invoke(&server, &name, br#"{"k":[1,"two"]}"#).await;
    assert_ok(&server, &r);
    let v = r.json();
    assert_eq!(v["input"], json!({"k": [1, "two"]}));
    assert_eq!(v["requestId"].as_str(), r.request_id.as_deref());
    assert_eq!(v["functionName"], name.as_str());
    assert_eq!(v["functionVersion"], "$LATEST");
    assert_eq!(v["invokedFunctionArn"], function_arn(&name));
    assert_eq!(v["memoryLimitInMB"], MEMORY_MB);
    assert_eq!(v["logGroupName"], format!("/aws/lambda/{name}"));
    assert_matches(
        r"^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$",
        v["logStreamName"].as_str().unwrap_or(""),
        "log stream",
    );
    let remaining = v["remainingTimeInMillis"].as_i64().unwrap();
    assert!(
        (10_000..=20_000).contains(&remaining),
        "remaining time {remaining} ms of a 20 s timeout"
    );
    assert_eq!(v["identityIsNull"], true);
    assert!(v.get("appTitle").is_none(), "no client context: {v}");
    assert_eq!(v["executionEnv"], "AWS_Lambda_java17");
    assert_eq!(v["sameLogger"], true);
    if let Some(trace) = v["traceHeader"].as_str() {
        assert!(trace.starts_with("Root="), "trace header {trace}");
    }

    let log = r.log();
    assert!(
        log.contains("logger line one\nlogger line two"),
        "newline kept: {log}"
    );
    // Through the telemetry pipe, as on Lambda: one call, one event.
    let events = server.log_events(&name);
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("logger line one\nlogger line two")),
        "a logger call is one event: {events:?}"
    );
    assert!(
        !events.iter().any(|e| e.contains("sous java runtime")),
        "the runtime had nothing to complain about: {events:?}"
    );
    assert!(log.contains("stdout line\n"), "{log}");
    assert!(log.contains("stderr line\n"), "{log}");
    let start = log.find("START RequestId:").expect("START line");
    let end = log.find("END RequestId:").expect("END line");
    let line = log.find("logger line one").unwrap();
    assert!(
        start < line && line < end,
        "logged inside the invocation: {log}"
    );

    // With a client context (as the mobile SDKs send it).
    let cc = json!({
        "client": {"app_title": "Sous Test", "installation_id": "i-1"},
        "custom": {"k": "v"},
        "env": {"platform": "Android"}
    });
    let r = send_invoke(
        &server,
        invoke_req(&server.client, &name, b"null").client_context(b64(cc.to_string().as_bytes())),
    )
    .await;
    assert_ok(&server, &r);
    let v = r.json();
    assert_eq!(v["input"], Value::Null);
    assert_eq!(v["appTitle"], "Sous Test");
    assert_eq!(v["custom"], json!({"k": "v"}));
    assert_eq!(v["env"], json!({"platform": "Android"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_exception_is_unhandled_with_the_java_error_body() {
    let server = Server::start();
    let name = deploy_handler(&server, "example.Fail::handleRequest").await;
    let r = invoke(&server, &name, br#""now""#).await;
    assert_unhandled(&server, &r);
    let body = r.json();
    assert_eq!(body["errorMessage"], "boom now");
    assert_eq!(body["errorType"], "java.lang.IllegalStateException");
    let trace: Vec<&str> = body["stackTrace"]
        .as_array()
        .expect("stackTrace array")
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        trace
            .first()
            .is_some_and(|f| f.starts_with("example.Fail.handleRequest(Fail.java:")),
        "{trace:?}"
    );
    assert!(
        !trace.iter().any(|f| f.contains("dev.sous.runtime")),
        "runtime frames are cut: {trace:?}"
    );
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(
        keys.len(),
        3,
        "only errorMessage, errorType, stackTrace: {body}"
    );

    let log = r.log();
    assert!(
        log.contains(
            "boom now: java.lang.IllegalStateException\njava.lang.IllegalStateException: boom now\n\tat example.Fail.handleRequest(Fail.java:"
        ),
        "the error is logged as one record: {log}"
    );
    assert!(
        log.contains("Caused by: java.io.UncheckedIOException: java.io.IOException: root cause"),
        "{log}"
    );

    // The environment survives a handler's exception.
    let again = invoke(&server, &name, br#""again""#).await;
    assert_unhandled(&server, &again);
    assert_eq!(again.json()["errorMessage"], "boom again");
    assert_eq!(init_duration(again.log()), None, "{}", again.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_class_or_method_is_reported_on_each_invocation() {
    let server = Server::start();
    let cases: &[(&str, Value)] = &[
        (
            "example.Missing",
            json!({"errorMessage": "Class not found: example.Missing", "errorType": "java.lang.ClassNotFoundException"}),
        ),
        (
            "example.Missing::handleRequest",
            json!({"errorMessage": "Class not found: example.Missing", "errorType": "java.lang.ClassNotFoundException"}),
        ),
        (
            "example.Hello::nope",
            json!({"errorMessage": "No public method named nope with appropriate method signature found on class example.Hello"}),
        ),
        (
            "example.NotAHandler",
            json!({"errorMessage": "Class does not implement an appropriate handler interface: example.NotAHandler"}),
        ),
    ];
    for (handler, want) in cases {
        let name = deploy_handler(&server, handler).await;
        let r = invoke(&server, &name, b"{}").await;
        assert_unhandled(&server, &r);
        assert_eq!(&r.json(), want, "{handler}");
        let message = want["errorMessage"].as_str().unwrap();
        assert!(r.log().contains(message), "{handler}: logged: {}", r.log());
        // As in Lambda's Java runtime, init itself succeeded: the same environment answers
        // the next invocation with the same error.
        let again = invoke(&server, &name, b"{}").await;
        assert_unhandled(&server, &again);
        assert_eq!(&again.json(), want, "{handler}");
        assert_eq!(init_duration(again.log()), None, "{}", again.log());
    }
    let r = invoke(
        &server,
        &deploy_handler(&server, "example.Missing").await,
        b"{}",
    )
    .await;
    assert!(
        r.log().contains(
            "Class not found: example.Missing: java.lang.ClassNotFoundException\njava.lang.ClassNotFoundException: example.Missing"
        ),
        "{}",
        r.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exceptions_in_constructors_and_static_initializers_fail_init() {
    let server = Server::start();
    let cases: &[(&str, Value)] = &[
        (
            "example.BadInit",
            json!({"errorMessage": "bad init", "errorType": "java.lang.IllegalArgumentException"}),
        ),
        (
            "example.BadStatic::handleRequest",
            json!({"errorMessage": "Error loading class example.BadStatic", "errorType": "java.lang.ExceptionInInitializerError"}),
        ),
    ];
    for (handler, want) in cases {
        let name = deploy_handler(&server, handler).await;
        for round in 0..2 {
            let r = invoke(&server, &name, b"{}").await;
            assert_unhandled(&server, &r);
            assert_eq!(&r.json(), want, "{handler} round {round}");
        }
        let logs = server.output();
        assert!(
            logs.contains("Phase: init\tStatus: error\tError Type: Runtime.BadFunctionCode"),
            "{handler}: an init error: {}",
            server.output_tail(3000)
        );
    }
    // The init error is in the function's log (here: as the server echoes it).
    let logs = server.output();
    for line in [
        "bad init: java.lang.IllegalArgumentException",
        "java.lang.IllegalArgumentException: bad init",
        "Error loading class example.BadStatic: java.lang.ExceptionInInitializerError",
    ] {
        assert!(logs.contains(line), "{line}: {}", server.output_tail(3000));
    }
    assert!(
        logs.contains(
            "Caused by: java.lang.NumberFormatException: For input string: \"not a number\""
        ),
        "{}",
        server.output_tail(3000)
    );
}

/// The JVM's class-data archive is made once a Java function has started, not when Sous
/// starts: a host that runs no Java never pays for the training run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn class_data_archive_is_made_after_the_first_java_start() {
    let server = Server::start();
    let dir = server.data_dir.join("runtimes/java17");
    let names = || -> Vec<String> {
        std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let made = |names: &[String]| names.iter().any(|n| n.ends_with(".jsa"));
    // Past the training delay (3 s) with no Java start: no training run began.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = names();
    assert!(
        !made(&before) && !before.iter().any(|n| n == "cds-training"),
        "trained with no Java function started: {before:?}"
    );

    let name = deploy_handler(&server, "example.Hello").await;
    assert_ok(&server, &invoke(&server, &name, b"{}").await);
    let deadline = Instant::now() + Duration::from_secs(90);
    while !made(&names()) {
        assert!(
            Instant::now() < deadline,
            "no class-data archive after a Java start: {:?}\n{}",
            names(),
            server.output_tail(4000)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_built_against_aws_core_and_bundled_in_lib_loads() {
    let server = Server::start();
    let zip = fixtures(&server).core_zip.clone();
    let name = deploy(&server, &zip, "coreapp.CoreHandler").await;
    let r = invoke(&server, &name, br#"{"who":"lib"}"#).await;
    assert_ok(&server, &r);
    assert_eq!(r.json(), json!(format!("core ok lib {name}")));
    assert!(r.log().contains("core handler saw lib"), "{}", r.log());
}

#[test]
fn sdk_subcommand_writes_the_interfaces_jar() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("out/sous-sdk.jar");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    write_sdk_jar(&path).unwrap_or_else(|e| panic!("sous sdk java --out: {e}"));
    let jar = std::fs::read(&path).unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(jar)).expect("a jar is a zip");
    let names: Vec<String> = (0..archive.len())
        .map(|i| archive.by_index(i).unwrap().name().to_string())
        .collect();
    for class in [
        "Context",
        "RequestHandler",
        "RequestStreamHandler",
        "LambdaLogger",
        "ClientContext",
        "CognitoIdentity",
        "Client",
        "LambdaRuntime",
        "logging/LogLevel",
    ] {
        let want = format!("com/amazonaws/services/lambda/runtime/{class}.class");
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    assert!(
        !names.iter().any(|n| n.starts_with("dev/")),
        "the SDK jar holds the interfaces only: {names:?}"
    );
}
