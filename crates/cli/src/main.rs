//! The `brine` binary: the server (`brine serve`) and a client for its API.

mod admin;
mod backup;
mod client;
mod keys;
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
    /// Write a consistent snapshot of the SQLite database to a file, while brine serves.
    Backup(backup::BackupArgs),
    /// Put a backup written by `brine backup` in place of the database (brine stopped).
    Restore(backup::RestoreArgs),
    /// Operator commands: a locked-out owner, the master keyring.
    #[command(subcommand)]
    Admin(AdminCommand),
    #[command(flatten)]
    Client(client::Command),
}

/// `brine records list | head -3`: when the reader of stdout goes away, a client command ends
/// quietly with the exit code of a process stopped by SIGPIPE (141), as other command-line
/// tools do, rather than with a panic report. (Rust ignores SIGPIPE, so `println!` panics
/// instead; restoring the signal would need `unsafe`.)
fn quiet_on_closed_pipe() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        report(info);
    }));
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Set a new password for an account (ending all its sessions), e.g. when its owner is
    /// locked out. Works on the database directly, like `migrate`.
    ResetPassword(admin::ResetPasswordArgs),
    /// Generate the next master-key version and add it to DATA_DIR/master.keyring (or print
    /// the keyring for BRINE_MASTER_KEYS).
    AddMasterKey(keys::AddKeyArgs),
    /// Show the master-key versions the database knows and how many values each holds.
    MasterKeyStatus(keys::KeyringArgs),
    /// Re-wrap everything under the keyring's current master-key version, in resumable
    /// batches (payloads are not re-encrypted). Safe to stop and run again.
    RotateMasterKey(keys::RotateArgs),
    /// Retire an old master-key version once nothing is under it any more.
    RetireMasterKey(keys::RetireArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Client(_)) {
        quiet_on_closed_pipe();
    }
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
            Command::Backup(args) => backup::backup(args).await,
            Command::Restore(args) => backup::restore(args).await,
            Command::Admin(AdminCommand::ResetPassword(args)) => admin::reset_password(args).await,
            Command::Admin(AdminCommand::AddMasterKey(args)) => keys::add(args).await,
            Command::Admin(AdminCommand::MasterKeyStatus(args)) => keys::status(args).await,
            Command::Admin(AdminCommand::RotateMasterKey(args)) => keys::rotate(args).await,
            Command::Admin(AdminCommand::RetireMasterKey(args)) => keys::retire(args).await,
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
