//! Client commands that talk to a brine server over its HTTP API.

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum Command {
    /// Print a credential's value.
    Get { uuid: String },
}

pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Get { uuid } => anyhow::bail!("not implemented yet: get {uuid}"),
    }
}
