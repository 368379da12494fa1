//! Compiles the Java runtime (`java/`) into two jars in `OUT_DIR`, embedded in the binary by
//! `src/java.rs`:
//! - `sous-java-sdk.jar`: the `com.amazonaws.services.lambda.runtime` interfaces (`java/sdk`),
//!   which `sous sdk java --out FILE` writes for users to compile handlers against;
//! - `sous-java-runtime.jar`: those interfaces plus Sous's bootstrap (`java/runtime`);
//! - the class-data-sharing training function (`java/training`): `Handler.class`, defined
//!   from the task root, and `sous-java-training-lib.jar` (its `Helper`), for the task's `lib/`.
//!
//! Needs a JDK 17 or newer (`javac` and `jar`: `$JAVA_HOME/bin`, else `PATH`); the classes
//! target Java 17 (`--release 17`). Entry timestamps are fixed so that the jars, and so the
//! binary, are the same from one build to the next.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let java = manifest.join("java");
    println!("cargo:rerun-if-changed={}", java.display());
    println!("cargo:rerun-if-env-changed=JAVA_HOME");

    let sdk_sources = sources(&java.join("sdk"));
    let runtime_sources = sources(&java.join("runtime"));
    let training_sources = sources(&java.join("training"));
    for f in sdk_sources
        .iter()
        .chain(&runtime_sources)
        .chain(&training_sources)
    {
        println!("cargo:rerun-if-changed={}", f.display());
    }

    let javac = tool("javac");
    let jar = tool("jar");
    let sdk_classes = fresh_dir(&out.join("java-sdk-classes"));
    let runtime_classes = fresh_dir(&out.join("java-runtime-classes"));
    let training_classes = fresh_dir(&out.join("java-training-classes"));

    // Inline string concatenation: the default (invokedynamic) costs milliseconds of cold
    // start the first time a concatenation runs.
    let common = [
        "--release",
        "17",
        "-encoding",
        "UTF-8",
        "-XDstringConcat=inline",
        "-nowarn",
    ];
    run(Command::new(&javac)
        .args(common)
        .arg("-d")
        .arg(&sdk_classes)
        .args(&sdk_sources));
    run(Command::new(&javac)
        .args(common)
        .arg("-d")
        .arg(&runtime_classes)
        .args(&sdk_sources)
        .args(&runtime_sources));

    run(Command::new(&javac)
        .args(common)
        .arg("-cp")
        .arg(&sdk_classes)
        .arg("-d")
        .arg(&training_classes)
        .args(&training_sources));

    make_jar(&jar, &out.join("sous-java-sdk.jar"), &sdk_classes, ".");
    make_jar(
        &jar,
        &out.join("sous-java-runtime.jar"),
        &runtime_classes,
        ".",
    );
    make_jar(
        &jar,
        &out.join("sous-java-training-lib.jar"),
        &training_classes,
        "sous/training/Helper.class",
    );
}

/// `.java` files under `dir`, sorted (so the build does not depend on directory order).
fn sources(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("read dir entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "java") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// A JDK tool: `$JAVA_HOME/bin/NAME` when set, else `NAME` from `PATH`.
fn tool(name: &str) -> PathBuf {
    if let Some(home) = std::env::var_os("JAVA_HOME") {
        let p = Path::new(&home).join("bin").join(name);
        if p.is_file() {
            return p;
        }
    }
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "building sous-runtimes needs a JDK 17+ `{name}` (for the java17 runtime's jars): \
             none in $JAVA_HOME/bin or on PATH. The machines Sous is built on always have \
             OpenJDK 17 (Debian: apt-get install openjdk-17-jdk-headless)."
        )
    })
}

fn fresh_dir(dir: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir.to_path_buf()
}

/// A jar of `what` (a path relative to `classes`, or `.` for all).
fn make_jar(jar: &Path, file: &Path, classes: &Path, what: &str) {
    let _ = std::fs::remove_file(file);
    run(Command::new(jar)
        .arg("--create")
        .arg("--file")
        .arg(file)
        .arg("--date=2024-01-01T00:00:00Z")
        .arg("--no-manifest")
        .arg("-C")
        .arg(classes)
        .arg(what));
}

fn run(cmd: &mut Command) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e} (is a JDK 17 installed?)"));
    assert!(status.success(), "{cmd:?} failed: {status}");
}
