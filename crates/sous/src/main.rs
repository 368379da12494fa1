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
    Serve(serve::ServeArgs),
    /// Print a function's stored log streams.
    Logs {
        /// Function name.
        function: String,
        /// Data directory (as for `serve`).
        #[arg(long, env = "SOUS_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Logs { function, data_dir } => logs::print(&serve::data_dir(data_dir)?, &function),
    }
}
