//! `sous`: a self-hosted AWS Lambda in one binary.

mod credentials;
mod logs;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "sous",
    version,
    about = "A self-hosted AWS Lambda in one binary",
    after_help = "Errors print as one line (`Error: what failed: why`). SOUS_BACKTRACE=1 adds \
                  where in Sous it failed (a backtrace); RUST_BACKTRACE alone does not."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Lambda API and execution environments on this machine.
    #[command(after_help = serve::ISOLATION_HELP)]
    Serve(Box<serve::ServeArgs>),
    /// Write the SDK that handlers compile against.
    Sdk {
        #[command(subcommand)]
        sdk: Sdk,
    },
    /// Print a function's stored log streams, oldest first (as `aws logs tail`).
    ///
    /// Fails when there is no such function (and no logs left of one); a function with no
    /// invocations yet prints nothing and says so on stderr.
    Logs {
        /// Function name.
        function: String,
        /// Data directory (as for `serve`).
        #[arg(long, env = "SOUS_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Keep printing new events, of new and existing streams, until interrupted.
        #[arg(short, long)]
        follow: bool,
        /// Only events from this time on: a duration back from now (30s, 10m, 1h, 2d, 1w) or
        /// an RFC 3339 time (2024-05-01T12:00:00Z).
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// Only events whose message contains this text (case-sensitive).
        #[arg(long, value_name = "TEXT")]
        filter: Option<String>,
    },
}

#[derive(Subcommand)]
enum Sdk {
    /// A jar of the `com.amazonaws.services.lambda.runtime` interfaces (Context,
    /// RequestHandler, RequestStreamHandler, LambdaLogger, ...), as aws-lambda-java-core.
    Java {
        /// Where to write the jar.
        #[arg(long)]
        out: PathBuf,
    },
    /// Install the AWS SDKs Lambda bundles with its runtimes (boto3 for python3.11, the AWS
    /// SDK for JavaScript v3 for nodejs20.x) at Sous's pinned versions, from PyPI (pip of a
    /// CPython 3.11) and the npm registry, into the shared cache. `sous serve` installs a
    /// missing one in the background at start-up; this does it now, showing progress.
    Install {
        /// The cache directory [default: $XDG_CACHE_HOME/sous/sdks, else ~/.cache/sous/sdks].
        #[arg(long, env = "SOUS_SDK_DIR")]
        dir: Option<PathBuf>,
        /// Only these runtimes' SDKs (python3.11, nodejs20.x); all by default.
        #[arg(long = "runtime", value_name = "RUNTIME")]
        runtimes: Vec<String>,
    },
}

/// Whether the user asked for backtraces of errors (`SOUS_BACKTRACE=1`).
fn backtraces_asked() -> bool {
    std::env::var_os("SOUS_BACKTRACE").is_some_and(|v| v == "1")
}

fn main() -> ExitCode {
    // The sandbox init re-executes this binary; it must run before anything else starts
    // (no threads, no async runtime).
    // (So does the forced-stop watcher: `__sandbox-init watch`, see sous_sandbox::forced_stop.)
    if std::env::args().nth(1).as_deref() == Some(sous_sandbox::INIT_ARG) {
        sous_sandbox::init_main();
    }
    if backtraces_asked() {
        // anyhow captures a backtrace when this is set; still single-threaded here.
        std::env::set_var("RUST_LIB_BACKTRACE", "1");
    }
    let cli = Cli::parse();
    if let Command::Serve(_) = cli.command {
        // Still single-threaded: the /tmp images Sous mounts then live in a mount namespace
        // of its own and vanish with it, however it ends. Without it (not root, or no
        // CAP_SYS_ADMIN) they are made on the host and the watcher detaches them.
        if let Err(e) = sous_sandbox::forced_stop::private_mount_namespace() {
            eprintln!("sous: a private mount namespace could not be made ({e}); /tmp images are mounted on the host");
        }
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes. A backtrace only when asked for: a
            // RUST_BACKTRACE set by the machine's environment is not asking.
            eprintln!("Error: {e:#}");
            if backtraces_asked() {
                eprintln!("\nBacktrace:\n{}", e.backtrace());
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Sdk {
            sdk: Sdk::Java { out },
        } => {
            std::fs::write(&out, sous_runtimes::java::sdk_jar())
                .with_context(|| format!("write {}", out.display()))?;
            println!("wrote {}", out.display());
            Ok(())
        }
        Command::Sdk {
            sdk: Sdk::Install { dir, runtimes },
        } => install_sdks(dir, &runtimes),
        Command::Logs {
            function,
            data_dir,
            follow,
            since,
            filter,
        } => {
            let since_ms = since
                .map(|s| logs::parse_since(&s, std::time::SystemTime::now()))
                .transpose()?;
            let opts = logs::Options {
                since_ms,
                filter,
                follow,
            };
            logs::print(&serve::data_dir(data_dir)?, &function, &opts)
        }
    }
}

/// `sous sdk install`: each bundle (or the named runtimes'), one after another, with the
/// installers' own progress output.
fn install_sdks(dir: Option<PathBuf>, runtimes: &[String]) -> anyhow::Result<()> {
    use sous_runtimes::sdk;
    let root = dir
        .or_else(sdk::default_root)
        .context("no cache directory: give --dir (or set SOUS_SDK_DIR or HOME)")?;
    for r in runtimes {
        if sdk::bundle_for(r).is_none() {
            let known: Vec<&str> = sdk::BUNDLES.iter().map(|b| b.runtime).collect();
            anyhow::bail!(
                "{r} bundles no SDK (runtimes that do: {})",
                known.join(", ")
            );
        }
    }
    for bundle in sdk::BUNDLES {
        if !runtimes.is_empty() && !runtimes.iter().any(|r| r == bundle.runtime) {
            continue;
        }
        if let Some(at) = bundle.installed(&root) {
            println!(
                "{}: {} already installed in {}",
                bundle.runtime,
                bundle.label,
                at.display()
            );
            continue;
        }
        println!("{}: installing {} ...", bundle.runtime, bundle.label);
        let at = sdk::install(bundle, &root, sdk::Output::Inherit)
            .with_context(|| format!("install {} for {}", bundle.label, bundle.runtime))?;
        println!(
            "{}: installed {} in {}",
            bundle.runtime,
            bundle.label,
            at.display()
        );
    }
    Ok(())
}
