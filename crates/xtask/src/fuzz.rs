//! `cargo xtask fuzz`: the cargo-fuzz targets in `fuzz/` (docs/FUZZING.md).
//!
//! - `cargo xtask fuzz --smoke`: every target (but [`NOT_IN_SMOKE`]) for [`SMOKE_SECS`]
//!   seconds each, from its committed corpus (`fuzz/corpus/<target>`), built without
//!   optimizations (`cargo fuzz --dev`: debug assertions on); what `.ci/run` runs;
//! - `cargo xtask fuzz [--secs N] [TARGET...]`: the given targets (all when none) for N
//!   seconds each (default [`DEFAULT_SECS`]).
//!
//! cargo-fuzz is installed from crates.io when it is missing. libFuzzer needs nightly
//! compiler flags; on a stable toolchain they are allowed with `RUSTC_BOOTSTRAP=1`, which
//! this sets for cargo-fuzz alone. New inputs a run finds go to `fuzz/target/xtask-corpus/`
//! (the committed corpus is only read); a crash stops that target, leaves its input in
//! `fuzz/artifacts/<target>/`, and makes the command fail once every target has run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Seconds per target of a smoke run (CI).
pub const SMOKE_SECS: u64 = 15;
/// Targets a smoke run leaves out, each with why (none today).
pub const NOT_IN_SMOKE: &[&str] = &[];
/// Seconds per target of `cargo xtask fuzz` without `--secs`.
pub const DEFAULT_SECS: u64 = 300;
/// A single input that takes longer than this is a hang: reported as a crash.
const INPUT_TIMEOUT_SECS: u64 = 10;
/// Memory a run may use before libFuzzer calls it a leak or a bomb.
const RSS_LIMIT_MB: u64 = 2048;

/// What `cargo xtask fuzz` was asked to do.
#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    pub secs: u64,
    /// `--smoke`: every target but [`NOT_IN_SMOKE`], [`SMOKE_SECS`] each.
    pub smoke: bool,
    /// Empty: every target.
    pub targets: Vec<String>,
}

/// Parse the arguments after `fuzz`.
pub fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut secs = None;
    let mut smoke = false;
    let mut targets = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--smoke" => {
                smoke = true;
                secs = secs.or(Some(SMOKE_SECS));
            }
            "--secs" => {
                let n = it.next().context("--secs takes a number of seconds")?;
                let n: u64 = n
                    .parse()
                    .with_context(|| format!("--secs takes a number of seconds, not {n:?}"))?;
                if n == 0 {
                    bail!("--secs must be at least 1");
                }
                secs = Some(n);
            }
            flag if flag.starts_with('-') => bail!("unknown option {flag:?} for `fuzz`"),
            target => targets.push(target.to_string()),
        }
    }
    Ok(Options {
        secs: secs.unwrap_or(DEFAULT_SECS),
        smoke,
        targets,
    })
}

/// The libFuzzer arguments of one run.
fn libfuzzer_args(secs: u64) -> Vec<String> {
    vec![
        format!("-max_total_time={secs}"),
        format!("-timeout={INPUT_TIMEOUT_SECS}"),
        format!("-rss_limit_mb={RSS_LIMIT_MB}"),
        // Inputs stay small: the targets' inputs are requests and packages, not bulk data.
        "-max_len=65536".to_string(),
        "-print_final_stats=1".to_string(),
    ]
}

/// The targets of `fuzz/Cargo.toml` (its `[[bin]]` names), in file order.
pub fn targets_in(manifest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
            continue;
        }
        if !in_bin {
            continue;
        }
        if let Some(value) = line.strip_prefix("name").map(str::trim_start) {
            if let Some(value) = value.strip_prefix('=') {
                out.push(value.trim().trim_matches('"').to_string());
            }
        }
    }
    out
}

fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// A `cargo fuzz` command in the checkout, with nightly flags allowed on stable.
fn cargo_fuzz(root: &Path) -> Command {
    let mut cmd = Command::new(cargo());
    cmd.arg("fuzz")
        .current_dir(root.join("fuzz"))
        .env("RUSTC_BOOTSTRAP", "1");
    cmd
}

fn ensure_cargo_fuzz(root: &Path) -> anyhow::Result<()> {
    let present = cargo_fuzz(root)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    eprintln!("xtask: cargo fuzz: installing cargo-fuzz from crates.io");
    let status = Command::new(cargo())
        .args(["install", "--locked", "cargo-fuzz"])
        .status()
        .context("run cargo install cargo-fuzz")?;
    if !status.success() {
        bail!("cargo install cargo-fuzz failed ({status})");
    }
    Ok(())
}

pub fn run(root: &Path, opts: &Options) -> anyhow::Result<()> {
    let manifest =
        std::fs::read_to_string(root.join("fuzz/Cargo.toml")).context("read fuzz/Cargo.toml")?;
    let all = targets_in(&manifest);
    for t in &opts.targets {
        if !all.contains(t) {
            bail!("no fuzz target {t:?}; the targets are {}", all.join(", "));
        }
    }
    let targets: Vec<String> = if !opts.targets.is_empty() {
        opts.targets.clone()
    } else if opts.smoke {
        all.into_iter()
            .filter(|t| !NOT_IN_SMOKE.contains(&t.as_str()))
            .collect()
    } else {
        all
    };
    ensure_cargo_fuzz(root)?;

    let started = Instant::now();
    // A smoke run builds without optimizations: in CI the build, not the seconds of
    // fuzzing, is what a smoke run costs, and an unoptimized build takes about half as long.
    let profile = if opts.smoke {
        "--dev"
    } else {
        "--debug-assertions"
    };
    eprintln!("xtask: cargo fuzz build {profile}");
    let status = cargo_fuzz(root)
        .args(["build", profile])
        .status()
        .context("run cargo fuzz build")?;
    if !status.success() {
        bail!("cargo fuzz build failed ({status})");
    }
    let built = started.elapsed();

    let mut failed = Vec::new();
    for t in &targets {
        let corpus = root.join("fuzz/corpus").join(t);
        let scratch: PathBuf = root.join("fuzz/target/xtask-corpus").join(t);
        std::fs::create_dir_all(&scratch)
            .with_context(|| format!("create {}", scratch.display()))?;
        eprintln!("xtask: fuzz {t} for {} s", opts.secs);
        // New inputs go to the first corpus dir (scratch); the committed one is only read.
        let status = cargo_fuzz(root)
            .args(["run", profile, t])
            .arg(&scratch)
            .arg(&corpus)
            .arg("--")
            .args(libfuzzer_args(opts.secs))
            .status()
            .with_context(|| format!("run cargo fuzz run {t}"))?;
        if !status.success() {
            eprintln!(
                "xtask: fuzz target {t} failed ({status}); its input is in fuzz/artifacts/{t}/"
            );
            failed.push(t.clone());
        }
    }
    eprintln!(
        "xtask: fuzz: {} targets, build {}, total {}",
        targets.len(),
        secs(built),
        secs(started.elapsed())
    );
    if !failed.is_empty() {
        bail!(
            "fuzz targets failed: {} (docs/FUZZING.md: reproduce, minimize, fix, add to the corpus)",
            failed.join(", ")
        );
    }
    Ok(())
}

fn secs(d: Duration) -> String {
    format!("{:.0} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_the_options() {
        assert_eq!(
            parse(&[]).unwrap(),
            Options {
                secs: DEFAULT_SECS,
                smoke: false,
                targets: vec![]
            }
        );
        assert_eq!(
            parse(&strings(&["--smoke"])).unwrap(),
            Options {
                secs: SMOKE_SECS,
                smoke: true,
                targets: vec![]
            }
        );
        assert_eq!(
            parse(&strings(&["--secs", "60", "names", "zip_bytes"])).unwrap(),
            Options {
                secs: 60,
                smoke: false,
                targets: strings(&["names", "zip_bytes"])
            }
        );
        assert!(parse(&strings(&["--secs"])).is_err());
        assert!(parse(&strings(&["--secs", "x"])).is_err());
        assert!(parse(&strings(&["--secs", "0"])).is_err());
        assert!(parse(&strings(&["--jobs"])).is_err());
    }

    #[test]
    fn finds_the_targets_of_the_manifest() {
        let manifest = r#"
[package]
name = "sous-fuzz"

[dependencies]
name = "not a target"

[[bin]]
name = "api_lambda"
path = "fuzz_targets/api_lambda.rs"

[[bin]]
name= "names"
"#;
        assert_eq!(targets_in(manifest), strings(&["api_lambda", "names"]));
    }

    #[test]
    fn the_checkouts_targets_each_have_a_corpus() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let manifest = std::fs::read_to_string(root.join("fuzz/Cargo.toml")).unwrap();
        let targets = targets_in(&manifest);
        assert!(targets.len() >= 8, "{targets:?}");
        for t in &targets {
            let corpus = root.join("fuzz/corpus").join(t);
            let n = std::fs::read_dir(&corpus)
                .unwrap_or_else(|e| panic!("{}: {e}", corpus.display()))
                .count();
            assert!((1..100).contains(&n), "{t}: {n} corpus files");
            assert!(root
                .join("fuzz/fuzz_targets")
                .join(format!("{t}.rs"))
                .is_file());
        }
    }

    #[test]
    fn runs_are_bounded() {
        let args = libfuzzer_args(20);
        assert!(args.contains(&"-max_total_time=20".to_string()));
        assert!(args.iter().any(|a| a.starts_with("-timeout=")));
    }
}
