//! Client commands that talk to a brine server over its HTTP API.
//!
//! `signup`/`login`/`logout` manage a session file; `records ...` manage your records with it;
//! `get`, `run` and `env` read values with an X-API-Key, a service token or the session;
//! `tokens` makes service tokens.

mod account;
mod bridges;
mod http;
pub(crate) mod input;
mod logs;
mod read;
mod records;
mod session;
mod share;
mod table;
mod tokens;

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum Command {
    /// Create an account on a brine server and sign in.
    ///
    /// The password is asked for on the terminal (twice), or read from the first line of stdin
    /// with --password-stdin. The session token is saved in a file only you can read
    /// (see `brine login --help`).
    Signup(account::AuthArgs),
    /// Sign in to a brine server and keep the session for the `records` commands.
    ///
    /// The token is saved as JSON, with mode 0600, in $BRINE_CONFIG_DIR/session.json, else
    /// $XDG_CONFIG_HOME/brine/session.json, else ~/.config/brine/session.json.
    Login(account::AuthArgs),
    /// Sign out: the server revokes the session token and the session file is deleted.
    Logout,
    /// Show which account and server the saved session signs in to.
    Whoami,
    /// Create, list, inspect, rotate and delete your records (needs `brine login`).
    #[command(subcommand)]
    Records(records::RecordsCommand),
    /// Make, show, change and try bridges (needs `brine login`).
    #[command(subcommand)]
    Bridges(bridges::BridgesCommand),
    /// Your account's usage logs (needs `brine login`).
    #[command(subcommand)]
    Logs(logs::LogsCommand),
    /// Service tokens for CI and servers: read-only, scoped to named records, with an expiry
    /// (needs `brine login`).
    #[command(subcommand)]
    Tokens(tokens::TokensCommand),
    /// Share a secret with a person: a password-protected page, its link and its password.
    ///
    /// Reads the value from stdin (or a hidden prompt), creates a private record with a secure
    /// page and no X-API-Key, and prints the link and the password on separate lines: send them
    /// over different channels. The password is generated unless --password-file is given.
    Share(share::ShareArgs),
    /// Print a record's value, exactly as stored.
    ///
    /// With an X-API-Key (--api-key-file, else BRINE_API_KEY) it reads as code does. Else with
    /// a service token (--token-file, else BRINE_SERVICE_TOKEN), by uuid or by name. Else,
    /// signed in, it reveals the value as its owner (audited), by uuid or by name. Else only
    /// public records answer. A newline is added only when stdout is a terminal, so
    /// `$(brine get UUID)` and pipes get the exact value.
    Get(read::GetArgs),
    /// Run a command with record values in its environment, never writing them to disk.
    ///
    /// Example: brine run --env STRIPE_KEY=UUID --env DB_URL=UUID2@db.key -- ./deploy.sh
    ///
    /// Each --env NAME=RECORD (or line of --env-file, or entry of ./brine.toml's [env]) fetches
    /// one value; it is opened with an @KEYFILE suffix's key, else --api-key-file or
    /// BRINE_API_KEY, else a service token (--token-file or BRINE_SERVICE_TOKEN), else your
    /// session, else nothing (public records). If any fetch fails, the command is not started.
    /// brine then becomes COMMAND (same process id, signals and exit code); BRINE_API_KEY and
    /// BRINE_SERVICE_TOKEN are removed from its environment, so it sees the values only.
    Run(read::RunArgs),
    /// Print record values as a dotenv file or a JSON object, for tools that read one.
    ///
    /// Takes the same --env and --env-file as `run`. The values go to stdout: redirect them to
    /// a file only you can read, or better, use `brine run`, which writes nothing to disk.
    Env(read::EnvArgs),
}

pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Signup(args) => account::signup(args).await,
        Command::Login(args) => account::login(args).await,
        Command::Logout => account::logout().await,
        Command::Whoami => account::whoami().await,
        Command::Records(command) => records::run(command).await,
        Command::Bridges(command) => bridges::run(command).await,
        Command::Logs(command) => logs::run(command).await,
        Command::Tokens(command) => tokens::run(command).await,
        Command::Share(args) => share::share(args).await,
        Command::Get(args) => read::get(args).await,
        Command::Run(args) => read::run(args).await,
        Command::Env(args) => read::env(args).await,
    }
}
