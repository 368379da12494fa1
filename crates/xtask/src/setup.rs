//! `cargo xtask setup`: what the test suite needs on the host, how to tell whether it is
//! there, and how to install what is missing. The decisions are pure functions of what a
//! [`Host`] answers, so that they are unit-tested with a fake host.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

/// The Python venv with the AWS CLI, boto3 and moto's server (the S3 and DynamoDB engine the
/// tests start), relative to the checkout.
pub const VENV: &str = ".venv";

/// The interpreter the venv is made from: Debian's, the one the sandbox shows to custom
/// runtimes (the awslambdaric fixture vendors wheels for it), whatever `python3` comes first
/// on `PATH`.
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// What the tests ask of the host.
pub trait Host {
    /// Whether `path` is an existing file.
    fn is_file(&self, path: &Path) -> bool;
    /// Whether `program` is found on `PATH`.
    fn on_path(&self, program: &str) -> bool;
    /// Whether `program args` runs and exits 0.
    fn succeeds(&self, program: &Path, args: &[&str]) -> bool;
    /// `$JAVA_HOME`, when set.
    fn java_home(&self) -> Option<PathBuf>;
    /// Whether this process runs as root.
    fn is_root(&self) -> bool;
}

/// One way of telling that a requirement is met.
#[derive(Debug, Clone, Copy)]
enum Check {
    /// This file exists.
    File(&'static str),
    /// This program is on `PATH`.
    OnPath(&'static str),
    /// `$JAVA_HOME/bin/<tool>` exists.
    JavaHomeTool(&'static str),
    /// This command exits 0.
    Succeeds(&'static str, &'static [&'static str]),
}

impl Check {
    fn holds(&self, host: &dyn Host) -> bool {
        match *self {
            Check::File(p) => host.is_file(Path::new(p)),
            Check::OnPath(p) => host.on_path(p),
            Check::JavaHomeTool(t) => host
                .java_home()
                .is_some_and(|h| host.is_file(&h.join("bin").join(t))),
            Check::Succeeds(p, args) => host.succeeds(Path::new(p), args),
        }
    }
}

/// A Debian package the tests need, why, and how to tell it is (in effect) installed: any of
/// `present` holding is enough.
#[derive(Debug)]
pub struct Requirement {
    pub package: &'static str,
    pub why: &'static str,
    present: &'static [Check],
}

/// Everything the suite needs from the host's package manager (`.ci/run` listed the same).
pub const REQUIREMENTS: &[Requirement] = &[
    Requirement {
        package: "curl",
        why: "the tests' shell-script custom runtimes call the Runtime API with it",
        present: &[Check::OnPath("curl")],
    },
    Requirement {
        package: "iproute2",
        why: "the isolation tests make their test hosts in network namespaces with `ip`",
        present: &[
            Check::OnPath("ip"),
            Check::File("/usr/sbin/ip"),
            Check::File("/sbin/ip"),
        ],
    },
    Requirement {
        package: "e2fsprogs",
        why: "the tests check the /tmp images Sous formats itself with e2fsck (Sous needs none)",
        present: &[Check::File("/usr/sbin/e2fsck"), Check::File("/sbin/e2fsck")],
    },
    Requirement {
        package: "slirp4netns",
        why: "rootless outbound networking",
        present: &[Check::File("/usr/bin/slirp4netns")],
    },
    Requirement {
        package: "util-linux",
        why: "the rootless tests start sous as another user with setpriv",
        present: &[Check::OnPath("setpriv")],
    },
    Requirement {
        package: "python3",
        why: "the python3.11 runtime and the awslambdaric fixture run Debian's python3",
        present: &[Check::File(SYSTEM_PYTHON)],
    },
    Requirement {
        package: "python3-venv",
        why: "the venv with the AWS CLI, boto3 and moto's server",
        present: &[Check::Succeeds(
            SYSTEM_PYTHON,
            &["-c", "import venv, ensurepip"],
        )],
    },
    Requirement {
        package: "python3-pip",
        why: "`sous sdk install` installs boto3 (python3.11 bundles it) with a CPython 3.11's pip \
              (the tests run it once per run, see `run`)",
        present: &[Check::Succeeds(SYSTEM_PYTHON, &["-m", "pip", "--version"])],
    },
    Requirement {
        package: "g++",
        why: "`cargo xtask fuzz` builds libFuzzer, which is C++ (docs/FUZZING.md)",
        present: &[
            Check::OnPath("c++"),
            Check::OnPath("g++"),
            Check::OnPath("clang++"),
        ],
    },
    Requirement {
        package: "default-jdk-headless",
        why: "the build compiles the Java runtime (javac 17+); the java17 tests compile handlers",
        present: &[Check::JavaHomeTool("javac"), Check::OnPath("javac")],
    },
];

/// What the host lacks, in the order of [`REQUIREMENTS`].
pub fn missing(host: &dyn Host) -> Vec<&'static Requirement> {
    REQUIREMENTS
        .iter()
        .filter(|r| !r.present.iter().any(|c| c.holds(host)))
        .collect()
}

/// The commands that install `packages` with apt-get: as they are when root, through `sudo`
/// otherwise. `None` when there is nothing to install.
pub fn apt_commands(packages: &[&str], root: bool) -> Option<Vec<Vec<String>>> {
    if packages.is_empty() {
        return None;
    }
    let prefix: Vec<String> = if root {
        vec!["env".into()]
    } else {
        vec!["sudo".into(), "env".into()]
    };
    let with = |rest: &[&str]| -> Vec<String> {
        let mut cmd = prefix.clone();
        cmd.push("DEBIAN_FRONTEND=noninteractive".into());
        cmd.extend(rest.iter().map(|s| s.to_string()));
        cmd
    };
    let mut install = with(&["apt-get", "install", "-y", "-qq", "--no-install-recommends"]);
    install.extend(packages.iter().map(|p| p.to_string()));
    Some(vec![with(&["apt-get", "update", "-qq"]), install])
}

/// A step of the venv's set-up.
#[derive(Debug, PartialEq, Eq)]
pub enum VenvStep {
    /// `python3 -m venv .venv`
    Create,
    /// `.venv/bin/python3 -m pip install awscli boto3 moto[server]`
    InstallTools,
}

/// What the venv at `venv` still needs.
pub fn venv_steps(host: &dyn Host, venv: &Path) -> Vec<VenvStep> {
    let python = venv.join("bin/python3");
    if !host.is_file(&python) {
        return vec![VenvStep::Create, VenvStep::InstallTools];
    }
    let has_tools = host.is_file(&venv.join("bin/aws"))
        && host.succeeds(&python, &["-c", "import awscli, boto3, moto.server"]);
    if has_tools {
        Vec::new()
    } else {
        vec![VenvStep::InstallTools]
    }
}

/// The host this process runs on.
pub struct RealHost;

impl Host for RealHost {
    fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }

    fn on_path(&self, program: &str) -> bool {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
    }

    fn succeeds(&self, program: &Path, args: &[&str]) -> bool {
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn java_home(&self) -> Option<PathBuf> {
        std::env::var_os("JAVA_HOME").map(PathBuf::from)
    }

    fn is_root(&self) -> bool {
        // The effective uid: the second field of /proc/self/status's `Uid:` line.
        std::fs::read_to_string("/proc/self/status").is_ok_and(|s| euid_is_root(&s))
    }
}

/// Whether a `/proc/PID/status` text says the effective uid is 0.
fn euid_is_root(status: &str) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

fn run_command(cmd: &[String], dry_run: bool) -> anyhow::Result<()> {
    eprintln!("xtask: {}", cmd.join(" "));
    if dry_run {
        return Ok(());
    }
    let (program, args) = cmd.split_first().context("empty command")?;
    let status = Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("run {program}"))?;
    if !status.success() {
        bail!("`{}` failed ({status})", cmd.join(" "));
    }
    Ok(())
}

/// Installs what is missing for a checkout at `root` (only prints the commands with
/// `dry_run`).
pub fn run(root: &Path, dry_run: bool) -> anyhow::Result<()> {
    let host = RealHost;
    let lacking = missing(&host);
    let packages: Vec<&str> = lacking.iter().map(|r| r.package).collect();
    if let Some(commands) = apt_commands(&packages, host.is_root()) {
        for r in &lacking {
            eprintln!("xtask: missing {} ({})", r.package, r.why);
        }
        if !host.on_path("apt-get") {
            bail!(
                "this is not a Debian-like host (no apt-get): install the equivalents of {} \
                 yourself, then run `cargo xtask setup` again",
                packages.join(" ")
            );
        }
        if !host.is_root() && !host.on_path("sudo") {
            bail!(
                "not root and no sudo: as root, run `apt-get install {}`, then `cargo xtask \
                 setup` again",
                packages.join(" ")
            );
        }
        for cmd in commands {
            run_command(&cmd, dry_run)?;
        }
    }

    let venv = root.join(VENV);
    for step in venv_steps(&host, &venv) {
        let cmd: Vec<String> = match step {
            VenvStep::Create => vec![
                SYSTEM_PYTHON.into(),
                "-m".into(),
                "venv".into(),
                venv.display().to_string(),
            ],
            VenvStep::InstallTools => vec![
                venv.join("bin/python3").display().to_string(),
                "-m".into(),
                "pip".into(),
                "install".into(),
                "--quiet".into(),
                "--disable-pip-version-check".into(),
                "awscli".into(),
                "boto3".into(),
                "moto[server]".into(),
            ],
        };
        run_command(&cmd, dry_run)?;
    }

    // Not installable from Debian 12's archive: Node.js 20 (nodejs20.x).
    if !host.on_path("node") {
        eprintln!(
            "xtask: warning: no `node` on PATH: the nodejs20.x tests need Node.js 20 (Debian 12 \
             ships 18; e.g. NodeSource's nodejs package)"
        );
    }
    // The SDKs Lambda bundles (boto3, the AWS SDK for JavaScript v3) are not installed here
    // but by the test harness, once per test run, through the `sous` binary under test
    // (`sous sdk install`, under a lock, into one cache all test servers share: see
    // `common::install_bundled_sdks` in crates/sous/tests/it). Installing them here would
    // mean building `sous` here too, in a profile or with features other than the tests'
    // build, so twice. Setup provides what that install runs: pip (above) and npm.
    if !host.on_path("npm") {
        eprintln!(
            "xtask: warning: no `npm` on PATH: the tests install the AWS SDK for JavaScript v3 \
             that nodejs20.x bundles with it (it comes with Node.js)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// A host with exactly these files, programs on PATH and succeeding commands.
    #[derive(Default)]
    struct Fake {
        files: BTreeSet<PathBuf>,
        path: BTreeSet<&'static str>,
        succeeding: BTreeSet<PathBuf>,
        java_home: Option<PathBuf>,
        root: bool,
    }

    impl Host for Fake {
        fn is_file(&self, path: &Path) -> bool {
            self.files.contains(path)
        }
        fn on_path(&self, program: &str) -> bool {
            self.path.contains(program)
        }
        fn succeeds(&self, program: &Path, _args: &[&str]) -> bool {
            self.succeeding.contains(program)
        }
        fn java_home(&self) -> Option<PathBuf> {
            self.java_home.clone()
        }
        fn is_root(&self) -> bool {
            self.root
        }
    }

    fn complete() -> Fake {
        Fake {
            files: ["/usr/sbin/e2fsck", "/usr/bin/slirp4netns", SYSTEM_PYTHON]
                .into_iter()
                .map(PathBuf::from)
                .collect(),
            path: ["curl", "ip", "setpriv", "c++", "javac"]
                .into_iter()
                .collect(),
            succeeding: [PathBuf::from(SYSTEM_PYTHON)].into_iter().collect(),
            java_home: None,
            root: true,
        }
    }

    fn names(r: &[&Requirement]) -> Vec<&'static str> {
        r.iter().map(|r| r.package).collect()
    }

    #[test]
    fn a_complete_host_lacks_nothing() {
        assert!(missing(&complete()).is_empty());
        assert_eq!(apt_commands(&[], true), None);
    }

    #[test]
    fn a_bare_host_lacks_every_package() {
        let all: Vec<&str> = REQUIREMENTS.iter().map(|r| r.package).collect();
        assert_eq!(names(&missing(&Fake::default())), all);
    }

    #[test]
    fn any_one_check_of_a_requirement_is_enough() {
        // ip found only in /sbin, not on PATH.
        let mut host = complete();
        host.path.remove("ip");
        assert_eq!(names(&missing(&host)), ["iproute2"]);
        host.files.insert("/sbin/ip".into());
        assert!(missing(&host).is_empty());
        // javac through JAVA_HOME only.
        host.path.remove("javac");
        assert_eq!(names(&missing(&host)), ["default-jdk-headless"]);
        host.java_home = Some("/opt/jdk".into());
        assert_eq!(names(&missing(&host)), ["default-jdk-headless"]);
        host.files.insert("/opt/jdk/bin/javac".into());
        assert!(missing(&host).is_empty());
    }

    #[test]
    fn python_without_ensurepip_needs_python3_venv() {
        let mut host = complete();
        host.succeeding.clear();
        assert_eq!(names(&missing(&host)), ["python3-venv", "python3-pip"]);
    }

    #[test]
    fn apt_runs_directly_as_root_and_through_sudo_otherwise() {
        let root = apt_commands(&["curl", "slirp4netns"], true).unwrap();
        assert_eq!(
            root,
            vec![
                vec![
                    "env",
                    "DEBIAN_FRONTEND=noninteractive",
                    "apt-get",
                    "update",
                    "-qq"
                ],
                vec![
                    "env",
                    "DEBIAN_FRONTEND=noninteractive",
                    "apt-get",
                    "install",
                    "-y",
                    "-qq",
                    "--no-install-recommends",
                    "curl",
                    "slirp4netns"
                ],
            ]
        );
        let user = apt_commands(&["curl"], false).unwrap();
        assert!(user.iter().all(|c| c[0] == "sudo" && c[1] == "env"));
        assert_eq!(user[1].last().map(String::as_str), Some("curl"));
    }

    #[test]
    fn root_is_the_effective_uid() {
        assert!(euid_is_root(
            "Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\n"
        ));
        assert!(!euid_is_root("Uid:\t0\t1000\t1000\t1000\n"));
        assert!(!euid_is_root("Name:\tx\n"));
    }

    #[test]
    fn the_venv_is_made_and_filled_only_when_needed() {
        let venv = Path::new("/src/.venv");
        let mut host = Fake::default();
        assert_eq!(
            venv_steps(&host, venv),
            [VenvStep::Create, VenvStep::InstallTools]
        );
        host.files.insert(venv.join("bin/python3"));
        assert_eq!(venv_steps(&host, venv), [VenvStep::InstallTools]);
        // The CLI's script without the packages importable is not enough.
        host.files.insert(venv.join("bin/aws"));
        assert_eq!(venv_steps(&host, venv), [VenvStep::InstallTools]);
        host.succeeding.insert(venv.join("bin/python3"));
        assert!(venv_steps(&host, venv).is_empty());
    }
}
