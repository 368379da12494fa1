//! `sous`: a self-hosted AWS Lambda in one binary.

mod credentials;
mod logs;
mod serve;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "sous",
    version,
    about = "A self-hosted AWS Lambda in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Lambda API and execution environments on this machine.
    #[command(after_help = serve::ISOLATION_HELP)]
    Serve(serve::ServeArgs),
    /// Write the SDK that handlers compile against.
    Sdk {
        #[command(subcommand)]
        sdk: Sdk,
    },
    /// Print a function's stored log streams.
    Logs {
        /// Function name.
        function: String,
        /// Data directory (as for `serve`).
        #[arg(long, env = "SOUS_DATA_DIR")]
        data_dir: Option<PathBuf>,
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
}

fn main() -> anyhow::Result<()> {
    // The sandbox init re-executes this binary; it must run before anything else starts
    // (no threads, no async runtime).
    if std::env::args().nth(1).as_deref() == Some(sous_sandbox::INIT_ARG) {
        sous_sandbox::init_main();
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Sdk {
            sdk: Sdk::Java { out },
        } => {
            std::fs::write(&out, sous_runtimes::java::sdk_jar())
                .map_err(|e| anyhow::anyhow!("write {}: {e}", out.display()))?;
            println!("wrote {}", out.display());
            Ok(())
        }
        Command::Logs { function, data_dir } => logs::print(&serve::data_dir(data_dir)?, &function),
    }
}
