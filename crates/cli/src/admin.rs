//! Operator commands that work on the database directly: `migrate`, `export`, `import`,
//! `admin reset-password`.

use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use brine_store::transfer::{self, Counts};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

/// Which database to work on (the same settings `brine serve` uses).
#[derive(Args)]
pub struct DatabaseArgs {
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://DATA_DIR/brine.db].
    #[arg(long, env = "BRINE_DATABASE_URL")]
    database_url: Option<String>,
    /// Data directory of a SQLite installation.
    #[arg(long, env = "BRINE_DATA_DIR", default_value = "brine-data")]
    data_dir: PathBuf,
}

impl DatabaseArgs {
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// The database URL; for the default SQLite file, its directory is created if missing.
    pub fn url(&self) -> anyhow::Result<String> {
        if let Some(url) = &self.database_url {
            return Ok(url.clone());
        }
        create_private_dir(&self.data_dir)
            .with_context(|| format!("cannot create {}", self.data_dir.display()))?;
        Ok(format!(
            "sqlite://{}",
            self.data_dir.join("brine.db").display()
        ))
    }
}

#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// File to write (JSON Lines, still encrypted). Keep it as safe as the database itself.
    #[arg(long, short)]
    output: PathBuf,
}

#[derive(Args)]
pub struct ImportArgs {
    /// The (empty) database to fill.
    #[command(flatten)]
    database: DatabaseArgs,
    /// A file written by `brine export`.
    #[arg(long, short)]
    input: PathBuf,
}

#[derive(Args)]
pub struct ResetPasswordArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The account's email.
    email: String,
    /// Also turn off two-factor sign-in (the owner lost the phone and the recovery codes).
    #[arg(long)]
    reset_two_factor: bool,
    /// Read the new password from the first line of stdin instead of asking on the terminal.
    #[arg(long)]
    password_stdin: bool,
}

/// Sets a new password for a locked-out owner: every session of the account ends at once, and
/// the account's history records the reset.
pub async fn reset_password(args: ResetPasswordArgs) -> anyhow::Result<ExitCode> {
    let email = brine_core::Email::parse(&args.email).map_err(|e| anyhow::anyhow!(e.message))?;
    let url = args.database.url()?;
    let store = brine_store::connect(&url)
        .await
        .with_context(|| format!("cannot open {}", redact(&url)))?;
    let Some(account) = store.account_by_email(email.as_str()).await? else {
        anyhow::bail!("there is no account with the email {}", email.as_str());
    };
    let password = crate::client::input::account_password(args.password_stdin, true)?;
    let password = brine_core::AccountPassword::parse(password.expose().to_owned())
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let hash = tokio::task::spawn_blocking(move || {
        brine_crypto::hash_account_password(password.as_bytes(), Default::default())
    })
    .await
    .context("the password hasher stopped")??;
    store.set_password(account.id, &hash, None).await?;
    let now = time::OffsetDateTime::now_utc();
    let operator = Some("brine admin reset-password");
    store
        .append_account_event(account.id, now, "password_reset", None, operator)
        .await?;
    if args.reset_two_factor {
        store.disable_totp(account.id).await?;
        store
            .append_account_event(account.id, now, "two_factor_disabled", None, operator)
            .await?;
    }
    store.close().await;
    let also = if args.reset_two_factor {
        " Two-factor sign-in is off; the owner can turn it on again from the account page."
    } else {
        ""
    };
    println!(
        "New password set for {}; every session of the account has ended.{also}",
        email.as_str()
    );
    Ok(ExitCode::SUCCESS)
}

/// Applies pending migrations (under an advisory lock on PostgreSQL), ahead of a rollout.
pub async fn migrate(args: DatabaseArgs) -> anyhow::Result<ExitCode> {
    let url = args.url()?;
    brine_store::connect(&url)
        .await
        .with_context(|| format!("cannot migrate {}", redact(&url)))?
        .close()
        .await;
    eprintln!("{}: schema is up to date", redact(&url));
    Ok(ExitCode::SUCCESS)
}

pub async fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let url = args.database.url()?;
    let store = brine_store::connect(&url)
        .await
        .with_context(|| format!("cannot open {}", redact(&url)))?;
    let file = create_private(&args.output)?;
    let bar = progress_bar(0, "{bar:40} {pos}/{len} accounts");
    let counts = transfer::export(store.as_ref(), &mut BufWriter::new(file), |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .await?;
    store.close().await;
    bar.finish_and_clear();
    eprintln!("exported {} to {}", summary(&counts), args.output.display());
    Ok(ExitCode::SUCCESS)
}

pub async fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let url = args.database.url()?;
    let store = brine_store::connect(&url)
        .await
        .with_context(|| format!("cannot open {}", redact(&url)))?;
    let file =
        File::open(&args.input).with_context(|| format!("cannot open {}", args.input.display()))?;
    let size = file.metadata()?.len();
    let bar = progress_bar(size, "{bar:40} {bytes}/{total_bytes}");
    let counts = transfer::import(store.as_ref(), BufReader::new(file), |bytes| {
        bar.set_position(bytes);
    })
    .await;
    // Closing folds SQLite's write-ahead log into the file, even after a failed import.
    store.close().await;
    let counts = counts?;
    bar.finish_and_clear();
    eprintln!(
        "imported {} into {}; start brine with the same master key, and sign in again",
        summary(&counts),
        redact(&url)
    );
    Ok(ExitCode::SUCCESS)
}

fn summary(c: &Counts) -> String {
    format!(
        "{} accounts, {} records ({} key slots), {} audit events",
        c.accounts, c.records, c.key_slots, c.events
    )
}

pub fn progress_bar(len: u64, template: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(unix)]
fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

#[cfg(not(unix))]
fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(path)
}

#[cfg(unix)]
fn create_private(path: &std::path::Path) -> anyhow::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

#[cfg(not(unix))]
fn create_private(path: &std::path::Path) -> anyhow::Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted_from_urls() {
        use super::redact;
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://data/brine.db"), "sqlite://data/brine.db");
    }
}
