//! `sous-bench --runtimes`: for each managed runtime, a hello-world handler's cold invoke
//! (and its Init Duration) through the Invoke API beside the bare interpreter start measured
//! in the same run, and its warm invoke latency.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{
    cold_starts_of, connect, create_function_with, send, signed_invoke, start_sous, BoxError,
};

const PYTHON_APP: &str = "def handler(event, context):\n    return {\"hello\": \"world\"}\n";
const NODE_APP: &str = "exports.handler = async () => ({ hello: 'world' });\n";
const JAVA_APP: &str = "package hello;\n\
import com.amazonaws.services.lambda.runtime.Context;\n\
import com.amazonaws.services.lambda.runtime.RequestHandler;\n\
import java.util.Map;\n\
public class Hello implements RequestHandler<Map<String, Object>, String> {\n\
    public String handleRequest(Map<String, Object> event, Context context) { return \"hello\"; }\n\
}\n";
const JAVA_TRIVIAL: &str = "public class Trivial { public static void main(String[] a) {} }\n";

struct Case {
    runtime: &'static str,
    handler: &'static str,
    zip: Vec<u8>,
    bare: Vec<String>,
}

pub async fn run(quick: bool) -> Result<(), BoxError> {
    let bin_dir = std::env::current_exe()?
        .parent()
        .ok_or("no exe dir")?
        .to_path_buf();
    let sous = bin_dir.join("sous");
    let (cold_n, warm_n) = if quick { (5, 100) } else { (30, 1000) };
    let work = tempfile::tempdir()?;
    let cases = vec![
        Case {
            runtime: "python3.11",
            handler: "app.handler",
            zip: zip_of(&[("app.py", PYTHON_APP.as_bytes())])?,
            bare: vec![real_python()?, "-c".into(), "pass".into()],
        },
        Case {
            runtime: "nodejs20.x",
            handler: "index.handler",
            zip: zip_of(&[("index.js", NODE_APP.as_bytes())])?,
            bare: vec!["node".into(), "-e".into(), "0".into()],
        },
        java_case(&sous, work.path())?,
    ];
    let server = start_sous(&sous, &[]).await?;
    // Sous makes the JVM's class-data archive a few seconds after the first Java environment
    // starts (a second of CPU): measured alongside, it would slow some cold starts of
    // whichever runtime came first. One Java start sets it going; then wait for it.
    if let Some(java) = cases.iter().find(|c| c.runtime == "java17") {
        cold_starts_of(
            &server,
            &java.zip,
            1,
            "rt-java-first",
            (java.runtime, java.handler),
        )
        .await?;
        wait_for_java_archive(&server.dir.path().join("runtimes/java17"));
    }
    println!("| runtime | bare interpreter p50 | Init Duration p50 | cold invoke p50 / p99 | added over bare (p50) | warm invoke p50 / p99 |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for case in &cases {
        let prefix = format!("rt-{}", case.runtime.replace('.', "-"));
        // Alternated, so that both see the machine in the same state (a drift in CPU speed
        // or a neighbour's load would otherwise land on one side of the comparison).
        let (mut cold, mut init, mut bare) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..cold_n {
            bare.extend(bare_starts(&case.bare, 1)?);
            let (c, n) = cold_starts_of(
                &server,
                &case.zip,
                1,
                &format!("{prefix}-{i}"),
                (case.runtime, case.handler),
            )
            .await?;
            cold.extend(c);
            init.extend(n);
        }
        let warm_name = format!("{prefix}-warm");
        create_function_with(&server, &warm_name, &case.zip, (case.runtime, case.handler)).await?;
        let req = signed_invoke(&server, &warm_name, false);
        let mut c = connect(server.addr).await?;
        for _ in 0..20 {
            send(&mut c, req.clone_request()?).await?;
        }
        let mut warm = Vec::with_capacity(warm_n);
        for _ in 0..warm_n {
            let t = Instant::now();
            let (status, _) = send(&mut c, req.clone_request()?).await?;
            if status != 200 {
                return Err(format!("{} warm invoke answered {status}", case.runtime).into());
            }
            warm.push(t.elapsed());
        }
        let (b50, i50) = (p(&mut bare, 50), p(&mut init, 50));
        let (c50, c99) = (p(&mut cold, 50), p(&mut cold, 99));
        let (w50, w99) = (p(&mut warm, 50), p(&mut warm, 99));
        println!(
            "| {} | {b50:.1} ms | {i50:.1} ms | {c50:.1} / {c99:.1} ms | {:.1} ms | {w50:.2} / {w99:.2} ms |",
            case.runtime,
            c50 - b50
        );
    }
    // Sous starts Python without `site` (-S; see sous-runtimes' python.rs): the bare start
    // without it, for comparison.
    let mut no_site = bare_starts(
        &[real_python()?, "-S".into(), "-c".into(), "pass".into()],
        cold_n,
    )?;
    println!(
        "\nbare `python3 -S -c pass` p50: {:.1} ms (Sous's Python bootstrap skips `site`)",
        p(&mut no_site, 50)
    );
    println!("samples: {cold_n} cold starts per runtime (one every 200 ms, each after a bare start), {warm_n} warm invokes; functions of 1769 MB");
    Ok(())
}

/// Until `dir` holds the JVM's class-data archive (at most 30 s; Sous serves without it).
fn wait_for_java_archive(dir: &Path) {
    let has_archive = || {
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".jsa"))
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !has_archive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn p(v: &mut [Duration], q: usize) -> f64 {
    v.sort();
    v[(v.len() * q / 100).min(v.len() - 1)].as_secs_f64() * 1000.0
}

fn zip_of(files: &[(&str, &[u8])]) -> Result<Vec<u8>, BoxError> {
    use std::io::Write;
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = zip::ZipWriter::new(&mut out);
    let opts = zip::write::SimpleFileOptions::default().unix_permissions(0o644);
    for (name, data) in files {
        w.start_file(*name, opts)?;
        w.write_all(data)?;
    }
    w.finish()?;
    Ok(out.into_inner())
}

/// The interpreter `python3` really is (PATH may hold a wrapper script, e.g. pyenv's shim).
fn real_python() -> Result<String, BoxError> {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()?;
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

/// The Java case: a RequestHandler compiled against `sous sdk java`, and a trivial class for
/// the bare JVM start.
fn java_case(sous: &Path, work: &Path) -> Result<Case, BoxError> {
    let sdk = work.join("sdk.jar");
    check(Command::new(sous).args(["sdk", "java", "--out"]).arg(&sdk))?;
    let src = work.join("src");
    std::fs::create_dir_all(src.join("hello"))?;
    std::fs::write(src.join("hello/Hello.java"), JAVA_APP)?;
    std::fs::write(src.join("Trivial.java"), JAVA_TRIVIAL)?;
    let classes = work.join("classes");
    check(
        Command::new("javac")
            .args(["--release", "17", "-d"])
            .arg(&classes)
            .arg("-cp")
            .arg(&sdk)
            .arg(src.join("hello/Hello.java"))
            .arg(src.join("Trivial.java")),
    )?;
    let class = std::fs::read(classes.join("hello/Hello.class"))?;
    Ok(Case {
        runtime: "java17",
        handler: "hello.Hello::handleRequest",
        zip: zip_of(&[("hello/Hello.class", &class)])?,
        bare: vec![
            "java".into(),
            "-cp".into(),
            classes.display().to_string(),
            "Trivial".into(),
        ],
    })
}

fn check(cmd: &mut Command) -> Result<(), BoxError> {
    let status = cmd.stdout(Stdio::null()).status()?;
    if !status.success() {
        return Err(format!("{cmd:?} failed: {status}").into());
    }
    Ok(())
}

/// Start the bare interpreter `n` times, in the clean environment a function's runtime gets
/// (the caller's variables can cost a lot: `NODE_EXTRA_CA_CERTS` makes `node` parse a whole
/// certificate bundle at start).
fn bare_starts(argv: &[String], n: usize) -> Result<Vec<Duration>, BoxError> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let status = Command::new(&argv[0])
            .args(&argv[1..])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if !status.success() {
            return Err(format!("{argv:?} failed: {status}").into());
        }
        v.push(t.elapsed());
    }
    Ok(v)
}
