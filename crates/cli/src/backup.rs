//! `brine backup` and `brine restore` (docs/operations.md, "Backups and restore").

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use brine_server::Settings;
use brine_server::master_key;
use brine_store::backup::{self, BackupInfo};
use clap::Args;

use crate::admin::{DatabaseArgs, redact};

#[derive(Args)]
pub struct BackupArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The file to write (mode 0600).
    path: PathBuf,
    /// Replace the file if it exists.
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// A file written by `brine backup`.
    path: PathBuf,
    /// Replace an existing database (it is kept beside, renamed brine.db.replaced-UNIXTIME).
    #[arg(long)]
    force: bool,
}

fn describe(info: &BackupInfo) -> String {
    format!(
        "{} account{}, {} record{}, schema {}, {} bytes",
        info.accounts,
        if info.accounts == 1 { "" } else { "s" },
        info.records,
        if info.records == 1 { "" } else { "s" },
        info.schema,
        info.bytes
    )
}

/// Writes a consistent snapshot of the SQLite database while servers keep serving.
pub async fn backup(args: BackupArgs) -> anyhow::Result<ExitCode> {
    let url = args.database.url()?;
    let info = backup::snapshot(&url, &args.path, args.force)
        .await
        .with_context(|| format!("cannot back up {}", redact(&url)))?;
    println!(
        "backed up {} to {} ({}). The master key is not in it: keep {} (or the keyring) \
         somewhere else, as safe as the backup",
        redact(&url),
        args.path.display(),
        describe(&info),
        args.database
            .data_dir()
            .join(master_key::KEY_FILE)
            .display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Puts a backup in place of the database (refused while brine uses it), then says whether the
/// master key this data directory holds opens it.
pub async fn restore(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let url = args.database.url()?;
    let (info, replaced) = backup::restore(&args.path, &url, args.force)
        .await
        .with_context(|| format!("cannot restore {}", args.path.display()))?;
    println!(
        "restored {} into {} ({})",
        args.path.display(),
        redact(&url),
        describe(&info)
    );
    if let Some(aside) = replaced {
        println!("the database it replaced is kept at {}", aside.display());
    }
    // The same check a server makes at start-up, so a missing key shows now, not at start.
    let settings = Settings {
        data_dir: args.database.data_dir().to_path_buf(),
        master_key: std::env::var("BRINE_MASTER_KEY").ok().map(Into::into),
        master_keys: std::env::var("BRINE_MASTER_KEYS").ok().map(Into::into),
        ..Settings::default()
    };
    let store = brine_store::connect(&url)
        .await
        .with_context(|| format!("cannot open {}", redact(&url)))?;
    let loaded = master_key::load(&settings, store.as_ref(), false).await;
    store.close().await;
    match loaded {
        Ok(ring) => {
            println!(
                "ready: the master keyring here (version{} {}) opens it",
                if ring.keys().len() > 1 { "s" } else { "" },
                master_key::list(&ring.versions().collect::<Vec<_>>())
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!(
                "before starting brine, give it the master key of this backup (version{} {}): \
                 {e}",
                if info.key_versions.len() > 1 { "s" } else { "" },
                master_key::list(&info.key_versions)
            );
            Ok(ExitCode::from(3))
        }
    }
}
