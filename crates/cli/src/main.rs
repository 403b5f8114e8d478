//! The `brine` binary: the server (`brine serve`) and a client for its API.

mod admin;
mod client;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "brine",
    version,
    about = "A self-hosted credential vault and key-hiding proxy"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(serve::ServeArgs),
    /// Apply database migrations now (servers also apply them at start).
    Migrate(admin::DatabaseArgs),
    /// Write every account, record and audit event to a file, still encrypted.
    Export(admin::ExportArgs),
    /// Load a file written by `brine export` into an empty database.
    Import(admin::ImportArgs),
    /// Operator commands for a locked-out owner.
    #[command(subcommand)]
    Admin(AdminCommand),
    #[command(flatten)]
    Client(client::Command),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Set a new password for an account (ending all its sessions), e.g. when its owner is
    /// locked out. Works on the database directly, like `migrate`.
    ResetPassword(admin::ResetPasswordArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("brine: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Migrate(args) => admin::migrate(args).await,
            Command::Export(args) => admin::export(args).await,
            Command::Import(args) => admin::import(args).await,
            Command::Admin(AdminCommand::ResetPassword(args)) => admin::reset_password(args).await,
            Command::Client(command) => client::run(command).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("brine: {e:#}");
            ExitCode::FAILURE
        }
    }
}
