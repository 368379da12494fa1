//! `cargo xtask`: the project's own commands (the alias is in `.cargo/config.toml`).
//!
//! - `cargo xtask setup [--dry-run]`: installs what the test suite needs and this machine
//!   lacks: Debian packages (with `apt-get`, as root or through `sudo`) and a Python venv at
//!   `.venv` with the AWS CLI v1 and boto3 from PyPI. Idempotent: when everything is there it
//!   only looks, which takes well under a second.
//! - `cargo xtask test [ARGS...]`: `setup`, then `cargo test --workspace ARGS...` with the
//!   environment the tests read (`SOUS_TEST_AWS_CLI`, `SOUS_TEST_PYTHON`, `PYTHON`).
//! - `cargo xtask fuzz [--smoke | --secs N] [TARGET...]`: the cargo-fuzz targets in `fuzz/`
//!   (installs cargo-fuzz when missing; docs/FUZZING.md).
//!
//! `.ci/run` runs `cargo xtask fuzz --smoke` and then `cargo xtask test` after formatting and
//! lints, so CI and the README run the same commands.

mod fuzz;
mod setup;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context};

const USAGE: &str = "usage:
  cargo xtask setup [--dry-run]   install what the test suite needs and is missing
                                  (Debian packages, .venv with the AWS CLI and boto3)
  cargo xtask test [ARGS...]      setup, then `cargo test --workspace ARGS...` with the
                                  environment the tests expect (ARGS as for cargo test,
                                  e.g. `-p sous --test it cli::`, `-- --nocapture`)
  cargo xtask fuzz [--smoke | --secs N] [TARGET...]
                                  run the fuzz targets in fuzz/ (all when none named),
                                  N seconds each (default 300; --smoke: 20, as CI)";

/// What was asked for on the command line.
#[derive(Debug, PartialEq, Eq)]
enum Task {
    Setup { dry_run: bool },
    Test { args: Vec<String> },
    Fuzz(fuzz::Options),
    Help,
}

fn parse(args: &[String]) -> anyhow::Result<Task> {
    match args.split_first() {
        None => Ok(Task::Help),
        Some((cmd, rest)) => match cmd.as_str() {
            "setup" => match rest {
                [] => Ok(Task::Setup { dry_run: false }),
                [flag] if flag == "--dry-run" => Ok(Task::Setup { dry_run: true }),
                _ => bail!("`setup` takes only --dry-run, not {rest:?}\n{USAGE}"),
            },
            "test" => Ok(Task::Test {
                args: rest.to_vec(),
            }),
            "fuzz" => Ok(Task::Fuzz(fuzz::parse(rest)?)),
            "help" | "-h" | "--help" => Ok(Task::Help),
            other => bail!("unknown task {other:?}\n{USAGE}"),
        },
    }
}

/// The arguments of `cargo` for `cargo xtask test ARGS`: the whole workspace, unless ARGS
/// select packages themselves (before any `--`, which starts the test binaries' arguments).
fn cargo_test_args(extra: &[String]) -> Vec<String> {
    let cargo_part = extra.split(|a| a == "--").next().unwrap_or_default();
    let selects_packages = cargo_part.iter().any(|a| {
        a == "-p"
            || a == "--package"
            || a.starts_with("--package=")
            || (a.starts_with("-p") && a.len() > 2)
            || a == "--workspace"
    });
    let mut args = vec!["test".to_string()];
    if !selects_packages {
        args.push("--workspace".to_string());
    }
    args.extend(extra.iter().cloned());
    args
}

/// The environment the tests read, for a checkout at `root`.
fn test_env(root: &Path) -> Vec<(&'static str, PathBuf)> {
    let venv = root.join(setup::VENV);
    vec![
        // The AWS CLI the tests drive (crates/sous/tests/it/common: AwsCli).
        ("SOUS_TEST_AWS_CLI", venv.join("bin/aws")),
        // boto3 (common::venv_python).
        ("SOUS_TEST_PYTHON", venv.join("bin/python3")),
        // The awslambdaric fixture's build.sh vendors with this interpreter's pip.
        ("PYTHON", venv.join("bin/python3")),
    ]
}

/// The checkout: this crate lives in `crates/xtask`.
fn repo_root() -> anyhow::Result<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.join("../..")
        .canonicalize()
        .with_context(|| format!("find the checkout above {}", here.display()))
}

fn run() -> anyhow::Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args)? {
        Task::Help => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        Task::Setup { dry_run } => {
            setup::run(&repo_root()?, dry_run)?;
            Ok(ExitCode::SUCCESS)
        }
        Task::Fuzz(opts) => {
            fuzz::run(&repo_root()?, &opts)?;
            Ok(ExitCode::SUCCESS)
        }
        Task::Test { args } => {
            let root = repo_root()?;
            setup::run(&root, false)?;
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let cargo_args = cargo_test_args(&args);
            eprintln!("xtask: cargo {}", cargo_args.join(" "));
            let status = Command::new(&cargo)
                .args(&cargo_args)
                .envs(test_env(&root))
                .current_dir(&root)
                .status()
                .context("run cargo test")?;
            Ok(match status.code() {
                Some(0) => ExitCode::SUCCESS,
                Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
                None => ExitCode::FAILURE,
            })
        }
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_the_tasks() {
        assert_eq!(parse(&[]).unwrap(), Task::Help);
        assert_eq!(
            parse(&strings(&["setup"])).unwrap(),
            Task::Setup { dry_run: false }
        );
        assert_eq!(
            parse(&strings(&["setup", "--dry-run"])).unwrap(),
            Task::Setup { dry_run: true }
        );
        assert!(parse(&strings(&["setup", "--yes"])).is_err());
        assert!(parse(&strings(&["frobnicate"])).is_err());
        assert_eq!(
            parse(&strings(&["fuzz", "--smoke"])).unwrap(),
            Task::Fuzz(fuzz::Options {
                secs: fuzz::SMOKE_SECS,
                smoke: true,
                targets: vec![]
            })
        );
        assert!(parse(&strings(&["fuzz", "--bogus"])).is_err());
        assert_eq!(
            parse(&strings(&["test", "-p", "sous", "--", "--nocapture"])).unwrap(),
            Task::Test {
                args: strings(&["-p", "sous", "--", "--nocapture"])
            }
        );
    }

    #[test]
    fn test_runs_the_whole_workspace_unless_packages_are_selected() {
        assert_eq!(cargo_test_args(&[]), strings(&["test", "--workspace"]));
        assert_eq!(
            cargo_test_args(&strings(&["--", "--nocapture"])),
            strings(&["test", "--workspace", "--", "--nocapture"])
        );
        for selected in [
            &["-p", "sous"][..],
            &["--package", "sous"],
            &["--package=sous"],
            &["-psous"],
            &["--workspace"],
        ] {
            let extra = strings(selected);
            let mut want = strings(&["test"]);
            want.extend(extra.clone());
            assert_eq!(cargo_test_args(&extra), want, "{selected:?}");
        }
        // A `-p` after `--` belongs to the test binaries, not to cargo.
        assert_eq!(
            cargo_test_args(&strings(&["--", "-p"])),
            strings(&["test", "--workspace", "--", "-p"])
        );
    }

    #[test]
    fn the_tests_get_the_venvs_tools() {
        let env = test_env(Path::new("/src/sous"));
        let get = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(
            get("SOUS_TEST_AWS_CLI"),
            Some(PathBuf::from("/src/sous/.venv/bin/aws"))
        );
        assert_eq!(
            get("SOUS_TEST_PYTHON"),
            Some(PathBuf::from("/src/sous/.venv/bin/python3"))
        );
        assert_eq!(get("PYTHON"), get("SOUS_TEST_PYTHON"));
    }
}
